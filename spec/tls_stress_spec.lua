-- TLS under stress (issue 11): a large transfer through a slow reader,
-- many concurrent connections, cancellation mid-handshake and corrupted
-- records, all with real sockets and real OpenSSL. A small lasync TCP
-- proxy between client and server stalls or corrupts the ciphertext.
-- The sanitizer build (scripts/busted.sh preloads libasan) runs smaller.
local helper = require "helper"
local tls = require "tls_helper"
local lasync = helper.lasync

local certs
local sanitized = (os.getenv("LD_PRELOAD") or ""):find("asan") ~= nil

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

-- Copy r to w, passing each chunk through edit(chunk) (nil: stall, keep
-- the connection but forward nothing more); close w at the end.
local function pump(r, w, edit)
  while true do
    local ok, data = pcall(r.read, r, 65536)
    if not ok or data == "" then break end
    data = edit(data)
    if data == nil then
      pcall(r.read, r) -- stalled: wait for the end, forward nothing
      break
    end
    w:write(data)
    if not pcall(w.drain, w) then break end
  end
  w:close()
end

-- A TCP proxy to port, on a free loopback port: each connection's bytes
-- go through edit_up(chunk) (client to server) and edit_down(chunk).
-- Returns its port and shutdown().
local function proxy(port, edit_up, edit_down)
  local id = function(d) return d end
  local _, _, pport, shutdown = helper.serve(function(cr, cw)
    local ok, sr, sw = pcall(lasync.open_connection, "127.0.0.1", port)
    if not ok then cw:close() return end
    local up = lasync.create_task(pump, cr, sw, edit_up or id)
    pump(sr, cw, edit_down or id)
    pcall(lasync.await, up)
    cw:wait_closed()
    sw:wait_closed()
  end)
  return pport, shutdown
end

-- A TLS echo server on a free port; returns its port and shutdown().
local function echo_server(opts)
  opts = opts or {}
  opts.ssl = server_ctx()
  local _, _, port, shutdown = helper.serve(helper.echo, opts)
  return port, shutdown
end

-- One TLS round trip to port: the server still serves.
local function still_serving(port)
  local r, w = lasync.open_connection("127.0.0.1", port,
                                      { ssl = client_ctx() })
  w:write("still here\n")
  assert.equals("still here\n", r:readline())
  w:close()
  w:wait_closed()
end

describe("TLS under stress", function()
  it("moves 100 MB through a slow reader, bounded by drain()", function()
    local total = (sanitized and 16 or 100) * 1024 * 1024
    local BLOCK = 65536
    -- 16 different random blocks, sent in a fixed order: the reader
    -- checks every byte against what must come at its offset
    local blocks = {}
    for i = 1, 16 do
      local t = {}
      for j = 1, BLOCK // 8 do t[j] = string.pack("<I8", (i * 7919 + j) *
                                                          2654435761) end
      blocks[i] = table.concat(t)
    end
    local function block_at(n) return blocks[(n * 5) % 16 + 1] end
    helper.run(function()
      local sent, got, lead = 0, 0, 0
      local waited = 0
      local rss0, rss_max = rss_kib(), 0
      local mismatch
      local port, shutdown
      local _, _, p, sd = helper.serve(function(r, w)
        local n = 0
        while got < total do
          local data = r:read(BLOCK)
          if data == "" then break end
          -- compare with the expected bytes at offset `got`
          local i = 1
          while i <= #data do
            local off = got % BLOCK
            local len = math.min(#data - i + 1, BLOCK - off)
            local want = block_at(got // BLOCK):sub(off + 1, off + len)
            if data:sub(i, i + len - 1) ~= want then
              mismatch = mismatch or got
            end
            got = got + len
            i = i + len
          end
          n = n + 1
          if n % 2 == 0 then lasync.sleep(0.001) end -- slow reader
        end
        w:write("done\n")
        w:close()
      end, { ssl = server_ctx() })
      port, shutdown = p, sd
      local r, w = lasync.open_connection("127.0.0.1", port,
                                          { ssl = client_ctx() })
      local n = 0
      while sent < total do
        local b = block_at(n)
        w:write(b)
        sent = sent + #b
        n = n + 1
        local t0 = helper.now()
        w:drain()
        if helper.now() > t0 then waited = waited + 1 end
        lead = math.max(lead, sent - got)
        if n % 64 == 0 then rss_max = math.max(rss_max, rss_kib()) end
      end
      w:drain()
      assert.equals("done\n", r:readline()) -- before close: no EOF race
      assert.equals(total, got)
      assert.is_nil(mismatch)
      w:close()
      w:wait_closed()
      shutdown()
      -- the writer's lead is the socket buffers plus a TLS record or two,
      -- never the whole transfer: drain() waited on the encrypted side
      assert.is_true(waited > 0, "drain() never waited")
      assert.is_true(lead < 24 * 1024 * 1024, ("the writer ran %d bytes " ..
        "ahead of the reader"):format(lead))
      if not sanitized then
        assert.is_true(rss_max - rss0 < 48 * 1024, ("RSS grew by %d KiB")
          :format(rss_max - rss0))
      end
    end, 20)
  end)

  it("serves 1,000 concurrent TLS connections", function()
    local count = 1000
    helper.run(function()
      local port, shutdown = echo_server()
      local ctx = client_ctx()
      local opened, done = 0, 0
      local gate = lasync.Event()
      local tasks = {}
      for i = 1, count do
        tasks[i] = lasync.create_task(function()
          local r, w = lasync.open_connection("127.0.0.1", port,
                                              { ssl = ctx })
          opened = opened + 1
          if opened == count then gate:set() end
          gate:wait() -- all of them open at once
          local msg = ("connection %d\n"):format(i)
          w:write(msg)
          assert.equals(msg, r:readline())
          w:close()
          w:wait_closed()
          done = done + 1
        end)
      end
      lasync.gather(table.unpack(tasks))
      assert.equals(count, opened)
      assert.equals(count, done)
      shutdown()
    end, 60)
  end)
end)

describe("TLS cancellation mid-handshake", function()
  it("cancels a client's handshake at every step; nothing leaks",
     function()
    helper.run(function()
      local port, shutdown = echo_server()
      -- each delay cancels at a later step of the handshake
      for rounds = 0, 12 do
        local t = lasync.create_task(lasync.open_connection, "127.0.0.1",
                                     port, { ssl = client_ctx() })
        for _ = 1, rounds do lasync.sleep(0) end
        if not t:done() then
          t:cancel()
          local ok, e = pcall(lasync.await, t)
          assert.is_false(ok)
          assert.is_true(lasync.is_error(e, lasync.CancelledError))
        else
          local _, w = t:result()
          w:close()
          w:wait_closed()
        end
      end
      still_serving(port)
      shutdown()
    end, 10)
  end)

  it("cancels a client stuck in a handshake a stalled proxy holds",
     function()
    helper.run(function()
      local port, shutdown = echo_server()
      local pport, pshut = proxy(port, nil, function() return nil end)
      local t = lasync.create_task(lasync.open_connection, "127.0.0.1",
                                   pport, { ssl = client_ctx() })
      lasync.sleep(0.05)
      assert.is_false(t:done())
      t:cancel()
      assert.is_false((pcall(lasync.await, t)))
      assert.is_true(t:cancelled())
      pshut()
      still_serving(port)
      shutdown()
    end, 10)
  end)

  it("the server times out a client that stops mid-handshake and goes on",
     function()
    helper.run(function()
      local reports = helper.capture_reports()
      local port, shutdown = echo_server { ssl_handshake_timeout = 0.2 }
      -- only the first 40 bytes of the ClientHello reach the server
      local pport, pshut = proxy(port, function(d) return d:sub(1, 40) end)
      local passed = false
      local pport2, pshut2 = proxy(port, function(d)
        if passed then return nil end
        passed = true
        return d
      end) -- the whole ClientHello, then nothing: the client's Finished
           -- never arrives
      local t0 = helper.now()
      local ok, e = pcall(lasync.open_connection, "127.0.0.1", pport,
                          { ssl = client_ctx(), ssl_handshake_timeout = 2 })
      assert.is_false(ok)
      assert.is_true(helper.is_os_error(e), helper.show(e))
      assert.is_true(helper.now() - t0 < 1.5)
      -- TLS 1.3: the client is done once its Finished is sent; the
      -- server's timeout then ends the connection, which the client reads
      t0 = helper.now()
      local r, w = lasync.open_connection("127.0.0.1", pport2,
        { ssl = client_ctx(), ssl_handshake_timeout = 2 })
      local rok, data = pcall(r.read, r)
      assert.is_true(not rok or data == "")
      assert.is_true(helper.now() - t0 < 1.5)
      w:abort()
      helper.wait_until(function() return #reports >= 2 end)
      for _, rep in ipairs(reports) do
        assert.equals("ECONNABORTED", rep.exception.code)
        assert.matches("TLS handshake took longer than 0.2 s",
                       rep.exception.message)
      end
      pshut()
      pshut2()
      still_serving(port)
      shutdown()
    end, 10)
  end)
end)

describe("TLS garbage mid-stream", function()
  -- flip the last byte of the next chunk (inside a record's tag) once armed
  local function flipper()
    local f = { armed = false }
    function f.edit(d)
      if not f.armed then return d end
      f.armed = false
      return d:sub(1, -2) .. string.char(d:byte(-1) ~ 0x55)
    end
    return f
  end

  it("a corrupted record from the server: the client's read raises " ..
     "SSLError", function()
    helper.run(function()
      local port, shutdown = echo_server()
      local down = flipper()
      local pport, pshut = proxy(port, nil, down.edit)
      local r, w = lasync.open_connection("127.0.0.1", pport,
                                          { ssl = client_ctx() })
      w:write("good\n")
      assert.equals("good\n", r:readline())
      down.armed = true
      w:write("bad\n")
      local ok, e = pcall(r.readline, r)
      assert.is_false(ok)
      assert.is_true(lasync.is_error(e, lasync.SSLError), helper.show(e))
      assert.is_string(e.reason)
      w:abort()
      pshut()
      still_serving(port)
      shutdown()
    end, 10)
  end)

  it("a corrupted record from the client: the handler's read raises " ..
     "SSLError, the server goes on", function()
    helper.run(function()
      local seen
      local _, _, port, shutdown = helper.serve(function(r, w)
        while true do
          local ok, line = pcall(r.readline, r)
          if not ok then seen = line break end
          if line == "" then break end
          w:write(line)
        end
        w:close()
      end, { ssl = server_ctx() })
      local up = flipper()
      local pport, pshut = proxy(port, up.edit)
      local r, w = lasync.open_connection("127.0.0.1", pport,
                                          { ssl = client_ctx() })
      w:write("good\n")
      assert.equals("good\n", r:readline())
      up.armed = true
      w:write("bad\n")
      helper.wait_until(function() return seen ~= nil end)
      assert.is_true(lasync.is_error(seen, lasync.SSLError),
                     helper.show(seen))
      assert.is_string(seen.reason)
      pcall(r.read, r) -- the server's alert, then the end
      w:abort()
      pshut()
      still_serving(port)
      shutdown()
    end, 10)
  end)
end)
