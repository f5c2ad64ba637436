-- lasync.http.multidict: first values by indexing, repeated keys, order,
-- set/remove, keys colliding with method names, the case-insensitive
-- variant and argument checks.
local helper = require "helper"
local multidict = require "lasync.http.multidict"

local raises_msg = helper.raises_msg

describe("lasync.http.multidict", function()
  it("gives the first value by indexing and all of them by getall",
    function()
      local md = multidict.new()
      md:add("a", "1")
      md:add("b", "x")
      md:add("a", "2")
      assert.are.equal("1", md.a)
      assert.are.equal("x", md["b"])
      assert.is_nil(md.c)
      assert.are.same({ "1", "2" }, md:getall("a"))
      assert.are.same({ "x" }, md:getall("b"))
      assert.are.same({}, md:getall("c"))
      assert.are.equal(3, md:len())
      assert.is_true(md:has("a"))
      assert.is_false(md:has("c"))
      assert.are.equal("d", md:get("c", "d"))
    end)

  it("iterates entries in insertion order, with pairs too", function()
    local md = multidict.new()
    md:add("z", "1")
    md:add("a", "2")
    md:add("z", "3")
    local seen = {}
    for k, v in md:items() do seen[#seen + 1] = k .. "=" .. v end
    assert.are.same({ "z=1", "a=2", "z=3" }, seen)
    seen = {}
    for k, v in pairs(md) do seen[#seen + 1] = k .. "=" .. v end
    assert.are.same({ "z=1", "a=2", "z=3" }, seen)
    assert.are.same({ "z", "a" }, md:keys())
    assert.are.same({ z = "1", a = "2" }, md:to_table())
  end)

  it("reaches keys named like methods with get", function()
    local md = multidict.new()
    md:add("add", "field")
    md:add("len", "other")
    assert.are.equal("function", type(md.add))
    assert.are.equal("field", md:get("add"))
    assert.are.same({ "other" }, md:getall("len"))
    assert.are.equal(2, md:len())
  end)

  it("replaces with set and assignment, removes with remove and nil",
    function()
      local md = multidict.new { { "a", "1" }, { "b", "2" }, { "a", "3" } }
      md:set("a", "9")
      assert.are.same({ "9" }, md:getall("a"))
      local order = {}
      for k in md:items() do order[#order + 1] = k end
      assert.are.same({ "b", "a" }, order)
      md.b = "7"
      assert.are.equal("7", md.b)
      md:add("b", "8")
      assert.are.equal(2, md:remove("b"))
      assert.are.equal(0, md:remove("b"))
      md.a = nil
      assert.are.equal(0, md:len())
    end)

  it("builds from a table of values or arrays, in key order", function()
    local md = multidict.new { b = "2", a = { "1", "3" } }
    local seen = {}
    for k, v in md:items() do seen[#seen + 1] = k .. "=" .. v end
    assert.are.same({ "a=1", "a=3", "b=2" }, seen)
    local copy = multidict.new(md)
    copy:add("c", "4")
    assert.are.equal(3, md:len())
    assert.are.equal(4, copy:len())
    assert.is_true(multidict.is(copy))
    assert.is_false(multidict.is({}))
  end)

  it("compares keys without case in the ci variant", function()
    local h = multidict.ci()
    h:add("Set-Cookie", "a=1")
    h:add("set-cookie", "b=2")
    h:add("Content-Type", "text/plain")
    assert.are.equal("text/plain", h["content-type"])
    assert.are.equal("text/plain", h["CONTENT-TYPE"])
    assert.are.same({ "a=1", "b=2" }, h:getall("SET-COOKIE"))
    assert.is_true(h:has("Content-type"))
    assert.are.same({ "set-cookie", "content-type" }, h:keys())
    h["Content-Type"] = "text/html"
    assert.are.equal("text/html", h:get("content-type"))
  end)

  it("prints its entries", function()
    local md = multidict.new { { "a", "1" } }
    assert.are.equal('MultiDict{"a": "1"}', tostring(md))
  end)

  it("checks its arguments", function()
    local md = multidict.new()
    raises_msg("lasync.http.MultiDict:add: key must be a string (got " ..
      "number)", md.add, md, 1, "x")
    raises_msg("lasync.http.MultiDict:add: value must not be nil",
      md.add, md, "k", nil)
    raises_msg("lasync.http.MultiDict:getall: expected a MultiDict (got " ..
      "nil)", md.getall)
    raises_msg("lasync.http.multidict.new: expected a table or a " ..
      "MultiDict (got string)", multidict.new, "x")
    raises_msg("lasync.http.multidict.new: entry 1 must be a {key, " ..
      "value} pair", multidict.new, { "x" })
  end)
end)
