-- Issue 9: a client that resets its connection made the server print a
-- full traceback per connection ("exception in connection handler ...
-- connection reset by peer"). A peer that goes away (a reset, EPIPE, EOF
-- in the middle of a read) is normal for a server: one line per
-- connection, and the traceback only in debug mode (--debug,
-- LASYNC_DEBUG=1, lasync.run(main, {debug = true})).
local helper = require "helper"

-- A server whose handler streams to a client that reads one byte and
-- resets (it closes with unread data); `n` such clients, one after the
-- other. Prints "done" when every handler has ended.
local SCRIPT = [[
local lasync = require "lasync"
local n, active = tonumber(arg[1]), 0
local big = ("x"):rep(1 << 20)
local srv = lasync.start_server(function(r, w)
  active = active + 1
  local _ <close> = setmetatable({}, { __close = function()
    active = active - 1 end })
  for _ = 1, 64 do w:write(big) w:drain() end
end, "127.0.0.1", 0)
local host, port = srv:address()
for _ = 1, n do
  local r, w = lasync.open_connection(host, port, { limit = 16 })
  r:read(1)
  w:abort() -- unread data: a RST
end
while active > 0 do lasync.sleep(0.005) end
srv:close()
print("done")
]]

local function run(env, n)
  local script = helper.temp_script(SCRIPT)
  local code, out, err = helper.capture(("%s %s %s %d"):format(env,
    helper.bin, script, n))
  os.remove(script)
  return code, out, err
end

describe("issue 9: peers that reset", function()
  it("are logged in one line per connection, no traceback", function()
    local code, out, err = run("", 3)
    assert.are.equal(0, code, err)
    assert.are.equal("done\n", out)
    local lines = {}
    for line in err:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(3, #lines, err)
    for _, line in ipairs(lines) do
      assert.matches("^lasync: connection lost in connection handler: " ..
        "OSError: lasync%.StreamWriter:drain: ", line)
    end
    assert.is_nil(err:find("traceback", 1, true))
  end)

  it("get the full report in debug mode", function()
    local code, out, err = run("LASYNC_DEBUG=1", 1)
    assert.are.equal(0, code, err)
    assert.are.equal("done\n", out)
    assert.matches("exception in connection handler", err, 1, true)
    assert.matches("stack traceback", err, 1, true)
  end)

  it("other errors keep their traceback", function()
    local script = helper.temp_script([[
local lasync = require "lasync"
local srv = lasync.start_server(function() error("handler bug") end,
  "127.0.0.1", 0)
local _, w = lasync.open_connection(srv:address())
lasync.sleep(0.02)
w:close()
srv:close()
]])
    local code, _, err = helper.capture(("%s %s"):format(helper.bin, script))
    os.remove(script)
    assert.are.equal(0, code, err)
    assert.matches("exception in connection handler", err, 1, true)
    assert.matches("handler bug", err, 1, true)
    assert.matches("stack traceback", err, 1, true)
  end)
end)
