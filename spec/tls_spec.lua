-- TLS (issue 11): lasync.ssl.context, lasync.SSLError, and TLS over
-- open_connection/start_server. Certificates are made at test time with
-- the openssl command (spec/tls_helper.lua); loopback and free ports only.
local helper = require "helper"
local tls = require "tls_helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

local certs

setup(function() certs = tls.certs() end)
teardown(function() tls.cleanup() end)

describe("lasync.ssl.context", function()
  it("makes client contexts by default and server contexts", function()
    local c = lasync.ssl.context()
    assert.equals("client", c:purpose())
    assert.matches("^lasync.ssl.Context: client", tostring(c))
    local s = lasync.ssl.context { purpose = "server",
      certfile = certs.server.cert, keyfile = certs.server.key }
    assert.equals("server", s:purpose())
    local a = lasync.ssl.context { cafile = certs.ca.cert,
      alpn = { "h2", "http/1.1" }, minimum_version = "TLSv1.3",
      ciphersuites = "TLS_AES_128_GCM_SHA256", ciphers = "ECDHE+AESGCM",
      verify = "optional", check_hostname = false }
    assert.equals("client", a:purpose())
    for _, v in ipairs { "TLSv1.2", "TLSv1.3" } do
      assert.equals("client", lasync.ssl.context { maximum_version = v,
        minimum_version = "TLSv1.2" }:purpose())
    end
  end)

  it("checks every option before making anything", function()
    local C = lasync.ssl.context
    raises_msg("lasync.ssl.context: unknown option purpos", C,
               { purpos = "server" })
    raises_msg("option 'purpose' must be \"client\" or \"server\" " ..
               "(got \"both\")", C, { purpose = "both" })
    raises_msg("option 'verify' must be \"none\", \"optional\" or " ..
               "\"required\" (got number)", C, { verify = 1 })
    raises_msg("option 'check_hostname' must be a boolean", C,
               { check_hostname = "yes" })
    raises_msg("check_hostname needs verify", C, { verify = "none" ,
               check_hostname = true })
    raises_msg("option 'minimum_version' must be \"TLSv1.2\" or " ..
               "\"TLSv1.3\" (got \"TLSv1\")", C, { minimum_version = "TLSv1" })
    raises_msg("option 'maximum_version' must be \"TLSv1.2\" or " ..
               "\"TLSv1.3\" (got \"TLSv1.1\")", C,
               { maximum_version = "TLSv1.1" })
    raises_msg("option 'maximum_version' must be \"TLSv1.2\" or " ..
               "\"TLSv1.3\" (got number)", C, { maximum_version = 1.2 })
    raises_msg("lasync.ssl.context: option 'maximum_version' " ..
               "(\"TLSv1.2\") is below option 'minimum_version' " ..
               "(\"TLSv1.3\")", C, { minimum_version = "TLSv1.3",
                                    maximum_version = "TLSv1.2" })
    raises_msg("option 'certfile' must be a string (got table)", C,
               { certfile = {} })
    raises_msg("option 'cafile' contains an embedded NUL byte", C,
               { cafile = "a\0b" })
    raises_msg("option 'keyfile' needs 'certfile'", C, { keyfile = "k" })
    raises_msg("a server context needs 'certfile'", C, { purpose = "server" })
    raises_msg("option 'alpn': item #2 must be a string of 1 to 255 bytes",
               C, { alpn = { "h2", "" } })
    raises_msg("option 'alpn' must list 1 to 8 protocol names (got 0)", C,
               { alpn = {} })
    raises_msg("lasync.ssl.context: opts must be a table (got string)", C, "x")
  end)

  it("raises SSLError, an OSError, for what OpenSSL refuses", function()
    local C = lasync.ssl.context
    local ok, e = pcall(C, { certfile = certs.dir .. "/missing.pem" })
    assert.is_false(ok)
    assert.is_true(lasync.is_error(e, lasync.SSLError))
    assert.is_true(lasync.is_error(e, lasync.OSError))
    assert.equals("string", type(e.reason))
    assert.matches("^SSLError: lasync.ssl.context: loading certfile ",
                   tostring(e))
    ok, e = pcall(C, { certfile = certs.server.cert,
                       keyfile = certs.client.key })
    assert.is_false(ok)
    assert.matches("KEY_VALUES_MISMATCH", e.reason)
    ok, e = pcall(C, { ciphers = "NO-SUCH-CIPHER" })
    assert.is_false(ok)
    assert.equals("NO_CIPHER_MATCH", e.reason)
    ok, e = pcall(C, { cafile = certs.dir .. "/missing.pem" })
    assert.is_false(ok)
    assert.is_true(lasync.is_error(e, lasync.SSLError))
  end)
end)

-- A TLS echo server on a free loopback port with the certificate `name`.
local function tls_server(name, opts)
  opts = opts or {}
  opts.ssl = opts.ssl or lasync.ssl.context { purpose = "server",
    certfile = certs[name].cert, keyfile = certs[name].key }
  return helper.serve(helper.echo, opts)
end

local function client_ctx()
  return lasync.ssl.context { cafile = certs.ca.cert }
end

describe("TLS streams", function()
  it("round trips between a lasync client and a lasync server", function()
    helper.run(function()
      local _, host, port, shutdown = tls_server("server")
      for _, h in ipairs { "127.0.0.1", "localhost" } do
        local r, w = lasync.open_connection(h, port, { ssl = client_ctx() })
        assert.equals(host, (w:get_extra_info("peername")))
        assert.matches("^TLSv1", w:get_extra_info("tls_version"))
        assert.is_string(w:get_extra_info("cipher"))
        local pc = w:get_extra_info("peercert")
        assert.equals("CN = localhost", pc.subject)
        assert.equals("CN = lasync test CA", pc.issuer)
        assert.is_false(w:can_write_eof())
        raises_msg("lasync.StreamWriter:write_eof: a TLS stream cannot " ..
                   "half-close", w.write_eof, w)
        local big = string.rep("x", 30000) .. "\n"
        w:write("hello\n")
        w:write(big)
        w:drain()
        assert.equals("hello\n", r:readline())
        assert.equals(#big, #r:readexactly(#big))
        w:close()
        w:wait_closed()
      end
      shutdown()
    end, 10)
  end)

  it("raises SSLError CERTIFICATE_VERIFY_FAILED with the X509 code", function()
    helper.run(function()
      local reports = helper.capture_reports()
      local cases = {
        { "server", true, 20, "unable to get local issuer certificate" },
        { "expired", client_ctx, 10, "certificate has expired" },
        { "wrongname", client_ctx, 64, "IP address mismatch" },
        { "self", client_ctx, 18, "self%-signed certificate" },
      }
      for _, c in ipairs(cases) do
        local _, _, port, shutdown = tls_server(c[1])
        local ssl = c[2] == true or c[2]()
        local ok, e = pcall(lasync.open_connection, "127.0.0.1", port,
                            { ssl = ssl })
        assert.is_false(ok, c[1])
        assert.is_true(lasync.is_error(e, lasync.SSLError), tostring(e))
        assert.equals("CERTIFICATE_VERIFY_FAILED", e.reason)
        assert.equals(c[3], e.verify_code, c[1])
        assert.matches(c[4], e.verify_message)
        assert.matches("^SSLError: lasync.open_connection: TLS handshake " ..
                       "failed: certificate verify failed: ", tostring(e))
        -- a name check against the IP SAN too
        if c[1] == "wrongname" then
          ok, e = pcall(lasync.open_connection, "127.0.0.1", port,
                        { ssl = client_ctx(), server_hostname = "localhost" })
          assert.equals(62, e.verify_code) -- hostname mismatch
        end
        shutdown()
      end
      -- five failed handshakes on the server (wrongname twice), each
      -- reported once, in one line, as a peer that went away; waiting for
      -- four let the fifth fail after the loop stopped, so that its task
      -- was reported at collection as "Task exception was never retrieved"
      helper.wait_until(function() return #reports >= 5 end)
      lasync.sleep(0.02)
      assert.equals(5, #reports)
      for _, r in ipairs(reports) do
        assert.equals("connection lost in connection handler", r.message)
        assert.is_true(lasync.is_error(r.exception, lasync.SSLError))
        assert.matches("^SSLError: lasync.start_server: TLS handshake " ..
                       "failed: ", tostring(r.exception))
        assert.is_nil(r.traceback)
      end
    end, 10)
  end)

  it("fails a plaintext peer on a TLS port within the handshake timeout, " ..
     "and the server goes on", function()
    helper.run(function()
      local reports = helper.capture_reports()
      local _, _, port, shutdown = tls_server("server",
                                              { ssl_handshake_timeout = 0.2 })
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("GET / HTTP/1.0\r\n\r\n") -- garbage to TLS: an alert, EOF
      local ok = pcall(r.read, r)
      assert.is_true(ok ~= nil)
      w:close()
      local r2, w2 = lasync.open_connection("127.0.0.1", port) -- silent
      local t0 = helper.now()
      assert.equals("", r2:read()) -- closed by the server's timeout
      assert.is_true(helper.now() - t0 < 1)
      w2:close()
      helper.wait_until(function() return #reports >= 2 end)
      for _, rep in ipairs(reports) do
        assert.matches("connection lost", rep.message)
      end
      local found = false
      for _, rep in ipairs(reports) do
        local e = rep.exception
        if e.code == "ECONNABORTED" then
          found = true
          assert.matches("the TLS handshake took longer than 0.2 s",
                         e.message)
        end
      end
      assert.is_true(found)
      local r3, w3 = lasync.open_connection("127.0.0.1", port,
                                            { ssl = client_ctx() })
      w3:write("still here\n")
      assert.equals("still here\n", r3:readline())
      w3:close()
      shutdown()
    end, 10)
  end)

  it("fails a TLS client on a plaintext port within its timeout", function()
    helper.run(function()
      local _, _, port, shutdown = helper.serve(function(r, w)
        r:read() -- never answers the hello
        w:close()
      end)
      local t0 = helper.now()
      local ok, e = pcall(lasync.open_connection, "127.0.0.1", port,
                          { ssl = client_ctx(), ssl_handshake_timeout = 0.1 })
      assert.is_false(ok)
      assert.equals("ECONNABORTED", e.code)
      assert.matches("lasync.open_connection: .*the TLS handshake took " ..
                     "longer than 0.1 s", e.message)
      assert.is_true(helper.now() - t0 < 1)
      shutdown()
    end, 10)
  end)

  it("checks the TLS options before connecting", function()
    helper.run(function()
      local oc = lasync.open_connection
      raises_msg("lasync.open_connection: option 'server_hostname' needs " ..
                 "option 'ssl'", oc, "127.0.0.1", 1, { server_hostname = "x" })
      raises_msg("option 'ssl' must be true or a lasync.ssl.context " ..
                 "(got string)", oc, "127.0.0.1", 1, { ssl = "yes" })
      raises_msg("option 'ssl_handshake_timeout' must be a positive number",
                 oc, "127.0.0.1", 1, { ssl = true, ssl_handshake_timeout = 0 })
      raises_msg("lasync.start_server: option 'ssl' must be a server " ..
                 "context (got a client one)", lasync.start_server,
                 function() end, "127.0.0.1", 0, { ssl = client_ctx() })
      raises_msg("lasync.start_server: option 'ssl' must be a server " ..
                 "lasync.ssl.context (got boolean)", lasync.start_server,
                 function() end, "127.0.0.1", 0, { ssl = true })
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key }
      raises_msg("lasync.start_server: option 'server_hostname' is for " ..
                 "clients", lasync.start_server, function() end,
                 "127.0.0.1", 0, { ssl = sctx, server_hostname = "x" })
      raises_msg("lasync.start_unix_server: option 'ssl_handshake_timeout' " ..
                 "needs option 'ssl'", lasync.start_unix_server,
                 function() end, "/tmp/never.sock",
                 { ssl_handshake_timeout = 1 })
      raises_msg("lasync.open_connection: option 'server_hostname' must " ..
                 "be a string (got number)", oc, "127.0.0.1", 1,
                 { ssl = true, server_hostname = 5 })
      raises_msg("lasync.open_connection: option 'ssl_shutdown_timeout' " ..
                 "must be a positive number of seconds (got " .. tostring(0/0) .. ")", oc,
                 "127.0.0.1", 1, { ssl = true, ssl_shutdown_timeout = 0/0 })
      local gone = client_ctx()
      getmetatable(gone).__gc(gone)
      raises_msg("lasync.open_connection: option 'ssl': the context is " ..
                 "not usable", oc, "127.0.0.1", 1, { ssl = gone })
    end)
  end)

  it("takes the ssl options in C: no Lua wrapper around the connection " ..
     "functions", function()
    local w = debug.getregistry()["lasync.StreamWriter"].__index
    for _, f in ipairs { lasync.open_connection, lasync.open_unix_connection,
                         lasync.start_server, lasync.start_unix_server,
                         w.start_tls } do
      assert.equals("C", debug.getinfo(f, "S").what)
    end
    assert.same({ "context" }, (function()
      local keys = {}
      for k in pairs(lasync.ssl) do keys[#keys + 1] = k end
      return keys
    end)())
  end)

  it("answers get_extra_info with the TLS names, on both ends", function()
    helper.run(function()
      local seen
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key,
        alpn = { "h2", "http/1.1" } }
      local _, _, port, shutdown = helper.serve(function(r, w)
        seen = { alpn = w:get_extra_info("alpn_protocol"),
                 sni = w:get_extra_info("server_hostname"),
                 peercert = w:get_extra_info("peercert") }
        return helper.echo(r, w)
      end, { ssl = sctx })
      local cctx = lasync.ssl.context { cafile = certs.ca.cert,
                                        alpn = { "http/1.1" } }
      local r, w = lasync.open_connection("localhost", port, { ssl = cctx })
      assert.equals("http/1.1", w:get_extra_info("alpn_protocol"))
      assert.equals("localhost", w:get_extra_info("server_hostname"))
      local o = w:get_extra_info("ssl_object")
      assert.equals("http/1.1", o.alpn_protocol)
      assert.equals(w:get_extra_info("cipher"), o.cipher)
      assert.equals(w:get_extra_info("tls_version"), o.tls_version)
      assert.equals("localhost", o.server_hostname)
      assert.equals("CN = localhost", o.peercert.subject)
      assert.is_false(o.session_reused)
      local pc = w:get_extra_info("peercert")
      assert.is_string(pc.notBefore)
      assert.is_string(pc.notAfter)
      assert.same({ { "IP Address", "127.0.0.1" }, { "DNS", "localhost" },
                    { "IP Address", "::1" } }, pc.subjectAltName)
      w:write("x\n")
      assert.equals("x\n", r:readline())
      assert.equals("http/1.1", seen.alpn)
      assert.equals("localhost", seen.sni)
      assert.is_nil(seen.peercert) -- no client certificate asked for
      w:close()
      w:wait_closed()
      -- a plain stream has none of them
      local _, _, pport, pshutdown = helper.serve(helper.echo)
      local _, pw = lasync.open_connection("127.0.0.1", pport)
      for _, k in ipairs { "peercert", "cipher", "tls_version",
                           "alpn_protocol", "ssl_object" } do
        assert.is_nil(pw:get_extra_info(k), k)
      end
      pw:close()
      pshutdown()
      shutdown()
    end, 10)
  end)

  it("close sends close_notify: the peer reads a clean EOF", function()
    helper.run(function()
      local reports = helper.capture_reports()
      local _, _, port, shutdown = helper.serve(function(_, w)
        w:write("bye\n")
        w:close()
        w:wait_closed()
      end, { ssl = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key } })
      local r, w = lasync.open_connection("127.0.0.1", port,
                                          { ssl = client_ctx() })
      assert.equals("bye\n", r:read())
      assert.equals("", r:read()) -- close_notify, then EOF
      assert.is_true(r:at_eof())
      w:close()
      w:wait_closed()
      shutdown()
      assert.equals(0, #reports)
    end, 10)
  end)

  it("start_tls upgrades a live plain connection on both ends (STARTTLS)",
     function()
    helper.run(function()
      local reports = helper.capture_reports()
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key }
      local _, _, port, shutdown = helper.serve(function(r, w)
        assert.equals("STARTTLS\n", r:readline())
        w:write("OK\n")
        w:start_tls(sctx)
        assert.matches("^TLSv1", w:get_extra_info("tls_version"))
        w:write("secret " .. r:readline())
        w:close()
        w:wait_closed()
      end)
      local r, w = lasync.open_connection("127.0.0.1", port)
      assert.is_nil(w:get_extra_info("tls_version"))
      -- argument errors come first, before anything changes
      raises_msg("lasync.StreamWriter:start_tls: argument #1 must be a " ..
                 "lasync.ssl.context (got nil)", w.start_tls, w)
      raises_msg("lasync.StreamWriter:start_tls: unknown option 'ssl'",
                 w.start_tls, w, client_ctx(), { ssl = true })
      raises_msg("lasync.StreamWriter:start_tls: option 'server_hostname' " ..
                 "is for clients", w.start_tls, w, sctx,
                 { server_hostname = "localhost" })
      raises_msg("lasync.StreamWriter:start_tls: a context that checks " ..
                 "host names needs option 'server_hostname'",
                 w.start_tls, w, client_ctx())
      w:write("STARTTLS\n")
      assert.equals("OK\n", r:readline())
      w:start_tls(client_ctx(), { server_hostname = "localhost",
                                  ssl_handshake_timeout = 5 })
      assert.equals("CN = localhost", w:get_extra_info("peercert").subject)
      raises_msg("lasync.StreamWriter:start_tls: TLS is on already",
                 w.start_tls, w, client_ctx(),
                 { server_hostname = "localhost" })
      w:write("hello\n")
      assert.equals("secret hello\n", r:readline())
      assert.equals("", r:read())
      w:close()
      w:wait_closed()
      shutdown()
      assert.equals(0, #reports)
    end, 10)
  end)

  it("start_tls refuses a stream another task reads, and leaves it " ..
     "plain", function()
    helper.run(function()
      local _, _, port, shutdown = helper.serve(helper.echo)
      local r, w = lasync.open_connection("127.0.0.1", port)
      local reader = lasync.create_task(function() return r:readline() end)
      lasync.sleep(0) -- it waits for a line
      raises_msg("lasync.StreamWriter:start_tls: another task is reading " ..
                 "from this stream", w.start_tls, w, client_ctx(),
                 { server_hostname = "localhost" })
      raises_msg("lasync.StreamWriter:start_tls: unknown option 'sni'",
                 w.start_tls, w, client_ctx(), { sni = "localhost" })
      raises_msg("lasync.StreamWriter:start_tls: option " ..
                 "'ssl_handshake_timeout' must be a positive number of " ..
                 "seconds (got -1)", w.start_tls, w, client_ctx(),
                 { ssl_handshake_timeout = -1 })
      -- nothing changed: the connection is still plain and open
      assert.is_nil(w:get_extra_info("tls_version"))
      assert.is_true(w:can_write_eof())
      w:write("plain\n")
      assert.equals("plain\n", lasync.wait_for(reader, 1))
      w:close()
      w:wait_closed()
      shutdown()
    end, 10)
  end)

  it("start_tls hands bytes the reader holds already to TLS", function()
    helper.run(function()
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key }
      local _, _, port, shutdown = helper.serve(function(r, w)
        -- the client's hello may come with its STARTTLS line: wait for it
        -- so that the reader's buffer surely holds it
        assert.equals("STARTTLS\n", r:readline())
        lasync.sleep(0.05)
        w:start_tls(sctx)
        w:write(r:readline())
        w:close()
        w:wait_closed()
      end)
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("STARTTLS\n") -- no answer awaited: the hello follows at once
      w:start_tls(client_ctx(), { server_hostname = "127.0.0.1" })
      w:write("pipelined\n")
      assert.equals("pipelined\n", r:readline())
      w:close()
      w:wait_closed()
      shutdown()
    end, 10)
  end)

  it("authenticates clients by certificate with verify = \"required\"",
     function()
    helper.run(function()
      local reports = helper.capture_reports()
      local seen
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key,
        verify = "required", cafile = certs.ca.cert }
      local _, _, port, shutdown = helper.serve(function(r, w)
        seen = w:get_extra_info("peercert").subject
        w:write(r:readline())
        w:close()
        w:wait_closed()
      end, { ssl = sctx })
      local with = lasync.ssl.context { cafile = certs.ca.cert,
        certfile = certs.client.cert, keyfile = certs.client.key }
      local r, w = lasync.open_connection("127.0.0.1", port, { ssl = with })
      w:write("hi\n")
      assert.equals("hi\n", r:readline())
      assert.equals("CN = lasync client", seen)
      w:close()
      w:wait_closed()
      -- without a certificate: TLS 1.3 ends the client's handshake before
      -- the server checks, so the client learns it at its first read
      r, w = lasync.open_connection("127.0.0.1", port,
                                    { ssl = client_ctx() })
      assert.equals("TLSv1.3", w:get_extra_info("tls_version"))
      local e = helper.error_of(r.read, r)
      assert.is_true(lasync.is_error(e, lasync.SSLError))
      assert.equals("TLSV13_ALERT_CERTIFICATE_REQUIRED", e.reason)
      assert.matches("^SSLError: lasync.StreamReader:read: TLS failed: ",
                     tostring(e))
      w:close()
      w:wait_closed()
      shutdown()
      -- the server: the handshake failed, one line, and it goes on
      assert.equals(1, #reports)
      assert.equals("connection lost in connection handler",
                    reports[1].message)
      assert.equals("PEER_DID_NOT_RETURN_A_CERTIFICATE", reports[1].exception.reason)
    end, 10)
  end)

  it("close waits for the peer's close_notify, at most " ..
     "ssl_shutdown_timeout", function()
    helper.run(function()
      local reports = helper.capture_reports()
      local release = lasync.Event()
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key }
      local answered
      local _, _, port, shutdown = helper.serve(function(r, w)
        local line = r:readline()
        if line == "mute\n" then -- never answers close_notify
          release:wait()
        else -- answers it at once: EOF, then close
          answered = r:read()
        end
        w:close()
        w:wait_closed()
      end, { ssl = sctx })
      raises_msg("lasync.open_connection: option 'ssl_shutdown_timeout' " ..
                 "must be a positive number of seconds (got 0)",
                 lasync.open_connection, "127.0.0.1", port,
                 { ssl = client_ctx(), ssl_shutdown_timeout = 0 })
      raises_msg("lasync.open_connection: option 'ssl_shutdown_timeout' " ..
                 "needs option 'ssl'", lasync.open_connection, "127.0.0.1",
                 port, { ssl_shutdown_timeout = 1 })
      -- a peer that never answers holds wait_closed the timeout, no more
      local _, w = lasync.open_connection("127.0.0.1", port,
        { ssl = client_ctx(), ssl_shutdown_timeout = 0.2 })
      w:write("mute\n")
      w:close()
      local t = helper.timed(w.wait_closed, w)
      assert.is_true(t >= 0.15 and t < 1, "waited " .. t)
      release:set()
      -- a peer that answers: wait_closed returns as soon as it does
      local r2, w2 = lasync.open_connection("127.0.0.1", port,
        { ssl = client_ctx(), ssl_shutdown_timeout = 5 })
      w2:write("talk\n")
      w2:close()
      t = helper.timed(w2.wait_closed, w2)
      assert.is_true(t < 1, "waited " .. t)
      assert.equals("", answered)
      assert.equals("", r2:read()) -- its close_notify: a clean EOF
      shutdown()
      assert.equals(0, #reports)
    end, 10)
  end)

  it("runs over Unix sockets: start_unix_server and open_unix_connection",
     function()
    helper.in_dir(function(dir)
      local path = dir .. "/tls.sock"
      local reports = helper.capture_reports()
      local srv = lasync.start_unix_server(helper.echo, path,
        { ssl = lasync.ssl.context { purpose = "server",
          certfile = certs.server.cert, keyfile = certs.server.key } })
      local r, w = lasync.open_unix_connection(path,
        { ssl = client_ctx(), server_hostname = "localhost" })
      assert.equals("CN = localhost", w:get_extra_info("peercert").subject)
      w:write("unix\n")
      assert.equals("unix\n", r:readline())
      w:close()
      w:wait_closed()
      local ok, e = pcall(lasync.open_unix_connection, path,
        { ssl = client_ctx(), server_hostname = "wrong.example" })
      assert.is_false(ok)
      assert.equals("CERTIFICATE_VERIFY_FAILED", e.reason)
      assert.equals(62, e.verify_code) -- hostname mismatch
      helper.wait_until(function() return #reports == 1 end) -- the server's
      assert.matches("^SSLError: lasync.start_unix_server: TLS handshake",
                     tostring(reports[1].exception))
      srv:close()
      srv:wait_closed()
    end, 10)
  end)

  it("resumes the session a client context kept for the same host " ..
     "and port", function()
    helper.run(function()
      local sctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key }
      local _, _, port, shutdown = helper.serve(helper.echo, { ssl = sctx })
      local function reused(ctx, name)
        local r, w = lasync.open_connection("127.0.0.1", port,
          { ssl = ctx, server_hostname = name })
        -- TLS 1.3 sends its session tickets after the handshake: read
        w:write("x\n")
        assert.equals("x\n", r:readline())
        local o = w:get_extra_info("ssl_object")
        w:close()
        w:wait_closed()
        return o.session_reused
      end
      local cctx = client_ctx()
      assert.is_false(reused(cctx, "localhost"))
      assert.is_true(reused(cctx, "localhost"))
      assert.is_true(reused(cctx, "localhost"))
      assert.is_false(reused(client_ctx(), "localhost")) -- a fresh context
      assert.is_false(reused(cctx, "127.0.0.1")) -- another name: its own
      assert.is_true(reused(cctx, "127.0.0.1"))
      shutdown()
      -- another port: another server, no session offered
      local _, _, port2, shutdown2 = helper.serve(helper.echo,
                                                  { ssl = sctx })
      port = port2
      assert.is_false(reused(cctx, "localhost"))
      shutdown2()
      -- start_tls: keyed by server_hostname and the peer's address
      local _, _, port3, shutdown3 = helper.serve(function(r, w)
        w:start_tls(sctx)
        return helper.echo(r, w)
      end)
      local function upgraded(ctx)
        local r, w = lasync.open_connection("127.0.0.1", port3)
        w:start_tls(ctx, { server_hostname = "localhost" })
        w:write("y\n")
        assert.equals("y\n", r:readline())
        local o = w:get_extra_info("ssl_object")
        w:close()
        w:wait_closed()
        return o.session_reused
      end
      assert.is_false(upgraded(cctx))
      assert.is_true(upgraded(cctx))
      shutdown3()
    end, 10)
  end)

  it("open_unix_connection refuses a context that checks host names " ..
     "without server_hostname", function()
    helper.in_dir(function(dir)
      local path = dir .. "/tls.sock"
      local msg = "lasync.open_unix_connection: option 'ssl' with a " ..
                  "context that checks host names needs option " ..
                  "'server_hostname'"
      -- before connecting: there is no socket at path yet
      raises_msg(msg, lasync.open_unix_connection, path,
                 { ssl = client_ctx() })
      raises_msg(msg, lasync.open_unix_connection, path, { ssl = true })
      assert.is_true(client_ctx():check_hostname())
      local loose = lasync.ssl.context { cafile = certs.ca.cert,
                                         check_hostname = false }
      assert.is_false(loose:check_hostname())
      -- check_hostname = false: the chain only, any name
      local srv = lasync.start_unix_server(helper.echo, path,
        { ssl = lasync.ssl.context { purpose = "server",
          certfile = certs.wrongname.cert, keyfile = certs.wrongname.key } })
      local r, w = lasync.open_unix_connection(path, { ssl = loose })
      assert.equals("CN = wrong.example",
                    w:get_extra_info("peercert").subject)
      w:write("unix\n")
      assert.equals("unix\n", r:readline())
      w:close()
      w:wait_closed()
      srv:close()
      srv:wait_closed()
    end, 10)
  end)

  it("leaves the argument errors of the wrapped functions at the " ..
     "caller's line, TLS or not", function()
    helper.run(function()
      local here = debug.getinfo(1, "S").short_src
      local function line_of(f)
        local ok, err = pcall(f)
        assert.is_false(ok)
        return err
      end
      local line = debug.getinfo(1, "l").currentline
      local e1 = line_of(function()
        lasync.open_connection("127.0.0.1", {}) end)
      local e2 = line_of(function()
        lasync.start_server(print, "127.0.0.1", 0, { backlog = "x" }) end)
      local e3 = line_of(function()
        lasync.open_connection("127.0.0.1", 1, { ssl = "yes" }) end)
      local e4 = line_of(function()
        lasync.open_unix_connection("/tmp/never.sock", 5) end)
      assert.equals(here .. ":" .. (line + 2) .. ": lasync.open_connection: " ..
        "port must be an integer from 0 to 65535 (got table)", e1)
      assert.equals(here .. ":" .. (line + 4) .. ": lasync.start_server: " ..
        "option 'backlog' must be an integer (got string)", e2)
      assert.matches("^" .. here:gsub("%p", "%%%0") .. ":" .. (line + 6) ..
        ": lasync.open_connection: option 'ssl' must be", e3)
      assert.matches("^" .. here:gsub("%p", "%%%0") .. ":" .. (line + 8) ..
        ": bad argument #2 to '", e4)
    end)
  end)
end)

-- TLS 1.2 (issue 11): a client context capped with maximum_version
-- against a server that speaks both; what differs from TLS 1.3.
describe("TLS 1.2", function()
  local function server_ctx(opts)
    opts = opts or {}
    opts.purpose = "server"
    opts.certfile = certs.server.cert
    opts.keyfile = certs.server.key
    return lasync.ssl.context(opts)
  end

  local function client12(opts)
    opts = opts or {}
    opts.cafile = certs.ca.cert
    opts.maximum_version = "TLSv1.2"
    return lasync.ssl.context(opts)
  end

  it("negotiates TLSv1.2 and ALPN, on both ends", function()
    helper.run(function()
      local seen
      local _, _, port, shutdown = helper.serve(function(r, w)
        seen = { version = w:get_extra_info("tls_version"),
                 alpn = w:get_extra_info("alpn_protocol") }
        return helper.echo(r, w)
      end, { ssl = server_ctx { alpn = { "h2", "http/1.1" } } })
      local r, w = lasync.open_connection("localhost", port,
        { ssl = client12 { alpn = { "http/1.1", "h2" } } })
      assert.equals("TLSv1.2", w:get_extra_info("tls_version"))
      assert.equals("h2", w:get_extra_info("alpn_protocol")) -- the server's
      local o = w:get_extra_info("ssl_object")
      assert.equals("TLSv1.2", o.tls_version)
      assert.equals("h2", o.alpn_protocol)
      assert.is_string(o.cipher)
      w:write("x\n")
      assert.equals("x\n", r:readline())
      assert.same({ version = "TLSv1.2", alpn = "h2" }, seen)
      w:close()
      w:wait_closed()
      -- no name in common: no ALPN, the connection goes on
      r, w = lasync.open_connection("localhost", port,
        { ssl = client12 { alpn = { "spdy/3" } } })
      assert.is_nil(w:get_extra_info("alpn_protocol"))
      w:write("y\n")
      assert.equals("y\n", r:readline())
      w:close()
      w:wait_closed()
      shutdown()
    end, 10)
  end)

  it("resumes the session of the first connection in the second", function()
    helper.run(function()
      local _, _, port, shutdown = helper.serve(helper.echo,
                                                { ssl = server_ctx() })
      local function connect(ctx)
        local r, w = lasync.open_connection("127.0.0.1", port, { ssl = ctx })
        w:write("z\n")
        assert.equals("z\n", r:readline())
        local o = w:get_extra_info("ssl_object")
        w:close()
        w:wait_closed()
        return o.tls_version, o.session_reused
      end
      local cctx = client12()
      -- TLS 1.2 hands the session over in the handshake itself
      assert.same({ "TLSv1.2", false }, { connect(cctx) })
      assert.same({ "TLSv1.2", true }, { connect(cctx) })
      assert.same({ "TLSv1.2", true }, { connect(cctx) })
      assert.same({ "TLSv1.2", false }, { connect(client12()) })
      shutdown()
    end, 10)
  end)

  it("fails the client's handshake when the server requires a " ..
     "certificate it lacks", function()
    helper.run(function()
      local reports = helper.capture_reports()
      local _, _, port, shutdown = helper.serve(helper.echo,
        { ssl = server_ctx { verify = "required", cafile = certs.ca.cert } })
      -- unlike TLS 1.3 (see "authenticates clients by certificate"), the
      -- server's alert comes before the client's handshake ends
      local ok, e = pcall(lasync.open_connection, "127.0.0.1", port,
                          { ssl = client12() })
      assert.is_false(ok)
      assert.is_true(lasync.is_error(e, lasync.SSLError), tostring(e))
      assert.equals("SSLV3_ALERT_HANDSHAKE_FAILURE", e.reason)
      assert.is_nil(e.verify_code)
      assert.matches("^SSLError: lasync.open_connection: TLS handshake " ..
                     "failed: ", tostring(e))
      -- with its certificate, the same client gets through
      local r, w = lasync.open_connection("127.0.0.1", port,
        { ssl = client12 { certfile = certs.client.cert,
                           keyfile = certs.client.key } })
      assert.equals("TLSv1.2", w:get_extra_info("tls_version"))
      w:write("in\n")
      assert.equals("in\n", r:readline())
      w:close()
      w:wait_closed()
      shutdown()
      assert.equals(1, #reports)
      assert.equals("PEER_DID_NOT_RETURN_A_CERTIFICATE",
                    reports[1].exception.reason)
    end, 10)
  end)
end)

-- Interop with real tools (issue 11): each tool runs as a subprocess,
-- bounded by lasync.timeout and killed afterwards whatever happens.
describe("TLS interop", function()
  local sp = lasync.subprocess
  -- The tools run without the environment's LD_PRELOAD: under the ASan
  -- build (scripts/busted.sh preloads libasan) curl hangs at start.
  local ENV = { PATH = os.getenv("PATH"), HOME = os.getenv("HOME") }

  -- Run body(proc) with proc killed and reaped afterwards.
  local function with_proc(proc, body)
    local ok, err = pcall(lasync.timeout, 5, body, proc)
    if proc:returncode() == nil then proc:kill() end
    proc:wait()
    if not ok then error(err, 0) end
  end

  local function server_ctx()
    return lasync.ssl.context { purpose = "server",
      certfile = certs.server.cert, keyfile = certs.server.key }
  end

  it("openssl s_client talks to a lasync TLS server", function()
    helper.run(function()
      local _, _, port, shutdown = helper.serve(helper.echo,
                                                { ssl = server_ctx() })
      local p = sp.exec("openssl", { "s_client", "-connect",
        "127.0.0.1:" .. port, "-CAfile", certs.ca.cert, "-verify_hostname",
        "localhost", "-verify_return_error", "-quiet", "-no_ign_eof" },
        { stdin = "pipe", stdout = "pipe", stderr = "pipe", env = ENV })
      with_proc(p, function()
        p.stdin:write("hello over TLS\n")
        assert.equals("hello over TLS\n", p.stdout:readline())
        p.stdin:close() -- s_client ends the session and exits
        assert.equals("", p.stdout:read())
        assert.equals(0, p:wait())
      end)
      shutdown()
    end, 10)
  end)

  it("curl --cacert fetches from a lasync https server", function()
    helper.run(function()
      local body = "hello from lasync over https\n"
      local _, _, port, shutdown = helper.serve(function(r, w)
        repeat local line = r:readline() until line == "\r\n" or line == ""
        w:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                "Content-Length: " .. #body .. "\r\nConnection: close\r\n" ..
                "\r\n" .. body)
        w:close()
        w:wait_closed()
      end, { ssl = server_ctx() })
      local p = sp.exec("curl", { "-sS", "--max-time", "5", "--cacert",
        certs.ca.cert, "https://127.0.0.1:" .. port .. "/" },
        { stdout = "pipe", stderr = "pipe", env = ENV })
      with_proc(p, function()
        local out, err = p:communicate()
        assert.equals(body, out, err)
        assert.equals(0, p:wait())
      end)
      shutdown()
    end, 10)
  end)

  it("a lasync client reads from openssl s_server", function()
    helper.run(function()
      local port = tls.free_port()
      local p = sp.exec("openssl", { "s_server", "-accept", tostring(port),
        "-cert", certs.server.cert, "-key", certs.server.key, "-rev",
        "-naccept", "1", "-quiet" },
        { stdin = "pipe", stdout = "pipe", stderr = "pipe", env = ENV })
      with_proc(p, function()
        local r, w
        helper.wait_until(function()
          local ok, a, b = pcall(lasync.open_connection, "127.0.0.1", port,
            { ssl = lasync.ssl.context { cafile = certs.ca.cert } })
          if ok then r, w = a, b end
          return ok
        end)
        assert.equals("CN = localhost", w:get_extra_info("peercert").subject)
        w:write("olleh\n")
        assert.equals("hello\n", r:readline())
        -- killed, s_server sends no close_notify: the bare EOF is taken
        -- for a truncation, a reset
        p:kill()
        p:wait()
        helper.os_error({ "ECONNRESET" }, "StreamReader:read", nil, r.read, r)
        w:close()
        w:wait_closed()
      end)
    end, 10)
  end)
end)
