-- echo server: luv tcp + the coroutine-task wrapper; one task per connection
-- loops `data = stream:read(); stream:write(data)` (lib/luvtask.lua's stream).
-- usage: lua5.4 echo/luv54.lua PORT
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/../lib/?.lua;" .. package.path
local T = require "luvtask"
local uv = T.uv
local PORT = tonumber(arg[1]) or 9000

local function handle(client)
  client:nodelay(true)
  local s = T.stream(client)
  while true do
    local data = s:read()
    if not data then break end
    s:write(data)
  end
  s:close()
end

T.run(function()
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", PORT))
  assert(server:listen(1024, function(err)
    assert(not err, err)
    local client = uv.new_tcp()
    server:accept(client)
    T.spawn(handle, client)
  end))
end)
