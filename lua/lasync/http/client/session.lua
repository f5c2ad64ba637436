-- lasync.http.client.session: Session (aiohttp's ClientSession): options
-- checked once, then per request: the URL, headers and body checked
-- before anything connects, a pooled connection (pool.lua), the head
-- written, the response head parsed in C (client.c), redirects, basic
-- auth, cookies and the timeouts of aiohttp's ClientTimeout.
local lasync = require "lasync"
local core = require "lasync.core"
local urlparse = require "lasync.http.client.urlparse"
local errors = require "lasync.http.client.errors"
local pool_mod = require "lasync.http.client.pool"
local response = require "lasync.http.client.response"
local auth_mod = require "lasync.http.client.auth"
local deadline = require "lasync.http.client.deadline"
local qs = require "lasync.http.url"

local type, error, pcall, pairs, ipairs, tostring, setmetatable =
  type, error, pcall, pairs, ipairs, tostring, setmetatable
local find, lower, upper, format = string.find, string.lower,
  string.upper, string.format
local concat = table.concat
local is_error, is_timeout = lasync.is_error, lasync.is_timeout
local new_parser = core._http_client_parser

local M = {}
local Session = {}
Session.__index = Session
Session.__name = "lasync.http.Session"
M.Session = Session

local USER_AGENT = "lasync/" .. (core._VERSION or "0")
local READ_SIZE = 65536
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true,
                     OPTIONS = true, TRACE = true }
local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true,
                   [308] = true }
local TIMEOUT_KEYS = { "total", "connect", "sock_connect", "sock_read",
                       "pool" }

local function lazy_require(name)
  local ok, mod = pcall(require, name)
  if ok then return mod end
  return nil
end

--{======================================================================
-- Checks (before anything is sent)
--=======================================================================

local function misuse(fname, msg, ...)
  error(fname .. ": " .. format(msg, ...), 0)
end

local function check_header(fname, name, value)
  if type(name) ~= "string" or not find(name, "^[!#$%%&'*+%-.^_`|~%w]+$")
  then
    if type(name) == "string" and find(name, "[\r\n%z]") then
      misuse(fname, "header name contains CR, LF or NUL")
    end
    misuse(fname, "header name must be a token (got %s)",
      type(name) == "string" and format("%q", name) or type(name))
  end
  local tv = type(value)
  if tv == "number" or tv == "boolean" then
    value = tostring(value)
  elseif tv ~= "string" then
    misuse(fname, "value of header '%s' must be a string (got %s)", name,
      tv)
  end
  if find(value, "[\r\n%z]") then
    misuse(fname, "header value contains CR, LF or NUL")
  end
  return value
end

-- Headers as an array {name, value, name, value...} (given order; a
-- table's keys sorted) and the set of lowercased names.
local function check_headers(fname, h, out, seen)
  out, seen = out or {}, seen or {}
  if h == nil then return out, seen end
  local multidict = require "lasync.http.multidict"
  local pairs_list = {}
  if multidict.is(h) then
    for k, v in h:items() do pairs_list[#pairs_list + 1] = { k, v } end
  elseif type(h) == "table" then
    local names = {}
    for k in pairs(h) do
      if type(k) ~= "string" then
        misuse(fname, "header names must be strings (got %s)", type(k))
      end
      names[#names + 1] = k
    end
    table.sort(names)
    for _, k in ipairs(names) do pairs_list[#pairs_list + 1] = { k, h[k] } end
  else
    misuse(fname, "option 'headers' must be a table (got %s)", type(h))
  end
  for _, p in ipairs(pairs_list) do
    local v = check_header(fname, p[1], p[2])
    local l = lower(p[1])
    if seen[l] and not seen[l .. "\0new"] then
      -- a request header replaces the session's of that name
      for i = #out - 1, 1, -2 do
        if lower(out[i]) == l then
          table.remove(out, i + 1)
          table.remove(out, i)
        end
      end
    end
    seen[l] = true
    seen[l .. "\0new"] = true
    out[#out + 1] = p[1]
    out[#out + 1] = v
  end
  return out, seen
end

local function check_timeout(fname, t, base)
  local out = {}
  if base then for _, k in ipairs(TIMEOUT_KEYS) do out[k] = base[k] end end
  if t == nil then return out end
  if type(t) ~= "table" then
    misuse(fname, "option 'timeout' must be a table (got %s)", type(t))
  end
  for k, v in pairs(t) do
    local known = false
    for _, name in ipairs(TIMEOUT_KEYS) do
      if k == name then known = true end
    end
    if not known then misuse(fname, "unknown timeout '%s'", tostring(k)) end
    if v ~= false and (type(v) ~= "number" or v <= 0 or v ~= v) then
      misuse(fname, "timeout '%s' must be a positive number or false " ..
        "(got %s)", k, tostring(v))
    end
    out[k] = v or nil
  end
  return out
end

-- v must be a string that can go into a request line: no CR, LF or NUL
local function check_line(fname, what, v)
  if type(v) ~= "string" then
    misuse(fname, "%s must be a string (got %s)", what, type(v))
  end
  if find(v, "[\r\n%z]") then
    misuse(fname, "%s contains CR, LF or NUL", what)
  end
end

local function check_url(fname, url, base)
  check_line(fname, "url", url)
  if base and not url:match("^%a[%w+.-]*:") then
    url = urlparse.join(base, url)
  end
  local u, why = urlparse.parse(url)
  if not u then
    error(errors.InvalidURL(("invalid URL %q: %s"):format(url, why),
      { url = url }), 0)
  end
  return u
end

--{======================================================================
-- Session
--=======================================================================

local SESSION_OPTS = {
  base_url = true, headers = true, timeout = true, limit = true,
  limit_per_host = true, keepalive_timeout = true, ssl = true, auth = true,
  cookie_jar = true, max_redirects = true, raise_for_status = true,
  auto_decompress = true,
}

local function check_count(fname, name, v, default)
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < 0 then
    misuse(fname, "option '%s' must be a non-negative integer (got %s)",
      name, tostring(v))
  end
  return v
end

local function check_ssl(fname, v)
  if v == nil or v == false then return v end
  if type(v) == "userdata" and tostring(v):find("^lasync.ssl.Context") then
    return v
  end
  misuse(fname, "option 'ssl' must be nil, false or a lasync.ssl.context " ..
    "(got %s)", type(v))
end

local EMPTY = {}

-- opts (nil: none), checked against the names known allows
local function check_opts(fname, opts, known)
  if opts == nil then return EMPTY end
  if type(opts) ~= "table" then
    misuse(fname, "opts must be a table (got %s)", type(opts))
  end
  for k in pairs(opts) do
    if not known[k] then
      misuse(fname, "unknown option '%s'", tostring(k))
    end
  end
  return opts
end

--- http.Session([opts]) -> a session
function M.new(opts)
  local fname = "lasync.http.Session"
  opts = check_opts(fname, opts, SESSION_OPTS)
  local self = setmetatable({}, Session)
  if opts.base_url ~= nil then
    local u = check_url(fname, opts.base_url)
    self.base = u
  end
  self.headers, self.seen = check_headers(fname, opts.headers)
  for k in pairs(self.seen) do
    if find(k, "%z") then self.seen[k] = nil end
  end
  self._urls, self._nurls = {}, 0   -- url string -> parsed (parsed_url)
  self._ctxid = setmetatable({}, { __mode = "k" }) -- TLS context -> id
  self._deadlines = deadline.new()
  self.timeout = check_timeout(fname, opts.timeout, { total = 300 })
  local limit = check_count(fname, "limit", opts.limit, 100)
  local lph = check_count(fname, "limit_per_host", opts.limit_per_host, 0)
  local ka = opts.keepalive_timeout
  if ka == nil then ka = 15 end
  if type(ka) ~= "number" or ka < 0 then
    misuse(fname, "option 'keepalive_timeout' must be a non-negative " ..
      "number (got %s)", tostring(ka))
  end
  self.pool = pool_mod.new(limit, lph, ka)
  self.ssl = check_ssl(fname, opts.ssl)
  if opts.auth ~= nil then
    self.auth_header = auth_mod.header(opts.auth, fname)
  end
  if opts.cookie_jar == nil then
    local CookieJar = lazy_require "lasync.http.cookiejar"
    self.jar = CookieJar and CookieJar.new() or nil
  elseif opts.cookie_jar ~= false then
    self.jar = opts.cookie_jar
  end
  self.max_redirects = check_count(fname, "max_redirects",
    opts.max_redirects, 10)
  self.raise = opts.raise_for_status and true or false
  self.decompress = opts.auto_decompress ~= false
  self.closed = false
  return self
end

function Session:close()
  if self.closed then return end
  self.closed = true
  self.pool:close()
  deadline.close(self._deadlines)
end
Session.__close = Session.close
Session.__gc = function(self) if not self.closed then self:close() end end

function Session:__tostring()
  return "lasync.http.Session"
end

--{======================================================================
-- Timeouts
--=======================================================================

local timed = deadline.timed

--{======================================================================
-- Connections
--=======================================================================

local function ssl_context(self, scheme, opt)
  if scheme ~= "https" then return nil end
  if opt == nil then opt = self.ssl end
  if opt == nil then
    self.default_ctx = self.default_ctx or lasync.ssl.context {}
    return self.default_ctx
  elseif opt == false then
    self.noverify_ctx = self.noverify_ctx or lasync.ssl.context {
      verify = "none", check_hostname = false }
    return self.noverify_ctx
  end
  return opt
end

local function connect(self, st, u, ctx, sni)
  local opts = ctx and { ssl = ctx, server_hostname = sni } or nil
  local function go()
    return lasync.open_connection(u.host, u.port, opts)
  end
  local tmo = st._tmo
  local which = "connect"
  if tmo.sock_connect and (not tmo.connect or tmo.sock_connect <
      tmo.connect) then
    which = "sock_connect"
  end
  local ok, reader, writer = pcall(function()
    local r, w
    timed(st, which, function() r, w = go() end)
    return r, w
  end)
  if not ok then
    error(errors.connector(reader, st.url, u.host, u.port), 0)
  end
  return { reader = reader, writer = writer, parser = new_parser(),
           key = st._key, pool = self.pool, decompress = self.decompress }
end

-- A connection for st (from the pool or new) and whether it is new.
local function acquire(self, st, u, ctx, sni, now)
  local pool = self.pool
  local key = st._key
  if pool:wait_slot(key, timed, st) then now = nil end -- it waited
  local c = pool:take_idle(key, now)
  if c then
    pool.inuse[c] = true
    return c, false
  end
  local ok, conn = pcall(connect, self, st, u, ctx, sni)
  if not ok then
    pool:give_back(key)
    error(conn, 0)
  end
  pool.inuse[conn] = true
  return conn, true
end

--{======================================================================
-- One exchange
--=======================================================================

local function disconnected(st, msg)
  return errors.ServerDisconnectedError(msg or "server disconnected",
    { url = st.url })
end

-- Writes the request and reads the response head; returns the response.
local function write_request(st, w, head, body)
  if body == nil then
    w:write(head)
  elseif type(body) == "string" then
    if #body < 16384 then
      w:write(head .. body)
    else
      w:write(head)
      w:write(body)
      timed(st, nil, w.drain, w)
    end
  else -- a form: its chunks, streamed
    w:write(head)
    local next_chunk, _, _, files = body:chunks()
    local _ <close> = files -- closes an open file if we stop early
    while true do
      local chunk = next_chunk()
      if chunk == nil then break end
      w:write(chunk)
      timed(st, nil, w.drain, w)
    end
  end
end

-- Writes the request and reads the response head; returns the response
-- or raises. st._early stays true until the head's first bytes came (a
-- failure before them may be a stale pooled connection).
local function exchange(self, st, conn, head, body)
  local w, r = conn.writer, conn.reader
  st._early = true
  write_request(st, w, head, body)
  local data = timed(st, "sock_read", r.read, r, READ_SIZE)
  if data == "" then error(disconnected(st), 0) end
  st._early = false
  local parser = conn.parser
  local is_head = st.method == "HEAD"
  while true do
    local n, status, reason, minor, keep, framing, clen, hstart, flags =
      parser:head(data, is_head)
    if n then
      local resp = setmetatable({
        status = status, reason = reason, version = minor == 1 and "1.1"
        or "1.0", url = st.url, method = st.method, _head = data,
        _hs = hstart, _he = n, _flags = flags,
        content_length = clen, _conn = conn, _data = data, _pos = n + 1,
        _keep = keep, _done = false, _st = st,
        history = st.history or nil, -- (16 fields at most: one hash size)
      }, response.mt)
      if framing == "none" then
        response.finish(resp, n < #data)
      end
      return resp
    elseif n == false then
      error(errors.ClientResponseError(status, { url = st.url,
        status = 400 }), 0)
    end
    local more = timed(st, "sock_read", r.read, r, READ_SIZE)
    if more == "" then
      error(disconnected(st, "server disconnected while sending the " ..
        "response head"), 0)
    end
    data = data .. more
  end
end

--{======================================================================
-- Requests
--=======================================================================

local REQUEST_OPTS = {
  params = true, headers = true, body = true, json = true, data = true,
  auth = true, allow_redirects = true, max_redirects = true,
  timeout = true, ssl = true, server_hostname = true,
  raise_for_status = true, cookies = true,
}

local function build_body(fname, opts, hdrs, seen)
  local n = (opts.body ~= nil and 1 or 0) + (opts.json ~= nil and 1 or 0) +
    (opts.data ~= nil and 1 or 0)
  if n > 1 then
    misuse(fname, "only one of 'body', 'json' and 'data' may be given")
  end
  local body, ctype, form
  if opts.body ~= nil then
    if type(opts.body) ~= "string" then
      misuse(fname, "option 'body' must be a string (got %s)",
        type(opts.body))
    end
    body, ctype = opts.body, "application/octet-stream"
  elseif opts.json ~= nil then
    body, ctype = lasync.json.encode(opts.json), "application/json"
  elseif opts.data ~= nil then
    local d = opts.data
    local formdata = lazy_require "lasync.http.formdata"
    if type(d) == "string" then
      body, ctype = d, "application/x-www-form-urlencoded"
    elseif formdata and formdata.is_form(d) then
      form, ctype = d, d:content_type()
    elseif type(d) == "table" then
      body = formdata and formdata.urlencode(d) or qs.encode_qs(d)
      ctype = "application/x-www-form-urlencoded"
    else
      misuse(fname, "option 'data' must be a table, a string or a form " ..
        "(got %s)", type(d))
    end
  else
    return nil
  end
  if not seen["content-type"] then
    hdrs[#hdrs + 1] = "Content-Type"
    hdrs[#hdrs + 1] = ctype
  end
  return body, form
end

-- The request head: line, Host, the headers, then what is implied.
local function build_head(self, st, u, hdrs, seen)
  local out = { st.method, " ", urlparse.target(u), " HTTP/1.1\r\n" }
  local n = 4
  local function add(name, value)
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, ": ", value,
      "\r\n"
    n = n + 4
  end
  if not seen.host then add("Host", urlparse.host_header(u)) end
  -- (Cookie, Content-Length and the blank line are added per request)
  for i = 1, #hdrs, 2 do
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = hdrs[i], ": ",
      hdrs[i + 1], "\r\n"
    n = n + 4
  end
  if not seen["user-agent"] then add("User-Agent", USER_AGENT) end
  if not seen.accept then add("Accept", "*/*") end
  if self.decompress and not seen["accept-encoding"] then
    add("Accept-Encoding", "gzip, deflate")
  end
  if not seen.connection then add("Connection", "keep-alive") end
  if st.auth and not seen.authorization then
    add("Authorization", st.auth)
  end
  return concat(out, "", 1, n)
end

local KNOWN_METHODS = {}
for _, m in ipairs { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                     "OPTIONS" } do
  KNOWN_METHODS[m] = m
end

local function check_method(fname, method)
  check_line(fname, "method", method)
  if not find(method, "^[!#$%%&'*+%-.^_`|~%w]+$") then
    misuse(fname, "method must be a token (got %q)", method)
  end
  return upper(method)
end

-- A redirect to another origin: credentials and explicit cookies go.
local function strip_credentials(hdrs, seen)
  for i = #hdrs - 1, 1, -2 do
    local l = lower(hdrs[i])
    if l == "authorization" or l == "cookie" or
        l == "proxy-authorization" then
      table.remove(hdrs, i + 1)
      table.remove(hdrs, i)
      seen[l] = nil
    end
  end
end

local function jar_url(u)
  return { scheme = u.scheme, host = u.host, port = u.port, path = u.path }
end

-- The parsed URL of a string (cached per session: a client asks the same
-- URLs again and again). Its fields are never changed; `params` makes a
-- copy.
local function parsed_url(self, fname, url)
  local cache = self._urls
  local u = cache[url]
  if u then return u end
  u = check_url(fname, url, self.base)
  u.str = urlparse.tostring(u)
  u.hostport = u.scheme .. "://" .. u.host .. ":" .. u.port
  u.jar = jar_url(u)
  u.heads = {} -- method -> {head without the per-request lines, whole}
  if self._nurls >= 256 then
    cache = {}
    self._urls, self._nurls = cache, 0
  end
  cache[url] = u
  self._nurls = self._nurls + 1
  return u
end

local function with_query(u, q)
  local c = {}
  for k, v in pairs(u) do c[k] = v end
  c.query = u.query and (u.query .. "&" .. q) or q
  c.str = urlparse.tostring(c)
  c.jar = jar_url(c)
  c.heads = {}
  c.tls_ctx, c.tls_key = nil, nil
  return c
end

-- A private copy of the header list and set (before changing them).
local function own_headers(hdrs, seen)
  local h, s = {}, {}
  for i = 1, #hdrs do h[i] = hdrs[i] end
  for k, v in pairs(seen) do s[k] = v end
  return h, s
end

-- Give st headers of its own before they change (st.shared: hdrs and seen
-- are the session's, and the head cached in the URL is good for it).
local function own(st)
  if st.shared then
    st.hdrs, st.seen = own_headers(st.hdrs, st.seen)
    st.shared = false
  end
end

-- Check a request's options before anything is sent; returns st, the
-- request's state through its redirects (exchange and build_head read its
-- method, url, auth and history).
local function new_request(self, method, url, opts, fname)
  if getmetatable(self) ~= Session then
    misuse(fname, "expected a Session (got %s)", type(self))
  end
  method = KNOWN_METHODS[method] or check_method(fname, method)
  opts = check_opts(fname, opts, REQUEST_OPTS)
  if self.closed then misuse(fname, "the session is closed") end
  if type(url) ~= "string" then
    misuse(fname, "url must be a string (got %s)", type(url))
  end
  -- every field the request sets, made at once (no rehash as they come)
  local st = { method = method, _tmo = self.timeout, history = false,
               _D = self._deadlines, url = false, auth = self.auth_header,
               _key = false, _when = false, _task = false,
               _waiting = false, _cancelled = false, _expired = false,
               _early = false, fname = fname, u = false,
               hdrs = self.headers, seen = self.seen, shared = true,
               body = false, form = false, ssl = opts.ssl,
               sni = opts.server_hostname, cookies = false,
               allow = opts.allow_redirects ~= false,
               max_redirects = self.max_redirects,
               raise = opts.raise_for_status }
  local u = parsed_url(self, fname, url)
  if opts.params ~= nil then
    local q = qs.encode_qs(opts.params)
    if q ~= "" then u = with_query(u, q) end
  end
  st.u = u
  if opts.headers ~= nil then
    own(st)
    local seen = st.seen
    check_headers(fname, opts.headers, st.hdrs, seen)
    for k in pairs(seen) do
      if find(k, "%z") then seen[k] = nil end
    end
  end
  if opts.body ~= nil or opts.json ~= nil or opts.data ~= nil then
    own(st)
    st.body, st.form = build_body(fname, opts, st.hdrs, st.seen)
  end
  if opts.timeout ~= nil then
    st._tmo = check_timeout(fname, opts.timeout, st._tmo)
  end
  if opts.auth ~= nil then
    st.auth = auth_mod.header(opts.auth, fname)
    own(st) -- (the cached head has the session's Authorization)
  end
  if u.user then
    st.auth = auth_mod.header({ u.user, u.password }, fname)
    own(st)
  end
  if st.ssl ~= nil then check_ssl(fname, st.ssl) end
  local sni = st.sni
  if sni ~= nil and (type(sni) ~= "string" or find(sni, "[\r\n%z]")) then
    misuse(fname, "option 'server_hostname' must be a string")
  end
  if opts.max_redirects ~= nil then
    st.max_redirects = check_count(fname, "max_redirects", opts.max_redirects)
  end
  local cookies = opts.cookies
  if cookies ~= nil and type(cookies) ~= "table" then
    misuse(fname, "option 'cookies' must be a table (got %s)", type(cookies))
  end
  if cookies and self.jar then
    self.jar:update_cookies(cookies, u.jar) -- for that origin only
  elseif cookies then
    local parts = {}
    for k, v in pairs(cookies) do parts[#parts + 1] = k .. "=" .. v end
    table.sort(parts)
    st.cookies = #parts > 0 and concat(parts, "; ") or false
  end
  return st
end

-- The Cookie header for st's URL, or nil: the jar's, or without a jar the
-- request's own cookies (until a redirect leaves their origin).
local function cookie_for(self, st)
  local jar = self.jar
  if jar and rawget(jar, "_n") ~= 0 then -- (a CookieJar's count: an
    return jar:cookie_header(st.u.jar)   -- empty one has nothing)
  end
  return st.cookies or nil
end

-- Set st._key, the pool's key for st's URL; returns the TLS context (nil
-- for http) and the name to send as SNI.
local function route(self, st)
  local u, sni = st.u, st.sni
  local ctx = u.scheme == "https" and ssl_context(self, u.scheme, st.ssl)
    or nil
  local host_sni = sni or (ctx and u.host) or nil
  if ctx and not sni and u.tls_ctx == ctx then
    st._key = u.tls_key -- the usual https request: cached in the URL
  elseif ctx then
    local id = self._ctxid[ctx]
    if not id then
      id = tostring(ctx)
      self._ctxid[ctx] = id
    end
    st._key = u.hostport .. "|" .. id .. "|" .. host_sni
    if not sni then u.tls_ctx, u.tls_key = ctx, st._key end
  else
    st._key = u.hostport
  end
  return ctx, host_sni
end

-- The request's head: for a request without a body on the session's own
-- headers, the head cached in the parsed URL.
local function request_head(self, st, cookie)
  local u, body, form = st.u, st.body, st.form
  local body_len = body and #body or (form and form:size()) or nil
  local prefix
  if st.shared and not body_len then
    local cached = u.heads[st.method] -- {prefix, the whole head}
    if not cached then
      local p = build_head(self, st, u, st.hdrs, st.seen)
      cached = { p, p .. "\r\n" }
      u.heads[st.method] = cached
    end
    if not cookie then return cached[2] end
    prefix = cached[1]
  else
    prefix = build_head(self, st, u, st.hdrs, st.seen)
  end
  if body_len then
    if cookie then
      return prefix .. "Cookie: " .. cookie .. "\r\nContent-Length: " ..
        body_len .. "\r\n\r\n"
    end
    return prefix .. "Content-Length: " .. body_len .. "\r\n\r\n"
  elseif cookie then
    return prefix .. "Cookie: " .. cookie .. "\r\n\r\n"
  end
  return prefix .. "\r\n"
end

-- Send head (and the body) on a pooled or a new connection and read the
-- response's head. A reused connection that the server had closed before
-- answering is retried once on a new one, for an idempotent method only.
local function send(self, st, ctx, sni, head, now)
  for attempt = 1, 2 do
    local got, conn, fresh = pcall(acquire, self, st, st.u, ctx, sni,
      attempt == 1 and now or nil)
    if not got then
      deadline.untrack(st) -- nothing in flight any more
      error(conn, 0)
    end
    local ok, res = pcall(exchange, self, st, conn, head,
      st.form or st.body or nil)
    if ok then return res end
    self.pool:release(conn, false) -- closed, its slot freed
    local err = errors.os_error(res, st.url)
    if fresh or attempt == 2 or not IDEMPOTENT[st.method] or
        not st._early or not is_error(err, errors.ClientConnectionError)
    then
      deadline.untrack(st)
      error(err, 0)
    end
  end
end

-- Drop the body and its headers: a 301, 302 or 303 becomes a GET.
local function to_get(st)
  st.method = "GET"
  st.body, st.form = false, false
  local hdrs, seen = st.hdrs, st.seen
  for i = #hdrs - 1, 1, -2 do
    local l = lower(hdrs[i])
    if l == "content-type" or l == "content-length" then
      table.remove(hdrs, i + 1)
      table.remove(hdrs, i)
      seen[l] = nil
    end
  end
end

-- resp is a redirect to location: release it into st.history and turn st
-- into the next request (its URL, method, body and credentials).
local function follow(self, st, resp, location, origin)
  local history = st.history or {}
  st.history = history
  if #history >= st.max_redirects then
    resp:release()
    history[#history + 1] = resp
    error(errors.TooManyRedirects(("too many redirects (%d)")
      :format(st.max_redirects), { url = st.url, status = resp.status,
        headers = resp.headers, history = history }), 0)
  end
  if resp.content_length and resp.content_length <= 65536 then
    -- read a small redirect body so the connection can be reused; a
    -- broken one only costs the connection, but a cancellation or a
    -- timeout is the caller's
    local ok, err = pcall(resp.read, resp)
    if not ok and (lasync.is_cancelled(err) or lasync.is_timeout(err)) then
      resp:release()
      error(err, 0)
    end
  end
  resp:release()
  history[#history + 1] = resp
  local nu = parsed_url(self, st.fname, urlparse.join(st.u, location))
  own(st)
  local status = resp.status
  if (status == 301 or status == 302 or status == 303) and
      st.method ~= "HEAD" then
    to_get(st)
  end
  if not urlparse.same_origin(origin, nu) then
    -- credentials stay with their origin (undici CVE-2023-45143)
    strip_credentials(st.hdrs, st.seen)
    st.cookies = false
    if not nu.user then st.auth = false end
  end
  if nu.user then
    st.auth = auth_mod.header({ nu.user, nu.password }, st.fname)
  end
  st.u = nu
end

function Session:request(method, url, opts, fname)
  fname = fname or "lasync.http.Session:request"
  local st = new_request(self, method, url, opts, fname)
  local now = lasync.get_running_loop():time()
  if st._tmo.total then st._when = now + st._tmo.total end
  local origin = st.u
  while true do
    st.url = st.u.str
    local ctx, sni = route(self, st)
    local resp = send(self, st, ctx, sni,
      request_head(self, st, cookie_for(self, st)), now)
    now = nil -- a redirect's connection reads the clock again
    if self.jar and resp._flags & 1 ~= 0 then -- a Set-Cookie
      self.jar:update_cookies_from_headers(resp.headers:getall("set-cookie"),
        st.u.jar)
    end
    local location = REDIRECT[resp.status] and st.allow and
      resp.headers.location
    if not location then
      if st.raise or (st.raise == nil and self.raise) then
        resp:raise_for_status()
      end
      return resp
    end
    follow(self, st, resp, location, origin)
  end
end

for _, m in ipairs { "get", "post", "put", "patch", "delete", "head",
                     "options" } do
  local name = "lasync.http.Session:" .. m
  local METHOD = upper(m)
  Session[m] = function(self, url, opts)
    return Session.request(self, METHOD, url, opts, name)
  end
end

-- One-shot requests: a session of their own, the body read, closed.
function M.oneshot(method, url, opts, fname)
  local s = M.new()
  local ok, resp = pcall(Session.request, s, method, url, opts, fname)
  if ok then
    ok, resp = pcall(function() resp:read() return resp end)
  end
  s:close()
  if not ok then error(resp, 0) end
  return resp
end

return M
