-- qpingpong reference "bare coroutine": plain Lua 5.4, no event loop, no
-- allocation. Two coroutines pass a counter through a shared variable,
-- resumed alternately by a loop: the floor any Lua 5.4 coroutine runtime
-- pays for a round trip (two switches in each direction).
-- (A copy of ../pingpong/bare.lua with the workload name changed.)
local resume, yield = coroutine.resume, coroutine.yield
local N = tonumber(arg[1]) or 500000
local ok, uv = pcall(require, "luv")
local now, clock = os.clock, "cpu"
if ok then now, clock = function() return uv.hrtime() / 1e9 end, "hrtime" end

local box
local ping = coroutine.create(function()
  local c = 0
  for _ = 1, N do
    box = c
    yield()
    c = box + 1
  end
  return c
end)
local pong = coroutine.create(function()
  for _ = 1, N do
    box = box + 1
    yield()
  end
end)

local t0 = now()
for _ = 1, N do
  resume(ping)
  resume(pong)
end
local _, c = resume(ping)
local dt = now() - t0
assert(c == 2 * N, "bad counter " .. tostring(c))
local rss = 0
for line in io.lines("/proc/self/status") do
  rss = tonumber(line:match("^VmHWM:%s+(%d+)")) or rss
end
io.write(string.format("RESULT workload=qpingpong peer=bare n=%d seconds=%.6f rate=%.0f rss_kb=%d clock=%s\n",
  N, dt, N / dt, rss, clock))
