-- qthroughput: 4 producers and 4 consumers share one lasync.Queue(100), N items
-- in total (N/4 per producer). Once every producer has finished, the main task
-- puts one sentinel per consumer; each consumer counts and sums until its
-- sentinel. Checks the total count (N) and sum (N(N-1)/2).
-- Run as `lasync qthroughput/lasync.lua [N]`: the file is the main task.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local P, C, MAXSIZE = 4, 4, 100
local K = (tonumber(arg and arg[1]) or 1000000) // P
local N = P * K
local DONE = {} -- sentinel (items must not be nil)

local function producer(q, p)
  for i = p * K, (p + 1) * K - 1 do q:put(i) end
end

local function consumer(q)
  local n, s = 0, 0
  while true do
    local v = q:get()
    if v == DONE then return n, s end
    n, s = n + 1, s + v
  end
end

local q = lasync.Queue(MAXSIZE)
local t0 = B.now()
local consumers, producers = {}, {}
for c = 1, C do consumers[c] = lasync.spawn(consumer, q) end
for p = 1, P do producers[p] = lasync.spawn(producer, q, p - 1) end
lasync.gather(producers)
for _ = 1, C do q:put(DONE) end
local n, s, per = 0, 0, {}
for c = 1, C do
  local cn, cs = consumers[c]:await()
  n, s, per[c] = n + cn, s + cs, cn
end
local dt = B.now() - t0
assert(n == N and s == N * (N - 1) // 2, ("bad count/sum %d %d"):format(n, s))
B.result("RESULT workload=qthroughput peer=lasync n=%d seconds=%.6f rate=%.0f rss_kb=%d per_consumer=%s",
  N, dt, N / dt, B.peak_rss_kb(), table.concat(per, "/"))
