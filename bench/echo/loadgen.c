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
 * usage: loadgen -p PORT [-h 127.0.0.1] [-c 100] [-s 64] [-t 5] [-w 1]
 *                [-P server_pid] [-W workload] [-N peer] [-i]
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

#define HIST_MAX 1000000 /* 1 us buckets up to 1 s; above is clamped */

typedef struct {
  int fd;
  size_t sent, rcvd;
  uint64_t t_start;
  unsigned seq;
  int want_out;
} conn_t;

static uint32_t hist[HIST_MAX + 1];
static size_t S = 64;
static unsigned char *sendbuf, *recvbuf;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *m) { perror(m); exit(1); }

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
    ssize_t n = write(c->fd, sendbuf + (c->seq % 251) + c->sent, S - c->sent);
    if (n < 0) {
      if (errno == EAGAIN) return 1; /* need EPOLLOUT */
      die("write");
    }
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
    if (write(fds[i], &b, 1) != 1) die("idle: write");
  }
  for (int i = 0; i < C; i++) {
    char b = 0;
    setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (read(fds[i], &b, 1) != 1 || b != (char)('a' + i % 26)) {
      fprintf(stderr, "idle: connection %d: no echo of its byte\n", i);
      return 1;
    }
  }
  printf("RESULT workload=%s peer=%s n=%d seconds=%.3f rate=%.0f rss_kb=%ld bytes_per_conn=%.0f "
         "rss_before_kb=%ld rss_after_kb=%ld hwm_kb=%ld conns=%d\n",
         workload, peer, C, secs, C / secs, after, (after - before) * 1024.0 / C, before, after, hwm, C);
  fflush(stdout);
  for (int i = 0; i < C; i++) close(fds[i]);
  return 0;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *workload = "echo", *peer = "?";
  int port = 0, C = 100, pid = 0, idle = 0;
  double T = 5, W = 1;
  int opt;
  while ((opt = getopt(argc, argv, "h:p:c:s:t:w:P:W:N:i")) != -1) {
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
    default: fprintf(stderr, "bad args\n"); return 2;
    }
  }
  if (!port) { fprintf(stderr, "need -p PORT\n"); return 2; }
  if (idle && !pid) { fprintf(stderr, "-i needs -P PID\n"); return 2; }

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
      if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        ssize_t r = read(c->fd, recvbuf + c->rcvd, S + 65536 - c->rcvd);
        if (r < 0) { if (errno == EAGAIN) continue; die("read"); }
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
      }
    }
  }
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
         "conns=%d size=%zu server_cpu=%.2f client_cpu=%.2f\n",
         workload, peer, (unsigned long long)count, secs, count / secs, hwm,
         (unsigned long long)p50, (unsigned long long)p99, C, S, scpu, ccpu);
  return 0;
}
