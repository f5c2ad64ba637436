-- issue 9, item 4: await(self) was refused, but gather(self),
-- wait({self}), shield(self), as_completed({self}) and wait_for(self, t)
-- waited forever (gather(self) could not even be cancelled). Each now
-- refuses with the same error naming the function, before anything is
-- started, and the task goes on unharmed.
local helper = require "helper"
local lasync = helper.lasync

local cases = {
  { "await", function(me) return lasync.await(me) end },
  { "await", function(me) return me:await() end },
  { "gather", function(me) return lasync.gather(me) end },
  { "gather", function(me, fn) return lasync.gather(fn, me) end },
  { "gather", function(me, fn) return lasync.gather({ fn, me }) end },
  { "gather", function(me, fn)
    return lasync.gather(fn, me, { return_exceptions = true })
  end },
  { "wait", function(me) return lasync.wait({ me }) end },
  { "wait", function(me, fn)
    return lasync.wait({ fn, me }, { timeout = 0.01 })
  end },
  { "shield", function(me) return lasync.shield(me) end },
  { "as_completed", function(me)
    for f in lasync.as_completed({ me }) do return f end
  end },
  { "as_completed", function(me, fn)
    return lasync.as_completed({ fn, me }, { timeout = 0.01 })
  end },
  { "wait_for", function(me) return lasync.wait_for(me, 1) end },
  { "wait_for", function(me) return lasync.wait_for(me, 0) end },
  { "wait_for", function(me) return lasync.wait_for(me) end },
}

describe("regress 0009: a task cannot wait on itself", function()
  for i, case in ipairs(cases) do
    local fname, call = case[1], case[2]
    it(("%s (case %d) refuses at once"):format(fname, i), function()
      helper.run(function()
        local me = lasync.current_task()
        local started = 0
        local function fn() started = started + 1 end
        local err = helper.error_of(call, me, fn)
        assert.is_string(err)
        assert.matches("lasync." .. fname .. ": a task cannot await itself",
          err, 1, true)
        helper.settle_all()
        assert.are.equal(0, started, "a child was started")
        assert.are.equal(0, me:cancelling())
        assert.is_false(me:done())
        local elapsed = helper.timed(lasync.sleep, 0.005)
        assert.is_true(elapsed >= 0.005)
      end, 1)
    end)
  end

  it("in another task too, and a later cancel still works", function()
    helper.run(function()
      local t
      t = lasync.spawn(function()
        local ok, err = pcall(lasync.gather, t)
        assert.is_false(ok)
        assert.matches("a task cannot await itself", err, 1, true)
        lasync.sleep(1)
      end)
      helper.settle_all()
      t:cancel()
      helper.assert_cancelled(t)
      assert.are.equal(1, t:cancelling())
    end, 1)
  end)
end)
