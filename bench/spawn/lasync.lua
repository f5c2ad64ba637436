-- spawn: N tasks, each lasync.sleep(0) once and returns its index; gather;
-- check the sum. Run as `lasync spawn/lasync.lua [N]`: the file is the main task.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local N = tonumber(arg and arg[1]) or 200000

local function work(i)
  lasync.sleep(0)
  return i
end

local t0 = B.now()
local tasks = {}
for i = 1, N do tasks[i] = lasync.spawn(work, i - 1) end
local res = lasync.gather(tasks)
local dt = B.now() - t0
local s = 0
for i = 1, N do s = s + res[i] end
assert(s == N * (N - 1) // 2, "bad sum " .. tostring(s))
B.result("RESULT workload=spawn peer=lasync n=%d seconds=%.6f rate=%.0f rss_kb=%d",
  N, dt, N / dt, B.peak_rss_kb())
