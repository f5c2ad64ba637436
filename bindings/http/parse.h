/*
** parse.h — the request parser of the HTTP layer, without Lua: llhttp
** (strict) plus what lasync rejects beyond it (obs-fold, trailers, unknown
** transfer or content codings) and its limits. Used by conn.c and by the
** fuzz target fuzz/http_request.c, which runs exactly this code.
*/
#ifndef LASYNC_HTTP_PARSE_H
#define LASYNC_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

/* A header of the head being parsed: offsets from the head's first byte. */
typedef struct lx_http_hdr {
  uint32_t name, name_len, value, value_len;
} lx_http_hdr;

/* Content codings of a request body (Content-Encoding; inflate.h). */
enum { LX_CODING_IDENTITY, LX_CODING_GZIP, LX_CODING_DEFLATE };

#define LX_HTTP_PIECES 16 /* body spans gathered by one parse step */

typedef struct lx_http_parser {
  llhttp_t p;
  const char *base;      /* the head's first byte (head parse), or NULL */
  size_t fed;            /* bytes of the head given to llhttp so far */
  size_t max_head;       /* request line + headers, bytes */
  uint64_t max_body;     /* decoded body bytes (running total) */
  uint64_t body_total;   /* decoded body bytes so far */
  uint32_t url, url_len; /* the request target, offsets from base */
  uint32_t nhdr, max_headers;
  uint32_t hdr_cap, own_cap; /* entries at hdr, at own_hdr */
  lx_http_hdr *hdr;      /* the embedder's array, or while a head has more
                            headers than that, max_headers entries of our
                            own (malloc; freed by lx_http_head_begin and
                            lx_http_parser_free) */
  lx_http_hdr *own_hdr;  /* the embedder's array */
  int span;              /* what the last header span was (parse.c) */
  int coding;            /* LX_CODING_* of the body (Content-Encoding) */
  int status;            /* the status to answer a rejected request */
  const char *msg;       /* why, for the log (static text) */
  unsigned char head_done, msg_done;
  unsigned npieces;      /* body spans of the last step */
  const char *piece[LX_HTTP_PIECES];
  size_t piece_len[LX_HTTP_PIECES];
} lx_http_parser;

/* Results of the steps below. */
enum { LX_HTTP_MORE, LX_HTTP_DONE, LX_HTTP_ERROR };

void lx_http_parser_init(lx_http_parser *hp, lx_http_hdr *hdr,
                         uint32_t nhdr, uint32_t max_headers,
                         size_t max_head, uint64_t max_body);
void lx_http_parser_free(lx_http_parser *hp);
void lx_http_head_begin(lx_http_parser *hp);
int lx_http_parse_head(lx_http_parser *hp, const char *buf, size_t len,
                       size_t *head_len);
int lx_http_parse_body(lx_http_parser *hp, const char *buf, size_t len,
                       size_t *used);
int lx_http_has_body(const lx_http_parser *hp);

#endif
