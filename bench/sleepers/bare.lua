-- sleepers reference "bare coroutine": the floor any runtime that gives each
-- sleeper a Lua 5.4 coroutine pays. N coroutines are created and resumed to
-- their first yield (the point where a task arms its sleep), with the same
-- LCG delays as every peer; plain Lua has no timers, so the run is not
-- slept: seconds = that start-up + the longest delay, the earliest moment
-- the last sleeper could wake. A task runtime cannot beat this wall time
-- (the sleepers target of 1.1 s is below it on a 2-vCPU machine whose
-- start-up takes 0.15-0.2 s: see bench/README.md, "Reading the targets").
local ok, uv = pcall(require, "luv")
local now, clock = os.clock, "cpu"
if ok then now, clock = function() return uv.hrtime() / 1e9 end, "hrtime" end
local N = tonumber(arg[1]) or 100000
local create, resume, yield = coroutine.create, coroutine.resume,
    coroutine.yield

local function sleeper(ms)
  yield(ms) -- here a task would sleep
  return ms
end

local function status_kb(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s+(%d+)")
    if v then return tonumber(v) end
  end
  return -1
end

local delays, maxd, x = {}, 0, 42 -- Park-Miller, seed 42, as every peer
for i = 1, N do
  x = (x * 16807) % 2147483647
  delays[i] = x % 1001
  if delays[i] > maxd then maxd = delays[i] end
end
local base = status_kb("VmRSS")
local t0 = now()
local cos = {}
for i = 1, N do cos[i] = create(sleeper) end
for i = 1, N do assert(resume(cos[i], delays[i])) end
local startup = now() - t0
local peak = status_kb("VmHWM")
local dt = startup + maxd / 1000
io.write(string.format("RESULT workload=sleepers peer=bare n=%d seconds=%.6f rate=%.0f rss_kb=%d base_kb=%d bytes_per_task=%.0f max_delay_ms=%d startup=%.6f clock=%s\n",
  N, dt, N / dt, peak, base, (peak - base) * 1024 / N, maxd, startup, clock))
