-- lasync.subprocess, the part that reads better in Lua: communicate(),
-- on top of the C Process (bindings/io/process.c).
local core = require "lasync.core"
local check = require "lasync.check"

local methods = core._methods("Process")
local pack, unpack = table.pack, table.unpack

--- p:communicate([input]) -> stdout, stderr (each nil unless a pipe):
-- writes input to stdin and closes it while reading stdout and stderr to
-- their ends, so that no side can fill its pipe and stall the other;
-- then waits for the process to exit
local function communicate(p, input)
  if input ~= nil and type(input) ~= "string" then
    error(("lasync.Process:communicate: input must be a string (got %s)")
      :format(type(input)), 2)
  end
  if input ~= nil and p.stdin == nil then
    error("lasync.Process:communicate: stdin is not a pipe", 2)
  end
  if input ~= nil and input ~= "" and p.stdin:is_closing() then
    error("lasync.Process:communicate: stdin is closed", 2)
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
  local children = { core.spawn(feed), core.spawn(drain(p.stdout)),
    core.spawn(drain(p.stderr)) }
  local res = pack(pcall(core.gather, unpack(children)))
  if not res[1] then
    -- gather cancels its children only when it is cancelled itself: after
    -- a child's error the others would go on reading (and keep a later
    -- communicate from reading)
    for _, t in ipairs(children) do t:cancel() end
    error(res[2], 0)
  end
  p:wait()
  return res[3], res[4]
end

methods.communicate = check.method(methods, "Process:communicate",
  communicate)

return core.subprocess
