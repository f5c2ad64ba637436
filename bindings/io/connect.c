/*
** connect.c — lasync.open_connection (TCP) and lasync.open_unix_connection:
** resolve the host, connect to each address in turn until one answers, and
** return the stream's reader and writer, after the TLS handshake when
** the ssl option asks for TLS. A cancel closes the socket being
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
  lx_tls_opts tls;          /* tls.ctx NULL: plain; its context and name
                               are the state's user values */
} conn_state;

/* The stack of open_connection: its arguments, then the state. */
enum { CONN_HOST = 1, CONN_PORT, CONN_OPTS, CONN_STATE };
enum { CONN_UV_SSL = 1, CONN_UV_HOSTNAME, CONN_NUV = CONN_UV_HOSTNAME };

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

/* After the TLS handshake moved: r, w (on top) once it is done. */
static int tls_k(lua_State *L, int status, lua_KContext ctx) {
  int r = lx_tls_handshake(L, (lx_task *)ctx, CONN_STATE + 2, fname_tcp,
                           tls_k);
  (void)status;
  return r >= 0 ? r : 2;
}

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
    lx_stream_push(L, s); /* CONN_STATE + 1, + 2 */
    if (cs->tls.ctx == NULL) return 2;
    lx_tls_push_session_key(L, cs->tls.hostname, CONN_HOST, CONN_PORT);
    lx_tls_start(L, s, &cs->tls, lua_tostring(L, -1), fname_tcp);
    lua_pop(L, 1);
    return tls_k(L, LUA_OK, ctx);
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
** keepalive (true or seconds), limit (default 65536), ssl (true or a
** client context), server_hostname (default: host),
** ssl_handshake_timeout, ssl_shutdown_timeout
*/
static int core_open_connection(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, fname_tcp);
  const char *host = lx_checkcstring(L, CONN_HOST, fname_tcp, "host");
  int port = lx_check_port(L, CONN_PORT, fname_tcp);
  int opts = check_opts(L, CONN_OPTS), family;
  conn_state *cs;
  lx_tls_opts tls;
  if (*host == '\0') /* not "every address": there is no such peer */
    return luaL_error(L, "lasync.open_connection: host is empty");
  lua_settop(L, CONN_OPTS);
  lx_tls_check_opts(L, opts, fname_tcp, 0, &tls);
  family = lx_check_family(L, opts, fname_tcp);
  cs = lua_newuserdatauv(L, sizeof *cs, CONN_NUV); /* at CONN_STATE */
  memset(cs, 0, sizeof *cs);
  cs->tls = tls;
  if (tls.ctx) { /* kept as given, whatever becomes of opts meanwhile */
    lua_getfield(L, opts, "ssl");
    lua_setiuservalue(L, CONN_STATE, CONN_UV_SSL);
    if (tls.hostname == NULL) {
      cs->tls.hostname = host; /* the argument's string */
    } else {
      lua_getfield(L, opts, "server_hostname");
      lua_setiuservalue(L, CONN_STATE, CONN_UV_HOSTNAME);
    }
  }
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

/*
** The stack of open_unix_connection: its arguments, then the ssl option's
** context and server_hostname as given (nil if none), kept while it
** connects, and the checked options (a userdata) when TLS is asked for.
*/
enum { UNIX_PATH = 1, UNIX_OPTS, UNIX_SSL, UNIX_HOSTNAME, UNIX_TLS };

static int unix_tls_k(lua_State *L, int status, lua_KContext ctx) {
  int r = lx_tls_handshake(L, (lx_task *)ctx, UNIX_TLS + 2, fname_unix,
                           unix_tls_k);
  (void)status;
  return r >= 0 ? r : 2;
}

static int unix_connect_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  connect_op *c = (connect_op *)lx_op_resumed(t);
  lx_tls_opts *tls;
  lx_stream *s;
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
  s = c->s;
  free(c);
  lx_stream_push(L, s); /* UNIX_TLS + 1, + 2 */
  tls = lua_touserdata(L, UNIX_TLS);
  if (tls == NULL) return 2;
  lua_pushliteral(L, "unix"); /* the key's place: "unix", the path */
  lx_tls_push_session_key(L, tls->hostname, -1, UNIX_PATH);
  lx_tls_start(L, s, tls, lua_tostring(L, -1), fname_unix);
  lua_settop(L, UNIX_TLS + 2);
  return unix_tls_k(L, LUA_OK, ctx);
}

/*
** lasync.open_unix_connection(path [, opts]) -> reader, writer
** opts: limit, and the ssl options of open_connection (server_hostname
** has no default: a context that checks host names needs it)
*/
static int core_open_unix_connection(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, fname_unix);
  const char *path = lx_check_unix_path(L, UNIX_PATH, fname_unix);
  int opts = check_opts(L, UNIX_OPTS);
  size_t limit = lx_check_limit(L, opts, fname_unix);
  lx_tls_opts tls;
  connect_op *c;
  lua_settop(L, UNIX_OPTS);
  if (lx_tls_check_opts(L, opts, fname_unix, 0, &tls)) {
    if (tls.hostname == NULL && tls.ctx->check_hostname)
      return luaL_error(L, "lasync.%s: option 'ssl' with a context that "
                           "checks host names needs option "
                           "'server_hostname'", fname_unix);
    lua_getfield(L, opts, "ssl");             /* UNIX_SSL */
    lua_getfield(L, opts, "server_hostname"); /* UNIX_HOSTNAME */
    if (tls.hostname) tls.hostname = lua_tostring(L, UNIX_HOSTNAME);
    *(lx_tls_opts *)lua_newuserdatauv(L, sizeof tls, 0) = tls;
  } else {
    lua_settop(L, UNIX_TLS); /* nil at UNIX_TLS: no TLS */
  }
  c = malloc(sizeof *c);
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
