-- Issue 10 (review of the suspension protocol): a task awaits a libuv
-- request, the request completes (its task is on the ready queue, and its
-- continuation is what frees the request), and the task then leaves for
-- good before it runs again: its loop closes. Nobody freed the request or
-- what it held: a descriptor fs.open opened, getaddrinfo's results, the
-- socket of a connect, the handle of wait_signal. The task's release now
-- disposes of a completed request (op.c, op_forget).
--
-- The way there from Lua: os.exit(0, true) closes the state, and the loop
-- with it, from a task that runs in the same batch as the woken task,
-- before it. Each case runs in a child; a finalizer set before the loop
-- was made runs after the loop closed and reports the descriptors and
-- libuv handles left; under the sanitizer build, LeakSanitizer checks the
-- rest.
local helper = require "helper"

-- Whether the specs run on the sanitizer build (scripts/busted.sh).
local function sanitized()
  local f = io.open((helper.bin:gsub("lasync$", "sanitize")))
  if f then f:close() end
  return f ~= nil
end

local SCRIPT = [[
local lasync = require "lasync"
local case = arg[1]
local pid = io.open("/proc/self/stat"):read("n")
local path = os.tmpname()
local base = lasync._stats().handles

-- A shell command run without the sanitizer runtime, whose leak report
-- at exit would be taken for ours (exec: the shell does not exit).
local function plain(cmd)
  return "exec env -u LD_PRELOAD " .. cmd
end

-- Descriptors of this process open on path.
local function fds_on(p)
  local n = 0
  for line in io.popen(plain("ls -l /proc/" .. pid .. "/fd")):lines() do
    if line:find(p, 1, true) then n = n + 1 end
  end
  return n
end

-- Finalized after the loop (its __gc was set first): what is left.
local sentinel = setmetatable({}, { __gc = function()
  io.stderr:write(("left: fds=%d handles=%d\n"):format(fds_on(path),
    lasync._stats().handles - base))
  os.remove(path)
end })

local function busy(s)
  local t = os.clock() + s
  repeat until os.clock() > t
end

local loop = lasync.new_event_loop()
loop:run_until_complete(function()
  local port
  if case == "connect" then
    local server = lasync.start_server(function() end, "127.0.0.1", 0)
    port = server:sockets()[1].port
  end
  os.remove(path)
  lasync.spawn(function()
    if case == "fs" then lasync.fs.open(path, "w")
    elseif case == "getaddrinfo" then lasync.getaddrinfo("127.0.0.1", 80)
    elseif case == "getnameinfo" then lasync.getnameinfo("127.0.0.1", 80)
    elseif case == "connect" then lasync.open_connection("127.0.0.1", port)
    elseif case == "signal" then lasync.wait_signal("SIGUSR1") end
    io.stderr:write("the task ran again\n")
  end)
  lasync.spawn(function()
    lasync.sleep(0) -- the request has started
    if case == "fs" then
      repeat
        local f = io.open(path)
        if f then f:close() end
      until f
    elseif case == "signal" then
      os.execute(plain("kill -USR1 " .. pid))
    end
    busy(0.05) -- the request completes, this task's timer expires
  end)
  lasync.sleep(0.001)
  -- the loop's next batch: this task, then the one whose request
  -- completed; the state (and the loop) closes before that one runs
  os.exit(0, true)
end)
]]

-- Run one case in a child; returns its exit status and stderr.
local function run_case(case)
  local script = helper.temp_script(SCRIPT)
  local env = sanitized() and "ASAN_OPTIONS=detect_leaks=1 " or ""
  local code, _, err = helper.capture(("%stimeout 30 lua5.4 %s %s"):format(
    env, script, case))
  os.remove(script)
  return code, err
end

local function check(case)
  local code, err = run_case(case)
  assert.is_nil(err:find("LeakSanitizer", 1, true), err)
  assert.is_nil(err:find("the task ran again", 1, true), err)
  assert.is_nil(err:find("abandoned", 1, true), err)
  assert.is_truthy(err:find("left: fds=0 handles=0\n", 1, true), err)
  assert.are.equal(0, code, err)
end

describe("issue 10: a completed request of a task whose loop closes", function()
  it("fs.open: the descriptor it opened is closed", function()
    check("fs")
  end)

  it("getaddrinfo: the request and its results are freed", function()
    check("getaddrinfo")
  end)

  it("getnameinfo: the request is freed", function()
    check("getnameinfo")
  end)

  it("open_connection: the connected socket is closed, the request freed",
    function()
      check("connect")
    end)

  it("wait_signal: its signal handle is closed", function()
    check("signal")
  end)
end)
