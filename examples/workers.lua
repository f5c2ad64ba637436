-- workers.lua: CPU-bound work off the loop, in worker processes and in
-- worker threads.
--
-- 1. Processes, each with a loop of its own: the parent starts 3 lasync
--    processes running examples/worker_child.lua (lasync.subprocess.exec,
--    stdin and stdout as pipes) and talks to each over its pipes, one task
--    per worker: write a job line "primes <n>", read the result line. The
--    six jobs are dealt out round-robin; the workers compute in parallel
--    (on as many cores as there are), while the parent's loop only waits.
--    Closing a worker's stdin tells it to exit.
-- 2. A thread: lasync.to_thread runs the same kind of computation on a
--    thread of the pool while a ticker task keeps ticking every 20 ms. Run
--    inline in the task instead, it blocks the loop: the ticker stops.
--
-- The child runs on the same lasync binary as this script: $LASYNC_BIN if
-- set, else the interpreter that runs this script (arg's lowest index), else
-- "lasync" from PATH.
-- Run: build/lasync examples/workers.lua
-- Expected output (about 0.5 s):
--   job 1 (worker 1): 9592 primes below 100000
--   job 2 (worker 2): 17984 primes below 200000
--   job 3 (worker 3): 13848 primes below 150000
--   job 4 (worker 1): 12159 primes below 130000
--   job 5 (worker 2): 10453 primes below 110000
--   job 6 (worker 3): 15497 primes below 170000
--   3 workers done, exit statuses: 0 0 0
--   inline:    25997 primes below 300000; ticks meanwhile: 0 (the loop was blocked)
--   to_thread: 25997 primes below 300000; the ticker kept ticking: yes

local sp = lasync.subprocess
local WORKERS = 3
local JOBS = { 100000, 200000, 150000, 130000, 110000, 170000 }

-- the lasync binary and the child script (next to this one)
local function lasync_bin()
  local env = os.getenv("LASYNC_BIN")
  if env and env ~= "" then return env end
  local i = -1
  while arg and arg[i - 1] ~= nil do i = i - 1 end
  return arg and arg[i] or "lasync"
end
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local child = here .. "/worker_child.lua"

-- 1. worker processes ----------------------------------------------------
local results = {}

local function worker(w, jobs)
  local p = sp.exec(lasync_bin(), { child }, { stdin = "pipe", stdout = "pipe" })
  for _, j in ipairs(jobs) do
    p.stdin:write(("primes %d\n"):format(JOBS[j]))
    p.stdin:drain()
    local line = p.stdout:readline()       -- "<count>\n", "" if it died
    results[j] = { worker = w, count = assert(tonumber(line), "worker " .. w
      .. " answered " .. ("%q"):format(line)) }
  end
  p.stdin:close()                          -- end of its input: it exits
  return p:wait()
end

local mine = {}                            -- deal the jobs out round-robin
for w = 1, WORKERS do mine[w] = {} end
for j = 1, #JOBS do table.insert(mine[(j - 1) % WORKERS + 1], j) end
local tasks = {}
for w = 1, WORKERS do tasks[w] = lasync.spawn(worker, w, mine[w]) end
local statuses = lasync.gather(tasks)
for j, r in ipairs(results) do
  print(("job %d (worker %d): %d primes below %d"):format(j, r.worker, r.count, JOBS[j]))
end
print(("%d workers done, exit statuses: %s"):format(WORKERS,
  table.concat(statuses, " ", 1, statuses.n)))

-- 2. a worker thread -----------------------------------------------------
local function count_primes(n) -- no upvalues: it can cross to a pool thread
  local count = 0
  for i = 2, n - 1 do
    local prime = true
    for d = 2, math.floor(math.sqrt(i)) do
      if i % d == 0 then prime = false; break end
    end
    if prime then count = count + 1 end
  end
  return count
end

local ticks = 0
local ticker = lasync.spawn(function()
  while true do
    lasync.sleep(0.02)
    ticks = ticks + 1
  end
end)
lasync.sleep(0.05) -- the ticker is running

local before = ticks
local n = count_primes(300000)            -- on the loop thread: blocks it
print(("inline:    %d primes below 300000; ticks meanwhile: %d (the loop was blocked)")
  :format(n, ticks - before))

before = ticks
n = lasync.to_thread(count_primes, 300000):await()
print(("to_thread: %d primes below 300000; the ticker kept ticking: %s")
  :format(n, ticks - before >= 2 and "yes" or "NO (" .. (ticks - before) .. " ticks)"))
ticker:cancel()
