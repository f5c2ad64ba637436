-- bench/soak.lua: a soak test for lasync (Linux: it reads /proc).
--
-- Three parts; (b) runs first, on a fresh heap (after (a) the heap is large
-- enough to hide any growth).
-- (b) CYCLES (default 100,000) connect / transfer / close cycles in this
--     process, 100 at a time: the client sends 1 KiB, the server echoes it
--     and closes (so TIME_WAIT stays on the server side and the client's
--     ephemeral ports are free again), the client checks it. The open fds
--     (/proc/<pid>/fd) and the RSS (VmRSS) are taken at the start, after a
--     warm-up of CYCLES/5 cycles, at checkpoints, and at the end after a
--     full collection: the fds must come back to the start, the RSS to the
--     warm-up level (+2 MiB, which a leak of 21 bytes per cycle exceeds).
--     The soak runs a full collection every 100 cycles (--gc default:
--     never; --gc N: every N): a closed stream keeps its 64 KiB read buffer
--     until its Lua objects are collected, memory that Lua's collector
--     does not count, so with the default pacing the RSS follows the amount
--     of uncollected garbage (it wanders up to about 15 MB), which would
--     hide a leak. (Under AddressSanitizer the RSS check means nothing.)
-- (a) CONNS (default 10,000) concurrent TCP connections to one lasync
--     server on loopback: a child lasync process (this script with
--     --client) opens them all, at most 256 connects in flight (a burst
--     overflows the listen backlog, and a dropped SYN costs a 1 s retry);
--     they are held idle for a second while the server reports how many it
--     holds, its RSS and its fds; then every connection sends a request and
--     checks its reply; then each says bye and the server closes it.
--     Each process needs about CONNS + 100 file descriptors.
-- (c) ROUNDS (default 500) of each kind of API cycle, after a warm-up of
--     a fifth as many: tasks created and cancelled; subprocesses spawned,
--     read and waited for (ROUNDS/10); files opened, written, read and
--     closed (ROUNDS/2); connect/transfer/close; queue put/get with a get
--     cancelled while it waits; timers (call_later + cancel, a short sleep,
--     an expiring timeout; ROUNDS/5); to_thread calls. After each kind the
--     open fds, lasync._stats().anchors (pending tasks and callbacks) and
--     the RSS (+2 MiB; not with --no-rss, for sanitizer builds) must be
--     back where they were after its warm-up.
--     About 1.5 s with the default (`build/lasync bench/soak.lua 0 0`).
--
-- usage: bench/soak.sh [CONNS [CYCLES]] [--gc default|N] [--api ROUNDS]
--          (raises `ulimit -n` first, then runs this with build/lasync)
--        build/lasync bench/soak.lua [CONNS [CYCLES]] [--gc default|N]
--          [--api ROUNDS] [--no-rss]
--        CONNS, CYCLES or ROUNDS 0 skips that part. ctest runs
--        `soak.small`: 100 connections and 200 rounds (no (b): its RSS
--        check needs many cycles to mean anything).
-- Output: measurements and PASS/FAIL lines; exit status 0 if all PASS,
-- 1 if any FAIL, 2 if the fd limit is too low for CONNS (the message says
-- what to run instead). Takes about 10 s with the defaults.
--
-- Example (2 vCPUs, loopback, RelWithDebInfo build):
--   (b) 100000 connect/transfer/close cycles, 100 at a time, a full ...
--     start:   13 fds, RSS 2.9 MiB
--     warm-up: 20000 cycles, 14 fds, RSS 11.4 MiB
--     ...
--     end:     13 fds, RSS 11.5 MiB (peak 11.5 MiB); 100000 cycles in 4.5 s
--              (22071 per s); 0 replies wrong, 0 errors
--   PASS (b) 100000 cycles, every reply right
--   PASS (b) fds back to the start: 13 -> 13
--   PASS (b) RSS back to the warm-up level: 11.4 MiB -> 11.5 MiB (+0.1 MiB)
--   (a) 10000 connections from a child process
--     all 10000 held by the server after 0.41 s: 27.5 MiB RSS (+16.0 MiB,
--     1.6 KiB per connection), 10014 fds
--     served 10000, then closed 10000 (at 1.88 s and 2.33 s)
--     client: 10000 connected in 0.40 s (0 failed); 10000 replies right in
--     0.48 s; 10000 closed by the server in 0.57 s
--   PASS (a) 10000 concurrent connections held at once and all served
--   PASS (a) server fds back to the start: 12 -> 12
--   soak: all PASS

local loop = lasync.get_running_loop()
local LOCAL = "127.0.0.1"

local function now() return loop:time() end

-- {======================================================================
-- The client side of (a), in a child process: soak.lua --client PORT N
-- =======================================================================

local function client_main(port, n)
  local t0 = now()
  local conns, failures = {}, {}
  local in_flight = lasync.Semaphore(256) -- a burst overflows the backlog
  local function connect(i)
    in_flight:acquire()
    local ok, r, w = pcall(lasync.open_connection, LOCAL, port)
    in_flight:release()
    if ok then
      conns[i] = { r, w }
    else
      failures[#failures + 1] = tostring(r)
    end
  end
  local tasks = {}
  for i = 1, n do tasks[i] = lasync.spawn(connect, i) end
  lasync.gather(tasks)
  local t_connect = now() - t0
  lasync.sleep(1) -- all held idle
  t0 = now()
  local right = 0
  local function request(i)
    local c = conns[i]
    if not c then return end
    local r, w = c[1], c[2]
    local ok, reply = pcall(function()
      w:write(("req %d\n"):format(i))
      return r:readline()
    end)
    if ok and reply == ("ok %d\n"):format(i) then right = right + 1 end
  end
  for i = 1, n do tasks[i] = lasync.spawn(request, i) end
  lasync.gather(tasks)
  local t_serve = now() - t0
  t0 = now()
  local closed = 0
  local function bye(i)
    local c = conns[i]
    if not c then return end
    local r, w = c[1], c[2]
    pcall(function()
      w:write("bye\n")
      if r:read() == "" then closed = closed + 1 end -- the server closed
    end)
    w:close()
  end
  for i = 1, n do tasks[i] = lasync.spawn(bye, i) end
  lasync.gather(tasks)
  print(("client: %d connected in %.2f s (%d failed%s); %d replies right " ..
    "in %.2f s; %d closed by the server in %.2f s"):format(n - #failures,
    t_connect, #failures, failures[1] and ": " .. failures[1] or "", right,
    t_serve, closed, now() - t0))
  os.exit((#failures == 0 and right == n and closed == n) and 0 or 1)
end

if arg[1] == "--client" then
  return client_main(tonumber(arg[2]), tonumber(arg[3]))
end

-- }======================================================================

-- {======================================================================
-- Measurements
-- =======================================================================

local function proc_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end
local PID = proc_pid()

local function count_fds() -- our open descriptors (scandir's is one)
  local n = 0
  for _ in lasync.fs.scandir("/proc/" .. PID .. "/fd") do n = n + 1 end
  return n - 1
end

local function slurp(path) -- read whole: io.lines left early keeps its fd
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function status_kb(field) -- a field of /proc/self/status, in KiB
  return tonumber(slurp("/proc/self/status"):match("\n" .. field ..
    ":%s*(%d+)"))
end

local function rss() return status_kb("VmRSS") end
local function mib(kb) return ("%.1f MiB"):format(kb / 1024) end

local function fd_limit() -- the soft and hard limits
  local soft, hard = slurp("/proc/self/limits"):match(
    "\nMax open files%s+(%S+)%s+(%S+)")
  return tonumber(soft) or math.huge, tonumber(hard) or math.huge
end

local failed = 0
local function verdict(ok, what)
  print((ok and "PASS " or "FAIL ") .. what)
  if not ok then failed = failed + 1 end
end

local function until_true(cond, limit, what)
  local ok = pcall(lasync.wait_for, function()
    while not cond() do lasync.sleep(0.01) end
  end, limit)
  if not ok then print("  timed out waiting for " .. what) end
  return ok
end

-- }======================================================================

-- {======================================================================
-- (a) CONNS concurrent connections
-- =======================================================================

local function soak_concurrent(n)
  local live, peak, served, closed = 0, 0, 0, 0
  local fds0, rss0 = count_fds(), rss()
  local srv = lasync.start_server(function(r, w)
    live = live + 1
    if live > peak then peak = live end
    local _ <close> = setmetatable({}, { __close = function()
      live = live - 1
      w:close()
    end })
    local line = r:readline() -- held idle until the client speaks
    local i = line:match("^req (%d+)\n$")
    if not i then return end
    served = served + 1
    w:write(("ok %s\n"):format(i))
    if r:readline() == "bye\n" then closed = closed + 1 end
  end, LOCAL, 0, { backlog = 4096 })
  local _, port = srv:address()
  local cmd = ("%s %s --client %d %d 2>&1"):format(arg[-1] or "lasync",
    arg[0], port, n)
  local child = assert(io.popen(cmd)) -- runs alongside; read at the end
  print(("(a) %d connections from a child process"):format(n))
  local t0 = now()
  local held = until_true(function() return live >= n end, 60,
    "the connections")
  local t_held = now() - t0
  local fds_held, rss_held = count_fds(), rss()
  print(("  all %d held by the server after %.2f s: %s RSS (+%s, %.1f KiB " ..
    "per connection), %d fds"):format(live, t_held, mib(rss_held),
    mib(rss_held - rss0), (rss_held - rss0) / n, fds_held))
  local all_served = held and until_true(function() return served >= n end,
    60, "the requests")
  local t_served = now() - t0
  local all_closed = all_served and until_true(function()
    return live == 0
  end, 60, "the connections to close")
  print(("  served %d, then closed %d (at %.2f s and %.2f s)"):format(served,
    closed, t_served, now() - t0))
  local out = child:read("a")
  local ok, how, code = child:close()
  io.write("  ", out)
  srv:close()
  srv:wait_closed()
  lasync.sleep(0.05)
  verdict(held and all_served and all_closed and peak == n and served == n
    and closed == n and ok,
    ("(a) %d concurrent connections held at once and all served"):format(n)
    .. (ok and "" or (" (client: %s %s)"):format(how, code)))
  local fds1 = count_fds()
  verdict(fds1 <= fds0, ("(a) server fds back to the start: %d -> %d")
    :format(fds0, fds1))
end

-- }======================================================================

-- {======================================================================
-- (b) CYCLES connect / transfer / close cycles
-- =======================================================================

local function soak_cycles(total, gc_every)
  local WORKERS = 100
  local echoed = 0
  local srv = lasync.start_server(function(r, w)
    local line = r:readline()
    w:write(line)
    w:close() -- the server closes first: TIME_WAIT on its side
    echoed = echoed + 1
  end, LOCAL, 0, { backlog = 1024 })
  local host, port = srv:address()
  local filler = string.rep("z", 1000)
  local done, bad, errors = 0, 0, {}
  local function worker(cycles)
    for _ = 1, cycles do
      local ok, err = pcall(function()
        local r, w = lasync.open_connection(host, port)
        local msg = ("%08d %s\n"):format(done, filler)
        w:write(msg)
        local reply = r:read()
        w:close()
        if reply ~= msg then bad = bad + 1 end
      end)
      if not ok then errors[#errors + 1] = tostring(err) end
      done = done + 1
      if gc_every and done % gc_every == 0 then collectgarbage() end
    end
  end
  local function run_cycles(cycles)
    local tasks = {}
    for i = 1, WORKERS do
      tasks[i] = lasync.spawn(worker, cycles // WORKERS +
        (i <= cycles % WORKERS and 1 or 0))
    end
    lasync.gather(tasks)
  end
  local function settle() -- closes finish, garbage goes
    lasync.sleep(0.05)
    collectgarbage()
    collectgarbage()
    lasync.sleep(0.01)
  end
  settle()
  local fds0, rss0 = count_fds(), rss()
  local warmup = math.max(total // 5, 1000)
  print(("(b) %d connect/transfer/close cycles, %d at a time, %s"):format(
    total, WORKERS, gc_every and ("a full collection every %d"):format(
    gc_every) or "default garbage collection"))
  print(("  start:   %d fds, RSS %s"):format(fds0, mib(rss0)))
  run_cycles(warmup)
  settle()
  local rss_w = rss()
  print(("  warm-up: %d cycles, %d fds, RSS %s"):format(warmup, count_fds(),
    mib(rss_w)))
  local t0 = now()
  local step = total // 5
  for k = 1, 5 do
    run_cycles(k < 5 and step or total - 4 * step)
    print(("  %6d:  %d fds, RSS %s, Lua heap %d KiB, %.1f s"):format(
      k < 5 and k * step or total, count_fds(), mib(rss()),
      math.floor(collectgarbage("count")), now() - t0))
  end
  local elapsed = now() - t0
  settle()
  local fds1, rss1 = count_fds(), rss()
  print(("  end:     %d fds, RSS %s (peak %s); %d cycles in %.1f s (%.0f " ..
    "per s); %d replies wrong, %d errors%s"):format(fds1, mib(rss1),
    mib(status_kb("VmHWM")), total, elapsed, total / elapsed, bad, #errors,
    errors[1] and " (first: " .. errors[1] .. ")" or ""))
  srv:close()
  srv:wait_closed()
  verdict(bad == 0 and #errors == 0 and echoed == total + warmup,
    ("(b) %d cycles, every reply right"):format(total))
  verdict(fds1 == fds0, ("(b) fds back to the start: %d -> %d"):format(fds0,
    fds1))
  verdict(rss1 <= rss_w + 2048, ("(b) RSS back to the warm-up level: %s " ..
    "-> %s (%+.1f MiB)"):format(mib(rss_w), mib(rss1), (rss1 - rss_w) / 1024))
end

-- }======================================================================

-- {======================================================================
-- (c) ROUNDS of every kind of API cycle
-- =======================================================================

-- One kind of cycle per entry: name, and a function doing k cycles.
local function api_cycles(dir)
  local srv = lasync.start_server(function(r, w)
    w:write(r:readline())
    w:close()
  end, LOCAL, 0)
  local host, port = srv:address()
  local path = dir .. "/soak.txt"
  local kinds = {
    { "task create/cancel", function(k)
      local tasks = {}
      for i = 1, k do tasks[i] = lasync.spawn(lasync.sleep, 60) end
      lasync.sleep(0)
      for i = 1, k do tasks[i]:cancel() end
      for i = 1, k do pcall(tasks[i].await, tasks[i]) end
    end },
    { "spawn/wait (subprocess)", function(k)
      local procs = {}
      for i = 1, k do
        procs[i] = lasync.subprocess.exec("echo", { "x" }, { stdout = "pipe" })
      end
      for i = 1, k do
        assert(procs[i].stdout:read() == "x\n")
        assert(procs[i]:wait() == 0)
      end
    end, 10 },
    { "file open/write/read/close", function(k)
      for i = 1, k do
        local f = lasync.fs.open(path, "w")
        f:write("line " .. i .. "\n")
        f:close()
        local g <close> = lasync.fs.open(path)
        assert(g:read_all() == "line " .. i .. "\n")
      end
    end, 2 },
    { "connect/transfer/close", function(k)
      for _ = 1, k do
        local r, w = lasync.open_connection(host, port)
        w:write("ping\n")
        assert(r:readline() == "ping\n")
        w:close()
      end
    end },
    { "queue put/get (and a cancelled get)", function(k)
      local q = lasync.Queue(4)
      local consumer = lasync.spawn(function()
        for _ = 1, k do q:get() end
      end)
      for i = 1, k do q:put(i) end
      consumer:await()
      local waiting = lasync.spawn(q.get, q)
      lasync.sleep(0)
      waiting:cancel()
      pcall(waiting.await, waiting)
    end },
    { "timers (call_later/cancel, sleep, expiring timeout)", function(k)
      local loop = lasync.get_running_loop()
      for _ = 1, k do
        loop:call_later(60, function() end):cancel()
        lasync.sleep(0.0001)
        pcall(lasync.timeout, 0.0001, lasync.sleep, 60)
      end
    end, 5 },
    { "to_thread", function(k)
      for _ = 1, k do
        assert(lasync.to_thread(function(x) return x + 1 end, 1):await() == 2)
      end
    end },
  }
  local function close()
    srv:close()
    srv:wait_closed()
    os.remove(path)
  end
  return kinds, close
end

local check_rss = true -- --no-rss: under a sanitizer RSS means nothing

local function soak_api(rounds)
  local dir = lasync.fs.mkdtemp("/tmp/lasync-soak-XXXXXX")
  local kinds, close = api_cycles(dir)
  local function settle() -- until closes have finished: the fds are steady
    local last, steady = -1, 0
    for _ = 1, 100 do
      collectgarbage()
      collectgarbage()
      lasync.sleep(0.01)
      local n = count_fds()
      steady = n == last and steady + 1 or 0
      if steady == 2 then return end
      last = n
    end
  end
  print(("(c) %d rounds of each API cycle"):format(rounds))
  for _, kind in ipairs(kinds) do
    local name, cycle, scale = kind[1], kind[2], kind[3] or 1
    local n = math.max(rounds // scale, 1)
    cycle(math.max(n // 5, 1)) -- warm-up
    settle()
    local fds0, rss0, anchors0 = count_fds(), rss(), lasync._stats().anchors
    local t0 = now()
    local ok, err = pcall(cycle, n)
    settle()
    -- a close may still be in flight on the thread pool
    for _ = 1, 50 do
      if count_fds() <= fds0 then break end
      lasync.sleep(0.01)
    end
    local fds1, rss1, anchors1 = count_fds(), rss(), lasync._stats().anchors
    print(("  %-52s %5d in %.2f s: fds %d -> %d, anchors %d -> %d, RSS %s " ..
      "-> %s"):format(name, n, now() - t0, fds0, fds1, anchors0, anchors1,
      mib(rss0), mib(rss1)))
    -- fds may end lower: a close in flight at the start (a file closed by
    -- <close> finishes on the thread pool) has finished since
    verdict(ok and fds1 <= fds0 and anchors1 == anchors0 and
      (rss1 <= rss0 + 2048 or not check_rss),
      ("(c) %s: fds, anchors and RSS back%s")
      :format(name, ok and "" or " (error: " .. tostring(err) .. ")"))
  end
  close()
  lasync.fs.rmdir(dir)
end

-- }======================================================================

local args, gc_every, rounds = {}, 100, 500
do
  local i = 1
  while arg[i] do
    if arg[i] == "--gc" then
      gc_every = arg[i + 1] ~= "default" and tonumber(arg[i + 1]) or nil
      i = i + 2
    elseif arg[i] == "--no-rss" then
      check_rss = false
      i = i + 1
    elseif arg[i] == "--api" then
      rounds = tonumber(arg[i + 1]) or error("usage: --api ROUNDS", 0)
      i = i + 2
    else
      args[#args + 1] = tonumber(arg[i]) or error("usage: bench/soak.lua " ..
        "[CONNS [CYCLES]] [--gc default|N] [--api ROUNDS] [--no-rss]", 0)
      i = i + 1
    end
  end
end
local conns, cycles = args[1] or 10000, args[2] or 100000

if conns > 0 then
  local soft, hard = fd_limit()
  if soft < conns + 100 then
    io.stderr:write(("soak: the open-file limit is %d (hard limit %s); " ..
      "%d connections need about %d fds in each of the two processes.\n" ..
      "Run bench/soak.sh (it raises `ulimit -n`), or `ulimit -n %d` first" ..
      "%s, or ask for fewer connections: bench/soak.lua %d.\n"):format(soft,
      tostring(hard), conns, conns + 100, conns + 100,
      hard < conns + 100 and " after raising the hard limit (as root)" or "",
      math.max(soft - 100, 0)))
    os.exit(2)
  end
end
-- (b) first, on a fresh heap: after (a) the heap is large enough to hide
-- any growth
if cycles > 0 then soak_cycles(cycles, gc_every) end
if rounds > 0 then soak_api(rounds) end
if conns > 0 then soak_concurrent(conns) end
print(failed == 0 and "soak: all PASS" or ("soak: %d FAIL"):format(failed))
if failed > 0 then os.exit(1) end
