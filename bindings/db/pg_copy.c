/*
** pg_copy.c — COPY on a raw connection of lasync.pg, in libpq's
** non-blocking mode: the statement sent by the simple query protocol
** (PQsendQuery, which the pool's reset uses too: several statements in
** one string), rows sent (PQputCopyData, PQputCopyEnd) and read in chunks
** of several rows (PQgetCopyData), and records encoded into COPY's text
** format. Never blocks: a call that would tells its caller,
** lua/lasync/pg_copy.lua, to wait for the socket.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db/db.h"

#define COPY_CHUNK 65536 /* get_copy_data gathers rows up to about this */

/* [-0, +2] nil and libpq's message: the connection failed */
static int copy_fail(lua_State *L, PGconn *pg) {
  lua_pushnil(L);
  lua_pushstring(L, PQerrorMessage(pg));
  return 2;
}

/*
** raw:send_simple(sql) -> flushed | nil, message: PQsendQuery, the simple
** query protocol (no parameters; several statements allowed, each with
** its result; not in pipeline mode). As raw:send, false asks for flush.
*/
static int copy_send_simple(lua_State *L) {
  PGconn *pg = lx_pg_check(L, "send_simple");
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  if (strlen(sql) != len)
    return luaL_error(L, "%s: the query contains a NUL byte",
                      lx_fname(L, NULL));
  if (!PQsendQuery(pg, sql)) return copy_fail(L, pg);
  lua_pushboolean(L, PQflush(pg) == 0);
  return 1;
}

/*
** raw:put_copy_data(chunk) -> true (queued) | false (libpq's buffer is
** full: wait until the socket is writable, flush, call again) | nil,
** message
*/
static int copy_put_data(lua_State *L) {
  PGconn *pg = lx_pg_check(L, "put_copy_data");
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int r;
  if (len > 0x7fffffff)
    return luaL_error(L, "%s: a chunk larger than 2 GiB",
                      lx_fname(L, NULL));
  r = PQputCopyData(pg, s, (int)len);
  if (r < 0) return copy_fail(L, pg);
  lua_pushboolean(L, r == 1);
  return 1;
}

/*
** raw:put_copy_end([errmsg]) -> true | false | nil, message: ends the
** data of a COPY FROM STDIN; with errmsg the server fails the COPY with
** it (nothing is stored) and the connection stays usable. Then flush, and
** read the COPY's result.
*/
static int copy_put_end(lua_State *L) {
  PGconn *pg = lx_pg_check(L, "put_copy_end");
  const char *msg = luaL_optstring(L, 2, NULL);
  int r = PQputCopyEnd(pg, msg);
  if (r < 0) return copy_fail(L, pg);
  lua_pushboolean(L, r == 1);
  return 1;
}

/*
** raw:get_copy_data() -> chunk (one or more rows, about COPY_CHUNK bytes
** at most, more for one longer row), and true when the COPY ended after
** them | false (no row has arrived: wait until the socket is readable,
** consume, call again) | true (the COPY is over: read its result) | nil,
** message. libpq reports the end once, hence the second value.
*/
static int copy_get_data(lua_State *L) {
  PGconn *pg = lx_pg_check(L, "get_copy_data");
  luaL_Buffer b;
  size_t got = 0;
  int r = 0;
  luaL_buffinit(L, &b);
  while (got < COPY_CHUNK) {
    char *row = NULL;
    r = PQgetCopyData(pg, &row, 1);
    if (r <= 0) break;
    /* luaL_addlstring may raise (memory): copy, then free libpq's row */
    lua_pushlstring(L, row, (size_t)r);
    PQfreemem(row);
    luaL_addvalue(&b);
    got += (size_t)r;
  }
  if (r == -2) return copy_fail(L, pg);
  if (got > 0) {
    luaL_pushresult(&b);
    lua_pushboolean(L, r == -1);
    return 2;
  }
  lua_pushboolean(L, r == -1);
  return 1;
}

/*
** raw:escape_literal(s) -> s as a quoted SQL literal, for the parameters
** of copy_from_query (COPY takes none): PQescapeLiteral
*/
static int copy_escape_literal(lua_State *L) {
  PGconn *pg = lx_pg_check(L, "escape_literal");
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  char *q = PQescapeLiteral(pg, s, len);
  if (q == NULL) return copy_fail(L, pg);
  lua_pushstring(L, q);
  PQfreemem(q);
  return 1;
}

/* {======================================================================
** Records in COPY's text format (copy_records_to_table)
** ======================================================================= */

/*
** A growing byte buffer in a userdata at stack slot idx, replaced by a
** larger one as it grows: the collector frees it whatever is raised.
** Not a luaL_Buffer, which must stay on top while the values it encodes
** are pushed and passed to Lua.
*/
typedef struct rowbuf {
  lua_State *L;
  int idx;
  char *p;
  size_t len, cap;
} rowbuf;

static char *rowbuf_reserve(rowbuf *b, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap * 2;
    char *p;
    while (cap - b->len < n) cap *= 2;
    p = lua_newuserdatauv(b->L, cap, 0);
    memcpy(p, b->p, b->len);
    lua_replace(b->L, b->idx);
    b->p = p;
    b->cap = cap;
  }
  return b->p + b->len;
}

/* s with COPY's escapes: backslash, newline, carriage return, tab */
static void rowbuf_escaped(rowbuf *b, const char *s, size_t n) {
  char *w = rowbuf_reserve(b, 2 * n), *start = w;
  size_t i;
  for (i = 0; i < n; i++) {
    char c = s[i];
    switch (c) {
      case '\\': *w++ = '\\'; *w++ = '\\'; break;
      case '\n': *w++ = '\\'; *w++ = 'n'; break;
      case '\r': *w++ = '\\'; *w++ = 'r'; break;
      case '\t': *w++ = '\\'; *w++ = 't'; break;
      default: *w++ = c;
    }
  }
  b->len += (size_t)(w - start);
}

static void rowbuf_add(rowbuf *b, const char *s, size_t n) {
  memcpy(rowbuf_reserve(b, n), s, n);
  b->len += n;
}

/* the value on top, popped, as one field (row, col: for text_of) */
static void add_field(lua_State *L, rowbuf *b, lua_Integer row, int col) {
  char num[64];
  int n;
  switch (lua_type(L, -1)) {
    case LUA_TNIL:
      rowbuf_add(b, "\\N", 2);
      break;
    case LUA_TBOOLEAN:
      rowbuf_add(b, lua_toboolean(L, -1) ? "t" : "f", 1);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, -1)) {
        n = snprintf(num, sizeof num, LUA_INTEGER_FMT,
                     (LUAI_UACINT)lua_tointeger(L, -1));
      } else {
        double d = (double)lua_tonumber(L, -1);
        if (isnan(d)) n = snprintf(num, sizeof num, "NaN");
        else if (isinf(d)) n = snprintf(num, sizeof num, "%sInfinity",
                                        d < 0 ? "-" : "");
        else n = snprintf(num, sizeof num, "%.17g", d);
      }
      rowbuf_add(b, num, (size_t)n);
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      rowbuf_escaped(b, s, len);
      break;
    }
    default: {
      size_t len;
      const char *s;
      if (lua_rawequal(L, -1, 5)) { /* pg.null */
        rowbuf_add(b, "\\N", 2);
        break;
      }
      lua_pushvalue(L, 6); /* text_of(value, row, col) -> text */
      lua_pushvalue(L, -2);
      lua_pushinteger(L, row);
      lua_pushinteger(L, col);
      lua_call(L, 3, 1);
      s = lua_tolstring(L, -1, &len);
      if (s == NULL)
        luaL_error(L, "%s: text_of must return a string", lx_fname(L, NULL));
      rowbuf_escaped(b, s, len);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/*
** raw:encode_records(records, from, width, null, text_of, base) -> chunk,
** next: records[from], records[from + 1], ... as lines of COPY's text
** format, up to about COPY_CHUNK bytes; next is the first record left
** (records[next] is nil at the end). width 0: each record's own length.
** nil and null are \N; strings, integers, floats (17 digits, NaN,
** Infinity), booleans are written here; any other value through
** text_of(value, row, col), row = base + its index, which returns its
** text or raises.
*/
static int copy_encode_records(lua_State *L) {
  lua_Integer i = lua_tointeger(L, 3), base = lua_tointeger(L, 7);
  lua_Integer width = lua_tointeger(L, 4);
  rowbuf b;
  lx_pg_check(L, "encode_records"); /* a raw connection, still open */
  if (!lua_istable(L, 2) || !lua_isinteger(L, 3) || !lua_isinteger(L, 4) ||
      !lua_isfunction(L, 6) || !lua_isinteger(L, 7))
    return luaL_error(L, "%s: expected records, from, width, null, "
                         "text_of and base", lx_fname(L, NULL));
  lua_settop(L, 7);
  b.L = L;
  b.p = lua_newuserdatauv(L, 2 * COPY_CHUNK, 0);
  b.idx = lua_gettop(L);
  b.len = 0;
  b.cap = 2 * COPY_CHUNK;
  while (b.len < COPY_CHUNK) {
    lua_Integer n, col;
    if (lua_geti(L, 2, i) == LUA_TNIL) {
      lua_pop(L, 1);
      break;
    }
    if (!lua_istable(L, -1))
      return luaL_error(L, "lasync.pg.Connection:copy_records_to_table: "
                           "record %I is a %s (expected an array of values)",
                        (lua_Integer)(base + i), luaL_typename(L, -1));
    n = width > 0 ? width : (lua_Integer)lua_rawlen(L, -1);
    for (col = 1; col <= n; col++) {
      if (col > 1) rowbuf_add(&b, "\t", 1);
      lua_geti(L, -1, col);
      add_field(L, &b, base + i, (int)col);
    }
    rowbuf_add(&b, "\n", 1);
    lua_pop(L, 1); /* the record */
    i++;
  }
  lua_pushlstring(L, b.p, b.len);
  lua_pushinteger(L, i);
  return 2;
}

/* }====================================================================== */

void lx_pg_copy_methods(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"send_simple", copy_send_simple},
    {"put_copy_data", copy_put_data},
    {"put_copy_end", copy_put_end},
    {"get_copy_data", copy_get_data},
    {"escape_literal", copy_escape_literal},
    {"encode_records", copy_encode_records},
    {NULL, NULL}
  };
  const luaL_Reg *r;
  lx_setfuncs(L, methods);
  for (r = methods; r->name; r++) { /* public names, for the errors */
    lua_getfield(L, -1, r->name);
    lx_name_function(L, -1, "lasync.pg.RawConnection:", r->name);
    lua_pop(L, 1);
  }
}
