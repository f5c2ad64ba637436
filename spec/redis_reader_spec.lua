-- The reply reader of lasync.redis (lasync.core._resp.reader, hiredis's
-- redisReader building Lua values in bindings/codec/resp.c), without a
-- server: replies cut anywhere, the limits of the protocol (depth,
-- huge and negative lengths) as clean protocol errors, and an array's
-- memory following the bytes that came rather than its announced
-- length. fuzz/resp_reader.c checks the same on arbitrary bytes. And
-- the command writer's exact bytes.
local helper = require "helper"
local lasync = helper.lasync
local resp = require("lasync.core")._resp

local null = {}
local function make_error(m) return { err = m } end

-- All the replies of data fed in pieces of n bytes ({n = count}), then
-- the error (nil when there was none).
local function read_all(data, n)
  local rd <close> = resp.reader(make_error, null)
  local out = { n = 0 }
  for i = 1, #data, n do
    rd:feed(data:sub(i, i + n - 1))
    while true do
      local ok, got, v = pcall(rd.get, rd)
      if not ok then return out, got end
      if not got then break end
      out.n = out.n + 1
      out[out.n] = v
    end
  end
  return out
end

local PROTO = "lasync.redis.reader:get: protocol error: "

describe("lasync.redis's reply reader", function()
  it("gives the same replies whatever the cut", function()
    local data = "+OK\r\n$3\r\na\0b\r\n:-7\r\n$-1\r\n*-1\r\n*0\r\n" ..
      "*3\r\n$1\r\nx\r\n$-1\r\n*2\r\n:1\r\n-ERR no\r\n-WRONGTYPE k\r\n"
    local want = { "OK", "a\0b", -7, nil, nil, {},
      { "x", null, { 1, { err = "ERR no" } } }, { err = "WRONGTYPE k" },
      n = 8 }
    for n = 1, #data do
      local got, err = read_all(data, n)
      assert.is_nil(err)
      assert.same(want, got)
    end
  end)

  it("refuses arrays nested deeper than 7 levels", function()
    local ok = ("*1\r\n"):rep(7) .. ":1\r\n"
    local got, err = read_all(ok, 3)
    assert.is_nil(err)
    assert.same({ { { { { { { { 1 } } } } } } }, n = 1 }, got)
    got, err = read_all(("*1\r\n"):rep(9) .. ":1\r\n", 3)
    assert.same({ n = 0 }, got)
    assert.equal(PROTO .. "No support for nested multi bulk replies " ..
      "with depth > 7", err)
  end)

  it("refuses negative and out-of-range lengths", function()
    for _, bad in ipairs { "*-2\r\n", "$-2\r\n", "*2147483648\r\n",
      "$99999999999999999999\r\n", ":9223372036854775808\r\n",
      "*x\r\n", "!\r\n" } do
      local got, err = read_all(bad, 1)
      assert.same({ n = 0 }, got)
      assert.matches("^" .. helper.escape(PROTO), err)
    end
  end)

  it("spends memory on the elements that came, not on an array's " ..
    "announced length", function()
    local rd <close> = resp.reader(make_error, null)
    collectgarbage()
    local before = collectgarbage("count")
    rd:feed("*2147483647\r\n*2147483647\r\n")
    rd:feed((":1\r\n"):rep(1000))
    assert.is_false(rd:get())
    -- 1000 integers in a table: some 16 KiB, nowhere near 2^31 slots
    assert.is_true(collectgarbage("count") - before < 1024)
  end)

  it("raises make_error's error and is unusable after it", function()
    local rd <close> = resp.reader(function() error("boom", 0) end, null)
    rd:feed("*2\r\n-ERR x\r\n:1\r\n")
    assert.equal("boom", helper.error_of(rd.get, rd))
    helper.raises_msg("lasync.redis.reader:get: the reader is broken " ..
      "(an error while it parsed)", rd.get, rd)
  end)

  it("keeps the replies apart from the next one", function()
    local rd <close> = resp.reader(make_error, null)
    rd:feed("*2\r\n*1\r\n:1\r\n:2\r\n:3\r\n")
    local ok, v = rd:get()
    assert.is_true(ok)
    assert.same({ { 1 }, 2 }, v)
    ok, v = rd:get()
    assert.is_true(ok)
    assert.equal(3, v)
    assert.is_false(rd:get())
    local _ = lasync
  end)
end)

describe("lasync.redis's reply dispatch", function()
  it("settles the pending futures in order, dropping the replies of " ..
    "the others", function()
    helper.run(function()
      local rd <close> = resp.reader(make_error, null)
      local a, cancelled, b = lasync.Future(), lasync.Future(),
        lasync.Future()
      cancelled:cancel()
      local pending = { [5] = a, [6] = false, [7] = cancelled, [8] = b }
      rd:feed(":1\r\n:2\r\n:3\r\n$1\r\nx\r\n*1\r\n")
      assert.equal(9, rd:dispatch(pending, 5))
      assert.equal(1, a:result())
      assert.equal("x", b:result())
      assert.same({}, pending)
      -- an incomplete reply waits; a protocol error is returned
      rd:feed(":4\r\n!")
      local c = lasync.Future()
      local head, err = rd:dispatch({ [9] = c }, 9)
      assert.equal(10, head)
      assert.same({ 4 }, c:result())
      assert.matches("Protocol error", err)
    end)
  end)
end)

describe("lasync.redis's command writer", function()
  it("writes RESP arrays of bulk strings", function()
    assert.equal("*1\r\n$4\r\nPING\r\n", resp.command("PING"))
    assert.equal("*4\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n-7\r\n" ..
      "$19\r\n0.10000000000000001\r\n", resp.command("SET", "", -7, 0.1))
    local big = ("x"):rep(12345)
    local args = {}
    for i = 1, 10 do args[i] = i end
    assert.equal("*10\r\n" .. ("$1\r\n%d\r\n"):rep(9):format(1, 2, 3, 4,
      5, 6, 7, 8, 9) .. "$2\r\n10\r\n", resp.command(table.unpack(args)))
    assert.equal("*2\r\n$3\r\nGET\r\n$12345\r\n" .. big .. "\r\n",
      resp.command("GET", big))
    assert.same({ nil, 2, "table" }, { resp.command("GET", {}) })
    assert.same({ nil, 0, "no value" }, { resp.command() })
  end)
end)
