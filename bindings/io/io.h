/*
** io.h — declarations shared by the files of bindings/io/: streams, TCP
** and Unix connections and servers, UDP, DNS, files, subprocesses and
** signals, each a libuv handle or request awaited through core.
*/
#ifndef LASYNC_IO_H
#define LASYNC_IO_H

#include "core/core.h"

/* stream.c: a connected TCP or Unix stream, read and written by tasks */
typedef struct lx_stream {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;                   /* freed (with the struct) after its close_cb */
  lx_resource node;      /* in the loop's resources while open */
  lx_loop *loop;
  char *buf;             /* read buffer: bytes [start, start+len) */
  size_t start, len, cap;
  size_t limit;          /* readline/readuntil limit; reading pauses at 2x */
  lx_waiter readers;     /* the task waiting in a read (at most one) */
  lx_waiter drainers;    /* tasks in drain() */
  lx_waiter closers;     /* tasks in wait_closed() */
  int read_err;          /* 0, UV_EOF or the error that ended reading */
  int write_err;         /* the first write error: drain() raises it */
  int writes;            /* write requests in flight */
  int nboxes;            /* its reader and writer objects still alive,
                            and other owners (lx_stream_retain) */
  unsigned char reading, closing, closed, eof_written, is_pipe;
  unsigned char small_first; /* a read into no buffer gets a small one
                                (lx_stream_drop_buffer's users) */
  struct lx_tls *tls;    /* TLS on this stream (tls.c), or NULL */
} lx_stream;
LX_HIDDEN void lx_stream_init(lx_stream *s, lx_loop *loop);
LX_HIDDEN void lx_stream_push(lua_State *L, lx_stream *s);
LX_HIDDEN void lx_stream_discard(lx_stream *s);
LX_HIDDEN void lx_open_stream(lua_State *L);
LX_HIDDEN char *lx_stream_room(lx_stream *s, size_t want, size_t *avail);
LX_HIDDEN void lx_stream_send_raw(lx_stream *s, const char *data,
                                  size_t len);
LX_HIDDEN void lx_stream_read_start(lx_stream *s);
LX_HIDDEN void lx_stream_read_stop(lx_stream *s);
LX_HIDDEN void lx_stream_finish_close(lx_stream *s);
LX_HIDDEN void lx_stream_abort(lx_stream *s);
/* for a protocol layer (http/) that parses a stream's buffer in place */
LX_HIDDEN lx_stream *lx_stream_get(lua_State *L, lx_runtime *rt, int idx,
                                   int writer, const char *fname);
LX_HIDDEN void lx_stream_retain(lx_stream *s);
LX_HIDDEN void lx_stream_release(lx_stream *s);
LX_HIDDEN int lx_stream_wait_data(lua_State *L, lx_task *t, lx_stream *s,
                                  const char *fname, lua_KFunction k);
LX_HIDDEN void lx_stream_consume(lx_stream *s, size_t n);
LX_HIDDEN void lx_stream_drop_buffer(lx_stream *s);
#define LX_SMALL_READ 1024 /* a request head fits; more grows the buffer */
#define LX_SMALL_CACHE 64  /* free ones a loop keeps (64 KiB at most) */
LX_HIDDEN void lx_stream_send(lx_stream *s, const char *data, size_t len);
LX_HIDDEN int lx_stream_above_high(lx_stream *s);

/* tls.c: TLS over a stream, through memory BIOs; tls_conn.c: the
   options that ask for it */
typedef struct lx_sslctx lx_sslctx;
typedef struct lx_tls_opts { /* the ssl options of a connection */
  lx_sslctx *ctx;            /* NULL: no TLS */
  const char *hostname;      /* server_hostname, or NULL */
  double handshake_timeout, shutdown_timeout; /* seconds */
} lx_tls_opts;
LX_HIDDEN int lx_tls_check_opts(lua_State *L, int opts, const char *fname,
                                int server, lx_tls_opts *o);
LX_HIDDEN void lx_tls_push_session_key(lua_State *L, const char *hn,
                                       int addr, int port);
LX_HIDDEN void lx_tls_start(lua_State *L, lx_stream *s,
                            const lx_tls_opts *o, const char *key,
                            const char *fname);
LX_HIDDEN int lx_tls_handshake(lua_State *L, lx_task *t, int widx,
                               const char *fname, lua_KFunction k);
LX_HIDDEN int lx_tls_start_tls_m(lua_State *L);
LX_HIDDEN int lx_tls_serve(lua_State *L);
LX_HIDDEN void lx_tls_alloc(lx_stream *s, uv_buf_t *buf);
LX_HIDDEN void lx_tls_read(lx_stream *s, ssize_t nread, const uv_buf_t *buf);
LX_HIDDEN void lx_tls_drop_plain(lx_stream *s);
LX_HIDDEN void lx_tls_write(lx_stream *s, const char *data, size_t len);
LX_HIDDEN int lx_tls_check_write(lua_State *L, lx_stream *s,
                                 const char *fname);
LX_HIDDEN void lx_tls_close_notify(lx_stream *s);
LX_HIDDEN int lx_tls_shutting_down(const lx_stream *s);
LX_HIDDEN void lx_tls_closed(lx_stream *s);
LX_HIDDEN void lx_tls_raise_read_error(lua_State *L, lx_stream *s,
                                       const char *fname);
LX_HIDDEN void lx_tls_free(lx_stream *s);
LX_HIDDEN int lx_tls_extra_info(lua_State *L, lx_stream *s,
                                const char *name);

/* tls_context.c: lasync.ssl.context, an OpenSSL SSL_CTX (immutable) */
typedef struct ssl_ctx_st SSL_CTX;
struct lx_sslctx {
  SSL_CTX *ctx;          /* NULL only while it is made */
  int server, check_hostname;
  unsigned char alpn[256 * 8]; /* wire format, for the server's choice */
  size_t alpn_len;
};
LX_HIDDEN int lx_sslctx_new(lua_State *L);
LX_HIDDEN void lx_ssl_error_new(lua_State *L, const char *fname,
                                const char *what, unsigned long err,
                                long vcode);
LX_HIDDEN lx_sslctx *lx_check_sslctx(lua_State *L, int idx,
                                     const char *fname);
LX_HIDDEN void lx_open_tls_context(lua_State *L);
typedef struct ssl_st SSL;
LX_HIDDEN void lx_sslctx_offer_session(SSL *ssl, const char *key);
LX_HIDDEN const char *lx_tls_session_key(SSL *ssl);

/* dns.c */
LX_HIDDEN void lx_addr_push(lua_State *L, const struct sockaddr *sa);
LX_HIDDEN void lx_addr_push_text(lua_State *L, const struct sockaddr *sa);
LX_HIDDEN int lx_addr_parse(const char *host, int port, int family,
                            struct sockaddr_storage *ss);
LX_HIDDEN int lx_check_port(lua_State *L, int idx, const char *fname);
LX_HIDDEN int lx_check_family(lua_State *L, int optidx, const char *fname);
LX_HIDDEN void lx_push_getaddrinfo(lua_State *L, const char *caller);
LX_HIDDEN void lx_open_dns(lua_State *L);

/* connect.c */
LX_HIDDEN size_t lx_check_limit(lua_State *L, int optidx, const char *fname);
LX_HIDDEN void lx_tcp_options(lx_stream *s, int nodelay, int keepalive);
LX_HIDDEN void lx_open_connect(lua_State *L);

/* server.c */
LX_HIDDEN int lx_opt_bool(lua_State *L, int opts, const char *name,
                          int dflt);
LX_HIDDEN int lx_opt_keepalive(lua_State *L, int opts, const char *fname);
LX_HIDDEN int lx_reuse_port(uv_handle_t *h);
LX_HIDDEN const char *lx_check_unix_path(lua_State *L, int idx,
                                         const char *fname);
LX_HIDDEN void lx_open_server(lua_State *L);

/* udp.c */
LX_HIDDEN void lx_open_udp(lua_State *L);

/* fs.c */
LX_HIDDEN int lx_file_fd(lua_State *L, int idx);
LX_HIDDEN void lx_open_fs(lua_State *L);

/* process.c */
LX_HIDDEN void lx_open_process(lua_State *L);

/* signal.c */
LX_HIDDEN int lx_check_signal(lua_State *L, int idx, const char *fname);
LX_HIDDEN void lx_open_signal(lua_State *L);

/*
** worker.c: what a worker process (lasync -w N) and its supervisor
** (host/supervisor.c) agree on: the environment that makes a process a
** worker, and the messages on the socketpair between them (fd 3 in the
** worker), SOCK_SEQPACKET so that each message arrives whole.
*/
/* The environment the supervisor gives each worker. A process is a worker
   only if LASYNC_SUPERVISOR_PID is its parent: its own children inherit
   the variables but are not workers. */
#define LX_WORKER_ID_ENV "LASYNC_WORKER_ID"
#define LX_WORKER_COUNT_ENV "LASYNC_WORKER_COUNT"
#define LX_WORKER_PARENT_ENV "LASYNC_SUPERVISOR_PID"
#define LX_WORKER_SHARE_ENV "LASYNC_SHARE" /* "reuseport" or "socket" */
#define LX_WORKER_FD 3 /* the worker's end of the socketpair */

enum { LX_SHARE_REUSEPORT = 1, LX_SHARE_SOCKET = 2 };

/* Worker to supervisor: a listening socket is up (sent once, no reply). */
#define LX_MSG_READY 'R'
/* Worker to supervisor: bind and listen on addr, reply with the socket. */
#define LX_MSG_BIND 'B'

typedef struct lx_bind_req {
  char type;                     /* LX_MSG_BIND */
  int v6only, backlog;
  struct sockaddr_storage addr;  /* its port 0: one free port for all */
} lx_bind_req;

/* The reply: err (0 or a negative errno); the socket in SCM_RIGHTS. */
typedef struct lx_bind_rep {
  int err;
} lx_bind_rep;

LX_HIDDEN int lx_worker_id(void);     /* 1..N, 0 outside worker mode */
LX_HIDDEN int lx_worker_count(void);
LX_HIDDEN int lx_worker_share(void);  /* LX_SHARE_*, 0 outside */
LX_HIDDEN int lx_worker_bind(const struct sockaddr *sa, int v6only,
                             int backlog);
LX_HIDDEN void lx_worker_ready(void);
LX_HIDDEN void lx_open_worker(lua_State *L);

#endif
