-- lasync.http over real connections: raw request bytes from
-- lasync.open_connection and curl (keep-alive reuse, chunked upload,
-- 100-continue, HEAD, HTTP/1.0), handler errors, middlewares, 404/405,
-- streaming, limits, graceful shutdown and handler cancellation.
local helper = require "helper"
local lasync = helper.lasync
local json = require "lasync.json"

local http = lasync.http

--{======================================================================
-- Helpers
--=======================================================================

-- Start app on a free loopback port; returns the server and the port.
local function serve(app, opts)
  opts = opts or {}
  opts.host, opts.port = "127.0.0.1", 0
  local server = app:start(opts)
  local _, port = server:address()
  return server, port
end

local function stop(server)
  server:close()
  server:wait_closed()
end

-- Send the raw bytes and read until the server closes; returns what came.
local function exchange(port, bytes)
  local r, w = lasync.open_connection("127.0.0.1", port)
  w:write(bytes)
  local got = r:read()
  w:close()
  return got
end

-- Parse one response at position pos of s: {status =, reason =,
-- version =, headers = (lowercase names), body =}, next position.
local function parse_response(s, pos)
  pos = pos or 1
  local head_end = s:find("\r\n\r\n", pos, true)
  assert(head_end, "no complete response head in: " .. s:sub(pos))
  local head = s:sub(pos, head_end - 1)
  local version, status, reason =
    head:match("^HTTP/(%d%.%d) (%d%d%d) ?([^\r]*)")
  assert(version, "bad status line: " .. head)
  local res = { version = version, status = tonumber(status),
    reason = reason, headers = {}, raw_head = head }
  for name, value in head:gmatch("\r\n([^:\r]+):[ \t]*([^\r]*)") do
    local k = name:lower()
    if res.headers[k] then
      res.headers[k] = res.headers[k] .. ", " .. value
    else
      res.headers[k] = value
    end
  end
  local p = head_end + 4
  local len = res.headers["content-length"]
  if res.headers["transfer-encoding"] == "chunked" then
    local parts = {}
    while true do
      local size_end = s:find("\r\n", p, true)
      local size = tonumber(s:sub(p, size_end - 1):match("^%x+"), 16)
      p = size_end + 2
      if size == 0 then p = p + 2; break end
      parts[#parts + 1] = s:sub(p, p + size - 1)
      p = p + size + 2
    end
    res.body = table.concat(parts)
  elseif len then
    res.body = s:sub(p, p + tonumber(len) - 1)
    p = p + tonumber(len)
  else
    res.body = s:sub(p)
    p = #s + 1
  end
  return res, p
end

-- Every response in s.
local function parse_all(s, head_only)
  local out, pos = {}, 1
  while pos <= #s do
    local res
    if head_only then
      local e = s:find("\r\n\r\n", pos, true)
      res = parse_response(s:sub(pos, e + 3) .. "", 1)
      res.body = nil
      pos = e + 4
    else
      res, pos = parse_response(s, pos)
    end
    out[#out + 1] = res
  end
  return out
end

-- One request on its own connection; returns the parsed response.
local function get(port, path, extra)
  return parse_response(exchange(port, ("GET %s HTTP/1.1\r\nHost: t\r\n" ..
    "%sConnection: close\r\n\r\n"):format(path, extra or "")))
end

-- Run curl with args (a list); returns exit code, stdout, stderr. Not
-- with the sanitizer build's LD_PRELOAD, under which curl hangs.
local function curl(args)
  local full = { "-u", "LD_PRELOAD", "curl", "-s", "-S", "--max-time", "5" }
  for _, a in ipairs(args) do full[#full + 1] = a end
  local p = lasync.subprocess.exec("env", full,
    { stdout = "pipe", stderr = "pipe" })
  local out, err = p:communicate()
  return p:wait(), out, err
end

-- An app whose logger keeps the messages.
local function app_with_log(opts)
  local logs = {}
  opts = opts or {}
  opts.logger = function(msg) logs[#logs + 1] = msg end
  return http.App(opts), logs
end

--}======================================================================

describe("lasync.http server", function()
  teardown(function() require("tls_helper").cleanup() end)

  it("answers a handler's string with 200 text/plain", function()
    helper.run(function()
      local app = http.App()
      app:get("/", function() return "Hello, world" end)
      local server, port = serve(app)
      local res = get(port, "/")
      assert.are.equal(200, res.status)
      assert.are.equal("OK", res.reason)
      assert.are.equal("1.1", res.version)
      assert.are.equal("Hello, world", res.body)
      assert.are.equal("text/plain; charset=utf-8",
        res.headers["content-type"])
      assert.are.equal("12", res.headers["content-length"])
      assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$",
        res.headers.date)
      assert.are.equal("close", res.headers.connection)
      stop(server)
    end)
  end)

  it("goes on after raised HTTP exceptions on a kept-alive connection",
    function()
      helper.run(function()
        local app = http.App()
        local conns = {}
        app:get("/raise", function(req)
          conns[rawget(req, "_c")] = true
          error(http.HTTPForbidden("no"))
        end)
        app:get("/ok", function(req)
          conns[rawget(req, "_c")] = true
          return "ok"
        end)
        local server, port = serve(app)
        local got = exchange(port, "GET /raise HTTP/1.1\r\nHost: t\r\n\r\n"
          .. "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
          .. "GET /raise HTTP/1.1\r\nHost: t\r\n\r\n"
          .. "GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        local all = parse_all(got)
        assert.are.equal(4, #all)
        assert.are.equal(403, all[1].status)
        assert.are.equal(404, all[2].status)
        assert.are.equal(403, all[3].status)
        assert.are.equal(200, all[4].status)
        assert.are.equal("ok", all[4].body)
        local n = 0
        for _ in pairs(conns) do n = n + 1 end
        assert.are.equal(1, n)
        stop(server)
      end)
    end)

  it("gives a plain route an empty match_info of its own per request",
    function()
      helper.run(function()
        local app = http.App()
        local seen = {}
        app:get("/plain", function(req)
          local info = req.match_info
          seen[#seen + 1] = info
          local n = next(info) == nil and "empty" or "dirty"
          info.mark = true -- a handler may write to it: the next gets none
          return n
        end)
        local server, port = serve(app)
        local got = exchange(port, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n"
          .. "GET /plain HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        local all = parse_all(got)
        assert.are.equal(2, #all)
        assert.are.equal("empty", all[1].body)
        assert.are.equal("empty", all[2].body)
        assert.are_not.equal(seen[1], seen[2])
        local handler, info = app._router:resolve("GET", "/plain")
        assert.is_function(handler)
        assert.are.same({}, info)
        stop(server)
      end)
    end)

  it("keeps connections alive and answers pipelined requests in order",
    function()
      helper.run(function()
        local app = http.App()
        local conns = {}
        app:get("/{n}", function(req)
          conns[req.remote .. tostring(rawget(req, "_c"))] = true
          return "n=" .. req.match_info.n
        end)
        local server, port = serve(app)
        local got = exchange(port, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n" ..
          "GET /2 HTTP/1.1\r\nHost: t\r\n\r\n" ..
          "GET /3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        local all = parse_all(got)
        assert.are.equal(3, #all)
        for i, res in ipairs(all) do
          assert.are.equal("n=" .. i, res.body)
        end
        assert.is_nil(all[1].headers.connection)
        assert.are.equal("close", all[3].headers.connection)
        local n = 0
        for _ in pairs(conns) do n = n + 1 end
        assert.are.equal(1, n)
        stop(server)
      end)
    end)

  it("reuses one connection for curl's keep-alive requests", function()
    helper.run(function()
      local app = http.App()
      local seen = {}
      app:get("/a", function(req)
        seen[#seen + 1] = rawget(req, "_c")
        return "a"
      end)
      local server, port = serve(app)
      local url = ("http://127.0.0.1:%d/a"):format(port)
      local code, out, err = curl { url, url, "-w", "%{num_connects}\n" }
      assert.are.equal(0, code, err)
      assert.are.equal("a1\na0\n", out)
      assert.are.equal(2, #seen)
      assert.are.equal(seen[1], seen[2])
      stop(server)
    end)
  end)

  it("answers 404 for no route and 405 with Allow for another method",
    function()
      helper.run(function()
        local app = http.App()
        app:get("/thing", function() return "got" end)
        app:post("/thing", function() return "posted" end)
        local server, port = serve(app)
        local res = get(port, "/nothing")
        assert.are.equal(404, res.status)
        assert.are.equal("404: Not Found", res.body)
        res = parse_response(exchange(port, "DELETE /thing HTTP/1.1\r\n" ..
          "Host: t\r\nConnection: close\r\n\r\n"))
        assert.are.equal(405, res.status)
        assert.are.equal("GET, HEAD, POST", res.headers.allow)
        -- a 404 keeps the connection
        local all = parse_all(exchange(port, "GET /x HTTP/1.1\r\n\r\n" ..
          "GET /thing HTTP/1.1\r\nConnection: close\r\n\r\n"))
        assert.are.equal(404, all[1].status)
        assert.are.equal("got", all[2].body)
        stop(server)
      end)
    end)

  it("gives the handler the request's parts", function()
    helper.run(function()
      local app = http.App()
      local seen
      app:get("/users/{id:%d+}/{rest:.*}", function(req)
        seen = { method = req.method, path = req.path, raw = req.raw_path,
          id = req.match_info.id, rest = req.match_info.rest,
          a = req.query:getall("a"), b = req.query.b,
          qs = req.query_string, ua = req.headers["User-Agent"],
          ua2 = req.headers:get("USER-AGENT"),
          x = req.headers:getall("X-Multi"), version = req.version,
          keep = req.keep_alive, remote = req.remote, host = req.host,
          cookies = req.cookies, scheme = req.scheme,
          app = req.app, ctype = req.content_type }
        return "ok"
      end)
      local server, port = serve(app)
      local res = parse_response(exchange(port,
        "GET /users/42/x%20y/z?a=1&a=2&b=%C3%A9 HTTP/1.1\r\nHost: h:1\r\n" ..
        "User-Agent: spec\r\nX-Multi: 1\r\nX-Multi: 2\r\n" ..
        "Cookie: sid=abc; theme=dark\r\nConnection: close\r\n\r\n"))
      assert.are.equal(200, res.status)
      assert.are.same({ method = "GET", path = "/users/42/x y/z",
        raw = "/users/42/x%20y/z?a=1&a=2&b=%C3%A9", id = "42",
        rest = "x y/z", a = { "1", "2" }, b = "\xC3\xA9",
        qs = "a=1&a=2&b=%C3%A9", ua = "spec", ua2 = "spec",
        x = { "1", "2" }, version = "1.1", keep = false,
        remote = "127.0.0.1", host = "h:1",
        cookies = { sid = "abc", theme = "dark" }, scheme = "http",
        app = app, ctype = "application/octet-stream" }, seen)
      stop(server)
    end)
  end)

  it("splits targets without escapes as url.split_target does", function()
    helper.run(function()
      local app = http.App()
      local seen = {}
      app:route("*", "/{p:.*}", function(req)
        seen[#seen + 1] = { path = req.path, qs = req.query_string,
          a = req.query:getall("a"), get = req.headers:get("get"),
          getall = req.headers:getall("getall"),
          multi = req.headers:getall("x-m"), plain = req.headers.host }
        return "ok"
      end)
      local server, port = serve(app)
      local all = parse_all(exchange(port,
        "GET /p?a=1&a=2?x HTTP/1.1\r\nHost: h\r\nGet: g\r\n\r\n" ..
        "GET /? HTTP/1.1\r\nGetAll: 1\r\nX-M: 1\r\nx-m: 2\r\n\r\n" ..
        "GET http://h/q?a=3 HTTP/1.1\r\nHost: h\r\n\r\n" ..
        "GET /%41?a=%41 HTTP/1.1\r\n\r\n" ..
        "GET /none HTTP/1.1\r\nConnection: close\r\n\r\n"))
      assert.are.equal(5, #all)
      assert.are.same({ path = "/p", qs = "a=1&a=2?x", a = { "1", "2?x" },
        get = "g", getall = {}, multi = {}, plain = "h" }, seen[1])
      assert.are.same({ path = "/", qs = "", a = {}, getall = { "1" },
        multi = { "1", "2" } }, seen[2])
      assert.are.same({ path = "/q", qs = "a=3", a = { "3" }, getall = {},
        multi = {}, plain = "h" }, seen[3])
      assert.are.same({ path = "/A", qs = "a=%41", a = { "A" },
        getall = {}, multi = {} }, seen[4])
      assert.are.same({ path = "/none", qs = "", a = {}, getall = {},
        multi = {} }, seen[5])
      stop(server)
    end)
  end)

  it("gives chunked and expect_continue as booleans", function()
    helper.run(function()
      local app = http.App()
      local seen = {}
      app:route("*", "/", function(req)
        seen[#seen + 1] = { req.chunked, req.expect_continue,
          req.content_length, req.method == "POST" and req:read() or "" }
        return "ok"
      end)
      local server, port = serve(app)
      local all = parse_all(exchange(port,
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n" ..
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
        "2\r\nab\r\n0\r\n\r\n" ..
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: 100-continue" ..
        "\r\nConnection: close\r\n\r\nc"))
      assert.are.equal(3, #all) -- no 100 Continue: the body is there
      assert.are.same({ false, false, nil, "" }, seen[1])
      assert.are.same({ true, false, nil, "ab" }, seen[2])
      assert.are.same({ false, true, 1, "c" }, seen[3])
      stop(server)
    end)
  end)

  it("answers 400 for a path with a bad escape and closes", function()
    helper.run(function()
      local app = http.App()
      app:get("/{x}", function() return "no" end)
      local server, port = serve(app)
      local all = parse_all(exchange(port, "GET /%zz HTTP/1.1\r\n\r\n" ..
        "GET /a HTTP/1.1\r\n\r\n"))
      assert.are.equal(1, #all)
      assert.are.equal(400, all[1].status)
      assert.are.equal("close", all[1].headers.connection)
      stop(server)
    end)
  end)

  it("answers HEAD with the headers of GET and no body", function()
    helper.run(function()
      local app = http.App()
      app:get("/", function() return "twelve bytes" end)
      local server, port = serve(app)
      local got = exchange(port, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" ..
        "HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
      local all = parse_all(got, true)
      assert.are.equal(2, #all)
      assert.are.equal(200, all[1].status)
      assert.are.equal("12", all[1].headers["content-length"])
      assert.is_nil(got:find("twelve", 1, true))
      local code, out = curl { "-I", ("http://127.0.0.1:%d/"):format(port) }
      assert.are.equal(0, code)
      assert.matches("^HTTP/1.1 200 OK\r\n", out)
      assert.matches("Content%-Length: 12\r\n", out)
      stop(server)
    end)
  end)

  it("speaks HTTP/1.0, closing unless asked to keep alive", function()
    helper.run(function()
      local app = http.App()
      app:get("/", function() return "old" end)
      local server, port = serve(app)
      local got = exchange(port, "GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n")
      local all = parse_all(got)
      assert.are.equal(1, #all)
      assert.are.equal("old", all[1].body)
      got = exchange(port, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" ..
        "GET / HTTP/1.0\r\n\r\n")
      all = parse_all(got)
      assert.are.equal(2, #all)
      assert.are.equal("keep-alive", all[1].headers.connection:lower())
      local code, out = curl { "-0", ("http://127.0.0.1:%d/"):format(port) }
      assert.are.equal(0, code)
      assert.are.equal("old", out)
      stop(server)
    end)
  end)

  it("reads bodies: Content-Length, chunked, 100-continue", function()
    helper.run(function()
      local app = http.App()
      app:post("/echo", function(req)
        return http.Response { body = req:read(),
          headers = { ["X-Len"] = tostring(req.content_length or -1) } }
      end)
      local server, port = serve(app)
      local res = parse_response(exchange(port, "POST /echo HTTP/1.1\r\n" ..
        "Content-Length: 5\r\nConnection: close\r\n\r\nhello"))
      assert.are.equal("hello", res.body)
      res = parse_response(exchange(port, "POST /echo HTTP/1.1\r\n" ..
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" ..
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"))
      assert.are.equal("abcde", res.body)
      local big = ("0123456789"):rep(20000)
      local file = os.tmpname()
      local f = assert(io.open(file, "wb"))
      f:write(big)
      f:close()
      local url = ("http://127.0.0.1:%d/echo"):format(port)
      -- chunked upload
      local code, out, err = curl { "-H", "Transfer-Encoding: chunked",
        "--data-binary", "@" .. file, url }
      assert.are.equal(0, code, err)
      assert.are.equal(big, out)
      -- Expect: 100-continue (curl asks for it on a large body)
      code, out, err = curl { "-v", "-H", "Expect: 100-continue",
        "--data-binary", "@" .. file, url }
      os.remove(file)
      assert.are.equal(0, code, err)
      assert.are.equal(big, out)
      assert.matches("HTTP/1.1 100 Continue", err)
      stop(server)
    end)
  end)

  it("decodes gzip and deflate bodies for every body API (curl)",
    function()
    local text = ("0123456789 lasync "):rep(30000) -- 540 KB
    local form = "name=lasync&tag=a%20b&tag=c"
    local json = '{"n": 12, "list": [1, 2, 3]}'
    -- compressed files, made by gzip(1) and python3's zlib
    local function file_of(data, cmd)
      local plain, out = os.tmpname(), os.tmpname()
      local f = assert(io.open(plain, "wb"))
      f:write(data)
      f:close()
      assert(os.execute(cmd:format(plain, out)))
      os.remove(plain)
      return out
    end
    local gz = "gzip -c < %s > %s"
    local raw = "python3 -c 'import sys, zlib; c = zlib.compressobj(9, " ..
      "zlib.DEFLATED, -15); d = open(sys.argv[1], \"rb\").read(); " ..
      "open(sys.argv[2], \"wb\").write(c.compress(d) + c.flush())' %s %s"
    local files = { text_gz = file_of(text, gz), text_raw = file_of(text, raw),
      form_gz = file_of(form, gz), json_raw = file_of(json, raw) }
    helper.run(function()
      local app = http.App { client_max_size = 1000000 }
      app:post("/read", function(req) return req:read() end)
      app:post("/json", function(req)
        local v = req:json()
        return ("%d %d"):format(v.n, #v.list)
      end)
      app:post("/post", function(req)
        local f = req:post()
        return f:get("name") .. "|" .. table.concat(f:getall("tag"), ",")
      end)
      app:post("/content", function(req)
        local n, pieces = 0, 0
        for piece in req:content():chunks() do
          n, pieces = n + #piece, pieces + 1
          assert(#piece <= 65536)
        end
        return ("%d in %d"):format(n, pieces)
      end)
      local server, port = serve(app)
      local url = ("http://127.0.0.1:%d"):format(port)
      local function send(path, file, coding, extra)
        local args = { "-H", "Content-Encoding: " .. coding,
          "--data-binary", "@" .. file, url .. path }
        if extra then table.insert(args, 1, extra) table.insert(args, 1, "-H")
        end
        local code, out, err = curl(args)
        assert.are.equal(0, code, err)
        return out
      end
      assert.are.equal(text, send("/read", files.text_gz, "gzip"))
      assert.are.equal(text, send("/read", files.text_raw, "deflate"))
      assert.are.equal(text, send("/read", files.text_gz, "gzip",
        "Transfer-Encoding: chunked"))
      assert.are.equal("12 3", send("/json", files.json_raw, "deflate"))
      assert.are.equal("lasync|a b,c", send("/post", files.form_gz, "gzip",
        "Content-Type: application/x-www-form-urlencoded"))
      assert.are.equal(#text .. " in 9", send("/content", files.text_raw,
        "deflate", "Transfer-Encoding: chunked"))
      stop(server)
    end)
    for _, f in pairs(files) do os.remove(f) end
  end)

  it("answers 415, 400 and 413 for bodies it cannot decode", function()
    helper.run(function()
      local app = http.App { client_max_size = 1000 }
      local seen = 0
      app:post("/", function(req)
        seen = seen + 1
        return req:read()
      end)
      local server, port = serve(app)
      local function post(coding, body)
        return parse_response(exchange(port, ("POST / HTTP/1.1\r\n" ..
          "Content-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s"):format(
          coding, #body, body)))
      end
      local res = post("br", "\11\2\128hello\3")
      assert.are.equal(415, res.status)
      assert.are.equal("close", res.headers.connection)
      assert.are.equal("gzip, deflate", res.headers["accept-encoding"])
      assert.are.equal(0, seen) -- refused before the handler
      assert.are.equal(415, post("gzip, gzip", "x").status)
      assert.are.equal(400, post("gzip", "definitely not gzip").status)
      -- 2000 zeros in 17 bytes of raw deflate: over client_max_size
      local zeros = "\99\96\24\5\163\96\20\140\130\81\48\10\70\193\80" ..
        "\7\0"
      res = post("deflate", zeros)
      assert.are.equal(413, res.status)
      assert.are.equal("close", res.headers.connection)
      assert.are.equal(2, seen)
      stop(server)
    end)
  end)

  it("does not send 100 Continue to a request refused unread", function()
    helper.run(function()
      local app = http.App()
      app:post("/no", function() return http.text("nope", 403) end)
      local server, port = serve(app)
      local got = exchange(port, "POST /no HTTP/1.1\r\nContent-Length: 5\r\n" ..
        "Expect: 100-continue\r\nConnection: close\r\n\r\n")
      assert.is_nil(got:find("100 Continue", 1, true))
      assert.are.equal(403, parse_response(got).status)
      stop(server)
    end)
  end)

  it("drains an unread body before the next request", function()
    helper.run(function()
      local app = http.App()
      app:post("/skip", function() return "skipped" end)
      app:get("/next", function() return "next" end)
      local server, port = serve(app)
      local all = parse_all(exchange(port, "POST /skip HTTP/1.1\r\n" ..
        "Content-Length: 10\r\n\r\n0123456789" ..
        "GET /next HTTP/1.1\r\nConnection: close\r\n\r\n"))
      assert.are.equal(2, #all)
      assert.are.equal("skipped", all[1].body)
      assert.are.equal("next", all[2].body)
      stop(server)
    end)
  end)

  it("answers 413 past client_max_size and closes", function()
    helper.run(function()
      local app = http.App { client_max_size = 10 }
      app:post("/", function(req) return req:read() end)
      local server, port = serve(app)
      local res = parse_response(exchange(port, "POST / HTTP/1.1\r\n" ..
        "Transfer-Encoding: chunked\r\n\r\n" ..
        "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n"))
      assert.are.equal(413, res.status)
      assert.are.equal("close", res.headers.connection)
      res = parse_response(exchange(port, "POST / HTTP/1.1\r\n" ..
        "Content-Length: 11\r\n\r\n01234567890"))
      assert.are.equal(413, res.status)
      stop(server)
    end)
  end)

  it("decodes JSON bodies and answers JSON", function()
    helper.run(function()
      local app = http.App()
      app:post("/sum", function(req)
        local v = req:json()
        assert(math.type(v.a) == "integer" and math.type(v.b) == "integer")
        return http.json({ sum = v.a + v.b, none = json.null }, 201)
      end)
      local server, port = serve(app)
      local body = '{"a": 2, "b": 3}'
      local res = parse_response(exchange(port, ("POST /sum HTTP/1.1\r\n" ..
        "Content-Type: application/json\r\nContent-Length: %d\r\n" ..
        "Connection: close\r\n\r\n%s"):format(#body, body)))
      assert.are.equal(201, res.status)
      assert.are.equal("application/json; charset=utf-8",
        res.headers["content-type"])
      assert.are.same({ sum = 5, none = json.null }, json.decode(res.body))
      res = parse_response(exchange(port, "POST /sum HTTP/1.1\r\n" ..
        "Content-Length: 3\r\nConnection: close\r\n\r\n{x}"))
      assert.are.equal(400, res.status)
      assert.matches("^invalid JSON body", res.body)
      stop(server)
    end)
  end)

  it("reads urlencoded and multipart forms with req:post()", function()
    helper.run(function()
      local app = http.App()
      app:post("/form", function(req)
        local form = req:post()
        local out = { name = form.name, tags = form:getall("tag") }
        local f = form.upload
        if f then
          out.filename, out.ctype, out.content = f.filename,
            f.content_type, f.read()
        end
        return http.json(out)
      end)
      local server, port = serve(app)
      local url = ("http://127.0.0.1:%d/form"):format(port)
      local code, out, err = curl { "-d", "name=a+b&tag=1&tag=2", url }
      assert.are.equal(0, code, err)
      assert.are.same({ name = "a b", tags = { "1", "2" } },
        json.decode(out))
      local file = os.tmpname()
      local f = assert(io.open(file, "wb"))
      f:write("file content\n")
      f:close()
      code, out, err = curl { "-F", "name=x", "-F", "tag=t",
        "-F", "upload=@" .. file .. ";filename=a.txt;type=text/plain", url }
      os.remove(file)
      assert.are.equal(0, code, err)
      assert.are.same({ name = "x", tags = { "t" }, filename = "a.txt",
        ctype = "text/plain", content = "file content\n" },
        json.decode(out))
      stop(server)
    end)
  end)

  it("streams a request body with req:content()", function()
    helper.run(function()
      local app = http.App()
      app:post("/count", function(req)
        local n, pieces = 0, 0
        for piece in req:content():chunks() do
          n, pieces = n + #piece, pieces + 1
        end
        return ("%d"):format(n)
      end)
      local server, port = serve(app)
      local body = ("x"):rep(200000)
      local res = parse_response(exchange(port, ("POST /count HTTP/1.1\r\n" ..
        "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(#body,
        body)))
      assert.are.equal("200000", res.body)
      stop(server)
    end)
  end)

  it("answers a handler error with 500, logs it, closes", function()
    helper.run(function()
      local app, logs = app_with_log()
      local function deep() error("kaput") end
      app:get("/boom", function() deep() end)
      app:get("/ok", function() return "fine" end)
      local server, port = serve(app)
      local all = parse_all(exchange(port, "GET /boom HTTP/1.1\r\n\r\n" ..
        "GET /ok HTTP/1.1\r\n\r\n"))
      assert.are.equal(1, #all)
      assert.are.equal(500, all[1].status)
      assert.are.equal("500 Internal Server Error", all[1].body)
      assert.are.equal("close", all[1].headers.connection)
      assert.are.equal(1, #logs)
      assert.matches("^lasync.http: error handling GET /boom: " ..
        "[^\n]*kaput\n", logs[1])
      assert.matches("stack traceback:", logs[1])
      assert.matches("in [^\n]*deep", logs[1])
      assert.are.equal("fine", get(port, "/ok").body) -- the server goes on
      stop(server)
    end)
  end)

  it("sends the traceback in debug mode", function()
    helper.run(function()
      local app = app_with_log { debug = true }
      app:get("/boom", function() error("kaput") end)
      local server, port = serve(app)
      local res = get(port, "/boom")
      assert.are.equal(500, res.status)
      assert.matches("^500 Internal Server Error\n\n[^\n]*kaput", res.body)
      assert.matches("stack traceback:", res.body)
      stop(server)
    end)
  end)

  it("answers 500 for a bad answer or a header with CR/LF", function()
    helper.run(function()
      local app, logs = app_with_log()
      app:get("/nil", function() end)
      app:get("/crlf", function()
        local r = http.text("x")
        r.headers["X-Evil"] = "a\r\nSet-Cookie: pwned=1"
        return r
      end)
      local server, port = serve(app)
      assert.are.equal(500, get(port, "/nil").status)
      assert.matches("returned nil %(expected a string, a Response or an " ..
        "HTTPException%)", logs[1])
      local got = exchange(port, "GET /crlf HTTP/1.1\r\nConnection: close" ..
        "\r\n\r\n")
      assert.are.equal(500, parse_response(got).status)
      assert.is_nil(got:find("pwned", 1, true))
      assert.are.equal(2, #logs)
      stop(server)
    end)
  end)

  it("sends HTTP exceptions raised or returned, keeping the connection",
    function()
      helper.run(function()
        local app = http.App()
        app:get("/raise", function() error(http.HTTPForbidden("go away")) end)
        app:get("/return", function() return http.HTTPNotFound() end)
        app:get("/redirect", function() error(http.redirect("/new", 301)) end)
        local server, port = serve(app)
        local all = parse_all(exchange(port, "GET /raise HTTP/1.1\r\n\r\n" ..
          "GET /return HTTP/1.1\r\n\r\n" ..
          "GET /redirect HTTP/1.1\r\nConnection: close\r\n\r\n"))
        assert.are.equal(3, #all)
        assert.are.equal(403, all[1].status)
        assert.are.equal("go away", all[1].body)
        assert.are.equal(404, all[2].status)
        assert.are.equal(301, all[3].status)
        assert.are.equal("/new", all[3].headers.location)
        stop(server)
      end)
    end)

  it("runs middlewares in order, 404s included", function()
    helper.run(function()
      local log = {}
      local function mw(name)
        return function(req, handler)
          log[#log + 1] = name .. ">"
          local ok, res = pcall(handler, req)
          log[#log + 1] = "<" .. name
          if not ok then
            if http.is_exception(res) and res.status == 404 then
              return http.text("custom 404 from " .. name, 404)
            end
            error(res, 0)
          end
          res.headers["X-" .. name] = "1"
          return res
        end
      end
      local app = http.App { middlewares = { mw("a") } }
      app:use(mw("b"))
      app:get("/", function()
        log[#log + 1] = "handler"
        return http.text("hi")
      end)
      local server, port = serve(app)
      local res = get(port, "/")
      assert.are.same({ "a>", "b>", "handler", "<b", "<a" }, log)
      assert.are.equal("1", res.headers["x-a"])
      assert.are.equal("1", res.headers["x-b"])
      res = get(port, "/missing")
      assert.are.equal(404, res.status)
      assert.are.equal("custom 404 from b", res.body)
      stop(server)
    end)
  end)

  it("sets cookies", function()
    helper.run(function()
      local app = http.App()
      app:get("/", function()
        local r = http.text("c")
        r:set_cookie("sid", "1", { httponly = true, path = "/" })
        r:set_cookie("b", "2")
        return r
      end)
      local server, port = serve(app)
      local got = exchange(port, "GET / HTTP/1.1\r\nConnection: close" ..
        "\r\n\r\n")
      assert.matches("\r\nSet%-Cookie: sid=1; [^\r]*HttpOnly", got)
      assert.matches("\r\nSet%-Cookie: b=2\r\n", got)
      stop(server)
    end)
  end)

  it("streams responses with StreamResponse and stream =", function()
    helper.run(function()
      local app = http.App()
      app:get("/sr", function(req)
        local resp = http.StreamResponse { content_type = "text/plain" }
        resp:prepare(req)
        for i = 1, 3 do resp:write("part" .. i .. ";") end
        resp:write_eof()
        return resp
      end)
      app:get("/fn", function()
        return http.Response { stream = function(w)
          for _ = 1, 40 do w:write(("y"):rep(10000)) end
        end }
      end)
      app:get("/len", function(req)
        local resp = http.StreamResponse { content_length = 4 }
        resp:prepare(req)
        resp:write("ab")
        resp:write("cd")
        return resp
      end)
      local server, port = serve(app)
      local res = get(port, "/sr")
      assert.are.equal("chunked", res.headers["transfer-encoding"])
      assert.are.equal("part1;part2;part3;", res.body)
      res = get(port, "/fn")
      assert.are.equal(400000, #res.body)
      res = get(port, "/len")
      assert.are.equal("4", res.headers["content-length"])
      assert.are.equal("abcd", res.body)
      -- over HTTP/1.0 a streamed body is read until close
      local got = exchange(port, "GET /sr HTTP/1.0\r\n" ..
        "Connection: keep-alive\r\n\r\n")
      res = parse_response(got)
      assert.are.equal("part1;part2;part3;", res.body)
      stop(server)
    end)
  end)

  it("writes an access log in the Common Log Format", function()
    helper.run(function()
      local lines = {}
      local app = http.App { access_log = function(line, req, status, size)
        lines[#lines + 1] = { line, req.method, status, size }
      end }
      app:get("/", function() return "12345" end)
      local server, port = serve(app)
      get(port, "/?q=1")
      assert.are.equal(1, #lines)
      assert.matches('^127%.0%.0%.1 %- %- %[%d%d/%a%a%a/%d%d%d%d:%d%d:%d%d:' ..
        '%d%d %+0000%] "GET /%?q=1 HTTP/1%.1" 200 5$', lines[1][1])
      assert.are.same({ "GET", 200, 5 }, { lines[1][2], lines[1][3],
        lines[1][4] })
      stop(server)
    end)
  end)

  it("passes its limits to the parser: 431 past max_head, max_headers",
    function()
      helper.run(function()
        local app = http.App { max_head = 200, max_headers = 3 }
        app:get("/", function() return "ok" end)
        local server, port = serve(app)
        assert.are.equal("ok", get(port, "/").body)
        local res = get(port, "/", "X-Long: " .. ("a"):rep(300) .. "\r\n")
        assert.are.equal(431, res.status)
        assert.are.equal("close", res.headers.connection)
        res = get(port, "/", "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n")
        assert.are.equal(431, res.status)
        stop(server)
      end)
    end)

  it("refuses malformed requests with 400 and closes", function()
    helper.run(function()
      local app = http.App()
      app:get("/", function() return "no" end)
      local server, port = serve(app)
      local got = exchange(port, "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n" ..
        "GET / HTTP/1.1\r\n\r\n")
      local all = parse_all(got)
      assert.are.equal(1, #all)
      assert.are.equal(400, all[1].status)
      assert.are.equal("close", all[1].headers.connection)
      stop(server)
    end)
  end)

  it("closes gracefully: in-flight requests finish, idle ones close",
    function()
      helper.run(function()
        local app = http.App()
        local started, release = lasync.Event(), lasync.Event()
        app:get("/slow", function()
          started:set()
          release:wait()
          return "done"
        end)
        app:get("/fast", function() return "fast" end)
        local server, port = serve(app)
        -- an idle keep-alive connection
        local ir, iw = lasync.open_connection("127.0.0.1", port)
        iw:write("GET /fast HTTP/1.1\r\n\r\n")
        local first = ir:readuntil("fast")
        assert.matches("^HTTP/1.1 200", first)
        -- a request in flight
        local sr, sw = lasync.open_connection("127.0.0.1", port)
        sw:write("GET /slow HTTP/1.1\r\n\r\n")
        started:wait()
        server:close()
        assert.is_false(server:is_serving())
        -- the idle connection is closed at once
        assert.are.equal("", ir:read())
        -- new connections are refused
        local ok = pcall(lasync.open_connection, "127.0.0.1", port)
        assert.is_false(ok)
        local closed = lasync.spawn(function() server:wait_closed() end)
        helper.settle_all()
        assert.is_false(closed:done())
        release:set()
        local res = parse_response(sr:read())
        assert.are.equal("done", res.body)
        assert.are.equal("close", res.headers.connection)
        closed:await()
        iw:close()
        sw:close()
      end)
    end)

  it("cancels requests still running after shutdown_timeout", function()
    helper.run(function()
      local app = http.App()
      local started, cancelled = lasync.Event(), false
      app:get("/stuck", function()
        started:set()
        local ok, err = pcall(lasync.sleep, 10)
        cancelled = not ok and lasync.is_cancelled(err)
        error(err, 0)
      end)
      local server, port = serve(app, { shutdown_timeout = 0.05 })
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("GET /stuck HTTP/1.1\r\n\r\n")
      started:wait()
      local t = helper.timed(function()
        server:close()
        server:wait_closed()
      end)
      assert.is_true(cancelled)
      assert.is_true(t >= 0.04)
      assert.is_true(t < 2)
      assert.are.equal("", r:read())
      w:close()
    end)
  end)

  it("lets a handler finish when its client goes away, by default",
    function()
      helper.run(function()
        local app = http.App()
        local started, finished = lasync.Event(), lasync.Event()
        app:get("/work", function()
          started:set()
          lasync.sleep(0.05)
          finished:set()
          return "done"
        end)
        local server, port = serve(app)
        local _, w = lasync.open_connection("127.0.0.1", port)
        w:write("GET /work HTTP/1.1\r\n\r\n")
        started:wait()
        w:abort()
        lasync.wait_for(function() finished:wait() end, 2)
        assert.is_true(finished:is_set())
        stop(server)
      end)
    end)

  it("cancels the handler when its client goes away with " ..
     "handler_cancellation", function()
    helper.run(function()
      local app = http.App { handler_cancellation = true }
      local started, gone = lasync.Event(), lasync.Event()
      local finished = false
      app:get("/work", function()
        started:set()
        local ok, err = pcall(lasync.sleep, 5)
        if not ok and lasync.is_cancelled(err) then gone:set() end
        if not ok then error(err, 0) end
        finished = true
        return "done"
      end)
      app:get("/quick", function() return "quick" end)
      local server, port = serve(app)
      -- a normal request is not cancelled
      assert.are.equal("quick", get(port, "/quick").body)
      local _, w = lasync.open_connection("127.0.0.1", port)
      w:write("GET /work HTTP/1.1\r\n\r\n")
      started:wait()
      w:close()
      lasync.wait_for(function() gone:wait() end, 2)
      assert.is_false(finished)
      -- with a body: watched once the handler has read it
      started:clear()
      gone:clear()
      local body
      app:post("/work", function(req)
        body = req:read()
        started:set()
        local ok, err = pcall(lasync.sleep, 5)
        if not ok and lasync.is_cancelled(err) then gone:set() end
        error(err, 0)
      end)
      _, w = lasync.open_connection("127.0.0.1", port)
      w:write("POST /work HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody")
      started:wait()
      w:close()
      lasync.wait_for(function() gone:wait() end, 2)
      assert.are.equal("body", body)
      -- a body the handler has not read yet does not hide the close
      started:clear()
      gone:clear()
      app:put("/work", function()
        started:set()
        local ok, err = pcall(lasync.sleep, 5)
        if not ok and lasync.is_cancelled(err) then gone:set() end
        error(err, 0)
      end)
      _, w = lasync.open_connection("127.0.0.1", port)
      w:write("PUT /work HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody")
      started:wait()
      w:close()
      lasync.wait_for(function() gone:wait() end, 2)
      -- a handler reading its body as the watch begins: watched after
      started:clear()
      gone:clear()
      local rw
      app:patch("/work", function(req)
        local got = req:read()
        started:set()
        local ok, err = pcall(lasync.sleep, 5)
        if not ok and lasync.is_cancelled(err) then gone:set() end
        if not ok then error(err, 0) end
        return got
      end)
      _, rw = lasync.open_connection("127.0.0.1", port)
      rw:write("PATCH /work HTTP/1.1\r\nContent-Length: 4\r\n\r\n")
      helper.settle_all()
      rw:write("body")
      started:wait()
      rw:close()
      lasync.wait_for(function() gone:wait() end, 2)
      stop(server)
    end)
  end)

  it("serves static files: Range, conditional, HEAD, traversal refused",
    function()
      helper.in_dir(function(dir)
        local content = ("0123456789"):rep(30000) -- 300000 bytes
        lasync.fs.writefile(dir .. "/data.txt", content)
        lasync.fs.writefile(dir .. "/page.html", "<p>hi</p>")
        lasync.fs.mkdir(dir .. "/sub")
        lasync.fs.writefile(dir .. "/sub/<b>.txt", "x")
        local secret = dir .. "-secret"
        lasync.fs.writefile(secret, "secret")
        os.execute(("ln -s %s %s/link"):format(helper.shell_quote(secret),
          helper.shell_quote(dir)))
        local app = http.App()
        app:static("/static", dir, { show_index = true })
        app:get("/one", function() return http.file(dir .. "/page.html",
          { headers = { ["X-Extra"] = "1" } }) end)
        local server, port = serve(app)
        local base = ("http://127.0.0.1:%d"):format(port)
        local code, out, err = curl { base .. "/static/data.txt" }
        assert.are.equal(0, code, err)
        assert.are.equal(content, out)
        code, out = curl { "-r", "10-19", base .. "/static/data.txt" }
        assert.are.equal("0123456789", out)
        local res = get(port, "/static/data.txt", "Range: bytes=299995-\r\n")
        assert.are.equal(206, res.status)
        assert.are.equal("56789", res.body)
        assert.are.equal("bytes 299995-299999/300000",
          res.headers["content-range"])
        res = get(port, "/static/data.txt", "Range: bytes=400000-\r\n")
        assert.are.equal(416, res.status)
        res = get(port, "/static/page.html")
        assert.are.equal("<p>hi</p>", res.body)
        assert.are.equal("text/html; charset=utf-8",
          res.headers["content-type"])
        local etag = res.headers.etag
        res = get(port, "/static/page.html", "If-None-Match: " .. etag ..
          "\r\n")
        assert.are.equal(304, res.status)
        assert.are.equal("", res.body)
        local got = exchange(port, "HEAD /static/data.txt HTTP/1.1\r\n" ..
          "Connection: close\r\n\r\n")
        assert.matches("Content%-Length: 300000\r\n", got)
        assert.are.equal("", got:match("\r\n\r\n(.*)$"))
        for _, bad in ipairs { "/static/../x", "/static/%2e%2e/x",
          "/static/sub%2f..%2f..%2fx", "/static/link", "/static/a%00" } do
          res = get(port, bad)
          assert.is_true(res.status == 403 or res.status == 404 or
            res.status == 400, bad .. " gave " .. res.status)
          assert.is_nil(res.body:find("secret", 1, true))
        end
        res = get(port, "/static/sub/")
        assert.are.equal(200, res.status)
        assert.matches("&lt;b&gt;.txt", res.body)
        assert.is_nil(res.body:find("<b>", 1, true))
        res = get(port, "/one")
        assert.are.equal("<p>hi</p>", res.body)
        assert.are.equal("1", res.headers["x-extra"])
        assert.is_string(res.headers["last-modified"])
        stop(server)
        os.remove(secret)
      end, 10)
    end)

  it("answers over TLS", function()
    helper.run(function()
      local certs = require("tls_helper").certs()
      local app = http.App()
      app:get("/", function(req) return req.scheme end)
      local server, port = serve(app, { ssl = lasync.ssl.context {
        purpose = "server", certfile = certs.server.cert,
        keyfile = certs.server.key } })
      local r, w = lasync.open_connection("127.0.0.1", port, { ssl =
        lasync.ssl.context { cafile = certs.ca.cert },
        server_hostname = "localhost" })
      w:write("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
      local res = parse_response(r:read())
      assert.are.equal("https", res.body)
      w:close()
      stop(server)
    end)
  end)

  it("closes an idle keep-alive connection after keepalive_timeout, " ..
     "and answers a slow head with 408", function()
    helper.run(function()
      local app = http.App { keepalive_timeout = 0.05, head_timeout = 0.1 }
      app:get("/", function() return "x" end)
      local server, port = serve(app)
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("GET / HTTP/1.1\r\n\r\n")
      local t = helper.timed(function()
        local got = r:read()
        assert.are.equal("x", parse_response(got).body)
      end)
      assert.is_true(t >= 0.04)
      w:close()
      -- slowloris: a byte every 20 ms does not extend the head deadline
      r, w = lasync.open_connection("127.0.0.1", port)
      local done = false
      local feeder = lasync.spawn(function()
        for c in ("GET / HTTP/1.1\r\nX-Slow: " .. ("a"):rep(100)):gmatch(".")
        do
          if done then break end
          pcall(w.write, w, c)
          lasync.sleep(0.02)
        end
      end)
      t = helper.timed(function()
        local res = parse_response(r:read())
        assert.are.equal(408, res.status)
      end)
      done = true
      feeder:await()
      assert.is_true(t < 1)
      w:close()
      stop(server)
    end)
  end)

  it("meets random request shapes without a handler error or a report",
    function()
      helper.run(function()
        local reports = helper.capture_reports()
        local app, logs = app_with_log { client_max_size = 1000 }
        app:get("/", function() return "root" end)
        app:post("/form", function(req)
          return http.json({ n = req:post():len() })
        end)
        app:post("/json", function(req) return http.json(req:json()) end)
        app:post("/read", function(req) return req:read() end)
        app:get("/q", function(req) return tostring(req.query.a) end)
        app:get("/c", function(req) return tostring(req.cookies.a) end)
        local server, port = serve(app)
        local pieces = { "GET", "POST", "HEAD", "PUT", " ", "/", "/form",
          "/json", "/read", "/q?a=%zz", "/q?a=1&a=2", " HTTP/1.1\r\n",
          " HTTP/1.0\r\n", "Content-Length: 5\r\n",
          "Transfer-Encoding: chunked\r\n",
          "Content-Type: multipart/form-data; boundary=xx\r\n",
          "Content-Type: application/x-www-form-urlencoded\r\n",
          "Cookie: a=1; b\r\n", "Expect: 100-continue\r\n", "\r\n",
          "5\r\nhello\r\n0\r\n\r\n", "--xx\r\n", "a=1&b=%", '{"a":',
          "\0", "\r", "\n" }
        local rng = 12345
        local function rand(n) -- a fixed sequence, whatever math.random does
          rng = (rng * 1103515245 + 12345) % 2147483648
          return rng % n + 1
        end
        for _ = 1, 150 do
          local t = {}
          for _ = 1, rand(12) do t[#t + 1] = pieces[rand(#pieces)] end
          local r, w = lasync.open_connection("127.0.0.1", port)
          w:write(table.concat(t))
          if rand(2) == 1 then w:write_eof() end
          pcall(lasync.wait_for, function() r:read() end, 0.05)
          w:abort()
        end
        stop(server)
        assert.are.same({}, logs)
        assert.are.equal(0, #reports)
      end, 20)
    end)

  it("serves many connections at once", function()
    helper.run(function()
      local app = http.App()
      app:get("/{n}", function(req)
        lasync.sleep(0.001)
        return req.match_info.n
      end)
      local server, port = serve(app)
      local tasks = {}
      for i = 1, 20 do
        tasks[i] = lasync.spawn(function()
          return get(port, "/" .. i).body
        end)
      end
      local res = lasync.gather(tasks)
      for i = 1, 20 do assert.are.equal(tostring(i), res[i]) end
      stop(server)
    end)
  end)
end)

describe("app:run", function()


  it("prints one line, serves, and stops on SIGTERM", function()
    helper.run(function()
      local script = helper.temp_script([[
        local http = lasync.http
        local app = http.App()
        app:get("/", function() return "running" end)
        app:run { host = "127.0.0.1", port = 0 }
        print("stopped")
      ]])
      local p = lasync.subprocess.exec(helper.bin, { script },
        { stdout = "pipe", stderr = "pipe" })
      local line = p.stdout:readline()
      local port = tonumber(line:match(
        "^======== Running on http://127%.0%.0%.1:(%d+) ========\n$"))
      assert.is_number(port, line)
      assert.are.equal("running", get(port, "/").body)
      p:send_signal("SIGTERM")
      local out, err = p:communicate()
      assert.are.equal(0, p:wait(), err)
      assert.are.equal("stopped\n", out)
      os.remove(script)
    end)
  end)

  it("checks its options", function()
    local app = http.App()
    helper.raises_msg("lasync.http.App:run: unknown option 'prot'",
      app.run, app, { prot = 1 })
    helper.raises_msg("lasync.http.App:start: unknown option 'prot'",
      app.start, app, { prot = 1 })
    helper.raises_msg("lasync.http.App:start: option 'shutdown_timeout' " ..
      "must be a number of seconds >= 0 (got -1)", app.start, app,
      { shutdown_timeout = -1 })
    helper.run(function()
      helper.raises_msg("lasync.http.App:start: port must be an integer",
        app.start, app, { port = "x" })
      helper.raises_msg("lasync.http.App:start: host contains an " ..
        "embedded NUL byte", app.start, app, { host = "a\0b", port = 0 })
    end)
  end)
end)
