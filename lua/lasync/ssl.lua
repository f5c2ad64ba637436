-- lasync.ssl: TLS contexts (lasync.ssl.context, made in C by
-- bindings/io/tls_context.c), and the ssl options of open_connection and
-- start_server: this module wraps them (install), putting the handshake
-- (bindings/io/tls.c) with its timeout between connecting and returning,
-- or between accepting and running the handler.
local core = require "lasync.core"

local M = {}

--- lasync.ssl.context([opts]) -> an immutable context (docs/api.md, TLS)
M.context = core._ssl_context

local DEFAULT_TIMEOUT = 60 -- asyncio's ssl_handshake_timeout

local default_client -- the context of ssl = true, made once per state
local ctx_mt -- the metatable of contexts

-- The TLS options of opts, checked (before anything connects): nil when
-- opts asks for no TLS, else {ctx=, timeout=, hostname=}.
local function tls_opts(fname, opts, server, host)
  if type(opts) ~= "table" then return nil end
  local ssl, hn, to = opts.ssl, opts.server_hostname, opts.ssl_handshake_timeout
  if ssl == nil or ssl == false then
    if hn ~= nil or to ~= nil then
      error(("lasync.%s: option '%s' needs option 'ssl'"):format(fname,
        hn ~= nil and "server_hostname" or "ssl_handshake_timeout"), 3)
    end
    return nil
  end
  local ctx
  -- the contexts' metatable, from a context that loads no CA store (a
  -- default one per connection cost a read of the system's CA bundle)
  ctx_mt = ctx_mt or getmetatable(M.context { verify = "none",
                                              check_hostname = false })
  if ssl == true and not server then
    default_client = default_client or M.context()
    ctx = default_client
  elseif getmetatable(ssl) ~= ctx_mt then
    error(("lasync.%s: option 'ssl' must be %s (got %s)"):format(fname,
      server and "a server lasync.ssl.context" or
      "true or a lasync.ssl.context", type(ssl)), 3)
  else
    ctx = ssl
  end
  if ctx:purpose() ~= (server and "server" or "client") then
    error(("lasync.%s: option 'ssl' must be a %s context (got a %s one)")
      :format(fname, server and "server" or "client", ctx:purpose()), 3)
  end
  if to ~= nil and (math.type(to) == nil or to <= 0) then
    error(("lasync.%s: option 'ssl_handshake_timeout' must be a positive " ..
      "number of seconds (got %s)"):format(fname, tostring(to)), 3)
  end
  if hn ~= nil then
    if server then
      error(("lasync.%s: option 'server_hostname' is for clients")
        :format(fname), 3)
    end
    if type(hn) ~= "string" or hn:find("\0", 1, true) then
      error(("lasync.%s: option 'server_hostname' must be a string (got %s)")
        :format(fname, type(hn)), 3)
    end
  end
  if hn == nil and not server then hn = host end
  return { ctx = ctx, timeout = to or DEFAULT_TIMEOUT, hostname = hn }
end
M._tls_opts = tls_opts

-- Put TLS on the stream of w and wait for the handshake, at most
-- tls.timeout seconds; on any failure the connection is aborted and the
-- error raised (a timeout as OSError ECONNABORTED, as asyncio).
local function handshake(lasync, w, tls, fname)
  w:_start_tls(tls.ctx, tls.hostname)
  local ok, err = pcall(lasync.timeout, tls.timeout, w._tls_handshake, w,
                        fname)
  if ok then return end
  w:abort()
  if lasync.is_timeout(err) then
    err = core._tls_timeout_error(fname, tls.timeout)
  end
  error(err, 0)
end
M._handshake = handshake

-- Raise again an error of a wrapped C function, called through pcall: the
-- C function's caller is then pcall, so luaL_error added no position, and
-- a string gets the position of the wrapper's caller (level 3 from here),
-- exactly as when the user called the C function directly; an error object
-- goes on unchanged.
local function rethrow(err)
  if type(err) == "string" then error(err, 3) end
  error(err, 0)
end

-- Wrap lasync's connection functions (lasync is the module table). A
-- wrapper never tail-calls (rethrow counts its frame).
function M._install(lasync)
  local open_connection, start_server = lasync.open_connection,
                                        lasync.start_server
  local open_unix, start_unix = lasync.open_unix_connection,
                                lasync.start_unix_server

  local function client(fname, open, optidx)
    return function(...)
      local opts = select(optidx, ...)
      local tls = tls_opts(fname, opts, false, optidx == 3 and (...) or nil)
      local ok, r, w = pcall(open, ...)
      if not ok then rethrow(r) end
      if tls then handshake(lasync, w, tls, fname) end
      return r, w
    end
  end
  lasync.open_connection = client("open_connection", open_connection, 3)
  lasync.open_unix_connection = client("open_unix_connection", open_unix, 2)

  local function server(fname, start, optidx)
    return function(handler, ...)
      local opts = select(optidx - 1, ...)
      local tls = tls_opts(fname, opts, true)
      if tls and type(handler) == "function" then
        local h = handler
        handler = function(r, w)
          handshake(lasync, w, tls, fname)
          return h(r, w)
        end
      end
      local ok, srv = pcall(start, handler, ...)
      if not ok then rethrow(srv) end
      return srv
    end
  end
  lasync.start_server = server("start_server", start_server, 4)
  lasync.start_unix_server = server("start_unix_server", start_unix, 3)
end

return M
