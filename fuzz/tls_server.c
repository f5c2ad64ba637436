/*
** tls_server.c — libFuzzer target: hostile bytes at a lasync TLS server
** before and during its handshake. Each input is one connection to the
** process's server (tls_harness.c) whose peer writes the input as raw
** bytes, in pieces the input chooses (the server reads each piece on its
** own: net_bio, the ciphertext kept between reads, the handshake awaited
** in C, its failure and the stream's abort), then half-closes. When the
** first byte's top bit is set the server is a plain one that gets a
** "STARTTLS" line first and then w:start_tls (the bytes read with the
** line are its first ciphertext; with the next bit set the line is read
** on its own). The
** server must close the connection before the deadline; every few
** inputs a real OpenSSL client must still get a handshake and an echo.
*/
#include <stdint.h>

#include "tls_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tlsfz_conn c;
  uint32_t seed = 1;
  size_t pos = 0;
  int starttls = 0;
  tlsfz_init();
  if (size >= 2) { /* the first two bytes choose the pieces */
    seed = (uint32_t)data[0] << 8 | data[1];
    starttls = data[0] >> 6;
    data += 2;
    size -= 2;
  }
  tlsfz_open(&c, NULL, starttls & 2 ? 4 : 0);
  if (starttls & 2) {
    tlsfz_send_raw(&c, "STARTTLS\n", 9);
    if (starttls & 1) tlsfz_settle(&c);
  }
  while (pos < size) {
    size_t n;
    seed = seed * 1103515245u + 12345u;
    n = 1 + (seed >> 16) % 512;
    if ((seed & 3) == 0) n = size - pos; /* often all of the rest */
    if (n > size - pos) n = size - pos;
    if (tlsfz_send_raw(&c, data + pos, n) != 0) break;
    pos += n;
    tlsfz_settle(&c);
    if (c.closed) break;
  }
  tlsfz_finish(&c);
  tlsfz_close(&c);
  tlsfz_end_input();
  return 0;
}
