/*
** http_urlencoded.c — libFuzzer target: lasync.http.url's decoders (Lua)
** on arbitrary bytes, in one lasync host per process. url.unquote must
** agree with a byte-by-byte reference decoder (nil, message exactly when
** a "%" lacks two hex digits) and undo url.quote; url.parse_qs gives a
** MultiDict of strings that url.encode_qs and parse_qs give back the
** same, or nil, message, 400 | 413 (413 only past max_fields);
** url.split_target gives a path without NUL and the raw query after the
** first "?", or nil, message, and decodes an origin-form path as the
** reference does. Any other result or a Lua error aborts.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lasync.h"
#include "lauxlib.h"
#include "lua_cover.h"

static const char check_lua[] =
  "local url = require 'lasync.http.url'\n"
  "local multidict = require 'lasync.http.multidict'\n"
  "local function check(cond, what)\n"
  "  if not cond then error(what, 0) end\n"
  "end\n"
  "local function hex(c)\n"
  "  return c and (c:match('%d') and c:byte() - 48 or\n"
  "    (c:lower():match('[a-f]') and c:lower():byte() - 87))\n"
  "end\n"
  "-- the reference decoder: the decoded string, or nil\n"
  "local function ref_unquote(s, plus)\n"
  "  local out, i = {}, 1\n"
  "  while i <= #s do\n"
  "    local c = s:sub(i, i)\n"
  "    if c == '%' then\n"
  "      local hi, lo = hex(s:sub(i + 1, i + 1)), hex(s:sub(i + 2, i + 2))\n"
  "      if not hi or not lo then return nil end\n"
  "      out[#out + 1] = string.char(hi * 16 + lo)\n"
  "      i = i + 3\n"
  "    else\n"
  "      out[#out + 1] = (plus and c == '+') and ' ' or c\n"
  "      i = i + 1\n"
  "    end\n"
  "  end\n"
  "  return table.concat(out)\n"
  "end\n"
  "local function items(md)\n"
  "  local out = {}\n"
  "  for k, v in md:items() do\n"
  "    check(type(k) == 'string' and type(v) == 'string',\n"
  "      'parse_qs: a field that is not two strings')\n"
  "    out[#out + 1] = ('%q=%q'):format(k, v)\n"
  "  end\n"
  "  return table.concat(out, '&')\n"
  "end\n"
  "local function check_qs(s, max)\n"
  "  local md, err, status = url.parse_qs(s, max)\n"
  "  if md == nil then\n"
  "    check(type(err) == 'string' and (status == 400 or\n"
  "      (status == 413 and max ~= nil)), 'parse_qs: a bad error value')\n"
  "    return status\n"
  "  end\n"
  "  check(multidict.is(md), 'parse_qs: not a MultiDict')\n"
  "  check(max == nil or md:len() <= max, 'parse_qs: past max_fields')\n"
  "  local back = url.parse_qs(url.encode_qs(md))\n"
  "  check(back and items(back) == items(md),\n"
  "    'parse_qs: encode_qs does not round-trip')\n"
  "  return items(md)\n"
  "end\n"
  "function urlfz_check(s)\n"
  "  for _, plus in ipairs { false, true } do\n"
  "    local r, err = url.unquote(s, plus)\n"
  "    local ref = ref_unquote(s, plus)\n"
  "    if r == nil then\n"
  "      check(type(err) == 'string' and ref == nil,\n"
  "        'unquote: refused what the reference decodes')\n"
  "    else\n"
  "      check(r == ref, 'unquote: differs from the reference')\n"
  "    end\n"
  "  end\n"
  "  check(url.unquote(url.quote(s)) == s, 'quote: no round trip')\n"
  "  check(url.unquote(url.quote(s, '')) == s, 'quote: no round trip')\n"
  "  local all = check_qs(s)\n"
  "  local few = check_qs(s, 3)\n"
  "  check(few == all or few == 413 or all == 400,\n"
  "    'parse_qs: max_fields changed a result')\n"
  "  local path, query = url.split_target(s)\n"
  "  if path == nil then\n"
  "    check(type(query) == 'string', 'split_target: a bad error value')\n"
  "  else\n"
  "    check(type(path) == 'string' and type(query) == 'string',\n"
  "      'split_target: not two strings')\n"
  "    check(not path:find('\\0', 1, true), 'split_target: NUL in path')\n"
  "    local q = s:find('?', 1, true)\n"
  "    check(query == (q and s:sub(q + 1) or ''), 'split_target: query')\n"
  "  end\n"
  "  if s:byte(1) == 47 then -- origin-form: the reference says\n"
  "    local raw = s:match('^[^?]*')\n"
  "    local ref = ref_unquote(raw, false)\n"
  "    if ref and not ref:find('\\0', 1, true) then\n"
  "      check(path == ref, 'split_target: differs from the reference')\n"
  "    else\n"
  "      check(path == nil, 'split_target: accepted a bad path')\n"
  "    end\n"
  "  end\n"
  "end\n";

static lasync_host *host;

static void fail(const char *what, const char *msg) {
  fprintf(stderr, "http_urlencoded: %s: %s\n", what, msg ? msg : "?");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L;
  if (host == NULL) {
    if ((host = lasync_host_new(NULL)) == NULL) fail("init", "no host");
    L = lasync_host_state(host);
    if (luaL_loadbuffer(L, check_lua, sizeof check_lua - 1, "=check") !=
            LUA_OK ||
        lua_pcall(L, 0, 0, 0) != LUA_OK)
      fail("init", lua_tostring(L, -1));
    luacover_attach(L);
  }
  L = lasync_host_state(host);
  lua_getglobal(L, "urlfz_check");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) fail("check", lua_tostring(L, -1));
  /* the input's garbage freed now: an input that allocates more than it
     frees makes libFuzzer run a leak check, which costs 20 inputs */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
