-- Issue 9: start_server(h, "localhost", 0) listened on the first address
-- only (127.0.0.1); asyncio binds every address the name resolves to
-- (127.0.0.1 and ::1 where /etc/hosts has both), the others on the port
-- the first one got. server:sockets() lists them all; each one serves.
local helper = require "helper"
local lasync = helper.lasync

describe("issue 9: start_server on a host name", function()
  it("listens on every address of localhost, on one port", function()
    helper.run(function()
      local want = {}
      for _, a in ipairs(lasync.getaddrinfo("localhost", 0)) do
        want[a.host] = true
      end
      local srv = lasync.start_server(function(r, w)
        w:write("hi " .. r:readline())
        w:close()
      end, "localhost", 0)
      local host, port = srv:address()
      local socks = srv:sockets()
      local got = {}
      for _, s in ipairs(socks) do
        got[s.host] = true
        assert.are.equal(port, s.port)
        local r, w = lasync.open_connection(s.host, s.port)
        w:write(s.host .. "\n")
        assert.are.equal("hi " .. s.host .. "\n", r:read())
        w:close()
      end
      assert.are.same(want, got)
      assert.are.equal(socks[1].host, host)
      srv:close()
      srv:wait_closed()
      assert.are.same({}, srv:sockets())
      assert.is_false(srv:is_serving())
    end)
  end)
end)

describe("issue 9: start_server on an empty host", function()
  it("listens on every address, as nil does", function()
    helper.run(function()
      local srv = lasync.start_server(helper.echo, "", 0)
      local nil_srv = lasync.start_server(helper.echo, nil, 0)
      assert.are.equal(select(1, nil_srv:address()), (srv:address()))
      srv:close()
      nil_srv:close()
      srv:wait_closed()
      nil_srv:wait_closed()
    end)
  end)
end)
