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

/*
** User values of a connection object: its streams, and what the serve
** loop gives (opts.request_mt, opts.headers_mt, opts.setup_headers) to
** have the metatables set here, without a Lua call per request.
*/
enum { UV_READER = 1, UV_WRITER, UV_REQ_MT, UV_HDR_MT, UV_SETUP,
       CONN_NUV = UV_SETUP };

/*
** The request's field names, upvalues of next_request from K_FIRST on:
** pushing an upvalue is cheaper than lua_setfield's interning of a C
** string, done nine times per request.
*/
enum { K_METHOD, K_RAW_PATH, K_VERSION, K_HEADERS, K_KEEP_ALIVE,
       K_CONTENT_LENGTH, K_CHUNKED, K_EXPECT, K_PATH, K_QUERY, K_MULTI,
       K_STATE, K_COUNT };
static const char *const key_names[K_COUNT] = {
  "method", "raw_path", "version", "headers", "keep_alive",
  "content_length", "chunked", "expect_continue", "path", "query_string",
  "multi", "_c"
};
#define K_FIRST 3 /* after the runtime and the class's metatable */
/* then a table method number -> name (no strlen or interning per request) */
#define UP_METHODS (K_FIRST + K_COUNT)

/* [-0, +1] push the field name k (next_request and its callees only). */
#define push_key(L, k) lua_pushvalue(L, lua_upvalueindex(K_FIRST + (k)))

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

/* Move the waiter node w (linked in some wait list) to the end of `to`. */
static void list_move(lx_waiter *to, lx_waiter *w) {
  lx_waiter_unlink(w);
  w->next = to;
  w->prev = to->prev;
  to->prev->next = w;
  to->prev = w;
}

/* Wake t, suspended in a wait list (whichever: the stream's or ours). */
static void wake_task(lx_http_conn *c, lx_task *t) {
  if (t->on.wait.next == NULL) return; /* woken already */
  list_move(&c->parked, &t->on.wait);
  lx_waitlist_wake_first(&c->parked);
}

/*
** A read (next_request or a body read) begins: a watcher waiting in the
** stream's readers leaves them to it, parked until the read ends (the
** stream has room for one reader).
*/
void lx_http_read_begin(lx_http_conn *c) {
  lx_task *w = c->watcher;
  if (w && !c->watch_closers && w->on.wait.next != NULL)
    list_move(&c->parked, &w->on.wait);
}

/* The read ended: the parked watcher looks again (and waits again). */
void lx_http_read_end(lx_http_conn *c) {
  lx_waitlist_wake_first(&c->parked);
}

static void timer_fire(lx_loop *loop, lx_timer *timer) {
  lx_http_conn *c = lx_container_of(timer, lx_http_conn, timer);
  (void)loop;
  c->timed_out = 1;
  if (c->waiter) wake_task(c, c->waiter);
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
  lx_http_parser_free(&c->hp);
  lx_http_inflate_end(c);
  if (s == NULL) return;
  c->state = LX_CONN_DEAD;
  if (!c->loop->closed) { /* their continuations see c->s NULL */
    if (c->waiter) wake_task(c, c->waiter);
    if (c->watcher) wake_task(c, c->watcher);
  }
  c->s = NULL;
  lx_stream_release(s);
}

static int conn__gc(lua_State *L) {
  lx_http_conn *c = test_conn(L, "__gc");
  c->waiter = c->watcher = NULL; /* nobody waits on a collected object */
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
** opts.request_mt, headers_mt (tables) and setup_headers (a function):
** all three or none.
*/
static void check_class(lua_State *L) {
  int r = lua_getfield(L, 3, "request_mt");
  int h = lua_getfield(L, 3, "headers_mt");
  int f = lua_getfield(L, 3, "setup_headers");
  lua_pop(L, 3);
  if (r == LUA_TNIL && h == LUA_TNIL && f == LUA_TNIL) return;
  if (r != LUA_TTABLE || h != LUA_TTABLE || f != LUA_TFUNCTION)
    luaL_error(L, "lasync.http.conn: options 'request_mt', 'headers_mt' "
                  "(tables) and 'setup_headers' (a function) go together");
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
  uint32_t ninline;
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
  check_class(L);
  ninline = max_headers < LX_HTTP_INLINE_HDRS ? (uint32_t)max_headers
                                              : LX_HTTP_INLINE_HDRS;
  size = offsetof(lx_http_conn, hdr) + ninline * sizeof(lx_http_hdr);
  c = lua_newuserdatauv(L, size, CONN_NUV);
  memset(c, 0, offsetof(lx_http_conn, hdr));
  lx_http_parser_init(&c->hp, c->hdr, ninline, (uint32_t)max_headers,
                      (size_t)max_head, (uint64_t)max_body);
  c->s = s;
  s->small_first = 1; /* see lx_stream_drop_buffer */
  c->loop = s->loop;
  c->timer.fire = timer_fire;
  c->idle_ns = idle;
  c->head_ns = head;
  c->body_ns = body;
  c->max_body = (uint64_t)max_body;
  c->state = LX_CONN_IDLE;
  lx_waitlist_init(&c->parked);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_READER); /* keeps the stream's loop alive */
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, UV_WRITER);
  lua_getfield(L, 3, "request_mt");
  lua_setiuservalue(L, -2, UV_REQ_MT);
  lua_getfield(L, 3, "headers_mt");
  lua_setiuservalue(L, -2, UV_HDR_MT);
  lua_getfield(L, 3, "setup_headers");
  lua_setiuservalue(L, -2, UV_SETUP);
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
** [-0, +1] push the headers of the request whose head starts at base:
** names are lowercased in place (the bytes are consumed right after), a
** repeated name keeps its first value in headers and all of them in
** multi, set on the request at req (an absolute index). Returns whether
** headers is plain: no repeat, no header named as a method of the
** headers' metatable ("get", "getall").
*/
static int push_headers(lua_State *L, lx_http_conn *c, char *base,
                        int req) {
  uint32_t i;
  int hs, multi = 0, plain = 1;
  lua_createtable(L, 0, (int)c->hp.nhdr);
  hs = lua_gettop(L);
  for (i = 0; i < c->hp.nhdr; i++) {
    lx_http_hdr *h = &c->hp.hdr[i];
    char *name = base + h->name;
    const char *v = base + h->value;
    size_t vlen = h->value_len, k;
    for (k = 0; k < h->name_len; k++)
      name[k] = (char)tolower((unsigned char)name[k]);
    trim(&v, &vlen);
    if ((h->name_len == 3 && memcmp(name, "get", 3) == 0) ||
        (h->name_len == 6 && memcmp(name, "getall", 6) == 0))
      plain = 0;
    lua_pushlstring(L, name, h->name_len); /* name, pushed once */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, hs) == LUA_TNIL) { /* the first of its name */
      lua_pop(L, 1);
      lua_pushlstring(L, v, vlen);
      lua_rawset(L, hs);
      continue;
    }
    /* repeated: stack name, first value */
    plain = 0;
    if (!multi) {
      push_key(L, K_MULTI);
      lua_newtable(L);
      lua_rawset(L, req);
      multi = 1;
    }
    push_key(L, K_MULTI);
    lua_rawget(L, req); /* name, first, multi */
    lua_pushvalue(L, -3);
    if (lua_rawget(L, -2) == LUA_TNIL) { /* {first, this} */
      lua_pop(L, 1);
      lua_createtable(L, 2, 0);
      lua_pushvalue(L, -3); /* the first value */
      lua_rawseti(L, -2, 1);
      lua_pushvalue(L, -4); /* the name */
      lua_pushvalue(L, -2);
      lua_rawset(L, -4);
    }
    lua_pushlstring(L, v, vlen);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 4); /* list, multi, first value, name */
  }
  return plain;
}

/*
** path and query_string of the request at req (absolute) for a target
** the serve loop needs no Lua for: an origin-form path without "%" or
** NUL (nothing to decode, nothing to refuse), split at its first "?";
** without a "?", no query_string (the Request reads it as ""). Otherwise
** path is false: the loop splits and decodes it (lasync.http.url).
*/
static void set_path(lua_State *L, int req, const char *t, size_t len) {
  size_t i, q = len;
  for (i = 0; i < len; i++) {
    if (t[i] == '%' || t[i] == '\0') break;
    if (t[i] == '?' && q == len) q = i;
  }
  push_key(L, K_PATH);
  if (len == 0 || t[0] != '/' || i < len) {
    lua_pushboolean(L, 0);
    lua_rawset(L, req);
    return;
  }
  if (q == len) { /* the whole target: the raw_path string itself */
    push_key(L, K_RAW_PATH);
    lua_rawget(L, req);
    lua_rawset(L, req);
    return;
  } else {
    lua_pushlstring(L, t, q);
    lua_rawset(L, req);
    push_key(L, K_QUERY);
    lua_pushlstring(L, t + q + 1, len - q - 1);
  }
  lua_rawset(L, req);
}

/*
** [-0, +1] push the request whose head starts at base. With the serve
** loop's metatables (user values of the connection at index 1), also
** its path and query_string, both metatables set (setup_headers called
** for headers that are not plain) and _c, the state at index 2, if any.
*/
static void push_request(lua_State *L, lx_http_conn *c, char *base) {
  llhttp_t *p = &c->hp.p;
  uint32_t i;
  int req, plain, classed = lua_getiuservalue(L, 1, UV_REQ_MT) == LUA_TTABLE;
  int nfields = 8; /* method, raw_path, version, headers, keep_alive,
                      path, _c, and room for one more (match_info) */
  lua_pop(L, 1);
  if (p->flags & F_CONTENT_LENGTH) nfields++;
  if (p->flags & F_CHUNKED) nfields++;
  if (memchr(base + c->hp.url, '?', c->hp.url_len)) nfields++;
  if (!classed) nfields += 2;
  /* 8 slots for the common GET: less to allocate and collect than 16 */
  lua_createtable(L, 0, nfields);
  req = lua_gettop(L);
  push_key(L, K_METHOD);
  lua_rawgeti(L, lua_upvalueindex(UP_METHODS), p->method);
  lua_rawset(L, req);
  push_key(L, K_RAW_PATH);
  lua_pushlstring(L, base + c->hp.url, c->hp.url_len);
  lua_rawset(L, req);
  push_key(L, K_VERSION);
  if (p->http_minor == 1)
    lua_pushliteral(L, "1.1");
  else
    lua_pushliteral(L, "1.0");
  lua_rawset(L, req);
  push_key(L, K_HEADERS);
  plain = push_headers(L, c, base, req);
  lua_rawset(L, req);
  c->keep_alive = (unsigned char)llhttp_should_keep_alive(p);
  push_key(L, K_KEEP_ALIVE);
  lua_pushboolean(L, c->keep_alive);
  lua_rawset(L, req);
  if (p->flags & F_CONTENT_LENGTH) {
    push_key(L, K_CONTENT_LENGTH);
    lua_pushinteger(L, (lua_Integer)p->content_length);
    lua_rawset(L, req);
  }
  /* chunked and expect_continue are mostly false: for a Request, which
     reads an absent one as false, set only when true */
  if ((p->flags & F_CHUNKED) || !classed) {
    push_key(L, K_CHUNKED);
    lua_pushboolean(L, (p->flags & F_CHUNKED) != 0);
    lua_rawset(L, req);
  }
  c->expect_continue = 0;
  if (p->http_minor == 1 && lx_http_has_body(&c->hp)) {
    for (i = 0; i < c->hp.nhdr; i++) {
      lx_http_hdr *h = &c->hp.hdr[i];
      const char *v = base + h->value;
      size_t vlen = h->value_len;
      trim(&v, &vlen);
      if (h->name_len == 6 && memcmp(base + h->name, "expect", 6) == 0 &&
          vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
        c->expect_continue = 1;
    }
  }
  if (c->expect_continue || !classed) {
    push_key(L, K_EXPECT);
    lua_pushboolean(L, c->expect_continue);
    lua_rawset(L, req);
  }
  c->minor = p->http_minor;
  if (!classed) return;
  lua_getiuservalue(L, 1, UV_REQ_MT);
  lua_setmetatable(L, req);
  if (!lua_isnil(L, 2)) { /* req._c: next_request's argument */
    push_key(L, K_STATE);
    lua_pushvalue(L, 2);
    lua_rawset(L, req);
  }
  set_path(L, req, base + c->hp.url, c->hp.url_len);
  push_key(L, K_HEADERS);
  lua_rawget(L, req);
  if (plain) {
    lua_getiuservalue(L, 1, UV_HDR_MT);
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
  } else { /* rare: setup_headers(headers, req.multi) */
    lua_getiuservalue(L, 1, UV_SETUP);
    lua_insert(L, -2);
    push_key(L, K_MULTI);
    lua_rawget(L, req);
    lua_call(L, 2, 0);
  }
}

static int next_request_k(lua_State *L, int status, lua_KContext ctx);

/* A step of next_request: parse what is buffered, or wait for more. */
static int head_step(lua_State *L, lx_http_conn *c, lx_task *t) {
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
    lua_pushboolean(L, lx_http_has_body(&c->hp));
    return 2;
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
  if (!c->head_started) lx_stream_drop_buffer(s); /* idle: no buffer */
  c->waiter = t;
  return lx_stream_wait_data(L, t, s, "http.conn:next_request",
                             next_request_k);
}

/*
** head_step, and the end of the read when it returns (a wait does not
** return: lx_suspend yields for good, and the continuation comes back).
*/
static int next_request_step(lua_State *L, lx_http_conn *c, lx_task *t) {
  int n = head_step(L, c, t);
  lx_http_read_end(c);
  return n;
}

static int next_request_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_http_conn *c = lua_touserdata(L, 1);
  (void)status;
  c->waiter = NULL;
  if (t->must_cancel) {
    lx_http_disarm(c);
    lx_http_read_end(c);
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
** conn:next_request([state]) -> req, has_body | nil | false, status,
** message (see docs/internals.md "HTTP layer" and the contract in the
** issue); state becomes req._c when the connection makes Requests
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
  lua_settop(L, 2);
  lx_http_inflate_end(c); /* a body given up on (cancelled, failed) */
  lx_http_head_begin(&c->hp);
  c->hp.max_body = c->max_body; /* read_body(max) may have changed it */
  c->state = LX_CONN_IDLE;
  c->head_started = 0;
  c->minor = 1; /* until a head says otherwise: an error is answered as
                   HTTP/1.1 (Connection: close) */
  c->timed_out = 0;
  lx_http_disarm(c);
  lx_http_read_begin(c);
  return next_request_step(L, c, t);
}

/* }====================================================================== */

/* {======================================================================
** wait_peer_close
** ======================================================================= */

static int peer_close_k(lua_State *L, int status, lua_KContext ctx);

/*
** Wait until the peer closes or resets, leaving buffered bytes alone (a
** pipelined request stays for next_request): as a reader of the stream
** while no read runs, parked on the connection while one does (it wakes
** us when it ends), on the stream's closers when its buffer is full
** (nothing more is read then; only the stream's close ends the wait).
*/
static int peer_close_step(lua_State *L, lx_http_conn *c, lx_task *t) {
  lx_stream *s = c->s;
  if (s == NULL || s->read_err || s->closed) return 0;
  c->watcher = t;
  c->watch_closers = 0;
  if (c->waiter) return lx_wait_on(L, t, &c->parked, peer_close_k);
  if (s->len >= s->limit) {
    c->watch_closers = 1;
    return lx_wait_on(L, t, &s->closers, peer_close_k);
  }
  return lx_stream_wait_data(L, t, s, "http.conn:wait_peer_close",
                             peer_close_k);
}

static int peer_close_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_http_conn *c = lua_touserdata(L, 1);
  (void)status;
  c->watcher = NULL;
  c->watch_closers = 0;
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  return peer_close_step(L, c, t);
}

/*
** conn:wait_peer_close(): returns once the peer has closed or reset; not
** while a read is suspended (a read that starts later is not disturbed)
*/
static int conn_wait_peer_close(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_http_conn *c = lx_http_check(L, "wait_peer_close");
  lx_task *t = lx_current_task(L, rt, "http.conn:wait_peer_close");
  if (c->waiter)
    return luaL_error(L, "lasync.http.conn:wait_peer_close: another task "
                         "is reading from this connection");
  if (c->watcher)
    return luaL_error(L, "lasync.http.conn:wait_peer_close: another task "
                         "is waiting for the peer to close");
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
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  for (i = 0; i < K_COUNT; i++) lua_pushstring(L, key_names[i]);
  lua_createtable(L, 64, 0);
#define METHOD_NAME(NUM, NAME, STRING) \
  lua_pushliteral(L, #STRING);         \
  lua_rawseti(L, -2, NUM);
  HTTP_ALL_METHOD_MAP(METHOD_NAME)
#undef METHOD_NAME
  lua_pushcclosure(L, conn_next_request, UP_METHODS);
  lua_setfield(L, -2, "next_request");
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
