-- The lasync command: top-level await, arg and ..., options (-e, -l, -v,
-- -, --, --debug), exit status and what it prints on stderr (uncaught
-- errors with task tracebacks, unretrieved task errors, leftover tasks,
-- callback errors, slow steps).
local helper = require "helper"

local temp_script, lasync_cmd = helper.temp_script, helper.lasync_cmd

-- Run `source` as a script with options `opts` before it and `args` after.
local function run_with(opts, source, args, env)
  local path = temp_script(source)
  local code, out, err = lasync_cmd(opts .. " " .. path .. " " ..
    (args or ""), nil, env)
  os.remove(path)
  return code, out, err, path
end

describe("the lasync command", function()
  it("runs a script whose top level awaits", function()
    local code, out, err = helper.run_script([[
      local t0 = lasync.get_running_loop():time()
      lasync.sleep(0.01)
      local v = lasync.await(function() lasync.sleep(0) return 42 end)
      print("slept", lasync.get_running_loop():time() - t0 >= 0.01, v)
      print(lasync.current_task():get_name())
    ]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("slept\ttrue\t42\nmain\n", out)
  end)

  it("defines the global lasync as require 'lasync'", function()
    local code, out = helper.run_script([[
      print(type(lasync), lasync == require("lasync"))
    ]])
    assert.are.equal(0, code)
    assert.are.equal("table\ttrue\n", out)
  end)

  it("gives the script arg and ... as lua5.4 does", function()
    local code, out, err = helper.run_script([[
      print(arg[0]:match("%.lua$") ~= nil, arg[-1]:match("lasync$") ~= nil)
      print(#arg, arg[1], arg[2], arg[3])
      print(select("#", ...), ...)
    ]], "one 'two words' three")
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("true\ttrue\n3\tone\ttwo words\tthree\n" ..
      "3\tone\ttwo words\tthree\n", out)
  end)

  it("exits 0 after a script that returns values", function()
    local code, out = helper.run_script("return 1, 2, 3")
    assert.are.equal(0, code)
    assert.are.equal("", out)
  end)

  it("passes os.exit's status through", function()
    local code = helper.run_script("lasync.sleep(0) os.exit(3)")
    assert.are.equal(3, code)
  end)
end)

describe("lasync command options", function()
  it("-e runs a chunk that awaits, without a script", function()
    local code, out, err = lasync_cmd(
      [[-e "lasync.sleep(0.001) print('e ran', lasync.current_task():get_name())"]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("e ran\tmain\n", out)
  end)

  it("-e chunks and -l modules run in order before the script", function()
    local code, out, err = run_with(
      [[-e "order = {'e1'}" -l m=math -e "order[#order+1] = tostring(m == math)"]],
      [[
        lasync.sleep(0)
        order[#order + 1] = "script"
        print(table.concat(order, ","))
      ]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("e1,true,script\n", out)
  end)

  it("puts the options before the script at negative arg indices",
    function()
      local code, out = run_with([[-e "x = 1"]],
        "print(arg[-3]:match('lasync$') ~= nil, arg[-2], arg[-1], x)")
      assert.are.equal(0, code)
      assert.are.equal("true\t-e\tx = 1\t1\n", out)
    end)

  it("-e with a syntax error: exit 1 with the message", function()
    local code, out, err = lasync_cmd([[-e "x = = 1"]])
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^lasync: %(command line%):1: unexpected symbol", err)
  end)

  it("-l of a missing module: exit 1 with require's message", function()
    local code, _, err = lasync_cmd("-l no_such_module_xyz")
    assert.are.equal(1, code)
    assert.matches("^lasync: [^\n]*module 'no_such_module_xyz' not found",
      err)
  end)

  it("-e: the traceback shows the user's frames only, as lua5.4's",
    function()
      local code, out, err = lasync_cmd([[-e "lasync.sleep(0) error('boom')"]])
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.are.equal("lasync: (command line):1: boom\n" ..
        "stack traceback of task 'main':\n" ..
        "\t[C]: in function 'error'\n" ..
        "\t(command line):1: in main chunk\n", err)
    end)

  it("-l: require's message without a position, no internal frames",
    function()
      local code, _, err = lasync_cmd("-l no_such_module_xyz")
      assert.are.equal(1, code)
      assert.matches("^lasync: module 'no_such_module_xyz' not found:\n", err)
      assert.matches("\nstack traceback of task 'main':\n" ..
        "\t%[C%]: in function 'require'\n$", err)
    end)

  it("a script after -e steps: its own frames, as without them", function()
    local code, _, err = run_with([[-e "x = 1" -l m=math]], [[
      local function f() lasync.sleep(0) error("deep") end
      f()]])
    assert.are.equal(1, code)
    assert.matches("^lasync: [^\n]*%.lua:1: deep\n" ..
      "stack traceback of task 'main':\n" ..
      "\t%[C%]: in function 'error'\n" ..
      "\t[^\n]*%.lua:1: in local 'f'\n" ..
      "\t[^\n]*%.lua:2: in main chunk\n$", err)
  end)

  it("-l mod loads a module into the global of its name", function()
    local code, out = lasync_cmd([[-l string -e "print(string == require 'string')"]])
    assert.are.equal(0, code)
    assert.are.equal("true\n", out)
  end)

  it("-v prints the version", function()
    local code, out = lasync_cmd("-v")
    assert.are.equal(0, code)
    assert.matches("^lasync %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libuv %d+%.%d+%.%d+%)\n$",
      out)
  end)

  it("-v with a script prints the version and runs the script", function()
    local code, out = run_with("-v", "print('script')")
    assert.are.equal(0, code)
    assert.matches("^lasync .-\nscript\n$", out)
  end)

  it("- runs stdin with the arguments after it", function()
    local code, out, err = lasync_cmd("- x y",
      "lasync.sleep(0.001) print('stdin', select('#', ...), ...)")
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("stdin\t2\tx\ty\n", out)
  end)

  it("runs stdin when no script is given and stdin is not a terminal",
    function()
      local code, out = lasync_cmd("", "lasync.sleep(0) print('piped')")
      assert.are.equal(0, code)
      assert.are.equal("piped\n", out)
    end)

  it("-- stops handling options", function()
    local code, out = run_with("--", "print(...)", "-e -v")
    assert.are.equal(0, code)
    assert.are.equal("-e\t-v\n", out)
  end)

  it("rejects an unknown option with the usage, exit 1", function()
    local code, out, err = lasync_cmd("-z")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^lasync: unrecognized option '%-z'\nusage: lasync", err)
  end)

  it("--help prints the usage on stdout, every option, and exits 0",
    function()
      local code, out, err = lasync_cmd("--help -e 'print(1)' x.lua")
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.matches("^usage: lasync %[options%] %[script %[args%]%]\n", out)
      for _, flag in ipairs({ "-e stat", "-l mod", "-l g=mod", "-i", "-v",
                              "--debug", "--help", "--version", "--",
                              "-  " }) do
        assert.matches("\n  " .. flag, out, 1, true)
      end
    end)

  it("--version prints the version on stdout and exits 0, running nothing",
    function()
      local code, out, err = lasync_cmd("--version -e 'print(1)'")
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.matches("^lasync %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libuv " ..
        "%d+%.%d+%.%d+%)\n$", out)
    end)

  it("a script's own --help and --version are its arguments", function()
    local code, out = run_with("", "print(...)", "--help --version")
    assert.are.equal(0, code)
    assert.are.equal("--help\t--version\n", out)
  end)

  it("rejects -e without an argument", function()
    local code, _, err = lasync_cmd("-e")
    assert.are.equal(1, code)
    assert.matches("^lasync: '%-e' needs argument", err)
  end)
end)

describe("lasync command errors", function()
  it("an error from a task awaited by the main chunk: exit 1, the message "
    .. "and both tasks' tracebacks", function()
      local code, out, err = helper.run_script([[
local t = lasync.create_task({ name = "worker" }, function()
  lasync.sleep(0.001)
  error("kaput")
end)
t:await()
]])
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("^lasync: [^\n]*%.lua:3: kaput\n", err)
      assert.matches("stack traceback of task 'worker':", err, 1, true)
      assert.matches("awaited by task 'main':", err, 1, true)
      local worker_at = err:find("stack traceback of task 'worker':", 1, true)
      local main_at = err:find("awaited by task 'main':", 1, true)
      assert.is_true(worker_at < main_at)
      assert.matches("%.lua:5: in main chunk", err:sub(main_at))
    end)

  it("chains 'awaited by' sections through every awaiting task", function()
    local code, _, err = helper.run_script([[
local middle = lasync.create_task({ name = "middle" }, function()
  local w = lasync.create_task({ name = "worker" }, function()
    lasync.sleep(0.001)
    error("deep")
  end)
  return w:await()
end)
middle:await()
]])
    assert.are.equal(1, code)
    assert.matches("^lasync: [^\n]*%.lua:4: deep\n", err)
    local a = err:find("stack traceback of task 'worker':", 1, true)
    local b = err:find("awaited by task 'middle':", 1, true)
    local c = err:find("awaited by task 'main':", 1, true)
    assert.is_not_nil(a, err)
    assert.is_not_nil(b, err)
    assert.is_not_nil(c, err)
    assert.is_true(a < b and b < c)
  end)

  it("keeps the failing child's traceback for an error through gather",
    function()
      local code, _, err = helper.run_script([[
local w = lasync.create_task({ name = "worker" }, function()
  lasync.sleep(0.001)
  error("deep")
end)
lasync.gather(w, lasync.create_task(function() end))
]])
      assert.are.equal(1, code)
      assert.matches("^lasync: [^\n]*%.lua:3: deep\n", err)
      assert.matches("stack traceback of task 'worker':", err, 1, true)
      assert.matches("task 'main'", err, 1, true)
    end)

  it("an error in the main chunk itself: exit 1 with main's traceback",
    function()
      local code, _, err = helper.run_script("lasync.sleep(0)\nerror('top')\n")
      assert.are.equal(1, code)
      assert.matches("^lasync: [^\n]*%.lua:2: top\n", err)
      assert.matches("stack traceback of task 'main':", err, 1, true)
    end)

  it("prints error objects with tostring", function()
    local code, _, err = helper.run_script(
      "error(lasync.TimeoutError('too late'))")
    assert.are.equal(1, code)
    assert.matches("^lasync: TimeoutError: too late\n", err)
  end)

  it("a main chunk that ends cancelled: exit 1 with the CancelledError",
    function()
      local code, _, err = helper.run_script([[
lasync.current_task():cancel("bye")
lasync.sleep(0)
]])
      assert.are.equal(1, code)
      assert.matches("^lasync: CancelledError: bye\n", err)
    end)

  it("a syntax error: exit 1 with the message", function()
    local code, out, err = helper.run_script("local x = = 1")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("^lasync: [^\n]*%.lua:1: unexpected symbol", err)
  end)

  it("a missing script: exit 1", function()
    local code, _, err = lasync_cmd("/nonexistent/script.lua")
    assert.are.equal(1, code)
    assert.matches("^lasync: cannot open /nonexistent/script%.lua", err)
  end)

  it("a deadlocked main chunk: exit 1 with the deadlock message", function()
    local code, _, err = helper.run_script("lasync.Future():await()")
    assert.are.equal(1, code)
    assert.matches("^lasync: lasync%.run: deadlock: the main task is waiting",
      err)
  end)

  it("lasync.run inside another task of the command is an error",
    function()
      local code, _, err = helper.run_script([[
        lasync.spawn(function() lasync.run(function() end) end):await()]])
      assert.are.equal(1, code)
      assert.matches("lasync.run: cannot be called while an event loop is " ..
        "running", err, 1, true)
    end)
end)

-- A script written for lua5.4: require "lasync" and lasync.run(main).
local RUN_SCRIPT = [[
local lasync = require "lasync"

local function main(a, b)
  lasync.sleep(0.001)
  print("main", a, b, lasync.current_task():get_name())
  return a + b, "two"
end

print("result", lasync.run(main, 1, 2))
print("again", lasync.run(function() lasync.sleep(0) return "ok" end))
print(pcall(lasync.run, function() lasync.sleep(0) error("boom", 0) end))
]]
local RUN_OUT = "main\t1\t2\tmain\nresult\t3\ttwo\nagain\tok\n" ..
  "false\tboom\n"

describe("lasync.run(main) in a script for lua5.4", function()
  it("runs under the stock lua5.4", function()
    local path = temp_script(RUN_SCRIPT)
    local code, out, err = helper.capture("lua5.4 " .. path)
    os.remove(path)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(RUN_OUT, out)
  end)

  it("runs unchanged under the lasync command: main is awaited", function()
    local code, out, err = helper.run_script(RUN_SCRIPT)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(RUN_OUT, out)
  end)

  it("the first example of docs/asyncio.md runs both ways", function()
    local f = assert(io.open("docs/asyncio.md"))
    local example = f:read("a"):match("\n```lua\n(.-)```\n")
    f:close()
    assert.matches("lasync.run(main)", example, 1, true)
    local path = temp_script(example)
    local code1, out1, err1 = helper.capture("lua5.4 " .. path)
    local code2, out2, err2 = helper.capture(helper.bin .. " " .. path)
    os.remove(path)
    assert.are.same({ 0, "A\tB\nC\tD\n", "" }, { code1, out1, err1 })
    assert.are.same({ 0, "A\tB\nC\tD\n", "" }, { code2, out2, err2 })
  end)

  it("from -e too (the main task)", function()
    local code, out, err = lasync_cmd([[-e "print(lasync.run(function(x) ]] ..
      [[lasync.sleep(0) return x end, 5))"]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("5\n", out)
  end)

  it("main's error ends the command as it ends lua5.4", function()
    local code, _, err = helper.run_script([[
      lasync.run(function() lasync.sleep(0) error("boom") end)]])
    assert.are.equal(1, code)
    assert.matches("^lasync: [^\n]*:1: boom\nstack traceback of task " ..
      "'main':\n", err)
  end)

  it("is still refused from a callback or a coroutine of the main task",
    function()
      local code, out, err = helper.run_script([[
        local f = function() end
        local loop = lasync.get_running_loop()
        local fut = lasync.Future()
        loop:call_soon(function()
          fut:set_result(select(2, pcall(lasync.run, f)))
        end)
        print(fut:await())
        print(select(2, coroutine.wrap(function()
          return pcall(lasync.run, f)
        end)()))]])
      assert.are.equal("", err)
      assert.are.equal(0, code)
      local msg = "lasync.run: cannot be called while an event loop is " ..
        "running"
      local a, b = out:match("^([^\n]*)\n([^\n]*)\n$")
      assert.matches(msg, a, 1, true)
      assert.matches(msg, b, 1, true)
    end)
end)

describe("lasync command reports", function()
  it("'Task exception was never retrieved' for a failed task nobody awaited",
    function()
      local code, out, err = helper.run_script([[
lasync.create_task({ name = "orphan" }, function()
  error("lost")
end)
lasync.sleep(0.005)
print("main done")
]])
      assert.are.equal(0, code)
      assert.are.equal("main done\n", out)
      assert.matches("lasync: Task exception was never retrieved (task " ..
        "'orphan'): ", err, 1, true)
      assert.matches("lasync: Task exception was never retrieved %(task " ..
        "'orphan'%): [^\n]*%.lua:2: lost\n", err)
      assert.matches("stack traceback of task 'orphan':", err, 1, true)
    end)

  it("nothing for failed tasks whose error was retrieved", function()
    local code, out, err = helper.run_script([[
local a = lasync.create_task(function() error("awaited") end)
local b = lasync.create_task(function() error("looked at") end)
local c = lasync.create_task(function() error("gathered") end)
local d = lasync.create_task(function() error("first") end)
pcall(a.await, a)
lasync.sleep(0)
assert(b:exception())
lasync.gather(c, { return_exceptions = true })
pcall(lasync.gather, d)
collectgarbage()
collectgarbage()
lasync.sleep(0.002)
print("ok")
]])
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("ok\n", out)
  end)

  it("nothing for a later child error of a gather that already failed, even "
    .. "once the gather is collected (asyncio marks it retrieved)", function()
      local code, out, err = helper.run_script([[
local d = lasync.create_task(function() error("first") end)
local e = lasync.create_task(function() lasync.sleep(0.002) error("second") end)
pcall(lasync.gather, d, e)
collectgarbage()
collectgarbage()
lasync.sleep(0.005)
print("ok")
]])
      assert.are.equal(0, code)
      assert.are.equal("ok\n", out)
      assert.are.equal("", err)
    end)

  it("names the tasks cancelled at exit", function()
    local code, out, err = helper.run_script([[
lasync.create_task({ name = "bg" }, function()
  lasync.sleep(10)
end)
lasync.create_task(function()
  lasync.sleep(10)
end)
lasync.sleep(0)
print("main done")
]])
    assert.are.equal(0, code)
    assert.are.equal("main done\n", out)
    assert.matches("lasync: cancelling 2 pending tasks at exit: bg " ..
      "%([^\n]*%.lua:2%), Task%-%d+ %([^\n]*%.lua:5%)\n", err)
  end)

  it("names a single leftover task in the singular", function()
    local _, _, err = helper.run_script([[
lasync.create_task({ name = "solo" }, function() lasync.sleep(10) end)
lasync.sleep(0)
]])
    assert.matches("lasync: cancelling 1 pending task at exit: solo %(", err)
  end)

  it("names where a leftover task that never started is defined",
    function()
      local _, _, err = helper.run_script([[
lasync.create_task({ name = "unstarted" }, function()
  lasync.sleep(10)
end)
]])
      -- the brief documents "name (file:line)"; "?" tells nothing
      local where = err:match("lasync: cancelling 1 pending task at exit: " ..
        "unstarted %(([^\n]*)%)\n")
      assert.is_not_nil(where, err)
      assert.are_not.equal("?", where)
    end)

  it("prints nothing at exit when no task is left", function()
    local code, out, err = helper.run_script([[
local t = lasync.create_task(function() lasync.sleep(0.001) end)
t:await()
]])
    assert.are.equal(0, code)
    assert.are.equal("", out)
    assert.are.equal("", err)
  end)

  it("reports an error in a leftover's cleanup", function()
    local code, _, err = helper.run_script([[
lasync.create_task({ name = "cleanup" }, function()
  pcall(lasync.sleep, 10)
  error("cleanup failed")
end)
lasync.sleep(0)
]])
    assert.are.equal(0, code)
    assert.matches("cleanup failed", err, 1, true)
  end)

  it("the default exception handler prints callback errors; the loop goes "
    .. "on", function()
      local code, out, err = helper.run_script([[
lasync.get_running_loop():call_soon(function()
  error("cb boom")
end)
lasync.sleep(0.001)
print("still running")
]])
      assert.are.equal(0, code)
      assert.are.equal("still running\n", out)
      assert.matches("^lasync: exception in callback: [^\n]*%.lua:2: cb boom\n" ..
        "stack traceback:\n", err)
    end)

  it("default_exception_handler prints a context", function()
    local code, _, err = helper.run_script([[
lasync.get_running_loop():default_exception_handler({
  message = "custom message", exception = "the error" })
lasync.get_running_loop():call_exception_handler({
  message = "second", exception = "via call" })
]])
    assert.are.equal(0, code)
    assert.matches("lasync: custom message: the error\n", err, 1, true)
    assert.matches("lasync: second: via call\n", err, 1, true)
  end)

  it("an error in the exception handler itself is printed", function()
    local code, out, err = helper.run_script([[
local loop = lasync.get_running_loop()
loop:set_exception_handler(function() error("handler broke") end)
loop:call_soon(function() error("x") end)
lasync.sleep(0)
print("survived")
]])
    assert.are.equal(0, code)
    assert.are.equal("survived\n", out)
    assert.matches("lasync: exception in the exception handler: [^\n]*" ..
      "handler broke", err)
    assert.matches("lasync: exception in callback: [^\n]*: x\n", err)
  end)
end)

describe("lasync --debug", function()
  local hog_then_await = [[
local t = lasync.create_task({ name = "hog" }, function()
  local t0 = os.clock()
  while os.clock() - t0 < 0.15 do end
  lasync.sleep(0.001)
end)
t:await()
]]

  it("warns about a task step that blocks the loop, naming the task",
    function()
      local code, _, err = run_with("--debug", hog_then_await)
      assert.are.equal(0, code)
      local where, secs = err:match("lasync: task 'hog' %(([^)]*)%) blocked " ..
        "the event loop for (%d+%.%d+) s\n")
      assert.is_not_nil(where, err)
      assert.matches("%.lua:4$", where)
      assert.is_true(tonumber(secs) >= 0.1, secs)
    end)

  it("is also turned on by LASYNC_DEBUG=1", function()
    local code, _, err = run_with("", hog_then_await, "", "LASYNC_DEBUG=1")
    assert.are.equal(0, code)
    assert.matches("lasync: task 'hog' %(.-%) blocked the event loop for", err)
  end)

  it("does not warn without debug mode", function()
    local code, _, err = run_with("", hog_then_await)
    assert.are.equal(0, code)
    assert.are.equal("", err)
  end)

  it("does not warn about quick steps", function()
    local code, _, err = run_with("--debug", [[
for _ = 1, 10 do lasync.sleep(0.001) end
]])
    assert.are.equal(0, code)
    assert.are.equal("", err)
  end)

  it("names file:line for a task that blocks in its last step", function()
    local code, _, err = run_with("--debug", [[
local t = lasync.create_task({ name = "hog" }, function()
  local t0 = os.clock()
  while os.clock() - t0 < 0.15 do end
end)
t:await()
]])
    assert.are.equal(0, code)
    assert.matches("lasync: task 'hog' %([^\n]*%.lua:%d+%) blocked the event " ..
      "loop for", err)
  end)

  it("warns about a slow callback too (asyncio's slow_callback_duration)",
    function()
      local code, _, err = run_with("--debug", [[
lasync.get_running_loop():call_soon(function()
  local t0 = os.clock()
  while os.clock() - t0 < 0.15 do end
end)
lasync.sleep(0.001)
]])
      assert.are.equal(0, code)
      assert.matches("blocked the event loop for", err, 1, true)
    end)

  it("lasync.set_debug(true) turns it on for the running loop", function()
    local code, _, err = helper.run_script("lasync.set_debug(true)\n" ..
      hog_then_await)
    assert.are.equal(0, code)
    assert.matches("lasync: task 'hog' %(.-%) blocked the event loop for", err)
  end)

  it("loop:set_debug(true) turns it on for the running loop", function()
    local code, _, err = helper.run_script([[
lasync.get_running_loop():set_debug(true)
]] .. hog_then_await)
    assert.are.equal(0, code)
    assert.matches("lasync: task 'hog' %(.-%) blocked the event loop for", err)
  end)
end)
