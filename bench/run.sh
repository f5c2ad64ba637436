#!/usr/bin/env bash
# lasync benchmark runner: runs each selected workload on each selected peer
# RUNS times, interleaved (run 1 of every peer, then run 2, ...), every program
# pinned to CPU 0 (taskset -c 0). RESULT / SKIP / FAIL lines go to stdout and to
# a log in bench/results/; at the end summarize.py prints the tables.
#
# usage: bench/run.sh [WORKLOAD_REGEX] [PEER_REGEX]
#   workloads: spawn pingpong sleepers timers qpingpong qthroughput lockcontention
#              (the regex matches any part of a name: '^pingpong' for pingpong alone)
#   peers:     lasync asyncio uvloop node luv bare   (bare: spawn, pingpong, qpingpong)
# env: RUNS=3                 runs per workload x peer
#      LASYNC=path            lasync binary (default: $BUILD/lasync, BUILD=build,
#                             relative to the repo root; LASYNC_BUILD also honoured)
#      PY=/usr/bin/python3    python for asyncio/uvloop (Debian's, has python3-uvloop)
#      LOG=file               log file (default results/<UTC time>.log; a relative
#                             LOG is taken from the directory run.sh is called from)
#      N=count                override every workload's size (smoke tests only:
#                             the targets assume the default sizes)
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
trap 'rm -f "$ERR"' EXIT

emit() { echo "$*"; echo "$*" >>"$LOG"; }
have() { command -v "$1" >/dev/null 2>&1; }
lua_has() { have "$1" && "$1" -e "require '$2'" >/dev/null 2>&1; }

WORKLOADS="spawn pingpong sleepers timers qpingpong qthroughput lockcontention"
PEERS="lasync asyncio uvloop node luv bare"

# peer_cmd WORKLOAD PEER: sets the array CMD to the command, or CMD=() and WHY to the reason
peer_cmd() {
  local w=$1 p=$2 f
  CMD=() WHY=""
  case $p in
  asyncio) f=$w/asyncio.py ;; uvloop) f=$w/uvloop.py ;; node) f=$w/node.js ;;
  luv) f=$w/luv54.lua ;; lasync) f=$w/lasync.lua ;; bare) f=$w/bare.lua ;;
  esac
  if [ ! -f "$f" ]; then WHY="no $f (not defined for this workload)"; return; fi
  case $p in
  asyncio) have "$PY" && CMD=("$PY" -P "$f") || WHY="$PY not found" ;;
  uvloop) "$PY" -c "import uvloop" >/dev/null 2>&1 && CMD=("$PY" -P "$f") || WHY="uvloop not importable by $PY (apt-get install python3-uvloop)" ;;
  node) have node && CMD=(node "$f") || WHY="node not found (apt-get install nodejs)" ;;
  luv) lua_has lua5.4 luv && CMD=(lua5.4 "$f") || WHY="lua5.4 with luv not found (apt-get install lua5.4 lua-luv)" ;;
  bare) have lua5.4 && CMD=(lua5.4 "$f") || WHY="lua5.4 not found" ;;
  lasync) [ -x "$LASYNC" ] && CMD=("$LASYNC" "$f") || WHY="no lasync binary at $LASYNC (build it, or set LASYNC=path)" ;;
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

versions() {
  local v=""
  v+=" python=$("$PY" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo -)"
  v+=" uvloop=$("$PY" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null || echo -)"
  v+=" node=$(node --version 2>/dev/null || echo -)"
  v+=" lua=$(lua5.4 -v 2>/dev/null | awk '{print $2}' || echo -)"
  v+=" luv=$(lua5.4 -e "io.write(require'luv'.version_string())" 2>/dev/null || echo -)"
  v+=" lasync=$([ -x "$LASYNC" ] && (git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo present) || echo missing)"
  echo "$v"
}

emit "# run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) host=$(hostname) nproc=$(nproc) cpu=\"$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)\" runs=$RUNS filter=$WF/$PF${N:+ n_override=$N}"
emit "# versions:$(versions)"
nfail=0
for w in $WORKLOADS; do
  grep -Eq -- "$WF" <<<"$w" || continue
  for p in $PEERS; do
    selected "$p" "$PF" || continue
    [ "$p" = bare ] && [ ! -f "$HERE/$w/bare.lua" ] && continue # a reference where it exists
    peer_cmd "$w" "$p"
    [ ${#CMD[@]} -gt 0 ] || emit "SKIP workload=$w peer=$p reason=\"$WHY\""
  done
  for r in $(seq "$RUNS"); do
    for p in $PEERS; do
      selected "$p" "$PF" || continue
      peer_cmd "$w" "$p"
      [ ${#CMD[@]} -gt 0 ] || continue
      [ -n "${N:-}" ] && CMD+=("$N")
      quiet_wait
      b0=$(busy_ticks); k0=$(child_ticks); t0=$(now)
      out=$(timeout "$TIMEOUT" taskset -c 0 "${CMD[@]}" 2>"$ERR")
      rc=$?
      b1=$(busy_ticks); k1=$(child_ticks); t1=$(now)
      line=$(grep -m1 '^RESULT ' <<<"$out")
      if [ $rc -ne 0 ] || [ -z "$line" ]; then
        why="rc=$rc"; [ $rc -eq 124 ] && why="rc=124(timeout ${TIMEOUT}s)"
        [ -z "$line" ] && why="$why no-RESULT"
        emit "FAIL workload=$w peer=$p run=$r $why cmd=\"${CMD[*]}\" err=\"$( (cat "$ERR"; echo "$out") | tail -c 400 | tr '\n"' ' \047')\""
        nfail=$((nfail + 1))
        continue
      fi
      foreign=$(awk -v b=$((b1 - b0)) -v k=$((k1 - k0)) -v t0="$t0" -v t1="$t1" -v hz="$HZ" \
        'BEGIN{f=(b-k)/hz/(t1-t0); if (f<0) f=0; printf "%.2f", f}')
      emit "$line run=$r foreign_cpu=$foreign"
    done
  done
done
echo
"$PY" summarize.py "$LOG"
echo
echo "# log: $LOG"
[ $nfail -eq 0 ] || { echo "# $nfail run(s) FAILED" >&2; exit 1; }
