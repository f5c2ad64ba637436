-- gather.lua: asyncio.gather, results in argument order and errors.
--
-- Ports asyncio.gather: children run concurrently, results come back in
-- the order of the arguments (not of completion); the first error is
-- raised to the caller (the other children keep running) unless
-- return_exceptions is set, which puts error objects in place instead,
-- a cancelled child's CancelledError included.
-- Run: build/lasync examples/gather.lua
-- Expected output (about 0.4 s):
--   finished: fast, medium, slow
--   results in argument order: slow medium fast (at 0.3 s)
--   list form: 4 values, n = 4: 1 4 9 16
--   first error propagates: ValueError: no such user
--   return_exceptions:
--     [1] 42
--     [2] ValueError: no such user
--     [3] CancelledError: not needed any more

local ValueError = lasync.error_class("ValueError")
local loop = lasync.get_running_loop()
local start = loop:time()

local finished = {}
local function job(name, delay)
  return function()
    lasync.sleep(delay)
    finished[#finished + 1] = name
    return name
  end
end

-- Several awaitables in, as many values out, in argument order.
local r1, r2, r3 = lasync.gather(job("slow", 0.3), job("medium", 0.2),
                                 job("fast", 0.1))
print("finished: " .. table.concat(finished, ", "))
print(("results in argument order: %s %s %s (at %.1f s)")
  :format(r1, r2, r3, loop:time() - start))

-- A list in, a table out (with .n, so nil results are kept).
local jobs = {}
for i = 1, 4 do jobs[i] = function() lasync.sleep(0); return i * i end end
local squares = lasync.gather(jobs)
print(("list form: %d values, n = %d: %s")
  :format(#squares, squares.n, table.concat(squares, " ")))

local function answer() return lasync.sleep(0.05, 42) end
local function lookup()
  lasync.sleep(0.01); error(ValueError("no such user"))
end

-- Without return_exceptions the first error is raised here.
local _, err = pcall(lasync.gather, answer, lookup)
print("first error propagates: " .. tostring(err))

-- With it, every child's outcome is returned in place.
local doomed = lasync.create_task(lasync.sleep, 10)
loop:call_later(0.02, function() doomed:cancel("not needed any more") end)
local results = table.pack(lasync.gather(answer, lookup, doomed,
                                         { return_exceptions = true }))
print("return_exceptions:")
for i = 1, results.n do print(("  [%d] %s"):format(i, tostring(results[i]))) end
