/*
** repl.h — the REPL's terminal module, preloaded by the lasync command as
** "lasync.readline" (see repl.c and lua/lasync/repl.lua).
*/
#ifndef LASYNC_REPL_H
#define LASYNC_REPL_H

#include "lua.h"

int host_open_readline(lua_State *L);

#endif
