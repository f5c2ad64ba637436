-- redis_counter.lua: a pool of tasks sharing a counter and a rate limit
-- in Redis, through one lasync.redis connection.
--
-- With redis-py's asyncio client:
--   r = redis.asyncio.Redis(unix_socket_path=path)
--   await r.incr("hits")
-- In lasync the calls are plain calls in a task, and the 20 worker tasks
-- share one connection: what they send in one turn of the loop goes out
-- in one write (automatic pipelining). Each hit counts in "hits"; each
-- user may make LIMIT hits per window, counted by INCR and EXPIRE in one
-- MULTI/EXEC transaction (a fixed-window rate limiter). The example
-- starts its own redis-server on a Unix socket in a temporary directory
-- and stops it at the end; without redis-server it says so and exits 0.
-- Run: build/lasync examples/redis_counter.lua
-- Expected output:
--   redis-server on a Unix socket in /tmp/lasync-redis-...
--   hits: 1000 (20 tasks x 50 hits)
--   alice: 30 allowed, 470 refused (limit 30 per window)
--   bob: 30 allowed, 470 refused (limit 30 per window)
--   done in 0.1 s

local redis = lasync.redis
local TASKS, HITS, LIMIT, WINDOW = 20, 50, 30, 60

if not os.execute("command -v redis-server >/dev/null 2>&1") then
  print("redis_counter: skipped (redis-server not found)")
  return
end

local dir = lasync.fs.mkdtemp("/tmp/lasync-redis-XXXXXX")
local path = dir .. "/redis.sock"
local server = lasync.subprocess.exec("redis-server", { "--port", "0",
  "--unixsocket", path, "--dir", dir, "--save", "", "--appendonly", "no" },
  { stdout = "null" })
print("redis-server on a Unix socket in " .. dir)

-- Wait until the server accepts connections.
local function connect()
  for _ = 1, 500 do
    local ok, red = pcall(redis.connect, { path = path })
    if ok then return red end
    lasync.sleep(0.01)
  end
  error("redis-server did not come up")
end

-- One hit of `user`: counted, then allowed if the user is under LIMIT.
local function hit(red, user)
  red:incr("hits")
  local key = "rate:" .. user
  local res = red:transaction(function(p)
    p:call("INCR", key)
    p:call("EXPIRE", key, WINDOW, "NX")
  end)
  return res[1] <= LIMIT
end

local start = lasync.get_running_loop():time()
local ok, err = pcall(function()
  local red <close> = connect()
  local allowed, refused = {}, {}
  lasync.task_group(function(tg)
    for t = 1, TASKS do
      tg:spawn(function()
        for i = 1, HITS do
          local user = (t + i) % 2 == 0 and "alice" or "bob"
          if hit(red, user) then
            allowed[user] = (allowed[user] or 0) + 1
          else
            refused[user] = (refused[user] or 0) + 1
          end
        end
      end)
    end
  end)
  print(("hits: %s (%d tasks x %d hits)"):format(red:get("hits"), TASKS,
    HITS))
  for _, user in ipairs { "alice", "bob" } do
    print(("%s: %d allowed, %d refused (limit %d per window)"):format(user,
      allowed[user], refused[user], LIMIT))
  end
end)
server:terminate()
server:wait()
os.execute("rm -rf '" .. dir .. "'")
if not ok then error(err, 0) end
print(("done in %.1f s"):format(lasync.get_running_loop():time() - start))
