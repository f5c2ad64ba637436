/*
** udp.c — UDP endpoints (lasync.open_udp): send datagrams, and receive
** them through a queue that a task awaits with recv(). Datagrams arriving
** while nobody reads wait in the queue, up to a bound; past it the oldest
** are dropped, as a full socket buffer would. The endpoint object is
** anchored while it is open, since datagrams can arrive at any time.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "io/io.h"

#define LX_UDP_QUEUE_MAX 4096 /* datagrams kept for recv() */
#define LX_UDP_BUFSIZE 65536

typedef struct lx_udp {
  uv_udp_t h;           /* freed (with the struct) after close and __gc */
  lx_resource node;     /* in the loop's resources while open */
  lx_loop *loop;
  int ref;              /* anchor of the endpoint object while open */
  lx_waiter receivers;  /* tasks in recv(), FIFO */
  int head, count;      /* datagram queue in user value 1: slots of
                           {data, host, port}, 1..LX_UDP_QUEUE_MAX */
  int recv_err;         /* a receive error not yet raised */
  int connected;        /* remote_addr given: send() needs no address */
  unsigned char closing, closed, has_box;
  char buf[LX_UDP_BUFSIZE]; /* one receive buffer: datagrams are copied */
} lx_udp;

typedef struct udp_box {
  lx_udp *u;
} udp_box;

typedef struct send_req {
  uv_udp_send_t req;
  char data[1];
} send_req;

enum { UDP_QUEUE = 1, UDP_LOOPOBJ, UDP_NUV = UDP_LOOPOBJ };

/* {======================================================================
** Lifetime
** ======================================================================= */

static void udp_closed_cb(uv_handle_t *handle) {
  lx_udp *u = handle->data;
  lx_count_handles(-1);
  lx_list_remove(&u->node);
  u->closed = 1;
  lx_waitlist_wake_all(&u->receivers);
  if (!u->has_box) free(u);
}

static void udp_close(lua_State *L, lx_udp *u) {
  if (u->closing) return;
  u->closing = 1;
  uv_close((uv_handle_t *)&u->h, udp_closed_cb);
  if (L) lx_unanchor(L, u->loop->rt, &u->ref);
}

static void udp_close_resource(lua_State *L, lx_resource *r) {
  udp_close(L, lx_container_of(r, lx_udp, node));
}

static int udp__gc(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  udp_box *b = lx_checkclass(L, rt, 1, LX_MT_UDP, "UdpEndpoint:__gc");
  lx_udp *u = b->u;
  if (u == NULL) return 0;
  b->u = NULL;
  u->has_box = 0;
  if (u->closed)
    free(u);
  else
    udp_close(L, u); /* the anchor is left only when called by hand */
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Receiving
** ======================================================================= */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  lx_udp *u = handle->data;
  (void)suggested;
  buf->base = u->buf;
  buf->len = sizeof u->buf;
}

/* Queue a datagram: {data, host, port} in slot head+count. */
static void recv_cb(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  lx_udp *u = handle->data;
  lua_State *L = u->loop->L;
  int top, slot;
  (void)flags;
  if (nread < 0) {
    u->recv_err = (int)nread;
    lx_waitlist_wake_first(&u->receivers);
    return;
  }
  if (addr == NULL || L == NULL) return; /* nothing more to read */
  top = lua_gettop(L);
  lx_push_anchored(L, u->loop->rt, u->ref);
  lua_getiuservalue(L, -1, UDP_QUEUE);
  if (u->count == LX_UDP_QUEUE_MAX) { /* full: drop the oldest */
    u->head = (u->head + 1) % LX_UDP_QUEUE_MAX;
    u->count--;
  }
  slot = (u->head + u->count) % LX_UDP_QUEUE_MAX;
  lua_createtable(L, 3, 0);
  lua_pushlstring(L, buf->base, (size_t)nread);
  lua_rawseti(L, -2, 1);
  lx_addr_push(L, addr);
  lua_rawseti(L, -3, 3);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, -2, slot + 1);
  u->count++;
  lua_settop(L, top);
  lx_waitlist_wake_first(&u->receivers);
}

static lx_udp *check_udp(lua_State *L, const char *fname) {
  return lx_checkbox(L, lua_touserdata(L, lua_upvalueindex(1)), 1, LX_MT_UDP,
                     fname);
}

/* [-0, +3] pop the oldest datagram: data, host, port */
static int pop_datagram(lua_State *L, lx_udp *u) {
  lua_getiuservalue(L, 1, UDP_QUEUE);
  lua_rawgeti(L, -1, u->head + 1);
  lua_pushnil(L);
  lua_rawseti(L, -3, u->head + 1);
  u->head = (u->head + 1) % LX_UDP_QUEUE_MAX;
  u->count--;
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  lua_rawgeti(L, -3, 3);
  return 3;
}

static int try_recv(lua_State *L, lx_udp *u) {
  if (u->count > 0) return pop_datagram(L, u);
  if (u->recv_err) {
    int err = u->recv_err;
    u->recv_err = 0;
    return lx_os_error(L, err, "UdpEndpoint:recv", NULL);
  }
  if (u->closing)
    return luaL_error(L, "lasync.UdpEndpoint:recv: the endpoint is closed");
  return -1;
}

/* A receiver woken for a datagram (or an error) and then cancelled before
   it ran leaves it queued: wake the next receiver, or that one would wait
   while a datagram sits in the queue (asyncio's Queue.get does the same). */
static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_udp *u = ((udp_box *)lua_touserdata(L, 1))->u;
  int n;
  (void)status;
  if (t->must_cancel) {
    if (t->granted && u && (u->count > 0 || u->recv_err))
      lx_waitlist_wake_first(&u->receivers);
    return lx_task_raise_cancelled(L, t);
  }
  if (u == NULL) return luaL_error(L, "lasync.UdpEndpoint:recv: " LX_FINALIZED);
  n = try_recv(L, u);
  return n >= 0 ? n : lx_wait_on(L, t, &u->receivers, recv_k);
}

/* ep:recv() -> data, host, port of the next datagram */
static int udp_recv(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_udp *u = check_udp(L, "UdpEndpoint:recv");
  lx_task *t = lx_current_task(L, rt, "UdpEndpoint:recv");
  int n;
  lua_settop(L, 1);
  n = try_recv(L, u);
  return n >= 0 ? n : lx_wait_on(L, t, &u->receivers, recv_k);
}

/* }====================================================================== */

/* {======================================================================
** Sending and the rest
** ======================================================================= */

static void send_cb(uv_udp_send_t *req, int status) {
  (void)status; /* UDP: a lost datagram is not reported */
  free(lx_container_of(req, send_req, req));
}

/* ep:send(data [, host, port]): never waits; host and port are needed
   unless the endpoint has a remote_addr */
static int udp_send(lua_State *L) {
  lx_udp *u = check_udp(L, "UdpEndpoint:send");
  size_t len;
  const char *data = lx_checklstring(L, 2, &len);
  struct sockaddr_storage ss;
  const struct sockaddr *to = NULL;
  uv_buf_t buf;
  send_req *req;
  int r;
  if (u->closing)
    return luaL_error(L, "lasync.UdpEndpoint:send: the endpoint is closed");
  if (!lua_isnoneornil(L, 3)) {
    const char *host = lx_checkcstring(L, 3, "UdpEndpoint:send", "host");
    int port = lx_check_port(L, 4, "UdpEndpoint:send");
    if (u->connected)
      return luaL_error(L, "lasync.UdpEndpoint:send: the endpoint has a "
                           "remote_addr: send without an address");
    if (lx_addr_parse(host, port, AF_UNSPEC, &ss) < 0)
      return luaL_error(L, "lasync.UdpEndpoint:send: not a numeric address: "
                           "%s (resolve it with lasync.getaddrinfo)", host);
    to = (const struct sockaddr *)&ss;
  } else if (!u->connected) {
    return luaL_error(L, "lasync.UdpEndpoint:send: no address given and no "
                         "remote_addr");
  }
  buf = uv_buf_init((char *)data, (unsigned)len);
  r = uv_udp_try_send(&u->h, &buf, 1, to);
  if (r >= 0) return 0;
  if (r != UV_EAGAIN) return lx_os_error(L, r, "UdpEndpoint:send", NULL);
  req = malloc(offsetof(send_req, data) + len); /* the socket is busy */
  if (req == NULL) return luaL_error(L, "%s: out of memory", lx_fname(L, NULL));
  memcpy(req->data, data, len);
  buf = uv_buf_init(req->data, (unsigned)len);
  r = uv_udp_send(&req->req, &u->h, &buf, 1, to, send_cb);
  if (r < 0) {
    free(req);
    return lx_os_error(L, r, "UdpEndpoint:send", NULL);
  }
  return 0;
}

/* ep:close() */
static int udp_close_m(lua_State *L) {
  udp_close(L, check_udp(L, "UdpEndpoint:close"));
  return 0;
}

static int udp_is_closing(lua_State *L) {
  lua_pushboolean(L, check_udp(L, "UdpEndpoint:is_closing")->closing);
  return 1;
}

/* ep:address() -> host, port it is bound to */
static int udp_address(lua_State *L) {
  lx_udp *u = check_udp(L, "UdpEndpoint:address");
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  if (u->closing || uv_udp_getsockname(&u->h, (struct sockaddr *)&ss,
                                       &len) < 0)
    return 0;
  lx_addr_push(L, (struct sockaddr *)&ss);
  return 2;
}

/* ep:peer() -> host, port of its remote_addr, or nothing */
static int udp_peer(lua_State *L) {
  lx_udp *u = check_udp(L, "UdpEndpoint:peer");
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  if (u->closing || !u->connected ||
      uv_udp_getpeername(&u->h, (struct sockaddr *)&ss, &len) < 0)
    return 0;
  lx_addr_push(L, (struct sockaddr *)&ss);
  return 2;
}

static int udp__tostring(lua_State *L) {
  udp_box *b = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                             LX_MT_UDP, "UdpEndpoint:__tostring");
  lx_udp *u = b->u;
  if (u == NULL) {
    lua_pushliteral(L, "lasync.UdpEndpoint (finalized)");
    return 1;
  }
  lua_pushfstring(L, "lasync.UdpEndpoint: %p (%d datagram(s) queued)%s",
                  (void *)u, u->count, u->closing ? " closed" : "");
  return 1;
}

/* Read {host, port} at field `name` of the options into *ss; 0 if the
   option is absent. The Lua side has resolved host names already. */
static int opt_addr(lua_State *L, int opts, const char *name,
                    struct sockaddr_storage *ss) {
  lua_Integer port = 0;
  int isint = 1;
  if (lua_getfield(L, opts, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "lasync.open_udp: option '%s' must be {host, port}", name);
  lua_rawgeti(L, -1, 1);
  if (lua_rawgeti(L, -2, 2) != LUA_TNIL)
    port = lua_tointegerx(L, -1, &isint);
  if (!isint || port < 0 || port > 65535)
    luaL_error(L, "lasync.open_udp: option '%s': port must be an integer "
                  "from 0 to 65535 (got %s)",
               name, luaL_tolstring(L, -1, NULL));
  lua_pushfstring(L, "option '%s'", name); /* for the NUL check */
  if (lua_type(L, -3) != LUA_TSTRING ||
      lx_addr_parse(lx_checkcstring(L, -3, "open_udp", lua_tostring(L, -1)),
                    (int)port, AF_UNSPEC, ss) < 0)
    luaL_error(L, "lasync.open_udp: option '%s': not a numeric address",
               name);
  lua_pop(L, 4);
  return 1;
}

static int opt_flag(lua_State *L, int opts, const char *name) {
  int v = lua_getfield(L, opts, name) != LUA_TNIL && lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* [-0, +1] push a new, anchored endpoint of this address family */
static lx_udp *udp_new(lua_State *L, lx_runtime *rt, lx_loop *loop,
                       int family) {
  lx_udp *u = calloc(1, sizeof *u);
  udp_box *b;
  int r;
  if (u == NULL) luaL_error(L, "lasync.open_udp: out of memory");
  u->loop = loop;
  u->ref = LUA_NOREF;
  lx_waitlist_init(&u->receivers);
  u->node.close = udp_close_resource;
  r = uv_udp_init_ex(loop->uv, &u->h, (unsigned)family);
  if (r < 0) {
    free(u);
    lx_os_error(L, r, "open_udp", NULL);
  }
  lx_count_handles(1);
  u->h.data = u;
  b = lua_newuserdatauv(L, sizeof *b, UDP_NUV); /* owns u from here */
  b->u = u;
  u->has_box = 1;
  lx_setclass(L, rt, LX_MT_UDP);
  lua_createtable(L, 16, 0);
  lua_setiuservalue(L, -2, UDP_QUEUE);
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->self_ref);
  lua_setiuservalue(L, -2, UDP_LOOPOBJ);
  lx_list_add(&loop->resources, &u->node);
  u->ref = lx_anchor(L, rt, -1);
  return u;
}

/* The options of lasync._open_udp, read before anything is created. */
typedef struct udp_opts {
  struct sockaddr_storage local, remote;
  int has_remote, reuse_port, broadcast;
} udp_opts;

/* Bind u (without SO_REUSEADDR: a port in use is EADDRINUSE, as asyncio
   since bpo-37228), connect it, start receiving. 0 or a libuv error, with
   *at the address it concerns (NULL if none). */
static int udp_start(lx_udp *u, const udp_opts *o,
                     const struct sockaddr_storage **at) {
  int r = 0;
  *at = &o->local;
  if (o->reuse_port) r = lx_reuse_port((uv_handle_t *)&u->h);
  if (r == 0) r = uv_udp_bind(&u->h, (const struct sockaddr *)&o->local, 0);
  if (r == 0 && o->has_remote) {
    *at = &o->remote;
    r = uv_udp_connect(&u->h, (const struct sockaddr *)&o->remote);
    u->connected = r == 0;
  }
  if (r == 0) *at = NULL;
  if (r == 0 && o->broadcast) r = uv_udp_set_broadcast(&u->h, 1);
  if (r == 0) r = uv_udp_recv_start(&u->h, alloc_cb, recv_cb);
  return r;
}

/*
** lasync._open_udp{local_addr=, remote_addr=, reuse_port=, broadcast=}
** with numeric addresses (lasync.open_udp checks its argument and
** resolves names, in Lua).
*/
static int core_open_udp(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_loop *loop = lx_running_loop(L, rt, "open_udp");
  const struct sockaddr_storage *at;
  udp_opts o;
  int has_local, family, r;
  lx_udp *u;
  lx_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  has_local = opt_addr(L, 1, "local_addr", &o.local);
  o.has_remote = opt_addr(L, 1, "remote_addr", &o.remote);
  o.reuse_port = opt_flag(L, 1, "reuse_port");
  o.broadcast = opt_flag(L, 1, "broadcast");
  family = has_local      ? o.local.ss_family
           : o.has_remote ? o.remote.ss_family
                          : AF_INET;
  if (!has_local) lx_addr_parse(NULL, 0, family, &o.local); /* any, 0 */
  u = udp_new(L, rt, loop, family); /* at 2 */
  r = udp_start(u, &o, &at);
  if (r < 0) {
    udp_close(L, u);
    if (at) lx_addr_push_text(L, (const struct sockaddr *)at);
    return lx_os_error(L, r, "open_udp", at ? lua_tostring(L, -1) : NULL);
  }
  return 1;
}

/* }====================================================================== */

void lx_open_udp(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"send", udp_send},
    {"recv", udp_recv},
    {"close", udp_close_m},
    {"is_closing", udp_is_closing},
    {"address", udp_address},
    {"peer", udp_peer},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", udp__gc},
    {"__close", udp_close_m},
    {"__tostring", udp__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"_open_udp", core_open_udp},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_UDP, "lasync.UdpEndpoint", methods, meta);
  lx_setfuncs(L, funcs);
}
