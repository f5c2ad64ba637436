-- spawn: N coroutine tasks, each sleep(0) once (yield to the loop) and returns
-- its index; gather; check the sum. Lua 5.4 + luv + ../lib/luvtask.lua.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lib/?.lua;" .. package.path
local T = require "luvtask"
local N = tonumber(arg[1]) or 200000

local function work(i)
  T.sleep(0)
  return i
end

T.run(function()
  local t0 = T.now()
  local tasks = {}
  for i = 1, N do tasks[i] = T.spawn(work, i - 1) end
  local res = T.gather(tasks)
  local dt = T.now() - t0
  local s = 0
  for i = 1, N do s = s + res[i] end
  assert(s == N * (N - 1) // 2, "bad sum " .. tostring(s))
  T.result("RESULT workload=spawn peer=luv n=%d seconds=%.6f rate=%.0f rss_kb=%d",
    N, dt, N / dt, T.peak_rss_kb())
end)
