/*
** thread.c — lasync.to_thread: run a Lua function on libuv's thread pool,
** in a lua_State of that pool thread (its own globals, standard libraries
** and require), so blocking work never runs on the loop thread. The
** function and its arguments, the results and errors cross by copy
** (copy.c). The caller gets a task (named "to_thread") that finishes with
** the function's results, or fails with its error and the worker's
** traceback. Cancelling the task takes back a call not yet started; one
** already running finishes, and its results are dropped.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lasync.h"
#include "lualib.h"

/*
** A to_thread call, C memory from the call until after_cb frees it (libuv
** always calls after_cb, with UV_ECANCELED when uv_cancel took it back).
*/
typedef struct pool_job {
  uv_work_t work;
  lx_buf in;       /* the function and its arguments */
  lx_buf out;      /* the results; or the error and its traceback */
  int ok;          /* the function returned */
  lx_loop *loop;   /* NULL once its loop closed: after_cb only frees */
  lx_resource node; /* in the loop's resources until after_cb, so that
                       closing the loop releases fut_ref (job_close) */
  lx_waiter fut_end; /* linked to the future while the call is out: the
                        future cancelled takes the call back (fut_ended) */
  int fut_ref;     /* the future the task awaits; released by after_cb or
                      job_close */
  lx_task *task;   /* the task awaiting it: pending (anchored) while the
                      future is, which is when after_cb uses it */
  lx_pooled pooled; /* in its loop's list from uv_queue_work to after_cb */
} pool_job;

/* {======================================================================
** The pool threads' Lua states
** ======================================================================= */

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

static void state_free(void *L) {
  lua_close(L);
}

static void state_key_init(void) {
  pthread_key_create(&state_key, state_free);
}

/* This pool thread's state, made on first use (closed when it exits). */
static lua_State *worker_state(void) {
  lua_State *W;
  pthread_once(&state_once, state_key_init);
  W = pthread_getspecific(state_key);
  if (W == NULL && (W = luaL_newstate()) != NULL) {
    luaL_openlibs(W);
    pthread_setspecific(state_key, W);
  }
  return W;
}

/* msgh: {error, traceback} */
static int worker_msgh(lua_State *W) {
  lua_createtable(W, 2, 0);
  lua_pushvalue(W, 1);
  lua_rawseti(W, -2, 1);
  luaL_traceback(W, W, NULL, 1);
  lua_rawseti(W, -2, 2);
  return 1;
}

/* pcall'd in the worker: run the job, copy its results out */
static int worker_run(lua_State *W) {
  pool_job *j = lua_touserdata(W, 1);
  int base, n;
  lua_settop(W, 1);
  lua_pushcfunction(W, worker_msgh);
  base = lua_gettop(W);
  n = lx_copy_in(W, &j->in);
  if (lua_pcall(W, n - 1, LUA_MULTRET, base) != LUA_OK) {
    j->ok = 0;
    return lua_error(W); /* {error, traceback} */
  }
  j->ok = 1;
  lx_copy_out(W, &j->out, base + 1, lua_gettop(W) - base, 0, "to_thread",
              "result");
  return 0;
}

/*
** pcall'd: copy the error (2), or what of it can cross, and its traceback
** (3) into the job (1)
*/
static int copy_error(lua_State *W) {
  pool_job *j = lua_touserdata(W, 1);
  lx_copy_error(W, &j->out, 2, "to_thread");
  lx_copy_out(W, &j->out, 3, 1, 0, "to_thread", "traceback");
  return 0;
}

/* On a pool thread: run the function; never raise. */
static void work_cb(uv_work_t *req) {
  pool_job *j = lx_container_of(req, pool_job, work);
  lua_State *W = worker_state();
  int top;
  if (W == NULL) return; /* out of memory: ok stays 0, out empty */
  top = lua_gettop(W);
  lua_pushcfunction(W, worker_run);
  lua_pushlightuserdata(W, j);
  if (lua_pcall(W, 1, 0, 0) != LUA_OK) {
    int err;
    j->ok = 0;
    lx_buf_free(&j->out);
    if (lua_istable(W, -1) && lua_rawgeti(W, -1, 2) == LUA_TSTRING) {
      lua_rawgeti(W, -2, 1); /* from the function: {error, traceback} */
      lua_insert(W, -2);
    } else { /* copying the results failed: its message, no traceback */
      if (lua_istable(W, -1)) lua_pop(W, 1);
      lua_pushnil(W);
    }
    err = lua_gettop(W) - 1;
    lua_pushcfunction(W, copy_error);
    lua_pushlightuserdata(W, j);
    lua_pushvalue(W, err);
    lua_pushvalue(W, err + 1);
    if (lua_pcall(W, 3, 0, 0) != LUA_OK) /* out of memory */
      lx_buf_free(&j->out);
  }
  lua_settop(W, top);
}

/* }====================================================================== */

/* {======================================================================
** Back on the loop thread
** ======================================================================= */

/* Unlinking is a no-op after after_cb's or job_close's own. */
static void job_free(pool_job *j) {
  lx_list_remove(&j->node);
  lx_list_remove(&j->pooled.node);
  lx_waiter_unlink(&j->fut_end);
  lx_buf_free(&j->in);
  lx_buf_free(&j->out);
  free(j);
}

/*
** The future was cancelled before the call returned (its task was): a
** call still queued never runs, as asyncio drops an executor job not yet
** started; after_cb gets UV_ECANCELED. A running one cannot be stopped:
** uv_cancel fails with UV_EBUSY and the results are dropped.
*/
static void fut_ended(lua_State *L, lx_waiter *w, int fidx) {
  pool_job *j = lx_container_of(w, pool_job, fut_end);
  (void)L;
  (void)fidx;
  uv_cancel((uv_req_t *)&j->work);
}

/*
** The task is cancelled before its first step, so before it awaits the
** future: cancel the future as that await would (the task's hook until
** then), so that a queued call is taken back. Its coroutine holds the body
** and its one argument, the future; the body never runs (must_cancel).
*/
static int cancel_unstarted(lua_State *L, lx_task *t, int msgidx) {
  luaL_checkstack(L, 2, NULL);
  lua_checkstack(t->co, 1);
  lua_pushvalue(t->co, 2);
  lua_xmove(t->co, L, 1);
  lx_future_cancel(L, -1, msgidx);
  lua_pop(L, 1);
  return 0;
}

/* What the task awaits until its first step: nothing to take it off. */
static const lx_awaitable awaiting_start = {NULL, cancel_unstarted};

/*
** The loop closes (its tasks are detached already): release the future
** while there is a Lua state to do it, take back a call not yet started,
** and leave the job to after_cb, which closing the loop waits for.
*/
static void job_close(lua_State *L, lx_resource *r) {
  pool_job *j = lx_container_of(r, pool_job, node);
  lx_waiter_unlink(&j->fut_end);
  lx_unanchor(L, j->loop->rt, &j->fut_ref);
  uv_cancel((uv_req_t *)&j->work);
  j->loop = NULL;
}

static void after_cb(uv_work_t *req, int status) {
  pool_job *j = lx_container_of(req, pool_job, work);
  lua_State *L;
  lx_runtime *rt;
  int top, fidx;
  if (j->loop == NULL) { /* the loop closed: nobody waits */
    job_free(j);
    return;
  }
  L = j->loop->L;
  rt = j->loop->rt;
  lx_waiter_unlink(&j->fut_end); /* settling it below is no cancel */
  top = lua_gettop(L);
  lx_push_anchored(L, rt, j->fut_ref);
  lx_unanchor(L, rt, &j->fut_ref);
  fidx = lua_gettop(L);
  if (((lx_future *)lua_touserdata(L, fidx))->state != LX_PENDING) {
    /* the task was cancelled: the results go nowhere */
  } else if (status == UV_ECANCELED) {
    lx_future_cancel(L, fidx, 0);
  } else if (j->ok) {
    int n = lx_copy_in(L, &j->out);
    lx_future_settle(L, fidx, LX_FINISHED, n);
  } else {
    int n = lx_copy_in(L, &j->out); /* error, traceback */
    if (n < 1) {
      lua_pushliteral(L, "lasync.to_thread: the worker ran out of memory");
      n = 1;
    }
    if (n > 1 && j->task->fut.state == LX_PENDING) { /* where it began */
      lx_push_anchored(L, rt, j->task->ref);
      lx_task_note_error(L, lua_gettop(L), fidx + 1, fidx + 2);
      lua_pop(L, 1);
    }
    lua_settop(L, fidx + 1);
    lx_future_settle(L, fidx, LX_FAILED, 1);
  }
  lua_settop(L, top);
  job_free(j);
}

/* The task's body: await the job's future (upvalue: the runtime). */
static int task_body(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  return lx_await(L, lx_current_task(L, rt, "to_thread"), 1);
}

/*
** pcall'd: copy the function and arguments (2..) into the buffer (1); the
** upvalue is the name errors give (to_thread or Loop:run_in_executor).
*/
static int copy_args(lua_State *L) {
  lx_copy_out(L, lua_touserdata(L, 1), 2, lua_gettop(L) - 1, 1,
              lua_touserdata(L, lua_upvalueindex(1)), "argument");
  return 0;
}

/* to_thread(fn, ...) for `fname`: a task finishing with fn(...)'s results */
static int to_thread(lua_State *L, const char *fname) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_loop *loop = lx_running_loop(L, rt, fname);
  int n = lua_gettop(L), r;
  lx_buf in;
  pool_job *j;
  lx_buf_init(&in);
  lua_pushlightuserdata(L, (void *)fname);
  lua_pushcclosure(L, copy_args, 1);
  lua_pushlightuserdata(L, &in);
  lua_rotate(L, 1, 2); /* copy_args, buffer, fn, args... */
  if (lua_pcall(L, n + 1, 0, 0) != LUA_OK) {
    lx_buf_free(&in);
    return lua_error(L);
  }
  j = calloc(1, sizeof *j);
  if (j == NULL) {
    lx_buf_free(&in);
    return luaL_error(L, "lasync.%s: out of memory", fname);
  }
  j->in = in;
  lx_buf_init(&j->out);
  j->loop = loop;
  lx_future_new(L, rt, loop, 0);           /* 1: the job's future */
  j->fut_ref = lx_anchor(L, rt, 1);
  lx_waiter_link(lua_touserdata(L, 1), &j->fut_end, fut_ended);
  lx_push_runtime(L);
  lua_pushcclosure(L, task_body, 1);       /* 2 */
  lua_pushvalue(L, 1);
  j->task = lx_task_new(L, loop, 0, 2, 1); /* 4 */
  lua_pushliteral(L, "to_thread");
  lx_task_set_name(L, 4);
  j->task->awaiting = &awaiting_start;
  j->node.close = job_close;
  lx_list_add(&loop->resources, &j->node);
  r = uv_queue_work(loop->uv, &j->work, work_cb, after_cb);
  if (r < 0) {
    lx_unanchor(L, rt, &j->fut_ref);
    job_free(j);
    lx_task_cancel(L, 4, 0); /* it would wait for nothing */
    return lx_os_error(L, r, fname, NULL);
  }
  lx_pooled_add(loop, &j->pooled, &j->work);
  return 1;
}

/* lasync.to_thread(fn, ...) -> a task finishing with fn(...)'s results */
static int core_to_thread(lua_State *L) {
  return to_thread(L, "to_thread");
}

/* loop:run_in_executor(nil, fn, ...) -> the same task, asyncio's name */
static int loop_run_in_executor(lua_State *L) {
  lx_loop_check(L, 1);
  if (!lua_isnoneornil(L, 2))
    return luaL_error(L, "lasync.Loop:run_in_executor: only the default "
                         "executor (nil) exists");
  if (lua_gettop(L) == 1) lua_pushnil(L); /* (): to_thread finds no fn */
  lua_rotate(L, 1, -2);
  lua_pop(L, 2);
  return to_thread(L, "Loop:run_in_executor");
}

/* }====================================================================== */

/* {======================================================================
** lasync.Thread: an OS thread with its own Lua state and loop
** ======================================================================= */

typedef struct early_post { /* posted before the thread's loop runs */
  struct early_post *next;
  lx_post_fn fn;
  void *ud;
} early_post;

typedef struct lx_thread {
  uv_thread_t tid;
  uv_mutex_t mutex;       /* guards own, early and finished */
  lx_loop *own;           /* the thread's loop while it takes jobs */
  early_post *early, **early_tail; /* jobs before own was set, in order */
  int finished;           /* own is gone for good */
  lx_loop *caller;        /* the loop of the thread's creator */
  lx_resource node;       /* in the caller's resources until joined */
  lx_resource own_node;   /* in own's resources: its close clears own */
  lx_buf start;           /* the function and arguments it starts with */
  lasync_completion *done; /* settled when the thread has finished */
  int stop_ref;           /* thread side: the future its main awaits */
  int ref;                /* caller side: the Thread object, until joined */
  int started, joined, has_box;
} lx_thread;

typedef struct thread_box {
  lx_thread *th;
} thread_box;

typedef struct thread_job {
  lx_buf code;             /* the function and its arguments */
  lx_buf out;              /* results, or the error and its traceback */
  int ok;
  lasync_completion *c;    /* submit: the caller's future; call_soon: NULL */
  lx_resource node;        /* in the thread loop's resources while its task
                              runs: closing that loop answers (job_abandon) */
} thread_job;

static void thread_job_free(thread_job *job) {
  lx_buf_free(&job->code);
  lx_buf_free(&job->out);
  free(job);
}

/* Post to the thread's loop (kept until it runs); -1 once it is done. */
static int thread_post(lx_thread *th, lx_post_fn fn, void *ud) {
  int r = -1;
  uv_mutex_lock(&th->mutex);
  if (th->own) {
    r = lx_loop_post(th->own, fn, ud);
  } else if (!th->finished) {
    early_post *e = malloc(sizeof *e);
    if (e) {
      e->next = NULL;
      e->fn = fn;
      e->ud = ud;
      *th->early_tail = e;
      th->early_tail = &e->next;
      r = 0;
    }
  }
  uv_mutex_unlock(&th->mutex);
  return r;
}

/* On the caller's loop: the job's results, or its error. */
static int deliver(lua_State *L, void *ud) {
  thread_job *job = ud;
  int n;
  if (L == NULL) {
    thread_job_free(job);
    return 0;
  }
  n = lx_copy_in(L, &job->out);
  if (job->ok) {
    thread_job_free(job);
    return n;
  }
  thread_job_free(job);
  if (n == 0) lua_pushliteral(L, "lasync.Thread: the thread stopped first");
  lua_settop(L, 1); /* the error: its traceback stays with the thread */
  return lua_error(L);
}

/* The job is over: its outcome (in out) goes to the caller, if any. */
static void job_send(thread_job *job) {
  if (job->c) lasync_completion_send(job->c, deliver, job);
  else thread_job_free(job);
}

/* pcall'd on the thread: copy the outcome of job (1), its task at 2 */
static int job_copy(lua_State *L) {
  thread_job *job = lua_touserdata(L, 1);
  lx_future *f = lua_touserdata(L, 2);
  if (f->state == LX_FINISHED) {
    int n = lx_future_push_results(L, 2);
    job->ok = 1;
    lx_copy_out(L, &job->out, 3, n, 0, "Thread:submit", "result");
  } else {
    if (f->state == LX_FAILED) {
      lx_future_retrieved(f);
      lua_getiuservalue(L, 2, LX_UV_RESULT);
    } else {
      lua_pushliteral(L, "lasync.Thread:submit: the job was cancelled");
    }
    lx_copy_error(L, &job->out, -1, "Thread:submit");
  }
  return 0;
}

/*
** On the thread: a job's task is done; send its outcome to the caller. A
** call_soon job has nobody to send to: its error stays unretrieved, so it
** is reported on the thread's loop. Results that cannot cross fail the
** caller's future with the reason, rather than leaving it pending.
*/
static int job_done(lua_State *L) {
  thread_job *job = lua_touserdata(L, lua_upvalueindex(1));
  lua_settop(L, 1);
  lx_list_remove(&job->node);
  if (job->c == NULL) {
    thread_job_free(job);
    return 0;
  }
  lua_pushcfunction(L, job_copy);
  lua_pushlightuserdata(L, job);
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) { /* the message crosses instead */
    job->ok = 0;
    lx_buf_free(&job->out);
    lx_copy_out(L, &job->out, -1, 1, 0, "Thread:submit", "error");
  }
  job_send(job);
  return 0;
}

/*
** The thread's loop closes before the job's task was done, or before
** job_done, a done callback, could run: the caller still gets an answer
** ("the thread stopped first"), and the job is freed.
*/
static void job_abandon(lua_State *L, lx_resource *r) {
  thread_job *job = lx_container_of(r, thread_job, node);
  (void)L;
  lx_buf_free(&job->out);
  job->ok = 0;
  job_send(job);
}

/* On the thread: start a job as a task (L == NULL: the thread stopped). */
static void run_job(lua_State *L, void *ud) {
  thread_job *job = ud;
  lx_runtime *rt;
  int base, n;
  if (L == NULL) {
    job_send(job);
    return;
  }
  rt = lx_runtime_get(L);
  base = lua_gettop(L);
  n = lx_copy_in(L, &job->code);
  lx_task_new(L, rt->loop, 0, base + 1, n - 1);
  lua_pushlightuserdata(L, job);
  lua_pushcclosure(L, job_done, 1);
  lx_future_add_callback(L, -2, -1);
  job->node.close = job_abandon;
  lx_list_add(&rt->loop->resources, &job->node);
  lua_settop(L, base);
}

static void stop_cb(lua_State *L, void *ud) {
  lx_thread *th = ud;
  if (L == NULL) return;
  lx_push_anchored(L, lx_runtime_get(L), th->stop_ref);
  if (((lx_future *)lua_touserdata(L, -1))->state == LX_PENDING) {
    lx_future_settle(L, lua_gettop(L), LX_FINISHED, 0);
    lx_loop_hold(th->own, -1); /* no more jobs to wait for */
  }
  lua_pop(L, 1);
}

/*
** The thread's loop closes: from now on posts wait in `early` (run with
** L == NULL by thread_main), for the inbox of a closing loop is drained
** once and then never read: a post landing there after that would leak.
*/
static void own_closing(lua_State *L, lx_resource *r) {
  lx_thread *th = lx_container_of(r, lx_thread, own_node);
  (void)L;
  uv_mutex_lock(&th->mutex);
  th->own = NULL;
  uv_mutex_unlock(&th->mutex);
}

/* The thread's main task: start fn(...), take jobs until stop(). */
static int thread_body(lua_State *L) {
  lx_thread *th = lua_touserdata(L, lua_upvalueindex(1));
  lx_runtime *rt = lx_runtime_get(L);
  lx_task *t = lx_current_task(L, rt, "Thread");
  int n;
  lua_settop(L, 0);
  n = lx_copy_in(L, &th->start);
  lx_task_new(L, rt->loop, 0, 1, n - 1);        /* fn(...), as a task */
  lua_pushliteral(L, "thread main");
  lx_task_set_name(L, -2);
  lx_future_new(L, rt, rt->loop, 0);            /* stop() settles it */
  th->stop_ref = lx_anchor(L, rt, -1);
  lx_loop_hold(rt->loop, 1); /* jobs may come: the loop is not idle */
  th->own_node.close = own_closing;
  lx_list_add(&rt->loop->resources, &th->own_node);
  uv_mutex_lock(&th->mutex);
  th->own = rt->loop;
  while (th->early) { /* what was posted before, in order */
    early_post *e = th->early;
    th->early = e->next;
    lx_loop_post(th->own, e->fn, e->ud);
    free(e);
  }
  th->early_tail = &th->early;
  uv_mutex_unlock(&th->mutex);
  return lx_await(L, t, lua_gettop(L));
}

static int thread_done_cb(lua_State *L, void *ud) {
  (void)L;
  (void)ud;
  return 0;
}

/*
** How a new thread's state finds lasync: liblasync's lasync_openlibs sets
** this to itself (the Lua files are compiled in); the lua5.4 module
** leaves it NULL, and the thread's require uses LUA_PATH/LUA_CPATH.
*/
void (*lx_thread_openlibs)(lua_State *L) = NULL;

static void thread_main(void *arg) {
  lx_thread *th = arg;
  lua_State *T = luaL_newstate();
  if (T) {
    luaL_openlibs(T);
    if (lx_thread_openlibs) lx_thread_openlibs(T);
    luaL_requiref(T, "lasync.core", luaopen_lasync_core, 0);
    lua_pop(T, 1);
    lua_getglobal(T, "require");
    lua_pushliteral(T, "lasync");
    if (lua_pcall(T, 1, 1, 0) == LUA_OK) lua_setglobal(T, "lasync");
    else lua_pop(T, 1);
    lua_pushlightuserdata(T, th);
    lua_pushcclosure(T, thread_body, 1);
    if (lx_run_main(T, 0) != LUA_OK) {
      lx_report(T, "lasync.Thread failed", -2, lua_tostring(T, -1));
    }
  }
  uv_mutex_lock(&th->mutex);
  th->own = NULL; /* its loop is closed: no more jobs */
  th->finished = 1;
  while (th->early) { /* it never ran: let the posts free themselves */
    early_post *e = th->early;
    th->early = e->next;
    e->fn(NULL, e->ud);
    free(e);
  }
  uv_mutex_unlock(&th->mutex);
  if (T) lua_close(T);
  lasync_completion_send(th->done, thread_done_cb, NULL);
}

/* Caller side: wait for the OS thread, once it has finished. */
static void thread_join_os(lx_thread *th) {
  if (th->started && !th->joined) {
    uv_thread_join(&th->tid);
    th->joined = 1;
  }
}

/* The caller's loop closes: stop the thread and wait for it. */
static void thread_close_resource(lua_State *L, lx_resource *r) {
  lx_thread *th = lx_container_of(r, lx_thread, node);
  thread_post(th, stop_cb, th);
  thread_join_os(th);
  lx_unanchor(L, th->caller->rt, &th->ref);
}

static lx_thread *check_thread(lua_State *L, const char *fname) {
  thread_box *b = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                                LX_MT_THREAD, fname);
  if (b->th == NULL) luaL_error(L, "lasync.%s: " LX_FINALIZED, fname);
  return b->th;
}

/* pcall'd: copy fn and args (2..) into the buffer (1) for `fname` */
static int copy_job(lua_State *L) {
  const char *fname = lua_tostring(L, lua_upvalueindex(1));
  lx_copy_out(L, lua_touserdata(L, 1), 2, lua_gettop(L) - 1, 1, fname,
              "argument");
  return 0;
}

/* Copy fn and its arguments from index first into a new b, or raise
   (then b owns nothing: copy before allocating what would leak). */
static void copy_fn(lua_State *L, lx_buf *b, int first, const char *fname) {
  int n = lua_gettop(L) - first + 1;
  lx_buf_init(b);
  lua_pushstring(L, fname);
  lua_pushcclosure(L, copy_job, 1);
  lua_pushlightuserdata(L, b);
  lua_rotate(L, first, 2);
  if (lua_pcall(L, n + 1, 0, 0) != LUA_OK) {
    lx_buf_free(b);
    lua_error(L);
  }
}

/* A job of fn and its arguments from index first, or raise. */
static thread_job *job_new(lua_State *L, int first, const char *fname) {
  thread_job *job;
  lx_buf code;
  copy_fn(L, &code, first, fname);
  job = calloc(1, sizeof *job);
  if (job == NULL) {
    lx_buf_free(&code);
    luaL_error(L, "%s: out of memory", lx_fname(L, NULL));
  }
  job->code = code;
  lx_buf_init(&job->out);
  return job;
}

/* thread:submit(fn, ...) -> a future of the caller's loop for fn(...)'s
   results, run as a task on the thread's loop */
static int thread_submit(lua_State *L) {
  lx_thread *th = check_thread(L, "Thread:submit");
  thread_job *job = job_new(L, 2, "Thread:submit");
  job->c = lasync_completion_new(L);
  if (thread_post(th, run_job, job) < 0) { /* settle it with an error */
    lasync_completion_send(job->c, deliver, job);
  }
  return 1;
}

/* thread:call_soon(fn, ...): run fn(...) on the thread's loop */
static int thread_call_soon(lua_State *L) {
  lx_thread *th = check_thread(L, "Thread:call_soon");
  thread_job *job = job_new(L, 2, "Thread:call_soon");
  if (thread_post(th, run_job, job) < 0) {
    thread_job_free(job);
    return luaL_error(L, "lasync.Thread:call_soon: the thread has stopped");
  }
  return 0;
}

/* thread:stop(): its loop cancels what still runs and ends */
static int thread_stop(lua_State *L) {
  lx_thread *th = check_thread(L, "Thread:stop");
  thread_post(th, stop_cb, th);
  return 0;
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  thread_box *b = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  if (b->th == NULL) return luaL_error(L, "lasync.Thread:join: " LX_FINALIZED);
  lua_settop(L, 1);
  thread_join_os(b->th);
  lx_list_remove(&b->th->node);
  lx_unanchor(L, b->th->caller->rt, &b->th->ref);
  return 0;
}

/* thread:join(): wait (in the task, not blocking the loop) until the
   thread has finished; call stop() first, or let its function end */
static int thread_join(lua_State *L) {
  lx_thread *th = check_thread(L, "Thread:join");
  lua_settop(L, 1);
  if (th->joined) return 0;
  lua_getiuservalue(L, 1, 1); /* the "done" future */
  lua_getfield(L, -1, "await");
  lua_insert(L, -2);
  lua_callk(L, 1, 0, 0, join_k);
  return join_k(L, LUA_OK, 0);
}

static int thread__gc(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  thread_box *b = lx_checkclass(L, rt, 1, LX_MT_THREAD, "Thread:__gc");
  lx_thread *th = b->th;
  if (th == NULL) return 0;
  b->th = NULL;
  if (!th->joined) { /* unjoined at exit: stop it and wait */
    thread_post(th, stop_cb, th);
    thread_join_os(th);
  }
  lx_list_remove(&th->node);
  lx_unanchor(L, rt, &th->ref); /* left only when called by hand */
  lx_buf_free(&th->start);
  uv_mutex_destroy(&th->mutex);
  free(th);
  return 0;
}

/* lasync.Thread(fn, ...) -> a thread running fn(...) on a loop of its own */
static int core_thread(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_loop *loop = lx_running_loop(L, rt, "Thread");
  lx_thread *th;
  thread_box *b;
  lx_buf start;
  copy_fn(L, &start, 1, "Thread");
  th = calloc(1, sizeof *th);
  if (th == NULL) {
    lx_buf_free(&start);
    return luaL_error(L, "lasync.Thread: out of memory");
  }
  th->start = start;
  uv_mutex_init(&th->mutex);
  th->early_tail = &th->early;
  th->caller = loop;
  th->ref = LUA_NOREF;
  th->node.close = thread_close_resource;
  b = lua_newuserdatauv(L, sizeof *b, 1);
  b->th = th;
  lx_setclass(L, rt, LX_MT_THREAD);
  th->done = lasync_completion_new(L);
  lua_setiuservalue(L, -2, 1);
  th->ref = lx_anchor(L, rt, -1);
  lx_list_add(&loop->resources, &th->node);
  if (uv_thread_create(&th->tid, thread_main, th) != 0)
    return luaL_error(L, "lasync.Thread: cannot start a thread");
  th->started = 1;
  return 1;
}

/* }====================================================================== */

void lx_open_thread(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"to_thread", core_to_thread},
    {"Thread", core_thread},
    {NULL, NULL}
  };
  static const luaL_Reg thread_methods[] = {
    {"submit", thread_submit},
    {"call_soon", thread_call_soon},
    {"stop", thread_stop},
    {"join", thread_join},
    {NULL, NULL}
  };
  static const luaL_Reg thread_meta[] = {
    {"__gc", thread__gc},
    {NULL, NULL}
  };
  static const luaL_Reg loop_methods[] = {
    {"run_in_executor", loop_run_in_executor},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_THREAD, "lasync.Thread", thread_methods, thread_meta);
  luaL_getmetatable(L, "lasync.Loop");
  lua_getfield(L, -1, "__index");
  lx_setfuncs(L, loop_methods);
  lua_pop(L, 2);
  lx_setfuncs(L, funcs);
}
