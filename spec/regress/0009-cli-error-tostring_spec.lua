-- Issue 9, item 8: an uncaught error whose __tostring fails (raises,
-- returns no string, or awaits after the loop closed) is reported as the
-- original error by the lasync command, for a script and for -e, instead
-- of the __tostring failure (or a crash).
local helper = require "helper"

local BAD = [[setmetatable({}, {__tostring = function() error("x") end})]]

describe("the lasync command and an error whose __tostring fails", function()
  it("a script: the original error, then main's traceback", function()
    local code, out, err = helper.run_script("lasync.sleep(0)\nerror(" ..
      BAD .. ")\n")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^lasync: %(error object is a table value; its " ..
      "__tostring failed: [^\n]*:2: x%)\n", err)
    assert.matches("stack traceback of task 'main':\n", err, 1, true)
    assert.matches("%.lua:2: in main chunk", err)
  end)

  it("-e: the same", function()
    local code, _, err = helper.lasync_cmd("-e " ..
      helper.shell_quote("error(" .. BAD .. ")"))
    assert.are.equal(1, code)
    assert.matches("^lasync: %(error object is a table value; its " ..
      "__tostring failed: %(command line%):1: x%)\n", err)
    assert.matches("(command line):1: in main chunk", err, 1, true)
  end)

  it("a __tostring that returns no string", function()
    local code, _, err = helper.run_script(
      "error(setmetatable({}, {__tostring = function() return {} end}))")
    assert.are.equal(1, code)
    assert.matches("^lasync: %(error object is a table value; its " ..
      "__tostring failed: '__tostring' must return a string%)\n", err)
  end)

  it("a __tostring that awaits: no loop runs any more, it fails cleanly",
    function()
      local code, _, err = helper.run_script([[
        error(setmetatable({}, {__tostring = function()
          lasync.sleep(0)
          return "never"
        end}))]])
      assert.are.equal(1, code)
      assert.matches("^lasync: %(error object is a table value; its " ..
        "__tostring failed: [^\n]+%)\n", err)
      assert.is_nil(err:find("never", 1, true))
    end)

  it("a failure whose own error has a failing __tostring", function()
    local code, _, err = helper.run_script("error(setmetatable({}, " ..
      "{__tostring = function() error(" .. BAD .. ") end}))")
    assert.are.equal(1, code)
    assert.matches("^lasync: %(error object is a table value; its " ..
      "__tostring failed: %(error object is a table value%)%)\n", err)
  end)

  it("a __tostring that works is still used", function()
    local code, _, err = helper.run_script(
      "error(setmetatable({}, {__tostring = function() return 'mine' end}))")
    assert.are.equal(1, code)
    assert.matches("^lasync: mine\nstack traceback of task 'main'", err)
  end)
end)
