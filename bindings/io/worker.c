/*
** worker.c — the worker side of lasync -w N (host/supervisor.c): who this
** process is (lasync.worker_id, lasync.worker_count, from the environment
** its supervisor set), and the requests it sends its supervisor over fd 3:
** a listening socket bound once for every worker (--share=socket), and
** the news that it listens (a rolling restart waits for it).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"

static struct {
  int inited;
  int id, count, share; /* 0, 0, 0 outside worker mode */
} me;

/* A positive integer from the environment variable name, else 0. */
static int env_int(const char *name) {
  const char *s = getenv(name);
  char *end;
  long v;
  if (s == NULL || *s == '\0') return 0;
  errno = 0;
  v = strtol(s, &end, 10);
  if (*end != '\0' || errno != 0 || v <= 0 || v > 1000000) return 0;
  return (int)v;
}

/*
** Read the environment once and take the supervisor's variables out of
** it, so that a worker's children are not workers; a process whose
** parent is not the supervisor named there is not one either. fd 3, the
** worker's end of the socketpair, gets FD_CLOEXEC at once, before the
** script can spawn anything that would inherit it.
*/
static void worker_init(void) {
  const char *share;
  int id, count, parent, socket;
  if (me.inited) return;
  me.inited = 1;
  id = env_int(LX_WORKER_ID_ENV);
  count = env_int(LX_WORKER_COUNT_ENV);
  parent = env_int(LX_WORKER_PARENT_ENV);
  if (getenv(LX_WORKER_PARENT_ENV) == NULL) return; /* nothing to take */
  share = getenv(LX_WORKER_SHARE_ENV);
  socket = share && strcmp(share, "socket") == 0;
  /* out of the environment: the worker's own children are not workers */
  unsetenv(LX_WORKER_ID_ENV);
  unsetenv(LX_WORKER_COUNT_ENV);
  unsetenv(LX_WORKER_PARENT_ENV);
  unsetenv(LX_WORKER_SHARE_ENV);
  if (id == 0 || id > count || parent != getppid()) return;
  me.id = id;
  me.count = count;
  me.share = socket ? LX_SHARE_SOCKET : LX_SHARE_REUSEPORT;
  if (fcntl(LX_WORKER_FD, F_SETFD, FD_CLOEXEC) < 0)
    me.share = LX_SHARE_REUSEPORT; /* no channel: nothing to ask */
}

int lx_worker_id(void) {
  worker_init();
  return me.id;
}

int lx_worker_count(void) {
  worker_init();
  return me.count;
}

int lx_worker_share(void) {
  worker_init();
  return me.share;
}

/*
** Ask the supervisor for a socket listening on sa: it binds it the first
** time and hands the same one to every worker that asks for the same
** address (so port 0 is one free port for all). Blocking: one round trip
** on a local socketpair, once per server, while the supervisor does
** nothing else that takes time. The socket's fd, or a libuv error.
*/
int lx_worker_bind(const struct sockaddr *sa, int v6only, int backlog) {
  lx_bind_req req;
  lx_bind_rep rep;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov;
  struct msghdr msg;
  struct cmsghdr *cm;
  ssize_t n;
  int fd = -1;
  memset(&req, 0, sizeof req);
  req.type = LX_MSG_BIND;
  req.v6only = v6only;
  req.backlog = backlog;
  memcpy(&req.addr, sa, sa->sa_family == AF_INET6
                            ? sizeof(struct sockaddr_in6)
                            : sizeof(struct sockaddr_in));
  do n = send(LX_WORKER_FD, &req, sizeof req, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  memset(&msg, 0, sizeof msg);
  iov.iov_base = &rep;
  iov.iov_len = sizeof rep;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  do n = recvmsg(LX_WORKER_FD, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  if (n != (ssize_t)sizeof rep) return UV_EPIPE; /* supervisor gone */
  for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
      memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  if (rep.err < 0) {
    if (fd >= 0) close(fd);
    return rep.err;
  }
  return fd >= 0 ? fd : UV_EPROTO;
}

/* Tell the supervisor that this worker listens, once: a new worker of a
   rolling restart counts as up from then on. */
void lx_worker_ready(void) {
  static int sent;
  char type = LX_MSG_READY;
  if (sent || lx_worker_id() == 0) return;
  sent = 1;
  (void)!send(LX_WORKER_FD, &type, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* lasync.worker_id() -> 1..N in a worker of lasync -w N, else nil */
static int core_worker_id(lua_State *L) {
  if (lx_worker_id() == 0) lua_pushnil(L);
  else lua_pushinteger(L, lx_worker_id());
  return 1;
}

/* lasync.worker_count() -> N in a worker of lasync -w N, else 1 */
static int core_worker_count(lua_State *L) {
  lua_pushinteger(L, lx_worker_id() ? lx_worker_count() : 1);
  return 1;
}

void lx_open_worker(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"worker_id", core_worker_id},
    {"worker_count", core_worker_count},
    {NULL, NULL}
  };
  worker_init();
  lx_setfuncs(L, funcs);
}
