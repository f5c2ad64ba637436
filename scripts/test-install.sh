#!/bin/sh
# Install the build into a staging prefix and check what it offers: lua5.4
# finds the module there through the prefix's standard directories; the
# installed lasync command runs a script; the header, liblasync.so (with
# its SONAME), liblasync.a, lasync.pc and the man page are in place; and a
# C program built out of the tree with `pkg-config --cflags --libs lasync`
# (PKG_CONFIG_PATH at the staging prefix) runs, linked with liblasync.so,
# and linked with liblasync.a; and so does a C++ program (if c++ exists).
# Ends with "test-install: OK", or "test-install: FAILED" at the first
# failure.
# usage: scripts/test-install.sh BUILD_DIR STAGE_DIR
set -e
trap '[ $? -eq 0 ] || echo "test-install: FAILED"' EXIT
fail() {
  echo "test-install: $*"
  exit 1
}
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
stage=$2
rm -rf "$stage"
cmake --install "$build" --prefix "$stage" >/dev/null
stage=$(cd "$stage" && pwd)

# In the ASan build the installed code is instrumented: the sanitizers'
# runtime goes first into the stock lua5.4, and C programs are built with
# the same flags.
sanitize=""
if [ -f "$build/sanitize" ]; then
  sanitize="-fsanitize=address,undefined"
  run() {
    LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
    ASAN_OPTIONS="detect_leaks=0" "$@"
  }
else
  run() { "$@"; }
fi

# The Lua module and the command
libdir=$(cd "$stage" && ls -d lib*/lua/5.4 2>/dev/null | head -n 1)
[ -n "$libdir" ] || fail "no lib/lua/5.4 in $stage"
LUA_PATH="$stage/share/lua/5.4/?.lua;$stage/share/lua/5.4/?/init.lua" \
LUA_CPATH="$stage/$libdir/?.so" \
  run lua5.4 -e 'local l = require "lasync"
                 io.write("installed lasync: ", l.run(function(x)
                   l.sleep(0.001) return x end, 42), "\n")'
printf 'lasync.sleep(0.001) assert(select(1, ...) == "x")\n' > "$stage/t.lua"
run "$stage/bin/lasync" "$stage/t.lua" x

# The files for C programs
pc=$(find "$stage" -name lasync.pc | head -n 1)
[ -n "$pc" ] || fail "no lasync.pc in $stage"
lib=$(cd "$(dirname "$pc")/.." && pwd)
[ -f "$stage/include/lasync.h" ] || fail "no include/lasync.h"
[ -f "$lib/liblasync.a" ] || fail "no liblasync.a in $lib"
[ -L "$lib/liblasync.so" ] || fail "no liblasync.so link in $lib"
soname=$(readelf -d "$lib/liblasync.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ -f "$lib/$soname" ] || fail "liblasync.so: SONAME '$soname' not installed"
[ -f "$stage/share/man/man1/lasync.1" ] || fail "no share/man/man1/lasync.1"
echo "liblasync.so: SONAME $soname"

# An application out of the tree: examples/embed/minimal.c, built as its
# comment says
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
echo "pkg-config lasync $(pkg-config --modversion lasync):" \
  "$(pkg-config --cflags --libs lasync)"
app="$stage/app"
mkdir -p "$app"
cp "$src/examples/embed/minimal.c" "$app/app.c"
cd "$app"
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
cc $sanitize app.c -o app-shared $(pkg-config --cflags --libs lasync)
out=$(LD_LIBRARY_PATH="$lib" ./app-shared) || fail "app-shared failed"
echo "out-of-tree (shared): $out"
# shellcheck disable=SC2046
cc $sanitize app.c -o app-static $(pkg-config --cflags lasync) \
  "$lib/liblasync.a" -Wl,--as-needed $(pkg-config --static --libs lasync)
if readelf -d app-static | grep -q 'NEEDED.*liblasync'; then
  fail "app-static needs liblasync.so"
fi
out=$(./app-static) || fail "app-static failed"
echo "out-of-tree (static): $out"
# A C++ program against the installed lasync.h (extern "C")
if command -v c++ >/dev/null 2>&1; then
  cp "$src/host/tests/test_cxx.cpp" app.cpp
  # shellcheck disable=SC2046
  c++ $sanitize app.cpp -o app-cxx $(pkg-config --cflags --libs lasync)
  out=$(LD_LIBRARY_PATH="$lib" ./app-cxx) || fail "app-cxx failed"
  echo "out-of-tree (C++): $out"
fi
echo "test-install: OK"
