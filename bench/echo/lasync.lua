-- echo server: lasync streams, one handler task per connection (asyncio's
-- start_server / reader.read / writer.write). The file is the main task.
-- usage: lasync echo/lasync.lua PORT
local lasync = rawget(_G, "lasync") or require "lasync"
local PORT = tonumber(arg and arg[1]) or 9000

local server = lasync.start_server(function(reader, writer)
  while true do
    local data = reader:read(65536)
    if data == "" then break end
    writer:write(data)
  end
  writer:close()
end, "127.0.0.1", PORT)
server:serve_forever()
