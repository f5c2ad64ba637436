/*
** embed.c — entry points of liblasync that set up a lua_State: preloading
** the core and the embedded Lua library, and running a main task.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lasync.h"
#include "lauxlib.h"
#include "lualib.h"
#include "embedded.h"

#include "core/core.h"
#include "thread/thread.h" /* lx_thread_openlibs */

/* package.preload loader for one embedded Lua file (upvalue: its source) */
static int load_embedded(lua_State *L) {
  const host_lua_source *src = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, src->code, src->len, src->chunkname) != LUA_OK)
    return lua_error(L);
  lua_pushvalue(L, 1); /* module name */
  lua_call(L, 1, 1);
  return 1;
}

void lasync_openlibs(lua_State *L) {
  const host_lua_source *src;
  lx_thread_openlibs = lasync_openlibs; /* lasync.Thread's states too */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lasync_core);
  lua_setfield(L, -2, "lasync.core");
  for (src = host_lua_sources; src->modname; src++) {
    lua_pushlightuserdata(L, (void *)src);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, src->modname);
  }
  lua_pop(L, 1);
}

int lasync_run(lua_State *L, int nargs) {
  luaL_requiref(L, "lasync.core", luaopen_lasync_core, 0);
  lua_pop(L, 1);
  if (lx_runtime_get(L)->loop) { /* an error status, not a panic */
    lua_settop(L, lua_gettop(L) - nargs - 1);
    lua_pushliteral(L, "lasync_run: an event loop is already running in "
                       "this state");
    lua_pushnil(L);
    return LUA_ERRRUN;
  }
  return lx_run_host_main(L, nargs);
}

/* {======================================================================
** Hosts: a lua_State with lasync on an event loop the application drives
** ======================================================================= */

struct lasync_host {
  lua_State *L;
  lx_runtime *rt;
  lx_loop *loop;
  int loop_ref; /* registry ref of its Loop object (freed by lua_close) */
  char *error;  /* the last error message, or NULL */
  int tasks;    /* registry ref of the table id -> task: the ids handed
                   out and not released (freed by lua_close) */
  int next_id;  /* the next id to try: ids are not reused until they wrap,
                   so a stale id is refused rather than naming a new task */
};

static void set_error(lasync_host *h, const char *msg) {
  size_t len = strlen(msg);
  char *copy = malloc(len + 1);
  free(h->error);
  h->error = copy;
  if (copy) memcpy(copy, msg, len + 1);
}


/* [-1, +0] the error on top (and a traceback, if given) as the message */
static void take_error(lasync_host *h, const char *traceback) {
  lua_State *L = h->L;
  const char *msg = lx_push_error_text(L, -1);
  if (traceback) {
    lua_pushfstring(L, "%s\n%s", msg, traceback);
    set_error(h, lua_tostring(L, -1));
    lua_pop(L, 1);
  } else {
    set_error(h, msg);
  }
  lua_pop(L, 2);
}

/* pcall'd: open the libraries and lasync, attach a loop on uv (1) */
static int host_open(lua_State *L) {
  lasync_host *h = lua_touserdata(L, 1);
  uv_loop_t *uv = lua_touserdata(L, 2);
  luaL_openlibs(L);
  lasync_openlibs(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lasync");
  lua_call(L, 1, 1);
  lua_setglobal(L, "lasync");
  lua_newtable(L);
  h->tasks = luaL_ref(L, LUA_REGISTRYINDEX);
  h->next_id = 1;
  h->rt = lx_runtime_get(L);
  h->loop = lx_loop_new(L, h->rt, uv);
  lx_loop_attach(L, lua_gettop(L));
  h->loop_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

lasync_host *lasync_host_new(uv_loop_t *uv) {
  lasync_host *h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  if ((h->L = luaL_newstate()) == NULL) {
    free(h);
    return NULL;
  }
  lua_pushcfunction(h->L, host_open);
  lua_pushlightuserdata(h->L, h);
  lua_pushlightuserdata(h->L, uv);
  if (lua_pcall(h->L, 2, 0, 0) != LUA_OK) {
    lua_close(h->L);
    free(h);
    return NULL;
  }
  return h;
}

lua_State *lasync_host_state(lasync_host *h) {
  return h->L;
}

uv_loop_t *lasync_host_loop(lasync_host *h) {
  return lx_loop_uv(h->loop);
}

const char *lasync_host_error(lasync_host *h) {
  return h->error ? h->error : "";
}

void lasync_host_set_warn(lasync_host *h, lasync_warn_fn fn, void *ud) {
  lasync_set_warn(h->L, fn, ud);
}

/*
** pcall'd: the function below the arguments becomes a task, entered in
** the id table under a free id; push the id
*/
static int host_spawn_cf(lua_State *L) {
  lasync_host *h = lua_touserdata(L, 1);
  int nargs = lua_gettop(L) - 2, id = h->next_id;
  lx_task_new(L, h->loop, 0, 2, nargs);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->tasks);
  while (lua_rawgeti(L, -1, id) != LUA_TNIL) { /* in use since a wrap */
    lua_pop(L, 1);
    id = id == INT_MAX ? 1 : id + 1;
    if (id == h->next_id) return luaL_error(L, "lasync_host_spawn: no free "
                                               "task id");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, id);
  h->next_id = id == INT_MAX ? 1 : id + 1;
  lua_pushinteger(L, id);
  return 1;
}

int lasync_host_spawn(lasync_host *h, int nargs) {
  lua_State *L = h->L;
  int id;
  lua_pushcfunction(L, host_spawn_cf);
  lua_pushlightuserdata(L, h);
  lua_rotate(L, -(nargs + 3), 2); /* before the function and arguments */
  if (lua_pcall(L, nargs + 2, 1, 0) != LUA_OK) {
    take_error(h, NULL);
    return 0;
  }
  id = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return id;
}

int lasync_host_dostring(lasync_host *h, const char *code, const char *name) {
  if (luaL_loadbuffer(h->L, code, strlen(code), name ? name : "=chunk") !=
      LUA_OK) {
    take_error(h, NULL);
    return 0;
  }
  return lasync_host_spawn(h, 0);
}

int lasync_host_dofile(lasync_host *h, const char *path) {
  if (luaL_loadfile(h->L, path) != LUA_OK) {
    take_error(h, NULL);
    return 0;
  }
  return lasync_host_spawn(h, 0);
}

/* [-0, +(0|1)] push the task of an id and return it; NULL if none */
static lx_future *push_task(lasync_host *h, int task) {
  lua_State *L = h->L;
  lx_future *f;
  if (task <= 0) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->tasks);
  lua_rawgeti(L, -1, task);
  lua_remove(L, -2);
  f = lx_testclass(L, h->rt, -1, LX_MT_TASK);
  if (f == NULL) lua_pop(L, 1);
  return f;
}

int lasync_host_result(lasync_host *h, int task, int *nresults) {
  lua_State *L = h->L;
  lx_future *f;
  int tidx;
  *nresults = 0;
  f = push_task(h, task);
  if (f == NULL) {
    set_error(h, "lasync_host_result: no such task");
    return LASYNC_ERROR;
  }
  tidx = lua_gettop(L);
  switch (f->state) {
  case LX_PENDING:
    lua_pop(L, 1);
    return LASYNC_PENDING;
  case LX_FINISHED:
    *nresults = lx_future_push_results(L, tidx);
    lua_remove(L, tidx);
    return LASYNC_OK;
  case LX_CANCELLED:
    lua_pop(L, 1);
    set_error(h, "the task was cancelled");
    return LASYNC_CANCELLED;
  default:
    lx_future_retrieved(f);
    lua_getiuservalue(L, tidx, LX_UV_RESULT);
    lua_getfield(L, tidx, "traceback"); /* the method */
    lua_pushvalue(L, tidx);
    lua_call(L, 1, 1);
    lua_insert(L, -2);
    take_error(h, lua_tostring(L, -2));
    lua_pop(L, 2);
    return LASYNC_ERROR;
  }
}

int lasync_host_release(lasync_host *h, int task) {
  lua_State *L = h->L;
  if (push_task(h, task) == NULL) {
    set_error(h, "lasync_host_release: no such task");
    return LASYNC_ERROR;
  }
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->tasks);
  lua_pushnil(L);
  lua_rawseti(L, -2, task);
  lua_pop(L, 1);
  return LASYNC_OK;
}

int lasync_host_run(lasync_host *h, uv_run_mode mode) {
  int pending = lx_loop_drive(h->loop, mode);
  if (pending < 0)
    set_error(h, "lasync_host_run: deadlock: tasks are waiting for "
                 "something that nothing left can complete");
  return pending;
}

/*
** The teardown lasync.run ends with (lx_loop_shutdown): the tasks still
** pending are cancelled and run until their cleanup is over, then the
** loop is closed; then the state.
*/
void lasync_host_destroy(lasync_host *h) {
  lua_State *L = h->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->loop_ref);
  lx_loop_shutdown(L, lua_gettop(L), 0, NULL);
  lua_pop(L, 1);
  lua_close(L); /* frees the loop */
  free(h->error);
  free(h);
}

/* }====================================================================== */
