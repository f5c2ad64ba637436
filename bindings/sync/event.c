/*
** event.c — Event: set() wakes every waiting task; they stay woken even if
** clear() follows at once (asyncio's semantics).
*/
#include "sync/sync.h"

typedef struct lx_event {
  lx_waiter waiters; /* tasks in wait(), FIFO */
  int is_set;
} lx_event;

static lx_event *check_event(lua_State *L, const char *fname) {
  return lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                       LX_MT_EVENT, fname);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  lua_pushboolean(L, 1);
  return 1;
}

/* e:wait() -> true once the event is set (at once if it is set) */
static int event_wait(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_event *e = check_event(L, "Event:wait");
  lx_task *t = lx_current_task(L, rt, "Event:wait");
  lua_settop(L, 1);
  if (e->is_set) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return lx_wait_on(L, t, &e->waiters, wait_k);
}

/* e:set(): wake every waiter; later waits return at once */
static int event_set(lua_State *L) {
  lx_event *e = check_event(L, "Event:set");
  if (!e->is_set) {
    e->is_set = 1;
    lx_waitlist_wake_all(&e->waiters);
  }
  return 0;
}

static int event_clear(lua_State *L) {
  check_event(L, "Event:clear")->is_set = 0;
  return 0;
}

static int event_is_set(lua_State *L) {
  lua_pushboolean(L, check_event(L, "Event:is_set")->is_set);
  return 1;
}

static int event__tostring(lua_State *L) {
  lx_event *e = check_event(L, "Event:__tostring");
  lua_pushfstring(L, "lasync.Event: %s, %d waiting",
                  e->is_set ? "set" : "unset",
                  lx_waitlist_count(&e->waiters));
  return 1;
}

/* lasync.Event() */
static int core_event(lua_State *L) {
  lx_event *e = lua_newuserdatauv(L, sizeof *e, 0);
  lx_waitlist_init(&e->waiters);
  e->is_set = 0;
  lx_setclass(L, lua_touserdata(L, lua_upvalueindex(1)), LX_MT_EVENT);
  return 1;
}

void lx_open_event(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"wait", event_wait},
    {"set", event_set},
    {"clear", event_clear},
    {"is_set", event_is_set},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__tostring", event__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"Event", core_event},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_EVENT, "lasync.Event", methods, meta);
  lx_setfuncs(L, funcs);
}
