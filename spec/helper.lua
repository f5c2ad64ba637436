-- spec/helper.lua: every async spec runs its body through helper.run, which
-- runs it as the main task of lasync.run under a watchdog and checks
-- afterwards that no task or callback is left anchored and no loop is left
-- open. LASYNC_TEST_TIMEOUT_MULTIPLIER scales the watchdog (sanitizer
-- builds raise it), as libuv's UV_TEST_TIMEOUT_MULTIPLIER does.
local lasync = require "lasync"

local M = { lasync = lasync }

local multiplier = tonumber(os.getenv("LASYNC_TEST_TIMEOUT_MULTIPLIER")) or 1

local function counts()
  collectgarbage()
  collectgarbage()
  return lasync._stats()
end

-- Run body(...) as the main task; fail if it takes longer than `timeout`
-- seconds (default 5, scaled) or leaves tasks, callbacks or loops behind.
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

-- Run a lasync script (source text) with the lasync command; returns exit
-- status, stdout and stderr.
function M.run_script(source, args)
  local dir = os.tmpname()
  os.remove(dir)
  local script = dir .. ".lua"
  local f = assert(io.open(script, "w"))
  f:write(source)
  f:close()
  local bin = os.getenv("LASYNC_BIN") or "build/lasync"
  local cmd = ("%s %s %s >%s.out 2>%s.err"):format(bin, script, args or "",
    dir, dir)
  local ok, _, code = os.execute(cmd)
  local function slurp(p)
    local h = io.open(p)
    local s = h and h:read("a") or ""
    if h then h:close() end
    os.remove(p)
    return s
  end
  local out, err = slurp(dir .. ".out"), slurp(dir .. ".err")
  os.remove(script)
  return ok and 0 or code, out, err
end

return M
