-- lasync.ProcessPool: Lua functions run in worker processes (asyncio's
-- ProcessPoolExecutor). Workers are lasync/Lua processes started on
-- demand; each reads jobs from its stdin and answers on its stdout, in
-- frames of values copied as to_thread copies them (bindings/thread/
-- wire.c). A job is a task of the caller's loop that borrows a worker,
-- writes its frame and awaits the answer on the pipe, so nothing blocks
-- the loop.
local core = require "lasync.core"
local check = require "lasync.check"

local Future, is_cancelled = core.Future, core.is_cancelled
local wire_function, wire_values = core._wire_function, core._wire_values
local wire_decode, wire_note = core._wire_decode, core._wire_note
local spack, sunpack = string.pack, string.unpack
local pack, unpack = table.pack, table.unpack
local type, error, pcall, select = type, error, pcall, select

local HEADER = #spack("T", 0) -- a frame's length prefix: a size_t

-- A worker that ended while it ran a job fails that job with this error
-- (fields pid, returncode: the exit code, or minus the signal number;
-- signal: its name, when a signal ended it).
local WorkerError = core.error_class("WorkerError")

local ProcessPool = {}
ProcessPool.__index = ProcessPool
ProcessPool.__name = "lasync.ProcessPool"

local OPTIONS = { executable = true }
local WEAK = { __mode = "v" }

-- The chunk a worker runs with -e: find lasync.core where this process
-- found it, and serve jobs until stdin ends.
local function worker_chunk(ppid)
  return ("package.path = %q; package.cpath = %q; " ..
    "require(\"lasync.core\")._wire_serve(%d)"):format(package.path,
    package.cpath, ppid)
end

--- lasync.ProcessPool(n [, {executable = path}]) -> a pool of at most n
-- worker processes, started as jobs need them
local function new(n, opts)
  if math.type(n) ~= "integer" or n < 1 then
    error(("lasync.ProcessPool: n must be an integer >= 1 (got %s)")
      :format(type(n) == "number" and tostring(n) or type(n)), 2)
  end
  opts = check.options(opts, "ProcessPool", OPTIONS,
    '{executable = "/usr/bin/lasync"}')
  local exe = opts.executable
  if exe ~= nil and (type(exe) ~= "string" or exe == "" or
      exe:find("\0", 1, true)) then
    error(("lasync.ProcessPool: option 'executable' must be the path of " ..
      "a lasync or lua5.4 executable (got %s)"):format(type(exe) ==
      "string" and ("%q"):format(exe) or type(exe)), 2)
  end
  local self_exe, pid, env = core._wire_self()
  for name in pairs(env) do -- a pool's worker is no worker of lasync -w
    if name:find("^LASYNC_WORKER") then env[name] = nil end
  end
  return setmetatable({
    _max = n, _exe = exe or self_exe, _chunk = worker_chunk(pid),
    _env = env,
    _idle = {},      -- workers waiting for a job (a stack: warm ones first)
    _live = 0,       -- workers started and not ended
    _waiters = {},   -- futures of jobs waiting for a worker, FIFO
    _procs = {},     -- every process started and not yet reaped
    _pending = 0,    -- jobs submitted and not done
    _drained = nil,  -- a future set when _pending drops to 0 (close)
    _closed = false,
    -- the loop the workers' pipes and processes are on (weak: a pool
    -- does not keep a closed loop alive)
    _loop = setmetatable({}, WEAK),
  }, ProcessPool)
end

function ProcessPool:__tostring()
  return ("lasync.ProcessPool: %d/%d worker%s, %d job%s%s"):format(
    self._live, self._max, self._max == 1 and "" or "s", self._pending,
    self._pending == 1 and "" or "s", self._closed and " (closed)" or "")
end

--{======================================================================
-- Workers
--=======================================================================

-- Start a worker; raises the spawn's OSError.
function ProcessPool:_spawn()
  local proc = core.subprocess.exec(self._exe, { "-e", self._chunk },
    { stdin = "pipe", stdout = "pipe", env = self._env })
  self._live = self._live + 1
  for p in pairs(self._procs) do -- forget those already reaped
    if p:returncode() ~= nil then self._procs[p] = nil end
  end
  self._procs[proc] = true
  return { proc = proc, w = proc.stdin, r = proc.stdout }
end

-- An idle worker still alive, or nil; those that ended while idle (killed
-- from outside) are dropped, not handed a job.
function ProcessPool:_pop_idle()
  local idle = self._idle
  while #idle > 0 do
    local wk = table.remove(idle)
    if wk.proc:returncode() == nil then return wk end
    self._live = self._live - 1
    wk.w:abort()
  end
end

-- Hand free worker slots to the jobs waiting for one: an idle worker, or
-- a new one while fewer than n live.
function ProcessPool:_dispatch()
  local waiters = self._waiters
  while waiters[1] do
    local fut = waiters[1]
    local wk = not fut:done() and self:_pop_idle()
    if fut:done() then
      table.remove(waiters, 1)
    elseif wk then
      table.remove(waiters, 1)
      fut:set_result(wk)
    elseif self._live < self._max then
      table.remove(waiters, 1)
      local ok, wk = pcall(self._spawn, self)
      if ok then fut:set_result(wk) else fut:set_exception(wk) end
    else
      return
    end
  end
end

-- A worker for the calling job: idle, new, or the next one freed.
function ProcessPool:_acquire()
  local idle = self:_pop_idle()
  if idle then return idle end
  if self._live < self._max then return self:_spawn() end
  local fut = Future()
  self._waiters[#self._waiters + 1] = fut
  local ok, wk = pcall(fut.await, fut)
  if not ok then
    if fut:done() and not fut:cancelled() and fut:exception() == nil then
      self:_release(fut:result()) -- given to us as we were cancelled
    end
    error(wk, 0)
  end
  return wk
end

-- The job is done with worker wk, which is fine: the next job's.
function ProcessPool:_release(wk)
  self._idle[#self._idle + 1] = wk
  self:_dispatch()
  if self._closed and #self._waiters == 0 then self:_retire_idle() end
end

-- The worker wk can no longer be used (it ended, or its job was
-- cancelled in the middle): kill it and close its stdin; its slot goes to
-- a waiting job. It is reaped by libuv (close() waits for that); its
-- stdout pipe closes when the reader is collected.
function ProcessPool:_discard(wk)
  self._live = self._live - 1
  wk.proc:kill()
  wk.w:abort()
  self:_dispatch()
end

-- Once closed, idle workers are told to stop: EOF on their stdin.
function ProcessPool:_retire_idle()
  for i = #self._idle, 1, -1 do
    local wk = self._idle[i]
    self._idle[i] = nil
    self._live = self._live - 1
    wk.w:close()
  end
end

--}======================================================================

--{======================================================================
-- Jobs
--=======================================================================

-- The worker's exit, for the error of the job it was running.
local function worker_error(proc)
  local code = proc:wait()
  local pid = proc.pid
  if code < 0 then
    local name = core._wire_signame(-code)
    return WorkerError(("lasync.ProcessPool: the worker process (pid %d) " ..
      "was killed by signal %d%s while running the job"):format(pid, -code,
      name and " (" .. name .. ")" or ""),
      { pid = pid, returncode = code, signal = name })
  end
  return WorkerError(("lasync.ProcessPool: the worker process (pid %d) " ..
    "exited with status %d while running the job"):format(pid, code),
    { pid = pid, returncode = code })
end

-- Send the frame to wk and return the answer's bytes.
local function exchange(wk, frame)
  wk.w:write(frame)
  wk.w:drain()
  local len = sunpack("T", wk.r:readexactly(HEADER))
  return wk.r:readexactly(len)
end

-- The answer's values: ok, then the results or the error and traceback.
local function answer(ok, ...)
  if ok == true then return ... end
  if ok == nil then error("lasync.ProcessPool: the worker ran out of " ..
    "memory", 0) end
  local err, tb = ...
  if tb ~= nil then wire_note(err, tb) end
  error(err, 0)
end

-- A job's task body: borrow a worker, run the frame there.
local function run_job(pool, frame)
  local wk = pool:_acquire()
  local ok, bytes = pcall(exchange, wk, frame)
  if not ok then
    -- cancelled, the worker runs the job still: stop it; else it ended,
    -- or its pipes failed: it is no use either
    pool:_discard(wk)
    if is_cancelled(bytes) then
      wk = nil -- a failed task keeps its stack: not the pipes
      error(bytes, 0)
    end
    local err = worker_error(wk.proc)
    wk = nil
    error(err, 0)
  end
  local res = pack(pcall(wire_decode, bytes))
  if not res[1] then -- out of step with the worker: it is no use
    pool:_discard(wk)
    wk = nil
    error(res[2], 0)
  end
  pool:_release(wk)
  return answer(unpack(res, 2, res.n))
end

-- One fewer job pending: close() may go on when none is left.
function ProcessPool:_job_done()
  self._pending = self._pending - 1
  if self._pending == 0 and self._drained then
    self._drained:set_result()
  end
end

-- Raise unless the pool takes jobs, naming fname.
function ProcessPool:_check_open(fname)
  if self._closed then
    error(("lasync.%s: the pool is closed"):format(fname), 3)
  end
end

-- The workers belong to the loop that started them: a pool used again
-- under another loop (a later lasync.run; the first one has closed, and
-- with it the pipes) forgets them and starts new ones.
function ProcessPool:_adopt_loop()
  local loop = core.get_running_loop()
  if self._loop[1] ~= loop then
    self._loop[1], self._idle, self._live = loop, {}, 0
    self._procs, self._waiters = {}, {}
  end
end

-- Start a task running the frame.
function ProcessPool:_start(frame)
  self:_adopt_loop()
  local task = core.create_task({ name = "process_pool" }, run_job, self,
    frame)
  self._pending = self._pending + 1
  task:add_done_callback(function() self:_job_done() end)
  return task
end

-- A frame: the length, then the function and the arguments.
local function frame_of(fbytes, abytes)
  return spack("T", #fbytes + #abytes) .. fbytes .. abytes
end

--- pool:submit(fn, ...) -> a task that finishes with fn(...)'s results,
-- run in a worker process
function ProcessPool:submit(...)
  core._check_loop("ProcessPool:submit")
  self:_check_open("ProcessPool:submit")
  local fbytes -- with no fn at all, "got no value" as to_thread says
  if select("#", ...) == 0 then
    fbytes = wire_function("ProcessPool:submit")
  else
    fbytes = wire_function("ProcessPool:submit", (...))
  end
  local abytes = wire_values("ProcessPool:submit", "argument", 2,
    select(2, ...))
  return self:_start(frame_of(fbytes, abytes))
end

--- pool:map(fn, items) -> {fn(items[1]), fn(items[2]), ...}: the first
-- result of each, in order; the first error cancels the others' jobs
function ProcessPool:map(fn, items)
  if type(items) ~= "table" then
    error(("lasync.ProcessPool:map: items must be a list (got %s)")
      :format(type(items)), 2)
  end
  core._check_task("ProcessPool:map")
  self:_check_open("ProcessPool:map")
  local fbytes = wire_function("ProcessPool:map", fn)
  local n = #items
  local frames = {}
  for i = 1, n do
    frames[i] = frame_of(fbytes,
      wire_values("ProcessPool:map", "item", i, items[i]))
  end
  local tasks = {}
  for i = 1, n do tasks[i] = self:_start(frames[i]) end
  local results = { n = n }
  for i = 1, n do
    local ok, r = pcall(tasks[i].await, tasks[i])
    if not ok then
      for j = i + 1, n do tasks[j]:cancel() end
      error(r, 0)
    end
    results[i] = r
  end
  return results
end

--- pool:close(): no new jobs; waits for the jobs submitted to finish,
-- then for every worker to exit (asyncio's shutdown(wait=True))
function ProcessPool:close()
  core._check_task("ProcessPool:close")
  self:_adopt_loop()
  self._closed = true
  while self._pending > 0 do
    self._drained = self._drained or Future()
    self._drained:await()
    self._drained = nil
  end
  self:_retire_idle()
  for proc in pairs(self._procs) do
    proc:wait()
    self._procs[proc] = nil
  end
end

ProcessPool.__close = ProcessPool.close

check.guard(ProcessPool)

--}======================================================================

-- loop:run_in_executor(executor, fn, ...): a ProcessPool as the executor
-- submits to it, as asyncio's ProcessPoolExecutor; nil is the C core's
-- default executor (to_thread).
local loop_methods = core._methods("Loop")
local run_in_thread = loop_methods.run_in_executor
loop_methods.run_in_executor = check.method(loop_methods,
  "Loop:run_in_executor", function(loop, executor, ...)
    if getmetatable(executor) == ProcessPool then
      return executor:submit(...)
    elseif executor ~= nil then
      error(("lasync.Loop:run_in_executor: only the default executor " ..
        "(nil) exists, or pass a lasync.ProcessPool (got %s)")
        :format(check.typename(executor)), 2)
    end
    return run_in_thread(loop, executor, ...)
  end)

return setmetatable({ WorkerError = WorkerError }, {
  __call = function(_, ...) return new(...) end,
})
