#!/usr/bin/env bash
# Runs nginx-lua.conf (in this folder) on 127.0.0.1:PORT from a prefix of
# its own, NGINX_PREFIX (default bench/build/nginx, a user-writable
# folder: conf, pid, temp folders), and execs nginx, so that this process
# is the one nginx process (no master) that serves and is measured.
# usage: bash http/nginx.sh PORT
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${1:?usage: nginx.sh PORT}
PREFIX=${NGINX_PREFIX:-$HERE/../build/nginx}
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
sed -e "s|@PORT@|$PORT|g" -e "s|@PREFIX@|$PREFIX|g" "$HERE/nginx-lua.conf" >"$PREFIX/nginx.conf"
exec nginx -p "$PREFIX" -e stderr -c "$PREFIX/nginx.conf"
