/*
** supervisor.c — lasync -w N script: a plain C process on a libuv loop,
** no Lua in it, that starts N workers (this executable again, with the
** same arguments but the supervisor's options) and keeps them running:
** restarts with backoff, gives up on a worker that keeps dying at
** start-up, stops them all gracefully on SIGINT/SIGTERM and restarts them
** one at a time on SIGHUP. Its options are read by supervisor_opts.c; the
** worker side is bindings/io/worker.c.
*/
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "io/io.h"
#include "supervisor.h"

extern char **environ;

#define STARTUP_MS 1000  /* a worker dead sooner died at start-up */
#define STARTUP_DEATHS 5 /* in a row: the supervisor gives up */
#define BACKOFF_MS 100   /* after the 2nd death in a row, doubling */
#define BACKOFF_MAX_MS 5000
#define LINE_MAX_LEN 4096 /* --worker-log: longer lines are cut in pieces */


/* {======================================================================
** The supervisor's state
** ======================================================================= */

typedef struct proc proc;

/* Worker slot i (id i): the process running as that worker now. */
typedef struct slot {
  int id;
  proc *cur;           /* NULL: finished (exit 0) or waiting to restart */
  uv_timer_t restart;  /* the backoff before the next start */
  int restarts;        /* restarts so far */
  int quick;           /* deaths within STARTUP_MS of starting, in a row */
} slot;

/* Lines of one of a worker's outputs, for --worker-log. */
typedef struct outpipe {
  uv_pipe_t h;
  proc *p;
  FILE *to;
  size_t len;
  char line[LINE_MAX_LEN];
} outpipe;

/* One worker process; freed when its last handle has closed. */
struct proc {
  uv_process_t h;
  uv_timer_t timer;    /* settle (ready after STARTUP_MS), then grace */
  uv_poll_t ipc;       /* the supervisor's end of the socketpair */
  outpipe out, err;    /* --worker-log only */
  slot *s;
  proc *next;          /* in sv.procs while it runs */
  int pid, ipc_fd, nopen;
  uint64_t started;
  int ready;           /* listens (LX_MSG_READY), or lived STARTUP_MS */
  int retiring;        /* sent SIGTERM by the supervisor */
  int exited;
};

/* A listening socket bound for the workers (--share=socket, port 0). */
typedef struct shared_sock {
  struct sockaddr_storage addr; /* as asked for: port 0 stays 0 */
  int v6only, fd;
} shared_sock;

static struct {
  uv_loop_t *loop;
  supervisor_opts o;
  char **argv;            /* the workers' */
  char exe[4096];
  slot *slots;
  proc *procs;            /* running */
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t drain;       /* --worker-log: the last lines, at the end */
  shared_sock *socks;
  int nsocks;
  int stopping, failed;
  int roll;               /* rolling restart: the slot (1..N), 0: none */
  proc *roll_old;         /* the process the new one of roll replaces */
} sv;

static const char *signame(int sig) {
  switch (sig) {
  case SIGHUP: return "SIGHUP";
  case SIGINT: return "SIGINT";
  case SIGQUIT: return "SIGQUIT";
  case SIGILL: return "SIGILL";
  case SIGABRT: return "SIGABRT";
  case SIGBUS: return "SIGBUS";
  case SIGFPE: return "SIGFPE";
  case SIGKILL: return "SIGKILL";
  case SIGSEGV: return "SIGSEGV";
  case SIGPIPE: return "SIGPIPE";
  case SIGTERM: return "SIGTERM";
  default: return "a signal";
  }
}

/* "exited with status 3", "killed by signal 9 (SIGKILL)" */
static void describe_exit(char *buf, size_t size, int64_t status, int sig) {
  if (sig)
    snprintf(buf, size, "killed by signal %d (%s)", sig, signame(sig));
  else
    snprintf(buf, size, "exited with status %d", (int)status);
}

static void proc_start(slot *s);
static void proc_retire(proc *p);
static void restart_cb(uv_timer_t *t);
static void roll_step(void);
static void supervisor_stop(void);

/* }====================================================================== */

/* {======================================================================
** Sockets bound for the workers
** ======================================================================= */

/* The socket for req, bound and listening: the one bound before for the
   same address if any. fd or a negative errno. */
static int shared_bind(const lx_bind_req *req) {
  const struct sockaddr *sa = (const struct sockaddr *)&req->addr;
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
  shared_sock *ss;
  int i, fd, one = 1;
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return -EINVAL;
  for (i = 0; i < sv.nsocks; i++)
    if (sv.socks[i].v6only == req->v6only &&
        memcmp(&sv.socks[i].addr, &req->addr, len) == 0)
      return sv.socks[i].fd;
  ss = realloc(sv.socks, (sv.nsocks + 1) * sizeof *ss);
  if (ss == NULL) return -ENOMEM;
  sv.socks = ss;
  fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  /* as libuv's uv_tcp_bind does */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (sa->sa_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &req->v6only,
               sizeof req->v6only);
  if (bind(fd, sa, len) < 0 ||
      listen(fd, req->backlog > 0 ? req->backlog : SOMAXCONN) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  ss = &sv.socks[sv.nsocks++];
  memset(ss, 0, sizeof *ss);
  memcpy(&ss->addr, &req->addr, len);
  ss->v6only = req->v6only;
  ss->fd = fd;
  return fd;
}

/* Reply to a bind request: err, and the socket's fd when it is 0. */
static void shared_reply(int to, int fd) {
  lx_bind_rep rep;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  rep.err = fd < 0 ? fd : 0;
  iov.iov_base = &rep;
  iov.iov_len = sizeof rep;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    struct cmsghdr *cm;
    memset(&ctl, 0, sizeof ctl);
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  (void)!sendmsg(to, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* }====================================================================== */

/* {======================================================================
** Worker processes
** ======================================================================= */

static void proc_closed_cb(uv_handle_t *h) {
  proc *p = h->data;
  if (--p->nopen == 0) {
    if (p->ipc_fd >= 0) close(p->ipc_fd);
    free(p);
  }
}

static void proc_close(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, proc_closed_cb);
}

/* A worker became ready: a rolling restart waiting for it goes on. */
static void proc_ready(proc *p) {
  if (p->ready || p->exited) return;
  p->ready = 1;
  uv_timer_stop(&p->timer);
  if (sv.roll && p->s->id == sv.roll && p->s->cur == p && !sv.stopping) {
    proc *old = sv.roll_old;
    sv.roll_old = NULL;
    if (old) proc_retire(old);
    roll_step();
  }
}

static void grace_cb(uv_timer_t *t) {
  proc *p = t->data;
  if (p->exited) return;
  fprintf(stderr, "lasync: worker %d (pid %d) still running %g s after "
          "SIGTERM: killed\n", p->s->id, p->pid, sv.o.grace);
  sv.failed = 1;
  uv_process_kill(&p->h, SIGKILL);
}

static void settle_cb(uv_timer_t *t) {
  proc_ready(t->data);
}

/* Send p SIGTERM, and SIGKILL after the grace period. */
static void proc_retire(proc *p) {
  if (p->exited || p->retiring) return;
  p->retiring = 1;
  uv_process_kill(&p->h, SIGTERM);
  uv_timer_start(&p->timer, grace_cb, (uint64_t)(sv.o.grace * 1000), 0);
}

/* A message from a worker: ready, or a request for a socket. */
static void ipc_cb(uv_poll_t *h, int status, int events) {
  proc *p = h->data;
  lx_bind_req req;
  ssize_t n;
  (void)events;
  if (status < 0) {
    uv_poll_stop(h);
    return;
  }
  n = recv(p->ipc_fd, &req, sizeof req, MSG_DONTWAIT);
  if (n <= 0) {
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) uv_poll_stop(h);
    return;
  }
  if (req.type == LX_MSG_READY) proc_ready(p);
  else if (req.type == LX_MSG_BIND && n == (ssize_t)sizeof req)
    shared_reply(p->ipc_fd, shared_bind(&req));
}

/* --worker-log: write out each complete line with the worker's id. */
static void out_flush(outpipe *o, int all) {
  char *nl;
  size_t start = 0;
  while ((nl = memchr(o->line + start, '\n', o->len - start)) != NULL) {
    size_t end = (size_t)(nl - o->line);
    fprintf(o->to, "[worker %d] %.*s\n", o->p->s->id, (int)(end - start),
            o->line + start);
    start = end + 1;
  }
  if (all || (start == 0 && o->len == sizeof o->line)) { /* no newline */
    if (o->len > start)
      fprintf(o->to, "[worker %d] %.*s\n", o->p->s->id,
              (int)(o->len - start), o->line + start);
    start = o->len;
  }
  memmove(o->line, o->line + start, o->len - start);
  o->len -= start;
  fflush(o->to);
}

static void out_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  outpipe *o = (outpipe *)h; /* h is its first member */
  (void)hint;
  buf->base = o->line + o->len;
  buf->len = sizeof o->line - o->len;
}

static void out_read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  outpipe *o = (outpipe *)h;
  (void)buf;
  if (n > 0) {
    o->len += (size_t)n;
    out_flush(o, 0);
  } else if (n < 0) {
    out_flush(o, 1);
    uv_read_stop(h);
    proc_close((uv_handle_t *)h);
  }
}

/* The slot's worker ended; what now depends on why and how soon. */
static void slot_died(slot *s, proc *p, int64_t status, int sig) {
  char how[64];
  uint64_t lived = uv_now(sv.loop) - p->started;
  unsigned delay;
  s->cur = NULL;
  describe_exit(how, sizeof how, status, sig);
  if (!sig && status == 0) return; /* its script ended: done */
  s->quick = lived < STARTUP_MS ? s->quick + 1 : 0;
  if (s->quick >= STARTUP_DEATHS) {
    fprintf(stderr, "lasync: worker %d keeps dying at start-up (%s, %d "
            "times within %g s of starting): stopping\n", s->id, how,
            s->quick, STARTUP_MS / 1000.0);
    sv.failed = 1;
    supervisor_stop();
    return;
  }
  s->restarts++;
  fprintf(stderr, "lasync: worker %d (pid %d) %s: restarting (restarts so "
          "far: %d)\n", s->id, p->pid, how, s->restarts);
  delay = s->quick < 2 ? 0 : BACKOFF_MS << (s->quick - 2);
  if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
  uv_timer_start(&s->restart, restart_cb, delay, 0);
}

static int all_done(void) {
  int i;
  if (sv.procs) return 0;
  for (i = 0; i < sv.o.workers; i++)
    if (uv_is_active((uv_handle_t *)&sv.slots[i].restart)) return 0;
  return 1;
}

static void supervisor_close(void);

static void exit_cb(uv_process_t *h, int64_t status, int sig) {
  proc *p = h->data, **pp;
  slot *s = p->s;
  p->exited = 1;
  for (pp = &sv.procs; *pp != p; pp = &(*pp)->next) {}
  *pp = p->next;
  uv_timer_stop(&p->timer);
  if (p == sv.roll_old) sv.roll_old = NULL;
  if (p->retiring) { /* asked to stop: a clean end is 0 or our SIGTERM */
    if (sv.stopping && !(status == 0 && (sig == 0 || sig == SIGTERM ||
                                         sig == SIGINT))) {
      char how[64];
      describe_exit(how, sizeof how, status, sig);
      fprintf(stderr, "lasync: worker %d (pid %d) %s while stopping\n",
              s->id, p->pid, how);
      sv.failed = 1;
    }
  } else if (s->cur == p && !sv.stopping) {
    slot_died(s, p, status, sig);
    if (sv.roll == s->id && s->cur == NULL &&
        !uv_is_active((uv_handle_t *)&s->restart)) {
      sv.roll_old = NULL; /* the new one ended (status 0): go on */
      roll_step();
    }
  }
  if (s->cur == p) s->cur = NULL;
  proc_close((uv_handle_t *)&p->h);
  proc_close((uv_handle_t *)&p->timer);
  proc_close((uv_handle_t *)&p->ipc);
  if (all_done()) supervisor_close();
}

/* An environment entry the supervisor sets itself (the workers' copy
   leaves the user's out). */
static int own_env(const char *e) {
  static const char *const names[] = {
    "LASYNC_WORKERS=", LX_WORKER_ID_ENV "=", LX_WORKER_COUNT_ENV "=",
    LX_WORKER_PARENT_ENV "=", LX_WORKER_SHARE_ENV "=", "LASYNC_GRACE=", NULL
  };
  int i;
  for (i = 0; names[i]; i++)
    if (strncmp(e, names[i], strlen(names[i])) == 0) return 1;
  return 0;
}

/* Start the worker of slot s. */
static void proc_start(slot *s) {
  uv_process_options_t po;
  uv_stdio_container_t stdio[4];
  char id[32], count[32], parent[48], share[32], **env;
  int n, i, sp[2], r;
  proc *p = calloc(1, sizeof *p);
  for (n = 0; environ[n]; n++) {}
  env = calloc((size_t)n + 5, sizeof *env);
  if (p == NULL || env == NULL ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
    fprintf(stderr, "lasync: worker %d: cannot start: %s\n", s->id,
            strerror(errno ? errno : ENOMEM));
    free(p);
    free(env);
    sv.failed = 1;
    supervisor_stop();
    return;
  }
  for (n = i = 0; environ[i]; i++)
    if (!own_env(environ[i])) env[n++] = environ[i];
  snprintf(id, sizeof id, LX_WORKER_ID_ENV "=%d", s->id);
  snprintf(count, sizeof count, LX_WORKER_COUNT_ENV "=%d", sv.o.workers);
  snprintf(parent, sizeof parent, LX_WORKER_PARENT_ENV "=%d", (int)getpid());
  snprintf(share, sizeof share, LX_WORKER_SHARE_ENV "=%s",
           sv.o.share == LX_SHARE_SOCKET ? "socket" : "reuseport");
  env[n++] = id;
  env[n++] = count;
  env[n++] = parent;
  env[n++] = share;
  env[n] = NULL;
  memset(&po, 0, sizeof po);
  po.file = sv.exe;
  po.args = sv.argv;
  po.env = env;
  po.exit_cb = exit_cb;
  /* a session of its own: a Ctrl-C on the terminal reaches only the
     supervisor, which stops the workers in order */
  po.flags = UV_PROCESS_DETACHED;
  po.stdio = stdio;
  po.stdio_count = 4;
  stdio[0].flags = UV_IGNORE; /* /dev/null: N readers of one terminal */
  p->s = s;
  p->ipc_fd = sp[0];
  p->h.data = p;
  uv_pipe_init(sv.loop, &p->out.h, 0);
  uv_pipe_init(sv.loop, &p->err.h, 0);
  p->out.h.data = p->err.h.data = p;
  p->out.p = p->err.p = p;
  p->out.to = stdout;
  p->err.to = stderr;
  for (i = 1; i <= 2; i++) {
    if (sv.o.worker_log) {
      stdio[i].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
      stdio[i].data.stream = (uv_stream_t *)(i == 1 ? &p->out.h : &p->err.h);
    } else {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    }
  }
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = sp[1];
  fflush(stdout);
  fflush(stderr);
  r = uv_spawn(sv.loop, &p->h, &po);
  close(sp[1]);
  free(env);
  p->nopen = 5; /* process, timer, poll, two pipes */
  uv_timer_init(sv.loop, &p->timer);
  p->timer.data = p;
  uv_poll_init(sv.loop, &p->ipc, p->ipc_fd);
  p->ipc.data = p;
  if (r < 0) {
    fprintf(stderr, "lasync: worker %d: cannot start %s: %s\n", s->id,
            sv.exe, uv_strerror(r));
    p->exited = 1;
    sv.failed = 1;
    proc_close((uv_handle_t *)&p->h);
    proc_close((uv_handle_t *)&p->timer);
    proc_close((uv_handle_t *)&p->ipc);
    proc_close((uv_handle_t *)&p->out.h);
    proc_close((uv_handle_t *)&p->err.h);
    supervisor_stop();
    return;
  }
  p->pid = p->h.pid;
  p->started = uv_now(sv.loop);
  p->next = sv.procs;
  sv.procs = p;
  s->cur = p;
  uv_poll_start(&p->ipc, UV_READABLE, ipc_cb);
  uv_timer_start(&p->timer, settle_cb, STARTUP_MS, 0);
  if (sv.o.worker_log) {
    uv_read_start((uv_stream_t *)&p->out.h, out_alloc_cb, out_read_cb);
    uv_read_start((uv_stream_t *)&p->err.h, out_alloc_cb, out_read_cb);
  } else {
    proc_close((uv_handle_t *)&p->out.h);
    proc_close((uv_handle_t *)&p->err.h);
  }
}

static void restart_cb(uv_timer_t *t) {
  slot *s = t->data;
  if (!sv.stopping) proc_start(s);
}

/* }====================================================================== */

/* {======================================================================
** Stopping and rolling restarts
** ======================================================================= */

static void drain_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (h->type == UV_NAMED_PIPE) proc_close(h);
}

/* The workers' outputs still open a while after the last worker ended:
   a process a worker started holds them; stop reading. */
static void drain_cb(uv_timer_t *t) {
  uv_walk(t->loop, drain_walk_cb, NULL);
  uv_close((uv_handle_t *)t, NULL);
}

/*
** Close what is left once no worker runs: uv_run then returns, once the
** pipes of --worker-log have given their last lines (at most 1 s).
*/
static void supervisor_close(void) {
  static int closed;
  int i;
  if (closed) return;
  closed = 1;
  uv_timer_start(&sv.drain, drain_cb, 1000, 0);
  uv_unref((uv_handle_t *)&sv.drain);
  uv_close((uv_handle_t *)&sv.sigint, NULL);
  uv_close((uv_handle_t *)&sv.sigterm, NULL);
  uv_close((uv_handle_t *)&sv.sighup, NULL);
  for (i = 0; i < sv.o.workers; i++)
    uv_close((uv_handle_t *)&sv.slots[i].restart, NULL);
}

/* Stop every worker: SIGTERM, then SIGKILL after the grace period. */
static void supervisor_stop(void) {
  proc *p;
  int i;
  if (sv.stopping) return;
  sv.stopping = 1;
  sv.roll = 0;
  sv.roll_old = NULL;
  for (i = 0; i < sv.o.workers; i++) uv_timer_stop(&sv.slots[i].restart);
  for (p = sv.procs; p; p = p->next) proc_retire(p);
  if (all_done()) supervisor_close();
}

/* The next slot of a rolling restart: start its new worker; the old one
   stops once the new one is ready (proc_ready). */
static void roll_step(void) {
  while (sv.roll < sv.o.workers) {
    slot *s = &sv.slots[sv.roll++];
    if (s->cur == NULL) continue; /* finished, or restarting anyway */
    sv.roll_old = s->cur;
    proc_start(s);
    if (s->cur == sv.roll_old) sv.roll_old = NULL; /* could not start */
    return;
  }
  sv.roll = 0;
  fprintf(stderr, "lasync: rolling restart done\n");
}

static void signal_cb(uv_signal_t *h, int sig) {
  proc *p;
  (void)h;
  if (sig == SIGHUP) {
    if (sv.stopping) return;
    if (sv.roll) {
      fprintf(stderr, "lasync: SIGHUP: a rolling restart is under way\n");
      return;
    }
    fprintf(stderr, "lasync: SIGHUP: restarting the workers one at a "
            "time\n");
    roll_step();
    return;
  }
  if (sv.stopping) { /* a second one: no more waiting */
    fprintf(stderr, "lasync: %s again: killing the workers\n",
            signame(sig));
    sv.failed = 1;
    for (p = sv.procs; p; p = p->next) uv_process_kill(&p->h, SIGKILL);
    return;
  }
  supervisor_stop();
}

/* }====================================================================== */

int supervisor_main(const supervisor_opts *o, int argc, char **argv) {
  size_t size = sizeof sv.exe;
  int i;
  (void)argc;
  sv.o = *o;
  sv.argv = argv;
  sv.loop = uv_default_loop();
  if (uv_exepath(sv.exe, &size) < 0) {
    fprintf(stderr, "lasync: -w: cannot find the lasync executable\n");
    return EXIT_FAILURE;
  }
  sv.slots = calloc((size_t)o->workers, sizeof *sv.slots);
  if (sv.slots == NULL) {
    fprintf(stderr, "lasync: -w: not enough memory\n");
    return EXIT_FAILURE;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(sv.loop, &sv.sigint);
  uv_signal_init(sv.loop, &sv.sigterm);
  uv_signal_init(sv.loop, &sv.sighup);
  uv_timer_init(sv.loop, &sv.drain);
  uv_signal_start(&sv.sigint, signal_cb, SIGINT);
  uv_signal_start(&sv.sigterm, signal_cb, SIGTERM);
  uv_signal_start(&sv.sighup, signal_cb, SIGHUP);
  for (i = 0; i < o->workers; i++) {
    sv.slots[i].id = i + 1;
    uv_timer_init(sv.loop, &sv.slots[i].restart);
    sv.slots[i].restart.data = &sv.slots[i];
  }
  for (i = 0; i < o->workers && !sv.stopping; i++) proc_start(&sv.slots[i]);
  uv_run(sv.loop, UV_RUN_DEFAULT);
  if (!uv_is_closing((uv_handle_t *)&sv.drain)) { /* not needed */
    uv_close((uv_handle_t *)&sv.drain, NULL);
    uv_run(sv.loop, UV_RUN_DEFAULT);
  }
  for (i = 0; i < sv.nsocks; i++) close(sv.socks[i].fd);
  free(sv.socks);
  free(sv.slots);
  uv_loop_close(sv.loop);
  return sv.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
