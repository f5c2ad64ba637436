-- qpingpong: two coroutine tasks pass a counter through two luvtask queues,
-- N round trips. Lua 5.4 + luv + ../lib/luvtask.lua.
-- (A copy of ../pingpong/luv54.lua with the workload name changed.)
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lib/?.lua;" .. package.path
local T = require "luvtask"
local N = tonumber(arg[1]) or 500000

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

T.run(function()
  local q1, q2 = T.Queue(), T.Queue()
  local t0 = T.now()
  local res = T.gather({ T.spawn(ping, q1, q2), T.spawn(pong, q1, q2) })
  local dt = T.now() - t0
  assert(res[1] == 2 * N, "bad counter " .. tostring(res[1]))
  T.result("RESULT workload=qpingpong peer=luv n=%d seconds=%.6f rate=%.0f rss_kb=%d",
    N, dt, N / dt, T.peak_rss_kb())
end)
