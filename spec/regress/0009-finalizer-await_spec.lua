-- issue 9, item 2: an await where the task cannot suspend (a finalizer, a
-- metamethod or a callback called from C) registered the task as waiting,
-- then failed with "attempt to yield across a C-call boundary"; the stale
-- registration later resumed the task inside an unrelated await. Every
-- await must now refuse at once, leaving no trace, and lasync's own calls
-- of user metamethods (the never-retrieved report) must survive them.
local helper = require "helper"
local lasync = helper.lasync

local MSG = "cannot await here (inside a metamethod, finalizer or C call)"

-- Call fn where the task cannot suspend (from a C function: string.gsub);
-- returns pcall's results.
local function from_c(fn)
  local res
  string.gsub("x", "x", function() res = table.pack(pcall(fn)) end)
  return table.unpack(res, 1, res.n)
end

-- The task is clean: a timed sleep sleeps its time, and an await of a
-- future set later gets that future's value (a stale wake-up would resume
-- it early, with "result is not set").
local function assert_clean()
  local elapsed = helper.timed(lasync.sleep, 0.01)
  assert.is_true(elapsed >= 0.01, "elapsed " .. elapsed)
  local f = lasync.Future()
  lasync.get_running_loop():call_later(0.02, function() f:set_result("v") end)
  assert.are.equal("v", f:await())
  helper.settle_all()
end

-- A server that accepts and holds connections; returns its port and close.
local function holder()
  local srv, _, port, shutdown = helper.serve(function(r)
    r:read()
  end)
  return port, shutdown, srv
end

local cases = {
  { "sleep", "lasync.sleep", function() lasync.sleep(0.001) end },
  { "sleep(0)", "lasync.sleep", function() lasync.sleep(0) end },
  { "await", "lasync.await", function() lasync.await(lasync.Future()) end },
  { "Future:await", "lasync.await", function()
    local f = lasync.Future()
    lasync.get_running_loop():call_later(0.001, function()
      f:set_result(1)
    end)
    f:await()
  end },
  { "Task:await", "lasync.await", function()
    lasync.spawn(function() lasync.sleep(0.001) end):await()
  end },
  { "gather", "lasync.gather", function()
    lasync.gather(lasync.Future())
  end },
  { "wait", "lasync.wait", function() lasync.wait({ lasync.Future() }) end },
  { "wait_for", "lasync.wait_for", function()
    lasync.wait_for(lasync.Future(), 0.001)
  end },
  { "shield", "lasync.shield", function() lasync.shield(lasync.Future()) end },
  { "as_completed", "lasync.as_completed", function()
    for _ in lasync.as_completed({ lasync.Future() }) do end
  end },
  { "timeout", "lasync.timeout", function()
    lasync.timeout(0.001, lasync.sleep, 1)
  end },
  { "task_group", "lasync.TaskGroup:run", function()
    lasync.task_group(function() end)
  end },
  { "Event:wait", "lasync.Event:wait", function() lasync.Event():wait() end },
  { "Lock:acquire", "lasync.Lock:acquire", function(ctx)
    ctx.lock:acquire()
  end },
  { "Semaphore:acquire", "lasync.Semaphore:acquire", function()
    lasync.Semaphore(0):acquire()
  end },
  { "Queue:get", "lasync.Queue:get", function() lasync.Queue():get() end },
  { "Queue:put", "lasync.Queue:put", function()
    local q = lasync.Queue(1)
    q:put_nowait(1)
    q:put(2)
  end },
  { "Condition:wait", "lasync.Condition", function(ctx)
    ctx.cond:wait()
  end },
  { "fs.stat", "lasync.fs.stat", function() lasync.fs.stat("/") end },
  { "File:read", "lasync.File:read", function(ctx) ctx.file:read(10) end },
  { "getaddrinfo", "lasync.getaddrinfo", function()
    lasync.getaddrinfo("127.0.0.1", 1)
  end },
  { "open_connection", "lasync.open_connection", function(ctx)
    lasync.open_connection("127.0.0.1", ctx.port)
  end },
  { "StreamReader:read", "lasync.StreamReader:read", function(ctx)
    ctx.reader:read()
  end },
  { "StreamWriter:drain", nil, function(ctx) ctx.writer:drain() end },
}

describe("regress 0009: an await where the task cannot suspend", function()
  for _, case in ipairs(cases) do
    local name, fname, fn = case[1], case[2], case[3]
    it(name .. " raises at once and leaves no trace", function()
      helper.in_dir(function(dir)
        local ctx = {}
        ctx.lock = lasync.Lock()
        ctx.lock:acquire()
        ctx.cond = lasync.Condition()
        ctx.cond:acquire()
        lasync.fs.writefile(dir .. "/f", "hello")
        ctx.file = lasync.fs.open(dir .. "/f")
        local port, shutdown = holder()
        ctx.port = port
        ctx.reader, ctx.writer = lasync.open_connection("127.0.0.1", port)
        local ok, err = from_c(function() return fn(ctx) end)
        if fname then -- drain with nothing to drain returns at once
          assert.is_false(ok)
          assert.is_string(err)
          assert.matches(fname, err, 1, true)
          assert.matches(MSG, err, 1, true)
        end
        assert_clean()
        assert.are.equal("hello", ctx.file:read(10))
        ctx.file:close()
        ctx.writer:close()
        ctx.writer:wait_closed()
        ctx.cond:release()
        ctx.lock:release()
        shutdown()
      end)
    end)
  end

  it("the error is raised before any task is started", function()
    helper.run(function()
      local started = 0
      local ok = from_c(function()
        return lasync.gather(function() started = started + 1 end)
      end)
      assert.is_false(ok)
      ok = from_c(function()
        return lasync.wait({ function() started = started + 1 end })
      end)
      assert.is_false(ok)
      ok = from_c(function()
        return lasync.shield(function() started = started + 1 end)
      end)
      assert.is_false(ok)
      helper.settle_all()
      assert.are.equal(0, started)
    end)
  end)

  it("a finalizer run by the task's own collection step that sleeps",
    function()
      helper.run(function()
        local got
        do
          local _ = setmetatable({}, { __gc = function()
            got = table.pack(pcall(lasync.sleep, 0.001))
          end })
        end
        collectgarbage()
        collectgarbage()
        assert.is_false(got[1])
        assert.matches("lasync.sleep: " .. MSG, got[2], 1, true)
        assert_clean()
      end)
    end)

  it("a finalizer that closes a lasync file closes it at once", function()
    helper.in_dir(function(dir)
      lasync.fs.writefile(dir .. "/f", "x")
      local file = lasync.fs.open(dir .. "/f")
      local fd = file:fileno()
      local got
      do
        local _ = setmetatable({}, { __gc = function()
          got = table.pack(pcall(file.close, file))
        end })
      end
      collectgarbage()
      collectgarbage()
      assert.is_true(got[1], tostring(got[2]))
      assert.is_nil(file:fileno())
      assert.is_number(fd)
      assert_clean()
    end)
  end)

  it("the never-retrieved report survives a __tostring that errors or "
    .. "awaits", function()
      for _, tostr in ipairs {
        function() error("tostring failed") end,
        function() lasync.sleep(0.001) return "slept" end,
        function() return lasync.Future():await() end,
      } do
        helper.run(function()
          local reports = helper.capture_reports()
          do
            local t = lasync.spawn(function()
              error(setmetatable({}, { __tostring = tostr }))
            end)
            helper.settle_all()
            assert.is_true(t:done())
          end
          collectgarbage()
          collectgarbage()
          assert_clean()
          assert.are.equal(1, #reports)
          assert.matches("never retrieved", reports[1].message, 1, true)
        end)
      end
    end)

  it("the default report prints a fallback for a __tostring that awaits",
    function()
      local code, out, err = helper.run_script([[
do
  local t = lasync.create_task(function()
    error(setmetatable({}, { __tostring = function()
      lasync.sleep(0.001)
      return "never"
    end }))
  end)
  lasync.sleep(0)
  lasync.sleep(0)
end
collectgarbage()
collectgarbage()
local f = lasync.Future()
lasync.get_running_loop():call_later(0.01, function() f:set_result("ok") end)
print(f:await())
]])
      assert.are.equal(0, code, err)
      assert.are.equal("ok\n", out)
      assert.matches("never retrieved", err, 1, true)
    end)
end)

-- Found with item 2: the same stale state came from resuming a suspended
-- task's coroutine by hand (coroutine.resume(t:get_coro())): its
-- continuation ran with nothing delivered ("result is not set", a task
-- that never finished, a deadlock). Only the scheduler resumes it now; a
-- stranger's resume returns at once and changes nothing.
describe("regress 0009: a suspended task resumed by someone else", function()
  local loop_later = function(delay, fn)
    lasync.get_running_loop():call_later(delay, fn)
  end
  local kinds = {
    sleep = function() lasync.sleep(0.01) return "slept" end,
    future = function()
      local f = lasync.Future()
      loop_later(0.01, function() f:set_result("f") end)
      return f:await()
    end,
    event = function()
      local e = lasync.Event()
      loop_later(0.01, function() e:set() end)
      e:wait()
      return "e"
    end,
    queue = function()
      local q = lasync.Queue()
      loop_later(0.01, function() q:put_nowait("q") end)
      return q:get()
    end,
    fs = function() return lasync.fs.stat("/").type end,
  }
  for name, body in pairs(kinds) do
    it("waiting in " .. name, function()
      helper.run(function()
        local expected = lasync.spawn(body):await()
        local t = lasync.spawn(body)
        lasync.sleep(0)
        local res = table.pack(coroutine.resume(t:get_coro(), "junk"))
        assert.are.same({ true, n = 1 }, res)
        assert.are.equal("suspended", coroutine.status(t:get_coro()))
        assert.are.equal(expected, t:await())
        assert_clean()
      end)
    end)
  end
end)
