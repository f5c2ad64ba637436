-- Issue 12: the request-smuggling table. Each malformed request is
-- answered with its status (400 unless the row says otherwise) and
-- Connection: close, and nothing after it on that connection is parsed:
-- each row is followed by a valid request that must never be seen.
local helper = require "helper"
local lasync = helper.lasync
local core = require "lasync.core"

local LOCAL = "127.0.0.1"
local NEXT = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

-- Serve one connection: requests, their bodies, then the first error;
-- returns the log ({req | status, ...}) and the raw reply.
local function try(data, opts)
  local log = {}
  local srv = lasync.start_server(function(r, w)
    local conn = core._http_conn(r, w, opts)
    while true do
      local req, status = conn:next_request()
      if req == nil then break end
      if req then
        local body, st = conn:read_body()
        if body then
          log[#log + 1] = req.raw_path
          conn:send(200, nil, body, true, false)
        else
          req, status = false, st
        end
      end
      if req == false then
        log[#log + 1] = status
        conn:send(status, nil, "", false, false)
        log.after = conn:next_request() -- nothing more from this peer
        break
      end
    end
    conn:close()
    w:close()
  end, LOCAL, 0)
  local _, port = srv:address()
  local r, w = lasync.open_connection(LOCAL, port)
  w:write(data .. NEXT)
  w:write_eof()
  local ok, reply = pcall(r.read, r)
  w:close()
  srv:close()
  srv:wait_closed()
  return log, ok and reply or nil
end

-- One row: the request and the status it must get.
local function row(name, data, status, opts)
  it(name, function()
    helper.run(function()
      local log, reply = try(data, opts)
      assert.same({status or 400}, log)
      assert.is_nil(log.after)
      if reply then
        assert.matches("^HTTP/1%.1 " .. (status or 400) .. " ", reply)
        assert.matches("\r\nConnection: close\r\n", reply)
        assert.is_nil(reply:find("HTTP/1.1 200", 1, true))
      end
    end)
  end)
end

local POST = "POST / HTTP/1.1\r\nHost: a\r\n"
local CHUNKED = POST .. "Transfer-Encoding: chunked\r\n\r\n"

describe("regress 0012: request smuggling", function()
  it("the valid requests used below pass (control)", function()
    helper.run(function()
      local log = try(CHUNKED .. "5;a=b\r\nhello\r\n0\r\n\r\n" ..
                      POST .. "Content-Length: 2\r\n\r\nhi")
      assert.same({"/", "/", "/smuggled"}, log)
    end)
  end)

  row("bare CR ending the request line (CVE-2023-30589)",
      "GET / HTTP/1.1\rHost: a\r\n\r\n")
  row("bare CR ending a header line (CVE-2023-30589)",
      "GET / HTTP/1.1\r\nHost: a\rX-Y: b\r\n\r\n")
  row("bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n")
  row("obs-fold continuation line (CVE-2024-27982)",
      "GET / HTTP/1.1\r\nHost: a\r\nX-Y: a\r\n b\r\n\r\n")
  row("obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX-Y: a\r\n\tb\r\n\r\n")
  row("obs-fold hiding Transfer-Encoding",
      POST .. "X-Y: a\r\n Transfer-Encoding: chunked\r\n" ..
      "Content-Length: 5\r\n\r\n0\r\n\r\n")
  row("a space before the colon",
      POST .. "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n")
  row("whitespace before the first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n")
  row("Transfer-Encoding with Content-Length",
      POST .. "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" ..
      "0\r\n\r\n")
  row("duplicate Content-Length, same value",
      POST .. "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc")
  row("duplicate Content-Length, different values",
      POST .. "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
  row("Content-Length as a list", POST .. "Content-Length: 3, 3\r\n\r\nabc")
  row("signed Content-Length (+1)", POST .. "Content-Length: +1\r\n\r\na")
  row("negative Content-Length", POST .. "Content-Length: -1\r\n\r\n")
  row("Content-Length with inner space", POST .. "Content-Length: 1 2\r\n\r\n")
  row("Transfer-Encoding whose last coding is not chunked",
      POST .. "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n")
  row("Transfer-Encoding: gzip alone",
      POST .. "Transfer-Encoding: gzip\r\n\r\nabc")
  row("Transfer-Encoding: identity",
      POST .. "Transfer-Encoding: identity\r\n\r\n")
  row("Transfer-Encoding: xchunked",
      POST .. "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n")
  row("Transfer-Encoding twice",
      POST .. "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked" ..
      "\r\n\r\n0\r\n\r\n")
  row("a coding we do not apply before chunked (501)",
      POST .. "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501)
  row("Transfer-Encoding in an HTTP/1.0 request",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
  row("bad chunk size (letters)", CHUNKED .. "zz\r\nhello\r\n0\r\n\r\n")
  row("bad chunk size (sign)", CHUNKED .. "-5\r\nhello\r\n0\r\n\r\n")
  row("bad chunk size (0x prefix)", CHUNKED .. "0x5\r\nhello\r\n0\r\n\r\n")
  row("bad chunk size (trailing space)", CHUNKED .. "5 \r\nhello\r\n0\r\n\r\n")
  row("chunk size overflow",
      CHUNKED .. "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n")
  row("XX in place of the CRLF after chunk data",
      CHUNKED .. "5\r\nhelloXX0\r\n\r\n")
  row("LF inside a chunk extension (CVE-2024-52304)",
      CHUNKED .. "5;a=b\nc\r\nhello\r\n0\r\n\r\n")
  row("bare LF ending a chunk extension",
      CHUNKED .. "5;a\nhello\r\n0\r\n\r\n")
  row("an oversized chunk (413)", CHUNKED .. "200000\r\nhello\r\n0\r\n\r\n",
      413)
  row("trailers", CHUNKED .. "5\r\nhello\r\n0\r\nX-T: y\r\n\r\n")
  row("NUL in a header value", "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n")
  row("NUL in a header name", "GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n")
  row("NUL in the target", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n")
  row("malformed version (HTTP/1.x)", "GET / HTTP/1.x\r\nHost: a\r\n\r\n")
  row("malformed version (lowercase)", "GET / http/1.1\r\nHost: a\r\n\r\n")
  row("malformed version (HTTP/11)", "GET / HTTP/11\r\nHost: a\r\n\r\n")
  row("no version (HTTP/0.9 form)", "GET /\r\nHost: a\r\n\r\n")
  row("HTTP/2.0 (505)", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505)
  row("HTTP/1.2 (505)", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505)
  row("HTTP/0.9 with a version (505)", "GET / HTTP/0.9\r\nHost: a\r\n\r\n",
      505)
  row("CONNECT (501)", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 501)
  row("a body larger than the limit (413)",
      POST .. "Content-Length: 11\r\n\r\nhello world", 413, {max_body = 10})
end)
