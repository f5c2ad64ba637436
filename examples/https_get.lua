-- https_get.lua: fetch a page over https from a server started right here.
--
-- asyncio's open_connection(host, port, ssl=ctx) against its own https
-- server. The example first makes a throwaway certificate authority and a
-- certificate for localhost / 127.0.0.1 with the openssl command (run with
-- lasync.subprocess, in a temporary directory removed at the end), then:
-- - serves one page with lasync.start_server{ssl = a server context made
--   from that certificate}: the handler runs after the TLS handshake and
--   sees the usual StreamReader and StreamWriter, carrying plaintext;
-- - fetches it with lasync.open_connection{ssl = a client context that
--   trusts the example's CA}: the server's certificate is verified, and so
--   is its name (server_hostname), and prints what the handshake agreed on
--   (w:get_extra_info);
-- - tries once more with ssl = true (the system's CAs, which do not know
--   the example's CA): the handshake fails with lasync.SSLError.
-- Run: build/lasync examples/https_get.lua   (needs the openssl command)
-- Expected output (about 0.1 s; the version and cipher depend on OpenSSL):
--   server: https on 127.0.0.1 (a free port), certificate for localhost
--   GET https://localhost/ -> HTTP/1.1 200 OK
--   certificate subject: CN = localhost
--   certificate issuer:  CN = lasync example CA
--   TLS version: TLSv1.3, cipher TLS_AES_256_GCM_SHA384
--   page title: "Hello over TLS"
--   with ssl = true: SSLError CERTIFICATE_VERIFY_FAILED (unable to get
--     local issuer certificate)


-- throwaway certificates for localhost (examples/lib/certs.lua)
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local certs = dofile(here .. "/lib/certs.lua").make("https")
local path = certs.path

-- {==================== the https server ====================
local function handle(reader, writer)
  local request = reader:readline()        -- "GET / HTTP/1.1\r\n"
  repeat                                   -- the headers, to the blank line
    local line = reader:readline()
  until line == "\r\n" or line == ""
  local body = "<!DOCTYPE html>\n<html><head><title>Hello over TLS</title>" ..
               "</head><body>served for " ..
               request:match("^%u+ (%S+)") .. "</body></html>\n"
  writer:write(("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" ..
    "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(#body, body))
  writer:close()                           -- sends TLS close_notify
end

local server_ctx = lasync.ssl.context { purpose = "server",
  certfile = path("server.pem"), keyfile = path("server.key") }
-- the refused client below makes the server's handshake fail too: the
-- server reports that through the loop's exception handler and goes on
-- serving; here it is only counted
local refused = 0
lasync.get_running_loop():set_exception_handler(function() refused =
  refused + 1 end)
local server = lasync.start_server(handle, "127.0.0.1", 0,
                                   { ssl = server_ctx })
local host, port = server:address()
print(("server: https on %s (a free port), certificate for localhost")
  :format(host))
-- }====================

-- {==================== the client ====================
local client_ctx = lasync.ssl.context { cafile = path("ca.pem") }
local reader, writer = lasync.open_connection(host, port,
  { ssl = client_ctx, server_hostname = "localhost" })
writer:write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
local status = reader:readline():gsub("\r\n$", "")
local response = reader:read()             -- to EOF (the close_notify)
writer:close()
local cert = writer:get_extra_info("peercert")
print("GET https://localhost/ -> " .. status)
print("certificate subject: " .. cert.subject)
print("certificate issuer:  " .. cert.issuer)
print(("TLS version: %s, cipher %s"):format(
  writer:get_extra_info("tls_version"), writer:get_extra_info("cipher")))
print(("page title: %q"):format(response:match("<title>(.-)</title>")))

local ok, err = pcall(lasync.open_connection, host, port, { ssl = true })
print(("with ssl = true: %s %s (%s)"):format(
  ok and "connected?!" or lasync.is_error(err, lasync.SSLError) and "SSLError"
  or tostring(err), err.reason, err.verify_message))
-- }====================

server:close()
server:wait_closed()
certs.remove()
