-- lasync.http.request: the Request a handler gets. It is the table the
-- connection's parser made (method, raw_path, version, headers, ...)
-- given a metatable: the rest (query, cookies, remote, the body) is
-- computed when first asked for, so a request that needs none of it
-- costs nothing more. req._c is its connection's state (server.lua).
local check = require "lasync.check"
local response = require "lasync.http.response"

local type, error, rawget, rawset, setmetatable, getmetatable, tostring,
  select = type, error, rawget, rawset, setmetatable, getmetatable,
  tostring, select
local lower, match = string.lower, string.match

local M = {}

--{======================================================================
-- Headers: the parser's table (lowercase names, first values) read
-- case-insensitively, with get and getall
--=======================================================================

local header_methods = {}

-- The value of the header named k (any case) in headers h.
local function header_get(h, name)
  if type(name) ~= "string" then
    error(("lasync.http.Request.headers:get: the name must be a string " ..
      "(got %s)"):format(type(name)), 2)
  end
  local lname = lower(name)
  local moved = getmetatable(h).moved
  if moved and moved[lname] ~= nil then return moved[lname] end
  return rawget(h, lname)
end
header_methods.get = header_get

--- headers:getall(name) -> every value of the header, in order ({} when
-- there is none)
function header_methods.getall(h, name)
  local v = header_get(h, name)
  if v == nil then return {} end
  local multi = getmetatable(h).multi
  local all = multi and multi[lower(name)]
  if not all then return { v } end
  local copy = {}
  for i = 1, #all do copy[i] = all[i] end
  return copy
end

local function headers_index(h, k)
  local m = header_methods[k]
  if m then return m end
  if type(k) == "string" then
    local lk = lower(k)
    if lk ~= k then return header_get(h, lk) end
  end
end

local HEADERS_MT = { __index = headers_index,
  __name = "lasync.http.Headers" }
M.HEADERS_MT = HEADERS_MT -- server.lua sets it inline

-- Give the parser's header table h its metatable. A header that repeats
-- (multi) or is named like a method ("get", "getall": they would hide the
-- method) gets a metatable of its own, which holds them.
function M.setup_headers(h, multi)
  local g, ga = h.get, h.getall -- h has no metatable yet: raw reads
  if multi == nil and g == nil and ga == nil then
    return setmetatable(h, HEADERS_MT)
  end
  local mt = { __index = headers_index, __name = "lasync.http.Headers",
    multi = multi }
  if g ~= nil or ga ~= nil then
    mt.moved = { get = g, getall = ga }
    h.get, h.getall = nil, nil
  end
  return setmetatable(h, mt)
end

--}======================================================================

--{======================================================================
-- Request
--=======================================================================

local methods = {}
local getters = {}

local Request = { __name = "lasync.http.Request", _methods = methods }
M.Request = Request

function Request.__index(req, k)
  local m = methods[k]
  if m ~= nil then return m end
  local g = getters[k]
  if g ~= nil then return g(req) end
end

function Request.__tostring(req)
  return ("lasync.http.Request: %s %s"):format(rawget(req, "method"),
    rawget(req, "raw_path"))
end

-- The connection state of req (the receiver of method fname), or an
-- error when req is no Request or its handler has returned.
local function state(req, fname)
  if getmetatable(req) ~= Request then
    error(("lasync.http.Request:%s: expected a Request (got %s)"):format(
      fname, select("#", req) == 0 and "no value" or check.typename(req)), 3)
  end
  local st = rawget(req, "_c")
  if st.req ~= req then
    error(("lasync.http.Request:%s: the request is over (its handler has " ..
      "returned)"):format(fname), 3)
  end
  return st
end

-- Raise the HTTPException for a body read that failed with status
-- (413, 400, 408) and message msg; the connection closes after the
-- response.
local function body_failed(st, status, msg)
  st.keep = false
  local cls = response.by_status[status] or response.HTTPBadRequest
  error(cls(msg), 0)
end

-- The body is read: with app.handler_cancellation, the wait for the peer
-- to go away begins again if a read kept it from beginning.
local function body_done(st)
  st.body_done = true
  if st.app.handler_cancellation then st.server:_watch_peer(st) end
end

local url -- lasync.http.url, loaded on first use

-- path and query_string: the loop sets them before routing; a Request
-- made otherwise computes them here.
function getters.path(req)
  url = url or require "lasync.http.url"
  local path, qs = url.split_target(rawget(req, "raw_path"))
  rawset(req, "path", path or "")
  rawset(req, "query_string", qs or "")
  return path
end

function getters.query_string(req)
  -- next_request sets no query_string for a target without "?"
  if rawget(req, "path") then return "" end
  getters.path(req)
  return rawget(req, "query_string")
end

--- req.query: the query string's fields, a multidict (repeated keys
-- kept); a bad escape raises HTTPBadRequest
function getters.query(req)
  url = url or require "lasync.http.url"
  local md, err, status = url.parse_qs(req.query_string)
  if not md then
    local cls = response.by_status[status] or response.HTTPBadRequest
    error(cls("bad query string: " .. tostring(err)), 2)
  end
  rawset(req, "query", md)
  return md
end

-- chunked and expect_continue: the connection sets them only when true
function getters.chunked()
  return false
end
getters.expect_continue = getters.chunked

function getters.match_info(req)
  local t = {}
  rawset(req, "match_info", t)
  return t
end

--- req.remote: the peer's address (a string)
function getters.remote(req)
  local st = rawget(req, "_c")
  local r = st.remote
  if r == nil then
    local ok, host = pcall(st.writer.get_extra_info, st.writer, "peername")
    r = ok and host or ""
    st.remote = r
  end
  rawset(req, "remote", r)
  return r
end

local cookies -- lasync.http.cookies, loaded on first use

--- req.cookies: name -> value from the Cookie header
function getters.cookies(req)
  cookies = cookies or require "lasync.http.cookies"
  local t = cookies.parse(rawget(req, "headers").cookie)
  rawset(req, "cookies", t)
  return t
end

function getters.host(req)
  return rawget(req, "headers").host
end

function getters.app(req)
  return rawget(req, "_c").app
end

--- req.scheme: "https" on a TLS connection, else "http"
function getters.scheme(req)
  return rawget(req, "_c").server._tls and "https" or "http"
end

--- req.content_type: the media type of the body, lowercase, without
-- parameters ("application/octet-stream" when none is given)
function getters.content_type(req)
  local ct = rawget(req, "headers")["content-type"]
  ct = ct and lower(match(ct, "^[ \t]*([^;]-)[ \t]*;") or ct) or
    "application/octet-stream"
  return ct
end

--- req:read() -> the whole body (a string, "" when none). Past the app's
-- client_max_size: HTTPRequestEntityTooLarge (413).
function methods.read(req)
  local st = state(req, "read")
  local body = rawget(req, "_body")
  if body then return body end
  if st.body_done then
    if rawget(req, "_streamed") then
      error("lasync.http.Request:read: the body was already read as a " ..
        "stream", 2)
    end
    rawset(req, "_body", "") -- a request without a body
    return ""
  end
  local b, status, msg = st.conn:read_body(st.app.client_max_size)
  if not b then body_failed(st, status, msg) end
  rawset(req, "_body", b)
  body_done(st)
  return b
end

--- req:text() -> the body as text (Lua strings are bytes: read())
function methods.text(req)
  state(req, "text")
  return req:read()
end

local decode = require("lasync.json").decode

--- req:json() -> the body decoded from JSON (lasync.json); an empty or
-- malformed body raises HTTPBadRequest (400)
function methods.json(req)
  state(req, "json")
  local body = req:read()
  local ok, v = pcall(decode, body)
  if not ok then
    error(response.HTTPBadRequest("invalid JSON body: " ..
      tostring(v):gsub("^.-: ", "", 1)), 2)
  end
  return v
end

local form -- lasync.http.form

--- req:post() -> the form fields of an application/x-www-form-urlencoded
-- or multipart/form-data body, a multidict (empty for another content
-- type); file fields are objects (filename, content_type, read()).
function methods.post(req)
  local st = state(req, "post")
  local f = rawget(req, "_form")
  if f then return f end
  form = form or require "lasync.http.form"
  local ctype = rawget(req, "headers")["content-type"]
  local body = rawget(req, "_body")
  local next_chunk
  if body then
    next_chunk = function()
      local b = body
      body = nil
      return b
    end
  elseif st.body_done and rawget(req, "_streamed") then
    error("lasync.http.Request:post: the body was already read as a " ..
      "stream", 2)
  elseif st.body_done then
    next_chunk = function() return nil end -- a request without a body
  else
    local conn = st.conn
    rawset(req, "_streamed", true)
    next_chunk = function()
      local c, status, msg = conn:read_chunk()
      if c == false then body_failed(st, status, msg) end
      if c == nil then body_done(st) end
      return c
    end
  end
  local app = st.app
  local fields, err = form.parse(ctype, next_chunk, {
    max_size = app.client_max_size, max_parts = app.max_form_parts,
    spool_threshold = app.spool_threshold })
  if not fields then
    if err.status == 413 then st.keep = false end
    local cls = response.by_status[err.status] or response.HTTPBadRequest
    error(cls(err.message), 0)
  end
  st.cleanup = err -- the second result: removes spooled files
  rawset(req, "_form", fields)
  return fields
end

-- The streaming reader of a request body.
local Content = { __name = "lasync.http.Content" }
Content.__index = Content
M.Content = Content

--- reader:read_chunk() -> the next piece of the body (at most 64 KiB), or
-- nil at its end
function Content:read_chunk()
  local req = self._req
  local st = state(req, "content")
  if st.body_done then return nil end
  rawset(req, "_streamed", true)
  local c, status, msg = st.conn:read_chunk()
  if c == false then body_failed(st, status, msg) end
  if c == nil then body_done(st) end
  return c
end

--- reader:chunks() -> an iterator over the pieces, for a generic for
function Content:chunks()
  return Content.read_chunk, self
end

check.guard(Content)

--- req:content() -> a streaming reader of the body (read_chunk, chunks)
function methods.content(req)
  state(req, "content")
  if rawget(req, "_body") then
    error("lasync.http.Request:content: the body was already read", 2)
  end
  return setmetatable({ _req = req }, Content)
end

--}======================================================================

return M
