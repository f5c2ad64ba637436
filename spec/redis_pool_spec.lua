-- lasync.redis's pool resets a connection given back before it lends it
-- again (as redis-py and asyncpg do): an open MULTI gets DISCARD, a
-- WATCH gets UNWATCH, a SELECT of another db is undone; a connection in
-- subscribe mode, or with replies still to come, is closed instead.
local helper = require "helper"
local server = require "redis_server"
local lasync = helper.lasync
local redis = require "lasync.redis"

local describe_if = server.available() and describe or pending

-- The db a connection has selected, as the server sees it.
local function db_of(red)
  return tonumber(red:call("CLIENT", "INFO"):match(" db=(%d+)"))
end

describe_if("lasync.redis.pool", function()
  local srv
  setup(function() srv = server.start() end)
  teardown(function() srv.stop() end)

  local function run(body, opts)
    return helper.run(function()
      local o = { path = srv.path, max = 1 }
      for k, v in pairs(opts or {}) do o[k] = v end
      local pool <close> = redis.pool(o)
      local other <close> = redis.connect { path = srv.path }
      other:call("FLUSHALL")
      return body(pool, other)
    end)
  end

  it("discards an open MULTI", function()
    run(function(pool)
      local red = pool:acquire()
      red:call("MULTI")
      assert.equal("QUEUED", red:set("k", "v"))
      pool:release(red)
      local again = pool:acquire()
      assert.equal(red, again)
      assert.is_nil(again:get("k"))
      assert.equal("OK", again:set("k", "w"))
      pool:release(again)
      -- a MULTI inside a pipeline counts too
      red = pool:acquire()
      red:pipeline(function(p) p:call("MULTI"):call("SET", "k", "x") end)
      pool:release(red)
      assert.equal("w", pool:call("GET", "k"))
    end)
  end)

  it("unwatches WATCHed keys", function()
    run(function(pool, other)
      local red = pool:acquire()
      red:watch("w")
      pool:release(red)
      other:set("w", 1)
      local again = pool:acquire()
      assert.equal(red, again)
      local res = again:transaction(function(p) p:call("SET", "t", 1) end)
      assert.same({ "OK", n = 1 }, res)
      pool:release(again)
    end)
  end)

  it("goes back to the pool's db after a SELECT", function()
    run(function(pool)
      local red = pool:acquire()
      assert.equal(3, db_of(red))
      red:call("select", 5)
      assert.equal(5, db_of(red))
      pool:release(red)
      local again = pool:acquire()
      assert.equal(red, again)
      assert.equal(3, db_of(again))
      pool:release(again)
    end, { db = 3 })
    run(function(pool)
      local red = pool:acquire()
      red:call("SELECT", "2")
      pool:release(red)
      assert.equal(0, pool:with(db_of))
    end)
  end)

  it("closes a connection left in subscribe mode", function()
    run(function(pool, other)
      local red = pool:acquire()
      red:call("SUBSCRIBE", "ch")
      pool:release(red)
      assert.is_true(red.closed)
      assert.equal(0, pool.count)
      other:publish("ch", "lost")
      local again = pool:acquire()
      assert.not_equal(red, again)
      assert.equal("PONG", again:ping())
      pool:release(again)
      assert.equal(1, pool.count)
    end)
  end)

  it("closes a connection whose replies are still to come", function()
    run(function(pool, other)
      local red = pool:acquire()
      -- a blocking pop given up by its task: the server still blocks
      local t = lasync.spawn(red.call, red, "BLPOP", "nolist", 0)
      lasync.sleep(0.01)
      t:cancel()
      helper.assert_cancelled(t)
      pool:release(red)
      assert.is_true(red.closed)
      local again = pool:acquire()
      assert.not_equal(red, again)
      other:rpush("nolist", "x")
      assert.equal("x", again:lpop("nolist"))
      pool:release(again)
    end)
  end)
end)
