-- futures.lua: asyncio.Future, a result that someone else provides.
--
-- Ports asyncio.Future: one task awaits a future, another task sets its
-- result. A lasync future can carry several values (set_result(a, b)
-- resumes the awaiter with a, b). Done callbacks run via the loop, never
-- inside set_result itself; a future is resolved only once; set_exception
-- makes its awaiters raise.
-- Run: build/lasync examples/futures.lua
-- Expected output (about 0.2 s):
--   waiting for the future: pending
--   producer: setting the result at 0.1 s
--   producer: set_result returned; the callback has not run yet
--   got: 200 OK text/plain (at 0.1 s)
--   callback: the future is done
--   second set_result: InvalidStateError
--   failed future: ConnectionError: connection reset (at 0.2 s)

local loop = lasync.get_running_loop()
local start = loop:time()
local function now() return ("%.1f s"):format(loop:time() - start) end

local response = lasync.Future()

lasync.create_task(function()
  lasync.sleep(0.1)
  print(("producer: setting the result at %s"):format(now()))
  response:add_done_callback(function(f)
    print("callback: the future is " .. (f:done() and "done" or "pending"))
  end)
  response:set_result(200, "OK", "text/plain")   -- three values
  print("producer: set_result returned; the callback has not run yet")
end)

print("waiting for the future: " .. (response:done() and "done" or "pending"))
local status, reason, ctype = response:await()
print(("got: %d %s %s (at %s)"):format(status, reason, ctype, now()))
lasync.sleep(0)                    -- one loop iteration: the callback runs

-- A future is resolved once: a second set_result is an error.
local ok, err = pcall(response.set_result, response, 500)
assert(not ok and lasync.is_error(err, lasync.InvalidStateError))
print("second set_result: " .. tostring(err):match("^%w+"))

-- set_exception: every awaiter raises that error.
local ConnectionError = lasync.error_class("ConnectionError")
local failed = lasync.Future()
loop:call_later(0.1, function()
  failed:set_exception(ConnectionError("connection reset"))
end)
ok, err = pcall(failed.await, failed)
print(("failed future: %s (at %s)"):format(tostring(err), now()))
