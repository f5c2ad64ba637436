-- lasync.http.cookies: the Cookie request header read into a table, and
-- Set-Cookie values written with their attributes (RFC 6265), refusing
-- what would split or inject a header; Set-Cookie values read for the
-- client's jar.
local date = require "lasync.http.date"

local M = {}

local type, error, tostring, find, match, sub, lower =
  type, error, tostring, string.find, string.match,
  string.sub, string.lower
local math_type, concat = math.type, table.concat

--- cookies.parse(header) -> a table name -> value. Pairs are separated by
-- ";", each "name=value" with white space around them ignored; a value
-- in double quotes loses them; a pair without "=" or with an empty name
-- is skipped; when a name repeats the first one wins (browsers send the
-- cookie with the longest path first). nil gives {}.
function M.parse(header)
  local out = {}
  if header == nil then return out end
  if type(header) ~= "string" then
    error(("lasync.http.cookies.parse: header must be a string or nil " ..
      "(got %s)"):format(type(header)), 2)
  end
  for pair in header:gmatch("[^;]+") do
    local name, value = match(pair, "^[ \t]*([^=]-)[ \t]*=[ \t]*(.-)[ \t]*$")
    if name and name ~= "" and out[name] == nil then
      if #value >= 2 and sub(value, 1, 1) == '"' and
          sub(value, -1) == '"' then
        value = sub(value, 2, -2)
      end
      out[name] = value
    end
  end
  return out
end

-- RFC 9110 token characters
local TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"

local SAMESITE = { strict = "Strict", lax = "Lax", none = "None" }

local ATTRS = { max_age = true, expires = true, path = true, domain = true,
  secure = true, httponly = true, samesite = true }

--- cookies.format(name, value [, attrs [, fname [, level]]]) -> a
-- Set-Cookie value.
-- attrs: max_age (integer seconds), expires (epoch number, written as an
-- IMF-fixdate, or a string), path, domain, secure, httponly (booleans),
-- samesite ("Strict", "Lax" or "None", any case). Errors name fname
-- (default "lasync.http.cookies.format") and blame the function at
-- `level`, counted as error() counts from format: by default its caller
-- (2), or with fname its caller's caller (3), so that
-- Response:set_cookie passes its own name (and calls format other than
-- as a tail call); a deeper wrapper passes its depth.
function M.format(name, value, attrs, fname, level)
  if level ~= nil and math_type(level) ~= "integer" then
    error("lasync.http.cookies.format: level must be an integer", 2)
  end
  level = level or (fname and 3 or 2)
  fname = fname or "lasync.http.cookies.format"
  local function fail(fmt, ...)
    error(fname .. ": " .. fmt:format(...), level + 1)
  end
  if type(name) ~= "string" then
    fail("name must be a string (got %s)", type(name))
  end
  if not find(name, TOKEN) then
    fail("cookie name %q is not a token (no controls, spaces, " ..
      "separators or ;)", name)
  end
  if type(value) == "number" then value = tostring(value) end
  if type(value) ~= "string" then
    fail("value must be a string (got %s)", type(value))
  end
  if find(value, "[%c;\127]") then
    fail("cookie value of %q contains a control character or ;", name)
  end
  local out = { name .. "=" .. value }
  if attrs == nil then return out[1] end
  if type(attrs) ~= "table" then
    fail("attributes must be a table (got %s)", type(attrs))
  end
  for k in pairs(attrs) do
    if not ATTRS[k] then
      fail("unknown cookie attribute %s (attributes are max_age, " ..
        "expires, path, domain, secure, httponly, samesite)", tostring(k))
    end
  end
  local function text(k)
    local v = attrs[k]
    if v == nil then return nil end
    if type(v) ~= "string" then
      fail("%s must be a string (got %s)", k, type(v))
    end
    if find(v, "[%c;\127]") then
      fail("%s contains a control character or ;", k)
    end
    return v
  end
  local expires = attrs.expires
  if expires ~= nil then
    if type(expires) == "number" then
      -- years 1 to 9999, what an IMF-fixdate can say
      local t = math.tointeger(math.floor(expires))
      if not t or t < -62135596800 or t > 253402300799 then
        fail("expires must be an epoch in range (got %s)", tostring(expires))
      end
      expires = date.format(t)
    else
      expires = text("expires")
    end
    out[#out + 1] = "Expires=" .. expires
  end
  local max_age = attrs.max_age
  if max_age ~= nil then
    if math_type(max_age) ~= "integer" then
      fail("max_age must be an integer (got %s)", math_type(max_age) or
        type(max_age))
    end
    out[#out + 1] = "Max-Age=" .. max_age
  end
  local domain, path = text("domain"), text("path")
  if domain then out[#out + 1] = "Domain=" .. domain end
  if path then out[#out + 1] = "Path=" .. path end
  for _, flag in ipairs { "secure", "httponly" } do
    local v = attrs[flag]
    if v ~= nil and type(v) ~= "boolean" then
      fail("%s must be a boolean (got %s)", flag, type(v))
    end
  end
  if attrs.secure then out[#out + 1] = "Secure" end
  if attrs.httponly then out[#out + 1] = "HttpOnly" end
  local samesite = text("samesite")
  if samesite then
    local v = SAMESITE[lower(samesite)]
    if not v then
      fail("samesite must be \"Strict\", \"Lax\" or \"None\" (got %q)",
        samesite)
    end
    out[#out + 1] = "SameSite=" .. v
  end
  return concat(out, "; ")
end

-- {======================================================================
-- Set-Cookie values read (RFC 6265 section 5), for the client's jar
-- =======================================================================

local byte, tointeger = string.byte, math.tointeger

-- cookie-date delimiters (RFC 6265 5.1.1): a date-token is a run of the
-- other bytes
local DATE_TOKEN = "[\0-\8\10-\31:0-9A-Za-z\127-\255]+"
local MONTH = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
  jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 }
local MONTH_NAME = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
  "Sep", "Oct", "Nov", "Dec" }
local MONTH_DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

--- cookies.parse_date(s) -> the epoch of a cookie's Expires value read by
-- RFC 6265's lenient cookie-date algorithm (section 5.1.1: tokens in any
-- order, "Wed, 09 Jun 2021 10:18:14 GMT", "Wed, 09-Jun-21 10:18:14 GMT",
-- "Jun 9 10:18:14 2021"...), or nil when it is none
function M.parse_date(s)
  if type(s) ~= "string" then
    error(("lasync.http.cookies.parse_date: s must be a string (got %s)")
      :format(type(s)), 2)
  end
  local h, mi, sec, day, month, year
  for tok in s:gmatch(DATE_TOKEN) do
    local a, b, c
    if not h then a, b, c = match(tok, "^(%d%d?):(%d%d?):(%d%d?)%f[%D]") end
    if a then
      h, mi, sec = tointeger(a), tointeger(b), tointeger(c)
    else
      if not day then a = match(tok, "^(%d%d?)%f[%D]") end
      if a then
        day = tointeger(a)
      else
        if not month and #tok >= 3 then a = MONTH[lower(sub(tok, 1, 3))] end
        if a then
          month = a
        elseif not year then
          year = match(tok, "^(%d%d%d?%d?)%f[%D]")
          year = year and tointeger(year)
        end
      end
    end
  end
  if not (h and day and month and year) then return nil end
  if year < 70 then
    year = year + 2000
  elseif year < 100 then
    year = year + 1900
  end
  local leap = year % 4 == 0 and (year % 100 ~= 0 or year % 400 == 0)
  if year < 1601 or day < 1 or day > MONTH_DAYS[month] or
      (month == 2 and day == 29 and not leap) or h > 23 or mi > 59 or
      sec > 59 then
    return nil
  end
  -- date.parse checks the fields, not that the day of the week agrees
  return date.parse(("Sun, %02d %s %04d %02d:%02d:%02d GMT"):format(day,
    MONTH_NAME[month], year, h, mi, sec))
end

-- s without the spaces and tabs around it (linear: no backtracking
-- pattern over a run of spaces)
local function trim(s)
  local i = find(s, "[^ \t]")
  if not i then return "" end
  local j = #s
  while byte(s, j) == 32 or byte(s, j) == 9 do j = j - 1 end
  return sub(s, i, j)
end

-- what browsers keep of a cookie (RFC 6265bis): name and value together,
-- and an attribute's value
M.MAX_COOKIE_SIZE, M.MAX_ATTRIBUTE_SIZE = 4096, 1024

-- Max-Age beyond this many digits is this many seconds (the jar caps it
-- far lower anyway)
local MAX_AGE_DIGITS, MAX_AGE_HUGE = 12, 1000000000000

local SET_ATTR = {}

SET_ATTR.expires = function(out, v)
  local t = M.parse_date(v)
  if t then out.expires = t end
end

SET_ATTR["max-age"] = function(out, v)
  local sign, digits = match(v, "^(%-?)(%d+)$")
  if not digits then return end
  digits = match(digits, "^0*(%d-)$")
  local n = #digits > MAX_AGE_DIGITS and MAX_AGE_HUGE or
    (tointeger(digits) or 0)
  out.max_age = sign == "-" and -n or n
end

SET_ATTR.domain = function(out, v)
  if sub(v, 1, 1) == "." then v = sub(v, 2) end
  if v ~= "" then out.domain = lower(v) end
end

SET_ATTR.path = function(out, v)
  -- an empty or relative Path is the default path, even after a good one
  out.path = sub(v, 1, 1) == "/" and v or nil
end

SET_ATTR.secure = function(out) out.secure = true end
SET_ATTR.httponly = function(out) out.httponly = true end

SET_ATTR.samesite = function(out, v)
  local s = SAMESITE[lower(v)]
  if s then out.samesite = s end
end

--- cookies.parse_set_cookie(value) -> a table {name =, value =, expires =
-- (epoch or nil), max_age = (integer or nil), domain = (lowercase,
-- without a leading dot, or nil), path = (or nil: the default path),
-- secure =, httponly = (booleans), samesite = ("Strict", "Lax", "None"
-- or nil)}, or nil, reason when the value is to be ignored: it has a
-- control byte (tab aside), no "=" in its first pair or an empty name,
-- or a name and value longer than MAX_COOKIE_SIZE. Attribute names are
-- read in any case; unknown ones, bad values and values longer than
-- MAX_ATTRIBUTE_SIZE are ignored; the last of each name wins.
function M.parse_set_cookie(s)
  if type(s) ~= "string" then
    error(("lasync.http.cookies.parse_set_cookie: value must be a string " ..
      "(got %s)"):format(type(s)), 2)
  end
  if find(s, "[\0-\8\10-\31\127]") then
    return nil, "control character"
  end
  local semi = find(s, ";", 1, true)
  local pair = semi and sub(s, 1, semi - 1) or s
  local eq = find(pair, "=", 1, true)
  if not eq then return nil, "no name=value pair" end
  local name, value = trim(sub(pair, 1, eq - 1)), trim(sub(pair, eq + 1))
  if name == "" then return nil, "empty name" end
  if #name + #value > M.MAX_COOKIE_SIZE then
    return nil, "name and value longer than " .. M.MAX_COOKIE_SIZE
  end
  local out = { name = name, value = value, secure = false,
    httponly = false }
  if not semi then return out end
  for av in s:gmatch(";([^;]*)", semi) do
    local aeq = find(av, "=", 1, true)
    local k, v
    if aeq then
      k, v = trim(sub(av, 1, aeq - 1)), trim(sub(av, aeq + 1))
    else
      k, v = trim(av), ""
    end
    local set = SET_ATTR[lower(k)]
    if set and #v <= M.MAX_ATTRIBUTE_SIZE then set(out, v) end
  end
  return out
end

return M
