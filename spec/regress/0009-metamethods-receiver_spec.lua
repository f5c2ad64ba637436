-- issue 9, item 3: lasync's metamethods called on the wrong receiver
-- (getmetatable(file).__close({}), getmetatable(task).__gc(future), the
-- loop's __gc given a table...) dereferenced NULL, overflowed buffers,
-- tripped libuv assertions or hung. Like stock Lua's io, every one must
-- raise a Lua error. The metatables are enumerated, not listed: every
-- "lasync.*" metatable of the registry, and the metatable of one object
-- of every kind the module makes (with their own metatables: error
-- classes, the scandir iterator's state, the runtime).
local helper = require "helper"
local lasync = helper.lasync

-- The userdata (or table) upvalues of f, for metatables only reachable
-- through them (the scandir state, the runtime).
local function upvalue_objects(f, into)
  for i = 1, 255 do
    local name, v = debug.getupvalue(f, i)
    if name == nil then break end
    if type(v) == "userdata" then into[#into + 1] = v end
  end
end

-- One object of every kind, made in a running task; plus a cleanup.
local function make_objects(dir)
  local objs = {}
  local function add(name, v) objs[#objs + 1] = { name = name, value = v } end
  add("Task", lasync.spawn(function() lasync.sleep(10) end))
  add("Future", lasync.Future())
  local loop = lasync.new_event_loop()
  add("Loop", loop)
  add("Handle", lasync.get_running_loop():call_later(10, function() end))
  add("Lock", lasync.Lock())
  add("Semaphore", lasync.Semaphore(1))
  add("BoundedSemaphore", lasync.BoundedSemaphore(1))
  add("Event", lasync.Event())
  add("Queue", lasync.Queue())
  add("LifoQueue", lasync.LifoQueue())
  add("PriorityQueue", lasync.PriorityQueue())
  add("WaitList", lasync._WaitList())
  add("Condition", lasync.Condition())
  add("Barrier", lasync.Barrier(2))
  add("TaskGroup", lasync.TaskGroup())
  add("TaskList", lasync.tasks())
  add("TimeoutError", lasync.TimeoutError("x"))
  add("TimeoutError class", lasync.TimeoutError)
  add("ExceptionGroup", lasync.ExceptionGroup("x", { errors = {} }))
  local srv = lasync.start_server(function(r, w)
    r:read()
    w:close()
  end, "127.0.0.1", 0)
  add("Server", srv)
  local reader, writer = lasync.open_connection(srv:address())
  add("StreamReader", reader)
  add("StreamWriter", writer)
  add("UdpEndpoint", lasync.open_udp { local_addr = { "127.0.0.1", 0 } })
  lasync.fs.writefile(dir .. "/f", "hello")
  add("File", lasync.fs.open(dir .. "/f"))
  add("SignalHandler", lasync.signal("SIGUSR2", function() end))
  add("Process", lasync.subprocess.exec("cat", {}, { stdin = "pipe" }))
  add("Thread", lasync.Thread(function() end))
  local extra = {}
  upvalue_objects(lasync.fs.scandir(dir), extra)
  upvalue_objects(lasync.sleep, extra)
  for i, v in ipairs(extra) do add("upvalue " .. i, v) end
  return objs
end

-- Every metatable to try: name -> metatable, with the object it belongs to.
local function metatables(objs)
  local found, seen = {}, {}
  local function add(name, mt, owner)
    if type(mt) == "table" and not seen[mt] then
      seen[mt] = true
      found[#found + 1] = { name = name, mt = mt, owner = owner }
    end
  end
  for _, o in ipairs(objs) do add(o.name, getmetatable(o.value), o.value) end
  for k, v in pairs(debug.getregistry()) do
    if type(k) == "string" and k:match("^lasync") then add(k, v) end
  end
  return found
end

-- Classes that share their metamethods (one C function serves them all).
local family = {
  ["lasync.Lock"] = "lock", ["lasync.Semaphore"] = "lock",
  ["lasync.BoundedSemaphore"] = "lock",
  ["lasync.Queue"] = "queue", ["lasync.LifoQueue"] = "queue",
  ["lasync.PriorityQueue"] = "queue",
  ["lasync.StreamReader"] = "stream", ["lasync.StreamWriter"] = "stream",
}

local function same_family(mt1, mt2)
  local f1 = type(mt1) == "table" and family[rawget(mt1, "__name")]
  local f2 = type(mt2) == "table" and family[rawget(mt2, "__name")]
  return f1 and f1 == f2
end

-- The wrong receivers for metatable mt: plain values and every object of
-- another kind (not of the same family).
local function receivers(objs, mt)
  local list = {
    { "nil", nil }, { "table", {} }, { "number", 1 }, { "string", "s" },
    { "boolean", true }, { "function", print },
    { "thread", coroutine.create(print) },
    { "userdata", io.stdout },
  }
  for _, o in ipairs(objs) do
    local omt = getmetatable(o.value)
    if omt ~= mt and not same_family(omt, mt) then
      list[#list + 1] = { o.name, o.value }
    end
  end
  return list
end

describe("regress 0009: every lasync metamethod on a wrong receiver", function()
  it("raises a Lua error, and the real objects still work", function()
    helper.in_dir(function(dir)
      local objs = make_objects(dir)
      local tried = 0
      for _, m in ipairs(metatables(objs)) do
        for key, fn in pairs(m.mt) do
          if type(key) == "string" and key:sub(1, 2) == "__" and
              type(fn) == "function" then
            for _, r in ipairs(receivers(objs, m.mt)) do
              local what = ("%s.%s(%s)"):format(m.name, key, r[1])
              local ok = pcall(fn, r[2], r[2])
              tried = tried + 1
              -- Lua-written metamethods may print a wrong receiver (it is a
              -- table); lasync's userdata classes must refuse it
              if type(m.owner) ~= "table" then
                assert.is_false(ok, what .. " did not raise")
              end
            end
          end
        end
      end
      assert.is_true(tried > 500, "only " .. tried .. " calls")
      collectgarbage()
      collectgarbage()
      -- the objects still work
      local by = {}
      for _, o in ipairs(objs) do by[o.name] = o.value end
      for _, o in ipairs(objs) do assert.is_string(tostring(o.value)) end
      by.Future:set_result(1)
      assert.are.equal(1, by.Future:await())
      by.Task:cancel()
      helper.assert_cancelled(by.Task)
      by.Handle:cancel()
      by.Lock:acquire()
      by.Lock:release()
      by.Queue:put(1)
      assert.are.equal(1, by.Queue:get())
      by.Event:set()
      by.Event:wait()
      assert.are.equal("hello", by.File:read(5))
      by.File:close()
      by.StreamWriter:write("x")
      by.StreamWriter:write_eof()
      assert.are.equal("", by.StreamReader:read())
      by.StreamWriter:close()
      by.StreamWriter:wait_closed()
      by.Server:close()
      by.Server:wait_closed()
      by.UdpEndpoint:close()
      by.SignalHandler:close()
      by.Process.stdin:close()
      assert.are.equal(0, by.Process:wait())
      by.Thread:stop()
      by.Thread:join()
      by.Loop:close()
      assert.is_true(by.Loop:is_closed())
    end, 10)
  end)

  it("the examples of the issue raise the checker's error", function()
    helper.in_dir(function(dir)
      lasync.fs.writefile(dir .. "/f", "x")
      local file = lasync.fs.open(dir .. "/f")
      local fut, task = lasync.Future(), lasync.spawn(function() end)
      local close, tgc = getmetatable(file).__close, getmetatable(task).__gc
      helper.raises_msg("expected a File (got table)", close, {})
      helper.raises_msg("expected a File (got lasync.Future)", close, fut)
      helper.raises_msg("expected a Task (got lasync.Future)", tgc, fut)
      local lgc = getmetatable(lasync.get_running_loop()).__gc
      helper.raises_msg("expected a Loop (got table)", lgc, {})
      helper.raises_msg("expected a Loop (got lasync.Task)", lgc, task)
      file:close()
      task:await()
    end)
  end)

  it("an object whose __gc was called by hand refuses its methods",
    function()
      helper.run(function()
        local finalized = "the object was finalized"
        local srv = lasync.start_server(function(_, w) w:close() end,
          "127.0.0.1", 0)
        local reader, writer = lasync.open_connection(srv:address())
        local udp = lasync.open_udp { local_addr = { "127.0.0.1", 0 } }
        local receiver = lasync.spawn(function() return udp:recv() end)
        local proc = lasync.subprocess.exec("true", {})
        local th = lasync.Thread(function() end)
        local loop = lasync.new_event_loop()
        helper.settle_all()
        for _, case in ipairs {
          { writer, "write", "x" }, { writer, "close" }, { reader, "read" },
          { srv, "close" }, { srv, "address" }, { udp, "send", "x" },
          { udp, "close" }, { proc, "wait" }, { th, "stop" },
          { loop, "close" }, { loop, "time" },
        } do
          local obj, method = case[1], case[2]
          getmetatable(obj).__gc(obj)
          getmetatable(obj).__gc(obj) -- twice: nothing more happens
          assert.is_string(tostring(obj))
          local ok, err = pcall(obj[method], obj, case[3])
          assert.is_false(ok, method)
          assert.matches(finalized, err, 1, true)
        end
        -- the task waiting in recv() when its endpoint was finalized
        local ok, err = pcall(receiver.await, receiver)
        assert.is_false(ok)
        assert.matches(finalized, tostring(err), 1, true)
        collectgarbage()
        collectgarbage()
        lasync.sleep(0.01)
      end, 5)
    end)
end)
