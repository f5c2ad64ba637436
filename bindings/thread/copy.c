/*
** copy.c — values crossing between Lua states (worker threads): nil,
** booleans, numbers, strings and tables of those, nested, without cycles,
** and functions as bytecode whose upvalues may only be _ENV and the
** function itself (a recursive local function). Values are written into
** a flat byte buffer in one state and rebuilt in another (of this process,
** or of a worker process: wire.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thread/thread.h"

#define LX_COPY_DEPTH 100 /* nesting limit: tables in tables ... */

enum { T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STRING, T_TABLE, T_END,
       T_FUNCTION };

/* What a copied function's upvalue is set to in the other state. */
enum { UP_ENV, UP_SELF };

void lx_buf_init(lx_buf *b) {
  b->data = NULL;
  b->len = b->cap = b->pos = 0;
}

void lx_buf_free(lx_buf *b) {
  free(b->data);
  lx_buf_init(b);
}

/* Append n bytes; 0 on success, -1 when out of memory. */
static int put(lx_buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    char *data;
    while (cap < b->len + n) cap *= 2;
    if ((data = realloc(b->data, cap)) == NULL) return -1;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static int put_tag(lx_buf *b, int tag) {
  unsigned char c = (unsigned char)tag;
  return put(b, &c, 1);
}

static int put_size(lx_buf *b, size_t n) {
  return put(b, &n, sizeof n);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  return put(ud, p, sz);
}

/* {======================================================================
** Writing
** ======================================================================= */

typedef struct copy_ctx {
  lx_buf *b;
  const char *fname; /* for errors: "to_thread" */
  const char *what;  /* "argument #2", "result #1" */
  const char *where; /* "thread" or "process": the other side */
  int seen;          /* index of the table of tables being written */
} copy_ctx;

static void copy_error(lua_State *L, copy_ctx *c, const char *fmt,
                       const char *detail) {
  luaL_error(L, "lasync.%s: cannot copy %s to another %s: %s%s", c->fname,
             c->what, c->where, fmt, detail ? detail : "");
}

static void copy_oom(lua_State *L, copy_ctx *c) {
  luaL_error(L, "lasync.%s: out of memory", c->fname);
}

static void write_value(lua_State *L, copy_ctx *c, int idx, int depth);

/*
** A function as T_FUNCTION, the size of its bytecode, the bytecode, the
** number of upvalues and one UP_* byte each: _ENV becomes the other
** state's globals, an upvalue holding the function itself (local function
** f ... f() ... end) the rebuilt function. Any other upvalue is refused.
*/
static void write_function(lua_State *L, copy_ctx *c, int idx) {
  const char *name;
  int i;
  size_t at, len, nup;
  idx = lua_absindex(L, idx);
  if (lua_iscfunction(L, idx))
    copy_error(L, c, "it is a C function", NULL);
  for (i = 1; (name = lua_getupvalue(L, idx, i)) != NULL; i++) {
    int self = lua_rawequal(L, -1, idx);
    lua_pop(L, 1);
    if (strcmp(name, "_ENV") != 0 && !self)
      copy_error(L, c, "the function has upvalue ", name);
  }
  nup = (size_t)(i - 1);
  if (put_tag(c->b, T_FUNCTION) < 0) copy_oom(L, c);
  at = c->b->len;
  if (put_size(c->b, 0) < 0) copy_oom(L, c);
  lua_pushvalue(L, idx);
  if (lua_dump(L, dump_writer, c->b, 0) != 0)
    copy_oom(L, c);
  lua_pop(L, 1);
  len = c->b->len - at - sizeof len;
  /* the buffer is bytes: at may be misaligned for a size_t store */
  memcpy(c->b->data + at, &len, sizeof len);
  if (put_size(c->b, nup) < 0) copy_oom(L, c);
  for (i = 1; (name = lua_getupvalue(L, idx, i)) != NULL; i++) {
    int kind = strcmp(name, "_ENV") == 0 ? UP_ENV : UP_SELF;
    lua_pop(L, 1);
    if (put_tag(c->b, kind) < 0) copy_oom(L, c);
  }
}

static void write_table(lua_State *L, copy_ctx *c, int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > LX_COPY_DEPTH)
    copy_error(L, c, "tables are nested too deeply", NULL);
  if (lua_rawgetp(L, c->seen, lua_topointer(L, idx)) != LUA_TNIL)
    copy_error(L, c, "a table contains itself (a cycle)", NULL);
  lua_pop(L, 1);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, c->seen, lua_topointer(L, idx));
  if (put_tag(c->b, T_TABLE) < 0) copy_oom(L, c);
  luaL_checkstack(L, 4, NULL);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    write_value(L, c, -2, depth + 1);
    write_value(L, c, -1, depth + 1);
    lua_pop(L, 1);
  }
  lua_pushnil(L); /* the same table may appear again, just not inside */
  lua_rawsetp(L, c->seen, lua_topointer(L, idx));
  if (put_tag(c->b, T_END) < 0) copy_oom(L, c);
}

static void write_value(lua_State *L, copy_ctx *c, int idx, int depth) {
  lx_buf *b = c->b;
  int r = 0;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    r = put_tag(b, T_NIL);
    break;
  case LUA_TBOOLEAN:
    r = put_tag(b, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      r = put_tag(b, T_INT) | put(b, &i, sizeof i);
    } else {
      lua_Number n = lua_tonumber(L, idx);
      r = put_tag(b, T_FLOAT) | put(b, &n, sizeof n);
    }
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    r = put_tag(b, T_STRING) | put_size(b, len) | put(b, s, len);
    break;
  }
  case LUA_TTABLE:
    write_table(L, c, idx, depth);
    break;
  case LUA_TFUNCTION:
    copy_error(L, c, "it contains a function (only the function run can "
                     "be one)", NULL);
    break;
  default:
    copy_error(L, c, "it contains a ", luaL_typename(L, idx));
  }
  if (r < 0) copy_oom(L, c);
}

/*
** Append the n values from index first to b. When with_function, the
** value at first must be a function (and is the only one allowed): a
** missing one is refused here, before a worker would call nothing.
** Errors name fname and say which value failed, as `what #k` counting
** from base at first, and where it was bound ("to another thread", where =
** "thread").
*/
void lx_copy_out_to(lua_State *L, lx_buf *b, int first, int n,
                    int with_function, const char *fname, const char *what,
                    int base, const char *where) {
  copy_ctx c;
  char label[40];
  int i;
  first = lua_absindex(L, first);
  c.b = b;
  c.fname = fname;
  c.what = label;
  c.where = where;
  lua_newtable(L);
  c.seen = lua_gettop(L);
  if (with_function && (n < 1 || !lua_isfunction(L, first)))
    luaL_error(L, "lasync.%s: expected a function (got %s)", fname,
               n < 1 ? "no value" : luaL_typename(L, first));
  for (i = 0; i < n; i++) {
    snprintf(label, sizeof label, "%s #%d", what, base + i);
    if (i == 0 && with_function) {
      c.what = "the function";
      write_function(L, &c, first);
      c.what = label;
    } else {
      write_value(L, &c, first + i, 0);
    }
  }
  lua_pop(L, 1); /* seen */
}

/* lx_copy_out_to, bound for another thread */
void lx_copy_out(lua_State *L, lx_buf *b, int first, int n, int with_function,
                 const char *fname, const char *what) {
  lx_copy_out_to(L, b, first, n, with_function, fname, what, 1, "thread");
}

/*
** pcall'd: write the value at 3 to the buffer at 1, for the function named
** at 2, bound for another `where` at 4 (lx_copy_error_to)
*/
static int copy_error_as_is(lua_State *L) {
  lx_copy_out_to(L, lua_touserdata(L, 1), 3, 1, 0, lua_tostring(L, 2),
                 "error", 1, lua_tostring(L, 4));
  return 0;
}

/*
** [-0, +1] push what of the error at idx can cross: a table of its
** fields whose keys and values are strings, numbers or booleans, plus its
** class name (its metatable's __name) as `class`; for another value, a
** message naming its type. Never its tostring(): that would show an
** address in this state, meaningless in the other one.
*/
static void push_error_copyable(lua_State *L, int idx, const char *fname,
                                const char *where) {
  int t;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) {
    t = luaL_getmetafield(L, idx, "__name");
    lua_pushfstring(L, "lasync.%s: the error, a %s, cannot be copied to "
                       "another %s", fname, t == LUA_TSTRING
                           ? lua_tostring(L, -1) : luaL_typename(L, idx),
                    where);
    if (t != LUA_TNIL) lua_remove(L, -2); /* __name */
    return;
  }
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2), vt = lua_type(L, -1);
    if ((kt == LUA_TSTRING || kt == LUA_TNUMBER || kt == LUA_TBOOLEAN) &&
        (vt == LUA_TSTRING || vt == LUA_TNUMBER || vt == LUA_TBOOLEAN)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4); /* copy[key] = value */
    } else {
      lua_pop(L, 1);
    }
  }
  t = luaL_getmetafield(L, idx, "__name");
  if (t == LUA_TSTRING && lua_getfield(L, -2, "class") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_setfield(L, -2, "class");
  } else if (t != LUA_TNIL) {
    lua_pop(L, t == LUA_TSTRING ? 2 : 1); /* [class,] __name */
  }
}

/*
** Append the error at idx to b, for `fname`, bound for another `where`:
** the error itself when it can be copied, else what of it can
** (push_error_copyable). Raises only when out of memory.
*/
void lx_copy_error_to(lua_State *L, lx_buf *b, int idx, const char *fname,
                      const char *where) {
  size_t len = b->len;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 6, NULL);
  lua_pushcfunction(L, copy_error_as_is);
  lua_pushlightuserdata(L, b);
  lua_pushstring(L, fname);
  lua_pushvalue(L, idx);
  lua_pushstring(L, where);
  if (lua_pcall(L, 4, 0, 0) == LUA_OK) return;
  lua_pop(L, 1); /* why it cannot cross */
  b->len = len;  /* drop what the failed copy wrote */
  push_error_copyable(L, idx, fname, where);
  lx_copy_out_to(L, b, -1, 1, 0, fname, "error", 1, where);
  lua_pop(L, 1);
}

/* lx_copy_error_to, bound for another thread */
void lx_copy_error(lua_State *L, lx_buf *b, int idx, const char *fname) {
  lx_copy_error_to(L, b, idx, fname, "thread");
}

/*
** After a job's protected call failed in a thread's or worker's state:
** its error on top is either the job's {error, traceback} or the message
** of a failed copy of its results. Leave the error and the traceback (nil
** for a copy failure) as the two top values; return the error's index.
*/
int lx_job_error(lua_State *L) {
  if (lua_istable(L, -1) && lua_rawgeti(L, -1, 2) == LUA_TSTRING) {
    lua_rawgeti(L, -2, 1);
    lua_insert(L, -2);
  } else {
    if (lua_istable(L, -1)) lua_pop(L, 1);
    lua_pushnil(L);
  }
  return lua_gettop(L) - 1;
}

/* }====================================================================== */

/* {======================================================================
** Reading
** ======================================================================= */

static int get_tag(lx_buf *b) {
  return b->pos < b->len ? (unsigned char)b->data[b->pos++] : -1;
}

static void get(lx_buf *b, void *p, size_t n) {
  memcpy(p, b->data + b->pos, n);
  b->pos += n;
}

/* [-0, +1] rebuild the next value; 0 if the buffer is exhausted */
static int read_value(lua_State *L, lx_buf *b) {
  int tag = get_tag(b);
  luaL_checkstack(L, 3, NULL);
  switch (tag) {
  case T_NIL: lua_pushnil(L); return 1;
  case T_FALSE: lua_pushboolean(L, 0); return 1;
  case T_TRUE: lua_pushboolean(L, 1); return 1;
  case T_INT: {
    lua_Integer i;
    get(b, &i, sizeof i);
    lua_pushinteger(L, i);
    return 1;
  }
  case T_FLOAT: {
    lua_Number n;
    get(b, &n, sizeof n);
    lua_pushnumber(L, n);
    return 1;
  }
  case T_STRING: {
    size_t len;
    get(b, &len, sizeof len);
    lua_pushlstring(L, b->data + b->pos, len);
    b->pos += len;
    return 1;
  }
  case T_TABLE:
    lua_newtable(L);
    while (b->pos < b->len && (unsigned char)b->data[b->pos] != T_END) {
      read_value(L, b);
      read_value(L, b);
      lua_rawset(L, -3);
    }
    b->pos++; /* T_END */
    return 1;
  case T_FUNCTION: {
    size_t len, nup, i;
    get(b, &len, sizeof len);
    if (luaL_loadbufferx(L, b->data + b->pos, len, "=(worker function)",
                         "b") != LUA_OK)
      lua_error(L);
    b->pos += len;
    get(b, &nup, sizeof nup);
    for (i = 1; i <= nup; i++) { /* load set only upvalue 1, to _G */
      if (get_tag(b) == UP_SELF)
        lua_pushvalue(L, -1);
      else
        lua_pushglobaltable(L);
      lua_setupvalue(L, -2, (int)i);
    }
    return 1;
  }
  default:
    return 0;
  }
}

/* [-0, +n] rebuild every value left in b; return how many */
int lx_copy_in(lua_State *L, lx_buf *b) {
  int n = 0;
  while (read_value(L, b)) n++;
  return n;
}

/* Skip n bytes at *pos of b: 0 if fewer are left. */
static int check_skip(const lx_buf *b, size_t *pos, size_t n) {
  if (b->len - *pos < n) return 0;
  *pos += n;
  return 1;
}

/* Read a size at *pos of b into *n: 0 if it is not all there. */
static int check_size(const lx_buf *b, size_t *pos, size_t *n) {
  if (b->len - *pos < sizeof *n) return 0;
  memcpy(n, b->data + *pos, sizeof *n);
  *pos += sizeof *n;
  return 1;
}

/* Whether a whole value, no function, starts at *pos; move past it. */
static int check_value(const lx_buf *b, size_t *pos, int depth) {
  size_t n;
  if (*pos >= b->len || depth > LX_COPY_DEPTH + 1) return 0;
  switch ((unsigned char)b->data[(*pos)++]) {
  case T_NIL: case T_FALSE: case T_TRUE:
    return 1;
  case T_INT:
    return check_skip(b, pos, sizeof(lua_Integer));
  case T_FLOAT:
    return check_skip(b, pos, sizeof(lua_Number));
  case T_STRING:
    return check_size(b, pos, &n) && check_skip(b, pos, n);
  case T_TABLE:
    while (*pos < b->len && (unsigned char)b->data[*pos] != T_END)
      if (!check_value(b, pos, depth + 1) || !check_value(b, pos, depth + 1))
        return 0;
    return check_skip(b, pos, 1); /* T_END */
  default: /* T_FUNCTION (never loaded from another process), garbage */
    return 0;
  }
}

/*
** Whether the bytes of b from b->pos are whole values without functions,
** as lx_copy_out writes them: what another process sent is checked before
** lx_copy_in trusts it (a bad size would read out of bounds).
*/
int lx_copy_check(const lx_buf *b) {
  size_t pos = b->pos;
  while (pos < b->len)
    if (!check_value(b, &pos, 0)) return 0;
  return 1;
}

/* }====================================================================== */
