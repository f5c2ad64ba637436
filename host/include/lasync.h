/*
** lasync.h — the public C API of lasync: asyncio-style tasks for Lua 5.4 on
** libuv. Link liblasync; see docs/embedding.md.
*/
#ifndef LASYNC_H
#define LASYNC_H

#include "lua.h"

#if defined(__GNUC__)
#define LASYNC_API __attribute__((visibility("default")))
#else
#define LASYNC_API
#endif

#define LASYNC_VERSION "0.1.0"

/* Open the C core; what require "lasync.core" calls. */
LASYNC_API int luaopen_lasync_core(lua_State *L);

/*
** Make require "lasync" (and "lasync.core") work in L without any
** LUA_PATH: the Lua side of the library is compiled into liblasync.
*/
LASYNC_API void lasync_openlibs(lua_State *L);

/*
** Run the function below the nargs values on top of L's stack as the main
** task of a new event loop, as lasync.run does. On success return LUA_OK
** with the function's results in place of the function and its
** arguments; on failure return an error status with the error value and
** its traceback (a string, or nil) in their place.
*/
LASYNC_API int lasync_run(lua_State *L, int nargs);

/*
** Completions: settle a lasync Future from any thread. On the loop's
** thread, lasync_completion_new pushes a new Future (of the running loop)
** on L's stack, for a task to await, and returns its completion. Later,
** from any thread, lasync_completion_send settles it: fn(L, ud) runs on
** the loop's thread, pushes the results and returns their number, or
** raises an error, which fails the future. fn gets L == NULL if the loop
** closed first: it must then only free ud. Each completion is sent once,
** before its loop closes; it is freed after fn ran. send returns 0, or -1
** when out of memory.
*/
typedef struct lasync_completion lasync_completion;
typedef int (*lasync_completion_fn)(lua_State *L, void *ud);
LASYNC_API lasync_completion *lasync_completion_new(lua_State *L);
LASYNC_API int lasync_completion_send(lasync_completion *c,
                                      lasync_completion_fn fn, void *ud);

/*
** Whether the error at idx is the KeyboardInterrupt that lasync_run raises
** when Ctrl-C (SIGINT) cancelled the main task.
*/
LASYNC_API int lasync_is_interrupt(lua_State *L, int idx);

#endif
