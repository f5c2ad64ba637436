-- Issue 9, found by the API fuzzer: errors that named the wrong function.
-- The __close shared by Lock, Semaphore and BoundedSemaphore named
-- Lock:release (or the receiver's release); Condition:wait_for without the
-- lock named Condition:wait, Condition.__close named Lock:release; the
-- Lua-written methods worded their receiver errors "expected a
-- lasync.Process" where the C core says "expected a Process (got nil)".
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

describe("regress 0009: lock and semaphore errors name their class", function()
  for _, case in ipairs {
    { "Lock", lasync.Lock }, { "Semaphore", lasync.Semaphore },
    { "BoundedSemaphore", lasync.BoundedSemaphore },
  } do
    local name, make = case[1], case[2]
    it(name .. "'s metamethods and methods refuse another receiver", function()
      local x = make()
      local mt = getmetatable(x)
      raises_msg(("lasync.%s:__close: expected a %s (got nil)")
        :format(name, name), mt.__close, nil)
      raises_msg(("lasync.%s:__tostring: expected a %s (got table)")
        :format(name, name), mt.__tostring, {})
      raises_msg(("lasync.%s:release: expected a %s (got number)")
        :format(name, name), x.release, 5)
      raises_msg(("lasync.%s:locked: expected a %s (got lasync.Future)")
        :format(name, name), x.locked, lasync.Future())
      local other = name == "Lock" and lasync.Semaphore() or lasync.Lock()
      raises_msg(("lasync.%s:__close: expected a %s (got %s)")
        :format(name, name, getmetatable(other).__name), mt.__close, other)
      helper.run(function()
        raises_msg(("lasync.%s:acquire: expected a %s (got table)")
          :format(name, name), x.acquire, {})
      end)
    end)
  end

  it("__close of a lock or bounded semaphore not held names __close",
    function()
      local lock = lasync.Lock()
      raises_msg("lasync.Lock:__close: the lock is not acquired",
        getmetatable(lock).__close, lock)
      local b = lasync.BoundedSemaphore(1)
      raises_msg("lasync.BoundedSemaphore:__close: released more times " ..
        "than acquired (the value would exceed 1)", getmetatable(b).__close,
        b)
      raises_msg("lasync.Lock:release: the lock is not acquired",
        lock.release, lock)
    end)

  it("hold() still releases at the end of the scope", function()
    helper.run(function()
      for _, x in ipairs { lasync.Lock(), lasync.Semaphore(1),
        lasync.BoundedSemaphore(1) } do
        do
          local _ <close> = x:hold()
          assert.is_true(x:locked())
        end
        assert.is_false(x:locked())
      end
    end)
  end)
end)

describe("regress 0009: Condition errors name the method", function()
  it("wait_for without the lock names wait_for", function()
    helper.run(function()
      local c = lasync.Condition()
      raises_msg("lasync.Condition:wait_for: the lock is not acquired",
        c.wait_for, c, function() return false end)
      -- a predicate already true needs no wait (as asyncio)
      assert.are.equal(7, c:wait_for(function() return 7 end))
    end)
  end)

  it("release and __close without the lock name themselves", function()
    local c = lasync.Condition()
    raises_msg("lasync.Condition:release: the lock is not acquired",
      c.release, c)
    raises_msg("lasync.Condition:__close: the lock is not acquired",
      getmetatable(c).__close, c)
    raises_msg("lasync.Condition:__close: expected a Condition (got nil)",
      getmetatable(c).__close, nil)
    raises_msg("lasync.Condition:__close: expected a Condition (got " ..
      "lasync.Lock)", getmetatable(c).__close, lasync.Lock())
  end)

  it("a lock of another class is refused by its class name", function()
    raises_msg("lasync.Condition: expected a Lock (got lasync.Semaphore)",
      lasync.Condition, lasync.Semaphore())
  end)
end)

describe("regress 0009: Lua-written methods word receivers as C does",
  function()
    it("Process:communicate", function()
      helper.run(function()
        local p = lasync.subprocess.exec("true", {})
        raises_msg("lasync.Process:communicate: expected a Process (got nil)",
          p.communicate, nil)
        raises_msg("lasync.Process:communicate: expected a Process (got " ..
          "lasync.Future)", p.communicate, lasync.Future())
        p:wait()
      end)
    end)

    it("File methods written in Lua", function()
      helper.in_dir(function(dir)
        lasync.fs.writefile(dir .. "/f", "x")
        local f = lasync.fs.open(dir .. "/f")
        raises_msg("lasync.File:lines: expected a File (got nil)", f.lines,
          nil)
        raises_msg("lasync.File:lines: expected a File (got lasync.Lock)",
          f.lines, lasync.Lock())
        f:close()
      end)
    end)

    it("TaskGroup and Barrier name the class a receiver has", function()
      local tg = lasync.TaskGroup()
      raises_msg("lasync.TaskGroup:create_task: expected a TaskGroup (got " ..
        "lasync.Lock)", tg.create_task, lasync.Lock(), print)
      local b = lasync.Barrier(2)
      raises_msg("lasync.Barrier:wait: expected a Barrier (got function)",
        b.wait, print)
    end)
  end)

describe("regress 0009: Process:communicate after a failed or cancelled one",
  function()
    it("refuses input when stdin is closed, before starting anything",
      function()
        helper.run(function()
          local p = lasync.subprocess.exec("cat", {}, { stdin = "pipe",
            stdout = "pipe" })
          p.stdin:close()
          raises_msg("lasync.Process:communicate: stdin is closed",
            p.communicate, p, "data")
          -- nothing was left reading: communicate works again
          local out, err = p:communicate()
          assert.are.equal("", out)
          assert.is_nil(err)
        end)
      end)

    it("a child that fails cancels the others", function()
      helper.in_dir(function(dir)
        -- writes to stdout and stderr once the file go exists
        local p = lasync.subprocess.exec("sh", { "-c", "while [ ! -e go ]; " ..
          "do sleep 0.01; done; echo out; echo err >&2" }, { cwd = dir,
          stdout = "pipe", stderr = "pipe" })
        -- another task reads stdout: communicate's reader of stdout fails
        local reading = lasync.spawn(function() return p.stdout:read() end)
        lasync.sleep(0)
        local err = helper.error_of(p.communicate, p)
        assert.matches("another task is already reading", tostring(err), 1,
          true)
        -- its reader of stderr did not stay behind: this one can read it
        reading:cancel()
        lasync.sleep(0)
        lasync.fs.writefile(dir .. "/go", "")
        local out, errout = p:communicate()
        assert.are.equal("out\n", out)
        assert.are.equal("err\n", errout)
      end)
    end)
  end)
