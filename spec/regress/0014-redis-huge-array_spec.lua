-- Issue 14, found by fuzz/resp_reader.c: an array reply announcing
-- 2147483647 elements made hiredis's default reply functions calloc the
-- whole length (16 GiB) before any element came; under a memory limit
-- the reader failed with "Out of memory" and the connection was lost.
-- The reader now spends memory as the elements arrive: under a 1 GiB
-- address-space limit the reply is merely incomplete. Run in a child
-- lasync with `ulimit -v` (not under the sanitizers, whose shadow memory
-- needs far more address space).
local helper = require "helper"

local asan = (os.getenv("LD_PRELOAD") or ""):find("asan") ~= nil
local it_unless_asan = asan and pending or it

describe("regress 0014: a huge announced Redis array", function()
  it_unless_asan("costs memory only as its elements come", function()
    local script = helper.temp_script([[
      local resp = require("lasync.core")._resp
      local rd = resp.reader(function(m) return m end, {})
      rd:feed("*2147483647\r\n*2147483647\r\n:1\r\n:2\r\n")
      print(pcall(rd.get, rd))
    ]])
    local code, out, err = helper.capture(("sh -c 'ulimit -v 1048576 && " ..
      "exec %s %s'"):format(helper.bin, script))
    os.remove(script)
    assert.equal(0, code, err)
    assert.equal("true\tfalse\n", out)
  end)
end)
