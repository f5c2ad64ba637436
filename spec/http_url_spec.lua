-- lasync.http.url: strict percent-decoding, quoting, query strings into
-- multidicts and back, and request targets split into path and query.
local helper = require "helper"
local url = require "lasync.http.url"
local multidict = require "lasync.http.multidict"

local raises_msg = helper.raises_msg

describe("lasync.http.url.unquote", function()
  it("decodes escapes in either case and keeps the rest", function()
    assert.are.equal("a b/c", url.unquote("a%20b%2fc"))
    assert.are.equal("\255\0", url.unquote("%fF%00"))
    assert.are.equal("a+b", url.unquote("a+b"))
    assert.are.equal("a b", url.unquote("a+b", true))
    assert.are.equal("%", url.unquote("%25"))
    assert.are.equal("", url.unquote(""))
  end)

  it("refuses a % without two hex digits", function()
    for _, s in ipairs { "%", "%2", "a%g0", "%%41", "ok%2", "%2x" } do
      local v, err = url.unquote(s)
      assert.is_nil(v, s)
      assert.matches("bad percent%-escape at byte %d+", err)
    end
  end)

  it("returns its argument when there is nothing to decode", function()
    local s = "/plain/path"
    assert.are.equal(s, url.unquote(s))
  end)
end)

describe("lasync.http.url.quote", function()
  it("encodes all but unreserved bytes and safe ones", function()
    assert.are.equal("/a%20b/%C3%A9~x-y_z.", url.quote("/a b/\195\169~x-y_z."))
    assert.are.equal("%2Fa%2Fb", url.quote("/a/b", ""))
    assert.are.equal("a:b%40c", url.quote("a:b@c", ":"))
    assert.are.equal("%25%5D%5E", url.quote("%]^", "/"))
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    assert.are.equal(all, url.unquote(url.quote(all)))
    assert.are.equal(all, url.unquote(url.quote(all, "]^[-")))
  end)
end)

describe("lasync.http.url.parse_qs", function()
  it("keeps repeated keys, blank values and order", function()
    local q = url.parse_qs("a=1&a=2&b&c=x+y%21&&=e")
    assert.is_true(multidict.is(q))
    assert.are.equal("1", q.a)
    assert.are.same({ "1", "2" }, q:getall("a"))
    assert.are.equal("", q.b)
    assert.are.equal("x y!", q.c)
    assert.are.equal("e", q[""])
    assert.are.equal(5, q:len())
    assert.are.equal(0, url.parse_qs(""):len())
    assert.are.equal("a=b", url.parse_qs("k=a=b").k)
  end)

  it("answers bad escapes with 400 and too many fields with 413",
    function()
      local v, err, status = url.parse_qs("a=%zz")
      assert.is_nil(v)
      assert.are.equal(400, status)
      assert.matches("bad percent%-escape", err)
      v, err, status = url.parse_qs("a&b&c", 2)
      assert.is_nil(v)
      assert.are.equal(413, status)
      assert.are.equal("more than 2 fields", err)
      assert.are.equal(3, url.parse_qs("a&b&c", 3):len())
    end)
end)

describe("lasync.http.url.encode_qs", function()
  it("encodes a multidict in order and a table in key order", function()
    local md = multidict.new()
    md:add("b", "x y")
    md:add("a", "1&2=3")
    md:add("b", "/")
    assert.are.equal("b=x+y&a=1%262%3D3&b=%2F", url.encode_qs(md))
    assert.are.equal("a=1&a=2&b=true&c=1.5",
      url.encode_qs { c = 1.5, a = { "1", 2 }, b = true })
    local back = url.parse_qs(url.encode_qs(md))
    assert.are.same(md:getall("b"), back:getall("b"))
    assert.are.equal("1&2=3", back.a)
  end)

  it("checks its arguments", function()
    raises_msg("lasync.http.url.encode_qs: expected a table or a " ..
      "MultiDict (got string)", url.encode_qs, "x")
    raises_msg('lasync.http.url.encode_qs: value of "a" must be a ' ..
      "string, number or boolean (got function)", url.encode_qs,
      { a = print })
  end)
end)

describe("lasync.http.url.split_target", function()
  it("decodes the path and keeps the query raw", function()
    assert.are.same({ "/a b/c", "x=1&y=%20" },
      { url.split_target("/a%20b/c?x=1&y=%20") })
    assert.are.same({ "/a+b", "" }, { url.split_target("/a+b") })
    assert.are.same({ "/", "q" }, { url.split_target("/?q") })
    assert.are.same({ "/p", "q=1" },
      { url.split_target("http://example.com/p?q=1") })
    assert.are.same({ "/", "" }, { url.split_target("http://example.com") })
    assert.are.same({ "*", "" }, { url.split_target("*") })
  end)

  it("returns the target itself when it has neither % nor ?", function()
    local raw = "/static/app.js"
    local path, query = url.split_target(raw)
    assert.are.equal(raw, path)
    assert.are.equal("", query)
  end)

  it("refuses bad escapes, NUL bytes and non-paths", function()
    for _, raw in ipairs { "/a%zz", "/a%00b", "/a\0", "/%0", "x/y",
      "/%%" } do
      local path, err = url.split_target(raw)
      assert.is_nil(path, raw)
      assert.is_string(err)
    end
    raises_msg("lasync.http.url.split_target: raw must be a string (got " ..
      "nil)", url.split_target)
  end)
end)

describe("lasync.http.url fuzz", function()
  it("never raises on random input and round-trips quote", function()
    math.randomseed(tonumber(os.getenv("LASYNC_FUZZ_SEED")) or 3)
    local alphabet = { "%", "2", "f", "F", "?", "/", "+", "&", "=", "\0",
      "a", "%2", "%00", "%zz", "http://", "*" }
    for _ = 1, 10000 do
      local t = {}
      for _ = 1, math.random(0, 12) do
        t[#t + 1] = alphabet[math.random(#alphabet)]
      end
      local s = table.concat(t)
      local path, query = url.split_target(s)
      if path then
        assert.is_nil(path:find("\0", 1, true))
        assert.is_string(query)
      end
      url.parse_qs(s)
      local d = url.unquote(s, true)
      assert.are.equal(s, url.unquote(url.quote(s, "")))
      if d then assert.is_string(d) end
    end
  end)
end)
