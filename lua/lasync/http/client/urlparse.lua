-- lasync.http.client.urlparse: absolute http(s) URLs for the client:
-- parse into parts, resolve a reference against a base (RFC 3986 5.2, for
-- base_url and Location), and give back the string and the request
-- target. Bytes a URL may not hold as they are (space, non-ASCII, quotes)
-- are percent-encoded; escapes already there are kept.
local M = {}

local find, sub, lower, gsub, format, byte = string.find, string.sub,
  string.lower, string.gsub, string.format, string.byte
local tonumber, concat = tonumber, table.concat

local default_ports = { http = 80, https = 443 }
M.default_ports = default_ports

local function escape_byte(c)
  return format("%%%02X", byte(c))
end

-- s with the bytes that are not allowed in a path or query encoded
local function encode(s)
  if not find(s, "[^%w%-%._~!$&'()*+,;=:@/?%%]") then return s end
  s = gsub(s, "%%(%x?%x?)", function(h)
    if #h == 2 then return nil end
    return "%25" .. h
  end)
  return (gsub(s, "[^%w%-%._~!$&'()*+,;=:@/?%%]", escape_byte))
end

-- Removes "." and ".." segments (RFC 3986 5.2.4).
local function remove_dots(path)
  if not find(path, "%.") then return path end
  local out = {}
  local segs = {}
  for seg in (path .. "/"):gmatch("([^/]*)/") do segs[#segs + 1] = seg end
  -- the part after the last "/" (the loop above added one)
  for i, seg in ipairs(segs) do
    if seg == "." then
      if i == #segs then out[#out + 1] = "" end
    elseif seg == ".." then
      if #out > 1 then out[#out] = nil end
      if i == #segs then out[#out + 1] = "" end
    else
      out[#out + 1] = seg
    end
  end
  local r = concat(out, "/")
  if sub(path, 1, 1) == "/" and sub(r, 1, 1) ~= "/" then r = "/" .. r end
  return r
end

--- urlparse.parse(s) -> u | nil, why. u: scheme, user, password, host
-- (lowercase; an IPv6 address without brackets), port, path ("/" when
-- empty), query (without "?", or nil)
function M.parse(s)
  local scheme, rest = s:match("^(%a[%w+.-]*):(.*)$")
  if not scheme then return nil, "no scheme" end
  scheme = lower(scheme)
  if not default_ports[scheme] then
    return nil, "the scheme must be http or https"
  end
  local authority, tail = rest:match("^//([^/?#]*)(.*)$")
  if not authority then return nil, "no host" end
  tail = gsub(tail, "#.*$", "")
  local path, query = tail:match("^([^?]*)%?(.*)$")
  if not path then path = tail end
  local u = { scheme = scheme }
  local userinfo, hostport = authority:match("^(.*)@([^@]*)$")
  if userinfo then
    local user, password = userinfo:match("^([^:]*):(.*)$")
    local url = require "lasync.http.url"
    u.user = url.unquote(user or userinfo) or user or userinfo
    u.password = password and (url.unquote(password) or password)
  else
    hostport = authority
  end
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then
    if find(hostport, "[%[%]]") then return nil, "bad IPv6 host" end
    host, port = hostport:match("^([^:]*):?(%d*)$")
    if not host then return nil, "bad port" end
  end
  if host == "" then return nil, "no host" end
  if find(host, "[%s/\\%%]") then return nil, "bad host" end
  u.host = lower(host)
  if port ~= "" then
    u.port = tonumber(port)
    if u.port < 1 or u.port > 65535 then return nil, "bad port" end
  else
    u.port = default_ports[scheme]
  end
  if path == "" then path = "/" end
  u.path = encode(remove_dots(path))
  u.query = query and encode(query) or nil
  return u
end

--- urlparse.join(base, ref) -> an absolute URL string: ref resolved
-- against the parsed base u (RFC 3986 5.2.2)
function M.join(u, ref)
  if ref:match("^%a[%w+.-]*:") then return ref end
  local origin = M.origin_string(u)
  if sub(ref, 1, 2) == "//" then return u.scheme .. ":" .. ref end
  ref = gsub(ref, "#.*$", "")
  if ref == "" then return M.tostring(u) end
  if sub(ref, 1, 1) == "?" then return origin .. u.path .. ref end
  if sub(ref, 1, 1) == "/" then return origin .. remove_dots(ref) end
  local dir = u.path:match("^(.*/)") or "/"
  local rpath, rquery = ref:match("^([^?]*)(.*)$")
  return origin .. remove_dots(dir .. rpath) .. rquery
end

local function host_part(u)
  if find(u.host, ":", 1, true) then return "[" .. u.host .. "]" end
  return u.host
end

--- urlparse.host_header(u) -> host[:port], the port only when not the
-- scheme's default
function M.host_header(u)
  if u.port == default_ports[u.scheme] then return host_part(u) end
  return host_part(u) .. ":" .. u.port
end

function M.origin_string(u)
  return u.scheme .. "://" .. M.host_header(u)
end

--- urlparse.target(u) -> the request target: path and query
function M.target(u)
  if u.query then return u.path .. "?" .. u.query end
  return u.path
end

--- urlparse.tostring(u) -> the URL without its user info
function M.tostring(u)
  return M.origin_string(u) .. M.target(u)
end

-- Whether a and b have the same origin (scheme, host, port).
function M.same_origin(a, b)
  return a.scheme == b.scheme and a.host == b.host and a.port == b.port
end

return M
