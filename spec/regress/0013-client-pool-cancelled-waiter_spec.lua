-- Issue 13: a task waiting for a pooled connection (limit reached) that
-- is cancelled leaves a cancelled future in the pool's queue until it
-- runs again; a release in between must skip it. It handed the slot to
-- it (set_result on a cancelled future raised InvalidStateError in the
-- releasing task) and the slot was never given back (busy stayed 1).
local helper = require "helper"
local lasync = helper.lasync
local http = lasync.http

describe("lasync.http.Session pool", function()
  it("skips a cancelled waiter when a connection is released", function()
    helper.run(function()
      local srv, host, port, shutdown = helper.serve(function(r, w)
        while pcall(r.readuntil, r, "\r\n\r\n") do
          w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        end
        w:close()
      end)
      local url = ("http://%s:%d/"):format(host, port)
      local s <close> = http.Session { limit = 1 }
      local held = s:get(url)
      local waiter = lasync.spawn(function() return s:get(url) end)
      helper.wait_until(function() return #s.pool.waiters == 1 end)
      waiter:cancel()
      held:release() -- before the waiter runs again
      helper.assert_cancelled(waiter)
      assert.equals(0, s.pool.busy)
      assert.equals("ok", s:get(url):read())
      s:close()
      shutdown()
      assert.is_not_nil(srv)
    end)
  end)
end)
