/*
** lasync.c — the lasync command: runs a Lua script as the main task of an
** event loop, so its top level may await. Options follow lua5.4's lua.c
** (-e, -l, -v, -i, -, --), plus --debug, and GNU's --help and --version.
** Without a script, on a terminal, or with -i, the main task is the REPL
** (lua/lasync/repl.lua). With -w N, this process is the supervisor of N
** workers that run the script (supervisor.c).
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <uv.h>

#include "lasync.h"
#include "lauxlib.h"
#include "lualib.h"
#include "repl.h"
#include "supervisor.h"

#include "core/core.h" /* lx_push_error_text, lx_set_interrupt_again */
#include "io/io.h" /* lx_worker_id */

static const char *progname = "lasync";
static int exit_status = EXIT_FAILURE; /* when the run fails */
static volatile sig_atomic_t terminated; /* a worker got SIGTERM */

/* The usage: every option, on out (stdout for --help, else stderr). */
static void print_usage(FILE *out) {
  fprintf(out,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat    execute string 'stat' (it may await)\n"
          "  -l mod     require library 'mod' into global 'mod'\n"
          "  -l g=mod   require library 'mod' into global 'g'\n"
          "  -i         enter the REPL after running 'script'\n"
          "  -v         show version information\n"
          "  -w N       run 'script' in N worker processes sharing its "
          "ports, under\n"
          "             a supervisor ('auto': one per CPU; also "
          "LASYNC_WORKERS=N)\n"
          "  --share=M  with -w: how workers share a port: 'reuseport' "
          "(default)\n"
          "             or 'socket' (also LASYNC_SHARE=M)\n"
          "  --grace=S  with -w: seconds between SIGTERM and SIGKILL when "
          "stopping\n"
          "             (default 10; also LASYNC_GRACE=S)\n"
          "  --worker-log  with -w: prefix the workers' output lines with "
          "their id\n"
          "  --debug    debug mode: warn about slow task steps, keep task "
          "creation\n"
          "             tracebacks (also LASYNC_DEBUG=1)\n"
          "  --help     show this help and exit\n"
          "  --version  show version information and exit\n"
          "  --         stop handling options\n"
          "  -          run stdin and stop handling options\n"
          "Without a script: the REPL on a terminal, else stdin as the "
          "script.\n"
          "See lasync(1).\n",
          progname);
}

static void print_bad_option(const char *badoption) {
  if (badoption[1] == 'e' || badoption[1] == 'l')
    fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
  else
    fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
  print_usage(stderr);
}

/*
** The command's policy for a second Ctrl-C while the first one's cleanup
** runs: leave at once with 130, as a shell reports SIGINT (the library's
** default, for embedders and lua5.4, ends the process by SIGINT itself).
*/
static void interrupted_again(void) {
  fputs("\nlasync: interrupted again: exiting\n", stderr);
  _exit(130);
}

static void print_version(void) {
  printf("lasync %s (%s, libuv %s)\n", LASYNC_VERSION, LUA_RELEASE,
         uv_version_string());
}


/*
** Print "lasync: message" and the traceback below it, if any, without
** the frame of the command's own main function ("[C]: in ?", the last
** line when -e or -l steps ran first): tracebacks show the user's frames.
*/
static void report_error(lua_State *L, int erridx, int tbidx) {
  static const char own_frame[] = "\n\t[C]: in ?";
  const char *tb = tbidx ? lua_tostring(L, tbidx) : NULL;
  erridx = lua_absindex(L, erridx);
  fprintf(stderr, "%s: %s\n", progname, lx_push_error_text(L, erridx));
  if (tb) {
    size_t len = strlen(tb), own = sizeof own_frame - 1;
    if (len >= own && strcmp(tb + len - own, own_frame) == 0) len -= own;
    fprintf(stderr, "%.*s\n", (int)len, tb);
  }
  fflush(stderr);
  lua_pop(L, 1);
}

/* {======================================================================
** Command line
** ======================================================================= */

enum { HAS_ERROR = 1, HAS_VERSION = 2, HAS_EXEC = 4, HAS_DEBUG = 8,
       HAS_REPL = 16, HAS_HELP = 32, HAS_VERSION_ONLY = 64 };

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
    /* GNU's --help and --version: print, exit 0, whatever else is given */
    if (strcmp(argv[i], "--help") == 0) return HAS_HELP;
    if (strcmp(argv[i], "--version") == 0) return HAS_VERSION_ONLY;
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
    case 'i':
      if (argv[i][2] != '\0') return HAS_ERROR;
      flags |= HAS_REPL;
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

/*
** The main task when -e or -l steps come first: run the steps in order,
** then the script (upvalues: the steps and the script, or nil) with the
** arguments. A C function, so that it adds no frame of its own to
** tracebacks but the last "[C]: in ?" (report_error leaves it out): -e
** chunks show as "main chunk" as in lua5.4, and require's errors carry no
** position. Steps may await: ctx is the index of the step that ran last.
*/
static int main_steps_k(lua_State *L, int status, lua_KContext done);

static int main_script_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L);
}

static int main_steps_k(lua_State *L, int status, lua_KContext done) {
  int nargs;
  (void)status;
  while (lua_rawgeti(L, lua_upvalueindex(1), ++done) != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TFUNCTION) {
      lua_callk(L, 0, 0, done, main_steps_k);
    } else { /* "global=module" */
      const char *spec = lua_tostring(L, -1), *eq = strchr(spec, '=');
      lua_getglobal(L, "require");
      lua_pushstring(L, eq + 1);
      lua_call(L, 1, 1);
      lua_pushlstring(L, spec, (size_t)(eq - spec));
      lua_insert(L, -2);
      lua_setglobal(L, lua_tostring(L, -2));
      lua_pop(L, 2); /* the global's name, the step */
    }
  }
  lua_pop(L, 1); /* nil */
  if (lua_isnil(L, lua_upvalueindex(2))) return 0;
  nargs = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_callk(L, nargs, LUA_MULTRET, 0, main_script_k);
  return lua_gettop(L);
}

static int main_steps(lua_State *L) {
  return main_steps_k(L, LUA_OK, 0);
}

/* }====================================================================== */

/*
** [-0, +1] push the script to run: the file, stdin when not a terminal and
** nothing else was asked for (as lua5.4 does), or nil. 0 on a load error.
*/
static int load_script(lua_State *L, char **argv, int argc, int script,
                       int flags, int repl) {
  const char *fname = NULL; /* stdin */
  if (script < argc) {
    fname = argv[script];
    if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
      fname = NULL;
  } else if (repl || (flags & (HAS_EXEC | HAS_VERSION))) {
    lua_pushnil(L);
    return 1;
  }
  if (luaL_loadfile(L, fname) != LUA_OK) {
    report_error(L, -1, 0);
    return 0;
  }
  return 1;
}

/*
** [-2, +1] turn the steps and the script below them into the main
** function: the script itself when there are no steps.
*/
static void make_main(lua_State *L) {
  if (lua_rawlen(L, -2) == 0 && !lua_isnil(L, -1)) {
    lua_remove(L, -2);
    return;
  }
  lua_pushcclosure(L, main_steps, 2);
}

static int run_args(lua_State *L, char **argv, int argc, int script,
                    int flags) {
  int repl = (flags & HAS_REPL) ||
             (script == argc && !(flags & (HAS_EXEC | HAS_VERSION)) &&
              isatty(0));
  int nargs = script < argc ? argc - script - 1 : 0, i, status;
  if (flags & HAS_VERSION) print_version();
  if (!load_steps(L, argv, script)) {
    report_error(L, -1, 0);
    return 0;
  }
  if (!load_script(L, argv, argc, script, flags, repl)) return 0;
  if (repl && lua_rawlen(L, -2) == 0 && lua_isnil(L, -1))
    lua_remove(L, -2); /* nothing to run first */
  else
    make_main(L);
  if (repl) { /* the REPL is the main task; the script its first entry */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lasync.repl");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_replace(L, -2);
    lua_insert(L, -2);
    nargs++;
  }
  luaL_checkstack(L, nargs, "too many arguments to script");
  for (i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  status = lasync_run(L, nargs);
  if (status != LUA_OK) {
    if (lasync_is_interrupt(L, -2) && terminated) { /* a worker stopped */
      exit_status = EXIT_SUCCESS;
      return 0;
    }
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
    print_bad_option(argv[script]);
    return 0;
  }
  if (flags & (HAS_HELP | HAS_VERSION_ONLY)) {
    if (flags & HAS_HELP) print_usage(stdout);
    else print_version();
    lua_pushboolean(L, fflush(stdout) == 0);
    return 1;
  }
  if (flags & HAS_DEBUG) setenv("LASYNC_DEBUG", "1", 1);
  lx_set_interrupt_again(interrupted_again);
  lua_gc(L, LUA_GCGEN, 0, 0); /* as lua5.4 does: I/O makes short-lived
                                 strings, which this mode collects cheaply */
  luaL_openlibs(L);
  lasync_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, host_open_readline);
  lua_setfield(L, -2, "lasync.readline");
  lua_pop(L, 1);
  create_arg_table(L, argv, argc, script);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lasync");
  lua_call(L, 1, 1);
  lua_setglobal(L, "lasync");
  lua_pushboolean(L, run_args(L, argv, argc, script, flags));
  return 1;
}

/*
** A worker's SIGTERM (its supervisor stopping it) does what Ctrl-C does
** under lasync.run: the script's SIGINT watchers get it (app:run closes
** its server gracefully), or else the main task is cancelled; the worker
** then exits 0. A script that watches SIGTERM itself replaces this.
*/
static void worker_term_handler(int sig) {
  (void)sig;
  terminated = 1;
  kill(getpid(), SIGINT);
}

/*
** Set up a worker of lasync -w N: it stops when its supervisor dies, its
** lines are written whole (the workers share stdout), and SIGTERM stops
** it gracefully. 0 if the supervisor is gone already.
*/
static int worker_setup(void) {
  struct sigaction sa;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (lx_worker_id() == 0) return 0; /* its parent is not the supervisor */
  setvbuf(stdout, NULL, _IOLBF, 0);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = worker_term_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  return 1;
}

int main(int argc, char **argv) {
  int status, ok;
  supervisor_opts so;
  lua_State *L;
  if (supervisor_parse(&argc, argv, &so) < 0) return EXIT_FAILURE;
  if (so.workers > 0) return supervisor_main(&so, argc, argv);
  if (getenv(LX_WORKER_PARENT_ENV) && !worker_setup()) {
    fprintf(stderr, "%s: worker: the supervisor is gone\n", progname);
    return EXIT_FAILURE;
  }
  L = luaL_newstate();
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
