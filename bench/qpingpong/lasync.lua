-- qpingpong: two tasks pass a counter back and forth through two unbounded
-- lasync.Queues, N round trips: ping puts c into q1 and gets the answer from
-- q2; pong gets from q1 and puts v + 1 into q2. Checks the final counter (2N).
-- Run as `lasync qpingpong/lasync.lua [N]`: the file is the main task.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local N = tonumber(arg and arg[1]) or 500000

local function ping(q1, q2)
  local c = 0
  for _ = 1, N do
    q1:put(c)
    c = q2:get() + 1
  end
  return c
end

local function pong(q1, q2)
  for _ = 1, N do
    local v = q1:get()
    q2:put(v + 1)
  end
end

local q1, q2 = lasync.Queue(), lasync.Queue()
local t0 = B.now()
local c = lasync.gather(lasync.spawn(ping, q1, q2), lasync.spawn(pong, q1, q2))
local dt = B.now() - t0
assert(c == 2 * N, "bad counter " .. tostring(c))
B.result("RESULT workload=qpingpong peer=lasync n=%d seconds=%.6f rate=%.0f rss_kb=%d",
  N, dt, N / dt, B.peak_rss_kb())
