-- Issue 9, item 9: fs.mkdir(path, 1.5) (or a table or string mode)
-- allocated its request before checking the mode and leaked it (480 bytes
-- a call). Every fs function now checks all its arguments first; here
-- the resident memory of many refused calls must stay flat.
local helper = require "helper"
local lasync = helper.lasync
local fs = lasync.fs

-- Resident set size in KiB (Linux).
local function rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local _, pages = f:read("n", "n")
  f:close()
  return pages * 4
end

describe("issue 9: bad arguments to fs functions leak nothing", function()
  it("fs.mkdir with a bad mode, 20000 times", function()
    helper.in_dir(function(dir)
      local path = dir .. "/d"
      local bad = { 1.5, "x", {}, true }
      local function burst()
        for i = 1, 20000 do pcall(fs.mkdir, path, bad[i % #bad + 1]) end
        collectgarbage()
        collectgarbage()
      end
      burst() -- warm up: the Lua heap reaches its working size
      local before = rss_kib()
      burst()
      local grown = rss_kib() - before
      assert.is_true(grown < 2048, ("RSS grew by %d KiB"):format(grown))
      assert.is_false((pcall(fs.stat, path))) -- nothing was made
      helper.raises_msg("lasync.fs.mkdir", fs.mkdir, path, 1.5)
    end, 20)
  end)
end)
