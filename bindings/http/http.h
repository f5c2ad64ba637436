/*
** http.h — declarations shared by the files of bindings/http/: the
** per-connection object of the HTTP server (conn.c), reading request
** bodies (body.c, decompressed by inflate.c), writing responses
** (response.c) and the Date header (date.c). The parser itself, without
** Lua, is parse.h.
*/
#ifndef LASYNC_HTTP_H
#define LASYNC_HTTP_H

#include "core/core.h"
#include "io/io.h"
#include "http/parse.h"
#include "http/inflate.h"

#define LX_HTTP_CONN "lasync.http.conn"
#define LX_HTTP_INLINE_HDRS 24 /* header offsets kept in the connection:
                                  a browser's head fits */

/* What the connection is doing between its calls. */
enum {
  LX_CONN_IDLE,  /* before a request's head (next_request may run) */
  LX_CONN_BODY,  /* a request was returned: its body may be unread */
  LX_CONN_DEAD   /* a protocol error or close(): nothing more is parsed */
};

/* Output framing of the response being streamed (send_head). */
enum { LX_OUT_NONE, LX_OUT_LENGTH, LX_OUT_CHUNKED, LX_OUT_CLOSE };

typedef struct lx_http_conn {
  lx_http_parser hp;    /* hp.hdr points at hdr below */
  lx_stream *s;         /* retained (lx_stream_retain) until close/__gc;
                           NULL after */
  lx_loop *loop;        /* the stream's loop (kept alive by the reader,
                           user value 1) */
  lx_timer timer;       /* the deadline of the wait in progress: armed
                           only while a task waits (disarmed by its
                           continuation, close or __gc) */
  uint64_t idle_ns, head_ns, body_ns; /* 0: no timeout */
  uint64_t max_body;    /* opts.max_body, read_body's default */
  lx_inflate *inflate;  /* the decoder of a compressed body being read:
                           made by its first read, freed (lx_http_inflate_
                           end) when the body is decoded or dropped, at
                           the next head, or by close/__gc */
  lx_task *waiter;      /* the task suspended in a read, or NULL */
  lx_task *watcher;     /* the task in wait_peer_close, or NULL */
  lx_waiter parked;     /* wait list: the watcher while a read runs (it
                           leaves the stream's readers to the read), and
                           any task conn_detach wakes */
  int state;            /* LX_CONN_* */
  int out;              /* LX_OUT_* of the response being streamed */
  unsigned char timed_out, head_started, minor, keep_alive;
  unsigned char expect_continue, continue_sent, head_only;
  unsigned char watch_closers; /* the watcher waits on the stream's
                                  closers (its buffer is full) */
  lx_http_hdr hdr[1];   /* LX_HTTP_INLINE_HDRS entries at most (the
                           userdata's size): the parser's own array for
                           a head with more (see parse.h) */
} lx_http_conn;

/* conn.c */
LX_HIDDEN lx_http_conn *lx_http_check(lua_State *L, const char *fname);
LX_HIDDEN void lx_http_arm(lx_http_conn *c, uint64_t timeout_ns);
LX_HIDDEN void lx_http_disarm(lx_http_conn *c);
LX_HIDDEN void lx_http_read_begin(lx_http_conn *c);
LX_HIDDEN void lx_http_read_end(lx_http_conn *c);
LX_HIDDEN void lx_open_http(lua_State *L);

/* body.c */
LX_HIDDEN void lx_http_inflate_end(lx_http_conn *c);
LX_HIDDEN int lx_http_read_body(lua_State *L);
LX_HIDDEN int lx_http_read_chunk(lua_State *L);
LX_HIDDEN int lx_http_discard_body(lua_State *L);

/* response.c */
LX_HIDDEN int lx_http_send(lua_State *L);
LX_HIDDEN int lx_http_send_head(lua_State *L);
LX_HIDDEN int lx_http_send_chunk(lua_State *L);
LX_HIDDEN int lx_http_send_end(lua_State *L);

/* date.c */
LX_HIDDEN const char *lx_http_date_now(void);
LX_HIDDEN void lx_http_format_date(char out[30], int64_t epoch);
LX_HIDDEN int lx_http_date(lua_State *L);
LX_HIDDEN int lx_http_parse_date(lua_State *L);

#endif
