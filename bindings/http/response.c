/*
** response.c — writing responses on a connection: send (a whole response
** in one write), and send_head/send_chunk/send_end for a streamed body
** (Content-Length, chunked, or until close for HTTP/1.0). Header names
** must be RFC 9110 tokens and values, reasons free of CR, LF and NUL;
** everything is checked before a byte is queued. Never waits: a true
** result says the writer is above its high-water mark (await drain()).
*/
#include <stdio.h>
#include <strings.h> /* strncasecmp */

#include "http/http.h"

#define COPY_MAX 16384 /* larger bodies go out as a second buffer */

/* RFC 9110's tchar, as a table. */
static int is_tchar(unsigned char ch) {
  static const char extra[] = "!#$%&'*+-.^_`|~";
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || (ch != 0 && strchr(extra, ch) != NULL);
}

static const char *reason_of(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

/*
** prefix, then v in decimal, then suffix, into out (NUL-terminated; room
** for 64 bytes): snprintf's cost shows in a hello-world profile.
*/
static void put_number(char *out, const char *prefix, uint64_t v,
                       const char *suffix) {
  char digits[24];
  int n = 0;
  size_t len = strlen(prefix);
  memcpy(out, prefix, len);
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0) out[len++] = digits[--n];
  strcpy(out + len, suffix);
}

/* A status without a body: 1xx, 204, 304. */
static int bodyless(int status) {
  return status < 200 || status == 204 || status == 304;
}

static void check_text(lua_State *L, const char *fname, const char *what,
                       const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
      luaL_error(L, "lasync.http.conn:%s: %s contains CR, LF or NUL",
                 fname, what);
}

/* The value at vidx, checked: a string (or number) without CR, LF, NUL. */
static const char *check_value(lua_State *L, const char *fname,
                               const char *name, int vidx, size_t *vlen) {
  const char *v;
  int t = lua_type(L, vidx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "lasync.http.conn:%s: the value of header '%s' must be "
                  "a string (got %s)", fname, name, luaL_typename(L, vidx));
  v = lua_tolstring(L, vidx, vlen);
  check_text(L, fname, "a header value", v, *vlen);
  return v;
}

/*
** Check the user's headers (table at hidx, or nil) and return the bytes
** they take as header lines; *has_date says whether one is Date.
** Content-Length, Transfer-Encoding and Connection are the connection's
** to write: an error.
*/
static size_t check_headers(lua_State *L, int hidx, const char *fname,
                            int *has_date) {
  size_t total = 0;
  *has_date = 0;
  if (lua_isnil(L, hidx)) return 0;
  lua_pushnil(L);
  while (lua_next(L, hidx)) {
    size_t nlen, vlen, i;
    const char *name;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "lasync.http.conn:%s: header names must be strings "
                    "(got %s)", fname, luaL_typename(L, -2));
    name = lua_tolstring(L, -2, &nlen);
    for (i = 0; i < nlen; i++)
      if (!is_tchar((unsigned char)name[i])) break;
    if (nlen == 0 || i < nlen)
      luaL_error(L, "lasync.http.conn:%s: header name '%s' is not a "
                    "token", fname, name);
    if ((nlen == 14 && strncasecmp(name, "content-length", 14) == 0) ||
        (nlen == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) ||
        (nlen == 10 && strncasecmp(name, "connection", 10) == 0))
      luaL_error(L, "lasync.http.conn:%s: header '%s' is written by the "
                    "connection", fname, name);
    if (nlen == 4 && strncasecmp(name, "date", 4) == 0) *has_date = 1;
    if (lua_istable(L, -1)) {
      lua_Integer k, n = (lua_Integer)lua_rawlen(L, -1);
      for (k = 1; k <= n; k++) {
        lua_rawgeti(L, -1, k);
        check_value(L, fname, name, lua_gettop(L), &vlen);
        total += nlen + vlen + 4;
        lua_pop(L, 1);
      }
    } else {
      check_value(L, fname, name, lua_gettop(L), &vlen);
      total += nlen + vlen + 4;
    }
    lua_pop(L, 1);
  }
  return total;
}

static void add_line(luaL_Buffer *b, const char *name, size_t nlen,
                     const char *v, size_t vlen) {
  luaL_addlstring(b, name, nlen);
  luaL_addlstring(b, ": ", 2);
  luaL_addlstring(b, v, vlen);
  luaL_addlstring(b, "\r\n", 2);
}

/*
** Add the checked headers at hidx to b, which has room for them: no
** buffer operation grows it, so the keys lua_next pushes do not disturb
** it (lauxlib's rule for the stack while a buffer is in use).
*/
static void add_headers(lua_State *L, luaL_Buffer *b, int hidx) {
  if (lua_isnil(L, hidx)) return;
  lua_pushnil(L);
  while (lua_next(L, hidx)) {
    size_t nlen, vlen;
    const char *name = lua_tolstring(L, -2, &nlen), *v;
    if (lua_istable(L, -1)) {
      lua_Integer k, n = (lua_Integer)lua_rawlen(L, -1);
      for (k = 1; k <= n; k++) {
        lua_rawgeti(L, -1, k);
        v = lua_tolstring(L, -1, &vlen);
        add_line(b, name, nlen, v, vlen);
        lua_pop(L, 1);
      }
    } else {
      v = lua_tolstring(L, -1, &vlen);
      add_line(b, name, nlen, v, vlen);
    }
    lua_pop(L, 1);
  }
}

/*
** The head of a response into b (and `extra` more bytes of room for the
** body): status line, the user's headers, Date, the framing header
** `framing` (or none) and Connection. Arguments as send and send_head: 2
** status, 3 headers, 7 reason.
*/
static void build_head(lua_State *L, lx_http_conn *c, luaL_Buffer *b,
                       const char *fname, int status, const char *framing,
                       int keep_alive, size_t extra) {
  char line[64];
  size_t rlen, size;
  int has_date;
  const char *reason = NULL;
  if (!lua_isnoneornil(L, 7)) {
    if (lua_type(L, 7) != LUA_TSTRING)
      luaL_error(L, "lasync.http.conn:%s: reason must be a string (got "
                    "%s)", fname, luaL_typename(L, 7));
    reason = lua_tolstring(L, 7, &rlen);
    check_text(L, fname, "the reason", reason, rlen);
  } else {
    reason = reason_of(status);
    rlen = strlen(reason);
  }
  if (!lua_isnil(L, 3) && !lua_istable(L, 3))
    luaL_error(L, "lasync.http.conn:%s: headers must be a table or nil "
                  "(got %s)", fname, luaL_typename(L, 3));
  size = check_headers(L, 3, fname, &has_date);
  size += 16 + rlen + 37 + strlen(framing) + 26 + 2 + extra;
  luaL_buffinitsize(L, b, size);
  put_number(line, "HTTP/1.1 ", (uint64_t)status, " ");
  luaL_addstring(b, line);
  luaL_addlstring(b, reason, rlen);
  luaL_addlstring(b, "\r\n", 2);
  add_headers(L, b, 3);
  if (!has_date) add_line(b, "Date", 4, lx_http_date_now(), 29);
  luaL_addstring(b, framing);
  if (!keep_alive && c->minor == 1)
    luaL_addlstring(b, "Connection: close\r\n", 19);
  else if (keep_alive && c->minor == 0)
    luaL_addlstring(b, "Connection: keep-alive\r\n", 24);
  luaL_addlstring(b, "\r\n", 2);
}

static int check_status(lua_State *L, const char *fname) {
  int isint;
  lua_Integer st = lua_tointegerx(L, 2, &isint);
  if (!isint || st < 100 || st > 999)
    luaL_error(L, "lasync.http.conn:%s: status must be an integer "
                  "between 100 and 999", fname);
  return (int)st;
}

static lx_stream *open_stream(lua_State *L, lx_http_conn *c,
                              const char *fname) {
  lx_stream *s = c->s;
  if (s->closing || s->closed)
    luaL_error(L, "lasync.http.conn:%s: the stream is closed", fname);
  if (s->tls) lx_tls_check_write(L, s, "http.conn:send");
  return s;
}

/*
** conn:send(status, headers, body, keep_alive, head_only[, reason]) ->
** whether the writer is above its high-water mark
*/
int lx_http_send(lua_State *L) {
  lx_http_conn *c = lx_http_check(L, "send");
  int status = check_status(L, "send");
  size_t blen = 0;
  const char *body = NULL;
  int keep_alive = lua_toboolean(L, 5), head_only = lua_toboolean(L, 6);
  char framing[64];
  luaL_Buffer b;
  lx_stream *s;
  lua_settop(L, 7);
  if (!lua_isnil(L, 4)) {
    if (lua_type(L, 4) != LUA_TSTRING)
      return luaL_error(L, "lasync.http.conn:send: body must be a string "
                           "or nil (got %s)", luaL_typename(L, 4));
    body = lua_tolstring(L, 4, &blen);
  }
  s = open_stream(L, c, "send");
  if (bodyless(status)) {
    framing[0] = '\0';
    blen = 0;
  } else {
    put_number(framing, "Content-Length: ", blen, "\r\n");
  }
  if (head_only) blen = 0;
  build_head(L, c, &b, "send", status, framing, keep_alive,
             blen <= COPY_MAX ? blen : 0);
  if (blen <= COPY_MAX) {
    if (blen > 0) luaL_addlstring(&b, body, blen);
    blen = 0;
  }
  luaL_pushresult(&b);
  {
    size_t hlen;
    const char *head = lua_tolstring(L, -1, &hlen);
    lx_stream_send(s, head, hlen);
    if (blen) lx_stream_send(s, body, blen);
  }
  c->out = LX_OUT_NONE;
  lua_pushboolean(L, lx_stream_above_high(s));
  return 1;
}

/*
** conn:send_head(status, headers, length, keep_alive, head_only[,
** reason]): the head of a streamed response; length nil: chunked
** (HTTP/1.1) or until close (HTTP/1.0)
*/
int lx_http_send_head(lua_State *L) {
  lx_http_conn *c = lx_http_check(L, "send_head");
  int status = check_status(L, "send_head");
  int keep_alive = lua_toboolean(L, 5), head_only = lua_toboolean(L, 6);
  char framing[64];
  luaL_Buffer b;
  lx_stream *s;
  int out;
  lua_settop(L, 7);
  framing[0] = '\0';
  if (bodyless(status)) {
    out = LX_OUT_NONE;
  } else if (!lua_isnil(L, 4)) {
    int isint;
    lua_Integer n = lua_tointegerx(L, 4, &isint);
    if (!isint || n < 0)
      return luaL_error(L, "lasync.http.conn:send_head: length must be an "
                           "integer >= 0 or nil");
    put_number(framing, "Content-Length: ", (uint64_t)n, "\r\n");
    out = LX_OUT_LENGTH;
  } else if (c->minor == 1) {
    strcpy(framing, "Transfer-Encoding: chunked\r\n");
    out = LX_OUT_CHUNKED;
  } else {
    keep_alive = 0; /* HTTP/1.0: the body ends when the connection does */
    out = LX_OUT_CLOSE;
  }
  s = open_stream(L, c, "send_head");
  build_head(L, c, &b, "send_head", status, framing, keep_alive, 0);
  luaL_pushresult(&b);
  {
    size_t hlen;
    const char *head = lua_tolstring(L, -1, &hlen);
    lx_stream_send(s, head, hlen);
  }
  c->out = head_only ? LX_OUT_NONE : out;
  c->head_only = (unsigned char)head_only;
  lua_pushboolean(L, lx_stream_above_high(s));
  return 1;
}

/* conn:send_chunk(data): body bytes of the streamed response */
int lx_http_send_chunk(lua_State *L) {
  lx_http_conn *c = lx_http_check(L, "send_chunk");
  size_t len;
  const char *data;
  lx_stream *s;
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "lasync.http.conn:send_chunk: data must be a "
                         "string (got %s)", luaL_typename(L, 2));
  data = lua_tolstring(L, 2, &len);
  if (c->out == LX_OUT_NONE && !c->head_only)
    return luaL_error(L, "lasync.http.conn:send_chunk: no streamed "
                         "response (call send_head first)");
  s = open_stream(L, c, "send_chunk");
  if (len > 0 && c->out == LX_OUT_CHUNKED) {
    char size[24];
    luaL_Buffer b;
    luaL_buffinitsize(L, &b, len + 32);
    luaL_addlstring(&b, size, (size_t)snprintf(size, sizeof size,
                                               "%zx\r\n", len));
    luaL_addlstring(&b, data, len);
    luaL_addlstring(&b, "\r\n", 2);
    luaL_pushresult(&b);
    data = lua_tolstring(L, -1, &len);
    lx_stream_send(s, data, len);
  } else if (len > 0 && c->out != LX_OUT_NONE) {
    lx_stream_send(s, data, len);
  }
  lua_pushboolean(L, lx_stream_above_high(s));
  return 1;
}

/* conn:send_end(): the end of the streamed response */
int lx_http_send_end(lua_State *L) {
  lx_http_conn *c = lx_http_check(L, "send_end");
  lx_stream *s = open_stream(L, c, "send_end");
  if (c->out == LX_OUT_CHUNKED) lx_stream_send(s, "0\r\n\r\n", 5);
  c->out = LX_OUT_NONE;
  c->head_only = 0;
  lua_pushboolean(L, lx_stream_above_high(s));
  return 1;
}
