/*
** tls_conn.c — how connections get TLS: the ssl options of the
** connection and server functions (checked before anything connects or
** listens), the default client context of ssl = true, the server's
** handshake before its handler, and w:start_tls. The engine and the
** handshake itself are tls.c's.
*/
#include <string.h>

#include "io/io.h"

/* {======================================================================
** Options
** ======================================================================= */

#define HANDSHAKE_TIMEOUT 60 /* asyncio's ssl_handshake_timeout */
#define SHUTDOWN_TIMEOUT 30  /* asyncio's ssl_shutdown_timeout */

/* A timeout option (the value on top, not nil): positive seconds. */
static double opt_seconds(lua_State *L, const char *fname,
                          const char *name) {
  lua_Number v = lua_tonumber(L, -1);
  if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0))
    luaL_error(L, "lasync.%s: option '%s' must be a positive number of "
                  "seconds (got %s)", fname, name,
               luaL_tolstring(L, -1, NULL));
  return (double)v;
}

/* server_hostname (the value on top, not nil): a client's, a string */
static const char *opt_hostname(lua_State *L, const char *fname,
                                int server) {
  size_t len;
  const char *hn;
  if (server)
    luaL_error(L, "lasync.%s: option 'server_hostname' is for clients",
               fname);
  hn = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
  if (hn == NULL || memchr(hn, '\0', len) != NULL)
    luaL_error(L, "lasync.%s: option 'server_hostname' must be a string "
                  "(got %s)", fname, luaL_typename(L, -1));
  return hn;
}

/*
** Read the timeouts and server_hostname of the options table at opts
** into *o (start_tls has only these; the connection functions ssl too).
** o->hostname points into the table.
*/
static void read_tls_opts(lua_State *L, int opts, const char *fname,
                          int server, lx_tls_opts *o) {
  if (lua_getfield(L, opts, "ssl_handshake_timeout") != LUA_TNIL)
    o->handshake_timeout = opt_seconds(L, fname, "ssl_handshake_timeout");
  if (lua_getfield(L, opts, "ssl_shutdown_timeout") != LUA_TNIL)
    o->shutdown_timeout = opt_seconds(L, fname, "ssl_shutdown_timeout");
  if (lua_getfield(L, opts, "server_hostname") != LUA_TNIL)
    o->hostname = opt_hostname(L, fname, server);
  lua_pop(L, 3);
}

static const char default_ctx_key = 'c'; /* registry: ssl = true's */

/*
** The context of ssl = true: a default client context (lasync.ssl.context
** with no options), made at its first use and kept in the registry, once
** per runtime (loading the system's CA store is not for every connection).
*/
static lx_sslctx *default_ctx(lua_State *L, lx_runtime *rt) {
  lx_sslctx *c;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &default_ctx_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, lx_sslctx_new, 1);
    lua_call(L, 0, 1); /* SSLError if the CA store cannot be read */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &default_ctx_key);
  }
  c = lua_touserdata(L, -1);
  lua_pop(L, 1); /* the registry keeps it */
  return c;
}

/*
** The ssl options (ssl, server_hostname, ssl_handshake_timeout,
** ssl_shutdown_timeout) of a connection function fname (server: one of
** start_server's) in the options table at opts (0: none), checked into
** *o before anything connects or listens: 0 when no TLS is asked for
** (o->ctx NULL), else 1. o->ctx and o->hostname live as long as the table
** holds them, or, for ssl = true, as long as the runtime.
*/
int lx_tls_check_opts(lua_State *L, int opts, const char *fname, int server,
                      lx_tls_opts *o) {
  lx_runtime *rt;
  int t;
  memset(o, 0, sizeof *o);
  o->handshake_timeout = HANDSHAKE_TIMEOUT;
  o->shutdown_timeout = SHUTDOWN_TIMEOUT;
  if (opts == 0) return 0;
  t = lua_getfield(L, opts, "ssl");
  if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
    static const char *const needs[] = {"server_hostname",
      "ssl_handshake_timeout", "ssl_shutdown_timeout", NULL};
    int i;
    for (i = 0; needs[i]; i++) {
      if (lua_getfield(L, opts, needs[i]) != LUA_TNIL)
        luaL_error(L, "lasync.%s: option '%s' needs option 'ssl'", fname,
                   needs[i]);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
  }
  rt = lx_runtime_get(L);
  if (t == LUA_TBOOLEAN && !server)
    o->ctx = default_ctx(L, rt);
  else if ((o->ctx = lx_testclass(L, rt, -1, LX_MT_SSLCTX)) == NULL)
    luaL_error(L, "lasync.%s: option 'ssl' must be %s (got %s)", fname,
               server ? "a server lasync.ssl.context"
                      : "true or a lasync.ssl.context",
               luaL_typename(L, -1));
  if (o->ctx->server != server)
    luaL_error(L, "lasync.%s: option 'ssl' must be a %s context (got a %s "
                  "one)", fname, server ? "server" : "client",
               server ? "client" : "server");
  lua_pop(L, 1);
  if (o->ctx->ctx == NULL) /* its __gc was called by hand */
    luaL_error(L, "lasync.%s: option 'ssl': the context is not usable",
               fname);
  read_tls_opts(L, opts, fname, server, o);
  return 1;
}

/*
** [-0, +1] push the key under which a client context keeps the session
** of a connection to addr, port (the values at those indices; a socket's
** path and nil) for server_hostname hn (NULL: none): a session is offered
** again only to the same name at the same place.
*/
void lx_tls_push_session_key(lua_State *L, const char *hn, int addr,
                             int port) {
  addr = lua_absindex(L, addr);
  port = lua_absindex(L, port);
  if (hn == NULL) hn = "";
  lua_pushfstring(L, "%d:%s|", (int)strlen(hn), hn);
  luaL_tolstring(L, addr, NULL);
  lua_pushliteral(L, "|");
  luaL_tolstring(L, port, NULL);
  lua_concat(L, 4);
}

/* }====================================================================== */

/* {======================================================================
** Tasks that await the handshake
** ======================================================================= */

/* A TLS connection's task: handler, ctx, timeouts, reader, writer */
enum { SERVE_HANDLER = 1, SERVE_CTX, SERVE_HS_TIMEOUT, SERVE_SD_TIMEOUT,
       SERVE_READER, SERVE_WRITER };

static const char *serve_fname(lua_State *L) {
  lx_stream *s = *(lx_stream **)lua_touserdata(L, SERVE_WRITER);
  return s && s->is_pipe ? "start_unix_server" : "start_server";
}

static int serve_done_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

/* The handshake moved: run the handler once it is done. */
static int serve_k(lua_State *L, int status, lua_KContext ctx) {
  int r = lx_tls_handshake(L, (lx_task *)ctx, SERVE_WRITER, serve_fname(L),
                           serve_k);
  (void)status;
  if (r >= 0) return r;
  lua_settop(L, SERVE_WRITER);
  lua_pushvalue(L, SERVE_HANDLER);
  lua_pushvalue(L, SERVE_READER);
  lua_pushvalue(L, SERVE_WRITER);
  lua_callk(L, 2, 0, ctx, serve_done_k);
  return 0;
}

/*
** The function of the task of a connection to a TLS server (server.c):
** lx_tls_serve(handler, ctx, handshake_timeout, shutdown_timeout,
** reader, writer) does the handshake, then handler(reader, writer). A
** failed handshake fails the task, which the server reports.
*/
int lx_tls_serve(lua_State *L) {
  const char *fname = serve_fname(L);
  lx_task *t = lx_current_task(L, lx_runtime_get(L), fname);
  lx_tls_opts o;
  o.ctx = lua_touserdata(L, SERVE_CTX);
  o.hostname = NULL;
  o.handshake_timeout = lua_tonumber(L, SERVE_HS_TIMEOUT);
  o.shutdown_timeout = lua_tonumber(L, SERVE_SD_TIMEOUT);
  lx_tls_start(L, *(lx_stream **)lua_touserdata(L, SERVE_WRITER), &o,
               NULL, fname);
  return serve_k(L, LUA_OK, (lua_KContext)t);
}

static int start_tls_k(lua_State *L, int status, lua_KContext ctx) {
  int r = lx_tls_handshake(L, (lx_task *)ctx, 1, "StreamWriter:start_tls",
                           start_tls_k);
  (void)status;
  return r >= 0 ? r : 0;
}

/*
** w:start_tls(ctx[, opts]) (asyncio's StreamWriter.start_tls): put TLS on
** a live plain connection and await the handshake; a server context
** makes this end the server. opts: server_hostname,
** ssl_handshake_timeout, ssl_shutdown_timeout. A client keeps its
** session under server_hostname and the peer's address.
*/
int lx_tls_start_tls_m(lua_State *L) {
  static const char *const fname = "StreamWriter:start_tls";
  static const char *const known[] = {"server_hostname",
    "ssl_handshake_timeout", "ssl_shutdown_timeout", NULL};
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_stream *s = lx_checkbox(L, rt, 1, LX_MT_WRITER, fname);
  lx_task *t = lx_current_task(L, rt, fname);
  lx_tls_opts o;
  const char *key = NULL;
  lua_settop(L, 3); /* a missing argument is nil, as Lua's type() says */
  memset(&o, 0, sizeof o);
  o.handshake_timeout = HANDSHAKE_TIMEOUT;
  o.shutdown_timeout = SHUTDOWN_TIMEOUT;
  if ((o.ctx = lx_testclass(L, rt, 2, LX_MT_SSLCTX)) == NULL)
    return luaL_error(L, "lasync.%s: argument #1 must be a "
                         "lasync.ssl.context (got %s)", fname,
                      luaL_typename(L, 2));
  if (!lua_isnil(L, 3) && !lua_istable(L, 3))
    return luaL_error(L, "lasync.%s: argument #2 must be a table (got %s)",
                      fname, luaL_typename(L, 3));
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) { /* no unknown keys: a typo must not pass */
      int i, ok = 0;
      lua_pop(L, 1);
      for (i = 0; known[i] && !ok; i++)
        ok = lua_type(L, -1) == LUA_TSTRING &&
             strcmp(lua_tostring(L, -1), known[i]) == 0;
      if (!ok)
        return luaL_error(L, "lasync.%s: unknown option '%s'", fname,
                          luaL_tolstring(L, -1, NULL));
    }
    read_tls_opts(L, 3, fname, o.ctx->server, &o);
  }
  if (!lx_waitlist_empty(&s->readers))
    return luaL_error(L, "lasync.%s: another task is reading from this "
                         "stream", fname);
  if (!o.ctx->server && o.ctx->check_hostname && o.hostname == NULL)
    return luaL_error(L, "lasync.%s: a context that checks host names "
                         "needs option 'server_hostname'", fname);
  if (o.hostname && !o.ctx->server) { /* the session's key */
    lua_getfield(L, 1, "get_extra_info");
    lua_pushvalue(L, 1);
    lua_pushliteral(L, "peername");
    if (lua_pcall(L, 2, 2, 0) == LUA_OK && !lua_isnil(L, -2)) {
      lx_tls_push_session_key(L, o.hostname, -2, -1);
      key = lua_tostring(L, -1);
    }
  }
  lx_tls_start(L, s, &o, key, fname);
  lua_settop(L, 3);
  return start_tls_k(L, LUA_OK, (lua_KContext)t);
}

/* }====================================================================== */
