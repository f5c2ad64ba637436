-- issue 9 (9b): Thread:stop() racing the thread's own shutdown. A submit
-- or stop posted while the thread's loop was closing landed in an inbox
-- that was never read again: the post and its job leaked (ASan's leak
-- checker) and the submitted future never settled.
local helper = require "helper"
local lasync = helper.lasync

local function echo(x) return x end

describe("issue 9: Thread:stop racing the thread's shutdown", function()
  it("every job posted while the thread stops gets an answer", function()
    helper.run(function()
      local futs = {}
      for _ = 1, 10 do
        local th = lasync.Thread(function() end)
        th:stop()
        -- post without yielding while the thread shuts down, so that some
        -- posts land as its loop closes
        local t0 = os.clock()
        while os.clock() - t0 < 0.005 do
          th:stop()
          futs[#futs + 1] = th:submit(echo, 1)
        end
        th:join()
      end
      local _, pending = lasync.wait(futs, { timeout = 2 })
      assert.are.equal(0, #pending)
      for _, f in ipairs(futs) do
        local ok, res = pcall(f.result, f)
        if not ok then
          assert.are.equal("lasync.Thread: the thread stopped first", res)
        else
          assert.are.equal(1, res)
        end
      end
    end, 20)
  end)
end)
