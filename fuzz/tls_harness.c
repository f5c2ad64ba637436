/*
** tls_harness.c — the server and the peer the TLS fuzz targets share
** (tls_harness.h). One lasync host per process, made at the first input:
** a throwaway P-256 certificate written to a temporary directory, and a
** Lua echo server, lasync.start_unix_server with ssl, in that directory.
** The harness drives the host's loop itself (lasync_host_run, NOWAIT,
** between polls of the loop's backend and of its own socket), so that
** each input is one connection in the same long-lived server, as a real
** server lives through many peers. For a lasync client (tls_client.c)
** the harness is the server: sockets of its own (Unix and TCP) that a
** task of the same host connects to.
*/
#define _GNU_SOURCE /* accept4 */
#include "tls_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lasync.h"
#include "lauxlib.h"

#define DEADLINE_MS 5000 /* a wait longer than this is a hang */
#define CHECK_EVERY 32   /* inputs between two real handshakes */

static lasync_host *host;
static char dir[64];     /* the temporary directory */
static unsigned long inputs;  /* inputs run, for CHECK_EVERY */
static int listen_fd = -1; /* tlsfz_listen_path's socket */
static int tcp_fd = -1;    /* tlsfz_listen_tcp's */

void tlsfz_fail(const char *fmt, ...) {
  va_list ap;
  fputs("tlsfuzz: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

static unsigned long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long)ts.tv_sec * 1000 + (unsigned long)ts.tv_nsec / 1000000;
}

/* The server reports its failed handshakes: shown on demand. */
static void warn_fn(void *ud, const char *msg) {
  (void)ud;
  if (getenv("TLSFZ_VERBOSE")) fprintf(stderr, "[input %lu] %s", inputs, msg);
}

/* {======================================================================
** The server
** ======================================================================= */

/* A self-signed P-256 certificate for localhost, as two PEM files. */
static void make_cert(void) {
  char path[128];
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_NAME *name;
  FILE *f;
  if (key == NULL || x == NULL) tlsfz_fail("cannot make a key");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (!X509_sign(x, key, EVP_sha256())) tlsfz_fail("cannot sign");
  snprintf(path, sizeof path, "%s/cert.pem", dir);
  if ((f = fopen(path, "w")) == NULL || !PEM_write_X509(f, x))
    tlsfz_fail("cannot write %s", path);
  fclose(f);
  snprintf(path, sizeof path, "%s/key.pem", dir);
  if ((f = fopen(path, "w")) == NULL ||
      !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
    tlsfz_fail("cannot write %s", path);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

/*
** The servers, one per mode (tlsfz_open's server): each echoes until EOF
** or an error, then closes; 0 reads what is there, 1 reads lines, 2 reads
** 7 bytes at a time with a buffer limit of 64 (reading pauses and
** resumes), 3 closes first once 1000 bytes went back (close_notify, then
** it waits for the peer's); 4 is plain until a "STARTTLS" line, then
** w:start_tls (the bytes read after the line are the first ciphertext)
** and echoes as 0. Their handshake and close_notify timeouts (10 s) are
** above the harness's deadline (5 s): a server that closes only when a
** timer of its own fires, not when the peer's EOF comes, is caught.
*/
static const char server_lua[] =
  "local dir = ...\n"
  "local ctx = lasync.ssl.context{purpose = 'server',\n"
  "  certfile = dir .. '/cert.pem', keyfile = dir .. '/key.pem'}\n"
  "local verbose = os.getenv('TLSFZ_VERBOSE')\n"
  "local function ok(what, good, err)\n"
  "  if not good and verbose then\n"
  "    io.stderr:write('server: ', what, ': ', tostring(err), '\\n')\n"
  "  end\n"
  "  return good\n"
  "end\n"
  "local function echo(mode, r, w)\n"
  "  local n = 0\n"
  "  while true do\n"
  "    local good, data\n"
  "    if mode == 1 then good, data = pcall(r.readline, r)\n"
  "    elseif mode == 2 then good, data = pcall(r.read, r, 7)\n"
  "    else good, data = pcall(r.read, r, 65536) end\n"
  "    if not ok('read', good, data) or data == '' then break end\n"
  "    if not (ok('write', pcall(w.write, w, data)) and\n"
  "            ok('drain', pcall(w.drain, w))) then break end\n"
  "    n = n + #data\n"
  "    if mode == 3 and n >= 1000 then break end\n"
  "  end\n"
  "  w:close()\n"
  "end\n"
  "local servers = {}\n"
  "for mode = 0, 3 do\n"
  "  servers[mode] = lasync.start_unix_server(function(r, w)\n"
  "    echo(mode, r, w)\n"
  "  end, dir .. '/s' .. mode, {ssl = ctx, ssl_handshake_timeout = 10,\n"
  "    ssl_shutdown_timeout = 10, limit = mode == 2 and 64 or nil})\n"
  "end\n"
  "servers[4] = lasync.start_unix_server(function(r, w)\n"
  "  local ok, line = pcall(r.readline, r)\n"
  "  if ok and line == 'STARTTLS\\n' and pcall(w.start_tls, w, ctx,\n"
  "      {ssl_handshake_timeout = 10, ssl_shutdown_timeout = 10}) then\n"
  "    return echo(0, r, w)\n"
  "  end\n"
  "  w:close()\n"
  "end, dir .. '/s4')\n"
  "tlsfz_ready = true\n"
  "servers[0]:serve_forever()\n";

static void remove_dir(void) {
  char path[128];
  static const char *const files[] = {"cert.pem", "key.pem", "s0", "s1",
                                      "s2", "s3", "s4", "c", NULL};
  int i;
  for (i = 0; files[i]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

void tlsfz_init(void) {
  lua_State *L;
  int i, ready = 0;
  if (host) return;
  strcpy(dir, "/tmp/lasync-tlsfuzz-XXXXXX");
  if (mkdtemp(dir) == NULL) tlsfz_fail("mkdtemp: %s", strerror(errno));
  atexit(remove_dir);
  make_cert();
  if ((host = lasync_host_new(NULL)) == NULL) tlsfz_fail("no host");
  lasync_host_set_warn(host, warn_fn, NULL);
  L = lasync_host_state(host);
  if (luaL_loadbuffer(L, server_lua, sizeof server_lua - 1, "=server") !=
      LUA_OK)
    tlsfz_fail("%s", lua_tostring(L, -1));
  lua_pushstring(L, dir);
  if (lasync_host_spawn(host, 1) == 0)
    tlsfz_fail("%s", lasync_host_error(host));
  for (i = 0; i < 100 && !ready; i++) {
    lasync_host_run(host, UV_RUN_NOWAIT);
    ready = lua_getglobal(L, "tlsfz_ready") == LUA_TBOOLEAN;
    lua_pop(L, 1);
  }
  if (!ready) tlsfz_fail("the server did not start");
}

/* }====================================================================== */

/* {======================================================================
** The peer
** ======================================================================= */

SSL_CTX *tlsfz_client_ctx(int max_version) {
  static SSL_CTX *ctx[2];
  int i = max_version == TLS1_2_VERSION;
  if (ctx[i] == NULL) {
    ctx[i] = SSL_CTX_new(TLS_client_method());
    if (ctx[i] == NULL) tlsfz_fail("SSL_CTX_new");
    SSL_CTX_set_verify(ctx[i], SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_min_proto_version(ctx[i], TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx[i], max_version);
    SSL_CTX_set_session_cache_mode(ctx[i], SSL_SESS_CACHE_OFF);
  }
  return ctx[i];
}

void tlsfz_open(tlsfz_conn *c, SSL_CTX *ctx, int server) {
  struct sockaddr_un sa;
  int i;
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) tlsfz_fail("socket: %s", strerror(errno));
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s%d", dir, server);
  /* a full backlog (EAGAIN) empties as the server accepts */
  for (i = 0; connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0; i++) {
    if (errno != EAGAIN || i > 1000) tlsfz_fail("connect: %s",
                                                strerror(errno));
    lasync_host_run(host, UV_RUN_NOWAIT);
  }
  if (ctx) {
    c->ssl = SSL_new(ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL)
      tlsfz_fail("out of memory");
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
  }
}

/* Read what the server sent: into the client's rbio, or dropped. */
static int pull(tlsfz_conn *c) {
  char buf[16384];
  int moved = 0;
  while (!c->closed && !c->stalled) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n > 0) {
      moved = 1;
      c->got_raw += (size_t)n;
      if (c->ssl && BIO_write(c->rbio, buf, (int)n) != (int)n)
        tlsfz_fail("BIO_write");
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      c->closed = 1; /* EOF, or ECONNRESET */
      moved = 1;
    } else if (errno == EAGAIN) {
      break;
    }
  }
  return moved;
}

/* One turn of the server's loop, without blocking; then read. */
static int step(tlsfz_conn *c) {
  lasync_host_run(host, UV_RUN_NOWAIT);
  return pull(c);
}

/* Block until the loop or the socket has something, at most ms. */
static void wait_io(tlsfz_conn *c, int ms) {
  uv_loop_t *uv = lasync_host_loop(host);
  struct pollfd p[2];
  int t = uv_backend_timeout(uv);
  p[0].fd = uv_backend_fd(uv);
  p[0].events = POLLIN;
  p[1].fd = c->fd;
  p[1].events = POLLIN;
  poll(p, 2, t >= 0 && t < ms ? t : ms);
}

int tlsfz_send_raw(tlsfz_conn *c, const void *p, size_t n) {
  const char *s = p;
  unsigned long deadline = now_ms() + DEADLINE_MS;
  while (n > 0) {
    ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
    if (w > 0) {
      s += w;
      n -= (size_t)w;
    } else if (errno == EAGAIN) { /* the server reads first */
      int stalled = c->stalled;
      if (now_ms() > deadline) tlsfz_fail("the server stopped reading");
      c->stalled = 0; /* it may wait for us to read */
      step(c);
      c->stalled = stalled;
      wait_io(c, 10);
    } else if (errno != EINTR) {
      c->closed = 1; /* EPIPE, ECONNRESET: the server has closed */
      return -1;
    }
  }
  return 0;
}

size_t tlsfz_take_out(tlsfz_conn *c, unsigned char **buf, size_t *cap) {
  size_t n = (size_t)BIO_ctrl_pending(c->wbio);
  if (n > *cap) {
    unsigned char *p = realloc(*buf, n);
    if (p == NULL) tlsfz_fail("out of memory");
    *buf = p;
    *cap = n;
  }
  if (n > 0 && BIO_read(c->wbio, *buf, (int)n) != (int)n)
    tlsfz_fail("BIO_read");
  return n;
}

/* Send what the client wrote. */
static void flush_client(tlsfz_conn *c) {
  static unsigned char *buf;
  static size_t cap;
  size_t n = tlsfz_take_out(c, &buf, &cap);
  if (n > 0) tlsfz_send_raw(c, buf, n);
}

/*
** The server has read it all when our socket's send queue is empty
** (SIOCOUTQ of a Unix socket: what the peer has not read yet); then a
** few turns more let its tasks run and answer. Bounded: a server that
** stopped reading (paused, or it failed) is left alone.
*/
void tlsfz_settle(tlsfz_conn *c) {
  int i, idle = 0;
  for (i = 0; i < 1000 && idle < 3; i++) {
    int queued = 0, moved = step(c);
    if (!c->closed) ioctl(c->fd, SIOCOUTQ, &queued);
    idle = moved || queued > 0 ? 0 : idle + 1;
  }
  tlsfz_decrypt(c);
}

void tlsfz_decrypt(tlsfz_conn *c) {
  if (c->ssl == NULL || !SSL_is_init_finished(c->ssl)) return;
  while (!c->ssl_dead) {
    int n, e;
    if (c->got_cap - c->got_len < 16384) {
      size_t cap = c->got_cap ? c->got_cap * 2 : 65536;
      unsigned char *p = realloc(c->got, cap);
      if (p == NULL) tlsfz_fail("out of memory");
      c->got = p;
      c->got_cap = cap;
    }
    n = SSL_read(c->ssl, c->got + c->got_len, 16384);
    if (n > 0) {
      c->got_len += (size_t)n;
      continue;
    }
    e = SSL_get_error(c->ssl, n);
    if (e != SSL_ERROR_WANT_READ) { /* an alert, or EOF */
      const char *why = e == SSL_ERROR_ZERO_RETURN ? "close_notify" : "EOF";
      if (e == SSL_ERROR_SSL)
        why = ERR_reason_error_string(ERR_peek_last_error());
      if (getenv("TLSFZ_VERBOSE"))
        fprintf(stderr, "client: SSL_read: %s\n", why ? why : "?");
      c->ssl_dead = 1;
    }
    ERR_clear_error();
    break;
  }
  if (!c->closed && !c->hold) flush_client(c); /* an alert, say */
}

int tlsfz_handshake(tlsfz_conn *c) {
  unsigned long deadline = now_ms() + DEADLINE_MS;
  for (;;) {
    int r = SSL_do_handshake(c->ssl);
    flush_client(c);
    if (r == 1) return 0;
    if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ || c->closed) {
      ERR_clear_error();
      c->ssl_dead = 1;
      return -1;
    }
    if (now_ms() > deadline) tlsfz_fail("the handshake hangs");
    if (!step(c)) {
      wait_io(c, 10);
      step(c);
    }
  }
}

int tlsfz_await_got(tlsfz_conn *c, const unsigned char *expect,
                    size_t want, const char *what) {
  unsigned long deadline = now_ms() + DEADLINE_MS;
  for (;;) {
    size_t n;
    step(c);
    tlsfz_decrypt(c);
    n = c->got_len < want ? c->got_len : want;
    if (n > 0 && memcmp(c->got, expect, n) != 0)
      tlsfz_fail("%s: the echo differs from what was sent (%zu bytes back, "
                 "%zu sent)", what, c->got_len, want);
    if (c->got_len >= want) return 0;
    if (c->closed || c->ssl_dead) return -1;
    if (now_ms() > deadline)
      tlsfz_fail("%s: no answer and no close after %d ms (%zu of %zu "
                 "bytes back)", what, DEADLINE_MS, c->got_len, want);
    wait_io(c, 10);
  }
}

void tlsfz_finish(tlsfz_conn *c) {
  unsigned long deadline = now_ms() + DEADLINE_MS;
  if (!c->closed) shutdown(c->fd, SHUT_WR);
  while (!c->closed) {
    if (now_ms() > deadline)
      tlsfz_fail("the server did not close the connection within %d ms "
                 "of the peer's EOF", DEADLINE_MS);
    if (!step(c)) wait_io(c, 10);
  }
  tlsfz_decrypt(c);
}

void tlsfz_close(tlsfz_conn *c) {
  close(c->fd);
  SSL_free(c->ssl); /* and its BIOs */
  free(c->got);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

/* {======================================================================
** The harness as the server of a lasync client (tls_client.c)
** ======================================================================= */

lasync_host *tlsfz_host(void) { return host; }

const char *tlsfz_dir(void) { return dir; }

int tlsfz_step(tlsfz_conn *c) { return step(c); }

void tlsfz_wait(tlsfz_conn *c, int ms) { wait_io(c, ms); }

SSL_CTX *tlsfz_server_ctx(int max_version) {
  static SSL_CTX *ctx[2];
  int i = max_version == TLS1_2_VERSION;
  char cert[128], key[128];
  if (ctx[i] == NULL) {
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    ctx[i] = SSL_CTX_new(TLS_server_method());
    if (ctx[i] == NULL ||
        SSL_CTX_use_certificate_file(ctx[i], cert, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx[i], key, SSL_FILETYPE_PEM) != 1)
      tlsfz_fail("cannot make the server context");
    SSL_CTX_set_min_proto_version(ctx[i], TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx[i], max_version);
    SSL_CTX_set_session_cache_mode(ctx[i], SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx[i], 0); /* no records of its own */
  }
  return ctx[i];
}

const char *tlsfz_listen_path(void) {
  static char path[128];
  struct sockaddr_un sa;
  if (listen_fd >= 0) return path;
  snprintf(path, sizeof path, "%s/c", dir);
  listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) ||
      listen(listen_fd, 16))
    tlsfz_fail("listen %s: %s", path, strerror(errno));
  return path;
}

int tlsfz_listen_tcp(void) {
  static int port;
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (tcp_fd >= 0) return port;
  tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (tcp_fd < 0 || bind(tcp_fd, (struct sockaddr *)&sa, sizeof sa) ||
      listen(tcp_fd, 16) ||
      getsockname(tcp_fd, (struct sockaddr *)&sa, &len))
    tlsfz_fail("listen 127.0.0.1: %s", strerror(errno));
  port = ntohs(sa.sin_port);
  return port;
}

void tlsfz_accept(tlsfz_conn *c, SSL_CTX *ctx, int starttls, int tcp) {
  unsigned long deadline = now_ms() + DEADLINE_MS;
  char line[9];
  size_t have = 0;
  int fd = tcp ? (tlsfz_listen_tcp(), tcp_fd)
               : (tlsfz_listen_path(), listen_fd);
  memset(c, 0, sizeof *c);
  while ((c->fd = accept4(fd, NULL, NULL,
                          SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
    if (errno != EAGAIN && errno != EINTR)
      tlsfz_fail("accept: %s", strerror(errno));
    if (now_ms() > deadline) tlsfz_fail("the client did not connect");
    lasync_host_run(host, UV_RUN_NOWAIT);
    wait_io(c, 1);
  }
  /* its line and not a byte more: what follows is TLS */
  while (starttls && have < sizeof line) {
    ssize_t n = read(c->fd, line + have, sizeof line - have);
    if (n > 0) {
      have += (size_t)n;
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      tlsfz_fail("the client closed before its STARTTLS line");
    } else {
      if (now_ms() > deadline) tlsfz_fail("no STARTTLS line");
      lasync_host_run(host, UV_RUN_NOWAIT);
      wait_io(c, 1);
    }
  }
  if (starttls && memcmp(line, "STARTTLS\n", sizeof line) != 0)
    tlsfz_fail("not a STARTTLS line");
  if (ctx) {
    c->ssl = SSL_new(ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL)
      tlsfz_fail("out of memory");
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
  }
}

/* }====================================================================== */

/* A real client: handshake, echo, close_notify; all must work. */
static void check_serving(int max_version) {
  static const char ping[] = "ping through lasync";
  tlsfz_conn c;
  tlsfz_open(&c, tlsfz_client_ctx(max_version), 0);
  if (tlsfz_handshake(&c) != 0)
    tlsfz_fail("the server stopped serving: a real handshake failed");
  if (SSL_write(c.ssl, ping, sizeof ping - 1) != sizeof ping - 1)
    tlsfz_fail("SSL_write");
  flush_client(&c);
  if (tlsfz_await_got(&c, (const unsigned char *)ping, sizeof ping - 1,
                      "check") != 0)
    tlsfz_fail("the server stopped serving: no echo after a handshake");
  SSL_shutdown(c.ssl);
  flush_client(&c);
  tlsfz_finish(&c);
  tlsfz_close(&c);
}

void tlsfz_end_input(void) {
  lua_State *L = lasync_host_state(host);
  int i;
  lua_gc(L, LUA_GCCOLLECT, 0); /* finalizers run now, not inputs later */
  for (i = 0; i < 4; i++) lasync_host_run(host, UV_RUN_NOWAIT);
  if (inputs++ % CHECK_EVERY == 0) {
    check_serving(TLS1_3_VERSION);
    check_serving(TLS1_2_VERSION);
  }
  if (lua_gettop(L) != 0) tlsfz_fail("the host's stack grew");
}

/* }====================================================================== */

unsigned tlsfz_take(tlsfz_prog *p) {
  return p->pos < p->size ? p->data[p->pos++] : 0;
}

void tlsfz_buf_add(tlsfz_buf *b, const void *p, size_t n) {
  if (n == 0) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    unsigned char *q;
    while (cap < b->len + n) cap *= 2;
    if ((q = realloc(b->p, cap)) == NULL) tlsfz_fail("out of memory");
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}
