-- lasync.http.server: serving an App. One task per connection (a
-- start_server handler) loops: next request from the C parser (conn),
-- route, middlewares, handler, response written by conn, until the peer
-- or keep-alive ends it. Also the server object's graceful close and
-- app:run. The per-request path allocates nothing beyond the request
-- the parser made and the strings: one xpcall, no closures.
local lasync = require "lasync"
local core = require "lasync.core"
local check = require "lasync.check"
local request = require "lasync.http.request"
local response = require "lasync.http.response"
local url = require "lasync.http.url"
local router = require "lasync.http.router"

local type, error, tostring, pairs, setmetatable, getmetatable, xpcall,
  pcall, rawget, math_type = type, error, tostring, pairs, setmetatable,
  getmetatable, xpcall, pcall, rawget, math.type
local min, traceback, os_date = math.min, debug.traceback, os.date

local Request = request.Request
local Response, StreamResponse = response.Response, response.StreamResponse
local HTTPException = response.HTTPException
local exception_response = response.exception_response
local split_target = url.split_target
local lookup = router.lookup
local is_error, is_cancelled = lasync.is_error, lasync.is_cancelled
local current_task = lasync.current_task

local M = {}

-- The Content-Type of string answers: conn:send's last argument, so no
-- header table is walked and checked per request.
local TEXT = response.TEXT
local ERROR_500 = "500 Internal Server Error"
local FILE_CHUNK = 65536
-- Lingering close (nginx's lingering_close): a connection that ends with
-- request bytes unread (a refused request, a body not read) first shuts
-- its sending side and drops what the peer still sends, for at most
-- LINGER_TIME seconds and LINGER_BYTES bytes, so that closing does not
-- reset the connection and destroy the response before the peer reads it.
local LINGER_TIME, LINGER_BYTES = 2, 1048576

--{======================================================================
-- Sending a handler's answer
--=======================================================================

-- Whether the connection stays open after this response: the request
-- allows it and the server is not closing. Decided when the head goes.
local function keep_of(st)
  local keep = st.keep and not st.server._closing
  st.keep = keep
  return keep
end

-- A file body ({path =, offset =, length =}, from static): the head,
-- then the file read in chunks.
local function send_file(st, req, status, reason, headers, file)
  local conn, writer = st.conn, st.writer
  local head_only = req.method == "HEAD"
  local f <close> = not head_only and lasync.fs.open(file.path) or nil
  local offset, left = file.offset or 0, file.length
  local chunk = file.chunk_size or FILE_CHUNK
  if f then
    if left == nil then left = f:seek("end") - offset end
    f:seek("set", offset)
  end
  local full = conn:send_head(status, headers, left, keep_of(st), head_only,
                              reason)
  st.sent = true
  if full then writer:drain() end
  st.status, st.size = status, left
  if head_only then return end
  while left > 0 do
    local data = f:read(min(left, chunk))
    if data == "" then
      -- the file shrank under us: the promised length cannot be kept
      st.keep = false
      error(("lasync.http: %s shrank while being sent"):format(file.path), 0)
    end
    left = left - #data
    if conn:send_chunk(data) then writer:drain() end
  end
end

local static -- lasync.http.static, loaded on first use

-- The response of http.file(path): static's answer for the file, with
-- the headers given to http.file added.
local function resolve_file(req, res)
  static = static or require "lasync.http.static"
  local out = static.file_response(res.file_path, req.headers,
    { chunk_size = res.chunk_size })
  local h = out.headers or {}
  for k, v in pairs(res.headers) do h[k] = v end
  out.headers = h
  return out
end

-- A body written by a function: fn(w) with w a prepared StreamResponse.
local function send_stream(st, req, res)
  local w = StreamResponse { status = res.status, reason = res.reason,
    headers = res.headers }
  w:prepare(req)
  res.stream(w)
  w:write_eof()
  st.status = res.status
end

-- Send an HTTPException as the response.
local function send_exception(st, req, e)
  local status, reason, headers, body = exception_response(e)
  st.status, st.size = status, body and #body or 0
  local full = st.conn:send(status, headers, body or "", keep_of(st),
                            req.method == "HEAD", reason)
  st.sent = true
  if full then st.writer:drain() end
end

-- Send res, what the handler (through the middlewares) returned.
local function send(st, req, res)
  if type(res) == "string" then
    st.status, st.size = 200, #res
    local full = st.conn:send(200, nil, res, keep_of(st),
                              req.method == "HEAD", nil, TEXT)
    st.sent = true
    if full then st.writer:drain() end
    return
  end
  local mt = getmetatable(res)
  if mt == StreamResponse then
    if not res.prepared then res:prepare(req) end
    res:write_eof()
    st.status = res.status
    return
  end
  if mt ~= Response and not (mt == nil and type(res) == "table" and
      math_type(res.status) == "integer") then
    if is_error(res, HTTPException) then return send_exception(st, req, res) end
    error(("lasync.http: the handler of %s %s returned %s (expected a " ..
      "string, a Response or an HTTPException)"):format(req.method,
      req.raw_path, check.typename(res)), 0)
  end
  if res.stream then return send_stream(st, req, res) end
  if res.file_path then res = resolve_file(req, res) end
  local status, headers, file = res.status, res.headers, res.file
  if file then
    return send_file(st, req, status, res.reason, headers, file)
  end
  local body = res.body or ""
  local keep = st.keep and not st.server._closing -- keep_of, inline
  st.keep, st.status, st.size = keep, status, #body
  local full = st.conn:send(status, headers, body, keep,
                            req.method == "HEAD", res.reason)
  st.sent = true
  if full then st.writer:drain() end
end

--}======================================================================

--{======================================================================
-- One request
--=======================================================================

local function not_found()
  error(response.HTTPNotFound(), 0)
end

local function method_not_allowed(req)
  error(response.HTTPMethodNotAllowed(nil, { allowed = rawget(req,
    "_allowed") }), 0)
end

-- Route req, run its handler through the middlewares, send the answer.
local function dispatch(st, req)
  local path = req.path -- set by next_request; false: it needs decoding
  if not path then
    local qs
    path, qs = split_target(req.raw_path)
    if not path then
      st.keep = false
      req.path = nil -- as before: computed by the getter, if asked for
      return send_exception(st, req, response.HTTPBadRequest(qs))
    end
    req.path, req.query_string = path, qs
  end
  local app = st.app
  local router, method = app._router, req.method
  -- a plain path's route found here, without a call; its empty
  -- match_info is made only if asked for (Request)
  local methods = router.exact[path]
  local handler = methods and methods[method]
  if not handler then
    local info, allowed
    handler, info, allowed = lookup(router, method, path)
    if handler then
      if info then req.match_info = info end
    elseif info == 405 then
      req._allowed, handler = allowed, method_not_allowed
    else
      handler = not_found
    end
  end
  local chain = app._chains[handler] or app:_chain(handler)
  if app.handler_cancellation then st.server:_watch_peer(st) end
  local res = chain(req)
  if type(res) ~= "string" then return send(st, req, res) end
  -- the common answer, inline (send's first case)
  local keep = st.keep and not st.server._closing
  st.keep, st.status, st.size = keep, 200, #res
  local full = st.conn:send(200, nil, res, keep, req.method == "HEAD",
                            nil, TEXT)
  st.sent = true
  if full then st.writer:drain() end
end

-- A failure kept for the log: the value raised and where.
local Failure = {}

-- Message handler of the request's xpcall: HTTP exceptions and
-- cancellations pass as they are, any other error gets its traceback.
local function on_error(e)
  if is_error(e) then return e end
  return setmetatable({ value = e, traceback = traceback(tostring(e), 2) },
    Failure)
end

local PEER_GONE = { ECONNRESET = true, EPIPE = true, ECONNABORTED = true }

-- The handler (or the sending of its answer) raised err.
local function failed(st, req, err)
  if is_error(err, HTTPException) then
    if not st.sent then
      local ok, e2 = xpcall(send_exception, on_error, st, req, err)
      if ok then return end
      err = e2
    else
      st.keep = false
      return
    end
  end
  st.keep = false
  if is_cancelled(err) and current_task():cancelling() > 0 then
    error(err, 0) -- the connection's task is cancelled: end it
  end
  if is_error(err, lasync.OSError) and PEER_GONE[err.code] then return end
  local value, tb
  if getmetatable(err) == Failure then
    value, tb = err.value, err.traceback
  else
    value, tb = err, rawget(err, "traceback") or ""
  end
  st.app.logger(("lasync.http: error handling %s %s: %s\n%s"):format(
    req.method, req.raw_path, tostring(value), tb))
  if st.sent then return end -- the head went out: only closing is left
  local body = ERROR_500
  if st.app.debug then
    body = ("%s\n\n%s\n%s"):format(ERROR_500, tostring(value), tb)
  end
  st.status, st.size, st.sent = 500, #body, true
  -- protected: the peer may be gone, and the connection closes anyway
  local ok, full = pcall(st.conn.send, st.conn, 500, nil, body, false,
                         req.method == "HEAD", nil, TEXT)
  if ok and full then pcall(st.writer.drain, st.writer) end
end

-- One line in the Common Log Format for the request just answered.
local function access_log(st, req)
  local size = st.size
  local line = ('%s - - [%s] "%s %s HTTP/%s" %d %s'):format(
    req.remote, os_date("!%d/%b/%Y:%H:%M:%S +0000"), req.method,
    req.raw_path, req.version, st.status or 0,
    size and tostring(size) or "-")
  local al = st.app.access_log
  if al == true then
    st.app.logger(line)
  else
    al(line, req, st.status, size)
  end
end

-- What a 415 (an unsupported Content-Encoding) says the server decodes
-- (RFC 9110 15.5.16).
local ACCEPT_ENCODING = { ["Accept-Encoding"] = "gzip, deflate" }

-- The protocol error of a request the parser refused: its status, and the
-- connection closes.
local function refuse(st, status, msg)
  st.linger = true
  local body = ("%d: %s"):format(status, tostring(msg or ""))
  pcall(st.conn.send, st.conn, status, status == 415 and ACCEPT_ENCODING or
    nil, body, false, false, nil, TEXT)
end

-- After the request's handler returned or failed (st.req is nil again):
-- its cleanup and log line; whether the connection goes on.
local function finish(st, req)
  if st.cleanup then
    local cleanup = st.cleanup
    st.cleanup = nil
    pcall(cleanup)
  end
  if st.app.access_log then access_log(st, req) end
  if not st.keep then
    st.linger = st.linger or not st.body_done
    return false
  end
  if not st.body_done and not st.conn:discard_body() then
    st.linger = true
    return false
  end
  return true
end

-- The requests of one connection until it ends (returns), or until a
-- request fails (raises, with st.req that request): one xpcall covers
-- many requests, not one each.
local function requests(st)
  local conn, srv, app = st.conn, st.server, st.app
  local next_request = conn.next_request
  while not srv._closing do
    st.idle = true
    -- the request comes with its metatables, path, query_string and _c
    -- set (conn_opts: request_mt, headers_mt, setup_headers)
    local req, status, msg = next_request(conn, st) -- req._c = st
    st.idle = false
    if not req then
      if req == false then refuse(st, status, msg) end
      return
    end
    st.body_done = not status -- next_request's second result: has_body
    st.req, st.keep, st.sent = req, req.keep_alive, false
    dispatch(st, req)
    st.req = nil
    if st.watcher then srv:_unwatch_peer(st) end
    -- finish(st, req) only when it has something to do
    if st.cleanup or app.access_log or not st.keep or not st.body_done then
      if not finish(st, req) then return end
    end
  end
end

-- The request loop of one connection. An error with no request in
-- flight (the wait for one, finish) ends it as it came.
local function serve_requests(st)
  while true do
    local ok, err = xpcall(requests, on_error, st)
    if ok then return end
    local req = st.req
    if req == nil then
      if getmetatable(err) == Failure then err = err.value end
      error(err, 0)
    end
    st.req = nil
    if st.watcher then st.server:_unwatch_peer(st) end
    failed(st, req, err)
    if not finish(st, req) or st.server._closing then return end
  end
end

-- Drop what the peer still sends, after our last response (LINGER_TIME).
local function linger(reader, writer)
  if writer:get_extra_info("ssl_object") then return end -- no write_eof
  if not pcall(writer.write_eof, writer) then return end
  pcall(lasync.timeout, LINGER_TIME, function()
    local dropped = 0
    repeat
      local chunk = reader:read(65536)
      dropped = dropped + #chunk
    until chunk == "" or dropped > LINGER_BYTES
  end)
end

-- The start_server handler: one connection, until it ends.
local function serve(srv, reader, writer)
  local app = srv._app
  local conn = core._http_conn(reader, writer, srv._conn_opts)
  local st = { conn = conn, writer = writer, server = srv, app = app,
    task = current_task(), req = nil, keep = false, sent = false,
    idle = false, body_done = true }
  srv._conns[st] = true
  srv._nconns = srv._nconns + 1
  local ok, err = pcall(serve_requests, st)
  srv._conns[st] = nil
  if st.cleanup then pcall(st.cleanup) end
  conn:close()
  if ok and st.linger then linger(reader, writer) end
  srv._nconns = srv._nconns - 1
  if srv._closing and srv._nconns == 0 then srv:_all_closed() end
  if not ok then
    if is_error(err, lasync.OSError) and PEER_GONE[err.code] then
      writer:abort()
      return
    end
    error(err, 0)
  end
  writer:close()
end

--}======================================================================

--{======================================================================
-- The server object
--=======================================================================

local Server = { __name = "lasync.http.Server" }
Server.__index = Server
M.Server = Server

local START_OPTS = { host = true, port = true, reuse_port = true,
  backlog = true, ssl = true, shutdown_timeout = true }

--- start(app, opts, fname) -> a Server listening for app
function M.start(app, opts, fname, extra)
  opts = check.options(opts, "http." .. fname, extra or START_OPTS,
    "{host = \"127.0.0.1\", port = 8080}")
  local st = opts.shutdown_timeout
  if st ~= nil and (type(st) ~= "number" or st ~= st or st < 0) then
    error(("lasync.http.%s: option 'shutdown_timeout' must be a number " ..
      "of seconds >= 0 (got %s)"):format(fname, tostring(st)), 3)
  end
  local port = opts.port
  if port == nil then port = 8080 end
  -- the app's limits, and what makes conn hand out Requests
  local conn_opts = { request_mt = Request, headers_mt = request.HEADERS_MT,
    setup_headers = request.setup_headers }
  for k, v in pairs(app._conn_opts) do conn_opts[k] = v end
  local srv = setmetatable({ _app = app, _conns = {}, _nconns = 0,
    _conn_opts = conn_opts,
    _closing = false, _tls = opts.ssl ~= nil,
    shutdown_timeout = st or 60 }, Server)
  local ok, s = pcall(lasync.start_server, function(r, w)
    return serve(srv, r, w)
  end, opts.host, port, { reuse_port = opts.reuse_port,
    backlog = opts.backlog, ssl = opts.ssl })
  if not ok then
    if type(s) == "string" then
      s = s:gsub("^lasync%.start_server:", "lasync.http." .. fname .. ":")
      error(s, 3)
    end
    error(s, 0)
  end
  srv._srv = s
  return srv
end

function Server:__tostring()
  return ("lasync.http.Server: %d connection(s)%s"):format(self._nconns,
    self._closing and " (closing)" or "")
end

--- srv:address() -> host, port it listens on
function Server:address()
  return self._srv:address()
end

--- srv:sockets() -> {{host =, port =}, ...}
function Server:sockets()
  return self._srv:sockets()
end

--- srv:is_serving() -> whether it still accepts connections
function Server:is_serving()
  return not self._closing and self._srv:is_serving()
end

--- srv:close(): stop accepting; idle keep-alive connections close now,
-- requests in flight finish (their responses say Connection: close)
-- within shutdown_timeout seconds, then are cancelled. Never waits.
function Server:close()
  if self._closing then return end
  self._closing = true
  self._srv:close()
  for st in pairs(self._conns) do
    if st.idle then st.task:cancel("server closing") end
  end
  if self._nconns > 0 then
    self._timer = lasync.get_running_loop():call_later(self.shutdown_timeout,
      function()
        self._timer = nil
        for st in pairs(self._conns) do st.task:cancel("server closing") end
      end)
  end
end
Server.__close = Server.close

-- The last connection of a closing server has ended.
function Server:_all_closed()
  if self._timer then
    self._timer:cancel()
    self._timer = nil
  end
  if self._done and not self._done:done() then self._done:set_result() end
end

--- srv:wait_closed(): wait until the server is closed and every
-- connection has ended
function Server:wait_closed()
  self._srv:wait_closed()
  if not self._closing or self._nconns == 0 then return end
  self._done = self._done or lasync.Future()
  self._done:await()
end

-- app.handler_cancellation: while the handler runs, a task waits for the
-- peer to go away and then cancels it. The wait cannot begin while the
-- handler is suspended in a body read (conn parks a wait begun earlier
-- during reads): then it begins again once the body is read.
function Server:_watch_peer(st)
  if st.watcher then return end
  local task, req = st.task, st.req
  st.watcher = lasync.spawn(function()
    local ok = pcall(st.conn.wait_peer_close, st.conn)
    if ok and st.req == req then
      task:cancel("the client disconnected")
    elseif not ok and st.watcher == current_task() then
      st.watcher = nil -- a read is in progress: its end restarts us
    end
  end)
end

function Server:_unwatch_peer(st)
  local w = st.watcher
  st.watcher = nil
  if not w:done() then
    w:cancel()
    pcall(w.await, w)
  end
end

check.guard(Server)

--}======================================================================

--{======================================================================
-- app:run
--=======================================================================

local RUN_OPTS = { print = true }
for k in pairs(START_OPTS) do RUN_OPTS[k] = true end

local function run_main(app, opts)
  local printer = opts.print
  if printer == nil then printer = print end
  local srv = M.start(app, opts, "App:run", RUN_OPTS)
  local host, port = srv:address()
  if printer then
    if host:find(":", 1, true) then host = "[" .. host .. "]" end
    printer(("======== Running on %s://%s:%d ========"):format(
      srv._tls and "https" or "http", host, port))
  end
  local stop = lasync.Future()
  local function on_signal(name)
    if not stop:done() then stop:set_result(name) end
  end
  local int <close> = lasync.signal("SIGINT", on_signal)
  local term <close> = lasync.signal("SIGTERM", on_signal)
  local ok, err = pcall(stop.await, stop)
  int:close()
  term:close()
  srv:close()
  srv:wait_closed()
  if not ok then error(err, 0) end
end

--- run(app, opts): serve until SIGINT or SIGTERM, then close gracefully
function M.run(app, opts)
  opts = check.options(opts, "http.App:run", RUN_OPTS, "{port = 8080}")
  if opts.print ~= nil and opts.print ~= false then
    check.callable(opts.print, "http.App:run", "or false as option 'print'")
  end
  if current_task() then return run_main(app, opts) end
  return lasync.run(run_main, app, opts)
end

--}======================================================================

return M
