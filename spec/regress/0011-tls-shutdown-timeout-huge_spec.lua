-- Issue 11: close() on TLS waits for the peer's close_notify at most
-- ssl_shutdown_timeout seconds. The seconds went to libuv as milliseconds
-- through a plain cast, so a timeout too large for a uint64_t (math.huge,
-- 1e300: "wait as long as it takes") became a timer that fired at once,
-- and close() did not wait at all. Such a timeout now never fires.
local helper = require "helper"
local tls = require "tls_helper"
local lasync = helper.lasync

local certs

setup(function() certs = tls.certs() end)
teardown(function() tls.cleanup() end)

describe("regress 0011: a huge ssl_shutdown_timeout", function()
  it("waits for the peer's close_notify", function()
    helper.run(function()
      local release = lasync.Event()
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key }
      local _, _, port, shutdown = helper.serve(function(r, w)
        r:readline()
        release:wait() -- no close_notify until then
        w:close()
        w:wait_closed()
      end, { ssl = sctx })
      for _, to in ipairs { math.huge, 1e300 } do
        local _, w = lasync.open_connection("127.0.0.1", port,
          { ssl = lasync.ssl.context { cafile = certs.ca.cert },
            ssl_shutdown_timeout = to, ssl_handshake_timeout = to })
        w:write("x\n")
        w:close()
        local closed = lasync.create_task(function() w:wait_closed() end)
        lasync.sleep(0.2)
        assert.is_false(closed:done(), "wait_closed returned at once")
        release:set() -- the server answers: now it closes
        lasync.wait_for(closed, 2)
        release:clear()
      end
      shutdown()
    end, 10)
  end)
end)
