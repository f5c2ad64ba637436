/*
** inbox.c — the thread-safe way into a loop: any thread posts a callback
** (lx_loop_post) that runs on the loop's thread, woken through one
** uv_async_t. On top: completions, which let C code settle a Future from
** any thread (lx_completion_*: the public lasync_completion_* of lasync.h
** wrap them in host/api.c, lasync.Thread uses them), and
** loop:call_soon_threadsafe.
*/
#include <stdlib.h>

#include "core/core.h"

typedef struct lx_post {
  struct lx_post *next;
  lx_post_fn fn;
  void *ud;
} lx_post;

/* {======================================================================
** Posting
** ======================================================================= */

/* pcall'd: run one posted callback */
static int run_post(lua_State *L) {
  lx_post *p = lua_touserdata(L, 1);
  lua_settop(L, 0);
  p->fn(L, p->ud);
  return 0;
}

static void inbox_cb(uv_async_t *handle) {
  lx_loop *loop = handle->data;
  lua_State *L = loop->L;
  lx_post *p;
  uv_mutex_lock(&loop->inbox_mutex);
  p = loop->inbox_head;
  loop->inbox_head = loop->inbox_tail = NULL;
  uv_mutex_unlock(&loop->inbox_mutex);
  while (p) {
    lx_post *next = p->next;
    if (L) {
      lua_pushcfunction(L, run_post);
      lua_pushlightuserdata(L, p);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lx_loop_report(L, loop, "exception in a posted callback", -1, NULL);
        lua_pop(L, 1);
      }
    } else { /* not running: run it without Lua, to free what it owns */
      p->fn(NULL, p->ud);
    }
    free(p);
    p = next;
  }
}

/* Set up the inbox of a new loop (on its thread). */
void lx_inbox_init(lx_loop *loop) {
  uv_mutex_init(&loop->inbox_mutex);
  uv_async_init(loop->uv, &loop->inbox, inbox_cb);
  loop->inbox.data = loop;
  uv_unref((uv_handle_t *)&loop->inbox); /* see lx_loop_hold */
}

/*
** From any thread: run fn(L, ud) on the loop's thread, after what was
** posted before. Returns 0, or -1 (out of memory; fn will not run).
** fn gets L == NULL when the loop is not running (it must only free).
*/
int lx_loop_post(lx_loop *loop, lx_post_fn fn, void *ud) {
  lx_post *p = malloc(sizeof *p);
  if (p == NULL) return -1;
  p->next = NULL;
  p->fn = fn;
  p->ud = ud;
  uv_mutex_lock(&loop->inbox_mutex);
  if (loop->inbox_tail)
    loop->inbox_tail->next = p;
  else
    loop->inbox_head = p;
  loop->inbox_tail = p;
  uv_async_send(&loop->inbox);
  uv_mutex_unlock(&loop->inbox_mutex);
  return 0;
}

/*
** Something from another thread is expected (+1) or came (-1): while any
** is expected the inbox keeps the loop alive, so it is not idle.
*/
void lx_loop_hold(lx_loop *loop, int delta) {
  if (loop->expected == 0 && delta > 0)
    uv_ref((uv_handle_t *)&loop->inbox);
  loop->expected += delta;
  if (loop->expected == 0) uv_unref((uv_handle_t *)&loop->inbox);
}

/* }====================================================================== */

/* {======================================================================
** Completions: settle a future from any thread
** ======================================================================= */

struct lx_completion {
  lx_loop *loop;
  lx_resource node;          /* in the loop's resources until it runs, so
                                that closing the loop releases fut_ref */
  int fut_ref;               /* the future, anchored until settled; released
                                by completion_run or completion_close */
  lx_completion_fn fn;       /* pushes the results, on the loop thread */
  void *ud;
};

/* On the loop thread: the results come from c->fn, or its error. */
static int settle_protected(lua_State *L) {
  lx_completion *c = lua_touserdata(L, 1);
  int n;
  lua_settop(L, 0);
  n = c->fn(L, c->ud);
  lua_pushlightuserdata(L, c);
  lua_insert(L, 1);
  return n + 1;
}

/*
** The loop closes before the completion ran (a Thread's job is still
** being cancelled): release its future while there is a Lua state; the
** post, which comes with L == NULL, only frees.
*/
static void completion_close(lua_State *L, lx_resource *r) {
  lx_completion *c = lx_container_of(r, lx_completion, node);
  lx_unanchor(L, c->loop->rt, &c->fut_ref);
}

static void completion_run(lua_State *L, void *ud) {
  lx_completion *c = ud;
  int top, fidx;
  lx_list_remove(&c->node);
  if (L == NULL) { /* the loop closed first: let the fn free its ud */
    c->fn(NULL, c->ud);
    free(c);
    return;
  }
  top = lua_gettop(L);
  lx_push_anchored(L, c->loop->rt, c->fut_ref);
  lx_unanchor(L, c->loop->rt, &c->fut_ref);
  fidx = lua_gettop(L);
  lx_loop_hold(c->loop, -1);
  lua_pushcfunction(L, settle_protected);
  lua_pushlightuserdata(L, c);
  if (((lx_future *)lua_touserdata(L, fidx))->state != LX_PENDING) {
    lua_settop(L, top); /* cancelled meanwhile: drop the results */
    c->fn(NULL, c->ud);
  } else if (lua_pcall(L, 1, LUA_MULTRET, 0) == LUA_OK) {
    lx_future_settle(L, fidx, LX_FINISHED, lua_gettop(L) - fidx - 1);
  } else {
    lx_future_settle(L, fidx, LX_FAILED, 1);
  }
  lua_settop(L, top);
  free(c);
}

lx_completion *lx_completion_new(lua_State *L) {
  lx_runtime *rt = lx_runtime_get(L);
  lx_loop *loop = lx_running_loop(L, rt, "completion_new");
  lx_completion *c = malloc(sizeof *c);
  if (c == NULL) luaL_error(L, "%s: out of memory", lx_fname(L, NULL));
  lx_future_new(L, rt, loop, 0);
  c->loop = loop;
  c->fut_ref = lx_anchor(L, rt, -1);
  c->fn = NULL;
  c->ud = NULL;
  c->node.close = completion_close;
  lx_list_add(&loop->resources, &c->node);
  lx_loop_hold(loop, 1);
  return c;
}

int lx_completion_send(lx_completion *c, lx_completion_fn fn, void *ud) {
  c->fn = fn;
  c->ud = ud;
  return lx_loop_post(c->loop, completion_run, c);
}

/* }====================================================================== */

/* {======================================================================
** loop:call_soon_threadsafe
** ======================================================================= */

/* loop:call_soon_threadsafe(cb, ...) -> Handle: call_soon, and wake the
   loop through its inbox (the entry point for other threads is C's
   lx_loop_post, or lasync.Thread's methods) */
static int loop_call_soon_threadsafe(lua_State *L) {
  lx_loop *loop = lx_loop_check(L, 1);
  if (!lx_is_callable(L, 2))
    return luaL_error(L, "lasync.Loop:call_soon_threadsafe: callback must "
                         "be a function (got %s)", luaL_typename(L, 2));
  if (loop->closed)
    return luaL_error(L, "lasync.Loop:call_soon_threadsafe: the event loop "
                         "is closed");
  lx_call_soon(L, loop, lua_gettop(L) - 2);
  uv_async_send(&loop->inbox);
  return 1;
}

void lx_open_inbox(lua_State *L) {
  static const luaL_Reg loop_methods[] = {
    {"call_soon_threadsafe", loop_call_soon_threadsafe},
    {NULL, NULL}
  };
  luaL_getmetatable(L, "lasync.Loop");
  lua_getfield(L, -1, "__index");
  lx_setfuncs(L, loop_methods);
  lua_pop(L, 2);
}

/* }====================================================================== */
