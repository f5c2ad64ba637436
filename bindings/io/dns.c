/*
** dns.c — name resolution on libuv's thread pool (getaddrinfo,
** getnameinfo) and the conversions between socket addresses and Lua
** values (host string and port number) that the sockets share.
*/
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

/* {======================================================================
** Addresses
** ======================================================================= */

/* [-0, +2] push the host string and port number of a socket address */
void lx_addr_push(lua_State *L, const struct sockaddr *sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uv_ip4_name(in, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
}

/* [-0, +1] push "host:port" ("[host]:port" for IPv6) for error messages */
void lx_addr_push_text(lua_State *L, const struct sockaddr *sa) {
  lx_addr_push(L, sa);
  lua_pushfstring(L, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
                  lua_tostring(L, -2), (int)lua_tointeger(L, -1));
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/*
** Parse a numeric host and a port into *ss; return 0 or a libuv error.
** "*", "" and NULL mean every address ("0.0.0.0", or "::" for family 6).
*/
int lx_addr_parse(const char *host, int port, int family,
                  struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (host == NULL || *host == '\0' || strcmp(host, "*") == 0)
    host = family == AF_INET6 ? "::" : "0.0.0.0";
  if (strchr(host, ':'))
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
  return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

/*
** The port argument at idx: an integer 0..65535, or a numeric string.
** The message shows a bad number or string itself, else its type; a
** missing argument reads "nil", as the caller wrote nothing there.
*/
int lx_check_port(lua_State *L, int idx, const char *fname) {
  int isint, type = lua_type(L, idx);
  lua_Integer port = lua_tointegerx(L, idx, &isint);
  if (!isint || port < 0 || port > 65535)
    luaL_error(L, "lasync.%s: port must be an integer from 0 to 65535 "
                  "(got %s)", fname,
               type == LUA_TNUMBER || type == LUA_TSTRING
                   ? luaL_tolstring(L, idx, NULL)
                   : type == LUA_TNONE ? "nil" : luaL_typename(L, idx));
  return (int)port;
}

/* }====================================================================== */

/* {======================================================================
** getaddrinfo
** ======================================================================= */

typedef struct gai_op {
  lx_op op;
  uv_getaddrinfo_t req;
  struct addrinfo *res;
  lx_pooled pooled; /* in its loop's list until gai_cb */
} gai_op;

/*
** Raise a lookup's failure as an OSError. EAI_* codes are not errno
** values (libuv numbers them -3000 and down, the C library differently
** on each system), so such an error has `code` but a nil `errno`.
*/
static int raise_dns_error(lua_State *L, int err, const char *fname,
                           const char *target) {
  lx_os_error_new(L, err, fname, target);
  if (strncmp(uv_err_name(err), "EAI_", 4) == 0) {
    lua_pushnil(L);
    lua_setfield(L, -2, "errno");
  }
  return lua_error(L);
}

/*
** The name getaddrinfo's errors give: "getaddrinfo", or the function it
** resolves for (upvalue 2, see lx_push_getaddrinfo), whose own errors
** name "host:port" as the target.
*/
static const char *gai_fname(lua_State *L) {
  const char *caller = lua_tostring(L, lua_upvalueindex(2));
  return caller ? caller : "getaddrinfo";
}

/*
** [-0, +1] push the target of getaddrinfo's errors: the host, or for a
** caller "host:port", with an IPv6 host in brackets as in addresses.
*/
static const char *gai_target(lua_State *L) {
  if (lua_isstring(L, lua_upvalueindex(2)) && lua_isstring(L, 2))
    return lua_pushfstring(L, strchr(lua_tostring(L, 1), ':') ? "[%s]:%s"
                                                               : "%s:%s",
                           lua_tostring(L, 1), lua_tostring(L, 2));
  lua_pushvalue(L, 1);
  return lua_tostring(L, -1);
}

static void gai_abort(lx_op *op) {
  uv_cancel((uv_req_t *)&((gai_op *)op)->req);
}

/* A completed lookup nobody takes (see lx_op.dispose): with its results */
static void gai_dispose(lx_op *op) {
  gai_op *g = (gai_op *)op;
  if (g->res) uv_freeaddrinfo(g->res);
  free(g);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  gai_op *g = lx_container_of(req, gai_op, req);
  g->res = res;
  lx_list_remove(&g->pooled.node);
  if (lx_op_finish(&g->op, status)) gai_dispose(&g->op); /* cancelled */
}

static const char *family_name(int family) {
  return family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" : "unix";
}

/* [-0, +1] push the addresses as {{family=, host=, port=, socktype=}, ...} */
static void push_addrinfo(lua_State *L, const struct addrinfo *ai) {
  int n = 0;
  lua_newtable(L);
  for (; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, family_name(ai->ai_family));
    lua_setfield(L, -2, "family");
    lx_addr_push(L, ai->ai_addr);
    lua_setfield(L, -3, "port");
    lua_setfield(L, -2, "host");
    lua_pushstring(L, ai->ai_socktype == SOCK_DGRAM ? "dgram" : "stream");
    lua_setfield(L, -2, "socktype");
    lua_rawseti(L, -2, ++n);
  }
}

static int getaddrinfo_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  gai_op *g = (gai_op *)lx_op_resumed(t);
  (void)status;
  if (t->must_cancel) {
    if (g) gai_dispose(&g->op);
    return lx_task_raise_cancelled(L, t);
  }
  if (g->op.status < 0) {
    int err = g->op.status;
    free(g);
    return raise_dns_error(L, err, gai_fname(L), gai_target(L));
  }
  push_addrinfo(L, g->res);
  uv_freeaddrinfo(g->res);
  free(g);
  return 1;
}

/* Family option ("inet", "inet6", nil) as AF_*; errors name fname. */
int lx_check_family(lua_State *L, int optidx, const char *fname) {
  const char *family;
  if (optidx == 0 || lua_getfield(L, optidx, "family") == LUA_TNIL) {
    if (optidx) lua_pop(L, 1);
    return AF_UNSPEC;
  }
  family = lx_checkcstring(L, -1, fname, "option 'family'");
  lua_pop(L, 1); /* the options table keeps the string */
  if (family && strcmp(family, "inet") == 0) return AF_INET;
  if (family && strcmp(family, "inet6") == 0) return AF_INET6;
  if (family && strcmp(family, "any") == 0) return AF_UNSPEC;
  return luaL_error(L, "lasync.%s: option 'family' must be \"inet\", "
                       "\"inet6\" or \"any\"", fname);
}

/*
** lasync.getaddrinfo(host [, port [, {family=, socktype=}]]) ->
** {{family=, host=, port=, socktype=}, ...}
*/
static int core_getaddrinfo(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "getaddrinfo");
  const char *host = lx_checkcstring(L, 1, "getaddrinfo", "host");
  const char *service = NULL;
  struct addrinfo hints;
  gai_op *g;
  int r, opts = lua_istable(L, 3) ? 3 : 0;
  memset(&hints, 0, sizeof hints);
  if (*host == '\0') /* the C library has no meaning for it */
    return luaL_error(L, "lasync.getaddrinfo: host is empty");
  if (!lua_isnoneornil(L, 2)) { /* as a string, kept on the stack */
    lua_pushinteger(L, lx_check_port(L, 2, "getaddrinfo"));
    lua_tostring(L, -1);
    lua_replace(L, 2);
    service = lua_tostring(L, 2);
  }
  hints.ai_family = lx_check_family(L, opts, "getaddrinfo");
  hints.ai_socktype = SOCK_STREAM;
  if (opts && lua_getfield(L, opts, "socktype") != LUA_TNIL) {
    const char *st = lx_checkcstring(L, -1, "getaddrinfo",
                                     "option 'socktype'");
    if (st && strcmp(st, "dgram") == 0)
      hints.ai_socktype = SOCK_DGRAM;
    else if (!st || strcmp(st, "stream") != 0)
      luaL_error(L, "lasync.getaddrinfo: option 'socktype' must be "
                    "\"stream\" or \"dgram\"");
  }
  lua_settop(L, 2);
  g = malloc(sizeof *g);
  if (g == NULL) return luaL_error(L, "lasync.getaddrinfo: out of memory");
  g->op.abort = gai_abort;
  g->op.dispose = gai_dispose;
  g->res = NULL;
  r = uv_getaddrinfo(t->fut.loop->uv, &g->req, gai_cb, host, service, &hints);
  if (r < 0) {
    free(g);
    return raise_dns_error(L, r, gai_fname(L), gai_target(L));
  }
  lx_pooled_add(t->fut.loop, &g->pooled, &g->req);
  return lx_op_await(L, t, &g->op, getaddrinfo_k);
}

/* }====================================================================== */

/* {======================================================================
** getnameinfo
** ======================================================================= */

typedef struct gni_op {
  lx_op op;
  uv_getnameinfo_t req;
  lx_pooled pooled; /* in its loop's list until gni_cb */
} gni_op;

static void gni_abort(lx_op *op) {
  uv_cancel((uv_req_t *)&((gni_op *)op)->req);
}

static void gni_dispose(lx_op *op) {
  free(op); /* the names are in the request itself */
}

static void gni_cb(uv_getnameinfo_t *req, int status, const char *hostname,
                   const char *service) {
  gni_op *g = lx_container_of(req, gni_op, req);
  (void)hostname; /* copied by libuv into req->host and req->service */
  (void)service;
  lx_list_remove(&g->pooled.node);
  if (lx_op_finish(&g->op, status)) free(g);
}

static int getnameinfo_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  gni_op *g = (gni_op *)lx_op_resumed(t);
  (void)status;
  if (t->must_cancel) {
    free(g);
    return lx_task_raise_cancelled(L, t);
  }
  if (g->op.status < 0) {
    int err = g->op.status;
    free(g);
    return raise_dns_error(L, err, "getnameinfo", lua_tostring(L, 1));
  }
  lua_pushstring(L, g->req.host);
  lua_pushstring(L, g->req.service);
  free(g);
  return 2;
}

/* lasync.getnameinfo(host, port) -> hostname, service */
static int core_getnameinfo(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t = lx_current_task(L, rt, "getnameinfo");
  const char *host = lx_checkcstring(L, 1, "getnameinfo", "host");
  int port = lx_check_port(L, 2, "getnameinfo"), r;
  struct sockaddr_storage ss;
  gni_op *g;
  lua_settop(L, 2);
  if ((r = lx_addr_parse(host, port, AF_UNSPEC, &ss)) < 0)
    return luaL_error(L, "lasync.getnameinfo: not a numeric address: %s",
                      host);
  g = malloc(sizeof *g);
  if (g == NULL) return luaL_error(L, "lasync.getnameinfo: out of memory");
  g->op.abort = gni_abort;
  g->op.dispose = gni_dispose;
  r = uv_getnameinfo(t->fut.loop->uv, &g->req, gni_cb,
                     (const struct sockaddr *)&ss, 0);
  if (r < 0) {
    free(g);
    return lx_os_error(L, r, "getnameinfo", host);
  }
  lx_pooled_add(t->fut.loop, &g->pooled, &g->req);
  return lx_op_await(L, t, &g->op, getnameinfo_k);
}

/* }====================================================================== */

/*
** [-0, +1] push lasync.getaddrinfo, for C code that resolves names on
** behalf of `caller` (e.g. "open_connection"): its lookup errors name the
** caller, with "host:port" as the target (upvalue 2).
*/
void lx_push_getaddrinfo(lua_State *L, const char *caller) {
  lx_push_runtime(L);
  lua_pushstring(L, caller);
  lua_pushcclosure(L, core_getaddrinfo, 2);
}

void lx_open_dns(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"getaddrinfo", core_getaddrinfo},
    {"getnameinfo", core_getnameinfo},
    {NULL, NULL}
  };
  lx_setfuncs(L, funcs);
}
