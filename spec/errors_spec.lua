-- Error classes: the built-in classes, instances, tostring, predicates,
-- construction with fields, lasync.error_class and tracebacks.
local helper = require "helper"
local lasync = helper.lasync

local builtins = { "Error", "CancelledError", "TimeoutError",
  "InvalidStateError", "ExceptionGroup" }

describe("error classes", function()
  it("are exported with their names", function()
    for _, name in ipairs(builtins) do
      local cls = lasync[name]
      assert.are.equal("table", type(cls), name)
      assert.are.equal(name, cls.name)
      assert.are.equal("lasync." .. name, tostring(cls))
    end
  end)

  it("all derive from lasync.Error", function()
    for _, name in ipairs(builtins) do
      if name ~= "Error" then
        assert.are.equal(lasync.Error, lasync[name].parent, name)
      end
    end
    assert.is_nil(lasync.Error.parent)
  end)
end)

describe("error instances", function()
  it("are tables whose metatable is their class", function()
    local e = lasync.CancelledError("m")
    assert.are.equal("table", type(e))
    assert.are.equal(lasync.CancelledError, getmetatable(e))
    assert.are.equal("m", e.message)
    assert.are.equal("CancelledError", e.name)
  end)

  it("print as 'Name: message', or just the name", function()
    assert.are.equal("CancelledError: stop", tostring(lasync.CancelledError(
      "stop")))
    assert.are.equal("CancelledError", tostring(lasync.CancelledError()))
    assert.are.equal("TimeoutError: late", tostring(lasync.TimeoutError(
      "late")))
    assert.are.equal("TimeoutError", tostring(lasync.TimeoutError()))
    assert.are.equal("InvalidStateError: bad", tostring(
      lasync.InvalidStateError("bad")))
    assert.are.equal("Error: generic", tostring(lasync.Error("generic")))
    assert.are.equal("Error", tostring(lasync.Error("")))
    assert.are.equal("Error: 42", tostring(lasync.Error(42)))
  end)

  it("carry a traceback of where they were made", function()
    local e = lasync.TimeoutError("x")
    assert.are.equal("string", type(e.traceback))
    assert.matches("stack traceback:", e.traceback, 1, true)
    assert.matches("errors_spec.lua", e.traceback, 1, true)
  end)

  it("take extra fields, kept as given", function()
    local cause = lasync.CancelledError()
    local e = lasync.TimeoutError("late", { cause = cause, code = 5 })
    assert.are.equal("late", e.message)
    assert.are.equal(cause, e.cause)
    assert.are.equal(5, e.code)
    assert.are.equal("string", type(e.traceback))
    assert.is_true(lasync.is_timeout(e))
  end)

  it("keep a traceback given in the fields", function()
    local e = lasync.Error("m", { traceback = "mine" })
    assert.are.equal("mine", e.traceback)
  end)

  it("reject fields that are not a table", function()
    assert.has_error(function() lasync.Error("m", "fields") end)
  end)

  it("never reclassify a table that has a metatable", function()
    local cancelled = lasync.CancelledError("stop")
    local ok, err = pcall(lasync.TimeoutError, "x", cancelled)
    assert.is_false(ok)
    assert.are.equal("bad argument #2 to 'lasync.TimeoutError' (a plain " ..
      "table expected, got one with a metatable (lasync.CancelledError))",
      err)
    assert.is_true(lasync.is_cancelled(cancelled))
    local obj = setmetatable({}, { __name = "Thing" })
    assert.has_error(function() lasync.Error("m", obj) end)
    assert.are.equal("Thing", getmetatable(obj).__name)
  end)

  it("survive error() and pcall by identity", function()
    local e = lasync.InvalidStateError("x")
    local ok, err = pcall(error, e)
    assert.is_false(ok)
    assert.are.equal(e, err)
  end)
end)

describe("error predicates", function()
  it("is_error is true for instances of every built-in class", function()
    for _, name in ipairs(builtins) do
      assert.is_true(lasync.is_error(lasync[name]("m")), name)
      assert.is_true(lasync.is_error(lasync[name]("m"), lasync.Error), name)
      assert.is_true(lasync.is_error(lasync[name]("m"), lasync[name]), name)
    end
  end)

  it("is_error is false for other values", function()
    assert.is_false(lasync.is_error("CancelledError"))
    assert.is_false(lasync.is_error({}))
    assert.is_false(lasync.is_error(nil))
    assert.is_false(lasync.is_error(42))
    assert.is_false(lasync.is_error(setmetatable({}, {})))
    assert.is_false(lasync.is_error(lasync.Error)) -- a class, not an error
  end)

  it("is_error with a class checks that class and its subclasses only",
    function()
      local c = lasync.CancelledError()
      assert.is_true(lasync.is_error(c, lasync.CancelledError))
      assert.is_false(lasync.is_error(c, lasync.TimeoutError))
      assert.is_false(lasync.is_error(lasync.Error(), lasync.CancelledError))
      assert.is_false(lasync.is_error("x", lasync.Error))
    end)

  it("is_error rejects a class that is not a table", function()
    assert.has_error(function() lasync.is_error({}, "Error") end)
  end)

  it("is_cancelled and is_timeout", function()
    assert.is_true(lasync.is_cancelled(lasync.CancelledError()))
    assert.is_false(lasync.is_cancelled(lasync.TimeoutError()))
    assert.is_false(lasync.is_cancelled("CancelledError"))
    assert.is_false(lasync.is_cancelled(nil))
    assert.is_true(lasync.is_timeout(lasync.TimeoutError()))
    assert.is_false(lasync.is_timeout(lasync.CancelledError()))
    assert.is_false(lasync.is_timeout({}))
  end)
end)

describe("lasync.error_class", function()
  it("makes a class derived from lasync.Error by default", function()
    local MyError = lasync.error_class("MyError")
    assert.are.equal("MyError", MyError.name)
    assert.are.equal(lasync.Error, MyError.parent)
    assert.are.equal("lasync.MyError", tostring(MyError))
    local e = MyError("boom", { detail = 1 })
    assert.are.equal("MyError: boom", tostring(e))
    assert.are.equal(1, e.detail)
    assert.are.equal("string", type(e.traceback))
    assert.is_true(lasync.is_error(e))
    assert.is_true(lasync.is_error(e, MyError))
    assert.is_false(lasync.is_error(e, lasync.CancelledError))
    assert.is_false(lasync.is_cancelled(e))
  end)

  it("makes subclasses of a given parent", function()
    local Base = lasync.error_class("Base")
    local Sub = lasync.error_class("Sub", Base)
    local Leaf = lasync.error_class("Leaf", Sub)
    assert.are.equal(Base, Sub.parent)
    local e = Leaf("deep")
    assert.is_true(lasync.is_error(e, Leaf))
    assert.is_true(lasync.is_error(e, Sub))
    assert.is_true(lasync.is_error(e, Base))
    assert.is_true(lasync.is_error(e, lasync.Error))
    assert.is_false(lasync.is_error(Sub("x"), Leaf))
    assert.are.equal("Leaf: deep", tostring(e))
  end)

  it("subclasses of a built-in class satisfy its predicate", function()
    local Deadline = lasync.error_class("Deadline", lasync.TimeoutError)
    local Stop = lasync.error_class("Stop", lasync.CancelledError)
    assert.is_true(lasync.is_timeout(Deadline("d")))
    assert.is_true(lasync.is_cancelled(Stop("s")))
  end)

  it("subclasses inherit methods and fields of their parent", function()
    local Base = lasync.error_class("Base")
    function Base:describe() return "described " .. self.message end
    Base.kind = "base kind"
    local Sub = lasync.error_class("Sub", Base)
    local e = Sub("thing")
    assert.are.equal("described thing", e:describe())
    assert.are.equal("base kind", e.kind)
    assert.are.equal("Sub", e.name)
  end)

  it("checks its arguments", function()
    assert.has_error(function() lasync.error_class() end)
    assert.has_error(function() lasync.error_class("X", "parent") end)
  end)
end)

describe("lasync.ExceptionGroup", function()
  it("prints its message and each sub-error", function()
    local g = lasync.ExceptionGroup("two failures", {
      errors = { "first", lasync.TimeoutError("second") } })
    assert.is_true(lasync.is_error(g, lasync.ExceptionGroup))
    assert.are.equal("ExceptionGroup: two failures\n  [1] first\n" ..
      "  [2] TimeoutError: second", tostring(g))
  end)
end)

describe("errors raised by lasync", function()
  it("a cancelled task raises a CancelledError instance with a traceback",
    function()
      helper.run(function()
        local t = lasync.create_task(function() lasync.sleep(1) end)
        lasync.sleep(0)
        t:cancel("why")
        local err = helper.error_of(t.await, t)
        assert.are.equal(lasync.CancelledError, getmetatable(err))
        assert.are.equal("why", err.message)
        assert.are.equal("string", type(err.traceback))
      end, 1)
    end)

  it("InvalidStateError instances come from future misuse", function()
    helper.run(function()
      local f = lasync.Future()
      local err = helper.error_of(f.result, f)
      assert.are.equal(lasync.InvalidStateError, getmetatable(err))
      assert.are.equal("string", type(err.traceback))
    end, 1)
  end)

  it("user error instances pass through tasks unchanged", function()
    helper.run(function()
      local MyError = lasync.error_class("MyError")
      local e = MyError("inside")
      local t = lasync.create_task(function()
        lasync.sleep(0)
        error(e)
      end)
      local err = helper.error_of(t.await, t)
      assert.are.equal(e, err)
      assert.is_true(lasync.is_error(err, MyError))
    end, 1)
  end)
end)

describe("misuse errors of methods", function()
  it("say 'an' before a class name starting with a vowel", function()
    helper.run(function()
      local e = lasync.Event()
      helper.raises_msg("lasync.Event:wait: expected an Event (got no value)",
        e.wait)
      helper.raises_msg("lasync.Event:set: expected an Event (got number)",
        e.set, 1)
      helper.raises_msg("lasync.Lock:acquire: expected a Lock (got nil)",
        lasync.Lock().acquire, nil)
    end)
  end)
end)
