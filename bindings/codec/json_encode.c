/*
** json_encode.c — json.encode: a Lua value as JSON text, integers exact,
** floats as the first of %.15g/%.16g/%.17g that reads back the same
** double, tables as arrays or objects by their keys or their mark.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"

/* {======================================================================
** Encoder
** ======================================================================= */

#define ENC "lasync.json.encode"

typedef struct enc {
  lua_State *L;
  jbuf *b;
  int sort_keys, sparse_object;
  int depth;
  const void *path[MAX_DEPTH]; /* the tables being encoded, outermost
                                  first: a cycle's error message */
} enc;

static void enc_value(enc *e, int idx);

/* Raise "lasync.json.encode: <fmt>" (lua_pushfstring's formats). */
static int enc_error(enc *e, const char *fmt, ...) {
  va_list ap;
  e->b->busy = 0;
  lua_pushstring(e->L, ENC ": ");
  va_start(ap, fmt);
  lua_pushvfstring(e->L, fmt, ap);
  va_end(ap);
  lua_concat(e->L, 2);
  return lua_error(e->L);
}

/* What follows a backslash for each byte below 0x80 that needs one ('u':
   \u00XX), 0 for a byte copied as is; 1 for the bytes of UTF-8. */
static const char escapes[256] = {
  /* 00 */ 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
  /* 08 */ 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
  /* 10 */ 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
  /* 18 */ 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
  /* 20 */ 0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  /* 30 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  /* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  /* 50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0,
  /* 60 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  /* 70 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  /* 80 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  /* 90 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  /* a0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  /* b0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  /* c0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  /* d0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  /* e0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  /* f0 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
};

/*
** A Lua string as a JSON string: '"' and '\' and the control characters
** escaped (NUL as \u0000), UTF-8 copied as is. Invalid UTF-8 is an error:
** JSON text is Unicode, and escaping each bad byte as a code point would
** change the bytes a reader gets back.
*/
static void enc_string(enc *e, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  const unsigned char *run = p;
  lua_State *L = e->L;
  jbuf_reserve(L, e->b, len + 2);
  e->b->p[e->b->len++] = '"';
  while (p < end) {
    int c = escapes[*p];
    if (c == 0) {
      p++;
    } else if (c == 1) {
      size_t n = lx_json_utf8_len(p, end);
      if (n == 0)
        enc_error(e, "invalid UTF-8 in a string (byte %d of %d)",
                  (int)(p - (const unsigned char *)s) + 1, (int)len);
      p += n;
    } else {
      char *o;
      jbuf_add(L, e->b, (const char *)run, (size_t)(p - run));
      o = jbuf_reserve(L, e->b, 6);
      o[0] = '\\';
      o[1] = (char)c;
      if (c == 'u') {
        o[2] = '0';
        o[3] = '0';
        o[4] = hex[*p >> 4];
        o[5] = hex[*p & 15];
        e->b->len += 6;
      } else {
        e->b->len += 2;
      }
      run = ++p;
    }
  }
  jbuf_add(L, e->b, (const char *)run, (size_t)(p - run));
  jbuf_add(L, e->b, "\"", 1);
}

/* An integer in decimal into out (at least 21 bytes); its length. */
static int fmt_integer(char *out, lua_Integer i) {
  char tmp[24];
  int n = 0, k = 0;
  lua_Unsigned u = i < 0 ? 0u - (lua_Unsigned)i : (lua_Unsigned)i;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (i < 0) out[k++] = '-';
  while (n > 0) out[k++] = tmp[--n];
  return k;
}

/*
** The fast path of fmt_float for 1e-4 <= |d| < 1e15 (where %g writes no
** exponent): the fewest fraction digits k for which the integer m
** nearest d * 10^k is below 10^15 and m / 10^k == d. Both are exact
** doubles, so that division rounds as strtod reads the decimal; and a
** decimal of at most 15 digits within half an ulp of d is the one %.15g
** writes, so the text is the slow path's. If %.15g reads back, its
** digits times 10^k are within 0.25 of d * 10^k (two roundings of at
** most 2^-53 each, m < 10^15), so that k finds them: -1 (none found)
** tells fmt_float that %.15g would not read back. 0: out of range.
*/
static int fmt_short(char *out, double d) {
  static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                                 1e15, 1e16, 1e17, 1e18};
  double a = fabs(d);
  int k;
  if (!(a >= 1e-4 && a < 1e15)) return 0;
  for (k = 0; k <= 18; k++) {
    double s = a * pow10[k], r;
    if (s >= 1e15) return -1;
    r = floor(s + 0.5);
    if (r < 1e15 && r / pow10[k] == a) {
      char digits[24];
      int n = 0, len = 0, i;
      int64_t m = (int64_t)r;
      while (k > 0 && m % 10 == 0) { /* 9711.540: k was one too many */
        m /= 10;
        k--;
      }
      do {
        digits[n++] = (char)('0' + m % 10);
        m /= 10;
      } while (m != 0);
      if (d < 0) out[len++] = '-';
      if (n <= k) { /* 0.00ddd */
        out[len++] = '0';
        out[len++] = '.';
        for (i = n; i < k; i++) out[len++] = '0';
      }
      for (i = n - 1; i >= 0; i--) {
        out[len++] = digits[i];
        if (i == k && k > 0) out[len++] = '.';
      }
      if (k == 0) {
        out[len++] = '.';
        out[len++] = '0';
      }
      return len;
    }
  }
  return -1;
}

/*
** A finite double into out (at least 32 bytes) as the first of %.15g,
** %.16g, %.17g that strtod reads back to the same value (Python's repr
** writes the shortest digits: mostly the same text), with ".0" added
** when it would read as an integer, so that a float stays a float. The
** locale's decimal point becomes '.'.
*/
static int fmt_float(char *out, double d) {
  int i, n, marked = 0;
  n = fmt_short(out, d);
  if (n > 0) return n;
  if (n == 0) n = snprintf(out, 32, "%.15g", d);
  if (n < 0 || strtod(out, NULL) != d) {
    n = snprintf(out, 32, "%.16g", d);
    if (strtod(out, NULL) != d) n = snprintf(out, 32, "%.17g", d);
  }
  for (i = 0; i < n; i++) {
    char c = out[i];
    if (c == 'e') {
      marked = 1;
    } else if ((c < '0' || c > '9') && c != '-' && c != '+') {
      out[i] = '.';
      marked = 1;
    }
  }
  if (!marked) {
    out[n++] = '.';
    out[n++] = '0';
  }
  return n;
}

static void enc_number(enc *e, int idx) {
  char *o = jbuf_reserve(e->L, e->b, 32);
  if (lua_isinteger(e->L, idx)) {
    e->b->len += (size_t)fmt_integer(o, lua_tointeger(e->L, idx));
  } else {
    double d = (double)lua_tonumber(e->L, idx);
    if (isnan(d)) enc_error(e, "cannot encode NaN");
    if (isinf(d))
      enc_error(e, "cannot encode %s", d > 0 ? "inf" : "-inf");
    e->b->len += (size_t)fmt_float(o, d);
  }
}

/* The mark of the table at idx: 1 array, 2 object, 0 none. */
static int mark_of(lua_State *L, int idx) {
  int mark = 0;
  if (!lua_getmetatable(L, idx)) return 0;
  if (lua_rawequal(L, -1, UV_ARRAY))
    mark = 1;
  else if (lua_rawequal(L, -1, UV_OBJECT))
    mark = 2;
  lua_pop(L, 1);
  return mark;
}

/* What the keys of a table are (one pass with lua_next). */
typedef struct keys {
  lua_Integer n;      /* how many */
  lua_Integer ints;   /* how many are integers >= 1 */
  lua_Integer max;    /* the largest of them */
  lua_Integer strs;   /* how many are strings */
  lua_Integer bad_int; /* an integer key < 1 (when ints + strs < n) */
  int has_bad_int;
} keys;

/* Count the keys of the table at idx; raise on a key JSON cannot hold. */
static void keys_count(enc *e, int idx, keys *k) {
  lua_State *L = e->L;
  memset(k, 0, sizeof *k);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1); /* the value */
    k->n++;
    if (lua_type(L, -1) == LUA_TSTRING) {
      k->strs++;
    } else if (lua_isinteger(L, -1)) {
      lua_Integer i = lua_tointeger(L, -1);
      if (i >= 1) {
        k->ints++;
        if (i > k->max) k->max = i;
      } else {
        k->bad_int = i;
        k->has_bad_int = 1;
      }
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      enc_error(e, "table key %f is not a string or an integer",
                lua_tonumber(L, -1));
    } else {
      enc_error(e, "table key of type %s is not a string or an "
                "integer", luaL_typename(L, -1));
    }
  }
}

/* [-0, +1] push the first integer key of the table at idx (error path) */
static lua_Integer first_int_key(lua_State *L, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1)) return lua_tointeger(L, -1);
  }
  return 0;
}

/* [-0, +0] raise naming a string key of the table at idx (error path) */
static void string_key_error(enc *e, int idx, const char *why) {
  lua_State *L = e->L;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING)
      enc_error(e, "%s (key \"%s\")", why, lua_tostring(L, -1));
  }
}

static void enc_array(enc *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  lua_Integer i;
  jbuf_add(L, e->b, "[", 1);
  for (i = 1; i <= n; i++) {
    if (i > 1) jbuf_add(L, e->b, ",", 1);
    lua_rawgeti(L, idx, i);
    enc_value(e, lua_gettop(L));
    lua_pop(L, 1);
  }
  jbuf_add(L, e->b, "]", 1);
}

/* The key at -2 (a string or an integer) as a JSON string. */
static void enc_key(enc *e) {
  lua_State *L = e->L;
  if (lua_type(L, -2) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -2, &len);
    enc_string(e, s, len);
  } else {
    char *o = jbuf_reserve(L, e->b, 24);
    o[0] = '"';
    e->b->len += 1 + (size_t)fmt_integer(o + 1, lua_tointeger(L, -2));
    e->b->p[e->b->len++] = '"';
  }
}

/* An entry of a sorted object: the key's text; i its index in the keys
   table (which anchors the strings s points into). */
typedef struct sorted {
  const char *s;
  size_t len;
  lua_Integer i;
} sorted;

static int sorted_cmp(const void *a, const void *b) {
  const sorted *x = (const sorted *)a, *y = (const sorted *)b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c != 0) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* sort_keys: the keys collected, sorted by their bytes, then written. */
static void enc_object_sorted(enc *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  lua_Integer i = 0, j;
  sorted *v;
  int ks, kt;
  v = (sorted *)lua_newuserdatauv(L, (size_t)n * sizeof *v, 0);
  lua_createtable(L, (int)n, 0); /* key texts, anchored */
  ks = lua_gettop(L);
  lua_createtable(L, (int)n, 0); /* the keys themselves */
  kt = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    i++;
    lua_pushvalue(L, -1);
    lua_rawseti(L, kt, i);
    if (lua_type(L, -1) == LUA_TSTRING)
      lua_pushvalue(L, -1);
    else
      lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -1));
    v[i - 1].s = lua_tolstring(L, -1, &v[i - 1].len);
    v[i - 1].i = i;
    lua_rawseti(L, ks, i);
  }
  qsort(v, (size_t)n, sizeof *v, sorted_cmp);
  jbuf_add(L, e->b, "{", 1);
  for (j = 0; j < n; j++) {
    if (j > 0) jbuf_add(L, e->b, ",", 1);
    enc_string(e, v[j].s, v[j].len);
    jbuf_add(L, e->b, ":", 1);
    lua_rawgeti(L, kt, v[j].i);
    lua_rawget(L, idx);
    enc_value(e, lua_gettop(L));
    lua_pop(L, 1);
  }
  jbuf_add(L, e->b, "}", 1);
  lua_pop(L, 3);
}

static void enc_object(enc *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  int first = 1;
  if (e->sort_keys && n > 1) {
    enc_object_sorted(e, idx, n);
    return;
  }
  jbuf_add(L, e->b, "{", 1);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (!first) jbuf_add(L, e->b, ",", 1);
    first = 0;
    enc_key(e);
    jbuf_add(L, e->b, ":", 1);
    enc_value(e, lua_gettop(L));
    lua_pop(L, 1);
  }
  jbuf_add(L, e->b, "}", 1);
}

/*
** A table: an array when its keys are exactly 1..n (or it is empty and
** marked json.array), an object when they are all strings (or it is
** marked json.object, or sparse = "object": integer keys then become
** strings). Anything else is refused, naming a key.
*/
static void enc_table(enc *e, int idx) {
  lua_State *L = e->L;
  const void *me = lua_topointer(L, idx);
  keys k;
  int i, mark;
  if (e->depth >= MAX_DEPTH) {
    /* a cycle never ends, so it always gets here: tell it apart only
       now, which keeps the common case free of any lookup */
    for (i = 0; i < e->depth; i++)
      if (e->path[i] == me)
        enc_error(e, "a table contains itself (a cycle)");
    enc_error(e, "nesting deeper than %d", MAX_DEPTH);
  }
  e->path[e->depth++] = me;
  luaL_checkstack(L, 8, ENC);
  mark = mark_of(L, idx);
  keys_count(e, idx, &k);
  if (k.n == 0) {
    jbuf_add(L, e->b, mark == 1 ? "[]" : "{}", 2);
  } else if (k.ints == k.n && k.max == k.n && mark != 2) {
    enc_array(e, idx, k.n);
  } else if (k.strs == k.n) {
    if (mark == 1) string_key_error(e, idx, "a json.array has a string key");
    enc_object(e, idx, k.n);
  } else if (mark == 2 || (e->sparse_object && mark != 1)) {
    enc_object(e, idx, k.n);
  } else if (mark == 1 || k.strs == 0) {
    lua_Integer key = k.has_bad_int ? k.bad_int : k.max;
    enc_error(e, "sparse array (key %I, %I keys); mark it "
              "json.object or pass sparse = \"object\"",
              (LUAI_UACINT)key, (LUAI_UACINT)k.n);
  } else {
    enc_error(e, "table has both string and integer keys (key %I); "
              "mark it json.object or pass sparse = \"object\"",
              (LUAI_UACINT)first_int_key(L, idx));
  }
  e->depth--;
}

static void enc_value(enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      jbuf_add(L, e->b, "null", 4);
      break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx))
        jbuf_add(L, e->b, "true", 4);
      else
        jbuf_add(L, e->b, "false", 5);
      break;
    case LUA_TNUMBER:
      enc_number(e, idx);
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      enc_string(e, s, len);
      break;
    }
    case LUA_TTABLE:
      enc_table(e, idx);
      break;
    case LUA_TUSERDATA:
      if (lua_rawequal(L, idx, UV_NULL)) {
        jbuf_add(L, e->b, "null", 4);
        break;
      }
      /* fall through */
    default:
      enc_error(e, "cannot encode a %s", luaL_typename(L, idx));
  }
}


/* Read the options table at arg; an unknown key is an argument error. */
static void enc_options(lua_State *L, int arg, enc *e) {
  if (lua_isnoneornil(L, arg)) return;
  lx_argexpected(L, lua_istable(L, arg), arg, "table");
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    const char *k =
        lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(k, "sort_keys") == 0) {
      e->sort_keys = lx_json_opt_bool(L, arg, k);
    } else if (strcmp(k, "sparse") == 0) {
      const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                      : "";
      if (strcmp(v, "object") == 0)
        e->sparse_object = 1;
      else if (strcmp(v, "error") == 0)
        e->sparse_object = 0;
      else
        lx_argerror(L, arg, "option 'sparse': \"error\" or \"object\" "
                    "expected");
    } else {
      lua_pushvalue(L, -2);
      lx_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'",
                                          luaL_tolstring(L, -1, NULL)));
    }
    lua_pop(L, 1);
  }
}

/* json.encode(value [, opts]) -> string */
int lx_json_encode(lua_State *L) {
  enc ee, *e = &ee;
  jbuf *b;
  lx_argcheck(L, !lua_isnone(L, 1), 1, "value expected");
  lua_settop(L, 2);
  e->L = L;
  e->sort_keys = e->sparse_object = 0;
  e->depth = 0;
  enc_options(L, 2, e);
  e->b = b = lx_json_buf_acquire(L);
  b->len = 0;
  enc_value(e, 1);
  lua_pushlstring(L, b->p, b->len);
  lx_json_buf_done(b);
  return 1;
}

/* }====================================================================== */
