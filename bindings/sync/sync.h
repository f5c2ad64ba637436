/*
** sync.h — declarations of bindings/sync/: the primitives tasks share
** (locks, semaphores, events, queues), built on core's wait lists.
*/
#ifndef LASYNC_SYNC_H
#define LASYNC_SYNC_H

#include "core/core.h"

/* lock.c, event.c, queue.c */
LX_HIDDEN void lx_open_lock(lua_State *L);
LX_HIDDEN void lx_open_event(lua_State *L);
LX_HIDDEN void lx_open_queue(lua_State *L);

#endif
