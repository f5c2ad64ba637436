-- issue 9: values crossing to and from worker threads.
-- * A to_thread error that could not be copied back became its tostring()
--   in the worker, "table: 0x..." (an address in another state); now it
--   becomes what of it can cross. Thread:submit did the same with every
--   error that was not a string.
-- * to_thread refused a recursive local function ("the function has
--   upvalue fib"); a function whose upvalues are only itself and _ENV now
--   crosses, rebuilt with both.
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

local function failure(f)
  local ok, err = pcall(f.await, f)
  assert.is_false(ok, "expected a failure")
  return err
end

local function no_address(err)
  if type(err) == "string" then
    assert.is_nil(err:find("0x%x+"), err)
  else
    for k, v in pairs(err) do
      assert.is_nil(tostring(v):find("0x%x+"), tostring(k))
    end
  end
end

describe("issue 9: an error that cannot cross from a worker", function()
  it("to_thread: a table keeps its plain fields and its class name",
    function()
      helper.run(function()
        local err = failure(lasync.to_thread(function()
          error(setmetatable({ message = "disk on fire", code = "EIO",
            errno = 5, fatal = true, retry = print, detail = { io.stdout } },
            { __name = "app.DiskError" }))
        end))
        assert.are.same({ message = "disk on fire", code = "EIO", errno = 5,
          fatal = true, class = "app.DiskError" }, err)
        no_address(err)
      end)
    end)

  it("to_thread: another value is named by its type, not its address",
    function()
      helper.run(function()
        local err = failure(lasync.to_thread(function()
          error(coroutine.create(print))
        end))
        assert.are.equal("lasync.to_thread: the error, a thread, cannot be " ..
          "copied to another thread", err)
        err = failure(lasync.to_thread(function() error(io.stderr) end))
        assert.are.equal("lasync.to_thread: the error, a FILE*, cannot be " ..
          "copied to another thread", err)
      end)
    end)

  it("the worker's traceback still comes along", function()
    helper.run(function()
      local t = lasync.to_thread(function()
        local function failing_in_worker() error({ f = print, n = 1 }) end
        failing_in_worker()
      end)
      assert.are.same({ n = 1 }, failure(t))
      assert.matches("failing_in_worker", t:traceback(), 1, true)
    end)
  end)

  it("Thread:submit: tables cross as to_thread's do", function()
    helper.run(function()
      local th = lasync.Thread(function() end)
      local err = failure(th:submit(function() error({ code = 9 }) end))
      assert.are.same({ code = 9 }, err)
      err = failure(th:submit(function() error({ code = 9, f = print }) end))
      assert.are.same({ code = 9 }, err)
      err = failure(th:submit(function() error(io.stdout) end))
      assert.are.equal("lasync.Thread:submit: the error, a FILE*, cannot " ..
        "be copied to another thread", err)
      th:stop()
      th:join()
    end)
  end)
end)

describe("issue 9: a recursive local function crosses", function()
  it("to_thread runs it with itself as its upvalue", function()
    helper.run(function()
      local function fib(n)
        if n < 2 then return n end
        return fib(n - 1) + fib(n - 2)
      end
      assert.are.equal(6765, lasync.to_thread(fib, 20):await())
    end)
  end)

  it("with _ENV after itself among its upvalues", function()
    helper.run(function()
      local function down(n)
        if n > 0 then return down(n - 1) end
        return math.floor(2.5), _VERSION
      end
      assert.are.equal("down", (debug.getupvalue(down, 1)))
      local a, b = lasync.to_thread(down, 3):await()
      assert.are.equal(2, a)
      assert.are.equal(_VERSION, b)
    end)
  end)

  it("through Thread:submit too", function()
    helper.run(function()
      local function count(n) return n == 0 and "done" or count(n - 1) end
      local th = lasync.Thread(function() end)
      assert.are.equal("done", th:submit(count, 5):await())
      th:stop()
      th:join()
    end)
  end)

  it("any other upvalue is still refused, named", function()
    helper.run(function()
      local base = 1
      local function f(n) return n == 0 and base or f(n - 1) end
      raises_msg("lasync.to_thread: cannot copy the function to another " ..
        "thread: the function has upvalue base", lasync.to_thread, f, 2)
    end)
  end)
end)
