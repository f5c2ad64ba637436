/*
** pg_types.c — the values of lasync.pg's results: each field of a libpq
** result (text format) decoded into a Lua value by its column's type OID,
** arrays of the types below into Lua arrays (nested for several
** dimensions). The table of docs/api.md "## PostgreSQL" is this file's.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db/db.h"

/* Type OIDs of the server's catalog (pg_type.dat; stable across releases) */
enum {
  OID_BOOL = 16, OID_BYTEA = 17, OID_CHAR = 18, OID_NAME = 19,
  OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25, OID_OID = 26,
  OID_JSON = 114, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_BPCHAR = 1042,
  OID_VARCHAR = 1043, OID_DATE = 1082, OID_TIME = 1083,
  OID_TIMESTAMP = 1114, OID_TIMESTAMPTZ = 1184, OID_INTERVAL = 1186,
  OID_TIMETZ = 1266, OID_NUMERIC = 1700, OID_UUID = 2950, OID_JSONB = 3802
};

/*
** The types lasync.pg knows by name, with the OID of their array type:
** the array decoder looks an array's element type up here, and
** pg.types (oid -> name) is built from it. Arrays of other types (and
** box[], whose delimiter is ';') come back as text.
*/
static const struct pg_type {
  unsigned oid, array_oid;
  const char *name;
} types[] = {
  {OID_BOOL, 1000, "bool"}, {OID_BYTEA, 1001, "bytea"},
  {OID_CHAR, 1002, "char"}, {OID_NAME, 1003, "name"},
  {OID_INT8, 1016, "int8"}, {OID_INT2, 1005, "int2"},
  {OID_INT4, 1007, "int4"}, {OID_TEXT, 1009, "text"},
  {OID_OID, 1028, "oid"}, {OID_JSON, 199, "json"},
  {OID_FLOAT4, 1021, "float4"}, {OID_FLOAT8, 1022, "float8"},
  {OID_BPCHAR, 1014, "bpchar"}, {OID_VARCHAR, 1015, "varchar"},
  {OID_DATE, 1182, "date"}, {OID_TIME, 1183, "time"},
  {OID_TIMESTAMP, 1115, "timestamp"},
  {OID_TIMESTAMPTZ, 1185, "timestamptz"},
  {OID_INTERVAL, 1187, "interval"}, {OID_TIMETZ, 1270, "timetz"},
  {OID_NUMERIC, 1231, "numeric"}, {OID_UUID, 2951, "uuid"},
  {OID_JSONB, 3807, "jsonb"}, {0, 0, NULL}
};

/* The element type of an array type we decode, or 0. */
static unsigned element_oid(unsigned oid) {
  const struct pg_type *t;
  for (t = types; t->name; t++)
    if (t->array_oid == oid) return t->oid;
  return 0;
}

/* The stack slots of a decoding (absolute indices). */
typedef struct pg_decoding {
  int nullidx;  /* pg.null */
  int jsonidx;  /* lasync.json.decode */
} pg_decoding;

/*
** The server's text of an integer (int2/4/8, oid: an optional '-' and
** digits) as a lua_Integer, without strtoll's locale and base handling;
** int8's minimum is accumulated negatively so that it does not overflow.
*/
static lua_Integer int_of(const char *v) {
  int neg = *v == '-';
  lua_Integer n = 0;
  if (neg) v++;
  while (*v >= '0' && *v <= '9') n = n * 10 - (*v++ - '0');
  return neg ? n : -n;
}

/*
** A float8/float4's text as a double: "[-]digits[.digits]" with at most
** 15 significant digits is an exact integer divided by an exact power of
** ten, which IEEE division rounds correctly (Clinger's fast path); any
** other text (exponents, NaN, Infinity, more digits) goes to strtod.
*/
static double float_of(const char *v, size_t len) {
  static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                                 1e15};
  const char *p = v, *end = v + len;
  int neg = 0, digits = 0, frac = -1;
  int64_t m = 0;
  if (p < end && *p == '-') {
    neg = 1;
    p++;
  }
  for (; p < end; p++) {
    if (*p >= '0' && *p <= '9') {
      if (++digits > 15) break;
      m = m * 10 + (*p - '0');
      if (frac >= 0) frac++;
    } else if (*p == '.' && frac < 0) {
      frac = 0;
    } else {
      break;
    }
  }
  if (p != end || digits == 0) return strtod(v, NULL);
  {
    double d = (double)m / pow10[frac > 0 ? frac : 0];
    return neg ? -d : d;
  }
}

/* [-0, +1] push the value of text v (len bytes) of type oid (not NULL) */
static void push_scalar(lua_State *L, const pg_decoding *d, unsigned oid,
                        const char *v, size_t len) {
  switch (oid) {
    case OID_BOOL:
      lua_pushboolean(L, v[0] == 't');
      break;
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID:
      lua_pushinteger(L, int_of(v));
      break;
    case OID_FLOAT4: case OID_FLOAT8:
      /* "NaN", "Infinity" and "-Infinity" are what strtod reads too */
      lua_pushnumber(L, (lua_Number)float_of(v, len));
      break;
    case OID_BYTEA: {
      size_t n;
      unsigned char *b = PQunescapeBytea((const unsigned char *)v, &n);
      if (b == NULL) luaL_error(L, "lasync.pg: out of memory");
      lua_pushlstring(L, (const char *)b, n);
      PQfreemem(b);
      break;
    }
    case OID_JSON: case OID_JSONB:
      lua_pushvalue(L, d->jsonidx);
      lua_pushlstring(L, v, len);
      lua_call(L, 1, 1);
      break;
    default: /* numeric, text, dates, uuid...: the server's text form */
      lua_pushlstring(L, v, len);
  }
}

/* {======================================================================
** Arrays: PostgreSQL's text form, '{1,2}', '{{"a,b",NULL},{"c\"d",x}}',
** '[0:1]={7,8}' (array_out: an element is quoted when it is empty,
** "NULL", or holds a space, a quote, a backslash, a brace or the
** delimiter; inside quotes a backslash escapes the next byte)
** ======================================================================= */

#define PG_MAXDIM 6 /* the server's own limit */

typedef struct pg_array {
  const pg_decoding *d;
  unsigned elem;      /* the element type */
  const char *p, *end;
  char *scratch;      /* an unescaped element: at most the text's length */
} pg_array;

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

static void skip_space(pg_array *a) {
  while (a->p < a->end && is_space(*a->p)) a->p++;
}

static int array_bad(lua_State *L) {
  return luaL_error(L, "lasync.pg: malformed array value from the server");
}

/* [-0, +1] push one element at a->p (after white space), unescaped */
static void push_element(lua_State *L, pg_array *a) {
  size_t n = 0;
  if (*a->p == '"') {
    a->p++;
    while (a->p < a->end && *a->p != '"') {
      if (*a->p == '\\' && a->p + 1 < a->end) a->p++;
      a->scratch[n++] = *a->p++;
    }
    if (a->p == a->end) array_bad(L);
    a->p++; /* the closing quote */
  } else {
    size_t keep = 0; /* trailing white space is not the element's */
    while (a->p < a->end && *a->p != ',' && *a->p != '}') {
      if (*a->p == '\\' && a->p + 1 < a->end) {
        a->p++;
        a->scratch[n++] = *a->p++;
        keep = n;
        continue;
      }
      a->scratch[n++] = *a->p++;
      if (!is_space(a->scratch[n - 1])) keep = n;
    }
    n = keep;
    if (n == 4 && strncmp(a->scratch, "NULL", 4) == 0) {
      lua_pushvalue(L, a->d->nullidx);
      return;
    }
  }
  a->scratch[n] = '\0'; /* strtoll, strtod and PQunescapeBytea read to it */
  push_scalar(L, a->d, a->elem, a->scratch, n);
}

/* [-0, +1] push the (sub)array at a->p, which is at its '{' */
static void push_array(lua_State *L, pg_array *a, int depth) {
  lua_Integer i = 0;
  if (depth > PG_MAXDIM) array_bad(L);
  luaL_checkstack(L, 4, NULL);
  a->p++; /* '{' */
  lua_newtable(L);
  skip_space(a);
  if (a->p < a->end && *a->p == '}') {
    a->p++;
    return;
  }
  for (;;) {
    skip_space(a);
    if (a->p >= a->end) array_bad(L);
    if (*a->p == '{') push_array(L, a, depth + 1);
    else push_element(L, a);
    lua_rawseti(L, -2, ++i);
    skip_space(a);
    if (a->p >= a->end) array_bad(L);
    if (*a->p == '}') break;
    if (*a->p != ',') array_bad(L);
    a->p++;
  }
  a->p++; /* '}' */
}

/* [-0, +1] push the array text v (len bytes) with elements of type elem */
static void push_array_value(lua_State *L, const pg_decoding *d,
                             unsigned elem, const char *v, size_t len) {
  pg_array a;
  a.d = d;
  a.elem = elem;
  a.p = v;
  a.end = v + len;
  if (len > 0 && v[0] == '[') { /* bounds other than 1: "[0:1]={...}" */
    const char *eq = memchr(v, '=', len);
    if (eq == NULL) array_bad(L);
    a.p = eq + 1;
  }
  skip_space(&a);
  if (a.p >= a.end || *a.p != '{') array_bad(L);
  /* a box freed by the collector, so that an error leaks nothing */
  a.scratch = lua_newuserdatauv(L, len + 1, 0);
  push_array(L, &a, 1);
  lua_remove(L, -2); /* the scratch box */
}

/* }====================================================================== */

/*
** [-0, +1] push field (row, col) of r (text format; bytea may be binary)
** of type oid, an array of elem when elem is not 0
*/
static void push_value(lua_State *L, const pg_decoding *d, PGresult *r,
                       int row, int col, unsigned oid, unsigned elem) {
  const char *v;
  size_t len;
  if (PQgetisnull(r, row, col)) {
    lua_pushvalue(L, d->nullidx);
    return;
  }
  v = PQgetvalue(r, row, col);
  len = (size_t)PQgetlength(r, row, col);
  if (PQfformat(r, col) == 1) { /* binary: only asked for bytea */
    lua_pushlstring(L, v, len);
    return;
  }
  if (elem) push_array_value(L, d, elem, v, len);
  else push_scalar(L, d, oid, v, len);
}

/*
** [-0, +1] (protected) the rows of r: light userdata r at 1, pg.null at
** 2, json.decode at 3, positional at 4, names at 5.
*/
static int push_rows(lua_State *L) {
  PGresult *r = lua_touserdata(L, 1);
  int positional = (int)lua_tointeger(L, 4);
  int nrows = PQntuples(r), ncols = PQnfields(r), i, j;
  unsigned *oids; /* per column: its type, then its element type or 0 */
  pg_decoding d;
  d.nullidx = 2;
  d.jsonidx = 3;
  if (positional == PG_VALUE) {
    unsigned oid;
    if (nrows == 0 || ncols == 0) return 0;
    oid = (unsigned)PQftype(r, 0);
    push_value(L, &d, r, 0, 0, oid, element_oid(oid));
    return 1;
  }
  oids = lua_newuserdatauv(L, 2 * (size_t)(ncols ? ncols : 1) *
                                  sizeof *oids, 0);
  for (j = 0; j < ncols; j++) {
    oids[2 * j] = (unsigned)PQftype(r, j);
    oids[2 * j + 1] = element_oid(oids[2 * j]);
  }
  lua_createtable(L, nrows, 0);
  for (i = 0; i < nrows; i++) {
    if (positional) {
      lua_createtable(L, ncols, 0);
      for (j = 0; j < ncols; j++) {
        push_value(L, &d, r, i, j, oids[2 * j], oids[2 * j + 1]);
        lua_rawseti(L, -2, j + 1);
      }
    } else {
      lua_createtable(L, 0, ncols);
      for (j = 0; j < ncols; j++) {
        lua_rawgeti(L, 5, j + 1); /* the column's name, then its value */
        push_value(L, &d, r, i, j, oids[2 * j], oids[2 * j + 1]);
        lua_rawset(L, -3);
      }
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/*
** [-0, +1] push the rows of r decoded (see db.h). The decoding runs
** protected, so that the caller can PQclear(r) before raising an error
** of a value (a json text lasync.json refuses, out of memory): returns
** the lua_pcall status, the error on top when it is not LUA_OK.
*/
int lx_pg_push_rows(lua_State *L, PGresult *r, int nullidx, int jsonidx,
                    int positional, int namesidx) {
  nullidx = lua_absindex(L, nullidx);
  jsonidx = lua_absindex(L, jsonidx);
  namesidx = lua_absindex(L, namesidx);
  luaL_checkstack(L, 8, NULL);
  lua_pushcfunction(L, push_rows);
  lua_pushlightuserdata(L, r);
  lua_pushvalue(L, nullidx);
  lua_pushvalue(L, jsonidx);
  lua_pushinteger(L, positional);
  lua_pushvalue(L, namesidx);
  return lua_pcall(L, 5, 1, 0); /* push_rows' none is a nil */
}

/* [-0, +1] push {oid = name} of the types lasync.pg decodes (pg.types) */
void lx_pg_push_types(lua_State *L) {
  const struct pg_type *t;
  lua_newtable(L);
  for (t = types; t->name; t++) {
    lua_pushstring(L, t->name);
    lua_rawseti(L, -2, (lua_Integer)t->oid);
    lua_pushfstring(L, "%s[]", t->name);
    lua_rawseti(L, -2, (lua_Integer)t->array_oid);
  }
}
