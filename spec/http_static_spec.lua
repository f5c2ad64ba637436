-- lasync.http.static: files under a prefix as response tables (200 with
-- file = {path, offset, length}), validators and conditional requests
-- (304, 412), single ranges (206, 416, multi-range as 200), HEAD, 405,
-- the traversal table (.., %2e%2e, %2f, %5c, backslash, NUL, symlinks
-- out of the root: CVE-2024-23334) and directory index pages with
-- escaped names (CVE-2024-27306).
local helper = require "helper"
local static = require "lasync.http.static"
local date = require "lasync.http.date"

local lasync = helper.lasync
local fs = lasync.fs
local raises_msg = helper.raises_msg

-- A tree under dir: www/ (the root) with files, a subdirectory, a file
-- with a hostile name and links in and out; secret.txt beside www/.
local EVIL = [[<img src=x onerror="alert('x')">&.txt]]
local function tree(dir)
  local www = dir .. "/www"
  fs.mkdir(www)
  fs.mkdir(www .. "/sub dir")
  fs.writefile(www .. "/hello.txt", "hello, world\n")
  fs.writefile(www .. "/app.js", "console.log(1)\n")
  fs.writefile(www .. "/sub dir/page.html", "<p>hi</p>")
  fs.writefile(www .. "/" .. EVIL, "evil")
  fs.writefile(www .. "/%2e%2e", "literal name")
  fs.writefile(dir .. "/secret.txt", "secret")
  assert(os.execute(("ln -s %s %s"):format(
    helper.shell_quote(dir .. "/secret.txt"),
    helper.shell_quote(www .. "/out.txt"))))
  assert(os.execute(("ln -s hello.txt %s"):format(
    helper.shell_quote(www .. "/in.txt"))))
  return www
end

describe("lasync.http.static", function()
  it("serves a file with its type and validators", function()
    helper.in_dir(function(dir)
      local www = tree(dir)
      local s = static.new("/static", www)
      local r = s:handle("GET", "/static/hello.txt?v=1", {})
      local st = fs.stat(www .. "/hello.txt")
      local real = fs.realpath(www)
      assert.are.equal(200, r.status)
      assert.are.same({ path = real .. "/hello.txt", offset = 0,
        length = 13, chunk_size = 262144 }, r.file)
      assert.is_nil(r.body)
      assert.are.equal("text/plain; charset=utf-8", r.headers["Content-Type"])
      assert.are.equal("bytes", r.headers["Accept-Ranges"])
      assert.are.equal(date.format(math.floor(st.mtime)),
        r.headers["Last-Modified"])
      assert.matches('^"%x+%-d"$', r.headers.ETag)
      local js = s:handle("HEAD", "/static/app.js")
      assert.are.equal(200, js.status)
      assert.are.equal("text/javascript; charset=utf-8",
        js.headers["Content-Type"])
      local page = s:handle("GET", "/static/sub%20dir/page.html")
      assert.are.equal(real .. "/sub dir/page.html", page.file.path)
      assert.are.equal(200, s:handle("GET", "/static/in.txt").status)
      assert.are.equal(200, s:handle("GET", "/static//hello.txt").status)
      assert.are.equal(200, s:handle("GET", "/static/./hello.txt").status)
      assert.are.equal(404, s:handle("GET", "/static/nope.txt").status)
      assert.are.equal(404, s:handle("GET", "/statichello.txt").status)
      assert.are.equal(404, s:handle("GET", "/other/hello.txt").status)
      assert.are.equal(404, s:handle("GET",
        "/static/hello.txt/x").status)
      local post = s:handle("POST", "/static/hello.txt")
      assert.are.equal(405, post.status)
      assert.are.equal("GET, HEAD", post.headers.Allow)
      local big = static.new("/", www, { chunk_size = 4096 })
      local r2 = big:handle("GET", "/hello.txt")
      assert.are.equal(4096, r2.file.chunk_size)
    end)
  end)

  it("answers conditional requests", function()
    helper.in_dir(function(dir)
      local www = tree(dir)
      local s = static.new("/s", www)
      local r = s:handle("GET", "/s/hello.txt")
      local etag, lm = r.headers.ETag, r.headers["Last-Modified"]
      local function status(h)
        return s:handle("GET", "/s/hello.txt", h).status
      end
      assert.are.equal(304, status { ["if-none-match"] = etag })
      assert.are.equal(304, status { ["if-none-match"] = '"x", W/' .. etag })
      assert.are.equal(304, status { ["if-none-match"] = "*" })
      assert.are.equal(200, status { ["if-none-match"] = '"other"' })
      local not_mod = s:handle("GET", "/s/hello.txt",
        { ["if-modified-since"] = lm })
      assert.are.equal(304, not_mod.status)
      assert.are.same({ ETag = etag, ["Last-Modified"] = lm },
        not_mod.headers)
      assert.is_nil(not_mod.file)
      local mtime = date.parse(lm)
      assert.are.equal(200, status { ["if-modified-since"] =
        date.format(mtime - 1) })
      assert.are.equal(200, status { ["if-modified-since"] = "garbage" })
      -- If-None-Match wins over If-Modified-Since
      assert.are.equal(200, status { ["if-none-match"] = '"other"',
        ["if-modified-since"] = lm })
      assert.are.equal(200, status { ["if-match"] = etag })
      assert.are.equal(412, status { ["if-match"] = '"other"' })
      assert.are.equal(412, status { ["if-match"] = "W/" .. etag })
      assert.are.equal(412, status { ["if-unmodified-since"] =
        date.format(mtime - 10) })
      assert.are.equal(200, status { ["if-unmodified-since"] = lm })
    end)
  end)

  it("answers a single range with 206 and an unsatisfiable one with 416",
    function()
      helper.in_dir(function(dir)
        local www = tree(dir)
        local s = static.new("/s", www)
        local function get(range, extra)
          local h = extra or {}
          h.range = range
          return s:handle("GET", "/s/hello.txt", h)
        end
        local r = get("bytes=0-4")
        assert.are.equal(206, r.status)
        assert.are.same({ 0, 5 }, { r.file.offset, r.file.length })
        assert.are.equal("bytes 0-4/13", r.headers["Content-Range"])
        r = get("bytes=7-")
        assert.are.same({ 206, 7, 6 }, { r.status, r.file.offset,
          r.file.length })
        r = get("bytes=-3")
        assert.are.same({ 206, 10, 3 }, { r.status, r.file.offset,
          r.file.length })
        assert.are.equal("bytes 10-12/13", r.headers["Content-Range"])
        r = get("bytes=-100")
        assert.are.same({ 206, 0, 13 }, { r.status, r.file.offset,
          r.file.length })
        r = get("bytes=5-1000")
        assert.are.equal("bytes 5-12/13", r.headers["Content-Range"])
        for _, bad in ipairs { "bytes=13-", "bytes=100-200", "bytes=-0" } do
          r = get(bad)
          assert.are.equal(416, r.status, bad)
          assert.are.equal("bytes */13", r.headers["Content-Range"])
          assert.is_nil(r.file)
        end
        -- ignored: several ranges, other units, malformed, reversed
        for _, ignored in ipairs { "bytes=0-1,3-4", "lines=1-2", "bytes=x",
          "bytes=4-2", "bytes=-", "bytes=99999999999999999999-" } do
          r = get(ignored)
          assert.are.equal(200, r.status, ignored)
          assert.are.equal(13, r.file.length)
        end
        local etag = r.headers.ETag
        assert.are.equal(206, get("bytes=0-1", { ["if-range"] = etag }).status)
        assert.are.equal(200, get("bytes=0-1",
          { ["if-range"] = '"stale"' }).status)
        assert.are.equal(200, get("bytes=0-1",
          { ["if-range"] = "W/" .. etag }).status)
        assert.are.equal(206, get("bytes=0-1", { ["if-range"] =
          r.headers["Last-Modified"] }).status)
        assert.are.equal(206, s:handle("HEAD", "/s/hello.txt",
          { range = "bytes=1-2" }).status)
      end)
    end)

  it("refuses traversal, encoded separators, NUL and links out of the " ..
    "root (CVE-2024-23334)", function()
      helper.in_dir(function(dir)
        local www = tree(dir)
        local s = static.new("/static", www, { show_index = true })
        local refused = {
          "/static/../secret.txt", "/static/%2e%2e/secret.txt",
          "/static/%2E%2E/secret.txt", "/static/.%2e/secret.txt",
          "/static/sub%20dir/../../secret.txt", "/static/..%2fsecret.txt",
          "/static/..%2Fsecret.txt", "/static/sub%20dir%2fpage.html",
          "/static/..%5csecret.txt", "/static/..\\secret.txt",
          "/static/hello.txt%00", "/static/hello.txt\0", "/static/%00",
          "/static/out.txt", "/static/..", "/static/%2e%2e",
        }
        for _, target in ipairs(refused) do
          local r = s:handle("GET", target)
          assert.are.equal(403, r.status, target)
          assert.is_nil(r.file, target)
        end
        assert.are.equal(400, s:handle("GET", "/static/%zz").status)
        -- a file literally named "%2e%2e", asked for as %252e%252e
        local lit = s:handle("GET", "/static/%252e%252e")
        assert.are.equal(200, lit.status)
        local follow = static.new("/static", www, { follow_symlinks = true })
        local r = follow:handle("GET", "/static/out.txt")
        assert.are.equal(200, r.status)
        assert.are.equal(6, r.file.length)
        assert.are.equal(403, follow:handle("GET",
          "/static/../secret.txt").status)
      end)
    end)

  it("lists a directory only with show_index, names escaped " ..
    "(CVE-2024-27306)", function()
      helper.in_dir(function(dir)
        local www = tree(dir)
        local hidden = static.new("/static", www)
        assert.are.equal(403, hidden:handle("GET", "/static/").status)
        assert.are.equal(403, hidden:handle("GET", "/static").status)
        local s = static.new("/static/", www, { show_index = true })
        local r = s:handle("GET", "/static/")
        assert.are.equal(200, r.status)
        assert.are.equal("text/html; charset=utf-8", r.headers["Content-Type"])
        local html = r.body
        assert.is_nil(html:find(EVIL, 1, true))
        assert.is_nil(html:find("<img", 1, true))
        assert.truthy(html:find("&lt;img src=x onerror=&quot;alert(&#39;x" ..
          "&#39;)&quot;&gt;&amp;.txt</a>", 1, true))
        assert.truthy(html:find('href="/static/%3Cimg%20src%3Dx%20onerror' ..
          '%3D%22alert%28%27x%27%29%22%3E%26.txt"', 1, true))
        assert.truthy(html:find('<a href="/static/sub%20dir/">sub dir/</a>',
          1, true))
        assert.truthy(html:find("<title>Index of /static/</title>", 1, true))
        local sub = s:handle("GET", "/static/sub%20dir")
        assert.truthy(sub.body:find('<a href="/static/sub%20dir/page.html">' ..
          "page.html</a>", 1, true))
        assert.truthy(sub.body:find('<a href="/static/">..</a>', 1, true))
        assert.truthy(sub.body:find("Index of /static/sub dir<", 1, true))
      end)
    end)

  it("answers for one file with file_response", function()
    helper.in_dir(function(dir)
      local www = tree(dir)
      local r = static.file_response(www .. "/app.js",
        { range = "bytes=0-6" })
      assert.are.equal(206, r.status)
      assert.are.equal(7, r.file.length)
      assert.are.equal(404, static.file_response(www .. "/no").status)
      assert.are.equal(403, static.file_response(www).status)
    end)
  end)

  it("checks its arguments", function()
    raises_msg("lasync.http.static.new: prefix must be a path starting " ..
      "with /", static.new, "static", "/tmp")
    raises_msg("lasync.http.static.new: dir must be a non-empty path",
      static.new, "/s", "")
    raises_msg("lasync.http.static.new: unknown option index",
      static.new, "/s", "/tmp", { index = true })
    raises_msg("lasync.http.static.new: chunk_size must be a positive " ..
      "integer", static.new, "/s", "/tmp", { chunk_size = 0 })
    local s = static.new("/s", "/tmp")
    raises_msg("lasync.http.Static:handle: raw_path must be a string " ..
      "(got nil)", s.handle, s, "GET")
    raises_msg("lasync.http.Static:handle: expected a Static (got nil)",
      s.handle)
    raises_msg("lasync.http.Static:handle: req_headers must be a table " ..
      "or nil (got string)", s.handle, s, "GET", "/s/x", "h")
    local function app_static()
      static.new("s", "/tmp", nil, "lasync.http.App:static", 3)
    end
    local err = raises_msg("lasync.http.App:static: prefix", function()
      app_static()
    end)
    assert.matches("http_static_spec.lua:%d+:", err)
  end)

  it("never answers with a file outside the root (seeded random " ..
    "targets)", function()
      helper.in_dir(function(dir)
        local www = tree(dir)
        local real = fs.realpath(www)
        local s = static.new("/s", www, { show_index = true })
        local bits = { "..", "%2e", "%2E", ".", "/", "/", "%2f", "%5C", "\\",
          "%00", "hello.txt", "out.txt", "in.txt", "sub%20dir", "%252e",
          "page.html", "%", "secret.txt" }
        math.randomseed(tonumber(os.getenv("LASYNC_FUZZ_SEED")) or 7)
        local served = 0
        for _ = 1, 1500 do
          local t = { "/s/" }
          for _ = 1, math.random(1, 7) do
            t[#t + 1] = bits[math.random(#bits)]
          end
          local target = table.concat(t)
          local r = s:handle("GET", target)
          if r.file then
            served = served + 1
            assert.are.equal(real .. "/", r.file.path:sub(1, #real + 1), target)
            assert.is_nil(r.file.path:find("/../", 1, true), target)
          end
          assert.is_nil((r.body or ""):find("secret", 1, true), target)
        end
        assert.is_true(served > 0)
      end, 20)
    end)

  it("parses byte ranges", function()
    local br = static._byte_range
    assert.are.same({ 0, 0 }, { br("bytes=0-0", 1) })
    assert.are.same({ "unsatisfiable" }, { br("bytes=0-", 0) })
    assert.are.same({ "unsatisfiable" }, { br("bytes=-5", 0) })
    assert.are.same({ 2, 9 }, { br(" Bytes = 2 - 9 ", 10) })
  end)
end)
