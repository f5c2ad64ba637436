/*
** json.h — what the files of lasync.json share (json.c: the scratch
** buffer, UTF-8, options, the module; json_encode.c; json_decode.c).
** Included by those three only; the layer's header is codec.h.
*/
#ifndef LASYNC_CODEC_JSON_H
#define LASYNC_CODEC_JSON_H

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
** (but a nested one: lx_json_buf_acquire).
*/
typedef struct jbuf {
  char *p;
  size_t len, cap;
  int busy; /* a call is using it (see lx_json_buf_acquire) */
} jbuf;

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

LX_HIDDEN NOINLINE void lx_json_buf_grow(lua_State *L, jbuf *b, size_t n);

/* Room for n more bytes at b->p + b->len. */
static inline char *jbuf_reserve(lua_State *L, jbuf *b, size_t n) {
  if (b->cap - b->len < n) lx_json_buf_grow(L, b, n);
  return b->p + b->len;
}

static inline void jbuf_add(lua_State *L, jbuf *b, const char *s,
                            size_t n) {
  if (n == 0) return; /* b->p may still be NULL */
  memcpy(jbuf_reserve(L, b, n), s, n);
  b->len += n;
}

/* The scratch buffer of a call of encode or decode, and its release. */
LX_HIDDEN jbuf *lx_json_buf_acquire(lua_State *L);
LX_HIDDEN void lx_json_buf_done(jbuf *b);
/* Empty it, freeing a buffer grown past KEEP_BYTES. */
LX_HIDDEN void lx_json_buf_shrink(jbuf *b);
/* The length of the valid UTF-8 sequence at p, or 0. */
LX_HIDDEN size_t lx_json_utf8_len(const unsigned char *p,
                                  const unsigned char *end);
/* The boolean option name (its value on top) of the options at arg. */
LX_HIDDEN int lx_json_opt_bool(lua_State *L, int arg, const char *name);
/* json.encode(value [, opts]) and json.decode(text [, opts]) */
LX_HIDDEN int lx_json_encode(lua_State *L);
LX_HIDDEN int lx_json_decode(lua_State *L);

#endif
