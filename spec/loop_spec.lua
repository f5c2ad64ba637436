-- The event loop: get_running_loop, call_soon/call_later/call_at and
-- handles, time, new_event_loop with run_until_complete/run_forever/stop/
-- close, and the exception handler, checked against asyncio's loop.
local helper = require "helper"
local lasync = helper.lasync
local escape = helper.escape

describe("lasync.get_running_loop", function()
  it("raises outside a loop", function()
    local ok, err = pcall(lasync.get_running_loop)
    assert.is_false(ok)
    assert.matches(escape("lasync.get_running_loop: no running event loop: " ..
      "run this code with lasync.run or the lasync command"), err)
  end)

  it("returns the same running loop everywhere in the run", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      assert.matches("^lasync%.Loop: .+ %(running%)$", tostring(loop))
      assert.is_true(loop:is_running())
      assert.is_false(loop:is_closed())
      local seen
      lasync.create_task(function() seen = lasync.get_running_loop() end)
        :await()
      assert.are.equal(loop, seen)
      loop:call_soon(function() seen = lasync.get_running_loop() end)
      lasync.sleep(0)
      assert.are.equal(loop, seen)
    end, 1)
  end)
end)

describe("loop:call_soon", function()
  it("runs callbacks in FIFO order with their arguments, nils included",
    function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        local log = {}
        local function record(...)
          log[#log + 1] = table.pack(...)
        end
        loop:call_soon(record, 1)
        loop:call_soon(record, nil, 2, nil)
        loop:call_soon(record)
        lasync.sleep(0)
        assert.are.equal(3, #log)
        assert.are.same({ 1, n = 1 }, log[1])
        assert.are.same({ nil, 2, nil, n = 3 }, log[2])
        assert.are.same({ n = 0 }, log[3])
      end, 1)
    end)

  it("passes hundreds of arguments (scheduled from a task)", function()
    -- a child process: this crashed the interpreter (heap corruption)
    local code, out, err = helper.run_script([[
local f = lasync.Future()
lasync.create_task(function()
  lasync.get_running_loop():call_soon(function(...)
    f:set_result(select("#", ...))
  end, table.unpack({}, 1, 1000))
end)
print(f:await())
]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("1000\n", out)
  end)

  it("never runs a callback inside call_soon", function()
    helper.run(function()
      local ran = false
      lasync.get_running_loop():call_soon(function() ran = true end)
      assert.is_false(ran)
      lasync.sleep(0)
      assert.is_true(ran)
    end, 1)
  end)

  it("runs callbacks scheduled during a batch in the next batch",
    function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        local log = {}
        loop:call_soon(function()
          log[#log + 1] = "a"
          loop:call_soon(function() log[#log + 1] = "c" end)
        end)
        loop:call_soon(function() log[#log + 1] = "b" end)
        lasync.sleep(0) -- one batch: a, b, main
        log[#log + 1] = "main"
        lasync.sleep(0)
        assert.are.same({ "a", "b", "main", "c" }, log)
      end, 1)
    end)

  it("returns a handle whose cancel() prevents the call", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local log = {}
      local h = loop:call_soon(function() log[#log + 1] = "cancelled one" end)
      loop:call_soon(function() log[#log + 1] = "kept" end)
      assert.matches("^lasync%.Handle: ", tostring(h))
      assert.is_false(h:cancelled())
      h:cancel()
      assert.is_true(h:cancelled())
      assert.matches("%(cancelled%)$", tostring(h))
      h:cancel() -- twice is fine
      lasync.sleep(0)
      assert.are.same({ "kept" }, log)
    end, 1)
  end)

  it("cancelled() stays false for a handle that ran (asyncio)", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local h = loop:call_soon(function() end)
      local th = loop:call_later(0.001, function() end)
      lasync.sleep(0.005)
      assert.is_false(h:cancelled())
      assert.is_false(th:cancelled())
    end, 1)
  end)

  it("has no when() on a non-timer handle", function()
    helper.run(function()
      local h = lasync.get_running_loop():call_soon(function() end)
      local err = helper.error_of(h.when, h)
      assert.matches("lasync.Handle:when: not a timer handle", err, 1, true)
    end, 1)
  end)

  it("accepts callable tables and rejects non-callables", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local got
      loop:call_soon(setmetatable({}, { __call = function(_, x) got = x end }),
        "arg")
      lasync.sleep(0)
      assert.are.equal("arg", got)
      local err = helper.error_of(loop.call_soon, loop, 42)
      assert.matches(escape("lasync.Loop:call_soon: callback must be a " ..
        "function (got number)"), err)
    end, 1)
  end)
end)

describe("loop:call_later and loop:call_at", function()
  it("run callbacks ordered by their time, not by scheduling order",
    function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        local log = {}
        local done = lasync.Future()
        loop:call_later(0.015, function()
          log[#log + 1] = "15ms"
          done:set_result()
        end)
        loop:call_later(0.005, function() log[#log + 1] = "5ms" end)
        loop:call_at(loop:time() + 0.01, function() log[#log + 1] = "10ms" end)
        loop:call_later(0.001, function() log[#log + 1] = "1ms" end)
        done:await()
        assert.are.same({ "1ms", "5ms", "10ms", "15ms" }, log)
      end, 1)
    end)

  it("do not fire before their time", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local f = lasync.Future()
      local t0 = loop:time()
      loop:call_later(0.02, function() f:set_result(loop:time()) end)
      local fired = f:await()
      assert.is_true(fired - t0 >= 0.02, "fired after " .. (fired - t0))
      local g = lasync.Future()
      local at = loop:time() + 0.01
      loop:call_at(at, function() g:set_result(loop:time()) end)
      assert.is_true(g:await() >= at)
    end, 1)
  end)

  it("pass their arguments", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local f = lasync.Future()
      loop:call_later(0.001, function(...) f:set_result(...) end, "a", nil,
        "c")
      local res = table.pack(f:await())
      assert.are.equal(3, res.n)
      assert.are.same({ "a", nil, "c" }, { res[1], res[2], res[3] })
      local g = lasync.Future()
      loop:call_at(loop:time(), function(x) g:set_result(x) end, "at")
      assert.are.equal("at", g:await())
    end, 1)
  end)

  it("return timer handles whose cancel() prevents the call", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local log = {}
      local h = loop:call_later(0.002, function() log[#log + 1] = "later" end)
      local h2 = loop:call_at(loop:time() + 0.002, function()
        log[#log + 1] = "at"
      end)
      assert.matches("^lasync%.TimerHandle: ", tostring(h))
      h:cancel()
      h2:cancel()
      assert.is_true(h:cancelled())
      assert.is_true(h2:cancelled())
      lasync.sleep(0.01)
      assert.are.same({}, log)
    end, 1)
  end)

  it("a handle cancelled by an earlier callback of the same batch does not "
    .. "run", function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        local log = {}
        local second
        loop:call_soon(function()
          log[#log + 1] = "first"
          second:cancel()
        end)
        second = loop:call_soon(function() log[#log + 1] = "second" end)
        lasync.sleep(0)
        lasync.sleep(0)
        assert.are.same({ "first" }, log)
      end, 1)
    end)

  it("when() is the scheduled loop time", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local before = loop:time()
      local h = loop:call_later(0.5, function() end)
      local after = loop:time()
      assert.is_true(h:when() >= before + 0.5 - 1e-6)
      assert.is_true(h:when() <= after + 0.5 + 1e-6)
      local at = loop:time() + 0.25
      local h2 = loop:call_at(at, function() end)
      assert.is_true(math.abs(h2:when() - at) < 1e-6)
      h:cancel()
      h2:cancel()
    end, 1)
  end)

  it("a huge delay never fires: when() is math.huge", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local h = loop:call_later(1e10, function() end)
      assert.are.equal(math.huge, h:when())
      h:cancel()
    end, 1)
  end)

  it("call_later(0) and a negative delay run on the next iteration",
    function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        local log = {}
        loop:call_later(0, function() log[#log + 1] = "zero" end)
        loop:call_later(-1, function() log[#log + 1] = "negative" end)
        loop:call_at(0, function() log[#log + 1] = "past" end)
        assert.are.same({}, log)
        lasync.sleep(0.001)
        -- by time: call_at(0) is the earliest deadline
        assert.are.same({ "past", "zero", "negative" }, log)
      end, 1)
    end)

  it("reject a NaN or non-number delay and non-callables", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local f = function() end
      local err = helper.error_of(loop.call_later, loop, 0 / 0, f)
      assert.matches("lasync.Loop:call_later: delay is NaN", err, 1, true)
      err = helper.error_of(loop.call_later, loop, "x", f)
      assert.matches(escape("lasync.Loop:call_later: delay must be a number " ..
        "(got string)"), err)
      err = helper.error_of(loop.call_at, loop, 0 / 0, f)
      assert.matches("lasync.Loop:call_at: time is NaN", err, 1, true)
      err = helper.error_of(loop.call_later, loop, 1, "f")
      assert.matches(escape("lasync.Loop:call_later: callback must be a " ..
        "function (got string)"), err)
    end, 1)
  end)
end)

describe("inside callbacks", function()
  it("there is no current task, and awaiting is an error", function()
    helper.run(function()
      local f = lasync.Future()
      lasync.get_running_loop():call_soon(function()
        local ok, err = pcall(lasync.await, lasync.Future())
        local ok2, err2 = pcall(lasync.sleep, 0)
        f:set_result(lasync.current_task(), ok, err, ok2, err2)
      end)
      local cur, ok, err, ok2, err2 = f:await()
      assert.is_nil(cur)
      assert.is_false(ok)
      assert.matches("lasync.await: not inside a task", err, 1, true)
      assert.is_false(ok2)
      assert.matches("lasync.sleep: not inside a task", err2, 1, true)
    end, 1)
  end)
end)

describe("loop:time", function()
  it("is monotonic and follows sleeps", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local prev = loop:time()
      for _ = 1, 1000 do
        local now = loop:time()
        assert.is_true(now >= prev)
        prev = now
      end
      local t0 = loop:time()
      lasync.sleep(0.01)
      assert.is_true(loop:time() - t0 >= 0.01)
    end, 1)
  end)

  it("is available on a loop that is not running", function()
    local loop = lasync.new_event_loop()
    local a = loop:time()
    local b = loop:time()
    assert.are.equal("number", type(a))
    assert.is_true(b >= a)
    loop:close()
  end)
end)

describe("lasync.new_event_loop", function()
  it("makes an idle, open loop", function()
    local loop = lasync.new_event_loop()
    assert.matches("^lasync%.Loop: .+ %(idle%)$", tostring(loop))
    assert.is_false(loop:is_running())
    assert.is_false(loop:is_closed())
    loop:close()
    assert.is_true(loop:is_closed())
    assert.matches("%(closed%)$", tostring(loop))
  end)

  it("run_until_complete(function) returns every result", function()
    local loop = lasync.new_event_loop()
    local seen
    local res = table.pack(loop:run_until_complete(function()
      seen = lasync.get_running_loop()
      assert.is_true(loop:is_running())
      lasync.sleep(0.001)
      return 1, nil, "three"
    end))
    assert.are.equal(loop, seen)
    assert.are.equal(3, res.n)
    assert.are.same({ 1, nil, "three" }, { res[1], res[2], res[3] })
    assert.is_false(loop:is_running())
    loop:close()
  end)

  it("run_until_complete(future) returns its result", function()
    local loop = lasync.new_event_loop()
    local f = loop:create_future()
    assert.are.equal(loop, f:get_loop())
    loop:call_later(0.001, function() f:set_result("a", "b") end)
    local a, b = loop:run_until_complete(f)
    assert.are.same({ "a", "b" }, { a, b })
    -- a done future: returns at once
    a, b = loop:run_until_complete(f)
    assert.are.same({ "a", "b" }, { a, b })
    loop:close()
  end)

  it("run_until_complete(task) returns the task's result", function()
    local loop = lasync.new_event_loop()
    local t = loop:create_task({ name = "on loop" }, function(x)
      lasync.sleep(0.001)
      return x + 1
    end, 41)
    assert.are.equal("on loop", t:get_name())
    assert.are.equal(42, loop:run_until_complete(t))
    loop:close()
  end)

  it("run_until_complete re-raises the error unchanged", function()
    local loop = lasync.new_event_loop()
    local e = {}
    local ok, err = pcall(loop.run_until_complete, loop, function()
      lasync.sleep(0)
      error(e)
    end)
    assert.is_false(ok)
    assert.are.equal(e, err)
    local f = loop:create_future()
    f:set_exception("failed future")
    ok, err = pcall(loop.run_until_complete, loop, f)
    assert.are.equal("failed future", err)
    loop:close()
  end)

  it("run_until_complete reports a deadlock", function()
    local loop = lasync.new_event_loop()
    local ok, err = pcall(loop.run_until_complete, loop, loop:create_future())
    assert.is_false(ok)
    assert.matches("lasync.Loop:run_until_complete: deadlock: the future " ..
      "can never complete", err, 1, true)
    loop:close()
  end)

  it("run_until_complete raises when the loop is stopped first", function()
    local loop = lasync.new_event_loop()
    local f = loop:create_future()
    loop:call_soon(function() loop:stop() end)
    loop:call_later(1, function() f:set_result() end)
    local ok, err = pcall(loop.run_until_complete, loop, f)
    assert.is_false(ok)
    assert.matches("the event loop stopped before the future completed", err,
      1, true)
    loop:close()
  end)

  it("run_until_complete refuses a future of another loop", function()
    local loop, other = lasync.new_event_loop(), lasync.new_event_loop()
    local err = helper.error_of(loop.run_until_complete, loop,
      other:create_future())
    assert.matches("lasync.Loop:run_until_complete: the future belongs to " ..
      "another event loop", err, 1, true)
    loop:close()
    other:close()
  end)

  it("stop() before run_until_complete: one iteration, then an error",
    function()
      local loop = lasync.new_event_loop()
      local log = {}
      loop:stop()
      local ok, err = pcall(loop.run_until_complete, loop, function()
        log[#log + 1] = "first step"
        lasync.sleep(0)
        log[#log + 1] = "second step"
      end)
      assert.is_false(ok)
      assert.matches("the event loop stopped before the future completed",
        err, 1, true)
      assert.are.same({ "first step" }, log)
      loop:close()
    end)

  it("rejects a non-awaitable in run_until_complete", function()
    local loop = lasync.new_event_loop()
    local err = helper.error_of(loop.run_until_complete, loop, 5)
    assert.matches(escape("lasync.Loop:run_until_complete: expected a task " ..
      "or future (got number)"), err)
    loop:close()
  end)

  it("can run several times", function()
    local loop = lasync.new_event_loop()
    assert.are.equal(1, loop:run_until_complete(function() return 1 end))
    assert.are.equal(2, loop:run_until_complete(function() return 2 end))
    loop:close()
  end)

  it("closes itself as a to-be-closed variable", function()
    local outer
    do
      local loop <close> = lasync.new_event_loop()
      outer = loop
      assert.is_false(loop:is_closed())
    end
    assert.is_true(outer:is_closed())
  end)
end)

describe("loop:run_forever and loop:stop", function()
  it("stop() from a callback ends run_forever after the current batch",
    function()
      local loop = lasync.new_event_loop()
      local log = {}
      loop:call_soon(function() log[#log + 1] = "a" end)
      loop:call_soon(function()
        log[#log + 1] = "stop"
        loop:stop()
        loop:call_soon(function() log[#log + 1] = "next batch" end)
      end)
      loop:call_soon(function() log[#log + 1] = "same batch" end)
      loop:run_forever()
      assert.are.same({ "a", "stop", "same batch" }, log)
      assert.is_false(loop:is_running())
      -- the callback left behind runs on the next run
      loop:call_soon(function() loop:stop() end)
      loop:run_forever()
      assert.are.same({ "a", "stop", "same batch", "next batch" }, log)
      loop:close()
    end)

  it("stop() from a task ends run_forever", function()
    local loop = lasync.new_event_loop()
    local log = {}
    loop:create_task(function()
      lasync.sleep(0.002)
      log[#log + 1] = "stopping"
      loop:stop()
    end)
    local keeper = loop:create_task(function()
      lasync.sleep(10)
    end)
    loop:run_forever()
    assert.are.same({ "stopping" }, log)
    assert.is_false(keeper:done())
    keeper:cancel()
    pcall(loop.run_until_complete, loop, keeper)
    assert.is_true(keeper:cancelled())
    loop:close()
  end)

  it("stop() before run_forever runs exactly one iteration", function()
    local loop = lasync.new_event_loop()
    local log = {}
    loop:call_soon(function()
      log[#log + 1] = "first"
      loop:call_soon(function() log[#log + 1] = "second" end)
    end)
    loop:stop()
    loop:run_forever()
    assert.are.same({ "first" }, log)
    loop:stop()
    loop:run_forever()
    assert.are.same({ "first", "second" }, log)
    loop:close()
  end)

  it("returns when nothing is left to do", function()
    local loop = lasync.new_event_loop()
    local log = {}
    loop:call_later(0.002, function() log[#log + 1] = "timer" end)
    loop:create_task(function()
      lasync.sleep(0.001)
      log[#log + 1] = "task"
    end)
    loop:run_forever()
    assert.are.same({ "task", "timer" }, log)
    loop:close()
  end)

  it("get_running_loop works inside and the loop reports running",
    function()
      local loop = lasync.new_event_loop()
      local running, same
      loop:call_soon(function()
        running = loop:is_running()
        same = lasync.get_running_loop() == loop
      end)
      loop:run_forever()
      assert.is_true(running)
      assert.is_true(same)
      loop:close()
    end)
end)

describe("loop:close", function()
  it("a closed loop refuses to run or schedule", function()
    local loop = lasync.new_event_loop()
    loop:close()
    loop:close() -- twice is fine
    local err = helper.error_of(loop.run_forever, loop)
    assert.matches("lasync.Loop:run_forever: the event loop is closed", err,
      1, true)
    err = helper.error_of(loop.run_until_complete, loop, function() end)
    assert.matches("lasync.Loop:run_until_complete: the event loop is closed",
      err, 1, true)
    err = helper.error_of(loop.create_task, loop, function() end)
    assert.matches("the event loop is closed", err, 1, true)
    err = helper.error_of(loop.create_future, loop)
    assert.matches("the event loop is closed", err, 1, true)
    err = helper.error_of(loop.call_soon, loop, function() end)
    assert.matches("lasync.Loop:call_soon: the event loop is closed", err, 1, true)
    err = helper.error_of(loop.call_later, loop, 1, function() end)
    assert.matches("event loop is closed", err, 1, true)
  end)

  it("drops pending tasks and callbacks", function()
    local loop = lasync.new_event_loop()
    local log = {}
    local t = loop:create_task(function() log[#log + 1] = "task ran" end)
    loop:call_soon(function() log[#log + 1] = "callback ran" end)
    loop:close()
    assert.are.same({}, log)
    assert.is_false(t:done())
  end)

  it("cannot close a running loop", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local err = helper.error_of(loop.close, loop)
      assert.matches("lasync.Loop:close: cannot close a running event loop",
        err, 1, true)
    end, 1)
  end)

  it("the loop of lasync.run is closed when run returns", function()
    local loop
    lasync.run(function() loop = lasync.get_running_loop() end)
    assert.is_true(loop:is_closed())
    assert.is_false(loop:is_running())
  end)
end)

describe("running loops inside loops", function()
  it("run_until_complete while another loop runs raises", function()
    local other = lasync.new_event_loop()
    helper.run(function()
      local err = helper.error_of(other.run_until_complete, other,
        other:create_future())
      assert.matches("lasync.Loop:run_until_complete: cannot run an " ..
        "event loop while another loop is running in this Lua state", err, 1,
        true)
      err = helper.error_of(other.run_forever, other)
      assert.matches("cannot run an event loop while another loop", err, 1,
        true)
    end, 1)
    other:close()
  end)

  it("a refused run_until_complete(function) starts no task on that loop",
    function()
      -- asyncio checks that no loop is running before ensure_future
      local other = lasync.new_event_loop()
      local ran = false
      lasync.run(function()
        pcall(other.run_until_complete, other, function() ran = true end)
      end)
      other:run_until_complete(function() lasync.sleep(0) end)
      assert.is_false(ran)
      other:close()
    end)

  it("running the running loop again raises", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local err = helper.error_of(loop.run_forever, loop)
      assert.matches("lasync.Loop:run_forever: the event loop is already " ..
        "running", err, 1, true)
      err = helper.error_of(loop.run_until_complete, loop, lasync.Future())
      assert.matches("the event loop is already running", err, 1, true)
    end, 1)
  end)
end)

describe("the exception handler", function()
  it("gets errors from callbacks with message and exception; the loop goes "
    .. "on", function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        local calls = {}
        local function handler(l, ctx)
          calls[#calls + 1] = { loop = l, ctx = ctx }
        end
        loop:set_exception_handler(handler)
        assert.are.equal(handler, loop:get_exception_handler())
        local e = { "callback error" }
        local log = {}
        loop:call_soon(function() error(e) end)
        loop:call_soon(function() log[#log + 1] = "next callback" end)
        loop:call_later(0.001, function() error("timer error", 0) end)
        lasync.sleep(0.005)
        assert.are.same({ "next callback" }, log)
        assert.are.equal(2, #calls)
        assert.are.equal(loop, calls[1].loop)
        assert.are.equal("exception in callback", calls[1].ctx.message)
        assert.are.equal(e, calls[1].ctx.exception)
        assert.are.equal("string", type(calls[1].ctx.traceback))
        assert.matches("loop_spec.lua", calls[1].ctx.traceback, 1, true)
        assert.are.equal("timer error", calls[2].ctx.exception)
        loop:set_exception_handler(nil)
        assert.is_nil(loop:get_exception_handler())
      end, 1)
    end)

  it("call_exception_handler passes the context to the handler", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local got
      loop:set_exception_handler(function(l, ctx) got = { l, ctx } end)
      local ctx = { message = "custom", exception = "E" }
      loop:call_exception_handler(ctx)
      assert.are.equal(loop, got[1])
      assert.are.equal(ctx, got[2])
    end, 1)
  end)

  it("rejects a non-function handler", function()
    local loop = lasync.new_event_loop()
    local err = helper.error_of(loop.set_exception_handler, loop, 5)
    assert.matches(escape("lasync.Loop:set_exception_handler: handler must " ..
      "be a function or nil (got number)"), err)
    loop:close()
  end)

  it("gets 'Task exception was never retrieved' for a failed task nobody "
    .. "awaited (asyncio reports it through the handler)", function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        local calls = {}
        loop:set_exception_handler(function(_, ctx) calls[#calls + 1] = ctx end)
        do
          local t = lasync.create_task(function() error("lost", 0) end)
          lasync.sleep(0)
          assert.is_true(t:done())
        end
        collectgarbage()
        collectgarbage()
        lasync.sleep(0)
        assert.are.equal(1, #calls)
        assert.matches("Task exception was never retrieved", calls[1].message,
          1, true)
        assert.are.equal("lost", calls[1].exception)
      end, 1)
    end)
end)

describe("debug mode", function()
  it("set_debug/get_debug toggle it", function()
    local loop = lasync.new_event_loop()
    assert.are.equal("boolean", type(loop:get_debug()))
    loop:set_debug(true)
    assert.is_true(loop:get_debug())
    loop:set_debug(false)
    assert.is_false(loop:get_debug())
    loop:close()
  end)
end)
