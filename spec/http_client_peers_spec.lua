-- lasync.http's client against real servers (spec/http_peers.lua): Python's
-- http.server with odd endpoints (spec/fixtures/http_peer.py) and Debian's
-- nginx, plain and https with a test CA. Keep-alive reuse and pool limits
-- counted on the server, chunked and gzip bodies, every redirect kind,
-- cookies, a 50 MB multipart upload hashed by the server, each kind of
-- timeout, bodies cut short or lying about their length, TLS verification
-- and HTTP/1.0 bodies delimited by the close.
local helper = require "helper"
local peers = require "http_peers"
local tls_helper = require "tls_helper"
local lasync = helper.lasync
local json = require "lasync.json"

local http = lasync.http

-- The fixture's /bytes?n= body and /http10 body: bytes 0..255 repeated.
local function pattern(n)
  local block = {}
  for i = 0, 255 do block[#block + 1] = string.char(i) end
  block = table.concat(block)
  return block:rep(n // 256 + 1):sub(1, n)
end

-- The fixture's compressed text (TEXT in http_peer.py).
local TEXT = ("lasync compressed body line\n"):rep(500)

-- A pair of the request headers the fixture echoed, by name (any case).
local function echoed(answer, name)
  for _, kv in ipairs(answer.headers) do
    if kv[1]:lower() == name:lower() then return kv[2] end
  end
end

local function sha256_file(path)
  local f = assert(io.popen("sha256sum " .. helper.shell_quote(path)))
  local sum = f:read("a"):match("^(%x+)")
  f:close()
  return sum
end

-- This process's peak resident set size in KB (VmHWM), or nil.
local function peak_rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local kb = tonumber(f:read("a"):match("VmHWM:%s*(%d+)"))
  f:close()
  return kb
end

-- The error fn(...) raises, which must be a ClientTimeoutError for `kind`.
local function timeout_of(kind, fn, ...)
  local err = helper.raises(http.ClientTimeoutError, "ClientTimeoutError",
    fn, ...)
  assert.are.equal(kind, err.timeout)
  assert.is_true(lasync.is_timeout(err))
  assert.matches(kind, err.message, 1, true)
  assert.is_string(err.url)
  return err
end

describe("lasync.http client against real servers", function()
  local py, ng

  setup(function()
    py = peers.python()
    ng = peers.nginx()
  end)

  teardown(function()
    if py then py.stop() end
    if ng then ng.stop() end
    tls_helper.cleanup()
  end)

  local function ca_ctx()
    return lasync.ssl.context { cafile = ng.certs.ca.cert }
  end

  describe("keep-alive", function()
    it("reuses one connection for sequential requests (Python)", function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session()
        for i = 1, 20 do
          local r <close> = s:get(py.url("/hello?i=" .. i))
          assert.are.equal(200, r.status)
          assert.are.equal("hello", r:text())
        end
        local st = peers.stats(py)
        assert.are.equal(1, st.accepted)
        assert.are.equal(20, st.requests)
      end)
    end)

    it("reuses one connection for sequential requests (nginx)", function()
      helper.run(function()
        local before = peers.nginx_status(ng)
        local s <close> = http.Session()
        for _ = 1, 20 do
          local r <close> = s:get(ng.url("/text.txt"))
          assert.are.equal(ng.text, r:text())
        end
        local after = peers.nginx_status(ng)
        -- one connection for the session, one for asking the status
        assert.are.equal(2, after.accepts - before.accepts)
        assert.are.equal(21, after.requests - before.requests)
      end)
    end)

    it("reuses the connection after HEAD, 304 and 404 (nginx)", function()
      helper.run(function()
        local before = peers.nginx_status(ng)
        local s <close> = http.Session()
        local g <close> = s:get(ng.url("/index.html"))
        local etag = g.headers:get("ETag")
        g:read()
        for _ = 1, 3 do
          local h <close> = s:head(ng.url("/index.html"))
          assert.are.equal(200, h.status)
          assert.are.equal("", h:read())
          local c <close> = s:get(ng.url("/index.html"),
            { headers = { ["If-None-Match"] = etag } })
          assert.are.equal(304, c.status)
          assert.are.equal("", c:read())
          local n <close> = s:get(ng.url("/missing"))
          assert.are.equal(404, n.status)
          assert.matches("404", n:text(), 1, true)
        end
        local after = peers.nginx_status(ng)
        assert.are.equal(2, after.accepts - before.accepts)
      end)
    end)

    it("reuses one TLS connection (nginx https)", function()
      helper.run(function()
        local before = peers.nginx_status(ng)
        local s <close> = http.Session { ssl = ca_ctx() }
        for _ = 1, 10 do
          local r <close> = s:get(ng.tls_url("/index.html"))
          assert.matches("nginx peer", r:text(), 1, true)
        end
        local after = peers.nginx_status(ng)
        assert.are.equal(2, after.accepts - before.accepts)
      end)
    end)

    it("closes a pooled connection idle past keepalive_timeout", function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session { keepalive_timeout = 0.1 }
        local a <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", a:text())
        local b <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", b:text())
        assert.are.equal(1, peers.stats(py).accepted)
        lasync.sleep(0.25)
        -- the server saw the idle connection close
        helper.wait_until(function() return peers.stats(py).open == 0 end)
        local c <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", c:text())
        assert.are.equal(2, peers.stats(py).accepted)
      end)
    end)

    it("does not reuse a connection whose body was not read", function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session()
        local r = s:get(py.url("/bytes?n=200000"))
        assert.are.equal(200, r.status)
        r:release()
        local r2 <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", r2:text())
        assert.are.equal(2, peers.stats(py).accepted)
      end)
    end)
  end)

  describe("stale connections", function()
    it("retries a GET once on a pooled connection the server closed",
      function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/hello?then=drop"))
        assert.are.equal("hello", r:text())
        local again <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", again:text())
        local st = peers.stats(py)
        assert.are.equal(2, st.accepted)
        assert.are.equal(3, st.requests)  -- the dropped one counts
      end)
    end)

    it("never retries a POST", function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/hello?then=drop"))
        assert.are.equal("hello", r:text())
        local err = helper.raises(http.ServerDisconnectedError,
          "ServerDisconnectedError", s.post, s, py.url("/echo"),
          { body = "once" })
        assert.is_true(lasync.is_error(err, http.ClientConnectionError))
        assert.are.equal(py.url("/echo"), err.url)
        local st = peers.stats(py)
        assert.are.equal(1, st.accepted)
        assert.are.equal(2, st.requests)
      end)
    end)
  end)

  describe("pool limits", function()
    it("answers 500 concurrent requests within limit_per_host", function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session { limit = 10, limit_per_host = 4 }
        local tasks = {}
        for i = 1, 500 do
          tasks[i] = lasync.spawn(function()
            local r <close> = s:get(py.url("/hello?i=" .. i))
            return r.status, r:text()
          end)
        end
        local answered = 0
        for _, t in ipairs(tasks) do
          local status, body = t:await()
          if status == 200 and body == "hello" then
            answered = answered + 1
          end
        end
        assert.are.equal(500, answered)
        local st = peers.stats(py)
        assert.are.equal(500, st.requests)
        assert.is_true(st.max_open <= 4, "max_open " .. st.max_open)
        assert.is_true(st.accepted <= 4, "accepted " .. st.accepted)
      end, 60)
    end)

    it("answers 500 concurrent requests to nginx on 4 connections",
      function()
      helper.run(function()
        local before = peers.nginx_status(ng)
        local s <close> = http.Session { limit = 10, limit_per_host = 4 }
        local tasks = {}
        for i = 1, 500 do
          tasks[i] = lasync.spawn(function()
            local r <close> = s:get(ng.url("/index.html?i=" .. i))
            return r.status, r:text()
          end)
        end
        for _, t in ipairs(tasks) do
          local status, body = t:await()
          assert.are.equal(200, status)
          assert.matches("nginx peer", body, 1, true)
        end
        local after = peers.nginx_status(ng)
        -- the session's connections and the one asking the status
        assert.is_true(after.accepts - before.accepts <= 5,
          "accepts " .. after.accepts - before.accepts)
        assert.are.equal(501, after.requests - before.requests)
      end, 30)
    end)

    it("holds the total limit across two hosts", function()
      helper.run(function()
        peers.reset(py)
        -- 127.0.0.1 and localhost are two origins of the same server.
        -- As in aiohttp, `limit` bounds the connections in use, not the
        -- idle ones: up to 4 per host may be open, at most 6 busy.
        local s <close> = http.Session { limit = 6, limit_per_host = 4 }
        local tasks = {}
        for i = 1, 200 do
          local host = i % 2 == 0 and "127.0.0.1" or "localhost"
          tasks[i] = lasync.spawn(function()
            local r <close> = s:get(py.url("/hello?ms=2", host))
            return r:text()
          end)
        end
        for _, t in ipairs(tasks) do assert.are.equal("hello", t:await()) end
        local st = peers.stats(py)
        assert.are.equal(200, st.requests)
        assert.is_true(st.max_active <= 6, "max_active " .. st.max_active)
        assert.is_true(st.max_open <= 8, "max_open " .. st.max_open)
      end, 60)
    end)
  end)

  describe("bodies", function()
    it("reads chunked responses whole and streamed", function()
      helper.run(function()
        local s <close> = http.Session()
        local want = {}
        for i = 0, 49 do
          want[#want + 1] = (("chunk-%d;"):format(i):rep(100)):sub(1, 100)
        end
        want = table.concat(want)
        local r <close> = s:get(py.url("/chunked?n=50&size=100"))
        assert.is_nil(r.content_length)
        assert.are.equal(want, r:read())
        assert.are.equal(want, r:read())  -- cached
        local r2 <close> = s:get(py.url("/chunked?n=50&size=100&ms=1"))
        local got = {}
        for chunk in r2:iter_chunked(64) do
          assert.is_true(#chunk <= 64)
          got[#got + 1] = chunk
        end
        assert.are.equal(want, table.concat(got))
      end, 10)
    end)

    it("splits lines across chunks, CRLF and LF, the last unended",
      function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/lines"))
        local got = {}
        for line in r:lines() do got[#got + 1] = line end
        assert.are.same({ "one", "two", "", "three", "four" }, got)
      end)
    end)

    it("closes a connection whose body read was cancelled", function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session()
        local r = s:get(py.url("/drip?n=20&ms=50"))
        local t = lasync.spawn(function()
          for _ in r:iter_chunked(4) do end
        end)
        lasync.sleep(0.1)
        t:cancel()
        helper.assert_cancelled(t)
        r:release()
        local ok <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", ok:text())
        assert.are.equal(2, peers.stats(py).accepted)
      end)
    end)

    it("decodes gzip and deflate (Python)", function()
      helper.run(function()
        local s <close> = http.Session()
        for _, path in ipairs { "/gzip", "/deflate", "/deflate?raw=1" } do
          local r <close> = s:get(py.url(path))
          assert.are.equal(TEXT, r:text(), path)
        end
        local e <close> = s:get(py.url("/echo"))
        local ae = echoed(e:json(), "Accept-Encoding")
        assert.matches("gzip", ae, 1, true)
        assert.matches("deflate", ae, 1, true)
      end)
    end)

    it("decodes nginx's gzip_static file and its chunked gzip", function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(ng.url("/text.txt"))
        assert.are.equal("gzip", r.headers:get("Content-Encoding"))
        assert.are.equal(ng.text, r:text())
        local d <close> = s:get(ng.url("/dyn/text.txt"))
        assert.are.equal("chunked", d.headers:get("Transfer-Encoding"))
        assert.are.equal("gzip", d.headers:get("Content-Encoding"))
        local n = 0
        for line in d:lines() do
          n = n + 1
          assert.are.equal(("line %04d of the static text"):format(n), line)
        end
        assert.are.equal(2000, n)
      end)
    end)

    it("leaves the body encoded with auto_decompress = false", function()
      helper.run(function()
        local s <close> = http.Session { auto_decompress = false }
        local r <close> = s:get(ng.url("/text.txt"), { headers = {
          ["Accept-Encoding"] = "gzip" } })
        local body = r:read()
        assert.are.equal("\31\139", body:sub(1, 2))
        assert.is_true(#body < #ng.text)
      end)
    end)

    it("reads HTTP/1.0 and HTTP/1.1 bodies delimited by the close", function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/http10?n=300000"))
        assert.are.equal("1.0", r.version)
        assert.are.equal(pattern(300000), r:read())
        local r2 <close> = s:get(py.url("/close-delimited?n=70000"))
        assert.are.equal(pattern(70000), r2:read())
        local r3 <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", r3:text())
        assert.are.equal(3, peers.stats(py).accepted)
      end)
    end)
  end)

  describe("redirects", function()
    for _, case in ipairs {
      { 301, "GET", 0 }, { 302, "GET", 0 }, { 303, "GET", 0 },
      { 307, "POST", 7 }, { 308, "POST", 7 },
    } do
      local code, method, size = case[1], case[2], case[3]
      it(("follows a %d of a POST: %s"):format(code, method), function()
        helper.run(function()
          local s <close> = http.Session()
          local r <close> = s:post(py.url(("/redirect?code=%d&to=/echo")
            :format(code)), { body = "payload" })
          assert.are.equal(200, r.status)
          local a = r:json()
          assert.are.equal(method, a.method)
          assert.are.equal(size, a.size)
          assert.are.equal(py.url("/echo"), r.url)
          assert.are.equal(1, #r.history)
          assert.are.equal(code, r.history[1].status)
        end)
      end)
    end

    it("follows absolute and relative locations and chains", function()
      helper.run(function()
        local s <close> = http.Session()
        local abs = py.url("/echo?abs=1")
        local r <close> = s:get(py.url("/redirect?code=302&to=" ..
          abs:gsub("[:/?=&]", function(c)
            return ("%%%02X"):format(c:byte())
          end)))
        assert.are.equal(abs, r.url)
        local function enc(to)
          return (to:gsub("[^%w]", function(ch)
            return ("%%%02X"):format(ch:byte())
          end))
        end
        for to, final in pairs {
          ["//localhost:" .. py.port .. "/echo"] = py.url("/echo",
            "localhost"),
          ["../echo?y=2"] = py.url("/echo?y=2"),
          ["echo"] = py.url("/echo"),
          ["/a/../echo#frag"] = py.url("/echo"),
          ["?to=/echo%3Fq"] = py.url("/echo?q"),  -- same path, new query
        } do
          local rr <close> = s:get(py.url("/redirect?code=302&to=" ..
            enc(to)))
          assert.are.equal(final, rr.url, to)
        end
        local c <close> = s:get(py.url("/chain/5?code=301"))
        assert.are.equal(5, #c.history)
        assert.are.equal(py.url("/echo"), c.url)
        assert.are.equal("GET", c:json().method)
      end)
    end)

    it("raises TooManyRedirects on a loop and past max_redirects", function()
      helper.run(function()
        local s <close> = http.Session()
        local err = helper.raises(http.TooManyRedirects, "TooManyRedirects",
          s.get, s, py.url("/loop"))
        assert.is_true(lasync.is_error(err, http.ClientResponseError))
        assert.is_string(err.url)
        helper.raises(http.TooManyRedirects, "TooManyRedirects", s.get, s,
          py.url("/chain/5"), { max_redirects = 3 })
        local ok <close> = s:get(py.url("/chain/3"), { max_redirects = 3 })
        assert.are.equal(200, ok.status)
      end)
    end)

    it("stops at the redirect with allow_redirects = false", function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/redirect?code=307&to=/hello"),
          { allow_redirects = false })
        assert.are.equal(307, r.status)
        assert.are.equal("/hello", r.headers:get("Location"))
        assert.are.equal(0, #r.history)
      end)
    end)

    it("drops Authorization and Cookie on a cross-origin redirect", function()
      helper.run(function()
        local s <close> = http.Session { auth = { "user", "pw" } }
        -- same origin: kept
        local same <close> = s:get(py.url("/redirect?to=/echo"),
          { cookies = { c = "1" } })
        local a = same:json()
        assert.are.equal("Basic dXNlcjpwdw==", echoed(a, "Authorization"))
        assert.matches("c=1", echoed(a, "Cookie") or "", 1, true)
        -- to localhost, another origin: dropped
        local other = py.url("/echo", "localhost")
        local cross <close> = s:get(py.url("/redirect?to=" .. other), {
          headers = { Authorization = "Bearer secret" } })
        local b = cross:json()
        assert.are.equal(other, cross.url)
        assert.is_nil(echoed(b, "Authorization"))
        assert.is_nil(echoed(b, "Cookie"))
        assert.are.equal("localhost:" .. py.port, echoed(b, "Host"))
      end)
    end)

    it("follows a redirect of a HEAD with a HEAD", function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:head(py.url("/redirect?code=302&to=/hello"))
        assert.are.equal(200, r.status)
        assert.are.equal("HEAD", r.method)
        assert.are.equal(5, r.content_length)
        assert.are.equal("", r:read())
      end)
    end)
  end)

  describe("cookies", function()
    it("keeps the cookies a server sets and sends them back", function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/cookies/set?a=1&b=2"))
        assert.are.equal("set", r:text())
        local e <close> = s:get(py.url("/echo"))
        local cookie = echoed(e:json(), "Cookie")
        assert.matches("a=1", cookie, 1, true)
        assert.matches("b=2", cookie, 1, true)
      end)
    end)

    it("honours path, expiry, Secure and Domain", function()
      helper.run(function()
        local s <close> = http.Session()
        local v <close> = s:get(py.url("/cookies/variants"))
        assert.are.equal("variants", v:text())
        local e <close> = s:get(py.url("/echo"))
        local sent = echoed(e:json(), "Cookie") or ""
        for _, c in ipairs { "httponly=6", "later=7", 'quoted="9 9"' } do
          assert.matches(c, sent, 1, true)
        end
        -- plain=1 has no Path: its default path is /cookies (RFC 6265
        -- 5.1.4), as for scoped=2
        for _, c in ipairs { "plain", "scoped", "gone", "old", "secure",
                             "foreign" } do
          assert.is_nil(sent:find(c .. "=", 1, true), c .. " sent")
        end
        local c <close> = s:get(py.url("/cookies/echo"))
        local under = echoed(c:json(), "Cookie") or ""
        assert.matches("scoped=2", under, 1, true)
        assert.matches("plain=1", under, 1, true)
        assert.is_nil(under:find("secure=", 1, true))
      end)
    end)

    it("sends a cookie set by a redirect on the next hop", function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/redirect?to=/echo&cookie=hop%3D1"))
        assert.are.equal("hop=1", echoed(r:json(), "Cookie"))
        assert.are.equal(1, #r.history)
      end)
    end)

    it("keeps none with cookie_jar = false", function()
      helper.run(function()
        local s <close> = http.Session { cookie_jar = false }
        local r <close> = s:get(py.url("/cookies/set?a=1"))
        r:read()
        local e <close> = s:get(py.url("/echo"))
        assert.is_nil(echoed(e:json(), "Cookie"))
      end)
    end)
  end)

  describe("request bodies", function()
    it("uploads a 50 MB file as multipart, hashed by the server", function()
      helper.in_dir(function(dir)
        local path = dir .. "/big.bin"
        local f = assert(io.open(path, "wb"))
        local block = pattern(1 << 20)
        for i = 1, 50 do f:write(block:sub(i) .. block:sub(1, i - 1)) end
        f:close()
        local want = sha256_file(path)
        block = nil
        collectgarbage()
        -- streamed from disk: the peak resident size (reset here) grows by
        -- far less than the file (not measured under ASan, whose
        -- quarantine keeps freed memory resident)
        local asan = (os.getenv("LD_PRELOAD") or ""):find("asan")
        local clear = not asan and io.open("/proc/self/clear_refs", "w")
        if clear then clear:write("5") clear:close() end
        local base = peak_rss_kb()
        local s <close> = http.Session()
        local form = http.form {
          { "name", "big upload" },
          { "file", http.file_part(path, {
              content_type = "application/octet-stream",
              filename = "big.bin" }) },
        }
        local r <close> = s:post(py.url("/upload"), { data = form })
        assert.are.equal(200, r.status)
        local a = r:json()
        assert.matches("^multipart/form%-data; boundary=", a.content_type)
        assert.are.equal(2, #a.parts)
        assert.are.equal(#"big upload", a.parts[1].size)
        assert.are.equal(50 << 20, a.parts[2].size)
        assert.are.equal(want, a.parts[2].sha256)
        assert.matches('filename="big.bin"',
          a.parts[2]["content-disposition"], 1, true)
        assert.are.equal("application/octet-stream",
          a.parts[2]["content-type"])
        if clear and base then
          local grew = peak_rss_kb() - base
          assert.is_true(grew < 20 * 1024, ("peak RSS grew by %d KB")
            :format(grew))
        end
      end, 90)
    end)

    it("cancelling an upload mid-body frees its connection", function()
      helper.in_dir(function(dir)
        local path = dir .. "/30mb.bin"
        local f = assert(io.open(path, "wb"))
        f:write(("x"):rep(1 << 20):rep(30))
        f:close()
        peers.reset(py)
        local s <close> = http.Session { limit = 1 }
        local t = lasync.spawn(function()
          local r <close> = s:post(py.url("/upload"),
            { data = http.form { f = http.file_part(path) } })
          return r:json()
        end)
        helper.wait_until(function() return peers.stats(py).requests == 1 end)
        t:cancel()
        helper.assert_cancelled(t)
        local r <close> = s:get(py.url("/hello"), { timeout = { pool = 1 } })
        assert.are.equal("hello", r:text())
        assert.are.equal(2, peers.stats(py).accepted)
      end, 10)
    end)

    it("sends json, urlencoded data and a string body", function()
      helper.run(function()
        local s <close> = http.Session()
        local j <close> = s:post(py.url("/echo"), { json = { a = 1 } })
        local a = j:json()
        assert.are.equal('{"a":1}', a.body)
        assert.matches("^application/json", echoed(a, "Content-Type"))
        local d <close> = s:put(py.url("/echo"), { data = { b = "x y",
          a = { "1", "2" } } })
        local b = d:json()
        assert.are.equal("PUT", b.method)
        assert.are.equal("a=1&a=2&b=x+y", b.body)
        assert.matches("^application/x%-www%-form%-urlencoded",
          echoed(b, "Content-Type"))
        local p <close> = s:patch(py.url("/echo"), { body = "raw bytes" })
        assert.are.equal("raw bytes", p:json().body)
      end)
    end)
  end)

  describe("timeouts", function()
    it("total fires on a slow head", function()
      helper.run(function()
        local s <close> = http.Session { timeout = { total = 0.2 } }
        local t = helper.timed(timeout_of, "total", s.get, s,
          py.url("/slow-head?ms=2000"))
        assert.is_true(t < 1, "took " .. t)
      end)
    end)

    it("total covers reading the body; sock_read is per read", function()
      helper.run(function()
        local s <close> = http.Session()
        -- 6 chunks 100 ms apart: no gap reaches 0.3 s, the whole does
        local ok <close> = s:get(py.url("/drip?n=6&ms=100"),
          { timeout = { sock_read = 0.3 } })
        assert.are.equal(24, #ok:read())
        local r <close> = s:get(py.url("/drip?n=6&ms=100"),
          { timeout = { total = 0.3 } })
        timeout_of("total", r.read, r)
      end)
    end)

    it("sock_read fires on a slow head and a slow body", function()
      helper.run(function()
        local s <close> = http.Session { timeout = { sock_read = 0.2 } }
        timeout_of("sock_read", s.get, s, py.url("/slow-head?ms=2000"))
        local r <close> = s:get(py.url("/slow-body?ms=2000"))
        assert.are.equal(200, r.status)
        timeout_of("sock_read", r.read, r)
      end)
    end)

    -- the fixture's blackhole port: a full backlog, never accepted
    for _, kind in ipairs { "sock_connect", "connect" } do
      it(kind .. " fires on a port that never accepts", function()
        helper.run(function()
          local url = ("http://127.0.0.1:%d/"):format(py.blackhole)
          local s <close> = http.Session()
          local t = helper.timed(timeout_of, kind, s.get, s, url,
            { timeout = { [kind] = 0.2 } })
          assert.is_true(t < 1, "took " .. t)
        end)
      end)
    end

    it("pool fires while every connection is taken", function()
      helper.run(function()
        local s <close> = http.Session { limit = 1 }
        local held = s:get(py.url("/slow-body?ms=300"))
        local t = helper.timed(timeout_of, "pool", s.get, s,
          py.url("/hello"), { timeout = { pool = 0.1 } })
        assert.is_true(t < 0.3, "took " .. t)
        assert.are.equal("slow body", held:read())
        held:release()
        local r <close> = s:get(py.url("/hello"), { timeout = { pool = 0.1 } })
        assert.are.equal("hello", r:text())
      end)
    end)

    it("cancelling a request frees its connection", function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session { limit = 1 }
        local t = lasync.spawn(function()
          return s:get(py.url("/slow-head?ms=1000"))
        end)
        -- the server has the request (a connection of an earlier test
        -- may still be open there: count requests, not connections)
        helper.wait_until(function() return peers.stats(py).requests == 1 end)
        t:cancel()
        helper.assert_cancelled(t)
        local r <close> = s:get(py.url("/hello"), { timeout = { pool = 0.5 } })
        assert.are.equal("hello", r:text())
        assert.are.equal(2, peers.stats(py).accepted)
      end)
    end)

    it("cancelling while a redirect's body is read cancels the request",
      function()
      helper.run(function()
        peers.reset(py)
        local s <close> = http.Session()
        local followed = false
        local t = lasync.spawn(function()
          local r <close> = s:get(py.url(
            "/redirect?code=302&to=/hello&slow_ms=500"))
          followed = true
          return r.status
        end)
        helper.wait_until(function() return peers.stats(py).requests == 1 end)
        lasync.sleep(0.05)  -- the head has come, the body has not
        t:cancel()
        helper.assert_cancelled(t)
        assert.is_false(followed)
      end)
    end)
  end)

  describe("broken responses", function()
    it("raises ClientPayloadError when the server closes mid-body",
      function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/truncated?len=1000&send=500"))
        assert.are.equal(1000, r.content_length)
        local err = helper.raises(http.ClientPayloadError,
          "ClientPayloadError", r.read, r)
        assert.is_string(err.url)
        local ok <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", ok:text())
      end)
    end)

    it("times out a body shorter than its Content-Length", function()
      helper.run(function()
        local s <close> = http.Session { timeout = { sock_read = 0.2 } }
        local r <close> = s:get(py.url("/cl-shorter-hang?ms=1000"))
        timeout_of("sock_read", r.read, r)
      end)
    end)

    it("reads what Content-Length says and never reuses the excess",
      function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/cl-longer"))
        assert.are.equal("12345", r:read())
        local ok <close> = s:get(py.url("/hello"))
        assert.are.equal(200, ok.status)
        assert.are.equal("hello", ok:text())
      end)
    end)

    it("raises ClientPayloadError on bad chunked framing and bad gzip",
      function()
      helper.run(function()
        local s <close> = http.Session()
        for _, path in ipairs { "/bad-chunk", "/bad-gzip" } do
          local r <close> = s:get(py.url(path))
          assert.are.equal(200, r.status)
          local err = helper.raises(http.ClientPayloadError,
            "ClientPayloadError", r.read, r)
          assert.are.equal(py.url(path), err.url)
        end
        local ok <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", ok:text())
      end)
    end)

    it("reads a head with LF-only lines, refuses conflicting lengths",
      function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/lf-only"))
        assert.are.equal(200, r.status)
        assert.are.equal("spaced value", r.headers:get("X-Odd"))
        assert.are.equal("", r.headers:get("X-Empty"))
        assert.are.equal("ok", r:read())
        local err = helper.raises(http.ClientError, "ClientError", s.get, s,
          py.url("/cl-conflict"))
        assert.are.equal(py.url("/cl-conflict"), err.url)
      end)
    end)

    it("refuses a response head of a megabyte", function()
      helper.run(function()
        local s <close> = http.Session()
        local ok <close> = s:get(py.url("/huge-head?n=8000"))
        assert.are.equal(8000, #ok.headers:get("X-Big"))
        local err = helper.raises(http.ClientResponseError,
          "ClientResponseError", s.get, s, py.url("/huge-head?n=1000000"))
        assert.is_string(err.url)
      end)
    end)

    it("skips 100 and 103 informational responses", function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/interim"))
        assert.are.equal(200, r.status)
        assert.are.equal("final", r:text())
        local ok <close> = s:get(py.url("/hello"))
        assert.are.equal("hello", ok:text())
      end)
    end)

    it("fails a response in flight when its session closes", function()
      helper.run(function()
        local s = http.Session()
        local r = s:get(py.url("/slow-body?ms=300"))
        s:close()
        helper.raises(http.ClientError, "ClientError", r.read, r)
        helper.raises_msg("lasync.http.Session:get: the session is closed",
          s.get, s, py.url("/hello"))
      end)
    end)

    it("raises ClientResponseError from raise_for_status", function()
      helper.run(function()
        local s <close> = http.Session()
        local r <close> = s:get(py.url("/status/404"))
        assert.are.equal(404, r.status)
        local err = helper.raises(http.ClientResponseError,
          "ClientResponseError", r.raise_for_status, r)
        assert.are.equal(404, err.status)
        assert.are.equal(py.url("/status/404"), err.url)
        helper.raises(http.ClientResponseError, "ClientResponseError", s.get,
          s, py.url("/status/500"), { raise_for_status = true })
      end)
    end)

    it("raises ClientConnectorError for a refused connection", function()
      helper.run(function()
        local port = tls_helper.free_port()
        local url = ("http://127.0.0.1:%d/"):format(port)
        local err = helper.raises(http.ClientConnectorError,
          "ClientConnectorError", http.get, url)
        assert.are.equal(url, err.url)
        assert.are.equal(port, err.port)
        assert.are.equal("ECONNREFUSED", err.code)
      end)
    end)
  end)

  describe("https against nginx", function()
    it("verifies the server with the test CA, by IP and by name", function()
      helper.run(function()
        local s <close> = http.Session { ssl = ca_ctx() }
        for _, host in ipairs { "127.0.0.1", "localhost" } do
          local r <close> = s:get(ng.tls_url("/text.txt", host))
          assert.are.equal(200, r.status)
          assert.are.equal(ng.text, r:text())
        end
      end)
    end)

    it("fails verification against the system store and a wrong CA",
      function()
      helper.run(function()
        local url = ng.tls_url("/index.html")
        local s <close> = http.Session()
        local err = helper.raises(http.ClientSSLError, "ClientSSLError",
          s.get, s, url)
        assert.is_true(lasync.is_error(err, http.ClientConnectorError))
        assert.are.equal("CERTIFICATE_VERIFY_FAILED", err.reason)
        assert.are.equal(url, err.url)
        local wrong = lasync.ssl.context { cafile = ng.certs.self.cert }
        err = helper.raises(http.ClientSSLError, "ClientSSLError", s.get, s,
          url, { ssl = wrong })
        assert.are.equal("CERTIFICATE_VERIFY_FAILED", err.reason)
        assert.is_number(err.verify_code)
      end)
    end)

    it("sends a Secure cookie over https only", function()
      helper.run(function()
        local s <close> = http.Session { ssl = ca_ctx() }
        local set <close> = s:get(ng.tls_url("/setcookie"))
        assert.are.equal("set\n", set:text())
        local plain <close> = s:get(ng.url("/cookie"))
        assert.are.equal("[open=2]", plain:text())
        local tls <close> = s:get(ng.tls_url("/cookie"))
        local got = tls:text()
        assert.matches("sec=1", got, 1, true)
        assert.matches("open=2", got, 1, true)
      end)
    end)

    it("follows a redirect from http to https, dropping Authorization",
      function()
      helper.run(function()
        local s <close> = http.Session { ssl = ca_ctx() }
        -- same origin first: the credentials are sent
        local same <close> = s:get(ng.tls_url("/auth"),
          { auth = { "user", "pw" } })
        assert.are.equal("[Basic dXNlcjpwdw==]", same:text())
        local to = ng.tls_url("/auth")
        local r <close> = s:get(py.url("/redirect?code=301&to=" .. to),
          { auth = { "user", "pw" } })
        assert.are.equal(200, r.status)
        assert.are.equal(to, r.url)
        assert.are.equal(301, r.history[1].status)
        assert.are.equal("[]", r:text())
      end)
    end)

    it("connects without verification with ssl = false", function()
      helper.run(function()
        local r = http.get(ng.tls_url("/index.html"), { ssl = false })
        assert.are.equal(200, r.status)
        assert.matches("nginx peer", r:text(), 1, true)
      end)
    end)

    it("runs 200 concurrent https requests through 4 connections",
      function()
      helper.run(function()
        local before = peers.nginx_status(ng)
        local s <close> = http.Session { ssl = ca_ctx(), limit_per_host = 4 }
        local tasks = {}
        for i = 1, 200 do
          tasks[i] = lasync.spawn(function()
            local r <close> = s:get(ng.tls_url("/index.html?i=" .. i))
            r:read()  -- an unread body would close its connection
            return r.status
          end)
        end
        for _, t in ipairs(tasks) do assert.are.equal(200, t:await()) end
        local after = peers.nginx_status(ng)
        assert.is_true(after.accepts - before.accepts <= 5,
          "accepts " .. after.accepts - before.accepts)
      end, 30)
    end)
  end)

  it("a one-shot request reads the body before returning", function()
    helper.run(function()
      local r = http.get(py.url("/echo"), { params = { q = "a b" },
        headers = { ["X-Test"] = "1" } })
      assert.are.equal(200, r.status)
      local a = r:json()
      -- a space in a query: "+" (yarl) or "%20"
      assert.is_truthy(a.path == "/echo?q=a+b" or a.path == "/echo?q=a%20b",
        a.path)
      assert.are.equal("1", echoed(a, "X-Test"))
      assert.is_string(echoed(a, "User-Agent"))
      assert.are.equal("127.0.0.1:" .. py.port, echoed(a, "Host"))
    end)
  end)
end)
