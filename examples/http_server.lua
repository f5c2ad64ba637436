-- http_server.lua: a small web server with lasync.http, aiohttp's
-- tutorial server ported.
--
-- The routes of aiohttp's web tutorial: `GET /` answers a text, `POST
-- /demo1/{name}` reads the form fields of the body (urlencoded or
-- multipart/form-data, req:post()) and answers them as JSON with the
-- name from the path, and /static serves the files of examples/static/
-- with an index page for its folders (show_index). app:run serves on
-- 127.0.0.1:8080 (or the port given as an argument, or PORT in the
-- environment) until Ctrl-C or SIGTERM, then closes gracefully:
--   make run SCRIPT=examples/http_server.lua   (PORT=9000 for another port)
--   curl http://127.0.0.1:8080/
--   curl -d 'city=Bonn&lang=de' http://127.0.0.1:8080/demo1/J%C3%BCrgen
--   curl http://127.0.0.1:8080/static/   (the index; then hello.txt)
-- With --self-test it starts the same app on a free port instead
-- (app:start), fetches each route with lasync streams, checks the answers
-- and exits (JSON keys come in any order):
--   build/lasync examples/http_server.lua --self-test
-- Expected output (a few milliseconds):
--   GET  /                      200 text/plain  "Hello, world"
--   POST /demo1/J%C3%BCrgen     200 application/json  {"name":"Jürgen",...}
--   GET  /static/               200 text/html  index lists: css/ hello.txt
--   GET  /static/hello.txt      200 text/plain  "Hello from a static ..."
--   GET  /nothing               404 text/plain  "404: Not Found"
--   self-test: 5 requests answered as expected

local http = lasync.http

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

local app = http.App()

app:get("/", function(req)
  return "Hello, world"                   -- a string: 200, text/plain
end)

-- aiohttp: {"name": name, **(await request.post())}
app:post("/demo1/{name}", function(req)
  local answer = { name = req.match_info.name }  -- already percent-decoded
  local form = req:post()                 -- a multidict of the fields
  for _, key in ipairs(form:keys()) do
    local value = form:get(key)           -- a repeated key: its first value
    if type(value) == "table" then        -- a file field of a multipart body
      value = { filename = value.filename, size = value.size }
    end
    if key ~= "name" then answer[key] = value end
  end
  return http.json(answer)
end)

app:static("/static", here .. "/static", { show_index = true })

local args = { ... }
if args[1] ~= "--self-test" then
  local port = math.tointeger(tonumber(args[1] or os.getenv("PORT") or 8080))
  assert(port, "http_server.lua: the port must be a number")
  app:run { host = "127.0.0.1", port = port }  -- until Ctrl-C
  print("server: stopped")
  return
end

-- {==================== the self-test ====================
local server = app:start { host = "127.0.0.1", port = 0 }
local host, port = server:address()

-- One request on a connection of its own (a body as a urlencoded form):
-- status, headers, body.
local function fetch(method, target, body)
  local r, w = lasync.open_connection(host, port)
  local head = { ("%s %s HTTP/1.1"):format(method, target),
    "Host: " .. host, "Connection: close" }
  if body then
    head[#head + 1] = "Content-Type: application/x-www-form-urlencoded"
    head[#head + 1] = "Content-Length: " .. #body
  end
  w:write(table.concat(head, "\r\n") .. "\r\n\r\n" .. (body or ""))
  local reply = r:read()                  -- to EOF: the server closes
  w:close()
  local top, rest = reply:match("^(.-)\r\n\r\n(.*)$")
  local headers = {}
  for name, value in top:gmatch("\r\n([^:]+): ([^\r]*)") do
    headers[name:lower()] = value
  end
  return tonumber(top:match("^HTTP/1%.1 (%d+)")), headers, rest
end

local cjson = require "cjson"
local answered = 0

-- Fetch, check the status and the content type, print a line with what
-- shown(body) makes of the body, and return the body.
local function expect(method, target, body, status, ctype, shown)
  local got, headers, text = fetch(method, target, body)
  local got_type = (headers["content-type"] or "-"):match("^[^;]*")
  assert(got == status and got_type == ctype, ("%s %s: got %s %s, " ..
    "expected %d %s"):format(method, target, got, got_type, status, ctype))
  print(("%-4s %-22s %d %s  %s"):format(method, target, got, got_type,
    shown(text)))
  answered = answered + 1
  return text
end

local function quoted(text) return ("%q"):format((text:gsub("\n$", ""))) end

expect("GET", "/", nil, 200, "text/plain", quoted)

local json = expect("POST", "/demo1/J%C3%BCrgen", "city=Bonn&lang=de&lang=en",
  200, "application/json", function(text) return text end)
local fields = cjson.decode(json)
assert(fields.name == "J\u{fc}rgen" and fields.city == "Bonn"
  and fields.lang == "de", "the form's fields came back wrong: " .. json)

local index = expect("GET", "/static/", nil, 200, "text/html", function(text)
  local names = {}
  for name in text:gmatch('<a href="[^"]*">([^<]*)</a>') do
    names[#names + 1] = name
  end
  return "index lists: " .. table.concat(names, " ")
end)
assert(index:find("hello.txt", 1, true), "the index misses hello.txt")

expect("GET", "/static/hello.txt", nil, 200, "text/plain", quoted)
expect("GET", "/nothing", nil, 404, "text/plain", quoted)

server:close()
server:wait_closed()
print(("self-test: %d requests answered as expected"):format(answered))
-- }====================
