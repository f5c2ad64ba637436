/*
** minimal.c — the smallest C application embedding lasync: it opens a Lua
** state, makes require "lasync" available without any LUA_PATH, and runs a
** chunk as the main task of an event loop (so the chunk may await).
** Build: cc minimal.c $(pkg-config --cflags --libs lua5.4 libuv) -llasync
*/
#include <stdio.h>

#include "lasync.h"
#include "lauxlib.h"
#include "lualib.h"

static const char script[] =
  "local lasync = require 'lasync'\n"
  "local name = ...\n"
  "local t = lasync.spawn(function(d) lasync.sleep(d) return 'slept' end, "
  "0.01)\n"
  "return 'hello ' .. name, t:await()\n";

int main(void) {
  int status;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lasync_openlibs(L);
  if (luaL_loadstring(L, script) != LUA_OK) {
    fprintf(stderr, "load: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_pushliteral(L, "embedder");
  status = lasync_run(L, 1); /* the chunk and its argument -> results */
  if (status != LUA_OK) {
    fprintf(stderr, "error: %s\n%s\n", luaL_tolstring(L, -2, NULL),
            lua_isstring(L, -2) ? lua_tostring(L, -2) : "");
    lua_close(L);
    return 1;
  }
  printf("%s, %s\n", lua_tostring(L, -2), lua_tostring(L, -1));
  lua_close(L);
  return 0;
}
