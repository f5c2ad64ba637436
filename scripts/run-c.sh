#!/bin/sh
# Run a C program of the build for ctest (examples/embed, host/tests),
# plainly or under a checker such as valgrind: the command line is given
# whole. A test with a PASS_REGULAR_EXPRESSION has its exit status ignored
# by ctest, so a non-zero exit prints "run-c: FAILED ..." for the test's
# FAIL_REGULAR_EXPRESSION.
# usage: scripts/run-c.sh COMMAND [args]
"$@"
status=$?
if [ "$status" -ne 0 ]; then
  echo "run-c: FAILED: $* exited with status $status"
fi
exit "$status"
