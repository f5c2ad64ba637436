/*
** conn.c — lasync.core._http_conn: the server side of one HTTP/1.x
** connection, parsing requests where they lie in a StreamReader's buffer
** (parse.c). Owns the connection object, next_request, the idle, head and
** body deadlines (one core timer per connection, armed only while a task
** waits), wait_peer_close and close. Bodies are body.c, responses
** response.c.
*/
#include <ctype.h>
#include <stdlib.h>
#include <strings.h> /* strncasecmp */

#include "http/http.h"

#define DEFAULT_MAX_HEAD 8192
#define DEFAULT_MAX_BODY 1048576
#define DEFAULT_MAX_HEADERS 100
#define DEFAULT_IDLE 75.0
#define DEFAULT_HEAD 60.0
#define DEFAULT_BODY 60.0

/* User values of a connection object. */
enum { UV_READER = 1, UV_WRITER, CONN_NUV = UV_WRITER };

/* {======================================================================
** The object
** ======================================================================= */

/*
** The connection at index 1 for method fname (upvalue 2 is the class's
** metatable), attached to its stream or not.
*/
static lx_http_conn *test_conn(lua_State *L, const char *fname) {
  lx_http_conn *c = lua_touserdata(L, 1);
  if (c == NULL || !lua_getmetatable(L, 1) ||
      !lua_rawequal(L, -1, lua_upvalueindex(2)))
    luaL_error(L, "lasync.http.conn:%s: expected an http connection (got "
                  "%s)", fname, luaL_typename(L, 1));
  lua_pop(L, 1);
  return c;
}

/* The connection at index 1, still attached to its stream. */
lx_http_conn *lx_http_check(lua_State *L, const char *fname) {
  lx_http_conn *c = test_conn(L, fname);
  if (c->s == NULL)
    luaL_error(L, "lasync.http.conn:%s: the connection is closed", fname);
  return c;
}

static void timer_fire(lx_loop *loop, lx_timer *timer) {
  lx_http_conn *c = lx_container_of(timer, lx_http_conn, timer);
  (void)loop;
  c->timed_out = 1;
  if (c->waiter && c->s)
    lx_waitlist_wake_first(c->peer_wait ? &c->s->closers : &c->s->readers);
}

/*
** Arm the connection's deadline timeout_ns from now (0: none), replacing
** the one armed. The caller reserved room (lx_timer_reserve) first.
*/
void lx_http_arm(lx_http_conn *c, uint64_t timeout_ns) {
  lx_http_disarm(c);
  c->timed_out = 0;
  if (timeout_ns == 0) return;
  lx_timer_arm(c->loop, &c->timer, lx_now() + timeout_ns);
}

void lx_http_disarm(lx_http_conn *c) {
  if (c->timer.idx && !c->loop->closed) lx_timer_disarm(c->loop, &c->timer);
  c->timer.idx = 0;
}

/* Let go of the stream: no more parsing, responses or waits. */
static void conn_detach(lx_http_conn *c) {
  lx_stream *s = c->s;
  lx_http_disarm(c);
  if (s == NULL) return;
  c->state = LX_CONN_DEAD;
  if (c->waiter && !c->loop->closed) /* its continuation sees c->s NULL */
    lx_waitlist_wake_first(c->peer_wait ? &s->closers : &s->readers);
  c->s = NULL;
  lx_stream_release(s);
}

static int conn__gc(lua_State *L) {
  lx_http_conn *c = test_conn(L, "__gc");
  c->waiter = NULL; /* nobody can be waiting on a collected object */
  conn_detach(c);
  return 0;
}

/* conn:close(): detach from the stream (the writer stays open) */
static int conn_close(lua_State *L) {
  conn_detach(test_conn(L, "close"));
  return 0;
}

static int conn__close(lua_State *L) {
  conn_detach(test_conn(L, "__close"));
  return 0;
}

static int conn__tostring(lua_State *L) {
  lx_http_conn *c = test_conn(L, "__tostring");
  lua_pushfstring(L, "lasync.http.conn: %p%s", (void *)c,
                  c->s ? "" : " (closed)");
  return 1;
}

/* An option of _http_conn: a positive integer, or dflt when absent. */
static lua_Integer opt_size(lua_State *L, const char *name,
                            lua_Integer dflt, lua_Integer max) {
  lua_Integer v;
  int isint;
  if (lua_getfield(L, 3, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return dflt;
  }
  v = lua_tointegerx(L, -1, &isint);
  if (!isint || v <= 0 || v > max)
    luaL_error(L, "lasync.http.conn: option '%s' must be an integer "
                  "between 1 and %I", name, max);
  lua_pop(L, 1);
  return v;
}

/* A timeout option in seconds; 0 or math.huge: none. */
static uint64_t opt_timeout(lua_State *L, const char *name, double dflt) {
  lua_Number v;
  int isnum;
  if (lua_getfield(L, 3, name) == LUA_TNIL) {
    v = dflt;
  } else {
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || v != v || v < 0)
      luaL_error(L, "lasync.http.conn: option '%s' must be a number >= 0 "
                    "(seconds)", name);
  }
  lua_pop(L, 1);
  if (v == 0 || v >= 1e9) return 0;
  return (uint64_t)(v * 1e9) > 0 ? (uint64_t)(v * 1e9) : 1;
}

/*
** _http_conn(reader, writer[, opts]) -> conn: the server side of the
** connection of reader and writer (one stream). Every argument is
** checked before anything is made.
*/
static int core_http_conn(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_stream *s = lx_stream_get(L, rt, 1, 0, "http.conn");
  lx_stream *w = lx_stream_get(L, rt, 2, 1, "http.conn");
  lua_Integer max_head, max_body, max_headers;
  uint64_t idle, head, body;
  lx_http_conn *c;
  size_t size;
  if (s != w)
    return luaL_error(L, "lasync.http.conn: the reader and the writer are "
                         "of different streams");
  if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3))
    return luaL_error(L, "lasync.http.conn: opts must be a table (got %s)",
                      luaL_typename(L, 3));
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) {
    lua_newtable(L);
    lua_replace(L, 3);
  }
  max_head = opt_size(L, "max_head", DEFAULT_MAX_HEAD, 1 << 24);
  max_body = opt_size(L, "max_body", DEFAULT_MAX_BODY,
                      (lua_Integer)1 << 50);
  max_headers = opt_size(L, "max_headers", DEFAULT_MAX_HEADERS, 10000);
  idle = opt_timeout(L, "idle_timeout", DEFAULT_IDLE);
  head = opt_timeout(L, "head_timeout", DEFAULT_HEAD);
  body = opt_timeout(L, "body_timeout", DEFAULT_BODY);
  if (s->closed)
    return luaL_error(L, "lasync.http.conn: the stream is closed");
  size = offsetof(lx_http_conn, hdr) + (size_t)max_headers *
                                           sizeof(lx_http_hdr);
  c = lua_newuserdatauv(L, size, CONN_NUV);
  memset(c, 0, offsetof(lx_http_conn, hdr));
  lx_http_parser_init(&c->hp, c->hdr, (uint32_t)max_headers,
                      (size_t)max_head, (uint64_t)max_body);
  c->s = s;
  c->loop = s->loop;
  c->timer.fire = timer_fire;
  c->idle_ns = idle;
  c->head_ns = head;
  c->body_ns = body;
  c->max_body = (uint64_t)max_body;
  c->state = LX_CONN_IDLE;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_READER); /* keeps the stream's loop alive */
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, UV_WRITER);
  lx_stream_retain(s); /* released by conn_detach */
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** next_request
** ======================================================================= */

static void trim(const char **v, size_t *len) {
  const char *p = *v, *e = p + *len;
  while (p < e && (*p == ' ' || *p == '\t')) p++;
  while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
  *v = p;
  *len = (size_t)(e - p);
}

/*
** [-0, +1] push the request whose head starts at base: names are
** lowercased in place (the bytes are consumed right after), a repeated
** name keeps its first value in headers and all of them in multi.
*/
static void push_request(lua_State *L, lx_http_conn *c, char *base) {
  llhttp_t *p = &c->hp.p;
  uint32_t i;
  int multi = 0;
  lua_createtable(L, 0, 9);
  lua_pushstring(L, llhttp_method_name((llhttp_method_t)p->method));
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, base + c->hp.url, c->hp.url_len);
  lua_setfield(L, -2, "raw_path");
  if (p->http_minor == 1)
    lua_pushliteral(L, "1.1");
  else
    lua_pushliteral(L, "1.0");
  lua_setfield(L, -2, "version");
  lua_createtable(L, 0, (int)c->hp.nhdr); /* headers */
  for (i = 0; i < c->hp.nhdr; i++) {
    lx_http_hdr *h = &c->hdr[i];
    char *name = base + h->name;
    const char *v = base + h->value;
    size_t vlen = h->value_len, k;
    for (k = 0; k < h->name_len; k++)
      name[k] = (char)tolower((unsigned char)name[k]);
    trim(&v, &vlen);
    lua_pushlstring(L, name, h->name_len);
    if (lua_rawget(L, -2) == LUA_TNIL) { /* the first of its name */
      lua_pop(L, 1);
      lua_pushlstring(L, name, h->name_len);
      lua_pushlstring(L, v, vlen);
      lua_rawset(L, -3);
      continue;
    }
    /* repeated: headers, first value, multi table */
    if (!multi) {
      lua_newtable(L);
      lua_setfield(L, -4, "multi");
      multi = 1;
    }
    lua_getfield(L, -3, "multi");
    lua_pushlstring(L, name, h->name_len);
    if (lua_rawget(L, -2) == LUA_TNIL) { /* {first, this} */
      lua_pop(L, 1);
      lua_createtable(L, 2, 0);
      lua_pushvalue(L, -3); /* the first value */
      lua_rawseti(L, -2, 1);
      lua_pushlstring(L, name, h->name_len);
      lua_pushvalue(L, -2);
      lua_rawset(L, -4);
    }
    lua_pushlstring(L, v, vlen);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 3); /* list, multi, first value */
  }
  lua_setfield(L, -2, "headers");
  c->keep_alive = (unsigned char)llhttp_should_keep_alive(p);
  lua_pushboolean(L, c->keep_alive);
  lua_setfield(L, -2, "keep_alive");
  if (p->flags & F_CONTENT_LENGTH) {
    lua_pushinteger(L, (lua_Integer)p->content_length);
    lua_setfield(L, -2, "content_length");
  }
  lua_pushboolean(L, (p->flags & F_CHUNKED) != 0);
  lua_setfield(L, -2, "chunked");
  c->expect_continue = 0;
  if (p->http_minor == 1 && lx_http_has_body(&c->hp)) {
    for (i = 0; i < c->hp.nhdr; i++) {
      lx_http_hdr *h = &c->hdr[i];
      const char *v = base + h->value;
      size_t vlen = h->value_len;
      trim(&v, &vlen);
      if (h->name_len == 6 && memcmp(base + h->name, "expect", 6) == 0 &&
          vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
        c->expect_continue = 1;
    }
  }
  lua_pushboolean(L, c->expect_continue);
  lua_setfield(L, -2, "expect_continue");
  c->minor = p->http_minor;
}

static int next_request_k(lua_State *L, int status, lua_KContext ctx);

/* A step of next_request: parse what is buffered, or wait for more. */
static int next_request_step(lua_State *L, lx_http_conn *c, lx_task *t) {
  lx_stream *s = c->s;
  size_t head_len = 0;
  int r = LX_HTTP_MORE;
  if (!c->head_started && s->len > 0) { /* the idle wait is over */
    c->head_started = 1;
    c->timed_out = 0; /* bytes came in time, whatever fired since */
    lx_http_disarm(c);
  }
  if (s->len > 0)
    r = lx_http_parse_head(&c->hp, s->buf + s->start, s->len, &head_len);
  if (r == LX_HTTP_DONE) {
    lx_http_disarm(c);
    push_request(L, c, s->buf + s->start);
    lx_stream_consume(s, head_len);
    c->state = LX_CONN_BODY;
    c->continue_sent = 0;
    c->out = LX_OUT_NONE;
    return 1;
  }
  if (r == LX_HTTP_ERROR) {
    lx_http_disarm(c);
    c->state = LX_CONN_DEAD;
    lua_pushboolean(L, 0);
    lua_pushinteger(L, c->hp.status);
    lua_pushstring(L, c->hp.msg);
    return 3;
  }
  if (s->read_err || c->timed_out) { /* closed, reset or too slow */
    int timeout = c->timed_out && c->head_started;
    lx_http_disarm(c);
    c->state = LX_CONN_DEAD;
    if (!timeout) {
      lua_pushnil(L);
      return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushinteger(L, 408);
    lua_pushliteral(L, "the request head took too long");
    return 3;
  }
  if (c->timer.idx == 0) /* armed once per phase: the head's deadline is
                            never pushed back by the bytes that arrive */
    lx_http_arm(c, c->head_started ? c->head_ns : c->idle_ns);
  c->waiter = t;
  c->peer_wait = 0;
  return lx_stream_wait_data(L, t, s, "http.conn:next_request",
                             next_request_k);
}

static int next_request_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_http_conn *c = lua_touserdata(L, 1);
  (void)status;
  c->waiter = NULL;
  if (t->must_cancel) {
    lx_http_disarm(c);
    return lx_task_raise_cancelled(L, t);
  }
  if (c->s == NULL) { /* closed meanwhile */
    lua_pushnil(L);
    return 1;
  }
  lx_timer_reserve(L, c->loop); /* the head's deadline may be armed */
  return next_request_step(L, c, t);
}

/*
** conn:next_request() -> req | nil | false, status, message (see
** docs/internals.md "HTTP layer" and the contract in the issue)
*/
static int conn_next_request(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_http_conn *c = lx_http_check(L, "next_request");
  lx_task *t = lx_current_task(L, rt, "http.conn:next_request");
  if (c->waiter)
    return luaL_error(L, "lasync.http.conn:next_request: another task is "
                         "reading from this connection");
  if (c->state == LX_CONN_DEAD) {
    lua_pushnil(L);
    return 1;
  }
  if (c->state == LX_CONN_BODY && lx_http_has_body(&c->hp) &&
      !c->hp.msg_done)
    return luaL_error(L, "lasync.http.conn:next_request: the previous "
                         "request's body was not consumed (call "
                         "discard_body)");
  lx_timer_reserve(L, c->loop); /* may raise: before anything changes */
  lua_settop(L, 1);
  lx_http_head_begin(&c->hp);
  c->hp.max_body = c->max_body; /* read_body(max) may have changed it */
  c->state = LX_CONN_IDLE;
  c->head_started = 0;
  c->minor = 1; /* until a head says otherwise: an error is answered as
                   HTTP/1.1 (Connection: close) */
  c->timed_out = 0;
  lx_http_disarm(c);
  return next_request_step(L, c, t);
}

/* }====================================================================== */

/* {======================================================================
** wait_peer_close
** ======================================================================= */

static int peer_close_k(lua_State *L, int status, lua_KContext ctx);

/*
** Wait until the peer closes or resets, leaving buffered bytes alone (a
** pipelined request stays for next_request). Past the stream's limit no
** more is read; then only the stream's close ends the wait.
*/
static int peer_close_step(lua_State *L, lx_http_conn *c, lx_task *t) {
  lx_stream *s = c->s;
  if (s == NULL || s->read_err || s->closed) return 0;
  c->waiter = t;
  if (s->len >= s->limit) {
    c->peer_wait = 1;
    return lx_wait_on(L, t, &s->closers, peer_close_k);
  }
  c->peer_wait = 0;
  return lx_stream_wait_data(L, t, s, "http.conn:wait_peer_close",
                             peer_close_k);
}

static int peer_close_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_http_conn *c = lua_touserdata(L, 1);
  (void)status;
  c->waiter = NULL;
  c->peer_wait = 0;
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  return peer_close_step(L, c, t);
}

/* conn:wait_peer_close(): returns once the peer has closed or reset */
static int conn_wait_peer_close(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_http_conn *c = lx_http_check(L, "wait_peer_close");
  lx_task *t = lx_current_task(L, rt, "http.conn:wait_peer_close");
  if (c->waiter)
    return luaL_error(L, "lasync.http.conn:wait_peer_close: another task "
                         "is reading from this connection");
  lua_settop(L, 1);
  return peer_close_step(L, c, t);
}

/* }====================================================================== */

/*
** [-0, +0] name the methods and metamethods of the class at mt
** "lasync.http.conn:<name>" (argcheck.c's table of public names, which
** only knows the runtime's own classes).
*/
static void name_class(lua_State *L, int mt) {
  int t;
  for (t = 0; t < 2; t++) {
    if (t == 0)
      lua_pushvalue(L, mt);
    else
      lua_getfield(L, mt, "__index");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING)
        lx_name_function(L, -1, "lasync.http.conn:", lua_tostring(L, -2));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

void lx_open_http(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"next_request", conn_next_request},
    {"read_body", lx_http_read_body},
    {"read_chunk", lx_http_read_chunk},
    {"discard_body", lx_http_discard_body},
    {"send", lx_http_send},
    {"send_head", lx_http_send_head},
    {"send_chunk", lx_http_send_chunk},
    {"send_end", lx_http_send_end},
    {"wait_peer_close", conn_wait_peer_close},
    {"close", conn_close},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", conn__gc},
    {"__close", conn__close},
    {"__tostring", conn__tostring},
    {NULL, NULL}
  };
  int i;
  lx_push_runtime(L);
  luaL_newmetatable(L, LX_HTTP_CONN); /* upvalues: runtime, metatable */
  for (i = 0; meta[i].name; i++) {
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, meta[i].func, 2);
    lua_setfield(L, -2, meta[i].name);
  }
  lua_createtable(L, 0, 10);
  for (i = 0; methods[i].name; i++) {
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, methods[i].func, 2);
    lua_setfield(L, -2, methods[i].name);
  }
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "lasync.http.conn");
  lua_setfield(L, -2, "__name");
  name_class(L, lua_gettop(L));
  lua_pushcclosure(L, core_http_conn, 2);
  lx_name_function(L, -1, "lasync.http.", "conn"); /* as its errors say */
  lua_setfield(L, -2, "_http_conn");
  lua_pushcfunction(L, lx_http_date);
  lx_name_function(L, -1, "lasync.http.", "date");
  lua_setfield(L, -2, "_http_date");
  lua_pushcfunction(L, lx_http_parse_date);
  lx_name_function(L, -1, "lasync.http.", "parse_date");
  lua_setfield(L, -2, "_http_parse_date");
}
