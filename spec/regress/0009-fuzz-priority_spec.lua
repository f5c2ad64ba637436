-- Issue 9, found by the API fuzzer: PriorityQueue:put and put_nowait with
-- priorities that cannot be compared raised Lua's "attempt to compare
-- string with boolean", naming nothing (asyncio raises TypeError from
-- heapq). Now: a clear error naming the method, raised before the queue
-- changes (and before put waits), the queue still consistent afterwards.
local helper = require "helper"
local lasync = helper.lasync
local raises_msg = helper.raises_msg

-- what the errors call v: its class name, or its type
local function typename(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(rawget(mt, "__name")) == "string" and
      mt.__name or type(v)
end

local function drain(pq)
  local out = {}
  while not pq:empty() do
    local p, item = pq:get_nowait()
    out[#out + 1] = { p, item }
  end
  return out
end

describe("regress 0009: PriorityQueue priorities that cannot compare",
  function()
    it("are refused by type, naming the method, the queue unchanged",
      function()
        local pq = lasync.PriorityQueue()
        pq:put_nowait(3, "c")
        pq:put_nowait(1, "a")
        pq:put_nowait(2, "b")
        local bad = table.pack(true, false, {}, print,
          coroutine.create(print), io.stdout, lasync.Lock())
        for i = 1, bad.n do
          raises_msg("lasync.PriorityQueue:put_nowait: priority must be " ..
            "a number, a string or a value with __lt (got " ..
            typename(bad[i]) .. ")", pq.put_nowait, pq, bad[i], "x")
        end
        raises_msg("lasync.PriorityQueue:put_nowait: a string priority " ..
          "does not compare with the number priorities in the queue",
          pq.put_nowait, pq, "s", "x")
        assert.are.equal(3, pq:qsize())
        assert.are.same({ { 1, "a" }, { 2, "b" }, { 3, "c" } }, drain(pq))
        -- only the good items count for task_done
        for _ = 1, 3 do pq:task_done() end
        assert.has_error(function() pq:task_done() end)
        -- empty again: strings now, and numbers refused
        pq:put_nowait("b", 2)
        pq:put_nowait("a", 1)
        raises_msg("lasync.PriorityQueue:put_nowait: a number priority " ..
          "does not compare with the string priorities in the queue",
          pq.put_nowait, pq, 1, "x")
        assert.are.same({ { "a", 1 }, { "b", 2 } }, drain(pq))
      end)

    it("put refuses before it waits, in a full queue", function()
      helper.run(function()
        local pq = lasync.PriorityQueue(1)
        pq:put(1, "a")
        raises_msg("lasync.PriorityQueue:put: priority must be a number, " ..
          "a string or a value with __lt (got boolean)", pq.put, pq, true,
          "x")
        raises_msg("lasync.PriorityQueue:put: a string priority does not " ..
          "compare with the number priorities in the queue", pq.put, pq,
          "s", "x")
        assert.are.same({ { 1, "a" } }, drain(pq))
      end)
    end)

    it("a putter woken after the queue changed type is checked again",
      function()
        helper.run(function()
          local pq = lasync.PriorityQueue(2)
          pq:put("s1", "first")
          pq:put("s2", "second")
          local putter = lasync.spawn(function()
            return pcall(pq.put, pq, "t", "third")
          end)
          lasync.sleep(0)
          -- make room (the putter is woken), then change the queue to
          -- numbers before the putter runs: its string no longer compares
          assert.are.equal("s1", (pq:get_nowait()))
          assert.are.equal("s2", (pq:get_nowait()))
          pq:put_nowait(5, "five")
          local ok, err = putter:await()
          assert.is_false(ok)
          assert.matches("lasync.PriorityQueue:put: a string priority does " ..
            "not compare with the number priorities in the queue", err, 1,
            true)
          assert.are.same({ { 5, "five" } }, drain(pq))
        end)
      end)
  end)
