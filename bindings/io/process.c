/*
** process.c — subprocesses on uv_spawn: lasync.subprocess.exec/shell return
** a Process whose pipes are ordinary streams (stdin a StreamWriter, stdout
** and stderr StreamReaders). The process handle stays open until the child
** exits, so the child is always reaped, even after its Process object is
** gone (it is then unreferenced, not to keep the loop alive).
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"

typedef struct lx_process {
  uv_process_t h;      /* freed (with the struct) after exit, close, __gc */
  lx_resource node;    /* in the loop's resources while running */
  lx_loop *loop;
  lx_waiter waiters;   /* tasks in wait() */
  int64_t exit_status;
  int term_signal;
  unsigned char exited, closing, closed, has_box;
} lx_process;

typedef struct proc_box {
  lx_process *p;
} proc_box;

enum { PROC_STDIN = 1, PROC_STDOUT, PROC_STDERR, PROC_LOOPOBJ,
       PROC_NUV = PROC_LOOPOBJ };

/* {======================================================================
** Lifetime
** ======================================================================= */

static void proc_closed_cb(uv_handle_t *handle) {
  lx_process *p = handle->data;
  lx_count_handles(-1);
  p->closed = 1;
  if (!p->has_box) free(p);
}

static void proc_close(lx_process *p) {
  if (p->closing) return;
  p->closing = 1;
  lx_list_remove(&p->node);
  uv_close((uv_handle_t *)&p->h, proc_closed_cb);
}

static void exit_cb(uv_process_t *handle, int64_t status, int signal) {
  lx_process *p = handle->data;
  p->exit_status = status;
  p->term_signal = signal;
  p->exited = 1;
  lx_waitlist_wake_all(&p->waiters);
  proc_close(p); /* reaped by libuv: the handle is done */
}

static void *reap(void *pid) {
  while (waitpid((pid_t)(intptr_t)pid, NULL, 0) < 0 && errno == EINTR) {}
  return NULL;
}

/*
** The loop closes with the child still running: stop watching it, and let
** a thread of its own wait for it (as Python's ThreadedChildWatcher does),
** so it does not stay a zombie. The child is left running, as asyncio does.
*/
static void proc_close_resource(lua_State *L, lx_resource *r) {
  lx_process *p = lx_container_of(r, lx_process, node);
  pthread_attr_t attr;
  pthread_t thread;
  intptr_t pid = p->h.pid;
  (void)L;
  proc_close(p); /* libuv forgets the pid here */
  if (pthread_attr_init(&attr) != 0) return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_create(&thread, &attr, reap, (void *)pid);
  pthread_attr_destroy(&attr);
}

static int proc__gc(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  proc_box *b = lx_checkclass(L, rt, 1, LX_MT_PROCESS, "Process:__gc");
  lx_process *p = b->p;
  if (p == NULL) return 0;
  b->p = NULL;
  p->has_box = 0;
  if (p->closed)
    free(p);
  else if (!p->closing) /* still running: reap it when it exits, but */
    uv_unref((uv_handle_t *)&p->h); /* don't keep the loop alive for it */
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Spawning
** ======================================================================= */

enum { IO_INHERIT, IO_PIPE, IO_NULL, IO_STDOUT, IO_FD };

/* The stdio option `name` of the options at opts: kind and fd. */
static int stdio_error(lua_State *L, const char *name, const char *fname) {
  return luaL_error(L, "lasync.%s: option '%s' must be \"pipe\", "
                       "\"inherit\", \"null\"%s, a file or a descriptor",
                    fname, name,
                    strcmp(name, "stderr") == 0 ? ", \"stdout\"" : "");
}

static int stdio_option(lua_State *L, int opts, const char *name, int *fd,
                        const char *fname) {
  int kind = IO_INHERIT;
  if (opts == 0 || lua_getfield(L, opts, name) == LUA_TNIL) {
    if (opts) lua_pop(L, 1);
    return IO_INHERIT;
  }
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len) stdio_error(L, name, fname); /* a NUL in it */
    if (strcmp(s, "pipe") == 0) kind = IO_PIPE;
    else if (strcmp(s, "inherit") == 0) kind = IO_INHERIT;
    else if (strcmp(s, "null") == 0) kind = IO_NULL;
    else if (strcmp(s, "stdout") == 0 && strcmp(name, "stderr") == 0)
      kind = IO_STDOUT;
    else
      stdio_error(L, name, fname);
  } else if (lua_isinteger(L, -1)) {
    lua_Integer n = lua_tointeger(L, -1);
    kind = IO_FD;
    if (n < 0 || n > INT_MAX || fcntl((int)n, F_GETFD) < 0)
      luaL_error(L, "lasync.%s: option '%s': %I is not an open file "
                    "descriptor", fname, name, n);
    *fd = (int)n;
  } else if ((*fd = lx_file_fd(L, -1)) != -2) {
    kind = IO_FD;
    if (*fd < 0) luaL_error(L, "lasync.%s: option '%s': the file is closed",
                            fname, name);
  } else {
    stdio_error(L, name, fname);
  }
  lua_pop(L, 1);
  return kind;
}

/* What a failed spawn names: the working directory if that is missing. */
static const char *spawn_culprit(int err, const uv_process_options_t *o) {
  if (o->cwd && (err == UV_ENOENT || err == UV_ENOTDIR || err == UV_EACCES) &&
      access(o->cwd, X_OK) != 0)
    return o->cwd;
  return o->file;
}

/*
** [-0, +2] the env option as a NULL-terminated array of "k=v" (NULL: the
** parent's environment); it and a table holding its strings are pushed,
** to stay alive until uv_spawn has copied them.
*/
static char **env_option(lua_State *L, int opts, const char *fname) {
  char **env;
  int n = 0, strings;
  if (opts == 0 || lua_getfield(L, opts, "env") == LUA_TNIL) {
    if (opts) lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    return NULL;
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "lasync.%s: option 'env' must be a table", fname);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    n++;
    lua_pop(L, 1);
  }
  lua_createtable(L, n, 0);
  strings = lua_gettop(L);
  env = lua_newuserdatauv(L, (n + 1) * sizeof *env, 0); /* freed by GC */
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, strings - 1)) {
    size_t klen, vlen;
    const char *k, *v;
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      luaL_error(L, "lasync.%s: option 'env' must map names to strings",
                 fname);
    k = lua_tolstring(L, -2, &klen);
    v = lua_tolstring(L, -1, &vlen); /* a number: its string, in the copy */
    if (klen == 0 || strlen(k) != klen || strchr(k, '=') != NULL)
      luaL_error(L, "lasync.%s: option 'env': invalid variable name '%s'",
                 fname, k);
    if (strlen(v) != vlen)
      luaL_error(L, "lasync.%s: option 'env': the value of %s contains an "
                    "embedded NUL byte", fname, k);
    env[n] = (char *)lua_pushfstring(L, "%s=%s", k, v);
    lua_rawseti(L, strings, ++n); /* the table keeps the string alive */
    lua_pop(L, 1);
  }
  env[n] = NULL;
  lua_remove(L, strings - 1); /* the option itself */
  return env;
}

/* Close the pipes made for a spawn that failed. */
static void pipes_discard(lx_stream *pipes[3]) {
  int i;
  for (i = 0; i < 3; i++)
    if (pipes[i]) lx_stream_discard(pipes[i]);
}

/*
** [-0, +1] spawn the argv (a table at argvidx, strings from 1), options at
** opts (0: none); push the Process object.
*/
static int spawn(lua_State *L, lx_runtime *rt, int argvidx, int opts,
                 const char *fname) {
  lx_loop *loop = lx_running_loop(L, rt, fname);
  static const char *const names[] = {"stdin", "stdout", "stderr"};
  int kinds[3], fds[3] = {0, 1, 2}, i, n, r, top;
  lx_stream *pipes[3] = {NULL, NULL, NULL};
  uv_file merged[2] = {-1, -1}; /* stdout pipe shared with stderr */
  uv_stdio_container_t stdio[3];
  uv_process_options_t options;
  char **argv, **env;
  lx_process *p;
  proc_box *b;
  memset(&options, 0, sizeof options);
  n = (int)luaL_len(L, argvidx);
  argv = lua_newuserdatauv(L, (n + 1) * sizeof *argv, 0);
  for (i = 0; i < n; i++) {
    size_t len;
    lua_rawgeti(L, argvidx, i + 1); /* argv[0] is checked by the caller */
    if (!lua_isstring(L, -1))
      luaL_error(L, "lasync.%s: args[%d] is not a string (got %s)", fname, i,
                 luaL_typename(L, -1));
    argv[i] = (char *)lua_tolstring(L, -1, &len);
    if (strlen(argv[i]) != len) /* the child would get a shorter one */
      luaL_error(L, "lasync.%s: args[%d] contains an embedded NUL byte",
                 fname, i);
    lua_rawseti(L, argvidx, i + 1); /* a number becomes its string, kept */
  }
  argv[n] = NULL;
  env = env_option(L, opts, fname);
  top = lua_gettop(L);
  for (i = 0; i < 3; i++) kinds[i] = stdio_option(L, opts, names[i], &fds[i],
                                                 fname);
  if (opts && lua_getfield(L, opts, "cwd") != LUA_TNIL)
    options.cwd = lx_checkcstring(L, -1, fname, "option 'cwd'");
  for (i = 0; i < 3; i++) { /* every argument checked: now allocate */
    switch (kinds[i]) {
    case IO_PIPE:
      pipes[i] = malloc(sizeof *pipes[i]);
      if (pipes[i] == NULL) {
        pipes_discard(pipes);
        return luaL_error(L, "lasync.%s: out of memory", fname);
      }
      lx_stream_init(pipes[i], loop);
      uv_pipe_init(loop->uv, &pipes[i]->h.pipe, 0);
      pipes[i]->is_pipe = 1;
      stdio[i].flags = UV_CREATE_PIPE |
                       (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE);
      stdio[i].data.stream = &pipes[i]->h.stream;
      break;
    case IO_NULL:
      stdio[i].flags = UV_IGNORE;
      break;
    case IO_STDOUT:
      if (kinds[1] == IO_PIPE) { /* both into one pipe we make here */
        r = uv_pipe(merged, 0, 0);
        if (r == 0 && (r = uv_pipe_open(&pipes[1]->h.pipe, merged[0])) < 0) {
          close(merged[0]);
          close(merged[1]);
        }
        if (r < 0) {
          pipes_discard(pipes);
          return lx_os_error(L, r, fname, NULL);
        }
        stdio[1].flags = UV_INHERIT_FD;
        stdio[1].data.fd = merged[1];
      }
      stdio[i] = stdio[1];
      break;
    default: /* IO_INHERIT, IO_FD */
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = fds[i];
    }
  }
  options.file = argv[0];
  options.args = argv;
  options.env = env;
  options.stdio = stdio;
  options.stdio_count = 3;
  options.exit_cb = exit_cb;
  p = calloc(1, sizeof *p);
  if (p == NULL) {
    if (merged[1] >= 0) close(merged[1]);
    pipes_discard(pipes);
    return luaL_error(L, "lasync.%s: out of memory", fname);
  }
  p->loop = loop;
  lx_waitlist_init(&p->waiters);
  p->node.close = proc_close_resource;
  p->h.data = p;
  r = uv_spawn(loop->uv, &p->h, &options);
  lx_count_handles(1); /* initialized even when it fails: closed below */
  if (merged[1] >= 0) close(merged[1]); /* the child has its copy */
  if (r < 0) {
    pipes_discard(pipes);
    p->closing = 1;
    uv_close((uv_handle_t *)&p->h, proc_closed_cb); /* frees p */
    return lx_os_error(L, r, fname, spawn_culprit(r, &options));
  }
  lx_list_add(&loop->resources, &p->node);
  lua_settop(L, top);
  b = lua_newuserdatauv(L, sizeof *b, PROC_NUV);
  b->p = p;
  p->has_box = 1;
  lx_setclass(L, rt, LX_MT_PROCESS);
  for (i = 0; i < 3; i++) {
    if (pipes[i] == NULL) continue;
    lx_stream_push(L, pipes[i]); /* reader, writer: keep the one we need */
    if (i == 0) lua_remove(L, -2);
    else lua_pop(L, 1);
    lua_setiuservalue(L, -2, PROC_STDIN + i);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->self_ref);
  lua_setiuservalue(L, -2, PROC_LOOPOBJ);
  return 1;
}

/* The options argument at idx: 0 if absent, else it must be a table. */
static int check_opts(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (!lua_istable(L, idx))
    luaL_error(L, "lasync.%s: the options must be a table (got %s)", fname,
               luaL_typename(L, idx));
  return idx;
}

/* lasync.subprocess.exec(file, {args...} [, opts]) -> Process */
static int sp_exec(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  int opts = check_opts(L, 3, "subprocess.exec"), i, n;
  lx_checkcstring(L, 1, "subprocess.exec", "file");
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return luaL_error(L, "lasync.subprocess.exec: args must be a list of "
                         "strings (got %s)", luaL_typename(L, 2));
  n = lua_istable(L, 2) ? (int)luaL_len(L, 2) : 0;
  lua_createtable(L, n + 1, 0); /* argv: file, then args */
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    lua_rawseti(L, -2, i + 1);
  }
  return spawn(L, rt, lua_gettop(L), opts, "subprocess.exec");
}

/* lasync.subprocess.shell(cmdline [, opts]) -> Process, via /bin/sh -c */
static int sp_shell(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  int opts = check_opts(L, 2, "subprocess.shell");
  lx_checkcstring(L, 1, "subprocess.shell", "cmdline");
  lua_createtable(L, 3, 0);
  lua_pushliteral(L, "/bin/sh");
  lua_rawseti(L, -2, 1);
  lua_pushliteral(L, "-c");
  lua_rawseti(L, -2, 2);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 3);
  return spawn(L, rt, lua_gettop(L), opts, "subprocess.shell");
}

/* }====================================================================== */

/* {======================================================================
** Process methods
** ======================================================================= */

static lx_process *check_proc(lua_State *L, const char *fname) {
  return lx_checkbox(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                     LX_MT_PROCESS, fname);
}

/* [-0, +1] the exit code, or minus the signal that ended it */
static void push_returncode(lua_State *L, lx_process *p) {
  if (p->term_signal)
    lua_pushinteger(L, -p->term_signal);
  else
    lua_pushinteger(L, (lua_Integer)p->exit_status);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  lx_process *p;
  if (t->must_cancel) return lx_task_raise_cancelled(L, t);
  p = ((proc_box *)lua_touserdata(L, 1))->p;
  if (p == NULL) return luaL_error(L, "lasync.Process:wait: " LX_FINALIZED);
  push_returncode(L, p);
  return 1;
}

/* proc:wait() -> the exit code (minus the signal number if killed) */
static int proc_wait(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_process *p = check_proc(L, "Process:wait");
  lx_task *t = lx_current_task(L, rt, "Process:wait");
  lua_settop(L, 1);
  if (p->exited) {
    push_returncode(L, p);
    return 1;
  }
  return lx_wait_on(L, t, &p->waiters, wait_k);
}

/* proc:returncode() -> the exit code, or nil while it runs */
static int proc_returncode(lua_State *L) {
  lx_process *p = check_proc(L, "Process:returncode");
  if (!p->exited) return 0;
  push_returncode(L, p);
  return 1;
}

/* Send signum to p for function fname; a process that exited is left
   alone. */
static int proc_signal(lua_State *L, lx_process *p, int signum,
                       const char *fname) {
  int r;
  if (p->exited || p->closing) return 0;
  r = uv_process_kill(&p->h, signum);
  if (r < 0 && r != UV_ESRCH) return lx_os_error(L, r, fname, NULL);
  return 0;
}

/* proc:send_signal(sig) */
static int proc_send_signal(lua_State *L) {
  lx_process *p = check_proc(L, "Process:send_signal");
  return proc_signal(L, p, lx_check_signal(L, 2, "Process:send_signal"),
                     "Process:send_signal");
}

/* proc:terminate(): SIGTERM */
static int proc_terminate(lua_State *L) {
  return proc_signal(L, check_proc(L, "Process:terminate"), SIGTERM,
                     "Process:terminate");
}

/* proc:kill(): SIGKILL */
static int proc_kill(lua_State *L) {
  return proc_signal(L, check_proc(L, "Process:kill"), SIGKILL,
                     "Process:kill");
}

/* proc.pid, proc.stdin, proc.stdout, proc.stderr, or a method */
static int proc__index(lua_State *L) {
  static const char *const fields[] = {"stdin", "stdout", "stderr", NULL};
  proc_box *b = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                              LX_MT_PROCESS, "Process:__index");
  const char *key = lua_tostring(L, 2);
  int i;
  if (key && strcmp(key, "pid") == 0) {
    if (b->p == NULL) return luaL_error(L, "lasync.Process: " LX_FINALIZED);
    lua_pushinteger(L, b->p->h.pid);
    return 1;
  }
  for (i = 0; key && fields[i]; i++)
    if (strcmp(key, fields[i]) == 0) {
      lua_getiuservalue(L, 1, PROC_STDIN + i); /* nil if not a pipe */
      return 1;
    }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(2)); /* the methods */
  return 1;
}

static int proc__tostring(lua_State *L) {
  proc_box *b = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                              LX_MT_PROCESS, "Process:__tostring");
  lx_process *p = b->p;
  if (p == NULL)
    lua_pushliteral(L, "lasync.Process (finalized)");
  else if (p->exited)
    lua_pushfstring(L, "lasync.Process: pid %d, exited (%d)", p->h.pid,
                    p->term_signal ? -p->term_signal : (int)p->exit_status);
  else
    lua_pushfstring(L, "lasync.Process: pid %d, running", p->h.pid);
  return 1;
}

/* }====================================================================== */

void lx_open_process(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"wait", proc_wait},
    {"returncode", proc_returncode},
    {"send_signal", proc_send_signal},
    {"terminate", proc_terminate},
    {"kill", proc_kill},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", proc__gc},
    {"__tostring", proc__tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"exec", sp_exec},
    {"shell", sp_shell},
    {NULL, NULL}
  };
  lx_newclass(L, LX_MT_PROCESS, "lasync.Process", methods, meta);
  /* fields and methods through __index: proc.pid, proc.stdout, ... */
  luaL_getmetatable(L, "lasync.Process");
  lua_getfield(L, -1, "__index"); /* the methods table */
  lua_setfield(L, -2, "_methods");   /* for lasync._methods */
  lx_push_runtime(L);
  lua_getfield(L, -2, "_methods");
  lua_pushcclosure(L, proc__index, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lx_setfuncs(L, funcs);
  lua_setfield(L, -2, "subprocess");
}
