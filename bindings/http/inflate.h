/*
** inflate.h — the decoding of a compressed request body (Content-Encoding
** gzip or deflate) with zlib, without Lua: body.c feeds it the parser's
** body spans and pulls plaintext out within its limits; the fuzz target
** fuzz/http_inflate.c runs exactly this code.
*/
#ifndef LASYNC_HTTP_INFLATE_H
#define LASYNC_HTTP_INFLATE_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "http/parse.h" /* LX_CODING_* */

#define LX_INFLATE_IN 4096 /* compressed bytes held at most */

typedef struct lx_inflate {
  z_stream z;            /* initialised once the format is known */
  int coding;            /* LX_CODING_GZIP or LX_CODING_DEFLATE */
  unsigned char started; /* inflateInit2 done (inflateEnd is owed) */
  unsigned char ended;   /* the compressed stream's end was seen */
  uint64_t total_out;    /* plaintext bytes produced so far */
  size_t in_off, in_len; /* the compressed bytes not inflated yet */
  unsigned char in[LX_INFLATE_IN];
} lx_inflate;

/* Results of lx_inflate_run. */
enum { LX_INFLATE_OK, LX_INFLATE_ERROR };

lx_inflate *lx_inflate_new(int coding);
void lx_inflate_free(lx_inflate *zi);
size_t lx_inflate_room(const lx_inflate *zi);
void lx_inflate_feed(lx_inflate *zi, const char *p, size_t len);
int lx_inflate_run(lx_inflate *zi, char *out, size_t cap, size_t *got);

#endif
