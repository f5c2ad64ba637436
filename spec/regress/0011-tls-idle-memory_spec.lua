-- Issue 11, tlsidle: OpenSSL reads the ciphertext where the socket's read
-- put it and writes into the loop's output buffer (one BIO of lasync's own
-- per connection, tls.c) instead of two memory BIOs per connection. These
-- cover the paths that change: records split over many reads, ciphertext
-- that came before start_tls, one write far larger than the output
-- buffer, and many idle connections that still serve afterwards. A
-- reader that took every byte leaves its TLS stream no plaintext buffer.
local helper = require "helper"
local tls = require "tls_helper"
local lasync = helper.lasync

local certs

setup(function() certs = tls.certs() end)
teardown(function() tls.cleanup() end)

local function server_ctx()
  return lasync.ssl.context { purpose = "server",
    certfile = certs.server.cert, keyfile = certs.server.key }
end

local function client_ctx()
  return lasync.ssl.context { cafile = certs.ca.cert }
end

-- The resident set of this process in KiB.
local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local kib = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kib
end

-- Copy r to w one byte per write and per loop turn, so that the other
-- side reads every TLS record in pieces.
local function trickle(r, w)
  while true do
    local ok, data = pcall(r.read, r, 65536)
    if not ok or data == "" then break end
    for i = 1, #data do
      w:write(data:sub(i, i))
      lasync.sleep(0)
    end
  end
  w:close()
end

describe("regress 0011: TLS through lasync's own BIO", function()
  it("decrypts records that arrive one byte at a time, both ways",
     function()
    helper.run(function()
      local _, _, port, shutdown = helper.serve(helper.echo,
                                                { ssl = server_ctx() })
      local _, _, pport, pshutdown = helper.serve(function(cr, cw)
        local sr, sw = lasync.open_connection("127.0.0.1", port)
        local up = lasync.create_task(trickle, cr, sw)
        trickle(sr, cw)
        pcall(lasync.await, up)
      end)
      local r, w = lasync.open_connection("127.0.0.1", pport,
        { ssl = client_ctx(), server_hostname = "127.0.0.1" })
      for i = 1, 3 do
        local line = ("line %d %s\n"):format(i, ("x"):rep(100 * i))
        w:write(line)
        assert.equals(line, r:readline())
      end
      w:close()
      w:wait_closed()
      pshutdown()
      shutdown()
    end, 20)
  end)

  it("start_tls takes the peer's hello that was read before it", function()
    helper.run(function()
      local sctx = server_ctx()
      local _, _, port, shutdown = helper.serve(function(r, w)
        assert.equals("STARTTLS\n", r:readline())
        -- the client's hello is sent without waiting for an answer:
        -- let it arrive in the plain read buffer first
        lasync.sleep(0.05)
        w:start_tls(sctx)
        w:write("secret " .. r:readline())
        w:close()
        w:wait_closed()
      end)
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("STARTTLS\n")
      w:start_tls(client_ctx(), { server_hostname = "127.0.0.1" })
      w:write("word\n")
      assert.equals("secret word\n", r:readline())
      assert.equals("", r:read())
      w:close()
      w:wait_closed()
      shutdown()
    end, 10)
  end)

  it("one write of 4 MiB arrives whole (far past the output buffer)",
     function()
    helper.run(function()
      local total = 4 * 1024 * 1024
      local t = {}
      for i = 1, total // 8 do t[i] = string.pack("<I8", i * 2654435761) end
      local data = table.concat(t)
      local got = {}
      local _, _, port, shutdown = helper.serve(function(r, w)
        local n = 0
        while n < total do
          local chunk = r:read(65536)
          if chunk == "" then break end
          got[#got + 1] = chunk
          n = n + #chunk
        end
        w:write("done\n")
        w:close()
      end, { ssl = server_ctx() })
      local r, w = lasync.open_connection("127.0.0.1", port,
                                          { ssl = client_ctx() })
      w:write(data)
      w:drain()
      assert.equals("done\n", r:readline())
      assert.is_true(table.concat(got) == data, "the bytes differ")
      w:close()
      w:wait_closed()
      shutdown()
    end, 20)
  end)

  it("200 idle TLS connections after their handshake all still echo",
     function()
    helper.run(function()
      local _, _, port, shutdown = helper.serve(helper.echo,
                                                { ssl = server_ctx() })
      local ctx = client_ctx()
      local conns = {}
      for i = 1, 200 do
        local r, w = lasync.open_connection("127.0.0.1", port, { ssl = ctx })
        conns[i] = { r, w }
      end
      lasync.sleep(0.05) -- idle: the session tickets have come
      for i, c in ipairs(conns) do c[2]:write(i .. "\n") end
      for i, c in ipairs(conns) do
        assert.equals(i .. "\n", c[1]:readline())
        c[2]:close()
      end
      for _, c in ipairs(conns) do c[2]:wait_closed() end
      shutdown()
    end, 30)
  end)

  it("a TLS stream whose reader took everything holds no read buffer",
     function()
    -- the server in a process of its own, measuring its own RSS: "RSS"
    -- on a connection answers it; any other line is echoed
    local script = helper.temp_script([[
      local lasync = require "lasync"
      local cert, key = ...
      local srv = lasync.start_server(function(r, w)
        while true do
          local line = r:readline()
          if line == "" then break end
          if line == "RSS\n" then
            collectgarbage()
            local f = assert(io.open("/proc/self/status"))
            line = f:read("a"):match("VmRSS:%s*(%d+)") .. "\n"
            f:close()
          end
          w:write(line)
        end
        w:close()
      end, "127.0.0.1", 0, { ssl = lasync.ssl.context { purpose = "server",
        certfile = cert, keyfile = key } })
      local _, port = srv:address()
      print(port)
      io.stdout:flush()
      srv:serve_forever()
    ]])
    helper.run(function()
      local N = 200
      local msg = ("m"):rep(4000) .. "\n"
      local p = lasync.subprocess.exec(helper.bin, { script,
        certs.server.cert, certs.server.key }, { stdout = "pipe" })
      local port = tonumber(p.stdout:readline())
      local ctx = client_ctx()
      local conns = {}
      for i = 1, N do
        local r, w = lasync.open_connection("127.0.0.1", port, { ssl = ctx })
        conns[i] = { r, w }
      end
      local function rss()
        conns[1][2]:write("RSS\n")
        return tonumber(conns[1][1]:readline())
      end
      local before = rss()
      -- one round trip on every connection, one after the other, then
      -- idle again
      for _, c in ipairs(conns) do
        c[2]:write(msg)
        assert.equals(msg, c[1]:readline())
      end
      lasync.sleep(0.05)
      local per_conn = (rss() - before) / N
      for _, c in ipairs(conns) do c[2]:close() end
      for _, c in ipairs(conns) do c[2]:wait_closed() end
      p:kill()
      p:wait()
      os.remove(script)
      -- a 16 KiB plaintext buffer kept per connection stays resident
      -- where the message went (about 8 KiB measured)
      local sanitized = (os.getenv("LD_PRELOAD") or ""):find("asan") ~= nil
      if not sanitized then
        assert.is_true(per_conn < 2, ("RSS grew by %.1f KiB per idle " ..
          "connection after one message"):format(per_conn))
      end
    end, 30)
  end)
end)
