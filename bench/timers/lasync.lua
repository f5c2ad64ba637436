-- timers (timer churn): N loop:call_later timers (delays 1..1000 s, Park-Miller
-- LCG seed 42: delay = 1 + x mod 1000 s), then h:cancel() of every handle in
-- creation order, then one loop turn (lasync.sleep(0)). None may fire.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local N = tonumber(arg and arg[1]) or 1000000
local fired = 0
local function cb() fired = fired + 1 end

local loop = lasync.get_running_loop()
local delays = B.lcg(N, 1000, 1)
local base = B.rss_kb()
local t0 = loop:time()
local handles = {}
for i = 1, N do handles[i] = loop:call_later(delays[i], cb) end
local t1 = loop:time()
for i = 1, N do handles[i]:cancel() end
local t2 = loop:time()
lasync.sleep(0)
local dt = loop:time() - t0
assert(fired == 0, "cancelled timers fired: " .. fired)
local peak = B.peak_rss_kb()
B.result("RESULT workload=timers peer=lasync n=%d seconds=%.6f rate=%.0f rss_kb=%d base_kb=%d bytes_per_timer=%.0f create_s=%.6f cancel_s=%.6f",
  N, dt, N / dt, peak, base, (peak - base) * 1024 / N, t1 - t0, t2 - t1)
