-- lasync.fs, the parts that read better in Lua: whole-file helpers, the
-- formats of io's read ("l", "L", "n", "a") and iterating lines, on top
-- of the C file object (bindings/io/fs.c).
local core = require "lasync.core"
local check = require "lasync.check"

local fs = core.fs
local File = core._methods("File")
local concat, unpack = table.concat, table.unpack
local raw_read, fileno, seek = File.read, File.fileno, File.seek
local type, error, pcall, select = type, error, pcall, select
local tonumber, math_type = tonumber, math.type

-- Errors name the public function; level 3 blames its caller.
local function check_open(f, fname)
  local ok, fd = pcall(fileno, f)
  if not ok then
    error(("lasync.File:%s: expected a File (got %s)")
      :format(fname, check.typename(f)), 3)
  end
  if not fd then
    error(("lasync.File:%s: the file is closed"):format(fname), 3)
  end
end

local function check_path(path, fname, what)
  if type(path) ~= "string" then
    error(("lasync.fs.%s: %s must be a string (got %s)")
      :format(fname, what or "path", type(path)), 3)
  end
  if path:find("\0", 1, true) then
    error(("lasync.fs.%s: %s contains an embedded NUL byte")
      :format(fname, what or "path"), 3)
  end
end

--{======================================================================
-- Formats of read and lines, as io's (Lua 5.4: an optional "*" first)
--=======================================================================

-- Whether the file has a position (a pipe or terminal has none). Reading
-- a line or a number reads a chunk and seeks back over what follows; on
-- a file without a position a line is read a byte at a time, as Python's
-- unbuffered readline does.
local seekable = setmetatable({}, { __mode = "k" })

local function has_position(f)
  local s = seekable[f]
  if s == nil then
    s = pcall(seek, f, "cur", 0)
    seekable[f] = s
  end
  return s
end

local LINE_CHUNK = 4096

-- A line, with its "\n" if keep; nil at the end of the file.
local function read_line(f, keep)
  local parts = {}
  if has_position(f) then
    while true do
      local chunk = raw_read(f, LINE_CHUNK)
      if chunk == "" then break end
      local nl = chunk:find("\n", 1, true)
      if nl then
        parts[#parts + 1] = chunk:sub(1, keep and nl or nl - 1)
        if nl < #chunk then seek(f, "cur", nl - #chunk) end
        return concat(parts)
      end
      parts[#parts + 1] = chunk
    end
  else
    while true do
      local c = raw_read(f, 1)
      if c == "" then break end
      if c == "\n" then
        if keep then parts[#parts + 1] = c end
        return concat(parts)
      end
      parts[#parts + 1] = c
    end
  end
  if #parts == 0 then return nil end
  return concat(parts)
end

-- A number as io's "n" reads it (up to 200 characters of a numeral after
-- leading spaces); nil if there is none. Needs a position, to give back
-- what follows the numeral.
local function read_number(f)
  if not has_position(f) then
    error("lasync.File:read: format \"n\" needs a file with a position " ..
      "(not a pipe or terminal)", 3)
  end
  local chunk = raw_read(f, 256)
  local start = chunk:find("[^ \t\n\r\f\v]") or #chunk + 1
  local numeral = chunk:match("^[+-]?0[xX][%x.]*[pP]?[+-]?%x*", start) or
      chunk:match("^[+-]?[%d.]*[eE]?[+-]?%d*", start)
  numeral = numeral:sub(1, 200)
  local used = start - 1 + #numeral
  if used < #chunk then seek(f, "cur", used - #chunk) end
  return tonumber(numeral)
end

local function read_all(f)
  local parts = {}
  while true do
    local chunk = raw_read(f, 65536)
    if chunk == "" then break end
    parts[#parts + 1] = chunk
  end
  return concat(parts)
end

-- The kind of a format ("l", "L", "n", "a", or "count" for a number).
local function format_kind(fmt, fname, i, level)
  if math_type(fmt) == "integer" or (math_type(fmt) == "float" and
      fmt == fmt // 1 and fmt >= 0) then
    if fmt < 0 then
      error(("lasync.File:%s: format #%d: a count must be >= 0")
        :format(fname, i), level)
    end
    return "count"
  end
  if type(fmt) == "string" then
    local c = fmt:match("^%*?([lLna])")
    if c then return c end
    error(("lasync.File:%s: format #%d: invalid format '%s' (expected " ..
      "\"l\", \"L\", \"n\", \"a\" or a count)"):format(fname, i, fmt), level)
  end
  error(("lasync.File:%s: format #%d: invalid format (expected \"l\", " ..
    "\"L\", \"n\", \"a\" or a count, got %s)"):format(fname, i,
    math_type(fmt) == "float" and "float" or type(fmt)), level)
end

local function read_one(f, kind, fmt)
  if kind == "count" then return raw_read(f, fmt // 1) end
  if kind == "l" then return read_line(f, false) end
  if kind == "L" then return read_line(f, true) end
  if kind == "n" then return read_number(f) end
  return read_all(f)
end

-- Read the formats from index i on; stops at the first nil, as io does.
local function read_formats(f, i, n, ...)
  if i > n then return end
  local fmt = select(i, ...)
  local v = read_one(f, format_kind(fmt, "read", i, 1), fmt) -- checked
  if v == nil then return nil end
  return v, read_formats(f, i + 1, n, ...)
end

--- f:read([fmt...]): without a format, up to 65536 bytes ("" at the end);
-- a count n: up to n bytes; "l"/"L": a line without/with its "\n", nil at
-- the end; "n": a number or nil; "a": the rest of the file
function File.read(f, ...)
  local n = select("#", ...)
  check_open(f, "read")
  if n == 0 then return raw_read(f) end
  local fmt = ...
  if n == 1 and format_kind(fmt, "read", 1, 3) == "count" then
    return raw_read(f, fmt // 1)
  end
  for i = 1, n do format_kind(select(i, ...), "read", i, 3) end
  return read_formats(f, 1, n, ...)
end

--}======================================================================

--- f:read_all() -> the rest of the file
function File.read_all(f)
  check_open(f, "read_all")
  return read_all(f)
end

-- The lines of f, read in chunks: each without its "\n", or with it if
-- keep.
local function buffered_lines(f, keep)
  local buffer, pos, done = "", 1, false
  return function()
    while true do
      local nl = buffer:find("\n", pos, true)
      if nl then
        local line = buffer:sub(pos, keep and nl or nl - 1)
        pos = nl + 1
        return line
      end
      if done then
        if pos <= #buffer then
          local line = buffer:sub(pos)
          pos = #buffer + 1
          return line
        end
        return nil
      end
      local chunk = raw_read(f, 65536)
      if chunk == "" then done = true end
      buffer, pos = buffer:sub(pos) .. chunk, 1
    end
  end
end

--- for line in f:lines([fmt...]) do ... end: with no format (or "l"),
-- lines without their "\n"; "L": with it; other formats as read, until
-- one gives nil (a count: "")
function File.lines(f, ...)
  check_open(f, "lines")
  local n = select("#", ...)
  local fmt = ...
  for i = 1, n do format_kind(select(i, ...), "lines", i, 3) end
  if n == 0 or (n == 1 and type(fmt) == "string" and
      fmt:match("^%*?([lL])")) then
    return buffered_lines(f, n == 1 and fmt:match("^%*?(.)") == "L")
  end
  local fmts = table.pack(...)
  local function until_end(v, ...) -- "a" and counts give "" at the end
    if v == nil or v == "" then return nil end
    return v, ...
  end
  return function()
    return until_end(read_formats(f, 1, fmts.n, unpack(fmts, 1, fmts.n)))
  end
end

-- fs.open(path, mode) for fs.<fname>, whose name its errors carry.
local function open_for(fname, path, mode)
  local ok, f = pcall(fs.open, path, mode)
  if not ok then
    if core.is_error(f, core.OSError) and type(f.message) == "string" then
      f.message = f.message:gsub("^lasync%.fs%.open:", "lasync.fs." ..
        fname .. ":")
    end
    error(f, 0)
  end
  return f
end

--- lasync.fs.readfile(path) -> the file's contents
function fs.readfile(path)
  check_path(path, "readfile")
  local f <close> = open_for("readfile", path, "rb")
  return read_all(f)
end

--- lasync.fs.writefile(path, data): create or replace the file
function fs.writefile(path, data)
  check_path(path, "writefile")
  if type(data) ~= "string" then
    error(("lasync.fs.writefile: data must be a string (got %s)")
      :format(type(data)), 2)
  end
  local f <close> = open_for("writefile", path, "wb")
  f:write(data)
  f:close()
end

return fs
