-- timers (timer churn): N uv timers (uv.new_timer + timer:start, delays
-- 1..1000 s, Park-Miller LCG seed 42: delay = 1 + x mod 1000 s), then
-- timer:stop() + timer:close() of each in creation order, then one loop turn
-- (sleep(0) through the luvtask ready queue). None may fire.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lib/?.lua;" .. package.path
local T = require "luvtask"
local uv = T.uv
local N = tonumber(arg[1]) or 1000000
local fired = 0
local function cb() fired = fired + 1 end

T.run(function()
  local x, delays = 42, {}
  for i = 1, N do
    x = (x * 16807) % 2147483647
    delays[i] = 1 + x % 1000
  end
  local base = T.rss_kb()
  local t0 = T.now()
  local timers = {}
  for i = 1, N do
    local t = uv.new_timer()
    t:start(delays[i] * 1000, 0, cb)
    timers[i] = t
  end
  local t1 = T.now()
  for i = 1, N do
    local t = timers[i]
    t:stop()
    t:close()
  end
  local t2 = T.now()
  T.sleep(0)
  local dt = T.now() - t0
  assert(fired == 0, "cancelled timers fired: " .. fired)
  local peak = T.peak_rss_kb()
  T.result("RESULT workload=timers peer=luv n=%d seconds=%.6f rate=%.0f rss_kb=%d base_kb=%d bytes_per_timer=%.0f create_s=%.6f cancel_s=%.6f",
    N, dt, N / dt, peak, base, (peak - base) * 1024 / N, t1 - t0, t2 - t1)
end)
