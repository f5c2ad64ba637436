-- lasync.getaddrinfo and lasync.getnameinfo (asyncio's loop.getaddrinfo
-- and loop.getnameinfo): lookups on libuv's thread pool. Only names the
-- machine knows itself (localhost, numeric addresses) and a name under the
-- reserved .invalid domain, which never resolves.
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

local UNKNOWN = "no-such-host.invalid"

-- every entry has the documented shape; returns the set of hosts
local function check_shape(list, port, socktype)
  assert.is_table(list)
  assert.is_true(#list >= 1)
  local hosts = {}
  for i, a in ipairs(list) do
    assert.is_true(a.family == "inet" or a.family == "inet6",
      "entry " .. i .. ": family " .. tostring(a.family))
    assert.is_string(a.host)
    if a.family == "inet" then
      assert.matches("^%d+%.%d+%.%d+%.%d+$", a.host)
    else
      assert.matches(":", a.host, 1, true)
    end
    assert.are.equal(port, a.port)
    assert.are.equal("integer", math.type(a.port))
    assert.are.equal(socktype, a.socktype)
    hosts[a.host] = true
  end
  return hosts
end

describe("lasync.getaddrinfo", function()
  it("resolves \"localhost\": {{family=, host=, port=, socktype=}, ...}",
    function()
      helper.run(function()
        local list = lasync.getaddrinfo("localhost")
        local hosts = check_shape(list, 0, "stream")
        assert.is_true(hosts["127.0.0.1"] or hosts["::1"])
        -- a port (number or numeric string) is set on every entry
        check_shape(lasync.getaddrinfo("localhost", 8080), 8080, "stream")
        check_shape(lasync.getaddrinfo("localhost", "443"), 443, "stream")
      end, 2)
    end)

  it("option socktype = \"dgram\"", function()
    helper.run(function()
      local list = lasync.getaddrinfo("localhost", 53, { socktype = "dgram" })
      check_shape(list, 53, "dgram")
      list = lasync.getaddrinfo("localhost", 53, { socktype = "stream" })
      check_shape(list, 53, "stream")
    end, 2)
  end)

  it("option family narrows the result", function()
    helper.run(function()
      local list = lasync.getaddrinfo("localhost", nil, { family = "inet" })
      local hosts = check_shape(list, 0, "stream")
      assert.is_true(hosts["127.0.0.1"])
      for _, a in ipairs(list) do assert.are.equal("inet", a.family) end
      -- "any" is the default
      check_shape(lasync.getaddrinfo("localhost", nil, { family = "any" }),
        0, "stream")
      -- inet6: only IPv6 entries, or an OSError where localhost has none
      local ok, v6 = pcall(lasync.getaddrinfo, "localhost", nil,
        { family = "inet6" })
      if ok then
        for _, a in ipairs(v6) do assert.are.equal("inet6", a.family) end
      else
        assert(lasync.is_error(v6, lasync.OSError), helper.show(v6))
      end
    end, 2)
  end)

  it("numeric addresses resolve to themselves", function()
    helper.run(function()
      local list = lasync.getaddrinfo("127.0.0.1", 80)
      assert.are.same({ { family = "inet", host = "127.0.0.1", port = 80,
        socktype = "stream" } }, list)
      list = lasync.getaddrinfo("::1", 22, { socktype = "dgram" })
      assert.are.same({ { family = "inet6", host = "::1", port = 22,
        socktype = "dgram" } }, list)
    end, 2)
  end)

  it("an unknown host: OSError with an EAI_ code and the host as target",
    function()
      helper.run(function()
        local err = helper.error_of(lasync.getaddrinfo, UNKNOWN)
        assert(lasync.is_error(err, lasync.OSError), helper.show(err))
        assert.matches("^EAI_", err.code)
        assert.is_nil(err.errno) -- EAI_ codes are not errno values
        assert.are.equal(UNKNOWN, err.target)
        assert.matches("^lasync%.getaddrinfo: .+ %(no%-such%-host%.invalid%)$",
          err.message)
        assert.matches("^OSError: lasync%.getaddrinfo: ", tostring(err))
      end, 2)
    end)

  it("bad arguments are clear errors", function()
    helper.run(function()
      raises_msg("lasync.getaddrinfo: option 'family' must be \"inet\", " ..
        "\"inet6\" or \"any\"", lasync.getaddrinfo, "localhost", nil,
        { family = "unix" })
      raises_msg("lasync.getaddrinfo: option 'socktype' must be \"stream\" " ..
        "or \"dgram\"", lasync.getaddrinfo, "localhost", nil,
        { socktype = "raw" })
      raises_msg("lasync.getaddrinfo: port must be an integer from 0 to " ..
        "65535 (got 99999)", lasync.getaddrinfo, "localhost", 99999)
      raises_msg("lasync.getaddrinfo: port must be an integer from 0 to " ..
        "65535 (got http)", lasync.getaddrinfo, "localhost", "http")
      raises_msg("lasync.getaddrinfo: host must be a string (got nil)",
        lasync.getaddrinfo, nil)
    end, 2)
    raises_msg("lasync.getaddrinfo: not inside a task", lasync.getaddrinfo,
      "localhost")
  end)

  it("cancelled while resolving: CancelledError, nothing leaks", function()
    helper.run(function()
      local tasks = {}
      for i = 1, 20 do
        tasks[i] = lasync.spawn(lasync.getaddrinfo, "localhost")
      end
      lasync.sleep(0) -- all started
      for _, t in ipairs(tasks) do assert.is_true(t:cancel()) end
      for _, t in ipairs(tasks) do
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert(lasync.is_cancelled(err), helper.show(err))
        assert.is_true(t:cancelled())
      end
      -- resolving still works
      check_shape(lasync.getaddrinfo("localhost"), 0, "stream")
    end, 2)
    -- helper.run checked that no anchor and no loop was left behind
  end)

  it("many lookups at once", function()
    helper.run(function()
      local fns = {}
      for i = 1, 50 do
        fns[i] = function() return lasync.getaddrinfo("127.0.0.1", i) end
      end
      local results = lasync.gather(fns)
      for i = 1, 50 do
        assert.are.equal(i, results[i][1].port)
      end
    end, 2)
  end)
end)

describe("lasync.getnameinfo", function()
  it("reverse-resolves 127.0.0.1 port 80", function()
    helper.run(function()
      local host, service = lasync.getnameinfo("127.0.0.1", 80)
      assert.is_string(host)
      assert.is_true(#host > 0)
      -- /etc/hosts names 127.0.0.1 "localhost" almost everywhere
      assert.are.equal("localhost", host)
      assert.are.equal("http", service)
    end, 2)
  end)

  it("IPv6 and ports without a service name", function()
    helper.run(function()
      local host, service = lasync.getnameinfo("::1", 22)
      assert.is_string(host)
      assert.are.equal("ssh", service)
      host, service = lasync.getnameinfo("127.0.0.1", 0)
      assert.is_string(host)
      assert.are.equal("0", service)
    end, 2)
  end)

  it("bad arguments are clear errors", function()
    helper.run(function()
      raises_msg("lasync.getnameinfo: not a numeric address: localhost",
        lasync.getnameinfo, "localhost", 80)
      raises_msg("lasync.getnameinfo: port must be an integer from 0 to " ..
        "65535 (got -2)", lasync.getnameinfo, "127.0.0.1", -2)
      raises_msg("lasync.getnameinfo: host must be a string (got nil)",
        lasync.getnameinfo, nil, 80)
    end, 2)
    raises_msg("lasync.getnameinfo: not inside a task", lasync.getnameinfo,
      "127.0.0.1", 80)
  end)

  it("cancelled while resolving: CancelledError, nothing leaks", function()
    helper.run(function()
      local tasks = {}
      for i = 1, 20 do
        tasks[i] = lasync.spawn(lasync.getnameinfo, "127.0.0.1", 80)
      end
      lasync.sleep(0)
      for _, t in ipairs(tasks) do assert.is_true(t:cancel()) end
      for _, t in ipairs(tasks) do
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert(lasync.is_cancelled(err), helper.show(err))
      end
      assert.are.equal("http", select(2, lasync.getnameinfo("127.0.0.1", 80)))
    end, 2)
  end)
end)
