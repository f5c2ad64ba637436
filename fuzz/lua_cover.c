/*
** lua_cover.c — Lua line coverage as libFuzzer extra counters
** (lua_cover.h). A line event is keyed by its chunk's source string
** (the same address for as long as the chunk lives: modules stay loaded
** for the whole run) and its line; the counter bumped is that of the
** edge from the previous line event, so a new path through known lines
** counts too.
*/
#include "lua_cover.h"

#include <stdint.h>

#define NCOUNTERS (1 << 16)

/* libFuzzer reads this section (__start_/__stop_ symbols) as counters */
__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t counters[NCOUNTERS];

static uintptr_t prev;

static void hook(lua_State *L, lua_Debug *ar) {
  uintptr_t key;
  if (!lua_getinfo(L, "S", ar)) return;
  key = ((uintptr_t)ar->source * 31u) ^ ((uintptr_t)ar->currentline *
                                         2654435761u);
  counters[(key ^ (prev >> 1)) & (NCOUNTERS - 1)]++;
  prev = key;
}

void luacover_attach(lua_State *L) {
  lua_sethook(L, hook, LUA_MASKLINE, 0);
}
