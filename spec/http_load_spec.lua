-- lasync.http under real load generators: wrk (keep-alive, 50
-- connections) and ApacheBench with keep-alive (`ab -k`) against an App
-- served by this process; every request must be answered with 200, none
-- fail, and the connections are reused. Pending when a tool is missing
-- (Debian packages wrk and apache2-utils, installed by scripts/deps.sh).
local helper = require "helper"
local lasync = helper.lasync
local http = lasync.http

local function has(tool)
  return os.execute("command -v " .. tool .. " >/dev/null 2>&1") == true
end

-- Run a program to its end (bounded), without the sanitizer runtime a
-- sanitizer build preloads (the tools are not built for it); its stdout.
local function run(file, args, limit)
  local argv = { "-u", "LD_PRELOAD", "-u", "ASAN_OPTIONS", "-u",
                 "UBSAN_OPTIONS", file }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local proc = lasync.subprocess.exec("env", argv,
    { stdout = "pipe", stderr = "pipe", stdin = "null" })
  local ok, out, err = pcall(lasync.wait_for, function()
    return proc:communicate()
  end, limit * helper.multiplier)
  if not ok then
    proc:kill()
    proc:wait()
    error(out, 0)
  end
  assert.equal(0, proc:returncode(), err)
  return out
end

local function app()
  local a = http.App()
  local n = 0
  a:get("/", function() return "Hello, world\n" end)
  a:get("/json", function()
    n = n + 1
    return http.json { message = "Hello, world", n = n }
  end)
  a:post("/echo", function(req) return req:read() end)
  return a
end

describe("lasync.http under load", function()
  it("answers wrk's keep-alive load with no error", function()
    if not has("wrk") then
      pending("wrk is not installed (Debian package wrk)")
      return
    end
    helper.run(function()
      local srv <close> = app():start { host = "127.0.0.1", port = 0 }
      local _, port = srv:address()
      for _, path in ipairs { "/", "/json" } do
        local out = run("wrk", { "-t1", "-c50", "-d1s",
          ("http://127.0.0.1:%d%s"):format(port, path) }, 30)
        local n = tonumber(out:match("(%d+) requests in"))
        assert.is_true(n and n > 0, out)
        assert.is_nil(out:find("Socket errors", 1, true), out)
        assert.is_nil(out:find("Non%-2xx"), out)
      end
      srv:close()
      srv:wait_closed()
    end, 60)
  end)

  it("answers ab -k with every request kept alive and none failed",
      function()
    if not has("ab") then
      pending("ab is not installed (Debian package apache2-utils)")
      return
    end
    helper.run(function()
      local srv <close> = app():start { host = "127.0.0.1", port = 0 }
      local _, port = srv:address()
      local out = run("ab", { "-k", "-q", "-n", "4000", "-c", "20",
        ("http://127.0.0.1:%d/"):format(port) }, 30)
      assert.equal("4000", out:match("Complete requests:%s+(%d+)"), out)
      assert.equal("0", out:match("Failed requests:%s+(%d+)"), out)
      assert.equal("4000", out:match("Keep%-Alive requests:%s+(%d+)"), out)
      assert.is_nil(out:find("Non%-2xx"), out)
      -- and bodies: a POSTed file is echoed back each time
      local dir = os.tmpname()
      local f = assert(io.open(dir, "wb"))
      f:write(("0123456789abcdef"):rep(4096)) -- 64 KiB
      f:close()
      out = run("ab", { "-k", "-q", "-n", "500", "-c", "10", "-p", dir,
        "-T", "application/octet-stream",
        ("http://127.0.0.1:%d/echo"):format(port) }, 30)
      os.remove(dir)
      assert.equal("0", out:match("Failed requests:%s+(%d+)"), out)
      assert.equal("500", out:match("Keep%-Alive requests:%s+(%d+)"), out)
      assert.equal(tostring(500 * 65536),
        out:match("HTML transferred:%s+(%d+)"), out)
      srv:close()
      srv:wait_closed()
    end, 60)
  end)
end)
