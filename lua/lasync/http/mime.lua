-- lasync.http.mime: the content type of a file from its extension (the
-- common web set), with "; charset=utf-8" on text types, for static
-- files and http.file. Applications add or override types with
-- mime.add.
local M = {}

local type, error, match, lower, find = type, error, string.match,
  string.lower, string.find

local UTF8 = "; charset=utf-8"

-- extension (lowercase, no dot) -> content type
local TYPES = {
  html = "text/html" .. UTF8, htm = "text/html" .. UTF8,
  css = "text/css" .. UTF8, js = "text/javascript" .. UTF8,
  mjs = "text/javascript" .. UTF8, txt = "text/plain" .. UTF8,
  text = "text/plain" .. UTF8, md = "text/markdown" .. UTF8,
  csv = "text/csv" .. UTF8, xml = "text/xml" .. UTF8,
  svg = "image/svg+xml", json = "application/json",
  map = "application/json", webmanifest = "application/manifest+json",
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg",
  gif = "image/gif", webp = "image/webp", avif = "image/avif",
  ico = "image/vnd.microsoft.icon", bmp = "image/bmp",
  tif = "image/tiff", tiff = "image/tiff",
  wasm = "application/wasm", pdf = "application/pdf",
  zip = "application/zip", gz = "application/gzip",
  tar = "application/x-tar", bz2 = "application/x-bzip2",
  xz = "application/x-xz", ["7z"] = "application/x-7z-compressed",
  woff = "font/woff", woff2 = "font/woff2", ttf = "font/ttf",
  otf = "font/otf", eot = "application/vnd.ms-fontobject",
  mp4 = "video/mp4", webm = "video/webm", ogv = "video/ogg",
  mov = "video/quicktime", mp3 = "audio/mpeg", ogg = "audio/ogg",
  oga = "audio/ogg", wav = "audio/wav", flac = "audio/flac",
  m4a = "audio/mp4", aac = "audio/aac", opus = "audio/opus",
  lua = "text/x-lua" .. UTF8, sh = "text/x-shellscript" .. UTF8,
  rss = "application/rss+xml", atom = "application/atom+xml",
  xhtml = "application/xhtml+xml", rtf = "application/rtf",
  doc = "application/msword", epub = "application/epub+zip",
}

--- mime.DEFAULT: what static files without a known extension are sent as
M.DEFAULT = "application/octet-stream"

--- mime.guess(path) -> the content type for path's extension (after the
-- last "." of its last segment, any case), or nil when unknown
function M.guess(path)
  if type(path) ~= "string" then
    error(("lasync.http.mime.guess: path must be a string (got %s)")
      :format(type(path)), 2)
  end
  local ext = match(path, "%.([^./]+)$")
  if not ext then return nil end
  return TYPES[ext] or TYPES[lower(ext)]
end

--- mime.add(ext, content_type): maps an extension ("md" or ".md", any
-- case) to a content type, replacing the built-in one
function M.add(ext, content_type)
  if type(ext) ~= "string" or not match(ext, "^%.?[^./]+$") then
    error("lasync.http.mime.add: ext must be an extension such as " ..
      "\"md\" or \".md\"", 2)
  end
  if type(content_type) ~= "string" or
      find(content_type, "[%c\127]") or content_type == "" then
    error("lasync.http.mime.add: content_type must be a non-empty " ..
      "string without control characters", 2)
  end
  TYPES[lower(match(ext, "^%.?(.*)$"))] = content_type
end

return M
