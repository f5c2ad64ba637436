-- pgquery / pgfetch, the lasync peer: a lasync.pg pool of 10 connections
-- (min = max = 10), all 10 acquired at the start, each shared by 10 tasks
-- (100 concurrent tasks) that loop on their connection for SECONDS (each
-- task starts no query past the deadline, and the queries of the last round
-- count), after WARMUP seconds of the same that are not counted; with N,
-- until N queries are done instead, after N / 10 not counted (smoke
-- runs). One connection runs its tasks' queries one at a time (docs/api.md
-- "Connection"), or pipelined when the pool is made with `pipeline =
-- true`: with the environment variable PG_PIPELINE set, the pool gets
-- `pipeline = (PG_PIPELINE ~= "0")`; without it, no such option (the
-- pool's default). Not pool:fetchval from 100 tasks: each query would then
-- also pay the RESET ALL round trip of pool:release.
--   pgquery: `SELECT $1::int` with the task's next number; the value must
--            come back as that integer.
--   pgfetch: 100 rows (i, 'row ' || i, i * 1.5 as float8) for i from the
--            task's next number k to k + 99; every row's i is summed and
--            the last row checked whole.
-- A wrong answer raises (the run FAILs). Prints the RESULT line: queries
-- per second, client CPU seconds (os.clock), peak RSS.
-- usage: lasync lasync.lua WORKLOAD SOCKET_DIR [SECONDS [WARMUP [N]]]
local lasync = rawget(_G, "lasync") or require "lasync"
local pg = require "lasync.pg"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"

local W, HOST = arg[1], arg[2]
assert(W == "pgquery" or W == "pgfetch", "usage: lasync.lua " ..
  "pgquery|pgfetch SOCKET_DIR [SECONDS [WARMUP [N]]]")
assert(HOST, "lasync.lua: the socket directory is missing")
local T = tonumber(arg[3]) or 5
local WARM_T = tonumber(arg[4]) or 1
local N = tonumber(arg[5])
local CONNS, PER_CONN = 10, 10
local FETCH = "SELECT i, 'row ' || i AS s, i * 1.5::float8 AS f " ..
  "FROM generate_series($1::int, $1::int + 99) i"

local opts = { dsn = { host = HOST, user = "postgres", dbname = "postgres" },
  min = CONNS, max = CONNS }
local mode = "default"
local env = os.getenv("PG_PIPELINE")
if env then
  opts.pipeline = env ~= "0"
  mode = opts.pipeline and "on" or "off"
end

local one
if W == "pgquery" then
  function one(db, k)
    local v = db:fetchval("SELECT $1::int", k)
    if v ~= k then error(("pgquery: sent %d, got %s"):format(k, v)) end
  end
else
  function one(db, k)
    local rows = db:fetch(FETCH, k)
    local sum = 0
    for r = 1, #rows do sum = sum + rows[r].i end
    local last = rows[100]
    if #rows ~= 100 or sum ~= 100 * k + 4950 or last.i ~= k + 99 or
        last.s ~= "row " .. (k + 99) or last.f ~= (k + 99) * 1.5 then
      error(("pgfetch: wrong rows for %d (%d rows)"):format(k, #rows))
    end
  end
end

-- queries by CONNS * PER_CONN tasks for `secs` seconds, or n of them;
-- a task's numbers are its own. Returns how many ran.
local function batch(conns, secs, n)
  local now, deadline = B.now, B.now() + secs
  local left, done = n or math.maxinteger, 0
  local tasks = {}
  for c = 1, CONNS do
    for t = 1, PER_CONN do
      local db, k = conns[c], ((c - 1) * PER_CONN + t) * 1000000
      tasks[#tasks + 1] = lasync.spawn(function()
        while left > 0 and (n or now() < deadline) do
          left = left - 1
          k = k + 1
          one(db, k)
          done = done + 1
        end
      end)
    end
  end
  lasync.gather(tasks)
  return done
end

local pool <close> = pg.pool(opts)
local conns = {}
for c = 1, CONNS do conns[c] = pool:acquire() end
local warm = batch(conns, WARM_T, N and N // 10)
local c0, t0 = os.clock(), B.now()
local n = batch(conns, T, N)
local t1, c1 = B.now(), os.clock()
for c = 1, CONNS do pool:release(conns[c]) end
B.result("RESULT workload=%s peer=lasync n=%d seconds=%.4f rate=%.0f " ..
  "rss_kb=%d cpu_s=%.3f client_us_per_q=%.1f conns=%d tasks=%d warmup=%d " ..
  "pipeline=%s", W, n, t1 - t0, n / (t1 - t0), B.peak_rss_kb(), c1 - c0,
  (c1 - c0) * 1e6 / n, CONNS, CONNS * PER_CONN, warm, mode)
