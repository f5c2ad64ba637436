-- web/server.lua: a web page and its JSON API, served by lasync.http.
--
-- The App serves index.html at / and its script app.js; the script
-- fetches GET /api/items (JSON) and renders the items into the page, and
-- its form posts a text field and a file to POST /api/upload as
-- multipart/form-data (fetch(new FormData(form))). The upload handler
-- reads the form with req:post() and answers JSON: the note, the file's
-- name, content type and size, and its Adler-32 checksum, which the page
-- compares with the one it computed itself.
-- Run directly, it serves on 127.0.0.1:8080 (or the port given as an
-- argument, or PORT in the environment) until Ctrl-C:
--   make run SCRIPT=examples/web/server.lua
--   then open http://127.0.0.1:8080/ (or /?demo to upload a sample file)
-- Loaded by another script (dofile), it only returns the module: M.app,
-- M.start(opts) (app:start, e.g. {host = "127.0.0.1", port = 0}) and
-- M.adler32(data). spec/http_browser_spec.lua loads it that way and
-- points headless Chromium at it.
local lasync = rawget(_G, "lasync") or require "lasync"
local http = lasync.http

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

local M = {}

-- Adler-32 (RFC 1950), a checksum simple enough to compute on both sides.
function M.adler32(data)
  local a, b = 1, 0
  for i = 1, #data do
    a = (a + data:byte(i)) % 65521
    b = (b + a) % 65521
  end
  return b << 16 | a
end

local ITEMS = {
  { id = 1, name = "coroutines", note = "stackful, so any function waits" },
  { id = 2, name = "libuv", note = "the event loop under the tasks" },
  { id = 3, name = "llhttp", note = "the request parser" },
}

local app = http.App { client_max_size = 4 * 1024 * 1024 }
M.app = app

-- The page and its script, read on each request: edit them and reload.
app:get("/", function(req)
  return http.html(lasync.fs.readfile(here .. "/index.html"))
end)
app:get("/app.js", function(req)
  return http.Response { text = lasync.fs.readfile(here .. "/app.js"),
    content_type = "text/javascript; charset=utf-8" }
end)

app:get("/api/items", function(req)
  return http.json { items = ITEMS }
end)

app:post("/api/upload", function(req)
  local form = req:post()               -- multipart/form-data or urlencoded
  local file = form.file
  if type(file) ~= "table" then         -- absent, or a text field
    return http.json({ error = "expected a file in the field 'file'" }, 400)
  end
  local data = file.read()              -- in memory, or from its spool file
  return http.json {
    note = form.note or "",
    filename = file.filename,           -- the client's name: not a path
    content_type = file.content_type,
    size = #data,
    adler32 = ("%08x"):format(M.adler32(data)),
  }
end)

function M.start(opts)
  return app:start(opts)
end

-- Run directly (not loaded by dofile): serve until Ctrl-C.
if arg and arg[0] == debug.getinfo(1, "S").source:sub(2) then
  local port = math.tointeger(tonumber(... or os.getenv("PORT") or 8080))
  assert(port, "web/server.lua: the port must be a number")
  app:run { host = "127.0.0.1", port = port }
  return
end

return M
