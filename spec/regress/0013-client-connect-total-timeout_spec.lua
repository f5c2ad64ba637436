-- Issue 13: the total timeout expiring while a connection is being made
-- raised ClientConnectorError (the connect failure wrapper took the
-- ClientTimeoutError for an OS error) instead of ClientTimeoutError.
local helper = require "helper"
local lasync = helper.lasync
local http = lasync.http

describe("lasync.http.Session connect", function()
  it("raises ClientTimeoutError when the total timeout expires while " ..
    "connecting", function()
      helper.run(function()
        local srv, host, port, shutdown = helper.serve(function(_, w)
          w:close()
        end)
        local s <close> = http.Session { timeout = { total = 1e-6 } }
        local err = helper.error_of(s.get, s,
          ("http://%s:%d/"):format(host, port))
        assert.is_true(lasync.is_error(err, http.ClientTimeoutError),
          tostring(err))
        assert.equals("total", err.timeout)
        assert.equals(0, s.pool.busy)
        s:close()
        shutdown()
        assert.is_not_nil(srv)
      end)
    end)
end)
