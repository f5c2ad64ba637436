/*
** wait.c — tasks waiting on a synchronisation primitive (lock, event,
** queue): a FIFO list of the tasks' own waiter nodes, so waiting allocates
** nothing. A woken task is `granted` what it waited for; if it is cancelled
** before it runs, the primitive's continuation passes the grant on.
*/
#include "core/core.h"

void lx_waitlist_init(lx_waiter *list) {
  list->prev = list->next = list;
}

int lx_waitlist_empty(const lx_waiter *list) {
  return list->next == list;
}

int lx_waitlist_count(const lx_waiter *list) {
  const lx_waiter *w;
  int n = 0;
  for (w = list->next; w != list; w = w->next) n++;
  return n;
}

/*
** The release of a task waiting with its waiter node (in a wait list or
** a future's waiters): unlink it if it is still linked. A cancelled task
** still waiting was not granted anything; it runs to raise.
*/
int lx_wait_release(lx_task *t) {
  if (t->on.wait.next == NULL) return 0; /* woken: the waker unlinked it */
  lx_waiter_unlink(&t->on.wait);
  return 1;
}

static const lx_awaitable awaiting_list = {lx_wait_release, NULL, NULL};

/*
** Suspend the running task t at the end of `list` until a wake_* call (or
** a cancel) makes it run again; k continues the waiting C function (its
** context is t). The primitive stays at stack index 1 of that function.
*/
int lx_wait_on(lua_State *L, lx_task *t, lx_waiter *list, lua_KFunction k) {
  lx_waiter *w = &t->on.wait;
  w->next = list;
  w->prev = list->prev;
  list->prev->next = w;
  list->prev = w;
  t->granted = 0;
  return lx_suspend(L, t, &awaiting_list, k);
}

/*
** The continuation of a wait that returns nothing and passes nothing on
** when cancelled (wait_closed, join): raise CancelledError, or return.
*/
int lx_wait_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  return 0;
}

/*
** Wake the first waiting task; it resumes granted (in its continuation,
** t->must_cancel says it was cancelled since, and must pass on what it
** was granted). NULL if none waits.
*/
lx_task *lx_waitlist_wake_first(lx_waiter *list) {
  lx_task *t;
  if (list->next == list) return NULL;
  t = lx_container_of(list->next, lx_task, on.wait);
  lx_waiter_unlink(&t->on.wait);
  t->granted = 1;
  lx_ready_push(t->fut.loop, &t->ready);
  return t;
}

int lx_waitlist_wake_all(lx_waiter *list) {
  int n = 0;
  while (lx_waitlist_wake_first(list)) n++;
  return n;
}

/* {======================================================================
** lasync._WaitList: the same list as a Lua object, for the primitives
** written in Lua (Condition, Barrier)
** ======================================================================= */

static lx_waiter *check_list(lua_State *L) {
  return lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                       LX_MT_WAITLIST, NULL);
}

static int list_wait_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  if (t->must_cancel) { /* woken, then cancelled: wake another */
    if (t->granted) lx_waitlist_wake_first(lua_touserdata(L, 1));
    return lx_task_raise_cancelled(L, t);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* w:wait() -> true once woken by w:wake() */
static int list_wait(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_waiter *list = check_list(L);
  lx_task *t = lx_current_task(L, rt, "Condition:wait");
  lua_settop(L, 1);
  return lx_wait_on(L, t, list, list_wait_k);
}

/* w:wake([n=1]) -> how many waiters were woken (first come, first) */
static int list_wake(lua_State *L) {
  lx_waiter *list = check_list(L);
  lua_Integer n = lx_optinteger(L, 2, 1), woken = 0;
  while (woken < n && lx_waitlist_wake_first(list)) woken++;
  lua_pushinteger(L, woken);
  return 1;
}

static int list_count(lua_State *L) {
  lua_pushinteger(L, lx_waitlist_count(check_list(L)));
  return 1;
}

static int core_waitlist(lua_State *L) {
  lx_waitlist_init(lua_newuserdatauv(L, sizeof(lx_waiter), 0));
  lx_setclass(L, lua_touserdata(L, lua_upvalueindex(1)), LX_MT_WAITLIST);
  return 1;
}

void lx_open_wait(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"wait", list_wait},
    {"wake", list_wake},
    {"count", list_count},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"_WaitList", core_waitlist},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_WAITLIST, "lasync.WaitList", methods, meta);
  lx_setfuncs(L, funcs);
}

/* }====================================================================== */
