/*
** core.h — declarations shared by the files of bindings/core/, the floor
** every other layer (sync/, io/, thread/) stands on. Owns the core data
** structures: the runtime (one per lua_State), the loop (ready queue,
** timer heap, libuv handles), futures, tasks and waiters.
*/
#ifndef LASYNC_CORE_H
#define LASYNC_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "lua.h"
#include "lauxlib.h"

#include "bufcache.h"

#if defined(__GNUC__)
#define LX_HIDDEN __attribute__((visibility("hidden")))
#else
#define LX_HIDDEN
#endif

/* The one symbol bindings/ exports: the module entry point (init.c) */
#if defined(__GNUC__)
#define LX_EXPORT __attribute__((visibility("default")))
#else
#define LX_EXPORT
#endif
LX_EXPORT int luaopen_lasync_core(lua_State *L);

#define lx_container_of(p, type, field) \
  ((type *)((char *)(p) - offsetof(type, field)))

typedef struct lx_runtime lx_runtime;
typedef struct lx_loop lx_loop;
typedef struct lx_future lx_future;
typedef struct lx_task lx_task;

/* Metatable names (also what Lua's own error messages print). */
#define LX_TASK "lasync.Task"
#define LX_FUTURE "lasync.Future"
#define LX_LOOP "lasync.Loop"
#define LX_HANDLE "lasync.Handle"
#define LX_GATHER "lasync.Gather"

/* {======================================================================
** Ready queue, waiters and timers: intrusive nodes, no allocation
** ======================================================================= */

/* A node in a loop's FIFO ready queue. */
typedef struct lx_ready lx_ready;
typedef void (*lx_ready_fn)(lua_State *L, lx_loop *loop, lx_ready *node);
struct lx_ready {
  lx_ready *next; /* LX_NOT_QUEUED when not in the queue (NULL: the tail) */
  lx_ready_fn run;
};

#define LX_NOT_QUEUED ((lx_ready *)(uintptr_t)1)

static inline void lx_ready_init(lx_ready *node, lx_ready_fn run) {
  node->next = LX_NOT_QUEUED;
  node->run = run;
}

/*
** A node in a future's list of waiters. `wake` runs synchronously when the
** future settles, with the settled future at stack index `fidx` of L; it
** must not run Lua code (it may push to the ready queue or settle other
** futures).
*/
typedef struct lx_waiter lx_waiter;
typedef void (*lx_wake_fn)(lua_State *L, lx_waiter *w, int fidx);
struct lx_waiter {
  lx_waiter *prev, *next; /* NULL when not linked */
  lx_wake_fn wake;
  unsigned order; /* registration order among the future's waiters and
                     done callbacks */
  unsigned aux;   /* the owner's (a gather: the child's index) */
};

/* An entry in a loop's deadline heap. */
typedef struct lx_timer lx_timer;
typedef void (*lx_timer_fn)(lx_loop *loop, lx_timer *t);
struct lx_timer {
  uint64_t when; /* deadline, uv_hrtime() nanoseconds */
  lx_timer_fn fire;
  unsigned seq;  /* arming order: equal deadlines fire first-armed first */
  unsigned idx;  /* position in the heap + 1; 0 when not armed */
};

/*
** Something of a loop with a libuv handle (a stream, a server, a UDP
** endpoint), in the loop's list so that closing the loop closes it.
*/
typedef struct lx_resource lx_resource;
struct lx_resource {
  lx_resource *prev, *next; /* NULL when not in the list */
  void (*close)(lua_State *L, lx_resource *r);
};

static inline void lx_list_init(lx_resource *head) {
  head->prev = head->next = head;
}

static inline void lx_list_add(lx_resource *head, lx_resource *r) {
  r->next = head;
  r->prev = head->prev;
  head->prev->next = r;
  head->prev = r;
}

static inline void lx_list_remove(lx_resource *r) {
  if (r->next == NULL) return;
  r->prev->next = r->next;
  r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

/*
** A request on libuv's thread pool (fs, DNS, to_thread), in its loop's
** list from the moment it starts until its callback runs: a loop that
** gives up waiting for it at close names it (lx_loop_close). Zeroed (or
** node.next NULL) when not listed.
*/
typedef struct lx_pooled {
  lx_resource node; /* in loop->pooled; node.close unused */
  const uv_req_t *req;
} lx_pooled; /* lx_pooled_add below lx_loop; lx_list_remove(&p->node) */

/* }====================================================================== */

/* {======================================================================
** Arguments that reach C APIs as C strings
** ======================================================================= */

/*
** The string at idx, for a C API that takes a C string (a path, a host, an
** argv entry, a signal name): a number is converted in place; anything
** else, or a string holding a NUL byte (the C API would see only the part
** before it), raises "lasync.<fname>: <what> ...". fname as lx_os_error
** takes it ("fs.unlink"), what names the value ("path", "option 'cwd'").
*/
static inline const char *lx_checkcstring(lua_State *L, int idx,
                                          const char *fname,
                                          const char *what) {
  size_t len;
  const char *s = NULL;
  int type = lua_type(L, idx);
  if (type == LUA_TSTRING || type == LUA_TNUMBER) s = lua_tolstring(L, idx,
                                                                  &len);
  if (s == NULL)
    luaL_error(L, "lasync.%s: %s must be a string (got %s)", fname, what,
               luaL_typename(L, idx));
  else if (memchr(s, '\0', len) != NULL)
    luaL_error(L, "lasync.%s: %s contains an embedded NUL byte", fname,
               what);
  return s;
}

/* lx_checkcstring, or dflt when the value at idx is none or nil */
static inline const char *lx_optcstring(lua_State *L, int idx,
                                        const char *fname, const char *what,
                                        const char *dflt) {
  return lua_isnoneornil(L, idx) ? dflt
                                 : lx_checkcstring(L, idx, fname, what);
}

/* }====================================================================== */

/* {======================================================================
** Futures and tasks
** ======================================================================= */

enum { LX_PENDING, LX_FINISHED, LX_FAILED, LX_CANCELLED };

/* User values of a future's userdata (a task has LX_TASK_NUV of them). */
enum {
  LX_UV_RESULT = 1, /* results (one value, or a table when nresults > 1),
                       the error, or the cancel message */
  LX_UV_CALLBACKS,  /* done callbacks: nil or {cb1, order1, cb2, ...} */
  LX_UV_LOOP,       /* the loop object it is bound to (keeps it alive) */
  LX_FUTURE_NUV = LX_UV_LOOP,
  LX_UV_CORO,  /* task: its coroutine, cleared when the task is done */
  LX_UV_EXTRA, /* task: nil or a table {name, created, traceback, cause} */
  LX_TASK_NUV = LX_UV_EXTRA
};

struct lx_future {
  lx_loop *loop;     /* bound on first use; NULL before */
  lx_waiter waiters; /* sentinel of the circular list of C waiters */
  int nresults;      /* number of values in LX_UV_RESULT when finished */
  unsigned norder;   /* next registration number (waiters, callbacks) */
  unsigned char state;
  unsigned char kind;      /* LX_KIND_* */
  unsigned char retrieved; /* the error was looked at (no report) */
  unsigned char cancel_requested; /* gathers: cancelled, finishing */
  unsigned char has_callbacks;    /* LX_UV_CALLBACKS holds an array */
};

enum { LX_KIND_FUTURE, LX_KIND_TASK, LX_KIND_GATHER };

/*
** The suspension protocol (docs/internals-suspension.md). A task suspends
** on one awaitable at a time through lx_suspend, naming the kind of what
** it awaits with one of these descriptors (static const, one per kind),
** and a continuation that delivers the result when it runs again. The
** kind's registration (a waiter node, a deadline, a request) lives in the
** task's `on` union.
*/
typedef struct lx_awaitable {
  /*
  ** Take the task off what it waits on, if it still is (idempotent): it
  ** is cancelled, it cannot suspend after all, its loop closes or it is
  ** collected. Return 1 if it was still registered (it must be woken), 0
  ** if what it waited for has woken it already. NULL: nothing to undo.
  */
  int (*release)(lx_task *t);
  /*
  ** Pass a cancel request on instead (a task awaiting a future cancels
  ** the future, and the future's settling wakes it): return 1 if the
  ** cancellation will reach the task that way. NULL or 0: the task is
  ** released, woken, and raises CancelledError in its continuation.
  */
  int (*cancel)(lua_State *L, lx_task *t, int msgidx);
  /*
  ** The task leaves for good (lx_task_release: its loop closes, it is
  ** collected) after what it waited for woke it (release returned 0) but
  ** before its continuation ran: free what the wake-up handed over to
  ** the continuation. NULL: a wake-up hands nothing over.
  */
  void (*forget)(lx_task *t);
} lx_awaitable;

struct lx_task {
  lx_future fut;        /* must be first: a task is a future */
  lua_State *co;        /* coroutine, owned by user value LX_UV_CORO */
  lx_ready ready;       /* node in the loop's ready queue */
  union {               /* its registration with what it awaits */
    lx_waiter wait;     /* a future's or a wait list's waiter node */
    lx_timer timer;     /* the deadline of the current sleep */
    struct lx_op *op;   /* the libuv request (op.c); owned by the
                           request's callback once cleared */
  } on;
  const lx_awaitable *awaiting; /* the kind it is suspended on, or NULL */
  int ref;              /* anchor in the runtime's anchor table while
                           pending; released in task_finish/loop close */
  int await_idx;        /* stack index (in the suspended C frame) of the
                           awaited object */
  lua_KFunction k;      /* continuation of the suspended C function */
  int suspend_top;      /* its stack top when it suspended */
  unsigned id;          /* for the default name "Task-<id>" */
  int num_cancels;      /* cancel() requests not uncancel()ed */
  unsigned char must_cancel; /* throw CancelledError at the next step */
  unsigned char started;
  unsigned char in_await;  /* suspended by the core, not by a bare yield */
  unsigned char in_cancel; /* cancel() is passing itself on: no recursion */
  unsigned char granted;   /* a primitive woke it: it holds what it waited
                              for (a permit, a turn) until it runs */
};

/* }====================================================================== */

/* {======================================================================
** Loop and runtime
** ======================================================================= */

typedef void (*lx_post_fn)(lua_State *L, void *ud);
typedef void (*lx_warn_fn)(void *ud, const char *msg);

struct lx_loop {
  uv_loop_t *uv;      /* owned when own_uv, else borrowed */
  uv_async_t inbox;   /* wakes the loop for callbacks posted by threads */
  uv_mutex_t inbox_mutex;
  struct lx_post *inbox_head, *inbox_tail; /* posted, under the mutex */
  int expected;       /* posts awaited from other threads (lx_loop_hold) */
  uv_timer_t timer;   /* armed at the heap's earliest deadline */
  uv_check_t check;   /* runs the ready queue after each poll */
  uv_idle_t idle;     /* active while work is ready: non-blocking poll */
  lx_runtime *rt;
  lua_State *L;       /* thread that runs the loop, while running */
  lx_ready *ready_head, *ready_tail;
  lx_timer **heap;    /* binary min-heap of armed timers */
  unsigned heap_len, heap_cap;
  unsigned timer_seq;
  lx_task *current;   /* the task being stepped, or NULL */
  lx_waiter until;    /* linked to run_until_complete's target */
  lx_resource resources; /* sentinel: open streams, servers, endpoints */
  lx_resource pooled;  /* sentinel: its requests on the thread pool */
  struct lx_interrupt *interrupt; /* lasync.run's default SIGINT watcher
                                     (interrupt.c) from lx_interrupt_start
                                     to lx_interrupt_stop, else NULL */
  uint64_t step_start; /* debug: when the current task step began */
  unsigned ntasks;    /* pending tasks */
  unsigned next_task_id;
  int handler_ref;    /* exception handler, registry ref or LUA_NOREF;
                         released in lx_loop_close */
  int self_ref;       /* the loop object, anchored while running */
  int open_handles;   /* libuv handles not yet closed */
  char *tls_cbuf;     /* the ciphertext read buffer of all its TLS streams
                         (tls.c): OpenSSL reads each read at once, so an
                         idle connection holds none */
  char *tls_obuf;     /* their ciphertext output, sent and emptied before
                         each TLS operation returns (tls.c) */
  size_t tls_olen, tls_ocap;
  lx_bufcache small_bufs; /* free small read buffers of its streams
                             (io/stream.c): idle HTTP connections give
                             theirs back */
  lx_bufcache tls_pbufs;  /* free plaintext buffers of its TLS streams
                             (io/tls.c), given back when a reader took
                             every byte */
  unsigned char own_uv, running, stopping, closing, closed, debug;
  unsigned char drain;  /* run until no task is pending */
  unsigned char orphan; /* its Loop object is gone: free when closed */
  unsigned char timers_due; /* a timer was armed already due: move it to
                               the ready queue after the running batch */
};

static inline void lx_pooled_add(lx_loop *loop, lx_pooled *p,
                                 const void *req) {
  p->req = req;
  lx_list_add(&loop->pooled, &p->node);
}

/* Classes whose metatables the runtime keeps at hand (LX_TASK, ...). */
enum { LX_MT_TASK, LX_MT_FUTURE, LX_MT_GATHER, LX_MT_HANDLE, LX_MT_LOOP,
       LX_MT_LOCK, LX_MT_SEMAPHORE, LX_MT_BOUNDED, LX_MT_EVENT, LX_MT_QUEUE,
       LX_MT_LIFO, LX_MT_PRIORITY, LX_MT_WAITLIST, LX_MT_READER,
       LX_MT_WRITER, LX_MT_SERVER, LX_MT_UDP, LX_MT_FILE, LX_MT_SIGNAL,
       LX_MT_PROCESS, LX_MT_THREAD, LX_MT_SSLCTX, LX_MT_COUNT };

struct lx_runtime {
  lx_loop *loop;  /* the running loop of this lua_State, or NULL */
  int anchors;    /* registry ref of the anchor table */
  int *free_slots; /* free indices of the anchor table (C-owned; freed in
                      runtime__gc); room for every slot ever used */
  int nfree, slots, cap;
  int mt[LX_MT_COUNT]; /* registry refs of the class metatables */
  const void *mtp[LX_MT_COUNT]; /* the same, as pointers: type checks */
  int unretrieved; /* failed tasks whose error nobody has looked at yet */
  int nrefs;      /* live registry refs made by lx_ref (lasync._stats) */
  int sigint_users; /* SIGINT watchers of the script (signal.c) */
  int interrupted;  /* Ctrl-Cs seen by lasync.run's default handler */
  int debug;      /* LASYNC_DEBUG or --debug: new loops start in debug */
  lx_warn_fn warn; /* where reports go (lx_warn) */
  void *warn_ud;
};

/* runtime.c */
/* A box whose __gc was called by hand (its C object is gone). */
#define LX_FINALIZED "the object was finalized (its __gc was called)"
#define LX_CANNOT_AWAIT \
  "cannot await here (inside a metamethod, finalizer or C call)"
LX_HIDDEN lx_runtime *lx_runtime_get(lua_State *L);
LX_HIDDEN int lx_anchor(lua_State *L, lx_runtime *rt, int idx);
LX_HIDDEN void lx_unanchor(lua_State *L, lx_runtime *rt, int *ref);
LX_HIDDEN void lx_push_anchored(lua_State *L, lx_runtime *rt, int ref);
LX_HIDDEN lx_loop *lx_running_loop(lua_State *L, lx_runtime *rt,
                                   const char *fname);
LX_HIDDEN lx_loop *lx_check_loop(lua_State *L, lx_runtime *rt,
                               const char *fname, int level);
LX_HIDDEN lx_task *lx_current_task(lua_State *L, lx_runtime *rt,
                                   const char *fname);
LX_HIDDEN lx_task *lx_check_await(lua_State *L, lx_runtime *rt,
                                  const char *fname, int level);
LX_HIDDEN const char *lx_push_error_text(lua_State *L, int idx);
LX_HIDDEN void lx_report(lua_State *L, const char *what, int erridx,
                         const char *traceback);
LX_HIDDEN void lx_warn(lx_runtime *rt, const char *fmt, ...);
LX_HIDDEN void lx_set_warn(lx_runtime *rt, lx_warn_fn fn, void *ud);
LX_HIDDEN uv_loop_t *lx_running_uv(lua_State *L);
LX_HIDDEN void lx_runtime_init(lua_State *L);
LX_HIDDEN void lx_open_runtime(lua_State *L);
LX_HIDDEN void lx_setfuncs(lua_State *L, const luaL_Reg *l);
LX_HIDDEN void lx_push_runtime(lua_State *L);
LX_HIDDEN void lx_newclass(lua_State *L, int mt, const char *name,
                           const luaL_Reg *methods, const luaL_Reg *meta);
LX_HIDDEN void lx_setclass(lua_State *L, lx_runtime *rt, int mt);
LX_HIDDEN void *lx_testclass(lua_State *L, lx_runtime *rt, int idx, int mt);
LX_HIDDEN int lx_classof(lua_State *L, lx_runtime *rt, int idx, int first,
                         int count);
LX_HIDDEN void *lx_checkclass(lua_State *L, lx_runtime *rt, int idx, int mt,
                              const char *fname);
LX_HIDDEN void *lx_checkbox(lua_State *L, lx_runtime *rt, int idx, int mt,
                             const char *fname);
LX_HIDDEN int lx_ref(lua_State *L, lx_runtime *rt);
LX_HIDDEN void lx_unref(lua_State *L, lx_runtime *rt, int *ref);
LX_HIDDEN int lx_is_callable(lua_State *L, int idx);
LX_HIDDEN const char *lx_typename(lua_State *L, int idx);

/* argcheck.c: argument errors naming the public function ("bad argument
   #1 to 'lasync.File:read'"); use these, never luaL_check* (see there) */
LX_HIDDEN void lx_name_function(lua_State *L, int idx, const char *prefix,
                                const char *key);
LX_HIDDEN void lx_name_functions(lua_State *L, lx_runtime *rt);
LX_HIDDEN void lx_push_names(lua_State *L);
LX_HIDDEN const char *lx_fname(lua_State *L, const char *fallback);
LX_HIDDEN int lx_argerror_as(lua_State *L, int arg, const char *name,
                             const char *msg);
LX_HIDDEN int lx_argerror(lua_State *L, int arg, const char *msg);
LX_HIDDEN int lx_typeerror(lua_State *L, int arg, const char *tname);
LX_HIDDEN void lx_checktype(lua_State *L, int arg, int t);
LX_HIDDEN lua_Number lx_checknumber(lua_State *L, int arg);
LX_HIDDEN lua_Integer lx_checkinteger(lua_State *L, int arg);
LX_HIDDEN lua_Integer lx_optinteger(lua_State *L, int arg, lua_Integer def);
LX_HIDDEN const char *lx_checklstring(lua_State *L, int arg, size_t *len);
LX_HIDDEN const char *lx_optlstring(lua_State *L, int arg, const char *def,
                                    size_t *len);
LX_HIDDEN int lx_checkoption(lua_State *L, int arg, const char *def,
                             const char *const lst[]);
#define lx_checkstring(L, arg) (lx_checklstring(L, (arg), NULL))
#define lx_optstring(L, arg, d) (lx_optlstring(L, (arg), (d), NULL))
#define lx_argcheck(L, cond, arg, msg) \
  ((void)((cond) || lx_argerror(L, (arg), (msg))))
#define lx_argexpected(L, cond, arg, tname) \
  ((void)((cond) || lx_typeerror(L, (arg), (tname))))

/* loop.c */
LX_HIDDEN lx_loop *lx_loop_new(lua_State *L, lx_runtime *rt, uv_loop_t *uv);
LX_HIDDEN lx_loop *lx_loop_check(lua_State *L, int idx);
LX_HIDDEN void lx_ready_push(lx_loop *loop, lx_ready *node);
LX_HIDDEN uint64_t lx_now(void);
LX_HIDDEN int lx_live_loops(void);
LX_HIDDEN void lx_count_handles(int delta);
LX_HIDDEN int lx_live_handles(void);
#define LX_SLOW_STEP_NS 100000000u /* debug: warn when a step takes 100 ms */

enum { LX_RUN_UNTIL, LX_RUN_FOREVER, LX_RUN_DRAIN };
enum { LX_RUN_DONE, LX_RUN_STOPPED, LX_RUN_IDLE };
LX_HIDDEN int lx_loop_run(lua_State *L, int loopidx, int fidx, int mode);
LX_HIDDEN void lx_loop_attach(lua_State *L, int loopidx);
LX_HIDDEN void lx_loop_detach(lua_State *L, lx_loop *loop);
LX_HIDDEN void lx_loop_close(lua_State *L, lx_loop *loop);
LX_HIDDEN void lx_loop_close_wait(lua_State *L, lx_loop *loop);
LX_HIDDEN uv_loop_t *lx_loop_uv(const lx_loop *loop);
LX_HIDDEN int lx_loop_drive(lx_loop *loop, uv_run_mode mode);
LX_HIDDEN void lx_loop_report(lua_State *L, lx_loop *loop, const char *what,
                              int erridx, const char *traceback);
LX_HIDDEN void lx_open_loop(lua_State *L);

/* inbox.c: the thread-safe way into a loop */
LX_HIDDEN void lx_inbox_init(lx_loop *loop);
LX_HIDDEN int lx_loop_post(lx_loop *loop, lx_post_fn fn, void *ud);
LX_HIDDEN void lx_loop_hold(lx_loop *loop, int delta);
/*
** A future settled from any thread: lx_completion_new pushes a new future
** of L's running loop and returns its completion; lx_completion_send, from
** any thread and once, has fn(L, ud) push the results on the loop thread
** (raise: the future fails), or fn(NULL, ud) only free ud when the future
** was cancelled or the loop closed first. lasync.h's lasync_completion_*.
*/
typedef struct lx_completion lx_completion;
typedef int (*lx_completion_fn)(lua_State *L, void *ud);
LX_HIDDEN lx_completion *lx_completion_new(lua_State *L);
LX_HIDDEN int lx_completion_send(lx_completion *c, lx_completion_fn fn,
                                 void *ud);
LX_HIDDEN void lx_open_inbox(lua_State *L);

/* timer.c */
LX_HIDDEN void lx_timer_reserve(lua_State *L, lx_loop *loop);
LX_HIDDEN void lx_timer_arm(lx_loop *loop, lx_timer *t, uint64_t when);
LX_HIDDEN void lx_timer_disarm(lx_loop *loop, lx_timer *t);
LX_HIDDEN void lx_timers_run_due(lx_loop *loop, uint64_t now);
LX_HIDDEN void lx_timers_rearm(lx_loop *loop);
LX_HIDDEN uint64_t lx_delay_to_ns(lua_State *L, int idx, const char *fname);
LX_HIDDEN void lx_call_soon(lua_State *L, lx_loop *loop, int nargs);
LX_HIDDEN void lx_open_timer(lua_State *L);

/* future.c */
LX_HIDDEN lx_future *lx_future_new(lua_State *L, lx_runtime *rt, lx_loop *loop,
                                   int loopidx);
LX_HIDDEN void lx_future_bind(lua_State *L, int fidx, lx_loop *loop,
                              int loopidx);
LX_HIDDEN lx_future *lx_future_test(lua_State *L, lx_runtime *rt, int idx);
LX_HIDDEN lx_future *lx_future_check(lua_State *L, lx_runtime *rt, int idx,
                                     const char *fname);
LX_HIDDEN void lx_future_init(lx_future *f, lx_loop *loop, int kind);
LX_HIDDEN void lx_future_settle(lua_State *L, int fidx, int state, int n);
LX_HIDDEN int lx_future_cancel(lua_State *L, int fidx, int msgidx);
LX_HIDDEN int lx_future_push_results(lua_State *L, int fidx);
LX_HIDDEN void lx_future_push_first(lua_State *L, int fidx);
LX_HIDDEN int lx_future_unwrap(lua_State *L, int fidx);
LX_HIDDEN void lx_future_push_cancelled_error(lua_State *L, int fidx);
LX_HIDDEN void lx_future_retrieved(lx_future *f);
LX_HIDDEN void lx_future_add_callback(lua_State *L, int fidx, int cbidx);
LX_HIDDEN void lx_waiter_link(lx_future *f, lx_waiter *w, lx_wake_fn wake);
LX_HIDDEN void lx_waiter_unlink(lx_waiter *w);
LX_HIDDEN int lx_await(lua_State *L, lx_task *t, int idx);
LX_HIDDEN int lx_ensure_future(lua_State *L, int idx, lx_runtime *rt,
                               const char *fname);
LX_HIDDEN void lx_future_mark(lua_State *L);
LX_HIDDEN void lx_open_future(lua_State *L);

/* task.c */
LX_HIDDEN lx_task *lx_task_new(lua_State *L, lx_loop *loop, int loopidx,
                               int fnidx, int nargs);
LX_HIDDEN void lx_task_check_options(lua_State *L, int optidx,
                                     const char *fname);
LX_HIDDEN void lx_task_apply_options(lua_State *L, int tidx, int optidx);
LX_HIDDEN void lx_task_detach(lua_State *L, lx_task *t);
LX_HIDDEN void lx_task_release(lx_task *t);
LX_HIDDEN int lx_push_pending_tasks(lua_State *L, lx_loop *loop);
LX_HIDDEN int lx_task_cancel(lua_State *L, int tidx, int msgidx);
LX_HIDDEN int lx_task_raise_cancelled(lua_State *L, lx_task *t);
LX_HIDDEN void lx_task_push_name(lua_State *L, int tidx);
LX_HIDDEN void lx_task_where(lua_State *L, lx_task *t);
LX_HIDDEN int lx_suspend(lua_State *L, lx_task *t, const lx_awaitable *a,
                         lua_KFunction k);
LX_HIDDEN void lx_task_note_cause(lua_State *L, lx_task *t, int causeidx);
LX_HIDDEN void lx_task_set_name(lua_State *L, int tidx);
LX_HIDDEN void lx_task_note_error(lua_State *L, int tidx, int erridx,
                                  int tbidx);
LX_HIDDEN void lx_open_task(lua_State *L);

/* op.c: a libuv request awaited by a task; embed lx_op first in it */
typedef struct lx_op lx_op;
struct lx_op {
  lx_task *task;            /* the waiting task; NULL once it stopped */
  void (*abort)(lx_op *op); /* stop the request (uv_cancel, uv_close) */
  void (*dispose)(lx_op *op); /* free a completed request nobody will take,
                                 with what it holds (required; op.c) */
  int status;               /* set by the callback */
  int done;                 /* the callback ran */
};
LX_HIDDEN int lx_op_await(lua_State *L, lx_task *t, lx_op *op,
                          lua_KFunction k);
LX_HIDDEN int lx_op_finish(lx_op *op, int status);
LX_HIDDEN lx_op *lx_op_resumed(lx_task *t);

/* interrupt.c: the default SIGINT of lasync.run */
typedef struct lx_interrupt lx_interrupt;
LX_HIDDEN void *lx_interrupt_start(lx_loop *loop, lx_task *main);
LX_HIDDEN void lx_interrupt_stop(void *interrupt);
LX_HIDDEN void lx_set_interrupt_again(void (*fn)(void));
/*
** A SIGINT watcher of the script (io/signal.c): under lasync.run it
** subscribes to the default watcher instead of starting its own handle,
** so that a Ctrl-C that arrives before it started is not lost.
*/
typedef struct lx_sigsub {
  lx_resource link;  /* in the interrupt's list while subscribed (close is
                        unused) */
  lx_interrupt *in;  /* while subscribed, else NULL */
  uv_signal_t *h;    /* the watcher's handle, started if not subscribed */
  uv_signal_cb cb;   /* its callback: a delivery calls it alike */
  unsigned gen;      /* the last dispatch it was given or missed */
  unsigned char wait; /* a wait_signal call: it keeps the loop alive */
} lx_sigsub;
LX_HIDDEN int lx_sigsub_start(lx_loop *loop, lx_sigsub *sub, int signum);
LX_HIDDEN void lx_sigsub_unlink(lx_sigsub *sub);

/* wait.c */
LX_HIDDEN void lx_waitlist_init(lx_waiter *list);
LX_HIDDEN int lx_waitlist_empty(const lx_waiter *list);
LX_HIDDEN int lx_wait_on(lua_State *L, lx_task *t, lx_waiter *list,
                         lua_KFunction k);
LX_HIDDEN int lx_wait_release(lx_task *t);
LX_HIDDEN int lx_wait_k(lua_State *L, int status, lua_KContext ctx);
LX_HIDDEN lx_task *lx_waitlist_wake_first(lx_waiter *list);
LX_HIDDEN int lx_waitlist_wake_all(lx_waiter *list);
LX_HIDDEN int lx_waitlist_count(const lx_waiter *list);
LX_HIDDEN void lx_open_wait(lua_State *L);

/* gather.c */
LX_HIDDEN int lx_gather_cancel(lua_State *L, int gidx, int msgidx);
LX_HIDDEN int lx_gather_push_failed(lua_State *L, int gidx);
LX_HIDDEN void lx_gather_close_all(lua_State *L, lx_loop *loop);
LX_HIDDEN void lx_open_gather(lua_State *L);

/* run.c */
LX_HIDDEN void lx_loop_shutdown(lua_State *L, int loopidx, int report,
                                void *interrupt);
LX_HIDDEN int lx_run_main(lua_State *L, int nargs);
LX_HIDDEN int lx_run_host_main(lua_State *L, int nargs);
LX_HIDDEN void lx_open_run(lua_State *L);

/* errors.c */
enum {
  LX_ERR_BASE = 1,
  LX_ERR_CANCELLED,
  LX_ERR_TIMEOUT,
  LX_ERR_INVALID_STATE,
  LX_ERR_QUEUE_EMPTY,
  LX_ERR_QUEUE_FULL,
  LX_ERR_QUEUE_SHUTDOWN,
  LX_ERR_BROKEN_BARRIER,
  LX_ERR_OS,
  LX_ERR_INCOMPLETE_READ,
  LX_ERR_LIMIT_OVERRUN,
  LX_ERR_INTERRUPT,
  LX_ERR_SSL, /* a subclass of OSError */
  LX_ERR_COUNT
};
LX_HIDDEN void lx_error_new(lua_State *L, int cls, const char *msg);
LX_HIDDEN void lx_error_newv(lua_State *L, int cls, int msgidx);
LX_HIDDEN int lx_error_raise(lua_State *L, int cls, const char *fmt, ...);
LX_HIDDEN int lx_error_is(lua_State *L, int idx, int cls);
LX_HIDDEN int lx_traceback_msgh(lua_State *L);
LX_HIDDEN void lx_os_error_new(lua_State *L, int uverr, const char *fname,
                               const char *target);
LX_HIDDEN int lx_os_error(lua_State *L, int uverr, const char *fname,
                          const char *target);
LX_HIDDEN void lx_open_errors(lua_State *L);

/* }====================================================================== */

#endif
