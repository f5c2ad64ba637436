/*
** tls_client.c — libFuzzer target: lasync as a TLS client facing a hostile
** server. Each input is one connection a Lua task of the process's host
** makes (lasync.open_unix_connection, or with the first byte's bit 5
** lasync.open_connection to 127.0.0.1, with ssl, a client context that
** trusts the harness's certificate and checks the name localhost; or with
** bit 1 a plain connection, a "STARTTLS" line and w:start_tls) to the
** harness's own socket; the task writes a line (or not), reads until EOF,
** closes, and returns what it read and how it ended. The server is the
** input. With the first byte's bit 2 it is raw bytes in pieces the input
** chooses (ServerHello, certificates and records made up), then a
** half-close. Else it is a real OpenSSL server (memory BIOs, TLS 1.2 or
** 1.3) whose handshake messages may have one byte flipped, and the rest of
** the input is a program of what it sends afterwards: valid application
** records, the same with a byte flipped or their tail cut off, raw bytes,
** a fatal alert, a KeyUpdate, a HelloRequest (TLS 1.2, which lasync
** refuses), close_notify, in pieces the input chooses, the client's task
** reading between them where the input says.
**
** What must hold, whatever the input: no crash, leak or hang (every wait
** is bounded: tls_harness.c); the task ends, without raising past its
** pcall, with what it read a prefix of the plaintext of the valid
** records sent (all of it when nothing invalid was sent), and a failure
** that is a lasync.OSError (lasync.SSLError is one) when it failed; raw
** bytes never make a connection; a clean end (EOF) only after the
** server's close_notify, with every valid record read. Every 32 inputs
** a clean connection must bring the client all that a real server sent,
** closed by close_notify.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "lauxlib.h"
#include "tls_harness.h"

#define MAX_PLAIN (256u << 10) /* plaintext per input, at most */
#define DEADLINE_MS 5000       /* as the harness's */
#define CHECK_EVERY 32
#define STUCK_MS 500           /* a handshake idle this long is stuck */

/* The client: a function of (path or port, starttls, line), made
   once. */
static const char client_lua[] =
  "local dir = ...\n"
  "local ctx = lasync.ssl.context{cafile = dir .. '/cert.pem'}\n"
  "local function connect(where, opts)\n"
  "  if type(where) == 'number' then\n"
  "    return lasync.open_connection('127.0.0.1', where, opts)\n"
  "  end\n"
  "  return lasync.open_unix_connection(where, opts)\n"
  "end\n"
  "return function(where, starttls, line)\n"
  "  local got, r, w = {}\n"
  "  local opts = {server_hostname = 'localhost',\n"
  "    ssl_handshake_timeout = 10, ssl_shutdown_timeout = 10}\n"
  "  local ok, err = pcall(function()\n"
  "    if starttls then\n"
  "      r, w = connect(where)\n"
  "      w:write('STARTTLS\\n')\n"
  "      w:start_tls(ctx, opts)\n"
  "    else\n"
  "      opts.ssl = ctx\n"
  "      r, w = connect(where, opts)\n"
  "    end\n"
  "    if line then w:write('hello\\n') w:drain() end\n"
  "    while true do\n"
  "      local data = r:read(65536)\n"
  "      if data == '' then break end\n"
  "      got[#got + 1] = data\n"
  "    end\n"
  "  end)\n"
  "  if w then w:close() pcall(w.wait_closed, w) end\n"
  "  return table.concat(got), ok, tostring(err),\n"
  "    ok or lasync.is_error(err, lasync.OSError)\n"
  "end\n";

static int client_ref = LUA_NOREF;

static unsigned long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long)ts.tv_sec * 1000 + (unsigned long)ts.tv_nsec / 1000000;
}
static unsigned long inputs;



typedef struct state {
  tlsfz_conn c;   /* the server's end */
  tlsfz_buf out;        /* not sent yet */
  tlsfz_buf sent;       /* plaintext of the valid records, in order */
  uint32_t gen;   /* the next payload byte's number */
  int tls12;
  int dirty;      /* something invalid went out */
  int closing;    /* close_notify went out (into out) */
} state;

static void take_server(state *s) {
  static unsigned char *tmp;
  static size_t cap;
  size_t n = tlsfz_take_out(&s->c, &tmp, &cap);
  tlsfz_buf_add(&s->out, tmp, n);
}

static void send_out(state *s, size_t n) {
  if (n > s->out.len) n = s->out.len;
  if (n == 0) return;
  if (!s->c.closed) tlsfz_send_raw(&s->c, s->out.p, n);
  memmove(s->out.p, s->out.p + n, s->out.len - n);
  s->out.len -= n;
}

static int usable(state *s) {
  return s->c.ssl && !s->c.ssl_dead && !s->closing;
}

/* Application records of n payload bytes into out: where they start
   there and their length; valid: the client should read them. */
static int app_record(state *s, size_t n, int valid, size_t *at,
                      size_t *len) {
  unsigned char *p;
  size_t i;
  take_server(s);
  if (!usable(s) || n == 0 || s->sent.len + n > MAX_PLAIN) return 0;
  if ((p = malloc(n)) == NULL) tlsfz_fail("out of memory");
  for (i = 0; i < n; i++, s->gen++)
    p[i] = (unsigned char)(s->gen * 7u + (s->gen >> 8) * 13u + 1u);
  if (SSL_write(s->c.ssl, p, (int)n) != (int)n) {
    ERR_clear_error();
    s->c.ssl_dead = 1;
    s->dirty = 1;
    free(p);
    return 0;
  }
  if (valid) tlsfz_buf_add(&s->sent, p, n);
  free(p);
  *at = s->out.len;
  take_server(s);
  *len = s->out.len - *at;
  return *len > 0;
}

/* The server's handshake, one byte of all it sends xored with x (0: as
   is): 0 when the server finished it, else -1. A handshake where nothing
   moves for STUCK_MS (a flipped length: the client waits for bytes the
   server never sends, the server for its answer) is a server that gives
   up: -1, and the half-close that follows must end the client's wait
   (its own handshake timeout, 10 s, is past the deadline). */
static int handshake(state *s, size_t where, unsigned x) {
  static unsigned char *tmp;
  static size_t cap;
  size_t total = 0;
  unsigned long moved = now_ms();
  for (;;) {
    int r = SSL_do_handshake(s->c.ssl);
    size_t n = tlsfz_take_out(&s->c, &tmp, &cap);
    if (x && where >= total && where < total + n) {
      tmp[where - total] ^= (unsigned char)x;
      s->dirty = 1;
    }
    total += n;
    if (n > 0) tlsfz_send_raw(&s->c, tmp, n);
    if (r == 1) return 0;
    if (SSL_get_error(s->c.ssl, r) != SSL_ERROR_WANT_READ || s->c.closed ||
        now_ms() - moved > STUCK_MS) {
      ERR_clear_error();
      s->c.ssl_dead = 1;
      return -1;
    }
    if (n > 0 || tlsfz_step(&s->c)) {
      moved = now_ms();
    } else {
      tlsfz_wait(&s->c, 10);
      if (tlsfz_step(&s->c)) moved = now_ms();
    }
  }
}

/* The server sends a fatal alert: it is fed a record that cannot
   decrypt. */
static void server_alert(state *s) {
  static const unsigned char bad[37] = {0x17, 0x03, 0x03, 0x00, 0x20};
  if (!usable(s)) return;
  take_server(s);
  BIO_write(s->c.rbio, bad, sizeof bad);
  tlsfz_decrypt(&s->c);
  take_server(s);
  s->c.ssl_dead = 1;
  s->dirty = 1;
}

enum { OP_APP, OP_BIG, OP_FLIP, OP_CUT, OP_RAW, OP_SPLIT, OP_SETTLE,
       OP_ALERT, OP_KEYUPDATE, OP_RENEG, OP_CLOSE_NOTIFY, OP_COUNT };

static void run_op(state *s, tlsfz_prog *p) {
  size_t at, len;
  switch (tlsfz_take(p) % OP_COUNT) {
  case OP_APP:
    app_record(s, 1 + tlsfz_take(p), 1, &at, &len);
    break;
  case OP_BIG:
    app_record(s, (1 + tlsfz_take(p)) * 1021, 1, &at, &len);
    break;
  case OP_FLIP: {
    unsigned where = tlsfz_take(p) << 8, x;
    where |= tlsfz_take(p);
    x = tlsfz_take(p);
    if (app_record(s, 1 + tlsfz_take(p), 0, &at, &len)) {
      s->out.p[at + where % len] ^= (unsigned char)(x ? x : 0x80);
      s->dirty = 1;
    }
    break;
  }
  case OP_CUT: { /* the record's tail never comes */
    unsigned keep = tlsfz_take(p);
    if (app_record(s, 1 + tlsfz_take(p), 0, &at, &len)) {
      s->out.len = at + keep % len;
      s->dirty = 1;
    }
    break;
  }
  case OP_RAW: {
    size_t n = tlsfz_take(p) % 64;
    if (n > p->size - p->pos) n = p->size - p->pos;
    take_server(s);
    tlsfz_buf_add(&s->out, p->data + p->pos, n);
    p->pos += n;
    if (n > 0) s->dirty = 1;
    break;
  }
  case OP_SPLIT: { /* a piece, which the client reads on its own */
    unsigned k = tlsfz_take(p) << 8;
    k |= tlsfz_take(p);
    take_server(s);
    if (s->out.len > 0) send_out(s, 1 + k % s->out.len);
    tlsfz_settle(&s->c);
    break;
  }
  case OP_SETTLE:
    take_server(s);
    send_out(s, s->out.len);
    tlsfz_settle(&s->c);
    break;
  case OP_ALERT:
    server_alert(s);
    break;
  case OP_KEYUPDATE: /* TLS 1.3; the client must update too when asked */
    take_server(s);
    if (usable(s) && !s->tls12 &&
        SSL_key_update(s->c.ssl, tlsfz_take(p) & 1 ? SSL_KEY_UPDATE_REQUESTED
                                             : SSL_KEY_UPDATE_NOT_REQUESTED)) {
      SSL_do_handshake(s->c.ssl);
      take_server(s);
    }
    ERR_clear_error();
    break;
  case OP_RENEG: /* TLS 1.2: a HelloRequest, which lasync refuses */
    take_server(s);
    if (usable(s) && s->tls12 && SSL_renegotiate(s->c.ssl)) {
      SSL_do_handshake(s->c.ssl);
      take_server(s);
      s->dirty = 1;
    }
    ERR_clear_error();
    break;
  case OP_CLOSE_NOTIFY:
    take_server(s);
    if (usable(s)) {
      SSL_shutdown(s->c.ssl);
      take_server(s);
      s->closing = 1;
    }
    ERR_clear_error();
    break;
  }
}

/* Start the client's task: its id. */
static int spawn_client(int starttls, int line, int tcp) {
  lasync_host *h = tlsfz_host();
  lua_State *L = lasync_host_state(h);
  int task;
  if (client_ref == LUA_NOREF) {
    if (luaL_loadbuffer(L, client_lua, sizeof client_lua - 1, "=client") !=
        LUA_OK)
      tlsfz_fail("%s", lua_tostring(L, -1));
    lua_pushstring(L, tlsfz_dir());
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
      tlsfz_fail("%s", lua_tostring(L, -1));
    client_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, client_ref);
  if (tcp)
    lua_pushinteger(L, tlsfz_listen_tcp());
  else
    lua_pushstring(L, tlsfz_listen_path());
  lua_pushboolean(L, starttls);
  lua_pushboolean(L, line);
  if ((task = lasync_host_spawn(h, 3)) == 0)
    tlsfz_fail("%s", lasync_host_error(h));
  return task;
}

/* Wait for the task's end, then check what it read against sent. */
static void check_client(state *s, int task, int raw, int strict) {
  lasync_host *h = tlsfz_host();
  lua_State *L = lasync_host_state(h);
  int i, n, st = LASYNC_PENDING;
  size_t got_len;
  const char *got, *err;
  for (i = 0; i < DEADLINE_MS / 10 &&
       (st = lasync_host_result(h, task, &n)) == LASYNC_PENDING; i++) {
    if (!tlsfz_step(&s->c)) tlsfz_wait(&s->c, 10);
  }
  if (st == LASYNC_PENDING)
    tlsfz_fail("the client's task did not end after the connection closed");
  if (st != LASYNC_OK) tlsfz_fail("the client raised: %s",
                                  lasync_host_error(h));
  got = lua_tolstring(L, -4, &got_len);
  err = lua_tostring(L, -2);
  if (!lua_toboolean(L, -1))
    tlsfz_fail("the client failed with no lasync.OSError: %s", err);
  if (got_len > s->sent.len ||
      (got_len > 0 && memcmp(got, s->sent.p, got_len) != 0))
    tlsfz_fail("the client read what the server did not send (%zu bytes "
               "read, %zu sent)", got_len, s->sent.len);
  if (raw && lua_toboolean(L, -3))
    tlsfz_fail("raw bytes made a connection");
  /* a clean EOF is a close_notify after every valid record: an EOF
     without it, or one read where a record went wrong, is a truncation */
  if (lua_toboolean(L, -3) && (!s->closing || got_len != s->sent.len))
    tlsfz_fail("the client took a truncated connection for a whole one "
               "(%zu of %zu bytes read, close_notify %s)", got_len,
               s->sent.len, s->closing ? "sent" : "never sent");
  if (!s->dirty && got_len != s->sent.len)
    tlsfz_fail("the client read %zu of %zu bytes of a valid connection: %s",
               got_len, s->sent.len, err);
  if (strict && !lua_toboolean(L, -3))
    tlsfz_fail("a clean connection failed: %s", err);
  if (getenv("TLSFZ_VERBOSE"))
    fprintf(stderr, "tls_client: %s%s, %zu of %zu bytes read: %s\n",
            raw ? "raw" : s->tls12 ? "TLS 1.2" : "TLS 1.3",
            s->dirty ? ", invalid" : "", got_len, s->sent.len, err);
  lua_pop(L, n);
  lasync_host_release(h, task);
}

/* A real server, a handshake, data, close_notify: all must arrive
   (TLS 1.3 on the Unix socket, 1.2 on TCP). */
static void check_clean(int tls12) {
  static const uint8_t prog_clean[] = {OP_APP, 99, OP_SETTLE, OP_BIG, 3,
                                       OP_CLOSE_NOTIFY};
  state s;
  tlsfz_prog p = {prog_clean, sizeof prog_clean, 0};
  int task = spawn_client(0, 1, tls12);
  memset(&s, 0, sizeof s);
  s.tls12 = tls12;
  tlsfz_accept(&s.c, tlsfz_server_ctx(tls12 ? TLS1_2_VERSION
                                            : TLS1_3_VERSION), 0, tls12);
  s.c.hold = 1;
  if (handshake(&s, 0, 0) != 0)
    tlsfz_fail("the client stopped working: a real handshake failed");
  while (p.pos < p.size) run_op(&s, &p);
  send_out(&s, s.out.len);
  tlsfz_finish(&s.c);
  check_client(&s, task, 0, 1);
  tlsfz_close(&s.c);
  free(s.out.p);
  free(s.sent.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char hello[] = "hello\n";
  state s;
  tlsfz_prog p = {data, size, 0};
  unsigned flags;
  int raw, starttls, line, tcp, task;
  tlsfz_init();
  memset(&s, 0, sizeof s);
  flags = tlsfz_take(&p);
  s.tls12 = flags & 1;
  starttls = flags >> 1 & 1;
  raw = flags >> 2 & 1;
  line = flags >> 3 & 1;
  tcp = flags >> 5 & 1;
  task = spawn_client(starttls, line, tcp);
  tlsfz_accept(&s.c, raw ? NULL : tlsfz_server_ctx(s.tls12 ? TLS1_2_VERSION
                                                          : TLS1_3_VERSION),
               starttls, tcp);
  if (raw) { /* the input's bytes in pieces its next two bytes choose */
    uint32_t seed = tlsfz_take(&p) << 8;
    seed |= tlsfz_take(&p);
    while (p.pos < p.size && !s.c.closed) {
      size_t n;
      seed = seed * 1103515245u + 12345u;
      n = 1 + (seed >> 16) % 512;
      if ((seed & 3) == 0) n = p.size - p.pos;
      if (n > p.size - p.pos) n = p.size - p.pos;
      if (tlsfz_send_raw(&s.c, p.data + p.pos, n) != 0) break;
      p.pos += n;
      tlsfz_settle(&s.c);
    }
    s.dirty = 1;
  } else {
    size_t where = 0;
    unsigned x = 0;
    s.c.hold = 1;
    if (flags >> 4 & 1) { /* one byte of the handshake flipped */
      where = tlsfz_take(&p) << 8;
      where |= tlsfz_take(&p);
      x = tlsfz_take(&p);
      x = x ? x : 0x80;
    }
    if (handshake(&s, where, x) == 0) {
      while (p.pos < p.size && !s.c.closed) run_op(&s, &p);
    } else {
      s.dirty = 1;
    }
    take_server(&s);
    send_out(&s, s.out.len);
  }
  tlsfz_finish(&s.c);
  if (line && s.c.got_len > 0 && (s.c.got_len > sizeof hello - 1 ||
      memcmp(s.c.got, hello, s.c.got_len) != 0))
    tlsfz_fail("the server read what the client did not send");
  check_client(&s, task, raw, 0);
  tlsfz_close(&s.c);
  free(s.out.p);
  free(s.sent.p);
  if (inputs++ % CHECK_EVERY == 0) {
    check_clean(0);
    check_clean(1);
  }
  tlsfz_end_input();
  return 0;
}
