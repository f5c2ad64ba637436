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

-- data compressed by python3's zlib: fmt "gzip", "zlib" (deflate as most
-- send it) or "raw" (deflate as some browsers send it)
local function compress(fmt, data)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  local wbits = ({ gzip = 31, zlib = 15, raw = -15 })[fmt]
  local p = assert(io.popen(("python3 -c 'import sys, zlib; " ..
    "c = zlib.compressobj(6, zlib.DEFLATED, %d); " ..
    "d = open(sys.argv[1], \"rb\").read(); " ..
    "sys.stdout.buffer.write(c.compress(d) + c.flush())' %s"):format(
    wbits, path)))
  local out = p:read("a")
  p:close()
  os.remove(path)
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
      helper.raises_msg("'setup_headers' (a function) go together",
                        core._http_conn, r, w, {request_mt = {}})
      helper.raises_msg("'setup_headers' (a function) go together",
                        core._http_conn, r, w, {request_mt = {},
                        headers_mt = {}, setup_headers = 1})
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

  it("reads heads and bodies of any size after an idle wait", function()
    -- an idle connection gives its read buffer back; the next read gets a
    -- small one, which grows for a large head or body
    helper.run(function()
      local srv, port, log = server(nil, serve)
      local r, w = lasync.open_connection(LOCAL, port)
      local big = ("x"):rep(3000)
      local body = ("b"):rep(100000)
      local function ask(req, want)
        w:write(req)
        local head = r:readuntil("\r\n\r\n")
        local len = tonumber(head:match("Content%-Length: (%d+)"))
        assert.equal(want, r:readexactly(len))
      end
      ask("GET /1 HTTP/1.1\r\n\r\n", "")
      lasync.sleep(0.01) -- the server waits idle
      ask("POST /2 HTTP/1.1\r\nX-Big: " .. big .. "\r\nContent-Length: " ..
          #body .. "\r\n\r\n" .. body, body)
      lasync.sleep(0.01)
      ask("GET /3 HTTP/1.1\r\nX-Big: " .. big .. "\r\n\r\n", "")
      ask("GET /4 HTTP/1.1\r\nConnection: close\r\n\r\n", "")
      assert.equal("", r:read())
      w:close()
      assert.equal(big, log[2].headers["x-big"])
      assert.equal(4, #log)
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("takes heads with more headers than it keeps inline", function()
    -- 24 header offsets live in the connection; a head with more gets an
    -- array of max_headers until the next head begins
    helper.run(function()
      local srv, port, log = server({max_headers = 40}, serve)
      local many = {}
      for i = 1, 39 do many[#many + 1] = ("X-H%d: v%d\r\n"):format(i, i) end
      many = table.concat(many)
      local raw = exchange(port, "GET /1 HTTP/1.1\r\n" .. many .. "\r\n" ..
        "GET /2 HTTP/1.1\r\nA: 1\r\n\r\n" ..
        "GET /3 HTTP/1.1\r\n" .. many .. "X-More: 1\r\n\r\n" ..
        "GET /4 HTTP/1.1\r\n" .. many .. "X-More: 1\r\nX-Last: 1\r\n\r\n")
      local res = responses(raw)
      assert.equal(4, #res)
      assert.same({200, 200, 200, 431},
                  {res[1].status, res[2].status, res[3].status, res[4].status})
      for i = 1, 39 do
        assert.equal("v" .. i, log[1].headers["x-h" .. i])
        assert.equal("v" .. i, log[3].headers["x-h" .. i])
      end
      assert.same({a = "1"}, log[2].headers)
      assert.equal("1", log[3].headers["x-more"])
      assert.equal(431, log[4])
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
        assert.is_true(elapsed >= 0.09 and elapsed < 3, elapsed)
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

    it("send: content_type, as the first header; checked", function()
      helper.run(function()
        local raw = respond(function(conn)
          conn:send(200, {["X-One"] = "1"}, "hi", true, false, nil,
                    "text/plain")
        end)
        assert.matches("^HTTP/1%.1 200 OK\r\nContent%-Type: text/plain\r\n" ..
                       "X%-One: 1\r\nDate: [^\r]+\r\nContent%-Length: 2\r\n" ..
                       "\r\nhi$", raw)
        local res
        raw, res = respond(function(conn)
          return helper.error_of(conn.send, conn, 200, nil, "", true, false,
                                 nil, "a\r\nX: 1"),
                 helper.error_of(conn.send, conn, 200, nil, "", true, false,
                                 nil, 42)
        end)
        assert.equal("", raw)
        assert.matches("^lasync%.http%.conn:send: the content type " ..
                       "contains CR, LF or NUL", res[2])
        assert.matches("^lasync%.http%.conn:send: content_type must be a " ..
                       "string or nil %(got number%)", res[3])
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
      -- 32 MB: more than loopback's socket buffers can take at once
      helper.run(function()
        local raw, res = respond(function(conn)
          return conn:send(200, nil, string.rep("b", 32 * 1024 * 1024),
                           false, false)
        end)
        assert.is_true(res[2])
        assert.equal(32 * 1024 * 1024, #responses(raw)[1].body)
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

  it("a body read while wait_peer_close waits: both work", function()
    helper.run(function()
      local srv, port, log = server(nil, function(conn, log)
        local req = conn:next_request()
        local watcher = lasync.create_task(function()
          conn:wait_peer_close()
          log.closed = true
        end)
        lasync.sleep(0)
        log.body = conn:read_body() -- waits for the body meanwhile
        log.chunk = conn:read_chunk()
        conn:send(200, nil, req.raw_path, true, false)
        lasync.wait_for(watcher, 2)
      end)
      local r, w = lasync.open_connection(LOCAL, port)
      w:write("POST /w HTTP/1.1\r\nContent-Length: 4\r\n\r\nab")
      lasync.sleep(0.02)
      w:write("cd")
      assert.matches("^HTTP/1%.1 200 ", r:readuntil("/w"))
      assert.is_nil(log.closed)
      w:close()
      helper.wait_until(function() return log.closed end)
      assert.equal("abcd", log.body)
      assert.is_nil(log.chunk)
      srv:close()
      srv:wait_closed()
    end)
  end)

  it("wait_peer_close leaves pipelined bytes; not during a body read",
     function()
    helper.run(function()
      local srv, port, log = server(nil, function(conn, log)
        local req = conn:next_request()
        local reading = lasync.create_task(function()
          return conn:read_body()
        end)
        lasync.sleep(0)
        log.during = helper.error_of(conn.wait_peer_close, conn)
        log.body = lasync.wait_for(reading, 1)
        local watcher = lasync.create_task(function()
          conn:wait_peer_close()
          return "closed"
        end)
        helper.wait_until(function() return log.go end)
        assert.is_false(watcher:done())
        watcher:cancel()
        pcall(lasync.wait_for, watcher, 1)
        conn:send(200, nil, req.raw_path, true, false)
        req = conn:next_request() -- the pipelined one is still there
        conn:send(200, nil, req.raw_path, false, false)
      end)
      local r, w = lasync.open_connection(LOCAL, port)
      w:write("POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
      helper.wait_until(function() return log.during end)
      w:write("abcGET /2 HTTP/1.1\r\n\r\n")
      lasync.sleep(0.02)
      log.go = true
      local raw = r:read()
      w:close()
      assert.matches("another task is reading", log.during)
      assert.equal("abc", log.body)
      local res = responses(raw)
      assert.same({"/1", "/2"}, {res[1].body, res[2].body})
      srv:close()
      srv:wait_closed()
    end)
  end)
  describe("compressed bodies (Content-Encoding)", function()
    -- a body that compresses well and still has some variety
    local text = {}
    for i = 1, 20000 do text[i] = ("line %d of the body\n"):format(i) end
    text = table.concat(text) -- about 460 KB

    local function chunked(data, size)
      local out = {}
      for i = 1, #data, size do
        local piece = data:sub(i, i + size - 1)
        out[#out + 1] = ("%x\r\n%s\r\n"):format(#piece, piece)
      end
      return table.concat(out) .. "0\r\n\r\n"
    end

    local function post(coding, body, extra)
      return ("POST / HTTP/1.1\r\nContent-Encoding: %s\r\n" ..
        "Content-Length: %d\r\n%s\r\n"):format(coding, #body, extra or "") ..
        body
    end

    it("read_body inflates gzip, zlib and raw deflate; identity as is",
      function()
      local small = "hello, compressed world"
      local bodies = {
        post("gzip", compress("gzip", small)),
        post("x-gzip", compress("gzip", small)),
        post("GZip", compress("gzip", text)),
        post("deflate", compress("zlib", small)),
        post("deflate", compress("raw", small)),
        post(" Deflate ", compress("raw", text)),
        post("deflate", compress("raw", "")),
        post("identity", small),
        "POST / HTTP/1.1\r\nContent-Encoding: br\r\nContent-Length: 0" ..
          "\r\n\r\n", -- no body: nothing to decode
      }
      helper.run(function()
        local srv, port, log = server(nil, serve)
        local raw = exchange(port, table.concat(bodies))
        local res = responses(raw)
        local want = {small, small, text, small, small, text, "", small, ""}
        assert.equal(#want, #res)
        for i, w in ipairs(want) do
          assert.equal(200, res[i].status)
          assert.equal(w, log[i].body)
          assert.equal(w, res[i].body)
        end
        srv:close()
        srv:wait_closed()
      end)
    end)

    it("a chunked gzip body: read_chunk pieces of 64 KiB at most",
      function()
      local z = compress("gzip", text)
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
          log.after = conn:read_chunk()
          conn:send(200, nil, #table.concat(pieces) .. "", false, false)
        end)
        local raw = exchange(port, "POST / HTTP/1.1\r\nTransfer-Encoding: " ..
          "chunked\r\nContent-Encoding: gzip\r\n\r\n" .. chunked(z, 1000))
        assert.equal(text, table.concat(log.pieces))
        for _, p in ipairs(log.pieces) do assert.is_true(#p <= 65536) end
        assert.is_true(#log.pieces >= 7)
        assert.is_nil(log.after)
        assert.equal(tostring(#text), responses(raw)[1].body)
        srv:close()
        srv:wait_closed()
      end)
    end)

    it("a body arriving a few bytes at a time, read_body", function()
      local z = compress("raw", text)
      helper.run(function()
        local srv, port, log = server(nil, serve)
        local r, w = lasync.open_connection(LOCAL, port)
        local msg = post("deflate", z, "Connection: close\r\n")
        local i = 1
        while i <= #msg do -- 1 byte first: raw or zlib is not known yet
          local n = i < 200 and 1 or 4000
          w:write(msg:sub(i, i + n - 1))
          w:drain()
          i = i + n
          if i < 200 then lasync.sleep(0) end
        end
        local raw = r:read()
        w:close()
        assert.equal(text, log[1].body)
        assert.equal(200, responses(raw)[1].status)
        srv:close()
        srv:wait_closed()
      end)
    end)

    it("discard_body drops a compressed body without inflating it",
      function()
      helper.run(function()
        local srv, port, log = server(nil, function(conn, log)
          while true do
            local req = conn:next_request()
            if not req then return end
            if req.raw_path == "/half" then log.piece = conn:read_chunk() end
            log[#log + 1] = conn:discard_body(1000000)
            conn:send(204, nil, nil, true, false)
          end
        end)
        local garbage = string.rep("\255", 100)
        local raw = exchange(port, post("gzip", garbage) ..
          post("gzip", compress("gzip", text)):gsub("POST /", "POST /half")
          .. post("deflate", compress("zlib", "x")))
        assert.same({true, true, true}, {log[1], log[2], log[3]})
        assert.equal(text:sub(1, #log.piece), log.piece)
        assert.equal(3, #responses(raw))
        srv:close()
        srv:wait_closed()
      end)
    end)

    it("400 for a corrupt, truncated or overlong stream", function()
      local z = compress("gzip", "hello")
      local cases = {
        post("gzip", "not gzip at all"),
        post("gzip", z:sub(1, -5)), -- truncated: no length
        post("gzip", z .. z), -- a second member: data after the end
        post("gzip", z:sub(1, 12) .. "\0\0\0" .. z:sub(16)),
        post("deflate", "\255\255\255"), -- raw: an invalid block type
        post("deflate", "x"), -- too short even to know its format
        post("deflate", compress("zlib", "abc"):sub(1, -2)), -- bad adler
      }
      helper.run(function()
        for i, data in ipairs(cases) do
          local srv, port, log = server(nil, serve)
          local res = responses(exchange(port, data))
          assert.equal(400, log[1], "case " .. i)
          assert.equal(400, res[1].status, "case " .. i)
          srv:close()
          srv:wait_closed()
        end
      end)
    end)

    it("415 for an unknown or stacked coding, before the body", function()
      local cases = {
        post("br", "xyz"),
        post("gzip, gzip", "xyz"),
        post("gzip,identity", "xyz"),
        post("compress", "xyz"),
        post("", "xyz"),
        post("gzip", "xyz", "Content-Encoding: gzip\r\n"),
        "POST / HTTP/1.1\r\nContent-Encoding: br\r\nTransfer-Encoding: " ..
          "chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n",
      }
      helper.run(function()
        for i, data in ipairs(cases) do
          local srv, port, log = server(nil, serve)
          local res = responses(exchange(port, data))
          assert.equal(415, log[1], "case " .. i)
          assert.matches("Content%-Encoding", log.msg)
          assert.equal(415, res[1].status, "case " .. i)
          srv:close()
          srv:wait_closed()
        end
      end)
    end)

    it("413 once the inflated size passes the limit", function()
      helper.run(function()
        for _, limit in ipairs({#text - 1, 1000}) do
          local srv, port, log = server({max_body = 200000}, serve)
          local raw = exchange(port, "POST / HTTP/1.1\r\nTransfer-Encoding:"
            .. " chunked\r\nContent-Encoding: gzip\r\n\r\n" ..
            chunked(compress("gzip", text), 50000))
          assert.equal(413, log[1])
          assert.equal(413, responses(raw)[1].status)
          srv:close()
          srv:wait_closed()
          -- read_body(max) and read_chunk count the inflated bytes too
          srv, port, log = server(nil, function(conn, log)
            conn:next_request()
            log[1] = {conn:read_body(limit)}
            conn:next_request()
            repeat
              local c = conn:read_chunk()
              log[2] = c
            until not c
            conn:send(200, nil, "", false, false)
          end)
          local z = compress("gzip", text)
          exchange(port, post("gzip", z) .. post("gzip", z))
          assert.same({false, 413}, {log[1][1], log[1][2]})
          assert.is_nil(log[2])
          if limit > #z then -- else the compressed bytes are over it too
            assert.matches("decompressed body exceeds", log[1][3])
          end
          srv:close()
          srv:wait_closed()
          srv, port, log = server({max_body = #text}, function(conn, log)
            conn:next_request()
            log[1] = conn:read_body()
            conn:next_request()
            repeat
              local c, st = conn:read_chunk()
              log[2] = st or log[2]
            until not c
          end)
          exchange(port, post("gzip", z) .. post("gzip", compress("gzip",
            text .. "!")))
          assert.equal(text, log[1])
          assert.equal(413, log[2])
          srv:close()
          srv:wait_closed()
        end
      end, 20) -- compress() starts python3 ten times: slow when busy
    end)

    it("a body read cancelled midway, then close or the next request",
      function()
      local z = compress("gzip", text)
      helper.run(function()
        local srv, port, log = server(nil, function(conn, log)
          for _ = 1, 2 do
            local req = conn:next_request()
            if not req then return end
            local t = lasync.create_task(function()
              return conn:read_body()
            end)
            helper.wait_until(function() return log.go end)
            t:cancel()
            log[#log + 1] = pcall(lasync.wait_for, t, 1) == false
            if req.raw_path == "/close" then return end
            log.go = false
            log.err = helper.error_of(conn.next_request, conn)
            log.discarded = conn:discard_body(1000000)
          end
        end)
        local r, w = lasync.open_connection(LOCAL, port)
        local msg = post("gzip", z)
        w:write(msg:sub(1, #msg - 100))
        lasync.sleep(0.01)
        log.go = true
        helper.wait_until(function() return log.err ~= nil end)
        w:write(msg:sub(#msg - 99))
        helper.wait_until(function() return log.discarded ~= nil end)
        msg = msg:gsub("POST /", "POST /close")
        w:write(msg:sub(1, #msg - 100))
        lasync.sleep(0.01)
        log.go = true
        r:read()
        w:close()
        assert.same({true, true}, {log[1], log[2]})
        assert.matches("body was not consumed", log.err)
        assert.is_true(log.discarded)
        srv:close()
        srv:wait_closed()
      end)
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
