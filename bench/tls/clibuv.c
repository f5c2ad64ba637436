/* TLS echo server ceiling: raw libuv callbacks and OpenSSL driven through
 * memory BIOs (as Node and uvloop drive it), no tasks, no per-message
 * allocation. Ciphertext read from the socket goes into the connection's
 * read BIO; plaintext comes out of SSL_read into one static 64 KiB buffer
 * and goes straight back into SSL_write; the write BIO's ciphertext is
 * drained into a static buffer and echoed with uv_try_write, and only an
 * unwritten remainder is copied to the heap and queued with uv_write.
 * SSL_MODE_RELEASE_BUFFERS lets idle connections drop OpenSSL's record
 * buffers.
 * usage: tls_clibuv PORT CERTFILE KEYFILE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

typedef struct { uv_write_t req; uv_buf_t buf; } wreq_t;
typedef struct {
  uv_tcp_t tcp;
  SSL *ssl;
  BIO *rbio, *wbio; /* socket -> SSL, SSL -> socket */
  int fresh_bios;   /* replaced once after the handshake (see on_read) */
} conn_t;

static uv_loop_t *loop;
static SSL_CTX *ctx;
static char rbuf[65536], pbuf[65536], obuf[65536];

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  (void)h; (void)sz;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}
static void on_close(uv_handle_t *h) {
  conn_t *c = (conn_t *)h;
  SSL_free(c->ssl); /* frees both BIOs too */
  free(c);
}
static void conn_close(conn_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_close);
}
static void on_write(uv_write_t *r, int status) {
  (void)status;
  wreq_t *w = (wreq_t *)r;
  free(w->buf.base);
  free(w);
}

/* send whatever ciphertext SSL has produced */
static void flush(conn_t *c) {
  int n;
  while ((n = BIO_read(c->wbio, obuf, sizeof obuf)) > 0) {
    uv_buf_t out = uv_buf_init(obuf, n);
    int done = uv_try_write((uv_stream_t *)&c->tcp, &out, 1);
    if (done == n) continue;
    if (done < 0) done = 0; /* UV_EAGAIN or writes already queued */
    wreq_t *w = malloc(sizeof *w);
    w->buf = uv_buf_init(malloc(n - done), n - done);
    memcpy(w->buf.base, obuf + done, n - done);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_write)) {
      free(w->buf.base);
      free(w);
      conn_close(c);
      return;
    }
  }
}

/* give the connection new, empty memory BIOs (SSL_set_bio frees the old) */
static void conn_bios(conn_t *c) {
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(c->rbio, -1); /* empty = would block, not EOF */
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn_t *c = (conn_t *)s;
  if (n < 0) { conn_close(c); return; }
  if (n == 0) return;
  BIO_write(c->rbio, b->base, (int)n); /* a memory BIO takes it all */
  for (;;) {
    int r = SSL_read(c->ssl, pbuf, sizeof pbuf); /* runs the handshake first */
    if (r <= 0) {
      int e = SSL_get_error(c->ssl, r);
      flush(c);
      if (e != SSL_ERROR_WANT_READ) {
        conn_close(c); /* close_notify or an error */
      } else if (!c->fresh_bios && SSL_is_init_finished(c->ssl) && !BIO_pending(c->rbio) &&
                 !BIO_pending(c->wbio)) {
        /* the handshake grew both memory BIOs to its largest flight (the
         * certificate chain), and a memory BIO never shrinks: empty, they
         * are swapped once for new ones, so an idle connection holds none */
        conn_bios(c);
        c->fresh_bios = 1;
      }
      ERR_clear_error();
      return;
    }
    SSL_write(c->ssl, pbuf, r); /* into the memory BIO: never partial */
  }
}

static void on_conn(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof *c);
  uv_tcp_init(loop, &c->tcp);
  c->ssl = SSL_new(ctx);
  conn_bios(c);
  SSL_set_accept_state(c->ssl);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  } else {
    conn_close(c);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: tls_clibuv PORT CERTFILE KEYFILE\n");
    return 2;
  }
  int port = atoi(argv[1]);
  ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) || uv_listen((uv_stream_t *)&server, 1024, on_conn)) {
    fprintf(stderr, "listen failed\n");
    return 1;
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
