#!/usr/bin/env bash
# fileread, the ceiling: `cat FILE > /dev/null` (GNU cat reads in blocks of
# 128 KiB or more), timed around the command with bash's EPOCHREALTIME (the
# wall clock, in µs; cat's start-up, ~1 ms, is counted); MiB/s. n = the file's
# size in MiB. cat's peak RSS is not measured (rss_kb=-1).
# Run: bash fileread/cat.sh FILE
set -eu
f=$1
size=$(stat -c %s "$f")
t0=$EPOCHREALTIME
cat "$f" >/dev/null
t1=$EPOCHREALTIME
awk -v t0="$t0" -v t1="$t1" -v s="$size" 'BEGIN {
  dt = t1 - t0; mib = s / 1048576
  printf "RESULT workload=fileread peer=cat n=%d seconds=%.6f rate=%.1f rss_kb=-1 chunk=cat\n", int(mib + 0.5), dt, mib / dt
}'
