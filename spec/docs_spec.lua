-- docs/api.md must document every public name, and the examples of docs/
-- must run as shown.
--
-- The rule for "documented" (luv's docscov idea):
-- * a module field k (every key of require "lasync" not starting with "_")
--   is documented when api.md contains "`lasync.k" followed by a character
--   that cannot continue a name, e.g. "`lasync.sleep(delay, ...)`" or
--   "`lasync.CancelledError`";
-- * a method m of Task, Future, Loop, Handle, TaskGroup, the queues or the
--   synchronisation primitives is documented when api.md contains "`r:m("
--   with the receiver name the page uses for that type: t (Task), f
--   (Future), loop (Loop), h (Handle), tg (TaskGroup), q (Queue, LifoQueue
--   and PriorityQueue), lock (Lock), sem (Semaphore and BoundedSemaphore),
--   e (Event), c (Condition), b (Barrier), e.g. "`t:cancel([msg])`". A
--   Task method shared with futures needs both "`t:done(" and "`f:done(".
-- Method names are read from live objects (their metatables' __index, or
-- the TaskGroup, Condition and Barrier metatables), so new methods are
-- caught; names starting with "_" (metamethods, internals) are left out.
-- A receiver standing for several classes covers the methods of all.
--
-- Conversely, every "`lasync.name(" and "`r:name(" span for those receivers
-- must name something that exists.
--
-- Examples: every ```lua block of docs/api.md and docs/asyncio.md is run,
-- with stock lua5.4 when it contains `require "lasync"`, else with the
-- lasync command. It must exit 0; its stdout must be the lines given by
-- its "--> text" comments, in order (runs of white space compare equal);
-- each "--! text" comment is a string its stderr must contain.
local helper = require "helper"
local lasync = helper.lasync

local here = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") or ""
local doc_path = here .. "../docs/api.md"
local example_docs = { "api.md", "asyncio.md" }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local doc = read(doc_path)

local escape = helper.escape

local function sorted_keys(t, keep)
  local names = {}
  for k, v in pairs(t) do
    if type(k) == "string" and not k:match("^_") and keep(k, v) then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  return names
end

local function all() return true end

-- receiver name used in api.md -> sorted method names of that type
local function method_tables()
  return helper.run(function()
    local loop = lasync.get_running_loop()
    local task = lasync.create_task(function() end)
    task:await()
    local handle = loop:call_later(10, function() end)
    handle:cancel()
    local function methods(obj)
      return sorted_keys(getmetatable(obj).__index, all)
    end
    local function union(...) -- the methods of several classes
      local seen, names = {}, {}
      for _, obj in ipairs({ ... }) do
        for _, m in ipairs(methods(obj)) do
          if not seen[m] then
            seen[m] = true
            names[#names + 1] = m
          end
        end
      end
      table.sort(names)
      return names
    end
    local function lua_class(obj) -- a class written in Lua
      return sorted_keys(getmetatable(obj), function(_, v)
        return type(v) == "function"
      end)
    end
    return {
      t = methods(task),
      f = methods(lasync.Future()),
      loop = methods(loop),
      h = methods(handle),
      tg = lua_class(lasync.TaskGroup()),
      q = union(lasync.Queue(), lasync.LifoQueue(), lasync.PriorityQueue()),
      lock = methods(lasync.Lock()),
      sem = union(lasync.Semaphore(), lasync.BoundedSemaphore()),
      e = methods(lasync.Event()),
      c = lua_class(lasync.Condition()),
      b = lua_class(lasync.Barrier(1)),
    }
  end, 2)
end

describe("docs/api.md", function()
  it("documents every public field of the lasync module", function()
    local missing = {}
    for _, k in ipairs(sorted_keys(lasync, all)) do
      if not doc:find("`lasync%." .. escape(k) .. "[^%w_]") then
        missing[#missing + 1] = "lasync." .. k
      end
    end
    assert.are.same({}, missing)
  end)

  it("documents every method of Task, Future, Loop, Handle, TaskGroup, " ..
    "the queues and the synchronisation primitives",
    function()
      local missing = {}
      for r, names in pairs(method_tables()) do
        for _, m in ipairs(names) do
          if not doc:find("`" .. r .. ":" .. escape(m) .. "(", 1, true) then
            missing[#missing + 1] = r .. ":" .. m
          end
        end
      end
      table.sort(missing)
      assert.are.same({}, missing)
    end)

  it("names only functions and methods that exist", function()
    local methods = method_tables()
    local known = {}
    for r, names in pairs(methods) do
      known[r] = {}
      for _, m in ipairs(names) do known[r][m] = true end
    end
    local unknown, seen = {}, {}
    local function add(name)
      if not seen[name] then
        seen[name] = true
        unknown[#unknown + 1] = name
      end
    end
    for name in doc:gmatch("`lasync%.([%a_][%w_]*)%(") do
      if lasync[name] == nil then add("lasync." .. name) end
    end
    for r, m in doc:gmatch("`(%a+):([%a_][%w_]*)%(") do
      if known[r] and not known[r][m] then add(r .. ":" .. m) end
    end
    table.sort(unknown)
    assert.are.same({}, unknown)
  end)
end)

-- {======================================================================
-- Examples
-- =======================================================================

local function normalize(s)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local function lines_of(s)
  local lines = {}
  for l in s:gmatch("([^\n]*)\n") do lines[#lines + 1] = normalize(l) end
  local last = s:match("([^\n]+)$")
  if last then lines[#lines + 1] = normalize(last) end
  return lines
end

-- Run the example source; return success, stdout and stderr.
local function run_example(source)
  local script = helper.temp_script(source)
  local runner = source:find('require "lasync"', 1, true) and "lua5.4" or
      helper.bin
  local code, out, err = helper.capture(runner .. " " .. script)
  os.remove(script)
  return code == 0, out, err
end

describe("the examples in docs/", function()
  local blocks = {}
  for _, name in ipairs(example_docs) do
    local text = read(here .. "../docs/" .. name)
    for start, body in text:gmatch("()```lua\n(.-)```") do
      local _, newlines = text:sub(1, start):gsub("\n", "")
      blocks[#blocks + 1] = { where = name .. ":" .. (newlines + 1),
        body = body }
    end
  end

  it("are there", function()
    assert.is_true(#blocks >= 40)
  end)

  for _, block in ipairs(blocks) do
    it(("run as shown (%s)"):format(block.where), function()
      local expected, in_stderr = {}, {}
      for l in block.body:gmatch("[^\n]+") do
        local out = l:match("%-%->%s?(.*)$")
        if out then expected[#expected + 1] = normalize(out) end
        local err = l:match("%-%-!%s?(.*)$")
        if err then in_stderr[#in_stderr + 1] = err end
      end
      local ok, out, err = run_example(block.body)
      assert(ok, "the example failed; stderr:\n" .. err)
      assert.are.same(expected, lines_of(out))
      for _, s in ipairs(in_stderr) do
        assert(err:find(s, 1, true), ("stderr lacks %q:\n%s"):format(s, err))
      end
    end)
  end
end)

-- }======================================================================
