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

-- Whether the specs run on the sanitizer build (scripts/busted.sh), whose
-- allocator keeps freed memory aside: RSS says nothing there, but
-- LeakSanitizer does.
local function sanitized()
  local f = io.open((helper.bin:gsub("lasync$", "sanitize")))
  if f then f:close() end
  return f ~= nil
end

describe("issue 9: bad arguments to fs functions leak nothing", function()
  it("fs.mkdir with a bad mode: LeakSanitizer finds nothing", function()
    if not sanitized() then return end
    local script = helper.temp_script([[
local lasync = require "lasync"
lasync.run(function()
  for i = 1, 100 do
    pcall(lasync.fs.mkdir, "/nonexistent/d", ({ 1.5, "x", {}, true })[i % 4 + 1])
  end
end)
]])
    local code, _, err = helper.capture(("ASAN_OPTIONS=detect_leaks=1 " ..
      "lua5.4 %s"):format(script))
    os.remove(script)
    assert.is_nil(err:find("LeakSanitizer", 1, true), err)
    assert.are.equal(0, code, err)
  end)

  it("fs.mkdir with a bad mode, 20000 times", function()
    if sanitized() then return end -- the test above does it there
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
