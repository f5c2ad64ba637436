-- spec/helper.lua: every async spec runs its body through helper.run, which
-- runs it as the main task of lasync.run under a watchdog and checks
-- afterwards that no task or callback is left anchored, no loop is left
-- open, and the registry refs and libuv handles are back to their
-- baseline. LASYNC_TEST_TIMEOUT_MULTIPLIER scales the watchdog (sanitizer
-- builds raise it), as libuv's UV_TEST_TIMEOUT_MULTIPLIER does. Below
-- them, the small helpers the spec files share (assertions on errors,
-- tasks, test servers, temporary files and running commands).
local lasync = require "lasync"
-- the specs' assert (busted gives them luassert; this module sees Lua's)
local luassert = require "luassert"

local M = { lasync = lasync }

local multiplier = tonumber(os.getenv("LASYNC_TEST_TIMEOUT_MULTIPLIER")) or 1

local function counts()
  collectgarbage()
  collectgarbage()
  return lasync._stats()
end

-- Run body(...) as the main task; fail if it takes longer than `timeout`
-- seconds (default 5, scaled) or leaves tasks, callbacks, loops, registry
-- refs or libuv handles behind.
-- Returns body's results.
function M.run(body, timeout, ...)
  local before = counts()
  local limit = (timeout or 5) * multiplier
  local fired = false
  local results = table.pack(pcall(lasync.run, function(...)
    local main = lasync.current_task()
    local watchdog = lasync.get_running_loop():call_later(limit, function()
      fired = true
      main:cancel("watchdog")
    end)
    local res = table.pack(xpcall(body, lasync._note_traceback, ...))
    watchdog:cancel()
    if not res[1] then error(res[2], 0) end
    return table.unpack(res, 2, res.n)
  end, ...))
  local after = counts()
  if fired then error(("test timed out after %g s"):format(limit), 2) end
  if not results[1] then error(results[2], 0) end
  assert(after.anchors == before.anchors, ("%d task(s) or callback(s) " ..
    "left anchored"):format(after.anchors - before.anchors))
  assert(after.loops == before.loops, "an event loop was left open")
  assert(after.refs == before.refs, ("%d registry ref(s) left"):format(
    after.refs - before.refs))
  assert(after.handles == before.handles, ("%d libuv handle(s) left " ..
    "open"):format(after.handles - before.handles))
  return table.unpack(results, 2, results.n)
end

-- Seconds since an arbitrary point (the loop's monotonic clock).
function M.now()
  return lasync.get_running_loop():time()
end

-- Calls fn and returns the seconds it took followed by fn's results.
function M.timed(fn, ...)
  local t0 = M.now()
  local res = table.pack(fn(...))
  return M.now() - t0, table.unpack(res, 1, res.n)
end

-- The error fn(...) raises (fails the test if it does not raise).
function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return err
end

-- tostring(err) that cannot fail, for failure messages.
function M.show(e)
  if lasync.is_error(e) then
    local m = rawget(e, "message")
    return tostring(getmetatable(e).name) ..
        (type(m) == "string" and ": " .. m or "")
  end
  return tostring(e)
end

-- An event log: returns the list and a function that appends to it.
function M.recorder()
  local events = {}
  return events, function(e) events[#events + 1] = e end
end

-- A to-be-closed value that logs `name` when it is closed.
function M.closer(log, name)
  return setmetatable({}, { __close = function() log(name) end })
end

--{======================================================================
-- Helpers shared by the spec files
--=======================================================================

-- The lasync command to run, and the timeout multiplier (see above).
M.bin = os.getenv("LASYNC_BIN") or "build/lasync"
M.multiplier = multiplier

-- Text

-- s escaped for use as a literal in a Lua pattern.
function M.escape(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- s quoted for sh.
function M.shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Errors

-- fn(...) must raise a string error containing `text` (plain find).
-- Returns the error.
function M.raises_msg(text, fn, ...)
  local err = M.error_of(fn, ...)
  luassert.is_string(err, "expected a string error, got " .. M.show(err))
  luassert.matches(text, err, 1, true)
  return err
end

-- err must be an error of the lasync error class cls (called `name`).
function M.assert_class(cls, err, name)
  luassert(lasync.is_error(err, cls), ("expected %s, got %s"):format(name,
    M.show(err)))
end

-- fn(...) must raise an error of the lasync error class cls (called
-- `name`); returns it.
function M.raises(cls, name, fn, ...)
  local err = M.error_of(fn, ...)
  M.assert_class(cls, err, name)
  return err
end

-- Whether e is a lasync.OSError with one of the codes given (any code if
-- none is given).
function M.is_os_error(e, ...)
  if not lasync.is_error(e, lasync.OSError) then return false end
  for _, code in ipairs { ... } do
    if e.code == code then return true end
  end
  return select("#", ...) == 0
end

-- err must be a lasync.OSError with code `codes` (a code, or a list of the
-- codes accepted) and a positive integer errno, printing as "OSError: "
-- and its message. With fname, the message starts "lasync.<fname>: ".
-- With target, err.target is it and the message ends "(<target>)"; with
-- target false, err has no target. Returns err.
function M.assert_os_error(err, codes, fname, target)
  luassert(lasync.is_error(err, lasync.OSError), "expected OSError, got " ..
    M.show(err))
  if type(codes) ~= "table" then codes = { codes } end
  local ok = false
  for _, c in ipairs(codes) do ok = ok or err.code == c end
  luassert(ok, ("expected code %s, got %s"):format(table.concat(codes, "/"),
    tostring(err.code)))
  luassert.are.equal("integer", math.type(err.errno))
  luassert.is_true(err.errno > 0)
  if fname then
    luassert.matches("^lasync%." .. M.escape(fname) .. ": ", err.message)
  end
  if target then
    luassert.are.equal(target, err.target)
    luassert.matches("%(" .. M.escape(target) .. "%)$", err.message)
  elseif target == false then
    luassert.is_nil(err.target)
  end
  luassert.are.equal("OSError: " .. err.message, tostring(err))
  return err
end

-- fn(...) must raise a lasync.OSError as assert_os_error checks; returns it.
function M.os_error(codes, fname, target, fn, ...)
  return M.assert_os_error(M.error_of(fn, ...), codes, fname, target)
end

-- Tasks

-- Await task t, which must end cancelled.
function M.assert_cancelled(t)
  local ok, err = pcall(t.await, t)
  luassert.is_false(ok, "expected " .. t:get_name() .. " to be cancelled")
  luassert(lasync.is_cancelled(err), "expected CancelledError, got " ..
    M.show(err))
  luassert.is_true(t:cancelled())
end

-- Let every ready task run until it blocks: `rounds` (default 3) loop
-- iterations.
function M.settle_all(rounds)
  for _ = 1, rounds or 3 do lasync.sleep(0) end
end

-- The "N waiting" count in tostring(x) (a Lock, Event...).
function M.waiting(x)
  return tonumber(tostring(x):match("(%d+) waiting"))
end

-- Poll cond every millisecond until it holds; TimeoutError after `limit`
-- seconds (default 2).
function M.wait_until(cond, limit)
  lasync.wait_for(function()
    while not cond() do lasync.sleep(0.001) end
  end, limit or 2)
end

-- Servers

-- Collect the loop's exception-handler reports (a fresh loop per test).
function M.capture_reports()
  local reports = {}
  lasync.get_running_loop():set_exception_handler(function(_, ctx)
    reports[#reports + 1] = ctx
  end)
  return reports
end

-- An echo handler for start_server: each line back, until EOF.
function M.echo(r, w)
  while true do
    local line = r:readline()
    if line == "" then break end
    w:write(line)
  end
  w:close()
end

-- start_server on a free loopback port with its handler tasks counted.
-- Returns the server, host, port and shutdown(), which closes the server
-- and waits (wait_until) until every handler has returned.
function M.serve(handler, opts)
  local active = 0
  local srv = lasync.start_server(function(r, w)
    active = active + 1
    local _ <close> = setmetatable({}, {
      __close = function() active = active - 1 end })
    return handler(r, w)
  end, "127.0.0.1", 0, opts)
  local host, port = srv:address()
  local function shutdown()
    srv:close()
    srv:wait_closed()
    M.wait_until(function() return active == 0 end)
  end
  return srv, host, port, shutdown
end

-- Files and commands

-- Run body(dir) through M.run (timeout default 3) with a fresh temporary
-- directory, removed afterwards whatever happens; returns body's results.
function M.in_dir(body, timeout)
  return M.run(function()
    local dir = lasync.fs.mkdtemp("/tmp/lasync-spec-XXXXXX")
    local res = table.pack(pcall(body, dir))
    os.execute("rm -rf " .. M.shell_quote(dir))
    if not res[1] then error(res[2], 0) end
    return table.unpack(res, 2, res.n)
  end, timeout or 3)
end

-- The contents of file `path` ("" if it cannot be read); removes the file.
function M.slurp(path)
  local h = io.open(path, "rb")
  local s = h and h:read("a") or ""
  if h then h:close() end
  os.remove(path)
  return s
end

-- Write `source` to a temporary .lua file; returns its path.
function M.temp_script(source)
  local path = os.tmpname()
  os.remove(path)
  path = path .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  return path
end

-- Run the shell command line `cmd` with its stdout and stderr captured.
-- Returns the exit status (the signal number if killed), stdout, stderr
-- and how it ended ("exit" or "signal").
function M.capture(cmd)
  local base = os.tmpname()
  local _, how, code = os.execute(("%s >%s.out 2>%s.err"):format(cmd, base,
    base))
  local out, err = M.slurp(base .. ".out"), M.slurp(base .. ".err")
  os.remove(base)
  return code, out, err, how
end

-- Run the lasync command with the (shell) argument string `args`, `env`
-- prepended (e.g. "LASYNC_DEBUG=1"), and `stdin` piped in if given (else
-- /dev/null); returns exit status, stdout and stderr.
function M.lasync_cmd(args, stdin, env)
  local cmd = ("%s%s %s"):format(env and env .. " " or "", M.bin, args)
  local input
  if stdin then
    input = M.temp_script(stdin)
    cmd = ("cat %s | %s"):format(input, cmd)
  else
    cmd = cmd .. " </dev/null"
  end
  local code, out, err = M.capture(cmd)
  if input then os.remove(input) end
  return code, out, err
end

-- Run a lasync script (source text) with the lasync command; returns exit
-- status, stdout and stderr.
function M.run_script(source, args)
  local script = M.temp_script(source)
  local code, out, err = M.capture(("%s %s %s"):format(M.bin, script,
    args or ""))
  os.remove(script)
  return code, out, err
end

-- }======================================================================

return M
