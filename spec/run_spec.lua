-- lasync.run: results, errors, leftover tasks, nesting and deadlocks,
-- checked against asyncio.run. (What run prints on stderr is checked
-- through the lasync command in cli_spec.)
local helper = require "helper"
local lasync = helper.lasync
local escape = helper.escape

describe("lasync.run", function()
  it("returns every result of main, nils included", function()
    local res = table.pack(lasync.run(function()
      lasync.sleep(0.001)
      return nil, "two", nil
    end))
    assert.are.equal(3, res.n)
    assert.are.same({ nil, "two", nil }, { res[1], res[2], res[3] })
    assert.are.equal(0, select("#", lasync.run(function() end)))
  end)

  it("passes its extra arguments to main", function()
    local res = table.pack(lasync.run(function(...)
      return select("#", ...), ...
    end, "a", nil, 3))
    assert.are.same({ 3, "a", nil, 3, n = 4 }, res)
  end)

  it("runs main as a task named 'main' on a fresh running loop", function()
    local loops = {}
    for i = 1, 2 do
      lasync.run(function()
        local t = lasync.current_task()
        assert.are.equal("main", t:get_name())
        loops[i] = lasync.get_running_loop()
        assert.is_true(loops[i]:is_running())
      end)
    end
    assert.are_not.equal(loops[1], loops[2])
    assert.is_true(loops[1]:is_closed())
    assert.is_true(loops[2]:is_closed())
  end)

  it("leaves no running loop behind", function()
    lasync.run(function() lasync.sleep(0) end)
    assert.has_error(lasync.get_running_loop)
    assert.is_nil(lasync.current_task())
  end)

  it("re-raises main's error unchanged", function()
    local e = { "error table" }
    local ok, err = pcall(lasync.run, function()
      lasync.sleep(0)
      error(e)
    end)
    assert.is_false(ok)
    assert.are.equal(e, err)
    ok, err = pcall(lasync.run, function() error("plain", 0) end)
    assert.is_false(ok)
    assert.are.equal("plain", err)
  end)

  it("keeps string errors equal to what main raised (with position)",
    function()
      local function fail() error("with position") end
      local _, direct = pcall(fail)
      local ok, err = pcall(lasync.run, function()
        lasync.sleep(0)
        fail()
      end)
      assert.is_false(ok)
      assert.are.equal(direct, err)
    end)

  it("re-raises an error that came from an awaited task unchanged",
    function()
      local MyError = lasync.error_class("MyError")
      local e = MyError("deep")
      local ok, err = pcall(lasync.run, function()
        return lasync.await(function()
          lasync.sleep(0)
          error(e)
        end)
      end)
      assert.is_false(ok)
      assert.are.equal(e, err)
    end)

  it("raises CancelledError when main ends cancelled", function()
    local ok, err = pcall(lasync.run, function()
      lasync.current_task():cancel("self")
      lasync.sleep(0)
    end)
    assert.is_false(ok)
    assert.is_true(lasync.is_cancelled(err))
    assert.are.equal("self", err.message)
  end)

  it("fails with the documented message when main does a bare "
    .. "coroutine.yield", function()
      local ok, err = pcall(lasync.run, function() coroutine.yield() end)
      assert.is_false(ok)
      assert.are.equal("coroutine.yield called in a task: use " ..
        "lasync.sleep(0) to yield to the event loop", err)
    end)

  it("works when called from inside a plain coroutine", function()
    local r = coroutine.wrap(function()
      return lasync.run(function()
        lasync.sleep(0.001)
        return "from a coroutine"
      end)
    end)()
    assert.are.equal("from a coroutine", r)
  end)

  it("rejects a non-function", function()
    local err = helper.error_of(lasync.run, 42)
    assert.matches(escape("lasync.run: expected a function (got number)"), err)
  end)

  it("accepts a callable table", function()
    local main = setmetatable({}, { __call = function(_, x) return x end })
    assert.are.equal("called", lasync.run(main, "called"))
  end)

  it("cannot be called inside a running loop", function()
    helper.run(function()
      local ran = false
      local err = helper.error_of(lasync.run, function() ran = true end)
      assert.matches(escape("lasync.run: cannot be called while an event " ..
        "loop is running (from a task, await the function instead)"), err)
      assert.is_false(ran)
    end, 1)
  end)

  it("cannot be called from a callback of a running loop", function()
    helper.run(function()
      local f = lasync.Future()
      lasync.get_running_loop():call_soon(function()
        f:set_result(pcall(lasync.run, function() end))
      end)
      local ok, err = f:await()
      assert.is_false(ok)
      assert.matches("lasync.run: cannot be called while an event loop is " ..
        "running", err, 1, true)
    end, 1)
  end)

  it("detects a deadlock", function()
    local ok, err = pcall(lasync.run, function()
      lasync.Future():await()
    end)
    assert.is_false(ok)
    assert.matches(escape("lasync.run: deadlock: the main task is waiting " ..
      "for something that nothing left can complete (no tasks, timers or " ..
      "I/O remain)"), err)
  end)

  it("detects a deadlock between tasks waiting on each other", function()
    local seen
    local ok, err = pcall(lasync.run, function()
      local f = lasync.Future()
      local t = lasync.create_task(function()
        local _, e = pcall(f.await, f)
        seen = e
        error(e, 0)
      end)
      t:await()
    end)
    assert.is_false(ok)
    assert.matches("lasync.run: deadlock", err, 1, true)
    -- the stuck task was cancelled as a leftover
    assert.is_true(lasync.is_cancelled(seen))
  end)
end)

describe("lasync.run in a child lua5.4", function()
  -- a child process, since this crashed the interpreter (heap corruption)
  local function run_lua(source)
    local script = helper.temp_script(source)
    local code, out, err = helper.capture("lua5.4 " .. script)
    os.remove(script)
    return code, out, err
  end

  it("returns hundreds of results from main", function()
    local code, out, err = run_lua([[
local lasync = require "lasync"
local res = table.pack(lasync.run(function()
  local v = {}
  for i = 1, 1000 do v[i] = i end
  return table.unpack(v, 1, 1000)
end))
print(res.n, res[1000])
]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("1000\t1000\n", out)
  end)
end)

describe("lasync.run leftover tasks", function()
  it("cancels the tasks main left pending; they see CancelledError",
    function()
      local log = {}
      local r = lasync.run(function()
        for i = 1, 3 do
          lasync.create_task({ name = "bg" .. i }, function()
            local ok, err = pcall(lasync.sleep, 10)
            log[#log + 1] = i .. (lasync.is_cancelled(err) and " cancelled"
              or " ?")
            error(err, 0)
          end)
        end
        lasync.sleep(0.001)
        return "main done"
      end)
      assert.are.equal("main done", r)
      table.sort(log)
      assert.are.same({ "1 cancelled", "2 cancelled", "3 cancelled" }, log)
    end)

  it("waits for the cleanup of cancelled leftovers, awaits included",
    function()
      local log = {}
      lasync.run(function()
        lasync.create_task(function()
          local ok = pcall(lasync.sleep, 10)
          lasync.sleep(0.002) -- cleanup that awaits
          log[#log + 1] = "cleaned up"
        end)
        lasync.sleep(0)
      end)
      assert.are.same({ "cleaned up" }, log)
    end)

  it("a leftover that never started never runs its body", function()
    local ran = false
    lasync.run(function()
      lasync.create_task(function() ran = true end)
    end)
    assert.is_false(ran)
  end)

  it("cancels leftovers after main failed too, then re-raises", function()
    local seen
    local ok, err = pcall(lasync.run, function()
      lasync.create_task(function()
        local _, e = pcall(lasync.sleep, 10)
        seen = e
      end)
      lasync.sleep(0)
      error("main failed", 0)
    end)
    assert.is_false(ok)
    assert.are.equal("main failed", err)
    assert.is_true(lasync.is_cancelled(seen))
  end)

  it("leaves no anchored task or open loop", function()
    collectgarbage()
    collectgarbage()
    local before = lasync._stats()
    lasync.run(function()
      lasync.create_task(function() lasync.sleep(10) end)
      lasync.get_running_loop():call_later(10, function() end)
      lasync.sleep(0)
    end)
    collectgarbage()
    collectgarbage()
    local after = lasync._stats()
    assert.are.equal(before.anchors, after.anchors)
    assert.are.equal(before.loops, after.loops)
  end)
end)
