-- spec/pg_spec.lua: lasync.pg against a real PostgreSQL (spec/pg_server.lua
-- starts a throwaway cluster on a Unix socket; the specs are pending only
-- when PostgreSQL is not installed).
local helper = require "helper"
local pg_server = require "pg_server"
local lasync = helper.lasync
local pg = require "lasync.pg"

describe("lasync.pg", function()
  local srv, why

  -- pending only without PostgreSQL's programs; a server that is
  -- installed but does not start fails every spec
  pg_server.for_suite(setup, teardown, function(s, w) srv, why = s, w end)

  -- run body(conn) in a task with a fresh connection, closed afterwards
  local function with_conn(body, timeout)
    if not srv then
      pending(why)
      return
    end
    helper.run(function()
      local conn <close> = pg.connect(srv.dsn)
      body(conn)
    end, timeout)
  end

  describe("connect", function()
    it("takes a conninfo string, a URI and a table of keywords", function()
      if not srv then return pending(why) end
      helper.run(function()
        local uri = ("postgresql:///postgres?host=%s&user=postgres")
          :format(srv.dir)
        for _, dsn in ipairs { srv.dsn, uri, srv.params } do
          local c <close> = pg.connect(dsn)
          assert.equal(1, c:fetchval("SELECT 1"))
          assert.is_false(c:is_closed())
        end
      end)
    end)

    it("fails with an OSError carrying libpq's message", function()
      if not srv then return pending(why) end
      helper.run(function()
        local e = helper.error_of(pg.connect, "host=" .. srv.dir ..
          " user=postgres dbname=nosuchdb")
        assert.is_true(lasync.is_error(e, lasync.OSError), helper.show(e))
        assert.matches('database "nosuchdb" does not exist', e.message, 1,
          true)
        e = helper.error_of(pg.connect, "host=/nonexistent/dir")
        assert.is_true(lasync.is_error(e, lasync.OSError), helper.show(e))
        e = helper.error_of(pg.connect, "nokey=1")
        assert.is_true(lasync.is_error(e, lasync.OSError), helper.show(e))
        assert.matches("invalid connection option", e.message, 1, true)
      end)
    end)

    it("checks its arguments before connecting", function()
      helper.raises_msg("lasync.pg.connect: the dsn must be a string",
        pg.connect, 42)
      helper.raises_msg("not inside a task", pg.connect, "host=/x")
    end)

    it("close is idempotent and a closed connection refuses queries",
      function()
        with_conn(function(c)
          c:close()
          c:close()
          assert.is_true(c:is_closed())
          helper.raises_msg("the connection is closed", c.fetch, c,
            "SELECT 1")
        end)
      end)

    it("closing fails the query in flight with an OSError", function()
      with_conn(function(c)
        local t = lasync.spawn(c.fetchval, c, "SELECT pg_sleep(10)")
        lasync.sleep(0.01)
        c:close()
        local ok, e = pcall(t.await, t)
        assert.is_false(ok)
        assert.is_true(lasync.is_error(e, lasync.OSError), helper.show(e))
        assert.is_true(c:is_closed())
      end)
    end)
  end)

  describe("queries", function()
    it("execute returns the command tag and the row count", function()
      with_conn(function(c)
        assert.equal("CREATE TABLE",
          c:execute("CREATE TEMP TABLE t (x int, y text)"))
        local tag, n = c:execute("INSERT INTO t VALUES ($1, $2), ($3, $4)",
          1, "a", 2, "b")
        assert.same({ "INSERT 0 2", 2 }, { tag, n })
        tag, n = c:execute("UPDATE t SET y = $1", "z")
        assert.same({ "UPDATE 2", 2 }, { tag, n })
      end)
    end)

    it("fetch gives rows by column name, or positional, with names and " ..
      "types", function()
      with_conn(function(c)
        local rows = c:fetch("SELECT g AS n, g * 2 AS d FROM " ..
          "generate_series(1, $1) g", 3)
        assert.equal(3, #rows)
        assert.same({ n = 2, d = 4 }, rows[2])
        assert.same({ "n", "d" }, rows.names)
        assert.same({ 23, 23 }, rows.types)
        rows = c:fetch({ "SELECT 1, 'two'", positional = true })
        assert.same({ 1, "two" }, rows[1])
        assert.same({}, { table.unpack(c:fetch("SELECT 1 WHERE false")) })
      end)
    end)

    it("fetchrow and fetchval", function()
      with_conn(function(c)
        assert.same({ a = 1, b = "x" }, c:fetchrow("SELECT 1 a, 'x' b"))
        assert.is_nil(c:fetchrow("SELECT 1 WHERE false"))
        assert.equal(42, c:fetchval("SELECT $1::int + 1", 41))
        assert.is_nil(c:fetchval("SELECT 1 WHERE false"))
        assert.equal(pg.null, c:fetchval("SELECT NULL"))
      end)
    end)

    it("maps every type both ways, NULL as pg.null", function()
      with_conn(function(c)
        local bin = ""
        for i = 0, 255 do bin = bin .. string.char(i) end
        local row = c:fetchrow([[SELECT $1::bool t, $2::bool f,
          $3::int2 i2, $4::int4 i4, $5::int8 i8, $6::float4 f4,
          $7::float8 f8, $8::numeric num, $9::text txt, $10::varchar vc,
          $11::bytea b, $12::json j, $13::jsonb jb, $14::int n1,
          $15::text n2, '2024-02-29'::date d,
          '2024-02-29 12:34:56'::timestamp ts,
          'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid u,
          'NaN'::float8 nan, 'Infinity'::float8 inf]],
          true, false, -32768, 2147483647, math.maxinteger, 1.5,
          0.1, "12345678901234567890.123456789", "héllo", "",
          pg.bytea(bin), { a = { 1, 2 } }, { b = "c" }, nil, pg.null)
        assert.is_true(row.t)
        assert.is_false(row.f)
        assert.equal(-32768, row.i2)
        assert.equal(2147483647, row.i4)
        assert.equal(math.maxinteger, row.i8)
        assert.equal("integer", math.type(row.i8))
        assert.equal(1.5, row.f4)
        assert.equal(0.1, row.f8)
        assert.equal("12345678901234567890.123456789", row.num)
        assert.equal("héllo", row.txt)
        assert.equal("", row.vc)
        assert.equal(bin, row.b)
        assert.same({ 1, 2 }, row.j.a)
        assert.equal("c", row.jb.b)
        assert.equal(pg.null, row.n1)
        assert.equal(pg.null, row.n2)
        assert.equal("2024-02-29", row.d)
        assert.equal("2024-02-29 12:34:56", row.ts)
        assert.equal("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", row.u)
        assert.is_true(row.nan ~= row.nan)
        assert.equal(math.huge, row.inf)
        -- a float parameter goes out exactly, nan and infinities too
        assert.equal(1 / 3, c:fetchval("SELECT $1::float8", 1 / 3))
        assert.equal(-math.huge, c:fetchval("SELECT $1::float8",
          -math.huge))
        -- bytea with NUL bytes, as a column too
        c:execute("CREATE TEMP TABLE b (v bytea)")
        c:execute("INSERT INTO b VALUES ($1)", pg.bytea("a\0b"))
        assert.equal("a\0b", c:fetchval("SELECT v FROM b"))
      end)
    end)

    it("refuses a parameter it cannot send, before sending", function()
      with_conn(function(c)
        helper.raises_msg("lasync.pg.Connection:fetch: parameter $2: " ..
          "cannot send a function", c.fetch, c, "SELECT $1, $2", 1, print)
        helper.raises_msg("lasync.pg.bytea: expected a string", pg.bytea, 1)
        helper.raises_msg("the query must be a string", c.fetch, c, 1)
        assert.equal(1, c:fetchval("SELECT 1"))
      end)
    end)
  end)

  describe("errors", function()
    it("raise pg.Error with sqlstate, message, detail, hint, position",
      function()
        with_conn(function(c)
          local e = helper.raises(pg.Error, "pg.Error", c.fetch, c,
            "SELECT * FROM nosuchtable")
          assert.equal("42P01", e.sqlstate)
          assert.equal('relation "nosuchtable" does not exist', e.message)
          assert.equal(15, e.position)
          assert.equal("ERROR", e.severity)
          c:execute("CREATE TEMP TABLE u (k int PRIMARY KEY)")
          c:execute("INSERT INTO u VALUES (1)")
          e = helper.raises(pg.Error, "pg.Error", c.execute, c,
            "INSERT INTO u VALUES (1)")
          assert.equal("23505", e.sqlstate)
          assert.equal("Key (k)=(1) already exists.", e.detail)
          e = helper.raises(pg.Error, "pg.Error", c.fetchval, c,
            "SELECT $1::int", "x")
          assert.equal("22P02", e.sqlstate)
          -- the connection still works
          assert.equal(2, c:fetchval("SELECT 2"))
        end)
      end)
  end)

  describe("transactions", function()
    it("commit on return and roll back on error", function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE tx (v int)")
        local a, b = c:transaction(function(tc)
          assert.equal(c, tc)
          assert.equal("intrans", c:transaction_status())
          c:execute("INSERT INTO tx VALUES (1)")
          return "a", "b"
        end)
        assert.same({ "a", "b" }, { a, b })
        assert.equal("idle", c:transaction_status())
        local e = helper.error_of(c.transaction, c, function()
          c:execute("INSERT INTO tx VALUES (2)")
          error("boom", 0)
        end)
        assert.equal("boom", e)
        assert.equal("idle", c:transaction_status())
        assert.same({ { v = 1 } }, { table.unpack(c:fetch(
          "SELECT v FROM tx")) })
      end)
    end)

    it("nest as savepoints", function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE sp (v int)")
        c:transaction(function()
          c:execute("INSERT INTO sp VALUES (1)")
          pcall(c.transaction, c, function()
            c:execute("INSERT INTO sp VALUES (2)")
            c:execute("SELECT * FROM nosuchtable") -- aborts the savepoint
          end)
          c:transaction(function()
            c:execute("INSERT INTO sp VALUES (3)")
          end)
        end)
        local rows = c:fetch({ "SELECT v FROM sp ORDER BY v",
          positional = true })
        assert.same({ { 1 }, { 3 } }, { table.unpack(rows) })
      end)
    end)

    it("take isolation and readonly, checked first", function()
      with_conn(function(c)
        c:transaction(function()
          assert.equal("serializable",
            c:fetchval("SHOW transaction_isolation"))
          local e = helper.raises(pg.Error, "pg.Error", c.execute, c,
            "CREATE TEMP TABLE ro (v int)")
          assert.equal("25006", e.sqlstate)
        end, { isolation = "serializable", readonly = true })
        helper.raises_msg("unknown isolation 'bogus'", c.transaction, c,
          function() end, { isolation = "bogus" })
        helper.raises_msg("unknown option 'x'", c.transaction, c,
          function() end, { x = 1 })
        assert.equal("idle", c:transaction_status())
      end)
    end)
  end)

  describe("concurrency and cancellation", function()
    it("serializes the queries of several tasks on one connection",
      function()
        with_conn(function(c)
          local tasks = {}
          for i = 1, 20 do
            tasks[i] = lasync.spawn(function()
              return c:fetchval("SELECT $1::int * 10", i)
            end)
          end
          local res = lasync.gather(tasks)
          for i = 1, 20 do assert.equal(i * 10, res[i]) end
        end)
      end)

    it("cancels a running query within 100 ms and the connection works " ..
      "after", function()
        with_conn(function(c)
          local t0 = helper.now()
          local e = helper.error_of(lasync.wait_for,
            lasync.spawn(c.fetchval, c, "SELECT pg_sleep(10)"), 0.02)
          assert.is_true(lasync.is_timeout(e), helper.show(e))
          -- the next query waits for the drain, never sees a stale result
          assert.equal(7, c:fetchval("SELECT 7"))
          assert.is_true(helper.now() - t0 < 0.1 * helper.multiplier + 0.5)
          -- a cancelled task's query, then queries queued behind it
          local slow = lasync.spawn(c.fetchval, c, "SELECT pg_sleep(10)")
          local after = lasync.spawn(c.fetchval, c, "SELECT 8")
          lasync.sleep(0.02)
          slow:cancel()
          assert.equal(8, after:await())
          helper.assert_cancelled(slow)
          assert.equal("idle", c:transaction_status())
        end)
      end)
  end)

  describe("prepared statements", function()
    it("prepare once, run many times", function()
      with_conn(function(c)
        local st = c:prepare("SELECT $1::int + $2::int AS s")
        assert.equal(3, st:fetchval(1, 2))
        assert.same({ s = 7 }, st:fetchrow(3, 4))
        assert.equal(11, st:fetch(5, 6)[1].s)
        c:execute("CREATE TEMP TABLE ps (v int)")
        local ins = c:prepare("INSERT INTO ps VALUES ($1)")
        for i = 1, 3 do
          assert.same({ "INSERT 0 1", 1 }, { ins:execute(i) })
        end
        assert.equal(3, c:fetchval("SELECT count(*)::int FROM ps"))
        local e = helper.raises(pg.Error, "pg.Error", c.prepare, c,
          "SELEC 1")
        assert.equal("42601", e.sqlstate)
      end)
    end)
  end)

  describe("pool", function()
    local function with_pool(opts, body, timeout)
      if not srv then return pending(why) end
      helper.run(function()
        opts.dsn = srv.dsn
        local pool <close> = pg.pool(opts)
        body(pool)
      end, timeout)
    end

    it("runs 200 concurrent tasks on 10 connections", function()
      with_pool({ max = 10 }, function(pool)
        local tasks = {}
        for i = 1, 200 do
          tasks[i] = lasync.spawn(function()
            return pool:fetchval("SELECT $1::int, pg_sleep(0.001)", i)
          end)
        end
        local res = lasync.gather(tasks)
        for i = 1, 200 do assert.equal(i, res[i]) end
        assert.equal(10, pool._open)
        assert.equal(10, #pool._idle)
      end, 20)
    end)

    it("with, acquire and release, <close>; a released connection is " ..
      "reset", function()
        with_pool({ max = 1, min = 1 }, function(pool)
          assert.equal(1, pool._open)
          local v = pool:with(function(c)
            c:execute("SET application_name = 'x'")
            c:execute("BEGIN")
            return c:fetchval("SELECT 5")
          end)
          assert.equal(5, v)
          do
            local c <close> = pool:acquire()
            assert.equal("idle", c:transaction_status())
            assert.equal("", c:fetchval("SHOW application_name"))
          end
          local c = pool:acquire()
          pool:release(c)
          helper.raises_msg("not lent by this pool", pool.release, pool, c)
        end)
      end)

    it("serves waiters first come first served; a cancelled waiter " ..
      "leaves the line", function()
        with_pool({ max = 1 }, function(pool)
          local held = pool:acquire()
          local order = {}
          local function waiter(name)
            pool:with(function() order[#order + 1] = name end)
          end
          local a = lasync.spawn(waiter, "a")
          local b = lasync.spawn(waiter, "b")
          local c = lasync.spawn(waiter, "c")
          lasync.sleep(0.01)
          b:cancel()
          pool:release(held)
          lasync.gather({ a, c })
          helper.assert_cancelled(b)
          assert.same({ "a", "c" }, order)
        end)
      end)

    it("replaces a broken connection", function()
      with_pool({ max = 2 }, function(pool)
        local c = pool:acquire()
        local pid = c:fetchval("SELECT pg_backend_pid()")
        pool:release(c)
        -- kill the idle pooled connection's backend from another one
        local killer = pg.connect(srv.dsn)
        killer:fetchval("SELECT pg_terminate_backend($1)", pid)
        killer:close()
        -- the query in flight fails clearly, the next one reconnects
        local e = helper.error_of(pool.fetchval, pool, "SELECT 1")
        assert.is_true(lasync.is_error(e, lasync.OSError), helper.show(e))
        assert.equal(1, pool:fetchval("SELECT 1"))
        assert.is_true(pool._open <= 2)
      end)
    end)

    it("closes connections idle longer than idle_timeout, down to min",
      function()
        with_pool({ min = 1, max = 3, idle_timeout = 0.02 }, function(pool)
          local a, b, c = pool:acquire(), pool:acquire(), pool:acquire()
          pool:release(a)
          pool:release(b)
          pool:release(c)
          assert.equal(3, pool._open)
          lasync.sleep(0.03)
          local d <close> = pool:acquire()
          assert.equal(1, pool._open) -- the min one, lent again
          assert.equal(1, d:fetchval("SELECT 1"))
        end)
      end)

    it("checks its options first", function()
      helper.raises_msg("lasync.pg.pool: option 'dsn' must be a string",
        pg.pool, {})
      helper.raises_msg("lasync.pg.pool: unknown option 'size'", pg.pool,
        { dsn = "", size = 1 })
      helper.raises_msg("option 'max' must be an integer >= 1", pg.pool,
        { dsn = "", max = 0 })
      helper.raises_msg("option 'min' is larger than 'max'", pg.pool,
        { dsn = "", min = 3, max = 2 })
    end)
  end)

  describe("examples/pg_basics.lua", function()
    it("runs against the server", function()
      if not srv then return pending(why) end
      local code, out, err = helper.capture(("%s examples/pg_basics.lua %s")
        :format(helper.bin, helper.shell_quote(srv.dsn)))
      assert.equal(0, code, err)
      assert.equal(table.concat({
        "connected: PostgreSQL 15",
        "inserted: INSERT 0 1 (1 row)",
        "ada\t1815\ttrue",
        "grace\t1906\ttrue",
        "alan\t1912\tfalse",
        "transaction: 3 -> 4 users",
        'rolled back: duplicate key value violates unique constraint ' ..
          '"users_pkey" (23505)',
        "users: 4",
        'notified on "signups": grace+ada',
        "copied in: COPY 2",
        "copied out: barbara,1939|ken,1943",
        "users: 6", "" }, "\n"),
        (out:gsub("PostgreSQL (%d+)%.%d+", "PostgreSQL %1")))
    end)
  end)
end)
