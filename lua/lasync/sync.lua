-- lasync.sync: what reads better in Lua on top of the C primitives: scoped
-- use of locks and semaphores (with, hold), iterating a queue, and
-- Condition and Barrier, ported from CPython's asyncio/locks.py.
local core = require "lasync.core"
local check = require "lasync.check"

local M = {}

local pack, unpack = table.pack, table.unpack
local unwrap = check.unwrap
local is_cancelled, is_error = core.is_cancelled, core.is_error
local note_traceback, check_task = core._note_traceback, core._check_task

-- "Lock" for a lasync.Lock, ... (from its metatable's __name)
local function class_name(x)
  local mt = getmetatable(x)
  return (mt and mt.__name or "?"):gsub("^lasync%.", "")
end

--{======================================================================
-- Scoped acquisition, shared by Lock, Semaphore, BoundedSemaphore and
-- Condition: x:with(fn, ...) and `local _ <close> = x:hold()`
--=======================================================================

--- x:with(fn, ...) -> fn's results: acquire, run fn(...), release, even
-- when fn raises or the task is cancelled
local function with(self, fn, ...)
  local name = class_name(self)
  check.callable(fn, name .. ":with")
  check_task(name .. ":with")
  self:acquire()
  local res = pack(xpcall(fn, note_traceback, ...))
  self:release()
  return unwrap(res)
end

--- x:hold() -> x, acquired; its __close releases it:
-- `local _ <close> = lock:hold()`
local function hold(self)
  self:acquire()
  return self
end

for _, make in ipairs { core.Lock, core.Semaphore, core.BoundedSemaphore } do
  local obj = make()
  local methods, name = getmetatable(obj).__index, class_name(obj)
  methods.with = check.method(methods, name .. ":with", with)
  methods.hold = check.method(methods, name .. ":hold", hold)
end

--}======================================================================

--{======================================================================
-- Iterating a queue
--=======================================================================

--- for item in q:iter() do ... end: get() until the queue is shut down
-- and drained (a PriorityQueue yields priority, item)
local function iter(q)
  return function()
    local res = pack(pcall(q.get, q))
    if res[1] then return unpack(res, 2, res.n) end
    if is_error(res[2], core.QueueShutDown) then return nil end
    error(res[2], 0)
  end
end

for _, make in ipairs { core.Queue, core.LifoQueue, core.PriorityQueue } do
  local obj = make()
  local methods = getmetatable(obj).__index
  methods.iter = check.method(methods, class_name(obj) .. ":iter", iter)
end

--}======================================================================

--{======================================================================
-- Condition
--=======================================================================

local Condition = { with = with, hold = hold }
Condition.__index = Condition
Condition.__name = "lasync.Condition"

local lock_methods = getmetatable(core.Lock()).__index

--- lasync.Condition([lock]) -> a condition variable over lock (a new
-- Lock if none is given)
function M.Condition(lock)
  if lock == nil then
    lock = core.Lock()
  elseif getmetatable(lock) == nil or getmetatable(lock).__index ~=
      lock_methods then
    error(("lasync.Condition: expected a Lock (got %s)")
      :format(check.typename(lock)), 2)
  end
  return setmetatable({ _lock = lock, _waiters = core._WaitList() },
    Condition)
end

function Condition:__tostring()
  return ("lasync.Condition: %s, %d waiting"):format(
    self._lock:locked() and "locked" or "unlocked", self._waiters:count())
end

function Condition:acquire()
  check_task("Condition:acquire")
  return self._lock:acquire()
end

function Condition:locked() return self._lock:locked() end

local function check_locked(self, method)
  if not self._lock:locked() then
    error(("lasync.Condition:%s: the lock is not acquired"):format(method),
      3)
  end
end

function Condition:release()
  check_locked(self, "release")
  return self._lock:release()
end

-- the __close of hold()
function Condition:__close()
  check_locked(self, "__close")
  return self._lock:release()
end

--- c:wait() -> true: release the lock, wait for a notify, re-acquire the
-- lock (also when cancelled; the cancellation is raised once it is held).
-- A waiter notified and cancelled before it runs passes the notify on.
function Condition:wait()
  check_task("Condition:wait")
  check_locked(self, "wait")
  self._lock:release()
  local ok, err = pcall(self._waiters.wait, self._waiters)
  local cancelled
  while true do -- must hold the lock again, whatever happens
    local held, e = pcall(self._lock.acquire, self._lock)
    if held then break end
    if not is_cancelled(e) then error(e, 0) end
    cancelled = e
  end
  if cancelled or not ok then
    -- it may have been notified: pass that on (a spurious wakeup is
    -- allowed), as asyncio 3.13 does
    self._waiters:wake(1)
    error(cancelled or err, 0)
  end
  return true
end

--- c:wait_for(predicate) -> predicate's first true value
function Condition:wait_for(predicate)
  check.callable(predicate, "Condition:wait_for")
  local result = predicate()
  if not result then -- to wait, as wait() would check
    check_task("Condition:wait_for")
    check_locked(self, "wait_for")
  end
  while not result do
    self:wait()
    result = predicate()
  end
  return result
end

--- c:notify([n=1]): wake up to n waiting tasks (the lock must be held)
function Condition:notify(n)
  if n ~= nil and math.type(n) ~= "integer" then
    error(("lasync.Condition:notify: n must be an integer (got %s)")
      :format(math.type(n) or type(n)), 2)
  end
  check_locked(self, "notify")
  self._waiters:wake(n or 1)
end

--- c:notify_all(): wake every waiting task (the lock must be held)
function Condition:notify_all()
  check_locked(self, "notify_all")
  self._waiters:wake(self._waiters:count())
end

check.guard(Condition)

--}======================================================================

--{======================================================================
-- Barrier
--=======================================================================

local FILLING, DRAINING, RESETTING, BROKEN =
  "filling", "draining", "resetting", "broken"

local Barrier = {}
Barrier.__index = Barrier
Barrier.__name = "lasync.Barrier"

--- lasync.Barrier(parties) -> a barrier that releases `parties` tasks
-- together
function M.Barrier(parties)
  if math.type(parties) ~= "integer" or parties < 1 then
    local t = type(parties) -- a value, but never a table's address
    error(("lasync.Barrier: parties must be an integer > 0 (got %s)")
      :format((t == "number" or t == "string") and parties or t), 2)
  end
  return setmetatable({ _cond = M.Condition(), _parties = parties,
    _state = FILLING, _count = 0 }, Barrier)
end

function Barrier:__tostring()
  return ("lasync.Barrier: %s, %d/%d waiting"):format(self._state,
    self:n_waiting(), self._parties)
end

local function broken_error(msg)
  return core.BrokenBarrierError(msg)
end

-- Wait while the barrier drains or resets; raise if it is broken.
local function block(self)
  self._cond:wait_for(function()
    return self._state ~= DRAINING and self._state ~= RESETTING
  end)
  if self._state == BROKEN then error(broken_error("Barrier aborted"), 0) end
end

local function exit(self)
  if self._count == 0 then
    if self._state == RESETTING or self._state == DRAINING then
      self._state = FILLING
    end
    self._cond:notify_all()
  end
end

--- b:wait() -> this task's arrival index, 0 .. parties-1, once `parties`
-- tasks wait; BrokenBarrierError if the barrier is aborted or reset
function Barrier:wait()
  check_task("Barrier:wait")
  return self._cond:with(function()
    block(self)
    local index = self._count
    self._count = index + 1
    local res = pack(pcall(function()
      if index + 1 == self._parties then -- the last one releases the rest
        self._state = DRAINING
        self._cond:notify_all()
      else
        self._cond:wait_for(function() return self._state ~= FILLING end)
        if self._state == BROKEN or self._state == RESETTING then
          error(broken_error("Abort or reset of barrier"), 0)
        end
      end
    end))
    self._count = self._count - 1
    exit(self)
    unwrap(res)
    return index
  end)
end

--- b:reset(): back to the empty state; tasks waiting get BrokenBarrierError
function Barrier:reset()
  self._cond:with(function()
    if self._count > 0 then
      self._state = RESETTING
    else
      self._state = FILLING
    end
    self._cond:notify_all()
  end)
end

--- b:abort(): break the barrier; waiting and later wait()s raise
function Barrier:abort()
  self._cond:with(function()
    self._state = BROKEN
    self._cond:notify_all()
  end)
end

function Barrier:parties() return self._parties end

function Barrier:n_waiting()
  return self._state == FILLING and self._count or 0
end

function Barrier:broken() return self._state == BROKEN end

check.guard(Barrier)

--}======================================================================

return M
