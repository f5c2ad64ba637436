/*
** codec.h — declarations of bindings/codec/: data formats that stand on
** core/ alone (no loop, no I/O), so that the protocol layers and the host
** can use them. Today: JSON (json.c) and the Redis protocol (resp.c).
*/
#ifndef LASYNC_CODEC_H
#define LASYNC_CODEC_H

#include "core/core.h"

/* json.c: lasync.core.json = { encode, decode, null, array, object } */
LX_HIDDEN void lx_open_json(lua_State *L);
/* [-0, +1] push a new json table (as lx_open_json stores): for a host or
   a fuzz target that has no lasync.core module table */
LX_HIDDEN void lx_push_json(lua_State *L);

/* resp.c: lasync.core._resp = { command, reader } (RESP2 over hiredis's
   reply reader) */
LX_HIDDEN void lx_open_resp(lua_State *L);

#endif
