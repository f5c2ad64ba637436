/*
** op.c — a libuv request awaited by a task (connect, getaddrinfo, shutdown,
** fs). The request is C memory: while the task waits, the continuation
** owns it; if the task is cancelled first, ownership passes to the libuv
** callback, which will still run (luv's lreq.c does the same).
*/
#include "core/core.h"

/* The waiting task is cancelled: let go of the request and run. */
static int op_cancel(lua_State *L, lx_task *t, int msgidx) {
  lx_op *op = t->op;
  (void)L;
  (void)msgidx;
  if (op && !op->done) {
    op->task = NULL; /* the callback frees it now */
    t->op = NULL;
    if (op->abort) op->abort(op);
    lx_ready_push(t->fut.loop, &t->ready);
  }
  return 0;
}

/* Suspend the running task t until op's callback calls lx_op_finish. */
int lx_op_await(lua_State *L, lx_task *t, lx_op *op, lua_KFunction k) {
  op->task = t;
  op->done = 0;
  t->op = op;
  return lx_suspend(L, t, op_cancel, k);
}

/*
** From the request's callback: record the status and wake the task.
** Returns 1 if nobody waits any more: the caller frees the request.
*/
int lx_op_finish(lx_op *op, int status) {
  op->status = status;
  op->done = 1;
  if (op->task == NULL) return 1;
  lx_ready_push(op->task->fut.loop, &op->task->ready);
  return 0;
}

/*
** In the continuation: the request (the continuation frees it), or NULL
** if the task was cancelled before it completed. Check t->must_cancel.
*/
lx_op *lx_op_resumed(lx_task *t) {
  lx_op *op = t->op;
  t->op = NULL;
  if (op) op->task = NULL; /* nobody waits on it any more */
  t->on_cancel = NULL;
  t->in_await = 0;
  return op;
}

/* The task leaves for good (its loop closes): detach its request. */
void lx_op_detach(lx_task *t) {
  lx_op *op = t->op;
  if (op == NULL) return;
  t->op = NULL;
  if (!op->done) {
    op->task = NULL;
    if (op->abort) op->abort(op);
  }
}
