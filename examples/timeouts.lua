-- timeouts.lua: asyncio.timeout and asyncio.timeout_at, nested.
--
-- Ports `async with asyncio.timeout(delay):`. lasync.timeout(delay, fn,
-- ...) runs fn in the calling task; when the delay passes, fn's current
-- await is cancelled and that cancellation comes out as TimeoutError
-- (its .cause is the CancelledError). Nested timeouts each convert only
-- their own cancellation: the inner one expiring can be handled inside
-- the outer one, and the outer one expiring passes through the inner one.
-- Run: build/lasync examples/timeouts.lua
-- Expected output (about 0.6 s):
--   in time: 42 (at 0.1 s)
--   expired: TimeoutError, caused by CancelledError (at 0.2 s)
--   inner expired at 0.3 s, handled inside the outer timeout
--   outer finished at 0.4 s: fallback
--   inner saw: CancelledError (at 0.5 s)
--   outer raised: TimeoutError (at 0.5 s)
--   timeout_at: TimeoutError (at 0.6 s)

local loop = lasync.get_running_loop()
local start = loop:time()
local function now() return ("%.1f s"):format(loop:time() - start) end

-- In time: timeout returns what fn returns.
local answer = lasync.timeout(0.5, lasync.sleep, 0.1, 42)
print(("in time: %d (at %s)"):format(answer, now()))

-- Too slow: TimeoutError, whose cause is the cancellation it replaced.
local ok, err = pcall(lasync.timeout, 0.1, lasync.sleep, 10)
assert(not ok and lasync.is_timeout(err))
print(("expired: %s, caused by %s (at %s)")
  :format(tostring(err), tostring(err.cause), now()))

-- The inner deadline (0.1 s) comes first: handled inside the outer one.
local result = lasync.timeout(1, function()
  local ok2 = pcall(lasync.timeout, 0.1, lasync.sleep, 10)
  if not ok2 then
    print(("inner expired at %s, handled inside the outer timeout")
      :format(now()))
  end
  lasync.sleep(0.1)                -- the outer deadline still holds
  return "fallback"
end)
print(("outer finished at %s: %s"):format(now(), result))

-- The outer deadline (0.1 s) comes first: the inner timeout sees a plain
-- CancelledError, not a TimeoutError, and passes it on.
ok, err = pcall(lasync.timeout, 0.1, function()
  local _, err2 = pcall(lasync.timeout, 1, lasync.sleep, 10)
  print(("inner saw: %s (at %s)"):format(tostring(err2), now()))
  error(err2, 0)
end)
assert(not ok and lasync.is_timeout(err))
print(("outer raised: %s (at %s)"):format(tostring(err), now()))

-- timeout_at takes an absolute deadline on the loop's clock.
ok, err = pcall(lasync.timeout_at, loop:time() + 0.1, lasync.sleep, 10)
print(("timeout_at: %s (at %s)"):format(tostring(err), now()))
