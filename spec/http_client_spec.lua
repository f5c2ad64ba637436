-- The HTTP client (issue 13): lasync.http.Session against lasync's own
-- server (an App in the same process) and, for odd responses, a raw
-- loopback server that answers canned bytes.
local helper = require "helper"
local tls = require "tls_helper"
local lasync = helper.lasync
local http = lasync.http

-- Runs body(base, app) with an App on a free loopback port whose routes
-- routes(app) adds; the server is closed afterwards.
local function with_app(routes, body, timeout)
  return helper.run(function()
    local app = http.App()
    routes(app)
    local server = app:start { host = "127.0.0.1", port = 0 }
    local host, port = server:address()
    local ok, err = pcall(body, ("http://%s:%d"):format(host, port), app)
    server:close()
    server:wait_closed()
    if not ok then error(err, 0) end
  end, timeout)
end

-- Runs body(base, stats) against a raw server: answer(head, r, w, n) is
-- called for each request head (n: its number on this connection) and
-- writes what it likes; stats.conns counts connections.
local function with_raw(answer, body, timeout)
  return helper.run(function()
    local stats = { conns = 0, heads = {} }
    local srv, host, port, shutdown = helper.serve(function(r, w)
      stats.conns = stats.conns + 1
      local n = 0
      while true do
        local ok, head = pcall(r.readuntil, r, "\r\n\r\n")
        if not ok then break end
        n = n + 1
        stats.heads[#stats.heads + 1] = head
        local len = tonumber(head:lower():match("content%-length: (%d+)"))
        if len and len > 0 then stats.body = r:readexactly(len) end
        if answer(head, r, w, n) == "close" then break end
      end
      w:close()
    end)
    local ok, err = pcall(body, ("http://%s:%d"):format(host, port), stats)
    shutdown()
    if not ok then error(err, 0) end
  end, timeout)
end

local function canned(text)
  return function(_, _, w) w:write(text) end
end

describe("http.Session", function()
  it("gets, posts and reads text and json through one connection",
    function()
      with_app(function(app)
        app:get("/", function() return "hello" end)
        app:get("/json", function() return http.json { a = 1 } end)
        app:post("/echo", function(req)
          return http.Response { body = req:read(),
            content_type = req.headers["content-type"] }
        end)
      end, function(base)
        local s <close> = http.Session { base_url = base }
        local r <close> = s:get("/")
        assert.equals(200, r.status)
        assert.equals("OK", r.reason)
        assert.equals("1.1", r.version)
        assert.equals("hello", r:text())
        assert.equals("hello", r:read()) -- cached
        assert.equals("text/plain", r.content_type)
        assert.equals(5, r.content_length)
        assert.equals(base .. "/", r.url)
        assert.equals("GET", r.method)
        assert.same({}, r.history)
        assert.equals(1, s.pool.nidle)
        assert.equals(1, s:get("/json"):json().a)
        local e = s:post("/echo", { body = "abc" })
        assert.equals("abc", e:read())
        assert.equals("application/octet-stream", e.headers["Content-Type"])
        local j = s:post("/echo", { json = { x = 1 } })
        assert.equals(1, j:json().x)
        local f = s:post("/echo", { data = { b = "2", a = "x y" } })
        assert.equals("a=x+y&b=2", f:read())
        assert.equals("application/x-www-form-urlencoded", f.content_type)
        local m = s:get("/missing")
        assert.equals(404, m.status)
        m:release() -- its body unread: the connection is closed
        assert.equals(0, s.pool.nidle)
      end)
    end)

  it("reuses a kept-alive connection only after its body was read",
    function()
      with_raw(canned("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        function(base, stats)
          local s <close> = http.Session()
          for _ = 1, 5 do assert.equals("hi", s:get(base):read()) end
          assert.equals(1, stats.conns)
          local r = s:get(base) -- not read: released, so closed
          r:release()
          assert.equals("hi", s:get(base):read())
          assert.equals(2, stats.conns)
          do local _ <close> = s:get(base) end
          assert.equals("hi", s:get(base):read())
          assert.equals(3, stats.conns)
        end)
    end)

  it("sends Host, User-Agent, Accept-Encoding and the headers given",
    function()
      with_raw(canned("HTTP/1.1 204 No Content\r\n\r\n"), function(base, st)
        local s <close> = http.Session { headers = { ["X-Session"] = "1",
          ["X-Both"] = "s" } }
        local r = s:get(base .. "/p?q=1", { headers = { ["X-Both"] = "r" },
          params = { z = "a b" } })
        assert.equals(204, r.status)
        assert.equals("", r:read())
        local head = st.heads[1]
        assert.matches("^GET /p%?q=1&z=a%+b HTTP/1%.1\r\n", head)
        assert.matches("\r\nHost: 127%.0%.0%.1:%d+\r\n", head)
        assert.matches("\r\nUser%-Agent: lasync/", head)
        assert.matches("\r\nAccept%-Encoding: gzip, deflate\r\n", head)
        assert.matches("\r\nX%-Session: 1\r\n", head)
        assert.matches("\r\nX%-Both: r\r\n", head)
        assert.is_nil(head:find("X-Both: s", 1, true))
      end)
    end)

  it("talks https with the default context, a context, or ssl = false",
    function()
      local certs = tls.certs()
      helper.run(function()
        local app = http.App()
        app:get("/", function(req) return req.scheme end)
        local server = app:start { host = "127.0.0.1", port = 0,
          ssl = lasync.ssl.context { purpose = "server",
            certfile = certs.server.cert, keyfile = certs.server.key } }
        local _, port = server:address()
        local url = ("https://127.0.0.1:%d/"):format(port)
        local ctx = lasync.ssl.context { cafile = certs.ca.cert }
        local s <close> = http.Session { ssl = ctx }
        assert.equals("https", s:get(url):text())
        assert.equals("https", s:get(url):text())
        assert.equals(1, s.pool.nidle)
        local n <close> = http.Session { ssl = false }
        assert.equals("https", n:get(url):text())
        local d <close> = http.Session()
        local err = helper.error_of(d.get, d, url)
        assert.is_true(lasync.is_error(err, http.ClientSSLError))
        assert.is_true(lasync.is_error(err, http.ClientConnectorError))
        assert.equals(url, err.url)
        assert.is_string(err.reason)
        server:close()
        server:wait_closed()
      end)
      tls.cleanup()
    end)
end)

describe("http.Session responses", function()
  it("knows which responses have no body", function()
    with_raw(function(head, _, w)
      if head:find("^HEAD") then
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
      elseif head:find("^GET /204") then
        w:write("HTTP/1.1 204 No Content\r\n\r\n")
      elseif head:find("^GET /304") then
        w:write("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")
      elseif head:find("^GET /101") then
        w:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n" ..
          "Connection: Upgrade\r\n\r\n")
        return "close"
      else
        w:write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n" ..
          "\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
      end
    end, function(base, stats)
      local s <close> = http.Session()
      local h = s:head(base)
      assert.equals(10, h.content_length)
      assert.equals("", h:read())
      assert.equals("", s:get(base .. "/204"):read())
      assert.equals(304, s:get(base .. "/304").status)
      local r = s:get(base .. "/c")
      assert.equals(200, r.status)
      assert.equals("ok", r:read())
      assert.equals(1, stats.conns)
      local up = s:get(base .. "/101") -- not kept: another protocol now
      assert.equals(101, up.status)
      assert.equals("", up:read())
      assert.equals(0, s.pool.nidle)
    end)
  end)

  it("reads chunked bodies, bodies until close and LF-only heads",
    function()
      with_raw(function(head, _, w)
        if head:find("^GET /chunked") then
          w:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" ..
            "3\r\nabc\r\n")
          lasync.sleep(0.01)
          w:write("a\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n")
        elseif head:find("^GET /lf") then
          w:write("HTTP/1.1 200 OK\nContent-Length: 3\nX-Odd:  v \n\nabc")
        else
          w:write("HTTP/1.0 200 OK\r\n\r\nuntil close")
          return "close"
        end
      end, function(base, stats)
        local s <close> = http.Session()
        assert.equals("abc0123456789", s:get(base .. "/chunked"):read())
        local lf = s:get(base .. "/lf")
        assert.equals("abc", lf:read())
        assert.equals("v", lf.headers["x-odd"])
        assert.equals(1, stats.conns)
        local c = s:get(base .. "/close")
        assert.equals("1.0", c.version)
        assert.equals("until close", c:read())
        assert.equals(0, s.pool.nidle)
      end)
    end)

  it("decompresses gzip and deflate bodies unless told not to", function()
    local text = string.rep("compressible text ", 500)
    local gz = assert(io.popen("printf '%s' '" .. text .. "' | gzip -c"))
      :read("a")
    with_raw(function(head, _, w)
      local body = head:find("^GET /chunked") and
        (("%x\r\n%s\r\n0\r\n\r\n"):format(#gz, gz)) or gz
      w:write("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n" ..
        (head:find("^GET /chunked") and "Transfer-Encoding: chunked\r\n" or
          ("Content-Length: %d\r\n"):format(#gz)) .. "\r\n" .. body)
    end, function(base)
      local s <close> = http.Session()
      assert.equals(text, s:get(base):read())
      assert.equals(text, s:get(base .. "/chunked"):read())
      local raw <close> = http.Session { auto_decompress = false }
      local r = raw:get(base)
      assert.equals(gz, r:read())
    end)
  end)

  it("streams with iter_chunked and lines", function()
    with_raw(canned("HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n" ..
      "one\r\ntwo\nthree"), function(base)
      local s <close> = http.Session()
      local parts = {}
      for c in s:get(base):iter_chunked(4) do parts[#parts + 1] = c end
      assert.same({ "one\r", "\ntwo", "\nthr", "ee" }, parts)
      local lines = {}
      for l in s:get(base):lines() do lines[#lines + 1] = l end
      assert.same({ "one", "two", "three" }, lines)
      helper.raises_msg("iter_chunked: n must be a positive integer",
        function() s:get(base):iter_chunked(0) end)
    end)
  end)

  it("raises ClientPayloadError for short bodies and bad chunks", function()
    with_raw(function(head, _, w)
      if head:find("^GET /short") then
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
      elseif head:find("^GET /chunk") then
        w:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" ..
          "zz\r\nabc\r\n0\r\n\r\n")
      elseif head:find("^GET /gzip") then
        w:write("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n" ..
          "Content-Length: 5\r\n\r\nnotgz")
      end
      return "close"
    end, function(base)
      local s <close> = http.Session()
      for _, p in ipairs { "/short", "/chunk", "/gzip" } do
        local r = s:get(base .. p)
        local err = helper.error_of(r.read, r)
        assert.is_true(lasync.is_error(err, http.ClientPayloadError), p)
        assert.is_true(lasync.is_error(err, http.ClientError))
        assert.equals(base .. p, err.url)
      end
    end)
  end)

  it("refuses malformed heads and conflicting framing", function()
    with_raw(function(head, _, w)
      if head:find("^GET /te") then
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" ..
          "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
      elseif head:find("^GET /dup") then
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" ..
          "Content-Length: 3\r\n\r\nabc")
      elseif head:find("^GET /big") then
        w:write("HTTP/1.1 200 OK\r\nX-Big: " .. string.rep("a", 9000) ..
          "\r\n\r\n")
      elseif head:find("^GET /huge") then
        w:write("HTTP/1.1 200 OK\r\n")
        for i = 1, 100 do
          w:write(("X-H%d: %s\r\n"):format(i, string.rep("b", 800)))
        end
      else
        w:write("NOT HTTP\r\n\r\n")
      end
      return "close"
    end, function(base)
      local s <close> = http.Session()
      for _, p in ipairs { "/te", "/dup", "/big", "/bad" } do
        local err = helper.error_of(s.get, s, base .. p)
        assert.is_true(lasync.is_error(err, http.ClientResponseError), p)
        assert.equals(base .. p, err.url)
      end
      local err = helper.error_of(s.get, s, base .. "/huge")
      assert.is_true(lasync.is_error(err, http.ClientResponseError))
      assert.matches("too large", err.message)
    end)
  end)

  it("raises ServerDisconnectedError when the server closes first",
    function()
      with_raw(function(_, _, w) w:write("HTTP/1.1 20") return "close" end,
        function(base)
          local s <close> = http.Session()
          local err = helper.error_of(s.get, s, base)
          assert.is_true(lasync.is_error(err, http.ServerDisconnectedError))
          assert.is_true(lasync.is_error(err, http.ClientConnectionError))
        end)
    end)

  it("raise_for_status raises ClientResponseError with the status",
    function()
      with_raw(canned("HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n"),
        function(base)
          local s <close> = http.Session()
          local r = s:get(base)
          local err = helper.error_of(r.raise_for_status, r)
          assert.is_true(lasync.is_error(err, http.ClientResponseError))
          assert.equals(418, err.status)
          assert.equals("Teapot", err.message)
          assert.equals(base .. "/", err.url)
          err = helper.error_of(s.get, s, base, { raise_for_status = true })
          assert.equals(418, err.status)
          local t <close> = http.Session { raise_for_status = true }
          assert.equals(418, helper.error_of(t.get, t, base).status)
        end)
    end)

  it("json checks the content type unless content_type is nil",
    function()
      with_raw(canned("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
        "Content-Length: 7\r\n\r\n{\"a\":1}"), function(base)
        local s <close> = http.Session()
        local r = s:get(base)
        local err = helper.error_of(r.json, r)
        assert.is_true(lasync.is_error(err, http.ContentTypeError))
        assert.is_true(lasync.is_error(err, http.ClientResponseError))
        assert.equals(1, r:json { content_type = false }.a)
      end)
    end)
end)

describe("http.Session misuse", function()
  it("refuses bad methods, URLs, headers and options before sending",
    function()
      with_raw(canned("HTTP/1.1 204 No Content\r\n\r\n"), function(base, st)
        local s <close> = http.Session()
        helper.raises_msg("lasync.http.Session:get: header value contains " ..
          "CR, LF or NUL", s.get, s, base, { headers = { X = "a\r\nb" } })
        helper.raises_msg("lasync.http.Session:get: header name contains " ..
          "CR, LF or NUL", s.get, s, base, { headers = { ["X\n"] = "a" } })
        helper.raises_msg("lasync.http.Session:get: header name must be a " ..
          "token", s.get, s, base, { headers = { ["a b"] = "a" } })
        helper.raises_msg("lasync.http.Session:post: url contains CR, LF " ..
          "or NUL", s.post, s, base .. "/\r\nX: y")
        helper.raises_msg("lasync.http.Session:request: method contains " ..
          "CR, LF or NUL", s.request, s, "GET\r\n", base)
        helper.raises_msg("lasync.http.Session:request: method must be a " ..
          "token", s.request, s, "G T", base)
        helper.raises_msg("lasync.http.Session:get: unknown option 'bogus'",
          s.get, s, base, { bogus = 1 })
        helper.raises_msg("lasync.http.Session:get: url must be a string",
          s.get, s, 42)
        helper.raises_msg("lasync.http.Session:post: only one of 'body', " ..
          "'json' and 'data' may be given", s.post, s, base,
          { body = "a", json = {} })
        helper.raises_msg("lasync.http.Session:get: unknown timeout 'read'",
          s.get, s, base, { timeout = { read = 1 } })
        helper.raises_msg("lasync.http.Session: unknown option 'limits'",
          http.Session, { limits = 1 })
        helper.raises_msg("lasync.http.Session: option 'limit' must be a " ..
          "non-negative integer", http.Session, { limit = -1 })
        helper.raises_msg("lasync.http.Session: option 'ssl' must be nil, " ..
          "false or a lasync.ssl.context", http.Session, { ssl = true })
        local err = helper.error_of(s.get, s, "ftp://x/")
        assert.is_true(lasync.is_error(err, http.InvalidURL))
        err = helper.error_of(s.get, s, "/relative")
        assert.is_true(lasync.is_error(err, http.InvalidURL))
        assert.equals(0, st.conns)
        s:close()
        helper.raises_msg("lasync.http.Session:get: the session is closed",
          s.get, s, base)
      end)
    end)
end)

describe("http.Session redirects and auth", function()
  it("follows redirects: 302 to GET, 307 keeps method and body",
    function()
      with_raw(function(head, _, w)
        local path = head:match("^%u+ (%S+)")
        if path == "/302" then
          w:write("HTTP/1.1 302 Found\r\nLocation: final\r\n" ..
            "Content-Length: 3\r\n\r\nmov")
        elseif path == "/307" then
          w:write("HTTP/1.1 307 Temporary\r\nLocation: /final?x=1\r\n" ..
            "Content-Length: 0\r\n\r\n")
        elseif path == "/loop" then
          w:write("HTTP/1.1 301 Moved\r\nLocation: /loop\r\n" ..
            "Content-Length: 0\r\n\r\n")
        else
          local m = head:match("^(%u+)")
          local body = m .. " " .. path
          w:write(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s")
            :format(#body, body))
        end
      end, function(base, stats)
        local s <close> = http.Session()
        local r = s:post(base .. "/302", { body = "data" })
        assert.equals("GET /final", r:read())
        assert.equals(base .. "/final", r.url)
        assert.equals(1, #r.history)
        assert.equals(302, r.history[1].status)
        assert.equals(base .. "/302", r.history[1].url)
        r = s:post(base .. "/307", { body = "data" })
        assert.equals("POST /final?x=1", r:read())
        assert.equals("data", stats.body)
        assert.matches("Content%-Length: 4", stats.heads[#stats.heads])
        r = s:get(base .. "/302", { allow_redirects = false })
        assert.equals(302, r.status)
        assert.equals("mov", r:read())
        local err = helper.error_of(s.get, s, base .. "/loop",
          { max_redirects = 3 })
        assert.is_true(lasync.is_error(err, http.TooManyRedirects))
        assert.is_true(lasync.is_error(err, http.ClientResponseError))
        assert.equals(4, #err.history)
        assert.equals(1, stats.conns)
      end)
    end)

  it("sends basic auth, from opts or the URL, and drops it on another " ..
    "origin", function()
      helper.run(function()
        local heads = {}
        local function server()
          return helper.serve(function(r, w)
            while true do
              local ok, head = pcall(r.readuntil, r, "\r\n\r\n")
              if not ok then break end
              heads[#heads + 1] = head
              local path = head:match("^%u+ (%S+)")
              if path:find("^/go") then
                w:write("HTTP/1.1 302 Found\r\nLocation: " .. path:sub(4) ..
                  "\r\nContent-Length: 0\r\n\r\n")
              else
                w:write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
              end
            end
            w:close()
          end)
        end
        local _, h1, p1, stop1 = server()
        local _, _, p2, stop2 = server()
        local s <close> = http.Session { auth = { "user", "pass" } }
        s:get(("http://%s:%d/"):format(h1, p1)):read()
        assert.matches("\r\nAuthorization: Basic dXNlcjpwYXNz\r\n", heads[1])
        s:get(("http://%s:%d/"):format(h1, p1),
          { auth = http.BasicAuth("a", "b") }):read()
        assert.matches("\r\nAuthorization: Basic YTpi\r\n", heads[2])
        local t <close> = http.Session()
        t:get(("http://u%%40x:p@%s:%d/"):format(h1, p1)):read()
        assert.matches("\r\nAuthorization: Basic dUB4OnA=\r\n", heads[3])
        -- a redirect to another port is another origin
        t:get(("http://%s:%d/gohttp://%s:%d/x"):format(h1, p1, h1, p2), {
          auth = { "user", "pass" },
          headers = { Cookie = "a=1", ["X-Keep"] = "1" } }):read()
        assert.matches("Authorization", heads[4])
        assert.matches("Cookie: a=1", heads[4])
        assert.is_nil(heads[5]:find("Authorization", 1, true))
        assert.is_nil(heads[5]:find("Cookie", 1, true))
        assert.matches("X%-Keep: 1", heads[5])
        helper.raises_msg("lasync.http.BasicAuth: login must not contain ':'",
          http.BasicAuth, "a:b", "c")
        t:close()
        s:close()
        stop1()
        stop2()
      end)
    end)
end)

describe("http.Session connections", function()
  -- The server answers the first request of a connection and closes the
  -- connection at the second, without answering: what a client sees
  -- when its pooled connection went stale as it sent.
  local function one_per_conn(_, _, w, n)
    if n > 1 then return "close" end
    w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
  end

  it("retries an idempotent request once on a stale connection",
    function()
      with_raw(one_per_conn, function(base, stats)
        local s <close> = http.Session()
        assert.equals("ok", s:get(base):read())
        assert.equals("ok", s:get(base):read())
        assert.equals(2, stats.conns)
        assert.equals("ok", s:request("PUT", base):read())
        assert.equals(3, stats.conns)
      end)
    end)

  it("does not retry a POST on a stale connection", function()
    with_raw(one_per_conn, function(base, stats)
      local s <close> = http.Session()
      assert.equals("ok", s:get(base):read())
      local err = helper.error_of(s.post, s, base, { body = "x" })
      assert.is_true(lasync.is_error(err, http.ServerDisconnectedError))
      assert.equals(1, stats.conns)
      assert.equals("ok", s:get(base):read())
      err = helper.error_of(s.patch, s, base, { body = "x" })
      assert.is_true(lasync.is_error(err, http.ServerDisconnectedError))
    end)
  end)

  it("raises ClientConnectorError and ClientConnectorDNSError", function()
    helper.run(function()
      local port = tls.free_port()
      local s <close> = http.Session()
      local url = ("http://127.0.0.1:%d/"):format(port)
      local err = helper.error_of(s.get, s, url)
      assert.is_true(lasync.is_error(err, http.ClientConnectorError))
      assert.equals("ECONNREFUSED", err.code)
      assert.equals(url, err.url)
      assert.equals(port, err.port)
      assert.equals("127.0.0.1", err.host)
      assert.is_true(lasync.is_error(err.os_error, lasync.OSError))
      err = helper.error_of(s.get, s, "http://no-such-host.invalid/")
      assert.is_true(lasync.is_error(err, http.ClientConnectorDNSError))
      assert.matches("^EAI_", err.code)
    end)
  end)

  it("bounds connections with limit and limit_per_host, FIFO", function()
    local gate = lasync.Event and nil
    with_raw(function(_, _, w)
      lasync.sleep(0.02)
      w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    end, function(base, stats)
      local s <close> = http.Session { limit = 2 }
      local order = {}
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = lasync.spawn(function()
          local r = s:get(base)
          r:read()
          order[#order + 1] = i
        end)
      end
      lasync.gather(tasks)
      assert.equals(2, stats.conns)
      assert.same({ 1, 2, 3, 4, 5 }, order)
      local p <close> = http.Session { limit_per_host = 1 }
      lasync.gather(lasync.spawn(function() p:get(base):read() end),
        lasync.spawn(function() p:get(base):read() end))
      assert.equals(3, stats.conns)
      local q <close> = http.Session { limit = 1, timeout = { pool = 0.01 } }
      local held = q:get(base)
      local err = helper.error_of(q.get, q, base)
      assert.is_true(lasync.is_error(err, http.ClientTimeoutError))
      assert.equals("pool", err.timeout)
      held:release()
      assert.equals("ok", q:get(base):read())
      assert.is_nil(gate)
    end)
  end)

  it("times out: sock_read, total, and wait_for around a request",
    function()
      with_raw(function(head, _, w)
        if head:find("^GET /slowbody") then
          w:write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
          lasync.sleep(0.3)
          w:write("cd")
        else
          lasync.sleep(0.3)
          w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        end
        return "close"
      end, function(base)
        local s <close> = http.Session { timeout = { sock_read = 0.05 } }
        local err = helper.error_of(s.get, s, base)
        assert.is_true(lasync.is_error(err, http.ClientTimeoutError))
        assert.is_true(lasync.is_timeout(err))
        assert.equals("sock_read", err.timeout)
        assert.matches("sock_read", tostring(err))
        local r = s:get(base .. "/slowbody")
        err = helper.error_of(r.read, r)
        assert.equals("sock_read", err.timeout)
        err = helper.error_of(s.get, s, base, { timeout = { total = 0.05,
          sock_read = false } })
        assert.equals("total", err.timeout)
        local t <close> = http.Session()
        err = helper.error_of(lasync.wait_for, function()
          return t:get(base) end, 0.05)
        assert.is_true(lasync.is_timeout(err))
        assert.equals(0, t.pool.busy)
      end, 5)
    end)

  it("a cancelled request closes its connection and frees its slot",
    function()
      with_raw(function(_, _, w)
        lasync.sleep(0.2)
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
      end, function(base)
        local s <close> = http.Session { limit = 1 }
        local t = lasync.spawn(function() return s:get(base) end)
        lasync.sleep(0.02)
        t:cancel()
        helper.assert_cancelled(t)
        assert.equals(0, s.pool.busy)
        assert.equals(0, s.pool.nidle)
      end)
    end)
end)

describe("http.get and friends", function()
  it("make one request with a session of their own", function()
    with_app(function(app)
      app:get("/", function() return "one" end)
      app:post("/", function(req) return req:read() end)
    end, function(base)
      local r = http.get(base)
      assert.equals(200, r.status)
      assert.equals("one", r:text())
      assert.equals("two", http.post(base, { body = "two" }):read())
      assert.equals("one", http.request("GET", base):read())
      helper.raises_msg("lasync.http.get: unknown option 'x'", http.get,
        base, { x = 1 })
    end)
  end)
end)

describe("http.Session with the cookie jar and forms", function()
  it("keeps cookies per session and sends them back", function()
    with_app(function(app)
      app:get("/set", function()
        local r = http.Response { text = "set" }
        r:set_cookie("sid", "abc")
        return r
      end)
      app:get("/echo", function(req)
        return req.headers.cookie or "none"
      end)
    end, function(base)
      local s <close> = http.Session()
      local r = s:get(base .. "/set")
      assert.equals("abc", r.cookies.sid)
      r:read()
      assert.equals("sid=abc", s:get(base .. "/echo"):read())
      assert.matches("x=1", s:get(base .. "/echo",
        { cookies = { x = "1" } }):read())
      local other <close> = http.Session()
      assert.equals("none", other:get(base .. "/echo"):read())
      local nojar <close> = http.Session { cookie_jar = false }
      nojar:get(base .. "/set"):read()
      assert.equals("none", nojar:get(base .. "/echo"):read())
      assert.equals("y=2", nojar:get(base .. "/echo",
        { cookies = { y = "2" } }):read())
    end)
  end)

  it("sends data tables urlencoded and forms as multipart, files streamed",
    function()
      helper.in_dir(function(dir)
        local path = dir .. "/up.bin"
        local blob = string.rep("0123456789abcdef", 20000) -- 320 KB
        lasync.fs.writefile(path, blob)
        local app = http.App { client_max_size = 1048576 }
        app:post("/form", function(req)
          local f = req:post()
          local file = f.file
          return http.json { name = f.name, tags = f:getall("tags"),
            size = file.size, filename = file.filename,
            same = file:read() == blob }
        end)
        app:post("/307", function()
          return http.Response { status = 307,
            headers = { Location = "/form" } }
        end)
        local server = app:start { host = "127.0.0.1", port = 0 }
        local host, port = server:address()
        local base = ("http://%s:%d"):format(host, port)
        local s <close> = http.Session()
        local form = http.form { name = "x", tags = { "a", "b" },
          file = http.file_part(path, { content_type = "application/x" }) }
        for _, p in ipairs { "/form", "/307" } do
          local j = s:post(base .. p, { data = form }):json()
          assert.equals("x", j.name)
          assert.same({ "a", "b" }, j.tags)
          assert.equals(#blob, j.size)
          assert.equals("up.bin", j.filename)
          assert.is_true(j.same)
        end
        s:close()
        server:close()
        server:wait_closed()
      end, 10)
    end)
end)

describe("http.Session idle connections and deadlines", function()
  it("closes idle connections after keepalive_timeout", function()
    with_raw(canned("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
      function(base, stats)
        local s <close> = http.Session { keepalive_timeout = 0.05 }
        assert.equals("ok", s:get(base):read())
        assert.equals(1, s.pool.nidle)
        helper.wait_until(function() return s.pool.nidle == 0 end)
        assert.equals("ok", s:get(base):read())
        assert.equals(2, stats.conns)
      end)
  end)

  it("raises the total timeout at the next read of a response held past " ..
    "its deadline", function()
      with_raw(function(_, _, w)
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
        lasync.sleep(0.2)
        w:write("cd")
      end, function(base)
        local s <close> = http.Session { timeout = { total = 0.05 } }
        local r = s:get(base)
        lasync.sleep(0.08)
        local err = helper.error_of(r.read, r)
        assert.is_true(lasync.is_error(err, http.ClientTimeoutError))
        assert.equals("total", err.timeout)
        -- and while it waits in the read
        r = s:get(base)
        local t0 = helper.now()
        err = helper.error_of(r.read, r)
        assert.equals("total", err.timeout)
        assert.is_true(helper.now() - t0 < 0.15)
        assert.equals(0, s.pool.busy)
      end)
    end)

  it("closes the connection of a response left to the garbage collector",
    function()
      with_raw(canned("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        function(base, stats)
          local s <close> = http.Session()
          do s:get(base) end
          collectgarbage()
          collectgarbage()
          assert.equals(0, s.pool.busy)
          assert.equals("ok", s:get(base):read())
          assert.equals(2, stats.conns)
        end)
    end)
end)
