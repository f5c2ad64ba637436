-- Issue 9, item 10: a task blocked in fs.open of a FIFO that nobody opens
-- from the other end kept the process alive for ever after the script
-- ended (the pool thread waits in open(2); the loop cannot close while a
-- request runs, and libuv joins its threads at exit). A cancelled open of
-- a FIFO now opens the FIFO itself for a moment, so the open returns.
local helper = require "helper"
local lasync = helper.lasync
local fs = lasync.fs

local function mkfifo(path)
  assert.is_true(os.execute("mkfifo " .. helper.shell_quote(path)))
end

-- Open descriptors of this process (in a task).
local function count_fds()
  local n = 0
  for _ in fs.scandir("/proc/self/fd") do n = n + 1 end
  return n
end

describe("issue 9: a FIFO open left waiting at exit", function()
  for _, mode in ipairs { "r", "w" } do
    it("ends the lasync command (mode " .. mode .. ")", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert.is_true(os.execute("mkdir " .. dir))
      local fifo = dir .. "/fifo"
      mkfifo(fifo)
      local script = helper.temp_script(([[
local lasync = require "lasync"
lasync.spawn(function() lasync.fs.open(%q, %q) end)
lasync.sleep(0.01)
print("end of script")
]]):format(fifo, mode))
      local code, out = helper.capture(("timeout 10 %s %s"):format(helper.bin,
        script))
      os.remove(script)
      os.execute("rm -rf " .. dir)
      assert.are.equal("end of script\n", out)
      assert.are.equal(0, code) -- not 124: timeout had to kill it
    end)
  end

  it("a cancelled open of a FIFO frees everything", function()
    helper.in_dir(function(dir)
      local fifo = dir .. "/fifo"
      mkfifo(fifo)
      local before = count_fds()
      for _, mode in ipairs { "r", "w", "r+" } do
        local t = lasync.spawn(fs.open, fifo, mode)
        lasync.sleep(0.01)
        t:cancel()
        local ok, err = pcall(t.await, t)
        if ok then err:close() else assert.is_true(lasync.is_cancelled(err)) end
      end
      helper.wait_until(function() return count_fds() == before end)
    end)
  end)
end)
