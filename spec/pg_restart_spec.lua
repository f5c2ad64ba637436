-- spec/pg_restart_spec.lua: lasync.pg when the server goes away under it
-- (spec/pg_server.lua's pg_ctl restart / stop -m fast, which terminates
-- every session): the queries in flight fail with a clear error, a pool
-- replaces its broken connections, and queries succeed again once the
-- server is back.
local helper = require "helper"
local pg_server = require "pg_server"
local lasync = helper.lasync
local pg = require "lasync.pg"

describe("lasync.pg with a server restarted mid-run", function()
  local srv, why

  pg_server.for_suite(setup, teardown, function(s, w) srv, why = s, w end)

  -- pg_ctl in a subprocess, so that the tasks go on meanwhile
  local function ctl(what)
    local p = lasync.subprocess.shell(srv.ctl_command(what),
      { stdout = "null", stderr = "null" })
    assert.equal(0, p:wait())
  end

  -- the error of a session the server dropped: libpq's OSError, or the
  -- server's own notice that it terminates the session (57P01)
  local function is_lost(e)
    if lasync.is_error(e, lasync.OSError) then return e.code == "EPG" end
    return lasync.is_error(e, pg.Error) and (e.sqlstate == "57P01" or
      e.sqlstate == "57P03")
  end

  it("50 tasks on a pool of 5: the queries in flight fail clearly, the " ..
    "pool recovers", function()
      if not srv then return pending(why) end
      helper.run(function()
        local pool <close> = pg.pool { dsn = srv.dsn, max = 5 }
        local restarted = false
        local ok_before, ok_after, lost, other = 0, 0, 0, {}
        local tasks = {}
        for i = 1, 50 do
          tasks[i] = lasync.spawn(function()
            local done_after = 0
            while done_after < 3 do
              local was = restarted
              local ok, v = pcall(pool.fetchval, pool,
                "SELECT $1::int FROM pg_sleep(0.002)", i)
              if ok then
                assert.equal(i, v)
                if was then
                  ok_after = ok_after + 1
                  done_after = done_after + 1
                else
                  ok_before = ok_before + 1
                end
              elseif is_lost(v) then
                lost = lost + 1
                lasync.sleep(0.01) -- the server may still be down
              else
                other[#other + 1] = helper.show(v)
                return
              end
            end
          end)
        end
        lasync.sleep(0.1)
        ctl("restart")
        restarted = true
        lasync.gather(tasks)
        assert.same({}, other)
        assert.is_true(ok_before > 0)
        assert.is_true(lost > 0, "no query saw the restart")
        assert.equal(150, ok_after)
        assert.is_true(pool._open <= 5)
        assert.equal(1, pool:fetchval("SELECT 1"))
      end, 60)
    end)

  it("one connection: the query after the server died raises a clear " ..
    "error and is_closed says so", function()
      if not srv then return pending(why) end
      helper.run(function()
        local c <close> = pg.connect(srv.dsn)
        assert.equal(1, c:fetchval("SELECT 1"))
        ctl("stop")
        local e = helper.error_of(c.fetchval, c, "SELECT 2")
        local started = pcall(ctl, "start")
        assert.is_true(started)
        assert.is_true(is_lost(e), helper.show(e))
        assert.matches("lasync.pg.Connection:fetchval: ", tostring(e), 1,
          true)
        assert.is_true(c:is_closed())
        helper.raises_msg("the connection is closed", c.fetchval, c,
          "SELECT 3")
        local c2 <close> = pg.connect(srv.dsn)
        assert.equal(4, c2:fetchval("SELECT 4"))
      end, 60)
    end)

  it("a query in flight when the server stops fails clearly", function()
    if not srv then return pending(why) end
    helper.run(function()
      local c <close> = pg.connect(srv.dsn)
      local t = lasync.spawn(c.fetchval, c, "SELECT pg_sleep(10)")
      lasync.sleep(0.02)
      ctl("restart")
      local ok, e = pcall(t.await, t)
      assert.is_false(ok)
      assert.is_true(is_lost(e), helper.show(e))
      assert.is_true(c:is_closed())
      local c2 <close> = pg.connect(srv.dsn)
      assert.equal(5, c2:fetchval("SELECT 5"))
    end, 60)
  end)
end)
