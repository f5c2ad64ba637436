-- lasync.subprocess: exec/shell, the stdio options (pipe, inherit, null,
-- "stdout", a descriptor, a lasync.fs file), env, cwd, pid, wait and
-- returncode, communicate (large data both ways), signals, failures, many
-- processes at once, and reaping (no zombies).
local helper = require "helper"
local lasync = helper.lasync
local sp = lasync.subprocess
local fs = lasync.fs

local escape, raises_msg = helper.escape, helper.raises_msg
local in_dir = helper.in_dir

-- fn(...) must raise lasync.OSError with this code; returns it
local function os_error(code, fn, ...)
  return helper.os_error(code, nil, nil, fn, ...)
end

-- The state letter of process pid ("R", "S", "Z"...), nil if it is gone.
local function proc_state(pid)
  local h = io.open("/proc/" .. pid .. "/stat")
  if not h then return nil end
  local s = h:read("a")
  h:close()
  return s:match("^%d+ %b() (%u)")
end

describe("lasync.subprocess.exec", function()
  it("runs a program from PATH with its arguments, numbers included",
    function()
      helper.run(function()
        local args = { "hello", 42, 1.5, "two words" }
        local p = sp.exec("echo", args, { stdout = "pipe" })
        assert.are.equal("hello 42 1.5 two words\n", p.stdout:read())
        assert.are.equal(0, p:wait())
        assert.are.same({ "hello", 42, 1.5, "two words" }, args) -- untouched
      end)
    end)

  it("runs a program by path, with no arguments or an empty list",
    function()
      helper.run(function()
        local p = sp.exec("/bin/echo", nil, { stdout = "pipe" })
        assert.are.equal("\n", p.stdout:read())
        assert.are.equal(0, p:wait())
        p = sp.exec("/bin/echo", {}, { stdout = "pipe" })
        assert.are.equal("\n", (p:communicate()))
        p = sp.exec("true")
        assert.are.equal(0, p:wait())
      end)
    end)

  it("passes arguments verbatim, without a shell", function()
    helper.run(function()
      local p = sp.exec("printf", { "%s|", "$HOME", "a b", "'q'", "*", "" },
        { stdout = "pipe" })
      assert.are.equal("$HOME|a b|'q'|*||", (p:communicate()))
    end)
  end)

  it("refuses bad arguments", function()
    helper.run(function()
      raises_msg("lasync.subprocess.exec: file must be a string", sp.exec)
      raises_msg("must be a list of strings (got string)", sp.exec, "echo",
        "hi")
      raises_msg("lasync.subprocess.exec: args[1]", sp.exec, "echo", { {} })
      raises_msg("is not a string", sp.exec, "echo", { "ok", true })
    end)
  end)

  it("a program that does not exist raises OSError ENOENT", function()
    helper.run(function()
      local err = os_error("ENOENT", sp.exec, "lasync-no-such-program", {})
      assert.are.equal("lasync-no-such-program", err.target)
      assert.are.equal("lasync.subprocess.exec: no such file or directory " ..
        "(lasync-no-such-program)", err.message)
      assert.are.equal("OSError: " .. err.message, tostring(err))
      err = os_error("ENOENT", sp.exec, "/nonexistent/prog")
      assert.are.equal("/nonexistent/prog", err.target)
    end)
  end)

  it("a file that is not executable raises OSError EACCES", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/script", "echo hi\n")
      local err = os_error("EACCES", sp.exec, dir .. "/script", {})
      assert.are.equal(dir .. "/script", err.target)
    end)
  end)

  it("cannot be used outside a running loop", function()
    raises_msg("lasync.subprocess.exec: no running event loop", sp.exec,
      "true")
    raises_msg("lasync.subprocess.shell: no running event loop", sp.shell,
      "true")
  end)
end)

describe("lasync.subprocess.shell", function()
  it("runs /bin/sh -c cmdline", function()
    helper.run(function()
      local p = sp.shell("echo $((6 * 7)) | tr 4 X; exit 5",
        { stdout = "pipe" })
      assert.are.equal("X2\n", p.stdout:read())
      assert.are.equal(5, p:wait())
    end)
  end)

  it("its pid is the shell's $$", function()
    helper.run(function()
      local p = sp.shell("echo $$", { stdout = "pipe" })
      assert.are.equal("integer", math.type(p.pid))
      assert(p.pid > 0)
      assert.are.equal(tostring(p.pid) .. "\n", (p:communicate()))
    end)
  end)

  it("refuses a missing command line", function()
    helper.run(function()
      raises_msg("lasync.subprocess.shell: cmdline must be a string",
        sp.shell)
      raises_msg("lasync.subprocess.shell: cmdline must be a string (got " ..
        "table)", sp.shell, {})
    end)
  end)
end)

describe("Process fields", function()
  it("has pipes only where asked; unknown fields are nil", function()
    helper.run(function()
      local p = sp.exec("true")
      assert.is_nil(p.stdin)
      assert.is_nil(p.stdout)
      assert.is_nil(p.stderr)
      assert.is_nil(p.nonsense)
      p:wait()
      p = sp.exec("cat", {}, { stdin = "pipe", stdout = "pipe",
        stderr = "pipe" })
      assert.matches("^lasync%.StreamWriter", tostring(p.stdin))
      assert.matches("^lasync%.StreamReader", tostring(p.stdout))
      assert.matches("^lasync%.StreamReader", tostring(p.stderr))
      assert.are.equal(p.stdout, p.stdout) -- the same object each time
      p.stdin:close()
      assert.are.equal(0, p:wait())
    end)
  end)

  it("returncode is nil while running; tostring shows the state", function()
    helper.run(function()
      local p = sp.shell("sleep 0.05; exit 4")
      assert.is_nil(p:returncode())
      assert.are.equal(0, select("#", p:returncode()))
      assert.are.equal("lasync.Process: pid " .. p.pid .. ", running",
        tostring(p))
      assert.are.equal(4, p:wait())
      assert.are.equal(4, p:returncode())
      assert.are.equal(4, p:wait()) -- again, at once
      assert.are.equal("lasync.Process: pid " .. p.pid .. ", exited (4)",
        tostring(p))
    end)
  end)

  it("wait gives exit codes 0..255", function()
    helper.run(function()
      for _, code in ipairs { 0, 1, 3, 127, 255 } do
        assert.are.equal(code, sp.shell("exit " .. code):wait())
      end
      assert.are.equal(127, sp.shell("lasync-no-such-command 2>/dev/null")
        :wait())
    end)
  end)

  it("several tasks can wait for the same process", function()
    helper.run(function()
      local p = sp.shell("sleep 0.03; exit 9")
      local a = lasync.spawn(p.wait, p)
      local b = lasync.spawn(p.wait, p)
      assert.are.equal(9, p:wait())
      assert.are.equal(9, a:await())
      assert.are.equal(9, b:await())
    end)
  end)

  it("a cancelled wait can be repeated and the child is still reaped",
    function()
      helper.run(function()
        -- the child runs until its stdin closes, after the cancel
        local p = sp.shell("read x; exit 2", { stdin = "pipe" })
        local t = lasync.spawn(p.wait, p)
        helper.settle_all()
        t:cancel()
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert(lasync.is_cancelled(err), helper.show(err))
        p.stdin:close()
        assert.are.equal(2, p:wait())
        lasync.sleep(0.01)
        assert.is_nil(proc_state(p.pid))
      end)
    end)

  it("wait needs a task", function()
    helper.run(function()
      local p = sp.shell("exit 0")
      local err
      lasync.get_running_loop():call_soon(function()
        err = helper.error_of(p.wait, p)
      end)
      assert.are.equal(0, p:wait())
      assert.matches("Process:wait: not inside a task", err, 1, true)
    end)
  end)
end)

describe("stdio options", function()
  it("stdout and stderr pipes are separate", function()
    helper.run(function()
      local p = sp.shell("echo out; echo err >&2; echo out2",
        { stdout = "pipe", stderr = "pipe" })
      local out, err = p:communicate()
      assert.are.equal("out\nout2\n", out)
      assert.are.equal("err\n", err)
      assert.are.equal(0, p:returncode())
    end)
  end)

  it("stderr = \"stdout\" merges both into the stdout pipe, in order",
    function()
      helper.run(function()
        local p = sp.shell("echo a; echo b >&2; echo c; echo d >&2",
          { stdout = "pipe", stderr = "stdout" })
        assert.is_nil(p.stderr)
        local out, err = p:communicate()
        assert.are.equal("a\nb\nc\nd\n", out)
        assert.is_nil(err)
      end)
    end)

  it("stderr = \"stdout\" follows stdout to a file", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/both", "w")
      local p = sp.shell("echo a; echo b >&2", { stdout = f,
        stderr = "stdout" })
      assert.are.equal(0, p:wait())
      f:close()
      assert.are.equal("a\nb\n", fs.readfile(dir .. "/both"))
    end)
  end)

  it("\"null\" gives an empty stdin and discards output", function()
    helper.run(function()
      local p = sp.shell("cat; echo done; echo e >&2",
        { stdin = "null", stdout = "pipe", stderr = "null" })
      local out, err = p:communicate()
      assert.are.equal("done\n", out)
      assert.is_nil(err)
      local q = sp.shell("echo lost", { stdout = "null" })
      assert.is_nil(q.stdout)
      assert.are.same({ n = 2 }, table.pack(q:communicate()))
    end)
  end)

  it("\"inherit\" (the default) shares the parent's stdio", function()
    local status, out, err = helper.run_script([[
      local sp = lasync.subprocess
      sp.shell("echo default-out; echo default-err >&2"):wait()
      sp.shell("echo inherit-out; echo inherit-err >&2",
        {stdout = "inherit", stderr = "inherit"}):wait()
      local p = sp.shell("cat", {stdin = "inherit", stdout = "pipe"})
      io.write("from-stdin: ", (p:communicate()))
    ]], "</dev/null")
    assert.are.equal(0, status)
    assert.are.equal("default-out\ninherit-out\nfrom-stdin: ", out)
    assert.are.equal("default-err\ninherit-err\n", err)
  end)

  it("a lasync.fs file serves as stdin and stdout", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/in", "line 1\nline 2\n")
      local fin = fs.open(dir .. "/in")
      local fout = fs.open(dir .. "/out", "w")
      local p = sp.exec("tr", { "a-z", "A-Z" }, { stdin = fin,
        stdout = fout })
      assert.is_nil(p.stdin)
      assert.is_nil(p.stdout)
      assert.are.equal(0, p:wait())
      fin:close()
      fout:close()
      assert.are.equal("LINE 1\nLINE 2\n", fs.readfile(dir .. "/out"))
      local ferr = fs.open(dir .. "/err", "w")
      assert.are.equal(0, sp.shell("echo oops >&2", { stderr = ferr }):wait())
      ferr:close()
      assert.are.equal("oops\n", fs.readfile(dir .. "/err"))
    end)
  end)

  it("a file descriptor number serves as stdin and stdout", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/in", "abc")
      local fin = fs.open(dir .. "/in")
      local fout = fs.open(dir .. "/out", "w")
      local infd, outfd = fin:fileno(), fout:fileno()
      local p = sp.exec("cat", {}, { stdin = infd, stdout = outfd })
      assert.are.equal(0, p:wait())
      fin:close()
      fout:close()
      assert.are.equal("abc", fs.readfile(dir .. "/out"))
    end)
  end)

  it("refuses bad stdio options, and closed files", function()
    in_dir(function(dir)
      raises_msg("lasync.subprocess.shell: option 'stdout' must be " ..
        "\"pipe\", \"inherit\", \"null\", a file or a descriptor",
        sp.shell, "true", { stdout = "bogus" })
      raises_msg("lasync.subprocess.exec: option 'stdin' must be " ..
        "\"pipe\", \"inherit\", \"null\", a file or a descriptor",
        sp.exec, "true", {}, { stdin = "stdout" })
      raises_msg("lasync.subprocess.shell: option 'stderr' must be " ..
        "\"pipe\", \"inherit\", \"null\", \"stdout\", a file or a descriptor",
        sp.shell, "true", { stderr = {} })
      raises_msg("option 'stdin' must be", sp.shell, "true", { stdin = 1.5 })
      local f = fs.open(dir .. "/f", "w")
      f:close()
      raises_msg("lasync.subprocess.shell: option 'stdout': the file is " ..
        "closed", sp.shell, "true", { stdout = f })
    end)
  end)
end)

describe("env and cwd", function()
  it("env replaces the environment", function()
    helper.run(function()
      local p = sp.shell('echo "$FOO|$NUM|${HOME-unset}"', { stdout = "pipe",
        env = { FOO = "bar baz", NUM = 5 } })
      assert.are.equal("bar baz|5|unset\n", (p:communicate()))
      p = sp.exec("env", {}, { stdout = "pipe", env = { ONLY = "1" } })
      assert.are.equal("ONLY=1\n", (p:communicate()))
      p = sp.exec("/usr/bin/env", {}, { stdout = "pipe", env = {} })
      assert.are.equal("", (p:communicate()))
    end)
  end)

  it("without env the parent's environment is inherited", function()
    helper.run(function()
      local p = sp.shell('echo "$HOME"', { stdout = "pipe" })
      assert.are.equal((os.getenv("HOME") or "") .. "\n", (p:communicate()))
    end)
  end)

  it("refuses a bad env", function()
    helper.run(function()
      raises_msg("lasync.subprocess.shell: option 'env' must be a table",
        sp.shell, "true", { env = "A=1" })
      raises_msg("lasync.subprocess.shell: option 'env' must map names to " ..
        "strings", sp.shell, "true", { env = { "A=1" } })
      raises_msg("option 'env' must map names to strings", sp.shell, "true",
        { env = { A = {} } })
    end)
  end)

  it("cwd sets the working directory", function()
    in_dir(function(dir)
      local p = sp.exec("pwd", {}, { stdout = "pipe", cwd = dir })
      assert.are.equal(fs.realpath(dir) .. "\n", (p:communicate()))
      fs.writefile(dir .. "/here.txt", "found")
      p = sp.exec("cat", { "here.txt" }, { stdout = "pipe", cwd = dir })
      assert.are.equal("found", (p:communicate()))
    end)
  end)

  it("a missing cwd raises ENOENT naming the directory", function()
    in_dir(function(dir)
      local missing = dir .. "/missing"
      local err = os_error("ENOENT", sp.exec, "true", {}, { cwd = missing })
      assert.matches(escape(missing), err.message)
    end)
  end)
end)

describe("communicate", function()
  it("feeds input and collects both outputs (the documented example)",
    function()
      helper.run(function()
        local out, err = sp.shell("cat; echo oops >&2", { stdin = "pipe",
          stdout = "pipe", stderr = "pipe" }):communicate("data\n")
        assert.are.equal("data\n", out)
        assert.are.equal("oops\n", err)
        local p = sp.exec("echo", { "hello" }, { stdout = "pipe" })
        assert.are.equal("hello\n", p.stdout:read())
        assert.are.equal(0, p:wait())
      end)
    end)

  it("closes stdin without input, and after an empty input", function()
    helper.run(function()
      local p = sp.exec("wc", { "-c" }, { stdin = "pipe", stdout = "pipe" })
      assert.matches("^%s*0\n$", (p:communicate()))
      p = sp.exec("wc", { "-c" }, { stdin = "pipe", stdout = "pipe" })
      assert.matches("^%s*0\n$", (p:communicate("")))
    end)
  end)

  it("moves 5 MB through cat both ways without a deadlock", function()
    helper.run(function()
      local big = string.rep("0123456789abcdef", 5 * 65536)
      local p = sp.exec("cat", {}, { stdin = "pipe", stdout = "pipe" })
      local out = p:communicate(big)
      assert.are.equal(#big, #out)
      assert.is_true(out == big)
      assert.are.equal(0, p:returncode())
    end)
  end)

  it("large stdout and stderr at once do not deadlock", function()
    helper.run(function()
      local big = string.rep("x", 3 << 20)
      local p = sp.shell("cat; head -c 3000000 /dev/zero >&2; echo end",
        { stdin = "pipe", stdout = "pipe", stderr = "pipe" })
      local out, err = p:communicate(big)
      assert.are.equal(#big + 4, #out)
      assert.are.equal(3000000, #err)
      assert.are.equal(0, p:returncode())
    end)
  end)

  -- in a child: the write raised SIGPIPE and killed the whole process
  it("input to a child that exits without reading is dropped quietly",
    function()
      local status, out, err = helper.run_script([[
        local p = lasync.subprocess.shell("exit 6", {stdin = "pipe",
          stdout = "pipe"})
        local out, err = p:communicate(string.rep("y", 1 << 20))
        print(#out, err, p:returncode())
      ]])
      assert.are.equal(0, status, "exit status (141: killed by SIGPIPE)")
      assert.are.equal("", err)
      assert.are.equal("0\tnil\t6\n", out)
    end)

  it("writing to a child's closed stdin raises an error, not SIGPIPE",
    function()
      local status, out, err = helper.run_script([[
        local p = lasync.subprocess.shell("exec 0<&-; sleep 0.05",
          {stdin = "pipe"})
        lasync.sleep(0.02)
        p.stdin:write(string.rep("y", 1 << 20))
        local ok, e = pcall(p.stdin.drain, p.stdin)
        print(ok, lasync.is_error(e, lasync.OSError) and e.code)
        print(p:wait())
      ]])
      assert.are.equal(0, status, "exit status (141: killed by SIGPIPE)")
      assert.are.equal("", err)
      assert.are.equal("false\tEPIPE\n0\n", out)
    end)

  it("refuses input that is not a string, or without a stdin pipe",
    function()
      helper.run(function()
        local p = sp.shell("cat", { stdin = "pipe" })
        raises_msg("lasync.Process:communicate: input must be a string " ..
          "(got number)", p.communicate, p, 5)
        p:communicate()
        local q = sp.shell("true")
        raises_msg("lasync.Process:communicate: stdin is not a pipe",
          q.communicate, q, "x")
        assert.are.same({ n = 2 }, table.pack(q:communicate()))
      end)
    end)

  it("pipes also work as plain streams (write, readline)", function()
    helper.run(function()
      local p = sp.exec("cat", {}, { stdin = "pipe", stdout = "pipe" })
      p.stdin:write("first\n")
      assert.are.equal("first\n", p.stdout:readline())
      p.stdin:write("second\nthird")
      p.stdin:close()
      assert.are.equal("second\n", p.stdout:readline())
      assert.are.equal("third", p.stdout:readline())
      assert.are.equal("", p.stdout:readline())
      assert.are.equal(0, p:wait())
    end)
  end)
end)

describe("signalling a process", function()
  it("terminate, kill and send_signal end it with minus the signal",
    function()
      helper.run(function()
        local p = sp.exec("sleep", { "5" })
        p:terminate()
        assert.are.equal(-15, p:wait())
        assert.are.equal("lasync.Process: pid " .. p.pid .. ", exited (-15)",
          tostring(p))
        p = sp.exec("sleep", { "5" })
        p:kill()
        assert.are.equal(-9, p:wait())
        for _, sig in ipairs { "SIGTERM", "TERM", 15 } do
          p = sp.exec("sleep", { "5" })
          p:send_signal(sig)
          assert.are.equal(-15, p:wait())
        end
        p = sp.exec("sleep", { "5" })
        p:send_signal("HUP")
        assert.are.equal(-1, p:wait())
      end)
    end)

  it("send_signal knows SIGKILL, SIGSTOP and SIGCONT by name", function()
    helper.run(function()
      local p = sp.exec("sleep", { "5" })
      local ok, err = pcall(p.send_signal, p, "SIGSTOP")
      if ok then
        ok, err = pcall(p.send_signal, p, "CONT")
      end
      if ok then
        ok, err = pcall(p.send_signal, p, "SIGKILL")
      end
      if not ok then p:kill() end
      assert.are.equal(-9, p:wait())
      assert(ok, err)
    end)
  end)

  it("a trapped signal runs the child's handler", function()
    helper.run(function()
      local p = sp.shell("trap 'echo got USR1; exit 7' USR1; echo ready; " ..
        "while :; do sleep 0.01; done", { stdout = "pipe" })
      assert.are.equal("ready\n", p.stdout:readline())
      p:send_signal("SIGUSR1")
      assert.are.equal("got USR1\n", p.stdout:readline())
      assert.are.equal(7, p:wait())
    end)
  end)

  it("a process that has exited is left alone", function()
    helper.run(function()
      local p = sp.shell("exit 1")
      assert.are.equal(1, p:wait())
      assert.are.equal(0, select("#", p:send_signal("SIGTERM")))
      p:send_signal(9)
      p:terminate()
      p:kill()
      assert.are.equal(1, p:returncode())
    end)
  end)

  it("refuses unknown signals", function()
    helper.run(function()
      local p = sp.exec("sleep", { "5" })
      raises_msg("lasync.Process:send_signal: unknown signal BOGUS",
        p.send_signal, p, "BOGUS")
      raises_msg("lasync.Process:send_signal: unknown signal 0",
        p.send_signal, p, 0)
      raises_msg("lasync.Process:send_signal: unknown signal", p.send_signal,
        p)
      p:kill()
      assert.are.equal(-9, p:wait())
    end)
  end)

  it("a process killed mid-output: its stdout ends and wait gives -9",
    function()
      helper.run(function()
        local p = sp.exec("yes", {}, { stdout = "pipe" })
        local n = 0
        local reader = lasync.spawn(function()
          while true do
            local s = p.stdout:read(65536)
            if s == "" then return n end
            n = n + #s
          end
        end)
        helper.wait_until(function() return n > 0 end, 5) -- it is writing
        p:kill()
        assert.are.equal(-9, p:wait())
        assert(reader:await() > 0, "nothing was read")
        assert.are.equal("", p.stdout:read())
      end)
    end)
end)

describe("many processes", function()
  it("200 concurrent subprocesses with large outputs (gather)", function()
    helper.run(function()
      local jobs = {}
      for i = 1, 200 do
        jobs[i] = function()
          local p = sp.shell("head -c 100000 /dev/zero | tr '\\0' z; echo " ..
            i, { stdout = "pipe" })
          local out = p:communicate()
          return ("%d %s %s"):format(#out, out:sub(100001),
            tostring(p:returncode()))
        end
      end
      local res = lasync.gather(jobs)
      assert.are.equal(200, res.n)
      for i = 1, 200 do
        local want = 100000 + #tostring(i) + 1
        assert.are.equal(("%d %d\n 0"):format(want, i), res[i])
      end
    end, 8)
  end)
end)

describe("resources", function()
  it("pipes and processes leave no descriptors behind", function()
    helper.run(function()
      local function count_fds()
        local n = 0
        for _ in fs.scandir("/proc/self/fd") do n = n + 1 end
        return n
      end
      -- the loop keeps one descriptor of its own after its first pipe
      sp.shell("true", { stdout = "pipe" }):communicate()
      collectgarbage()
      collectgarbage()
      local before = count_fds()
      for _ = 1, 30 do
        local p = sp.shell("cat; echo e >&2", { stdin = "pipe",
          stdout = "pipe", stderr = "pipe" })
        p:communicate("x")
        local q = sp.shell("echo merged >&2", { stdout = "pipe",
          stderr = "stdout" })
        q:communicate()
      end
      local p = sp.exec("sleep", { "5" }, { stdin = "pipe", stdout = "pipe" })
      p:kill()
      p:wait()
      p = nil
      -- the pipes close in close callbacks, after the collection
      pcall(helper.wait_until, function()
        collectgarbage()
        collectgarbage()
        return count_fds() == before
      end)
      assert.are.equal(before, count_fds())
    end)
  end)
end)

describe("reaping", function()
  it("a dropped Process is still reaped (no zombie)", function()
    helper.run(function()
      local pids = {}
      for i = 1, 5 do
        local p = sp.shell("sleep 0.05")
        pids[i] = p.pid
      end
      collectgarbage()
      collectgarbage()
      assert.is_not_nil(proc_state(pids[1])) -- still running
      pcall(helper.wait_until, function()
        for _, pid in ipairs(pids) do
          if proc_state(pid) then return false end
        end
        return true
      end, 5)
      for _, pid in ipairs(pids) do
        assert.is_nil(proc_state(pid), "pid " .. pid .. " is a zombie: " ..
          tostring(proc_state(pid)))
      end
    end)
  end)

  it("a dropped Process does not keep the run alive", function()
    local t0 = os.time()
    local pid = helper.run(function()
      local p = sp.shell("sleep 3")
      local pid = p.pid
      p = nil
      collectgarbage()
      collectgarbage()
      return pid
    end)
    assert(os.time() - t0 < 2, "the run waited for the child")
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
  end)

  it("a finished, waited-for process leaves no zombie", function()
    helper.run(function()
      local p = sp.shell("exit 0")
      p:wait()
      assert.is_nil(proc_state(p.pid))
    end)
  end)

  it("a child still running when its run ends is reaped later", function()
    local pid = helper.run(function()
      return sp.shell("sleep 0.05").pid
    end)
    os.execute("sleep 0.05")
    helper.run(function()
      pcall(helper.wait_until, function() return not proc_state(pid) end, 5)
    end)
    local state = proc_state(pid)
    assert.is_nil(state, "pid " .. pid .. " left as a zombie")
  end)

  describe("issue 9: the public name in errors", function()
    it("require 'lasync.subprocess' gives lasync.subprocess", function()
      assert.are.equal(lasync.subprocess, require "lasync.subprocess")
    end)

    it("argument errors name lasync.subprocess.exec/shell", function()
      helper.run(function()
        raises_msg("lasync.subprocess.exec: file must be a string (got " ..
          "table)", sp.exec, {}, {})
        raises_msg("lasync.subprocess.exec: args must be a list of " ..
          "strings (got string)", sp.exec, "echo", "a")
        raises_msg("lasync.subprocess.exec: the options must be a table " ..
          "(got string)", sp.exec, "echo", {}, "x")
        raises_msg("lasync.subprocess.shell: cmdline must be a string " ..
          "(got nil)", sp.shell, nil)
        raises_msg("lasync.subprocess.exec: args[2] is not a string (got " ..
          "boolean)", sp.exec, "echo", { "ok", true })
      end)
    end)

    it("a descriptor that is not open is named as such", function()
      helper.run(function()
        raises_msg("lasync.subprocess.exec: option 'stdin': 9999 is not " ..
          "an open file descriptor", sp.exec, "true", {}, { stdin = 9999 })
        raises_msg("lasync.subprocess.exec: option 'stdout': -1 is not " ..
          "an open file descriptor", sp.exec, "true", {}, { stdout = -1 })
      end)
    end)

    it("communicate called with . names its receiver", function()
      helper.run(function()
        local p = sp.exec("true")
        raises_msg("lasync.Process:communicate: expected a Process (got " ..
          "no value)", p.communicate)
        raises_msg("lasync.Process:communicate: expected a Process (got " ..
          "string)", p.communicate, "input")
        p:wait()
      end)
    end)
  end)
end)
