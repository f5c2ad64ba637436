-- lasync.start_server, lasync.start_unix_server and Server (asyncio's
-- start_server and Server, 3.12), lasync.open_unix_connection. Loopback
-- and Unix sockets in a temporary directory only; free ports (port 0) only.
local helper = require "helper"
local lasync = helper.lasync
local recorder = helper.recorder
local raises_msg, wait_until = helper.raises_msg, helper.wait_until
local assert_os_error = helper.assert_os_error
local echo, capture_reports = helper.echo, helper.capture_reports

local LOCAL = "127.0.0.1"

-- One request on a new connection: send `data`, half-close, read to EOF.
local function exchange(host, port, data)
  local r, w = lasync.open_connection(host, port)
  w:write(data)
  w:write_eof()
  local reply = r:read()
  w:close()
  return reply
end

-- A fresh temporary directory; returns its path and a cleanup function.
local function tempdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. dir))
  return dir, function() os.execute("rm -rf " .. dir) end
end

local function exists(path)
  return os.execute("test -e '" .. path .. "'") == true
end

local function is_socket(path)
  return os.execute("test -S '" .. path .. "'") == true
end

describe("lasync.start_server", function()
  it("listens on port 0: address, sockets, is_serving, tostring", function()
    helper.run(function()
      local srv = lasync.start_server(echo, LOCAL, 0)
      local host, port = srv:address()
      assert.are.equal(LOCAL, host)
      assert.are.equal("integer", math.type(port))
      assert.is_true(port > 0)
      assert.are.same({ { host = LOCAL, port = port } }, srv:sockets())
      assert.is_true(srv:is_serving())
      assert.are.equal("lasync.Server: 127.0.0.1:" .. port, tostring(srv))
      assert.are.equal("hi\n", exchange(host, port, "hi\n"))
      srv:close()
      srv:wait_closed()
    end, 2)
  end)

  it("runs handler(reader, writer) in a task of its own per connection",
    function()
      helper.run(function()
        local seen = {}
        local srv = lasync.start_server(function(r, w)
          seen[#seen + 1] = {
            task = lasync.current_task(),
            reader = tostring(r):match("^lasync%.StreamReader") ~= nil,
            writer = tostring(w):match("^lasync%.StreamWriter") ~= nil,
          }
          echo(r, w)
        end, LOCAL, 0)
        local host, port = srv:address()
        assert.are.equal("a\n", exchange(host, port, "a\n"))
        assert.are.equal("b\n", exchange(host, port, "b\n"))
        srv:close()
        srv:wait_closed()
        assert.are.equal(2, #seen)
        assert.are_not.equal(seen[1].task, seen[2].task)
        assert.are_not.equal(lasync.current_task(), seen[1].task)
        for _, s in ipairs(seen) do
          assert.is_true(s.reader)
          assert.is_true(s.writer)
        end
      end, 2)
    end)

  it("close: stops listening; connections made go on; wait_closed",
    function()
      helper.run(function()
        local srv = lasync.start_server(echo, LOCAL, 0)
        local host, port = srv:address()
        local r, w = lasync.open_connection(host, port)
        w:write("before\n")
        assert.are.equal("before\n", r:readline())
        local log, rec = recorder()
        local waiter = lasync.spawn(function()
          srv:wait_closed()
          rec("wait_closed")
        end)
        lasync.sleep(0)
        assert.is_false(waiter:done())
        rec("close")
        srv:close()
        assert.is_false(srv:is_serving())
        assert.are.same({}, srv:sockets())
        assert.are.equal(0, select("#", srv:address()))
        assert.are.equal("lasync.Server: closed", tostring(srv))
        srv:close() -- again: nothing
        waiter:await()
        srv:wait_closed() -- at once now
        assert.are.same({ "close", "wait_closed" }, log)
        -- the connection made before goes on
        w:write("after\n")
        assert.are.equal("after\n", r:readline())
        w:close()
        -- new connections are refused
        local err = helper.error_of(lasync.open_connection, host, port)
        assert_os_error(err, "ECONNREFUSED", "open_connection")
      end, 2)
    end)

  it("serve_forever returns once the server is closed", function()
    helper.run(function()
      local srv = lasync.start_server(echo, LOCAL, 0)
      local host, port = srv:address()
      local log, rec = recorder()
      local t = lasync.spawn(function()
        srv:serve_forever()
        rec("serve_forever returned")
      end)
      lasync.sleep(0.005)
      assert.is_false(t:done())
      assert.are.equal("x\n", exchange(host, port, "x\n"))
      rec("close")
      srv:close()
      t:await()
      assert.are.same({ "close", "serve_forever returned" }, log)
      raises_msg("lasync.Server:serve_forever: the server is closed",
        srv.serve_forever, srv)
    end, 2)
  end)

  it("cancelling the task in serve_forever closes the server", function()
    helper.run(function()
      local srv = lasync.start_server(echo, LOCAL, 0)
      local t = lasync.spawn(srv.serve_forever, srv)
      lasync.sleep(0)
      assert.is_true(srv:is_serving())
      t:cancel()
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert(lasync.is_cancelled(err), helper.show(err))
      assert.is_false(srv:is_serving())
      srv:wait_closed()
    end, 2)
  end)

  it("an address in use: OSError EADDRINUSE with the target", function()
    helper.run(function()
      local srv = lasync.start_server(echo, LOCAL, 0)
      local _, port = srv:address()
      local target = LOCAL .. ":" .. port
      local err = helper.error_of(lasync.start_server, echo, LOCAL, port)
      assert_os_error(err, "EADDRINUSE", "start_server", target)
      assert.are.equal("lasync.start_server: address already in use (" ..
        target .. ")", err.message)
      assert.is_true(srv:is_serving())
      srv:close()
    end, 2)
  end)

  it("an unknown host: the lookup's error names start_server", function()
    helper.run(function()
      local err = helper.error_of(lasync.start_server, echo,
                                  "no-such-host.invalid", 80)
      assert(lasync.is_error(err, lasync.OSError), helper.show(err))
      assert.matches("^EAI_", err.code)
      assert.is_nil(err.errno)
      assert.are.equal("no-such-host.invalid:80", err.target)
      assert.matches("^lasync%.start_server: .*%(no%-such%-host%.invalid:80%)$",
                     err.message)
    end, 2)
  end)

  it("a handler's error goes to the exception handler; only that " ..
    "connection is closed", function()
    helper.run(function()
      local reports = capture_reports()
      local srv = lasync.start_server(function(r, w)
        local line = r:readline()
        if line == "boom\n" then error("handler failed") end
        w:write("ok " .. line)
        echo(r, w)
      end, LOCAL, 0)
      local host, port = srv:address()
      -- a client connected before, and still talking after
      local r1, w1 = lasync.open_connection(host, port)
      w1:write("first\n")
      assert.are.equal("ok first\n", r1:readline())
      local r2, w2 = lasync.open_connection(host, port)
      w2:write("boom\n")
      assert.are.equal("", r2:read()) -- its connection was closed: EOF
      w2:close()
      w1:write("still here\n")
      assert.are.equal("still here\n", r1:readline())
      assert.are.equal("ok next\n", exchange(host, port, "next\n"))
      assert.is_true(srv:is_serving())
      w1:close()
      srv:close()
      srv:wait_closed()
      wait_until(function() return #reports > 0 end, 1)
      assert.are.equal(1, #reports)
      local ctx = reports[1]
      assert.are.equal("exception in connection handler", ctx.message)
      assert.is_string(ctx.exception)
      assert.matches("handler failed$", ctx.exception)
      assert.is_string(ctx.traceback)
      assert.matches("server_spec.lua", ctx.traceback, 1, true)
    end, 2)
  end)

  it("a cancelled handler closes its connection without a report",
    function()
      helper.run(function()
        local reports = capture_reports()
        local handler_task
        local srv = lasync.start_server(function(r)
          handler_task = lasync.current_task()
          r:read() -- waits
        end, LOCAL, 0)
        local r, w = lasync.open_connection(srv:address())
        wait_until(function() return handler_task ~= nil end, 1)
        handler_task:cancel()
        assert.are.equal("", r:read()) -- EOF: the server closed it
        w:close()
        srv:close()
        lasync.sleep(0.005)
        assert.are.equal(0, #reports)
      end, 2)
    end)

  it("a handler that returns does not close the connection (as asyncio)",
    function()
      helper.run(function()
        local writers = {}
        local srv = lasync.start_server(function(_, w)
          writers[#writers + 1] = w -- kept: the connection stays open
        end, LOCAL, 0)
        local r, w = lasync.open_connection(srv:address())
        wait_until(function() return #writers == 1 end, 1)
        lasync.sleep(0.005) -- the handler has returned
        writers[1]:write("later")
        writers[1]:close()
        assert.are.equal("later", r:read())
        w:close()
        srv:close()
      end, 2)
    end)

  it("serves 200 concurrent clients", function()
    helper.run(function()
      local active, most = 0, 0
      local srv = lasync.start_server(function(r, w)
        active = active + 1
        most = math.max(most, active)
        local line = r:readline()
        lasync.sleep(0.01)
        w:write("re " .. line)
        w:close()
        active = active - 1
      end, LOCAL, 0, { backlog = 512 }) -- 200 connects at once
      local host, port = srv:address()
      local clients = {}
      for i = 1, 200 do
        clients[i] = function()
          local r, w = lasync.open_connection(host, port)
          w:write(i .. "\n")
          local reply = r:read()
          w:close()
          return reply
        end
      end
      local replies, dt = nil, nil
      dt, replies = helper.timed(lasync.gather, clients)
      assert.are.equal(200, replies.n)
      for i = 1, 200 do
        assert.are.equal("re " .. i .. "\n", replies[i])
      end
      assert.is_true(most > 1, "the handlers did not overlap")
      assert.is_true(dt < 1, ("200 clients took %.3f s"):format(dt))
      srv:close()
      srv:wait_closed()
    end, 3)
  end)

  it("a <close> variable closes the server", function()
    helper.run(function()
      local kept
      do
        local srv <close> = lasync.start_server(echo, LOCAL, 0)
        kept = srv
        assert.is_true(srv:is_serving())
      end
      assert.is_false(kept:is_serving())
      kept:wait_closed()
    end, 2)
  end)

  it("the handler must be callable", function()
    helper.run(function()
      for _, h in ipairs { 42, "f", {}, true } do
        raises_msg("lasync.start_server: the handler must be a function " ..
          "(got " .. type(h) .. ")", lasync.start_server, h, LOCAL, 0)
      end
      raises_msg("lasync.start_server: the handler must be a function " ..
        "(got nil)", lasync.start_server, nil, LOCAL, 0)
      -- a callable table is a handler
      local callable = setmetatable({}, {
        __call = function(_, r, w) echo(r, w) end })
      local srv = lasync.start_server(callable, LOCAL, 0)
      local host, port = srv:address()
      assert.are.equal("t\n", exchange(host, port, "t\n"))
      srv:close()
    end, 2)
  end)

  it("bad ports and options are clear errors", function()
    helper.run(function()
      for _, p in ipairs { -1, 65536, 2.5, "http" } do
        raises_msg("lasync.start_server: port must be an integer from 0 " ..
          "to 65535 (got " .. tostring(p) .. ")", lasync.start_server, echo,
          LOCAL, p)
      end
      raises_msg("lasync.start_server: option 'family' must be \"inet\", " ..
        "\"inet6\" or \"any\"", lasync.start_server, echo, LOCAL, 0,
        { family = 4 })
      raises_msg("lasync.start_server: option 'limit' must be a positive " ..
        "integer", lasync.start_server, echo, LOCAL, 0, { limit = -1 })
    end, 2)
    raises_msg("lasync.start_server: not inside a task",
      lasync.start_server, echo, LOCAL, 0)
    raises_msg("lasync.start_unix_server: not inside a task",
      lasync.start_unix_server, echo, "/tmp/never.sock")
    raises_msg("lasync.open_unix_connection: not inside a task",
      lasync.open_unix_connection, "/tmp/never.sock")
  end)

  it("option backlog must be an integer, said clearly", function()
    helper.run(function()
      local err = raises_msg("backlog", lasync.start_server, echo, LOCAL, 0,
        { backlog = "many" })
      assert.matches("^lasync%.start_server: ", err)
    end, 2)
  end)

  it("option limit applies to the handlers' readers", function()
    helper.run(function()
      local srv = lasync.start_server(function(r, w)
        local ok, err = pcall(r.readline, r)
        w:write(ok and "fits" or
          (lasync.is_error(err, lasync.LimitOverrunError) and "overrun" or
            helper.show(err)))
        w:close()
      end, LOCAL, 0, { limit = 8, nodelay = false, keepalive = 10 })
      local host, port = srv:address()
      assert.are.equal("fits", exchange(host, port, "short\n"))
      assert.are.equal("overrun", exchange(host, port,
        "far too long a line\n"))
      srv:close()
    end, 2)
  end)

  it("option reuse_port lets two servers share a port", function()
    helper.run(function()
      local s1 = lasync.start_server(echo, LOCAL, 0, { reuse_port = true })
      local _, port = s1:address()
      local s2 = lasync.start_server(echo, LOCAL, port, { reuse_port = true })
      assert.are.same({ LOCAL, port }, { s2:address() })
      assert.are.equal("r\n", exchange(LOCAL, port, "r\n"))
      s1:close()
      s2:close()
    end, 2)
  end)

  it("host nil or \"*\" listens on every address; \"localhost\" and " ..
    "\"::1\" too", function()
    helper.run(function()
      local any = lasync.start_server(echo, nil, 0)
      local host, port = any:address()
      assert.is_true(host == "::" or host == "0.0.0.0", host)
      assert.are.equal("4\n", exchange(LOCAL, port, "4\n"))
      any:close()
      local v4 = lasync.start_server(echo, "*", 0, { family = "inet" })
      host, port = v4:address()
      assert.are.equal("0.0.0.0", host)
      assert.are.equal("5\n", exchange(LOCAL, port, "5\n"))
      v4:close()
      local named = lasync.start_server(echo, "localhost", 0)
      host, port = named:address()
      assert.is_true(host == LOCAL or host == "::1", host)
      assert.are.equal("n\n", exchange("localhost", port, "n\n"))
      named:close()
      local v6 = lasync.start_server(echo, "::1", 0)
      host, port = v6:address()
      assert.are.equal("::1", host)
      assert.are.equal("lasync.Server: ::1:" .. port, tostring(v6))
      assert.are.equal("6\n", exchange("::1", port, "6\n"))
      v6:close()
      local err = helper.error_of(lasync.start_server, echo,
        "no-such-host.invalid", 0)
      assert(lasync.is_error(err, lasync.OSError), helper.show(err))
      assert.matches("^EAI_", err.code)
    end, 2)
  end)
end)

describe("lasync.start_unix_server", function()
  it("round trip; address() and sockets() give the path; the file is " ..
    "removed on close", function()
    local dir, cleanup = tempdir()
    finally(cleanup)
    helper.run(function()
      local path = dir .. "/echo.sock"
      local srv = lasync.start_unix_server(echo, path)
      assert.are.equal(path, srv:address())
      assert.are.equal(1, select("#", srv:address()))
      assert.are.same({ { path = path } }, srv:sockets())
      assert.are.equal("lasync.Server: " .. path, tostring(srv))
      assert.is_true(srv:is_serving())
      assert.is_true(is_socket(path))
      local r, w = lasync.open_unix_connection(path)
      assert.are.equal(path, w:get_extra_info("peername"))
      assert.are.equal("integer", math.type(w:get_extra_info("socket")))
      w:write("unix\n")
      assert.are.equal("unix\n", r:readline())
      w:close()
      srv:close()
      srv:wait_closed()
      assert.is_false(exists(path))
      assert.are.same({}, srv:sockets())
    end, 2)
  end)

  it("open_unix_connection: option limit; a missing path is an OSError",
    function()
      local dir, cleanup = tempdir()
      finally(cleanup)
      helper.run(function()
        local path = dir .. "/s.sock"
        local srv = lasync.start_unix_server(function(_, w)
          w:write("0123456789\nok\n")
          w:close()
        end, path)
        local r, w = lasync.open_unix_connection(path, { limit = 4 })
        local err = helper.error_of(r.readline, r)
        assert(lasync.is_error(err, lasync.LimitOverrunError),
          helper.show(err))
        assert.are.equal("ok\n", r:readline())
        w:close()
        srv:close()
        srv:wait_closed()
        local missing = dir .. "/none.sock"
        err = helper.error_of(lasync.open_unix_connection, missing)
        assert_os_error(err, "ENOENT", "open_unix_connection", missing)
        assert.are.equal("lasync.open_unix_connection: no such file or " ..
          "directory (" .. missing .. ")", err.message)
      end, 2)
    end)

  it("a stale socket file is replaced", function()
    local dir, cleanup = tempdir()
    finally(cleanup)
    local path = dir .. "/stale.sock"
    -- a process that leaves its socket file behind (os.exit: no cleanup)
    local status, _, err = helper.run_script(([[
      lasync.start_unix_server(function() end, %q)
      os.exit(0)
    ]]):format(path))
    assert.are.equal(0, status, err)
    assert.is_true(is_socket(path), "no stale socket file was left")
    helper.run(function()
      local srv = lasync.start_unix_server(function(_, w)
        w:write("fresh")
        w:close()
      end, path)
      local r, w = lasync.open_unix_connection(path)
      assert.are.equal("fresh", r:read())
      w:close()
      srv:close()
      srv:wait_closed()
      assert.is_false(exists(path))
    end, 2)
  end)

  it("a file that is not a socket is left alone: EADDRINUSE", function()
    local dir, cleanup = tempdir()
    finally(cleanup)
    local path = dir .. "/plain"
    local f = assert(io.open(path, "w"))
    f:write("keep me")
    f:close()
    helper.run(function()
      local err = helper.error_of(lasync.start_unix_server, echo, path)
      assert_os_error(err, "EADDRINUSE", "start_unix_server", path)
    end, 2)
    f = assert(io.open(path))
    assert.are.equal("keep me", f:read("a"))
    f:close()
  end)

  it("closing a server whose file was replaced leaves the new file",
    function()
      local dir, cleanup = tempdir()
      finally(cleanup)
      helper.run(function()
        local path = dir .. "/shared.sock"
        local old = lasync.start_unix_server(echo, path)
        local new = lasync.start_unix_server(function(_, w)
          w:write("new")
          w:close()
        end, path) -- replaces the file (asyncio removes any socket file)
        old:close()
        old:wait_closed()
        local still = is_socket(path)
        local reply
        if still then
          local r, w = lasync.open_unix_connection(path)
          reply = r:read()
          w:close()
        end
        new:close()
        new:wait_closed()
        assert.is_true(still, "the old server removed the new one's file")
        assert.are.equal("new", reply)
      end, 2)
    end)

  it("errors: handler, path too long", function()
    helper.run(function()
      raises_msg("lasync.start_unix_server: the handler must be a " ..
        "function (got string)", lasync.start_unix_server, "h", "/tmp/x")
      raises_msg("lasync.start_unix_server: path too long",
        lasync.start_unix_server, echo, "/tmp/" .. string.rep("x", 300))
      raises_msg("lasync.start_unix_server: path must be a string (got no " ..
        "value)", lasync.start_unix_server, echo)
      raises_msg("lasync.open_unix_connection: path must be a string (got " ..
        "no value)", lasync.open_unix_connection)
    end, 2)
  end)

  it("a <close> variable closes it and removes the file", function()
    local dir, cleanup = tempdir()
    finally(cleanup)
    helper.run(function()
      local path = dir .. "/c.sock"
      local kept
      do
        local srv <close> = lasync.start_unix_server(echo, path)
        kept = srv
      end
      assert.is_false(kept:is_serving())
      kept:wait_closed()
      assert.is_false(exists(path))
    end, 2)
  end)
end)
