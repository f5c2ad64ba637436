/*
** timer.c — time in the loop: the deadline heap behind one uv_timer_t,
** callback handles (call_soon, call_later, call_at) and lasync.sleep.
** A sleeping task's deadline lives inside the task, so sleeping allocates
** nothing and opens no libuv handle.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

/* {======================================================================
** Deadline heap
** ======================================================================= */

static int timer_before(const lx_timer *a, const lx_timer *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_place(lx_loop *loop, unsigned i, lx_timer *t) {
  loop->heap[i] = t;
  t->idx = i + 1;
}

static void sift_up(lx_loop *loop, unsigned i) {
  lx_timer *t = loop->heap[i];
  while (i > 0) {
    unsigned parent = (i - 1) / 2;
    if (!timer_before(t, loop->heap[parent])) break;
    heap_place(loop, i, loop->heap[parent]);
    i = parent;
  }
  heap_place(loop, i, t);
}

static void sift_down(lx_loop *loop, unsigned i) {
  lx_timer *t = loop->heap[i];
  for (;;) {
    unsigned child = 2 * i + 1;
    if (child >= loop->heap_len) break;
    if (child + 1 < loop->heap_len &&
        timer_before(loop->heap[child + 1], loop->heap[child]))
      child++;
    if (!timer_before(loop->heap[child], t)) break;
    heap_place(loop, i, loop->heap[child]);
    i = child;
  }
  heap_place(loop, i, t);
}

static void timer_cb(uv_timer_t *handle) {
  lx_loop *loop = lx_container_of(handle, lx_loop, timer);
  lx_timers_run_due(loop, lx_now());
  lx_timers_rearm(loop);
}

/*
** Arm the uv timer for the earliest deadline. The delay is counted from
** uv_now(), which never runs ahead of uv_hrtime(), so the timer never
** fires before the deadline; an early wake-up would only re-arm.
*/
void lx_timers_rearm(lx_loop *loop) {
  uint64_t when_ms, now_ms;
  if (loop->heap_len == 0) {
    uv_timer_stop(&loop->timer);
    return;
  }
  when_ms = loop->heap[0]->when / 1000000 + 1;
  if (loop->heap[0]->when == UINT64_MAX) when_ms = UINT64_MAX;
  now_ms = uv_now(loop->uv);
  uv_timer_start(&loop->timer, timer_cb, when_ms > now_ms ? when_ms - now_ms : 0,
                 0);
}

/*
** Make room in the heap for one more timer, or raise "<function>: out of
** memory". Called before anything is registered (the handle anchored, the
** task marked as sleeping), so that lx_timer_arm never allocates: it runs
** where raising would leave half-done bookkeeping behind.
*/
void lx_timer_reserve(lua_State *L, lx_loop *loop) {
  unsigned cap;
  lx_timer **heap;
  if (loop->heap_len < loop->heap_cap) return;
  cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
  heap = realloc(loop->heap, cap * sizeof *heap);
  if (heap == NULL) luaL_error(L, "%s: out of memory", lx_fname(L, NULL));
  loop->heap = heap;
  loop->heap_cap = cap;
}

/* Arm t at `when` (ns); the heap has room (lx_timer_reserve). */
void lx_timer_arm(lx_loop *loop, lx_timer *t, uint64_t when) {
  t->when = when;
  t->seq = loop->timer_seq++;
  loop->heap[loop->heap_len] = t;
  sift_up(loop, loop->heap_len++);
  if (t->idx == 1) lx_timers_rearm(loop);
}

void lx_timer_disarm(lx_loop *loop, lx_timer *t) {
  unsigned i;
  lx_timer *last;
  if (t->idx == 0) return;
  i = t->idx - 1;
  t->idx = 0;
  last = loop->heap[--loop->heap_len];
  if (i < loop->heap_len) {
    heap_place(loop, i, last);
    sift_down(loop, i);
    sift_up(loop, last->idx - 1);
  }
  if (loop->heap_len == 0) uv_timer_stop(&loop->timer);
}

/* Fire every timer whose deadline has passed, earliest first. */
void lx_timers_run_due(lx_loop *loop, uint64_t now) {
  while (loop->heap_len > 0 && loop->heap[0]->when <= now) {
    lx_timer *t = loop->heap[0];
    lx_timer_disarm(loop, t);
    t->fire(loop, t);
  }
}

/* Delay in seconds at idx as nanoseconds; errors name function `fname`. */
uint64_t lx_delay_to_ns(lua_State *L, int idx, const char *fname) {
  int isnum;
  lua_Number d = lua_tonumberx(L, idx, &isnum);
  if (!isnum)
    luaL_error(L, "lasync.%s: delay must be a number (got %s)", fname,
               luaL_typename(L, idx));
  if (d != d) luaL_error(L, "lasync.%s: delay is NaN", fname);
  if (d <= 0) return 0;
  if (d >= 1e9) return UINT64_MAX; /* 31 years: never */
  return (uint64_t)(d * 1e9);
}

/* }====================================================================== */

/* {======================================================================
** Handles: call_soon, call_later, call_at
** ======================================================================= */

/* A scheduled callback. User values: 1 the callback, 2.. its arguments. */
typedef struct lx_handle {
  lx_ready ready;
  lx_timer timer;
  lx_loop *loop;
  int ref; /* anchor while scheduled; released when run or cancelled */
  int nargs;
  unsigned char cancelled, is_timer;
} lx_handle;

static lx_handle *handle_check(lua_State *L, int idx) {
  return lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), idx,
                       LX_MT_HANDLE, NULL); /* names the method called */
}

/* Debug mode: say which callback (handle at hidx) held up the loop. */
static void warn_slow_callback(lua_State *L, int hidx, uint64_t ns) {
  lua_Debug ar;
  lua_getiuservalue(L, hidx, 1);
  if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
  else
    lua_pushliteral(L, "a C function");
  lx_warn(lx_runtime_get(L), "callback (%s) blocked the event loop for %.3f s",
          lua_tostring(L, -1), ns / 1e9);
  lua_pop(L, 1);
}

static void handle_run(lua_State *L, lx_loop *loop, lx_ready *node) {
  lx_handle *h = lx_container_of(node, lx_handle, ready);
  int base = lua_gettop(L), i, debug = loop->debug;
  lx_push_anchored(L, loop->rt, h->ref);
  lx_unanchor(L, loop->rt, &h->ref);
  if (h->cancelled || loop->closing) {
    lua_settop(L, base);
    return;
  }
  if (!lua_checkstack(L, h->nargs + LUA_MINSTACK)) { /* cannot happen: */
    lua_pushliteral(L, "too many arguments"); /* they fit when scheduled */
    lx_loop_report(L, loop, "exception in callback", -1, NULL);
    lua_settop(L, base);
    return;
  }
  lua_pushcfunction(L, lx_traceback_msgh);
  for (i = 1; i <= h->nargs + 1; i++) lua_getiuservalue(L, base + 1, i);
  if (debug) loop->step_start = lx_now();
  if (lua_pcall(L, h->nargs, 0, base + 2) != LUA_OK) {
    if (lua_istable(L, -1)) {
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      lx_loop_report(L, loop, "exception in callback", -2,
                     lua_tostring(L, -1));
    } else { /* memory error: msgh was not called */
      lx_loop_report(L, loop, "exception in callback", -1, NULL);
    }
  }
  if (debug && lx_now() - loop->step_start >= LX_SLOW_STEP_NS)
    warn_slow_callback(L, base + 1, lx_now() - loop->step_start);
  lua_settop(L, base);
}

static void handle_fire(lx_loop *loop, lx_timer *t) {
  lx_ready_push(loop, &lx_container_of(t, lx_handle, timer)->ready);
}

/*
** [-(nargs+1), +1] schedule the function below the `nargs` values on top;
** leave the new handle in their place.
*/
static lx_handle *handle_new(lua_State *L, lx_loop *loop, int nargs) {
  int i, first = lua_gettop(L) - nargs;
  lx_handle *h = lua_newuserdatauv(L, sizeof *h, nargs + 1);
  lx_ready_init(&h->ready, handle_run);
  h->timer.idx = 0;
  h->timer.fire = handle_fire;
  h->loop = loop;
  h->nargs = nargs;
  h->cancelled = h->is_timer = 0;
  lx_setclass(L, loop->rt, LX_MT_HANDLE);
  for (i = nargs + 1; i >= 1; i--) {
    lua_pushvalue(L, first + i - 1);
    lua_setiuservalue(L, -2, i);
  }
  lua_replace(L, first);
  lua_settop(L, first);
  h->ref = lx_anchor(L, loop->rt, -1);
  return h;
}

void lx_call_soon(lua_State *L, lx_loop *loop, int nargs) {
  lx_ready_push(loop, &handle_new(L, loop, nargs)->ready);
}

static lx_loop *check_callback(lua_State *L, int cbidx, const char *fname) {
  lx_loop *loop = lx_loop_check(L, 1);
  if (!lx_is_callable(L, cbidx))
    luaL_error(L, "lasync.Loop:%s: callback must be a function (got %s)",
               fname, luaL_typename(L, cbidx));
  if (loop->closed)
    luaL_error(L, "lasync.Loop:%s: the event loop is closed", fname);
  return loop;
}

/* loop:call_soon(cb, ...) -> Handle */
static int loop_call_soon(lua_State *L) {
  lx_loop *loop = check_callback(L, 2, "call_soon");
  lx_call_soon(L, loop, lua_gettop(L) - 2);
  return 1;
}

static int schedule_at(lua_State *L, lx_loop *loop, uint64_t when) {
  lx_handle *h;
  lx_timer_reserve(L, loop); /* before the handle is anchored */
  h = handle_new(L, loop, lua_gettop(L) - 3);
  h->is_timer = 1;
  lx_timer_arm(loop, &h->timer, when);
  if (when <= lx_now()) loop->timers_due = 1; /* asyncio: next iteration */
  return 1;
}

/* loop:call_later(delay, cb, ...) -> TimerHandle */
static int loop_call_later(lua_State *L) {
  lx_loop *loop = check_callback(L, 3, "call_later");
  uint64_t delay = lx_delay_to_ns(L, 2, "Loop:call_later");
  uint64_t now = lx_now();
  return schedule_at(L, loop, delay > UINT64_MAX - now ? UINT64_MAX
                                                        : now + delay);
}

/* loop:call_at(when, cb, ...) -> TimerHandle; `when` as loop:time() */
static int loop_call_at(lua_State *L) {
  lx_loop *loop = check_callback(L, 3, "call_at");
  lua_Number when = lx_checknumber(L, 2);
  if (when != when) luaL_error(L, "lasync.Loop:call_at: time is NaN");
  if (when <= 0) return schedule_at(L, loop, 0);
  return schedule_at(L, loop, when >= 1e9 ? UINT64_MAX
                                          : (uint64_t)(when * 1e9));
}

/* handle:cancel() */
static int handle_cancel(lua_State *L) {
  lx_handle *h = handle_check(L, 1);
  if (!h->cancelled) {
    h->cancelled = 1;
    if (h->timer.idx) { /* armed: disarm and release now */
      lx_timer_disarm(h->loop, &h->timer);
      lx_unanchor(L, h->loop->rt, &h->ref);
    }
  }
  return 0;
}

static int handle_cancelled(lua_State *L) {
  lua_pushboolean(L, handle_check(L, 1)->cancelled);
  return 1;
}

/* timer_handle:when() -> the scheduled time, as loop:time() */
static int handle_when(lua_State *L) {
  lx_handle *h = handle_check(L, 1);
  if (!h->is_timer) luaL_error(L, "lasync.Handle:when: not a timer handle");
  lua_pushnumber(L, h->timer.when == UINT64_MAX ? HUGE_VAL
                                                : h->timer.when / 1e9);
  return 1;
}

static int handle__tostring(lua_State *L) {
  lx_handle *h = handle_check(L, 1);
  lua_pushfstring(L, "lasync.%s: %p%s", h->is_timer ? "TimerHandle" : "Handle",
                  (void *)h, h->cancelled ? " (cancelled)" : "");
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** lasync.sleep
** ======================================================================= */

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  return lua_gettop(L) - 1; /* the extra arguments */
}

/* The sleep is cancelled (or its loop closes): disarm, if not fired. */
static int sleep_release(lx_task *t) {
  if (t->on.timer.idx == 0) return 0; /* fired: the heap let go of it */
  lx_timer_disarm(t->fut.loop, &t->on.timer);
  return 1;
}

static const lx_awaitable awaiting_deadline = {sleep_release, NULL, NULL};
/* sleep(0): queued at the back of the ready queue, nothing to undo */
static const lx_awaitable awaiting_turn = {NULL, NULL, NULL};

static void sleep_fire(lx_loop *loop, lx_timer *timer) {
  lx_ready_push(loop, &lx_container_of(timer, lx_task, on.timer)->ready);
}

/* lasync.sleep(delay, ...) -> ... */
static int core_sleep(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  uint64_t delay = lx_delay_to_ns(L, 1, "sleep");
  lx_task *t = lx_current_task(L, rt, "sleep");
  uint64_t now;
  if (delay == 0) {
    lx_ready_push(t->fut.loop, &t->ready); /* to the back of the queue */
    return lx_suspend(L, t, &awaiting_turn, sleep_k);
  }
  lx_timer_reserve(L, t->fut.loop); /* may raise: before anything is armed */
  now = lx_now();
  t->on.timer.fire = sleep_fire;
  lx_timer_arm(t->fut.loop, &t->on.timer,
               delay > UINT64_MAX - now ? UINT64_MAX : now + delay);
  return lx_suspend(L, t, &awaiting_deadline, sleep_k);
}

/* }====================================================================== */

void lx_open_timer(lua_State *L) {
  static const luaL_Reg handle_methods[] = {
    {"cancel", handle_cancel},
    {"cancelled", handle_cancelled},
    {"when", handle_when},
    {NULL, NULL}
  };
  static const luaL_Reg loop_methods[] = {
    {"call_soon", loop_call_soon},
    {"call_later", loop_call_later},
    {"call_at", loop_call_at},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"sleep", core_sleep},
    {NULL, NULL}
  };
  static const luaL_Reg handle_meta[] = {
    {"__tostring", handle__tostring},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_HANDLE, LX_HANDLE, handle_methods, handle_meta);
  /* loop methods: added to the Loop metatable's method table */
  luaL_getmetatable(L, LX_LOOP);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, loop_methods, 0);
  lua_pop(L, 2);
  lx_setfuncs(L, funcs);
}
