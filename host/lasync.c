/*
** lasync.c — the lasync command: runs a Lua script as the main task of an
** event loop, so its top level may await. Options follow lua5.4's lua.c
** (-e, -l, -v, -, --), plus --debug.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "lasync.h"
#include "lauxlib.h"
#include "lualib.h"

static const char *progname = "lasync";
static int exit_status = EXIT_FAILURE; /* when the run fails */

static void print_usage(const char *badoption) {
  if (badoption[1] == 'e' || badoption[1] == 'l')
    fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
  else
    fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat' (it may await)\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  --debug   debug mode: warn about slow task steps, keep task "
          "creation tracebacks\n"
          "  --        stop handling options\n"
          "  -         run stdin and stop handling options\n",
          progname);
}

static void print_version(void) {
  printf("lasync %s (%s, libuv %s)\n", LASYNC_VERSION, LUA_RELEASE,
         uv_version_string());
}

/* Print "lasync: message" and the traceback below it, if any. */
static void report_error(lua_State *L, int erridx, int tbidx) {
  const char *msg = luaL_tolstring(L, erridx, NULL);
  fprintf(stderr, "%s: %s\n", progname, msg);
  if (tbidx && lua_isstring(L, tbidx))
    fprintf(stderr, "%s\n", lua_tostring(L, tbidx));
  fflush(stderr);
  lua_pop(L, 1);
}

/* {======================================================================
** Command line
** ======================================================================= */

enum { HAS_ERROR = 1, HAS_VERSION = 2, HAS_EXEC = 4, HAS_DEBUG = 8 };

/*
** Scan the options; return the flags, and in *script the index of the
** script (or argc if there is none), as lua.c's collectargs does.
*/
static int collect_args(char **argv, int *script) {
  int flags = 0, i;
  for (i = 1; argv[i] != NULL; i++) {
    *script = i;
    if (argv[i][0] != '-') return flags;
    if (strcmp(argv[i], "--debug") == 0) {
      flags |= HAS_DEBUG;
      continue;
    }
    switch (argv[i][1]) {
    case '-':
      if (argv[i][2] != '\0') return HAS_ERROR;
      *script = i + 1;
      return flags;
    case '\0':
      return flags; /* script is stdin */
    case 'v':
      if (argv[i][2] != '\0') return HAS_ERROR;
      flags |= HAS_VERSION;
      break;
    case 'e':
      flags |= HAS_EXEC;
      /* FALLTHROUGH */
    case 'l':
      if (argv[i][2] == '\0' && (argv[++i] == NULL || argv[i][0] == '-'))
        return HAS_ERROR;
      break;
    default:
      return HAS_ERROR;
    }
  }
  *script = i;
  return flags;
}

/* Global 'arg': the script at 0, its arguments after, options before. */
static void create_arg_table(lua_State *L, char **argv, int argc,
                             int script) {
  int i;
  if (script == argc) script = 0; /* no script: options at 1.. */
  lua_createtable(L, argc - script, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/*
** [-0, +1] push the steps to run as the main task: -e chunks (functions)
** and -l modules (strings "global=module"), in command-line order.
*/
static int load_steps(lua_State *L, char **argv, int script) {
  int i, n = 0;
  lua_newtable(L);
  for (i = 1; i < script; i++) {
    int kind = argv[i][1];
    const char *value;
    if (argv[i][0] != '-' || (kind != 'e' && kind != 'l')) continue;
    value = argv[i][2] ? argv[i] + 2 : argv[++i];
    if (kind == 'e') {
      if (luaL_loadbuffer(L, value, strlen(value), "=(command line)") !=
          LUA_OK)
        return 0;
    } else if (strchr(value, '=')) {
      lua_pushstring(L, value);
    } else {
      lua_pushfstring(L, "%s=%s", value, value);
    }
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* The main task: run the steps, then the script with its arguments. */
static const char main_chunk[] =
  "local steps, script = ...\n"
  "return function(...)\n"
  "  for i = 1, #steps do\n"
  "    local step = steps[i]\n"
  "    if type(step) == 'function' then step()\n"
  "    else\n"
  "      local g, mod = step:match('^([^=]*)=(.*)$')\n"
  "      _G[g] = require(mod)\n"
  "    end\n"
  "  end\n"
  "  if script then return script(...) end\n"
  "end\n";

/* }====================================================================== */

static int run_args(lua_State *L, char **argv, int argc, int script,
                    int flags) {
  int nargs = 0, i, status;
  if (flags & HAS_VERSION) print_version();
  if (!load_steps(L, argv, script)) {
    report_error(L, -1, 0);
    return 0;
  }
  if (script < argc) {
    const char *fname = argv[script];
    if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
      fname = NULL; /* stdin */
    if (luaL_loadfile(L, fname) != LUA_OK) {
      report_error(L, -1, 0);
      return 0;
    }
    nargs = argc - script - 1;
  } else if ((flags & (HAS_EXEC | HAS_VERSION)) == 0) {
    if (isatty(0)) {
      print_version();
      fprintf(stderr, "%s: no script given; usage: %s script.lua [args]\n",
              progname, progname);
      return 0;
    }
    if (luaL_loadfile(L, NULL) != LUA_OK) { /* run stdin */
      report_error(L, -1, 0);
      return 0;
    }
  } else {
    lua_pushnil(L);
  }
  if (lua_rawlen(L, -2) == 0 && !lua_isnil(L, -1)) {
    lua_remove(L, -2); /* no -e/-l: the script itself is the main task */
  } else {
    if (luaL_loadbuffer(L, main_chunk, sizeof main_chunk - 1, "=lasync") !=
        LUA_OK)
      return lua_error(L);
    lua_insert(L, -3);
    lua_call(L, 2, 1); /* -> the main function */
  }
  luaL_checkstack(L, nargs, "too many arguments to script");
  for (i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  status = lasync_run(L, nargs);
  if (status != LUA_OK) {
    if (lasync_is_interrupt(L, -2)) { /* Ctrl-C: one line, status 130 */
      fprintf(stderr, "%s: interrupted\n", progname);
      exit_status = 130;
      return 0;
    }
    report_error(L, -2, lua_gettop(L));
    return 0;
  }
  return 1;
}

/* Protected main, as lua.c's pmain: argc and argv come as light data. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script = argc, flags = collect_args(argv, &script);
  if (flags & HAS_ERROR) {
    print_usage(argv[script]);
    return 0;
  }
  if (flags & HAS_DEBUG) setenv("LASYNC_DEBUG", "1", 1);
  luaL_openlibs(L);
  lasync_openlibs(L);
  create_arg_table(L, argv, argc, script);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lasync");
  lua_call(L, 1, 1);
  lua_setglobal(L, "lasync");
  lua_pushboolean(L, run_args(L, argv, argc, script, flags));
  return 1;
}

int main(int argc, char **argv) {
  int status, ok;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = status == LUA_OK && lua_toboolean(L, -1);
  if (status != LUA_OK) report_error(L, -1, 0);
  lua_close(L);
  return ok ? EXIT_SUCCESS : exit_status;
}
