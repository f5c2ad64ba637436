-- issue 9 (9b): Thread:stop() racing the thread's own shutdown. A submit
-- or stop posted while the thread's loop was closing, after its inbox had
-- been drained for the last time, landed in an inbox never read again:
-- the post and its job leaked and the submitted future never settled, or
-- the wakeup went to the closed loop and libuv aborted the process.
local helper = require "helper"

describe("issue 9: Thread:stop racing the thread's shutdown", function()
  it("every job posted while the thread stops gets an answer (in a child)",
    function()
      -- The thread's last step, a full collection (a task failed and
      -- nobody retrieved it), runs a slow finalizer: that holds the thread
      -- between its last inbox drain and the end, while the caller posts.
      local status, out = helper.run_script([[
        local function echo(x) return x end
        local futs = {}
        for _ = 1, 5 do
          local th = lasync.Thread(function()
            lasync.spawn(function()
              local slow = setmetatable({}, { __gc = function()
                local t0 = os.clock()
                while os.clock() - t0 < 0.02 do end
              end })
              pcall(lasync.sleep, 60)
              slow = nil
              error("left over")
            end)
          end)
          lasync.sleep(0.01)
          th:stop()
          local t0 = os.clock()
          while os.clock() - t0 < 0.05 do
            futs[#futs + 1] = th:submit(echo, 1)
          end
          th:join()
        end
        local _, pending = lasync.wait(futs, { timeout = 2 })
        local failed = 0
        for _, f in ipairs(futs) do
          if f:exception() then failed = failed + 1 end
        end
        print(#futs > 0, failed > 0, #pending)
      ]])
      assert.are.equal(0, status)
      assert.are.equal("true\ttrue\t0\n", out)
    end)
end)
