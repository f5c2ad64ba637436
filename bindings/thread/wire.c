/*
** wire.c — values crossing to worker processes (lasync.ProcessPool, in
** lua/lasync/process_pool.lua): copy.c's encoding, the same values and
** errors, behind a length prefix on a pipe. The parent's side encodes jobs
** and decodes answers; the worker's side (_wire_serve) reads jobs from its
** stdin, runs them in a fresh Lua state and writes the answers back.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "thread/thread.h"
#include "lualib.h"

extern char **environ;

/* {======================================================================
** The parent's side
** ======================================================================= */

/* pcall'd: encode the function at 3 into the buffer at 1 for fname (2) */
static int encode_function(lua_State *L) {
  lx_copy_out_to(L, lua_touserdata(L, 1), 3, lua_gettop(L) - 2, 1,
                 lua_tostring(L, 2), "argument", 1, "process");
  return 0;
}

/* pcall'd: encode the values from 5 into the buffer at 1 for fname (2),
   named what (3) #base (4) on */
static int encode_values(lua_State *L) {
  lx_copy_out_to(L, lua_touserdata(L, 1), 5, lua_gettop(L) - 4, 0,
                 lua_tostring(L, 2), lua_tostring(L, 3),
                 (int)lua_tointeger(L, 4), "process");
  return 0;
}

/* [-n, +1] pcall enc with its n arguments and a buffer first; push the
   bytes, or raise the error enc raised */
static int encode(lua_State *L, lua_CFunction enc, int n) {
  lx_buf b;
  lx_buf_init(&b);
  lua_pushcfunction(L, enc);
  lua_pushlightuserdata(L, &b);
  lua_rotate(L, -n - 2, 2); /* enc, buffer, arguments... */
  if (lua_pcall(L, n + 1, 0, 0) != LUA_OK) {
    lx_buf_free(&b);
    return lua_error(L);
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  lx_buf_free(&b);
  return 1;
}

/*
** core._wire_function(fname [, fn]) -> bytes: fn as it crosses (bytecode,
** upvalues as for to_thread); errors name fname: "lasync.ProcessPool:
** submit: expected a function (got nil)", "... cannot copy the function to
** another process: the function has upvalue x"
*/
static int wire_function(lua_State *L) {
  lx_checkstring(L, 1);
  if (lua_gettop(L) > 2) lua_settop(L, 2);
  return encode(L, encode_function, lua_gettop(L));
}

/*
** core._wire_values(fname, what, base, ...) -> bytes: the values, refused
** as to_thread refuses them, value k named `what #(base + k - 1)`
*/
static int wire_values(lua_State *L) {
  lx_checkstring(L, 1);
  lx_checkstring(L, 2);
  lx_checkinteger(L, 3);
  return encode(L, encode_values, lua_gettop(L));
}

/*
** core._wire_decode(bytes) -> the values it holds (an answer: ok, ...);
** bytes that are not whole values (a worker's job wrote to the pipe, say)
** raise, never read out of bounds, and never load a function
*/
static int wire_decode(lua_State *L) {
  size_t len;
  const char *s = lx_checklstring(L, 1, &len);
  lx_buf b;
  b.data = (char *)s; /* only read */
  b.len = b.cap = len;
  b.pos = 0;
  if (!lx_copy_check(&b))
    return luaL_error(L, "lasync.ProcessPool: the worker's answer is "
                         "malformed (a job wrote to its pipe?)");
  lua_settop(L, 1);
  return lx_copy_in(L, &b);
}

/*
** core._wire_note(err, tb): the calling task is about to fail with err,
** which began in a worker process whose traceback is tb: its traceback is
** tb (as a to_thread task's is the pool thread's)
*/
static int wire_note(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_task *t;
  lx_checkstring(L, 2);
  t = lx_current_task(L, rt, "ProcessPool");
  lua_settop(L, 2);
  lx_push_anchored(L, rt, t->ref);
  lx_task_note_error(L, 3, 1, 2);
  return 0;
}

/*
** core._wire_self() -> the path of this executable, this process's id and
** its environment as a table name -> value (for a worker's spawn)
*/
static int wire_self(lua_State *L) {
  char path[4096];
  size_t len = sizeof path;
  char **e;
  if (uv_exepath(path, &len) == 0)
    lua_pushlstring(L, path, len);
  else
    lua_pushliteral(L, "/proc/self/exe");
  lua_pushinteger(L, (lua_Integer)getpid());
  lua_newtable(L);
  for (e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (eq == NULL || eq == *e) continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushstring(L, eq + 1);
    lua_rawset(L, -3);
  }
  return 3;
}

/* core._wire_signame(n) -> "SIGKILL", or nil for a signal not listed */
static int wire_signame(lua_State *L) {
  static const struct {
    int signum;
    const char *name;
  } names[] = {
    {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
    {SIGILL, "SIGILL"},   {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
    {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
    {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
    {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
    {0, NULL}
  };
  lua_Integer n = lx_checkinteger(L, 1);
  int i;
  for (i = 0; names[i].name; i++)
    if (names[i].signum == n) {
      lua_pushstring(L, names[i].name);
      return 1;
    }
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** The worker's side: blocking, a process of its own does nothing else
** ======================================================================= */

/* Read n bytes; 1 when done, 0 at EOF or on an error. */
static int read_full(int fd, void *p, size_t n) {
  char *at = p;
  while (n > 0) {
    ssize_t r = read(fd, at, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    at += r;
    n -= (size_t)r;
  }
  return 1;
}

/* Write n bytes; 1 when done, 0 on an error (the parent went away). */
static int write_full(int fd, const void *p, size_t n) {
  const char *at = p;
  while (n > 0) {
    ssize_t r = write(fd, at, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return 0;
    at += r;
    n -= (size_t)r;
  }
  return 1;
}

/*
** pcall'd in the job state: run the job in the buffer at 1 (the function
** and its arguments), write `true` and its results to the buffer at 2;
** its error raises {error, traceback} (lx_traceback_msgh)
*/
static int job_run(lua_State *W) {
  lx_buf *in = lua_touserdata(W, 1), *out = lua_touserdata(W, 2);
  int base, n;
  lua_settop(W, 2);
  lua_pushcfunction(W, lx_traceback_msgh);
  base = lua_gettop(W);
  n = lx_copy_in(W, in);
  if (lua_pcall(W, n - 1, LUA_MULTRET, base) != LUA_OK)
    return lua_error(W);
  lua_pushboolean(W, 1);
  lx_copy_out_to(W, out, -1, 1, 0, "ProcessPool", "status", 1, "process");
  lua_pop(W, 1);
  lx_copy_out_to(W, out, base + 1, lua_gettop(W) - base, 0, "ProcessPool",
                 "result", 1, "process");
  return 0;
}

/* pcall'd: write false, the error at 2 (or what of it can cross) and the
   traceback at 3 to the buffer at 1 */
static int job_failed(lua_State *W) {
  lx_buf *out = lua_touserdata(W, 1);
  lua_pushboolean(W, 0);
  lx_copy_out_to(W, out, -1, 1, 0, "ProcessPool", "status", 1, "process");
  lua_pop(W, 1);
  lx_copy_error_to(W, out, 2, "ProcessPool", "process");
  lx_copy_out_to(W, out, 3, 1, 0, "ProcessPool", "traceback", 1, "process");
  return 0;
}

/* Run one job (in) in W; its answer goes to out, never raising. */
static void job_serve(lua_State *W, lx_buf *in, lx_buf *out) {
  int top = lua_gettop(W);
  lua_pushcfunction(W, job_run);
  lua_pushlightuserdata(W, in);
  lua_pushlightuserdata(W, out);
  if (lua_pcall(W, 2, 0, 0) != LUA_OK) {
    int err;
    out->len = 0;
    err = lx_job_error(W);
    lua_pushcfunction(W, job_failed);
    lua_pushlightuserdata(W, out);
    lua_pushvalue(W, err);
    lua_pushvalue(W, err + 1);
    if (lua_pcall(W, 3, 0, 0) != LUA_OK) /* out of memory */
      out->len = 0;
  }
  lua_settop(W, top);
}

/*
** Keep the pipes to the parent on descriptors of their own, out of the
** jobs' way: stdin reads /dev/null and stdout writes to stderr, so that a
** job's print cannot corrupt an answer. Returns 0, or -1 on a failure.
*/
static int stdio_take(int *in, int *out) {
  int null;
  *in = fcntl(0, F_DUPFD_CLOEXEC, 3);
  *out = fcntl(1, F_DUPFD_CLOEXEC, 3);
  null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (*in < 0 || *out < 0 || null < 0 || dup2(null, 0) < 0 ||
      dup2(2, 1) < 0)
    return -1;
  close(null);
  fcntl(*in, F_SETFL, fcntl(*in, F_GETFL) & ~O_NONBLOCK);
  fcntl(*out, F_SETFL, fcntl(*out, F_GETFL) & ~O_NONBLOCK);
  return 0;
}

/*
** core._wire_serve(ppid): the worker's loop, until EOF on stdin. Each job
** is a frame (its length as a size_t, then the function and arguments as
** copy.c writes them), run in one Lua state kept from job to job (globals
** persist, as in a pool thread); each answer is a frame of `true` and the
** results, or `false`, the error and the worker's traceback. The worker
** ignores SIGINT (Ctrl-C reaches the parent, which decides) and, on
** Linux, dies with its parent (ppid: which one that is).
*/
static int wire_serve(lua_State *L) {
  lua_Integer ppid = lx_checkinteger(L, 1);
  lua_State *W;
  lx_buf in, out;
  int infd, outfd;
  size_t len;
  signal(SIGINT, SIG_IGN);
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  if ((lua_Integer)getppid() != ppid) return 0; /* the parent is gone */
  if (stdio_take(&infd, &outfd) < 0)
    return luaL_error(L, "lasync.ProcessPool: the worker cannot set up its "
                         "pipes (%s)", strerror(errno));
  if ((W = luaL_newstate()) == NULL)
    return luaL_error(L, "lasync.ProcessPool: out of memory");
  luaL_openlibs(W);
  if (lx_thread_openlibs) lx_thread_openlibs(W);
  lx_buf_init(&in);
  lx_buf_init(&out);
  while (read_full(infd, &len, sizeof len)) {
    if (len > in.cap) {
      char *data = realloc(in.data, len);
      if (data == NULL) break; /* the parent sees this worker end */
      in.data = data;
      in.cap = len;
    }
    if (!read_full(infd, in.data, len)) break;
    in.len = len;
    in.pos = 0;
    out.len = 0;
    out.pos = 0;
    job_serve(W, &in, &out);
    fflush(stdout); /* what the job printed, before its answer */
    len = out.len;
    if (!write_full(outfd, &len, sizeof len) ||
        !write_full(outfd, out.data, out.len))
      break;
  }
  lx_buf_free(&in);
  lx_buf_free(&out);
  lua_close(W);
  close(infd);
  close(outfd);
  return 0;
}

/* }====================================================================== */

void lx_open_wire(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"_wire_function", wire_function},
    {"_wire_values", wire_values},
    {"_wire_decode", wire_decode},
    {"_wire_note", wire_note},
    {"_wire_self", wire_self},
    {"_wire_signame", wire_signame},
    {"_wire_serve", wire_serve},
    {NULL, NULL}
  };
  lx_setfuncs(L, funcs);
}
