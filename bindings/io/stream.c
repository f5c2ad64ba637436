/*
** stream.c — StreamReader and StreamWriter over a libuv stream (TCP or a
** Unix socket). The stream is C memory, freed once its handle is closed
** and both Lua objects are gone. Bytes are read straight into one buffer;
** reading pauses above twice the limit (backpressure) unless a reader
** waits for more, and resumes as the reader consumes. Writes go out at
** once when the socket takes them; what is left is copied into one write
** request.
*/
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

#define LX_DEFAULT_LIMIT 65536     /* readline/readuntil, as asyncio */
#define LX_WRITE_HIGH (64 * 1024)  /* drain() waits above this ... */
#define LX_WRITE_LOW (16 * 1024)   /* ... until below this */

typedef struct write_req {
  uv_write_t req;
  lx_stream *s;
  char data[1]; /* the bytes the socket did not take at once */
} write_req;

/* A Lua object (reader or writer) for a stream. */
typedef struct stream_box {
  lx_stream *s;
} stream_box;

/* {======================================================================
** Lifetime
** ======================================================================= */

static void stream_free(lx_stream *s) {
  if (s->tls) lx_tls_free(s);
  free(s->buf);
  free(s);
}

/*
** How reading ends when the socket says EOF or is closed: a clean EOF,
** unless a write failed first. The kernel reports a reset once; when a
** write took it, the next read returns 0, and a plain EOF would pass
** truncated data off as complete (asyncio raises on the read too).
*/
static int eof_status(const lx_stream *s) {
  if (s->write_err != 0 && s->write_err != UV_ECANCELED) return s->write_err;
  return UV_EOF;
}

/*
** The error pending on the socket (SO_ERROR, which clears it), or 0.
** Linux returns 0 from read() on a reset socket before reporting the
** reset, so an EOF asks whether the peer really closed or reset.
*/
static int socket_error(lx_stream *s) {
  uv_os_fd_t fd;
  int err = 0;
  socklen_t len = sizeof err;
  if (uv_fileno(&s->h.handle, &fd) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return 0; /* not a socket (a pipe): a plain EOF */
  return err ? uv_translate_sys_error(err) : 0;
}

/*
** The handle is closed and no more bytes can come: free the read buffer
** now rather than at GC, but keep unread bytes (shrunk to fit), which
** the reader may still take.
*/
static void buf_release(lx_stream *s) {
  char *p;
  if (s->len == 0) {
    free(s->buf);
    s->buf = NULL;
    s->start = s->cap = 0;
    return;
  }
  memmove(s->buf, s->buf + s->start, s->len);
  s->start = 0;
  p = realloc(s->buf, s->len);
  if (p != NULL) { /* else keep the larger block */
    s->buf = p;
    s->cap = s->len;
  }
}

static void close_cb(uv_handle_t *handle) {
  lx_stream *s = handle->data;
  if (s->tls) lx_tls_closed(s); /* its shutdown timer too */
  lx_count_handles(-1);
  lx_list_remove(&s->node);
  s->closed = 1;
  if (s->read_err == 0) s->read_err = eof_status(s);
  buf_release(s);
  lx_waitlist_wake_all(&s->readers);
  lx_waitlist_wake_all(&s->drainers);
  lx_waitlist_wake_all(&s->closers);
  if (s->nboxes == 0) stream_free(s);
}

/* Close now: pending writes are cancelled. */
static void stream_abort(lx_stream *s) {
  if (s->closing && uv_is_closing(&s->h.handle)) return;
  s->closing = 1;
  uv_close(&s->h.handle, close_cb);
}

/* Close once what was written has gone out (asyncio's transport.close). */
static void stream_close(lx_stream *s) {
  if (s->closing) return;
  if (s->tls) lx_tls_close_notify(s); /* queued like any write */
  s->closing = 1;
  if (uv_stream_get_write_queue_size(&s->h.stream) == 0)
    lx_stream_finish_close(s);
}

/* The loop closes: close what is still open. */
static void stream_close_resource(lua_State *L, lx_resource *r) {
  lx_stream *s = lx_container_of(r, lx_stream, node);
  (void)L;
  if (!uv_is_closing(&s->h.handle)) {
    s->closing = 1;
    uv_close(&s->h.handle, close_cb);
  }
}

static void box_release(lx_stream *s) {
  if (--s->nboxes > 0) return;
  if (s->closed)
    stream_free(s);
  else
    stream_abort(s); /* nobody can use it any more */
}

/* The StreamReader or StreamWriter at index 1, or an error. */
static stream_box *check_box(lua_State *L, const char *fname) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  if (lx_classof(L, rt, 1, LX_MT_READER, 2) < 0) { /* or LX_MT_WRITER */
    const char *got = luaL_typename(L, 1); /* before a push moves 1 */
    luaL_error(L, "%s: expected a StreamReader or StreamWriter (got %s)",
               lx_fname(L, fname), got);
  }
  return lua_touserdata(L, 1);
}

/*
** Another owner of s (an HTTP connection object): s stays allocated until
** it lets go with lx_stream_release, as a reader or writer object does.
*/
void lx_stream_retain(lx_stream *s) {
  s->nboxes++;
}

void lx_stream_release(lx_stream *s) {
  box_release(s);
}

static int box__gc(lua_State *L) {
  stream_box *b = check_box(L, "Stream:__gc");
  if (b->s) box_release(b->s);
  b->s = NULL;
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Reading from the socket
** ======================================================================= */

/*
** Room for at least want more bytes at the end of the read buffer (its
** free space: *avail bytes), or NULL when memory is out. The plaintext
** of a TLS stream lands here too (tls.c).
*/
char *lx_stream_room(lx_stream *s, size_t want, size_t *avail) {
  if (s->start > 0 && s->cap - (s->start + s->len) < want) {
    memmove(s->buf, s->buf + s->start, s->len); /* compact */
    s->start = 0;
  }
  if (s->cap - s->len < want) {
    size_t cap = s->cap ? s->cap : want;
    char *p;
    while (cap - s->len < want) cap *= 2;
    p = realloc(s->buf, cap);
    if (p == NULL) return NULL;
    s->buf = p;
    s->cap = cap;
  }
  *avail = s->cap - (s->start + s->len);
  return s->buf + s->start + s->len;
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  lx_stream *s = handle->data;
  size_t avail = 0;
  if (s->tls) { /* ciphertext: into TLS's own buffer */
    lx_tls_alloc(s, buf);
    return;
  }
  if (s->buf == NULL && s->small_first) { /* lx_stream_drop_buffer */
    s->buf = lx_bufcache_get(&s->loop->small_bufs);
    if (s->buf != NULL) {
      s->start = s->len = 0;
      s->cap = LX_SMALL_READ;
    }
    suggested = LX_SMALL_READ;
  } else if (suggested < 65536) {
    suggested = 65536;
  }
  buf->base = lx_stream_room(s, suggested, &avail);
  buf->len = avail; /* 0 when out of memory: libuv reports UV_ENOBUFS */
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  lx_stream *s = stream->data;
  if (s->tls) {
    lx_tls_read(s, nread, buf);
    return;
  }
  if (nread > 0) {
    s->len += (size_t)nread;
    if (s->len >= 2 * s->limit && lx_waitlist_empty(&s->readers)) {
      /* the reader falls behind: pause (one that waits needs more) */
      uv_read_stop(stream);
      s->reading = 0;
    }
  } else if (nread < 0) { /* EOF (or a reset in disguise) or an error */
    int err = nread == UV_EOF ? socket_error(s) : (int)nread;
    s->read_err = err ? err : eof_status(s);
    uv_read_stop(stream);
    s->reading = 0;
  }
  lx_waitlist_wake_first(&s->readers);
}

void lx_stream_read_start(lx_stream *s) {
  if (!s->reading && s->read_err == 0 && !s->closing &&
      uv_read_start(&s->h.stream, alloc_cb, read_cb) == 0)
    s->reading = 1;
}

void lx_stream_read_stop(lx_stream *s) {
  uv_read_stop(&s->h.stream);
  s->reading = 0;
}

/* Read again if paused and the buffer has room. */
static void maybe_resume(lx_stream *s) {
  if (!s->reading && s->read_err == 0 && !s->closing && s->len < s->limit) {
    if (uv_read_start(&s->h.stream, alloc_cb, read_cb) == 0) s->reading = 1;
  }
}

/*
** Drop the first n buffered bytes, which the caller has used where they
** lie (the HTTP layer's parser; take() below), and read again if reading
** was paused.
*/
void lx_stream_consume(lx_stream *s, size_t n) {
  s->start += n;
  s->len -= n;
  if (s->len == 0) {
    s->start = 0;
    /* a TLS stream's socket reads go elsewhere (tls.c): an idle TLS
       connection keeps no plaintext buffer, the next record gets one */
    if (s->tls) lx_tls_drop_plain(s);
  }
  maybe_resume(s);
}

/*
** Let go of the read buffer if it holds nothing (the HTTP layer, before a
** keep-alive connection's idle wait): an idle connection then holds no
** 64 KiB block (one touched page of RSS each). With small_first set, the
** next read gets LX_SMALL_READ bytes (a request head fits), from the
** loop's free ones when it has some, so that dropping and taking one
** per request is two list operations, not a malloc and a free; a read
** that fills it grows it to 64 KiB.
*/
void lx_stream_drop_buffer(lx_stream *s) {
  if (s->len != 0 || s->buf == NULL) return;
  if (s->cap == LX_SMALL_READ)
    lx_bufcache_put(&s->loop->small_bufs, s->buf, LX_SMALL_CACHE);
  else
    free(s->buf);
  s->buf = NULL;
  s->start = s->cap = 0;
}

/* [-0, +1] push and consume the first n buffered bytes */
static void take(lua_State *L, lx_stream *s, size_t n) {
  if (n == 0) { /* s->buf may be NULL: none read yet, or freed on close */
    lua_pushliteral(L, "");
    return;
  }
  lua_pushlstring(L, s->buf + s->start, n);
  lx_stream_consume(s, n);
}

/* }====================================================================== */

/* {======================================================================
** Stream objects
** ======================================================================= */

void lx_stream_init(lx_stream *s, lx_loop *loop) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->limit = LX_DEFAULT_LIMIT;
  s->h.handle.data = s;
  lx_waitlist_init(&s->readers);
  lx_waitlist_init(&s->drainers);
  lx_waitlist_init(&s->closers);
  s->node.close = stream_close_resource;
  lx_list_add(&loop->resources, &s->node);
  lx_count_handles(1); /* every caller inits the handle next */
}

/*
** [-0, +2] push the reader and writer of the stream s, whose handle is
** connected, and start reading. They own s from now on.
*/
void lx_stream_push(lua_State *L, lx_stream *s) {
  lx_runtime *rt = s->loop->rt;
  int i;
  for (i = 0; i < 2; i++) {
    stream_box *b = lua_newuserdatauv(L, sizeof *b, 1);
    b->s = s;
    s->nboxes++;
    lx_setclass(L, rt, i == 0 ? LX_MT_READER : LX_MT_WRITER);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->loop->self_ref);
    lua_setiuservalue(L, -2, 1); /* the loop lives as long as they do */
  }
  maybe_resume(s);
}

/* Close a stream that never got its Lua objects (a failed connect). */
void lx_stream_discard(lx_stream *s) {
  stream_abort(s);
}

static lx_stream *check_stream(lua_State *L, int mt, const char *fname) {
  return lx_checkbox(L, lua_touserdata(L, lua_upvalueindex(1)), 1, mt,
                     fname);
}

/* In a continuation: the stream of the box at index 1, unless finalized. */
static lx_stream *box_stream(lua_State *L, const char *fname) {
  lx_stream *s = ((stream_box *)lua_touserdata(L, 1))->s;
  if (s == NULL) luaL_error(L, "lasync.%s: " LX_FINALIZED, fname);
  return s;
}

/*
** The stream of the StreamReader (writer 0) or StreamWriter (writer 1) at
** idx, for another layer that works on its bytes; raises naming fname
** when it is something else or was finalized.
*/
lx_stream *lx_stream_get(lua_State *L, lx_runtime *rt, int idx,
                         int writer, const char *fname) {
  stream_box *b = lx_testclass(L, rt, idx, writer ? LX_MT_WRITER
                                                  : LX_MT_READER);
  if (b == NULL)
    luaL_error(L, "lasync.%s: expected a %s (got %s)", fname,
               writer ? "StreamWriter" : "StreamReader",
               luaL_typename(L, idx));
  if (b->s == NULL) luaL_error(L, "lasync.%s: " LX_FINALIZED, fname);
  return b->s;
}

#define check_reader(L, f) check_stream(L, LX_MT_READER, "StreamReader:" f)
#define check_writer(L, f) check_stream(L, LX_MT_WRITER, "StreamWriter:" f)

/* }====================================================================== */

/* {======================================================================
** StreamReader
** ======================================================================= */

#define TRY_WAIT (-1)

typedef int (*try_fn)(lua_State *L, lx_stream *s);

/* The reading failed (not at EOF): raise it as an OSError (SSLError when
   TLS failed). */
static int raise_read_error(lua_State *L, lx_stream *s, const char *fname) {
  if (s->tls) lx_tls_raise_read_error(L, s, fname); /* SSLError if TLS's */
  return lx_os_error(L, s->read_err, fname, NULL);
}

/* Raise IncompleteReadError with the partial bytes on top of the stack. */
static int raise_incomplete(lua_State *L, lua_Integer expected) {
  int partial = lua_gettop(L);
  if (expected >= 0)
    lua_pushfstring(L, "%d bytes read on a total of %I expected bytes",
                    (int)lua_rawlen(L, partial), expected);
  else
    lua_pushfstring(L, "%d bytes read before EOF, separator not found",
                    (int)lua_rawlen(L, partial));
  lx_error_newv(L, LX_ERR_INCOMPLETE_READ, -1);
  lua_pushvalue(L, partial);
  lua_setfield(L, -2, "partial");
  if (expected >= 0) {
    lua_pushinteger(L, expected);
    lua_setfield(L, -2, "expected");
  }
  return lua_error(L);
}

static int raise_overrun(lua_State *L, const char *msg, size_t consumed) {
  lua_pushstring(L, msg);
  lx_error_newv(L, LX_ERR_LIMIT_OVERRUN, -1);
  lua_pushinteger(L, (lua_Integer)consumed);
  lua_setfield(L, -2, "consumed");
  return lua_error(L);
}

/*
** read(n): up to n bytes; n < 0 or nil: everything up to EOF. Until EOF
** the bytes stay in the stream's buffer, which grows past the limit
** meanwhile: a cancelled read leaves them all to the next one, and a
** reset raises without dropping them.
*/
static int try_read(lua_State *L, lx_stream *s) {
  lua_Integer n = lx_optinteger(L, 2, -1);
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (n < 0) {
    if (s->read_err == 0) return TRY_WAIT;
    if (s->read_err != UV_EOF)
      return raise_read_error(L, s, "StreamReader:read");
    take(L, s, s->len);
    return 1;
  }
  if (s->len > 0) {
    take(L, s, s->len < (size_t)n ? s->len : (size_t)n);
    return 1;
  }
  if (s->read_err == 0) return TRY_WAIT;
  if (s->read_err != UV_EOF) return raise_read_error(L, s, "StreamReader:read");
  lua_pushliteral(L, "");
  return 1;
}

/* readexactly(n): n bytes, or IncompleteReadError at EOF */
static int try_readexactly(lua_State *L, lx_stream *s) {
  lua_Integer n = lx_checkinteger(L, 2);
  if (n < 0)
    return luaL_error(L, "lasync.StreamReader:readexactly: n must be >= 0");
  if (s->len >= (size_t)n) {
    take(L, s, (size_t)n);
    return 1;
  }
  if (s->read_err == 0) return TRY_WAIT;
  if (s->read_err != UV_EOF)
    return raise_read_error(L, s, "StreamReader:readexactly");
  take(L, s, s->len);
  return raise_incomplete(L, n);
}

/* Search for the separator at index 2 (default "\n"); -1 if absent. */
static ptrdiff_t find_sep(lua_State *L, lx_stream *s, size_t *seplen) {
  const char *sep = lx_optlstring(L, 2, "\n", seplen);
  const char *p;
  if (*seplen == 0)
    luaL_error(L, "lasync.StreamReader:readuntil: the separator is empty");
  if (s->len < *seplen) return -1;
  p = memmem(s->buf + s->start, s->len, sep, *seplen);
  return p ? p - (s->buf + s->start) : -1;
}

/*
** How far a search for a separator of seplen bytes got without finding
** it: where the next one could start (asyncio's offset). Past the limit,
** readuntil gives up.
*/
static size_t searched(const lx_stream *s, size_t seplen) {
  return s->len < seplen ? 0 : s->len + 1 - seplen;
}

/*
** readuntil([sep]): up to and including sep; data kept on overrun. As
** asyncio, the limit bounds where sep starts: a chunk of limit bytes
** before it is still fine.
*/
static int try_readuntil(lua_State *L, lx_stream *s) {
  size_t seplen;
  ptrdiff_t at = find_sep(L, s, &seplen);
  if (at >= 0) {
    if ((size_t)at > s->limit)
      return raise_overrun(L, "separator is found, but chunk is longer "
                              "than limit", (size_t)at);
    take(L, s, (size_t)at + seplen);
    return 1;
  }
  if (searched(s, seplen) > s->limit)
    return raise_overrun(L, "separator is not found, and chunk exceeds the "
                            "limit", searched(s, seplen));
  if (s->read_err == 0) return TRY_WAIT;
  if (s->read_err != UV_EOF)
    return raise_read_error(L, s, "StreamReader:readuntil");
  take(L, s, s->len);
  return raise_incomplete(L, -1);
}

/*
** readline(): a line with its "\n"; the partial last line at EOF, then
** "". The limit as in readuntil; past it the line is dropped (asyncio).
*/
static int try_readline(lua_State *L, lx_stream *s) {
  size_t seplen;
  ptrdiff_t at;
  lua_settop(L, 1);
  lua_pushliteral(L, "\n");
  at = find_sep(L, s, &seplen);
  if (at >= 0 && (size_t)at <= s->limit) {
    take(L, s, (size_t)at + 1);
    return 1;
  }
  if (at >= 0 || s->len > s->limit) { /* asyncio drops the long line */
    size_t consumed = at >= 0 ? (size_t)at : s->len;
    s->start += at >= 0 ? consumed + 1 : consumed;
    s->len -= at >= 0 ? consumed + 1 : consumed;
    maybe_resume(s);
    return raise_overrun(L, at >= 0 ? "separator is found, but chunk is "
                                      "longer than limit"
                                    : "separator is not found, and chunk "
                                      "exceeds the limit", consumed);
  }
  if (s->read_err == 0) return TRY_WAIT;
  if (s->read_err != UV_EOF)
    return raise_read_error(L, s, "StreamReader:readline");
  take(L, s, s->len);
  return 1;
}

/*
** Wait for more data for the read operation fname, continued by k (also
** the HTTP layer's way to await bytes on a stream it parses in place).
*/
int lx_stream_wait_data(lua_State *L, lx_task *t, lx_stream *s,
                        const char *fname, lua_KFunction k) {
  if (!lx_waitlist_empty(&s->readers))
    return luaL_error(L, "lasync.%s: another task is already reading from "
                         "this stream", fname);
  if (!s->reading && s->read_err == 0 && !s->closing &&
      uv_read_start(&s->h.stream, alloc_cb, read_cb) == 0)
    s->reading = 1; /* also past the limit: a reader needs the bytes */
  return lx_wait_on(L, t, &s->readers, k);
}

static int read_again(lua_State *L, lua_KContext ctx, const char *fname,
                      try_fn fn, lua_KFunction k) {
  lx_task *t = (lx_task *)ctx;
  lx_stream *s;
  int n;
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  s = box_stream(L, fname);
  n = fn(L, s);
  return n == TRY_WAIT ? lx_stream_wait_data(L, t, s, fname, k) : n;
}

static int read_start(lua_State *L, const char *fname, try_fn fn,
                      lua_KFunction k) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_stream *s = check_stream(L, LX_MT_READER, fname);
  lx_task *t = lx_current_task(L, rt, fname);
  int n = fn(L, s);
  return n == TRY_WAIT ? lx_stream_wait_data(L, t, s, fname, k) : n;
}

static int read_k(lua_State *L, int st, lua_KContext ctx) {
  (void)st;
  return read_again(L, ctx, "StreamReader:read", try_read, read_k);
}

static int readexactly_k(lua_State *L, int st, lua_KContext ctx) {
  (void)st;
  return read_again(L, ctx, "StreamReader:readexactly", try_readexactly,
                    readexactly_k);
}

static int readuntil_k(lua_State *L, int st, lua_KContext ctx) {
  (void)st;
  return read_again(L, ctx, "StreamReader:readuntil", try_readuntil,
                    readuntil_k);
}

static int readline_k(lua_State *L, int st, lua_KContext ctx) {
  (void)st;
  return read_again(L, ctx, "StreamReader:readline", try_readline,
                    readline_k);
}

static int reader_read(lua_State *L) {
  lua_settop(L, 2);
  return read_start(L, "StreamReader:read", try_read, read_k);
}

static int reader_readexactly(lua_State *L) {
  lua_settop(L, 2);
  return read_start(L, "StreamReader:readexactly", try_readexactly,
                    readexactly_k);
}

static int reader_readuntil(lua_State *L) {
  lua_settop(L, 2);
  return read_start(L, "StreamReader:readuntil", try_readuntil,
                    readuntil_k);
}

static int reader_readline(lua_State *L) {
  lua_settop(L, 1);
  return read_start(L, "StreamReader:readline", try_readline, readline_k);
}

/*
** A line for r:lines(): readline's, without its "\n" unless upvalue 2 is
** true; nil at EOF, which ends a generic for.
*/
static int try_line(lua_State *L, lx_stream *s) {
  int n = try_readline(L, s);
  size_t len;
  const char *line;
  if (n == TRY_WAIT) return n;
  line = lua_tolstring(L, -1, &len);
  if (len == 0)
    lua_pushnil(L);
  else if (line[len - 1] == '\n' && !lua_toboolean(L, lua_upvalueindex(2)))
    lua_pushlstring(L, line, len - 1);
  return 1;
}

static int line_k(lua_State *L, int st, lua_KContext ctx) {
  (void)st;
  return read_again(L, ctx, "StreamReader:lines", try_line, line_k);
}

/*
** The iterator of r:lines(): upvalues the runtime (as every method has),
** whether to keep "\n", and the reader.
*/
static int lines_next(lua_State *L) {
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(3));
  return read_start(L, "StreamReader:lines", try_line, line_k);
}

/*
** r:lines([fmt]) -> an iterator over the lines up to EOF, for a generic
** for (asyncio's `async for line in reader`): each line without its "\n"
** ("l", the default, as io's lines) or with it ("L"); the last one may
** lack it. Each step is a readline, with its limit.
*/
static int reader_lines(lua_State *L) {
  const char *fmt = "l";
  size_t len = 1;
  check_reader(L, "lines");
  if (lua_type(L, 2) == LUA_TSTRING)
    fmt = lua_tolstring(L, 2, &len);
  else if (!lua_isnoneornil(L, 2))
    fmt = NULL;
  if (fmt && len == 2 && fmt[0] == '*') { /* "*l", "*L": older spellings */
    fmt++;
    len--;
  }
  if (fmt == NULL || len != 1 || (fmt[0] != 'l' && fmt[0] != 'L'))
    return luaL_error(L, "lasync.StreamReader:lines: the format must be "
                         "\"l\" or \"L\" (got %s)",
                      fmt ? luaL_tolstring(L, 2, NULL)
                          : luaL_typename(L, 2));
  lua_pushvalue(L, lua_upvalueindex(1)); /* the runtime */
  lua_pushboolean(L, fmt[0] == 'L');     /* keep "\n" */
  lua_pushvalue(L, 1);                   /* the reader */
  lua_pushcclosure(L, lines_next, 3);
  return 1;
}

/*
** r:at_eof() -> whether the buffer is empty and the peer sent EOF (or
** the stream was closed): not after a reset, which is no EOF (asyncio).
*/
static int reader_at_eof(lua_State *L) {
  lx_stream *s = check_reader(L, "at_eof");
  lua_pushboolean(L, s->len == 0 && s->read_err == UV_EOF);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** StreamWriter
** ======================================================================= */

static void write_cb(uv_write_t *req, int status) {
  write_req *w = lx_container_of(req, write_req, req);
  lx_stream *s = w->s;
  free(w);
  s->writes--;
  if (status < 0 && status != UV_ECANCELED && s->write_err == 0)
    s->write_err = status;
  if (s->write_err ||
      uv_stream_get_write_queue_size(&s->h.stream) <= LX_WRITE_LOW)
    lx_waitlist_wake_all(&s->drainers);
  lx_stream_finish_close(s); /* if close() waited for the writes */
}

/*
** close() was called: close the handle once the writes are out, and on
** TLS once the peer answered close_notify or the shutdown timeout passed
** (tls.c calls this again then).
*/
void lx_stream_finish_close(lx_stream *s) {
  if (s->closing && s->writes == 0 && !uv_is_closing(&s->h.handle) &&
      !(s->tls && lx_tls_shutting_down(s)))
    uv_close(&s->h.handle, close_cb);
}

/*
** Send bytes: at once as far as the socket takes them, the rest queued.
** For a TLS stream, these are its ciphertext (tls.c).
*/
void lx_stream_send_raw(lx_stream *s, const char *data, size_t len) {
  write_req *w;
  uv_buf_t buf;
  int r;
  if (s->write_err || len == 0) return; /* the peer is gone: drain() says */
  if (s->writes == 0) {
    buf = uv_buf_init((char *)data, (unsigned)len);
    r = uv_try_write(&s->h.stream, &buf, 1);
    if (r == (int)len) return;
    if (r < 0 && r != UV_EAGAIN) {
      s->write_err = r;
      return;
    }
    if (r > 0) {
      data += r;
      len -= (size_t)r;
    }
  }
  w = malloc(offsetof(write_req, data) + len);
  if (w == NULL) {
    s->write_err = UV_ENOMEM;
    return;
  }
  memcpy(w->data, data, len);
  w->s = s;
  buf = uv_buf_init(w->data, (unsigned)len);
  r = uv_write(&w->req, &s->h.stream, &buf, 1, write_cb);
  if (r < 0) {
    free(w);
    s->write_err = r;
    return;
  }
  s->writes++;
}

/* Send bytes: through TLS if the stream has it. */
static void send_bytes(lx_stream *s, const char *data, size_t len) {
  if (s->tls)
    lx_tls_write(s, data, len);
  else
    lx_stream_send_raw(s, data, len);
}

/* Send bytes as StreamWriter:write does (the HTTP layer's responses). */
void lx_stream_send(lx_stream *s, const char *data, size_t len) {
  send_bytes(s, data, len);
}

/* Whether drain() would wait: more than the high-water mark queued. */
int lx_stream_above_high(lx_stream *s) {
  return !s->closed &&
         uv_stream_get_write_queue_size(&s->h.stream) > LX_WRITE_HIGH;
}

static lx_stream *check_open_writer(lua_State *L, const char *fname) {
  lx_stream *s = check_stream(L, LX_MT_WRITER, fname);
  if (s->closing)
    luaL_error(L, "lasync.%s: the stream is closed", fname);
  if (s->eof_written)
    luaL_error(L, "lasync.%s: write_eof() was called", fname);
  if (s->tls) lx_tls_check_write(L, s, fname);
  return s;
}

/* w:write(data): buffers; never waits (await w:drain() for flow control) */
static int writer_write(lua_State *L) {
  lx_stream *s = check_open_writer(L, "StreamWriter:write");
  size_t len;
  const char *data = lx_checklstring(L, 2, &len);
  send_bytes(s, data, len);
  return 0;
}

/* w:writelines(list): write each string of the list */
static int writer_writelines(lua_State *L) {
  lx_stream *s = check_open_writer(L, "StreamWriter:writelines");
  lua_Integer i, n;
  lx_checktype(L, 2, LUA_TTABLE);
  n = luaL_len(L, 2);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *data;
    lua_rawgeti(L, 2, i);
    data = lua_tolstring(L, -1, &len);
    if (data == NULL)
      return luaL_error(L, "lasync.StreamWriter:writelines: item #%I is "
                           "not a string", i);
    send_bytes(s, data, len);
    lua_pop(L, 1);
  }
  return 0;
}

static int read_failed(const lx_stream *s) {
  return s->read_err && s->read_err != UV_EOF && s->read_err != UV_ECANCELED;
}

static int conn_failed(const lx_stream *s) {
  return s->write_err || read_failed(s);
}

/*
** The connection failed (a write, or the reading side): raise it. When
** the read took the reset, later writes only get EPIPE: name the cause.
*/
static int raise_conn_error(lua_State *L, lx_stream *s) {
  int err = s->write_err;
  if ((err == 0 || err == UV_EPIPE) && read_failed(s)) err = s->read_err;
  return lx_os_error(L, err, "StreamWriter:drain", NULL);
}

static int drain_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_stream *s;
  (void)status;
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  s = box_stream(L, "StreamWriter:drain");
  if (conn_failed(s)) return raise_conn_error(L, s);
  if (!s->closed && uv_stream_get_write_queue_size(&s->h.stream) >
                        LX_WRITE_LOW)
    return lx_wait_on(L, t, &s->drainers, drain_k);
  return 0;
}

/* w:drain(): wait while much is queued; raise the connection's error */
static int writer_drain(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_stream *s = check_stream(L, LX_MT_WRITER, "StreamWriter:drain");
  lx_task *t = lx_current_task(L, rt, "StreamWriter:drain");
  lua_settop(L, 1);
  if (conn_failed(s)) return raise_conn_error(L, s);
  if (s->closed || uv_stream_get_write_queue_size(&s->h.stream) <=
                       LX_WRITE_HIGH)
    return 0;
  return lx_wait_on(L, t, &s->drainers, drain_k);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  (void)status; /* a failure shows as a write error or a reset */
  free(req);
}

/* w:write_eof(): half-close, once what was written has gone out */
static int writer_write_eof(lua_State *L) {
  lx_stream *s = check_open_writer(L, "StreamWriter:write_eof");
  uv_shutdown_t *req;
  int r;
  if (s->tls) /* TLS has no half-close (asyncio raises the same) */
    return luaL_error(L, "lasync.StreamWriter:write_eof: a TLS stream "
                         "cannot half-close (close() sends close_notify)");
  req = malloc(sizeof *req);
  if (req == NULL) return luaL_error(L, "%s: out of memory", lx_fname(L, NULL));
  r = uv_shutdown(req, &s->h.stream, shutdown_cb);
  if (r < 0) {
    free(req);
    return lx_os_error(L, r, "StreamWriter:write_eof", NULL);
  }
  s->eof_written = 1;
  return 0;
}

static int writer_can_write_eof(lua_State *L) {
  lx_stream *s = check_stream(L, LX_MT_WRITER, "StreamWriter:can_write_eof");
  lua_pushboolean(L, s->tls == NULL);
  return 1;
}

/* w:close(): close once what was written has gone out; never waits */
static int writer_close(lua_State *L) {
  stream_close(check_stream(L, LX_MT_WRITER, "StreamWriter:close"));
  return 0;
}

/*
** w:abort(): close at once, dropping what is still queued (asyncio's
** transport.abort()), the way out when the peer stopped reading and
** close() would wait forever. Reads see EOF after the buffered bytes;
** drain() raises ECONNABORTED.
*/
static int writer_abort(lua_State *L) {
  lx_stream_abort(check_writer(L, "abort"));
  return 0;
}

/* w:abort() (also a failed TLS handshake's, tls.c) */
void lx_stream_abort(lx_stream *s) {
  if (uv_is_closing(&s->h.handle)) return; /* closed or closing */
  if (s->read_err == 0) s->read_err = UV_EOF; /* not eof_status: ours */
  if (s->write_err == 0) s->write_err = UV_ECONNABORTED;
  stream_abort(s); /* queued writes: write_cb gets UV_ECANCELED */
}

/* w:wait_closed(): wait until the stream is closed */
static int writer_wait_closed(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_stream *s = check_stream(L, LX_MT_WRITER, "StreamWriter:wait_closed");
  lx_task *t = lx_current_task(L, rt, "StreamWriter:wait_closed");
  lua_settop(L, 1);
  if (s->closed) return 0;
  return lx_wait_on(L, t, &s->closers, lx_wait_k);
}

/*
** w:is_closing(): close() or abort() was called, or the connection
** failed, which asyncio's transport meets with a forced close. The
** socket stays open here so that bytes the kernel holds stay readable.
*/
static int writer_is_closing(lua_State *L) {
  lx_stream *s = check_writer(L, "is_closing");
  lua_pushboolean(L, s->closing || conn_failed(s));
  return 1;
}

/* [-0, +1|2] the peer's or our address: host, port (a path for Unix) */
static int push_name(lua_State *L, lx_stream *s, int peer) {
  struct sockaddr_storage ss;
  int len = (int)sizeof ss, r;
  if (s->closed) return 0;
  if (s->is_pipe) {
    char path[1024];
    size_t size = sizeof path;
    r = peer ? uv_pipe_getpeername(&s->h.pipe, path, &size)
             : uv_pipe_getsockname(&s->h.pipe, path, &size);
    if (r < 0) return 0;
    lua_pushlstring(L, path, size);
    return 1;
  }
  r = peer ? uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&ss, &len)
           : uv_tcp_getsockname(&s->h.tcp, (struct sockaddr *)&ss, &len);
  if (r < 0) return 0;
  lx_addr_push(L, (struct sockaddr *)&ss);
  return 2;
}

/* w:get_extra_info(name) -> "peername"/"sockname": host, port (a path
   for Unix sockets); "socket": the file descriptor; nil otherwise */
static int writer_get_extra_info(lua_State *L) {
  lx_stream *s = check_writer(L, "get_extra_info");
  const char *name = lx_checkcstring(L, 2, "StreamWriter:get_extra_info",
                                     "name");
  uv_os_fd_t fd;
  if (strcmp(name, "peername") == 0) return push_name(L, s, 1);
  if (strcmp(name, "sockname") == 0) return push_name(L, s, 0);
  if (strcmp(name, "socket") == 0 && !s->closed &&
      uv_fileno(&s->h.handle, &fd) == 0) {
    lua_pushinteger(L, (lua_Integer)fd);
    return 1;
  }
  if (s->tls) return lx_tls_extra_info(L, s, name);
  return 0;
}

static int stream__tostring(lua_State *L) {
  stream_box *b = check_box(L, "Stream:__tostring");
  lx_stream *s = b->s;
  const char *cls = lx_testclass(L, lua_touserdata(L, lua_upvalueindex(1)),
                                 1, LX_MT_READER) ? "StreamReader"
                                                  : "StreamWriter";
  if (s == NULL) {
    lua_pushfstring(L, "lasync.%s (finalized)", cls);
    return 1;
  }
  lua_pushfstring(L, "lasync.%s: %p%s", cls,
                  (void *)s, s->closed    ? " (closed)"
                             : s->closing ? " (closing)"
                                          : "");
  return 1;
}

/* }====================================================================== */

void lx_open_stream(lua_State *L) {
  static const luaL_Reg reader_methods[] = {
    {"read", reader_read},
    {"readline", reader_readline},
    {"readexactly", reader_readexactly},
    {"readuntil", reader_readuntil},
    {"lines", reader_lines},
    {"at_eof", reader_at_eof},
    {NULL, NULL}
  };
  static const luaL_Reg writer_methods[] = {
    {"write", writer_write},
    {"writelines", writer_writelines},
    {"drain", writer_drain},
    {"write_eof", writer_write_eof},
    {"can_write_eof", writer_can_write_eof},
    {"close", writer_close},
    {"abort", writer_abort},
    {"wait_closed", writer_wait_closed},
    {"is_closing", writer_is_closing},
    {"get_extra_info", writer_get_extra_info},
    {"start_tls", lx_tls_start_tls_m},
    {NULL, NULL}
  };
  static const luaL_Reg reader_meta[] = {
    {"__gc", box__gc},
    {"__tostring", stream__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg writer_meta[] = {
    {"__gc", box__gc},
    {"__close", writer_close},
    {"__tostring", stream__tostring},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_READER, "lasync.StreamReader", reader_methods,
              reader_meta);
  lx_newclass(L, LX_MT_WRITER, "lasync.StreamWriter", writer_methods,
              writer_meta);
}
