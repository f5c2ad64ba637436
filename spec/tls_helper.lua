-- Throwaway certificates for the TLS specs, made with the `openssl`
-- command in a temporary directory: a CA, a server certificate for
-- 127.0.0.1, localhost and ::1 (SAN), an expired one, one for another
-- name, a self-signed one and a client certificate. M.certs() makes them
-- once per spec file; M.cleanup() removes them.
local M = {}

local dir

local function sh(cmd)
  local ok = os.execute("cd '" .. dir .. "' && " .. cmd .. " >/dev/null 2>&1")
  assert(ok, "tls_helper: failed: " .. cmd)
end

local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  f:write(text)
  f:close()
end

-- A key and a certificate `name` signed by the CA, with extensions `ext`.
local function signed(name, cn, ext)
  write(name .. ".ext", ext)
  sh(("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 " ..
      "-nodes -keyout %s.key -out %s.csr -subj '/CN=%s'"):format(name, name,
      cn))
  sh(("openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key " ..
      "-CAcreateserial -days 30 -out %s.pem -extfile %s.ext")
      :format(name, name, name))
end

function M.certs()
  if dir then return M.paths end
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. dir))
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 " ..
     "-nodes -keyout ca.key -out ca.pem -days 30 -subj '/CN=lasync test CA'")
  local san = "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:::1\n"
  signed("server", "localhost", san)
  signed("wrongname", "wrong.example", "subjectAltName=DNS:wrong.example\n")
  signed("client", "lasync client", "extendedKeyUsage=clientAuth\n")
  -- expired: `openssl ca` is the command that takes explicit dates
  write("ca.cnf", table.concat({
    "[ca]", "default_ca = d", "[d]", "dir = .", "database = index.txt",
    "new_certs_dir = .", "serial = serial", "default_md = sha256",
    "policy = p", "copy_extensions = none", "x509_extensions = e",
    "[p]", "commonName = supplied", "[e]", san }, "\n") .. "\n")
  write("index.txt", "")
  write("serial", "1000\n")
  sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 " ..
     "-nodes -keyout expired.key -out expired.csr -subj '/CN=localhost'")
  sh("openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key " ..
     "-startdate 20200101000000Z -enddate 20200201000000Z " ..
     "-in expired.csr -out expired.pem")
  write("self.ext", san)
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 " ..
     "-nodes -keyout self.key -out self.pem -days 30 -subj '/CN=localhost' " ..
     "-addext 'subjectAltName=IP:127.0.0.1,DNS:localhost'")
  local p = { dir = dir }
  for _, n in ipairs { "ca", "server", "wrongname", "client", "expired",
                       "self" } do
    p[n] = { cert = dir .. "/" .. n .. ".pem", key = dir .. "/" .. n .. ".key" }
  end
  M.paths = p
  return p
end

function M.cleanup()
  if dir then os.execute("rm -rf '" .. dir .. "'") end
  dir, M.paths = nil, nil
end

-- A free loopback TCP port (bound then released) for external servers.
function M.free_port()
  local f = assert(io.popen("python3 -c 'import socket; s=socket.socket(); " ..
    "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'"))
  local port = tonumber(f:read("l"))
  f:close()
  return port
end

return M
