-- Issue 11: start_server's ssl option was a Lua wrapper around the C
-- function that put the handshake in front of the handler only when the
-- handler was a function. A callable table (a handler object with
-- __call), which start_server accepts, got the plain socket: the client's
-- handshake met no TLS, and the handler read the client's hello as its
-- request. The handshake now runs in C for every handler.
local helper = require "helper"
local tls = require "tls_helper"
local lasync = helper.lasync

local certs

setup(function() certs = tls.certs() end)
teardown(function() tls.cleanup() end)

describe("regress 0011: a callable handler on a TLS server", function()
  it("runs after the handshake, as a function does", function()
    helper.run(function()
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key }
      local seen, done
      local handler = setmetatable({}, { __call = function(_, r, w)
        seen = w:get_extra_info("tls_version")
        helper.echo(r, w)
        done = true
      end })
      -- not helper.serve: it wraps the handler in a function
      local srv = lasync.start_server(handler, "127.0.0.1", 0,
                                      { ssl = sctx })
      local _, port = srv:address()
      local r, w = lasync.open_connection("127.0.0.1", port,
        { ssl = lasync.ssl.context { cafile = certs.ca.cert },
          ssl_handshake_timeout = 2 })
      w:write("callable\n")
      assert.equals("callable\n", r:readline())
      assert.matches("^TLSv1", seen)
      w:close()
      w:wait_closed()
      srv:close()
      srv:wait_closed()
      helper.wait_until(function() return done end)
    end, 10)
  end)
end)
