-- titles.lua: fetch the <title> of several web pages at once.
--
-- The concurrent fetcher of asyncio tutorials, over plain HTTP/1.1 on
-- lasync streams: one task per URL (lasync.gather) sends a GET, reads the
-- status line and the headers with readline, the body with readexactly
-- (Content-Length), and pulls out the <title>. Each fetch runs under
-- lasync.wait_for, so a page that does not answer in time is given up.
-- The web server is part of the example: a tiny HTTP/1.1 server on a free
-- port whose pages take different times to produce; the fetch takes as
-- long as the slowest page (or the timeout), not as long as all of them.
-- Given a port (an argument, or PORT in the environment), it only serves
-- the pages, on 127.0.0.1 at that port, until Ctrl-C:
--   PORT=8888 make run SCRIPT=examples/titles.lua  (or: lasync titles.lua 8888)
--   curl -i http://127.0.0.1:8888/news
-- Run: build/lasync examples/titles.lua
-- Expected output (about 0.6 s):
--   server: 4 pages on 127.0.0.1 (a free port)
--   200 /           "Home of the demo"  0.1 s
--   200 /news       "News & notes"      0.2 s
--   200 /about      "About us"          0.3 s
--   404 /old        "Not Found"         0.0 s
--   --- /slow       TimeoutError        0.4 s
--   5 URLs fetched concurrently in 0.4 s (one after the other: 1.0 s)

local loop = lasync.get_running_loop()

-- {==================== the web server ====================
local pages = { -- path -> seconds to produce it, title
  ["/"] = { 0.1, "Home of the demo" },
  ["/news"] = { 0.2, "News &amp; notes" },
  ["/about"] = { 0.3, "About us" },
  ["/slow"] = { 0.6, "Worth the wait?" },
}
local busy = 0 -- requests being answered

local function respond(writer, status, title)
  local body = ("<!DOCTYPE html>\n<html><head><title>%s</title></head>" ..
    "<body><h1>%s</h1></body></html>\n"):format(title, title)
  writer:write(("HTTP/1.1 %s\r\nContent-Type: text/html\r\n" ..
    "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(status,
    #body, body))
end

local function handle(reader, writer)
  busy = busy + 1
  local request = reader:readline() -- "GET /news HTTP/1.1\r\n"
  local method, path = request:match("^(%u+) (%S+) HTTP/1%.[01]\r?\n$")
  local line
  repeat -- skip the headers, up to the blank line (or EOF: "")
    line = reader:readline()
  until line == "\r\n" or line == "\n" or line == ""
  local page = pages[path]
  if method ~= "GET" then
    respond(writer, "405 Method Not Allowed", "Method Not Allowed")
  elseif page then
    lasync.sleep(page[1]) -- producing the page
    respond(writer, "200 OK", page[2])
  else
    respond(writer, "404 Not Found", "Not Found")
  end
  writer:close()
  busy = busy - 1
end

local npages = 0
for _ in pairs(pages) do npages = npages + 1 end

-- Serve mode: a port given; Ctrl-C (SIGINT) stops the server cleanly.
local wanted = ... or os.getenv("PORT")
if wanted then
  local number = math.tointeger(tonumber(wanted))
  assert(number, "titles.lua: the port must be a number")
  -- watch SIGINT before saying where we listen: a Ctrl-C from then on
  -- stops the server
  local stop = lasync.Event()
  local sigint <close> = lasync.signal("SIGINT", function() stop:set() end)
  local server = lasync.start_server(handle, "127.0.0.1", number)
  local host, port = server:address()
  print(("server: %d pages on http://%s:%d/ (/, /news, /about, /slow); " ..
    "try: curl -i http://%s:%d/news (Ctrl-C stops)"):format(npages, host,
    port, host, port))
  io.stdout:flush()
  stop:wait()
  server:close()
  server:wait_closed()
  print("\nserver: stopped")
  return
end

local server = lasync.start_server(handle, "127.0.0.1", 0)
local host, port = server:address()
print(("server: %d pages on %s (a free port)"):format(npages, host))
-- }========================================================

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }

-- GET http://host:port/path -> status code, title (or nil)
local function fetch_title(path)
  local reader, writer = lasync.open_connection(host, port)
  local _ <close> = writer -- closed however we leave, also on a timeout
  writer:write(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: lasync-" ..
    "titles\r\nConnection: close\r\n\r\n"):format(path, host, port))
  local code = tonumber(reader:readline():match("^HTTP/1%.[01] (%d%d%d) "))
  local headers = {}
  while true do
    local line = reader:readline()
    if line == "\r\n" or line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)\r\n$")
    headers[name:lower()] = value
  end
  local length = tonumber(headers["content-length"])
  local body = length and reader:readexactly(length) or reader:read()
  local title = body:match("<title>(.-)</title>")
  return code, title and title:gsub("&(%a+);", ENTITIES)
end

local urls = { "/", "/news", "/about", "/old", "/slow" }
local start = loop:time()
local fetches = {} -- one function per URL: gather runs each as a task
for i, path in ipairs(urls) do
  fetches[i] = function()
    local ok, code, title = pcall(lasync.wait_for,
      function() return fetch_title(path) end, 0.4)
    return { path = path, ok = ok, code = code, title = title,
             took = loop:time() - start }
  end
end
local results = lasync.gather(fetches) -- all at once
local took = loop:time() - start

local sequential = 0.4 -- /slow's timeout
for _, page in pairs(pages) do
  sequential = sequential + (page[1] < 0.4 and page[1] or 0)
end
for _, r in ipairs(results) do
  if r.ok then
    print(("%d %-11s %-19s %.1f s"):format(r.code, r.path,
      ('"%s"'):format(r.title), r.took))
  else
    print(("--- %-11s %-19s %.1f s"):format(r.path,
      lasync.is_timeout(r.code) and "TimeoutError" or tostring(r.code),
      r.took))
  end
end
print(("%d URLs fetched concurrently in %.1f s (one after the other: " ..
  "%.1f s)"):format(#urls, took, sequential))

-- the server still produces /slow for a client that left: let it finish
while busy > 0 do lasync.sleep(0.01) end
server:close()
server:wait_closed()
