-- One TLS round trip, run by ctest under valgrind's memcheck
-- (tls.memcheck, cmake/tests.cmake; not in the ASan build): a lasync
-- server and client with the throwaway certificates of tls_helper, an
-- echo, a clean close; valgrind fails the test on any error or leak.
local lasync = require "lasync"
local tls = require "tls_helper"

local certs = tls.certs()
local ok, err = pcall(lasync.run, function()
  local sctx = lasync.ssl.context { purpose = "server",
    certfile = certs.server.cert, keyfile = certs.server.key }
  local srv = lasync.start_server(function(r, w)
    w:write(r:readline())
    w:close()
    w:wait_closed()
  end, "127.0.0.1", 0, { ssl = sctx })
  local _, port = srv:address()
  local r, w = lasync.open_connection("127.0.0.1", port,
    { ssl = lasync.ssl.context { cafile = certs.ca.cert } })
  w:write("hello over TLS\n")
  local line = r:readline()
  w:close()
  w:wait_closed()
  srv:close()
  srv:wait_closed()
  print("tls-memcheck: " .. line:gsub("\n", ""))
end)
tls.cleanup()
if not ok then error(err, 0) end
