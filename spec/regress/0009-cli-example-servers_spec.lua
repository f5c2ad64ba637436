-- Issue 9: the example servers (examples/echo.lua, examples/titles.lua)
-- have a serve mode for nc or curl: given a port (here 0, a free one, as
-- specs never use a fixed port), they serve until Ctrl-C (SIGINT), then
-- stop cleanly with status 0. Without one they run their self-test
-- (ctest's example.echo and example.titles).
local helper = require "helper"
local lasync = helper.lasync

-- Start `lasync example port` with `env`; returns the process' pid, its
-- output pipe and the first line it printed.
local function start(example, port, env)
  local pipe = io.popen(("%s sh -c 'echo $$; exec %s examples/%s %s 2>&1'")
    :format(env or "", helper.bin, example, port or ""))
  local pid = pipe:read("l")
  finally(function() -- whatever happened: no server left behind
    os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    pcall(pipe.close, pipe)
  end)
  return pid, pipe, pipe:read("l")
end

-- Ctrl-C the process; returns the rest of its output and exit status.
local function interrupt(pid, pipe)
  os.execute("kill -INT " .. pid)
  local rest = pipe:read("a")
  local _, _, code = pipe:close()
  return rest, code
end

describe("the example servers, given a port", function()
  it("echo.lua echoes until Ctrl-C, then stops with status 0", function()
    local pid, pipe, line = start("echo.lua", "0")
    local port = tonumber(line:match("^server: echoing on 127%.0%.0%.1:(%d+);"))
    assert.is_number(port, line)
    local echoed, goodbye = helper.run(function()
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("hello\n")
      local back = r:readline()
      w:write_eof()
      local rest = r:read()
      w:close()
      return back, rest
    end)
    assert.are.equal("hello\n", echoed)
    assert.are.equal("bye, 1 lines echoed\n", goodbye)
    local rest, code = interrupt(pid, pipe)
    assert.are.equal(0, code)
    assert.matches("server: stopped; lines echoed: 1; connections closed " ..
      "by their clients: 1", rest, 1, true)
  end)

  it("echo.lua takes the port from PORT too", function()
    local pid, pipe, line = start("echo.lua", nil, "PORT=0")
    assert.matches("^server: echoing on 127%.0%.0%.1:%d+;", line)
    local _, code = interrupt(pid, pipe)
    assert.are.equal(0, code)
  end)

  it("titles.lua serves its pages until Ctrl-C", function()
    local pid, pipe, line = start("titles.lua", "0")
    local port = tonumber(line:match("http://127%.0%.0%.1:(%d+)/ "))
    assert.is_number(port, line)
    local status, body = helper.run(function()
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("GET /news HTTP/1.1\r\nHost: x\r\n\r\n")
      local status = r:readline()
      local body = r:read()
      w:close()
      return status, body
    end)
    assert.are.equal("HTTP/1.1 200 OK\r\n", status)
    assert.matches("<title>News &amp; notes</title>", body, 1, true)
    local rest, code = interrupt(pid, pipe)
    assert.are.equal(0, code)
    assert.matches("server: stopped", rest, 1, true)
  end)

  it("a request cut short does not make the server spin", function()
    local pid, pipe, line = start("titles.lua", "0")
    local port = tonumber(line:match("http://127%.0%.0%.1:(%d+)/ "))
    local status = helper.run(function()
      local r, w = lasync.open_connection("127.0.0.1", port)
      w:write("GET / HTTP/1.1\r\nHost: x\r\n") -- no blank line: EOF
      w:write_eof()
      local status = r:readline()
      w:close()
      return status
    end)
    assert.are.equal("HTTP/1.1 200 OK\r\n", status)
    local _, code = interrupt(pid, pipe)
    assert.are.equal(0, code)
  end)
end)
