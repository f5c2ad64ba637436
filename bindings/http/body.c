/*
** body.c — the body of the current request: read_body (all of it),
** read_chunk (piece by piece) and discard_body, decoded by the parser
** from the stream's buffer (and inflated by inflate.c when compressed),
** with the body deadline (reset by progress) and the limit; the first
** read answers Expect: 100-continue.
*/
#include "http/http.h"

#define CHUNK_MAX (64 * 1024) /* read_chunk's largest piece */

/* What the reads of this file do with the decoded bytes. */
enum { READ_ALL, READ_CHUNK, READ_DISCARD };

static const char *const fnames[] = {
  "http.conn:read_body", "http.conn:read_chunk", "http.conn:discard_body"
};

/*
** Stack of a read while it runs: 1 the connection, 2 the limit (read_body)
** or the cap (discard_body), 3 the kind (READ_*), 4 what read_body has
** read so far (pieces are pushed above and concatenated into it).
*/

static int body_k(lua_State *L, int status, lua_KContext ctx);
static int body_step(lua_State *L, lx_http_conn *c, lx_task *t, int what);

/* [-0, +3] false, status, message: the connection is done for */
static int body_error(lua_State *L, lx_http_conn *c, int status,
                      const char *msg) {
  lx_http_disarm(c);
  c->state = LX_CONN_DEAD;
  lua_pushboolean(L, 0);
  lua_pushinteger(L, status);
  lua_pushstring(L, msg);
  return 3;
}

/* Wait for more of the body, unless it can never come. */
static int body_wait(lua_State *L, lx_http_conn *c, lx_task *t, int what) {
  if (c->timed_out)
    return body_error(L, c, 408, "the request body took too long");
  if (c->s->read_err)
    return body_error(L, c, 400, "the connection closed before the body "
                                 "ended");
  if (c->timer.idx == 0) lx_http_arm(c, c->body_ns);
  c->waiter = t;
  return lx_stream_wait_data(L, t, c->s, fnames[what], body_k);
}

/* Free the decoder of a compressed body, if any. */
void lx_http_inflate_end(lx_http_conn *c) {
  lx_inflate_free(c->inflate);
  c->inflate = NULL;
}

/* [-0, +3] body_error for a compressed body, whose decoder goes too */
static int inflate_error(lua_State *L, lx_http_conn *c, int status,
                         const char *msg) {
  lx_http_inflate_end(c);
  return body_error(L, c, status, msg);
}

/*
** One step of a read (not a discard) of a compressed body: the parser's
** spans are copied into the decoder (LX_INFLATE_IN bytes at most at a
** time), and plaintext comes out into a luaL_Buffer only while the read
** has room for it: a chunk's size, or the limit and one byte more, so a
** body that inflates past the limit is refused (413) having inflated no
** further. Pushes what read_body has so far, a piece (read_chunk), or
** waits.
*/
static int inflate_step(lua_State *L, lx_http_conn *c, lx_task *t,
                        int what) {
  lx_stream *s = c->s;
  lx_http_parser *hp = &c->hp;
  lx_inflate *zi = c->inflate;
  size_t got = 0, n, used, len;
  luaL_Buffer b;
  unsigned i;
  int zr = LX_INFLATE_OK, done = 0;
  luaL_buffinit(L, &b);
  for (;;) {
    while (zi->in_len > 0 && !zi->ended &&
           (what != READ_CHUNK || got < CHUNK_MAX)) {
      size_t cap = what == READ_CHUNK ? CHUNK_MAX - got : CHUNK_MAX;
      uint64_t room = zi->total_out < hp->max_body
                          ? hp->max_body - zi->total_out + 1 : 1;
      if (cap > room) cap = (size_t)room;
      zr = lx_inflate_run(zi, luaL_prepbuffsize(&b, cap), cap, &n);
      if (zr == LX_INFLATE_ERROR) break;
      luaL_addsize(&b, n);
      got += n;
      if (zi->total_out > hp->max_body)
        return inflate_error(L, c, 413, "the decompressed body exceeds "
                                        "the limit");
      if (n == 0) break; /* it needs more of the compressed bytes */
    }
    if (zi->ended && zi->in_len > 0)
      return inflate_error(L, c, 400, "data after the end of the "
                                      "compressed body");
    if (zr == LX_INFLATE_ERROR)
      return inflate_error(L, c, 400, "the compressed body is corrupt");
    if (what == READ_CHUNK && got > 0) break;
    if (hp->msg_done) {
      if (!zi->ended)
        return inflate_error(L, c, 400, "the compressed body is "
                                        "truncated");
      done = 1;
      break;
    }
    len = s->len;
    if (len > lx_inflate_room(zi)) len = lx_inflate_room(zi);
    if (len == 0) break; /* wait */
    if (lx_http_parse_body(hp, s->buf + s->start, len, &used) ==
        LX_HTTP_ERROR)
      return inflate_error(L, c, hp->status, hp->msg);
    for (i = 0; i < hp->npieces; i++)
      lx_inflate_feed(zi, hp->piece[i], hp->piece_len[i]);
    if (used > 0) lx_stream_consume(s, used);
    if (used == 0 && !hp->msg_done) break; /* wait */
  }
  luaL_pushresult(&b);
  if (done) lx_http_inflate_end(c); /* the next read finds msg_done */
  if (what == READ_ALL) lua_concat(L, 2); /* onto what came before */
  if (what == READ_CHUNK && got > 0) {
    lx_http_disarm(c);
    return 1;
  }
  if (done) {
    lx_http_disarm(c);
    if (what == READ_CHUNK) lua_pushnil(L);
    return 1; /* READ_ALL: the string at 4 */
  }
  if (what == READ_CHUNK) lua_pop(L, 1); /* "" */
  return body_wait(L, c, t, what);
}

/*
** One step of a read of kind `what` by task t: decode what is buffered,
** or wait for more. A Content-Length body is decoded once it is all
** buffered, in one piece (no concatenation), unless a chunk is asked.
*/
static int decode_step(lua_State *L, lx_http_conn *c, lx_task *t,
                       int what) {
  lx_stream *s = c->s;
  lx_http_parser *hp = &c->hp;
  for (;;) {
    size_t used = 0, len = s->len;
    unsigned i;
    int r, chunked = (hp->p.flags & F_CHUNKED) != 0;
    if (what == READ_CHUNK && len > CHUNK_MAX) len = CHUNK_MAX;
    if (what == READ_DISCARD) { /* no further than just past the cap */
      uint64_t cap = (uint64_t)lua_tointeger(L, 2), room;
      room = hp->body_total < cap ? cap - hp->body_total + 1 : 1;
      if (len > room) len = (size_t)room;
    }
    if (what == READ_ALL && !chunked && !hp->msg_done &&
        len < hp->p.content_length && s->read_err == 0 && !c->timed_out)
      r = LX_HTTP_MORE; /* wait for all of it */
    else
      r = lx_http_parse_body(hp, len ? s->buf + s->start : NULL, len,
                             &used); /* an empty buffer may be NULL */
    if (r == LX_HTTP_ERROR) return body_error(L, c, hp->status, hp->msg);
    if (what != READ_DISCARD && hp->npieces > 0) {
      luaL_checkstack(L, LX_HTTP_PIECES, fnames[what]);
      for (i = 0; i < hp->npieces; i++)
        lua_pushlstring(L, hp->piece[i], hp->piece_len[i]);
      lua_concat(L, (int)hp->npieces + (what == READ_ALL));
    }
    if (used > 0) lx_stream_consume(s, used);
    if (what == READ_CHUNK && hp->npieces > 0) {
      lx_http_disarm(c);
      return 1;
    }
    if (r == LX_HTTP_DONE) {
      lx_http_disarm(c);
      if (what == READ_DISCARD) {
        lua_pushboolean(L, 1);
      } else if (what == READ_CHUNK) {
        lua_pushnil(L);
      }
      return 1; /* READ_ALL: the string at 4 */
    }
    if (what == READ_DISCARD &&
        hp->body_total > (uint64_t)lua_tointeger(L, 2)) {
      lx_http_disarm(c);
      c->state = LX_CONN_DEAD; /* the caller closes instead */
      lua_pushboolean(L, 0);
      return 1;
    }
    if (used > 0 && s->len > 0) continue; /* paused with bytes left */
    break;
  }
  return body_wait(L, c, t, what);
}

/*
** decode_step, and the end of the read when it returns (a wait does not
** return: lx_suspend yields for good, and the continuation comes back).
*/
static int body_step(lua_State *L, lx_http_conn *c, lx_task *t, int what) {
  int n = c->inflate && what != READ_DISCARD ? inflate_step(L, c, t, what)
                                             : decode_step(L, c, t, what);
  lx_http_read_end(c);
  return n;
}

static int body_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_http_conn *c = lua_touserdata(L, 1);
  int what = (int)lua_tointeger(L, 3);
  (void)status;
  c->waiter = NULL;
  if (t->must_cancel) {
    lx_http_disarm(c);
    lx_http_read_end(c);
    return lx_task_raise_cancelled(L, t);
  }
  if (c->s == NULL)
    return luaL_error(L, "lasync.%s: the connection is closed",
                      fnames[what]);
  lx_timer_reserve(L, c->loop);
  if (!c->timed_out) lx_http_arm(c, c->body_ns); /* bytes came: progress */
  return body_step(L, c, t, what);
}

/*
** Start a read of kind what: arguments checked at 2, the stack laid out
** as body_step expects (4: the kind).
*/
static int body_start(lua_State *L, int what, lua_Integer dflt) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_http_conn *c = lx_http_check(L, fnames[what] + 10);
  lx_task *t;
  lua_Integer lim = dflt < 0 ? (lua_Integer)c->max_body : dflt;
  if (what != READ_CHUNK && !lua_isnoneornil(L, 2)) {
    int isint;
    lim = lua_tointegerx(L, 2, &isint);
    if (!isint || lim < 0)
      return luaL_error(L, "lasync.%s: %s must be an integer >= 0",
                        fnames[what], what == READ_ALL ? "max" : "cap");
  }
  t = lx_current_task(L, rt, fnames[what]);
  if (c->waiter)
    return luaL_error(L, "lasync.%s: another task is reading from this "
                         "connection", fnames[what]);
  if (c->state != LX_CONN_BODY) {
    if (c->state == LX_CONN_DEAD && what == READ_DISCARD) {
      lua_pushboolean(L, 0);
      return 1;
    }
    return luaL_error(L, "lasync.%s: no request is being read",
                      fnames[what]);
  }
  lx_timer_reserve(L, c->loop);
  lua_settop(L, 1);
  lua_pushinteger(L, lim);       /* 2 */
  lua_pushinteger(L, what);      /* 3 */
  lua_pushliteral(L, "");        /* 4 */
  if (what == READ_DISCARD) lx_http_inflate_end(c); /* no need to decode */
  if (!lx_http_has_body(&c->hp) || (c->hp.msg_done && c->inflate == NULL)) {
    if (what == READ_CHUNK)
      lua_pushnil(L);
    else if (what == READ_DISCARD)
      lua_pushboolean(L, 1);
    return 1; /* READ_ALL: "" */
  }
  if (what == READ_DISCARD && c->expect_continue && !c->continue_sent) {
    /* the client waits for our word and may never send the body */
    c->state = LX_CONN_DEAD;
    lua_pushboolean(L, 0);
    return 1;
  }
  if (what != READ_DISCARD) {
    if (what == READ_ALL) c->hp.max_body = (uint64_t)lim;
    if (c->hp.coding != LX_CODING_IDENTITY && c->inflate == NULL &&
        (c->inflate = lx_inflate_new(c->hp.coding)) == NULL)
      return luaL_error(L, "lasync.%s: out of memory", fnames[what]);
    if (c->expect_continue && !c->continue_sent) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      lx_stream_send(c->s, cont, sizeof cont - 1);
      c->continue_sent = 1;
    }
  } else {
    c->hp.max_body = UINT64_MAX; /* bounded by the cap instead */
  }
  c->timed_out = 0;
  lx_http_disarm(c);
  lx_http_read_begin(c);
  return body_step(L, c, t, what);
}

/* conn:read_body([max]) -> the whole body | false, status, message */
int lx_http_read_body(lua_State *L) {
  return body_start(L, READ_ALL, -1); /* -1: the connection's max_body */
}

/* conn:read_chunk() -> the next piece | nil at the end | false, ... */
int lx_http_read_chunk(lua_State *L) {
  return body_start(L, READ_CHUNK, 0);
}

/* conn:discard_body([cap]) -> whether the whole body was dropped */
int lx_http_discard_body(lua_State *L) {
  return body_start(L, READ_DISCARD, 64 * 1024);
}
