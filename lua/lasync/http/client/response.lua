-- lasync.http.client.response: ClientResponse, the response a session's
-- request returns once its head came. The body is read lazily through
-- the connection's parser (C); when it has been read to its end the
-- connection goes back to the pool, and release/<close>/__gc before that
-- closes it. Headers, content_type and cookies are made on first use.
local lasync = require "lasync"
local multidict = require "lasync.http.multidict"
local errors = require "lasync.http.client.errors"
local deadline = require "lasync.http.client.deadline"

local concat, find, lower, match, sub = table.concat, string.find,
  string.lower, string.match, string.sub
local error, type, rawget, rawset = error, type, rawget, rawset
local is_error = lasync.is_error
local parse_headers = require("lasync.core")._http_client_headers

local M = {}
local methods = {}
local mt = { __name = "lasync.http.ClientResponse" }
M.mt = mt

local READ_SIZE = 65536

-- The connection goes back to the pool (reusable when the server keeps
-- it and nothing follows the body) or is closed.
local function finish(resp, leftover)
  resp._done = true
  deadline.untrack(resp._st)
  local conn = resp._conn
  if conn then
    resp._conn, resp._data = nil, nil
    resp._pool:release(conn, resp._keep and not leftover)
  end
end
M.finish = finish

local function drop(resp)
  deadline.untrack(resp._st)
  local conn = resp._conn
  if conn then
    resp._conn, resp._data = nil, nil
    resp._pool:release(conn, false)
  end
end
M.drop = drop

local function payload_error(resp, msg)
  drop(resp)
  resp._done = true
  error(errors.ClientPayloadError(("response payload is not completed: " ..
    "%s (%s)"):format(msg, resp.url), { url = resp.url }), 0)
end

-- Reads more bytes from the connection under the sock_read and total
-- deadlines; "" at EOF.
local function read_more(resp)
  local conn = resp._conn
  local ok, data = pcall(deadline.timed, resp._st, "sock_read",
    conn.reader.read, conn.reader, READ_SIZE)
  if ok then return data end
  drop(resp)
  resp._done = true
  error(errors.os_error(data, resp.url), 0)
end

--- The next piece of the body, or nil at its end.
local function next_chunk(resp)
  if resp._done then return nil end
  if resp._conn == nil then
    error(("lasync.http.ClientResponse: the connection was closed " ..
      "before the body was read (%s)"):format(resp.url), 0)
  end
  local parser = resp._conn.parser
  while true do
    local data = resp._data
    local chunk, pos, done = parser:body(data, resp._pos, resp._decompress)
    if chunk == false then payload_error(resp, pos) end
    resp._pos = pos
    if done then
      finish(resp, pos <= #data)
      if chunk ~= "" then return chunk end
      return nil
    end
    if chunk ~= "" then return chunk end
    local more = read_more(resp)
    if more == "" then
      local fin, msg = parser:eof()
      if not fin then payload_error(resp, msg) end
      resp._keep = false
      finish(resp, true)
      return nil
    end
    resp._data, resp._pos = more, 1
  end
end
M.next_chunk = next_chunk

--- resp:read() -> the whole body (cached)
function methods.read(self)
  local body = self._body
  if body then return body end
  if self._streamed then
    error("lasync.http.ClientResponse:read: the body was already " ..
      "streamed (iter_chunked or lines)", 2)
  end
  local first = next_chunk(self)
  if first == nil then
    body = ""
  else
    local second = next_chunk(self)
    if second == nil then
      body = first
    else
      local parts = { first, second }
      for chunk in next_chunk, self do parts[#parts + 1] = chunk end
      body = concat(parts)
    end
  end
  self._body = body
  return body
end

local function charset(resp)
  local ct = resp.headers["content-type"]
  return ct and match(lower(ct), ";%s*charset=\"?([^;\"%s]+)")
end

--- resp:text([encoding]) -> the body; Lua strings are bytes, so the text
-- is returned as it came (charset from Content-Type, default utf-8)
function methods.text(self, encoding)
  if encoding ~= nil and type(encoding) ~= "string" then
    error(("lasync.http.ClientResponse:text: encoding must be a string " ..
      "(got %s)"):format(type(encoding)), 2)
  end
  return methods.read(self)
end

--- resp:json([opts]) -> the decoded body; opts.content_type (default
-- "application/json"; false or nil given explicitly: not checked)
function methods.json(self, opts)
  local expect = "application/json"
  if opts ~= nil then
    if type(opts) ~= "table" then
      error(("lasync.http.ClientResponse:json: opts must be a table " ..
        "(got %s)"):format(type(opts)), 2)
    end
    for k in pairs(opts) do
      if k ~= "content_type" then
        error(("lasync.http.ClientResponse:json: unknown option '%s'")
          :format(tostring(k)), 2)
      end
    end
    expect = opts.content_type or nil
  end
  local body = methods.read(self)
  if expect then
    local ct = self.content_type
    if not find(ct, "json", 1, true) then
      error(errors.ContentTypeError(("attempt to decode JSON with " ..
        "unexpected mimetype: %s"):format(ct), {
          url = self.url, status = self.status, headers = self.headers,
          history = self.history }), 2)
    end
  end
  if body == "" then return nil end
  return lasync.json.decode(body)
end

local function check_n(n, fname)
  if n == nil then return READ_SIZE end
  if math.type(n) ~= "integer" or n < 1 then
    error(("lasync.http.ClientResponse:%s: n must be a positive integer")
      :format(fname), 3)
  end
  return n
end

--- for chunk in resp:iter_chunked(n): pieces of at most n bytes
function methods.iter_chunked(self, n)
  n = check_n(n, "iter_chunked")
  self._streamed = true
  local pending, off = nil, 1
  return function()
    if pending == nil or off > #pending then
      pending, off = next_chunk(self), 1
      if pending == nil then return nil end
    end
    local piece = sub(pending, off, off + n - 1)
    off = off + n
    return piece
  end
end

--- for line in resp:lines(): lines without "\n" or "\r\n"
function methods.lines(self)
  self._streamed = true
  local buf, eof = "", false
  return function()
    while true do
      local nl = find(buf, "\n", 1, true)
      if nl then
        local line = sub(buf, 1, nl - 1)
        buf = sub(buf, nl + 1)
        if sub(line, -1) == "\r" then line = sub(line, 1, -2) end
        return line
      end
      if eof then
        if buf == "" then return nil end
        local line = buf
        buf = ""
        return line
      end
      local chunk = next_chunk(self)
      if chunk == nil then eof = true else buf = buf .. chunk end
    end
  end
end

function methods.raise_for_status(self)
  if self.status >= 400 then
    drop(self)
    self._done = true
    error(errors.ClientResponseError(self.reason, {
        url = self.url, status = self.status, headers = self.headers,
        history = self.history }), 2)
  end
  return self
end

--- resp:release(): done with it; an unread body closes the connection
function methods.release(self)
  if not self._done then
    self._done = true
    drop(self)
  end
end
methods.close = methods.release

mt.__close = function(self) methods.release(self) end
mt.__gc = function(self)
  if not self._done and self._conn then
    self._done = true
    self._pool:release(self._conn, false)
    self._conn = nil
  end
end

-- The flat header list of the head (parsed again in C, on first use).
local function raw_headers(self)
  local raw = rawget(self, "_raw")
  if not raw then
    raw = parse_headers(self._head, self._hs, self._he)
    self._raw, self._head = raw, nil
  end
  return raw
end

local function headers_of(self)
  local md = multidict.ci()
  local raw = raw_headers(self)
  local push = multidict._push
  for i = 1, #raw, 2 do push(md, raw[i], raw[i + 1]) end
  return md
end

local function set_cookies(self)
  local out = {}
  local raw = raw_headers(self)
  for i = 1, #raw, 2 do
    if raw[i] == "set-cookie" then
      local name, value = match(raw[i + 1], "^%s*([^=;%s]+)%s*=%s*([^;]*)")
      if name then out[name] = value end
    end
  end
  return out
end

local lazy = {
  headers = headers_of,
  history = function() return {} end,
  cookies = set_cookies,
  content_type = function(self)
    local ct = self.headers["content-type"]
    return ct and lower(match(ct, "^%s*([^;%s]*)")) or
      "application/octet-stream"
  end,
  charset = function(self) return charset(self) or nil end,
}

mt.__index = function(self, k)
  local m = methods[k]
  if m then return m end
  local f = lazy[k]
  if f then
    local v = f(self)
    rawset(self, k, v)
    return v
  end
  return nil
end

mt.__tostring = function(self)
  return ("lasync.http.ClientResponse: %s %s %s"):format(
    rawget(self, "status"), rawget(self, "reason"), rawget(self, "url"))
end

M.methods = methods
M.is_error = is_error
return M
