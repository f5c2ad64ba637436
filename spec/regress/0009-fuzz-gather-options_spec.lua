-- Issue 9 (reading the functions that take options, after create_task
-- was found to check its options after making the task): lasync.gather
-- took a callable table as its last argument for the options table, so
-- gather(fn, callable) dropped a child and returned one result; a callable
-- table first was taken for the list form; and an option with a typo
-- (return_exeptions) passed unseen. All are decided before any child is
-- started.
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

describe("regress 0009: gather's options", function()
  it("a callable table is an argument, first or last, never the options",
    function()
      helper.run(function()
        -- gather's children are tasks, futures and functions: a callable
        -- table is refused as one, where it was dropped as the options
        local c = setmetatable({}, { __call = function() return "c" end })
        local ran = false
        local function child() ran = true end
        raises_msg("lasync.gather: argument #2 is not awaitable (expected " ..
          "a task, future or function, got table)", lasync.gather, child, c)
        raises_msg("lasync.gather: argument #1 is not awaitable (expected " ..
          "a task, future or function, got table)", lasync.gather, c, child)
        lasync.sleep(0.001)
        assert.is_false(ran)
        -- the list form and its options still work
        assert.are.same({ 1, n = 1 }, lasync.gather({ function() return 1 end },
          { return_exceptions = true }))
      end)
    end)

  it("an unknown option raises before any child starts", function()
    helper.run(function()
      local ran = false
      local function child() ran = true end
      raises_msg("lasync.gather: unknown option 'return_exeptions' " ..
        "(options are named, as in {return_exceptions = true})",
        lasync.gather, child, { return_exeptions = true })
      raises_msg("lasync.gather: unknown option [1]", lasync.gather,
        { child }, { child })
      lasync.sleep(0.001)
      assert.is_false(ran)
      assert.are.equal(1, #lasync.all_tasks())
    end)
  end)
end)
