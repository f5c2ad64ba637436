/*
** op.c — a libuv request awaited by a task (connect, getaddrinfo, shutdown,
** fs). The request is C memory: while the task waits, the continuation
** owns it; if the task is cancelled first, ownership passes to the libuv
** callback, which will still run (luv's lreq.c does the same); if the task
** leaves for good after the request completed, op_forget frees it.
*/
#include "core/core.h"

/*
** The waiting task is cancelled, or leaves for good (its loop closes): let
** go of the request (its callback frees it now) and stop it. A request
** that completed already stays for the continuation to take and free.
*/
static int op_release(lx_task *t) {
  lx_op *op = t->on.op;
  if (op == NULL || op->done) return 0;
  op->task = NULL;
  t->on.op = NULL;
  if (op->abort) op->abort(op);
  return 1;
}

/*
** The waiting task leaves for good and will never run its continuation
** (its loop closes, or it is collected), but op_release found nothing to
** let go of: the request completed, and waits in t->on.op for the
** continuation, which is the only other owner. Dispose of it here, with
** what it holds (addresses, a descriptor, a stream, a signal handle).
** Without t->on.op, a cancel gave the request to its callback already.
*/
static void op_forget(lx_task *t) {
  lx_op *op = t->on.op;
  if (op == NULL) return;
  t->on.op = NULL;
  op->task = NULL;
  op->dispose(op);
}

static const lx_awaitable awaiting_op = {op_release, NULL, op_forget};

/* Suspend the running task t until op's callback calls lx_op_finish. */
int lx_op_await(lua_State *L, lx_task *t, lx_op *op, lua_KFunction k) {
  op->task = t;
  op->done = 0;
  t->on.op = op;
  return lx_suspend(L, t, &awaiting_op, k);
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
  lx_op *op = t->on.op;
  t->on.op = NULL;
  if (op) op->task = NULL; /* nobody waits on it any more */
  return op;
}
