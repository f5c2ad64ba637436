/*
** signal.c — signals: lasync.signal(name, handler) watches a signal and
** schedules handler(name) on the loop for each delivery; wait_signal(name)
** awaits the next one. Under lasync.run, their SIGINT watchers subscribe
** to the default SIGINT watcher (core/interrupt.c) instead of starting
** handles of their own.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

static const struct {
  const char *name;
  int signum;
} signals[] = {
  {"SIGINT", SIGINT},   {"SIGTERM", SIGTERM},   {"SIGHUP", SIGHUP},
  {"SIGQUIT", SIGQUIT}, {"SIGUSR1", SIGUSR1},   {"SIGUSR2", SIGUSR2},
  {"SIGCHLD", SIGCHLD}, {"SIGWINCH", SIGWINCH}, {"SIGPIPE", SIGPIPE},
  {"SIGALRM", SIGALRM}, {"SIGCONT", SIGCONT},   {"SIGTSTP", SIGTSTP},
  {"SIGKILL", SIGKILL}, {"SIGSTOP", SIGSTOP},   {"SIGABRT", SIGABRT},
  {"SIGTTIN", SIGTTIN}, {"SIGTTOU", SIGTTOU},   {"SIGBUS", SIGBUS},
  {"SIGFPE", SIGFPE},   {"SIGILL", SIGILL},     {"SIGSEGV", SIGSEGV},
  {"SIGTRAP", SIGTRAP}, {"SIGURG", SIGURG},     {"SIGXCPU", SIGXCPU},
  {"SIGXFSZ", SIGXFSZ}, {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF},
  {"SIGSYS", SIGSYS},
  {NULL, 0}
};

/* The signal at idx, by name ("SIGINT" or "INT") or number. */
int lx_check_signal(lua_State *L, int idx, const char *fname) {
  int i;
  if (lua_isnone(L, idx))
    return luaL_error(L, "lasync.%s: unknown signal (expected a signal name "
                         "or number, got no value)", fname);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = lua_tointeger(L, idx);
    if (n > 0 && n < 65) return (int)n;
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    const char *name = lx_checkcstring(L, idx, fname, "the signal name");
    for (i = 0; signals[i].name; i++)
      if (strcmp(name, signals[i].name) == 0 ||
          strcmp(name, signals[i].name + 3) == 0)
        return signals[i].signum;
  } else {
    return luaL_error(L, "lasync.%s: the signal must be a signal name or "
                         "number (got %s)", fname, luaL_typename(L, idx));
  }
  return luaL_error(L, "lasync.%s: unknown signal %s", fname,
                    luaL_tolstring(L, idx, NULL));
}

/*
** libuv puts SIG_DFL back when the last watcher of a signal stops. For
** SIGPIPE that is death by the next write to a closed pipe, where lasync
** promises EPIPE: ignore it again, as loading lasync did (runtime.c).
*/
static void signal_restore(int signum) {
  struct sigaction sa;
  if (signum == SIGPIPE && sigaction(SIGPIPE, NULL, &sa) == 0 &&
      sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

#define SIGNAL_NAME_SIZE 16

/* "SIGINT"; one outside the table (a real-time one) is "SIG34" */
static const char *signal_name(int signum, char buf[SIGNAL_NAME_SIZE]) {
  int i;
  for (i = 0; signals[i].name; i++)
    if (signals[i].signum == signum) return signals[i].name;
  snprintf(buf, SIGNAL_NAME_SIZE, "SIG%d", signum);
  return buf;
}

/* {======================================================================
** lasync.signal: a handler for each delivery
** ======================================================================= */

typedef struct lx_sigwatch {
  uv_signal_t h;       /* freed (with the struct) in its close callback */
  lx_resource node;    /* in the loop's resources while watching */
  lx_sigsub sub;       /* its SIGINT subscription under lasync.run */
  lx_loop *loop;
  int ref;             /* anchor of the handle object while watching */
  int signum;
  unsigned char closing, has_box;
} lx_sigwatch;

typedef struct sig_box {
  lx_sigwatch *w;
} sig_box;

static void watch_closed_cb(uv_handle_t *handle) {
  lx_sigwatch *w = handle->data;
  lx_count_handles(-1);
  lx_list_remove(&w->node);
  if (!w->has_box) free(w);
  else w->closing = 2; /* closed: the box frees it */
}

static void watch_close(lua_State *L, lx_sigwatch *w) {
  if (w->closing) return;
  w->closing = 1;
  if (w->signum == SIGINT) w->loop->rt->sigint_users--;
  lx_sigsub_unlink(&w->sub);
  uv_close((uv_handle_t *)&w->h, watch_closed_cb); /* stops it */
  signal_restore(w->signum);
  if (L) lx_unanchor(L, w->loop->rt, &w->ref);
}

static void watch_close_resource(lua_State *L, lx_resource *r) {
  watch_close(L, lx_container_of(r, lx_sigwatch, node));
}

/* A delivery: schedule handler(name) as a callback of the loop. */
static void watch_cb(uv_signal_t *handle, int signum) {
  lx_sigwatch *w = handle->data;
  lua_State *L = w->loop->L;
  char buf[SIGNAL_NAME_SIZE];
  if (L == NULL || w->ref == LUA_NOREF) return;
  lx_push_anchored(L, w->loop->rt, w->ref);
  lua_getiuservalue(L, -1, 1);
  lua_pushstring(L, signal_name(signum, buf));
  lx_call_soon(L, w->loop, 1);
  lua_pop(L, 2); /* the handle and the watch */
}

static int sig__gc(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  sig_box *b = lx_checkclass(L, rt, 1, LX_MT_SIGNAL, "SignalHandler:__gc");
  lx_sigwatch *w = b->w;
  if (w == NULL) return 0;
  b->w = NULL;
  lx_unanchor(L, rt, &w->ref); /* anchored only when __gc was called by
                                  hand */
  w->has_box = 0;
  if (w->closing == 2)
    free(w);
  else
    watch_close(NULL, w);
  return 0;
}

/* h:close(): stop calling the handler */
static int sig_close(lua_State *L) {
  sig_box *b = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                             LX_MT_SIGNAL, "SignalHandler:close");
  if (b->w) watch_close(L, b->w);
  return 0;
}

/* lasync.signal(name, handler) -> a handle whose close() removes it */
static int core_signal(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_loop *loop = lx_running_loop(L, rt, "signal");
  int signum = lx_check_signal(L, 1, "signal"), r;
  lx_sigwatch *w;
  sig_box *b;
  char buf[SIGNAL_NAME_SIZE];
  if (!lx_is_callable(L, 2))
    return luaL_error(L, "lasync.signal: the handler must be a function "
                         "(got %s)", luaL_typename(L, 2));
  w = calloc(1, sizeof *w);
  if (w == NULL) return luaL_error(L, "lasync.signal: out of memory");
  w->loop = loop;
  w->signum = signum;
  w->node.close = watch_close_resource;
  uv_signal_init(loop->uv, &w->h);
  lx_count_handles(1);
  uv_unref((uv_handle_t *)&w->h); /* watching alone keeps nothing alive */
  w->h.data = w;
  w->sub.h = &w->h;
  w->sub.cb = watch_cb;
  b = lua_newuserdatauv(L, sizeof *b, 2);
  b->w = w;
  w->has_box = 1;
  lx_setclass(L, rt, LX_MT_SIGNAL);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->self_ref);
  lua_setiuservalue(L, -2, 2);
  w->ref = lx_anchor(L, rt, -1);
  lx_list_add(&loop->resources, &w->node);
  if (signum == SIGINT) rt->sigint_users++;
  r = lx_sigsub_start(loop, &w->sub, signum);
  if (r < 0) {
    watch_close(L, w);
    return lx_os_error(L, r, "signal", signal_name(signum, buf));
  }
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** lasync.wait_signal: await the next delivery
** ======================================================================= */

typedef struct sig_op {
  lx_op op;
  uv_signal_t h;
  lx_sigsub sub; /* its SIGINT subscription under lasync.run */
  lx_runtime *rt;
  int signum; /* kept: uv_signal_stop zeroes h.signum, and closing needs it */
} sig_op;

static void sig_op_closed_cb(uv_handle_t *handle) {
  lx_count_handles(-1);
  free(lx_container_of((uv_signal_t *)handle, sig_op, h));
}

static void sig_op_close(sig_op *s) {
  if (s->signum == SIGINT) s->rt->sigint_users--;
  lx_sigsub_unlink(&s->sub);
  uv_close((uv_handle_t *)&s->h, sig_op_closed_cb); /* stops it */
  signal_restore(s->signum);
}

static void sig_op_abort(lx_op *op) {
  sig_op_close((sig_op *)op);
}

/* A delivery nobody takes (see lx_op.dispose): close the handle */
static void sig_op_dispose(lx_op *op) {
  sig_op_close((sig_op *)op);
}

static void sig_op_cb(uv_signal_t *handle, int signum) {
  sig_op *s = lx_container_of(handle, sig_op, h);
  lx_sigsub_unlink(&s->sub); /* one delivery, as from its own handle */
  uv_signal_stop(handle);
  signal_restore(s->signum);
  if (lx_op_finish(&s->op, signum)) sig_op_close(s);
}

static int wait_signal_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  sig_op *s = (sig_op *)lx_op_resumed(t);
  int signum;
  char buf[SIGNAL_NAME_SIZE];
  (void)status;
  if (s == NULL) return lx_task_raise_cancelled(L, t); /* abort closed it */
  signum = s->op.status;
  sig_op_close(s);
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  lua_pushstring(L, signal_name(signum, buf));
  return 1;
}

/* lasync.wait_signal(name) -> name, once the signal arrives */
static int core_wait_signal(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "wait_signal");
  int signum = lx_check_signal(L, 1, "wait_signal"), r;
  sig_op *s = malloc(sizeof *s);
  char buf[SIGNAL_NAME_SIZE];
  if (s == NULL) return luaL_error(L, "lasync.wait_signal: out of memory");
  s->rt = rt;
  s->signum = signum;
  s->op.abort = sig_op_abort;
  s->op.dispose = sig_op_dispose;
  uv_signal_init(t->fut.loop->uv, &s->h);
  lx_count_handles(1);
  s->sub.link.prev = s->sub.link.next = NULL;
  s->sub.in = NULL;
  s->sub.h = &s->h;
  s->sub.cb = sig_op_cb;
  s->sub.wait = 1;
  r = lx_sigsub_start(t->fut.loop, &s->sub, signum);
  if (signum == SIGINT) rt->sigint_users++;
  if (r < 0) {
    sig_op_close(s);
    return lx_os_error(L, r, "wait_signal", signal_name(signum, buf));
  }
  return lx_op_await(L, t, &s->op, wait_signal_k);
}

/* }====================================================================== */

void lx_open_signal(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", sig_close},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", sig__gc},
    {"__close", sig_close},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"signal", core_signal},
    {"wait_signal", core_wait_signal},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_SIGNAL, "lasync.SignalHandler", methods, meta);
  lx_setfuncs(L, funcs);
}
