/*
** thread.h — declarations shared by the files of bindings/thread/: Lua
** running on other OS threads (to_thread on libuv's pool, lasync.Thread
** with a loop of its own) and the copying of values between their states.
*/
#ifndef LASYNC_THREAD_H
#define LASYNC_THREAD_H

#include "core/core.h"

/* copy.c: values crossing between Lua states */
typedef struct lx_buf {
  char *data;
  size_t len, cap, pos; /* pos: where reading goes on */
} lx_buf;
LX_HIDDEN void lx_buf_init(lx_buf *b);
LX_HIDDEN void lx_buf_free(lx_buf *b);
LX_HIDDEN void lx_copy_out(lua_State *L, lx_buf *b, int first, int n,
                           int with_function, const char *fname,
                           const char *what);
LX_HIDDEN void lx_copy_error(lua_State *L, lx_buf *b, int idx,
                             const char *fname);
LX_HIDDEN int lx_copy_in(lua_State *L, lx_buf *b);

/* to_thread.c */
LX_HIDDEN void lx_open_to_thread(lua_State *L);

/* thread.c */
LX_HIDDEN extern void (*lx_thread_openlibs)(lua_State *L);
LX_HIDDEN void lx_open_thread(lua_State *L);

#endif
