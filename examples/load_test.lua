-- load_test.lua: a load tester posting a file as multipart form data from
-- many tasks through one client session, with latency statistics.
--
-- aiohttp's load tester, ported:
--   async with session.post(url, data=form) as r: await r.json()
-- from `concurrency` worker tasks sharing one session, until `requests`
-- posts are done; then max / min / p90 / average latency, requests per
-- second and MB/s (of request bodies sent). The server is part of the
-- example: a lasync.http App on a free port whose /upload route reads the
-- form (req:post()) and answers the file's name and size as JSON. The
-- file (an "image" of random-looking bytes) is made in a temporary
-- directory and streamed from disk by http.file_part for every post.
-- Run: build/lasync examples/load_test.lua [requests [concurrency [KB]]]
--   (defaults: 1000 requests, 50 tasks, a 256 KB file)
-- Expected output (numbers vary):
--   server: /upload on 127.0.0.1 (a free port); file: 256 KB
--   1000 requests by 50 tasks: 1000 OK, 0 failed
--   latency: max 92.1 ms, min 3.2 ms, p90 61.5 ms, average 45.0 ms
--   throughput: 1090.3 requests/s, 272.6 MB/s

local http = lasync.http

local args = { ... }
local requests = math.tointeger(tonumber(args[1] or 1000))
local concurrency = math.tointeger(tonumber(args[2] or 50))
local kb = math.tointeger(tonumber(args[3] or 256))
assert(requests and requests > 0 and concurrency and concurrency > 0 and
  kb and kb > 0, "load_test.lua: arguments must be positive whole numbers")

local loop = lasync.get_running_loop()

-- {==================== the server ====================
local app = http.App { client_max_size = (kb + 64) * 1024 }
app:post("/upload", function(req)
  local form = req:post()
  local image = form:get("image")
  return http.json { filename = image.filename, size = image.size,
                     user = form:get("user") }
end)
local server = app:start { host = "127.0.0.1", port = 0 }
local host, port = server:address()
local url = ("http://%s:%d/upload"):format(host, port)
-- }====================

-- the file to post: kb KiB of pseudo-random bytes
local dir = lasync.fs.mkdtemp("/tmp/lasync-load-XXXXXX")
local path = dir .. "/image.jpg"
do
  local bytes, x = {}, 12345
  for i = 1, 1024 do
    x = (x * 1103515245 + 12345) % 2147483648
    bytes[i] = string.char(x % 256)
  end
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(bytes):rep(kb))
  f:close()
end
local size = kb * 1024
print(("server: /upload on %s (a free port); file: %d KB"):format(host, kb))

local session <close> = http.Session { limit = concurrency }
local latencies, failed, next_request = {}, 0, 1

local function worker(id)
  while next_request <= requests do
    next_request = next_request + 1
    local form = http.form {
      { "user", "worker-" .. id },
      { "image", http.file_part(path, { content_type = "image/jpeg" }) },
    }
    local t0 = loop:time()
    local ok, answer = pcall(function()
      local r <close> = session:post(url, { data = form })
      r:raise_for_status()
      return r:json()
    end)
    if ok and answer.size == size and answer.filename == "image.jpg" then
      latencies[#latencies + 1] = loop:time() - t0
    else
      failed = failed + 1
      if failed == 1 then print("first failure: " .. tostring(answer)) end
    end
  end
end

local t0 = loop:time()
local workers = {}
for i = 1, concurrency do workers[i] = function() worker(i) end end
lasync.gather(workers)
local elapsed = loop:time() - t0

session:close()
server:close()
server:wait_closed()
os.execute("rm -rf '" .. dir .. "'")

print(("%d requests by %d tasks: %d OK, %d failed"):format(requests,
  concurrency, #latencies, failed))
if #latencies > 0 then
  table.sort(latencies)
  local sum = 0
  for _, l in ipairs(latencies) do sum = sum + l end
  local p90 = latencies[math.max(1, math.ceil(#latencies * 0.9))]
  print(("latency: max %.1f ms, min %.1f ms, p90 %.1f ms, average %.1f ms")
    :format(latencies[#latencies] * 1e3, latencies[1] * 1e3, p90 * 1e3,
      sum / #latencies * 1e3))
  print(("throughput: %.1f requests/s, %.1f MB/s"):format(
    #latencies / elapsed, #latencies * size / elapsed / 1e6))
end
