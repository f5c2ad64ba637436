#!/bin/sh
# scripts/fuzz.sh TARGET SECONDS: build the libFuzzer target TARGET (one of
# fuzz/targets.cmake) with clang in build-fuzz/ and run it for SECONDS
# over fuzz/corpus/TARGET. New inputs go to build-fuzz/corpus/TARGET
# (copy the interesting ones into the repo's corpus by hand); a crash
# leaves its input in build-fuzz/artifacts/ and fails.
set -e
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LASYNC_FUZZ_BUILD:-$root/build-fuzz}
mkdir -p "$build"
# configured every time (quick when nothing changed): a build dir made
# before a target was added must learn of it
CC=clang cmake -S "$root" -B "$build" -DLASYNC_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; echo "fuzz: cmake failed"; exit 1; }
cmake --build "$build" --target "fuzz_$target" -j 2 >"$build/build.log" 2>&1 ||
  { cat "$build/build.log"; echo "fuzz: $target: build failed"; exit 1; }
mkdir -p "$build/corpus/$target" "$build/artifacts"
status=0
"$build/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=1024 -artifact_prefix="$build/artifacts/$target-" \
  -print_final_stats=1 \
  "$build/corpus/$target" "$root/fuzz/corpus/$target" \
  >"$build/$target.log" 2>&1 || status=$?
tail -n 25 "$build/$target.log"
if [ "$status" -ne 0 ]; then
  echo "fuzz: $target: FAILED (exit $status; see $build/$target.log)"
  exit 1
fi
echo "fuzz: $target: OK ($seconds s)"
