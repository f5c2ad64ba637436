-- Helpers shared by the lasync bench programs: wall clock from the running
-- loop, RSS from /proc/self/status, the RESULT line, the sleepers/timers LCG.
local lasync = rawget(_G, "lasync") or require "lasync"

local B = {}

function B.now() return lasync.get_running_loop():time() end

local function status_kb(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s+(%d+)")
    if v then return tonumber(v) end
  end
  return -1
end
function B.peak_rss_kb() return status_kb("VmHWM") end
function B.rss_kb() return status_kb("VmRSS") end

function B.result(fmt, ...)
  io.write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

-- Park-Miller minimal standard LCG, seed 42: x = 16807*x mod (2^31-1);
-- returns n values of x mod m (+ add), as every peer computes them.
function B.lcg(n, m, add)
  local x, out = 42, {}
  for i = 1, n do
    x = (x * 16807) % 2147483647
    out[i] = x % m + (add or 0)
  end
  return out
end

return B
