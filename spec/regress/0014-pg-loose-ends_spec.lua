-- spec/regress/0014-pg-loose-ends_spec.lua: what the helpers of issue 14
-- found in lasync.pg. A value lasync.json refuses used to close a healthy
-- connection (the query had been read to its end); a FATAL error (the
-- backend terminated) left the connection looking open until the next
-- query failed; libpq printed server notices (RAISE NOTICE, the FATAL line
-- of pg_terminate_backend) on stderr.
local helper = require "helper"
local pg_server = require "pg_server"
local lasync = helper.lasync
local pg = require "lasync.pg"

describe("regress 0014: lasync.pg loose ends", function()
  local srv, why

  pg_server.for_suite(setup, teardown, function(s, w) srv, why = s, w end)

  local function with_conn(body, opts)
    if not srv then return pending(why) end
    helper.run(function()
      local conn <close> = pg.connect(srv.dsn, opts)
      body(conn)
    end)
  end

  it("a json value lasync.json refuses fails its query only", function()
    for _, pipeline in ipairs { true, false } do
      with_conn(function(c)
        -- simple protocol (with_conn), extended (pipelined), in a
        -- transaction, and from several tasks at once
        helper.raises_msg("lasync.json.decode", c.execute, c,
          "SELECT '1e400'::json")
        assert.is_false(c:is_closed())
        helper.raises_msg("lasync.json.decode", c.fetchval, c,
          "SELECT $1::json", "1e400")
        assert.is_false(c:is_closed())
        assert.equal(1, c:fetchval("SELECT $1::int", 1))
        local e = helper.error_of(c.transaction, c, function()
          c:execute("CREATE TEMP TABLE t (i int)")
          c:fetchval("SELECT '1e400'::json")
        end)
        assert.matches("lasync.json.decode", tostring(e), 1, true)
        assert.is_false(c:is_closed())
        assert.equal("idle", c:transaction_status())
        local tasks = {}
        for i = 1, 10 do
          tasks[i] = lasync.spawn(function()
            if i % 3 == 0 then
              return (pcall(c.fetchval, c, "SELECT $1::json", "1e400"))
            end
            return c:fetchval("SELECT $1::int", i)
          end)
        end
        local res = lasync.gather(tasks)
        for i = 1, 10 do
          if i % 3 == 0 then assert.is_false(res[i])
          else assert.equal(i, res[i]) end
        end
        assert.is_false(c:is_closed())
      end, { pipeline = pipeline })
    end
  end)

  it("a FATAL error closes the connection at once", function()
    -- the backend is terminated while a query of c runs: libpq 15 reads
    -- the FATAL error, then the end of the link before the query's
    -- ReadyForQuery (or sync), and reports a lost connection carrying
    -- the FATAL's text (an OSError, as for a dead server); a pg.Error
    -- FATAL or PANIC closes the connection as well
    for _, sql in ipairs { "SELECT pg_sleep(5)", "SELECT pg_sleep($1)" } do
      with_conn(function(c)
        local other <close> = pg.connect(srv.dsn)
        local pid = c:fetchval("SELECT pg_backend_pid()")
        local t = lasync.spawn(function()
          if sql:find("$1", 1, true) then return c:fetchval(sql, 5) end
          return c:execute(sql)
        end)
        lasync.sleep(0.05)
        assert.is_true(other:fetchval("SELECT pg_terminate_backend($1)",
          pid))
        local e = helper.error_of(t.await, t)
        if lasync.is_error(e, pg.Error) then
          assert.equal("57P01", e.sqlstate)
          assert.equal("FATAL", e.severity)
        else
          assert.is_true(lasync.is_error(e, lasync.OSError), helper.show(e))
          assert.matches("terminating connection due to administrator " ..
            "command", e.message, 1, true)
        end
        assert.is_true(c:is_closed())
        helper.raises_msg("the connection is closed", c.fetchval, c,
          "SELECT 1")
      end, { pipeline = sql:find("$1", 1, true) ~= nil })
    end
  end)

  it("a FATAL error of an idle connection (seen by its log listener) " ..
    "closes it", function()
    with_conn(function(c)
      local other <close> = pg.connect(srv.dsn)
      local got = lasync.Queue()
      c:add_log_listener(function(conn, msg)
        assert.equal(c, conn)
        got:put(msg)
      end)
      local pid = c:fetchval("SELECT pg_backend_pid()")
      assert.is_true(other:fetchval("SELECT pg_terminate_backend($1)", pid))
      local msg = lasync.wait_for(function() return got:get() end, 5)
      assert.equal("FATAL", msg.severity)
      assert.equal("57P01", msg.sqlstate)
      assert.is_true(c:is_closed())
    end)
  end)

  it("routes server notices to log listeners, never to stderr", function()
    with_conn(function(c)
      local got = {}
      local function listener(conn, msg)
        got[#got + 1] = msg
      end
      c:execute([[CREATE FUNCTION pg_temp.hello(n int) RETURNS int AS $$
        BEGIN
          RAISE NOTICE 'hello %', n USING DETAIL = 'some detail',
            HINT = 'a hint';
          RAISE WARNING 'careful';
          RETURN n;
        END $$ LANGUAGE plpgsql]])
      -- nobody listens: dropped
      assert.equal(1, c:fetchval("SELECT pg_temp.hello($1)", 1))
      c:add_log_listener(listener)
      assert.equal(2, c:fetchval("SELECT pg_temp.hello($1)", 2))
      c:execute("SELECT pg_temp.hello(3)")
      lasync.sleep(0) -- the listeners run in tasks of their own
      lasync.sleep(0)
      assert.equal(4, #got)
      assert.same({ "NOTICE", "00000", "hello 2", "some detail", "a hint" },
        { got[1].severity, got[1].sqlstate, got[1].message, got[1].detail,
          got[1].hint })
      assert.same({ "WARNING", "01000", "careful" },
        { got[2].severity, got[2].sqlstate, got[2].message })
      assert.equal("hello 3", got[3].message)
      c:remove_log_listener(listener)
      c:fetchval("SELECT pg_temp.hello($1)", 4)
      lasync.sleep(0)
      assert.equal(4, #got)
      helper.raises_msg("lasync.pg.Connection:add_log_listener: fn must " ..
        "be a function (got nil)", c.add_log_listener, c)
    end)
  end)

  it("writes nothing on stderr for notices", function()
    if not srv then return pending(why) end
    local code, out, err = helper.capture(("%s -e %s"):format(helper.bin,
      helper.shell_quote(([[
        local pg = require "lasync.pg"
        local c <close> = pg.connect(%q)
        c:execute("DO $$ BEGIN RAISE NOTICE 'loud'; END $$")
        c:execute("DROP TABLE IF EXISTS no_such_table")
        print("ok")]]):format(srv.dsn))))
    assert.equal(0, code, err)
    assert.equal("ok\n", out)
    assert.equal("", err)
  end)
end)
