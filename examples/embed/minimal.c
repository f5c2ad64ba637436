/*
** minimal.c — the smallest C application embedding lasync. A host is a Lua
** state with the standard libraries and lasync (the global `lasync`) on an
** event loop of its own. The application runs a script in it as a task,
** runs the loop until the task is done, and reads the task's results.
**
** usage: embed_minimal [script.lua]    (without one, a built-in chunk)
** build: cc minimal.c $(pkg-config --cflags --libs lasync)
*/
#include <stdio.h>

#include "lasync.h"
#include "lauxlib.h"

static const char chunk[] =
  "local t = lasync.spawn(function(delay)\n"
  "  lasync.sleep(delay)\n"
  "  return 'slept'\n"
  "end, 0.01)\n"
  "return 'hello embedder', t:await()\n";

int main(int argc, char **argv) {
  lasync_host *h = lasync_host_new(NULL); /* NULL: a loop of its own */
  lua_State *L;
  int task, nresults, i, status = 1;
  if (h == NULL) {
    fprintf(stderr, "minimal: out of memory\n");
    return 1;
  }
  L = lasync_host_state(h);
  task = argc > 1 ? lasync_host_dofile(h, argv[1])
                  : lasync_host_dostring(h, chunk, "=minimal");
  if (task == 0) { /* it did not load */
    fprintf(stderr, "minimal: %s\n", lasync_host_error(h));
    lasync_host_destroy(h);
    return 1;
  }
  if (lasync_host_run(h, UV_RUN_DEFAULT) < 0) /* until no task is pending */
    fprintf(stderr, "minimal: %s\n", lasync_host_error(h));
  switch (lasync_host_result(h, task, &nresults)) {
  case LASYNC_OK: /* the results are on L's stack */
    for (i = nresults; i > 0; i--) {
      printf("%s%s", luaL_tolstring(L, -i, NULL), i > 1 ? ", " : "\n");
      lua_pop(L, 1); /* the string luaL_tolstring pushed */
    }
    lua_pop(L, nresults);
    status = 0;
    break;
  case LASYNC_PENDING:
    fprintf(stderr, "minimal: the script is still waiting\n");
    break;
  default: /* LASYNC_ERROR, LASYNC_CANCELLED */
    fprintf(stderr, "minimal: %s\n", lasync_host_error(h));
  }
  lasync_host_release(h, task);
  lasync_host_destroy(h); /* cancels what is left, closes the loop */
  return status;
}
