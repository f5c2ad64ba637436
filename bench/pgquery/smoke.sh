#!/usr/bin/env bash
# Smoke test of the pgquery and pgfetch workloads (ctest bench.pg.small, as
# bench.client.small runs the HTTP client program with small counts):
# bench/run.sh '^pg' with N queries (after N / 10 not counted) by lasync and
# by the Python peers that are installed, on a throwaway cluster in
# BUILD/bench-pg; node-postgres is left out (npm would fetch it from the
# network). Every run must print its RESULT (a wrong answer makes a program
# fail) and summarize.py its targets. Prints "pg smoke: all PASS", or
# "pg smoke: skipped" when PostgreSQL's initdb is missing.
# usage: smoke.sh LASYNC BUILD_DIR [N]
set -u
here=$(cd "$(dirname "$0")" && pwd)
lasync=${1:?usage: smoke.sh LASYNC BUILD_DIR [N]} build=${2:?usage: smoke.sh LASYNC BUILD_DIR [N]}
log=$build/bench-pg.log
mkdir -p "$build"
rm -f "$log"
out=$(RUNS=1 N=${3:-300} QUIET_WAIT=0 TIMEOUT=60 LASYNC=$lasync LOG=$log PG_DIR=$build/bench-pg \
  bash "$here/../run.sh" '^pg' 'lasync|asyncpg|asyncpguv|psycopg' 2>&1)
rc=$?
echo "$out"
if grep -q '^SKIP workload=pgquery peer=lasync reason="PostgreSQL' <<<"$out"; then
  echo "pg smoke: skipped"
  exit 0
fi
ok=yes
[ $rc -eq 0 ] || ok=no
for w in pgquery pgfetch; do
  grep -q "^RESULT workload=$w peer=lasync " <<<"$out" || ok=no
done
grep -q '^- PASS\|^- MISS' <<<"$out" || ok=no
[ $ok = yes ] && echo "pg smoke: all PASS" || echo "pg smoke: FAILED"
