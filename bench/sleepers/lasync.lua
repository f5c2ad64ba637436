-- sleepers: N tasks each lasync.sleep a pseudo-random 0..1000 ms (Park-Miller
-- LCG, seed 42, same as every peer); gather; wall seconds (ideal ~1.0), peak
-- RSS, bytes/task = (VmHWM - VmRSS before creating the tasks) / N.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local N = tonumber(arg and arg[1]) or 100000

local function sleeper(ms) lasync.sleep(ms / 1000) end

local delays, maxd = B.lcg(N, 1001), 0
for i = 1, N do if delays[i] > maxd then maxd = delays[i] end end
local base = B.rss_kb()
local t0 = B.now()
local tasks = {}
for i = 1, N do tasks[i] = lasync.spawn(sleeper, delays[i]) end
lasync.gather(tasks)
local dt = B.now() - t0
local peak = B.peak_rss_kb()
B.result("RESULT workload=sleepers peer=lasync n=%d seconds=%.6f rate=%.0f rss_kb=%d base_kb=%d bytes_per_task=%.0f max_delay_ms=%d",
  N, dt, N / dt, peak, base, (peak - base) * 1024 / N, maxd)
