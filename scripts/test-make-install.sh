#!/bin/sh
# make install and make uninstall, from the build BUILD_DIR (not rebuilt):
# PREFIX and prefix honoured; ldconfig run as root into the system (a fake
# one here, that only records the call), never with DESTDIR; the installed
# command runs; uninstall removes every file install put and lasync's own
# directories, and nothing else. Ends with "test-make-install: OK", or
# "test-make-install: FAILED" at the first failure.
# usage: scripts/test-make-install.sh SOURCE_DIR BUILD_DIR STAGE_DIR
set -e
trap '[ $? -eq 0 ] || echo "test-make-install: FAILED"' EXIT
fail() {
  echo "test-make-install: $*"
  exit 1
}
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
stage=$3
rm -rf "$stage"
mkdir -p "$stage"
stage=$(cd "$stage" && pwd)
fake="$stage/fake-ldconfig"
printf '#!/bin/sh\necho "ldconfig $*" >>"%s/ldconfig.log"\n' "$stage" >"$fake"
chmod +x "$fake"
# -o deps -o build: install what is built, without building (ctest runs
# this while other tests use the build)
mk() {
  make -s -C "$src" -o deps -o build BUILD="$build" LDCONFIG="$fake" "$@"
}
files() {
  find "$1" \( -type f -o -type l \) 2>/dev/null | sort
}
if [ -f "$build/sanitize" ]; then
  run() {
    LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
    ASAN_OPTIONS="detect_leaks=0" "$@"
  }
else
  run() { "$@"; }
fi
root=$([ "$(id -u)" -eq 0 ] && echo yes || echo no)

# Into a prefix (PREFIX): everything in place, ldconfig as root
mkdir -p "$stage/prefix/share/keep"
touch "$stage/prefix/share/keep/other-file"
mk install PREFIX="$stage/prefix" >"$stage/install.log"
n=$(grep -vc '^#' "$build/installed.txt")
[ "$(files "$stage/prefix" | wc -l)" -eq $((n + 1)) ] ||
  fail "install: $n files in the manifest, not what is in the prefix"
run "$stage/prefix/bin/lasync" --version | grep -q '^lasync ' ||
  fail "the installed lasync --version"
[ -f "$stage/prefix/lib/liblasync.a" ] || fail "no lib/liblasync.a"
[ -f "$stage/prefix/share/lua/5.4/lasync/init.lua" ] ||
  fail "no share/lua/5.4/lasync/init.lua"
if [ "$root" = yes ]; then
  [ -f "$stage/ldconfig.log" ] || fail "install as root: no ldconfig"
else
  [ ! -f "$stage/ldconfig.log" ] || fail "install as a user: ldconfig ran"
fi
echo "make install PREFIX: $n files (ldconfig: $root)"
rm -f "$stage/ldconfig.log"
mk uninstall >"$stage/uninstall.log"
left=$(files "$stage/prefix")
[ "$left" = "$stage/prefix/share/keep/other-file" ] ||
  fail "uninstall left (or removed) files: $left"
[ ! -d "$stage/prefix/share/lua/5.4/lasync" ] ||
  fail "uninstall left share/lua/5.4/lasync"
[ ! -d "$stage/prefix/lib/lua/5.4/lasync" ] ||
  fail "uninstall left lib/lua/5.4/lasync"
[ "$root" = no ] || [ -f "$stage/ldconfig.log" ] ||
  fail "uninstall as root: no ldconfig"
echo "make uninstall: $(grep -c '^-- Removed' "$stage/uninstall.log")" \
  "files removed"
mk uninstall >/dev/null 2>&1 && fail "a second uninstall did not fail"

# DESTDIR and prefix (lowercase): staged under DESTDIR, no ldconfig
rm -f "$stage/ldconfig.log"
mk install DESTDIR="$stage/dest" prefix=/usr/local >/dev/null
[ -f "$stage/dest/usr/local/include/lasync.h" ] ||
  fail "DESTDIR: no usr/local/include/lasync.h under it"
[ "$(files "$stage/dest" | wc -l)" -eq "$n" ] ||
  fail "DESTDIR: not the same files"
[ ! -f "$stage/ldconfig.log" ] || fail "install with DESTDIR: ldconfig ran"
mk uninstall >/dev/null
[ -z "$(files "$stage/dest")" ] || fail "uninstall left: $(files "$stage/dest")"
[ ! -f "$stage/ldconfig.log" ] || fail "uninstall of DESTDIR: ldconfig ran"
echo "make install DESTDIR: $n files staged, then removed, no ldconfig"
rm -rf "$stage"
echo "test-make-install: OK"
