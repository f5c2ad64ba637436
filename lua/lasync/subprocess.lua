-- lasync.subprocess, the part that reads better in Lua: communicate(),
-- on top of the C Process (bindings/process.c).
local core = require "lasync.core"

local methods = core._methods("Process")

--- p:communicate([input]) -> stdout, stderr (each nil unless a pipe):
-- writes input to stdin and closes it while reading stdout and stderr to
-- their ends, so that no side can fill its pipe and stall the other;
-- then waits for the process to exit
function methods.communicate(p, input)
  local mt = type(p) == "userdata" and getmetatable(p)
  if not (mt and rawget(mt, "_methods") == methods) then
    error(("lasync.Process:communicate: expected a lasync.Process (got %s)")
      :format(type(p)), 2)
  end
  if input ~= nil and type(input) ~= "string" then
    error(("lasync.Process:communicate: input must be a string (got %s)")
      :format(type(input)), 2)
  end
  if input ~= nil and p.stdin == nil then
    error("lasync.Process:communicate: stdin is not a pipe", 2)
  end
  local function feed()
    if p.stdin == nil then return end
    if input and input ~= "" then
      p.stdin:write(input)
      pcall(p.stdin.drain, p.stdin) -- the child may exit without reading
    end
    p.stdin:close()
  end
  local function drain(reader)
    return function() return reader and reader:read() end
  end
  local _, out, err = core.gather(feed, drain(p.stdout), drain(p.stderr))
  p:wait()
  return out, err
end

return core.subprocess
