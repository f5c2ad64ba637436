-- spec/pg_pool_spec.lua: lasync.pg's pool against a real PostgreSQL: the
-- reset of a released connection (asyncpg's: ROLLBACK, advisory locks,
-- cursors, UNLISTEN *, RESET ALL), the connection options it forwards,
-- a cancelled query's connection lent again, COPY through the pool.
local helper = require "helper"
local pg_server = require "pg_server"
local lasync = helper.lasync
local pg = require "lasync.pg"

describe("lasync.pg pool", function()
  local srv, why

  pg_server.for_suite(setup, teardown, function(s, w) srv, why = s, w end)

  local function with_pool(opts, body, timeout)
    if not srv then return pending(why) end
    helper.run(function()
      opts.dsn = srv.dsn
      local pool <close> = pg.pool(opts)
      body(pool)
    end, timeout)
  end

  it("resets a released connection as asyncpg does", function()
    with_pool({ max = 1 }, function(pool)
      local pid
      pool:with(function(c)
        pid = c:fetchval("SELECT pg_backend_pid()")
        c:execute("SET application_name = 'dirty'")
        c:fetchval("SELECT pg_advisory_lock(42)")
        c:execute("LISTEN chan")
        c:execute("DECLARE cur CURSOR WITH HOLD FOR SELECT 1")
        c:execute("BEGIN")
        c:execute("CREATE TEMP TABLE x (v int)")
      end)
      local c <close> = pool:acquire()
      assert.equal(pid, c:fetchval("SELECT pg_backend_pid()")) -- the same
      assert.equal("idle", c:transaction_status())
      assert.equal("", c:fetchval("SHOW application_name"))
      assert.equal(0, c:fetchval("SELECT count(*)::int FROM pg_locks " ..
        "WHERE locktype = 'advisory' AND pid = pg_backend_pid()"))
      assert.equal(0, c:fetchval("SELECT count(*)::int FROM " ..
        "pg_listening_channels()"))
      assert.equal(0, c:fetchval("SELECT count(*)::int FROM pg_cursors " ..
        "WHERE name = 'cur'"))
      assert.equal(pg.null, c:fetchval("SELECT to_regclass('x')::text"))
    end)
  end)

  it("a failed transaction is rolled back; a cancelled query's " ..
    "connection is drained and lent again", function()
      with_pool({ max = 1 }, function(pool)
        pcall(pool.with, pool, function(c)
          c:execute("BEGIN")
          c:execute("SELECT * FROM nosuchtable")
        end)
        assert.equal("idle", pool:with(function(c)
          return c:transaction_status()
        end))
        local e = helper.error_of(lasync.wait_for,
          lasync.spawn(pool.fetchval, pool, "SELECT pg_sleep(10)"), 0.02)
        assert.is_true(lasync.is_timeout(e), helper.show(e))
        assert.equal(3, pool:fetchval("SELECT 3"))
        assert.equal(1, pool._open)
      end)
    end)

  it("waiting for a connection is FIFO and wait_for can end it", function()
    with_pool({ max = 1 }, function(pool)
      local held = pool:acquire()
      local e = helper.error_of(lasync.wait_for,
        lasync.spawn(pool.acquire, pool), 0.01)
      assert.is_true(lasync.is_timeout(e), helper.show(e))
      assert.equal(0, #pool._waiters)
      local order = {}
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = lasync.spawn(function()
          pool:with(function() order[#order + 1] = i end)
        end)
      end
      lasync.sleep(0.005)
      pool:release(held)
      lasync.gather(tasks)
      assert.same({ 1, 2, 3, 4, 5 }, order)
    end)
  end)

  it("checks and forwards pg.connect's options pipeline and " ..
    "statement_cache_size", function()
      helper.raises_msg("lasync.pg.pool: option 'pipeline' must be a " ..
        "boolean (got number)", pg.pool, { dsn = "", pipeline = 1 })
      helper.raises_msg("lasync.pg.pool: option 'statement_cache_size' " ..
        "must be an integer >= 0", pg.pool, { dsn = "",
        statement_cache_size = -1 })
      local seen = {}
      local fake = { connect = function(dsn, opts)
        seen[#seen + 1] = { dsn, opts }
        return setmetatable({}, { __index = { is_closed = function()
          return false end, close = function() end } })
      end }
      helper.run(function()
        local p = require("lasync.pg_pool").new(fake, { dsn = "d", min = 1,
          pipeline = false, statement_cache_size = 0 })
        p = require("lasync.pg_pool").new(fake, { dsn = "e", min = 1 })
        p:close()
      end)
      assert.same({ { "d", { pipeline = false, statement_cache_size = 0 } },
        { "e", nil } }, seen)
    end)

  it("runs COPY through the pool", function()
    with_pool({ max = 2 }, function(pool)
      pool:execute("CREATE TABLE pc (v int)")
      assert.same({ "COPY 3", 3 }, { pool:copy_records_to_table("pc",
        { records = { { 1 }, { 2 }, { 3 } } }) })
      local out = {}
      pool:copy_from_query("SELECT sum(v) FROM pc WHERE v > $1", 1,
        { output = function(s) out[#out + 1] = s end })
      assert.equal("5\n", table.concat(out))
      pool:execute("DROP TABLE pc")
    end)
  end)
end)
