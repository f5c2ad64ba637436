#!/bin/sh
# make install: cmake --install BUILD_DIR into PREFIX, under $DESTDIR when
# set (staging for a package); records what it put, DESTDIR included, in
# BUILD_DIR/installed.txt for scripts/uninstall.sh; and runs ldconfig
# (or $LDCONFIG) when installing into the system as root, so that
# liblasync.so is found at once (not with DESTDIR: nothing is in the
# system yet).
# usage: [DESTDIR=dir] [LDCONFIG=cmd] scripts/install.sh BUILD_DIR PREFIX
set -e
build=$1
prefix=$2
DESTDIR=${DESTDIR:-}
export DESTDIR
cmake --install "$build" --prefix "$prefix"
{
  echo "# destdir=$DESTDIR"
  awk -v d="$DESTDIR" '{ print d $0 }' "$build/install_manifest.txt"
} >"$build/installed.txt"
if [ -z "$DESTDIR" ] && [ "$(id -u)" -eq 0 ]; then
  ${LDCONFIG:-ldconfig}
fi
