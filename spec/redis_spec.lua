-- lasync.redis against a real redis-server (spec/redis_server.lua) on a
-- Unix socket and on TCP: every reply type, binary-safe arguments,
-- password and db, errors, automatic pipelining of concurrent callers,
-- a cancelled caller's reply dropped, pipelines, MULTI/EXEC, and
-- reconnecting after the server was killed.
local helper = require "helper"
local server = require "redis_server"
local lasync = helper.lasync
local redis = require "lasync.redis"

local describe_if = server.available() and describe or pending

describe_if("lasync.redis", function()
  local srv
  setup(function() srv = server.start { tcp = true } end)
  teardown(function() srv.stop() end)

  local function run(body, timeout)
    return helper.run(function()
      local r <close> = redis.connect { path = srv.path }
      r:flushdb()
      return body(r)
    end, timeout)
  end

  it("maps every reply type", function()
    run(function(r)
      assert.equal("OK", r:call("SET", "k", "v"))
      assert.equal("v", r:get("k"))
      assert.is_nil(r:get("missing"))
      assert.equal("PONG", r:ping())
      assert.equal(5, r:call("INCRBY", "n", 5))
      assert.equal("integer", math.type(r:call("INCR", "n")))
      r:rpush("l", "a", "b")
      assert.same({ "a", "b" }, r:lrange("l", 0, -1))
      assert.same({ "v", redis.null, "v" }, r:mget("k", "missing", "k"))
      assert.same({}, r:lrange("none", 0, -1))
      local e = helper.error_of(r.call, r, "LPUSH", "k", "x")
      assert.is_true(lasync.is_error(e, redis.ResponseError))
      assert.is_true(lasync.is_error(e, redis.Error))
      assert.equal("WRONGTYPE", e.code)
      assert.matches("WRONGTYPE Operation against a key", e.message)
    end)
  end)

  it("is binary-safe and sends numbers as Redis reads them", function()
    run(function(r)
      local bin = "a\0b\r\n$3\r\n" .. string.char(255, 0, 128)
      r:set(bin, bin)
      assert.equal(bin, r:get(bin))
      r:set("f", 0.1)
      assert.equal(0.1, tonumber(r:get("f")))
      r:set("i", math.maxinteger)
      assert.equal(tostring(math.maxinteger), r:get("i"))
      local big = string.rep("x", 1 << 20)
      r:set("big", big)
      assert.equal(big, r:get("big"))
    end)
  end)

  it("refuses bad arguments and options before connecting", function()
    helper.run(function()
      helper.raises_msg("lasync.redis.connect: unknown option 'hots'",
        redis.connect, { hots = "x" })
      helper.raises_msg("lasync.redis.connect: option 'db' must be an " ..
        "integer (got string)", redis.connect, { db = "1" })
      helper.raises_msg("lasync.redis.connect: options 'path' and " ..
        "'host'/'port' exclude each other", redis.connect,
        { path = "/x", port = 1 })
      helper.raises_msg("lasync.redis.connect: option 'path' contains a " ..
        "NUL byte", redis.connect, { path = "/tmp/x\0y" })
      helper.raises_msg("lasync.redis.connect: option 'host' contains a " ..
        "NUL byte", redis.connect, { host = "localhost\0.evil" })
      local r <close> = redis.connect { path = srv.path }
      helper.raises_msg("lasync.redis:call: argument 2 must be a string " ..
        "or a number (got table)", r.call, r, "GET", {})
      helper.raises_msg("lasync.redis:set: argument 3 must be a string " ..
        "or a number (got nil)", r.set, r, "k", nil)
    end)
  end)

  it("connects over TCP and selects a db", function()
    helper.run(function()
      local a <close> = redis.connect { port = srv.port, db = 3 }
      a:set("where", "db3")
      local b <close> = redis.connect { path = srv.path, db = 0 }
      assert.is_nil(b:get("where"))
      b:call("SELECT", 3)
      assert.equal("db3", b:get("where"))
      a:del("where")
    end)
  end)

  it("sends the password, and reports a wrong one", function()
    local s2 = server.start { password = "s3cret" }
    local ok, err = pcall(helper.run, function()
      local r <close> = redis.connect { path = s2.path,
        password = "s3cret" }
      assert.equal("PONG", r:ping())
      local e = helper.error_of(redis.connect, { path = s2.path,
        password = "wrong" })
      assert.is_true(lasync.is_error(e, redis.ResponseError))
      local r2 <close> = redis.connect { path = s2.path }
      assert.equal("NOAUTH", helper.error_of(r2.get, r2, "k").code)
    end)
    s2.stop()
    assert(ok, err)
  end)

  it("pipelines concurrent callers: 100k commands from 50 tasks",
    function()
    run(function(r)
      local per = 2000
      lasync.task_group(function(tg)
        for t = 1, 50 do
          tg:spawn(function()
            for i = 1, per do
              assert.equal(i, r:incr("c" .. t))
            end
          end)
        end
      end)
      local sum = 0
      for t = 1, 50 do sum = sum + tonumber(r:get("c" .. t)) end
      assert.equal(50 * per, sum)
    end, 60)
  end)

  it("drops the reply of a cancelled caller", function()
    run(function(r)
      r:set("a", "A")
      r:set("b", "B")
      -- BLPOP blocks on the server; the caller is cancelled meanwhile
      local t = lasync.spawn(function() return r:call("BLPOP", "q", 0.2) end)
      lasync.sleep(0.01)
      t:cancel()
      helper.assert_cancelled(t)
      -- the next caller gets its own reply, not BLPOP's nil
      assert.equal("A", r:get("a"))
      local t2 = lasync.spawn(function() return r:get("b") end)
      lasync.sleep(0)
      t2:cancel()
      assert.equal("A", r:get("a"))
      assert.equal("B", r:get("b"))
      -- wait_for around a command: the same
      local e = helper.error_of(lasync.wait_for, function()
        return r:call("BLPOP", "q", 0.2)
      end, 0.02)
      assert.is_true(lasync.is_timeout(e))
      assert.equal("B", r:get("b"))
    end)
  end)

  it("runs a pipeline in one batch, errors as values", function()
    run(function(r)
      local res = r:pipeline(function(p)
        p:call("SET", "x", 1):call("INCR", "x")
        p:call("GET", "nope")
        p:call("LPUSH", "x", "y")
        p:call("GET", "x")
      end)
      assert.equal(5, res.n)
      assert.equal("OK", res[1])
      assert.equal(2, res[2])
      assert.is_nil(res[3])
      assert.is_true(lasync.is_error(res[4], redis.ResponseError))
      assert.equal("2", res[5])
      assert.same({ n = 0 }, r:pipeline(function() end))
      helper.raises_msg("lasync.redis:pipeline: fn must be a function " ..
        "(got nil)", r.pipeline, r)
    end)
  end)

  it("runs MULTI/EXEC transactions", function()
    run(function(r)
      local res = r:transaction(function(p)
        p:call("SET", "t", "1")
        p:call("INCR", "t")
        p:call("LPUSH", "t", "z")
      end)
      assert.equal(3, res.n)
      assert.equal("OK", res[1])
      assert.equal(2, res[2])
      assert.equal("WRONGTYPE", res[3].code)
      -- a queued syntax error aborts EXEC
      local e = helper.error_of(r.transaction, r, function(p)
        p:call("SET", "t")
      end)
      assert.equal("EXECABORT", e.code)
      -- a WATCHed key changed by another client: EXEC gives nil
      local other <close> = redis.connect { path = srv.path }
      r:watch("t")
      other:set("t", "changed")
      assert.is_nil(r:transaction(function(p) p:call("SET", "t", "x") end))
      assert.equal("changed", r:get("t"))
    end)
  end)

  it("fails the in-flight commands clearly when the server dies, then " ..
    "reconnects for the next command", function()
    local s2 = server.start()
    local ok, err = pcall(helper.run, function()
      local r <close> = redis.connect { path = s2.path }
      r:set("k", "v")
      local t = lasync.spawn(function()
        return r:call("BLPOP", "q", 5)
      end)
      lasync.sleep(0.02)
      s2.kill()
      local e = helper.error_of(lasync.await, t)
      assert.is_true(lasync.is_error(e, redis.ConnectionError))
      assert.matches("lasync.redis: connection lost", e.message)
      -- while the server is down the next command fails to connect
      local e2 = helper.error_of(r.get, r, "k")
      assert.is_true(lasync.is_error(e2))
      s2.restart()
      assert.equal("PONG", r:ping())
      assert.is_nil(r:get("k")) -- a fresh server
      r:close()
      assert.is_true(lasync.is_error(helper.error_of(r.ping, r),
        redis.ConnectionError))
    end)
    s2.stop()
    assert(ok, err)
  end)
  it("delivers pub/sub messages on a connection of its own", function()
    run(function(r)
      local sub <close> = r:subscribe("news", "chat")
      sub:psubscribe("ev.*")
      -- the subscription is live once PUBLISH reaches a subscriber
      helper.wait_until(function() return r:publish("news", "x") > 0 end)
      assert.same({ kind = "message", channel = "news", data = "x" },
        sub:get())
      -- the first connection still serves commands
      r:set("k", "v")
      helper.wait_until(function()
        return r:publish("ev.1", "p") > 0
      end)
      assert.same({ kind = "pmessage", pattern = "ev.*", channel = "ev.1",
        data = "p" }, sub:get())
      local bin = "a\0\r\nb"
      r:publish("chat", bin)
      local got = {}
      lasync.spawn(function()
        for msg in sub:messages() do got[#got + 1] = msg.data end
      end)
      helper.wait_until(function() return #got == 1 end)
      assert.equal(bin, got[1])
      sub:unsubscribe("chat")
      helper.wait_until(function() return r:publish("chat", "y") == 0 end)
      sub:close()
      lasync.sleep(0)
      assert.equal(1, #got)
      assert.is_true(lasync.is_error(helper.error_of(sub.get, sub),
        redis.ConnectionError))
      helper.raises_msg("lasync.redis:subscribe: argument 1 must be a " ..
        "string (got number)", r.subscribe, r, 1)
      helper.raises_msg("lasync.redis:subscribe: no channel given",
        r.subscribe, r)
    end)
  end)

  it("restores subscriptions after the server restarted", function()
    local s2 = server.start()
    local ok, err = pcall(helper.run, function()
      local r <close> = redis.connect { path = s2.path }
      local sub <close> = r:subscribe("c")
      sub:psubscribe("p.*")
      helper.wait_until(function() return r:publish("c", "1") > 0 end)
      assert.equal("1", sub:get().data)
      s2.kill()
      s2.restart()
      helper.wait_until(function()
        local ok2, n = pcall(r.publish, r, "p.x", "2")
        return ok2 and n > 0
      end, 3)
      assert.equal("2", sub:get().data)
      helper.wait_until(function() return r:publish("c", "3") > 0 end)
      assert.equal("3", sub:get().data)
    end, 30) -- the restart blocks the loop while redis-server starts
    s2.stop()
    assert(ok, err)
  end)
  it("lends the connections of a pool: 200 tasks on 10", function()
    helper.run(function()
      local pool <close> = redis.pool { path = srv.path, max = 10 }
      local busy, most = 0, 0
      lasync.task_group(function(tg)
        for i = 1, 200 do
          tg:spawn(function()
            pool:with(function(red)
              busy = busy + 1
              most = math.max(most, busy)
              red:set("pool" .. i, i)
              assert.equal(tostring(i), red:get("pool" .. i))
              busy = busy - 1
            end)
          end)
        end
      end)
      assert.equal(10, most)
      assert.equal(10, pool.count)
      assert.equal("7", pool:call("GET", "pool7"))
      -- a waiter is cancellable and takes no connection
      local held = {}
      for i = 1, 10 do held[i] = pool:acquire() end
      local t = lasync.spawn(function() return pool:acquire() end)
      lasync.sleep(0)
      t:cancel()
      helper.assert_cancelled(t)
      -- a closed connection given back is replaced
      held[1]:close()
      for i = 1, 10 do pool:release(held[i]) end
      assert.equal(9, pool.count)
      assert.equal("PONG", pool:call("PING"))
      helper.raises_msg("lasync.redis.pool: option 'max' must be an " ..
        "integer >= 1 (got 0)", redis.pool, { max = 0 })
      helper.raises_msg("lasync.redis.pool: unknown option 'x'",
        redis.pool, { x = 1 })
      helper.raises_msg("lasync.redis.Pool:call: argument 1 must be a " ..
        "string or a number (got nil)", pool.call, pool, nil)
    end, 20)
  end)
  it("fails the waiting commands when the server breaks the protocol",
    function()
    helper.in_dir(function(dir)
      local fake = lasync.start_unix_server(function(r, w)
        r:readuntil("\r\n")
        w:write("?not resp\r\n")
        r:read()
        w:close()
      end, dir .. "/fake.sock")
      local red <close> = redis.connect { path = dir .. "/fake.sock" }
      local e = helper.error_of(red.ping, red)
      assert.is_true(lasync.is_error(e, redis.ConnectionError))
      assert.matches("protocol error", e.message)
      fake:close()
      fake:wait_closed()
    end)
  end)
end)
