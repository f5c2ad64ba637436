-- Issue 9: every name an issue text or a closing note promised exists.
-- The lists below are copied from the texts of issues 2 to 6 and 9 and
-- from the closing note of issues 2-6 (`issues show N`, `issues stops`);
-- each is checked against the live module tables and the method tables
-- of the classes (C classes through their registry metatables, Lua ones
-- through an object), and the C entry points against lasync.h.
local helper = require "helper"
local lasync = helper.lasync

local here = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") or "./"

-- Module fields: "lasync.x" or "lasync.fs.x", by the issue promising them.
local FIELDS = {
  [2] = { "run", "create_task", "spawn", "await", "Future", "sleep",
    "gather", "wait", "wait_for", "shield", "as_completed", "timeout",
    "TaskGroup", "task_group", "current_task", "all_tasks",
    "get_running_loop", "new_event_loop", "CancelledError", "TimeoutError",
    "InvalidStateError", "is_cancelled", "is_timeout", "FIRST_COMPLETED",
    "FIRST_EXCEPTION", "ALL_COMPLETED", "timeout_at", "ensure_future",
    "isfuture", "error_class", "is_error", "set_debug" },
  [3] = { "Queue", "LifoQueue", "PriorityQueue", "QueueFull", "QueueEmpty",
    "QueueShutDown", "Lock", "Event", "Condition", "Semaphore",
    "BoundedSemaphore", "Barrier", "BrokenBarrierError" },
  [4] = { "open_connection", "start_server", "open_unix_connection",
    "start_unix_server", "open_udp", "getaddrinfo", "getnameinfo",
    "IncompleteReadError", "LimitOverrunError", "OSError" },
  [5] = { "fs.open", "fs.readfile", "fs.writefile", "fs.stat", "fs.lstat",
    "fs.mkdir", "fs.rmdir", "fs.unlink", "fs.rename", "fs.scandir",
    "fs.copyfile", "fs.realpath", "fs.mkdtemp", "subprocess.exec",
    "subprocess.shell", "signal", "wait_signal", "to_thread", "Thread" },
  [6] = { "tasks" },
}

-- Methods: class -> names, by the issue promising them.
local METHODS = {
  [2] = {
    Task = { "get_name", "set_name", "done", "cancelled", "cancel", "result",
      "exception", "add_done_callback", "remove_done_callback", "await",
      "cancelling", "uncancel" },
    Future = { "set_result", "set_exception", "cancel", "done", "cancelled",
      "result", "exception", "add_done_callback", "remove_done_callback",
      "await" },
    Loop = { "call_soon", "call_later", "call_at", "time", "create_future",
      "create_task", "run_until_complete", "run_forever", "stop", "close",
      "is_running", "is_closed" },
    Handle = { "cancel" },
    TaskGroup = { "spawn", "create_task", "run" },
  },
  [3] = {
    Queue = { "put", "get", "put_nowait", "get_nowait", "qsize", "empty",
      "full", "maxsize", "task_done", "join", "shutdown", "iter" },
    PriorityQueue = { "put", "get", "iter" },
    LifoQueue = { "put", "get", "iter" },
    Lock = { "acquire", "release", "locked", "with", "hold" },
    Event = { "set", "clear", "is_set", "wait" },
    Condition = { "acquire", "release", "locked", "wait", "wait_for",
      "notify", "notify_all" },
    Semaphore = { "acquire", "release", "locked", "with", "hold" },
    BoundedSemaphore = { "acquire", "release", "locked", "with", "hold" },
    Barrier = { "wait", "reset", "abort", "parties", "n_waiting", "broken" },
  },
  [4] = {
    Server = { "serve_forever", "close", "wait_closed", "is_serving",
      "address", "sockets", "__close" },
    -- lines(): promised by issue 4 and its closing note, asked again by
    -- issue 9 ("Promised and missing")
    StreamReader = { "read", "readline", "readexactly", "readuntil",
      "at_eof", "lines" },
    StreamWriter = { "write", "writelines", "drain", "write_eof",
      "can_write_eof", "close", "wait_closed", "is_closing",
      "get_extra_info", "abort", "__close" },
    UdpEndpoint = { "send", "recv", "close" },
  },
  [5] = {
    File = { "read", "read_all", "write", "lines", "seek", "sync", "close",
      "__close" },
    Process = { "wait", "communicate", "send_signal", "terminate", "kill",
      "returncode" },
    SignalHandler = { "close" },
    Loop = { "run_in_executor", "call_soon_threadsafe" },
    Thread = { "submit", "call_soon", "stop", "join" },
  },
}

-- The C entry points of lasync.h promised by issue 6's closing note.
local C_API = { "lasync_host_new", "lasync_host_state", "lasync_host_loop",
  "lasync_host_dostring", "lasync_host_dofile", "lasync_host_spawn",
  "lasync_host_result", "lasync_host_release", "lasync_host_run",
  "lasync_host_error", "lasync_host_set_warn", "lasync_host_destroy",
  "lasync_run", "lasync_completion_new", "lasync_completion_send",
  "lasync_set_warn", "lasync_uv_loop", "lasync_is_interrupt" }

-- The Lua classes have no registry metatable: one object of each.
local LUA_CLASSES = {
  TaskGroup = function() return lasync.TaskGroup() end,
  Condition = function() return lasync.Condition() end,
  Barrier = function() return lasync.Barrier(1) end,
}

-- Whether class `cname` has method (or metamethod) m.
local function has_method(cname, m)
  local mt = debug.getregistry()["lasync." .. cname]
  if LUA_CLASSES[cname] then mt = getmetatable(LUA_CLASSES[cname]()) end
  if type(mt) ~= "table" then return false end
  if m:match("^__") then return rawget(mt, m) ~= nil end
  for _, t in ipairs { rawget(mt, "_methods") or {}, rawget(mt, "__index") } do
    if type(t) == "table" and type(t[m]) == "function" then return true end
  end
  return type(rawget(mt, m)) == "function" -- a Lua class
end

local function field(path)
  local v = lasync
  for k in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[k]
  end
  return v
end

describe("issue 9: the names promised by issues 2 to 6 and 9", function()
  for _, n in ipairs { 2, 3, 4, 5, 6 } do
    it(("exist: the module fields of issue %d"):format(n), function()
      local missing = {}
      for _, name in ipairs(FIELDS[n]) do
        if field(name) == nil then missing[#missing + 1] = "lasync." .. name end
      end
      assert.are.same({}, missing)
    end)
  end

  for _, n in ipairs { 2, 3, 4, 5 } do
    it(("exist: the methods of issue %d"):format(n), function()
      local missing = {}
      for cname, names in pairs(METHODS[n]) do
        for _, m in ipairs(names) do
          if not has_method(cname, m) then
            missing[#missing + 1] = cname .. ":" .. m
          end
        end
      end
      table.sort(missing)
      assert.are.same({}, missing)
    end)
  end

  it("exist: the C entry points of issue 6 in lasync.h", function()
    local f = assert(io.open(here .. "../../host/include/lasync.h"))
    local h = f:read("a")
    f:close()
    local missing = {}
    for _, name in ipairs(C_API) do
      if not h:find("[%s*]" .. name .. "%(") then
        missing[#missing + 1] = name
      end
    end
    assert.are.same({}, missing)
  end)
end)
