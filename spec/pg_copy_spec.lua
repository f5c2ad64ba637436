-- spec/pg_copy_spec.lua: lasync.pg's COPY against a real PostgreSQL: 1M
-- rows in and out streamed in bounded memory, records encoded with COPY's
-- escaping, and COPYs failing on either side (a bad row, a source raising,
-- a task cancelled) leaving the connection usable.
local helper = require "helper"
local pg_server = require "pg_server"
local lasync = helper.lasync
local pg = require "lasync.pg"

describe("lasync.pg COPY", function()
  local srv, why

  pg_server.for_suite(setup, teardown, function(s, w) srv, why = s, w end)

  local function with_conn(body, timeout)
    if not srv then return pending(why) end
    helper.run(function()
      local conn <close> = pg.connect(srv.dsn)
      body(conn)
    end, timeout)
  end

  local N = 1000000

  it("copies 1M rows in from a function and out to one, in bounded memory",
    function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE big (id int, name text)")
        collectgarbage()
        local base, peak = collectgarbage("count"), 0
        local function sample()
          local kb = collectgarbage("count")
          if kb > peak then peak = kb end
        end
        local next_id, batch = 0, 10000
        local tag, n = c:copy_to_table("big", { source = function()
          sample()
          if next_id >= N then return nil end
          local lines = {}
          for i = 1, batch do lines[i] = (next_id + i) .. "\tname " ..
            (next_id + i) end
          next_id = next_id + batch
          if next_id % 200000 == 0 then lasync.sleep(0) end -- may await
          return table.concat(lines, "\n") .. "\n"
        end })
        assert.same({ "COPY " .. N, N }, { tag, n })
        assert.equal(N, c:fetchval("SELECT count(*)::int FROM big"))
        local rows, bytes, last = 0, 0, nil
        tag, n = c:copy_from_table("big", { columns = { "id" },
          output = function(chunk)
            sample()
            bytes = bytes + #chunk
            for _ in chunk:gmatch("\n") do rows = rows + 1 end
            last = chunk
          end })
        assert.same({ "COPY " .. N, N }, { tag, n })
        assert.equal(N, rows)
        assert.matches(N .. "\n$", last)
        assert.is_true(bytes > 6 * N)
        -- never near the data's size (about 14 MB in, 7 MB out)
        assert.is_true(peak - base < 8 * 1024, ("peak %.0f KB over %.0f KB")
          :format(peak - base, base))
      end, 60)
    end)

  it("copy_records_to_table escapes text format and maps every type",
    function()
      with_conn(function(c)
        c:execute([[CREATE TEMP TABLE r (i int, t text, b bytea, j jsonb,
          a int[], f float8, ok bool, n numeric)]])
        local bin = "\0\1\\\t\n\r\255"
        local tag, n = c:copy_records_to_table("r", { records = {
          { 1, "tab\there\nnl\\bs\rcr", pg.bytea(bin), { k = "v" },
            { 1, pg.null, 3 }, 0.1, true, "1.50" },
          { 2, pg.null, pg.null, pg.null, pg.null, pg.null, false, pg.null },
          { 3, "\\N", pg.bytea(""), pg.json { 1, 2 }, {}, -math.huge,
            pg.null, "-0" },
        } })
        assert.same({ "COPY 3", 3 }, { tag, n })
        local rows = c:fetch("SELECT * FROM r ORDER BY i")
        assert.same({ i = 1, t = "tab\there\nnl\\bs\rcr", b = bin,
          j = { k = "v" }, a = { 1, pg.null, 3 }, f = 0.1, ok = true,
          n = "1.50" }, rows[1])
        assert.same({ i = 2, t = pg.null, b = pg.null, j = pg.null,
          a = pg.null, f = pg.null, ok = false, n = pg.null }, rows[2])
        assert.same({ i = 3, t = "\\N", b = "", j = { 1, 2 }, a = {},
          f = -math.huge, ok = pg.null, n = "0" }, rows[3])
        -- columns, and records from a function (which may await)
        local k = 0
        c:copy_records_to_table("r", { columns = { "t", "i" },
          records = function()
            k = k + 1
            lasync.sleep(0)
            if k <= 3 then return { "x" .. k, 10 + k } end
          end })
        assert.same({ "x1", "x2", "x3" }, { table.unpack(c:fetch({
          "SELECT t FROM r WHERE i > 10 ORDER BY i", positional = true })
          [1]), table.unpack(c:fetch({ "SELECT t FROM r WHERE i > 11 " ..
          "ORDER BY i", positional = true })[1]), c:fetchval(
          "SELECT t FROM r WHERE i = 13") })
      end)
    end)

  it("copy_records_to_table streams many records in chunks, from an " ..
    "array and from a function", function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE m (i int, t text)")
        local recs = {}
        for i = 1, 20000 do recs[i] = { i, ("x\t"):rep(i % 7) } end
        assert.same({ "COPY 20000", 20000 },
          { c:copy_records_to_table("m", { records = recs }) })
        local k = 0
        assert.same({ "COPY 2500", 2500 }, { c:copy_records_to_table("m",
          { columns = { "i" }, records = function()
            k = k + 1
            if k <= 2500 then return { 20000 + k } end
          end }) })
        assert.same({ 22500, 22500 * 22501 // 2 }, { table.unpack(c:fetch({
          "SELECT count(*)::int, sum(i)::int8 FROM m", positional = true })
          [1]) })
        assert.equal(("x\t"):rep(6), c:fetchval("SELECT t FROM m WHERE " ..
          "i = 6"))
        -- the 1001st record of a function is numbered so
        k = 0
        local e = helper.error_of(c.copy_records_to_table, c, "m", {
          records = function()
            k = k + 1
            if k == 1001 then return "bad" end
            if k <= 1500 then return { k } end
          end })
        assert.matches("record 1001 is a string (expected an array of " ..
          "values)", e, 1, true)
        assert.equal(22500, c:fetchval("SELECT count(*)::int FROM m"))
      end)
    end)

  it("copy_from_query with parameters, csv, header; copy_to_table from a " ..
    "string and from a reader", function()
      with_conn(function(c)
        local out = {}
        local tag, n = c:copy_from_query(
          "SELECT g, $1::text || g, '$2' AS lit, $$ $1 $$ AS dq " ..
          "FROM generate_series(1, $2::int) g -- $3", "it's ", 3,
          { format = "csv", header = true,
            output = function(chunk) out[#out + 1] = chunk end })
        assert.same({ "COPY 3", 3 }, { tag, n })
        assert.equal("g,?column?,lit,dq\n1,it's 1,$2, $1 \n" ..
          "2,it's 2,$2, $1 \n3,it's 3,$2, $1 \n", table.concat(out))
        c:execute("CREATE TEMP TABLE s (a int, b text)")
        tag, n = c:copy_to_table("s", { source = "1;x\n2;y\n",
          delimiter = ";" })
        assert.same({ "COPY 2", 2 }, { tag, n })
        local chunks = { "3,\"a,b\"\n", "4,\n" }
        local reader = { read = function()
          return table.remove(chunks, 1) or ""
        end }
        c:copy_to_table("s", { source = reader, format = "csv" })
        assert.same({ "x", "y", "a,b", pg.null }, { table.unpack(
          c:fetchval("SELECT array_agg(b ORDER BY a) FROM s")) })
        -- an object with a write method as output
        local sink = { parts = {} }
        function sink:write(s) self.parts[#self.parts + 1] = s end
        c:copy_from_table("s", { output = sink, columns = { "a" } })
        assert.equal("1\n2\n3\n4\n", table.concat(sink.parts))
      end)
    end)

  it("a bad row fails with pg.Error and stores nothing; the connection " ..
    "works", function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE e (v int)")
        local e = helper.raises(pg.Error, "pg.Error", c.copy_to_table, c,
          "e", { source = "1\n2\nnot a number\n4\n" })
        assert.equal("22P02", e.sqlstate)
        e = helper.raises(pg.Error, "pg.Error", c.copy_records_to_table, c,
          "e", { records = { { 1 }, { "x" } } })
        assert.equal("22P02", e.sqlstate)
        e = helper.raises(pg.Error, "pg.Error", c.copy_from_table, c,
          "nosuch", { output = print })
        assert.equal("42P01", e.sqlstate)
        assert.equal(0, c:fetchval("SELECT count(*)::int FROM e"))
        assert.equal("idle", c:transaction_status())
      end)
    end)

  it("a source or output raising, or a record that cannot be sent, ends " ..
    "the COPY with its error; the connection works", function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE f (v int)")
        local calls = 0
        local e = helper.error_of(c.copy_to_table, c, "f", {
          source = function()
            calls = calls + 1
            if calls > 2 then error("source broke", 0) end
            return "1\n"
          end })
        assert.equal("source broke", e)
        assert.equal(0, c:fetchval("SELECT count(*)::int FROM f"))
        e = helper.error_of(c.copy_records_to_table, c, "f",
          { records = { { 1 }, { print } } })
        assert.matches("lasync.pg.Connection:copy_records_to_table: " ..
          "record 2, column 1: cannot send a function", e, 1, true)
        e = helper.error_of(c.copy_to_table, c, "f",
          { source = function() return 42 end })
        assert.matches("the source gave a number", e, 1, true)
        c:execute("INSERT INTO f SELECT generate_series(1, 100000)")
        e = helper.error_of(c.copy_from_table, c, "f",
          { output = function() error("output broke", 0) end })
        assert.equal("output broke", e)
        assert.equal(0, c:fetchval("SELECT count(*)::int FROM f WHERE " ..
          "v > 100000"))
        assert.equal("idle", c:transaction_status())
        assert.is_false(c:is_closed())
      end)
    end)

  it("cancelling the task mid-COPY, either way, leaves the connection " ..
    "usable", function()
      with_conn(function(c)
        c:execute("CREATE TEMP TABLE g (v int)")
        local t = lasync.spawn(c.copy_to_table, c, "g", {
          source = function()
            lasync.sleep(0.005)
            return "1\n"
          end })
        lasync.sleep(0.03)
        t:cancel()
        helper.assert_cancelled(t)
        assert.equal(0, c:fetchval("SELECT count(*)::int FROM g"))
        c:execute("INSERT INTO g SELECT generate_series(1, 200000)")
        local got = 0
        local e = helper.error_of(lasync.wait_for, lasync.spawn(
          c.copy_from_table, c, "g", { output = function(chunk)
            got = got + #chunk
            lasync.sleep(0.001)
          end }), 0.05)
        assert.is_true(lasync.is_timeout(e), helper.show(e))
        assert.is_true(got > 0)
        assert.equal(7, c:fetchval("SELECT 7"))
        assert.equal("idle", c:transaction_status())
      end)
    end)

  it("checks its arguments before anything is sent", function()
    with_conn(function(c)
      helper.raises_msg("copy_to_table: the table name must be a non-empty",
        c.copy_to_table, c, 1, { source = "" })
      helper.raises_msg("copy_to_table: option 'source' is required",
        c.copy_to_table, c, "t", {})
      helper.raises_msg("copy_to_table: option 'source' must be a string",
        c.copy_to_table, c, "t", { source = 1 })
      helper.raises_msg("copy_to_table: unknown option 'x'",
        c.copy_to_table, c, "t", { source = "", x = 1 })
      helper.raises_msg("option 'format' must be \"text\", \"csv\" or",
        c.copy_from_table, c, "t", { output = print, format = "xml" })
      helper.raises_msg("option 'columns' must be a non-empty array",
        c.copy_from_table, c, "t", { output = print, columns = {} })
      helper.raises_msg("option 'output' must be a function",
        c.copy_from_table, c, "t", {})
      helper.raises_msg("option 'records' must be an array",
        c.copy_records_to_table, c, "t", {})
      helper.raises_msg("copy_from_query: the last argument must be the " ..
        "table of options", c.copy_from_query, c, "SELECT 1")
      helper.raises_msg("parameter $1: cannot send a function",
        c.copy_from_query, c, "SELECT $1", print, { output = print })
      assert.equal(1, c:fetchval("SELECT 1"))
    end)
  end)
end)
