/*
** http_request.c — libFuzzer target: the server's request path (parse.c:
** llhttp's callbacks, the header, limit and obs-fold checks) fed arbitrary
** bytes that arrive in arbitrary pieces, as conn.c feeds it from a
** stream's buffer: the head parsed in place while the buffer grows (and
** moves), bodies decoded step by step, pipelined requests in turn.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

#define MAX_HEADERS 32

/* The stream's buffer: bytes [start, start + len) of buf. */
typedef struct stream {
  char *buf;
  size_t start, len;
} stream;

/* More bytes arrive; the buffer always moves, so that a stale pointer
   into it is a use after free that ASan reports. */
static void arrive(stream *s, const uint8_t *data, size_t n) {
  char *p = malloc(s->len + n + 1);
  if (s->len) memcpy(p, s->buf + s->start, s->len);
  memcpy(p + s->len, data, n);
  free(s->buf);
  s->buf = p;
  s->start = 0;
  s->len += n;
}

static void consume(stream *s, size_t n) {
  s->start += n;
  s->len -= n;
}

/* What the Lua side would look at: every span of every header. */
static unsigned touch(const lx_http_parser *hp, const char *base) {
  unsigned sum = 0;
  uint32_t i, k;
  for (k = 0; k < hp->url_len; k++) sum += (unsigned char)base[hp->url + k];
  for (i = 0; i < hp->nhdr; i++) {
    const lx_http_hdr *h = &hp->hdr[i];
    for (k = 0; k < h->name_len; k++) sum += (unsigned char)base[h->name + k];
    for (k = 0; k < h->value_len; k++)
      sum += (unsigned char)base[h->value + k];
  }
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lx_http_hdr hdr[MAX_HEADERS];
  lx_http_parser hp;
  stream s = {NULL, 0, 0};
  uint32_t seed = 1;
  size_t pos = 0;
  volatile unsigned sink = 0;
  int in_body = 0, requests = 0;
  if (size >= 2) { /* the first two bytes choose the pieces */
    seed = (uint32_t)data[0] << 8 | data[1];
    data += 2;
    size -= 2;
  }
  lx_http_parser_init(&hp, hdr, MAX_HEADERS, 1024, 4096);
  lx_http_head_begin(&hp);
  for (;;) {
    size_t used = 0, head_len = 0;
    int r;
    if (in_body) {
      r = lx_http_parse_body(&hp, s.buf ? s.buf + s.start : NULL, s.len,
                             &used);
      if (r == LX_HTTP_ERROR) break;
      for (unsigned i = 0; i < hp.npieces; i++) {
        const char *p = hp.piece[i];
        if (hp.piece_len[i]) sink += (unsigned char)p[hp.piece_len[i] - 1];
      }
      consume(&s, used);
      if (r == LX_HTTP_DONE) {
        in_body = 0;
        if (++requests > 64) break;
        lx_http_head_begin(&hp);
        continue;
      }
      if (used > 0 && s.len > 0) continue;
    } else if (s.len > 0) {
      r = lx_http_parse_head(&hp, s.buf + s.start, s.len, &head_len);
      if (r == LX_HTTP_ERROR) break;
      if (r == LX_HTTP_DONE) {
        sink += touch(&hp, s.buf + s.start);
        consume(&s, head_len);
        in_body = 1;
        continue;
      }
    }
    if (pos >= size) break; /* the peer closed */
    seed = seed * 1103515245u + 12345u;
    {
      size_t n = 1 + (seed >> 16) % 64;
      if ((seed & 7) == 0) n = size - pos; /* sometimes all of the rest */
      if (n > size - pos) n = size - pos;
      arrive(&s, data + pos, n);
      pos += n;
    }
  }
  free(s.buf);
  (void)sink;
  return 0;
}
