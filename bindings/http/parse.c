/*
** parse.c — one HTTP/1.x request at a time through llhttp in strict mode.
** The head is parsed where it lies (the stream's buffer) and its parts are
** kept as offsets; body spans are handed out as pointers into the bytes
** given to the step. Beyond llhttp, rejects obs-fold continuation lines
** (CVE-2024-27982), trailers, bare CR or LF inside values, any transfer
** coding but chunked and any content coding but gzip and deflate, and
** applies the head, header-count and body limits.
*/
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strncasecmp */

#include "http/parse.h"

enum { SPAN_NONE, SPAN_FIELD, SPAN_VALUE };

static lx_http_parser *parser_of(llhttp_t *p) {
  return (lx_http_parser *)p; /* p is the first member */
}

/* Reject the request: the status to answer, and why. */
static int reject(lx_http_parser *hp, int status, const char *msg) {
  if (hp->status == 0) {
    hp->status = status;
    hp->msg = msg;
  }
  return HPE_USER;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  lx_http_parser *hp = parser_of(p);
  if (hp->url_len == 0) hp->url = (uint32_t)(at - hp->base);
  hp->url_len += (uint32_t)len;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  lx_http_parser *hp = parser_of(p);
  lx_http_hdr *h;
  if (hp->head_done) return reject(hp, 400, "trailers are not accepted");
  if (hp->span != SPAN_FIELD) { /* a new header */
    if (hp->nhdr >= hp->max_headers)
      return reject(hp, 431, "too many header fields");
    if (hp->nhdr >= hp->hdr_cap) { /* more than the embedder's array */
      lx_http_hdr *big = malloc(hp->max_headers * sizeof *big);
      if (big == NULL) return reject(hp, 503, "out of memory");
      memcpy(big, hp->hdr, hp->nhdr * sizeof *big);
      hp->hdr = big;
      hp->hdr_cap = hp->max_headers;
    }
    h = &hp->hdr[hp->nhdr];
    h->name = (uint32_t)(at - hp->base);
    h->name_len = 0;
    h->value = h->value_len = 0;
    hp->span = SPAN_FIELD;
  }
  hp->hdr[hp->nhdr].name_len += (uint32_t)len;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  lx_http_parser *hp = parser_of(p);
  lx_http_hdr *h = &hp->hdr[hp->nhdr];
  if (hp->span != SPAN_VALUE) {
    h->value = (uint32_t)(at - hp->base);
    h->value_len = 0;
    hp->span = SPAN_VALUE;
  }
  h->value_len += (uint32_t)len;
  return 0;
}

/*
** A header is complete: llhttp 8.1 lets an obs-fold continuation (CR LF
** then SP or HT) into the value even in strict mode; so is any CR, LF or
** NUL a value must not hold.
*/
static int on_header_value_complete(llhttp_t *p) {
  lx_http_parser *hp = parser_of(p);
  lx_http_hdr *h = &hp->hdr[hp->nhdr];
  const char *v = hp->base + h->value;
  if (hp->span != SPAN_VALUE) h->value = h->value_len = 0; /* empty */
  if (memchr(v, '\n', h->value_len) || memchr(v, '\r', h->value_len) ||
      memchr(v, '\0', h->value_len)) /* llhttp refuses the last two too */
    return reject(hp, 400, "obs-fold or a control byte in a header "
                           "value");
  hp->nhdr++;
  hp->span = SPAN_NONE;
  return 0;
}

static int name_is(const lx_http_parser *hp, const lx_http_hdr *h,
                   const char *name, size_t len) {
  return h->name_len == len &&
         strncasecmp(hp->base + h->name, name, len) == 0;
}

/*
** Transfer-Encoding must be exactly "chunked" (one coding, any case,
** one header line): a final coding other than chunked leaves the body's
** end unknown (400, RFC 9112 6.3); a coding we do not apply before it is
** 501.
*/
static int check_te(lx_http_parser *hp) {
  uint32_t i, n = 0;
  if (!(hp->p.flags & F_TRANSFER_ENCODING)) return 0;
  for (i = 0; i < hp->nhdr; i++) {
    const lx_http_hdr *h = &hp->hdr[i];
    const char *v = hp->base + h->value, *end = v + h->value_len, *last;
    if (!name_is(hp, h, "transfer-encoding", 17)) continue;
    if (++n > 1) return reject(hp, 400, "repeated Transfer-Encoding");
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    last = end;
    while (last > v && last[-1] != ',' && last[-1] != ' ' &&
           last[-1] != '\t')
      last--;
    if (end - last != 7 || strncasecmp(last, "chunked", 7) != 0)
      return reject(hp, 400, "the last transfer coding is not chunked");
    while (last > v && (last[-1] == ' ' || last[-1] == '\t')) last--;
    if (last != v) return reject(hp, 501, "unsupported transfer coding");
  }
  return 0;
}

/*
** The content coding of a body, from Content-Encoding: one header line
** naming gzip (or x-gzip), deflate or identity, in any case. Anything
** else (br, a list such as "gzip, gzip", a repeated header) is 415: the
** body could not be decoded.
*/
static int check_ce(lx_http_parser *hp) {
  uint32_t i, n = 0;
  hp->coding = LX_CODING_IDENTITY;
  for (i = 0; i < hp->nhdr; i++) {
    const lx_http_hdr *h = &hp->hdr[i];
    const char *v = hp->base + h->value, *end = v + h->value_len;
    size_t len;
    if (!name_is(hp, h, "content-encoding", 16)) continue;
    if (++n > 1)
      return reject(hp, 415, "more than one Content-Encoding");
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    len = (size_t)(end - v);
    if ((len == 4 && strncasecmp(v, "gzip", 4) == 0) ||
        (len == 6 && strncasecmp(v, "x-gzip", 6) == 0))
      hp->coding = LX_CODING_GZIP;
    else if (len == 7 && strncasecmp(v, "deflate", 7) == 0)
      hp->coding = LX_CODING_DEFLATE;
    else if (!(len == 8 && strncasecmp(v, "identity", 8) == 0))
      return reject(hp, 415, "unsupported Content-Encoding (gzip, "
                             "deflate or identity)");
  }
  return 0;
}

/*
** llhttp also takes HTTP/0.9 (no version at all), HTTP/2.0 and CONNECT:
** a request line without a version is malformed, another version is
** 505, CONNECT (a tunnel) is not implemented.
*/
static int check_line(lx_http_parser *hp) {
  llhttp_t *p = &hp->p;
  char after = hp->base[hp->url + hp->url_len];
  if (after == '\r' || after == '\n')
    return reject(hp, 400, "the request line has no HTTP version");
  if (p->http_major != 1 || p->http_minor > 1)
    return reject(hp, 505, "unsupported HTTP version");
  if (p->method == HTTP_CONNECT)
    return reject(hp, 501, "CONNECT is not supported");
  if (p->http_minor == 0 && (p->flags & F_TRANSFER_ENCODING))
    return reject(hp, 400, "Transfer-Encoding in an HTTP/1.0 request");
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  lx_http_parser *hp = parser_of(p);
  if (check_line(hp) || check_te(hp)) return -1;
  if (lx_http_has_body(hp) && check_ce(hp)) return -1;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > hp->max_body)
    return reject(hp, 413, "Content-Length exceeds the body limit"), -1;
  hp->head_done = 1;
  return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  lx_http_parser *hp = parser_of(p);
  if (len > hp->max_body - hp->body_total)
    return reject(hp, 413, "the body exceeds the limit");
  hp->body_total += len;
  hp->piece[hp->npieces] = at;
  hp->piece_len[hp->npieces] = len;
  return ++hp->npieces == LX_HTTP_PIECES ? HPE_PAUSED : 0;
}

/* A chunk is announced: refuse it at once when it cannot fit. */
static int on_chunk_header(llhttp_t *p) {
  lx_http_parser *hp = parser_of(p);
  if (p->content_length > hp->max_body - hp->body_total)
    return reject(hp, 413, "a chunk exceeds the body limit"), -1;
  return 0;
}

/* A chunk extension value spanning a bare LF (CVE-2024-52304's shape). */
static int on_chunk_ext(llhttp_t *p, const char *at, size_t len) {
  if (memchr(at, '\n', len) || memchr(at, '\r', len))
    return reject(parser_of(p), 400, "a line break in a chunk extension");
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  parser_of(p)->msg_done = 1;
  return HPE_PAUSED;
}

/* The callbacks, shared by every parser (constant: no thread sets it up). */
static const llhttp_settings_t settings = {
  .on_url = on_url,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_header_value_complete = on_header_value_complete,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_chunk_header = on_chunk_header,
  .on_chunk_extension_name = on_chunk_ext,
  .on_chunk_extension_value = on_chunk_ext,
  .on_message_complete = on_message_complete,
};

/*
** hdr has room for nhdr headers (at most max_headers): a head with more
** gets an array of max_headers, until the next head begins. A server
** keeps a few inline per connection, not max_headers.
*/
void lx_http_parser_init(lx_http_parser *hp, lx_http_hdr *hdr,
                         uint32_t nhdr, uint32_t max_headers,
                         size_t max_head, uint64_t max_body) {
  memset(hp, 0, sizeof *hp);
  llhttp_init(&hp->p, HTTP_REQUEST, &settings);
  hp->hdr = hp->own_hdr = hdr;
  hp->hdr_cap = hp->own_cap = nhdr < max_headers ? nhdr : max_headers;
  hp->max_headers = max_headers;
  hp->max_head = max_head;
  hp->max_body = max_body;
  hp->msg_done = 1; /* no request yet */
}

/* Free the header array of a head with many headers, if any. */
void lx_http_parser_free(lx_http_parser *hp) {
  if (hp->hdr != hp->own_hdr) {
    free(hp->hdr);
    hp->hdr = hp->own_hdr;
    hp->hdr_cap = hp->own_cap;
  }
}

/* Get ready for the next request's head. */
void lx_http_head_begin(lx_http_parser *hp) {
  lx_http_parser_free(hp); /* a big array is this head's only */
  llhttp_reset(&hp->p);
  hp->base = NULL;
  hp->fed = 0;
  hp->url = hp->url_len = hp->nhdr = 0;
  hp->span = SPAN_NONE;
  hp->status = 0;
  hp->msg = NULL;
  hp->head_done = hp->msg_done = 0;
  hp->coding = LX_CODING_IDENTITY;
  hp->body_total = 0;
  hp->npieces = 0;
}

/* The status for an error llhttp found by itself. */
static int llhttp_status(lx_http_parser *hp, llhttp_errno_t err) {
  if (hp->status) return hp->status; /* one of ours */
  switch (err) {
    case HPE_INVALID_VERSION:
      hp->msg = "unsupported HTTP version";
      return hp->status = 505; /* the syntax is checked below */
    case HPE_INVALID_TRANSFER_ENCODING:
      hp->msg = "invalid Transfer-Encoding";
      return hp->status = 400;
    default:
      hp->msg = llhttp_get_error_reason(&hp->p);
      if (hp->msg == NULL) hp->msg = llhttp_errno_name(err);
      return hp->status = 400;
  }
}

/*
** 505 only for a well-formed version we do not speak ("HTTP/2.0" or
** "HTTP/1.2"); anything else in its place is malformed (400).
*/
static void check_version(lx_http_parser *hp, const char *buf, size_t len) {
  const char *pos = llhttp_get_error_pos(&hp->p), *v;
  const char *end = buf + len;
  if (hp->status != 505) return;
  if (pos == NULL || pos < buf || pos > end) { hp->status = 400; return; }
  v = pos;
  while (v > buf && v[-1] != ' ') v--;
  if (end - v < 8 || memcmp(v, "HTTP/", 5) != 0 ||
      v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9' ||
      end - v < 10 || v[8] != '\r' || v[9] != '\n') {
    hp->status = 400;
    hp->msg = "malformed HTTP version";
  }
}

/*
** Parse more of a head: buf holds its first len bytes (the first
** hp->fed of which were seen before; they must not have moved relative
** to buf's start, but buf itself may). DONE: the head is *head_len bytes
** long; ERROR: hp->status and hp->msg say why.
*/
int lx_http_parse_head(lx_http_parser *hp, const char *buf, size_t len,
                       size_t *head_len) {
  llhttp_errno_t err;
  size_t from = hp->fed;
  if (len > hp->max_head + 4) len = hp->max_head + 4; /* enough to judge */
  if (len <= from) goto more;
  hp->base = buf;
  err = llhttp_execute(&hp->p, buf + from, len - from);
  if (err == HPE_PAUSED && hp->head_done) {
    *head_len = (size_t)(llhttp_get_error_pos(&hp->p) - buf);
    llhttp_resume(&hp->p);
    hp->fed = 0;
    if (*head_len > hp->max_head) {
      reject(hp, 431, "the request head is too large");
      return LX_HTTP_ERROR;
    }
    return LX_HTTP_DONE;
  }
  if (err != HPE_OK) {
    int ours = hp->status != 0;
    llhttp_status(hp, err);
    if (!ours) check_version(hp, buf, len);
    return LX_HTTP_ERROR;
  }
  hp->fed = len;
more:
  if (hp->fed > hp->max_head) {
    reject(hp, 431, "the request head is too large");
    return LX_HTTP_ERROR;
  }
  return LX_HTTP_MORE;
}

/* Whether the request whose head was parsed has a body to read. */
int lx_http_has_body(const lx_http_parser *hp) {
  return (hp->p.flags & F_CHUNKED) ||
         ((hp->p.flags & F_CONTENT_LENGTH) && hp->p.content_length > 0);
}

/*
** Parse more of the body from buf[0, len): the spans of decoded bytes
** land in hp->piece (hp->npieces of them, pointing into buf); *used bytes
** of buf were consumed. DONE: the body ended; MORE: it goes on; ERROR:
** hp->status says why (400 malformed, 413 too large).
*/
int lx_http_parse_body(lx_http_parser *hp, const char *buf, size_t len,
                       size_t *used) {
  llhttp_errno_t err;
  hp->npieces = 0;
  *used = 0;
  if (hp->msg_done) return LX_HTTP_DONE;
  if (!lx_http_has_body(hp)) {
    hp->msg_done = 1;
    return LX_HTTP_DONE;
  }
  if (len == 0) return LX_HTTP_MORE;
  hp->base = buf;
  err = llhttp_execute(&hp->p, buf, len);
  if (err == HPE_PAUSED) {
    *used = (size_t)(llhttp_get_error_pos(&hp->p) - buf);
    llhttp_resume(&hp->p);
    return hp->msg_done ? LX_HTTP_DONE : LX_HTTP_MORE;
  }
  if (err != HPE_OK) {
    llhttp_status(hp, err);
    return LX_HTTP_ERROR;
  }
  *used = len;
  return LX_HTTP_MORE;
}
