-- echo.lua: an echo server and its clients, asyncio's streams example.
--
-- Ports asyncio's TCP echo server and client: lasync.start_server runs the
-- handler as a task of its own for every connection; the client gets a
-- reader and a writer from lasync.open_connection. Writing never waits;
-- w:drain() waits only when too much is queued. Three clients talk to the
-- server at the same time, each with its own pause between lines; every
-- one gets its own lines back, in order.
-- The last client half-closes (w:write_eof()): the server reads to EOF,
-- says goodbye, and closes. Port 0 picks a free port.
-- Given a port (an argument, or PORT in the environment), it only serves,
-- on 127.0.0.1 at that port, until Ctrl-C, for a client of your own:
--   PORT=8888 make run SCRIPT=examples/echo.lua   (or: lasync echo.lua 8888)
--   nc 127.0.0.1 8888        (type lines; Ctrl-D half-closes)
-- Run: build/lasync examples/echo.lua
-- Expected output (about 0.1 s):
--   server: listening on 127.0.0.1 (a free port)
--   ann: sent 3 lines, got back: one | two | three
--   bob: sent 3 lines, got back: uno | dos | tres
--   cid: sent 3 lines, got back: eins | zwei | drei
--   cid: after write_eof the server said: bye, 3 lines echoed
--   server: 3 connections, 9 lines echoed, 3 closed by their clients

local echoed, closed = 0, 0

-- One task per connection: echo each line back until EOF.
local function handle(reader, writer)
  local count = 0
  while true do
    local line = reader:readline()   -- "" at EOF
    if line == "" then break end
    writer:write(line)
    writer:drain()                   -- flow control: waits if the peer is slow
    count = count + 1
    echoed = echoed + 1
  end
  closed = closed + 1
  writer:write(("bye, %d lines echoed\n"):format(count))
  writer:close()                     -- once what was written has gone out
end

-- Serve mode: a port given; Ctrl-C (SIGINT) stops the server cleanly.
local wanted = ... or os.getenv("PORT")
if wanted then
  local number = math.tointeger(tonumber(wanted))
  assert(number, "echo.lua: the port must be a number")
  -- watch SIGINT before saying where we listen: a Ctrl-C from then on
  -- stops the server
  local stop = lasync.Event()
  local sigint <close> = lasync.signal("SIGINT", function() stop:set() end)
  local server = lasync.start_server(handle, "127.0.0.1", number)
  local host, port = server:address()
  print(("server: echoing on %s:%d; try: nc %s %d (Ctrl-C stops)"):format(
    host, port, host, port))
  io.stdout:flush()
  stop:wait()
  server:close()
  server:wait_closed()
  print(("\nserver: stopped; lines echoed: %d; connections closed by " ..
    "their clients: %d"):format(echoed, closed))
  return
end

local server = lasync.start_server(handle, "127.0.0.1", 0)
local host, port = server:address()
print(("server: listening on %s (a free port)"):format(host))

local function client(name, pause, lines)
  local reader, writer = lasync.open_connection(host, port)
  local got = {}
  for _, text in ipairs(lines) do
    writer:write(text .. "\n")
    got[#got + 1] = reader:readline():gsub("\n$", "")
    lasync.sleep(pause)              -- meanwhile the others talk
  end
  writer:write_eof()                 -- no more lines: half-close
  local goodbye = reader:read()      -- read to EOF: the server's last words
  writer:close()
  return ("%s: sent %d lines, got back: %s"):format(name, #lines,
    table.concat(got, " | ")), goodbye
end

local results = lasync.gather {
  function() return { client("ann", 0.01, { "one", "two", "three" }) } end,
  function() return { client("bob", 0.02, { "uno", "dos", "tres" }) } end,
  function() return { client("cid", 0.03, { "eins", "zwei", "drei" }) } end,
}
for _, r in ipairs(results) do print(r[1]) end
io.write("cid: after write_eof the server said: ", results[3][2])

server:close()
server:wait_closed()
print(("server: %d connections, %d lines echoed, %d closed by their " ..
  "clients"):format(#results, echoed, closed))
