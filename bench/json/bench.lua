-- bench/json/bench.lua: encode and decode ns/op of lasync.json against
-- lua-cjson (when installed) on a typical API payload: a page of 20 user
-- records (int64 ids, names, floats, booleans, nulls, tags, a nested
-- object, 40 floats), 4.7 KB of JSON; then the same with short floats
-- only (ratio i/8 in place of i/7, which needs 17 digits). Run with the
-- lasync binary:
--   build/lasync bench/json/bench.lua [SECONDS_PER_CASE]
local json = require "lasync.json"
local ok_cjson, cjson = pcall(require, "cjson")

local seconds = tonumber(arg and arg[1]) or 1

local function payload(null, divisor)
  local users = {}
  for i = 1, 20 do
    users[i] = {
      id = 1234567890123 + i,
      name = "User " .. i,
      email = ("user%d@example.com"):format(i),
      score = i * 1.25,
      ratio = i / divisor,
      active = i % 2 == 0,
      manager = i % 3 == 0 and null or i - 1,
      tags = { "alpha", "beta", "tag" .. i },
      address = { street = i .. " Main St", city = "Springfield",
                  zip = "12345" },
    }
  end
  return { page = 1, per_page = 20, total = 4321, next = "/users?page=2",
           users = users }
end

-- Median ns/op of fn over 5 rounds of about `seconds`/5 each.
local function measure(fn)
  local n = 1
  local t0 = os.clock()
  while os.clock() - t0 < 0.05 do
    for _ = 1, n do fn() end
    n = n * 2
  end
  local per = (os.clock() - t0) / (2 * n - 1)
  local iters = math.max(1, math.floor(seconds / 5 / per))
  local samples = {}
  for r = 1, 5 do
    local start = os.clock()
    for _ = 1, iters do fn() end
    samples[r] = (os.clock() - start) / iters * 1e9
  end
  table.sort(samples)
  return samples[3]
end

local function row(name, enc, dec, value)
  local text = enc(value)
  local e = measure(function() enc(value) end)
  local d = measure(function() dec(text) end)
  print(("%-10s %6d bytes  encode %8.0f ns/op  decode %8.0f ns/op")
    :format(name, #text, e, d))
  return e, d
end

for _, case in ipairs { { "", 7 }, { " (short floats)", 8 } } do
  local label, divisor = case[1], case[2]
  print("payload" .. label)
  local je, jd = row("lasync", json.encode, json.decode,
    payload(json.null, divisor))
  if ok_cjson then
    local ce, cd = row("lua-cjson", cjson.encode, cjson.decode,
      payload(cjson.null, divisor))
    print(("lasync/cjson time ratio: encode %.2f, decode %.2f")
      :format(je / ce, jd / cd))
  else
    print("lua-cjson: not installed")
  end
end

-- the payload, for bench/json/yajl_bench.c: LASYNC_JSON_PAYLOAD=file
local out = os.getenv("LASYNC_JSON_PAYLOAD")
if out then
  local f = assert(io.open(out, "wb"))
  f:write(json.encode(payload(json.null, 7)))
  f:close()
end
