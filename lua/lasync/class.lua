-- lasync.class: methods written in Lua check their receiver as the C
-- methods do (lx_checkclass in bindings/runtime.c), so that t.run(fn),
-- a method called with . instead of :, says "lasync.TaskGroup:run:
-- expected a TaskGroup (got function)" rather than failing on self inside.
local M = {}

local getmetatable, type, error = getmetatable, type, error

-- "an Event", "a Lock": the article the C checker uses
local function with_article(name)
  return (name:find("^[AEIO]") and "an " or "a ") .. name
end

--- class.method(methods, fname, fn) -> fn, refusing a receiver that is
-- not of the class whose methods table is `methods`: a Lua class (its
-- metatable is that table) or a C class (a userdata whose metatable's
-- __index is that table). fname is "Class:method", as in the errors.
function M.method(methods, fname, fn)
  local expected = with_article(fname:match("^[^:]+"))
  return function(self, ...)
    local mt = getmetatable(self)
    if mt ~= methods and not (type(self) == "userdata" and
        type(mt) == "table" and mt.__index == methods) then
      error(("lasync.%s: expected %s (got %s)"):format(fname, expected,
        type(self)), 2)
    end
    return fn(self, ...) -- a tail call: fn's error levels stay the same
  end
end

--- class.guard(cls): every function of the Lua class cls (cls.__index ==
-- cls, cls.__name == "lasync.Name"), its methods and metamethods, goes
-- through method(); call it once the class is complete
function M.guard(cls)
  local name = cls.__name:gsub("^lasync%.", "")
  for k, v in pairs(cls) do
    if type(v) == "function" then
      cls[k] = M.method(cls, name .. ":" .. k, v)
    end
  end
end

return M
