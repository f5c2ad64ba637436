-- lasync.as_completed (asyncio.as_completed)
local helper = require "helper"
local lasync = helper.lasync
local show = helper.show

local function sleeper(ms)
  return lasync.spawn({ name = "s" .. ms }, function()
    lasync.sleep(ms / 1000)
    return ms
  end)
end

describe("lasync.as_completed", function()
  it("yields the futures in completion order in a generic for", function()
    local order, same = helper.run(function()
      local a, b, c = sleeper(30), sleeper(10), sleeper(20)
      local order, same = {}, true
      for f in lasync.as_completed({ a, b, c }) do
        order[#order + 1] = f:await()
        same = same and (f == a or f == b or f == c)
      end
      return order, same
    end, 1)
    assert.are.same({ 10, 20, 30 }, order)
    assert.is_true(same, "did not yield the original tasks")
  end)

  it("yields failed futures too; awaiting them raises", function()
    local got = helper.run(function()
      local bad = lasync.spawn(function()
        lasync.sleep(0.005)
        error("bad", 0)
      end)
      local got = {}
      for f in lasync.as_completed({ sleeper(15), bad }) do
        local ok, r = pcall(f.await, f)
        got[#got + 1] = tostring(ok) .. " " .. show(r)
      end
      return got
    end, 1)
    assert.are.same({ "false bad", "true 15" }, got)
  end)

  it("yields already-done futures first, in input order", function()
    local order = helper.run(function()
      local f1, f2 = lasync.Future(), lasync.Future()
      f1:set_result("f1")
      f2:set_result("f2")
      local order = {}
      for f in lasync.as_completed({ sleeper(5), f2, f1 }) do
        order[#order + 1] = tostring(f:result())
      end
      return order
    end, 1)
    assert.are.same({ "f2", "f1", "5" }, order)
  end)

  it("raises TimeoutError from the iterator after yielding what finished, " ..
    "without cancelling the pending tasks", function()
      local got, shown, timeout, elapsed, late, b_cancelled = helper.run(
        function()
          -- a and c finish in their first steps, long before the timeout
          -- whatever the load; b only once the iterator has timed out
          local release = lasync.Event()
          local a = lasync.spawn(function() return 5 end)
          local b = lasync.spawn(function()
            release:wait()
            return 120
          end)
          local c = lasync.spawn(function() return 10 end)
          local got = {}
          local t0 = helper.now()
          local ok, err = pcall(function()
            for f in lasync.as_completed({ a, b, c }, { timeout = 0.03 }) do
              got[#got + 1] = f:await()
            end
          end)
          local elapsed = helper.now() - t0
          local b_cancelled = b:cancelled() or b:cancelling() > 0
          release:set()
          local late = b:await()
          return got, show(err), not ok and lasync.is_timeout(err), elapsed,
              late, b_cancelled
        end, 1)
      assert.are.same({ 5, 10 }, got)
      assert.is_true(timeout, "expected TimeoutError, got " .. shown)
      assert.are.equal("TimeoutError", shown)
      assert.is_true(elapsed >= 0.029, "timed out early: " .. elapsed)
      assert.is_true(elapsed < 0.5, "timed out late: " .. elapsed)
      assert.is_false(b_cancelled)
      assert.are.equal(120, late)
    end)

  it("does not yield futures that complete after the timeout", function()
    -- asyncio: on timeout the done callbacks are removed and the next step
    -- raises TimeoutError, whatever finished later
    local got, shown, timeout = helper.run(function()
      -- a finishes in its first step, before the deadline whatever the
      -- load; b once the deadline has passed
      local past = lasync.Event()
      local a = lasync.spawn(function() return 5 end)
      local b = lasync.spawn(function()
        past:wait()
        return 40
      end)
      local got = {}
      local ok, err = pcall(function()
        for f in lasync.as_completed({ a, b }, { timeout = 0.02 }) do
          got[#got + 1] = f:await()
          lasync.sleep(0.03) -- armed after the deadline's timer: fires later
          past:set() -- b finishes after the deadline meanwhile
          b:await()
        end
      end)
      b:await()
      return got, show(err), not ok and lasync.is_timeout(err)
    end, 1)
    assert.are.same({ 5 }, got)
    assert.is_true(timeout, "expected TimeoutError, got " .. shown)
  end)

  it("does not crash a task that fails with the TimeoutError after a " ..
    "yielded task failed", function()
      -- run in a separate process: the crash takes the whole run down
      local status, out, err = helper.run_script([[
local bad = lasync.spawn(function() error("bad", 0) end)
local slow = lasync.spawn(function() lasync.sleep(1) end)
local consumer = lasync.spawn(function()
  for f in lasync.as_completed({ bad, slow }, { timeout = 0.01 }) do
    pcall(f.await, f)
  end
end)
local ok, e = pcall(consumer.await, consumer)
print("consumer failed", not ok, lasync.is_timeout(e))
slow:cancel()
]])
      assert.are.equal(0, status, "exit status " .. tostring(status) ..
        ", stderr: " .. err)
      assert.are.equal("consumer failed\ttrue\ttrue\n", out)
    end)

  it("raises a TimeoutError that converts to a string", function()
    local ok, s = helper.run(function()
      local f = lasync.Future()
      local _, err = pcall(function()
        for _ in lasync.as_completed({ f }, { timeout = 0.001 }) do end
      end)
      return pcall(tostring, err)
    end, 1)
    assert.is_true(ok, "tostring(err) failed: " .. tostring(s))
    assert.are.equal("TimeoutError", s)
  end)

  it("does not time out once everything was yielded in time", function()
    helper.run(function()
      local n = 0
      local quick = lasync.spawn(function() return 5 end) -- ends at once
      for f in lasync.as_completed({ quick }, { timeout = 0.1 }) do
        n = n + f:await()
      end
      assert.are.equal(5, n)
      assert.are.equal("ok", lasync.sleep(0.12, "ok"))
    end, 1)
  end)

  it("yields a future given twice only once", function()
    local order = helper.run(function()
      local a, b = sleeper(10), sleeper(5)
      local order = {}
      for f in lasync.as_completed({ a, b, a, b, a }) do
        order[#order + 1] = f:await()
      end
      return order
    end, 1)
    assert.are.same({ 5, 10 }, order)
  end)

  it("turns functions into tasks", function()
    local order, distinct = helper.run(function()
      local me = lasync.current_task()
      local order, distinct = {}, true
      for f in lasync.as_completed({
        function() lasync.sleep(0.01) return "slow" end,
        function() return "fast" end,
      }) do
        distinct = distinct and lasync.isfuture(f) and f ~= me
        order[#order + 1] = f:await()
      end
      return order, distinct
    end, 1)
    assert.are.same({ "fast", "slow" }, order)
    assert.is_true(distinct)
  end)

  it("rejects an empty list and non-awaitables", function()
    helper.run(function()
      local err = helper.error_of(lasync.as_completed, {})
      assert.matches("lasync.as_completed: the list of awaitables is empty",
        err, 1, true)
      err = helper.error_of(lasync.as_completed, { lasync.Future(), "x" })
      assert.matches("lasync.as_completed: item #2 is not awaitable " ..
        "(expected a task, future or function, got string)", err, 1, true)
      err = helper.error_of(lasync.as_completed, { lasync.Future() },
        { timeout = 0 / 0 })
      assert.matches("lasync.as_completed: timeout is NaN", err, 1, true)
    end, 1)
  end)

  it("must run inside a task", function()
    local err = helper.error_of(lasync.as_completed, { function() end })
    assert.matches("lasync.as_completed: not inside a task", err, 1, true)
  end)
end)
