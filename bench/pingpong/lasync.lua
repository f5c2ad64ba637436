-- pingpong: two tasks pass a counter back and forth N round trips. The counter
-- travels through Futures (../qpingpong/lasync.lua does it through Queues):
-- ping sets the shared mailbox future to (c, reply) and awaits its own reply
-- future; pong awaits the mailbox, installs a fresh one, and answers on reply.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local N = tonumber(arg and arg[1]) or 500000

local inbox = lasync.Future() -- ping -> pong mailbox

local function ping()
  local c = 0
  for _ = 1, N do
    local reply = lasync.Future()
    inbox:set_result(c, reply) -- pong receives (c, reply)
    c = reply:await() + 1
  end
  return c
end

local function pong()
  for _ = 1, N do
    local v, reply = inbox:await()
    inbox = lasync.Future() -- fresh mailbox before answering
    reply:set_result(v + 1)
  end
end

local t0 = B.now()
local c = lasync.gather(lasync.spawn(ping), lasync.spawn(pong))
local dt = B.now() - t0
assert(c == 2 * N, "bad counter " .. tostring(c))
B.result("RESULT workload=pingpong peer=lasync n=%d seconds=%.6f rate=%.0f rss_kb=%d",
  N, dt, N / dt, B.peak_rss_kb())
