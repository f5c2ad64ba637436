/*
** task.c — tasks: a future plus a coroutine, stepped by the loop's ready
** queue. Owns creating, stepping and finishing tasks, cancellation and
** suspension (lx_suspend), tracebacks across awaits, and the Task methods.
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"


static void task_step(lua_State *L, lx_loop *loop, lx_ready *node);

/* {======================================================================
** Names, extras and tracebacks
** ======================================================================= */

/* [-0, +1] push the task's extra table; create it if `create` (else nil) */
static int push_extra(lua_State *L, int tidx, int create) {
  if (lua_getiuservalue(L, tidx, LX_UV_EXTRA) == LUA_TTABLE || !create)
    return lua_istable(L, -1);
  lua_pop(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, tidx, LX_UV_EXTRA);
  return 1;
}

/* [-0, +1] push the extra field `k`, or nil */
static int get_extra(lua_State *L, int tidx, const char *k) {
  if (!push_extra(L, tidx, 0)) return LUA_TNIL; /* leaves nil */
  lua_getfield(L, -1, k);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

/* [-1, +0] set the extra field `k` to the value on top */
static void set_extra(lua_State *L, int tidx, const char *k) {
  tidx = lua_absindex(L, tidx);
  push_extra(L, tidx, 1);
  lua_insert(L, -2);
  lua_setfield(L, -2, k);
  lua_pop(L, 1);
}

void lx_task_push_name(lua_State *L, int tidx) {
  lx_task *t = lua_touserdata(L, tidx);
  if (get_extra(L, lua_absindex(L, tidx), "name") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushfstring(L, "Task-%d", (int)t->id);
  }
}

/* Is `source` one of lasync's own Lua files ("@.../lasync/init.lua")? */
static int is_lasync_source(const char *source) {
  size_t n = strlen(source);
  const char *end = source + n - 4, *p = end;
  if (n < 4 || strcmp(end, ".lua") != 0) return 0;
  while (p > source && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) p--;
  return p < end && p - source >= 7 && memcmp(p - 7, "lasync/", 7) == 0;
}

/*
** [-0, +1] push where the task is: "source:line" of the innermost Lua
** function on its stack outside lasync's own Lua files (where the user
** awaited), "not started", or "?". The one answer for t:where(),
** lasync.tasks() and the reports (leftover tasks, slow steps).
*/
void lx_task_where(lua_State *L, lx_task *t) {
  lua_Debug ar;
  int level;
  if (!t->started && t->fut.state == LX_PENDING) {
    lua_pushliteral(L, "not started");
    return;
  }
  if (t->co)
    for (level = 0; lua_getstack(t->co, level, &ar); level++) {
      lua_getinfo(t->co, "Sl", &ar);
      if (ar.currentline > 0 && !is_lasync_source(ar.source)) {
        lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
        return;
      }
    }
  lua_pushliteral(L, "?");
}

/* The running task t re-raises the error of the failed task at fidx. */
void lx_task_note_cause(lua_State *L, lx_task *t, int fidx) {
  fidx = lua_absindex(L, fidx);
  lx_push_anchored(L, t->fut.loop->rt, t->ref);
  lua_pushvalue(L, fidx);
  set_extra(L, -2, "cause");
  lua_pop(L, 1);
}

/*
** [-0, +1] push the traceback of failed task t (error at erridx, its
** userdata at tidx): its own frames, and, when it failed by re-raising the
** error of a task it awaited, that task's traceback first.
*/
static void failure_traceback(lua_State *L, lx_task *t, int tidx,
                              int erridx) {
  int top = lua_gettop(L);
  const char *own, *cause = NULL;
  luaL_checkstack(L, 8, NULL);
  if (get_extra(L, tidx, "noted_error") != LUA_TNIL &&
      lua_rawequal(L, -1, erridx) &&
      get_extra(L, tidx, "noted_traceback") == LUA_TSTRING) {
    /* re-raised by lasync's Lua side: where it began */
  } else {
    luaL_traceback(L, t->co, NULL, 0);
  }
  own = lua_tostring(L, -1);
  if (strncmp(own, "stack traceback:", 16) == 0) own += 16;
  if (get_extra(L, tidx, "cause") == LUA_TUSERDATA) { /* an awaited task */
    int causeidx = lua_gettop(L);
    lua_getiuservalue(L, causeidx, LX_UV_RESULT);
    if (lua_rawequal(L, -1, erridx) &&
        get_extra(L, causeidx, "traceback") == LUA_TSTRING)
      cause = lua_tostring(L, -1); /* its error is ours: its frames first */
  }
  lx_task_push_name(L, tidx);
  if (cause)
    lua_pushfstring(L, "%s\nawaited by task '%s':%s", cause,
                    lua_tostring(L, -1), own);
  else
    lua_pushfstring(L, "stack traceback of task '%s':%s", lua_tostring(L, -1),
                    own);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* }====================================================================== */

/* {======================================================================
** Creating, stepping and finishing
** ======================================================================= */

/*
** [-0, +1] push a new task running the function at fnidx with the nargs
** values after it, on `loop` (Loop object at loopidx; 0: the running
** loop). It is anchored, and starts on the loop's next batch.
*/
lx_task *lx_task_new(lua_State *L, lx_loop *loop, int loopidx, int fnidx,
                     int nargs) {
  lx_task *t;
  lua_State *co;
  int i;
  if (loop->closed || loop->closing)
    luaL_error(L, "lasync.create_task: the event loop is closed");
  fnidx = lua_absindex(L, fnidx);
  if (loopidx) loopidx = lua_absindex(L, loopidx);
  t = lua_newuserdatauv(L, sizeof *t, LX_TASK_NUV);
  memset(t, 0, sizeof *t);
  lx_future_init(&t->fut, NULL, LX_KIND_TASK);
  lx_setclass(L, loop->rt, LX_MT_TASK);
  lx_future_bind(L, -1, loop, loopidx);
  t->co = co = lua_newthread(L);
  lua_setiuservalue(L, -2, LX_UV_CORO);
  luaL_checkstack(L, nargs + 1, "too many arguments");
  if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "too many arguments");
  for (i = 0; i <= nargs; i++) lua_pushvalue(L, fnidx + i);
  lua_xmove(L, co, nargs + 1);
  lx_ready_init(&t->ready, task_step);
  t->ref = lx_anchor(L, loop->rt, -1);
  t->id = ++loop->next_task_id;
  loop->ntasks++;
  if (loop->debug) {
    lua_Debug ar;
    luaL_traceback(L, L, NULL, 1);
    set_extra(L, -2, "created");
    lua_pushvalue(L, fnidx);
    if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0) {
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
      set_extra(L, -2, "defined");
    }
  }
  lx_ready_push(loop, &t->ready);
  return t;
}

/*
** Check create_task's options table at optidx (read raw, as applying it
** does) before the task is made: a task made and then refused would run
** anyway. fname names the function in the errors ("create_task").
*/
void lx_task_check_options(lua_State *L, int optidx, const char *fname) {
  optidx = lua_absindex(L, optidx);
  lua_pushnil(L);
  while (lua_next(L, optidx)) {
    lua_pop(L, 1); /* the value */
    if (lua_type(L, -1) != LUA_TSTRING ||
        strcmp(lua_tostring(L, -1), "name") != 0) {
      int t = lua_type(L, -1);
      if (t == LUA_TSTRING)
        lua_pushfstring(L, "'%s'", lua_tostring(L, -1));
      else if (t == LUA_TNUMBER || t == LUA_TBOOLEAN)
        lua_pushfstring(L, "[%s]", luaL_tolstring(L, -1, NULL));
      else
        lua_pushfstring(L, "[%s]", luaL_typename(L, -1));
      luaL_error(L, "lasync.%s: unknown option %s (options are named, as "
                    "in {name = \"worker\"})", fname, lua_tostring(L, -1));
    }
  }
  lua_pushliteral(L, "name");
  if (lua_rawget(L, optidx) != LUA_TNIL && !lua_isstring(L, -1))
    luaL_error(L, "lasync.%s: option 'name' must be a string (got %s)",
               fname, lx_typename(L, -1));
  lua_pop(L, 1);
}

/* Apply create_task's options table at optidx, checked by
   lx_task_check_options, to the task at tidx. */
void lx_task_apply_options(lua_State *L, int tidx, int optidx) {
  tidx = lua_absindex(L, tidx);
  lua_pushliteral(L, "name");
  if (lua_rawget(L, optidx) != LUA_TNIL)
    set_extra(L, tidx, "name");
  else
    lua_pop(L, 1);
}

/*
** Take t off what it is suspended on, if anything (the kind's release),
** and forget the kind: it will not be woken by it any more, and its
** continuation will not run. If it was woken already, what the wake-up
** handed over to the continuation is freed (the kind's forget).
*/
void lx_task_release(lx_task *t) {
  const lx_awaitable *a = t->awaiting;
  t->awaiting = NULL;
  if (a == NULL) return;
  if ((a->release == NULL || !a->release(t)) && a->forget) a->forget(t);
}

/* Unlink t from everything of its loop: it is done, or the loop closes. */
static void task_release(lua_State *L, lx_task *t) {
  lx_loop *loop = t->fut.loop;
  lx_task_release(t);
  lx_unanchor(L, loop->rt, &t->ref);
  if (--loop->ntasks == 0 && loop->drain) { /* lx_loop_run's LX_RUN_DRAIN */
    loop->stopping = 1;
    uv_stop(loop->uv);
  }
}

void lx_task_detach(lua_State *L, lx_task *t) {
  task_release(L, t);
}

static void clear_coroutine(lua_State *L, lx_task *t, int tidx) {
  lua_pushnil(L);
  lua_setiuservalue(L, tidx, LX_UV_CORO);
  t->co = NULL;
}

/* [-0, +1] push the error of a coroutine that yielded outside an await */
static void bare_yield_error(lua_State *L) {
  lua_pushliteral(L, "coroutine.yield called in a task: use lasync.sleep(0) "
                     "to yield to the event loop");
}

/*
** Close the coroutine of a task that failed, was cancelled or yielded
** outside an await, as coroutine.wrap does: its pending to-be-closed
** variables are closed (they get the error at erridx). An error raised by
** a __close handler replaces the task's error, as in Lua.
*/
static void close_coroutine(lua_State *L, lua_State *co, int erridx) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  int status = lua_closethread(co, L);
#else
  int status = lua_resetthread(co);
#endif
  if (status != LUA_OK) {
    lua_xmove(co, L, 1);
    lua_replace(L, erridx);
  }
}

/*
** The coroutine of t returned (LUA_OK), raised an error, or yielded
** outside an await: settle the task. The task object is pushed from its
** anchor, which is then released.
*/
static void task_finish(lua_State *L, lx_loop *loop, lx_task *t, int status,
                        int nres) {
  lua_State *co = t->co;
  int tidx, erridx;
  if (status == LUA_OK && !lua_checkstack(L, nres + LUA_MINSTACK)) {
    lua_pop(co, nres); /* more than a Lua stack holds: fail the task */
    lua_pushliteral(co, "lasync: too many results to return from a task");
    status = LUA_ERRRUN;
  }
  lx_push_anchored(L, loop->rt, t->ref);
  tidx = lua_gettop(L);
  erridx = tidx + 1;
  task_release(L, t);
  if (status == LUA_OK) { /* returned; cancelled if asked after its last
                             await */
    int state = t->must_cancel ? LX_CANCELLED : LX_FINISHED;
    if (state == LX_CANCELLED) {
      lua_getiuservalue(L, tidx, LX_UV_RESULT); /* the cancel message */
      nres = 1;
    } else {
      lua_xmove(co, L, nres);
    }
    clear_coroutine(L, t, tidx);
    lx_future_settle(L, tidx, state, nres);
    lua_settop(L, tidx - 1);
    return;
  }
  if (status == LUA_YIELD) {
    bare_yield_error(L);
  } else { /* keep a copy on co: closing passes it to __close handlers */
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
  }
  if (!lx_error_is(L, erridx, LX_ERR_CANCELLED)) {
    failure_traceback(L, t, tidx, erridx); /* before closing unwinds it */
    set_extra(L, tidx, "traceback");
  }
  close_coroutine(L, co, erridx);
  if (lx_error_is(L, erridx, LX_ERR_CANCELLED)) {
    clear_coroutine(L, t, tidx);
    lua_getfield(L, erridx, "message");
    lx_future_settle(L, tidx, LX_CANCELLED, 1);
  } else {
    if (get_extra(L, tidx, "traceback") == LUA_TNIL) { /* from a __close */
      failure_traceback(L, t, tidx, erridx);
      set_extra(L, tidx, "traceback");
    }
    clear_coroutine(L, t, tidx);
    lua_settop(L, erridx);
    loop->rt->unretrieved++;
    lx_future_settle(L, tidx, LX_FAILED, 1);
  }
  lua_settop(L, tidx - 1);
}

static void warn_slow_step(lua_State *L, lx_loop *loop, lx_task *t,
                           uint64_t ns) {
  int top = lua_gettop(L);
  if (t->ref != LUA_NOREF) {
    lx_push_anchored(L, loop->rt, t->ref);
    lx_task_push_name(L, -1);
  } else {
    lua_pushfstring(L, "Task-%d", (int)t->id);
  }
  lx_task_where(L, t);
  if (strcmp(lua_tostring(L, -1), "?") == 0 && t->ref != LUA_NOREF) {
    if (get_extra(L, top + 1, "defined") == LUA_TSTRING)
      lua_replace(L, -2); /* it finished: where its function is defined */
    else
      lua_pop(L, 1); /* nil: a chunk or a C function, "?" it stays */
  }
  lx_warn(loop->rt, "task '%s' (%s) blocked the event loop for %.3f s",
          lua_tostring(L, -2), lua_tostring(L, -1), ns / 1e9);
  lua_settop(L, top);
}

/* Run the task until its next await (a ready-queue callback). */
static void task_step(lua_State *L, lx_loop *loop, lx_ready *node) {
  lx_task *t = lx_container_of(node, lx_task, ready);
  int status, nres, nargs = 0, debug = loop->debug;
  if (loop->closing || t->fut.state != LX_PENDING) return;
  if (!t->started) {
    t->started = 1;
    if (t->must_cancel) { /* cancelled before it ran: the body never runs */
      task_finish(L, loop, t, LUA_OK, 0);
      return;
    }
    nargs = lua_gettop(t->co) - 1;
  }
  loop->current = t;
  if (debug) loop->step_start = lx_now();
  status = lua_resume(t->co, L, nargs, &nres);
  loop->current = NULL;
  if (debug && lx_now() - loop->step_start >= LX_SLOW_STEP_NS)
    warn_slow_step(L, loop, t, lx_now() - loop->step_start);
  if (status == LUA_YIELD && t->in_await) return;
  task_finish(L, loop, t, status, nres);
}

/* }====================================================================== */

/* {======================================================================
** Suspending and cancelling
** ======================================================================= */

/*
** Undo what an await registered before it found that t cannot suspend:
** the waiter list or timer, the libuv request, the ready queue. The
** awaits check first (lx_check_await); this is the net under them.
*/
static void task_unsuspend(lx_task *t) {
  lx_loop *loop = t->fut.loop;
  lx_task_release(t);
  if (t->ready.next != LX_NOT_QUEUED) { /* sleep(0) queued it */
    lx_ready **p = &loop->ready_head, *prev = NULL;
    while (*p != NULL && *p != &t->ready) {
      prev = *p;
      p = &(*p)->next;
    }
    if (*p != NULL) {
      *p = t->ready.next;
      if (loop->ready_tail == &t->ready) loop->ready_tail = prev;
    }
    t->ready.next = LX_NOT_QUEUED;
  }
  t->in_await = 0;
  t->granted = 0;
}

/*
** Deliver a cancel request to the suspended task t through its kind: the
** kind passes it on (1), or t is taken off what it waits on, woken, and
** raises CancelledError when it runs (0).
*/
static int cancel_suspended(lua_State *L, lx_task *t, int msgidx) {
  const lx_awaitable *a = t->awaiting;
  if (a->cancel && a->cancel(L, t, msgidx)) return 1;
  if (a->release && a->release(t)) lx_ready_push(t->fut.loop, &t->ready);
  return 0;
}

/*
** The way back up, one for every suspension: the task runs again, woken
** by what it awaited (or by a cancel); forget the kind and run the
** continuation, which delivers the result (or, if t->must_cancel, raises
** CancelledError). Only the scheduler may resume a suspended task
** (task_step makes it the loop's current task first): resumed by anyone
** else (coroutine.resume of t:get_coro()), the task would run its
** continuation with nothing to deliver and leave its registration behind.
** Then it yields straight back, unchanged.
*/
static int suspend_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  if (t->fut.loop->current != t) {
    lua_settop(L, t->suspend_top); /* drop what the stranger passed */
    return lua_yieldk(L, 0, ctx, suspend_k);
  }
  t->awaiting = NULL;
  t->in_await = 0;
  return t->k(L, status, ctx);
}

/*
** The way down, one for every suspension: suspend the running task t,
** registered already with what it awaits (of kind a), until that wakes it;
** `k` (its context is t) then continues the awaiting C function. A cancel
** requested while t was running is delivered now, as asyncio's
** Task.__step does.
*/
int lx_suspend(lua_State *L, lx_task *t, const lx_awaitable *a,
               lua_KFunction k) {
  t->awaiting = a;
  if (!lua_isyieldable(L)) { /* a path that skipped lx_check_await */
    task_unsuspend(t);
    return luaL_error(L, "%s: " LX_CANNOT_AWAIT, lx_fname(L, NULL));
  }
  t->in_await = 1;
  if (t->must_cancel) {
    int msgidx;
    lx_push_anchored(L, t->fut.loop->rt, t->ref);
    lua_getiuservalue(L, -1, LX_UV_RESULT);
    msgidx = lua_gettop(L);
    if (cancel_suspended(L, t, msgidx)) t->must_cancel = 0;
    lua_pop(L, 2);
  }
  t->k = k;
  t->suspend_top = lua_gettop(L);
  return lua_yieldk(L, 0, (lua_KContext)t, suspend_k);
}

/* In the task's coroutine: raise CancelledError with its cancel message. */
int lx_task_raise_cancelled(lua_State *L, lx_task *t) {
  luaL_checkstack(L, 4, NULL);
  t->must_cancel = 0;
  lx_push_anchored(L, t->fut.loop->rt, t->ref);
  lua_getiuservalue(L, -1, LX_UV_RESULT);
  lx_error_newv(L, LX_ERR_CANCELLED, -1);
  return lua_error(L);
}

/* Request cancellation of the task at tidx (message at msgidx, or 0). */
int lx_task_cancel(lua_State *L, int tidx, int msgidx) {
  lx_task *t = lua_touserdata(L, tidx);
  if (t->fut.state != LX_PENDING) return 0;
  luaL_checkstack(L, 4, NULL); /* cancels recurse through awaited tasks */
  tidx = lua_absindex(L, tidx);
  t->num_cancels++;
  if (msgidx)
    lua_pushvalue(L, msgidx);
  else
    lua_pushnil(L);
  lua_setiuservalue(L, tidx, LX_UV_RESULT);
  if (t->awaiting && t->fut.loop->current != t && !t->in_cancel) {
    int took;
    t->in_cancel = 1; /* two tasks awaiting each other: no endless loop */
    took = cancel_suspended(L, t, msgidx);
    t->in_cancel = 0;
    if (took) return 1;
  }
  t->must_cancel = 1;
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Task methods and module functions
** ======================================================================= */

static lx_task *check_task(lua_State *L, int idx) {
  return lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), idx,
                       LX_MT_TASK, NULL); /* names the method called */
}

/* t:cancel([msg]) -> boolean */
static int task_cancel(lua_State *L) {
  check_task(L, 1);
  lua_settop(L, 2);
  lua_pushboolean(L, lx_task_cancel(L, 1, 2));
  return 1;
}

static int task_cancelling(lua_State *L) {
  lua_pushinteger(L, check_task(L, 1)->num_cancels);
  return 1;
}

static int task_uncancel(lua_State *L) {
  lx_task *t = check_task(L, 1);
  if (t->num_cancels > 0 && --t->num_cancels == 0) t->must_cancel = 0;
  lua_pushinteger(L, t->num_cancels);
  return 1;
}

static int task_get_name(lua_State *L) {
  check_task(L, 1);
  lx_task_push_name(L, 1);
  return 1;
}

/* t:set_name(name) -> t */
static int task_set_name(lua_State *L) {
  check_task(L, 1);
  lx_checkstring(L, 2);
  lua_settop(L, 2);
  set_extra(L, 1, "name");
  return 1;
}

/* t:get_coro() -> the task's coroutine, or nil once it is done */
static int task_get_coro(lua_State *L) {
  check_task(L, 1);
  lua_getiuservalue(L, 1, LX_UV_CORO);
  return 1;
}

/* t:traceback() -> where a failed task raised its error, or nil */
static int task_traceback(lua_State *L) {
  check_task(L, 1);
  get_extra(L, 1, "traceback");
  return 1;
}

/* t:where() -> "source:line" the task is suspended at, or nil */
static int task_where(lua_State *L) {
  lx_task *t = check_task(L, 1);
  if (t->fut.state != LX_PENDING) return 0;
  lx_task_where(L, t);
  return 1;
}

static const char *const task_states[] = {"pending", "finished", "failed",
                                          "cancelled"};

static int task__tostring(lua_State *L) {
  lx_task *t = check_task(L, 1);
  lx_task_push_name(L, 1);
  lua_pushfstring(L, "lasync.Task: %s (%s)", lua_tostring(L, -1),
                  task_states[t->fut.state]);
  return 1;
}

/* A failed task whose error nobody looked at is reported when collected. */
static int task__gc(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_checkclass(L, rt, 1, LX_MT_TASK, "Task:__gc");
  lx_task_release(t);
  if (t->fut.state == LX_FAILED && !t->fut.retrieved) {
    t->fut.retrieved = 1; /* not lx_future_retrieved: its loop may be gone */
    rt->unretrieved--;
    lx_task_push_name(L, 1);
    lua_pushfstring(L, "Task exception was never retrieved (task '%s')",
                    lua_tostring(L, -1));
    lua_getiuservalue(L, 1, LX_UV_RESULT);
    get_extra(L, 1, "traceback");
    if (get_extra(L, 1, "created") == LUA_TSTRING) { /* debug mode */
      lua_pushfstring(L, "%s\ntask created at:\n%s", lua_tostring(L, -2),
                      lua_tostring(L, -1) + 17 /* "stack traceback:\n" */);
      lua_replace(L, -3);
    }
    lua_pop(L, 1);
    if (t->fut.loop && t->fut.loop->running) /* its handler, if any */
      lx_loop_report(L, t->fut.loop, lua_tostring(L, -3), -2,
                     lua_tostring(L, -1));
    else
      lx_report(L, lua_tostring(L, -3), -2, lua_tostring(L, -1));
  }
  return 0;
}

/* lasync.create_task([opts,] fn, ...) -> Task, on the running loop */
static int core_create_task(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_loop *loop = lx_running_loop(L, rt, "create_task");
  int fnidx = lua_istable(L, 1) && !lx_is_callable(L, 1) ? 2 : 1;
  if (!lx_is_callable(L, fnidx))
    luaL_error(L, "lasync.create_task: expected a function (got %s)",
               luaL_typename(L, fnidx));
  if (fnidx == 2) lx_task_check_options(L, 1, "create_task");
  lx_task_new(L, loop, 0, fnidx, lua_gettop(L) - fnidx);
  if (fnidx == 2) lx_task_apply_options(L, -1, 1);
  return 1;
}

/*
** lasync._note_traceback(err) -> err: the message handler lasync's Lua side
** gives xpcall before it re-raises an error, so that the task's traceback
** shows where the error began rather than where it was re-raised.
*/
static int core_note_traceback(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = rt->loop ? rt->loop->current : NULL;
  lua_settop(L, 1);
  if (t && t->co == L) {
    lx_push_anchored(L, rt, t->ref);
    luaL_traceback(L, L, NULL, 1);
    set_extra(L, 2, "noted_traceback");
    lua_pushvalue(L, 1);
    set_extra(L, 2, "noted_error");
    lua_settop(L, 1);
  }
  return 1;
}

/*
** lasync._check_task(fname [, level=2]): raise the error awaiting would
** raise here ("not inside a task", "nested coroutine", "cannot await
** here"), naming fname, at the position of the function at `level`; for
** the Lua side, before it changes anything.
*/
static int core_check_task(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_check_await(L, rt, lx_checkstring(L, 1),
                 (int)lx_optinteger(L, 2, 2)); /* blame its caller */
  return 0;
}

/*
** lasync._check_loop(fname [, level=2]): raise the error of a function
** that needs a running loop ("no running event loop"), naming fname, at
** the position of the function at `level`; for the Lua side.
*/
static int core_check_loop(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_check_loop(L, rt, lx_checkstring(L, 1), (int)lx_optinteger(L, 2, 2));
  return 0;
}

/* [-1, +0] name the task at tidx with the string on top */
void lx_task_set_name(lua_State *L, int tidx) {
  set_extra(L, tidx, "name");
}

/*
** The task at tidx will fail with the error at erridx, which began where
** the traceback at tbidx says (another thread): show that traceback.
*/
void lx_task_note_error(lua_State *L, int tidx, int erridx, int tbidx) {
  tidx = lua_absindex(L, tidx);
  lua_pushvalue(L, tbidx);
  set_extra(L, tidx, "noted_traceback");
  lua_pushvalue(L, erridx);
  set_extra(L, tidx, "noted_error");
}

/* lasync.current_task() -> the running task, or nil */
static int core_current_task(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  if (rt->loop == NULL || rt->loop->current == NULL) return 0;
  lx_push_anchored(L, rt, rt->loop->current->ref);
  return 1;
}

static int by_id(const void *a, const void *b) {
  unsigned x = (*(lx_task *const *)a)->id, y = (*(lx_task *const *)b)->id;
  return x < y ? -1 : x > y;
}

/*
** [-0, +1] push an array of the loop's pending tasks in creation order;
** return their number. They are found among the anchors, so a task costs
** no list links of its own.
*/
int lx_push_pending_tasks(lua_State *L, lx_loop *loop) {
  lx_runtime *rt = loop->rt;
  lx_task **found;
  int n = 0, i;
  found = lua_newuserdatauv(L, (loop->ntasks + 1) * sizeof *found, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lx_task *t = lx_testclass(L, rt, -1, LX_MT_TASK);
    if (t && t->fut.loop == loop && n < (int)loop->ntasks) found[n++] = t;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  qsort(found, n, sizeof *found, by_id);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    lx_push_anchored(L, rt, found[i]->ref);
    lua_rawseti(L, -2, i + 1);
  }
  lua_remove(L, -2); /* found */
  return n;
}

/* lasync.all_tasks() -> array of the running loop's pending tasks */
static int core_all_tasks(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_push_pending_tasks(L, lx_running_loop(L, rt, "all_tasks"));
  return 1;
}

void lx_open_task(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"cancel", task_cancel},
    {"cancelling", task_cancelling},
    {"uncancel", task_uncancel},
    {"get_name", task_get_name},
    {"set_name", task_set_name},
    {"get_coro", task_get_coro},
    {"traceback", task_traceback},
    {"where", task_where},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__tostring", task__tostring},
    {"__gc", task__gc},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"create_task", core_create_task},
    {"spawn", core_create_task},
    {"current_task", core_current_task},
    {"all_tasks", core_all_tasks},
    {"_note_traceback", core_note_traceback},
    {"_check_task", core_check_task},
    {"_check_loop", core_check_loop},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_TASK, LX_TASK, methods, meta);
  luaL_getmetatable(L, LX_TASK);
  lx_future_mark(L);
  lua_pop(L, 1);
  lx_setfuncs(L, funcs);
}
