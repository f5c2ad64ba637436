-- Tasks: creation, start order, results, cancellation, done callbacks and
-- misuse, checked against asyncio's Task semantics.
local helper = require "helper"
local lasync = helper.lasync
local escape = helper.escape

describe("lasync.create_task", function()
  it("returns a pending Task named Task-<n> by default", function()
    helper.run(function()
      local t = lasync.create_task(function() end)
      assert.is_true(lasync.isfuture(t))
      assert.matches("^Task%-%d+$", t:get_name())
      assert.are.equal("lasync.Task: " .. t:get_name() .. " (pending)",
        tostring(t))
      assert.is_false(t:done())
      assert.is_false(t:cancelled())
      t:await()
      assert.are.equal("lasync.Task: " .. t:get_name() .. " (finished)",
        tostring(t))
    end, 1)
  end)

  it("numbers default names in creation order", function()
    helper.run(function()
      local a = lasync.create_task(function() end)
      local b = lasync.create_task(function() end)
      local na = tonumber(a:get_name():match("%d+"))
      local nb = tonumber(b:get_name():match("%d+"))
      assert.are.equal(na + 1, nb)
      lasync.gather(a, b)
    end, 1)
  end)

  it("takes a name option, and set_name renames and returns the task",
    function()
      helper.run(function()
        local t = lasync.create_task({ name = "worker" }, function() end)
        assert.are.equal("worker", t:get_name())
        assert.are.equal(t, t:set_name("renamed"))
        assert.are.equal("renamed", t:get_name())
        assert.matches("^lasync%.Task: renamed %(pending%)$", tostring(t))
        t:await()
      end, 1)
    end)

  it("has spawn as an alias", function()
    local r = helper.run(function()
      return lasync.spawn({ name = "s" }, function(x) return x * 2 end, 21)
          :await()
    end, 1)
    assert.are.equal(42, r)
  end)

  it("passes its extra arguments to the function, nils included",
    function()
      helper.run(function()
        local t = lasync.create_task(function(...)
          return select("#", ...), ...
        end, 1, nil, 3, nil)
        local n, a, b, c, d = t:await()
        assert.are.equal(4, n)
        assert.are.same({ 1, nil, 3, nil }, { a, b, c, d })
      end, 1)
    end)

  it("rejects a non-function", function()
    helper.run(function()
      local err = helper.error_of(lasync.create_task, 42)
      assert.matches(escape("lasync.create_task: expected a function " ..
        "(got number)"), err)
      err = helper.error_of(lasync.create_task, { name = "x" }, "nope")
      assert.matches(escape("lasync.create_task: expected a function " ..
        "(got string)"), err)
    end, 1)
  end)

  it("rejects a non-string name option", function()
    helper.run(function()
      local err = helper.error_of(lasync.create_task, { name = {} },
        function() end)
      assert.matches("option 'name' must be a string", err)
      lasync.sleep(0) -- the task was created before the check: let it end
    end, 1)
  end)

  it("needs a running loop", function()
    local err = helper.error_of(lasync.create_task, function() end)
    assert.matches(escape("lasync.create_task: no running event loop: " ..
      "run this code with lasync.run or the lasync command"), err)
  end)
end)

describe("task start", function()
  it("does not run any of the task inside create_task", function()
    helper.run(function()
      local log = {}
      local t = lasync.create_task(function() log[#log + 1] = "body" end)
      log[#log + 1] = "created"
      assert.are.same({ "created" }, log)
      t:await()
      assert.are.same({ "created", "body" }, log)
    end, 1)
  end)

  it("starts tasks on the next loop iteration, in creation order",
    function()
      helper.run(function()
        local log = {}
        for i = 1, 5 do
          lasync.create_task(function() log[#log + 1] = i end)
        end
        log[#log + 1] = "main"
        lasync.sleep(0)
        assert.are.same({ "main", 1, 2, 3, 4, 5 }, log)
      end, 1)
    end)

  it("queues the first step behind callbacks scheduled before it (FIFO)",
    function()
      helper.run(function()
        local log = {}
        local loop = lasync.get_running_loop()
        loop:call_soon(function() log[#log + 1] = "soon1" end)
        local t = lasync.create_task(function() log[#log + 1] = "task" end)
        loop:call_soon(function() log[#log + 1] = "soon2" end)
        t:await()
        lasync.sleep(0)
        assert.are.same({ "soon1", "task", "soon2" }, log)
      end, 1)
    end)

  it("runs tasks created by a task after the tasks already ready",
    function()
      helper.run(function()
        local log = {}
        local a = lasync.create_task(function()
          log[#log + 1] = "a"
          lasync.create_task(function() log[#log + 1] = "a.child" end)
        end)
        local b = lasync.create_task(function() log[#log + 1] = "b" end)
        lasync.gather(a, b)
        lasync.sleep(0)
        assert.are.same({ "a", "b", "a.child" }, log)
      end, 1)
    end)
end)

describe("awaiting tasks", function()
  it("runs two sleeping tasks concurrently: the time is the max, not the sum",
    function()
      helper.run(function()
        local t0 = helper.now()
        local t1 = lasync.create_task(function()
          lasync.sleep(0.02)
          return "one"
        end)
        local t2 = lasync.create_task(function()
          lasync.sleep(0.04)
          return "two"
        end)
        local r1 = lasync.await(t1)
        local r2 = lasync.await(t2)
        local elapsed = helper.now() - t0
        assert.are.equal("one", r1)
        assert.are.equal("two", r2)
        assert.is_true(elapsed >= 0.04, "elapsed " .. elapsed)
        assert.is_true(elapsed < 0.06, "elapsed " .. elapsed)
      end, 2)
    end)

  it("takes the sum of the delays when the sleeps are awaited in sequence",
    function()
      helper.run(function()
        local elapsed = helper.timed(function()
          lasync.sleep(0.02)
          lasync.sleep(0.02)
        end)
        assert.is_true(elapsed >= 0.04, "elapsed " .. elapsed)
        elapsed = helper.timed(function()
          lasync.await(function() lasync.sleep(0.01) end)
          lasync.await(function() lasync.sleep(0.02) end)
        end)
        assert.is_true(elapsed >= 0.03, "elapsed " .. elapsed)
      end, 2)
    end)

  it("returns every result of the task, nils included", function()
    helper.run(function()
      local t = lasync.create_task(function()
        lasync.sleep(0)
        return nil, 2, nil, "four", nil
      end)
      local res = table.pack(t:await())
      assert.are.equal(5, res.n)
      assert.are.same({ nil, 2, nil, "four", nil }, { res[1], res[2], res[3],
        res[4], res[5] })
      res = table.pack(lasync.await(t))
      assert.are.equal(5, res.n)
      res = table.pack(t:result())
      assert.are.equal(5, res.n)
      assert.are.equal("four", res[4])
    end, 1)
  end)

  it("returns no values for a task that returns none", function()
    helper.run(function()
      local t = lasync.create_task(function() end)
      assert.are.equal(0, select("#", t:await()))
      assert.are.equal(0, select("#", t:result()))
    end, 1)
  end)

  it("starts a function given to await as a task and returns its results",
    function()
      helper.run(function()
        local inside
        local a, b = lasync.await(function()
          inside = lasync.current_task()
          lasync.sleep(0)
          return "x", "y"
        end)
        assert.are.equal("x", a)
        assert.are.equal("y", b)
        assert.is_not_nil(inside)
        assert.are_not.equal(lasync.current_task(), inside)
        assert.is_true(inside:done())
      end, 1)
    end)

  it("re-raises the task's error unchanged (tables by identity)", function()
    helper.run(function()
      local e = { code = 7 }
      local t = lasync.create_task(function()
        lasync.sleep(0)
        error(e)
      end)
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.are.equal(e, err)
      ok, err = pcall(t.result, t)
      assert.is_false(ok)
      assert.are.equal(e, err)
      assert.are.equal(e, t:exception())
      assert.is_true(t:done())
      assert.is_false(t:cancelled())
      assert.matches("%(failed%)$", tostring(t))
    end, 1)
  end)

  it("re-raises string errors equal to what the task raised", function()
    helper.run(function()
      local t = lasync.create_task(function() error("plain", 0) end)
      local ok, err = pcall(lasync.await, t)
      assert.is_false(ok)
      assert.are.equal("plain", err)
    end, 1)
  end)

  it("lets several tasks await the same task, woken in order", function()
    helper.run(function()
      local log = {}
      local target = lasync.create_task(function()
        lasync.sleep(0.005)
        return "v"
      end)
      local waiters = {}
      for i = 1, 3 do
        waiters[i] = lasync.create_task(function()
          local v = target:await()
          log[#log + 1] = i .. v
        end)
      end
      lasync.gather(waiters[1], waiters[2], waiters[3])
      assert.are.same({ "1v", "2v", "3v" }, log)
    end, 1)
  end)

  it("does not yield when awaiting a task that is already done", function()
    helper.run(function()
      local done = lasync.create_task(function() return 1 end)
      done:await()
      local log = {}
      local other = lasync.create_task(function() log[#log + 1] = "other" end)
      for _ = 1, 10 do done:await() end
      log[#log + 1] = "main"
      other:await()
      assert.are.same({ "main", "other" }, log)
    end, 1)
  end)
end)

describe("cancelling chains of tasks", function()
  -- run in a child process: these crashed the interpreter (segfault)
  it("cancelling the top of a chain of 200 awaiting tasks cancels them all",
    function()
      local code, out, err = helper.run_script([[
local cancelled = 0
local bottom = lasync.Event() -- set once all 201 tasks are awaiting
local function chain(n)
  local ok, e = pcall(function()
    if n == 0 then
      bottom:set()
      return lasync.sleep(10)
    end
    return lasync.create_task(chain, n - 1):await()
  end)
  if lasync.is_cancelled(e) then cancelled = cancelled + 1 end
  error(e, 0)
end
local top = lasync.create_task(chain, 200)
bottom:wait()
top:cancel()
local ok, e = pcall(top.await, top)
print(ok, lasync.is_cancelled(e), cancelled)
]])
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal("false\ttrue\t201\n", out)
    end)

  it("cancelling one of two tasks awaiting each other does not crash",
    function()
      -- asyncio raises RecursionError here; lasync must not crash
      local code, out = helper.run_script([[
local a, b
a = lasync.create_task(function() return b:await() end)
b = lasync.create_task(function() return a:await() end)
lasync.sleep(0)
pcall(a.cancel, a)
print("survived")
os.exit(0)
]])
      assert.are.equal(0, code)
      assert.are.equal("survived\n", out)
    end)
end)

describe("tasks with many results", function()
  -- run in a child process: this crashed the interpreter (heap corruption)
  it("a task may return thousands of values", function()
    local code, out, err = helper.run_script([[
local t = lasync.create_task(function()
  local v = {}
  for i = 1, 5000 do v[i] = i end
  return table.unpack(v, 1, 5000)
end)
local res = table.pack(t:await())
print(res.n, res[1], res[5000])
]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("5000\t1\t5000\n", out)
  end)
end)

describe("task state methods", function()
  it("result() and exception() raise InvalidStateError while pending",
    function()
      helper.run(function()
        local t = lasync.create_task(function() lasync.sleep(0.001) end)
        local err = helper.error_of(t.result, t)
        assert.is_true(lasync.is_error(err, lasync.InvalidStateError))
        assert.matches("result is not set", tostring(err))
        err = helper.error_of(t.exception, t)
        assert.is_true(lasync.is_error(err, lasync.InvalidStateError))
        assert.matches("exception is not set", tostring(err))
        t:await()
      end, 1)
    end)

  it("exception() is nil for a task that finished", function()
    helper.run(function()
      local t = lasync.create_task(function() return 1 end)
      t:await()
      assert.is_nil(t:exception())
    end, 1)
  end)

  it("get_loop() is the running loop; current_task() the running task",
    function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        local main = lasync.current_task()
        assert.are.equal("main", main:get_name())
        assert.are.equal(loop, main:get_loop())
        local seen
        local t = lasync.create_task(function() seen = lasync.current_task() end)
        assert.are.equal(loop, t:get_loop())
        t:await()
        assert.are.equal(t, seen)
      end, 1)
      assert.is_nil(lasync.current_task())
    end)

  it("get_coro() is the task's coroutine until it is done", function()
    helper.run(function()
      local co
      local t = lasync.create_task(function()
        co = coroutine.running()
        lasync.sleep(0.001)
      end)
      lasync.sleep(0)
      assert.are.equal("thread", type(t:get_coro()))
      assert.are.equal(co, t:get_coro())
      t:await()
      assert.is_nil(t:get_coro())
    end, 1)
  end)

  it("where() names the line a pending task is suspended at", function()
    helper.run(function()
      local line
      local t = lasync.create_task(function()
        line = debug.getinfo(1, "l").currentline + 1
        lasync.sleep(0.005)
      end)
      lasync.sleep(0)
      assert.matches("task_spec%.lua:" .. line .. "$", t:where())
      t:await()
      assert.is_nil(t:where())
    end, 1)
  end)

  it("traceback() shows where a failed task raised its error", function()
    helper.run(function()
      local t = lasync.create_task({ name = "failing" }, function()
        lasync.sleep(0)
        error("broken")
      end)
      assert.is_nil(t:traceback())
      pcall(t.await, t)
      local tb = t:traceback()
      assert.are.equal("string", type(tb))
      assert.matches("stack traceback of task 'failing':", tb, 1, true)
      assert.matches("task_spec.lua", tb, 1, true)
    end, 1)
  end)

  it("all_tasks() lists the pending tasks of the running loop", function()
    helper.run(function()
      local t = lasync.create_task(function() lasync.sleep(0.001) end)
      local all = lasync.all_tasks()
      local found = {}
      for _, x in ipairs(all) do found[x] = true end
      assert.is_true(found[t])
      assert.is_true(found[lasync.current_task()])
      t:await()
      for _, x in ipairs(lasync.all_tasks()) do
        assert.are_not.equal(t, x)
      end
    end, 1)
    local err = helper.error_of(lasync.all_tasks)
    assert.matches("no running event loop", err)
  end)

  it("tasks() lists name, state and the line each task waits at",
     function()
    helper.run(function()
      local w = lasync.create_task(function()
        lasync.sleep(10) -- the line tasks() must show
      end)
      local wait_line = debug.getinfo(1, "l").currentline - 2
      w:set_name("worker")
      lasync.sleep(0) -- let it start and wait
      local list = lasync.tasks()
      local me = lasync.current_task()
      assert.are.equal(#lasync.all_tasks(), #list)
      local rows = {}
      for _, row in ipairs(list) do rows[row.task] = row end
      assert.are.equal("worker", rows[w].name)
      assert.are.equal("waiting", rows[w].state)
      assert.matches("task_spec%.lua:" .. wait_line .. "$", rows[w].where)
      assert.are.equal("running", rows[me].state)
      local shown = tostring(list)
      assert.matches("^name%s+state%s+at\n", shown)
      assert.matches("\nworker%s+waiting%s+[^\n]*task_spec%.lua:" ..
                     wait_line, shown)
      w:cancel()
    end, 1)
    local err = helper.error_of(lasync.tasks)
    assert.matches("^[^\n]*lasync%.tasks: no running event loop", err)
  end)

  it("tasks() and t:where() say the same: the user's line, not lasync's",
     function()
    helper.run(function()
      local never = lasync.Future()
      local line
      local inner = lasync.create_task(function()
        line = debug.getinfo(1, "l").currentline + 1
        lasync.wait({ never }) -- waits inside lasync's own init.lua
      end)
      local fresh -- created below, never started when tasks() runs
      lasync.sleep(0)
      fresh = lasync.create_task(function() end)
      local rows = {}
      for _, row in ipairs(lasync.tasks()) do rows[row.task] = row end
      assert.matches("task_spec%.lua:" .. line .. "$", inner:where())
      assert.are.equal(inner:where(), rows[inner].where)
      assert.are.equal("not started", fresh:where())
      assert.are.equal(fresh:where(), rows[fresh].where)
      local me = lasync.current_task()
      assert.matches("task_spec%.lua:%d+$", rows[me].where)
      inner:cancel()
      pcall(inner.await, inner)
      fresh:await()
    end, 1)
    local err = helper.error_of(lasync.tasks)
    assert.are.equal("lasync.tasks: no running event loop: run this " ..
                     "code with lasync.run or the lasync command", err)
    err = helper.error_of(function() lasync.tasks() end)
    assert.matches("^[^\n]*task_spec%.lua:%d+: lasync%.tasks: no running " ..
                   "event loop", err)
  end)
end)

describe("task cancellation", function()
  it("a task cancelled before its first step never runs its body",
    function()
      helper.run(function()
        local ran = false
        local t = lasync.create_task(function() ran = true end)
        assert.is_true(t:cancel())
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert.is_true(lasync.is_cancelled(err))
        assert.is_false(ran)
        assert.is_true(t:done())
        assert.is_true(t:cancelled())
        assert.matches("%(cancelled%)$", tostring(t))
      end, 1)
    end)

  it("delivers CancelledError at the task's await point", function()
    helper.run(function()
      local log = {}
      local t = lasync.create_task(function()
        log[#log + 1] = "start"
        local ok, err = pcall(lasync.sleep, 1)
        log[#log + 1] = lasync.is_cancelled(err) and "cancelled" or "other"
        error(err, 0)
      end)
      lasync.sleep(0)
      local elapsed = helper.timed(function()
        t:cancel()
        pcall(t.await, t)
      end)
      assert.are.same({ "start", "cancelled" }, log)
      assert.is_true(t:cancelled())
      assert.is_true(elapsed < 0.5)
    end, 2)
  end)

  it("does not interrupt code between awaits", function()
    helper.run(function()
      local log = {}
      local t
      t = lasync.create_task(function()
        log[#log + 1] = "before"
        t:cancel() -- a cancel while running lands at the next await
        log[#log + 1] = "after"
        local ok, err = pcall(lasync.sleep, 0)
        log[#log + 1] = lasync.is_cancelled(err) and "cancelled" or "not"
      end)
      t:await()
      assert.are.same({ "before", "after", "cancelled" }, log)
    end, 1)
  end)

  it("puts the cancel message in the CancelledError", function()
    helper.run(function()
      local t = lasync.create_task(function() lasync.sleep(1) end)
      lasync.sleep(0)
      t:cancel("stop now")
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.is_true(lasync.is_cancelled(err))
      assert.are.equal("stop now", err.message)
      assert.are.equal("CancelledError: stop now", tostring(err))
      err = helper.error_of(t.result, t)
      assert.are.equal("stop now", err.message)
      err = helper.error_of(t.exception, t)
      assert.is_true(lasync.is_cancelled(err))
      assert.are.equal("stop now", err.message)
    end, 1)
  end)

  it("the message reaches the task's own pcall", function()
    helper.run(function()
      local seen
      local t = lasync.create_task(function()
        local _, err = pcall(lasync.sleep, 1)
        seen = err
      end)
      lasync.sleep(0)
      t:cancel("why")
      t:await()
      assert.is_true(lasync.is_cancelled(seen))
      assert.are.equal("why", seen.message)
    end, 1)
  end)

  it("cancel() returns false on a done task", function()
    helper.run(function()
      local t = lasync.create_task(function() return 1 end)
      t:await()
      assert.is_false(t:cancel())
      assert.is_false(t:cancelled())
      assert.are.equal(1, t:result())
      local f = lasync.create_task(function() error("x", 0) end)
      pcall(f.await, f)
      assert.is_false(f:cancel())
      local c = lasync.create_task(function() end)
      c:cancel()
      pcall(c.await, c)
      assert.is_false(c:cancel())
    end, 1)
  end)

  it("counts cancel requests in cancelling(); a second cancel returns true",
    function()
      helper.run(function()
        local t = lasync.create_task(function() lasync.sleep(1) end)
        lasync.sleep(0)
        assert.are.equal(0, t:cancelling())
        assert.is_true(t:cancel())
        assert.is_true(t:cancel())
        assert.are.equal(2, t:cancelling())
        pcall(t.await, t)
        assert.is_true(t:cancelled())
      end, 1)
    end)

  it("lets a task catch CancelledError and go on (cancelling() stays > 0)",
    function()
      helper.run(function()
        local log = {}
        local t
        t = lasync.create_task(function()
          local ok, err = pcall(lasync.sleep, 1)
          log[#log + 1] = lasync.is_cancelled(err) and "caught" or "?"
          log[#log + 1] = t:cancelling()
          lasync.sleep(0.001) -- it keeps running and awaiting
          log[#log + 1] = "went on"
          log[#log + 1] = t:uncancel()
          log[#log + 1] = t:cancelling()
          return "survived"
        end)
        lasync.sleep(0)
        assert.is_true(t:cancel())
        assert.are.equal("survived", t:await())
        assert.is_false(t:cancelled())
        assert.are.same({ "caught", 1, "went on", 0, 0 }, log)
      end, 1)
    end)

  it("a swallowed cancel does not come back at the next await", function()
    helper.run(function()
      local t = lasync.create_task(function()
        pcall(lasync.sleep, 1)
        lasync.sleep(0.001)
        lasync.sleep(0)
        return "fine"
      end)
      lasync.sleep(0)
      t:cancel()
      assert.are.equal("fine", t:await())
    end, 1)
  end)

  it("uncancel() never goes below zero", function()
    helper.run(function()
      local t = lasync.current_task()
      assert.are.equal(0, t:uncancel())
      assert.are.equal(0, t:cancelling())
    end, 1)
  end)

  it("ends cancelled when it returns with a cancel still pending", function()
    helper.run(function()
      local t
      t = lasync.create_task(function()
        t:cancel() -- no await follows: the request is still pending
        return "value"
      end)
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.is_true(lasync.is_cancelled(err))
      assert.is_true(t:cancelled())
    end, 1)
  end)

  it("uncancel() down to zero withdraws a pending cancel request (3.13)",
    function()
      helper.run(function()
        local t
        t = lasync.create_task(function()
          t:cancel()
          t:uncancel()
          lasync.sleep(0)
          return "value"
        end)
        assert.are.equal("value", t:await())
        assert.is_false(t:cancelled())
      end, 1)
    end)

  it("a CancelledError raised by the body itself cancels the task",
    function()
      helper.run(function()
        local t = lasync.create_task(function()
          error(lasync.CancelledError("self"))
        end)
        local err = helper.error_of(t.await, t)
        assert.is_true(lasync.is_cancelled(err))
        assert.is_true(t:cancelled())
        assert.are.equal("self", err.message)
      end, 1)
    end)

  it("cancelling a task that awaits another task cancels the inner one too",
    function()
      helper.run(function()
        local log = {}
        local inner = lasync.create_task(function()
          local ok, err = pcall(lasync.sleep, 1)
          log[#log + 1] = "inner " .. (lasync.is_cancelled(err) and
            "cancelled" or "?")
          error(err, 0)
        end)
        local outer = lasync.create_task(function()
          local ok, err = pcall(inner.await, inner)
          log[#log + 1] = "outer " .. (lasync.is_cancelled(err) and
            "cancelled" or "?")
          error(err, 0)
        end)
        lasync.sleep(0)
        assert.is_true(outer:cancel("outer msg"))
        local ok, err = pcall(outer.await, outer)
        assert.is_false(ok)
        assert.is_true(lasync.is_cancelled(err))
        assert.is_true(inner:cancelled())
        assert.is_true(outer:cancelled())
        assert.are.same({ "inner cancelled", "outer cancelled" }, log)
        assert.are.equal("outer msg", helper.error_of(inner.result,
          inner).message)
      end, 1)
    end)

  it("the outer task receives the value of an inner task that swallowed the "
    .. "cancel", function()
      helper.run(function()
        local inner = lasync.create_task(function()
          pcall(lasync.sleep, 1)
          return "inner value", nil, 3
        end)
        local outer = lasync.create_task(function()
          return inner:await()
        end)
        lasync.sleep(0)
        outer:cancel()
        local res = table.pack(outer:await())
        assert.are.equal(3, res.n)
        assert.are.equal("inner value", res[1])
        assert.is_nil(res[2])
        assert.are.equal(3, res[3])
        assert.is_false(outer:cancelled())
        assert.is_false(inner:cancelled())
        assert.are.equal(1, outer:cancelling())
      end, 1)
    end)

  it("cancelling a task awaiting a future cancels the future", function()
    helper.run(function()
      local f = lasync.Future()
      local t = lasync.create_task(function() return f:await() end)
      lasync.sleep(0)
      t:cancel("m")
      local err = helper.error_of(t.await, t)
      assert.is_true(lasync.is_cancelled(err))
      assert.is_true(f:cancelled())
      assert.are.equal("m", helper.error_of(f.result, f).message)
    end, 1)
  end)

  it("the task awaiting a cancelled task gets CancelledError", function()
    helper.run(function()
      local inner = lasync.create_task(function() lasync.sleep(1) end)
      local outer = lasync.create_task(function() inner:await() end)
      lasync.sleep(0)
      inner:cancel()
      local err = helper.error_of(outer.await, outer)
      assert.is_true(lasync.is_cancelled(err))
      assert.is_true(outer:cancelled())
    end, 1)
  end)
end)

describe("task lifetime and late cancels", function()
  it("keeps running a task nobody holds a reference to", function()
    helper.run(function()
      local log = {}
      lasync.create_task(function()
        lasync.sleep(0.002)
        log[#log + 1] = "finished"
      end)
      collectgarbage()
      collectgarbage()
      lasync.sleep(0.01)
      assert.are.same({ "finished" }, log)
    end, 1)
  end)

  it("keeps the cancel message of a task cancelled before it started",
    function()
      helper.run(function()
        local t = lasync.create_task(function() end)
        t:cancel("early")
        local err = helper.error_of(t.await, t)
        assert.are.equal("early", err.message)
      end, 1)
    end)

  it("a cancel after the awaited task finished, before the waiter resumed, "
    .. "still cancels the waiter", function()
      helper.run(function()
        local inner = lasync.create_task(function()
          lasync.sleep(0)
          return "v"
        end)
        local got
        local outer = lasync.create_task(function()
          got = inner:await()
          return got
        end)
        lasync.sleep(0) -- inner sleeps again, outer awaits inner
        lasync.sleep(0) -- inner finished in this batch; outer is queued
        assert.is_true(inner:done())
        assert.is_false(outer:done())
        assert.is_true(outer:cancel())
        local err = helper.error_of(outer.await, outer)
        assert.is_true(lasync.is_cancelled(err))
        assert.is_nil(got)
      end, 1)
    end)
end)

describe("task done callbacks", function()
  it("run via the loop, in registration order, with the task", function()
    helper.run(function()
      local log = {}
      local t = lasync.create_task(function()
        lasync.sleep(0)
        return 1
      end)
      t:add_done_callback(function(x)
        log[#log + 1] = { "a", x, x:done() }
      end)
      t:add_done_callback(function(x) log[#log + 1] = { "b", x } end)
      t:await() -- main's wake-up comes after a and b, as in asyncio
      assert.are.equal(2, #log)
      assert.are.same({ "a", t, true }, log[1])
      assert.are.same({ "b", t }, log[2])
    end, 1)
  end)

  it("registered after a waiter run after that waiter resumes", function()
    helper.run(function()
      local log = {}
      local t = lasync.create_task(function()
        lasync.sleep(0)
        return 1
      end)
      local waiter = lasync.create_task(function()
        t:await()
        log[#log + 1] = "waiter"
      end)
      lasync.sleep(0) -- waiter now awaits t
      t:add_done_callback(function() log[#log + 1] = "cb" end)
      waiter:await()
      lasync.sleep(0)
      assert.are.same({ "waiter", "cb" }, log)
    end, 1)
  end)

  it("are not called synchronously when the task finishes", function()
    helper.run(function()
      local log = {}
      local t
      t = lasync.create_task(function()
        lasync.sleep(0)
        lasync.get_running_loop():call_soon(function()
          log[#log + 1] = "scheduled before the task ended"
        end)
      end)
      t:add_done_callback(function() log[#log + 1] = "done callback" end)
      t:await()
      lasync.sleep(0)
      assert.are.same({ "scheduled before the task ended", "done callback" },
        log)
    end, 1)
  end)

  it("also run for failed and cancelled tasks", function()
    helper.run(function()
      local log = {}
      local f = lasync.create_task(function() error("x", 0) end)
      local c = lasync.create_task(function() lasync.sleep(1) end)
      f:add_done_callback(function(x) log[#log + 1] = x:exception() end)
      c:add_done_callback(function(x) log[#log + 1] = x:cancelled() end)
      lasync.sleep(0)
      c:cancel()
      pcall(c.await, c)
      lasync.sleep(0)
      lasync.sleep(0)
      assert.are.same({ "x", true }, log)
    end, 1)
  end)

  it("remove_done_callback removes every registration and counts them",
    function()
      helper.run(function()
        local log = {}
        local t = lasync.create_task(function() end)
        local function cb() log[#log + 1] = "cb" end
        local function other() log[#log + 1] = "other" end
        t:add_done_callback(cb)
        t:add_done_callback(other)
        t:add_done_callback(cb)
        assert.are.equal(2, t:remove_done_callback(cb))
        assert.are.equal(0, t:remove_done_callback(cb))
        t:await()
        lasync.sleep(0)
        assert.are.same({ "other" }, log)
      end, 1)
    end)
end)

describe("await misuse", function()
  it("outside a task raises a clear error", function()
    local f = lasync.Future()
    local ok, err = pcall(lasync.await, f)
    assert.is_false(ok)
    assert.are.equal("lasync.await: not inside a task: run this code with " ..
      "lasync.run or the lasync command", err)
  end)

  it("a task awaiting itself raises", function()
    helper.run(function()
      local err = helper.error_of(lasync.await, lasync.current_task())
      assert.matches("lasync.await: a task cannot await itself", err, 1, true)
      local t
      t = lasync.create_task(function() return t:await() end)
      err = helper.error_of(t.await, t)
      assert.matches("lasync.await: a task cannot await itself", err, 1, true)
    end, 1)
  end)

  it("awaiting in a coroutine nested inside a task raises", function()
    helper.run(function()
      local ok, err = pcall(coroutine.wrap(function()
        lasync.await(lasync.Future())
      end))
      assert.is_false(ok)
      assert.matches("lasync.await: cannot await in a coroutine nested " ..
        "inside a task", err, 1, true)
      ok, err = pcall(coroutine.wrap(function() lasync.sleep(0) end))
      assert.is_false(ok)
      assert.matches("lasync.sleep: cannot await in a coroutine nested " ..
        "inside a task", err, 1, true)
      -- the task itself is unharmed and can still await
      lasync.sleep(0)
    end, 1)
  end)

  it("a bare coroutine.yield inside a task fails that task", function()
    helper.run(function()
      local after = false
      local t = lasync.create_task(function()
        coroutine.yield("x")
        after = true
      end)
      local err = helper.error_of(t.await, t)
      assert.are.equal("coroutine.yield called in a task: use " ..
        "lasync.sleep(0) to yield to the event loop", err)
      assert.is_false(after)
      assert.is_true(t:done())
      assert.is_false(t:cancelled())
    end, 1)
  end)

  it("a bare yield still runs the task's pending to-be-closed variables",
    function()
      helper.run(function()
        local closed = false
        local t = lasync.create_task(function()
          local guard <close> = setmetatable({}, {
            __close = function() closed = true end })
          coroutine.yield()
        end)
        pcall(t.await, t)
        assert.is_true(closed)
      end, 1)
    end)

  it("awaiting a non-awaitable raises", function()
    helper.run(function()
      local err = helper.error_of(lasync.await, 42)
      assert.matches(escape("lasync.await: number is not awaitable " ..
        "(expected a task, future or function)"), err)
    end, 1)
  end)
end)
