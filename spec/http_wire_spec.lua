-- The HTTP layer's connection object (lasync.core._http_conn, the C part
-- of lasync.http): requests parsed from a real server's streams, bodies,
-- limits, timeouts and the bytes of responses. Raw requests are written
-- by a client (lasync.open_connection); loopback, port 0 only.
local helper = require "helper"
local lasync = helper.lasync
local core = require "lasync.core"

local LOCAL = "127.0.0.1"

-- A server whose connections run on_conn(conn, r, w) (default: the serve
-- loop below); returns the server, its port and the list it records in.
local function server(opts, on_conn, server_opts)
  local log = {}
  local srv = lasync.start_server(function(r, w)
    local conn = core._http_conn(r, w, opts)
    local ok, err = pcall(on_conn, conn, log, r, w)
    if not ok then log.error = err end
    conn:close()
    w:close()
  end, LOCAL, 0, server_opts)
  local _, port = srv:address()
  return srv, port, log
end

-- The serve loop: each request recorded with its body; answered 200 with
-- the body echoed; errors answered with their status, then close.
local function serve(conn, log)
  while true do
    local req, status, msg = conn:next_request()
    if req == nil then log[#log + 1] = "eof" return end
    if req == false then
      log[#log + 1] = status
      log.msg = msg
      conn:send(status, nil, msg, false, false)
      return
    end
    local body, st = conn:read_body()
    if body == false then
      log[#log + 1] = st
      conn:send(st, nil, "", false, false)
      return
    end
    req.body = body
    log[#log + 1] = req
    conn:send(200, nil, body, req.keep_alive, req.method == "HEAD")
    if not req.keep_alive then return end
  end
end

-- Write data, half-close, read everything the server sends.
local function exchange(port, data)
  local r, w = lasync.open_connection(LOCAL, port)
  w:write(data)
  w:write_eof()
  local reply = r:read()
  w:close()
  return reply
end

-- The responses in raw, as a list of {status =, headers =, body =}.
local function responses(raw)
  local out, pos = {}, 1
  while pos <= #raw do
    local head_end = raw:find("\r\n\r\n", pos, true)
    if not head_end then break end
    local head = raw:sub(pos, head_end - 1)
    local status = tonumber(head:match("^HTTP/1%.1 (%d%d%d)"))
    local headers = {}
    for name, value in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do
      headers[name:lower()] = value
    end
    local len = tonumber(headers["content-length"] or "0")
    out[#out + 1] = {status = status, headers = headers, head = head,
                     body = raw:sub(head_end + 4, head_end + 3 + len)}
    pos = head_end + 4 + len
  end
  return out
end

describe("lasync.core._http_conn", function()
  it("checks its arguments before making anything", function()
    helper.run(function()
      local srv, port = server(nil, function() end)
      local r, w = lasync.open_connection(LOCAL, port)
      helper.raises_msg("expected a StreamReader",
                        core._http_conn, w, w)
      helper.raises_msg("opts must be a table", core._http_conn, r, w, 1)
      helper.raises_msg("option 'max_head' must be an integer",
                        core._http_conn, r, w, {max_head = 0})
      helper.raises_msg("option 'idle_timeout' must be a number",
                        core._http_conn, r, w, {idle_timeout = -1})
      local conn = core._http_conn(r, w)
      assert.matches("^lasync.http.conn: ", tostring(conn))
      conn:close()
      helper.raises_msg("the connection is closed", conn.send, conn, 200,
                        nil, "", true, false)
      w:close()
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("parses a request: method, raw_path, version, headers", function()
    helper.run(function()
      local srv, port, log = server(nil, serve)
      local raw = exchange(port, "GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\n" ..
        "X-Pad:   v  w \t\r\nACCEPT: a\r\nAccept: b\r\naccept: c\r\n" ..
        "X-Empty:\r\nExpect: 100-continue\r\n\r\n")
      local req = log[1]
      assert.equal("GET", req.method)
      assert.equal("/a%20b?x=1", req.raw_path)
      assert.equal("1.1", req.version)
      assert.equal("h", req.headers.host)
      assert.equal("v  w", req.headers["x-pad"])
      assert.equal("", req.headers["x-empty"])
      assert.equal("a", req.headers.accept)
      assert.same({accept = {"a", "b", "c"}}, req.multi)
      assert.is_true(req.keep_alive)
      assert.is_nil(req.content_length)
      assert.is_false(req.chunked)
      assert.is_false(req.expect_continue) -- no body to wait for
      assert.equal("", req.body)
      assert.equal("eof", log[2])
      local res = responses(raw)
      assert.equal(1, #res)
      assert.equal(200, res[1].status)
      assert.is_nil(req.multi.host)
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("answers pipelined requests in order", function()
    helper.run(function()
      local srv, port, log = server(nil, serve)
      local raw = exchange(port,
        "POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" ..
        "GET /2 HTTP/1.1\r\n\r\n" ..
        "POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
        "2\r\nxy\r\n1;ext=1\r\nz\r\n0\r\n\r\n" ..
        "GET /4 HTTP/1.1\r\nConnection: close\r\n\r\n" ..
        "GET /5 HTTP/1.1\r\n\r\n")
      assert.equal("/1", log[1].raw_path)
      assert.equal(3, log[1].content_length)
      assert.equal("abc", log[1].body)
      assert.equal("/2", log[2].raw_path)
      assert.equal("/3", log[3].raw_path)
      assert.is_true(log[3].chunked)
      assert.equal("xyz", log[3].body)
      assert.equal("/4", log[4].raw_path)
      assert.is_false(log[4].keep_alive)
      assert.is_nil(log[5]) -- /5 is never read
      local res = responses(raw)
      assert.equal(4, #res)
      assert.same({"abc", "", "xyz", ""}, {res[1].body, res[2].body,
                                           res[3].body, res[4].body})
      assert.equal("close", res[4].headers.connection)
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("speaks HTTP/1.0: keep-alive only when asked", function()
    helper.run(function()
      local srv, port, log = server(nil, serve)
      local raw = exchange(port, "GET /a HTTP/1.0\r\nConnection: " ..
        "keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.0\r\n\r\n")
      assert.equal("1.0", log[1].version)
      assert.is_true(log[1].keep_alive)
      assert.is_false(log[2].keep_alive)
      assert.is_nil(log[3])
      local res = responses(raw)
      assert.equal(2, #res)
      assert.equal("keep-alive", res[1].headers.connection)
      assert.is_nil(res[2].headers.connection)
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("reads a chunked body piece by piece with read_chunk", function()
    helper.run(function()
      local srv, port, log = server(nil, function(conn, log)
        local req = conn:next_request()
        log.req = req
        local pieces = {}
        while true do
          local piece = conn:read_chunk()
          if piece == nil then break end
          pieces[#pieces + 1] = piece
        end
        log.pieces = pieces
        conn:send(200, nil, table.concat(pieces), false, false)
      end)
      local big = string.rep("x", 100000)
      local raw = exchange(port, "POST / HTTP/1.1\r\nTransfer-Encoding: " ..
        "chunked\r\n\r\n" .. ("%x"):format(#big) .. "\r\n" .. big ..
        "\r\n5\r\nhello\r\n0\r\n\r\n")
      local total = table.concat(log.pieces)
      assert.equal(big .. "hello", total)
      for _, p in ipairs(log.pieces) do assert.is_true(#p <= 65536) end
      assert.is_true(#log.pieces >= 2)
      assert.equal(big .. "hello", responses(raw)[1].body)
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("read_body: many chunks, a large Content-Length body, after a chunk",
     function()
    helper.run(function()
      local srv, port, log = server({max_body = 4 * 1024 * 1024},
                                    function(conn, log)
        while true do
          local req = conn:next_request()
          if not req then return end
          local first = ""
          if req.raw_path == "/mixed" then first = conn:read_chunk() end
          local body = first .. conn:read_body()
          log[#log + 1] = body
          conn:send(200, nil, tostring(#body), true, false)
        end
      end)
      local pieces = {}
      for i = 1, 300 do pieces[i] = ("%x\r\n%s\r\n"):format(100,
        string.rep(string.char(64 + i % 26), 100)) end
      local big = string.rep("0123456789", 60000)
      local r, w = lasync.open_connection(LOCAL, port)
      w:write("POST /many HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
              table.concat(pieces) .. "0\r\n\r\n")
      w:write("POST /big HTTP/1.1\r\nContent-Length: " .. #big ..
              "\r\n\r\n")
      for i = 1, #big, 65536 do -- in parts, with pauses
        w:write(big:sub(i, i + 65535))
        lasync.sleep(0.001)
      end
      w:write("POST /mixed HTTP/1.1\r\nContent-Length: 6\r\n\r\nabcdef")
      w:write_eof()
      local raw = r:read()
      w:close()
      assert.equal(30000, #log[1])
      assert.equal(string.rep("B", 100), log[1]:sub(101, 200))
      assert.equal(big, log[2])
      assert.equal("abcdef", log[3])
      assert.equal(3, #responses(raw))
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("answers Expect: 100-continue on the first body read only", function()
    helper.run(function()
      local srv, port, log = server(nil, function(conn, log)
        local req = conn:next_request()
        log.expect = req.expect_continue
        if req.raw_path == "/read" then
          log.body = conn:read_body()
        else
          log.discarded = conn:discard_body()
        end
        conn:send(200, nil, "ok", false, false)
      end)
      local r, w = lasync.open_connection(LOCAL, port)
      w:write("POST /read HTTP/1.1\r\nContent-Length: 4\r\nExpect: " ..
              "100-continue\r\n\r\n")
      assert.equal("HTTP/1.1 100 Continue\r\n\r\n",
                   r:readuntil("\r\n\r\n"))
      w:write("body")
      local rest = r:read()
      w:close()
      assert.is_true(log.expect)
      assert.equal("body", log.body)
      assert.equal(200, responses(rest)[1].status)
      -- not read: no 100, and the connection cannot be reused
      local raw = exchange(port, "POST /skip HTTP/1.1\r\nContent-Length: " ..
                           "4\r\nExpect: 100-continue\r\n\r\n")
      assert.is_nil(raw:find("100 Continue", 1, true))
      assert.is_false(log.discarded)
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("discard_body drops the rest up to its cap", function()
    helper.run(function()
      local srv, port, log = server(nil, function(conn, log)
        while true do
          local req = conn:next_request()
          if not req then return end
          log[#log + 1] = conn:discard_body(10)
          conn:send(204, nil, nil, true, false)
        end
      end)
      local raw = exchange(port,
        "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" ..
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
        "3\r\nabc\r\n0\r\n\r\n" ..
        "POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\n" ..
        string.rep("y", 20))
      assert.same({true, true, false}, {log[1], log[2], log[3]})
      local res = responses(raw)
      assert.equal(204, res[1].status)
      assert.is_nil(res[1].headers["content-length"])
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("refuses next_request while a body is unread", function()
    helper.run(function()
      local srv, port, log = server(nil, function(conn, log)
        conn:next_request()
        log.err = helper.error_of(conn.next_request, conn)
      end)
      exchange(port, "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx")
      assert.matches("body was not consumed", log.err)
      srv:close()
      srv:wait_closed()
    end)
  end)

  describe("limits", function()
    local function status_of(opts, data, reader)
      local srv, port, log = server(opts, reader or serve)
      local raw = exchange(port, data)
      srv:close()
      srv:wait_closed()
      return log, responses(raw)
    end

    it("431 for a head over max_head", function()
      helper.run(function()
        local log, res = status_of({max_head = 100},
          "GET / HTTP/1.1\r\nX: " .. string.rep("a", 200) .. "\r\n\r\n")
        assert.equal(431, log[1])
        assert.equal(431, res[1].status)
        assert.equal("close", res[1].headers.connection)
        -- a head that never ends is cut at the limit, not buffered
        log = status_of({max_head = 100}, string.rep("a", 5000))
        assert.is_true(log[1] == 431 or log[1] == 400)
      end)
    end)

    it("431 for more than max_headers", function()
      helper.run(function()
        local log = status_of({max_headers = 3},
          "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n")
        assert.equal(431, log[1])
        log = status_of({max_headers = 3},
          "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
        assert.equal("GET", log[1].method)
      end)
    end)

    it("413 up front for a Content-Length over max_body", function()
      helper.run(function()
        local log = status_of({max_body = 10},
          "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n")
        assert.equal(413, log[1])
      end)
    end)

    it("413 for a chunked body whose total passes the limit", function()
      helper.run(function()
        local log = status_of({max_body = 10},
          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
          "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n")
        assert.equal(413, log[1])
      end)
    end)

    it("read_body(max) overrides the limit for one body", function()
      helper.run(function()
        local log = status_of(nil,
          "POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\nabcdef",
          function(conn, log)
            conn:next_request()
            log[1] = {conn:read_body(5)}
          end)
        assert.same({false, 413}, {log[1][1], log[1][2]})
      end)
    end)
  end)

  describe("timeouts", function()
    it("idle: nil when no request begins", function()
      helper.run(function()
        local srv, port, log = server({idle_timeout = 0.03}, serve)
        local r, w = lasync.open_connection(LOCAL, port)
        local elapsed, reply = helper.timed(r.read, r)
        assert.equal("", reply)
        assert.same({"eof"}, log)
        assert.is_true(elapsed >= 0.025)
        w:close()
        srv:close()
        srv:wait_closed()
      end)
    end)

    it("head: 408, not extended by bytes trickling in (slowloris)",
       function()
      helper.run(function()
        local srv, port, log = server({head_timeout = 0.1,
                                       idle_timeout = 5}, serve)
        local r, w = lasync.open_connection(LOCAL, port)
        local t0 = helper.now()
        local trickle = lasync.create_task(function()
          local data = "GET / HTTP/1.1\r\nX: " .. string.rep("a", 1000)
          for i = 1, #data do
            if w:is_closing() then return end
            w:write(data:sub(i, i))
            lasync.sleep(0.005)
          end
        end)
        -- the server closes with our bytes unread: a reset may follow
        local ok, reply = pcall(r.read, r)
        local elapsed = helper.now() - t0
        trickle:cancel()
        pcall(lasync.wait_for, trickle, 1)
        assert.equal(408, log[1])
        if ok then assert.equal(408, responses(reply)[1].status) end
        assert.is_true(elapsed >= 0.09 and elapsed < 1, elapsed)
        w:close()
        srv:close()
        srv:wait_closed()
      end)
    end)

    it("body: progress re-arms body_timeout; idle gives way to head",
       function()
      helper.run(function()
        local srv, port, log = server({body_timeout = 0.06,
                                       idle_timeout = 0.06,
                                       head_timeout = 5}, serve)
        local r, w = lasync.open_connection(LOCAL, port)
        lasync.sleep(0.03)
        w:write("POST /slow HTTP/1.1\r\nContent-Length: 5\r\n")
        lasync.sleep(0.09) -- past idle_timeout: the head has begun
        w:write("Connection: close\r\n\r\n")
        for i = 1, 5 do -- 0.15 s in all, never 0.06 s without a byte
          lasync.sleep(0.03)
          w:write(("x"):rep(1))
        end
        local reply = r:read()
        w:close()
        assert.equal("/slow", log[1].raw_path)
        assert.equal("xxxxx", log[1].body)
        assert.equal(200, responses(reply)[1].status)
        srv:close()
        srv:wait_closed()
      end)
    end)

    it("body: 408 after body_timeout without progress", function()
      helper.run(function()
        local srv, port, log = server({body_timeout = 0.05}, serve)
        local r, w = lasync.open_connection(LOCAL, port)
        w:write("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        local reply = r:read()
        assert.equal(408, log[1])
        assert.equal(408, responses(reply)[1].status)
        w:close()
        srv:close()
        srv:wait_closed()
      end)
    end)
  end)

  describe("responses", function()
    local function respond(fn, request)
      local srv, port, log = server(nil, function(conn, log)
        local req = conn:next_request()
        log.results = {pcall(fn, conn, req)}
      end)
      local raw = exchange(port, request or "GET / HTTP/1.1\r\n\r\n")
      srv:close()
      srv:wait_closed()
      return raw, log.results
    end

    it("send: status line, Date, headers, Content-Length, body", function()
      helper.run(function()
        local raw = respond(function(conn)
          conn:send(201, {["X-One"] = "1", ["set-cookie"] = {"a=1", "b=2"}},
                    "hello", true, false)
        end)
        assert.matches("^HTTP/1%.1 201 Created\r\n", raw)
        assert.matches("\r\nX%-One: 1\r\n", raw)
        assert.matches("\r\nset%-cookie: a=1\r\nset%-cookie: b=2\r\n", raw)
        assert.matches("\r\nDate: %a%a%a, %d%d %a%a%a %d%d%d%d " ..
                       "%d%d:%d%d:%d%d GMT\r\n", raw)
        assert.matches("\r\nContent%-Length: 5\r\n\r\nhello$", raw)
        assert.is_nil(raw:find("Connection", 1, true))
      end)
    end)

    it("send: a given reason, a given Date, HEAD, 304", function()
      helper.run(function()
        local raw = respond(function(conn)
          conn:send(299, {Date = "x"}, "body", false, true, "Fine")
        end)
        assert.equal("HTTP/1.1 299 Fine\r\nDate: x\r\nContent-Length: 4" ..
                     "\r\nConnection: close\r\n\r\n", raw)
        raw = respond(function(conn)
          conn:send(304, nil, "ignored", true, false)
        end)
        assert.matches("^HTTP/1%.1 304 Not Modified\r\nDate: [^\r]+\r\n" ..
                       "\r\n$", raw)
      end)
    end)

    it("refuses header injection and framing headers; writes nothing",
       function()
      helper.run(function()
        local raw, res = respond(function(conn)
          local errs = {}
          for _, h in ipairs{{["X"] = "a\r\nInjected: 1"},
                             {["X\r\nY"] = "a"}, {["X Y"] = "a"},
                             {[""] = "a"}, {X = "a\0b"}, {X = {"ok", "b\n"}},
                             {["Content-Length"] = "1"},
                             {["transfer-encoding"] = "chunked"},
                             {Connection = "close"}, {X = true}} do
            errs[#errs + 1] = helper.error_of(conn.send, conn, 200, h, "",
                                              true, false)
          end
          errs[#errs + 1] = helper.error_of(conn.send, conn, 200, nil, "",
                                            true, false, "OK\r\nX: 1")
          errs[#errs + 1] = helper.error_of(conn.send, conn, 99, nil, "",
                                            true, false)
          return errs
        end)
        assert.equal("", raw)
        local errs = res[2]
        assert.equal(12, #errs)
        for _, e in ipairs(errs) do
          assert.matches("^lasync%.http%.conn:send: ", tostring(e))
        end
        assert.matches("CR, LF or NUL", errs[1])
        assert.matches("not a token", errs[2])
        assert.matches("written by the connection", errs[7])
      end)
    end)

    it("send_head + send_chunk + send_end: chunked for HTTP/1.1",
       function()
      helper.run(function()
        local raw = respond(function(conn)
          conn:send_head(200, {["Content-Type"] = "text/plain"}, nil, true,
                         false)
          conn:send_chunk("hello")
          conn:send_chunk("")
          conn:send_chunk(string.rep("z", 17))
          conn:send_end()
        end)
        assert.matches("\r\nTransfer%-Encoding: chunked\r\n\r\n" ..
                       "5\r\nhello\r\n11\r\nzzzzzzzzzzzzzzzzz\r\n0\r\n\r\n$",
                       raw)
      end)
    end)

    it("send_head: Content-Length, HTTP/1.0 until close, HEAD", function()
      helper.run(function()
        local raw = respond(function(conn)
          conn:send_head(200, nil, 3, true, false)
          conn:send_chunk("abc")
          conn:send_end()
        end)
        assert.matches("\r\nContent%-Length: 3\r\n\r\nabc$", raw)
        raw = respond(function(conn)
          conn:send_head(200, nil, nil, true, false)
          conn:send_chunk("abc")
          conn:send_end()
        end, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert.is_nil(raw:find("keep-alive", 1, true))
        assert.is_nil(raw:find("Transfer-Encoding", 1, true))
        assert.matches("\r\n\r\nabc$", raw)
        raw = respond(function(conn)
          conn:send_head(200, nil, nil, true, true)
          conn:send_chunk("abc")
          conn:send_end()
        end, "HEAD / HTTP/1.1\r\n\r\n")
        assert.matches("Transfer%-Encoding: chunked\r\n\r\n$", raw)
      end)
    end)

    it("returns true above the writer's high-water mark", function()
      helper.run(function()
        local raw, res = respond(function(conn)
          return conn:send(200, nil, string.rep("b", 4 * 1024 * 1024),
                           false, false)
        end)
        assert.is_true(res[2])
        assert.equal(4 * 1024 * 1024, #responses(raw)[1].body)
      end)
    end)
  end)

  it("works unchanged over TLS", function()
    local tls_helper = require "tls_helper"
    local certs = tls_helper.certs()
    helper.run(function()
      local ctx = lasync.ssl.context { purpose = "server",
        certfile = certs.server.cert, keyfile = certs.server.key }
      local srv, port, log = server(nil, serve, { ssl = ctx })
      local r, w = lasync.open_connection(LOCAL, port, {
        ssl = lasync.ssl.context { cafile = certs.ca.cert } })
      w:write("POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
              "3\r\nabc\r\n0\r\n\r\nGET /u HTTP/1.1\r\nConnection: " ..
              "close\r\n\r\n")
      local raw = r:read()
      w:close()
      assert.equal("abc", log[1].body)
      assert.equal("/u", log[2].raw_path)
      local res = responses(raw)
      assert.equal(2, #res)
      assert.equal("abc", res[1].body)
      srv:close()
      srv:wait_closed()
    end)
    tls_helper.cleanup()
  end)

  it("a cancelled next_request leaves the bytes for the next", function()
    helper.run(function()
      local srv, port, log = server(nil, function(conn, log)
        local t = lasync.create_task(function() return conn:next_request() end)
        helper.wait_until(function() return log.go end)
        t:cancel()
        log.cancelled = pcall(lasync.wait_for, t, 1) == false
        local inner = lasync.create_task(function()
          return conn:next_request()
        end)
        lasync.sleep(0)
        log.busy = helper.error_of(conn.next_request, conn)
        inner:cancel()
        pcall(lasync.wait_for, inner, 1)
        local req = conn:next_request()
        log.path = req.raw_path
        conn:send(200, nil, "", false, false)
      end)
      local r, w = lasync.open_connection(LOCAL, port)
      w:write("GET /par")
      lasync.sleep(0.01)
      log.go = true
      helper.wait_until(function() return log.cancelled ~= nil end)
      w:write("tial HTTP/1.1\r\n\r\n")
      local raw = r:read()
      w:close()
      assert.is_true(log.cancelled)
      assert.matches("another task is reading", log.busy)
      assert.equal("/partial", log.path)
      assert.equal(200, responses(raw)[1].status)
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("wait_peer_close returns when the peer closes", function()
    helper.run(function()
      local srv, port, log = server(nil, function(conn, log)
        local req = conn:next_request()
        log.path = req.raw_path
        conn:wait_peer_close()
        log.closed = true
      end)
      local r, w = lasync.open_connection(LOCAL, port)
      w:write("GET /x HTTP/1.1\r\n\r\n")
      helper.wait_until(function() return log.path end)
      assert.is_nil(log.closed)
      w:close()
      helper.wait_until(function() return log.closed end)
      srv:close()
      srv:wait_closed()
    end)
  end)
end)

describe("lasync.core._http_date", function()
  it("formats IMF-fixdate and parses the three formats", function()
    assert.equal("Sun, 06 Nov 1994 08:49:37 GMT", core._http_date(784111777))
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$",
                   core._http_date())
    assert.equal(784111777,
                 core._http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.equal(784111777,
                 core._http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT"))
    assert.equal(784111777,
                 core._http_parse_date("Sun Nov  6 08:49:37 1994"))
    assert.is_nil(core._http_parse_date("Sun, 06 Nov 1994 08:49:37 UTC"))
    assert.is_nil(core._http_parse_date("yesterday"))
    assert.is_nil(core._http_parse_date(""))
    assert.has_error(function() core._http_parse_date(1) end)
  end)
end)
