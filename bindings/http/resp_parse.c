/*
** resp_parse.c — one HTTP/1.x response at a time through llhttp
** (HTTP_RESPONSE, lenient header bytes). The head is parsed from its first
** byte on each call (a head is small and usually comes in one read), its
** headers kept as offsets; body spans are pointers into the bytes given
** to the step. Framing stays strict: llhttp refuses Content-Length with
** chunked, a repeated Content-Length and bad chunk sizes.
*/
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strncasecmp */

#include "http/resp_parse.h"

enum { SPAN_NONE, SPAN_FIELD, SPAN_VALUE };

static lx_resp_parser *parser_of(llhttp_t *p) {
  return (lx_resp_parser *)p; /* p is the first member */
}

static int fail(lx_resp_parser *rp, const char *msg) {
  if (rp->msg == NULL) rp->msg = msg;
  return HPE_USER;
}

static int on_status(llhttp_t *p, const char *at, size_t len) {
  lx_resp_parser *rp = parser_of(p);
  if (rp->reason_len == 0) rp->reason = (uint32_t)(at - rp->base);
  rp->reason_len += (uint32_t)len;
  if (rp->reason_len > LX_RESP_MAX_LINE)
    return fail(rp, "the status line is too long");
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  lx_resp_parser *rp = parser_of(p);
  lx_http_hdr *h;
  if (rp->head_done) return 0; /* a trailer: ignored */
  if (rp->span != SPAN_FIELD) { /* a new header */
    if (rp->nhdr >= rp->cap) return fail(rp, "too many header fields");
    h = &rp->hdr[rp->nhdr];
    h->name = (uint32_t)(at - rp->base);
    h->name_len = h->value = h->value_len = 0;
    rp->span = SPAN_FIELD;
  }
  rp->hdr[rp->nhdr].name_len += (uint32_t)len;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  lx_resp_parser *rp = parser_of(p);
  lx_http_hdr *h = &rp->hdr[rp->nhdr];
  if (rp->head_done) return 0;
  if (rp->span != SPAN_VALUE) {
    h->value = (uint32_t)(at - rp->base);
    h->value_len = 0;
    rp->span = SPAN_VALUE;
  }
  h->value_len += (uint32_t)len;
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  lx_resp_parser *rp = parser_of(p);
  lx_http_hdr *h = &rp->hdr[rp->nhdr];
  if (rp->head_done) return 0;
  if (rp->span != SPAN_VALUE) h->value = h->value_len = 0; /* empty */
  if (h->name_len > LX_RESP_MAX_LINE || h->value_len > LX_RESP_MAX_LINE)
    return fail(rp, "a header line is too long");
  rp->nhdr++;
  rp->span = SPAN_NONE;
  return 0;
}

static int name_is(const lx_resp_parser *rp, const lx_http_hdr *h,
                   const char *name, size_t len) {
  return h->name_len == len &&
         strncasecmp(rp->base + h->name, name, len) == 0;
}

/* The content coding from Content-Encoding; an unknown one (br, a list)
   leaves the body as it came. */
static void find_coding(lx_resp_parser *rp) {
  uint32_t i;
  rp->coding = LX_CODING_IDENTITY;
  for (i = 0; i < rp->nhdr; i++) {
    const lx_http_hdr *h = &rp->hdr[i];
    const char *v = rp->base + h->value, *end = v + h->value_len;
    size_t len;
    if (!name_is(rp, h, "content-encoding", 16)) continue;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    len = (size_t)(end - v);
    if ((len == 4 && strncasecmp(v, "gzip", 4) == 0) ||
        (len == 6 && strncasecmp(v, "x-gzip", 6) == 0))
      rp->coding = LX_CODING_GZIP;
    else if (len == 7 && strncasecmp(v, "deflate", 7) == 0)
      rp->coding = LX_CODING_DEFLATE;
    return;
  }
}

static int on_headers_complete(llhttp_t *p) {
  parser_of(p)->head_done = 1;
  return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  lx_resp_parser *rp = parser_of(p);
  rp->piece[rp->npieces] = at;
  rp->piece_len[rp->npieces] = len;
  return ++rp->npieces == LX_RESP_PIECES ? HPE_PAUSED : 0;
}

static int on_message_complete(llhttp_t *p) {
  parser_of(p)->msg_done = 1;
  return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
  .on_status = on_status,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_header_value_complete = on_header_value_complete,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
};

/* hdr: an array of LX_RESP_MAX_HEADERS entries, or NULL to have one
   allocated. 0, or -1 when out of memory. */
int lx_resp_parser_init(lx_resp_parser *rp, lx_http_hdr *hdr) {
  memset(rp, 0, sizeof *rp);
  llhttp_init(&rp->p, HTTP_RESPONSE, &settings);
  llhttp_set_lenient_headers(&rp->p, 1); /* odd bytes in values */
  if (hdr == NULL) {
    hdr = malloc(LX_RESP_MAX_HEADERS * sizeof *hdr);
    if (hdr == NULL) return -1;
    rp->own = 1;
  }
  rp->hdr = hdr;
  rp->cap = LX_RESP_MAX_HEADERS;
  return 0;
}

void lx_resp_parser_free(lx_resp_parser *rp) {
  if (rp->own) free(rp->hdr);
  rp->hdr = NULL;
  rp->cap = 0;
}

/* How the body ends and whether the connection stays open after it. */
static void find_framing(lx_resp_parser *rp, int head_request) {
  llhttp_t *p = &rp->p;
  int status = p->status_code;
  find_coding(rp);
  if (head_request || status / 100 == 1 || status == 204 || status == 304)
    rp->framing = LX_BODY_NONE;
  else if (p->flags & F_CHUNKED)
    rp->framing = LX_BODY_CHUNKED;
  else if (p->flags & F_CONTENT_LENGTH)
    rp->framing = p->content_length > 0 ? LX_BODY_LENGTH : LX_BODY_NONE;
  else
    rp->framing = LX_BODY_CLOSE;
  rp->no_body = rp->framing == LX_BODY_NONE;
  rp->msg_done = rp->no_body;
}

/*
** Parse a head from buf[0, len) (from its first byte: the parser starts
** over). DONE: the head is *head_len bytes long (rp->framing, coding
** and the llhttp fields describe it); MORE: incomplete; ERROR: rp->msg.
*/
int lx_resp_parse_head(lx_resp_parser *rp, const char *buf, size_t len,
                       int head_request, size_t *head_len) {
  llhttp_errno_t err;
  size_t n = len > LX_RESP_MAX_HEAD + 4 ? LX_RESP_MAX_HEAD + 4 : len;
  llhttp_reset(&rp->p);
  rp->base = buf;
  rp->reason = rp->reason_len = rp->nhdr = 0;
  rp->span = SPAN_NONE;
  rp->msg = NULL;
  rp->head_done = rp->msg_done = rp->no_body = 0;
  rp->npieces = 0;
  if (n == 0) return LX_HTTP_MORE;
  err = llhttp_execute(&rp->p, buf, n);
  if (err == HPE_PAUSED && rp->head_done) {
    *head_len = (size_t)(llhttp_get_error_pos(&rp->p) - buf);
    llhttp_resume(&rp->p);
    if (*head_len > LX_RESP_MAX_HEAD) {
      rp->msg = "the response head is too large";
      return LX_HTTP_ERROR;
    }
    if (rp->p.http_major != 1) {
      rp->msg = "unsupported HTTP version";
      return LX_HTTP_ERROR;
    }
    find_framing(rp, head_request);
    return LX_HTTP_DONE;
  }
  if (err != HPE_OK) {
    if (rp->msg == NULL) rp->msg = llhttp_get_error_reason(&rp->p);
    if (rp->msg == NULL) rp->msg = llhttp_errno_name(err);
    return LX_HTTP_ERROR;
  }
  if (n > LX_RESP_MAX_HEAD) {
    rp->msg = "the response head is too large";
    return LX_HTTP_ERROR;
  }
  return LX_HTTP_MORE;
}

/*
** Parse more of the body from buf[0, len): rp->npieces spans of body
** bytes (pointing into buf); *used bytes were consumed. DONE: the body
** ended; MORE: it goes on; ERROR: rp->msg says why.
*/
int lx_resp_parse_body(lx_resp_parser *rp, const char *buf, size_t len,
                       size_t *used) {
  llhttp_errno_t err;
  rp->npieces = 0;
  *used = 0;
  if (rp->msg_done) return LX_HTTP_DONE;
  if (len == 0) return LX_HTTP_MORE;
  rp->base = buf;
  err = llhttp_execute(&rp->p, buf, len);
  if (err == HPE_PAUSED) {
    *used = (size_t)(llhttp_get_error_pos(&rp->p) - buf);
    llhttp_resume(&rp->p);
    return rp->msg_done ? LX_HTTP_DONE : LX_HTTP_MORE;
  }
  if (err != HPE_OK) {
    if (rp->msg == NULL) rp->msg = llhttp_get_error_reason(&rp->p);
    if (rp->msg == NULL) rp->msg = llhttp_errno_name(err);
    return LX_HTTP_ERROR;
  }
  *used = len;
  return LX_HTTP_MORE;
}

/* The peer closed: DONE when that ends the body, else ERROR. */
int lx_resp_parse_eof(lx_resp_parser *rp) {
  llhttp_errno_t err;
  if (rp->msg_done) return LX_HTTP_DONE;
  if (rp->framing != LX_BODY_CLOSE) {
    rp->msg = rp->framing == LX_BODY_CHUNKED
                  ? "the connection closed inside the chunked body"
                  : "the body is shorter than its Content-Length";
    return LX_HTTP_ERROR;
  }
  err = llhttp_finish(&rp->p);
  if (err != HPE_OK && err != HPE_PAUSED) {
    rp->msg = "the body did not end cleanly";
    return LX_HTTP_ERROR;
  }
  rp->msg_done = 1;
  return LX_HTTP_DONE;
}
