-- spec/pg_types_spec.lua: every row of docs/api.md's PostgreSQL type table,
-- both ways (a Lua value sent as a parameter, read back decoded), with
-- NULLs, binary bytea, and arrays of each type (PostgreSQL's quoting, NULL
-- elements, several dimensions).
local helper = require "helper"
local pg_server = require "pg_server"
local lasync = helper.lasync
local pg = require "lasync.pg"
local json = require "lasync.json"

describe("lasync.pg types", function()
  local srv, why

  pg_server.for_suite(setup, teardown, function(s, w) srv, why = s, w end)

  local function with_conn(body)
    if not srv then return pending(why) end
    helper.run(function()
      local conn <close> = pg.connect(srv.dsn)
      body(conn)
    end)
  end

  local bin = ""
  for i = 0, 255 do bin = bin .. string.char(i) end

  -- sql type, Lua value sent, the value read back (default: the same)
  local scalars = {
    { "bool", true }, { "bool", false },
    { "int2", -32768 }, { "int4", 2147483647 },
    { "int8", math.mininteger }, { "int8", math.maxinteger },
    { "oid", 4294967295 },
    { "float4", 1.5 }, { "float8", 0.1 }, { "float8", 1 / 3 },
    { "float8", math.huge }, { "float8", -math.huge },
    { "numeric", "12345678901234567890.123456789" },
    { "text", "héllo \"quoted\" \\ {a,b}" }, { "varchar", "" },
    { "char(3)", "ab", "ab " }, { "name", "pg_class" },
    { "date", "2024-02-29" }, { "timestamp", "2024-02-29 12:34:56.5" },
    { "timestamptz", "2024-02-29 12:34:56+00" },
    { "time", "23:59:59" }, { "interval", "1 day 02:00:00" },
    { "uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" },
  }

  it("sends and reads back every scalar type, and NULL of each", function()
    with_conn(function(c)
      c:execute("SET TIME ZONE 'UTC'")
      for _, case in ipairs(scalars) do
        local ty, v, back = case[1], case[2], case[3]
        if back == nil then back = v end
        local got = c:fetchval("SELECT $1::" .. ty, v)
        assert.equal(back, got, ty)
        assert.equal(math.type(back), math.type(got), ty)
        assert.equal(pg.null, c:fetchval("SELECT $1::" .. ty, pg.null), ty)
        assert.equal(pg.null, c:fetchval("SELECT $1::" .. ty, nil), ty)
      end
      local nan = c:fetchval("SELECT $1::float8", 0 / 0)
      assert.is_true(nan ~= nan)
      assert.equal(bin, c:fetchval("SELECT $1::bytea", pg.bytea(bin)))
      assert.equal(pg.null, c:fetchval("SELECT NULL::bytea"))
    end)
  end)

  it("reads every float8 and integer text exactly, sends integers " ..
    "(the fast paths)",
    function()
      with_conn(function(c)
        -- floats the server prints with up to 17 digits, with exponents,
        -- negative zero; what strtod reads from the same text is the truth
        local fs = { 0.1, -2.5, 1 / 3, 123456.789, 1e-7, 1e300, -0.0,
          2 ^ 53, 2 ^ 53 + 2, 0.000123, 999999999999999, 5e-324,
          1.7976931348623157e308, 4.35, 1234567.125 }
        for k = 1, 200 do fs[#fs + 1] = (k * 7919 % 100003) / 997 end
        for _, f in ipairs(fs) do
          local row = c:fetchrow("SELECT $1::float8 AS f, " ..
            "$1::float8::text AS t", f)
          -- as a float: tonumber("-0") is the integer 0
          local t = tonumber(row.t:find("[.eEnN]") and row.t or
            row.t .. ".0")
          assert.equal(t, row.f, row.t)
          assert.equal(1 / t, 1 / row.f, row.t) -- -0.0
          if f == 0 or (math.abs(f) < 1e30 and math.abs(f) > 1e-30) then
            row = c:fetchrow("SELECT $1::float4 AS g, " ..
              "$1::float4::text AS u", f)
            assert.equal(tonumber(row.u), row.g, row.u)
          end
        end
        for _, i in ipairs { 0, -1, 7, -32768, 2147483647, -2147483648,
            math.maxinteger, math.mininteger, 1000000007 } do
          assert.equal(i, c:fetchval("SELECT $1::int8", i))
          assert.equal(math.type(i), math.type(c:fetchval(
            "SELECT $1::int8", i)))
        end
        -- integer parameters are written as text in C: a few, and more
        -- than fit on its stack (16), mixed with other values
        local params, cols = {}, {}
        for k = 1, 20 do
          params[k] = k % 2 == 0 and (k * 1000003) * (k % 4 == 0 and -1 or 1)
            or (k == 1 and math.mininteger or k == 3 and "x" or k == 5 and
              pg.null or k == 7 and math.maxinteger or k + 0.5)
          cols[k] = ("$%d::text"):format(k)
        end
        local row = c:fetchrow({ "SELECT " .. table.concat(cols, ", "),
          positional = true }, table.unpack(params, 1, 20))
        for k = 1, 20 do
          local p = params[k]
          local want = p == pg.null and pg.null or tostring(p)
          assert.equal(want, row[k], "parameter " .. k)
        end
        assert.equal(math.mininteger, c:fetchval("SELECT $1::int8",
          math.mininteger))
        -- fetchval: NULL is pg.null, no row is nil, the first column wins
        assert.equal(pg.null, c:fetchval("SELECT NULL::int"))
        assert.is_nil(c:fetchval("SELECT 1 WHERE false"))
        assert.equal(3, c:fetchval("SELECT 3, 4"))
        assert.same({ 1, 2 }, c:fetchval("SELECT ARRAY[1, 2]"))
        local st = c:prepare("SELECT $1::float8 * 2")
        assert.equal(0.2, st:fetchval(0.1))
        assert.is_nil(c:prepare("SELECT 1 WHERE false"):fetchval())
      end)
    end)

  it("json and jsonb through lasync.json, both ways", function()
    with_conn(function(c)
      for _, ty in ipairs { "json", "jsonb" } do
        local v = c:fetchval("SELECT $1::" .. ty,
          { a = { 1, 2.5, "x" }, b = json.null, c = json.object {} })
        assert.same({ 1, 2.5, "x" }, v.a)
        assert.equal(json.null, v.b)
        assert.equal(getmetatable(json.object {}), getmetatable(v.c))
        -- a decoded JSON array keeps its mark: sent again, it is JSON
        local arr = c:fetchval("SELECT '[]'::" .. ty)
        assert.equal(getmetatable(json.array {}), getmetatable(arr))
        assert.equal("[]", c:fetchval("SELECT $1::" .. ty .. "::text", arr))
        -- pg.json sends any value as JSON, a sequence too
        assert.same({ 1, 2 }, c:fetchval("SELECT $1::" .. ty,
          pg.json { 1, 2 }))
        assert.equal("s", c:fetchval("SELECT $1::" .. ty, pg.json "s"))
        assert.equal(json.null, c:fetchval("SELECT 'null'::" .. ty))
        assert.equal(pg.null, c:fetchval("SELECT NULL::" .. ty))
        -- an empty table is '{}': an empty object here
        assert.equal("{}", c:fetchval("SELECT $1::" .. ty .. "::text", {}))
      end
    end)
  end)

  -- element type, a Lua array sent, read back (default: the same)
  local arrays = {
    { "bool", { true, false, pg.null } },
    { "int2", { 1, -2, pg.null } },
    { "int4", { { 1, 2 }, { 3, 4 } } },
    { "int8", { math.maxinteger, math.mininteger } },
    { "float4", { 1.5, -0.25 } },
    { "float8", { 0.1, math.huge, -math.huge } },
    { "numeric", { "1.10", "-3", pg.null } },
    { "text", { "a,b", 'c"d', "e\\f", "", "NULL", " sp ", "{x}", pg.null } },
    { "varchar", { { "a" }, { "b" } } },
    { "bytea", { bin, "", pg.null } },
    { "date", { "2024-02-29", pg.null } },
    { "timestamp", { "2024-02-29 12:34:56" } },
    { "uuid", { "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" } },
    { "int4", { { { 1 }, { 2 } }, { { 3 }, { 4 } } } },
  }

  it("sends Lua sequences as arrays and reads arrays back as tables",
    function()
      with_conn(function(c)
        for _, case in ipairs(arrays) do
          local ty, v = case[1], case[2]
          local sent = v
          if ty == "bytea" then
            sent = { pg.bytea(bin), pg.bytea(""), pg.null }
          end
          assert.same(v, c:fetchval("SELECT $1::" .. ty .. "[]", sent), ty)
          assert.equal(pg.null, c:fetchval("SELECT $1::" .. ty .. "[]",
            pg.null))
        end
        local nan = c:fetchval("SELECT $1::float8[]", { 0 / 0 })[1]
        assert.is_true(nan ~= nan)
        -- empty: a plain {} or pg.array {}
        assert.same({}, c:fetchval("SELECT $1::int[]", {}))
        assert.same({}, c:fetchval("SELECT $1::int[]", pg.array {}))
        assert.equal(0, c:fetchval("SELECT cardinality($1::text[])",
          pg.array {}))
        -- json elements, from tables or pg.json
        local js = c:fetchval("SELECT $1::jsonb[]",
          { { a = 1 }, pg.json { 1, 2 }, json.array {} })
        assert.same({ a = 1 }, js[1])
        assert.same({ 1, 2 }, js[2])
        assert.same({}, js[3])
        assert.equal(getmetatable(json.array {}), getmetatable(js[3]))
      end)
    end)

  it("decodes PostgreSQL's own array texts", function()
    with_conn(function(c)
      assert.same({ "a,b", 'c"d', pg.null, "NULL", "" },
        c:fetchval([[SELECT '{"a,b","c\"d",NULL,"NULL",""}'::text[] ]]))
      -- bounds other than 1 are dropped: Lua arrays start at 1
      assert.same({ 7, 8 }, c:fetchval("SELECT '[0:1]={7,8}'::int[]"))
      assert.same({ { 1, 2 }, { 3, 4 } },
        c:fetchval("SELECT ARRAY[ARRAY[1,2],ARRAY[3,4]]"))
      assert.same({ { "x y", pg.null } },
        c:fetchval("SELECT ARRAY[ARRAY['x y', NULL]]"))
      assert.same({ true, false }, c:fetchval("SELECT '{t,f}'::bool[]"))
      assert.same({ "1.50", "NaN" },
        c:fetchval("SELECT '{1.50,NaN}'::numeric[]"))
      -- an array of a type not in the table stays text
      assert.equal('{"(1,2)","(3,4)"}',
        c:fetchval([[SELECT '{"(1,2)","(3,4)"}'::point[] ]]))
    end)
  end)

  it("refuses what it cannot send, before sending", function()
    with_conn(function(c)
      helper.raises_msg("lasync.pg.Connection:fetchval: parameter $1: " ..
        "cannot send a function (in an array)", c.fetchval, c,
        "SELECT $1::int[]", { 1, print })
      local deep = { 1 }
      for _ = 1, 6 do deep = { deep } end
      helper.raises_msg("parameter $1: an array nests deeper than 6",
        c.fetchval, c, "SELECT $1::int[]", deep)
      helper.raises_msg("parameter $2: table has both string and integer " ..
        "keys", c.fetchval, c, "SELECT $1, $2", 1, { 1, x = 2 })
      helper.raises_msg("lasync.pg.array: expected a table without a " ..
        "metatable", pg.array, "x")
      assert.equal(1, c:fetchval("SELECT 1"))
    end)
  end)

  it("a json value lasync.json refuses fails the query with its error",
    function()
      with_conn(function(c)
        local e = helper.error_of(c.fetchval, c, "SELECT '1e400'::json")
        assert.matches("number out of range", tostring(e))
        assert.is_false(lasync.is_error(e, pg.Error))
      end)
    end)

  it("names and types of the columns: rows.names, rows.types, pg.types",
    function()
      with_conn(function(c)
        local rows = c:fetch("SELECT 1::int8 AS a, 'x'::text AS b, " ..
          "ARRAY[1] AS c, now() AS d")
        assert.same({ "a", "b", "c", "d" }, rows.names)
        assert.same({ 20, 25, 1007, 1184 }, rows.types)
        assert.same({ "int8", "text", "int4[]", "timestamptz" },
          { pg.types[20], pg.types[25], pg.types[1007], pg.types[1184] })
        assert.equal(pg.types[rows.types[2]],
          c:fetchval("SELECT typname::text FROM pg_type WHERE oid = $1",
            rows.types[2]))
      end)
    end)
end)
