/*
** interrupt.c — the default SIGINT of lasync.run (and of lasync_run, so
** of the lasync command): the first Ctrl-C cancels the main task, whose
** cleanup runs; what a second one does is the host's policy (a hook), by
** default asyncio's: the process ends by SIGINT. A script that watches
** SIGINT itself (lasync.signal, wait_signal) takes it over meanwhile.
*/
#include <signal.h>
#include <stdlib.h>

#include "core/core.h"

typedef struct lx_interrupt {
  uv_signal_t h;
  lx_loop *loop;
  lx_task *main; /* kept alive by lx_run_main while the loop runs */
} lx_interrupt;

/*
** Without a hook, as asyncio.Runner does: the second Ctrl-C is not caught
** again. Python raises KeyboardInterrupt at once, and a process that does
** not catch it ends by SIGINT; here the default disposition comes back and
** the signal is raised again, so the process ends by SIGINT at once (a
** libuv callback cannot raise a Lua error).
*/
static void interrupt_again_default(void) {
  signal(SIGINT, SIG_DFL);
  raise(SIGINT);
}

static void (*interrupt_again)(void) = interrupt_again_default;

/*
** What a second Ctrl-C does, for the whole process (the lasync command
** prints a line and exits with 130); NULL restores the default above. The
** hook runs in a libuv callback and must not return into Lua: it ends the
** process.
*/
void lx_set_interrupt_again(void (*fn)(void)) {
  interrupt_again = fn ? fn : interrupt_again_default;
}

static void interrupt_cb(uv_signal_t *handle, int signum) {
  lx_interrupt *in = handle->data;
  lx_runtime *rt = in->loop->rt;
  lua_State *L = in->loop->L;
  (void)signum;
  if (rt->sigint_users > 0) return; /* the script watches SIGINT itself */
  if (++rt->interrupted > 1 || L == NULL) {
    interrupt_again();
    return;
  }
  if (in->main->fut.state != LX_PENDING) return; /* leftovers: let them */
  lx_push_anchored(L, rt, in->main->ref);
  lua_pushliteral(L, "interrupted (SIGINT)");
  lx_task_cancel(L, -2, lua_gettop(L));
  lua_pop(L, 2);
}

static void interrupt_closed_cb(uv_handle_t *handle) {
  free(handle->data);
}

/* Watch SIGINT while the main task runs on loop. */
void *lx_interrupt_start(lx_loop *loop, lx_task *main) {
  lx_interrupt *in = malloc(sizeof *in);
  if (in == NULL) return NULL;
  loop->rt->interrupted = 0;
  in->loop = loop;
  in->main = main;
  uv_signal_init(loop->uv, &in->h);
  in->h.data = in;
  if (uv_signal_start(&in->h, interrupt_cb, SIGINT) < 0) {
    uv_close((uv_handle_t *)&in->h, interrupt_closed_cb);
    return NULL;
  }
  uv_unref((uv_handle_t *)&in->h);
  return in;
}

void lx_interrupt_stop(void *p) {
  lx_interrupt *in = p;
  if (in) uv_close((uv_handle_t *)&in->h, interrupt_closed_cb);
}
