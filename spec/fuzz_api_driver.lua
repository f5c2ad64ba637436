-- The API fuzzer's driver (spec/fuzz_api_spec.lua runs it, in a temporary
-- directory, as a process of its own so that a crash is seen and the run
-- goes on after it). It calls every public function and method, found by
-- walking the module tables and the classes' metatables, with the values
-- of a fixed list in every argument position and in seeded combinations,
-- each call in a task of its own that is cancelled if it waits.
--
-- usage: lua5.4 fuzz_api_driver.lua [FIRST]
--   FIRST: the number of the first target to fuzz (default 1)
--   FUZZ_SKIP (environment): target names not to fuzz, one per line
--   FUZZ_ONLY (environment): the one target to fuzz
--   FUZZ_LIST=1: print the targets and the classes found, fuzz nothing
-- Output, one line each, flushed: "target N NAME" before a target, "call
-- DESC" before each call, "fail NAME<TAB>KIND<TAB>DESC<TAB>MESSAGE" for
-- every failure (KIND: message, leak, hang), "end" when all is done.
local helper = require "helper"
local lasync = helper.lasync

local pack, unpack = table.pack, table.unpack
local out = io.stdout
out:setvbuf("line")

local tmp = assert(os.getenv("FUZZ_TMP"), "FUZZ_TMP is not set")

--{======================================================================
-- The values
--=======================================================================

-- The bad values, each with its label, in a fixed order.
local huge = string.rep("x", 1 << 20)
local VALUES = {
  { "nil", nil }, { "false", false }, { "true", true },
  { "0", 0 }, { "-1", -1 }, { "1.5", 1.5 }, { "NaN", 0 / 0 },
  { "inf", math.huge }, { "-inf", -math.huge },
  { "maxinteger", math.maxinteger }, { "mininteger", math.mininteger },
  { "2^63 (float)", 2.0 ^ 63 },
  { '""', "" }, { '"\\0"', "\0" }, { '"<tmp>/nul\\0.bak"', tmp .. "/nul\0.bak" },
  { "a 1 MB string", huge },
  { "{}", {} }, { "{1, 2}", { 1, 2 } },
  { "a function", function() end },
  { "a coroutine", coroutine.create(function() end) },
  { "io.stdin", io.stdin },
}

--}======================================================================

--{======================================================================
-- The receivers: one live object of every class, made afresh per target
--=======================================================================

-- Classes whose objects user code never gets, with why.
local INTERNAL = {
  ["lasync.WaitList"] = "made by lasync._WaitList for Condition's insides",
  ["lasync.Gather"] = "the future gather awaits inside; never returned",
}

-- class name -> function(r) returning an object of that class; r holds the
-- receivers made so far and the cleanups to run.
local MAKE = {
  ["lasync.Task"] = function() return lasync.spawn(lasync.sleep, 3600) end,
  ["lasync.Future"] = function() return lasync.Future() end,
  ["lasync.Handle"] = function()
    return lasync.get_running_loop():call_later(3600, function() end)
  end,
  -- a loop of its own: the running one must not be stopped or closed
  ["lasync.Loop"] = function() return lasync.new_event_loop() end,
  ["lasync.Queue"] = function() return lasync.Queue() end,
  ["lasync.LifoQueue"] = function() return lasync.LifoQueue(2) end,
  ["lasync.PriorityQueue"] = function() return lasync.PriorityQueue() end,
  ["lasync.Lock"] = function() return lasync.Lock() end,
  ["lasync.Semaphore"] = function() return lasync.Semaphore(1) end,
  ["lasync.BoundedSemaphore"] = function()
    return lasync.BoundedSemaphore(1)
  end,
  ["lasync.Event"] = function() return lasync.Event() end,
  ["lasync.Condition"] = function() return lasync.Condition() end,
  ["lasync.Barrier"] = function() return lasync.Barrier(2) end,
  ["lasync.TaskGroup"] = function() return lasync.TaskGroup() end,
  ["lasync.File"] = function()
    local f = lasync.fs.open(tmp .. "/file", "w+")
    f:write("one\ntwo\n")
    f:seek("set")
    return f
  end,
  ["lasync.Server"] = function(r)
    r.server = r.server or lasync.start_server(function(_, w)
      w:write("hello\n")
    end, "127.0.0.1", 0)
    return r.server
  end,
  ["lasync.StreamReader"] = function(r)
    if not r.reader then
      r.reader, r.writer = lasync.open_connection(
        r["lasync.Server"]:address())
    end
    return r.reader
  end,
  ["lasync.StreamWriter"] = function(r) return r.writer end,
  -- lasync.http's connection object, on the same stream (short deadlines:
  -- a fuzzed wait ends soon)
  ["lasync.http.conn"] = function(r)
    return require("lasync.core")._http_conn(r.reader, r.writer, {
      idle_timeout = 0.05, head_timeout = 0.05, body_timeout = 0.05 })
  end,
  -- the HTTP client's response parser (no I/O of its own)
  ["lasync.http.client_parser"] = function()
    return require("lasync.core")._http_client_parser()
  end,
  -- lasync.redis's reply reader (no I/O of its own)
  ["lasync.redis.reader"] = function()
    return require("lasync.core")._resp.reader(function(m) return m end,
      false)
  end,
  -- lasync.pg's libpq connection (core._pg), closed at once: nothing
  -- listens on port 1, and a fuzzed call must not reach a server
  ["lasync.pg.RawConnection"] = function()
    local raw = require("lasync.core")._pg.start("host=127.0.0.1 port=1")
    raw:close()
    return raw
  end,
  ["lasync.UdpEndpoint"] = function()
    return lasync.open_udp { local_addr = { "127.0.0.1", 0 } }
  end,
  ["lasync.Process"] = function()
    return lasync.subprocess.exec("sleep", { "3600" }, { stdin = "pipe",
      stdout = "pipe" })
  end,
  ["lasync.Thread"] = function() return lasync.Thread(function() end) end,
  ["lasync.ssl.Context"] = function() return lasync.ssl.context() end,
  ["lasync.SignalHandler"] = function()
    return lasync.signal("SIGUSR2", function() end)
  end,
}
-- the order receivers are made in (the reader needs the server)
local ORDER = {
  "lasync.Task", "lasync.Future", "lasync.Handle", "lasync.Loop",
  "lasync.Queue", "lasync.LifoQueue", "lasync.PriorityQueue", "lasync.Lock",
  "lasync.Semaphore", "lasync.BoundedSemaphore", "lasync.Event",
  "lasync.Condition", "lasync.Barrier", "lasync.TaskGroup", "lasync.File",
  "lasync.Server", "lasync.StreamReader", "lasync.StreamWriter",
  "lasync.http.conn", "lasync.http.client_parser", "lasync.redis.reader",
  "lasync.UdpEndpoint",
  "lasync.Process", "lasync.Thread",
  "lasync.SignalHandler", "lasync.ssl.Context",
}

-- Make every receiver; returns the table name -> object.
local function make_receivers()
  local r = {}
  for _, name in ipairs(ORDER) do r[name] = MAKE[name](r) end
  return r
end

-- Undo what the receivers hold: no task, handle, process or thread is left.
local function close_receivers(r)
  local function try(f, ...) pcall(f, ...) end
  try(function() r["lasync.Task"]:cancel() end)
  try(function() r["lasync.Handle"]:cancel() end)
  try(function() r["lasync.File"]:close() end)
  try(function() r.writer:abort() end)
  try(function() r.server:close() end)
  try(function() r["lasync.UdpEndpoint"]:close() end)
  try(function() r["lasync.SignalHandler"]:close() end)
  try(function()
    local p = r["lasync.Process"]
    p:kill()
    lasync.wait_for(function() return p:wait() end, 5)
  end)
  try(function()
    local th = r["lasync.Thread"]
    th:stop()
    lasync.wait_for(function() return th:join() end, 5)
  end)
  try(function() r["lasync.Loop"]:close() end)
  try(function() r.server:wait_closed() end)
  lasync.set_debug(false) -- a call may have turned it on
  helper.settle_all(5)
end

--}======================================================================

--{======================================================================
-- The targets, found in the module tables and the metatables
--=======================================================================

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- The classes: registry metatables named lasync.*, and the Lua classes
-- found through their objects. Returns name -> metatable.
local function classes()
  local found = {}
  for k, v in pairs(debug.getregistry()) do
    if type(k) == "string" and k:match("^lasync%.") and type(v) == "table"
        and not INTERNAL[k] then
      found[k] = v
    end
  end
  helper.run(function()
    local r = make_receivers()
    for name, obj in pairs(r) do
      local mt = getmetatable(obj)
      if type(name) == "string" and name:match("^lasync%.") and
          type(mt) == "table" then
        found[name] = found[name] or mt
      end
    end
    close_receivers(r)
  end, 30)
  return found
end

-- Every target: {name =, fn =, class = (methods only), short =}.
local function targets()
  local list = {}
  local function add_module(prefix, t)
    for _, k in ipairs(sorted_keys(t)) do
      local v = t[k]
      if not k:match("^_") and callable(v) then
        list[#list + 1] = { name = prefix .. k, fn = v, short = k }
      end
    end
  end
  add_module("lasync.", lasync)
  for _, sub in ipairs(sorted_keys(lasync)) do
    if type(lasync[sub]) == "table" and not callable(lasync[sub]) then
      add_module("lasync." .. sub .. ".", lasync[sub])
    end
  end
  local found = classes()
  for _, cname in ipairs(sorted_keys(found)) do
    local mt = found[cname]
    local methods = {}
    local where = { rawget(mt, "_methods"), rawget(mt, "__index"), mt }
    for i = 1, 3 do
      local t = where[i]
      if type(t) == "table" then
        for _, m in ipairs(sorted_keys(t)) do
          if type(t[m]) == "function" and not m:match("^_[^_]") then
            methods[m] = methods[m] or t[m]
          end
        end
      end
    end
    for _, m in ipairs(sorted_keys(methods)) do
      local sep = m:match("^__") and "." or ":"
      list[#list + 1] = { name = cname .. sep .. m, fn = methods[m],
        class = cname, short = m }
    end
  end
  return list, found
end

--}======================================================================

--{======================================================================
-- Calling
--=======================================================================

local function label_of(v, r)
  for _, e in ipairs(VALUES) do
    if rawequal(e[2], v) then return e[1] end
  end
  for name, obj in pairs(r or {}) do
    if rawequal(obj, v) and name:match("^lasync%.") then
      return "<" .. name:gsub("^lasync%.", "") .. ">"
    end
  end
  return tostring(v)
end

local function describe_call(target, args, r)
  local parts = {}
  for i = 1, args.n do parts[i] = label_of(args[i], r) end
  return ("%s(%s)"):format(target.name, table.concat(parts, ", "))
end

-- The message of an error value, as a string.
local function message_of(err)
  if type(err) == "string" then return err end
  if lasync.is_error(err) then
    local ok, s = pcall(tostring, err)
    return ok and s or tostring(rawget(err, "message"))
  end
  return nil
end

-- Errors that report a state, not a bad argument: they need not name the
-- function (a get_nowait on an empty queue raises a bare QueueEmpty).
local STATE_ERRORS = {
  lasync.QueueEmpty, lasync.QueueFull, lasync.QueueShutDown,
  lasync.InvalidStateError, lasync.BrokenBarrierError, lasync.TimeoutError,
}

-- Documented aliases: an error may name the function the alias stands for.
local ALIASES = { spawn = "create_task" }

-- Whether msg names target: its short name, an alias's, or for a
-- metamethod (which no one calls by name) its class.
local function names(target, msg)
  local short = target.short
  if msg:find(short, 1, true) then return true end
  if ALIASES[short] and msg:find(ALIASES[short], 1, true) then return true end
  if short:match("^__") then
    local class = target.class:gsub("^lasync%.", "")
    return msg:find(class, 1, true) ~= nil
  end
  return false
end

-- What is wrong with the error err of a call of target, or nil.
local function judge(target, err)
  if lasync.is_cancelled(err) then return nil end
  for _, cls in ipairs(STATE_ERRORS) do
    if lasync.is_error(err, cls) then return nil end
  end
  local msg = message_of(err)
  if msg == nil then
    return ("raises a %s, not a message"):format(type(err))
  end
  if msg:find("attempt to %a+ a") then
    return "a raw Lua error: " .. msg
  end
  if msg:find("0x%x%x%x%x") then
    return "an address in the message: " .. msg
  end
  if not names(target, msg) then
    return "does not name " .. target.short .. ": " .. msg
  end
  return nil
end

local failures = 0
local function fail(target, kind, desc, msg)
  failures = failures + 1
  out:write(("fail %s\t%s\t%s\t%s\n"):format(target.name, kind, desc,
    (msg or ""):gsub("[\t\n]", " "):sub(1, 300)))
end

-- args with a fresh copy of each table of VALUES: a call may keep or
-- change a table it is given (Class(message, fields) makes `fields` the
-- error object), and a shared one would carry what it holds (a task, and
-- through it its loop) into every later call and target.
local function fresh(args)
  local copy = { n = args.n }
  for i = 1, args.n do
    local v = args[i]
    for _, e in ipairs(VALUES) do
      if type(v) == "table" and rawequal(e[2], v) then
        v = table.move(v, 1, #v, 1, {})
        break
      end
    end
    copy[i] = v
  end
  return copy
end

-- Call target with args in a task of its own; cancel it if it waits.
local function attempt(target, args, r)
  local desc = describe_call(target, args, r)
  out:write("call ", desc, "\n")
  local res
  args = fresh(args)
  local t = lasync.spawn(function()
    res = pack(pcall(target.fn, unpack(args, 1, args.n)))
  end)
  for _ = 1, 3 do
    if t:done() then break end
    lasync.sleep(0)
  end
  if not t:done() then
    t:cancel()
    pcall(lasync.wait_for, t, 2 * helper.multiplier)
    if not t:done() then
      fail(target, "hang", desc, "still running 2 s after its cancel")
      return
    end
  end
  if res and not res[1] then
    local why = judge(target, res[2])
    if why then fail(target, "message", desc, why) end
  end
end

-- A seeded generator of its own per target, so that any target can be
-- fuzzed alone with the same calls.
local function seed_of(name)
  local h = 5381
  for i = 1, #name do h = (h * 33 + name:byte(i)) % 2147483647 end
  return h
end

local function fuzz(target, r)
  local pool = {}
  for _, e in ipairs(VALUES) do pool[#pool + 1] = e[2] end
  for _, name in ipairs(ORDER) do pool[#pool + 1] = r[name] end
  local npool = #VALUES + #ORDER
  local own = target.class and r[target.class]
  if target.class then
    -- the wrong receiver: every bad value and every other object
    for _, e in ipairs(VALUES) do attempt(target, pack(e[2]), r) end
    for _, name in ipairs(ORDER) do
      if name ~= target.class then attempt(target, pack(r[name]), r) end
    end
  end
  -- the right receiver (methods), every value in each argument position
  for pos = 1, 3 do
    for _, e in ipairs(VALUES) do
      local args = { n = pos + (own and 1 or 0) }
      if own then args[1] = own end
      args[args.n] = e[2]
      attempt(target, args, r)
    end
  end
  -- combinations of several positions, objects included
  local rand = math.random
  math.randomseed(seed_of(target.name))
  for _ = 1, 12 do
    local n = rand(1, 4)
    local args = { n = n + (own and 1 or 0) }
    if own then args[1] = own end
    for i = (own and 2 or 1), args.n do args[i] = pool[rand(1, npool)] end
    attempt(target, args, r)
  end
end

--}======================================================================

local list, found = targets()
if os.getenv("FUZZ_LIST") then
  for _, cname in ipairs(sorted_keys(found)) do
    out:write("class ", cname, MAKE[cname] and "" or " (no receiver)", "\n")
  end
  for i, t in ipairs(list) do out:write("target ", i, " ", t.name, "\n") end
  out:write("end\n")
  os.exit(0)
end
for _, cname in ipairs(sorted_keys(found)) do
  if not MAKE[cname] then
    out:write("fail ", cname, "\tnew class\t-\tno receiver to fuzz it with",
      " (add it to MAKE in spec/fuzz_api_driver.lua)\n")
  end
end

local skip = {}
for name in (os.getenv("FUZZ_SKIP") or ""):gmatch("[^\n]+") do
  skip[name] = true
end
for i = tonumber(arg[1]) or 1, #list do
  local target = list[i]
  out:write("target ", i, " ", target.name, "\n")
  local only = os.getenv("FUZZ_ONLY")
  if not skip[target.name] and (not only or only == target.name) then
    local ok, err = pcall(helper.run, function()
      local r = make_receivers()
      fuzz(target, r)
      close_receivers(r)
    end, 60)
    if not ok then
      fail(target, "leak", "(after the calls)", message_of(err) or
        tostring(err))
    end
  end
end
out:write("end\n")
