#!/bin/sh
# Build host/tests/test_completion.c and the core with ThreadSanitizer and
# run it: C threads settle futures that Lua tasks await.
# usage: scripts/test-tsan.sh SOURCE_DIR BUILD_DIR
set -e
src=$1
out=$2/tsan
mkdir -p "$out"
version=$(sed -n 's/^#define LASYNC_VERSION "\(.*\)"/\1/p' \
  "$src/host/include/lasync.h")
cc -std=c99 -D_GNU_SOURCE -O1 -g -fsanitize=thread -fPIE -pie \
  -I"$src/bindings" -I"$src/host/include" -I"$src/host" \
  -I/usr/share/include/llhttp -DLLHTTP_STRICT_MODE=1 \
  -DLX_VERSION="\"$version\"" \
  $(pkg-config --cflags lua5.4 libuv openssl zlib hiredis libpq) \
  "$src"/bindings/*.c "$src"/bindings/*/*.c /usr/share/llhttp/*.c \
  "$src/host/api.c" "$src/host/embed.c" "$2/embedded.c" \
  "$src/host/tests/test_completion.c" \
  -o "$out/test_completion" \
  $(pkg-config --libs lua5.4 libuv openssl zlib hiredis libpq) -lpthread -lm
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$out/test_completion"
