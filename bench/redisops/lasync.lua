-- redisops: C tasks (default 50) each alternate SET k v / GET k over 1000
-- keys with 100-byte values, on one lasync.redis connection (automatic
-- pipelining) or, with MODE=pool, through a pool of C connections (each
-- task holds one for its whole run). WARM operations first (not timed),
-- then N operations timed. usage: lasync.lua SOCKET [N] [C] [WARM]
-- (MODE=conn|pool in the environment); `lasync.lua probe` prints OK.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
if arg[1] == "probe" then print("OK") return end
local SOCK = assert(arg[1], "usage: lasync.lua SOCKET [N] [C] [WARM]")
local N = tonumber(arg[2]) or 200000
local C = tonumber(arg[3]) or 50
local WARM = tonumber(arg[4]) or 20000
local MODE = os.getenv("MODE") or "conn"
local redis = lasync.redis

local VALUE = string.rep("v", 100)
local KEYS = {}
for i = 1, 1000 do KEYS[i] = "key:" .. i end

-- task t's share of ops operations: SET then GET of one key, round the
-- 1000 keys from its own offset
local function work(red, t, ops)
  local k = (t * 20) % 1000
  for _ = 1, ops // 2 do
    local key = KEYS[k + 1]
    red:set(key, VALUE)
    local v = red:get(key)
    if #v ~= 100 then error("redisops: GET returned " .. #v .. " bytes") end
    k = (k + 1) % 1000
  end
end

local function round(conn_of, ops)
  lasync.task_group(function(tg)
    for t = 1, C do
      tg:spawn(function()
        local red, give = conn_of()
        work(red, t, ops // C)
        if give then give(red) end
      end)
    end
  end)
end

lasync.run(function()
  local conn_of
  if MODE == "pool" then
    local pool = redis.pool { path = SOCK, max = C }
    conn_of = function()
      return pool:acquire(), function(r) pool:release(r) end
    end
  else
    local red = redis.connect { path = SOCK }
    conn_of = function() return red end
  end
  round(conn_of, WARM)
  local t0 = B.now()
  round(conn_of, N)
  local dt = B.now() - t0
  B.result("RESULT workload=redisops peer=%s n=%d seconds=%.6f rate=%.0f " ..
    "rss_kb=%d conc=%d", MODE == "pool" and "lasyncpool" or "lasync", N,
    dt, N / dt, B.peak_rss_kb(), C)
  os.exit(0)
end)
