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
