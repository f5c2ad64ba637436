/*
** yajl_bench.c — the other candidate for lasync.json's decoder, measured:
** Debian's libyajl 2 parsing a JSON file into Lua tables through its
** callbacks (numbers as text through lua_stringtonumber, so that int64
** stays exact, as lasync.json does). Prints ns/op; bench/json/bench.lua
** prints lasync.json's on the same payload, and writes it to the file
** named by LASYNC_JSON_PAYLOAD (libyajl-dev is not a dependency):
**   LASYNC_JSON_PAYLOAD=/tmp/p.json build/lasync bench/json/bench.lua
**   cc -O2 bench/json/yajl_bench.c $(pkg-config --cflags --libs lua5.4) \
**      -lyajl -o /tmp/yajl_bench && /tmp/yajl_bench /tmp/p.json
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <yajl/yajl_parse.h>

#define MAX_DEPTH 1000

typedef struct build {
  lua_State *L;
  int depth;
  char is_map[MAX_DEPTH + 1];
  lua_Integer n[MAX_DEPTH + 1];
} build;

/* The value on top goes into the container below it (or stays). */
static int add(build *b) {
  lua_State *L = b->L;
  if (b->depth == 0) return 1;
  if (b->is_map[b->depth])
    lua_rawset(L, -3);
  else
    lua_rawseti(L, -2, ++b->n[b->depth]);
  return 1;
}

static int on_null(void *ctx) {
  lua_pushlightuserdata(((build *)ctx)->L, NULL);
  return add(ctx);
}
static int on_boolean(void *ctx, int v) {
  lua_pushboolean(((build *)ctx)->L, v);
  return add(ctx);
}
static int on_number(void *ctx, const char *s, size_t len) {
  char tmp[64];
  if (len >= sizeof tmp) return 0;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  if (lua_stringtonumber(((build *)ctx)->L, tmp) == 0) return 0;
  return add(ctx);
}
static int on_string(void *ctx, const unsigned char *s, size_t len) {
  lua_pushlstring(((build *)ctx)->L, (const char *)s, len);
  return add(ctx);
}
static int on_key(void *ctx, const unsigned char *s, size_t len) {
  lua_pushlstring(((build *)ctx)->L, (const char *)s, len);
  return 1;
}
static int open_container(build *b, int is_map) {
  if (b->depth == MAX_DEPTH) return 0;
  lua_checkstack(b->L, 4);
  lua_newtable(b->L);
  b->depth++;
  b->is_map[b->depth] = (char)is_map;
  b->n[b->depth] = 0;
  return 1;
}
static int on_start_map(void *ctx) { return open_container(ctx, 1); }
static int on_start_array(void *ctx) { return open_container(ctx, 0); }
static int on_end(void *ctx) {
  build *b = ctx;
  b->depth--;
  return add(b);
}

static const yajl_callbacks callbacks = {
  on_null, on_boolean, NULL, NULL, on_number, on_string,
  on_start_map, on_key, on_end, on_start_array, on_end
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  build b;
  FILE *f;
  char *text;
  long len, i, iters = 20000;
  double t0;
  if (argc < 2 || (f = fopen(argv[1], "rb")) == NULL) {
    fprintf(stderr, "usage: yajl_bench FILE.json\n");
    return 2;
  }
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  rewind(f);
  text = malloc((size_t)len);
  if (fread(text, 1, (size_t)len, f) != (size_t)len) return 2;
  fclose(f);
  b.L = L;
  t0 = now();
  for (i = 0; i < iters; i++) {
    yajl_handle h = yajl_alloc(&callbacks, NULL, &b);
    b.depth = 0;
    if (yajl_parse(h, (unsigned char *)text, (size_t)len) != yajl_status_ok ||
        yajl_complete_parse(h) != yajl_status_ok) {
      fprintf(stderr, "yajl_bench: parse error\n");
      return 1;
    }
    yajl_free(h);
    lua_settop(L, 0);
  }
  printf("yajl       %6ld bytes  decode %8.0f ns/op\n", len,
         (now() - t0) / iters * 1e9);
  lua_close(L);
  return 0;
}
