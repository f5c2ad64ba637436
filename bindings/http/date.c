/*
** date.c — HTTP dates (RFC 9110 5.6.7): the Date header of responses,
** formatted at most once a second per thread, and _http_date /
** _http_parse_date for the Lua side (Last-Modified, If-Modified-Since).
** Parsing accepts IMF-fixdate, RFC 850 and asctime, as recipients must.
*/
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/http.h"

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri",
                                "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* out: "Sun, 06 Nov 1994 08:49:37 GMT" and a NUL (30 bytes) */
void lx_http_format_date(char out[30], int64_t epoch) {
  struct tm tm;
  time_t t = (time_t)epoch;
  gmtime_r(&t, &tm);
  snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT",
           days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
           (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
** The Date of a response sent now (29 bytes): recomputed when the second
** changes, per thread (each lasync.Thread runs its own loop).
*/
const char *lx_http_date_now(void) {
  static __thread time_t last = -1;
  static __thread char cached[30];
  time_t now = time(NULL);
  if (now != last) {
    lx_http_format_date(cached, (int64_t)now);
    last = now;
  }
  return cached;
}

/* _http_date([epoch]) -> IMF-fixdate of epoch (default: now) */
int lx_http_date(lua_State *L) {
  char buf[30];
  if (lua_isnoneornil(L, 1)) {
    lua_pushlstring(L, lx_http_date_now(), 29);
    return 1;
  } else {
    int isnum;
    lua_Number n = lua_tonumberx(L, 1, &isnum);
    if (!isnum || n != n || n < -62135596800.0 || n > 253402300799.0)
      return luaL_error(L, "lasync.http.date: epoch must be a number of "
                           "seconds in years 1 to 9999");
    lx_http_format_date(buf, (int64_t)n);
  }
  lua_pushstring(L, buf);
  return 1;
}

static int month_of(const char *s) {
  int i;
  for (i = 0; i < 12; i++)
    if (memcmp(s, months[i], 3) == 0) return i + 1;
  return 0;
}

static int day_ok(const char *s, size_t len) {
  static const char *const longs[7] = {"Sunday", "Monday", "Tuesday",
                                       "Wednesday", "Thursday", "Friday",
                                       "Saturday"};
  int i;
  for (i = 0; i < 7; i++) {
    if (len == 3 && memcmp(s, days[i], 3) == 0) return 1;
    if (len == strlen(longs[i]) && memcmp(s, longs[i], len) == 0) return 1;
  }
  return 0;
}

static int digits(const char *s, int n, int *out) {
  int i, v = 0;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

/* "08:49:37" */
static int clock_of(const char *s, int *h, int *mi, int *sec) {
  return digits(s, 2, h) && s[2] == ':' && digits(s + 3, 2, mi) &&
         s[5] == ':' && digits(s + 6, 2, sec) && *h < 24 && *mi < 60 &&
         *sec <= 60;
}

/* _http_parse_date(s) -> epoch integer, or nil when s is no HTTP date */
int lx_http_parse_date(lua_State *L) {
  size_t len, dlen;
  const char *s, *comma;
  int y = 0, m = 0, d = 0, h = 0, mi = 0, sec = 0, ok = 0;
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "lasync.http.parse_date: expected a string (got "
                         "%s)", luaL_typename(L, 1));
  s = lua_tolstring(L, 1, &len);
  comma = memchr(s, ',', len);
  dlen = comma ? (size_t)(comma - s) : 3;
  if (len >= 3 && day_ok(s, dlen)) {
    const char *p = s + dlen;
    size_t rest = len - dlen;
    if (comma && rest == 26 && p[1] == ' ' && p[4] == ' ' && p[8] == ' ' &&
        p[13] == ' ' && p[22] == ' ' && memcmp(p + 23, "GMT", 3) == 0)
      ok = digits(p + 2, 2, &d) && (m = month_of(p + 5)) &&
           digits(p + 9, 4, &y) && clock_of(p + 14, &h, &mi, &sec);
    else if (comma && rest == 24 && p[1] == ' ' && p[4] == '-' &&
             p[8] == '-' && p[11] == ' ' && p[20] == ' ' &&
             memcmp(p + 21, "GMT", 3) == 0) { /* RFC 850: two-digit year */
      ok = digits(p + 2, 2, &d) && (m = month_of(p + 5)) &&
           digits(p + 9, 2, &y) && clock_of(p + 12, &h, &mi, &sec);
      if (ok) { /* RFC 9110: more than 50 years ahead is the past */
        time_t now = time(NULL);
        struct tm tm;
        int cur;
        gmtime_r(&now, &tm);
        cur = tm.tm_year + 1900;
        y += cur - cur % 100;
        if (y > cur + 50) y -= 100;
      }
    } else if (!comma && len == 24 && s[3] == ' ' && s[7] == ' ' &&
               s[10] == ' ' && s[19] == ' ') { /* asctime */
      char dd[2] = {s[8] == ' ' ? '0' : s[8], s[9]};
      ok = (m = month_of(s + 4)) && digits(dd, 2, &d) &&
           clock_of(s + 11, &h, &mi, &sec) && digits(s + 20, 4, &y);
    }
  }
  if (!ok || d < 1 || d > 31) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)(days_from_civil(y, m, d) * 86400 +
                                   h * 3600 + mi * 60 + sec));
  return 1;
}
