-- spec/redis_server.lua: a throwaway redis-server for the specs, on a Unix
-- socket (and, when asked, a TCP port on 127.0.0.1) in a temp dir, with
-- no persistence; stopped and removed by stop(). available() is false
-- when the binary is missing (the specs are then pending).
local M = {}

local function sh(cmd)
  return os.execute(cmd)
end

function M.available()
  return sh("command -v redis-server >/dev/null 2>&1") == true
end

-- A free TCP port on 127.0.0.1 (the kernel's pick; free again at once).
local function free_port()
  local p = io.popen("python3 -c 'import socket; s=socket.socket(); " ..
    "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'")
  local port = tonumber(p:read("a"))
  p:close()
  return port
end

-- Whether redis-server was built with TLS (Debian's is: it links
-- OpenSSL); without it, the TLS specs are pending.
function M.tls_available()
  return M.available() and sh("ldd \"$(command -v redis-server)\" " ..
    "2>/dev/null | grep -q libssl") == true
end

-- start{password =, tcp = true, tls = {cert =, key =, ca =}} -> server
-- {dir, path, port, tls_port, stop}; tls adds a TLS port on 127.0.0.1
-- (clients need not show a certificate)
function M.start(opts)
  opts = opts or {}
  local dir = io.popen("mktemp -d /tmp/lasync-redis-XXXXXX"):read("l")
  local s = { dir = dir, path = dir .. "/redis.sock",
              pidfile = dir .. "/redis.pid" }
  s.port = opts.tcp and free_port() or 0
  local args = { "redis-server", "--daemonize yes", "--port", s.port,
    "--bind 127.0.0.1", "--unixsocket", s.path, "--unixsocketperm 700",
    "--dir", dir, "--pidfile", s.pidfile, "--save ''",
    "--appendonly no", "--logfile", dir .. "/redis.log" }
  if opts.tls then
    s.tls_port = free_port()
    args[#args + 1] = ("--tls-port %d --tls-cert-file %s --tls-key-file " ..
      "%s --tls-ca-cert-file %s --tls-auth-clients no"):format(s.tls_port,
      opts.tls.cert, opts.tls.key, opts.tls.ca)
  end
  if opts.password then
    args[#args + 1] = "--requirepass " .. opts.password
  end
  s.cmd = table.concat(args, " ")
  assert(sh(s.cmd), "redis-server did not start")
  -- up to 20 s: a loaded machine (the whole suite at once) can be slow
  -- to start it; its log's end says why when it does not come up
  local function wait_up()
  s.pid = nil
  local deadline = os.time() + 20
  repeat
    -- the pidfile may exist before redis-server wrote the pid into it
    local f = io.open(s.pidfile)
    local pid = f and tonumber(f:read("a"))
    if f then f:close() end
    if pid and sh("test -S " .. s.path) == true then
      s.pid = pid
      break
    end
    sh("sleep 0.01")
  until os.time() > deadline
  if not s.pid then
    local f = io.open(s.pidfile) -- late after all: it must not linger
    local pid = f and tonumber(f:read("a"))
    if f then f:close() end
    if pid then sh("kill -9 " .. pid .. " 2>/dev/null") end
    local log = io.open(dir .. "/redis.log")
    local text = log and log:read("a") or "(no log)"
    if log then log:close() end
    error("redis-server did not come up: " .. text:sub(-400), 2)
  end
  end
  wait_up()
  -- restart(): a new server on the same socket (after kill())
  function s.restart()
    os.remove(s.pidfile)
    assert(sh(s.cmd), "redis-server did not start")
    wait_up()
  end
  -- kill(): the server dies at once (SIGKILL), as a crash
  function s.kill()
    sh("kill -9 " .. s.pid .. " 2>/dev/null")
    for _ = 1, 500 do
      if sh("kill -0 " .. s.pid .. " 2>/dev/null") ~= true then break end
      sh("sleep 0.01")
    end
    os.remove(s.path)
  end
  function s.stop()
    s.kill()
    sh("rm -rf '" .. dir .. "'")
  end
  return s
end

return M
