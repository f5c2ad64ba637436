-- lasync.sleep: delays, sleep(0) ordering, extra results, bad delays and
-- cancellation, checked against asyncio.sleep.
local helper = require "helper"
local lasync = helper.lasync
local escape = helper.escape

describe("lasync.sleep", function()
  it("waits at least the delay", function()
    helper.run(function()
      local elapsed = helper.timed(lasync.sleep, 0.02)
      assert.is_true(elapsed >= 0.02, "elapsed " .. elapsed)
      assert.is_true(elapsed < 0.5, "elapsed " .. elapsed)
    end, 1)
  end)

  it("returns its extra arguments, nils included", function()
    helper.run(function()
      local res = table.pack(lasync.sleep(0.001, "a", nil, 3, nil))
      assert.are.equal(4, res.n)
      assert.are.same({ "a", nil, 3, nil }, { res[1], res[2], res[3], res[4] })
      res = table.pack(lasync.sleep(0, nil, "b"))
      assert.are.equal(2, res.n)
      assert.is_nil(res[1])
      assert.are.equal("b", res[2])
      local t = {}
      assert.are.equal(t, lasync.sleep(0, t))
    end, 1)
  end)

  it("returns nothing without extra arguments", function()
    helper.run(function()
      assert.are.equal(0, select("#", lasync.sleep(0.001)))
      assert.are.equal(0, select("#", lasync.sleep(0)))
    end, 1)
  end)

  it("wakes sleepers in deadline order, not in the order they slept",
    function()
      helper.run(function()
        local log = {}
        local ts = {}
        for i, d in ipairs({ 0.03, 0.01, 0.02, 0.005 }) do
          ts[i] = lasync.create_task(function()
            lasync.sleep(d)
            log[#log + 1] = d
          end)
        end
        lasync.gather(ts[1], ts[2], ts[3], ts[4])
        assert.are.same({ 0.005, 0.01, 0.02, 0.03 }, log)
      end, 1)
    end)

  it("runs many concurrent sleepers in about the longest delay", function()
    helper.run(function()
      local ts = {}
      for i = 1, 1000 do
        ts[i] = lasync.create_task(function()
          lasync.sleep(0.001 + (i % 20) / 1000) -- 1 to 20 ms
          return i
        end)
      end
      local elapsed, res = helper.timed(lasync.gather, ts)
      assert.are.equal(1000, res.n)
      assert.are.equal(1000, res[1000])
      assert.is_true(elapsed >= 0.02, "elapsed " .. elapsed)
      assert.is_true(elapsed < 1, "elapsed " .. elapsed)
    end, 2)
  end)

  it("needs a task", function()
    local err = helper.error_of(lasync.sleep, 0)
    assert.matches(escape("lasync.sleep: not inside a task: run this code " ..
      "with lasync.run or the lasync command"), err)
  end)

  it("cannot be called in a coroutine nested inside a task", function()
    helper.run(function()
      local co = coroutine.create(function() lasync.sleep(0.001) end)
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.matches("lasync.sleep: cannot await in a coroutine nested " ..
        "inside a task", err, 1, true)
    end, 1)
  end)
end)

describe("lasync.sleep(0)", function()
  it("yields exactly one loop iteration", function()
    helper.run(function()
      local log = {}
      local loop = lasync.get_running_loop()
      loop:call_soon(function()
        log[#log + 1] = "cb1"
        loop:call_soon(function() log[#log + 1] = "cb2" end)
      end)
      lasync.sleep(0)
      log[#log + 1] = "main"
      lasync.sleep(0)
      assert.are.same({ "cb1", "main", "cb2" }, log)
    end, 1)
  end)

  it("goes to the back of the ready queue: two tasks interleave", function()
    helper.run(function()
      local log = {}
      local function worker(name)
        for i = 1, 3 do
          log[#log + 1] = name .. i
          lasync.sleep(0)
        end
      end
      local a = lasync.create_task(worker, "a")
      local b = lasync.create_task(worker, "b")
      lasync.gather(a, b)
      assert.are.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, log)
    end, 1)
  end)

  it("lets three tasks round-robin", function()
    helper.run(function()
      local log = {}
      local ts = {}
      for _, name in ipairs({ "x", "y", "z" }) do
        ts[#ts + 1] = lasync.create_task(function()
          for i = 1, 2 do
            log[#log + 1] = name .. i
            lasync.sleep(0)
          end
        end)
      end
      lasync.gather(ts[1], ts[2], ts[3])
      assert.are.same({ "x1", "y1", "z1", "x2", "y2", "z2" }, log)
    end, 1)
  end)

  it("does not wait for timers", function()
    helper.run(function()
      local elapsed = helper.timed(function()
        for _ = 1, 100 do lasync.sleep(0) end
      end)
      assert.is_true(elapsed < 0.1, "elapsed " .. elapsed)
    end, 1)
  end)

  it("lets a due timer run between a sleep(0) loop's steps", function()
    helper.run(function()
      local fired = false
      lasync.get_running_loop():call_later(0.005, function() fired = true end)
      local t0 = helper.now()
      while not fired and helper.now() - t0 < 0.5 do lasync.sleep(0) end
      assert.is_true(fired)
    end, 1)
  end)
end)

describe("lasync.sleep with odd delays", function()
  it("treats a negative delay as 0", function()
    helper.run(function()
      local log = {}
      local a = lasync.create_task(function()
        for i = 1, 2 do
          log[#log + 1] = "a" .. i
          lasync.sleep(-1)
        end
      end)
      local b = lasync.create_task(function()
        for i = 1, 2 do
          log[#log + 1] = "b" .. i
          lasync.sleep(-0.5)
        end
      end)
      local elapsed = helper.timed(lasync.gather, a, b)
      assert.are.same({ "a1", "b1", "a2", "b2" }, log)
      assert.is_true(elapsed < 0.1)
      assert.are.equal("x", lasync.sleep(-math.huge, "x"))
    end, 1)
  end)

  it("rejects NaN", function()
    helper.run(function()
      local err = helper.error_of(lasync.sleep, 0 / 0)
      assert.matches("lasync.sleep: delay is NaN", err, 1, true)
    end, 1)
  end)

  it("rejects non-numbers", function()
    helper.run(function()
      local err = helper.error_of(lasync.sleep, "soon")
      assert.matches(escape("lasync.sleep: delay must be a number " ..
        "(got string)"), err)
      err = helper.error_of(lasync.sleep, nil)
      assert.matches(escape("lasync.sleep: delay must be a number (got nil)"),
        err)
      err = helper.error_of(lasync.sleep, {})
      assert.matches(escape("lasync.sleep: delay must be a number " ..
        "(got table)"), err)
    end, 1)
  end)

  it("accepts an infinite delay (cancelled here)", function()
    helper.run(function()
      local t = lasync.create_task(function() lasync.sleep(math.huge) end)
      lasync.sleep(0.001)
      assert.is_false(t:done())
      t:cancel()
      assert.is_true(lasync.is_cancelled(helper.error_of(t.await, t)))
    end, 1)
  end)
end)

describe("cancelling a sleep", function()
  it("wakes the sleeper at once with CancelledError", function()
    helper.run(function()
      local t = lasync.create_task(function() return lasync.sleep(10, "v") end)
      lasync.sleep(0.001)
      local elapsed, ok, err = helper.timed(function()
        t:cancel("wake up")
        return pcall(t.await, t)
      end)
      assert.is_false(ok)
      assert.is_true(lasync.is_cancelled(err))
      assert.are.equal("wake up", err.message)
      assert.is_true(elapsed < 0.5, "elapsed " .. elapsed)
    end, 1)
  end)

  it("cancels a sleep(0) too", function()
    helper.run(function()
      local log = {}
      local t = lasync.create_task(function()
        while true do
          log[#log + 1] = "tick"
          lasync.sleep(0)
        end
      end)
      lasync.sleep(0)
      lasync.sleep(0)
      t:cancel()
      assert.is_true(lasync.is_cancelled(helper.error_of(t.await, t)))
      assert.is_true(#log >= 1)
    end, 1)
  end)

  it("leaves no timer behind: the loop can finish right after", function()
    local elapsed = helper.run(function()
      local t0 = helper.now()
      local t = lasync.create_task(function() lasync.sleep(5) end)
      lasync.sleep(0)
      t:cancel()
      pcall(t.await, t)
      return helper.now() - t0
    end, 2)
    assert.is_true(elapsed < 1)
  end)

  it("a sleeper that swallows the cancel goes on sleeping normally",
    function()
      helper.run(function()
        local t = lasync.create_task(function()
          pcall(lasync.sleep, 10)
          return lasync.sleep(0.005, "after")
        end)
        lasync.sleep(0)
        t:cancel()
        local elapsed, r = helper.timed(t.await, t)
        assert.are.equal("after", r)
        assert.is_true(elapsed >= 0.005, "elapsed " .. elapsed)
      end, 1)
    end)
end)
