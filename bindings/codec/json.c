/*
** json.c — lasync.json: a JSON (RFC 8259) encoder and decoder that keeps
** Lua 5.4's integers (math.type integer <-> an integer literal), writes
** floats as the first of %.15g/%.16g/%.17g that reads back the same
** double, and marks tables as arrays or objects so that [] and {} survive
** a round trip. Owns json.null (a userdata) and the two mark metatables.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

#define MAX_DEPTH 1000 /* deeper nesting is refused both ways */
#define KEEP_BYTES (1u << 20) /* a larger scratch buffer is freed after use */

/* Upvalues shared by encode and decode (lx_push_json). */
#define UV_NULL lua_upvalueindex(1)   /* json.null */
#define UV_ARRAY lua_upvalueindex(2)  /* the array mark (a metatable) */
#define UV_OBJECT lua_upvalueindex(3) /* the object mark */
#define UV_BUF lua_upvalueindex(4)    /* the scratch buffer (a jbuf box) */

/*
** A growable byte buffer in a userdata box whose __gc frees it, so that an
** error anywhere leaks nothing. Not a luaL_Buffer: that one must sit on
** top of the stack while it grows, and the encoder pushes keys and values
** between two writes. One box per closure set, reused by every call
** (but a nested one: buf_acquire).
*/
typedef struct jbuf {
  char *p;
  size_t len, cap;
  int busy; /* a call is using it (see buf_acquire) */
} jbuf;

static int jbuf__gc(lua_State *L) {
  jbuf *b = (jbuf *)lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  return 0;
}

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* Out of line: the writes below inline to a compare and a copy. */
static NOINLINE void jbuf_grow(lua_State *L, jbuf *b, size_t n) {
  size_t cap = b->cap ? b->cap : 256;
  char *p;
  while (cap - b->len < n) {
    if (cap > ((size_t)-1) / 2) {
      b->busy = 0;
      luaL_error(L, "not enough memory");
    }
    cap *= 2;
  }
  p = (char *)realloc(b->p, cap);
  if (p == NULL) {
    b->busy = 0;
    luaL_error(L, "not enough memory");
  }
  b->p = p;
  b->cap = cap;
}

/* Room for n more bytes at b->p + b->len. */
static inline char *jbuf_reserve(lua_State *L, jbuf *b, size_t n) {
  if (b->cap - b->len < n) jbuf_grow(L, b, n);
  return b->p + b->len;
}

static inline void jbuf_add(lua_State *L, jbuf *b, const char *s,
                            size_t n) {
  if (n == 0) return; /* b->p may still be NULL */
  memcpy(jbuf_reserve(L, b, n), s, n);
  b->len += n;
}

/*
** The scratch buffer for a call of encode or decode. Neither calls Lua,
** but an allocation may run the GC, and a finalizer may call them: that
** nested call must not write into the buffer of the call it interrupted,
** so it gets a box of its own (left on the stack, anchored until it
** returns). The errors of this file clear `busy`; a memory error that
** Lua raises does not, and then each later call takes a new box, which
** is slower but still right.
*/
static jbuf *buf_acquire(lua_State *L) {
  jbuf *b = (jbuf *)lua_touserdata(L, UV_BUF);
  if (b->busy) {
    b = (jbuf *)lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    lua_getmetatable(L, UV_BUF);
    lua_setmetatable(L, -2);
  }
  b->busy = 1;
  return b;
}

/* Free a buffer grown past KEEP_BYTES: one huge text does not pin its
   memory for the life of the state. */
static void jbuf_shrink(jbuf *b) {
  b->len = 0;
  if (b->cap > KEEP_BYTES) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
  }
}

/* The call is over: the buffer is free for the next one. */
static void jbuf_done(jbuf *b) {
  b->busy = 0;
  jbuf_shrink(b);
}

/* The length of the valid UTF-8 sequence at p (RFC 3629: no overlongs,
   no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  size_t avail = (size_t)(end - p);
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0)
    return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
      return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
    if (c == 0xED && p[1] >= 0xA0) return 0; /* a surrogate */
    return 3;
  }
  if (c < 0xF5) {
    if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
        (p[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
    if (c == 0xF4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

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
      size_t n = utf8_len(p, end);
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

/* The boolean option name (its value on top) of the options at arg. */
static int opt_bool(lua_State *L, int arg, const char *name) {
  if (!lua_isboolean(L, -1))
    lx_argerror(L, arg, lua_pushfstring(L, "option '%s': boolean "
                "expected, got %s", name, luaL_typename(L, -1)));
  return lua_toboolean(L, -1);
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
      e->sort_keys = opt_bool(L, arg, k);
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
static int json_encode(lua_State *L) {
  enc ee, *e = &ee;
  jbuf *b;
  lx_argcheck(L, !lua_isnone(L, 1), 1, "value expected");
  lua_settop(L, 2);
  e->L = L;
  e->sort_keys = e->sparse_object = 0;
  e->depth = 0;
  enc_options(L, 2, e);
  e->b = b = buf_acquire(L);
  b->len = 0;
  enc_value(e, 1);
  lua_pushlstring(L, b->p, b->len);
  jbuf_done(b);
  return 1;
}

/* }====================================================================== */

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
      size_t n = utf8_len(p, end);
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
      size_t n = utf8_len(p, end);
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
  jbuf_shrink(d->b);
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
static int json_decode(lua_State *L) {
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
        d.marks = opt_bool(L, 2, k);
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
  d.b = buf_acquire(L);
  d.depth = 0;
  dec_value(&d);
  skip_ws(&d);
  if (d.p < d.end) dec_unexpected(&d, "the end of input");
  jbuf_done(d.b);
  return 1; /* the value, on top (over a box of its own, if any) */
}

/* }====================================================================== */

/* {======================================================================
** The marks and json.null
** ======================================================================= */

/* json.array(t) / json.object(t) -> t, marked (upvalues: the mark to
   set, then the two marks, which it may replace) */
static int json_mark(lua_State *L) {
  lx_checktype(L, 1, LUA_TTABLE);
  if (lua_getmetatable(L, 1)) {
    if (!lua_rawequal(L, -1, lua_upvalueindex(2)) &&
        !lua_rawequal(L, -1, lua_upvalueindex(3)))
      lx_argerror(L, 1, "table has a metatable of its own");
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

static int null__tostring(lua_State *L) {
  lua_pushliteral(L, "lasync.json.null");
  return 1;
}

/* [-0, +1] a mark: an empty metatable whose __name says what it marks */
static void push_mark(lua_State *L, const char *name) {
  lua_createtable(L, 0, 1);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
}

void lx_push_json(lua_State *L) {
  int t;
  lua_createtable(L, 0, 5);
  t = lua_gettop(L);
  lua_newuserdatauv(L, 0, 0); /* json.null */
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, null__tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "lasync.json.null");
  lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "lasync.json.null");
  lua_setfield(L, -2, "__metatable"); /* nobody changes it */
  lua_setmetatable(L, -2);
  push_mark(L, "lasync.json.array");
  push_mark(L, "lasync.json.object");
  lua_newuserdatauv(L, sizeof(jbuf), 0);
  memset(lua_touserdata(L, -1), 0, sizeof(jbuf));
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, jbuf__gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, t + 1);
  lua_setfield(L, t, "null");
  lua_pushvalue(L, t + 1);
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 3);
  lua_pushvalue(L, t + 4);
  lua_pushcclosure(L, json_encode, 4);
  lua_setfield(L, t, "encode");
  lua_pushvalue(L, t + 1);
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 3);
  lua_pushvalue(L, t + 4);
  lua_pushcclosure(L, json_decode, 4);
  lua_setfield(L, t, "decode");
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 3);
  lua_pushcclosure(L, json_mark, 3);
  lua_setfield(L, t, "array");
  lua_pushvalue(L, t + 3);
  lua_pushvalue(L, t + 2);
  lua_pushvalue(L, t + 3);
  lua_pushcclosure(L, json_mark, 3);
  lua_setfield(L, t, "object");
  lua_settop(L, t);
}

/* lasync.core.json; lx_name_functions names its functions lasync.json.* */
void lx_open_json(lua_State *L) {
  lx_push_json(L);
  lua_setfield(L, -2, "json");
}

/* }====================================================================== */
