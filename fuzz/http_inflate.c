/*
** http_inflate.c — libFuzzer target: the decoding of a compressed request
** body (inflate.c) as body.c drives it: compressed bytes fed in pieces of
** arbitrary sizes, no more than the decoder has room for, plaintext
** pulled out in pieces of arbitrary sizes, never past the limit and one
** byte. The first three bytes choose the coding (gzip or deflate), the
** limit and the piece sizes; the rest is the body.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/inflate.h"

#define OUT_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char out[OUT_MAX];
  lx_inflate *zi;
  uint64_t limit, total = 0;
  uint32_t seed;
  size_t pos = 3, n, piece, cap;
  unsigned sum = 0;
  if (size < 3) return 0;
  zi = lx_inflate_new(data[0] & 1 ? LX_CODING_DEFLATE : LX_CODING_GZIP);
  if (zi == NULL) abort();
  limit = (uint64_t)data[1] << (data[1] & 15); /* 0 up to about 8 MB */
  seed = data[2] | 1u;
  for (;;) {
    int r = LX_INFLATE_OK;
    /* pull plaintext out of what the decoder holds */
    while (zi->in_len > 0 && !zi->ended) {
      seed = seed * 1103515245u + 12345u;
      cap = 1 + (seed >> 16) % OUT_MAX;
      if (limit - zi->total_out + 1 < cap)
        cap = (size_t)(limit - zi->total_out + 1);
      r = lx_inflate_run(zi, out, cap, &n);
      if (n > cap) abort();
      total += n;
      if (total != zi->total_out) abort();
      if (n > 0) sum += (unsigned char)out[n - 1] + (unsigned char)out[0];
      if (r == LX_INFLATE_ERROR || n == 0) break;
      if (zi->total_out > limit) break;
    }
    if (zi->total_out > limit + 1) abort(); /* inflated past the limit */
    if (r == LX_INFLATE_ERROR || zi->total_out > limit) break;
    if (zi->ended && zi->in_len > 0) break; /* data after the end: 400 */
    if (pos == size) break; /* the body ended: truncated unless ended */
    /* more of the body, no more than there is room for */
    seed = seed * 1103515245u + 12345u;
    piece = 1 + (seed >> 16) % 5000;
    if (piece > size - pos) piece = size - pos;
    if (piece > lx_inflate_room(zi)) piece = lx_inflate_room(zi);
    if (piece == 0) abort(); /* the decoder holds a full buffer */
    lx_inflate_feed(zi, (const char *)data + pos, piece);
    pos += piece;
  }
  lx_inflate_free(zi);
  return (int)(sum & 0); /* the sum keeps the reads */
}
