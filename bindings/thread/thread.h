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
LX_HIDDEN int lx_copy_check(const lx_buf *b);
/* the same, naming the other side ("process") in their errors; values
   are numbered from base */
LX_HIDDEN void lx_copy_out_to(lua_State *L, lx_buf *b, int first, int n,
                              int with_function, const char *fname,
                              const char *what, int base, const char *where);
LX_HIDDEN void lx_copy_error_to(lua_State *L, lx_buf *b, int idx,
                                const char *fname, const char *where);
/* a failed job's error on top -> error, traceback (nil); the error's index */
LX_HIDDEN int lx_job_error(lua_State *L);

/* to_thread.c */
LX_HIDDEN void lx_open_to_thread(lua_State *L);

/* wire.c: values crossing to worker processes (lasync.ProcessPool) */
LX_HIDDEN void lx_open_wire(lua_State *L);

/* thread.c */
LX_HIDDEN extern void (*lx_thread_openlibs)(lua_State *L);
LX_HIDDEN void lx_open_thread(lua_State *L);

#endif
