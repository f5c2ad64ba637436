/*
** client.c — lasync.core._http_client_parser: the object that turns the
** bytes a client connection read into a response, for
** lua/lasync/http/client/: the head in one call (status, reason,
** version, keep-alive, the headers as one flat array, the framing), then
** the body (Content-Length, chunked or until close) inflated by inflate.c
** when gzip or deflate. One per pooled connection, reused by each of its
** responses.
*/
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strncasecmp */

#include "http/client.h"
#include "http/inflate.h"
#include "http/resp_parse.h"

#define CLIENT_PARSER "lasync.http.client_parser"

typedef struct client_parser {
  lx_resp_parser rp;   /* rp.hdr is malloc'd: freed by __gc */
  lx_inflate *zi;      /* the decoder of the body being read, or NULL:
                          made by its first body step, freed at its end,
                          by the next head or by __gc */
} client_parser;

static const char *const framing_names[] = {
  "none", "length", "chunked", "close"
};

static client_parser *check_parser(lua_State *L, const char *fname) {
  client_parser *cp = luaL_testudata(L, 1, CLIENT_PARSER);
  if (cp == NULL)
    luaL_error(L, "lasync.http.client_parser:%s: expected a parser (got "
                  "%s)", fname, luaL_typename(L, 1));
  if (cp->rp.hdr == NULL)
    luaL_error(L, "lasync.http.client_parser:%s: the parser is freed",
               fname);
  return cp;
}

static void drop_inflate(client_parser *cp) {
  lx_inflate_free(cp->zi);
  cp->zi = NULL;
}

/* [-0, +1] push the headers of the parsed head: {name, value, ...}, the
   names in lower case */
static void push_headers(lua_State *L, const lx_resp_parser *rp) {
  uint32_t i, j, vlen;
  char small[64];
  lua_createtable(L, (int)rp->nhdr * 2, 0);
  for (i = 0; i < rp->nhdr; i++) {
    const lx_http_hdr *h = &rp->hdr[i];
    const char *name = rp->base + h->name;
    if (h->name_len <= sizeof small) {
      for (j = 0; j < h->name_len; j++)
        small[j] = (char)tolower((unsigned char)name[j]);
      lua_pushlstring(L, small, h->name_len);
    } else {
      luaL_Buffer b;
      char *out = luaL_buffinitsize(L, &b, h->name_len);
      for (j = 0; j < h->name_len; j++)
        out[j] = (char)tolower((unsigned char)name[j]);
      luaL_pushresultsize(&b, h->name_len);
    }
    lua_rawseti(L, -2, (lua_Integer)i * 2 + 1);
    vlen = h->value_len; /* llhttp leaves trailing whitespace */
    while (vlen > 0 && (rp->base[h->value + vlen - 1] == ' ' ||
                        rp->base[h->value + vlen - 1] == '\t'))
      vlen--;
    lua_pushlstring(L, rp->base + h->value, vlen);
    lua_rawseti(L, -2, (lua_Integer)i * 2 + 2);
  }
}

/* Bits of p:head's flags: headers the session looks at. */
#define HAS_SET_COOKIE 1

static int has_set_cookie(const lx_resp_parser *rp) {
  uint32_t i;
  for (i = 0; i < rp->nhdr; i++) {
    const lx_http_hdr *h = &rp->hdr[i];
    if (h->name_len == 10 &&
        strncasecmp(rp->base + h->name, "set-cookie", 10) == 0)
      return 1;
  }
  return 0;
}

/*
** p:head(data, head_request) -> consumed, status, reason, minor,
** keep_alive, framing, content_length, head_start, flags | nil (more
** bytes needed) | false, message. Interim 1xx responses (but 101) are
** skipped: consumed counts them, head_start is where the response's own
** head begins (0-based); the headers are made only when asked for
** (lasync.core._http_client_headers(data, head_start, consumed)).
** flags: 1 when a Set-Cookie header is there.
*/
static int parser_head(lua_State *L) {
  client_parser *cp = check_parser(L, "head");
  size_t len, head_len, off = 0;
  const char *data = lx_checklstring(L, 2, &len);
  int head_request = lua_toboolean(L, 3);
  lx_resp_parser *rp = &cp->rp;
  llhttp_t *p = &rp->p;
  int r, keep;
  drop_inflate(cp);
  for (;;) {
    r = lx_resp_parse_head(rp, data + off, len - off, head_request,
                           &head_len);
    if (r == LX_HTTP_MORE) {
      lua_pushnil(L);
      return 1;
    }
    if (r == LX_HTTP_ERROR) {
      lua_pushboolean(L, 0);
      lua_pushstring(L, rp->msg);
      return 2;
    }
    if (p->status_code / 100 != 1 || p->status_code == 101) break;
    off += head_len; /* an interim response: the real one follows */
  }
  lua_pushinteger(L, (lua_Integer)(off + head_len));
  lua_pushinteger(L, p->status_code);
  lua_pushlstring(L, rp->base + rp->reason, rp->reason_len);
  lua_pushinteger(L, p->http_minor);
  if (rp->framing == LX_BODY_CLOSE || p->status_code == 101)
    keep = 0; /* 101: the connection now speaks another protocol */
  else if (p->http_minor >= 1)
    keep = !(p->flags & F_CONNECTION_CLOSE);
  else
    keep = (p->flags & F_CONNECTION_KEEP_ALIVE) != 0;
  lua_pushboolean(L, keep);
  lua_pushstring(L, framing_names[rp->framing]);
  if (p->flags & F_CONTENT_LENGTH)
    lua_pushinteger(L, (lua_Integer)p->content_length);
  else
    lua_pushnil(L);
  lua_pushinteger(L, (lua_Integer)off);
  lua_pushinteger(L, has_set_cookie(rp) ? HAS_SET_COOKIE : 0);
  return 9;
}

/*
** lasync.core._http_client_headers(data, from, to) -> {name, value, ...}:
** the headers of the head data[from, to) (0-based) that p:head parsed,
** names in lower case; parsed again here, on a parser on the C stack.
*/
static int core_client_headers(lua_State *L) {
  size_t len;
  const char *data = lx_checklstring(L, 1, &len);
  lua_Integer from = lx_checkinteger(L, 2), to = lx_checkinteger(L, 3);
  lx_http_hdr hdr[LX_RESP_MAX_HEADERS];
  lx_resp_parser rp;
  size_t head_len;
  if (from < 0 || to < from || (size_t)to > len)
    return luaL_error(L, "lasync.http.client_headers: range out of "
                         "bounds");
  lx_resp_parser_init(&rp, hdr); /* no allocation: cannot fail */
  if (lx_resp_parse_head(&rp, data + from, (size_t)(to - from), 1,
                         &head_len) != LX_HTTP_DONE)
    rp.nhdr = 0; /* not a head p:head accepted */
  push_headers(L, &rp);
  return 1;
}

/* [-0, +1] inflate the body spans of the last step into one string;
   NULL, or the error message */
static const char *inflate_pieces(lua_State *L, client_parser *cp,
                                  int done) {
  lx_resp_parser *rp = &cp->rp;
  lx_inflate *zi = cp->zi;
  luaL_Buffer b;
  unsigned i;
  luaL_buffinit(L, &b);
  for (i = 0; i <= rp->npieces; i++) {
    const char *at = i < rp->npieces ? rp->piece[i] : NULL;
    size_t left = i < rp->npieces ? rp->piece_len[i] : 0;
    do { /* feed what fits, take out all it gives */
      size_t n = left < lx_inflate_room(zi) ? left : lx_inflate_room(zi);
      size_t got;
      lx_inflate_feed(zi, at, n);
      at += n;
      left -= n;
      do {
        size_t cap = 16384;
        if (lx_inflate_run(zi, luaL_prepbuffsize(&b, cap), cap, &got) !=
            LX_INFLATE_OK)
          return zi->ended ? "data after the end of the compressed body"
                           : "the compressed body is corrupt";
        luaL_addsize(&b, got);
      } while (got > 0);
    } while (left > 0);
  }
  if (done && !zi->ended) return "the compressed body is truncated";
  luaL_pushresult(&b);
  return NULL;
}

/*
** p:body(data, pos, decompress) -> chunk, next_pos, done | false, message.
** Parses data from byte pos on (1-based); chunk is the body bytes found
** (inflated when decompress and the response is gzip or deflate).
*/
static int parser_body(lua_State *L) {
  client_parser *cp = check_parser(L, "body");
  size_t len, used;
  const char *data = lx_checklstring(L, 2, &len);
  lua_Integer pos = lx_checkinteger(L, 3);
  int decompress = lua_toboolean(L, 4);
  lx_resp_parser *rp = &cp->rp;
  int r, done;
  if (pos < 1 || (size_t)pos > len + 1)
    return luaL_error(L, "lasync.http.client_parser:body: position out "
                         "of range");
  r = lx_resp_parse_body(rp, data + pos - 1, len - (size_t)(pos - 1),
                         &used);
  if (r == LX_HTTP_ERROR) {
    drop_inflate(cp);
    lua_pushboolean(L, 0);
    lua_pushstring(L, rp->msg);
    return 2;
  }
  done = r == LX_HTTP_DONE;
  if (decompress && rp->coding != LX_CODING_IDENTITY) {
    const char *err;
    if (cp->zi == NULL && (cp->zi = lx_inflate_new(rp->coding)) == NULL)
      return luaL_error(L, "lasync.http.client_parser:body: out of "
                           "memory");
    if ((err = inflate_pieces(L, cp, done)) != NULL) {
      drop_inflate(cp);
      lua_pushboolean(L, 0);
      lua_pushstring(L, err);
      return 2;
    }
    if (done) drop_inflate(cp);
  } else if (rp->npieces == 1) {
    lua_pushlstring(L, rp->piece[0], rp->piece_len[0]);
  } else {
    luaL_Buffer b;
    unsigned i;
    luaL_buffinit(L, &b);
    for (i = 0; i < rp->npieces; i++)
      luaL_addlstring(&b, rp->piece[i], rp->piece_len[i]);
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, pos + (lua_Integer)used);
  lua_pushboolean(L, done);
  return 3;
}

/* p:eof() -> true (the close ended the body) | false, message */
static int parser_eof(lua_State *L) {
  client_parser *cp = check_parser(L, "eof");
  int r = lx_resp_parse_eof(&cp->rp);
  if (r == LX_HTTP_DONE && cp->zi && !cp->zi->ended) {
    drop_inflate(cp);
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "the compressed body is truncated");
    return 2;
  }
  drop_inflate(cp);
  if (r == LX_HTTP_DONE) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushstring(L, cp->rp.msg);
  return 2;
}

/* p:coding() -> "gzip", "deflate" or nil: the Content-Encoding decoded */
static int parser_coding(lua_State *L) {
  client_parser *cp = check_parser(L, "coding");
  static const char *const names[] = { NULL, "gzip", "deflate" };
  lua_pushstring(L, names[cp->rp.coding]);
  return 1;
}

static int parser__gc(lua_State *L) {
  client_parser *cp = luaL_testudata(L, 1, CLIENT_PARSER);
  if (cp == NULL)
    return luaL_error(L, "lasync.http.client_parser:__gc: expected a "
                         "parser (got %s)", luaL_typename(L, 1));
  drop_inflate(cp);
  lx_resp_parser_free(&cp->rp);
  return 0;
}

/* lasync.core._http_client_parser() -> a new parser */
static int core_client_parser(lua_State *L) {
  client_parser *cp;
  if (lua_gettop(L) != 0)
    return luaL_error(L, "lasync.http.client_parser: takes no arguments");
  cp = lua_newuserdatauv(L, sizeof *cp, 0);
  cp->zi = NULL;
  memset(&cp->rp, 0, sizeof cp->rp);
  luaL_setmetatable(L, CLIENT_PARSER);
  if (lx_resp_parser_init(&cp->rp, NULL) != 0)
    return luaL_error(L, "lasync.http.client_parser: out of memory");
  return 1;
}

void lx_open_http_client(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"head", parser_head},
    {"body", parser_body},
    {"eof", parser_eof},
    {"coding", parser_coding},
    {NULL, NULL}
  };
  int i;
  luaL_newmetatable(L, CLIENT_PARSER);
  lua_pushcfunction(L, parser__gc);
  lx_name_function(L, -1, "lasync.http.client_parser:", "__gc");
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, methods);
  for (i = 0; methods[i].name; i++) {
    lua_getfield(L, -1, methods[i].name);
    lx_name_function(L, -1, "lasync.http.client_parser:", methods[i].name);
    lua_pop(L, 1);
  }
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, core_client_headers);
  lx_name_function(L, -1, "lasync.http.", "client_headers");
  lua_setfield(L, -2, "_http_client_headers");
  lua_pushcfunction(L, core_client_parser);
  lx_name_function(L, -1, "lasync.http.", "client_parser");
  lua_setfield(L, -2, "_http_client_parser");
}
