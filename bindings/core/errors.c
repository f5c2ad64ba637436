/*
** errors.c — lasync's error classes (CancelledError, TimeoutError, ...).
** An error is a table {message=, traceback=, ...} whose metatable is its
** class; classes inherit through `parent`. Classes are created here and by
** lasync.error_class; C refers to the built-in ones by LX_ERR_* number.
*/
#include <stdarg.h>
#include <string.h>

#include "core/core.h"

static const char classes_key = 'c'; /* registry: array of built-in classes */

static const char *const builtin_names[LX_ERR_COUNT] = {
  NULL, "Error", "CancelledError", "TimeoutError", "InvalidStateError",
  "QueueEmpty", "QueueFull", "QueueShutDown", "BrokenBarrierError",
  "OSError", "IncompleteReadError", "LimitOverrunError", "KeyboardInterrupt",
  "SSLError"
};

/* [-0, +1] push built-in class `cls` */
static void push_class(lua_State *L, int cls) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key);
  lua_rawgeti(L, -1, cls);
  lua_remove(L, -2);
}

/*
** [-1, +1] turn the table on top into an instance of the class at `clsidx`,
** with `message` from `msgidx` (0: none) and the traceback of thread L.
*/
static void make_instance(lua_State *L, int clsidx, int msgidx) {
  if (msgidx != 0) {
    lua_pushvalue(L, msgidx);
    lua_setfield(L, -2, "message");
  }
  if (lua_getfield(L, -1, "traceback") == LUA_TNIL) {
    lua_pop(L, 1);
    luaL_traceback(L, L, NULL, 1);
    lua_setfield(L, -2, "traceback");
  } else {
    lua_pop(L, 1);
  }
  lua_pushvalue(L, clsidx);
  lua_setmetatable(L, -2);
}

/*
** Message handler for lua_pcall where the error is reported later, or in
** another state: [-0, +1] {error, traceback of where it was raised}. The
** callbacks of call_soon/call_later and the functions of to_thread use it.
*/
int lx_traceback_msgh(lua_State *L) {
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  luaL_traceback(L, L, NULL, 1);
  lua_rawseti(L, -2, 2);
  return 1;
}

/* [-0, +1] push a new error of built-in class `cls` with message `msg` */
void lx_error_new(lua_State *L, int cls, const char *msg) {
  if (msg)
    lua_pushstring(L, msg);
  else
    lua_pushnil(L);
  lx_error_newv(L, cls, lua_gettop(L));
  lua_remove(L, -2); /* remove message */
}

/* [-0, +1] push a new error of built-in class `cls`, message at msgidx */
void lx_error_newv(lua_State *L, int cls, int msgidx) {
  msgidx = lua_absindex(L, msgidx);
  push_class(L, cls);
  lua_createtable(L, 0, 3);
  make_instance(L, lua_gettop(L) - 1, lua_isnil(L, msgidx) ? 0 : msgidx);
  lua_remove(L, -2); /* remove class */
}

/*
** [-0, +1] push an OSError for libuv error uverr: fields code ("ECONNREFUSED"),
** errno (positive), message "lasync.<fname>: <strerror> (<target>)" and,
** when given, target (an address or path).
*/
void lx_os_error_new(lua_State *L, int uverr, const char *fname,
                     const char *target) {
  if (target)
    lua_pushfstring(L, "lasync.%s: %s (%s)", fname, uv_strerror(uverr),
                    target);
  else
    lua_pushfstring(L, "lasync.%s: %s", fname, uv_strerror(uverr));
  lx_error_newv(L, LX_ERR_OS, -1);
  lua_remove(L, -2);
  lua_pushstring(L, uv_err_name(uverr));
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, -uverr);
  lua_setfield(L, -2, "errno");
  if (target) {
    lua_pushstring(L, target);
    lua_setfield(L, -2, "target");
  }
}

int lx_os_error(lua_State *L, int uverr, const char *fname,
                const char *target) {
  lx_os_error_new(L, uverr, fname, target);
  return lua_error(L);
}

int lx_error_raise(lua_State *L, int cls, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lx_error_newv(L, cls, -1);
  return lua_error(L);
}

/*
** Is the value at idx an instance of class `clsidx` (or a subclass)? The
** chain of parents is followed raw and at most LX_MAX_PARENTS deep: a
** user's table with a metatable that is its own parent must not hang the
** loop (every task's error is checked).
*/
#define LX_MAX_PARENTS 100
static int is_instance(lua_State *L, int idx, int clsidx) {
  int found = 0, depth = 0;
  clsidx = lua_absindex(L, clsidx);
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  while (!found && lua_istable(L, -1) && depth++ < LX_MAX_PARENTS) {
    found = lua_rawequal(L, -1, clsidx);
    lua_pushliteral(L, "parent"); /* raw: no user __index runs here */
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return found;
}

int lx_error_is(lua_State *L, int idx, int cls) {
  int r;
  idx = lua_absindex(L, idx);
  push_class(L, cls);
  r = is_instance(L, idx, -1);
  lua_pop(L, 1);
  return r;
}

/*
** Class(message [, fields]). Every class shares this __call, so its
** argument errors name the class called ("bad argument #2 to
** 'lasync.TimeoutError'"), counting from the message as the caller does.
*/
static int error_construct(lua_State *L) {
  if (!lua_istable(L, 1)) /* the class: only a direct __call misses it */
    return lx_argerror_as(L, 1, "lasync.Error:__call",
                          lua_pushfstring(L, "table expected, got %s",
                                          lx_typename(L, 1)));
  lua_settop(L, 3);
  if (lua_isnil(L, 3))
    lua_createtable(L, 0, 3);
  else if (!lua_istable(L, 3)) {
    const char *cls = "lasync.Error";
    if (lua_getfield(L, 1, "__name") == LUA_TSTRING) cls = lua_tostring(L, -1);
    return lx_argerror_as(L, 2, cls,
                          lua_pushfstring(L, "table expected, got %s",
                                          lx_typename(L, 3)));
  } else if (lua_getmetatable(L, 3)) { /* an error already, or some
                                         object: never reclassify it */
    const char *cls = "lasync.Error";
    if (lua_getfield(L, 1, "__name") == LUA_TSTRING) cls = lua_tostring(L, -1);
    return lx_argerror_as(L, 2, cls,
                          lua_pushfstring(L, "a plain table expected, got "
                                          "one with a metatable (%s)",
                                          lx_typename(L, 3)));
  } else {
    lua_pushvalue(L, 3);
  }
  make_instance(L, 1, lua_isnil(L, 2) ? 0 : 2);
  return 1;
}

/* __tostring of instances: "Name: message" */
static int error__tostring(lua_State *L) {
  luaL_Buffer b;
  lx_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "name");
  lua_getfield(L, 1, "message");
  luaL_buffinit(L, &b);
  luaL_tolstring(L, -3, NULL); /* the name (below the message and the
                                  buffer's slot): a string, unless
                                  tampered with */
  luaL_addvalue(&b);
  if (!lua_isnil(L, -2)) {
    luaL_tolstring(L, -2, NULL);
    if (lua_rawlen(L, -1) > 0) {
      luaL_addstring(&b, ": ");
      luaL_addvalue(&b);
    } else {
      lua_pop(L, 1);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

static int class__tostring(lua_State *L) {
  lx_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "name");
  lua_pushfstring(L, "lasync.%s", luaL_tolstring(L, -1, NULL));
  return 1;
}

/* [-0, +1] create a class named `name`; parent at parentidx (0: none) */
static void new_class(lua_State *L, const char *name, int parentidx) {
  if (parentidx) parentidx = lua_absindex(L, parentidx);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushfstring(L, "lasync.%s", name);
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, error__tostring);
  lua_setfield(L, -2, "__tostring");
  if (parentidx) {
    lua_pushvalue(L, parentidx);
    lua_setfield(L, -2, "parent");
  }
  lua_createtable(L, 0, 3); /* the class's own metatable */
  lua_pushcfunction(L, error_construct);
  lua_setfield(L, -2, "__call");
  lua_pushcfunction(L, class__tostring);
  lua_setfield(L, -2, "__tostring");
  if (parentidx) { /* inherit methods and fields */
    lua_pushvalue(L, parentidx);
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
}

/* lasync.error_class(name [, parent]) -> class */
static int core_error_class(lua_State *L) {
  const char *name = lx_checkstring(L, 1);
  int parent = 2;
  if (lua_isnoneornil(L, 2)) {
    push_class(L, LX_ERR_BASE);
    parent = lua_gettop(L);
  } else {
    lx_checktype(L, 2, LUA_TTABLE);
  }
  new_class(L, name, parent);
  return 1;
}

/* lasync.is_error(e [, class]) */
static int core_is_error(lua_State *L) {
  if (lua_isnoneornil(L, 2))
    lua_pushboolean(L, lx_error_is(L, 1, LX_ERR_BASE));
  else {
    lx_checktype(L, 2, LUA_TTABLE);
    lua_pushboolean(L, is_instance(L, 1, 2));
  }
  return 1;
}

static int core_is_cancelled(lua_State *L) {
  lua_pushboolean(L, lx_error_is(L, 1, LX_ERR_CANCELLED));
  return 1;
}

static int core_is_timeout(lua_State *L) {
  lua_pushboolean(L, lx_error_is(L, 1, LX_ERR_TIMEOUT));
  return 1;
}

/* [-0, +0] with the module table on top: create the built-in classes */
void lx_open_errors(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"error_class", core_error_class},
    {"is_error", core_is_error},
    {"is_cancelled", core_is_cancelled},
    {"is_timeout", core_is_timeout},
    {NULL, NULL}
  };
  int cls;
  luaL_setfuncs(L, funcs, 0);
  lua_pushcfunction(L, error__tostring); /* shared by every error class */
  lx_name_function(L, -1, "lasync.Error:", "__tostring");
  lua_pop(L, 1);
  lua_createtable(L, LX_ERR_COUNT, 0);
  for (cls = LX_ERR_BASE; cls < LX_ERR_COUNT; cls++) {
    if (cls == LX_ERR_BASE)
      new_class(L, builtin_names[cls], 0);
    else { /* SSLError is an OSError, as in Python */
      lua_rawgeti(L, -1, cls == LX_ERR_SSL ? LX_ERR_OS : LX_ERR_BASE);
      new_class(L, builtin_names[cls], -1);
      lua_remove(L, -2);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, builtin_names[cls]);
    lua_rawseti(L, -2, cls);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &classes_key);
}
