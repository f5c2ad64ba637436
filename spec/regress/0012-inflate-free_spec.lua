-- Issue 12: the decoder of a compressed request body (zlib's z_stream,
-- about 50 KB) is freed on every path that leaves its body unfinished: a
-- read cancelled midway then the next request, a read cancelled then
-- close, a corrupt stream, a body over the limit, the peer going away.
-- The scenario runs in a lasync process of its own, so that under the
-- sanitizer build (LASYNC_BIN) LeakSanitizer checks it at exit: the
-- shared spec runner turns leak detection off for the specs themselves.
local helper = require "helper"

local SCRIPT = [==[
local lasync = require "lasync"
local core = require "lasync.core"
local f = assert(io.open(arg[1], "rb"))
local z = f:read("a") -- 1 MB compressed by gzip
f:close()
local function post(path, body, n)
  return ("POST %s HTTP/1.1\r\nContent-Encoding: gzip\r\n" ..
    "Content-Length: %d\r\n\r\n"):format(path, #body) .. body:sub(1, n)
end
lasync.run(function()
  local done = 0
  local srv = lasync.start_server(function(r, w)
    local conn = core._http_conn(r, w, { max_body = 500000 })
    local ok, err = pcall(function() while true do
      local req = conn:next_request()
      if not req then break end
      if req.raw_path:find("^/cancel") then
        local t = lasync.create_task(function() return conn:read_body() end)
        lasync.sleep(0.02)
        t:cancel()
        pcall(lasync.wait_for, t, 1)
        if req.raw_path == "/cancel-close" then break end
        conn:discard_body(10000000)
      elseif req.raw_path == "/chunk" then
        repeat -- pieces, until the peer goes away midway: false
          local piece = conn:read_chunk()
        until not piece
        break
      else
        conn:read_body() -- corrupt, or over the limit
        break
      end
    end end)
    if not ok then print(err) end
    done = done + 1
    conn:close()
    w:close()
  end, "127.0.0.1", 0)
  local _, port = srv:address()
  local bad = z:sub(1, 20) .. ("\0"):rep(50) .. z:sub(71)
  local sends = {
    post("/cancel", z, #z - 10) .. z:sub(-10) ..
      post("/cancel-close", z, #z - 10),
    post("/chunk", z, 3000),
    post("/bad", bad),
    post("/big", z),
  }
  for _, data in ipairs(sends) do
    local r, w = lasync.open_connection("127.0.0.1", port)
    w:write(data)
    if data:find("^POST /chunk") then lasync.sleep(0.05) end
    w:close()
  end
  local waited = 0
  while done < #sends and waited < 500 do
    lasync.sleep(0.01)
    waited = waited + 1
  end
  srv:close()
  srv:wait_closed()
  print("served " .. done)
end)
]==]

describe("lasync.http compressed bodies", function()
  it("free their decoder on every path (LeakSanitizer in the asan build)",
    function()
    local gz = os.tmpname()
    local p = assert(io.popen(("python3 -c 'import sys, zlib; " ..
      "c = zlib.compressobj(6, zlib.DEFLATED, 31); " ..
      "sys.stdout.buffer.write(c.compress(bytes(range(256)) * 4000) + " ..
      "c.flush())' > %s"):format(gz)))
    p:close()
    local script = helper.temp_script(SCRIPT)
    -- leaks checked in the lasync process only (not in its shell)
    local code, out, err = helper.lasync_cmd(script .. " " .. gz, nil,
      "ASAN_OPTIONS=detect_leaks=1")
    os.remove(script)
    os.remove(gz)
    assert.are.equal(0, code, err)
    assert.are.equal("served 4\n", out)
    assert.is_nil(err:find("LeakSanitizer", 1, true), err)
  end)
end)
