-- httpclient / httpsclient client: one lasync.http.Session (issue 13; its
-- default pool, limit 100, keep-alive) shared by CONC tasks, each looping
-- `local resp <close> = s:get(url); resp:read()` until N requests are done,
-- after WARMUP requests that are not counted (they open the connections:
-- the TLS handshakes are CONC, not N). https verifies the server against
-- CAFILE (ssl = lasync.ssl.context{cafile = ...}). A request counts as an
-- error unless it answers 200 with "Hello, world\n". Prints one line run.sh
-- turns into a RESULT: requests, seconds, client CPU seconds (os.clock:
-- the process's CPU time), max RSS (VmHWM), errors, p50/p99 latency of one
-- request. The file is the main task. Until lasync.http.Session exists it
-- prints one SKIP line with the reason and exits 0; with the argument
-- "probe" it only says whether it can run (run.sh asks before it runs it).
-- usage: lasync client_lasync.lua URL N CONC WARMUP [CAFILE]
--        lasync client_lasync.lua probe
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"

local args = arg or {}

-- lasync.http, whether a field of the module or its own module
local function find_http()
  local ok, http = pcall(function() return lasync.http end)
  if ok and type(http) == "table" then return http end
  ok, http = pcall(require, "lasync.http")
  if ok and type(http) == "table" then return http end
end
local http = find_http()
if not http or http.Session == nil then
  print('SKIP reason="lasync.http.Session does not exist in this build"')
  return
end
if args[1] == "probe" then print("OK") return end

local URL = assert(args[1],
  "usage: client_lasync.lua URL N CONC WARMUP [CAFILE]")
local N, CONC, WARMUP = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
local CAFILE = args[5]
local BODY = "Hello, world\n"
local now = B.now
local said = false

-- one request: true when it answered 200 with BODY; the response is
-- released when the function returns or raises
local function get(s)
  local resp <close> = s:get(URL)
  local body = resp:read()
  return resp.status == 200 and body == BODY
end

local function batch(s, n, lat)
  local left, errors = n, 0
  local function worker()
    while left > 0 do
      left = left - 1
      local t = now()
      local ok, good = pcall(get, s)
      if not (ok and good) then
        errors = errors + 1
        if not ok and not said then
          said = true
          io.stderr:write("# first error: ", tostring(good), "\n")
        end
      end
      if lat then lat[#lat + 1] = now() - t end
    end
  end
  local tasks = {}
  for i = 1, CONC do tasks[i] = lasync.spawn(worker) end
  lasync.gather(tasks)
  return errors
end

local s <close> = http.Session{limit = CONC,
  ssl = CAFILE and lasync.ssl.context{cafile = CAFILE} or nil}
batch(s, WARMUP)
local lat = {}
local c0, t0 = os.clock(), now()
local errors = batch(s, N, lat)
local t1, c1 = now(), os.clock()
table.sort(lat)
local function pick(q)
  return lat[math.min(#lat, math.floor(q * #lat) + 1)] * 1e6
end
B.result("requests=%d seconds=%.4f cpu_s=%.3f maxrss_kb=%d errors=%d " ..
  "p50_us=%.0f p99_us=%.0f", N, t1 - t0, c1 - c0, B.peak_rss_kb(), errors,
  pick(0.5), pick(0.99))
