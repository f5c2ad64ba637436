/*
** thread.c — lasync.Thread: an OS thread with a Lua state and a loop of
** its own, running fn(...) as its main task and taking jobs (submit,
** call_soon) until stopped; values cross by copy (copy.c) and answers
** come back through the caller loop's inbox (lx_completion_*).
*/
#include <stdlib.h>
#include <string.h>

#include "thread/thread.h"
#include "lualib.h"

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
  lx_completion *done;    /* settled when the thread has finished */
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
  lx_completion *c;        /* submit: the caller's future; call_soon: NULL */
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
  if (job->c) lx_completion_send(job->c, deliver, job);
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
    } else if (f->loop->drain) { /* cancelled as the thread's run ends */
      lua_pushliteral(L, "lasync.Thread: the thread stopped first");
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
  lx_completion_send(th->done, thread_done_cb, NULL);
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
  return lx_checkbox(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                     LX_MT_THREAD, fname);
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
  job->c = lx_completion_new(L);
  if (thread_post(th, run_job, job) < 0) { /* settle it with an error */
    lx_completion_send(job->c, deliver, job);
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
  th->done = lx_completion_new(L);
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
  lx_newclass(L, LX_MT_THREAD, "lasync.Thread", thread_methods, thread_meta);
  lx_setfuncs(L, funcs);
}
