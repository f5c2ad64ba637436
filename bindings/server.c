/*
** server.c — lasync.start_server and lasync.start_unix_server: a listening
** socket whose every connection runs handler(reader, writer) as its own
** task. A handler's error is reported through the loop's exception
** handler and closes that connection only; the server keeps serving. The
** Server object is anchored while it listens.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

typedef struct lx_server {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;                 /* freed (with the struct) after close and __gc */
  lx_resource node;    /* in the loop's resources while open */
  lx_loop *loop;
  int ref;             /* anchor of the Server object while it listens */
  lx_waiter closers;   /* tasks in wait_closed() or serve_forever() */
  size_t limit;
  int nodelay, keepalive;
  unsigned char is_pipe, closing, closed, has_box;
  char path[256];      /* Unix: the socket file, removed on close */
} lx_server;

typedef struct server_box {
  lx_server *srv;
} server_box;

enum { UV_HANDLER = 1, UV_LOOPOBJ, SERVER_NUV = UV_LOOPOBJ };

/* {======================================================================
** Lifetime
** ======================================================================= */

static void server_closed_cb(uv_handle_t *handle) {
  lx_server *srv = handle->data;
  lx_list_remove(&srv->node);
  srv->closed = 1;
  if (srv->is_pipe && srv->path[0]) unlink(srv->path);
  lx_waitlist_wake_all(&srv->closers);
  if (!srv->has_box) free(srv);
}

/* Stop listening; connections already made go on. */
static void server_close(lua_State *L, lx_server *srv) {
  if (srv->closing) return;
  srv->closing = 1;
  uv_close(&srv->h.handle, server_closed_cb);
  if (L) lx_unanchor(L, srv->loop->rt, &srv->ref);
}

static void server_close_resource(lua_State *L, lx_resource *r) {
  server_close(L, lx_container_of(r, lx_server, node));
}

static int server__gc(lua_State *L) {
  server_box *b = lua_touserdata(L, 1);
  lx_server *srv = b->srv;
  if (srv == NULL) return 0;
  b->srv = NULL;
  srv->has_box = 0;
  if (srv->closed)
    free(srv);
  else
    server_close(NULL, srv); /* free in the close callback */
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Connections
** ======================================================================= */

/* Done callback of a connection's task: report its error, close it. */
static int handler_done(lua_State *L) {
  lx_future *task = lua_touserdata(L, 1);
  if (task->state == LX_FAILED) {
    lx_future_retrieved(task);
    lua_getiuservalue(L, 1, LX_UV_RESULT);
    lua_getfield(L, 1, "traceback");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lx_loop_report(L, task->loop, "exception in connection handler", -2,
                   lua_tostring(L, -1));
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
  int base, r;
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
  lx_push_anchored(L, loop->rt, srv->ref);       /* base + 1: the server */
  lua_getiuservalue(L, base + 1, UV_HANDLER);    /* base + 2 */
  lx_stream_push(L, s);                          /* base + 3, base + 4 */
  lx_task_new(L, loop, 0, base + 2, 2);          /* base + 5 */
  lua_pushvalue(L, base + 4);
  lua_pushcclosure(L, handler_done, 1);
  lx_future_add_callback(L, base + 5, base + 6);
  lua_settop(L, base);
}

/* }====================================================================== */

/* {======================================================================
** Creating servers
** ======================================================================= */

static lx_server *server_new(lua_State *L, lx_loop *loop, int handleridx) {
  lx_server *srv = calloc(1, sizeof *srv);
  if (srv == NULL) luaL_error(L, "lasync.start_server: out of memory");
  srv->loop = loop;
  srv->ref = LUA_NOREF;
  srv->h.handle.data = srv;
  lx_waitlist_init(&srv->closers);
  srv->node.close = server_close_resource;
  (void)handleridx;
  return srv;
}

/* [-0, +1] push the Server object of a listening srv and anchor it */
static void server_push(lua_State *L, lx_server *srv, int handleridx) {
  server_box *b = lua_newuserdatauv(L, sizeof *b, SERVER_NUV);
  b->srv = srv;
  srv->has_box = 1;
  lx_setclass(L, srv->loop->rt, LX_MT_SERVER);
  lua_pushvalue(L, handleridx);
  lua_setiuservalue(L, -2, UV_HANDLER);
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->loop->self_ref);
  lua_setiuservalue(L, -2, UV_LOOPOBJ);
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

static int listen_opts(lua_State *L, lx_server *srv, int opts,
                       const char *fname) {
  int backlog = 100;
  srv->limit = lx_check_limit(L, opts, fname);
  srv->nodelay = 1;
  if (opts) {
    if (lua_getfield(L, opts, "backlog") != LUA_TNIL)
      backlog = (int)luaL_checkinteger(L, -1);
    if (lua_getfield(L, opts, "nodelay") != LUA_TNIL)
      srv->nodelay = lua_toboolean(L, -1);
    if (lua_getfield(L, opts, "keepalive") != LUA_TNIL)
      srv->keepalive = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1)
                                           : (lua_toboolean(L, -1) ? 60 : 0);
    lua_pop(L, 3);
  }
  return backlog;
}

enum { SRV_HANDLER = 1, SRV_HOST, SRV_PORT, SRV_OPTS };

/* Bind and listen on the address at *ss; push the Server object. */
static int tcp_listen(lua_State *L, lx_loop *loop,
                      const struct sockaddr_storage *ss) {
  int opts = lua_istable(L, SRV_OPTS) ? SRV_OPTS : 0, r, backlog;
  lx_server *srv = server_new(L, loop, SRV_HANDLER);
  const struct sockaddr *sa = (const struct sockaddr *)ss;
  lx_addr_push_text(L, sa); /* the target, for errors */
  backlog = listen_opts(L, srv, opts, "start_server");
  r = uv_tcp_init_ex(loop->uv, &srv->h.tcp, sa->sa_family);
  if (r < 0) {
    free(srv);
    return lx_os_error(L, r, "start_server", lua_tostring(L, -1));
  }
  if (opts && lua_getfield(L, opts, "reuse_port") != LUA_TNIL &&
      lua_toboolean(L, -1)) {
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno(&srv->h.handle, &fd) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
      return server_fail(L, srv, uv_translate_sys_error(errno),
                         "start_server", lua_tostring(L, -2));
  }
  if (opts) lua_pop(L, 1);
  r = uv_tcp_bind(&srv->h.tcp, sa, 0);
  if (r == 0) r = uv_listen(&srv->h.stream, backlog, connection_cb);
  if (r < 0)
    return server_fail(L, srv, r, "start_server", lua_tostring(L, -1));
  server_push(L, srv, SRV_HANDLER);
  return 1;
}

/* pcall'd: tcp_listen(loop, ss) with start_server's arguments after them */
static int listen_protected(lua_State *L) {
  lx_loop *loop = lua_touserdata(L, 1);
  struct sockaddr_storage *ss = lua_touserdata(L, 2);
  lua_rotate(L, 1, -2); /* the arguments back at 1.. */
  lua_settop(L, SRV_OPTS);
  return tcp_listen(L, loop, ss);
}

static int resolved_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  struct sockaddr_storage ss;
  (void)status;
  lua_rawgeti(L, -1, 1); /* the first address found */
  lua_getfield(L, -1, "host");
  if (lua_isnil(L, -1) ||
      lx_addr_parse(lua_tostring(L, -1), (int)lua_tointeger(L, SRV_PORT),
                    AF_UNSPEC, &ss) < 0)
    return lx_os_error(L, UV_EAI_NONAME, "start_server",
                       lua_tostring(L, SRV_HOST));
  lua_settop(L, SRV_OPTS);
  return tcp_listen(L, t->fut.loop, &ss);
}

static void check_handler(lua_State *L, const char *fname) {
  if (!lx_is_callable(L, 1))
    luaL_error(L, "lasync.%s: the handler must be a function (got %s)",
               fname, luaL_typename(L, 1));
}

/*
** lasync.start_server(handler, host, port [, opts]) -> Server
** host nil or "*": every address, IPv6 and IPv4 ("::" dual-stack, or
** "0.0.0.0" where IPv6 is missing; family narrows it); port 0:
** a free port (see server:address()). opts: backlog (100), reuse_port,
** nodelay (default true), keepalive, family, limit.
*/
static int core_start_server(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "start_server");
  const char *host = lua_isnoneornil(L, SRV_HOST)
                         ? NULL
                         : luaL_checkstring(L, SRV_HOST);
  int port, family;
  struct sockaddr_storage ss;
  check_handler(L, "start_server");
  port = lx_check_port(L, SRV_PORT, "start_server");
  lua_settop(L, SRV_OPTS);
  family = lx_check_family(L, lua_istable(L, SRV_OPTS) ? SRV_OPTS : 0,
                           "start_server");
  if ((host == NULL || strcmp(host, "*") == 0) && family == AF_UNSPEC &&
      lx_addr_parse("::", port, AF_INET6, &ss) == 0) {
    int top = lua_gettop(L); /* every address: dual-stack "::" if this */
    lua_pushcfunction(L, listen_protected); /* machine has IPv6 */
    lua_pushlightuserdata(L, t->fut.loop);
    lua_pushlightuserdata(L, &ss);
    for (int i = 1; i <= SRV_OPTS; i++) lua_pushvalue(L, i);
    if (lua_pcall(L, 2 + SRV_OPTS, 1, 0) == LUA_OK) return 1;
    lua_settop(L, top); /* no IPv6 here: IPv4 only */
  }
  if (lx_addr_parse(host, port, family, &ss) == 0)
    return tcp_listen(L, t->fut.loop, &ss);
  lx_push_getaddrinfo(L); /* a name: resolve it first */
  lua_pushvalue(L, SRV_HOST);
  lua_pushvalue(L, SRV_PORT);
  lua_callk(L, 2, 1, (lua_KContext)t, resolved_k);
  return resolved_k(L, LUA_OK, (lua_KContext)t);
}

/* lasync.start_unix_server(handler, path [, {backlog=, limit=}]) -> Server */
static int core_start_unix_server(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "start_unix_server");
  const char *path = luaL_checkstring(L, 2);
  int opts = lua_istable(L, 3) ? 3 : 0, r, backlog;
  struct stat st;
  lx_server *srv;
  check_handler(L, "start_unix_server");
  if (strlen(path) >= sizeof srv->path)
    return luaL_error(L, "lasync.start_unix_server: path too long");
  if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
    unlink(path); /* a stale socket file, as asyncio removes it */
  srv = server_new(L, t->fut.loop, 1);
  backlog = listen_opts(L, srv, opts, "start_unix_server");
  uv_pipe_init(t->fut.loop->uv, &srv->h.pipe, 0);
  srv->is_pipe = 1;
  r = uv_pipe_bind(&srv->h.pipe, path);
  if (r == 0) {
    strcpy(srv->path, path); /* ours now: removed on close */
    r = uv_listen(&srv->h.stream, backlog, connection_cb);
  }
  if (r < 0) return server_fail(L, srv, r, "start_unix_server", path);
  server_push(L, srv, 1);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Server methods
** ======================================================================= */

static lx_server *check_server(lua_State *L, const char *fname) {
  server_box *b = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                                LX_MT_SERVER, fname);
  return b->srv;
}

/* server:close(): stop listening (connections already made go on) */
static int server_close_m(lua_State *L) {
  server_close(L, check_server(L, "Server:close"));
  return 0;
}

static int closed_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  if (lx_wait_resumed(t)) return lx_task_raise_cancelled(L, t);
  return 0;
}

/* server:wait_closed(): wait until the listening socket is closed */
static int server_wait_closed(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_server *srv = check_server(L, "Server:wait_closed");
  lx_task *t = lx_current_task(L, rt, "Server:wait_closed");
  lua_settop(L, 1);
  if (srv->closed) return 0;
  return lx_wait_on(L, t, &srv->closers, closed_k);
}

static int forever_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  if (lx_wait_resumed(t)) { /* cancelled: the server closes, as asyncio */
    server_close(L, ((server_box *)lua_touserdata(L, 1))->srv);
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

/* server:sockets() -> {{host=, port=}} or {{path=}}; {} once closed */
static int server_sockets(lua_State *L) {
  lx_server *srv = check_server(L, "Server:sockets");
  lua_newtable(L);
  if (push_address(L, srv) == 0) return 1;
  lua_createtable(L, 0, 2);
  if (srv->is_pipe) {
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "path");
    lua_remove(L, -2);
  } else {
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "host");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "port");
    lua_replace(L, -3);
    lua_pop(L, 1);
  }
  lua_rawseti(L, -2, 1);
  return 1;
}

static int server__tostring(lua_State *L) {
  lx_server *srv = check_server(L, "Server:__tostring");
  int n = push_address(L, srv);
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
