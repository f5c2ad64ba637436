-- spec/pg_server.lua: a throwaway PostgreSQL cluster for the specs of
-- lasync.pg. initdb into a temporary directory and pg_ctl start with the
-- server listening only on a Unix socket in that directory (no TCP);
-- stop() stops it and removes the directory. PostgreSQL refuses to run as
-- root, so under root the server runs as the `postgres` user the Debian
-- package creates (the directory is handed to that user).
local M = {}

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The directory of initdb and pg_ctl (Debian: /usr/lib/postgresql/N/bin),
-- or nil when PostgreSQL is not installed.
function M.bindir()
  local p = io.popen("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | " ..
    "sort -V | tail -n 1")
  local dir = p:read("l")
  p:close()
  if dir and io.open(dir .. "/initdb") then return dir end
  local w = io.popen("command -v initdb 2>/dev/null")
  local initdb = w:read("l")
  w:close()
  return initdb and initdb:match("^(.*)/initdb$") or nil
end

local function is_root()
  local p = io.popen("id -u")
  local uid = p:read("l")
  p:close()
  return uid == "0"
end

-- Start a cluster; returns a server object with .dir, .dsn (a conninfo
-- string) and .params (the same as a table), or nil and why.
function M.start()
  local bin = M.bindir()
  if not bin then return nil, "PostgreSQL is not installed" end
  local p = io.popen("mktemp -d /tmp/lasync-pg-XXXXXX")
  local dir = p:read("l")
  p:close()
  -- a sanitizer build preloads ASan into the specs (scripts/busted.sh):
  -- not into PostgreSQL's programs
  local as = "env -u LD_PRELOAD "
  if is_root() then
    os.execute("chown postgres: " .. q(dir))
    as = as .. "runuser -u postgres -- "
  end
  local data = dir .. "/data"
  local log = dir .. "/initdb.log"
  local slog = dir .. "/server.log" -- written by the server's user
  local ok = os.execute(as .. q(bin .. "/initdb") .. " -D " .. q(data) ..
    " -U postgres --auth=trust --no-sync -E UTF8 --locale=C >" ..
    q(log) .. " 2>&1")
  -- pg_ctl start | restart | stop, waiting until it is done (-w); the
  -- server's options again for a start or restart
  local function ctl_command(what)
    return as .. q(bin .. "/pg_ctl") .. " -D " .. q(data) .. " -l " ..
      q(slog) .. " -w -m fast -o " ..
      q("-c listen_addresses='' -k " .. dir .. " -c fsync=off") .. " " ..
      what .. " >/dev/null 2>&1"
  end
  if ok then ok = os.execute(ctl_command("start")) end
  if not ok then
    local text = ""
    for _, path in ipairs { log, slog } do
      local f = io.open(path)
      if f then text = text .. f:read("a"); f:close() end
    end
    os.execute("rm -rf " .. q(dir))
    return nil, "cannot start PostgreSQL: " .. text
  end
  local server = { dir = dir, bin = bin, data = data, as = as,
    dsn = ("host=%s user=postgres dbname=postgres"):format(dir),
    params = { host = dir, user = "postgres", dbname = "postgres" } }
  -- pg_ctl "stop", "start" or "restart" (fast: open sessions are
  -- terminated, as a server restarted mid-run does), blocking until done
  function server.ctl(what)
    return os.execute(ctl_command(what))
  end
  -- the same as a shell command, for a spec that runs it in a
  -- subprocess while its tasks go on (lasync.subprocess)
  function server.ctl_command(what)
    return ctl_command(what)
  end
  function server.stop()
    server.ctl("stop")
    os.execute("rm -rf " .. q(dir))
  end
  return server
end

--- pg_server.for_suite(setup, teardown, set): in a describe block (busted's
--- setup and teardown are the spec file's, not globals), start one
--- cluster in its setup and stop it in its teardown. set(srv) gets the
--- running server, or set(nil, why) when PostgreSQL is not installed (the
--- specs then call pending(why)).
function M.for_suite(setup, teardown, set)
  local srv
  setup(function()
    if not M.bindir() then
      return set(nil, "PostgreSQL is not installed (Debian package postgresql)")
    end
    srv = assert(M.start())
    set(srv)
  end)
  teardown(function()
    if srv then srv.stop() end
  end)
end

return M
