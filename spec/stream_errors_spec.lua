-- spec/stream_errors_spec.lua: how streams end when things go wrong. A
-- reset is reported once by the kernel, to a read or to a write: both the
-- reader and drain() must see it, never a clean EOF. w:abort() closes a
-- socket whose peer stopped reading. Lookup errors name the function
-- called. Loopback only, free ports, every case bounded by a timeout.
local helper = require "helper"
local lasync = helper.lasync
local wait_until, is_os_error = helper.wait_until, helper.is_os_error

local LOCAL = "127.0.0.1"

-- Whether the file descriptor fd is open: opening a socket through
-- /proc/self/fd fails with ENXIO, a closed fd with ENOENT.
local function fd_open(fd)
  local f, msg = io.open("/proc/self/fd/" .. fd)
  if f then f:close() end
  return f ~= nil or not msg:find("No such file", 1, true)
end

-- A client that makes the server's socket reset: it sends `request`, waits
-- until the server has written (`r:read(1)`, the rest left unread) and
-- closes with unread data, which sends a RST after the request.
local function resetting_client(host, port, request)
  local r, w = lasync.open_connection(host, port)
  w:write("go\n")
  r:read(1)
  w:write(request)
  w:close()
  w:wait_closed()
end

-- Write 1 MiB chunks until drain() fails; returns its error.
local function write_until_failure(w)
  local big = string.rep("x", 1 << 20)
  for _ = 1, 256 do
    w:write(big)
    local ok, err = pcall(w.drain, w)
    if not ok then return err end
  end
  error("drain never failed")
end

describe("stream errors", function()
  describe("a reset", function()
    it("seen first by the reader: drain raises ECONNRESET (not EPIPE), " ..
      "read() to EOF raises it instead of returning truncated data",
      function()
        helper.run(function()
          local result
          local srv = lasync.start_server(function(r, w)
            r:readline()
            local derr = write_until_failure(w)
            local ok, rerr = pcall(r.read, r)
            result = { drain = derr, ok = ok, read = rerr }
            w:close()
          end, LOCAL, 0)
          resetting_client(LOCAL, select(2, srv:address()), "truncated requ")
          wait_until(function() return result end)
          srv:close()
          srv:wait_closed()
          assert.is_true(is_os_error(result.drain, "ECONNRESET"),
            helper.show(result.drain))
          assert.are.equal("lasync.StreamWriter:drain: connection reset by " ..
            "peer", result.drain.message)
          assert.is_false(result.ok, "read() returned " ..
            tostring(result.read))
          assert.is_true(is_os_error(result.read, "ECONNRESET"),
            helper.show(result.read))
          assert.are.equal("lasync.StreamReader:read: connection reset by " ..
            "peer", result.read.message)
        end, 3)
      end)

    it("taken by a write while reading is paused: the buffered bytes come " ..
      "first, then the read raises ECONNRESET", function()
      helper.run(function()
        local log, record = helper.recorder()
        local done = false
        -- limit 4: reading pauses once 8 bytes are buffered, so the reset
        -- is left in the kernel for the write to take
        local srv = lasync.start_server(function(r, w)
          assert.are.equal("go\n", r:readexactly(3))
          for _ = 1, 16 do -- more than the sockets hold: writes queue
            w:write(string.rep("x", 1 << 20))
          end
          lasync.sleep(0.05) -- the request comes, then the reset, which
          -- the queued write takes
          local ok, err = pcall(w.drain, w)
          record(ok and "drain ok" or "drain " .. err.code)
          while true do
            local rok, data = pcall(r.read, r, 100)
            if not rok then
              record("read " .. (data.code or helper.show(data)))
              break
            end
            record(data)
            if data == "" then break end
          end
          w:close()
          done = true
        end, LOCAL, 0, { limit = 4 })
        resetting_client(LOCAL, select(2, srv:address()), "truncated requ")
        wait_until(function() return done end)
        srv:close()
        srv:wait_closed()
        assert.are.equal("drain ECONNRESET", log[1], table.concat(log, "|"))
        assert.are.equal("truncated requ", table.concat(log, "", 2, #log - 1))
        assert.are.equal("read ECONNRESET", log[#log])
      end, 3)
    end)
  end)

  describe("w:abort()", function()
    it("closes a socket whose peer stopped reading: the pending drain " ..
      "raises ECONNABORTED, the pending read sees EOF, the fd is closed",
      function()
        helper.run(function()
          local log, record = helper.recorder()
          local fd, writer
          local srv = lasync.start_server(function(r, w)
            writer = w
            fd = w:get_extra_info("socket")
            local reading = lasync.spawn(function()
              local ok, data = pcall(r.read, r)
              record(ok and "read " .. #data or "read " .. helper.show(data))
            end)
            local err = write_until_failure(w) -- the peer never reads
            record("drain " .. tostring(err.code))
            assert.matches("abort", err.message)
            reading:await()
          end, LOCAL, 0)
          local r, w = lasync.open_connection(srv:address())
          wait_until(function() return writer end)
          lasync.sleep(0.02) -- the server's writes are stuck
          assert.is_true(fd_open(fd))
          writer:close() -- close() waits for the writes: nothing happens
          lasync.sleep(0.02)
          assert.is_true(fd_open(fd))
          assert.is_true(writer:is_closing())
          writer:abort()
          writer:wait_closed()
          assert.is_false(fd_open(fd), "fd " .. fd .. " still open")
          wait_until(function() return #log == 2 end)
          table.sort(log)
          assert.are.same({ "drain ECONNABORTED", "read 0" }, log)
          writer:abort() -- again: nothing to do
          local err = helper.error_of(writer.write, writer, "x")
          assert.matches("the stream is closed", tostring(err), 1, true)
          -- the peer gets what the kernel had taken, then the end
          local got = 0
          while true do
            local ok, data = pcall(r.read, r, 1 << 20)
            if not ok or data == "" then break end
            got = got + #data
          end
          assert.is_true(got > 0)
          w:close()
          srv:close()
          srv:wait_closed()
        end, 3)
      end)

    it("keeps the bytes already buffered readable, then EOF", function()
      helper.run(function()
        local got
        local srv = lasync.start_server(function(r, w)
          assert.are.equal("hello", r:readexactly(5))
          lasync.sleep(0.02) -- " world\n" arrives in the buffer
          w:abort()
          w:wait_closed()
          got = { r:read(), r:read(), r:at_eof() }
        end, LOCAL, 0)
        local r, w = lasync.open_connection(srv:address())
        w:write("hello world\n")
        wait_until(function() return got end)
        assert.are.same({ " world\n", "", true }, got)
        assert.are.equal("", r:read()) -- the peer sees the end
        w:close()
        srv:close()
        srv:wait_closed()
      end, 3)
    end)
  end)

  it("close() keeps unread bytes readable after the socket is closed",
    function()
      helper.run(function()
        local got
        local srv = lasync.start_server(function(r, w)
          assert.are.equal("hello", r:readexactly(5))
          lasync.sleep(0.02)
          w:close()
          w:wait_closed()
          got = { r:read(3), r:read(), r:read() }
        end, LOCAL, 0)
        local r, w = lasync.open_connection(srv:address())
        w:write("hello world\n")
        wait_until(function() return got end)
        assert.are.same({ " wo", "rld\n", "" }, got)
        assert.are.equal("", r:read())
        w:close()
        srv:close()
        srv:wait_closed()
      end, 3)
    end)

  it("an unknown host: the error names open_connection and host:port, " ..
    "code EAI_NONAME, no errno", function()
    helper.run(function()
      local host = "no-such-host.invalid" -- RFC 2606: never resolves
      local err = helper.error_of(lasync.wait_for,
        function() return lasync.open_connection(host, 80) end, 4)
      assert.is_true(lasync.is_error(err, lasync.OSError), helper.show(err))
      assert.matches("^EAI_", err.code)
      assert.is_nil(err.errno)
      assert.are.equal(host .. ":80", err.target)
      assert.are.equal("lasync.open_connection: " ..
        (err.code == "EAI_NONAME" and "unknown node or service" or
          err.message:match(": (.-) %(")) .. " (" .. host .. ":80)",
        err.message)
      -- lasync.getaddrinfo itself still names itself and the host
      err = helper.error_of(lasync.wait_for,
        function() return lasync.getaddrinfo(host, 80) end, 4)
      assert.matches("^EAI_", err.code)
      assert.is_nil(err.errno)
      assert.are.equal(host, err.target)
      assert.matches("^lasync%.getaddrinfo: .* %(no%-such%-host%.invalid%)$",
        err.message)
    end, 10)
  end)
end)
