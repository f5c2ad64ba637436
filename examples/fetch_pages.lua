-- fetch_pages.lua: many pages fetched concurrently through one client
-- session, timed against fetching them one after the other.
--
-- asyncio's classic first program, with aiohttp's client:
--   async with aiohttp.ClientSession() as session:
--       async with session.get(url) as resp:
--           return await resp.text()
-- In lasync a Session and its responses are to-be-closed values (`<close>`
-- where Python says `async with`), and s:get waits in its task only. The
-- web server is part of the example: a lasync.http App on a free port
-- whose pages take 20 to 100 ms to produce. One session fetches every
-- page in turn, then all of them at once (one task per URL, gathered):
-- the concurrent round takes about as long as the slowest page, and
-- the session keeps its connections open between requests (keep-alive).
-- Run: build/lasync examples/fetch_pages.lua [N]   (N pages, default 20)
-- Expected output (about 1.4 s):
--   server: 20 pages on 127.0.0.1 (a free port)
--   200 /page/1   "Page 1"  (3 KB)
--   200 /page/2   "Page 2"  (3 KB)
--   200 /page/3   "Page 3"  (3 KB)
--   fetched 20 pages one after the other in 1.3 s
--   fetched 20 pages concurrently in 0.1 s (12x faster), 20 OK

local http = lasync.http

local n = math.tointeger(tonumber((...) or 20))
assert(n and n > 0, "fetch_pages.lua: N must be a positive whole number")

local loop = lasync.get_running_loop()

-- {==================== the web server ====================
local function delay(i) return 0.02 + (i % 5) * 0.02 end  -- 20..100 ms

local app = http.App()
app:get("/page/{i}", function(req)
  local i = tonumber(req.match_info.i)
  lasync.sleep(delay(i))                  -- producing the page
  local body = ("<p>paragraph %d</p>\n"):format(i):rep(200)
  return http.html(("<!DOCTYPE html>\n<html><head><title>Page %d</title>" ..
    "</head><body>%s</body></html>\n"):format(i, body))
end)
local server = app:start { host = "127.0.0.1", port = 0 }
local host, port = server:address()
print(("server: %d pages on %s (a free port)"):format(n, host))
-- }====================

local urls = {}
for i = 1, n do urls[i] = ("http://%s:%d/page/%d"):format(host, port, i) end

local session <close> = http.Session()

-- aiohttp's fetch(session, url)
local function fetch(url)
  local resp <close> = session:get(url)
  return resp.status, resp:text()
end

local function title(html) return html:match("<title>(.-)</title>") end

-- one after the other: each page waits for the one before it
local t0 = loop:time()
for i, url in ipairs(urls) do
  local status, html = fetch(url)
  if i <= 3 then
    print(("%d %-9s %-9s (%d KB)"):format(status, url:match("/page/%d+$"),
      ('"' .. title(html) .. '"'), #html // 1024))
  end
end
local sequential = loop:time() - t0

-- all at once: one task per URL
t0 = loop:time()
local fetches = {}
for i, url in ipairs(urls) do
  fetches[i] = function() return { fetch(url) } end
end
local results = lasync.gather(fetches)
local concurrent = loop:time() - t0

local ok = 0
for i, r in ipairs(results) do
  if r[1] == 200 and title(r[2]) == "Page " .. i then ok = ok + 1 end
end
print(("fetched %d pages one after the other in %.1f s"):format(n,
  sequential))
print(("fetched %d pages concurrently in %.1f s (%.0fx faster), %d OK")
  :format(n, concurrent, sequential / concurrent, ok))

session:close()
server:close()
server:wait_closed()
