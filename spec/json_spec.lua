-- lasync.json: exact integers both ways, floats that read back the same,
-- json.null, the array/object marks, strings (escapes, UTF-8,
-- surrogates), the options, and every error the codec raises.
local helper = require "helper"
local json = require "lasync.json"
local lasync = require "lasync"

local raises_msg = helper.raises_msg
local encode, decode = json.encode, json.decode
local sorted = { sort_keys = true }

describe("lasync.json", function()
  it("is lasync.json and names its functions", function()
    assert.are.equal(json, lasync.json)
    local names = lasync._names()
    assert.are.equal("lasync.json.encode", names[json.encode])
    assert.are.equal("lasync.json.decode", names[json.decode])
    assert.are.equal("lasync.json.array", names[json.array])
    assert.are.equal("lasync.json.object", names[json.object])
    assert.are.equal("lasync.json.null", tostring(json.null))
  end)
end)

describe("lasync.json integers", function()
  it("encodes integers exactly, at every int64 edge", function()
    assert.are.equal("123456789012345678", encode(123456789012345678))
    assert.are.equal("9007199254740993", encode(9007199254740993))
    assert.are.equal("9223372036854775807", encode(math.maxinteger))
    assert.are.equal("-9223372036854775808", encode(math.mininteger))
    assert.are.equal("0", encode(0))
    assert.are.equal("-1", encode(-1))
  end)

  it("decodes integer literals as integers, exactly", function()
    for _, n in ipairs { 0, 1, -1, 9007199254740993, -9007199254740993,
                         math.maxinteger, math.mininteger,
                         123456789012345678, 999999999999999999,
                         1000000000000000000 } do
      local v = decode(tostring(n))
      assert.are.equal("integer", math.type(v), tostring(n))
      assert.are.equal(n, v)
    end
    assert.are.equal("integer", math.type(decode("[1]")[1]))
    assert.are.equal("integer", math.type(decode("-0")))
  end)

  it("reads an integer literal beyond int64 as a float", function()
    local v = decode("9223372036854775808")
    assert.are.equal("float", math.type(v))
    assert.are.equal(2.0 ^ 63, v)
    v = decode("-9223372036854775809")
    assert.are.equal("float", math.type(v))
    assert.are.equal(-(2.0 ^ 63), v)
    assert.are.equal(1e30, decode("1000000000000000000000000000000"))
  end)
end)

describe("lasync.json floats", function()
  it("writes the shortest of %.15g/%.16g/%.17g that reads back", function()
    assert.are.equal("0.1", encode(0.1))
    assert.are.equal("1e+300", encode(1e300))
    assert.are.equal("2.5", encode(2.5))
    assert.are.equal("0.30000000000000004", encode(0.1 + 0.2))
    assert.are.equal("9007199254740992.0", encode(2 ^ 53))
    assert.are.equal("1.0", encode(1.0))
    assert.are.equal("-0.0", encode(-0.0))
  end)

  it("round-trips floats to the same double and keeps them floats", function()
    for _, x in ipairs { 0.1, 1e300, 5e-324, -5e-324, 2 ^ 53, 1.0, 0.0,
                         1 / 3, math.pi, 1.7976931348623157e308,
                         2.2250738585072014e-308, 123456789.123 } do
      local v = decode(encode(x))
      assert.are.equal("float", math.type(v), tostring(x))
      assert.are.equal(x, v)
    end
    assert.are.equal(1 / -math.huge, decode(encode(-0.0)))
    assert.are.equal("-0.0", encode(decode("-0.0")))
  end)

  it("decodes fractions and exponents as floats", function()
    assert.are.equal("float", math.type(decode("1.0")))
    assert.are.equal("float", math.type(decode("1e2")))
    assert.are.equal(100.0, decode("1E+2"))
    assert.are.equal(0.015, decode("1.5e-2"))
    assert.are.equal(0.0, decode("1e-400"))
  end)

  it("refuses NaN and infinities", function()
    raises_msg("lasync.json.encode: cannot encode NaN", encode, 0 / 0)
    raises_msg("lasync.json.encode: cannot encode inf", encode,
      { a = math.huge })
    raises_msg("lasync.json.encode: cannot encode -inf", encode,
      { -math.huge })
    raises_msg("lasync.json.decode: number out of range at byte 2", decode,
      "[1e400]")
  end)
end)

describe("lasync.json null and marks", function()
  it("encodes json.null and nil as null, decodes null as json.null", function()
    assert.are.equal("null", encode(json.null))
    assert.are.equal("null", encode(nil))
    assert.are.equal('{"a":null}', encode { a = json.null })
    local v = decode('{"a":null,"b":[null,1]}')
    assert.are.equal(json.null, v.a)
    assert.are.equal(json.null, v.b[1])
    assert.are.equal(2, #v.b)
    assert.are.equal(json.null, decode("null"))
  end)

  it("encodes an empty table as {} unless marked json.array", function()
    assert.are.equal("{}", encode {})
    assert.are.equal("[]", encode(json.array {}))
    assert.are.equal("{}", encode(json.object {}))
    assert.are.equal('{"a":[],"b":{}}',
      encode({ a = json.array {}, b = {} }, sorted))
  end)

  it("returns the table it marks, and can remark it", function()
    local t = {}
    assert.are.equal(t, json.array(t))
    assert.are.equal("[]", encode(t))
    assert.are.equal(t, json.object(t))
    assert.are.equal("{}", encode(t))
  end)

  it("marks decoded arrays and objects so that a round trip keeps them",
    function()
      local text = '{"a":[],"b":{},"c":[[],{}],"d":[1,2]}'
      local v = decode(text)
      assert.are.equal(text, encode(v, sorted))
      assert.are.equal(getmetatable(json.array {}), getmetatable(v.a))
      assert.are.equal(getmetatable(json.object {}), getmetatable(v.b))
      assert.are.equal(getmetatable(v.b), getmetatable(v))
    end)

  it("leaves decoded tables plain with marks = false", function()
    local v = decode('{"a":[]}', { marks = false })
    assert.is_nil(getmetatable(v))
    assert.is_nil(getmetatable(v.a))
    assert.are.equal('{"a":{}}', encode(v))
  end)

  it("encodes an object-marked array with its keys as strings", function()
    assert.are.equal('{"1":"x","2":"y"}',
      encode(json.object { "x", "y" }, sorted))
  end)

  it("refuses to mark a table that has a metatable of its own", function()
    raises_msg("bad argument #1 to 'lasync.json.array' (table has a " ..
      "metatable of its own)", json.array, setmetatable({}, {}))
    raises_msg("bad argument #1 to 'lasync.json.object' (table expected, " ..
      "got string)", json.object, "x")
  end)

  it("refuses a string key in a table marked as an array", function()
    raises_msg('lasync.json.encode: a json.array has a string key (key "k")',
      encode, json.array { k = 1 })
  end)
end)

describe("lasync.json tables", function()
  it("encodes sequences as arrays and string-keyed tables as objects",
    function()
      assert.are.equal("[1,2,3]", encode { 1, 2, 3 })
      assert.are.equal('{"a":1,"b":[true,false]}',
        encode({ b = { true, false }, a = 1 }, sorted))
    end)

  it("refuses sparse arrays and mixed tables, naming a key", function()
    raises_msg("lasync.json.encode: sparse array (key 3, 2 keys)", encode,
      { [1] = 1, [3] = 3 })
    raises_msg("lasync.json.encode: sparse array (key 0, 1 keys)", encode,
      { [0] = 1 })
    raises_msg("lasync.json.encode: table has both string and integer " ..
      "keys (key 1)", encode, { 1, a = 2 })
    raises_msg("lasync.json.encode: table key 1.5 is not a string or an " ..
      "integer", encode, { [1.5] = 1 })
    raises_msg("lasync.json.encode: table key of type boolean is not a " ..
      "string or an integer", encode, { [true] = 1 })
  end)

  it("writes sparse and mixed tables as objects with sparse = 'object'",
    function()
      local o = { sort_keys = true, sparse = "object" }
      assert.are.equal('{"1":1,"3":3}', encode({ [1] = 1, [3] = 3 }, o))
      assert.are.equal('{"1":2,"a":2}', encode({ 2, a = 2 }, o))
      assert.are.equal('{"-1":true}', encode({ [-1] = true }, o))
      assert.are.equal("[1,2]", encode({ 1, 2 }, o))
    end)

  it("sorts keys by their bytes with sort_keys", function()
    local t = {}
    for i = 1, 50 do t["k" .. i] = i end
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      parts[#parts + 1] = ('"%s":%d'):format(k, t[k])
    end
    assert.are.equal("{" .. table.concat(parts, ",") .. "}", encode(t, sorted))
    assert.are.equal('{"":1,"a":2,"a\\u0000":3,"b":4}',
      encode({ b = 4, ["a\0"] = 3, a = 2, [""] = 1 }, sorted))
  end)

  it("refuses cycles and nesting deeper than 1000", function()
    local t = {}
    t[1] = t
    raises_msg("lasync.json.encode: a table contains itself (a cycle)",
      encode, t)
    local o = { a = {} }
    o.a.b = o
    raises_msg("(a cycle)", encode, o)
    local deep = {}
    local cur = deep
    for _ = 1, 999 do cur[1] = {}; cur = cur[1] end
    assert.are.equal(1000, #encode(deep) // 2)
    cur[1] = {}
    raises_msg("lasync.json.encode: nesting deeper than 1000", encode, deep)
    -- the same table twice, not nested, is no cycle
    local shared = { 1 }
    assert.are.equal("[[1],[1]]", encode { shared, shared })
  end)

  it("refuses values JSON cannot hold", function()
    raises_msg("lasync.json.encode: cannot encode a function", encode,
      { print })
    raises_msg("lasync.json.encode: cannot encode a thread", encode,
      coroutine.create(print))
    raises_msg("lasync.json.encode: cannot encode a userdata", encode,
      io.stdout)
  end)
end)

describe("lasync.json strings", function()
  it("escapes quotes, backslashes, control characters and NUL", function()
    assert.are.equal([["a\"b\\c\n\r\t\b\f\u0001\u001f\u0000/"]],
      encode('a"b\\c\n\r\t\b\f\1\31\0/'))
    assert.are.equal('"\127"', encode("\127"))
  end)

  it("copies valid UTF-8 and refuses invalid UTF-8", function()
    assert.are.equal('"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"',
      encode("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"))
    for _, bad in ipairs { "\xff", "a\xc3", "\xc0\xaf", "\xe0\x80\xaf",
                           "\xed\xa0\x80", "\xf4\x90\x80\x80",
                           "\x80" } do
      raises_msg("lasync.json.encode: invalid UTF-8 in a string", encode,
        { bad })
    end
    raises_msg("(byte 2 of 3)", encode, "a\xffb")
  end)

  it("decodes every escape, \\u with surrogate pairs", function()
    assert.are.equal('a"b\\c/\b\f\n\r\t',
      decode([["a\"b\\c\/\b\f\n\r\t"]]))
    assert.are.equal("\0", decode([["\u0000"]]))
    assert.are.equal("\xc3\xa9\xe2\x82\xac", decode([["\u00e9\u20AC"]]))
    assert.are.equal("\xf0\x9f\x98\x80", decode([["\ud83d\ude00"]]))
    assert.are.equal("x\xf4\x8f\xbf\xbfy", decode([["x\uDBFF\uDFFFy"]]))
    assert.are.equal("\xc3\xa9", decode('"\xc3\xa9"'))
  end)

  it("refuses lone surrogates, bad escapes and bad UTF-8", function()
    raises_msg("lasync.json.decode: lone high surrogate in \\u escape at " ..
      "byte 2", decode, [["\ud83d"]])
    raises_msg("lone high surrogate", decode, [["\ud83dx\ude00"]])
    raises_msg("lone high surrogate", decode, [["\ud83d\u0041"]])
    raises_msg("lasync.json.decode: lone low surrogate in \\u escape at " ..
      "byte 3", decode, [["a\ude00"]])
    raises_msg("lasync.json.decode: invalid \\u escape at byte 2", decode,
      [["\u12g4"]])
    raises_msg("invalid \\u escape", decode, [["\u12"]])
    raises_msg("lasync.json.decode: invalid escape in string at byte 3",
      decode, [["a\x"]])
    raises_msg("lasync.json.decode: invalid UTF-8 in string at byte 3",
      decode, '"a\xff"')
    raises_msg("invalid UTF-8 in string at byte 4", decode, '"\\n\xc0\xaf"')
    raises_msg("invalid UTF-8", decode, '"\xed\xa0\x80"')
    raises_msg("lasync.json.decode: control character in string at byte 3",
      decode, '"a\nb"')
    raises_msg("control character in string", decode, '"\\t\0"')
    raises_msg("lasync.json.decode: unterminated string at byte 4", decode,
      '"ab')
    raises_msg("unterminated string", decode, '"a\\')
    raises_msg("unterminated string", decode, '"a\\n')
  end)

  it("round-trips every byte of valid UTF-8 text", function()
    local parts = {}
    for c = 0, 127 do parts[#parts + 1] = string.char(c) end
    for _, cp in ipairs { 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd,
                          0xffff, 0x10000, 0x10ffff } do
      parts[#parts + 1] = utf8.char(cp)
    end
    local s = table.concat(parts)
    assert.are.equal(s, decode(encode(s)))
    assert.are.equal(s, decode(encode { s })[1])
  end)
end)

describe("lasync.json.decode", function()
  it("decodes every kind of value, with white space around", function()
    assert.are.same({ 1, "a", true, false },
      decode(' \t\r\n[ 1 , "a",true,false ] \n'))
    assert.are.same({ a = { b = { c = "d" } } },
      decode('{"a":{"b":{"c":"d"}}}'))
    assert.are.equal(true, decode("true"))
    assert.are.equal("", decode('""'))
    assert.are.equal(2, decode('{"k":1,"k":2}').k)
  end)

  it("names the problem and the byte", function()
    local cases = {
      { "", "unexpected end of input at byte 1" },
      { "  ", "unexpected end of input at byte 3" },
      { "[1,]", "unexpected ']', expected a value at byte 4" },
      { "[1 2]", "unexpected '2', expected ',' or ']' at byte 4" },
      { '{"a" 1}', "unexpected '1', expected ':' at byte 6" },
      { '{"a":1,}', "unexpected '}', expected a string key at byte 8" },
      { "{1:2}", "unexpected '1', expected a string key at byte 2" },
      { '{"a":1 "b"}', "unexpected '\"', expected ',' or '}' at byte 8" },
      { "[1] x", "unexpected 'x', expected the end of input at byte 5" },
      { "tru", "unexpected 't', expected a value at byte 1" },
      { "nul", "unexpected 'n', expected a value at byte 1" },
      { "True", "unexpected 'T', expected a value at byte 1" },
      { "01", "unexpected '1', expected the end of input at byte 2" },
      { "-", "unexpected end of input at byte 2" },
      { "-a", "unexpected 'a', expected a digit at byte 2" },
      { "1.", "unexpected end of input at byte 3" },
      { "1.e5", "unexpected 'e', expected a digit at byte 3" },
      { "1e", "unexpected end of input at byte 3" },
      { "1e+", "unexpected end of input at byte 4" },
      { ".5", "unexpected '.', expected a value at byte 1" },
      { "+1", "unexpected '+', expected a value at byte 1" },
      { "NaN", "unexpected 'N', expected a value at byte 1" },
      { "[\0]", "unexpected byte 0x00, expected a value at byte 2" },
      { "\xef\xbb\xbf1", "unexpected byte 0xef, expected a value at byte 1" },
      { "[1", "unexpected end of input at byte 3" },
      { '{"a":', "unexpected end of input at byte 6" },
      { "'a'", "unexpected ''', expected a value at byte 1" },
    }
    for _, c in ipairs(cases) do
      raises_msg("lasync.json.decode: " .. c[2], decode, c[1])
    end
  end)

  it("accepts 1000 levels of nesting and refuses 1001", function()
    local ok = string.rep("[", 1000) .. string.rep("]", 1000)
    assert.are.equal(ok, encode(decode(ok)))
    raises_msg("lasync.json.decode: nesting deeper than 1000 at byte 1001",
      decode, "[" .. ok .. "]")
    raises_msg("nesting deeper than 1000", decode, string.rep('{"a":', 1001))
    raises_msg("nesting deeper than 1000", decode, string.rep("[", 100000))
  end)

  it("decodes long strings and numbers", function()
    local s = string.rep("x\xc3\xa9", 100000)
    assert.are.equal(s, decode(encode(s)))
    local e = string.rep("\\n", 100000)
    assert.are.equal(string.rep("\n", 100000), decode('"' .. e .. '"'))
    assert.are.equal(1e100, decode("1" .. string.rep("0", 100)))
    assert.are.equal(0.5, decode("0." .. "5" .. string.rep("0", 100)))
  end)
end)

describe("lasync.json arguments", function()
  it("checks its arguments and options", function()
    raises_msg("bad argument #1 to 'lasync.json.encode' (value expected)",
      encode)
    raises_msg("bad argument #2 to 'lasync.json.encode' (table expected, " ..
      "got number)", encode, {}, 1)
    raises_msg("bad argument #2 to 'lasync.json.encode' (unknown option " ..
      "'sortkeys')", encode, {}, { sortkeys = true })
    raises_msg("bad argument #2 to 'lasync.json.encode' (option " ..
      "'sort_keys': boolean expected, got number)", encode, {},
      { sort_keys = 1 })
    raises_msg("bad argument #2 to 'lasync.json.encode' (option 'sparse': " ..
      '"error" or "object" expected)', encode, {}, { sparse = "array" })
    raises_msg("bad argument #1 to 'lasync.json.decode' (string expected, " ..
      "got number)", decode, 1)
    raises_msg("bad argument #1 to 'lasync.json.decode' (string expected, " ..
      "got no value)", decode)
    raises_msg("bad argument #2 to 'lasync.json.decode' (unknown option " ..
      "'null')", decode, "1", { null = false })
    raises_msg("bad argument #2 to 'lasync.json.decode' (option 'marks': " ..
      "boolean expected, got string)", decode, "1", { marks = "no" })
    assert.are.equal('"x"', encode("x", { sparse = "error" }))
  end)
end)

describe("lasync.json in a finalizer", function()
  it("keeps the output of the call that a nested call interrupts",
    function()
      -- sort_keys allocates while it writes: the GC may then run a
      -- finalizer that encodes and decodes on its own
      local t = {}
      for i = 1, 200 do t[i * 2] = { i, "v" .. i } end
      local o = { sort_keys = true, sparse = "object" }
      local expected = encode(t, o)
      local nested, stop = 0, false
      local function garbage()
        setmetatable({}, { __gc = function()
          if stop then return end
          nested = nested + 1
          assert(encode({ x = { 1, 2, 3 }, y = "z" }, sorted))
          assert(decode('["\\n", {"a": [1, 2]}]'))
          garbage()
        end })
      end
      collectgarbage("incremental", 0, 100) -- a cycle at every step
      garbage()
      local ok, err = pcall(function()
        for _ = 1, 50 do assert.are.equal(expected, encode(t, o)) end
      end)
      stop = true
      collectgarbage("incremental", 200, 100)
      collectgarbage()
      assert(ok, err)
      assert.is_true(nested > 0)
    end)
end)
