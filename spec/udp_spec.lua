-- lasync.open_udp and UdpEndpoint (asyncio's create_datagram_endpoint,
-- with recv() in place of a protocol). Loopback only, free ports only.
local helper = require "helper"
local lasync = helper.lasync
local recorder = helper.recorder
local raises_msg, assert_cancelled = helper.raises_msg, helper.assert_cancelled

local LOCAL = "127.0.0.1"

-- await t (a task) with a time limit; nil, "timeout" if it does not end
local function result_within(t, limit)
  local ok, a, b, c = pcall(lasync.wait_for, function()
    return lasync.shield(t)
  end, limit)
  if not ok then
    if lasync.is_timeout(a) then return nil, "timeout" end
    error(a, 0)
  end
  return a, b, c
end

-- a bound loopback endpoint and its port
local function endpoint(opts)
  opts = opts or {}
  opts.local_addr = opts.local_addr or { LOCAL, 0 }
  local ep = lasync.open_udp(opts)
  local _, port = ep:address()
  return ep, port
end

describe("lasync.open_udp", function()
  it("binds local_addr: address() gives host and a free port; no peer",
    function()
      helper.run(function()
        local ep = lasync.open_udp { local_addr = { LOCAL, 0 } }
        assert.matches("^lasync%.UdpEndpoint: ", tostring(ep))
        local host, port = ep:address()
        assert.are.equal(LOCAL, host)
        assert.are.equal("integer", math.type(port))
        assert.is_true(port > 0)
        assert.are.equal(0, select("#", ep:peer()))
        assert.is_false(ep:is_closing())
        ep:close()
      end, 2)
    end)

  it("without options binds every IPv4 address on a free port", function()
    helper.run(function()
      local ep = lasync.open_udp()
      local host, port = ep:address()
      assert.are.equal("0.0.0.0", host)
      assert.is_true(port > 0)
      -- reachable through loopback
      local other = endpoint()
      other:send("to any", LOCAL, port)
      assert.are.equal("to any", (ep:recv()))
      ep:close()
      other:close()
      ep = lasync.open_udp {} -- the same
      assert.are.equal("0.0.0.0", (ep:address()))
      ep:close()
    end, 2)
  end)

  it("resolves \"localhost\" in local_addr and remote_addr", function()
    helper.run(function()
      local a = lasync.open_udp { local_addr = { "localhost", 0 } }
      local ahost, aport = a:address()
      assert.is_true(ahost == LOCAL or ahost == "::1", ahost)
      local b = lasync.open_udp { remote_addr = { "localhost", aport } }
      local phost, pport = b:peer()
      assert.are.equal(ahost, phost)
      assert.are.equal(aport, pport)
      b:send("named")
      local data, host, port = a:recv()
      assert.are.equal("named", data)
      assert.are.same({ host, port }, { b:address() })
      a:close()
      b:close()
    end, 2)
  end)

  it("send/recv with addresses: data, host, port of each datagram",
    function()
      helper.run(function()
        local a, aport = endpoint()
        local b, bport = endpoint()
        a:send("ping", LOCAL, bport)
        local data, host, port = b:recv()
        assert.are.equal("ping", data)
        assert.are.equal(LOCAL, host)
        assert.are.equal(aport, port)
        b:send("pong", host, port)
        assert.are.same({ "pong", LOCAL, bport }, { a:recv() })
        -- the empty datagram and a big one
        a:send("", LOCAL, bport)
        assert.are.equal("", (b:recv()))
        local big = string.rep("u", 60000)
        a:send(big, LOCAL, bport)
        assert.are.equal(big, (b:recv()))
        a:close()
        b:close()
      end, 2)
    end)

  it("queues datagrams while nobody calls recv, in order", function()
    helper.run(function()
      local a = endpoint()
      local b, bport = endpoint()
      for i = 1, 5 do a:send("d" .. i, LOCAL, bport) end
      lasync.sleep(0.01)
      assert.matches("5 datagram%(s%) queued", tostring(b))
      for i = 1, 5 do assert.are.equal("d" .. i, (b:recv())) end
      a:close()
      b:close()
    end, 2)
  end)

  it("recv waits for a datagram; waiting receivers are served in order",
    function()
      helper.run(function()
        local a = endpoint()
        local b, bport = endpoint()
        local log, rec = recorder()
        local r1 = lasync.spawn(function() rec("r1 " .. b:recv()) end)
        local r2 = lasync.spawn(function() rec("r2 " .. b:recv()) end)
        lasync.sleep(0.005)
        assert.are.same({}, log)
        a:send("x", LOCAL, bport)
        a:send("y", LOCAL, bport)
        r1:await()
        r2:await()
        assert.are.same({ "r1 x", "r2 y" }, log)
        a:close()
        b:close()
      end, 2)
    end)

  it("a remote_addr: send needs no address; peer() gives it", function()
    helper.run(function()
      local a, aport = endpoint()
      local b = lasync.open_udp { remote_addr = { LOCAL, aport } }
      assert.are.same({ LOCAL, aport }, { b:peer() })
      b:send("connected")
      local data, host, port = a:recv()
      assert.are.equal("connected", data)
      assert.are.same({ host, port }, { b:address() })
      a:send("back", host, port)
      assert.are.same({ "back", LOCAL, aport }, { b:recv() })
      -- local_addr and remote_addr together
      local c = lasync.open_udp { local_addr = { LOCAL, 0 },
        remote_addr = { LOCAL, aport } }
      c:send("both")
      assert.are.equal("both", (a:recv()))
      a:close()
      b:close()
      c:close()
    end, 2)
  end)

  it("send with an address on a connected endpoint is an error", function()
    helper.run(function()
      local a, aport = endpoint()
      local b = lasync.open_udp { remote_addr = { LOCAL, aport } }
      raises_msg("lasync.UdpEndpoint:send: the endpoint has a remote_addr: " ..
        "send without an address", b.send, b, "x", LOCAL, aport)
      a:close()
      b:close()
    end, 2)
  end)

  it("send errors: no address, a name, a bad port, the wrong family",
    function()
      helper.run(function()
        local a = endpoint()
        raises_msg("lasync.UdpEndpoint:send: no address given and no " ..
          "remote_addr", a.send, a, "x")
        raises_msg("lasync.UdpEndpoint:send: not a numeric address: " ..
          "localhost (resolve it with lasync.getaddrinfo)", a.send, a, "x",
          "localhost", 9)
        raises_msg("lasync.UdpEndpoint:send: port must be an integer from " ..
          "0 to 65535 (got 70000)", a.send, a, "x", LOCAL, 70000)
        raises_msg("string expected, got table", a.send, a, {}, LOCAL, 9)
        local err = helper.error_of(a.send, a, "x", "::1", 9)
        assert(lasync.is_error(err, lasync.OSError), helper.show(err))
        assert.matches("^lasync%.UdpEndpoint:send: ", err.message)
        err = helper.error_of(a.send, a, string.rep("x", 70000), LOCAL, 9)
        assert(lasync.is_error(err, lasync.OSError), helper.show(err))
        assert.are.equal("EMSGSIZE", err.code)
        a:close()
      end, 2)
    end)

  it("IPv6 loopback endpoints", function()
    helper.run(function()
      local a = lasync.open_udp { local_addr = { "::1", 0 } }
      local host, aport = a:address()
      assert.are.equal("::1", host)
      local b = lasync.open_udp { remote_addr = { "::1", aport } }
      b:send("six")
      local data, from = a:recv()
      assert.are.equal("six", data)
      assert.are.equal("::1", from)
      a:close()
      b:close()
    end, 2)
  end)

  it("cancelling a task blocked in recv: the next recv gets the datagram",
    function()
      helper.run(function()
        local a = endpoint()
        local b, bport = endpoint()
        local t = lasync.spawn(b.recv, b)
        lasync.sleep(0.005)
        assert.is_true(t:cancel())
        assert_cancelled(t)
        a:send("after", LOCAL, bport)
        assert.are.equal("after", (b:recv()))
        a:close()
        b:close()
      end, 2)
    end)

  it("a woken receiver that is cancelled passes the datagram on", function()
    helper.run(function()
      local a = endpoint()
      local b, bport = endpoint()
      local first = lasync.spawn(b.recv, b)
      local second = lasync.spawn(b.recv, b)
      lasync.sleep(0.005) -- both wait, first in line
      a:send("only one", LOCAL, bport)
      -- in the next loop iteration the timer runs before the poll; the
      -- poll wakes `first`, and the callback then cancels it before it runs
      lasync.get_running_loop():call_later(0.001, function()
        first:cancel()
      end)
      local t0 = os.clock()
      while os.clock() - t0 < 0.003 do end -- block the loop past the timer
      lasync.sleep(0)
      assert_cancelled(first)
      local data, why = result_within(second, 0.2)
      if not data then second:cancel() end
      local queued = tostring(b)
      a:close()
      b:close()
      assert.are.equal("only one", data,
        ("second receiver: %s; %s"):format(tostring(why), queued))
    end, 2)
  end)

  it("close: is_closing, no address, recv and send raise; a waiting recv " ..
    "is woken", function()
    helper.run(function()
      local a = endpoint()
      local waiting = lasync.spawn(a.recv, a)
      lasync.sleep(0)
      a:close()
      assert.is_true(a:is_closing())
      assert.are.equal(0, select("#", a:address()))
      assert.are.equal(0, select("#", a:peer()))
      assert.matches(" closed$", tostring(a))
      local ok, err = pcall(waiting.await, waiting)
      assert.is_false(ok)
      assert.matches("lasync.UdpEndpoint:recv: the endpoint is closed",
        err, 1, true)
      raises_msg("lasync.UdpEndpoint:recv: the endpoint is closed", a.recv, a)
      raises_msg("lasync.UdpEndpoint:send: the endpoint is closed", a.send, a,
        "x", LOCAL, 9)
      a:close() -- again: nothing
    end, 2)
  end)

  it("datagrams queued before close are still received", function()
    helper.run(function()
      local a = endpoint()
      local b, bport = endpoint()
      a:send("kept", LOCAL, bport)
      lasync.sleep(0.01)
      b:close()
      assert.are.equal("kept", (b:recv()))
      raises_msg("the endpoint is closed", b.recv, b)
      a:close()
    end, 2)
  end)

  it("a <close> variable closes it", function()
    helper.run(function()
      local kept
      do
        local ep <close> = endpoint()
        kept = ep
        assert.is_false(ep:is_closing())
      end
      assert.is_true(kept:is_closing())
    end, 2)
  end)

  it("binding a port in use is EADDRINUSE (asyncio sets no SO_REUSEADDR)",
    function()
      helper.run(function()
        local a, aport = endpoint()
        local ok, b = pcall(lasync.open_udp, { local_addr = { LOCAL, aport } })
        if ok then b:close() end
        a:close()
        assert.is_false(ok, "a second endpoint was bound to the same port")
        assert(lasync.is_error(b, lasync.OSError), helper.show(b))
        assert.are.equal("EADDRINUSE", b.code)
      end, 2)
    end)

  it("option errors; refuses to run outside a task", function()
    helper.run(function()
      raises_msg("lasync.open_udp: options must be a table",
        lasync.open_udp, 5)
      raises_msg("lasync.open_udp: option 'local_addr' must be {host, port}",
        lasync.open_udp, { local_addr = "127.0.0.1" })
      raises_msg("lasync.open_udp: option 'remote_addr' must be {host, " ..
        "port}", lasync.open_udp, { remote_addr = { 9 } })
      local err = helper.error_of(lasync.open_udp,
        { local_addr = { "no-such-host.invalid", 0 } })
      assert(lasync.is_error(err, lasync.OSError), helper.show(err))
      assert.matches("^EAI_", err.code)
      -- broadcast and reuse_port are accepted
      local ep = lasync.open_udp { local_addr = { LOCAL, 0 },
        broadcast = true, reuse_port = true }
      ep:close()
    end, 2)
    raises_msg("lasync.open_udp: not inside a task", lasync.open_udp)
  end)
end)
