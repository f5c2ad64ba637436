/*
** queue.c — Queue, LifoQueue and PriorityQueue with asyncio's semantics:
** FIFO getters and putters, task_done/join, shutdown([immediate]). The
** items live in a Lua table (a ring buffer, a stack or a binary heap);
** waiting tasks use their own waiter nodes, so get and put allocate
** nothing once the table has grown.
*/
#include "sync/sync.h"

enum { KIND_FIFO, KIND_LIFO, KIND_PRIORITY };

/* User values: the items; for a PriorityQueue also priorities and the
   insertion numbers that keep equal priorities in FIFO order. */
enum { QUEUE_ITEMS = 1, QUEUE_PRIOS, QUEUE_SEQS, QUEUE_NUV = QUEUE_SEQS };

typedef struct lx_queue {
  lx_waiter getters, putters, joiners; /* waiting tasks, FIFO */
  lua_Integer maxsize;    /* 0: unbounded */
  lua_Integer unfinished; /* items put and not yet task_done() */
  lua_Integer head, count, cap; /* FIFO ring: slots 1..cap, first at head+1;
                                   stack and heap: slots 1..count */
  lua_Integer seq;        /* PriorityQueue: items put so far */
  lua_Integer nnumbers, nstrings; /* PriorityQueue: the priorities of each
                                     type in it (the two do not compare) */
  int kind, shutdown;
} lx_queue;

static const int kind_class[] = {LX_MT_QUEUE, LX_MT_LIFO, LX_MT_PRIORITY};
static const char *const kind_name[] = {"Queue", "LifoQueue",
                                        "PriorityQueue"};

/* Function names for errors, by kind: awaiting must not format them. */
static const char *const put_name[] = {"Queue:put", "LifoQueue:put",
                                       "PriorityQueue:put"};
static const char *const get_name[] = {"Queue:get", "LifoQueue:get",
                                       "PriorityQueue:get"};
static const char *const join_name[] = {"Queue:join", "LifoQueue:join",
                                        "PriorityQueue:join"};

static lx_queue *check_queue(lua_State *L, const char *method) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  if (lx_classof(L, rt, 1, LX_MT_QUEUE, 3) < 0) {
    const char *got = lx_typename(L, 1); /* before a push moves 1 */
    luaL_error(L, "%s: expected a Queue, LifoQueue or PriorityQueue "
                  "(got %s)",
               lx_fname(L, lua_pushfstring(L, "Queue:%s", method)), got);
  }
  return lua_touserdata(L, 1);
}

static int is_full(const lx_queue *q) {
  return q->maxsize > 0 && q->count >= q->maxsize;
}

static int raise_class(lua_State *L, int cls) {
  lx_error_new(L, cls, NULL);
  return lua_error(L);
}

/* {======================================================================
** Storage: ring buffer, stack, heap
** ======================================================================= */

/* FIFO: double the ring, keeping the order (the table at tidx). */
static void ring_grow(lua_State *L, lx_queue *q, int qidx, int tidx) {
  lua_Integer i, cap = q->cap ? q->cap * 2 : 8;
  if (q->maxsize > 0 && cap > q->maxsize) cap = q->maxsize;
  lua_createtable(L, (int)cap, 0);
  for (i = 0; i < q->count; i++) {
    lua_rawgeti(L, tidx, (q->head + i) % q->cap + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_copy(L, -1, tidx);
  lua_setiuservalue(L, qidx, QUEUE_ITEMS);
  q->head = 0;
  q->cap = cap;
}

/* Heap order: smaller priority first, then earlier insertion. */
static int heap_before(lua_State *L, int prios, int seqs, lua_Integer a,
                       lua_Integer b) {
  int lt, gt;
  lua_Integer sa, sb;
  lua_rawgeti(L, prios, a);
  lua_rawgeti(L, prios, b);
  lt = lua_compare(L, -2, -1, LUA_OPLT);
  gt = !lt && lua_compare(L, -1, -2, LUA_OPLT);
  lua_pop(L, 2);
  if (lt || gt) return lt;
  lua_rawgeti(L, seqs, a);
  lua_rawgeti(L, seqs, b);
  sa = lua_tointeger(L, -2);
  sb = lua_tointeger(L, -1);
  lua_pop(L, 2);
  return sa < sb;
}

/* Move entry `from` of the three heap tables to slot `to`. */
static void heap_move(lua_State *L, int items, lua_Integer from,
                      lua_Integer to) {
  int t;
  for (t = items; t < items + 3; t++) {
    lua_rawgeti(L, t, from);
    lua_rawseti(L, t, to);
  }
}

static void heap_swap(lua_State *L, int items, lua_Integer a, lua_Integer b) {
  int t;
  for (t = items; t < items + 3; t++) {
    lua_rawgeti(L, t, a);
    lua_rawgeti(L, t, b);
    lua_rawseti(L, t, a);
    lua_rawseti(L, t, b);
  }
}

static void heap_sift_down(lua_State *L, int items, lua_Integer n) {
  lua_Integer i = 1;
  for (;;) {
    lua_Integer c = 2 * i;
    if (c > n) break;
    if (c + 1 <= n && heap_before(L, items + 1, items + 2, c + 1, c)) c++;
    if (!heap_before(L, items + 1, items + 2, c, i)) break;
    heap_swap(L, items, i, c);
    i = c;
  }
}

/* [-0, +3] push the items, priorities and insertion-number tables */
static int push_heap(lua_State *L, int qidx) {
  lua_getiuservalue(L, qidx, QUEUE_ITEMS);
  lua_getiuservalue(L, qidx, QUEUE_PRIOS);
  lua_getiuservalue(L, qidx, QUEUE_SEQS);
  return lua_gettop(L) - 2;
}

/*
** Store the item at vidx (priority queue: priority at vidx, item after).
** A priority that does not compare with the others raises here, before
** anything changes.
*/
static void store(lua_State *L, lx_queue *q, int qidx, int vidx) {
  int top = lua_gettop(L), items;
  if (q->kind == KIND_PRIORITY) {
    lua_Integer i = q->count + 1, j;
    luaL_checkstack(L, 8, NULL); /* the others fit in LUA_MINSTACK */
    items = push_heap(L, qidx);
    while (i > 1) { /* find its place first: a failing compare changes
                       nothing (equal priorities stay behind: FIFO) */
      int before;
      lua_rawgeti(L, items + 1, i / 2);
      before = lua_compare(L, vidx, -1, LUA_OPLT);
      lua_pop(L, 1);
      if (!before) break;
      i /= 2;
    }
    for (j = q->count + 1; j > i; j /= 2) heap_move(L, items, j / 2, j);
    q->count++;
    lua_pushvalue(L, vidx + 1);
    lua_rawseti(L, items, i);
    lua_pushvalue(L, vidx);
    lua_rawseti(L, items + 1, i);
    if (lua_type(L, vidx) == LUA_TNUMBER) q->nnumbers++;
    else if (lua_type(L, vidx) == LUA_TSTRING) q->nstrings++;
    lua_pushinteger(L, ++q->seq);
    lua_rawseti(L, items + 2, i);
  } else {
    lua_getiuservalue(L, qidx, QUEUE_ITEMS);
    items = lua_gettop(L);
    if (q->kind == KIND_LIFO) {
      lua_pushvalue(L, vidx);
      lua_rawseti(L, items, ++q->count);
    } else {
      if (q->count == q->cap) ring_grow(L, q, qidx, items);
      lua_pushvalue(L, vidx);
      lua_rawseti(L, items, (q->head + q->count) % q->cap + 1);
      q->count++;
    }
  }
  lua_settop(L, top);
}

/* [-0, +n] take the next item out; push it (priority queue: priority and
   item); return how many values were pushed */
static int take(lua_State *L, lx_queue *q, int qidx) {
  int items, t;
  if (q->kind == KIND_PRIORITY) {
    lua_Integer n = q->count--;
    luaL_checkstack(L, 8, NULL); /* the others fit in LUA_MINSTACK */
    items = push_heap(L, qidx);
    lua_rawgeti(L, items + 1, 1); /* results: priority, item */
    if (lua_type(L, -1) == LUA_TNUMBER) q->nnumbers--;
    else if (lua_type(L, -1) == LUA_TSTRING) q->nstrings--;
    lua_rawgeti(L, items, 1);
    if (n > 1) {
      heap_move(L, items, n, 1);
      heap_sift_down(L, items, n - 1);
    }
    for (t = items; t < items + 3; t++) { /* slot n is free now */
      lua_pushnil(L);
      lua_rawseti(L, t, n);
    }
    lua_rotate(L, items, 2);
    lua_settop(L, items + 1);
    return 2;
  }
  lua_getiuservalue(L, qidx, QUEUE_ITEMS);
  items = lua_gettop(L);
  if (q->kind == KIND_LIFO) {
    lua_rawgeti(L, items, q->count);
    lua_pushnil(L);
    lua_rawseti(L, items, q->count--);
  } else {
    lua_rawgeti(L, items, q->head + 1);
    lua_pushnil(L);
    lua_rawseti(L, items, q->head + 1);
    q->head = (q->head + 1) % q->cap;
    q->count--;
  }
  lua_remove(L, items);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** put and get
** ======================================================================= */

/*
** The priority at idx must compare with those in the queue: a number
** among numbers, a string among strings (Lua's < raises between the two,
** and between other types), or a value whose __lt decides. Checked before
** put waits and again when it stores, as the queue may have changed.
*/
static void check_priority(lua_State *L, lx_queue *q, int idx,
                           const char *method) {
  int t = lua_type(L, idx);
  if (t == LUA_TNUMBER || t == LUA_TSTRING) {
    int number = t == LUA_TNUMBER;
    if (number ? q->nstrings > 0 : q->nnumbers > 0)
      luaL_error(L, "lasync.PriorityQueue:%s: a %s priority does not "
                    "compare with the %s priorities in the queue", method,
                 number ? "number" : "string", number ? "string" : "number");
  } else if ((t == LUA_TTABLE || t == LUA_TUSERDATA) &&
             luaL_getmetafield(L, idx, "__lt") != LUA_TNIL) {
    lua_pop(L, 1); /* the __lt */
  } else {
    luaL_error(L, "lasync.PriorityQueue:%s: priority must be a number, a "
                  "string or a value with __lt (got %s)", method,
               lx_typename(L, idx));
  }
}

/* Check put's arguments (from index 2) before anything waits. */
static void check_item(lua_State *L, lx_queue *q, const char *method) {
  if (q->kind == KIND_PRIORITY) {
    lua_settop(L, 3);
    if (lua_isnil(L, 2))
      luaL_error(L, "lasync.PriorityQueue:%s: priority is nil", method);
    if (lua_type(L, 2) == LUA_TNUMBER &&
        lua_tonumber(L, 2) != lua_tonumber(L, 2))
      luaL_error(L, "lasync.PriorityQueue:%s: priority is NaN", method);
    check_priority(L, q, 2, method);
  } else {
    lua_settop(L, 2);
    if (lua_isnil(L, 2))
      luaL_error(L, "lasync.%s:%s: item is nil (nil would end iteration; "
                    "wrap it, e.g. in a table)", kind_name[q->kind], method);
  }
}

/* Store the item (args from index 2), count it, wake the first getter. */
static void put_now(lua_State *L, lx_queue *q) {
  store(L, q, 1, 2);
  q->unfinished++;
  lx_waitlist_wake_first(&q->getters);
}

static int store_protected(lua_State *L) {
  lx_queue *q = lua_touserdata(L, 1);
  check_priority(L, q, 2, "put");
  store(L, q, 1, 2);
  return 0;
}

/*
** put_now for a woken putter: if its priority does not compare, the room
** it was woken for goes to the next putter before the error is raised.
*/
static void put_now_woken(lua_State *L, lx_queue *q) {
  if (q->kind == KIND_PRIORITY) {
    lua_pushcfunction(L, store_protected);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
      lx_waitlist_wake_first(&q->putters);
      lua_error(L);
    }
    q->unfinished++;
    lx_waitlist_wake_first(&q->getters);
  } else {
    put_now(L, q);
  }
}

/* q:put_nowait(item) / pq:put_nowait(priority, item) */
static int queue_put_nowait(lua_State *L) {
  lx_queue *q = check_queue(L, "put_nowait");
  check_item(L, q, "put_nowait");
  if (q->shutdown) return raise_class(L, LX_ERR_QUEUE_SHUTDOWN);
  if (is_full(q)) return raise_class(L, LX_ERR_QUEUE_FULL);
  put_now(L, q);
  return 0;
}

static int put_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_queue *q = lua_touserdata(L, 1);
  (void)status;
  if (t->must_cancel) { /* woken, then cancelled: the room is not */
    if (t->granted && !is_full(q)) /* used, so pass the turn on */
      lx_waitlist_wake_first(&q->putters);
    return lx_task_raise_cancelled(L, t);
  }
  if (q->shutdown) return raise_class(L, LX_ERR_QUEUE_SHUTDOWN);
  if (is_full(q)) /* the room was taken before it ran: wait again */
    return lx_wait_on(L, t, &q->putters, put_k);
  put_now_woken(L, q);
  return 0;
}

/* q:put(item) / pq:put(priority, item): waits while the queue is full */
static int queue_put(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_queue *q = check_queue(L, "put");
  lx_task *t = lx_current_task(L, rt, put_name[q->kind]);
  check_item(L, q, "put");
  if (q->shutdown) return raise_class(L, LX_ERR_QUEUE_SHUTDOWN);
  if (!is_full(q)) {
    put_now(L, q);
    return 0;
  }
  return lx_wait_on(L, t, &q->putters, put_k);
}

/* Take the next item (pushed) and make room for the first putter. */
static int get_now(lua_State *L, lx_queue *q) {
  int n = take(L, q, 1);
  lx_waitlist_wake_first(&q->putters);
  return n;
}

/* q:get_nowait() -> item (PriorityQueue: priority, item) */
static int queue_get_nowait(lua_State *L) {
  lx_queue *q = check_queue(L, "get_nowait");
  lua_settop(L, 1);
  if (q->count == 0)
    return raise_class(L, q->shutdown ? LX_ERR_QUEUE_SHUTDOWN
                                      : LX_ERR_QUEUE_EMPTY);
  return get_now(L, q);
}

static int get_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_queue *q = lua_touserdata(L, 1);
  (void)status;
  if (t->must_cancel) { /* woken, then cancelled: leave the item to */
    if (t->granted && q->count > 0) /* the next getter */
      lx_waitlist_wake_first(&q->getters);
    return lx_task_raise_cancelled(L, t);
  }
  if (q->count > 0) return get_now(L, q);
  if (q->shutdown) return raise_class(L, LX_ERR_QUEUE_SHUTDOWN);
  return lx_wait_on(L, t, &q->getters, get_k); /* taken by get_nowait */
}

/* q:get() -> item (PriorityQueue: priority, item); waits while empty */
static int queue_get(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_queue *q = check_queue(L, "get");
  lx_task *t = lx_current_task(L, rt, get_name[q->kind]);
  lua_settop(L, 1);
  if (q->count > 0) return get_now(L, q);
  if (q->shutdown) return raise_class(L, LX_ERR_QUEUE_SHUTDOWN);
  return lx_wait_on(L, t, &q->getters, get_k);
}

/* }====================================================================== */

/* {======================================================================
** task_done, join, shutdown and the rest
** ======================================================================= */

/* q:task_done(): one item taken earlier is fully processed */
static int queue_task_done(lua_State *L) {
  lx_queue *q = check_queue(L, "task_done");
  if (q->unfinished <= 0)
    return luaL_error(L, "lasync.%s:task_done: called more times than "
                         "there were items put", kind_name[q->kind]);
  if (--q->unfinished == 0) lx_waitlist_wake_all(&q->joiners);
  return 0;
}

/* q:join(): wait until every item put has been marked task_done() */
static int queue_join(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_queue *q = check_queue(L, "join");
  lx_task *t = lx_current_task(L, rt, join_name[q->kind]);
  lua_settop(L, 1);
  if (q->unfinished == 0) return 0;
  return lx_wait_on(L, t, &q->joiners, lx_wait_k);
}

/*
** q:shutdown([immediate]): put raises QueueShutDown from now on; get drains
** what is left, then raises it. With immediate, the items are dropped (and
** count as done for join). Every waiting getter and putter wakes to check.
*/
static int queue_shutdown(lua_State *L) {
  lx_queue *q = check_queue(L, "shutdown");
  q->shutdown = 1;
  if (lua_toboolean(L, 2)) {
    lua_settop(L, 1);
    while (q->count > 0) {
      lua_settop(L, 1);
      take(L, q, 1);
      if (q->unfinished > 0) q->unfinished--;
    }
    lua_settop(L, 1);
    if (q->unfinished == 0) lx_waitlist_wake_all(&q->joiners);
  }
  lx_waitlist_wake_all(&q->getters);
  lx_waitlist_wake_all(&q->putters);
  return 0;
}

static int queue_qsize(lua_State *L) {
  lua_pushinteger(L, check_queue(L, "qsize")->count);
  return 1;
}

static int queue_empty(lua_State *L) {
  lua_pushboolean(L, check_queue(L, "empty")->count == 0);
  return 1;
}

static int queue_full(lua_State *L) {
  lua_pushboolean(L, is_full(check_queue(L, "full")));
  return 1;
}

/* q:maxsize() -> the bound given at creation (0: unbounded) */
static int queue_maxsize(lua_State *L) {
  lua_pushinteger(L, check_queue(L, "maxsize")->maxsize);
  return 1;
}

static int queue_is_shutdown(lua_State *L) {
  lua_pushboolean(L, check_queue(L, "is_shutdown")->shutdown);
  return 1;
}

static int queue__tostring(lua_State *L) {
  lx_queue *q = check_queue(L, "__tostring");
  lua_pushfstring(L, "lasync.%s: %I item%s, maxsize %I, %d getter(s) and "
                     "%d putter(s) waiting%s", kind_name[q->kind], q->count,
                  q->count == 1 ? "" : "s", q->maxsize,
                  lx_waitlist_count(&q->getters),
                  lx_waitlist_count(&q->putters),
                  q->shutdown ? ", shut down" : "");
  return 1;
}

static int queue_new(lua_State *L, int kind) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lua_Integer maxsize = 0;
  lx_queue *q;
  int i, last;
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    maxsize = lua_tointegerx(L, 1, &isint);
    if (!isint)
      luaL_error(L, "lasync.%s: maxsize must be an integer (got %s)",
                 kind_name[kind], luaL_typename(L, 1));
    if (maxsize < 0)
      luaL_error(L, "lasync.%s: maxsize must be >= 0 (got %I)",
                 kind_name[kind], maxsize);
  }
  q = lua_newuserdatauv(L, sizeof *q, QUEUE_NUV);
  lx_waitlist_init(&q->getters);
  lx_waitlist_init(&q->putters);
  lx_waitlist_init(&q->joiners);
  q->maxsize = maxsize;
  q->unfinished = q->head = q->count = q->cap = q->seq = 0;
  q->nnumbers = q->nstrings = 0;
  q->kind = kind;
  q->shutdown = 0;
  last = kind == KIND_PRIORITY ? QUEUE_SEQS : QUEUE_ITEMS;
  for (i = QUEUE_ITEMS; i <= last; i++) {
    lua_newtable(L);
    lua_setiuservalue(L, -2, i);
  }
  lx_setclass(L, rt, kind_class[kind]);
  return 1;
}

/* lasync.Queue([maxsize]), lasync.LifoQueue([maxsize]),
   lasync.PriorityQueue([maxsize]); maxsize 0 or nil: unbounded */
static int core_queue(lua_State *L) {
  return queue_new(L, KIND_FIFO);
}

static int core_lifo_queue(lua_State *L) {
  return queue_new(L, KIND_LIFO);
}

static int core_priority_queue(lua_State *L) {
  return queue_new(L, KIND_PRIORITY);
}

/* }====================================================================== */

void lx_open_queue(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"put", queue_put},
    {"get", queue_get},
    {"put_nowait", queue_put_nowait},
    {"get_nowait", queue_get_nowait},
    {"task_done", queue_task_done},
    {"join", queue_join},
    {"shutdown", queue_shutdown},
    {"qsize", queue_qsize},
    {"empty", queue_empty},
    {"full", queue_full},
    {"maxsize", queue_maxsize},
    {"is_shutdown", queue_is_shutdown},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__tostring", queue__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"Queue", core_queue},
    {"LifoQueue", core_lifo_queue},
    {"PriorityQueue", core_priority_queue},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_QUEUE, "lasync.Queue", methods, meta);
  lx_newclass(L, LX_MT_LIFO, "lasync.LifoQueue", methods, meta);
  lx_newclass(L, LX_MT_PRIORITY, "lasync.PriorityQueue", methods, meta);
  lx_setfuncs(L, funcs);
}
