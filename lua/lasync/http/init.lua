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

return M
