-- wait_as_completed.lua: asyncio.wait and asyncio.as_completed.
--
-- Ports asyncio.wait (FIRST_COMPLETED, timeout): it returns the done and
-- the pending tasks and never cancels anything; and asyncio.as_completed,
-- which hands the tasks back in completion order; with a timeout, the
-- iterator raises TimeoutError and again cancels nothing.
-- Run: build/lasync examples/wait_as_completed.lua
-- Expected output (about 0.8 s):
--   FIRST_COMPLETED: done = fetch-0.1, pending = fetch-0.2 fetch-0.3
--   timeout 0.05: done = fetch-0.1, pending = fetch-0.2 fetch-0.3
--   as_completed: fetch-0.1 at 0.1 s
--   as_completed: fetch-0.2 at 0.2 s
--   as_completed: fetch-0.3 at 0.3 s
--   as_completed timeout: got fetch-0.1, then TimeoutError at 0.2 s
--   fetch-0.3 was still running; now cancelled() = true

local loop = lasync.get_running_loop()

-- Tasks named after what they return, each sleeping the given delay.
local function fetches(...)
  local tasks = {}
  for i, delay in ipairs({ ... }) do
    local name = "fetch-" .. delay
    tasks[i] = lasync.create_task({ name = name }, lasync.sleep, delay, name)
  end
  return tasks
end

local function names(tasks)
  local list = {}
  for i, t in ipairs(tasks) do list[i] = t:get_name() end
  return table.concat(list, " ")
end

local tasks = fetches(0.1, 0.2, 0.3)
local done, pending = lasync.wait(tasks, { return_when = "FIRST_COMPLETED" })
print(("FIRST_COMPLETED: done = %s, pending = %s")
  :format(names(done), names(pending)))
done, pending = lasync.wait(tasks, { timeout = 0.05 })  -- cancelled nothing
print(("timeout 0.05: done = %s, pending = %s")
  :format(names(done), names(pending)))
lasync.wait(pending)               -- ALL_COMPLETED: let them finish

local start = loop:time()
for t in lasync.as_completed(fetches(0.3, 0.1, 0.2)) do
  print(("as_completed: %s at %.1f s"):format(t:await(), loop:time() - start))
end

start = loop:time()
local fast, slow = table.unpack(fetches(0.1, 0.3))
local got = {}
local ok, err = pcall(function()
  for t in lasync.as_completed({ fast, slow }, { timeout = 0.2 }) do
    got[#got + 1] = t:await()
  end
end)
assert(not ok and lasync.is_timeout(err))
print(("as_completed timeout: got %s, then %s at %.1f s")
  :format(table.concat(got, " "), tostring(err), loop:time() - start))
slow:cancel()
pcall(slow.await, slow)            -- wait until the cancellation is done
print(("%s was still running; now cancelled() = %s")
  :format(slow:get_name(), slow:cancelled()))
