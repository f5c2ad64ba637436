-- lasync.http.client.auth: BasicAuth (aiohttp's), the Authorization
-- value of a user and password (RFC 7617), base64 in Lua: it runs once
-- per session or request, never per byte of a body.
local M = {}

local byte, sub, concat, find = string.byte, string.sub, table.concat,
  string.find

local ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = n // 262144 + 1
    local c2 = n // 4096 % 64 + 1
    local c3 = n // 64 % 64 + 1
    local c4 = n % 64 + 1
    out[#out + 1] = sub(ALPHABET, c1, c1) .. sub(ALPHABET, c2, c2) ..
      (b and sub(ALPHABET, c3, c3) or "=") ..
      (c and sub(ALPHABET, c4, c4) or "=")
  end
  return concat(out)
end
M.b64 = b64

local mt = { __name = "lasync.http.BasicAuth" }
mt.__index = {
  encode = function(self)
    return "Basic " .. b64(self.login .. ":" .. self.password)
  end,
}
mt.__tostring = function(self)
  return ("lasync.http.BasicAuth(%q)"):format(self.login)
end

--- http.BasicAuth(login [, password [, encoding]]) -> an auth object
function M.BasicAuth(login, password, encoding)
  local fname = "lasync.http.BasicAuth"
  if type(login) ~= "string" then
    error(("%s: login must be a string (got %s)"):format(fname,
      type(login)), 2)
  end
  if find(login, ":", 1, true) then
    error(fname .. ": login must not contain ':' (RFC 7617)", 2)
  end
  if password == nil then password = "" end
  if type(password) ~= "string" then
    error(("%s: password must be a string (got %s)"):format(fname,
      type(password)), 2)
  end
  if encoding ~= nil and encoding ~= "latin1" and encoding ~= "utf-8" and
      encoding ~= "utf8" then
    error(("%s: encoding must be \"latin1\" or \"utf-8\" (got %s)")
      :format(fname, tostring(encoding)), 2)
  end
  return setmetatable({ login = login, password = password,
                        encoding = encoding or "latin1" }, mt)
end

function M.is(x) return getmetatable(x) == mt end

-- The Authorization value of opt (a BasicAuth or {user, password}), or
-- raises naming fname.
function M.header(opt, fname)
  if M.is(opt) then return opt:encode() end
  if type(opt) == "table" and type(opt[1]) == "string" and
      (opt[2] == nil or type(opt[2]) == "string") then
    if find(opt[1], ":", 1, true) then
      error(fname .. ": auth user must not contain ':' (RFC 7617)", 3)
    end
    return "Basic " .. b64(opt[1] .. ":" .. (opt[2] or ""))
  end
  error(("%s: option 'auth' must be {user, password} or a " ..
    "lasync.http.BasicAuth (got %s)"):format(fname, type(opt)), 3)
end

return M
