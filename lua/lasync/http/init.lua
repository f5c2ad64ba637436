-- lasync.http: an HTTP/1.1 server in aiohttp.web's shape. App (routes,
-- static folders, middlewares, start/run), the Request a handler gets and
-- what it answers: a string, Response, text, json, StreamResponse, or an
-- HTTPException (returned or raised). Loaded on first use of lasync.http.
local response = require "lasync.http.response"
local app = require "lasync.http.app"

local M = {}

M.App = setmetatable({}, {
  __call = function(_, opts) return app.new(opts) end,
  __index = app.App,
  __tostring = function() return "lasync.http.App" end,
})

M.Response = response.Response
M.StreamResponse = response.StreamResponse
M.text, M.html, M.json = response.text, response.html, response.json
M.redirect, M.file = response.redirect, response.file
M.is_exception = response.is_exception
M.HTTPException = response.HTTPException
for _, group in ipairs { "HTTPSuccessful", "HTTPRedirection", "HTTPError",
                         "HTTPClientError", "HTTPServerError" } do
  M[group] = response[group]
end
for _, cls in pairs(response.by_status) do M[cls.name] = cls end

-- The client (aiohttp's ClientSession): lasync.http.client.*
local session = require "lasync.http.client.session"
local client_errors = require "lasync.http.client.errors"
M.Session = setmetatable({}, {
  __call = function(_, opts) return session.new(opts) end,
  __index = session.Session,
  __tostring = function() return "lasync.http.Session" end,
})
for name, cls in pairs(client_errors) do
  if type(cls) == "table" then M[name] = cls end
end
M.BasicAuth = require("lasync.http.client.auth").BasicAuth
function M.request(method, url, opts)
  return session.oneshot(method, url, opts, "lasync.http.request")
end
for _, m in ipairs { "get", "post", "put", "patch", "delete", "head",
                     "options" } do
  local fname = "lasync.http." .. m
  M[m] = function(url, opts)
    return session.oneshot(m:upper(), url, opts, fname)
  end
end
-- The cookie jar and forms are modules of their own (cookiejar.lua,
-- formdata.lua), exported when present.
do
  local ok, CookieJar = pcall(require, "lasync.http.cookiejar")
  if ok then
    M.CookieJar = function(opts) return CookieJar.new(opts) end
  end
  local okf, formdata = pcall(require, "lasync.http.formdata")
  if okf then
    M.form, M.file_part = formdata.form, formdata.file_part
  end
end

return M
