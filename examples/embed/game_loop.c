/*
** game_loop.c — lasync in a game: the application owns the main loop and
** renders frames at 60 Hz; once per frame it gives lasync one
** non-blocking tick (lasync_host_run(h, UV_RUN_NOWAIT)). The level script
** is a task that sleeps (in real time, across frames) and spawns tasks;
** input events become tasks too, spawned from C. Nothing blocks a frame.
**
** usage: embed_game_loop
** build: cc game_loop.c $(pkg-config --cflags --libs lasync)
*/
#include <stdio.h>

#include "lasync.h"
#include "lauxlib.h"

#define FRAME_MS 16     /* about 60 frames per second */
#define MAX_FRAMES 600  /* give up after 10 s */
#define INPUT_FRAME 10  /* when the "player" presses jump */

static int frame; /* the frame being rendered */

/* report(msg): the scripts' way to talk to the game's log */
static int report(lua_State *L) {
  printf("[frame %3d] %s\n", frame, luaL_checkstring(L, 1));
  return 0;
}

/* frame() -> the current frame number */
static int get_frame(lua_State *L) {
  lua_pushinteger(L, frame);
  return 1;
}

/* lasync's reports (a failed task nobody awaited...) go to the game log */
static void game_warn(void *ud, const char *msg) {
  (void)ud;
  printf("[frame %3d] %s", frame, msg);
}

static const char level_script[] =
  "local arrived, waves = {}, 0\n"
  "local function enemy(name, delay)\n"
  "  lasync.sleep(delay)   -- real time: spans several frames\n"
  "  report(name .. ' arrives')\n"
  "  arrived[#arrived + 1] = name\n"
  "end\n"
  "local function wave(names)\n"
  "  waves = waves + 1\n"
  "  report(('wave %d: %d enemies'):format(waves, #names))\n"
  "  local tasks = {}\n"
  "  for i, name in ipairs(names) do\n"
  "    tasks[i] = lasync.spawn(enemy, name, 0.05 * i)\n"
  "  end\n"
  "  lasync.gather(tasks)   -- the wave is over when all have arrived\n"
  "end\n"
  "wave({'goblin', 'orc'})\n"
  "lasync.sleep(0.1)\n"
  "wave({'troll', 'bat', 'slime'})\n"
  "report('level complete')\n"
  "return #arrived, waves\n";

static const char input_handler[] =
  "function on_input(key)\n"
  "  local start = frame()\n"
  "  report('player pressed ' .. key)\n"
  "  lasync.sleep(0.08)   -- the jump takes a while\n"
  "  report('player landed')\n"
  "  return key, frame() - start\n"
  "end\n";

int main(void) {
  lasync_host *h = lasync_host_new(NULL);
  lua_State *L;
  int level, input = 0, pending = 0, n, status = 1;
  int enemies = 0, waves = 0, jumped = 0;
  uint64_t worst = 0;
  if (h == NULL) return 1;
  L = lasync_host_state(h);
  lasync_host_set_warn(h, game_warn, NULL);
  lua_register(L, "report", report);
  lua_register(L, "frame", get_frame);
  if (luaL_dostring(L, input_handler) != LUA_OK) { /* plain Lua, no task */
    fprintf(stderr, "game: %s\n", lua_tostring(L, -1));
    lasync_host_destroy(h);
    return 1;
  }
  level = lasync_host_dostring(h, level_script, "=level");
  if (level == 0) {
    fprintf(stderr, "game: %s\n", lasync_host_error(h));
    lasync_host_destroy(h);
    return 1;
  }
  for (frame = 1; frame <= MAX_FRAMES; frame++) {
    uint64_t start = uv_hrtime(), took;
    if (frame == INPUT_FRAME) { /* an input event: a task for its handler */
      lua_getglobal(L, "on_input");
      lua_pushliteral(L, "jump");
      input = lasync_host_spawn(h, 1);
    }
    /* ... update the world, render ... then one tick of lasync: */
    pending = lasync_host_run(h, UV_RUN_NOWAIT);
    took = uv_hrtime() - start;
    if (took > worst) worst = took;
    if (pending == 0 && frame >= INPUT_FRAME) break; /* all done */
    uv_sleep(FRAME_MS); /* wait for the next frame */
  }
  if (lasync_host_result(h, level, &n) == LASYNC_OK) {
    enemies = (int)lua_tointeger(L, -2);
    waves = (int)lua_tointeger(L, -1);
    lua_pop(L, n);
  } else {
    printf("level: %s\n", lasync_host_error(h));
  }
  if (input && lasync_host_result(h, input, &n) == LASYNC_OK) {
    jumped = (int)lua_tointeger(L, -1); /* frames the jump lasted */
    lua_pop(L, n);
  }
  lasync_host_release(h, level);
  if (input) lasync_host_release(h, input);
  printf("%d frames; the longest lasync tick took %.1f ms\n",
         frame > MAX_FRAMES ? MAX_FRAMES : frame, worst / 1e6);
  if (jumped > 0) printf("the jump lasted %d frames\n", jumped);
  if (pending == 0 && enemies == 5 && jumped > 0) {
    printf("game over: %d waves, %d enemies arrived, the player jumped and "
           "landed, %d tasks pending\n", waves, enemies, pending);
    status = 0;
  }
  lasync_host_destroy(h);
  return status;
}
