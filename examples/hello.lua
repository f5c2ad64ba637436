-- hello.lua: a first tour of lasync, the "hello world" of asyncio.
--
-- Ports asyncio.create_task, concurrent asyncio.sleep, asyncio.gather and
-- asyncio.timeout. `make run` runs it; so does
--   build/lasync examples/hello.lua
-- The script itself is the main task, so its top level may await.
-- Expected output (about 0.4 s in all):
--   hello   (at 0.1 s)
--   world   (at 0.2 s)
--   both tasks done at 0.2 s, not 0.3 s: their sleeps overlapped
--   squares: 1 4 9 (at 0.3 s)
--   timeout: TimeoutError (at 0.4 s)

local loop = lasync.get_running_loop()
local start = loop:time()
local function now() return ("%.1f s"):format(loop:time() - start) end

local function say_after(delay, what)
  lasync.sleep(delay)          -- suspends this task only, not the loop
  print(("%-7s (at %s)"):format(what, now()))
end

-- Two tasks: they start on the next loop iteration and sleep at the same
-- time, so waiting for both takes the longest delay, not the sum.
local t1 = lasync.create_task(say_after, 0.1, "hello")
local t2 = lasync.create_task(say_after, 0.2, "world")
t1:await()
t2:await()
print(("both tasks done at %s, not 0.3 s: their sleeps overlapped")
  :format(now()))

-- gather runs functions as tasks and returns their results in argument
-- order, as several return values.
local function square(x)
  lasync.sleep(0.1)
  return x * x
end
local a, b, c = lasync.gather(function() return square(1) end,
                              function() return square(2) end,
                              function() return square(3) end)
print(("squares: %d %d %d (at %s)"):format(a, b, c, now()))

-- timeout cancels what runs too long and raises TimeoutError instead.
local ok, err = pcall(lasync.timeout, 0.1, lasync.sleep, 10)
assert(not ok and lasync.is_timeout(err))
print(("timeout: %s (at %s)"):format(tostring(err), now()))
