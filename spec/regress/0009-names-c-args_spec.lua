-- issue 9: argument errors of C functions named no function. luaL_argerror
-- names only a function Lua code called by name, and pcall(obj.method,
-- obj, ...) calls none: pcall(f.seek, f, "x") said "bad argument #2 to
-- '?'"; Loop methods said "lasync.Loop: expected a Loop", Task and Handle
-- methods "lasync.Task method: ...", error classes "bad argument #3 to
-- '?'" for their second argument. The runtime now keeps the public name of
-- every C function it registers (lasync._names()) and every argument
-- error names the function called: each one is called here with a bad
-- argument, so a function added later is covered too.
local helper = require "helper"
local lasync = helper.lasync

-- C functions that take no argument that could be wrong (extra arguments
-- are ignored, as Lua's own functions do) or take any value by design.
local TAKES_ANYTHING = {
  ["lasync.Event"] = true, ["lasync.Future"] = true, ["lasync.Lock"] = true,
  ["lasync.all_tasks"] = true, ["lasync.current_task"] = true,
  ["lasync.get_running_loop"] = true, ["lasync.new_event_loop"] = true,
  ["lasync.is_cancelled"] = true, ["lasync.is_error"] = true,
  ["lasync.is_timeout"] = true, ["lasync.isfuture"] = true,
  ["lasync.set_debug"] = true,
  ["lasync.worker_id"] = true, ["lasync.worker_count"] = true,
  ["lasync._WaitList"] = true, ["lasync._names"] = true,
  ["lasync._note_traceback"] = true, ["lasync._stats"] = true,
  ["lasync._open_udp"] = true, -- its options table is lasync.open_udp's
  ["lasync._ssl_context"] = true, -- lasync.ssl.context: {} is a context
  ["lasync._pg.start"] = true, -- lasync.pg.connect's: {} is libpq's defaults
  ["lasync._wire_self"] = true, -- lasync.ProcessPool's: no argument
  -- {} encodes (as {}), {} is a table to mark, and {} is empty options
  ["lasync.json.encode"] = true, ["lasync.json.array"] = true,
  ["lasync.json.object"] = true,
  -- returns nil, index, type for a bad argument: lasync.redis raises
  -- naming its own public function
  ["lasync._resp.command"] = true,
}

-- Documented aliases: the error may name the function the alias stands for.
local ALIASES = { ["lasync.spawn"] = "lasync.create_task" }

local function is_c(f)
  return type(f) == "function" and debug.getinfo(f, "S").what == "C"
end

-- name -> function, sorted names
local function named()
  local by_name, names = {}, {}
  for f, name in pairs(lasync._names()) do
    assert.is_nil(by_name[name], "two functions named " .. name)
    by_name[name] = f
    names[#names + 1] = name
  end
  table.sort(names)
  return by_name, names
end

-- The error of fn(...) called in a task of its own (cancelled if it
-- waits): nil if it returned.
local function error_of_call(fn, ...)
  local args = table.pack(...)
  local res
  local t = lasync.spawn(function()
    res = table.pack(pcall(fn, table.unpack(args, 1, args.n)))
  end)
  for _ = 1, 3 do
    if t:done() then break end
    lasync.sleep(0)
  end
  if not t:done() then
    t:cancel()
    pcall(t.await, t)
    return "(it waited)"
  end
  if res[1] then return nil end
  return res[2]
end

describe("issue 9: argument errors of C functions name the function", function()
  it("every C function of the modules and classes has a public name",
    function()
      local names = lasync._names()
      local missing = {}
      local function check(t, where)
        for k, v in pairs(t) do
          if is_c(v) and not names[v] then
            missing[#missing + 1] = where .. tostring(k)
          end
        end
      end
      check(lasync, "lasync.")
      check(lasync.fs, "lasync.fs.")
      check(lasync.subprocess, "lasync.subprocess.")
      for k, mt in pairs(debug.getregistry()) do
        if type(k) == "string" and k:match("^lasync%.") and
            type(mt) == "table" then
          check(mt, k .. ":")
          for _, field in ipairs { "_methods", "__index" } do
            if type(rawget(mt, field)) == "table" then
              check(mt[field], k .. ":")
            end
          end
        end
      end
      table.sort(missing)
      assert.are.same({}, missing)
      -- registered in all the ways bindings/ registers functions
      local by_name = named()
      for _, name in ipairs {
        "lasync.sleep", "lasync.fs.unlink", "lasync.subprocess.exec",
        "lasync.File:read", "lasync.File:__close", "lasync.Loop:call_soon",
        "lasync.Loop:call_soon_threadsafe", "lasync.Loop:run_in_executor",
        "lasync.Task:cancel", "lasync.Task:done", "lasync.Future:done",
        "lasync.Handle:when", "lasync.Process:__index",
        "lasync.Error:__tostring",
      } do
        assert.is_function(by_name[name], name)
      end
      for name in pairs(TAKES_ANYTHING) do
        assert.is_function(by_name[name], name .. " (in TAKES_ANYTHING)")
      end
    end)

  it("each one, given a bad argument, raises an error naming it", function()
    helper.run(function()
      local by_name, names = named()
      local wrong, checked = {}, 0
      for _, name in ipairs(names) do
        if not TAKES_ANYTHING[name] then
          local fn = by_name[name]
          local err
          if name:find(":", 1, true) then -- a method: a wrong receiver
            err = error_of_call(fn, true, {}, {})
          else
            err = error_of_call(fn, {}, {}, {})
          end
          local want = ALIASES[name] or name
          if type(err) ~= "string" or not err:find(want, 1, true) then
            wrong[#wrong + 1] = ("%s: %s"):format(name, tostring(err))
          end
          checked = checked + 1
        end
      end
      assert.are.same({}, wrong)
      assert.is_true(checked > 200, checked .. " functions checked")
      helper.settle_all(5)
    end, 20)
  end)

  it("a method counts its arguments after self, however it is called",
    function()
      helper.in_dir(function(dir)
        local f <close> = lasync.fs.open(dir .. "/f", "w+")
        local want = "bad argument #1 to 'lasync.File:seek' (invalid " ..
            "option 'bogus')"
        assert.are.equal(want, helper.error_of(f.seek, f, "bogus"))
        local seek = f.seek
        local err = helper.error_of(function() return seek(f, "bogus") end)
        assert.is_truthy(err:find(want, 1, true), err)
        err = helper.error_of(function() return f:seek("bogus") end)
        assert.is_truthy(err:find(want, 1, true), err)
        assert.are.equal("bad argument #1 to 'lasync.File:write' (string " ..
          "expected, got table)", helper.error_of(f.write, f, {}))
        assert.are.equal("bad argument #2 to 'lasync.fs.mkdir' (number " ..
          "has no integer representation)",
          helper.error_of(lasync.fs.mkdir, dir .. "/d", 1.5))
        local loop = lasync.get_running_loop()
        assert.are.equal("bad argument #1 to 'lasync.Loop:call_at' " ..
          "(number expected, got table)",
          helper.error_of(loop.call_at, loop, {}, print))
      end)
    end)

  it("a wrong receiver names the method called", function()
    helper.run(function()
      local t = lasync.spawn(function() end)
      local loop = lasync.get_running_loop()
      local h = loop:call_soon(function() end)
      for _, case in ipairs {
        { "lasync.Task:cancel: expected a Task (got table)", t.cancel, {} },
        { "lasync.Task:get_name: expected a Task (got number)",
          t.get_name, 5 },
        { "lasync.Task:done: expected a task or future (got table)",
          t.done, {} },
        { "lasync.Handle:when: expected a Handle (got string)", h.when,
          "x" },
        { "lasync.Handle:cancel: expected a Handle (got no value)",
          h.cancel },
        { "lasync.Loop:time: expected a Loop (got table)", loop.time, {} },
        { "lasync.Loop:call_soon: expected a Loop (got nil)",
          loop.call_soon, nil, print },
        { "lasync.LifoQueue:put: expected a Queue, LifoQueue or " ..
          "PriorityQueue (got boolean)",
          lasync.LifoQueue().put, true, 1 },
        { "lasync.BoundedSemaphore:release: expected a BoundedSemaphore " ..
          "(got number)", lasync.BoundedSemaphore(1).release, 1 },
      } do
        assert.are.equal(case[1], helper.error_of(table.unpack(case, 2)))
      end
      t:await()
      h:cancel()
    end)
  end)

  it("error classes name themselves and count from the message", function()
    assert.are.equal("bad argument #2 to 'lasync.TimeoutError' (table " ..
      "expected, got number)", helper.error_of(lasync.TimeoutError, "m", 5))
    assert.are.equal("bad argument #2 to 'lasync.Error' (table expected, " ..
      "got boolean)", helper.error_of(lasync.Error, nil, true))
    local MyError = lasync.error_class("MyError")
    assert.are.equal("bad argument #2 to 'lasync.MyError' (table " ..
      "expected, got string)", helper.error_of(MyError, "m", "x"))
    assert.are.equal("calling 'lasync.Error:__tostring' on bad self " ..
      "(table expected, got number)",
      helper.error_of(getmetatable(lasync.Error("m")).__tostring, 5))
    assert.are.equal("m", MyError("m", { code = 1 }).message)
  end)

  it("to_thread's errors name the function it was called as", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      assert.are.equal("lasync.Loop:run_in_executor: expected a " ..
        "function (got table)",
        helper.error_of(loop.run_in_executor, loop, nil, {}))
      assert.are.equal("lasync.to_thread: expected a function (got table)",
        helper.error_of(lasync.to_thread, {}))
    end)
  end)
end)
