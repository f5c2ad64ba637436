-- Minimal coroutine-task layer over luv (Lua 5.4 + lua-luv), written the way a
-- Lua user would: tasks are coroutines; a FIFO ready queue is drained from a uv
-- idle handle (one batch per loop iteration, like asyncio's call_soon queue);
-- sleep(ms > 0) uses one uv timer per sleep; Queue hands items to waiting
-- getters through the ready queue (and, bounded, wakes one waiting putter per
-- get); Lock hands itself to the oldest waiter; stream() wraps a uv TCP handle
-- for the echo server. Only what bench/ needs.
local uv = require "luv"
local co_create, co_resume, co_yield, co_running, co_status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.running, coroutine.status
local unpack = table.unpack

local M = { uv = uv, peer = "luv" }

local tasks_by_co = setmetatable({}, { __mode = "k" })
local ready, readyv, nready = {}, {}, 0
local spare, sparev = {}, {}
local idle = uv.new_idle()
local idle_on = false

local function step(task, v)
  local ok, res = co_resume(task.co, v)
  if not ok then
    io.stderr:write(debug.traceback(task.co, tostring(res)), "\n")
    os.exit(2)
  end
  if co_status(task.co) == "dead" then
    task.done, task.result = true, res
    tasks_by_co[task.co] = nil
    local w = task.waiter
    if w then task.waiter = nil; M.wake(w, res) end
  end
end

local function run_ready()
  -- swap the lists so that tasks woken during this pass run on the next tick
  local list, vals, n = ready, readyv, nready
  ready, readyv, nready = spare, sparev, 0
  spare, sparev = list, vals
  for i = 1, n do
    local t, v = list[i], vals[i]
    list[i], vals[i] = nil, nil
    step(t, v)
  end
  if nready == 0 and idle_on then idle:stop(); idle_on = false end
end

function M.wake(task, v)
  nready = nready + 1
  ready[nready], readyv[nready] = task, v
  if not idle_on then idle:start(run_ready); idle_on = true end
end

-- create_task: the coroutine starts on the next loop tick
function M.spawn(fn, ...)
  local nargs = select("#", ...)
  local co
  if nargs == 0 then
    co = co_create(fn)
  elseif nargs == 1 then
    local a = ...
    co = co_create(function() return fn(a) end)
  else
    local args = { ... }
    co = co_create(function() return fn(unpack(args, 1, nargs)) end)
  end
  local task = { co = co, done = false }
  tasks_by_co[co] = task
  M.wake(task)
  return task
end

function M.sleep(ms)
  local me = tasks_by_co[co_running()]
  if not ms or ms <= 0 then
    M.wake(me)
    return co_yield()
  end
  local t = uv.new_timer()
  t:start(ms, 0, function()
    t:close()
    step(me)
  end)
  return co_yield()
end

function M.await(task)
  if task.done then return task.result end
  task.waiter = tasks_by_co[co_running()]
  return co_yield()
end

function M.gather(list)
  local out = {}
  for i = 1, #list do out[i] = M.await(list[i]) end
  return out
end

-- FIFO queue with waiting getters (asyncio.Queue-like); Queue(maxsize) with
-- maxsize > 0 is bounded: put waits while it is full (nil/0: unbounded)
local Queue = {}
Queue.__index = Queue
function M.Queue(maxsize)
  return setmetatable({ items = {}, h = 1, t = 0, getters = {}, gh = 1, gt = 0,
    maxsize = maxsize or 0, putters = {}, ph = 1, pt = 0 }, Queue)
end
function Queue:put(v)
  local max = self.maxsize
  while max > 0 and self.t - self.h + 1 >= max do
    self.pt = self.pt + 1 -- full: wait until a get makes room, then re-check
    self.putters[self.pt] = tasks_by_co[co_running()]
    co_yield()
  end
  if self.gh <= self.gt then
    local g = self.getters[self.gh]
    self.getters[self.gh] = nil
    self.gh = self.gh + 1
    M.wake(g, v) -- hand the item to the oldest waiting getter
  else
    self.t = self.t + 1
    self.items[self.t] = v
  end
end
function Queue:get()
  if self.h <= self.t then
    local v = self.items[self.h]
    self.items[self.h] = nil
    self.h = self.h + 1
    if self.ph <= self.pt then -- room now: wake the oldest waiting putter
      local p = self.putters[self.ph]
      self.putters[self.ph] = nil
      self.ph = self.ph + 1
      M.wake(p)
    end
    return v
  end
  self.gt = self.gt + 1
  self.getters[self.gt] = tasks_by_co[co_running()]
  return co_yield()
end

-- FIFO lock (asyncio.Lock-like): release hands the lock to the oldest waiter
local Lock = {}
Lock.__index = Lock
function M.Lock()
  return setmetatable({ held = false, waiters = {}, h = 1, t = 0 }, Lock)
end
function Lock:acquire()
  if not self.held then
    self.held = true
    return
  end
  self.t = self.t + 1
  self.waiters[self.t] = tasks_by_co[co_running()]
  co_yield() -- resumed by release, already the owner
end
function Lock:release()
  assert(self.held, "release of an unlocked Lock")
  if self.h <= self.t then
    local w = self.waiters[self.h]
    self.waiters[self.h] = nil
    self.h = self.h + 1
    M.wake(w) -- still held: ownership passes to w
  else
    self.held = false
  end
end

-- TCP stream wrapper (echo): read() yields until a chunk arrives (nil at EOF
-- or on error); the read callback resumes the waiting coroutine directly;
-- write() is uv.write, queued and not awaited (like StreamWriter.write)
local Stream = {}
Stream.__index = Stream
function M.stream(handle)
  local s = setmetatable({ h = handle, buf = {}, bh = 1, bt = 0, eof = false }, Stream)
  handle:read_start(function(err, data)
    if err or not data then s.eof = true; data = nil end
    local r = s.reader
    if r then
      s.reader = nil
      step(r, data) -- resume the reading coroutine directly
    elseif data then
      s.bt = s.bt + 1; s.buf[s.bt] = data
    end
  end)
  return s
end
function Stream:read()
  if self.bh <= self.bt then
    local d = self.buf[self.bh]; self.buf[self.bh] = nil; self.bh = self.bh + 1
    return d
  end
  if self.eof then return nil end
  self.reader = tasks_by_co[co_running()]
  return co_yield()
end
function Stream:write(data)
  self.h:write(data)
end
function Stream:close()
  if not self.h:is_closing() then self.h:close() end
end

-- run(main): spawn main as a task and run the loop until everything is done
function M.run(fn, ...)
  local t = M.spawn(fn, ...)
  uv.run("default")
  return t.result
end

local function status_kb(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s+(%d+)")
    if v then return tonumber(v) end
  end
  return -1
end
function M.peak_rss_kb() return status_kb("VmHWM") end
function M.rss_kb() return status_kb("VmRSS") end
function M.now() return uv.hrtime() / 1e9 end
function M.result(fmt, ...)
  io.write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

return M
