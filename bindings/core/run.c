/*
** run.c — lasync.run: run a function as the main task on a fresh loop,
** then cancel (and name) the tasks it left behind and close the loop
** (lx_loop_shutdown, which the embedding host's teardown shares). The
** lasync command runs scripts through lx_run_main too.
*/
#include <stdio.h>

#include "core/core.h"

/*
** Registry key: the main task of the loop lx_run_host_main started (the
** lasync command's), as light userdata, while it runs. lasync.run called
** from that task awaits its function instead of raising, so that a
** script written for lua5.4 (require "lasync"; lasync.run(main)) runs
** unchanged under the command.
*/
static const char host_main_key = 0;

/* pcall'd: run the loop at 1 until the main task at 2 is done */
static int run_until_main_done(lua_State *L) {
  int r = lx_loop_run(L, 1, 2, LX_RUN_UNTIL);
  if (r == LX_RUN_STOPPED)
    luaL_error(L, "lasync.run: the event loop was stopped before the main "
                  "task finished");
  if (r == LX_RUN_IDLE)
    luaL_error(L, "lasync.run: deadlock: the main task is waiting for "
                  "something that nothing left can complete (no tasks, "
                  "timers or I/O remain)");
  return 0;
}

/*
** [-0, +1] push "Task-2 (x.lua:4), worker (x.lua:9)": the tasks in the
** array at idx; with `fresh`, only those not cancelled yet (that leaves out
** main after a failed run)
*/
static void push_names(lua_State *L, int idx, int fresh) {
  luaL_Buffer b;
  int i, n = (int)lua_rawlen(L, idx), first = 1;
  idx = lua_absindex(L, idx);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    lx_task *t;
    lua_rawgeti(L, idx, i);
    t = lua_touserdata(L, -1);
    if (fresh && t->num_cancels) {
      lua_pop(L, 1);
      continue;
    }
    if (!first) luaL_addstring(&b, ", ");
    first = 0;
    lx_task_push_name(L, -1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
    luaL_addstring(&b, " (");
    lx_task_where(L, t);
    luaL_addvalue(&b);
    luaL_addstring(&b, ")");
  }
  luaL_pushresult(&b);
}

/*
** pcall'd: cancel the tasks still pending on the loop at 1, and wait; with
** 2 true, name them (those not cancelled before) in one warning, and those
** that did not finish in another. A loop attached for a host is detached:
** the run attaches it again.
*/
static int cancel_leftovers(lua_State *L) {
  lx_loop *loop = lx_loop_check(L, 1);
  int i, n, listed = 0, report = lua_toboolean(L, 2);
  lua_settop(L, 1);
  if (loop->running) lx_loop_detach(L, loop);
  if (loop->ntasks == 0) return 0;
  n = lx_push_pending_tasks(L, loop); /* at 2 */
  for (i = 1; i <= n && report; i++) {
    lua_rawgeti(L, 2, i);
    if (((lx_task *)lua_touserdata(L, -1))->num_cancels == 0) listed++;
    lua_pop(L, 1);
  }
  if (listed > 0) {
    push_names(L, 2, 1);
    lx_warn(loop->rt, "cancelling %d pending task%s at exit: %s", listed,
            listed == 1 ? "" : "s", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    lx_task_cancel(L, -1, 0);
    lua_pop(L, 1);
  }
  if (lx_loop_run(L, 1, 0, LX_RUN_DRAIN) != LX_RUN_DONE && report) {
    lx_push_pending_tasks(L, loop);
    push_names(L, -1, 0);
    lx_warn(loop->rt, "%u task%s did not finish after being cancelled: %s",
            loop->ntasks, loop->ntasks == 1 ? "" : "s", lua_tostring(L, -1));
  }
  return 0;
}

/*
** [-(nargs+1), +n] run the function below the nargs values on top as the
** main task of a new loop. On success, return LUA_OK with the task's
** results in place of the function and arguments (their number is the
** stack growth + nargs + 1). On failure, return the error status with the
** error and its traceback (a string, or nil) in their place. With `host`,
** lasync.run called from the main task awaits its function.
*/
static int run_main(lua_State *L, int nargs, int host) {
  lx_runtime *rt = lx_runtime_get(L);
  int base = lua_gettop(L) - nargs, loopidx, tidx, status;
  void *interrupt;
  lx_loop *loop;
  if (rt->loop)
    luaL_error(L, "lasync.run: cannot be called while an event loop is "
                  "running (from a task, await the function instead)");
  loop = lx_loop_new(L, rt, NULL);
  loopidx = lua_gettop(L);
  lx_task_new(L, loop, loopidx, base, nargs);
  tidx = lua_gettop(L);
  lua_pushliteral(L, "main");
  lx_task_set_name(L, tidx);
  interrupt = lx_interrupt_start(loop, lua_touserdata(L, tidx));
  if (host) {
    lua_pushlightuserdata(L, lua_touserdata(L, tidx));
    lua_rawsetp(L, LUA_REGISTRYINDEX, &host_main_key);
  }
  lua_pushcfunction(L, run_until_main_done);
  lua_pushvalue(L, loopidx);
  lua_pushvalue(L, tidx);
  status = lua_pcall(L, 2, 0, 0); /* error: at tidx + 1 */
  if (host) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &host_main_key);
  }
  lx_task_cancel(L, tidx, 0); /* the loop failed: main is not a leftover */
  lx_loop_shutdown(L, loopidx, 1, interrupt);
  if (rt->unretrieved > 0)
    lua_gc(L, LUA_GCCOLLECT); /* report failed tasks nobody awaited now */
  if (status != LUA_OK) {
    lua_pushnil(L); /* no task traceback: the loop itself failed */
  } else {
    lx_future *main = lua_touserdata(L, tidx);
    if (main->state == LX_FINISHED) {
      int n = lx_future_push_results(L, tidx);
      lua_rotate(L, base, n);
      lua_settop(L, base + n - 1);
      return LUA_OK;
    }
    lx_future_retrieved(main);
    if (main->state == LX_FAILED)
      lua_getiuservalue(L, tidx, LX_UV_RESULT);
    else if (rt->interrupted) /* Ctrl-C cancelled it: asyncio raises */
      lx_error_new(L, LX_ERR_INTERRUPT, "interrupted"); /* KeyboardInterrupt */
    else
      lx_future_push_cancelled_error(L, tidx);
    lua_getiuservalue(L, tidx, LX_UV_EXTRA);
    lua_getfield(L, -1, "traceback");
    lua_remove(L, -2);
    status = LUA_ERRRUN;
  }
  lua_rotate(L, base, 2);
  lua_settop(L, base + 1);
  return status;
}

/*
** The end of a loop as asyncio.run ends it, for lasync.run and the host
** API (lasync_host_destroy): cancel the tasks still pending (with
** `report`, naming them in a warning first) and run the loop until their
** cleanup, which may await, is over; stop the default SIGINT `interrupt`
** (NULL: none); close the loop, and when it borrows the uv loop, run that
** without blocking until the close callbacks of its handles have run.
** Never raises: an error while cancelling is reported.
*/
void lx_loop_shutdown(lua_State *L, int loopidx, int report,
                      void *interrupt) {
  lx_loop *loop = lx_loop_check(L, loopidx);
  lua_pushcfunction(L, cancel_leftovers);
  lua_pushvalue(L, loopidx);
  lua_pushboolean(L, report);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    lx_report(L, "error while cancelling tasks at exit", -1, NULL);
    lua_pop(L, 1);
  }
  if (loop->running) lx_loop_detach(L, loop); /* the run above failed */
  lx_interrupt_stop(interrupt);
  lx_loop_close_wait(L, loop);
}

int lx_run_main(lua_State *L, int nargs) {
  return run_main(L, nargs, 0);
}

/* The same for lasync_run: lasync.run from this main task awaits. */
int lx_run_host_main(lua_State *L, int nargs) {
  return run_main(L, nargs, 1);
}

/* Whether L is the main task of lx_run_host_main, running. */
static int in_host_main(lua_State *L, lx_runtime *rt) {
  lx_task *t = rt->loop ? rt->loop->current : NULL;
  void *main;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &host_main_key);
  main = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return t != NULL && (void *)t == main && t->co == L;
}

static int run_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L);
}

/*
** lasync.run(main, ...) -> main's results; raises main's error. From the
** main task of lasync_run (the lasync command's), it awaits main(...).
*/
static int core_run(lua_State *L) {
  int top;
  if (!lx_is_callable(L, 1))
    luaL_error(L, "lasync.run: expected a function (got %s)",
               luaL_typename(L, 1));
  if (in_host_main(L, lx_runtime_get(L))) {
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, run_k);
    return lua_gettop(L);
  }
  top = lua_gettop(L);
  if (lx_run_main(L, top - 1) != LUA_OK) {
    lua_pop(L, 1); /* traceback: kept by the task, the error is unchanged */
    return lua_error(L);
  }
  return lua_gettop(L);
}

void lx_open_run(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"run", core_run},
    {NULL, NULL}
  };
  lx_setfuncs(L, funcs);
}
