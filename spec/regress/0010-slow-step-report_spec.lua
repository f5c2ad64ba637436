-- Issue 10: the debug-mode report of a slow step. lasync.run named its
-- main task by replacing the task's private table, which dropped what
-- debug mode had written there (where the function is defined, where the
-- task was created): a main task that blocked the loop in its last step
-- was reported without its place. It now goes through lx_task_set_name.
local helper = require "helper"

describe("lasync.run's main task in debug mode", function()
  it("keeps where its function is defined (slow last step)", function()
    local script = helper.temp_script([[
local lasync = require "lasync"
lasync.run(function()
  local t0 = os.clock()
  while os.clock() - t0 < 0.15 do end
end)
]])
    local code, out, err = helper.capture("LASYNC_DEBUG=1 lua5.4 " ..
      helper.shell_quote(script))
    os.remove(script)
    assert.are.equal(0, code)
    assert.are.equal("", out)
    assert.matches("lasync: task 'main' %([^\n]*%.lua:2%) blocked the " ..
      "event loop for", err)
  end)
end)

-- Found on the way: a task whose function has no line (a loaded chunk)
-- and that blocked the loop in its last step was reported as
-- "task '?' ((null))": the missing "defined" field was left on the stack.
describe("the slow-step warning of a task with no defining line", function()
  it("names the task and says '?' for where", function()
    local script = helper.temp_script([[
local t = lasync.create_task({ name = "hog" }, load(
  "local t0 = os.clock() while os.clock() - t0 < 0.15 do end"))
t:await()
]])
    local code, out, err = helper.lasync_cmd("--debug " ..
      helper.shell_quote(script))
    os.remove(script)
    assert.are.equal(0, code)
    assert.are.equal("", out)
    assert.matches("lasync: task 'hog' %(%?%) blocked the event loop for",
      err)
  end)
end)
