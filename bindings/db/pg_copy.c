/*
** pg_copy.c — COPY on a raw connection of lasync.pg, in libpq's
** non-blocking mode: the statement sent by the simple query protocol
** (PQsendQuery, which the pool's reset uses too: several statements in
** one string), rows sent (PQputCopyData, PQputCopyEnd) and read in chunks
** of several rows (PQgetCopyData). Never blocks: a call that would tells
** its caller, lua/lasync/pg_copy.lua, to wait for the socket.
*/
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

void lx_pg_copy_methods(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"send_simple", copy_send_simple},
    {"put_copy_data", copy_put_data},
    {"put_copy_end", copy_put_end},
    {"get_copy_data", copy_get_data},
    {"escape_literal", copy_escape_literal},
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
