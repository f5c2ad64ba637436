/*
** pg.c — the PostgreSQL connection of lasync.pg on libpq: a PGconn in
** non-blocking mode whose socket is watched by a uv_poll of the task that
** waits on it, and the decoding of result rows into Lua values. The
** protocol steps (connect, send, read the results) are driven by
** lua/lasync/pg.lua; this file only never blocks and converts.
*/
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db/db.h"

#define PG_CONN "lasync.pg.RawConnection"

typedef struct pg_wait pg_wait;
typedef struct pg_poll pg_poll;

/* A server notice (NOTICE, WARNING, an error out of a query: the FATAL
   of a terminated backend) kept for raw:notices: its fields, NUL
   separated, in the same allocation */
typedef struct pg_notice {
  struct pg_notice *next;
  char text[1];
} pg_notice;

/* the fields a notice keeps, in this order (raw:notices' keys) */
static const struct {
  int code;
  const char *key;
} notice_fields[] = {
  {PG_DIAG_SEVERITY_NONLOCALIZED, "severity"},
  {PG_DIAG_SQLSTATE, "sqlstate"},
  {PG_DIAG_MESSAGE_PRIMARY, "message"},
  {PG_DIAG_MESSAGE_DETAIL, "detail"},
  {PG_DIAG_MESSAGE_HINT, "hint"},
};
#define PG_NOTICE_FIELDS (sizeof notice_fields / sizeof notice_fields[0])

typedef struct pg_conn {
  PGconn *pg;       /* NULL once closed */
  pg_poll *poll;    /* the poll of the socket, made by the first wait */
  /* raw:read's results of the query being read, kept as libpq's until the
     query is complete so that only one of them is ever made a Lua table */
  PGresult *keep;   /* the last result with rows or a command tag */
  PGresult *err;    /* the first error */
  int copyout;      /* a COPY TO STDOUT's rows were dropped by raw:read */
  int nres;         /* results read so far for the query */
  int err_first;    /* the error was its first result (a failed prepare) */
  int fatal;        /* the server sent a FATAL or PANIC: it is going away */
  int log;          /* keep the server's notices for raw:notices */
  pg_notice *notices, **notices_end; /* kept notices, oldest first */
} pg_conn;

/*
** The poll of a connection's socket, kept from its first wait to its
** close: making a uv_poll per wait cost an ioctl and three epoll_ctl
** calls each time (uv_poll_start and uv_poll_stop each remove the
** descriptor from epoll). It stays started between waits, with the
** events last asked for, and only stops when it fires with nobody
** waiting (or fails); unreferenced while nobody waits, so that an idle
** connection does not keep the loop running. C memory in the loop's
** resources (closing the loop closes it), freed by its close callback.
*/
struct pg_poll {
  lx_resource node;
  uv_poll_t h;
  pg_conn *conn;    /* NULL once detached from the connection */
  pg_wait *wait;    /* the waiting task's wait, or NULL */
  int fd;
  int events;       /* what it polls for; 0 when stopped */
};

/*
** One wait for the socket by a task: C memory owned by the task's
** continuation (or freed by whoever ends it when nobody waits any more).
*/
struct pg_wait {
  lx_op op;
  pg_poll *poll;    /* while waiting, else NULL */
  int idle;         /* a wait for notifications: another wait ends it */
};

/* a wait's status when another one took its place (libuv's are <= 0) */
#define PG_PREEMPTED 1

/* {======================================================================
** Waiting for the socket
** ======================================================================= */

static void poll_closed_cb(uv_handle_t *handle) {
  lx_count_handles(-1);
  free(lx_container_of((uv_poll_t *)handle, pg_poll, h));
}

/* End the wait of p, if any, with status st for its task. */
static void poll_end_wait(pg_poll *p, int st) {
  pg_wait *w = p->wait;
  if (w == NULL) return;
  p->wait = NULL;
  w->poll = NULL;
  uv_unref((uv_handle_t *)&p->h);
  if (lx_op_finish(&w->op, st)) free(w);
}

/* Close p (its task, if any, fails as on a closed socket). */
static void poll_close(pg_poll *p) {
  lx_list_remove(&p->node);
  if (p->conn && p->conn->poll == p) p->conn->poll = NULL;
  p->conn = NULL;
  poll_end_wait(p, UV_ECANCELED);
  uv_close((uv_handle_t *)&p->h, poll_closed_cb); /* stops it */
}

static void poll_close_resource(lua_State *L, lx_resource *r) {
  (void)L;
  poll_close(lx_container_of(r, pg_poll, node));
}

static void poll_cb(uv_poll_t *handle, int status, int events) {
  pg_poll *p = lx_container_of(handle, pg_poll, h);
  (void)events;
  if (p->wait == NULL || status < 0) {
    uv_poll_stop(handle);
    p->events = 0;
  }
  poll_end_wait(p, status);
}

/* The task was cancelled while it waited: the poll goes on (poll_cb
   stops it if the socket becomes ready with nobody waiting). */
static void wait_abort(lx_op *op) {
  pg_wait *w = (pg_wait *)op;
  pg_poll *p = w->poll;
  if (p) {
    p->wait = NULL;
    uv_unref((uv_handle_t *)&p->h);
  }
  free(w);
}

static void wait_dispose(lx_op *op) {
  free(op); /* completed: its poll let go of it already */
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  pg_wait *w = (pg_wait *)lx_op_resumed(t);
  int st;
  (void)status;
  if (w == NULL) return lx_task_raise_cancelled(L, t); /* abort freed it */
  st = w->op.status;
  free(w);
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  /* UV_EBADF is how libuv reports POLLERR (the server reset the link):
     the socket is ready for libpq to read that and say what happened */
  if (st < 0 && st != UV_EBADF)
    return lx_os_error(L, st, "pg", "the server's socket");
  lua_pushboolean(L, st != PG_PREEMPTED);
  return 1;
}

/* The raw connection at 1; errors name the method called (lx_fname). */
static pg_conn *conn_check(lua_State *L, const char *fname) {
  pg_conn *c = luaL_testudata(L, 1, PG_CONN);
  if (c == NULL)
    luaL_error(L, "%s: expected a raw connection (got %s)",
               lx_fname(L, fname), luaL_typename(L, 1));
  return c;
}

static pg_conn *conn_open(lua_State *L, const char *fname) {
  pg_conn *c = conn_check(L, fname);
  if (c->pg == NULL)
    luaL_error(L, "%s: the connection is closed", lx_fname(L, fname));
  return c;
}

PGconn *lx_pg_check(lua_State *L, const char *fname) {
  return conn_open(L, fname)->pg;
}

/*
** raw:wait(readable, writable[, idle]) -> true | false: await the socket;
** one waiter at a time, as libuv polls a descriptor once. An idle wait
** (the task reading notifications while no query runs) gives way to
** any other: it returns false, the others true.
*/
static int conn_wait(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  pg_conn *c = conn_open(L, "wait");
  lx_task *t = lx_current_task(L, rt, "pg");
  int events = (lua_toboolean(L, 2) ? UV_READABLE : 0) |
               (lua_toboolean(L, 3) ? UV_WRITABLE : 0);
  int fd = PQsocket(c->pg), r;
  pg_poll *p = c->poll;
  pg_wait *w;
  if (fd < 0) return luaL_error(L, "lasync.pg: the connection has no socket");
  if (p && p->wait && p->wait->idle) poll_end_wait(p, PG_PREEMPTED);
  if (p && p->wait) return luaL_error(L, "lasync.pg: two tasks wait on one "
                                         "connection");
  /* libpq may open another socket while it connects (the next host) */
  if (p && (p->fd != fd || p->h.loop != t->fut.loop->uv)) {
    poll_close(p);
    p = NULL;
  }
  w = malloc(sizeof *w);
  if (w == NULL) return luaL_error(L, "lasync.pg: out of memory");
  if (p == NULL) {
    p = malloc(sizeof *p);
    if (p == NULL) {
      free(w);
      return luaL_error(L, "lasync.pg: out of memory");
    }
    r = uv_poll_init(t->fut.loop->uv, &p->h, fd);
    if (r < 0) {
      free(p);
      free(w);
      return lx_os_error(L, r, "pg", "the server's socket");
    }
    lx_count_handles(1);
    uv_unref((uv_handle_t *)&p->h);
    p->node.close = poll_close_resource;
    lx_list_add(&t->fut.loop->resources, &p->node);
    p->conn = c;
    p->wait = NULL;
    p->fd = fd;
    p->events = 0;
    c->poll = p;
  }
  if (p->events != events) {
    r = uv_poll_start(&p->h, events, poll_cb);
    if (r < 0) {
      free(w);
      poll_close(p);
      return lx_os_error(L, r, "pg", "the server's socket");
    }
    p->events = events;
  }
  w->op.abort = wait_abort;
  w->op.dispose = wait_dispose;
  w->idle = lua_toboolean(L, 4);
  w->poll = p;
  p->wait = w;
  uv_ref((uv_handle_t *)&p->h);
  return lx_op_await(L, t, &w->op, wait_k);
}

/* }====================================================================== */

/* {======================================================================
** Connecting and closing
** ======================================================================= */

static void notices_free(pg_conn *c) {
  while (c->notices) {
    pg_notice *n = c->notices;
    c->notices = n->next;
    free(n);
  }
  c->notices_end = &c->notices;
}

/*
** libpq's notice receiver (its default prints on stderr): a FATAL or
** PANIC marks the connection as going away (raw:status says "bad"); the
** notice is kept for raw:notices while the Lua side wants them (log
** listeners), else dropped. Runs inside libpq's calls: no Lua here.
*/
static void notice_receiver(void *arg, const PGresult *r) {
  pg_conn *c = arg;
  const char *f[PG_NOTICE_FIELDS];
  size_t len[PG_NOTICE_FIELDS], total = 0, i;
  pg_notice *n;
  char *p;
  for (i = 0; i < PG_NOTICE_FIELDS; i++) {
    f[i] = PQresultErrorField(r, notice_fields[i].code);
    len[i] = f[i] ? strlen(f[i]) : 0;
    total += len[i] + 1;
  }
  if (f[0] && (strcmp(f[0], "FATAL") == 0 || strcmp(f[0], "PANIC") == 0))
    c->fatal = 1;
  if (!c->log) return;
  n = malloc(sizeof *n + total);
  if (n == NULL) return; /* a notice is not worth failing a query for */
  n->next = NULL;
  for (p = n->text, i = 0; i < PG_NOTICE_FIELDS; i++) {
    if (len[i]) memcpy(p, f[i], len[i]);
    p[len[i]] = '\0';
    p += len[i] + 1;
  }
  *c->notices_end = n;
  c->notices_end = &n->next;
}

/* Close the connection and its poll (its task fails as on a closed
   socket). */
static void conn_finish(pg_conn *c) {
  if (c->poll) poll_close(c->poll); /* before libpq closes the socket */
  if (c->keep) PQclear(c->keep);
  if (c->err) PQclear(c->err);
  c->keep = c->err = NULL;
  if (c->pg) PQfinish(c->pg);
  c->pg = NULL;
  notices_free(c);
}

static int conn__gc(lua_State *L) {
  conn_finish(conn_check(L, "__gc"));
  return 0;
}

static int conn_close(lua_State *L) {
  conn_finish(conn_check(L, "close"));
  return 0;
}

#define PG_MAX_KEYWORDS 64

/*
** _pg.start(conninfo | {keyword = value}) -> raw connection: libpq's
** PQconnectStart, which only parses and opens the socket. pg.connect
** checks the arguments first, with its own name in the errors.
*/
static int pg_start(lua_State *L) {
  pg_conn *c;
  PGconn *pg;
  size_t len;
  if (lua_type(L, 1) == LUA_TTABLE) {
    const char *keys[PG_MAX_KEYWORDS + 1], *values[PG_MAX_KEYWORDS + 1];
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      const char *k, *v;
      size_t klen;
      if (lua_type(L, -2) != LUA_TSTRING || n == PG_MAX_KEYWORDS ||
          (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
        return luaL_error(L, "%s: bad option (string keys and string or "
                             "number values, at most %d)",
                          lx_fname(L, NULL), PG_MAX_KEYWORDS);
      k = lua_tolstring(L, -2, &klen);
      v = lua_tolstring(L, -1, &len); /* a number becomes a string */
      if (strlen(k) != klen || strlen(v) != len)
        return luaL_error(L, "%s: an option contains a NUL byte",
                          lx_fname(L, NULL));
      keys[n] = k;
      values[n] = v;
      n++;
      lua_pop(L, 1);
    }
    keys[n] = values[n] = NULL;
    c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, PG_CONN);
    pg = PQconnectStartParams(keys, values, 0);
  } else {
    const char *dsn = lua_type(L, 1) == LUA_TSTRING
                          ? lua_tolstring(L, 1, &len) : NULL;
    if (dsn == NULL || strlen(dsn) != len)
      return luaL_error(L, "%s: the dsn must be a string without NUL bytes "
                           "or a table", lx_fname(L, NULL));
    c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, PG_CONN);
    pg = PQconnectStart(dsn);
  }
  if (pg == NULL)
    return luaL_error(L, "%s: out of memory", lx_fname(L, NULL));
  c->pg = pg;
  c->notices_end = &c->notices;
  PQsetNoticeReceiver(pg, notice_receiver, c);
  if (PQstatus(pg) == CONNECTION_BAD) {
    lua_pushnil(L);
    lua_pushstring(L, PQerrorMessage(pg));
    conn_finish(c);
    return 2;
  }
  PQsetnonblocking(pg, 1);
  return 1;
}

/* raw:connect_poll() -> "read" | "write" | "ok" | nil, message */
static int conn_connect_poll(lua_State *L) {
  pg_conn *c = conn_open(L, "connect");
  switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING: lua_pushliteral(L, "read"); return 1;
    case PGRES_POLLING_WRITING: lua_pushliteral(L, "write"); return 1;
    case PGRES_POLLING_OK: lua_pushliteral(L, "ok"); return 1;
    default:
      lua_pushnil(L);
      lua_pushstring(L, PQerrorMessage(c->pg));
      return 2;
  }
}

/* raw:error_message() -> libpq's last message about the connection */
static int conn_error_message(lua_State *L) {
  pg_conn *c = conn_check(L, "error_message");
  lua_pushstring(L, c->pg ? PQerrorMessage(c->pg) : "connection closed");
  return 1;
}

/* raw:status() -> "ok" | "bad" | "closed" */
static int conn_status(lua_State *L) {
  pg_conn *c = conn_check(L, "status");
  if (c->pg == NULL) lua_pushliteral(L, "closed");
  else if (PQstatus(c->pg) == CONNECTION_OK && !c->fatal)
    lua_pushliteral(L, "ok");
  else lua_pushliteral(L, "bad");
  return 1;
}

/* raw:transaction_status() -> "idle" | "active" | "intrans" | "inerror"
   | "unknown" */
static int conn_transaction_status(lua_State *L) {
  static const char *const names[] = {"idle", "active", "intrans",
                                      "inerror", "unknown"};
  pg_conn *c = conn_open(L, "transaction_status");
  PGTransactionStatusType s = PQtransactionStatus(c->pg);
  lua_pushstring(L, names[(int)s <= 4 ? (int)s : 4]);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Sending a query and reading its results
** ======================================================================= */

#define PG_MAX_PARAMS 65535

#define PG_FEW_PARAMS 16 /* as many as fit in arrays on the C stack */

/* room for an integer parameter's text: 20 digits, a sign, a NUL */
#define PG_INT_TEXT 22

/* The text of integer v written at the end of buf (PG_INT_TEXT bytes):
   its start, and its length in *len. */
static const char *int_text(lua_Integer v, char *buf, int *len) {
  char *p = buf + PG_INT_TEXT - 1;
  lua_Unsigned u = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v;
  *p = '\0';
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  *len = (int)(buf + PG_INT_TEXT - 1 - p);
  return p;
}

/*
** The n parameters at idx (strings, integers, false: NULL) and their
** formats at idx + 1 (true: binary) as libpq's arrays: the few arrays
** given, else userdata pushed on the stack. The strings stay referenced
** by the params table while libpq copies them; integers (pg.lua leaves
** them to C: Lua's tostring costs a formatted print) are written into
** ints, PG_INT_TEXT bytes per parameter (the few given, else a userdata).
*/
static void params_collect(lua_State *L, lua_Integer n, int idx,
                           const char ***values, int **lengths,
                           int **formats, char *ints) {
  lua_Integer i;
  if (n > PG_MAX_PARAMS)
    luaL_error(L, "%s: too many parameters", lx_fname(L, NULL));
  if (n > PG_FEW_PARAMS) {
    *values = lua_newuserdatauv(L, (size_t)n * sizeof **values, 0);
    *lengths = lua_newuserdatauv(L, (size_t)n * sizeof **lengths, 0);
    *formats = lua_newuserdatauv(L, (size_t)n * sizeof **formats, 0);
    ints = lua_newuserdatauv(L, (size_t)n * PG_INT_TEXT, 0);
  }
  for (i = 0; i < n; i++) {
    size_t len = 0;
    int t = lua_geti(L, idx, i + 1);
    if (t == LUA_TSTRING) {
      (*values)[i] = lua_tolstring(L, -1, &len);
      (*lengths)[i] = (int)len;
    } else if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
      (*values)[i] = int_text(lua_tointeger(L, -1), ints + i * PG_INT_TEXT,
                              &(*lengths)[i]);
    } else {
      (*values)[i] = NULL;
      (*lengths)[i] = 0;
    }
    lua_pop(L, 1);
    lua_geti(L, idx + 1, i + 1);
    (*formats)[i] = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
}

static int conn_fail(lua_State *L, pg_conn *c) {
  lua_pushnil(L);
  lua_pushstring(L, PQerrorMessage(c->pg));
  return 2;
}

/*
** raw:send(sql, n, params, formats[, name]) -> flushed: PQsendQueryParams
** (or PQsendQueryPrepared with a name) with n parameters already encoded
** as strings or integers (false: NULL) by pg.lua; formats[i] true sends
** the i-th as binary (bytea). Returns true when everything went out,
** false when the caller must wait for the socket to be writable and call
** flush.
*/
static int conn_send(lua_State *L) {
  pg_conn *c = conn_open(L, "execute");
  const char *sql = lua_tostring(L, 2); /* checked by pg.lua */
  lua_Integer n = lua_tointeger(L, 3);
  const char *few_values[PG_FEW_PARAMS], **values = few_values;
  int few_lengths[PG_FEW_PARAMS], *lengths = few_lengths;
  int few_formats[PG_FEW_PARAMS], *formats = few_formats, ok;
  char ints[PG_FEW_PARAMS * PG_INT_TEXT];
  if (sql == NULL || !lua_istable(L, 4) || !lua_istable(L, 5) || n < 0)
    return luaL_error(L, "%s: expected a query, a count and two tables",
                      lx_fname(L, NULL));
  params_collect(L, n, 4, &values, &lengths, &formats, ints);
  if (lua_type(L, 6) == LUA_TSTRING)
    ok = PQsendQueryPrepared(c->pg, lua_tostring(L, 6), (int)n, values,
                             lengths, formats, 0);
  else
    ok = PQsendQueryParams(c->pg, sql, (int)n, NULL, values, lengths,
                           formats, 0);
  if (!ok) return conn_fail(L, c);
  lua_pushboolean(L, PQflush(c->pg) == 0);
  return 1;
}

/*
** raw:pipe(sql, n, params, formats, name, prepare) -> flushed | nil, msg:
** one query of the pipeline, in libpq's pipeline mode (entered here when
** the connection is idle), closed by a sync of its own so that its error
** aborts nothing queued after it. With a name: PQsendQueryPrepared,
** preceded by PQsendPrepare(name, sql) when prepare is true (the prepare
** and the first run share a round trip); n < 0 only prepares. Without a
** name: PQsendQueryParams. PQpipelineSync flushes what it can.
*/
static int conn_pipe(lua_State *L) {
  pg_conn *c = conn_open(L, "execute");
  const char *sql = lua_tostring(L, 2), *name = lua_tostring(L, 6);
  lua_Integer n = lua_tointeger(L, 3);
  const char *few_values[PG_FEW_PARAMS], **values = few_values;
  int few_lengths[PG_FEW_PARAMS], *lengths = few_lengths;
  int few_formats[PG_FEW_PARAMS], *formats = few_formats, ok = 1;
  char ints[PG_FEW_PARAMS * PG_INT_TEXT];
  if (sql == NULL || !lua_istable(L, 4) || !lua_istable(L, 5) ||
      (n < 0 && name == NULL))
    return luaL_error(L, "%s: expected a query, a count and two tables",
                      lx_fname(L, NULL));
  params_collect(L, n, 4, &values, &lengths, &formats, ints);
  if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF &&
      !PQenterPipelineMode(c->pg))
    return conn_fail(L, c);
  if (name && lua_toboolean(L, 7))
    ok = PQsendPrepare(c->pg, name, sql, 0, NULL);
  if (ok && n >= 0)
    ok = name ? PQsendQueryPrepared(c->pg, name, (int)n, values, lengths,
                                    formats, 0)
              : PQsendQueryParams(c->pg, sql, (int)n, NULL, values, lengths,
                                  formats, 0);
  if (!ok || !PQpipelineSync(c->pg)) return conn_fail(L, c);
  lua_pushboolean(L, PQflush(c->pg) == 0);
  return 1;
}

/*
** raw:simple(sql) -> flushed | nil, msg: PQsendQuery, the simple
** protocol (several statements in one string), out of pipeline mode,
** which the caller made sure holds no query.
*/
static int conn_simple(lua_State *L) {
  pg_conn *c = conn_open(L, "execute");
  const char *sql = lua_tostring(L, 2);
  if (sql == NULL)
    return luaL_error(L, "%s: expected a query", lx_fname(L, NULL));
  if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF &&
      !PQexitPipelineMode(c->pg))
    return conn_fail(L, c);
  if (!PQsendQuery(c->pg, sql)) return conn_fail(L, c);
  lua_pushboolean(L, PQflush(c->pg) == 0);
  return 1;
}

/*
** raw:pipeline(on) -> true | nil, msg: enter or leave libpq's pipeline
** mode; leaving needs every queued result read.
*/
static int conn_pipeline(lua_State *L) {
  pg_conn *c = conn_open(L, "pipeline");
  int on = lua_toboolean(L, 2);
  int cur = PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF;
  if (on != cur && !(on ? PQenterPipelineMode(c->pg)
                        : PQexitPipelineMode(c->pg)))
    return conn_fail(L, c);
  lua_pushboolean(L, 1);
  return 1;
}

/* raw:send_prepare(name, sql) -> flushed | nil, message */
static int conn_send_prepare(lua_State *L) {
  pg_conn *c = conn_open(L, "prepare");
  const char *name = lua_tostring(L, 2), *sql = lua_tostring(L, 3);
  if (name == NULL || sql == NULL)
    return luaL_error(L, "%s: expected a name and a query",
                      lx_fname(L, NULL));
  if (!PQsendPrepare(c->pg, name, sql, 0, NULL)) {
    lua_pushnil(L);
    lua_pushstring(L, PQerrorMessage(c->pg));
    return 2;
  }
  lua_pushboolean(L, PQflush(c->pg) == 0);
  return 1;
}

/* raw:flush() -> true when all is sent | false | nil, message */
static int conn_flush(lua_State *L) {
  pg_conn *c = conn_open(L, "flush");
  int r = PQflush(c->pg);
  if (r < 0) {
    lua_pushnil(L);
    lua_pushstring(L, PQerrorMessage(c->pg));
    return 2;
  }
  lua_pushboolean(L, r == 0);
  return 1;
}

/* raw:consume() -> busy (a result is not complete yet) | nil, message */
static int conn_consume(lua_State *L) {
  pg_conn *c = conn_open(L, "consume");
  if (!PQconsumeInput(c->pg)) {
    lua_pushnil(L);
    lua_pushstring(L, PQerrorMessage(c->pg));
    return 2;
  }
  lua_pushboolean(L, PQisBusy(c->pg));
  return 1;
}

/*
** raw:notifies() -> {{channel =, payload =, pid =}, ...} | nil: the
** notifications (LISTEN/NOTIFY) libpq has read so far, taken from it.
*/
static int conn_notifies(lua_State *L) {
  pg_conn *c = conn_open(L, "notifies");
  PGnotify *n;
  int i = 0;
  while ((n = PQnotifies(c->pg)) != NULL) {
    if (i == 0) lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, n->relname);
    lua_setfield(L, -2, "channel");
    lua_pushstring(L, n->extra);
    lua_setfield(L, -2, "payload");
    lua_pushinteger(L, n->be_pid);
    lua_setfield(L, -2, "pid");
    lua_rawseti(L, -2, ++i);
    PQfreemem(n);
  }
  return i > 0;
}

/*
** raw:log_notices(on): keep the server's notices for raw:notices (the
** connection has log listeners) or drop them (the default); turning it
** off drops those kept.
*/
static int conn_log_notices(lua_State *L) {
  pg_conn *c = conn_open(L, "log_notices");
  c->log = lua_toboolean(L, 2);
  if (!c->log) notices_free(c);
  return 0;
}

/*
** raw:notices() -> {{severity =, sqlstate =, message =, detail =,
** hint =}, ...} | nil: the notices kept so far (raw:log_notices), taken
** from the connection; absent fields are absent.
*/
static int conn_notices(lua_State *L) {
  pg_conn *c = conn_open(L, "notices");
  int i = 0;
  if (c->notices == NULL) return 0;
  lua_newtable(L);
  while (c->notices) {
    pg_notice *n = c->notices;
    const char *p = n->text;
    size_t k;
    lua_createtable(L, 0, PG_NOTICE_FIELDS);
    for (k = 0; k < PG_NOTICE_FIELDS; k++) {
      size_t len = strlen(p);
      if (len) {
        lua_pushlstring(L, p, len);
        lua_setfield(L, -2, notice_fields[k].key);
      }
      p += len + 1;
    }
    lua_rawseti(L, -2, ++i);
    c->notices = n->next;
    free(n);
  }
  c->notices_end = &c->notices;
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Results (their values are decoded by pg_types.c)
** ======================================================================= */

static void push_field_string(lua_State *L, const PGresult *r, int code,
                              const char *key) {
  const char *s = PQresultErrorField(r, code);
  if (s == NULL) return;
  lua_pushstring(L, s);
  lua_setfield(L, -2, key);
}

/* raw:read's and raw:result's positional argument: false (rows by
   column name), true (positional rows) or PG_VALUE (the first column of
   the first row alone, as the result's value: fetchval, which then needs
   no table for the rows, the row, the names or the types) */
static int row_mode(lua_State *L, int idx) {
  if (lua_isinteger(L, idx)) return (int)lua_tointeger(L, idx) == PG_VALUE
                                        ? PG_VALUE : 1;
  return lua_toboolean(L, idx);
}

/*
** Push result r as a table:
**   {status = "rows" | "command" | "error" | "empty" | "copy", tag =,
**    count =, names = {...}, types = {oid...}, rows = {...}} (with
**   positional PG_VALUE: value = the first row's first value instead of
**   names, types and rows) and for an error sqlstate, message, detail,
**   hint, position.
** pg.null is at stack index 2 and the JSON decoder at 3 (push_value).
** Returns LUA_OK: the status of the decoding, for the caller to free
** what it holds before raising an error that it left on the stack.
*/
static int push_result(lua_State *L, PGresult *r, int positional) {
  int ncols, j, st;
  const char *tag;
  lua_createtable(L, 0, 6);
  switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK: case PGRES_SINGLE_TUPLE:
      lua_pushliteral(L, "rows"); break;
    case PGRES_COMMAND_OK: lua_pushliteral(L, "command"); break;
    case PGRES_EMPTY_QUERY: lua_pushliteral(L, "empty"); break;
    case PGRES_COPY_IN: case PGRES_COPY_OUT: case PGRES_COPY_BOTH:
      lua_pushliteral(L, "copy"); break;
    case PGRES_PIPELINE_SYNC: lua_pushliteral(L, "sync"); break;
    case PGRES_PIPELINE_ABORTED: lua_pushliteral(L, "aborted"); break;
    default: {
      const char *pos;
      lua_pushliteral(L, "error");
      lua_setfield(L, -2, "status");
      push_field_string(L, r, PG_DIAG_SQLSTATE, "sqlstate");
      push_field_string(L, r, PG_DIAG_MESSAGE_PRIMARY, "message");
      push_field_string(L, r, PG_DIAG_MESSAGE_DETAIL, "detail");
      push_field_string(L, r, PG_DIAG_MESSAGE_HINT, "hint");
      push_field_string(L, r, PG_DIAG_SEVERITY_NONLOCALIZED, "severity");
      /* the server's function: not translated, unlike the message */
      push_field_string(L, r, PG_DIAG_SOURCE_FUNCTION, "routine");
      pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
      if (pos) {
        lua_pushinteger(L, atoi(pos));
        lua_setfield(L, -2, "position");
      }
      lua_getfield(L, -1, "message");
      if (lua_isnil(L, -1)) {
        lua_pushstring(L, PQresultErrorMessage(r));
        lua_setfield(L, -3, "message");
      }
      lua_pop(L, 1);
      return LUA_OK;
    }
  }
  lua_setfield(L, -2, "status");
  tag = PQcmdStatus(r);
  lua_pushstring(L, tag ? tag : "");
  lua_setfield(L, -2, "tag");
  tag = PQcmdTuples(r);
  if (tag && *tag) {
    lua_pushinteger(L, (lua_Integer)strtoll(tag, NULL, 10));
    lua_setfield(L, -2, "count");
  }
  if (positional == PG_VALUE) { /* fetchval: the value alone, as "value" */
    st = lx_pg_push_rows(L, r, 2, 3, PG_VALUE, -1);
    if (st != LUA_OK) return st; /* the callers free r and raise */
    lua_setfield(L, -2, "value");
    return LUA_OK;
  }
  ncols = PQnfields(r);
  lua_createtable(L, ncols, 0);
  lua_createtable(L, ncols, 0);
  for (j = 0; j < ncols; j++) {
    lua_pushstring(L, PQfname(r, j));
    lua_rawseti(L, -3, j + 1);
    lua_pushinteger(L, (lua_Integer)PQftype(r, j));
    lua_rawseti(L, -2, j + 1);
  }
  lua_setfield(L, -3, "types");
  /* names at -1, result at -2 */
  st = lx_pg_push_rows(L, r, 2, 3, positional, -1);
  if (st != LUA_OK) return st; /* the callers free r and raise */
  lua_setfield(L, -3, "rows");
  lua_setfield(L, -2, "names");
  return LUA_OK;
}

/*
** raw:result(null, json_decode, positional) -> the next result of the
** query as a table (push_result), or nil when the query is done.
** Call only when raw:consume() said not busy.
*/
static int conn_result(lua_State *L) {
  pg_conn *c = conn_open(L, "result");
  PGresult *r = PQgetResult(c->pg);
  int st;
  if (r == NULL) return 0;
  st = push_result(L, r, row_mode(L, 4));
  PQclear(r);
  return st == LUA_OK ? 1 : lua_error(L);
}

/*
** A COPY met by raw:read (a COPY sent through execute, or a cancelled
** COPY being drained): COPY FROM STDIN is ended with an error message, so
** the server answers with an error; the rows of a COPY TO STDOUT are
** dropped. Returns 0 when the socket must be waited for.
*/
static int read_copy(pg_conn *c, PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  PQclear(r);
  if (st == PGRES_COPY_IN)
    return PQputCopyEnd(c->pg, "lasync.pg: COPY runs through the copy "
                               "functions") >= 0;
  for (;;) {
    char *buf;
    int n = PQgetCopyData(c->pg, &buf, 1);
    if (n > 0) PQfreemem(buf);
    else if (n == 0) return 0;
    else break; /* done (-1) or failed (-2): PQgetResult says which */
  }
  c->copyout = 1;
  return 1;
}

/*
** raw:read's nil, message when libpq lost the connection: a FATAL error
** the query read first (its backend was terminated) says why, which
** libpq's message does not in pipeline mode.
*/
static int read_fail(lua_State *L, pg_conn *c) {
  const char *msg = PQerrorMessage(c->pg);
  if (c->err && c->fatal) {
    const char *why = PQresultErrorField(c->err, PG_DIAG_MESSAGE_PRIMARY);
    if (why && strstr(msg, why) == NULL) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", why, msg);
      return 2;
    }
  }
  return conn_fail(L, c);
}

/* Whether r is an error the session ends with (FATAL or PANIC). */
static int fatal_result(const PGresult *r) {
  const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  return sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

/*
** raw:read(null, json_decode, positional, consume) -> true, result | false,
** writable | nil, message: read the query at the head of the connection
** to its end (its pipeline sync in pipeline mode, else PQgetResult's
** NULL) and return its last result, or its first error, as a table
** (push_result; nil when the query had none; an error that was the
** query's first result has first = true: a prepare that failed). false:
** the socket must be waited for (writable too when output is still
** queued), then call again with consume true. The results stay
** libpq's until the end, so that decoding happens once. A value the
** decoder refuses (a json text lasync.json does not take) gives true,
** nil, its error: the query was read to its end all the same.
*/
static int conn_read(lua_State *L) {
  pg_conn *c = conn_open(L, "read");
  int nulls = 0, st = LUA_OK;
  if (lua_toboolean(L, 5) && !PQconsumeInput(c->pg)) return read_fail(L, c);
  for (;;) {
    int flushed = PQflush(c->pg);
    PGresult *r;
    if (flushed < 0) return read_fail(L, c);
    if (PQisBusy(c->pg)) {
      lua_pushboolean(L, 0);
      lua_pushboolean(L, flushed == 1);
      return 2;
    }
    r = PQgetResult(c->pg);
    if (r == NULL) {
      /* in pipeline mode a NULL ends one query of the segment, its sync
         follows; two in a row: nothing is queued at all */
      if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF || ++nulls > 1) break;
      continue;
    }
    nulls = 0;
    switch (PQresultStatus(r)) {
      case PGRES_PIPELINE_SYNC:
        PQclear(r);
        goto done;
      case PGRES_PIPELINE_ABORTED:
        PQclear(r);
        break;
      case PGRES_COPY_IN: case PGRES_COPY_OUT: case PGRES_COPY_BOTH:
        if (!read_copy(c, r)) {
          lua_pushboolean(L, 0);
          lua_pushboolean(L, 0);
          return 2;
        }
        break;
      case PGRES_BAD_RESPONSE: case PGRES_NONFATAL_ERROR:
      case PGRES_FATAL_ERROR:
        if (fatal_result(r)) c->fatal = 1; /* the server goes away */
        if (c->err) {
          PQclear(r);
        } else {
          c->err = r;
          c->err_first = c->nres == 0;
        }
        c->nres++;
        break;
      default:
        if (c->keep) PQclear(c->keep);
        c->keep = r;
        c->nres++;
    }
  }
done:
  lua_pushboolean(L, 1);
  if (c->err) {
    st = push_result(L, c->err, 0);
    if (c->err_first) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "first");
    }
  } else if (c->copyout) {
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "error");
    lua_setfield(L, -2, "status");
    lua_pushliteral(L, "COPY TO STDOUT runs through the copy functions");
    lua_setfield(L, -2, "message");
  } else if (c->keep) {
    st = push_result(L, c->keep, row_mode(L, 4));
  } else {
    lua_pushnil(L);
  }
  if (c->keep) PQclear(c->keep);
  if (c->err) PQclear(c->err);
  c->keep = c->err = NULL;
  c->copyout = c->nres = c->err_first = 0;
  if (st != LUA_OK) { /* a value the decoder refused: the query is read */
    lua_pushboolean(L, 1);
    lua_pushnil(L);
    lua_pushvalue(L, -3); /* the error */
    return 3;
  }
  return 2;
}

/* }====================================================================== */

/* {======================================================================
** Cancelling a running query
** ======================================================================= */

typedef struct pg_cancel {
  lx_op op;
  uv_work_t req;
  lx_pooled pooled; /* in the loop's list while on the pool */
  PGcancel *key;
  char msg[256];
} pg_cancel;

static void cancel_free(pg_cancel *k) {
  PQfreeCancel(k->key);
  free(k);
}

/* Nothing stops a running PQcancel: its callback frees it (op.c). */
static void cancel_abort(lx_op *op) {
  (void)op;
}

static void cancel_dispose(lx_op *op) {
  cancel_free((pg_cancel *)op);
}

static void cancel_work_cb(uv_work_t *req) {
  pg_cancel *k = lx_container_of(req, pg_cancel, req);
  k->msg[0] = '\0';
  if (!PQcancel(k->key, k->msg, sizeof k->msg) && k->msg[0] == '\0')
    strcpy(k->msg, "the cancel request failed");
}

static void cancel_after_cb(uv_work_t *req, int status) {
  pg_cancel *k = lx_container_of(req, pg_cancel, req);
  lx_list_remove(&k->pooled.node);
  if (lx_op_finish(&k->op, status)) cancel_free(k);
}

static int cancel_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  pg_cancel *k = (pg_cancel *)lx_op_resumed(t);
  (void)status;
  if (k == NULL) return lx_task_raise_cancelled(L, t); /* its callback
                                                           frees it */
  if (t->must_cancel) {
    cancel_free(k);
    return lx_task_raise_cancelled(L, t);
  }
  if (k->msg[0]) {
    lua_pushnil(L);
    lua_pushstring(L, k->msg);
    cancel_free(k);
    return 2;
  }
  cancel_free(k);
  lua_pushboolean(L, 1);
  return 1;
}

/*
** raw:cancel() -> true | nil, message: asks the server to cancel the
** running query. libpq 15's PQcancel blocks (it connects anew), so it
** runs on libuv's thread pool; the non-blocking cancel API is libpq 17's.
*/
static int conn_cancel(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  pg_conn *c = conn_open(L, "cancel");
  lx_task *t = lx_current_task(L, rt, "pg");
  pg_cancel *k = malloc(sizeof *k);
  int r;
  if (k == NULL) return luaL_error(L, "lasync.pg: out of memory");
  k->key = PQgetCancel(c->pg);
  if (k->key == NULL) {
    free(k);
    lua_pushnil(L);
    lua_pushliteral(L, "the connection cannot be cancelled");
    return 2;
  }
  k->op.abort = cancel_abort;
  k->op.dispose = cancel_dispose;
  r = uv_queue_work(t->fut.loop->uv, &k->req, cancel_work_cb,
                    cancel_after_cb);
  if (r < 0) {
    cancel_free(k);
    return lx_os_error(L, r, "pg", "the cancel request");
  }
  lx_pooled_add(t->fut.loop, &k->pooled, (const uv_req_t *)&k->req);
  return lx_op_await(L, t, &k->op, cancel_k);
}

/* }====================================================================== */

void lx_open_pg(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"wait", conn_wait},
    {"connect_poll", conn_connect_poll},
    {"error_message", conn_error_message},
    {"status", conn_status},
    {"transaction_status", conn_transaction_status},
    {"send", conn_send},
    {"send_prepare", conn_send_prepare},
    {"pipe", conn_pipe},
    {"simple", conn_simple},
    {"pipeline", conn_pipeline},
    {"read", conn_read},
    {"notifies", conn_notifies},
    {"log_notices", conn_log_notices},
    {"notices", conn_notices},
    {"flush", conn_flush},
    {"consume", conn_consume},
    {"result", conn_result},
    {"cancel", conn_cancel},
    {"close", conn_close},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", conn__gc},
    {"__close", conn_close},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"start", pg_start},
    {NULL, NULL}
  };
  const luaL_Reg *r;
  luaL_newmetatable(L, PG_CONN);
  lx_setfuncs(L, meta);
  lua_newtable(L);
  lx_setfuncs(L, methods);
  lx_pg_copy_methods(L); /* pg_copy.c */
  for (r = methods; r->name; r++) { /* public names, for the errors */
    lua_getfield(L, -1, r->name);
    lx_name_function(L, -1, PG_CONN ":", r->name);
    lua_pop(L, 1);
  }
  lua_setfield(L, -2, "__index");
  for (r = meta; r->name; r++) {
    lua_getfield(L, -1, r->name);
    lx_name_function(L, -1, PG_CONN ":", r->name);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lx_setfuncs(L, funcs);
  lua_pushinteger(L, PQlibVersion());
  lua_setfield(L, -2, "libpq_version");
  lx_pg_push_types(L);
  lua_setfield(L, -2, "types");
  lua_setfield(L, -2, "_pg");
}
