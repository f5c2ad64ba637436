-- lasync.fs: files (open modes, read/read_all/lines, write/seek/sync/close,
-- <close>, closed files), path functions (stat/lstat, mkdir/rmdir/unlink,
-- rename/copyfile/realpath/mkdtemp/scandir, readfile/writefile), OSError
-- values, many reads at once, one file used by several tasks at once, and
-- cancelling a task in the middle of a call.
local helper = require "helper"
local lasync = helper.lasync
local fs = lasync.fs

local escape, shell_quote = helper.escape, helper.shell_quote
local in_dir, raises_msg = helper.in_dir, helper.raises_msg

-- fn(...) must raise lasync.OSError with this code and target (false: no
-- target); its message names fname. Returns the error.
local os_error = helper.os_error

local function collect_lines(f)
  local out = {}
  for line in f:lines() do out[#out + 1] = line end
  return out
end

-- The number of open descriptors of this process.
local function count_fds()
  local n = 0
  for _ in fs.scandir("/proc/self/fd") do n = n + 1 end
  return n
end

describe("lasync.fs.open modes", function()
  it("opens for reading by default and refuses writing", function()
    in_dir(function(dir)
      local path = dir .. "/r.txt"
      fs.writefile(path, "hello")
      local f = fs.open(path)
      assert.are.equal("hello", f:read())
      os_error("EBADF", "File:write", false, f.write, f, "x")
      f:close()
      local g = fs.open(path, "r")
      assert.are.equal("hello", g:read_all())
      g:close()
      assert.are.equal("hello", fs.readfile(path))
    end)
  end)

  it("w creates or truncates, and refuses reading", function()
    in_dir(function(dir)
      local path = dir .. "/w.txt"
      local f = fs.open(path, "w")
      f:write("first version, long")
      os_error("EBADF", "File:read", false, f.read, f)
      f:close()
      assert.are.equal("first version, long", fs.readfile(path))
      f = fs.open(path, "w")
      f:write("short")
      f:close()
      assert.are.equal("short", fs.readfile(path))
    end)
  end)

  it("a writes at the end whatever the position", function()
    in_dir(function(dir)
      local path = dir .. "/a.txt"
      fs.writefile(path, "abc")
      local f = fs.open(path, "a")
      f:write("def")
      assert.are.equal(0, f:seek("set", 0))
      f:write("ghi")
      f:close()
      assert.are.equal("abcdefghi", fs.readfile(path))
      local g = fs.open(dir .. "/new.txt", "a") -- creates
      g:write("x")
      g:close()
      assert.are.equal("x", fs.readfile(dir .. "/new.txt"))
    end)
  end)

  it("x creates a new file and fails with EEXIST if it exists", function()
    in_dir(function(dir)
      local path = dir .. "/x.txt"
      local f = fs.open(path, "x")
      f:write("made")
      f:close()
      assert.are.equal("made", fs.readfile(path))
      os_error("EEXIST", "fs.open", path, fs.open, path, "x")
      os_error("EEXIST", "fs.open", path, fs.open, path, "x+")
      assert.are.equal("made", fs.readfile(path)) -- untouched
      local g = fs.open(dir .. "/x2.txt", "x+b")
      g:write("rw")
      g:seek("set", 0)
      assert.are.equal("rw", g:read())
      g:close()
    end)
  end)

  it("r+ reads and writes in place without truncating", function()
    in_dir(function(dir)
      local path = dir .. "/rp.txt"
      fs.writefile(path, "hello world")
      local f = fs.open(path, "r+")
      f:write("J")
      assert.are.equal("ello", f:read(4))
      f:close()
      assert.are.equal("Jello world", fs.readfile(path))
      os_error("ENOENT", "fs.open", dir .. "/none", fs.open, dir .. "/none",
        "r+")
    end)
  end)

  it("w+ truncates then reads back what was written", function()
    in_dir(function(dir)
      local path = dir .. "/wp.txt"
      fs.writefile(path, "old contents")
      local f = fs.open(path, "w+")
      assert.are.equal("", f:read_all())
      f:write("abc")
      assert.are.equal(0, f:seek("set"))
      assert.are.equal("abc", f:read_all())
      f:close()
    end)
  end)

  it("a+ reads from the start and writes at the end", function()
    in_dir(function(dir)
      local path = dir .. "/ap.txt"
      fs.writefile(path, "hello")
      local f = fs.open(path, "a+")
      assert.are.equal("hel", f:read(3))
      f:write("!")
      f:seek("set", 0)
      f:write("?")
      f:seek("set", 0)
      assert.are.equal("hello!?", f:read_all())
      f:close()
    end)
  end)

  it("b is accepted and ignored; bad modes are refused", function()
    in_dir(function(dir)
      local path = dir .. "/b.txt"
      local f = fs.open(path, "wb")
      f:write("\0\1\2\255")
      f:close()
      f = fs.open(path, "rb")
      assert.are.equal("\0\1\2\255", f:read())
      f:close()
      raises_msg("lasync.fs.open: invalid mode 'q' (expected r, w, a or x, " ..
        "with + or b)", fs.open, path, "q")
      raises_msg("lasync.fs.open: invalid mode 'rw'", fs.open, path, "rw")
      raises_msg("lasync.fs.open: invalid mode 'r+x'", fs.open, path, "r+x")
      raises_msg("lasync.fs.open: invalid mode ''", fs.open, path, "")
    end)
  end)

  it("perm sets a new file's mode", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/p600", "w", tonumber("600", 8))
      f:close()
      assert.are.equal(tonumber("600", 8), fs.stat(dir .. "/p600").mode)
      f = fs.open(dir .. "/p640", "x", tonumber("640", 8))
      f:close()
      assert.are.equal(tonumber("640", 8), fs.stat(dir .. "/p640").mode)
    end)
  end)

  it("fails with ENOENT naming the path", function()
    in_dir(function(dir)
      local path = dir .. "/missing/file"
      local err = os_error("ENOENT", "fs.open", path, fs.open, path)
      assert.are.equal(2, err.errno)
      assert.are.equal("lasync.fs.open: no such file or directory (" ..
        path .. ")", err.message)
      os_error("ENOENT", "fs.open", path, fs.open, path, "w")
    end)
  end)

  it("refuses a missing or non-string path", function()
    in_dir(function()
      raises_msg("lasync.fs.open: path must be a string (got no value)",
        fs.open)
      raises_msg("lasync.fs.open: path must be a string (got table)",
        fs.open, {})
    end)
  end)

  it("reports argument errors at the caller, not inside lasync/fs.lua",
    function()
      in_dir(function(dir)
        local err = helper.error_of(fs.open, dir .. "/f", "bad")
        assert.is_string(err)
        assert.is_nil(err:find("lasync/fs.lua", 1, true),
          "error points into lasync's own code: " .. err)
      end)
    end)

  it("cannot be used outside a task", function()
    raises_msg("lasync.fs.open: not inside a task", fs.open, "/dev/null")
    raises_msg("lasync.fs.stat: not inside a task", fs.stat, "/")
  end)
end)

describe("lasync.File reading", function()
  it("read(n) gives up to n bytes, then \"\" at the end", function()
    in_dir(function(dir)
      local path = dir .. "/r"
      fs.writefile(path, "0123456789")
      local f = fs.open(path)
      assert.are.equal("", f:read(0))
      assert.are.equal("012", f:read(3))
      assert.are.equal("3456789", f:read(100))
      assert.are.equal("", f:read(5))
      assert.are.equal("", f:read())
      assert.are.equal("", f:read())
      raises_msg("lasync.File:read: format #1: a count must be >= 0",
        f.read, f, -1)
      raises_msg("lasync.File:read: format #1: invalid format 'x'", f.read, f,
        "x")
      f:close()
    end)
  end)

  it("read() reads 65536 bytes at most", function()
    in_dir(function(dir)
      local data = string.rep("abcdefgh", 20000) -- 160000 bytes
      fs.writefile(dir .. "/big", data)
      local f = fs.open(dir .. "/big")
      local a = f:read()
      assert.are.equal(65536, #a)
      assert.are.equal(data:sub(1, 65536), a)
      assert.are.equal(data:sub(65537), f:read_all())
      assert.are.equal("", f:read_all())
      f:close()
    end)
  end)

  it("read_all gives the rest of the file; \"\" for an empty file",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/e", "")
        local f = fs.open(dir .. "/e")
        assert.are.equal("", f:read_all())
        assert.are.equal("", f:read())
        f:close()
        fs.writefile(dir .. "/t", "head|tail")
        f = fs.open(dir .. "/t")
        f:read(5)
        assert.are.equal("tail", f:read_all())
        f:close()
      end)
    end)

  it("lines() with a final newline", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/l", "one\ntwo\n")
      local f = fs.open(dir .. "/l")
      assert.are.same({ "one", "two" }, collect_lines(f))
      f:close()
    end)
  end)

  it("lines() without a final newline keeps the last line", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/l", "one\ntwo")
      local f = fs.open(dir .. "/l")
      assert.are.same({ "one", "two" }, collect_lines(f))
      f:close()
    end)
  end)

  it("lines() of an empty file gives nothing; blank lines are kept",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/e", "")
        local f = fs.open(dir .. "/e")
        assert.are.same({}, collect_lines(f))
        f:close()
        fs.writefile(dir .. "/b", "\n\na\n\nb\n\n")
        f = fs.open(dir .. "/b")
        assert.are.same({ "", "", "a", "", "b", "" }, collect_lines(f))
        f:close()
        fs.writefile(dir .. "/n", "\n")
        f = fs.open(dir .. "/n")
        assert.are.same({ "" }, collect_lines(f))
        f:close()
      end)
    end)

  it("lines() handles long lines across reads and \\r is kept", function()
    in_dir(function(dir)
      local long = string.rep("x", 200000)
      fs.writefile(dir .. "/l", "a\r\n" .. long .. "\nb")
      local f = fs.open(dir .. "/l")
      local lines = collect_lines(f)
      assert.are.equal(3, #lines)
      assert.are.equal("a\r", lines[1])
      assert.are.equal(long, lines[2])
      assert.are.equal("b", lines[3])
      f:close()
    end)
  end)

  it("lines() starts at the file's position; the iterator stays at the end",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/l", "skip\nkeep1\nkeep2\n")
        local f = fs.open(dir .. "/l")
        f:read(5)
        local it = f:lines()
        assert.are.equal("keep1", it())
        assert.are.equal("keep2", it())
        assert.is_nil(it())
        assert.is_nil(it())
        f:close()
      end)
    end)

  it("a file opened inside a run can be iterated by a for loop directly",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/notes.txt", "one\ntwo\n")
        local out = {}
        for line in fs.open(dir .. "/notes.txt"):lines() do
          out[#out + 1] = line
        end
        assert.are.same({ "one", "two" }, out)
      end)
    end)
end)

describe("lasync.File writing and seeking", function()
  it("write advances the position; seek returns it like io's seek",
    function()
      in_dir(function(dir)
        local f = fs.open(dir .. "/s", "w+")
        assert.are.equal(0, f:seek())
        assert.is_nil(f:write("hello world"))
        assert.are.equal(11, f:seek())
        assert.are.equal(11, f:seek("cur"))
        assert.are.equal(2, f:seek("set", 2))
        assert.are.equal(5, f:seek("cur", 3))
        assert.are.equal(3, f:seek("cur", -2))
        assert.are.equal(11, f:seek("end"))
        assert.are.equal(9, f:seek("end", -2))
        assert.are.equal("ld", f:read())
        assert.are.equal(0, f:seek("set"))
        assert.are.equal("hello", f:read(5))
        f:close()
      end)
    end)

  it("write at a position overwrites; past the end leaves zeros", function()
    in_dir(function(dir)
      local path = dir .. "/o"
      local f = fs.open(path, "w+")
      f:write("abcdef")
      f:seek("set", 1)
      f:write("XY")
      assert.are.equal(3, f:seek())
      f:seek("set", 8)
      f:write("Z")
      f:close()
      assert.are.equal("aXYdef\0\0Z", fs.readfile(path))
    end)
  end)

  it("writes large data and empty strings", function()
    in_dir(function(dir)
      local path = dir .. "/big"
      local data = {}
      for i = 1, 100000 do data[i] = string.char(i % 256) end
      data = table.concat(data):rep(30) -- 3 MB
      local f = fs.open(path, "w")
      f:write("")
      f:write(data)
      f:write("")
      f:close()
      assert.are.equal(#data, fs.stat(path).size)
      assert.is_true(fs.readfile(path) == data)
    end)
  end)

  it("seek refuses negative positions and unknown whences", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/s", "w+")
      f:write("abc")
      raises_msg("lasync.File:seek: position would be negative", f.seek, f,
        "set", -1)
      raises_msg("lasync.File:seek: position would be negative", f.seek, f,
        "cur", -4)
      assert.are.equal(3, f:seek()) -- unchanged
      raises_msg("invalid option 'middle'", f.seek, f, "middle")
      raises_msg("string expected, got nil", f.write, f, nil)
      f:close()
    end)
  end)

  it("seek from the end refuses a position before the start", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/s", "w+")
      f:write("0123456789")
      assert.are.equal(0, f:seek("end", -10))
      local ok, pos = pcall(f.seek, f, "end", -11)
      assert.is_false(ok, "seek(\"end\", -11) gave position " ..
        tostring(pos))
      assert.matches("lasync.File:seek: position would be negative", pos, 1,
        true)
      assert.are.equal(0, f:seek()) -- unchanged
      assert.are.equal("0123456789", f:read_all())
      f:close()
    end)
  end)

  it("sync flushes and returns nothing", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/s", "w")
      f:write("data")
      assert.are.equal(0, select("#", f:sync()))
      f:write("more")
      f:close()
      assert.are.equal("datamore", fs.readfile(dir .. "/s"))
    end)
  end)

  it("fileno gives the descriptor, nil once closed", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/n", "w")
      local fd = f:fileno()
      assert.are.equal("integer", math.type(fd))
      assert(fd > 2)
      assert.matches("fd " .. fd .. " at", tostring(f), 1, true)
      f:close()
      assert.is_nil(f:fileno())
      assert.are.equal(0, select("#", f:fileno()))
    end)
  end)

  it("has a tostring with the descriptor and the position", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/t", "w")
      f:write("12345")
      assert.matches("^lasync%.File: fd %d+ at 5$", tostring(f))
      f:close()
      assert.are.equal("lasync.File (closed)", tostring(f))
    end)
  end)
end)

describe("closing a lasync.File", function()
  it("close returns nothing and may be repeated", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/c", "w")
      assert.are.equal(0, select("#", f:close()))
      assert.are.equal(0, select("#", f:close()))
    end)
  end)

  it("a closed file refuses every method, naming it", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/c", "w+")
      f:close()
      raises_msg("lasync.File:read: the file is closed", f.read, f)
      raises_msg("lasync.File:write: the file is closed", f.write, f, "x")
      raises_msg("lasync.File:seek: the file is closed", f.seek, f)
      raises_msg("lasync.File:seek: the file is closed", f.seek, f, "end")
      raises_msg("lasync.File:sync: the file is closed", f.sync, f)
    end)
  end)

  it("read_all and lines on a closed file name themselves", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/c", "w+")
      f:close()
      local err = helper.error_of(f.read_all, f)
      assert.is_string(err)
      assert.matches("the file is closed", err, 1, true)
      assert.matches("lasync.File:read_all: the file is closed", err, 1, true)
      err = helper.error_of(function()
        for _ in f:lines() do end
      end)
      assert.matches("the file is closed", err, 1, true)
      assert.matches("lasync.File:lines: the file is closed", err, 1, true)
    end)
  end)

  it("a <close> variable closes the file, also when an error unwinds",
    function()
      in_dir(function(dir)
        local kept
        do
          local f <close> = fs.open(dir .. "/c", "w")
          f:write("x")
          kept = f
        end
        assert.are.equal("lasync.File (closed)", tostring(kept))
        raises_msg("the file is closed", kept.write, kept, "y")
        assert.are.equal("x", fs.readfile(dir .. "/c"))
        local ok = pcall(function()
          local f <close> = fs.open(dir .. "/c")
          kept = f
          lasync.sleep(0)
          error("unwind")
        end)
        assert.is_false(ok)
        assert.are.equal("lasync.File (closed)", tostring(kept))
      end)
    end)

  it("a file can be closed after its run has ended", function()
    local f = in_dir(function(dir)
      return fs.open(dir .. "/c", "w")
    end)
    assert.matches("^lasync%.File: fd", tostring(f))
    f:close()
    assert.are.equal("lasync.File (closed)", tostring(f))
  end)

  it("the garbage collector closes a dropped file", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/g", "x")
      collectgarbage()
      collectgarbage()
      local before = count_fds()
      for _ = 1, 20 do fs.open(dir .. "/g") end
      assert.are.equal(before + 20, count_fds())
      collectgarbage()
      collectgarbage()
      assert.are.equal(before, count_fds())
    end)
  end)
end)

describe("lasync.fs.readfile and writefile", function()
  it("round-trip binary data and replace a file", function()
    in_dir(function(dir)
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local data = table.concat(bytes):rep(300)
      local path = dir .. "/bin"
      assert.are.equal(0, select("#", fs.writefile(path, data)))
      assert.are.equal(data, fs.readfile(path))
      fs.writefile(path, "short")
      assert.are.equal("short", fs.readfile(path))
      fs.writefile(path, "")
      assert.are.equal("", fs.readfile(path))
    end)
  end)

  it("refuse bad arguments and report missing files", function()
    in_dir(function(dir)
      raises_msg("lasync.fs.writefile: data must be a string (got number)",
        fs.writefile, dir .. "/x", 5)
      raises_msg("lasync.fs.writefile: data must be a string (got nil)",
        fs.writefile, dir .. "/x")
      os_error("ENOENT", "fs.readfile", dir .. "/none", fs.readfile,
        dir .. "/none")
      os_error("ENOENT", "fs.writefile", dir .. "/no/x", fs.writefile,
        dir .. "/no/x", "data")
      os_error("EISDIR", "fs.writefile", dir, fs.writefile, dir, "data")
    end)
  end)
end)

describe("lasync.fs.stat and lstat", function()
  it("give every field with its type for a file", function()
    in_dir(function(dir)
      local path = dir .. "/f"
      fs.writefile(path, "12345678")
      local st = fs.stat(path)
      assert.are.equal("file", st.type)
      assert.are.equal(8, st.size)
      for _, k in ipairs { "size", "mode", "ino", "dev", "nlink", "uid",
        "gid" } do
        assert.are.equal("integer", math.type(st[k]), k)
      end
      for _, k in ipairs { "atime", "mtime", "ctime" } do
        assert.is_number(st[k], k)
        assert(math.abs(st[k] - os.time()) < 60, k .. " is not now")
      end
      assert.are.equal(1, st.nlink)
      assert(st.mode > 0 and st.mode <= tonumber("7777", 8))
      local same = fs.stat(path)
      assert.are.equal(st.ino, same.ino)
      assert.are.equal(st.dev, same.dev)
      local lst = fs.lstat(path)
      assert.are.equal("file", lst.type)
      assert.are.equal(st.ino, lst.ino)
    end)
  end)

  it("see directories", function()
    in_dir(function(dir)
      local st = fs.stat(dir)
      assert.are.equal("directory", st.type)
      assert.are.equal(tonumber("700", 8), st.mode) -- mkdtemp's mode
      fs.mkdir(dir .. "/sub")
      assert.are.equal("directory", fs.lstat(dir .. "/sub").type)
      assert.are.equal("char", fs.stat("/dev/null").type)
    end)
  end)

  it("stat follows a symbolic link; lstat does not", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/target", "contents")
      assert.is_true(os.execute("ln -s target " .. shell_quote(dir ..
        "/link")))
      local st, lst = fs.stat(dir .. "/link"), fs.lstat(dir .. "/link")
      assert.are.equal("file", st.type)
      assert.are.equal(8, st.size)
      assert.are.equal(fs.stat(dir .. "/target").ino, st.ino)
      assert.are.equal("link", lst.type)
      assert.are.equal(#"target", lst.size)
      assert.are_not.equal(st.ino, lst.ino)
      -- a dangling link
      assert.is_true(os.execute("ln -s nowhere " .. shell_quote(dir ..
        "/dangling")))
      assert.are.equal("link", fs.lstat(dir .. "/dangling").type)
      os_error("ENOENT", "fs.stat", dir .. "/dangling", fs.stat,
        dir .. "/dangling")
    end)
  end)

  it("fail with ENOENT and ENOTDIR naming the path", function()
    in_dir(function(dir)
      os_error("ENOENT", "fs.stat", dir .. "/none", fs.stat, dir .. "/none")
      os_error("ENOENT", "fs.lstat", dir .. "/none", fs.lstat,
        dir .. "/none")
      fs.writefile(dir .. "/f", "")
      os_error("ENOTDIR", "fs.stat", dir .. "/f/x", fs.stat, dir .. "/f/x")
      raises_msg("lasync.fs.stat: path must be a string (got no value)",
        fs.stat)
    end)
  end)
end)

describe("lasync.fs directories and paths", function()
  it("mkdir creates (with a mode) and rmdir removes", function()
    in_dir(function(dir)
      local sub = dir .. "/sub"
      assert.are.equal(0, select("#", fs.mkdir(sub)))
      assert.are.equal("directory", fs.stat(sub).type)
      fs.mkdir(dir .. "/m700", tonumber("700", 8))
      assert.are.equal(tonumber("700", 8), fs.stat(dir .. "/m700").mode)
      os_error("EEXIST", "fs.mkdir", sub, fs.mkdir, sub)
      os_error("ENOENT", "fs.mkdir", dir .. "/a/b", fs.mkdir, dir .. "/a/b")
      assert.are.equal(0, select("#", fs.rmdir(sub)))
      os_error("ENOENT", "fs.stat", sub, fs.stat, sub)
      os_error("ENOENT", "fs.rmdir", sub, fs.rmdir, sub)
    end)
  end)

  it("rmdir refuses a non-empty directory and a file", function()
    in_dir(function(dir)
      fs.mkdir(dir .. "/full")
      fs.writefile(dir .. "/full/f", "x")
      local err = os_error("ENOTEMPTY", "fs.rmdir", dir .. "/full", fs.rmdir,
        dir .. "/full")
      assert.matches("directory not empty", err.message, 1, true)
      os_error("ENOTDIR", "fs.rmdir", dir .. "/full/f", fs.rmdir,
        dir .. "/full/f")
    end)
  end)

  it("unlink removes a file or a link, not a directory", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/f", "x")
      assert.are.equal(0, select("#", fs.unlink(dir .. "/f")))
      os_error("ENOENT", "fs.unlink", dir .. "/f", fs.unlink, dir .. "/f")
      fs.writefile(dir .. "/t", "x")
      os.execute("ln -s t " .. shell_quote(dir .. "/l"))
      fs.unlink(dir .. "/l")
      assert.are.equal("x", fs.readfile(dir .. "/t")) -- the target stays
      fs.mkdir(dir .. "/d")
      os_error("EISDIR", "fs.unlink", dir .. "/d", fs.unlink, dir .. "/d")
    end)
  end)

  it("rename renames and moves, replacing a file", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/a", "A")
      assert.are.equal(0, select("#", fs.rename(dir .. "/a", dir .. "/b")))
      assert.are.equal("A", fs.readfile(dir .. "/b"))
      os_error("ENOENT", "fs.stat", dir .. "/a", fs.stat, dir .. "/a")
      fs.mkdir(dir .. "/sub")
      fs.rename(dir .. "/b", dir .. "/sub/c")
      assert.are.equal("A", fs.readfile(dir .. "/sub/c"))
      fs.writefile(dir .. "/other", "O")
      fs.rename(dir .. "/other", dir .. "/sub/c")
      assert.are.equal("O", fs.readfile(dir .. "/sub/c"))
      fs.rename(dir .. "/sub", dir .. "/moved")
      assert.are.equal("O", fs.readfile(dir .. "/moved/c"))
      os_error("ENOENT", "fs.rename", dir .. "/none", fs.rename,
        dir .. "/none", dir .. "/x")
      raises_msg("lasync.fs.rename: destination must be a string (got no " ..
        "value)", fs.rename, dir .. "/moved")
    end)
  end)

  it("copyfile copies, leaving the source", function()
    in_dir(function(dir)
      local data = string.rep("copy me\0", 50000)
      fs.writefile(dir .. "/src", data)
      fs.writefile(dir .. "/dst", "to be replaced")
      assert.are.equal(0, select("#", fs.copyfile(dir .. "/src",
        dir .. "/dst")))
      assert.is_true(fs.readfile(dir .. "/dst") == data)
      assert.is_true(fs.readfile(dir .. "/src") == data)
      assert.are_not.equal(fs.stat(dir .. "/src").ino,
        fs.stat(dir .. "/dst").ino)
      os_error("ENOENT", "fs.copyfile", dir .. "/none", fs.copyfile,
        dir .. "/none", dir .. "/x")
      os_error("ENOENT", "fs.copyfile", dir .. "/src", fs.copyfile,
        dir .. "/src", dir .. "/no/x")
    end)
  end)

  it("realpath resolves links, . and ..", function()
    in_dir(function(dir)
      local real = fs.realpath(dir)
      assert.matches("^/", real)
      fs.mkdir(dir .. "/a")
      fs.writefile(dir .. "/a/f", "x")
      os.execute("ln -s a/f " .. shell_quote(dir .. "/lf"))
      assert.are.equal(real .. "/a/f", fs.realpath(dir .. "/lf"))
      assert.are.equal(real .. "/a", fs.realpath(dir .. "/a/./../a/"))
      assert.are.equal("/", fs.realpath("/"))
      os_error("ENOENT", "fs.realpath", dir .. "/none", fs.realpath,
        dir .. "/none")
    end)
  end)

  it("mkdtemp makes a fresh directory from the template", function()
    in_dir(function(dir)
      local a = fs.mkdtemp(dir .. "/tmpXXXXXX")
      local b = fs.mkdtemp(dir .. "/tmpXXXXXX")
      assert.matches("^" .. escape(dir) .. "/tmp[%w]+$", a)
      assert.are.equal(#dir + 10, #a)
      assert.are_not.equal(a, b)
      assert.are.equal("directory", fs.stat(a).type)
      assert.are.equal(tonumber("700", 8), fs.stat(a).mode)
      os_error("EINVAL", "fs.mkdtemp", dir .. "/bad", fs.mkdtemp,
        dir .. "/bad")
      os_error("ENOENT", "fs.mkdtemp", dir .. "/no/tXXXXXX", fs.mkdtemp,
        dir .. "/no/tXXXXXX")
    end)
  end)

  it("scandir iterates names and types, without . and ..", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/file", "x")
      fs.mkdir(dir .. "/dir")
      os.execute("ln -s file " .. shell_quote(dir .. "/link"))
      local seen = {}
      for name, kind in fs.scandir(dir) do seen[name] = kind end
      assert.are.same({ file = "file", dir = "directory", link = "link" },
        seen)
      local n = 0
      for _ in fs.scandir(dir .. "/dir") do n = n + 1 end
      assert.are.equal(0, n)
      local it = fs.scandir(dir .. "/dir")
      assert.is_nil(it())
      assert.is_nil(it())
      os_error("ENOENT", "fs.scandir", dir .. "/none", fs.scandir,
        dir .. "/none")
      os_error("ENOTDIR", "fs.scandir", dir .. "/file", fs.scandir,
        dir .. "/file")
    end)
  end)

  it("scandir lists many entries", function()
    in_dir(function(dir)
      for i = 1, 300 do fs.writefile(("%s/f%03d"):format(dir, i), "") end
      local names = {}
      for name, kind in fs.scandir(dir) do
        assert.are.equal("file", kind)
        names[#names + 1] = name
      end
      table.sort(names)
      assert.are.equal(300, #names)
      assert.are.equal("f001", names[1])
      assert.are.equal("f300", names[300])
    end)
  end)

  it("the documented example works", function()
    in_dir(function(base)
      local dir = fs.mkdtemp(base .. "/lasync-docXXXXXX")
      fs.writefile(dir .. "/notes.txt", "one\ntwo\n")
      local lines = {}
      for line in fs.open(dir .. "/notes.txt"):lines() do
        lines[#lines + 1] = line
      end
      assert.are.same({ "one", "two" }, lines)
      assert.are.equal(8, fs.stat(dir .. "/notes.txt").size)
      fs.unlink(dir .. "/notes.txt")
      fs.rmdir(dir)
      os_error("ENOENT", "fs.stat", dir, fs.stat, dir)
    end)
  end)
end)

describe("lasync.fs concurrency", function()
  it("1,000 concurrent reads return the right contents", function()
    in_dir(function(dir)
      local nfiles = 100
      local writes = {}
      for i = 1, nfiles do
        writes[i] = function()
          fs.writefile(("%s/f%d"):format(dir, i),
            ("file %d\n"):format(i):rep(i))
        end
      end
      lasync.gather(writes)
      local reads = {}
      for k = 1, 1000 do
        local i = (k - 1) % nfiles + 1
        reads[k] = function()
          if k % 2 == 0 then return fs.readfile(("%s/f%d"):format(dir, i)) end
          local f <close> = fs.open(("%s/f%d"):format(dir, i))
          return f:read_all()
        end
      end
      local res = lasync.gather(reads)
      assert.are.equal(1000, res.n)
      for k = 1, 1000 do
        local i = (k - 1) % nfiles + 1
        assert.are.equal(("file %d\n"):format(i):rep(i), res[k])
      end
    end, 8)
  end)

  it("file requests do not block the loop: a ticker keeps ticking",
    function()
      in_dir(function(dir)
        local ticks, stop = 0, false
        local ticker = lasync.spawn(function()
          while not stop do
            ticks = ticks + 1
            lasync.sleep(0)
          end
        end)
        local data = string.rep("z", 1 << 20)
        for i = 1, 8 do
          fs.writefile(dir .. "/t" .. i, data)
          fs.readfile(dir .. "/t" .. i)
        end
        stop = true
        ticker:await()
        assert(ticks >= 8, "ticker ran only " .. ticks .. " times")
      end)
    end)
end)

-- A file whose every 8-byte record says where it is: "%07d\n" of its index.
local function numbered(records)
  local t = {}
  for i = 1, records do t[i] = ("%07d\n"):format(i) end
  return table.concat(t)
end

describe("sequential reads (read-ahead)", function()
  it("read(n) in a loop gives the file exactly, for any n", function()
    in_dir(function(dir)
      local data = numbered(320000) -- 2.56 MB
      fs.writefile(dir .. "/f", data)
      for _, n in ipairs { 4096, 1000, 65536, 1 << 20, 3 << 20 } do
        local f = fs.open(dir .. "/f")
        local parts, pos = {}, 0
        while true do
          local s = f:read(n)
          if s == "" then break end
          assert(#s <= n)
          parts[#parts + 1] = s
          pos = pos + #s
          assert.are.equal(pos, f:seek())
        end
        f:close()
        assert.are.equal(#data, pos)
        assert.is_true(table.concat(parts) == data, "contents for n = " .. n)
      end
    end, 8)
  end)

  it("another size, a seek or a write between reads keeps the data right",
    function()
      in_dir(function(dir)
        local data = numbered(300000)
        fs.writefile(dir .. "/f", data)
        local f = fs.open(dir .. "/f", "r+")
        local function expect(n)
          local pos = f:seek()
          local s = f:read(n)
          assert.are.equal(data:sub(pos + 1, pos + n), s, "at " .. pos)
        end
        for _ = 1, 3 do expect(4096) end
        expect(100)
        expect(4096)
        f:seek("set", 10)
        expect(4096)
        expect(4096)
        f:seek("cur", 100000)
        expect(4096)
        f:seek("set", 16)
        f:write("XYZ") -- now at 19
        data = data:sub(1, 16) .. "XYZ" .. data:sub(20)
        expect(4096)
        expect(4096)
        f:seek("set", 0)
        expect(4096)
        f:seek("end", -4096)
        expect(4096)
        assert.are.equal("", f:read(4096))
        f:close()
      end)
    end)

  it("after the end, data appended later is read", function()
    in_dir(function(dir)
      local path = dir .. "/grow"
      fs.writefile(path, string.rep("a", 8192))
      local f = fs.open(path)
      assert.are.equal(4096, #f:read(4096))
      assert.are.equal(4096, #f:read(4096))
      assert.are.equal("", f:read(4096))
      local g = fs.open(path, "a")
      g:write("more")
      g:close()
      assert.are.equal("more", f:read(4096))
      f:close()
    end)
  end)

  it("a read cancelled while it waits leaves the next read working",
    function()
      in_dir(function(dir)
        local data = numbered(500000) -- 4 MB
        fs.writefile(dir .. "/f", data)
        local f = fs.open(dir .. "/f")
        assert.are.equal(65536, #f:read(65536))
        -- keep the pool busy so that the file's next requests wait in line
        local blockers = {}
        for i = 1, 4 do
          blockers[i] = lasync.to_thread(function()
            os.execute("sleep 0.1")
          end)
        end
        lasync.sleep(0.01)
        local t = lasync.spawn(function()
          for _ = 1, 60 do f:read(65536) end
        end)
        lasync.sleep(0.03)
        assert.is_false(t:done())
        t:cancel()
        assert.is_false((pcall(t.await, t)))
        lasync.gather(table.unpack(blockers))
        local ok, s = pcall(f.read, f, 65536) -- (a seek first would hide it)
        assert(ok, helper.show(s))
        local pos = f:seek()
        assert.are.equal(65536, #s)
        assert.is_true(s == data:sub(pos - 65535, pos))
        f:close()
      end)
    end)

  -- in a child: the second reader was never woken, and could not even be
  -- cancelled
  it("two tasks reading one file at once share it without hanging",
    function()
      local path = os.tmpname()
      local h = assert(io.open(path, "w"))
      h:write(string.rep("0123456789abcdef", 1 << 17)) -- 2 MB
      h:close()
      local status, out, err = helper.run_script([[
        local f = lasync.fs.open(arg[1])
        f:read(65536)
        local function reader()
          local n = 0
          while true do
            local s = f:read(65536)
            if s == "" then return n end
            n = n + #s
          end
        end
        local ok, a, b = pcall(lasync.wait_for, function()
          return lasync.gather(reader, reader)
        end, 0.5)
        print(ok, ok and a + b + 65536 == 1 << 21)
      ]], path)
      os.remove(path)
      assert.are.equal("true\ttrue\n", out)
      assert.are.equal("", err)
      assert.are.equal(0, status)
    end)
end)

-- The operations of one File run one at a time, in the order called.
describe("one lasync.File used by several tasks", function()
  it("two reads at once get consecutive chunks, in call order", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/f", "0123456789")
      local f = fs.open(dir .. "/f")
      local a, b = lasync.gather(function() return f:read(5) end,
        function() return f:read(5) end)
      assert.are.equal("01234", a)
      assert.are.equal("56789", b)
      assert.are.equal("", f:read(5))
      f:close()
    end)
  end)

  it("two writes at once land one after the other", function()
    in_dir(function(dir)
      local f = fs.open(dir .. "/f", "w+")
      lasync.gather(function() f:write("aaaa") end,
        function() f:write("bbbb") end)
      assert.are.equal(8, f:seek())
      f:seek("set", 0)
      assert.are.equal("aaaabbbb", f:read_all())
      f:close()
    end)
  end)

  it("seek and close wait for the operations called before them",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/f", "0123456789")
        local f = fs.open(dir .. "/f")
        local a = lasync.spawn(function() return f:read(4) end)
        lasync.sleep(0) -- a's read is in flight
        assert.are.equal(4, f:seek())
        assert.are.equal("0123", a:await())
        local b = lasync.spawn(function() return f:read(3) end)
        lasync.sleep(0)
        local c = lasync.spawn(function() return f:read(3) end)
        f:close() -- after b, before c
        assert.are.equal("456", b:await())
        raises_msg("lasync.File:read: the file is closed", c.await, c)
      end)
    end)

  it("a task cancelled waiting for its turn, or once handed it, passes it on",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/f", "0123456789")
        local f = fs.open(dir .. "/f")
        local b
        local a = lasync.spawn(function()
          local s = f:read(4)
          b:cancel() -- b was just handed the turn, and has not run yet
          return s
        end)
        b = lasync.spawn(function() return f:read(4) end)
        local c = lasync.spawn(function() return f:read(4) end)
        local d = lasync.spawn(function() return f:read(2) end)
        lasync.sleep(0) -- a reads; b, c, d wait
        d:cancel()
        assert.are.equal("0123", a:await())
        for _, t in ipairs { b, d } do
          local ok, err = pcall(t.await, t)
          assert.is_false(ok)
          assert(lasync.is_cancelled(err), helper.show(err))
        end
        assert.are.equal("4567", c:await())
        assert.are.equal("89", f:read(2))
        f:close()
      end)
    end)

  it("a <close> while another task reads closes once the read ends",
    function()
      in_dir(function(dir)
        local fifo = dir .. "/fifo"
        assert.is_true(os.execute("mkfifo " .. shell_quote(fifo)))
        collectgarbage()
        collectgarbage()
        local before = count_fds()
        local reader, kept
        do
          local f <close> = fs.open(fifo, "r+")
          kept = f
          reader = lasync.spawn(function() return f:read(4) end)
          lasync.sleep(0) -- a pool thread waits in read(2) for data
        end
        local during = count_fds()
        local w = fs.open(fifo, "w") -- (before any assert: free the reader)
        w:write("abcd")
        w:close()
        assert.are.equal("abcd", reader:await())
        assert.are.equal("lasync.File (closed)", tostring(kept))
        -- the descriptor stayed open for that read (not reused elsewhere)
        assert.are.equal(before + 1, during)
        assert.are.equal(before, count_fds())
      end)
    end)
end)

describe("files that are not regular files", function()
  it("a FIFO reads in order; seek fails with ESPIPE", function()
    in_dir(function(dir)
      local fifo = dir .. "/fifo"
      assert.is_true(os.execute("mkfifo " .. shell_quote(fifo)))
      local writer = lasync.subprocess.shell("printf 'one\ntwo\nthree' > " ..
        shell_quote(fifo))
      local f = fs.open(fifo)
      assert.are.equal("fifo", fs.stat(fifo).type)
      assert.are.same({ "one", "two", "three" }, collect_lines(f))
      os_error("ESPIPE", "File:seek", false, f.seek, f)
      assert.are.equal("", f:read())
      f:close()
      assert.are.equal(0, writer:wait())
    end)
  end)

  it("/dev/null reads nothing and takes any write", function()
    in_dir(function()
      local f = fs.open("/dev/null", "r+")
      assert.are.equal("", f:read())
      f:write("discarded")
      assert.are.equal("", f:read_all())
      f:close()
    end)
  end)
end)

describe("cancelling a task in the middle of a file call", function()
  it("mid-read: CancelledError, no leak, the file stays usable", function()
    in_dir(function(dir)
      local data = string.rep("0123456789abcdef", 1 << 18) -- 4 MB
      fs.writefile(dir .. "/big", data)
      local f = fs.open(dir .. "/big")
      for _ = 1, 5 do
        local t = lasync.spawn(function() return f:read(#data) end)
        lasync.sleep(0) -- t starts its read
        assert.is_true(t:cancel())
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert(lasync.is_cancelled(err), helper.show(err))
        assert.is_true(t:cancelled())
      end
      -- the position did not move, and the file reads normally
      assert.are.equal(0, f:seek())
      assert.is_true(f:read_all() == data)
      f:close()
    end)
  end)

  it("mid-write: CancelledError, no leak, the file stays usable",
    function()
      in_dir(function(dir)
        local data = string.rep("w", 4 << 20)
        local f = fs.open(dir .. "/w", "w+")
        local t = lasync.spawn(function() f:write(data) end)
        lasync.sleep(0)
        assert.is_true(t:cancel())
        local ok, err = pcall(t.await, t)
        assert.is_false(ok)
        assert(lasync.is_cancelled(err), helper.show(err))
        f:seek("set", 0)
        f:write("fresh")
        f:seek("set", 0)
        assert.are.equal("fresh", f:read(5))
        f:close()
        lasync.sleep(0.05) -- let the abandoned request finish
        local size = fs.stat(dir .. "/w").size
        assert(size == 5 or size == #data, "odd size " .. size)
      end)
    end)

  it("cancelling 200 reads and stats in flight (a gather) is safe",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/f", string.rep("r", 100000))
        local files = {}
        local aws = {}
        for i = 1, 200 do
          local f = fs.open(dir .. "/f")
          files[i] = f
          aws[i] = i % 2 == 0 and function() return f:read_all() end or
              function() return fs.stat(dir .. "/f") end
        end
        local g = lasync.spawn(lasync.gather, aws)
        lasync.sleep(0)
        lasync.sleep(0)
        g:cancel()
        local ok, err = pcall(g.await, g)
        assert.is_false(ok)
        assert(lasync.is_cancelled(err), helper.show(err))
        lasync.sleep(0.05)
        for i = 1, 200, 37 do
          files[i]:seek("set", 0)
          assert.are.equal(100000, #files[i]:read_all())
        end
        for _, f in ipairs(files) do f:close() end
      end)
    end)

  it("cancelled stat, scandir, mkdtemp and copyfile leave no anchors",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/f", "x")
        local calls = {
          function() return fs.stat(dir .. "/f") end,
          function() return fs.scandir(dir) end,
          function() return fs.mkdtemp(dir .. "/cXXXXXX") end,
          function() return fs.copyfile(dir .. "/f", dir .. "/g") end,
          function() return fs.realpath(dir) end,
        }
        for _, call in ipairs(calls) do
          local t = lasync.spawn(call)
          lasync.sleep(0)
          t:cancel()
          assert.is_false((pcall(t.await, t)))
        end
        lasync.sleep(0.05)
        assert.are.equal("x", fs.readfile(dir .. "/f"))
      end)
    end)

  it("cancelling fs.open does not leak the descriptor it opened", function()
    in_dir(function(dir)
      fs.writefile(dir .. "/f", "x")
      collectgarbage()
      collectgarbage()
      local before = count_fds()
      for _ = 1, 20 do
        local t = lasync.spawn(fs.open, dir .. "/f")
        lasync.sleep(0) -- the open request is under way
        local until_ = os.clock() + 0.01
        while os.clock() < until_ do end -- (blocking) let it complete
        t:cancel()
        assert.is_false((pcall(t.await, t)))
      end
      lasync.sleep(0.05) -- every abandoned request has finished
      collectgarbage()
      collectgarbage()
      assert.are.equal(before, count_fds(), "descriptors leaked")
    end)
  end)

  it("cancelled once fs.open completed, before it resumed: no leak",
    function()
      in_dir(function(dir)
        fs.writefile(dir .. "/f", "x")
        collectgarbage()
        collectgarbage()
        local before = count_fds()
        for _ = 1, 20 do
          local t = lasync.spawn(fs.open, dir .. "/f")
          -- its timer fires in the same loop iteration as the open's
          -- callback, and timers come first: t is ready, not yet resumed
          local canceller = lasync.spawn(function()
            lasync.sleep(0.001)
            t:cancel()
          end)
          lasync.sleep(0)
          local until_ = os.clock() + 0.01
          while os.clock() < until_ do end -- (blocking) both are due
          canceller:await()
          assert.is_false((pcall(t.await, t)))
        end
        collectgarbage()
        collectgarbage()
        assert.are.equal(before, count_fds(), "descriptors leaked")
      end)
    end)

  describe("issue 9: io's formats and the public names in errors", function()
    it("read: l, L, n, a, counts and *-forms, several at once", function()
      in_dir(function(dir)
        local path = dir .. "/f"
        fs.writefile(path, "one\ntwo\n 42 3.5e2\t0x10 x\nlast")
        local f <close> = fs.open(path)
        assert.are.equal("one", f:read("l"))
        assert.are.equal("two\n", f:read("*L"))
        local a, b = f:read("n", "*n")
        assert.are.same({ 42, 350.0 }, { a, b })
        assert.are.equal(16, f:read("n"))
        assert.is_nil(f:read("n")) -- "x" is no numeral
        assert.are.equal("x\n", f:read("L"))
        assert.are.equal("la", f:read(2))
        assert.are.equal("st", f:read("a"))
        assert.is_nil(f:read("l")) -- the end, as io
        assert.are.equal("", f:read("a"))
        assert.are.equal(2, f:seek("set", 2)) -- a float count is fine
        assert.are.equal("e\n", f:read(2.0))
      end)
    end)

    it("lines: no format, L, and formats of read", function()
      in_dir(function(dir)
        local path = dir .. "/f"
        fs.writefile(path, "a\nbb\n\nc")
        local function all(...)
          local f <close> = fs.open(path)
          local out = {}
          for v in f:lines(...) do out[#out + 1] = v end
          return out
        end
        assert.are.same({ "a", "bb", "", "c" }, all())
        assert.are.same({ "a", "bb", "", "c" }, all("l"))
        assert.are.same({ "a\n", "bb\n", "\n", "c" }, all("L"))
        assert.are.same({ "a\nb", "b\n\n", "c" }, all(3))
        assert.are.same({ "a\nbb\n\nc" }, all("a"))
      end)
    end)

    it("lines of a pipe read a line at a time", function()
      in_dir(function(dir)
        local path = dir .. "/fifo"
        assert.is_true(os.execute("mkfifo " .. shell_quote(path)))
        local writer = lasync.subprocess.shell("printf 'x\\ny\\n' > " ..
          shell_quote(path))
        local f <close> = fs.open(path)
        assert.are.equal("x", f:read("l"))
        assert.are.equal("y\n", f:read("L"))
        assert.is_nil(f:read("l"))
        raises_msg('lasync.File:read: format "n" needs a file with a ' ..
          'position', f.read, f, "n")
        writer:wait()
      end)
    end)

    it("refuses other formats clearly", function()
      in_dir(function(dir)
        fs.writefile(dir .. "/f", "x")
        local f <close> = fs.open(dir .. "/f")
        raises_msg("lasync.File:read: format #1: invalid format 'x' " ..
          "(expected \"l\", \"L\", \"n\", \"a\" or a count)", f.read, f, "x")
        raises_msg("lasync.File:read: format #2: invalid format (expected " ..
          "\"l\", \"L\", \"n\", \"a\" or a count, got table)", f.read, f, "l",
          {})
        raises_msg("lasync.File:read: format #1: invalid format (expected " ..
          "\"l\", \"L\", \"n\", \"a\" or a count, got float)", f.read, f, 1.5)
        raises_msg("lasync.File:read: format #1: a count must be >= 0",
          f.read, f, -1)
        raises_msg("lasync.File:lines: format #2: invalid format 'q'",
          f.lines, f, "l", "q")
      end)
    end)

    it("readfile, writefile and File methods name themselves", function()
      in_dir(function(dir)
        raises_msg("lasync.fs.readfile: path must be a string (got nil)",
          fs.readfile, nil)
        raises_msg("lasync.fs.writefile: path must be a string (got " ..
          "number)", fs.writefile, 1, "x")
        os_error("ENOENT", "fs.readfile", dir .. "/none", fs.readfile,
          dir .. "/none")
        os_error("ENOENT", "fs.writefile", dir .. "/no/such", fs.writefile,
          dir .. "/no/such", "x")
        fs.writefile(dir .. "/f", "x")
        local f <close> = fs.open(dir .. "/f")
        raises_msg("lasync.File:read: expected a File (got nil)", f.read)
        raises_msg("lasync.File:lines: expected a File (got string)",
          f.lines, "f")
        f:close()
        raises_msg("lasync.File:read: the file is closed", f.read, f, "l")
      end)
    end)
  end)
end)
