-- lasync.http's objects without a server: Response and its shortcuts,
-- the HTTP exceptions, the App's options and routes, the middleware
-- chain, and the Request's headers.
local helper = require "helper"
local lasync = helper.lasync
local json = require "lasync.json"

local http = lasync.http

describe("lasync.http", function()
  it("is loaded on first use of lasync.http", function()
    local code, out = helper.run_script([[
      local lasync = require "lasync"
      io.write(tostring(package.loaded["lasync.http"] ~= nil), " ")
      local http = lasync.http
      io.write(tostring(package.loaded["lasync.http"] == http), " ",
        tostring(rawget(lasync, "http") == http))
    ]])
    assert.are.equal(0, code)
    assert.are.equal("false true true", out)
  end)
end)

describe("http.Response", function()
  it("takes status, reason, headers and a body", function()
    local r = http.Response { status = 201, reason = "Made",
      headers = { ["X-A"] = "1", ["Set-Cookie"] = { "a=1", "b=2" } },
      body = "data" }
    assert.are.equal(201, r.status)
    assert.are.equal("Made", r.reason)
    assert.are.equal("data", r.body)
    assert.are.equal("1", r.headers["X-A"])
    assert.are.equal("application/octet-stream", r.headers["Content-Type"])
    assert.are.equal("lasync.http.Response: 201", tostring(r))
  end)

  it("sets the content type of text and honours content_type", function()
    assert.are.equal("text/plain; charset=utf-8",
      http.Response { text = "hi" }.headers["Content-Type"])
    assert.are.equal("text/csv",
      http.Response { text = "a,b", content_type = "text/csv" }
        .headers["Content-Type"])
    local r = http.Response { body = "x",
      headers = { ["content-type"] = "image/png" } }
    assert.are.equal("image/png", r.headers["content-type"])
    assert.is_nil(r.headers["Content-Type"])
    assert.are.equal(200, http.Response().status)
  end)

  it("refuses bad arguments, naming itself", function()
    helper.raises_msg("lasync.http.Response: status must be an integer " ..
      "from 100 to 999 (got 99)", http.Response, { status = 99 })
    helper.raises_msg("lasync.http.Response: status must be an integer",
      http.Response, { status = 200.5 })
    helper.raises_msg("lasync.http.Response: header X-A contains CR, LF " ..
      "or NUL", http.Response, { headers = { ["X-A"] = "a\r\nSet-Cookie: x" } })
    helper.raises_msg("lasync.http.Response: invalid header name \"a b\"",
      http.Response, { headers = { ["a b"] = "1" } })
    helper.raises_msg("lasync.http.Response: reason contains CR, LF or NUL",
      http.Response, { reason = "OK\r\n" })
    helper.raises_msg("lasync.http.Response: body must be a string (got " ..
      "number)", http.Response, { body = 1 })
    helper.raises_msg("lasync.http.Response: give one of body, text and " ..
      "stream", http.Response, { body = "a", text = "b" })
    helper.raises_msg("lasync.http.Response: unknown option 'stauts'",
      http.Response, { stauts = 200 })
    helper.raises_msg("lasync.http.Response: options must be a table",
      http.Response, "hello")
  end)

  it("adds Set-Cookie headers with set_cookie and del_cookie", function()
    local r = http.text("hi")
    r:set_cookie("sid", "abc", { path = "/", httponly = true })
    r:set_cookie("theme", "dark")
    r:del_cookie("old")
    local c = r.headers["Set-Cookie"]
    assert.are.equal(3, #c)
    assert.matches("^sid=abc", c[1])
    assert.matches("Path=/", c[1])
    assert.matches("HttpOnly", c[1])
    assert.are.equal("theme=dark", c[2])
    assert.matches("^old=", c[3])
    assert.matches("Max%-Age=0", c[3])
    local err = helper.raises_msg("lasync.http.Response:set_cookie: ",
      function() r:set_cookie("a;b", "1") end)
    assert.matches("http_app_spec.lua:%d+: lasync", err) -- blames the caller
  end)
end)

describe("http.text, http.html, http.json", function()
  it("make responses with their content types", function()
    local t = http.text("hello", 404)
    assert.are.equal(404, t.status)
    assert.are.equal("hello", t.body)
    assert.are.equal("text/plain; charset=utf-8", t.headers["Content-Type"])
    local h = http.html("<p>")
    assert.are.equal("text/html; charset=utf-8", h.headers["Content-Type"])
    local j = http.json({ a = { 1, 2 }, b = json.null }, 201)
    assert.are.equal(201, j.status)
    assert.are.equal("application/json; charset=utf-8",
      j.headers["Content-Type"])
    assert.are.same({ a = { 1, 2 }, b = json.null }, json.decode(j.body))
    assert.are.equal("{}", http.json({}).body)
  end)

  it("http.json keeps int64 ids and writes marked empty arrays as []",
    function()
      assert.are.equal('{"id":9223372036854775807}',
        http.json({ id = math.maxinteger }).body)
      assert.are.equal('{"items":[]}',
        http.json({ items = json.array {} }).body)
      assert.are.equal("[9007199254740993,0.1,null]",
        http.json({ 9007199254740993, 0.1, json.null }).body)
      local ok, err = pcall(http.json, { 1, nil, 3 })
      assert.is_false(ok)
      assert.matches("lasync.http.json: cannot encode the value: sparse " ..
        "array", err, 1, true)
    end)

  it("refuse what they cannot send", function()
    helper.raises_msg("lasync.http.text: expected a string (got nil)",
      http.text)
    helper.raises_msg("lasync.http.json: cannot encode the value",
      http.json, { f = print })
    helper.raises_msg("lasync.http.json: status must be an integer",
      http.json, {}, "200")
  end)
end)

describe("http exceptions", function()
  local exception_response =
    require("lasync.http.response").exception_response

  it("are lasync error classes in aiohttp's hierarchy", function()
    local e = http.HTTPNotFound()
    assert.is_true(lasync.is_error(e, http.HTTPNotFound))
    assert.is_true(lasync.is_error(e, http.HTTPClientError))
    assert.is_true(lasync.is_error(e, http.HTTPError))
    assert.is_true(lasync.is_error(e, http.HTTPException))
    assert.is_false(lasync.is_error(e, http.HTTPServerError))
    assert.is_true(http.is_exception(e))
    assert.is_false(http.is_exception(http.text("x")))
    assert.are.equal(404, e.status)
    assert.are.equal("HTTPNotFound", tostring(e))
    assert.is_true(lasync.is_error(http.HTTPFound("/"),
      http.HTTPRedirection))
    assert.are.equal(500, http.HTTPInternalServerError.status)
  end)

  it("answer with their status and a text body", function()
    local status, reason, headers, body =
      exception_response(http.HTTPForbidden())
    assert.are.equal(403, status)
    assert.is_nil(reason)
    assert.are.equal("403: Forbidden", body)
    assert.are.equal("text/plain; charset=utf-8", headers["Content-Type"])
    status, _, _, body = exception_response(http.HTTPBadRequest("no name"))
    assert.are.equal("no name", body)
    status, _, headers, body = exception_response(http.HTTPConflict(nil, {
      body = "{}", content_type = "application/json",
      headers = { ["X-Why"] = "dup" } }))
    assert.are.equal(409, status)
    assert.are.equal("{}", body)
    assert.are.equal("application/json", headers["Content-Type"])
    assert.are.equal("dup", headers["X-Why"])
    status, _, headers = exception_response(http.HTTPMethodNotAllowed(nil,
      { allowed = { "GET", "POST" } }))
    assert.are.equal(405, status)
    assert.are.equal("GET, POST", headers.Allow)
    status, _, _, body = exception_response(http.HTTPNoContent())
    assert.are.equal(204, status)
    assert.is_nil(body)
  end)

  it("redirect with http.redirect or a redirection class", function()
    local status, _, headers, body = exception_response(
      http.redirect("/login"))
    assert.are.equal(302, status)
    assert.are.equal("/login", headers.Location)
    assert.are.equal("302: Found", body)
    status, _, headers = exception_response(http.redirect("/new", 301))
    assert.are.equal(301, status)
    assert.are.equal("/new", headers.Location)
    status, _, headers = exception_response(http.HTTPSeeOther("/done"))
    assert.are.equal(303, status)
    assert.are.equal("/done", headers.Location)
    helper.raises_msg("lasync.http.redirect: location contains CR, LF or " ..
      "NUL", http.redirect, "/x\r\nSet-Cookie: a=1")
    helper.raises_msg("lasync.http.redirect: status must be one of 300, " ..
      "301, 302, 303, 307, 308 (got 404)", http.redirect, "/", 404)
    helper.raises_msg("needs a location", exception_response,
      http.HTTPFound())
  end)
end)

describe("http.App", function()
  it("checks its options", function()
    helper.raises_msg("lasync.http.App: unknown option 'client_max'",
      http.App, { client_max = 1 })
    helper.raises_msg("lasync.http.App: option 'client_max_size' must be " ..
      "an integer >= 0 (got -1)", http.App, { client_max_size = -1 })
    helper.raises_msg("lasync.http.App: option 'debug' must be a boolean",
      http.App, { debug = 1 })
    helper.raises_msg("lasync.http.App: option 'keepalive_timeout' must " ..
      "be a positive number of seconds (got 0)", http.App,
      { keepalive_timeout = 0 })
    helper.raises_msg("lasync.http.App: middleware #2 must be a function",
      http.App, { middlewares = { function() end, 1 } })
    helper.raises_msg("lasync.http.App: option 'access_log' (true, false " ..
      "or a function) must be a function", http.App, { access_log = "x" })
    local app = http.App()
    assert.are.equal(1048576, app.client_max_size)
    assert.is_false(app.debug)
    assert.is_false(app.handler_cancellation)
    assert.are.equal("lasync.http.App", tostring(app))
  end)

  it("checks routes as they are added", function()
    local app = http.App()
    helper.raises_msg("lasync.http.App:get: the pattern must be a string " ..
      "(got nil)", app.get, app, nil, function() end)
    helper.raises_msg("lasync.http.App:post: expected a function as the " ..
      "handler (got string)", app.post, app, "/", "handler")
    helper.raises_msg("lasync.http.App:route: the method must be a token",
      app.route, app, "GE T", "/", function() end)
    helper.raises_msg("lasync.http.App:get: expected a http.App (got nil)",
      app.get, nil, "/", function() end)
    app:get("/", function() return "root" end)
    app:route("purge", "/cache", function() return "purged" end)
  end)

  it("wraps handlers in the middlewares, the first outermost", function()
    local log = {}
    local function mw(name)
      return function(req, handler)
        log[#log + 1] = name .. ">"
        local res = handler(req)
        log[#log + 1] = "<" .. name
        return res .. name
      end
    end
    local app = http.App { middlewares = { mw("a"), mw("b") } }
    app:use(mw("c"))
    local function h() log[#log + 1] = "h"; return "x" end
    local chain = app:_chain(h)
    assert.are.equal(chain, app:_chain(h)) -- built once
    assert.are.equal("xcba", chain({}))
    assert.are.same({ "a>", "b>", "c>", "h", "<c", "<b", "<a" }, log)
  end)
end)

describe("Request headers", function()
  local request = require "lasync.http.request"

  it("are read in any case, with get and getall", function()
    local h = request.setup_headers({ ["content-type"] = "text/plain",
      accept = "a" }, { accept = { "a", "b" } })
    assert.are.equal("text/plain", h["Content-Type"])
    assert.are.equal("text/plain", h["content-type"])
    assert.are.equal("text/plain", h:get("CONTENT-TYPE"))
    assert.are.same({ "a", "b" }, h:getall("Accept"))
    assert.are.same({ "text/plain" }, h:getall("content-type"))
    assert.are.same({}, h:getall("x-none"))
    assert.is_nil(h["X-None"])
    local n = 0
    for _ in pairs(h) do n = n + 1 end
    assert.are.equal(2, n)
  end)

  it("keep their methods when a header is named like one", function()
    local h = request.setup_headers({ get = "1", getall = "2", host = "x" })
    assert.are.equal("1", h:get("get"))
    assert.are.equal("2", h:get("GetAll"))
    assert.are.same({ "2" }, h:getall("getall"))
    assert.are.equal("x", h:get("Host"))
  end)
end)
