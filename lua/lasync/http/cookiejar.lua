-- lasync.http.cookiejar: the HTTP client's cookie jar (RFC 6265 section
-- 5): cookies from Set-Cookie values kept by domain, path and name,
-- expired, capped per domain and in all, and the Cookie header of a
-- request chosen from them. Pure Lua; `now` is a parameter.
local cookies = require "lasync.http.cookies"

local type, error, tostring, pairs, ipairs, setmetatable, getmetatable =
  type, error, tostring, pairs, ipairs, setmetatable, getmetatable
local find, sub, lower, byte, match = string.find, string.sub,
  string.lower, string.byte, string.match
local concat, sort = table.concat, table.sort
local math_type, huge, os_time = math.type, math.huge, os.time

local M = {}

local CookieJar = {}
CookieJar.__index = CookieJar
CookieJar.__name = "lasync.http.CookieJar"

-- browsers' limits (RFC 6265 section 6.1 asks for at least 50 and 3000)
local DEFAULT_PER_DOMAIN, DEFAULT_TOTAL = 50, 3000
-- the longest lifetime a cookie gets (RFC 6265bis caps it at 400 days)
M.MAX_LIFETIME = 400 * 86400

local OPTIONS = { unsafe = true, max_per_domain = true, max_cookies = true }

local function fail(fname, level, fmt, ...)
  error("lasync.http.CookieJar" .. fname .. ": " .. fmt:format(...),
    level + 1)
end

-- self must be a jar: a method called with "." instead of ":" says so
local function check_self(self, m)
  if getmetatable(self) ~= CookieJar then
    fail(":" .. m, 3, "self must be a CookieJar (call it as jar:%s(...))",
      m)
  end
end

local function check_now(now, m)
  if now == nil then return os_time() end
  if not math_type(now) or now ~= now or now == huge or now == -huge then
    fail(":" .. m, 3, "now must be a finite number of seconds (got %s)",
      now ~= now and "nan" or math_type(now) and tostring(now) or type(now))
  end
  return now
end

local function is_ip(host)
  return find(host, ":", 1, true) ~= nil or
    find(host, "^%d+%.%d+%.%d+%.%d+$") ~= nil
end

-- u -> its host (lowercase, IPv6 without brackets), whether it is an IP
-- address, whether the scheme is a secure one, and its path (without
-- query or fragment; "/" when empty)
local function check_url(u, m)
  if type(u) ~= "table" then
    fail(":" .. m, 3, "url must be a parsed URL table {scheme =, host =, " ..
      "path =} (got %s)", type(u))
  end
  local host, scheme, path = u.host, u.scheme, u.path
  if type(host) ~= "string" or host == "" then
    fail(":" .. m, 3, "url.host must be a non-empty string (got %s)",
      type(host) == "string" and '""' or type(host))
  end
  if scheme ~= nil and type(scheme) ~= "string" then
    fail(":" .. m, 3, "url.scheme must be a string (got %s)", type(scheme))
  end
  if path ~= nil and type(path) ~= "string" then
    fail(":" .. m, 3, "url.path must be a string (got %s)", type(path))
  end
  host = lower(host)
  if byte(host, 1) == 91 and byte(host, -1) == 93 then -- "[::1]"
    host = sub(host, 2, -2)
  end
  scheme = scheme and lower(scheme)
  path = path or "/"
  local q = find(path, "[?#]")
  if q then path = sub(path, 1, q - 1) end
  if path == "" then path = "/" end
  return host, is_ip(host), scheme == "https" or scheme == "wss", path
end

-- RFC 6265 5.1.4: the directory of the request path
local function default_path(path)
  if byte(path, 1) ~= 47 then return "/" end
  local dir = match(path, "^(.*)/")
  return dir == "" and "/" or dir
end

-- RFC 6265 5.1.4: the cookie's path is the request path or a directory
-- of it
local function path_match(req, cpath)
  if req == cpath then return true end
  local n = #cpath
  if sub(req, 1, n) ~= cpath then return false end
  return byte(cpath, n) == 47 or byte(req, n + 1) == 47
end

-- the public fields of a stored cookie, in a table of the caller's own
local function copy(c)
  return { name = c.name, value = c.value, domain = c.domain,
    path = c.path, expires = c.expires, secure = c.secure,
    httponly = c.httponly, samesite = c.samesite, host_only = c.host_only }
end

--- CookieJar.new([opts]) -> an empty jar. opts: unsafe (accepted for
-- aiohttp's sake; IP hosts are kept either way), max_per_domain (50),
-- max_cookies (3000).
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    fail("", 2, "opts must be a table or nil (got %s)", type(opts))
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not OPTIONS[k] then
      fail("", 2, "unknown option %s (options are unsafe, " ..
        "max_per_domain, max_cookies)", tostring(k))
    end
  end
  if opts.unsafe ~= nil and type(opts.unsafe) ~= "boolean" then
    fail("", 2, "unsafe must be a boolean (got %s)", type(opts.unsafe))
  end
  for _, k in ipairs { "max_per_domain", "max_cookies" } do
    local v = opts[k]
    if v ~= nil and (math_type(v) ~= "integer" or v < 1) then
      fail("", 2, "%s must be a positive integer (got %s)", k,
        math_type(v) and tostring(v) or type(v))
    end
  end
  return setmetatable({
    _unsafe = opts.unsafe or false,
    _per_domain = opts.max_per_domain or DEFAULT_PER_DOMAIN,
    _max = opts.max_cookies or DEFAULT_TOTAL,
    _domains = {}, -- domain -> { [name .. "\0" .. path] = cookie }
    _counts = {},  -- domain -> number of its cookies
    _n = 0,        -- cookies in all
    _seq = 0,      -- orders creations and uses (ties impossible)
  }, CookieJar)
end

setmetatable(M, {
  __call = function(_, opts) return M.new(opts) end,
  __tostring = function() return "lasync.http.CookieJar" end,
})

local function tick(self)
  local n = self._seq + 1
  self._seq = n
  return n
end

local function remove(self, domain, key)
  local bucket = self._domains[domain]
  bucket[key] = nil
  self._n = self._n - 1
  local left = self._counts[domain] - 1
  if left == 0 then
    self._domains[domain], self._counts[domain] = nil, nil
  else
    self._counts[domain] = left
  end
end

local function expired(c, now)
  return c.expires ~= nil and c.expires <= now
end

-- Drops the expired cookies of one domain.
local function purge_domain(self, domain, now)
  local bucket = self._domains[domain]
  if not bucket then return end
  local dead = {}
  for key, c in pairs(bucket) do
    if expired(c, now) then dead[#dead + 1] = key end
  end
  for _, key in ipairs(dead) do remove(self, domain, key) end
end

-- Drops every expired cookie.
local function purge(self, now)
  local domains = {}
  for domain in pairs(self._domains) do domains[#domains + 1] = domain end
  for _, domain in ipairs(domains) do purge_domain(self, domain, now) end
end

-- Past a cap, the expired cookies go first, then the least recently used
-- (RFC 6265 5.3 step 12 and section 6.1).
local function evict_domain(self, domain, now)
  if self._counts[domain] <= self._per_domain then return end
  purge_domain(self, domain, now)
  while (self._counts[domain] or 0) > self._per_domain do
    local oldest, okey
    for key, c in pairs(self._domains[domain]) do
      if not oldest or c._used < oldest._used then oldest, okey = c, key end
    end
    remove(self, domain, okey)
  end
end

local function evict_total(self, now)
  if self._n <= self._max then return end
  purge(self, now)
  if self._n <= self._max then return end
  local all = {}
  for domain, bucket in pairs(self._domains) do
    for key, c in pairs(bucket) do
      all[#all + 1] = { c._used, domain, key }
    end
  end
  sort(all, function(a, b) return a[1] < b[1] end)
  for i = 1, self._n - self._max do
    remove(self, all[i][2], all[i][3])
  end
end

-- RFC 6265 5.3 step 11: a cookie replaces the one of the same name,
-- domain and path, keeping its creation time; an expired one only
-- deletes it.
local function store(self, c, now)
  local key = c.name .. "\0" .. c.path
  local bucket = self._domains[c.domain]
  local old = bucket and bucket[key]
  if old then
    c._created = old._created
    remove(self, c.domain, key)
  end
  if expired(c, now) then return end
  bucket = self._domains[c.domain]
  if not bucket then
    bucket = {}
    self._domains[c.domain], self._counts[c.domain] = bucket, 0
  end
  local t = tick(self)
  c._created, c._used = c._created or t, t
  bucket[key] = c
  self._n = self._n + 1
  self._counts[c.domain] = self._counts[c.domain] + 1
  evict_domain(self, c.domain, now)
end

-- RFC 6265 5.3 steps 3 to 7: the cookie a parsed Set-Cookie value makes
-- for a response from host, or nil when it is to be ignored.
local function make_cookie(p, host, ip, rpath, now)
  local expires
  if p.max_age then
    expires = p.max_age <= 0 and now or
      now + (p.max_age < M.MAX_LIFETIME and p.max_age or M.MAX_LIFETIME)
  elseif p.expires then
    expires = p.expires
    if expires > now + M.MAX_LIFETIME then expires = now + M.MAX_LIFETIME end
  end
  local domain, host_only = host, true
  local d = p.domain
  if d then
    if ip then
      -- an IP address sets host-only cookies, Domain= naming itself or
      -- nothing
      if byte(d, 1) == 91 and byte(d, -1) == 93 then d = sub(d, 2, -2) end
      if d ~= host then return nil end
    elseif d == host then
      -- without a public suffix list, a name without a dot is taken as
      -- one: a host named so keeps a host-only cookie
      host_only = not find(d, ".", 1, true)
    elseif not find(d, ".", 1, true) then
      return nil -- a bare top-level domain
    elseif #host <= #d or sub(host, -#d - 1) ~= "." .. d then
      return nil -- a domain the host is not in
    else
      domain, host_only = d, false
    end
  end
  return { name = p.name, value = p.value, domain = domain,
    path = p.path or default_path(rpath), expires = expires,
    secure = p.secure, httponly = p.httponly, samesite = p.samesite,
    host_only = host_only }
end

--- jar:update_cookies_from_headers(values, url [, now]) stores the
-- cookies of the Set-Cookie values (an array of strings, or one string)
-- of a response from url. Values the RFC has a user agent ignore are
-- skipped.
function CookieJar:update_cookies_from_headers(values, u, now)
  local m = "update_cookies_from_headers"
  check_self(self, m)
  if type(values) == "string" then values = { values } end
  if type(values) ~= "table" then
    fail(":" .. m, 2, "values must be an array of strings (got %s)",
      type(values))
  end
  for i, v in ipairs(values) do
    if type(v) ~= "string" then
      fail(":" .. m, 2, "values[%d] must be a string (got %s)", i, type(v))
    end
  end
  local host, ip, _, rpath = check_url(u, m)
  now = check_now(now, m)
  for _, v in ipairs(values) do
    local p = cookies.parse_set_cookie(v)
    local c = p and make_cookie(p, host, ip, rpath, now)
    if c then store(self, c, now) end
  end
  evict_total(self, now)
end

--- jar:update_cookies(cookies [, url]) stores host-only cookies with path
-- "/" for url's host, or, without url, cookies sent to every host
-- (aiohttp's shared cookies). cookies: a table name -> value (a string
-- or a number).
function CookieJar:update_cookies(tbl, u)
  local m = "update_cookies"
  check_self(self, m)
  if type(tbl) ~= "table" then
    fail(":" .. m, 2, "cookies must be a table name -> value (got %s)",
      type(tbl))
  end
  local host = ""
  if u ~= nil then host = check_url(u, m) end
  local fname = "lasync.http.CookieJar:" .. m
  for name, value in pairs(tbl) do
    -- a name that is not a token, a control byte or ";" in a value
    -- raise, blaming our caller
    cookies.format(name, value, nil, fname, 3)
  end
  local now = os_time()
  for name, value in pairs(tbl) do
    store(self, { name = name, value = tostring(value), domain = host,
      path = "/", secure = false, httponly = false, host_only = host ~= "" },
      now)
  end
  evict_total(self, now)
end

--- jar:cookie_header(url [, now]) -> the Cookie header for a request to
-- url ("a=1; b=2"), or nil when no cookie goes there. Longer paths come
-- first, then earlier creations (RFC 6265 5.4).
function CookieJar:cookie_header(u, now)
  local m = "cookie_header"
  check_self(self, m)
  local host, ip, secure, rpath = check_url(u, m)
  if self._n == 0 then -- a session's usual case
    check_now(now or 0, m)
    return nil
  end
  now = check_now(now, m)
  local found = {}
  local function scan(domain)
    local bucket = self._domains[domain]
    if not bucket then return end
    local dead
    for key, c in pairs(bucket) do
      if expired(c, now) then
        dead = dead or {}
        dead[#dead + 1] = key
      elseif (not c.host_only or domain == host) and
          (not c.secure or secure) and path_match(rpath, c.path) then
        found[#found + 1] = c
      end
    end
    if dead then
      for _, key in ipairs(dead) do remove(self, domain, key) end
    end
  end
  scan(host)
  if not ip then
    -- the domains host is in: "a.b.c" is in "b.c" and "c"
    local i = find(host, ".", 1, true)
    while i and i < #host do
      scan(sub(host, i + 1))
      i = find(host, ".", i + 1, true)
    end
  end
  scan("")
  if not found[1] then return nil end
  sort(found, function(a, b)
    if #a.path ~= #b.path then return #a.path > #b.path end
    return a._created < b._created
  end)
  local out = {}
  for i, c in ipairs(found) do
    c._used = tick(self)
    out[i] = c.name .. "=" .. c.value
  end
  return concat(out, "; ")
end

--- jar:clear([predicate]) removes every cookie, or those for which
-- predicate(cookie) is true (cookie: a copy of its fields)
function CookieJar:clear(pred)
  check_self(self, "clear")
  if pred ~= nil and type(pred) ~= "function" then
    fail(":clear", 2, "predicate must be a function or nil (got %s)",
      type(pred))
  end
  if pred == nil then
    self._domains, self._counts, self._n = {}, {}, 0
    return
  end
  -- a snapshot: predicate may use the jar
  local all = {}
  for domain, bucket in pairs(self._domains) do
    for key, c in pairs(bucket) do all[#all + 1] = { domain, key, c } end
  end
  for _, e in ipairs(all) do
    if pred(copy(e[3])) then
      local bucket = self._domains[e[1]]
      if bucket and bucket[e[2]] == e[3] then remove(self, e[1], e[2]) end
    end
  end
end

--- jar:clear_domain(domain) removes the cookies of domain and of the
-- domains within it
function CookieJar:clear_domain(domain)
  check_self(self, "clear_domain")
  if type(domain) ~= "string" then
    fail(":clear_domain", 2, "domain must be a string (got %s)",
      type(domain))
  end
  domain = lower(domain)
  if byte(domain, 1) == 46 then domain = sub(domain, 2) end
  local tail = "." .. domain
  self:clear(function(c)
    return c.domain == domain or sub(c.domain, -#tail) == tail
  end)
end

--- jar:len([now]) -> the number of cookies not expired at now
function CookieJar:len(now)
  check_self(self, "len")
  purge(self, check_now(now, "len"))
  return self._n
end

--- jar:iter([now]) -> an iterator of the cookies not expired at now
-- (copies), ordered by domain, path and creation
function CookieJar:iter(now)
  check_self(self, "iter")
  purge(self, check_now(now, "iter"))
  local all = {}
  for _, bucket in pairs(self._domains) do
    for _, c in pairs(bucket) do all[#all + 1] = c end
  end
  sort(all, function(a, b)
    if a.domain ~= b.domain then return a.domain < b.domain end
    if a.path ~= b.path then return a.path < b.path end
    return a._created < b._created
  end)
  local i = 0
  return function()
    i = i + 1
    local c = all[i]
    return c and copy(c)
  end
end

function CookieJar:__tostring()
  return ("lasync.http.CookieJar (%d cookies)"):format(self._n)
end

M.CookieJar = CookieJar

return M
