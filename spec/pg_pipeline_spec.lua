-- spec/pg_pipeline_spec.lua: lasync.pg's query path against a real
-- PostgreSQL (spec/pg_server.lua): the statement cache, the queries of
-- several tasks pipelined on one connection, what must leave the pipeline
-- and cancellation among pipelined queries.
local helper = require "helper"
local pg_server = require "pg_server"
local lasync = helper.lasync
local pg = require "lasync.pg"

describe("lasync.pg query path", function()
  local srv, why

  pg_server.for_suite(setup, teardown, function(s, w) srv, why = s, w end)

  local function with_conn(body, opts, timeout)
    if not srv then
      pending(why)
      return
    end
    helper.run(function()
      local conn <close> = pg.connect(srv.dsn, opts)
      body(conn)
    end, timeout)
  end

  -- the names of the connection's prepared statements, on the server
  local function statements(c)
    local names = {}
    for _, r in ipairs(c:fetch("SELECT name FROM pg_prepared_statements " ..
      "ORDER BY name")) do
      names[#names + 1] = r.name
    end
    return names
  end

  describe("pg.connect options", function()
    it("are checked before connecting", function()
      -- no task and no server needed: the options fail first
      helper.raises_msg("lasync.pg.connect: opts must be a table",
        pg.connect, "host=/x", 5)
      helper.raises_msg("lasync.pg.connect: unknown option 'pipe'",
        pg.connect, "host=/x", { pipe = true })
      helper.raises_msg("lasync.pg.connect: option 'statement_cache_size' " ..
        "must be an integer >= 0", pg.connect, "host=/x",
        { statement_cache_size = -1 })
      helper.raises_msg("lasync.pg.connect: option 'statement_cache_size' " ..
        "must be an integer >= 0", pg.connect, "host=/x",
        { statement_cache_size = 1.5 })
      helper.raises_msg("lasync.pg.connect: option 'pipeline' must be a " ..
        "boolean", pg.connect, "host=/x", { pipeline = "yes" })
    end)
  end)

  describe("statement cache", function()
    it("prepares a query with parameters once per connection", function()
      with_conn(function(c)
        for i = 1, 5 do
          assert.equal(i + 1, c:fetchval("SELECT $1::int + 1", i))
        end
        assert.equal(1, #statements(c))
        -- without parameters: the unnamed statement, nothing cached
        assert.equal(2, c:fetchval("SELECT 2"))
        assert.equal(1, #statements(c))
        -- a prepare that fails leaves nothing cached, and fails again
        for _ = 1, 2 do
          local e = helper.raises(pg.Error, "pg.Error", c.fetchval, c,
            "SELEC $1", 1)
          assert.equal("42601", e.sqlstate)
        end
        -- an error when running keeps the statement
        local e = helper.raises(pg.Error, "pg.Error", c.fetchval, c,
          "SELECT 1 / $1::int", 0)
        assert.equal("22012", e.sqlstate)
        assert.equal(1, c:fetchval("SELECT 1 / $1::int", 1))
        assert.equal(2, #statements(c))
      end)
    end)

    it("evicts the least recently used statement and deallocates it",
      function()
        with_conn(function(c)
          assert.equal(1, c:fetchval("SELECT $1::int AS a", 1))
          assert.equal(2, c:fetchval("SELECT $1::int AS b", 2))
          assert.equal(1, c:fetchval("SELECT $1::int AS a", 1)) -- a used
          assert.equal(3, c:fetchval("SELECT $1::int AS c", 3)) -- b out
          -- (no parameters: these queries stay out of the cache)
          local held = {}
          for _, r in ipairs(c:fetch("SELECT statement FROM " ..
            "pg_prepared_statements")) do
            held[r.statement] = true
          end
          assert.same({ ["SELECT $1::int AS a"] = true,
            ["SELECT $1::int AS c"] = true }, held)
        end, { statement_cache_size = 2 })
      end)

    it("is off with statement_cache_size = 0", function()
      with_conn(function(c)
        for i = 1, 3 do assert.equal(i, c:fetchval("SELECT $1::int", i)) end
        assert.same({}, statements(c))
      end, { statement_cache_size = 0 })
    end)

    it("prepares again a statement the server invalidated", function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE inv (a int)")
        c:execute("INSERT INTO inv VALUES ($1)", 1)
        assert.same({ a = 1 }, c:fetchrow("SELECT * FROM inv WHERE a = $1",
          1))
        -- the result type changes: 0A000 "cached plan must not change
        -- result type", then prepared again, as asyncpg does
        c:execute("ALTER TABLE inv ADD COLUMN b int DEFAULT 7")
        assert.same({ a = 1, b = 7 },
          c:fetchrow("SELECT * FROM inv WHERE a = $1", 1))
        -- statements dropped behind the cache's back: 26000, again
        c:execute("DEALLOCATE ALL")
        assert.same({ a = 1, b = 7 },
          c:fetchrow("SELECT * FROM inv WHERE a = $1", 1))
        -- in a transaction the error aborted it: raised, not retried
        c:execute("ALTER TABLE inv ADD COLUMN d int")
        local e = helper.error_of(c.transaction, c, function()
          return c:fetch("SELECT * FROM inv WHERE a = $1", 1)
        end)
        assert.is_true(lasync.is_error(e, pg.Error), helper.show(e))
        assert.equal("0A000", e.sqlstate)
        assert.equal("idle", c:transaction_status())
        assert.equal(1, #c:fetch("SELECT * FROM inv WHERE a = $1", 1))
      end)
    end)
  end)

  describe("pipelining", function()
    it("a failing query between two good ones fails alone", function()
      with_conn(function(c)
        local a = lasync.spawn(c.fetchval, c, "SELECT $1::int", 1)
        local b = lasync.spawn(c.fetchval, c, "SELECT 1 / $1::int", 0)
        local d = lasync.spawn(c.fetchval, c, "SELECT $1::int", 3)
        assert.equal(1, a:await())
        local e = helper.error_of(b.await, b)
        assert.is_true(lasync.is_error(e, pg.Error), helper.show(e))
        assert.equal("22012", e.sqlstate)
        assert.equal(3, d:await())
      end)
    end)

    it("matches the results of many tasks in order, both modes", function()
      for _, on in ipairs { true, false } do
        with_conn(function(c)
          local st = c:prepare("SELECT $1::int + 1")
          local tasks = {}
          for i = 1, 50 do
            tasks[i] = lasync.spawn(function()
              if i % 5 == 0 then return st:fetchval(i) - 1 end
              if i % 3 == 0 then
                return c:fetchrow({ "SELECT $1::int AS v, $2::text AS s",
                  positional = true }, i, "x" .. i)[1]
              end
              return c:fetchval("SELECT $1::int * 10", i) // 10
            end)
          end
          local res = lasync.gather(tasks)
          for i = 1, 50 do assert.equal(i, res[i]) end
        end, { pipeline = on })
      end
    end)

    it("runs multi-statement strings of execute outside the pipeline",
      function()
        with_conn(function(c)
          local t = lasync.spawn(c.fetchval, c, "SELECT $1::int", 5)
          local tag = c:execute("CREATE TEMP TABLE ms (v int); " ..
            "INSERT INTO ms VALUES (1), (2)")
          assert.equal("INSERT 0 2", tag)
          assert.equal(5, t:await())
          assert.equal(2, c:fetchval("SELECT count(*)::int FROM ms"))
          local e = helper.raises(pg.Error, "pg.Error", c.execute, c,
            "INSERT INTO ms VALUES (3); SELECT 1 / 0")
          assert.equal("22012", e.sqlstate)
          -- one implicit transaction: the insert is rolled back too
          assert.equal(2, c:fetchval("SELECT count(*)::int FROM ms"))
        end)
      end)

    it("keeps the connection to a transaction's task", function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE tx (v int)")
        local seen
        local inside = lasync.Event()
        local t = lasync.spawn(c.transaction, c, function()
          c:execute("INSERT INTO tx VALUES ($1)", 1)
          inside:set()
          lasync.sleep(0.05)
          c:execute("INSERT INTO tx VALUES ($1)", 2)
        end)
        inside:wait()
        -- waits for the commit: sees both rows or none, never one
        seen = c:fetchval("SELECT count(*)::int FROM tx WHERE v > $1", 0)
        t:await()
        assert.equal(2, seen)
        assert.equal("idle", c:transaction_status())
      end)
    end)
  end)

  describe("cancellation among pipelined queries", function()
    it("a cancelled task with two others in flight: those get their " ..
      "own results", function()
        with_conn(function(c)
          local t0 = helper.now()
          local slow = lasync.spawn(c.fetchval, c,
            "SELECT pg_sleep($1::int)::text", 10)
          local b = lasync.spawn(c.fetchval, c, "SELECT $1::text", "b")
          local d = lasync.spawn(c.fetchval, c, "SELECT $1::int", 4)
          lasync.sleep(0.05)
          slow:cancel()
          assert.equal("b", b:await())
          assert.equal(4, d:await())
          helper.assert_cancelled(slow)
          assert.is_true(helper.now() - t0 < 1 * helper.multiplier + 1)
          assert.equal(9, c:fetchval("SELECT $1::int", 9))
        end)
      end)

    it("a query queued behind others, cancelled, is dropped", function()
      with_conn(function(c)
        local a = lasync.spawn(c.fetchval, c,
          "SELECT pg_sleep(0.1)::text || $1", "a")
        local slow = lasync.spawn(c.fetchval, c,
          "SELECT pg_sleep($1::int)::text", 10)
        local d = lasync.spawn(c.fetchval, c, "SELECT $1::int", 4)
        lasync.sleep(0.02)
        slow:cancel()
        local t0 = helper.now()
        assert.equal("a", a:await())
        assert.equal(4, d:await())
        helper.assert_cancelled(slow)
        assert.is_true(helper.now() - t0 < 1 * helper.multiplier + 1)
      end)
    end)

    it("another task's query hit by the cancel request runs again",
      function()
        with_conn(function(c)
          -- h's answer is on its way when h is cancelled: the cancel
          -- request reaches the server while it runs b's pg_sleep
          local h = lasync.spawn(c.fetchval, c, "SELECT $1::int", 1)
          local b = lasync.spawn(c.fetchval, c,
            "SELECT pg_sleep(0.2)::text || $1", "b")
          lasync.sleep(0)
          h:cancel()
          assert.equal("b", b:await())
          helper.assert_cancelled(h)
          assert.equal(2, c:fetchval("SELECT $1::int", 2))
        end)
      end)

    it("random timeouts among many tasks never hand one another's result",
      function()
        with_conn(function(c)
          local bad, answered = 0, 0
          local tasks = {}
          for i = 1, 20 do
            tasks[i] = lasync.spawn(function()
              for k = 1, 10 do
                local v = i * 1000 + k
                local q = ({ "SELECT $1::int AS v%d",
                  "SELECT pg_sleep(0.002 * random()), $1::int AS v%d",
                  "SELECT $1::int / (($1::int %% 7) != 0)::int AS v%d" })
                  [k % 3 + 1]:format(k % 5) -- 15 queries, a cache of 3
                local ok, r = pcall(lasync.wait_for, lasync.spawn(c.fetchrow,
                  c, { q, positional = true }, v),
                  0.005 + math.random() * 0.05)
                if ok then
                  answered = answered + 1
                  if r[#r] ~= v then bad = bad + 1 end
                elseif not (lasync.is_timeout(r) or
                    lasync.is_error(r, pg.Error)) then
                  error(r, 0)
                end
              end
            end)
          end
          lasync.gather(tasks)
          assert.equal(0, bad)
          assert.equal(5, c:fetchval("SELECT $1::int", 5))
          assert.equal("idle", c:transaction_status())
        end, { statement_cache_size = 3 }, 60)
      end)

    it("wait_for around a pipelined query", function()
      with_conn(function(c)
        local e = helper.error_of(lasync.wait_for,
          lasync.spawn(c.fetchval, c, "SELECT pg_sleep($1::int)", 10), 0.02)
        assert.is_true(lasync.is_timeout(e), helper.show(e))
        assert.equal(7, c:fetchval("SELECT $1::int", 7))
      end)
    end)

    it("a transaction's task cancelled mid-query rolls back and frees " ..
      "the connection", function()
        with_conn(function(c)
          c:execute("CREATE TEMP TABLE cx (v int)")
          local t = lasync.spawn(c.transaction, c, function()
            c:execute("INSERT INTO cx VALUES ($1)", 1)
            c:execute("SELECT pg_sleep(10)")
          end)
          lasync.sleep(0.05)
          t:cancel()
          helper.assert_cancelled(t)
          assert.equal(0, c:fetchval("SELECT count(*)::int FROM cx"))
          assert.equal("idle", c:transaction_status())
        end)
      end)
  end)
end)
