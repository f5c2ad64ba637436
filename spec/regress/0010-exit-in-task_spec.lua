-- Issue 10 (found by the op-detach work): os.exit(code, true) in a task
-- closes the Lua state, and with it the loop, while lasync.run's default
-- SIGINT watcher still ran: the uv loop could not close and was leaked
-- with a warning ("abandoned 0 thread-pool requests"). Closing a loop now
-- stops that watcher first.
local helper = require "helper"

describe("issue 10: os.exit(code, true) from a task", function()
  it("under lua5.4 and lasync.run exits quietly with its code", function()
    local script = helper.temp_script([[
local lasync = require "lasync"
lasync.run(function() lasync.sleep(0) os.exit(4, true) end)
]])
    local code, out, err = helper.capture("lua5.4 " .. script)
    os.remove(script)
    assert.are.equal(4, code)
    assert.are.equal("", out)
    assert.are.equal("", err)
  end)

  it("under the lasync command exits quietly with its code", function()
    local code, out, err = helper.lasync_cmd(
      "-e 'lasync.sleep(0) os.exit(3, true)'")
    assert.are.equal(3, code)
    assert.are.equal("", out)
    assert.are.equal("", err)
  end)
end)
