-- bench/handoff: the scheduler's hand-off cost against the bare-coroutine
-- floor, measured in ONE warm process. bench/run.sh runs every program in a
-- fresh process, where first-touching the heap (page faults) dominates the
-- bare side; here each workload runs ROUNDS times, bare and lasync
-- alternately, after a warm-up round that faults the heap in, and the best
-- and median rate of each are kept.
--
-- usage: lasync bench/handoff/handoff.lua [ROUNDS [SCALE]]
--   ROUNDS (default 5) rounds per workload and side; SCALE (default 1)
--   multiplies the sizes (spawn 200k tasks, pingpong and qpingpong 500k
--   round trips). Prints one RESULT line per workload and side (median and
--   best rate) and a table of bare/lasync ratios (lower is better; issue 10's
--   targets: spawn <= 2.0, pingpong <= 2.0, qpingpong <= 1.5).
-- usage: lasync bench/handoff/handoff.lua once WORKLOAD SIDE N
--   runs one workload once on one side with size N, untimed: for
--   instruction counts (bench/handoff/callgrind.sh).
local lasync = rawget(_G, "lasync") or require "lasync"

local ONCE = arg and arg[1] == "once"
local ROUNDS = tonumber(arg and arg[1]) or 5
local SCALE = tonumber(arg and arg[2]) or 1
local create, resume, yield = coroutine.create, coroutine.resume,
    coroutine.yield

local function now() return lasync.get_running_loop():time() end

-- {======================================================================
-- The workloads: each returns the number of operations it did; the bare
-- side is plain Lua 5.4 coroutines resumed by a Lua loop (the floor).
-- =======================================================================

local W = {}

W.spawn = { n = 200000 }
function W.spawn.bare(n)
  local function work(i) yield() return i end
  local cos, s = {}, 0
  for i = 1, n do cos[i] = create(work) end
  for i = 1, n do resume(cos[i], i) end
  for i = 1, n do
    local _, v = resume(cos[i])
    s = s + v
  end
  assert(s == n * (n + 1) // 2)
end
function W.spawn.lasync(n)
  local function work(i) lasync.sleep(0) return i end
  local tasks, s = {}, 0
  for i = 1, n do tasks[i] = lasync.spawn(work, i) end
  local res = lasync.gather(tasks)
  for i = 1, n do s = s + res[i] end
  assert(s == n * (n + 1) // 2)
end

W.pingpong = { n = 500000 }
function W.pingpong.bare(n)
  local box
  local ping = create(function()
    local c = 0
    for _ = 1, n do box = c; yield(); c = box + 1 end
    return c
  end)
  local pong = create(function()
    for _ = 1, n do box = box + 1; yield() end
  end)
  for _ = 1, n do resume(ping); resume(pong) end
  local _, c = resume(ping)
  assert(c == 2 * n)
end
function W.pingpong.lasync(n)
  local inbox = lasync.Future()
  local function ping()
    local c = 0
    for _ = 1, n do
      local reply = lasync.Future()
      inbox:set_result(c, reply)
      c = reply:await() + 1
    end
    return c
  end
  local function pong()
    for _ = 1, n do
      local v, reply = inbox:await()
      inbox = lasync.Future()
      reply:set_result(v + 1)
    end
  end
  local c = lasync.gather(lasync.spawn(ping), lasync.spawn(pong))
  assert(c == 2 * n)
end

W.qpingpong = { n = 500000 }
W.qpingpong.bare = W.pingpong.bare -- the same floor: two switches each way
function W.qpingpong.lasync(n)
  local q1, q2 = lasync.Queue(), lasync.Queue()
  local function ping()
    local c = 0
    for _ = 1, n do q1:put(c); c = q2:get() + 1 end
    return c
  end
  local function pong()
    for _ = 1, n do q2:put(q1:get() + 1) end
  end
  local c = lasync.gather(lasync.spawn(ping), lasync.spawn(pong))
  assert(c == 2 * n)
end

-- }======================================================================

if ONCE then
  local w = assert(W[arg[2]], "unknown workload")
  assert(w[arg[3]], "unknown side")(assert(tonumber(arg[4]), "N"))
  return
end

local function timed(fn, n)
  collectgarbage()
  collectgarbage()
  local t0 = now()
  fn(n)
  return now() - t0
end

local function median(xs)
  local s = { table.unpack(xs) }
  table.sort(s)
  local m = #s // 2
  return #s % 2 == 1 and s[m + 1] or (s[m] + s[m + 1]) / 2
end

local order = { "spawn", "pingpong", "qpingpong" }
local rows = {}
for _, name in ipairs(order) do
  local w = W[name]
  local n = math.floor(w.n * SCALE)
  timed(w.bare, n) -- warm-up: fault the heap in for both sides
  timed(w.lasync, n)
  local rates = { bare = {}, lasync = {} }
  for _ = 1, ROUNDS do
    for _, side in ipairs { "bare", "lasync" } do
      table.insert(rates[side], n / timed(w[side], n))
    end
  end
  local row = { name = name }
  for _, side in ipairs { "bare", "lasync" } do
    row[side] = median(rates[side])
    row[side .. "_best"] = math.max(table.unpack(rates[side]))
    io.write(("RESULT workload=handoff-%s peer=%s n=%d rounds=%d " ..
      "median_rate=%.0f best_rate=%.0f\n"):format(name, side, n, ROUNDS,
      row[side], row[side .. "_best"]))
  end
  rows[#rows + 1] = row
end

io.write("\nworkload     bare (median/s)  lasync (median/s)  bare/lasync " ..
  "(median, best)\n")
for _, r in ipairs(rows) do
  io.write(("%-12s %15.0f  %17.0f  %5.2f  %5.2f\n"):format(r.name, r.bare,
    r.lasync, r.bare / r.lasync, r.bare_best / r.lasync_best))
end
