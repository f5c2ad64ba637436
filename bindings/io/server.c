/*
** server.c — lasync.start_server and lasync.start_unix_server: a listening
** socket whose every connection runs handler(reader, writer) as its own
** task (with the ssl option, after the TLS handshake: lx_tls_serve in
** tls_conn.c). A handler's error is reported through the loop's
** exception handler and closes that connection only; the server keeps
** serving. The Server object is anchored while it listens.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/io.h"

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

typedef struct lx_server {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;                 /* freed (with the struct) after close and __gc */
  lx_resource node;    /* in the loop's resources while open */
  lx_loop *loop;
  struct lx_server *first; /* the Server's first socket (itself, if it is):
                              it holds ref, closers and nopen for all */
  struct lx_server *next;  /* the Server's next socket (a host name that
                              resolves to several addresses), or NULL */
  int nopen;           /* first: its sockets not closed yet */
  int ref;             /* anchor of the Server object while it listens */
  lx_waiter closers;   /* tasks in wait_closed() or serve_forever() */
  size_t limit;
  int nodelay, keepalive;
  double ssl_handshake_timeout, ssl_shutdown_timeout; /* with TLS */
  unsigned char is_pipe, closing, closed, has_box;
  unsigned char owns_file; /* Unix: remove path on close if it still is */
  dev_t dev;           /* the file bound (dev, ino); a newer server may */
  ino_t ino;           /* have replaced it */
  char path[SUN_PATH_SIZE]; /* Unix: the socket file */
} lx_server;

typedef struct server_box {
  lx_server *srv;
} server_box;

enum { SERVER_HANDLER = 1, SERVER_LOOPOBJ,
       SERVER_SSL, /* the context of the ssl option, or nil */
       SERVER_NUV = SERVER_SSL };

/* {======================================================================
** Lifetime
** ======================================================================= */

/* Remove a Unix server's socket file, unless another server has taken
   the path over since (asyncio 3.13 compares the inode the same way). */
static void unlink_if_ours(lx_server *srv) {
  struct stat st;
  if (srv->owns_file && stat(srv->path, &st) == 0 &&
      st.st_dev == srv->dev && st.st_ino == srv->ino)
    unlink(srv->path);
}

/* A socket closed: the Server is closed once all of its sockets are. The
   first socket is there as long as the box (has_box). */
static void server_closed_cb(uv_handle_t *handle) {
  lx_server *srv = handle->data;
  lx_count_handles(-1);
  lx_list_remove(&srv->node);
  srv->closed = 1;
  if (srv->is_pipe) unlink_if_ours(srv);
  if (srv->has_box && --srv->first->nopen == 0)
    lx_waitlist_wake_all(&srv->first->closers);
  if (!srv->has_box) free(srv);
}

static void socket_close(lx_server *srv) {
  if (srv->closing) return;
  srv->closing = 1;
  uv_close(&srv->h.handle, server_closed_cb);
}

/* Stop listening on every socket; connections already made go on. */
static void server_close(lua_State *L, lx_server *srv) {
  lx_server *first = srv->first, *next;
  if (first->closing) return;
  for (srv = first; srv; srv = next) {
    next = srv->next; /* srv may be freed (it has no box yet) */
    socket_close(srv);
  }
  if (L) lx_unanchor(L, first->loop->rt, &first->ref);
}

static void server_close_resource(lua_State *L, lx_resource *r) {
  server_close(L, lx_container_of(r, lx_server, node));
}

static int server__gc(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  server_box *b = lx_checkclass(L, rt, 1, LX_MT_SERVER, "Server:__gc");
  lx_server *first = b->srv, *srv, *next;
  if (first == NULL) return 0;
  b->srv = NULL;
  lx_unanchor(L, rt, &first->ref); /* anchored only when __gc was called
                                      by hand */
  for (srv = first; srv; srv = next) {
    next = srv->next;
    srv->has_box = 0;
    if (srv->closed)
      free(srv);
    else
      socket_close(srv); /* free in the close callback */
  }
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Connections
** ======================================================================= */

/*
** Whether the error at idx says the peer went away: a reset, a write to a
** closed connection, or EOF in the middle of a read. A server meets these
** all the time (asyncio logs them at debug level only).
*/
static int peer_gone(lua_State *L, int idx) {
  static const char *const codes[] = {"ECONNRESET", "EPIPE", "ECONNABORTED",
                                      NULL};
  const char *code;
  int i, gone = 0;
  if (lx_error_is(L, idx, LX_ERR_INCOMPLETE_READ)) return 1;
  if (lx_error_is(L, idx, LX_ERR_SSL)) return 1; /* a failed handshake */
  if (!lx_error_is(L, idx, LX_ERR_OS)) return 0;
  lua_getfield(L, idx, "code");
  code = lua_tostring(L, -1);
  for (i = 0; code && codes[i] && !gone; i++) gone = !strcmp(code, codes[i]);
  lua_pop(L, 1);
  return gone;
}

/*
** Done callback of a connection's task: report its error, close it. A
** peer that went away is reported in one line, without the traceback
** (but for a loop in debug mode).
*/
static int handler_done(lua_State *L) {
  lx_future *task = lua_touserdata(L, 1);
  if (task->state == LX_FAILED) {
    lx_future_retrieved(task);
    lua_getiuservalue(L, 1, LX_UV_RESULT);
    if (!task->loop->debug && peer_gone(L, -1)) {
      lx_loop_report(L, task->loop, "connection lost in connection handler",
                     -1, NULL);
    } else {
      lua_getfield(L, 1, "traceback");
      lua_pushvalue(L, 1);
      lua_call(L, 1, 1);
      lx_loop_report(L, task->loop, "exception in connection handler", -2,
                     lua_tostring(L, -1));
    }
  }
  if (task->state != LX_FINISHED) { /* failed or cancelled: close it */
    lua_getfield(L, lua_upvalueindex(1), "close");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 1, 0);
  }
  return 0;
}

static void report_accept_error(lx_server *srv, int err) {
  lua_State *L = srv->loop->L;
  lx_os_error_new(L, err, "start_server", "accepting a connection");
  lx_loop_report(L, srv->loop, "accept failed (the server goes on)", -1,
                 NULL);
  lua_pop(L, 1);
}

static void connection_cb(uv_stream_t *server, int status) {
  lx_server *srv = server->data;
  lx_loop *loop = srv->loop;
  lua_State *L = loop->L;
  lx_stream *s;
  int base, fn, r;
  if (status < 0) { /* e.g. EMFILE: report, keep listening */
    report_accept_error(srv, status);
    return;
  }
  s = malloc(sizeof *s);
  if (s == NULL) {
    report_accept_error(srv, UV_ENOMEM);
    return;
  }
  lx_stream_init(s, loop);
  if (srv->is_pipe) {
    uv_pipe_init(loop->uv, &s->h.pipe, 0);
    s->is_pipe = 1;
  } else {
    uv_tcp_init(loop->uv, &s->h.tcp);
  }
  if ((r = uv_accept(server, &s->h.stream)) < 0) {
    lx_stream_discard(s);
    report_accept_error(srv, r);
    return;
  }
  if (!srv->is_pipe) lx_tcp_options(s, srv->nodelay, srv->keepalive);
  s->limit = srv->limit;
  base = lua_gettop(L);
  lx_push_anchored(L, loop->rt, srv->first->ref); /* base + 1: the server */
  fn = base + 3; /* after the context of TLS, or nil (base + 2) */
  if (lua_getiuservalue(L, base + 1, SERVER_SSL) != LUA_TNIL) {
    lua_pushcfunction(L, lx_tls_serve); /* (handler, ctx, timeouts, */
    lua_getiuservalue(L, base + 1, SERVER_HANDLER); /* reader, writer) */
    lua_pushvalue(L, base + 2);
    lua_pushnumber(L, srv->ssl_handshake_timeout);
    lua_pushnumber(L, srv->ssl_shutdown_timeout);
  } else {                                           /* handler(reader, */
    lua_getiuservalue(L, base + 1, SERVER_HANDLER); /* writer) */
  }
  lx_stream_push(L, s);
  lx_task_new(L, loop, 0, fn, lua_gettop(L) - fn);
  lua_pushvalue(L, -2); /* the writer */
  lua_pushcclosure(L, handler_done, 1);
  lx_future_add_callback(L, -2, -1);
  lua_settop(L, base);
}

/* }====================================================================== */

/* {======================================================================
** Creating servers
** ======================================================================= */

/* Options of start_server and start_unix_server, read and checked before
   anything is created, so that a bad one leaks nothing. */
typedef struct listen_opts {
  int backlog;
  size_t limit;
  int nodelay, keepalive, reuse_port; /* keepalive: seconds, 0 for off */
  int optsidx;      /* the options table (0: none) */
  lx_tls_opts tls;  /* its ssl options; tls.ctx NULL: plain */
} listen_opts;

/* Raise "option 'name' must be <what> (got ...)" for the value on top. */
static int opt_error(lua_State *L, const char *fname, const char *name,
                     const char *what) {
  const char *got = lua_type(L, -1) == LUA_TNUMBER
                        ? luaL_tolstring(L, -1, NULL)
                        : luaL_typename(L, -1);
  return luaL_error(L, "lasync.%s: option '%s' must be %s (got %s)", fname,
                    name, what, got);
}

/* backlog: an integer, clamped to 0..INT_MAX as listen(2) would */
static int opt_backlog(lua_State *L, int opts, const char *fname) {
  lua_Integer v = 100;
  int isint;
  if (opts && lua_getfield(L, opts, "backlog") != LUA_TNIL) {
    v = lua_tointegerx(L, -1, &isint);
    if (!isint) opt_error(L, fname, "backlog", "an integer");
    v = v < 0 ? 0 : v > INT_MAX ? INT_MAX : v;
  }
  if (opts) lua_pop(L, 1);
  return (int)v;
}

/* Options shared with open_connection (connect.c). */
int lx_opt_bool(lua_State *L, int opts, const char *name, int dflt) {
  int v = dflt;
  if (opts && lua_getfield(L, opts, name) != LUA_TNIL)
    v = lua_toboolean(L, -1);
  if (opts) lua_pop(L, 1);
  return v;
}

/*
** keepalive: true (60 s), false, or a whole number of seconds (0: off);
** anything else raises, so that a typo does not pass unseen.
*/
int lx_opt_keepalive(lua_State *L, int opts, const char *fname) {
  lua_Integer v = 0;
  int isint = 1;
  if (opts == 0) return 0;
  switch (lua_getfield(L, opts, "keepalive")) {
    case LUA_TNIL: break;
    case LUA_TBOOLEAN: v = lua_toboolean(L, -1) ? 60 : 0; break;
    case LUA_TNUMBER: v = lua_tointegerx(L, -1, &isint); break;
    default: isint = 0;
  }
  if (!isint || v < 0 || v > INT_MAX)
    opt_error(L, fname, "keepalive", "a boolean or a whole number of seconds");
  lua_pop(L, 1);
  return (int)v;
}

/* The options table at idx (0 if none; a non-table raises) into *o. */
static int read_opts(lua_State *L, int idx, const char *fname,
                     listen_opts *o) {
  int opts = lua_isnoneornil(L, idx) ? 0 : idx;
  if (opts) lx_checktype(L, opts, LUA_TTABLE);
  o->optsidx = opts;
  lx_tls_check_opts(L, opts, fname, 1, &o->tls);
  o->backlog = opt_backlog(L, opts, fname);
  o->limit = lx_check_limit(L, opts, fname);
  o->nodelay = lx_opt_bool(L, opts, "nodelay", 1);
  o->keepalive = lx_opt_keepalive(L, opts, fname);
  /* workers of lasync -w N share their ports (worker.c) */
  o->reuse_port = lx_opt_bool(L, opts, "reuse_port",
                              lx_worker_share() == LX_SHARE_REUSEPORT);
  return opts;
}

static lx_server *server_new(lua_State *L, lx_loop *loop,
                             const listen_opts *o) {
  lx_server *srv = calloc(1, sizeof *srv);
  if (srv == NULL) luaL_error(L, "lasync.start_server: out of memory");
  srv->loop = loop;
  srv->first = srv;
  srv->ref = LUA_NOREF;
  srv->h.handle.data = srv;
  lx_waitlist_init(&srv->closers);
  srv->node.close = server_close_resource;
  srv->limit = o->limit;
  srv->nodelay = o->nodelay;
  srv->keepalive = o->keepalive;
  srv->ssl_handshake_timeout = o->tls.handshake_timeout;
  srv->ssl_shutdown_timeout = o->tls.shutdown_timeout;
  return srv;
}

/*
** [-0, +1] push the Server object of a listening srv (its first socket;
** the others follow in srv->next) and anchor it
*/
static void server_push(lua_State *L, lx_server *srv, int handleridx,
                        const listen_opts *o) {
  server_box *b = lua_newuserdatauv(L, sizeof *b, SERVER_NUV);
  lx_server *s;
  b->srv = srv;
  for (s = srv; s; s = s->next) {
    s->has_box = 1;
    srv->nopen++;
    if (s != srv) lx_list_add(&srv->loop->resources, &s->node);
  }
  lx_setclass(L, srv->loop->rt, LX_MT_SERVER);
  lua_pushvalue(L, handleridx);
  lua_setiuservalue(L, -2, SERVER_HANDLER);
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->loop->self_ref);
  lua_setiuservalue(L, -2, SERVER_LOOPOBJ);
  if (o->tls.ctx) { /* what was checked: nothing ran since */
    lua_getfield(L, o->optsidx, "ssl");
    lua_setiuservalue(L, -2, SERVER_SSL);
  }
  srv->ref = lx_anchor(L, srv->loop->rt, -1);
  lx_list_add(&srv->loop->resources, &srv->node);
}

/* A failed setup: close the handle and raise err for target. */
static int server_fail(lua_State *L, lx_server *srv, int err,
                       const char *fname, const char *target) {
  srv->closing = 1;
  uv_close(&srv->h.handle, server_closed_cb);
  return lx_os_error(L, err, fname, target);
}

/*
** SO_REUSEPORT (asyncio's reuse_port): sockets that all ask for it may
** share a port (servers here, UDP endpoints in udp.c). 0 or a libuv error.
*/
int lx_reuse_port(uv_handle_t *h) {
  uv_os_fd_t fd;
  int one = 1, r = uv_fileno(h, &fd);
  if (r < 0) return r;
#ifdef SO_REUSEPORT
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    return uv_translate_sys_error(errno);
  return 0;
#else
  (void)one;
  return UV_ENOTSUP;
#endif
}

enum { SRV_HANDLER = 1, SRV_HOST, SRV_PORT, SRV_OPTS };

#define MAX_ADDRS 16 /* sockets of one Server, at most */

/*
** A socket listening on sa (flags: uv_tcp_bind's), in *out: 0, or a libuv
** error, and then nothing is left (the handle frees itself once closed).
*/
static int socket_listen(lua_State *L, lx_loop *loop,
                         const struct sockaddr *sa, const listen_opts *o,
                         unsigned flags, int shared, lx_server **out) {
  lx_server *srv = server_new(L, loop, o);
  int fd = -1, r;
  if (shared) { /* the supervisor's socket, the same for every worker */
    fd = lx_worker_bind(sa, (flags & UV_TCP_IPV6ONLY) != 0, o->backlog);
    if (fd < 0) {
      free(srv);
      return fd;
    }
    r = uv_tcp_init(loop->uv, &srv->h.tcp);
  } else {
    r = uv_tcp_init_ex(loop->uv, &srv->h.tcp, sa->sa_family);
  }
  if (r < 0) {
    if (fd >= 0) close(fd);
    free(srv);
    return r;
  }
  lx_count_handles(1);
  if (shared) {
    r = uv_tcp_open(&srv->h.tcp, fd);
    if (r < 0) close(fd);
  } else {
    if (o->reuse_port) r = lx_reuse_port(&srv->h.handle);
    if (r == 0) r = uv_tcp_bind(&srv->h.tcp, sa, flags);
  }
  if (r == 0) r = uv_listen(&srv->h.stream, o->backlog, connection_cb);
  if (r < 0) {
    socket_close(srv);
    return r;
  }
  *out = srv;
  return 0;
}

/* The port the socket of srv is bound to (0 if unknown). */
static int bound_port(lx_server *srv) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  if (uv_tcp_getsockname(&srv->h.tcp, (struct sockaddr *)&ss, &len) < 0)
    return 0;
  return ntohs(ss.ss_family == AF_INET6
                   ? ((struct sockaddr_in6 *)&ss)->sin6_port
                   : ((struct sockaddr_in *)&ss)->sin_port);
}

/*
** Bind and listen on the n addresses at ss, as asyncio binds every
** address a host name resolves to ("localhost": 127.0.0.1 and ::1); port
** 0 means the port the first socket got, for them all. An address other
** than the first that this machine lacks (::1 without IPv6) is skipped;
** any other failure closes what was made and raises. Push the Server.
*/
static int tcp_listen(lua_State *L, lx_loop *loop,
                      struct sockaddr_storage *ss, int n,
                      const listen_opts *o) {
  lx_server *first = NULL, *last = NULL, *srv = NULL;
  unsigned flags = n > 1 ? UV_TCP_IPV6ONLY : 0; /* "::" next to "0.0.0.0" */
  int i, r, shared = 0;
  if (lx_worker_share()) { /* a worker: the supervisor binds for all with
                              --share=socket, and port 0 in any mode, so
                              that it is one port for every worker */
    const struct sockaddr *sa = (const struct sockaddr *)&ss[0];
    int port = ntohs(sa->sa_family == AF_INET6
                         ? ((const struct sockaddr_in6 *)sa)->sin6_port
                         : ((const struct sockaddr_in *)sa)->sin_port);
    shared = lx_worker_share() == LX_SHARE_SOCKET || port == 0;
  }
  for (i = 0; i < n; i++) {
    struct sockaddr *sa = (struct sockaddr *)&ss[i];
    if (first != NULL) { /* the same port as the first */
      uint16_t port = htons((uint16_t)bound_port(first));
      if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = port;
      else
        ((struct sockaddr_in *)sa)->sin_port = port;
    }
    r = socket_listen(L, loop, sa, o,
                      sa->sa_family == AF_INET6 ? flags : 0, shared, &srv);
    if (r < 0 && first && (r == UV_EADDRNOTAVAIL || r == UV_EAFNOSUPPORT))
      continue;
    if (r < 0) {
      if (first) server_close(NULL, first); /* no box: they free themselves */
      lx_addr_push_text(L, sa);
      return lx_os_error(L, r, "start_server", lua_tostring(L, -1));
    }
    if (first == NULL) {
      first = srv;
    } else {
      srv->first = first;
      last->next = srv;
    }
    last = srv;
  }
  server_push(L, first, SRV_HANDLER, o);
  lx_worker_ready();
  return 1;
}

/* pcall'd: tcp_listen(loop, ss, 1, o) with start_server's arguments after
   them */
static int listen_protected(lua_State *L) {
  lx_loop *loop = lua_touserdata(L, 1);
  struct sockaddr_storage *ss = lua_touserdata(L, 2);
  listen_opts *o = lua_touserdata(L, 3);
  lua_rotate(L, 1, -3); /* the arguments back at 1.. */
  lua_settop(L, SRV_OPTS);
  return tcp_listen(L, loop, ss, 1, o);
}

/* The name was resolved (the addresses on top): listen on each of them. */
static int resolved_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  struct sockaddr_storage ss[MAX_ADDRS];
  int i, j, n = 0, port = (int)lua_tointeger(L, SRV_PORT);
  int found = (int)lua_rawlen(L, -1);
  listen_opts o;
  (void)status;
  for (i = 1; i <= found && n < MAX_ADDRS; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "host");
    if (lua_isstring(L, -1) &&
        lx_addr_parse(lua_tostring(L, -1), port, AF_UNSPEC, &ss[n]) == 0) {
      for (j = 0; j < n && memcmp(&ss[j], &ss[n], sizeof ss[n]) != 0; j++) {}
      if (j == n) n++; /* not a duplicate */
    }
    lua_pop(L, 2);
  }
  if (n == 0)
    return lx_os_error(L, UV_EAI_NONAME, "start_server",
                       lua_tostring(L, SRV_HOST));
  lua_settop(L, SRV_OPTS);
  read_opts(L, SRV_OPTS, "start_server", &o); /* checked before the lookup */
  return tcp_listen(L, t->fut.loop, ss, n, &o);
}

static void check_handler(lua_State *L, const char *fname) {
  if (!lx_is_callable(L, 1))
    luaL_error(L, "lasync.%s: the handler must be a function (got %s)",
               fname, luaL_typename(L, 1));
}

/*
** lasync.start_server(handler, host, port [, opts]) -> Server
** host nil, "" or "*": every address, IPv6 and IPv4 ("::" dual-stack, or
** "0.0.0.0" where IPv6 is missing; family narrows it); port 0:
** a free port (see server:address()). opts: backlog (100), reuse_port,
** nodelay (default true), keepalive, family, limit.
*/
static int core_start_server(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "start_server");
  const char *host = lx_optcstring(L, SRV_HOST, "start_server", "host",
                                   NULL);
  int port, family;
  struct sockaddr_storage ss;
  listen_opts o;
  check_handler(L, "start_server");
  port = lx_check_port(L, SRV_PORT, "start_server");
  lua_settop(L, SRV_OPTS);
  family = lx_check_family(L, read_opts(L, SRV_OPTS, "start_server", &o),
                           "start_server");
  if ((host == NULL || *host == '\0' || strcmp(host, "*") == 0) &&
      family == AF_UNSPEC &&
      lx_addr_parse("::", port, AF_INET6, &ss) == 0) {
    int top = lua_gettop(L); /* every address: dual-stack "::" if this */
    lua_pushcfunction(L, listen_protected); /* machine has IPv6 */
    lua_pushlightuserdata(L, t->fut.loop);
    lua_pushlightuserdata(L, &ss);
    lua_pushlightuserdata(L, &o);
    for (int i = 1; i <= SRV_OPTS; i++) lua_pushvalue(L, i);
    if (lua_pcall(L, 3 + SRV_OPTS, 1, 0) == LUA_OK) return 1;
    lua_settop(L, top); /* no IPv6 here: IPv4 only */
  }
  if (lx_addr_parse(host, port, family, &ss) == 0)
    return tcp_listen(L, t->fut.loop, &ss, 1, &o);
  lx_push_getaddrinfo(L, "start_server"); /* a name: resolve it first */
  lua_pushvalue(L, SRV_HOST);
  lua_pushvalue(L, SRV_PORT);
  lua_callk(L, 2, 1, (lua_KContext)t, resolved_k);
  return resolved_k(L, LUA_OK, (lua_KContext)t);
}

/*
** The path of a Unix socket at idx, for both ends (start_unix_server,
** open_unix_connection): one that would not fit in a socket address would
** be cut short, and an empty one would bind or connect to an abstract
** address Linux makes up: both raise.
*/
const char *lx_check_unix_path(lua_State *L, int idx, const char *fname) {
  size_t len;
  const char *path = lx_checkcstring(L, idx, fname, "path");
  len = strlen(path);
  if (len == 0) luaL_error(L, "lasync.%s: path is empty", fname);
  if (len >= SUN_PATH_SIZE)
    luaL_error(L, "lasync.%s: path too long (%d bytes, at most %d)", fname,
               (int)len, (int)SUN_PATH_SIZE - 1);
  return path;
}

/* A new socket bound to path (not uv_pipe_bind: libuv would unlink the
   path on close even once it names another server's file); its fd or a
   negative libuv error. The length of path has been checked. */
static int unix_socket(const char *path) {
  struct sockaddr_un sun;
  int fd, r;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  strcpy(sun.sun_path, path);
#ifdef SOCK_CLOEXEC
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  if (fd < 0) return uv_translate_sys_error(errno);
  if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
    r = uv_translate_sys_error(errno);
    close(fd);
    return r;
  }
  return fd;
}

/* Bind srv to path and remember which file that made, for close. */
static int unix_bind(lx_server *srv, const char *path) {
  struct stat st;
  int r, fd = unix_socket(path);
  if (fd < 0) return fd;
  strcpy(srv->path, path);
  if (stat(path, &st) == 0) {
    srv->owns_file = 1;
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;
  }
  r = uv_pipe_open(&srv->h.pipe, fd);
  if (r < 0) close(fd); /* the file goes when srv closes */
  return r;
}

/* lasync.start_unix_server(handler, path [, {backlog=, limit=}]) -> Server */
static int core_start_unix_server(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "start_unix_server");
  const char *path;
  struct stat st;
  listen_opts o;
  lx_server *srv;
  int r;
  check_handler(L, "start_unix_server");
  path = lx_check_unix_path(L, 2, "start_unix_server");
  read_opts(L, 3, "start_unix_server", &o);
  if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
    unlink(path); /* a stale socket file, as asyncio removes it */
  srv = server_new(L, t->fut.loop, &o);
  uv_pipe_init(t->fut.loop->uv, &srv->h.pipe, 0);
  lx_count_handles(1);
  srv->is_pipe = 1;
  r = unix_bind(srv, path);
  if (r == 0) r = uv_listen(&srv->h.stream, o.backlog, connection_cb);
  if (r < 0) return server_fail(L, srv, r, "start_unix_server", path);
  server_push(L, srv, 1, &o);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Server methods
** ======================================================================= */

static lx_server *check_server(lua_State *L, const char *fname) {
  return lx_checkbox(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                     LX_MT_SERVER, fname);
}

/* server:close(): stop listening (connections already made go on) */
static int server_close_m(lua_State *L) {
  server_close(L, check_server(L, "Server:close"));
  return 0;
}

/* server:wait_closed(): wait until the listening socket is closed */
static int server_wait_closed(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_server *srv = check_server(L, "Server:wait_closed");
  lx_task *t = lx_current_task(L, rt, "Server:wait_closed");
  lua_settop(L, 1);
  if (srv->nopen == 0) return 0; /* every socket is closed */
  return lx_wait_on(L, t, &srv->closers, lx_wait_k);
}

static int forever_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  if (t->must_cancel) { /* cancelled: the server closes, as asyncio */
    lx_server *srv = ((server_box *)lua_touserdata(L, 1))->srv;
    if (srv) server_close(L, srv); /* NULL: finalized by hand */
    return lx_task_raise_cancelled(L, t);
  }
  return 0;
}

/* server:serve_forever(): serve until the server is closed or the task
   is cancelled (which closes the server) */
static int server_serve_forever(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_server *srv = check_server(L, "Server:serve_forever");
  lx_task *t = lx_current_task(L, rt, "Server:serve_forever");
  lua_settop(L, 1);
  if (srv->closing)
    return luaL_error(L, "lasync.Server:serve_forever: the server is closed");
  return lx_wait_on(L, t, &srv->closers, forever_k);
}

static int server_is_serving(lua_State *L) {
  lua_pushboolean(L, !check_server(L, "Server:is_serving")->closing);
  return 1;
}

/* [-0, +1|2] the listening address: host, port, or the path */
static int push_address(lua_State *L, lx_server *srv) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  if (srv->closing) return 0;
  if (srv->is_pipe) {
    lua_pushstring(L, srv->path);
    return 1;
  }
  if (uv_tcp_getsockname(&srv->h.tcp, (struct sockaddr *)&ss, &len) < 0)
    return 0;
  lx_addr_push(L, (struct sockaddr *)&ss);
  return 2;
}

/* server:address() -> host, port (a Unix server: its path) */
static int server_address(lua_State *L) {
  return push_address(L, check_server(L, "Server:address"));
}

/* server:sockets() -> {{host=, port=}, ...} or {{path=}}; {} once closed */
static int server_sockets(lua_State *L) {
  lx_server *srv = check_server(L, "Server:sockets");
  int i = 0;
  lua_newtable(L);
  for (; srv; srv = srv->next) {
    int n = push_address(L, srv);
    if (n == 0) continue;
    lua_createtable(L, 0, 2);
    if (n == 1) {
      lua_rotate(L, -2, 1); /* the path on top */
      lua_setfield(L, -2, "path");
    } else {
      lua_rotate(L, -3, 1); /* host, port on top */
      lua_setfield(L, -3, "port");
      lua_setfield(L, -2, "host");
    }
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

static int server__tostring(lua_State *L) {
  server_box *b = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                                LX_MT_SERVER, "Server:__tostring");
  lx_server *srv = b->srv;
  int n;
  if (srv == NULL) {
    lua_pushliteral(L, "lasync.Server (finalized)");
    return 1;
  }
  n = push_address(L, srv);
  if (n == 2)
    lua_pushfstring(L, "lasync.Server: %s:%d", lua_tostring(L, -2),
                    (int)lua_tointeger(L, -1));
  else if (n == 1)
    lua_pushfstring(L, "lasync.Server: %s", lua_tostring(L, -1));
  else
    lua_pushliteral(L, "lasync.Server: closed");
  return 1;
}

/* }====================================================================== */

void lx_open_server(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", server_close_m},
    {"wait_closed", server_wait_closed},
    {"serve_forever", server_serve_forever},
    {"is_serving", server_is_serving},
    {"address", server_address},
    {"sockets", server_sockets},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", server__gc},
    {"__close", server_close_m},
    {"__tostring", server__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"start_server", core_start_server},
    {"start_unix_server", core_start_unix_server},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_SERVER, "lasync.Server", methods, meta);
  lx_setfuncs(L, funcs);
}
