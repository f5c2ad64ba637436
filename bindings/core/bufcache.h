/*
** A loop's free list of buffers of one size, linked through their first
** bytes. Streams that let go of a buffer often (an HTTP connection before
** its keep-alive wait, a TLS stream whose reader took every byte) take
** one back with two pointer moves instead of a malloc and a free: besides
** the calls, that churn at the top of glibc's heap made it give pages
** back to the kernel and fault them in again (0.8 page faults per 4 KB
** tlsecho round trip).
*/
#ifndef LX_BUFCACHE_H
#define LX_BUFCACHE_H

#include <stdlib.h>
#include <string.h>

typedef struct lx_bufcache {
  char *head;  /* a free buffer, whose first bytes point at the next */
  unsigned n;  /* how many */
} lx_bufcache;

/* A free buffer, or NULL when there is none. */
static inline char *lx_bufcache_get(lx_bufcache *c) {
  char *b = c->head;
  if (b != NULL) {
    memcpy(&c->head, b, sizeof c->head);
    c->n--;
  }
  return b;
}

/* Keep b for the next get, or free it when max are kept already. */
static inline void lx_bufcache_put(lx_bufcache *c, char *b, unsigned max) {
  if (c->n >= max) {
    free(b);
    return;
  }
  memcpy(b, &c->head, sizeof c->head);
  c->head = b;
  c->n++;
}

static inline void lx_bufcache_free(lx_bufcache *c) {
  char *b;
  while ((b = lx_bufcache_get(c)) != NULL) free(b);
}

#endif
