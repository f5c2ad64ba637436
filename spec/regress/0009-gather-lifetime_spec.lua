-- issue 9, item 1: a gather outlives the task that awaited it (the task got
-- the gather's error and ended while a child still runs). When the child
-- finishes, the gather must not touch the collected task (it read the freed
-- owner: heap-use-after-free under ASan, SIGSEGV in the release build).
-- The other combinators survive the same pattern; one spec each keeps it so.
local helper = require "helper"
local lasync = helper.lasync

local function collect()
  collectgarbage()
  collectgarbage()
end

-- Run make_owner() (a function spawning the task that awaits), let it end
-- and be collected, then let its children finish: no crash, no report of
-- a child error nobody could see.
local function outlive(make_owner, settle)
  helper.run(function()
    local reports = helper.capture_reports()
    local t = make_owner()
    local ok = pcall(t.await, t)
    t = nil -- luacheck: ignore
    collect()
    lasync.sleep(settle or 0.03)
    collect()
    lasync.sleep(0)
    assert.are.same({}, reports)
    return ok
  end, 2)
end

describe("regress 0009: a gather outliving its awaiting task", function()
  it("a child failed while a sibling still runs (the issue's example)",
    function()
      outlive(function()
        return lasync.spawn(function()
          return pcall(lasync.gather, function() lasync.sleep(0.01) end,
            function() error("boom") end)
        end)
      end)
    end)

  it("the sibling fails later: its error counts as retrieved", function()
    outlive(function()
      return lasync.spawn(function()
        return pcall(lasync.gather,
          function() lasync.sleep(0.01) error("late") end,
          function() error("boom") end)
      end)
    end)
  end)

  it("a child cancelled by a third party while a sibling runs", function()
    outlive(function()
      local victim = lasync.spawn(function() lasync.sleep(1) end)
      local t = lasync.spawn(function()
        return pcall(lasync.gather, victim,
          function() lasync.sleep(0.01) return 1 end)
      end)
      lasync.spawn(function() lasync.sleep(0.001) victim:cancel() end)
      return t
    end)
  end)

  it("the gather object itself is collected before the children end",
    function()
      helper.run(function()
        local reports = helper.capture_reports()
        local fut = lasync.Future()
        local t = lasync.spawn(function()
          return pcall(lasync.gather, fut, lasync.spawn(function()
            error("boom")
          end))
        end)
        t:await()
        t = nil -- luacheck: ignore
        collect()
        fut:set_exception("late") -- the gather still counts it
        collect()
        lasync.sleep(0.002)
        assert.are.same({}, reports)
      end, 2)
    end)

  it("the outer task is cancelled while a child ignores the cancel",
    function()
      helper.run(function()
        local reports = helper.capture_reports()
        local stubborn = lasync.spawn(function()
          pcall(lasync.sleep, 1) -- swallows the cancel
          lasync.sleep(0.01)
          return "late"
        end)
        local t = lasync.spawn(function()
          return lasync.gather(stubborn, function() lasync.sleep(1) end)
        end)
        lasync.sleep(0.001)
        t:cancel()
        lasync.sleep(0.001)
        collect()
        assert.are.equal("late", stubborn:await())
        -- the other child's cancellation ended the gather, and t with it
        local ok = pcall(t.await, t)
        assert.is_false(ok)
        t = nil -- luacheck: ignore
        collect()
        lasync.sleep(0)
        assert.are.same({}, reports)
      end, 2)
    end)

  it("a loop closed while a failed gather still counts a child releases "
    .. "it", function()
      local before = lasync._stats()
      local loop = lasync.new_event_loop()
      local never = loop:create_future()
      local ok = loop:run_until_complete(function()
        return pcall(lasync.gather, never, function() error("boom") end)
      end)
      assert.is_false(ok)
      loop:close()
      loop = nil -- luacheck: ignore
      never = nil -- luacheck: ignore
      collect()
      local after = lasync._stats()
      assert.are.equal(before.anchors, after.anchors)
      assert.are.equal(before.loops, after.loops)
    end)
end)

describe("regress 0009: the other combinators survive the same pattern",
  function()
    it("wait", function()
      outlive(function()
        return lasync.spawn(function()
          return lasync.wait({ function() lasync.sleep(0.01) end,
            function() error("boom") end },
            { return_when = lasync.FIRST_EXCEPTION })
        end)
      end)
    end)

    it("as_completed", function()
      outlive(function()
        return lasync.spawn(function()
          for f in lasync.as_completed({ function() lasync.sleep(0.01) end,
            function() return 1 end }) do
            return f:result()
          end
        end)
      end)
    end)

    it("shield", function()
      outlive(function()
        local t = lasync.spawn(function()
          return lasync.shield(function() lasync.sleep(0.01) end)
        end)
        lasync.spawn(function() lasync.sleep(0.001) t:cancel() end)
        return t
      end)
    end)

    it("wait_for", function()
      outlive(function()
        local inner = lasync.spawn(function()
          pcall(lasync.sleep, 1)
          lasync.sleep(0.01)
        end)
        return lasync.spawn(function()
          return pcall(lasync.wait_for, inner, 0.001)
        end)
      end)
    end)

    it("timeout", function()
      outlive(function()
        return lasync.spawn(function()
          return pcall(lasync.timeout, 0.001, lasync.gather,
            function() pcall(lasync.sleep, 1) lasync.sleep(0.01) end)
        end)
      end)
    end)

    it("task groups", function()
      outlive(function()
        return lasync.spawn(function()
          return pcall(lasync.task_group, function(tg)
            tg:spawn(function() pcall(lasync.sleep, 1) lasync.sleep(0.01) end)
            tg:spawn(function() error("boom") end)
          end)
        end)
      end)
    end)
  end)
