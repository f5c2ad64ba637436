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

  -- Send the head and the first 64 KiB of the bomb (64 MB inflated),
  -- never the rest: the 413 must come anyway, within `within` seconds.
  local function refused(port, head, chunked, within)
    local r, w = lasync.open_connection("127.0.0.1", port)
    local start = helper.now()
    local first = z:sub(1, 65536)
    if chunked then first = ("%x\r\n%s\r\n"):format(#first, first) end
    w:write(head .. first)
    local reply = r:readuntil("\r\n\r\n")
    local took = helper.now() - start
    reply = reply .. r:read()
    w:close()
    assert.matches("^HTTP/1.1 413 ", reply)
    assert.matches("decompressed body exceeds the limit", reply)
    assert.is_true(took < within * helper.multiplier, took)
  end

  local function app_of(limit)
    local app = http.App { client_max_size = limit }
    app:post("/read", function(req) return #req:read() .. "" end)
    app:post("/stream", function(req)
      local n = 0
      for piece in req:content():chunks() do n = n + #piece end
      return n .. ""
    end)
    local srv = app:start { host = "127.0.0.1", port = 0 }
    local _, port = srv:address()
    return srv, port
  end

  it("is refused with 413 at the limit, not after 10 GB", function()
    assert.is_true(#z > 9000000 and #z < 12000000)
    helper.run(function()
      -- the default limit (1 MiB): chunked, so no Content-Length to refuse
      local srv, port = app_of(nil)
      for _, path in ipairs({"/read", "/stream"}) do
        refused(port, "POST " .. path .. " HTTP/1.1\r\nContent-Encoding: " ..
          "gzip\r\nTransfer-Encoding: chunked\r\n\r\n", true, 0.1)
      end
      srv:close()
      srv:wait_closed()
      -- 16 MB: the 10 MB Content-Length passes, the inflated size does not
      srv, port = app_of(16 * 1024 * 1024)
      for _, path in ipairs({"/read", "/stream"}) do
        refused(port, ("POST %s HTTP/1.1\r\nContent-Encoding: gzip\r\n" ..
          "Content-Length: %d\r\n\r\n"):format(path, #z), false, 0.5)
      end
      srv:close()
      srv:wait_closed()
    end)
  end)
end)
