-- lockcontention: 100 coroutine tasks share one luvtask Lock; each does N/100
-- iterations of: acquire; counter += 1; every 10th iteration sleep(0) while
-- holding the lock; release. N acquisitions in total; checks the final counter.
-- Lua 5.4 + luv + ../lib/luvtask.lua.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lib/?.lua;" .. package.path
local T = require "luvtask"
local NT = 100
local K = math.max(1, (tonumber(arg[1]) or 1000000) // NT)
local N = NT * K
local counter = 0

local function worker(lock)
  for i = 1, K do
    lock:acquire()
    counter = counter + 1
    if i % 10 == 0 then T.sleep(0) end
    lock:release()
  end
end

T.run(function()
  local lock = T.Lock()
  local t0 = T.now()
  local ws = {}
  for t = 1, NT do ws[t] = T.spawn(worker, lock) end
  T.gather(ws)
  local dt = T.now() - t0
  assert(counter == N and not lock.held, "bad counter " .. tostring(counter))
  T.result("RESULT workload=lockcontention peer=luv n=%d seconds=%.6f rate=%.0f rss_kb=%d",
    N, dt, N / dt, T.peak_rss_kb())
end)
