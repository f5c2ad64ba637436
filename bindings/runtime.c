/*
** runtime.c — the per-lua_State runtime and the module entry point
** luaopen_lasync_core. Owns the anchor table (pending tasks and scheduled
** callbacks live there), the checks every awaiting function starts with,
** and reporting of errors that nobody can catch.
*/
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "lasync.h"

#ifndef LASYNC_VERSION
#define LASYNC_VERSION "0.1.0"
#endif

static const char runtime_key = 'r'; /* registry: the runtime userdata */

/* The runtime of L; luaopen_lasync_core must have run. */
lx_runtime *lx_runtime_get(lua_State *L) {
  lx_runtime *rt;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key);
  rt = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return rt;
}

/* {======================================================================
** Anchors: one table holds every pending task and scheduled callback
** ======================================================================= */

int lx_anchor(lua_State *L, lx_runtime *rt, int idx) {
  int ref;
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  lua_pushvalue(L, idx);
  ref = luaL_ref(L, -2);
  lua_pop(L, 1);
  return ref;
}

/* Release an anchor; idempotent (OpenResty's ngx_http_lua_del_thread). */
void lx_unanchor(lua_State *L, lx_runtime *rt, int *ref) {
  if (*ref == LUA_NOREF) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  luaL_unref(L, -1, *ref);
  lua_pop(L, 1);
  *ref = LUA_NOREF;
}

void lx_push_anchored(lua_State *L, lx_runtime *rt, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  lua_rawgeti(L, -1, ref);
  lua_remove(L, -2);
}

/* }====================================================================== */

/* {======================================================================
** Checks shared by the module's functions
** ======================================================================= */

lx_loop *lx_running_loop(lua_State *L, lx_runtime *rt, const char *fname) {
  if (rt->loop == NULL)
    luaL_error(L, "lasync.%s: no running event loop: run this code with "
                  "lasync.run or the lasync command", fname);
  return rt->loop;
}

/* The task running in L, or an error naming `fname`. */
lx_task *lx_current_task(lua_State *L, lx_runtime *rt, const char *fname) {
  lx_task *t = rt->loop ? rt->loop->current : NULL;
  if (t && t->co == L) return t;
  if (t)
    luaL_error(L, "lasync.%s: cannot await in a coroutine nested inside a "
                  "task (only the task's own coroutine can await)", fname);
  luaL_error(L, "lasync.%s: not inside a task: run this code with "
                "lasync.run or the lasync command", fname);
  return NULL;
}

int lx_is_callable(lua_State *L, int idx) {
  if (lua_isfunction(L, idx)) return 1;
  if (luaL_getmetafield(L, idx, "__call") == LUA_TNIL) return 0;
  lua_pop(L, 1);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Reporting
** ======================================================================= */

static int tostring_cf(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/*
** Print an error nobody can catch on stderr: "lasync: what: message" and
** its traceback. Safe in __gc: a failing __tostring is not called again.
*/
void lx_report(lua_State *L, const char *what, int erridx,
               const char *traceback) {
  erridx = lua_absindex(L, erridx);
  lua_pushcfunction(L, tostring_cf);
  lua_pushvalue(L, erridx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)",
                    luaL_typename(L, erridx));
  }
  fprintf(stderr, "lasync: %s: %s\n", what, lua_tostring(L, -1));
  if (traceback) fprintf(stderr, "%s\n", traceback);
  fflush(stderr);
  lua_pop(L, 1);
}

/* }====================================================================== */

/* [-0, +0] set functions into the table on top, with the runtime upvalue */
void lx_setfuncs(lua_State *L, const luaL_Reg *l) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key);
  luaL_setfuncs(L, l, 1);
}

/* [-0, +0] create the metatable `name` with `meta` and methods `methods` */
void lx_newclass(lua_State *L, const char *name, const luaL_Reg *methods,
                 const luaL_Reg *meta) {
  luaL_newmetatable(L, name);
  lx_setfuncs(L, meta);
  lua_newtable(L);
  if (methods) lx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static int runtime_new(lua_State *L) {
  lx_runtime *rt = lua_newuserdatauv(L, sizeof *rt, 0);
  const char *debug = getenv("LASYNC_DEBUG");
  rt->loop = NULL;
  rt->debug = debug != NULL && *debug != '\0' && *debug != '0';
  lua_newtable(L);
  rt->anchors = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &runtime_key);
  return 0;
}

/* lasync.set_debug(enabled): debug mode for loops created from now on */
static int core_set_debug(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  rt->debug = lua_toboolean(L, 1);
  if (rt->loop) rt->loop->debug = (unsigned char)rt->debug;
  return 0;
}

LASYNC_API int luaopen_lasync_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"set_debug", core_set_debug},
    {NULL, NULL}
  };
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key) == LUA_TNIL)
    runtime_new(L);
  lua_pop(L, 1);
  lua_newtable(L);
  lx_open_errors(L);
  lx_open_loop(L);
  lx_open_timer(L);
  lx_open_future(L);
  lx_open_task(L);
  lx_open_gather(L);
  lx_open_run(L);
  lx_setfuncs(L, funcs);
  lua_pushliteral(L, LASYNC_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
