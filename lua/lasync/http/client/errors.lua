-- lasync.http.client.errors: the error classes of the HTTP client, in
-- aiohttp's tree (ClientError and its subclasses), each instance with the
-- request's url; and the helpers that turn a lower error into one.
local lasync = require "lasync"

local class = lasync.error_class
local M = {}

M.ClientError = class("ClientError")
M.ClientConnectionError = class("ClientConnectionError", M.ClientError)
M.ClientConnectorError = class("ClientConnectorError",
  M.ClientConnectionError)
M.ClientConnectorDNSError = class("ClientConnectorDNSError",
  M.ClientConnectorError)
M.ClientSSLError = class("ClientSSLError", M.ClientConnectorError)
M.ServerDisconnectedError = class("ServerDisconnectedError",
  M.ClientConnectionError)
M.ClientOSError = class("ClientOSError", M.ClientConnectionError)
M.ClientPayloadError = class("ClientPayloadError", M.ClientError)
M.ClientResponseError = class("ClientResponseError", M.ClientError)
M.ContentTypeError = class("ContentTypeError", M.ClientResponseError)
M.TooManyRedirects = class("TooManyRedirects", M.ClientResponseError)
M.InvalidURL = class("InvalidURL", M.ClientError)
M.ClientTimeoutError = class("ClientTimeoutError", lasync.TimeoutError)

-- A failure to connect to host:port (err from open_connection) as the
-- ClientConnectorError subclass it is.
function M.connector(err, url, host, port)
  if lasync.is_cancelled(err) or not lasync.is_error(err) then
    return err
  end
  local code = err.code
  local fields = { url = url, host = host, port = port, os_error = err,
                   code = code }
  if lasync.is_error(err, lasync.SSLError) then
    fields.reason = err.reason
    fields.verify_code = err.verify_code
    fields.verify_message = err.verify_message
    return M.ClientSSLError(("cannot connect to %s:%s: %s")
      :format(host, port, err.message), fields)
  end
  if type(code) == "string" and code:sub(1, 4) == "EAI_" then
    return M.ClientConnectorDNSError(("cannot connect to %s:%s: %s")
      :format(host, port, err.message), fields)
  end
  return M.ClientConnectorError(("cannot connect to %s:%s: %s")
    :format(host, port, err.message), fields)
end

-- An I/O error on an established connection.
function M.os_error(err, url)
  if lasync.is_cancelled(err) or lasync.is_error(err, M.ClientError) or
      lasync.is_timeout(err) then
    return err
  end
  if lasync.is_error(err) then
    return M.ClientOSError(err.message, { url = url, os_error = err,
                                          code = err.code })
  end
  return err
end

function M.timeout(which, url, seconds)
  return M.ClientTimeoutError(("%s timeout (%s s) expired for %s")
    :format(which, tostring(seconds), url), { timeout = which, url = url })
end

return M
