-- lasync.http.static: files under a directory served at a URL prefix,
-- as aiohttp's add_static. Resolves a request target to a file without
-- leaving the directory (.., encoded separators, NUL, symlinks out of it:
-- CVE-2024-23334), answers conditional requests (ETag, If-Modified-Since)
-- and single ranges, and lists directories with escaped names
-- (CVE-2024-27306). Returns response-shape tables; never sends.
local url = require "lasync.http.url"
local mime = require "lasync.http.mime"
local date = require "lasync.http.date"

local M = {}

local type, error, setmetatable, getmetatable, pcall, tostring = type,
  error, setmetatable, getmetatable, pcall, tostring
local find, sub, match, gsub, format = string.find, string.sub,
  string.match, string.gsub, string.format
local concat, sort = table.concat, table.sort
local floor, tointeger, math_type = math.floor, math.tointeger, math.type

local Static = {}
Static.__index = Static
Static.__name = "lasync.http.Static"

local DEFAULT_CHUNK = 262144 -- aiohttp's FileResponse chunk size

local function lasync_fs()
  return require("lasync").fs
end

local function plain(status, message, headers)
  headers = headers or {}
  headers["Content-Type"] = "text/plain; charset=utf-8"
  return { status = status, headers = headers, body = message .. "\n" }
end

--{======================================================================
-- One file: validators, conditional requests and ranges
--=======================================================================

-- the entity-tags of an If-Match / If-None-Match value: "*" or a list
local function etag_list(v)
  if match(v, "^[ \t]*%*[ \t]*$") then return "*" end
  local tags = {}
  for weak, tag in v:gmatch('[ \t,]*(W?/?)("[^"]*")') do
    tags[#tags + 1] = { weak = weak == "W/", tag = tag }
  end
  return tags
end

-- whether the list matches etag: strong comparison (If-Match, If-Range)
-- or weak (If-None-Match)
local function etag_matches(list, etag, strong)
  if list == "*" then return true end
  for _, t in ipairs(list) do
    if t.tag == etag and not (strong and t.weak) then return true end
  end
  return false
end

-- The byte range of a Range value for a file of `size` bytes:
-- first, last; or "unsatisfiable"; or nil when the header is to be
-- ignored (not bytes, several ranges, or malformed: RFC 9110 lets a
-- server ignore those and send the whole file).
local function byte_range(v, size)
  local spec = match(v, "^[ \t]*[bB][yY][tT][eE][sS][ \t]*=[ \t]*(.-)[ \t]*$")
  if not spec or find(spec, ",", 1, true) then return nil end
  local a, b = match(spec, "^(%d*)[ \t]*%-[ \t]*(%d*)$")
  if not a or (a == "" and b == "") or #a > 18 or #b > 18 then
    return nil
  end
  if a == "" then -- the last b bytes
    local n = tointeger(b)
    if n == 0 or size == 0 then return "unsatisfiable" end
    return (size > n and size - n or 0), size - 1
  end
  local first = tointeger(a)
  local last = b ~= "" and tointeger(b) or nil
  if last and last < first then return nil end
  if first >= size then return "unsatisfiable" end
  if not last or last >= size then last = size - 1 end
  return first, last
end

-- The response for a regular file at path with stat st.
local function file_response(path, st, headers, chunk_size)
  local size = st.size
  local mtime_s = floor(st.mtime)
  local mtime_ns = tointeger(floor(st.mtime * 1e9)) or mtime_s
  local etag = format('"%x-%x"', mtime_ns, size)
  local last_modified = date.format(mtime_s)
  local function validators()
    return { ETag = etag, ["Last-Modified"] = last_modified }
  end
  local h = headers or {}
  -- RFC 9110 13.2.2: If-Match, else If-Unmodified-Since; then
  -- If-None-Match, else If-Modified-Since; then If-Range and Range
  local im = h["if-match"]
  if im then
    if not etag_matches(etag_list(im), etag, true) then
      return plain(412, "Precondition Failed", validators())
    end
  else
    local ius = h["if-unmodified-since"]
    local t = ius and date.parse(ius)
    if t and mtime_s > t then
      return plain(412, "Precondition Failed", validators())
    end
  end
  local inm = h["if-none-match"]
  if inm then
    if etag_matches(etag_list(inm), etag, false) then
      return { status = 304, headers = validators() }
    end
  else
    local ims = h["if-modified-since"]
    local t = ims and date.parse(ims)
    if t and mtime_s <= t then
      return { status = 304, headers = validators() }
    end
  end
  local out = validators()
  out["Content-Type"] = mime.guess(path) or mime.DEFAULT
  out["Accept-Ranges"] = "bytes"
  local range = h["range"]
  if range then
    local ir = h["if-range"]
    if ir then
      local ok
      if find(ir, '^[ \t]*W?/?"') then
        ok = etag_matches(etag_list(ir), etag, true)
      else
        ok = date.parse(ir) == mtime_s
      end
      if not ok then range = nil end
    end
  end
  if range then
    local first, last = byte_range(range, size)
    if first == "unsatisfiable" then
      out["Content-Range"] = "bytes */" .. size
      out["Content-Type"] = "text/plain; charset=utf-8"
      return { status = 416, headers = out,
        body = "Range Not Satisfiable\n" }
    elseif first then
      out["Content-Range"] = format("bytes %d-%d/%d", first, last, size)
      return { status = 206, headers = out, file = { path = path,
        offset = first, length = last - first + 1,
        chunk_size = chunk_size } }
    end
  end
  return { status = 200, headers = out, file = { path = path, offset = 0,
    length = size, chunk_size = chunk_size } }
end

-- fs errors as statuses: a missing file is 404, a refused one 403
local NOT_FOUND = { ENOENT = 404, ENOTDIR = 404, ENAMETOOLONG = 404,
  EACCES = 403, EPERM = 403, ELOOP = 403 }

-- fs.fn(path) or nil, status for an error of NOT_FOUND (others raise)
local function try_fs(fn, path)
  local ok, res = pcall(fn, path)
  if ok then return res end
  local status = type(res) == "table" and NOT_FOUND[res.code]
  if status then return nil, status end
  error(res, 0)
end

local function check_headers(h, fname)
  if h ~= nil and type(h) ~= "table" then
    error(("lasync.http.%s: req_headers must be a table or nil (got %s)")
      :format(fname, type(h)), 3)
  end
end

--- static.file_response(path [, req_headers [, opts]]) -> a response for
-- the file at path (awaits its stat): 200/206/304/412/416 as for a
-- static route, 404/403 when it is missing or not a regular file.
-- opts: chunk_size.
function M.file_response(path, req_headers, opts)
  if type(path) ~= "string" or path == "" or find(path, "\0", 1, true) then
    error("lasync.http.static.file_response: path must be a non-empty " ..
      "string without NUL", 2)
  end
  check_headers(req_headers, "static.file_response")
  local chunk_size = DEFAULT_CHUNK
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("lasync.http.static.file_response: opts must be a table", 2)
    end
    chunk_size = opts.chunk_size or chunk_size
  end
  local st, status = try_fs(lasync_fs().stat, path)
  if not st then
    return plain(status, status == 404 and "Not Found" or "Forbidden")
  end
  if st.type ~= "file" then return plain(403, "Forbidden") end
  return file_response(path, st, req_headers, chunk_size)
end

--}======================================================================

--{======================================================================
-- Directory index
--=======================================================================

local HTML_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
  ['"'] = "&quot;", ["'"] = "&#39;" }

--- static.html_escape(s) -> s with & < > " ' as entities
function M.html_escape(s)
  return (gsub(s, "[&<>\"']", HTML_ESCAPES))
end
local html_escape = M.html_escape

-- The index page of directory `path`, reached at URL `base` (decoded
-- segments of the request, without a trailing "/").
local function index_page(path, prefix, segs)
  local entries = {}
  for name, kind in lasync_fs().scandir(path) do
    entries[#entries + 1] = { name = name, dir = kind == "directory" }
  end
  sort(entries, function(a, b) return a.name < b.name end)
  local href_base = { prefix }
  for _, s in ipairs(segs) do
    href_base[#href_base + 1] = "/" .. url.quote(s, "")
  end
  href_base = concat(href_base) .. "/"
  local shown = "/" .. concat(segs, "/")
  if prefix ~= "" then shown = prefix .. (shown == "/" and "/" or shown) end
  local title = html_escape("Index of " .. shown)
  local out = { "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n",
    "<title>", title, "</title>\n</head>\n<body>\n<h1>", title,
    "</h1>\n<ul>\n" }
  if #segs > 0 then
    out[#out + 1] = '<li><a href="' .. html_escape(sub(href_base, 1, -2)
      :match("^(.*)/[^/]*$") .. "/") .. '">..</a></li>\n'
  end
  for _, e in ipairs(entries) do
    local slash = e.dir and "/" or ""
    out[#out + 1] = '<li><a href="' ..
        html_escape(href_base .. url.quote(e.name, "") .. slash) .. '">' ..
        html_escape(e.name .. slash) .. "</a></li>\n"
  end
  out[#out + 1] = "</ul>\n</body>\n</html>\n"
  return concat(out)
end

--}======================================================================

--{======================================================================
-- The Static object
--=======================================================================

local OPTIONS = { show_index = true, follow_symlinks = true,
  chunk_size = true }

--- static.new(prefix, dir [, opts [, fname [, level]]]) -> a Static
-- serving dir's files under the URL prefix ("/static"). opts: show_index
-- (false), follow_symlinks (false: a link resolving outside dir is
-- refused), chunk_size (bytes per read when the file is not sent with
-- sendfile; default 256 KiB). Errors name fname (default
-- "lasync.http.static.new") at level (as error() counts from new;
-- default 2), so that App:static can pass its own name.
function M.new(prefix, dir, opts, fname, level)
  fname = fname or "lasync.http.static.new"
  level = (level or 2) + 1
  local function fail(msg) error(fname .. ": " .. msg, level) end
  if type(prefix) ~= "string" or sub(prefix, 1, 1) ~= "/" or
      find(prefix, "[%z\r\n?#%%]") then
    fail("prefix must be a path starting with / " ..
      "(without ?, #, % or control bytes)")
  end
  if type(dir) ~= "string" or dir == "" or find(dir, "\0", 1, true) then
    fail("dir must be a non-empty path without NUL")
  end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    fail(("options must be a table such as " ..
      "{show_index = true} (got %s)"):format(type(opts)))
  end
  for k in pairs(opts) do
    if not OPTIONS[k] then
      fail(("unknown option %s (options are " ..
        "show_index, follow_symlinks, chunk_size)"):format(tostring(k)))
    end
  end
  local cs = opts.chunk_size
  if cs ~= nil and (math_type(cs) ~= "integer" or cs < 1) then
    fail("chunk_size must be a positive integer")
  end
  return setmetatable({ prefix = gsub(prefix, "/+$", ""), dir = dir,
    show_index = not not opts.show_index,
    follow_symlinks = not not opts.follow_symlinks,
    chunk_size = cs or DEFAULT_CHUNK, root = nil }, Static)
end

-- whether path is root or under it (both real paths)
local function inside(root, path)
  if root == "/" then return true end
  return path == root or sub(path, 1, #root + 1) == root .. "/"
end

--- s:handle(method, raw_path [, req_headers]) -> a response table. raw_path
-- is the request target as received (not decoded; a query is ignored);
-- req_headers has lowercase names (a plain table or a CIMultiDict).
function Static:handle(method, raw_path, req_headers)
  if getmetatable(self) ~= Static then
    error(("lasync.http.Static:handle: expected a Static (got %s)")
      :format(type(self)), 2)
  end
  if type(method) ~= "string" then
    error(("lasync.http.Static:handle: method must be a string (got %s)")
      :format(type(method)), 2)
  end
  if type(raw_path) ~= "string" then
    error(("lasync.http.Static:handle: raw_path must be a string (got %s)")
      :format(type(raw_path)), 2)
  end
  check_headers(req_headers, "Static:handle")
  if method ~= "GET" and method ~= "HEAD" then
    return plain(405, "Method Not Allowed", { Allow = "GET, HEAD" })
  end
  local target = match(raw_path, "^[^?#]*")
  local prefix = self.prefix
  if sub(target, 1, #prefix) ~= prefix then
    return plain(404, "Not Found")
  end
  local rel = sub(target, #prefix + 1)
  if rel ~= "" and sub(rel, 1, 1) ~= "/" then
    return plain(404, "Not Found")
  end
  -- refused before decoding: encoded separators and NUL, backslashes
  if find(rel, "%%2[fF]") or find(rel, "%%5[cC]") or find(rel, "%%00") or
      find(rel, "[\\%z]") then
    return plain(403, "Forbidden")
  end
  local decoded = url.unquote(rel)
  if not decoded then return plain(400, "Bad Request") end
  local segs = {}
  for seg in decoded:gmatch("[^/]+") do
    if seg == ".." then return plain(403, "Forbidden") end
    if seg ~= "." then segs[#segs + 1] = seg end
  end
  local fs = lasync_fs()
  local root = self.root
  if not root then
    local status
    root, status = try_fs(fs.realpath, self.dir)
    if not root then return plain(404, "Not Found") end
    self.root = root
  end
  local path = #segs == 0 and root or
      (root == "/" and "" or root) .. "/" .. concat(segs, "/")
  local st, status
  if self.follow_symlinks then
    st, status = try_fs(fs.stat, path)
  else
    local real
    real, status = try_fs(fs.realpath, path)
    if real then
      if not inside(root, real) then return plain(403, "Forbidden") end
      st, status = try_fs(fs.stat, real)
    end
  end
  if not st then
    return plain(status, status == 404 and "Not Found" or "Forbidden")
  end
  if st.type == "directory" then
    if not self.show_index then return plain(403, "Forbidden") end
    return { status = 200, headers = {
      ["Content-Type"] = "text/html; charset=utf-8" },
      body = index_page(path, prefix, segs) }
  end
  if st.type ~= "file" then return plain(403, "Forbidden") end
  return file_response(path, st, req_headers, self.chunk_size)
end

--}======================================================================

M._byte_range = byte_range

return M
