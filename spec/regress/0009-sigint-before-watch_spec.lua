-- Issue 9: a SIGINT that arrived while the main task ran Lua code, before
-- it called lasync.wait_signal("SIGINT") or lasync.signal("SIGINT", f),
-- was lost: libuv had queued it only for the default Ctrl-C watcher of
-- lasync.run, which stepped back once the script watched SIGINT itself,
-- and the script then waited for a signal that had already come. The rule
-- now: a SIGINT goes to whoever watches SIGINT when the loop dispatches it.
--
-- In each script below, signalled() writes the file arg[1], then spins
-- without yielding (so the loop cannot dispatch anything) until the file
-- arg[2] exists; the shell sends SIGINT after seeing arg[1] and only then
-- creates arg[2], so the signal has arrived before the script goes on.
local helper = require "helper"
local lasync = helper.lasync

local shell_quote, slurp = helper.shell_quote, helper.slurp

local PRELUDE = [[
local ready, sent = arg[1], arg[2]
local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end
local function signalled()
  assert(io.open(ready, "w")):close()
  local limit = os.clock() + 10
  while not exists(sent) do
    assert(os.clock() < limit, "the shell never sent SIGINT")
  end
end
]]

-- Run `source` (after PRELUDE) as a child (the lasync command, or
-- `runner`), send it SIGINT once it is ready, and return its exit status
-- (137 if the 5 s watchdog had to kill it), stdout and stderr.
local function interrupt_early(source, runner)
  local base = os.tmpname()
  local script = helper.temp_script(PRELUDE .. source)
  local ready, sent = base .. ".ready", base .. ".sent"
  local cmd = ([[
%s %s %s %s >%s.out 2>%s.err & pid=$!
(sleep 5; kill -KILL $pid) >/dev/null 2>&1 & dog=$!
while [ ! -e %s ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done
kill -INT $pid; touch %s
wait $pid; rc=$?
kill $dog 2>/dev/null
echo $rc]]):format(runner or helper.bin, script, ready, sent, base, base,
    ready, sent)
  local h = assert(io.popen("sh -c " .. shell_quote(cmd)))
  local rc = tonumber(h:read("a"):match("(%d+)%s*$"))
  h:close()
  os.remove(script)
  os.remove(ready)
  os.remove(sent)
  os.remove(base)
  return rc, slurp(base .. ".out"), slurp(base .. ".err")
end

describe("regress 0009: a SIGINT that arrives before the script watches it",
  function()
    it("is returned by a later wait_signal(\"SIGINT\")", function()
      local rc, out, err = interrupt_early([[
        signalled()
        print("got", lasync.wait_signal("SIGINT"))
      ]])
      assert.are.equal("", err)
      assert.are.equal("got\tSIGINT\n", out)
      assert.are.equal(0, rc)
    end)

    it("calls a handler given to lasync.signal later", function()
      local rc, out, err = interrupt_early([[
        signalled()
        local got = {}
        local h <close> = lasync.signal("SIGINT", function(n)
          got[#got + 1] = n
        end)
        while #got == 0 do lasync.sleep(0.001) end
        lasync.sleep(0.01)
        print("handler", #got, got[1])
      ]])
      assert.are.equal("", err)
      assert.are.equal("handler\t1\tSIGINT\n", out)
      assert.are.equal(0, rc)
    end)

    it("reaches every watcher present at dispatch, once each", function()
      local rc, out, err = interrupt_early([[
        signalled()
        local calls = 0
        local h <close> = lasync.signal("INT", function()
          calls = calls + 1
        end)
        local a = lasync.spawn(lasync.wait_signal, "SIGINT")
        local b = lasync.spawn(lasync.wait_signal, 2)
        print(a:await(), b:await())
        lasync.sleep(0.01)
        print("handler", calls)
      ]])
      assert.are.equal("", err)
      assert.are.equal("SIGINT\tSIGINT\nhandler\t1\n", out)
      assert.are.equal(0, rc)
    end)

    it("works the same under lasync.run from lua5.4", function()
      local rc, out, err = interrupt_early([[
        local lasync = require "lasync"
        print("got", lasync.run(function()
          signalled()
          return lasync.wait_signal("SIGINT")
        end))
      ]], "lua5.4")
      assert.are.equal("", err)
      assert.are.equal("got\tSIGINT\n", out)
      assert.are.equal(0, rc)
    end)

    it("interrupts if the watcher is gone again before the dispatch",
      function()
        local rc, out, err = interrupt_early([[
          signalled()
          lasync.signal("SIGINT", function() print("handler") end):close()
          lasync.sleep(5)
          print("not reached")
        ]])
        assert.are.equal("", out)
        assert.are.equal("lasync: interrupted\n", err)
        assert.are.equal(130, rc)
      end)
  end)

-- In this process (helper.run is lasync.run, so its default SIGINT
-- watcher is there): SIGINT is sent only while a watcher of the test is
-- subscribed, so the default never sees it. Not with os.execute: system()
-- ignores SIGINT in the caller until the command ends.
describe("regress 0009: SIGINT watchers under lasync.run", function()
  local pid = tostring(io.open("/proc/self/stat"):read("n"))
  local function raise_int()
    lasync.subprocess.exec("kill", { "-INT", pid }):wait()
  end

  it("unsubscribe when closed, cancelled or finalized", function()
    helper.run(function()
      local calls = { kept = 0, closed = 0, finalized = 0 }
      local kept <close> = lasync.signal("SIGINT", function()
        calls.kept = calls.kept + 1
      end)
      lasync.signal("SIGINT", function()
        calls.closed = calls.closed + 1
      end):close()
      local finalized = lasync.signal("SIGINT", function()
        calls.finalized = calls.finalized + 1
      end)
      getmetatable(finalized).__gc(finalized) -- anchored: never collected
      local cancelled = lasync.spawn(lasync.wait_signal, "SIGINT")
      local waiting = lasync.spawn(lasync.wait_signal, "SIGINT")
      lasync.sleep(0.01)
      cancelled:cancel()
      lasync.sleep(0)
      raise_int()
      assert.are.equal("SIGINT", waiting:await())
      helper.wait_until(function() return calls.kept == 1 end)
      lasync.sleep(0.01)
      assert.are.same({ kept = 1, closed = 0, finalized = 0 }, calls)
      assert.is_true(cancelled:cancelled())
      raise_int() -- still subscribed: a second one is the handler's too
      helper.wait_until(function() return calls.kept == 2 end)
    end)
  end)

  it("a wait_signal alone keeps the run going until the signal comes",
    function()
      local got = helper.run(function()
        local killer = lasync.spawn(raise_int)
        local got = lasync.wait_signal("SIGINT")
        killer:await()
        return got
      end)
      assert.are.equal("SIGINT", got)
    end)

  it("a watcher still open when the run ends is closed with the loop",
    function()
      local calls = 0
      helper.run(function()
        lasync.signal("SIGINT", function() calls = calls + 1 end)
      end)
      assert.are.equal(0, calls)
    end)
end)
