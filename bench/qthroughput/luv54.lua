-- qthroughput: 4 producers and 4 consumers share one bounded luvtask Queue
-- (maxsize 100), N items in total (N/4 per producer). Once every producer has
-- finished, main puts one sentinel per consumer; each consumer counts and sums
-- until its sentinel. Checks the total count (N) and sum (N(N-1)/2).
-- Lua 5.4 + luv + ../lib/luvtask.lua.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lib/?.lua;" .. package.path
local T = require "luvtask"
local P, C, MAXSIZE = 4, 4, 100
local K = (tonumber(arg[1]) or 1000000) // P
local N = P * K
local DONE = {} -- sentinel

local function producer(q, p)
  for i = p * K, (p + 1) * K - 1 do q:put(i) end
end

local function consumer(q)
  local n, s = 0, 0
  while true do
    local v = q:get()
    if v == DONE then return { n, s } end
    n, s = n + 1, s + v
  end
end

T.run(function()
  local q = T.Queue(MAXSIZE)
  local t0 = T.now()
  local consumers, producers = {}, {}
  for c = 1, C do consumers[c] = T.spawn(consumer, q) end
  for p = 1, P do producers[p] = T.spawn(producer, q, p - 1) end
  T.gather(producers)
  for _ = 1, C do q:put(DONE) end
  local res = T.gather(consumers)
  local dt = T.now() - t0
  local n, s, per = 0, 0, {}
  for c = 1, C do n, s, per[c] = n + res[c][1], s + res[c][2], res[c][1] end
  assert(n == N and s == N * (N - 1) // 2, ("bad count/sum %d %d"):format(n, s))
  T.result("RESULT workload=qthroughput peer=luv n=%d seconds=%.6f rate=%.0f rss_kb=%d per_consumer=%s",
    N, dt, N / dt, T.peak_rss_kb(), table.concat(per, "/"))
end)
