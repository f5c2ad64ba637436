-- pg_basics.lua: asyncpg's first example in lasync, on PostgreSQL.
--
-- asyncpg's `conn = await asyncpg.connect(user=, database=, host=)` then
-- `await conn.execute(...)`, `await conn.fetch(...)`: here pg.connect
-- takes the same settings as a table of libpq keywords (or a connection
-- string), and the calls are plain calls inside the main task. The
-- example creates a temporary table, inserts rows with $n parameters,
-- fetches them, and runs a transaction that commits and one that rolls
-- back on an error. Then two things asyncpg also does: LISTEN/NOTIFY
-- between two connections (asyncpg's add_listener; here also an
-- iterator), and COPY of a few records into the table and of a query's
-- rows out of it (asyncpg's copy_records_to_table / copy_from_query).
-- Run: build/lasync examples/pg_basics.lua ["host=/run/postgresql ..."]
-- (a libpq connection string; without one, libpq's defaults and the
-- PG* environment variables). Expected output:
--   connected: PostgreSQL 15.x
--   inserted: INSERT 0 1 (1 row)
--   ada 1815 true
--   grace 1906 true
--   alan 1912 false
--   transaction: 3 -> 4 users
--   rolled back: duplicate key value violates unique constraint ... (23505)
--   users: 4
--   notified on "signups": grace+ada
--   copied in: COPY 2
--   copied out: barbara,1939|ken,1943
--   users: 6
local pg = require "lasync.pg"

local db <close> = pg.connect(arg[1] or "")
print("connected: " .. db:fetchval("SELECT version()"):match("^%S+ %S+"))

db:execute([[CREATE TEMP TABLE users (
  name text PRIMARY KEY, born int NOT NULL, admin boolean)]])
local tag, n = db:execute("INSERT INTO users VALUES ($1, $2, $3)",
  "ada", 1815, true)
print(("inserted: %s (%d row)"):format(tag, n))
db:execute("INSERT INTO users VALUES ($1, $2, $3), ($4, $5, $6)",
  "grace", 1906, true, "alan", 1912, false)

for _, row in ipairs(db:fetch("SELECT * FROM users ORDER BY born")) do
  print(row.name, row.born, row.admin)
end

-- commits when the function returns
db:transaction(function()
  local before = db:fetchval("SELECT count(*)::int FROM users")
  db:execute("INSERT INTO users VALUES ($1, $2, $3)", "edsger", 1930, false)
  local after = db:fetchval("SELECT count(*)::int FROM users")
  print(("transaction: %d -> %d users"):format(before, after))
end)

-- rolls back when it raises: neither row stays
local ok, err = pcall(db.transaction, db, function()
  db:execute("INSERT INTO users VALUES ($1, $2, $3)", "barbara", 1939, false)
  db:execute("INSERT INTO users VALUES ($1, $2, $3)", "ada", 1815, true)
end)
assert(not ok and err.sqlstate == "23505")
print(("rolled back: %s (%s)"):format(err.message, err.sqlstate))
print("users: " .. db:fetchval("SELECT count(*)::int FROM users"))

-- LISTEN/NOTIFY: a second connection listens, this one notifies (a
-- notification sent in a transaction arrives at its commit)
local listener_db <close> = pg.connect(arg[1] or "")
local signups <close> = listener_db:listen("signups")
db:notify("signups", "grace")
db:transaction(function() db:notify("signups", "ada") end)
local got = {}
for n in signups do
  got[#got + 1] = n.payload
  if #got == 2 then break end
end
print(('notified on "%s": %s'):format(signups.channel,
  table.concat(got, "+")))

-- COPY: records in (in COPY's text format, a chunk at a time), a query's
-- rows out, as CSV, to a function
print("copied in: " .. db:copy_records_to_table("users", {
  records = { { "barbara", 1939, false }, { "ken", 1943, pg.null } },
  columns = { "name", "born", "admin" } }))
local out = {}
db:copy_from_query("SELECT name, born FROM users WHERE born > $1 " ..
  "ORDER BY born", 1935, { format = "csv",
  output = function(chunk) out[#out + 1] = chunk end })
print("copied out: " .. table.concat(out):gsub("\n$", ""):gsub("\n", "|"))
print("users: " .. db:fetchval("SELECT count(*)::int FROM users"))
