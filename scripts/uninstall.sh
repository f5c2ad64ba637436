#!/bin/sh
# make uninstall: remove exactly the files the last make install from
# BUILD_DIR put (BUILD_DIR/installed.txt, cmake's install manifest with
# DESTDIR), then lasync's own directories (.../lasync and those below it)
# once empty, and run ldconfig (or $LDCONFIG) if that install ran it.
# usage: [LDCONFIG=cmd] scripts/uninstall.sh BUILD_DIR
set -e
list=$1/installed.txt
if [ ! -f "$list" ]; then
  echo "uninstall: nothing to remove: no $list (make install writes it)"
  exit 1
fi
destdir=$(sed -n '1s/^# destdir=//p' "$list")
grep -v '^#' "$list" | while IFS= read -r file; do
  if [ -e "$file" ] || [ -L "$file" ]; then
    rm -f "$file"
    echo "-- Removed: $file"
  fi
done
grep -v '^#' "$list" | while IFS= read -r file; do
  dir=$(dirname "$file")
  # the file's directories up to .../lasync, deepest first (lasync/http/)
  while :; do
    case $dir in
    */lasync) rmdir "$dir" 2>/dev/null || true; break ;;
    */lasync/*) rmdir "$dir" 2>/dev/null || true; dir=$(dirname "$dir") ;;
    *) break ;;
    esac
  done
done
rm -f "$list"
if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ]; then
  ${LDCONFIG:-ldconfig}
fi
