-- lasync.http.formdata: multipart/form-data bodies built by form{} (text
-- fields, repeated fields, in-memory and file parts) read back by
-- lasync's own multipart parser (lasync.http.form) and by Python's email
-- package; odd names and filenames, binary content, the boundary, a 50 MB
-- file streamed in little memory, a file whose size changes, closing an
-- abandoned upload, misuse errors; and urlencode.
local helper = require "helper"
local formdata = require "lasync.http.formdata"
local form = require "lasync.http.form"
local url = require "lasync.http.url"
local multidict = require "lasync.http.multidict"

local lasync = helper.lasync
local raises_msg = helper.raises_msg

-- the whole body of f, through one pass of f:chunks()
local function body_of(f)
  local out = {}
  for c in f:chunks() do
    assert.is_true(#c > 0)
    out[#out + 1] = c
  end
  return table.concat(out)
end

-- f read back by lasync's multipart parser, from f:chunks()
local function parse(f, limits)
  local it = f:chunks()
  local res, cleanup = form.parse(f:content_type(), it,
    limits or { max_size = f:size() + 1 })
  assert(res, res == nil and tostring(cleanup))
  return res, cleanup
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local PARSE_PY = [[
import sys, json, email.parser, email.policy
data = open(sys.argv[1], "rb").read()
msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
    b"Content-Type: " + sys.argv[2].encode() + b"\r\n\r\n" + data)
parts = []
for p in msg.iter_parts():
    parts.append({"name": p.get_param("name", header="content-disposition"),
                  "filename": p.get_filename(),
                  "content_type": p.get("content-type"),
                  "hex": p.get_payload(decode=True).hex()})
print(json.dumps({"multipart": msg.is_multipart(),
                  "defects": [type(d).__name__ for d in msg.defects],
                  "parts": parts}))
]]

-- f's body parsed by Python's email package: {multipart =, defects =,
-- parts = {{name =, filename =, content_type =, hex =}...}}
local function python_parse(dir, f)
  local script, body = dir .. "/parse.py", dir .. "/body"
  lasync.fs.writefile(script, PARSE_PY)
  lasync.fs.writefile(body, body_of(f))
  local code, out, err = helper.capture(("python3 %s %s %s"):format(script,
    body, helper.shell_quote(f:content_type())))
  assert.are.equal(0, code, err)
  return lasync.json.decode(out)
end

-- every byte, then line ends and a false delimiter
local BINARY = (function()
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  return table.concat(t):rep(3) .. "\r\n\r\r\n--\0\0\r\n--x--\r\n"
end)()

describe("lasync.http.form{} (multipart/form-data)", function()
  it("builds text, repeated and file fields that lasync's parser reads " ..
    "back, with an exact size and content type", function()
      helper.in_dir(function(dir)
        lasync.fs.writefile(dir .. "/notes.txt", "line 1\r\nline 2")
        local f = formdata.form {
          user = "alice", n = 42, flag = true,
          tags = { "a", "b", 3 },
          notes = formdata.file_part(dir .. "/notes.txt"),
          raw = formdata.part("\0\1\2", { filename = "r.bin" }),
          text = formdata.part("just text"),
        }
        assert.is_true(formdata.is_form(f))
        assert.is_false(formdata.is_form({}))
        assert.matches("^multipart/form%-data; boundary=%x+$",
          f:content_type())
        assert.are.equal(32, #f:content_type():match("boundary=(.*)"))
        local body = body_of(f)
        assert.are.equal(#body, f:size())
        assert.are.equal(body, body_of(f)) -- chunks() again: a new pass
        local p = parse(f)
        assert.are.equal("alice", p.user)
        assert.are.equal("42", p.n)
        assert.are.equal("true", p.flag)
        assert.are.same({ "a", "b", "3" }, p:getall("tags"))
        assert.are.equal("just text", p.text)
        assert.are.equal("notes.txt", p.notes.filename)
        assert.are.equal("text/plain; charset=utf-8", p.notes.content_type)
        assert.are.equal("line 1\r\nline 2", p.notes.read())
        assert.are.equal("r.bin", p.raw.filename)
        assert.are.equal("application/octet-stream", p.raw.content_type)
        assert.are.equal("\0\1\2", p.raw.read())
        -- a hash table's names go sorted
        local names = {}
        for k in p:items() do names[#names + 1] = k end
        assert.are.same({ "flag", "n", "notes", "raw", "tags", "tags",
          "tags", "text", "user" }, names)
      end)
    end)

  it("runs two passes at once independently (a body sent twice)",
    function()
      helper.in_dir(function(dir)
        local content = ("abcdefgh"):rep(40000) -- 320 000 bytes
        lasync.fs.writefile(dir .. "/f", content)
        local f = formdata.form { { "a", "1" },
          { "f", formdata.file_part(dir .. "/f") }, { "b", "2" } }
        local it1, it2 = f:chunks(), f:chunks()
        local b1, b2 = {}, {}
        while true do
          local c1, c2 = it1(), it2()
          assert.are.equal(c1, c2)
          if not c1 then break end
          b1[#b1 + 1], b2[#b2 + 1] = c1, c2
        end
        local body = table.concat(b1)
        assert.are.equal(f:size(), #body)
        assert.is_not_nil(body:find(content, 1, true))
      end)
    end)

  it("keeps the order of an array of pairs and of a MultiDict", function()
    helper.run(function()
      local f = formdata.form { { "z", "1" }, { "a", "2" }, { "z", "3" },
        { "m", { "4", "5" } } }
      local p = parse(f)
      local seen = {}
      for k, v in p:items() do seen[#seen + 1] = k .. "=" .. v end
      assert.are.same({ "z=1", "a=2", "z=3", "m=4", "m=5" }, seen)
      local md = multidict.new()
      md:add("b", "1")
      md:add("a", "2")
      md:add("b", "3")
      p = parse(formdata.form(md))
      seen = {}
      for k, v in p:items() do seen[#seen + 1] = k .. "=" .. v end
      assert.are.same({ "b=1", "a=2", "b=3" }, seen)
    end)
  end)

  it("is read by a lasync HTTP server's req:post(), streamed with its " ..
    "Content-Length", function()
      helper.in_dir(function(dir)
        local big = ("0123456789"):rep(150000) -- 1.5 MB: spooled
        lasync.fs.writefile(dir .. "/big.txt", big)
        local app = lasync.http.App { client_max_size = 4 * 1048576 }
        app:post("/form", function(req)
          local f = req:post()
          local up = f.big
          return lasync.http.json { name = f.name, tags = f:getall("tag"),
            size = up.size, same = up.read() == big, file = up.filename,
            bin = f.bin.read() == BINARY }
        end)
        app:post("/urlencoded", function(req)
          local f = req:post()
          return lasync.http.json { q = f.q, a = f:getall("a") }
        end)
        local server = app:start { host = "127.0.0.1", port = 0 }
        local _, port = server:address()
        local function post(path, ctype, size, chunks)
          local r, w = lasync.open_connection("127.0.0.1", port)
          w:write(("POST %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" ..
            "Content-Type: %s\r\nContent-Length: %d\r\n\r\n")
            :format(path, ctype, size))
          for c in chunks do w:write(c) end
          local got = r:read()
          w:close()
          assert.matches("^HTTP/1.1 200", got)
          return lasync.json.decode(got:match("\r\n\r\n(.*)$"))
        end
        local f = formdata.form { name = "x y", tag = { "1", "2" },
          big = formdata.file_part(dir .. "/big.txt"),
          bin = formdata.part(BINARY, { filename = "b" }) }
        local res = post("/form", f:content_type(), f:size(), f:chunks())
        assert.are.same({ name = "x y", tags = { "1", "2" }, size = #big,
          same = true, file = "big.txt", bin = true }, res)
        local body = formdata.urlencode { q = "a+b &", a = { 1, 2 } }
        res = post("/urlencoded", "application/x-www-form-urlencoded",
          #body, function()
            local s = body
            body = nil
            return s
          end)
        assert.are.same({ q = "a+b &", a = { "1", "2" } }, res)
        server:close()
        server:wait_closed()
      end, 10)
    end)

  it("is read back the same by Python's email package", function()
    helper.in_dir(function(dir)
      lasync.fs.writefile(dir .. "/data.json", '{"a": 1}')
      local f = formdata.form {
        { "name", "x y" },
        { "tags", { "a", "b" } },
        { "bin", formdata.part(BINARY, { filename = "b.bin",
          content_type = "application/x-thing" }) },
        { "doc", formdata.file_part(dir .. "/data.json") },
        { "empty", "" },
      }
      local r = python_parse(dir, f)
      assert.is_true(r.multipart)
      assert.are.same({}, r.defects)
      local want = {
        { "name", nil, nil, "x y" }, { "tags", nil, nil, "a" },
        { "tags", nil, nil, "b" },
        { "bin", "b.bin", "application/x-thing", BINARY },
        { "doc", "data.json", "application/json", '{"a": 1}' },
        { "empty", nil, nil, "" },
      }
      assert.are.equal(#want, #r.parts)
      for i, w in ipairs(want) do
        local got = r.parts[i]
        assert.are.equal(w[1], got.name)
        assert.are.equal(w[2], got.filename ~= lasync.json.null and
          got.filename or nil)
        assert.are.equal(w[3], got.content_type ~= lasync.json.null and
          got.content_type or nil)
        assert.are.equal(hex(w[4]), got.hex)
      end
    end)
  end)

  it("escapes odd names and filenames as browsers do", function()
    helper.in_dir(function(dir)
      local odd = {
        { 'a "quoted" name.txt', "a %22quoted%22 name.txt" },
        { "line\r\nbreak.txt", "line%0D%0Abreak.txt" },
        { "semi;colon=x; filename=y.txt", "semi;colon=x; filename=y.txt" },
        { "\195\188n\195\175c\195\182d\195\169 \226\152\131.txt",
          "\195\188n\195\175c\195\182d\195\169 \226\152\131.txt" },
        { " lead and trail ", " lead and trail ", "lead and trail" },
        { "100%.txt", "100%.txt" },
      }
      local fields = {}
      for i, o in ipairs(odd) do
        fields[i] = { 'field "' .. i .. '"\r\n',
          formdata.part("c" .. i, { filename = o[1] }) }
      end
      local f = formdata.form(fields)
      local head = body_of(f)
      assert.is_nil(head:find("line\r\nbreak", 1, true))
      -- a backslash is sent as it is, as browsers send it
      local raw = body_of(formdata.form { f = formdata.part("", {
        filename = "a\\b.txt" }) })
      assert.is_not_nil(raw:find('; filename="a\\b.txt"\r\n', 1, true))
      local p = parse(f)
      for i, o in ipairs(odd) do
        local got = p:getall('field %22' .. i .. '%22%0D%0A')
        assert.are.equal(1, #got, o[1])
        assert.are.equal(o[2], got[1].filename)
        assert.are.equal("c" .. i, got[1].read())
      end
      local r = python_parse(dir, f)
      assert.are.same({}, r.defects)
      for i, o in ipairs(odd) do
        assert.are.equal('field %22' .. i .. '%22%0D%0A', r.parts[i].name)
        assert.are.equal(o[3] or o[2], r.parts[i].filename) -- Python
                                        -- strips white space around it
      end
    end)
  end)

  it("sends an empty form as just the closing boundary", function()
    helper.in_dir(function(dir)
      local f = formdata.form {}
      local b = f:content_type():match("boundary=(.*)")
      assert.are.equal("--" .. b .. "--\r\n", body_of(f))
      assert.are.equal(#b + 6, f:size())
      assert.are.equal(0, parse(f):len())
      assert.are.equal(0, parse(formdata.form(multidict.new())):len())
      assert.are.same({}, python_parse(dir, f).parts)
    end)
  end)

  it("chooses another boundary when one occurs in a part", function()
    helper.run(function()
      local real = formdata._random_hex
      local given = { ("a"):rep(32), ("b"):rep(32), ("c"):rep(32) }
      local calls = 0
      formdata._random_hex = function()
        calls = calls + 1
        return given[calls]
      end
      local ok, f = pcall(formdata.form, { x = "..." .. ("a"):rep(32),
        y = formdata.part(("b"):rep(40)) })
      formdata._random_hex = real
      assert(ok, f)
      assert.are.equal(3, calls)
      assert.are.equal("multipart/form-data; boundary=" .. ("c"):rep(32),
        f:content_type())
      local p = parse(f)
      assert.are.equal("..." .. ("a"):rep(32), p.x)
      assert.are.equal(("b"):rep(40), p.y)
      -- real boundaries differ
      assert.are_not.equal(formdata.form({}):content_type(),
        formdata.form({}):content_type())
    end)
  end)

  it("streams a 50 MB file 64 KiB at a time in little memory", function()
    helper.in_dir(function(dir)
      local path = dir .. "/big.bin"
      local h = assert(io.open(path, "wb"))
      local block = ("0123456789abcdef"):rep(65536) -- 1 MiB
      for _ = 1, 50 do h:write(block) end
      h:close()
      block = nil -- luacheck: ignore
      local f = formdata.form { a = "1",
        big = formdata.file_part(path, { content_type = "x/y" }) }
      collectgarbage()
      collectgarbage()
      -- the heap is measured after a full collection every 4 MB read:
      -- what the pass keeps alive, not when the collector runs
      local base, peak = collectgarbage("count"), 0
      local total, n, max_chunk = 0, 0, 0
      for c in f:chunks() do
        total, n = total + #c, n + 1
        if #c > max_chunk then max_chunk = #c end
        if n % 64 == 0 then
          collectgarbage()
          local kb = collectgarbage("count")
          if kb > peak then peak = kb end
        end
      end
      assert.are.equal(f:size(), total)
      assert.are.equal(65536, max_chunk)
      assert.is_true(n >= 800, "chunks: " .. n)
      assert.is_true(peak - base < 1024, ("the Lua heap grew by %.0f KB")
        :format(peak - base))
      -- and what lasync's parser reads back is the file
      local p, cleanup = parse(f, { max_size = f:size(),
        spool_threshold = 1024, tmpdir = dir })
      assert.are.equal(50 * 1048576, p.big.size)
      assert.are.equal("x/y", p.big.content_type)
      local a = assert(io.open(p.big.path, "rb"))
      local b = assert(io.open(path, "rb"))
      while true do
        local x, y = a:read(1048576), b:read(1048576)
        assert(x == y, "the spooled file differs")
        if not x then break end
      end
      a:close()
      b:close()
      cleanup()
    end, 60)
  end)

  it("raises OSError when a file's size changed since file_part",
    function()
      helper.in_dir(function(dir)
        local path = dir .. "/f.bin"
        local big = ("z"):rep(200000)
        for _, case in ipairs {
          { "grown before", function() lasync.fs.writefile(path, big .. "x")
          end, 0 },
          { "shrunk before", function()
            lasync.fs.writefile(path, big:sub(2)) end, 0 },
          { "grown mid-stream", function()
            local h = assert(io.open(path, "ab"))
            h:write("more")
            h:close()
          end, 2 },
          { "truncated mid-stream", function()
            local h = assert(io.open(path, "r+b"))
            h:close()
            os.execute("truncate -s 70000 " .. helper.shell_quote(path))
          end, 2 },
        } do
          lasync.fs.writefile(path, big)
          local f = formdata.form { f = formdata.file_part(path) }
          local it = f:chunks()
          for _ = 1, case[3] do assert.is_string(it()) end
          case[2]()
          local err = helper.error_of(function()
            while it() do end
          end)
          assert(lasync.is_error(err, lasync.OSError), case[1] .. ": " ..
            helper.show(err))
          assert.are.equal(path, err.target)
          assert.are.equal("lasync.http.form: " .. path .. " changed size " ..
            "while it was sent (200000 bytes when the form was built)",
            err.message)
        end
        -- a file removed since: the OSError of opening it
        lasync.fs.writefile(path, "abc")
        local f = formdata.form { f = formdata.file_part(path) }
        lasync.fs.unlink(path)
        local it = f:chunks()
        local err = helper.error_of(function() while it() do end end)
        helper.assert_os_error(err, "ENOENT", "http.form", path)
      end)
    end)

  it("closes the file of an abandoned pass: f:close(), a for left " ..
    "early", function()
      helper.in_dir(function(dir)
        local function open_fds()
          local n = 0
          for _ in lasync.fs.scandir("/proc/self/fd") do n = n + 1 end
          return n
        end
        local path = dir .. "/f.bin"
        lasync.fs.writefile(path, ("q"):rep(300000))
        local f = formdata.form { f = formdata.file_part(path) }
        local fds = open_fds()
        local it = f:chunks()
        it()
        it() -- the file is open
        assert.are.equal(fds + 1, open_fds())
        f:close()
        assert.are.equal(fds, open_fds())
        raises_msg("lasync.http.Form:chunks: the iterator was closed", it)
        -- a new pass after close works
        assert.are.equal(f:size(), #body_of(f))
        for i, _ in f:chunks() do
          if i and #i == 65536 then break end
        end
        assert.are.equal(fds, open_fds())
        do
          local _ <close> = f
          local it2 = f:chunks()
          it2()
          it2()
          assert.are.equal(fds + 1, open_fds())
        end
        assert.are.equal(fds, open_fds())
        -- a task cancelled in the middle: the for closes the file
        local started = lasync.Event()
        local t = lasync.spawn(function()
          for _ in f:chunks() do
            if open_fds() == fds + 1 then
              started:set()
              lasync.sleep(10)
            end
          end
        end)
        started:wait()
        t:cancel()
        helper.assert_cancelled(t)
        assert.are.equal(fds, open_fds())
        -- cancelled while a read is in flight: the read closes it
        local reading = lasync.Event()
        t = lasync.spawn(function()
          local it3 = f:chunks()
          it3()
          reading:set()
          while it3() do end
        end)
        reading:wait()
        t:cancel()
        helper.assert_cancelled(t)
        helper.wait_until(function() return open_fds() == fds end)
      end)
    end)

  it("file_part: defaults, missing files, directories", function()
    helper.in_dir(function(dir)
      lasync.fs.writefile(dir .. "/pic.PNG", "png")
      local p = formdata.file_part(dir .. "/pic.PNG")
      assert.is_true(formdata.is_part(p))
      assert.are.equal("pic.PNG", p.filename)
      assert.are.equal("image/png", p.content_type)
      assert.are.equal(3, p.size)
      p = formdata.file_part(dir .. "/pic.PNG", { filename = "x.unknown" })
      assert.are.equal("application/octet-stream", p.content_type)
      p = formdata.file_part(dir .. "/pic.PNG", { content_type = "a/b" })
      assert.are.equal("a/b", p.content_type)
      assert.are.equal("pic.PNG", p.filename)
      helper.os_error("ENOENT", "http.file_part", dir .. "/none",
        formdata.file_part, dir .. "/none")
      local err = helper.error_of(formdata.file_part, dir)
      assert(lasync.is_error(err, lasync.OSError), helper.show(err))
      assert.are.equal("lasync.http.file_part: not a regular file (" ..
        dir .. ")", err.message)
    end)
  end)

  it("refuses bad arguments before doing anything", function()
    helper.run(function()
      local cases = {
        { "lasync.http.form: fields must be a table", formdata.form, "x" },
        { "lasync.http.form: fields must be a table", formdata.form,
          formdata.form {} },
        { "lasync.http.form: value of field \"a\" must be a string, " ..
          "number, boolean, part or an array of those (got a table with " ..
          "key x)", formdata.form, { a = { x = 1 } } },
        { "lasync.http.form: element 1 of field \"a\" must be a string, " ..
          "number, boolean or part (got table)", formdata.form,
          { a = { {} } } },
        { "lasync.http.form: value of field \"a\" must be a string",
          formdata.form, { a = print } },
        { "lasync.http.form: a field name must be a string (got number)",
          formdata.form, { [1.5] = "x" } },
        { "lasync.http.form: fields mixes {name, value} pairs with the " ..
          "key b", formdata.form, { { "a", "1" }, b = "2" } },
        { "lasync.http.form: field 2 must be a {name, value} pair (got " ..
          "table)", formdata.form, { { "a", "1" }, { "b" } } },
        { "lasync.http.form: the name of field 1 must be a string (got " ..
          "number)", formdata.form, { { 1, "1" } } },
        { "lasync.http.form: field name \"a\\0b\" contains a NUL byte",
          formdata.form, { ["a\0b"] = "1" } },
        { "lasync.http.part: bytes must be a string (got nil)",
          formdata.part },
        { "lasync.http.part: opts must be a table", formdata.part, "x", 1 },
        { "lasync.http.part: unknown option name (options are " ..
          "content_type, filename)", formdata.part, "x", { name = "y" } },
        { "lasync.http.part: content_type contains CR, LF or NUL",
          formdata.part, "x", { content_type = "text/plain\r\nX-A: b" } },
        { "lasync.http.part: content_type contains CR, LF or NUL",
          formdata.part, "x", { content_type = "a/b\0" } },
        { "lasync.http.part: content_type must be a non-empty string",
          formdata.part, "x", { content_type = "" } },
        { "lasync.http.part: filename must be a string (got number)",
          formdata.part, "x", { filename = 1 } },
        { "lasync.http.part: filename contains a NUL byte",
          formdata.part, "x", { filename = "a\0" } },
        { "lasync.http.file_part: path must be a string (got nil)",
          formdata.file_part },
        { "lasync.http.file_part: path contains an embedded NUL byte",
          formdata.file_part, "/tmp/a\0b" },
        { "lasync.http.file_part: path is empty", formdata.file_part, "" },
        { "lasync.http.file_part: content_type contains CR, LF or NUL",
          formdata.file_part, "/nonexistent", { content_type = "a\nb" } },
        { "lasync.http.Form:size: expected a Form (got table)",
          formdata.form({}).size, {} },
        { "lasync.http.Form:chunks: expected a Form (got no value)",
          formdata.form({}).chunks },
      }
      for _, c in ipairs(cases) do
        raises_msg(c[1], table.unpack(c, 2))
      end
      -- the message blames the caller's line
      local err = helper.error_of(function()
        local f = formdata.form { a = print }
        return f -- not a tail call: the caller is this function
      end)
      assert.matches("^[^:]*http_formdata_spec%.lua:%d+: ", err)
    end)
  end)
end)

describe("lasync.http.formdata outside a task", function()
  it("says which function needs one", function()
    raises_msg("lasync.http.file_part: not inside a task",
      formdata.file_part, "/nonexistent")
    -- a form of text fields needs none; one with a file, to read it
    assert.matches("^%-%-%x+\r\n", formdata.form({ a = "1" }):chunks()())
    local f = helper.run(function()
      local path = os.tmpname() -- an empty file
      local part = formdata.file_part(path)
      os.remove(path)
      return formdata.form { a = part }
    end)
    local it = f:chunks()
    it()
    raises_msg("lasync.http.Form:chunks: not inside a task", it)
  end)
end)

describe("lasync.http.formdata.urlencode", function()
  local enc = formdata.urlencode

  it("encodes as aiohttp and requests do: space as +, names sorted, " ..
    "repeated fields", function()
      assert.are.equal("", enc {})
      assert.are.equal("a=%C3%A9%26%3D%2B&b=x+y&b=1&b=true&c=-._~",
        enc { b = { "x y", 1, true }, a = "\195\169&=+", c = "-._~" })
      assert.are.equal("z=1&a=2&z=3&m=x&m=y",
        enc { { "z", 1 }, { "a", "2" }, { "z", 3 }, { "m", { "x", "y" } } })
      local md = multidict.new()
      md:add("q", "a b")
      md:add("p", "\0")
      assert.are.equal("q=a+b&p=%00", enc(md))
      assert.are.equal("n=1.5&e=", enc { { "n", 1.5 }, { "e", "" } })
      -- url.parse_qs reads it back
      local back = url.parse_qs(enc { a = { "1 2", "&" }, b = "\r\n" })
      assert.are.same({ "1 2", "&" }, back:getall("a"))
      assert.are.equal("\r\n", back.b)
    end)

  it("refuses bad fields, naming the function", function()
    raises_msg("lasync.http.urlencode: field names must be strings (got " ..
      "number 1.5)", enc, { [1.5] = "x" })
    raises_msg("lasync.http.urlencode: value of \"a\" must be a string, " ..
      "number, boolean or an array of those (got a table with key x)", enc,
      { a = { x = 1 } })
    raises_msg("lasync.http.urlencode: element 1 of \"a\" must be a " ..
      "string, number or boolean (got table)", enc, { a = { { 1 } } })
    raises_msg("lasync.http.urlencode: value of \"a\" must be a string, " ..
      "number, boolean or an array of those (got function)", enc,
      { a = print })
    raises_msg("lasync.http.urlencode: fields must be a table", enc, "a=1")
    raises_msg("lasync.http.urlencode: fields mixes {name, value} pairs " ..
      "with the key b", enc, { { "a", 1 }, b = 2 })
    raises_msg("lasync.http.urlencode: field 1 must be a {name, value} " ..
      "pair", enc, { { "a", 1, 2 } })
    local md = multidict.new()
    md:add("a", {})
    raises_msg("lasync.http.urlencode: value of \"a\" must be a string, " ..
      "number or boolean (got table)", enc, md)
    raises_msg("lasync.http.Session:post: field names must be strings",
      enc, { [true] = 1 }, "lasync.http.Session:post")
    local err = helper.error_of(function()
      local s = enc { a = print }
      return s -- not a tail call
    end)
    assert.matches("^[^:]*http_formdata_spec%.lua:%d+: ", err)
  end)
end)
