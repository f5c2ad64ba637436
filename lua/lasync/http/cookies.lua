-- lasync.http.cookies: the Cookie request header read into a table, and
-- Set-Cookie values written with their attributes (RFC 6265), refusing
-- what would split or inject a header.
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

return M
