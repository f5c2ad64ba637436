# Tests run by ctest: every busted spec file, one test each.
if(LASYNC_SANITIZE)
  file(WRITE ${CMAKE_BINARY_DIR}/sanitize "")
endif()
file(GLOB SPEC_FILES ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
foreach(spec ${SPEC_FILES})
  get_filename_component(name ${spec} NAME_WE)
  string(REGEX REPLACE "_spec$" "" name ${name})
  add_test(NAME spec.${name}
           COMMAND ${CMAKE_SOURCE_DIR}/scripts/busted.sh ${CMAKE_BINARY_DIR}
                   ${spec})
  set_tests_properties(spec.${name} PROPERTIES TIMEOUT 300)
endforeach()
include(${CMAKE_CURRENT_LIST_DIR}/examples.cmake)

# cmake --install into a staging prefix, then require "lasync" from the
# stock lua5.4 with only that prefix's standard Lua directories on the path.
add_test(NAME install.require
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/test-install.sh
                 ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/stage)
set_tests_properties(install.require PROPERTIES TIMEOUT 120
                     PASS_REGULAR_EXPRESSION "installed lasync: 42")

add_test(NAME embed.minimal COMMAND embed_minimal)
set_tests_properties(embed.minimal PROPERTIES TIMEOUT 30
                     PASS_REGULAR_EXPRESSION "hello embedder, slept")

add_test(NAME c.completion COMMAND test_completion)
set_tests_properties(c.completion PROPERTIES TIMEOUT 60
                     PASS_REGULAR_EXPRESSION "343 settled, 57 failed")

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
