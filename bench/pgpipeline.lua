-- bench/pgpipeline.lua: lasync.pg's pipelined against serialized queries
-- (docs/internals.md "PostgreSQL" holds the numbers). Starts a throwaway
-- cluster (spec/pg_server.lua) with its server pinned to CPU 1, then for
-- each layout (1 connection x 10 tasks, 10 connections x 10 tasks) and
-- each mode (pipeline = true, false) runs `SELECT $1::int` from every task
-- for SECS seconds, RUNS times, interleaved, and prints the medians in
-- queries per second. Run the client on CPU 0:
--   taskset -c 0 build/lasync bench/pgpipeline.lua [SECS [RUNS]]
package.path = "spec/?.lua;" .. package.path
local pg_server = require "pg_server"
local lasync = require "lasync"
local pg = require "lasync.pg"

local secs = tonumber(arg[1]) or 2
local runs = tonumber(arg[2]) or 3
local srv = assert(pg_server.start())
local pidf = io.open(srv.data .. "/postmaster.pid")
local pid = pidf:read("l")
pidf:close()
-- backends forked later inherit the postmaster's CPU
os.execute("taskset -a -p -c 1 " .. pid .. " >/dev/null")

local function measure(nconn, ntasks, pipeline)
  local count = 0
  lasync.run(function()
    local conns = {}
    for i = 1, nconn do
      conns[i] = pg.connect(srv.dsn, { pipeline = pipeline })
      conns[i]:fetchval("SELECT $1::int", 0) -- prepared before timing
    end
    local stop = false
    local tasks = {}
    for i = 1, nconn do
      for j = 1, ntasks do
        local c = conns[i]
        tasks[#tasks + 1] = lasync.spawn(function()
          local n = 0
          while not stop do
            assert(c:fetchval("SELECT $1::int", j) == j)
            n = n + 1
          end
          count = count + n
        end)
      end
    end
    lasync.sleep(secs)
    stop = true
    lasync.gather(tasks)
    for _, c in ipairs(conns) do c:close() end
  end)
  return count / secs
end

local layouts = { { 1, 10 }, { 10, 10 } }
local results = {}
for _ = 1, runs do
  for _, l in ipairs(layouts) do
    for _, mode in ipairs { true, false } do
      local key = ("%dx%d %s"):format(l[1], l[2],
        mode and "pipelined" or "serialized")
      results[key] = results[key] or {}
      table.insert(results[key], measure(l[1], l[2], mode))
    end
  end
end
srv.stop()
local keys = {}
for k in pairs(results) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do
  local r = results[k]
  table.sort(r)
  local all = {}
  for i, v in ipairs(r) do all[i] = ("%.0f"):format(v) end
  print(("%-24s median %8.0f q/s   (runs: %s)"):format(k, r[(#r + 1) // 2],
    table.concat(all, " ")))
end
