-- Issue 13: the client's response parser (its header array, malloc'd)
-- and the decoder of a gzip response (zlib's z_stream) are freed on every
-- path: a body read to its end, a response released half read, a
-- corrupt body, a connection the server cut, a session closed with a
-- response unread, a response left to the garbage collector. The
-- scenario runs in a lasync process of its own, so that under the
-- sanitizer build (LASYNC_BIN) LeakSanitizer checks it at exit.
local helper = require "helper"

local SCRIPT = [==[
local lasync = require "lasync"
local http = lasync.http
local f = assert(io.open(arg[1], "rb"))
local gz = f:read("a")
f:close()
lasync.run(function()
  local srv = lasync.start_server(function(r, w)
    while true do
      local ok, head = pcall(r.readuntil, r, "\r\n\r\n")
      if not ok then break end
      local path = head:match("^%u+ (%S+)")
      local body = gz
      if path == "/corrupt" then body = gz:sub(1, 100) .. ("x"):rep(200) end
      local n = path == "/cut" and #body // 2 or #body
      w:write(("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n" ..
        "Content-Length: %d\r\n\r\n"):format(#body) .. body:sub(1, n))
      if path == "/cut" then break end
    end
    w:close()
  end, "127.0.0.1", 0)
  local host, port = srv:address()
  local base = ("http://%s:%d"):format(host, port)
  local s = http.Session()
  local results = {}
  results[#results + 1] = #s:get(base .. "/full"):read()
  local half = s:get(base .. "/half")
  half:iter_chunked(1000)()
  half:release()
  results[#results + 1] = pcall(function() s:get(base .. "/corrupt"):read() end)
  results[#results + 1] = pcall(function() s:get(base .. "/cut"):read() end)
  local _ = s:get(base .. "/unread")
  s:close()
  local t = http.Session()
  t:get(base .. "/gc"):iter_chunked(10)()
  collectgarbage()
  collectgarbage()
  t:close()
  srv:close()
  srv:wait_closed()
  print(table.concat({ tostring(results[1]), tostring(results[2]),
    tostring(results[3]) }, " "))
end)
]==]

describe("lasync.http client parsers", function()
  it("free their memory on every path (LeakSanitizer in the asan build)",
    function()
      local gzpath = os.tmpname()
      local p = assert(io.popen(("python3 -c 'import sys, zlib; " ..
        "c = zlib.compressobj(6, zlib.DEFLATED, 31); " ..
        "sys.stdout.buffer.write(c.compress(bytes(range(256)) * 4000) + " ..
        "c.flush())' > %s"):format(gzpath)))
      p:close()
      local script = helper.temp_script(SCRIPT)
      local code, out, err = helper.lasync_cmd(script .. " " .. gzpath, nil,
        "ASAN_OPTIONS=detect_leaks=1")
      os.remove(script)
      os.remove(gzpath)
      assert.are.equal(0, code, err)
      assert.are.equal("1024000 false false\n", out)
      assert.is_nil(err:find("LeakSanitizer", 1, true), err)
    end)
end)
