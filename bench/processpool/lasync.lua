-- processpool: a CPU-bound map, N jobs (default 256) of pure Lua (an LCG
-- loop of ITERS steps, about 25 ms on the reference machine), run inline
-- in this process one after the other, and by pool:map over
-- lasync.ProcessPool(WORKERS) (default 2), in alternating rounds (below).
-- The pool's workers are started (and warmed by one job each) before the
-- clock starts: RESULT rate is the pool's jobs/s, inline_rate the inline
-- one's, speedup their ratio; the checksums of both runs must agree.
-- run.sh runs it on both CPUs (taskset -c 0,1), never pinned to one: the
-- point is the second core.
-- Run as `lasync processpool/lasync.lua [N]`; WORKERS, ITERS and ROUNDS
-- (default 8) from the environment.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local N = tonumber(arg and arg[1]) or 256
local WORKERS = tonumber(os.getenv("WORKERS")) or 2
local ITERS = tonumber(os.getenv("ITERS")) or 1900000

if arg and arg[1] == "probe" then
  print(lasync.ProcessPool and "OK" or
    'SKIP reason="no lasync.ProcessPool in this build"')
  return
end

-- One job: ITERS steps of the minimal standard LCG from seed.
local function work(item)
  local x = item.seed
  for _ = 1, item.iters do x = (x * 16807) % 2147483647 end
  return x
end

local items = {}
for i = 1, N do items[i] = { seed = i, iters = ITERS } end

local pool <close> = lasync.ProcessPool(WORKERS)
local t0 = B.now()
local warm = {}
for i = 1, WORKERS do warm[i] = { seed = i, iters = 1000 } end
pool:map(work, warm) -- every worker started
local start = B.now() - t0

-- Inline and pooled work alternate in ROUNDS rounds (each N / ROUNDS
-- jobs inline, then the same jobs by pool:map), so that both see the same
-- periods of this VM's CPU speed, which drifts by up to 1.8x between
-- seconds; the speedup is the sum of the inline times over the sum of the
-- pooled ones.
local ROUNDS = math.max(1, math.min(N, tonumber(os.getenv("ROUNDS")) or 8))
local inline, pooled = {}, {}
local inline_s, pool_s = 0, 0
for r = 1, ROUNDS do
  local first, last = (r - 1) * N // ROUNDS + 1, r * N // ROUNDS
  local part = table.move(items, first, last, 1, {})
  t0 = B.now()
  for i = first, last do inline[i] = work(items[i]) end
  inline_s = inline_s + (B.now() - t0)
  t0 = B.now()
  local got = pool:map(work, part)
  pool_s = pool_s + (B.now() - t0)
  table.move(got, 1, #part, first, pooled)
end

for i = 1, N do
  assert(pooled[i] == inline[i], ("job %d: %s ~= %s"):format(i,
    tostring(pooled[i]), tostring(inline[i])))
end
B.result("RESULT workload=processpool peer=lasync n=%d seconds=%.6f " ..
  "rate=%.1f rss_kb=%d workers=%d iters=%d job_ms=%.2f inline_seconds=%.6f " ..
  "inline_rate=%.1f speedup=%.2f start_ms=%.1f rounds=%d", N, pool_s,
  N / pool_s, B.peak_rss_kb(), WORKERS, ITERS, inline_s / N * 1000, inline_s,
  N / inline_s, inline_s / pool_s, start * 1000, ROUNDS)
