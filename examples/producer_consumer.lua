-- producer_consumer.lua: asyncio.Queue between producers and consumers.
--
-- Ports the classic asyncio producer/consumer: producers put items into a
-- bounded queue (asyncio.Queue(maxsize=2)); consumers loop forever on
-- q:get() and call q:task_done() after each item. Once the producers are
-- done, q:join() waits until every item is processed; then the consumers
-- are cancelled, and gather with return_exceptions = true collects the
-- producers' results and the consumers' CancelledErrors.
-- Run: build/lasync examples/producer_consumer.lua
-- Expected output (about 0.5 s):
--   p1 put p1-1 / c1 got p1-1 / p2 put p2-1 / c2 got p2-1 / p1 put p1-2 /
--   c1 got p1-2 / p1 put p1-3 / p2 put p2-2 / c2 got p1-3 / c1 got p2-2 /
--   p2 put p2-3 / c1 got p2-3   (one per line)
--   all 6 items processed at 0.5 s: cancelling the consumers
--   gathered: 3 3 CancelledError CancelledError
--   tally: produced 6, consumed 6 (c1 4, c2 2): nothing lost

local loop = lasync.get_running_loop()
local start = loop:time()
local q = lasync.Queue(2)                 -- put waits while 2 items wait
local produced, consumed = 0, { c1 = 0, c2 = 0 }

local function producer(name, every)
  for i = 1, 3 do
    lasync.sleep(every)                   -- "making" an item takes time
    local item = name .. "-" .. i
    q:put(item)
    produced = produced + 1
    print(name .. " put " .. item)
  end
  return 3
end

local function consumer(name, takes)
  while true do                           -- until cancelled
    local item = q:get()
    print(name .. " got " .. item)
    lasync.sleep(takes)                   -- processing the item
    consumed[name] = consumed[name] + 1
    q:task_done()
  end
end

local consumers = { lasync.spawn(consumer, "c1", 0.11),
                    lasync.spawn(consumer, "c2", 0.15) }
local producers = { lasync.spawn(producer, "p1", 0.08),
                    lasync.spawn(producer, "p2", 0.13) }

lasync.gather(producers)                  -- every item is in the queue...
q:join()                                  -- ...and processed
print(("all %d items processed at %.1f s: cancelling the consumers")
  :format(produced, loop:time() - start))
for _, c in ipairs(consumers) do c:cancel() end

local results = lasync.gather({ producers[1], producers[2], consumers[1],
  consumers[2] }, { return_exceptions = true })
for i = 1, results.n do results[i] = tostring(results[i]) end
print("gathered: " .. table.concat(results, " "))

local total = consumed.c1 + consumed.c2
print(("tally: produced %d, consumed %d (c1 %d, c2 %d): %s"):format(produced,
  total, consumed.c1, consumed.c2,
  total == produced and q:empty() and "nothing lost" or "ITEMS LOST"))
