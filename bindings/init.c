/*
** init.c — luaopen_lasync_core, the entry point of the module lasync.core
** (as Lua's linit.c): the only file that sees every layer of bindings/,
** to open them in order into one module table.
*/
#include "core/core.h"
#include "sync/sync.h"
#include "io/io.h"
#include "thread/thread.h"
#include "http/http.h"
#include "http/client.h"
#include "codec/codec.h"
#include "db/db.h"

/*
** The layers' parts, in the order they register: a later name replaces an
** earlier one, and classes exist before the functions that use them.
*/
static void (*const opens[])(lua_State *L) = {
  lx_open_errors, lx_open_loop, lx_open_timer, lx_open_future,
  lx_open_task, lx_open_gather, lx_open_wait,
  lx_open_lock, lx_open_event, lx_open_queue,
  lx_open_dns, lx_open_tls_context, lx_open_stream, lx_open_connect,
  lx_open_server,
  lx_open_udp, lx_open_fs, lx_open_signal, lx_open_process, lx_open_worker,
  lx_open_to_thread, lx_open_thread,
  lx_open_inbox, lx_open_run, lx_open_runtime, lx_open_wire,
  lx_open_http, lx_open_http_client, lx_open_json, lx_open_resp,
  lx_open_pg,
  NULL
};

/* [-0, +1] require "lasync.core": the module table */
LX_EXPORT int luaopen_lasync_core(lua_State *L) {
  int i;
  lx_runtime_init(L);
  lua_newtable(L);
  for (i = 0; opens[i] != NULL; i++) opens[i](L);
  lx_name_functions(L, lx_runtime_get(L));
  lua_pushliteral(L, LX_VERSION); /* lasync.h's LASYNC_VERSION */
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
