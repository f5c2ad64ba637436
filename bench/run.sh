#!/usr/bin/env bash
# lasync benchmark runner: runs each selected workload on each selected peer
# RUNS times, interleaved (run 1 of every peer, then run 2, ...), every program
# pinned to CPU 0 (taskset -c 0). The echo workloads run each peer's echo
# server on CPU 0 and the C load generator (echo/loadgen.c) on CPU 1; so do the
# TLS workloads (tls/: TLS echo servers, the load generator with -T) and the
# HTTP workloads (http/: HTTP servers; wrk, or http/idle.c for httpidle). The
# HTTP client workloads turn it round: nginx (http/nginx-client.conf) on CPU 1,
# each peer's client (http/client_PEER.*) on CPU 0; so do the PostgreSQL
# workloads (pgquery/: a throwaway PostgreSQL cluster on CPU 1, each peer's
# client on CPU 0). RESULT /
# SKIP / FAIL lines go to stdout and to a log in bench/results/; at the end
# summarize.py prints the tables. The C programs (load generator, C libuv echo
# server, C libuv + OpenSSL TLS echo server) are built with gcc -O2, and the Go
# echo servers with `go build`
# (GOCACHE and GOPATH in bench/build/go/), into bench/build/ (gitignored) when
# needed; so are the C libuv HTTP server, the httpidle client and the Go HTTP
# server. The Go servers run with GOMAXPROCS=1 (as taskset -c 0 implies anyway).
#
# usage: bench/run.sh [WORKLOAD_REGEX] [PEER_REGEX]
#   workloads: spawn pingpong sleepers timers qpingpong qthroughput lockcontention
#              echo64 echo4096 echoidle tlsecho tlshandshake tlsidle httphello httpjson
#              httpidle httpclient httpsclient tothread fileread pgquery pgfetch
#              redisops
#              (the regex matches any part of a name: '^pingpong' for pingpong alone,
#              '^echo' for the three echo workloads, '^tls' for the three TLS ones,
#              '^http' for the five HTTP ones, '^https?client' for the two
#              client ones; '^pg' for pgquery and pgfetch; 'echo' also selects tlsecho)
#   peers:     lasync asyncio uvloop node nodefetch luv go nginx bare clibuv cat pysync
#              (bare: spawn, pingpong, qpingpong, sleepers; go, clibuv: the echo, TLS and
#              HTTP workloads; nginx: the HTTP workloads (nginx + its Lua module); for
#              the HTTP workloads asyncio and uvloop are aiohttp on those loops;
#              cat, pysync: fileread; go is a SKIP without golang-go; the
#              client workloads: lasync, aiohttp on asyncio and uvloop, node
#              (http.request + keep-alive Agent), nodefetch (node's fetch), go)
#              asyncpg asyncpguv psycopg nodepg: the peers of pgquery and
#              pgfetch, with lasync (asyncpg on asyncio and on uvloop,
#              psycopg 3 async, node-postgres: npm `pg`, installed into
#              build/node/ at the first run, a SKIP if npm cannot fetch it)
#              redisops has peers of its own: lasync lasyncpool redispy ioredis
#              redisbench (see run_redisops)
# env: RUNS=3                 runs per workload x peer
#      LASYNC=path            lasync binary (default: $BUILD/lasync, BUILD=build,
#                             relative to the repo root; LASYNC_BUILD also honoured)
#      PY=/usr/bin/python3    python for asyncio/uvloop (Debian's, has python3-uvloop)
#      LOG=file               log file (default results/<UTC time>.log; a relative
#                             LOG is taken from the directory run.sh is called from)
#      N=count                override every workload's size (smoke tests only:
#                             the targets assume the default sizes); not the echo
#                             workloads': ECHO_T=5 measured seconds, WARMUP=1 s,
#                             ECHO_C=100 connections, IDLE_C=1000 idle connections
#                             (the TLS workloads use them too); HS_C=100 connections
#                             handshaking at once (tlshandshake); TLS_GROUP=X25519
#                             the ECDHE group the load generator offers (or P-256);
#                             HTTP_T=5 measured seconds of httphello/httpjson and
#                             HTTP_C=100 wrk connections (wrk takes whole seconds:
#                             WARMUP is rounded up for it, 0 skips the warm-up);
#                             httpidle uses IDLE_C; httpclient and httpsclient:
#                             CLIENT_N=20000 measured requests (N overrides it) by
#                             CLIENT_C=100 concurrent tasks after CLIENT_WARM=1000
#                             requests not counted
#      PG_T=5                 measured seconds of pgquery and pgfetch, after
#                             PG_WARMUP=$WARMUP seconds not counted (N: N
#                             queries after N / 10 instead); PG_PIPELINE is
#                             passed on to the lasync peer (pgquery/lasync.lua)
#      FILEREAD_MB=1024       fileread's file size in MiB (N overrides it too); the
#                             file is made once in bench/build/ (gitignored) and kept
#      PROC_CPUS=0,1          taskset CPU list for processpool, workers1 and workers2
#                             (several processes: never pinned to one CPU; see the
#                             block "processpool, workers1, workers2" below)
#      THREAD_CPUS=0          taskset CPU list for tothread and fileread, whose pool
#                             threads share it with the loop (e.g. 0,1 to spread them)
#      REDIS_N=200000         redisops: timed operations (N overrides it), after
#                             REDIS_WARM=20000 not timed, by REDIS_C=50 tasks
#      TIMEOUT=120            seconds before a program run counts as FAIL
#      QUIET_WAIT=30          max seconds to wait for an idle machine before a run
# exit status: 0 if nothing FAILed, 1 otherwise (SKIPs are not failures).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WF=${1:-.}
PF=${2:-.}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-120}
QUIET_WAIT=${QUIET_WAIT:-30}
ECHO_T=${ECHO_T:-5}
ECHO_C=${ECHO_C:-100}
WARMUP=${WARMUP:-1}
IDLE_C=${IDLE_C:-1000}
HS_C=${HS_C:-100}
TLS_GROUP=${TLS_GROUP:-X25519}
HTTP_T=${HTTP_T:-5}
HTTP_C=${HTTP_C:-100}
THREAD_CPUS=${THREAD_CPUS:-0}
CLIENT_N=${N:-${CLIENT_N:-20000}}
CLIENT_C=${CLIENT_C:-100}
CLIENT_WARM=${CLIENT_WARM:-1000}
# echoidle: the server and the load generator each hold IDLE_C sockets
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE_C + 100)) ] || ulimit -n $((IDLE_C + 100)) 2>/dev/null
BUILD=${BUILD:-${LASYNC_BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
LASYNC=${LASYNC:-$BUILD/lasync}
case $LASYNC in /*) ;; */*) LASYNC=$ROOT/$LASYNC ;; esac
if [ -z "${PY:-}" ]; then
  if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
fi
case ${LOG:-} in '' | /*) ;; *) LOG=$PWD/$LOG ;; esac # a given LOG: relative to the caller's directory
cd "$HERE"
mkdir -p results
if [ -z "${LOG:-}" ]; then
  LOG=$HERE/results/$(date -u +%Y%m%dT%H%M%SZ).log
  ln -sfn "$(basename "$LOG")" results/latest.log
fi
: >>"$LOG" || { echo "run.sh: cannot write the log $LOG" >&2; exit 2; }
HZ=$(getconf CLK_TCK)
ERR=$(mktemp)
SERR=$(mktemp)
trap 'rm -f "$ERR" "$SERR"' EXIT

emit() { echo "$*"; echo "$*" >>"$LOG"; }
have() { command -v "$1" >/dev/null 2>&1; }
lua_has() { have "$1" && "$1" -e "require '$2'" >/dev/null 2>&1; }

WORKLOADS="spawn pingpong sleepers timers qpingpong qthroughput lockcontention echo64 echo4096 echoidle tlsecho tlshandshake tlsidle httphello httpjson httpidle httpclient httpsclient tothread fileread"
PEERS="lasync asyncio uvloop node nodefetch luv go nginx bare clibuv cat pysync"

# folder of a workload's programs
# The directory of a workload's programs. qpingpong is pingpong for every
# peer but lasync (which uses Queues there, Futures in pingpong), so the
# other peers run pingpong's programs and their RESULT lines are renamed.
wdir() {
  case $1/${2:-} in
  echo*) echo echo ;;
  tls*) echo tls ;;
  http*) echo http ;;
  qpingpong/lasync) echo qpingpong ;;
  qpingpong/*) echo pingpong ;;
  workers1/* | workers2/*) echo workers ;;
  *) echo "$1" ;;
  esac
}

# the C programs: the echo load generator (TLS-capable, so it links OpenSSL),
# the C libuv echo server and the C libuv + OpenSSL TLS echo server, into build/
C_OK=""
build_c() {
  local out=$HERE/build
  mkdir -p "$out"
  if ! have gcc || [ ! -f /usr/include/uv.h ] || [ ! -f /usr/include/openssl/ssl.h ]; then
    C_WHY="gcc, libuv1-dev or libssl-dev missing (apt-get install gcc libuv1-dev libssl-dev)"; C_OK=no; return
  fi
  C_OK=yes
  [ "$out/loadgen" -nt echo/loadgen.c ] ||
    gcc -O2 -Wall -o "$out/loadgen" echo/loadgen.c -lssl -lcrypto 2>>"$out/build.err" || { C_OK=no; C_WHY="loadgen build failed (bench/build/build.err)"; }
  [ "$out/echo_clibuv" -nt echo/clibuv.c ] ||
    gcc -O2 -Wall -o "$out/echo_clibuv" echo/clibuv.c -luv 2>>"$out/build.err" || CLIBUV_WHY="echo/clibuv.c build failed (bench/build/build.err)"
  [ "$out/tls_clibuv" -nt tls/clibuv.c ] ||
    gcc -O2 -Wall -o "$out/tls_clibuv" tls/clibuv.c -luv -lssl -lcrypto 2>>"$out/build.err" || TLS_CLIBUV_WHY="tls/clibuv.c build failed (bench/build/build.err)"
}

# the HTTP workloads' C programs: the C libuv HTTP server (the ceiling, not
# an HTTP parser) and the httpidle client, into build/
HTTP_C_WHY=""
build_http_c() {
  local out=$HERE/build
  mkdir -p "$out"
  if ! have gcc || [ ! -f /usr/include/uv.h ]; then
    HTTP_C_WHY="gcc or libuv1-dev missing (apt-get install gcc libuv1-dev)"; return
  fi
  [ "$out/http_clibuv" -nt http/clibuv.c ] ||
    gcc -O2 -Wall -o "$out/http_clibuv" http/clibuv.c -luv 2>>"$out/build.err" || HTTP_CLIBUV_WHY="http/clibuv.c build failed (bench/build/build.err)"
  [ "$out/http_idle" -nt http/idle.c ] ||
    gcc -O2 -Wall -o "$out/http_idle" http/idle.c 2>>"$out/build.err" || HTTP_IDLE_WHY="http/idle.c build failed (bench/build/build.err)"
}

# nginx + its Lua module + lua-cjson for its LuaJIT (the nginx peer of the
# HTTP workloads; http/nginx.sh runs it): sets NGINX_WHY when one is missing
nginx_why() {
  NGINX_WHY=""
  have nginx || { NGINX_WHY="nginx not found (apt-get install nginx)"; return; }
  [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] && [ -f /usr/lib/nginx/modules/ndk_http_module.so ] ||
    { NGINX_WHY="nginx's Lua module not found (apt-get install libnginx-mod-http-lua)"; return; }
  compgen -G "/usr/lib/*/lua/5.1/cjson.so" >/dev/null ||
    NGINX_WHY="cjson for LuaJIT not found (apt-get install lua-cjson)"
}

# the TLS workloads' certificates, made once with the openssl command into
# build/tls/ (and again when missing or within a day of expiring): a CA, and
# a server certificate it signs for IP 127.0.0.1 (the address the load
# generator verifies) and localhost. RSA-2048, the common web key: signing
# costs the server about 1 ms a handshake and verifying costs the client
# little, so tlshandshake measures the server (with P-256 ECDSA keys the
# client's verification costs more than the server's signature, and the
# load generator's core is the bottleneck).
TLS_DIR=$HERE/build/tls
tls_certs() { # sets TLS_WHY when they cannot be made
  TLS_WHY=""
  have openssl || { TLS_WHY="openssl command not found (apt-get install openssl)"; return; }
  openssl x509 -checkend 86400 -noout -in "$TLS_DIR/server.pem" >/dev/null 2>&1 && [ -f "$TLS_DIR/ca.pem" ] && return
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR" && set -e
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
      -days 30 -subj "/CN=lasync bench CA"
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
      -subj "/CN=localhost"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
      "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile server.ext -out server.pem
  ) >"$TLS_DIR/openssl.log" 2>&1 || TLS_WHY="certificates not made (bench/build/tls/openssl.log)"
}

# the Go echo server, into build/ (Go's build cache and GOPATH in build/go/, so
# that no writable $HOME is needed)
GO_WHY=""
build_go() {
  local out=$HERE/build
  mkdir -p "$out/go"
  if ! have go; then GO_WHY="go not found (apt-get install golang-go)"; return; fi
  [ "$out/echo_go" -nt echo/go.go ] ||
    GOCACHE=$out/go/cache GOPATH=$out/go/path go build -o "$out/echo_go" echo/go.go 2>>"$out/build.err" ||
    GO_WHY="echo/go.go build failed (bench/build/build.err)"
  [ "$out/tls_go" -nt tls/go.go ] ||
    GOCACHE=$out/go/cache GOPATH=$out/go/path go build -o "$out/tls_go" tls/go.go 2>>"$out/build.err" ||
    TLS_GO_WHY="tls/go.go build failed (bench/build/build.err)"
  [ "$out/http_go" -nt http/go.go ] ||
    GOCACHE=$out/go/cache GOPATH=$out/go/path go build -o "$out/http_go" http/go.go 2>>"$out/build.err" ||
    HTTP_GO_WHY="http/go.go build failed (bench/build/build.err)"
}

# lasync_probe FILE: CMD to run FILE with lasync, or WHY; the program says
# SKIP (and why) while the API it needs is missing from this build
lasync_probe() {
  local f=$1 probe
  [ -x "$LASYNC" ] || { WHY="no lasync binary at $LASYNC (build it, or set LASYNC=path)"; return; }
  probe=$("$LASYNC" "$f" probe 2>&1)
  [ "$probe" = OK ] && CMD=("$LASYNC" "$f") ||
    WHY=$(sed -n 's/^SKIP reason="\(.*\)"$/\1/p' <<<"$probe" | head -1)
  [ ${#CMD[@]} -gt 0 ] || [ -n "$WHY" ] || WHY="$f probe failed: $(tr '\n"' ' \047' <<<"$probe" | tail -c 200)"
}

# peer_cmd WORKLOAD PEER: sets the array CMD to the command, or CMD=() and WHY to the reason
peer_cmd() {
  local w=$1 p=$2 f d
  d=$(wdir "$w" "$p")
  CMD=() WHY="" SARGS=()
  case $w in workers1 | workers2) workers_cmd "$w" "$p"; return ;; esac
  case $w in httpclient | httpsclient) client_cmd "$w" "$p"; return ;; esac
  case $w in pgquery | pgfetch) pg_cmd "$w" "$p"; return ;; esac
  case $p in
  asyncio) f=$d/asyncio.py ;; uvloop) f=$d/uvloop.py ;; node) f=$d/node.js ;;
  luv) f=$d/luv54.lua ;; lasync) f=$d/lasync.lua ;; bare) f=$d/bare.lua ;; clibuv) f=$d/clibuv.c ;; go) f=$d/go.go ;;
  cat) f=$d/cat.sh ;; pysync) f=$d/pysync.py ;; nginx) f=$d/nginx.sh ;;
  esac
  [ -n "${f:-}" ] || { WHY="not a peer of $w"; return; } # (pg's, redis's)
  if [ ! -f "$f" ]; then WHY="no $f (not defined for this workload)"; return; fi
  case $d in echo | tls) [ "$C_OK" = yes ] || { WHY="no echo load generator: $C_WHY"; return; } ;; esac
  if [ "$d" = tls ]; then # the server's arguments after its port
    [ -z "$TLS_WHY" ] || { WHY=$TLS_WHY; return; }
    SARGS=("$TLS_DIR/server.pem" "$TLS_DIR/server.key")
    case $p in
    clibuv) [ -x build/tls_clibuv ] && [ -z "${TLS_CLIBUV_WHY:-}" ] && CMD=(build/tls_clibuv) || WHY="${TLS_CLIBUV_WHY:-no build/tls_clibuv}"; return ;;
    go) [ -z "$GO_WHY" ] && [ -z "${TLS_GO_WHY:-}" ] && [ -x build/tls_go ] && CMD=(env GOMAXPROCS=1 build/tls_go) || WHY="${GO_WHY:-${TLS_GO_WHY:-no build/tls_go}}"; return ;;
    lasync) lasync_probe "$f"; return ;; # SKIP (and why) until lasync.ssl exists
    esac
  fi
  if [ "$d" = http ]; then # the load: wrk, or build/http_idle for httpidle
    if [ "$w" = httpidle ]; then
      [ -z "$HTTP_C_WHY" ] && [ -z "${HTTP_IDLE_WHY:-}" ] && [ -x build/http_idle ] ||
        { WHY="${HTTP_C_WHY:-${HTTP_IDLE_WHY:-no build/http_idle}}"; return; }
    else
      have wrk || { WHY="wrk not found (apt-get install wrk)"; return; }
    fi
    case $p in
    clibuv) [ -z "$HTTP_C_WHY" ] && [ -z "${HTTP_CLIBUV_WHY:-}" ] && [ -x build/http_clibuv ] && CMD=(build/http_clibuv) ||
      WHY="${HTTP_C_WHY:-${HTTP_CLIBUV_WHY:-no build/http_clibuv}}"; return ;;
    go) [ -z "$GO_WHY" ] && [ -z "${HTTP_GO_WHY:-}" ] && [ -x build/http_go ] && CMD=(env GOMAXPROCS=1 build/http_go) ||
      WHY="${GO_WHY:-${HTTP_GO_WHY:-no build/http_go}}"; return ;;
    nginx) nginx_why; [ -z "$NGINX_WHY" ] && CMD=(bash "$f") || WHY=$NGINX_WHY; return ;;
    lasync) lasync_probe "$f"; return ;; # SKIP (and why) until lasync.http exists
    asyncio | uvloop) "$PY" -c "import aiohttp" >/dev/null 2>&1 ||
      { WHY="aiohttp not importable by $PY (apt-get install python3-aiohttp)"; return; } ;;
    esac
  fi
  case $p in
  asyncio) have "$PY" && CMD=("$PY" -P "$f") || WHY="$PY not found" ;;
  uvloop) "$PY" -c "import uvloop" >/dev/null 2>&1 && CMD=("$PY" -P "$f") || WHY="uvloop not importable by $PY (apt-get install python3-uvloop)" ;;
  node) have node && CMD=(node "$f") || WHY="node not found (apt-get install nodejs)" ;;
  luv) lua_has lua5.4 luv && CMD=(lua5.4 "$f") || WHY="lua5.4 with luv not found (apt-get install lua5.4 lua-luv)" ;;
  bare) have lua5.4 && CMD=(lua5.4 "$f") || WHY="lua5.4 not found" ;;
  lasync) [ -x "$LASYNC" ] && CMD=("$LASYNC" "$f") || WHY="no lasync binary at $LASYNC (build it, or set LASYNC=path)" ;;
  cat) have cat && CMD=(bash "$f") || WHY="cat not found" ;;
  pysync) have "$PY" && CMD=("$PY" -P "$f") || WHY="$PY not found" ;;
  clibuv) [ -x build/echo_clibuv ] && [ -z "${CLIBUV_WHY:-}" ] && CMD=(build/echo_clibuv) || WHY="${CLIBUV_WHY:-no build/echo_clibuv}" ;;
  go) [ -z "$GO_WHY" ] && [ -x build/echo_go ] && CMD=(env GOMAXPROCS=1 build/echo_go) || WHY="${GO_WHY:-no build/echo_go}" ;;
  esac
}

selected() { grep -Eq -- "^($2)\$" <<<"$1" || [ "$2" = . ]; }

busy_ticks() { awk '/^cpu /{print $2+$3+$4}' /proc/stat; }
child_ticks() { awk '{print $16+$17}' /proc/$$/stat; }
now() { date +%s.%N; }
quiet_wait() { # wait until the machine is mostly idle (< 10% of one core busy)
  local end=$((SECONDS + QUIET_WAIT)) b0 b1
  while :; do
    b0=$(busy_ticks); sleep 0.5; b1=$(busy_ticks)
    [ $((b1 - b0)) -le $((HZ / 20)) ] && return 0
    [ $SECONDS -ge $end ] && { echo "# machine still busy after ${QUIET_WAIT}s; running anyway" >&2; return 0; }
  done
}

# ---- echo workloads: server on CPU 0, load generator on CPU 1
# server ports stay below the ephemeral range (ip_local_port_range), so that
# client sockets of earlier runs never hold the port being bound
PORT=$((10000 + RANDOM % 15000))
next_port() {
  PORT=$((PORT + 1))
  [ $PORT -lt 25000 ] || PORT=10000
  while ss -Htan "sport = :$PORT" | grep -q .; do PORT=$((PORT + 1)); done
}
wait_port() { # until the server accepts connections (at most ~15 s)
  local i
  for i in $(seq 150); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    kill -0 "$SPID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
start_server() { # sets SPID and PORT; one retry on another port
  local try
  for try in 1 2; do
    next_port
    taskset -c 0 "${CMD[@]}" "$PORT" "${SARGS[@]}" >/dev/null 2>"$SERR" &
    SPID=$!
    wait_port && return 0
    stop_server
  done
  return 1
}
stop_server() { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }
tail_of() { tail -c "${2:-300}" "$1" | tr '\n"' ' \047'; }

# run_echo WORKLOAD PEER: sets LINE (the RESULT line) or WHY (why it FAILed)
run_echo() {
  local w=$1 p=$2 out rc alive
  LINE="" WHY=""
  if ! start_server; then
    WHY="server did not start cmd=\"${CMD[*]} PORT\" err=\"$(tail_of "$SERR")\""
    return
  fi
  local tls=(-T "$TLS_DIR/ca.pem" -g "$TLS_GROUP")
  case $w in
  echoidle) out=$(timeout 60 taskset -c 1 build/loadgen -i -p "$PORT" -c "$IDLE_C" -P "$SPID" -W "$w" -N "$p" 2>&1) ;;
  tlsidle) out=$(timeout 60 taskset -c 1 build/loadgen -i -p "$PORT" -c "$IDLE_C" -P "$SPID" -W "$w" -N "$p" "${tls[@]}" 2>&1) ;;
  tlsecho) out=$(timeout "$TIMEOUT" taskset -c 1 build/loadgen -p "$PORT" -c "$ECHO_C" -s 4096 \
    -t "$ECHO_T" -w "$WARMUP" -P "$SPID" -W "$w" -N "$p" "${tls[@]}" 2>&1) ;;
  tlshandshake) out=$(timeout "$TIMEOUT" taskset -c 1 build/loadgen -H -p "$PORT" -c "$HS_C" \
    -t "$ECHO_T" -w "$WARMUP" -P "$SPID" -W "$w" -N "$p" "${tls[@]}" 2>&1) ;;
  *) out=$(timeout "$TIMEOUT" taskset -c 1 build/loadgen -p "$PORT" -c "$ECHO_C" -s "${w#echo}" \
    -t "$ECHO_T" -w "$WARMUP" -P "$SPID" -W "$w" -N "$p" 2>&1) ;;
  esac
  rc=$?
  kill -0 "$SPID" 2>/dev/null && alive=1 || alive=0
  stop_server
  LINE=$(grep -m1 '^RESULT ' <<<"$out")
  if [ $rc -ne 0 ] || [ -z "$LINE" ] || [ $alive = 0 ]; then
    WHY="loadgen rc=$rc"; [ $rc -eq 124 ] && WHY="loadgen rc=124(timeout)"
    [ $alive = 0 ] && WHY="$WHY server-exited-early"
    WHY="$WHY cmd=\"${CMD[*]} $PORT\" loadgen=\"$(tr '\n"' ' \047' <<<"$out" | tail -c 200)\" server_err=\"$(tail_of "$SERR")\""
    LINE=""
  fi
}

# ---- HTTP workloads: server on CPU 0, wrk (or build/http_idle) on CPU 1
proc_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
proc_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null || echo -1; }
to_us() { # a wrk latency (812.00us, 1.23ms, 2.00s) in whole microseconds
  awk -v v="$1" 'BEGIN{f=1; if (v ~ /ms$/) f=1000; else if (v ~ /us$/) f=1; else if (v ~ /s$/) f=1000000;
    sub(/[a-z]+$/, "", v); printf "%d", v*f}'
}
# http_check PATH: the server's answer to GET PATH is right (the exact
# hello body; a JSON object with message "Hello, world" and an integer n);
# sets WHY otherwise
http_check() {
  local path=$1 body code
  body=$(mktemp)
  code=$(curl -s --max-time 5 -o "$body" -w '%{http_code}' "http://127.0.0.1:$PORT$path")
  if [ "$code" != 200 ]; then
    WHY="GET $path answered status ${code:-none}"
  elif [ "$path" = / ]; then
    printf 'Hello, world\n' | cmp -s - "$body" || WHY="GET / body is not 'Hello, world\\n': $(head -c 80 "$body" | tr '\n"' ' \047')"
  else
    "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["message"] == "Hello, world" and type(d["n"]) is int' \
      "$body" 2>/dev/null || WHY="GET $path body is not the JSON object: $(head -c 80 "$body" | tr '\n"' ' \047')"
  fi
  rm -f "$body"
}

# run_http WORKLOAD PEER: sets LINE (the RESULT line) or WHY (why it FAILed).
# httphello/httpjson: wrk -t1 -c HTTP_C keep-alive on GET / or GET /json,
# a warm-up of WARMUP s (rounded up: wrk takes whole seconds), then HTTP_T s
# measured with --latency; the RESULT line is made from wrk's report, the
# server's CPU time over that window (/proc/PID/stat), its VmHWM and VmRSS at
# the end and wrk's CPU time (the runner's child ticks); server_us_per_req =
# the server's CPU time over that window / the requests wrk counted, which a
# busy machine disturbs less than the rate. httpidle: build/http_idle.
run_http() {
  local w=$1 p=$2 out rc alive path=/ t0 t1 c0 c1 k0 k1 hwm rss rps
  LINE="" WHY=""
  if ! start_server; then
    WHY="server did not start cmd=\"${CMD[*]} PORT\" err=\"$(tail_of "$SERR")\""
    return
  fi
  [ "$w" = httpjson ] && path=/json
  if [ "$w" = httpidle ]; then
    out=$(timeout 60 taskset -c 1 build/http_idle -p "$PORT" -c "$IDLE_C" -P "$SPID" -W "$w" -N "$p" 2>&1)
    rc=$?
  else
    http_check "$path"
    if [ -n "$WHY" ]; then
      stop_server
      WHY="$WHY cmd=\"${CMD[*]} $PORT\" server_err=\"$(tail_of "$SERR")\""
      return
    fi
    local warm
    warm=$(awk -v w="$WARMUP" 'BEGIN{printf "%d", (w == int(w)) ? w : int(w) + 1}')
    [ "$warm" -gt 0 ] && taskset -c 1 wrk -t1 -c"$HTTP_C" -d"${warm}s" "http://127.0.0.1:$PORT$path" >/dev/null 2>&1
    c0=$(proc_ticks "$SPID"); k0=$(child_ticks); t0=$(now)
    out=$(timeout "$TIMEOUT" taskset -c 1 wrk -t1 -c"$HTTP_C" -d"${HTTP_T}s" --latency "http://127.0.0.1:$PORT$path" 2>&1)
    rc=$?
    t1=$(now); c1=$(proc_ticks "$SPID"); k1=$(child_ticks)
    hwm=$(proc_kb "$SPID" VmHWM); rss=$(proc_kb "$SPID" VmRSS)
  fi
  kill -0 "$SPID" 2>/dev/null && alive=1 || alive=0
  stop_server
  if [ "$w" = httpidle ]; then
    LINE=$(grep -m1 '^RESULT ' <<<"$out")
  else
    rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
    [ -n "$rps" ] && LINE=$(awk -v w="$w" -v p="$p" -v r="$rps" -v h="${hwm:--1}" -v m="${rss:--1}" \
      -v n="$(awk '/ requests in /{print $1; exit}' <<<"$out")" \
      -v s="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')" \
      -v a="$(to_us "$(awk '$1=="50%"{print $2}' <<<"$out")")" \
      -v b="$(to_us "$(awk '$1=="99%"{print $2}' <<<"$out")")" \
      -v e="$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' <<<"$out")" \
      -v sc="$(awk -v c="$((c1 - c0))" -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN{printf "%.2f", c/hz/(b-a)}')" \
      -v cc="$(awk -v c="$((k1 - k0))" -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN{printf "%.2f", c/hz/(b-a)}')" \
      -v c="$HTTP_C" -v u="$path" -v ct="$((c1 - c0))" -v hz="$HZ" \
      'BEGIN{printf "RESULT workload=%s peer=%s n=%s seconds=%s rate=%.0f rss_kb=%s rss_end_kb=%s p50_us=%s p99_us=%s errors=%s conns=%s path=%s server_cpu=%s client_cpu=%s server_us_per_req=%.2f",
        w, p, n, s, r, h, m, a, b, e, c, u, sc, cc, (n > 0) ? ct / hz * 1e6 / n : -1}')
  fi
  if [ $rc -ne 0 ] || [ -z "$LINE" ] || [ $alive = 0 ]; then
    WHY="client rc=$rc"; [ $rc -eq 124 ] && WHY="client rc=124(timeout)"
    [ $alive = 0 ] && WHY="$WHY server-exited-early"
    WHY="$WHY cmd=\"${CMD[*]} $PORT\" client=\"$(tr '\n"' ' \047' <<<"$out" | tail -c 200)\" server_err=\"$(tail_of "$SERR")\""
    LINE=""
  fi
}

# ---- HTTP client workloads: nginx on CPU 1, the client on CPU 0

# the Go client, into build/ (as build_go does the servers)
CLIENT_GO_WHY=""
build_client_go() {
  local out=$HERE/build
  mkdir -p "$out/go"
  have go || { CLIENT_GO_WHY="go not found (apt-get install golang-go)"; return; }
  [ "$out/client_go" -nt http/client_go.go ] ||
    GOCACHE=$out/go/cache GOPATH=$out/go/path go build -o "$out/client_go" http/client_go.go 2>>"$out/build.err" ||
    CLIENT_GO_WHY="http/client_go.go build failed (bench/build/build.err)"
}

# client_cmd WORKLOAD PEER: peer_cmd for httpclient and httpsclient (the
# peer's client program: its arguments come after it); nginx is checked too
client_cmd() {
  local w=$1 p=$2 f
  have nginx || { WHY="nginx not found (apt-get install nginx)"; return; }
  have curl || { WHY="curl not found (apt-get install curl)"; return; }
  [ -z "$TLS_WHY" ] || { WHY=$TLS_WHY; return; } # nginx-client.conf's https server
  case $p in
  asyncio | uvloop)
    f=http/client_$p.py
    "$PY" -c "import aiohttp" >/dev/null 2>&1 || { WHY="aiohttp not importable by $PY (apt-get install python3-aiohttp)"; return; }
    [ "$p" = asyncio ] || "$PY" -c "import uvloop" >/dev/null 2>&1 ||
      { WHY="uvloop not importable by $PY (apt-get install python3-uvloop)"; return; }
    CMD=("$PY" -P "$f") ;;
  node) have node && CMD=(node http/client_node.js) || WHY="node not found (apt-get install nodejs)" ;;
  nodefetch) # fetch verifies against NODE_EXTRA_CA_CERTS (no ca option)
    if ! have node; then WHY="node not found (apt-get install nodejs)"
    elif ! node -e 'process.exit(typeof fetch === "function" ? 0 : 1)' 2>/dev/null; then WHY="node $(node --version) has no fetch (node 18 or newer)"
    else CMD=(env NODE_EXTRA_CA_CERTS="$TLS_DIR/ca.pem" node http/client_nodefetch.js); fi ;;
  go) [ -z "$CLIENT_GO_WHY" ] && [ -x build/client_go ] && CMD=(env GOMAXPROCS=1 build/client_go) ||
    WHY="${CLIENT_GO_WHY:-no build/client_go}" ;;
  lasync) lasync_probe http/client_lasync.lua ;; # SKIP (and why) until lasync.http.Session exists
  *) WHY="not a peer of $w" ;;
  esac
}

# client_accepts: the connections nginx accepted so far (stub_status; this
# request's own included)
client_accepts() {
  curl -s --max-time 5 "http://127.0.0.1:$PORT/status" | awk 'NR == 3 {print $1}'
}

# run_client WORKLOAD PEER: sets LINE (the RESULT line) or WHY (why it FAILed).
# Starts nginx (http/nginx.sh with nginx-client.conf: PORT plain, TPORT
# https) on CPU 1, checks GET /static over the workload's scheme, then runs
# the client on CPU 0: URL CLIENT_N CLIENT_C CLIENT_WARM [CA]. The client's
# line (requests= seconds= cpu_s= maxrss_kb= errors= p50_us= p99_us=) becomes
# the RESULT with the rate, the client's CPU time per request, the
# connections nginx accepted during the client's run (warm-up included:
# keep-alive makes it CLIENT_C) and nginx's CPU time per request (over the
# client's whole run, warm-up requests counted). Any error is a FAIL.
run_client() {
  local w=$1 p=$2 url out rc alive a0 a1 c0 c1 try kv body
  local env=(NGINX_PREFIX="$HERE/build/nginx-client" NGINX_CONF="$HERE/http/nginx-client.conf"
    NGINX_CERT="$TLS_DIR/server.pem" NGINX_KEY="$TLS_DIR/server.key")
  LINE="" WHY=""
  for try in 1 2; do
    next_port; TPORT=$PORT; next_port
    env "${env[@]}" NGINX_TLS_PORT="$TPORT" taskset -c 1 bash http/nginx.sh "$PORT" >/dev/null 2>"$SERR" &
    SPID=$!
    wait_port && break
    stop_server; SPID=""
  done
  [ -n "$SPID" ] || { WHY="nginx did not start err="$(tail_of "$SERR")""; return; }
  url=http://127.0.0.1:$PORT/static
  [ "$w" = httpsclient ] && url=https://127.0.0.1:$TPORT/static
  body=$(curl -s --max-time 5 --cacert "$TLS_DIR/ca.pem" "$url")
  if [ "$body" != "Hello, world" ]; then # $( ) drops the final newline
    stop_server
    WHY="GET $url answered \"$(head -c 80 <<<"$body" | tr '\n"' ' \047')\" err=\"$(tail_of "$SERR")\""
    return
  fi
  local args=("$url" "$CLIENT_N" "$CLIENT_C" "$CLIENT_WARM")
  [ "$w" = httpsclient ] && args+=("$TLS_DIR/ca.pem")
  a0=$(client_accepts); c0=$(proc_ticks "$SPID")
  out=$(timeout "$TIMEOUT" taskset -c 0 "${CMD[@]}" "${args[@]}" 2>&1)
  rc=$?
  c1=$(proc_ticks "$SPID"); a1=$(client_accepts)
  kill -0 "$SPID" 2>/dev/null && alive=1 || alive=0
  stop_server
  kv=$(grep -m1 '^requests=' <<<"$out")
  if [ $rc -eq 0 ] && [ -n "$kv" ] && [ $alive = 1 ]; then
    LINE=$(awk -v w="$w" -v p="$p" -v kv="$kv" -v c="$CLIENT_C" -v warm="$CLIENT_WARM" \
      -v conns="$((a1 - a0 - 1))" -v st="$((c1 - c0))" -v hz="$HZ" 'BEGIN{
      n = split(kv, f, " "); for (i = 1; i <= n; i++) { split(f[i], x, "="); v[x[1]] = x[2] }
      printf "RESULT workload=%s peer=%s n=%d seconds=%s rate=%.0f rss_kb=%d client_cpu_s=%s client_us_per_req=%.1f p50_us=%d p99_us=%d errors=%d conc=%d warmup=%d conns=%d server_us_per_req=%.1f",
        w, p, v["requests"], v["seconds"], v["requests"] / v["seconds"], v["maxrss_kb"], v["cpu_s"],
        v["cpu_s"] * 1e6 / v["requests"], v["p50_us"], v["p99_us"], v["errors"], c, warm, conns,
        st / hz * 1e6 / (v["requests"] + warm)}')
    grep -q ' errors=0 ' <<<"$LINE" || { WHY="client errors (must be 0): ${LINE#RESULT workload=$w peer=$p }"; LINE=""; return; }
    return
  fi
  WHY="client rc=$rc"; [ $rc -eq 124 ] && WHY="client rc=124(timeout)"
  [ $alive = 0 ] && WHY="$WHY server-exited-early"
  WHY="$WHY cmd=\"${CMD[*]} ${args[*]}\" client=\"$(tr '\n"' ' \047' <<<"$out" | tail -c 300)\" server_err=\"$(tail_of "$SERR")\""
}

# ---- processpool, workers1, workers2: several processes on both CPUs
# (PROC_CPUS=0,1; pinning them to one would measure nothing). processpool:
# processpool/lasync.lua maps 64 CPU-bound jobs (~25 ms of Lua each) over
# lasync.ProcessPool(2) and runs them inline too; its RESULT has both rates
# and their ratio (N: the number of jobs). workers1 / workers2:
# workers/run.sh starts the peer's server with 1 or 2 processes (lasync -w
# N, node's cluster, Go with GOMAXPROCS=N), each request doing ~200 us of
# work, and loads it with wrk (2 threads, 50 connections) on the same CPUs
# (N: a 1 s smoke run). lasync's workers2 is a SKIP while this lasync has
# no -w (lasync.worker_count). The Go server is built into build/.
WORKLOADS="$WORKLOADS processpool workers1 workers2"
PROC_CPUS=${PROC_CPUS:-0,1}
WORKERS_GO_WHY=""
build_workers_go() {
  local out=$HERE/build
  mkdir -p "$out/go"
  have go || { WORKERS_GO_WHY="go not found (apt-get install golang-go)"; return; }
  [ "$out/workers_go" -nt workers/go.go ] ||
    GOCACHE=$out/go/cache GOPATH=$out/go/path go build -o "$out/workers_go" workers/go.go 2>>"$out/build.err" ||
    WORKERS_GO_WHY="workers/go.go build failed (bench/build/build.err)"
}

# workers_cmd WORKLOAD PEER: peer_cmd for workers1 and workers2
workers_cmd() {
  local w=$1 p=$2
  have wrk || { WHY="wrk not found (apt-get install wrk)"; return; }
  have curl || { WHY="curl not found (apt-get install curl)"; return; }
  case $p in
  lasync)
    if [ ! -x "$LASYNC" ]; then WHY="no lasync binary at $LASYNC (build it, or set LASYNC=path)"
    elif [ "$w" = workers2 ] && [ "$("$LASYNC" -e 'io.write(lasync.worker_count and "OK" or "")' 2>/dev/null)" != OK ]; then
      WHY="this lasync has no -w (lasync.worker_count): workers2 would run one process"
    else CMD=(env LASYNC="$LASYNC" bash workers/run.sh "$w" lasync); fi ;;
  node) have node && CMD=(bash workers/run.sh "$w" node) || WHY="node not found (apt-get install nodejs)" ;;
  go) [ -x build/workers_go ] && [ build/workers_go -nt workers/go.go ] || build_workers_go
    [ -z "$WORKERS_GO_WHY" ] && CMD=(bash workers/run.sh "$w" go) || WHY=$WORKERS_GO_WHY ;;
  *) WHY="not a peer of $w" ;;
  esac
}

# ---- fileread: a file of FILEREAD_MB MiB (random bytes) in build/, made once
# and kept; every run reads it from the page cache (warmed before each run)
fileread_file() { # sets FREAD (the file's path) or FREAD_WHY
  local mb=${N:-${FILEREAD_MB:-1024}}
  FREAD=$HERE/build/fileread-${mb}m.bin FREAD_WHY=""
  mkdir -p "$HERE/build"
  if [ "$(stat -c %s "$FREAD" 2>/dev/null)" != $((mb * 1048576)) ]; then
    echo "# making $FREAD ($mb MiB)"
    head -c $((mb * 1048576)) /dev/urandom >"$FREAD.tmp" && mv "$FREAD.tmp" "$FREAD" ||
      { rm -f "$FREAD.tmp"; FREAD_WHY="cannot write $FREAD"; }
  fi
}

# ---- pgquery, pgfetch: a PostgreSQL server on CPU 1, each peer's client on
# CPU 0. pgquery/server.sh makes a throwaway cluster in build/pg/ once per
# run.sh (Unix socket only, in that directory: every peer connects over
# it), started under taskset -c 1 (its backends inherit the CPU) and
# stopped when run.sh exits. Each client program runs PG_T seconds after
# PG_WARMUP seconds not counted (N: N queries after N / 10 instead), 100
# tasks on 10 connections, and prints its RESULT; run_pg adds the server's
# CPU time per query (the backends' CPU, reaped by the postmaster when the
# client disconnects, over the measured and warm-up queries alike).
# Node's `pg` (peer nodepg) is installed with npm into build/node/ when
# missing; without npm or the network that peer is a SKIP.
WORKLOADS="$WORKLOADS pgquery pgfetch"
PEERS="$PEERS asyncpg asyncpguv psycopg nodepg"
PG_T=${PG_T:-5}
PG_WARMUP=${PG_WARMUP:-$WARMUP}
PG_DIR=${PG_DIR:-$HERE/build/pg} # the cluster (emptied first, removed at the end)
PG_WHY="" PG_FAIL="" PG_NODE_WHY="" PG_TICKS=0
pg_selected() { grep -Eq -- "$WF" <<<pgquery || grep -Eq -- "$WF" <<<pgfetch; }
pg_is_peer() { case $1 in lasync | asyncpg | asyncpguv | psycopg | nodepg) return 0 ;; esac; return 1; }
pg_stop() { [ -d "$PG_DIR/data" ] && bash "$HERE/pgquery/server.sh" stop "$PG_DIR"; }
pg_setup() { # starts the server (or sets PG_WHY / PG_FAIL), installs pg
  local bin prev
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  { [ -n "$bin" ] && [ -x "$bin/initdb" ]; } || have initdb ||
    { PG_WHY="PostgreSQL's initdb not found (apt-get install postgresql)"; return; }
  if selected nodepg "$PF"; then
    if ! have node || ! have npm; then PG_NODE_WHY="node or npm not found (apt-get install nodejs npm)"
    elif [ ! -f build/node/node_modules/pg/package.json ]; then
      mkdir -p build/node
      echo "# npm install pg@8 into bench/build/node/"
      timeout 300 npm install --prefix build/node --no-audit --no-fund pg@8 >build/node/npm.log 2>&1 ||
        PG_NODE_WHY="npm could not install pg (bench/build/node/npm.log: $(tail -c 200 build/node/npm.log | tr '\n"' ' \047'))"
    fi
  fi
  prev=$(trap -p EXIT | sed "s/^trap -- //; s/ EXIT\$//")
  eval "prev=$prev"
  trap "pg_stop; $prev" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  bash pgquery/server.sh start "$PG_DIR" 1 2>"$SERR" || { PG_FAIL="server did not start: $(tail_of "$SERR")"; return; }
  emit "# pg: server=$("$bin/postgres" --version 2>/dev/null | awk '{print $3}') cpu=1 socket=$PG_DIR" \
    "asyncpg=$("$PY" -c 'import asyncpg; print(asyncpg.__version__)' 2>/dev/null || echo -)" \
    "psycopg=$("$PY" -c 'import psycopg; print(psycopg.__version__, psycopg.pq.__impl__, sep="/")' 2>/dev/null || echo -)" \
    "nodepg=$(node -p 'require("./build/node/node_modules/pg/package.json").version' 2>/dev/null || echo -)" \
    "libpq=$("$PY" -c 'import psycopg; print(psycopg.pq.version())' 2>/dev/null || echo -)"
}

# pg_cmd WORKLOAD PEER: peer_cmd for pgquery and pgfetch (the arguments
# come after the program: WORKLOAD SOCKET_DIR SECONDS WARMUP [N])
pg_cmd() {
  local w=$1 p=$2
  [ -z "$PG_WHY" ] || { WHY=$PG_WHY; return; }
  case $p in
  lasync) [ -x "$LASYNC" ] && CMD=("$LASYNC" pgquery/lasync.lua) || WHY="no lasync binary at $LASYNC (build it, or set LASYNC=path)" ;;
  asyncpg) "$PY" -c "import asyncpg" >/dev/null 2>&1 && CMD=("$PY" -P pgquery/asyncpg.py) ||
    WHY="asyncpg not importable by $PY (apt-get install python3-asyncpg)" ;;
  asyncpguv) "$PY" -c "import asyncpg, uvloop" >/dev/null 2>&1 && CMD=("$PY" -P pgquery/asyncpguv.py) ||
    WHY="asyncpg or uvloop not importable by $PY (apt-get install python3-asyncpg python3-uvloop)" ;;
  psycopg) "$PY" -c "import psycopg" >/dev/null 2>&1 && CMD=("$PY" -P pgquery/psycopg.py) ||
    WHY="psycopg not importable by $PY (apt-get install python3-psycopg)" ;;
  nodepg) [ -z "$PG_NODE_WHY" ] && CMD=(env NODE_PATH="$HERE/build/node/node_modules" node pgquery/node.js) ||
    WHY=$PG_NODE_WHY ;;
  *) WHY="not a peer of $w" ;;
  esac
}

# pg_children: the postmaster's child processes (its background workers,
# plus the backends of connected clients)
pg_children() {
  local pid
  pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  pgrep -c -P "$pid" 2>/dev/null || echo 0
}

# run_pg WORKLOAD PEER: sets LINE (the RESULT line, with the server's CPU
# time per query) or WHY (why it FAILed), and PG_TICKS (the server's CPU
# ticks during the run: the caller counts them as the workload's)
run_pg() {
  local w=$1 p=$2 out rc s0 s1 c0 i args
  LINE="" WHY="" PG_TICKS=0
  [ -z "$PG_FAIL" ] || { WHY=$PG_FAIL; return; }
  args=("$w" "$PG_DIR" "$PG_T" "$PG_WARMUP")
  [ -n "${N:-}" ] && args+=("$N")
  c0=$(pg_children); s0=$(bash pgquery/server.sh ticks "$PG_DIR")
  out=$(timeout "$TIMEOUT" taskset -c 0 "${CMD[@]}" "${args[@]}" 2>"$ERR")
  rc=$?
  for i in $(seq 50); do # until the postmaster reaped the client's backends
    [ "$(pg_children)" -le "$c0" ] && break
    sleep 0.05
  done
  s1=$(bash pgquery/server.sh ticks "$PG_DIR")
  PG_TICKS=$((s1 - s0))
  LINE=$(grep -m1 '^RESULT ' <<<"$out")
  if [ $rc -eq 0 ] && [ -n "$LINE" ]; then
    LINE+=$(awk -v l="$LINE" -v t="$PG_TICKS" -v hz="$HZ" 'BEGIN{
      n = split(l, f, " "); for (i = 1; i <= n; i++) { split(f[i], x, "="); v[x[1]] = x[2] }
      printf " server_us_per_q=%.1f", t / hz * 1e6 / (v["n"] + v["warmup"])}')
    return
  fi
  WHY="rc=$rc"; [ $rc -eq 124 ] && WHY="rc=124(timeout ${TIMEOUT}s)"
  [ -z "$LINE" ] && WHY="$WHY no-RESULT"
  WHY="$WHY cmd=\"${CMD[*]} ${args[*]}\" err=\"$( (cat "$ERR"; echo "$out") | tail -c 400 | tr '\n"' ' \047')\""
  LINE=""
}

# ---- redisops (issue 14): REDIS_C tasks (default 50) alternate SET k v /
# GET k over 1000 keys, 100-byte values: REDIS_WARM operations of warm-up,
# then REDIS_N (N overrides it; default 200000) timed. One redis-server on
# CPU 1, on a Unix socket in build/redisops/ (stopped by the EXIT trap),
# shared by the runs (FLUSHALL before each); the clients on CPU 0. Peers:
# lasync (one connection, automatic pipelining), lasyncpool (a pool of
# REDIS_C connections, each task holding one), redispy (redis-py asyncio,
# python3-redis, with its connection pool), ioredis (npm, installed into
# build/node/ when missing; a SKIP if npm cannot fetch it) and redisbench
# (redis-benchmark -c REDIS_C -P 1 -t set,get -d 100 -r 1000: the ceiling;
# its SET and GET rates combined into ops/s over both). server_us_per_op:
# redis-server's CPU time per operation over the client's whole run.
REDIS_PEERS="lasync lasyncpool redispy ioredis redisbench"
REDIS_N=${N:-${REDIS_N:-200000}}
REDIS_C=${REDIS_C:-50}
REDIS_WARM=${REDIS_WARM:-20000}
REDIS_DIR=$HERE/build/redisops
REDIS_SOCK=$REDIS_DIR/redis.sock
REDIS_PID=""
redis_stop() {
  [ -n "$REDIS_PID" ] || return 0
  kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=""
}
redis_start() { # sets REDIS_PID, or REDIS_WHY
  REDIS_WHY=""
  have redis-server || { REDIS_WHY="redis-server not found (apt-get install redis-server)"; return; }
  mkdir -p "$REDIS_DIR"; rm -f "$REDIS_SOCK"
  taskset -c 1 redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" &
  REDIS_PID=$!
  local prev
  prev=$(trap -p EXIT | sed "s/^trap -- //; s/ EXIT\$//")
  eval "prev=$prev"
  trap "redis_stop; $prev" EXIT # after pg_setup's, which it keeps
  for _ in $(seq 500); do [ -S "$REDIS_SOCK" ] && return; sleep 0.01; done
  redis_stop; REDIS_WHY="redis-server did not start ($(tail_of "$REDIS_DIR/redis.log"))"
}
IOREDIS_WHY=""
ioredis_install() { # into build/node/ (gitignored), once
  have node || { IOREDIS_WHY="node not found (apt-get install nodejs)"; return; }
  [ -d "$HERE/build/node/node_modules/ioredis" ] && return
  have npm || { IOREDIS_WHY="npm not found (apt-get install npm)"; return; }
  mkdir -p "$HERE/build/node"
  timeout 300 npm install --no-audit --no-fund --prefix "$HERE/build/node" ioredis \
    >"$HERE/build/node/npm.log" 2>&1 ||
    IOREDIS_WHY="npm could not install ioredis ($(tail_of "$HERE/build/node/npm.log" 200))"
}
redis_cmd() { # redis_cmd PEER: sets CMD (its arguments come after it) or WHY
  CMD=() WHY=""
  [ -z "$REDIS_WHY" ] || { WHY=$REDIS_WHY; return; }
  case $1 in
  lasync) [ -x "$LASYNC" ] && CMD=(env MODE=conn "$LASYNC" redisops/lasync.lua) || WHY="no lasync binary at $LASYNC" ;;
  lasyncpool) [ -x "$LASYNC" ] && CMD=(env MODE=pool "$LASYNC" redisops/lasync.lua) || WHY="no lasync binary at $LASYNC" ;;
  redispy) "$PY" -c "import redis.asyncio" >/dev/null 2>&1 && CMD=("$PY" -P redisops/redispy.py) ||
    WHY="redis.asyncio not importable by $PY (apt-get install python3-redis)" ;;
  ioredis) [ -z "$IOREDIS_WHY" ] && CMD=(env NODE_PATH="$HERE/build/node/node_modules" node redisops/ioredis.js) ||
    WHY=$IOREDIS_WHY ;;
  redisbench) have redis-benchmark && CMD=(redisbench) || WHY="redis-benchmark not found (apt-get install redis-tools)" ;;
  esac
}
# one run of redis-benchmark as a RESULT line (its CSV: "SET","rps",...)
redisbench_run() {
  local out
  out=$(timeout "$TIMEOUT" taskset -c 0 redis-benchmark -s "$REDIS_SOCK" -c "$REDIS_C" -P 1 -t set,get \
    -d 100 -r 1000 -n $((REDIS_N / 2)) --csv 2>&1) || { echo "ERROR $(tr '\n"' ' \047' <<<"$out" | tail -c 300)"; return; }
  awk -F'"' -v n="$REDIS_N" -v c="$REDIS_C" '$2 == "SET" {s = $4} $2 == "GET" {g = $4}
    END {if (s > 0 && g > 0) {t = n / 2 / s + n / 2 / g
      printf "RESULT workload=redisops peer=redisbench n=%d seconds=%.6f rate=%.0f set_rps=%.0f get_rps=%.0f conc=%d\n",
        n, t, n / t, s, g, c}}' <<<"$out"
}
run_redisops() {
  local w=redisops p r out rc line c0 c1 foreign warm
  redis_start
  selected ioredis "$PF" && ioredis_install
  echo "# redisops versions: redis=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')" \
    "redis-py=$("$PY" -c 'import redis; print(redis.__version__)' 2>/dev/null || echo -)" \
    "ioredis=$(node -p 'require("'"$HERE"'/build/node/node_modules/ioredis/package.json").version' 2>/dev/null || echo -)" |
    tee -a "$LOG"
  for p in $REDIS_PEERS; do
    selected "$p" "$PF" || continue
    redis_cmd "$p"
    [ ${#CMD[@]} -gt 0 ] || emit "SKIP workload=$w peer=$p reason=\"$WHY\""
  done
  for r in $(seq "$RUNS"); do
    for p in $REDIS_PEERS; do
      selected "$p" "$PF" || continue
      redis_cmd "$p"
      [ ${#CMD[@]} -gt 0 ] || continue
      redis-cli -s "$REDIS_SOCK" FLUSHALL >/dev/null
      quiet_wait
      b0=$(busy_ticks); k0=$(child_ticks); t0=$(now); c0=$(proc_ticks "$REDIS_PID")
      if [ "$p" = redisbench ]; then
        out=$(redisbench_run); rc=0
      else
        out=$(timeout "$TIMEOUT" taskset -c 0 "${CMD[@]}" "$REDIS_SOCK" "$REDIS_N" "$REDIS_C" "$REDIS_WARM" 2>"$ERR")
        rc=$?
      fi
      b1=$(busy_ticks); k1=$(child_ticks); t1=$(now); c1=$(proc_ticks "$REDIS_PID")
      line=$(grep -m1 '^RESULT ' <<<"$out")
      if [ $rc -ne 0 ] || [ -z "$line" ]; then
        emit "FAIL workload=$w peer=$p run=$r rc=$rc cmd=\"${CMD[*]}\" err=\"$( (cat "$ERR"; echo "$out") | tail -c 400 | tr '\n"' ' \047')\""
        nfail=$((nfail + 1))
        continue
      fi
      foreign=$(awk -v b=$((b1 - b0)) -v k=$((k1 - k0)) -v t0="$t0" -v t1="$t1" -v hz="$HZ" \
        'BEGIN{f=(b-k)/hz/(t1-t0); if (f<0) f=0; printf "%.2f", f}')
      warm=$REDIS_WARM; [ "$p" = redisbench ] && warm=0
      emit "$line server_us_per_op=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$REDIS_N" -v w="$warm" \
        'BEGIN{printf "%.2f", c / hz * 1e6 / (n + w)}') run=$r foreign_cpu=$foreign"
    done
  done
  redis_stop
}

versions() {
  local v=""
  v+=" python=$("$PY" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo -)"
  v+=" uvloop=$("$PY" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo -)"
  v+=" node=$(node --version 2>/dev/null || echo -)"
  v+=" lua=$(lua5.4 -v 2>/dev/null | awk '{print $2}' || echo -)"
  v+=" luv=$(lua5.4 -e "io.write(require'luv'.version_string())" 2>/dev/null || echo -)"
  v+=" aiofiles=$("$PY" -c 'import importlib.metadata as m; print(m.version("aiofiles"))' 2>/dev/null || echo -)"
  v+=" libuv=$(pkg-config --modversion libuv 2>/dev/null || echo -)"
  v+=" gcc=$(gcc -dumpfullversion 2>/dev/null || echo -)"
  v+=" openssl=$(openssl version 2>/dev/null | awk '{print $2}' || echo -)"
  v+=" go=$(have go && go version | awk '{print $3}' || echo -)"
  v+=" nginx=$(nginx -v 2>&1 | sed -n 's|.*nginx/||p' || echo -)"
  v+=" wrk=$(wrk -v 2>&1 | awk '/^wrk/{print $2; exit}' || echo -)"
  v+=" aiohttp=$("$PY" -c 'import aiohttp; print(aiohttp.__version__)' 2>/dev/null || echo -)"
  v+=" lasync=$([ -x "$LASYNC" ] && (git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo present) || echo missing)"
  echo "$v"
}

emit "# run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) host=$(hostname) nproc=$(nproc) cpu=\"$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)\" runs=$RUNS filter=$WF/$PF${N:+ n_override=$N}"
emit "# versions:$(versions)"
nfail=0
for w in $WORKLOADS; do # build the C programs (and the Go server) if an echo workload is selected
  case $w in echo* | tls*) grep -Eq -- "$WF" <<<"$w" && { build_c; selected go "$PF" && build_go; break; } ;; esac
done
TLS_WHY=""
for w in tlsecho tlshandshake tlsidle; do grep -Eq -- "$WF" <<<"$w" && { tls_certs; break; }; done
for w in httphello httpjson httpidle; do
  grep -Eq -- "$WF" <<<"$w" && { build_http_c; selected go "$PF" && build_go; break; }
done
for w in httpclient httpsclient; do # nginx-client.conf's https server needs the certificates
  grep -Eq -- "$WF" <<<"$w" && { tls_certs; selected go "$PF" && build_client_go; break; }
done
grep -Eq -- "$WF" <<<fileread && fileread_file
pg_selected && pg_setup
for w in $WORKLOADS; do
  grep -Eq -- "$WF" <<<"$w" || continue
  for p in $PEERS; do
    selected "$p" "$PF" || continue
    [ "$p" = bare ] && [ ! -f "$HERE/$(wdir "$w" "$p")/bare.lua" ] && continue  # a reference where it exists
    [ "$p" = clibuv ] && [ ! -f "$HERE/$(wdir "$w" "$p")/clibuv.c" ] && continue # (the same)
    [ "$p" = go ] && [ ! -f "$HERE/$(wdir "$w" "$p")/go.go" ] && continue         # (the same)
    case $p in cat | pysync) [ "$w" = fileread ] || continue ;; esac          # (fileread only)
    case $w in # pgquery and pgfetch: their peers alone, and theirs only there
    pgquery | pgfetch) pg_is_peer "$p" || continue ;;
    *) [ "$p" = lasync ] || ! pg_is_peer "$p" || continue ;;
    esac
    case $w/$p in # the client workloads' peers; nodefetch is one of theirs alone
    http*client/lasync | http*client/asyncio | http*client/uvloop | http*client/node | http*client/nodefetch | http*client/go) ;;
    http*client/* | */nodefetch) continue ;;
    esac
    case $p/$w in nginx/http*) ;; nginx/*) continue ;; esac                  # (HTTP only)
    case $w/$p in processpool/lasync | workers[12]/lasync | workers[12]/node | workers[12]/go) ;;
    processpool/* | workers[12]/*) continue ;;                                  # (their peers)
    esac
    case $w/$p in tothread/node | tothread/luv | fileread/node | fileread/luv | tls*/luv | http*/luv) continue ;; esac # (none)
    peer_cmd "$w" "$p"
    [ ${#CMD[@]} -gt 0 ] || emit "SKIP workload=$w peer=$p reason=\"$WHY\""
  done
  for r in $(seq "$RUNS"); do
    for p in $PEERS; do
      selected "$p" "$PF" || continue
      peer_cmd "$w" "$p"
      [ ${#CMD[@]} -gt 0 ] || continue
      case $w in
      echo* | tls* | http* | pgquery | pgfetch) ;;
      fileread)
        [ -z "$FREAD_WHY" ] || { emit "FAIL workload=$w peer=$p run=$r $FREAD_WHY"; nfail=$((nfail + 1)); continue; }
        CMD+=("$FREAD")
        cat "$FREAD" >/dev/null # into the page cache
        ;;
      *) [ -n "${N:-}" ] && CMD+=("$N") ;;
      esac
      quiet_wait
      b0=$(busy_ticks); k0=$(child_ticks); t0=$(now)
      case $w in
      echo* | tls* | http*)
        if [[ $w == http*client ]]; then run_client "$w" "$p"
        elif [[ $w == http* ]]; then run_http "$w" "$p"; else run_echo "$w" "$p"; fi
        line=$LINE
        b1=$(busy_ticks); k1=$(child_ticks); t1=$(now)
        if [ -z "$line" ]; then
          emit "FAIL workload=$w peer=$p run=$r $WHY"
          nfail=$((nfail + 1))
          continue
        fi
        ;;
      pgquery | pgfetch)
        run_pg "$w" "$p"
        line=$LINE
        b1=$(busy_ticks); k1=$(child_ticks); t1=$(now)
        k1=$((k1 + PG_TICKS)) # the server's CPU is the workload's, not foreign
        if [ -z "$line" ]; then
          emit "FAIL workload=$w peer=$p run=$r $WHY"
          nfail=$((nfail + 1))
          continue
        fi
        ;;
      *)
        cpus=0; case $w in tothread | fileread) cpus=$THREAD_CPUS ;; processpool | workers[12]) cpus=$PROC_CPUS ;; esac
        out=$(timeout "$TIMEOUT" taskset -c "$cpus" "${CMD[@]}" 2>"$ERR")
        rc=$?
        b1=$(busy_ticks); k1=$(child_ticks); t1=$(now)
        line=$(grep -m1 '^RESULT ' <<<"$out")
        line=${line/workload=pingpong /workload=$w }  # qpingpong's peers
        if [ $rc -ne 0 ] || [ -z "$line" ]; then
          why="rc=$rc"; [ $rc -eq 124 ] && why="rc=124(timeout ${TIMEOUT}s)"
          [ -z "$line" ] && why="$why no-RESULT"
          emit "FAIL workload=$w peer=$p run=$r $why cmd=\"${CMD[*]}\" err=\"$( (cat "$ERR"; echo "$out") | tail -c 400 | tr '\n"' ' \047')\""
          nfail=$((nfail + 1))
          continue
        fi
        ;;
      esac
      foreign=$(awk -v b=$((b1 - b0)) -v k=$((k1 - k0)) -v t0="$t0" -v t1="$t1" -v hz="$HZ" \
        'BEGIN{f=(b-k)/hz/(t1-t0); if (f<0) f=0; printf "%.2f", f}')
      case $w in tothread | fileread) line+=" cpus=$THREAD_CPUS" ;; processpool | workers[12]) line+=" cpus=$PROC_CPUS" ;; esac
      emit "$line run=$r foreign_cpu=$foreign"
    done
  done
done
grep -Eq -- "$WF" <<<redisops && run_redisops # (its own peers: run_redisops)
echo
"$PY" summarize.py "$LOG"
echo
echo "# log: $LOG"
[ $nfail -eq 0 ] || { echo "# $nfail run(s) FAILED" >&2; exit 1; }
