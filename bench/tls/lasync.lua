-- TLS echo server: lasync streams over TLS, the API of issue 11
-- (lasync.ssl.context, start_server's ssl option); the same handler as
-- echo/lasync.lua. The file is the main task. Until lasync.ssl exists it
-- prints one SKIP line with the reason and exits 0; with the argument
-- "probe" it only says whether it can run (run.sh asks before it starts it).
-- usage: lasync tls/lasync.lua PORT CERTFILE KEYFILE | lasync tls/lasync.lua probe
local lasync = rawget(_G, "lasync") or require "lasync"

local args = arg or {}

-- lasync.ssl, whether a field of the module or its own module
local function find_ssl()
  local ok, ssl = pcall(function() return lasync.ssl end)
  if ok and type(ssl) == "table" then return ssl end
  ok, ssl = pcall(require, "lasync.ssl")
  if ok and type(ssl) == "table" then return ssl end
end
local ssl = find_ssl()
if not ssl or ssl.context == nil then
  print('SKIP reason="lasync.ssl.context does not exist in this build"')
  return
end
if args[1] == "probe" then print("OK") return end

local PORT = assert(tonumber(args[1]), "usage: lasync.lua PORT CERTFILE KEYFILE")
local ctx = ssl.context{purpose = "server", certfile = args[2],
  keyfile = args[3]}

local server = lasync.start_server(function(reader, writer)
  while true do
    local data = reader:read(65536)
    if data == "" then break end
    writer:write(data)
  end
  writer:close()
end, "127.0.0.1", PORT, {ssl = ctx})
server:serve_forever()
