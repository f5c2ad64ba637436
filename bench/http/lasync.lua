-- httphello / httpjson / httpidle server: lasync.http's App (issue 12), as
-- a user writes it: GET / answers the 13-byte text "Hello, world\n", GET
-- /json a small table encoded per request by http.json. The file is the
-- main task. Until lasync.http exists it prints one SKIP line with the
-- reason and exits 0; with the argument "probe" it only says whether it can
-- run (run.sh asks before it starts it).
-- usage: lasync http/lasync.lua PORT | lasync http/lasync.lua probe
local lasync = rawget(_G, "lasync") or require "lasync"

local args = arg or {}

-- lasync.http, whether a field of the module or its own module
local function find_http()
  local ok, http = pcall(function() return lasync.http end)
  if ok and type(http) == "table" then return http end
  ok, http = pcall(require, "lasync.http")
  if ok and type(http) == "table" then return http end
end
local http = find_http()
if not http or http.App == nil then
  print('SKIP reason="lasync.http.App does not exist in this build"')
  return
end
if args[1] == "probe" then print("OK") return end

local PORT = assert(tonumber(args[1]), "usage: lasync.lua PORT")
local n = 0
local app = http.App()
app:get("/", function(req) return "Hello, world\n" end)
app:get("/json", function(req)
  n = n + 1
  return http.json{message = "Hello, world", n = n}
end)
app:run{host = "127.0.0.1", port = PORT}
