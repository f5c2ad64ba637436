-- lasync.http.cookies, lasync.http.date and lasync.http.mime: Cookie
-- headers read, Set-Cookie values written and refused, HTTP dates both
-- ways, content types by extension.
local helper = require "helper"
local cookies = require "lasync.http.cookies"
local date = require "lasync.http.date"
local mime = require "lasync.http.mime"

local raises_msg = helper.raises_msg

describe("lasync.http.cookies.parse", function()
  it("reads pairs, trims space, unquotes, keeps the first", function()
    assert.are.same({ a = "1", b = "two words", c = "", d = "x=y",
      e = "q" }, cookies.parse(' a=1; b = two words ;c=;d=x=y; e="q";' ..
      ' a=2; novalue; =z'))
    assert.are.same({}, cookies.parse(nil))
    assert.are.same({}, cookies.parse(""))
    raises_msg("lasync.http.cookies.parse: header must be a string or " ..
      "nil (got number)", cookies.parse, 1)
  end)
end)

describe("lasync.http.cookies.format", function()
  it("writes the value and its attributes", function()
    assert.are.equal("sid=abc", cookies.format("sid", "abc"))
    assert.are.equal("n=5", cookies.format("n", 5))
    assert.are.equal("sid=abc; Expires=Sun, 06 Nov 1994 08:49:37 GMT; " ..
      "Max-Age=3600; Domain=example.com; Path=/; Secure; HttpOnly; " ..
      "SameSite=Lax", cookies.format("sid", "abc", { max_age = 3600,
        expires = 784111777, path = "/", domain = "example.com",
        secure = true, httponly = true, samesite = "lax" }))
    assert.are.equal("gone=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; " ..
      "Max-Age=0", cookies.format("gone", "", { expires = 0,
        max_age = 0 }))
  end)

  it("refuses CR, LF and ; in names, values and attributes", function()
    raises_msg("lasync.http.cookies.format: cookie value of \"a\" " ..
      "contains a control character or ;", cookies.format, "a",
      "x\r\nSet-Cookie: evil=1")
    raises_msg("lasync.http.cookies.format: cookie value of \"a\" " ..
      "contains a control character or ;", cookies.format, "a", "x; Path=/")
    raises_msg("is not a token", cookies.format, "a\n", "x")
    raises_msg("is not a token", cookies.format, "a;b", "x")
    raises_msg("is not a token", cookies.format, "", "x")
    raises_msg("lasync.http.cookies.format: path contains a control " ..
      "character or ;", cookies.format, "a", "b", { path = "/\r\nX: y" })
    raises_msg("samesite must be", cookies.format, "a", "b",
      { samesite = "sometimes" })
    raises_msg("unknown cookie attribute maxage", cookies.format, "a", "b",
      { maxage = 1 })
    raises_msg("expires must be an epoch in range (got inf)",
      cookies.format, "a", "b", { expires = math.huge })
    raises_msg("expires must be an epoch in range (got 1e+15)",
      cookies.format, "a", "b", { expires = 1e15 })
    raises_msg("max_age must be an integer (got float)", cookies.format,
      "a", "b", { max_age = 1.5 })
  end)

  it("names the caller's function when given one", function()
    local function set_cookie(name, value)
      local v = cookies.format(name, value, nil,
        "lasync.http.Response:set_cookie")
      return v
    end
    local err = raises_msg("lasync.http.Response:set_cookie: cookie " ..
      "value of \"a\" contains a control character or ;", function()
        set_cookie("a", "\n")
      end)
    assert.matches("http_cookies_spec.lua:%d+: ", err)
    -- a wrapper one call deeper passes its depth
    local function add_cookie(name, value)
      local v = cookies.format(name, value, nil,
        "lasync.http.Response:set_cookie", 4)
      return v
    end
    local function set_cookie2(name, value)
      local v = add_cookie(name, value)
      return v
    end
    local line
    err = raises_msg("lasync.http.Response:set_cookie: cookie name", function()
      line = debug.getinfo(1, "l").currentline + 1
      set_cookie2("a b", "x")
    end)
    assert.matches("http_cookies_spec.lua:" .. line .. ": ", err)
  end)
end)

describe("lasync.http.date", function()
  it("formats IMF-fixdates", function()
    assert.are.equal("Sun, 06 Nov 1994 08:49:37 GMT", date.format(784111777))
    assert.are.equal("Thu, 01 Jan 1970 00:00:00 GMT", date.format(0))
    assert.are.equal("Tue, 29 Feb 2000 23:59:59 GMT",
      date.format(951868799.9))
    assert.are.equal("Sun, 06 Nov 1994 08:49:37 GMT",
      date._lua_format(784111777))
  end)

  it("parses the three forms and refuses others", function()
    for _, parse in ipairs { date.parse, date._lua_parse } do
      assert.are.equal(784111777, parse("Sun, 06 Nov 1994 08:49:37 GMT"))
      assert.are.equal(784111777, parse("Sunday, 06-Nov-94 08:49:37 GMT"))
      assert.are.equal(784111777, parse("Sun Nov  6 08:49:37 1994"))
      assert.are.equal(951868799, parse("Tue, 29 Feb 2000 23:59:59 GMT"))
      assert.is_nil(parse("Sun, 06 Nov 1994 08:49:37 PST"))
      assert.is_nil(parse("Sun, 06 Foo 1994 08:49:37 GMT"))
      assert.is_nil(parse("Sun, 06 Nov 1994 25:49:37 GMT"))
      assert.is_nil(parse("yesterday"))
    end
    for _, t in ipairs { 0, 86399, 951782400, 1700000000, 4102444800 } do
      assert.are.equal(t, date._lua_parse(date._lua_format(t)))
    end
  end)
end)

describe("lasync.http.mime", function()
  it("knows the common web types", function()
    assert.are.equal("text/html; charset=utf-8", mime.guess("/a/index.html"))
    assert.are.equal("text/css; charset=utf-8", mime.guess("s.CSS"))
    assert.are.equal("text/javascript; charset=utf-8", mime.guess("m.mjs"))
    assert.are.equal("application/json", mime.guess("x.json"))
    assert.are.equal("image/svg+xml", mime.guess("i.svg"))
    assert.are.equal("application/wasm", mime.guess("a.wasm"))
    assert.are.equal("font/woff2", mime.guess("f.woff2"))
    assert.are.equal("video/mp4", mime.guess("v.mp4"))
    assert.are.equal("image/vnd.microsoft.icon", mime.guess("favicon.ico"))
    assert.is_nil(mime.guess("README"))
    assert.is_nil(mime.guess("dir.d/README"))
    assert.is_nil(mime.guess("x.unknown"))
    assert.are.equal("application/octet-stream", mime.DEFAULT)
  end)

  it("takes additions", function()
    mime.add(".Proto", "text/x-protobuf")
    assert.are.equal("text/x-protobuf", mime.guess("a.proto"))
    raises_msg("lasync.http.mime.add: ext must be an extension",
      mime.add, "a/b", "x/y")
    raises_msg("lasync.http.mime.add: content_type must be", mime.add,
      "x", "a\r\nb")
    raises_msg("lasync.http.mime.guess: path must be a string (got nil)",
      mime.guess)
  end)
end)
