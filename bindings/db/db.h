/*
** db.h — declarations of bindings/db/: database clients on the engines'
** own C libraries (pg.c on libpq), standing on core/ alone: their sockets
** are watched by uv_poll handles of the loop, their protocol is driven by
** the Lua façade (lua/lasync/pg.lua).
*/
#ifndef LASYNC_DB_H
#define LASYNC_DB_H

#include "core/core.h"

/* pg.c: lasync.core._pg = { start, libpq_version } (for lasync.pg) */
LX_HIDDEN void lx_open_pg(lua_State *L);

#endif
