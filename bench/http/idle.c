/* httpidle client: the server's RSS per idle keep-alive HTTP connection.
 * One warm-up connection makes 10 requests and closes (so that code run on
 * the first request is loaded before anything is measured); then the
 * server's VmRSS and open-fd count are read; C connections are opened, each
 * makes one request (GET /, the whole response read: head + Content-Length
 * body) and is left open and idle, until the server holds C more fds and
 * its VmRSS has not changed for 3 readings 100 ms apart (at most 5 s); that
 * VmRSS is read; finally every connection makes a second request, whose
 * response must be 200 with the body "Hello, world\n" (the server still
 * serves them all). RESULT reports bytes_per_conn = (VmRSS after - VmRSS
 * before) * 1024 / C, as echo/loadgen.c -i does for echoidle.
 * usage: http_idle -p PORT -P server_pid [-c 1000] [-W workload] [-N peer] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char REQ[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char BODY[] = "Hello, world\n";

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *m) { perror(m); exit(1); }

static long status_kb(int pid, const char *key) {
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

static int nfds(int pid) {
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

static int dial(struct sockaddr_in *sa) {
  double deadline = now_s() + 15;
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)sa, sizeof *sa) == 0) {
      int one = 1;
      struct timeval tv = {5, 0};
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      return fd;
    }
    close(fd);
    if (now_s() > deadline) die("connect");
    usleep(20000);
  }
}

/* one request on fd and its whole response; 0 when it was 200 with BODY */
static int request(int fd, int i) {
  char buf[8192];
  size_t got = 0;
  if (write(fd, REQ, sizeof REQ - 1) != (ssize_t)(sizeof REQ - 1)) die("write");
  char *end = NULL;
  while (!end) {
    ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
    if (r <= 0) {
      fprintf(stderr, "idle: connection %d: %s\n", i, r ? strerror(errno) : "closed by the server");
      return -1;
    }
    got += r;
    buf[got] = 0;
    end = strstr(buf, "\r\n\r\n");
    if (!end && got == sizeof buf - 1) { fprintf(stderr, "idle: connection %d: head too long\n", i); return -1; }
  }
  size_t head = end + 4 - buf;
  const char *cl = strcasestr(buf, "\r\ncontent-length:");
  if (strncmp(buf, "HTTP/1.1 200 ", 13) || !cl || cl > end) {
    fprintf(stderr, "idle: connection %d: not a 200 with Content-Length: %.80s\n", i, buf);
    return -1;
  }
  size_t len = strtoul(cl + 17, NULL, 10);
  while (got < head + len) {
    if (head + len >= sizeof buf) { fprintf(stderr, "idle: connection %d: body too long\n", i); return -1; }
    ssize_t r = read(fd, buf + got, head + len - got);
    if (r <= 0) { fprintf(stderr, "idle: connection %d: short body\n", i); return -1; }
    got += r;
  }
  if (got != head + len || len != sizeof BODY - 1 || memcmp(buf + head, BODY, len)) {
    fprintf(stderr, "idle: connection %d: unexpected body or extra bytes\n", i);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *workload = "httpidle", *peer = "?";
  int port = 0, C = 1000, pid = 0, opt;
  while ((opt = getopt(argc, argv, "p:c:P:W:N:")) != -1) {
    switch (opt) {
    case 'p': port = atoi(optarg); break;
    case 'c': C = atoi(optarg); break;
    case 'P': pid = atoi(optarg); break;
    case 'W': workload = optarg; break;
    case 'N': peer = optarg; break;
    default: fprintf(stderr, "bad args\n"); return 2;
    }
  }
  if (!port || !pid || C < 1) { fprintf(stderr, "usage: http_idle -p PORT -P PID [-c C]\n"); return 2; }
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);

  int w = dial(&sa);
  for (int k = 0; k < 10; k++)
    if (request(w, -1)) return 1;
  close(w);
  usleep(100000); /* the server closes its side */

  long before = status_kb(pid, "VmRSS");
  int fd0 = nfds(pid);
  if (before < 0 || fd0 < 0) { fprintf(stderr, "idle: cannot read /proc/%d\n", pid); return 1; }
  int *fds = calloc(C, sizeof *fds);
  double t0 = now_s();
  for (int i = 0; i < C; i++) {
    fds[i] = dial(&sa);
    if (request(fds[i], i)) return 1;
  }
  int nfd = 0;
  for (int k = 0; k < 1000 && (nfd = nfds(pid)) < fd0 + C; k++) usleep(10000);
  if (nfd < fd0 + C) { fprintf(stderr, "idle: server holds %d fds, expected >= %d\n", nfd, fd0 + C); return 1; }
  long after = status_kb(pid, "VmRSS"), prev;
  for (int same = 0, k = 0; same < 2 && k < 50; k++) {
    usleep(100000);
    prev = after;
    after = status_kb(pid, "VmRSS");
    same = after == prev ? same + 1 : 0;
  }
  double secs = now_s() - t0;
  long hwm = status_kb(pid, "VmHWM");
  for (int i = 0; i < C; i++)
    if (request(fds[i], i)) return 1;
  printf("RESULT workload=%s peer=%s n=%d seconds=%.3f rate=%.0f rss_kb=%ld bytes_per_conn=%.0f "
         "rss_before_kb=%ld rss_after_kb=%ld hwm_kb=%ld conns=%d\n",
         workload, peer, C, secs, C / secs, after, (after - before) * 1024.0 / C, before, after, hwm, C);
  fflush(stdout);
  for (int i = 0; i < C; i++) close(fds[i]);
  return 0;
}
