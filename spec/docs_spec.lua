-- docs/api.md must document every public name, and the examples of docs/
-- must run as shown.
--
-- The rule for "documented" (luv's docscov idea):
-- * a module field k (every key of require "lasync" not starting with "_",
--   and every key of its submodules lasync.fs, lasync.subprocess,
--   lasync.ssl, lasync.http, lasync.json, lasync.pg and lasync.redis) is
--   documented when api.md contains "`lasync.k" (or "`lasync.fs.k", ...)
--   followed by a character that cannot continue a name, e.g.
--   "`lasync.sleep(delay, ...)`" or "`lasync.CancelledError`";
-- * a method m of a class is documented when api.md contains "`r:m(" with
--   the receiver name the page uses for that class (RECEIVERS below), e.g.
--   "`t:cancel([msg])`". A Task method shared with futures needs both
--   "`t:done(" and "`f:done(".
-- The classes are found at run time: every metatable named lasync.* in the
-- registry (the C classes) and the metatables of TaskGroup, Condition and
-- Barrier objects (the Lua ones); a class with no receiver name here fails
-- the spec, so a new class cannot go undocumented. Method names are read
-- from the method tables (__index, or _methods where __index is a
-- function); names starting with "_" (metamethods, internals) are left
-- out. A receiver standing for several classes covers the methods of all.
--
-- Conversely, every "`lasync.name(" and "`r:name(" span for those receivers
-- must name something that exists.
--
-- Examples: every ```lua block of docs/*.md and README.md is run, with
-- stock lua5.4 when it contains `require "lasync"`, else with the lasync
-- command. It must exit 0; if it has "--> text" comments, its stdout must
-- be the lines they give, in order (runs of white space compare equal);
-- each "--! text" comment is a string its stderr must contain. A block that
-- cannot run alone (it needs a C host, say) starts with the line
-- "-- fragment: <why>" and is not run; there may be at most MAX_FRAGMENTS.
local helper = require "helper"
local lasync = helper.lasync

local here = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") or ""
local doc_path = here .. "../docs/api.md"
local MAX_FRAGMENTS = 3

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local doc = read(doc_path)
local _ = lasync.http -- loaded on first use: load it, so that it is checked

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

-- class -> the receiver name api.md uses for its objects
local RECEIVERS = {
  ["lasync.Task"] = "t", ["lasync.Future"] = "f", ["lasync.Loop"] = "loop",
  ["lasync.Handle"] = "h", ["lasync.TaskGroup"] = "tg",
  ["lasync.Queue"] = "q", ["lasync.LifoQueue"] = "q",
  ["lasync.PriorityQueue"] = "q", ["lasync.Lock"] = "lock",
  ["lasync.Semaphore"] = "sem", ["lasync.BoundedSemaphore"] = "sem",
  ["lasync.Event"] = "e", ["lasync.Condition"] = "c",
  ["lasync.Barrier"] = "b", ["lasync.Server"] = "server",
  ["lasync.StreamReader"] = "r", ["lasync.StreamWriter"] = "w",
  ["lasync.UdpEndpoint"] = "ep", ["lasync.File"] = "file",
  ["lasync.Process"] = "proc", ["lasync.Thread"] = "thread",
  ["lasync.SignalHandler"] = "handler", ["lasync.ssl.Context"] = "ctx",
  ["lasync.http.App"] = "app", ["lasync.http.Response"] = "resp",
  ["lasync.http.StreamResponse"] = "resp", ["lasync.http.Request"] = "req",
  ["lasync.ProcessPool"] = "pool",
  ["lasync.http.Server"] = "server", ["lasync.http.Content"] = "reader",
  ["lasync.pg.Connection"] = "db", ["lasync.pg.Statement"] = "stmt",
  ["lasync.pg.Pool"] = "pool", ["lasync.pg.Listener"] = "listener",
  ["lasync.redis.Connection"] = "red",
  ["lasync.redis.Pipeline"] = "p", ["lasync.redis.Subscription"] = "sub",
  ["lasync.redis.Pool"] = "rpool",
}
-- classes whose objects user code never gets
local INTERNAL = {
  ["lasync.WaitList"] = true, -- lasync._WaitList, inside Condition
  ["lasync.Gather"] = true,   -- what gather awaits inside; never returned
  ["lasync.http.conn"] = true, -- core._http_conn, inside lasync.http's
                               -- serve loop (docs/internals.md)
  ["lasync.http.client_parser"] = true, -- core._http_client_parser,
  ["lasync.redis.reader"] = true, -- core._resp.reader, inside lasync.redis
                                        -- inside lasync.http's Session
  ["lasync.pg.RawConnection"] = true, -- libpq's connection, inside
                                      -- lasync.pg's Connection
}

-- The classes: name -> metatable.
local function classes()
  local found = {}
  for k, v in pairs(debug.getregistry()) do
    if type(k) == "string" and k:match("^lasync%.") and type(v) == "table"
        and not INTERNAL[k] then
      found[k] = v
    end
  end
  for _, obj in ipairs { lasync.TaskGroup(), lasync.Condition(),
    lasync.Barrier(1), lasync.http.App(), lasync.http.text(""),
    lasync.http.StreamResponse() } do
    local mt = getmetatable(obj)
    found[mt.__name] = mt
  end
  -- the Lua classes of lasync.http whose objects need a server to make
  found["lasync.http.Server"] = require("lasync.http.server").Server
  found["lasync.http.Request"] = require("lasync.http.request").Request
  found["lasync.http.Content"] = require("lasync.http.request").Content
  found["lasync.ProcessPool"] = getmetatable(lasync.ProcessPool(1))
  -- lasync.pg's Lua classes (their objects need a server)
  local pg = require "lasync.pg"
  found["lasync.pg.Connection"] = pg._Connection
  found["lasync.pg.Statement"] = pg._Statement
  found["lasync.pg.Listener"] = pg._Listener
  found["lasync.pg.Pool"] = require("lasync.pg_pool").Pool
  -- lasync.redis's classes (their objects need a server)
  local redis = require "lasync.redis"
  for _, c in ipairs { "Connection", "Pipeline", "Subscription", "Pool" } do
    found["lasync.redis." .. c] = redis[c]
  end
  return found
end

-- receiver name used in api.md -> sorted method names of its classes; and
-- the list of classes that have no receiver name
local function method_tables()
  local sets, unnamed = {}, {}
  for cname, mt in pairs(classes()) do
    local r = RECEIVERS[cname]
    if not r then
      unnamed[#unnamed + 1] = cname
    else
      sets[r] = sets[r] or {}
      local where = { rawget(mt, "_methods"), rawget(mt, "__index"), mt }
      for i = 1, 3 do
        if type(where[i]) == "table" then
          for k, v in pairs(where[i]) do
            if type(k) == "string" and not k:match("^_") and
                type(v) == "function" then
              sets[r][k] = true
            end
          end
        end
      end
    end
  end
  local tables = {}
  for r, set in pairs(sets) do
    tables[r] = sorted_keys(set, all)
  end
  table.sort(unnamed)
  return tables, unnamed
end

-- Every public module field, as "lasync.k" or "lasync.fs.k".
local function module_fields()
  local names = {}
  for _, k in ipairs(sorted_keys(lasync, all)) do
    names[#names + 1] = "lasync." .. k
    if k == "fs" or k == "subprocess" or k == "ssl" or k == "http" or
        k == "json" then
      for _, sub in ipairs(sorted_keys(lasync[k], all)) do
        names[#names + 1] = "lasync." .. k .. "." .. sub
      end
    end
  end
  for _, mod in ipairs { "pg", "redis" } do
    for _, sub in ipairs(sorted_keys(require("lasync." .. mod), all)) do
      names[#names + 1] = "lasync." .. mod .. "." .. sub
    end
  end
  return names
end

describe("docs/api.md", function()
  it("documents every public field of the lasync module and its " ..
    "submodules", function()
    local missing = {}
    for _, name in ipairs(module_fields()) do
      if not doc:find("`" .. escape(name) .. "[^%w_]") then
        missing[#missing + 1] = name
      end
    end
    assert.are.same({}, missing)
  end)

  it("knows the receiver name of every class", function()
    local _, unnamed = method_tables()
    assert.are.same({}, unnamed)
  end)

  it("documents every method of every class", function()
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

-- The Markdown files whose examples run: docs/*.md and README.md.
local function example_docs()
  local names = {}
  local ls = assert(io.popen("ls " .. helper.shell_quote(here .. "../docs")))
  for name in ls:lines() do
    if name:match("%.md$") then names[#names + 1] = "docs/" .. name end
  end
  ls:close()
  names[#names + 1] = "README.md"
  return names
end

describe("the examples in docs/ and the README", function()
  local blocks, fragments = {}, {}
  for _, name in ipairs(example_docs()) do
    local text = read(here .. "../" .. name)
    for start, body in text:gmatch("()```lua\n(.-)```") do
      local _, newlines = text:sub(1, start):gsub("\n", "")
      local where = name .. ":" .. (newlines + 1)
      if body:match("^%-%- fragment: ") then
        fragments[#fragments + 1] = where
      else
        blocks[#blocks + 1] = { where = where, body = body }
      end
    end
  end

  it("are there", function()
    assert.is_true(#blocks >= 40)
  end)

  it("are few fragments", function()
    assert(#fragments <= MAX_FRAGMENTS, "fragments: " ..
      table.concat(fragments, ", "))
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
      if #expected > 0 then assert.are.same(expected, lines_of(out)) end
      for _, s in ipairs(in_stderr) do
        assert(err:find(s, 1, true), ("stderr lacks %q:\n%s"):format(s, err))
      end
    end)
  end
end)

-- }======================================================================
