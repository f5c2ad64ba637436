-- lasync.to_thread and loop:run_in_executor: results and arguments copied
-- between Lua states, the worker's own globals, errors (copied values and
-- the worker's traceback), refused functions and values, the loop staying
-- free while a worker blocks, many calls at once, and cancelling.
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

-- await t, which must fail; returns its error
local function failure(t)
  local ok, err = pcall(t.await, t)
  assert.is_false(ok, "expected the task to fail")
  return err
end

local function identity(...) return ... end

-- Whether the file at path exists.
local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- A fresh path for a flag file that a worker creates when it has started
-- (wall-clock: other threads are not held to the loop's timers).
local function flag_path()
  local path = os.tmpname()
  os.remove(path)
  return path
end

local function nested(depth)
  local t = { leaf = true }
  for _ = 2, depth do t = { t } end
  return t
end

describe("lasync.to_thread results", function()
  it("returns a task named to_thread with the function's results",
    function()
      helper.run(function()
        local t = lasync.to_thread(function(n)
          local sum = 0
          for i = 1, n do sum = sum + i end
          return sum
        end, 1000)
        assert.are.equal("to_thread", t:get_name())
        assert.are.equal("lasync.Task: to_thread (pending)", tostring(t))
        assert.are.equal(500500, t:await())
        assert.is_true(t:done())
        assert.are.equal(500500, t:result())
      end)
    end)

  it("keeps several results and nils among them", function()
    helper.run(function()
      local r = table.pack(lasync.to_thread(function()
        return nil, 2, nil, "four", nil
      end):await())
      assert.are.same({ n = 5, nil, 2, nil, "four", nil }, r)
      r = table.pack(lasync.to_thread(function() end):await())
      assert.are.same({ n = 0 }, r)
      r = table.pack(lasync.to_thread(function() return nil end):await())
      assert.are.same({ n = 1 }, r)
      r = table.pack(lasync.to_thread(function(...)
        return select("#", ...), ...
      end, nil, nil, 3, nil):await())
      assert.are.same({ n = 5, 4, nil, nil, 3, nil }, r)
    end)
  end)

  it("copies nested tables back", function()
    helper.run(function()
      local r = lasync.to_thread(function()
        return { 1, 2, { 3, { 4 } }, name = "n", [true] = false,
          [1.5] = "f", deep = { deeper = { deepest = "yes" } } }
      end):await()
      assert.are.same({ 1, 2, { 3, { 4 } }, name = "n", [true] = false,
        [1.5] = "f", deep = { deeper = { deepest = "yes" } } }, r)
    end)
  end)
end)

describe("lasync.to_thread arguments", function()
  it("crosses every copyable type unchanged", function()
    helper.run(function()
      local args = table.pack(nil, true, false, 0, -7, math.maxinteger,
        math.mininteger, 1.0, -0.5, 1e308, math.huge, -math.huge, "",
        "bytes\0\1\255", string.rep("long", 250000))
      local r = table.pack(lasync.to_thread(identity, table.unpack(args, 1,
        args.n)):await())
      assert.are.equal(args.n, r.n)
      for i = 1, args.n do
        assert.are.equal(args[i], r[i], "argument " .. i)
        assert.are.equal(math.type(args[i]), math.type(r[i]),
          "the number subtype of argument " .. i)
      end
    end)
  end)

  it("keeps integers and floats apart, and NaN", function()
    helper.run(function()
      local a, b, c, d = lasync.to_thread(function(x, y, z)
        return math.type(x), math.type(y), z ~= z, 1 // 1
      end, 3, 3.0, 0 / 0):await()
      assert.are.same({ "integer", "float", true, 1 },
        { a, b, c, d })
    end)
  end)

  it("crosses nested tables with all kinds of keys", function()
    helper.run(function()
      local function sample()
        return { 1, "two", { 3, { 4, { 5 } } }, x = { y = { z = "deep" } },
          [true] = "t", [false] = 0, [2.5] = "half", [-1] = "neg" }
      end
      local arg = sample()
      arg[{ "key" }] = "table key"
      local r, tkey = lasync.to_thread(function(t)
        local found
        for k, v in pairs(t) do
          if type(k) == "table" then found = k end
        end
        local desc = found[1] .. "=" .. t[found]
        t[found] = nil
        return t, desc
      end, arg):await()
      assert.are.same(sample(), r)
      assert.are.equal("key=table key", tkey)
    end)
  end)

  it("the same table twice is fine; copies are separate tables", function()
    helper.run(function()
      local shared = { 1, 2 }
      local a, b, same = lasync.to_thread(function(x, y)
        return x, y, x == y
      end, shared, { shared, shared }):await()
      assert.are.same({ 1, 2 }, a)
      assert.are.same({ { 1, 2 }, { 1, 2 } }, b)
      assert.is_false(same)
      assert.are_not.equal(shared, a)
    end)
  end)

  it("crosses 50 levels of nesting and refuses 200", function()
    helper.run(function()
      local r = lasync.to_thread(identity, nested(50)):await()
      local depth = 1
      while r[1] do r, depth = r[1], depth + 1 end
      assert.are.equal(50, depth)
      assert.is_true(r.leaf)
      raises_msg("lasync.to_thread: cannot copy argument #2 to another " ..
        "thread: tables are nested too deeply", lasync.to_thread, identity,
        nested(200))
    end)
  end)
end)

describe("the worker's Lua state", function()
  it("has its own globals: the caller's are not visible", function()
    helper.run(function()
      _G.lasync_thread_spec_marker = "caller"
      assert.are.equal("caller", lasync_thread_spec_marker)
      local ok, a, b, c = pcall(function()
        return lasync.to_thread(function()
          return lasync_thread_spec_marker, type(_ENV.lasync),
            type(_ENV.describe)
        end):await()
      end)
      _G.lasync_thread_spec_marker = nil
      assert(ok, a)
      assert.is_nil(a)
      assert.are.equal("nil", b)
      assert.are.equal("nil", c)
    end)
  end)

  it("globals set in the worker do not reach the caller", function()
    helper.run(function()
      lasync.to_thread(function() lasync_thread_spec_set = 1 end):await()
      assert.is_nil(rawget(_G, "lasync_thread_spec_set"))
    end)
  end)

  it("has the standard libraries and require", function()
    helper.run(function()
      local r = lasync.to_thread(function()
        return {
          string.format("%05.1f", 3.14159), table.concat({ 1, 2 }, "+"),
          math.floor(2.5), utf8.char(233), type(io.open), type(os.time),
          type(coroutine.wrap), require("string") == string,
          require("table").concat({ "a", "b" }),
        }
      end):await()
      assert.are.same({ "003.1", "1+2", 2, "é", "function", "function",
        "function", true, "ab" }, r)
    end)
  end)

  it("require loads a module from package.path", function()
    helper.run(function()
      local dir = lasync.fs.mkdtemp("/tmp/lasync-threadspec-XXXXXX")
      local name = "lasync_spec_mod_" .. dir:match("(%w+)$")
      lasync.fs.writefile(dir .. "/" .. name .. ".lua",
        "return { value = 42, where = ... }")
      local ok, v, where = pcall(function()
        return lasync.to_thread(function(d, n)
          package.path = d .. "/?.lua;" .. package.path
          local m = require(n)
          return m.value, m.where
        end, dir, name):await()
      end)
      os.execute("rm -rf '" .. dir .. "'")
      assert(ok, v)
      assert.are.equal(42, v)
      assert.are.equal(name, where)
    end)
  end)

  it("runs a function that uses only globals (its _ENV)", function()
    helper.run(function()
      assert.are.equal("xyxyxy", lasync.to_thread(function(s)
        return string.rep(s, 3)
      end, "xy"):await())
    end)
  end)
end)

describe("a worker raising an error", function()
  it("fails the task with a copy of a string error and its position",
    function()
      helper.run(function()
        local t = lasync.to_thread(function()
          local function inner() error("boom") end
          inner()
        end)
        local err = failure(t)
        assert.is_string(err)
        assert.matches("thread_spec%.lua:%d+: boom$", err)
        assert.are.equal(err, t:exception())
        assert.is_false(t:cancelled())
      end)
    end)

  it("copies a table error with its fields", function()
    helper.run(function()
      local t = lasync.to_thread(function()
        error({ code = 7, list = { 1, 2 }, msg = "structured" })
      end)
      local err = failure(t)
      assert.are.same({ code = 7, list = { 1, 2 }, msg = "structured" }, err)
    end)
  end)

  it("an error value that cannot cross becomes what of it can, never an " ..
    "address of the worker's state", function()
    helper.run(function()
      local err = failure(lasync.to_thread(function() error(io.stdout) end))
      assert.are.equal("lasync.to_thread: the error, a FILE*, cannot be " ..
        "copied to another thread", err)
      err = failure(lasync.to_thread(function()
        error({ f = print, code = "E1", n = 2, [1] = true, sub = {} })
      end))
      assert.are.same({ code = "E1", n = 2, [1] = true }, err)
      err = failure(lasync.to_thread(function()
        error(setmetatable({ message = "m", cb = print },
          { __name = "my.Error", __tostring = function() return "x" end }))
      end))
      assert.are.same({ message = "m", class = "my.Error" }, err)
    end)
  end)

  it("the task's traceback is the worker's", function()
    helper.run(function()
      local t = lasync.to_thread(function()
        local function worker_inner_function() error("deep") end
        worker_inner_function()
      end)
      failure(t)
      local tb = t:traceback()
      assert.is_string(tb)
      assert.matches("stack traceback of task 'to_thread'", tb, 1, true)
      assert.matches("worker_inner_function", tb, 1, true)
      assert.matches("thread_spec%.lua:%d+", tb)
    end)
  end)

  it("gather sees worker errors like any task error", function()
    helper.run(function()
      local a, b, c = lasync.gather(
        lasync.to_thread(function() return "fine" end),
        lasync.to_thread(function() error("bad", 0) end),
        lasync.to_thread(function() error({ n = 1 }) end),
        { return_exceptions = true })
      assert.are.equal("fine", a)
      assert.are.equal("bad", b)
      assert.are.same({ n = 1 }, c)
    end)
  end)
end)

describe("values lasync.to_thread refuses", function()
  it("a function with upvalues, naming the upvalue", function()
    helper.run(function()
      local x, y = 5, 6
      local err = raises_msg("lasync.to_thread: cannot copy the function to " ..
        "another thread: the function has upvalue x", lasync.to_thread,
        function() return x end)
      assert.is_nil(err:find("upvalue y", 1, true))
      raises_msg("the function has upvalue y", lasync.to_thread, function()
        return print(y)
      end)
    end)
  end)

  it("C functions and non-functions", function()
    helper.run(function()
      raises_msg("lasync.to_thread: cannot copy the function to another " ..
        "thread: it is a C function", lasync.to_thread, print)
      raises_msg("lasync.to_thread: expected a function (got number)",
        lasync.to_thread, 5)
      raises_msg("lasync.to_thread: expected a function (got nil)",
        lasync.to_thread, nil)
      raises_msg("lasync.to_thread: expected a function (got table)",
        lasync.to_thread, setmetatable({}, { __call = identity }))
    end)
  end)

  it("no function at all (run in a child)", function()
    local status, out, err = helper.run_script([[
      local ok, e = pcall(lasync.to_thread)
      print(ok, e)
      local loop = lasync.get_running_loop()
      ok, e = pcall(loop.run_in_executor, loop, nil)
      print(ok, e)
    ]])
    assert.are.equal("false\tlasync.to_thread: expected a function (got " ..
      "no value)\nfalse\tlasync.Loop:run_in_executor: expected a function " ..
      "(got no value)\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, status)
  end)

  it("userdata, functions, coroutines and cycles in arguments", function()
    helper.run(function()
      raises_msg("lasync.to_thread: cannot copy argument #2 to another " ..
        "thread: it contains a userdata", lasync.to_thread, identity,
        io.stdout)
      raises_msg("lasync.to_thread: cannot copy argument #3 to another " ..
        "thread: it contains a userdata", lasync.to_thread, identity, 1,
        { deep = { io.stderr } })
      raises_msg("lasync.to_thread: cannot copy argument #2 to another " ..
        "thread: it contains a function (only the function run can be one)",
        lasync.to_thread, identity, identity)
      raises_msg("lasync.to_thread: cannot copy argument #2 to another " ..
        "thread: it contains a function", lasync.to_thread, identity,
        { cb = print })
      raises_msg("lasync.to_thread: cannot copy argument #2 to another " ..
        "thread: it contains a thread", lasync.to_thread, identity,
        coroutine.create(print))
      local cyc = { a = {} }
      cyc.a.back = cyc
      raises_msg("lasync.to_thread: cannot copy argument #2 to another " ..
        "thread: a table contains itself (a cycle)", lasync.to_thread,
        identity, cyc)
      raises_msg("it contains a userdata", lasync.to_thread, identity,
        lasync.Future())
      -- a refused call starts nothing (helper.run checks no task is left)
    end)
  end)

  it("results that cannot cross fail the task with a clear error",
    function()
      helper.run(function()
        local err = failure(lasync.to_thread(function() return io.stdout end))
        assert.are.equal("lasync.to_thread: cannot copy result #1 to " ..
          "another thread: it contains a userdata", err)
        err = failure(lasync.to_thread(function() return 1, print end))
        assert.are.equal("lasync.to_thread: cannot copy result #2 to " ..
          "another thread: it contains a function (only the function run " ..
          "can be one)", err)
        err = failure(lasync.to_thread(function()
          local t = {}
          t[1] = t
          return t
        end))
        assert.are.equal("lasync.to_thread: cannot copy result #1 to " ..
          "another thread: a table contains itself (a cycle)", err)
        err = failure(lasync.to_thread(function()
          return coroutine.create(print)
        end))
        assert.matches("cannot copy result #1 to another thread: it " ..
          "contains a thread", err, 1, true)
      end)
    end)

  it("cannot be used outside a running loop", function()
    raises_msg("lasync.to_thread: no running event loop", lasync.to_thread,
      identity)
  end)
end)

describe("lasync.to_thread and the loop", function()
  it("a blocking worker does not stall the loop: a ticker keeps ticking",
    function()
      helper.run(function()
        local ticks, running = 0, true
        local ticker = lasync.spawn(function()
          while running do
            ticks = ticks + 1
            lasync.sleep(0.005)
          end
        end)
        local t0 = helper.now()
        local r = lasync.to_thread(function()
          os.execute("sleep 0.2") -- blocks 0.2 s of wall-clock time
          return "worked"
        end):await()
        running = false
        ticker:await()
        assert.are.equal("worked", r)
        assert(helper.now() - t0 >= 0.15)
        assert(ticks >= 10, "the ticker ran only " .. ticks .. " times")
      end)
    end)

  it("100 concurrent calls via gather", function()
    helper.run(function()
      local aws = {}
      for i = 1, 100 do
        aws[i] = lasync.to_thread(function(n)
          return { n = n, sq = n * n, s = ("item %d"):format(n) }
        end, i)
      end
      local res = lasync.gather(aws)
      assert.are.equal(100, res.n)
      for i = 1, 100 do
        assert.are.same({ n = i, sq = i * i, s = ("item " .. i) }, res[i])
      end
    end)
  end)

  it("blocking calls run in parallel on the pool", function()
    helper.run(function()
      local t0 = helper.now()
      local aws = {}
      for i = 1, 4 do
        aws[i] = lasync.to_thread(function(k)
          os.execute("sleep 0.2")
          return k
        end, i)
      end
      local a, b, c, d = lasync.gather(table.unpack(aws))
      assert.are.same({ 1, 2, 3, 4 }, { a, b, c, d })
      local took = helper.now() - t0
      assert(took >= 0.19 and took < 0.6, ("took %.3f s"):format(took))
    end)
  end)

  it("loop:run_in_executor(nil, fn, ...) is to_thread", function()
    helper.run(function()
      local loop = lasync.get_running_loop()
      local t = loop:run_in_executor(nil, function(a, b)
        return a + b, nil, "x"
      end, 1, 2)
      assert.are.equal("to_thread", t:get_name())
      assert.are.same({ n = 3, 3, nil, "x" }, table.pack(t:await()))
      raises_msg("lasync.Loop:run_in_executor: only the default executor " ..
        "(nil) exists", loop.run_in_executor, loop, {}, identity)
      raises_msg("lasync.Loop:run_in_executor: only the default executor " ..
        "(nil) exists", loop.run_in_executor, loop, false, identity)
      raises_msg("the function has upvalue loop", loop.run_in_executor, loop,
        nil, function() return loop end)
      raises_msg("lasync.Loop:run_in_executor: expected a function (got " ..
        "no value)", loop.run_in_executor, loop)
    end)
  end)
end)

describe("cancelling a to_thread task", function()
  it("raises CancelledError; the running function finishes on its own",
    function()
      helper.run(function()
        local path = flag_path()
        -- the worker says it runs (path.started), then waits (wall-clock
        -- bounded) until told to go on (path.go), after the cancel
        local t = lasync.to_thread(function(p)
          local function exists(name)
            local f = io.open(name)
            if f then f:close() end
            return f ~= nil
          end
          io.open(p .. ".started", "w"):close()
          local limit = os.time() + 10
          while not exists(p .. ".go") and os.time() < limit do end
          local f = io.open(p .. ".part", "w")
          f:write("ran")
          f:close()
          os.rename(p .. ".part", p) -- appears whole
          return "dropped"
        end, path)
        helper.wait_until(function() return exists(path .. ".started") end)
        assert.is_true(t:cancel())
        local err = failure(t)
        assert(lasync.is_cancelled(err), helper.show(err))
        assert.is_true(t:cancelled())
        io.open(path .. ".go", "w"):close()
        -- it finishes; its results go nowhere
        helper.wait_until(function() return exists(path) end)
        os.remove(path .. ".started")
        os.remove(path .. ".go")
        assert.are.equal("ran", helper.slurp(path))
        assert.is_true(t:cancelled())
      end)
    end)

  it("cancelled before its first step: CancelledError", function()
    helper.run(function()
      local t = lasync.to_thread(function() return 1 end)
      t:cancel()
      local err = failure(t)
      assert(lasync.is_cancelled(err), helper.show(err))
      lasync.sleep(0.02)
    end)
  end)

  it("a queued call whose task was cancelled does not run", function()
    helper.run(function()
      local path = os.tmpname()
      os.remove(path)
      local blockers = {}
      for i = 1, 8 do -- more than the pool has threads
        blockers[i] = lasync.to_thread(function()
          os.execute("sleep 0.1")
        end)
      end
      local t = lasync.to_thread(function(p)
        local f = io.open(p, "w")
        f:write("ran")
        f:close()
      end, path)
      helper.settle_all() -- t is queued behind blockers that take 0.1 s
      t:cancel()
      failure(t)
      lasync.gather(table.unpack(blockers))
      lasync.sleep(0.05)
      local f = io.open(path)
      if f then f:close() end
      os.remove(path)
      assert.is_nil(f, "the cancelled call ran anyway")
    end)
  end)

  it("cancelling a gather of 50 calls cancels them all", function()
    helper.run(function()
      local aws = {}
      for i = 1, 50 do
        aws[i] = lasync.to_thread(function(n)
          os.execute("sleep 0.02") -- all 50 take 0.25 s or more on 4 threads
          return n
        end, i)
      end
      local g = lasync.spawn(lasync.gather, aws)
      helper.settle_all() -- g awaits the calls, most of them still queued
      g:cancel()
      local err = failure(g)
      assert(lasync.is_cancelled(err), helper.show(err))
      local cancelled = 0
      for _, t in ipairs(aws) do
        assert.is_true(t:done())
        if t:cancelled() then cancelled = cancelled + 1 end
      end
      assert(cancelled > 0)
      lasync.sleep(0.2) -- the workers drain
    end)
  end)

  it("a run ending with a call still running leaves nothing behind",
    function()
      local t0 = os.clock()
      helper.run(function()
        local t = lasync.to_thread(function()
          local t = os.clock() + 0.05
          while os.clock() < t do end
        end)
        lasync.sleep(0.005)
        t:cancel()
      end)
      assert(os.clock() - t0 < 1)
    end)
end)

describe("lasync.Thread", function()
  it("needs a function", function()
    helper.run(function()
      raises_msg("lasync.Thread: expected a function (got no value)",
        lasync.Thread)
    end)
  end)

  it("a job still running when the thread stops fails its future",
    function()
      helper.run(function()
        local th = lasync.Thread(function() end)
        local started = flag_path()
        local f = th:submit(function(p)
          io.open(p, "w"):close()
          _G.lasync.sleep(5)
        end, started)
        helper.wait_until(function() return exists(started) end)
        os.remove(started)
        th:stop()
        local ok, err = pcall(lasync.wait_for, f, 2)
        assert.is_false(ok)
        assert.are.equal("lasync.Thread: the thread stopped first", err)
        th:join()
      end)
    end)

  it("results that cannot cross fail the future with the reason",
    function()
      helper.run(function()
        local th = lasync.Thread(function() end)
        local ok, err = pcall(lasync.wait_for,
          th:submit(function() return print end), 2)
        assert.is_false(ok)
        assert.are.equal("lasync.Thread:submit: cannot copy result #1 to " ..
          "another thread: it contains a function (only the function run " ..
          "can be one)", err)
        th:stop()
        th:join()
      end)
    end)

  it("a run ending with the thread busy leaves nothing behind", function()
    helper.run(function()
      local th = lasync.Thread(function() end)
      local started = flag_path()
      th:submit(function(p)
        io.open(p, "w"):close()
        _G.lasync.sleep(5)
      end, started)
      helper.wait_until(function() return exists(started) end)
      os.remove(started)
    end)
  end)

  it("a call_soon error is reported on the thread (run in a child)",
    function()
      local status, out, err = helper.run_script([[
        local th = lasync.Thread(function() end)
        th:call_soon(function() error("call_soon boom") end)
        th:submit(function() end):await() -- runs after the call_soon
        th:stop()
        th:join()
        print("joined")
      ]])
      assert.are.equal(0, status)
      assert.are.equal("joined\n", out)
      assert.matches("call_soon boom", err, 1, true)
    end)
end)
