-- chat.lua: a chat server that broadcasts every line to all the others.
--
-- Each connection runs the handler as its own task: it reads the user's
-- name, announces them, then broadcasts every line they send until EOF.
-- Writing never waits, so one broadcast reaches every member without any
-- task waiting on a slow one. Three simulated users in the same script
-- join, talk and leave; carol leaves in the middle of writing a line: at
-- EOF, readline returns the unfinished line without its "\n", and the
-- server drops it. Each step waits until its broadcast has been delivered,
-- so the transcript is the same on every run.
-- Run: build/lasync examples/chat.lua
-- Expected output (about 0.05 s):
--   server log:
--     * alice joined
--     * bob joined
--     <alice> hi bob
--     * carol joined
--     <bob> hello both
--     <carol> see you
--     * carol left (unfinished line dropped: "I have to g")
--     <alice> bye
--     * alice left
--     * bob left
--   what each user received:
--     alice <- * bob joined
--     alice <- * carol joined
--     alice <- <bob> hello both
--     alice <- <carol> see you
--     alice <- * carol left (unfinished line dropped: "I have to g")
--     bob   <- <alice> hi bob
--     bob   <- * carol joined
--     bob   <- <carol> see you
--     bob   <- * carol left (unfinished line dropped: "I have to g")
--     bob   <- <alice> bye
--     bob   <- * alice left
--     carol <- <bob> hello both

local members, log = {}, {}    -- members: list of {name=, writer=}
local sent, delivered = 0, 0   -- lines broadcast to members / received

local function broadcast(from, text)
  log[#log + 1] = text
  for _, m in ipairs(members) do
    if m.name ~= from then
      m.writer:write(text .. "\n") -- buffered: never waits
      sent = sent + 1
    end
  end
end

local function handle(reader, writer)
  local name = reader:readline():gsub("\n$", "")
  local me = { name = name, writer = writer }
  members[#members + 1] = me
  broadcast(name, "* " .. name .. " joined")
  local farewell = "* " .. name .. " left"
  while true do
    local line = reader:readline()
    if line == "" then break end             -- EOF
    if line:sub(-1) ~= "\n" then             -- EOF in the middle of a line
      farewell = ('%s (unfinished line dropped: "%s")'):format(farewell, line)
      break
    end
    broadcast(name, ("<%s> %s"):format(name, line:sub(1, -2)))
  end
  for i, m in ipairs(members) do
    if m == me then table.remove(members, i) break end
  end
  broadcast(name, farewell)
  writer:close()
end

local server = lasync.start_server(handle, "127.0.0.1", 0)
local host, port = server:address()

-- A simulated user: a connection and a task that records what arrives.
local users = {}
local function join(name)
  local reader, writer = lasync.open_connection(host, port)
  local user = { name = name, writer = writer, received = {} }
  user.listener = lasync.spawn(function()
    while true do
      local line = reader:readline()
      if line == "" then break end
      user.received[#user.received + 1] = line:sub(1, -2)
      delivered = delivered + 1
    end
  end)
  users[#users + 1] = user
  writer:write(name .. "\n")
  return user
end

-- Run one action, then wait until the server has broadcast once more and
-- every member has received it.
local function step(action)
  local before = #log
  action()
  lasync.wait_for(function()
    while #log == before or delivered < sent do lasync.sleep(0.001) end
  end, 1)
end

local alice, bob, carol
step(function() alice = join("alice") end)
step(function() bob = join("bob") end)
step(function() alice.writer:write("hi bob\n") end)
step(function() carol = join("carol") end)
step(function() bob.writer:write("hello both\n") end)
step(function() carol.writer:write("see you\n") end)
step(function()                      -- carol leaves mid-write
  carol.writer:write("I have to g")
  carol.writer:close()
end)
step(function() alice.writer:write("bye\n") end)
step(function() alice.writer:write_eof() end) -- done talking: EOF
step(function() bob.writer:write_eof() end)

for _, u in ipairs(users) do u.listener:await() end
server:close()
server:wait_closed()

print("server log:")
for _, line in ipairs(log) do print("  " .. line) end
print("what each user received:")
for _, u in ipairs(users) do
  for _, line in ipairs(u.received) do
    print(("  %-5s <- %s"):format(u.name, line))
  end
end
