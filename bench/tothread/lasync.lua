-- tothread: N calls of a trivial function on the thread pool, two ways.
-- Latency: N calls one at a time (`lasync.to_thread(fn):await()`), each timed:
-- p50 / p99 microseconds per round trip. Throughput: N calls submitted at once
-- (N to_thread tasks) and gathered: calls/s. 100 gathered calls first warm the
-- pool (threads and their Lua states). Run as `lasync tothread/lasync.lua [N]`.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local N = tonumber(arg and arg[1]) or 10000

local function fn() return 1 end

local function batch(n)
  local tasks = {}
  for i = 1, n do tasks[i] = lasync.to_thread(fn) end
  return lasync.gather(tasks)
end

batch(100) -- warm-up

-- latency: one at a time
local lat = {}
local s0 = B.now()
for i = 1, N do
  local t0 = B.now()
  local r = lasync.to_thread(fn):await()
  lat[i] = B.now() - t0
  assert(r == 1)
end
local seq = B.now() - s0
table.sort(lat)
local function pct(p) return lat[math.max(1, math.ceil(N * p))] * 1e6 end

-- throughput: all at once, gathered
local t0 = B.now()
local res = batch(N)
local dt = B.now() - t0
local sum = 0
for i = 1, N do sum = sum + res[i] end
assert(sum == N, "bad sum " .. tostring(sum))
B.result("RESULT workload=tothread peer=lasync n=%d seconds=%.6f rate=%.0f rss_kb=%d p50_us=%.1f p99_us=%.1f seq_seconds=%.6f seq_rate=%.0f",
  N, dt, N / dt, B.peak_rss_kb(), pct(0.5), pct(0.99), seq, N / seq)
