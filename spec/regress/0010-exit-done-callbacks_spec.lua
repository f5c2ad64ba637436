-- Found while merging TLS (a connection handler failing during shutdown
-- was reported as "never retrieved" instead of through its done callback):
-- lasync.run cancels the tasks main leaves pending and runs the loop until
-- they finish, but stopped before the done callbacks their ends
-- scheduled, and closing the loop dropped them. asyncio's run_until_complete
-- runs the iteration that settles its future, so they run there.
local helper = require "helper"
local lasync = helper.lasync

describe("lasync.run's cancelling of leftover tasks", function()
  it("runs the done callbacks of the tasks it cancelled", function()
    local ran = {}
    lasync.run(function()
      local t = lasync.spawn(function() lasync.sleep(10) end)
      t:add_done_callback(function(task)
        ran[#ran + 1] = task:cancelled()
      end)
      lasync.sleep(0)
    end)
    assert.are.same({ true }, ran)
  end)

  it("under the command too", function()
    local code, out = helper.run_script([[
local t = lasync.spawn(function() lasync.sleep(10) end)
t:add_done_callback(function(task) print("ran", task:cancelled()) end)
lasync.sleep(0)
]])
    assert.are.equal(0, code)
    assert.are.equal("ran\ttrue\n", out)
  end)
end)
