#!/bin/sh
# bench/handoff/callgrind.sh [LASYNC [N1 N2]]: instructions per operation
# of each hand-off workload and side, counted by callgrind (repeatable on a
# noisy machine, unlike times). Each workload runs once with N1 and once
# with N2 operations; (Ir(N2) - Ir(N1)) / (N2 - N1) cancels start-up and
# module loading. Prints one line per workload and side, and the ratio.
set -e
here=$(cd "$(dirname "$0")" && pwd)
LASYNC=${1:-$here/../../build/lasync}
N1=${2:-20000}
N2=${3:-40000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ir() { # workload side n
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" \
    "$LASYNC" "$here/handoff.lua" once "$1" "$2" "$3" >/dev/null 2>"$tmp/err"
  sed -n 's/^summary: //p' "$tmp/out"
}
printf '%-10s %12s %12s %8s\n' workload 'bare Ir/op' 'lasync Ir/op' ratio
for w in spawn pingpong qpingpong; do
  b=$(( ($(ir $w bare $N2) - $(ir $w bare $N1)) / (N2 - N1) ))
  l=$(( ($(ir $w lasync $N2) - $(ir $w lasync $N1)) / (N2 - N1) ))
  printf '%-10s %12d %12d %8s\n' $w $b $l \
    "$(awk "BEGIN { printf \"%.2f\", $l / $b }")"
done
