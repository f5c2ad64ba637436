-- examples/lib/certs.lua: the throwaway certificates of the TLS examples,
-- made at run time with the `openssl` command in a temporary directory: a
-- CA, and a key and certificate for localhost signed by it, with the names
-- a client may check (subjectAltName: DNS:localhost, IP:127.0.0.1).
-- certs.make(tag) -> {path = function(name), remove = function()}; the
-- files are ca.pem, server.pem and server.key.
local lasync = rawget(_G, "lasync") or require "lasync"
local fs, sp = lasync.fs, lasync.subprocess

local M = {}

local FILES = { "ca.key", "ca.pem", "ca.srl", "server.key", "server.csr",
                "server.ext", "server.pem" }
local EC = { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes" }

function M.make(tag)
  local dir = fs.mkdtemp(("%s/lasync-%sXXXXXX"):format(
    os.getenv("TMPDIR") or "/tmp", tag))
  local function path(name) return dir .. "/" .. name end

  local function openssl(args)
    local p = sp.exec("openssl", args, { cwd = dir, stdin = "null",
                                         stdout = "null", stderr = "pipe" })
    local _, err = p:communicate()
    assert(p:returncode() == 0, "openssl " .. args[1] .. " failed: " .. err)
  end

  local function req(...)
    local args = { "req", ... }
    table.move(EC, 1, #EC, #args + 1, args)
    openssl(args)
  end

  req("-x509", "-days", "1", "-subj", "/CN=lasync example CA",
      "-keyout", "ca.key", "-out", "ca.pem")
  req("-subj", "/CN=localhost", "-keyout", "server.key", "-out",
      "server.csr")
  fs.writefile(path("server.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
  openssl { "x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
            "-extfile", "server.ext", "-out", "server.pem" }

  local function remove()
    for _, name in ipairs(FILES) do fs.unlink(path(name)) end
    fs.rmdir(dir)
  end
  return { path = path, remove = remove }
end

return M
