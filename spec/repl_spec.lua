-- The REPL (lasync with no script, or -i): on a real terminal, driven through
-- tmux, checking what the screen shows; and with piped input.
local helper = require "helper"
local bin, multiplier = helper.bin, helper.multiplier
local shell_quote = helper.shell_quote

-- Run `lasync args` with `input` piped in; exit status, stdout, stderr.
local piped = helper.lasync_cmd

--{======================================================================
-- A terminal: a tmux session of its own (its own server socket)
--=======================================================================

local Term = {}
Term.__index = Term

local function tmux(term, args)
  local h = io.popen(("env -u LD_PRELOAD tmux -L %s %s 2>&1"):format(
    term.socket, args))
  local out = h:read("a")
  h:close()
  return out
end

local function new_term(extra_env)
  local term = setmetatable({}, Term)
  term.socket = "lasync-spec-" .. tostring(term):match("0x(%x+)")
  term.home = os.tmpname()
  os.remove(term.home)
  os.execute("mkdir -p " .. term.home)
  local cmd = ("env HOME=%s %s %s"):format(term.home, extra_env or "", bin)
  tmux(term, ("new-session -d -x 100 -y 40 %s"):format(shell_quote(cmd)))
  return term
end

function Term:screen()
  return tmux(self, "capture-pane -p")
end

-- Type text literally (no key names), then the given keys (Enter, C-c).
function Term:send(text, keys)
  if text and text ~= "" then
    tmux(self, "send-keys -l " .. shell_quote(text))
  end
  if keys then tmux(self, "send-keys " .. keys) end
end

-- Wait until the screen shows `text` (tmux drops spaces at line ends, so
-- a prompt is ">"); returns the screen.
function Term:expect(text, timeout)
  local deadline = os.time() + (timeout or 5) * multiplier
  local screen
  repeat
    screen = self:screen()
    if screen:find(text, 1, true) then return screen end
    os.execute("sleep 0.02")
  until os.time() > deadline
  error(("expected %q on the screen:\n%s"):format(text, screen), 2)
end

local function prompts(screen)
  local n = 0
  for _ in screen:gmatch("\n>") do n = n + 1 end
  return n
end

-- Type a line and Enter, then wait for the next prompt, so that what is
-- typed next never mixes with the output of this entry.
function Term:enter(line)
  local before = prompts("\n" .. self:screen())
  self:send(line, "Enter")
  local deadline = os.time() + 5 * multiplier
  repeat
    local screen = "\n" .. self:screen()
    local last = screen:match("\n([^\n]*)\n*$")
    if prompts(screen) > before and (last == ">" or last == ">>") then
      return screen
    end
    os.execute("sleep 0.02")
  until os.time() > deadline
  error("no prompt after " .. line .. ":\n" .. self:screen(), 2)
end

function Term:alive()
  return not tmux(self, "has-session"):find("no server")
end

function Term:close()
  tmux(self, "kill-server")
  os.execute("rm -rf " .. self.home)
end

-- The lines of the screen that are not empty.
local function lines(screen)
  local out = {}
  for line in screen:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

--}======================================================================

describe("the REPL on a terminal", function()
  local term
  before_each(function()
    term = new_term()
    term:expect(">")
  end)
  after_each(function() term:close() end)

  it("prints a banner, then values of expressions, =expr and nils", function()
    term:enter("x = 1 + 2")
    term:enter("x, nil, 'a\\nb'")
    term:enter("=x * 2")
    local screen = term:expect("> =x * 2\n6\n>")
    assert.matches("^lasync %d+%.%d+%.%d+ %(Lua 5%.4%)", screen)
    -- the values are tab-separated; the screen shows the tabs as spaces
    assert.matches("> x, nil, 'a\\nb'\n3%s+nil%s+\"a\\nb\"\n", screen)
  end)

  it("shows tables readably, to a bounded depth", function()
    term:enter("{1, 'two', {a = {b = {c = {d = 1}}}}, n = 3}")
    term:expect('{1, "two", {a = {b = {...}}}, n = 3}')
  end)

  it("continues incomplete input on a second prompt", function()
    term:enter("function double(n)")
    term:expect(">>")
    term:enter("return n * 2")
    term:enter("end")
    term:enter("double(21)")
    term:expect("> double(21)\n42\n>")
  end)

  it("lets an entry await, and keeps spawned tasks running between " ..
     "prompts, printing above the line being typed", function()
    term:enter("lasync.sleep(0.05, 'slept')")
    term:expect("'slept')\n\"slept\"\n>")
    term:enter("t = lasync.spawn(function() for i = 1, 3 do " ..
               "lasync.sleep(0.05) print('tick', i) end end)")
    term:send("half typed")
    local screen = term:expect("tick    3")
    local l = lines(screen)
    assert.are.equal("> half typed", l[#l]) -- the line survives, at the end
    assert.truthy(screen:find("tick    1\ntick    2\ntick    3\n> half typed",
                              1, true))
  end)

  it("Ctrl-C cancels the running entry but not a background task",
     function()
    term:enter("bg = lasync.spawn(function() lasync.sleep(30) end)")
    term:send("lasync.sleep(30) print('not reached')", "Enter")
    os.execute("sleep 0.1")
    term:send(nil, "C-c")
    term:expect("lasync: interrupted\n>")
    term:enter("bg:done(), bg:cancelled()")
    term:expect("bg:cancelled()\nfalse   false\n>")
    local screen = term:screen()
    assert.falsy(screen:find("not reached", 1, true) and
                 not screen:find("print('not reached')", 1, true))
  end)

  it("Ctrl-C at an empty prompt says how to quit; on a typed line it " ..
     "drops the line", function()
    term:send(nil, "C-c")
    term:expect("(To exit, press Ctrl-D or call os.exit())")
    term:send("x = ") -- typed (read by readline) before the Ctrl-C: the
    term:expect("> x =") -- signal would overtake bytes still unread
    term:send(nil, "C-c")
    term:enter("1 + 1")
    term:expect("> 1 + 1\n2\n>")
    local screen = term:screen()
    local _, hints = screen:gsub("To exit", "")
    assert.are.equal(1, hints)
  end)

  it("prints errors with their traceback and goes on", function()
    term:enter("error('boom')")
    term:expect("lasync: stdin:1: boom")
    term:expect("stack traceback of task")
    term:enter("x = (1 +")
    term:expect(">>")
    term:send(nil, "C-c")
    term:enter("return +")
    term:expect("lasync: stdin:1: unexpected symbol near '+'")
    term:enter("'still here'")
    term:expect('"still here"')
  end)

  it("completes globals, fields after . and methods after :", function()
    term:send("string.for", "Tab")
    term:expect("> string.format")
    term:send("", "C-u")
    term:enter("q = lasync.Queue()")
    term:send("q:put_n", "Tab")
    term:expect("> q:put_nowait")
    term:send("", "C-u")
    term:send("coroutine.", "Tab Tab")
    local screen = term:expect("coroutine.yield")
    assert.truthy(screen:find("coroutine.wrap", 1, true))
  end)

  it("lists tasks with lasync.tasks()", function()
    term:enter("w = lasync.spawn(function() lasync.sleep(30) end)")
    term:enter("w:set_name('worker')")
    term:enter("print(lasync.tasks())")
    local screen = term:expect("worker")
    assert.truthy(screen:find("name%s+state%s+at"))
    assert.truthy(screen:find("worker%s+waiting%s+stdin:1"))
    assert.truthy(screen:find("repl%s+waiting"))
  end)

  it("exits at Ctrl-D, cancelling tasks still running, and saves the " ..
     "history", function()
    term:enter("lasync.spawn(function() local ok = pcall(lasync.sleep, 30) " ..
              "io.open(os.getenv('HOME') .. '/cleaned', 'w'):close() end)")
    term:enter("'first'")
    term:expect('"first"')
    term:send(nil, "C-d")
    local deadline = os.time() + 5 * multiplier
    while term:alive() and os.time() <= deadline do os.execute("sleep 0.02") end
    assert.is_false(term:alive())
    assert.truthy(io.open(term.home .. "/cleaned"))
    local h = assert(io.open(term.home .. "/.lasync_history"))
    local history = h:read("a")
    h:close()
    assert.truthy(history:find("'first'", 1, true))
  end)
end)

describe("the REPL with piped input", function()
  it("runs entries in order, printing values, and exits at the end",
     function()
    local code, out, err = piped("-i", table.concat({
      "x = 20",
      "x + 1",
      "t = lasync.spawn(function() lasync.sleep(0.01) return 'late' end)",
      "t:await()",
      "for i = 1, 2 do",
      "  print(i)",
      "end",
      "error('boom')",
      "'after'",
    }, "\n") .. "\n")
    assert.are.equal(0, code)
    assert.are.equal('21\n"late"\n1\n2\n"after"\n', out)
    assert.matches("^lasync: stdin:1: boom\nstack traceback", err)
  end)

  it("reports an incomplete last entry", function()
    local code, out, err = piped("-i", "x = 1\nfunction f()\n")
    assert.are.equal(0, code)
    assert.are.equal("", out)
    assert.matches("'end' expected", err)
  end)

  it("runs a script first with -i, then the entries", function()
    local script = helper.temp_script("greeting = 'hello ' .. ...\n")
    local code, out = piped("-i " .. script .. " world", "greeting\n")
    os.remove(script)
    assert.are.equal(0, code)
    assert.are.equal('"hello world"\n', out)
  end)

  it("without -i, runs stdin as one script, as lua5.4 does", function()
    local code, out = piped("", "local x = 1\nprint(x + 1)\n")
    assert.are.equal(0, code)
    assert.are.equal("2\n", out)
  end)
end)
