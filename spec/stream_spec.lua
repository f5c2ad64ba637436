-- lasync.open_connection, StreamReader and StreamWriter (asyncio streams,
-- 3.12): TCP on loopback only, free ports (port 0) only.
local helper = require "helper"
local lasync = helper.lasync
local recorder = helper.recorder
local escape, raises_msg = helper.escape, helper.raises_msg
local raises, assert_os_error = helper.raises, helper.assert_os_error
local wait_until, serve = helper.wait_until, helper.serve

local LOCAL = "127.0.0.1"

-- A server that sends `data` on every connection, then closes it.
local function sender(data, opts)
  return serve(function(_, w)
    w:write(data)
    w:close()
  end, opts)
end

-- A port nothing listens on (a server's, closed again).
local function closed_port()
  local srv = lasync.start_server(function() end, LOCAL, 0)
  local _, port = srv:address()
  srv:close()
  srv:wait_closed()
  return port
end

describe("lasync.open_connection", function()
  it("connects to a numeric host and returns a reader and a writer",
    function()
      helper.run(function()
        local _, host, port, shutdown = serve(function(r, w)
          w:write("echo " .. r:readline())
          w:close()
        end)
        assert.are.equal(LOCAL, host)
        assert.is_true(port > 0)
        local r, w = lasync.open_connection(host, port)
        assert.matches("^lasync%.StreamReader: ", tostring(r))
        assert.matches("^lasync%.StreamWriter: ", tostring(w))
        w:write("hello\n")
        assert.are.equal("echo hello\n", r:readline())
        assert.are.equal("", r:read())
        w:close()
        w:wait_closed()
        shutdown()
      end, 2)
    end)

  it("resolves \"localhost\" and tries its addresses in turn", function()
    helper.run(function()
      -- the server is on IPv4 only: an IPv6 address of localhost, if any,
      -- is refused and the next one is tried
      local _, _, port, shutdown = sender("hi")
      local r, w = lasync.open_connection("localhost", port)
      assert.are.equal("hi", r:read())
      local phost, pport = w:get_extra_info("peername")
      assert.are.equal(LOCAL, phost)
      assert.are.equal(port, pport)
      w:close()
      shutdown()
    end, 2)
  end)

  it("accepts the options nodelay, keepalive, local_addr, family, limit",
    function()
      helper.run(function()
        local seen = {}
        local _, host, port, shutdown = serve(function(r, w)
          seen[#seen + 1] = { w:get_extra_info("peername") }
          w:write(r:readline())
          w:close()
        end)
        local r, w = lasync.open_connection("localhost", port, {
          nodelay = false, keepalive = 5, family = "inet",
          local_addr = { LOCAL, 0 }, limit = 1024,
        })
        local lhost, lport = w:get_extra_info("sockname")
        assert.are.equal(LOCAL, lhost)
        assert.is_true(lport > 0)
        w:write("one\n")
        assert.are.equal("one\n", r:readline())
        w:close()
        -- keepalive = true and nodelay = true (the default) as well
        r, w = lasync.open_connection(host, port,
          { keepalive = true, nodelay = true })
        w:write("two\n")
        assert.are.equal("two\n", r:readline())
        w:close()
        shutdown()
        assert.are.equal(2, #seen)
        assert.are.same({ lhost, lport }, seen[1])
      end, 2)
    end)

  it("option limit bounds readline", function()
    helper.run(function()
      local _, host, port, shutdown = sender("0123456789\nok\n")
      local r, w = lasync.open_connection(host, port, { limit = 4 })
      raises(lasync.LimitOverrunError, "LimitOverrunError", r.readline, r)
      assert.are.equal("ok\n", r:readline())
      w:close()
      shutdown()
    end, 2)
  end)

  it("option local_addr on a port in use raises EADDRINUSE", function()
    helper.run(function()
      local srv, host, port, shutdown = sender("x")
      local other = lasync.start_server(function() end, LOCAL, 0)
      local _, busy = other:address()
      local err = helper.error_of(lasync.open_connection, host, port,
        { local_addr = { LOCAL, busy } })
      assert_os_error(err, "EADDRINUSE", "open_connection",
        LOCAL .. ":" .. port)
      other:close()
      assert.is_true(srv:is_serving())
      shutdown()
    end, 2)
  end)

  it("a closed port: OSError ECONNREFUSED with errno and target", function()
    helper.run(function()
      local port = closed_port()
      local err = helper.error_of(lasync.open_connection, LOCAL, port)
      local target = LOCAL .. ":" .. port
      assert_os_error(err, "ECONNREFUSED", "open_connection", target)
      assert.are.equal("lasync.open_connection: connection refused (" ..
        target .. ")", err.message)
      -- by name: every address refused, the last error is raised
      err = helper.error_of(lasync.open_connection, "localhost", port)
      assert_os_error(err, "ECONNREFUSED", "open_connection",
        "localhost:" .. port)
    end, 2)
  end)

  it("an unknown host raises the lookup's OSError", function()
    helper.run(function()
      local err = helper.error_of(lasync.open_connection,
        "no-such-host.invalid", 80)
      assert(lasync.is_error(err, lasync.OSError), helper.show(err))
      assert.matches("^EAI_", err.code)
      assert.is_nil(err.errno) -- EAI_ codes are not errno values
      assert.are.equal("no-such-host.invalid:80", err.target)
      assert.matches("^lasync%.open_connection: .+ " ..
        "%(no%-such%-host%.invalid:80%)$", err.message)
    end, 2)
  end)

  it("a bad port or option is a clear error", function()
    helper.run(function()
      for _, p in ipairs { -1, 65536, 1.5, "abc", {} } do
        local err = raises_msg("lasync.open_connection: port must be an " ..
          "integer from 0 to 65535 (got ", lasync.open_connection, LOCAL, p)
        if type(p) ~= "table" then
          assert.matches("(got " .. tostring(p) .. ")", err, 1, true)
        end
      end
      raises_msg("lasync.open_connection: port must be an integer from 0 " ..
        "to 65535 (got nil)", lasync.open_connection, LOCAL, nil)
      raises_msg("lasync.open_connection: host must be a string (got nil)",
        lasync.open_connection, nil, 80)
      raises_msg("lasync.open_connection: option 'family' must be " ..
        "\"inet\", \"inet6\" or \"any\"", lasync.open_connection, LOCAL, 80,
        { family = "ipx" })
      raises_msg("lasync.open_connection: option 'limit' must be a " ..
        "positive integer", lasync.open_connection, LOCAL, 80, { limit = 0 })
      raises_msg("lasync.open_connection: option 'limit' must be a " ..
        "positive integer", lasync.open_connection, LOCAL, 80,
        { limit = 1.5 })
      raises_msg("lasync.open_connection: option 'local_addr' must be " ..
        "{numeric host, port}", lasync.open_connection, LOCAL, 80,
        { local_addr = { "localhost", 0 } })
    end, 2)
  end)

  it("a missing port is reported as nil", function()
    helper.run(function()
      raises_msg("lasync.open_connection: port must be an integer from 0 " ..
        "to 65535 (got nil)", lasync.open_connection, LOCAL)
    end, 2)
  end)

  it("a bad port shows its type, a bad keepalive or opts raises",
    function()
      helper.run(function()
        raises_msg("lasync.open_connection: port must be an integer from " ..
          "0 to 65535 (got table)", lasync.open_connection, LOCAL, {})
        raises_msg("lasync.open_connection: port must be an integer from " ..
          "0 to 65535 (got boolean)", lasync.open_connection, LOCAL, true)
        for _, v in ipairs { "x", 1.5, -1, {} } do
          local got = type(v) == "number" and tostring(v) or type(v)
          raises_msg("lasync.open_connection: option 'keepalive' must be " ..
            "a boolean or a whole number of seconds (got " .. got .. ")",
            lasync.open_connection, LOCAL, 80, { keepalive = v })
        end
        -- Lua names the function lasync.open_connection or
        -- lasync.core.open_connection, whichever module it finds first
        local err = raises_msg("open_connection' (table expected, got " ..
          "string)", lasync.open_connection, LOCAL, 80, "inet")
        assert.matches("^bad argument #3 to '", err)
        err = raises_msg("open_unix_connection' (table expected, got " ..
          "number)", lasync.open_unix_connection, "/tmp/never.sock", 5)
        assert.matches("^bad argument #2 to '", err)
      end, 2)
    end)

  it("refuses to run outside a task", function()
    raises_msg("lasync.open_connection: not inside a task",
      lasync.open_connection, LOCAL, 80)
  end)

  it("family = \"inet6\" with an IPv4 address is refused (as asyncio's " ..
    "lookup refuses it)", function()
    helper.run(function()
      local _, host, port, shutdown = sender("x")
      local ok, r, w = pcall(lasync.open_connection, host, port,
        { family = "inet6" })
      if ok then w:close() end
      shutdown()
      assert.is_false(ok, "connected over IPv4 despite family = \"inet6\"")
      assert(lasync.is_error(r, lasync.OSError), helper.show(r))
    end, 2)
  end)

  it("a numeric host of the other family: the lookup's error, an IPv6 " ..
    "target in brackets", function()
    helper.run(function()
      local port = closed_port()
      for host, family in pairs { [LOCAL] = "inet6", ["::1"] = "inet" } do
        local err = helper.error_of(lasync.open_connection, host, port,
          { family = family })
        assert(lasync.is_error(err, lasync.OSError), helper.show(err))
        assert.matches("^EAI_", err.code)
        assert.is_nil(err.errno)
        local target = (host:find(":") and "[%s]:%d" or "%s:%d"):format(
          host, port)
        assert.are.equal(target, err.target)
        assert.matches("^lasync%.open_connection: .+ %(" ..
          escape(target) .. "%)$", err.message)
      end
      -- a failed connect names an IPv6 target the same way
      local err = helper.error_of(lasync.open_connection, "::1", port)
      assert(lasync.is_error(err, lasync.OSError), helper.show(err))
      assert.are.equal(("[::1]:%d"):format(port), err.target)
    end, 2)
  end)

  it("cancelled during the name lookup: CancelledError, nothing leaks",
    function()
      helper.run(function()
        local _, _, port, shutdown = sender("x")
        local t = lasync.spawn(lasync.open_connection, "localhost", port)
        lasync.sleep(0) -- it started: the lookup is under way
        assert.is_false(t:done())
        assert.is_true(t:cancel())
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert(lasync.is_cancelled(err), helper.show(err))
        assert.is_true(t:cancelled())
        -- the loop still works, and a new connection does
        local r, w = lasync.open_connection("localhost", port)
        assert.are.equal("x", r:read())
        w:close()
        shutdown()
      end, 2)
      -- helper.run checked that no anchor and no loop was left behind
    end)

  it("cancelled while connecting: the socket is closed, nothing leaks",
    function()
      helper.run(function()
        local got = {}
        local _, host, port, shutdown = serve(function(r, w)
          got[#got + 1] = r:read() -- the cancelled client's socket: EOF
          w:close()
        end)
        local t = lasync.spawn(lasync.open_connection, host, port)
        lasync.sleep(0) -- connecting
        assert.is_true(t:cancel())
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert(lasync.is_cancelled(err), helper.show(err))
        lasync.sleep(0.02)
        -- if the connection was made, its socket was closed: EOF
        for _, data in ipairs(got) do assert.are.equal("", data) end
        shutdown()
      end, 2)
    end)
end)

describe("lasync.open_connection cancelled (in a child process)", function()
  it("the loop closes cleanly: no report, no pending task", function()
    local status, out, err = helper.run_script([[
      local srv = lasync.start_server(function(r, w)
        r:read()
        w:close()
      end, "127.0.0.1", 0)
      local host, port = srv:address()
      local by_name = lasync.spawn(lasync.open_connection, "localhost", port)
      local by_number = lasync.spawn(lasync.open_connection, host, port)
      lasync.sleep(0)
      by_name:cancel()
      by_number:cancel()
      print(pcall(by_name.await, by_name))
      print(pcall(by_number.await, by_number))
      lasync.sleep(0.02) -- a handler that got the connection sees EOF
      srv:close()
      srv:wait_closed()
      print("end")
    ]])
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal("false\tCancelledError\nfalse\tCancelledError\nend\n",
      out)
  end)
end)

describe("StreamReader", function()
  it("read(n) returns up to n bytes, \"\" at EOF; read() reads to EOF",
    function()
      helper.run(function()
        local _, host, port, shutdown = sender("hello world")
        local r, w = lasync.open_connection(host, port)
        assert.are.equal("hello", r:readexactly(5))
        assert.are.equal(" w", r:read(2))
        assert.are.equal("orld", r:read(100))
        assert.are.equal("", r:read(100))
        assert.are.equal("", r:read())
        assert.are.equal("", r:read(-1))
        w:close()
        -- read() and read(-1) gather everything up to EOF
        local big = string.rep("0123456789", 30000)
        local _, h2, p2, shutdown2 = serve(function(_, w2)
          for i = 1, #big, 7000 do
            w2:write(big:sub(i, i + 6999))
            lasync.sleep(0)
          end
          w2:close()
        end)
        r, w = lasync.open_connection(h2, p2)
        assert.are.equal(big, r:read())
        w:close()
        r, w = lasync.open_connection(h2, p2)
        assert.are.equal(big, r:read(-1))
        w:close()
        shutdown()
        shutdown2()
      end, 2)
    end)

  it("read(0) returns \"\" at once, even with nothing received", function()
    helper.run(function()
      local go = lasync.Event()
      local _, host, port, shutdown = serve(function(_, w)
        go:wait()
        w:write("late")
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      local log, rec = recorder()
      lasync.spawn(function() rec("other") end)
      assert.are.equal("", r:read(0)) -- does not yield
      rec("read(0)")
      lasync.sleep(0)
      assert.are.same({ "read(0)", "other" }, log)
      go:set()
      assert.are.equal("late", r:read())
      assert.are.equal("", r:read(0))
      w:close()
      shutdown()
    end, 2)
  end)

  it("readline: lines with \"\\n\", the last partial line, then \"\"",
    function()
      helper.run(function()
        local _, host, port, shutdown = sender("one\ntwo\n\nlast")
        local r, w = lasync.open_connection(host, port)
        assert.are.equal("one\n", r:readline())
        assert.are.equal("two\n", r:readline())
        assert.are.equal("\n", r:readline())
        assert.are.equal("last", r:readline())
        assert.are.equal("", r:readline())
        assert.are.equal("", r:readline())
        w:close()
        -- ending with "\n": then "" at EOF
        local _, h2, p2, shutdown2 = sender("only\n")
        r, w = lasync.open_connection(h2, p2)
        assert.are.equal("only\n", r:readline())
        assert.are.equal("", r:readline())
        w:close()
        shutdown()
        shutdown2()
      end, 2)
    end)

  it("readline waits for a line sent in pieces", function()
    helper.run(function()
      local _, host, port, shutdown = serve(function(_, w)
        for _, piece in ipairs { "he", "ll", "o\nwor", "ld\n" } do
          w:write(piece)
          lasync.sleep(0.002)
        end
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      assert.are.equal("hello\n", r:readline())
      assert.are.equal("world\n", r:readline())
      w:close()
      shutdown()
    end, 2)
  end)

  it("readexactly(n): n bytes; at EOF IncompleteReadError with partial " ..
    "and expected", function()
    helper.run(function()
      local _, host, port, shutdown = sender("abcdef")
      local r, w = lasync.open_connection(host, port)
      assert.are.equal("", r:readexactly(0))
      assert.are.equal("abcd", r:readexactly(4))
      local err = raises(lasync.IncompleteReadError, "IncompleteReadError",
        r.readexactly, r, 4)
      assert.are.equal("ef", err.partial)
      assert.are.equal(4, err.expected)
      assert.are.equal("2 bytes read on a total of 4 expected bytes",
        err.message)
      assert.matches("^IncompleteReadError: ", tostring(err))
      assert.is_true(r:at_eof()) -- the partial bytes were consumed
      assert.are.equal("", r:read())
      raises_msg("lasync.StreamReader:readexactly: n must be >= 0",
        r.readexactly, r, -1)
      w:close()
      shutdown()
    end, 2)
  end)

  it("readexactly of far more than the limit (reading resumes)", function()
    helper.run(function()
      local big = string.rep("x", 300000)
      local _, host, port, shutdown = sender(big)
      local r, w = lasync.open_connection(host, port, { limit = 16 })
      assert.are.equal(big, r:readexactly(#big))
      assert.are.equal("", r:read())
      w:close()
      shutdown()
    end, 2)
  end)

  it("readuntil: up to and including a custom separator; \"\\n\" by " ..
    "default", function()
    helper.run(function()
      local _, host, port, shutdown = sender("a--b\r\nline\nrest")
      local r, w = lasync.open_connection(host, port)
      assert.are.equal("a--", r:readuntil("--"))
      assert.are.equal("b\r\n", r:readuntil("\r\n"))
      assert.are.equal("line\n", r:readuntil())
      local err = raises(lasync.IncompleteReadError, "IncompleteReadError",
        r.readuntil, r, "\n")
      assert.are.equal("rest", err.partial)
      assert.is_nil(err.expected)
      assert.matches("4 bytes read", err.message, 1, true)
      assert.are.equal("", r:read())
      raises_msg("lasync.StreamReader:readuntil: the separator is empty",
        r.readuntil, r, "")
      w:close()
      shutdown()
    end, 2)
  end)

  it("readuntil past the limit: LimitOverrunError with consumed; the " ..
    "data is kept", function()
    helper.run(function()
      local _, host, port, shutdown = sender("0123456789--tail")
      local r, w = lasync.open_connection(host, port, { limit = 8 })
      lasync.sleep(0.01) -- all of it has arrived
      local err = raises(lasync.LimitOverrunError, "LimitOverrunError",
        r.readuntil, r, "--")
      assert.are.equal(10, err.consumed) -- where the separator starts
      assert.matches("separator is found, but chunk is longer than limit",
        err.message, 1, true)
      -- not found within the limit
      err = raises(lasync.LimitOverrunError, "LimitOverrunError",
        r.readuntil, r, "#")
      assert.are.equal(16, err.consumed)
      assert.matches("separator is not found", err.message, 1, true)
      -- nothing was consumed
      assert.are.equal("0123456789--tail", r:read())
      w:close()
      shutdown()
    end, 2)
  end)

  it("readline past the limit: LimitOverrunError, the line is dropped",
    function()
      helper.run(function()
        local _, host, port, shutdown = sender("0123456789abcdef\nshort\n")
        local r, w = lasync.open_connection(host, port, { limit = 8 })
        lasync.sleep(0.01)
        local err = raises(lasync.LimitOverrunError, "LimitOverrunError",
          r.readline, r)
        assert.are.equal(16, err.consumed)
        assert.matches("^LimitOverrunError: ", tostring(err))
        assert.are.equal("short\n", r:readline())
        assert.are.equal("", r:readline())
        w:close()
        shutdown()
      end, 2)
    end)

  it("a line of exactly `limit` bytes before the separator is returned " ..
    "(as asyncio)", function()
    helper.run(function()
      -- asyncio raises only when the separator starts past the limit
      -- (isep > limit): "abcde\n" with limit 5 is a valid line
      local _, host, port, shutdown = sender("abcde\nabcde--")
      local r, w = lasync.open_connection(host, port, { limit = 5 })
      lasync.sleep(0.01)
      local ok, line = pcall(r.readline, r)
      assert(ok, "readline: " .. helper.show(line))
      assert.are.equal("abcde\n", line)
      local ok2, chunk = pcall(r.readuntil, r, "--")
      assert(ok2, "readuntil: " .. helper.show(chunk))
      assert.are.equal("abcde--", chunk)
      w:close()
      shutdown()
    end, 2)
  end)

  it("readuntil: a separator that arrives in pieces right at the limit " ..
    "is found; consumed as asyncio's offset", function()
    helper.run(function()
      local step = lasync.Queue()
      local _, host, port, shutdown = serve(function(_, w)
        w:write("abcde-")
        step:get()
        w:write("-0123456789")
        w:close()
      end)
      local r, w = lasync.open_connection(host, port, { limit = 5 })
      local t = lasync.spawn(r.readuntil, r, "--")
      lasync.sleep(0.01) -- "abcde-" has arrived: "--" may start at 5
      assert.is_false(t:done())
      step:put(true)
      assert.are.equal("abcde--", t:await())
      lasync.sleep(0.01)
      -- "0123456789": "--" could start at 9 at the earliest
      local err = raises(lasync.LimitOverrunError, "LimitOverrunError",
        r.readuntil, r, "--")
      assert.are.equal(9, err.consumed)
      assert.are.equal("0123456789", r:read())
      w:close()
      shutdown()
    end, 2)
  end)

  it("the default limit takes a line of 65536 bytes", function()
    helper.run(function()
      local line = string.rep("x", 65536) .. "\n"
      local _, host, port, shutdown = sender(line .. line .. "x\n")
      local r, w = lasync.open_connection(host, port)
      assert.are.equal(line, r:readline())
      assert.are.equal(line, r:readuntil("\n"))
      assert.are.equal("x\n", r:readline())
      w:close()
      shutdown()
    end, 2)
  end)

  it("read() to EOF gathers far past the limit", function()
    helper.run(function()
      local data = string.rep("0123456789", 50000)
      local _, host, port, shutdown = sender(data)
      local r, w = lasync.open_connection(host, port, { limit = 8 })
      assert.are.equal(data, r:read())
      assert.is_true(r:at_eof())
      w:close()
      shutdown()
    end, 2)
  end)

  it("at_eof: only once the peer sent EOF and the buffer is empty",
    function()
      helper.run(function()
        local go = lasync.Event()
        local _, host, port, shutdown = serve(function(_, w)
          w:write("ab")
          go:wait()
          w:close()
        end)
        local r, w = lasync.open_connection(host, port)
        assert.is_false(r:at_eof())
        assert.are.equal("a", r:readexactly(1))
        go:set()
        lasync.sleep(0.02) -- EOF has arrived, "b" is still buffered
        assert.is_false(r:at_eof())
        assert.are.equal("b", r:read(10))
        assert.is_true(r:at_eof())
        w:close()
        shutdown()
      end, 2)
    end)

  it("a second task reading at the same time is an error", function()
    helper.run(function()
      local go = lasync.Event()
      local _, host, port, shutdown = serve(function(_, w)
        go:wait()
        w:write("data\n")
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      local first = lasync.spawn(function() return r:readline() end)
      lasync.sleep(0)
      for method, call in pairs {
        read = function() return r:read(1) end,
        readline = function() return r:readline() end,
        readexactly = function() return r:readexactly(1) end,
        readuntil = function() return r:readuntil("x") end,
      } do
        raises_msg("lasync.StreamReader:" .. method .. ": another task is " ..
          "already reading from this stream", call)
      end
      go:set()
      assert.are.equal("data\n", first:await())
      w:close()
      shutdown()
    end, 2)
  end)

  it("cancelling a task blocked in a read loses no bytes", function()
    helper.run(function()
      local step = lasync.Queue()
      local _, host, port, shutdown = serve(function(_, w)
        while true do
          local piece = step:get()
          if not piece then break end
          w:write(piece)
        end
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      local cases = {
        { "read(n)", function() return r:read(10) end, nil, "abc" },
        { "readline", function() return r:readline() end, "ab", "c\n" },
        { "readexactly", function() return r:readexactly(4) end, "ab", "cd" },
        { "readuntil", function() return r:readuntil("--") end, "ab-", "-" },
      }
      for _, case in ipairs(cases) do
        local name, call, before, after = table.unpack(case)
        local t = lasync.spawn(call)
        if before then step:put(before) end
        lasync.sleep(0.01) -- `before` has arrived; t still waits
        assert.is_false(t:done(), name)
        t:cancel()
        local ok, err = pcall(t.await, t)
        assert.is_false(ok, name)
        assert(lasync.is_cancelled(err), name .. ": " .. helper.show(err))
        step:put(after)
        local expect = (before or "") .. after
        assert.are.equal(expect, call(), name)
      end
      step:put(false)
      assert.are.equal("", r:read())
      w:close()
      shutdown()
    end, 2)
  end)

  it("cancelling a task blocked in read() to EOF loses no bytes", function()
    helper.run(function()
      local step = lasync.Queue()
      local _, host, port, shutdown = serve(function(_, w)
        w:write(step:get())
        w:write(step:get())
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      local t = lasync.spawn(function() return r:read() end)
      step:put("first ")
      lasync.sleep(0.01) -- "first " has arrived; t waits for EOF
      t:cancel()
      assert.is_false(pcall(t.await, t))
      step:put("second")
      local rest = r:read()
      w:close()
      shutdown()
      assert.are.equal("first second", rest)
    end, 2)
  end)

  it("a reset: buffered bytes first, then OSError ECONNRESET", function()
    helper.run(function()
      -- the server reads little (limit 1 pauses its reading) and closes
      -- with our data unread: its kernel answers with a RST
      local _, host, port, shutdown = serve(function(r, w)
        w:write("hello")
        r:readexactly(1)
        lasync.sleep(0.03) -- the rest of our data is in its socket
        w:close()
      end, { limit = 1 })
      local r, w = lasync.open_connection(host, port)
      w:write(string.rep("u", 200000))
      lasync.sleep(0.06)
      assert.are.equal("hello", r:read(100))
      local err = helper.error_of(r.read, r, 100)
      assert_os_error(err, "ECONNRESET", "StreamReader:read")
      assert.are.equal("lasync.StreamReader:read: connection reset by peer",
        err.message)
      -- every read after it meets the same error, naming its method
      assert_os_error(helper.error_of(r.readline, r), "ECONNRESET",
        "StreamReader:readline")
      assert_os_error(helper.error_of(r.readexactly, r, 1), "ECONNRESET",
        "StreamReader:readexactly")
      assert_os_error(helper.error_of(r.readuntil, r, "x"), "ECONNRESET",
        "StreamReader:readuntil")
      assert_os_error(helper.error_of(r.read, r), "ECONNRESET",
        "StreamReader:read")
      w:close()
      shutdown()
    end, 2)
  end)

  it("at_eof is false after a reset (no EOF was received, as asyncio)",
    function()
      helper.run(function()
        local _, host, port, shutdown = serve(function(r, w)
          r:readexactly(1)
          lasync.sleep(0.03)
          w:close()
        end, { limit = 1 })
        local r, w = lasync.open_connection(host, port)
        w:write(string.rep("u", 200000))
        lasync.sleep(0.06)
        local eof = r:at_eof()
        assert_os_error(helper.error_of(r.read, r), "ECONNRESET",
          "StreamReader:read")
        w:close()
        shutdown()
        assert.is_false(eof)
      end, 2)
    end)
end)

describe("StreamWriter", function()
  it("write and writelines send the bytes in order", function()
    helper.run(function()
      local _, host, port, shutdown = serve(function(r, w)
        w:write(r:read())
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      w:write("a")
      w:write("")
      w:writelines { "b", "c", "", "d" }
      w:writelines {}
      w:write(12) -- numbers are strings to Lua
      w:write_eof()
      assert.are.equal("abcd12", r:read())
      w:close()
      shutdown()
    end, 2)
  end)

  it("write and writelines refuse a table and a non-string item",
    function()
      helper.run(function()
        local _, host, port, shutdown = sender("")
        local _, w = lasync.open_connection(host, port)
        raises_msg("string expected, got table", w.write, w, {})
        raises_msg("lasync.StreamWriter:writelines: item #2 is not a string",
          w.writelines, w, { "x", {} })
        raises_msg("table expected, got string", w.writelines, w, "x")
        w:close()
        shutdown()
      end, 2)
    end)

  it("drain returns at once below the high-water mark", function()
    helper.run(function()
      local _, host, port, shutdown = serve(function(r, w)
        r:read()
        w:close()
      end)
      local _, w = lasync.open_connection(host, port)
      local log, rec = recorder()
      lasync.spawn(function() rec("other") end)
      w:write(string.rep("x", 1000))
      w:drain() -- does not yield
      rec("drained")
      lasync.sleep(0)
      assert.are.same({ "drained", "other" }, log)
      w:close()
      shutdown()
    end, 2)
  end)

  it("drain waits while much is queued to a peer that does not read",
    function()
      helper.run(function()
        local go = lasync.Event()
        local _, host, port, shutdown = serve(function(r, w)
          go:wait()
          w:write("got " .. #r:read())
          w:close()
        end)
        local r, w = lasync.open_connection(host, port)
        local n = 16 << 20 -- more than the kernel's socket buffers take
        w:write(string.rep("b", n))
        local log, rec = recorder()
        local d = lasync.spawn(function()
          w:drain()
          rec("drained")
        end)
        lasync.sleep(0.03)
        assert.is_false(d:done())
        rec("peer reads")
        go:set()
        d:await()
        assert.are.same({ "peer reads", "drained" }, log)
        w:write_eof()
        assert.are.equal("got " .. n, r:read())
        w:close()
        shutdown()
      end, 4)
    end)

  it("drain raises the connection's error after a reset", function()
    helper.run(function()
      local _, host, port, shutdown = serve(function(r, w)
        r:readexactly(1)
        lasync.sleep(0.03)
        w:close() -- with our data unread: a RST
      end, { limit = 1 })
      local r, w = lasync.open_connection(host, port)
      w:write(string.rep("u", 200000))
      assert_os_error(helper.error_of(r.read, r), "ECONNRESET",
        "StreamReader:read")
      local err = helper.error_of(w.drain, w)
      assert_os_error(err, "ECONNRESET", "StreamWriter:drain")
      assert.are.equal("lasync.StreamWriter:drain: connection reset by peer",
        err.message)
      w:close()
      shutdown()
    end, 2)
  end)

  it("drain raises EPIPE/ECONNRESET when writing to a peer that is gone " ..
    "(and SIGPIPE does not kill the process)", function()
    helper.run(function()
      local _, host, port, shutdown = sender("bye")
      local r, w = lasync.open_connection(host, port)
      assert.are.equal("bye", r:read()) -- the peer closed
      local err
      for _ = 1, 50 do -- the first write gets a RST back, a later one fails
        w:write("more")
        local ok, e = pcall(w.drain, w)
        if not ok then
          err = e
          break
        end
        lasync.sleep(0.002)
      end
      assert(err, "drain never raised")
      assert_os_error(err, { "EPIPE", "ECONNRESET" }, "StreamWriter:drain")
      w:close()
      shutdown()
    end, 2)
  end)

  it("write_eof: the peer sees EOF, the writer can still read", function()
    helper.run(function()
      local _, host, port, shutdown = serve(function(r, w)
        local data = r:read() -- to EOF
        w:write("got " .. data)
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      assert.is_true(w:can_write_eof())
      w:write("abc")
      w:write_eof()
      assert.is_false(w:is_closing())
      assert.are.equal("got abc", r:read())
      raises_msg("lasync.StreamWriter:write: write_eof() was called",
        w.write, w, "x")
      raises_msg("lasync.StreamWriter:writelines: write_eof() was called",
        w.writelines, w, { "x" })
      raises_msg("lasync.StreamWriter:write_eof: write_eof() was called",
        w.write_eof, w)
      w:close()
      w:wait_closed()
      shutdown()
    end, 2)
  end)

  it("close: what was written still goes out; is_closing; wait_closed",
    function()
      helper.run(function()
        local got
        local _, host, port, shutdown = serve(function(r, w)
          got = r:read()
          w:close()
        end)
        local _, w = lasync.open_connection(host, port)
        local big = string.rep("z", 4 << 20)
        w:write(big)
        assert.is_false(w:is_closing())
        local log, rec = recorder()
        lasync.spawn(function() rec("other") end)
        w:close() -- never waits
        rec("closed")
        assert.is_true(w:is_closing())
        w:close() -- again: nothing
        w:wait_closed()
        rec("wait_closed")
        assert.are.same({ "closed", "other", "wait_closed" }, log)
        assert.matches("%(closed%)$", tostring(w))
        w:wait_closed() -- returns at once now
        shutdown()
        assert.are.equal(#big, #got)
        assert.are.equal(big, got)
      end, 3)
    end)

  it("write after close is an error naming the method", function()
    helper.run(function()
      local _, host, port, shutdown = sender("")
      local r, w = lasync.open_connection(host, port)
      w:close()
      raises_msg("lasync.StreamWriter:write: the stream is closed",
        w.write, w, "x")
      raises_msg("lasync.StreamWriter:writelines: the stream is closed",
        w.writelines, w, { "x" })
      raises_msg("lasync.StreamWriter:write_eof: the stream is closed",
        w.write_eof, w)
      w:wait_closed()
      raises_msg("lasync.StreamWriter:write: the stream is closed",
        w.write, w, "x")
      assert.is_true(w:can_write_eof())
      w:drain() -- nothing to wait for
      -- the reader of a closed stream is at EOF
      assert.are.equal("", r:read())
      shutdown()
    end, 2)
  end)

  it("is_closing is true once the connection ended (a reset)", function()
    helper.run(function()
      local _, host, port, shutdown = serve(function(r, w)
        r:readexactly(1)
        lasync.sleep(0.03)
        w:close()
      end, { limit = 1 })
      local r, w = lasync.open_connection(host, port)
      w:write(string.rep("u", 200000))
      assert_os_error(helper.error_of(r.read, r), "ECONNRESET",
        "StreamReader:read")
      local closing = w:is_closing()
      w:close()
      shutdown()
      assert.is_true(closing, "is_closing() is false after ECONNRESET")
    end, 2)
  end)

  it("get_extra_info: peername, sockname, socket", function()
    helper.run(function()
      local server_view
      local _, host, port, shutdown = serve(function(r, w)
        server_view = { w:get_extra_info("peername") }
        r:read()
        w:close()
      end)
      local _, w = lasync.open_connection(host, port)
      local phost, pport = w:get_extra_info("peername")
      assert.are.equal(host, phost)
      assert.are.equal(port, pport)
      local shost, sport = w:get_extra_info("sockname")
      assert.are.equal(LOCAL, shost)
      assert.are.equal("integer", math.type(sport))
      local fd = w:get_extra_info("socket")
      assert.are.equal("integer", math.type(fd))
      assert.is_true(fd > 2)
      assert.is_nil(w:get_extra_info("sslcontext"))
      wait_until(function() return server_view ~= nil end, 1)
      assert.are.same({ shost, sport }, server_view)
      w:close()
      w:wait_closed()
      assert.is_nil(w:get_extra_info("peername"))
      assert.is_nil(w:get_extra_info("socket"))
      shutdown()
    end, 2)
  end)

  it("a <close> variable closes the writer", function()
    helper.run(function()
      local got
      local _, host, port, shutdown = serve(function(r, w)
        got = r:read()
        w:close()
      end)
      local kept
      do
        local _, w <close> = lasync.open_connection(host, port)
        kept = w
        w:write("bye")
      end
      assert.is_true(kept:is_closing())
      kept:wait_closed()
      shutdown()
      assert.are.equal("bye", got)
    end, 2)
  end)

  it("methods refuse a wrong self", function()
    helper.run(function()
      local _, host, port, shutdown = sender("")
      local r, w = lasync.open_connection(host, port)
      raises_msg("StreamWriter:write", w.write, r, "x")
      raises_msg("StreamReader:read", r.read, w)
      w:close()
      shutdown()
    end, 2)
  end)
end)

describe("StreamReader:lines (issue 9)", function()
  -- The lines of a connection to a server sending `data`, read with
  -- r:lines(...); the server closes when done.
  local function lines_of(data, ...)
    local _, host, port, shutdown = sender(data)
    local r, w = lasync.open_connection(host, port)
    local out = {}
    for line in r:lines(...) do out[#out + 1] = line end
    w:close()
    shutdown()
    return out
  end

  it("iterates to EOF, without the newline by default, as io", function()
    helper.run(function()
      assert.are.same({ "a", "bb", "", "last" }, lines_of("a\nbb\n\nlast"))
      assert.are.same({ "a", "bb" }, lines_of("a\nbb\n", "l"))
      assert.are.same({ "a\n", "bb\n", "\n", "last" },
        lines_of("a\nbb\n\nlast", "L"))
      assert.are.same({ "x\r\n" }, lines_of("x\r\n", "*L"))
      assert.are.same({}, lines_of(""))
    end)
  end)

  it("waits for lines that arrive later, in pieces", function()
    helper.run(function()
      local _, host, port, shutdown = serve(function(_, w)
        for _, piece in ipairs { "he", "llo\nwor", "ld\n" } do
          w:write(piece)
          lasync.sleep(0.005)
        end
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      local out = {}
      for line in r:lines() do out[#out + 1] = line end
      assert.are.same({ "hello", "world" }, out)
      w:close()
      shutdown()
    end)
  end)

  it("refuses other formats and other receivers", function()
    helper.run(function()
      local _, host, port, shutdown = sender("")
      local r, w = lasync.open_connection(host, port)
      raises_msg('lasync.StreamReader:lines: the format must be "l" or ' ..
        '"L" (got n)', r.lines, r, "n")
      raises_msg('lasync.StreamReader:lines: the format must be "l" or ' ..
        '"L" (got table)', r.lines, r, {})
      raises_msg("lasync.StreamReader:lines: expected a StreamReader (got " ..
        "no value)", r.lines)
      raises_msg("expected a StreamReader (got lasync.StreamWriter)", r.lines, w)
      w:close()
      shutdown()
    end)
  end)
end)
