local helper = require "helper"
local lasync = helper.lasync

describe("the spec helper", function()
  it("runs a body as the main task and returns its results", function()
    local a, b = helper.run(function(x)
      lasync.sleep(0.001)
      return x, "b"
    end, 1, "a")
    assert.are.equal("a", a)
    assert.are.equal("b", b)
  end)

  it("fails a test that hangs, through its watchdog", function()
    local err = helper.error_of(helper.run, function() lasync.sleep(10) end,
      0.05)
    assert.matches("timed out", tostring(err))
  end)
end)
