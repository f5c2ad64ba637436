#!/usr/bin/env bash
# One run of the workers1 / workers2 workloads (bench/run.sh calls it, from
# bench/, on both CPUs: taskset -c 0,1, never pinned to one; the point is
# the second core): starts PEER's server with N = 1 or 2 processes (lasync:
# `lasync -w N` in its LASYNC_WORKERS=N form; node: cluster with N workers;
# go: GOMAXPROCS=N), checks GET / once, loads it with wrk (WORKERS_THREADS=2
# threads, WORKERS_C=50 connections: few, so that the load generator's own
# CPU stays small next to the ~200 us of work per request) for WARMUP s
# (rounded up) not counted, then HTTP_T s measured, and prints the RESULT
# line: wrk's rate and latency, the server's CPU (every process of its
# tree, in cores) and wrk's. The server runs in a session of its own and is
# stopped with SIGTERM to its process group (lasync's supervisor stops its
# workers itself), then SIGKILL to what is left of its tree.
# usage: bash workers/run.sh WORKLOAD PEER [N]
#   PEER: lasync ($LASYNC workers/lasync.lua; LASYNC: the binary, default
#   ../build/lasync), node (node workers/node.js), go (build/workers_go,
#   which bench/run.sh builds). N (run.sh's smoke-test override): measure
#   1 s after no warm-up. ITERS (default 16000) is the work per request.
set -u
w=$1 p=$2
n=${w#workers}
T=${HTTP_T:-5}
WARMUP=${WARMUP:-1}
[ -n "${3:-}" ] && T=1 WARMUP=0
C=${WORKERS_C:-50}
THREADS=${WORKERS_THREADS:-2}
WARM=$(awk -v w="$WARMUP" 'BEGIN{printf "%d", (w == int(w)) ? w : int(w) + 1}')
ITERS=${ITERS:-16000}
HZ=$(getconf CLK_TCK)
LASYNC=${LASYNC:-../build/lasync}

PORT=$((25000 + RANDOM % 5000))
while ss -Htan "sport = :$PORT" | grep -q .; do PORT=$((PORT + 1)); done

SERR=$(mktemp)
case $p in
lasync) LASYNC_WORKERS=$n setsid "$LASYNC" workers/lasync.lua "$PORT" "$ITERS" >/dev/null 2>"$SERR" & ;;
node) setsid node workers/node.js "$PORT" "$n" "$ITERS" >/dev/null 2>"$SERR" & ;;
go) GOMAXPROCS=$n setsid build/workers_go "$PORT" "$ITERS" >/dev/null 2>"$SERR" & ;;
*) echo "workers/run.sh: unknown peer $p" >&2; exit 2 ;;
esac
SPID=$!
stop() {
  local left
  left=$(tree "$SPID")
  kill -TERM -- "-$SPID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$SPID" $left 2>/dev/null
  wait "$SPID" 2>/dev/null
  rm -f "$SERR"
}
trap stop EXIT
fail() {
  echo "workers/run.sh: $* server_err=\"$(tail -c 300 "$SERR" | tr '\n"' ' \047')\"" >&2
  exit 1
}

for _ in $(seq 150); do # until it accepts connections (at most ~15 s)
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  kill -0 "$SPID" 2>/dev/null || fail "the server exited"
  sleep 0.1
done
body=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/")
[[ $body =~ ^[0-9]+$ ]] || fail "GET / answered \"$(head -c 80 <<<"$body")\""

# the server and its descendants (lasync's workers may be in sessions of
# their own: follow the parent links)
tree() {
  local c
  echo "$1"
  for c in $(pgrep -P "$1"); do tree "$c"; done
}
# the CPU ticks of the server's process tree
tree_ticks() {
  local pid sum=0 t
  for pid in $(tree "$SPID"); do
    t=$(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null) && sum=$((sum + t))
  done
  echo "$sum"
}
child_ticks() { awk '{print $16+$17}' /proc/$$/stat; }
to_us() {
  awk -v v="$1" 'BEGIN{f=1; if (v ~ /ms$/) f=1000; else if (v ~ /us$/) f=1; else if (v ~ /s$/) f=1000000;
    sub(/[a-z]+$/, "", v); printf "%d", v*f}'
}

[ "$WARM" -gt 0 ] && wrk -t"$THREADS" -c"$C" -d"${WARM}s" "http://127.0.0.1:$PORT/" >/dev/null 2>&1
c0=$(tree_ticks); k0=$(child_ticks); t0=$(date +%s.%N)
out=$(wrk -t"$THREADS" -c"$C" -d"${T}s" --latency "http://127.0.0.1:$PORT/" 2>&1)
rc=$?
t1=$(date +%s.%N); c1=$(tree_ticks); k1=$(child_ticks)
kill -0 "$SPID" 2>/dev/null || fail "the server exited during the run"
rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
[ $rc -eq 0 ] && [ -n "$rps" ] || fail "wrk rc=$rc out=\"$(tr '\n"' ' \047' <<<"$out" | tail -c 200)\""
awk -v w="$w" -v p="$p" -v r="$rps" -v nw="$n" -v c="$C" -v it="$ITERS" \
  -v n="$(awk '/ requests in /{print $1; exit}' <<<"$out")" \
  -v s="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')" \
  -v a="$(to_us "$(awk '$1=="50%"{print $2}' <<<"$out")")" \
  -v b="$(to_us "$(awk '$1=="99%"{print $2}' <<<"$out")")" \
  -v e="$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' <<<"$out")" \
  -v sc="$(awk -v c="$((c1 - c0))" -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN{printf "%.2f", c/hz/(b-a)}')" \
  -v cc="$(awk -v c="$((k1 - k0))" -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN{printf "%.2f", c/hz/(b-a)}')" \
  -v ct="$((c1 - c0))" -v hz="$HZ" \
  'BEGIN{printf "RESULT workload=%s peer=%s n=%s seconds=%s rate=%.0f p50_us=%s p99_us=%s errors=%s workers=%s conns=%s iters=%s server_cpu=%s client_cpu=%s server_us_per_req=%.1f\n",
    w, p, n, s, r, a, b, e, nw, c, it, sc, cc, (n > 0) ? ct / hz * 1e6 / n : -1}'
