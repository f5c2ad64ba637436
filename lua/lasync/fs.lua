-- lasync.fs, the parts that read better in Lua: whole-file helpers and
-- iterating lines, on top of the C file object (bindings/fs.c).
local core = require "lasync.core"

local fs = core.fs
local File = core._methods("File")
local concat = table.concat

local function check_open(f, fname)
  if not File.fileno(f) then
    error(("lasync.File:%s: the file is closed"):format(fname), 3)
  end
end

--- f:read_all() -> the rest of the file
function File.read_all(f)
  check_open(f, "read_all")
  local parts = {}
  while true do
    local chunk = f:read(65536)
    if chunk == "" then break end
    parts[#parts + 1] = chunk
  end
  return concat(parts)
end

--- for line in f:lines() do ... end: lines without their "\n"
function File.lines(f)
  check_open(f, "lines")
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
  return f:read_all()
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

return fs
