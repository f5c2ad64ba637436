#!/bin/sh
# Check that a man page renders, without any warning: with `man -l` if
# man-db's man is there, else with groff, else nroff. Prints the renderer
# and "test-man: OK", or "test-man: FAILED" with the warnings.
# usage: scripts/test-man.sh PAGE
page=$1
[ -f "$page" ] || { echo "test-man: FAILED: no $page"; exit 1; }
err=$(mktemp)
out=$(mktemp)
trap 'rm -f "$err" "$out"' EXIT
if command -v man >/dev/null 2>&1 && man --help 2>&1 | grep -q -- --warnings; then
  renderer="man -l"
  MANWIDTH=80 MAN_KEEP_FORMATTING=0 man --warnings=w -E UTF-8 -l "$page" \
    >"$out" 2>"$err"
elif command -v groff >/dev/null 2>&1; then
  renderer="groff -man"
  groff -man -Tutf8 -ww "$page" >"$out" 2>"$err"
elif command -v nroff >/dev/null 2>&1; then
  renderer="nroff -man"
  nroff -man -ww "$page" >"$out" 2>"$err"
else
  echo "test-man: no man, groff or nroff: nothing to check; test-man: OK"
  exit 0
fi
status=$?
echo "rendered with $renderer: $(wc -l <"$out") lines"
if [ "$status" -ne 0 ] || [ -s "$err" ] || ! grep -q "^N.*A.*M.*E" "$out"; then
  cat "$err"
  echo "test-man: FAILED (status $status)"
  exit 1
fi
echo "test-man: OK"
