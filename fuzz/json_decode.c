/*
** json_decode.c — libFuzzer target: lasync.json.decode on arbitrary bytes.
** Text it accepts must encode (sort_keys), and that encoding must decode
** and encode to itself: decode never yields what encode refuses, and a
** round trip loses nothing. A refusal must be a "lasync.json.decode: ..."
** message, never another error.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

/* runtime.c's, without the runtime: argcheck.c's messages need it */
const char *lx_typename(lua_State *L, int idx) {
  return luaL_typename(L, idx);
}

static lua_State *L;

/* [-0, +1] json[fn](top value, opts) in protected mode; its status */
static int call(const char *fn, int sorted) {
  int arg = lua_gettop(L);
  lua_getfield(L, 1, fn);
  lua_pushvalue(L, arg);
  if (sorted) {
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "sort_keys");
  }
  return lua_pcall(L, sorted ? 2 : 1, 1, 0);
}

static void fail(const char *what) {
  fprintf(stderr, "json_decode: %s: %s\n", what,
          lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The checks of one input, on L with json at index 1. */
static void check(const uint8_t *data, size_t size) {
  size_t n1, n2;
  const char *t1, *t2;
  lua_pushlstring(L, (const char *)data, size);
  if (call("decode", 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL || strncmp(msg, "lasync.json.decode: ", 20) != 0)
      fail("decode raised an unexpected error");
    return;
  }
  if (call("encode", 1) != LUA_OK) fail("encode refused a decoded value");
  t1 = lua_tolstring(L, -1, &n1);
  if (call("decode", 0) != LUA_OK) fail("decode refused encode's text");
  if (call("encode", 1) != LUA_OK) fail("encode refused a round trip");
  t2 = lua_tolstring(L, -1, &n2);
  if (n1 != n2 || memcmp(t1, t2, n1) != 0) fail("a round trip changed");
}

/* A state per input: whatever it allocates is freed by the end of the
   run, so libFuzzer's leak check (after a run that did not free all it
   allocated) stays quiet and cheap. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  L = luaL_newstate();
  lx_push_json(L);
  check(data, size);
  lua_close(L);
  L = NULL;
  return 0;
}
