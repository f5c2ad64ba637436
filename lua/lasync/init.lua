-- lasync: asyncio-style tasks for Lua 5.4.
-- Re-exports the C core (lasync.core: loop, tasks, futures, sleep, gather)
-- and adds, in Lua, what reads better here: timeouts, wait_for, wait,
-- shield, as_completed and task groups, following CPython's asyncio.
local core = require "lasync.core"
local check = require "lasync.check"

local M = {}
for k, v in pairs(core) do M[k] = v end
for k, v in pairs(require "lasync.sync") do M[k] = v end -- Condition, ...
M.fs = require "lasync.fs"                               -- readfile, ...
M.subprocess = require "lasync.subprocess"               -- communicate
M.ssl = { context = core._ssl_context }                 -- TLS contexts
M.tasks = require("lasync.introspect").tasks
M.ProcessPool = require "lasync.process_pool"          -- worker processes

local Future, current_task = core.Future, core.current_task
local get_running_loop, ensure_future = core.get_running_loop, core.ensure_future
local is_cancelled, note_traceback = core.is_cancelled, core._note_traceback
local pack, unpack = table.pack, table.unpack
local unwrap = check.unwrap
local type, error, xpcall, pcall = type, error, xpcall, pcall

M.ExceptionGroup = core.error_class("ExceptionGroup")
M.ExceptionGroup.__tostring = check.method(M.ExceptionGroup,
  "ExceptionGroup:__tostring", function(e)
    local lines = { "ExceptionGroup: " .. tostring(e.message) }
    for i, sub in ipairs(e.errors or {}) do
      lines[#lines + 1] = string.format("  [%d] %s", i, tostring(sub))
    end
    return table.concat(lines, "\n")
  end)

-- The calling task; else the error awaiting here would raise (not in a
-- task, a nested coroutine, or where it cannot suspend: a finalizer).
local function task_or_error(fname)
  core._check_task(fname, 3)
  return current_task()
end

-- Refuse the calling task itself as the awaitable aw (with `list`: as an
-- item of the list aw): it would wait for itself forever.
local function check_not_self(aw, fname, list)
  local me = current_task()
  if me == nil then return end
  if not list then
    if rawequal(aw, me) then
      error(("lasync.%s: a task cannot await itself"):format(fname), 3)
    end
  elseif type(aw) == "table" and not core.isfuture(aw) then
    for i = 1, #aw do
      if rawequal(aw[i], me) then
        error(("lasync.%s: a task cannot await itself (item #%d)")
          :format(fname, i), 3)
      end
    end
  end
end

-- Raise unless aw is awaitable (a task, future or function), naming fname.
local function check_awaitable(aw, fname)
  if type(aw) ~= "function" and not core.isfuture(aw) then
    error(("lasync.%s: %s is not awaitable (expected a task, future or " ..
      "function)"):format(fname, type(aw)), 3)
  end
end

--{======================================================================
-- Timeouts
--=======================================================================

-- Run fn(...) in the calling task; cancel it when the deadline (loop time,
-- or nil for none) passes and turn that cancellation into TimeoutError.
local function run_with_deadline(fname, when, fn, ...)
  local task = task_or_error(fname)
  local loop = get_running_loop()
  local cancelling = task:cancelling()
  local expiring = false
  local handle
  local function expire()
    expiring = true
    task:cancel()
  end
  if when and when <= loop:time() then -- already past: as asyncio, soon
    handle = loop:call_soon(expire)
  elseif when then
    handle = loop:call_at(when, expire)
  end
  local res = pack(xpcall(fn, note_traceback, ...))
  if handle then handle:cancel() end
  if expiring and task:uncancel() <= cancelling and not res[1] and
      is_cancelled(res[2]) then
    error(M.TimeoutError(nil, { cause = res[2] }), 0)
  end
  return unwrap(res)
end

--- lasync.timeout(delay, fn, ...) -> fn's results, or TimeoutError
function M.timeout(delay, fn, ...)
  check.seconds(delay, "timeout", "delay")
  check.callable(fn, "timeout", "to run within the delay, as in " ..
    "lasync.timeout(delay, fn, ...)")
  task_or_error("timeout")
  local when = delay and get_running_loop():time() + delay
  return run_with_deadline("timeout", when, fn, ...)
end

--- lasync.timeout_at(when, fn, ...): the deadline in loop:time() seconds
function M.timeout_at(when, fn, ...)
  check.seconds(when, "timeout_at", "when")
  check.callable(fn, "timeout_at", "to run until the deadline, as in " ..
    "lasync.timeout_at(when, fn, ...)")
  return run_with_deadline("timeout_at", when, fn, ...)
end

local function await_one(aw)
  if type(aw) == "function" then return aw() end
  return aw:await()
end

-- wait_for with a timeout <= 0: cancel aw, wait for it to finish, and
-- return its results (it may swallow the cancel) or turn its cancellation
-- into TimeoutError, as asyncio 3.12 does.
local function cancel_and_wait(aw)
  aw = ensure_future(aw)
  if aw:done() then return aw:result() end
  local waiter = Future()
  local function release()
    if not waiter:done() then waiter:set_result() end
  end
  aw:add_done_callback(release)
  aw:cancel()
  local ok, err = pcall(waiter.await, waiter)
  aw:remove_done_callback(release)
  if not ok then error(err, 0) end -- the caller itself was cancelled
  local res = pack(pcall(aw.result, aw))
  if not res[1] and is_cancelled(res[2]) then
    error(M.TimeoutError(nil, { cause = res[2] }), 3)
  end
  return unwrap(res)
end

--- lasync.wait_for(aw, timeout) -> aw's results; on timeout cancels aw,
-- waits for it to finish and raises TimeoutError. A function runs in the
-- calling task, as a coroutine does in asyncio 3.12.
function M.wait_for(aw, timeout)
  check_not_self(aw, "wait_for")
  check_awaitable(aw, "wait_for")
  check.seconds(timeout, "wait_for", "timeout")
  task_or_error("wait_for")
  if timeout == nil then return await_one(aw) end
  if timeout <= 0 then return cancel_and_wait(aw) end
  if type(aw) == "function" then return M.timeout(timeout, aw) end
  return M.timeout(timeout, aw.await, aw)
end

--}======================================================================

--{======================================================================
-- wait, shield, as_completed
--=======================================================================

local RETURN_WHEN = {
  FIRST_COMPLETED = true, FIRST_EXCEPTION = true, ALL_COMPLETED = true
}
M.FIRST_COMPLETED = "FIRST_COMPLETED"
M.FIRST_EXCEPTION = "FIRST_EXCEPTION"
M.ALL_COMPLETED = "ALL_COMPLETED"

-- The options of wait and as_completed. Only named: asyncio's are
-- keyword-only, and a number in their place is refused, not taken as the
-- timeout, so that a call reads the same in both.
local WAIT_OPTIONS = { timeout = true, return_when = true }
local AS_COMPLETED_OPTIONS = { timeout = true }

-- Raise unless aws is a non-empty list of awaitables, naming fname.
local function check_awaitables(aws, fname)
  if type(aws) ~= "table" or core.isfuture(aws) then
    error(("lasync.%s: expected a list of awaitables (got %s)")
      :format(fname, type(aws)), 3)
  end
  if #aws == 0 then
    error(("lasync.%s: the list of awaitables is empty"):format(fname), 3)
  end
  for i = 1, #aws do
    local aw = aws[i]
    if type(aw) ~= "function" and not core.isfuture(aw) then
      error(("lasync.%s: item #%d is not awaitable (expected a task, " ..
        "future or function, got %s)"):format(fname, i, type(aw)), 3)
    end
  end
end

-- A list of futures from a checked list of awaitables (functions become
-- tasks), each once: asyncio takes them as a set.
local function futures_of(aws)
  local futs, seen = {}, {}
  for i = 1, #aws do
    local aw = aws[i]
    if not seen[aw] then
      seen[aw] = true
      futs[#futs + 1] = ensure_future(aw)
    end
  end
  return futs
end

--- lasync.wait(aws, {timeout=, return_when=}) -> done, pending
-- Never cancels anything; on timeout returns what is done so far.
function M.wait(aws, opts)
  check_not_self(aws, "wait", true)
  check_awaitables(aws, "wait")
  opts = check.options(opts, "wait", WAIT_OPTIONS, "{timeout = 1}")
  local timeout, return_when = opts.timeout, opts.return_when or
      "ALL_COMPLETED"
  check.seconds(timeout, "wait", "timeout")
  if not RETURN_WHEN[return_when] then
    error(("lasync.wait: return_when must be lasync.FIRST_COMPLETED, " ..
      "FIRST_EXCEPTION or ALL_COMPLETED (got %s)"):format(
      type(return_when) == "string" and ("%q"):format(return_when) or
      type(return_when)), 2)
  end
  task_or_error("wait")
  local futs = futures_of(aws)
  local waiter = Future()
  local counter = #futs
  local timeout_handle
  if timeout then
    timeout_handle = get_running_loop():call_later(timeout, function()
      if not waiter:done() then waiter:set_result() end
    end)
  end
  local function on_completion(f)
    counter = counter - 1
    if counter <= 0 or return_when == "FIRST_COMPLETED" or
        (return_when == "FIRST_EXCEPTION" and not f:cancelled() and
          f:exception() ~= nil) then
      if timeout_handle then timeout_handle:cancel() end
      if not waiter:done() then waiter:set_result() end
    end
  end
  for i = 1, #futs do futs[i]:add_done_callback(on_completion) end
  local ok, err = pcall(waiter.await, waiter)
  if timeout_handle then timeout_handle:cancel() end
  for i = 1, #futs do futs[i]:remove_done_callback(on_completion) end
  if not ok then error(err, 0) end
  local done, pending = {}, {}
  for i = 1, #futs do
    local list = futs[i]:done() and done or pending
    list[#list + 1] = futs[i]
  end
  return done, pending
end

--- lasync.shield(aw) -> aw's results; cancelling the caller does not
-- cancel aw (a function is started as a task)
function M.shield(aw)
  check_not_self(aw, "shield")
  check_awaitable(aw, "shield")
  task_or_error("shield")
  local inner = ensure_future(aw)
  if inner:done() then return inner:result() end
  local outer = Future()
  inner:add_done_callback(function()
    if outer:cancelled() then
      if not inner:cancelled() then inner:exception() end -- retrieved
    elseif inner:cancelled() then
      outer:cancel()
    else
      local res = pack(pcall(inner.result, inner))
      if res[1] then
        outer:set_result(unpack(res, 2, res.n))
      else
        outer:set_exception(res[2])
      end
    end
  end)
  return outer:await()
end

--- for f in lasync.as_completed(aws, {timeout=}) do ... end
-- yields the futures (functions become tasks) as they complete; past the
-- timeout the iterator raises TimeoutError (nothing is cancelled).
function M.as_completed(aws, opts)
  check_not_self(aws, "as_completed", true)
  check_awaitables(aws, "as_completed")
  local timeout = check.options(opts, "as_completed", AS_COMPLETED_OPTIONS,
    "{timeout = 1}").timeout
  check.seconds(timeout, "as_completed", "timeout")
  task_or_error("as_completed")
  local futs = futures_of(aws)
  local todo, remaining = {}, #futs
  local finished, head, tail = {}, 1, 0
  local waiter, timed_out, timeout_handle
  local function on_completion(f)
    if not todo[f] or timed_out then return end -- late: asyncio drops it
    todo[f] = nil
    tail = tail + 1
    finished[tail] = f
    if waiter and not waiter:done() then waiter:set_result() end
  end
  for i = 1, #futs do
    todo[futs[i]] = true
    futs[i]:add_done_callback(on_completion)
  end
  if timeout then
    timeout_handle = get_running_loop():call_later(timeout, function()
      timed_out = true
      if waiter and not waiter:done() then waiter:set_result() end
    end)
  end
  return function()
    if remaining == 0 then return nil end
    if head > tail then
      if not timed_out then
        waiter = Future()
        waiter:await()
        waiter = nil
      end
      if head > tail then error(M.TimeoutError(), 2) end
    end
    local f = finished[head]
    finished[head], head, remaining = nil, head + 1, remaining - 1
    if remaining == 0 and timeout_handle then timeout_handle:cancel() end
    return f
  end
end

--}======================================================================

--{======================================================================
-- UDP
--=======================================================================

local UDP_OPTIONS = {
  local_addr = true, remote_addr = true, reuse_port = true, broadcast = true
}

-- Raise unless option `name` of open_udp is nil or {host, port}.
local function check_addr(addr, name)
  if addr == nil then return end
  if type(addr) ~= "table" or type(addr[1]) ~= "string" then
    error(("lasync.open_udp: option '%s' must be {host, port}"):format(name),
      3)
  end
  if addr[1]:find("\0", 1, true) then
    error(("lasync.open_udp: option '%s' contains an embedded NUL byte")
      :format(name), 3)
  end
  local port = addr[2]
  local int = type(port) == "number" and math.tointeger(port)
  if port ~= nil and (not int or int < 0 or int > 65535) then
    error(("lasync.open_udp: option '%s': port must be an integer from 0 " ..
      "to 65535 (got %s)"):format(name, type(port) == "number" and
      tostring(port) or type(port)), 3)
  end
end

-- Raise unless option `name` of open_udp is nil or a boolean.
local function check_flag(flag, name)
  if flag ~= nil and type(flag) ~= "boolean" then
    error(("lasync.open_udp: option '%s' must be a boolean (got %s)")
      :format(name, type(flag)), 3)
  end
end

-- {host, port} with the host resolved to a numeric address.
local function resolve_addr(addr)
  if addr == nil then return nil end
  local host, port = addr[1], addr[2] or 0
  if not host:match("^[%d.]+$") and not host:find(":", 1, true) and
      host ~= "*" then
    local found = core.getaddrinfo(host, port, { socktype = "dgram" })
    host = found[1].host
  end
  return { host, port }
end

--- lasync.open_udp{local_addr = {host, port}, remote_addr = {host, port},
-- reuse_port =, broadcast =} -> a UDP endpoint (host names are resolved)
function M.open_udp(opts)
  opts = check.options(opts, "open_udp", UDP_OPTIONS,
    "{local_addr = {\"127.0.0.1\", 0}}")
  check_addr(opts.local_addr, "local_addr")
  check_addr(opts.remote_addr, "remote_addr")
  check_flag(opts.reuse_port, "reuse_port")
  check_flag(opts.broadcast, "broadcast")
  task_or_error("open_udp")
  return core._open_udp {
    local_addr = resolve_addr(opts.local_addr),
    remote_addr = resolve_addr(opts.remote_addr),
    reuse_port = opts.reuse_port, broadcast = opts.broadcast,
  }
end

--}======================================================================

--{======================================================================
-- Task groups (asyncio.TaskGroup)
--=======================================================================

local TaskGroup = {}
TaskGroup.__index = TaskGroup
TaskGroup.__name = "lasync.TaskGroup"

--- lasync.TaskGroup() -> a task group; run its body with tg:run(fn, ...)
function M.TaskGroup()
  return setmetatable({
    _tasks = {}, _ntasks = 0, _errors = {},
    _entered = false, _exiting = false, _aborting = false,
    _parent_task = nil, _parent_cancel_requested = false,
    _on_completed = nil,
  }, TaskGroup)
end

function TaskGroup:__tostring()
  return ("lasync.TaskGroup: %d task%s%s"):format(self._ntasks,
    self._ntasks == 1 and "" or "s", self._aborting and " (aborting)" or "")
end

function TaskGroup:_abort()
  self._aborting = true
  for t in pairs(self._tasks) do
    if not t:done() then t:cancel() end
  end
end

function TaskGroup:_on_task_done(task)
  if self._tasks[task] then
    self._tasks[task] = nil
    self._ntasks = self._ntasks - 1
  end
  if self._on_completed and self._ntasks == 0 and
      not self._on_completed:done() then
    self._on_completed:set_result(true)
  end
  if task:cancelled() then return end
  local err = task:exception()
  if err == nil then return end
  self._errors[#self._errors + 1] = err
  if self._parent_task:done() then return end
  if not self._aborting and not self._parent_cancel_requested then
    -- cancel the body's current await; __exit turns it back
    self:_abort()
    self._parent_cancel_requested = true
    self._parent_task:cancel()
  end
end

-- create_task's options, checked as the C core checks them (raw), before
-- the group changes or a task is made
local TASK_OPTIONS = { name = true }
local function check_task_options(opts, fname)
  for k in next, opts do
    if not TASK_OPTIONS[k] then
      local t = type(k)
      error(("lasync.%s: unknown option %s (options are named, as in " ..
        '{name = "worker"})'):format(fname, t == "string" and "'" .. k ..
        "'" or "[" .. ((t == "number" or t == "boolean") and tostring(k) or
        t) .. "]"), 3)
    end
  end
  local name = rawget(opts, "name")
  if name ~= nil and type(name) ~= "string" and type(name) ~= "number" then
    error(("lasync.%s: option 'name' must be a string (got %s)")
      :format(fname, check.typename(name)), 3)
  end
end

--- tg:create_task([opts,] fn, ...) -> Task, a child of the group
function TaskGroup:create_task(...)
  local first = ...
  local callable = type(first) ~= "table" or
      (getmetatable(first) or {}).__call ~= nil
  check.callable(select(callable and 1 or 2, ...), "TaskGroup:create_task")
  if not callable then check_task_options(first, "TaskGroup:create_task") end
  if not self._entered then
    error("lasync.TaskGroup:create_task: the task group has not been " ..
      "entered (use tg:run or lasync.task_group)", 2)
  end
  if self._exiting and self._ntasks == 0 then
    error("lasync.TaskGroup:create_task: the task group is finished", 2)
  end
  if self._aborting then
    error("lasync.TaskGroup:create_task: the task group is shutting down", 2)
  end
  local task = core.create_task(...)
  self._tasks[task] = true
  self._ntasks = self._ntasks + 1
  task:add_done_callback(function(t) self:_on_task_done(t) end)
  return task
end
TaskGroup.spawn = TaskGroup.create_task

-- Wait for the children once the body ended (res: its xpcall results).
function TaskGroup:_exit(res)
  self._exiting = true
  local err = not res[1] and res[2] or nil
  local propagate_cancel = err ~= nil and is_cancelled(err) and err or nil
  if err ~= nil and not self._aborting then self:_abort() end
  while self._ntasks > 0 do
    self._on_completed = self._on_completed or Future()
    local ok, e = pcall(self._on_completed.await, self._on_completed)
    if not ok and not self._aborting then
      propagate_cancel = e -- the parent is cancelled from outside
      self:_abort()
    end
    self._on_completed = nil
  end
  if self._parent_cancel_requested and self._parent_task:uncancel() == 0 then
    propagate_cancel = nil
  end
  if propagate_cancel ~= nil and #self._errors == 0 then
    error(propagate_cancel, 0)
  end
  if err ~= nil and not is_cancelled(err) then
    self._errors[#self._errors + 1] = err
  end
  if #self._errors > 0 then
    if self._parent_task:cancelling() > 0 then
      -- keep an outer cancel request pending, as asyncio does
      self._parent_task:uncancel()
      self._parent_task:cancel()
    end
    local n = #self._errors
    error(M.ExceptionGroup(("unhandled errors in a TaskGroup (%d " ..
      "sub-exception%s)"):format(n, n == 1 and "" or "s"),
      { errors = self._errors }), 0)
  end
  return unwrap(res)
end

--- tg:run(body, ...) -> body's results: runs body(tg, ...) in the calling
-- task, then waits for every child; the first child error cancels the
-- others and the body, and the group raises an ExceptionGroup of them all.
function TaskGroup:run(body, ...)
  check.callable(body, "TaskGroup:run")
  if self._entered then
    error("lasync.TaskGroup:run: the task group has already been entered", 2)
  end
  self._parent_task = task_or_error("TaskGroup:run")
  self._entered = true
  return self:_exit(pack(xpcall(body, note_traceback, self, ...)))
end

--- lasync.task_group(body, ...) -> body's results (see TaskGroup:run)
function M.task_group(body, ...)
  check.callable(body, "task_group")
  return M.TaskGroup():run(body, ...)
end

check.guard(TaskGroup)

--}======================================================================

-- lasync.http and lasync.redis are loaded on their first use, so that
-- scripts that never use them do not pay for them.
setmetatable(M, { __index = function(t, k)
  if k == "http" or k == "redis" then
    local mod = require("lasync." .. k)
    rawset(t, k, mod)
    return mod
  end
end })

return M
