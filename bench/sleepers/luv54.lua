-- sleepers: N coroutine tasks each sleep a pseudo-random 0..1000 ms (Park-Miller
-- LCG, seed 42, same as every peer; one uv timer per sleep); gather; wall + RSS.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lib/?.lua;" .. package.path
local T = require "luvtask"
local N = tonumber(arg[1]) or 100000

local function sleeper(ms) T.sleep(ms) end

T.run(function()
  local x, delays, maxd = 42, {}, 0
  for i = 1, N do
    x = (x * 16807) % 2147483647
    delays[i] = x % 1001
    if delays[i] > maxd then maxd = delays[i] end
  end
  local base = T.rss_kb()
  local t0 = T.now()
  local tasks = {}
  for i = 1, N do tasks[i] = T.spawn(sleeper, delays[i]) end
  T.gather(tasks)
  local dt = T.now() - t0
  local peak = T.peak_rss_kb()
  T.result("RESULT workload=sleepers peer=luv n=%d seconds=%.6f rate=%.0f rss_kb=%d base_kb=%d bytes_per_task=%.0f max_delay_ms=%d",
    N, dt, N / dt, peak, base, (peak - base) * 1024 / N, maxd)
end)
