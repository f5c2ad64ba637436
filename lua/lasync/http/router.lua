-- lasync.http.router: routes from (method, path pattern) to handlers.
-- Paths without placeholders are found by one table lookup; patterns
-- with {name} or {name:lua-pattern} are compiled into one anchored Lua
-- pattern each and tried in the order they were added. A path that
-- matches only under other methods gives 405 with the methods allowed.
local M = {}

local type, error, tostring, setmetatable, getmetatable, pcall = type,
  error, tostring, setmetatable, getmetatable, pcall
local find, sub, match, gsub, byte = string.find, string.sub,
  string.match, string.gsub, string.byte
local sort, concat = table.sort, table.concat

local Router = {}
Router.__index = Router
Router.__name = "lasync.http.Router"

-- RFC 9110 token: what a method may be
local METHOD = "^[!#$%%&'*+%-.^_`|~%w]+$"

-- Checks a Lua pattern item by item (Lua itself reports a malformed
-- pattern only when a match reaches the bad spot). Captures, anchors and
-- back-references are refused: the router adds its own. Returns nil or
-- what is wrong.
local function lua_pattern_error(p)
  local i, n = 1, #p
  if n == 0 then return "an empty pattern" end
  while i <= n do
    local c = sub(p, i, i)
    if c == "%" then
      local e = sub(p, i + 1, i + 1)
      if e == "" then return "it ends with %" end
      if find(e, "%d") then return "it has a back-reference %" .. e end
      if e == "b" then
        if i + 3 > n then return "%b needs two characters" end
        i = i + 4
      elseif e == "f" then
        if sub(p, i + 2, i + 2) ~= "[" then return "%f needs a set [...]" end
        i = i + 2
      else
        i = i + 2
      end
    elseif c == "[" then
      local j = i + 1
      if sub(p, j, j) == "^" then j = j + 1 end
      if sub(p, j, j) == "]" then j = j + 1 end -- a leading ] is literal
      while true do
        local d = sub(p, j, j)
        if d == "" then return "a set [ has no closing ]" end
        if d == "%" then
          if j == n then return "it ends with %" end
          j = j + 2
        elseif d == "]" then
          break
        else
          j = j + 1
        end
      end
      i = j + 1
    elseif c == "(" or c == ")" then
      return "it has a capture ( ); the route makes its own"
    elseif (c == "^" and i == 1) or (c == "$" and i == n) then
      return "it has an anchor " .. c .. "; the route is anchored already"
    else
      i = i + 1
    end
    -- a quantifier after an item is fine; one at the start is literal
  end
  return nil
end

-- The end of the {name:pattern} placeholder opened at `open` ("{"): the
-- index of its closing "}", skipping %x escapes and [...] sets.
local function placeholder_end(s, open)
  local i, n = open + 1, #s
  while i <= n do
    local c = sub(s, i, i)
    if c == "%" then
      i = i + 2
    elseif c == "[" then
      local j = i + 1
      if sub(s, j, j) == "^" then j = j + 1 end
      if sub(s, j, j) == "]" then j = j + 1 end
      while j <= n and sub(s, j, j) ~= "]" do
        j = j + (sub(s, j, j) == "%" and 2 or 1)
      end
      i = j + 1
    elseif c == "}" then
      return i
    elseif c == "{" then
      return nil
    else
      i = i + 1
    end
  end
  return nil
end

-- Compiles a path pattern. Returns nil for a plain path (no
-- placeholder), else the anchored Lua pattern and the capture names; or
-- raises through fail.
local function compile(pattern, fail)
  if not find(pattern, "[{}]") then return nil end
  local out, names, seen = { "^" }, {}, {}
  local pos = 1
  while true do
    local open = find(pattern, "{", pos, true)
    local literal = sub(pattern, pos, (open or 0) - 1)
    if open == nil then literal = sub(pattern, pos) end
    if find(literal, "}", 1, true) then
      fail("pattern %q has a } without a {", pattern)
    end
    out[#out + 1] = gsub(literal, "[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
    if not open then break end
    local close = placeholder_end(pattern, open)
    if not close then
      fail("pattern %q has a { without its }", pattern)
    end
    local body = sub(pattern, open + 1, close - 1)
    local name, colon, lpat = match(body, "^([^:]*)(:?)(.*)$")
    if not find(name, "^[%a_][%w_]*$") then
      fail("pattern %q: {%s} needs a name made of letters, digits and _",
        pattern, body)
    end
    if seen[name] then
      fail("pattern %q uses the name %q twice", pattern, name)
    end
    seen[name] = true
    if colon == "" then
      lpat = "[^/]+"
    else
      local why = lua_pattern_error(lpat)
      if why then
        fail("pattern %q: {%s}: the Lua pattern is not valid (%s)",
          pattern, body, why)
      end
      local ok, err = pcall(find, "", lpat)
      if not ok then
        fail("pattern %q: {%s}: %s", pattern, body, tostring(err))
      end
    end
    names[#names + 1] = name
    out[#out + 1] = "(" .. lpat .. ")"
    pos = close + 1
  end
  out[#out + 1] = "$"
  return concat(out), names
end

-- The routes a router holds:
--   exact[path] = {[METHOD] = handler, ...} for plain paths;
--   dynamic[i] = {lua_pattern =, names =, methods = {[METHOD] = handler}}
--   in order of first registration of each pattern.

--- Router.new() -> an empty router
function M.new()
  return setmetatable({ exact = {}, dynamic = {}, by_pattern = {} },
    Router)
end

--- r:add(method, pattern, handler [, fname [, level]]): routes method
-- ("GET"..., or "*" for any) at pattern to handler. Errors name fname
-- (default "lasync.http.Router:add") at `level`, counted as error()
-- counts from add (default 2, add's caller; App:get passes its own name
-- and 3, to blame its caller).
function Router:add(method, pattern, handler, fname, level)
  fname = fname or "lasync.http.Router:add"
  level = (level or 2) + 1
  local function fail(fmt, ...)
    error(fname .. ": " .. fmt:format(...), level)
  end
  if getmetatable(self) ~= Router then
    fail("expected a Router (got %s)", type(self))
  end
  if type(method) ~= "string" or not find(method, METHOD) then
    fail("method must be a token such as \"GET\" or \"*\" (got %s)",
      type(method) == "string" and ("%q"):format(method) or type(method))
  end
  if type(pattern) ~= "string" then
    fail("pattern must be a string (got %s)", type(pattern))
  end
  if byte(pattern, 1) ~= 47 then
    fail("pattern %q must start with /", pattern)
  end
  if find(pattern, "[%z\r\n]") then
    fail("pattern %q contains a NUL, CR or LF byte", pattern)
  end
  local ht = type(handler)
  if ht ~= "function" and not (ht == "table" or ht == "userdata") then
    fail("handler must be a function (got %s)", ht)
  end
  if ht ~= "function" then
    local mt = getmetatable(handler)
    if type(mt) ~= "table" or mt.__call == nil then
      fail("handler must be a function (got %s)", ht)
    end
  end
  local lpat, names = compile(pattern, fail)
  local methods
  if not lpat then
    methods = self.exact[pattern]
    if not methods then
      methods = {}
      self.exact[pattern] = methods
    end
  else
    local route = self.by_pattern[pattern]
    if not route then
      route = { pattern = pattern, lua_pattern = lpat, names = names,
        methods = {} }
      self.by_pattern[pattern] = route
      self.dynamic[#self.dynamic + 1] = route
    end
    methods = route.methods
  end
  if methods[method] then
    fail("route %s %s is already added", method, pattern)
  end
  methods[method] = handler
end

-- The handler for method in a route's methods table: exact method, then
-- GET for HEAD, then "*".
local function pick(methods, method)
  local h = methods[method]
  if h then return h end
  if method == "HEAD" then
    h = methods.GET
    if h then return h end
  end
  return methods["*"]
end

local function add_allowed(set, methods)
  for m in pairs(methods) do
    set[m] = true
    if m == "GET" then set.HEAD = true end
  end
end

local function allowed_list(set)
  local list = {}
  for m in pairs(set) do list[#list + 1] = m end
  sort(list)
  return list
end

-- The route of (method, path), the arguments trusted: handler and
-- match_info (nil for a plain path: no capture, no table made), or nil
-- and 404, or nil, 405 and the sorted methods allowed. The serve loop's
-- lookup, one per request, so the checks are add()'s, not ours.
local function lookup(self, method, path)
  local allowed
  local methods = self.exact[path]
  if methods then
    local h = methods[method] or pick(methods, method)
    if h then return h, nil end
    allowed = {}
    add_allowed(allowed, methods)
  end
  local dynamic = self.dynamic
  for i = 1, #dynamic do
    local route = dynamic[i]
    local names = route.names
    -- up to 4 captures without a table, so a miss allocates nothing
    local c1, c2, c3, c4 = match(path, route.lua_pattern)
    if c1 ~= nil then
      local h = pick(route.methods, method)
      if h then
        local info = { [names[1]] = c1 }
        if #names > 1 then
          if #names > 4 then
            local caps = { match(path, route.lua_pattern) }
            for j = 2, #names do info[names[j]] = caps[j] end
          else
            info[names[2]] = c2
            if names[3] then info[names[3]] = c3 end
            if names[4] then info[names[4]] = c4 end
          end
        end
        return h, info
      end
      allowed = allowed or {}
      add_allowed(allowed, route.methods)
    end
  end
  if allowed then return nil, 405, allowed_list(allowed) end
  return nil, 404
end
M.lookup = lookup

--- r:resolve(method, path) -> handler, match_info | nil, 404 | nil, 405,
-- allowed (a sorted array of methods; "*" routes never give 405)
function Router:resolve(method, path)
  if getmetatable(self) ~= Router then
    error(("lasync.http.Router:resolve: expected a Router (got %s)")
      :format(type(self)), 2)
  end
  if type(method) ~= "string" or type(path) ~= "string" then
    error(("lasync.http.Router:resolve: method and path must be " ..
      "strings (got %s, %s)"):format(type(method), type(path)), 2)
  end
  local h, info, allowed = lookup(self, method, path)
  if h and info == nil then info = {} end
  return h, info, allowed
end

--- r:routes() -> an array of {method =, pattern =} in the order they are
-- tried (plain paths first, in no particular order among themselves)
function Router:routes()
  if getmetatable(self) ~= Router then
    error(("lasync.http.Router:routes: expected a Router (got %s)")
      :format(type(self)), 2)
  end
  local out = {}
  local exact = {}
  for p in pairs(self.exact) do exact[#exact + 1] = p end
  sort(exact)
  for _, p in ipairs(exact) do
    local ms = {}
    for m in pairs(self.exact[p]) do ms[#ms + 1] = m end
    sort(ms)
    for _, m in ipairs(ms) do out[#out + 1] = { method = m, pattern = p } end
  end
  for _, route in ipairs(self.dynamic) do
    local ms = {}
    for m in pairs(route.methods) do ms[#ms + 1] = m end
    sort(ms)
    for _, m in ipairs(ms) do
      out[#out + 1] = { method = m, pattern = route.pattern }
    end
  end
  return out
end

M._lua_pattern_error = lua_pattern_error

return M
