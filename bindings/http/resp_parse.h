/*
** resp_parse.h — the response parser of the HTTP client, without Lua:
** llhttp in HTTP_RESPONSE mode, lenient about header bytes, strict about
** framing (Content-Length with chunked, repeated Content-Length, bad
** chunk sizes) and limited in head size. Used by client.c and by the
** fuzz target fuzz/http_response.c, which runs exactly this code.
*/
#ifndef LASYNC_HTTP_RESP_PARSE_H
#define LASYNC_HTTP_RESP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "http/parse.h" /* lx_http_hdr, LX_CODING_*, LX_HTTP_* results */

#define LX_RESP_MAX_HEAD 65536  /* status line + headers, bytes */
#define LX_RESP_MAX_LINE 8190   /* one header line (aiohttp's limit) */
#define LX_RESP_MAX_HEADERS 256
#define LX_RESP_PIECES 16       /* body spans gathered by one step */

/* How the body of a response ends. */
enum { LX_BODY_NONE, LX_BODY_LENGTH, LX_BODY_CHUNKED, LX_BODY_CLOSE };

typedef struct lx_resp_parser {
  llhttp_t p;
  const char *base;        /* the head's first byte during a head parse */
  uint32_t reason, reason_len; /* offsets from base */
  uint32_t nhdr, cap;
  lx_http_hdr *hdr;        /* LX_RESP_MAX_HEADERS entries: the caller's
                              array, or malloc'd (freed by
                              lx_resp_parser_free) */
  unsigned char own;       /* hdr was malloc'd here */
  int span;                /* what the last header span was */
  int coding;              /* LX_CODING_* (Content-Encoding) */
  int framing;             /* LX_BODY_* of the response */
  const char *msg;         /* why a parse failed (static text) */
  unsigned char head_done, msg_done, no_body;
  unsigned npieces;
  const char *piece[LX_RESP_PIECES];
  size_t piece_len[LX_RESP_PIECES];
} lx_resp_parser;

int lx_resp_parser_init(lx_resp_parser *rp, lx_http_hdr *hdr);
void lx_resp_parser_free(lx_resp_parser *rp);
int lx_resp_parse_head(lx_resp_parser *rp, const char *buf, size_t len,
                       int head_request, size_t *head_len);
int lx_resp_parse_body(lx_resp_parser *rp, const char *buf, size_t len,
                       size_t *used);
int lx_resp_parse_eof(lx_resp_parser *rp);

#endif
