-- port_checker.lua: check which TCP ports answer, all at once.
--
-- Each check is lasync.wait_for on lasync.open_connection: a connection
-- means "open" (the checker then waits briefly for a banner, as
-- ssh or smtp servers send one), ECONNREFUSED means "closed", and no
-- answer before the timeout means "filtered" (a firewall dropping the
-- packets). The checks run concurrently with lasync.gather, so the whole
-- scan takes as long as the slowest check, not the sum of them.
-- With no arguments it checks local demo ports: two servers the script
-- starts (one sends a banner, one is silent) and two ports where nothing
-- listens any more. With arguments it checks those: HOST PORT [PORT...].
-- Run: build/lasync examples/port_checker.lua [HOST PORT...]
-- Expected output (about 0.1 s):
--   checking 4 ports on 127.0.0.1 (connect timeout 0.5 s, banner 0.1 s)
--     ssh-like  open     0.00 s  banner "SSH-2.0-lasync_demo"
--     web       open     0.00 s  no banner
--     old-api   closed   0.00 s  ECONNREFUSED
--     spare     closed   0.00 s  ECONNREFUSED
--   2 open, 2 closed, 0 filtered in 0.10 s (checked concurrently)

local loop = lasync.get_running_loop()
local CONNECT_TIMEOUT, BANNER_TIMEOUT = 0.5, 0.1

-- -> state ("open", "closed", "filtered" or "error"), seconds, detail
local function check(host, port)
  local start = loop:time()
  local ok, reader, writer = pcall(lasync.wait_for, function()
    return lasync.open_connection(host, port)
  end, CONNECT_TIMEOUT)
  local took = loop:time() - start
  if not ok then
    local err = reader
    if lasync.is_timeout(err) then
      return "filtered", took, ("no answer in %g s"):format(CONNECT_TIMEOUT)
    elseif lasync.is_error(err, lasync.OSError) then
      return err.code == "ECONNREFUSED" and "closed" or "error", took,
        err.code
    end
    error(err, 0) -- a bug, not a port state
  end
  local got, banner = pcall(lasync.wait_for, function()
    return reader:readline()
  end, BANNER_TIMEOUT)
  writer:close()
  if got and banner ~= "" then
    return "open", took, ('banner "%s"'):format(banner:gsub("%s+$", ""))
  end
  return "open", took, "no banner"
end

-- The ports to check: {name, port} on host.
local host, targets, servers = "127.0.0.1", {}, {}
local busy = 0 -- connections the demo servers are handling
if arg[1] then
  host = arg[1]
  for i = 2, #arg do
    targets[#targets + 1] = { arg[i], assert(math.tointeger(tonumber(arg[i])),
      "usage: port_checker.lua HOST PORT [PORT...]") }
  end
else
  local function listen(handler)
    local server = lasync.start_server(function(r, w)
      busy = busy + 1
      handler(r, w)
      busy = busy - 1
    end, host, 0)
    servers[#servers + 1] = server
    return select(2, server:address())
  end
  local function closed_port() -- free a port nobody else is likely to take
    local server = lasync.start_server(function() end, host, 0)
    local _, port = server:address()
    server:close()
    server:wait_closed()
    return port
  end
  targets = {
    { "ssh-like", listen(function(_, w)
        w:write("SSH-2.0-lasync_demo\r\n")
        w:close()
      end) },
    { "web", listen(function(r, w) -- speaks when spoken to
        r:read()
        w:close()
      end) },
    { "old-api", closed_port() },
    { "spare", closed_port() },
  }
end

print(("checking %d ports on %s (connect timeout %g s, banner %g s)"):format(
  #targets, host, CONNECT_TIMEOUT, BANNER_TIMEOUT))
local start = loop:time()
local checks = {}
for i, t in ipairs(targets) do
  checks[i] = function() return { check(host, t[2]) } end
end
local results = lasync.gather(checks)
local count = { open = 0, closed = 0, filtered = 0, error = 0 }
for i, r in ipairs(results) do
  local state, took, detail = r[1], r[2], r[3]
  count[state] = count[state] + 1
  print(("  %-9s %-8s %.2f s  %s"):format(targets[i][1], state, took, detail))
end
print(("%d open, %d closed, %d filtered in %.2f s (checked concurrently)")
  :format(count.open, count.closed, count.filtered, loop:time() - start))

while busy > 0 do lasync.sleep(0.001) end -- the demo servers see EOF
for _, server in ipairs(servers) do server:close() end
