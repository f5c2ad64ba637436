/*
** loop.c — the event loop: a FIFO ready queue run in asyncio's batch order
** on top of libuv, running, stopping and closing, the exception handler,
** and the Loop object's Lua methods. Timer methods are in timer.c.
*/
#define _GNU_SOURCE /* dladdr, on_exit */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/*
** Scheduling policy. Work made ready while a batch runs goes to the next
** batch (asyncio's order). After a batch the next one starts at once,
** without a libuv iteration in between, until the queue is empty or 1 ms
** has passed since this run started; then libuv polls I/O (without
** blocking, since work is still ready) and the timers run before the next
** batches. The clock is read every LX_BATCHES_PER_CLOCK batches, and due
** timers are moved to the ready queue at that point too.
*/
#define LX_POLL_INTERVAL_NS 1000000u
#define LX_BATCHES_PER_CLOCK 16u

typedef struct lx_loop_box {
  lx_loop *loop; /* C-owned: freed by loop_free once closed and unused */
} lx_loop_box;

static int live_loops; /* allocated and not yet freed, for lasync._stats */

int lx_live_loops(void) {
  return live_loops;
}

/*
** libuv handles opened and whose close callback has not run yet, in every
** loop of the process (lasync._stats): each file that opens a handle adds
** 1, and its close callback takes 1 away. Threads' loops count too, hence
** the atomic.
*/
static int live_handles;

void lx_count_handles(int delta) {
  __atomic_add_fetch(&live_handles, delta, __ATOMIC_RELAXED);
}

int lx_live_handles(void) {
  return __atomic_load_n(&live_handles, __ATOMIC_RELAXED);
}

uint64_t lx_now(void) {
  return uv_hrtime();
}

/* {======================================================================
** Ready queue
** ======================================================================= */

/* An active idle handle makes libuv poll without blocking: nothing to do */
static void idle_cb(uv_idle_t *handle) {
  (void)handle;
}

static void sync_idle(lx_loop *loop) {
  if (loop->ready_head && loop->running)
    uv_idle_start(&loop->idle, idle_cb);
  else
    uv_idle_stop(&loop->idle);
}

void lx_ready_push(lx_loop *loop, lx_ready *node) {
  if (node->next != LX_NOT_QUEUED) return; /* already queued */
  node->next = NULL;
  if (loop->ready_tail) {
    loop->ready_tail->next = node;
    loop->ready_tail = node;
  } else {
    loop->ready_head = loop->ready_tail = node;
    if (loop->running) uv_idle_start(&loop->idle, idle_cb);
  }
}

/* Run one batch: what was ready when it started, in FIFO order. */
static void run_batch(lx_loop *loop) {
  lx_ready *node = loop->ready_head;
  loop->ready_head = loop->ready_tail = NULL;
  while (node) {
    lx_ready *next = node->next;
    node->next = LX_NOT_QUEUED;
    node->run(loop->L, loop, node);
    node = next;
  }
}

static void run_ready(lx_loop *loop) {
  uint64_t start = lx_now();
  unsigned batches = 0;
  do {
    run_batch(loop);
    if (loop->timers_due) { /* armed already due: as asyncio, next batch */
      loop->timers_due = 0;
      lx_timers_run_due(loop, lx_now());
    }
    if (++batches % LX_BATCHES_PER_CLOCK == 0) {
      uint64_t now = lx_now();
      if (now - start >= LX_POLL_INTERVAL_NS) break;
      lx_timers_run_due(loop, now);
    }
  } while (loop->ready_head && !loop->stopping);
  if (!loop->ready_head) uv_idle_stop(&loop->idle);
}

static void check_cb(uv_check_t *handle) {
  lx_loop *loop = lx_container_of(handle, lx_loop, check);
  if (loop->ready_head) run_ready(loop);
}

/* }====================================================================== */

/* {======================================================================
** Creating, running and closing
** ======================================================================= */

static void loop_free(lx_loop *loop) {
  live_loops--;
  uv_mutex_destroy(&loop->inbox_mutex);
  if (loop->own_uv) free(loop->uv);
  free(loop->heap);
  free(loop->tls_cbuf);
  free(loop->tls_obuf);
  lx_bufcache_free(&loop->small_bufs);
  lx_bufcache_free(&loop->tls_pbufs);
  free(loop);
}

static void handle_closed_cb(uv_handle_t *handle) {
  lx_loop *loop = handle->data;
  lx_count_handles(-1);
  if (--loop->open_handles == 0 && loop->orphan) loop_free(loop);
}

/* [-0, +1] push a new Loop object on `uv` (NULL: a loop of its own) */
lx_loop *lx_loop_new(lua_State *L, lx_runtime *rt, uv_loop_t *uv) {
  lx_loop_box *box = lua_newuserdatauv(L, sizeof *box, 0);
  lx_loop *loop = calloc(1, sizeof *loop);
  box->loop = NULL;
  lx_setclass(L, rt, LX_MT_LOOP);
  if (loop == NULL) luaL_error(L, "%s: out of memory", lx_fname(L, NULL));
  if (uv == NULL) {
    int err;
    uv = malloc(sizeof *uv);
    if (uv == NULL || (err = uv_loop_init(uv)) != 0) {
      free(uv);
      free(loop);
      luaL_error(L, "%s: cannot create an event loop: %s", lx_fname(L, NULL),
                 uv ? uv_strerror(err) : "out of memory");
    }
    loop->own_uv = 1;
  }
  loop->uv = uv;
  loop->rt = rt;
  loop->handler_ref = loop->self_ref = LUA_NOREF;
  lx_list_init(&loop->resources);
  lx_list_init(&loop->pooled);
  loop->debug = (unsigned char)rt->debug;
  uv_timer_init(uv, &loop->timer);
  uv_check_init(uv, &loop->check);
  uv_idle_init(uv, &loop->idle);
  loop->timer.data = loop->check.data = loop->idle.data = loop;
  lx_inbox_init(loop);
  loop->open_handles = 4;
  lx_count_handles(4); /* timer, check, idle, inbox */
  uv_check_start(&loop->check, check_cb);
  uv_unref((uv_handle_t *)&loop->check);
  box->loop = loop;
  live_loops++;
  return loop;
}

/* The loop at idx; errors name the running method ("lasync.Loop:time"). */
lx_loop *lx_loop_check(lua_State *L, int idx) {
  lx_loop_box *box = luaL_testudata(L, idx, LX_LOOP);
  if (box == NULL) {
    const char *got = lx_typename(L, idx); /* before a push moves idx */
    luaL_error(L, "%s: expected a Loop (got %s)", lx_fname(L, "Loop"), got);
  }
  if (box->loop == NULL) /* its __gc was called by hand */
    luaL_error(L, "%s: " LX_FINALIZED, lx_fname(L, "Loop"));
  return box->loop;
}

static void until_wake(lua_State *L, lx_waiter *w, int fidx) {
  lx_loop *loop = lx_container_of(w, lx_loop, until);
  (void)L;
  (void)fidx;
  loop->stopping = 1;
  uv_stop(loop->uv);
}

/*
** Run the loop of the Loop object at loopidx in the calling thread.
** mode LX_RUN_UNTIL: until the future at fidx is done; LX_RUN_FOREVER:
** until stop(); LX_RUN_DRAIN: until no task is pending. Returns how it
** ended. A loop with nothing left to run or wait for also ends the run.
*/
/* Raise the error that running `loop` now would meet, if any. */
static void check_runnable(lua_State *L, lx_loop *loop) {
  if (loop->closed)
    luaL_error(L, "%s: the event loop is closed", lx_fname(L, NULL));
  if (loop->running)
    luaL_error(L, "%s: the event loop is already running", lx_fname(L, NULL));
  if (loop->rt->loop)
    luaL_error(L, "%s: cannot run an event loop while another loop is "
                  "running in this Lua state", lx_fname(L, NULL));
}

/* Make loop (its Loop object at loopidx, anchored meanwhile) the running
   loop of its runtime, run by L: the one way in (lx_loop_run, attach). */
static void loop_enter(lua_State *L, lx_loop *loop, int loopidx) {
  lua_pushvalue(L, loopidx);
  loop->self_ref = lx_ref(L, loop->rt);
  loop->rt->loop = loop;
  loop->L = L;
  loop->running = 1;
}

/* The one way out: no running loop, the Loop object no longer anchored. */
static void loop_leave(lua_State *L, lx_loop *loop) {
  loop->running = 0;
  uv_idle_stop(&loop->idle);
  loop->rt->loop = NULL;
  loop->L = NULL;
  lx_unref(L, loop->rt, &loop->self_ref);
}

/*
** Attach the loop of the Loop object at loopidx to L for good: it is the
** running loop of L's runtime until lx_loop_detach, and whoever owns the
** uv_loop_t drives it with uv_run (the embedding host).
*/
void lx_loop_attach(lua_State *L, int loopidx) {
  lx_loop *loop = lx_loop_check(L, loopidx);
  check_runnable(L, loop);
  loop_enter(L, loop, loopidx);
  sync_idle(loop);
}

void lx_loop_detach(lua_State *L, lx_loop *loop) {
  loop_leave(L, loop);
}

int lx_loop_run(lua_State *L, int loopidx, int fidx, int mode) {
  lx_loop *loop = lx_loop_check(L, loopidx);
  int result = LX_RUN_IDLE, stopped_before = loop->stopping;
  lx_future *target = fidx ? lua_touserdata(L, fidx) : NULL;
  check_runnable(L, loop);
  if (mode == LX_RUN_UNTIL && target->state != LX_PENDING) return LX_RUN_DONE;
  if (mode == LX_RUN_DRAIN && loop->ntasks == 0) return LX_RUN_DONE;
  loop_enter(L, loop, loopidx);
  loop->stopping = 0;
  loop->drain = mode == LX_RUN_DRAIN;
  if (target) lx_waiter_link(target, &loop->until, until_wake);
  sync_idle(loop);
  if (stopped_before) { /* stop() before run: one iteration, as asyncio */
    loop->stopping = 1;
    uv_run(loop->uv, UV_RUN_NOWAIT);
    result = LX_RUN_STOPPED;
  } else {
    for (;;) {
      int alive = uv_run(loop->uv, UV_RUN_DEFAULT);
      if (target ? target->state != LX_PENDING
                 : (mode == LX_RUN_DRAIN && loop->ntasks == 0)) {
        if (mode == LX_RUN_DRAIN && loop->ready_head) {
          /* the done callbacks the last tasks scheduled as they ended: one
             more batch, as asyncio's run_until_complete runs the iteration
             that settles its future */
          loop->stopping = 1;
          uv_run(loop->uv, UV_RUN_NOWAIT);
        }
        result = LX_RUN_DONE;
        break;
      }
      if (loop->stopping) {
        result = LX_RUN_STOPPED;
        break;
      }
      if (!alive) break; /* LX_RUN_IDLE */
    }
  }
  lx_waiter_unlink(&loop->until);
  loop->stopping = loop->drain = 0;
  loop_leave(L, loop);
  return result;
}

/* {======================================================================
** Pool requests left at close. A request running on libuv's thread pool
** cannot be stopped (a read of a FIFO or a terminal nobody writes to, a
** to_thread call that never returns), and libuv calls back only when it
** ends. Closing the loop waits for such requests at most
** LASYNC_SHUTDOWN_TIMEOUT seconds (default 1, as asyncio.run bounds its
** wait for the executor), then abandons them: the uv loop stays allocated
** and unclosed for the pool threads that still hold it, and one warning
** names what was left.
** ======================================================================= */

#define LX_SHUTDOWN_TIMEOUT_MS 1000u

/* The wait in ms (UINT64_MAX: for ever), from LASYNC_SHUTDOWN_TIMEOUT. */
static uint64_t shutdown_timeout(lx_runtime *rt) {
  const char *s = getenv("LASYNC_SHUTDOWN_TIMEOUT");
  char *end;
  double d;
  if (s == NULL || *s == '\0') return LX_SHUTDOWN_TIMEOUT_MS;
  d = strtod(s, &end);
  if (*end != '\0' || end == s || d != d || d < 0) {
    lx_warn(rt, "LASYNC_SHUTDOWN_TIMEOUT: expected seconds (got '%s'), "
                "using %u s", s, LX_SHUTDOWN_TIMEOUT_MS / 1000);
    return LX_SHUTDOWN_TIMEOUT_MS;
  }
  return d >= 1e12 ? UINT64_MAX : (uint64_t)(d * 1000 + 0.5);
}

/* What the pool request req is, for the warning: "File:read (fd 5)" */
static void pooled_name(const uv_req_t *req, char *buf, size_t len) {
  const uv_fs_t *fs = (const uv_fs_t *)req;
  const char *what = NULL;
  switch (req->type) {
  case UV_WORK: snprintf(buf, len, "to_thread call"); return;
  case UV_GETADDRINFO: snprintf(buf, len, "getaddrinfo"); return;
  case UV_GETNAMEINFO: snprintf(buf, len, "getnameinfo"); return;
  case UV_FS: break;
  default: snprintf(buf, len, "%s request", uv_req_type_name(req->type));
    return;
  }
  switch (uv_fs_get_type(fs)) {
  case UV_FS_READ: what = "File:read"; break;
  case UV_FS_WRITE: what = "File:write"; break;
  case UV_FS_FSYNC: what = "File:sync"; break;
  case UV_FS_FSTAT: what = "File:seek"; break;
  case UV_FS_CLOSE: what = "File:close"; break;
  default: break;
  }
  if (what)
    snprintf(buf, len, "%s (fd %d)", what, (int)fs->file);
  else
    snprintf(buf, len, "fs request (%s)", fs->path ? fs->path : "?");
}

/*
** From here on the process must not run libuv's exit-time cleanup: it
** joins the pool threads, and one of them never returns. Keep this code
** (and so libuv) mapped, since Lua unloads C modules at lua_close and an
** abandoned to_thread call runs our code, and end the process with _exit
** once exit() has run the handlers registered after this one.
*/
#if defined(__GLIBC__)
static void exit_now(int status, void *ud) {
  (void)ud;
  fflush(NULL);
  _exit(status);
}
#endif

static void keep_until_exit(void) {
  static int done;
  Dl_info info;
  if (done) return;
  done = 1;
  if (dladdr((void *)keep_until_exit, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#if defined(__GLIBC__)
  on_exit(exit_now, NULL);
#endif
}

static void guard_cb(uv_timer_t *guard) {
  *(int *)guard->data = 1;
}

/*
** Close the loop's own uv loop once every request has called back, waiting
** at most the shutdown timeout for those still on the pool; else abandon
** them, and the uv loop with them (see above).
*/
static void uv_finish(lx_loop *loop) {
  uv_loop_t *uv = loop->uv;
  uint64_t ms;
  uv_timer_t guard; /* unreferenced: ends the wait, never prolongs it */
  int expired = 0;
  unsigned left, shown = 0;
  char names[1024], one[256];
  size_t used = 0;
  lx_resource *r;
  uv_run(uv, UV_RUN_NOWAIT); /* close callbacks, cancelled requests */
  if (uv_loop_close(uv) == 0) return;
  ms = shutdown_timeout(loop->rt);
  if (ms == UINT64_MAX) {
    while (uv_loop_close(uv) == UV_EBUSY) uv_run(uv, UV_RUN_ONCE);
    return;
  }
  if (uv_loop_alive(uv)) {
    uv_update_time(uv);
    uv_timer_init(uv, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, guard_cb, ms, 0);
    uv_unref((uv_handle_t *)&guard);
    while (!expired && uv_loop_alive(uv)) uv_run(uv, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(uv, UV_RUN_NOWAIT); /* finish closing it */
  }
  if (uv_loop_close(uv) == 0) return;
  names[0] = '\0';
  for (r = loop->pooled.next; r != &loop->pooled && shown < 8; r = r->next) {
    pooled_name(lx_container_of(r, lx_pooled, node)->req, one, sizeof one);
    if (used + strlen(one) + 3 >= sizeof names) break;
    used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
                             shown++ ? ", " : "", one);
  }
  left = uv->active_reqs.count;
  if (left > shown)
    snprintf(names + used, sizeof names - used, "%s%u other%s",
             shown ? " and " : "", left - shown, left - shown == 1 ? "" : "s");
  else
    left = shown;
  lx_warn(loop->rt, "closing the event loop: abandoned %u thread-pool "
                    "request%s still running after %g s: %s", left,
          left == 1 ? "" : "s", (double)ms / 1000, names);
  loop->own_uv = 0; /* leaked on purpose: the pool threads still use it */
  keep_until_exit();
}

/* }====================================================================== */

/*
** Close a loop that is not running: pending tasks are detached (they can
** never run again and are no longer anchored), scheduled callbacks are
** dropped, libuv handles are closed.
*/
void lx_loop_close(lua_State *L, lx_loop *loop) {
  if (loop->closed || loop->closing) return;
  loop->closing = 1;
  loop->L = L; /* the drained callbacks release their anchors in L */
  while (loop->ready_head) run_batch(loop); /* runs nothing: closing */
  if (loop->ntasks > 0) {
    int i, n = lx_push_pending_tasks(L, loop);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      lx_task_detach(L, lua_touserdata(L, -1));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lx_gather_close_all(L, loop); /* they count tasks that never finish */
  lx_timers_run_due(loop, UINT64_MAX); /* handles left: release them */
  while (loop->ready_head) run_batch(loop);
  lx_unref(L, loop->rt, &loop->handler_ref);
  if (loop->interrupt) /* still watching: its state is closing under it */
    lx_interrupt_stop(loop->interrupt); /* (os.exit(code, true) in a task) */
  while (loop->resources.next != &loop->resources) { /* streams, servers */
    lx_resource *r = loop->resources.next;
    lx_list_remove(r);
    r->close(L, r);
  }
  uv_close((uv_handle_t *)&loop->timer, handle_closed_cb);
  uv_close((uv_handle_t *)&loop->check, handle_closed_cb);
  uv_close((uv_handle_t *)&loop->idle, handle_closed_cb);
  loop->L = NULL; /* what is still posted runs only to free itself */
  uv_async_send(&loop->inbox);
  uv_run(loop->uv, UV_RUN_NOWAIT);
  uv_close((uv_handle_t *)&loop->inbox, handle_closed_cb);
  if (loop->own_uv) uv_finish(loop);
  loop->L = NULL;
  loop->closed = 1;
}

/*
** lx_loop_close, then, when the loop borrows its uv loop (a host on the
** application's), run that without blocking until the close callbacks of
** the loop's own handles have run, so that the loop can be freed.
*/
void lx_loop_close_wait(lua_State *L, lx_loop *loop) {
  int own = loop->own_uv; /* uv_finish clears it when it abandons */
  lx_loop_close(L, loop);
  if (!own)
    while (loop->open_handles > 0) uv_run(loop->uv, UV_RUN_NOWAIT);
}

/* }====================================================================== */

/* {======================================================================
** Driven by a host (the embedding API)
** ======================================================================= */

/* The uv loop under loop (its own, or the one it borrows). */
uv_loop_t *lx_loop_uv(const lx_loop *loop) {
  return loop->uv;
}

/*
** Drive a loop attached for a host (lx_loop_attach): one uv_run in mode,
** or, with UV_RUN_DEFAULT, until no task is pending. Returns the number of
** pending tasks, or -1 on a deadlock: tasks wait, and nothing (no handle,
** no ready work) is left that could wake them.
*/
int lx_loop_drive(lx_loop *loop, uv_run_mode mode) {
  if (mode != UV_RUN_DEFAULT) {
    uv_run(loop->uv, mode);
    return (int)loop->ntasks;
  }
  while (loop->ntasks > 0)
    if (uv_run(loop->uv, UV_RUN_ONCE) == 0 && loop->ntasks > 0 &&
        loop->ready_head == NULL)
      return -1;
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Exception handler
** ======================================================================= */

/*
** Report an error that has nobody to raise to (a callback failed): through
** the loop's exception handler if set, else on stderr. The error is at
** erridx; `traceback` may be NULL.
*/
void lx_loop_report(lua_State *L, lx_loop *loop, const char *what,
                    int erridx, const char *traceback) {
  erridx = lua_absindex(L, erridx);
  if (loop->handler_ref != LUA_NOREF && loop->self_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->handler_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->self_ref);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, what);
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, erridx);
    lua_setfield(L, -2, "exception");
    if (traceback) {
      lua_pushstring(L, traceback);
      lua_setfield(L, -2, "traceback");
    }
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
      lx_report(L, "exception in the exception handler", -1, NULL);
      lua_pop(L, 1);
    } else {
      return;
    }
  }
  lx_report(L, what, erridx, traceback);
}

/* loop:set_exception_handler(fn | nil) */
static int loop_set_exception_handler(lua_State *L) {
  lx_loop *loop = lx_loop_check(L, 1);
  if (!lua_isnoneornil(L, 2) && !lx_is_callable(L, 2))
    luaL_error(L, "lasync.Loop:set_exception_handler: handler must be a "
                  "function or nil (got %s)", luaL_typename(L, 2));
  lx_unref(L, loop->rt, &loop->handler_ref);
  lua_settop(L, 2);
  loop->handler_ref = lua_isnil(L, 2) ? LUA_NOREF : lx_ref(L, loop->rt);
  return 0;
}

static int loop_get_exception_handler(lua_State *L) {
  lx_loop *loop = lx_loop_check(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->handler_ref);
  return 1;
}

/* loop:default_exception_handler(context): print to stderr */
static int loop_default_exception_handler(lua_State *L) {
  lx_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "message");
  lua_getfield(L, 2, "exception");
  lua_getfield(L, 2, "traceback");
  lx_report(L, lx_optstring(L, 3, "unhandled error"), 4,
            lua_tostring(L, 5));
  return 0;
}

/* loop:call_exception_handler(context) */
static int loop_call_exception_handler(lua_State *L) {
  lx_loop *loop = lx_loop_check(L, 1);
  lx_checktype(L, 2, LUA_TTABLE);
  if (loop->handler_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->handler_ref);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 0);
    return 0;
  }
  return loop_default_exception_handler(L);
}

/* }====================================================================== */

/* {======================================================================
** Loop methods
** ======================================================================= */

static lx_loop *check_open(lua_State *L, const char *fname) {
  lx_loop *loop = lx_loop_check(L, 1);
  if (loop->closed)
    luaL_error(L, "lasync.Loop:%s: the event loop is closed", fname);
  return loop;
}

/* loop:run_until_complete(awaitable) -> results */
static int loop_run_until_complete(lua_State *L) {
  lx_loop *loop = check_open(L, "run_until_complete");
  int r;
  lua_settop(L, 2);
  check_runnable(L, loop); /* before a task is created for nothing */
  if (lua_isfunction(L, 2)) {
    lx_task_new(L, loop, 1, 2, 0);
    lua_replace(L, 2);
  } else {
    lx_future *f = lx_future_check(L, loop->rt, 2, "Loop:run_until_complete");
    if (f->loop == NULL) lx_future_bind(L, 2, loop, 1);
    if (f->loop != loop)
      luaL_error(L, "lasync.Loop:run_until_complete: the future belongs to "
                    "another event loop");
  }
  r = lx_loop_run(L, 1, 2, LX_RUN_UNTIL);
  if (r == LX_RUN_STOPPED)
    luaL_error(L, "lasync.Loop:run_until_complete: the event loop stopped "
                  "before the future completed");
  if (r == LX_RUN_IDLE)
    luaL_error(L, "lasync.Loop:run_until_complete: deadlock: the future can "
                  "never complete (no tasks, timers or I/O left to run)");
  return lx_future_unwrap(L, 2);
}

/* loop:run_forever(): until stop(), or until nothing is left to do */
static int loop_run_forever(lua_State *L) {
  check_open(L, "run_forever");
  lx_loop_run(L, 1, 0, LX_RUN_FOREVER);
  return 0;
}

/* loop:stop(): the running batch finishes, then run_* returns */
static int loop_stop(lua_State *L) {
  lx_loop *loop = lx_loop_check(L, 1);
  loop->stopping = 1;
  if (loop->running) uv_stop(loop->uv);
  return 0;
}

static int loop_close(lua_State *L) {
  lx_loop *loop = lx_loop_check(L, 1);
  if (loop->running)
    luaL_error(L, "lasync.Loop:close: cannot close a running event loop");
  lx_loop_close(L, loop);
  return 0;
}

static int loop__gc(lua_State *L) {
  lx_loop_box *box = luaL_testudata(L, 1, LX_LOOP);
  if (box == NULL)
    luaL_error(L, "lasync.Loop:__gc: expected a Loop (got %s)",
               lx_typename(L, 1));
  if (box->loop) {
    lx_loop_close(L, box->loop);
    if (box->loop->open_handles == 0)
      loop_free(box->loop);
    else /* a borrowed uv loop will call back later */
      box->loop->orphan = 1;
    box->loop = NULL;
  }
  return 0;
}

static int loop_is_running(lua_State *L) {
  lua_pushboolean(L, lx_loop_check(L, 1)->running);
  return 1;
}

static int loop_is_closed(lua_State *L) {
  lua_pushboolean(L, lx_loop_check(L, 1)->closed);
  return 1;
}

/* loop:time() -> monotonic seconds */
static int loop_time(lua_State *L) {
  lx_loop_check(L, 1);
  lua_pushnumber(L, lx_now() / 1e9);
  return 1;
}

static int loop_create_future(lua_State *L) {
  lx_loop *loop = check_open(L, "create_future");
  lx_future_new(L, loop->rt, loop, 1);
  return 1;
}

/* loop:create_task([opts,] fn, ...) -> Task */
static int loop_create_task(lua_State *L) {
  lx_loop *loop = check_open(L, "create_task");
  int fnidx = lua_istable(L, 2) && !lx_is_callable(L, 2) ? 3 : 2;
  if (!lx_is_callable(L, fnidx))
    luaL_error(L, "lasync.Loop:create_task: expected a function (got %s)",
               luaL_typename(L, fnidx));
  if (fnidx == 3) lx_task_check_options(L, 2, "Loop:create_task");
  lx_task_new(L, loop, 1, fnidx, lua_gettop(L) - fnidx);
  if (fnidx == 3) lx_task_apply_options(L, -1, 2);
  return 1;
}

static int loop_set_debug(lua_State *L) {
  lx_loop_check(L, 1)->debug = (unsigned char)lua_toboolean(L, 2);
  return 0;
}

static int loop_get_debug(lua_State *L) {
  lua_pushboolean(L, lx_loop_check(L, 1)->debug);
  return 1;
}

static int loop__tostring(lua_State *L) {
  lx_loop *loop;
  lx_loop_box *box = luaL_testudata(L, 1, LX_LOOP);
  if (box && box->loop == NULL) {
    lua_pushliteral(L, "lasync.Loop (finalized)");
    return 1;
  }
  loop = lx_loop_check(L, 1);
  lua_pushfstring(L, "lasync.Loop: %p (%s)", (void *)loop,
                  loop->closed ? "closed"
                               : loop->running ? "running" : "idle");
  return 1;
}

/* lasync.new_event_loop() -> Loop */
static int core_new_event_loop(lua_State *L) {
  lx_loop_new(L, lua_touserdata(L, lua_upvalueindex(1)), NULL);
  return 1;
}

/* lasync.get_running_loop() -> Loop */
static int core_get_running_loop(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_running_loop(L, rt, "get_running_loop");
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->loop->self_ref);
  return 1;
}

/* }====================================================================== */

void lx_open_loop(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"run_until_complete", loop_run_until_complete},
    {"run_forever", loop_run_forever},
    {"stop", loop_stop},
    {"close", loop_close},
    {"is_running", loop_is_running},
    {"is_closed", loop_is_closed},
    {"time", loop_time},
    {"create_future", loop_create_future},
    {"create_task", loop_create_task},
    {"set_exception_handler", loop_set_exception_handler},
    {"get_exception_handler", loop_get_exception_handler},
    {"default_exception_handler", loop_default_exception_handler},
    {"call_exception_handler", loop_call_exception_handler},
    {"set_debug", loop_set_debug},
    {"get_debug", loop_get_debug},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", loop__gc},
    {"__close", loop_close},
    {"__tostring", loop__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"new_event_loop", core_new_event_loop},
    {"get_running_loop", core_get_running_loop},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_LOOP, LX_LOOP, methods, meta);
  lx_setfuncs(L, funcs);
}
