# -DLASYNC_FUZZ=ON: the libFuzzer targets of fuzz/targets.cmake, built
# with clang and -fsanitize=fuzzer,address,undefined (scripts/fuzz.sh
# configures build-fuzz this way and runs one).
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "LASYNC_FUZZ needs clang (CC=clang cmake ...)")
endif()
set_source_files_properties(${LLHTTP_SOURCES} PROPERTIES COMPILE_OPTIONS -w)
# The whole core with the embedding API, for the targets that run a lasync
# host (tls_*): instrumented like the target itself.
set(LASYNC_FUZZ_CORE ${CORE_SOURCES} host/api.c host/embed.c
    ${CMAKE_BINARY_DIR}/embedded.c ${LLHTTP_SOURCES})

function(lasync_fuzz_target name)
  list(TRANSFORM ARGN PREPEND ${CMAKE_SOURCE_DIR}/ REGEX "^[^/]")
  add_executable(fuzz_${name} ${ARGN})
  target_include_directories(fuzz_${name} PRIVATE
                             ${CMAKE_SOURCE_DIR}/bindings ${LLHTTP_INCLUDE_DIR}
                             ${CMAKE_SOURCE_DIR}/host
                             ${CMAKE_SOURCE_DIR}/host/include)
  target_compile_definitions(fuzz_${name} PRIVATE LLHTTP_STRICT_MODE=1)
  target_compile_options(fuzz_${name} PRIVATE -g -O1
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_link_options(fuzz_${name} PRIVATE
                      -fsanitize=fuzzer,address,undefined)
  # Lua, libuv, OpenSSL, zlib and hiredis: the targets that see core.h
  # (json_decode), run the whole core (the TLS targets) or inflate
  # (http_inflate)
  target_link_libraries(fuzz_${name} PRIVATE PkgConfig::LUA PkgConfig::UV
                        PkgConfig::OPENSSL PkgConfig::ZLIB PkgConfig::HIREDIS
                        PkgConfig::PQ m)
endfunction()

include(${CMAKE_SOURCE_DIR}/fuzz/targets.cmake)
