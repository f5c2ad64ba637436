-- lasync.http.formdata: the HTTP client's request bodies. form{} builds a
-- multipart/form-data body (RFC 7578) of text fields, in-memory parts and
-- files, whose exact size is known before it is sent and whose chunks
-- stream the files 64 KiB at a time through lasync.fs; urlencode gives an
-- application/x-www-form-urlencoded body (through lasync.http.url).
local url = require "lasync.http.url"
local mime = require "lasync.http.mime"
local multidict = require "lasync.http.multidict"

local M = {}

local type, error, pcall, tostring, setmetatable, getmetatable, pairs,
  ipairs = type, error, pcall, tostring, setmetatable, getmetatable,
  pairs, ipairs
local find, gsub, match, format, byte, sort, concat, math_type =
  string.find, string.gsub, string.match, string.format, string.byte,
  table.sort, table.concat, math.type

local CHUNK = 65536 -- bytes of a file read at a time, and the size up to
                    -- which small strings are merged into one chunk

local function lasync() return require "lasync" end

-- Whether p is a plain table of exactly two entries, [1] and [2].
local function is_pair(p)
  if type(p) ~= "table" or getmetatable(p) ~= nil then return false end
  local n = 0
  for _ in pairs(p) do n = n + 1 end
  return n == 2 and p[1] ~= nil and p[2] ~= nil
end

local function typename(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then
    return mt.__name
  end
  return type(v)
end

--{======================================================================
-- Parts: in memory (part) or a file (file_part)
--=======================================================================

local Part = { __name = "lasync.http.Part" }
Part.__index = Part

function Part.__tostring(p)
  if p.path then
    return ("lasync.http.Part (file %s, %d bytes)"):format(p.path, p.size)
  end
  return ("lasync.http.Part (%d bytes)"):format(#p.data)
end

local function is_part(v) return getmetatable(v) == Part end

--- formdata.is_part(v) -> whether v is a part made by part or file_part
M.is_part = is_part

-- Checks opts (nil or a table of content_type and filename) for fname;
-- returns content_type, filename (each maybe nil).
local function check_opts(opts, fname)
  if opts == nil then return nil, nil end
  if type(opts) ~= "table" then
    error(("%s: opts must be a table such as {content_type = " ..
      "\"image/png\", filename = \"a.png\"} (got %s)")
      :format(fname, typename(opts)), 3)
  end
  for k in pairs(opts) do
    if k ~= "content_type" and k ~= "filename" then
      error(("%s: unknown option %s (options are content_type, " ..
        "filename)"):format(fname, tostring(k)), 3)
    end
  end
  local ct, filename = opts.content_type, opts.filename
  if ct ~= nil then
    if type(ct) ~= "string" or ct == "" then
      error(("%s: content_type must be a non-empty string (got %s)")
        :format(fname, ct == "" and "\"\"" or typename(ct)), 3)
    end
    if find(ct, "[\r\n%z]") then
      error(("%s: content_type contains CR, LF or NUL"):format(fname), 3)
    end
  end
  if filename ~= nil then
    if type(filename) ~= "string" then
      error(("%s: filename must be a string (got %s)")
        :format(fname, typename(filename)), 3)
    end
    if find(filename, "\0", 1, true) then
      error(("%s: filename contains a NUL byte"):format(fname), 3)
    end
  end
  return ct, filename
end

--- formdata.part(bytes [, opts]) -> a part whose content is the string
-- bytes. opts: content_type (sent as the part's Content-Type), filename
-- (makes it a file field; its content type then defaults to the one of
-- the filename's extension, else application/octet-stream).
function M.part(bytes, opts)
  if type(bytes) ~= "string" then
    error(("lasync.http.part: bytes must be a string (got %s)")
      :format(typename(bytes)), 2)
  end
  local ct, filename = check_opts(opts, "lasync.http.part")
  if filename and not ct then ct = mime.guess(filename) or mime.DEFAULT end
  return setmetatable({ data = bytes, content_type = ct,
    filename = filename }, Part)
end

-- The error of an fs call made for fname, its message naming fname: an
-- OSError, or the string of a call made outside a task.
local function rename_error(err, fname, misuse_fname)
  local l = lasync()
  if l.is_error(err, l.OSError) and type(err.message) == "string" then
    err.message = gsub(err.message, "^lasync%.fs%.%w+:", fname .. ":")
  elseif type(err) == "string" then
    err = gsub(err, "^lasync%.fs%.%w+:", (misuse_fname or fname) .. ":")
  end
  return err
end

--- formdata.file_part(path [, opts]) -> a part streamed from the file at
-- path, stat'ed now (a task is needed): its size is the body's, and a
-- missing or unreadable file raises lasync.OSError here. opts:
-- filename (default the path's last segment), content_type (default by
-- the filename's extension, else application/octet-stream).
function M.file_part(path, opts)
  local fname = "lasync.http.file_part"
  if type(path) ~= "string" then
    error(("%s: path must be a string (got %s)")
      :format(fname, typename(path)), 2)
  end
  if path == "" then error(fname .. ": path is empty", 2) end
  if find(path, "\0", 1, true) then
    error(fname .. ": path contains an embedded NUL byte", 2)
  end
  local ct, filename = check_opts(opts, fname)
  local l = lasync()
  local ok, st = pcall(l.fs.stat, path)
  if not ok then error(rename_error(st, fname), 0) end
  if st.type ~= "file" then
    error(l.OSError(("%s: not a regular file (%s)"):format(fname, path),
      { target = path }), 0)
  end
  filename = filename or match(path, "([^/]*)/*$")
  if filename == "" then filename = path end
  return setmetatable({ path = path, size = st.size,
    content_type = ct or mime.guess(filename) or mime.DEFAULT,
    filename = filename }, Part)
end

--}======================================================================

--{======================================================================
-- The boundary
--=======================================================================

-- 16 random bytes as 32 hex digits: from /dev/urandom, or Lua's
-- generator where there is none (the boundary needs to be unlikely in
-- the content, not secret).
function M._random_hex()
  local h = io.open("/dev/urandom", "rb")
  local bytes = h and h:read(16)
  if h then h:close() end
  if not bytes or #bytes ~= 16 then
    local t = {}
    for i = 1, 16 do t[i] = string.char(math.random(0, 255)) end
    bytes = concat(t)
  end
  return (gsub(bytes, ".", function(c) return format("%02x", byte(c)) end))
end

--}======================================================================

--{======================================================================
-- Forms
--=======================================================================

local Form = { __name = "lasync.http.Form" }
Form.__index = Form

function Form.__tostring(f)
  return ("lasync.http.Form (%d parts, %d bytes)"):format(f._count, f._size)
end

--- formdata.is_form(v) -> whether v is a form made by form{}
function M.is_form(v) return getmetatable(v) == Form end

local FORM = "lasync.http.form"

-- A field name or filename as a quoted-string of Content-Disposition,
-- escaped as browsers (WHATWG) and aiohttp do: " CR LF as %22 %0D %0A.
local ESCAPE = { ['"'] = "%22", ["\r"] = "%0D", ["\n"] = "%0A" }
local function quoted(s)
  return '"' .. gsub(s, '["\r\n]', ESCAPE) .. '"'
end

local function check_name(name, what)
  if type(name) ~= "string" then
    error(("%s: %s must be a string (got %s)")
      :format(FORM, what, typename(name)), 4)
  end
  if find(name, "\0", 1, true) then
    error(("%s: field name %q contains a NUL byte"):format(FORM, name), 4)
  end
end

-- Appends the entries of (name, value) to list: a scalar or a part, or
-- one per element of an array of those.
local function add_field(list, name, value)
  local tv = type(value)
  if tv == "string" then
    list[#list + 1] = { name, value }
  elseif tv == "number" or tv == "boolean" then
    list[#list + 1] = { name, tostring(value) }
  elseif is_part(value) then
    list[#list + 1] = { name, value }
  elseif tv == "table" and getmetatable(value) == nil then
    local n = #value
    for k in pairs(value) do
      if math_type(k) ~= "integer" or k < 1 or k > n then
        error(("%s: value of field %s must be a string, number, boolean, " ..
          "part or an array of those (got a table with key %s)")
          :format(FORM, quoted(name), tostring(k)), 4)
      end
    end
    for i = 1, n do
      local v = value[i]
      local t = type(v)
      if t == "string" or is_part(v) then
        list[#list + 1] = { name, v }
      elseif t == "number" or t == "boolean" then
        list[#list + 1] = { name, tostring(v) }
      else
        error(("%s: element %d of field %s must be a string, number, " ..
          "boolean or part (got %s)"):format(FORM, i, quoted(name),
          typename(v)), 4)
      end
    end
  else
    error(("%s: value of field %s must be a string, number, boolean, " ..
      "part or an array of those (got %s)"):format(FORM, quoted(name),
      typename(value)), 4)
  end
end

-- The fields as an array of {name, string or part}, in the order sent.
local function collect(fields)
  local list = {}
  if multidict.is(fields) then
    for k, v in fields:items() do
      check_name(k, "a field name")
      add_field(list, k, v)
    end
    return list
  end
  if type(fields) ~= "table" or getmetatable(fields) ~= nil then
    error(("%s: fields must be a table of name = value, an array of " ..
      "{name, value} pairs or a MultiDict (got %s)")
      :format(FORM, typename(fields)), 3)
  end
  if fields[1] ~= nil then -- an array of pairs
    local n = #fields
    for k in pairs(fields) do
      if math_type(k) ~= "integer" or k < 1 or k > n then
        error(("%s: fields mixes {name, value} pairs with the key %s")
          :format(FORM, tostring(k)), 3)
      end
    end
    for i = 1, n do
      local pair = fields[i]
      if not is_pair(pair) then
        error(("%s: field %d must be a {name, value} pair (got %s)")
          :format(FORM, i, typename(pair)), 3)
      end
      check_name(pair[1], ("the name of field %d"):format(i))
      add_field(list, pair[1], pair[2])
    end
    return list
  end
  local names = {}
  for k in pairs(fields) do
    check_name(k, "a field name")
    names[#names + 1] = k
  end
  sort(names)
  for _, k in ipairs(names) do add_field(list, k, fields[k]) end
  return list
end

-- Whether the boundary occurs in any in-memory content of list.
local function occurs(list, boundary)
  for _, e in ipairs(list) do
    local v = e[2]
    local s = v
    if is_part(v) then s = v.data end -- nil for a file: not scanned
    if s and find(s, boundary, 1, true) then return true end
    if find(e[1], boundary, 1, true) then return true end
    if is_part(v) and v.filename and find(v.filename, boundary, 1, true)
    then
      return true
    end
  end
  return false
end

-- A part's head: its Content-Disposition and Content-Type lines and the
-- empty line.
local function head(name, v)
  local cd = "Content-Disposition: form-data; name=" .. quoted(name)
  if not is_part(v) then return cd .. "\r\n\r\n" end
  if v.filename then cd = cd .. "; filename=" .. quoted(v.filename) end
  if v.content_type then
    return cd .. "\r\nContent-Type: " .. v.content_type .. "\r\n\r\n"
  end
  return cd .. "\r\n\r\n"
end

--- formdata.form(fields) -> a multipart/form-data body. fields: a table
-- name -> value (names sorted), an array of {name, value} pairs or a
-- MultiDict (their order kept); a value is a string, number, boolean,
-- part (part, file_part) or an array of those (the field repeated).
function M.form(fields)
  local list = collect(fields)
  local boundary
  repeat
    boundary = M._random_hex()
  until not occurs(list, boundary)
  -- The body as segments: strings (small ones merged, up to CHUNK) and
  -- file parts; f:chunks() walks them.
  local segs, pending, plen, size = {}, {}, 0, 0
  local function flush()
    if #pending > 0 then
      segs[#segs + 1] = concat(pending)
      pending, plen = {}, 0
    end
  end
  local function put(s)
    size = size + #s
    if #s >= CHUNK then
      flush()
      segs[#segs + 1] = s
      return
    end
    if plen + #s > CHUNK then flush() end
    pending[#pending + 1] = s
    plen = plen + #s
  end
  for i, e in ipairs(list) do
    local name, v = e[1], e[2]
    put((i == 1 and "--" or "\r\n--") .. boundary .. "\r\n" .. head(name, v))
    if not is_part(v) then
      put(v)
    elseif v.path then
      flush()
      segs[#segs + 1] = v
      size = size + v.size
    else
      put(v.data)
    end
  end
  put((#list > 0 and "\r\n--" or "--") .. boundary .. "--\r\n")
  flush()
  return setmetatable({ boundary = boundary, _segs = segs, _size = size,
    _count = #list, _iters = setmetatable({}, { __mode = "k" }) }, Form)
end

local function check_form(f, method)
  if getmetatable(f) ~= Form then
    error(("lasync.http.Form:%s: expected a Form (got %s)")
      :format(method, f == nil and "no value" or typename(f)), 3)
  end
end

--- f:content_type() -> "multipart/form-data; boundary=..."
function Form:content_type()
  check_form(self, "content_type")
  return "multipart/form-data; boundary=" .. self.boundary
end

--- f:size() -> the body's length in bytes (the Content-Length)
function Form:size()
  check_form(self, "size")
  return self._size
end

-- Closes the iterator state's file at once (also where the task cannot
-- suspend: a to-be-closed variable, a finalizer).
local function drop_file(st)
  local file = st.file
  if file then
    st.file = nil
    getmetatable(file).__close(file)
  end
end

-- The OSError for a file whose size is not the one stat'ed at build time.
local function size_changed(st, part)
  drop_file(st)
  local l = lasync()
  return l.OSError(("%s: %s changed size while it was sent (%d bytes " ..
    "when the form was built)"):format(FORM, part.path, part.size),
    { target = part.path })
end

-- The to-be-closed value of a pass: a generic for left early closes it.
local iter_mt = { __name = "lasync.http.FormChunks" }
function iter_mt.__close(c)
  drop_file(c.st)
  c.st.closed = true
end

--- f:chunks() -> an iterator: each call returns the next piece of the
-- body (a non-empty string), nil at its end. It opens each file when
-- its turn comes and closes it at its end; reading awaits, so it runs in
-- a task. Each call of chunks() starts a new pass (a redirect re-sends
-- the body). Also returns nil, nil and a to-be-closed value, so that a
-- generic for that is left early closes the open file.
function Form:chunks()
  check_form(self, "chunks")
  local segs, i = self._segs, 1
  local st = { file = nil, left = 0, closed = false }
  self._iters[st] = true
  local fs
  local function iter()
    if st.closed then
      error("lasync.http.Form:chunks: the iterator was closed " ..
        "(f:close())", 2)
    end
    while true do
      local seg = segs[i]
      if seg == nil then return nil end
      if type(seg) == "string" then
        i = i + 1
        return seg
      end
      if not st.file then
        fs = fs or lasync().fs
        local ok, file = pcall(fs.open, seg.path, "rb")
        if not ok then
          error(rename_error(file, FORM, "lasync.http.Form:chunks"), 0)
        end
        if st.closed then -- closed while it opened
          getmetatable(file).__close(file)
          error("lasync.http.Form:chunks: the iterator was closed " ..
            "(f:close())", 2)
        end
        st.file, st.left = file, seg.size
      end
      local left = st.left
      -- one byte more than is left: a file that grew is seen at once
      local want = left >= CHUNK and CHUNK or left + 1
      local ok, data = pcall(st.file.read, st.file, want)
      if not ok then
        drop_file(st)
        error(data, 0)
      end
      if st.closed then -- f:close() while it read
        error("lasync.http.Form:chunks: the iterator was closed " ..
          "(f:close())", 2)
      end
      local n = #data
      if n > left or (n == 0 and left > 0) then
        error(size_changed(st, seg), 0)
      end
      st.left = left - n
      if st.left == 0 and n < want then -- a short read: the end
        drop_file(st)
        i = i + 1
      end
      if n > 0 then return data end
    end
  end
  return iter, nil, nil, setmetatable({ st = st }, iter_mt)
end

--- f:close(): closes the files that the iterators of f:chunks() have
-- open (an upload abandoned in the middle); those iterators then raise.
-- A later f:chunks() starts a new pass.
function Form:close()
  check_form(self, "close")
  for st in pairs(self._iters) do
    drop_file(st)
    st.closed = true
  end
end
Form.__close = Form.close

--}======================================================================

--{======================================================================
-- application/x-www-form-urlencoded
--=======================================================================

local function scalar(v)
  local t = type(v)
  return t == "string" or t == "number" or t == "boolean"
end

-- Checks value (a scalar, or an array of scalars) of field k for fname.
local function check_value(k, v, fname, level)
  if scalar(v) then return end
  if type(v) == "table" and getmetatable(v) == nil then
    local n = #v
    for key, x in pairs(v) do
      if math_type(key) ~= "integer" or key < 1 or key > n then
        error(("%s: value of %q must be a string, number, boolean or an " ..
          "array of those (got a table with key %s)"):format(fname, k,
          tostring(key)), level + 1)
      end
      if not scalar(x) then
        error(("%s: element %d of %q must be a string, number or " ..
          "boolean (got %s)"):format(fname, key, k, typename(x)),
          level + 1)
      end
    end
    return
  end
  error(("%s: value of %q must be a string, number, boolean or an array " ..
    "of those (got %s)"):format(fname, k, typename(v)), level + 1)
end

--- formdata.urlencode(fields [, fname [, level]]) -> "a=1&a=2&b=x+y":
-- fields is a table name -> value (names sorted), an array of {name,
-- value} pairs or a MultiDict (their order kept); a value is a string,
-- number, boolean or an array of those (the name repeated). Space is
-- "+", other bytes but letters, digits and "-._~" percent-encoded.
-- Errors name fname (default "lasync.http.urlencode") and blame the
-- caller `level` levels up (default 1: urlencode's caller).
function M.urlencode(fields, fname, level)
  fname = fname or "lasync.http.urlencode"
  level = (level or 1) + 1
  if multidict.is(fields) then
    for k, v in fields:items() do
      if not scalar(v) then
        error(("%s: value of %q must be a string, number or boolean " ..
          "(got %s)"):format(fname, k, typename(v)), level)
      end
    end
    return url.encode_qs(fields)
  end
  if type(fields) ~= "table" or getmetatable(fields) ~= nil then
    error(("%s: fields must be a table of name = value, an array of " ..
      "{name, value} pairs or a MultiDict (got %s)")
      :format(fname, typename(fields)), level)
  end
  if fields[1] ~= nil then
    local n = #fields
    local md = multidict.new()
    for k in pairs(fields) do
      if math_type(k) ~= "integer" or k < 1 or k > n then
        error(("%s: fields mixes {name, value} pairs with the key %s")
          :format(fname, tostring(k)), level)
      end
    end
    for i = 1, n do
      local pair = fields[i]
      if not is_pair(pair) then
        error(("%s: field %d must be a {name, value} pair (got %s)")
          :format(fname, i, typename(pair)), level)
      end
      local k, v = pair[1], pair[2]
      if type(k) ~= "string" then
        error(("%s: the name of field %d must be a string (got %s)")
          :format(fname, i, typename(k)), level)
      end
      check_value(k, v, fname, level)
      if type(v) == "table" then
        for _, x in ipairs(v) do md:add(k, tostring(x)) end
      else
        md:add(k, tostring(v))
      end
    end
    return url.encode_qs(md)
  end
  for k, v in pairs(fields) do
    if type(k) ~= "string" then
      error(("%s: field names must be strings (got %s %s)")
        :format(fname, typename(k), tostring(k)), level)
    end
    check_value(k, v, fname, level)
  end
  return url.encode_qs(fields)
end

--}======================================================================

return M
