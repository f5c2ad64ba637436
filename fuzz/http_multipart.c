/*
** http_multipart.c — libFuzzer target: the multipart/form-data parser,
** lasync.http.form.parse (Lua), as Request:post runs it. Input: 4 bytes
** that choose how the body is split, then the body. One lasync host per
** process (the parser may spool through lasync.fs, so it runs as a task
** in the host's loop); each input parses the body twice, in the pieces
** the input chose and in one piece. Either gives a form (fields strings
** or file objects whose read() returns size bytes, spooled ones past the
** threshold only) or nil, {status = 400|413, message = string}, and both
** the same: the parser claims to accept any split. Anything else, a hang
** (libFuzzer's -timeout) or a file left in the spool directory after
** cleanup() aborts.
*/
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lasync.h"
#include "lauxlib.h"
#include "lua_cover.h"

static const char check_lua[] =
  "local tmpdir = ...\n"
  "local form = require 'lasync.http.form'\n"
  "local CT = 'multipart/form-data; boundary=----lasyncFuzzBoundary'\n"
  "local LIMITS = { max_parts = 50, spool_threshold = 256,\n"
  "  max_size = 65536, max_part_head = 1024, tmpdir = tmpdir }\n"
  "-- next_chunk over body in the sizes of seed (0: all that is left)\n"
  "local function chunks(seed, body)\n"
  "  local pos, i = 1, 0\n"
  "  local reader = {}\n"
  "  function reader.next()\n"
  "    if pos > #body then return nil end\n"
  "    i = i % #seed + 1\n"
  "    local n = seed[i] == 0 and #body or seed[i]\n"
  "    local piece = body:sub(pos, pos + n - 1)\n"
  "    pos = pos + n\n"
  "    return piece\n"
  "  end\n"
  "  function reader.done() return pos > #body end\n"
  "  return reader\n"
  "end\n"
  "-- a parse, checked: its outcome as a string to compare, or error()\n"
  "local function parse(seed, body)\n"
  "  local r = chunks(seed, body)\n"
  "  local ok, f, cleanup = pcall(form.parse, CT, r.next, LIMITS)\n"
  "  if not ok then error('form.parse raised: ' .. tostring(f), 0) end\n"
  "  if f == nil then\n"
  "    local e = cleanup\n"
  "    if type(e) ~= 'table' or (e.status ~= 400 and e.status ~= 413)\n"
  "        or type(e.message) ~= 'string' then\n"
  "      error('an error value of another shape: ' .. tostring(e), 0)\n"
  "    end\n"
  "    return 'error ' .. e.status\n"
  "  end\n"
  "  if getmetatable(f).__name ~= 'lasync.http.MultiDict' or\n"
  "      type(cleanup) ~= 'function' then\n"
  "    error('a result that is not a form and a cleanup', 0)\n"
  "  end\n"
  "  if not r.done() then error('a form before the body ended', 0) end\n"
  "  local out, n = {}, 0\n"
  "  for k, v in pairs(f) do\n"
  "    n = n + 1\n"
  "    if type(k) ~= 'string' then error('a field name not a string', 0) end\n"
  "    if type(v) == 'string' then\n"
  "      out[#out + 1] = ('%q=%q'):format(k, v)\n"
  "    elseif type(v) == 'table' then\n"
  "      if v.name ~= k or type(v.filename) ~= 'string' or\n"
  "          type(v.content_type) ~= 'string' or\n"
  "          math.type(v.size) ~= 'integer' then\n"
  "        error('a file field of another shape', 0)\n"
  "      end\n"
  "      if (v.path ~= nil) ~= (v.size > LIMITS.spool_threshold) then\n"
  "        error('a file spooled or kept against the threshold', 0)\n"
  "      end\n"
  "      local content = v.read()\n"
  "      if type(content) ~= 'string' or #content ~= v.size then\n"
  "        error('a file whose read() is not its size', 0)\n"
  "      end\n"
  "      out[#out + 1] = ('%q=file %q %q %q'):format(k, v.filename,\n"
  "        v.content_type, content)\n"
  "    else\n"
  "      error('a field value of type ' .. type(v), 0)\n"
  "    end\n"
  "  end\n"
  "  if n > LIMITS.max_parts then error('more fields than max_parts', 0) end\n"
  "  cleanup()\n"
  "  return table.concat(out, '\\n')\n"
  "end\n"
  "function formfz_check(data)\n"
  "  local seed = { data:byte(1, 4) }\n"
  "  if #seed < 4 then return end\n"
  "  local body = data:sub(5)\n"
  "  local split = parse(seed, body)\n"
  "  local whole = parse({ 0 }, body)\n"
  "  if split ~= whole then\n"
  "    error(('the split changed the outcome:\\n%s\\n--- whole:\\n%s')\n"
  "      :format(split, whole), 0)\n"
  "  end\n"
  "end\n";

static lasync_host *host;
static char dir[64]; /* the spool's tmpdir */

static void fail(const char *fmt, const char *arg) {
  fputs("http_multipart: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  abort();
}

static void remove_dir(void) {
  rmdir(dir); /* empty: every input checks it */
}

static void init(void) {
  lua_State *L;
  strcpy(dir, "/tmp/lasync-formfuzz-XXXXXX");
  if (mkdtemp(dir) == NULL) fail("mkdtemp: %s", strerror(errno));
  atexit(remove_dir);
  if ((host = lasync_host_new(NULL)) == NULL) fail("%s", "no host");
  L = lasync_host_state(host);
  if (luaL_loadbuffer(L, check_lua, sizeof check_lua - 1, "=check") !=
      LUA_OK)
    fail("%s", lua_tostring(L, -1));
  lua_pushstring(L, dir);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) fail("%s", lua_tostring(L, -1));
  luacover_attach(L);
}

/* The spool directory must be empty once an input is done. */
static void check_dir(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  if (d == NULL) fail("opendir: %s", strerror(errno));
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      fail("a spooled file left after cleanup: %s", e->d_name);
  }
  closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L;
  int task, n, status;
  if (host == NULL) init();
  L = lasync_host_state(host);
  lua_getglobal(L, "formfz_check");
  lua_pushlstring(L, (const char *)data, size);
  if ((task = lasync_host_spawn(host, 1)) == 0)
    fail("%s", lasync_host_error(host));
  /* a parse that never ends is a hang: libFuzzer's -timeout reports it */
  lasync_host_run(host, UV_RUN_DEFAULT);
  status = lasync_host_result(host, task, &n);
  if (status != LASYNC_OK) fail("%s", lasync_host_error(host));
  lua_pop(L, n);
  lasync_host_release(host, task);
  /* the input's garbage freed now: an input that allocates more than it
     frees makes libFuzzer run a leak check, which costs 20 inputs */
  lua_gc(L, LUA_GCCOLLECT, 0);
  check_dir();
  if (lua_gettop(L) != 0) fail("%s", "the host's stack grew");
  return 0;
}
