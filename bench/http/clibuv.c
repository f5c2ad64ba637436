/* httphello / httpjson / httpidle ceiling: raw libuv, NOT an HTTP parser.
 * It counts request ends ("\r\n\r\n", tracked across reads; requests
 * without bodies only) and looks at one byte of each request, the one after
 * "GET /": 'j' (GET /json) answers a JSON object with a per-request counter
 * (snprintf), anything else the 13-byte "Hello, world\n". No Date header,
 * no header parsing, no routing: the cost of the loop and the syscalls
 * alone. Responses for all requests completed by one read go out together
 * (uv_try_write; a remainder is copied and queued with uv_write).
 * usage: http_clibuv PORT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char HELLO[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 13\r\n\r\nHello, world\n";
#define HELLO_LEN (sizeof HELLO - 1)
#define RESP_MAX 160 /* the longest response (JSON with a 20-digit count) */

typedef struct {
  uv_tcp_t tcp;
  int match;  /* bytes of "\r\n\r\n" seen */
  size_t pos; /* bytes of the current request seen */
  int json;   /* the current request's byte 5 was 'j' */
} conn_t;
typedef struct { uv_write_t req; uv_buf_t buf; } wreq_t;
static uv_loop_t *loop;
static char rbuf[65536];
static char obuf[RESP_MAX * 256];
static unsigned long long count;

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  (void)h; (void)sz;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}
static void on_close(uv_handle_t *h) { free(h); }
static void on_write(uv_write_t *r, int status) {
  (void)status;
  wreq_t *w = (wreq_t *)r;
  free(w->buf.base);
  free(w);
}

static size_t respond(char *out, int json) {
  if (!json) {
    memcpy(out, HELLO, HELLO_LEN);
    return HELLO_LEN;
  }
  char body[64];
  int n = snprintf(body, sizeof body, "{\"message\":\"Hello, world\",\"n\":%llu}", ++count);
  return (size_t)snprintf(out, RESP_MAX, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n%s", n, body);
}

static void flush(uv_stream_t *s, char *out, size_t len) {
  uv_buf_t ob = uv_buf_init(out, len);
  int done = uv_try_write(s, &ob, 1);
  if (done < 0) done = 0;
  if ((size_t)done < len) { /* queue the remainder */
    wreq_t *w = malloc(sizeof *w);
    w->buf = uv_buf_init(malloc(len - done), len - done);
    memcpy(w->buf.base, out + done, len - done);
    uv_write(&w->req, s, &w->buf, 1, on_write);
  }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  static const char END[] = "\r\n\r\n";
  conn_t *c = (conn_t *)s;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  size_t len = 0;
  for (ssize_t i = 0; i < n; i++) {
    char ch = b->base[i];
    if (c->pos++ == 5) c->json = ch == 'j';
    if (ch == END[c->match]) {
      if (++c->match == 4) {
        if (len + RESP_MAX > sizeof obuf) { flush(s, obuf, len); len = 0; }
        len += respond(obuf + len, c->json);
        c->match = 0;
        c->pos = 0;
        c->json = 0;
      }
    } else {
      c->match = ch == '\r' ? 1 : 0;
    }
  }
  if (len) flush(s, obuf, len);
}

static void on_conn(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof *c);
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  } else {
    uv_close((uv_handle_t *)&c->tcp, on_close);
  }
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 9000;
  loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) ||
      uv_listen((uv_stream_t *)&server, 1024, on_conn)) {
    fprintf(stderr, "listen failed\n");
    return 1;
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
