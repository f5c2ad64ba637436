/*
** connect.c — lasync.open_connection (TCP) and lasync.open_unix_connection:
** resolve the host, connect to each address in turn until one answers, and
** return the stream's reader and writer. A cancel closes the socket being
** connected; the connect callback still runs and frees its request.
*/
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

typedef struct connect_op {
  lx_op op;
  uv_connect_t req;
  lx_stream *s; /* the socket being connected */
} connect_op;

/*
** What open_connection keeps across its awaits, in a userdata at stack
** index CONN_STATE: the addresses left to try and the last error.
*/
typedef struct conn_state {
  struct sockaddr_storage addrs[16];
  int naddrs, next, last_err;
  int nodelay, keepalive;   /* keepalive: seconds, 0 for off */
  size_t limit;
  struct sockaddr_storage local;
  int has_local;
} conn_state;

enum { CONN_HOST = 1, CONN_PORT, CONN_OPTS, CONN_STATE };

static const char *const fname_tcp = "open_connection";
static const char *const fname_unix = "open_unix_connection";

static void connect_abort(lx_op *op) {
  lx_stream_discard(((connect_op *)op)->s); /* connect_cb: ECANCELED */
}

/* A completed connect nobody takes (see lx_op.dispose): close its socket */
static void connect_dispose(lx_op *op) {
  lx_stream_discard(((connect_op *)op)->s);
  free(op);
}

static void connect_cb(uv_connect_t *req, int status) {
  connect_op *c = lx_container_of(req, connect_op, req);
  if (lx_op_finish(&c->op, status)) free(c);
}

/* Options shared with start_server: limit, nodelay, keepalive. */
size_t lx_check_limit(lua_State *L, int optidx, const char *fname) {
  lua_Integer limit = 65536;
  if (optidx && lua_getfield(L, optidx, "limit") != LUA_TNIL) {
    int isint;
    limit = lua_tointegerx(L, -1, &isint);
    if (!isint || limit <= 0)
      luaL_error(L, "lasync.%s: option 'limit' must be a positive integer",
                 fname);
  }
  if (optidx) lua_pop(L, 1);
  return (size_t)limit;
}

/* The options argument at idx: 0 if absent, else it must be a table. */
static int check_opts(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  lx_checktype(L, idx, LUA_TTABLE);
  return idx;
}

/* Apply nodelay and keepalive to a TCP stream. */
void lx_tcp_options(lx_stream *s, int nodelay, int keepalive) {
  uv_tcp_nodelay(&s->h.tcp, nodelay);
  if (keepalive > 0) uv_tcp_keepalive(&s->h.tcp, 1, (unsigned)keepalive);
}

/*
** [-0, +1] push "host:port" of the arguments, for error messages; an
** IPv6 host in brackets ("[::1]:80"), as start_server writes addresses.
*/
static void push_target(lua_State *L) {
  const char *host = lua_tostring(L, CONN_HOST);
  lua_pushfstring(L, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
                  (int)lua_tointeger(L, CONN_PORT));
}

static int connect_next(lua_State *L, lx_task *t, conn_state *cs);

/* After a connect attempt: done, the next address, or the error. */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  conn_state *cs = lua_touserdata(L, CONN_STATE);
  connect_op *c = (connect_op *)lx_op_resumed(t);
  (void)status;
  if (t->must_cancel) {
    if (c) connect_dispose(&c->op); /* it completed, but the task was
                                       cancelled meanwhile */
    return lx_task_raise_cancelled(L, t);
  }
  if (c->op.status == 0) {
    lx_stream *s = c->s;
    free(c);
    if (!s->is_pipe) lx_tcp_options(s, cs->nodelay, cs->keepalive);
    s->limit = cs->limit;
    lx_stream_push(L, s);
    return 2;
  }
  cs->last_err = c->op.status;
  lx_stream_discard(c->s);
  free(c);
  return connect_next(L, t, cs);
}

/* Start connecting to the next address, or raise the last error. */
static int connect_next(lua_State *L, lx_task *t, conn_state *cs) {
  lx_loop *loop = t->fut.loop;
  while (cs->next < cs->naddrs) {
    const struct sockaddr *sa = (const struct sockaddr *)&cs->addrs[cs->next++];
    connect_op *c = malloc(sizeof *c);
    int r;
    if (c == NULL)
      return luaL_error(L, "lasync.open_connection: out of memory");
    c->s = malloc(sizeof *c->s);
    if (c->s == NULL) {
      free(c);
      return luaL_error(L, "lasync.open_connection: out of memory");
    }
    lx_stream_init(c->s, loop);
    uv_tcp_init(loop->uv, &c->s->h.tcp);
    r = cs->has_local ? uv_tcp_bind(&c->s->h.tcp,
                                    (const struct sockaddr *)&cs->local, 0)
                      : 0;
    if (r == 0) r = uv_tcp_connect(&c->req, &c->s->h.tcp, sa, connect_cb);
    if (r == 0) {
      c->op.abort = connect_abort;
      c->op.dispose = connect_dispose;
      return lx_op_await(L, t, &c->op, connect_k);
    }
    cs->last_err = r;
    lx_stream_discard(c->s);
    free(c);
  }
  push_target(L);
  return lx_os_error(L, cs->last_err ? cs->last_err : UV_EADDRNOTAVAIL,
                     fname_tcp, lua_tostring(L, -1));
}

/* After the name was resolved: keep the addresses, then connect. */
static int resolved_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  conn_state *cs = lua_touserdata(L, CONN_STATE);
  int n, i;
  (void)status;
  n = (int)lua_rawlen(L, -1); /* getaddrinfo's result table */
  for (i = 1; i <= n && cs->naddrs < 16; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "host");
    if (lx_addr_parse(lua_tostring(L, -1), (int)lua_tointeger(L, CONN_PORT),
                      AF_UNSPEC, &cs->addrs[cs->naddrs]) == 0)
      cs->naddrs++;
    lua_pop(L, 2);
  }
  lua_settop(L, CONN_STATE);
  return connect_next(L, t, cs);
}

/*
** Whether host is a numeric address of the family asked for (any, if
** AF_UNSPEC), parsed into *ss. One of the other family goes to the
** lookup, as in asyncio, whose getaddrinfo refuses it with the usual
** lookup error (EAI_ADDRFAMILY with glibc) rather than connect over it.
*/
static int numeric_addr(const char *host, int port, int family,
                        struct sockaddr_storage *ss) {
  if (lx_addr_parse(host, port, family, ss) != 0) return 0;
  return family == AF_UNSPEC || ss->ss_family == family;
}

/*
** lasync.open_connection(host, port [, opts]) -> reader, writer
** opts: family, local_addr = {host, port}, nodelay (default true),
** keepalive (true or seconds), limit (default 65536)
*/
static int core_open_connection(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, fname_tcp);
  const char *host = lx_checkcstring(L, CONN_HOST, fname_tcp, "host");
  int port = lx_check_port(L, CONN_PORT, fname_tcp);
  int opts = check_opts(L, CONN_OPTS), family;
  conn_state *cs;
  if (*host == '\0') /* not "every address": there is no such peer */
    return luaL_error(L, "lasync.open_connection: host is empty");
  lua_settop(L, CONN_OPTS);
  family = lx_check_family(L, opts, fname_tcp);
  cs = lua_newuserdatauv(L, sizeof *cs, 0); /* at CONN_STATE */
  memset(cs, 0, sizeof *cs);
  cs->nodelay = lx_opt_bool(L, opts, "nodelay", 1);
  cs->keepalive = lx_opt_keepalive(L, opts, fname_tcp);
  cs->limit = lx_check_limit(L, opts, fname_tcp);
  if (opts && lua_getfield(L, opts, "local_addr") == LUA_TTABLE) {
    int isint = 1;
    lua_Integer lport = 0;
    lua_rawgeti(L, -1, 1);
    if (lua_rawgeti(L, -2, 2) != LUA_TNIL) /* an option, not an argument */
      lport = lua_tointegerx(L, -1, &isint);
    if (!isint || lport < 0 || lport > 65535 ||
        lx_addr_parse(lx_optcstring(L, -2, fname_tcp, "option 'local_addr'",
                                    NULL),
                      (int)lport, family, &cs->local) < 0)
      return luaL_error(L, "lasync.open_connection: option 'local_addr' "
                           "must be {numeric host, port}");
    cs->has_local = 1;
    lua_pop(L, 2);
  }
  lua_settop(L, CONN_STATE);
  if (numeric_addr(host, port, family, &cs->addrs[0])) {
    cs->naddrs = 1; /* no lookup */
    return connect_next(L, t, cs);
  }
  /* resolve first: lasync.getaddrinfo(host, port, {family=}), whose
     errors name open_connection and "host:port" */
  lx_push_getaddrinfo(L, fname_tcp);
  lua_pushvalue(L, CONN_HOST);
  lua_pushvalue(L, CONN_PORT);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, family == AF_INET    ? "inet"
                    : family == AF_INET6 ? "inet6"
                                         : "any");
  lua_setfield(L, -2, "family");
  lua_callk(L, 3, 1, (lua_KContext)t, resolved_k);
  return resolved_k(L, LUA_OK, (lua_KContext)t);
}

/* {======================================================================
** Unix sockets
** ======================================================================= */

static int unix_connect_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  connect_op *c = (connect_op *)lx_op_resumed(t);
  (void)status;
  if (t->must_cancel) {
    if (c) connect_dispose(&c->op);
    return lx_task_raise_cancelled(L, t);
  }
  if (c->op.status < 0) {
    int err = c->op.status;
    lx_stream_discard(c->s);
    free(c);
    return lx_os_error(L, err, fname_unix, lua_tostring(L, 1));
  }
  lx_stream_push(L, c->s);
  free(c);
  return 2;
}

/* lasync.open_unix_connection(path [, {limit=}]) -> reader, writer */
static int core_open_unix_connection(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, fname_unix);
  const char *path = lx_check_unix_path(L, 1, fname_unix);
  size_t limit = lx_check_limit(L, check_opts(L, 2), fname_unix);
  connect_op *c = malloc(sizeof *c);
  if (c == NULL) return luaL_error(L, "lasync.%s: out of memory", fname_unix);
  c->s = malloc(sizeof *c->s);
  if (c->s == NULL) {
    free(c);
    return luaL_error(L, "lasync.%s: out of memory", fname_unix);
  }
  lx_stream_init(c->s, t->fut.loop);
  c->s->limit = limit;
  uv_pipe_init(t->fut.loop->uv, &c->s->h.pipe, 0);
  c->s->is_pipe = 1;
  c->op.abort = connect_abort;
  c->op.dispose = connect_dispose;
  uv_pipe_connect(&c->req, &c->s->h.pipe, path, connect_cb);
  return lx_op_await(L, t, &c->op, unix_connect_k);
}

/* }====================================================================== */

void lx_open_connect(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"open_connection", core_open_connection},
    {"open_unix_connection", core_open_unix_connection},
    {NULL, NULL}
  };
  lx_setfuncs(L, funcs);
}
