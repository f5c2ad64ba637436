-- spawn reference "bare coroutine": plain Lua 5.4, no event loop. N coroutines
-- are all created, each resumed to its yield (the sleep(0) point), then each
-- resumed to finish and return its index; check the sum. This is the floor a
-- coroutine-based task runtime builds on (target: lasync spawn within 3x).
-- Wall clock from luv's uv.hrtime when lua-luv is installed, else os.clock
-- (CPU time; equal to wall time for this CPU-bound loop on a pinned core).
local ok, uv = pcall(require, "luv")
local now, clock = os.clock, "cpu"
if ok then now, clock = function() return uv.hrtime() / 1e9 end, "hrtime" end
local N = tonumber(arg[1]) or 200000
local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield

local function work(i)
  yield()
  return i
end

local function peak_rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmHWM:%s+(%d+)")
    if v then return tonumber(v) end
  end
  return -1
end

local t0 = now()
local cos = {}
for i = 1, N do cos[i] = create(work) end
for i = 1, N do assert(resume(cos[i], i - 1)) end
local s = 0
for i = 1, N do
  local _, v = resume(cos[i])
  s = s + v
end
local dt = now() - t0
assert(s == N * (N - 1) // 2, "bad sum " .. tostring(s))
io.write(string.format("RESULT workload=spawn peer=bare n=%d seconds=%.6f rate=%.0f rss_kb=%d clock=%s\n",
  N, dt, N / dt, peak_rss_kb(), clock))
