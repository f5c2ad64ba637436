-- lasync.repl: the read-eval-print loop of the lasync command. It is the
-- main task; every entry runs as a task of its own on the same loop, so an
-- entry may await and tasks it spawns keep running between prompts. On a
-- terminal the input comes from host/repl.c (readline, fed by the loop);
-- otherwise lines are read from stdin and run in order until its end.
local lasync = require "lasync"

local M = {}

local PROMPT, PROMPT2 = "> ", ">> "
local HISTORY_MAX = 1000
local SHOW_DEPTH, SHOW_ITEMS = 3, 40

--{======================================================================
-- Showing values
--=======================================================================

local show

-- The text of tostring(v), or nil and why it failed. A __tostring is
-- called from here, protected, rather than through tostring: it may raise,
-- return no string, or await (this runs in the REPL's task).
local function text_of(v)
  local mt = debug.getmetatable(v)
  local f = type(mt) == "table" and rawget(mt, "__tostring")
  if not f then return tostring(v) end
  local ok, s = pcall(f, v)
  if ok and (type(s) == "string" or math.type(s)) then
    return tostring(s)
  elseif ok then
    return nil, "'__tostring' must return a string"
  elseif type(s) == "string" or math.type(s) then
    return nil, tostring(s)
  end
  return nil, ("(error object is a %s value)"):format(type(s))
end

-- The text of an error, even when its __tostring fails: the error, not
-- only the failure (lua.c's "(error object is a %s value)").
local function error_text(err)
  local text, why = text_of(err)
  return text or ("(error object is a %s value; its __tostring failed: %s)")
    :format(type(err), why)
end

local function quote(s)
  return (("%q"):format(s):gsub("\\\n", "\\n"))
end

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function show_table(t, depth, seen)
  if seen[t] then return "<cycle>" end
  if depth > SHOW_DEPTH then return "{...}" end
  seen[t] = true
  local parts, n = {}, #t
  for i = 1, math.min(n, SHOW_ITEMS) do
    parts[#parts + 1] = show(t[i], depth + 1, seen)
  end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, key_order)
  for _, k in ipairs(keys) do
    if #parts >= SHOW_ITEMS then break end
    local key = is_identifier(k) and k or "[" .. show(k, depth + 1, seen) .. "]"
    parts[#parts + 1] = key .. " = " .. show(t[k], depth + 1, seen)
  end
  if n + #keys > #parts then parts[#parts + 1] = "..." end
  seen[t] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- A value as the REPL shows it: strings quoted, tables readable to a
-- bounded depth and length, anything with __tostring through it.
function show(v, depth, seen)
  local mt = debug.getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then
    local text, why = text_of(v)
    return text or "<__tostring failed: " .. why .. ">"
  elseif type(v) == "string" then
    return quote(v)
  elseif type(v) == "table" then
    return show_table(v, depth or 1, seen or {})
  end
  return tostring(v)
end

M.show = show

-- The values of an entry, as lua5.4 prints them: tab-separated.
local function show_values(res)
  local parts = {}
  for i = 1, res.n do parts[i] = show(res[i]) end
  return table.concat(parts, "\t")
end

--}======================================================================

--{======================================================================
-- Compiling entries
--=======================================================================

-- The chunk of an entry: "=expr" and expressions return their values, as
-- in lua5.4. Returns fn, or nil, message, and whether more input could
-- complete it.
local function compile(src, chunkname)
  if src:sub(1, 1) == "=" then src = "return " .. src:sub(2) end
  local fn = load("return " .. src, chunkname)
  if fn then return fn end
  local err
  fn, err = load(src, chunkname)
  if fn then return fn end
  return nil, err, err:sub(-5) == "<eof>"
end

M.compile = compile

--}======================================================================

--{======================================================================
-- Completion
--=======================================================================

local KEYWORDS = {
  "and", "break", "do", "else", "elseif", "end", "false", "for",
  "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat",
  "return", "then", "true", "until", "while",
}

-- The value a dotted path names, without calling anything.
local function lookup(path)
  local v = _G
  for name in path:gmatch("[^.:]+") do
    if type(v) ~= "table" then return nil end
    v = rawget(v, name)
  end
  return v
end

-- Every string key of v and of its __index tables (classes, userdata).
local function fields(v, add)
  for _ = 1, 8 do
    if type(v) == "table" then
      for k, x in next, v do
        if is_identifier(k) then add(k, x) end
      end
    end
    local mt = getmetatable(v)
    if type(mt) ~= "table" or type(rawget(mt, "__index")) ~= "table" then
      return
    end
    v = rawget(mt, "__index")
  end
end

--- complete(word, line_before) -> the candidates for a word: a global
-- ("pri"), or a field or method of what a path names ("string.fo", "t:ge")
function M.complete(word)
  local path, sep, partial = word:match("^([%a_][%w_.]*)([.:])([%w_]*)$")
  local found, list = {}, {}
  local function add(name, value)
    if name:sub(1, #partial) == partial and not found[name] and
       (sep ~= ":" or type(value) == "function") then
      found[name] = true
      list[#list + 1] = (path and path .. sep or "") .. name
    end
  end
  if path then
    fields(lookup(path), add)
  elseif word:match("^[%a_]?[%w_]*$") then
    partial = word
    fields(_G, add)
    for _, k in ipairs(KEYWORDS) do add(k) end
  end
  table.sort(list)
  return list
end

--}======================================================================

--{======================================================================
-- Running entries
--=======================================================================

local function write_error(msg)
  io.stderr:write(msg, "\n")
  io.stderr:flush()
end

-- Run fn(...) as a task named `name` and show what it returned or raised.
-- Returns the task (current while it runs, for Ctrl-C to cancel).
local function run_entry(state, fn, name, ...)
  local task = lasync.spawn(fn, ...)
  task:set_name(name)
  state.entry = task
  local res = table.pack(pcall(task.await, task))
  state.entry = nil
  if task:cancelled() then -- on a terminal, after the "^C" it echoed
    write_error((state.terminal and "\n" or "") .. "lasync: interrupted")
  elseif not res[1] then
    write_error("lasync: " .. error_text(res[2]))
    local tb = task:traceback()
    -- without the frame of the command's C main function (-e, -l)
    if tb then write_error((tb:gsub("\n\t%[C%]: in %?$", ""))) end
  elseif res.n > 1 then
    state.write(show_values(table.pack(table.unpack(res, 2, res.n))) .. "\n")
  end
end

-- Run a chunk of source typed (or piped) in; false if it is incomplete.
local function eval(state, src, last)
  local fn, err, incomplete = compile(src, "=stdin")
  if incomplete and not last then return false end
  state.count = state.count + 1
  if fn then
    run_entry(state, fn, "entry-" .. state.count)
  else
    write_error("lasync: " .. err)
  end
  return true
end

-- When the REPL ends: cancel the tasks still running, let them clean up.
local function cancel_others()
  local me = lasync.current_task()
  local others = {}
  for _, t in ipairs(lasync.all_tasks()) do
    if t ~= me then
      t:cancel()
      others[#others + 1] = t
    end
  end
  if #others > 0 then
    pcall(lasync.wait, others, { timeout = 1 })
  end
end

--}======================================================================

--{======================================================================
-- The loops: on a terminal, and on piped input
--=======================================================================

local function history_file()
  local path = os.getenv("LASYNC_HISTORY")
  if path then return path ~= "" and path or nil end
  local home = os.getenv("HOME")
  return home and home .. "/.lasync_history"
end

local function banner(rl)
  rl.write(("lasync %s (%s) — entries may await; Ctrl-C cancels the " ..
    "running entry, Ctrl-D exits\n"):format(lasync._VERSION or "", _VERSION))
end

local function terminal_loop(state, rl)
  local buffer -- an incomplete entry, waiting for more lines
  while true do
    local line = rl.read(buffer and PROMPT2 or PROMPT):await()
    if line == nil then break end -- Ctrl-D, or the terminal went away
    if line == false then -- Ctrl-C at the prompt
      if state.interrupted_empty and not buffer then
        rl.write("(To exit, press Ctrl-D or call os.exit())\n")
      end
      buffer = nil
    elseif buffer or line:find("%S") then
      local src = buffer and buffer .. "\n" .. line or line
      buffer = nil
      if not eval(state, src) then
        buffer = src
      else
        rl.add_history(src)
      end
    end
  end
end

local function piped_loop(state)
  local input <close> = lasync.fs.open("/dev/stdin")
  local buffer
  for line in input:lines() do
    local src = buffer and buffer .. "\n" .. line or line
    buffer = nil
    if src:find("%S") and not eval(state, src) then buffer = src end
  end
  if buffer then eval(state, buffer, true) end -- reports what is missing
end

-- Ctrl-C: cancel the running entry, or drop the line being typed.
local function on_interrupt(state, rl)
  return function()
    if state.entry and not state.entry:done() then
      state.entry:cancel("interrupted (SIGINT)")
    else
      state.interrupted_empty = rl.interrupt()
    end
  end
end

local function terminal(state)
  local rl = require "lasync.readline"
  local history = history_file()
  local guard <close> = setmetatable({}, { __close = function()
    if history then rl.save_history(history, HISTORY_MAX) end
    rl.close()
  end })
  rl.open()
  if history then rl.load_history(history) end
  rl.set_completer(M.complete)
  state.write = rl.write
  state.terminal = true
  local print0 = print
  _G.print = function(...) -- above the prompt, not through the line
    local n, parts = select("#", ...), {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    rl.write(table.concat(parts, "\t") .. "\n")
  end
  local sigint <close> = lasync.signal("SIGINT", on_interrupt(state, rl))
  if state.first then state.first() end
  banner(rl)
  terminal_loop(state, rl)
  _G.print = print0
end

--- repl.main(first, ...): the main task of `lasync` without a script (or
-- with -i). first, if given, runs as the first entry, with the arguments
-- (the script and -e chunks); then entries come from stdin until its end.
function M.main(first, ...)
  local state = { count = 0 }
  lasync.current_task():set_name("repl")
  local args = table.pack(...)
  state.write = function(s) io.stdout:write(s) io.stdout:flush() end
  if first then
    state.first = function()
      run_entry(state, first, "main", table.unpack(args, 1, args.n))
    end
  end
  if require("lasync.readline").is_terminal() then
    terminal(state)
  else
    if state.first then state.first() end
    piped_loop(state)
  end
  cancel_others()
end

--}======================================================================

return M
