/*
** lock.c — Lock, Semaphore and BoundedSemaphore: one counting core. A
** release with tasks waiting hands the permit straight to the first of
** them (FIFO, no barging); a waiter cancelled after it was handed the
** permit passes it on, so no permit is ever lost.
*/
#include "internal.h"

enum { KIND_LOCK, KIND_SEMAPHORE, KIND_BOUNDED };

typedef struct lx_sem {
  lx_waiter waiters;  /* tasks waiting to acquire, FIFO */
  lua_Integer value;  /* permits free; a lock: 1 unlocked, 0 locked */
  lua_Integer bound;  /* BoundedSemaphore: the initial value */
  int kind;
} lx_sem;

static const int kind_class[] = {LX_MT_LOCK, LX_MT_SEMAPHORE, LX_MT_BOUNDED};
static const char *const kind_name[] = {"Lock", "Semaphore",
                                        "BoundedSemaphore"};

/* The lock or semaphore at idx (any of the three classes), or an error. */
static lx_sem *check_sem(lua_State *L, int idx, const char *method) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  if (lx_classof(L, rt, idx, LX_MT_LOCK, 3) < 0) {
    const char *got = luaL_typename(L, idx); /* before a push moves idx */
    luaL_error(L, "%s: expected a Lock or Semaphore (got %s)",
               lx_fname(L, method), got); /* the method called */
  }
  return lua_touserdata(L, idx);
}

/* Give a permit back: to the first waiter if any, else to the count. */
static void give_back(lx_sem *s) {
  if (lx_waitlist_wake_first(&s->waiters) == NULL) s->value++;
}

static int acquire_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_sem *s = lua_touserdata(L, 1);
  (void)status;
  if (lx_wait_resumed(t)) {
    if (t->granted) give_back(s); /* handed the permit, then cancelled */
    return lx_task_raise_cancelled(L, t);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* x:acquire() -> true, once a permit is free (FIFO among waiters) */
static int sem_acquire(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  static const char *const names[] = {"Lock:acquire", "Semaphore:acquire",
                                      "BoundedSemaphore:acquire"};
  lx_sem *s = check_sem(L, 1, "Lock:acquire");
  lx_task *t = lx_current_task(L, rt, names[s->kind]);
  lua_settop(L, 1);
  if (s->value > 0) { /* no waiters then: they would hold the permits */
    s->value--;
    lua_pushboolean(L, 1);
    return 1;
  }
  return lx_wait_on(L, t, &s->waiters, acquire_k);
}

/* x:release() */
static int sem_release(lua_State *L) {
  lx_sem *s = check_sem(L, 1, "Lock:release");
  if (s->kind == KIND_LOCK && s->value > 0)
    return luaL_error(L, "lasync.Lock:release: the lock is not acquired");
  if (s->kind == KIND_BOUNDED && s->value >= s->bound)
    return luaL_error(L, "lasync.BoundedSemaphore:release: released more "
                         "times than acquired (the value would exceed %I)",
                      s->bound);
  give_back(s);
  return 0;
}

/* x:locked() -> whether acquire() would wait */
static int sem_locked(lua_State *L) {
  lua_pushboolean(L, check_sem(L, 1, "Lock:locked")->value == 0);
  return 1;
}

/* x:value() -> the permits free now (a lock: 1 or 0) */
static int sem_value(lua_State *L) {
  lua_pushinteger(L, check_sem(L, 1, "Semaphore:value")->value);
  return 1;
}

/* __close of a held lock (see hold() in lua/lasync/sync.lua): release */
static int sem__close(lua_State *L) {
  return sem_release(L);
}

static int sem__tostring(lua_State *L) {
  lx_sem *s = check_sem(L, 1, "Lock:__tostring");
  int waiting = lx_waitlist_count(&s->waiters);
  if (s->kind == KIND_LOCK)
    lua_pushfstring(L, "lasync.Lock: %s, %d waiting",
                    s->value ? "unlocked" : "locked", waiting);
  else
    lua_pushfstring(L, "lasync.%s: value %I, %d waiting",
                    kind_name[s->kind], s->value, waiting);
  return 1;
}

static int sem_new(lua_State *L, int kind, lua_Integer value) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_sem *s = lua_newuserdatauv(L, sizeof *s, 0);
  lx_waitlist_init(&s->waiters);
  s->value = s->bound = value;
  s->kind = kind;
  lx_setclass(L, rt, kind_class[kind]);
  return 1;
}

/* lasync.Lock() */
static int core_lock(lua_State *L) {
  return sem_new(L, KIND_LOCK, 1);
}

static lua_Integer check_value(lua_State *L, const char *name) {
  lua_Integer value = 1;
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    value = lua_tointegerx(L, 1, &isint);
    if (!isint)
      luaL_error(L, "lasync.%s: value must be an integer (got %s)", name,
                 luaL_typename(L, 1));
    if (value < 0)
      luaL_error(L, "lasync.%s: value must be >= 0 (got %I)", name, value);
  }
  return value;
}

/* lasync.Semaphore([value=1]) */
static int core_semaphore(lua_State *L) {
  return sem_new(L, KIND_SEMAPHORE, check_value(L, "Semaphore"));
}

/* lasync.BoundedSemaphore([value=1]) */
static int core_bounded_semaphore(lua_State *L) {
  return sem_new(L, KIND_BOUNDED, check_value(L, "BoundedSemaphore"));
}

void lx_open_lock(lua_State *L) {
  static const luaL_Reg lock_methods[] = {
    {"acquire", sem_acquire},
    {"release", sem_release},
    {"locked", sem_locked},
    {NULL, NULL}
  };
  static const luaL_Reg semaphore_methods[] = {
    {"acquire", sem_acquire},
    {"release", sem_release},
    {"locked", sem_locked},
    {"value", sem_value},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__close", sem__close},
    {"__tostring", sem__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"Lock", core_lock},
    {"Semaphore", core_semaphore},
    {"BoundedSemaphore", core_bounded_semaphore},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_LOCK, "lasync.Lock", lock_methods, meta);
  lx_newclass(L, LX_MT_SEMAPHORE, "lasync.Semaphore", semaphore_methods, meta);
  lx_newclass(L, LX_MT_BOUNDED, "lasync.BoundedSemaphore", semaphore_methods,
              meta);
  lx_setfuncs(L, funcs);
}
