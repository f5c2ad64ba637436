-- lasync.pg: a PostgreSQL client on libpq, asyncpg's job. libpq speaks the
-- protocol in non-blocking mode; the loop watches its socket
-- (bindings/db/pg.c, raw:wait) and this file drives the steps: connect
-- (PQconnectPoll), send a query with its parameters, read its results.
-- Queries of several tasks on one connection are serialized by a lock:
-- one in flight at a time (docs/internals.md says why).
local lasync = require "lasync"
local core = require "lasync.core"
local json = require "lasync.json"

local raw_start = core._pg.start
local type, error, pcall, select = type, error, pcall, select
local math_type, tostring, format = math.type, tostring, string.format

local M = {}

--- pg.null: SQL NULL, in results and as a parameter (lasync.json.null)
M.null = json.null
M.Error = lasync.error_class("pg.Error")
M.libpq_version = core._pg.libpq_version

local null = M.null
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

--- pg.connect(dsn) -> Connection: dsn a conninfo string, a URI, or a
--- table of libpq keywords
function M.connect(dsn)
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
  return setmetatable({ _raw = raw, _lock = lasync.Lock(), _depth = 0,
    _stmts = 0 }, Connection)
end

--- conn:close(): closes the connection (idempotent)
function Connection:close()
  if getmetatable(self) ~= Connection then
    error("lasync.pg.Connection:close: expected a connection", 2)
  end
  local raw = self._raw
  self._raw = nil
  if raw then raw:close() end
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

local function pack_params(fname, ...)
  local n = select("#", ...)
  local values, formats = {}, {}
  for i = 1, n do
    values[i], formats[i] = encode((select(i, ...)), i, fname)
  end
  return n, values, formats
end

local function pg_error(res)
  local e = M.Error(res.message or "error", {
    sqlstate = res.sqlstate, detail = res.detail, hint = res.hint,
    position = res.position, severity = res.severity })
  return e
end

-- Send, flush and read every result of one query; the connection is
-- held. Returns the last result (or raises the first error), after the
-- query is complete (libpq's next PQgetResult is NULL).
local function roundtrip(self, fname, positional, send, ...)
  local raw = self._raw
  local flushed, msg = send(raw, ...)
  if flushed == nil then
    error(conn_error("Connection:" .. fname, msg), 0)
  end
  while not flushed do
    raw:wait(true, true)
    if raw:consume() == nil then
      error(conn_error("Connection:" .. fname, raw:error_message()), 0)
    end
    flushed, msg = raw:flush()
    if flushed == nil then
      error(conn_error("Connection:" .. fname, msg), 0)
    end
  end
  local last, failed
  while true do
    local busy, m = raw:consume()
    while busy do
      raw:wait(true, false)
      busy, m = raw:consume()
    end
    if busy == nil then error(conn_error("Connection:" .. fname, m), 0) end
    local res = raw:result(null, json.decode, positional)
    if res == nil then break end
    if res.status == "error" then failed = failed or res
    else last = res end
  end
  if failed then error(pg_error(failed), 0) end
  return last
end

-- After a task was cancelled with its query in flight, in a task of its
-- own that holds the connection's lock: ask the server to cancel the
-- query (raw:cancel, from a pool thread), then read and drop everything
-- up to the end of the query (libpq's ReadyForQuery), so that no stale
-- result reaches the next caller. If that fails, the connection closes.
local function drain(self, raw)
  local ok = pcall(function()
    local _, msg = raw:cancel()
    if msg and raw:status() ~= "ok" then error(msg, 0) end
    while true do
      local flushed, m = raw:flush()
      if flushed == nil then error(m, 0) end
      local busy
      busy, m = raw:consume()
      if busy == nil then error(m, 0) end
      if busy or not flushed then
        raw:wait(true, not flushed)
      elseif raw:result(null, json.decode, false) == nil then
        return
      end
    end
  end)
  if not ok and self._raw == raw then self:close() end
  self._lock:release()
end

-- Run fn(...) holding the connection. A task cancelled mid-query leaves
-- the lock to a drain task (above); any other failure but a pg.Error
-- (the server's answer, read to its end) closes the connection.
local function with_conn(self, fname, fn, ...)
  check_conn(self, fname)
  local lock = self._lock
  lock:acquire()
  local raw = self._raw
  if raw == nil then
    lock:release()
    error(("lasync.pg.Connection:%s: the connection is closed")
      :format(fname), 3)
  end
  local res = table.pack(pcall(fn, ...))
  if res[1] then
    lock:release()
    return res[2]
  end
  local e = res[2]
  if lasync.is_cancelled(e) and self._raw == raw and
      raw:status() == "ok" then
    lasync.spawn(drain, self, raw)
  else
    lock:release()
    if not lasync.is_error(e, M.Error) and self._raw then self:close() end
  end
  error(e, 3)
end

local function query(self, fname, positional, sql, ...)
  if type(sql) ~= "string" then
    error(("lasync.pg.Connection:%s: the query must be a string (got %s)")
      :format(fname, type(sql)), 3)
  end
  if sql:find("\0", 1, true) then
    error(("lasync.pg.Connection:%s: the query contains a NUL byte")
      :format(fname), 3)
  end
  local n, values, formats = pack_params(fname, ...)
  return with_conn(self, fname, function()
    return roundtrip(self, fname, positional, self._raw.send, sql, n,
      values, formats)
  end)
end

--- conn:execute(sql, ...) -> command tag ("INSERT 0 1"), row count
function Connection:execute(sql, ...)
  local res = query(self, "execute", false, sql, ...)
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
  local res = query(self, "fetchval", true, sql, ...)
  local row = res and res.rows and res.rows[1]
  if row == nil then return nil end
  return row[1]
end

--- conn:transaction_status() -> "idle" | "intrans" | "inerror" | ...
function Connection:transaction_status()
  check_conn(self, "transaction_status")
  return self._raw:transaction_status()
end

local isolations = { ["read committed"] = true,
  ["repeatable read"] = true, serializable = true,
  ["read uncommitted"] = true }

--- conn:transaction(fn[, opts]) -> fn's results: BEGIN, COMMIT when fn
--- returns, ROLLBACK when it raises; nested: a savepoint
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
    if opts.isolation or opts.readonly then
      error("lasync.pg.Connection:transaction: a nested transaction " ..
        "(a savepoint) takes no options", 2)
    end
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
  with_conn(self, "prepare", function()
    return roundtrip(self, "prepare", false, self._raw.send_prepare, name,
      sql)
  end)
  return setmetatable({ conn = self, name = name, sql = sql }, Statement)
end

local function stmt_query(st, fname, positional, ...)
  if getmetatable(st) ~= Statement then
    error(("lasync.pg.Statement:%s: expected a statement"):format(fname), 3)
  end
  local conn = st.conn
  check_conn(conn, fname)
  local n, values, formats = pack_params(fname, ...)
  return with_conn(conn, fname, function()
    return roundtrip(conn, fname, positional, conn._raw.send, st.sql, n,
      values, formats, st.name)
  end)
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
  local res = stmt_query(self, "fetchval", true, ...)
  local row = res and res.rows and res.rows[1]
  return row and row[1]
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
return M
