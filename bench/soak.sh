#!/bin/sh
# Run bench/soak.lua with the open-file limit raised: 10,000 connections
# need about 10,100 fds in each of the soak's two processes.
# usage: bench/soak.sh [CONNS [CYCLES]] [--gc default|N] [--api ROUNDS]
# env: LASYNC=path of the lasync binary (default: build/lasync)
#      SOAK_FDS=the limit to ask for (default 30000; else the hard limit)
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
want=${SOAK_FDS:-30000}
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" 2>/dev/null ||
  echo "soak.sh: could not raise ulimit -n to $want (now $(ulimit -n))" >&2
exec "${LASYNC:-build/lasync}" bench/soak.lua "$@"
