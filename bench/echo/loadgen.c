/* Echo load generator: C connections to HOST:PORT, each sends an S-byte
 * message and waits for the complete echo before sending the next (one
 * message in flight per connection). Single thread, epoll, non-blocking,
 * TCP_NODELAY. Warm-up W seconds (not counted), then measures T seconds.
 * Echoed bytes are verified. Prints one RESULT line; with -P PID it also
 * reports that server's CPU use over the measured window and its VmHWM.
 *
 * Idle mode (-i, needs -P): the server's VmRSS and open-fd count are read
 * first; then C connections are opened and left idle (nothing sent) until the
 * server holds C more fds and its VmRSS has not changed for 3 readings 100 ms
 * apart (at most 5 s); that VmRSS is read; finally every connection echoes one
 * byte (checks that the server still serves them all). RESULT reports
 * bytes_per_conn = (VmRSS after - VmRSS before) * 1024 / C.
 *
 * TLS (-T CAFILE, or -T none for no verification): every connection runs a
 * full TLS handshake (OpenSSL, TLS 1.3 only, TLS_AES_128_GCM_SHA256, the
 * ECDHE group of -g: X25519 or P-256) before it counts, so that every server
 * does the same cryptography. With a CA file the server's certificate is
 * verified and must name the host's IP address (IP SAN). Echo and idle modes
 * work over TLS unchanged; the handshake is done before the clock starts.
 *
 * Handshake mode (-H, needs -T): C slots each loop: connect, full handshake
 * (a fresh SSL, no session resumption), one 1-byte echo (so the server's
 * handler has run), close_notify and close. The rate is completed
 * connections per second; p50/p99 time from connect() to the echo.
 *
 * usage: loadgen -p PORT [-h 127.0.0.1] [-c 100] [-s 64] [-t 5] [-w 1]
 *                [-P server_pid] [-W workload] [-N peer] [-i]
 *                [-T cafile|none [-g X25519|P-256] [-H]]
 * (-t stays the measured seconds, as for the plain echo workloads)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define HIST_MAX 1000000 /* 1 us buckets up to 1 s; above is clamped */

typedef struct {
  int fd;
  SSL *ssl; /* NULL without -T */
  size_t sent, rcvd;
  uint64_t t_start;
  unsigned seq;
  int want_out;
  int state; /* handshake mode: HS_CONNECT, HS_HANDSHAKE, HS_ECHO */
} conn_t;

static uint32_t hist[HIST_MAX + 1];
static size_t S = 64;
static unsigned char *sendbuf, *recvbuf;
static SSL_CTX *tls_ctx;     /* -T: the client context every connection uses */
static const char *tls_host; /* the address the certificate must name */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *m) { perror(m); exit(1); }

static void tls_die(const char *m) {
  fprintf(stderr, "%s: ", m);
  ERR_print_errors_fp(stderr);
  fprintf(stderr, "\n");
  exit(1);
}

/* The same cryptography for every server: TLS 1.3 only, one cipher suite,
 * one ECDHE group. Sessions are never resumed (no client cache, no
 * SSL_set_session; the tickets a TLS 1.3 server sends are read and
 * dropped), so every connection is a full handshake. */
static void tls_init(const char *cafile, const char *group) {
  tls_ctx = SSL_CTX_new(TLS_client_method());
  if (!tls_ctx) tls_die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION);
  if (!SSL_CTX_set_ciphersuites(tls_ctx, "TLS_AES_128_GCM_SHA256")) tls_die("ciphersuites");
  if (!SSL_CTX_set1_groups_list(tls_ctx, group)) tls_die("-g: unknown group");
  SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(tls_ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (strcmp(cafile, "none") != 0) {
    if (!SSL_CTX_load_verify_locations(tls_ctx, cafile, NULL)) tls_die("-T: cannot load the CA file");
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
  }
}

static SSL *tls_new(int fd) {
  SSL *ssl = SSL_new(tls_ctx);
  if (!ssl || !SSL_set_fd(ssl, fd)) tls_die("SSL_new");
  if (SSL_CTX_get_verify_mode(tls_ctx) & SSL_VERIFY_PEER) {
    /* the host is an IP address here: checked against the IP SANs */
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    if (!X509_VERIFY_PARAM_set1_ip_asc(vp, tls_host)) tls_die("-h: not an IP address");
  }
  return ssl;
}

/* blocking handshake on a blocking socket (echo and idle modes) */
static SSL *tls_connect_blocking(int fd) {
  SSL *ssl = tls_new(fd);
  if (SSL_connect(ssl) != 1) {
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) fprintf(stderr, "verify: %s\n", X509_verify_cert_error_string(v));
    tls_die("SSL_connect");
  }
  return ssl;
}

/* what the first connection negotiated, for the RESULT line */
static char tls_info[160];
static void tls_note(SSL *ssl) {
  if (tls_info[0] || !ssl) return;
  int nid = SSL_get_negotiated_group(ssl);
  snprintf(tls_info, sizeof tls_info, " tls=%s cipher=%s group=%s verify=%s", SSL_get_version(ssl),
           SSL_get_cipher_name(ssl), nid > 0 ? OBJ_nid2sn(nid) : "?",
           SSL_CTX_get_verify_mode(tls_ctx) & SSL_VERIFY_PEER ? "yes" : "no");
}

/* read or write some bytes, TLS or not: n > 0, 0 for the peer's EOF, -1
 * when the socket would block (the caller waits for the event) */
static ssize_t conn_write(conn_t *c, const void *b, size_t n) {
  if (!c->ssl) {
    ssize_t r = write(c->fd, b, n);
    if (r < 0 && errno == EAGAIN) return -1;
    if (r < 0) die("write");
    return r;
  }
  int r = SSL_write(c->ssl, b, (int)n);
  if (r > 0) return r;
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return -1;
  tls_die("SSL_write");
  return 0;
}

static ssize_t conn_read(conn_t *c, void *b, size_t n) {
  if (!c->ssl) {
    ssize_t r = read(c->fd, b, n);
    if (r < 0 && errno == EAGAIN) return -1;
    if (r < 0) die("read");
    return r;
  }
  int r = SSL_read(c->ssl, b, (int)n);
  if (r > 0) return r;
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    if (errno == 0 || errno == ECONNRESET) return 0; /* EOF without close_notify */
    die("SSL_read");
  }
  tls_die("SSL_read");
  return 0;
}

static long proc_ticks(int pid) {
  char p[64], buf[1024];
  snprintf(p, sizeof p, "/proc/%d/stat", pid);
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *s = strrchr(buf, ')');
  if (!s) return -1;
  /* fields after ')': state(3) ... utime(14) stime(15) */
  long ut = 0, st = 0;
  int field = 2;
  for (char *tok = strtok(s + 1, " "); tok; tok = strtok(NULL, " ")) {
    field++;
    if (field == 14) ut = atol(tok);
    if (field == 15) { st = atol(tok); break; }
  }
  return ut + st;
}

static long proc_hwm(int pid) {
  char p[64], line[256];
  long v = -1;
  snprintf(p, sizeof p, "/proc/%d/status", pid);
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) { v = atol(line + 6); break; }
  fclose(f);
  return v;
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int send_some(conn_t *c) {
  while (c->sent < S) {
    ssize_t n = conn_write(c, sendbuf + (c->seq % 251) + c->sent, S - c->sent);
    if (n < 0) return 1; /* need EPOLLOUT */
    c->sent += n;
  }
  return 0;
}

static long proc_status_kb(int pid, const char *key) {
  char p[64], line[256];
  size_t k = strlen(key);
  long v = -1;
  snprintf(p, sizeof p, "/proc/%d/status", pid);
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, k) && line[k] == ':') { v = atol(line + k + 1); break; }
  fclose(f);
  return v;
}

static int proc_nfds(int pid) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/fd", pid);
  DIR *d = opendir(p);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* idle mode: see the header comment */
static int idle_mode(struct sockaddr_in *sa, int C, int pid, const char *workload, const char *peer) {
  long before = proc_status_kb(pid, "VmRSS");
  int fd0 = proc_nfds(pid);
  if (before < 0 || fd0 < 0) { fprintf(stderr, "idle: cannot read /proc/%d\n", pid); return 1; }
  int *fds = calloc(C, sizeof *fds);
  SSL **ssls = calloc(C, sizeof *ssls); /* with -T: idle after the handshake */
  uint64_t t0 = now_ns(), deadline = t0 + 15ull * 1000000000ull;
  for (int i = 0; i < C; i++) {
    for (;;) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0) die("socket");
      if (connect(fd, (struct sockaddr *)sa, sizeof *sa) == 0) { fds[i] = fd; break; }
      close(fd);
      if (now_ns() > deadline) die("connect");
      usleep(20000);
    }
    int one = 1;
    setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (tls_ctx) {
      ssls[i] = tls_connect_blocking(fds[i]);
      tls_note(ssls[i]);
    }
  }
  /* wait until the server has accepted them all, then until its RSS settles */
  int nfd = 0;
  for (int k = 0; k < 1000 && (nfd = proc_nfds(pid)) < fd0 + C; k++) usleep(10000);
  if (nfd < fd0 + C) { fprintf(stderr, "idle: server holds %d fds, expected >= %d\n", nfd, fd0 + C); return 1; }
  long after = proc_status_kb(pid, "VmRSS"), prev = -1;
  for (int same = 0, k = 0; same < 2 && k < 50; k++) {
    usleep(100000);
    prev = after;
    after = proc_status_kb(pid, "VmRSS");
    same = after == prev ? same + 1 : 0;
  }
  double secs = (now_ns() - t0) / 1e9;
  long hwm = proc_status_kb(pid, "VmHWM");
  /* every connection must still be served: one byte each, echoed back */
  struct timeval tv = {5, 0};
  for (int i = 0; i < C; i++) {
    char b = (char)('a' + i % 26);
    int w = ssls[i] ? SSL_write(ssls[i], &b, 1) : (int)write(fds[i], &b, 1);
    if (w != 1) die("idle: write");
  }
  for (int i = 0; i < C; i++) {
    char b = 0;
    setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int r = ssls[i] ? SSL_read(ssls[i], &b, 1) : (int)read(fds[i], &b, 1);
    if (r != 1 || b != (char)('a' + i % 26)) {
      fprintf(stderr, "idle: connection %d: no echo of its byte\n", i);
      return 1;
    }
  }
  printf("RESULT workload=%s peer=%s n=%d seconds=%.3f rate=%.0f rss_kb=%ld bytes_per_conn=%.0f "
         "rss_before_kb=%ld rss_after_kb=%ld hwm_kb=%ld conns=%d%s\n",
         workload, peer, C, secs, C / secs, after, (after - before) * 1024.0 / C, before, after, hwm, C,
         tls_info);
  fflush(stdout);
  for (int i = 0; i < C; i++) {
    if (ssls[i]) SSL_free(ssls[i]);
    close(fds[i]);
  }
  return 0;
}

/* the RESULT line of the echo and handshake modes (latencies from hist) */
static int report(const char *workload, const char *peer, uint64_t count, uint64_t t_measure, double cpu0,
                  long ticks0, int pid, int C, size_t size) {
  double secs = (now_ns() - t_measure) / 1e9;
  double ccpu = (self_cpu() - cpu0) / secs;
  long ticks1 = pid ? proc_ticks(pid) : 0;
  long hwm = pid ? proc_hwm(pid) : -1;
  double scpu = pid ? (ticks1 - ticks0) / (double)sysconf(_SC_CLK_TCK) / secs : -1;
  uint64_t acc = 0, p50 = 0, p99 = 0;
  int got50 = 0;
  for (uint64_t us = 0; us <= HIST_MAX; us++) {
    acc += hist[us];
    if (!got50 && acc * 100 >= count * 50) { p50 = us; got50 = 1; }
    if (acc * 100 >= count * 99) { p99 = us; break; }
  }
  printf("RESULT workload=%s peer=%s n=%llu seconds=%.3f rate=%.0f rss_kb=%ld p50_us=%llu p99_us=%llu "
         "conns=%d size=%zu server_cpu=%.2f client_cpu=%.2f%s\n",
         workload, peer, (unsigned long long)count, secs, count / secs, hwm,
         (unsigned long long)p50, (unsigned long long)p99, C, size, scpu, ccpu, tls_info);
  return 0;
}

enum { HS_CONNECT, HS_HANDSHAKE, HS_ECHO };

static void conn_events(int ep, conn_t *c, int i, uint32_t events, int add) {
  struct epoll_event ev = {.events = events, .data.u32 = i};
  if (epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev)) die("epoll_ctl");
}

static void hs_start(int ep, conn_t *c, int i, struct sockaddr_in *sa) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket");
  c->t_start = now_ns();
  c->state = HS_CONNECT;
  c->sent = c->rcvd = 0;
  if (connect(c->fd, (struct sockaddr *)sa, sizeof *sa) && errno != EINPROGRESS) die("connect");
  conn_events(ep, c, i, EPOLLOUT, 1);
}

/* one step of a slot's connection; returns 1 when its echo came back */
static int hs_step(int ep, conn_t *c, int i) {
  if (c->state == HS_CONNECT) {
    int err = 0, one = 1;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { errno = err; die("connect"); }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ssl = tls_new(c->fd);
    c->state = HS_HANDSHAKE;
  }
  if (c->state == HS_HANDSHAKE) {
    int r = SSL_connect(c->ssl);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ) { conn_events(ep, c, i, EPOLLIN, 0); return 0; }
      if (e == SSL_ERROR_WANT_WRITE) { conn_events(ep, c, i, EPOLLOUT, 0); return 0; }
      long v = SSL_get_verify_result(c->ssl);
      if (v != X509_V_OK) fprintf(stderr, "verify: %s\n", X509_verify_cert_error_string(v));
      tls_die("SSL_connect");
    }
    tls_note(c->ssl);
    c->state = HS_ECHO;
    conn_events(ep, c, i, EPOLLIN, 0);
  }
  if (!c->sent) {
    if (conn_write(c, "h", 1) < 0) { conn_events(ep, c, i, EPOLLIN | EPOLLOUT, 0); return 0; }
    c->sent = 1;
    conn_events(ep, c, i, EPOLLIN, 0);
  }
  char b;
  ssize_t r = conn_read(c, &b, 1);
  if (r < 0) return 0;
  if (r == 0) { fprintf(stderr, "server closed connection\n"); exit(1); }
  if (b != 'h') { fprintf(stderr, "echo mismatch\n"); exit(1); }
  return 1;
}

/* handshake mode: see the header comment */
static int handshake_mode(struct sockaddr_in *sa, int C, double T, double W, int pid, const char *workload,
                          const char *peer) {
  conn_t *conns = calloc(C, sizeof *conns);
  int ep = epoll_create1(0);
  uint64_t t_measure = now_ns() + (uint64_t)(W * 1e9), t_end = 0, count = 0;
  int measuring = 0;
  long ticks0 = 0;
  double cpu0 = 0;
  for (int i = 0; i < C; i++) hs_start(ep, &conns[i], i, sa);
  struct epoll_event evs[256];
  for (;;) {
    uint64_t now = now_ns();
    if (!measuring && now >= t_measure) {
      measuring = 1;
      count = 0;
      memset(hist, 0, sizeof hist);
      if (pid) ticks0 = proc_ticks(pid);
      cpu0 = self_cpu();
      t_measure = now;
      t_end = now + (uint64_t)(T * 1e9);
    }
    if (measuring && now >= t_end) break;
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
    for (int k = 0; k < n; k++) {
      int i = evs[k].data.u32;
      conn_t *c = &conns[i];
      if (!hs_step(ep, c, i)) continue;
      uint64_t t = now_ns();
      if (measuring && t < t_end) {
        uint64_t us = (t - c->t_start) / 1000;
        hist[us > HIST_MAX ? HIST_MAX : us]++;
        count++;
      }
      SSL_shutdown(c->ssl); /* sends close_notify; the server's answer is not awaited */
      SSL_free(c->ssl);
      c->ssl = NULL;
      close(c->fd);
      hs_start(ep, c, i, sa);
    }
  }
  return report(workload, peer, count, t_measure, cpu0, ticks0, pid, C, 0);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *workload = "echo", *peer = "?";
  const char *cafile = NULL, *group = "X25519";
  int port = 0, C = 100, pid = 0, idle = 0, hs = 0;
  double T = 5, W = 1;
  int opt;
  while ((opt = getopt(argc, argv, "h:p:c:s:t:w:P:W:N:iT:g:H")) != -1) {
    switch (opt) {
    case 'h': host = optarg; break;
    case 'p': port = atoi(optarg); break;
    case 'c': C = atoi(optarg); break;
    case 's': S = atol(optarg); break;
    case 't': T = atof(optarg); break;
    case 'w': W = atof(optarg); break;
    case 'P': pid = atoi(optarg); break;
    case 'W': workload = optarg; break;
    case 'N': peer = optarg; break;
    case 'i': idle = 1; break;
    case 'T': cafile = optarg; break;
    case 'g': group = optarg; break;
    case 'H': hs = 1; break;
    default: fprintf(stderr, "bad args\n"); return 2;
    }
  }
  if (!port) { fprintf(stderr, "need -p PORT\n"); return 2; }
  if (idle && !pid) { fprintf(stderr, "-i needs -P PID\n"); return 2; }
  if (hs && !cafile) { fprintf(stderr, "-H needs -T\n"); return 2; }
  tls_host = host;
  if (cafile) tls_init(cafile, group);

  /* payload: a byte ramp; message k starts at offset k % 251, so consecutive
   * messages differ and a stale or reordered echo fails the check */
  sendbuf = malloc(S + 256);
  recvbuf = malloc(S + 65536);
  for (size_t i = 0; i < S + 256; i++) sendbuf[i] = (unsigned char)(i * 7 + 3);

  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, host, &sa.sin_addr);
  if (idle) return idle_mode(&sa, C, pid, workload, peer);
  if (hs) return handshake_mode(&sa, C, T, W, pid, workload, peer);

  conn_t *conns = calloc(C, sizeof *conns);
  int ep = epoll_create1(0);
  uint64_t deadline = now_ns() + 15ull * 1000000000ull; /* wait for the server */
  for (int i = 0; i < C; i++) {
    for (;;) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) { conns[i].fd = fd; break; }
      close(fd);
      if (now_ns() > deadline) die("connect");
      usleep(20000);
    }
    int one = 1;
    setsockopt(conns[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (tls_ctx) {
      conns[i].ssl = tls_connect_blocking(conns[i].fd);
      tls_note(conns[i].ssl);
    }
    fcntl(conns[i].fd, F_SETFL, fcntl(conns[i].fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev)) die("epoll_ctl");
  }

  uint64_t t_begin = now_ns();
  uint64_t t_measure = t_begin + (uint64_t)(W * 1e9);
  uint64_t t_end = t_measure + (uint64_t)(T * 1e9);
  int measuring = 0;
  uint64_t count = 0;
  long ticks0 = 0;
  double cpu0 = 0;

  for (int i = 0; i < C; i++) {
    conns[i].t_start = now_ns();
    if (send_some(&conns[i])) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
      epoll_ctl(ep, EPOLL_CTL_MOD, conns[i].fd, &ev);
      conns[i].want_out = 1;
    }
  }

  struct epoll_event evs[256];
  for (;;) {
    uint64_t now = now_ns();
    if (!measuring && now >= t_measure) {
      measuring = 1;
      count = 0;
      memset(hist, 0, sizeof hist);
      if (pid) ticks0 = proc_ticks(pid);
      cpu0 = self_cpu();
      t_measure = now;
      t_end = now + (uint64_t)(T * 1e9);
    }
    if (measuring && now >= t_end) break;
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
    for (int k = 0; k < n; k++) {
      conn_t *c = &conns[evs[k].data.u32];
      if (evs[k].events & EPOLLOUT) {
        if (!send_some(c)) {
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
          c->want_out = 0;
        }
      }
      /* TLS: SSL_read returns one record at a time; read until it would
       * block (plain TCP: one read per event, as before) */
      if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) do {
        ssize_t r = conn_read(c, recvbuf + c->rcvd, S + 65536 - c->rcvd);
        if (r < 0) break;
        if (r == 0) { fprintf(stderr, "server closed connection\n"); return 1; }
        c->rcvd += r;
        if (c->rcvd > S) { fprintf(stderr, "echo overrun (%zu > %zu)\n", c->rcvd, S); return 1; }
        if (c->rcvd == S) {
          if (c->sent != S || memcmp(recvbuf, sendbuf + (c->seq % 251), S)) {
            fprintf(stderr, "echo mismatch\n");
            return 1;
          }
          uint64_t t = now_ns();
          if (measuring && t < t_end) {
            uint64_t us = (t - c->t_start) / 1000;
            hist[us > HIST_MAX ? HIST_MAX : us]++;
            count++;
          }
          c->seq++;
          c->sent = c->rcvd = 0;
          c->t_start = t;
          if (send_some(c) && !c->want_out) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = evs[k].data.u32};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            c->want_out = 1;
          }
        }
      } while (c->ssl);
    }
  }
  return report(workload, peer, count, t_measure, cpu0, ticks0, pid, C, S);
}
