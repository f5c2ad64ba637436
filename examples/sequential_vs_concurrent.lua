-- sequential_vs_concurrent.lua: awaiting one after another vs tasks.
--
-- Ports the say_after example of asyncio's "Coroutines and Tasks" page.
-- In lasync a plain function call that sleeps is `await say_after(...)`:
-- the calling task waits for it, so three calls take the SUM of the delays.
-- Creating the tasks first lets the sleeps overlap: the MAX of the delays.
-- Run: build/lasync examples/sequential_vs_concurrent.lua
-- Expected output (about 0.9 s):
--   sequential:
--     a done at 0.1 s
--     b done at 0.3 s
--     c done at 0.6 s
--   sequential took 0.6 s (0.1 + 0.2 + 0.3)
--   concurrent:
--     a done at 0.1 s
--     b done at 0.2 s
--     c done at 0.3 s
--   concurrent took 0.3 s (the longest delay)

local loop = lasync.get_running_loop()
local delays = { a = 0.1, b = 0.2, c = 0.3 }
local names = { "a", "b", "c" }

local function say_after(start, name)
  lasync.sleep(delays[name])
  print(("  %s done at %.1f s"):format(name, loop:time() - start))
end

print("sequential:")
local start = loop:time()
for _, name in ipairs(names) do
  say_after(start, name)       -- like `await say_after(...)`: one at a time
end
print(("sequential took %.1f s (0.1 + 0.2 + 0.3)"):format(loop:time() - start))

print("concurrent:")
start = loop:time()
local tasks = {}
for i, name in ipairs(names) do
  tasks[i] = lasync.create_task(say_after, start, name)  -- none runs yet
end
for _, task in ipairs(tasks) do
  task:await()                 -- all three are sleeping at the same time
end
print(("concurrent took %.1f s (the longest delay)")
  :format(loop:time() - start))
