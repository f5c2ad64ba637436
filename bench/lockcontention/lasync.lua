-- lockcontention: 100 tasks share one lasync.Lock; each does N/100 iterations
-- of: acquire; counter += 1; every 10th iteration lasync.sleep(0) while holding
-- the lock; release. N acquisitions in total; checks the final counter.
-- Run as `lasync lockcontention/lasync.lua [N]`: the file is the main task.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local NT = 100
local K = math.max(1, (tonumber(arg and arg[1]) or 1000000) // NT)
local N = NT * K
local counter = 0

local function worker(lock)
  for i = 1, K do
    lock:acquire()
    counter = counter + 1
    if i % 10 == 0 then lasync.sleep(0) end
    lock:release()
  end
end

local lock = lasync.Lock()
local t0 = B.now()
local ws = {}
for t = 1, NT do ws[t] = lasync.spawn(worker, lock) end
lasync.gather(ws)
local dt = B.now() - t0
assert(counter == N and not lock:locked(), "bad counter " .. tostring(counter))
B.result("RESULT workload=lockcontention peer=lasync n=%d seconds=%.6f rate=%.0f rss_kb=%d",
  N, dt, N / dt, B.peak_rss_kb())
