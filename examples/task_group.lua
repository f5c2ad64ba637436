-- task_group.lua: asyncio.TaskGroup, structured concurrency.
--
-- Ports asyncio.TaskGroup: lasync.task_group(body) runs body(tg) and then
-- waits for every task spawned with tg:spawn. When a child fails, the
-- group cancels its siblings (and the body, if still running), waits for
-- them to finish, and raises an ExceptionGroup holding every child error.
-- Run: build/lasync examples/task_group.lua
-- Expected output (about 0.3 s):
--   group done at 0.2 s: both results: 1 2
--   download b: cancelled at 0.1 s, cleaning up
--   download c: cancelled at 0.1 s, cleaning up
--   ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)
--     [1] ValueError: a is corrupt
--   errors: 1, first is a ValueError: true

local ValueError = lasync.error_class("ValueError")
local loop = lasync.get_running_loop()
local start = loop:time()
local function now() return ("%.1f s"):format(loop:time() - start) end

-- The happy path: the group returns once both children are done.
local t1, t2
lasync.task_group(function(tg)
  t1 = tg:spawn(lasync.sleep, 0.1, 1)
  t2 = tg:spawn(lasync.sleep, 0.2, 2)
end)
print(("group done at %s: both results: %d %d")
  :format(now(), t1:result(), t2:result()))

local function download(name, delay)
  local ok, err = pcall(lasync.sleep, delay)
  if not ok then
    print(("download %s: cancelled at %s, cleaning up"):format(name, now()))
    error(err, 0)                  -- let the cancellation through
  end
  if name == "a" then error(ValueError(name .. " is corrupt")) end
  return name
end

-- "a" fails after 0.1 s: b and c, which would take 1 s, are cancelled.
start = loop:time()
local ok, err = pcall(lasync.task_group, function(tg)
  for _, name in ipairs({ "a", "b", "c" }) do
    tg:spawn(download, name, name == "a" and 0.1 or 1)
  end
end)
assert(not ok and lasync.is_error(err, lasync.ExceptionGroup))
print(tostring(err))
print(("errors: %d, first is a ValueError: %s")
  :format(#err.errors, lasync.is_error(err.errors[1], ValueError)))
