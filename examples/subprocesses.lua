-- subprocesses.lua: run several commands at once and collect their output.
--
-- Ports asyncio's `await asyncio.gather(*(run(cmd) for cmd in cmds))` over
-- asyncio.create_subprocess_shell: each command runs under /bin/sh with
-- lasync.subprocess.shell, stdout and stderr as pipes, and
-- p:communicate(input) feeds its stdin, reads both pipes to their ends and
-- waits for the exit. The commands run concurrently, so the whole batch
-- takes as long as the slowest one; gather returns the results in the
-- order of the commands, whatever order they finished in. A program that
-- cannot be started raises lasync.OSError (code ENOENT).
-- Run: build/lasync examples/subprocesses.lua
-- Expected output (about 0.3 s):
--   [1] sleep 0.3; echo slow  (0.3 s, exit 0)
--       out: slow
--   [2] echo fast  (0.0 s, exit 0)
--       out: fast
--   [3] printf 'pear\napple\nfig\n' | sort  (0.0 s, exit 0)
--       out: apple | fig | pear
--   [4] tr a-z A-Z  (0.0 s, exit 0)
--       out: FED THROUGH STDIN
--   [5] sleep 0.2; echo oops >&2; exit 3  (0.2 s, exit 3)
--       err: oops
--   5 commands in 0.3 s (0.5 s one after the other)
--   exec: OSError ENOENT no-such-program

local sp = lasync.subprocess
local loop = lasync.get_running_loop()

local commands = {
  { "sleep 0.3; echo slow" },
  { "echo fast" },
  { "printf 'pear\\napple\\nfig\\n' | sort" },
  { "tr a-z A-Z", "fed through stdin\n" },      -- with input for stdin
  { "sleep 0.2; echo oops >&2; exit 3" },
}

local function run(cmd, input)
  local start = loop:time()
  local p = sp.shell(cmd, { stdin = input and "pipe" or "null",
                            stdout = "pipe", stderr = "pipe" })
  local out, err = p:communicate(input)
  return { out = out, err = err, status = p:returncode(),
           seconds = loop:time() - start }
end

local function lines(s) -- "a\nb\n" -> "a | b"
  return (s:gsub("\n$", ""):gsub("\n", " | "))
end

local start = loop:time()
local jobs = {}
for i, c in ipairs(commands) do jobs[i] = function() return run(c[1], c[2]) end end
local results = lasync.gather(jobs)
local total = loop:time() - start

for i, r in ipairs(results) do
  print(("[%d] %s  (%.1f s, exit %d)"):format(i, commands[i][1], r.seconds, r.status))
  if r.out ~= "" then print("    out: " .. lines(r.out)) end
  if r.err ~= "" then print("    err: " .. lines(r.err)) end
end
print(("%d commands in %.1f s (0.5 s one after the other)"):format(#commands, total))

local ok, e = pcall(sp.exec, "no-such-program", {})
print(("exec: %s %s %s"):format(ok and "started?!" or lasync.is_error(e, lasync.OSError)
  and "OSError" or tostring(e), e.code, e.target))
