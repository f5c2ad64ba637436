/*
** db.h — declarations of bindings/db/: database clients on the engines'
** own C libraries (pg.c on libpq), standing on core/ alone: their sockets
** are watched by uv_poll handles of the loop, their protocol is driven by
** the Lua façade (lua/lasync/pg.lua).
*/
#ifndef LASYNC_DB_H
#define LASYNC_DB_H

#include "core/core.h"

/* pg.c: lasync.core._pg = { start, libpq_version, types } (for
   lasync.pg) */
LX_HIDDEN void lx_open_pg(lua_State *L);

#ifdef LIBPQ_FE_H
/* pg_types.c: [-0, +1] push the rows of r decoded by column type (NULL as
   the value at nullidx, json through the function at jsonidx, each row
   by the names of the array at namesidx or positional), protected: the
   lua_pcall status, the error pushed when it is not LUA_OK; positional
   PG_VALUE pushes the first row's first value alone (nil: no row) */
#define PG_VALUE 2
LX_HIDDEN int lx_pg_push_rows(lua_State *L, PGresult *r, int nullidx,
                              int jsonidx, int positional, int namesidx);
/* pg.c: the open PGconn of the raw connection at 1, or raise naming the
   method fname (for pg_copy.c) */
LX_HIDDEN PGconn *lx_pg_check(lua_State *L, const char *fname);
#endif
/* pg_types.c: [-0, +1] push {oid = name} of the types it decodes */
LX_HIDDEN void lx_pg_push_types(lua_State *L);
/* pg_copy.c: add the COPY methods to the table on top (the raw
   connection's methods) */
LX_HIDDEN void lx_pg_copy_methods(lua_State *L);

#endif
