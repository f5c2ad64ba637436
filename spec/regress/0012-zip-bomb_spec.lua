-- Issue 12: a compressed request body counts against client_max_size by
-- its decompressed size, and is refused (413) as soon as it passes it,
-- without inflating further or waiting for the rest: a gzip bomb of 10 MB
-- that would inflate to 10 GB is answered after its first few KB.
local helper = require "helper"
local lasync = helper.lasync
local http = lasync.http

-- A gzip stream of 10 GB of zeros in about 10 MB: one member whose
-- deflate blocks, after a full flush, repeat (the trailer never comes).
local function bomb()
  local p = assert(io.popen("python3 -c 'import sys, zlib; " ..
    "c = zlib.compressobj(9, zlib.DEFLATED, 31); z = bytes(1 << 20); " ..
    "h = c.compress(z) + c.flush(zlib.Z_FULL_FLUSH); " ..
    "x = c.compress(z) + c.flush(zlib.Z_FULL_FLUSH); " ..
    "sys.stdout.buffer.write(h + x * 10239)'"))
  local out = p:read("a")
  p:close()
  return out
end

describe("lasync.http gzip bomb", function()
  local z = bomb()

  it("is refused with 413 after a few KB, not after 10 GB", function()
    assert.is_true(#z > 9000000 and #z < 12000000)
    helper.run(function()
      local app = http.App { client_max_size = 16 * 1024 * 1024 }
      local reached = 0
      app:post("/read", function(req)
        reached = reached + 1
        return #req:read() .. ""
      end)
      app:post("/stream", function(req)
        reached = reached + 1
        local n = 0
        for piece in req:content():chunks() do n = n + #piece end
        return n .. ""
      end)
      local srv = app:start { host = "127.0.0.1", port = 0 }
      local _, port = srv:address()
      local heads = {
        ("POST /read HTTP/1.1\r\nContent-Encoding: gzip\r\n" ..
          "Content-Length: %d\r\n\r\n"):format(#z),
        ("POST /stream HTTP/1.1\r\nContent-Encoding: gzip\r\n" ..
          "Content-Length: %d\r\n\r\n"):format(#z),
        "POST /read HTTP/1.1\r\nContent-Encoding: gzip\r\n" ..
          "Transfer-Encoding: chunked\r\n\r\n",
      }
      for i, head in ipairs(heads) do
        local r, w = lasync.open_connection("127.0.0.1", port)
        local start = helper.now()
        -- 64 KiB would inflate to 64 MB: the rest is never sent
        local first = z:sub(1, 65536)
        if i == 3 then first = ("%x\r\n%s\r\n"):format(#first, first) end
        w:write(head .. first)
        local reply = r:read()
        local took = helper.now() - start
        w:close()
        assert.matches("^HTTP/1.1 413 ", reply)
        assert.matches("decompressed body exceeds the limit", reply)
        assert.is_true(took < 0.5 * helper.multiplier, took)
      end
      assert.are.equal(3, reached)
      srv:close()
      srv:wait_closed()
    end)
  end)
end)
