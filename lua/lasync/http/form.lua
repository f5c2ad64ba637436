-- lasync.http.form: request bodies as forms, for Request:post. One entry,
-- form.parse(content_type, next_chunk, limits), reads the body through
-- next_chunk and gives a multidict: urlencoded forms through
-- url.parse_qs, multipart/form-data (RFC 7578) by a streaming parser
-- that accepts any split of the body, keeps text fields as strings and
-- spools large files to a temporary directory through lasync.fs.
local multidict = require "lasync.http.multidict"
local url = require "lasync.http.url"

local M = {}

local type, error, pcall, setmetatable, getmetatable, tostring = type,
  error, pcall, setmetatable, getmetatable, tostring
local find, sub, match, lower, gsub, byte = string.find, string.sub,
  string.match, string.lower, string.gsub, string.byte
local concat, math_type = table.concat, math.type

-- Raised inside the parser and turned into its nil, err result.
local FormError = { __name = "lasync.http.FormError" }
FormError.__index = FormError
function FormError.__tostring(e)
  return ("%d: %s"):format(e.status, e.message)
end

local function throw(status, message)
  error(setmetatable({ status = status, message = message }, FormError), 0)
end

--{======================================================================
-- Content-Type and Content-Disposition parameters
--=======================================================================

-- value (a quoted-string without its quotes) with \x unescaped
local function unescape_quoted(s)
  if not find(s, "\\", 1, true) then return s end
  return (gsub(s, "\\(.)", "%1"))
end

--- form.parse_header(value) -> the lowercased first item ("multipart/
-- form-data", "form-data") and a table of its parameters (lowercased
-- names; values unquoted). Lenient: a parameter it cannot read ends the
-- list.
function M.parse_header(value)
  if type(value) ~= "string" then
    error(("lasync.http.form.parse_header: value must be a string (got " ..
      "%s)"):format(type(value)), 2)
  end
  local first, pos = match(value, "^[ \t]*([^;]*)()")
  first = match(first, "^(.-)[ \t]*$")
  local params = {}
  local n = #value
  pos = find(value, ";", pos, true)
  while pos do
    local name, p = match(value, "^[ \t]*([^=; \t]+)[ \t]*=[ \t]*()",
      pos + 1)
    if not name then
      pos = find(value, ";", pos + 1, true)
    else
      local v
      if byte(value, p) == 34 then -- a quoted-string
        local i = p + 1
        local parts = {}
        while true do
          local q = find(value, '["\\]', i)
          if not q then return lower(first), params end -- unterminated
          if byte(value, q) == 92 then
            parts[#parts + 1] = sub(value, i, q - 1)
            parts[#parts + 1] = sub(value, q + 1, q + 1)
            i = q + 2
          else
            parts[#parts + 1] = sub(value, i, q - 1)
            p = q + 1
            break
          end
        end
        v = concat(parts)
      else
        local e = find(value, ";", p, true) or n + 1
        v = match(sub(value, p, e - 1), "^(.-)[ \t]*$")
        p = e
      end
      name = lower(name)
      if params[name] == nil then params[name] = v end
      pos = find(value, ";", p, true)
    end
  end
  return lower(first), params
end

-- RFC 5987 ext-value (filename*=UTF-8''a%20b.txt) decoded, or nil
local function ext_value(v)
  local charset, text = match(v, "^([%w!#$%%&+%-^_`{}~]+)'[^']*'(.*)$")
  if not charset then return nil end
  return (url.unquote(text))
end

--}======================================================================

--{======================================================================
-- The body reader: next_chunk's pieces, counted against max_size
--=======================================================================

local function reader(next_chunk, max_size)
  local total = 0
  return function()
    local piece, status, message = next_chunk()
    if piece == nil then return nil end
    if piece == false then
      throw(math_type(status) == "integer" and status or 400,
        type(message) == "string" and message or "bad request body")
    end
    if type(piece) ~= "string" then
      error(("lasync.http.form.parse: next_chunk returned a %s (expected " ..
        "a string, nil at the end, or false, status, message)")
        :format(type(piece)), 0)
    end
    total = total + #piece
    if total > max_size then
      throw(413, ("the body is larger than %d bytes"):format(max_size))
    end
    return piece
  end
end

--}======================================================================

--{======================================================================
-- application/x-www-form-urlencoded
--=======================================================================

local function parse_urlencoded(read, limits)
  local parts = {}
  while true do
    local piece = read()
    if piece == nil then break end
    parts[#parts + 1] = piece
  end
  local fields, err, status = url.parse_qs(concat(parts), limits.max_parts)
  if not fields then throw(status, err) end
  return fields
end

--}======================================================================

--{======================================================================
-- multipart/form-data
--=======================================================================

-- RFC 2046 bchars, 1 to 70 of them, the last not a space
local function valid_boundary(b)
  return #b >= 1 and #b <= 70 and find(b, "^[%w'()+_,%-./:=? ]+$") and
    sub(b, -1) ~= " "
end

local MAX_PADDING = 256 -- transport padding allowed after a delimiter

-- Parses a part's head (the lines before the empty one) into a table of
-- lowercased names -> value; throws 400 on anything malformed.
local function part_headers(head)
  local h = {}
  if head == "" then return h end
  local pos, n = 1, #head
  while pos <= n do
    local e = find(head, "\r\n", pos, true) or n + 1
    local line = sub(head, pos, e - 1)
    if find(line, "^[ \t]") then
      throw(400, "multipart: a part header is folded (obs-fold)")
    end
    if find(line, "[%z\r\n]") then
      throw(400, "multipart: a part header contains a CR, LF or NUL")
    end
    local name, value = match(line,
      "^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
    if not name then
      throw(400, "multipart: a malformed part header")
    end
    name = lower(name)
    if h[name] ~= nil then
      throw(400, "multipart: part header " .. name .. " is repeated")
    end
    h[name] = value
    pos = e + 2
  end
  return h
end

-- The spool: a temporary directory made on first use; cleanup removes
-- its files and itself.
local function new_spool(tmpdir)
  local fs = require("lasync").fs
  local spool = { files = {}, dir = nil }
  function spool.open()
    if not spool.dir then
      spool.dir = fs.mkdtemp(tmpdir .. "/lasync-form-XXXXXX")
    end
    local path = ("%s/%d"):format(spool.dir, #spool.files + 1)
    spool.files[#spool.files + 1] = path
    return fs.open(path, "x"), path
  end
  function spool.cleanup()
    for i = #spool.files, 1, -1 do
      os.remove(spool.files[i])
      spool.files[i] = nil
    end
    if spool.dir then
      os.remove(spool.dir)
      spool.dir = nil
    end
  end
  return spool
end

local function memory_reader(content)
  return function() return content end
end

local function file_reader(path)
  return function() return require("lasync").fs.readfile(path) end
end

-- The streaming parser. `state` holds what the error path must release
-- (the spool file being written).
local function parse_multipart(read, boundary, limits, spool, state)
  local form = multidict.new()
  local delim = "--" .. boundary
  local crlf_delim = "\r\n" .. delim
  local keep = #crlf_delim - 1 -- bytes held back: a delimiter may start
  local buf, pos, eof = "", 1, false
  local at_start = true -- buf[1] is the body's first byte

  -- appends the next piece to buf; false at the end of the body
  local function more()
    if eof then return false end
    local piece = read()
    if piece == nil then
      eof = true
      return false
    end
    if pos > 1 then
      buf = sub(buf, pos) .. piece
      pos, at_start = 1, false
    else
      buf = buf .. piece
    end
    return true
  end

  -- at least n bytes from pos, or throw `what`
  local function need(n, what)
    while #buf - pos + 1 < n do
      if not more() then throw(400, "multipart: " .. what) end
    end
  end

  -- The first delimiter: at the start, or after a CRLF (a preamble
  -- before it is skipped). A false one ("x--boundary") is searched past
  -- in what is buffered before reading more, so the split does not
  -- matter; the CRLF before a delimiter is kept in buf when trimming.
  while true do
    local i = find(buf, delim, pos, true)
    if i and ((i == 1 and at_start) or sub(buf, i - 2, i - 1) == "\r\n")
    then
      pos = i + #delim
      break
    end
    if i then
      pos = i + 1
    else
      if #buf - pos + 1 > #crlf_delim then
        pos = #buf - #crlf_delim + 1
      end
      if not more() then
        throw(400, "multipart: the body has no opening boundary")
      end
    end
  end

  local parts, max_parts = 0, limits.max_parts
  local max_head, threshold = limits.max_part_head, limits.spool_threshold
  while true do
    -- after a delimiter: "--" closes, else padding and CRLF open a part
    need(2, "the body ends after a boundary")
    if sub(buf, pos, pos + 1) == "--" then break end
    while true do
      local s, e = find(buf, "^[ \t]*\r\n", pos)
      if s then
        pos = e + 1
        break
      end
      if find(buf, "[^ \t\r]", pos) or find(buf, "\r.", pos) then
        throw(400, "multipart: a boundary is not followed by CRLF")
      end
      if #buf - pos + 1 > MAX_PADDING then
        throw(400, "multipart: too much padding after a boundary")
      end
      if not more() then
        throw(400, "multipart: the body ends in a boundary line")
      end
    end

    parts = parts + 1
    if parts > max_parts then
      throw(413, ("multipart: more than %d parts"):format(max_parts))
    end

    -- the part's head: lines up to an empty one
    local head
    need(2, "the body ends in a part's headers")
    if sub(buf, pos, pos + 1) == "\r\n" then
      head, pos = "", pos + 2
    else
      local scanned = 0 -- bytes after pos already searched
      while true do
        local s = find(buf, "\r\n\r\n", pos + scanned, true)
        if s then
          head = sub(buf, pos, s - 1)
          pos = s + 4
          break
        end
        if #buf - pos + 1 > max_head then
          throw(400, ("multipart: a part's headers are larger than %d " ..
            "bytes"):format(max_head))
        end
        -- the next search starts 3 bytes back: a CRLFCRLF may straddle
        scanned = #buf - pos - 2 > 0 and #buf - pos - 2 or 0
        if not more() then
          throw(400, "multipart: the body ends in a part's headers")
        end
      end
      if #head > max_head then
        throw(400, ("multipart: a part's headers are larger than %d " ..
          "bytes"):format(max_head))
      end
    end
    local headers = part_headers(head)
    local cd = headers["content-disposition"]
    if not cd then
      throw(400, "multipart: a part has no Content-Disposition")
    end
    local disposition, params = M.parse_header(cd)
    if disposition ~= "form-data" or params.name == nil then
      throw(400, "multipart: a part's Content-Disposition is not " ..
        "form-data with a name")
    end
    local filename = params.filename
    if params["filename*"] then
      filename = ext_value(params["filename*"]) or filename
    end

    -- the part's content, up to CRLF and the next delimiter
    local pieces, size, file = {}, 0, nil
    local function emit(data)
      if data == "" then return end
      size = size + #data
      if file then
        file:write(data)
      elseif filename and size > threshold then
        local f, path = spool.open()
        state.file, state.path = f, path
        file = f
        for _, p in ipairs(pieces) do f:write(p) end
        pieces = {}
        f:write(data)
      else
        pieces[#pieces + 1] = data
      end
    end
    while true do
      local i = find(buf, crlf_delim, pos, true)
      if i then
        emit(sub(buf, pos, i - 1))
        pos = i + #crlf_delim
        break
      end
      local upto = #buf - keep
      if upto >= pos then
        emit(sub(buf, pos, upto))
        pos = upto + 1
      end
      if not more() then
        throw(400, "multipart: the body ends inside a part")
      end
    end

    if filename == nil then
      form:add(params.name, concat(pieces))
    else
      local field = { name = params.name, filename = filename,
        content_type = headers["content-type"] or "text/plain",
        headers = headers, size = size }
      if file then
        file:close()
        field.path, state.file = state.path, nil
        field.read = file_reader(state.path)
      else
        field.read = memory_reader(concat(pieces))
      end
      form:add(params.name, field)
    end
  end
  -- the epilogue is read and dropped, so the whole body is consumed
  buf, pos = "", 1
  while read() do end
  return form
end

--}======================================================================

local function noop() end

local LIMITS = { max_parts = true, max_size = true, spool_threshold = true,
  max_part_head = true, tmpdir = true }

local function check_limits(limits)
  if limits == nil then limits = {} end
  if type(limits) ~= "table" then
    error(("lasync.http.form.parse: limits must be a table such as " ..
      "{max_size = 1048576} (got %s)"):format(type(limits)), 3)
  end
  for k in pairs(limits) do
    if not LIMITS[k] then
      error(("lasync.http.form.parse: unknown limit %s (limits are " ..
        "max_parts, max_size, spool_threshold, max_part_head, tmpdir)")
        :format(tostring(k)), 3)
    end
  end
  local out = {}
  for _, k in ipairs { "max_parts", "max_size", "spool_threshold",
    "max_part_head" } do
    local v = limits[k]
    if v ~= nil and (math_type(v) ~= "integer" or v < 0) then
      error(("lasync.http.form.parse: %s must be a non-negative integer " ..
        "(got %s)"):format(k, math_type(v) or type(v)), 3)
    end
  end
  out.max_parts = limits.max_parts or 1000
  out.max_size = limits.max_size or 1048576
  out.spool_threshold = limits.spool_threshold or 1048576
  out.max_part_head = limits.max_part_head or 8192
  local tmpdir = limits.tmpdir
  if tmpdir ~= nil and (type(tmpdir) ~= "string" or tmpdir == "" or
      find(tmpdir, "\0", 1, true)) then
    error("lasync.http.form.parse: tmpdir must be a directory path", 3)
  end
  out.tmpdir = tmpdir or os.getenv("TMPDIR") or "/tmp"
  return out
end

--- form.parse(content_type, next_chunk [, limits]) -> form, cleanup; or
-- nil, {status =, message =}. content_type is the request's header (nil
-- or "" as urlencoded, as aiohttp does); next_chunk() gives the body a
-- piece at a time, nil at its end, or false, status, message on a read
-- error (conn:read_chunk's results). A type other than urlencoded or
-- multipart/form-data gives an empty form without reading the body.
-- cleanup() removes the spooled files (call it when the request ends).
function M.parse(content_type, next_chunk, limits)
  if content_type ~= nil and type(content_type) ~= "string" then
    error(("lasync.http.form.parse: content_type must be a string or nil " ..
      "(got %s)"):format(type(content_type)), 2)
  end
  if type(next_chunk) ~= "function" then
    error(("lasync.http.form.parse: next_chunk must be a function (got " ..
      "%s)"):format(type(next_chunk)), 2)
  end
  limits = check_limits(limits)
  local mtype, params = "", {}
  if content_type and content_type ~= "" then
    mtype, params = M.parse_header(content_type)
  end
  local read = reader(next_chunk, limits.max_size)
  if mtype == "" or mtype == "application/x-www-form-urlencoded" then
    local ok, res = pcall(parse_urlencoded, read, limits)
    if ok then return res, noop end
    if getmetatable(res) == FormError then return nil, res end
    error(res, 0)
  end
  if mtype ~= "multipart/form-data" then
    return multidict.new(), noop
  end
  local boundary = params.boundary
  if not boundary or not valid_boundary(boundary) then
    return nil, setmetatable({ status = 400, message = "multipart: the " ..
      "Content-Type has no valid boundary" }, FormError)
  end
  local spool = new_spool(limits.tmpdir)
  local state = {}
  local ok, res = pcall(parse_multipart, read, boundary, limits, spool,
    state)
  if ok then
    return res, #spool.files > 0 and spool.cleanup or noop
  end
  if state.file then pcall(state.file.close, state.file) end
  spool.cleanup()
  if getmetatable(res) == FormError then return nil, res end
  error(res, 0)
end

return M
