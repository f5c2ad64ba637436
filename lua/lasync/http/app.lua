-- lasync.http.app: the App (aiohttp's web.Application): its routes,
-- static folders, middlewares and settings. Serving is server.lua's;
-- app:start and app:run hand the app to it.
local check = require "lasync.check"
local Router = require("lasync.http.router")

local type, error, tostring, setmetatable, getmetatable, math_type, pairs =
  type, error, tostring, setmetatable, getmetatable, math.type, pairs

local M = {}

local App = { __name = "lasync.http.App" }
App.__index = App
M.App = App

local APP_OPTS = { client_max_size = true, middlewares = true, debug = true,
  logger = true, access_log = true, handler_cancellation = true,
  max_head = true, max_headers = true, keepalive_timeout = true,
  head_timeout = true, body_timeout = true, max_form_parts = true,
  spool_threshold = true }

local function opt_int(opts, name, min)
  local v = opts[name]
  if v ~= nil and (math_type(v) ~= "integer" or v < min) then
    error(("lasync.http.App: option '%s' must be an integer >= %d (got %s)")
      :format(name, min, tostring(v)), 4)
  end
  return v
end

local function opt_seconds(opts, name)
  local v = opts[name]
  if v ~= nil and (type(v) ~= "number" or v ~= v or v <= 0) then
    error(("lasync.http.App: option '%s' must be a positive number of " ..
      "seconds (got %s)"):format(name, tostring(v)), 4)
  end
  return v
end

local function opt_bool(opts, name)
  local v = opts[name]
  if v ~= nil and type(v) ~= "boolean" then
    error(("lasync.http.App: option '%s' must be a boolean (got %s)")
      :format(name, type(v)), 4)
  end
  return v == true
end

local function opt_callable(v, what, level)
  if type(v) == "function" then return end
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__call ~= nil then return end
  error(("lasync.http.App: %s must be a function (got %s)"):format(what,
    type(v)), level)
end

-- Default logger: each message, one line or several, to stderr.
local function stderr_logger(msg)
  io.stderr:write(msg, "\n")
end

--- http.App([opts]) -> an application (see docs/api.md "HTTP server")
function M.new(opts)
  opts = check.options(opts, "http.App", APP_OPTS,
    "{client_max_size = 1048576}")
  local app = setmetatable({
    _router = Router.new(),
    _middlewares = {},
    _chains = setmetatable({}, { __mode = "k" }),
    client_max_size = opt_int(opts, "client_max_size", 0) or 1048576,
    max_form_parts = opt_int(opts, "max_form_parts", 1),
    spool_threshold = opt_int(opts, "spool_threshold", 0),
    debug = opt_bool(opts, "debug"),
    handler_cancellation = opt_bool(opts, "handler_cancellation"),
    logger = opts.logger or stderr_logger,
    access_log = opts.access_log or false,
  }, App)
  if opts.logger ~= nil then opt_callable(opts.logger, "option 'logger'", 3) end
  local al = opts.access_log
  if al ~= nil and al ~= true and al ~= false then
    opt_callable(al, "option 'access_log' (true, false or a function)", 3)
  end
  app._conn_opts = {
    max_head = opt_int(opts, "max_head", 1),
    max_headers = opt_int(opts, "max_headers", 1),
    max_body = app.client_max_size,
    idle_timeout = opt_seconds(opts, "keepalive_timeout"),
    head_timeout = opt_seconds(opts, "head_timeout"),
    body_timeout = opt_seconds(opts, "body_timeout"),
  }
  local mws = opts.middlewares
  if mws ~= nil then
    if type(mws) ~= "table" then
      error(("lasync.http.App: option 'middlewares' must be a list of " ..
        "functions (got %s)"):format(type(mws)), 2)
    end
    for i = 1, #mws do
      opt_callable(mws[i], ("middleware #%d"):format(i), 3)
      app._middlewares[i] = mws[i]
    end
  end
  return app
end

function App:__tostring()
  return "lasync.http.App"
end

--{======================================================================
-- Routes
--=======================================================================

local function add_route(app, method, pattern, handler, fname)
  if type(pattern) ~= "string" then
    error(("lasync.http.%s: the pattern must be a string (got %s)"):format(
      fname, type(pattern)), 3)
  end
  check.callable(handler, "http." .. fname, "as the handler")
  app._router:add(method, pattern, handler, "lasync.http." .. fname, 4)
end

--- app:route(method, pattern, handler): method is "GET", "POST", ...
-- or "*" for any method
function App:route(method, pattern, handler)
  if type(method) ~= "string" or not method:find("^[%w!#$%%&'*+%-.^_`|~]+$")
  then
    error(("lasync.http.App:route: the method must be a token such as " ..
      "\"GET\" (got %s)"):format(tostring(method)), 2)
  end
  add_route(self, method:upper(), pattern, handler, "App:route")
end

for _, m in pairs { "get", "post", "put", "delete", "patch", "head",
                    "options" } do
  local method, fname = m:upper(), "App:" .. m
  App[m] = function(self, pattern, handler)
    add_route(self, method, pattern, handler, fname)
  end
end

--- app:static(prefix, dir [, opts]): serve the files under dir at
-- prefix .. "/..." (opts: show_index, follow_symlinks, chunk_size)
function App:static(prefix, dir, opts)
  local s = require("lasync.http.static").new(prefix, dir, opts,
    "lasync.http.App:static", 3)
  local function handler(req)
    return s:handle(req.method, req.raw_path, req.headers)
  end
  self._router:add("GET", s.prefix .. "/{_static_tail:.*}", handler,
    "lasync.http.App:static", 3)
end

--- app:use(middleware): add a middleware after those already given.
-- A middleware is function(req, handler) -> response; it calls
-- handler(req) to go on down the chain.
function App:use(mw)
  opt_callable(mw, "the middleware", 3)
  local mws = self._middlewares
  mws[#mws + 1] = mw
  self._chains = setmetatable({}, { __mode = "k" })
end

-- The handler wrapped in every middleware, the first given outermost,
-- built once per handler and kept.
function App:_chain(handler)
  local chain = self._chains[handler]
  if chain then return chain end
  chain = handler
  local mws = self._middlewares
  for i = #mws, 1, -1 do
    local mw, inner = mws[i], chain
    chain = function(req) return mw(req, inner) end
  end
  self._chains[handler] = chain
  return chain
end

--}======================================================================

--{======================================================================
-- Serving
--=======================================================================

--- app:start{host =, port =, reuse_port =, backlog =, ssl =,
-- shutdown_timeout =} -> a server (address, close, wait_closed)
function App:start(opts)
  return require("lasync.http.server").start(self, opts, "App:start")
end

--- app:run{...}: start, print where, serve until SIGINT or SIGTERM,
-- then close gracefully (inside or outside a lasync.run)
function App:run(opts)
  return require("lasync.http.server").run(self, opts)
end

check.guard(App)

--}======================================================================

return M
