/*
** tls_harness.h — what the TLS fuzz targets share: one lasync TLS echo
** server per fuzz process (the embedding API, lasync.h), on a Unix socket,
** and the harness's peer of one connection to it: raw bytes, or an
** OpenSSL client of its own through memory BIOs; or, facing a lasync
** client, the harness's listening sockets and its end of one connection
** (raw bytes, or an OpenSSL server). The loop runs only when
** the harness drives it, and every wait is bounded: a wait past its
** deadline is a hang, reported as a crash (abort).
*/
#ifndef LASYNC_TLS_HARNESS_H
#define LASYNC_TLS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "lasync.h"

typedef struct tlsfz_conn {
  int fd;                  /* the harness's end of the connection */
  SSL *ssl;                /* its OpenSSL client, or NULL: raw bytes */
  BIO *rbio, *wbio;        /* that client's memory BIOs */
  unsigned char *got;      /* plaintext the client decrypted: got_len */
  size_t got_len, got_cap;
  size_t got_raw;          /* bytes read from the server, all told */
  int closed;              /* the server closed its end (EOF or reset) */
  int ssl_dead;            /* the client failed or read close_notify */
  int stalled;             /* read nothing (unless a send is stuck) */
  int hold;                /* what the client writes while it decrypts
                              stays in wbio (the caller sends it in order
                              with records of its own), else it goes out */
} tlsfz_conn;

/* Once per process (later calls return): certificate, host, server. */
void tlsfz_init(void);

/* The client context capped at max_version (TLS1_2_VERSION or
   TLS1_3_VERSION), made once; it verifies nothing. */
SSL_CTX *tlsfz_client_ctx(int max_version);

/* Connect to the server of that mode (0 to 4, tls_harness.c; 4 wants
   the STARTTLS line first); ctx NULL: a raw peer, else an OpenSSL client
   (not started). */
void tlsfz_open(tlsfz_conn *c, SSL_CTX *ctx, int server);

/* Send n raw bytes; -1 once the server has closed. */
int tlsfz_send_raw(tlsfz_conn *c, const void *p, size_t n);

/* Move what the client wrote (its wbio) into buf: the length taken. */
size_t tlsfz_take_out(tlsfz_conn *c, unsigned char **buf, size_t *cap);

/* Run the loop until the server has read all that was sent and nothing
   moves any more; what comes back is read (and decrypted). */
void tlsfz_settle(tlsfz_conn *c);

/* The client's handshake, driven to its end: 0, or -1 if it failed. */
int tlsfz_handshake(tlsfz_conn *c);

/* Decrypt what has come (client connections): SSL_read into got. */
void tlsfz_decrypt(tlsfz_conn *c);

/* Run until got holds want bytes or the server closed: 0, or -1 when
   the server closed first. Aborts after the deadline, or as soon as got
   differs from expect (want bytes). */
int tlsfz_await_got(tlsfz_conn *c, const unsigned char *expect,
                    size_t want, const char *what);

/* Half-close (the peer is done), then the server must close its end
   before the deadline (else abort); what came is decrypted. */
void tlsfz_finish(tlsfz_conn *c);

/* Close and free the connection. */
void tlsfz_close(tlsfz_conn *c);

/* The end of an input: a full garbage collection in the server's state,
   and every so often a real handshake and echo, which must succeed. */
void tlsfz_end_input(void);

/* For a target where lasync is the client (tls_client.c): the process's
   host and its temporary directory (cert.pem, key.pem: the certificate
   a client context may trust, for CN localhost). */
lasync_host *tlsfz_host(void);
const char *tlsfz_dir(void);

/* An OpenSSL server context on that certificate, capped at max_version,
   made once. */
SSL_CTX *tlsfz_server_ctx(int max_version);

/* The harness's listening socket, tlsfz_dir()/c, made at the first call:
   its path. */
const char *tlsfz_listen_path(void);

/* The same on TCP, 127.0.0.1: its port. */
int tlsfz_listen_tcp(void);

/* Accept the connection a lasync client made to tlsfz_listen_path(), or
   with tcp to tlsfz_listen_tcp() (the loop runs meanwhile); with
   starttls, read its "STARTTLS\n" line first. ctx NULL: a raw peer, else
   an OpenSSL server (not started). */
void tlsfz_accept(tlsfz_conn *c, SSL_CTX *ctx, int starttls, int tcp);

/* One turn of the loop without blocking, then read: whether anything
   came; and a wait of at most ms for the loop or the socket. */
int tlsfz_step(tlsfz_conn *c);
void tlsfz_wait(tlsfz_conn *c, int ms);

/* The fuzz input read as a program: one byte at a time, 0 past its end. */
typedef struct tlsfz_prog {
  const uint8_t *data;
  size_t size, pos;
} tlsfz_prog;
unsigned tlsfz_take(tlsfz_prog *p);

/* A growing byte buffer (records to send, plaintext sent or read). */
typedef struct tlsfz_buf {
  unsigned char *p;
  size_t len, cap;
} tlsfz_buf;
void tlsfz_buf_add(tlsfz_buf *b, const void *p, size_t n);


/* Report a broken invariant and abort (libFuzzer keeps the input). */
void tlsfz_fail(const char *fmt, ...);

#endif
