/*
** test_completion.c — C test of the thread-safe completion API: C threads
** settle futures that Lua tasks await (lasync_completion_new/send). Built
** twice by ctest: normally, and with ThreadSanitizer.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lasync.h"
#include "lauxlib.h"
#include "lualib.h"

#define NTHREADS 8
#define PER_THREAD 50

typedef struct work {
  lasync_completion *c;
  int input;
  int result; /* computed on the C thread */
} work;

/* On the loop thread: push the result (or fail for odd inputs % 7). */
static int push_result(lua_State *L, void *ud) {
  work *w = ud;
  int r = w->result, input = w->input;
  free(w);
  if (L == NULL) return 0;
  if (input % 7 == 0) return luaL_error(L, "input %d refused", input);
  lua_pushinteger(L, r);
  return 1;
}

typedef struct batch {
  work *items[PER_THREAD];
} batch;

static pthread_t threads[NTHREADS]; /* joined at the end, so that valgrind
                                       sees no thread still exiting */

static void *thread_main(void *arg) {
  batch *b = arg;
  int i;
  for (i = 0; i < PER_THREAD; i++) {
    struct timespec ts = {0, 100000}; /* 0.1 ms of "work" */
    nanosleep(&ts, NULL);
    b->items[i]->result = b->items[i]->input * 2;
    if (lasync_completion_send(b->items[i]->c, push_result, b->items[i]) < 0)
      abort();
  }
  free(b);
  return NULL;
}

/* start_work() -> a list of futures, settled by NTHREADS C threads */
static int start_work(lua_State *L) {
  int t, i, n = 0;
  lua_createtable(L, NTHREADS * PER_THREAD, 0);
  for (t = 0; t < NTHREADS; t++) {
    batch *b = malloc(sizeof *b);
    for (i = 0; i < PER_THREAD; i++) {
      work *w = malloc(sizeof *w);
      w->input = ++n;
      w->c = lasync_completion_new(L); /* pushes the future */
      lua_rawseti(L, -2, n);
      b->items[i] = w;
    }
    if (pthread_create(&threads[t], NULL, thread_main, b) != 0) abort();
  }
  return 1;
}

static const char script[] =
  "local lasync = require 'lasync'\n"
  "local futures = start_work()\n"
  "local results = lasync.gather(futures, {return_exceptions = true})\n"
  "local ok, failed = 0, 0\n"
  "for i = 1, results.n do\n"
  "  if i % 7 == 0 then\n"
  "    assert(tostring(results[i]):find('input ' .. i .. ' refused'))\n"
  "    failed = failed + 1\n"
  "  else\n"
  "    assert(results[i] == 2 * i, 'wrong result for ' .. i)\n"
  "    ok = ok + 1\n"
  "  end\n"
  "end\n"
  "return ok, failed\n";

int main(void) {
  lua_State *L = luaL_newstate();
  int status, t;
  luaL_openlibs(L);
  lasync_openlibs(L);
  lua_register(L, "start_work", start_work);
  if (luaL_loadstring(L, script) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  status = lasync_run(L, 0);
  if (status != LUA_OK) {
    fprintf(stderr, "error: %s\n%s\n", luaL_tolstring(L, -2, NULL),
            lua_isstring(L, -2) ? lua_tostring(L, -2) : "");
    return 1;
  }
  printf("completions: %d settled, %d failed as asked\n",
         (int)lua_tointeger(L, -2), (int)lua_tointeger(L, -1));
  lua_close(L);
  for (t = 0; t < NTHREADS; t++) pthread_join(threads[t], NULL);
  return 0;
}
