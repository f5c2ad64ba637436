-- issue 9, item 3 (found while auditing it): every error a task raises is
-- checked against CancelledError by following its metatable's `parent`
-- chain, from the loop's C code. The chain went through __index (a user
-- function, unprotected there) and had no end for a metatable that is its
-- own parent (the loop hung). It is now followed raw and bounded.
local helper = require "helper"
local lasync = helper.lasync

describe("regress 0009: odd error objects raised by a task", function()
  it("a metatable that is its own parent", function()
    helper.run(function()
      local mt = {}
      mt.parent = mt
      local t = lasync.spawn(function() error(setmetatable({}, mt)) end)
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.are.equal(mt, getmetatable(err))
      assert.is_false(lasync.is_cancelled(err))
      assert.is_false(lasync.is_error(err))
    end, 1)
  end)

  it("a metatable whose __index raises or awaits", function()
    helper.run(function()
      for _, index in ipairs {
        function() error("index") end,
        function() lasync.sleep(0.001) end,
      } do
        local mt = setmetatable({}, { __index = index })
        local t = lasync.spawn(function() error(setmetatable({}, mt)) end)
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert.are.equal(mt, getmetatable(err))
      end
    end, 1)
  end)

  it("error classes' metamethods refuse what is not a class", function()
    local class_mt = getmetatable(lasync.TimeoutError)
    for _, v in ipairs { 1, "s", true, print } do
      assert.is_false(pcall(class_mt.__call, v))
      assert.is_false(pcall(class_mt.__tostring, v))
      assert.is_false(pcall(lasync.TimeoutError.__tostring, v))
    end
    assert.are.equal("TimeoutError: x", tostring(lasync.TimeoutError("x")))
  end)
end)
