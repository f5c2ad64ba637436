-- lasync.fs, the parts that read better in Lua: whole-file helpers and
-- iterating lines, on top of the C file object (bindings/fs.c).
local core = require "lasync.core"

local fs = core.fs
local concat = table.concat

local File = nil -- the File methods table, found on first use

local function file_methods(f)
  File = File or getmetatable(f).__index
  return File
end

--- f:read_all() -> the rest of the file
local function read_all(f)
  local parts = {}
  while true do
    local chunk = f:read(65536)
    if chunk == "" then break end
    parts[#parts + 1] = chunk
  end
  return concat(parts)
end

--- for line in f:lines() do ... end: lines without their "\n"
local function lines(f)
  local buffer, pos, done = "", 1, false
  return function()
    while true do
      local nl = buffer:find("\n", pos, true)
      if nl then
        local line = buffer:sub(pos, nl - 1)
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
      local chunk = f:read(65536)
      if chunk == "" then done = true end
      buffer, pos = buffer:sub(pos) .. chunk, 1
    end
  end
end

--- lasync.fs.readfile(path) -> the file's contents
function fs.readfile(path)
  local f <close> = fs.open(path, "rb")
  return read_all(f)
end

--- lasync.fs.writefile(path, data): create or replace the file
function fs.writefile(path, data)
  if type(data) ~= "string" then
    error(("lasync.fs.writefile: data must be a string (got %s)")
      :format(type(data)), 2)
  end
  local f <close> = fs.open(path, "wb")
  f:write(data)
  f:close()
end

-- Install read_all and lines on the File class once a file exists: the
-- class's method table is reachable only through an instance.
local open = fs.open
function fs.open(...)
  local f = open(...)
  if not File then
    local methods = file_methods(f)
    methods.read_all, methods.lines = read_all, lines
  end
  return f
end

return fs
