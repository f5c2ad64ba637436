-- spec/net_reliability_spec.lua: how lasync's TCP streams and servers hold
-- up when peers misbehave or resources run out: resets, half-closes, silent
-- clients, over-long lines, failures to connect or bind, running out of
-- file descriptors, backpressure on a long transfer, many connections at
-- once. Loopback only, free ports (port 0), every case bounded by small
-- timeouts. Cases that could kill the process (a signal) or need another
-- fd limit run in a child `lasync` (LASYNC_BIN) under `sh -c 'ulimit -n N'`.
local helper = require "helper"
local lasync = helper.lasync
local wait_until, serve = helper.wait_until, helper.serve
local capture_reports, echo = helper.capture_reports, helper.echo
local is_os_error = helper.is_os_error

local LOCAL = "127.0.0.1"

-- One request/response on a new connection: send `line`, read to EOF.
local function exchange(host, port, line)
  local r, w = lasync.open_connection(host, port)
  w:write(line)
  local reply = r:read()
  w:close()
  return reply
end

-- Run `source` with the lasync command in a child under `ulimit -n limit`
-- (falling back to the hard limit). Returns how it ended ("exit 0",
-- "exit 141", "signal 9"), its stdout and its stderr.
local function run_child(source, fd_limit)
  local script = helper.temp_script(source)
  local code, out, err, how = helper.capture(("sh -c 'ulimit -n %d " ..
    "2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec %s %s'"):format(
    fd_limit, helper.bin, script))
  os.remove(script)
  return how .. " " .. tostring(code), out, err
end

describe("network reliability", function()
  it("a peer that resets mid-write: drain raises an OSError in the " ..
    "handler, the server goes on", function()
    helper.run(function()
      local reports = capture_reports()
      local seen -- the error the streaming handler got
      local big = string.rep("x", 1 << 20)
      local srv, host, port, shutdown = serve(function(r, w)
        local first = r:readline()
        if first ~= "stream\n" then
          w:write("echo " .. first)
          return w:close()
        end
        for _ = 1, 256 do -- far more than the socket buffers hold
          w:write(big)
          local ok, err = pcall(w.drain, w)
          if not ok then
            seen = err
            error(err, 0) -- and let the server report it
          end
        end
      end)
      -- another client keeps talking to the server all along
      local chatter = lasync.spawn(function()
        local replies = {}
        for i = 1, 5 do
          replies[i] = exchange(host, port, "chat " .. i .. "\n")
          lasync.sleep(0.005)
        end
        return replies
      end)
      -- the resetting client: reads one byte (more is on its way), writes
      -- part of a message and closes with unread data, which sends a RST
      local r, w = lasync.open_connection(host, port)
      w:write("stream\n")
      assert.are.equal("x", r:read(1))
      w:write("half a mess")
      w:close()
      wait_until(function() return seen ~= nil end)
      assert.is_true(is_os_error(seen, "ECONNRESET", "EPIPE"),
        helper.show(seen))
      assert.matches("^lasync%.StreamWriter:drain: ", seen.message)
      assert.is_true(seen.errno > 0)
      local replies = chatter:await()
      for i = 1, 5 do
        assert.are.equal(("echo chat %d\n"):format(i), replies[i])
      end
      assert.are.equal("echo after\n", exchange(host, port, "after\n"))
      assert.is_true(srv:is_serving())
      shutdown()
      wait_until(function() return #reports > 0 end)
      assert.are.equal(1, #reports)
      assert.are.equal("connection lost in connection handler",
        reports[1].message)
      assert.are.equal(seen, reports[1].exception)
    end, 5)
  end)

  it("a peer that resets while several writes are queued does not kill " ..
    "the process (SIGPIPE)", function()
    -- several write requests queued at once: after the first fails with
    -- ECONNRESET, the next write(2) meets EPIPE; unless SIGPIPE is
    -- ignored, that signal kills the whole process
    local how, out, err = run_child([[
      local result
      local srv = lasync.start_server(function(r, w)
        local line = r:readline()
        if line ~= "stream\n" then
          w:write("echo " .. line)
          return w:close()
        end
        for _ = 1, 16 do w:write(string.rep("x", 1 << 20)) end -- queued
        local ok, e = pcall(function()
          lasync.wait_for(function() w:drain() end, 2)
        end)
        result = ok and "no error" or tostring(e)
        w:close()
      end, "127.0.0.1", 0)
      local host, port = srv:address()
      local r, w = lasync.open_connection(host, port)
      w:write("stream\n")
      r:read(1)            -- the data is on its way
      w:close()            -- closed with unread data: a RST
      lasync.wait_for(function()
        while not result do lasync.sleep(0.001) end
      end, 3)
      print("handler: " .. result)
      local r2, w2 = lasync.open_connection(host, port)
      w2:write("next\n")
      io.write("then: ", r2:read())
      w2:close()
      srv:close()
    ]], 256)
    assert.are.equal("exit 0", how, "the child died: " .. how .. "\n" .. err)
    assert.matches("handler: OSError: lasync.StreamWriter:drain: ", out, 1,
      true)
    assert.matches("then: echo next\n", out, 1, true)
    assert.are.equal("", err)
  end)

  it("half-close: the client's write_eof ends the server's read, the " ..
    "reply still comes back", function()
    helper.run(function()
      local log, record = helper.recorder()
      local _, host, port, shutdown = serve(function(r, w)
        local data = r:read() -- to EOF
        record("server read to EOF, at_eof " .. tostring(r:at_eof()))
        local lines = select(2, data:gsub("\n", ""))
        w:write(("%d bytes, %d newlines\n"):format(#data, lines))
        w:close()
      end)
      local r, w = lasync.open_connection(host, port)
      w:writelines { "one\n", "two\n", "three" }
      w:write_eof()
      record("client sent EOF")
      local err = helper.error_of(w.write, w, "more")
      assert.matches("write_eof() was called", tostring(err), 1, true)
      local reply = r:read()
      record("client got " .. reply)
      assert.is_true(r:at_eof())
      assert.are.equal("", r:read())
      w:close()
      w:wait_closed()
      shutdown()
      assert.are.same({ "client sent EOF", "server read to EOF, at_eof true",
        "client got 13 bytes, 2 newlines\n" }, log)
    end, 3)
  end)

  it("slowloris: a client that sends nothing (or half a line) times out " ..
    "in wait_for, others are served meanwhile", function()
    helper.run(function()
      local log, record = helper.recorder()
      local timeouts = {}
      local _, host, port, shutdown = serve(function(r, w)
        local t0 = helper.now()
        local ok, line = pcall(lasync.wait_for, -- long enough for the
          function() return r:readline() end, 0.3) -- normal one, under load
        if ok then
          record("served " .. line)
          w:write("200 " .. line)
        else
          timeouts[#timeouts + 1] = { err = line, after = helper.now() - t0 }
          record("timeout")
          -- the cancelled readline lost no buffered bytes
          local _, rest = pcall(lasync.wait_for,
            function() return r:read(100) end, 0.01)
          w:write("408 " .. (type(rest) == "string" and rest or "") .. "\n")
        end
        w:close()
      end)
      local silent = lasync.spawn(function()
        local r, w = lasync.open_connection(host, port)
        local reply = r:read()
        w:close()
        return reply
      end)
      local partial = lasync.spawn(exchange, host, port, "GET / HT")
      lasync.sleep(0.005)
      local normal = exchange(host, port, "GET /\n")
      record("normal client done")
      assert.are.equal("200 GET /\n", normal)
      assert.are.equal("408 \n", silent:await())
      assert.are.equal("408 GET / HT\n", partial:await())
      shutdown()
      assert.are.same({ "served GET /\n", "normal client done", "timeout",
        "timeout" }, log)
      for _, t in ipairs(timeouts) do
        assert.is_true(lasync.is_timeout(t.err), helper.show(t.err))
        assert.is_true(t.after >= 0.299, tostring(t.after))
      end
    end, 3)
  end)

  it("a line beyond the limit raises LimitOverrunError in the handler; " ..
    "the server is unaffected", function()
    helper.run(function()
      local errs = {}
      local _, host, port, shutdown = serve(function(r, w)
        local ok, line = pcall(r.readline, r)
        if ok then
          w:write("ok " .. line)
        else
          errs[#errs + 1] = line
          w:write("too long\n")
        end
        w:close()
      end, { limit = 1024 })
      local long = lasync.spawn(exchange, host, port, string.rep("x", 5000))
      local fits = lasync.spawn(exchange, host, port,
        string.rep("y", 1023) .. "\n")
      assert.are.equal("too long\n", long:await())
      assert.are.equal("ok " .. string.rep("y", 1023) .. "\n", fits:await())
      assert.are.equal("ok short\n", exchange(host, port, "short\n"))
      shutdown()
      assert.are.equal(1, #errs)
      assert.is_true(lasync.is_error(errs[1], lasync.LimitOverrunError),
        helper.show(errs[1]))
      assert.matches("chunk exceeds the limit", errs[1].message, 1, true)
      assert.is_true(errs[1].consumed > 1024, tostring(errs[1].consumed))
    end, 3)
  end)

  describe("failures to connect or listen are OSErrors with a code", function()
    it("connection refused", function()
      helper.run(function()
        local srv = lasync.start_server(echo, LOCAL, 0)
        local _, port = srv:address()
        srv:close()
        srv:wait_closed() -- nobody listens on port any more
        local err = helper.error_of(lasync.open_connection, LOCAL, port)
        assert.is_true(is_os_error(err, "ECONNREFUSED"), helper.show(err))
        assert.is_true(err.errno > 0)
        local target = LOCAL .. ":" .. port
        assert.are.equal(target, err.target)
        assert.are.equal("lasync.open_connection: connection refused (" ..
          target .. ")", err.message)
      end, 2)
    end)

    it("an unknown host", function()
      helper.run(function()
        local host = "no-such-host.invalid" -- RFC 2606: never resolves
        local err = helper.error_of(lasync.wait_for,
          function() return lasync.open_connection(host, 80) end, 4)
        assert.is_true(is_os_error(err), helper.show(err))
        assert.matches("^EAI_", err.code)
        assert.are.equal(host .. ":80", err.target)
        assert.matches("^lasync%.open_connection: .*%(" ..
          helper.escape(host) .. ":80%)$", err.message)
      end, 5)
    end)

    it("an address in use, an address not ours", function()
      helper.run(function()
        local srv = lasync.start_server(echo, LOCAL, 0)
        local _, port = srv:address()
        local err = helper.error_of(lasync.start_server, echo, LOCAL, port)
        assert.is_true(is_os_error(err, "EADDRINUSE"), helper.show(err))
        assert.are.equal(("lasync.start_server: address already in use " ..
          "(127.0.0.1:%d)"):format(port), err.message)
        assert.is_true(srv:is_serving()) -- the first server is untouched
        err = helper.error_of(lasync.start_server, echo, "192.0.2.1", 0)
        assert.is_true(is_os_error(err, "EADDRNOTAVAIL"), helper.show(err))
        assert.matches("^lasync%.start_server: ", err.message)
        srv:close()
        srv:wait_closed()
      end, 2)
    end)
  end)

  it("running out of file descriptors (EMFILE): open_connection raises, " ..
    "accept fails, the server goes on", function()
    -- One process holds both ends: each connection costs two fds. The
    -- client side meets EMFILE first or the accept does; then one fd is
    -- freed so that the next accept surely fails (libuv then drops that
    -- connection); then connections close and the server serves again.
    local how, out, err = run_child([[
      local spare = assert(io.open("/dev/null")) -- an fd to free later
      local reports = {}
      lasync.get_running_loop():set_exception_handler(function(_, ctx)
        reports[#reports + 1] = ctx.message
      end)
      local active = 0
      local srv = lasync.start_server(function(r, w)
        active = active + 1
        while true do
          local ok, line = pcall(r.readline, r)
          if not ok or line == "" then break end
          w:write(line)
        end
        w:close()
        active = active - 1
      end, "127.0.0.1", 0)
      local host, port = srv:address()
      local conns = {}
      local function roundtrip(r, w)
        w:write("ping\n")
        local ok, line = pcall(lasync.wait_for,
          function() return r:readline() end, 1)
        return ok and line == "ping\n", ok and line or tostring(line)
      end
      local client_err, dropped = nil, 0
      for _ = 1, 1000 do
        local ok, r, w = pcall(lasync.open_connection, host, port)
        if not ok then client_err = r; break end
        conns[#conns + 1] = w
        if not roundtrip(r, w) then dropped = dropped + 1 end
      end
      print(("held %d connections (%d dropped by accept)"):format(
        #conns - dropped, dropped))
      if client_err then
        print("open_connection: " .. client_err.code .. " " ..
          client_err.message)
        spare:close() -- exactly one fd free: the client gets it
        local ok, r, w = pcall(lasync.open_connection, host, port)
        if ok then
          conns[#conns + 1] = w
          local fine, what = roundtrip(r, w)
          print("then accept dropped it: " .. tostring(not fine) ..
            " (" .. what:gsub("\n", "") .. ")")
        else
          print("then open_connection: " .. tostring(r))
        end
      end
      local before = active
      for _ = 1, 10 do table.remove(conns, 1):close() end
      lasync.wait_for(function() -- their handlers end, fds are freed
        while active > before - 10 do lasync.sleep(0.001) end
      end, 2)
      local r, w = lasync.open_connection(host, port)
      print("served again: " .. tostring((roundtrip(r, w))))
      w:close()
      for _, c in ipairs(conns) do c:close() end
      lasync.wait_for(function()
        while active > 0 do lasync.sleep(0.001) end
      end, 2)
      print("serving: " .. tostring(srv:is_serving()) .. ", reports: " ..
        table.concat(reports, "; "))
      srv:close()
    ]], 64)
    assert.are.equal("exit 0", how, "the child died: " .. how .. "\n" .. err)
    assert.matches("held %d+ connections %(%d dropped by accept%)", out)
    assert.matches("open_connection: EMFILE lasync.open_connection: too " ..
      "many open files", out, 1, true)
    assert.matches("then accept dropped it: true", out, 1, true)
    assert.matches("served again: true\nserving: true", out, 1, true)
    assert.are.equal("", err)
  end)

  it("100 MiB through backpressure to a slow reader: no byte lost or " ..
    "reordered", function()
    -- A polynomial hash over 8-byte words (mod 2^64, odd multiplier)
    -- catches lost, duplicated and reordered words; the byte count is
    -- compared too. Both sides hash as they go, whatever their chunking.
    local unpack, P = string.unpack, 0x100000001b3
    local F16 = string.rep("<i8", 16)
    local function hasher()
      local h, carry, total = 0, "", 0
      local function add(s)
        total = total + #s
        if #carry > 0 then s = carry .. s end
        local pos, n = 1, #s
        while pos <= n - 127 do
          local a, b, c, d, e, f, g, i, j, k, l, m, o, p, q, t =
            unpack(F16, s, pos)
          h = (((((((((((((((h * P + a) * P + b) * P + c) * P + d) * P + e)
            * P + f) * P + g) * P + i) * P + j) * P + k) * P + l) * P + m)
            * P + o) * P + p) * P + q) * P + t
          pos = pos + 128
        end
        while pos <= n - 7 do
          h = h * P + unpack("<i8", s, pos)
          pos = pos + 8
        end
        carry = s:sub(pos)
      end
      local function result()
        if #carry > 0 then
          h = h * P + unpack("<i8", carry .. ("\0"):rep(8 - #carry))
        end
        return h, total
      end
      return add, result
    end
    helper.run(function()
      local CHUNK, NCHUNKS = 64 * 1024, 1600 -- 100 MiB
      local words = {}
      for i = 1, CHUNK // 8 - 1 do
        words[i] = string.pack("<i8", i * 0x9E3779B97F4A7C15 ~ (i << 29))
      end
      local body = table.concat(words) -- each chunk: its number, then body
      local written, sent = 0, nil
      local _, host, port, shutdown = serve(function(_, w)
        local add, result = hasher()
        for i = 1, NCHUNKS do
          local chunk = string.pack("<i8", i) .. body
          add(chunk)
          w:write(chunk)
          w:drain()
          written = written + #chunk
        end
        w:close()
        sent = table.pack(result())
      end)
      local r, w = lasync.open_connection(host, port)
      local add, result = hasher()
      local got = 0
      while got < 1 << 20 do
        local s = r:read(16384)
        add(s)
        got = got + #s
      end
      -- stop reading: the writer must stall in drain(), its memory bounded
      lasync.sleep(0.1)
      local stalled = written
      lasync.sleep(0.05)
      assert.are.equal(stalled, written)
      assert.is_true(stalled < 48 * 2 ^ 20, ("%.1f MiB written while the " ..
        "reader stopped"):format(stalled / 2 ^ 20))
      local reads = 0
      while true do
        local s = r:read(16384)
        if s == "" then break end
        add(s)
        reads = reads + 1
        if reads % 4 == 0 then lasync.sleep(0) end
      end
      w:close()
      shutdown()
      local h, total = result()
      assert.are.equal(CHUNK * NCHUNKS, sent[2])
      assert.are.equal(sent[2], total)
      assert.are.equal(sent[1], h)
    end, 15)
  end)

  it("1,000 connections held open at once, then all served", function()
    local how, out, err = run_child([[
      local N = 1000
      local live, peak, served = 0, 0, 0
      local srv = lasync.start_server(function(r, w)
        live = live + 1
        if live > peak then peak = live end
        local line = r:readline() -- held until the client speaks
        if line ~= "" then
          served = served + 1
          w:write("re " .. line)
        end
        r:read() -- until the client closes
        live = live - 1
        w:close()
      end, "127.0.0.1", 0, { backlog = 1024 })
      local host, port = srv:address()
      local connected = 0
      local all_connected, go = lasync.Event(), lasync.Event()
      local function client(i)
        local r, w = lasync.open_connection(host, port)
        connected = connected + 1
        if connected == N then all_connected:set() end
        go:wait()
        w:write(i .. "\n")
        local reply = r:readline()
        w:close()
        return reply == "re " .. i .. "\n"
      end
      local tasks = {}
      for i = 1, N do tasks[i] = lasync.spawn(client, i) end
      lasync.wait_for(function() all_connected:wait() end, 5)
      lasync.wait_for(function()
        while live < N do lasync.sleep(0.001) end
      end, 5)
      print(("connected %d, held by the server %d"):format(connected, live))
      go:set()
      local ok = 0
      local results = lasync.wait_for(function()
        return lasync.gather(tasks)
      end, 5)
      for _, good in ipairs(results) do
        if good then ok = ok + 1 end
      end
      lasync.wait_for(function()
        while live > 0 do lasync.sleep(0.001) end
      end, 5)
      print(("served %d, replies right %d, peak %d, left %d"):format(
        served, ok, peak, live))
      srv:close()
    ]], 4096)
    assert.are.equal("exit 0", how, "the child died: " .. how .. "\n" .. err)
    assert.matches("connected 1000, held by the server 1000\n" ..
      "served 1000, replies right 1000, peak 1000, left 0", out, 1, true)
    assert.are.equal("", err)
  end)
end)
