-- Two credential leaks on a redirect to another origin, found when
-- Session:request was split into its steps: the request's own cookies
-- (cookies = {...} with cookie_jar = false) went on to the other origin,
-- and a request with its own auth dropped the Authorization header from
-- the session's default headers (the list was changed in place).
local helper = require "helper"
local lasync = helper.lasync
local http = lasync.http

-- Two apps on two ports (two origins): "/to-b" on a redirects to b's
-- "/echo", which answers the Cookie and Authorization it was sent.
local function with_origins(body)
  helper.run(function()
    local b = http.App()
    b:get("/echo", function(req)
      return http.json { cookie = req.headers.cookie or false,
                         auth = req.headers.authorization or false }
    end)
    local sb = b:start { host = "127.0.0.1", port = 0 }
    local _, pb = sb:address()
    local a = http.App()
    a:get("/to-b", function()
      return http.redirect(("http://127.0.0.1:%d/echo"):format(pb), 302)
    end)
    a:get("/echo", function(req)
      return http.json { cookie = req.headers.cookie or false,
                         auth = req.headers.authorization or false }
    end)
    local sa = a:start { host = "127.0.0.1", port = 0 }
    local _, pa = sa:address()
    local ok, err = pcall(body, ("http://127.0.0.1:%d"):format(pa))
    sa:close() sb:close()
    sa:wait_closed() sb:wait_closed()
    if not ok then error(err, 0) end
  end, 10)
end

describe("regress 0013: credentials on a redirect to another origin", function()
  it("a request's own cookies stay with their origin (no jar)", function()
    with_origins(function(base)
      local s <close> = http.Session { cookie_jar = false }
      local res = s:get(base .. "/to-b", { cookies = { sid = "secret" } })
      assert.equals(200, res.status)
      assert.is_false(res:json().cookie)
      assert.equals(1, #res.history)
      -- and the same origin still gets them
      assert.equals("sid=secret",
        s:get(base .. "/echo", { cookies = { sid = "secret" } }):json().cookie)
    end)
  end)

  it("a request's own auth leaves the session's headers alone", function()
    with_origins(function(base)
      local s <close> = http.Session {
        headers = { Authorization = "Bearer session-token" } }
      local res = s:get(base .. "/to-b", { auth = { "u", "p" } })
      assert.is_false(res:json().auth) -- dropped on the other origin
      -- the session's default header is still sent afterwards
      assert.equals("Bearer session-token",
        s:get(base .. "/echo"):json().auth)
    end)
  end)
end)
