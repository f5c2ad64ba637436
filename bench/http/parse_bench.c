/*
** parse_bench.c — what parsing costs per request: lasync's request path
** (bindings/http/parse.c over llhttp, strict, with its own checks) against
** a bare scanner that only finds the head's end, the lines and the colons
** (the floor under any hand-written parser, which would still have to add
** the validation strictness needs). Two requests: wrk's and a browser's.
** Build: cmake --build build --target bench_http_parse; run:
** build/bench_http_parse [iterations].
*/
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/parse.h"

static const char wrk_req[] =
  "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

static const char browser_req[] =
  "GET /api/items?page=2&sort=name HTTP/1.1\r\n"
  "Host: localhost:8080\r\n"
  "Connection: keep-alive\r\n"
  "sec-ch-ua: \"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"8\"\r\n"
  "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,"
  "image/avif,image/webp,*/*;q=0.8\r\n"
  "Accept-Encoding: gzip, deflate, br\r\n"
  "Accept-Language: en-US,en;q=0.9\r\n"
  "Cookie: session=abc123def456; theme=dark\r\n"
  "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n";

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile size_t sink;

/* lasync's request path: head, then the (empty) body, as conn.c does. */
static void lasync_parse(lx_http_parser *hp, const char *req, size_t len) {
  size_t head_len, used;
  lx_http_head_begin(hp);
  if (lx_http_parse_head(hp, req, len, &head_len) != LX_HTTP_DONE) abort();
  if (lx_http_parse_body(hp, req + head_len, len - head_len, &used) !=
      LX_HTTP_DONE)
    abort();
  sink += hp->nhdr + head_len;
}

/* The floor: the head's end, each line, each colon; no validation. */
static void bare_scan(const char *req, size_t len) {
  const char *end = memmem(req, len, "\r\n\r\n", 4), *p = req;
  size_t n = 0;
  if (end == NULL) abort();
  while (p < end) {
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    const char *colon;
    if (eol == NULL) eol = end;
    colon = memchr(p, ':', (size_t)(eol - p));
    n += colon ? (size_t)(colon - p) : 0;
    p = eol + 2;
  }
  sink += n;
}

static void run(const char *name, const char *req, long iters) {
  static lx_http_hdr hdr[100];
  lx_http_parser hp;
  size_t len = strlen(req);
  double t0, t1, t2;
  long i;
  lx_http_parser_init(&hp, hdr, 100, 8192, 1048576);
  for (i = 0; i < iters / 10; i++) lasync_parse(&hp, req, len); /* warm */
  t0 = now_ns();
  for (i = 0; i < iters; i++) lasync_parse(&hp, req, len);
  t1 = now_ns();
  for (i = 0; i < iters; i++) bare_scan(req, len);
  t2 = now_ns();
  printf("%-8s %4zu bytes: lasync (llhttp strict + checks) %6.1f ns, "
         "bare scan %6.1f ns\n", name, len, (t1 - t0) / iters,
         (t2 - t1) / iters);
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 2000000;
  run("wrk", wrk_req, iters);
  run("browser", browser_req, iters);
  return 0;
}
