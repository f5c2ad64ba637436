-- lasync.pg's COPY (asyncpg's copy_to_table, copy_records_to_table,
-- copy_from_table, copy_from_query): the data streams through libpq's
-- COPY calls (bindings/db/pg_copy.c) a chunk at a time, so memory stays
-- bounded whatever the size. A COPY that fails on our side (a source or
-- output function raising, a record that cannot be encoded, the task
-- cancelled) is ended there: COPY FROM STDIN with PQputCopyEnd(message),
-- COPY TO STDOUT with a cancel request and its rest dropped; the
-- connection is then usable. pg.lua installs these methods (install).
local lasync = require "lasync"

local type, error, pcall, select, tostring = type, error, pcall, select,
  tostring
local concat, math_type, format = table.concat, math.type, string.format

local M = {}

local CHUNK = 65536 -- bytes sent or read at a time

-- pg.lua's own pieces, set by install
local null, pg_conn_error, pg_error, with_conn, encode, check_conn, decode

-- libpq failing: an OSError naming the method
local function conn_error(fname, msg)
  return pg_conn_error("Connection:" .. fname, msg)
end

-- {== Driving libpq

-- Send everything libpq holds, reading what the server sends meanwhile.
local function flush_all(raw, fname)
  while true do
    local flushed, m = raw:flush()
    if flushed == nil then error(conn_error(fname, m), 0) end
    if flushed then return end
    raw:wait(true, true)
    if raw:consume() == nil then
      error(conn_error(fname, raw:error_message()), 0)
    end
  end
end

-- The next result of the query (nil at its end), waiting for it.
local function next_result(raw, fname)
  local busy, m = raw:consume()
  while busy do
    raw:wait(true, false)
    busy, m = raw:consume()
  end
  if busy == nil then error(conn_error(fname, m), 0) end
  return raw:result(null, decode, false)
end

-- Read the query's results to its end: the last one, the first error.
local function finish(raw, fname)
  local last, failed
  while true do
    local res = next_result(raw, fname)
    if res == nil then return last, failed end
    if res.status == "copy" then -- only one COPY is ever sent
      error(conn_error(fname, "a second COPY in one query"), 0)
    end
    if res.status == "error" then failed = failed or res else last = res end
  end
end

local function put(raw, fname, chunk)
  while true do
    local ok, m = raw:put_copy_data(chunk)
    if ok then break end
    if ok == nil then error(conn_error(fname, m), 0) end
    flush_all(raw, fname) -- libpq's buffer is full: let it drain
  end
  flush_all(raw, fname) -- one chunk in libpq's buffer at most
end

-- Read COPY TO STDOUT's data, a chunk at a time, to out(chunk).
local function get_all(raw, fname, out)
  while true do
    local chunk, over = raw:get_copy_data()
    if chunk == nil then error(conn_error(fname, over), 0) end
    if chunk == true then return end
    if chunk == false then
      raw:wait(true, false)
      if raw:consume() == nil then
        error(conn_error(fname, raw:error_message()), 0)
      end
    else
      if out then out(chunk) end
      if over then return end
    end
  end
end

-- End a COPY that failed on our side (state.phase: "start" before the
-- server's first answer, "in", "out", "done"), then read its results.
local function abort(raw, fname, state, msg)
  if state.phase == "start" then
    flush_all(raw, fname)
    local res = next_result(raw, fname)
    if res == nil then return end
    if res.status ~= "copy" then
      finish(raw, fname)
      return
    end
    state.phase = state.dir
  end
  if state.phase == "in" then
    local ok, m = raw:put_copy_end(msg)
    if not ok then
      error(conn_error(fname, m or "cannot end the COPY"), 0)
    end
    flush_all(raw, fname)
  elseif state.phase == "out" then
    raw:cancel()
    get_all(raw, fname, nil)
  end
  finish(raw, fname)
end

local function error_text(e)
  if type(e) == "table" and e.message then return tostring(e.message) end
  return tostring(e)
end

-- Run the COPY sql (direction dir, "in" or "out") holding the
-- connection: body(raw, fname) moves the data. Returns the tag and the
-- row count. An error of ours ends the COPY (abort) and is raised once
-- the connection is free again; if that fails too, the connection closes.
local function run_copy(self, fname, sql, dir, body)
  local res = with_conn(self, fname, function()
    local raw = self._raw
    local state = { phase = "start", dir = dir }
    if type(sql) == "function" then -- it quotes with libpq's help
      local ok, s = pcall(sql, raw)
      if not ok then return { failed = s } end
      sql = s
    end
    local ok, e = pcall(function()
      local flushed, m = raw:send_simple(sql)
      if flushed == nil then error(conn_error(fname, m), 0) end
      flush_all(raw, fname)
      local first = next_result(raw, fname)
      if first == nil or first.status ~= "copy" then
        state.phase = "done"
        local _, failed = finish(raw, fname)
        if first and first.status == "error" then failed = first end
        if failed then error(pg_error(failed), 0) end
        error(conn_error(fname, "the server did not start the COPY"), 0)
      end
      state.phase = dir
      body(raw, fname)
      if dir == "in" then
        local done, m2 = raw:put_copy_end()
        if not done then
          error(conn_error(fname, m2 or "cannot end the COPY"), 0)
        end
        state.phase = "done"
        flush_all(raw, fname)
      else
        state.phase = "done"
      end
      local last, failed = finish(raw, fname)
      if failed then error(pg_error(failed), 0) end
      return last
    end)
    if ok then return { last = e } end
    if lasync.is_error(e, lasync.OSError) or state.phase == "done" then
      error(e, 0) -- the connection failed, or the server's own error
    end
    if not pcall(abort, raw, fname, state, error_text(e)) then
      self:close()
    end
    return { failed = e }
  end)
  if res.failed ~= nil then error(res.failed, 0) end
  local last = res.last
  return last and last.tag or "", last and last.count
end

-- }==

-- {== Building the COPY statement (asyncpg's options)

local function ident(s)
  return '"' .. s:gsub('"', '""') .. '"'
end

local formats = { text = true, csv = true, binary = true }

-- opts' keys besides those of COPY's own options
local function check_opts(fname, opts, known)
  if opts ~= nil and type(opts) ~= "table" then
    error(("lasync.pg.Connection:%s: opts must be a table (got %s)")
      :format(fname, type(opts)), 0)
  end
  opts = opts or {}
  local function bad(msg)
    error(("lasync.pg.Connection:%s: %s"):format(fname, msg), 0)
  end
  for k in pairs(opts) do
    if not known[k] then bad("unknown option '" .. tostring(k) .. "'") end
  end
  local function str(k)
    local v = opts[k]
    if v ~= nil and (type(v) ~= "string" or v:find("\0", 1, true)) then
      bad(("option '%s' must be a string without NUL bytes"):format(k))
    end
  end
  for _, k in ipairs { "schema_name", "delimiter", "null", "quote",
    "escape", "encoding" } do
    str(k)
  end
  if opts.format ~= nil and not formats[opts.format] then
    bad("option 'format' must be \"text\", \"csv\" or \"binary\"")
  end
  if opts.header ~= nil and type(opts.header) ~= "boolean" then
    bad("option 'header' must be a boolean")
  end
  local cols = opts.columns
  if cols ~= nil then
    if type(cols) ~= "table" or #cols == 0 then
      bad("option 'columns' must be a non-empty array of names")
    end
    for _, c in ipairs(cols) do
      if type(c) ~= "string" or c:find("\0", 1, true) then
        bad("option 'columns' must be a non-empty array of names")
      end
    end
  end
  return opts
end

-- "COPY [schema.]table (cols) FROM STDIN | TO STDOUT WITH (...)"; the
-- string options are quoted by libpq (raw:escape_literal)
local function copy_options(raw, opts)
  local o = {}
  if opts.format then o[#o + 1] = "FORMAT " .. opts.format end
  for _, k in ipairs { "delimiter", "null", "quote", "escape",
    "encoding" } do
    if opts[k] then
      o[#o + 1] = k:upper() .. " " .. raw:escape_literal(opts[k])
    end
  end
  if opts.header ~= nil then
    o[#o + 1] = "HEADER " .. (opts.header and "true" or "false")
  end
  if #o == 0 then return "" end
  return " WITH (" .. concat(o, ", ") .. ")"
end

local function table_sql(opts, name)
  local t = ident(name)
  if opts.schema_name then t = ident(opts.schema_name) .. "." .. t end
  if opts.columns then
    local cs = {}
    for i, c in ipairs(opts.columns) do cs[i] = ident(c) end
    t = t .. " (" .. concat(cs, ", ") .. ")"
  end
  return t
end

local function check_name(fname, name)
  if type(name) ~= "string" or name == "" or name:find("\0", 1, true) then
    error(("lasync.pg.Connection:%s: the table name must be a non-empty " ..
      "string without NUL bytes (got %s)"):format(fname, type(name)), 3)
  end
end

-- }==

-- {== copy_to_table, copy_records_to_table

local in_opts = { source = true, columns = true, schema_name = true,
  format = true, delimiter = true, null = true, header = true,
  quote = true, escape = true, encoding = true }

-- A callable that gives the source's next chunk, nil at the end.
local function reader_of(fname, source)
  local t = type(source)
  if t == "string" then
    local pos = 1
    return function()
      if pos > #source then return nil end
      local chunk = source:sub(pos, pos + CHUNK - 1)
      pos = pos + CHUNK
      return chunk
    end
  end
  if t == "function" then return source end
  if (t == "table" or t == "userdata") and type(source.read) == "function"
  then
    return function()
      local chunk = source:read(CHUNK)
      if chunk == "" then return nil end
      return chunk
    end
  end
  error(("lasync.pg.Connection:%s: option 'source' must be a string, a " ..
    "function or an object with a read method (got %s)"):format(fname, t), 3)
end

--- db:copy_to_table(table, {source =, columns =, format =, ...}) -> tag,
--- count
local function copy_to_table(self, name, opts)
  local fname = "copy_to_table"
  check_conn(self, fname)
  check_name(fname, name)
  opts = check_opts(fname, opts, in_opts)
  if opts.source == nil then
    error("lasync.pg.Connection:copy_to_table: option 'source' is required",
      2)
  end
  local read = reader_of(fname, opts.source)
  local sql
  return run_copy(self, fname, function(raw)
    sql = sql or ("COPY " .. table_sql(opts, name) .. " FROM STDIN" ..
      copy_options(raw, opts))
    return sql
  end, "in", function(raw)
    while true do
      local chunk = read()
      if chunk == nil or chunk == "" then return end
      if type(chunk) ~= "string" then
        error(("lasync.pg.Connection:%s: the source gave a %s (expected " ..
          "a string, or nil at the end)"):format(fname, type(chunk)), 0)
      end
      put(raw, fname, chunk)
    end
  end)
end

-- A value encode_records (pg_copy.c) leaves to Lua: a table (json, an
-- array, pg.bytea, pg.json, pg.array) as its text, or an error naming the
-- record and the column.
local function text_of(fname)
  return function(v, row, col)
    local ok, text, binary = pcall(encode, v, col, fname)
    if not ok then
      error(("lasync.pg.Connection:%s: record %d, column %d: %s")
        :format(fname, row, col, (tostring(text):gsub(
          "^.-parameter %$%d+: ", ""))), 0)
    end
    if binary then -- bytea's hex form
      return "\\x" .. text:gsub(".", function(c)
        return format("%02x", c:byte())
      end)
    end
    return text
  end
end

--- db:copy_records_to_table(table, {records =, columns =, schema_name =})
--- -> tag, count
local function copy_records_to_table(self, name, opts)
  local fname = "copy_records_to_table"
  check_conn(self, fname)
  check_name(fname, name)
  opts = check_opts(fname, opts, { records = true, columns = true,
    schema_name = true })
  local records = opts.records
  local rt = type(records)
  if rt ~= "table" and rt ~= "function" then
    error(("lasync.pg.Connection:%s: option 'records' must be an array " ..
      "of records or a function (got %s)"):format(fname, rt), 2)
  end
  local width = opts.columns and #opts.columns or 0
  local encode_text = text_of(fname)
  return run_copy(self, fname, "COPY " .. table_sql(opts, name) ..
    " FROM STDIN", "in", function(raw)
    if rt == "table" then -- encoded in C, a chunk at a time
      local i = 1
      while records[i] ~= nil do
        local chunk
        chunk, i = raw:encode_records(records, i, width, null, encode_text, 0)
        put(raw, fname, chunk)
      end
      return
    end
    local batch, count = {}, 0 -- records from the function, in batches
    while true do
      local n = 0
      repeat
        local rec = records()
        if rec == nil then break end
        n = n + 1
        batch[n] = rec
      until n == 1000
      if n == 0 then return end
      for k = #batch, n + 1, -1 do batch[k] = nil end
      local i = 1
      while i <= n do
        local chunk
        chunk, i = raw:encode_records(batch, i, width, null, encode_text,
          count)
        put(raw, fname, chunk)
      end
      count = count + n
      if n < 1000 then return end
    end
  end)
end

-- }==

-- {== copy_from_table, copy_from_query

local out_opts = { output = true, columns = true, schema_name = true,
  format = true, delimiter = true, null = true, header = true,
  quote = true, escape = true, encoding = true }

local function writer_of(fname, output)
  local t = type(output)
  if t == "function" then return output end
  if (t == "table" or t == "userdata") and type(output.write) == "function"
  then
    return function(chunk) output:write(chunk) end
  end
  error(("lasync.pg.Connection:%s: option 'output' must be a function or " ..
    "an object with a write method (got %s)"):format(fname, t), 3)
end

--- db:copy_from_table(table, {output =, columns =, format =, ...}) ->
--- tag, count
local function copy_from_table(self, name, opts)
  local fname = "copy_from_table"
  check_conn(self, fname)
  check_name(fname, name)
  opts = check_opts(fname, opts, out_opts)
  local out = writer_of(fname, opts.output)
  local sql
  return run_copy(self, fname, function(raw)
    sql = sql or ("COPY " .. table_sql(opts, name) .. " TO STDOUT" ..
      copy_options(raw, opts))
    return sql
  end, "out", function(raw) get_all(raw, fname, out) end)
end

-- sql with $1..$n replaced by the literals lits (COPY takes no
-- parameters): quoted strings, quoted names, comments and dollar quotes
-- are skipped.
local function inline_params(fname, sql, lits)
  local out, start, i, n = {}, 1, 1, #sql
  while i <= n do
    local c = sql:sub(i, i)
    if c == "'" or c == '"' then
      local bs = c == "'" and sql:sub(i - 1, i - 1):lower() == "e" and
        not sql:sub(i - 2, i - 2):find("[%w_]")
      local j = i + 1
      while true do
        if j > n then i = n + 1 break end
        local d = sql:sub(j, j)
        if bs and d == "\\" then j = j + 2
        elseif d == c then
          if sql:sub(j + 1, j + 1) == c then j = j + 2
          else i = j + 1 break end
        else j = j + 1 end
      end
    elseif c == "-" and sql:sub(i + 1, i + 1) == "-" then
      i = (sql:find("\n", i, true) or n) + 1
    elseif c == "/" and sql:sub(i + 1, i + 1) == "*" then
      local e = sql:find("*/", i + 2, true)
      i = e and e + 2 or n + 1
    elseif c == "$" then
      local d = sql:match("^%d+", i + 1)
      if d and not sql:sub(i - 1, i - 1):find("[%w_]") then
        local k = tonumber(d)
        if lits[k] == nil then
          error(("lasync.pg.Connection:%s: $%d has no parameter")
            :format(fname, k), 0)
        end
        out[#out + 1] = sql:sub(start, i - 1)
        out[#out + 1] = lits[k]
        i = i + 1 + #d
        start = i
      else
        local tag = sql:match("^%$[%a_][%w_]*%$", i) or
          sql:match("^%$%$", i)
        if tag and not sql:sub(i - 1, i - 1):find("[%w_]") then
          local e = sql:find(tag, i + #tag, true)
          i = e and e + #tag or n + 1
        else
          i = i + 1
        end
      end
    else
      i = i + 1
    end
  end
  out[#out + 1] = sql:sub(start)
  return concat(out)
end

--- db:copy_from_query(sql, ..., {output =, format =, ...}) -> tag, count
local function copy_from_query(self, sql, ...)
  local fname = "copy_from_query"
  check_conn(self, fname)
  if type(sql) ~= "string" or sql:find("\0", 1, true) then
    error(("lasync.pg.Connection:%s: the query must be a string without " ..
      "NUL bytes (got %s)"):format(fname, type(sql)), 2)
  end
  local n = select("#", ...)
  local opts = n > 0 and select(n, ...) or nil
  if type(opts) ~= "table" or getmetatable(opts) ~= nil then
    error("lasync.pg.Connection:copy_from_query: the last argument must " ..
      "be the table of options (with output)", 2)
  end
  opts = check_opts(fname, opts, { output = true, format = true,
    delimiter = true, null = true, header = true, quote = true,
    escape = true, encoding = true })
  local out = writer_of(fname, opts.output)
  local params = {}
  for i = 1, n - 1 do
    local text, binary = encode((select(i, ...)), i, fname)
    params[i] = { text, binary }
  end
  local full
  return run_copy(self, fname, function(raw)
    if full then return full end
    local lits = {}
    for i, p in ipairs(params) do
      local text, binary = p[1], p[2]
      if text == false then lits[i] = "NULL"
      else
        if binary then
          text = "\\x" .. text:gsub(".", function(c)
            return format("%02x", c:byte())
          end)
        end
        lits[i] = raw:escape_literal(text)
      end
    end
    full = "COPY (" .. inline_params(fname, sql, lits) .. "\n) TO STDOUT" ..
      copy_options(raw, opts)
    return full
  end, "out", function(raw) get_all(raw, fname, out) end)
end

-- }==

-- conn:_simple(sql): run sql, several statements, by the simple query
-- protocol, its results read to the end (the pool's reset); raises the
-- first error. Not for user input: no parameters. sql may be a function
-- of the raw connection, called once the connection is held (after the
-- drain of a cancelled query, whose transaction status it may read).
local function simple(self, sql)
  return with_conn(self, "_simple", function()
    local raw = self._raw
    if type(sql) == "function" then sql = sql(raw) end
    local flushed, m = raw:send_simple(sql)
    if flushed == nil then error(conn_error("_simple", m), 0) end
    flush_all(raw, "_simple")
    local _, failed = finish(raw, "_simple")
    if failed then error(pg_error(failed), 0) end
  end)
end

-- Add the COPY methods to pg.lua's Connection; h: pg.lua's pieces.
function M.install(Connection, h)
  null, pg_conn_error, pg_error = h.null, h.conn_error, h.pg_error
  with_conn, encode, check_conn = h.with_conn, h.encode, h.check_conn
  decode = h.decode
  Connection.copy_to_table = copy_to_table
  Connection.copy_records_to_table = copy_records_to_table
  Connection.copy_from_table = copy_from_table
  Connection.copy_from_query = copy_from_query
  Connection._simple = simple
end

return M
