-- lasync.Lock, lasync.Semaphore, lasync.BoundedSemaphore (asyncio.Lock & co.)
local helper = require "helper"
local lasync = helper.lasync
local recorder = helper.recorder
local raises_msg, waiting = helper.raises_msg, helper.waiting
local assert_cancelled, settle_all = helper.assert_cancelled, helper.settle_all

-- a task that acquires x, logs "<name> in", holds it for `hold` seconds
-- (or one sleep(0)), logs "<name> out" and releases
local function user(x, name, log, hold)
  return lasync.spawn({ name = name }, function()
    x:acquire()
    log(name .. " in")
    lasync.sleep(hold or 0)
    log(name .. " out")
    x:release()
    return name
  end)
end

describe("lasync.Lock", function()
  it("starts unlocked; acquire returns true and locks; release unlocks",
    function()
      helper.run(function()
        local lock = lasync.Lock()
        assert.is_false(lock:locked())
        assert.are.equal("lasync.Lock: unlocked, 0 waiting", tostring(lock))
        assert.is_true(lock:acquire())
        assert.is_true(lock:locked())
        assert.are.equal("lasync.Lock: locked, 0 waiting", tostring(lock))
        lock:release()
        assert.is_false(lock:locked())
        assert.is_nil(lock.value) -- a Lock has no value()
      end, 1)
    end)

  it("release of an unlocked lock raises, in or outside a task", function()
    local lock = lasync.Lock()
    raises_msg("lasync.Lock:release: the lock is not acquired", lock.release,
      lock)
    helper.run(function()
      lock:acquire()
      lock:release()
      raises_msg("lasync.Lock:release: the lock is not acquired",
        lock.release, lock)
      assert.is_false(lock:locked())
    end, 1)
  end)

  it("acquire refuses to run outside a task, naming the method", function()
    local lock = lasync.Lock()
    raises_msg("lasync.Lock:acquire: not inside a task", lock.acquire, lock)
    assert.is_false(lock:locked())
    raises_msg("not inside a task", lock.with, lock, function() end)
    raises_msg("not inside a task", lock.hold, lock)
    assert.is_false(lock:locked())
  end)

  it("acquire in a coroutine nested inside a task raises, naming the " ..
    "method", function()
      helper.run(function()
        local lock = lasync.Lock()
        local ok, err = pcall(coroutine.wrap(function()
          return lock:acquire()
        end))
        assert.is_false(ok)
        assert.matches("lasync.Lock:acquire: cannot await in a coroutine " ..
          "nested inside a task", err, 1, true)
        assert.is_false(lock:locked())
      end, 1)
    end)

  it("methods called on something else say what they expected", function()
    local lock = lasync.Lock()
    raises_msg("lasync.Lock:release: expected a Lock (got number)",
      lock.release, 5)
    raises_msg("lasync.Lock:locked: expected a Lock (got nil)", lock.locked,
      nil)
    helper.run(function()
      raises_msg("lasync.Lock:acquire: expected a Lock (got table)",
        lock.acquire, {})
    end, 1)
  end)

  it("acquire of a free lock does not yield (fast path)", function()
    local events, log = recorder()
    helper.run(function()
      local lock = lasync.Lock()
      local other = lasync.spawn(function() log("other") end)
      lock:acquire()
      log("acquired")
      lock:release()
      lock:acquire() -- again: still no yield
      log("acquired again")
      lock:release()
      lasync.sleep(0)
      log("slept")
      other:await()
    end, 1)
    assert.are.same({ "acquired", "acquired again", "other", "slept" },
      events)
  end)

  it("serves waiters in FIFO order", function()
    local events, log = recorder()
    helper.run(function()
      local lock = lasync.Lock()
      lock:acquire()
      local users = {}
      for i = 1, 4 do users[i] = user(lock, "u" .. i, log) end
      settle_all()
      assert.are.equal(4, waiting(lock))
      log("release")
      lock:release()
      for _, u in ipairs(users) do u:await() end
      assert.is_false(lock:locked())
    end, 1)
    assert.are.same({ "release", "u1 in", "u1 out", "u2 in", "u2 out",
      "u3 in", "u3 out", "u4 in", "u4 out" }, events)
  end)

  it("release hands the lock to the first waiter: no barging", function()
    local events, log = recorder()
    helper.run(function()
      local lock = lasync.Lock()
      lock:acquire()
      local u = user(lock, "u", log)
      settle_all()
      lock:release()
      -- the lock went to u; main's acquire now waits behind it
      assert.is_true(lock:locked())
      lock:acquire()
      log("main in")
      lock:release()
      u:await()
    end, 1)
    assert.are.same({ "u in", "u out", "main in" }, events)
  end)

  it("a waiter cancelled while queued is removed", function()
    local events, log = recorder()
    helper.run(function()
      local lock = lasync.Lock()
      lock:acquire()
      local u1, u2, u3 = user(lock, "u1", log), user(lock, "u2", log),
          user(lock, "u3", log)
      settle_all()
      u2:cancel()
      settle_all()
      assert.are.equal(2, waiting(lock))
      lock:release()
      u1:await()
      u3:await()
      assert_cancelled(u2)
      assert.is_false(lock:locked())
      assert.are.equal(0, waiting(lock))
    end, 1)
    assert.are.same({ "u1 in", "u1 out", "u3 in", "u3 out" }, events)
  end)

  it("a waiter handed the lock and cancelled before it ran passes it on",
    function()
      local events, log = recorder()
      helper.run(function()
        local lock = lasync.Lock()
        lock:acquire()
        local u1, u2 = user(lock, "u1", log), user(lock, "u2", log)
        settle_all()
        lock:release()      -- hands the lock to u1 ...
        assert.is_true(u1:cancel()) -- ... cancelled before it runs
        assert_cancelled(u1)
        u2:await()
        assert.is_false(lock:locked())
        -- and the lock is free for a fast acquire now
        assert.is_true(lock:acquire())
        lock:release()
      end, 1)
      assert.are.same({ "u2 in", "u2 out" }, events)
    end)

  it("a waiter handed the lock and cancelled with nobody after it leaves " ..
    "the lock unlocked", function()
      helper.run(function()
        local lock = lasync.Lock()
        lock:acquire()
        local u = user(lock, "u", function() end)
        settle_all()
        lock:release()
        u:cancel()
        assert_cancelled(u)
        assert.is_false(lock:locked())
        assert.are.equal(0, waiting(lock))
      end, 1)
    end)

  it("lasync.timeout around acquire raises TimeoutError and leaves the " ..
    "lock consistent", function()
      local events, log = recorder()
      helper.run(function()
        local lock = lasync.Lock()
        lock:acquire()
        local elapsed, ok, err = helper.timed(pcall, lasync.timeout, 0.01,
          lock.acquire, lock)
        assert.is_false(ok)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.is_true(elapsed >= 0.009)
        assert.is_true(lock:locked()) -- still held by main
        assert.are.equal(0, waiting(lock))
        -- a task timing out between two other waiters
        local u1 = user(lock, "u1", log)
        local timed = lasync.spawn(function()
          local ok2, e = pcall(lasync.wait_for, function()
            return lock:acquire()
          end, 0.01)
          log(lasync.is_timeout(e) and "timed out" or "acquired")
          if ok2 then lock:release() end
        end)
        local u3 = user(lock, "u3", log)
        timed:await()
        lock:release()
        u1:await()
        u3:await()
        assert.is_false(lock:locked())
        assert.is_true(lasync.timeout(0.01, lock.acquire, lock))
        lock:release()
      end, 1)
      assert.are.same({ "timed out", "u1 in", "u1 out", "u3 in", "u3 out" },
        events)
    end)

  it("a release racing a waiter's deadline loses no lock: the waiter " ..
    "gets it or times out leaving it free", function()
      helper.run(function()
        local loop = lasync.get_running_loop()
        for trial = 1, 12 do
          local lock = lasync.Lock()
          lock:acquire()
          local when = loop:time() + 0.003
          local offset = (trial % 3 - 1) * 0.002 -- before, same, after
          local w = lasync.spawn(function()
            local ok, err = pcall(lasync.timeout_at, when, lock.acquire, lock)
            if ok then lock:release() end
            return ok, err
          end)
          loop:call_at(when + offset, lock.release, lock)
          local ok, err = w:await()
          lasync.sleep(0.001 + math.max(offset, 0))
          if not ok then assert(lasync.is_timeout(err), helper.show(err)) end
          assert.is_false(lock:locked(), "the lock was lost")
          assert.are.equal(0, waiting(lock))
        end
      end, 2)
    end)

  it("a timeout that does not expire returns true with the lock held",
    function()
      helper.run(function()
        local lock = lasync.Lock()
        lock:acquire()
        lasync.get_running_loop():call_later(0.005, lock.release, lock)
        local t = lasync.spawn(function()
          return lasync.timeout(0.5, lock.acquire, lock)
        end)
        assert.is_true(t:await())
        assert.is_true(lock:locked())
        lock:release()
      end, 1)
    end)

  describe("with", function()
    it("returns fn's results and passes its arguments", function()
      helper.run(function()
        local lock = lasync.Lock()
        local a, b, c = lock:with(function(x, y)
          assert.is_true(lock:locked())
          return x + y, "two", nil
        end, 1, 2)
        assert.are.equal(3, a)
        assert.are.equal("two", b)
        assert.is_nil(c)
        assert.is_false(lock:locked())
        assert.are.equal(3, select("#", lock:with(function()
          return 1, nil, 3
        end)))
      end, 1)
    end)

    it("refuses a non-callable fn with an error naming the method, " ..
      "leaving the lock free", function()
        helper.run(function()
          local lock = lasync.Lock()
          raises_msg("Lock:with", lock.with, lock, 5)
          assert.is_false(lock:locked())
          raises_msg("Lock:with", lock.with, lock)
          assert.is_false(lock:locked())
        end, 1)
      end)

    it("serialises the bodies of several tasks", function()
      local events, log = recorder()
      helper.run(function()
        local lock = lasync.Lock()
        local ts = {}
        for i = 1, 3 do
          ts[i] = lasync.spawn(function()
            lock:with(function()
              log(i .. " in")
              lasync.sleep(0.001)
              log(i .. " out")
            end)
          end)
        end
        for _, t in ipairs(ts) do t:await() end
      end, 1)
      assert.are.same({ "1 in", "1 out", "2 in", "2 out", "3 in", "3 out" },
        events)
    end)

    it("releases when fn raises, and re-raises the error", function()
      helper.run(function()
        local lock = lasync.Lock()
        local ok, err = pcall(lock.with, lock, function()
          error("inside", 0)
        end)
        assert.is_false(ok)
        assert.are.equal("inside", err)
        assert.is_false(lock:locked())
        local errobj = setmetatable({}, { __tostring = function()
          return "obj"
        end })
        ok, err = pcall(lock.with, lock, function() error(errobj) end)
        assert.are.equal(errobj, err)
        assert.is_false(lock:locked())
      end, 1)
    end)

    it("releases when the task is cancelled inside fn", function()
      helper.run(function()
        local lock = lasync.Lock()
        local t = lasync.spawn(function()
          lock:with(function() lasync.sleep(1) end)
        end)
        settle_all()
        assert.is_true(lock:locked())
        t:cancel()
        assert_cancelled(t)
        assert.is_false(lock:locked())
      end, 1)
    end)

    it("does not release when cancelled while waiting to acquire",
      function()
        helper.run(function()
          local lock = lasync.Lock()
          lock:acquire()
          local ran = false
          local t = lasync.spawn(function()
            lock:with(function() ran = true end)
          end)
          settle_all()
          t:cancel()
          assert_cancelled(t)
          assert.is_false(ran)
          assert.is_true(lock:locked()) -- still main's
          lock:release()
          assert.is_false(lock:locked())
        end, 1)
      end)

    it("releases when a timeout expires inside fn", function()
      helper.run(function()
        local lock = lasync.Lock()
        local ok, err = pcall(lasync.timeout, 0.005, lock.with, lock,
          lasync.sleep, 1)
        assert.is_false(ok)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.is_false(lock:locked())
      end, 1)
    end)
  end)

  describe("hold", function()
    it("returns the lock acquired; <close> releases it at scope end",
      function()
        helper.run(function()
          local lock = lasync.Lock()
          do
            local held <close> = lock:hold()
            assert.are.equal(lock, held)
            assert.is_true(lock:locked())
          end
          assert.is_false(lock:locked())
        end, 1)
      end)

    it("releases on error", function()
      helper.run(function()
        local lock = lasync.Lock()
        local ok, err = pcall(function()
          local _ <close> = lock:hold()
          error("boom", 0)
        end)
        assert.is_false(ok)
        assert.are.equal("boom", err)
        assert.is_false(lock:locked())
      end, 1)
    end)

    it("releases when the task is cancelled while holding", function()
      helper.run(function()
        local lock = lasync.Lock()
        local t = lasync.spawn(function()
          local _ <close> = lock:hold()
          lasync.sleep(1)
        end)
        settle_all()
        assert.is_true(lock:locked())
        t:cancel()
        assert_cancelled(t)
        assert.is_false(lock:locked())
      end, 1)
    end)

    it("waits in FIFO order like acquire", function()
      local events, log = recorder()
      helper.run(function()
        local lock = lasync.Lock()
        local ts = {}
        for i = 1, 3 do
          ts[i] = lasync.spawn(function()
            local _ <close> = lock:hold()
            log(i)
            lasync.sleep(0)
          end)
        end
        for _, t in ipairs(ts) do t:await() end
        assert.is_false(lock:locked())
      end, 1)
      assert.are.same({ 1, 2, 3 }, events)
    end)
  end)
end)

describe("lasync.Semaphore", function()
  it("has value 1 by default; value() counts the free permits", function()
    helper.run(function()
      local s = lasync.Semaphore()
      assert.are.equal(1, s:value())
      assert.is_false(s:locked())
      assert.is_true(s:acquire())
      assert.are.equal(0, s:value())
      assert.is_true(s:locked())
      s:release()
      assert.are.equal(1, s:value())
      s:release() -- a plain Semaphore may go above its initial value
      assert.are.equal(2, s:value())
      assert.are.equal("lasync.Semaphore: value 2, 0 waiting", tostring(s))
    end, 1)
  end)

  it("takes an initial value; 0 is locked from the start", function()
    helper.run(function()
      local s = lasync.Semaphore(3)
      assert.are.equal(3, s:value())
      for i = 2, 0, -1 do
        s:acquire()
        assert.are.equal(i, s:value())
      end
      assert.is_true(s:locked())
      local z = lasync.Semaphore(0)
      assert.is_true(z:locked())
      assert.are.equal(0, z:value())
      local ok, err = pcall(lasync.timeout, 0.005, z.acquire, z)
      assert.is_false(ok)
      assert(lasync.is_timeout(err), helper.show(err))
      z:release()
      assert.is_true(z:acquire())
    end, 1)
  end)

  it("refuses negative and non-integer values", function()
    raises_msg("lasync.Semaphore: value must be >= 0 (got -1)",
      lasync.Semaphore, -1)
    raises_msg("lasync.Semaphore: value must be an integer (got number)",
      lasync.Semaphore, 1.5)
    raises_msg("lasync.Semaphore: value must be an integer (got table)",
      lasync.Semaphore, {})
    raises_msg("lasync.BoundedSemaphore: value must be >= 0 (got -3)",
      lasync.BoundedSemaphore, -3)
    raises_msg("lasync.BoundedSemaphore: value must be an integer (got " ..
      "boolean)", lasync.BoundedSemaphore, true)
  end)

  it("acquire refuses to run outside a task, naming the class", function()
    local s = lasync.Semaphore(2)
    raises_msg("lasync.Semaphore:acquire: not inside a task", s.acquire, s)
    assert.are.equal(2, s:value())
    local b = lasync.BoundedSemaphore(2)
    raises_msg("lasync.BoundedSemaphore:acquire: not inside a task",
      b.acquire, b)
    raises_msg("lasync.Semaphore:value: expected a Semaphore (got number)",
      s.value, 5)
  end)

  it("acquire with a free permit does not yield (fast path)", function()
    local events, log = recorder()
    helper.run(function()
      local s = lasync.Semaphore(2)
      local other = lasync.spawn(function() log("other") end)
      s:acquire()
      s:acquire()
      log("acquired twice")
      s:release()
      s:release()
      other:await()
    end, 1)
    assert.are.same({ "acquired twice", "other" }, events)
  end)

  it("bounds the concurrency: value 2 lets at most 2 workers in at once",
    function()
      local events, log = recorder()
      local max_inside = 0
      helper.run(function()
        local s = lasync.Semaphore(2)
        local inside = 0
        local ws = {}
        for i = 1, 6 do
          ws[i] = lasync.spawn(function()
            s:with(function()
              inside = inside + 1
              if inside > max_inside then max_inside = inside end
              log("w" .. i)
              lasync.sleep(0.001 * (i % 3 + 1))
              inside = inside - 1
            end)
          end)
        end
        for _, w in ipairs(ws) do w:await() end
        assert.are.equal(2, s:value())
        assert.are.equal(0, inside)
      end, 1)
      assert.are.equal(2, max_inside)
      -- entry order is FIFO: w1 and w2 first, and all six got in
      assert.are.equal("w1", events[1])
      assert.are.equal("w2", events[2])
      assert.are.equal(6, #events)
    end)

  it("serves waiters in FIFO order, one per release", function()
    local events, log = recorder()
    helper.run(function()
      local s = lasync.Semaphore(0)
      local ts = {}
      for i = 1, 4 do
        ts[i] = lasync.spawn(function()
          s:acquire()
          log("t" .. i)
        end)
      end
      settle_all()
      assert.are.equal(4, waiting(s))
      s:release()
      settle_all()
      log("one release")
      s:release()
      s:release()
      s:release()
      for _, t in ipairs(ts) do t:await() end
      assert.are.equal(0, s:value())
    end, 1)
    assert.are.same({ "t1", "one release", "t2", "t3", "t4" }, events)
  end)

  it("release hands the permit to the first waiter: no barging",
    function()
      local events, log = recorder()
      helper.run(function()
        local s = lasync.Semaphore(1)
        s:acquire()
        local t = user(s, "t", log)
        settle_all()
        s:release()
        assert.are.equal(0, s:value())
        assert.is_true(s:locked())
        s:acquire() -- waits behind t
        log("main in")
        s:release()
        t:await()
        assert.are.equal(1, s:value())
      end, 1)
      assert.are.same({ "t in", "t out", "main in" }, events)
    end)

  it("a waiter cancelled while queued is removed and takes no permit",
    function()
      local events, log = recorder()
      helper.run(function()
        local s = lasync.Semaphore(0)
        local a, b, c = user(s, "a", log), user(s, "b", log),
            user(s, "c", log)
        settle_all()
        b:cancel()
        assert_cancelled(b)
        assert.are.equal(2, waiting(s))
        s:release()
        s:release()
        a:await()
        c:await()
        assert.are.equal(2, s:value())
      end, 1)
      assert.are.same({ "a in", "c in", "a out", "c out" }, events)
    end)

  it("a waiter handed a permit and cancelled before it ran passes it on",
    function()
      local events, log = recorder()
      helper.run(function()
        local s = lasync.Semaphore(0)
        local a, b = user(s, "a", log), user(s, "b", log)
        settle_all()
        s:release()   -- to a ...
        a:cancel()    -- ... cancelled before it runs
        assert_cancelled(a)
        b:await()
        assert.are.equal(1, s:value())
        -- with nobody after it, the permit goes back to the count
        local c = user(s, "c", log)
        s:acquire()
        settle_all()
        s:release()
        c:cancel()
        assert_cancelled(c)
        assert.are.equal(1, s:value())
        assert.are.equal(0, waiting(s))
      end, 1)
      assert.are.same({ "b in", "b out" }, events)
    end)

  it("a timed-out acquire takes no permit", function()
    helper.run(function()
      local s = lasync.Semaphore(1)
      s:acquire()
      local ok, err = pcall(lasync.timeout, 0.005, s.acquire, s)
      assert(lasync.is_timeout(err), helper.show(err))
      assert.is_false(ok)
      ok, err = pcall(lasync.wait_for, function() return s:acquire() end,
        0.005)
      assert(lasync.is_timeout(err), helper.show(err))
      assert.are.equal(0, s:value())
      assert.are.equal(0, waiting(s))
      s:release()
      assert.are.equal(1, s:value())
      assert.is_true(s:acquire())
      s:release()
    end, 1)
  end)

  it("with and hold work on a semaphore", function()
    helper.run(function()
      local s = lasync.Semaphore(2)
      assert.are.equal("r", s:with(function()
        assert.are.equal(1, s:value())
        return "r"
      end))
      assert.are.equal(2, s:value())
      do
        local h <close> = s:hold()
        assert.are.equal(s, h)
        assert.are.equal(1, s:value())
      end
      assert.are.equal(2, s:value())
      pcall(s.with, s, error, "x")
      assert.are.equal(2, s:value())
    end, 1)
  end)
end)

describe("lasync.BoundedSemaphore", function()
  it("works like a Semaphore within its bound", function()
    helper.run(function()
      local b = lasync.BoundedSemaphore(2)
      assert.are.equal(2, b:value())
      b:acquire()
      b:acquire()
      assert.is_true(b:locked())
      b:release()
      b:release()
      assert.are.equal(2, b:value())
      assert.are.equal("lasync.BoundedSemaphore: value 2, 0 waiting",
        tostring(b))
      assert.are.equal(1, lasync.BoundedSemaphore():value())
    end, 1)
  end)

  it("raises on release above the initial value and keeps the value",
    function()
      local b = lasync.BoundedSemaphore(2)
      raises_msg("lasync.BoundedSemaphore:release: released more times " ..
        "than acquired (the value would exceed 2)", b.release, b)
      assert.are.equal(2, b:value())
      helper.run(function()
        b:acquire()
        b:release()
        raises_msg("lasync.BoundedSemaphore:release: released more times",
          b.release, b)
        assert.are.equal(2, b:value())
        -- with and hold release exactly once
        b:with(function() end)
        do local _ <close> = b:hold() end
        assert.are.equal(2, b:value())
      end, 1)
    end)

  it("hands permits to waiters and still checks the bound", function()
    local events, log = recorder()
    helper.run(function()
      local b = lasync.BoundedSemaphore(1)
      b:acquire()
      local t = user(b, "t", log)
      settle_all()
      b:release() -- handed to t
      t:await()
      assert.are.equal(1, b:value())
      raises_msg("released more times than acquired", b.release, b)
      assert.are.equal(1, b:value())
    end, 1)
    assert.are.same({ "t in", "t out" }, events)
  end)

  it("a timed-out or cancelled acquire leaves the value in bound",
    function()
      helper.run(function()
        local b = lasync.BoundedSemaphore(1)
        b:acquire()
        local ok, err = pcall(lasync.timeout, 0.005, b.acquire, b)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.is_false(ok)
        local t = user(b, "t", function() end)
        settle_all()
        b:release()
        t:cancel() -- handed the permit, cancelled before it ran
        assert_cancelled(t)
        assert.are.equal(1, b:value())
        raises_msg("released more times than acquired", b.release, b)
      end, 1)
    end)
end)
