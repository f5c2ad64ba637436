/*
** json.c — lasync.json: a JSON (RFC 8259) encoder and decoder that keeps
** Lua 5.4's integers (math.type integer <-> an integer literal), writes
** floats as the first of %.15g/%.16g/%.17g that reads back the same
** double, and marks tables as arrays or objects so that [] and {} survive
** a round trip. Owns json.null (a userdata) and the two mark metatables,
** the scratch buffer and the module table; the encoder and the decoder are
** json_encode.c and json_decode.c.
*/
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"

static int jbuf__gc(lua_State *L) {
  jbuf *b = (jbuf *)lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  return 0;
}

/* Out of line: the writes below inline to a compare and a copy. */
NOINLINE void lx_json_buf_grow(lua_State *L, jbuf *b, size_t n) {
  size_t cap = b->cap ? b->cap : 256;
  char *p;
  while (cap - b->len < n) {
    if (cap > ((size_t)-1) / 2) {
      b->busy = 0;
      luaL_error(L, "not enough memory");
    }
    cap *= 2;
  }
  p = (char *)realloc(b->p, cap);
  if (p == NULL) {
    b->busy = 0;
    luaL_error(L, "not enough memory");
  }
  b->p = p;
  b->cap = cap;
}

/*
** The scratch buffer for a call of encode or decode. Neither calls Lua,
** but an allocation may run the GC, and a finalizer may call them: that
** nested call must not write into the buffer of the call it interrupted,
** so it gets a box of its own (left on the stack, anchored until it
** returns). The errors of this file clear `busy`; a memory error that
** Lua raises does not, and then each later call takes a new box, which
** is slower but still right.
*/
jbuf *lx_json_buf_acquire(lua_State *L) {
  jbuf *b = (jbuf *)lua_touserdata(L, UV_BUF);
  if (b->busy) {
    b = (jbuf *)lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    lua_getmetatable(L, UV_BUF);
    lua_setmetatable(L, -2);
  }
  b->busy = 1;
  return b;
}

/* Free a buffer grown past KEEP_BYTES: one huge text does not pin its
   memory for the life of the state. */
void lx_json_buf_shrink(jbuf *b) {
  b->len = 0;
  if (b->cap > KEEP_BYTES) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
  }
}

/* The call is over: the buffer is free for the next one. */
void lx_json_buf_done(jbuf *b) {
  b->busy = 0;
  lx_json_buf_shrink(b);
}

/* The length of the valid UTF-8 sequence at p (RFC 3629: no overlongs,
   no surrogates, nothing above U+10FFFF), or 0. */
size_t lx_json_utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  size_t avail = (size_t)(end - p);
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0)
    return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
      return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
    if (c == 0xED && p[1] >= 0xA0) return 0; /* a surrogate */
    return 3;
  }
  if (c < 0xF5) {
    if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
        (p[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
    if (c == 0xF4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

/* The boolean option name (its value on top) of the options at arg. */
int lx_json_opt_bool(lua_State *L, int arg, const char *name) {
  if (!lua_isboolean(L, -1))
    lx_argerror(L, arg, lua_pushfstring(L, "option '%s': boolean "
                "expected, got %s", name, luaL_typename(L, -1)));
  return lua_toboolean(L, -1);
}

/* {======================================================================
** The marks and json.null
** ======================================================================= */

/* json.array(t) / json.object(t) -> t, marked (upvalues: the mark to
   set, then the two marks, which it may replace) */
static int json_mark(lua_State *L) {
  lx_checktype(L, 1, LUA_TTABLE);
  if (lua_getmetatable(L, 1)) {
    if (!lua_rawequal(L, -1, lua_upvalueindex(2)) &&
        !lua_rawequal(L, -1, lua_upvalueindex(3)))
      lx_argerror(L, 1, "table has a metatable of its own");
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

static int null__tostring(lua_State *L) {
  lua_pushliteral(L, "lasync.json.null");
  return 1;
}

/* [-0, +1] a mark: an empty metatable whose __name says what it marks */
static void push_mark(lua_State *L, const char *name) {
  lua_createtable(L, 0, 1);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
}

void lx_push_json(lua_State *L) {
  int t;
  lua_createtable(L, 0, 5);
  t = lua_gettop(L);
  lua_newuserdatauv(L, 0, 0); /* json.null */
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, null__tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "lasync.json.null");
  lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "lasync.json.null");
  lua_setfield(L, -2, "__metatable"); /* nobody changes it */
  lua_setmetatable(L, -2);
  push_mark(L, "lasync.json.array");
  push_mark(L, "lasync.json.object");
  lua_newuserdatauv(L, sizeof(jbuf), 0);
  memset(lua_touserdata(L, -1), 0, sizeof(jbuf));
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, jbuf__gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, t + 1);
  lua_setfield(L, t, "null");
  lua_pushvalue(L, t + 1);
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 3);
  lua_pushvalue(L, t + 4);
  lua_pushcclosure(L, lx_json_encode, 4);
  lua_setfield(L, t, "encode");
  lua_pushvalue(L, t + 1);
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 3);
  lua_pushvalue(L, t + 4);
  lua_pushcclosure(L, lx_json_decode, 4);
  lua_setfield(L, t, "decode");
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 3);
  lua_pushcclosure(L, json_mark, 3);
  lua_setfield(L, t, "array");
  lua_pushvalue(L, t + 3);
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 3);
  lua_pushcclosure(L, json_mark, 3);
  lua_setfield(L, t, "object");
  lua_settop(L, t);
}

/* lasync.core.json; lx_name_functions names its functions lasync.json.* */
void lx_open_json(lua_State *L) {
  lx_push_json(L);
  lua_setfield(L, -2, "json");
}

/* }====================================================================== */
