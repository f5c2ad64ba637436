-- lasync.http.multidict: an ordered table whose keys may repeat (query
-- strings, form fields, headers), as Python's multidict. md[key] is the
-- first value; the methods live in the metatable, so a key named like a
-- method ("add") is read with md:get(key).
local M = {}

local type, error, rawset, setmetatable, getmetatable = type, error,
  rawset, setmetatable, getmetatable
local lower = string.lower

-- The private fields of a multidict are under these keys (tables, which
-- no string key can collide with): ENTRIES, an array of key, value,
-- key, value...; FIRST, key -> first value; LISTS (made on the first
-- repeated key), key -> array of all its values; CI, true for a
-- CIMultiDict.
local ENTRIES, FIRST, LISTS, CI = {}, {}, {}, {}

local methods = {}
local mt = { __name = "lasync.http.MultiDict" }
local ci_mt = { __name = "lasync.http.CIMultiDict" }

local function is_md(x)
  local m = getmetatable(x)
  return m == mt or m == ci_mt
end

local function check_self(self, fname)
  if not is_md(self) then
    error(("lasync.http.MultiDict:%s: expected a MultiDict (got %s)")
      :format(fname, type(self)), 3)
  end
end

local function check_key(self, key, fname)
  if type(key) ~= "string" then
    error(("lasync.http.MultiDict:%s: key must be a string (got %s)")
      :format(fname, type(key)), 3)
  end
  if self[CI] then return lower(key) end
  return key
end

local function check_value(value, fname)
  if value == nil then
    error(("lasync.http.MultiDict:%s: value must not be nil")
      :format(fname), 3)
  end
end

-- Appends (key, value); key already folded.
local function push(self, key, value)
  local entries = self[ENTRIES]
  local n = #entries
  entries[n + 1], entries[n + 2] = key, value
  local first = self[FIRST]
  if first[key] == nil then
    first[key] = value
  else
    local lists = self[LISTS]
    if not lists then
      lists = {}
      rawset(self, LISTS, lists) -- past __newindex
    end
    local list = lists[key]
    if list then
      list[#list + 1] = value
    else
      lists[key] = { first[key], value }
    end
  end
end

-- Removes every entry of key (already folded); returns how many.
local function remove_all(self, key)
  if self[FIRST][key] == nil then return 0 end
  local entries = self[ENTRIES]
  local j, removed, n = 0, 0, #entries
  for i = 1, n, 2 do
    local k, v = entries[i], entries[i + 1]
    if k == key then
      removed = removed + 1
    else
      entries[j + 1], entries[j + 2] = k, v
      j = j + 2
    end
  end
  for i = j + 1, n do entries[i] = nil end
  self[FIRST][key] = nil
  if self[LISTS] then self[LISTS][key] = nil end
  return removed
end

--- md:get(key [, default]) -> the first value of key, or default
function methods.get(self, key, default)
  check_self(self, "get")
  local v = self[FIRST][check_key(self, key, "get")]
  if v == nil then return default end
  return v
end

--- md:getall(key) -> a fresh array of key's values ({} when none)
function methods.getall(self, key)
  check_self(self, "getall")
  key = check_key(self, key, "getall")
  local list = self[LISTS] and self[LISTS][key]
  if list then return { table.unpack(list) } end
  local v = self[FIRST][key]
  if v == nil then return {} end
  return { v }
end

--- md:has(key) -> whether key has a value
function methods.has(self, key)
  check_self(self, "has")
  return self[FIRST][check_key(self, key, "has")] ~= nil
end

--- md:add(key, value): appends a value, keeping those already there
function methods.add(self, key, value)
  check_self(self, "add")
  key = check_key(self, key, "add")
  check_value(value, "add")
  push(self, key, value)
end

--- md:set(key, value): replaces every value of key by this one (at the
-- end of the order); md[key] = value does the same, and md[key] = nil
-- removes them
function methods.set(self, key, value)
  check_self(self, "set")
  key = check_key(self, key, "set")
  check_value(value, "set")
  remove_all(self, key)
  push(self, key, value)
end

--- md:remove(key) -> the number of values removed
function methods.remove(self, key)
  check_self(self, "remove")
  return remove_all(self, check_key(self, key, "remove"))
end

--- md:len() -> the number of (key, value) entries
function methods.len(self)
  check_self(self, "len")
  return #self[ENTRIES] // 2
end

--- md:items() -> an iterator of key, value in insertion order
function methods.items(self)
  check_self(self, "items")
  local entries, i = self[ENTRIES], -1
  return function()
    i = i + 2
    return entries[i], entries[i + 1]
  end
end

--- md:keys() -> an array of the distinct keys, in order of first
-- insertion
function methods.keys(self)
  check_self(self, "keys")
  local out, seen, entries = {}, {}, self[ENTRIES]
  for i = 1, #entries, 2 do
    local k = entries[i]
    if not seen[k] then
      seen[k] = true
      out[#out + 1] = k
    end
  end
  return out
end

--- md:to_table() -> a plain table key -> first value
function methods.to_table(self)
  check_self(self, "to_table")
  local out = {}
  for k, v in pairs(self[FIRST]) do out[k] = v end
  return out
end

local function index(self, key)
  local m = methods[key]
  if m ~= nil then return m end
  if type(key) ~= "string" then return nil end
  return self[FIRST][key]
end

local function ci_index(self, key)
  local m = methods[key]
  if m ~= nil then return m end
  if type(key) ~= "string" then return nil end
  return self[FIRST][lower(key)]
end

local function newindex(self, key, value)
  if type(key) ~= "string" then
    error(("lasync.http.MultiDict: key must be a string (got %s)")
      :format(type(key)), 2)
  end
  if self[CI] then key = lower(key) end
  remove_all(self, key)
  if value ~= nil then push(self, key, value) end
end

local function items_pairs(self)
  return self:items()
end

local function tostr(self)
  local parts, entries = {}, self[ENTRIES]
  for i = 1, #entries, 2 do
    local k, v = entries[i], entries[i + 1]
    parts[#parts + 1] = ("%q: %s"):format(k, type(v) == "string" and
      ("%q"):format(v) or tostring(v))
  end
  return getmetatable(self).__name:gsub("^lasync%.http%.", "") .. "{" ..
    table.concat(parts, ", ") .. "}"
end

mt.__index, mt.__newindex, mt.__pairs, mt.__tostring = index, newindex,
  items_pairs, tostr
ci_mt.__index, ci_mt.__newindex, ci_mt.__pairs, ci_mt.__tostring = ci_index,
  newindex, items_pairs, tostr
mt._methods, ci_mt._methods = methods, methods

-- Fills md from init: nil, a multidict, an array of {key, value} pairs,
-- or a table key -> value | array of values (keys sorted, so the order
-- does not depend on the hash).
local function fill(md, init, fname)
  if init == nil then return md end
  if is_md(init) then
    for k, v in init:items() do md:add(k, v) end
    return md
  end
  if type(init) ~= "table" then
    error(("lasync.http.multidict.%s: expected a table or a MultiDict " ..
      "(got %s)"):format(fname, type(init)), 3)
  end
  if #init > 0 then
    for i, pair in ipairs(init) do
      if type(pair) ~= "table" or type(pair[1]) ~= "string" or
          pair[2] == nil then
        error(("lasync.http.multidict.%s: entry %d must be a {key, " ..
          "value} pair"):format(fname, i), 3)
      end
      md:add(pair[1], pair[2])
    end
    return md
  end
  local names = {}
  for k in pairs(init) do
    if type(k) ~= "string" then
      error(("lasync.http.multidict.%s: keys must be strings (got %s)")
        :format(fname, type(k)), 3)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = init[k]
    if type(v) == "table" and not getmetatable(v) then
      for _, x in ipairs(v) do md:add(k, x) end
    else
      md:add(k, v)
    end
  end
  return md
end

local function make(meta, ci)
  return setmetatable({ [ENTRIES] = {}, [FIRST] = {}, [CI] = ci or nil },
    meta)
end

--- multidict.new([init]) -> a MultiDict (keys compared exactly)
function M.new(init)
  return fill(make(mt), init, "new")
end

--- multidict.ci([init]) -> a CIMultiDict: keys are compared without
-- regard to ASCII case (stored lowercased), as for header names
function M.ci(init)
  return fill(make(ci_mt, true), init, "ci")
end

--- multidict.is(x) -> whether x is a MultiDict or a CIMultiDict
M.is = is_md

-- md:add without the checks, for the parsers here (key a string, value
-- not nil, key already lowercased for a CIMultiDict)
M._push = push

return M
