#!/usr/bin/env bash
# The PostgreSQL server of the pgquery and pgfetch workloads: a throwaway
# cluster in DIR (initdb as the `postgres` user when run as root, which
# PostgreSQL refuses to run as, as spec/pg_server.lua does), listening only
# on a Unix socket in DIR (no TCP: every peer connects over the same
# socket), started under `taskset -c CPU` (its backends inherit it: the
# database on CPU 1, the client on CPU 0).
# usage: server.sh start DIR [CPU]   (a fresh cluster; DIR is emptied first)
#        server.sh stop DIR          (stops it, removes DIR)
#        server.sh ticks DIR         (CPU ticks of the server so far: the
#                                     postmaster's own and its exited
#                                     children's, i.e. the backends of the
#                                     clients that disconnected)
# Settings (-c on the command line, so the cluster stays stock otherwise):
#   listen_addresses=''   Unix socket only
#   max_connections=40    a peer opens 10 connections, one peer runs at a
#                         time; the default 100 only costs shared memory
#   autovacuum=off        no table is written: its worker would only wake on
#                         the server's CPU during a run
#   jit=off               never JIT-compile: the queries are cheap, but a
#                         planner estimate past jit_above_cost would cost a
#                         compile in the middle of a run
#   shared_buffers        the default (128 MB): the queries read no table
#   fsync, synchronous_commit: left on; SELECTs write nothing
set -u
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: server.sh start|stop|ticks DIR [CPU]" >&2; exit 2; }
case $dir in /*/*) ;; *) echo "server.sh: DIR must be an absolute path below / (got $dir)" >&2; exit 2 ;; esac
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] && [ -x "$bin/initdb" ] || bin=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
as=(env -u LD_PRELOAD)
[ "$(id -u)" = 0 ] && as+=(runuser -u postgres --)
case $cmd in
start)
  [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] || { echo "server.sh: PostgreSQL's initdb and pg_ctl not found (apt-get install postgresql)" >&2; exit 3; }
  cpu=${3:-1}
  [ -d "$dir/data" ] && "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -w -m immediate stop >/dev/null 2>&1
  rm -rf "$dir" && mkdir -p "$dir" || exit 1
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C \
    >"$dir/initdb.log" 2>&1 || { echo "server.sh: initdb failed: $(tail -c 300 "$dir/initdb.log")" >&2; exit 1; }
  taskset -c "$cpu" "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses='' -k $dir -c max_connections=40 -c autovacuum=off -c jit=off" \
    start >/dev/null 2>&1 || { echo "server.sh: pg_ctl start failed: $(tail -c 300 "$dir/server.log" 2>/dev/null)" >&2; exit 1; }
  ;;
stop)
  [ -d "$dir/data" ] && "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -w -m fast stop >/dev/null 2>&1
  rm -rf "$dir"
  ;;
ticks)
  pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) && [ -r "/proc/$pid/stat" ] || { echo 0; exit 0; }
  # fields after the command name (which may hold spaces): utime is the
  # 14th field of the line, stime 15th, cutime 16th, cstime 17th
  sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13 + $14 + $15}'
  ;;
*) echo "usage: server.sh start|stop|ticks DIR [CPU]" >&2; exit 2 ;;
esac
