/*
** tls_context.c — lasync.ssl.context{...}: an OpenSSL SSL_CTX with
** Python's option names (ssl.create_default_context / SSLContext), and
** lasync.SSLError, raised for what OpenSSL refuses. Every option is read
** and checked before the SSL_CTX is made, so a bad one leaks nothing. A
** context is never changed after it is made: connections share it (each
** holds a reference of its own, SSL_CTX_up_ref).
*/
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "io/io.h"

static const char *const fname_ctx = "ssl.context";

typedef struct ctx_opts {
  int server, verify, check_hostname, min_version, max_version;
  const char *certfile, *keyfile, *password, *cafile, *capath;
  const char *ciphers, *ciphersuites;
  unsigned char alpn[256 * 8]; /* wire format: length-prefixed names */
  size_t alpn_len;
} ctx_opts;

static const char *const known_opts[] = {
  "purpose", "certfile", "keyfile", "password", "cafile", "capath",
  "verify", "check_hostname", "minimum_version", "maximum_version",
  "ciphers", "ciphersuites", "alpn", NULL
};

/* {======================================================================
** SSLError
** ======================================================================= */

/*
** [-0, +1] OpenSSL's reason for err in Python's spelling: upper case,
** words joined by "_" ("certificate verify failed" ->
** "CERTIFICATE_VERIFY_FAILED"); "UNKNOWN" without one.
*/
static void push_reason(lua_State *L, unsigned long err) {
  const char *r = err ? ERR_reason_error_string(err) : NULL;
  luaL_Buffer b;
  if (r == NULL) r = "unknown";
  luaL_buffinit(L, &b);
  for (; *r; r++)
    luaL_addchar(&b, *r == ' ' ? '_' : (char)toupper((unsigned char)*r));
  luaL_pushresult(&b);
}

/*
** [-0, +1] push an SSLError for the OpenSSL error err (0: none known)
** and X509 verification result vcode (X509_V_OK: none). A verification
** failure has reason CERTIFICATE_VERIFY_FAILED, verify_code and
** verify_message; its message names fname and what failed.
*/
void lx_ssl_error_new(lua_State *L, const char *fname, const char *what,
                      unsigned long err, long vcode) {
  int top = lua_gettop(L);
  const char *vmsg = vcode != X509_V_OK
                         ? X509_verify_cert_error_string(vcode) : NULL;
  if (vmsg) {
    lua_pushliteral(L, "CERTIFICATE_VERIFY_FAILED");
    lua_pushfstring(L, "lasync.%s: %s: certificate verify failed: %s",
                    fname, what, vmsg);
  } else {
    char buf[256];
    push_reason(L, err);
    if (err) ERR_error_string_n(err, buf, sizeof buf);
    lua_pushfstring(L, "lasync.%s: %s: %s", fname, what,
                    err ? buf : "unknown error");
  }
  lx_error_newv(L, LX_ERR_SSL, -1);
  lua_pushvalue(L, top + 1);
  lua_setfield(L, -2, "reason");
  lua_pushliteral(L, "EPROTO"); /* OSError's code: a protocol error */
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, -UV_EPROTO);
  lua_setfield(L, -2, "errno");
  if (vmsg) {
    lua_pushinteger(L, vcode);
    lua_setfield(L, -2, "verify_code");
    lua_pushstring(L, vmsg);
    lua_setfield(L, -2, "verify_message");
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  ERR_clear_error(); /* the next failure must not see this one's */
}

/* }====================================================================== */

/* {======================================================================
** Options
** ======================================================================= */

static int opt_fail(lua_State *L, const char *name, const char *what) {
  const char *got = lua_type(L, -1) == LUA_TSTRING
                        ? lua_pushfstring(L, "\"%s\"", lua_tostring(L, -1))
                        : luaL_typename(L, -1);
  return luaL_error(L, "lasync.%s: option '%s' must be %s (got %s)",
                    fname_ctx, name, what, got);
}

/* A string option (nil: dflt), with no NUL byte. */
static const char *opt_string(lua_State *L, const char *name,
                              const char *dflt) {
  size_t len;
  const char *s;
  if (lua_getfield(L, 1, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return dflt;
  }
  if (lua_type(L, -1) != LUA_TSTRING) opt_fail(L, name, "a string");
  s = lua_tolstring(L, -1, &len);
  if (memchr(s, '\0', len) != NULL)
    luaL_error(L, "lasync.%s: option '%s' contains an embedded NUL byte",
               fname_ctx, name);
  lua_pop(L, 1); /* the string stays alive in the options table */
  return s;
}

/* One of names[] (nil: dflt); its index. */
static int opt_choice(lua_State *L, const char *name,
                      const char *const names[], int dflt,
                      const char *what) {
  const char *s;
  int i;
  if (lua_getfield(L, 1, name) != LUA_TSTRING && !lua_isnil(L, -1))
    opt_fail(L, name, what);
  lua_pop(L, 1);
  s = opt_string(L, name, NULL);
  if (s == NULL) return dflt;
  for (i = 0; names[i]; i++)
    if (strcmp(s, names[i]) == 0) return i;
  lua_getfield(L, 1, name);
  return opt_fail(L, name, what);
}

/* alpn = {"h2", "http/1.1"}: each a name of 1..255 bytes, at most 8 */
static void opt_alpn(lua_State *L, ctx_opts *o) {
  lua_Integer i, n;
  if (lua_getfield(L, 1, "alpn") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (lua_type(L, -1) != LUA_TTABLE)
    opt_fail(L, "alpn", "a list of protocol names");
  n = (lua_Integer)lua_rawlen(L, -1);
  if (n == 0 || n > 8)
    luaL_error(L, "lasync.%s: option 'alpn' must list 1 to 8 protocol "
                  "names (got %I)", fname_ctx, n);
  for (i = 1; i <= n; i++) {
    size_t len = 0;
    const char *p = NULL;
    lua_rawgeti(L, -1, i);
    if (lua_type(L, -1) == LUA_TSTRING) p = lua_tolstring(L, -1, &len);
    if (p == NULL || len == 0 || len > 255)
      luaL_error(L, "lasync.%s: option 'alpn': item #%I must be a string "
                    "of 1 to 255 bytes", fname_ctx, i);
    o->alpn[o->alpn_len++] = (unsigned char)len;
    memcpy(o->alpn + o->alpn_len, p, len);
    o->alpn_len += len;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Read and check every option of the table at 1 into *o. */
static void read_ctx_opts(lua_State *L, ctx_opts *o) {
  static const char *const purposes[] = {"client", "server", NULL};
  static const char *const verifies[] = {"none", "optional", "required",
                                         NULL};
  static const char *const versions[] = {"TLSv1.2", "TLSv1.3", NULL};
  memset(o, 0, sizeof *o);
  lua_pushnil(L);
  while (lua_next(L, 1)) { /* no unknown keys: a typo must not pass */
    int i, ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (i = 0; known_opts[i] && !ok; i++)
        ok = strcmp(lua_tostring(L, -2), known_opts[i]) == 0;
    if (!ok)
      luaL_error(L, "lasync.%s: unknown option %s", fname_ctx,
                 luaL_tolstring(L, -2, NULL));
    lua_pop(L, 1);
  }
  o->server = opt_choice(L, "purpose", purposes, 0,
                         "\"client\" or \"server\"");
  o->verify = opt_choice(L, "verify", verifies, o->server ? 0 : 2,
                         "\"none\", \"optional\" or \"required\"");
  switch (lua_getfield(L, 1, "check_hostname")) {
    case LUA_TNIL: o->check_hostname = !o->server && o->verify != 0; break;
    case LUA_TBOOLEAN: o->check_hostname = lua_toboolean(L, -1); break;
    default: opt_fail(L, "check_hostname", "a boolean");
  }
  lua_pop(L, 1);
  if (o->check_hostname && o->verify == 0)
    luaL_error(L, "lasync.%s: check_hostname needs verify \"optional\" or "
                  "\"required\"", fname_ctx);
  if (o->check_hostname && o->server)
    luaL_error(L, "lasync.%s: check_hostname is for client contexts",
               fname_ctx);
  o->min_version = opt_choice(L, "minimum_version", versions, 0,
                              "\"TLSv1.2\" or \"TLSv1.3\"") == 1
                       ? TLS1_3_VERSION : TLS1_2_VERSION;
  /* Python's maximum_version; default: the newest OpenSSL knows */
  switch (opt_choice(L, "maximum_version", versions, -1,
                     "\"TLSv1.2\" or \"TLSv1.3\"")) {
    case 0: o->max_version = TLS1_2_VERSION; break;
    case 1: o->max_version = TLS1_3_VERSION; break;
    default: o->max_version = 0;
  }
  if (o->max_version && o->max_version < o->min_version)
    luaL_error(L, "lasync.%s: option 'maximum_version' (\"TLSv1.2\") is "
                  "below option 'minimum_version' (\"TLSv1.3\")", fname_ctx);
  o->certfile = opt_string(L, "certfile", NULL);
  o->keyfile = opt_string(L, "keyfile", NULL);
  o->password = opt_string(L, "password", NULL);
  if ((o->keyfile || o->password) && o->certfile == NULL)
    luaL_error(L, "lasync.%s: option '%s' needs 'certfile'", fname_ctx,
               o->keyfile ? "keyfile" : "password");
  if (o->server && o->certfile == NULL)
    luaL_error(L, "lasync.%s: a server context needs 'certfile'",
               fname_ctx);
  o->cafile = opt_string(L, "cafile", NULL);
  o->capath = opt_string(L, "capath", NULL);
  o->ciphers = opt_string(L, "ciphers", NULL);
  o->ciphersuites = opt_string(L, "ciphersuites", NULL);
  opt_alpn(L, o);
}

/* }====================================================================== */

/* {======================================================================
** Client sessions, kept for resumption
** ======================================================================= */

/*
** A client context keeps the last session it got per peer (the key
** lx_tls_session_key gives: server_hostname and address), at most
** SESS_MAX, the oldest dropped first. The cache hangs on the SSL_CTX (ex
** data), not on the Lua object: connections still hold the SSL_CTX after
** the context is collected, and TLS 1.3 sends its tickets after the
** handshake. A context never leaves its Lua state, so one thread uses it.
*/
#define SESS_MAX 64

typedef struct sess_entry {
  char *key;
  SSL_SESSION *sess;
} sess_entry;

typedef struct sess_cache {
  int n;
  sess_entry e[SESS_MAX]; /* oldest first */
} sess_cache;

static int sess_idx = -1;
static pthread_once_t sess_once = PTHREAD_ONCE_INIT;

static void cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                       long argl, void *argp) {
  sess_cache *c = ptr;
  int i;
  (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
  if (c == NULL) return;
  for (i = 0; i < c->n; i++) {
    free(c->e[i].key);
    SSL_SESSION_free(c->e[i].sess);
  }
  free(c);
}

static void sess_idx_init(void) {
  sess_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, cache_free);
}

static int cache_find(sess_cache *c, const char *key) {
  int i;
  for (i = 0; i < c->n; i++)
    if (strcmp(c->e[i].key, key) == 0) return i;
  return -1;
}

static void cache_drop(sess_cache *c, int i) {
  free(c->e[i].key);
  SSL_SESSION_free(c->e[i].sess);
  memmove(c->e + i, c->e + i + 1, (size_t)(c->n - i - 1) * sizeof *c->e);
  c->n--;
}

/* OpenSSL's new-session callback: keep sess (1: the reference is ours) */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
  sess_cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sess_idx);
  const char *key = lx_tls_session_key(ssl);
  char *k;
  int i;
  if (c == NULL || key == NULL || (k = strdup(key)) == NULL) return 0;
  if ((i = cache_find(c, key)) >= 0) cache_drop(c, i);
  if (c->n == SESS_MAX) cache_drop(c, 0);
  c->e[c->n].key = k;
  c->e[c->n].sess = sess;
  c->n++;
  return 1;
}

/* Offer the session kept for key on ssl, a client's, if there is one. */
void lx_sslctx_offer_session(SSL *ssl, const char *key) {
  sess_cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sess_idx);
  int i = c ? cache_find(c, key) : -1;
  if (i < 0) return;
  if (!SSL_SESSION_is_resumable(c->e[i].sess) ||
      !SSL_set_session(ssl, c->e[i].sess)) {
    cache_drop(c, i);
    ERR_clear_error();
  }
}

/* Give the client context ctx its cache; 0: out of memory. */
static int cache_setup(SSL_CTX *ctx) {
  sess_cache *c;
  pthread_once(&sess_once, sess_idx_init);
  if (sess_idx < 0 || (c = calloc(1, sizeof *c)) == NULL) return 0;
  if (!SSL_CTX_set_ex_data(ctx, sess_idx, c)) {
    free(c);
    return 0;
  }
  /* the client keeps its sessions here only, not in OpenSSL's store */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                          SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Contexts
** ======================================================================= */

static int password_cb(char *buf, int size, int rwflag, void *ud) {
  size_t len = strlen(ud);
  (void)rwflag;
  if (len > (size_t)size) return -1;
  memcpy(buf, ud, len);
  return (int)len;
}

/* The server chooses the first of its own ALPN names the client offers. */
static int alpn_select_cb(SSL *ssl, const unsigned char **out,
                          unsigned char *outlen, const unsigned char *in,
                          unsigned inlen, void *ud) {
  lx_sslctx *c = ud;
  (void)ssl;
  if (SSL_select_next_proto((unsigned char **)out, outlen, c->alpn,
                            (unsigned)c->alpn_len, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK; /* none in common: go on without */
  return SSL_TLSEXT_ERR_OK;
}

/* Raise an SSLError for what failed while configuring (pops nothing). */
static int ctx_fail(lua_State *L, SSL_CTX *ctx, const char *what,
                    const char *file) {
  unsigned long err = ERR_peek_last_error();
  SSL_CTX_free(ctx);
  lx_ssl_error_new(L, fname_ctx,
                   file ? lua_pushfstring(L, "%s %s", what, file) : what,
                   err, X509_V_OK);
  return lua_error(L);
}

/* Apply the checked options o to a new SSL_CTX in c; raise on failure. */
static void ctx_setup(lua_State *L, lx_sslctx *c, const ctx_opts *o) {
  SSL_CTX *ctx = SSL_CTX_new(o->server ? TLS_server_method()
                                       : TLS_client_method());
  int mode = o->verify == 0 ? SSL_VERIFY_NONE : SSL_VERIFY_PEER;
  ERR_clear_error();
  if (ctx == NULL) ctx_fail(L, NULL, "creating a context", NULL);
  SSL_CTX_set_min_proto_version(ctx, o->min_version);
  SSL_CTX_set_max_proto_version(ctx, o->max_version); /* 0: no cap */
  /* renegotiation refused; idle connections give their buffers back */
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (o->server && o->verify == 2)
    mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, mode, NULL);
  if (o->ciphers && !SSL_CTX_set_cipher_list(ctx, o->ciphers))
    ctx_fail(L, ctx, "option 'ciphers'", NULL);
  if (o->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, o->ciphersuites))
    ctx_fail(L, ctx, "option 'ciphersuites'", NULL);
  if (o->certfile) {
    if (o->password) {
      SSL_CTX_set_default_passwd_cb(ctx, password_cb);
      SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)o->password);
    }
    if (!SSL_CTX_use_certificate_chain_file(ctx, o->certfile))
      ctx_fail(L, ctx, "loading certfile", o->certfile);
    if (!SSL_CTX_use_PrivateKey_file(ctx, o->keyfile ? o->keyfile
                                                     : o->certfile,
                                     SSL_FILETYPE_PEM))
      ctx_fail(L, ctx, "loading keyfile",
               o->keyfile ? o->keyfile : o->certfile);
    SSL_CTX_set_default_passwd_cb(ctx, NULL); /* the password is Lua's */
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    if (!SSL_CTX_check_private_key(ctx))
      ctx_fail(L, ctx, "the key does not match certfile", o->certfile);
  }
  if (o->cafile || o->capath) {
    if (!SSL_CTX_load_verify_locations(ctx, o->cafile, o->capath))
      ctx_fail(L, ctx, "loading cafile/capath",
               o->cafile ? o->cafile : o->capath);
  } else if (o->verify != 0 &&
             !SSL_CTX_set_default_verify_paths(ctx)) {
    ctx_fail(L, ctx, "loading the system's CA certificates", NULL);
  }
  if (o->alpn_len) {
    memcpy(c->alpn, o->alpn, o->alpn_len);
    c->alpn_len = o->alpn_len;
    if (o->server)
      SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, c);
    else if (SSL_CTX_set_alpn_protos(ctx, o->alpn,
                                     (unsigned)o->alpn_len) != 0)
      ctx_fail(L, ctx, "option 'alpn'", NULL);
  }
  if (!o->server && !cache_setup(ctx))
    ctx_fail(L, ctx, "making the session cache", NULL);
  /* a server resumes sessions also when it verifies clients */
  if (o->server && !SSL_CTX_set_session_id_context(
                       ctx, (const unsigned char *)"lasync", 6))
    ctx_fail(L, ctx, "setting the session id context", NULL);
  c->ctx = ctx;
  c->server = o->server;
  c->check_hostname = o->check_hostname;
}

/*
** lasync.ssl.context([opts]) -> context. opts: purpose, certfile,
** keyfile, password, cafile, capath, verify, check_hostname,
** minimum_version, maximum_version, ciphers, ciphersuites, alpn (see
** docs/api.md, "TLS").
*/
int lx_sslctx_new(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  ctx_opts o;
  lx_sslctx *c;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  if (!lua_istable(L, 1))
    return luaL_error(L, "lasync.%s: opts must be a table (got %s)",
                      fname_ctx, luaL_typename(L, 1));
  lua_settop(L, 1);
  read_ctx_opts(L, &o);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  lx_setclass(L, rt, LX_MT_SSLCTX);
  ctx_setup(L, c, &o); /* on failure, __gc finds ctx NULL */
  return 1;
}

/* The context at idx, or an error naming fname. */
lx_sslctx *lx_check_sslctx(lua_State *L, int idx, const char *fname) {
  return lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), idx,
                       LX_MT_SSLCTX, fname);
}

static int ctx__gc(lua_State *L) {
  lx_sslctx *c = lx_check_sslctx(L, 1, "ssl.Context:__gc");
  SSL_CTX_free(c->ctx); /* connections hold references of their own */
  c->ctx = NULL;
  return 0;
}

static int ctx__tostring(lua_State *L) {
  lx_sslctx *c = lx_check_sslctx(L, 1, "ssl.Context:__tostring");
  lua_pushfstring(L, "lasync.ssl.Context: %s (%p)",
                  c->server ? "server" : "client", (void *)c);
  return 1;
}

/* ctx:purpose() -> "client" or "server" */
static int ctx_purpose(lua_State *L) {
  lx_sslctx *c = lx_check_sslctx(L, 1, "ssl.Context:purpose");
  lua_pushstring(L, c->server ? "server" : "client");
  return 1;
}

/* ctx:check_hostname() -> whether the context checks the peer's name */
static int ctx_check_hostname(lua_State *L) {
  lx_sslctx *c = lx_check_sslctx(L, 1, "ssl.Context:check_hostname");
  lua_pushboolean(L, c->check_hostname);
  return 1;
}

/* }====================================================================== */

void lx_open_tls_context(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"purpose", ctx_purpose},
    {"check_hostname", ctx_check_hostname},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", ctx__gc},
    {"__tostring", ctx__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"_ssl_context", lx_sslctx_new},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_SSLCTX, "lasync.ssl.Context", methods, meta);
  lx_setfuncs(L, funcs);
}
