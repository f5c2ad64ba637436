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
local SHUTDOWN_TIMEOUT = 30 -- asyncio's ssl_shutdown_timeout

local default_client -- the context of ssl = true, made once per state
local ctx_mt -- the metatable of contexts

-- The TLS options of opts, checked (before anything connects): nil when
-- opts asks for no TLS, else {ctx=, timeout=, hostname=}.
local function tls_opts(fname, opts, server, host)
  if type(opts) ~= "table" then return nil end
  local ssl, hn, to = opts.ssl, opts.server_hostname, opts.ssl_handshake_timeout
  local sto = opts.ssl_shutdown_timeout
  if ssl == nil or ssl == false then
    if hn ~= nil or to ~= nil or sto ~= nil then
      error(("lasync.%s: option '%s' needs option 'ssl'"):format(fname,
        hn ~= nil and "server_hostname" or to ~= nil and
        "ssl_handshake_timeout" or "ssl_shutdown_timeout"), 3)
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
  if sto ~= nil and (math.type(sto) == nil or sto <= 0) then
    error(("lasync.%s: option 'ssl_shutdown_timeout' must be a positive " ..
      "number of seconds (got %s)"):format(fname, tostring(sto)), 3)
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
  return { ctx = ctx, timeout = to or DEFAULT_TIMEOUT, hostname = hn,
           shutdown_timeout = sto or SHUTDOWN_TIMEOUT }
end
M._tls_opts = tls_opts

-- Put TLS on the stream of w and wait for the handshake, at most
-- tls.timeout seconds; on any failure the connection is aborted and the
-- error raised (a timeout as OSError ECONNABORTED, as asyncio).
local function handshake_wait(lasync, w, tls, fname)
  local ok, err = pcall(lasync.timeout, tls.timeout, w._tls_handshake, w,
                        fname)
  if ok then return end
  w:abort()
  if lasync.is_timeout(err) then
    err = core._tls_timeout_error(fname, tls.timeout)
  end
  error(err, 0)
end

local function handshake(lasync, w, tls, fname)
  w:_start_tls(tls.ctx, tls.hostname, false, tls.shutdown_timeout,
               tls.session_key)
  handshake_wait(lasync, w, tls, fname)
end
M._handshake = handshake

-- The key under which a client context keeps the session of a connection
-- to addr (host and port, or a socket's path) for server_hostname hn:
-- a session is offered again only to the same name at the same place.
local function session_key(hn, addr, port)
  hn = hn or ""
  return ("%d:%s|%s|%s"):format(#hn, hn, tostring(addr), tostring(port))
end

-- Raise again an error of a wrapped C function, called through pcall: the
-- C function's caller is then pcall, so luaL_error added no position, and
-- a string gets the position of the wrapper's caller (level 3 from here),
-- exactly as when the user called the C function directly; an error object
-- goes on unchanged.
local function rethrow(err)
  if type(err) == "string" then error(err, 3) end
  error(err, 0)
end

local START_TLS_OPTS = { server_hostname = true,
                         ssl_handshake_timeout = true,
                         ssl_shutdown_timeout = true }

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
      if tls and optidx == 2 and tls.hostname == nil and
         tls.ctx:check_hostname() then
        -- no name to check the certificate against: asyncio refuses too
        error(("lasync.%s: option 'ssl' with a context that checks host " ..
          "names needs option 'server_hostname'"):format(fname), 2)
      end
      if tls then
        tls.session_key = optidx == 3
          and session_key(tls.hostname, (...), select(2, ...))
          or session_key(tls.hostname, "unix", (...))
      end
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

  -- w:start_tls(ctx[, opts]) (asyncio's StreamWriter.start_tls): put TLS
  -- on a live plain connection and wait for the handshake; a server
  -- context makes this end the server. Bytes the reader holds already,
  -- not taken, are handed to TLS as the peer's first ciphertext.
  local fname = "StreamWriter:start_tls"
  local function start_tls(w, ctx, opts)
    if getmetatable(ctx) ~= getmetatable(default_client or M.context()) then
      error(("lasync.%s: argument #1 must be a lasync.ssl.context (got %s)")
        :format(fname, type(ctx)), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error(("lasync.%s: argument #2 must be a table (got %s)")
        :format(fname, type(opts)), 2)
    end
    opts = opts or {}
    for k in pairs(opts) do
      if not START_TLS_OPTS[k] then
        error(("lasync.%s: unknown option '%s'"):format(fname, tostring(k)),
              2)
      end
    end
    local tls = tls_opts(fname, { ssl = ctx,
      server_hostname = opts.server_hostname,
      ssl_handshake_timeout = opts.ssl_handshake_timeout,
      ssl_shutdown_timeout = opts.ssl_shutdown_timeout },
      ctx:purpose() == "server")
    local key
    if tls.hostname and ctx:purpose() == "client" then
      local ok, addr, port = pcall(w.get_extra_info, w, "peername")
      if ok and addr then key = session_key(tls.hostname, addr, port) end
    end
    local ok, err = pcall(w._start_tls, w, tls.ctx, tls.hostname, true,
                          tls.shutdown_timeout, key)
    if not ok then rethrow(err) end
    handshake_wait(lasync, w, tls, fname)
  end
  debug.getregistry()["lasync.StreamWriter"].__index.start_tls = start_tls
end

return M
