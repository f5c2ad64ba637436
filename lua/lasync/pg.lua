-- lasync.pg: a PostgreSQL client on libpq, asyncpg's job. libpq speaks the
-- protocol in non-blocking mode; the loop watches its socket
-- (bindings/db/pg.c, raw:wait) and this file drives the steps: connect
-- (PQconnectPoll), send a query with its parameters, read its results.
-- The queries of several tasks on one connection are pipelined (libpq's
-- pipeline mode, each query closed by a sync of its own) and their results
-- read in order, each by the task at the head of the connection's queue;
-- a transaction, a multi-statement string or COPY holds the connection
-- alone, out of pipeline mode (docs/internals.md says why).
local lasync = require "lasync"
local core = require "lasync.core"
local json = require "lasync.json"

local raw_start = core._pg.start
local type, error, pcall, select = type, error, pcall, select
local math_type, tostring, format = math.type, tostring, string.format
local Future, Event, spawn = lasync.Future, lasync.Event, lasync.spawn
local current_task, is_cancelled = lasync.current_task, lasync.is_cancelled

local M = {}

--- pg.null: SQL NULL, in results and as a parameter (lasync.json.null)
M.null = json.null
M.Error = lasync.error_class("pg.Error")
M.libpq_version = core._pg.libpq_version

local null = M.null
local decode = json.decode
local Connection = {}
Connection.__index = Connection
Connection.__name = "lasync.pg.Connection"

-- A failure of libpq on the connection itself: an OSError-like error
-- carrying libpq's message (trailing newline dropped).
local function conn_error(fname, msg)
  msg = (msg or ""):gsub("%s+$", "")
  return lasync.OSError(("lasync.pg.%s: %s"):format(fname, msg),
    { code = "EPG", target = "postgresql" })
end

local function check_conn(c, fname)
  if getmetatable(c) ~= Connection then
    error(("lasync.pg.Connection:%s: expected a connection (got %s)")
      :format(fname, type(c)), 3)
  end
  if c._raw == nil then
    error(("lasync.pg.Connection:%s: the connection is closed")
      :format(fname), 3)
  end
end

local function closed_error(fname)
  return conn_error("Connection:" .. fname, "the connection is closed")
end

-- pg.connect's options and their defaults
local DEFAULT_CACHE, DEFAULT_PIPELINE = 100, true

local function check_opts(opts)
  local cache, pipeline = DEFAULT_CACHE, DEFAULT_PIPELINE
  if opts == nil then return cache, pipeline end
  if type(opts) ~= "table" then
    error("lasync.pg.connect: opts must be a table (got " .. type(opts) ..
      ")", 3)
  end
  for k in pairs(opts) do
    if k ~= "statement_cache_size" and k ~= "pipeline" then
      error("lasync.pg.connect: unknown option '" .. tostring(k) .. "'", 3)
    end
  end
  local n = opts.statement_cache_size
  if n ~= nil then
    if math_type(n) ~= "integer" or n < 0 then
      error("lasync.pg.connect: option 'statement_cache_size' must be an " ..
        "integer >= 0 (got " .. tostring(n) .. ")", 3)
    end
    cache = n
  end
  if opts.pipeline ~= nil then
    if type(opts.pipeline) ~= "boolean" then
      error("lasync.pg.connect: option 'pipeline' must be a boolean (got " ..
        type(opts.pipeline) .. ")", 3)
    end
    pipeline = opts.pipeline
  end
  return cache, pipeline
end

--- pg.connect(dsn[, opts]) -> Connection: dsn a conninfo string, a URI,
--- or a table of libpq keywords; opts {statement_cache_size =, pipeline =}
function M.connect(dsn, opts)
  if type(dsn) ~= "string" and type(dsn) ~= "table" then
    error("lasync.pg.connect: the dsn must be a string or a table of " ..
      "libpq keywords (got " .. type(dsn) .. ")", 2)
  end
  if type(dsn) == "string" and dsn:find("\0", 1, true) then
    error("lasync.pg.connect: the dsn contains a NUL byte", 2)
  end
  if type(dsn) == "table" then
    local n = 0
    for _ in pairs(dsn) do n = n + 1 end
    if n > 64 then error("lasync.pg.connect: too many options", 2) end
    for k, v in pairs(dsn) do
      if type(k) ~= "string" then
        error("lasync.pg.connect: the keys of the options must be strings " ..
          "(libpq's keywords)", 2)
      end
      if type(v) ~= "string" and type(v) ~= "number" then
        error(("lasync.pg.connect: option '%s' must be a string or a " ..
          "number (got %s)"):format(k, type(v)), 2)
      end
      if k:find("\0", 1, true) or tostring(v):find("\0", 1, true) then
        error("lasync.pg.connect: option '" .. k:gsub("%z", "\\0") ..
          "' contains a NUL byte", 2)
      end
    end
  end
  local cache_size, pipeline = check_opts(opts)
  core._check_task("pg.connect", 2)
  local raw, msg = raw_start(dsn)
  if not raw then error(conn_error("connect", msg), 2) end
  local ok, err = pcall(function()
    while true do
      local st, m = raw:connect_poll()
      if st == "ok" then return end
      if st == nil then error(conn_error("connect", m), 0) end
      raw:wait(st == "read", st == "write")
    end
  end)
  if not ok then
    raw:close()
    error(err, 2)
  end
  return setmetatable({
    _raw = raw,
    _lock = lasync.Lock(), -- held by who uses the connection alone
    _owner = false,        -- the task holding _lock
    _depth = 0,            -- of the owner's nested transactions
    _stmts = 0,            -- statement names given so far
    _pipeline = pipeline,
    _q = {}, _qh = 1, _qt = 0, -- the queries in flight (see pipelined)
    _idle = false,         -- the future of the owner waiting for _q empty
    _busy = false,         -- an Event while a cancel request is under way
    _cancels = 0,          -- cancel requests sent so far
    _stale = false,        -- names of statements to deallocate
    _listen = false,       -- channel -> {listener or callback = true}
    _log = false,          -- {fn = true}: the log listeners
    _watcher = false,      -- the task reading notifications (watch)
    _idle_ev = false,      -- the Event it waits on while queries run
    _cache_size = cache_size,
    _cache = {}, _used = {}, _ncache = 0, _tick = 0, -- the statement cache
  }, Connection)
end

--- conn:close(): closes the connection (idempotent)
function Connection:close()
  if getmetatable(self) ~= Connection then
    error("lasync.pg.Connection:close: expected a connection", 2)
  end
  local raw = self._raw
  self._raw = nil
  if raw then raw:close() end
  -- who waits for its turn learns that the connection is gone
  local q = self._q
  for i = self._qh, self._qt do
    local w = q[i]
    if type(w) == "userdata" and not w:done() then w:set_result(false) end
    q[i] = nil
  end
  self._qh, self._qt = 1, 0
  local idle = self._idle
  self._idle = false
  if idle and not idle:done() then idle:set_result(false) end
  local ev = self._idle_ev -- the watcher (watch) ends
  self._idle_ev = false
  if ev then ev:set() end
  -- listeners learn it too
  local listen = self._listen
  self._listen = false
  self._log = false
  if listen then
    for _, set in pairs(listen) do
      for l in pairs(set) do
        if type(l) ~= "function" then l._queue:shutdown(true) end
      end
    end
  end
  local busy = self._busy
  self._busy = false
  if busy then busy:set() end
end

-- <close>: a connection lent by a pool goes back to it, others close
function Connection:__close()
  if self._pool then self._pool:release(self) else self:close() end
end

--- conn:is_closed() -> whether close was called or the link broke
function Connection:is_closed()
  return self._raw == nil or self._raw:status() ~= "ok"
end

-- {== Parameters: Lua values as libpq's text format (docs/api.md's table)

local Bytea = {} -- the metatable of pg.bytea's wrappers
local Json = {} -- pg.json's
local Array = {} -- pg.array's
local json_array = getmetatable(json.array {})
local json_object = getmetatable(json.object {})
local concat, pairs_, next_ = table.concat, pairs, next
local MAXDIM = 6 -- PostgreSQL's limit on an array's dimensions

local function float_text(v)
  if v ~= v then return "NaN" end
  if v == math.huge then return "Infinity" end
  if v == -math.huge then return "-Infinity" end
  return format("%.17g", v)
end

local function json_text(v, i, fname)
  local ok, s = pcall(json.encode, v)
  if not ok then
    error(("lasync.pg.Connection:%s: parameter $%d: %s")
      :format(fname, i, tostring(s):gsub("^lasync%.json%.encode: ", "")), 5)
  end
  return s
end

-- Whether t is a plain Lua sequence (keys 1..n, n >= 1, no metatable):
-- sent as an array. A marked table, or one with other keys, is JSON.
local function is_sequence(t)
  if getmetatable(t) ~= nil then return false end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs_(t) do
    count = count + 1
    if count > n then return false end
  end
  return count == n
end

local hex = {}
for b = 0, 255 do hex[string.char(b)] = format("%02x", b) end

-- bytea's hex form, its backslash escaped for a quoted array element
local function bytea_hex(s)
  return "\\\\x" .. s:gsub(".", hex)
end

-- t as PostgreSQL's array literal ('{1,NULL,"a\"b",{2,3}}'): strings,
-- json and bytea quoted, with '\' and '"' escaped (array_in's rules).
local function array_text(t, i, fname, depth)
  if depth > MAXDIM then
    error(("lasync.pg.Connection:%s: parameter $%d: an array nests " ..
      "deeper than %d"):format(fname, i, MAXDIM), 5)
  end
  local parts = {}
  for k = 1, #t do
    local e = t[k]
    local te = type(e)
    local mt = te == "table" and getmetatable(e)
    local s
    if e == null then s = "NULL"
    elseif te == "number" then
      s = math_type(e) == "integer" and tostring(e) or float_text(e)
    elseif te == "boolean" then s = e and "t" or "f"
    elseif te == "string" then
      s = '"' .. e:gsub('[\\"]', "\\%0") .. '"'
    elseif mt == Array then s = array_text(e[1], i, fname, depth + 1)
    elseif mt == Bytea then s = '"' .. bytea_hex(e[1]) .. '"'
    elseif te == "table" and (mt == nil and (next_(e) == nil or
        is_sequence(e))) then
      s = array_text(e, i, fname, depth + 1)
    elseif te == "table" then
      local j = json_text(mt == Json and e[1] or e, i, fname)
      s = '"' .. j:gsub('[\\"]', "\\%0") .. '"'
    else
      error(("lasync.pg.Connection:%s: parameter $%d: cannot send a %s " ..
        "(in an array)"):format(fname, i, te), 5)
    end
    parts[k] = s
  end
  return "{" .. concat(parts, ",") .. "}"
end

-- A parameter as libpq's text format (false: NULL); bytea as binary.
local function encode(v, i, fname)
  local t = type(v)
  if v == nil or v == null then return false, false end
  if t == "string" then return v, false end
  if t == "boolean" then return v and "t" or "f", false end
  if t == "number" then
    if math_type(v) == "integer" then return tostring(v), false end
    return float_text(v), false
  end
  if t == "table" then
    local mt = getmetatable(v)
    if mt == Bytea then return v[1], true end
    if mt == Json then return json_text(v[1], i, fname), false end
    if mt == Array then return array_text(v[1], i, fname, 1), false end
    if mt == nil and next_(v) == nil then
      return "{}", false -- an empty array and an empty JSON object alike
    end
    if is_sequence(v) then return array_text(v, i, fname, 1), false end
    return json_text(v, i, fname), false
  end
  error(("lasync.pg.Connection:%s: parameter $%d: cannot send a %s")
    :format(fname, i, t), 4)
end

--- pg.bytea(s) -> a parameter sent as bytea, binary-safe
function M.bytea(s)
  if type(s) ~= "string" then
    error("lasync.pg.bytea: expected a string (got " .. type(s) .. ")", 2)
  end
  return setmetatable({ s }, Bytea)
end

--- pg.json(v) -> a parameter sent as the JSON text of v, whatever v is
function M.json(v)
  if v == nil then v = null end
  return setmetatable({ v }, Json)
end

--- pg.array(t) -> a parameter sent as an array literal (even when empty)
function M.array(t)
  if type(t) ~= "table" or getmetatable(t) ~= nil then
    error("lasync.pg.array: expected a table without a metatable (got " ..
      type(t) .. ")", 2)
  end
  return setmetatable({ t }, Array)
end

--- pg.types: {[oid] = name} of the types decoded by name (rows.types)
M.types = core._pg.types

-- }==

local EMPTY = {}   -- no parameters

-- The parameters as raw:pipe takes them (strings, integers, false for
-- NULL); formats is EMPTY (all text) unless one of them is a bytea.
local function pack_params(fname, ...)
  local n = select("#", ...)
  local values, formats = {}, EMPTY
  for i = 1, n do
    local v, bin = (select(i, ...)), false
    if math_type(v) == "integer" then
      values[i] = v -- written as text by raw:pipe (tostring costs more)
    else
      v, bin = encode(v, i, fname)
      values[i] = v
    end
    if bin then
      if formats == EMPTY then formats = {} end
      formats[i] = true
    end
  end
  return n, values, formats
end


-- A FATAL or PANIC error: the server ends the session (57P01 when the
-- backend is terminated), so the connection is closed at once.
local function fatal(res)
  return res.severity == "FATAL" or res.severity == "PANIC"
end

local function pg_error(res)
  local e = M.Error(res.message or "error", {
    sqlstate = res.sqlstate, detail = res.detail, hint = res.hint,
    position = res.position, severity = res.severity })
  return e
end

-- raw:read's positional argument for fetchval: the result's value field
-- holds the first row's first value, and no table is made for the rows
local VALUE = 2
-- Entries of the queue of queries in flight (_q) whose results nobody
-- waits for: a cancelled query's (the server is asked to cancel it when
-- it reaches the head) and a DEALLOCATE's (read quietly).
local DROP, QUIET = {}, {}

-- Hand the notifications libpq has read (LISTEN) to the listeners of
-- their channels: queued for conn:listen's iterators, spawned tasks for
-- add_listener's callbacks, as asyncpg calls them.
local function deliver(self, raw)
  local notes = raw:notifies()
  if notes == nil then return end
  local listen = self._listen
  for _, n in ipairs(notes) do
    local set = listen and listen[n.channel]
    if set then
      for l in pairs(set) do
        if type(l) == "function" then
          spawn(l, self, n.pid, n.channel, n.payload)
        else
          l._queue:put_nowait(n)
        end
      end
    end
  end
end

-- Hand the server's notices libpq has read (kept by raw:log_notices
-- while there are log listeners) to the log listeners, each call in a
-- task of its own, as add_listener's callbacks.
local function deliver_log(self, raw)
  local notes = raw:notices()
  local log = self._log
  if notes == nil or not log then return end
  for _, n in ipairs(notes) do
    for fn in pairs(log) do spawn(fn, self, n) end
  end
end

-- Read the query at the head of the connection to its end (raw:read):
-- true, result[, the error of a value the decoder refused] | nil, message
-- (libpq failed). Raises when the wait is cancelled or the connection
-- closes. Notifications and notices read on the way are delivered.
local function read_head(self, raw, positional)
  local done, res, derr = raw:read(null, decode, positional, false)
  while not done do
    if done == nil then return nil, res end
    raw:wait(true, res)
    done, res, derr = raw:read(null, decode, positional, true)
    if self._listen then deliver(self, raw) end
  end
  if self._log then deliver_log(self, raw) end
  return true, res, derr
end

-- The connection may have become idle: wake the task that reads
-- notifications while no query runs (watch).
local function poke(self)
  local ev = self._idle_ev
  if ev then
    self._idle_ev = false
    ev:set()
  end
end

local drain

-- A cancel request is coming (drain): from now until it is done no query
-- may be sent (_busy), so that it can only hit the queries already in
-- flight; those of other tasks that it hits are sent again (pipelined:
-- _cancels tells them). Called before the drain task is spawned.
local function mark_cancel(self)
  if not self._busy then self._busy = Event() end
  self._cancels = self._cancels + 1
end

-- The head's query is read: the next query's task reads next; a dropped
-- query's results are read by a drain task; an empty queue wakes the
-- owner waiting for it (acquire).
local function advance(self, raw)
  local q, h = self._q, self._qh
  q[h] = nil
  h = h + 1
  if h > self._qt then
    self._qh, self._qt = 1, 0
    local f = self._idle
    if f then
      self._idle = false
      if not f:done() then f:set_result(true) end
    end
    if self._idle_ev then poke(self) end
    return
  end
  self._qh = h
  local w = q[h]
  if w == DROP or w == QUIET or w:cancelled() then
    if w ~= QUIET then mark_cancel(self) end
    spawn(drain, self, raw, w ~= QUIET, true)
  else
    w:set_result(true)
  end
end

local function unbusy(self, busy)
  if self._busy == busy then self._busy = false end
  busy:set()
  if self._idle_ev then poke(self) end
end

-- A task of its own reads and drops the results of the query at the head
-- (pipelined) or of the one query in flight, after asking the server to
-- cancel it when cancel is true (mark_cancel first). The pipeline stays
-- closed until the cancel request is done, a lone query's connection
-- until its results are read. If that fails, the connection closes: a
-- caller gets a clear error, never another query's rows.
function drain(self, raw, cancel, pipelined)
  local busy = cancel and self._busy
  local ok = pcall(function()
    if cancel then
      -- answered already (a task that timed out as its answer came):
      -- nothing to cancel
      local done, res = raw:read(null, decode, false, true)
      if done then return end
      if done == nil then error(res, 0) end
      local _, msg = raw:cancel()
      if msg and raw:status() ~= "ok" then error(msg, 0) end
      if pipelined then unbusy(self, busy) end
    end
    local done, m = read_head(self, raw, false)
    if not done then error(m, 0) end
  end)
  if busy then unbusy(self, busy) end
  if self._raw ~= raw then return end
  if not ok then self:close()
  elseif pipelined then advance(self, raw) end
end

-- Wait until no cancel request is under way and, unless the running task
-- owns the connection, until nobody does.
local function gate(self, fname)
  while true do
    local busy = self._busy
    if busy then
      busy:wait()
    elseif self._lock:locked() and self._owner ~= current_task() then
      self._lock:acquire()
      self._lock:release()
    else
      return
    end
    if self._raw == nil then error(closed_error(fname), 0) end
  end
end

-- The connection's failure during fname: close it and raise e (or an
-- OSError with libpq's message msg).
local function broken(self, raw, fname, e, msg)
  if self._raw == raw then self:close() end
  if e == nil then e = conn_error("Connection:" .. fname, msg) end
  error(e, 0)
end

-- The statement cache: the name of sql's statement and whether it must
-- be prepared first; at the size limit, the least recently used one is
-- dropped and deallocated (after the queries in flight that use it).
local deallocate

local function cache_name(self, sql)
  local tick = self._tick + 1
  self._tick = tick
  local name = self._cache[sql]
  if name then
    self._used[sql] = tick
    return name, false
  end
  local used = self._used
  if self._ncache >= self._cache_size then
    local old, oldest = nil, tick
    for s, t in pairs(used) do
      if t < oldest then old, oldest = s, t end
    end
    deallocate(self, self._cache[old])
    self._cache[old], used[old] = nil, nil
    self._ncache = self._ncache - 1
  end
  self._stmts = self._stmts + 1
  name = "lasync_" .. self._stmts
  self._cache[sql], used[sql] = name, tick
  self._ncache = self._ncache + 1
  return name, true
end

local function uncache(self, sql, name)
  if self._cache[sql] ~= name then return false end
  self._cache[sql], self._used[sql] = nil, nil
  self._ncache = self._ncache - 1
  return true
end

-- The queue of queries in flight: _q[_qh.._qt], in the order they were
-- sent; the head's task reads its results (raw:read up to its sync), then
-- hands the socket to the next one (advance). An entry is true (its task
-- reads or will read without waiting), the future its task awaits, DROP
-- or QUIET.
local function enqueue(self, entry)
  local i = self._qt + 1
  self._qt = i
  self._q[i] = entry
  return i
end

function deallocate(self, name)
  local raw = self._raw
  if raw:pipe("DEALLOCATE " .. name, 0, EMPTY, EMPTY) == nil then return end
  if enqueue(self, QUIET) == self._qh then
    spawn(drain, self, raw, false, true)
  end
end

-- One query through the pipeline: send it (after the gate), wait for its
-- turn, read its results. Returns its last result or its error as a table
-- (raw:read); a failure of the connection closes it and raises.
local function pipelined(self, fname, positional, sql, n, values, formats,
                         name, prepare, cached)
  if self._busy or self._lock:locked() then gate(self, fname) end
  local raw = self._raw
  if raw == nil then error(closed_error(fname), 0) end
  local stale = self._stale
  if stale then -- statements to deallocate (run), sent after the gate
    self._stale = false
    for _, s in ipairs(stale) do deallocate(self, s) end
  end
  if cached then name, prepare = cache_name(self, sql) end
  local flushed, msg = raw:pipe(sql, n, values, formats, name, prepare)
  if flushed == nil then broken(self, raw, fname, nil, msg) end
  local cancels = self._cancels
  local i = enqueue(self, true)
  if i ~= self._qh then
    local f = Future()
    self._q[i] = f
    local ok, v = pcall(f.await, f)
    if not ok then
      if self._raw == raw then
        if f:done() and not f:cancelled() then -- at the head already
          self._q[i] = true
          mark_cancel(self)
          spawn(drain, self, raw, true, true)
        else
          self._q[i] = DROP
        end
      end
      error(v, 0)
    end
    if not v then error(closed_error(fname), 0) end
  end
  local ok, done, res, derr = pcall(read_head, self, raw, positional)
  if not ok then
    if is_cancelled(done) and self._raw == raw then
      mark_cancel(self)
      spawn(drain, self, raw, true, true)
      error(done, 0)
    end
    broken(self, raw, fname, done)
  end
  if not done then broken(self, raw, fname, nil, res) end
  advance(self, raw)
  if derr then error(derr, 0) end -- the connection is fine
  if res and res.sqlstate == "57014" and cancels ~= self._cancels then
    -- hit by the cancel request of another task's query: again
    return pipelined(self, fname, positional, sql, n, values, formats,
      name, false, cached)
  end
  if res and res.status == "error" and prepare and res.first then
    uncache(self, sql, name) -- the prepare failed: nothing to deallocate
  end
  return res, name
end

-- Wait until no query is in flight and no cancel request under way.
local function wait_quiet(self, fname)
  while true do
    if self._raw == nil then error(closed_error(fname), 0) end
    if self._busy then
      self._busy:wait()
    elseif self._qt >= self._qh then
      local f = Future()
      self._idle = f
      f:await()
    else
      return
    end
  end
end

-- Use the connection alone: wait for the owner before, then for the
-- queries in flight and any cancel request; leave pipeline mode.
local function acquire(self, fname)
  local lock = self._lock
  if self._busy then gate(self, fname) end
  lock:acquire()
  self._owner = current_task()
  local ok, e = pcall(wait_quiet, self, fname)
  if not ok then
    self._owner = false
    lock:release()
    error(e, 0)
  end
  local done, m = self._raw:pipeline(false)
  if not done then broken(self, self._raw, fname, nil, m) end
end

local function release(self)
  self._owner = false
  self._lock:release()
  if self._idle_ev then poke(self) end
end

-- Run fn(...) with the connection alone (for transactions, the simple
-- protocol and COPY: no other query in flight, not in pipeline mode, the
-- raw connection at self._raw); nested calls of the owner run fn at once.
-- A task cancelled mid-query leaves the connection to a drain task; when
-- fn fails with a query still running (not a pg.Error: those are read to
-- their end), the connection closes.
local function finish(self, raw)
  local ok = pcall(function()
    wait_quiet(self, "transaction")
    if raw:transaction_status() == "active" then
      mark_cancel(self)
      drain(self, raw, true, false)
    end
  end)
  if not ok and self._raw == raw then self:close() end
  release(self)
end

local function with_conn(self, fname, fn, ...)
  check_conn(self, fname)
  if self._owner and self._owner == current_task() then
    if self._busy then gate(self, fname) end
    if self._raw == nil then error(closed_error(fname), 0) end
    local done, m = self._raw:pipeline(false)
    if not done then broken(self, self._raw, fname, nil, m) end
    return fn(...)
  end
  acquire(self, fname)
  local raw = self._raw
  local res = table.pack(pcall(fn, ...))
  if res[1] then
    release(self)
    return table.unpack(res, 2, res.n)
  end
  local e = res[2]
  if self._raw ~= raw or raw:status() ~= "ok" then
    release(self)
  elseif self._busy or (is_cancelled(e) and
      raw:transaction_status() == "active") then
    self._owner = false -- the task goes on without it: it waits too
    spawn(finish, self, raw)
  else
    release(self)
    if raw:transaction_status() == "active" then self:close() end
  end
  error(e, 0)
end

-- One query with the simple protocol (PQsendQuery: several statements in
-- one string), the connection held alone (with_conn).
local function simple(self, fname, sql)
  local raw = self._raw
  local flushed, msg = raw:simple(sql)
  if flushed == nil then broken(self, raw, fname, nil, msg) end
  local ok, done, res, derr = pcall(read_head, self, raw, false)
  if not ok then
    if is_cancelled(done) and self._raw == raw then
      mark_cancel(self)
      spawn(drain, self, raw, true, false)
      error(done, 0)
    end
    broken(self, raw, fname, done)
  end
  if not done then broken(self, raw, fname, nil, res) end
  if derr then error(derr, 0) end -- the connection is fine
  return res
end

local function check_sql(fname, sql)
  if type(sql) ~= "string" then
    error(("lasync.pg.Connection:%s: the query must be a string (got %s)")
      :format(fname, type(sql)), 4)
  end
  if sql:find("\0", 1, true) then
    error(("lasync.pg.Connection:%s: the query contains a NUL byte")
      :format(fname), 4)
  end
end

-- A statement the server no longer accepts: gone (DEALLOCATE ALL, DISCARD
-- ALL) or its result type changed (ALTER TABLE); prepared again once.
local function stale(res)
  return res.sqlstate == "26000" or (res.sqlstate == "0A000" and
    res.routine == "RevalidateCachedQuery")
end

-- Run a query (pipelined, or serialized with pipeline = false), through
-- the statement cache when it has parameters; raises its pg.Error.
local function run(self, fname, positional, sql, n, values, formats, name,
                   retried)
  local cached = name == nil and n > 0 and self._cache_size > 0
  local prepare = n < 0
  local res, used
  if self._pipeline or (self._owner and self._owner == current_task()) then
    res, used = pipelined(self, fname, positional, sql, n, values, formats,
      name, prepare, cached)
  else
    res, used = with_conn(self, fname, pipelined, self, fname, positional,
      sql, n, values, formats, name, prepare, cached)
  end
  if res and res.status == "error" then
    if cached and not retried and stale(res) and self._raw then
      local ts = self._raw:transaction_status()
      if ts ~= "intrans" and ts ~= "inerror" then
        if uncache(self, sql, used) and res.sqlstate ~= "26000" then
          local list = self._stale or {}
          list[#list + 1] = used
          self._stale = list
        end
        return run(self, fname, positional, sql, n, values, formats, name,
          true)
      end
    end
    if fatal(res) and self._raw then self:close() end
    error(pg_error(res), 0)
  end
  return res
end

local function query(self, fname, positional, sql, ...)
  check_sql(fname, sql)
  local n = select("#", ...)
  local values, formats = EMPTY, EMPTY
  if n > 0 then n, values, formats = pack_params(fname, ...) end
  check_conn(self, fname)
  return run(self, fname, positional, sql, n, values, formats)
end

--- conn:execute(sql, ...) -> command tag ("INSERT 0 1"), row count;
--- without parameters, sql may hold several statements (simple protocol)
function Connection:execute(sql, ...)
  local res
  if select("#", ...) == 0 then
    check_sql("execute", sql)
    check_conn(self, "execute")
    res = with_conn(self, "execute", simple, self, "execute", sql)
    if res and res.status == "error" then
      if fatal(res) and self._raw then self:close() end
      error(pg_error(res), 0)
    end
  else
    res = query(self, "execute", false, sql, ...)
  end
  if res == nil then return "", nil end
  return res.tag, res.count
end

-- Rows as an array with names/types fields (a table per row, by column
-- name, or positional with opts.positional).
local function rows_of(res)
  local rows = res and res.rows or {}
  rows.names = res and res.names or {}
  rows.types = res and res.types or {}
  return rows
end

--- conn:fetch(sql, ...) -> rows; conn:fetch({sql, positional = true},
--- ...) for arrays
local function fetch_args(sql)
  if type(sql) == "table" then return sql[1], sql.positional and true end
  return sql, false
end

function Connection:fetch(sql, ...)
  local s, positional = fetch_args(sql)
  return rows_of(query(self, "fetch", positional, s, ...))
end

--- conn:fetchrow(sql, ...) -> the first row, or nil
function Connection:fetchrow(sql, ...)
  local s, positional = fetch_args(sql)
  local res = query(self, "fetchrow", positional, s, ...)
  return res and res.rows and res.rows[1] or nil
end

--- conn:fetchval(sql, ...) -> the first column of the first row, or nil
--- when there is no row
function Connection:fetchval(sql, ...)
  if type(sql) ~= "string" then
    error(("lasync.pg.Connection:fetchval: the query must be a string " ..
      "(got %s)"):format(type(sql)), 2)
  end
  local res = query(self, "fetchval", VALUE, sql, ...)
  return res and res.value
end

--- conn:transaction_status() -> "idle" | "intrans" | "inerror" | ...
function Connection:transaction_status()
  check_conn(self, "transaction_status")
  return self._raw:transaction_status()
end

local isolations = { ["read committed"] = true,
  ["repeatable read"] = true, serializable = true,
  ["read uncommitted"] = true }

local function run_transaction(self, fn, opts)
  local depth = self._depth
  local begin, commit, rollback
  if depth == 0 then
    begin = "BEGIN"
    if opts.isolation then
      begin = begin .. " ISOLATION LEVEL " .. opts.isolation:upper()
    end
    if opts.readonly then begin = begin .. " READ ONLY" end
    commit, rollback = "COMMIT", "ROLLBACK"
  else
    local sp = "lasync_sp_" .. depth
    begin = "SAVEPOINT " .. sp
    commit = "RELEASE SAVEPOINT " .. sp
    rollback = "ROLLBACK TO SAVEPOINT " .. sp
  end
  self:execute(begin)
  self._depth = depth + 1
  local res = table.pack(pcall(fn, self))
  self._depth = depth
  if res[1] then
    self:execute(commit)
    return table.unpack(res, 2, res.n)
  end
  if self._raw then pcall(self.execute, self, rollback) end
  error(res[2], 0)
end

--- conn:transaction(fn[, opts]) -> fn's results: BEGIN, COMMIT when fn
--- returns, ROLLBACK when it raises; nested: a savepoint. The connection
--- is the task's until then: other tasks' queries wait.
function Connection:transaction(fn, opts)
  check_conn(self, "transaction")
  if type(fn) ~= "function" then
    error("lasync.pg.Connection:transaction: fn must be a function (got " ..
      type(fn) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("lasync.pg.Connection:transaction: opts must be a table (got " ..
      type(opts) .. ")", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "isolation" and k ~= "readonly" then
      error("lasync.pg.Connection:transaction: unknown option '" ..
        tostring(k) .. "'", 2)
    end
  end
  if opts.isolation ~= nil and not isolations[opts.isolation] then
    error("lasync.pg.Connection:transaction: unknown isolation '" ..
      tostring(opts.isolation) .. "'", 2)
  end
  if self._depth > 0 and self._owner == current_task() and
      (opts.isolation or opts.readonly) then
    error("lasync.pg.Connection:transaction: a nested transaction " ..
      "(a savepoint) takes no options", 2)
  end
  return with_conn(self, "transaction", run_transaction, self, fn, opts)
end

-- LISTEN/NOTIFY. Notifications come while the connection is idle too: a
-- watcher task then polls the socket (an idle raw:wait, which any query's
-- wait replaces, as libuv polls a descriptor once) and reads them; while
-- queries run, their reads deliver them (read_head).
local function is_idle(self)
  return self._qt < self._qh and not self._busy and
    not self._lock:locked()
end

local function watch(self, raw)
  while self._raw == raw and (self._listen or self._log) do
    if is_idle(self) then
      local ok, woke = pcall(raw.wait, raw, true, false, true)
      if not ok then -- closed, cancelled (the last listener left), failed
        if self._raw == raw and not is_cancelled(woke) then self:close() end
        break
      end
      if woke and is_idle(self) and self._raw == raw then
        -- nobody else reads: what came is ours to read
        if raw:consume() == nil then
          self:close()
          break
        end
        deliver(self, raw)
        if self._log then deliver_log(self, raw) end
        if raw:status() ~= "ok" then -- a FATAL notice: the server left
          self:close()
          break
        end
      end
    else
      local ev = Event()
      self._idle_ev = ev
      ev:wait()
    end
  end
  self._watcher = false
end

local function quote_ident(s)
  return '"' .. s:gsub('"', '""') .. '"'
end

local function check_channel(fname, channel)
  if type(channel) ~= "string" or channel == "" or
      channel:find("\0", 1, true) then
    error(("lasync.pg.Connection:%s: the channel must be a non-empty " ..
      "string without NUL bytes (got %s)"):format(fname, type(channel)), 3)
  end
end

-- The watcher ends (no listener and no log listener left).
local function stop_watch(self)
  local w = self._watcher
  if w then
    self._watcher = false
    w:cancel()
  end
end

local function start_watch(self)
  if not self._watcher and self._raw then
    self._watcher = spawn(watch, self, self._raw)
  end
end

-- Register l (a Listener or a callback) for channel, sending LISTEN for
-- the channel's first one; the watcher starts with the first channel.
local function listen_add(self, fname, channel, l)
  local listen = self._listen or {}
  self._listen = listen
  local set = listen[channel]
  if set == nil then
    set = {}
    listen[channel] = set
    set[l] = true
    local ok, e = pcall(self.execute, self, "LISTEN " .. quote_ident(channel))
    if not ok then
      set[l] = nil
      if next(set) == nil and listen[channel] == set then
        listen[channel] = nil
      end
      error(e, 0)
    end
  else
    set[l] = true
  end
  start_watch(self)
end

-- Unregister l; UNLISTEN after the channel's last one (when the
-- connection is open and a task runs); the watcher ends with the last.
local function listen_remove(self, channel, l)
  local listen = self._listen
  local set = listen and listen[channel]
  if not (set and set[l]) then return end
  set[l] = nil
  if next(set) ~= nil then return end
  listen[channel] = nil
  if next(listen) == nil then
    self._listen = false
    if not self._log then stop_watch(self) end
  end
  if self._raw and current_task() then
    pcall(self.execute, self, "UNLISTEN " .. quote_ident(channel))
  end
end

local Listener = {}
Listener.__index = Listener
Listener.__name = "lasync.pg.Listener"

--- conn:listen(channel) -> Listener: LISTEN, then the channel's
--- notifications, {channel =, payload =, pid =}, from listener:get() or
--- `for n in listener do`; listener:close() (or <close>) UNLISTENs
function Connection:listen(channel)
  check_conn(self, "listen")
  check_channel("listen", channel)
  local l = setmetatable({ conn = self, channel = channel,
    _queue = lasync.Queue(), closed = false }, Listener)
  listen_add(self, "listen", channel, l)
  return l
end

--- listener:get() -> the next notification (waits)
function Listener:get()
  if getmetatable(self) ~= Listener then
    error("lasync.pg.Listener:get: expected a listener", 2)
  end
  if self.closed then
    error("lasync.pg.Listener:get: the listener is closed", 2)
  end
  local ok, n = pcall(self._queue.get, self._queue)
  if ok then return n end
  if lasync.is_error(n, lasync.QueueShutDown) then
    if self.closed then
      error("lasync.pg.Listener:get: the listener is closed", 2)
    end
    error(conn_error("Listener:get", "the connection is closed"), 2)
  end
  error(n, 0)
end

-- for n in listener do ... end: ends when the listener is closed; a
-- closed connection raises
function Listener:__call()
  if self.closed then return nil end
  local ok, n = pcall(Listener.get, self)
  if ok then return n end
  if self.closed and not is_cancelled(n) then return nil end
  error(n, 0)
end

--- listener:close(): UNLISTEN (idempotent); the iteration ends
function Listener:close()
  if getmetatable(self) ~= Listener then
    error("lasync.pg.Listener:close: expected a listener", 2)
  end
  if self.closed then return end
  self.closed = true
  self._queue:shutdown(true)
  listen_remove(self.conn, self.channel, self)
end
Listener.__close = Listener.close

local function check_fn(fname, fn)
  if type(fn) ~= "function" then
    error(("lasync.pg.Connection:%s: fn must be a function (got %s)")
      :format(fname, type(fn)), 3)
  end
end

-- The last log listener is gone: libpq's notices are dropped again.
local function stop_log(self)
  self._log = false
  if self._raw then self._raw:log_notices(false) end
end

--- conn:add_listener(channel, fn): fn(conn, pid, channel, payload) runs
--- in a task of its own for each notification (asyncpg's add_listener)
function Connection:add_listener(channel, fn)
  check_conn(self, "add_listener")
  check_channel("add_listener", channel)
  check_fn("add_listener", fn)
  listen_add(self, "add_listener", channel, fn)
end

--- conn:remove_listener(channel, fn): undoes add_listener
function Connection:remove_listener(channel, fn)
  if getmetatable(self) ~= Connection then
    error("lasync.pg.Connection:remove_listener: expected a connection", 2)
  end
  check_channel("remove_listener", channel)
  listen_remove(self, channel, fn)
end

-- conn:_drop_listeners(): forget every listener (they see the connection
-- closed) and callback, without UNLISTEN: for the pool, whose reset sends
-- UNLISTEN * (asyncpg's reset clears its listeners too)
function Connection:_drop_listeners()
  if self._log then stop_log(self) end
  local listen = self._listen
  self._listen = false
  if listen then
    for _, set in pairs(listen) do
      for l in pairs(set) do
        if type(l) ~= "function" then l._queue:shutdown(true) end
      end
    end
  end
  stop_watch(self)
end

--- conn:add_log_listener(fn): fn(conn, message) runs in a task of its
--- own for each notice the server sends (RAISE NOTICE, WARNING, the FATAL
--- of a terminated backend): message = {severity =, sqlstate =,
--- message =, detail =, hint =} (asyncpg's add_log_listener). Without
--- log listeners notices are dropped.
function Connection:add_log_listener(fn)
  check_conn(self, "add_log_listener")
  check_fn("add_log_listener", fn)
  if not self._log then
    self._log = {}
    self._raw:log_notices(true)
  end
  self._log[fn] = true
  start_watch(self)
end

--- conn:remove_log_listener(fn): undoes add_log_listener
function Connection:remove_log_listener(fn)
  if getmetatable(self) ~= Connection then
    error("lasync.pg.Connection:remove_log_listener: expected a " ..
      "connection", 2)
  end
  local log = self._log
  if not (log and log[fn]) then return end
  log[fn] = nil
  if next(log) ~= nil then return end
  stop_log(self)
  if not self._listen then stop_watch(self) end
end

--- conn:notify(channel[, payload]): pg_notify(channel, payload)
function Connection:notify(channel, payload)
  check_conn(self, "notify")
  check_channel("notify", channel)
  if payload ~= nil and type(payload) ~= "string" then
    error("lasync.pg.Connection:notify: the payload must be a string (got " ..
      type(payload) .. ")", 2)
  end
  query(self, "notify", false, "SELECT pg_notify($1, $2)", channel,
    payload or "")
end

local Statement = {}
Statement.__index = Statement
Statement.__name = "lasync.pg.Statement"

--- conn:prepare(sql) -> Statement (stmt:fetch/fetchrow/fetchval/execute)
function Connection:prepare(sql)
  check_conn(self, "prepare")
  if type(sql) ~= "string" then
    error(("lasync.pg.Connection:prepare: the query must be a string " ..
      "(got %s)"):format(type(sql)), 2)
  end
  if sql:find("\0", 1, true) then
    error("lasync.pg.Connection:prepare: the query contains a NUL byte", 2)
  end
  self._stmts = self._stmts + 1
  local name = "lasync_stmt_" .. self._stmts
  run(self, "prepare", false, sql, -1, EMPTY, EMPTY, name)
  return setmetatable({ conn = self, name = name, sql = sql }, Statement)
end

local function stmt_query(st, fname, positional, ...)
  if getmetatable(st) ~= Statement then
    error(("lasync.pg.Statement:%s: expected a statement"):format(fname), 3)
  end
  local conn = st.conn
  check_conn(conn, fname)
  local n = select("#", ...)
  local values, formats = EMPTY, EMPTY
  if n > 0 then n, values, formats = pack_params(fname, ...) end
  return run(conn, fname, positional, st.sql, n, values, formats, st.name)
end

function Statement:execute(...)
  local res = stmt_query(self, "execute", false, ...)
  return res and res.tag or "", res and res.count
end

function Statement:fetch(...)
  return rows_of(stmt_query(self, "fetch", false, ...))
end

function Statement:fetchrow(...)
  local res = stmt_query(self, "fetchrow", false, ...)
  return res and res.rows and res.rows[1] or nil
end

function Statement:fetchval(...)
  local res = stmt_query(self, "fetchval", VALUE, ...)
  return res and res.value
end

--- pg.pool{dsn =, min =, max =, idle_timeout =} -> Pool
function M.pool(opts)
  return require("lasync.pg_pool").new(M, opts)
end

-- {== COPY: db:copy_to_table, copy_records_to_table, copy_from_table,
-- copy_from_query (lua/lasync/pg_copy.lua), run inside with_conn
require("lasync.pg_copy").install(Connection, { null = null,
  conn_error = conn_error, pg_error = pg_error, with_conn = with_conn,
  encode = encode, check_conn = check_conn, decode = json.decode })
-- }==

-- the classes, for spec/docs_spec.lua's check of their documentation
M._Connection = Connection
M._Statement = Statement
M._Listener = Listener
return M
