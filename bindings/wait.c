/*
** wait.c — tasks waiting on a synchronisation primitive (lock, event,
** queue): a FIFO list of the tasks' own waiter nodes, so waiting allocates
** nothing. A woken task is `granted` what it waited for; if it is cancelled
** before it runs, the primitive's continuation passes the grant on.
*/
#include "internal.h"

void lx_waitlist_init(lx_waiter *list) {
  list->prev = list->next = list;
}

int lx_waitlist_empty(const lx_waiter *list) {
  return list->next == list;
}

int lx_waitlist_count(const lx_waiter *list) {
  const lx_waiter *w;
  int n = 0;
  for (w = list->next; w != list; w = w->next) n++;
  return n;
}

/* A waiting task is cancelled: leave the list and run, to raise. */
static int waitlist_cancel(lua_State *L, lx_task *t, int msgidx) {
  (void)L;
  (void)msgidx;
  if (t->waits_on == LX_ON_WAITER) { /* still waiting: not granted */
    lx_task_unwait(t);
    lx_ready_push(t->fut.loop, &t->ready);
  }
  return 0; /* it gets CancelledError when it runs */
}

/*
** Suspend the running task t at the end of `list` until a wake_* call (or
** a cancel) makes it run again; k continues the waiting C function (its
** context is t). The primitive stays at stack index 1 of that function.
*/
int lx_wait_on(lua_State *L, lx_task *t, lx_waiter *list, lua_KFunction k) {
  lx_waiter *w = &t->on.wait;
  w->next = list;
  w->prev = list->prev;
  list->prev->next = w;
  list->prev = w;
  t->waits_on = LX_ON_WAITER;
  t->granted = 0;
  return lx_suspend(L, t, waitlist_cancel, k);
}

/*
** In the continuation of a wait: finish the await bookkeeping and tell
** whether the task must now raise CancelledError (t->granted says whether
** it was woken first and holds something to pass on).
*/
int lx_wait_resumed(lx_task *t) {
  t->on_cancel = NULL;
  t->in_await = 0;
  return t->must_cancel;
}

/* Wake the first waiting task; it resumes granted. NULL if none waits. */
lx_task *lx_waitlist_wake_first(lx_waiter *list) {
  lx_task *t;
  if (list->next == list) return NULL;
  t = lx_container_of(list->next, lx_task, on.wait);
  lx_task_unwait(t);
  t->granted = 1;
  lx_ready_push(t->fut.loop, &t->ready);
  return t;
}

int lx_waitlist_wake_all(lx_waiter *list) {
  int n = 0;
  while (lx_waitlist_wake_first(list)) n++;
  return n;
}
