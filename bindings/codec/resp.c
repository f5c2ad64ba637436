/*
** resp.c — the Redis protocol (RESP2) for lasync.redis: a writer that
** encodes one command as an array of bulk strings (binary-safe), and a
** reader that wraps hiredis's redisReader, the reply parser alone, fed
** with the bytes lasync's own streams read. The connection, its queue of
** callers and its socket are Lua's (lua/lasync/redis.lua): docs/internals.md
** says why hiredis's async context is not used.
*/
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "codec/codec.h"

#define READER_MT "lasync.redis.reader"

typedef struct {
  redisReader *r;
} reader_box;

/* [-0, +1|3] resp.command(arg1, ...): the command's bytes. Strings go
   as they are, integers in decimal and floats with 17 digits, so that
   they read back as the same double. Anything else is not raised here
   but returned as nil, its index and its type (0 when no argument is
   given), so that the Lua caller raises naming its public function. */
static int resp_command(lua_State *L) {
  int n = lua_gettop(L), i;
  luaL_Buffer b;
  if (n < 1) {
    lua_pushnil(L);
    lua_pushinteger(L, 0);
    lua_pushliteral(L, "no value");
    return 3;
  }
  for (i = 1; i <= n; i++) {
    int t = lua_type(L, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER) {
      lua_pushnil(L);
      lua_pushinteger(L, i);
      lua_pushstring(L, luaL_typename(L, i));
      return 3;
    }
  }
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "*%d\r\n", n);
  luaL_addvalue(&b);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    char num[64];
    if (lua_type(L, i) == LUA_TNUMBER) {
      if (lua_isinteger(L, i))
        len = (size_t)snprintf(num, sizeof num, LUA_INTEGER_FMT,
                               (LUAI_UACINT)lua_tointeger(L, i));
      else
        len = (size_t)snprintf(num, sizeof num, "%.17g",
                               (double)lua_tonumber(L, i));
      s = num;
    } else {
      s = lua_tolstring(L, i, &len);
    }
    {
      char head[32];
      int hl = snprintf(head, sizeof head, "$%zu\r\n", len);
      luaL_addlstring(&b, head, (size_t)hl);
    }
    luaL_addlstring(&b, s, len);
    luaL_addlstring(&b, "\r\n", 2);
  }
  luaL_pushresult(&b);
  return 1;
}

/* [-0, +1] resp.reader(make_error, null): a new reader. make_error(msg)
   turns an error reply into a value (a lasync.redis.Error); null stands
   for a nil element inside an array, where nil would cut the array. */
static int resp_reader(lua_State *L) {
  reader_box *box;
  lx_checktype(L, 1, LUA_TFUNCTION);
  if (lua_isnone(L, 2)) lx_argerror(L, 2, "value expected");
  box = (reader_box *)lua_newuserdatauv(L, sizeof *box, 2);
  box->r = NULL;
  luaL_setmetatable(L, READER_MT);
  box->r = redisReaderCreate();
  if (box->r == NULL) return luaL_error(L, "not enough memory");
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* The reader at index 1, or an error naming fname (the method) */
static reader_box *check_reader(lua_State *L, const char *fname) {
  reader_box *box = (reader_box *)luaL_testudata(L, 1, READER_MT);
  if (box == NULL)
    luaL_error(L, "%s: expected a lasync.redis.reader as self (got %s)",
               fname, luaL_typename(L, 1));
  if (box->r == NULL) luaL_error(L, "%s: the reader is closed", fname);
  return box;
}

/* [-0, +1] one reply as a Lua value; top: true at the top level (where a
   nil reply is nil) */
static void push_reply(lua_State *L, redisReply *rep, int top) {
  size_t i;
  luaL_checkstack(L, 4, "reply nested too deeply");
  switch (rep->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    lua_pushlstring(L, rep->str, rep->len);
    break;
  case REDIS_REPLY_INTEGER:
    lua_pushinteger(L, (lua_Integer)rep->integer);
    break;
  case REDIS_REPLY_NIL:
    if (top) lua_pushnil(L);
    else lua_getiuservalue(L, 1, 2);
    break;
  case REDIS_REPLY_ERROR:
    lua_getiuservalue(L, 1, 1);
    lua_pushlstring(L, rep->str, rep->len);
    lua_call(L, 1, 1);
    break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)rep->elements, 0);
    for (i = 0; i < rep->elements; i++) {
      push_reply(L, rep->element[i], 0);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  default:
    lua_pushnil(L);
  }
}

/* rd:feed(data) */
static int reader_feed(lua_State *L) {
  reader_box *box = check_reader(L, "lasync.redis.reader:feed");
  size_t len;
  const char *s = lx_checklstring(L, 2, &len);
  if (redisReaderFeed(box->r, s, len) != REDIS_OK)
    return luaL_error(L, "lasync.redis.reader:feed: not enough memory");
  return 0;
}

/* [-0, +1] under lua_pcall: (reader, reply) -> the reply as a value */
static int convert(lua_State *L) {
  push_reply(L, (redisReply *)lua_touserdata(L, 2), 1);
  return 1;
}

/* rd:get() -> true, value | false: the next complete reply, if any. A
   protocol error raises (the connection is then unusable). The reply
   tree is converted under a pcall, because an error reply calls
   make_error, so that it is freed whatever happens. */
static int reader_get(lua_State *L) {
  reader_box *box = check_reader(L, "lasync.redis.reader:get");
  void *rep = NULL;
  int st;
  if (redisReaderGetReply(box->r, &rep) != REDIS_OK)
    return luaL_error(L, "lasync.redis.reader:get: protocol error: %s",
                      box->r->errstr);
  if (rep == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, 1);
  lua_pushcfunction(L, convert);
  lua_pushvalue(L, 1);
  lua_pushlightuserdata(L, rep);
  st = lua_pcall(L, 2, 1, 0);
  freeReplyObject(rep);
  if (st != LUA_OK) return lua_error(L);
  return 2;
}

/* Free the hiredis reader (once); fname names the metamethod */
static int release(lua_State *L, const char *fname) {
  reader_box *box = (reader_box *)luaL_testudata(L, 1, READER_MT);
  if (box == NULL)
    return luaL_error(L, "%s: expected a lasync.redis.reader as self "
                      "(got %s)", fname, luaL_typename(L, 1));
  if (box->r != NULL) redisReaderFree(box->r);
  box->r = NULL;
  return 0;
}

static int reader_gc(lua_State *L) {
  return release(L, READER_MT ":__gc");
}

static int reader_close(lua_State *L) {
  return release(L, READER_MT ":__close");
}

/* [-0, +0] give the reader's methods and metamethods (the metatable on
   top) their public names: lasync.core's naming sees only the classes of
   the runtime, and errors must name the method */
static void name_methods(lua_State *L) {
  static const char *const meta[] = { "__gc", "__close", NULL };
  static const char *const methods[] = { "feed", "get", NULL };
  int i;
  for (i = 0; meta[i] != NULL; i++) {
    lua_getfield(L, -1, meta[i]);
    lx_name_function(L, -1, READER_MT ":", meta[i]);
    lua_pop(L, 1);
  }
  lua_getfield(L, -1, "__index");
  for (i = 0; methods[i] != NULL; i++) {
    lua_getfield(L, -1, methods[i]);
    lx_name_function(L, -1, READER_MT ":", methods[i]);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static const luaL_Reg reader_methods[] = {
  {"feed", reader_feed}, {"get", reader_get}, {NULL, NULL}
};

/* lasync.core._resp = { command, reader } */
void lx_open_resp(lua_State *L) {
  if (luaL_newmetatable(L, READER_MT)) {
    luaL_newlib(L, reader_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, reader_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, reader_close);
    lua_setfield(L, -2, "__close");
    name_methods(L);
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, resp_command);
  lua_setfield(L, -2, "command");
  lua_pushcfunction(L, resp_reader);
  lua_setfield(L, -2, "reader");
  lua_setfield(L, -2, "_resp");
}
