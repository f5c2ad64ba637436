/*
** runtime.c — the per-lua_State runtime (made by luaopen_lasync_core, in
** init.c). Owns the anchor table (pending tasks and scheduled callbacks
** live there), the checks every awaiting function starts with, and
** reporting of errors that nobody can catch.
*/
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char runtime_key = 'r'; /* registry: the runtime userdata */

static const char *const lx_class_names[LX_MT_COUNT] = {
  "Task", "Future", "gather", "Handle", "Loop", "Lock", "Semaphore",
  "BoundedSemaphore", "Event", "Queue", "LifoQueue", "PriorityQueue",
  "WaitList", "StreamReader", "StreamWriter", "Server", "UdpEndpoint",
  "File", "SignalHandler", "Process", "Thread", "ssl.Context"
};

/* The runtime of L; luaopen_lasync_core must have run. */
lx_runtime *lx_runtime_get(lua_State *L) {
  lx_runtime *rt;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key);
  rt = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return rt;
}

/* {======================================================================
** Anchors: one table holds every pending task and scheduled callback
** ======================================================================= */

/*
** The anchor table is an array; its free slots are kept on a C stack, which
** is cheaper than luaL_ref's free list inside the table (this runs twice per
** task). The stack has room for every slot, so releasing never allocates.
*/
int lx_anchor(lua_State *L, lx_runtime *rt, int idx) {
  int slot;
  idx = lua_absindex(L, idx);
  if (rt->nfree > 0) {
    slot = rt->free_slots[--rt->nfree];
  } else {
    if (rt->slots == rt->cap) {
      int cap = rt->cap ? rt->cap * 2 : 1024;
      int *slots = realloc(rt->free_slots, cap * sizeof *slots);
      if (slots == NULL) luaL_error(L, "%s: out of memory", lx_fname(L, NULL));
      rt->free_slots = slots;
      rt->cap = cap;
    }
    slot = ++rt->slots;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, slot);
  lua_pop(L, 1);
  return slot;
}

/*
** [-1, +0] a registry ref to the value on top (luaL_ref), counted in
** rt->nrefs so that lasync._stats shows refs that are never released.
*/
int lx_ref(lua_State *L, lx_runtime *rt) {
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (ref >= 0) rt->nrefs++; /* not LUA_REFNIL: nil takes no slot */
  return ref;
}

/* Release a ref made by lx_ref and reset it; idempotent. */
void lx_unref(lua_State *L, lx_runtime *rt, int *ref) {
  if (*ref >= 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    rt->nrefs--;
  }
  *ref = LUA_NOREF;
}

/* Release an anchor; idempotent (OpenResty's ngx_http_lua_del_thread). */
void lx_unanchor(lua_State *L, lx_runtime *rt, int *ref) {
  if (*ref == LUA_NOREF) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  lua_pushnil(L);
  lua_rawseti(L, -2, *ref);
  lua_pop(L, 1);
  if (rt->free_slots) /* NULL once the state closes (runtime__gc) */
    rt->free_slots[rt->nfree++] = *ref;
  *ref = LUA_NOREF;
}

void lx_push_anchored(lua_State *L, lx_runtime *rt, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  lua_rawgeti(L, -1, ref);
  lua_replace(L, -2); /* cheaper than lua_remove's rotation */
}

/* }====================================================================== */

/* {======================================================================
** Checks shared by the module's functions
** ======================================================================= */

/* Raise "lasync.<fname>: <what>" at the position of the function at
   `level` (as luaL_where): luaL_error with a level, for the checks below */
static void raise_at(lua_State *L, int level, const char *fname,
                     const char *what) {
  luaL_where(L, level);
  lua_pushfstring(L, "lasync.%s: %s", fname, what);
  lua_concat(L, 2);
  lua_error(L);
}

/*
** The running loop; else raise the error of every function that needs
** one, naming `fname`, with the position of the function at `level` (as
** luaL_where). The Lua side raises it through lasync._check_loop.
*/
lx_loop *lx_check_loop(lua_State *L, lx_runtime *rt, const char *fname,
                       int level) {
  if (rt->loop == NULL)
    raise_at(L, level, fname, "no running event loop: run this code with "
                              "lasync.run or the lasync command");
  return rt->loop;
}

lx_loop *lx_running_loop(lua_State *L, lx_runtime *rt, const char *fname) {
  return lx_check_loop(L, rt, fname, 1);
}

/*
** The task running in L, which can suspend here; else raise the error of
** awaiting here, naming `fname`, with the position of the function at
** `level` (as luaL_where). Every await checks this before it registers
** anything: a task in a finalizer, a metamethod or a callback called from
** C (lua_isyieldable is false) would be left registered as waiting when
** its yield fails, and a stale wake-up would resume it elsewhere later.
*/
lx_task *lx_check_await(lua_State *L, lx_runtime *rt, const char *fname,
                        int level) {
  lx_task *t = rt->loop ? rt->loop->current : NULL;
  if (t && t->co == L && lua_isyieldable(L)) return t;
  if (t && t->co == L)
    raise_at(L, level, fname, LX_CANNOT_AWAIT);
  else if (t)
    raise_at(L, level, fname, "cannot await in a coroutine nested inside a "
                              "task (only the task's own coroutine can "
                              "await)");
  else
    raise_at(L, level, fname, "not inside a task: run this code with "
                              "lasync.run or the lasync command");
  return NULL;
}

/* The task running in L, or an error naming `fname`. */
lx_task *lx_current_task(lua_State *L, lx_runtime *rt, const char *fname) {
  return lx_check_await(L, rt, fname, 1);
}

int lx_is_callable(lua_State *L, int idx) {
  if (lua_isfunction(L, idx)) return 1;
  if (luaL_getmetafield(L, idx, "__call") == LUA_TNIL) return 0;
  lua_pop(L, 1);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Reporting
** ======================================================================= */

/* The default warning hook: stderr. */
static void warn_stderr(void *ud, const char *msg) {
  (void)ud;
  fputs(msg, stderr);
  fflush(stderr);
}

/*
** Report something to the user through the runtime's warning hook (stderr
** unless an embedder set another): one message, "lasync: " prepended and
** a newline appended.
*/
void lx_warn(lx_runtime *rt, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  int n = snprintf(buf, sizeof buf, "lasync: ");
  va_start(ap, fmt);
  vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
  va_end(ap);
  n = (int)strlen(buf);
  buf[n] = '\n';
  buf[n + 1] = '\0';
  rt->warn(rt->warn_ud, buf);
}

/* Where rt's reports go (lasync_set_warn); fn == NULL restores stderr. */
void lx_set_warn(lx_runtime *rt, lx_warn_fn fn, void *ud) {
  rt->warn = fn ? fn : warn_stderr;
  rt->warn_ud = fn ? ud : NULL;
}

/* The libuv loop of L's running loop, or NULL (lasync_uv_loop). */
uv_loop_t *lx_running_uv(lua_State *L) {
  lx_runtime *rt = lx_runtime_get(L);
  return rt && rt->loop && !rt->loop->closed ? rt->loop->uv : NULL;
}

/* pcall'd: tostring of the value at 1 (its __tostring may fail) */
static int tostring_cf(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/*
** [-0, +1] push the text of the error at idx: what tostring gives, or,
** when its __tostring fails, what the error is and why, never the failure
** alone (it would hide the error). Never raises: callers are reporting an
** error nobody catches.
*/
const char *lx_push_error_text(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, tostring_cf);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return lua_tostring(L, -1);
  if (lua_isstring(L, -1))
    lua_pushfstring(L, "(error object is a %s value; its __tostring "
                       "failed: %s)", luaL_typename(L, idx),
                    lua_tostring(L, -1));
  else /* its own error is no text either: call nothing more */
    lua_pushfstring(L, "(error object is a %s value; its __tostring "
                       "failed: (error object is a %s value))",
                    luaL_typename(L, idx), luaL_typename(L, -1));
  lua_remove(L, -2); /* the failure */
  return lua_tostring(L, -1);
}

/*
** Print an error nobody can catch on stderr: "lasync: what: message" and
** its traceback. Safe in __gc: a failing __tostring is not called again.
*/
void lx_report(lua_State *L, const char *what, int erridx,
               const char *traceback) {
  lx_push_error_text(L, erridx);
  lx_warn(lx_runtime_get(L), "%s: %s%s%s", what, lua_tostring(L, -1),
          traceback ? "\n" : "", traceback ? traceback : "");
  lua_pop(L, 1);
}

/* }====================================================================== */

/* [-0, +1] push the runtime userdata (the upvalue of lasync's functions) */
void lx_push_runtime(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key);
}

/* [-0, +0] set functions into the table on top, with the runtime upvalue */
void lx_setfuncs(lua_State *L, const luaL_Reg *l) {
  lx_push_runtime(L);
  luaL_setfuncs(L, l, 1);
}

/*
** [-0, +0] create the metatable `name` with `meta` and methods `methods`;
** the runtime keeps it as class `mt` for lx_setclass.
*/
void lx_newclass(lua_State *L, int mt, const char *name,
                 const luaL_Reg *methods, const luaL_Reg *meta) {
  lx_runtime *rt = lx_runtime_get(L);
  luaL_newmetatable(L, name);
  lx_setfuncs(L, meta);
  lua_newtable(L);
  if (methods) lx_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lx_unref(L, rt, &rt->mt[mt]);
  rt->mtp[mt] = lua_topointer(L, -1);
  rt->mt[mt] = lx_ref(L, rt);
}

/*
** The userdata at idx if its metatable is class mt's, else NULL: a pointer
** comparison instead of luaL_testudata's registry lookup by name.
*/
void *lx_testclass(lua_State *L, lx_runtime *rt, int idx, int mt) {
  void *p = lua_touserdata(L, idx);
  const void *mtp;
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  mtp = lua_topointer(L, -1);
  lua_pop(L, 1);
  return mtp == rt->mtp[mt] ? p : NULL;
}

/*
** Which of the classes first .. first+count-1 the userdata at idx belongs
** to, as an offset from first; -1 if none. One metatable fetch.
*/
int lx_classof(lua_State *L, lx_runtime *rt, int idx, int first, int count) {
  const void *mtp;
  int i;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return -1;
  mtp = lua_topointer(L, -1);
  lua_pop(L, 1);
  for (i = 0; i < count; i++)
    if (mtp == rt->mtp[first + i]) return i;
  return -1;
}

/*
** "an" before a class name that starts with a vowel sound ("an Event"),
** else "a"; U is left out, as the names say "a UdpEndpoint".
*/
static const char *article(const char *name) {
  return name[0] != '\0' && strchr("AEIO", name[0]) ? "an" : "a";
}

/* The class name of the value at idx (its __name), as luaL_typeerror. */
const char *lx_typename(lua_State *L, int idx) {
  if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING)
    return lua_tostring(L, -1); /* left on the stack: an error follows */
  return luaL_typename(L, idx);
}

/*
** The userdata at idx if it is of class mt, else raise "NAME: expected a
** Class (got type)". NAME is the running function's public name, so that
** a checker shared by several methods names the one called; `fname` (the
** name without "lasync.") is for a function that has none.
*/
void *lx_checkclass(lua_State *L, lx_runtime *rt, int idx, int mt,
                    const char *fname) {
  void *p = lx_testclass(L, rt, idx, mt);
  if (p == NULL) {
    const char *got = lx_typename(L, idx); /* before a push moves idx */
    luaL_error(L, "%s: expected %s %s (got %s)",
               lx_fname(L, fname ? fname : lx_class_names[mt]),
               article(lx_class_names[mt]), lx_class_names[mt], got);
  }
  return p;
}

/*
** The C object of the box at idx: a userdata of class `mt` whose first
** field points to C-owned memory (stream_box, server_box, ...). Raises as
** lx_checkclass for another value, and for a box its __gc emptied.
*/
void *lx_checkbox(lua_State *L, lx_runtime *rt, int idx, int mt,
                  const char *fname) {
  void **box = lx_checkclass(L, rt, idx, mt, fname);
  if (*box == NULL) luaL_error(L, "lasync.%s: " LX_FINALIZED, fname);
  return *box;
}

/* [-0, +0] set class `mt`'s metatable on the value on top */
void lx_setclass(lua_State *L, lx_runtime *rt, int mt) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->mt[mt]);
  lua_setmetatable(L, -2);
}

static int runtime__gc(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key);
  if (rt == NULL || lua_touserdata(L, -1) != rt)
    return luaL_error(L, "lasync: __gc of something other than the runtime");
  free(rt->free_slots);
  rt->free_slots = NULL;
  return 0;
}

static int runtime_new(lua_State *L) {
  lx_runtime *rt = lua_newuserdatauv(L, sizeof *rt, 0);
  const char *debug = getenv("LASYNC_DEBUG");
  int i;
  memset(rt, 0, sizeof *rt);
  for (i = 0; i < LX_MT_COUNT; i++) rt->mt[i] = LUA_NOREF;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, runtime__gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  rt->debug = debug != NULL && *debug != '\0' && *debug != '0';
  rt->warn = warn_stderr;
  lua_newtable(L);
  rt->anchors = lx_ref(L, rt);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &runtime_key);
  return 0;
}

/* lasync.set_debug(enabled): debug mode for loops created from now on */
static int core_set_debug(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  rt->debug = lua_toboolean(L, 1);
  if (rt->loop) rt->loop->debug = (unsigned char)rt->debug;
  return 0;
}

/*
** lasync._methods(name) -> the method table of class "lasync.<name>", so
** that the Lua side can add methods to C classes.
*/
static int core_methods(lua_State *L) {
  lua_pushfstring(L, "lasync.%s", lx_checkstring(L, 1));
  if (luaL_getmetatable(L, lua_tostring(L, -1)) != LUA_TTABLE)
    return luaL_error(L, "lasync._methods: no class %s", lua_tostring(L, 1));
  if (lua_getfield(L, -1, "_methods") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_getfield(L, -1, "__index");
  }
  return 1;
}

/*
** lasync._names() -> {[function] = public name}: every C function lasync
** registered, as argument errors name it (a copy, for the specs).
*/
static int core_names(lua_State *L) {
  lx_push_names(L);
  return 1;
}

/*
** lasync._stats() -> {anchors = n, loops = n, refs = n, handles = n}: live
** anchors (pending tasks and scheduled callbacks), loops not yet freed,
** registry refs of this state (lx_ref) and libuv handles whose close
** callback has not run (lx_count_handles); the specs check that they
** return to their baseline after every test.
*/
static int core_stats(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lua_Integer anchors = 0;
  lua_createtable(L, 0, 4);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->anchors);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    anchors++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushinteger(L, anchors);
  lua_setfield(L, -2, "anchors");
  lua_pushinteger(L, lx_live_loops());
  lua_setfield(L, -2, "loops");
  lua_pushinteger(L, rt->nrefs);
  lua_setfield(L, -2, "refs");
  lua_pushinteger(L, lx_live_handles());
  lua_setfield(L, -2, "handles");
  return 1;
}

/*
** A write to a closed pipe or socket should be an EPIPE error raised in the
** writing task, not the death of the process (Python and Node do the same).
** A handler the application installed is left alone.
*/
static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

/*
** Make L's runtime unless it has one; luaopen_lasync_core (init.c) calls
** this before any lx_open_*.
*/
void lx_runtime_init(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key) == LUA_TNIL)
    runtime_new(L);
  lua_pop(L, 1);
  ignore_sigpipe();
}

/* [-0, +0] the runtime's own functions into the module table on top */
void lx_open_runtime(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"set_debug", core_set_debug},
    {"_stats", core_stats},
    {"_methods", core_methods},
    {"_names", core_names},
    {NULL, NULL}
  };
  lx_setfuncs(L, funcs);
}
