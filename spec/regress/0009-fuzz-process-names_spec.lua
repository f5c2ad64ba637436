-- Issue 9, found by the API fuzzer: Process:kill and Process:terminate
-- given a wrong receiver named Process:send_signal, the function they
-- call inside. Each must name itself.
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

describe("regress 0009: Process:kill and terminate name themselves", function()
  it("with a wrong receiver", function()
    helper.run(function()
      local p = lasync.subprocess.exec("sleep", { "10" })
      for _, m in ipairs { "kill", "terminate", "send_signal" } do
        raises_msg(("lasync.Process:%s: expected a Process (got nil)")
          :format(m), p[m], nil, "SIGTERM")
        raises_msg(("lasync.Process:%s: expected a Process (got " ..
          "lasync.Future)"):format(m), p[m], lasync.Future(), "SIGTERM")
      end
      p:terminate()
      assert.are.equal(-15, p:wait())
      p:kill() -- exited: left alone
    end)
  end)
end)
