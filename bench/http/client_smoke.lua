-- Smoke test of the httpclient / httpsclient lasync client (ctest
-- bench.client.small, as soak.small runs bench/soak.lua with small counts):
-- lasync.http's own App serves /static ("Hello, world\n") over http and
-- over https (a throwaway CA and server certificate made with the openssl
-- command), and client_lasync.lua runs against each as run.sh runs it, with
-- N requests by C tasks after W warm-up requests; its line must count N
-- requests and no error. Prints "client smoke: all PASS" at the end.
-- usage: lasync client_smoke.lua LASYNC [N [C [W]]]
local lasync = rawget(_G, "lasync") or require "lasync"
local http = lasync.http
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

local LASYNC = assert(arg[1], "usage: client_smoke.lua LASYNC [N [C [W]]]")
local N, C, W = arg[2] or "500", arg[3] or "20", arg[4] or "50"

-- a CA and a server certificate for 127.0.0.1 it signs, in a temp dir
local function certs()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. dir))
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  local cmds = {
    "openssl req -x509 " .. ec .. " -keyout ca.key -out ca.pem -days 1" ..
      " -subj '/CN=lasync smoke CA'",
    "openssl req -new " .. ec .. " -keyout server.key -out server.csr" ..
      " -subj '/CN=localhost'",
    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key" ..
      " -CAcreateserial -days 1 -out server.pem -extfile server.ext",
  }
  local f = assert(io.open(dir .. "/server.ext", "w"))
  f:write("subjectAltName=IP:127.0.0.1\n")
  f:close()
  for _, c in ipairs(cmds) do
    assert(os.execute("cd '" .. dir .. "' && " .. c .. " >/dev/null 2>&1"),
      "client_smoke: failed: " .. c)
  end
  return dir
end

local function serve(opts)
  local app = http.App()
  app:get("/static", function() return "Hello, world\n" end)
  opts.host, opts.port = "127.0.0.1", 0
  local server = app:start(opts)
  local _, port = server:address()
  return server, port
end

local dir = certs()
local plain, pport = serve{}
local tls, tport = serve{ssl = lasync.ssl.context{purpose = "server",
  certfile = dir .. "/server.pem", keyfile = dir .. "/server.key"}}
local failed = 0
for _, case in ipairs{
  {"httpclient", ("http://127.0.0.1:%d/static"):format(pport)},
  {"httpsclient", ("https://127.0.0.1:%d/static"):format(tport),
   dir .. "/ca.pem"},
} do
  local args = {here .. "/client_lasync.lua", case[2], N, C, W, case[3]}
  local proc = lasync.subprocess.exec(LASYNC, args,
    {stdout = "pipe", stderr = "stdout"})
  local out = proc:communicate()
  local rc = proc:wait()
  local ok = rc == 0 and out:match("^requests=" .. N .. " .* errors=0 ")
  print(("%s %s: %s"):format(ok and "PASS" or "FAIL", case[1],
    (out:gsub("\n$", ""))))
  if not ok then failed = failed + 1 end
end
plain:close()
tls:close()
os.execute("rm -rf '" .. dir .. "'")
print(failed == 0 and "client smoke: all PASS" or "client smoke: FAILED")
