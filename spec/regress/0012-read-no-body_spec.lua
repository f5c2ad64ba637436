-- Issue 12: req:read(), req:text() and req:post() on a request without a
-- body give "" (an empty form), as aiohttp does; they used to raise "the
-- body was already read as a stream", so the client got a 500.
local helper = require "helper"
local lasync = helper.lasync
local http = lasync.http

local function get(port, target)
  local r, w = lasync.open_connection("127.0.0.1", port)
  w:write("GET " .. target .. " HTTP/1.1\r\nConnection: close\r\n\r\n")
  local reply = r:read()
  w:close()
  return reply
end

describe("lasync.http Request without a body", function()
  it("reads as an empty body and an empty form", function()
    helper.run(function()
      local app = http.App()
      app:get("/read", function(req)
        return "[" .. req:read() .. "][" .. req:text() .. "]"
      end)
      app:get("/post", function(req)
        local form = req:post()
        return "form:" .. tostring(form:len())
      end)
      local srv = app:start { host = "127.0.0.1", port = 0 }
      local _, port = srv:address()
      assert.matches("^HTTP/1.1 200 .*%[%]%[%]$", get(port, "/read"))
      assert.matches("^HTTP/1.1 200 .*form:0$", get(port, "/post"))
      srv:close()
      srv:wait_closed()
    end)
  end)
end)
