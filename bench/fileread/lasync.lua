-- fileread: read a file (1 GiB by default, made and cached in memory by
-- run.sh) from start to end in 64 KiB chunks with lasync.fs, checking the
-- byte count; MiB/s. n = the file's size in MiB.
-- Run as `lasync fileread/lasync.lua FILE`.
local lasync = rawget(_G, "lasync") or require "lasync"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local B = require "lasync_bench"
local path = assert(arg and arg[1], "usage: lasync fileread/lasync.lua FILE")
local size = lasync.fs.stat(path).size

local t0 = B.now()
local f = lasync.fs.open(path)
local total = 0
while true do
  local s = f:read(65536)
  if s == "" then break end
  total = total + #s
end
f:close()
local dt = B.now() - t0
assert(total == size, ("read %d bytes of %d"):format(total, size))
local mib = size / 1048576
B.result("RESULT workload=fileread peer=lasync n=%d seconds=%.6f rate=%.1f rss_kb=%d chunk=65536",
  math.floor(mib + 0.5), dt, mib / dt, B.peak_rss_kb())
