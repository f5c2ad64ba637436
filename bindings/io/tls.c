/*
** tls.c — TLS over a stream (stream.c), as Node and uvloop do it: OpenSSL
** reads and writes memory, not the socket, through one BIO of our own
** (net_bio). What the socket reads is handed to OpenSSL where it lies;
** the plaintext SSL_read makes lands in the stream's read buffer, where
** StreamReader finds it as it would plain bytes. Plaintext written goes
** through SSL_write; the ciphertext it leaves in the loop's output buffer
** goes out by the stream's own write path, so drain() follows the
** encrypted side. Also the handshake a task awaits, with its deadline
** (lx_tls_handshake); tls_conn.c has the options that ask for TLS.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "io/io.h"

#define TLS_CBUF 16384 /* ciphertext read at once: one TLS record */
#define TLS_OBUF_FLUSH 65536 /* ciphertext gathered before it is sent */
#define TLS_PBUF 16384 /* a plaintext buffer: one record's worth */
#define TLS_PBUF_CACHE 128 /* free ones a loop keeps (2 MiB at most): as
                              many as the streams that read in one turn */

enum { TLS_HANDSHAKE, TLS_OPEN, TLS_FAILED };

typedef struct lx_tls {
  SSL *ssl;              /* and its net_bio, both ways */
  const char *in;        /* ciphertext not yet read by OpenSSL: in_len */
  size_t in_len;         /* bytes at in (the loop's read buffer during a
                            read, else keep) */
  char *keep;            /* those bytes kept between reads, or NULL */
  int state;
  unsigned long err;     /* OpenSSL's error that failed the connection */
  long vcode;            /* its X509 verification result */
  int shut;              /* close_notify sent */
  int waiting;           /* close() waits for the peer's close_notify */
  double shutdown_timeout; /* seconds it waits at most */
  uv_timer_t *timer;     /* that wait's timer (freed by its close_cb) */
  char *sess_key;        /* a client's key in its context's session cache */
  lx_timer hs_timer;     /* the handshake's deadline: in the loop's heap
                            from lx_tls_start until the handshake ends or
                            the stream closes (lx_tls_closed) */
  lx_stream *stream;     /* the stream it is on (for hs_timer) */
  double hs_timeout;     /* ssl_handshake_timeout, for its error */
  unsigned char timed_out; /* hs_timer fired before the handshake ended */
} lx_tls;

/* {======================================================================
** The engine
** ======================================================================= */

/*
** net_bio: OpenSSL's network side, one BIO for both ways, owning no
** memory. Reads take the ciphertext at t->in (where the socket's read
** put it); writes append to the loop's output buffer, which flush()
** sends and empties before the operation that filled it returns. Two
** memory BIOs would keep two BIO structs and two buffers (which never
** shrink) per connection, idle or not.
*/
static BIO_METHOD *net_method;
static pthread_once_t net_once = PTHREAD_ONCE_INIT;

static void flush(lx_stream *s);

static int net_write(BIO *b, const char *data, int len) {
  lx_stream *s = BIO_get_data(b);
  lx_loop *loop = s->loop;
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  if (loop->tls_olen >= TLS_OBUF_FLUSH) flush(s); /* a big write */
  if (loop->tls_olen + (size_t)len > loop->tls_ocap) {
    size_t cap = loop->tls_ocap ? loop->tls_ocap : TLS_CBUF;
    char *p;
    while (cap < loop->tls_olen + (size_t)len) cap *= 2;
    p = realloc(loop->tls_obuf, cap);
    if (p == NULL) return -1; /* SSL_write fails: write_err */
    loop->tls_obuf = p;
    loop->tls_ocap = cap;
  }
  memcpy(loop->tls_obuf + loop->tls_olen, data, (size_t)len);
  loop->tls_olen += (size_t)len;
  return len;
}

static int net_read(BIO *b, char *out, int len) {
  lx_stream *s = BIO_get_data(b);
  lx_tls *t = s->tls;
  size_t n = t->in_len < (size_t)len ? t->in_len : (size_t)len;
  BIO_clear_retry_flags(b);
  if (n == 0) { /* nothing yet: "want more", not EOF */
    BIO_set_retry_read(b);
    return -1;
  }
  memcpy(out, t->in, n);
  t->in += n;
  t->in_len -= n;
  return (int)n;
}

static long net_ctrl(BIO *b, int cmd, long num, void *ptr) {
  lx_stream *s = BIO_get_data(b);
  (void)num;
  (void)ptr;
  switch (cmd) {
  case BIO_CTRL_FLUSH: return 1; /* flush() sends when OpenSSL is done */
  case BIO_CTRL_PENDING: return s->tls ? (long)s->tls->in_len : 0;
  case BIO_CTRL_WPENDING: return (long)s->loop->tls_olen;
  default: return 0;
  }
}

static int net_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

/* At exit, or when lasync's module is unloaded (glibc runs a shared
   object's atexit handlers then): valgrind would call it lost. */
static void net_method_free(void) {
  BIO_meth_free(net_method);
  net_method = NULL;
}

static void net_method_init(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                               "lasync stream");
  if (m == NULL) return;
  if (!BIO_meth_set_write(m, net_write) || !BIO_meth_set_read(m, net_read) ||
      !BIO_meth_set_ctrl(m, net_ctrl) || !BIO_meth_set_create(m, net_create)) {
    BIO_meth_free(m);
    return;
  }
  net_method = m;
  atexit(net_method_free);
}

/* A net_bio for the stream s, or NULL when memory is out. */
static BIO *net_bio_new(lx_stream *s) {
  BIO *b;
  pthread_once(&net_once, net_method_init);
  if (net_method == NULL || (b = BIO_new(net_method)) == NULL) return NULL;
  BIO_set_data(b, s);
  return b;
}

/* Send what OpenSSL wrote (net_write) and empty the loop's buffer. */
static void flush(lx_stream *s) {
  lx_loop *loop = s->loop;
  if (loop->tls_olen > 0) {
    lx_stream_send_raw(s, loop->tls_obuf, loop->tls_olen);
    loop->tls_olen = 0;
  }
}

/*
** After OpenSSL read what it could: keep the ciphertext it left (reading
** paused, or it failed) in the connection's own memory, as the loop's
** read buffer is the next read's; an idle connection keeps none.
*/
static void keep_rest(lx_stream *s) {
  lx_tls *t = s->tls;
  char *p;
  if (t->in_len == 0) {
    free(t->keep);
    t->keep = NULL;
    t->in = NULL;
    return;
  }
  if (t->in == t->keep) return;
  p = malloc(t->in_len);
  if (p == NULL) { /* the bytes are lost: the connection with them */
    t->in_len = 0;
    s->read_err = UV_ENOMEM;
    lx_stream_read_stop(s);
  } else {
    memcpy(p, t->in, t->in_len);
  }
  free(t->keep);
  t->keep = p;
  t->in = p;
}

/* The connection failed: keep OpenSSL's reason, stop reading. */
static void fail(lx_stream *s) {
  lx_tls *t = s->tls;
  t->err = ERR_peek_last_error();
  t->vcode = ERR_GET_REASON(t->err) == SSL_R_CERTIFICATE_VERIFY_FAILED
                 ? SSL_get_verify_result(t->ssl) : X509_V_OK;
  ERR_clear_error();
  if (t->state == TLS_HANDSHAKE) t->state = TLS_FAILED;
  if (s->read_err == 0) s->read_err = UV_EPROTO;
  lx_stream_read_stop(s);
}

/* Go on with the handshake, then decrypt what has come. */
static void pump(lx_stream *s) {
  lx_tls *t = s->tls;
  int r, e;
  if (t->state == TLS_HANDSHAKE) {
    r = SSL_do_handshake(t->ssl);
    if (r == 1) {
      t->state = TLS_OPEN;
    } else {
      e = SSL_get_error(t->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) fail(s);
    }
  }
  while (t->state == TLS_OPEN && s->read_err == 0) {
    size_t avail;
    char *room;
    /* nothing to decrypt: no read buffer for a connection that only
       finished its handshake */
    if (t->in_len == 0 && !SSL_has_pending(t->ssl)) break;
    if (s->buf == NULL && (s->buf = lx_bufcache_get(&s->loop->tls_pbufs)))
      s->cap = TLS_PBUF;
    room = lx_stream_room(s, TLS_PBUF, &avail);
    if (room == NULL) {
      s->read_err = UV_ENOMEM;
      lx_stream_read_stop(s);
      break;
    }
    r = SSL_read(t->ssl, room, avail > INT_MAX ? INT_MAX : (int)avail);
    if (r > 0) {
      s->len += (size_t)r;
      continue;
    }
    e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify: a clean EOF */
      s->read_err = UV_EOF;
      lx_stream_read_stop(s);
    } else {
      fail(s);
    }
  }
  flush(s); /* handshake messages, alerts, session tickets, key updates */
}

/*
** The reader took every byte: give the plaintext buffer back to the loop,
** so that an idle connection holds none.
*/
void lx_tls_drop_plain(lx_stream *s) {
  if (s->cap == TLS_PBUF)
    lx_bufcache_put(&s->loop->tls_pbufs, s->buf, TLS_PBUF_CACHE);
  else
    free(s->buf);
  s->buf = NULL;
  s->cap = 0;
}

/* The loop's one ciphertext buffer: lx_tls_read empties it at once. */
void lx_tls_alloc(lx_stream *s, uv_buf_t *buf) {
  lx_loop *loop = s->loop;
  if (loop->tls_cbuf == NULL) loop->tls_cbuf = malloc(TLS_CBUF);
  buf->base = loop->tls_cbuf;
  buf->len = loop->tls_cbuf ? TLS_CBUF : 0; /* 0: libuv: UV_ENOBUFS */
}

static void shutdown_done(lx_stream *s);

void lx_tls_read(lx_stream *s, ssize_t nread, const uv_buf_t *buf) {
  lx_tls *t = s->tls;
  if (nread > 0) {
    if (t->in_len > 0) { /* after what was kept */
      size_t off = (size_t)(t->in - t->keep); /* OpenSSL read that much */
      char *p = realloc(t->keep, off + t->in_len + (size_t)nread);
      if (p == NULL) {
        s->read_err = UV_ENOMEM;
        lx_stream_read_stop(s);
        lx_waitlist_wake_first(&s->readers);
        return;
      }
      memmove(p, p + off, t->in_len);
      memcpy(p + t->in_len, buf->base, (size_t)nread);
      t->keep = p;
      t->in = p;
      t->in_len += (size_t)nread;
    } else {
      t->in = buf->base;
      t->in_len = (size_t)nread;
    }
    pump(s);
    keep_rest(s);
    if (s->reading && !t->waiting && s->len >= 2 * s->limit &&
        lx_waitlist_empty(&s->readers))
      lx_stream_read_stop(s); /* the reader falls behind: pause */
  } else if (nread < 0) {
    /* an EOF without close_notify could be a truncation: a reset, as in
       asyncio and uvloop */
    s->read_err = nread == UV_EOF ? UV_ECONNRESET : (int)nread;
    if (t->state == TLS_HANDSHAKE) t->state = TLS_FAILED;
    lx_stream_read_stop(s);
  }
  if (nread == 0) return;
  if (t->waiting && s->read_err != 0) shutdown_done(s); /* answered */
  lx_waitlist_wake_first(&s->readers); /* a reader, or the handshake */
}

void lx_tls_write(lx_stream *s, const char *data, size_t len) {
  lx_tls *t = s->tls;
  while (len > 0 && s->write_err == 0) {
    int n = SSL_write(t->ssl, data, len > INT_MAX ? INT_MAX : (int)len);
    if (n <= 0) {
      ERR_clear_error();
      s->write_err = UV_EPROTO;
      break;
    }
    data += n;
    len -= (size_t)n;
  }
  flush(s);
}

/* Writing plaintext needs the handshake done. */
int lx_tls_check_write(lua_State *L, lx_stream *s, const char *fname) {
  if (s->tls->state != TLS_OPEN)
    return luaL_error(L, "lasync.%s: the TLS handshake %s", fname,
                      s->tls->state == TLS_FAILED ? "failed"
                                                  : "is not done yet");
  return 0;
}

/*
** A read failed: when TLS failed it (an alert from the peer, such as TLS
** 1.3's late "certificate required", or garbage), raise its SSLError;
** else return and let the caller raise the OSError.
*/
void lx_tls_raise_read_error(lua_State *L, lx_stream *s, const char *fname) {
  lx_tls *t = s->tls;
  if (s->read_err != UV_EPROTO || (t->err == 0 && t->vcode == X509_V_OK))
    return;
  lx_ssl_error_new(L, fname, "TLS failed", t->err, t->vcode);
  lua_error(L);
}

static void timer_close_cb(uv_handle_t *h) { free(h); }

/* Stop waiting for the peer's close_notify; close if the writes are out. */
static void shutdown_done(lx_stream *s) {
  lx_tls *t = s->tls;
  t->waiting = 0;
  if (t->timer) {
    uv_close((uv_handle_t *)t->timer, timer_close_cb);
    t->timer = NULL;
  }
  lx_stream_read_stop(s);
  lx_stream_finish_close(s);
}

static void shutdown_timer_cb(uv_timer_t *timer) {
  shutdown_done(timer->data); /* the peer never answered */
}

/*
** close(): tell the peer (close_notify), then wait for its own at most
** the shutdown timeout, reading (and keeping) what comes meanwhile; the
** stream closes then (lx_stream_finish_close). No wait when the peer
** closed first or the connection failed.
*/
void lx_tls_close_notify(lx_stream *s) {
  lx_tls *t = s->tls;
  double ms;
  if (t->state != TLS_OPEN || t->shut || s->write_err) return;
  t->shut = 1;
  if (SSL_shutdown(t->ssl) < 0) ERR_clear_error();
  flush(s);
  if (s->read_err != 0 || s->write_err != 0 || t->shutdown_timeout <= 0)
    return;
  t->timer = malloc(sizeof *t->timer);
  if (t->timer == NULL) return; /* close at once */
  uv_timer_init(s->h.handle.loop, t->timer);
  t->timer->data = s;
  uv_unref((uv_handle_t *)t->timer); /* the stream keeps the loop alive */
  ms = t->shutdown_timeout * 1000 + 0.5; /* math.huge too: never */
  uv_timer_start(t->timer, shutdown_timer_cb,
                 ms >= 1e18 ? UINT64_MAX : (uint64_t)ms, 0);
  t->waiting = 1;
  lx_stream_read_start(s); /* s->closing is not set yet */
}

int lx_tls_shutting_down(const lx_stream *s) { return s->tls->waiting; }

/* The stream's handle is closed (or closing): the waits are over. */
void lx_tls_closed(lx_stream *s) {
  lx_tls *t = s->tls;
  lx_timer_disarm(s->loop, &t->hs_timer);
  t->waiting = 0;
  if (t->timer) {
    uv_close((uv_handle_t *)t->timer, timer_close_cb);
    t->timer = NULL;
  }
}

void lx_tls_free(lx_stream *s) {
  lx_tls *t = s->tls;
  SSL_free(t->ssl); /* and its BIO, and its reference to the context */
  free(t->keep);
  free(t->sess_key);
  free(t);
  s->tls = NULL;
}

/* }====================================================================== */

/* {======================================================================
** The handshake
** ======================================================================= */

static void handshake_timeout_cb(lx_loop *loop, lx_timer *timer) {
  lx_tls *t = lx_container_of(timer, lx_tls, hs_timer);
  (void)loop;
  t->timed_out = 1;
  lx_waitlist_wake_first(&t->stream->readers); /* the handshake's task */
}

/* Set up who we expect the server to be: SNI, then name or IP check. */
static int set_peer_name(SSL *ssl, const char *host, int check) {
  X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
  unsigned char ip[16];
  int is_ip = inet_pton(AF_INET, host, ip) == 1 ||
              inet_pton(AF_INET6, host, ip) == 1;
  if (!is_ip && !SSL_set_tlsext_host_name(ssl, host)) return 0;
  if (!check) return 1;
  X509_VERIFY_PARAM_set_hostflags(param,
                                  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  /* SNI is no authentication: the certificate must name the host */
  return is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
               : SSL_set1_host(ssl, host);
}

/* The session cache's key of a client's connection, or NULL: none. */
const char *lx_tls_session_key(SSL *ssl) {
  lx_tls *t = SSL_get_app_data(ssl);
  return t ? t->sess_key : NULL;
}

/*
** Put TLS with the checked options o on the stream s and start the
** handshake (a client: with o->hostname, and offering the session its
** context kept under key, if not NULL); its deadline starts now. Bytes
** already read but not taken are the first ciphertext (STARTTLS: the
** peer may have sent its hello already). On failure nothing is left and
** the error names fname.
*/
void lx_tls_start(lua_State *L, lx_stream *s, const lx_tls_opts *o,
                  const char *key, const char *fname) {
  lx_sslctx *c = o->ctx;
  lx_tls *t;
  double d = o->handshake_timeout * 1e9;
  BIO *bio;
  if (s->tls) luaL_error(L, "lasync.%s: TLS is on already", fname);
  if (s->closing || s->read_err)
    luaL_error(L, "lasync.%s: the stream is closed", fname);
  if (c->ctx == NULL)
    luaL_error(L, "lasync.%s: the context is not usable", fname);
  lx_timer_reserve(L, s->loop); /* before anything is made */
  t = calloc(1, sizeof *t);
  if (t == NULL) luaL_error(L, "lasync.%s: out of memory", fname);
  t->ssl = SSL_new(c->ctx);
  bio = net_bio_new(s);
  if (t->ssl == NULL || bio == NULL) {
    BIO_free(bio);
    SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    luaL_error(L, "lasync.%s: out of memory", fname);
    return; /* not reached: luaL_error does not return */
  }
  t->shutdown_timeout = o->shutdown_timeout;
  t->hs_timeout = o->handshake_timeout;
  t->stream = s;
  SSL_set_bio(t->ssl, bio, bio); /* one reference, both ways */
  if (c->server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (o->hostname && !set_peer_name(t->ssl, o->hostname,
                                      c->check_hostname)) {
      SSL_free(t->ssl);
      free(t);
      ERR_clear_error();
      luaL_error(L, "lasync.%s: server_hostname is not a valid host name "
                    "(got \"%s\")", fname, o->hostname);
      return;
    }
    if (key && (t->sess_key = strdup(key)) != NULL) {
      SSL_set_app_data(t->ssl, t);
      lx_sslctx_offer_session(t->ssl, key);
    }
  }
  if (s->len > 0) { /* read already: ciphertext */
    t->keep = malloc(s->len);
    if (t->keep == NULL) {
      SSL_free(t->ssl);
      free(t->sess_key);
      free(t);
      luaL_error(L, "lasync.%s: out of memory", fname);
      return;
    }
    memcpy(t->keep, s->buf + s->start, s->len);
    t->in = t->keep;
    t->in_len = s->len;
    s->start = s->len = 0;
  }
  s->tls = t;
  t->hs_timer.fire = handshake_timeout_cb;
  lx_timer_arm(s->loop, &t->hs_timer,
               d >= 1e18 ? UINT64_MAX : lx_now() + (uint64_t)d);
  pump(s); /* a client sends its hello */
  keep_rest(s);
  lx_stream_read_start(s);
}

/* [-0, +1] the error of a failed handshake, naming fname */
static void push_failure(lua_State *L, lx_stream *s, const char *fname) {
  lx_tls *t = s->tls;
  if (t->state != TLS_FAILED && t->timed_out) { /* asyncio's, the same */
    lua_pushfstring(L, "the TLS handshake took longer than %f s",
                    (lua_Number)t->hs_timeout);
    lx_os_error_new(L, UV_ECONNABORTED, fname, lua_tostring(L, -1));
    lua_remove(L, -2);
  } else if (t->err == 0 && t->vcode == X509_V_OK) {
    int err = s->read_err && s->read_err != UV_EOF ? s->read_err
                                                   : UV_ECONNRESET;
    lx_os_error_new(L, err, fname, "during the TLS handshake");
  } else {
    lx_ssl_error_new(L, fname, "TLS handshake failed", t->err, t->vcode);
  }
}

/*
** Await in task t the handshake on the stream of the writer at widx
** (started by lx_tls_start): -1 once it is done. When it fails, its
** deadline passes or t is cancelled, the connection is aborted and the
** error raised (fname names the function). Else t waits for the stream's
** next read and continues in k, which calls this again: then return what
** this returns, if it is not -1 (the result of the wait).
*/
int lx_tls_handshake(lua_State *L, lx_task *t, int widx, const char *fname,
                     lua_KFunction k) {
  lx_stream *s = *(lx_stream **)lua_touserdata(L, widx);
  lx_tls *tls;
  if (s == NULL || s->tls == NULL) /* the writer was finalized by hand */
    return luaL_error(L, "lasync.%s: the stream is gone", fname);
  tls = s->tls;
  if (tls->state == TLS_OPEN && !t->must_cancel) {
    lx_timer_disarm(s->loop, &tls->hs_timer);
    return -1;
  }
  if (t->must_cancel || tls->state == TLS_FAILED || tls->timed_out ||
      s->read_err || s->closed) {
    if (!t->must_cancel) push_failure(L, s, fname);
    lx_timer_disarm(s->loop, &tls->hs_timer);
    lx_stream_abort(s);
    if (t->must_cancel) return lx_task_raise_cancelled(L, t);
    return lua_error(L);
  }
  lx_stream_read_start(s);
  return lx_wait_on(L, t, &s->readers, k);
}

/* }====================================================================== */

/* {======================================================================
** get_extra_info
** ======================================================================= */

/* [-0, +1] the text of an X509 name, one line ("CN=localhost, O=...") */
static void push_name(lua_State *L, X509_NAME *name) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long n;
  if (b == NULL) {
    lua_pushnil(L);
    return;
  }
  X509_NAME_print_ex(b, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  n = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, n > 0 ? (size_t)n : 0);
  BIO_free(b);
}

static void push_time(lua_State *L, const ASN1_TIME *tm) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long n;
  if (b == NULL) {
    lua_pushnil(L);
    return;
  }
  ASN1_TIME_print(b, tm);
  n = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, n > 0 ? (size_t)n : 0);
  BIO_free(b);
}

/* [-0, +1] the peer's certificate as a table, or nil */
static int push_peercert(lua_State *L, SSL *ssl) {
  X509 *x = SSL_get1_peer_certificate(ssl);
  GENERAL_NAMES *san;
  int i, n = 0;
  if (x == NULL) return 0;
  lua_createtable(L, 0, 5);
  push_name(L, X509_get_subject_name(x));
  lua_setfield(L, -2, "subject");
  push_name(L, X509_get_issuer_name(x));
  lua_setfield(L, -2, "issuer");
  push_time(L, X509_get0_notBefore(x));
  lua_setfield(L, -2, "notBefore");
  push_time(L, X509_get0_notAfter(x));
  lua_setfield(L, -2, "notAfter");
  lua_newtable(L); /* subjectAltName: {{"DNS", name}, {"IP Address", ip}} */
  san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  for (i = 0; san && i < sk_GENERAL_NAME_num(san); i++) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
    char ip[64];
    if (g->type == GEN_DNS) {
      lua_createtable(L, 2, 0);
      lua_pushliteral(L, "DNS");
      lua_rawseti(L, -2, 1);
      lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                      (size_t)ASN1_STRING_length(g->d.dNSName));
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, -2, ++n);
    } else if (g->type == GEN_IPADD &&
               (ASN1_STRING_length(g->d.iPAddress) == 4 ||
                ASN1_STRING_length(g->d.iPAddress) == 16)) {
      int len = ASN1_STRING_length(g->d.iPAddress);
      inet_ntop(len == 4 ? AF_INET : AF_INET6,
                ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof ip);
      lua_createtable(L, 2, 0);
      lua_pushliteral(L, "IP Address");
      lua_rawseti(L, -2, 1);
      lua_pushstring(L, ip);
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, -2, ++n);
    }
  }
  GENERAL_NAMES_free(san);
  lua_setfield(L, -2, "subjectAltName");
  X509_free(x);
  return 1;
}

/*
** w:get_extra_info(name) for TLS: "peercert", "cipher", "tls_version",
** "alpn_protocol", "server_hostname", "ssl_object" (a table of them).
*/
int lx_tls_extra_info(lua_State *L, lx_stream *s, const char *name) {
  SSL *ssl = s->tls->ssl;
  if (s->tls->state != TLS_OPEN) return 0;
  if (strcmp(name, "peercert") == 0) return push_peercert(L, ssl);
  if (strcmp(name, "cipher") == 0) {
    lua_pushstring(L, SSL_get_cipher_name(ssl));
    return 1;
  }
  if (strcmp(name, "tls_version") == 0) {
    lua_pushstring(L, SSL_get_version(ssl));
    return 1;
  }
  if (strcmp(name, "alpn_protocol") == 0) {
    const unsigned char *p;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    if (len == 0) return 0;
    lua_pushlstring(L, (const char *)p, len);
    return 1;
  }
  if (strcmp(name, "server_hostname") == 0) {
    const char *h = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (h == NULL) return 0;
    lua_pushstring(L, h);
    return 1;
  }
  if (strcmp(name, "ssl_object") == 0) {
    static const char *const keys[] = {"cipher", "tls_version",
                                       "alpn_protocol", "server_hostname",
                                       "peercert", NULL};
    int i;
    lua_createtable(L, 0, 6);
    for (i = 0; keys[i]; i++) {
      if (lx_tls_extra_info(L, s, keys[i]) == 1)
        lua_setfield(L, -2, keys[i]);
    }
    lua_pushboolean(L, SSL_session_reused(ssl));
    lua_setfield(L, -2, "session_reused");
    return 1;
  }
  return 0;
}

/* }====================================================================== */
