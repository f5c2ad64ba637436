-- issue 9: the Lua-written functions (lua/lasync/init.lua, sync.lua)
-- check every argument before doing anything, with errors that name the
-- function and the argument: lasync.timeout(1) called nil, wait(aws, 0.5)
-- indexed a number, wait's bad timeout was called "delay", timeout_at's
-- NaN too, and wait spawned the tasks of its list before refusing its
-- options (a stray "cancelling 1 pending task" at exit).
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

local function ntasks() return #lasync.all_tasks() end

-- fn(...) raises `text` and has started no task
local function refuses(text, fn, ...)
  local before = ntasks()
  raises_msg(text, fn, ...)
  assert.are.equal(before, ntasks(), "a task was started before: " .. text)
end

local function never() error("this awaitable must not run") end

describe("issue 9: argument checks of the Lua-written functions", function()
  it("lasync.timeout and timeout_at need the function to run", function()
    helper.run(function()
      refuses("lasync.timeout: expected a function to run within the " ..
        "delay, as in lasync.timeout(delay, fn, ...) (got nil)",
        lasync.timeout, 1)
      refuses("lasync.timeout_at: expected a function to run until the " ..
        "deadline, as in lasync.timeout_at(when, fn, ...) (got number)",
        lasync.timeout_at, 1, 2)
      refuses("lasync.timeout: delay must be a number or nil (got string)",
        lasync.timeout, "1", print)
    end)
    raises_msg("lasync.timeout: expected a function", lasync.timeout, 1)
  end)

  it("timeout_at names its argument 'when'", function()
    helper.run(function()
      refuses("lasync.timeout_at: when is NaN", lasync.timeout_at, 0 / 0,
        print)
      refuses("lasync.timeout_at: when must be a number or nil (got table)",
        lasync.timeout_at, {}, print)
    end)
  end)

  it("wait and as_completed take options as a table only", function()
    helper.run(function()
      local f = lasync.Future()
      refuses("lasync.wait: options must be a table such as {timeout = 1} " ..
        "(got number)", lasync.wait, { f }, 0.5)
      refuses("lasync.as_completed: options must be a table such as " ..
        "{timeout = 1} (got number)", lasync.as_completed, { f }, 1)
      refuses("lasync.wait: unknown option [1] (options are named, as in " ..
        "{timeout = 1})", lasync.wait, { never }, { 0.5 })
      refuses("lasync.wait: unknown option 'timout'", lasync.wait, { never },
        { timout = 1 })
      refuses("lasync.as_completed: unknown option 'return_when'",
        lasync.as_completed, { never }, { return_when = "FIRST_COMPLETED" })
    end)
  end)

  it("wait, as_completed and wait_for name a bad timeout 'timeout'",
    function()
      helper.run(function()
        refuses("lasync.wait: timeout must be a number or nil (got string)",
          lasync.wait, { never }, { timeout = "x" })
        refuses("lasync.as_completed: timeout is NaN", lasync.as_completed,
          { never }, { timeout = 0 / 0 })
        refuses("lasync.wait_for: timeout must be a number or nil (got " ..
          "boolean)", lasync.wait_for, never, true)
      end)
    end)

  it("wait checks return_when before it starts the tasks of its list",
    function()
      helper.run(function()
        refuses("lasync.wait: return_when must be lasync.FIRST_COMPLETED, " ..
          "FIRST_EXCEPTION or ALL_COMPLETED (got \"FIRST\")", lasync.wait,
          { never }, { return_when = "FIRST" })
        refuses("lasync.wait: item #2 is not awaitable", lasync.wait,
          { never, 42 })
        refuses("lasync.as_completed: item #2 is not awaitable",
          lasync.as_completed, { never, 42 })
        refuses("lasync.shield: number is not awaitable", lasync.shield, 1)
      end)
    end)

  it("no stray 'cancelling' warning after a refused wait (run in a child)",
    function()
      local status, out, err = helper.run_script([[
        print(pcall(lasync.wait, { function() end }, { return_when = "X" }))
      ]])
      assert.are.equal(0, status)
      assert.matches("return_when must be", out, 1, true)
      assert.are.equal("", err)
    end)

  it("task groups check the body and the task's function", function()
    helper.run(function()
      refuses("lasync.task_group: expected a function (got nil)",
        lasync.task_group)
      local tg = lasync.TaskGroup()
      refuses("lasync.TaskGroup:run: expected a function (got number)",
        tg.run, tg, 5)
      local ok, err = pcall(lasync.task_group, function(g)
        g:create_task({ name = "x" }, 7)
      end)
      assert.is_false(ok)
      assert.matches("lasync.TaskGroup:create_task: expected a function " ..
        "(got number)", tostring(err), 1, true)
    end)
  end)

  it("open_udp checks every option before resolving a name", function()
    helper.run(function()
      refuses("lasync.open_udp: option 'remote_addr': port must be an " ..
        "integer from 0 to 65535 (got 70000)", lasync.open_udp,
        { local_addr = { "no-such-host.invalid", 0 },
          remote_addr = { "127.0.0.1", 70000 } })
      refuses("lasync.open_udp: option 'broadcast' must be a boolean (got " ..
        "string)", lasync.open_udp,
        { local_addr = { "no-such-host.invalid", 0 }, broadcast = "yes" })
      refuses("lasync.open_udp: unknown option 'local'", lasync.open_udp,
        { ["local"] = { "127.0.0.1", 0 } })
    end)
  end)

  it("Barrier never shows an address for a table", function()
    local err = raises_msg("lasync.Barrier: parties must be an integer > 0 " ..
      "(got table)", lasync.Barrier, {})
    assert.is_nil(err:find("0x"))
  end)

  it("ExceptionGroup's __tostring checks its receiver", function()
    raises_msg("lasync.ExceptionGroup:__tostring: expected an " ..
      "ExceptionGroup (got number)", lasync.ExceptionGroup.__tostring, 5)
    assert.are.equal("ExceptionGroup: m", tostring(lasync.ExceptionGroup("m")))
  end)

  it("Condition:notify checks n before the lock", function()
    helper.run(function()
      refuses("lasync.Condition:notify: n must be an integer (got float)",
        lasync.Condition().notify, lasync.Condition(), 1.5)
    end)
  end)
end)
