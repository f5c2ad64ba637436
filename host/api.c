/*
** api.c — the functions of lasync.h that only pass through to the core:
** the public names (lasync_*) over internal ones (lx_*), so that nothing
** in bindings/ includes lasync.h.
*/
#include "lasync.h"
#include "lauxlib.h"

#include "core/core.h"

lasync_completion *lasync_completion_new(lua_State *L) {
  return (lasync_completion *)lx_completion_new(L);
}

int lasync_completion_send(lasync_completion *c, lasync_completion_fn fn,
                           void *ud) {
  return lx_completion_send((lx_completion *)c, fn, ud);
}

/* Before the core was loaded in L, load it now: it makes the runtime. */
void lasync_set_warn(lua_State *L, lasync_warn_fn fn, void *ud) {
  lx_runtime *rt = lx_runtime_get(L);
  if (rt == NULL) {
    luaL_requiref(L, "lasync.core", luaopen_lasync_core, 0);
    lua_pop(L, 1);
    rt = lx_runtime_get(L);
  }
  lx_set_warn(rt, fn, ud);
}

uv_loop_t *lasync_uv_loop(lua_State *L) {
  return lx_running_uv(L);
}

int lasync_is_interrupt(lua_State *L, int idx) {
  return lx_error_is(L, idx, LX_ERR_INTERRUPT);
}
