-- Issue 9, item 5: a string holding a NUL byte was cut short at it by the
-- C API it reached (fs.unlink(dir.."/real\0.bak") removed "real",
-- open_connection("127.0.0.1\0.example.com") connected to 127.0.0.1, an
-- argv entry "a\0b" reached the child as "a", ...). Every such argument of
-- every public function is now refused, naming the function and the
-- argument; and a Unix socket path is checked on both ends (too long: it
-- would be cut short; empty: Linux would make up an abstract address).
local helper = require "helper"
local lasync = helper.lasync
local fs = lasync.fs
local sp = lasync.subprocess

local NUL = "x\0y"

-- fn(...) must raise "lasync.<fname>: <what> contains an embedded NUL byte"
local function refused(fname, what, fn, ...)
  helper.raises_msg(("lasync.%s: %s contains an embedded NUL byte")
    :format(fname, what), fn, ...)
end

describe("issue 9: embedded NUL bytes", function()
  it("fs: every path, the mode, the whence; nothing is touched", function()
    helper.in_dir(function(dir)
      local real = dir .. "/real"
      fs.writefile(real, "kept")
      refused("fs.unlink", "path", fs.unlink, real .. "\0.bak")
      refused("fs.open", "path", fs.open, real .. "\0.txt")
      refused("fs.open", "mode", fs.open, real, "r\0w")
      refused("fs.readfile", "path", fs.readfile, real .. "\0.txt")
      refused("fs.writefile", "path", fs.writefile, real .. "\0.txt", "x")
      for _, name in ipairs { "stat", "lstat", "mkdir", "rmdir", "unlink",
        "realpath", "scandir" } do
        refused("fs." .. name, "path", fs[name], real .. "\0/x")
      end
      refused("fs.mkdtemp", "template", fs.mkdtemp, dir .. "/t\0XXXXXX")
      for _, name in ipairs { "rename", "copyfile" } do
        refused("fs." .. name, "path", fs[name], real .. "\0x", dir .. "/b")
        refused("fs." .. name, "destination", fs[name], real, dir .. "/b\0c")
      end
      local f <close> = fs.open(real)
      refused("File:seek", "whence", f.seek, f, "set\0x", 0)
      assert.are.equal("kept", fs.readfile(real)) -- still there, unchanged
      local names = {}
      for name in fs.scandir(dir) do names[#names + 1] = name end
      assert.are.same({ "real" }, names)
    end)
  end)

  it("names: lookups, connections, servers, UDP", function()
    helper.run(function()
      refused("getaddrinfo", "host", lasync.getaddrinfo, "localhost\0.x", 80)
      refused("getaddrinfo", "option 'family'", lasync.getaddrinfo,
        "localhost", 80, { family = "inet\0x" })
      refused("getaddrinfo", "option 'socktype'", lasync.getaddrinfo,
        "localhost", 80, { socktype = "dgram\0x" })
      refused("getnameinfo", "host", lasync.getnameinfo, "127.0.0.1\0x", 80)
      refused("open_connection", "host", lasync.open_connection,
        "127.0.0.1\0.example.com", 80)
      refused("open_connection", "option 'local_addr'",
        lasync.open_connection, "127.0.0.1", 80,
        { local_addr = { "127.0.0.1\0x", 0 } })
      refused("start_server", "host", lasync.start_server, helper.echo,
        "127.0.0.1\0x", 0)
      refused("open_udp", "option 'local_addr'", lasync.open_udp,
        { local_addr = { "127.0.0.1\0x", 0 } })
      refused("open_udp", "option 'remote_addr'", lasync.open_udp,
        { remote_addr = { "::1\0x", 9 } })
      local ep <close> = lasync.open_udp { local_addr = { "127.0.0.1", 0 } }
      refused("UdpEndpoint:send", "host", ep.send, ep, "x", "127.0.0.1\0x", 9)
      local srv, host, port, shutdown = helper.serve(helper.echo)
      local _, w = lasync.open_connection(host, port)
      refused("StreamWriter:get_extra_info", "name", w.get_extra_info, w,
        "peername\0x")
      w:close()
      shutdown()
      assert.is_false(srv:is_serving())
    end)
  end)

  it("empty hosts: getaddrinfo and open_connection agree", function()
    helper.run(function()
      helper.raises_msg("lasync.getaddrinfo: host is empty",
        lasync.getaddrinfo, "", 80)
      helper.raises_msg("lasync.open_connection: host is empty",
        lasync.open_connection, "", 80)
    end)
  end)

  it("Unix socket paths: NUL, empty and too long, on both ends", function()
    helper.in_dir(function(dir)
      local path = dir .. "/s"
      for _, fname in ipairs { "start_unix_server", "open_unix_connection" } do
        local fn = fname == "open_unix_connection"
            and function(p) return lasync.open_unix_connection(p) end
            or function(p) return lasync.start_unix_server(helper.echo, p) end
        refused(fname, "path", fn, path .. "\0x")
        helper.raises_msg(("lasync.%s: path is empty"):format(fname), fn, "")
        helper.raises_msg(("lasync.%s: path too long (200 bytes, at most")
          :format(fname), fn, "/" .. ("x"):rep(199))
      end
      local names = {}
      for name in fs.scandir(dir) do names[#names + 1] = name end
      assert.are.same({}, names) -- no prefix was bound
    end)
  end)

  it("subprocesses: file, args, env, cwd, stdio; signals", function()
    helper.run(function()
      refused("subprocess.exec", "file", sp.exec, "echo\0x", {})
      refused("subprocess.exec", "args[1]", sp.exec, "echo", { "a\0b" })
      refused("subprocess.exec", "args[3]", sp.exec, "echo", { "a", 1, NUL })
      refused("subprocess.shell", "cmdline", sp.shell, "echo a\0b")
      refused("subprocess.exec", "option 'cwd'", sp.exec, "true", {},
        { cwd = "/\0tmp" })
      helper.raises_msg("lasync.subprocess.exec: option 'env': the value of " ..
        "A contains an embedded NUL byte", sp.exec, "true", {},
        { env = { A = NUL } })
      helper.raises_msg("lasync.subprocess.exec: option 'env': invalid " ..
        "variable name", sp.exec, "true", {}, { env = { [NUL] = "1" } })
      helper.raises_msg("lasync.subprocess.exec: option 'env': invalid " ..
        "variable name 'A=B'", sp.exec, "true", {}, { env = { ["A=B"] = "1" } })
      helper.raises_msg("lasync.subprocess.exec: option 'stdout' must be",
        sp.exec, "true", {}, { stdout = "pipe\0x" })
      refused("signal", "the signal name", lasync.signal, "SIGUSR1\0x",
        function() end)
      refused("wait_signal", "the signal name", lasync.wait_signal,
        "SIGUSR1\0x")
      local p = sp.exec("sleep", { "5" })
      refused("Process:send_signal", "the signal name", p.send_signal, p,
        "SIGKILL\0x")
      p:kill()
      p:wait()
      -- and the child gets what was given, in full
      p = sp.exec("printf", { "%s|", "a b", "" }, { stdout = "pipe" })
      assert.are.equal("a b||", (p:communicate()))
    end)
  end)
end)
