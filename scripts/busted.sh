#!/bin/sh
# Run one busted spec file against a build tree (used by ctest).
# usage: scripts/busted.sh BUILD_DIR SPEC_FILE [busted options]
# In a sanitizer build the instrumented module is loaded into the stock
# lua5.4, so the ASan runtime has to be preloaded.
set -e
build=$(cd "$1" && pwd)
spec=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)
LUA_PATH="$top/lua/?.lua;$top/lua/?/init.lua;$top/spec/?.lua;;"
LUA_CPATH="$build/lib/?.so;;"
LASYNC_BIN="$build/lasync"
export LUA_PATH LUA_CPATH LASYNC_BIN
if [ -f "$build/sanitize" ]; then
  LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  LASYNC_TEST_TIMEOUT_MULTIPLIER=${LASYNC_TEST_TIMEOUT_MULTIPLIER:-4}
  export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS LASYNC_TEST_TIMEOUT_MULTIPLIER
fi
cd "$top"
exec lua5.4 /usr/bin/busted --output=utfTerminal "$@" "$spec"
