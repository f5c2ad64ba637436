/*
** lasync.h — the public C API of lasync: asyncio-style tasks for Lua 5.4 on
** libuv. Link liblasync; see docs/embedding.md.
*/
#ifndef LASYNC_H
#define LASYNC_H

#include <uv.h>

/* C linkage for C++ programs: lua.h has no extern "C" of its own (C++
   programs include Lua as lua.hpp, which wraps it the same way) */
#ifdef __cplusplus
extern "C" {
#endif

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
** Where L's reports go (failed tasks nobody awaited, errors in callbacks):
** fn(ud, message), message ending in "\n"; fn == NULL restores stderr.
*/
typedef void (*lasync_warn_fn)(void *ud, const char *msg);
LASYNC_API void lasync_set_warn(lua_State *L, lasync_warn_fn fn, void *ud);

/*
** The libuv loop under L's running lasync loop (NULL when none runs), for
** C functions that start libuv work of their own and complete a future.
*/
LASYNC_API uv_loop_t *lasync_uv_loop(lua_State *L);

/*
** Whether the error at idx is the KeyboardInterrupt that lasync_run raises
** when Ctrl-C (SIGINT) cancelled the main task.
*/
LASYNC_API int lasync_is_interrupt(lua_State *L, int idx);

/*
** Hosts: a lua_State with the standard libraries and lasync (the global
** `lasync`), on an event loop: its own when uv is NULL, or the
** application's uv_loop_t. The loop stays attached to the state: tasks run
** whenever the loop runs, whether the application calls uv_run itself or
** lasync_host_run. Nothing here exits or prints on the application's
** behalf: reports (failed tasks nobody awaited, ...) go to the warning
** hook, stderr unless set.
*/
typedef struct lasync_host lasync_host;

enum { LASYNC_OK = 0, LASYNC_PENDING = 1, LASYNC_ERROR = -1,
       LASYNC_CANCELLED = -2 };

/* A new host, or NULL when out of memory. */
LASYNC_API lasync_host *lasync_host_new(uv_loop_t *uv);
LASYNC_API lua_State *lasync_host_state(lasync_host *h);
LASYNC_API uv_loop_t *lasync_host_loop(lasync_host *h);

/*
** Start a task: a chunk (source text), a file, or the function below
** nargs values on top of the host state's stack (they are popped). Returns
** the task's id (> 0), or 0 with the error in lasync_host_error.
*/
LASYNC_API int lasync_host_dostring(lasync_host *h, const char *code,
                                    const char *name);
LASYNC_API int lasync_host_dofile(lasync_host *h, const char *path);
LASYNC_API int lasync_host_spawn(lasync_host *h, int nargs);

/*
** A task's outcome: LASYNC_PENDING; LASYNC_OK with its *nresults results
** pushed on the host state's stack; LASYNC_ERROR or LASYNC_CANCELLED with
** the message (and traceback) in lasync_host_error. Release the id once
** done with it: LASYNC_OK, or LASYNC_ERROR (and nothing changes) for an
** id that is not a task's, or no longer (released already).
*/
LASYNC_API int lasync_host_result(lasync_host *h, int task, int *nresults);
LASYNC_API int lasync_host_release(lasync_host *h, int task);

/*
** Drive the loop: UV_RUN_DEFAULT runs until no task is pending (-1 if they
** wait for something nothing can complete); UV_RUN_ONCE and UV_RUN_NOWAIT
** run one iteration (a game loop calls NOWAIT once per frame). Returns the
** number of pending tasks.
*/
LASYNC_API int lasync_host_run(lasync_host *h, uv_run_mode mode);

/* The last error message ("" if none). */
LASYNC_API const char *lasync_host_error(lasync_host *h);

/* Where lasync's reports go: fn(ud, message), message ending in "\n". */
LASYNC_API void lasync_host_set_warn(lasync_host *h, lasync_warn_fn fn,
                                     void *ud);

/*
** Cancel the tasks still pending, let them finish their cleanup, close
** lasync's handles (an application's loop is left open, with its own
** handles) and the state. Call it outside the loop's callbacks.
*/
LASYNC_API void lasync_host_destroy(lasync_host *h);

#ifdef __cplusplus
}
#endif

#endif
