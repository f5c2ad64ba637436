-- Signals: lasync.signal (handlers called through the loop, closing them),
-- lasync.wait_signal (and cancelling it), bad signal names, and Ctrl-C:
-- the first SIGINT cancels the main task (its cleanup runs, exit 130, one
-- line on stderr), a second one exits at once, a script watching SIGINT
-- itself takes over. Signals go to this process (USR1/USR2, always while
-- something watches them) or, for SIGINT, to a child lasync process.
local helper = require "helper"
local lasync = helper.lasync

local shell_quote, slurp = helper.shell_quote, helper.slurp
local raises_msg = helper.raises_msg

-- this process's pid (the lua running busted)
local my_pid = (function()
  local h = assert(io.open("/proc/self/stat"))
  local pid = h:read("a"):match("^%d+")
  h:close()
  return pid
end)()

-- Send signal `name` ("USR1") to this process. Only while it is watched!
local function raise(name)
  assert(os.execute("kill -" .. name .. " " .. my_pid))
end

-- Wait (at most 5 s: a loose bound for a loaded machine) until cond() holds.
local function wait_until(cond)
  local limit = helper.now() + 5
  while not cond() and helper.now() < limit do lasync.sleep(0.002) end
  return cond()
end

-- Run `source` as a child process (the lasync command, or `runner`, e.g.
-- "lua5.4"), with `env` (e.g. "X=1") prepended, and send it SIGINT `n`
-- times (default 1): each time once the script has called ready() (defined
-- for it; the k-th call creates the file READY .. k, READY also defined),
-- never after a fixed delay that a loaded machine could outlast. Returns
-- its exit status, the milliseconds from the last SIGINT to its exit, its
-- stdout and its stderr.
local function interrupt(source, n, runner, env)
  local base = os.tmpname()
  -- on the script's first line, so that its line numbers stay
  local prelude = ("local READY, ready = %q do local k = 0 function " ..
    "ready() k = k + 1 io.open(READY .. k, 'w'):close() end end "):format(
    base .. ".r")
  local script = helper.temp_script(prelude .. source)
  local steps = {}
  for k = 1, n or 1 do
    steps[k] = ("i=0; until [ -e %s.r%d ] || [ $i -ge 2000 ]; do " ..
      "sleep 0.005; i=$((i+1)); done; kill -INT $pid; t0=$(date +%%s%%N)")
        :format(base, k)
  end
  local cmd = ("%s %s %s >%s.out 2>%s.err & pid=$!; %s; wait $pid; rc=$?; " ..
    "t1=$(date +%%s%%N); echo $rc $(( (t1 - t0) / 1000000 ))"):format(
    env or "", runner or helper.bin, script, base, base,
    table.concat(steps, "; "))
  local h = assert(io.popen("sh -c " .. shell_quote(cmd)))
  local line = h:read("a")
  h:close()
  os.remove(script)
  os.remove(base)
  for k = 1, n or 1 do os.remove(base .. ".r" .. k) end
  local rc, ms = line:match("^(%d+) (%-?%d+)")
  return tonumber(rc), tonumber(ms), slurp(base .. ".out"),
      slurp(base .. ".err")
end

describe("lasync.signal", function()
  it("calls the handler with the name, through the loop, each time",
    function()
      helper.run(function()
        local got = {}
        local h = lasync.signal("SIGUSR1", function(...)
          got[#got + 1] = table.pack(...)
        end)
        raise("USR1")
        assert.are.equal(0, #got) -- not from inside the signal handler
        assert.is_true(wait_until(function() return #got == 1 end))
        raise("USR1")
        assert.is_true(wait_until(function() return #got == 2 end))
        assert.are.same({ n = 1, "SIGUSR1" }, got[1])
        assert.are.same({ n = 1, "SIGUSR1" }, got[2])
        h:close()
      end)
    end)

  it("accepts \"SIGUSR2\", \"USR2\" and the number; the name is SIGUSR2",
    function()
      helper.run(function()
        local got = {}
        local hs = {}
        for i, name in ipairs { "SIGUSR2", "USR2", 12 } do
          hs[i] = lasync.signal(name, function(n) got[#got + 1] = i .. n end)
        end
        raise("USR2")
        assert.is_true(wait_until(function() return #got == 3 end))
        table.sort(got)
        assert.are.same({ "1SIGUSR2", "2SIGUSR2", "3SIGUSR2" }, got)
        for _, h in ipairs(hs) do h:close() end
      end)
    end)

  it("close() stops the handler, may be repeated, and spares others",
    function()
      helper.run(function()
        local got = {}
        local a = lasync.signal("USR1", function() got[#got + 1] = "a" end)
        local b <close> = lasync.signal("USR1", function()
          got[#got + 1] = "b"
        end)
        assert.matches("^lasync%.SignalHandler", tostring(a))
        assert.are.equal(0, select("#", a:close()))
        a:close()
        raise("USR1") -- b still watches
        assert.is_true(wait_until(function() return #got >= 1 end))
        lasync.sleep(0.01)
        assert.are.same({ "b" }, got)
      end)
    end)

  it("a <close> variable stops it", function()
    helper.run(function()
      local got = {}
      local keep <close> = lasync.signal("USR1", function()
        got[#got + 1] = "keep"
      end)
      do
        local _ <close> = lasync.signal("USR1", function()
          got[#got + 1] = "scoped"
        end)
      end
      raise("USR1")
      assert.is_true(wait_until(function() return #got >= 1 end))
      lasync.sleep(0.01)
      assert.are.same({ "keep" }, got)
    end)
  end)

  it("accepts a callable table as the handler", function()
    helper.run(function()
      local got
      local callable = setmetatable({}, { __call = function(_, n) got = n end })
      local h <close> = lasync.signal("USR2", callable)
      raise("USR2")
      assert.is_true(wait_until(function() return got ~= nil end))
      assert.are.equal("SIGUSR2", got)
    end)
  end)

  it("an error in the handler goes to the exception handler", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local ctxs = {}
      loop:set_exception_handler(function(_, ctx) ctxs[#ctxs + 1] = ctx end)
      local calls = 0
      local h <close> = lasync.signal("USR1", function()
        calls = calls + 1
        error("handler boom")
      end)
      raise("USR1")
      assert.is_true(wait_until(function() return #ctxs == 1 end))
      assert.matches("handler boom", tostring(ctxs[1].exception), 1, true)
      raise("USR1") -- still watching after a failure
      assert.is_true(wait_until(function() return calls == 2 end))
      loop:set_exception_handler(nil)
    end)
  end)

  it("watching alone does not keep the run alive", function()
    local t0 = os.clock()
    helper.run(function()
      lasync.signal("USR1", function() end)
      lasync.signal("USR2", function() end)
    end)
    assert(os.clock() - t0 < 1)
  end)

  it("refuses unknown signals and non-function handlers", function()
    helper.run(function()
      local f = function() end
      raises_msg("lasync.signal: unknown signal BOGUS", lasync.signal,
        "BOGUS", f)
      raises_msg("lasync.signal: unknown signal SIGBOGUS", lasync.signal,
        "SIGBOGUS", f)
      raises_msg("lasync.signal: unknown signal sigint", lasync.signal,
        "sigint", f)
      raises_msg("lasync.signal: unknown signal 0", lasync.signal, 0, f)
      raises_msg("lasync.signal: unknown signal -1", lasync.signal, -1, f)
      raises_msg("lasync.signal: unknown signal 65", lasync.signal, 65, f)
      raises_msg("lasync.signal: the signal must be a signal name or " ..
        "number (got table)", lasync.signal, {}, f)
      raises_msg("lasync.signal: the signal must be a signal name or " ..
        "number (got nil)", lasync.signal, nil, f)
      raises_msg("lasync.signal: the handler must be a function (got no " ..
        "value)", lasync.signal, "USR1")
      raises_msg("lasync.signal: the handler must be a function (got " ..
        "number)", lasync.signal, "USR1", 5)
    end)
  end)

  it("a signal that cannot be caught fails with OSError naming it",
    function()
      helper.run(function()
        local err = helper.error_of(lasync.signal, 9, function() end)
        assert(lasync.is_error(err, lasync.OSError), helper.show(err))
        assert.are.equal("EINVAL", err.code)
        assert(err.target == "SIGKILL" or err.target == "9",
          "target: " .. tostring(err.target))
      end)
    end)

  it("a signal without a name of its own is called SIG<number>", function()
    helper.run(function()
      local got
      local h <close> = lasync.signal(34, function(n) got = n end)
      raise("34")
      assert.is_true(wait_until(function() return got ~= nil end))
      assert.are.equal("SIG34", got)
    end)
  end)

  it("cannot be used outside a running loop", function()
    raises_msg("lasync.signal: no running event loop", lasync.signal, "USR1",
      function() end)
  end)
end)

describe("lasync.wait_signal", function()
  it("returns the signal's name once it arrives", function()
    helper.run(function()
      local t = lasync.spawn(lasync.wait_signal, "SIGUSR2")
      lasync.sleep(0.01)
      assert.is_false(t:done())
      raise("USR2")
      assert.are.equal("SIGUSR2", t:await())
      local u = lasync.spawn(lasync.wait_signal, 10) -- SIGUSR1 by number
      local v = lasync.spawn(lasync.wait_signal, "USR1")
      lasync.sleep(0.01)
      raise("USR1")
      assert.are.same({ "SIGUSR1", "SIGUSR1" }, { lasync.gather(u, v) })
    end)
  end)

  it("each call waits for the next delivery", function()
    helper.run(function()
      local seen = 0
      local keep <close> = lasync.signal("USR1", function() seen = seen + 1 end)
      raise("USR1")
      assert.is_true(wait_until(function() return seen == 1 end))
      local t = lasync.spawn(lasync.wait_signal, "USR1")
      lasync.sleep(0.01)
      assert.is_false(t:done()) -- the earlier delivery does not count
      raise("USR1")
      assert.are.equal("SIGUSR1", t:await())
    end)
  end)

  it("can be cancelled, leaving nothing behind", function()
    helper.run(function()
      local t = lasync.spawn(lasync.wait_signal, "USR2")
      lasync.sleep(0.01)
      assert.is_true(t:cancel())
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert(lasync.is_cancelled(err), helper.show(err))
      -- a later delivery reaches only the live watchers
      local got = {}
      local h <close> = lasync.signal("USR2", function(n) got[#got + 1] = n end)
      raise("USR2")
      assert.is_true(wait_until(function() return #got == 1 end))
      lasync.sleep(0.01)
      assert.are.same({ "SIGUSR2" }, got)
      assert.is_true(t:cancelled())
    end)
  end)

  it("under a timeout raises TimeoutError", function()
    helper.run(function()
      local ok, err = pcall(lasync.wait_for, function()
        return lasync.wait_signal("USR1")
      end, 0.02)
      assert.is_false(ok)
      assert(lasync.is_timeout(err), helper.show(err))
    end)
  end)

  it("refuses unknown signals; needs a task", function()
    helper.run(function()
      raises_msg("lasync.wait_signal: unknown signal NOPE",
        lasync.wait_signal, "NOPE")
      raises_msg("lasync.wait_signal: unknown signal 99",
        lasync.wait_signal, 99)
      raises_msg("lasync.wait_signal: unknown signal (expected a signal " ..
        "name or number, got no value)", lasync.wait_signal)
    end)
    raises_msg("lasync.wait_signal: not inside a task", lasync.wait_signal,
      "USR1")
  end)
end)

describe("Ctrl-C", function()
  it("cancels the main task: cleanup runs, exit 130, one line on stderr",
    function()
      local rc, ms, out, err = interrupt([[
        local ok, e = pcall(function()
          local _ <close> = setmetatable({}, {__close = function(_, e)
            print("close saw", tostring(e))
          end})
          ready()
          lasync.sleep(5)
        end)
        print("pcall caught", tostring(e), lasync.is_cancelled(e))
        error(e, 0)
      ]])
      assert.are.equal(130, rc)
      assert(ms < 1000, "took " .. ms .. " ms to exit")
      assert.are.equal("close saw\tCancelledError: interrupted (SIGINT)\n" ..
        "pcall caught\tCancelledError: interrupted (SIGINT)\ttrue\n", out)
      assert.are.equal("lasync: interrupted\n", err)
    end)

  it("a plain script ends with 130 and no traceback", function()
    local rc, ms, out, err = interrupt([[
      print("start")
      io.stdout:flush()
      ready()
      lasync.sleep(5)
      print("not reached")
    ]])
    assert.are.equal(130, rc)
    assert(ms < 1000, "took " .. ms .. " ms to exit")
    assert.are.equal("start\n", out)
    assert.are.equal("lasync: interrupted\n", err)
  end)

  it("a script that swallows the cancel finishes normally", function()
    local rc, _, out, err = interrupt([[
      ready()
      local ok = pcall(lasync.sleep, 5)
      lasync.sleep(0.01)
      print("went on", ok)
    ]])
    assert.are.equal(0, rc)
    assert.are.equal("went on\tfalse\n", out)
    assert.are.equal("", err)
  end)

  it("a second SIGINT exits at once", function()
    local rc, ms, out, err = interrupt([[
      ready()
      local ok = pcall(lasync.sleep, 5)
      print("cleanup", ok)
      io.stdout:flush()
      ready()
      lasync.sleep(5) -- a slow cleanup ignoring the cancel
      print("not reached")
    ]], 2)
    assert.are.equal(130, rc)
    assert(ms < 500, "took " .. ms .. " ms to exit")
    assert.are.equal("cleanup\tfalse\n", out)
    assert.matches("lasync: interrupted again: exiting", err, 1, true)
  end)

  -- A thread cannot be killed: as asyncio.run waits for its executor, the
  -- run ends only once the worker call in progress has returned (within
  -- LASYNC_SHUTDOWN_TIMEOUT, raised here: 1 s of CPU may take longer).
  it("ends a script awaiting a 1 s to_thread call once the call returns",
    function()
      local rc, ms, out, err = interrupt([[
        print("start")
        io.stdout:flush()
        lasync.to_thread(function(ready_file)
          io.open(ready_file, "w"):close() -- it runs: SIGINT now
          local t = os.clock() + 1
          while os.clock() < t do end
          io.write("worker done\n")
          io.stdout:flush()
        end, READY .. 1):await()
        print("not reached")
      ]], 1, nil, "LASYNC_SHUTDOWN_TIMEOUT=30")
      assert.are.equal(130, rc)
      assert.are.equal("start\nworker done\n", out)
      assert.are.equal("lasync: interrupted\n", err)
      assert(ms >= 300, "took only " .. ms .. " ms after SIGINT to exit")
    end)

  it("makes lasync.run raise lasync.KeyboardInterrupt", function()
    local rc, _, out, err = interrupt([[
      local lasync = require "lasync"
      local seen
      local ok, e = pcall(lasync.run, function()
        ready()
        local ok2, e2 = pcall(lasync.sleep, 5)
        seen = tostring(e2)
        error(e2, 0)
      end)
      print(ok, lasync.is_error(e, lasync.KeyboardInterrupt),
        lasync.is_cancelled(e), tostring(e))
      print(seen)
    ]], nil, "lua5.4")
    assert.are.equal(0, rc)
    assert.are.equal("false\ttrue\tfalse\tKeyboardInterrupt: interrupted\n" ..
      "CancelledError: interrupted (SIGINT)\n", out)
    assert.are.equal("", err)
  end)

  -- Without the command's hook (stock lua5.4 + lasync.run), a second
  -- Ctrl-C is asyncio's: not caught again, the process ends by SIGINT at
  -- once (the shell's 130), with no message of the command's.
  it("a second SIGINT under lua5.4 ends the process by SIGINT", function()
    local rc, ms, out, err = interrupt([[
      local lasync = require "lasync"
      lasync.run(function()
        ready()
        local ok = pcall(lasync.sleep, 5)
        print("cleanup", ok)
        io.stdout:flush()
        ready()
        lasync.sleep(5) -- a slow cleanup ignoring the cancel
        print("not reached")
      end)
      print("not reached either")
    ]], 2, "lua5.4")
    assert.are.equal(130, rc)
    assert(ms < 500, "took " .. ms .. " ms to exit")
    assert.are.equal("cleanup\tfalse\n", out)
    assert.are.equal("", err)
  end)

  it("steps back while the script watches SIGINT itself", function()
    local rc, _, out, err = interrupt([[
      local got = {}
      local h = lasync.signal("SIGINT", function(n) got[#got + 1] = n end)
      ready()
      local limit = lasync.get_running_loop():time() + 10
      repeat lasync.sleep(0.005)
      until #got > 0 or lasync.get_running_loop():time() > limit
      print("handler", #got, got[1])
      h:close()
      print("closed")
      io.stdout:flush()
      ready()
      lasync.sleep(5)
      print("not reached")
    ]], 2)
    assert.are.equal(130, rc) -- once closed, Ctrl-C interrupts again
    assert.are.equal("handler\t1\tSIGINT\nclosed\n", out)
    assert.are.equal("lasync: interrupted\n", err)
  end)

  it("wait_signal(\"SIGINT\") gets it; later Ctrl-C interrupts again",
    function()
      local rc, ms, out, err = interrupt([[
        local t = lasync.spawn(lasync.wait_signal, "SIGINT")
        lasync.sleep(0) -- t waits for SIGINT
        ready()
        print("got", t:await())
        io.stdout:flush()
        ready()
        lasync.sleep(5)
        print("not interrupted")
      ]], 2)
      assert.are.equal("got\tSIGINT\n", out)
      assert.are.equal(130, rc)
      assert(ms < 1000, "took " .. ms .. " ms to exit")
      assert.are.equal("lasync: interrupted\n", err)
    end)

  it("a cancelled wait_signal(\"SIGINT\") gives Ctrl-C back", function()
    local rc, _, out, err = interrupt([[
      local t = lasync.spawn(lasync.wait_signal, "SIGINT")
      lasync.sleep(0) -- t waits for SIGINT
      t:cancel()
      pcall(t.await, t)
      print("cancelled")
      io.stdout:flush()
      ready()
      lasync.sleep(5)
    ]])
    assert.are.equal(130, rc)
    assert.are.equal("cancelled\n", out)
    assert.are.equal("lasync: interrupted\n", err)
  end)
end)
