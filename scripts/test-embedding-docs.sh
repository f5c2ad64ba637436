#!/bin/sh
# docs/embedding.md against lasync.h: every function the header declares
# (LASYNC_API) and every constant of its enums is documented on the page,
# every lasync_*() the page names exists in the header, and the complete
# programs among its ```c blocks (those with a main) compile cleanly.
# Prints "embedding docs: OK", or what is wrong.
# usage: scripts/test-embedding-docs.sh SOURCE_DIR
header=$1/host/include/lasync.h
doc=$1/docs/embedding.md
status=0
declared=$(awk '/^LASYNC_API/ {
    decl = $0
    while (decl !~ /;/ && (getline line) > 0) decl = decl " " line
    print decl
  }' "$header" |
  sed -n 's/^LASYNC_API[^(]*[ *]\([a-z_][a-z_0-9]*\)(.*/\1/p' | sort -u)
constants=$(grep -o 'LASYNC_[A-Z_]* = ' "$header" | sed 's/ = //' | sort -u)
[ -n "$declared" ] || { echo "no LASYNC_API function in $header"; exit 1; }
for name in $declared; do
  grep -q "$name(" "$doc" || {
    echo "not documented in docs/embedding.md: $name()"
    status=1
  }
done
for name in $constants; do
  grep -q "$name" "$doc" || {
    echo "not documented in docs/embedding.md: $name"
    status=1
  }
done
for name in $(grep -oE '(^|[^a-z_])lasync_[a-z_0-9]*\(' "$doc" |
  sed 's/^[^l]*//; s/($//' | sort -u); do
  echo "$declared" | grep -qx "$name" || {
    echo "docs/embedding.md names $name(), which lasync.h does not declare"
    status=1
  }
done
# The complete programs: compiled, not linked
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v dir="$tmp" '
  /^```c$/ { inblock = 1; n++; text = ""; next }
  /^```$/ && inblock {
    inblock = 0
    if (text ~ /int main\(/) print text > (dir "/block" n ".c")
    next
  }
  inblock { text = text $0 "\n" }
' "$doc"
programs=0
for file in "$tmp"/block*.c; do
  [ -f "$file" ] || continue
  programs=$((programs + 1))
  # shellcheck disable=SC2046
  cc -fsyntax-only -Wall -Wextra -Werror -I"$1/host/include" \
    $(pkg-config --cflags lua5.4 libuv) "$file" || {
    echo "docs/embedding.md: a program does not compile:"
    cat -n "$file"
    status=1
  }
done
[ "$status" -eq 0 ] &&
  echo "embedding docs: OK: $(echo "$declared" | wc -l) functions" \
    "documented, programs compiled: $programs"
exit "$status"
