/*
** fs.c — lasync.fs: files and directories on libuv's fs requests, which
** run on its thread pool, so no task blocks the loop. Every call is one
** request awaited by the calling task (op.c); a cancelled request frees
** itself when libuv calls back. File objects keep their own position, and
** run their operations one at a time, in the order they were called.
*/
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"

#define LX_READ_CHUNK 65536
#define LX_READ_MAX 0x7ffff000 /* the most one read(2) returns (Linux) */

typedef struct fs_op {
  lx_op op;
  uv_fs_t req;
  char *buf;  /* read or write bytes, owned by the request */
  struct lx_file *owner; /* a read-ahead: the file that keeps its result */
  int unblock_fd; /* see open_unblock; -1, or closed in fs_free */
  lx_pooled pooled; /* in its loop's list while the request runs */
} fs_op;

/*
** Read-ahead: after a read of n bytes that filled its buffer, the file
** asks for the next block (as many chunks of n as fit in 1 MiB) at once,
** and when it starts using that block, for the block after it. Sequential
** reads then rarely wait for the thread pool, and a pool thread reads
** while the task works. The file owns these requests (a task cancelled
** while it waits for one just stops waiting): reads of n bytes take their
** bytes in order; anything else (another size, a seek, a write, close, the
** end of the file) drops them. Only the operation holding the file's turn
** (see Turns) drops them, so no task ever waits on a dropped block.
*/
#define AHEAD_BYTES (1 << 20)

/* The size of a read-ahead block for reads of `chunk` bytes. */
static size_t block_len(size_t chunk) {
  return chunk >= AHEAD_BYTES ? chunk : AHEAD_BYTES / chunk * chunk;
}

typedef struct lx_file {
  uv_file fd;      /* -1 once closed */
  int64_t pos;     /* where the next read or write goes */
  int append;      /* writes go to the end */
  int stream;      /* a pipe, terminal or socket: no position, no seek */
  size_t chunk;    /* the read size that started the read-ahead (0: none) */
  fs_op *cur;      /* the block being used: its bytes from cur_off on are
                      the file's from pos on */
  size_t cur_off;
  fs_op *next;     /* the block after cur, asked for at next_pos */
  int64_t next_pos;
  int busy;          /* an operation holds the turn (until turn_end) */
  lx_waiter waiters; /* tasks waiting for their turn, FIFO; each unlinks
                        itself when woken or cancelled */
  uv_file close_fd;  /* closed while busy: closed when the turns end, as a
                        pool thread may still use it (-1: none) */
} lx_file;

static const char *const fname_open = "fs.open";

/* {======================================================================
** Requests
** ======================================================================= */

/*
** An open of a FIFO waits in its pool thread until the other end is opened
** too, for ever if nobody comes; and closing the loop waits for a running
** request until its bound, then abandons it with its pool thread (loop.c).
** So when such an open is cancelled, open the FIFO here for reading and
** writing (on Linux that never waits, and is both ends at once) and keep
** it open until the request has ended: the pool thread's open returns, and
** the request frees itself as any cancelled one (see fs_discard).
*/
static void open_unblock(fs_op *f) {
  struct stat st;
  if (f->req.fs_type != UV_FS_OPEN || f->req.path == NULL ||
      f->unblock_fd >= 0 || stat(f->req.path, &st) != 0 ||
      !S_ISFIFO(st.st_mode))
    return;
  f->unblock_fd = open(f->req.path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
}

static void fs_abort(lx_op *op) {
  fs_op *f = (fs_op *)op;
  if (f->owner != NULL) return; /* a read-ahead block is its file's */
  if (uv_cancel((uv_req_t *)&f->req) != 0) /* it runs already */
    open_unblock(f);
}

static void fs_dispose(lx_op *op);

/* A request with a buffer of bufsize bytes (none if 0); NULL if no memory */
static fs_op *fs_alloc(size_t bufsize) {
  fs_op *f = malloc(sizeof *f);
  if (f == NULL) return NULL;
  f->buf = NULL;
  f->owner = NULL;
  f->unblock_fd = -1;
  f->pooled.node.next = NULL;
  f->op.abort = fs_abort;
  f->op.dispose = fs_dispose;
  f->op.task = NULL;
  f->op.done = 0;
  if (bufsize && (f->buf = malloc(bufsize)) == NULL) {
    free(f);
    return NULL;
  }
  return f;
}

static fs_op *fs_new(lua_State *L, size_t bufsize) {
  fs_op *f = fs_alloc(bufsize);
  if (f == NULL) luaL_error(L, "%s: out of memory", lx_fname(L, "fs"));
  return f;
}

static void fs_free(fs_op *f) {
  lx_list_remove(&f->pooled.node);
  if (f->unblock_fd >= 0) close(f->unblock_fd);
  uv_fs_req_cleanup(&f->req);
  free(f->buf);
  free(f);
}

/*
** Free a finished request whose task is gone (cancelled): a descriptor it
** opened would be lost, so close it now (a quick call).
*/
static void fs_discard(fs_op *f) {
  if (f->req.fs_type == UV_FS_OPEN && f->req.result >= 0)
    close((uv_file)f->req.result);
  fs_free(f);
}

/*
** A completed request nobody takes (see lx_op.dispose): discard it, unless
** it is a read-ahead block, which stays its file's (block_drop frees it).
*/
static void fs_dispose(lx_op *op) {
  fs_op *f = (fs_op *)op;
  if (f->owner == NULL) fs_discard(f);
}

static void fs_cb(uv_fs_t *req) {
  fs_op *f = lx_container_of(req, fs_op, req);
  int status = req->result < 0 ? (int)req->result : 0;
  lx_list_remove(&f->pooled.node);
  if (lx_op_finish(&f->op, status)) fs_dispose(&f->op);
}

/* After starting a request (r: what uv_fs_* returned), await it. */
static int fs_await(lua_State *L, lx_task *t, fs_op *f, int r,
                    const char *fname, const char *target, lua_KFunction k) {
  if (r < 0) {
    fs_free(f);
    return lx_os_error(L, r, fname, target);
  }
  lx_pooled_add(t->fut.loop, &f->pooled, &f->req);
  return lx_op_await(L, t, &f->op, k);
}

/*
** In a continuation, with f from lx_op_resumed: f, finished; or raise
** (cancelled, or the request failed: an OSError naming fname and target).
*/
static fs_op *fs_check(lua_State *L, lx_task *t, fs_op *f, const char *fname,
                       const char *target) {
  if (t->must_cancel) {
    if (f) fs_discard(f); /* it finished, but nobody will take it */
    lx_task_raise_cancelled(L, t);
  }
  if (f->op.status < 0) {
    int err = f->op.status;
    fs_free(f);
    lx_os_error(L, err, fname, target);
  }
  return f;
}

/* fs_check of the request the task awaited; the path at pathidx (or 0) */
static fs_op *fs_resumed(lua_State *L, lx_task *t, const char *fname,
                         int pathidx) {
  return fs_check(L, t, (fs_op *)lx_op_resumed(t), fname,
                  pathidx ? lua_tostring(L, pathidx) : NULL);
}

#define FS_TASK(L, name) \
  lx_current_task(L, lua_touserdata(L, lua_upvalueindex(1)), name)

/* }====================================================================== */

/* {======================================================================
** Files
** ======================================================================= */

/* The descriptor of the File at idx: -1 if closed, -2 if not a File. */
int lx_file_fd(lua_State *L, int idx) {
  lx_file *fl = lx_testclass(L, lx_runtime_get(L), idx, LX_MT_FILE);
  return fl ? fl->fd : -2;
}

static lx_file *check_file(lua_State *L, const char *fname) {
  lx_file *fl = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                              LX_MT_FILE, fname);
  if (fl->fd < 0) luaL_error(L, "lasync.%s: the file is closed", fname);
  return fl;
}

/* Flags for an io.open mode: "r", "w", "a", "r+", "w+", "a+", "x" (+ "b") */
static int open_flags(lua_State *L, const char *mode, int *append) {
  int flags, plus = strchr(mode, '+') != NULL;
  *append = 0;
  switch (mode[0]) {
  case 'r':
    flags = plus ? O_RDWR : O_RDONLY;
    break;
  case 'w':
    flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
    break;
  case 'a':
    flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
    *append = 1;
    break;
  case 'x':
    flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL;
    break;
  default:
    return luaL_error(L, "lasync.fs.open: invalid mode '%s' (expected r, w, "
                         "a or x, with + or b)", mode);
  }
  if (strspn(mode + 1, "+b") != strlen(mode + 1))
    return luaL_error(L, "lasync.fs.open: invalid mode '%s'", mode);
  return flags | O_CLOEXEC;
}

/* Regular files and block devices have positions; /dev/stdin may not. */
static int is_seekable(uv_file fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return 1;
  return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
}

/* The offset for the next request: -1 (the fd's own) on a stream. */
static int64_t at_pos(const lx_file *fl) {
  return fl->stream ? -1 : fl->pos;
}

static int open_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  fs_op *f = fs_resumed(L, t, fname_open, 1);
  lx_file *fl = lua_newuserdatauv(L, sizeof *fl, 0);
  (void)status;
  fl->fd = (uv_file)f->req.result;
  fl->pos = 0;
  fl->stream = !is_seekable(fl->fd);
  fl->chunk = fl->cur_off = 0;
  fl->cur = fl->next = NULL;
  fl->busy = 0;
  lx_waitlist_init(&fl->waiters);
  fl->close_fd = -1;
  open_flags(L, lx_optstring(L, 2, "r"), &fl->append);
  fs_free(f);
  lx_setclass(L, t->fut.loop->rt, LX_MT_FILE);
  return 1;
}

/* lasync.fs.open(path [, mode="r" [, perm=0666]]) -> file */
static int fs_open(lua_State *L) {
  lx_task *t = FS_TASK(L, fname_open);
  const char *path = lx_checkcstring(L, 1, fname_open, "path");
  const char *mode = lx_optcstring(L, 2, fname_open, "mode", "r");
  int append, flags = open_flags(L, mode, &append);
  int perm = (int)lx_optinteger(L, 3, 0666);
  fs_op *f = fs_new(L, 0); /* every argument checked: nothing leaks */
  lua_settop(L, 3);
  return fs_await(L, t, f, uv_fs_open(t->fut.loop->uv, &f->req, path, flags,
                                      perm, fs_cb),
                  fname_open, path, open_k);
}

/* Drop one read-ahead block: at once, or in fs_cb once it completes. */
static void block_drop(fs_op *f) {
  if (f == NULL) return;
  f->owner = NULL;
  if (f->op.done && f->op.task == NULL) fs_free(f); /* else fs_cb frees */
}

static void ahead_drop(lx_file *fl) {
  block_drop(fl->cur);
  block_drop(fl->next);
  fl->cur = fl->next = NULL;
  fl->chunk = 0;
}

/* }====================================================================== */

/* {======================================================================
** Turns: the operations of a File (read, write, seek, sync, close) run
** one at a time, in the order they were called, as Python's buffered files
** take a lock: two tasks reading one file get consecutive chunks, two
** writes land one after the other. A task that finds the file busy waits
** in its FIFO; the operation in its turn hands the turn to the first waiter
** when it ends, however it ends: every way out of an operation but a yield
** calls turn_end.
** ======================================================================= */

/* End the turn: hand it on, or leave the file idle. */
static void turn_end(lx_file *fl) {
  if (lx_waitlist_wake_first(&fl->waiters) != NULL) return; /* its turn */
  fl->busy = 0;
  if (fl->close_fd >= 0) { /* closed while busy: now nobody uses it */
    ahead_drop(fl);
    close(fl->close_fd);
    fl->close_fd = -1;
  }
}

/* End the turn and raise an OSError (the request failed). */
static int turn_os_error(lua_State *L, lx_file *fl, int err,
                         const char *fname) {
  turn_end(fl);
  return lx_os_error(L, err, fname, NULL);
}

/* In the turn: the file was closed while this operation waited for it. */
static int turn_closed(lua_State *L, lx_file *fl, const char *fname) {
  turn_end(fl);
  return luaL_error(L, "lasync.%s: the file is closed", fname);
}

/* In the turn: a request with a buffer of bufsize bytes, or raise. */
static fs_op *turn_new(lua_State *L, lx_file *fl, size_t bufsize) {
  fs_op *f = fs_alloc(bufsize);
  if (f == NULL) {
    turn_end(fl);
    luaL_error(L, "%s: out of memory", lx_fname(L, "fs"));
  }
  return f;
}

/* In the turn: await the request started (r), as fs_await. */
static int turn_await(lua_State *L, lx_task *t, lx_file *fl, fs_op *f,
                      int r, const char *fname, lua_KFunction k) {
  if (r < 0) {
    fs_free(f);
    return turn_os_error(L, fl, r, fname);
  }
  lx_pooled_add(t->fut.loop, &f->pooled, &f->req);
  return lx_op_await(L, t, &f->op, k);
}

/*
** In a continuation of an operation in its turn: the finished request, or
** end the turn and raise (cancelled, or the request failed).
*/
static fs_op *turn_resumed(lua_State *L, lx_task *t, lx_file *fl,
                           const char *fname) {
  fs_op *f = (fs_op *)lx_op_resumed(t);
  if (t->must_cancel || f->op.status < 0) turn_end(fl);
  return fs_check(L, t, f, fname, NULL);
}

/* The turn came (the operation's body is at index 4), or cancelled. */
static int turn_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_file *fl = lua_touserdata(L, 1);
  lua_CFunction body = lua_tocfunction(L, 4);
  (void)status;
  if (t->must_cancel) {
    if (t->granted) turn_end(fl); /* handed the turn, then cancelled */
    return lx_task_raise_cancelled(L, t);
  }
  lua_settop(L, 3); /* remove body */
  return body(L);
}

/*
** Run body, an operation on the File at index 1 with its arguments at 2
** and 3, in the file's turn: at once if the file is idle, else after the
** operations called before it (t: the calling task, needed only then).
*/
static int turn_run(lua_State *L, lx_task *t, lx_file *fl,
                    lua_CFunction body) {
  lua_settop(L, 3);
  if (!fl->busy) {
    fl->busy = 1;
    return body(L);
  }
  lua_pushcfunction(L, body);
  return lx_wait_on(L, t, &fl->waiters, turn_k);
}

/* }====================================================================== */

/* {======================================================================
** File methods: each does its work in the file's turn (a `*_body`)
** ======================================================================= */

/* Ask for a block at `at`; NULL if that cannot start now. */
static fs_op *block_start(lx_loop *loop, lx_file *fl, int64_t at) {
  size_t len = block_len(fl->chunk);
  fs_op *f = fs_alloc(len);
  uv_buf_t buf;
  if (f == NULL) return NULL;
  f->owner = fl;
  buf = uv_buf_init(f->buf, (unsigned)len);
  if (uv_fs_read(loop->uv, &f->req, fl->fd, &buf, 1, at, fs_cb) < 0) {
    fs_free(f);
    return NULL;
  }
  lx_pooled_add(loop, &f->pooled, &f->req);
  return f;
}

static int read_body(lua_State *L);

/* A read-ahead block the read waited for completed (it stays the file's). */
static int block_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  lx_op_resumed(t);
  if (t->must_cancel) {
    turn_end(lua_touserdata(L, 1));
    return lx_task_raise_cancelled(L, t);
  }
  return read_body(L); /* take from it */
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_file *fl = lua_touserdata(L, 1);
  fs_op *f = turn_resumed(L, t, fl, "File:read");
  size_t n = (size_t)lua_tointeger(L, 2), got = (size_t)f->req.result;
  (void)status;
  fl->pos += (int64_t)got;
  lua_pushlstring(L, f->buf, got); /* "" at the end */
  fs_free(f);
  if (got == n && fl->fd >= 0 && !fl->stream) { /* a full chunk: read
                                                   ahead from now */
    fl->chunk = n;
    fl->cur = block_start(t->fut.loop, fl, fl->pos);
    fl->cur_off = 0;
  }
  turn_end(fl);
  return 1;
}

/* [-0, +1|yield] the next n bytes from the read-ahead blocks */
static int read_ahead(lua_State *L, lx_task *t, lx_file *fl, size_t n) {
  for (;;) {
    fs_op *f;
    size_t avail, m;
    if (fl->cur == NULL) { /* the next block becomes the current one */
      fl->cur = fl->next;
      fl->next = NULL;
      fl->cur_off = 0;
      if (fl->cur == NULL) fl->cur = block_start(t->fut.loop, fl, fl->pos);
      if (fl->cur == NULL) {
        turn_end(fl);
        return luaL_error(L, "lasync.File:read: out of memory");
      }
    }
    f = fl->cur;
    if (!f->op.done) return lx_op_await(L, t, &f->op, block_k);
    if (f->op.status < 0) {
      int err = f->op.status;
      ahead_drop(fl);
      return turn_os_error(L, fl, err, "File:read");
    }
    if (f->req.result == 0) { /* the end of the file, for now: the next
                                 read asks again, for data appended since */
      ahead_drop(fl);
      turn_end(fl);
      lua_pushliteral(L, "");
      return 1;
    }
    avail = (size_t)f->req.result - fl->cur_off;
    if (fl->next == NULL && (size_t)f->req.result == block_len(fl->chunk)) {
      fl->next_pos = fl->pos - (int64_t)fl->cur_off + (int64_t)f->req.result;
      fl->next = block_start(t->fut.loop, fl, fl->next_pos); /* keep one in
                                                                 flight */
    }
    if (avail == 0) { /* used up (or short, as a pipe gives): read on */
      fl->cur = NULL;
      f->owner = NULL;
      fs_free(f);
      continue;
    }
    m = avail < n ? avail : n;
    lua_pushlstring(L, f->buf + fl->cur_off, m);
    fl->cur_off += m;
    fl->pos += (int64_t)m;
    turn_end(fl);
    return 1;
  }
}

/* [-0, +1|yield] read, in the turn (n at index 2) */
static int read_body(lua_State *L) {
  lx_task *t = FS_TASK(L, "File:read");
  lx_file *fl = lua_touserdata(L, 1);
  size_t n = (size_t)lua_tointeger(L, 2);
  fs_op *f;
  uv_buf_t buf;
  if (fl->fd < 0) return turn_closed(L, fl, "File:read");
  if (fl->chunk == n && (fl->cur || fl->next))
    return read_ahead(L, t, fl, n);
  ahead_drop(fl);
  f = turn_new(L, fl, n);
  buf = uv_buf_init(f->buf, (unsigned)n);
  return turn_await(L, t, fl, f, uv_fs_read(t->fut.loop->uv, &f->req, fl->fd,
                                            &buf, 1, at_pos(fl), fs_cb),
                    "File:read", read_k);
}

/*
** The buffer to allocate for read(n): no more than one read(2) returns and,
** on a regular file, no more than is left of it (but at least a chunk, for
** data appended since): read(2^40) must not allocate a terabyte.
*/
static lua_Integer read_size(lx_file *fl, lua_Integer n) {
  struct stat st;
  if (n > LX_READ_MAX) n = LX_READ_MAX;
  if (!fl->stream && fl->fd >= 0 && fstat(fl->fd, &st) == 0 &&
      S_ISREG(st.st_mode)) {
    int64_t left = (int64_t)st.st_size - fl->pos;
    if (left < LX_READ_CHUNK) left = LX_READ_CHUNK;
    if (n > left) n = (lua_Integer)left;
  }
  return n;
}

/* file:read([n=65536]) -> up to n bytes; "" at the end of the file */
static int file_read(lua_State *L) {
  lx_task *t = FS_TASK(L, "File:read");
  lx_file *fl = check_file(L, "File:read");
  lua_Integer n = lx_optinteger(L, 2, LX_READ_CHUNK);
  if (n < 0) return luaL_error(L, "lasync.File:read: n must be >= 0");
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  lua_settop(L, 1);
  lua_pushinteger(L, read_size(fl, n));
  return turn_run(L, t, fl, read_body);
}

static int write_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_file *fl = lua_touserdata(L, 1);
  fs_op *f = turn_resumed(L, t, fl, "File:write");
  (void)status;
  if (!fl->append) fl->pos += f->req.result;
  fs_free(f);
  turn_end(fl);
  return 0;
}

/* write, in the turn (the data at index 2) */
static int write_body(lua_State *L) {
  lx_task *t = FS_TASK(L, "File:write");
  lx_file *fl = lua_touserdata(L, 1);
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  fs_op *f;
  uv_buf_t buf;
  if (fl->fd < 0) return turn_closed(L, fl, "File:write");
  ahead_drop(fl);
  f = turn_new(L, fl, len ? len : 1);
  memcpy(f->buf, data, len); /* the request owns its bytes */
  buf = uv_buf_init(f->buf, (unsigned)len);
  return turn_await(L, t, fl, f, uv_fs_write(t->fut.loop->uv, &f->req,
                                             fl->fd, &buf, 1,
                                             fl->append ? -1 : at_pos(fl),
                                             fs_cb),
                    "File:write", write_k);
}

/* file:write(data): the bytes at the file's position (or its end) */
static int file_write(lua_State *L) {
  lx_task *t = FS_TASK(L, "File:write");
  lx_file *fl = check_file(L, "File:write");
  lx_checkstring(L, 2);
  return turn_run(L, t, fl, write_body);
}

/* A continuation's end for an operation in its turn that returns nothing */
static int turn_unit(lua_State *L, lua_KContext ctx, const char *fname) {
  lx_file *fl = lua_touserdata(L, 1);
  fs_free(turn_resumed(L, (lx_task *)ctx, fl, fname));
  turn_end(fl);
  return 0;
}

static int sync_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return turn_unit(L, ctx, "File:sync");
}

static int sync_body(lua_State *L) {
  lx_task *t = FS_TASK(L, "File:sync");
  lx_file *fl = lua_touserdata(L, 1);
  fs_op *f;
  if (fl->fd < 0) return turn_closed(L, fl, "File:sync");
  f = turn_new(L, fl, 0);
  return turn_await(L, t, fl, f, uv_fs_fsync(t->fut.loop->uv, &f->req,
                                             fl->fd, fs_cb),
                    "File:sync", sync_k);
}

/* file:sync(): flush to the disk */
static int file_sync(lua_State *L) {
  lx_task *t = FS_TASK(L, "File:sync");
  lx_file *fl = check_file(L, "File:sync");
  return turn_run(L, t, fl, sync_body);
}

static const char *const whences[] = {"set", "cur", "end", NULL};

/* End a seek in its turn: move to pos, or raise if pos is negative. */
static int seek_to(lua_State *L, lx_file *fl, int64_t pos) {
  turn_end(fl);
  if (pos < 0)
    return luaL_error(L, "lasync.File:seek: position would be negative");
  fl->pos = pos;
  lua_pushinteger(L, pos);
  return 1;
}

static int size_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  lx_file *fl = lua_touserdata(L, 1);
  fs_op *f = turn_resumed(L, t, fl, "File:seek");
  int64_t pos = (int64_t)f->req.statbuf.st_size + lua_tointeger(L, 3);
  (void)status;
  fs_free(f);
  return seek_to(L, fl, pos);
}

/* seek, in the turn (whence and offset at 2 and 3, already checked) */
static int seek_body(lua_State *L) {
  lx_file *fl = lua_touserdata(L, 1);
  int whence = lx_checkoption(L, 2, "cur", whences);
  lua_Integer offset = lua_tointeger(L, 3);
  if (fl->fd < 0) return turn_closed(L, fl, "File:seek");
  ahead_drop(fl);
  if (whence == 2) { /* "end": ask for the size */
    lx_task *t = FS_TASK(L, "File:seek");
    fs_op *f = turn_new(L, fl, 0);
    return turn_await(L, t, fl, f, uv_fs_fstat(t->fut.loop->uv, &f->req,
                                               fl->fd, fs_cb),
                      "File:seek", size_k);
  }
  return seek_to(L, fl, whence == 0 ? offset : fl->pos + offset);
}

/* file:seek([whence="cur" [, offset=0]]) -> position, as io's seek */
static int file_seek(lua_State *L) {
  lx_file *fl = check_file(L, "File:seek");
  int whence;
  lx_task *t = NULL;
  lx_optcstring(L, 2, "File:seek", "whence", NULL);
  whence = lx_checkoption(L, 2, "cur", whences);
  lx_optinteger(L, 3, 0);
  if (fl->stream) return lx_os_error(L, UV_ESPIPE, "File:seek", NULL);
  if (whence == 2 || fl->busy) /* it awaits: only a task can */
    t = FS_TASK(L, "File:seek");
  return turn_run(L, t, fl, seek_body);
}

static int close_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return turn_unit(L, ctx, "File:close");
}

/* close, in the turn */
static int close_body(lua_State *L) {
  lx_task *t = FS_TASK(L, "File:close");
  lx_file *fl = lua_touserdata(L, 1);
  uv_file fd = fl->fd;
  fs_op *f;
  if (fd < 0) { /* closed while it waited for its turn */
    turn_end(fl);
    return 0;
  }
  f = turn_new(L, fl, 0);
  ahead_drop(fl);
  fl->fd = -1;
  return turn_await(L, t, fl, f, uv_fs_close(t->fut.loop->uv, &f->req, fd,
                                             fs_cb),
                    "File:close", close_k);
}

/*
** Close without a request (a quick call). While an operation is in its
** turn a pool thread may still use the descriptor: turn_end closes it.
*/
static void close_now(lx_file *fl) {
  if (fl->fd < 0) return;
  if (fl->busy) {
    fl->close_fd = fl->fd;
  } else {
    ahead_drop(fl);
    close(fl->fd);
  }
  fl->fd = -1;
}

/* file:close(): a closed file refuses every other method */
static int file_close(lua_State *L) {
  lx_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  lx_file *fl = lx_checkclass(L, rt, 1, LX_MT_FILE, "File:close");
  lx_task *t = rt->loop ? rt->loop->current : NULL;
  if (fl->fd < 0) return 0;
  if (t == NULL || t->co != L || !lua_isyieldable(L)) { /* outside a task,
                                 or where it cannot suspend: at once */
    close_now(fl);
    return 0;
  }
  return turn_run(L, t, fl, close_body);
}

/* __close: at once (it may run where a task cannot yield: an error unwinds) */
static int file__close(lua_State *L) {
  close_now(lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                          LX_MT_FILE, "File:__close"));
  return 0;
}

/* __gc: nothing can use the file any more */
static int file__gc(lua_State *L) {
  lx_file *fl = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                              LX_MT_FILE, "File:__gc");
  ahead_drop(fl);
  if (fl->fd >= 0) close(fl->fd);
  if (fl->close_fd >= 0) close(fl->close_fd);
  fl->fd = fl->close_fd = -1;
  return 0;
}

/* file:fileno() -> the descriptor, or nil once the file is closed */
static int file_fileno(lua_State *L) {
  lx_file *fl = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                              LX_MT_FILE, "File:fileno");
  if (fl->fd < 0) return 0;
  lua_pushinteger(L, fl->fd);
  return 1;
}

static int file__tostring(lua_State *L) {
  lx_file *fl = lx_checkclass(L, lua_touserdata(L, lua_upvalueindex(1)), 1,
                              LX_MT_FILE, "File:__tostring");
  if (fl->fd < 0)
    lua_pushliteral(L, "lasync.File (closed)");
  else
    lua_pushfstring(L, "lasync.File: fd %d at %I", (int)fl->fd,
                    (lua_Integer)fl->pos);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Paths
** ======================================================================= */

static const char *type_name(uv_dirent_type_t type) {
  switch (type) {
  case UV_DIRENT_FILE: return "file";
  case UV_DIRENT_DIR: return "directory";
  case UV_DIRENT_LINK: return "link";
  case UV_DIRENT_FIFO: return "fifo";
  case UV_DIRENT_SOCKET: return "socket";
  case UV_DIRENT_CHAR: return "char";
  case UV_DIRENT_BLOCK: return "block";
  default: return "unknown";
  }
}

static const char *mode_type(uint64_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISLNK(mode)) return "link";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode)) return "char";
  if (S_ISBLK(mode)) return "block";
  return "unknown";
}

static void set_time(lua_State *L, const char *k, uv_timespec_t ts) {
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  lua_setfield(L, -2, k);
}

/* [-0, +1] push a stat table */
static void push_stat(lua_State *L, const uv_stat_t *st) {
  lua_createtable(L, 0, 12);
  lua_pushstring(L, mode_type(st->st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st->st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)st->st_ino);
  lua_setfield(L, -2, "ino");
  lua_pushinteger(L, (lua_Integer)st->st_dev);
  lua_setfield(L, -2, "dev");
  lua_pushinteger(L, (lua_Integer)st->st_nlink);
  lua_setfield(L, -2, "nlink");
  lua_pushinteger(L, (lua_Integer)st->st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)st->st_gid);
  lua_setfield(L, -2, "gid");
  set_time(L, "atime", st->st_atim);
  set_time(L, "mtime", st->st_mtim);
  set_time(L, "ctime", st->st_ctim);
}

static int stat_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  fs_op *f = fs_resumed(L, t, lua_tostring(L, lua_upvalueindex(2)), 1);
  (void)status;
  push_stat(L, &f->req.statbuf);
  fs_free(f);
  return 1;
}

static int unit_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  (void)status;
  fs_free(fs_resumed(L, t, lua_tostring(L, lua_upvalueindex(2)), 1));
  return 0;
}

static int path_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  fs_op *f = fs_resumed(L, t, lua_tostring(L, lua_upvalueindex(2)), 1);
  (void)status;
  lua_pushstring(L, f->req.ptr ? (const char *)f->req.ptr : f->req.path);
  fs_free(f);
  return 1;
}

/* One path function: upvalue 2 is its name ("fs.stat"), 3 its kind. */
enum { P_STAT, P_LSTAT, P_MKDIR, P_RMDIR, P_UNLINK, P_RENAME, P_COPYFILE,
       P_REALPATH, P_MKDTEMP };

static int fs_path(lua_State *L) {
  const char *fname = lua_tostring(L, lua_upvalueindex(2));
  int kind = (int)lua_tointeger(L, lua_upvalueindex(3)), r;
  lx_task *t = FS_TASK(L, fname);
  uv_loop_t *uv = t->fut.loop->uv;
  const char *path = lx_checkcstring(L, 1, fname, kind == P_MKDTEMP
                                                     ? "template"
                                                     : "path");
  const char *to = NULL;
  int mode = 0777;
  fs_op *f;
  lua_KFunction k = unit_k;
  if (kind == P_RENAME || kind == P_COPYFILE)
    to = lx_checkcstring(L, 2, fname, "destination");
  if (kind == P_MKDIR) mode = (int)lx_optinteger(L, 2, 0777);
  f = fs_new(L, 0); /* every argument checked: nothing leaks */
  switch (kind) {
  case P_STAT: r = uv_fs_stat(uv, &f->req, path, fs_cb); k = stat_k; break;
  case P_LSTAT: r = uv_fs_lstat(uv, &f->req, path, fs_cb); k = stat_k; break;
  case P_MKDIR:
    r = uv_fs_mkdir(uv, &f->req, path, mode, fs_cb);
    break;
  case P_RMDIR: r = uv_fs_rmdir(uv, &f->req, path, fs_cb); break;
  case P_UNLINK: r = uv_fs_unlink(uv, &f->req, path, fs_cb); break;
  case P_RENAME: r = uv_fs_rename(uv, &f->req, path, to, fs_cb); break;
  case P_COPYFILE: r = uv_fs_copyfile(uv, &f->req, path, to, 0, fs_cb); break;
  case P_REALPATH:
    r = uv_fs_realpath(uv, &f->req, path, fs_cb);
    k = path_k;
    break;
  default: /* P_MKDTEMP */
    r = uv_fs_mkdtemp(uv, &f->req, path, fs_cb);
    k = path_k;
  }
  lua_settop(L, 2);
  return fs_await(L, t, f, r, fname, path, k);
}

/* scandir's iterator: upvalue 1 the request (a full userdata) */
static int scandir_next(lua_State *L) {
  uv_fs_t *req = lua_touserdata(L, lua_upvalueindex(1));
  uv_dirent_t ent;
  if (req->result < 0 || uv_fs_scandir_next(req, &ent) == UV_EOF) return 0;
  lua_pushstring(L, ent.name);
  lua_pushstring(L, type_name(ent.type));
  return 2;
}

static const char scandir_key = 's'; /* registry: the state's metatable */

static int scandir__gc(lua_State *L) {
  uv_fs_t *req = lua_touserdata(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &scandir_key);
  if (req == NULL || !lua_getmetatable(L, 1) || !lua_rawequal(L, -1, -2))
    return luaL_error(L, "lasync.fs.scandir: __gc of something else");
  if (req->type == UV_FS) uv_fs_req_cleanup(req); /* once */
  req->type = UV_UNKNOWN_REQ;
  return 0;
}

static int scandir_k(lua_State *L, int status, lua_KContext ctx) {
  lx_task *t = (lx_task *)ctx;
  fs_op *f = fs_resumed(L, t, "fs.scandir", 1);
  uv_fs_t *req;
  (void)status;
  req = lua_newuserdatauv(L, sizeof *req, 0); /* the entries live in it */
  *req = f->req;
  free(f->buf);
  free(f); /* its request was moved: no cleanup here */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &scandir_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, scandir__gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &scandir_key);
  }
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, scandir_next, 1);
  return 1;
}

/* lasync.fs.scandir(path) -> iterator of name, type */
static int fs_scandir(lua_State *L) {
  lx_task *t = FS_TASK(L, "fs.scandir");
  const char *path = lx_checkcstring(L, 1, "fs.scandir", "path");
  fs_op *f = fs_new(L, 0);
  lua_settop(L, 1);
  return fs_await(L, t, f, uv_fs_scandir(t->fut.loop->uv, &f->req, path, 0,
                                         fs_cb),
                  "fs.scandir", path, scandir_k);
}

/* }====================================================================== */

void lx_open_fs(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"read", file_read},
    {"write", file_write},
    {"seek", file_seek},
    {"sync", file_sync},
    {"close", file_close},
    {"fileno", file_fileno},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", file__gc},
    {"__close", file__close},
    {"__tostring", file__tostring},
    {NULL, NULL}
  };
  static const struct { const char *name; int kind; } paths[] = {
    {"stat", P_STAT}, {"lstat", P_LSTAT}, {"mkdir", P_MKDIR},
    {"rmdir", P_RMDIR}, {"unlink", P_UNLINK}, {"rename", P_RENAME},
    {"copyfile", P_COPYFILE}, {"realpath", P_REALPATH},
    {"mkdtemp", P_MKDTEMP}, {NULL, 0}
  };
  static const luaL_Reg funcs[] = {
    {"open", fs_open},
    {"scandir", fs_scandir},
    {NULL, NULL}
  };
  int i;
  lx_newclass(L, LX_MT_FILE, "lasync.File", methods, meta);
  lua_newtable(L); /* lasync.fs */
  lx_setfuncs(L, funcs);
  for (i = 0; paths[i].name; i++) {
    lx_push_runtime(L);
    lua_pushfstring(L, "fs.%s", paths[i].name);
    lua_pushinteger(L, paths[i].kind);
    lua_pushcclosure(L, fs_path, 3);
    lua_setfield(L, -2, paths[i].name);
  }
  lua_setfield(L, -2, "fs");
}
