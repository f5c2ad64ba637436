/*
** lock.c — Lock, Semaphore and BoundedSemaphore: one counting core. A
** release with tasks waiting hands the permit straight to the first of
** them (FIFO, no barging); a waiter cancelled after it was handed the
** permit passes it on, so no permit is ever lost.
*/
#include "sync/sync.h"

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

/*
** The three classes share these functions; each class's copies carry its
** kind as upvalue 2 (sem_setfuncs), so that every error names the class
** and function called: "lasync.BoundedSemaphore:__close: ...".
*/
enum { F_ACQUIRE, F_RELEASE, F_LOCKED, F_VALUE, F_CLOSE, F_TOSTRING };
static const char *const fnames[][6] = {
  {"Lock:acquire", "Lock:release", "Lock:locked", "Lock:value",
   "Lock:__close", "Lock:__tostring"},
  {"Semaphore:acquire", "Semaphore:release", "Semaphore:locked",
   "Semaphore:value", "Semaphore:__close", "Semaphore:__tostring"},
  {"BoundedSemaphore:acquire", "BoundedSemaphore:release",
   "BoundedSemaphore:locked", "BoundedSemaphore:value",
   "BoundedSemaphore:__close", "BoundedSemaphore:__tostring"},
};

/* The name of function f of the class being called, "Lock:acquire". */
static const char *fname_of(lua_State *L, int f) {
  return fnames[lua_tointeger(L, lua_upvalueindex(2))][f];
}

/* The lock or semaphore at idx, of the class called, or an error. */
static lx_sem *check_sem(lua_State *L, int idx, int f) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
  return lx_checkclass(L, rt, idx, kind_class[kind], fnames[kind][f]);
}

/* Give a permit back: to the first waiter if any, else to the count. */
static void give_back(lx_sem *s) {
  if (lx_waitlist_wake_first(&s->waiters) == NULL) s->value++;
}

static int acquire_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_sem *s = lua_touserdata(L, 1);
  (void)status;
  if (t->must_cancel) {
    if (t->granted) give_back(s); /* handed the permit, then cancelled */
    return lx_task_raise_cancelled(L, t);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* x:acquire() -> true, once a permit is free (FIFO among waiters) */
static int sem_acquire(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_sem *s = check_sem(L, 1, F_ACQUIRE);
  lx_task *t = lx_current_task(L, rt, fname_of(L, F_ACQUIRE));
  lua_settop(L, 1);
  if (s->value > 0) { /* no waiters then: they would hold the permits */
    s->value--;
    lua_pushboolean(L, 1);
    return 1;
  }
  return lx_wait_on(L, t, &s->waiters, acquire_k);
}

/* Release s for function f (release or __close, named in the errors). */
static int sem_give(lua_State *L, int f) {
  lx_sem *s = check_sem(L, 1, f);
  if (s->kind == KIND_LOCK && s->value > 0)
    return luaL_error(L, "lasync.%s: the lock is not acquired",
                      fname_of(L, f));
  if (s->kind == KIND_BOUNDED && s->value >= s->bound)
    return luaL_error(L, "lasync.%s: released more times than acquired (the "
                         "value would exceed %I)", fname_of(L, f), s->bound);
  give_back(s);
  return 0;
}

/* x:release() */
static int sem_release(lua_State *L) {
  return sem_give(L, F_RELEASE);
}

/* x:locked() -> whether acquire() would wait */
static int sem_locked(lua_State *L) {
  lua_pushboolean(L, check_sem(L, 1, F_LOCKED)->value == 0);
  return 1;
}

/* x:value() -> the permits free now (a lock: 1 or 0) */
static int sem_value(lua_State *L) {
  lua_pushinteger(L, check_sem(L, 1, F_VALUE)->value);
  return 1;
}

/* __close of a held lock (see hold() in lua/lasync/sync.lua): release */
static int sem__close(lua_State *L) {
  return sem_give(L, F_CLOSE);
}

static int sem__tostring(lua_State *L) {
  lx_sem *s = check_sem(L, 1, F_TOSTRING);
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

/* [-0, +0] set l in the table on top with upvalues the runtime and kind */
static void sem_setfuncs(lua_State *L, const luaL_Reg *l, int kind) {
  lx_push_runtime(L);
  lua_pushinteger(L, kind);
  luaL_setfuncs(L, l, 2);
}

/* Create the class of `kind` with its own copies of methods and meta. */
static void sem_class(lua_State *L, int kind, const char *name,
                      const luaL_Reg *methods, const luaL_Reg *meta) {
  static const luaL_Reg none[] = {{NULL, NULL}};
  lx_runtime *rt = lx_runtime_get(L);
  lx_newclass(L, kind_class[kind], name, none, none);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->mt[kind_class[kind]]);
  sem_setfuncs(L, meta, kind);
  lua_getfield(L, -1, "__index");
  sem_setfuncs(L, methods, kind);
  lua_pop(L, 2); /* the methods and the metatable */
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
  sem_class(L, KIND_LOCK, "lasync.Lock", lock_methods, meta);
  sem_class(L, KIND_SEMAPHORE, "lasync.Semaphore", semaphore_methods, meta);
  sem_class(L, KIND_BOUNDED, "lasync.BoundedSemaphore", semaphore_methods,
            meta);
  lx_setfuncs(L, funcs);
}
