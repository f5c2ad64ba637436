-- spec/pg_listen_spec.lua: LISTEN/NOTIFY in lasync.pg against a real
-- PostgreSQL (spec/pg_server.lua): notifications reach an idle
-- connection's listeners and a busy one's, by channel; closing and
-- cancelling.
local helper = require "helper"
local pg_server = require "pg_server"
local lasync = helper.lasync
local pg = require "lasync.pg"

describe("lasync.pg LISTEN/NOTIFY", function()
  local srv, why

  pg_server.for_suite(setup, teardown, function(s, w) srv, why = s, w end)

  -- body(listening connection, notifying connection)
  local function with_conns(body, timeout)
    if not srv then
      pending(why)
      return
    end
    helper.run(function()
      local a <close> = pg.connect(srv.dsn)
      local b <close> = pg.connect(srv.dsn)
      body(a, b)
    end, timeout)
  end

  it("a notification from another connection reaches the listener",
    function()
      with_conns(function(a, b)
        local l <close> = a:listen("jobs")
        b:notify("jobs", "hello")
        local n = l:get()
        assert.equal("jobs", n.channel)
        assert.equal("hello", n.payload)
        assert.equal(b:fetchval("SELECT pg_backend_pid()"), n.pid)
        -- NOTIFY in SQL, and from a transaction: delivered at its commit
        b:execute("NOTIFY jobs, 'two'")
        b:transaction(function()
          b:notify("jobs", "three")
          b:notify("jobs", "four")
        end)
        assert.equal("two", l:get().payload)
        assert.equal("three", l:get().payload)
        assert.equal("four", l:get().payload)
      end)
    end)

  it("arrives while the listening connection runs queries too", function()
    with_conns(function(a, b)
      local l <close> = a:listen("busy")
      local t = lasync.spawn(a.fetchval, a,
        "SELECT pg_sleep(0.2)::text || $1", "x")
      lasync.sleep(0.05)
      b:notify("busy", "during")
      local n = l:get()
      assert.equal("during", n.payload)
      assert.equal("x", t:await())
    end)
  end)

  it("several channels, each to its listeners; callbacks too", function()
    with_conns(function(a, b)
      local l1 <close> = a:listen("one")
      local l2 <close> = a:listen("two")
      local l1b <close> = a:listen("one")
      local got = lasync.Queue()
      local function cb(conn, pid, channel, payload)
        assert.equal(a, conn)
        assert.is_number(pid)
        got:put_nowait(channel .. ":" .. payload)
      end
      a:add_listener("three", cb)
      b:notify("two", "b")
      b:notify("one", "a")
      b:notify("three", "c")
      b:notify("nobody", "x")
      assert.equal("a", l1:get().payload)
      assert.equal("a", l1b:get().payload)
      assert.equal("b", l2:get().payload)
      assert.equal("three:c", got:get())
      a:remove_listener("three", cb)
      -- the channel is not listened to any more: only "one" comes
      b:notify("three", "gone")
      b:notify("one", "last")
      assert.equal("last", l1:get().payload)
      assert.equal(0, got:qsize())
      -- a channel name that needs quoting
      local odd <close> = a:listen('We "quote"')
      b:notify('We "quote"', "q")
      assert.equal("q", odd:get().payload)
    end)
  end)

  it("carries any payload text unchanged", function()
    with_conns(function(a, b)
      local l <close> = a:listen("bytes")
      local payloads = { "", "it's $$ \\ \"q\" \n\t\r", "é ü 日本 🎉",
        ("x"):rep(7999) }
      for _, p in ipairs(payloads) do b:notify("bytes", p) end
      for _, p in ipairs(payloads) do assert.equal(p, l:get().payload) end
    end)
  end)

  it("iterates with for, ends at close; UNLISTEN on close", function()
    with_conns(function(a, b)
      local l = a:listen("iter")
      local seen = {}
      local t = lasync.spawn(function()
        for n in l do seen[#seen + 1] = n.payload end
        return "ended"
      end)
      b:notify("iter", "1")
      b:notify("iter", "2")
      helper.wait_until(function() return #seen == 2 end)
      l:close()
      l:close()
      assert.equal("ended", t:await())
      assert.same({ "1", "2" }, seen)
      assert.equal(0, #a:fetch("SELECT pg_listening_channels()"))
      helper.raises_msg("lasync.pg.Listener:get: the listener is closed",
        l.get, l)
    end)
  end)

  it("a listener's task can be cancelled", function()
    with_conns(function(a, b)
      local l <close> = a:listen("cancel")
      local t = lasync.spawn(l.get, l)
      lasync.sleep(0.01)
      t:cancel()
      helper.assert_cancelled(t)
      b:notify("cancel", "after")
      assert.equal("after", l:get().payload)
      assert.equal(1, a:fetchval("SELECT $1::int", 1))
    end)
  end)

  it("closing the connection ends the iteration with a clear error",
    function()
      with_conns(function(a)
        local l = a:listen("gone")
        local t = lasync.spawn(function()
          for _ in l do end
        end)
        lasync.sleep(0.01)
        a:close()
        local e = helper.error_of(t.await, t)
        assert.is_true(lasync.is_error(e, lasync.OSError), helper.show(e))
        assert.matches("lasync.pg.Listener:get: the connection is closed",
          e.message, 1, true)
        l:close()
      end)
    end)

  it("the server ending an idle listening connection ends the " ..
    "iteration with a clear error", function()
      with_conns(function(a, b)
        local l <close> = a:listen("killed")
        local pid = a:fetchval("SELECT pg_backend_pid()")
        local t = lasync.spawn(function()
          for _ in l do end
        end)
        lasync.sleep(0.01)
        assert.is_true(b:fetchval("SELECT pg_terminate_backend($1)", pid))
        local e = helper.error_of(t.await, t)
        assert.is_true(lasync.is_error(e, lasync.OSError), helper.show(e))
        assert.matches("the connection is closed", e.message, 1, true)
        assert.is_true(a:is_closed())
      end)
    end)

  it("_drop_listeners (the pool's reset) forgets them all", function()
    with_conns(function(a, b)
      local l = a:listen("dropped")
      local got = 0
      a:add_listener("dropped", function() got = got + 1 end)
      a:_drop_listeners()
      local e = helper.error_of(l.get, l)
      assert.matches("the connection is closed", tostring(e), 1, true)
      b:notify("dropped", "x")
      assert.equal(1, a:fetchval("SELECT $1::int", 1))
      assert.equal(0, got)
      l:close()
    end)
  end)

  it("checks its arguments", function()
    with_conns(function(a)
      helper.raises_msg("lasync.pg.Connection:listen: the channel must be",
        a.listen, a, "")
      helper.raises_msg("lasync.pg.Connection:listen: the channel must be",
        a.listen, a, "a\0b")
      helper.raises_msg("lasync.pg.Connection:notify: the payload must be",
        a.notify, a, "c", 5)
      helper.raises_msg("lasync.pg.Connection:add_listener: fn must be",
        a.add_listener, a, "c", 5)
      helper.raises_msg("lasync.pg.Connection:add_log_listener: fn must " ..
        "be a function (got string)", a.add_log_listener, a, "x")
    end)
  end)
end)
