-- A real browser against lasync.http: headless Chromium loads the page of
-- examples/web/ from its App on a free port; the page's script renders
-- the items of the JSON API and uploads a made-up file with
-- fetch(new FormData(form)); the DOM Chromium dumps must show both. The
-- example's API is also checked over plain streams, so it is tested where
-- Chromium (Debian's chromium) is not installed; the browser test is then
-- pending.
local helper = require "helper"
local lasync = helper.lasync
local cjson = require "cjson"

local here = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") or ""
local example = here .. "../examples/web/server.lua"
local web = dofile(example)

-- How long Chromium may take, page load and upload included (it takes
-- about 3 s here; scaled for sanitizer builds by helper.run).
local BROWSER_TIMEOUT = 30

-- What app.js uploads with ?demo: its sampleFile().
local SAMPLE = ("lasync upload test\r\n"):rep(50) .. (function()
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  return table.concat(bytes)
end)()

local function has_chromium()
  return os.execute("command -v chromium >/dev/null 2>&1") == true
end

-- One request over its own connection; returns status, body.
local function request(host, port, head, body)
  local r, w = lasync.open_connection(host, port)
  w:write(head .. "Connection: close\r\n\r\n" .. (body or ""))
  local reply = r:read()
  w:close()
  return tonumber(reply:match("^HTTP/1%.1 (%d+)")),
    reply:match("\r\n\r\n(.*)$")
end

local function multipart(boundary, parts)
  local out = {}
  for _, p in ipairs(parts) do
    out[#out + 1] = ("--%s\r\nContent-Disposition: form-data; " ..
      "name=\"%s\"%s\r\n%s\r\n%s\r\n"):format(boundary, p.name,
      p.filename and ('; filename="%s"'):format(p.filename) or "",
      p.filename and "Content-Type: application/octet-stream\r\n" or "",
      p.data)
  end
  out[#out + 1] = "--" .. boundary .. "--\r\n"
  return table.concat(out)
end

local function upload(host, port, parts)
  local body = multipart("b0undary", parts)
  local status, text = request(host, port, ("POST /api/upload HTTP/1.1\r\n" ..
    "Host: x\r\nContent-Type: multipart/form-data; boundary=b0undary\r\n" ..
    "Content-Length: %d\r\n"):format(#body), body)
  return status, cjson.decode(text)
end

describe("examples/web/server.lua", function()
  it("serves the page, the script and the JSON API", function()
    helper.run(function()
      local server <close> = web.start { host = "127.0.0.1", port = 0 }
      local host, port = server:address()
      local status, page = request(host, port, "GET / HTTP/1.1\r\nHost: x\r\n")
      assert.equal(200, status)
      assert.truthy(page:find('<script src="/app.js">', 1, true))
      status = request(host, port, "GET /app.js HTTP/1.1\r\nHost: x\r\n")
      assert.equal(200, status)
      local json
      status, json = request(host, port,
        "GET /api/items HTTP/1.1\r\nHost: x\r\n")
      assert.equal(200, status)
      local items = cjson.decode(json).items
      assert.equal(3, #items)
      assert.equal("libuv", items[2].name)
      server:close()
      server:wait_closed()
    end)
  end)

  it("answers an upload with the file's name, size and checksum", function()
    helper.run(function()
      local server <close> = web.start { host = "127.0.0.1", port = 0 }
      local host, port = server:address()
      local status, answer = upload(host, port, {
        { name = "note", data = "hi" },
        { name = "file", filename = "s.bin", data = SAMPLE } })
      assert.equal(200, status)
      assert.same({ note = "hi", filename = "s.bin", size = #SAMPLE,
        content_type = "application/octet-stream",
        adler32 = ("%08x"):format(web.adler32(SAMPLE)) }, answer)
      -- a form without a file is the client's mistake
      status, answer = upload(host, port, { { name = "file", data = "x" } })
      assert.equal(400, status)
      assert.equal("expected a file in the field 'file'", answer.error)
      server:close()
      server:wait_closed()
    end)
  end)

  it("serves until SIGINT when run directly", function()
    helper.run(function()
      local proc = lasync.subprocess.exec(helper.bin, { example, "0" },
        { stdout = "pipe", stderr = "pipe", stdin = "null" })
      local ok, err = pcall(function()
        local line = proc.stdout:readline()
        local port = tonumber(line:match(
          "^======== Running on http://127%.0%.0%.1:(%d+) ========\n$"))
        assert(port, "no address in: " .. line)
        local status, json = request("127.0.0.1", port,
          "GET /api/items HTTP/1.1\r\nHost: x\r\n")
        assert.equal(200, status)
        assert.equal(3, #cjson.decode(json).items)
      end)
      if not ok then                  -- leave no server behind
        proc:kill()
        proc:communicate()
        error(err, 0)
      end
      proc:send_signal("SIGINT")
      _, err = proc:communicate()
      assert.equal(0, proc:returncode())
      assert.equal("", err)
    end)
  end)
end)

describe("headless Chromium", function()
  it("renders the items and the upload's answer of examples/web",
      function()
    if not has_chromium() then
      pending("chromium is not installed (Debian package chromium)")
      return
    end
    local dom, log = helper.in_dir(function(dir)
      local server <close> = web.start { host = "127.0.0.1", port = 0 }
      local _, port = server:address()
      -- without the sanitizer runtime a sanitizer build preloads: Chromium
      -- is not built for it
      local proc = lasync.subprocess.exec("env", { "-u", "LD_PRELOAD",
        "-u", "ASAN_OPTIONS", "-u", "UBSAN_OPTIONS", "chromium", "--headless",
        "--no-sandbox", "--disable-gpu", "--user-data-dir=" .. dir,
        "--virtual-time-budget=5000", "--dump-dom",
        ("http://127.0.0.1:%d/?demo"):format(port) },
        { stdout = "pipe", stderr = "pipe", stdin = "null" })
      local ok, out, err = pcall(lasync.wait_for, function()
        return proc:communicate()
      end, BROWSER_TIMEOUT * helper.multiplier)
      if not ok then                  -- a timeout: leave no browser behind
        proc:kill()
        proc:wait()
        error(out, 0)
      end
      server:close()
      server:wait_closed()
      return out, err
    end, BROWSER_TIMEOUT + 10)
    local function has(text)
      assert(dom:find(text, 1, true), ("the DOM lacks %s\n--- DOM:\n%s\n" ..
        "--- chromium's stderr:\n%s"):format(text, dom, log))
    end
    -- the items, fetched from GET /api/items and rendered by app.js
    has('<p id="status">3 items loaded</p>')
    has('<li data-id="1"><strong>coroutines</strong>: ')
    has('<li data-id="2"><strong>libuv</strong>: ')
    has('<li data-id="3"><strong>llhttp</strong>: ')
    -- the upload's answer, written into the DOM
    has('<p id="upload-status">uploaded; checksum matches</p>')
    has('<dd id="result-filename">sample.bin</dd>')
    has(('<dd id="result-size">%d</dd>'):format(#SAMPLE))
    has(('<dd id="result-adler32">%08x</dd>'):format(web.adler32(SAMPLE)))
    has('<dd id="result-note">sent by app.js</dd>')
  end)
end)
