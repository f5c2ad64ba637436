-- Issue 9, found by a helper: lasync.create_task({name = {}}, fn) raised
-- "option 'name' must be a string" after it had made the task, which then
-- ran; inside a TaskGroup the same left a task outside the group. Every
-- option is checked before the task is created.
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

describe("regress 0009: create_task checks its options first", function()
  for _, fname in ipairs { "create_task", "spawn" } do
    it("lasync." .. fname .. " makes no task on a bad option", function()
      helper.run(function()
        local ran = false
        local function fn() ran = true end
        local before = #lasync.all_tasks()
        raises_msg("lasync.create_task: option 'name' must be a string " ..
          "(got table)", lasync[fname], { name = {} }, fn)
        raises_msg("lasync.create_task: unknown option 'nmae' (options " ..
          "are named, as in {name = \"worker\"})", lasync[fname],
          { nmae = "x" }, fn)
        raises_msg("lasync.create_task: unknown option [1]", lasync[fname],
          { "x" }, fn)
        assert.are.equal(before, #lasync.all_tasks())
        lasync.sleep(0.001)
        assert.is_false(ran)
      end)
    end)
  end

  it("loop:create_task makes no task on a bad option", function()
    local loop = lasync.new_event_loop()
    local ran = false
    raises_msg("lasync.Loop:create_task: option 'name' must be a string " ..
      "(got boolean)", loop.create_task, loop, { name = true },
      function() ran = true end)
    loop:run_until_complete(loop:create_task(lasync.sleep, 0.001))
    loop:close()
    assert.is_false(ran)
  end)

  it("a TaskGroup gets no stray child", function()
    helper.run(function()
      local ran = false
      local err
      lasync.task_group(function(tg)
        local ok, e = pcall(tg.create_task, tg, { name = {} }, function() ran = true end)
        assert.is_false(ok)
        err = e
        tg:create_task({ name = "good" }, function() end)
      end)
      assert.matches("lasync.TaskGroup:create_task: option 'name' must be " ..
        "a string (got table)", err, 1, true)
      assert.is_false(ran)
      assert.are.equal(1, #lasync.all_tasks()) -- this one
    end)
  end)
end)
