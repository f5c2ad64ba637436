/*
** embed.c — entry points of liblasync that set up a lua_State: preloading
** the core and the embedded Lua library, and running a main task.
*/
#include "lasync.h"
#include "lauxlib.h"
#include "embedded.h"

#include "../bindings/internal.h"

/* package.preload loader for one embedded Lua file (upvalue: its source) */
static int load_embedded(lua_State *L) {
  const lasync_lua_source *src = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, src->code, src->len, src->chunkname) != LUA_OK)
    return lua_error(L);
  lua_pushvalue(L, 1); /* module name */
  lua_call(L, 1, 1);
  return 1;
}

void lasync_openlibs(lua_State *L) {
  const lasync_lua_source *src;
  lx_thread_openlibs = lasync_openlibs; /* lasync.Thread's states too */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lasync_core);
  lua_setfield(L, -2, "lasync.core");
  for (src = lasync_lua_sources; src->modname; src++) {
    lua_pushlightuserdata(L, (void *)src);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, src->modname);
  }
  lua_pop(L, 1);
}

int lasync_is_interrupt(lua_State *L, int idx) {
  return lx_error_is(L, idx, LX_ERR_INTERRUPT);
}

int lasync_run(lua_State *L, int nargs) {
  luaL_requiref(L, "lasync.core", luaopen_lasync_core, 0);
  lua_pop(L, 1);
  return lx_run_main(L, nargs);
}
