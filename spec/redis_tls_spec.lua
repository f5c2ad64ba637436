-- lasync.redis over TLS (options ssl and server_hostname, passed to
-- lasync's streams) against a real redis-server with a TLS port, its
-- certificates made by spec/tls_helper.lua with the openssl command.
-- Pending when redis-server was built without TLS.
local helper = require "helper"
local server = require "redis_server"
local tls = require "tls_helper"
local lasync = helper.lasync
local redis = require "lasync.redis"

local describe_if = server.tls_available() and describe or pending

describe_if("lasync.redis over TLS", function()
  local srv, certs, ctx
  setup(function()
    certs = tls.certs()
    srv = server.start { tls = { cert = certs.server.cert,
      key = certs.server.key, ca = certs.ca.cert } }
  end)
  teardown(function()
    srv.stop()
    tls.cleanup()
  end)
  before_each(function()
    ctx = lasync.ssl.context { cafile = certs.ca.cert }
  end)

  it("runs commands, pipelined, over a verified connection", function()
    helper.run(function()
      local red <close> = redis.connect { port = srv.tls_port, ssl = ctx }
      assert.equal("OK", red:set("tls", "yes"))
      assert.equal("yes", red:get("tls"))
      local n = 0
      lasync.task_group(function(tg)
        for i = 1, 50 do
          tg:spawn(function()
            for j = 1, 20 do red:set("k" .. i, j) end
            n = n + 1
          end)
        end
      end)
      assert.equal(50, n)
      assert.equal("20", red:get("k7"))
      local named <close> = redis.connect { port = srv.tls_port, ssl = ctx,
        server_hostname = "localhost" }
      assert.equal("PONG", named:ping())
    end)
  end)

  it("refuses a certificate it cannot verify or for another name",
    function()
    helper.run(function()
      -- ssl = true: the system's CAs, which do not know the test CA
      local e = helper.error_of(redis.connect,
        { port = srv.tls_port, ssl = true })
      assert.is_true(lasync.is_error(e, lasync.SSLError))
      e = helper.error_of(redis.connect, { port = srv.tls_port, ssl = ctx,
        server_hostname = "wrong.example" })
      assert.is_true(lasync.is_error(e, lasync.SSLError))
    end)
  end)

  it("reconnects over TLS, for the pool and subscriptions too",
    function()
    helper.run(function()
      local red <close> = redis.connect { port = srv.tls_port, ssl = ctx }
      local id = red:call("CLIENT", "ID")
      local other <close> = redis.connect { path = srv.path }
      other:call("CLIENT", "KILL", "ID", id)
      local ok = pcall(red.ping, red) -- may see the lost connection
      if not ok then assert.equal("PONG", red:ping()) end
      assert.not_equal(id, red:call("CLIENT", "ID"))
      local pool <close> = redis.pool { port = srv.tls_port, ssl = ctx,
        max = 2 }
      assert.equal("PONG", pool:call("PING"))
      local sub <close> = red:subscribe("tls-news")
      helper.wait_until(function()
        return other:call("PUBSUB", "NUMSUB", "tls-news")[2] == 1
      end)
      other:publish("tls-news", "hello")
      assert.equal("hello", sub:get().data)
    end)
  end)

  it("checks the options before connecting", function()
    helper.run(function()
      helper.raises_msg("lasync.redis.connect: option 'ssl' must be true, " ..
        "false or a lasync.ssl.context (got number)", redis.connect,
        { port = srv.tls_port, ssl = 5 })
      helper.raises_msg("lasync.redis.connect: option 'server_hostname' " ..
        "must be a string (got integer)", redis.connect,
        { port = srv.tls_port, ssl = ctx, server_hostname = 1 })
      helper.raises_msg("lasync.redis.pool: option 'server_hostname' " ..
        "needs 'ssl'", redis.pool, { server_hostname = "x" })
      helper.raises_msg("lasync.redis.connect: options 'path' and 'ssl' " ..
        "= true need option 'server_hostname'", redis.connect,
        { path = srv.path, ssl = true })
    end)
  end)
end)
