-- lasync.http.cookiejar and the Set-Cookie side of lasync.http.cookies:
-- RFC 6265 section 5 (parsing, domains, paths, expiry, Secure, the Cookie
-- header's order), IP hosts, caps, and hostile input. `now` is passed in,
-- so nothing sleeps.
local helper = require "helper"
local cookies = require "lasync.http.cookies"
local CookieJar = require "lasync.http.cookiejar"

local raises_msg = helper.raises_msg

-- s quoted for a test's name, on one line
local function show(s)
  if #s > 60 then s = s:sub(1, 60) .. "..." end
  return (("%q"):format(s):gsub("\\\n", "\\n"))
end

local NOW = 1700000000 -- Tue, 14 Nov 2023 22:13:20 GMT
local DAY = 86400

-- "http://[::1]:80/p" -> { scheme = "http", host = "[::1]", port = 80,
-- path = "/p" }
local function url(s)
  local scheme, hostport, path = s:match("^(%a+)://([^/]+)(.*)$")
  local host, port = hostport:match("^(%[.-%]):?(%d*)$")
  if not host then host, port = hostport:match("^([^:]+):?(%d*)$") end
  return { scheme = scheme, host = host, port = tonumber(port),
    path = path ~= "" and path or "/" }
end

-- whether the Cookie header h has the pair name=value
local function has(h, pair)
  return (("; " .. h .. ";"):find("; " .. pair .. ";", 1, true)) ~= nil
end

-- the jar after the Set-Cookie values of a response from `from`
local function jar_from(from, values, now, opts)
  local jar = CookieJar.new(opts)
  jar:update_cookies_from_headers(values, url(from), now or NOW)
  return jar
end

local function header(jar, to, now)
  return jar:cookie_header(url(to), now or NOW)
end

local function all(jar, now)
  local out = {}
  for c in jar:iter(now or NOW) do out[#out + 1] = c end
  return out
end

describe("lasync.http.cookies.parse_date", function()
  local cases = {
    -- the three HTTP forms
    { "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 },
    { "Sunday, 06-Nov-94 08:49:37 GMT", 784111777 },
    { "Sun Nov  6 08:49:37 1994", 784111777 },
    -- RFC 6265 section 3.1's
    { "Wed, 09 Jun 2021 10:18:14 GMT", 1623233894 },
    -- what servers send and browsers read
    { "Wed, 09-Jun-2021 10:18:14 GMT", 1623233894 },
    { "Wed, 09-Jun-21 10:18:14 GMT", 1623233894 },
    { "09 Jun 2021 10:18:14", 1623233894 },
    { "jun 9 2021 10:18:14", 1623233894 },
    { "Wed Jun 09 2021 10:18:14 GMT+0000 (UTC)", 1623233894 },
    { "Wed, 9 June 2021 10:18:14 UTC", 1623233894 },
    { "10:18:14 2021 Jun 09", 1623233894 },
    { "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
    { "Thu, 01 Jan 70 00:00:00 GMT", 0 },           -- 70..99: 19xx
    { "Tue, 01 Jan 69 00:00:00 GMT", 3124224000 },  -- 00..69: 20xx
    { "Sat, 01 Jan 1601 00:00:00 GMT", -11644473600 },
    { "Fri, 31 Dec 9999 23:59:59 GMT", 253402300799 },
    { "Sat, 29 Feb 2020 00:00:00 GMT", 1582934400 },
    { "1 Jan 2020 1:2:3", 1577840523 },
    -- not dates
    { "", nil }, { "garbage", nil }, { "Wed, 09 Jun 2021", nil },
    { "09 Jun 2021 10:18", nil },
    { "Mon, 31 Dec 1600 23:59:59 GMT", nil },       -- before 1601
    { "Sun, 29 Feb 2021 00:00:00 GMT", nil },       -- no such day
    { "Mon, 31 Apr 2021 00:00:00 GMT", nil },
    { "Wed, 00 Jun 2021 10:18:14 GMT", nil },
    { "Wed, 32 Jun 2021 10:18:14 GMT", nil },
    { "Wed, 09 Jun 2021 24:00:00 GMT", nil },
    { "Wed, 09 Jun 2021 10:60:00 GMT", nil },
    { "Wed, 09 Jun 2021 10:18:60 GMT", nil },
    { "Wed, 09 Foo 2021 10:18:14 GMT", nil },
    { "Wed, 09 Jun 20210 10:18:14 GMT", nil },      -- a 5-digit year
    { "Wed, 009 Jun 2021 10:18:14 GMT", nil },
  }
  for _, case in ipairs(cases) do
    it("reads " .. show(case[1]), function()
      assert.are.equal(case[2], cookies.parse_date(case[1]))
    end)
  end

  it("refuses what is not a string", function()
    raises_msg("lasync.http.cookies.parse_date: s must be a string " ..
      "(got nil)", cookies.parse_date)
  end)
end)

describe("lasync.http.cookies.parse_set_cookie", function()
  local function c(t)
    t.secure = t.secure or false
    t.httponly = t.httponly or false
    return t
  end
  local cases = {
    { "SID=31d4d96e407aad42", c { name = "SID", value = "31d4d96e407aad42" } },
    { " a = b c ", c { name = "a", value = "b c" } },
    { "a=", c { name = "a", value = "" } },
    { "a=b=c", c { name = "a", value = "b=c" } },
    { 'a="quoted"', c { name = "a", value = '"quoted"' } },
    { "a=\tb\t", c { name = "a", value = "b" } },
    { "a=caf\195\169", c { name = "a", value = "caf\195\169" } },
    { "SID=31d4d96e407aad42; Path=/; Secure; HttpOnly",
      c { name = "SID", value = "31d4d96e407aad42", path = "/",
        secure = true, httponly = true } },
    { "lang=en-US; Path=/; Domain=example.com",
      c { name = "lang", value = "en-US", path = "/",
        domain = "example.com" } },
    { "lang=en-US; Expires=Wed, 09 Jun 2021 10:18:14 GMT",
      c { name = "lang", value = "en-US", expires = 1623233894 } },
    -- attribute names in any case, values trimmed
    { "a=b; pAtH = /x ; dOmAiN= .EXAMPLE.com ; SECURE; httpONLY; " ..
      "samesite = STRICT; MAX-AGE = 60",
      c { name = "a", value = "b", path = "/x", domain = "example.com",
        secure = true, httponly = true, samesite = "Strict", max_age = 60 } },
    { "a=b; SameSite=lax", c { name = "a", value = "b", samesite = "Lax" } },
    { "a=b; SameSite=None", c { name = "a", value = "b", samesite = "None" } },
    -- bad attribute values are ignored, unknown attributes too
    { "a=b; SameSite=sometimes", c { name = "a", value = "b" } },
    { "a=b; Max-Age=1.5; Max-Age=+3; Max-Age=3x; Max-Age=",
      c { name = "a", value = "b" } },
    { "a=b; Expires=never", c { name = "a", value = "b" } },
    { "a=b; Domain=", c { name = "a", value = "b" } },
    { "a=b; Domain=.", c { name = "a", value = "b" } },
    { "a=b; Comment=x; Version=1; Priority=High; Partitioned",
      c { name = "a", value = "b" } },
    { "a=b; Secure=no", c { name = "a", value = "b", secure = true } },
    { "a=b;;; ;", c { name = "a", value = "b" } },
    -- the last of a name wins; a relative or empty Path is the default
    { "a=b; Path=/x; Path=/y", c { name = "a", value = "b", path = "/y" } },
    { "a=b; Path=/x; Path=y", c { name = "a", value = "b" } },
    { "a=b; Path=/x; Path=", c { name = "a", value = "b" } },
    { "a=b; Domain=x.com; Domain=y.com",
      c { name = "a", value = "b", domain = "y.com" } },
    { "a=b; Domain=x.com; Domain=", c { name = "a", value = "b",
      domain = "x.com" } },
    { "a=b; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Expires=bad",
      c { name = "a", value = "b", expires = 1623233894 } },
    -- Max-Age kept as sent, huge ones clamped
    { "a=b; Max-Age=0", c { name = "a", value = "b", max_age = 0 } },
    { "a=b; Max-Age=-0", c { name = "a", value = "b", max_age = 0 } },
    { "a=b; Max-Age=-12", c { name = "a", value = "b", max_age = -12 } },
    { "a=b; Max-Age=007", c { name = "a", value = "b", max_age = 7 } },
    { "a=b; Max-Age=" .. ("9"):rep(40),
      c { name = "a", value = "b", max_age = 1000000000000 } },
    { "a=b; Max-Age=-" .. ("9"):rep(40),
      c { name = "a", value = "b", max_age = -1000000000000 } },
    -- an attribute value past 1024 bytes is ignored
    { "a=b; Path=/" .. ("x"):rep(1023), c { name = "a", value = "b",
      path = "/" .. ("x"):rep(1023) } },
    { "a=b; Path=/" .. ("x"):rep(1024), c { name = "a", value = "b" } },
    -- the name and value up to 4096 bytes together
    { ("n"):rep(96) .. "=" .. ("v"):rep(4000),
      c { name = ("n"):rep(96), value = ("v"):rep(4000) } },
    { ("n"):rep(97) .. "=" .. ("v"):rep(4000), nil },
    -- ignored: no "=", an empty name, control bytes anywhere
    { "", nil }, { "novalue", nil }, { "=value", nil }, { " =value", nil },
    { "; a=b", nil },
    { "a=b\r\nSet-Cookie: evil=1", nil }, { "a=b\0c", nil },
    { "a=b\nc", nil }, { "a=b; Path=/\r", nil }, { "a\1=b", nil },
    { "a=b\127", nil },
  }
  for _, case in ipairs(cases) do
    it("reads " .. show(case[1]), function()
      assert.are.same(case[2], (cookies.parse_set_cookie(case[1])))
    end)
  end

  it("says why it ignores a value", function()
    local t, why = cookies.parse_set_cookie("=x")
    assert.is_nil(t)
    assert.are.equal("empty name", why)
    assert.are.equal("control character",
      select(2, cookies.parse_set_cookie("a=\n")))
    raises_msg("lasync.http.cookies.parse_set_cookie: value must be a " ..
      "string (got table)", cookies.parse_set_cookie, {})
  end)
end)

describe("Set-Cookie values the server writes", function()
  it("read back as they were written", function()
    local cases = {
      { "sid", "abc", nil },
      { "sid", "abc", { max_age = 3600, expires = 784111777, path = "/x",
        domain = "example.com", secure = true, httponly = true,
        samesite = "strict" } },
      { "gone", "", { max_age = 0, expires = 0 } },
      { "n", "a b,c\"d", { samesite = "None" } },
    }
    for _, case in ipairs(cases) do
      local name, value, attrs = case[1], case[2], case[3] or {}
      local got = cookies.parse_set_cookie(cookies.format(name, value,
        case[3]))
      assert.are.same({ name = name, value = value,
        max_age = attrs.max_age, expires = attrs.expires, path = attrs.path,
        domain = attrs.domain, secure = attrs.secure or false,
        httponly = attrs.httponly or false,
        samesite = attrs.samesite and
          attrs.samesite:sub(1, 1):upper() .. attrs.samesite:sub(2) },
        got)
    end
  end)
end)

describe("lasync.http.CookieJar domains", function()
  -- { response URL, Set-Cookie, request URL, sent? }
  local cases = {
    -- host-only: that host only
    { "http://example.com/", "a=1", "http://example.com/", true },
    { "http://example.com/", "a=1", "http://www.example.com/", false },
    { "http://www.example.com/", "a=1", "http://example.com/", false },
    { "http://example.com/", "a=1", "http://EXAMPLE.com/", true },
    { "http://example.com:8080/", "a=1", "http://example.com:9090/", true },
    { "http://example.com/", "a=1", "https://example.com/", true },
    -- Domain=: the domain and every host in it
    { "http://example.com/", "a=1; Domain=example.com",
      "http://www.example.com/", true },
    { "http://example.com/", "a=1; Domain=example.com",
      "http://example.com/", true },
    { "http://www.example.com/", "a=1; Domain=.example.com",
      "http://a.b.example.com/", true },
    { "http://www.example.com/", "a=1; Domain=EXAMPLE.COM",
      "http://other.example.com/", true },
    { "http://www.example.com/", "a=1; Domain=example.com",
      "http://badexample.com/", false },
    { "http://www.example.com/", "a=1; Domain=example.com",
      "http://example.com.evil.org/", false },
    -- refused: a domain the host is not in, a bare top-level domain
    { "http://www.example.com/", "a=1; Domain=other.com",
      "http://other.com/", false },
    { "http://www.example.com/", "a=1; Domain=ple.com",
      "http://ple.com/", false },
    { "http://www.example.com/", "a=1; Domain=www.example.com.evil",
      "http://www.example.com.evil/", false },
    { "http://example.com/", "a=1; Domain=sub.example.com",
      "http://sub.example.com/", false },
    { "http://www.example.com/", "a=1; Domain=com", "http://x.com/", false },
    { "http://www.example.com/", "a=1; Domain=.com", "http://x.com/",
      false },
    -- a dotless host naming itself keeps a host-only cookie
    { "http://localhost/", "a=1; Domain=localhost", "http://localhost/",
      true },
    { "http://localhost/", "a=1; Domain=localhost",
      "http://sub.localhost/", false },
    -- IP hosts: host-only; Domain= only naming the address itself
    { "http://127.0.0.1:8080/", "a=1", "http://127.0.0.1:9/", true },
    { "http://127.0.0.1/", "a=1", "http://127.0.0.2/", false },
    { "http://127.0.0.1/", "a=1; Domain=127.0.0.1", "http://127.0.0.1/",
      true },
    { "http://127.0.0.1/", "a=1; Domain=0.0.1", "http://127.0.0.1/",
      false },
    { "http://10.0.0.1/", "a=1; Domain=0.1", "http://0.1/", false },
    { "http://[::1]:80/", "a=1", "http://[::1]/", true },
    { "http://[::1]/", "a=1; Domain=[::1]", "http://[::1]/", true },
    { "http://[::1]/", "a=1; Domain=::1", "http://[::1]/", true },
    { "http://[::1]/", "a=1; Domain=:1", "http://[::1]/", false },
    { "http://[::1]/", "a=1", "http://127.0.0.1/", false },
    { "http://1.2.3.4/", "a=1; Domain=1.2.3.4", "http://5.1.2.3.4/",
      false },
  }
  for _, case in ipairs(cases) do
    it(("%s %s -> %s: %s"):format(case[1], show(case[2]), case[3],
      case[4] and "sent" or "not sent"), function()
      local jar = jar_from(case[1], { case[2] })
      assert.are.equal(case[4] and "a=1" or nil, header(jar, case[3]))
    end)
  end

  it("records host_only and the domain", function()
    local jar = jar_from("http://www.Example.com/", { "h=1",
      "d=2; Domain=.example.COM", "s=3; Domain=www.example.com" })
    local got = {}
    for _, c in ipairs(all(jar)) do
      got[c.name] = { c.domain, c.host_only }
    end
    assert.are.same({ h = { "www.example.com", true },
      d = { "example.com", false }, s = { "www.example.com", false } }, got)
    assert.are.equal("h=1; d=2; s=3", header(jar, "http://www.example.com/"))
    assert.are.equal("d=2; s=3", header(jar, "http://x.www.example.com/"))
  end)

  it("accepts unsafe and keeps IP cookies with or without it", function()
    for _, unsafe in ipairs { false, true } do
      local jar = jar_from("http://127.0.0.1/", { "a=1" }, NOW,
        { unsafe = unsafe })
      assert.are.equal("a=1", header(jar, "http://127.0.0.1/"))
    end
  end)
end)

describe("lasync.http.CookieJar paths", function()
  -- RFC 6265 5.1.4: { request path, default path }
  local defaults = {
    { "", "/" }, { "/", "/" }, { "/a", "/" }, { "/a/", "/a" },
    { "/a/b", "/a" }, { "/a/b/", "/a/b" }, { "/a/b/c.html", "/a/b" },
    { "/a/b?x=/y/z", "/a" }, { "/a/b#/c/d", "/a" }, { "//", "/" },
    { "relative/x", "/" },
  }
  for _, case in ipairs(defaults) do
    it(("%q has the default path %q"):format(case[1], case[2]), function()
      local jar = CookieJar.new()
      jar:update_cookies_from_headers({ "a=1" }, { scheme = "http",
        host = "h.example", path = case[1] }, NOW)
      assert.are.equal(case[2], all(jar)[1].path)
    end)
  end

  -- { cookie path, request path, sent? }
  local matches = {
    { "/", "/", true }, { "/", "/anything/at/all", true },
    { "/docs", "/docs", true }, { "/docs", "/docs/", true },
    { "/docs", "/docs/web", true }, { "/docs", "/docsets", false },
    { "/docs", "/Docs", false }, { "/docs", "/", false },
    { "/docs/", "/docs/x", true }, { "/docs/", "/docs", false },
    { "/a/b", "/a", false }, { "/a/b", "/a/b/c/d", true },
    { "/docs", "/docs?x=1", true }, { "/docs", "/docs#top", true },
    { "/docs", "/doc", false },
  }
  for _, case in ipairs(matches) do
    it(("Path=%s %s %s"):format(case[1], case[3] and "matches" or
      "does not match", case[2]), function()
      local jar = jar_from("http://h.example/", { "a=1; Path=" .. case[1] })
      assert.are.equal(case[3] and "a=1" or nil,
        header(jar, "http://h.example" .. case[2]))
    end)
  end
end)

describe("lasync.http.CookieJar storing", function()
  it("replaces a cookie of the same name, domain and path", function()
    local jar = jar_from("http://h.example/", { "a=1", "b=2", "a=3" })
    assert.are.equal(2, jar:len(NOW))
    -- the replacement keeps the first one's creation: a stays first
    assert.are.equal("a=3; b=2", header(jar, "http://h.example/"))
    -- another path is another cookie (Domain=example is refused)
    jar:update_cookies_from_headers({ "a=4; Path=/p",
      "a=5; Domain=example" }, url("http://h.example/"), NOW)
    assert.are.equal(3, jar:len(NOW))
    assert.are.equal("a=4; a=3; b=2", header(jar, "http://h.example/p"))
    -- another domain too
    jar:update_cookies_from_headers({ "a=6" }, url("http://x.h.example/"),
      NOW)
    assert.are.equal(4, jar:len(NOW))
    assert.are.equal("a=6", header(jar, "http://x.h.example/"))
    jar:clear(function(c) return c.value == "6" end)
    -- the host-only cookie of a host and its Domain= cookie are one
    -- (RFC 6265 5.3 step 11 keys on name, domain and path only)
    jar:update_cookies_from_headers({ "a=7; Domain=h.example" },
      url("http://h.example/"), NOW)
    assert.are.equal(3, jar:len(NOW))
    assert.are.equal("a=4; a=7; b=2", header(jar, "http://h.example/p"))
    assert.are.equal("a=7", header(jar, "http://x.h.example/p"))
  end)

  it("orders the Cookie header by path length, then creation", function()
    local jar = jar_from("http://h.example/a/b/c", { "first=1; Path=/",
      "deep=2; Path=/a/b", "mid=3; Path=/a", "second=4; Path=/",
      "deeper=5; Path=/a/b/c" }, NOW)
    assert.are.equal("deeper=5; deep=2; mid=3; first=1; second=4",
      header(jar, "http://h.example/a/b/c"))
    -- a later replacement of "first" keeps its place
    jar:update_cookies_from_headers({ "third=6", "first=7; Path=/" },
      url("http://h.example/"), NOW + 1)
    assert.are.equal("mid=3; first=7; second=4; third=6",
      header(jar, "http://h.example/a/x", NOW + 1))
  end)

  it("sends Secure cookies over https and wss only", function()
    local jar = jar_from("http://h.example/", { "s=1; Secure", "p=2" })
    assert.are.equal("p=2", header(jar, "http://h.example/"))
    assert.are.equal("p=2", header(jar, "ws://h.example/"))
    assert.are.equal("s=1; p=2", header(jar, "https://h.example/"))
    assert.are.equal("s=1; p=2", header(jar, "wss://h.example/"))
    assert.are.equal("s=1; p=2", header(jar, "HTTPS://h.example/"))
    assert.is_true(all(jar)[1].secure)
  end)

  it("keeps HttpOnly and SameSite as flags", function()
    local jar = jar_from("http://h.example/", { "a=1; HttpOnly; SameSite=Lax" })
    local c = all(jar)[1]
    assert.are.same({ name = "a", value = "1", domain = "h.example",
      path = "/", secure = false, httponly = true, samesite = "Lax",
      host_only = true }, c)
    assert.are.equal("a=1", header(jar, "http://h.example/"))
  end)

  it("drops an empty name and what has no '='", function()
    local jar = jar_from("http://h.example/", { "=a", "b", " = c", "d=" })
    assert.are.equal("d=", header(jar, "http://h.example/"))
    assert.are.equal(1, jar:len(NOW))
  end)
end)

describe("lasync.http.CookieJar expiry", function()
  local cases = {
    -- { Set-Cookie, expires (relative to NOW) or false: not stored, or
    --   "session" }
    { "a=1", "session" },
    { "a=1; Max-Age=60", 60 },
    { "a=1; Max-Age=0", false },
    { "a=1; Max-Age=-1", false },
    { "a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", false },
    { "a=1; Expires=Tue, 14 Nov 2023 22:13:20 GMT", false }, -- NOW itself
    { "a=1; Expires=Tue, 14 Nov 2023 22:13:21 GMT", 1 },
    -- Max-Age wins over Expires, whichever comes first
    { "a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60", 60 },
    { "a=1; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT", 60 },
    { "a=1; Expires=Tue, 14 Nov 2023 22:14:20 GMT; Max-Age=0", false },
    -- a bad Max-Age or Expires is ignored
    { "a=1; Max-Age=soon; Expires=Tue, 14 Nov 2023 22:14:20 GMT", 60 },
    { "a=1; Expires=someday", "session" },
    -- 400 days at most
    { "a=1; Max-Age=" .. 500 * DAY, 400 * DAY },
    { "a=1; Max-Age=" .. ("9"):rep(30), 400 * DAY },
    { "a=1; Expires=Fri, 31 Dec 9999 23:59:59 GMT", 400 * DAY },
  }
  for _, case in ipairs(cases) do
    it(show(case[1]), function()
      local jar = jar_from("http://h.example/", { case[1] })
      local got = all(jar)
      if case[2] == false then
        assert.are.same({}, got)
      elseif case[2] == "session" then
        assert.is_nil(got[1].expires)
      else
        assert.are.equal(NOW + case[2], got[1].expires)
      end
    end)
  end

  it("deletes a cookie by Max-Age=0 or a past Expires", function()
    local from = url("http://h.example/")
    local jar = jar_from("http://h.example/", { "a=1", "b=2", "c=3",
      "d=4; Domain=h.example" })
    jar:update_cookies_from_headers({ "a=; Max-Age=0",
      "b=; Expires=Sun, 06 Nov 1994 08:49:37 GMT",
      "d=; Max-Age=0" }, from, NOW)
    assert.are.equal("c=3", header(jar, "http://h.example/"))
    -- RFC 6265 section 3.1: lang deleted by a past Expires
    jar:update_cookies_from_headers({ "lang=en-US; Path=/" }, from, NOW)
    jar:update_cookies_from_headers(
      { "lang=; Expires=Sun, 06 Nov 1994 08:49:37 GMT" }, from, NOW)
    assert.are.equal("c=3", header(jar, "http://h.example/"))
    -- a deletion must name the same path
    jar:update_cookies_from_headers({ "c=; Max-Age=0; Path=/x" }, from, NOW)
    assert.are.equal("c=3", header(jar, "http://h.example/"))
  end)

  it("lets cookies expire as now passes", function()
    local jar = jar_from("http://h.example/", { "short=1; Max-Age=10",
      "long=2; Max-Age=100", "session=3" })
    assert.are.equal("short=1; long=2; session=3",
      header(jar, "http://h.example/", NOW + 9))
    assert.are.equal("long=2; session=3",
      header(jar, "http://h.example/", NOW + 10))
    assert.are.equal(2, jar:len(NOW + 10))
    assert.are.equal(1, jar:len(NOW + 100))
    assert.are.equal(1, #all(jar, NOW + 1000))
  end)
end)

describe("lasync.http.CookieJar RFC 6265 section 3.1", function()
  it("runs the examples", function()
    local jar = CookieJar.new()
    local www = url("http://www.example.com/")
    jar:update_cookies_from_headers({ "SID=31d4d96e407aad42" }, www, NOW)
    assert.are.equal("SID=31d4d96e407aad42",
      header(jar, "http://www.example.com/"))

    jar = CookieJar.new()
    jar:update_cookies_from_headers({
      "SID=31d4d96e407aad42; Path=/; Domain=example.com" }, www, NOW)
    jar:update_cookies_from_headers({
      "lang=en-US; Path=/; Domain=example.com" }, www, NOW)
    assert.are.equal("SID=31d4d96e407aad42; lang=en-US",
      header(jar, "http://www.example.com/"))
    assert.are.equal("SID=31d4d96e407aad42; lang=en-US",
      header(jar, "http://example.com/x"))

    jar = CookieJar.new()
    jar:update_cookies_from_headers({
      "SID=31d4d96e407aad42; Path=/; Secure; HttpOnly",
      "lang=en-US; Path=/; Domain=example.com" }, www, NOW)
    assert.are.equal("SID=31d4d96e407aad42; lang=en-US",
      header(jar, "https://www.example.com/"))
    assert.are.equal("lang=en-US", header(jar, "http://www.example.com/"))
    assert.are.equal("lang=en-US", header(jar, "https://example.com/"))

    -- lang expires on Wed, 09 Jun 2021 10:18:14 GMT
    local t = 1623233894
    jar:update_cookies_from_headers({
      "lang=en-US; Expires=Wed, 09 Jun 2021 10:18:14 GMT" }, www, t - 100)
    assert.are.equal("SID=31d4d96e407aad42; lang=en-US; lang=en-US",
      header(jar, "https://www.example.com/", t - 1))
    assert.are.equal("SID=31d4d96e407aad42; lang=en-US",
      header(jar, "https://www.example.com/", t))
  end)
end)

describe("lasync.http.CookieJar:update_cookies", function()
  it("adds host-only cookies for the URL's host, path /", function()
    local jar = CookieJar.new()
    jar:update_cookies({ a = "1", n = 2 }, url("http://h.example/x/y"))
    assert.are.equal(2, jar:len())
    for c in jar:iter() do
      assert.are.equal("h.example", c.domain)
      assert.are.equal("/", c.path)
      assert.is_true(c.host_only)
      assert.is_nil(c.expires)
    end
    local h = header(jar, "http://h.example/z", os.time())
    assert.is_true(h == "a=1; n=2" or h == "n=2; a=1")
    assert.is_nil(header(jar, "http://x.h.example/", os.time()))
  end)

  it("without a URL, adds cookies sent to every host", function()
    local jar = CookieJar.new()
    jar:update_cookies({ shared = "s" })
    jar:update_cookies_from_headers({ "own=1" }, url("http://127.0.0.1/"),
      os.time())
    assert.are.equal("shared=s; own=1", header(jar, "http://127.0.0.1/",
      os.time()))
    assert.are.equal("shared=s", header(jar, "https://any.example/p",
      os.time()))
    assert.are.equal("", all(jar, os.time())[1].domain)
  end)

  it("replaces a cookie the server set", function()
    local jar = jar_from("http://h.example/", { "a=server" }, os.time())
    jar:update_cookies({ a = "mine" }, url("http://h.example/"))
    assert.are.equal("a=mine", header(jar, "http://h.example/", os.time()))
  end)

  it("refuses names and values that would break the header", function()
    local jar = CookieJar.new()
    local u = url("http://h.example/")
    raises_msg("lasync.http.CookieJar:update_cookies: cookie value of " ..
      "\"a\" contains a control character or ;", jar.update_cookies, jar,
      { a = "x\r\nEvil: 1" }, u)
    raises_msg("contains a control character or ;", jar.update_cookies,
      jar, { a = "x; b=2" }, u)
    raises_msg("contains a control character or ;", jar.update_cookies,
      jar, { a = "x\0" }, u)
    raises_msg("lasync.http.CookieJar:update_cookies: cookie name " ..
      "\"a b\" is not a token", jar.update_cookies, jar, { ["a b"] = "1" },
      u)
    raises_msg("is not a token", jar.update_cookies, jar, { [""] = "1" }, u)
    raises_msg("is not a token", jar.update_cookies, jar, { ["a=b"] = "1" },
      u)
    raises_msg("lasync.http.CookieJar:update_cookies: value must be a " ..
      "string (got table)", jar.update_cookies, jar, { a = {} }, u)
    raises_msg("lasync.http.CookieJar:update_cookies: name must be a " ..
      "string (got number)", jar.update_cookies, jar, { "x" }, u)
    -- checked before anything is stored
    raises_msg("contains a control character", jar.update_cookies, jar,
      { good = "1", bad = "\n" }, u)
    assert.are.equal(0, jar:len())
    local err = raises_msg("update_cookies", function()
      jar:update_cookies({ a = "\n" }, u)
    end)
    assert.matches("http_cookiejar_spec.lua:%d+: ", err)
  end)
end)

describe("lasync.http.CookieJar clear, clear_domain, len, iter", function()
  local function filled()
    return jar_from("http://www.example.com/", { "a=1",
      "b=2; Domain=example.com", "c=3; Path=/c", "s=4; Secure" })
  end

  it("clears all or what a predicate picks", function()
    local jar = filled()
    assert.are.equal(4, jar:len(NOW))
    jar:clear(function(c) return c.secure or c.path == "/c" end)
    assert.are.equal(2, jar:len(NOW))
    assert.are.equal("a=1; b=2", header(jar, "https://www.example.com/c"))
    jar:clear()
    assert.are.equal(0, jar:len(NOW))
    assert.is_nil(header(jar, "https://www.example.com/"))
  end)

  it("lets the predicate use the jar", function()
    local jar = filled()
    jar:clear(function(c)
      jar:update_cookies_from_headers({ "new" .. c.name .. "=1" },
        url("http://www.example.com/"), NOW)
      return true
    end)
    assert.are.equal(4, jar:len(NOW))
  end)

  it("clears a domain and the domains within it", function()
    local jar = filled()
    jar:update_cookies_from_headers({ "o=1" }, url("http://other.org/"), NOW)
    jar:clear_domain("www.example.com")
    assert.are.equal(2, jar:len(NOW)) -- b (example.com) and o
    jar:clear_domain(".EXAMPLE.com")
    assert.are.equal(1, jar:len(NOW))
    assert.are.equal("o=1", header(jar, "http://other.org/"))
  end)

  it("iterates over copies, ordered", function()
    local jar = filled()
    local names = {}
    for c in jar:iter(NOW) do
      names[#names + 1] = c.name
      c.value = "changed"
      c.secure = false
    end
    assert.are.same({ "b", "a", "s", "c" }, names)
    assert.are.equal("a=1; b=2", header(jar, "http://www.example.com/"))
    assert.matches("^lasync.http.CookieJar %(4 cookies%)$", tostring(jar))
  end)

  it("is made by new or by calling the module", function()
    assert.are.equal(getmetatable(CookieJar.new()),
      getmetatable(CookieJar()))
    assert.are.equal(getmetatable(CookieJar{ unsafe = true }),
      CookieJar.CookieJar)
  end)
end)

describe("lasync.http.CookieJar caps", function()
  local function many(prefix, n, attrs)
    local values = {}
    for i = 1, n do
      values[i] = prefix .. i .. "=" .. i .. (attrs or "")
    end
    return values
  end

  it("keeps 50 cookies per domain, evicting the least recently used",
    function()
      local jar = CookieJar.new()
      local u = url("http://h.example/")
      jar:update_cookies_from_headers(many("c", 50), u, NOW)
      assert.are.equal(50, jar:len(NOW))
      -- one more: c1, the least recently used, goes
      jar:update_cookies_from_headers({ "c1=again; Path=/only" }, u, NOW)
      assert.are.equal(50, jar:len(NOW))
      local h = header(jar, "http://h.example/only")
      assert.is_true(has(h, "c1=again") and has(h, "c2=2"))
      assert.is_false(has(h, "c1=1"))
      jar = CookieJar.new()
      jar:update_cookies_from_headers(many("c", 50), u, NOW)
      assert.truthy(header(jar, "http://h.example/")) -- every one is used
      jar:update_cookies_from_headers({ "c2=new" }, u, NOW) -- replaced
      jar:update_cookies_from_headers({ "extra=1" }, u, NOW)
      assert.are.equal(50, jar:len(NOW))
      h = header(jar, "http://h.example/")
      assert.is_false(has(h, "c1=1")) -- the least recently used
      assert.is_true(has(h, "c2=new") and has(h, "c3=3"))
      assert.is_true(has(h, "extra=1"))
    end)

  it("evicts expired cookies before live ones", function()
    local jar = CookieJar.new()
    local u = url("http://h.example/")
    jar:update_cookies_from_headers({ "old=1; Max-Age=5" }, u, NOW)
    jar:update_cookies_from_headers(many("c", 49), u, NOW)
    jar:update_cookies_from_headers({ "new=1" }, u, NOW + 10)
    assert.are.equal(50, jar:len(NOW + 10))
    local h = header(jar, "http://h.example/", NOW + 10)
    assert.is_true(has(h, "c1=1") and has(h, "new=1"))
    assert.is_false(has(h, "old=1"))
  end)

  it("keeps 3000 cookies in all", function()
    local jar = CookieJar.new()
    for d = 1, 70 do
      jar:update_cookies_from_headers(many("c", 50),
        url("http://h" .. d .. ".example/"), NOW)
    end
    assert.are.equal(3000, jar:len(NOW))
    -- the first hosts' cookies went first
    assert.is_nil(header(jar, "http://h1.example/"))
    assert.truthy(header(jar, "http://h70.example/"))
  end)

  it("takes smaller caps", function()
    local jar = CookieJar.new { max_per_domain = 2, max_cookies = 3 }
    jar:update_cookies_from_headers(many("a", 5), url("http://a.example/"),
      NOW)
    assert.are.equal("a4=4; a5=5", header(jar, "http://a.example/"))
    jar:update_cookies_from_headers(many("b", 2), url("http://b.example/"),
      NOW)
    assert.are.equal(3, jar:len(NOW))
    assert.are.equal("b1=1; b2=2", header(jar, "http://b.example/"))
    -- a4 was the least recently used (a5 sent after it)
    assert.are.equal("a5=5", header(jar, "http://a.example/"))
  end)

  it("bounds what a hostile server sends", function()
    local jar = CookieJar.new()
    local u = url("http://a.b.c.d.e.f.example/")
    -- 20000 cookies for every domain it may name
    local values = {}
    for i = 1, 20000 do
      local d = ({ "", "; Domain=example", "; Domain=f.example",
        "; Domain=e.f.example", "; Domain=a.b.c.d.e.f.example" })[i % 5 + 1]
      values[i] = "n" .. i .. "=" .. i .. d .. "; Path=/p" .. i % 7
    end
    local t0 = os.clock()
    jar:update_cookies_from_headers(values, u, NOW)
    assert.is_true(jar:len(NOW) <= 5 * 50)
    -- huge values, names, attributes and counts of attributes
    jar:clear()
    jar:update_cookies_from_headers({
      "big=" .. ("x"):rep(1024 * 1024),
      ("n"):rep(5000) .. "=1",
      "spaces=" .. (" "):rep(1024 * 1024) .. "x",
      "semis=1" .. (";"):rep(1024 * 1024),
      "attrs=1" .. ("; Secure"):rep(100000),
      "eqs=" .. ("="):rep(4000),
      "blanks=1;" .. (" "):rep(1024 * 1024) .. "=" .. (" "):rep(1024 * 1024),
      "date=1; Expires=" .. ("1 "):rep(500),
    }, u, NOW)
    assert.is_true(os.clock() - t0 < 20)
    local names = {}
    for c in jar:iter(NOW) do names[#names + 1] = c.name end
    table.sort(names)
    assert.are.same({ "attrs", "blanks", "date", "eqs", "semis", "spaces" },
      names)
    assert.is_true(has(header(jar, "http://a.b.c.d.e.f.example/x"),
      "eqs=" .. ("="):rep(4000)))
  end)
end)

describe("lasync.http.CookieJar and odd bytes", function()
  it("never puts CR, LF, NUL or a stray ';' in the Cookie header",
    function()
      local jar = CookieJar.new { max_per_domain = 100000,
        max_cookies = 100000 }
      local u = url("https://h.example/")
      local rnd = 0x2545F491
      local function rand(n)
        rnd = (rnd * 1103515245 + 12345) & 0x7fffffff
        return rnd % n
      end
      local alphabet = { "\r", "\n", "\0", ";", "=", " ", "\t", "a", "b",
        "\"", ",", "\127", "\255", "\1", "Path=/", "Domain=h.example",
        "Secure", "Max-Age=9", "Expires=" }
      local values = {}
      for i = 1, 5000 do
        local parts = { "k" .. i .. "=" }
        for j = 2, 1 + rand(12) do
          parts[j] = alphabet[rand(#alphabet) + 1]
        end
        values[i] = table.concat(parts)
      end
      jar:update_cookies_from_headers(values, u, NOW)
      assert.is_true(jar:len(NOW) > 100)
      local h = header(jar, "https://h.example/")
      assert.is_nil(h:find("[%z\1-\8\10-\31\127]"))
      -- every "; " separates name=value pairs, each with a name
      for pair in (h .. "; "):gmatch("(.-); ") do
        assert.matches("^[^;=][^;]-=[^;]*$", pair)
      end
    end)
end)

describe("lasync.http.CookieJar misuse", function()
  local jar = CookieJar.new()
  local u = url("http://h.example/")
  local cases = {
    { "lasync.http.CookieJar: opts must be a table or nil (got string)",
      CookieJar.new, "x" },
    { "lasync.http.CookieJar: unknown option quote_cookie (options are " ..
      "unsafe, max_per_domain, max_cookies)", CookieJar.new,
      { quote_cookie = true } },
    { "lasync.http.CookieJar: unsafe must be a boolean (got number)",
      CookieJar, { unsafe = 1 } },
    { "lasync.http.CookieJar: max_per_domain must be a positive integer " ..
      "(got 0)", CookieJar.new, { max_per_domain = 0 } },
    { "lasync.http.CookieJar: max_cookies must be a positive integer " ..
      "(got 1.5)", CookieJar.new, { max_cookies = 1.5 } },
    { "lasync.http.CookieJar:update_cookies_from_headers: values must be " ..
      "an array of strings (got nil)", jar.update_cookies_from_headers, jar,
      nil, u },
    { "lasync.http.CookieJar:update_cookies_from_headers: values[2] must " ..
      "be a string (got number)", jar.update_cookies_from_headers, jar,
      { "a=1", 2 }, u },
    { "lasync.http.CookieJar:update_cookies_from_headers: url must be a " ..
      "parsed URL table {scheme =, host =, path =} (got string)",
      jar.update_cookies_from_headers, jar, { "a=1" }, "http://h/" },
    { "lasync.http.CookieJar:update_cookies_from_headers: url.host must " ..
      "be a non-empty string (got \"\")", jar.update_cookies_from_headers,
      jar, { "a=1" }, { scheme = "http", host = "" } },
    { "lasync.http.CookieJar:cookie_header: url.host must be a non-empty " ..
      "string (got nil)", jar.cookie_header, jar, { scheme = "http" } },
    { "lasync.http.CookieJar:cookie_header: url.scheme must be a string " ..
      "(got number)", jar.cookie_header, jar, { scheme = 1, host = "h" } },
    { "lasync.http.CookieJar:cookie_header: url.path must be a string " ..
      "(got table)", jar.cookie_header, jar, { host = "h", path = {} } },
    { "lasync.http.CookieJar:cookie_header: now must be a finite number " ..
      "of seconds (got string)", jar.cookie_header, jar, u, "1" },
    { "lasync.http.CookieJar:len: now must be a finite number of seconds " ..
      "(got nan)", jar.len, jar, 0 / 0 },
    { "lasync.http.CookieJar:iter: now must be a finite number of " ..
      "seconds (got inf)", jar.iter, jar, math.huge },
    { "lasync.http.CookieJar:update_cookies: cookies must be a table " ..
      "name -> value (got string)", jar.update_cookies, jar, "a=1" },
    { "lasync.http.CookieJar:update_cookies: url must be a parsed URL " ..
      "table", jar.update_cookies, jar, {}, 5 },
    { "lasync.http.CookieJar:clear: predicate must be a function or nil " ..
      "(got boolean)", jar.clear, jar, true },
    { "lasync.http.CookieJar:clear_domain: domain must be a string (got " ..
      "nil)", jar.clear_domain, jar },
    { "lasync.http.CookieJar:len: self must be a CookieJar (call it as " ..
      "jar:len(...))", jar.len },
    { "lasync.http.CookieJar:cookie_header: self must be a CookieJar",
      jar.cookie_header, u },
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      raises_msg(case[1], table.unpack(case, 2, 3 + 2))
    end)
  end

  it("blames the caller", function()
    local err = raises_msg("cookie_header", function()
      jar:cookie_header("http://h/")
    end)
    assert.matches("http_cookiejar_spec.lua:%d+: ", err)
    err = raises_msg("CookieJar: opts", function()
      return CookieJar.new(1), nil
    end)
    assert.matches("http_cookiejar_spec.lua:%d+: ", err)
    assert.are.equal(0, jar:len())
  end)
end)
