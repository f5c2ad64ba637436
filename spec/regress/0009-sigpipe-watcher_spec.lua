-- Issue 9, item 6: libuv puts SIG_DFL back when the last watcher of a
-- signal stops, so after lasync.signal("SIGPIPE", f):close() (or a
-- wait_signal("SIGPIPE") that got its signal) the next write to a closed
-- pipe killed the process (status 141) instead of raising EPIPE. And
-- lasync.signal(print) said "unknown signal function: 0x...".
local helper = require "helper"
local lasync = helper.lasync

-- A script that stops watching SIGPIPE in the way given, then writes to a
-- pipe whose reader has exited, and prints the error it gets.
local function script(stop)
  return ([[
local lasync = require "lasync"
%s
local p = lasync.subprocess.exec("true", {}, { stdin = "pipe" })
p:wait()
p.stdin:write(("x"):rep(65536))
local ok, err = pcall(p.stdin.drain, p.stdin)
print(ok, err.code)
]]):format(stop)
end

describe("issue 9: SIGPIPE after its watcher is closed", function()
  for how, stop in pairs {
    ["close()"] = 'lasync.signal("SIGPIPE", print):close()',
    ["garbage collection"] = 'lasync.signal("SIGPIPE", print) ' ..
      'collectgarbage() collectgarbage()',
    ["a finished wait_signal"] = 'lasync.spawn(function() ' ..
      'lasync.wait_signal("SIGPIPE") end) lasync.sleep(0) ' ..
      'local pid = io.open("/proc/self/stat"):read("n") ' ..
      'lasync.subprocess.exec("kill", {"-PIPE", tostring(pid)}):wait() ' ..
      'lasync.sleep(0.01)',
  } do
    it("is still EPIPE after " .. how, function()
      local code, out, err = helper.run_script(script(stop))
      assert.are.equal(0, code, err)
      assert.are.equal("false\tEPIPE\n", out)
    end)
  end

  it("a bad signal argument says what is expected", function()
    helper.run(function()
      helper.raises_msg("lasync.signal: the signal must be a signal name " ..
        "or number (got function)", lasync.signal, print)
      helper.raises_msg("lasync.wait_signal: the signal must be a signal " ..
        "name or number (got table)", lasync.wait_signal, {})
      helper.raises_msg("lasync.signal: unknown signal SIGNOPE",
        lasync.signal, "SIGNOPE", print)
    end)
  end)
end)
