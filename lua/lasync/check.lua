-- lasync.check: the argument checks of the Lua-written API, worded as the
-- C core words its own. Methods check their receiver as lx_checkclass
-- does (bindings/core/runtime.c), so that tg.run(fn), a method called with .
-- instead of :, says "lasync.TaskGroup:run: expected a TaskGroup (got
-- function)" rather than failing on self inside. Every check runs before
-- the function does anything (spawns, allocates, resolves). Also
-- check.unwrap, which the Lua-written API uses to end a protected call.
local M = {}

local getmetatable, type, error, tostring, rawget, select = getmetatable,
  type, error, tostring, rawget, select
local unpack = table.unpack

-- "an Event", "a Lock": the article the C checker uses
local function with_article(name)
  return (name:find("^[AEIO]") and "an " or "a ") .. name
end

--- check.typename(v): what the errors say v is, as the C core's
-- lx_typename: its metatable's __name if a string ("lasync.Future"), else
-- its type
function M.typename(v)
  local mt = getmetatable(v)
  local name = type(mt) == "table" and rawget(mt, "__name")
  return type(name) == "string" and name or type(v)
end

--{======================================================================
-- Receivers
--=======================================================================

--- check.method(methods, fname, fn) -> fn, refusing a receiver that is
-- not of the class whose methods table is `methods`: a Lua class (its
-- metatable is that table) or a C class (a userdata whose metatable's
-- __index, or _methods when __index is a function, is that table). fname
-- is "Class:method", as in the errors.
function M.method(methods, fname, fn)
  local expected = with_article(fname:match("^[^:]+"))
  return function(...)
    local self = ...
    local mt = getmetatable(self)
    if mt ~= methods and not (type(self) == "userdata" and
        type(mt) == "table" and (rawget(mt, "__index") == methods or
          rawget(mt, "_methods") == methods)) then
      error(("lasync.%s: expected %s (got %s)"):format(fname, expected,
        select("#", ...) == 0 and "no value" or M.typename(self)), 2)
    end
    return fn(...) -- a tail call: fn's error levels stay the same
  end
end

--- check.guard(cls): every function of the Lua class cls (cls.__index ==
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

--}======================================================================

--{======================================================================
-- Results
--=======================================================================

--- check.unwrap(res) -> the results of table.pack(xpcall(fn, ...)) as fn
-- returned them, or its error re-raised unchanged (level 0)
function M.unwrap(res)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

--}======================================================================

--{======================================================================
-- Arguments: each raises at the caller of the function that checks
--=======================================================================

--- check.callable(fn, fname [, what]): fn is a function or has __call
-- ("lasync.timeout: expected a function (got nil)"; `what` is added to
-- say which argument or how the call should look)
function M.callable(fn, fname, what)
  if type(fn) == "function" then return end
  local mt = getmetatable(fn)
  if type(mt) == "table" and mt.__call ~= nil then return end
  error(("lasync.%s: expected a function%s (got %s)"):format(fname,
    what and " " .. what or "", type(fn)), 3)
end

--- check.seconds(x, fname, name): x is nil or a number other than NaN
-- ("lasync.wait: timeout must be a number or nil (got string)")
function M.seconds(x, fname, name)
  if x ~= nil and type(x) ~= "number" then
    error(("lasync.%s: %s must be a number or nil (got %s)"):format(fname,
      name, type(x)), 3)
  end
  if x ~= x then error(("lasync.%s: %s is NaN"):format(fname, name), 3) end
end

-- how a key is shown in an error: 'name', [1], [true], [table]
local function show_key(k)
  if type(k) == "string" then return "'" .. k .. "'" end
  if type(k) == "number" or type(k) == "boolean" then
    return "[" .. tostring(k) .. "]"
  end
  return "[" .. type(k) .. "]"
end

--- check.options(opts, fname, allowed, example): opts is nil or a table
-- whose keys are all in the set `allowed`; returns opts or {}. `example`
-- shows the form ("{timeout = 1}") in the error for another value.
function M.options(opts, fname, allowed, example)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("lasync.%s: options must be a table such as %s (got %s)")
      :format(fname, example, type(opts)), 3)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      error(("lasync.%s: unknown option %s (options are named, as in %s)")
        :format(fname, show_key(k), example), 3)
    end
  end
  return opts
end

--}======================================================================

return M
