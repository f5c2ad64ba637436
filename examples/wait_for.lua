-- wait_for.lua: asyncio.wait_for, a timeout on one awaitable.
--
-- Ports asyncio.wait_for: the result comes back if it is in time; if not,
-- the task is cancelled, wait_for WAITS for it to finish cancelling (its
-- cleanup runs first, even when that cleanup itself awaits), and only
-- then raises TimeoutError. A function runs in the calling task.
-- Run: build/lasync examples/wait_for.lua
-- Expected output (about 0.5 s):
--   in time: report ready (at 0.1 s)
--   slow: cancelled at 0.3 s, cleaning up
--   slow: cleanup done at 0.4 s
--   wait_for: TimeoutError at 0.4 s; task cancelled() = true
--   function form: TimeoutError at 0.5 s

local loop = lasync.get_running_loop()
local start = loop:time()
local function now() return ("%.1f s"):format(loop:time() - start) end

local function fetch(delay, what)
  lasync.sleep(delay)
  return what .. " ready"
end

-- In time: wait_for returns what the task returns.
local report = lasync.wait_for(lasync.create_task(fetch, 0.1, "report"), 0.5)
print(("in time: %s (at %s)"):format(report, now()))

-- Too slow: the task sees a CancelledError at its current await. Like
-- `except CancelledError: cleanup(); raise`, it cleans up and re-raises.
local function slow()
  local ok, err = pcall(lasync.sleep, 10)
  if ok then return "slow ready" end
  if lasync.is_cancelled(err) then
    print(("slow: cancelled at %s, cleaning up"):format(now()))
    lasync.sleep(0.1)              -- cleanup may await too
    print(("slow: cleanup done at %s"):format(now()))
  end
  error(err, 0)                    -- re-raise: the task ends cancelled
end
local task = lasync.create_task(slow)
local ok, err = pcall(lasync.wait_for, task, 0.2)
assert(not ok and lasync.is_timeout(err))
print(("wait_for: %s at %s; task cancelled() = %s")
  :format(tostring(err), now(), task:cancelled()))

-- A function is not turned into a task: it runs here, under the timeout.
ok, err = pcall(lasync.wait_for, function() return fetch(1, "never") end, 0.1)
print(("function form: %s at %s"):format(tostring(err), now()))
