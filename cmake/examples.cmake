# Smoke tests for examples/*.lua: one ctest test per example, example.<name>.
# Each must exit 0, print its characteristic output (PASS regex) and write
# nothing starting with "lasync: " (leftover tasks, unretrieved errors, an
# uncaught error). cmake/run-example.sh reports a non-zero exit in the
# output, because a PASS_REGULAR_EXPRESSION makes ctest ignore exit codes.

# lasync_example(<name> <runner> <pass regex> [args...]): runner is
# "lasync" (the lasync command) or "lua" (stock lua5.4, for examples that
# drive a loop); args go to the example (--self-test for one that serves
# by default).
function(lasync_example name runner regex)
  if(runner STREQUAL "lua")
    set(runner ${LUA_EXE})
  endif()
  add_test(NAME example.${name}
           COMMAND ${CMAKE_SOURCE_DIR}/cmake/run-example.sh
                   ${CMAKE_BINARY_DIR} ${runner} examples/${name}.lua
                   ${ARGN})
  set_tests_properties(example.${name} PROPERTIES
    TIMEOUT 30
    LABELS example
    PASS_REGULAR_EXPRESSION "${regex}"
    FAIL_REGULAR_EXPRESSION "run-example: FAILED;^lasync: ;\nlasync: ")
  set_property(GLOBAL APPEND PROPERTY LASYNC_EXAMPLES ${name})
endfunction()

lasync_example(hello lasync "squares: 1 4 9 \\(at 0\\.[0-9] s\\)")
# sequential is 0.6 s: leave room for a loaded machine, not for that
lasync_example(sequential_vs_concurrent lasync
  "concurrent took 0\\.[345] s \\(the longest delay\\)")
lasync_example(create_task_order lasync
  "A: step 1\nB: step 1\nmain: back after one loop iteration\nA: step 2")
lasync_example(gather lasync
  "\\[2\\] ValueError: no such user\n  \\[3\\] CancelledError: not needed")
lasync_example(wait_as_completed lasync
  "as_completed timeout: got fetch-0\\.1, then TimeoutError")
lasync_example(wait_for lasync
  "slow: cleanup done at [^\n]*\nwait_for: TimeoutError at")
lasync_example(futures lasync "got: 200 OK text/plain")
lasync_example(loop_callbacks lua
  "call_soon #3\n[^\n]*call_soon #4: .*closed: [^\n]*the event loop is closed")
lasync_example(task_group lasync
  "cancelled at [^\n]*\nExceptionGroup: [^\n]*\n  \\[1\\] ValueError: a is")
lasync_example(timeouts lasync
  "inner saw: CancelledError [^\n]*\nouter raised: TimeoutError")
lasync_example(readme lasync "false\ttrue\ndone in 0\\.[0-9] s")
lasync_example(producer_consumer lasync
  "CancelledError\ntally: produced 6, consumed 6 [^\n]*: nothing lost")
# one job after the other would take 1.0 s
lasync_example(worker_pool lasync
  "64\n8 jobs in 0\\.[3-9] s [^\n]*, peak concurrency 3 \\(limit 3\\)")
lasync_example(crawler lasync
  "/shop/cart /team\n  404: /shop/old\nlinks followed: 15; [^\n]* after join: 3")
# the five commands run at once: the batch takes as long as the slowest (0.3 s)
lasync_example(subprocesses lasync
  "out: FED THROUGH STDIN\n[^\n]*exit 3\\)\n    err: oops\n\
5 commands in 0\\.[345] s[^\n]*\nexec: OSError ENOENT no-such-program")
lasync_example(workers lasync
  "job 6 \\(worker 3\\): 15497 primes below 170000\n\
3 workers done, exit statuses: 0 0 0\ninline: [^\n]*ticks meanwhile: 0 [^\n]*\n\
to_thread: 25997 primes below 300000; the ticker kept ticking: yes")
# worker_child.lua is the child process of workers.lua, tested through it
set_property(GLOBAL APPEND PROPERTY LASYNC_EXAMPLES worker_child)
lasync_example(files lasync
  "archive/ holds: notes-copy.txt \\(32 bytes\\), old.csv \\(12 bytes\\)\n\
stat missing.txt: OSError ENOENT [^\n]*\ncleaned up: [^\n]* ENOENT")

# networking: loopback servers on free ports, started by the examples
lasync_example(echo lasync
  "cid: sent 3 lines, got back: eins \\| zwei \\| drei\n\
cid: after write_eof the server said: bye, 3 lines echoed\n\
server: 3 connections, 9 lines echoed, 3 closed")
lasync_example(chat lasync
  "<carol> see you\n  \\* carol left \\(unfinished line dropped: \"I have to g\"\\)\n\
  <alice> bye\n  \\* alice left\n  \\* bob left\n.*\n\
  bob   <- \\* alice left\n  carol <- <bob> hello both")
# one fetch after the other would take 1.0 s
lasync_example(titles lasync
  "200 /news +\"News & notes\"[^\n]*\n[^\n]*\n404 /old +\"Not Found\"[^\n]*\n\
--- /slow +TimeoutError [^\n]*\n5 URLs fetched concurrently in 0\\.[45] s")
lasync_example(port_checker lasync
  "ssh-like +open +[0-9.]+ s +banner \"SSH-2\\.0-lasync_demo\"\n\
 +web +open [^\n]*no banner\n +old-api +closed [^\n]*ECONNREFUSED\n\
 +spare +closed [^\n]*ECONNREFUSED\n2 open, 2 closed, 0 filtered")
# TLS: both make a throwaway CA and certificate with the openssl command
lasync_example(tls_echo lasync
  "cid: sent 3 lines over TLSv1\\.[23], got back: eins \\| zwei \\| drei\n\
cid: after quit the server said: bye, 3 lines echoed\n\
server: 3 connections, 9 lines echoed, 3 quit")
lasync_example(https_get lasync
  "GET https://localhost/ -> HTTP/1\\.1 200 OK\n\
certificate subject: CN = localhost\n\
certificate issuer:  CN = lasync example CA\n\
TLS version: TLSv1\\.[23], cipher [^\n]+\npage title: \"Hello over TLS\"\n\
with ssl = true: SSLError CERTIFICATE_VERIFY_FAILED \\(")
# HTTP: lasync.http's App; it serves on port 8080 unless told to self-test
lasync_example(http_server lasync
  "GET  /  +200 text/plain  \"Hello, world\"\n\
POST /demo1/J%C3%BCrgen +200 application/json  {[^\n]*\"name\":\"J[^\"]+rgen\"\
[^\n]*\nGET  /static/ +200 text/html  index lists: css/ hello\\.txt\n\
.*self-test: 5 requests answered as expected" --self-test)

# HTTP client: lasync.http.Session against a lasync.http App the example
# starts; fetch_pages with 10 pages (sequential 0.6 s), load_test with 40
# posts of a 64 KB file by 8 tasks
lasync_example(fetch_pages lasync
  "200 /page/1 +\"Page 1\" [^\n]*\n.*fetched 10 pages one after the \
other in [01]\\.[0-9] s\nfetched 10 pages concurrently in 0\\.[0-4] s \
[^\n]*, 10 OK" 10)
lasync_example(load_test lasync
  "40 requests by 8 tasks: 40 OK, 0 failed\nlatency: max [0-9.]+ ms, \
min [0-9.]+ ms, p90 [0-9.]+ ms, average [0-9.]+ ms\n\
throughput: [0-9.]+ requests/s, [0-9.]+ MB/s" 40 8 64)

# starts its own redis-server; skipped only when the binary is missing
lasync_example(redis_counter lasync
  "hits: 1000 \\(20 tasks x 50 hits\\)\n\
alice: 30 allowed, 470 refused \\(limit 30 per window\\)")
set_tests_properties(example.redis_counter PROPERTIES
  SKIP_REGULAR_EXPRESSION "redis_counter: skipped")

# pg_basics needs a PostgreSQL cluster: spec/pg_spec.lua starts one
# (spec/pg_server.lua) and checks the example's whole output there.
set_property(GLOBAL APPEND PROPERTY LASYNC_EXAMPLES pg_basics)

# An example added without a test above is worth a warning.
file(GLOB example_files ${CMAKE_SOURCE_DIR}/examples/*.lua)
get_property(tested GLOBAL PROPERTY LASYNC_EXAMPLES)
foreach(file ${example_files})
  get_filename_component(name ${file} NAME_WE)
  if(NOT name IN_LIST tested)
    message(WARNING "examples/${name}.lua has no smoke test in "
                    "cmake/examples.cmake")
  endif()
endforeach()
