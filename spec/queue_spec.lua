-- lasync.Queue, lasync.LifoQueue, lasync.PriorityQueue (asyncio.Queue & co.)
local helper = require "helper"
local lasync = helper.lasync
local recorder = helper.recorder
local assert_class, raises = helper.assert_class, helper.raises
local raises_msg = helper.raises_msg
local assert_cancelled, settle_all = helper.assert_cancelled, helper.settle_all

-- a task that gets one item from q, logs "<name> got <item>", returns it
local function getter(q, name, log)
  return lasync.spawn({ name = name }, function()
    local v = q:get()
    log(name .. " got " .. tostring(v))
    return v
  end)
end

-- a task that puts item into q and logs "<name> put <item>"
local function putter(q, name, item, log)
  return lasync.spawn({ name = name }, function()
    q:put(item)
    log(name .. " put " .. tostring(item))
  end)
end

local function drain(q)
  local out = {}
  while not q:empty() do out[#out + 1] = q:get_nowait() end
  return out
end

describe("lasync.Queue construction", function()
  it("is unbounded by default and with maxsize 0", function()
    for _, make in ipairs { lasync.Queue, lasync.LifoQueue,
      lasync.PriorityQueue } do
      local q = make()
      assert.are.equal(0, q:maxsize())
      assert.are.equal(0, make(0):maxsize())
      assert.are.equal(0, make(nil):maxsize())
      assert.is_false(q:full())
      assert.is_true(q:empty())
      assert.are.equal(0, q:qsize())
      assert.is_false(q:is_shutdown())
    end
  end)

  it("keeps the bound given; maxsize is a method", function()
    local q = lasync.Queue(3)
    assert.are.equal(3, q:maxsize())
    assert.are.equal("function", type(q.maxsize))
    assert.are.equal(2, lasync.LifoQueue(2):maxsize())
    assert.are.equal(5, lasync.PriorityQueue(5):maxsize())
  end)

  it("refuses negative and non-integer sizes, naming the class", function()
    local err = raises_msg("lasync.Queue: maxsize must be >= 0 (got -1)",
      lasync.Queue, -1)
    assert.matches("^lasync%.Queue", err)
    raises_msg("lasync.LifoQueue: maxsize must be >= 0 (got -5)",
      lasync.LifoQueue, -5)
    raises_msg("lasync.PriorityQueue: maxsize must be >= 0 (got -2)",
      lasync.PriorityQueue, -2)
    raises_msg("lasync.Queue: maxsize must be an integer (got number)",
      lasync.Queue, 1.5)
    raises_msg("lasync.Queue: maxsize must be an integer (got string)",
      lasync.Queue, "big")
    raises_msg("lasync.Queue: maxsize must be an integer (got table)",
      lasync.Queue, {})
  end)

  it("has a readable tostring", function()
    local q = lasync.Queue(4)
    q:put_nowait(1)
    assert.are.equal("lasync.Queue: 1 item, maxsize 4, 0 getter(s) and " ..
      "0 putter(s) waiting", tostring(q))
    q:put_nowait(2)
    q:shutdown()
    assert.are.equal("lasync.Queue: 2 items, maxsize 4, 0 getter(s) and " ..
      "0 putter(s) waiting, shut down", tostring(q))
    assert.matches("^lasync%.LifoQueue: 0 items", tostring(lasync.LifoQueue()))
    assert.matches("^lasync%.PriorityQueue: 0 items",
      tostring(lasync.PriorityQueue()))
  end)
end)

describe("lasync.Queue without waiting", function()
  it("put_nowait/get_nowait keep FIFO order and the counts", function()
    local q = lasync.Queue(3)
    q:put_nowait("a")
    q:put_nowait("b")
    assert.are.equal(2, q:qsize())
    assert.is_false(q:empty())
    assert.is_false(q:full())
    q:put_nowait("c")
    assert.is_true(q:full())
    assert.are.equal("a", q:get_nowait())
    assert.are.equal("b", q:get_nowait())
    assert.are.equal("c", q:get_nowait())
    assert.is_true(q:empty())
  end)

  it("put_nowait on a full queue raises QueueFull and changes nothing",
    function()
      local q = lasync.Queue(1)
      q:put_nowait(1)
      local err = raises(lasync.QueueFull, "QueueFull", q.put_nowait, q, 2)
      assert.are.equal("QueueFull", tostring(err))
      assert.are.equal(1, q:qsize())
      assert.are.equal(1, q:get_nowait())
      -- the refused item was not counted for join
      q:task_done()
      raises_msg("task_done: called more times", q.task_done, q)
    end)

  it("get_nowait on an empty queue raises QueueEmpty", function()
    local q = lasync.Queue()
    local err = raises(lasync.QueueEmpty, "QueueEmpty", q.get_nowait, q)
    assert.is_false(lasync.is_error(err, lasync.QueueFull))
    assert.is_true(lasync.is_error(err, lasync.Error))
    raises(lasync.QueueEmpty, "QueueEmpty", lasync.LifoQueue().get_nowait,
      lasync.LifoQueue())
    local pq = lasync.PriorityQueue()
    raises(lasync.QueueEmpty, "QueueEmpty", pq.get_nowait, pq)
  end)

  it("works outside a task (the nowait methods and the counters)",
    function()
      local q = lasync.Queue()
      q:put_nowait(1)
      assert.are.equal(1, q:get_nowait())
      q:task_done()
      q:shutdown()
      assert.is_true(q:is_shutdown())
    end)

  it("keeps FIFO order across the ring buffer's wrap-around and growth",
    function()
      local q = lasync.Queue()
      local n, expect = 0, 1
      for _ = 1, 50 do
        for _ = 1, 7 do
          n = n + 1
          q:put_nowait(n)
        end
        for _ = 1, 5 do
          assert.are.equal(expect, q:get_nowait())
          expect = expect + 1
        end
      end
      while not q:empty() do
        assert.are.equal(expect, q:get_nowait())
        expect = expect + 1
      end
      assert.are.equal(n + 1, expect)
      -- a bounded ring too
      local b = lasync.Queue(3)
      for i = 1, 20 do
        b:put_nowait(i)
        if b:full() then assert.are.equal(i - 2, b:get_nowait()) end
      end
      assert.are.same({ 19, 20 }, drain(b))
    end)

  it("refuses nil items, naming the method, and changes nothing", function()
    local q = lasync.Queue()
    raises_msg("lasync.Queue:put_nowait: item is nil (nil would end " ..
      "iteration; wrap it, e.g. in a table)", q.put_nowait, q, nil)
    raises_msg("lasync.Queue:put_nowait: item is nil", q.put_nowait, q)
    raises_msg("lasync.LifoQueue:put_nowait: item is nil",
      lasync.LifoQueue().put_nowait, lasync.LifoQueue(), nil)
    helper.run(function()
      raises_msg("lasync.Queue:put: item is nil", q.put, q, nil)
    end, 1)
    assert.are.equal(0, q:qsize())
    raises_msg("task_done: called more times", q.task_done, q)
    -- false is an item
    q:put_nowait(false)
    assert.are.equal(false, q:get_nowait())
  end)

  it("task_done raises when called more often than items were put",
    function()
      local q = lasync.Queue()
      raises_msg("lasync.Queue:task_done: called more times than there " ..
        "were items put", q.task_done, q)
      q:put_nowait(1)
      q:put_nowait(2)
      q:get_nowait()
      q:task_done()
      q:task_done() -- the second item was put, even if not taken yet
      raises_msg("lasync.Queue:task_done: called more times",
        q.task_done, q)
      local l = lasync.LifoQueue()
      raises_msg("lasync.LifoQueue:task_done: called more times",
        l.task_done, l)
    end)

  it("waiting methods refuse to run outside a task, naming the method",
    function()
      local q = lasync.Queue()
      q:put_nowait(1)
      raises_msg("lasync.Queue:get: not inside a task", q.get, q)
      raises_msg("lasync.Queue:put: not inside a task", q.put, q, 2)
      raises_msg("lasync.Queue:join: not inside a task", q.join, q)
      assert.are.equal(1, q:qsize()) -- nothing taken or added
      local l = lasync.LifoQueue()
      raises_msg("lasync.LifoQueue:get: not inside a task", l.get, l)
      local pq = lasync.PriorityQueue()
      raises_msg("lasync.PriorityQueue:put: not inside a task", pq.put, pq,
        1, "x")
      raises_msg("not inside a task", function()
        for _ in q:iter() do end
      end)
    end)

  it("get and put in a coroutine nested inside a task raise, naming " ..
    "the method", function()
      helper.run(function()
        local q = lasync.Queue(1)
        local ok, err = pcall(coroutine.wrap(function() return q:get() end))
        assert.is_false(ok)
        assert.matches("lasync.Queue:get: cannot await in a coroutine " ..
          "nested inside a task", err, 1, true)
        q:put(1)
        ok, err = pcall(coroutine.wrap(function() return q:put(2) end))
        assert.is_false(ok)
        assert.matches("lasync.Queue:put: cannot await in a coroutine",
          err, 1, true)
        assert.are.same({ 1 }, drain(q))
      end, 1)
    end)

  it("methods called on something else name the method", function()
    local q = lasync.Queue()
    local expected = "expected a Queue, LifoQueue or PriorityQueue"
    raises_msg("lasync.Queue:put: " .. expected .. " (got number)", q.put, 5)
    raises_msg("lasync.Queue:get_nowait: " .. expected .. " (got no value)",
      q.get_nowait)
    raises_msg("lasync.Queue:qsize: " .. expected .. " (got table)", q.qsize,
      {})
    raises_msg("lasync.Queue:task_done: " .. expected .. " (got string)",
      q.task_done, "q")
    raises_msg("lasync.Queue:shutdown: " .. expected .. " (got boolean)",
      q.shutdown, true)
  end)
end)

describe("lasync.Queue get and put", function()
  it("get returns at once without yielding when an item is there",
    function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        q:put_nowait("x")
        local t = lasync.spawn(function() log("other task") end)
        lasync.sleep(0) -- t has run
        local t2 = lasync.spawn(function() log("other task 2") end)
        assert.are.equal("x", q:get())
        q:put("y") -- unbounded: no wait either
        log("main")
        t:await()
        t2:await()
      end, 1)
      assert.are.same({ "other task", "main", "other task 2" }, events)
    end)

  it("get waits while empty; getters are woken in FIFO order", function()
    local events, log = recorder()
    helper.run(function()
      local q = lasync.Queue()
      local gs = { getter(q, "g1", log), getter(q, "g2", log),
        getter(q, "g3", log) }
      settle_all()
      assert.are.same({}, events)
      assert.matches("3 getter%(s%)", tostring(q))
      q:put("a")
      settle_all()
      q:put("b")
      q:put("c")
      for i, g in ipairs(gs) do
        assert.are.equal(string.char(96 + i), g:await())
      end
      assert.is_true(q:empty())
    end, 1)
    assert.are.same({ "g1 got a", "g2 got b", "g3 got c" }, events)
  end)

  it("put waits while full; putters are served in FIFO order", function()
    local events, log = recorder()
    helper.run(function()
      local q = lasync.Queue(2)
      q:put("a")
      q:put("b")
      local ps = { putter(q, "p1", "c", log), putter(q, "p2", "d", log),
        putter(q, "p3", "e", log) }
      settle_all()
      assert.are.same({}, events)
      assert.are.equal(2, q:qsize())
      assert.matches("3 putter%(s%)", tostring(q))
      local got = {}
      while #got < 5 do
        got[#got + 1] = q:get()
        log("main got " .. got[#got])
        settle_all()
      end
      for _, p in ipairs(ps) do p:await() end
      assert.are.same({ "a", "b", "c", "d", "e" }, got)
    end, 1)
    assert.are.same({ "main got a", "p1 put c", "main got b", "p2 put d",
      "main got c", "p3 put e", "main got d", "main got e" }, events)
  end)

  it("a blocked put resumes as soon as a get makes room", function()
    helper.run(function()
      local q = lasync.Queue(1)
      q:put(1)
      local t0 = helper.now()
      lasync.get_running_loop():call_later(0.01, function()
        assert.are.equal(1, q:get_nowait())
      end)
      q:put(2)
      assert.is_true(helper.now() - t0 >= 0.009)
      assert.are.equal(2, q:get_nowait())
    end, 1)
  end)

  it("a getter cancelled while it waits is removed; the item goes to the " ..
    "next getter", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        local g1, g2, g3 = getter(q, "g1", log), getter(q, "g2", log),
            getter(q, "g3", log)
        settle_all()
        g2:cancel()
        settle_all()
        assert.matches("2 getter%(s%)", tostring(q))
        q:put("a")
        q:put("b")
        assert.are.equal("a", g1:await())
        assert.are.equal("b", g3:await())
        assert_cancelled(g2)
        assert.is_true(q:empty())
      end, 1)
      assert.are.same({ "g1 got a", "g3 got b" }, events)
    end)

  it("a getter woken by put and cancelled before it ran leaves the item " ..
    "to the next getter", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        local g1, g2 = getter(q, "g1", log), getter(q, "g2", log)
        settle_all()
        q:put("x") -- wakes g1 ...
        assert.is_true(g1:cancel()) -- ... which is cancelled before it runs
        assert_cancelled(g1)
        assert.are.equal("x", g2:await())
        assert.are.equal(0, q:qsize())
        assert.matches("0 getter%(s%)", tostring(q))
      end, 1)
      assert.are.same({ "g2 got x" }, events)
    end)

  it("a woken-then-cancelled getter with nobody after it leaves the item " ..
    "in the queue", function()
      helper.run(function()
        local q = lasync.Queue()
        local g = getter(q, "g", function() end)
        settle_all()
        q:put("x")
        g:cancel()
        assert_cancelled(g)
        assert.are.equal(1, q:qsize())
        assert.are.equal("x", q:get())
        q:task_done()
        q:join()
      end, 1)
    end)

  it("a putter cancelled while it waits is removed and its item never " ..
    "enters", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue(1)
        q:put("a")
        local p1, p2, p3 = putter(q, "p1", "b", log),
            putter(q, "p2", "c", log), putter(q, "p3", "d", log)
        settle_all()
        p2:cancel()
        settle_all()
        assert.matches("2 putter%(s%)", tostring(q))
        local got = {}
        for _ = 1, 3 do
          got[#got + 1] = q:get()
          settle_all()
        end
        p1:await()
        p3:await()
        assert_cancelled(p2)
        assert.are.same({ "a", "b", "d" }, got)
        assert.is_true(q:empty())
      end, 1)
      assert.are.same({ "p1 put b", "p3 put d" }, events)
    end)

  it("a putter woken by get and cancelled before it ran passes the room " ..
    "to the next putter", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue(1)
        q:put("a")
        local p1, p2 = putter(q, "p1", "b", log), putter(q, "p2", "c", log)
        settle_all()
        assert.are.equal("a", q:get()) -- wakes p1 ...
        assert.is_true(p1:cancel())    -- ... cancelled before it runs
        assert_cancelled(p1)
        p2:await()
        assert.are.equal(1, q:qsize())
        assert.are.equal("c", q:get_nowait())
        assert.matches("0 putter%(s%)", tostring(q))
      end, 1)
      assert.are.same({ "p2 put c" }, events)
    end)

  it("an item taken by get_nowait before the woken getter runs makes " ..
    "that getter wait again", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        local g = getter(q, "g", log)
        settle_all()
        q:put("x")            -- wakes g
        log("stole " .. q:get_nowait()) -- but main takes the item first
        settle_all()
        assert.is_false(g:done())
        assert.matches("1 getter%(s%)", tostring(q))
        q:put("y")
        assert.are.equal("y", g:await())
      end, 1)
      assert.are.same({ "stole x", "g got y" }, events)
    end)

  it("room taken by put_nowait before the woken putter runs makes that " ..
    "putter wait again", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue(1)
        q:put("a")
        local p = putter(q, "p", "c", log)
        settle_all()
        assert.are.equal("a", q:get_nowait()) -- wakes p
        q:put_nowait("b")                     -- takes the room first
        settle_all()
        assert.is_false(p:done())
        assert.are.equal("b", q:get())
        p:await()
        assert.are.equal("c", q:get_nowait())
      end, 1)
      assert.are.same({ "p put c" }, events)
    end)

  it("a task cancelled while getting then goes on using the queue",
    function()
      helper.run(function()
        local q = lasync.Queue()
        local t = lasync.spawn(function()
          local ok, err = pcall(q.get, q)
          assert.is_false(ok)
          assert.is_true(lasync.is_cancelled(err))
          lasync.current_task():uncancel()
          return q:get()
        end)
        settle_all()
        t:cancel()
        settle_all()
        q:put("later")
        assert.are.equal("later", t:await())
      end, 1)
    end)
end)

describe("lasync.Queue with timeouts", function()
  it("lasync.timeout around get raises TimeoutError and leaves the queue " ..
    "consistent", function()
      helper.run(function()
        local q = lasync.Queue()
        local elapsed, ok, err = helper.timed(pcall, lasync.timeout, 0.01,
          q.get, q)
        assert.is_false(ok)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.is_true(elapsed >= 0.009)
        assert.matches("0 getter%(s%)", tostring(q))
        assert.are.equal(0, q:qsize())
        -- the next put is not swallowed by the timed-out getter
        q:put("x")
        assert.are.equal(1, q:qsize())
        assert.are.equal("x", q:get())
        -- and a waiting getter after that works
        local g = getter(q, "g", function() end)
        settle_all()
        q:put("y")
        assert.are.equal("y", g:await())
      end, 1)
    end)

  it("lasync.wait_for around get raises TimeoutError; the get still " ..
    "works later", function()
      helper.run(function()
        local q = lasync.Queue()
        local ok, err = pcall(lasync.wait_for, function() return q:get() end,
          0.01)
        assert.is_false(ok)
        assert(lasync.is_timeout(err), helper.show(err))
        lasync.get_running_loop():call_later(0.005, q.put_nowait, q, "z")
        assert.are.equal("z", lasync.wait_for(function()
          return q:get()
        end, 0.5))
        assert.is_true(q:empty())
      end, 1)
    end)

  it("a timeout that does not expire returns the item", function()
    helper.run(function()
      local q = lasync.Queue()
      lasync.get_running_loop():call_later(0.005, q.put_nowait, q, "in time")
      assert.are.equal("in time", lasync.timeout(0.5, q.get, q))
    end, 1)
  end)

  it("lasync.timeout around a blocked put leaves the item out", function()
    helper.run(function()
      local q = lasync.Queue(1)
      q:put("a")
      local ok, err = pcall(lasync.timeout, 0.01, q.put, q, "b")
      assert.is_false(ok)
      assert(lasync.is_timeout(err), helper.show(err))
      assert.are.equal(1, q:qsize())
      assert.is_true(q:full())
      assert.matches("0 putter%(s%)", tostring(q))
      ok, err = pcall(lasync.wait_for, function() q:put("c") end, 0.01)
      assert(lasync.is_timeout(err), helper.show(err))
      assert.are.equal("a", q:get())
      q:put("d")
      assert.are.same({ "d" }, drain(q))
      -- only a and d were counted
      q:task_done()
      q:task_done()
      raises_msg("task_done: called more times", q.task_done, q)
    end, 1)
  end)

  it("a put racing a getter's deadline loses nothing: the getter gets " ..
    "the item or times out leaving it", function()
      local outcomes = {}
      helper.run(function()
        local loop = lasync.get_running_loop()
        for trial = 1, 12 do
          local q = lasync.Queue()
          local when = loop:time() + 0.003
          local offset = (trial % 3 - 1) * 0.002 -- before, same, after
          local g = lasync.spawn(function()
            return pcall(lasync.timeout_at, when, q.get, q)
          end)
          loop:call_at(when + offset, q.put_nowait, q, "x" .. trial)
          local ok, res = g:await()
          lasync.sleep(0.001 + math.max(offset, 0))
          if ok then
            assert.are.equal("x" .. trial, res)
            assert.are.equal(0, q:qsize())
            outcomes.got = (outcomes.got or 0) + 1
          else
            assert(lasync.is_timeout(res), helper.show(res))
            assert.are.equal(1, q:qsize(), "the item was lost")
            assert.are.equal("x" .. trial, q:get_nowait())
            outcomes.timeout = (outcomes.timeout or 0) + 1
          end
          assert.matches("0 getter%(s%)", tostring(q))
        end
      end, 2)
      assert.is_true((outcomes.got or 0) + (outcomes.timeout or 0) == 12)
    end)

  it("a getter timed out among others keeps the FIFO order of the rest",
    function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        local g1 = getter(q, "g1", log)
        local timed = lasync.spawn(function()
          local ok, err = pcall(lasync.timeout, 0.01, q.get, q)
          log(lasync.is_timeout(err) and "timed out" or "got")
          return ok
        end)
        local g3 = getter(q, "g3", log)
        assert.is_false(timed:await())
        q:put(1)
        q:put(2)
        g1:await()
        g3:await()
      end, 1)
      assert.are.same({ "timed out", "g1 got 1", "g3 got 2" }, events)
    end)
end)

describe("lasync.Queue task_done and join", function()
  it("join returns at once, without yielding, when nothing is pending",
    function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        local t = lasync.spawn(function() log("other") end)
        q:join()
        log("joined")
        q:put(1)
        q:get()
        q:task_done()
        q:join()
        log("joined again")
        t:await()
      end, 1)
      assert.are.same({ "joined", "joined again", "other" }, events)
    end)

  it("join waits until every item put was task_done'd, with several " ..
    "joiners", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        for i = 1, 3 do q:put(i) end
        local joiners = {}
        for i = 1, 3 do
          joiners[i] = lasync.spawn(function()
            q:join()
            log("joiner " .. i)
          end)
        end
        settle_all()
        for _ = 1, 3 do q:get() end -- get alone does not finish an item
        settle_all()
        log("all taken")
        q:task_done()
        q:task_done()
        settle_all()
        log("one left")
        q:task_done()
        for _, j in ipairs(joiners) do j:await() end
        q:join() -- at once now
      end, 1)
      assert.are.same({ "all taken", "one left", "joiner 1", "joiner 2",
        "joiner 3" }, events)
    end)

  it("a cancelled or timed-out joiner is removed; the others are released",
    function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        q:put(1)
        local function joiner(name)
          return lasync.spawn({ name = name }, function()
            q:join()
            log(name)
          end)
        end
        local j1, j2, j3 = joiner("j1"), joiner("j2"), joiner("j3")
        settle_all()
        j2:cancel()
        assert_cancelled(j2)
        local ok, err = pcall(lasync.timeout, 0.005, q.join, q)
        assert.is_false(ok)
        assert(lasync.is_timeout(err), helper.show(err))
        q:get()
        q:task_done()
        j1:await()
        j3:await()
        q:join()
      end, 1)
      assert.are.same({ "j1", "j3" }, events)
    end)

  it("counts puts, not gets: items never taken keep join waiting",
    function()
      helper.run(function()
        local q = lasync.Queue()
        q:put("a")
        q:put("b")
        local ok, err = pcall(lasync.timeout, 0.01, q.join, q)
        assert(lasync.is_timeout(err), helper.show(err))
        assert.is_false(ok)
        q:task_done() -- allowed before get: the count is of puts
        q:task_done()
        q:join()
        assert.are.equal(2, q:qsize())
      end, 1)
    end)

  it("workers that task_done release join (the asyncio worker pattern)",
    function()
      local done = {}
      helper.run(function()
        local q = lasync.Queue()
        local workers = {}
        for w = 1, 3 do
          workers[w] = lasync.spawn(function()
            while true do
              local item = q:get()
              lasync.sleep(0.001 * (item % 3))
              done[#done + 1] = item
              q:task_done()
            end
          end)
        end
        for i = 1, 12 do q:put(i) end
        q:join()
        assert.are.equal(12, #done)
        for _, w in ipairs(workers) do w:cancel() end
        local res = lasync.gather(workers, { return_exceptions = true })
        for i = 1, 3 do assert.is_true(lasync.is_cancelled(res[i])) end
      end, 1)
      table.sort(done)
      for i = 1, 12 do assert.are.equal(i, done[i]) end
    end)
end)

describe("lasync.Queue shutdown", function()
  it("non-immediate: put raises, getters drain the items, then raise",
    function()
      helper.run(function()
        local q = lasync.Queue()
        q:put("a")
        q:put("b")
        q:shutdown()
        assert.is_true(q:is_shutdown())
        raises(lasync.QueueShutDown, "QueueShutDown", q.put, q, "c")
        raises(lasync.QueueShutDown, "QueueShutDown", q.put_nowait, q, "c")
        assert.are.equal(2, q:qsize())
        assert.are.equal("a", q:get())
        assert.are.equal("b", q:get_nowait())
        local err = raises(lasync.QueueShutDown, "QueueShutDown", q.get, q)
        assert.are.equal("QueueShutDown", tostring(err))
        raises(lasync.QueueShutDown, "QueueShutDown", q.get_nowait, q)
        -- task_done and join still work
        q:task_done()
        q:task_done()
        q:join()
        q:shutdown() -- twice is fine
      end, 1)
    end)

  it("non-immediate: blocked getters wake and raise QueueShutDown",
    function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        local gs = {}
        for i = 1, 3 do
          gs[i] = lasync.spawn(function()
            local ok, err = pcall(q.get, q)
            log(("g%d %s"):format(i, lasync.is_error(err, lasync.QueueShutDown)
              and "shut down" or tostring(ok)))
          end)
        end
        settle_all()
        q:shutdown()
        for _, g in ipairs(gs) do g:await() end
        assert.matches("0 getter%(s%)", tostring(q))
      end, 1)
      assert.are.same({ "g1 shut down", "g2 shut down", "g3 shut down" },
        events)
    end)

  it("non-immediate: blocked putters wake and raise; the items stay " ..
    "for the getters", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue(2)
        q:put(1)
        q:put(2)
        local ps = {}
        for i = 1, 2 do
          ps[i] = lasync.spawn(function()
            local ok, err = pcall(q.put, q, 10 + i)
            log(("p%d %s"):format(i, lasync.is_error(err, lasync.QueueShutDown)
              and "shut down" or tostring(ok)))
          end)
        end
        settle_all()
        q:shutdown()
        for _, p in ipairs(ps) do p:await() end
        assert.are.equal(2, q:qsize())
        assert.are.equal(1, q:get())
        assert.are.equal(2, q:get())
        raises(lasync.QueueShutDown, "QueueShutDown", q.get, q)
      end, 1)
      assert.are.same({ "p1 shut down", "p2 shut down" }, events)
    end)

  it("immediate: drops the items, counts them done, releases joiners and " ..
    "getters", function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        for i = 1, 3 do q:put(i) end
        local j = lasync.spawn(function()
          q:join()
          log("joined")
        end)
        settle_all()
        q:shutdown(true)
        assert.is_true(q:is_shutdown())
        assert.are.equal(0, q:qsize())
        assert.is_true(q:empty())
        j:await()
        raises(lasync.QueueShutDown, "QueueShutDown", q.get, q)
        raises(lasync.QueueShutDown, "QueueShutDown", q.get_nowait, q)
        raises(lasync.QueueShutDown, "QueueShutDown", q.put, q, 4)
        raises_msg("task_done: called more times", q.task_done, q)
        q:join()
      end, 1)
      assert.are.same({ "joined" }, events)
    end)

  it("immediate: joiners still wait for items taken but not task_done'd",
    function()
      local events, log = recorder()
      helper.run(function()
        local q = lasync.Queue()
        for i = 1, 3 do q:put(i) end
        assert.are.equal(1, q:get()) -- taken, not done
        local j = lasync.spawn(function()
          q:join()
          log("joined")
        end)
        settle_all()
        q:shutdown(true) -- drops 2 and 3
        settle_all()
        assert.is_false(j:done())
        log("task_done")
        q:task_done()
        j:await()
      end, 1)
      assert.are.same({ "task_done", "joined" }, events)
    end)

  it("immediate: blocked getters and putters raise QueueShutDown",
    function()
      helper.run(function()
        local empty, full = lasync.Queue(), lasync.Queue(1)
        full:put("x")
        local g = lasync.spawn(function() return pcall(empty.get, empty) end)
        local p = lasync.spawn(function() return pcall(full.put, full, "y") end)
        settle_all()
        empty:shutdown(true)
        full:shutdown(true)
        local ok, err = g:await()
        assert.is_false(ok)
        assert_class(lasync.QueueShutDown, err, "QueueShutDown")
        ok, err = p:await()
        assert.is_false(ok)
        assert_class(lasync.QueueShutDown, err, "QueueShutDown")
        assert.are.equal(0, full:qsize())
      end, 1)
    end)

  it("a woken getter cancelled at shutdown does not strand the others",
    function()
      helper.run(function()
        local q = lasync.Queue()
        q:put("left") -- nobody waits yet
        q:get()
        local g1 = getter(q, "g1", function() end)
        local g2 = lasync.spawn(function() return pcall(q.get, q) end)
        settle_all()
        q:shutdown()
        g1:cancel()
        assert_cancelled(g1)
        local ok, err = g2:await()
        assert.is_false(ok)
        assert_class(lasync.QueueShutDown, err, "QueueShutDown")
      end, 1)
    end)
end)

describe("q:iter()", function()
  it("yields the items in order and ends when the queue is shut down and " ..
    "drained", function()
      local got = {}
      helper.run(function()
        local q = lasync.Queue(2)
        local producer = lasync.spawn(function()
          for i = 1, 6 do
            q:put(i)
            if i % 2 == 0 then lasync.sleep(0.001) end
          end
          q:shutdown()
        end)
        for item in q:iter() do got[#got + 1] = item end
        producer:await()
        assert.is_true(q:empty())
      end, 1)
      assert.are.same({ 1, 2, 3, 4, 5, 6 }, got)
    end)

  it("ends at once on a shut-down empty queue, and after an immediate " ..
    "shutdown", function()
      helper.run(function()
        local q = lasync.Queue()
        q:shutdown()
        for _ in q:iter() do error("no item expected") end
        local q2 = lasync.Queue()
        q2:put(1)
        q2:put(2)
        local seen = {}
        for item in q2:iter() do
          seen[#seen + 1] = item
          q2:shutdown(true)
        end
        assert.are.same({ 1 }, seen)
      end, 1)
    end)

  it("yields priority, item from a PriorityQueue and item from a LifoQueue",
    function()
      helper.run(function()
        local pq = lasync.PriorityQueue()
        pq:put(3, "c")
        pq:put(1, "a")
        pq:put(2, "b")
        pq:shutdown()
        local seen = {}
        for p, item in pq:iter() do seen[#seen + 1] = p .. item end
        assert.are.same({ "1a", "2b", "3c" }, seen)
        local lq = lasync.LifoQueue()
        for i = 1, 3 do lq:put(i) end
        lq:shutdown()
        seen = {}
        for item in lq:iter() do seen[#seen + 1] = item end
        assert.are.same({ 3, 2, 1 }, seen)
      end, 1)
    end)

  it("propagates a cancellation of the iterating task", function()
    helper.run(function()
      local q = lasync.Queue()
      local seen = {}
      local t = lasync.spawn(function()
        for item in q:iter() do seen[#seen + 1] = item end
        return "ended"
      end)
      q:put(1)
      settle_all()
      t:cancel()
      assert_cancelled(t)
      assert.are.same({ 1 }, seen)
    end, 1)
  end)
end)

describe("lasync.LifoQueue", function()
  it("is last in, first out", function()
    local q = lasync.LifoQueue()
    for i = 1, 5 do q:put_nowait(i) end
    assert.are.same({ 5, 4, 3, 2, 1 }, drain(q))
    q:put_nowait("a")
    q:put_nowait("b")
    assert.are.equal("b", q:get_nowait())
    q:put_nowait("c")
    assert.are.same({ "c", "a" }, drain(q))
  end)

  it("blocks put when full and get when empty", function()
    local events, log = recorder()
    helper.run(function()
      local q = lasync.LifoQueue(2)
      q:put(1)
      q:put(2)
      raises(lasync.QueueFull, "QueueFull", q.put_nowait, q, 3)
      local p = putter(q, "p", 3, log)
      settle_all()
      assert.are.equal(2, q:get()) -- room: p puts 3 on top of 1
      p:await()
      assert.are.equal(3, q:get())
      assert.are.equal(1, q:get())
      local g = getter(q, "g", log)
      settle_all()
      q:put(9)
      g:await()
    end, 1)
    assert.are.same({ "p put 3", "g got 9" }, events)
  end)
end)

describe("lasync.PriorityQueue", function()
  local function drain2(pq)
    local out = {}
    while not pq:empty() do
      local p, item = pq:get_nowait()
      out[#out + 1] = { p, item }
    end
    return out
  end

  it("gets the smallest priority first, returning priority, item",
    function()
      local pq = lasync.PriorityQueue()
      for _, p in ipairs { 5, 1, 4, 2, 3, 9, 0, -1, 7 } do
        pq:put_nowait(p, "item" .. p)
      end
      local p, item = pq:get_nowait()
      assert.are.equal(-1, p)
      assert.are.equal("item-1", item)
      local prios = {}
      for i, e in ipairs(drain2(pq)) do
        prios[i] = e[1]
        assert.are.equal("item" .. e[1], e[2])
      end
      assert.are.same({ 0, 1, 2, 3, 4, 5, 7, 9 }, prios)
    end)

  it("keeps insertion order for equal priorities (stable)", function()
    local pq = lasync.PriorityQueue()
    local n = 0
    for round = 1, 10 do
      for _, p in ipairs { 3, 1, 2 } do
        n = n + 1
        pq:put_nowait(p, { round = round, n = n })
      end
    end
    local last = { [1] = 0, [2] = 0, [3] = 0 }
    local prev = -math.huge
    for _, e in ipairs(drain2(pq)) do
      local p, item = e[1], e[2]
      assert.is_true(p >= prev)
      if p == prev then assert.is_true(item.n > last[p]) end
      last[p] = item.n
      prev = p
    end
    -- interleaved gets and puts stay stable too
    for i = 1, 20 do pq:put_nowait(i % 2, i) end
    local odd, even = {}, {}
    for _ = 1, 6 do
      local p, i = pq:get_nowait()
      assert.are.equal(0, p)
      even[#even + 1] = i
    end
    for i = 21, 24 do pq:put_nowait(i % 2, i) end
    for _, e in ipairs(drain2(pq)) do
      local list = e[1] == 0 and even or odd
      list[#list + 1] = e[2]
    end
    assert.are.same({ 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24 }, even)
    assert.are.same({ 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23 }, odd)
  end)

  it("compares priorities with <, so strings and __lt metamethods work",
    function()
      local pq = lasync.PriorityQueue()
      for _, s in ipairs { "pear", "apple", "fig" } do pq:put_nowait(s, #s) end
      assert.are.same({ { "apple", 5 }, { "fig", 3 }, { "pear", 4 } },
        drain2(pq))
      local mt = { __lt = function(a, b)
        if a.level ~= b.level then return a.level > b.level end -- high first
        return a.name < b.name
      end }
      local function P(level, name)
        return setmetatable({ level = level, name = name }, mt)
      end
      local lo, hi, hi2 = P(1, "lo"), P(9, "hi"), P(9, "ahi")
      pq:put_nowait(lo, "l")
      pq:put_nowait(hi, "h")
      pq:put_nowait(hi2, "h2")
      local p, item = pq:get_nowait()
      assert.are.equal(hi2, p)
      assert.are.equal("h2", item)
      assert.are.same({ { hi, "h" }, { lo, "l" } }, drain2(pq))
      -- equal under __lt (neither is smaller): insertion order
      local same = { __lt = function() return false end }
      for i = 1, 5 do pq:put_nowait(setmetatable({ i = i }, same), i) end
      local order = {}
      for i, e in ipairs(drain2(pq)) do order[i] = e[2] end
      assert.are.same({ 1, 2, 3, 4, 5 }, order)
    end)

  it("refuses a nil or NaN priority", function()
    local pq = lasync.PriorityQueue()
    raises_msg("lasync.PriorityQueue:put_nowait: priority is nil",
      pq.put_nowait, pq, nil, "x")
    raises_msg("lasync.PriorityQueue:put_nowait: priority is NaN",
      pq.put_nowait, pq, 0 / 0, "x")
    helper.run(function()
      raises_msg("lasync.PriorityQueue:put: priority is nil", pq.put, pq)
      raises_msg("lasync.PriorityQueue:put: priority is NaN", pq.put, pq,
        0 / 0, 1)
    end, 1)
    assert.are.equal(0, pq:qsize())
  end)

  it("an incomparable priority raises an error naming the method and " ..
    "leaves the queue intact", function()
      local pq = lasync.PriorityQueue()
      pq:put_nowait(2, "two")
      pq:put_nowait(1, "one")
      raises_msg("lasync.PriorityQueue:put_nowait: a string priority does " ..
        "not compare with the number priorities in the queue", pq.put_nowait,
        pq, "three", 3)
      raises_msg("lasync.PriorityQueue:put_nowait: priority must be a " ..
        "number, a string or a value with __lt (got table)", pq.put_nowait,
        pq, {}, 3)
      helper.run(function()
        raises_msg("lasync.PriorityQueue:put: priority must be a number, " ..
          "a string or a value with __lt (got boolean)", pq.put, pq, true,
          "x")
      end, 1)
      assert.are.equal(2, pq:qsize())
      assert.are.same({ { 1, "one" }, { 2, "two" } }, drain2(pq))
      -- only the two accepted items count for task_done
      pq:task_done()
      pq:task_done()
      raises_msg("lasync.PriorityQueue:task_done: called more times",
        pq.task_done, pq)
      -- the queue is still usable, even with the other type now
      pq:put_nowait("b", 1)
      pq:put_nowait("a", 2)
      assert.are.same({ { "a", 2 }, { "b", 1 } }, drain2(pq))
    end)

  it("a priority comparable with the smallest but not with another one " ..
    "leaves the queue intact", function()
      -- __lt that refuses one particular partner
      local mt = {}
      mt.__lt = function(a, b)
        if a.bad or b.bad then
          local other = a.bad and b or a
          if other.v == 5 then error("cannot compare with 5", 0) end
        end
        return a.v < b.v
      end
      local function P(v, bad) return setmetatable({ v = v, bad = bad }, mt) end
      local pq = lasync.PriorityQueue()
      for _, v in ipairs { 1, 5, 7 } do pq:put_nowait(P(v), v) end
      local err = helper.error_of(pq.put_nowait, pq, P(3, true), 3)
      assert.matches("cannot compare with 5", tostring(err), 1, true)
      assert.are.equal(3, pq:qsize())
      local got = {}
      for i, e in ipairs(drain2(pq)) do got[i] = e[2] end
      assert.are.same({ 1, 5, 7 }, got)
    end)

  it("a woken putter whose priority does not compare passes the room on " ..
    "(stricter than asyncio, which strands the next putter too)",
    function()
      helper.run(function()
        -- a's priority passes put's checks but its __lt refuses "b"'s
        local mt = { __lt = function(x, y)
          if x.bad or y.bad then error("cannot compare with b", 0) end
          return x.v < y.v
        end }
        local function P(v, bad)
          return setmetatable({ v = v, bad = bad }, mt)
        end
        local pq = lasync.PriorityQueue(2)
        local pa, pb, py = P(1), P(1), P(2)
        pq:put(pa, "a")
        pq:put(pb, "b")
        local a = lasync.spawn(function()
          return pcall(pq.put, pq, P(0, true), "x")
        end)
        local b = lasync.spawn(function()
          pq:put(py, "y")
          return "b put"
        end)
        settle_all()
        assert.are.equal(pa, pq:get()) -- room for one: a is woken first
        local ok, err = a:await()
        assert.is_false(ok)
        assert.matches("cannot compare with b", tostring(err), 1, true)
        local bok, bres = pcall(lasync.wait_for, b, 0.05)
        assert(bok, "the next putter was stranded: " .. helper.show(bres))
        assert.are.equal("b put", bres)
        assert.are.same({ { pb, "b" }, { py, "y" } }, drain2(pq))
      end, 1)
    end)

  it("waits while empty and while full", function()
    local events, log = recorder()
    helper.run(function()
      local pq = lasync.PriorityQueue(2)
      local g = lasync.spawn(function()
        local p, item = pq:get()
        log(("got %s %s"):format(p, item))
      end)
      settle_all()
      pq:put(5, "five")
      g:await()
      pq:put(3, "three")
      pq:put(4, "four")
      assert.is_true(pq:full())
      raises(lasync.QueueFull, "QueueFull", pq.put_nowait, pq, 1, "one")
      local p = lasync.spawn(function()
        pq:put(1, "one")
        log("put one")
      end)
      settle_all()
      local prio, item = pq:get()
      log(("main got %s %s"):format(prio, item))
      p:await()
      assert.are.same({ { 1, "one" }, { 4, "four" } }, drain2(pq))
    end, 1)
    assert.are.same({ "got 5 five", "main got 3 three", "put one" }, events)
  end)

  it("a nil item with a priority is kept", function()
    local pq = lasync.PriorityQueue()
    pq:put_nowait(1)
    local p, item = pq:get_nowait()
    assert.are.equal(1, p)
    assert.is_nil(item)
  end)
end)

describe("a producer/consumer pipeline", function()
  it("loses no item when the consumers are cancelled (seed scenario)",
    function()
      local produced, consumed = {}, {}
      local left
      helper.run(function()
        local q = lasync.Queue(3)
        local function producer(id)
          for i = 1, 20 do
            local item = id .. ":" .. i
            q:put(item)
            produced[#produced + 1] = item
            lasync.sleep(0.0005)
          end
          return id
        end
        local function consumer(id)
          while true do
            local item = q:get()
            consumed[#consumed + 1] = item
            q:task_done()
            lasync.sleep(0.001 * (id == "c1" and 1 or 2))
          end
        end
        local p1 = lasync.spawn({ name = "p1" }, producer, "p1")
        local p2 = lasync.spawn({ name = "p2" }, producer, "p2")
        local c1 = lasync.spawn({ name = "c1" }, consumer, "c1")
        local c2 = lasync.spawn({ name = "c2" }, consumer, "c2")
        -- after a while the consumers are cancelled; the queue is shut
        -- down so that producers blocked on the full queue stop too
        lasync.get_running_loop():call_later(0.012, function()
          c1:cancel()
          c2:cancel()
          q:shutdown()
        end)
        local r1, r2, r3, r4 = lasync.gather(p1, p2, c1, c2,
          { return_exceptions = true })
        for _, r in ipairs { r1, r2 } do
          assert(r == "p1" or r == "p2" or
            lasync.is_error(r, lasync.QueueShutDown), helper.show(r))
        end
        assert.is_true(lasync.is_cancelled(r3))
        assert.is_true(lasync.is_cancelled(r4))
        assert.is_true(#consumed > 0)
        left = drain(q)
      end, 2)
      assert.is_true(#produced > 0)
      -- every produced item was consumed or is still in the queue, once
      local seen = {}
      for _, item in ipairs(consumed) do
        assert.is_nil(seen[item], "consumed twice: " .. item)
        seen[item] = true
      end
      for _, item in ipairs(left) do
        assert.is_nil(seen[item], "consumed and left: " .. item)
        seen[item] = true
      end
      for _, item in ipairs(produced) do
        assert.is_true(seen[item], "lost: " .. item)
      end
      assert.are.equal(#produced, #consumed + #left)
    end)
end)
