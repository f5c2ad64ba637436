-- The API fuzzer: every public function and method, found at run time in
-- the module tables and the classes' metatables, called with the bad values
-- of a fixed list (nil, booleans, 0, -1, 1.5, NaN, +-inf, maxinteger,
-- mininteger, 2^63, "", strings with NULs, a 1 MB string, tables,
-- functions, coroutines, a foreign userdata, other lasync objects as
-- `self`) in each argument position and in seeded combinations. The calls
-- run in spec/fuzz_api_driver.lua, a process of its own in a temporary
-- directory (so that paths made of numbers land there), each call in a
-- task cancelled if it waits, each target inside helper.run (watchdog,
-- anchors and loops checked). A crash ends that process; the run goes on
-- from the next target and the crash is a failure of its target.
--
-- A failure is a crash, a hang (still running 2 s after being cancelled),
-- a leak (helper.run's checks), or an error message that does not name the
-- function or method (its short name: "unlink", "put"), that is a raw Lua
-- error ("attempt to index a nil value") or that prints an address.
--
-- KNOWN lists the failures not fixed yet, by target; a target listed as a
-- crash is not run (LASYNC_FUZZ_ALL=1 runs it anyway). Remove an entry once
-- its fix has landed: the spec then reports it as fixed (pending).
local helper = require "helper"

local here = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") or "./"
if not here:match("^/") then here = os.getenv("PWD") .. "/" .. here end

-- Functions not fuzzed, because what they do with arbitrary arguments is
-- harmful by design. Keep this short.
local SKIP = {
  -- (none: the running loop is never a receiver, so nothing can stop or
  -- close it; processes and signals are the driver's own)
}

-- target -> {kind, reason}: failures known and not fixed yet (kind:
-- "crash", "hang", "leak" or "message"), each with why. Empty: every
-- failure this fuzzer found in issue 9 is fixed. Reproduce one with
-- FUZZ_ONLY=<target> (see spec/fuzz_api_driver.lua).
local KNOWN = {}

local function shell_quote(s) return helper.shell_quote(s) end

-- Run the driver from target `first`; returns its output lines, its
-- stderr and whether it ended normally.
local function run_driver(dir, first, skip)
  local lua_path = ("%s../lua/?.lua;%s../lua/?/init.lua;%s?.lua;")
      :format(here, here, here) .. (os.getenv("LUA_PATH") or ";")
  local skipfile = dir .. "/skip"
  local f = assert(io.open(skipfile, "w"))
  for name in pairs(skip) do f:write(name, "\n") end
  f:close()
  local cmd = ("cd %s && FUZZ_TMP=%s FUZZ_SKIP=\"$(cat skip)\" " ..
    "RES_OPTIONS='timeout:1 attempts:1' LUA_PATH=%s " ..
    "lua5.4 %sfuzz_api_driver.lua %d"):format(shell_quote(dir),
    shell_quote(dir), shell_quote(lua_path), here, first)
  local code, out, err, how = helper.capture(cmd)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  local ended = lines[#lines] == "end" and how == "exit" and code == 0
  return lines, err, ended, ("%s %s"):format(how, code)
end

-- The first line of a sanitizer report, or the last line of stderr.
local function crash_summary(err)
  return err:match("(SUMMARY: [^\n]*)") or err:match("(ERROR: [^\n]*)") or
      err:match("([^\n]+)\n?$") or ""
end

-- Fuzz everything; returns failures: name -> list of {kind, desc, msg}.
local function fuzz_all()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shell_quote(dir)))
  local skip = {}
  for name in pairs(SKIP) do skip[name] = true end
  if not os.getenv("LASYNC_FUZZ_ALL") then
    for name, k in pairs(KNOWN) do
      if k[1] == "crash" then skip[name] = true end
    end
  end
  local failures, ntargets, ncalls = {}, 0, 0
  local function add(name, kind, desc, msg)
    failures[name] = failures[name] or {}
    table.insert(failures[name], { kind, desc, msg })
  end
  local first = 1
  for _ = 1, 200 do -- restarts after crashes
    local lines, err, ended, status = run_driver(dir, first, skip)
    local target, index, call
    for _, l in ipairs(lines) do
      local i, name = l:match("^target (%d+) (.*)$")
      if i then
        target, index, call = name, tonumber(i), nil
        ntargets = ntargets + 1
      elseif l:match("^call ") then
        call = l:sub(6)
        ncalls = ncalls + 1
      elseif l:match("^fail ") then
        local name, kind, desc, msg = l:sub(6):match(
          "^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
        add(name, kind, desc, msg)
      end
    end
    if ended then break end
    assert(target, "the fuzzer died before its first target (" ..
      status .. "):\n" .. err)
    add(target, "crash", call or "(making the receivers)",
      status .. ": " .. crash_summary(err))
    first = index + 1
  end
  os.execute("rm -rf " .. shell_quote(dir))
  return failures, ntargets, ncalls
end

describe("the API fuzzer", function()
  local failures, ntargets, ncalls = fuzz_all()

  it("fuzzes every public function and method", function()
    -- 60 functions of lasync, fs and subprocess, and the methods and
    -- metamethods of 22 classes, when this was written
    assert.is_true(ntargets >= 250, ntargets .. " targets")
    assert.is_true(ncalls >= 10000, ncalls .. " calls")
  end)

  it("finds no failure but the known ones", function()
    local new = {}
    for name, list in pairs(failures) do
      if not KNOWN[name] then
        for _, f in ipairs(list) do
          new[#new + 1] = ("%s: %s: %s: %s"):format(name, f[1], f[2], f[3])
        end
      end
    end
    table.sort(new)
    assert(#new == 0, #new .. " failure(s):\n" .. table.concat(new, "\n"))
  end)

  local names = {}
  for name in pairs(KNOWN) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local kind, reason = KNOWN[name][1], KNOWN[name][2]
    if kind == "crash" and not os.getenv("LASYNC_FUZZ_ALL") then
      pending(("%s crashes (not run): %s"):format(name, reason))
    elseif not failures[name] then
      pending(("%s: fixed? no failure any more: remove it from KNOWN")
        :format(name))
    else
      pending(("%s: %s: %s"):format(name, kind, reason))
    end
  end
end)
