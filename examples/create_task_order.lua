-- create_task_order.lua: when does a new task start running?
--
-- Ports asyncio's non-eager create_task: create_task only schedules the
-- task; its body starts on the next loop iteration, in creation order,
-- once the current task yields (here with sleep(0), which yields exactly
-- one iteration). A task cancelled before its first step never runs.
-- Run: build/lasync examples/create_task_order.lua
-- Expected output (instant):
--   main: created A, B and C; A:done() = false
--   main: cancelled C before it started
--   main: sleep(0) yields to the loop
--   A: step 1
--   B: step 1
--   main: back after one loop iteration
--   A: step 2
--   B: step 2
--   A returned "A finished", B returned "B finished"
--   C: cancelled() = true, its body never ran

local function worker(name)
  print(name .. ": step 1")
  lasync.sleep(0)              -- back of the ready queue: the others go first
  print(name .. ": step 2")
  return name .. " finished"
end

local a = lasync.create_task({ name = "A" }, worker, "A")
local b = lasync.create_task({ name = "B" }, worker, "B")
local c = lasync.create_task({ name = "C" }, worker, "C")
-- Nothing has run yet: create_task never calls the function itself.
print(("main: created A, B and C; A:done() = %s"):format(a:done()))
c:cancel()
print("main: cancelled C before it started")

print("main: sleep(0) yields to the loop")
lasync.sleep(0)
print("main: back after one loop iteration")

print(("A returned %q, B returned %q"):format(a:await(), b:await()))
local ok, err = pcall(c.await, c) -- awaiting a cancelled task raises
assert(not ok and lasync.is_cancelled(err))
print(("C: cancelled() = %s, its body never ran"):format(c:cancelled()))
