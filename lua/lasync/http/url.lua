-- lasync.http.url: percent-decoding and encoding, query strings and
-- urlencoded forms (as multidicts), and splitting a request target into
-- its decoded path and its query string. Decoding is strict: a "%" not
-- followed by two hex digits is an error, never passed through.
local multidict = require "lasync.http.multidict"

local M = {}

local type, error, tostring, format, byte, char = type, error, tostring,
  string.format, string.byte, string.char
local find, gsub, sub, match = string.find, string.gsub, string.sub,
  string.match
local concat, sort = table.concat, table.sort

-- "2f" and "2F" -> "/": the table gsub decodes through
local HEX = {}
for i = 0, 255 do
  local hi, lo = format("%x", i // 16), format("%x", i % 16)
  for _, a in ipairs { hi, hi:upper() } do
    for _, b in ipairs { lo, lo:upper() } do HEX[a .. b] = char(i) end
  end
end

local function check_string(s, fname, what)
  if type(s) ~= "string" then
    error(("lasync.http.url.%s: %s must be a string (got %s)")
      :format(fname, what or "s", type(s)), 3)
  end
end

-- nil, or the byte offset of the first "%" without two hex digits after
local function bad_escape(s)
  local i = find(s, "%", 1, true)
  while i do
    if not find(s, "^%x%x", i + 1) then return i end
    i = find(s, "%", i + 3, true)
  end
  return nil
end

-- s decoded (validity already checked)
local function decode(s, plus)
  if plus and find(s, "+", 1, true) then s = gsub(s, "+", " ") end
  if find(s, "%", 1, true) then s = gsub(s, "%%(%x%x)", HEX) end
  return s
end

--- url.unquote(s [, plus_as_space]) -> s decoded, or nil, err for a "%"
-- not followed by two hex digits. s itself is returned when there is
-- nothing to decode.
function M.unquote(s, plus)
  check_string(s, "unquote")
  local at = bad_escape(s)
  if at then
    return nil, ("bad percent-escape at byte %d"):format(at)
  end
  return decode(s, plus)
end

local quote_sets = {}

-- the gsub pattern of the bytes quote encodes when `safe` is left alone
local function quote_pattern(safe)
  local p = quote_sets[safe]
  if not p then
    p = "[^%w%-%._~" .. gsub(safe, "%W", "%%%0") .. "]"
    quote_sets[safe] = p
  end
  return p
end

local function hex_escape(c)
  return format("%%%02X", byte(c))
end

--- url.quote(s [, safe]) -> s with every byte percent-encoded except
-- letters, digits, "-._~" and the bytes of safe (default "/")
function M.quote(s, safe)
  check_string(s, "quote")
  if safe == nil then
    safe = "/"
  elseif type(safe) ~= "string" then
    error(("lasync.http.url.quote: safe must be a string (got %s)")
      :format(type(safe)), 2)
  end
  return (gsub(s, quote_pattern(safe), hex_escape))
end

-- s encoded for a form: space as "+", everything else but unreserved
-- bytes percent-encoded
local function quote_plus(s)
  s = gsub(s, "[^%w%-%._~ ]", hex_escape)
  return (gsub(s, " ", "+"))
end

--- url.parse_qs(s [, max_fields]) -> a MultiDict of s's fields, in
-- order, repeated keys kept ("a=1&a=2&b" -> a: "1", "2"; b: ""); "+"
-- is a space. nil, err, 400 for a bad escape; nil, err, 413 past
-- max_fields fields.
function M.parse_qs(s, max_fields)
  check_string(s, "parse_qs")
  if max_fields ~= nil and math.type(max_fields) ~= "integer" then
    error(("lasync.http.url.parse_qs: max_fields must be an integer or " ..
      "nil (got %s)"):format(type(max_fields)), 2)
  end
  local md = multidict.new()
  local push = multidict._push
  local n, pos, len = 0, 1, #s
  while pos <= len do
    local amp = find(s, "&", pos, true) or len + 1
    if amp > pos then
      n = n + 1
      if max_fields and n > max_fields then
        return nil, ("more than %d fields"):format(max_fields), 413
      end
      local eq = find(s, "=", pos, true)
      local k, v
      if eq and eq < amp then
        k, v = sub(s, pos, eq - 1), sub(s, eq + 1, amp - 1)
      else
        k, v = sub(s, pos, amp - 1), ""
      end
      if find(k, "[%%+]") then
        if bad_escape(k) then
          return nil, ("bad percent-escape in field %d"):format(n), 400
        end
        k = decode(k, true)
      end
      if find(v, "[%%+]") then
        if bad_escape(v) then
          return nil, ("bad percent-escape in field %d"):format(n), 400
        end
        v = decode(v, true)
      end
      push(md, k, v)
    end
    pos = amp + 1
  end
  return md
end

--- url.encode_qs(fields) -> "a=1&a=2&b=x+y": fields is a MultiDict
-- (its order) or a table name -> value | array of values (names sorted);
-- values are strings, numbers or booleans
function M.encode_qs(fields)
  local out = {}
  local function put(k, v)
    local tv = type(v)
    if tv == "number" or tv == "boolean" then
      v = tostring(v)
    elseif tv ~= "string" then
      error(("lasync.http.url.encode_qs: value of %q must be a string, " ..
        "number or boolean (got %s)"):format(k, tv), 3)
    end
    out[#out + 1] = quote_plus(k) .. "=" .. quote_plus(v)
  end
  if multidict.is(fields) then
    for k, v in fields:items() do put(k, v) end
    return concat(out, "&")
  end
  if type(fields) ~= "table" then
    error(("lasync.http.url.encode_qs: expected a table or a MultiDict " ..
      "(got %s)"):format(type(fields)), 2)
  end
  local names = {}
  for k in pairs(fields) do
    if type(k) ~= "string" then
      error(("lasync.http.url.encode_qs: field names must be strings " ..
        "(got %s)"):format(type(k)), 2)
    end
    names[#names + 1] = k
  end
  sort(names)
  for _, k in ipairs(names) do
    local v = fields[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do put(k, x) end
    else
      put(k, v)
    end
  end
  return concat(out, "&")
end

--- url.split_target(raw) -> path (percent-decoded, "+" kept), query
-- string (raw, "" when none); or nil, err when the path has a bad escape
-- or a NUL byte (the caller answers 400). An absolute-form target
-- ("http://host/p?q") gives its path and query. A target with neither
-- "%" nor "?" is returned as it is, without allocating.
function M.split_target(raw)
  check_string(raw, "split_target", "raw")
  if not find(raw, "[%%?%z]") and (byte(raw, 1) == 47 or raw == "*") then
    return raw, ""
  end
  local q = find(raw, "?", 1, true)
  local path, query = raw, ""
  if q then path, query = sub(raw, 1, q - 1), sub(raw, q + 1) end
  if byte(path, 1) ~= 47 and path ~= "*" then
    local rest = match(path, "^%a[%w+.-]*://[^/]*(.*)$")
    if not rest then return nil, "the target is not a path" end
    path = rest == "" and "/" or rest
  end
  local at = bad_escape(path)
  if at then
    return nil, ("bad percent-escape at byte %d of the path"):format(at)
  end
  path = decode(path, false)
  if find(path, "\0", 1, true) then
    return nil, "NUL byte in the path"
  end
  return path, query
end

return M
