-- lasync.http.client.pool: a session's connections, keyed by (scheme,
-- host, port, TLS identity). Idle keep-alive connections wait in a stack
-- per key (the most recently used is taken first) and are closed after
-- keepalive_timeout; `limit` and `limit_per_host` bound the connections
-- in use (aiohttp's TCPConnector: idle ones do not count), and the tasks
-- over them wait in one FIFO, each handed its slot by a release.
local lasync = require "lasync"

local Future = lasync.Future
local remove = table.remove

local Pool = {}
Pool.__index = Pool

local M = {}

function M.new(limit, limit_per_host, keepalive_timeout)
  return setmetatable({
    limit = limit or 100, limit_per_host = limit_per_host or 0,
    keepalive = keepalive_timeout or 15,
    idle = {},       -- key -> array of connections (a stack)
    nidle = 0,
    busy = 0,        -- connections in use or connecting
    per_host = {},   -- key -> connections in use or connecting
    waiters = {},    -- FIFO of { key =, fut = }
    inuse = {},      -- connection -> true while a request has it
    sweeper = nil,   -- the timer handle of the next idle sweep
    closed = false,
  }, Pool)
end

local function can_take(p, key)
  if p.limit > 0 and p.busy >= p.limit then return false end
  if p.limit_per_host > 0 and (p.per_host[key] or 0) >= p.limit_per_host
  then
    return false
  end
  return true
end

local function take_slot(p, key)
  p.busy = p.busy + 1
  p.per_host[key] = (p.per_host[key] or 0) + 1
end

-- Hands freed slots to the waiters that can use them, in order.
local function wake(p)
  local ws = p.waiters
  local i = 1
  while i <= #ws do
    local w = ws[i]
    if can_take(p, w.key) then
      remove(ws, i)
      take_slot(p, w.key)
      w.fut:set_result(true)
    else
      i = i + 1
    end
    if p.limit > 0 and p.busy >= p.limit then return end
  end
end

local function free_slot(p, key)
  p.busy = p.busy - 1
  local n = p.per_host[key] - 1
  p.per_host[key] = n > 0 and n or nil
  if #p.waiters > 0 then wake(p) end
end

--- pool:wait_slot(key, timed, st): returns once a slot for key is
-- taken; timed(st, "pool", fn, ...) runs the wait under the pool
-- timeout. Cancelling the waiting task leaves the queue (and gives back a
-- slot handed over)
function Pool:wait_slot(key, timed, st)
  if self.closed then
    error("lasync.http.Session: the session is closed", 0)
  end
  if #self.waiters == 0 and can_take(self, key) then
    take_slot(self, key)
    return
  end
  local w = { key = key, fut = Future() }
  self.waiters[#self.waiters + 1] = w
  local ok, err = pcall(timed, st, "pool", w.fut.await, w.fut)
  if ok then return end
  if w.fut:done() and not w.fut:cancelled() then
    free_slot(self, key) -- handed a slot, but gone
  else
    for i, x in ipairs(self.waiters) do
      if x == w then remove(self.waiters, i) break end
    end
  end
  error(err, 0)
end

local function alive(conn, now, keepalive)
  return now - conn.idle_since < keepalive and
         not conn.reader:at_eof() and not conn.writer:is_closing()
end

--- pool:take_idle(key) -> an idle connection still open, or nil
function Pool:take_idle(key)
  local stack = self.idle[key]
  if not stack then return nil end
  local now = lasync.get_running_loop():time()
  while true do
    local n = #stack
    if n == 0 then return nil end
    local c = stack[n]
    stack[n] = nil
    self.nidle = self.nidle - 1
    if alive(c, now, self.keepalive) then return c end
    c.writer:abort()
  end
end

local function sweep(p)
  p.sweeper = nil
  local now = lasync.get_running_loop():time()
  for key, stack in pairs(p.idle) do
    local keep = {}
    for _, c in ipairs(stack) do
      if alive(c, now, p.keepalive) then
        keep[#keep + 1] = c
      else
        p.nidle = p.nidle - 1
        c.writer:abort()
      end
    end
    p.idle[key] = #keep > 0 and keep or nil
  end
  if p.nidle > 0 then
    p.sweeper = lasync.get_running_loop():call_later(p.keepalive,
      sweep, p)
  end
end

--- pool:release(conn, reusable): the connection's response ended; keep
-- it for the next request to its key, or close it
function Pool:release(conn, reusable)
  if not self.inuse[conn] then return end -- released already
  self.inuse[conn] = nil
  free_slot(self, conn.key)
  if reusable and not self.closed and self.keepalive > 0 then
    conn.idle_since = lasync.get_running_loop():time()
    local stack = self.idle[conn.key]
    if not stack then
      stack = {}
      self.idle[conn.key] = stack
    end
    stack[#stack + 1] = conn
    self.nidle = self.nidle + 1
    if not self.sweeper then
      self.sweeper = lasync.get_running_loop():call_later(self.keepalive,
        sweep, self)
    end
  else
    conn.writer:abort()
  end
end

--- pool:give_back(key): a slot taken for a connection that never came
function Pool:give_back(key)
  free_slot(self, key)
end

--- pool:close(): closes every idle connection; waiters fail
function Pool:close()
  self.closed = true
  for _, stack in pairs(self.idle) do
    for _, c in ipairs(stack) do c.writer:abort() end
  end
  self.idle, self.nidle = {}, 0
  for c in pairs(self.inuse) do c.writer:abort() end
  if self.sweeper then self.sweeper:cancel() self.sweeper = nil end
  local ws = self.waiters
  self.waiters = {}
  for _, w in ipairs(ws) do
    w.fut:set_exception("lasync.http.Session: the session is closed")
  end
end

return M
