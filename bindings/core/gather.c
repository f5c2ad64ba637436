/*
** gather.c — lasync.gather: await many awaitables, results in argument
** order. The gather is a future with one waiter node per child, all in one
** allocation; a child's completion only counts down, and the results are
** collected once, when the last child is done (or the first one fails).
** A gather may outlive the task that awaited it (it failed first), so it
** never points at that task: it is anchored while a child is pending.
*/
#include "core/core.h"

enum { GATHER_CHILDREN = LX_FUTURE_NUV + 1, GATHER_NUV = GATHER_CHILDREN };

typedef struct lx_gather lx_gather;

struct lx_gather {
  lx_future fut;         /* must be first: a gather is a future */
  int n, pending;
  int failed;            /* index of the child whose error it raised */
  int ref;               /* anchor while a child is pending (also after the
                            gather failed, so that the children's errors
                            count as retrieved); released by the last
                            child's wake-up, or by lx_gather_close_all */
  unsigned char return_exceptions, list_form;
  lx_waiter slots[1];    /* n of them, one per child: linked in its waiter
                            list while it runs; aux is its index */
};

/* [-0, +1] push the gather of a slot, from its anchor */
static void push_gather(lua_State *L, lx_gather *g) {
  luaL_checkstack(L, 4, NULL);
  lx_push_anchored(L, g->fut.loop->rt, g->ref);
}

/* No child is pending any more: unlink the slots, release the anchor. */
static void gather_release(lua_State *L, lx_gather *g) {
  int i;
  for (i = 0; i < g->n; i++) lx_waiter_unlink(&g->slots[i]);
  lx_unanchor(L, g->fut.loop->rt, &g->ref);
}

/*
** [-0, +1] push the results table: each child's first result, or with
** return_exceptions its error (a CancelledError for a cancelled child).
*/
static void collect(lua_State *L, int gidx) {
  lx_gather *g = lua_touserdata(L, gidx);
  int i;
  lua_getiuservalue(L, gidx, GATHER_CHILDREN);
  lua_createtable(L, g->n, g->list_form);
  for (i = 1; i <= g->n; i++) {
    lx_future *child;
    lua_rawgeti(L, -2, i);
    child = lua_touserdata(L, -1);
    switch (child->state) {
    case LX_FINISHED:
      lx_future_push_first(L, -1);
      break;
    case LX_FAILED:
      lx_future_retrieved(child);
      lua_getiuservalue(L, -1, LX_UV_RESULT);
      break;
    default:
      lx_future_push_cancelled_error(L, -1);
    }
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  if (g->list_form) {
    lua_pushinteger(L, g->n);
    lua_setfield(L, -2, "n");
  }
  lua_remove(L, -2); /* children */
}

/* [-0, +0] settle the gather at gidx with its collected results */
static void settle_results(lua_State *L, int gidx) {
  lx_gather *g = lua_touserdata(L, gidx);
  collect(L, gidx);
  if (g->list_form) {
    lx_future_settle(L, gidx, LX_FINISHED, 1);
  } else if (g->n == 1) {
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
    lx_future_settle(L, gidx, LX_FINISHED, 1);
  } else {
    lx_future_settle(L, gidx, LX_FINISHED, -g->n); /* packed table */
  }
}

/* A child is done (at fidx): count it; settle the gather when it can. */
static void gather_wake(lua_State *L, lx_waiter *w, int fidx) {
  lx_gather *g = lx_container_of(w - w->aux, lx_gather, slots);
  lx_future *child = lua_touserdata(L, fidx);
  int gidx;
  g->pending--;
  if (g->fut.state != LX_PENDING) { /* already failed: nobody will look */
    lx_future_retrieved(child);
    if (g->pending == 0) gather_release(L, g);
    return;
  }
  if (!g->return_exceptions && child->state != LX_FINISHED) {
    push_gather(L, g);
    gidx = lua_gettop(L);
    if (g->pending == 0) gather_release(L, g);
    if (child->state == LX_FAILED) {
      g->failed = (int)w->aux + 1;
      lx_future_retrieved(child);
      lua_getiuservalue(L, fidx, LX_UV_RESULT);
      lx_future_settle(L, gidx, LX_FAILED, 1);
    } else {
      lua_getiuservalue(L, fidx, LX_UV_RESULT);
      lx_future_settle(L, gidx, LX_CANCELLED, 1);
    }
    lua_pop(L, 1);
  } else if (g->pending == 0) {
    push_gather(L, g);
    gidx = lua_gettop(L);
    gather_release(L, g);
    if (g->fut.cancel_requested) {
      lua_getiuservalue(L, gidx, LX_UV_RESULT); /* the cancel message */
      lx_future_settle(L, gidx, LX_CANCELLED, 1);
    } else {
      settle_results(L, gidx);
    }
    lua_pop(L, 1);
  }
}

/* Cancelling a gather cancels every child that is not done. */
int lx_gather_cancel(lua_State *L, int gidx, int msgidx) {
  lx_gather *g = lua_touserdata(L, gidx);
  int i, any = 0;
  if (g->fut.state != LX_PENDING) return 0;
  luaL_checkstack(L, 4, NULL); /* cancels recurse through nested gathers */
  gidx = lua_absindex(L, gidx);
  g->fut.cancel_requested = 1; /* before: plain futures settle at once */
  if (msgidx) { /* kept for the CancelledError the gather ends with */
    lua_pushvalue(L, msgidx);
    lua_setiuservalue(L, gidx, LX_UV_RESULT);
  }
  lua_getiuservalue(L, gidx, GATHER_CHILDREN);
  for (i = 1; i <= g->n; i++) {
    lua_rawgeti(L, -1, i);
    if (lx_future_cancel(L, lua_gettop(L), msgidx)) any = 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (!any && g->fut.state == LX_PENDING) g->fut.cancel_requested = 0;
  return any;
}

/* [-0, +(0|1)] push the child whose error the failed gather raised */
int lx_gather_push_failed(lua_State *L, int gidx) {
  lx_gather *g = lua_touserdata(L, gidx);
  if (g->failed == 0) return 0;
  lua_getiuservalue(L, gidx, GATHER_CHILDREN);
  lua_rawgeti(L, -1, g->failed);
  lua_remove(L, -2);
  return 1;
}

static int gather__gc(lua_State *L) {
  lx_gather *g = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                               LX_MT_GATHER, "gather:__gc");
  int i;
  for (i = 0; i < g->n; i++) lx_waiter_unlink(&g->slots[i]);
  return 0;
}

/*
** The loop closes: its gathers that still count children (detached tasks
** that will never finish) let go of them and of their anchors.
*/
void lx_gather_close_all(lua_State *L, lx_loop *loop) {
  lx_runtime *rt = loop->rt;
  int i, n = 0;
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lx_gather *g = lx_testclass(L, rt, -1, LX_MT_GATHER);
    if (g && g->fut.loop == loop) lua_rawseti(L, -4, ++n);
    else lua_pop(L, 1);
  }
  lua_pop(L, 1); /* anchors */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    gather_release(L, lua_touserdata(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/*
** Check the awaitables from `first` to `last` (or the items of the list
** at `first` when `list`) before anything is started: each must be a task,
** future or function, not the awaiting task t itself, and not of another
** loop. Returns their number.
*/
static int check_children(lua_State *L, lx_runtime *rt, lx_task *t,
                          int first, int last, int list) {
  int i, n = list ? (int)luaL_len(L, first) : last - first + 1;
  for (i = 1; i <= n; i++) {
    lx_future *f;
    if (list)
      lua_rawgeti(L, first, i);
    else
      lua_pushvalue(L, first + i - 1);
    f = lx_future_test(L, rt, -1);
    if (f == NULL && !lua_isfunction(L, -1))
      luaL_error(L, "lasync.gather: %s #%d is not awaitable (expected a "
                    "task, future or function, got %s)",
                 list ? "item" : "argument", i, luaL_typename(L, -1));
    if (f == &t->fut)
      luaL_error(L, "lasync.gather: a task cannot await itself (%s #%d)",
                 list ? "item" : "argument", i);
    if (f && f->loop && f->loop != t->fut.loop)
      luaL_error(L, "lasync.gather: %s #%d belongs to another event loop",
                 list ? "item" : "argument", i);
    lua_pop(L, 1);
  }
  return n;
}

/*
** [-0, +1] push the table of the n children checked by check_children,
** functions started as tasks.
*/
static void push_children(lua_State *L, lx_loop *loop, int first, int n,
                          int list) {
  int i;
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    if (list)
      lua_rawgeti(L, first, i);
    else
      lua_pushvalue(L, first + i - 1);
    if (lua_isfunction(L, -1)) {
      lx_task_new(L, loop, 0, -1, 0);
      lua_remove(L, -2);
    }
    lua_rawseti(L, -2, i);
  }
}

/* The options table at idx has no key but return_exceptions (read raw):
   a typo raises before any child starts. */
static void check_options(lua_State *L, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1); /* the value */
    if (lua_type(L, -1) == LUA_TSTRING &&
        strcmp(lua_tostring(L, -1), "return_exceptions") == 0)
      continue;
    if (lua_type(L, -1) == LUA_TSTRING)
      lua_pushfstring(L, "'%s'", lua_tostring(L, -1));
    else if (lua_type(L, -1) == LUA_TNUMBER ||
             lua_type(L, -1) == LUA_TBOOLEAN)
      lua_pushfstring(L, "[%s]", luaL_tolstring(L, -1, NULL));
    else
      lua_pushfstring(L, "[%s]", luaL_typename(L, -1));
    luaL_error(L, "lasync.gather: unknown option %s (options are named, as "
                  "in {return_exceptions = true})", lua_tostring(L, -1));
  }
}

/*
** lasync.gather(aw1, aw2, ... [, opts]) -> r1, r2, ...
** lasync.gather(list [, opts]) -> {r1, r2, ..., n = #list}
** opts: {return_exceptions = true}
*/
static int core_gather(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "gather");
  int top = lua_gettop(L), list = 0, opts = 0, n, i, gidx, pending = 0;
  int ended = 0; /* a child already failed (without return_exceptions) */
  lx_gather *g;
  if (top >= 1 && lua_type(L, 1) == LUA_TTABLE && !lx_is_callable(L, 1)) {
    list = 1;
    if (top >= 2) opts = 2;
    if (top > 2) luaL_error(L, "lasync.gather: too many arguments after the "
                               "list");
  } else if (top >= 1 && lua_type(L, top) == LUA_TTABLE &&
             !lx_is_callable(L, top)) { /* a callable table is a child */
    opts = top--;
  }
  if (opts) {
    lx_checktype(L, opts, LUA_TTABLE);
    check_options(L, opts);
  }
  n = check_children(L, rt, t, 1, top, list);
  push_children(L, t->fut.loop, 1, n, list);
  if (n == 0) {
    if (!list) return 0;
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "n");
    return 1;
  }
  g = lua_newuserdatauv(L, sizeof *g + (n - 1) * sizeof(lx_waiter),
                        GATHER_NUV);
  gidx = lua_gettop(L);
  lx_future_init(&g->fut, NULL, LX_KIND_GATHER);
  g->n = n;
  g->pending = 0;
  g->failed = 0;
  g->ref = LUA_NOREF;
  g->list_form = (unsigned char)list;
  g->return_exceptions = 0;
  for (i = 0; i < n; i++) g->slots[i].prev = g->slots[i].next = NULL;
  if (opts) {
    lua_pushliteral(L, "return_exceptions"); /* raw, as checked */
    lua_rawget(L, opts);
    g->return_exceptions = (unsigned char)lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lx_setclass(L, rt, LX_MT_GATHER);
  lx_future_bind(L, gidx, t->fut.loop, 0);
  lua_pushvalue(L, gidx - 1);
  lua_setiuservalue(L, gidx, GATHER_CHILDREN);
  for (i = 1; i <= n; i++) {
    lx_future *child;
    lx_waiter *s = &g->slots[i - 1];
    s->aux = (unsigned)(i - 1);
    lua_rawgeti(L, gidx - 1, i);
    child = lua_touserdata(L, -1);
    if (child->loop == NULL) lx_future_bind(L, -1, t->fut.loop, 0);
    if (child->state == LX_PENDING) {
      lx_waiter_link(child, s, gather_wake);
      pending++;
    } else if (child->state != LX_FINISHED && !g->return_exceptions) {
      ended = 1;
    }
    lua_pop(L, 1);
  }
  g->pending = pending;
  if (ended || pending == 0) { /* nothing to wait for */
    for (i = 0; i < n; i++) lx_waiter_unlink(&g->slots[i]);
    for (i = 1; i <= n && ended; i++) {
      lx_future *child;
      lua_rawgeti(L, gidx - 1, i);
      child = lua_touserdata(L, -1);
      if (child->state != LX_PENDING && child->state != LX_FINISHED)
        return lx_future_unwrap(L, -1);
      lua_pop(L, 1);
    }
    settle_results(L, gidx);
    return lx_future_unwrap(L, gidx);
  }
  g->ref = lx_anchor(L, rt, gidx);
  return lx_await(L, t, gidx);
}

void lx_open_gather(lua_State *L) {
  static const luaL_Reg meta[] = {
    {"__gc", gather__gc},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"gather", core_gather},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_GATHER, LX_GATHER, NULL, meta);
  luaL_getmetatable(L, LX_GATHER);
  lx_future_mark(L);
  lua_pop(L, 1);
  lx_setfuncs(L, funcs);
}
