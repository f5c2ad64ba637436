/*
** interrupt.c — the default SIGINT of lasync.run (and of lasync_run, so
** of the lasync command): the first Ctrl-C cancels the main task, whose
** cleanup runs; what a second one does is the host's policy (a hook), by
** default asyncio's: the process ends by SIGINT. The script's own SIGINT
** watchers (lasync.signal, wait_signal, in io/signal.c) subscribe to this
** watcher meanwhile, and a Ctrl-C goes to them instead.
*/
#include <signal.h>
#include <stdlib.h>

#include "core/core.h"

/* {======================================================================
** SIGINT under lasync.run: one libuv handle, the default watcher's
** ======================================================================= */

/*
** libuv's signal handler (src/unix/signal.c, uv__signal_handler) writes
** one message into the loop's signal pipe for each handle started for the
** signal at the moment it arrives; the loop later calls the callback of
** each handle named in a message (uv__signal_event). A handle started
** between the arrival and the dispatch gets nothing, so a script that
** started watching SIGINT just after a Ctrl-C lost it to the default
** watcher, which had stepped back. Hence, while lasync.run's default
** watcher exists, the script's SIGINT watchers start no handle of their
** own: they subscribe to it, and interrupt_cb hands each SIGINT to those
** subscribed when the loop dispatches it, or interrupts the main task if
** there are none.
*/
struct lx_interrupt {
  uv_signal_t h;     /* freed (with the struct) in its close callback */
  lx_loop *loop;
  lx_task *main;     /* kept alive by lx_run_main while the loop runs */
  lx_resource subs;  /* sentinel: the subscribed watchers (lx_sigsub) */
  int waits;         /* subscribed wait_signal calls: while there are any,
                        h is referenced, as their own handles would be */
  unsigned gen;      /* dispatches so far (interrupt_deliver) */
};

/* Watch signum for sub: a subscription for SIGINT under lasync.run. */
int lx_sigsub_start(lx_loop *loop, lx_sigsub *sub, int signum) {
  lx_interrupt *in = loop->interrupt;
  if (signum != SIGINT || in == NULL)
    return uv_signal_start(sub->h, sub->cb, signum);
  sub->in = in;
  sub->gen = in->gen; /* subscribed during a dispatch: not given that one */
  lx_list_add(&in->subs, &sub->link);
  if (sub->wait && in->waits++ == 0) uv_ref((uv_handle_t *)&in->h);
  return 0;
}

/* End sub's subscription, if it has one. */
void lx_sigsub_unlink(lx_sigsub *sub) {
  lx_interrupt *in = sub->in;
  if (in == NULL) return;
  lx_list_remove(&sub->link);
  sub->in = NULL;
  if (sub->wait && --in->waits == 0) uv_unref((uv_handle_t *)&in->h);
}

/*
** Give one SIGINT to each watcher subscribed now, as libuv would have
** called its handle. A handler is only scheduled, but that allocates, so
** a finalizer may close any watcher meanwhile, and a finished wait
** leaves the list: never keep a pointer into it across a callback;
** mark, and look for the next unmarked one from the head again.
*/
static void interrupt_deliver(lx_interrupt *in, int signum) {
  unsigned gen = ++in->gen;
  for (;;) {
    lx_resource *r = in->subs.next;
    lx_sigsub *sub = NULL;
    for (; r != &in->subs; r = r->next) {
      lx_sigsub *x = lx_container_of(r, lx_sigsub, link);
      if (x->gen != gen) {
        sub = x;
        break;
      }
    }
    if (sub == NULL) return;
    sub->gen = gen;
    sub->cb(sub->h, signum);
  }
}

/* }====================================================================== */

/* {======================================================================
** The default SIGINT of lasync.run and the lasync command
** ======================================================================= */

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

/*
** A SIGINT: the script's watchers subscribed now get it; without any, it
** cancels the main task (a second one calls the hook). Watchers left on
** another loop of this runtime (one run with run_until_complete before)
** have handles of their own that got it too: then it steps back, as
** before.
*/
static void interrupt_cb(uv_signal_t *handle, int signum) {
  lx_interrupt *in = handle->data;
  lx_runtime *rt = in->loop->rt;
  lua_State *L = in->loop->L;
  if (in->subs.next != &in->subs) {
    interrupt_deliver(in, signum);
    return;
  }
  if (rt->sigint_users > 0) return; /* watched elsewhere */
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
  lx_count_handles(-1);
  free(handle->data);
}

/* Watch SIGINT while the main task runs on loop. */
void *lx_interrupt_start(lx_loop *loop, lx_task *main) {
  lx_interrupt *in = malloc(sizeof *in);
  if (in == NULL) return NULL;
  loop->rt->interrupted = 0;
  in->loop = loop;
  in->main = main;
  lx_list_init(&in->subs);
  in->waits = 0;
  in->gen = 0;
  uv_signal_init(loop->uv, &in->h);
  lx_count_handles(1);
  in->h.data = in;
  if (uv_signal_start(&in->h, interrupt_cb, SIGINT) < 0) {
    uv_close((uv_handle_t *)&in->h, interrupt_closed_cb);
    return NULL;
  }
  uv_unref((uv_handle_t *)&in->h);
  loop->interrupt = in;
  return in;
}

/*
** The run is over (only closing the loop is left): the watchers still
** subscribed go back to handles of their own, started before h stops so
** that SIGINT never falls back to SIG_DFL in between. Starting a SIGINT
** handle cannot fail once one is started (libuv only calls sigaction
** again when the first handle of a signal starts).
*/
void lx_interrupt_stop(void *p) {
  lx_interrupt *in = p;
  if (in == NULL) return;
  while (in->subs.next != &in->subs) {
    lx_sigsub *sub = lx_container_of(in->subs.next, lx_sigsub, link);
    lx_sigsub_unlink(sub);
    uv_signal_start(sub->h, sub->cb, SIGINT);
  }
  in->loop->interrupt = NULL;
  uv_close((uv_handle_t *)&in->h, interrupt_closed_cb);
}

/* }====================================================================== */
