/*
** tls_records.c — libFuzzer target: a lasync TLS connection after its
** handshake. The harness's OpenSSL client (memory BIOs) completes a real
** handshake with one of the process's echo servers (tls_harness.c: the
** first byte of the input chooses it, or the STARTTLS one, TLS 1.2 or
** 1.3, and whether the client answers the server's close_notify); then
** the input is a program of operations on what the client sends: valid
** application records, the same with a byte flipped or their tail cut
** off, raw bytes, a fatal alert, a KeyUpdate, a renegotiation (1.2),
** close_notify, all gathered and sent in pieces the input chooses, with
** the server reading between pieces where the input says so, and a
** client that stops reading for a while (the server's writes back up).
**
** What must hold, whatever the input: no crash (ASan, UBSan); all the
** client ever decrypts is a prefix of the plaintext of the valid records
** it sent (nothing altered, lost in the middle, reordered or invented);
** after the peer's EOF the server closes before the deadline. When the
** client sent nothing invalid, the connection must still echo (a probe
** record comes back whole), and after a close_notify every byte sent
** before it must have been echoed before the server closed (the server
** that closes first: its first 1000 bytes).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls_harness.h"

/* Plaintext per input, at most: enough to fill the sockets' buffers
   (STALL), little enough to keep inputs fast; the server that echoes 7
   bytes at a time (mode 2) makes a record of every 7. */
#define MAX_PLAIN (256u << 10)
#define MAX_PLAIN_MODE2 (16u << 10)



typedef struct state {
  tlsfz_conn c;
  tlsfz_buf out;        /* not sent yet */
  tlsfz_buf sent;       /* plaintext of the valid records, in order */
  uint32_t gen;   /* the next payload byte's number: every byte differs
                     from its neighbours, so a record out of place shows */
  int tls12;
  int mode;       /* the server's (tls_harness.c): 3 closes after 1000 */
  int answer;     /* answer the server's close_notify with ours */
  int dirty;      /* something invalid went out: the server may close */
  int closing;    /* close_notify went out (into out) */
} state;

/* Move what the client wrote into out, after what is there. */
static void take_client(state *s) {
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

/* Whether the client can still write records. */
static int usable(state *s) {
  return s->c.ssl && !s->c.ssl_dead && !s->closing;
}

/*
** One application record (or several, past 16 KB) of n payload bytes,
** into out: where its ciphertext starts there, and its length. valid:
** the server should echo it (its plaintext is expected back).
*/
static int app_record(state *s, size_t n, int valid, size_t *at,
                      size_t *len) {
  unsigned char *p;
  size_t i;
  int r;
  take_client(s); /* what the client wrote before comes first */
  if (!usable(s) || n == 0 ||
      s->sent.len + n > (s->mode == 2 ? MAX_PLAIN_MODE2 : MAX_PLAIN))
    return 0;
  if ((p = malloc(n)) == NULL) tlsfz_fail("out of memory");
  for (i = 0; i < n; i++, s->gen++)
    p[i] = (unsigned char)(s->gen * 7u + (s->gen >> 8) * 13u + 1u);
  r = SSL_write(s->c.ssl, p, (int)n);
  if (r != (int)n) { /* mid-renegotiation, say: the client is done */
    ERR_clear_error();
    s->c.ssl_dead = 1;
    s->dirty = 1;
    free(p);
    return 0;
  }
  if (valid) tlsfz_buf_add(&s->sent, p, n);
  free(p);
  *at = s->out.len;
  take_client(s);
  *len = s->out.len - *at;
  return *len > 0;
}

/* The client sends a fatal alert of its own: it is fed a record that
   cannot decrypt (what it had read before is taken first). */
static void client_alert(state *s) {
  static const unsigned char bad[37] = {0x17, 0x03, 0x03, 0x00, 0x20};
  if (!usable(s)) return;
  send_out(s, s->out.len);
  tlsfz_settle(&s->c);
  if (s->c.ssl_dead) return;
  BIO_write(s->c.rbio, bad, sizeof bad);
  tlsfz_decrypt(&s->c); /* fails: bad_record_mac, into wbio */
  take_client(s);
  s->dirty = 1;
}

enum { OP_APP, OP_BIG, OP_FLIP, OP_CUT, OP_RAW, OP_SPLIT, OP_SETTLE,
       OP_ALERT, OP_KEYUPDATE, OP_RENEG, OP_CLOSE_NOTIFY, OP_STALL,
       OP_COUNT };

static void run_op(state *s, tlsfz_prog *p) {
  size_t at, len;
  unsigned op = tlsfz_take(p) % OP_COUNT;
  switch (op) {
  case OP_APP:
    app_record(s, 1 + tlsfz_take(p), 1, &at, &len);
    break;
  case OP_BIG: /* several records in one write */
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
    take_client(s);
    tlsfz_buf_add(&s->out, p->data + p->pos, n);
    p->pos += n;
    if (n > 0) s->dirty = 1;
    break;
  }
  case OP_SPLIT: { /* send a piece, which the server reads on its own */
    unsigned k = tlsfz_take(p) << 8;
    k |= tlsfz_take(p);
    take_client(s);
    if (s->out.len > 0) send_out(s, 1 + k % s->out.len);
    tlsfz_settle(&s->c);
    break;
  }
  case OP_SETTLE:
    take_client(s);
    send_out(s, s->out.len);
    tlsfz_settle(&s->c);
    break;
  case OP_STALL: /* the client reads nothing for a while: the server's
                    writes back up, its drain() waits */
    take_client(s);
    s->c.stalled = 1;
    send_out(s, s->out.len);
    tlsfz_settle(&s->c);
    s->c.stalled = 0;
    tlsfz_settle(&s->c);
    break;
  case OP_ALERT:
    client_alert(s);
    break;
  case OP_KEYUPDATE: /* TLS 1.3; the server must update its keys too
                        when asked */
    take_client(s);
    if (usable(s) && !s->tls12 &&
        SSL_key_update(s->c.ssl, tlsfz_take(p) & 1 ? SSL_KEY_UPDATE_REQUESTED
                                             : SSL_KEY_UPDATE_NOT_REQUESTED)) {
      SSL_do_handshake(s->c.ssl); /* sends it now */
      take_client(s);
    }
    ERR_clear_error();
    break;
  case OP_RENEG: /* TLS 1.2: the server refuses it */
    take_client(s);
    if (usable(s) && s->tls12 && SSL_renegotiate(s->c.ssl)) {
      SSL_do_handshake(s->c.ssl); /* its ClientHello */
      take_client(s);
      s->dirty = 1; /* the client fails at the refusal */
    }
    ERR_clear_error();
    break;
  case OP_CLOSE_NOTIFY:
    take_client(s);
    if (usable(s)) {
      SSL_shutdown(s->c.ssl);
      take_client(s);
      s->closing = 1;
    }
    ERR_clear_error();
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const unsigned char probe[] = "probe\n"; /* a line (mode 1) */
  state s;
  tlsfz_prog p = {data, size, 0};
  int starttls;
  size_t raw0;
  tlsfz_init();
  memset(&s, 0, sizeof s);
  {
    unsigned flags = tlsfz_take(&p);
    s.tls12 = flags & 1;
    s.mode = flags >> 1 & 3;
    s.answer = flags >> 3 & 1;
    starttls = flags >> 4 & 3; /* not 0: STARTTLS; 3: the line alone */
    if (starttls) s.mode = 0;  /* that server echoes as 0 */
  }
  tlsfz_open(&s.c, tlsfz_client_ctx(s.tls12 ? TLS1_2_VERSION
                                            : TLS1_3_VERSION),
             starttls ? 4 : s.mode);
  if (starttls) {
    tlsfz_send_raw(&s.c, "STARTTLS\n", 9);
    if (starttls == 3) tlsfz_settle(&s.c);
  }
  if (tlsfz_handshake(&s.c) != 0)
    tlsfz_fail("the handshake with the server failed");
  s.c.hold = 1;
  raw0 = s.c.got_raw;
  while (p.pos < p.size && !s.c.closed) run_op(&s, &p);
  take_client(&s);
  send_out(&s, s.out.len);
  if (!s.dirty && !s.closing && !s.c.closed && !s.c.ssl_dead &&
      (s.mode != 3 || s.sent.len < 1000)) {
    /* nothing invalid was sent: it must still echo */
    take_client(&s);
    if (SSL_write(s.c.ssl, probe, sizeof probe - 1) != sizeof probe - 1)
      tlsfz_fail("cannot write the probe");
    tlsfz_buf_add(&s.sent, probe, sizeof probe - 1);
    take_client(&s);
    send_out(&s, s.out.len);
    if (tlsfz_await_got(&s.c, s.sent.p, s.sent.len, "probe") != 0)
      tlsfz_fail("the server closed a valid connection (%zu of %zu "
                 "bytes echoed)", s.c.got_len, s.sent.len);
  }
  if (s.answer && s.c.ssl &&
      SSL_get_shutdown(s.c.ssl) & SSL_RECEIVED_SHUTDOWN) {
    SSL_shutdown(s.c.ssl); /* the server waits for it (mode 3) */
    ERR_clear_error();
    take_client(&s);
    send_out(&s, s.out.len);
    tlsfz_settle(&s.c);
  }
  tlsfz_finish(&s.c);
  if (s.c.got_len > s.sent.len ||
      (s.c.got_len > 0 && memcmp(s.c.got, s.sent.p, s.c.got_len) != 0))
    tlsfz_fail("the echo is not what was sent (%zu bytes back, %zu sent)",
               s.c.got_len, s.sent.len);
  if (!s.dirty && s.closing &&
      s.c.got_len < (s.mode == 3 && s.sent.len > 1000 ? 1000 : s.sent.len))
    tlsfz_fail("close_notify: %zu of %zu bytes echoed before the close",
               s.c.got_len, s.sent.len);
  if (getenv("TLSFZ_VERBOSE"))
    fprintf(stderr, "tls_records: TLS 1.%d, %s%s, %zu of %zu bytes "
            "echoed (%zu bytes from the server after the handshake)\n",
            s.tls12 ? 2 : 3, s.dirty ? "invalid" : "valid",
            s.closing ? ", close_notify" : "", s.c.got_len, s.sent.len,
            s.c.got_raw - raw0);
  tlsfz_close(&s.c);
  free(s.out.p);
  free(s.sent.p);
  tlsfz_end_input();
  return 0;
}
