-- lasync.http.date: HTTP dates (RFC 9110 section 5.6.7) for the pure
-- parts (cookies' Expires, static files' Last-Modified and
-- If-Modified-Since). Uses the C core's _http_date and _http_parse_date
-- when the core has them, else the Lua versions below, which are
-- independent of the C locale and of the local time zone.
local core = require "lasync.core"

local M = {}

local type, floor, tointeger, format = type, math.floor, math.tointeger,
  string.format
local match = string.match

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
  "Sep", "Oct", "Nov", "Dec" }
local MONTH_NUM = {}
for i, m in ipairs(MONTHS) do MONTH_NUM[m] = i end

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
-- days_from_civil), so no time zone is involved.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- The inverse: year, month, day of a day count.
local function civil_from_days(z)
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function lua_format(epoch)
  local t = floor(epoch)
  local days, secs = t // 86400, t % 86400
  local y, m, d = civil_from_days(days)
  return format("%s, %02d %s %04d %02d:%02d:%02d GMT",
    DAYS[(days + 4) % 7 + 1], d, MONTHS[m], y, secs // 3600,
    secs % 3600 // 60, secs % 60)
end

local function to_epoch(y, mon, d, hh, mm, ss)
  local m = MONTH_NUM[mon]
  y, d, hh, mm, ss = tointeger(y), tointeger(d), tointeger(hh),
    tointeger(mm), tointeger(ss)
  if not (m and y and d and hh and mm and ss) or d < 1 or d > 31 or
      hh > 23 or mm > 59 or ss > 60 then
    return nil
  end
  return days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss
end

local function lua_parse(s)
  -- IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
  local d, mon, y, hh, mm, ss = match(s,
    "^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if d then return to_epoch(y, mon, d, hh, mm, ss) end
  -- RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (a two-digit year is taken
  -- as within 50 years of now, as RFC 9110 asks; here 1970..2069)
  d, mon, y, hh, mm, ss = match(s,
    "^%a+, (%d%d)%-(%a%a%a)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if d then
    y = tointeger(y)
    y = y + (y < 70 and 2000 or 1900)
    return to_epoch(y, mon, d, hh, mm, ss)
  end
  -- asctime: Sun Nov  6 08:49:37 1994
  mon, d, hh, mm, ss, y = match(s,
    "^%a%a%a (%a%a%a) ([ %d]%d) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$")
  if mon then
    return to_epoch(y, mon, match(d, "%d+"), hh, mm, ss)
  end
  return nil
end

--- date.format(epoch) -> an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT")
M.format = core._http_date or lua_format

--- date.parse(s) -> the epoch of an HTTP date in any of the three forms
-- recipients must accept, or nil
M.parse = core._http_parse_date or lua_parse

M._lua_format, M._lua_parse = lua_format, lua_parse

return M
