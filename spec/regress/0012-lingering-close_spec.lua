-- Issue 12: a request the server refuses while the peer is still sending
-- (a body over client_max_size, a slow head) is answered, and the peer can
-- read that answer: the server shuts its sending side and drops what keeps
-- arriving before it closes (a lingering close, as nginx does), instead of
-- closing with unread bytes, which resets the connection and can destroy
-- the response in the peer's receive buffer.
local helper = require "helper"
local lasync = helper.lasync
local http = lasync.http

local function serve(app)
  local srv = app:start { host = "127.0.0.1", port = 0 }
  local _, port = srv:address()
  return srv, port
end

describe("lasync.http lingering close", function()
  it("lets a client still sending its body read the 413", function()
    helper.run(function()
      local app = http.App { client_max_size = 1024 }
      app:post("/", function(req) return req:text() end)
      local srv, port = serve(app)
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 8388608\r\n\r\n")
      local sending = true
      local sender = lasync.spawn(function()
        local piece = ("x"):rep(65536)
        for _ = 1, 128 do
          if not sending then break end
          if not pcall(function() w:write(piece); w:drain() end) then break end
        end
      end)
      -- the response is read only after the server had time to close
      lasync.sleep(0.1)
      local reply = r:read() -- to the end: a reset would raise instead
      sending = false
      assert.matches("^HTTP/1.1 413 ", reply)
      sender:await()
      w:close()
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("lets a slow client read its 408", function()
    helper.run(function()
      local app = http.App { head_timeout = 0.05 }
      app:get("/", function() return "x" end)
      local srv, port = serve(app)
      local r, w = lasync.open_connection("127.0.0.1", port)
      local sending = true
      local feeder = lasync.spawn(function()
        for c in ("GET / HTTP/1.1\r\nX-Slow: " .. ("a"):rep(200)):gmatch(".")
        do
          if not sending then break end
          if not pcall(w.write, w, c) then break end
          lasync.sleep(0.002)
        end
      end)
      local reply = r:read() -- to the end: a reset would raise instead
      sending = false
      assert.matches("^HTTP/1.1 408 ", reply)
      feeder:await()
      w:close()
      srv:close()
      srv:wait_closed()
    end)
  end)
end)
