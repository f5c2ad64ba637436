-- Issue 9, item 10 (follow-up): a File:read of a FIFO whose writer never
-- writes, or any thread-pool request that never returns, kept the process
-- alive for ever after the script ended: closing the loop waited for the
-- request without bound, and then libuv's exit-time cleanup (or Lua's
-- unloading of the module) joined the blocked pool thread. Closing the
-- loop now waits at most LASYNC_SHUTDOWN_TIMEOUT seconds (default 1), then
-- abandons the request with one warning naming it, and the process ends.
local helper = require "helper"

local function mkfifo(path)
  assert.is_true(os.execute("mkfifo " .. helper.shell_quote(path)))
end

-- A fresh directory with a FIFO in it; returns both paths.
local function fifo_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert.is_true(os.execute("mkdir " .. dir))
  local fifo = dir .. "/fifo"
  mkfifo(fifo)
  return dir, fifo
end

-- Wall-clock seconds (the spec process does not run a loop here).
local function wall()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

-- Run `cmd` (a shell command line) bounded by timeout(1); returns the exit
-- status, stdout, stderr and the seconds it took.
local function run_bounded(cmd, env)
  local t0 = wall()
  local code, out, err = helper.capture(("%s timeout 20 %s"):format(
    env or "", cmd))
  return code, out, err, wall() - t0
end

-- run_bounded of `prog` on a temporary script holding `source`.
local function run_script(prog, source, env)
  local script = helper.temp_script(source)
  local code, out, err, took = run_bounded(prog .. " " .. script, env)
  os.remove(script)
  return code, out, err, took
end

-- Lua source of reading(): whether a thread of this process waits in a
-- pipe's read (Linux's wchan, "pipe_read" or "anon_pipe_read"), so that
-- the script ends only once the read has left the pool's queue (a request
-- still queued would be taken back, not abandoned).
local READING = [[
local function reading()
  for name in lasync.fs.scandir("/proc/self/task") do
    local h = io.open("/proc/self/task/" .. name .. "/wchan")
    local w = h and h:read("a") or ""
    if h then h:close() end
    if w:find("pipe_read", 1, true) then return true end
  end
  return false
end
]]

-- The FIFO is opened for reading and writing (both ends: it never gets
-- EOF) and read by a task that the end of the script cancels.
local FIFO_READ = READING .. [[
local f = lasync.fs.open(%q, "r+")
lasync.spawn(function() f:read(10) end)
pcall(lasync.wait_for, function()
  repeat lasync.sleep(0.001) until reading()
end, 5)
print("end of script")
]]

local WARNING = "^lasync: closing the event loop: abandoned 1 thread%-pool " ..
    "request still running after ([%d.]+) s: File:read %(fd %d+%)\n$"

describe("issue 9: a thread-pool request left running at exit", function()
  it("the lasync command ends after the default bound (1 s), naming the " ..
    "request", function()
      local dir, fifo = fifo_dir()
      local code, out, err, took = run_script(helper.bin,
        FIFO_READ:format(fifo))
      os.execute("rm -rf " .. dir)
      assert.are.equal(0, code) -- not 124: timeout had to kill it
      assert.are.equal("end of script\n", out)
      local lines = {}
      for l in err:gmatch("[^\n]*\n") do lines[#lines + 1] = l end
      assert.are.equal(2, #lines, err)
      assert.matches("^lasync: cancelling 1 pending task at exit", lines[1])
      assert.are.equal("1", lines[2]:match(WARNING), lines[2])
      assert.is_true(took >= 0.95, "ended early: " .. took)
      assert.is_true(took < 10 * helper.multiplier, "ended late: " .. took)
    end)

  it("LASYNC_SHUTDOWN_TIMEOUT sets the bound", function()
    local dir, fifo = fifo_dir()
    local code, out, err, took = run_script(helper.bin,
      FIFO_READ:format(fifo), "LASYNC_SHUTDOWN_TIMEOUT=0.2")
    os.execute("rm -rf " .. dir)
    assert.are.equal(0, code)
    assert.are.equal("end of script\n", out)
    assert.matches("after 0.2 s: File:read (fd ", err, 1, true)
    assert.is_true(took >= 0.19, "ended early: " .. took)
    assert.is_true(took < 0.95, "waited the default: " .. took)
  end)

  it("an invalid LASYNC_SHUTDOWN_TIMEOUT is reported; the default applies",
    function()
      local dir, fifo = fifo_dir()
      local code, out, err = run_script(helper.bin, FIFO_READ:format(fifo),
        "LASYNC_SHUTDOWN_TIMEOUT=soon")
      os.execute("rm -rf " .. dir)
      assert.are.equal(0, code)
      assert.are.equal("end of script\n", out)
      assert.matches("lasync: LASYNC_SHUTDOWN_TIMEOUT: expected seconds " ..
        "(got 'soon'), using 1 s\n", err, 1, true)
      assert.matches("after 1 s: File:read (fd ", err, 1, true)
    end)

  it("stock lua5.4 with lasync.run: run returns, the exit status and " ..
    "buffered output survive", function()
      local dir, fifo = fifo_dir()
      local code, out, err = run_script("lua5.4", ([[
local lasync = require "lasync"
lasync.run(function()
  ]] .. READING .. [[
  local f = lasync.fs.open(%q, "r+")
  lasync.spawn(function() f:read(10) end)
  pcall(lasync.wait_for, function()
    repeat lasync.sleep(0.001) until reading()
  end, 5)
end)
io.write("after run\n") -- stdout is a file: buffered until exit
os.exit(3)
]]):format(fifo), "LASYNC_SHUTDOWN_TIMEOUT=0.1")
      os.execute("rm -rf " .. dir)
      assert.are.equal(3, code, err)
      assert.are.equal("after run\n", out)
      assert.matches("after 0.1 s: File:read (fd ", err, 1, true)
    end)

  it("a to_thread call that never returns is abandoned too", function()
    local started = os.tmpname()
    os.remove(started)
    local code, out, err = run_script(helper.bin, ([[
local lasync = require "lasync"
lasync.to_thread(function(p)
  io.open(p, "w"):close()
  while true do end
end, %q)
repeat lasync.sleep(0.001) until io.open(%q) -- it runs: cannot be taken back
print("end of script")
]]):format(started, started), "LASYNC_SHUTDOWN_TIMEOUT=0.1")
    os.remove(started)
    assert.are.equal(0, code)
    assert.are.equal("end of script\n", out)
    assert.matches("abandoned 1 thread-pool request still running after " ..
      "0.1 s: to_thread call\n", err, 1, true)
  end)

  it("a call that ends within the bound is waited for, without a warning",
    function()
      local path = os.tmpname()
      os.remove(path)
      local code, out, err = run_script(helper.bin, ([[
local lasync = require "lasync"
lasync.to_thread(function(p)
  io.open(p .. ".started", "w"):close()
  local f = io.popen("sleep 0.1") -- the task is cancelled meanwhile
  f:close()
  f = io.open(p, "w")
  f:write("done")
  f:close()
end, %q)
repeat lasync.sleep(0.001) until io.open(%q .. ".started")
print("end of script")
]]):format(path, path), "LASYNC_SHUTDOWN_TIMEOUT=10")
      os.remove(path .. ".started")
      assert.are.equal(0, code)
      assert.are.equal("end of script\n", out)
      assert.are.equal("done", helper.slurp(path))
      assert.matches("^lasync: cancelling 1 pending task at exit: [^\n]*\n$",
        err)
    end)
end)
