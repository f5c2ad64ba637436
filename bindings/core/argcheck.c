/*
** argcheck.c — argument errors that name the public function. Owns the
** table of public names (C function -> "lasync.File:read") and the lx_
** counterparts of luaL_check*: luaL_argerror can only name a function that
** Lua code called by name, and pcall(obj.method, obj, ...) calls none.
*/
#include <string.h>

#include "core/core.h"

static const char names_key = 'n'; /* registry: C function -> public name */

/* {======================================================================
** The table of public names
** ======================================================================= */

/* [-0, +1] push the names table, created (weak keys) the first time */
static void push_names(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &names_key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 256);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &names_key);
}

/*
** [-0, +0] name the C function at idx prefix..key, unless it has a name:
** the first name given is the one kept (a function reached twice keeps
** the name of where it was registered).
*/
void lx_name_function(lua_State *L, int idx, const char *prefix,
                      const char *key) {
  idx = lua_absindex(L, idx);
  if (!lua_iscfunction(L, idx)) return;
  luaL_checkstack(L, 4, NULL);
  push_names(L);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pushvalue(L, idx);
    lua_pushfstring(L, "%s%s", prefix, key);
    lua_rawset(L, -4);
  }
  lua_pop(L, 2);
}

/* [-0, +0] name every C function stored in the table at idx */
static void name_table(lua_State *L, int idx, const char *prefix) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING)
      lx_name_function(L, -1, prefix, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
}

/*
** [-0, +0] name the functions of the module table on top: "lasync.sleep",
** "lasync.fs.unlink" (plain sub-tables), and the methods and metamethods
** of every class the runtime keeps, "lasync.File:read" (methods found in
** `_methods`, else in `__index`). Run once everything is registered, so
** that no function can be left out, however it was registered.
*/
void lx_name_functions(lua_State *L, lx_runtime *rt) {
  int i, top = lua_gettop(L);
  luaL_checkstack(L, 8, NULL);
  for (i = 0; i < LX_MT_COUNT; i++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->mt[i]);
    lua_getfield(L, -1, "__name");
    lua_pushfstring(L, "%s:", lua_tostring(L, -1));
    if (lua_getfield(L, -3, "_methods") != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_getfield(L, -3, "__index");
    }
    if (lua_istable(L, -1)) name_table(L, -1, lua_tostring(L, -2));
    name_table(L, -4, lua_tostring(L, -2)); /* the metamethods */
    lua_settop(L, top);
  }
  lua_pushnil(L);
  while (lua_next(L, top)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      if (lua_istable(L, -1) && !lua_getmetatable(L, -1)) {
        lua_pushfstring(L, "lasync.%s.", lua_tostring(L, -2));
        name_table(L, -2, lua_tostring(L, -1));
        lua_pop(L, 1);
      } else if (lua_istable(L, -1)) {
        lua_pop(L, 1); /* an error class: its constructor names itself */
      } else {
        lx_name_function(L, -1, "lasync.", lua_tostring(L, -2));
      }
    }
    lua_pop(L, 1);
  }
}

/* [-0, +1] a copy of the names table (lasync._names, for the specs) */
void lx_push_names(lua_State *L) {
  lua_newtable(L);
  push_names(L);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
}

/*
** [-0, +1] push and return the public name of the running C function; if
** it has none, "lasync.<fallback>" ("lasync" without a fallback). Only
** errors call this: the lookup costs a lua_getinfo.
*/
const char *lx_fname(lua_State *L, const char *fallback) {
  lua_Debug ar;
  luaL_checkstack(L, 4, NULL);
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "f", &ar)) {
    push_names(L);
    lua_insert(L, -2);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING) return lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  if (fallback == NULL)
    lua_pushliteral(L, "lasync");
  else
    lua_pushfstring(L, "lasync.%s", fallback);
  return lua_tostring(L, -1);
}

/* }====================================================================== */

/* {======================================================================
** Argument errors and checkers, as lauxlib's
** ======================================================================= */

/*
** Raise "bad argument #arg to 'name' (msg)". A method ("Class:m") does
** not count self, as Lua does for a call with ':', however it was called;
** argument 0 is then self: "calling 'name' on bad self (msg)".
*/
int lx_argerror_as(lua_State *L, int arg, const char *name, const char *msg) {
  if (strchr(name, ':') != NULL) {
    arg--;
    if (arg == 0)
      return luaL_error(L, "calling '%s' on bad self (%s)", name, msg);
  }
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, msg);
}

/* luaL_argerror, naming the running function by its public name. */
int lx_argerror(lua_State *L, int arg, const char *msg) {
  lua_Debug ar;
  luaL_checkstack(L, 4, NULL);
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "f", &ar)) {
    push_names(L);
    lua_insert(L, -2);
    if (lua_rawget(L, -2) == LUA_TSTRING)
      return lx_argerror_as(L, arg, lua_tostring(L, -1), msg);
    lua_pop(L, 2);
  }
  return luaL_argerror(L, arg, msg);
}

int lx_typeerror(lua_State *L, int arg, const char *tname) {
  const char *msg =
      lua_pushfstring(L, "%s expected, got %s", tname, lx_typename(L, arg));
  return lx_argerror(L, arg, msg);
}

static void tag_error(lua_State *L, int arg, int tag) {
  lx_typeerror(L, arg, lua_typename(L, tag));
}

void lx_checktype(lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) tag_error(L, arg, t);
}

lua_Number lx_checknumber(lua_State *L, int arg) {
  int isnum;
  lua_Number d = lua_tonumberx(L, arg, &isnum);
  if (!isnum) tag_error(L, arg, LUA_TNUMBER);
  return d;
}

lua_Integer lx_checkinteger(lua_State *L, int arg) {
  int isnum;
  lua_Integer d = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_isnumber(L, arg))
      lx_argerror(L, arg, "number has no integer representation");
    else
      tag_error(L, arg, LUA_TNUMBER);
  }
  return d;
}

lua_Integer lx_optinteger(lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : lx_checkinteger(L, arg);
}

const char *lx_checklstring(lua_State *L, int arg, size_t *len) {
  const char *s = lua_tolstring(L, arg, len);
  if (s == NULL) tag_error(L, arg, LUA_TSTRING);
  return s;
}

const char *lx_optlstring(lua_State *L, int arg, const char *def, size_t *len) {
  if (lua_isnoneornil(L, arg)) {
    if (len) *len = def ? strlen(def) : 0;
    return def;
  }
  return lx_checklstring(L, arg, len);
}

int lx_checkoption(lua_State *L, int arg, const char *def,
                   const char *const lst[]) {
  const char *name = def ? lx_optstring(L, arg, def) : lx_checkstring(L, arg);
  int i;
  for (i = 0; lst[i]; i++)
    if (strcmp(lst[i], name) == 0) return i;
  return lx_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}

/* }====================================================================== */
