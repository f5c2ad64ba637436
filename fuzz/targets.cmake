# The libFuzzer targets, one line each: lasync_fuzz_target(name sources...)
# with its corpus in fuzz/corpus/<name>/. cmake/fuzz.cmake builds them
# (-DLASYNC_FUZZ=ON, clang); cmake/tests.cmake registers a short run of
# each (fuzz.<name>) when clang is found.
lasync_fuzz_target(http_request fuzz/http_request.c bindings/http/parse.c
                   ${LLHTTP_SOURCES})
lasync_fuzz_target(tls_server fuzz/tls_server.c fuzz/tls_harness.c
                   ${LASYNC_FUZZ_CORE})
lasync_fuzz_target(tls_records fuzz/tls_records.c fuzz/tls_harness.c
                   ${LASYNC_FUZZ_CORE})
lasync_fuzz_target(json_decode fuzz/json_decode.c bindings/codec/json.c
                   bindings/codec/json_decode.c bindings/codec/json_encode.c
                   bindings/core/argcheck.c)
lasync_fuzz_target(http_multipart fuzz/http_multipart.c fuzz/lua_cover.c
                   ${LASYNC_FUZZ_CORE})
lasync_fuzz_target(http_urlencoded fuzz/http_urlencoded.c fuzz/lua_cover.c
                   ${LASYNC_FUZZ_CORE})
lasync_fuzz_target(http_inflate fuzz/http_inflate.c bindings/http/inflate.c)
lasync_fuzz_target(http_response fuzz/http_response.c
                   bindings/http/resp_parse.c ${LLHTTP_SOURCES})
lasync_fuzz_target(resp_reader fuzz/resp_reader.c ${LASYNC_FUZZ_CORE})
lasync_fuzz_target(tls_client fuzz/tls_client.c fuzz/tls_harness.c
                   ${LASYNC_FUZZ_CORE})
