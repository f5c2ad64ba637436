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
