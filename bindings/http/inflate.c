/*
** inflate.c — one compressed request body through zlib: the compressed
** bytes are copied into the object's own small buffer (the parser's spans
** point into the stream's buffer, which moves on), and plaintext comes
** out only as far as the caller has room, so a body that inflates a
** thousandfold costs no more than its limit. One object per body that
** needs it, freed when the body ends or its connection closes (body.c,
** conn.c).
*/
#include <stdlib.h>
#include <string.h>

#include "http/inflate.h"

/* A new decoder of coding (gzip or deflate), or NULL without memory. */
lx_inflate *lx_inflate_new(int coding) {
  lx_inflate *zi = malloc(sizeof *zi);
  if (zi == NULL) return NULL;
  memset(&zi->z, 0, sizeof zi->z);
  zi->coding = coding;
  zi->started = zi->ended = 0;
  zi->total_out = 0;
  zi->in_off = zi->in_len = 0;
  return zi;
}

void lx_inflate_free(lx_inflate *zi) {
  if (zi == NULL) return;
  if (zi->started) inflateEnd(&zi->z);
  free(zi);
}

/* How many more compressed bytes lx_inflate_feed takes now. */
size_t lx_inflate_room(const lx_inflate *zi) {
  return LX_INFLATE_IN - zi->in_len;
}

/* Hold len more compressed bytes (len <= lx_inflate_room). */
void lx_inflate_feed(lx_inflate *zi, const char *p, size_t len) {
  if (len == 0) return;
  if (zi->in_off > 0) { /* the held bytes go to the front first */
    memmove(zi->in, zi->in + zi->in_off, zi->in_len);
    zi->in_off = 0;
  }
  memcpy(zi->in + zi->in_len, p, len);
  zi->in_len += len;
}

/*
** Whether the first two bytes of a deflate body are a zlib header (RFC
** 1950: method 8, a window of 32 KiB at most, the check bits): browsers
** and libraries send both zlib-wrapped and raw deflate as "deflate".
*/
static int zlib_header(const unsigned char *h) {
  return (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 &&
         ((h[0] << 8) | h[1]) % 31 == 0;
}

/* Initialise zlib for the format: gzip, zlib or raw deflate. */
static int start(lx_inflate *zi) {
  int bits;
  if (zi->coding == LX_CODING_GZIP) {
    bits = 16 + MAX_WBITS; /* gzip only, not zlib too (32 +) */
  } else {
    if (zi->in_len < 2) return 0; /* not known yet */
    bits = zlib_header(zi->in + zi->in_off) ? MAX_WBITS : -MAX_WBITS;
  }
  if (inflateInit2(&zi->z, bits) != Z_OK) return -1;
  zi->started = 1;
  return 1;
}

/*
** Inflate held bytes into out[0, cap): *got bytes came out. OK with
** *got == 0: more compressed bytes are needed (or the stream ended:
** zi->ended). ERROR: the stream is corrupt, or bytes follow its end.
*/
int lx_inflate_run(lx_inflate *zi, char *out, size_t cap, size_t *got) {
  int r;
  *got = 0;
  if (zi->ended) return zi->in_len > 0 ? LX_INFLATE_ERROR : LX_INFLATE_OK;
  if (!zi->started) {
    r = start(zi);
    if (r <= 0) return r < 0 ? LX_INFLATE_ERROR : LX_INFLATE_OK;
  }
  if (zi->in_len == 0 || cap == 0) return LX_INFLATE_OK;
  zi->z.next_in = zi->in + zi->in_off;
  zi->z.avail_in = (uInt)zi->in_len;
  zi->z.next_out = (unsigned char *)out;
  zi->z.avail_out = cap > UINT32_MAX ? UINT32_MAX : (uInt)cap;
  r = inflate(&zi->z, Z_NO_FLUSH);
  *got = (size_t)((char *)zi->z.next_out - out);
  zi->total_out += *got;
  zi->in_off += zi->in_len - zi->z.avail_in;
  zi->in_len = zi->z.avail_in;
  if (zi->in_len == 0) zi->in_off = 0;
  if (r == Z_STREAM_END) {
    zi->ended = 1;
    return zi->in_len > 0 ? LX_INFLATE_ERROR : LX_INFLATE_OK;
  }
  if (r == Z_OK || r == Z_BUF_ERROR) return LX_INFLATE_OK; /* no progress
                                                             possible */
  return LX_INFLATE_ERROR; /* Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR */
}
