-- workers1 / workers2 server: lasync.http's App whose GET / does about
-- 200 us of Lua work per request (ITERS steps of the minimal standard LCG,
-- seeded from a per-process request counter) and answers the result as
-- text. Started by workers/run.sh as `lasync -w N` (the LASYNC_WORKERS=N
-- form), every worker runs this file and the port is shared.
-- usage: lasync workers/lasync.lua PORT [ITERS]
local lasync = rawget(_G, "lasync") or require "lasync"
local http = lasync.http

local PORT = assert(tonumber(arg and arg[1]), "usage: lasync.lua PORT [ITERS]")
local ITERS = tonumber(arg[2]) or 16000

local count = 0
local app = http.App()
app:get("/", function()
  count = count + 1
  local x = 1 + count % 1000
  for _ = 1, ITERS do x = (x * 16807) % 2147483647 end
  return x .. "\n"
end)
app:run { host = "127.0.0.1", port = PORT }
