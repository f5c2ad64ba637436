/*
** worker_thread.c — awaitable C functions: count_primes(n), registered in
** Lua, returns a future at once (lasync_completion_new) and queues the work
** for a C worker thread. The worker computes, then settles the future with
** lasync_completion_send, the one call that may come from any thread. The
** Lua values are built back on the loop's thread, in deliver(). Lua awaits
** several such futures with lasync.gather while a Lua ticker task keeps
** running: the loop is never blocked by the work.
**
** usage: embed_worker_thread
** build: cc worker_thread.c $(pkg-config --cflags --libs lasync)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lasync.h"
#include "lauxlib.h"

/* {======================================================================
** The worker: a thread taking jobs from a queue
** ======================================================================= */

typedef struct job {
  struct job *next;
  lasync_completion *c; /* what settles the future Lua awaits */
  long n;               /* count the primes below n */
  long result;          /* -1: n was too small */
} job;

static uv_thread_t worker;
static uv_mutex_t mutex;
static uv_cond_t cond;
static job *queue_head, *queue_tail;
static int stopping;

static long count_below(long n) {
  char *composite;
  long i, j, count = 0;
  if (n < 2) return -1;
  composite = calloc((size_t)n, 1);
  if (composite == NULL) return -1;
  for (i = 2; i < n; i++) {
    if (composite[i]) continue;
    count++;
    for (j = i * i; j < n; j += i) composite[j] = 1;
  }
  free(composite);
  return count;
}

/* On the loop's thread: turn the job's result into Lua values. */
static int deliver(lua_State *L, void *ud) {
  job *j = ud;
  long n = j->n, result = j->result;
  free(j);
  if (L == NULL) return 0; /* the loop closed first: only free */
  if (result < 0) /* the error fails the future */
    return luaL_error(L, "count_primes: %d is too small", (int)n);
  lua_pushinteger(L, result);
  return 1;
}

static void worker_main(void *arg) {
  (void)arg;
  for (;;) {
    job *j;
    uv_mutex_lock(&mutex);
    while (queue_head == NULL && !stopping) uv_cond_wait(&cond, &mutex);
    j = queue_head;
    if (j && (queue_head = j->next) == NULL) queue_tail = NULL;
    uv_mutex_unlock(&mutex);
    if (j == NULL) return; /* stopping, and the queue is empty */
    uv_sleep(20); /* stands for a blocking call: a device, a database... */
    j->result = count_below(j->n);
    if (lasync_completion_send(j->c, deliver, j) < 0) abort();
  }
}

static void worker_start(void) {
  uv_mutex_init(&mutex);
  uv_cond_init(&cond);
  uv_thread_create(&worker, worker_main, NULL);
}

static void worker_stop(void) {
  uv_mutex_lock(&mutex);
  stopping = 1;
  uv_cond_signal(&cond);
  uv_mutex_unlock(&mutex);
  uv_thread_join(&worker);
  uv_cond_destroy(&cond);
  uv_mutex_destroy(&mutex);
}

/* }====================================================================== */

/* count_primes(n) -> a future of the number of primes below n */
static int count_primes(lua_State *L) {
  job *j = calloc(1, sizeof *j);
  if (j == NULL) return luaL_error(L, "count_primes: out of memory");
  j->n = (long)luaL_checkinteger(L, 1);
  j->c = lasync_completion_new(L); /* pushes the future; returned below */
  uv_mutex_lock(&mutex);
  if (queue_tail) queue_tail->next = j;
  else queue_head = j;
  queue_tail = j;
  uv_cond_signal(&cond);
  uv_mutex_unlock(&mutex);
  return 1;
}

static const char script[] =
  "local ticks = 0\n"
  "local ticker = lasync.spawn(function()\n"
  "  while true do lasync.sleep(0.001) ticks = ticks + 1 end\n"
  "end)\n"
  "local limits = {100000, 200000, 300000, 1}\n"
  "local futures = {}\n"
  "for i, n in ipairs(limits) do futures[i] = count_primes(n) end\n"
  "local results = lasync.gather(futures, {return_exceptions = true})\n"
  "ticker:cancel()\n"
  "for i, n in ipairs(limits) do\n"
  "  if type(results[i]) ~= 'number' then   -- the error\n"
  "    print(('count_primes(%d) failed: %s'):format(n, results[i]))\n"
  "  else\n"
  "    print(('primes below %d: %d'):format(n, results[i]))\n"
  "  end\n"
  "end\n"
  "return ticks\n";

int main(void) {
  lasync_host *h = lasync_host_new(NULL);
  lua_State *L;
  int task, n, status = 1;
  if (h == NULL) return 1;
  L = lasync_host_state(h);
  worker_start();
  lua_register(L, "count_primes", count_primes);
  task = lasync_host_dostring(h, script, "=worker_thread");
  /* the futures are outstanding while the worker computes: the run waits
     for them (no deadlock), and the Lua ticker runs meanwhile */
  if (task && lasync_host_run(h, UV_RUN_DEFAULT) == 0 &&
      lasync_host_result(h, task, &n) == LASYNC_OK) {
    int ticks = (int)lua_tointeger(L, -1);
    lua_pop(L, n);
    printf("4 futures settled by a C worker thread; the Lua ticker %s\n",
           ticks >= 3 ? "kept ticking meanwhile" : "was starved");
    status = 0;
  } else {
    fprintf(stderr, "worker_thread: %s\n", lasync_host_error(h));
  }
  if (task) lasync_host_release(h, task);
  worker_stop(); /* all jobs were delivered: the futures were awaited */
  lasync_host_destroy(h);
  return status;
}
