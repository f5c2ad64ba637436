-- Issue 10: lasync._stats counts registry refs and libuv handles too, so
-- that spec/helper.lua can check both return to their baseline after
-- every test (STYLE.md: "Counts are observable").
local helper = require "helper"
local lasync = helper.lasync

local function counts()
  collectgarbage()
  collectgarbage()
  return lasync._stats()
end

describe("lasync._stats", function()
  it("counts the handles of a loop, a server and its connections", function()
    local before = counts()
    assert.is_number(before.refs)
    assert.is_number(before.handles)
    helper.run(function()
      local inside = counts()
      -- the loop's own four and lasync.run's SIGINT watcher
      assert.are.equal(before.handles + 5, inside.handles)
      local srv = lasync.start_server(function(r, w) r:read(1) w:close() end,
                                      "127.0.0.1", 0)
      local port = srv:sockets()[1].port
      local _, w = lasync.open_connection("127.0.0.1", port)
      -- the listening socket, the client and the accepted connection
      helper.wait_until(function()
        return counts().handles == inside.handles + 3
      end)
      w:close()
      w:wait_closed()
      srv:close()
      srv:wait_closed()
      helper.wait_until(function() -- the accepted connection closes too
        return counts().handles == inside.handles
      end)
    end)
    assert.are.equal(before.handles, counts().handles)
  end)

  it("counts the refs of a running loop and of its exception handler",
     function()
    local before = counts()
    local loop = lasync.new_event_loop()
    loop:set_exception_handler(function() end)
    assert.are.equal(before.refs + 1, counts().refs)
    loop:set_exception_handler(function() end) -- replaces: still one
    assert.are.equal(before.refs + 1, counts().refs)
    loop:run_until_complete(function()
      assert.are.equal(before.refs + 2, counts().refs) -- the loop, running
    end)
    loop:close()
    assert.are.equal(before.refs, counts().refs)
  end)
end)
