-- lasync.redis: a Redis client on lasync's own streams. Commands are
-- encoded in C (resp.command) and replies parsed by hiredis's redisReader
-- (resp.reader, bindings/codec/resp.c); docs/internals.md says why not
-- hiredis's async context. One connection pipelines by itself: what the
-- tasks send in one turn of the loop goes out in one write, and one
-- reader task hands the replies to the callers' futures in order.
local lasync = require "lasync"
local resp = require("lasync.core")._resp
local encode = resp.command

-- The bytes of one command; a bad argument raises naming fname.
local function command(fname, ...)
  local bytes, i, tname = encode(...)
  if bytes then return bytes end
  if i == 0 then error(fname .. ": no command given", 3) end
  error(("%s: argument %d must be a string or a number (got %s)"):format(
    fname, i, tname), 3)
end

local M = {}

M.Error = lasync.error_class("redis.Error")
M.ResponseError = lasync.error_class("redis.ResponseError", M.Error)
M.ConnectionError = lasync.error_class("redis.ConnectionError", M.Error)

-- A nil element inside an array reply (a nil reply itself is nil).
M.null = setmetatable({}, {
  __name = "lasync.redis.null",
  __tostring = function() return "lasync.redis.null" end,
})

-- An error reply as a value: ResponseError with `code` its first word.
local function make_error(msg)
  return M.ResponseError(msg, { code = msg:match("^(%u+) ") })
end

local OPTS = { host = "string", port = "number", path = "string",
               password = "string", username = "string", db = "number",
               ssl = "ssl", server_hostname = "string" }
-- the options that reach C APIs reading C strings (a socket path, a name
-- to resolve, SNI); password and username go out as binary-safe RESP
local CSTRING = { host = true, path = true, server_hostname = true }

-- ssl: true (lasync's default client context), false, or a context
local function is_ssl(v)
  return type(v) == "boolean" or (type(v) == "userdata" and
    tostring(v):find("^lasync%.ssl%.Context") ~= nil)
end

local function check_opts(opts, fname)
  if type(opts) ~= "table" then
    error(("%s: options must be a table (got %s)"):format(fname,
      type(opts)), 3)
  end
  for k, v in pairs(opts) do
    local want = OPTS[k]
    if not want then
      error(("%s: unknown option '%s'"):format(fname, tostring(k)), 3)
    end
    if want == "ssl" then
      if not is_ssl(v) then
        error(("%s: option 'ssl' must be true, false or a " ..
          "lasync.ssl.context (got %s)"):format(fname, type(v)), 3)
      end
    elseif type(v) ~= want or (want == "number" and math.type(v) ~= "integer")
    then
      error(("%s: option '%s' must be a%s %s (got %s)"):format(fname, k,
        want == "number" and "n" or "", want == "number" and "integer"
        or want, math.type(v) or type(v)), 3)
    elseif CSTRING[k] and v:find("\0", 1, true) then
      error(("%s: option '%s' contains a NUL byte"):format(fname, k), 3)
    end
  end
  if opts.path and (opts.host or opts.port) then
    error(("%s: options 'path' and 'host'/'port' exclude each other")
      :format(fname), 3)
  end
  if opts.port and (opts.port < 1 or opts.port > 65535) then
    error(("%s: option 'port' must be in 1..65535 (got %d)"):format(fname,
      opts.port), 3)
  end
  if opts.db and opts.db < 0 then
    error(("%s: option 'db' must not be negative (got %d)"):format(fname,
      opts.db), 3)
  end
  if opts.username and not opts.password then
    error(("%s: option 'username' needs 'password'"):format(fname), 3)
  end
  if opts.server_hostname and not opts.ssl then
    error(("%s: option 'server_hostname' needs 'ssl'"):format(fname), 3)
  end
  if opts.path and opts.ssl == true and not opts.server_hostname then
    error(("%s: options 'path' and 'ssl' = true need option " ..
      "'server_hostname' (the name the certificate must match)")
      :format(fname), 3)
  end
end

-- The state of one socket: a link. A connection makes a new link when
-- the last one was lost; the callers of the lost one got its error.
local function fail_link(link, err)
  if link.err then return end
  link.err = err
  local pending = link.pending
  for i = link.head, link.tail do
    local fut = pending[i]
    pending[i] = nil
    if fut and not fut:done() then fut:set_exception(err) end
  end
  link.head, link.tail = 1, 0
  link.w:abort()
end

local function lost(link, cause)
  local what = link.closing and "connection closed" or "connection lost"
  if cause then
    what = what .. ": " .. tostring(cause.message or cause)
  end
  return M.ConnectionError("lasync.redis: " .. what ..
    " (the command's reply never came)", { cause = cause })
end

local function read_loop(link)
  local r, rd, pending = link.r, link.rd, link.pending
  local dispatch = rd.dispatch
  while true do
    local ok, data = pcall(r.read, r, 65536)
    if not ok or data == "" then
      fail_link(link, lost(link, not ok and data or nil))
      if not ok and lasync.is_cancelled(data) then error(data, 0) end
      return
    end
    rd:feed(data)
    local on_push = link.on_push
    if on_push then -- subscribe mode: every reply is a message
      while true do
        local got, ok2, v = pcall(rd.get, rd)
        if not got then
          fail_link(link, M.ConnectionError(ok2))
          return
        end
        if not ok2 then break end
        on_push(v)
      end
    else
      -- the replies to the callers' futures, in order, in C; a caller
      -- cancelled meanwhile has its reply dropped there, never handed
      -- to the next caller (redis-py CVE-2023-28858)
      local ok2, head, perr = pcall(dispatch, rd, pending, link.head)
      if not ok2 then
        fail_link(link, M.ConnectionError(head))
        return
      end
      link.head = head
      if perr then
        fail_link(link, M.ConnectionError("lasync.redis: protocol error: "
          .. perr))
        return
      end
    end
  end
end

local function flush(link)
  link.flushing = false
  if link.err then return end
  local out = link.out
  link.out = {}
  local ok, err = pcall(link.w.write, link.w, table.concat(out))
  if not ok then fail_link(link, lost(link, err)) end
end

-- Queue one encoded command on link; returns the future of its reply.
local Future = lasync.Future

local function send(link, bytes)
  local fut = Future()
  local out = link.out
  out[#out + 1] = bytes
  link.tail = link.tail + 1
  link.pending[link.tail] = fut
  if not link.flushing then
    link.flushing = true
    lasync.get_running_loop():call_soon(flush, link)
  end
  return fut
end

-- An error reply raises; the others (mostly strings) skip the check
local is_error, ResponseError = lasync.is_error, M.ResponseError
local function reply_of(v)
  if type(v) == "table" and is_error(v, ResponseError) then error(v, 0) end
  return v
end

local function open_link(opts, fname)
  local r, w
  local tls = opts.ssl and { ssl = opts.ssl,
    server_hostname = opts.server_hostname } or nil
  if opts.path then
    r, w = lasync.open_unix_connection(opts.path, tls)
  else
    r, w = lasync.open_connection(opts.host or "127.0.0.1",
      opts.port or 6379, tls)
  end
  local link = { r = r, w = w, rd = resp.reader(make_error, M.null),
                 pending = {}, head = 1, tail = 0, out = {} }
  link.task = lasync.spawn({ name = "lasync.redis reader" }, read_loop,
    link)
  local futs = {}
  if opts.password then
    futs[#futs + 1] = send(link, opts.username and
      command(fname, "AUTH", opts.username, opts.password) or
      command(fname, "AUTH", opts.password))
  end
  if opts.db then
    futs[#futs + 1] = send(link, command(fname, "SELECT", opts.db))
  end
  for _, f in ipairs(futs) do
    local ok, err = pcall(function() return reply_of(f:await()) end)
    if not ok then
      link.closing = true
      fail_link(link, err)
      lasync.await(link.task)
      error(err, 0)
    end
  end
  return link
end

-- The commands that change a connection's state, which a pool undoes
-- before it lends the connection again (Pool:release). Tracked when
-- sent: a refused one only costs an extra reset.
local STATE = {
  MULTI = function(link) link.multi = true end,
  EXEC = function(link) link.multi, link.watch = false, false end,
  WATCH = function(link) link.watch = true end,
  UNWATCH = function(link) link.watch = false end,
  SELECT = function(link, db) link.db = math.tointeger(tonumber(db)) end,
  SUBSCRIBE = function(link) link.pushes = true end,
}
STATE.DISCARD = STATE.EXEC
STATE.PSUBSCRIBE, STATE.SSUBSCRIBE = STATE.SUBSCRIBE, STATE.SUBSCRIBE
STATE.MONITOR = STATE.SUBSCRIBE
-- their lengths, so that most commands (GET, SET) skip string.upper
local STATE_LEN = {}
for name in pairs(STATE) do STATE_LEN[#name] = true end

local function track(link, name, arg)
  if type(name) == "string" and STATE_LEN[#name] then
    local f = STATE[name] or STATE[name:upper()]
    if f then f(link, arg) end
  end
end

local Redis = {}
Redis.__index = Redis
Redis.__name = "lasync.redis.Connection"

-- The current link, connecting again after a lost one. The tasks that
-- call meanwhile wait each on a future of its own (cancelling one must
-- not cancel the others), given the link or the attempt's error; when
-- the connecting task is cancelled, they get false and try themselves.
local function get_link(self, fname)
  while true do
    if self.closed then
      error(M.ConnectionError(fname .. ": the connection is closed"), 3)
    end
    local link = self.link
    if link and not link.err then return link end
    if not self.waiters then
      local waiters = {}
      self.waiters = waiters
      local ok, res = pcall(open_link, self.opts, fname)
      self.waiters = nil
      if ok and self.closed then -- closed while it connected
        res.closing = true
        fail_link(res, lost(res))
        lasync.await(res.task)
        ok, res = false, M.ConnectionError(fname ..
          ": the connection is closed")
      end
      if ok then self.link = res end
      local give = ok and res or not lasync.is_cancelled(res) and res
      for _, fut in ipairs(waiters) do
        if not fut:done() then
          if ok or give == false then fut:set_result(give)
          else fut:set_exception(give) end
        end
      end
      if not ok then error(res, 0) end
      return res
    end
    local fut = lasync.Future()
    self.waiters[#self.waiters + 1] = fut
    local res = fut:await()
    if res then return res end
  end
end

--- redis.connect([opts]) -> a connection
function M.connect(opts)
  opts = opts or {}
  check_opts(opts, "lasync.redis.connect")
  local copy = {}
  for k, v in pairs(opts) do copy[k] = v end
  local self = setmetatable({ opts = copy }, Redis)
  get_link(self, "lasync.redis.connect")
  return self
end

--- r:call(name, ...) -> the reply
function Redis:call(name, ...)
  local cmd = command("lasync.redis:call", name, ...)
  local link = self.link
  if not link or link.err then link = get_link(self, "lasync.redis:call") end
  track(link, name, ...)
  return reply_of(send(link, cmd):await())
end

-- Pipeline: commands gathered by fn(p), sent in one write.
local Pipeline = {}
Pipeline.__index = Pipeline
Pipeline.__name = "lasync.redis.Pipeline"

function Pipeline:call(name, ...)
  local n = #self.cmds + 1
  self.cmds[n] = command(self.fname, name, ...)
  self.names[n], self.args[n] = name, (...)
  return self
end

local function run_batch(self, fname, fn, transaction)
  if type(fn) ~= "function" then
    error(("%s: fn must be a function (got %s)"):format(fname, type(fn)),
      3)
  end
  local p = setmetatable({ cmds = {}, names = {}, args = {},
    fname = fname .. " (p:call)" }, Pipeline)
  fn(p)
  local cmds = p.cmds
  if #cmds == 0 then return { n = 0 } end
  local link = get_link(self, fname)
  local futs = {}
  if transaction then futs[0] = send(link, command(fname, "MULTI")) end
  for i, c in ipairs(cmds) do
    track(link, p.names[i], p.args[i])
    futs[i] = send(link, c)
  end
  local exec = transaction and send(link, command(fname, "EXEC"))
  local res = { n = #cmds }
  if transaction then reply_of(futs[0]:await()) end
  for i = 1, #cmds do res[i] = futs[i]:await() end
  if not transaction then return res end
  local v = reply_of(exec:await())
  if v == nil then return nil end -- a WATCHed key changed
  v.n = #v
  return v
end

--- r:pipeline(fn) -> replies {n = count}; error replies as values
function Redis:pipeline(fn)
  return run_batch(self, "lasync.redis:pipeline", fn, false)
end

--- r:transaction(fn) -> EXEC's replies, or nil when a WATCH aborted it
function Redis:transaction(fn)
  return run_batch(self, "lasync.redis:transaction", fn, true)
end

--- r:close(): closes the connection; waits for its reader task
function Redis:close()
  if self.closed then return end
  self.closed = true
  local link = self.link
  self.link = nil
  if link then
    link.closing = true
    fail_link(link, lost(link))
    if lasync.current_task() then lasync.await(link.task) end
  end
end
Redis.__close = Redis.close

-- Pub/sub: a Subscription owns a connection of its own, in subscribe
-- mode, where every reply is a pushed message (no caller waits for it).
-- A supervisor task reconnects after a lost connection and subscribes
-- again to every channel and pattern.
local Subscription = {}
Subscription.__index = Subscription
Subscription.__name = "lasync.redis.Subscription"

local function push_to(sub)
  return function(v)
    if type(v) ~= "table" then return end
    local kind = v[1]
    if kind == "message" then
      sub.queue:put_nowait({ kind = kind, channel = v[2], data = v[3] })
    elseif kind == "pmessage" then
      sub.queue:put_nowait({ kind = kind, pattern = v[2], channel = v[3],
        data = v[4] })
    end
  end
end

-- Send a (p)(un)subscribe command without a waiting caller: its replies
-- are confirmations, pushed like messages, and dropped.
local function send_raw(link, bytes)
  link.out[#link.out + 1] = bytes
  if not link.flushing then
    link.flushing = true
    lasync.get_running_loop():call_soon(flush, link)
  end
end

local function subscribe_all(sub, link)
  local chans, pats = { "SUBSCRIBE" }, { "PSUBSCRIBE" }
  for c in pairs(sub.channels) do chans[#chans + 1] = c end
  for p in pairs(sub.patterns) do pats[#pats + 1] = p end
  if #chans > 1 then
    send_raw(link, command(sub.fname, table.unpack(chans)))
  end
  if #pats > 1 then
    send_raw(link, command(sub.fname, table.unpack(pats)))
  end
end

local function attach(sub, link)
  link.on_push = push_to(sub)
  sub.link = link
  subscribe_all(sub, link)
end

local function supervise(sub)
  local delay = 0.01
  while not sub.closed do
    local link = sub.link
    if link then
      pcall(lasync.await, link.task)
      sub.link = nil
      delay = 0.01
    else
      sub.backoff = true
      lasync.sleep(delay)
      sub.backoff = false
      delay = math.min(delay * 2, 1)
      local ok, res = pcall(open_link, sub.opts, sub.fname)
      if ok then
        if sub.closed then
          res.closing = true
          fail_link(res, lost(res))
          pcall(lasync.await, res.task)
        else
          attach(sub, res)
        end
      end
    end
  end
end

local function check_names(fname, ...)
  local n = select("#", ...)
  if n == 0 then error(fname .. ": no channel given", 3) end
  for i = 1, n do
    if type((select(i, ...))) ~= "string" then
      error(("%s: argument %d must be a string (got %s)"):format(fname, i,
        type((select(i, ...)))), 3)
    end
  end
end

local function open_subscription(self, fname, set, ...)
  check_names(fname, ...)
  if self.closed then
    error(M.ConnectionError(fname .. ": the connection is closed"), 3)
  end
  local sub = setmetatable({ opts = self.opts, fname = fname,
    channels = {}, patterns = {}, queue = lasync.Queue() }, Subscription)
  for i = 1, select("#", ...) do sub[set][(select(i, ...))] = true end
  attach(sub, open_link(self.opts, fname))
  sub.task = lasync.spawn({ name = "lasync.redis subscription" },
    supervise, sub)
  return sub
end

--- red:subscribe(channel, ...) -> a Subscription on its own connection
function Redis:subscribe(...)
  return open_subscription(self, "lasync.redis:subscribe", "channels", ...)
end

--- red:psubscribe(pattern, ...) -> a Subscription on its own connection
function Redis:psubscribe(...)
  return open_subscription(self, "lasync.redis:psubscribe", "patterns",
    ...)
end

local function change(sub, fname, set, cmd, add, ...)
  check_names(fname, ...)
  if sub.closed then
    error(M.ConnectionError(fname .. ": the subscription is closed"), 3)
  end
  for i = 1, select("#", ...) do
    sub[set][(select(i, ...))] = add or nil
  end
  local link = sub.link
  if link and not link.err then
    send_raw(link, command(fname, cmd, ...))
  end
end

function Subscription:subscribe(...)
  change(self, "lasync.redis.Subscription:subscribe", "channels",
    "SUBSCRIBE", true, ...)
end

function Subscription:psubscribe(...)
  change(self, "lasync.redis.Subscription:psubscribe", "patterns",
    "PSUBSCRIBE", true, ...)
end

function Subscription:unsubscribe(...)
  change(self, "lasync.redis.Subscription:unsubscribe", "channels",
    "UNSUBSCRIBE", false, ...)
end

function Subscription:punsubscribe(...)
  change(self, "lasync.redis.Subscription:punsubscribe", "patterns",
    "PUNSUBSCRIBE", false, ...)
end

--- sub:get() -> the next message (waits)
function Subscription:get()
  if self.closed then
    error(M.ConnectionError(
      "lasync.redis.Subscription:get: the subscription is closed"), 2)
  end
  local ok, msg = pcall(self.queue.get, self.queue)
  if ok then return msg end
  if self.closed and not lasync.is_cancelled(msg) then
    error(M.ConnectionError(
      "lasync.redis.Subscription:get: the subscription is closed"), 2)
  end
  error(msg, 0)
end

--- sub:messages() -> an iterator for a generic for; ends at close
function Subscription:messages()
  return function()
    if self.closed then return nil end
    local ok, msg = pcall(self.get, self)
    if ok then return msg end
    if self.closed and not lasync.is_cancelled(msg) then return nil end
    error(msg, 0)
  end
end

--- sub:close(): unsubscribes by closing its connection
function Subscription:close()
  if self.closed then return end
  self.closed = true
  self.queue:shutdown(true)
  local link = self.link
  if link then
    link.closing = true
    fail_link(link, lost(link))
  end
  if self.backoff then self.task:cancel() end
  if lasync.current_task() then pcall(lasync.await, self.task) end
end
Subscription.__close = Subscription.close

-- Thin methods for the common commands: r:get(k) is r:call("GET", k).
for _, name in ipairs { "get", "set", "del", "exists", "expire", "ttl",
  "incr", "incrby", "decr", "decrby", "mget", "mset", "hget", "hset",
  "hgetall", "hdel", "lpush", "rpush", "lpop", "rpop", "lrange", "llen",
  "sadd", "srem", "smembers", "sismember", "zadd", "zrange", "zscore",
  "publish", "ping", "flushdb", "keys", "watch", "unwatch" } do
  local cmd = name:upper()
  local fname = "lasync.redis:" .. name
  local state = STATE[cmd]
  Redis[name] = function(self, ...)
    -- encode at once; command() again only to raise naming fname
    local bytes = encode(cmd, ...) or command(fname, cmd, ...)
    local link = self.link -- get_link's common case, inline
    if not link or link.err then link = get_link(self, fname) end
    if state then state(link, ...) end
    return reply_of(send(link, bytes):await())
  end
end

-- A pool of connections, each lent to one task at a time (for WATCH,
-- blocking commands, SELECT); a Semaphore makes the wait FIFO and
-- cancellable. A single connection already pipelines plain commands.
local Pool = {}
Pool.__index = Pool
Pool.__name = "lasync.redis.Pool"

--- redis.pool([opts]) -> a pool; opts: connect's and `max`
function M.pool(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error(("lasync.redis.pool: options must be a table (got %s)"):format(
      type(opts)), 2)
  end
  local copy, max = {}, 10
  for k, v in pairs(opts) do
    if k == "max" then
      if math.type(v) ~= "integer" or v < 1 then
        error(("lasync.redis.pool: option 'max' must be an integer >= 1 " ..
          "(got %s)"):format(tostring(v)), 2)
      end
      max = v
    else
      copy[k] = v
    end
  end
  check_opts(copy, "lasync.redis.pool")
  return setmetatable({ opts = copy, max = max, idle = {}, count = 0,
    sem = lasync.Semaphore(max) }, Pool)
end

local function usable(red)
  return not red.closed and not (red.link and red.link.err)
end

--- pool:acquire() -> a connection, lent until pool:release(red)
function Pool:acquire()
  if self.closed then
    error(M.ConnectionError("lasync.redis.Pool:acquire: the pool is " ..
      "closed"), 2)
  end
  self.sem:acquire()
  local idle = self.idle
  while #idle > 0 do
    local red = table.remove(idle)
    if usable(red) then return red end
    red:close()
    self.count = self.count - 1
  end
  local ok, red = pcall(M.connect, self.opts)
  if not ok then
    self.sem:release()
    error(red, 0)
  end
  self.count = self.count + 1
  return red
end

-- Undo what the last borrower left on red's link (redis-py's and
-- asyncpg's reset on release): DISCARD an open MULTI (which also
-- unwatches), UNWATCH, SELECT the pool's db again. The commands are
-- queued without a caller: the next borrower's commands go after them
-- on the same link. False when red must be closed instead: its link is
-- in subscribe mode (replies come unasked), or replies are still to
-- come (a cancelled caller's, a blocking command's).
local function reset(pool, red)
  local link = red.link
  if not link then return true end
  if link.pushes or link.head <= link.tail then return false end
  local fname = "lasync.redis.Pool:release"
  local db = pool.opts.db or 0
  local function queue(...)
    link.tail = link.tail + 1
    link.pending[link.tail] = false -- its reply is read and dropped
    send_raw(link, command(fname, ...))
  end
  if link.multi then queue("DISCARD")
  elseif link.watch then queue("UNWATCH") end
  if link.db and link.db ~= db then queue("SELECT", db) end
  link.multi, link.watch, link.db = false, false, nil
  return true
end

--- pool:release(red): gives a connection back
function Pool:release(red)
  if getmetatable(red) ~= Redis then
    error(("lasync.redis.Pool:release: not a connection (got %s)"):format(
      type(red)), 2)
  end
  if self.closed or not usable(red) or not reset(self, red) then
    red:close()
    self.count = self.count - 1
  else
    self.idle[#self.idle + 1] = red
  end
  self.sem:release()
end

--- pool:with(fn, ...) -> fn(red, ...)'s results, red given back after
function Pool:with(fn, ...)
  if type(fn) ~= "function" then
    error(("lasync.redis.Pool:with: fn must be a function (got %s)")
      :format(type(fn)), 2)
  end
  local red = self:acquire()
  local res = table.pack(pcall(fn, red, ...))
  self:release(red)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- pool:call(name, ...) -> the reply, on a connection of the pool
function Pool:call(...)
  command("lasync.redis.Pool:call", ...)
  return self:with(Redis.call, ...)
end

--- pool:close(): closes the idle connections, and the others when given
--- back
function Pool:close()
  self.closed = true
  local idle = self.idle
  self.idle = {}
  for _, red in ipairs(idle) do
    red:close()
    self.count = self.count - 1
  end
end
Pool.__close = Pool.close

-- The classes, public so that user code (and docs_spec) can reach their
-- methods: getmetatable(red) == redis.Connection.
M.Connection = Redis
M.Pipeline = Pipeline
M.Subscription = Subscription
M.Pool = Pool

return M
