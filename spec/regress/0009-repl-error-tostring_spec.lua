-- Issue 9, item 8: the REPL reports an error whose __tostring fails and
-- goes on; its value printer calls __tostring protected (a failure is
-- shown, an await inside it works) and goes on too.
local helper = require "helper"

local BAD = [[setmetatable({}, {__tostring = function() error("x") end})]]

-- Feed `lines` to `lasync -i` (piped); exit status, stdout, stderr.
local function repl(lines)
  return helper.lasync_cmd("-i", table.concat(lines, "\n") .. "\n")
end

describe("the REPL and __tostring that fails", function()
  it("reports an uncaught error whose __tostring raises, and goes on",
    function()
      local code, out, err = repl({
        "error(" .. BAD .. ")",
        "print('still here')",
      })
      assert.are.equal(0, code)
      assert.are.equal("still here\n", out)
      assert.matches("lasync: (error object is a table value; its " ..
        "__tostring failed: stdin:1: x)\n", err, 1, true)
    end)

  it("the same when the failure's own __tostring fails", function()
    local code, out, err = repl({
      "error(setmetatable({}, {__tostring = function() error(" .. BAD ..
        ") end}))",
      "print('still here')",
    })
    assert.are.equal(0, code)
    assert.are.equal("still here\n", out)
    assert.matches("lasync: (error object is a table value; its " ..
      "__tostring failed: (error object is a table value))\n", err, 1, true)
  end)

  it("shows a value whose __tostring raises, and goes on", function()
    local code, out, err = repl({
      BAD,
      "setmetatable({}, {__tostring = function() return {} end})",
      "setmetatable({}, {__tostring = function() error(" .. BAD .. ") end})",
      "{1, " .. BAD .. "}",
      "print('still here')",
    })
    assert.are.equal(0, code)
    assert.are.equal("", err)
    assert.are.equal(
      "<__tostring failed: stdin:1: x>\n" ..
      "<__tostring failed: '__tostring' must return a string>\n" ..
      "<__tostring failed: (error object is a table value)>\n" ..
      "{1, <__tostring failed: stdin:1: x>}\n" ..
      "still here\n", out)
  end)

  it("a __tostring that awaits: the value, and the REPL goes on", function()
    local code, out, err = repl({
      "setmetatable({}, {__tostring = function() lasync.sleep(0.001) " ..
        "return 'awaited' end})",
      "error(setmetatable({}, {__tostring = function() lasync.sleep(0.001) " ..
        "return 'late error' end}))",
      "t = lasync.spawn(lasync.sleep, 0.001) t:await() print('still here', " ..
        "#lasync.all_tasks())",
    })
    assert.are.equal(0, code)
    assert.are.equal("awaited\nstill here\t2\n", out) -- the REPL, this entry
    assert.matches("lasync: late error\n", err, 1, true)
  end)
end)
