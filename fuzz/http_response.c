/*
** http_response.c — libFuzzer target: the client's response path
** (resp_parse.c: llhttp in response mode, the head limits, the framing
** decision, bodies by length, chunks or until close) fed arbitrary bytes
** in arbitrary pieces, as client.c gets them: the head parsed from its
** first byte each time more arrives (the buffer moves), then the body
** step by step, then EOF. The first byte picks a HEAD request or not.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/resp_parse.h"

/* What the Lua side reads: the reason and every header span. */
static unsigned touch(const lx_resp_parser *rp) {
  unsigned sum = 0;
  uint32_t i, k;
  for (k = 0; k < rp->reason_len; k++)
    sum += (unsigned char)rp->base[rp->reason + k];
  for (i = 0; i < rp->nhdr; i++) {
    const lx_http_hdr *h = &rp->hdr[i];
    for (k = 0; k < h->name_len; k++)
      sum += (unsigned char)rp->base[h->name + k];
    for (k = 0; k < h->value_len; k++)
      sum += (unsigned char)rp->base[h->value + k];
  }
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lx_resp_parser rp;
  static int ready;
  volatile unsigned sink = 0;
  uint32_t seed = 1;
  size_t pos = 1, have = 0, head_len = 0, used, off = 0;
  char *buf = NULL;
  int head_request, r = LX_HTTP_MORE;
  if (size == 0) return 0;
  if (!ready) {
    if (lx_resp_parser_init(&rp, NULL) != 0) abort();
    ready = 1;
  }
  head_request = data[0] & 1;
  /* the head: bytes arrive in pieces of 1..64, each time in a new
     buffer, parsed from the start */
  while (r == LX_HTTP_MORE && pos < size) {
    size_t n;
    char *p;
    seed = seed * 1103515245u + 12345u;
    n = 1 + (seed >> 16) % 64;
    if (n > size - pos) n = size - pos;
    p = malloc(have + n + 1);
    if (have) memcpy(p, buf, have);
    memcpy(p + have, data + pos, n);
    free(buf);
    buf = p;
    have += n;
    pos += n;
    r = lx_resp_parse_head(&rp, buf, have, head_request, &head_len);
  }
  if (r != LX_HTTP_DONE) goto out;
  sink += touch(&rp);
  /* the body: what followed the head, then the rest in pieces */
  off = head_len;
  for (;;) {
    unsigned i;
    r = lx_resp_parse_body(&rp, buf + off, have - off, &used);
    if (r == LX_HTTP_ERROR) goto out;
    for (i = 0; i < rp.npieces; i++) {
      const unsigned char *at = (const unsigned char *)rp.piece[i];
      if (rp.piece_len[i]) sink += at[0] + at[rp.piece_len[i] - 1];
    }
    off += used;
    if (r == LX_HTTP_DONE) goto out;
    if (off < have && used > 0) continue;
    if (pos >= size) {
      (void)lx_resp_parse_eof(&rp);
      goto out;
    }
    {
      size_t n;
      char *p;
      seed = seed * 1103515245u + 12345u;
      n = 1 + (seed >> 16) % 256;
      if (n > size - pos) n = size - pos;
      p = malloc(n);
      memcpy(p, data + pos, n);
      free(buf);
      buf = p;
      have = n;
      off = 0;
      pos += n;
    }
  }
out:
  free(buf);
  (void)sink;
  return 0;
}
