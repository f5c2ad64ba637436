/*
** json_decode.c — json.decode: JSON text as Lua values, by recursive
** descent, tables built as the text is read; integer literals as Lua
** integers, arrays and objects marked.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"

/* {======================================================================
** Decoder: recursive descent, tables built as the text is read
** ======================================================================= */

typedef struct dec {
  lua_State *L;
  const unsigned char *s, *p, *end;
  jbuf *b;
  int depth, marks;
} dec;

static void dec_value(dec *d);

/* Raise "lasync.json.decode: <what> at byte N" (N counts from 1). */
static int dec_error(dec *d, const char *what) {
  d->b->busy = 0;
  return luaL_error(d->L, "lasync.json.decode: %s at byte %I", what,
                    (LUAI_UACINT)(d->p - d->s + 1));
}

/* The error for the byte at d->p: the end of input, or that byte. */
static int dec_unexpected(dec *d, const char *expected) {
  char what[96];
  unsigned c;
  if (d->p >= d->end)
    return dec_error(d, "unexpected end of input");
  c = *d->p;
  if (c > 0x20 && c < 0x7f)
    snprintf(what, sizeof what, "unexpected '%c'%s%s", (int)c,
             expected ? ", expected " : "", expected ? expected : "");
  else
    snprintf(what, sizeof what, "unexpected byte 0x%02x%s%s", c,
             expected ? ", expected " : "", expected ? expected : "");
  return dec_error(d, what);
}

static void skip_ws(dec *d) {
  while (d->p < d->end &&
         (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
    d->p++;
}

static int hex4(const unsigned char *p) {
  int i, v = 0;
  for (i = 0; i < 4; i++) {
    int c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
  }
  return v;
}

static void add_utf8(dec *d, unsigned cp) {
  char *o = jbuf_reserve(d->L, d->b, 4);
  size_t n;
  if (cp < 0x80) {
    o[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  d->b->len += n;
}

/* A \u escape at d->p (the backslash), a surrogate pair in two. */
static void dec_unicode(dec *d) {
  int hi = -1, lo = -1;
  if (d->end - d->p < 6 || (hi = hex4(d->p + 2)) < 0)
    dec_error(d, "invalid \\u escape");
  if (hi >= 0xDC00 && hi <= 0xDFFF)
    dec_error(d, "lone low surrogate in \\u escape");
  if (hi >= 0xD800 && hi <= 0xDBFF) {
    if (d->end - d->p < 12 || d->p[6] != '\\' || d->p[7] != 'u' ||
        (lo = hex4(d->p + 8)) < 0xDC00 || lo > 0xDFFF)
      dec_error(d, "lone high surrogate in \\u escape");
    add_utf8(d, 0x10000 + (((unsigned)hi - 0xD800) << 10) +
                    ((unsigned)lo - 0xDC00));
    d->p += 12;
    return;
  }
  add_utf8(d, (unsigned)hi);
  d->p += 6;
}

/* [-0, +1] the string at d->p (the opening quote): escapes decoded,
   UTF-8 checked, control characters refused */
static void dec_string(dec *d) {
  const unsigned char *p = ++d->p, *end = d->end, *run;
  lua_State *L = d->L;
  for (;;) {
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
      p++;
    if (p >= end) {
      d->p = p;
      dec_error(d, "unterminated string");
    }
    if (*p == '"' || *p == '\\') break;
    if (*p < 0x20) {
      d->p = p;
      dec_error(d, "control character in string");
    }
    {
      size_t n = lx_json_utf8_len(p, end);
      if (n == 0) {
        d->p = p;
        dec_error(d, "invalid UTF-8 in string");
      }
      p += n;
    }
  }
  if (*p == '"') {
    lua_pushlstring(L, (const char *)d->p, (size_t)(p - d->p));
    d->p = p + 1;
    return;
  }
  /* escapes: the string is rebuilt in the scratch buffer */
  d->b->len = 0;
  jbuf_add(L, d->b, (const char *)d->p, (size_t)(p - d->p));
  for (;;) {
    if (*p == '"') break;
    if (*p == '\\') {
      char c = 0;
      d->p = p;
      if (p + 1 >= end) dec_error(d, "unterminated string");
      if (p[1] == 'u') {
        dec_unicode(d);
        p = d->p;
      } else {
        switch (p[1]) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        default:
          dec_error(d, "invalid escape in string");
        }
        jbuf_add(L, d->b, &c, 1);
        p += 2;
      }
    }
    run = p;
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
      p++;
    while (p < end && *p >= 0x80) {
      size_t n = lx_json_utf8_len(p, end);
      if (n == 0) {
        d->p = p;
        dec_error(d, "invalid UTF-8 in string");
      }
      p += n;
      while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    }
    jbuf_add(L, d->b, (const char *)run, (size_t)(p - run));
    if (p >= end) {
      d->p = p;
      dec_error(d, "unterminated string");
    }
    if (*p < 0x20) {
      d->p = p;
      dec_error(d, "control character in string");
    }
  }
  lua_pushlstring(L, d->b->p, d->b->len);
  d->p = p + 1;
  lx_json_buf_shrink(d->b);
}

/*
** [-0, +1] the number at d->p. An integer literal (no fraction, no
** exponent) within int64 is an integer, else a float; one beyond a
** double's range is refused rather than read as inf.
*/
static void dec_number(dec *d) {
  const unsigned char *p = d->p, *end = d->end, *digits;
  int isint = 1;
  size_t len;
  if (*p == '-') p++;
  digits = p;
  if (p < end && *p == '0') {
    p++;
  } else if (p < end && *p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9') p++;
  } else {
    d->p = p;
    dec_unexpected(d, "a digit");
  }
  if (p < end && *p == '.') {
    isint = 0;
    p++;
    if (p >= end || *p < '0' || *p > '9') {
      d->p = p;
      dec_unexpected(d, "a digit");
    }
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    isint = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') {
      d->p = p;
      dec_unexpected(d, "a digit");
    }
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  len = (size_t)(p - d->p);
  if (isint && p - digits <= 18) { /* fits: no overflow possible */
    lua_Integer v = 0;
    const unsigned char *q;
    for (q = digits; q < p; q++) v = v * 10 + (*q - '0');
    lua_pushinteger(d->L, *d->p == '-' ? -v : v);
  } else {
    /* Lua's own reader: int64 or else a float, the locale's point */
    char small[64], *text = small;
    if (len >= sizeof small) {
      d->b->len = 0;
      text = jbuf_reserve(d->L, d->b, len + 1);
    }
    memcpy(text, d->p, len);
    text[len] = '\0';
    if (lua_stringtonumber(d->L, text) == 0)
      dec_error(d, "invalid number");
    if (!lua_isinteger(d->L, -1) && isinf(lua_tonumber(d->L, -1)))
      dec_error(d, "number out of range");
  }
  d->p = p;
}

static void dec_enter(dec *d) {
  if (++d->depth > MAX_DEPTH) dec_error(d, "nesting deeper than 1000");
  luaL_checkstack(d->L, 4, "lasync.json.decode");
}

static void dec_leave(dec *d, int mark) {
  d->depth--;
  if (d->marks) {
    lua_pushvalue(d->L, mark);
    lua_setmetatable(d->L, -2);
  }
}

/* [-0, +1] the array at d->p ('[') */
static void dec_array(dec *d) {
  lua_State *L = d->L;
  lua_Integer n = 0;
  dec_enter(d);
  d->p++;
  lua_createtable(L, 0, 0);
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
  } else {
    for (;;) {
      dec_value(d);
      lua_rawseti(L, -2, ++n);
      skip_ws(d);
      if (d->p < d->end && *d->p == ',') {
        d->p++;
      } else if (d->p < d->end && *d->p == ']') {
        d->p++;
        break;
      } else {
        dec_unexpected(d, "',' or ']'");
      }
    }
  }
  dec_leave(d, UV_ARRAY);
}

/* [-0, +1] the object at d->p ('{'); a repeated key: the last wins */
static void dec_object(dec *d) {
  lua_State *L = d->L;
  dec_enter(d);
  d->p++;
  lua_createtable(L, 0, 0);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
  } else {
    for (;;) {
      skip_ws(d);
      if (d->p >= d->end || *d->p != '"') dec_unexpected(d, "a string key");
      dec_string(d);
      skip_ws(d);
      if (d->p >= d->end || *d->p != ':') dec_unexpected(d, "':'");
      d->p++;
      dec_value(d);
      lua_rawset(L, -3);
      skip_ws(d);
      if (d->p < d->end && *d->p == ',') {
        d->p++;
      } else if (d->p < d->end && *d->p == '}') {
        d->p++;
        break;
      } else {
        dec_unexpected(d, "',' or '}'");
      }
    }
  }
  dec_leave(d, UV_OBJECT);
}

static void dec_literal(dec *d, const char *word, size_t len) {
  if ((size_t)(d->end - d->p) < len || memcmp(d->p, word, len) != 0)
    dec_unexpected(d, "a value");
  d->p += len;
}

/* [-0, +1] the value at d->p (after white space) */
static void dec_value(dec *d) {
  lua_State *L = d->L;
  skip_ws(d);
  if (d->p >= d->end) dec_unexpected(d, NULL);
  switch (*d->p) {
    case '{': dec_object(d); break;
    case '[': dec_array(d); break;
    case '"': dec_string(d); break;
    case 't': dec_literal(d, "true", 4); lua_pushboolean(L, 1); break;
    case 'f': dec_literal(d, "false", 5); lua_pushboolean(L, 0); break;
    case 'n': dec_literal(d, "null", 4); lua_pushvalue(L, UV_NULL); break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      dec_number(d);
      break;
    default:
      dec_unexpected(d, "a value");
  }
}

/* json.decode(text [, opts]) -> value */
int lx_json_decode(lua_State *L) {
  dec d;
  size_t len;
  const char *s;
  lx_argexpected(L, lua_type(L, 1) == LUA_TSTRING, 1, "string");
  s = lua_tolstring(L, 1, &len);
  d.marks = 1;
  if (!lua_isnoneornil(L, 2)) {
    lx_argexpected(L, lua_istable(L, 2), 2, "table");
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *k =
          lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "marks") == 0) {
        d.marks = lx_json_opt_bool(L, 2, k);
      } else {
        lua_pushvalue(L, -2);
        lx_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'",
                                          luaL_tolstring(L, -1, NULL)));
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);
  d.L = L;
  d.s = d.p = (const unsigned char *)s;
  d.end = d.s + len;
  d.b = lx_json_buf_acquire(L);
  d.depth = 0;
  dec_value(&d);
  skip_ws(&d);
  if (d.p < d.end) dec_unexpected(&d, "the end of input");
  lx_json_buf_done(d.b);
  return 1; /* the value, on top (over a box of its own, if any) */
}

/* }====================================================================== */
