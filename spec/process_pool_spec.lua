-- lasync.ProcessPool: results and arguments copied to worker processes as
-- to_thread copies them, errors with the worker's traceback, refused
-- values (checked before anything starts), crashing jobs (os.exit, a
-- signal) failing with WorkerError and their worker replaced, cancelling
-- queued and running jobs, close with jobs pending, map's order, and no
-- zombie or descriptor left behind; under lua5.4 (busted) and the lasync
-- command.
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg
local self_pid = select(2, lasync._wire_self())

-- await t, which must fail; returns its error
local function failure(t)
  local ok, err = pcall(t.await, t)
  assert.is_false(ok, "expected the task to fail")
  return err
end

-- The number of open file descriptors of this process, listed from inside
-- it (a command run by io.popen could see popen's pipe half set up).
local function fd_count()
  local n = 0
  for _ in lasync.fs.scandir("/proc/self/fd") do n = n + 1 end
  return n
end

-- Whether process pid exists (a zombie counts: it is not reaped).
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if f then f:close() end
  return f ~= nil
end

-- A job: its worker's pid.
local function worker_pid()
  local f = io.open("/proc/self/stat")
  local pid = f:read("n")
  f:close()
  return pid
end

-- A fresh path for a flag file a job creates.
local function flag_path()
  local path = os.tmpname()
  os.remove(path)
  return path
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- Let closed pipes be collected and their handles closed (close
-- callbacks run on a later loop iteration: poll).
local function collect()
  collectgarbage()
  collectgarbage()
  lasync.sleep(0.001)
end

-- Poll until no more than n descriptors are open (at most 5 s): what was
-- open before, minus anything that closed meanwhile. The failure lists
-- them.
local function fds_back_to(n)
  pcall(helper.wait_until, function()
    collect()
    return fd_count() <= n
  end, 5)
  if fd_count() > n then
    local list = {}
    for name in lasync.fs.scandir("/proc/self/fd") do
      list[#list + 1] = name
    end
    error(("%d descriptors open, %d before: %s"):format(fd_count(), n,
      table.concat(list, " ")))
  end
end

describe("lasync.ProcessPool results", function()
  it("gives the function's results, nil holes and tables included",
    function()
      helper.run(function()
        local pool <close> = lasync.ProcessPool(2)
        local t = pool:submit(function(a, b)
          return a + b, nil, { sum = a + b, list = { 1, 2, { 3 } } }, nil
        end, 2, 3)
        assert.are.equal("process_pool", t:get_name())
        local res = table.pack(t:await())
        assert.are.equal(4, res.n)
        assert.are.equal(5, res[1])
        assert.is_nil(res[2])
        assert.are.same({ sum = 5, list = { 1, 2, { 3 } } }, res[3])
        assert.is_nil(res[4])
        assert.are.same({ 0.5, "s\0x", true, false },
          { pool:submit(function(...) return ... end, 0.5, "s\0x", true,
            false):await() })
        assert.are.equal(0, select("#", pool:submit(function() end):await()))
      end)
    end)

  it("runs in another process with its own globals, kept between jobs",
    function()
      helper.run(function()
        local pool <close> = lasync.ProcessPool(1)
        local pid = pool:submit(worker_pid):await()
        assert.are_not.equal(self_pid, pid)
        pool:submit(function() counter = 41 end):await() -- luacheck: ignore
        assert.are.equal(42, pool:submit(function()
          counter = counter + 1 -- luacheck: ignore
          return counter
        end):await())
        assert.are.equal(pid, pool:submit(worker_pid):await())
      end)
    end)

  it("never blocks the loop while jobs run", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(2)
      local ticks, done = 0, false
      local ticker = lasync.spawn(function()
        while not done do
          lasync.sleep(0.005)
          ticks = ticks + 1
        end
      end)
      local elapsed = helper.timed(pool.map, pool, function()
        local t0 = os.clock()
        while os.clock() - t0 < 0.15 do end
      end, { 1, 2 })
      done = true
      ticker:await()
      assert.is_true(elapsed >= 0.15)
      assert.is_true(ticks >= 10, ("only %d ticks"):format(ticks))
    end)
  end)

  it("crosses a recursive local function and large values", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(1)
      local function fib(n) return n < 2 and n or fib(n - 1) + fib(n - 2) end
      assert.are.equal(6765, pool:submit(fib, 20):await())
      local big = string.rep("x", 3 * 1024 * 1024)
      assert.are.equal(2 * #big, #pool:submit(function(s)
        return s .. s
      end, big):await())
    end)
  end)

  it("map gives the first results in the order of the items", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(3)
      local res = pool:map(function(x)
        local t0 = os.clock() -- the early items take longest
        while os.clock() - t0 < (6 - x) * 0.002 do end
        return x * 10, "dropped"
      end, { 1, 2, 3, 4, 5 })
      assert.are.same({ 10, 20, 30, 40, 50, n = 5 }, res)
      assert.are.same({ n = 0 }, pool:map(function() end, {}))
    end)
  end)

  it("runs n jobs at once, no more", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(2)
      local pids = pool:map(function()
        os.execute("sleep 0.05")
        local f = io.open("/proc/self/stat")
        local pid = f:read("n")
        f:close()
        return pid
      end, { 1, 2, 3, 4 })
      local distinct = {}
      for _, pid in ipairs(pids) do distinct[pid] = true end
      local n = 0
      for _ in pairs(distinct) do n = n + 1 end
      assert.are.equal(2, n)
      assert.matches("2/2 workers", tostring(pool), 1, true)
    end)
  end)
end)

describe("lasync.ProcessPool errors", function()
  it("a job's error crosses with the worker's traceback", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(1)
      local t = pool:submit(function()
        local function worker_inner_function() error("deep") end
        worker_inner_function()
      end)
      local err = failure(t)
      assert.matches("_spec%.lua:%d+: deep$", err)
      local tb = t:traceback()
      assert.matches("stack traceback of task 'process_pool'", tb, 1, true)
      assert.matches("worker_inner_function", tb, 1, true)
      assert.are.same({ code = "E1" }, failure(pool:submit(function()
        error({ code = "E1" })
      end)))
      assert.are.equal("lasync.ProcessPool: the error, a FILE*, cannot be " ..
        "copied to another process", failure(pool:submit(function()
          error(io.stdout)
        end)))
      assert.are.equal("lasync.ProcessPool: cannot copy result #2 to " ..
        "another process: it contains a function (only the function run " ..
        "can be one)", failure(pool:submit(function()
          return 1, print
        end)))
      -- the worker goes on
      assert.are.equal(3, pool:submit(function() return 3 end):await())
    end)
  end)

  it("refuses bad arguments before starting anything", function()
    helper.run(function()
      for _, n in ipairs { 0, -1, 1.5 } do
        raises_msg("lasync.ProcessPool: n must be an integer >= 1 (got " ..
          tostring(n) .. ")", lasync.ProcessPool, n)
      end
      raises_msg("lasync.ProcessPool: n must be an integer >= 1 (got nil)",
        lasync.ProcessPool)
      raises_msg("lasync.ProcessPool: n must be an integer >= 1 (got " ..
        "string)", lasync.ProcessPool, "2")
      raises_msg("lasync.ProcessPool: unknown option 'exe'",
        lasync.ProcessPool, 1, { exe = "x" })
      raises_msg("lasync.ProcessPool: option 'executable' must be the " ..
        "path of a lasync or lua5.4 executable (got number)",
        lasync.ProcessPool, 1, { executable = 1 })
      local pool <close> = lasync.ProcessPool(1)
      local x = 1
      raises_msg("lasync.ProcessPool:submit: expected a function (got nil)",
        pool.submit, pool, nil)
      raises_msg("lasync.ProcessPool:submit: expected a function (got " ..
        "no value)", pool.submit, pool)
      raises_msg("lasync.ProcessPool:submit: cannot copy the function to " ..
        "another process: the function has upvalue x", pool.submit, pool,
        function() return x end)
      raises_msg("lasync.ProcessPool:submit: cannot copy argument #3 to " ..
        "another process: it contains a userdata", pool.submit, pool,
        function() end, 1, io.stdout)
      raises_msg("lasync.ProcessPool:map: items must be a list (got nil)",
        pool.map, pool, print)
      raises_msg("lasync.ProcessPool:map: expected a function (got string)",
        pool.map, pool, "f", {})
      raises_msg("lasync.ProcessPool:map: cannot copy item #2 to another " ..
        "process: it contains a function (only the function run can be " ..
        "one)", pool.map, pool, function() end, { 1, { print } })
      raises_msg("lasync.ProcessPool:submit: expected a ProcessPool (got " ..
        "function)", pool.submit, print)
      assert.are.equal("lasync.ProcessPool: 0/1 worker, 0 jobs",
        tostring(pool))
    end)
    raises_msg("lasync.ProcessPool:submit: no running event loop",
      function()
        lasync.ProcessPool(1):submit(print)
      end)
  end)

  it("a job ending its worker (os.exit, a signal) fails with " ..
    "WorkerError; a new worker replaces it", function()
      helper.run(function()
        local pool <close> = lasync.ProcessPool(1)
        local pid = pool:submit(worker_pid):await()
        local err = failure(pool:submit(function() os.exit(3) end))
        helper.assert_class(lasync.ProcessPool.WorkerError, err,
          "WorkerError")
        assert.are.equal(pid, err.pid)
        assert.are.equal(3, err.returncode)
        assert.is_nil(err.signal)
        assert.are.equal(("lasync.ProcessPool: the worker process (pid %d) " ..
          "exited with status 3 while running the job"):format(pid),
          err.message)
        local pid2 = pool:submit(worker_pid):await()
        assert.are_not.equal(pid, pid2)
        err = failure(pool:submit(function()
          local f = io.open("/proc/self/stat")
          os.execute("kill -KILL " .. f:read("n"))
          while true do end
        end))
        assert.are.equal(-9, err.returncode)
        assert.are.equal("SIGKILL", err.signal)
        assert.are.equal(("lasync.ProcessPool: the worker process (pid %d) " ..
          "was killed by signal 9 (SIGKILL) while running the job")
          :format(pid2), err.message)
        err = failure(pool:submit(function()
          local f = io.open("/proc/self/stat")
          os.execute("kill -SEGV " .. f:read("n"))
          while true do end
        end))
        -- under ASan (preloaded by busted.sh), its handler turns the
        -- SIGSEGV into an abort
        assert.are.equal((os.getenv("LD_PRELOAD") or ""):find("asan") and
          "SIGABRT" or "SIGSEGV", err.signal)
        assert.is_false(alive(pid) or alive(pid2))
        assert.are.equal(7, pool:submit(function() return 7 end):await())
      end)
    end)

  it("a worker killed while idle is replaced before it gets a job",
    function()
      helper.run(function()
        local pool <close> = lasync.ProcessPool(1)
        local pid = pool:submit(worker_pid):await()
        os.execute("kill -KILL " .. pid)
        helper.wait_until(function() return not alive(pid) end)
        local pid2 = pool:submit(worker_pid):await()
        assert.are_not.equal(pid, pid2)
      end)
    end)

  it("a malformed answer raises, never read out of bounds", function()
    -- a worker's stdio are socket pairs, which a job cannot reopen through
    -- /proc: the check guards the parent all the same (the decoder itself)
    local decode = lasync._wire_decode
    local good = lasync._wire_values("t", "v", 1, true, "s", { 1, { 2 } })
    assert.are.same({ true, "s", { 1, { 2 } } }, { decode(good) })
    local fn = lasync._wire_function("t", function() end)
    for _, bad in ipairs { "\255", good:sub(1, -2), fn,
      "\5" .. string.pack("T", 1 << 40) .. "x", ("\6"):rep(200) } do
      raises_msg("lasync.ProcessPool: the worker's answer is malformed",
        decode, bad)
    end
  end)

  it("a missing executable fails the job with the spawn's OSError",
    function()
      helper.run(function()
        local pool <close> = lasync.ProcessPool(1,
          { executable = "/nonexistent/lasync" })
        helper.assert_os_error(failure(pool:submit(function() end)), "ENOENT",
          "subprocess.exec", "/nonexistent/lasync")
      end)
    end)
end)

describe("lasync.ProcessPool cancellation", function()
  it("of a queued job removes it: it never runs", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(1)
      local flag = flag_path()
      local first = pool:submit(function() os.execute("sleep 0.1") return 1 end)
      local queued = pool:submit(function(path)
        io.open(path, "w"):close()
      end, flag)
      lasync.sleep(0.01)
      queued:cancel()
      helper.assert_cancelled(queued)
      assert.are.equal(1, first:await())
      assert.are.equal(2, pool:submit(function() return 2 end):await())
      assert.is_false(exists(flag))
      -- cancelled before its task ever ran
      local never = pool:submit(function(path)
        io.open(path, "w"):close()
      end, flag)
      never:cancel()
      helper.assert_cancelled(never)
      assert.are.equal(3, pool:submit(function() return 3 end):await())
      assert.is_false(exists(flag))
    end)
  end)

  it("of a running job kills its worker, which is replaced", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(1)
      local pid = pool:submit(worker_pid):await()
      local t = pool:submit(function() while true do end end)
      lasync.sleep(0.02)
      t:cancel()
      helper.assert_cancelled(t)
      local pid2 = pool:submit(worker_pid):await()
      assert.are_not.equal(pid, pid2)
      helper.wait_until(function() return not alive(pid) end)
    end)
  end)

  it("of map cancels its jobs", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(2)
      local t = lasync.spawn(pool.map, pool, function()
        while true do end
      end, { 1, 2, 3 })
      lasync.sleep(0.02)
      t:cancel()
      helper.assert_cancelled(t)
      assert.are.equal(1, pool:submit(function() return 1 end):await())
    end)
  end)

  it("an error in map cancels the jobs after it", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(1)
      local flag = flag_path()
      local err = helper.error_of(pool.map, pool, function(item)
        if item[1] == 1 then error("first", 0) end
        os.execute("sleep 0.5") -- cancelled meanwhile: killed
        io.open(item[2], "w"):close()
      end, { { 1, flag }, { 2, flag }, { 3, flag } })
      assert.are.equal("first", err)
      assert.is_false(exists(flag))
    end)
  end)
end)

describe("lasync.ProcessPool close", function()
  it("waits for the jobs submitted, then refuses new ones", function()
    helper.run(function()
      local pool = lasync.ProcessPool(1)
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = pool:submit(function(x)
          os.execute("sleep 0.02")
          return x
        end, i)
      end
      pool:close()
      for i = 1, 3 do
        assert.is_true(tasks[i]:done())
        assert.are.equal(i, tasks[i]:result())
      end
      assert.matches("0/1 worker, 0 jobs (closed)", tostring(pool), 1,
        true)
      raises_msg("lasync.ProcessPool:submit: the pool is closed",
        pool.submit, pool, print)
      raises_msg("lasync.ProcessPool:map: the pool is closed",
        pool.map, pool, print, { 1 })
      pool:close() -- again: nothing to do
    end)
  end)

  it("leaves no zombie and no descriptor open", function()
    -- each phase in a task of its own (a stack of its own), so that no
    -- stale stack slot of the test keeps a pipe from being collected
    local function warm_up() -- what the loop opens once
      local warm <close> = lasync.ProcessPool(1)
      warm:submit(function() end):await()
    end
    local function use_pool()
      local pool <close> = lasync.ProcessPool(3)
      local pids = pool:map(worker_pid, { 1, 2, 3 })
      failure(pool:submit(function() os.exit(1) end))
      local t = pool:submit(function() while true do end end)
      lasync.sleep(0.02)
      t:cancel()
      helper.assert_cancelled(t)
      return pids
    end
    helper.run(function()
      lasync.spawn(warm_up):await()
      local before = fd_count()
      repeat -- once the warm-up's pipes are closed
        local last = before
        collect()
        lasync.sleep(0.01)
        before = fd_count()
      until before == last
      local pids = lasync.spawn(use_pool):await()
      for _, pid in ipairs(pids) do assert.is_false(alive(pid)) end
      fds_back_to(before)
    end)
  end)
end)

describe("lasync.ProcessPool under the lasync command", function()
  it("runs jobs; a job's stdout goes to stderr", function()
    local code, out, err = helper.run_script([[
      local pool <close> = lasync.ProcessPool(2)
      local r = pool:map(function(x)
        print("job " .. x)
        return require("lasync").ProcessPool ~= nil and x * 2
      end, { 1, 2 })
      print(r[1], r[2])
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal("2\t4\n", out)
    assert.matches("job 1", err, 1, true)
    assert.matches("job 2", err, 1, true)
  end)

  it("runs lasync workers from stock lua5.4 with executable=",
    function()
      helper.run(function()
        local pool <close> = lasync.ProcessPool(1,
          { executable = helper.bin })
        assert.are.equal(4, pool:submit(function(x) return x * 2 end, 2)
          :await())
      end)
    end)
end)

describe("loop:run_in_executor(pool, fn, ...)", function()
  it("submits to the pool, as asyncio's ProcessPoolExecutor", function()
    helper.run(function()
      local pool <close> = lasync.ProcessPool(1)
      local loop = lasync.get_running_loop()
      local t = loop:run_in_executor(pool, function(a, b) return a * b end,
        6, 7)
      assert.are.equal("process_pool", t:get_name())
      assert.are.equal(42, t:await())
      assert.are.equal(1, loop:run_in_executor(nil, function() return 1 end)
        :await()) -- nil: still to_thread
      raises_msg("lasync.Loop:run_in_executor: only the default executor " ..
        "(nil) exists, or pass a lasync.ProcessPool (got table)",
        loop.run_in_executor, loop, {}, print)
      raises_msg("lasync.Loop:run_in_executor: expected a Loop (got nil)",
        loop.run_in_executor, nil, pool, print)
    end)
  end)
end)

describe("lasync.ProcessPool's workers", function()
  it("do not inherit the variables of lasync -w", function()
    local code, out, err = helper.capture(("LASYNC_WORKERS=3 " ..
      "LASYNC_WORKER_ID=1 LASYNC_WORKER_COUNT=3 %s -e %s"):format(helper.bin,
      helper.shell_quote([[
        local pool <close> = lasync.ProcessPool(1)
        print(pool:submit(function()
          return tostring(os.getenv("LASYNC_WORKER_ID")) ..
            tostring(os.getenv("LASYNC_WORKERS")), os.getenv("HOME")
        end):await())
      ]])))
    assert.are.equal(0, code, err)
    assert.are.equal("nilnil\t" .. os.getenv("HOME") .. "\n", out)
  end)
end)

describe("lasync.ProcessPool under another loop", function()
  it("starts new workers when a later run uses the pool", function()
    -- plain runs: the idle worker of the first keeps its (closed) loop
    -- object alive until the second run takes the pool over
    collectgarbage()
    local loops = lasync._stats().loops
    local pool = lasync.ProcessPool(1)
    local pid = lasync.run(function()
      return pool:submit(worker_pid):await()
    end)
    local pid2 = lasync.run(function()
      local p = pool:submit(worker_pid):await()
      pool:close()
      return p
    end)
    assert.are_not.equal(pid, pid2)
    assert.is_false(alive(pid2))
    collectgarbage()
    collectgarbage()
    assert.are.equal(loops, lasync._stats().loops)
  end)
end)
