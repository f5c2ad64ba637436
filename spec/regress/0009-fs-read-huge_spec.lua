-- Issue 9 (found by the names helper): File:read(n) allocated n bytes up
-- front and truncated n to 32 bits: read(2^32 + 1) returned "o" after
-- allocating 4 GiB, read(math.maxinteger) raised out of memory. A read
-- never allocates more than one read(2) can return, nor, on a regular
-- file, more than is left of it (at least a chunk, for data appended).
local helper = require "helper"
local lasync = helper.lasync
local fs = lasync.fs

describe("issue 9: File:read(n) with a huge n", function()
  it("returns what the file holds, allocating no more than that", function()
    helper.in_dir(function(dir)
      local path = dir .. "/f"
      fs.writefile(path, "one\ntwo\n")
      for _, n in ipairs { 2^32 + 1, math.maxinteger, 2^31, 2^40 } do
        local f <close> = fs.open(path)
        local n_int = math.tointeger(n)
        assert.are.equal("one\ntwo\n", f:read(n_int))
        assert.are.equal("", f:read(n_int))
      end
    end)
  end)

  it("a StreamReader on a pipe takes a huge n too", function()
    helper.run(function()
      local p = lasync.subprocess.exec("printf", { "abc" }, { stdout = "pipe" })
      local got = {}
      repeat
        local s = p.stdout:read(math.maxinteger)
        got[#got + 1] = s
      until s == ""
      p:wait()
      assert.are.equal("abc", table.concat(got))
    end)
  end)
end)
