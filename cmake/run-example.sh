#!/bin/sh
# Run one example against a build tree (used by ctest: cmake/examples.cmake).
# usage: cmake/run-example.sh BUILD_DIR RUNNER SCRIPT [args]
# RUNNER "lasync" runs SCRIPT with BUILD_DIR/lasync; any other RUNNER is a
# stock Lua interpreter, given LUA_PATH and LUA_CPATH for the source and
# build trees (as scripts/busted.sh does). A non-zero exit prints
# "run-example: FAILED ...", for ctest's FAIL_REGULAR_EXPRESSION: a test
# with a PASS_REGULAR_EXPRESSION has its exit status ignored by ctest.
build=$(cd "$1" && pwd) || exit 1
runner=$2
script=$3
shift 3
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
# PORT puts the example servers in serve mode (until Ctrl-C): self-tests
# here, whatever the environment says
unset PORT
if [ "$runner" = lasync ]; then
  "$build/lasync" "$script" "$@"
else
  LUA_PATH="$top/lua/?.lua;$top/lua/?/init.lua;;"
  LUA_CPATH="$build/lib/?.so;;"
  export LUA_PATH LUA_CPATH
  if [ -f "$build/sanitize" ]; then
    LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
  fi
  "$runner" "$script" "$@"
fi
status=$?
if [ "$status" -ne 0 ]; then
  echo "run-example: FAILED: $script exited with status $status"
fi
exit "$status"
