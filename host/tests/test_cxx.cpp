/*
** test_cxx.cpp — lasync.h from C++: a program that includes it (and Lua's
** lua.hpp, as C++ programs include Lua) links against liblasync and runs
** a host task and lasync_run. It links only if every declaration has C
** linkage.
*/
#include <cstdio>
#include <string>

#include <lua.hpp>

#include "lasync.h"

static int failed = 0;

static void check(bool ok, const char *what) {
  if (!ok) {
    std::printf("check failed: %s\n", what);
    failed++;
  }
}

int main() {
  lasync_host *h = lasync_host_new(nullptr);
  check(h != nullptr, "lasync_host_new");
  if (h == nullptr) return 1;
  lua_State *L = lasync_host_state(h);
  int n = 0;
  int task = lasync_host_dostring(h, "lasync.sleep(0.001) return 'c++'",
                                  "=cxx");
  check(task > 0, "lasync_host_dostring");
  check(lasync_host_run(h, UV_RUN_DEFAULT) == 0, "lasync_host_run");
  check(lasync_host_result(h, task, &n) == LASYNC_OK && n == 1,
        "lasync_host_result");
  std::string host_said = n == 1 ? lua_tostring(L, -1) : "";
  lua_pop(L, n);
  check(lasync_host_release(h, task) == LASYNC_OK, "lasync_host_release");
  lasync_host_destroy(h);

  lua_State *S = luaL_newstate();
  luaL_openlibs(S);
  lasync_openlibs(S);
  luaL_loadstring(S, "local lasync = require 'lasync'\n"
                     "lasync.sleep(0.001)\n"
                     "return 'hello ' .. ...");
  lua_pushliteral(S, "C++");
  check(lasync_run(S, 1) == LUA_OK, "lasync_run");
  std::string run_said = lua_isstring(S, -1) ? lua_tostring(S, -1) : "";
  lua_close(S);
  std::printf("c++: host said %s, lasync_run said %s; %d failed\n",
              host_said.c_str(), run_said.c_str(), failed);
  return failed == 0 ? 0 : 1;
}
