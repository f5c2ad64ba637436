/*
** test_host.c — C tests of the host API of lasync.h: hosts on their own
** loop and on the application's (borrowed) loop; running chunks, files
** and functions as tasks; results, errors and their messages; the run
** modes; destroy cancelling what is still pending; the warning hook; and
** completions settled from C. ctest runs it plainly (ASan in the ASan
** build) and under valgrind's memcheck.
*/
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lasync.h"
#include "lauxlib.h"
#include "lualib.h"

static int nchecks, nfailed;

#define CHECK(cond) check((cond) != 0, #cond, __FILE__, __LINE__)
#define CHECK_STR(s, sub) check_str((s), (sub), __FILE__, __LINE__)

static void check(int ok, const char *what, const char *file, int line) {
  nchecks++;
  if (!ok) {
    nfailed++;
    printf("%s:%d: check failed: %s\n", file, line, what);
  }
}

/* s contains sub */
static void check_str(const char *s, const char *sub, const char *file,
                      int line) {
  nchecks++;
  if (s == NULL || strstr(s, sub) == NULL) {
    nfailed++;
    printf("%s:%d: expected \"%s\" in: %s\n", file, line, sub,
           s ? s : "(null)");
  }
}

static double now(void) {
  return uv_hrtime() / 1e9;
}

/* What the warning hook captured, and a note buffer Lua writes through. */
typedef struct capture {
  char text[8192];
  int calls;
} capture;

static void capture_warn(void *ud, const char *msg) {
  capture *c = ud;
  size_t len = strlen(c->text);
  c->calls++;
  snprintf(c->text + len, sizeof c->text - len, "%s", msg);
}

static capture notes;

/* note(s): record s (Lua tasks report what they did through it) */
static int note(lua_State *L) {
  size_t len = strlen(notes.text);
  snprintf(notes.text + len, sizeof notes.text - len, "%s;",
           luaL_checkstring(L, 1));
  notes.calls++;
  return 0;
}

/* A new host on uv (NULL: its own loop) with note() registered. */
static lasync_host *new_host(uv_loop_t *uv) {
  lasync_host *h = lasync_host_new(uv);
  if (h == NULL) {
    printf("lasync_host_new failed\n");
    exit(1);
  }
  lua_register(lasync_host_state(h), "note", note);
  return h;
}

/* {======================================================================
** Creating hosts
** ======================================================================= */

static void test_new_own_loop(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  CHECK(L != NULL);
  CHECK(lasync_host_loop(h) != NULL);
  CHECK(lasync_host_loop(h) != uv_default_loop());
  CHECK(lasync_uv_loop(L) == lasync_host_loop(h)); /* attached for good */
  CHECK(strcmp(lasync_host_error(h), "") == 0);
  CHECK(lua_gettop(L) == 0);
  /* the standard libraries and the global lasync, = require "lasync" */
  CHECK(lua_getglobal(L, "lasync") == LUA_TTABLE);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lasync");
  lua_call(L, 1, 1);
  CHECK(lua_rawequal(L, -1, -2));
  CHECK(lua_getglobal(L, "string") == LUA_TTABLE);
  lua_pop(L, 3);
  /* a host with nothing to do: run returns at once, destroy is clean */
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_run(h, UV_RUN_NOWAIT) == 0);
  lasync_host_destroy(h);
}

/* Two hosts are independent states, each with its own loop. */
static void test_two_hosts(void) {
  lasync_host *a = new_host(NULL), *b = new_host(NULL);
  int ta, tb, n;
  CHECK(lasync_host_state(a) != lasync_host_state(b));
  CHECK(lasync_host_loop(a) != lasync_host_loop(b));
  ta = lasync_host_dostring(a, "x = 'a' lasync.sleep(0.01) return x", "=a");
  tb = lasync_host_dostring(b, "x = 'b' lasync.sleep(0.01) return x", "=b");
  CHECK(ta > 0 && tb > 0);
  CHECK(lasync_host_run(a, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(a, ta, &n) == LASYNC_OK && n == 1);
  CHECK(strcmp(lua_tostring(lasync_host_state(a), -1), "a") == 0);
  CHECK(lasync_host_result(b, tb, &n) == LASYNC_PENDING);
  CHECK(lasync_host_run(b, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(b, tb, &n) == LASYNC_OK && n == 1);
  CHECK(strcmp(lua_tostring(lasync_host_state(b), -1), "b") == 0);
  lasync_host_destroy(a);
  lasync_host_destroy(b);
}

/* }====================================================================== */

/* {======================================================================
** Starting tasks and getting their outcome
** ======================================================================= */

static void test_dostring_results(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n = -1, t = lasync_host_dostring(
                      h, "lasync.sleep(0.01) return 1, nil, 'three'", "=t");
  CHECK(t > 0);
  CHECK(lua_gettop(L) == 0);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_PENDING);
  CHECK(n == 0);
  CHECK(lua_gettop(L) == 0);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK);
  CHECK(n == 3 && lua_gettop(L) == 3);
  CHECK(lua_tointeger(L, -3) == 1 && lua_isnil(L, -2));
  CHECK(strcmp(lua_tostring(L, -1), "three") == 0);
  lua_pop(L, n);
  /* the outcome can be read again until released */
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && n == 3);
  lua_pop(L, n);
  lasync_host_release(h, t);
  /* no results, and a chunk name given as NULL */
  t = lasync_host_dostring(h, "local x = 1", NULL);
  CHECK(t > 0);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && n == 0);
  CHECK(lua_gettop(L) == 0);
  lasync_host_release(h, t);
  lasync_host_destroy(h);
}

static void test_dofile(void) {
  char path[] = "/tmp/lasync_test_host_XXXXXX";
  static const char code[] =
    "local a = lasync.spawn(function() lasync.sleep(0.01) return 20 end)\n"
    "local b = lasync.spawn(function() lasync.sleep(0.02) return 22 end)\n"
    "return a:await() + b:await()\n";
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n, t, fd = mkstemp(path);
  CHECK(fd >= 0);
  CHECK(write(fd, code, sizeof code - 1) == (ssize_t)(sizeof code - 1));
  close(fd);
  t = lasync_host_dofile(h, path);
  CHECK(t > 0);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && n == 1);
  CHECK(lua_tointeger(L, -1) == 42);
  lua_pop(L, n);
  lasync_host_release(h, t);
  remove(path);
  lasync_host_destroy(h);
}

/* a C function run as a task: it may call into Lua, not await */
static int c_task(lua_State *L) {
  lua_pushinteger(L, luaL_checkinteger(L, 1) * 2);
  lua_pushstring(L, luaL_checkstring(L, 2));
  return 2;
}

static void test_spawn(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n, t1, t2, t3;
  CHECK(luaL_dostring(L, "function add(a, b)\n"
                         "  lasync.sleep(0.01)\n"
                         "  return a + b\n"
                         "end") == LUA_OK);
  lua_getglobal(L, "add");
  lua_pushinteger(L, 40);
  lua_pushinteger(L, 2);
  t1 = lasync_host_spawn(h, 2);
  CHECK(t1 > 0);
  CHECK(lua_gettop(L) == 0); /* the function and arguments are popped */
  lua_pushcfunction(L, c_task);
  lua_pushinteger(L, 21);
  lua_pushliteral(L, "from C");
  t2 = lasync_host_spawn(h, 2);
  CHECK(t2 > 0 && t2 != t1);
  /* what stays below the function on the stack is left alone */
  lua_pushliteral(L, "keep me");
  lua_getglobal(L, "add");
  lua_pushinteger(L, 1);
  lua_pushinteger(L, 1);
  t3 = lasync_host_spawn(h, 2);
  CHECK(t3 > 0);
  CHECK(lua_gettop(L) == 1 && strcmp(lua_tostring(L, 1), "keep me") == 0);
  lua_pop(L, 1);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(h, t1, &n) == LASYNC_OK && n == 1);
  CHECK(lua_tointeger(L, -1) == 42);
  lua_pop(L, n);
  CHECK(lasync_host_result(h, t2, &n) == LASYNC_OK && n == 2);
  CHECK(lua_tointeger(L, -2) == 42);
  CHECK(strcmp(lua_tostring(L, -1), "from C") == 0);
  lua_pop(L, n);
  CHECK(lasync_host_result(h, t3, &n) == LASYNC_OK && n == 1);
  CHECK(lua_tointeger(L, -1) == 2);
  lua_pop(L, n);
  lasync_host_release(h, t1);
  lasync_host_release(h, t2);
  lasync_host_release(h, t3);
  CHECK(lua_gettop(L) == 0);
  lasync_host_destroy(h);
}

/* Many tasks at once, spawned from C, each with its own id. */
static void test_many_tasks(void) {
  enum { N = 200 };
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int ids[N], i, n, ok = 0;
  CHECK(luaL_dostring(L, "function job(i)\n"
                         "  lasync.sleep((i % 7) / 1000)\n"
                         "  return i * i\n"
                         "end") == LUA_OK);
  for (i = 0; i < N; i++) {
    lua_getglobal(L, "job");
    lua_pushinteger(L, i);
    ids[i] = lasync_host_spawn(h, 1);
  }
  n = lasync_host_run(h, UV_RUN_NOWAIT); /* those that sleep(0) are done */
  CHECK(n > 0 && n <= N);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  for (i = 0; i < N; i++) {
    if (lasync_host_result(h, ids[i], &n) == LASYNC_OK && n == 1 &&
        lua_tointeger(L, -1) == (lua_Integer)i * i)
      ok++;
    lua_pop(L, n);
    lasync_host_release(h, ids[i]);
  }
  CHECK(ok == N);
  lasync_host_destroy(h);
}

/* }====================================================================== */

/* {======================================================================
** Errors and their messages
** ======================================================================= */

static void test_errors(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n, failing, cancelled, by_c;
  /* a chunk that does not compile: no task, the message */
  CHECK(lasync_host_dostring(h, "x = = 1", "=bad") == 0);
  CHECK_STR(lasync_host_error(h), "bad:1: unexpected symbol near '='");
  CHECK(lua_gettop(L) == 0);
  CHECK(lasync_host_dofile(h, "/nonexistent/script.lua") == 0);
  CHECK_STR(lasync_host_error(h), "cannot open /nonexistent/script.lua");
  CHECK(lua_gettop(L) == 0);
  /* a task that raises: LASYNC_ERROR, the message and its traceback */
  failing = lasync_host_dostring(h,
                                 "local function inner()\n"
                                 "  lasync.sleep(0.001)\n"
                                 "  error('boom')\n"
                                 "end\n"
                                 "inner()\n",
                                 "=failing");
  /* a task cancelled (it cancels itself, then awaits) */
  cancelled = lasync_host_dostring(
      h, "lasync.current_task():cancel() lasync.sleep(1)", "=cancelled");
  /* a task whose task, once started, fails in C */
  lua_pushcfunction(L, c_task);
  lua_pushliteral(L, "not a number");
  by_c = lasync_host_spawn(h, 1);
  CHECK(failing > 0 && cancelled > 0 && by_c > 0);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(h, failing, &n) == LASYNC_ERROR && n == 0);
  CHECK_STR(lasync_host_error(h), "failing:3: boom\n");
  CHECK_STR(lasync_host_error(h), "stack traceback of task 'Task-");
  CHECK_STR(lasync_host_error(h), "failing:3: in ");
  CHECK(lua_gettop(L) == 0);
  CHECK(lasync_host_result(h, cancelled, &n) == LASYNC_CANCELLED && n == 0);
  CHECK_STR(lasync_host_error(h), "cancelled");
  CHECK(lasync_host_result(h, by_c, &n) == LASYNC_ERROR);
  CHECK_STR(lasync_host_error(h), "bad argument #1");
  CHECK(lua_gettop(L) == 0);
  /* ids that are no task, or no longer */
  CHECK(lasync_host_result(h, 0, &n) == LASYNC_ERROR && n == 0);
  CHECK_STR(lasync_host_error(h), "no such task");
  CHECK(lasync_host_result(h, -5, &n) == LASYNC_ERROR);
  CHECK(lasync_host_result(h, 1 << 20, &n) == LASYNC_ERROR);
  lasync_host_release(h, failing);
  CHECK(lasync_host_result(h, failing, &n) == LASYNC_ERROR);
  CHECK_STR(lasync_host_error(h), "no such task");
  lasync_host_release(h, cancelled);
  lasync_host_release(h, by_c);
  CHECK(lua_gettop(L) == 0);
  lasync_host_destroy(h);
}

/*
** Releasing an id twice, or one never issued, is refused: it must not
** make later tasks share an id (and swap their results).
*/
static void test_release_checked(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n, i, t, ids[4], bad[] = {0, -1, 1, 2, 3, 1 << 20};
  t = lasync_host_dostring(h, "return 'first'", "=first");
  CHECK(t > 0);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_release(h, t) == LASYNC_OK);
  CHECK(lasync_host_release(h, t) == LASYNC_ERROR);
  CHECK_STR(lasync_host_error(h), "lasync_host_release: no such task");
  for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
    if (bad[i] == t) continue;
    CHECK(lasync_host_release(h, bad[i]) == LASYNC_ERROR);
  }
  /* the state is intact: its globals and registry entries still work */
  CHECK(lua_getglobal(L, "lasync") == LUA_TTABLE);
  lua_pop(L, 1);
  /* later tasks get distinct ids and their own results */
  for (i = 0; i < 4; i++) {
    lua_pushfstring(L, "lasync.sleep(0.00%d) return %d", 4 - i, i);
    ids[i] = lasync_host_dostring(h, lua_tostring(L, -1), "=later");
    lua_pop(L, 1);
    CHECK(ids[i] > 0);
  }
  CHECK(ids[0] != ids[1] && ids[1] != ids[2] && ids[2] != ids[3] &&
        ids[0] != ids[2] && ids[0] != ids[3] && ids[1] != ids[3]);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  for (i = 0; i < 4; i++) {
    CHECK(lasync_host_result(h, ids[i], &n) == LASYNC_OK && n == 1 &&
          lua_tointeger(L, -1) == i);
    lua_pop(L, n);
    CHECK(lasync_host_release(h, ids[i]) == LASYNC_OK);
    CHECK(lasync_host_release(h, ids[i]) == LASYNC_ERROR);
  }
  CHECK(lua_gettop(L) == 0);
  lasync_host_destroy(h);
}

/* A task's error whose __tostring fails: the message says so, no panic. */
static void test_error_tostring_fails(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n, t = lasync_host_dostring(h,
                                  "error(setmetatable({}, {__tostring = "
                                  "function() error('x', 0) end}))",
                                  "=bad tostring");
  CHECK(t > 0);
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_ERROR && n == 0);
  CHECK_STR(lasync_host_error(h), "(error object is a table value; its "
                                  "__tostring failed: x)\n");
  CHECK_STR(lasync_host_error(h), "stack traceback of task");
  CHECK(lua_gettop(L) == 0);
  CHECK(lasync_host_release(h, t) == LASYNC_OK);
  lasync_host_destroy(h);
}

/* Starting a task of something that is not a function: it fails. */
static void test_spawn_not_callable(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n, t;
  lua_pushinteger(L, 5);
  t = lasync_host_spawn(h, 0);
  if (t > 0) { /* refused at once, or a task that fails when it runs */
    CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
    CHECK(lasync_host_result(h, t, &n) == LASYNC_ERROR);
    lasync_host_release(h, t);
  }
  CHECK_STR(lasync_host_error(h), "call");
  CHECK(lua_gettop(L) == 0);
  lasync_host_destroy(h);
}

/* }====================================================================== */

/* {======================================================================
** Run modes
** ======================================================================= */

static void test_run_modes(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n, t, iterations = 0;
  double start;
  t = lasync_host_dostring(h, "lasync.sleep(0.2) return 'woke'", "=sleeper");
  /* NOWAIT: one iteration, never blocks; the task has started */
  start = now();
  CHECK(lasync_host_run(h, UV_RUN_NOWAIT) == 1);
  CHECK(lasync_host_run(h, UV_RUN_NOWAIT) == 1);
  CHECK(now() - start < 0.15);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_PENDING);
  /* ONCE: blocks until something happens (here the timer) */
  while (lasync_host_run(h, UV_RUN_ONCE) > 0 && iterations < 100)
    iterations++;
  CHECK(iterations < 100);
  CHECK(now() - start >= 0.19);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && n == 1);
  CHECK(strcmp(lua_tostring(L, -1), "woke") == 0);
  lua_pop(L, n);
  lasync_host_release(h, t);
  /* a game loop: NOWAIT per frame until done */
  t = lasync_host_dostring(h,
                           "local n = 0\n"
                           "for i = 1, 5 do lasync.sleep(0.004) n = n + 1 end\n"
                           "return n",
                           "=frames");
  for (iterations = 0; iterations < 500; iterations++) {
    if (lasync_host_run(h, UV_RUN_NOWAIT) == 0) break;
    uv_sleep(1);
  }
  CHECK(iterations > 5 && iterations < 500);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && lua_tointeger(L, -1) == 5);
  lua_pop(L, n);
  lasync_host_release(h, t);
  /* DEFAULT when the tasks wait for something nothing will do: -1 */
  t = lasync_host_dostring(h, "lasync.Future():await()", "=stuck");
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == -1);
  CHECK_STR(lasync_host_error(h), "deadlock");
  CHECK(lasync_host_result(h, t, &n) == LASYNC_PENDING);
  CHECK(lasync_host_run(h, UV_RUN_NOWAIT) == 1);
  lasync_host_release(h, t); /* still pending: destroy cancels it */
  lasync_host_destroy(h);
}

/* }====================================================================== */

/* {======================================================================
** Destroy
** ======================================================================= */

static void test_destroy_cancels(void) {
  lasync_host *h = new_host(NULL);
  int t;
  notes.text[0] = '\0';
  /* a task that sees the cancellation and cleans up */
  t = lasync_host_dostring(h,
                           "local ok, err = pcall(lasync.sleep, 100)\n"
                           "note(lasync.is_cancelled(err) and 'cancelled' "
                           "or 'not cancelled')\n"
                           "error(err, 0)\n",
                           "=sleeper");
  CHECK(t > 0);
  /* one holding a server and a connection */
  lasync_host_dostring(h,
                       "local srv = lasync.start_server(function(r, w)\n"
                       "  r:read()\n"
                       "end, '127.0.0.1', 0)\n"
                       "local port = srv:sockets()[1].port\n"
                       "local r, w = lasync.open_connection('127.0.0.1', "
                       "port)\n"
                       "note('connected')\n"
                       "r:read()\n",
                       "=network");
  while (strstr(notes.text, "connected") == NULL &&
         lasync_host_run(h, UV_RUN_ONCE) > 0) {
  }
  CHECK_STR(notes.text, "connected");
  /* and one that never started */
  lasync_host_dostring(h, "note('never started')", "=late");
  lasync_host_destroy(h); /* t is not released: destroy frees it too */
  CHECK_STR(notes.text, "cancelled;");
  CHECK(strstr(notes.text, "not cancelled") == NULL);
  CHECK(strstr(notes.text, "never started") == NULL);
}

/* Cleanup that awaits (a timer) finishes before destroy returns. */
static void test_destroy_awaits_cleanup(void) {
  lasync_host *h = new_host(NULL);
  notes.text[0] = '\0';
  lasync_host_dostring(h,
                       "pcall(lasync.sleep, 100)\n"
                       "lasync.sleep(0.02)\n"
                       "note('cleanup finished')\n",
                       "=slow cleanup");
  lasync_host_run(h, UV_RUN_NOWAIT);
  lasync_host_destroy(h);
  CHECK_STR(notes.text, "cleanup finished");
}

/* lasync_run on a host's state: an error status, not a panic */
static void test_run_on_host_state(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  lua_pushliteral(L, "below");
  CHECK(luaL_loadstring(L, "return 1") == LUA_OK);
  lua_pushinteger(L, 2);
  CHECK(lasync_run(L, 1) == LUA_ERRRUN);
  CHECK(lua_gettop(L) == 3 && lua_isnil(L, 3));
  CHECK_STR(lua_tostring(L, 2), "already running");
  CHECK(strcmp(lua_tostring(L, 1), "below") == 0);
  lua_settop(L, 0);
  lasync_host_destroy(h);
}

/* }====================================================================== */

/* {======================================================================
** Borrowed loops
** ======================================================================= */

static int app_ticks;

static void app_tick(uv_timer_t *timer) {
  if (++app_ticks == 3) uv_timer_stop(timer);
}

static void test_borrowed_loop(void) {
  uv_loop_t app;
  uv_timer_t timer;
  lasync_host *h, *h2;
  lua_State *L;
  int n, t, t2;
  CHECK(uv_loop_init(&app) == 0);
  uv_timer_init(&app, &timer);
  uv_timer_start(&timer, app_tick, 1, 1);
  h = new_host(&app);
  h2 = new_host(&app); /* two hosts may share the application's loop */
  L = lasync_host_state(h);
  CHECK(lasync_host_loop(h) == &app && lasync_host_loop(h2) == &app);
  CHECK(lasync_uv_loop(L) == &app);
  t = lasync_host_dostring(h, "lasync.sleep(0.02) return 'h'", "=h");
  t2 = lasync_host_dostring(h2, "lasync.sleep(0.01) return 'h2'", "=h2");
  /* the application runs its loop itself: the tasks run with it */
  app_ticks = 0;
  uv_run(&app, UV_RUN_DEFAULT);
  CHECK(app_ticks == 3);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && n == 1);
  CHECK(strcmp(lua_tostring(L, -1), "h") == 0);
  lua_pop(L, n);
  CHECK(lasync_host_result(h2, t2, &n) == LASYNC_OK && n == 1);
  lua_pop(lasync_host_state(h2), n);
  lasync_host_release(h, t);
  lasync_host_release(h2, t2);
  lasync_host_destroy(h2);
  /* or through lasync_host_run, which leaves the app's handles alone */
  uv_timer_start(&timer, app_tick, 1000, 0);
  t = lasync_host_dostring(h, "lasync.sleep(0.01) return 'again'", "=again");
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && n == 1);
  lua_pop(L, n);
  lasync_host_release(h, t);
  /* destroy with pending tasks holding handles: the app's loop stays */
  lasync_host_dostring(h,
                       "local srv = lasync.start_server(function(r, w)\n"
                       "  r:read()\n"
                       "end, '127.0.0.1', 0)\n"
                       "local r, w = lasync.open_connection('127.0.0.1', "
                       "srv:sockets()[1].port)\n"
                       "lasync.spawn(lasync.sleep, 100)\n"
                       "r:read()\n",
                       "=network");
  for (n = 0; n < 20; n++) lasync_host_run(h, UV_RUN_NOWAIT), uv_sleep(1);
  lasync_host_destroy(h);
  CHECK(uv_is_active((uv_handle_t *)&timer));
  CHECK(uv_loop_close(&app) == UV_EBUSY); /* only the app's timer is left */
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&app, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&app) == 0);
}

/* }====================================================================== */

/* {======================================================================
** The warning hook
** ======================================================================= */

static void test_warn_hook(void) {
  capture cap = {{0}, 0};
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int t;
  lasync_host_set_warn(h, capture_warn, &cap);
  /* a failed task that nobody looked at, once collected */
  t = lasync_host_dostring(h, "error('nobody looks', 0)", "=forgotten");
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  lasync_host_release(h, t);
  lua_gc(L, LUA_GCCOLLECT, 0);
  CHECK(cap.calls == 1);
  CHECK_STR(cap.text, "lasync: Task exception was never retrieved (task '");
  CHECK_STR(cap.text, "nobody looks\n");
  CHECK(cap.text[strlen(cap.text) - 1] == '\n');
  /* a failing callback; a slow step in debug mode */
  cap.text[0] = '\0';
  cap.calls = 0;
  t = lasync_host_dostring(
      h,
      "lasync.get_running_loop():call_soon(function() error('cb failed') "
      "end)\n"
      "lasync.sleep(0.001)\n"
      "lasync.set_debug(true)\n"
      "lasync.sleep(0)\n"
      "local t0 = os.clock()\n"
      "while os.clock() - t0 < 0.12 do end\n"
      "lasync.sleep(0)\n"
      "lasync.set_debug(false)\n",
      "=reports");
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(cap.calls >= 2);
  CHECK_STR(cap.text, "cb failed");
  CHECK_STR(cap.text, "blocked the event loop for ");
  lasync_host_release(h, t);
  lasync_host_destroy(h);
}

/* Nothing goes to stderr when a hook is set. */
static void test_warn_not_stderr(void) {
  capture cap = {{0}, 0};
  FILE *tmp = tmpfile();
  int saved = dup(2), t;
  lasync_host *h = new_host(NULL);
  fflush(stderr);
  dup2(fileno(tmp), 2);
  lasync_host_set_warn(h, capture_warn, &cap);
  t = lasync_host_dostring(h, "error('quietly', 0)", "=quiet");
  lasync_host_run(h, UV_RUN_DEFAULT);
  lasync_host_release(h, t);
  lua_gc(lasync_host_state(h), LUA_GCCOLLECT, 0);
  lasync_host_destroy(h);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  CHECK(cap.calls == 1);
  CHECK(fseek(tmp, 0, SEEK_END) == 0 && ftell(tmp) == 0);
  fclose(tmp);
}

/* A NULL hook restores stderr. */
static void test_warn_null(void) {
  capture cap = {{0}, 0};
  FILE *tmp = tmpfile();
  char text[512] = "";
  int saved = dup(2), t;
  lasync_host *h = new_host(NULL);
  lasync_host_set_warn(h, capture_warn, &cap);
  lasync_host_set_warn(h, NULL, NULL);
  fflush(stderr);
  dup2(fileno(tmp), 2);
  t = lasync_host_dostring(h, "error('to stderr', 0)", "=loud");
  lasync_host_run(h, UV_RUN_DEFAULT);
  lasync_host_release(h, t);
  lua_gc(lasync_host_state(h), LUA_GCCOLLECT, 0);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  lasync_host_destroy(h);
  CHECK(cap.calls == 0);
  rewind(tmp);
  CHECK(fread(text, 1, sizeof text - 1, tmp) > 0);
  CHECK_STR(text, "lasync: Task exception was never retrieved");
  CHECK_STR(text, "to stderr");
  fclose(tmp);
}

/* }====================================================================== */

/* {======================================================================
** Completions: futures that C settles, from the loop thread or another
** ======================================================================= */

typedef struct job {
  lasync_completion *c;
  int input;
} job;

static int push_job(lua_State *L, void *ud) {
  job *j = ud;
  int input = j->input;
  free(j);
  if (L == NULL) return 0;
  if (input < 0) return luaL_error(L, "negative input %d", input);
  lua_pushinteger(L, input * 10);
  return 1;
}

static void *job_thread(void *ud) {
  job *j = ud;
  uv_sleep(5);
  if (lasync_completion_send(j->c, push_job, j) < 0) abort();
  return NULL;
}

static pthread_t threads[8];
static int nthreads;

/* from_thread(n) -> a future a C thread settles with n * 10 */
static int from_thread(lua_State *L) {
  job *j = malloc(sizeof *j);
  j->input = (int)luaL_checkinteger(L, 1);
  j->c = lasync_completion_new(L);
  if (pthread_create(&threads[nthreads++], NULL, job_thread, j) != 0)
    abort();
  return 1;
}

/* settled from the application's timer, on the loop thread */
static void settle_on_timer(uv_timer_t *timer) {
  job *j = timer->data;
  lasync_completion_send(j->c, push_job, j);
}

static void test_completions(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  uv_timer_t timer;
  job *j;
  int i, n, t;
  nthreads = 0;
  lua_register(L, "from_thread", from_thread);
  /* a future made from C before any task runs, handed to the task */
  CHECK(luaL_dostring(L, "function wait_for_it(f, g)\n"
                         "  local r = lasync.gather({f, g, from_thread(4),\n"
                         "    from_thread(-1)}, {return_exceptions = true})\n"
                         "  return r[1], r[2], r[3], tostring(r[4])\n"
                         "end") == LUA_OK);
  lua_getglobal(L, "wait_for_it");
  j = malloc(sizeof *j);
  j->input = 1;
  j->c = lasync_completion_new(L); /* the future, an argument */
  uv_timer_init(lasync_host_loop(h), &timer);
  timer.data = j;
  uv_timer_start(&timer, settle_on_timer, 10, 0);
  j = malloc(sizeof *j);
  j->input = 2;
  j->c = lasync_completion_new(L);
  if (pthread_create(&threads[nthreads++], NULL, job_thread, j) != 0) abort();
  t = lasync_host_spawn(h, 2);
  CHECK(t > 0);
  /* outstanding completions keep the run going: no false deadlock */
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && n == 4);
  CHECK(lua_tointeger(L, -4) == 10 && lua_tointeger(L, -3) == 20);
  CHECK(lua_tointeger(L, -2) == 40);
  CHECK_STR(lua_tostring(L, -1), "negative input -1");
  lua_pop(L, n);
  lasync_host_release(h, t);
  for (i = 0; i < nthreads; i++) pthread_join(threads[i], NULL);
  uv_close((uv_handle_t *)&timer, NULL); /* the app's handle on h's loop */
  uv_run(lasync_host_loop(h), UV_RUN_NOWAIT);
  lasync_host_destroy(h);
}

/* after(ms) -> a future settled by a libuv timer this C function starts on
   the running loop (lasync_uv_loop), as docs/embedding.md shows */
typedef struct delay {
  uv_timer_t timer;
  lasync_completion *c;
} delay;

static int push_done(lua_State *L, void *ud) {
  (void)ud;
  if (L == NULL) return 0;
  lua_pushliteral(L, "done");
  return 1;
}

static void delay_closed(uv_handle_t *handle) {
  free(handle->data);
}

static void delay_fired(uv_timer_t *timer) {
  delay *d = timer->data;
  lasync_completion_send(d->c, push_done, NULL);
  uv_close((uv_handle_t *)timer, delay_closed);
}

static int after(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  uv_loop_t *uv = lasync_uv_loop(L);
  delay *d;
  if (uv == NULL) return luaL_error(L, "after: no running loop");
  d = malloc(sizeof *d);
  if (d == NULL) return luaL_error(L, "after: out of memory");
  d->c = lasync_completion_new(L); /* pushes the future */
  uv_timer_init(uv, &d->timer);
  d->timer.data = d;
  uv_timer_start(&d->timer, delay_fired, (uint64_t)ms, 0);
  return 1;
}

static void test_uv_loop_completion(void) {
  lasync_host *h = new_host(NULL);
  lua_State *L = lasync_host_state(h);
  int n, t;
  double start = now();
  lua_register(L, "after", after);
  t = lasync_host_dostring(h, "return after(20):await()", "=after");
  CHECK(lasync_host_run(h, UV_RUN_DEFAULT) == 0);
  CHECK(now() - start >= 0.019);
  CHECK(lasync_host_result(h, t, &n) == LASYNC_OK && n == 1);
  CHECK(strcmp(lua_tostring(L, -1), "done") == 0);
  lua_pop(L, n);
  lasync_host_release(h, t);
  lasync_host_destroy(h);
}

/* }====================================================================== */

/* {======================================================================
** Without a host: lasync_openlibs, lasync_run, lasync_uv_loop,
** lasync_is_interrupt, lasync_set_warn on a plain lua_State
** ======================================================================= */

/* uv_loop() -> whether lasync_uv_loop(L) gives a loop now */
static int has_uv_loop(lua_State *L) {
  lua_pushboolean(L, lasync_uv_loop(L) != NULL);
  return 1;
}

/* interrupt(): Ctrl-C, as the terminal would send it */
static int interrupt(lua_State *L) {
  (void)L;
  uv_kill(uv_os_getpid(), SIGINT);
  return 0;
}

/* The hook set before the core is loaded is kept (the call loads it). */
static void test_warn_before_core(void) {
  capture cap = {{0}, 0};
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lasync_openlibs(L);
  lasync_set_warn(L, capture_warn, &cap);
  CHECK(luaL_loadstring(L, "local lasync = require 'lasync'\n"
                           "lasync.spawn(lasync.sleep, 1)\n") == LUA_OK);
  CHECK(lasync_run(L, 0) == LUA_OK);
  CHECK_STR(cap.text, "cancelling 1 pending task at exit");
  lua_close(L);
}

static void test_run_api(void) {
  capture cap = {{0}, 0};
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lasync_openlibs(L);
  lua_register(L, "uv_loop", has_uv_loop);
  lua_register(L, "interrupt", interrupt);
  CHECK(lasync_uv_loop(L) == NULL); /* no loop runs */
  /* the core alone, as require "lasync.core" loads it */
  luaL_requiref(L, "lasync.core", luaopen_lasync_core, 0);
  CHECK(lua_getfield(L, -1, "sleep") == LUA_TFUNCTION);
  lua_pop(L, 2);
  /* a main task: its results in place of the function and arguments */
  lua_pushliteral(L, "below");
  CHECK(luaL_loadstring(L, "local lasync = require 'lasync'\n"
                           "lasync.sleep(0.001)\n"
                           "return uv_loop(), select('#', ...), ...") ==
        LUA_OK);
  lua_pushinteger(L, 7);
  lua_pushnil(L);
  CHECK(lasync_run(L, 2) == LUA_OK);
  CHECK(lua_gettop(L) == 5);
  CHECK(lua_toboolean(L, 2) && lua_tointeger(L, 3) == 2);
  CHECK(lua_tointeger(L, 4) == 7 && lua_isnil(L, 5));
  CHECK(strcmp(lua_tostring(L, 1), "below") == 0);
  lua_settop(L, 0);
  CHECK(lasync_uv_loop(L) == NULL);
  /* a failure: the error value unchanged, and its traceback */
  CHECK(luaL_loadstring(L, "local lasync = require 'lasync'\n"
                           "lasync.sleep(0.001)\n"
                           "error({code = 42})") == LUA_OK);
  CHECK(lasync_run(L, 0) != LUA_OK);
  CHECK(lua_gettop(L) == 2);
  CHECK(lua_istable(L, 1));
  CHECK(lua_getfield(L, 1, "code") == LUA_TNUMBER && lua_tointeger(L, -1) == 42);
  lua_pop(L, 1);
  CHECK_STR(lua_tostring(L, 2), "stack traceback of task 'main'");
  CHECK(!lasync_is_interrupt(L, 1));
  lua_settop(L, 0);
  /* Ctrl-C cancels the main task: a KeyboardInterrupt; the leftover task
     is reported through the hook set on the plain state */
  lasync_set_warn(L, capture_warn, &cap);
  CHECK(luaL_loadstring(L, "local lasync = require 'lasync'\n"
                           "lasync.spawn({name = 'leftover'}, lasync.sleep, "
                           "10)\n"
                           "interrupt()\n"
                           "lasync.sleep(10)") == LUA_OK);
  CHECK(lasync_run(L, 0) != LUA_OK);
  CHECK(lasync_is_interrupt(L, -2));
  CHECK(cap.calls == 1);
  CHECK_STR(cap.text, "lasync: cancelling 1 pending task at exit: leftover");
  lua_settop(L, 0);
  lasync_set_warn(L, NULL, NULL);
  lua_close(L);
}

/* }====================================================================== */

int main(void) {
  test_new_own_loop();
  test_two_hosts();
  test_dostring_results();
  test_dofile();
  test_spawn();
  test_many_tasks();
  test_errors();
  test_release_checked();
  test_error_tostring_fails();
  test_spawn_not_callable();
  test_run_modes();
  test_destroy_cancels();
  test_destroy_awaits_cleanup();
  test_run_on_host_state();
  test_borrowed_loop();
  test_warn_hook();
  test_warn_not_stderr();
  test_warn_null();
  test_completions();
  test_uv_loop_completion();
  test_run_api();
  test_warn_before_core();
  printf("host: %d checks, %d failed\n", nchecks, nfailed);
  return nfailed == 0 ? 0 : 1;
}
