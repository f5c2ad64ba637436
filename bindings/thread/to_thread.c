/*
** to_thread.c — lasync.to_thread: run a Lua function on libuv's thread pool,
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

#include "thread/thread.h"
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

/* pcall'd in the worker: run the job, copy its results out */
static int worker_run(lua_State *W) {
  pool_job *j = lua_touserdata(W, 1);
  int base, n;
  lua_settop(W, 1);
  lua_pushcfunction(W, lx_traceback_msgh);
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
    err = lx_job_error(W);
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
static const lx_awaitable awaiting_start = {NULL, cancel_unstarted, NULL};

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

void lx_open_to_thread(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"to_thread", core_to_thread},
    {NULL, NULL}
  };
  static const luaL_Reg loop_methods[] = {
    {"run_in_executor", loop_run_in_executor},
    {NULL, NULL}
  };
  luaL_getmetatable(L, "lasync.Loop");
  lua_getfield(L, -1, "__index");
  lx_setfuncs(L, loop_methods);
  lua_pop(L, 2);
  lx_setfuncs(L, funcs);
}
