-- lasync.pg's pool (pg.pool{...}): up to `max` connections to one server,
-- lent to one task at a time. A connection comes back reset as asyncpg
-- resets it (an open transaction rolled back, advisory locks released,
-- cursors closed, UNLISTEN *, RESET ALL: one round trip); a broken one is
-- dropped and replaced on demand. Tasks waiting for a connection are
-- served first come, first served, each through a future of its own, so
-- that a cancelled waiter simply leaves the line.
local lasync = require "lasync"

local type, error, pcall = type, error, pcall

local Pool = {}
Pool.__index = Pool
Pool.__name = "lasync.pg.Pool"

local M = {}

local function check_pool(p, fname)
  if getmetatable(p) ~= Pool then
    error(("lasync.pg.Pool:%s: expected a pool (got %s)")
      :format(fname, type(p)), 3)
  end
  if p._closed then
    error(("lasync.pg.Pool:%s: the pool is closed"):format(fname), 3)
  end
end

local function check_count(opts, key, default, low)
  local v = opts[key]
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < low then
    error(("lasync.pg.pool: option '%s' must be an integer >= %d (got %s)")
      :format(key, low, tostring(v)), 4)
  end
  return v
end

local known = { dsn = true, min = true, max = true, idle_timeout = true,
  pipeline = true, statement_cache_size = true }

-- The options forwarded to pg.connect(dsn, opts), or nil when none is
-- given (pg.connect's own, checked here first so that a bad one raises
-- before anything connects).
local function connect_opts(opts)
  local c
  if opts.pipeline ~= nil then
    if type(opts.pipeline) ~= "boolean" then
      error("lasync.pg.pool: option 'pipeline' must be a boolean (got " ..
        type(opts.pipeline) .. ")", 4)
    end
    c = { pipeline = opts.pipeline }
  end
  if opts.statement_cache_size ~= nil then
    c = c or {}
    c.statement_cache_size = check_count(opts, "statement_cache_size", 0, 0)
  end
  return c
end

function M.new(pg, opts)
  if type(opts) ~= "table" then
    error("lasync.pg.pool: expected a table of options (got " ..
      type(opts) .. ")", 3)
  end
  for k in pairs(opts) do
    if not known[k] then
      error("lasync.pg.pool: unknown option '" .. tostring(k) .. "'", 3)
    end
  end
  if type(opts.dsn) ~= "string" and type(opts.dsn) ~= "table" then
    error("lasync.pg.pool: option 'dsn' must be a string or a table " ..
      "(got " .. type(opts.dsn) .. ")", 3)
  end
  local min = check_count(opts, "min", 0, 0)
  local max = check_count(opts, "max", 10, 1)
  if min > max then
    error("lasync.pg.pool: option 'min' is larger than 'max'", 3)
  end
  local idle = opts.idle_timeout
  if idle ~= nil and (type(idle) ~= "number" or idle <= 0) then
    error("lasync.pg.pool: option 'idle_timeout' must be a positive " ..
      "number of seconds", 3)
  end
  local p = setmetatable({ _pg = pg, _dsn = opts.dsn, _min = min,
    _max = max, _idle_timeout = idle, _idle = {}, _waiters = {},
    _open = 0, _closed = false, _copts = connect_opts(opts) }, Pool)
  for _ = 1, min do
    p._open = p._open + 1
    local ok, conn = pcall(pg.connect, p._dsn, p._copts)
    if not ok then
      p:close()
      error(conn, 3)
    end
    p._idle[#p._idle + 1] = { conn = conn, since = lasync.get_running_loop():time() }
  end
  return p
end

-- Close idle connections older than idle_timeout, beyond `min`.
local function expire(p)
  local limit = p._idle_timeout
  if not limit then return end
  local now = lasync.get_running_loop():time()
  local keep = {}
  local extra = p._open - p._min
  for _, e in ipairs(p._idle) do
    if extra > 0 and now - e.since >= limit then
      e.conn:close()
      p._open = p._open - 1
      extra = extra - 1
    else
      keep[#keep + 1] = e
    end
  end
  p._idle = keep
end

-- Hand conn to the first waiter, else keep it idle.
function Pool:_give(conn)
  local f = table.remove(self._waiters, 1)
  if f then
    f:set_result(conn)
  else
    self._idle[#self._idle + 1] = { conn = conn,
      since = lasync.get_running_loop():time() }
  end
end

-- A connection is gone: its slot goes to the first waiter (who then
-- connects), else it is free.
function Pool:_free_slot()
  local f = table.remove(self._waiters, 1)
  if f then f:set_result(true) else self._open = self._open - 1 end
end

-- Connect in a slot already counted in _open.
local function connect(self)
  local ok, conn = pcall(self._pg.connect, self._dsn, self._copts)
  if not ok then
    self:_free_slot()
    error(conn, 0)
  end
  conn._pool = self
  return conn
end

--- pool:acquire() -> a connection, to give back with pool:release(conn)
--- or <close>
function Pool:acquire()
  check_pool(self, "acquire")
  expire(self)
  local waiters = self._waiters
  if #waiters == 0 then
    while #self._idle > 0 do
      local e = table.remove(self._idle)
      if not e.conn:is_closed() then
        e.conn._pool = self
        return e.conn
      end
      self._open = self._open - 1
    end
    if self._open < self._max then
      self._open = self._open + 1
      return connect(self)
    end
  end
  local f = lasync.Future()
  waiters[#waiters + 1] = f
  local ok, got = pcall(f.await, f)
  if not ok then
    for i, w in ipairs(waiters) do
      if w == f then table.remove(waiters, i) break end
    end
    if f:done() and not f:cancelled() then -- handed over as we left
      local v = f:result()
      if type(v) == "table" then self:_give(v)
      elseif v == true then self:_free_slot() end
    end
    error(got, 0)
  end
  if got == false then
    error("lasync.pg.Pool:acquire: the pool is closed", 2)
  end
  if got == true then return connect(self) end
  if got:is_closed() then -- broke while idle in between: connect anew
    return connect(self)
  end
  got._pool = self
  return got
end

-- asyncpg's reset (Connection.reset), in one simple query
local RESET = "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; " ..
  "RESET ALL"

--- pool:release(conn): reset the connection and lend it again
function Pool:release(conn)
  if getmetatable(self) ~= Pool then
    error("lasync.pg.Pool:release: expected a pool", 2)
  end
  if type(conn) ~= "table" or conn._pool ~= self then
    error("lasync.pg.Pool:release: the connection is not lent by this " ..
      "pool", 2)
  end
  conn._pool = nil
  conn:_drop_listeners() -- the reset's UNLISTEN * ends them
  local ok = not self._closed and not conn:is_closed() and
    pcall(conn._simple, conn, function(raw)
      local st = raw:transaction_status() -- once a drain is over
      if st ~= "idle" and st ~= "intrans" and st ~= "inerror" then
        error("lasync.pg.Pool:release: the connection is busy", 0)
      end
      return (st == "idle" and "" or "ROLLBACK; ") .. RESET
    end)
  if ok then
    self:_give(conn)
  else
    conn:close()
    if self._closed then self._open = self._open - 1
    else self:_free_slot() end
  end
end

--- pool:with(fn) -> fn(conn)'s results, the connection released after
function Pool:with(fn)
  check_pool(self, "with")
  if type(fn) ~= "function" then
    error("lasync.pg.Pool:with: fn must be a function (got " .. type(fn) ..
      ")", 2)
  end
  local conn = self:acquire()
  local res = table.pack(pcall(fn, conn))
  self:release(conn)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

for _, name in ipairs { "execute", "fetch", "fetchrow", "fetchval",
  "copy_to_table", "copy_records_to_table", "copy_from_table",
  "copy_from_query" } do
  Pool[name] = function(self, ...)
    check_pool(self, name)
    local conn = self:acquire()
    local res = table.pack(pcall(conn[name], conn, ...))
    self:release(conn)
    if not res[1] then error(res[2], 2) end
    return table.unpack(res, 2, res.n)
  end
end

--- pool:close(): close the idle connections; lent ones close when released
function Pool:close()
  if getmetatable(self) ~= Pool then
    error("lasync.pg.Pool:close: expected a pool", 2)
  end
  self._closed = true
  for _, e in ipairs(self._idle) do e.conn:close() end
  self._open = self._open - #self._idle
  self._idle = {}
  local waiters = self._waiters
  self._waiters = {}
  for _, f in ipairs(waiters) do f:set_result(false) end
end
Pool.__close = Pool.close

M.Pool = Pool
return M
