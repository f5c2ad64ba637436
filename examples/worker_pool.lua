-- worker_pool.lua: a bounded worker pool with asyncio.Semaphore.
--
-- Ports the asyncio idiom `async with sem: ...` that caps how many jobs
-- run at once: every job is a task from the start, but each one must hold
-- one of the semaphore's 3 permits while it works (sem:with(fn) acquires,
-- runs fn and releases, even on errors). Waiting jobs get a permit first
-- in, first out, so they start in the order they were created.
-- Run: build/lasync examples/worker_pool.lua
-- Expected output (about 0.4 s):
--   job 1 starts (1 running)
--   job 2 starts (2 running)
--   job 3 starts (3 running)
--   job 4 starts (3 running)
--   job 5 starts (3 running)
--   job 6 starts (3 running)
--   job 7 starts (3 running)
--   job 8 starts (3 running)
--   results: 1 4 9 16 25 36 49 64
--   8 jobs in 0.4 s (1.0 s one after the other), peak concurrency 3 (limit 3)

local LIMIT = 3
local durations = { 0.1, 0.15, 0.2, 0.12, 0.1, 0.15, 0.1, 0.12 }

local loop = lasync.get_running_loop()
local start = loop:time()
local sem = lasync.Semaphore(LIMIT)
local running, peak = 0, 0

local function job(i)
  return sem:with(function()             -- async with sem:
    running = running + 1
    peak = math.max(peak, running)
    print(("job %d starts (%d running)"):format(i, running))
    lasync.sleep(durations[i])           -- the work
    running = running - 1
    return i * i
  end)
end

-- Create every job at once; the semaphore, not the caller, does the
-- throttling. gather with a list returns a table {r1, ..., rn, n = n}.
local jobs = {}
for i = 1, #durations do
  jobs[i] = lasync.spawn(job, i)
end
local results = lasync.gather(jobs)
print("results: " .. table.concat(results, " "))

local sequential = 0
for _, d in ipairs(durations) do sequential = sequential + d end
print(("%d jobs in %.1f s (%.1f s one after the other), peak concurrency %d"
  .. " (limit %d)"):format(#jobs, loop:time() - start, sequential, peak,
  LIMIT))
assert(peak <= LIMIT and sem:value() == LIMIT)
