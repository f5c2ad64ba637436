-- lasync -w N: the command's options, lasync.worker_id/worker_count, and
-- the supervisor with real processes: a 4-worker HTTP server on one port
-- (every worker reached, each request answered once), a worker killed
-- with SIGKILL restarted while the port keeps serving, SIGTERM stopping
-- everything with a request in flight completed, a worker dying at
-- start-up, SIGHUP's rolling restart, --worker-log, no zombies and no fds
-- leaked into workers. Every wait is bounded.
local helper = require "helper"
local lasync = helper.lasync
local sp = lasync.subprocess

local temp_script, lasync_cmd = helper.temp_script, helper.lasync_cmd

-- Collect the lines of stream r into list t until EOF.
local function collect(r, t)
  while true do
    local line = r:readline()
    if line == "" then return end
    t[#t + 1] = line:gsub("\n$", "")
  end
end

-- Whether some line of t matches the pattern.
local function has(t, pattern)
  for _, line in ipairs(t) do
    if line:match(pattern) then return line end
  end
  return nil
end

-- Start the lasync command with the argument list, and the environment
-- variables in the list env ("NAME=value") added; its output is
-- collected in s.out and s.err.
local function start(args, env)
  local file = helper.bin
  if env then -- through env(1), which then execs lasync: the same pid
    local all = {}
    for _, v in ipairs(env) do all[#all + 1] = v end
    all[#all + 1] = helper.bin
    for _, v in ipairs(args) do all[#all + 1] = v end
    file, args = "env", all
  end
  local p = sp.exec(file, args, { stdin = "null", stdout = "pipe",
    stderr = "pipe" })
  local s = { proc = p, out = {}, err = {} }
  s.readers = { lasync.create_task(collect, p.stdout, s.out),
    lasync.create_task(collect, p.stderr, s.err) }
  return s
end

-- Wait (at most `limit` seconds) for s to exit; returns its status.
local function finish(s, limit)
  local code = lasync.wait_for(function() return s.proc:wait() end,
    limit or 10)
  for _, t in ipairs(s.readers) do lasync.wait_for(t, 2) end
  return code
end

-- Stop s with SIGTERM (if it runs) and wait for it.
local function stop(s)
  if s.proc:returncode() == nil then s.proc:send_signal("SIGTERM") end
  return finish(s)
end

-- A free loopback port (there is a small window for another to take it).
local function free_port()
  local srv = lasync.start_server(function() end, "127.0.0.1", 0)
  local _, port = srv:address()
  srv:close()
  srv:wait_closed()
  return port
end

-- GET path on port with a new connection; retries only while the
-- connection is refused. Returns the status and the body.
local function get(port, path)
  for _ = 1, 500 do
    local ok, r, w = pcall(lasync.open_connection, "127.0.0.1", port)
    if ok then
      w:write("GET " .. path .. " HTTP/1.1\r\nHost: x\r\n" ..
        "Connection: close\r\n\r\n")
      local reply = r:read()
      w:close()
      return tonumber(reply:match("^HTTP/1%.1 (%d+)")),
        reply:match("\r\n\r\n(.*)$")
    end
    if not helper.is_os_error(r, "ECONNREFUSED") then error(r, 0) end
    lasync.sleep(0.01)
  end
  error("connection refused for 5 s")
end

-- The state letter of process pid ("S", "Z"...), nil once it is gone.
local function proc_state(pid)
  local h = io.open("/proc/" .. pid .. "/stat")
  if not h then return nil end
  local s = h:read("a")
  h:close()
  return s:match("^%d+ %b() (%u)")
end

-- The pids of the children of pid (read from /proc: no ps, which hangs
-- with the ASan runtime preloaded).
local function children(pid)
  local h = assert(io.open(("/proc/%d/task/%d/children"):format(pid, pid)))
  local pids = {}
  for p in h:read("a"):gmatch("%d+") do pids[#pids + 1] = tonumber(p) end
  h:close()
  return pids
end

-- fd number -> socket inode, for the sockets past stdio that pid has open
local function sockets_of(pid)
  local found = {}
  for name in lasync.fs.scandir("/proc/" .. pid .. "/fd") do
    local ok, st = pcall(lasync.fs.stat, "/proc/" .. pid .. "/fd/" .. name)
    if ok and st.type == "socket" and tonumber(name) > 2 then
      found[tonumber(name)] = st.ino
    end
  end
  return found
end

-- The socket inodes that every process of the list pids has open (past
-- its stdio).
local function common_sockets(pids)
  local count = {}
  for _, pid in ipairs(pids) do
    local seen = {}
    for _, inode in pairs(sockets_of(pid)) do
      if not seen[inode] then
        seen[inode] = true
        count[inode] = (count[inode] or 0) + 1
      end
    end
  end
  local common = {}
  for inode, n in pairs(count) do
    if n == #pids then common[#common + 1] = inode end
  end
  return common
end

local function count_fds(pid)
  local n = 0
  for _ in lasync.fs.scandir("/proc/" .. pid .. "/fd") do n = n + 1 end
  return n
end

-- The workers' HTTP server: "/" answers "id pid n" (n: the worker's
-- requests so far), "/slow" after 0.5 s, "/fds" the socket fds the
-- worker had when it started (past stdio, which are socketpairs here).
-- Prints "ready <id> <port>" once listening.
local APP = [[
local function pid()
  local h = io.open("/proc/self/stat")
  local s = h:read("a")
  h:close()
  return s:match("^%d+")
end
local sockets = {}
for fd in lasync.fs.scandir("/proc/self/fd") do
  local ok, st = pcall(lasync.fs.stat, "/proc/self/fd/" .. fd)
  if ok and st.type == "socket" and tonumber(fd) > 2 then
    sockets[#sockets + 1] = tonumber(fd)
  end
end
table.sort(sockets)
local http = lasync.http
local app = http.App()
local n = 0
app:get("/", function()
  n = n + 1
  return ("%d %s %d"):format(lasync.worker_id(), pid(), n)
end)
app:get("/slow", function()
  print("slow started")
  lasync.sleep(0.5)
  return "slow done"
end)
app:get("/fds", function() return table.concat(sockets, " ") end)
app:run { host = "127.0.0.1", port = tonumber(arg[1]),
  print = function(line)
    print("ready", lasync.worker_id(), line:match(":(%d+) "))
  end }
]]

-- Start `n` workers of APP on port (0 by default) with extra options;
-- returns s, the port and the app's path once every worker listens.
local function start_app(n, port, opts, env)
  local path = temp_script(APP)
  local args = { "-w", tostring(n) }
  for _, o in ipairs(opts or {}) do args[#args + 1] = o end
  args[#args + 1] = path
  args[#args + 1] = tostring(port or 0)
  local s = start(args, env)
  s.path = path
  helper.wait_until(function()
    local ready = 0
    for _, line in ipairs(s.out) do
      if line:match("^ready") then ready = ready + 1 end
    end
    return ready >= n or s.proc:returncode() ~= nil
  end, 8)
  assert.is_nil(s.proc:returncode(), table.concat(s.err, "\n"))
  local p = tonumber(has(s.out, "^ready\t%d+\t(%d+)"):match("(%d+)$"))
  return s, p
end

-- "id pid n" -> numbers
local function parse(body)
  local id, pid, n = body:match("^(%d+) (%d+) (%d+)$")
  return tonumber(id), tonumber(pid), tonumber(n)
end

describe("lasync -w: options", function()
  local function fails(args, msg, env)
    local code, out, err = lasync_cmd(args, nil, env)
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.are.equal(msg .. "\n", err)
  end

  it("refuses bad values before starting anything", function()
    fails("-w 0 x.lua", "lasync: -w: the number of workers must be 1 to " ..
      "1024 or 'auto' (got '0')")
    fails("-w abc x.lua", "lasync: -w: the number of workers must be 1 " ..
      "to 1024 or 'auto' (got 'abc')")
    fails("-w", "lasync: '-w' needs argument")
    fails("-w 2", "lasync: -w 2: needs a script file (workers cannot run " ..
      "the REPL or stdin)")
    fails("-w 2 -", "lasync: -w 2: needs a script file (workers cannot " ..
      "run the REPL or stdin)")
    fails("-w 2 -i x.lua", "lasync: -w 2: workers cannot run the REPL (-i)")
    fails("-w 2 --share=fork x.lua", "lasync: --share: expected " ..
      "'reuseport' or 'socket' (got 'fork')")
    fails("-w 2 --grace=-1 x.lua", "lasync: --grace: expected a number " ..
      "of seconds from 0 to 86400 (got '-1')")
    fails("--worker-log x.lua", "lasync: --share, --grace and " ..
      "--worker-log need -w (or LASYNC_WORKERS)")
    fails("x.lua", "lasync: LASYNC_WORKERS: the number of workers must " ..
      "be 1 to 1024 or 'auto' (got 'many')", "LASYNC_WORKERS=many")
  end)

  it("takes -wN and a script after --", function()
    local path = temp_script("print(lasync.worker_id(), ...)")
    local code, out, err = lasync_cmd("-w1 -- " .. path .. " -w 2")
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("1\t-w\t2\n", out)
    os.remove(path)
  end)

  it("ignores LASYNC_WORKERS without a script (-e, the REPL, stdin)",
    function()
      local code, out = lasync_cmd("-e 'print(lasync.worker_id())'", nil,
        "LASYNC_WORKERS=2")
      assert.are.equal(0, code)
      assert.are.equal("nil\n", out)
    end)

  it("--help lists the options", function()
    local code, out = lasync_cmd("--help")
    assert.are.equal(0, code)
    assert.truthy(out:find("-w N", 1, true))
    assert.truthy(out:find("--share=M", 1, true))
    assert.truthy(out:find("--grace=S", 1, true))
    assert.truthy(out:find("--worker-log", 1, true))
  end)
end)

describe("lasync.worker_id and lasync.worker_count", function()
  local SCRIPT = [[
    local sub = lasync.subprocess.exec(arg[-1], { "-e",
      "print(lasync.worker_id(), lasync.worker_count())" },
      { stdout = "pipe" })
    local child = sub.stdout:read():gsub("\n", "")
    sub:wait()
    print(lasync.worker_id(), lasync.worker_count(),
      os.getenv("LASYNC_WORKER_ID"), child, ...)
  ]]

  it("are nil and 1 outside worker mode", function()
    local code, out = helper.run_script(SCRIPT)
    assert.are.equal(0, code)
    assert.are.equal("nil\t1\tnil\tnil\t1\n", out)
  end)

  it("are 1..N and N in the workers; their children are no workers",
    function()
      local path = temp_script(SCRIPT)
      for _, how in ipairs { { "-w 3 " .. path .. " a", "" },
        { path .. " a", "LASYNC_WORKERS=3" },
        { "-w auto " .. path .. " a", "" } } do
        local code, out, err = lasync_cmd(how[1], nil, how[2])
        assert.are.equal("", err)
        assert.are.equal(0, code) -- every worker's script ended: done
        local lines = {}
        for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
        table.sort(lines)
        if how[1]:match("auto") then
          local n = #lines
          assert.is_true(n >= 1)
          assert.are.equal(("1\t%d\tnil\tnil\t1\ta"):format(n), lines[1])
        else
          assert.are.same({ "1\t3\tnil\tnil\t1\ta", "2\t3\tnil\tnil\t1\ta",
            "3\t3\tnil\tnil\t1\ta" }, lines)
        end
      end
      os.remove(path)
    end)
end)

describe("lasync -w: a server", function()
  it("4 workers share a port: every worker reached, each request " ..
    "answered once, no fd leaked into a worker", function()
      helper.run(function()
        local s, port = start_app(4, free_port())
        local seen, answered = {}, {}
        local requests = 0
        for _ = 1, 400 do
          local status, body = get(port, "/")
          assert.are.equal(200, status)
          requests = requests + 1
          local id, _, n = parse(body)
          assert.is_nil(answered[id .. "/" .. n]) -- answered once
          answered[id .. "/" .. n] = true
          seen[id] = math.max(seen[id] or 0, n)
          if requests >= 40 and seen[1] and seen[2] and seen[3] and
             seen[4] then break end
        end
        assert.truthy(seen[1] and seen[2] and seen[3] and seen[4])
        -- SO_REUSEPORT: each worker has a listening socket of its own
        assert.are.same({}, common_sockets(children(s.proc.pid)))
        -- every worker counted its requests 1..k, and they add up
        local total = 0
        for id = 1, 4 do total = total + seen[id] end
        assert.are.equal(requests, total)
        -- a worker's only socket when it starts is its channel to the
        -- supervisor (fd 3): nothing of the supervisor or other workers
        for _ = 1, 8 do
          local _, fds = get(port, "/fds")
          assert.are.equal("3", fds)
        end
        assert.are.equal(0, stop(s))
        os.remove(s.path)
      end, 30)
    end)

  it("--share=socket and port 0: the supervisor binds one port for all",
    function()
      helper.run(function()
        local s, port = start_app(2, 0, { "--share=socket" })
        local ports = {}
        for _, line in ipairs(s.out) do
          local p = line:match("^ready\t%d+\t(%d+)$")
          if p then ports[p] = true end
        end
        assert.are.same({ [tostring(port)] = true }, ports)
        assert.are.equal(1, #common_sockets(children(s.proc.pid)))
        local seen = {}
        for _ = 1, 200 do
          local status, body = get(port, "/")
          assert.are.equal(200, status)
          seen[parse(body)] = true
          if seen[1] and seen[2] then break end
        end
        assert.truthy(seen[1] and seen[2])
        assert.are.equal(0, stop(s))
        os.remove(s.path)
      end, 30)
    end)

  it("TLS servers share the port too", function()
    local tls = require "tls_helper"
    local certs = tls.certs()
    helper.run(function()
      local path = temp_script([[
        local ctx = lasync.ssl.context { purpose = "server",
          certfile = arg[1], keyfile = arg[2] }
        local srv = lasync.start_server(function(r, w)
          w:write(lasync.worker_id() .. "\n")
          w:close()
        end, "127.0.0.1", 0, { ssl = ctx })
        print("ready", select(2, srv:address()))
        srv:serve_forever()
      ]])
      local s = start({ "-w", "2", path, certs.server.cert,
        certs.server.key })
      helper.wait_until(function() return #s.out == 2 end, 8)
      local port = tonumber(s.out[1]:match("(%d+)$"))
      assert.are.equal(s.out[1], s.out[2]) -- port 0: one port for both
      local ctx = lasync.ssl.context { cafile = certs.ca.cert }
      local seen = {}
      for _ = 1, 200 do
        local r, w = lasync.open_connection("127.0.0.1", port, { ssl = ctx })
        seen[tonumber(r:readline())] = true
        w:close()
        if seen[1] and seen[2] then break end
      end
      assert.truthy(seen[1] and seen[2])
      assert.are.equal(0, stop(s))
      os.remove(path)
    end, 30)
    tls.cleanup()
  end)

  it("LASYNC_SHARE=socket: every worker accepts on the one socket the " ..
    "supervisor bound", function()
      helper.run(function()
        local s = start_app(3, free_port(), nil, { "LASYNC_SHARE=socket" })
        assert.are.equal(1, #common_sockets(children(s.proc.pid)))
        assert.are.equal(0, stop(s))
        os.remove(s.path)
      end, 30)
    end)

  for _, share in ipairs { "reuseport", "socket" } do
    it("a worker killed with SIGKILL is restarted, the port keeps " ..
      "serving, and it is reaped (" .. share .. ")", function()
        helper.run(function()
          local s, port = start_app(2, free_port(), { "--share=" .. share })
          local fds = count_fds(s.proc.pid)
          local _, body = get(port, "/")
          local id, pid = parse(body)
          lasync.sleep(0.05)
          os.execute("kill -KILL " .. pid)
          if share == "reuseport" then
            -- the kernel resets the connections queued on a listening
            -- socket that closes (docs/scaling.md): wait until it is,
            -- that is until the worker is reaped (a zombie's other
            -- threads, libuv's pool, may still hold its descriptors)
            helper.wait_until(function() return proc_state(pid) == nil end,
              5)
          end
          -- a client going on sees no failed request
          local served = 0
          for _ = 1, 50 do
            local status = get(port, "/")
            assert.are.equal(200, status)
            served = served + 1
            lasync.sleep(0.002)
          end
          assert.are.equal(50, served)
          helper.wait_until(function()
            return has(s.err, "restarting") ~= nil
          end, 5)
          assert.are.equal(("lasync: worker %d (pid %d) killed by signal 9 " ..
            "(SIGKILL): restarting (restarts so far: 1)"):format(id, pid),
            s.err[1])
          -- reaped (no zombie), and a new worker `id` serves
          helper.wait_until(function() return proc_state(pid) == nil end, 5)
          local new
          helper.wait_until(function()
            local _, b = get(port, "/")
            local i, p = parse(b)
            if i == id and p ~= pid then new = p end
            return new ~= nil
          end, 5)
          assert.are.equal(2, #children(s.proc.pid))
          for _, c in ipairs(children(s.proc.pid)) do
            assert.are_not.equal("Z", proc_state(c))
          end
          assert.are.equal(fds, count_fds(s.proc.pid)) -- nothing leaked
          assert.are.equal(0, stop(s))
          assert.is_nil(proc_state(new))
          os.remove(s.path)
        end, 30)
      end)
  end

  it("SIGTERM stops every worker within the grace period, with a " ..
    "request in flight completed", function()
      helper.run(function()
        local s, port = start_app(2, free_port(), { "--grace=5" })
        local pids = children(s.proc.pid)
        assert.are.equal(2, #pids)
        local slow = lasync.create_task(get, port, "/slow")
        helper.wait_until(function()
          return has(s.out, "^slow started$") ~= nil
        end, 5)
        local t0 = helper.now()
        s.proc:send_signal("SIGTERM")
        local status, body = slow:await()
        assert.are.equal(200, status)
        assert.are.equal("slow done", body)
        assert.are.equal(0, finish(s, 5))
        assert.is_true(helper.now() - t0 < 3)
        assert.are.same({}, s.err)
        for _, pid in ipairs(pids) do assert.is_nil(proc_state(pid)) end
        os.remove(s.path)
      end, 30)
    end)

  it("SIGHUP restarts the workers one at a time; the port keeps serving",
    function()
      helper.run(function()
        local s, port = start_app(2, free_port(), { "--share=socket" })
        local before = children(s.proc.pid)
        s.proc:send_signal("SIGHUP")
        local served = 0
        while not has(s.err, "rolling restart done") do
          local status = get(port, "/")
          assert.are.equal(200, status)
          served = served + 1
          assert.is_true(served < 5000)
          lasync.sleep(0.002)
        end
        assert.is_true(served > 0)
        assert.are.same({ "lasync: SIGHUP: restarting the workers one at " ..
          "a time", "lasync: rolling restart done" }, s.err)
        helper.wait_until(function()
          return #children(s.proc.pid) == 2
        end, 5)
        for _, pid in ipairs(before) do
          helper.wait_until(function() return proc_state(pid) == nil end, 5)
        end
        local seen = {}
        for _ = 1, 100 do
          local _, body = get(port, "/")
          local id = parse(body)
          seen[id] = true
          if seen[1] and seen[2] then break end
        end
        assert.truthy(seen[1] and seen[2])
        assert.are.equal(0, stop(s))
        os.remove(s.path)
      end, 30)
    end)
end)

describe("lasync -w: supervision", function()
  it("stops with a clear error when a worker keeps dying at start-up",
    function()
      helper.run(function()
        local path = temp_script([[
          if lasync.worker_id() == 2 then os.exit(3) end
          lasync.sleep(30)
        ]])
        local s = start({ "-w", "2", path })
        assert.are.equal(1, finish(s, 10))
        assert.are.equal("lasync: worker 2 keeps dying at start-up " ..
          "(exited with status 3, 5 times within 1 s of starting): " ..
          "stopping", s.err[#s.err])
        assert.are.equal(5, #s.err)
        assert.are.equal("lasync: worker 2 (pid %d+) exited with status 3: " ..
          "restarting (restarts so far: 1)",
          s.err[1]:gsub("pid %d+", "pid %%d+"))
        os.remove(path)
      end, 15)
    end)

  it("SIGTERM cancels a plain script's main task; its cleanup runs",
    function()
      helper.run(function()
        local path = temp_script([[
          local _ <close> = setmetatable({}, { __close = function()
            print("cleanup " .. lasync.worker_id())
          end })
          print("up")
          lasync.sleep(30)
        ]])
        local s = start({ "-w", "2", path })
        helper.wait_until(function() return #s.out == 2 end, 5)
        s.proc:send_signal("SIGTERM")
        assert.are.equal(0, finish(s, 5))
        table.sort(s.out)
        assert.are.same({ "cleanup 1", "cleanup 2", "up", "up" }, s.out)
        assert.are.same({}, s.err)
        os.remove(path)
      end, 15)
    end)

  it("kills a worker still running after the grace period; exit status 1",
    function()
      helper.run(function()
        local path = temp_script([[
          lasync.signal("SIGTERM", function() print("ignored") end)
          print("up")
          lasync.sleep(30)
        ]])
        local s = start({ "-w", "1", "--grace=0.2", path })
        helper.wait_until(function() return #s.out == 1 end, 5)
        local pid = children(s.proc.pid)[1]
        s.proc:send_signal("SIGINT")
        assert.are.equal(1, finish(s, 5))
        assert.are.same({ "up", "ignored" }, s.out)
        assert.are.same({ ("lasync: worker 1 (pid %d) still running 0.2 s " ..
          "after SIGTERM: killed"):format(pid),
          ("lasync: worker 1 (pid %d) killed by signal 9 (SIGKILL) while " ..
          "stopping"):format(pid) }, s.err)
        os.remove(path)
      end, 15)
    end)

  it("--worker-log prefixes each line of the workers with their id",
    function()
      helper.run(function()
        local path = temp_script([[
          io.write("one ", lasync.worker_id(), "\ntwo")
          io.stderr:write("err ", lasync.worker_id(), "\n")
        ]])
        local s = start({ "-w", "2", "--worker-log", path })
        assert.are.equal(0, finish(s, 5))
        table.sort(s.out)
        table.sort(s.err)
        assert.are.same({ "[worker 1] one 1", "[worker 1] two",
          "[worker 2] one 2", "[worker 2] two" }, s.out)
        assert.are.same({ "[worker 1] err 1", "[worker 2] err 2" }, s.err)
        os.remove(path)
      end, 15)
    end)
end)
