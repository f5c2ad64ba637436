-- lasync.http.router: plain and pattern routes, {name} and
-- {name:lua-pattern} captures (one segment, or several when the pattern
-- says so, as aiohttp's {tail:.*}), order, 404/405 with allowed methods,
-- HEAD through GET, "*" routes, and patterns refused at add time.
local helper = require "helper"
local router = require "lasync.http.router"

local raises_msg = helper.raises_msg

local function h(name) return function() return name end end

describe("lasync.http.router", function()
  it("resolves plain paths by method", function()
    local r = router.new()
    r:add("GET", "/", h "index")
    r:add("POST", "/", h "post")
    local f, info = r:resolve("GET", "/")
    assert.are.equal("index", f())
    assert.are.same({}, info)
    assert.are.equal("post", (r:resolve("POST", "/"))())
    assert.are.same({ nil, 404 }, { r:resolve("GET", "/x") })
    assert.are.same({ nil, 404 }, { r:resolve("GET", "") })
  end)

  it("answers 405 with the allowed methods, HEAD falling back to GET",
    function()
      local r = router.new()
      r:add("GET", "/a", h "get")
      r:add("PUT", "/a", h "put")
      r:add("DELETE", "/u/{id}", h "del")
      assert.are.equal("get", (r:resolve("HEAD", "/a"))())
      assert.are.same({ nil, 405, { "GET", "HEAD", "PUT" } },
        { r:resolve("POST", "/a") })
      assert.are.same({ nil, 405, { "DELETE" } },
        { r:resolve("GET", "/u/1") })
      r:add("HEAD", "/a", h "head")
      assert.are.equal("head", (r:resolve("HEAD", "/a"))())
    end)

  it("captures one segment with {name}", function()
    local r = router.new()
    r:add("POST", "/demo1/{name}", h "demo")
    r:add("GET", "/u/{user}/posts/{id}", h "post")
    r:add("GET", "/files/{base}.txt", h "txt")
    local f, info = r:resolve("POST", "/demo1/bob")
    assert.are.equal("demo", f())
    assert.are.same({ name = "bob" }, info)
    assert.are.same({ nil, 404 }, { r:resolve("POST", "/demo1/") })
    assert.are.same({ nil, 404 }, { r:resolve("POST", "/demo1/a/b") })
    f, info = r:resolve("GET", "/u/al ice/posts/42")
    assert.are.same({ user = "al ice", id = "42" }, info)
    f, info = r:resolve("GET", "/files/a.b.txt")
    assert.are.same({ base = "a.b" }, info)
    assert.are.equal("txt", f())
  end)

  it("takes a Lua pattern, whole segment or spanning segments", function()
    local r = router.new()
    r:add("GET", "/n/{id:%d+}", h "num")
    r:add("GET", "/n/{slug}", h "slug")
    r:add("GET", "/static/{tail:.*}", h "tail")
    r:add("GET", "/v{major:%d}.{minor:%d+}/x", h "ver")
    local f, info = r:resolve("GET", "/n/123")
    assert.are.equal("num", f())
    assert.are.same({ id = "123" }, info)
    f, info = r:resolve("GET", "/n/12a")
    assert.are.equal("slug", f())
    assert.are.same({ slug = "12a" }, info)
    f, info = r:resolve("GET", "/static/css/site.css")
    assert.are.equal("tail", f())
    assert.are.same({ tail = "css/site.css" }, info)
    assert.are.same({ tail = "" }, select(2, r:resolve("GET", "/static/")))
    assert.are.same({ major = "2", minor = "10" },
      select(2, r:resolve("GET", "/v2.10/x")))
    assert.are.same({ nil, 404 }, { r:resolve("GET", "/v22.1/x") })
  end)

  it("tries plain paths first, then patterns in the order added",
    function()
      local r = router.new()
      r:add("GET", "/{any}", h "first")
      r:add("GET", "/{other:.+}", h "second")
      r:add("GET", "/about", h "plain")
      assert.are.equal("plain", (r:resolve("GET", "/about"))())
      assert.are.equal("first", (r:resolve("GET", "/x"))())
      assert.are.equal("second", (r:resolve("GET", "/x/y"))())
      local order = {}
      for _, route in ipairs(r:routes()) do
        order[#order + 1] = route.method .. " " .. route.pattern
      end
      assert.are.same({ "GET /about", "GET /{any}", "GET /{other:.+}" },
        order)
    end)

  it("routes any method with *", function()
    local r = router.new()
    r:add("*", "/any", h "any")
    r:add("GET", "/any", h "get")
    assert.are.equal("get", (r:resolve("GET", "/any"))())
    assert.are.equal("any", (r:resolve("PATCH", "/any"))())
    assert.are.equal("any", (r:resolve("BREW", "/any"))())
  end)

  it("refuses bad patterns at add time, naming the caller's function",
    function()
      local r = router.new()
      local bad = {
        { "a/b", "must start with /" },
        { "/{}", "needs a name" },
        { "/{1x}", "needs a name" },
        { "/{a}/{a}", "uses the name \"a\" twice" },
        { "/{a", "has a { without its }" },
        { "/a}", "has a } without a {" },
        { "/{a:[0-9}", "has a { without its }" },
        { "/{a:(%d+)}", "has a capture" },
        { "/{a:^x}", "has an anchor ^" },
        { "/{a:x$}", "has an anchor $" },
        { "/{a:%}", "has a { without its }" },
        { "/{a:%1}", "back-reference" },
        { "/{a:}", "an empty pattern" },
        { "/{a:%f}", "%f needs a set" },
        { "/x\r\n", "contains a NUL, CR or LF" },
      }
      -- as App:get would call it: errors blame get's caller
      local function get(pattern, handler)
        r:add("GET", pattern, handler, "lasync.http.App:get", 3)
      end
      for _, case in ipairs(bad) do
        local err = raises_msg(case[2], function()
          get(case[1], h "x")
        end)
        assert.matches("^[^:]*http_router_spec%.lua:%d+: " ..
          "lasync%.http%.App:get: ", err)
      end
      raises_msg("lasync.http.Router:add: method must be a token",
        r.add, r, "G T", "/", h "x")
      raises_msg("lasync.http.Router:add: handler must be a function " ..
        "(got nil)", r.add, r, "GET", "/")
      r:add("GET", "/dup", h "x")
      raises_msg("route GET /dup is already added", r.add, r, "GET", "/dup",
        h "y")
      r:add("GET", "/d/{x}", h "x")
      raises_msg("route GET /d/{x} is already added", r.add, r, "GET",
        "/d/{x}", h "y")
      raises_msg("lasync.http.Router:resolve: expected a Router (got nil)",
        r.resolve)
      raises_msg("lasync.http.Router:resolve: method and path must be " ..
        "strings (got string, nil)", r.resolve, r, "GET")
      assert.is_nil(router._lua_pattern_error("[%]]+%b()%f[%w]x-"))
      assert.are.equal("it ends with %", router._lua_pattern_error("a%"))
    end)
end)
