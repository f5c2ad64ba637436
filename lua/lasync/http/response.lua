-- lasync.http.response: what a handler answers with. Response objects
-- (the shared response shape {status, reason, headers, body, stream}
-- with a metatable), the text and json shortcuts, StreamResponse (the
-- handler writes the body itself, with backpressure) and aiohttp's
-- HTTPException classes, which a handler may return or raise.
local lasync = require "lasync"
local check = require "lasync.check"

local type, error, pairs, ipairs, tostring, setmetatable, rawget,
  math_type = type, error, pairs, ipairs, tostring, setmetatable, rawget,
  math.type
local find, lower = string.find, string.lower

local M = {}

local TEXT = "text/plain; charset=utf-8"
local JSON = "application/json; charset=utf-8"
M.TEXT, M.JSON = TEXT, JSON

--{======================================================================
-- Checks shared by the constructors
--=======================================================================

-- Raise (at the caller's caller) unless status is an integer 100..999.
local function check_status(status, fname)
  if math_type(status) ~= "integer" or status < 100 or status > 999 then
    error(("lasync.http.%s: status must be an integer from 100 to 999 " ..
      "(got %s)"):format(fname, tostring(status)), 4)
  end
end

-- A header name is an RFC 9110 token; a value has no CR, LF or NUL.
local function check_value(v, what, fname)
  if type(v) ~= "string" then
    error(("lasync.http.%s: %s must be a string (got %s)"):format(fname,
      what, type(v)), 5)
  end
  -- three plain searches (memchr-like): a pattern with a set costs a
  -- set match per byte, several times more for a short value
  if find(v, "\r", 1, true) or find(v, "\n", 1, true) or
     find(v, "\0", 1, true) then
    error(("lasync.http.%s: %s contains CR, LF or NUL"):format(fname, what),
      5)
  end
end

local function check_headers(headers, fname)
  if headers == nil then return end
  if type(headers) ~= "table" then
    error(("lasync.http.%s: headers must be a table (got %s)"):format(fname,
      type(headers)), 4)
  end
  for name, v in pairs(headers) do
    if type(name) ~= "string" or not find(name, "^[%w!#$%%&'*+%-.^_`|~]+$")
    then
      error(("lasync.http.%s: invalid header name %s"):format(fname,
        type(name) == "string" and ("%q"):format(name) or tostring(name)), 4)
    end
    if type(v) == "table" then
      for _, item in ipairs(v) do
        check_value(item, "header " .. name, fname)
      end
    else
      check_value(v, "header " .. name, fname)
    end
  end
end

-- The key of header `name` in headers, whatever its case, or nil.
local function header_key(headers, name)
  if rawget(headers, name) ~= nil then return name end
  local lname = lower(name)
  for k in pairs(headers) do
    if lower(k) == lname then return k end
  end
end
M.header_key = header_key

--}======================================================================

--{======================================================================
-- Cookies (shared by Response, StreamResponse and HTTPException)
--=======================================================================

local cookies -- lasync.http.cookies, loaded on first use

-- Add one Set-Cookie header to headers.
local function add_set_cookie(headers, name, value, attrs, fname)
  cookies = cookies or require "lasync.http.cookies"
  -- level 4: format, add_set_cookie, set_cookie, its caller
  local line = cookies.format(name, value, attrs, "lasync.http." .. fname, 4)
  local key = header_key(headers, "Set-Cookie") or "Set-Cookie"
  local cur = headers[key]
  if cur == nil then
    headers[key] = line
  elseif type(cur) == "table" then
    cur[#cur + 1] = line
  else
    headers[key] = { cur, line }
  end
end

-- The cookie methods of a class named cname whose objects keep their
-- headers in self.headers (created on first use).
local function cookie_methods(cls, cname)
  --- r:set_cookie(name, value [, attrs]): one Set-Cookie header
  function cls:set_cookie(name, value, attrs)
    local h = rawget(self, "headers")
    if h == nil then h = {}; self.headers = h end
    add_set_cookie(h, name, value, attrs, cname .. ":set_cookie")
  end

  --- r:del_cookie(name [, attrs]): tell the client to drop the cookie
  -- (an empty value that expired in 1970; attrs: path, domain)
  function cls:del_cookie(name, attrs)
    attrs = check.options(attrs, cname .. ":del_cookie",
      { path = true, domain = true }, "{path = \"/\"}")
    local h = rawget(self, "headers")
    if h == nil then h = {}; self.headers = h end
    add_set_cookie(h, name, "", { max_age = 0, expires = 0,
      path = attrs.path, domain = attrs.domain }, cname .. ":del_cookie")
  end
end

--}======================================================================

--{======================================================================
-- Response
--=======================================================================

local Response = { __name = "lasync.http.Response" }
Response.__index = Response
M.Response = Response

local RESPONSE_OPTS = { status = true, reason = true, headers = true,
  body = true, text = true, content_type = true, stream = true }

--- http.Response{status =, reason =, headers =, body =, text =,
-- content_type =, stream =} -> a response
local function new_response(opts, fname)
  fname = fname or "Response"
  opts = check.options(opts, "http." .. fname, RESPONSE_OPTS,
    "{status = 200, body = \"hi\"}")
  local status = opts.status or 200
  check_status(status, fname)
  if opts.reason ~= nil then check_value(opts.reason, "reason", fname) end
  check_headers(opts.headers, fname)
  local body, text, stream = opts.body, opts.text, opts.stream
  if body ~= nil and type(body) ~= "string" then
    error(("lasync.http.%s: body must be a string (got %s)"):format(fname,
      type(body)), 3)
  end
  if text ~= nil and type(text) ~= "string" then
    error(("lasync.http.%s: text must be a string (got %s)"):format(fname,
      type(text)), 3)
  end
  if stream ~= nil then
    check.callable(stream, "http." .. fname, "as stream, called with a " ..
      "writer")
  end
  if (body ~= nil and 1 or 0) + (text ~= nil and 1 or 0) +
     (stream ~= nil and 1 or 0) > 1 then
    error(("lasync.http.%s: give one of body, text and stream"):format(fname),
      3)
  end
  local ctype = opts.content_type
  if ctype ~= nil then check_value(ctype, "content_type", fname) end
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if not header_key(headers, "Content-Type") then
    if ctype then
      headers["Content-Type"] = ctype
    elseif text then
      headers["Content-Type"] = TEXT
    elseif body or stream then
      headers["Content-Type"] = "application/octet-stream"
    end
  elseif ctype then
    error(("lasync.http.%s: content_type and a Content-Type header both " ..
      "given"):format(fname), 3)
  end
  return setmetatable({ status = status, reason = opts.reason,
    headers = headers, body = body or text, stream = stream }, Response)
end

setmetatable(Response, { __call = function(_, opts)
  return new_response(opts)
end })

function Response:__tostring()
  return ("lasync.http.Response: %d"):format(self.status)
end

cookie_methods(Response, "Response")

--- http.text(s [, status]) -> a text/plain response
function M.text(s, status)
  if type(s) ~= "string" then
    error(("lasync.http.text: expected a string (got %s)"):format(type(s)),
      2)
  end
  if status ~= nil then check_status(status, "text") end
  return setmetatable({ status = status or 200,
    headers = { ["Content-Type"] = TEXT }, body = s }, Response)
end

--- http.html(s [, status]) -> a text/html response
function M.html(s, status)
  if type(s) ~= "string" then
    error(("lasync.http.html: expected a string (got %s)"):format(type(s)),
      2)
  end
  if status ~= nil then check_status(status, "html") end
  return setmetatable({ status = status or 200,
    headers = { ["Content-Type"] = "text/html; charset=utf-8" }, body = s },
    Response)
end

local encode, pcall = require("lasync.json").encode, pcall

--- http.json(value [, status]) -> an application/json response
-- (lasync.json: integers exact, json.null, json.array {} as [])
function M.json(value, status)
  if status ~= nil then check_status(status, "json") end
  local ok, body = pcall(encode, value)
  if not ok then
    error(("lasync.http.json: cannot encode the value: %s"):format(
      tostring(body):gsub("^.-: ", "", 1)), 2)
  end
  return setmetatable({ status = status or 200,
    headers = { ["Content-Type"] = JSON }, body = body }, Response)
end

--- http.file(path [, opts]) -> a response sending the file at path, as
-- a static route does (content type, ETag, Last-Modified, 304, Range);
-- resolved when it is sent. opts: headers (added), chunk_size.
local FILE_OPTS = { headers = true, chunk_size = true }
function M.file(path, opts)
  if type(path) ~= "string" or path == "" or find(path, "\0", 1, true) then
    error("lasync.http.file: path must be a non-empty string without NUL",
      2)
  end
  opts = check.options(opts, "http.file", FILE_OPTS,
    "{headers = {[\"Content-Disposition\"] = \"attachment\"}}")
  check_headers(opts.headers, "file")
  local cs = opts.chunk_size
  if cs ~= nil and (math_type(cs) ~= "integer" or cs < 1) then
    error("lasync.http.file: chunk_size must be a positive integer", 2)
  end
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  return setmetatable({ status = 200, headers = headers, file_path = path,
    chunk_size = cs }, Response)
end

--}======================================================================

--{======================================================================
-- StreamResponse: the handler sends the head, then writes the body
--=======================================================================

local StreamResponse = { __name = "lasync.http.StreamResponse" }
StreamResponse.__index = StreamResponse
M.StreamResponse = StreamResponse

local STREAM_OPTS = { status = true, reason = true, headers = true,
  content_type = true, content_length = true }

--- http.StreamResponse{status =, reason =, headers =, content_type =,
-- content_length =} -> a response whose body the handler writes
setmetatable(StreamResponse, { __call = function(_, opts)
  local fname = "StreamResponse"
  opts = check.options(opts, "http." .. fname, STREAM_OPTS,
    "{status = 200}")
  local status = opts.status or 200
  check_status(status, fname)
  if opts.reason ~= nil then check_value(opts.reason, "reason", fname) end
  check_headers(opts.headers, fname)
  local len = opts.content_length
  if len ~= nil and (math_type(len) ~= "integer" or len < 0) then
    error(("lasync.http.StreamResponse: content_length must be a " ..
      "non-negative integer (got %s)"):format(tostring(len)), 2)
  end
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if opts.content_type ~= nil then
    check_value(opts.content_type, "content_type", fname)
    headers[header_key(headers, "Content-Type") or "Content-Type"] =
      opts.content_type
  end
  return setmetatable({ status = status, reason = opts.reason,
    headers = headers, content_length = len, prepared = false,
    _eof = false }, StreamResponse)
end })

function StreamResponse:__tostring()
  return ("lasync.http.StreamResponse: %d%s"):format(self.status,
    self.prepared and " (prepared)" or "")
end

cookie_methods(StreamResponse, "StreamResponse")

-- The connection's state (server.lua) of req, or an error naming fname.
local function state_of(req, fname)
  local st = type(req) == "table" and rawget(req, "_c")
  if not st then
    error(("lasync.http.%s: expected a lasync.http.Request (got %s)")
      :format(fname, check.typename(req)), 3)
  end
  if st.req ~= req then
    error(("lasync.http.%s: the request is over (its handler has " ..
      "returned)"):format(fname), 3)
  end
  return st
end

--- resp:prepare(req): send the status line and headers
function StreamResponse:prepare(req)
  local st = state_of(req, "StreamResponse:prepare")
  if self.prepared then return end
  if st.sent then
    error("lasync.http.StreamResponse:prepare: a response to this request " ..
      "was already sent", 2)
  end
  local len = self.content_length
  local keep = st.keep
  if len == nil and req.version == "1.0" then keep = false end
  st.keep = keep
  local head_only = req.method == "HEAD"
  local full = st.conn:send_head(self.status, self.headers, len, keep,
                                 head_only, self.reason)
  st.sent, st.status, st.size = true, self.status, 0
  self._st, self._head_only, self._chunked = st, head_only, len == nil
  self.prepared = true
  if full then st.writer:drain() end
end

--- resp:write(data): send body bytes; waits while the peer is slow
function StreamResponse:write(data)
  if type(data) ~= "string" then
    error(("lasync.http.StreamResponse:write: expected a string (got %s)")
      :format(type(data)), 2)
  end
  local st = self._st
  if not self.prepared then
    error("lasync.http.StreamResponse:write: call prepare(req) first", 2)
  end
  if self._eof then
    error("lasync.http.StreamResponse:write: write_eof() was called", 2)
  end
  if self._head_only or data == "" then return end
  st.size = st.size + #data
  if st.conn:send_chunk(data) then st.writer:drain() end
end

--- resp:write_eof([data]): the end of the body
function StreamResponse:write_eof(data)
  if data ~= nil then self:write(data) end
  if not self.prepared then
    error("lasync.http.StreamResponse:write_eof: call prepare(req) first", 2)
  end
  if self._eof then return end
  self._eof = true
  local st = self._st
  if self._head_only then return end
  if self._chunked then
    if st.conn:send_end() then st.writer:drain() end
  end
end

check.guard(StreamResponse)

--}======================================================================

--{======================================================================
-- HTTPException: aiohttp's web exceptions, lasync error classes
--=======================================================================

local HTTPException = lasync.error_class("HTTPException")
M.HTTPException = HTTPException
cookie_methods(HTTPException, "HTTPException")

local groups = {
  HTTPSuccessful = lasync.error_class("HTTPSuccessful", HTTPException),
  HTTPRedirection = lasync.error_class("HTTPRedirection", HTTPException),
  HTTPError = lasync.error_class("HTTPError", HTTPException),
}
groups.HTTPClientError = lasync.error_class("HTTPClientError",
  groups.HTTPError)
groups.HTTPServerError = lasync.error_class("HTTPServerError",
  groups.HTTPError)
for k, v in pairs(groups) do M[k] = v end

-- name, status, reason, group
local CLASSES = {
  { "HTTPOk", 200, "OK" }, { "HTTPCreated", 201, "Created" },
  { "HTTPAccepted", 202, "Accepted" },
  { "HTTPNoContent", 204, "No Content" },
  { "HTTPMultipleChoices", 300, "Multiple Choices" },
  { "HTTPMovedPermanently", 301, "Moved Permanently" },
  { "HTTPFound", 302, "Found" }, { "HTTPSeeOther", 303, "See Other" },
  { "HTTPNotModified", 304, "Not Modified" },
  { "HTTPTemporaryRedirect", 307, "Temporary Redirect" },
  { "HTTPPermanentRedirect", 308, "Permanent Redirect" },
  { "HTTPBadRequest", 400, "Bad Request" },
  { "HTTPUnauthorized", 401, "Unauthorized" },
  { "HTTPPaymentRequired", 402, "Payment Required" },
  { "HTTPForbidden", 403, "Forbidden" },
  { "HTTPNotFound", 404, "Not Found" },
  { "HTTPMethodNotAllowed", 405, "Method Not Allowed" },
  { "HTTPNotAcceptable", 406, "Not Acceptable" },
  { "HTTPRequestTimeout", 408, "Request Timeout" },
  { "HTTPConflict", 409, "Conflict" }, { "HTTPGone", 410, "Gone" },
  { "HTTPLengthRequired", 411, "Length Required" },
  { "HTTPPreconditionFailed", 412, "Precondition Failed" },
  { "HTTPRequestEntityTooLarge", 413, "Request Entity Too Large" },
  { "HTTPRequestURITooLong", 414, "Request-URI Too Long" },
  { "HTTPUnsupportedMediaType", 415, "Unsupported Media Type" },
  { "HTTPRequestRangeNotSatisfiable", 416, "Requested Range Not " ..
    "Satisfiable" },
  { "HTTPExpectationFailed", 417, "Expectation Failed" },
  { "HTTPMisdirectedRequest", 421, "Misdirected Request" },
  { "HTTPUnprocessableEntity", 422, "Unprocessable Entity" },
  { "HTTPTooManyRequests", 429, "Too Many Requests" },
  { "HTTPRequestHeaderFieldsTooLarge", 431, "Request Header Fields Too " ..
    "Large" },
  { "HTTPUnavailableForLegalReasons", 451, "Unavailable For Legal Reasons" },
  { "HTTPInternalServerError", 500, "Internal Server Error" },
  { "HTTPNotImplemented", 501, "Not Implemented" },
  { "HTTPBadGateway", 502, "Bad Gateway" },
  { "HTTPServiceUnavailable", 503, "Service Unavailable" },
  { "HTTPGatewayTimeout", 504, "Gateway Timeout" },
  { "HTTPVersionNotSupported", 505, "HTTP Version Not Supported" },
}

local by_status = {}
for _, c in ipairs(CLASSES) do
  local name, status, reason = c[1], c[2], c[3]
  local group = status < 300 and groups.HTTPSuccessful or status < 400 and
    groups.HTTPRedirection or status < 500 and groups.HTTPClientError or
    groups.HTTPServerError
  local cls = lasync.error_class(name, group)
  cls.status, cls.default_reason = status, reason
  M[name] = cls
  by_status[status] = cls
end
M.by_status = by_status

-- Whether e is an HTTPException (returned or raised by a handler).
local is_error = lasync.is_error
function M.is_exception(e)
  return is_error(e, HTTPException)
end

--- The response shape of exception e: status, reason, headers, body.
-- A redirection's message is its Location; another's message is its
-- text (default "404: Not Found"). Raises on bad fields (the handler's
-- mistake: a 500 follows).
function M.exception_response(e)
  local status = e.status
  check_status(status, "HTTPException")
  local headers = {}
  check_headers(rawget(e, "headers"), "HTTPException")
  for k, v in pairs(rawget(e, "headers") or {}) do headers[k] = v end
  local reason = rawget(e, "reason")
  if reason ~= nil then check_value(reason, "reason", "HTTPException") end
  local msg, body = rawget(e, "message"), rawget(e, "body") or
    rawget(e, "text")
  local redirect = status >= 300 and status < 400 and status ~= 304
  if redirect then
    if msg == nil then
      error(("lasync.http.%s: a redirection needs a location"):format(e.name),
        0)
    end
    check_value(msg, "location", e.name)
    headers[header_key(headers, "Location") or "Location"] = msg
  elseif status == 405 and type(rawget(e, "allowed")) == "table" then
    headers[header_key(headers, "Allow") or "Allow"] =
      table.concat(rawget(e, "allowed"), ", ")
  end
  if not redirect and body == nil and msg ~= nil then body = tostring(msg) end
  if status < 200 or status == 204 or status == 304 then
    body = nil
  elseif body == nil then
    body = ("%d: %s"):format(status, reason or e.default_reason)
  elseif type(body) ~= "string" then
    error(("lasync.http.%s: body must be a string (got %s)"):format(e.name,
      type(body)), 0)
  end
  local ctype = rawget(e, "content_type")
  if body ~= nil and not header_key(headers, "Content-Type") then
    headers["Content-Type"] = ctype or TEXT
  end
  return status, reason, headers, body
end

--- http.redirect(location [, status]) -> the redirection exception
-- (HTTPFound by default) for the handler to return or raise
function M.redirect(location, status)
  if type(location) ~= "string" then
    error(("lasync.http.redirect: location must be a string (got %s)")
      :format(type(location)), 2)
  end
  if find(location, "[\r\n%z]") then
    error("lasync.http.redirect: location contains CR, LF or NUL", 2)
  end
  status = status or 302
  local cls = by_status[status]
  if not cls or status < 300 or status >= 400 or status == 304 then
    error(("lasync.http.redirect: status must be one of 300, 301, 302, " ..
      "303, 307, 308 (got %s)"):format(tostring(status)), 2)
  end
  return cls(location)
end

--}======================================================================

return M
