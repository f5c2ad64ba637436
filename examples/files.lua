-- files.lua: files and directories with lasync.fs, in a temporary directory.
--
-- Every lasync.fs call runs on libuv's thread pool and suspends only the
-- calling task, so several tasks can read and write files at once without
-- blocking the loop (here: three files written by three tasks, gathered).
-- Shows fs.mkdtemp, writefile / readfile, open with modes "w", "a" and "r",
-- file:write / read / seek / lines, mkdir, copyfile, rename, stat, scandir,
-- unlink and rmdir, and the lasync.OSError that a missing file raises
-- (code "ENOENT", target = the path). It cleans up after itself.
-- Run: build/lasync examples/files.lua
-- Expected output (a few ms):
--   wrote 3 files concurrently: 23 + 12 + 0 bytes
--   notes.txt after appending a line:
--     1: first line
--     2: second line
--     3: appended
--   notes.txt, 5 bytes from offset 6: "line\n"
--   data.csv column sums: a=4 b=6
--   scandir (sorted):
--     archive     directory
--     data.csv    file       12 bytes
--     empty.txt   file        0 bytes
--     notes.txt   file       32 bytes
--   moved data.csv; archive/ holds: notes-copy.txt (32 bytes), old.csv (12 bytes)
--   stat missing.txt: OSError ENOENT .../missing.txt
--   cleaned up: stat of the directory now raises ENOENT

local fs = lasync.fs
local dir = fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/lasync-filesXXXXXX")
local function path(name) return dir .. "/" .. name end

-- 1. three files written at once, one task each ----------------------------
local writers = {
  function() -- a file object, written in parts; <close> closes it
    local f <close> = fs.open(path("notes.txt"), "w")
    f:write("first line\n")
    f:write("second line\n")
    return f:seek()                        -- the position: bytes written
  end,
  function()
    fs.writefile(path("data.csv"), "a,b\n1,2\n3,4\n")
    return fs.stat(path("data.csv")).size
  end,
  function()
    fs.writefile(path("empty.txt"), "")
    return fs.stat(path("empty.txt")).size
  end,
}
local sizes = lasync.gather(writers)
print(("wrote 3 files concurrently: %d + %d + %d bytes"):format(sizes[1], sizes[2], sizes[3]))

-- 2. append, then read: line by line, and at an offset ---------------------
do
  local f <close> = fs.open(path("notes.txt"), "a")
  f:write("appended\n")
end
print("notes.txt after appending a line:")
do
  local f <close> = fs.open(path("notes.txt"))  -- mode "r"
  local n = 0
  for line in f:lines() do
    n = n + 1
    print(("  %d: %s"):format(n, line))
  end
  f:seek("set", 6)
  print('notes.txt, 5 bytes from offset 6: "' .. f:read(5):gsub("\n", "\\n") .. '"')
end

local sums = { 0, 0 }
for a, b in fs.readfile(path("data.csv")):gmatch("(%d+),(%d+)") do
  sums[1], sums[2] = sums[1] + tonumber(a), sums[2] + tonumber(b)
end
print(("data.csv column sums: a=%d b=%d"):format(sums[1], sums[2]))

-- 3. a directory: mkdir, copyfile, scandir, stat, rename ------------------
fs.mkdir(path("archive"))
fs.copyfile(path("notes.txt"), path("archive/notes-copy.txt"))

local function listing(d) -- sorted {name, type}: scandir's order is the file system's
  local entries = {}
  for name, type in fs.scandir(d) do entries[#entries + 1] = { name, type } end
  table.sort(entries, function(x, y) return x[1] < y[1] end)
  return entries
end

print("scandir (sorted):")
for _, e in ipairs(listing(dir)) do
  local name, type = e[1], e[2]
  if type == "file" then
    print(("  %-11s %-9s %3d bytes"):format(name, type, fs.stat(path(name)).size))
  else
    print(("  %-11s %s"):format(name, type))
  end
end

fs.rename(path("data.csv"), path("archive/old.csv"))
local held = {}
for _, e in ipairs(listing(path("archive"))) do
  held[#held + 1] = ("%s (%d bytes)"):format(e[1], fs.stat(path("archive/" .. e[1])).size)
end
print("moved data.csv; archive/ holds: " .. table.concat(held, ", "))

-- 4. errors ----------------------------------------------------------------
local ok, err = pcall(fs.stat, path("missing.txt"))
assert(not ok and lasync.is_error(err, lasync.OSError))
print(("stat missing.txt: OSError %s %s"):format(err.code, err.target:gsub("^.*/", ".../")))

-- 5. clean up: files first, then the (then empty) directories --------------
for _, e in ipairs(listing(path("archive"))) do fs.unlink(path("archive/" .. e[1])) end
fs.rmdir(path("archive"))
for _, e in ipairs(listing(dir)) do fs.unlink(path(e[1])) end
fs.rmdir(dir)
ok, err = pcall(fs.stat, dir)
print("cleaned up: stat of the directory now raises " .. (ok and "nothing?!" or err.code))
