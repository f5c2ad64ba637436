-- Issue 9, found by the API fuzzer: lasync.SignalHandler.__gc called by
-- hand on a live handler closed the watcher but left the handler anchored
-- (a leak helper.run reports); the fuzzer first saw it as a SIGSEGV with
-- nil as the receiver. Every metamethod of signal.c must refuse a wrong
-- receiver and release what the handler holds when called by hand.
local helper = require "helper"
local lasync = helper.lasync

describe("regress 0009: SignalHandler metamethods", function()
  it("__gc called by hand releases the handler's anchor", function()
    helper.run(function()
      local calls = 0
      local h = lasync.signal("SIGUSR2", function() calls = calls + 1 end)
      local gc = getmetatable(h).__gc
      gc(h)
      gc(h) -- twice: nothing more happens
      assert.is_string(tostring(h))
      h:close() -- and close after it does nothing
      -- a delivery now reaches no handler
      local pid = io.open("/proc/self/stat"):read("n")
      local w = lasync.spawn(lasync.wait_signal, "SIGUSR2")
      lasync.sleep(0)
      lasync.subprocess.exec("kill", { "-USR2", tostring(pid) }):wait()
      assert.are.equal("SIGUSR2", w:await())
      lasync.sleep(0.01)
      assert.are.equal(0, calls)
    end)
  end)

  it("every metamethod refuses a wrong receiver naming its class",
    function()
      helper.run(function()
        local h = lasync.signal("SIGUSR2", function() end)
        local mt = getmetatable(h)
        local tried = 0
        for key, fn in pairs(mt) do
          if type(key) == "string" and key:match("^__") and
              type(fn) == "function" then
            local bad = table.pack(nil, {}, 1, "s", lasync.Future())
            for i = 1, bad.n do
              local ok, err = pcall(fn, bad[i])
              assert.is_false(ok, key)
              assert.matches("SignalHandler", err, 1, true)
              tried = tried + 1
            end
          end
        end
        assert.is_true(tried >= 2)
        h:close()
      end)
    end)
end)
