-- lasync.Event, lasync.Condition, lasync.Barrier (asyncio.Event & co.)
local helper = require "helper"
local lasync = helper.lasync
local recorder = helper.recorder
local raises_msg, waiting = helper.raises_msg, helper.waiting
local assert_cancelled = helper.assert_cancelled

-- let every ready task run until it blocks (a few loop batches)
local function settle_all() helper.settle_all(4) end

local function is_broken(err)
  return lasync.is_error(err, lasync.BrokenBarrierError)
end

describe("lasync.Event", function()
  it("starts unset; set, is_set and clear", function()
    local e = lasync.Event()
    assert.is_false(e:is_set())
    assert.are.equal("lasync.Event: unset, 0 waiting", tostring(e))
    e:set()
    assert.is_true(e:is_set())
    e:set() -- again: no change
    assert.is_true(e:is_set())
    assert.are.equal("lasync.Event: set, 0 waiting", tostring(e))
    e:clear()
    assert.is_false(e:is_set())
    e:clear()
    assert.is_false(e:is_set())
  end)

  it("wait on a set event returns true at once, without yielding",
    function()
      local events, log = recorder()
      helper.run(function()
        local e = lasync.Event()
        e:set()
        local other = lasync.spawn(function() log("other") end)
        assert.is_true(e:wait())
        log("waited")
        assert.is_true(e:wait())
        other:await()
      end, 1)
      assert.are.same({ "waited", "other" }, events)
    end)

  it("set wakes every waiter, in FIFO order, and wait returns true",
    function()
      local events, log = recorder()
      helper.run(function()
        local e = lasync.Event()
        local ws = {}
        for i = 1, 4 do
          ws[i] = lasync.spawn(function()
            local r = e:wait()
            log("w" .. i)
            return r
          end)
        end
        settle_all()
        assert.are.equal(4, waiting(e))
        assert.are.same({}, events)
        e:set()
        assert.are.equal(0, waiting(e))
        for _, w in ipairs(ws) do assert.is_true(w:await()) end
      end, 1)
      assert.are.same({ "w1", "w2", "w3", "w4" }, events)
    end)

  it("woken waiters stay woken when clear follows at once", function()
    local events, log = recorder()
    helper.run(function()
      local e = lasync.Event()
      local ws = {}
      for i = 1, 3 do
        ws[i] = lasync.spawn(function()
          e:wait()
          log("w" .. i)
        end)
      end
      settle_all()
      e:set()
      e:clear()
      for _, w in ipairs(ws) do w:await() end
      assert.is_false(e:is_set())
      -- a new waiter after the clear waits again
      local late = lasync.spawn(function()
        e:wait()
        log("late")
      end)
      settle_all()
      assert.is_false(late:done())
      e:set()
      late:await()
    end, 1)
    assert.are.same({ "w1", "w2", "w3", "late" }, events)
  end)

  it("a waiter cancelled while waiting is removed; the others still wake",
    function()
      local events, log = recorder()
      helper.run(function()
        local e = lasync.Event()
        local function w(name)
          return lasync.spawn({ name = name }, function()
            e:wait()
            log(name)
          end)
        end
        local a, b, c = w("a"), w("b"), w("c")
        settle_all()
        b:cancel()
        assert_cancelled(b)
        assert.are.equal(2, waiting(e))
        e:set()
        a:await()
        c:await()
      end, 1)
      assert.are.same({ "a", "c" }, events)
    end)

  it("a waiter woken by set and cancelled before it ran raises " ..
    "CancelledError; the others are not affected", function()
      local events, log = recorder()
      helper.run(function()
        local e = lasync.Event()
        local a = lasync.spawn(function() e:wait() log("a") end)
        local b = lasync.spawn(function() e:wait() log("b") end)
        settle_all()
        e:set()
        a:cancel()
        assert_cancelled(a)
        b:await()
        assert.is_true(e:is_set())
      end, 1)
      assert.are.same({ "b" }, events)
    end)

  it("lasync.timeout and wait_for around wait raise TimeoutError and " ..
    "leave the event usable", function()
      helper.run(function()
        local e = lasync.Event()
        local elapsed, ok, err = helper.timed(pcall, lasync.timeout, 0.01,
          e.wait, e)
        assert.is_false(ok)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.is_true(elapsed >= 0.009)
        ok, err = pcall(lasync.wait_for, function() return e:wait() end,
          0.005)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.are.equal(0, waiting(e))
        assert.is_false(e:is_set())
        lasync.get_running_loop():call_later(0.005, e.set, e)
        assert.is_true(lasync.timeout(0.5, e.wait, e))
        assert.is_true(e:is_set())
      end, 1)
    end)

  it("wait refuses to run outside a task, naming the method", function()
    local e = lasync.Event()
    raises_msg("lasync.Event:wait: not inside a task", e.wait, e)
    e:set()
    raises_msg("lasync.Event:wait: not inside a task", e.wait, e)
  end)

  it("wait in a coroutine nested inside a task raises, naming the method",
    function()
      helper.run(function()
        local e = lasync.Event()
        local ok, err = pcall(coroutine.wrap(function() return e:wait() end))
        assert.is_false(ok)
        assert.matches("lasync.Event:wait: cannot await in a coroutine " ..
          "nested inside a task", err, 1, true)
        assert.are.equal(0, waiting(e))
      end, 1)
    end)

  it("methods called on something else name the method", function()
    local e = lasync.Event()
    raises_msg("lasync.Event:set: expected", e.set, 5)
    raises_msg("lasync.Event:clear: expected", e.clear, {})
    raises_msg("lasync.Event:is_set: expected", e.is_set, nil)
    helper.run(function()
      raises_msg("lasync.Event:wait: expected", e.wait, "e")
    end, 1)
  end)
end)

describe("lasync.Condition", function()
  it("makes its own lock, or uses the Lock given", function()
    helper.run(function()
      local c = lasync.Condition()
      assert.is_false(c:locked())
      assert.is_true(c:acquire())
      assert.is_true(c:locked())
      assert.are.equal("lasync.Condition: locked, 0 waiting", tostring(c))
      c:release()
      assert.is_false(c:locked())
      local lock = lasync.Lock()
      local c2 = lasync.Condition(lock)
      lock:acquire()
      assert.is_true(c2:locked())
      c2:release()
      assert.is_false(lock:locked())
      -- two conditions on one lock
      local c3 = lasync.Condition(lock)
      c2:acquire()
      assert.is_true(c3:locked())
      c3:release()
    end, 1)
  end)

  it("refuses anything but a Lock", function()
    raises_msg("lasync.Condition: expected a Lock (got number)",
      lasync.Condition, 5)
    raises_msg("lasync.Condition: expected a Lock (got table)",
      lasync.Condition, {})
    raises_msg("lasync.Condition: expected a Lock", lasync.Condition,
      lasync.Semaphore())
    raises_msg("lasync.Condition: expected a Lock", lasync.Condition,
      lasync.Condition())
  end)

  it("wait, notify and notify_all need the lock held", function()
    helper.run(function()
      local c = lasync.Condition()
      raises_msg("lasync.Condition:wait: the lock is not acquired", c.wait,
        c)
      raises_msg("lasync.Condition:notify: the lock is not acquired",
        c.notify, c)
      raises_msg("lasync.Condition:notify_all: the lock is not acquired",
        c.notify_all, c)
      raises_msg("lasync.Condition:wait_for: the lock is not acquired",
        c.wait_for, c, function() return false end)
      raises_msg("lasync.Condition:release: the lock is not acquired",
        c.release, c)
    end, 1)
  end)

  it("bad arguments to notify and wait_for give errors naming the method",
    function()
      helper.run(function()
        local c = lasync.Condition()
        c:acquire()
        raises_msg("lasync.Condition:notify:", c.notify, c, "two")
        raises_msg("lasync.Condition:wait_for:", c.wait_for, c, 5)
        assert.is_true(c:locked())
        c:release()
      end, 1)
    end)

  it("wait in a coroutine nested inside a task raises, naming " ..
    "Condition:wait, and keeps the lock held", function()
      helper.run(function()
        local c = lasync.Condition()
        c:acquire()
        local ok, err = coroutine.wrap(function()
          return pcall(c.wait, c)
        end)()
        assert.is_false(ok)
        local held = c:locked()
        if held then c:release() end
        -- the lock must not have been given up by a wait that cannot wait
        assert.is_true(held, "Condition:wait released the lock and failed")
        assert.matches("lasync.Condition:wait: cannot await in a coroutine " ..
          "nested inside a task", tostring(err), 1, true)
      end, 1)
    end)

  it("acquire refuses to run outside a task, naming the Condition",
    function()
      local c = lasync.Condition()
      local err = raises_msg("not inside a task", c.acquire, c)
      assert.matches("^lasync%.Condition:acquire: not inside a task", err)
      assert.is_false(c:locked())
    end)

  it("wait releases the lock, and returns true holding it after a notify",
    function()
      local events, log = recorder()
      helper.run(function()
        local c = lasync.Condition()
        local w = lasync.spawn(function()
          c:acquire()
          log("waiting")
          local r = c:wait()
          log("woken, locked: " .. tostring(c:locked()))
          c:release()
          return r
        end)
        settle_all()
        assert.is_false(c:locked()) -- wait released it
        assert.are.equal(1, waiting(c))
        c:acquire()
        c:notify()
        log("notified")
        settle_all()
        assert.is_false(w:done()) -- it needs the lock back first
        log("releasing")
        c:release()
        assert.is_true(w:await())
        assert.is_false(c:locked())
      end, 1)
      assert.are.same({ "waiting", "notified", "releasing",
        "woken, locked: true" }, events)
    end)

  it("notify(n) wakes n waiters in FIFO order; notify() wakes one",
    function()
      local events, log = recorder()
      helper.run(function()
        local c = lasync.Condition()
        local ws = {}
        for i = 1, 5 do
          ws[i] = lasync.spawn(function()
            c:with(function()
              c:wait()
              log("w" .. i)
            end)
          end)
        end
        settle_all()
        assert.are.equal(5, waiting(c))
        c:with(function() c:notify(2) end)
        settle_all()
        log("after notify(2)")
        assert.are.equal(3, waiting(c))
        c:with(function() c:notify() end)
        settle_all()
        log("after notify()")
        c:with(function() c:notify(0) end)
        settle_all()
        assert.are.equal(2, waiting(c))
        c:with(function() c:notify(10) end) -- more than wait: all of them
        for _, w in ipairs(ws) do w:await() end
        assert.are.equal(0, waiting(c))
        c:with(function() c:notify() end) -- nobody waits: nothing happens
      end, 1)
      assert.are.same({ "w1", "w2", "after notify(2)", "w3",
        "after notify()", "w4", "w5" }, events)
    end)

  it("notify_all wakes every waiter in FIFO order", function()
    local events, log = recorder()
    helper.run(function()
      local c = lasync.Condition()
      local ws = {}
      for i = 1, 4 do
        ws[i] = lasync.spawn(function()
          c:acquire()
          c:wait()
          log("w" .. i)
          c:release()
        end)
      end
      settle_all()
      c:acquire()
      c:notify_all()
      c:release()
      for _, w in ipairs(ws) do w:await() end
    end, 1)
    assert.are.same({ "w1", "w2", "w3", "w4" }, events)
  end)

  it("wait re-acquires the lock even when cancelled, then raises " ..
    "CancelledError", function()
      local events, log = recorder()
      helper.run(function()
        local c = lasync.Condition()
        local w = lasync.spawn(function()
          c:acquire()
          local ok, err = pcall(c.wait, c)
          log("raised " .. (lasync.is_cancelled(err) and "CancelledError" or
            tostring(ok)))
          log("locked: " .. tostring(c:locked()))
          c:release() -- it holds the lock, so it can release it
          log("released")
          error(err, 0)
        end)
        settle_all()
        c:acquire() -- main holds the lock when w is cancelled
        w:cancel()
        settle_all()
        assert.are.same({}, events) -- w cannot finish without the lock
        assert.is_false(w:done())
        log("main releases")
        c:release()
        assert_cancelled(w)
        assert.is_false(c:locked())
        assert.are.equal(0, waiting(c))
      end, 1)
      assert.are.same({ "main releases", "raised CancelledError",
        "locked: true", "released" }, events)
    end)

  it("with releases the lock when a wait inside it is cancelled",
    function()
      helper.run(function()
        local c = lasync.Condition()
        local w = lasync.spawn(function()
          c:with(function() c:wait() end)
        end)
        settle_all()
        w:cancel()
        assert_cancelled(w)
        assert.is_false(c:locked())
        -- and hold / <close>
        local h = lasync.spawn(function()
          local held <close> = c:hold()
          assert.are.equal(c, held)
          c:wait()
        end)
        settle_all()
        h:cancel()
        assert_cancelled(h)
        assert.is_false(c:locked())
      end, 1)
    end)

  it("a waiter notified and cancelled before it ran passes the notify on",
    function()
      local events, log = recorder()
      helper.run(function()
        local c = lasync.Condition()
        local function w(name)
          return lasync.spawn({ name = name }, function()
            c:with(function()
              c:wait()
              log(name)
            end)
          end)
        end
        local a, b = w("a"), w("b")
        settle_all()
        c:acquire()
        c:notify(1)   -- wakes a ...
        a:cancel()    -- ... cancelled before it runs
        c:release()
        assert_cancelled(a)
        local ok, err = pcall(lasync.wait_for, b, 0.05)
        assert(ok, "b was not woken: " .. helper.show(err))
        assert.is_false(c:locked())
      end, 1)
      assert.are.same({ "b" }, events)
    end)

  it("a notified waiter cancelled while re-acquiring the lock passes " ..
    "the notify on (asyncio 3.13)", function()
      local events, log = recorder()
      helper.run(function()
        local c = lasync.Condition()
        local function w(name)
          return lasync.spawn({ name = name }, function()
            c:with(function()
              c:wait()
              log(name)
            end)
          end)
        end
        local a, b = w("a"), w("b")
        settle_all()
        c:acquire()
        c:notify(1) -- wakes a, which runs and waits for the lock
        settle_all()
        a:cancel()  -- cancelled while re-acquiring
        c:release()
        assert_cancelled(a)
        local ok, err = pcall(lasync.wait_for, b, 0.05)
        if not ok then -- do not leave b behind
          b:cancel()
          pcall(b.await, b)
        end
        assert(ok, "b was not woken: " .. helper.show(err))
      end, 1)
      assert.are.same({ "b" }, events)
    end)

  it("wait_for(predicate) returns the predicate's first true value",
    function()
      local events, log = recorder()
      helper.run(function()
        local c = lasync.Condition()
        local state = 0
        local calls = 0
        local w = lasync.spawn(function()
          return c:with(function()
            return c:wait_for(function()
              calls = calls + 1
              log("check " .. state)
              return state >= 2 and "ready " .. state
            end)
          end)
        end)
        settle_all()
        for i = 1, 3 do
          c:with(function()
            state = i
            c:notify_all()
          end)
          settle_all()
        end
        assert.are.equal("ready 2", w:await())
        assert.are.equal(3, calls)
        -- a true predicate returns at once, without waiting
        c:acquire()
        assert.are.equal(42, c:wait_for(function() return 42 end))
        assert.is_true(c:locked())
        c:release()
      end, 1)
      assert.are.same({ "check 0", "check 1", "check 2" }, events)
    end)

  it("lasync.timeout around wait raises TimeoutError with the lock held " ..
    "again", function()
      helper.run(function()
        local c = lasync.Condition()
        c:acquire()
        local elapsed, ok, err = helper.timed(pcall, lasync.timeout, 0.01,
          c.wait, c)
        assert.is_false(ok)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.is_true(elapsed >= 0.009)
        assert.is_true(c:locked())
        assert.are.equal(0, waiting(c))
        ok, err = pcall(lasync.wait_for, function() return c:wait() end,
          0.005)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.is_true(c:locked())
        c:release()
        assert.is_false(c:locked())
        -- still works: a notify reaches a new waiter
        local w = lasync.spawn(function()
          return c:with(function() return c:wait() end)
        end)
        settle_all()
        c:with(function() c:notify() end)
        assert.is_true(w:await())
      end, 1)
    end)

  it("a notify racing a waiter's deadline is not lost: that waiter " ..
    "returns or the next one is woken", function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        for trial = 1, 9 do
          local c = lasync.Condition()
          local when = loop:time() + 0.003
          local offset = (trial % 3 - 1) * 0.002 -- before, same, after
          local a = lasync.spawn(function()
            return pcall(lasync.timeout_at, when, function()
              return c:with(function() return c:wait() end)
            end)
          end)
          local b = lasync.spawn(function()
            return c:with(function() return c:wait() end)
          end)
          local notifier = lasync.spawn(function()
            lasync.sleep(when + offset - loop:time())
            c:with(function() c:notify(1) end)
          end)
          notifier:await()
          local ok, err = a:await()
          settle_all()
          if ok then
            assert.is_false(b:done(), "one notify woke two waiters")
            c:with(function() c:notify(1) end)
          else
            assert(lasync.is_timeout(err), helper.show(err))
          end
          local bok, berr = pcall(lasync.wait_for, b, 0.05)
          assert(bok, "the notify was lost: " .. helper.show(berr))
          assert.is_false(c:locked())
        end
      end, 2)
    end)

  it("a timeout around wait_for leaves the condition usable", function()
    helper.run(function()
      local c = lasync.Condition()
      local ok, err = pcall(lasync.timeout, 0.005, function()
        return c:with(function()
          return c:wait_for(function() return false end)
        end)
      end)
      assert.is_false(ok)
      assert(lasync.is_timeout(err), helper.show(err))
      assert.is_false(c:locked())
      assert.are.equal(0, waiting(c))
    end, 1)
  end)
end)

describe("lasync.Barrier", function()
  it("has parties(), n_waiting() and broken()", function()
    local b = lasync.Barrier(3)
    assert.are.equal(3, b:parties())
    assert.are.equal(0, b:n_waiting())
    assert.is_false(b:broken())
    assert.are.equal("lasync.Barrier: filling, 0/3 waiting", tostring(b))
  end)

  it("refuses a party count that is not a positive integer", function()
    raises_msg("lasync.Barrier: parties must be an integer > 0 (got 0)",
      lasync.Barrier, 0)
    raises_msg("lasync.Barrier: parties must be an integer > 0 (got -2)",
      lasync.Barrier, -2)
    raises_msg("lasync.Barrier: parties must be an integer > 0 (got 1.5)",
      lasync.Barrier, 1.5)
    raises_msg("lasync.Barrier: parties must be an integer > 0 (got nil)",
      lasync.Barrier)
    raises_msg("lasync.Barrier: parties must be an integer > 0 (got x)",
      lasync.Barrier, "x")
  end)

  it("wait refuses to run outside a task, naming the method", function()
    local b = lasync.Barrier(2)
    local err = raises_msg("not inside a task", b.wait, b)
    assert.matches("^lasync%.Barrier:wait: not inside a task", err)
    assert.are.equal(0, b:n_waiting())
  end)

  it("releases all parties together with distinct indices 0..n-1",
    function()
      local events, log = recorder()
      local indices = {}
      helper.run(function()
        local b = lasync.Barrier(3)
        local ts = {}
        for i = 1, 3 do
          ts[i] = lasync.spawn(function()
            lasync.sleep(0.001 * i)
            log("arrive " .. i)
            local idx = b:wait()
            log("pass " .. i)
            return idx
          end)
        end
        lasync.sleep(0.0025)
        assert.are.equal(2, b:n_waiting())
        assert.are.equal("lasync.Barrier: filling, 2/3 waiting", tostring(b))
        for i = 1, 3 do indices[i] = ts[i]:await() end
        assert.are.equal(0, b:n_waiting())
        assert.is_false(b:broken())
      end, 1)
      -- nobody passes before everyone arrived
      for i = 1, 3 do assert.are.equal("arrive " .. i, events[i]) end
      local sorted = { table.unpack(indices) }
      table.sort(sorted)
      assert.are.same({ 0, 1, 2 }, sorted)
      assert.are.same({ 0, 1, 2 }, indices) -- arrival order here
    end)

  it("a task that re-enters at once waits while the barrier drains",
    function()
      local rounds = {}
      helper.run(function()
        local b = lasync.Barrier(3)
        local ts = {}
        for i = 1, 3 do
          ts[i] = lasync.spawn(function()
            for r = 1, 5 do
              local idx = b:wait() -- no sleep between rounds
              rounds[r] = rounds[r] or {}
              rounds[r][#rounds[r] + 1] = idx
            end
          end)
        end
        for _, t in ipairs(ts) do t:await() end
        assert.are.equal(0, b:n_waiting())
      end, 1)
      for r = 1, 5 do
        table.sort(rounds[r])
        assert.are.same({ 0, 1, 2 }, rounds[r], "round " .. r)
      end
    end)

  it("a one-party barrier returns 0 at once", function()
    helper.run(function()
      local b = lasync.Barrier(1)
      assert.are.equal(0, b:wait())
      assert.are.equal(0, b:wait())
    end, 1)
  end)

  it("can be reused for several rounds", function()
    local rounds = {}
    helper.run(function()
      local b = lasync.Barrier(3)
      local ts = {}
      for i = 1, 3 do
        ts[i] = lasync.spawn(function()
          for r = 1, 4 do
            lasync.sleep(0.0005 * ((i + r) % 3))
            local idx = b:wait()
            rounds[r] = rounds[r] or {}
            rounds[r][#rounds[r] + 1] = idx
          end
        end)
      end
      for _, t in ipairs(ts) do t:await() end
      assert.are.equal(0, b:n_waiting())
      assert.is_false(b:broken())
    end, 1)
    for r = 1, 4 do
      table.sort(rounds[r])
      assert.are.same({ 0, 1, 2 }, rounds[r], "round " .. r)
    end
  end)

  it("reset gives BrokenBarrierError to the waiters; the barrier is " ..
    "usable again", function()
      local events, log = recorder()
      helper.run(function()
        local b = lasync.Barrier(3)
        local ws = {}
        for i = 1, 2 do
          ws[i] = lasync.spawn(function()
            local ok, err = pcall(b.wait, b)
            log(("w%d %s"):format(i, is_broken(err) and "broken" or
              tostring(ok)))
            if not ok then assert.matches("Abort or reset of barrier",
              tostring(err), 1, true) end
          end)
        end
        settle_all()
        assert.are.equal(2, b:n_waiting())
        b:reset()
        for _, w in ipairs(ws) do w:await() end
        assert.is_false(b:broken())
        assert.are.equal(0, b:n_waiting())
        -- a full round works after the reset
        local res = lasync.gather(function() return b:wait() end,
          function() return b:wait() end, function() return b:wait() end)
        assert.is_number(res)
        assert.are.equal(0, b:n_waiting())
      end, 1)
      assert.are.same({ "w1 broken", "w2 broken" }, events)
    end)

  it("abort breaks the barrier: waiters and later waits raise " ..
    "BrokenBarrierError until reset", function()
      local events, log = recorder()
      helper.run(function()
        local b = lasync.Barrier(3)
        local w = lasync.spawn(function()
          local ok, err = pcall(b.wait, b)
          log(is_broken(err) and "broken" or tostring(ok))
        end)
        settle_all()
        b:abort()
        w:await()
        assert.is_true(b:broken())
        assert.are.equal(0, b:n_waiting())
        assert.matches("broken", tostring(b), 1, true)
        local err = helper.error_of(b.wait, b)
        assert(is_broken(err), helper.show(err))
        assert.matches("Barrier aborted", tostring(err), 1, true)
        b:reset()
        assert.is_false(b:broken())
        local a1, a2, a3 = lasync.gather(function() return b:wait() end,
          function() return b:wait() end, function() return b:wait() end)
        local got = { a1, a2, a3 }
        table.sort(got)
        assert.are.same({ 0, 1, 2 }, got)
      end, 1)
      assert.are.same({ "broken" }, events)
    end)

  it("a timed-out or cancelled waiter leaves the barrier consistent",
    function()
      helper.run(function()
        local b = lasync.Barrier(2)
        local ok, err = pcall(lasync.timeout, 0.01, b.wait, b)
        assert.is_false(ok)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.are.equal(0, b:n_waiting())
        assert.is_false(b:broken())
        ok, err = pcall(lasync.wait_for, function() return b:wait() end,
          0.005)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.are.equal(0, b:n_waiting())
        local t = lasync.spawn(function() return b:wait() end)
        settle_all()
        assert.are.equal(1, b:n_waiting())
        t:cancel()
        assert_cancelled(t)
        assert.are.equal(0, b:n_waiting())
        assert.is_false(b:broken())
        -- two parties still pass together
        local x, y = lasync.gather(function() return b:wait() end,
          function() return b:wait() end)
        assert.are.same({ 0, 1 }, { math.min(x, y), math.max(x, y) })
      end, 1)
    end)
end)
