/*
** lua_cover.h — Lua line coverage for libFuzzer. Debian's liblua is not
** instrumented, so a target whose logic is Lua code (the form and url
** parsers) shows libFuzzer only lasync's C and gets no guidance; this
** hook hashes each pair (previous line, line) of the Lua code run into
** libFuzzer's extra counters, which it treats like its own edges.
*/
#ifndef LASYNC_LUA_COVER_H
#define LASYNC_LUA_COVER_H

#include "lua.h"

/* Count the lines run in L and in the coroutines made from it later (a
   new thread inherits its creator's hook). */
void luacover_attach(lua_State *L);

#endif
