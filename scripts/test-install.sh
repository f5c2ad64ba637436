#!/bin/sh
# Install the build into a staging prefix and check that lua5.4 finds the
# module there through the prefix's standard directories, and that the
# installed lasync command runs a script.
# usage: scripts/test-install.sh BUILD_DIR STAGE_DIR
set -e
build=$1
stage=$2
rm -rf "$stage"
cmake --install "$build" --prefix "$stage" >/dev/null
libdir=$(cd "$stage" && ls -d lib*/lua/5.4 2>/dev/null | head -n 1)
[ -n "$libdir" ] || { echo "no lib/lua/5.4 in $stage"; exit 1; }
if [ -f "$build/sanitize" ]; then
  LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
  ASAN_OPTIONS="detect_leaks=0"
  export LD_PRELOAD ASAN_OPTIONS
fi
LUA_PATH="$stage/share/lua/5.4/?.lua;$stage/share/lua/5.4/?/init.lua" \
LUA_CPATH="$stage/$libdir/?.so" \
  lua5.4 -e 'local l = require "lasync"
             io.write("installed lasync: ", l.run(function(x)
               l.sleep(0.001) return x end, 42), "\n")'
printf 'lasync.sleep(0.001) assert(select(1, ...) == "x")\n' > "$stage/t.lua"
"$stage/bin/lasync" "$stage/t.lua" x
test -f "$stage/include/lasync.h"
