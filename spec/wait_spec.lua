-- lasync.wait (asyncio.wait)
local helper = require "helper"
local lasync = helper.lasync
local recorder = helper.recorder

-- a task that sleeps `ms` milliseconds, logs and returns `ms`
local function sleeper(ms, log)
  return lasync.spawn({ name = "s" .. ms }, function()
    lasync.sleep(ms / 1000)
    if log then log("finished " .. ms) end
    return ms
  end)
end

local function names(list)
  local out = {}
  for i, f in ipairs(list) do out[i] = f:get_name() end
  return out
end

describe("lasync.wait", function()
  it("returns at the first completion with FIRST_COMPLETED", function()
    local events, log = recorder()
    helper.run(function()
      local a, b, c = sleeper(90, log), sleeper(10, log), sleeper(60, log)
      local elapsed, done, pending = helper.timed(lasync.wait, { a, b, c },
        { return_when = lasync.FIRST_COMPLETED })
      log("wait returned")
      assert.are.same({ "s10" }, names(done))
      assert.are.same({ "s90", "s60" }, names(pending))
      assert.is_true(done[1] == b)
      assert.is_true(elapsed >= 0.009)
      -- the pending ones are not cancelled and finish later
      assert.are.equal(90, a:await())
      assert.are.equal(60, c:await())
      assert.is_false(a:cancelled())
    end, 1)
    assert.are.same({ "finished 10", "wait returned", "finished 60",
      "finished 90" }, events)
  end)

  it("counts a cancelled future as completed with FIRST_COMPLETED",
    function()
      helper.run(function()
        local f = lasync.Future()
        local t = sleeper(50)
        lasync.get_running_loop():call_later(0.005, function() f:cancel() end)
        local done, pending = lasync.wait({ t, f },
          { return_when = "FIRST_COMPLETED" })
        assert.are.equal(1, #done)
        assert.is_true(done[1] == f)
        assert.is_true(pending[1] == t)
        t:cancel()
        pcall(t.await, t)
      end, 1)
    end)

  it("returns at the first error with FIRST_EXCEPTION", function()
    local events, log = recorder()
    helper.run(function()
      local ok1 = sleeper(5, log)
      local bad = lasync.spawn({ name = "bad" }, function()
        lasync.sleep(0.01)
        log("failing")
        error("bad task", 0)
      end)
      local slow = sleeper(80, log)
      local done, pending = lasync.wait({ slow, bad, ok1 },
        { return_when = lasync.FIRST_EXCEPTION })
      log("wait returned")
      assert.are.same({ "bad", "s5" }, names(done))
      assert.are.same({ "s80" }, names(pending))
      assert.are.equal("bad task", bad:exception())
      assert.are.equal(80, slow:await())
    end, 1)
    assert.are.same({ "finished 5", "failing", "wait returned",
      "finished 80" }, events)
  end)

  it("does not count a cancelled future as an exception with " ..
    "FIRST_EXCEPTION", function()
      local events, log = recorder()
      helper.run(function()
        local f = lasync.Future()
        local c = lasync.spawn(function() lasync.sleep(1) end)
        local t = sleeper(20, log)
        local loop = lasync.get_running_loop()
        loop:call_later(0.002, function()
          log("cancel")
          f:cancel()
          c:cancel()
        end)
        local done, pending = lasync.wait({ f, c, t },
          { return_when = "FIRST_EXCEPTION" })
        log("wait returned")
        assert.are.equal(3, #done)
        assert.are.equal(0, #pending)
        assert.is_true(done[1] == f and done[2] == c and done[3] == t)
        assert.is_true(c:cancelled())
      end, 1)
      assert.are.same({ "cancel", "finished 20", "wait returned" }, events)
    end)

  it("behaves like ALL_COMPLETED with FIRST_EXCEPTION when nothing fails",
    function()
      helper.run(function()
        local a, b = sleeper(10), sleeper(20)
        local elapsed, done, pending = helper.timed(lasync.wait, { a, b },
          { return_when = "FIRST_EXCEPTION" })
        assert.are.same({ "s10", "s20" }, names(done))
        assert.are.same({}, pending)
        assert.is_true(elapsed >= 0.019)
      end, 1)
    end)

  it("waits for everything with ALL_COMPLETED (the default), results in " ..
    "input order", function()
      helper.run(function()
        local bad = lasync.spawn({ name = "bad" }, function()
          lasync.sleep(0.005)
          error("bad", 0)
        end)
        local a, b, c = sleeper(30), sleeper(10), sleeper(20)
        local done, pending = lasync.wait({ a, bad, b, c })
        assert.are.same({ "s30", "bad", "s10", "s20" }, names(done))
        assert.are.same({}, pending)
        local done2, pending2 = lasync.wait({ c, a, b },
          { return_when = lasync.ALL_COMPLETED })
        assert.are.same({ "s20", "s30", "s10" }, names(done2))
        assert.are.same({}, pending2)
        assert.are.equal("bad", bad:exception()) -- wait did not raise it
      end, 1)
    end)

  it("returns done and pending on timeout without cancelling anything",
    function()
      local events, log = recorder()
      helper.run(function()
        local a, b, c = sleeper(10, log), sleeper(120, log), sleeper(5, log)
        local elapsed, done, pending = helper.timed(lasync.wait, { a, b, c },
          { timeout = 0.03 })
        log("wait returned")
        assert.is_true(elapsed >= 0.029, "returned early: " .. elapsed)
        assert.is_true(elapsed < 0.1, "returned late: " .. elapsed)
        -- input order, not completion order (c finished before a)
        assert.are.same({ "s10", "s5" }, names(done))
        assert.are.same({ "s120" }, names(pending))
        assert.is_false(b:done())
        assert.are.equal(0, b:cancelling())
        assert.are.equal(120, b:await())
      end, 1)
      assert.are.same({ "finished 5", "finished 10", "wait returned",
        "finished 120" }, events)
    end)

  it("returns at the first completion before the timeout", function()
    helper.run(function()
      local a = sleeper(5)
      local elapsed, done = helper.timed(lasync.wait, { a },
        { timeout = 0.5, return_when = "FIRST_COMPLETED" })
      assert.is_true(elapsed < 0.4)
      assert.is_true(done[1] == a)
      -- the timeout handle was cancelled: nothing happens later
      assert.are.equal("ok", lasync.sleep(0.01, "ok"))
    end, 1)
  end)

  it("returns already-done futures", function()
    helper.run(function()
      local f = lasync.Future()
      f:set_result(1)
      local t = sleeper(50)
      local done, pending = lasync.wait({ t, f },
        { return_when = "FIRST_COMPLETED" })
      assert.is_true(done[1] == f)
      assert.is_true(pending[1] == t)
      t:cancel()
      pcall(t.await, t)
    end, 1)
  end)

  it("turns functions into tasks", function()
    helper.run(function()
      local me = lasync.current_task()
      local done, pending = lasync.wait({
        function() return "f1", lasync.current_task() end,
        function()
          lasync.sleep(0.005)
          return "f2"
        end,
      })
      assert.are.equal(2, #done)
      assert.are.equal(0, #pending)
      local r1, task1 = done[1]:result()
      assert.are.equal("f1", r1)
      assert.are.equal("f2", done[2]:result())
      assert.is_true(lasync.isfuture(done[1]))
      assert.is_true(task1 == done[1])
      assert.is_false(task1 == me)
    end, 1)
  end)

  it("rejects an empty list, non-awaitables and a bad return_when",
    function()
      helper.run(function()
        local err = helper.error_of(lasync.wait, {})
        assert.matches("lasync.wait: the list of awaitables is empty", err, 1,
          true)
        local f = lasync.Future()
        err = helper.error_of(lasync.wait, { f, 42 })
        assert.matches("lasync.wait: item #2 is not awaitable (expected a " ..
          "task, future or function, got number)", err, 1, true)
        err = helper.error_of(lasync.wait, f)
        assert.matches("lasync.wait: expected a list of awaitables (got " ..
          "userdata)", err, 1, true)
        err = helper.error_of(lasync.wait, 7)
        assert.matches("lasync.wait: expected a list of awaitables (got " ..
          "number)", err, 1, true)
        err = helper.error_of(lasync.wait, { f }, { return_when = "SOMETIMES" })
        assert.matches("lasync.wait: return_when must be " ..
          "lasync.FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED (got " ..
          '"SOMETIMES")', err, 1, true)
        err = helper.error_of(lasync.wait, { f }, { timeout = "soon" })
        assert.matches("lasync.wait: timeout must be a number or nil (got " ..
          "string)", err, 1, true)
      end, 1)
    end)

  it("leaves the awaited tasks running when the waiting task is cancelled",
    function()
      local events, log = recorder()
      helper.run(function()
        local a, b = sleeper(20, log), sleeper(30, log)
        local waiting = lasync.spawn(function()
          local ok, err = pcall(lasync.wait, { a, b })
          log("waiting got " .. tostring(lasync.is_cancelled(err)))
          error(err, 0)
        end)
        lasync.sleep(0.005)
        waiting:cancel()
        local ok, err = pcall(waiting.await, waiting)
        assert.is_false(ok)
        assert.is_true(lasync.is_cancelled(err))
        assert.is_false(a:cancelled())
        assert.is_false(b:cancelled())
        assert.are.equal(0, a:cancelling())
        assert.are.equal(20, a:await())
        assert.are.equal(30, b:await())
      end, 1)
      assert.are.same({ "waiting got true", "finished 20", "finished 30" },
        events)
    end)

  it("must run inside a task", function()
    local err = helper.error_of(lasync.wait, { function() end })
    assert.matches("lasync.wait: not inside a task", err, 1, true)
  end)
end)
