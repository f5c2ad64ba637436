-- worker_child.lua: the worker process that examples/workers.lua starts.
--
-- A line protocol on stdin / stdout, one job at a time:
--   parent -> child   "primes <n>\n"
--   child -> parent   "<count>\n"    (how many primes are below n)
-- and the child exits (status 0) when its stdin reaches its end.
--
-- The child is an lasync process with a loop of its own. lasync has no
-- stream for its own stdin yet, and io.read blocks, so it reads each line
-- on a pool thread (lasync.to_thread): the loop stays free meanwhile.
-- Run by workers.lua; by hand: printf 'primes 100\n' | build/lasync examples/worker_child.lua
--   25

local function read_line() -- runs on a pool thread: no upvalues allowed
  return io.read("l")
end

local function count_primes(n) -- trial division: CPU-bound on purpose
  local count = 0
  for i = 2, n - 1 do
    local prime = true
    for d = 2, math.floor(math.sqrt(i)) do
      if i % d == 0 then prime = false; break end
    end
    if prime then count = count + 1 end
  end
  return count
end

while true do
  local line = lasync.to_thread(read_line):await()
  if line == nil then break end -- the parent closed our stdin
  local n = line:match("^primes (%d+)$")
  if n then
    io.write(count_primes(tonumber(n)), "\n")
  else
    io.write("error: bad job ", ("%q"):format(line), "\n")
  end
  io.stdout:flush() -- stdout is a pipe: fully buffered
end
