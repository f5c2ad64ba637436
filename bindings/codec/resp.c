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

/* The uservalues of a reader: make_error, null, and frames, the arrays
   being filled (frames[d + 1] the one at depth d; frames[0] the reply) */
#define UV_MAKE_ERROR 1
#define UV_NULL 2
#define UV_FRAMES 3

/* An array declares its length before its elements arrive: the table is
   made for at most this many, so that a huge length (up to INT_MAX,
   hiredis's limit) costs memory only as its elements come */
#define PREALLOC_MAX 1024

typedef struct {
  redisReader *r;
  lua_State *L;   /* the state of the running next_reply, else NULL */
  int broken;     /* a next_reply ended by a Lua error inside hiredis */
  int failed;     /* make_error raised: its error is in frames[-1] */
  int deepest;    /* the deepest frame set by the reply being read */
  int frames;     /* the frames table's stack index while L is set */
} reader_box;

/* {======================================================================
** Replies built as Lua values by hiredis's reader itself: its callbacks
** (redisReplyObjectFunctions) push the value where it belongs, so that
** no redisReply tree is made and freed per reply. They run inside
** next_reply with the frames table at box->frames of box->L; an out-of-
** memory error there unwinds through hiredis, which then cannot go on:
** the reader is marked broken (box->broken) and refuses later calls.
** ======================================================================= */

/* The depth of task: 0 for a reply, 1 for an element of it, ... */
static int task_depth(const redisReadTask *task) {
  int d = 0;
  for (task = task->parent; task != NULL; task = task->parent) d++;
  return d;
}

/* [-1, +0] store the value on top where task says: frames[0] for a
   reply, else its array's slot (idx + 1) */
static void *place(const redisReadTask *task) {
  reader_box *box = (reader_box *)task->privdata;
  lua_State *L = box->L;
  if (task->parent == NULL) {
    lua_rawseti(L, box->frames, 0);
  } else {
    lua_rawgeti(L, box->frames, task_depth(task));
    lua_insert(L, -2);
    lua_rawseti(L, -2, (lua_Integer)task->idx + 1);
    lua_pop(L, 1);
  }
  return box; /* any pointer but NULL: hiredis only tests it */
}

static void *reply_string(const redisReadTask *task, char *str,
                          size_t len) {
  reader_box *box = (reader_box *)task->privdata;
  lua_State *L = box->L;
  if (task->type != REDIS_REPLY_ERROR) {
    lua_pushlstring(L, str, len);
    return place(task);
  }
  lua_getiuservalue(L, 1, UV_MAKE_ERROR);
  lua_pushlstring(L, str, len);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    /* kept for next_reply to raise; NULL makes hiredis stop */
    lua_rawseti(L, box->frames, -1);
    box->failed = 1;
    return NULL;
  }
  return place(task);
}

static void *reply_array(const redisReadTask *task, int elements) {
  reader_box *box = (reader_box *)task->privdata;
  lua_State *L = box->L;
  lua_createtable(L, elements < PREALLOC_MAX ? elements : PREALLOC_MAX, 0);
  if (elements > 0) { /* its elements come next, one level deeper */
    int d = task_depth(task) + 1;
    lua_pushvalue(L, -1);
    lua_rawseti(L, box->frames, d);
    if (d > box->deepest) box->deepest = d;
  }
  return place(task);
}

static void *reply_integer(const redisReadTask *task, long long value) {
  lua_pushinteger(((reader_box *)task->privdata)->L, (lua_Integer)value);
  return place(task);
}

/* A nil reply is nil; a nil element is the null sentinel, as nil would
   cut the array */
static void *reply_nil(const redisReadTask *task) {
  lua_State *L = ((reader_box *)task->privdata)->L;
  if (task->parent == NULL) lua_pushnil(L);
  else lua_getiuservalue(L, 1, UV_NULL);
  return place(task);
}

/* The values are Lua's: the collector frees them */
static void reply_free(void *obj) {
  (void)obj;
}

static redisReplyObjectFunctions reply_functions = {
  reply_string, reply_array, reply_integer, reply_nil, reply_free
};

/* }====================================================================== */

/* Write n in decimal at p; returns the end. No printf: this runs for
   every argument of every command. */
static char *put_size(char *p, size_t n) {
  char tmp[24];
  int i = 0;
  do {
    tmp[i++] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  while (i > 0) *p++ = tmp[--i];
  return p;
}

/* The decimal digits of n */
static size_t size_digits(size_t n) {
  size_t d = 1;
  while (n >= 10) {
    n /= 10;
    d++;
  }
  return d;
}

/* [-0, +1|3] resp.command(arg1, ...): the command's bytes. Strings go
   as they are, integers in decimal and floats with 17 digits, so that
   they read back as the same double. Anything else is not raised here
   but returned as nil, its index and its type (0 when no argument is
   given), so that the Lua caller raises naming its public function.
   The size is known before anything is written: one buffer, the size of
   the result, and no format parsing. */
static int resp_command(lua_State *L) {
  int n = lua_gettop(L), i;
  size_t total = 3 + size_digits((size_t)n); /* "*<n>\r\n" */
  luaL_Buffer b;
  char *p;
  if (n < 1) {
    lua_pushnil(L);
    lua_pushinteger(L, 0);
    lua_pushliteral(L, "no value");
    return 3;
  }
  for (i = 1; i <= n; i++) {
    size_t len;
    if (lua_type(L, i) == LUA_TNUMBER) {
      if (!lua_isinteger(L, i)) { /* "%.14g" would lose digits */
        char num[64];
        lua_pushlstring(L, num, (size_t)snprintf(num, sizeof num, "%.17g",
                        (double)lua_tonumber(L, i)));
        lua_replace(L, i);
      } else {
        lua_tolstring(L, i, &len); /* in place: a string from now on */
      }
    } else if (lua_type(L, i) != LUA_TSTRING) {
      lua_pushnil(L);
      lua_pushinteger(L, i);
      lua_pushstring(L, luaL_typename(L, i));
      return 3;
    }
    lua_tolstring(L, i, &len);
    total += 1 + size_digits(len) + 2 + len + 2; /* "$<len>\r\n<s>\r\n" */
  }
  p = luaL_buffinitsize(L, &b, total);
  *p++ = '*';
  p = put_size(p, (size_t)n);
  *p++ = '\r';
  *p++ = '\n';
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s = lua_tolstring(L, i, &len);
    *p++ = '$';
    p = put_size(p, len);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, s, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
  }
  luaL_pushresultsize(&b, total);
  return 1;
}

/* [-0, +1] resp.reader(make_error, null): a new reader. make_error(msg)
   turns an error reply into a value (a lasync.redis.Error); null stands
   for a nil element inside an array, where nil would cut the array. */
static int resp_reader(lua_State *L) {
  reader_box *box;
  lx_checktype(L, 1, LUA_TFUNCTION);
  if (lua_isnone(L, 2)) lx_argerror(L, 2, "value expected");
  box = (reader_box *)lua_newuserdatauv(L, sizeof *box, 3);
  memset(box, 0, sizeof *box);
  luaL_setmetatable(L, READER_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_MAKE_ERROR);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, UV_NULL);
  lua_createtable(L, 8, 1);
  lua_setiuservalue(L, -2, UV_FRAMES);
  box->r = redisReaderCreateWithFunctions(&reply_functions);
  if (box->r == NULL) return luaL_error(L, "not enough memory");
  box->r->privdata = box;
  return 1;
}

/* The reader at index 1, or an error naming fname (the method) */
static reader_box *check_reader(lua_State *L, const char *fname) {
  reader_box *box = (reader_box *)luaL_testudata(L, 1, READER_MT);
  if (box == NULL)
    luaL_error(L, "%s: expected a lasync.redis.reader as self (got %s)",
               fname, luaL_typename(L, 1));
  if (box->r == NULL) luaL_error(L, "%s: the reader is closed", fname);
  if (box->broken || box->L != NULL)
    luaL_error(L, "%s: the reader is broken (an error while it parsed)",
               fname);
  return box;
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

/* [-0, +1|0] the next complete reply pushed: 1; none yet: 0 (nothing
   pushed); a protocol error: -1, hiredis's message pushed. An error of
   make_error is raised, and the reader is broken from then on. Uses
   one more slot: the frames table, pushed first and left below. */
static int next_reply(lua_State *L, reader_box *box) {
  void *rep = NULL;
  int st;
  lua_getiuservalue(L, 1, UV_FRAMES);
  box->frames = lua_gettop(L);
  box->L = L; /* while set, the reader counts as broken if this unwinds */
  st = redisReaderGetReply(box->r, &rep);
  box->L = NULL;
  if (st != REDIS_OK) {
    if (box->failed) {
      box->broken = 1;
      lua_rawgeti(L, box->frames, -1);
      lua_error(L);
    }
    lua_pushstring(L, box->r->errstr);
    return -1;
  }
  if (rep == NULL) return 0;
  lua_rawgeti(L, box->frames, 0);
  for (; box->deepest >= 0; box->deepest--) { /* let go of the reply */
    lua_pushnil(L);
    lua_rawseti(L, box->frames, box->deepest);
  }
  box->deepest = 0;
  return 1;
}

/* rd:get() -> true, value | false: the next complete reply, if any. A
   protocol error raises (the connection is then unusable), and so does
   an error of make_error. */
static int reader_get(lua_State *L) {
  reader_box *box = check_reader(L, "lasync.redis.reader:get");
  int st;
  lua_settop(L, 1);
  st = next_reply(L, box);
  if (st < 0)
    return luaL_error(L, "lasync.redis.reader:get: protocol error: %s",
                      lua_tostring(L, -1));
  lua_pushboolean(L, st);
  if (st == 0) return 1;
  lua_insert(L, -2);
  return 2;
}

/* rd:dispatch(pending, head) -> head[, err]: hands the complete replies
   read so far to the futures pending[head], pending[head + 1], ..., in
   order, removing them; returns the next head, and hiredis's message
   when a protocol error stopped it. An entry that is not a pending
   future (false, or the future of a caller cancelled meanwhile) takes
   its reply and drops it: a reply never reaches the next caller. This is
   lasync.redis's reader task's inner loop, in C: one call per read
   instead of a get, a done and a set_result per reply. */
static int reader_dispatch(lua_State *L) {
  reader_box *box = check_reader(L, "lasync.redis.reader:dispatch");
  lx_runtime *rt = lx_runtime_get(L);
  lua_Integer head;
  lx_checktype(L, 2, LUA_TTABLE);
  head = lx_checkinteger(L, 3);
  lua_settop(L, 3);
  for (;;) {
    lx_future *f;
    int st = next_reply(L, box); /* 4: frames, 5: the reply */
    if (st <= 0) {
      lua_pushinteger(L, head);
      if (st == 0) return 1;
      lua_pushvalue(L, 5);
      return 2;
    }
    lua_rawgeti(L, 2, head); /* 6: its future */
    lua_pushnil(L);
    lua_rawseti(L, 2, head);
    head++;
    f = lx_future_test(L, rt, 6);
    if (f != NULL && f->kind == LX_KIND_FUTURE && f->state == LX_PENDING) {
      if (f->loop == NULL && rt->loop) lx_future_bind(L, 6, rt->loop, 0);
      lua_pushvalue(L, 5);
      lx_future_settle(L, 6, LX_FINISHED, 1);
    }
    lua_settop(L, 3);
  }
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
  static const char *const methods[] = { "feed", "get", "dispatch", NULL };
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
  {"feed", reader_feed}, {"get", reader_get}, {"dispatch", reader_dispatch},
  {NULL, NULL}
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
