-- Futures: results, errors, cancellation, done callbacks, isfuture and
-- ensure_future, checked against asyncio's Future semantics.
local helper = require "helper"
local lasync = helper.lasync
local escape = helper.escape

describe("lasync.Future", function()
  it("is a pending future bound to the running loop", function()
    helper.run(function()
      local f = lasync.Future()
      assert.is_true(lasync.isfuture(f))
      assert.is_false(f:done())
      assert.is_false(f:cancelled())
      assert.are.equal(lasync.get_running_loop(), f:get_loop())
      assert.matches("^lasync%.Future: .+ %(pending%)$", tostring(f))
    end, 1)
  end)

  it("can be created with loop:create_future()", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local f = loop:create_future()
      assert.is_true(lasync.isfuture(f))
      assert.are.equal(loop, f:get_loop())
      loop:call_soon(f.set_result, f, "later")
      assert.are.equal("later", f:await())
    end, 1)
  end)

  it("created outside a loop, is bound to the loop that awaits it",
    function()
      -- lasync.run directly: the future keeps its loop object alive, which
      -- helper.run would count as a leaked loop
      local f = lasync.Future()
      assert.is_nil(f:get_loop())
      local loop
      local r = lasync.run(function()
        loop = lasync.get_running_loop()
        loop:call_soon(function() f:set_result(5) end)
        return f:await()
      end)
      assert.are.equal(5, r)
      assert.are.equal(loop, f:get_loop())
      assert.is_true(loop:is_closed())
    end)

  it("refuses to be awaited from another loop", function()
    local other = lasync.new_event_loop()
    local f = other:create_future()
    helper.run(function()
      local err = helper.error_of(lasync.await, f)
      assert.matches("lasync.await: the future belongs to another event loop",
        err, 1, true)
    end, 1)
    other:close()
  end)
end)

describe("Future results", function()
  it("set_result wakes the awaiting task with every value, nils included",
    function()
      helper.run(function()
        local f = lasync.Future()
        local t = lasync.create_task(function()
          return table.pack(f:await())
        end)
        lasync.sleep(0)
        f:set_result(nil, "two", nil)
        local res = t:await()
        assert.are.equal(3, res.n)
        assert.is_nil(res[1])
        assert.are.equal("two", res[2])
        assert.is_nil(res[3])
        res = table.pack(f:result())
        assert.are.equal(3, res.n)
        assert.are.equal("two", res[2])
        res = table.pack(lasync.await(f))
        assert.are.equal(3, res.n)
        assert.matches("%(finished%)$", tostring(f))
      end, 1)
    end)

  it("set_result() with no values gives no values", function()
    helper.run(function()
      local f = lasync.Future()
      f:set_result()
      assert.is_true(f:done())
      assert.are.equal(0, select("#", f:result()))
      assert.are.equal(0, select("#", f:await()))
      assert.is_nil(f:exception())
    end, 1)
  end)

  it("keeps many values", function()
    helper.run(function()
      local f = lasync.Future()
      local vals = {}
      for i = 1, 200 do vals[i] = i end
      f:set_result(table.unpack(vals, 1, 200))
      local res = table.pack(f:await())
      assert.are.equal(200, res.n)
      assert.are.equal(200, res[200])
    end, 1)
  end)

  it("result() and exception() raise InvalidStateError while pending",
    function()
      helper.run(function()
        local f = lasync.Future()
        local err = helper.error_of(f.result, f)
        assert.is_true(lasync.is_error(err, lasync.InvalidStateError))
        assert.are.equal("InvalidStateError: result is not set",
          tostring(err))
        err = helper.error_of(f.exception, f)
        assert.is_true(lasync.is_error(err, lasync.InvalidStateError))
        assert.are.equal("InvalidStateError: exception is not set",
          tostring(err))
      end, 1)
    end)

  it("a second set_result or set_exception raises InvalidStateError",
    function()
      helper.run(function()
        local f = lasync.Future()
        f:set_result(1)
        local err = helper.error_of(f.set_result, f, 2)
        assert.is_true(lasync.is_error(err, lasync.InvalidStateError))
        assert.matches("lasync.Future:set_result: the future is already done",
          err.message, 1, true)
        err = helper.error_of(f.set_exception, f, "e")
        assert.is_true(lasync.is_error(err, lasync.InvalidStateError))
        assert.matches("set_exception: the future is already done",
          err.message, 1, true)
        assert.are.equal(1, f:result())
        local c = lasync.Future()
        c:cancel()
        err = helper.error_of(c.set_result, c, 1)
        assert.is_true(lasync.is_error(err, lasync.InvalidStateError))
      end, 1)
    end)

  it("set_exception makes await, result raise the error and exception() "
    .. "return it", function()
      helper.run(function()
        local f = lasync.Future()
        local e = setmetatable({}, { __tostring = function() return "E" end })
        local t = lasync.create_task(function() return f:await() end)
        lasync.sleep(0)
        f:set_exception(e)
        assert.are.equal(e, helper.error_of(t.await, t))
        assert.are.equal(e, helper.error_of(f.result, f))
        assert.are.equal(e, f:exception())
        assert.is_true(f:done())
        assert.is_false(f:cancelled())
        assert.matches("%(failed%)$", tostring(f))
      end, 1)
    end)

  it("wakes every awaiting task, in the order they awaited", function()
    helper.run(function()
      local f = lasync.Future()
      local log = {}
      local ts = {}
      for i = 1, 4 do
        ts[i] = lasync.create_task(function()
          local v = f:await()
          log[#log + 1] = i .. ":" .. v
        end)
      end
      lasync.sleep(0)
      f:set_result("r")
      lasync.gather(ts[1], ts[2], ts[3], ts[4])
      assert.are.same({ "1:r", "2:r", "3:r", "4:r" }, log)
    end, 1)
  end)

  it("set_result does not switch to the awaiting task synchronously",
    function()
      helper.run(function()
        local f = lasync.Future()
        local log = {}
        local t = lasync.create_task(function()
          f:await()
          log[#log + 1] = "woken"
        end)
        lasync.sleep(0)
        f:set_result()
        log[#log + 1] = "after set_result"
        t:await()
        assert.are.same({ "after set_result", "woken" }, log)
      end, 1)
    end)

  it("does not yield when awaiting a future that is already done",
    function()
      helper.run(function()
        local f = lasync.Future()
        f:set_result(1)
        local log = {}
        local t = lasync.create_task(function() log[#log + 1] = "task" end)
        for _ = 1, 5 do f:await() end
        log[#log + 1] = "main"
        t:await()
        assert.are.same({ "main", "task" }, log)
      end, 1)
    end)
end)

describe("Future cancellation", function()
  it("cancel() marks it cancelled; result/exception/await raise "
    .. "CancelledError with the message", function()
      helper.run(function()
        local f = lasync.Future()
        assert.is_true(f:cancel("no longer needed"))
        assert.is_true(f:done())
        assert.is_true(f:cancelled())
        assert.matches("%(cancelled%)$", tostring(f))
        for _, m in ipairs({ "result", "exception", "await" }) do
          local err = helper.error_of(f[m], f)
          assert.is_true(lasync.is_cancelled(err), m)
          assert.are.equal("no longer needed", err.message)
          assert.are.equal("CancelledError: no longer needed", tostring(err))
        end
      end, 1)
    end)

  it("cancel() without a message gives a bare CancelledError", function()
    helper.run(function()
      local f = lasync.Future()
      f:cancel()
      local err = helper.error_of(f.result, f)
      assert.is_true(lasync.is_cancelled(err))
      assert.is_nil(err.message)
      assert.are.equal("CancelledError", tostring(err))
    end, 1)
  end)

  it("cancel() returns false on a done future", function()
    helper.run(function()
      local f = lasync.Future()
      f:set_result(1)
      assert.is_false(f:cancel())
      assert.is_false(f:cancelled())
      local g = lasync.Future()
      g:set_exception("x")
      assert.is_false(g:cancel())
      local c = lasync.Future()
      assert.is_true(c:cancel())
      assert.is_false(c:cancel())
    end, 1)
  end)

  it("the task awaiting a cancelled future gets CancelledError", function()
    helper.run(function()
      local f = lasync.Future()
      local t = lasync.create_task(function() return f:await() end)
      lasync.sleep(0)
      f:cancel("gone")
      local err = helper.error_of(t.await, t)
      assert.is_true(lasync.is_cancelled(err))
      assert.are.equal("gone", err.message)
      assert.is_true(t:cancelled())
    end, 1)
  end)
end)

describe("Future done callbacks", function()
  it("are never run synchronously inside set_result", function()
    helper.run(function()
      local log = {}
      local f = lasync.Future()
      f:add_done_callback(function() log[#log + 1] = "cb" end)
      f:set_result(1)
      log[#log + 1] = "after set_result"
      lasync.sleep(0)
      assert.are.same({ "after set_result", "cb" }, log)
    end, 1)
  end)

  it("run in registration order and receive the future", function()
    helper.run(function()
      local log = {}
      local f = lasync.Future()
      for i = 1, 5 do
        f:add_done_callback(function(x, extra)
          log[#log + 1] = { i, x, extra }
        end)
      end
      f:set_result("v")
      lasync.sleep(0)
      assert.are.equal(5, #log)
      for i = 1, 5 do
        assert.are.equal(i, log[i][1])
        assert.are.equal(f, log[i][2])
        assert.is_nil(log[i][3])
      end
    end, 1)
  end)

  it("run for set_exception and cancel too", function()
    helper.run(function()
      local log = {}
      local a, b = lasync.Future(), lasync.Future()
      a:add_done_callback(function(x) log[#log + 1] = x:exception() end)
      b:add_done_callback(function(x) log[#log + 1] = x:cancelled() end)
      a:set_exception("boom")
      b:cancel()
      assert.are.same({}, log)
      lasync.sleep(0)
      assert.are.same({ "boom", true }, log)
    end, 1)
  end)

  it("run after callbacks that were already scheduled (via call_soon)",
    function()
      helper.run(function()
        local log = {}
        local loop = lasync.get_running_loop()
        local f = lasync.Future()
        f:add_done_callback(function() log[#log + 1] = "done cb" end)
        loop:call_soon(function() log[#log + 1] = "soon" end)
        f:set_result()
        lasync.sleep(0)
        assert.are.same({ "soon", "done cb" }, log)
      end, 1)
    end)

  it("and task wake-ups keep registration order (a wake-up is a done "
    .. "callback in asyncio)", function()
      helper.run(function()
        local log = {}
        local f = lasync.Future()
        f:add_done_callback(function() log[#log + 1] = "cb1" end)
        local t = lasync.create_task(function()
          f:await()
          log[#log + 1] = "task"
        end)
        lasync.sleep(0) -- t now awaits f, after cb1 was added
        f:add_done_callback(function() log[#log + 1] = "cb2" end)
        f:set_result()
        t:await()
        lasync.sleep(0)
        assert.are.same({ "cb1", "task", "cb2" }, log)
      end, 1)
    end)

  it("added to a done future are scheduled at once, not called inline",
    function()
      helper.run(function()
        local log = {}
        local f = lasync.Future()
        f:set_result(1)
        f:add_done_callback(function(x)
          log[#log + 1] = x:result()
        end)
        assert.are.same({}, log)
        lasync.sleep(0)
        assert.are.same({ 1 }, log)
      end, 1)
    end)

  it("remove_done_callback returns how many were removed", function()
    helper.run(function()
      local log = {}
      local f = lasync.Future()
      local function a() log[#log + 1] = "a" end
      local function b() log[#log + 1] = "b" end
      assert.are.equal(0, f:remove_done_callback(a))
      f:add_done_callback(a)
      assert.are.equal(1, f:remove_done_callback(a))
      f:add_done_callback(a)
      f:add_done_callback(b)
      f:add_done_callback(a)
      f:add_done_callback(a)
      assert.are.equal(3, f:remove_done_callback(a))
      assert.are.equal(0, f:remove_done_callback(a))
      f:add_done_callback(a)
      f:set_result()
      lasync.sleep(0)
      assert.are.same({ "b", "a" }, log)
    end, 1)
  end)

  it("an error in a callback goes to the exception handler, not to "
    .. "set_result", function()
      helper.run(function()
        local seen = {}
        local loop = lasync.get_running_loop()
        loop:set_exception_handler(function(_, ctx) seen[#seen + 1] = ctx end)
        local log = {}
        local f = lasync.Future()
        local e = {}
        f:add_done_callback(function() error(e) end)
        f:add_done_callback(function() log[#log + 1] = "second" end)
        f:set_result()
        lasync.sleep(0)
        assert.are.same({ "second" }, log)
        assert.are.equal(1, #seen)
        assert.are.equal(e, seen[1].exception)
        assert.are.equal("exception in callback", seen[1].message)
      end, 1)
    end)

  it("rejects a non-callable callback", function()
    helper.run(function()
      local f = lasync.Future()
      local err = helper.error_of(f.add_done_callback, f, 3)
      assert.matches(escape("callback must be a function (got number)"), err)
    end, 1)
  end)

  it("accept a callable table", function()
    helper.run(function()
      local log = {}
      local f = lasync.Future()
      local callable = setmetatable({}, {
        __call = function(_, x) log[#log + 1] = x end })
      f:add_done_callback(callable)
      f:set_result()
      lasync.sleep(0)
      assert.are.same({ f }, log)
    end, 1)
  end)

  it("accept a callable table next to plain functions, without touching it",
    function()
      helper.run(function()
        local log = {}
        local f = lasync.Future()
        local callable = setmetatable({}, {
          __call = function() log[#log + 1] = "table" end })
        f:add_done_callback(callable)
        f:add_done_callback(function() log[#log + 1] = "function" end)
        assert.are.equal(0, rawlen(callable))
        f:set_result()
        lasync.sleep(0)
        assert.are.same({ "table", "function" }, log)
      end, 1)
    end)
end)

describe("lasync.isfuture and lasync.ensure_future", function()
  it("isfuture is true for futures and tasks only", function()
    helper.run(function()
      assert.is_true(lasync.isfuture(lasync.Future()))
      local t = lasync.create_task(function() end)
      assert.is_true(lasync.isfuture(t))
      assert.is_false(lasync.isfuture(function() end))
      assert.is_false(lasync.isfuture({}))
      assert.is_false(lasync.isfuture(nil))
      assert.is_false(lasync.isfuture(lasync.get_running_loop()))
      assert.is_false(lasync.isfuture(io.stdout))
      t:await()
    end, 1)
  end)

  it("ensure_future returns futures and tasks as they are", function()
    helper.run(function()
      local f = lasync.Future()
      assert.are.equal(f, lasync.ensure_future(f))
      local t = lasync.create_task(function() end)
      assert.are.equal(t, lasync.ensure_future(t))
      t:await()
    end, 1)
  end)

  it("ensure_future starts a function as a task", function()
    helper.run(function()
      local log = {}
      local t = lasync.ensure_future(function()
        log[#log + 1] = "ran"
        return 1, 2
      end)
      assert.matches("^lasync%.Task: ", tostring(t))
      assert.are.same({}, log)
      local a, b = t:await()
      assert.are.same({ "ran" }, log)
      assert.are.same({ 1, 2 }, { a, b })
    end, 1)
  end)

  it("ensure_future rejects anything else", function()
    helper.run(function()
      local err = helper.error_of(lasync.ensure_future, 5)
      assert.matches(escape("lasync.ensure_future: number is not awaitable " ..
        "(expected a task, future or function)"), err)
    end, 1)
  end)
end)
