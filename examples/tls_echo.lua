-- tls_echo.lua: the echo server and clients of echo.lua, over TLS.
--
-- The same streams as examples/echo.lua: only the ssl options differ.
-- lasync.start_server(handler, host, port, {ssl = server context}) runs
-- the handler after the TLS handshake; lasync.open_connection(host, port,
-- {ssl = client context}) returns once the server's certificate has been
-- verified. The certificates are made at run time with the openssl
-- command (a throwaway CA and a certificate for 127.0.0.1 and localhost)
-- in a temporary directory, removed at the end.
-- TLS has no half-close (w:write_eof() raises on TLS, as in asyncio), so
-- a client ends with a "quit" line: the server says goodbye and closes,
-- sending TLS close_notify, which the client reads as EOF.
-- Given a port (an argument, or PORT in the environment), it only serves,
-- on 127.0.0.1 at that port, until Ctrl-C, for a client of your own:
--   PORT=8443 make run SCRIPT=examples/tls_echo.lua
--   (or: lasync tls_echo.lua 8443), then, with the CA file it prints:
--   openssl s_client -quiet -CAfile <ca.pem> -connect 127.0.0.1:8443
-- Run: build/lasync examples/tls_echo.lua   (needs the openssl command)
-- Expected output (about 0.2 s):
--   server: TLS echo on 127.0.0.1 (a free port)
--   ann: sent 3 lines over TLSv1.3, got back: one | two | three
--   bob: sent 3 lines over TLSv1.3, got back: uno | dos | tres
--   cid: sent 3 lines over TLSv1.3, got back: eins | zwei | drei
--   cid: after quit the server said: bye, 3 lines echoed
--   server: 3 connections, 9 lines echoed, 3 quit

-- throwaway certificates for localhost (examples/lib/certs.lua)
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local certs = dofile(here .. "/lib/certs.lua").make("tls")
local path = certs.path

local echoed, quit = 0, 0

-- One task per connection, after its handshake: echo each line back
-- until "quit" or EOF.
local function handle(reader, writer)
  local count = 0
  while true do
    local line = reader:readline()   -- "" at EOF (the client's close_notify)
    if line == "" then break end
    if line:match("^quit\r?\n$") then
      quit = quit + 1
      break
    end
    writer:write(line)
    writer:drain()                   -- waits on the encrypted side's buffer
    count = count + 1
    echoed = echoed + 1
  end
  writer:write(("bye, %d lines echoed\n"):format(count))
  writer:close()                     -- sends close_notify after the data
end

local server_ctx = lasync.ssl.context { purpose = "server",
  certfile = path("server.pem"), keyfile = path("server.key") }

-- Serve mode: a port given; Ctrl-C (SIGINT) stops the server cleanly.
local wanted = ... or os.getenv("PORT")
if wanted then
  local number = math.tointeger(tonumber(wanted))
  assert(number, "tls_echo.lua: the port must be a number")
  local stop = lasync.Event()
  local sigint <close> = lasync.signal("SIGINT", function() stop:set() end)
  local server = lasync.start_server(handle, "127.0.0.1", number,
                                     { ssl = server_ctx })
  local host, port = server:address()
  print(("server: TLS echo on %s:%d; try: openssl s_client -quiet " ..
    "-CAfile %s -connect %s:%d (Ctrl-C stops)"):format(host, port,
    path("ca.pem"), host, port))
  io.stdout:flush()
  stop:wait()
  server:close()
  server:wait_closed()
  certs.remove()
  print(("\nserver: stopped; lines echoed: %d; clients that quit: %d")
    :format(echoed, quit))
  return
end

local server = lasync.start_server(handle, "127.0.0.1", 0,
                                   { ssl = server_ctx })
local host, port = server:address()
print(("server: TLS echo on %s (a free port)"):format(host))

-- One client context trusting the example's CA, shared by the clients.
local client_ctx = lasync.ssl.context { cafile = path("ca.pem") }

local function client(name, pause, lines)
  local reader, writer = lasync.open_connection(host, port,
                                                { ssl = client_ctx })
  local got = {}
  for _, text in ipairs(lines) do
    writer:write(text .. "\n")
    got[#got + 1] = reader:readline():gsub("\n$", "")
    lasync.sleep(pause)              -- meanwhile the others talk
  end
  writer:write("quit\n")
  local goodbye = reader:read()      -- read to EOF: the server's last words
  writer:close()
  return ("%s: sent %d lines over %s, got back: %s"):format(name, #lines,
    writer:get_extra_info("tls_version"), table.concat(got, " | ")), goodbye
end

local results = lasync.gather {
  function() return { client("ann", 0.01, { "one", "two", "three" }) } end,
  function() return { client("bob", 0.02, { "uno", "dos", "tres" }) } end,
  function() return { client("cid", 0.03, { "eins", "zwei", "drei" }) }
  end,
}
for _, r in ipairs(results) do print(r[1]) end
io.write("cid: after quit the server said: ", results[3][2])

server:close()
server:wait_closed()
certs.remove()
print(("server: %d connections, %d lines echoed, %d quit"):format(#results,
  echoed, quit))
