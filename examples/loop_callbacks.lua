-- loop_callbacks.lua: the low-level event loop, without the lasync command.
--
-- Ports asyncio's loop.call_soon / call_later / run_forever / stop /
-- close: call_soon callbacks run FIFO, and one scheduled while an
-- iteration runs waits for the next; timers run by due time; an error in a
-- callback goes to the exception handler and the loop goes on; a callback
-- calling stop() makes run_forever return.
-- It drives its own loop, so it needs stock lua5.4 (in the lasync command
-- a loop is already running and a second one cannot run). From the root:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lib/?.so;;' \
--     lua5.4 examples/loop_callbacks.lua
-- Expected output (0.4 s):
--   0.0 s  call_soon #1
--   0.0 s  call_soon #2, which schedules #4
--   0.0 s  call_soon #3
--   0.0 s  call_soon #4: scheduled during an iteration, runs in the next
--   0.1 s  call_later(0.1)
--   0.2 s  exception handler: exception in callback: disk full
--   0.3 s  call_later(0.3) calls stop()
--   0.3 s  run_forever returned
--   0.4 s  run_until_complete: task result
--   closed: lasync.Loop:run_forever: the event loop is closed

local lasync = require "lasync"
assert(not pcall(lasync.get_running_loop), "run this file with lua5.4")

local loop = lasync.new_event_loop()
local start = loop:time()
local function log(fmt, ...)
  print(("%.1f s  " .. fmt):format(loop:time() - start, ...))
end
loop:set_exception_handler(function(_, context)
  local what = tostring(context.exception):gsub("^.-:%d+: ", "")
  log("exception handler: %s: %s", context.message, what)
end)

-- Timers, given out of order, run by due time; a cancelled one never runs.
loop:call_later(0.3, function()
  log("call_later(0.3) calls stop()")
  loop:stop()
end)
loop:call_later(0.2, function() error("disk full") end)
loop:call_later(0.1, log, "call_later(0.1)")
loop:call_later(0.1, log, "never printed: cancelled"):cancel()
-- Plain callbacks run first, in the order given:
loop:call_soon(log, "call_soon #1")
loop:call_soon(function()
  log("call_soon #2, which schedules #4")
  loop:call_soon(log, "call_soon #4: scheduled during an iteration, " ..
                 "runs in the next")
end)
loop:call_soon(log, "call_soon #3")
loop:run_forever()
log("run_forever returned")

-- Tasks run on this loop too: run one until it is done.
local task = loop:create_task(lasync.sleep, 0.1, "task result")
log("run_until_complete: %s", loop:run_until_complete(task))

loop:close()
print("closed: " .. select(2, pcall(loop.run_forever, loop)))
