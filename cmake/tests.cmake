# Tests run by ctest: every busted spec file, one test each.
if(LASYNC_SANITIZE)
  file(WRITE ${CMAKE_BINARY_DIR}/sanitize "")
endif()
# Regressions (spec/regress/NNNN-short-title_spec.lua, NNNN the issue) run
# as regress.NNNN-short-title.
file(GLOB SPEC_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
file(GLOB REGRESS_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/spec/regress/*_spec.lua)
foreach(spec ${SPEC_FILES} ${REGRESS_FILES})
  get_filename_component(name ${spec} NAME)
  string(REGEX REPLACE "_spec\\.lua$" "" name ${name})
  get_filename_component(dir ${spec} DIRECTORY)
  if(dir MATCHES "/regress$")
    set(name regress.${name})
  else()
    set(name spec.${name})
  endif()
  add_test(NAME ${name}
           COMMAND ${CMAKE_SOURCE_DIR}/scripts/busted.sh ${CMAKE_BINARY_DIR}
                   ${spec})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300)
endforeach()
include(${CMAKE_CURRENT_LIST_DIR}/examples.cmake)

# cmake --install into a staging prefix, then: require "lasync" from the
# stock lua5.4 with only that prefix's standard Lua directories on the
# path; run the installed command; build a C program out of the tree with
# `pkg-config --cflags --libs lasync` and run it.
add_test(NAME install.staging
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/test-install.sh
                 ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/stage)
set_tests_properties(install.staging PROPERTIES TIMEOUT 120
  PASS_REGULAR_EXPRESSION "installed lasync: 42\n.*\
out-of-tree \\(shared\\): hello embedder, slept\n\
out-of-tree \\(static\\): hello embedder, slept\n.*test-install: OK"
  FAIL_REGULAR_EXPRESSION "test-install: FAILED"
  RESOURCE_LOCK install_manifest)

# make install (PREFIX, prefix, DESTDIR, ldconfig) and make uninstall
# (exactly what install put) into staging directories. Both tests install
# from the build: one at a time (cmake writes install_manifest.txt).
add_test(NAME install.make
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/test-make-install.sh
                 ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}
                 ${CMAKE_BINARY_DIR}/stage-make)
set_tests_properties(install.make PROPERTIES TIMEOUT 120
  PASS_REGULAR_EXPRESSION "test-make-install: OK"
  FAIL_REGULAR_EXPRESSION "test-make-install: FAILED"
  RESOURCE_LOCK install_manifest)

# The include graph of bindings/ and host/ points down the layers
# (docs/internals.md): no upward or sideways edge, nothing in bindings/
# includes host/.
find_program(PYTHON3_EXE NAMES python3 REQUIRED)
add_test(NAME layers.includes
         COMMAND ${PYTHON3_EXE} ${CMAKE_SOURCE_DIR}/scripts/check-includes.py
                 ${CMAKE_SOURCE_DIR})
set_tests_properties(layers.includes PROPERTIES TIMEOUT 60
                     PASS_REGULAR_EXPRESSION "includes: OK")

# The man page renders without warnings (man -l, else groff).
add_test(NAME install.man
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/test-man.sh
                 ${CMAKE_BINARY_DIR}/lasync.1)
set_tests_properties(install.man PROPERTIES TIMEOUT 60
                     PASS_REGULAR_EXPRESSION "test-man: OK")

# The embedding examples (embed.<name>) and the C tests (c.<name>): each
# runs plainly (instrumented in the ASan build) and, outside the ASan build,
# under valgrind's memcheck (<test>.memcheck): no errors, no leaks.
find_program(VALGRIND_EXE valgrind)
if(NOT VALGRIND_EXE AND NOT LASYNC_SANITIZE)
  message(STATUS "valgrind not found: no *.memcheck tests")
endif()
function(lasync_c_test test target regex)
  add_test(NAME ${test}
           COMMAND ${CMAKE_SOURCE_DIR}/scripts/run-c.sh $<TARGET_FILE:${target}>)
  set_tests_properties(${test} PROPERTIES TIMEOUT 60
                       PASS_REGULAR_EXPRESSION "${regex}"
                       FAIL_REGULAR_EXPRESSION "run-c: FAILED")
  if(VALGRIND_EXE AND NOT LASYNC_SANITIZE)
    add_test(NAME ${test}.memcheck
             COMMAND ${CMAKE_SOURCE_DIR}/scripts/run-c.sh ${VALGRIND_EXE} -q
                     --leak-check=full --error-exitcode=9
                     $<TARGET_FILE:${target}>)
    set_tests_properties(${test}.memcheck PROPERTIES TIMEOUT 120
                         PASS_REGULAR_EXPRESSION "${regex}"
                         FAIL_REGULAR_EXPRESSION "run-c: FAILED;==[0-9]+== ")
  endif()
endfunction()

# A TLS round trip (spec/tls_memcheck.lua) in the stock lua5.4 under
# memcheck: OpenSSL's and tls.c's memory, no errors, no leaks.
if(VALGRIND_EXE AND NOT LASYNC_SANITIZE)
  add_test(NAME tls.memcheck
           COMMAND ${CMAKE_COMMAND} -E env
             "LUA_PATH=${CMAKE_SOURCE_DIR}/lua/?.lua;${CMAKE_SOURCE_DIR}/lua/?/init.lua;${CMAKE_SOURCE_DIR}/spec/?.lua;;"
             "LUA_CPATH=${CMAKE_BINARY_DIR}/lib/?.so;;"
             ${VALGRIND_EXE} -q --leak-check=full --error-exitcode=9
             lua5.4 ${CMAKE_SOURCE_DIR}/spec/tls_memcheck.lua)
  set_tests_properties(tls.memcheck PROPERTIES TIMEOUT 120
    PASS_REGULAR_EXPRESSION "tls-memcheck: hello over TLS"
    FAIL_REGULAR_EXPRESSION "==[0-9]+== ")
endif()

lasync_c_test(embed.minimal embed_minimal "hello embedder, slept")
lasync_c_test(embed.game_loop embed_game_loop
  "game over: 2 waves, 5 enemies arrived, the player jumped and landed, \
0 tasks pending")
lasync_c_test(embed.tcp_server embed_tcp_server
  "client: request 1 -> HELLO FROM C\nclient: request 2 -> slept 50 ms\n\
client: request 3 -> sum=10\nclient: request 4 -> ERR unknown command \"fly\"\n\
client: replies arrived in the order 1 3 4 2\n\
server: handed 4 requests from 1 connection to Lua, sent 4 replies, \
loop closed cleanly")
lasync_c_test(embed.worker_thread embed_worker_thread
  "primes below 100000: 9592\nprimes below 200000: 17984\n\
primes below 300000: 25997\n\
count_primes\\(1\\) failed: count_primes: 1 is too small\n\
4 futures settled by a C worker thread; the Lua ticker kept ticking")
lasync_c_test(c.completion test_completion "343 settled, 57 failed")
lasync_c_test(c.host test_host "host: [0-9]+ checks, 0 failed")
if(LASYNC_CXX) # a C++ program links against lasync.h's functions
  lasync_c_test(c.cxx test_cxx
    "c\\+\\+: host said c\\+\\+, lasync_run said hello C\\+\\+; 0 failed")
endif()

# docs/embedding.md documents every function of lasync.h, and its complete
# programs compile.
add_test(NAME embed.docs
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/test-embedding-docs.sh
                 ${CMAKE_SOURCE_DIR})
set_tests_properties(embed.docs PROPERTIES TIMEOUT 60
                     PASS_REGULAR_EXPRESSION "embedding docs: OK")

# The same test built with ThreadSanitizer, from the sources (the rest of
# the build is not instrumented for threads). Skipped in the ASan build:
# the two sanitizers do not mix.
if(NOT LASYNC_SANITIZE)
  add_test(NAME c.completion_tsan
           COMMAND ${CMAKE_SOURCE_DIR}/scripts/test-tsan.sh
                   ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
  set_tests_properties(c.completion_tsan PROPERTIES TIMEOUT 300
                       PASS_REGULAR_EXPRESSION "343 settled, 57 failed")
endif()

# The soak script with small counts (bench/soak.lua): 100 concurrent
# connections and 200 rounds of every API cycle, each checking that fds,
# pending tasks and RSS come back (not the RSS under the sanitizers).
if(LASYNC_SANITIZE)
  set(SOAK_RSS --no-rss)
endif()
add_test(NAME soak.small
         COMMAND $<TARGET_FILE:lasync> ${CMAKE_SOURCE_DIR}/bench/soak.lua
                 100 0 --api 200 ${SOAK_RSS})
set_tests_properties(soak.small PROPERTIES TIMEOUT 60
                     PASS_REGULAR_EXPRESSION "soak: all PASS")

# The bench's HTTP client program (bench/http/client_lasync.lua, the lasync
# peer of httpclient and httpsclient) with small counts, against lasync's
# own server over http and https: 500 requests by 20 tasks, no error.
add_test(NAME bench.client.small
         COMMAND $<TARGET_FILE:lasync>
                 ${CMAKE_SOURCE_DIR}/bench/http/client_smoke.lua
                 $<TARGET_FILE:lasync> 500 20 50)
set_tests_properties(bench.client.small PROPERTIES TIMEOUT 60
                     PASS_REGULAR_EXPRESSION "client smoke: all PASS")

# The PostgreSQL workloads (bench/run.sh '^pg', bench/pgquery/) with small
# counts: a throwaway cluster in the build directory, 200 queries of
# pgquery and of pgfetch by lasync and by the Python peers installed;
# skipped without PostgreSQL's initdb.
add_test(NAME bench.pg.small
         COMMAND ${CMAKE_SOURCE_DIR}/bench/pgquery/smoke.sh
                 $<TARGET_FILE:lasync> ${CMAKE_BINARY_DIR} 200)
set_tests_properties(bench.pg.small PROPERTIES TIMEOUT 180
                     PASS_REGULAR_EXPRESSION "pg smoke: all PASS"
                     FAIL_REGULAR_EXPRESSION "pg smoke: FAILED"
                     SKIP_REGULAR_EXPRESSION "pg smoke: skipped")

# A short run of each libFuzzer target of fuzz/targets.cmake (fuzz.<name>,
# 2 s over its corpus: the targets fuzz for under 20 s in all) when clang
# is there: scripts/fuzz.sh builds it in
# its own directory (build-fuzz). Not in a fuzz build itself, nor under
# the sanitizers (the target has its own).
find_program(LASYNC_CLANG clang)
if(LASYNC_CLANG AND NOT LASYNC_FUZZ AND NOT LASYNC_SANITIZE)
  function(lasync_fuzz_target name)
    add_test(NAME fuzz.${name}
             COMMAND ${CMAKE_SOURCE_DIR}/scripts/fuzz.sh ${name} 2)
    # one at a time: they build in the same directory (build-fuzz)
    set_tests_properties(fuzz.${name} PROPERTIES TIMEOUT 600
                         PASS_REGULAR_EXPRESSION "fuzz: ${name}: OK"
                         RESOURCE_LOCK build-fuzz)
  endfunction()
  include(${CMAKE_SOURCE_DIR}/fuzz/targets.cmake)
endif()
