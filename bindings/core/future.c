/*
** future.c — futures, the one currency of the core: settling them, their
** waiter lists and done callbacks, and the await protocol every waiting
** operation goes through. Tasks and gathers are futures too; the methods
** here (done, result, await, ...) serve all of them.
*/
#include "core/core.h"

/* {======================================================================
** Waiters
** ======================================================================= */

void lx_waiter_link(lx_future *f, lx_waiter *w, lx_wake_fn wake) {
  w->wake = wake;
  w->order = f->norder++;
  w->next = &f->waiters;
  w->prev = f->waiters.prev;
  f->waiters.prev->next = w;
  f->waiters.prev = w;
}

void lx_waiter_unlink(lx_waiter *w) {
  if (w->next == NULL) return;
  w->prev->next = w->next;
  w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

/* }====================================================================== */

/* {======================================================================
** Creating, checking and settling
** ======================================================================= */

void lx_future_init(lx_future *f, lx_loop *loop, int kind) {
  f->loop = loop;
  f->waiters.prev = f->waiters.next = &f->waiters;
  f->nresults = 0;
  f->norder = 0;
  f->state = LX_PENDING;
  f->kind = (unsigned char)kind;
  f->retrieved = 0;
  f->cancel_requested = 0;
  f->has_callbacks = 0;
}

/*
** Bind the future at fidx to `loop`, whose Loop object is at loopidx (0:
** the running loop, anchored by self_ref).
*/
void lx_future_bind(lua_State *L, int fidx, lx_loop *loop, int loopidx) {
  lx_future *f = lua_touserdata(L, fidx);
  fidx = lua_absindex(L, fidx);
  if (loopidx)
    lua_pushvalue(L, loopidx);
  else
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->self_ref);
  lua_setiuservalue(L, fidx, LX_UV_LOOP);
  f->loop = loop;
}

/* [-0, +1] push a new future bound to `loop` (NULL: unbound) */
lx_future *lx_future_new(lua_State *L, lx_runtime *rt, lx_loop *loop,
                         int loopidx) {
  lx_future *f;
  if (loopidx) loopidx = lua_absindex(L, loopidx);
  f = lua_newuserdatauv(L, sizeof *f, LX_FUTURE_NUV);
  lx_future_init(f, NULL, LX_KIND_FUTURE);
  lx_setclass(L, rt, LX_MT_FUTURE);
  if (loop) lx_future_bind(L, -1, loop, loopidx);
  return f;
}

/* The future (or task, or gather) at idx, or NULL. */
lx_future *lx_future_test(lua_State *L, lx_runtime *rt, int idx) {
  return lx_classof(L, rt, idx, LX_MT_TASK, 3) >= 0 ? lua_touserdata(L, idx)
                                                    : NULL;
}

lx_future *lx_future_check(lua_State *L, lx_runtime *rt, int idx,
                           const char *fname) {
  lx_future *f = lx_future_test(L, rt, idx);
  if (f == NULL) {
    const char *got = luaL_typename(L, idx); /* before a push moves idx */
    luaL_error(L, "%s: expected a task or future (got %s)",
               lx_fname(L, fname), got);
  }
  return f;
}

/* Schedule the done callback at index i of the array at cbs. */
static void schedule_callback(lua_State *L, int fidx, int cbs,
                              lua_Integer i) {
  lx_future *f = lua_touserdata(L, fidx);
  lua_rawgeti(L, cbs, i);
  lua_pushvalue(L, fidx);
  lx_call_soon(L, f->loop, 1);
  lua_pop(L, 1); /* the handle */
}

static unsigned callback_order(lua_State *L, int cbs, lua_Integer i) {
  unsigned order;
  lua_rawgeti(L, cbs, i + 1);
  order = (unsigned)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return order;
}

/*
** Wake the C waiters of the settled future at fidx and schedule its done
** callbacks, all in the order they were registered: asyncio runs both as
** callbacks of the future, in that order.
*/
static void wake_all(lua_State *L, int fidx) {
  lx_future *f = lua_touserdata(L, fidx);
  lua_Integer i = 1, n = 0;
  int cbs = 0;
  if (!f->has_callbacks) { /* the common case: C waiters only, in order */
    while (f->waiters.next != &f->waiters) {
      lx_waiter *w = f->waiters.next;
      lx_waiter_unlink(w);
      w->wake(L, w, fidx);
    }
    return;
  }
  luaL_checkstack(L, 6, NULL);
  if (lua_getiuservalue(L, fidx, LX_UV_CALLBACKS) == LUA_TTABLE) {
    if (f->loop == NULL)
      luaL_error(L, "lasync.Future: cannot run done callbacks: the future "
                    "is not bound to an event loop");
    cbs = lua_gettop(L);
    n = (lua_Integer)lua_rawlen(L, cbs);
    lua_pushnil(L);
    lua_setiuservalue(L, fidx, LX_UV_CALLBACKS);
    f->has_callbacks = 0;
  }
  while (f->waiters.next != &f->waiters) {
    lx_waiter *w = f->waiters.next;
    for (; i < n && callback_order(L, cbs, i) < w->order; i += 2)
      schedule_callback(L, fidx, cbs, i);
    lx_waiter_unlink(w);
    w->wake(L, w, fidx);
  }
  for (; i < n; i += 2) schedule_callback(L, fidx, cbs, i);
  lua_pop(L, 1); /* the callbacks */
}

/*
** [-n, +0] settle the pending future at fidx with the n values on top (the
** results; the error; or the cancel message), wake its C waiters in order,
** then schedule its done callbacks. n < -1: the -n results are already
** packed in the table on top.
*/
void lx_future_settle(lua_State *L, int fidx, int state, int n) {
  lx_future *f = lua_touserdata(L, fidx);
  fidx = lua_absindex(L, fidx);
  if (n < 0) {
    lua_setiuservalue(L, fidx, LX_UV_RESULT);
    n = -n;
  } else if (n == 1) {
    lua_setiuservalue(L, fidx, LX_UV_RESULT);
  } else if (n > 1) {
    int i, tbl;
    lua_createtable(L, n, 0);
    lua_insert(L, -(n + 1));
    tbl = lua_gettop(L) - n;
    for (i = n; i >= 1; i--) lua_rawseti(L, tbl, i);
    lua_setiuservalue(L, fidx, LX_UV_RESULT);
  }
  f->nresults = n;
  f->state = (unsigned char)state;
  wake_all(L, fidx);
}

/* Cancel the future, task or gather at fidx; msgidx 0: no message. */
int lx_future_cancel(lua_State *L, int fidx, int msgidx) {
  lx_future *f = lua_touserdata(L, fidx);
  if (f->kind == LX_KIND_TASK) return lx_task_cancel(L, fidx, msgidx);
  if (f->kind == LX_KIND_GATHER) return lx_gather_cancel(L, fidx, msgidx);
  if (f->state != LX_PENDING) return 0;
  fidx = lua_absindex(L, fidx);
  if (msgidx)
    lua_pushvalue(L, msgidx);
  else
    lua_pushnil(L);
  lx_future_settle(L, fidx, LX_CANCELLED, 1);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Reading results
** ======================================================================= */

/* [-0, +n] push all results of the finished future at fidx */
int lx_future_push_results(lua_State *L, int fidx) {
  lx_future *f = lua_touserdata(L, fidx);
  int i, n = f->nresults;
  if (n == 1) {
    lua_getiuservalue(L, fidx, LX_UV_RESULT);
  } else if (n > 1) {
    fidx = lua_absindex(L, fidx);
    luaL_checkstack(L, n + 1, "too many results");
    lua_getiuservalue(L, fidx, LX_UV_RESULT);
    for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(n + 1));
  }
  return n;
}

/* [-0, +1] push the first result (nil if none) of the finished future */
void lx_future_push_first(lua_State *L, int fidx) {
  lx_future *f = lua_touserdata(L, fidx);
  lua_getiuservalue(L, fidx, LX_UV_RESULT);
  if (f->nresults > 1) {
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  } else if (f->nresults == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* Someone looked at the error of f: no "never retrieved" report for it. */
void lx_future_retrieved(lx_future *f) {
  if (!f->retrieved && f->state == LX_FAILED && f->kind == LX_KIND_TASK)
    f->loop->rt->unretrieved--;
  f->retrieved = 1;
}

/* [-0, +1] push a new CancelledError with the cancelled future's message */
void lx_future_push_cancelled_error(lua_State *L, int fidx) {
  lua_getiuservalue(L, fidx, LX_UV_RESULT);
  lx_error_newv(L, LX_ERR_CANCELLED, -1);
  lua_remove(L, -2);
}

/*
** Push the results of the done future at fidx, or raise its error (or
** CancelledError, or InvalidStateError if it is still pending).
*/
int lx_future_unwrap(lua_State *L, int fidx) {
  lx_future *f = lua_touserdata(L, fidx);
  switch (f->state) {
  case LX_FINISHED:
    return lx_future_push_results(L, fidx);
  case LX_FAILED:
    lx_future_retrieved(f);
    if (f->loop && f->loop->current && f->loop->current->co == L) {
      if (f->kind == LX_KIND_TASK) /* tracebacks follow the awaits */
        lx_task_note_cause(L, f->loop->current, fidx);
      else if (f->kind == LX_KIND_GATHER && lx_gather_push_failed(L, fidx)) {
        lx_task_note_cause(L, f->loop->current, -1);
        lua_pop(L, 1);
      }
    }
    lua_getiuservalue(L, fidx, LX_UV_RESULT);
    return lua_error(L);
  case LX_CANCELLED:
    lx_future_push_cancelled_error(L, fidx);
    return lua_error(L);
  default:
    return lx_error_raise(L, LX_ERR_INVALID_STATE, "result is not set");
  }
}

/* }====================================================================== */

/* {======================================================================
** Await
** ======================================================================= */

static void task_wake(lua_State *L, lx_waiter *w, int fidx) {
  lx_task *t = lx_container_of(w, lx_task, on.wait);
  (void)L;
  (void)fidx;
  lx_ready_push(t->fut.loop, &t->ready); /* settling unlinked it */
}

/* A task awaiting a future is cancelled: cancel the future instead. */
static int cancel_awaited(lua_State *L, lx_task *t, int msgidx) {
  int r;
  luaL_checkstack(L, 2, NULL);
  lua_checkstack(t->co, 1);
  lua_pushvalue(t->co, t->await_idx);
  lua_xmove(t->co, L, 1);
  r = lx_future_cancel(L, -1, msgidx);
  lua_pop(L, 1);
  return r;
}

/* A future's waiter: released as a wait list's; a cancel goes to it. */
static const lx_awaitable awaiting_future = {lx_wait_release,
                                             cancel_awaited, NULL};

static int await_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  lx_wait_release(t); /* woken by a cancel, still linked */
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  return lx_future_unwrap(L, t->await_idx);
}

/* Suspend task t (running in L) until the future at idx is done. */
int lx_await(lua_State *L, lx_task *t, int idx) {
  lx_future *f = lua_touserdata(L, idx);
  idx = lua_absindex(L, idx);
  if (f->state != LX_PENDING) return lx_future_unwrap(L, idx);
  if (f == &t->fut) luaL_error(L, "lasync.await: a task cannot await itself");
  if (f->loop != t->fut.loop) {
    if (f->loop != NULL)
      luaL_error(L, "lasync.await: the future belongs to another event loop");
    lx_future_bind(L, idx, t->fut.loop, 0);
  }
  lx_waiter_link(f, &t->on.wait, task_wake);
  t->await_idx = idx;
  return lx_suspend(L, t, &awaiting_future, await_k);
}

/*
** Make the value at idx a future: a function is started as a task on the
** running loop. Raise an error naming `fname` for anything else.
*/
int lx_ensure_future(lua_State *L, int idx, lx_runtime *rt,
                     const char *fname) {
  idx = lua_absindex(L, idx);
  if (lx_future_test(L, rt, idx)) return 0;
  if (lua_isfunction(L, idx)) {
    lx_loop *loop = lx_running_loop(L, rt, fname);
    lx_task_new(L, loop, 0, idx, 0);
    lua_replace(L, idx);
    return 1;
  }
  return luaL_error(L, "%s: %s is not awaitable (expected a task, future "
                       "or function)", lx_fname(L, fname),
                    luaL_typename(L, idx));
}

/* lasync.await(x) and x:await(): the results of x */
static int future_await(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "await");
  lua_settop(L, 1);
  lx_ensure_future(L, 1, rt, "await");
  return lx_await(L, t, 1);
}

/* }====================================================================== */

/* {======================================================================
** Methods of futures and tasks
** ======================================================================= */

static lx_future *check_self(lua_State *L, const char *fname) {
  return lx_future_check(L, lua_touserdata(L, lua_upvalueindex(1)), 1, fname);
}

static int future_done(lua_State *L) {
  lua_pushboolean(L, check_self(L, "Future:done")->state != LX_PENDING);
  return 1;
}

static int future_cancelled(lua_State *L) {
  lua_pushboolean(L,
                  check_self(L, "Future:cancelled")->state == LX_CANCELLED);
  return 1;
}

/* f:result() -> all results; raises the error if it failed */
static int future_result(lua_State *L) {
  check_self(L, "Future:result");
  return lx_future_unwrap(L, 1);
}

/* f:exception() -> the error, or nil */
static int future_exception(lua_State *L) {
  lx_future *f = check_self(L, "Future:exception");
  switch (f->state) {
  case LX_PENDING:
    return lx_error_raise(L, LX_ERR_INVALID_STATE, "exception is not set");
  case LX_CANCELLED:
    lx_future_push_cancelled_error(L, 1);
    return lua_error(L);
  case LX_FAILED:
    lx_future_retrieved(f);
    lua_getiuservalue(L, 1, LX_UV_RESULT);
    return 1;
  default:
    lua_pushnil(L);
    return 1;
  }
}

/*
** Add the function at cbidx as a done callback of the future at fidx: it
** is scheduled with the future as argument once the future is done (at
** once if it is done already).
*/
void lx_future_add_callback(lua_State *L, int fidx, int cbidx) {
  lx_future *f = lua_touserdata(L, fidx);
  fidx = lua_absindex(L, fidx);
  cbidx = lua_absindex(L, cbidx);
  if (f->state != LX_PENDING) {
    if (f->loop == NULL)
      luaL_error(L, "lasync.Future:add_done_callback: no running event loop");
    lua_pushvalue(L, cbidx);
    lua_pushvalue(L, fidx);
    lx_call_soon(L, f->loop, 1);
    lua_pop(L, 1); /* the handle */
    return;
  }
  if (lua_getiuservalue(L, fidx, LX_UV_CALLBACKS) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 2, 0);
  }
  lua_pushvalue(L, cbidx);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pushinteger(L, f->norder++);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_setiuservalue(L, fidx, LX_UV_CALLBACKS);
  f->has_callbacks = 1;
}

/* f:add_done_callback(cb): cb(f) is scheduled once f is done */
static int future_add_done_callback(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_future *f = check_self(L, "Future:add_done_callback");
  if (!lx_is_callable(L, 2))
    luaL_error(L, "lasync.Future:add_done_callback: callback must be a "
                  "function (got %s)", luaL_typename(L, 2));
  lua_settop(L, 2);
  if (f->loop == NULL && rt->loop) lx_future_bind(L, 1, rt->loop, 0);
  lx_future_add_callback(L, 1, 2);
  return 0;
}

/* f:remove_done_callback(cb) -> number removed */
static int future_remove_done_callback(lua_State *L) {
  lua_Integer removed = 0;
  check_self(L, "Future:remove_done_callback");
  lua_settop(L, 2);
  if (lua_getiuservalue(L, 1, LX_UV_CALLBACKS) == LUA_TTABLE) {
    lua_Integer i, j = 0, n = (lua_Integer)lua_rawlen(L, 3);
    for (i = 1; i < n; i += 2) { /* keep the pairs {cb, order} not for cb */
      lua_rawgeti(L, 3, i);
      if (lua_rawequal(L, -1, 2)) {
        lua_pop(L, 1);
        removed++;
        continue;
      }
      lua_rawseti(L, 3, ++j);
      lua_rawgeti(L, 3, i + 1);
      lua_rawseti(L, 3, ++j);
    }
    for (i = j + 1; i <= n; i++) {
      lua_pushnil(L);
      lua_rawseti(L, 3, i);
    }
  }
  lua_pushinteger(L, removed);
  return 1;
}

static int future_get_loop(lua_State *L) {
  check_self(L, "Future:get_loop");
  lua_getiuservalue(L, 1, LX_UV_LOOP);
  return 1;
}

static lx_future *check_plain(lua_State *L, const char *fname) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_future *f = lx_checkclass(L, rt, 1, LX_MT_FUTURE, fname);
  if (f->state != LX_PENDING)
    lx_error_raise(L, LX_ERR_INVALID_STATE, "lasync.%s: the future is "
                                             "already done", fname);
  if (f->loop == NULL && rt->loop) lx_future_bind(L, 1, rt->loop, 0);
  return f;
}

/* f:set_result(...) */
static int future_set_result(lua_State *L) {
  check_plain(L, "Future:set_result");
  lx_future_settle(L, 1, LX_FINISHED, lua_gettop(L) - 1);
  return 0;
}

/* f:set_exception(err) */
static int future_set_exception(lua_State *L) {
  check_plain(L, "Future:set_exception");
  lua_settop(L, 2);
  lx_future_settle(L, 1, LX_FAILED, 1);
  return 0;
}

/* f:cancel([msg]) -> boolean */
static int future_cancel(lua_State *L) {
  lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1, LX_MT_FUTURE,
                "Future:cancel");
  lua_settop(L, 2);
  lua_pushboolean(L, lx_future_cancel(L, 1, 2));
  return 1;
}

static const char *const state_names[] = {"pending", "finished", "failed",
                                          "cancelled"};

static int future__tostring(lua_State *L) {
  lx_future *f = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                               LX_MT_FUTURE, "Future:__tostring");
  lua_pushfstring(L, "lasync.Future: %p (%s)", (void *)f,
                  state_names[f->state]);
  return 1;
}

/* lasync.isfuture(x) -> whether x is a task or future */
static int core_isfuture(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushboolean(L, lx_future_test(L, rt, 1) != NULL);
  return 1;
}

/* lasync.ensure_future(x) -> x, or a task running the function x */
static int core_ensure_future(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lua_settop(L, 1);
  lx_ensure_future(L, 1, rt, "ensure_future");
  return 1;
}

/* lasync.Future() -> a future bound to the running loop, if any */
static int core_future(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_future_new(L, rt, rt->loop, 0);
  return 1;
}

/* }====================================================================== */

/* Methods shared by futures, tasks and gathers; also used by task.c. */
static const luaL_Reg shared_methods[] = {
  {"done", future_done},
  {"cancelled", future_cancelled},
  {"result", future_result},
  {"exception", future_exception},
  {"add_done_callback", future_add_done_callback},
  {"remove_done_callback", future_remove_done_callback},
  {"get_loop", future_get_loop},
  {"await", future_await},
  {NULL, NULL}
};

/* [-0, +0] add the shared methods to the metatable on top */
void lx_future_mark(lua_State *L) {
  lua_getfield(L, -1, "__index");
  lx_setfuncs(L, shared_methods);
  lua_pop(L, 1);
}

void lx_open_future(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"set_result", future_set_result},
    {"set_exception", future_set_exception},
    {"cancel", future_cancel},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__tostring", future__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"Future", core_future},
    {"await", future_await},
    {"isfuture", core_isfuture},
    {"ensure_future", core_ensure_future},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_FUTURE, LX_FUTURE, methods, meta);
  luaL_getmetatable(L, LX_FUTURE);
  lx_future_mark(L);
  lua_pop(L, 1);
  lx_setfuncs(L, funcs);
}
