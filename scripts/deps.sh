#!/bin/sh
# Install whatever is missing of lasync's build and test dependencies.
# Only Debian packages; runs as root on a fresh Debian 12 (uses sudo otherwise).
set -e
# netcat-openbsd and curl: the README tries the example servers with them;
# libssl-dev for TLS; openssl (the command) makes the certificates of the TLS
# specs and benchmarks; node-llhttp ships llhttp's C sources, which the
# HTTP layer compiles (bindings/http/); clang builds the libFuzzer targets
# (fuzz/, scripts/fuzz.sh); chromium: spec/http_browser_spec.lua loads
# examples/web/ in a headless browser (the spec is pending without it).
# JSON is lasync's own (bindings/codec/json*.c). zlib1g-dev: the HTTP server
# inflates gzip and deflate request bodies (bindings/http/inflate.c).
PKGS="lua5.4 liblua5.4-dev libuv1-dev libreadline-dev lua-busted tmux valgrind man-db cmake gcc g++ make pkg-config python3 netcat-openbsd curl libssl-dev openssl node-llhttp clang chromium zlib1g-dev"
# for bench/ and the HTTP specs: wrk and ab (apache2-utils) load HTTP
# servers; nginx with its Lua module (whose LuaJIT loads lua-cjson, also
# the peer of bench/json/) and python3-aiohttp are HTTP peers of
# lasync.http in bench/
PKGS="$PKGS nginx libnginx-mod-http-lua lua-cjson wrk apache2-utils python3-aiohttp"
# lasync.redis: hiredis's reply reader (bindings/codec/resp.c) and the
# redis-server its specs and example start on a Unix socket
PKGS="$PKGS libhiredis-dev redis-server"
# bench/redisops: redis-py's asyncio client (python3-redis) is a peer;
# redis-tools has redis-benchmark (the ceiling) and redis-cli
PKGS="$PKGS python3-redis redis-tools"
# lasync.pg is built on libpq (libpq-dev); spec/pg_server.lua starts a
# throwaway cluster with the server's initdb and pg_ctl (postgresql)
PKGS="$PKGS libpq-dev postgresql"
# bench/pgquery/: asyncpg (on asyncio, and on uvloop) and psycopg 3 are the
# Python peers of lasync.pg (node-postgres comes from npm at bench time,
# into bench/build/node/)
PKGS="$PKGS python3-asyncpg python3-psycopg python3-uvloop"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
