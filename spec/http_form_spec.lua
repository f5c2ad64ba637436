-- lasync.http.form: urlencoded and multipart/form-data bodies read from
-- next_chunk in pieces of any size, text fields and file fields (in
-- memory or spooled to a temporary file, removed by cleanup), limits
-- (max_parts, CVE-2024-30251; max_size), malformed bodies answered 400,
-- read errors passed on, and a seeded random-split/byte-flip fuzz.
local helper = require "helper"
local form = require "lasync.http.form"
local multidict = require "lasync.http.multidict"

local lasync = helper.lasync
local raises_msg = helper.raises_msg

-- next_chunk over body cut into pieces of `size` bytes (a number, or a
-- function giving the next size)
local function chunks(body, size)
  local pos = 1
  return function()
    if pos > #body then return nil end
    local n = type(size) == "function" and size() or size or #body
    local piece = body:sub(pos, pos + n - 1)
    pos = pos + n
    return piece
  end
end

local B = "----lasyncBoundary7MA4YWxk"
local CT = "multipart/form-data; boundary=" .. B

local function part(name, value, extra)
  return "--" .. B .. "\r\n" ..
      'Content-Disposition: form-data; name="' .. name .. '"' ..
      (extra or "") .. "\r\n\r\n" .. value .. "\r\n"
end

local function file_part(name, filename, ctype, content)
  return "--" .. B .. "\r\n" ..
      'Content-Disposition: form-data; name="' .. name .. '"; filename="' ..
      filename .. '"\r\nContent-Type: ' .. ctype .. "\r\n\r\n" .. content ..
      "\r\n"
end

local SAMPLE = part("user", "alice") .. part("tag", "a") ..
    part("tag", "b\r\n--not-the-boundary\r\n") ..
    file_part("upload", "notes.txt", "text/plain", "line 1\r\nline 2") ..
    part("empty", "") .. "--" .. B .. "--\r\n"

local function check_sample(f)
  assert.is_true(multidict.is(f))
  assert.are.equal("alice", f.user)
  assert.are.same({ "a", "b\r\n--not-the-boundary\r\n" }, f:getall("tag"))
  assert.are.equal("", f.empty)
  local up = f.upload
  assert.are.equal("upload", up.name)
  assert.are.equal("notes.txt", up.filename)
  assert.are.equal("text/plain", up.content_type)
  assert.are.equal(14, up.size)
  assert.are.equal("line 1\r\nline 2", up.read())
  assert.is_nil(up.path)
end

describe("lasync.http.form.parse multipart", function()
  it("reads text and file fields from any split of the body", function()
    for _, size in ipairs { #SAMPLE, 1, 2, 3, 5, 7, 13, 64, 100 } do
      local f, cleanup = form.parse(CT, chunks(SAMPLE, size))
      assert.is_not_nil(f, "split " .. size)
      check_sample(f)
      cleanup()
    end
  end)

  it("skips a preamble, padding and an epilogue; reads filename*",
    function()
      local body = "preamble\r\n--" .. B .. " \t\r\n" ..
          'Content-Disposition: form-data; name="f"; filename="a.bin"; ' ..
          "filename*=UTF-8''%C3%A9t%C3%A9.txt\r\n\r\nxyz\r\n--" .. B ..
          "--\r\nepilogue, ignored"
      local f = assert(form.parse(CT, chunks(body, 4)))
      assert.are.equal("\195\169t\195\169.txt", f.f.filename)
      assert.are.equal("xyz", f.f.read())
      local q = assert(form.parse('multipart/form-data; boundary="' .. B ..
        '"', chunks(SAMPLE)))
      check_sample(q)
    end)

  it("gives a part without headers... a 400, and an empty form for " ..
    "a body of just the closing boundary", function()
      local f = assert(form.parse(CT, chunks("--" .. B .. "--\r\n")))
      assert.are.equal(0, f:len())
      local nf, err = form.parse(CT, chunks("--" .. B .. "\r\n\r\nx\r\n--" ..
        B .. "--"))
      assert.is_nil(nf)
      assert.are.equal(400, err.status)
      assert.matches("no Content%-Disposition", err.message)
    end)

  it("spools large files and removes them in cleanup", function()
    helper.in_dir(function(dir)
      local big = ("0123456789abcdef"):rep(4096) -- 64 KiB
      local body = part("a", "1") .. file_part("big", "big.bin",
        "application/octet-stream", big) .. file_part("small", "s.txt",
        "text/plain", "tiny") .. "--" .. B .. "--\r\n"
      local f, cleanup = form.parse(CT, chunks(body, 1000),
        { spool_threshold = 1024, tmpdir = dir })
      assert.is_not_nil(f)
      local bf = f.big
      assert.are.equal(#big, bf.size)
      assert.is_string(bf.path)
      assert.are.equal(dir, bf.path:match("^(.*)/lasync%-form%-[^/]+/[^/]+$"))
      assert.are.equal(big, bf.read())
      assert.are.equal(big, lasync.fs.readfile(bf.path))
      assert.is_nil(f.small.path)
      assert.are.equal("tiny", f.small.read())
      cleanup()
      assert.is_nil(io.open(bf.path))
      local left = {}
      for name in lasync.fs.scandir(dir) do left[#left + 1] = name end
      assert.are.same({}, left)
      cleanup()
    end)
  end)

  it("removes spooled files when parsing fails or is cancelled", function()
    helper.in_dir(function(dir)
      local big = ("x"):rep(5000)
      local body = file_part("big", "b", "x/y", big) .. "--" .. B -- cut
      local f, err = form.parse(CT, chunks(body, 512),
        { spool_threshold = 100, tmpdir = dir })
      assert.is_nil(f)
      assert.are.equal(400, err.status)
      local started = lasync.Event()
      local t = lasync.spawn(function()
        local sent = false
        return form.parse(CT, function()
          if not sent then
            sent = true
            return file_part("big", "b", "x/y", big)
          end
          started:set()
          lasync.sleep(10)
        end, { spool_threshold = 100, tmpdir = dir })
      end)
      started:wait()
      t:cancel()
      helper.assert_cancelled(t)
      local left = {}
      for name in lasync.fs.scandir(dir) do left[#left + 1] = name end
      assert.are.same({}, left)
    end)
  end)

  it("refuses a huge number of parts quickly (CVE-2024-30251)", function()
    local one = "--" .. B .. "\r\nContent-Disposition: form-data; " ..
        'name="x"\r\n\r\n\r\n'
    local body = one:rep(200000) .. "--" .. B .. "--\r\n"
    local t0 = os.clock()
    local f, err = form.parse(CT, chunks(body, 65536),
      { max_size = #body })
    assert.is_nil(f)
    assert.are.equal(413, err.status)
    assert.are.equal("multipart: more than 1000 parts", err.message)
    assert.is_true(os.clock() - t0 < 1)
    f = assert(form.parse(CT, chunks(one:rep(1000) .. "--" .. B .. "--")))
    assert.are.equal(1000, f:len())
  end)

  it("answers 413 past max_size", function()
    local f, err = form.parse(CT, chunks(SAMPLE, 10), { max_size = 100 })
    assert.is_nil(f)
    assert.are.equal(413, err.status)
    assert.are.equal("413: the body is larger than 100 bytes", tostring(err))
  end)

  it("answers 400 for every malformed shape", function()
    local cd = 'Content-Disposition: form-data; name="a"'
    local bad = {
      { "", "no opening boundary" },
      { "no boundary here", "no opening boundary" },
      { "--" .. B, "ends after a boundary" },
      { "--" .. B .. "X\r\n", "not followed by CRLF" },
      { "--" .. B .. "\r\n" .. cd, "ends in a part's headers" },
      { "--" .. B .. "\r\n" .. cd .. "\r\n\r\nvalue", "ends inside a part" },
      { "--" .. B .. "\r\n" .. cd .. "\r\n\r\nv\r\n--" .. B,
        "ends after a boundary" },
      { "--" .. B .. "\r\n" .. cd .. "\r\n  folded\r\n\r\nv\r\n--" .. B ..
        "--", "folded" },
      { "--" .. B .. "\r\nno colon\r\n\r\nv\r\n--" .. B .. "--",
        "malformed part header" },
      { "--" .. B .. "\r\n" .. cd .. "\r\n" .. cd .. "\r\n\r\nv\r\n--" ..
        B .. "--", "repeated" },
      { "--" .. B .. "\r\nContent-Disposition: attachment; name=\"a\"" ..
        "\r\n\r\nv\r\n--" .. B .. "--", "not form-data with a name" },
      { "--" .. B .. "\r\nContent-Disposition: form-data\r\n\r\nv\r\n--" ..
        B .. "--", "not form-data with a name" },
      { "--" .. B .. "\r\nX-Big: " .. ("h"):rep(9000) .. "\r\n\r\n",
        "headers are larger than 8192 bytes" },
      { "--" .. B .. (" "):rep(300), "too much padding" },
    }
    for _, case in ipairs(bad) do
      for _, size in ipairs { 1, 3, 1000000 } do
        local f, err = form.parse(CT, chunks(case[1], size))
        assert.is_nil(f, case[2])
        assert.are.equal(400, err.status, case[2])
        assert.matches(case[2], err.message, 1, true)
      end
    end
    for _, ct in ipairs { "multipart/form-data",
      "multipart/form-data; boundary=", "multipart/form-data; boundary=" ..
      ("x"):rep(71), "multipart/form-data; boundary=\"a b \"",
      "multipart/form-data; boundary=a\\b" } do
      local f, err = form.parse(ct, chunks(SAMPLE))
      assert.is_nil(f, ct)
      assert.are.equal(400, err.status)
      assert.matches("no valid boundary", err.message)
    end
  end)

  it("passes a read error on", function()
    local n = 0
    local f, err = form.parse(CT, function()
      n = n + 1
      if n == 1 then return SAMPLE:sub(1, 50) end
      return false, 408, "body timeout"
    end)
    assert.is_nil(f)
    assert.are.same({ 408, "body timeout" }, { err.status, err.message })
  end)
end)

describe("lasync.http.form.parse urlencoded", function()
  it("parses the body with repeated keys", function()
    for _, ct in ipairs { "application/x-www-form-urlencoded",
      "Application/X-WWW-Form-Urlencoded; charset=utf-8", "", nil } do
      local f = assert(form.parse(ct, chunks("a=1&b=x+y&a=%32", 2)))
      assert.are.same({ "1", "2" }, f:getall("a"))
      assert.are.equal("x y", f.b)
    end
  end)

  it("answers 400, 413 and read errors", function()
    local ct = "application/x-www-form-urlencoded"
    local f, err = form.parse(ct, chunks("a=%zz"))
    assert.is_nil(f)
    assert.are.equal(400, err.status)
    f, err = form.parse(ct, chunks(("a=1&"):rep(10)), { max_parts = 5 })
    assert.are.equal(413, err.status)
    f, err = form.parse(ct, chunks(("a=1&"):rep(10), 3), { max_size = 20 })
    assert.are.equal(413, err.status)
    f, err = form.parse(ct, function() return false, 400, "bad chunk" end)
    assert.are.same({ 400, "bad chunk" }, { err.status, err.message })
  end)
end)

describe("lasync.http.form.parse", function()
  it("gives an empty form for other types, without reading", function()
    local f, cleanup = form.parse("application/json", function()
      error("read")
    end)
    assert.are.equal(0, f:len())
    cleanup()
  end)

  it("checks its arguments", function()
    raises_msg("lasync.http.form.parse: next_chunk must be a function " ..
      "(got nil)", form.parse, CT)
    raises_msg("lasync.http.form.parse: content_type must be a string or " ..
      "nil (got number)", form.parse, 1, chunks(""))
    raises_msg("lasync.http.form.parse: unknown limit max_file",
      form.parse, CT, chunks(""), { max_file = 1 })
    raises_msg("lasync.http.form.parse: max_parts must be a non-negative " ..
      "integer (got float)", form.parse, CT, chunks(""), { max_parts = 1.5 })
    local err = helper.error_of(form.parse, CT, function() return 1 end)
    assert.matches("next_chunk returned a number", err)
  end)

  it("reads Content-Type parameters", function()
    local t, p = form.parse_header('Multipart/Form-Data; Boundary="a\\"b";' ..
      " charset = utf-8 ;x")
    assert.are.equal("multipart/form-data", t)
    assert.are.same({ boundary = 'a"b', charset = "utf-8" }, p)
  end)
end)

describe("lasync.http.form.parse fuzz", function()
  it("survives random splits and byte flips (seeded)", function()
    local seed = tonumber(os.getenv("LASYNC_FUZZ_SEED")) or 12
    math.randomseed(seed)
    local flips = { "\r", "\n", "-", '"', ";", "=", "\0", "%", " ", "x" }
    local t0 = os.clock()
    local ok_count, refused = 0, 0
    for i = 1, 10000 do
      local body = SAMPLE
      local nflips = i % 3 == 0 and 0 or math.random(1, 3)
      for _ = 1, nflips do
        local at = math.random(1, #body)
        local c = math.random() < 0.5 and flips[math.random(#flips)] or
            string.char(math.random(0, 255))
        body = body:sub(1, at - 1) .. c .. body:sub(at + 1)
      end
      if math.random() < 0.1 then
        body = body:sub(1, math.random(0, #body))
      end
      local f, err = form.parse(CT, chunks(body, function()
        return math.random(1, 40)
      end), { max_parts = 4 + i % 3 })
      if f then
        ok_count = ok_count + 1
        if nflips == 0 and #body == #SAMPLE and i % 3 ~= 0 then
          check_sample(f)
        end
      else
        refused = refused + 1
        assert.is_true(err.status == 400 or err.status == 413,
          ("seed %d iteration %d: %s"):format(seed, i, tostring(err)))
        assert.is_string(err.message)
      end
    end
    assert.is_true(ok_count > 1000)
    assert.is_true(refused > 1000)
    assert.is_true(os.clock() - t0 < 20)
  end)
end)
