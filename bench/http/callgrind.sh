#!/bin/sh
# Instructions per request of lasync.http's server (docs/internals.md "The
# per-request cost"): the httphello/httpjson app under callgrind, asked N1
# then N2 requests by a fixed keep-alive HTTP/1.1 client (50 connections,
# one request at a time each); (Ir(N2) - Ir(N1)) / (N2 - N1) takes the
# startup out. Instruction counts, not req/s: they hold on a shared machine.
# usage: bench/http/callgrind.sh [BUILD_DIR] [PATH] [N1] [N2]
#        (defaults: build / 2000 22000; PATH / or /json)
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
path=${2:-/}
n1=${3:-2000}
n2=${4:-22000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/server.lua" <<'LUA'
local http = require "lasync.http"
local n = 0
local app = http.App()
app:get("/", function() return "Hello, world\n" end)
app:get("/json", function()
  n = n + 1
  return http.json{message = "Hello, world", n = n}
end)
app:run{host = "127.0.0.1", port = tonumber(arg[1]), print = false}
LUA
run() { # run N: prints the server's instruction count for N requests
  port=$((20000 + $$ % 20000))
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" \
    "$build/lasync" "$tmp/server.lua" $port > "$tmp/vg.$1" 2>&1 &
  vg=$!
  i=0
  until curl -s -o /dev/null "http://127.0.0.1:$port$path"; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "server did not start" >&2; exit 1; }
    sleep 0.2
  done
  python3 "$here/fixed_client.py" $port "$1" 50 "$path"
  kill -INT $vg
  wait $vg
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/vg.$1"
}
a=$(run "$n1")
b=$(run "$n2")
echo "path=$path n1=$n1 ir1=$a n2=$n2 ir2=$b" \
  "per_request=$(( (b - a) / (n2 - n1) ))"
