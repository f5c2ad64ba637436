-- lasync.gather: argument order, nils, the list form, huge lists, errors,
-- return_exceptions and cancellation, checked against asyncio.gather.
local helper = require "helper"
local lasync = helper.lasync
local escape = helper.escape

local function sleeper(delay, ...)
  local res = table.pack(...)
  return function()
    lasync.sleep(delay)
    return table.unpack(res, 1, res.n)
  end
end

describe("lasync.gather", function()
  it("returns results in argument order, not completion order", function()
    helper.run(function()
      local log = {}
      local function job(name, delay)
        return lasync.create_task(function()
          lasync.sleep(delay)
          log[#log + 1] = name
          return name
        end)
      end
      local a, b, c = lasync.gather(job("a", 0.015), job("b", 0.001),
        job("c", 0.008))
      assert.are.same({ "b", "c", "a" }, log)
      assert.are.same({ "a", "b", "c" }, { a, b, c })
    end, 1)
  end)

  it("runs the children concurrently", function()
    helper.run(function()
      local elapsed = helper.timed(lasync.gather, sleeper(0.02),
        sleeper(0.02), sleeper(0.02), sleeper(0.02))
      assert.is_true(elapsed >= 0.02, "elapsed " .. elapsed)
      assert.is_true(elapsed < 0.06, "elapsed " .. elapsed)
    end, 1)
  end)

  it("preserves nil results as multiple values", function()
    helper.run(function()
      local res = table.pack(lasync.gather(sleeper(0.002, nil),
        sleeper(0.001, 2), sleeper(0, nil)))
      assert.are.equal(3, res.n)
      assert.is_nil(res[1])
      assert.are.equal(2, res[2])
      assert.is_nil(res[3])
    end, 1)
  end)

  it("gives each child's first result only", function()
    helper.run(function()
      local a, b, extra = lasync.gather(sleeper(0, 1, 2, 3),
        sleeper(0, "x", "y"))
      assert.are.equal(1, a)
      assert.are.equal("x", b)
      assert.is_nil(extra)
    end, 1)
  end)

  it("returns the single result for a single awaitable", function()
    helper.run(function()
      local res = table.pack(lasync.gather(sleeper(0, "only", "more")))
      assert.are.equal(1, res.n)
      assert.are.equal("only", res[1])
    end, 1)
  end)

  it("accepts tasks, futures and functions together", function()
    helper.run(function()
      local f = lasync.Future()
      local t = lasync.create_task(sleeper(0.001, "task"))
      lasync.get_running_loop():call_later(0.002, function()
        f:set_result("future")
      end)
      local a, b, c = lasync.gather(t, f, function() return "function" end)
      assert.are.same({ "task", "future", "function" }, { a, b, c })
    end, 1)
  end)

  it("starts functions as tasks, in argument order", function()
    helper.run(function()
      local log = {}
      lasync.gather(function() log[#log + 1] = 1 end,
        function() log[#log + 1] = 2 end, function() log[#log + 1] = 3 end)
      assert.are.same({ 1, 2, 3 }, log)
    end, 1)
  end)

  it("repeats the result of an awaitable given twice", function()
    helper.run(function()
      local t = lasync.create_task(sleeper(0.001, "same"))
      local a, b, c = lasync.gather(t, t, function() return "other" end)
      assert.are.same({ "same", "same", "other" }, { a, b, c })
    end, 1)
  end)

  it("returns at once, without yielding, when every child is done",
    function()
      helper.run(function()
        local f1, f2 = lasync.Future(), lasync.Future()
        f1:set_result(1)
        f2:set_result(2)
        local log = {}
        local other = lasync.create_task(function() log[#log + 1] = "other" end)
        local a, b = lasync.gather(f1, f2)
        log[#log + 1] = "main"
        other:await()
        assert.are.same({ 1, 2 }, { a, b })
        assert.are.same({ "main", "other" }, log)
      end, 1)
    end)

  it("takes thousands of arguments", function()
    helper.run(function()
      local list = {}
      for i = 1, 5000 do
        list[i] = lasync.create_task(function()
          lasync.sleep(0)
          return i
        end)
      end
      local res = table.pack(lasync.gather(table.unpack(list, 1, 5000)))
      assert.are.equal(5000, res.n)
      assert.are.equal(1, res[1])
      assert.are.equal(5000, res[5000])
    end, 2)
  end)

  it("with no arguments returns nothing", function()
    helper.run(function()
      assert.are.equal(0, select("#", lasync.gather()))
    end, 1)
  end)

  it("needs a task", function()
    local err = helper.error_of(lasync.gather, lasync.Future())
    assert.matches(escape("lasync.gather: not inside a task: run this code " ..
      "with lasync.run or the lasync command"), err)
  end)

  it("rejects non-awaitable arguments with a clear error", function()
    helper.run(function()
      local f = lasync.Future()
      f:set_result()
      local err = helper.error_of(lasync.gather, f, 42)
      assert.matches(escape("lasync.gather: argument #2 is not awaitable " ..
        "(expected a task, future or function, got number)"), err)
      err = helper.error_of(lasync.gather, "x")
      assert.matches(escape("lasync.gather: argument #1 is not awaitable " ..
        "(expected a task, future or function, got string)"), err)
      err = helper.error_of(lasync.gather, { f, true })
      assert.matches(escape("lasync.gather: item #2 is not awaitable " ..
        "(expected a task, future or function, got boolean)"), err)
    end, 1)
  end)
end)

describe("lasync.gather with a list", function()
  it("returns a table with n, nils preserved", function()
    helper.run(function()
      local res = lasync.gather({ sleeper(0.002, "a"), sleeper(0, nil),
        sleeper(0.001, "c"), sleeper(0, nil) })
      assert.are.equal(4, res.n)
      assert.are.equal("a", res[1])
      assert.is_nil(res[2])
      assert.are.equal("c", res[3])
      assert.is_nil(res[4])
    end, 1)
  end)

  it("gather({}) returns {n = 0}", function()
    helper.run(function()
      assert.are.same({ n = 0 }, lasync.gather({}))
    end, 1)
  end)

  it("takes options after the list", function()
    helper.run(function()
      local res = lasync.gather({ sleeper(0, 1), function()
        error("e", 0)
      end }, { return_exceptions = true })
      assert.are.same({ 1, "e", n = 2 }, res)
    end, 1)
  end)

  it("rejects arguments after the options", function()
    helper.run(function()
      local err = helper.error_of(lasync.gather, {}, {}, 1)
      assert.matches("lasync.gather: too many arguments after the list", err,
        1, true)
    end, 1)
  end)

  it("gathers a dynamic list of 100000 tasks", function()
    helper.run(function()
      local n = 100000
      local list = {}
      local function job(i)
        lasync.sleep(0)
        return i * 2
      end
      for i = 1, n do list[i] = lasync.create_task(job, i) end
      local res = lasync.gather(list)
      assert.are.equal(n, res.n)
      for i = 1, n, 997 do assert.are.equal(i * 2, res[i]) end
      assert.are.equal(n * 2, res[n])
    end, 10)
  end)

  it("gathers 1,000,000 futures", function()
    helper.run(function()
      local n = 1000000
      local list = {}
      for i = 1, n do list[i] = lasync.Future() end
      lasync.get_running_loop():call_soon(function()
        for i = n, 1, -1 do list[i]:set_result(i) end
      end)
      local res = lasync.gather(list)
      assert.are.equal(n, res.n)
      assert.are.equal(1, res[1])
      assert.are.equal(n, res[n])
      assert.are.equal(123456, res[123456])
    end, 10)
  end)
end)

describe("lasync.gather errors", function()
  it("propagates the first error; the other children keep running",
    function()
      helper.run(function()
        local log = {}
        local e = { "first" }
        local release = lasync.Event() -- slow runs on after gather raised
        local slow = lasync.create_task(function()
          release:wait()
          log[#log + 1] = "slow finished"
          return "slow"
        end)
        local late_fail = lasync.create_task(function()
          lasync.sleep(0.005)
          error("second", 0)
        end)
        local fail = lasync.create_task(function()
          lasync.sleep(0.001)
          error(e)
        end)
        local ok, err = pcall(lasync.gather, slow, late_fail, fail)
        assert.is_false(ok)
        assert.are.equal(e, err)
        assert.is_false(slow:done())
        assert.is_false(slow:cancelled())
        release:set()
        assert.are.equal("slow", slow:await())
        assert.are.same({ "slow finished" }, log)
        assert.are.equal("second", helper.error_of(late_fail.await,
          late_fail))
        assert.is_false(late_fail:cancelled())
      end, 1)
    end)

  it("raises at once when a child has already failed", function()
    helper.run(function()
      local f = lasync.Future()
      f:set_exception("early")
      local pending = lasync.create_task(sleeper(0.002, "p"))
      local ok, err = pcall(lasync.gather, pending, f)
      assert.is_false(ok)
      assert.are.equal("early", err)
      assert.are.equal("p", pending:await())
    end, 1)
  end)

  it("raises CancelledError when a child is cancelled", function()
    helper.run(function()
      local victim = lasync.create_task(sleeper(1))
      local other = lasync.create_task(sleeper(0.005, "other"))
      lasync.get_running_loop():call_later(0.001, function()
        victim:cancel("child")
      end)
      local ok, err = pcall(lasync.gather, victim, other)
      assert.is_false(ok)
      assert.is_true(lasync.is_cancelled(err))
      -- the awaiting task itself was not cancelled
      assert.are.equal(0, lasync.current_task():cancelling())
      assert.are.equal("other", other:await())
    end, 1)
  end)

  it("with return_exceptions puts errors in place", function()
    helper.run(function()
      local e = setmetatable({}, { __tostring = function() return "E" end })
      local a, b, c, d = lasync.gather(sleeper(0.003, "ok"),
        function()
          lasync.sleep(0.001)
          error(e)
        end,
        function() error("string error", 0) end,
        sleeper(0, nil),
        { return_exceptions = true })
      assert.are.equal("ok", a)
      assert.are.equal(e, b)
      assert.are.equal("string error", c)
      assert.is_nil(d)
    end, 1)
  end)

  it("with return_exceptions puts CancelledError objects for cancelled "
    .. "children", function()
      helper.run(function()
        local victim = lasync.create_task(sleeper(1))
        local f = lasync.Future()
        lasync.get_running_loop():call_later(0.001, function()
          victim:cancel("bye")
          f:cancel()
        end)
        local a, b, c = lasync.gather(victim, f, sleeper(0.003, "fine"),
          { return_exceptions = true })
        assert.is_true(lasync.is_cancelled(a))
        assert.are.equal("bye", a.message)
        assert.is_true(lasync.is_cancelled(b))
        assert.are.equal("fine", c)
      end, 1)
    end)

  it("with return_exceptions takes already-failed children too", function()
    helper.run(function()
      local f = lasync.Future()
      f:set_exception("already")
      local c = lasync.Future()
      c:cancel()
      local a, b = lasync.gather(f, c, { return_exceptions = true })
      assert.are.equal("already", a)
      assert.is_true(lasync.is_cancelled(b))
    end, 1)
  end)

  it("marks the errors it returned as retrieved (nothing on stderr)",
    function()
      -- checked in cli_spec through the command; here: the results
      helper.run(function()
        local r = lasync.gather({ function() error("x", 0) end },
          { return_exceptions = true })
        assert.are.equal("x", r[1])
      end, 1)
    end)
end)

describe("cancelling a gather", function()
  it("cancelling the task awaiting a gather cancels every child", function()
    helper.run(function()
      local log = {}
      local children = {}
      for i = 1, 3 do
        children[i] = lasync.create_task(function()
          local ok, err = pcall(lasync.sleep, 1)
          log[#log + 1] = i .. (lasync.is_cancelled(err) and " cancelled"
            or " ?")
          error(err, 0)
        end)
      end
      local done = lasync.create_task(function() return "done" end)
      local waiter = lasync.create_task(function()
        return lasync.gather(children[1], children[2], done, children[3])
      end)
      lasync.sleep(0.001)
      assert.is_true(waiter:cancel())
      local ok, err = pcall(waiter.await, waiter)
      assert.is_false(ok)
      assert.is_true(lasync.is_cancelled(err))
      assert.is_true(waiter:cancelled())
      for i = 1, 3 do assert.is_true(children[i]:cancelled()) end
      assert.are.equal("done", done:result())
      table.sort(log)
      assert.are.same({ "1 cancelled", "2 cancelled", "3 cancelled" }, log)
    end, 1)
  end)

  it("the awaiting task gets CancelledError even with return_exceptions",
    function()
      helper.run(function()
        local a = lasync.create_task(sleeper(1))
        local b = lasync.create_task(sleeper(1))
        local waiter = lasync.create_task(function()
          return lasync.gather(a, b, { return_exceptions = true })
        end)
        lasync.sleep(0.001)
        waiter:cancel()
        local err = helper.error_of(waiter.await, waiter)
        assert.is_true(lasync.is_cancelled(err))
        assert.is_true(a:cancelled())
        assert.is_true(b:cancelled())
      end, 1)
    end)

  it("the awaiting task gets CancelledError with return_exceptions when the "
    .. "children are plain futures", function()
      helper.run(function()
        local f1, f2 = lasync.Future(), lasync.Future()
        local waiter = lasync.create_task(function()
          return lasync.gather(f1, f2, { return_exceptions = true })
        end)
        lasync.sleep(0)
        waiter:cancel()
        local ok, err = pcall(waiter.await, waiter)
        assert.is_false(ok)
        assert.is_true(lasync.is_cancelled(err))
        assert.is_true(waiter:cancelled())
        assert.is_true(f1:cancelled())
        assert.is_true(f2:cancelled())
      end, 1)
    end)

  it("the awaiting task gets CancelledError even if the children swallow "
    .. "the cancel", function()
      helper.run(function()
        local function stubborn()
          pcall(lasync.sleep, 1)
          return "kept going"
        end
        local a = lasync.create_task(stubborn)
        local b = lasync.create_task(stubborn)
        local waiter = lasync.create_task(function()
          return lasync.gather(a, b)
        end)
        lasync.sleep(0.001)
        waiter:cancel()
        local err = helper.error_of(waiter.await, waiter)
        assert.is_true(lasync.is_cancelled(err))
        assert.are.equal("kept going", a:await())
        assert.are.equal("kept going", b:await())
      end, 1)
    end)

  it("cancels children given as functions", function()
    helper.run(function()
      local cancelled = 0
      local function child()
        local ok, err = pcall(lasync.sleep, 1)
        if lasync.is_cancelled(err) then cancelled = cancelled + 1 end
        error(err, 0)
      end
      local waiter = lasync.create_task(function()
        return lasync.gather({ child, child, child })
      end)
      lasync.sleep(0.001)
      waiter:cancel()
      pcall(waiter.await, waiter)
      lasync.sleep(0)
      assert.are.equal(3, cancelled)
    end, 1)
  end)

  it("cancelling nested gathers 50 levels deep does not crash", function()
    -- a child process: this crashed the interpreter (segfault)
    local code, out, err = helper.run_script([[
local function level(n)
  if n == 0 then return lasync.sleep(10) end
  return lasync.gather(function() return level(n - 1) end)
end
local top = lasync.create_task(level, 50)
lasync.sleep(0.01)
top:cancel()
local ok, e = pcall(top.await, top)
print(ok, lasync.is_cancelled(e))
]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("false\ttrue\n", out)
  end)

  it("passes the cancel message to the children", function()
    helper.run(function()
      local child = lasync.create_task(sleeper(1))
      local waiter = lasync.create_task(function()
        return lasync.gather(child, sleeper(1))
      end)
      lasync.sleep(0.001)
      waiter:cancel("shutdown")
      pcall(waiter.await, waiter)
      local err = helper.error_of(child.result, child)
      assert.are.equal("shutdown", err.message)
    end, 1)
  end)
end)
