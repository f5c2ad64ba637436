#!/usr/bin/env bash
# Runs nginx-lua.conf (in this folder) on 127.0.0.1:PORT from a prefix of
# its own, NGINX_PREFIX (default bench/build/nginx, a user-writable
# folder: conf, pid, temp folders), and execs nginx, so that this process
# is the one nginx process (no master) that serves and is measured.
# NGINX_CONF names another config (the client workloads' nginx-client.conf,
# whose https server takes NGINX_TLS_PORT, NGINX_CERT and NGINX_KEY).
# usage: bash http/nginx.sh PORT
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${1:?usage: nginx.sh PORT}
PREFIX=${NGINX_PREFIX:-$HERE/../build/nginx}
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
sed -e "s|@PORT@|$PORT|g" -e "s|@PREFIX@|$PREFIX|g" \
  -e "s|@TLS_PORT@|${NGINX_TLS_PORT:-}|g" -e "s|@CERT@|${NGINX_CERT:-}|g" \
  -e "s|@KEY@|${NGINX_KEY:-}|g" "${NGINX_CONF:-$HERE/nginx-lua.conf}" >"$PREFIX/nginx.conf"
exec nginx -p "$PREFIX" -e stderr -c "$PREFIX/nginx.conf"
