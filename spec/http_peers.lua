-- Real HTTP servers for the client specs, started once per spec file
-- (outside any event loop) and stopped by the spec's teardown:
--  * peers.python(): spec/fixtures/http_peer.py, python3's http.server
--    with odd endpoints (redirects, cookies, lies about Content-Length,
--    slow heads and bodies, an upload sink that hashes what it gets) and
--    connection counters at /stats;
--  * peers.nginx(): Debian's nginx on a plain and an https port (the
--    certificate from spec/tls_helper.lua's test CA, for 127.0.0.1 and
--    localhost), serving a static folder with a gzip'd twin of text.txt
--    (gzip_static), /dyn/ gzipped on the fly (chunked), stub_status at
--    /status for counting accepted connections, /setcookie (a Secure
--    cookie and another), /cookie and /auth (the Cookie and
--    Authorization headers it got, in brackets).
-- Each server is a child of `sh` whose stdin is a pipe held by this
-- process (io.popen "w"): closing it (stop(), or this process dying)
-- makes the server exit, so no server outlives a crashed spec run.
local tls_helper = require "tls_helper"

local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"

-- The children must not inherit the sanitizer build's preloaded runtime.
local ENV = "exec env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS "

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function pause()
  os.execute("sleep 0.02")
end

local function tempdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. dir))
  return dir
end

-- Start the shell command `cmd` with its stdin a pipe from here.
local function spawn(cmd)
  return assert(io.popen(cmd, "w"))
end

--{======================================================================
-- The Python fixture
--=======================================================================

-- Starts spec/fixtures/http_peer.py. Returns a table: port, blackhole (a
-- port where connecting hangs), url(path [, host]) and stop().
function M.python()
  local dir = tempdir()
  local out = dir .. "/port"
  local pipe = spawn(("%spython3 %s >%s 2>%s"):format(ENV,
    sh_quote(here .. "/fixtures/http_peer.py"), out, dir .. "/stderr"))
  local line
  for _ = 1, 500 do
    line = read_file(out)
    if line and line:find("\n") then break end
    pause()
  end
  if not (line and line:find("\n")) then
    pipe:close()
    local err = read_file(dir .. "/stderr") or ""
    os.execute("rm -rf " .. dir)
    error("http_peers.python: the fixture did not start: " .. err)
  end
  local p = {
    port = math.tointeger(tonumber(line:match('"port": (%d+)'))),
    blackhole = math.tointeger(tonumber(line:match('"blackhole": (%d+)'))),
  }
  function p.url(path, host)
    return ("http://%s:%d%s"):format(host or "127.0.0.1", p.port, path or "/")
  end
  function p.stop()
    if pipe then pipe:close() end
    pipe = nil
    os.execute("rm -rf " .. dir)
  end
  return p
end

--{======================================================================
-- nginx
--=======================================================================

local NGINX_CONF = [[
worker_processes 1;
daemon off;
master_process off;
error_log @DIR@/error.log;
pid @DIR@/nginx.pid;
events { worker_connections 2048; }
http {
  access_log off;
  keepalive_requests 100000;
  keepalive_timeout 60s;
  default_type application/octet-stream;
  types { text/plain txt; text/html html; }
  gzip off;
  gzip_static on;
  server {
    listen 127.0.0.1:@PORT@;
    listen 127.0.0.1:@TLS_PORT@ ssl;
    ssl_certificate @CERT@;
    ssl_certificate_key @KEY@;
    root @DIR@/www;
    location = /status { stub_status; }
    location = /setcookie {
      add_header Set-Cookie "sec=1; Secure; Path=/";
      add_header Set-Cookie "open=2; Path=/";
      return 200 "set\n";
    }
    location = /cookie { return 200 "[$http_cookie]"; }
    location = /auth { return 200 "[$http_authorization]"; }
    location /dyn/ {
      alias @DIR@/www/;
      gzip_static off;
      gzip on; gzip_types text/plain; gzip_min_length 0;
    }
  }
}
]]

-- The static folder's text.txt: 2000 numbered lines.
function M.text()
  local lines = {}
  for i = 1, 2000 do lines[i] = ("line %04d of the static text\n"):format(i) end
  return table.concat(lines)
end

-- Starts nginx. Returns a table: port, tls_port, certs (tls_helper's
-- paths: certs.ca.cert is the CA to trust), text (text.txt's bytes),
-- url(path [, host]), tls_url(path [, host]) and stop().
function M.nginx()
  local certs = tls_helper.certs()
  local dir = tempdir()
  assert(os.execute("mkdir " .. dir .. "/www"))
  local text = M.text()
  write_file(dir .. "/www/text.txt", text)
  write_file(dir .. "/www/index.html",
    "<html><head><title>nginx peer</title></head></html>\n")
  assert(os.execute(("gzip -9 -k %s/www/text.txt"):format(dir)))
  for attempt = 1, 5 do
    local port, tls_port = tls_helper.free_port(), tls_helper.free_port()
    local conf = NGINX_CONF:gsub("@(%u[%u_]*)@", {
      DIR = dir, PORT = tostring(port), TLS_PORT = tostring(tls_port),
      CERT = certs.server.cert, KEY = certs.server.key })
    write_file(dir .. "/nginx.conf", conf)
    os.remove(dir .. "/nginx.pid")
    -- nginx runs as the one process (no master); the shell kills it when
    -- its stdin closes
    local pipe = spawn(("%ssh -c %s"):format(ENV, sh_quote(
      ("nginx -p %s -e %s/stderr -c %s/nginx.conf </dev/null & " ..
       "pid=$!; cat >/dev/null; kill $pid; wait $pid"):format(dir, dir,
       dir))))
    local up
    for _ = 1, 250 do
      if read_file(dir .. "/nginx.pid") then up = true break end
      local err = read_file(dir .. "/stderr") or ""
      if err:find("emerg") then break end
      pause()
    end
    if up then
      local n = { port = port, tls_port = tls_port, certs = certs,
                  text = text, dir = dir }
      function n.url(path, host)
        return ("http://%s:%d%s"):format(host or "127.0.0.1", port,
          path or "/")
      end
      function n.tls_url(path, host)
        return ("https://%s:%d%s"):format(host or "127.0.0.1", tls_port,
          path or "/")
      end
      function n.stop()
        if pipe then pipe:close() end
        pipe = nil
        os.execute("rm -rf " .. dir)
      end
      return n
    end
    pipe:close()
    local err = read_file(dir .. "/stderr") or ""
    if attempt == 5 or not err:find("in use") then
      os.execute("rm -rf " .. dir)
      error("http_peers.nginx: nginx did not start: " .. err)
    end
  end
end

--{======================================================================
-- Counters (inside a loop: raw lasync connections, not the client)
--=======================================================================

-- GET `target` on a connection of its own; returns the body.
local function raw_get(port, target)
  local lasync = require "lasync"
  local r, w = lasync.open_connection("127.0.0.1", port)
  w:write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close" ..
           "\r\n\r\n"):format(target))
  local reply = r:read()
  w:close()
  return reply:match("\r\n\r\n(.*)$")
end

-- The Python fixture's counters: {accepted=, open=, max_open=,
-- requests=} (the connection asking is not counted).
function M.stats(p)
  local json = require "lasync.json"
  return json.decode(raw_get(p.port, "/stats"))
end

-- Zero the Python fixture's counters.
function M.reset(p)
  raw_get(p.port, "/reset")
end

-- nginx's stub_status: {active=, accepts=, requests=}; the connection
-- asking counts in each.
function M.nginx_status(n)
  local body = raw_get(n.port, "/status")
  local active = body:match("Active connections: (%d+)")
  local accepts, _, requests = body:match("\n%s*(%d+)%s+(%d+)%s+(%d+)")
  return { active = tonumber(active), accepts = tonumber(accepts),
           requests = tonumber(requests) }
end

return M
