-- Issue 14: tasks that wait for a connection another task is making
-- again must not share its fate. Cancelling a waiter cancelled the
-- shared future of the attempt (so every other waiter got a
-- CancelledError and the connecting task raised on set_result), and
-- cancelling the connecting task failed the waiters with its
-- CancelledError. And a connection closed while a task connected it
-- again kept the new socket and its reader task.
local helper = require "helper"
local server = require "redis_server"
local lasync = helper.lasync
local redis = require "lasync.redis"

local describe_if = server.available() and describe or pending

describe_if("lasync.redis reconnection", function()
  local srv
  setup(function() srv = server.start() end)
  teardown(function() srv.stop() end)

  it("survives the cancellation of a waiter and of the connecting task",
    function()
    helper.run(function()
      local r <close> = redis.connect { path = srv.path, db = 1 }
      local killer <close> = redis.connect { path = srv.path }
      r:set("k", "v")
      killer:call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
      helper.wait_until(function() return r.link.err ~= nil end)
      local a = lasync.spawn(function() return r:get("k") end)
      local b = lasync.spawn(function() return r:get("k") end)
      local c = lasync.spawn(function() return r:get("k") end)
      lasync.sleep(0)
      b:cancel()
      a:cancel()
      helper.assert_cancelled(b)
      helper.assert_cancelled(a)
      assert.equal("v", c:await())
      assert.equal("v", r:get("k"))
    end)
  end)
  it("closing while a task connects again leaves no connection behind",
    function()
    helper.run(function()
      local r = redis.connect { path = srv.path, db = 1 }
      local killer <close> = redis.connect { path = srv.path }
      killer:call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
      helper.wait_until(function() return r.link.err ~= nil end)
      local a = lasync.spawn(function() return r:get("k") end)
      lasync.sleep(0)
      r:close()
      local e = helper.error_of(lasync.await, a)
      assert.is_true(lasync.is_error(e, redis.ConnectionError))
      assert.matches("the connection is closed", e.message)
    end)
  end)
end)
