-- issue 9: methods written in Lua called with . instead of : (no self, or
-- a receiver of another class) failed inside with "attempt to index a
-- function value (local 'self')"; they must say, as the C methods do,
-- "lasync.Class:method: expected a Class (got type)", the type being the
-- class name of a lasync object ("got lasync.Event"). Every method is
-- read from the live classes, so a new one is covered too.
local helper = require "helper"
local lasync = helper.lasync

local function an(name)
  return (name:find("^[AEIO]") and "an " or "a ") .. name
end

-- receivers that are never right, with the type the error must name
local function wrong_receivers()
  return {
    { nil, "nil" }, { 42, "number" }, { "text", "string" },
    { print, "function" }, { {}, "table" }, { true, "boolean" },
    -- lasync's objects by their class name, as the C checker says them
    { lasync.Event(), "lasync.Event" },
    { lasync.Condition(), "lasync.Condition" },
    { lasync.Barrier(1), "lasync.Barrier" },
    { lasync.TaskGroup(), "lasync.TaskGroup" },
  }
end

-- calls methods[name] with each wrong receiver; r is the right one
local function check_all(class, methods, right, names)
  local checked = 0
  for _, name in ipairs(names) do
    local fn = methods[name]
    for _, case in ipairs(wrong_receivers()) do
      local bad, typ = case[1], case[2]
      if getmetatable(bad) ~= getmetatable(right) then
        local ok, err = pcall(fn, bad, function() end)
        assert.is_false(ok, class .. ":" .. name)
        assert.is_string(err, class .. ":" .. name)
        local want = ("lasync.%s:%s: expected %s (got %s)"):format(class,
          name, an(class), typ)
        assert.is_truthy(err:find(want, 1, true),
          ("%s: expected %q in %q"):format(name, want, err))
        checked = checked + 1
      end
    end
  end
  return checked
end

-- every function field of a Lua class (methods and metamethods)
local function functions_of(cls)
  local names = {}
  for k, v in pairs(cls) do
    if type(v) == "function" then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

describe("issue 9: Lua-written methods check their receiver", function()
  it("TaskGroup, Condition, Barrier: every method and metamethod",
    function()
      helper.run(function()
        for class, obj in pairs {
          TaskGroup = lasync.TaskGroup(), Condition = lasync.Condition(),
          Barrier = lasync.Barrier(2),
        } do
          local mt = getmetatable(obj)
          local names = functions_of(mt)
          assert.is_true(#names > 3, class)
          assert.is_true(check_all(class, mt, obj, names) > 0)
        end
      end)
    end)

  it("the list lasync.tasks() returns", function()
    helper.run(function()
      local list = lasync.tasks()
      local mt = getmetatable(list)
      check_all("TaskList", mt, list, functions_of(mt))
      assert.is_string(tostring(list))
    end)
  end)

  it("with, hold and iter added in Lua to the C classes", function()
    helper.run(function()
      for class, obj in pairs {
        Lock = lasync.Lock(), Semaphore = lasync.Semaphore(),
        BoundedSemaphore = lasync.BoundedSemaphore(),
      } do
        check_all(class, getmetatable(obj).__index, obj, { "with", "hold" })
      end
      for class, obj in pairs {
        Queue = lasync.Queue(), LifoQueue = lasync.LifoQueue(),
        PriorityQueue = lasync.PriorityQueue(),
      } do
        check_all(class, getmetatable(obj).__index, obj, { "iter" })
      end
    end)
  end)

  it("the error points at the caller's line", function()
    helper.run(function()
      local tg = lasync.TaskGroup()
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, err = pcall(function() tg.run(print) end)
      assert.is_false(ok)
      assert.matches(":" .. line .. ": lasync.TaskGroup:run: expected a " ..
        "TaskGroup (got function)", err, 1, true)
    end)
  end)

  it("methods called with : still work", function()
    helper.run(function()
      local c = lasync.Condition()
      local b = lasync.Barrier(1)
      assert.are.equal(0, b:wait())
      assert.are.equal(7, c:with(function() return 7 end))
      assert.are.equal(3, lasync.task_group(function(tg)
        return tg:create_task(function() return 3 end):await()
      end))
    end)
  end)
end)
