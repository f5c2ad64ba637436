/*
** resp_reader.c — libFuzzer target: the reply reader of lasync.redis
** (bindings/codec/resp.c, hiredis's redisReader building Lua values) on
** arbitrary bytes. The first byte picks how the rest is cut into pieces
** and whether make_error raises; the rest is fed once whole and once in
** those pieces. Both must give the same replies, then the same end: no
** more data, a "lasync.redis.reader:get: protocol error: ..." or
** make_error's own error, never another error, a crash or a leak. An
** array may announce up to INT_MAX elements: its memory must follow the
** bytes that came, not the announced count.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "codec/codec.h"

/* The driver, in Lua: (resp, data, seed, raise) -> nothing, or an error
   saying what went wrong */
static const char driver[] =
  "local resp, data, seed, raise = ...\n"
  "local null = {}\n"
  "local ERR = {}\n"
  "local function make_error(m)\n"
  "  if raise and #m % 2 == 1 then error('make_error raised', 0) end\n"
  "  return setmetatable({ m }, ERR)\n"
  "end\n"
  "local function ser(v, out)\n"
  "  local t = type(v)\n"
  "  if v == nil then out[#out + 1] = 'nil;'\n"
  "  elseif v == null then out[#out + 1] = 'null;'\n"
  "  elseif t == 'string' then out[#out + 1] = ('s%d:%s;'):format(#v, v)\n"
  "  elseif math.type(v) == 'integer' then out[#out + 1] = 'i' .. v .. ';'\n"
  "  elseif getmetatable(v) == ERR then out[#out + 1] = 'e' .. v[1] .. ';'\n"
  "  elseif t == 'table' then\n"
  "    if #v > #data then error('an array longer than the input') end\n"
  "    out[#out + 1] = 'a' .. #v .. '['\n"
  "    for i = 1, #v do ser(v[i], out) end\n"
  "    out[#out + 1] = ']'\n"
  "  else error('a reply of type ' .. t) end\n"
  "end\n"
  "local function run(pieces)\n"
  "  local rd <close> = resp.reader(make_error, null)\n"
  "  local out = {}\n"
  "  for _, piece in ipairs(pieces) do\n"
  "    rd:feed(piece)\n"
  "    while true do\n"
  "      local ok, got, v = pcall(rd.get, rd)\n"
  "      if not ok then\n"
  "        if got ~= 'make_error raised' and not tostring(got):find(\n"
  "            '^lasync%.redis%.reader:get: protocol error: ') then\n"
  "          error('unexpected error: ' .. tostring(got))\n"
  "        end\n"
  "        out[#out + 1] = 'E:' .. got\n"
  "        if pcall(rd.get, rd) then error('a reply after an error') end\n"
  "        return table.concat(out)\n"
  "      end\n"
  "      if not got then break end\n"
  "      ser(v, out)\n"
  "    end\n"
  "  end\n"
  "  return table.concat(out)\n"
  "end\n"
  "local pieces, i = {}, 1\n"
  "while i <= #data do\n"
  "  seed = (seed * 1103515245 + 12345) % 2147483648\n"
  "  local n = 1 + (seed >> 16) % 16\n"
  "  pieces[#pieces + 1] = data:sub(i, i + n - 1)\n"
  "  i = i + n\n"
  "end\n"
  "local whole, cut = run({ data }), run(pieces)\n"
  "if whole ~= cut then\n"
  "  error(('pieces differ from the whole:\\n%q\\n%q'):format(whole, cut))\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L;
  if (size < 1) return 0;
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_loadbuffer(L, driver, sizeof driver - 1, "=resp_reader") !=
      LUA_OK) {
    fprintf(stderr, "resp_reader: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_newtable(L);
  lx_open_resp(L);
  lua_getfield(L, -1, "_resp");
  lua_remove(L, -2);
  lua_pushlstring(L, (const char *)data + 1, size - 1);
  lua_pushinteger(L, data[0] >> 1);
  lua_pushboolean(L, data[0] & 1);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
    fprintf(stderr, "resp_reader: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_close(L);
  return 0;
}
