/*
** tcp_server.c — an application with its own libuv event loop and its own
** TCP server, written in C, that hands each request line to a Lua handler.
** The lasync host borrows the application's uv_loop_t, so the Lua tasks run
** whenever the application runs its loop. The handler is a task: it may
** sleep or await while other requests are served. Its reply comes back
** through reply(), a C function the application registers.
**
** To be self-contained, the program also runs a small C client against its
** own server, on the same loop: it sends four requests (one slow, one
** unknown), prints the replies, and disconnects; the server then shuts
** down and the loop ends.
**
** usage: embed_tcp_server
** build: cc tcp_server.c $(pkg-config --cflags --libs lasync)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lasync.h"
#include "lauxlib.h"

#define MAX_CONNS 64
#define MAX_LINE 1024

static uv_loop_t loop;   /* the application's loop */
static lasync_host *host; /* lasync, on that loop */
static uv_tcp_t server;
static int nconnections, nrequests, nreplies;

/* {======================================================================
** The server (C): connections, lines in, replies out
** ======================================================================= */

typedef struct conn {
  uv_tcp_t tcp;
  int id;       /* its slot in conns, + 1: what Lua knows it by */
  int nlines;   /* requests read so far: each gets a number */
  size_t len;   /* of the partial line in buf */
  char buf[MAX_LINE];
} conn;

static conn *conns[MAX_CONNS];

typedef struct write_req {
  uv_write_t req;
  char data[1]; /* the text, allocated to size */
} write_req;

static void alloc_cb(uv_handle_t *handle, size_t size, uv_buf_t *buf) {
  (void)handle;
  buf->base = malloc(size);
  buf->len = buf->base ? size : 0;
}

static void write_cb(uv_write_t *req, int status) {
  (void)status;
  free(req); /* the write_req */
}

/* Write len bytes of text to a stream; the copy is freed when written. */
static int send_text(uv_stream_t *stream, const char *text, size_t len) {
  write_req *w = malloc(sizeof *w + len);
  uv_buf_t buf;
  if (w == NULL) return UV_ENOMEM;
  memcpy(w->data, text, len);
  buf = uv_buf_init(w->data, (unsigned)len);
  return uv_write(&w->req, stream, &buf, 1, write_cb);
}

static void conn_closed_cb(uv_handle_t *handle) {
  free(handle->data);
}

static void conn_close(conn *c) {
  conns[c->id - 1] = NULL; /* replies to it are dropped from now on */
  uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

/* A request line: start handle(conn, number, line) as a lasync task. */
static void hand_to_lua(conn *c, const char *line, size_t len) {
  lua_State *L = lasync_host_state(host);
  int task;
  lua_getglobal(L, "handle");
  lua_pushinteger(L, c->id);
  lua_pushinteger(L, ++c->nlines);
  lua_pushlstring(L, line, len);
  task = lasync_host_spawn(host, 3);
  if (task == 0) {
    fprintf(stderr, "server: %s\n", lasync_host_error(host));
    return;
  }
  nrequests++;
  /* The reply comes through reply(); the server does not need the task's
     outcome, so it lets go of it now (the task runs on regardless). */
  lasync_host_release(host, task);
}

static void conn_read_cb(uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf) {
  conn *c = stream->data;
  ssize_t i;
  for (i = 0; i < nread; i++) {
    if (buf->base[i] == '\n') {
      hand_to_lua(c, c->buf, c->len);
      c->len = 0;
    } else if (c->len < sizeof c->buf) {
      c->buf[c->len++] = buf->base[i];
    }
  }
  free(buf->base);
  if (nread < 0) conn_close(c); /* UV_EOF: the client is done */
}

static void on_connection(uv_stream_t *srv, int status) {
  conn *c;
  int slot;
  if (status < 0) return;
  for (slot = 0; slot < MAX_CONNS && conns[slot]; slot++) {
  }
  if ((c = calloc(1, sizeof *c)) == NULL) return;
  uv_tcp_init(&loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0 || slot == MAX_CONNS) {
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
    return;
  }
  c->id = slot + 1;
  conns[slot] = c;
  nconnections++;
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, conn_read_cb);
}

/* reply(conn, text) -> whether the connection was still there */
static int lua_reply(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  conn *c = id >= 1 && id <= MAX_CONNS ? conns[id - 1] : NULL;
  luaL_checkstring(L, 2);
  if (c != NULL) {
    size_t len;
    const char *line;
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "\n");
    lua_concat(L, 2); /* the reply and its newline */
    line = lua_tolstring(L, -1, &len);
    send_text((uv_stream_t *)&c->tcp, line, len);
    nreplies++;
  }
  lua_pushboolean(L, c != NULL);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** The Lua side: the handler, a task per request
** ======================================================================= */

static const char handler_script[] =
  "local commands = {}\n"
  "function commands.upper(text) return text:upper() end\n"
  "function commands.sum(text)\n"
  "  local sum = 0\n"
  "  for n in text:gmatch('%-?%d+') do sum = sum + tonumber(n) end\n"
  "  return 'sum=' .. sum\n"
  "end\n"
  "function commands.sleep(text)   -- slow: the others are served meanwhile\n"
  "  local ms = tonumber(text) or 0\n"
  "  lasync.sleep(ms / 1000)\n"
  "  return ('slept %d ms'):format(ms)\n"
  "end\n"
  "\n"
  "-- handle(conn, number, line): runs as a task for each request line\n"
  "function handle(conn, number, line)\n"
  "  local name, rest = line:match('^(%S+)%s*(.*)$')\n"
  "  local command = commands[name]\n"
  "  local ok, answer\n"
  "  if command then\n"
  "    ok, answer = pcall(command, rest)\n"
  "    if not ok then answer = 'ERR ' .. tostring(answer) end\n"
  "  else\n"
  "    answer = ('ERR unknown command %q'):format(name or '')\n"
  "  end\n"
  "  reply(conn, number .. ' ' .. answer)\n"
  "end\n";

/* }====================================================================== */

/* {======================================================================
** The client (C): four requests, then goodbye
** ======================================================================= */

static const char requests[] =
  "upper hello from C\n"
  "sleep 50\n"
  "sum 1 2 3 4\n"
  "fly away\n";
#define NREQUESTS 4

static struct {
  uv_tcp_t tcp;
  uv_connect_t connect;
  size_t len;
  char buf[MAX_LINE];
  int nreplies;
  char order[2 * NREQUESTS + 1];       /* numbers, in arrival order */
  char replies[NREQUESTS][MAX_LINE];   /* by request number */
} client;

static void client_closed_cb(uv_handle_t *handle) {
  (void)handle;
  uv_close((uv_handle_t *)&server, NULL); /* the demo is over */
}

static void client_line(const char *line) {
  int number = atoi(line);
  const char *text = strchr(line, ' ');
  size_t n = strlen(client.order);
  if (number < 1 || number > NREQUESTS || text == NULL) return;
  snprintf(client.replies[number - 1], MAX_LINE, "%s", text + 1);
  snprintf(client.order + n, sizeof client.order - n, "%s%d", n ? " " : "",
           number);
  client.nreplies++;
}

static void client_read_cb(uv_stream_t *stream, ssize_t nread,
                           const uv_buf_t *buf) {
  ssize_t i;
  for (i = 0; i < nread; i++) {
    if (buf->base[i] == '\n') {
      client.buf[client.len] = '\0';
      client_line(client.buf);
      client.len = 0;
    } else if (client.len < sizeof client.buf - 1) {
      client.buf[client.len++] = buf->base[i];
    }
  }
  free(buf->base);
  if (client.nreplies == NREQUESTS || nread < 0) {
    for (i = 0; i < NREQUESTS; i++)
      printf("client: request %d -> %s\n", (int)i + 1, client.replies[i]);
    printf("client: replies arrived in the order %s\n", client.order);
    uv_read_stop(stream);
    uv_close((uv_handle_t *)stream, client_closed_cb);
  }
}

static void client_connect_cb(uv_connect_t *req, int status) {
  if (status < 0) {
    fprintf(stderr, "client: connect: %s\n", uv_strerror(status));
    uv_close((uv_handle_t *)req->handle, client_closed_cb);
    return;
  }
  send_text(req->handle, requests, sizeof requests - 1);
  uv_read_start(req->handle, alloc_cb, client_read_cb);
}

/* }====================================================================== */

int main(void) {
  struct sockaddr_storage addr;
  int addrlen = sizeof addr, status;
  lua_State *L;
  uv_loop_init(&loop);
  /* the server, listening on a free port of the loopback interface */
  uv_tcp_init(&loop, &server);
  uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&addr);
  if (uv_tcp_bind(&server, (struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&server, 16, on_connection) != 0) {
    fprintf(stderr, "server: cannot listen\n");
    return 1;
  }
  uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &addrlen);
  /* lasync on the same loop, with the handler and reply() */
  host = lasync_host_new(&loop);
  if (host == NULL) return 1;
  L = lasync_host_state(host);
  lua_register(L, "reply", lua_reply);
  if (luaL_dostring(L, handler_script) != LUA_OK) {
    fprintf(stderr, "server: %s\n", lua_tostring(L, -1));
    return 1;
  }
  /* the client */
  uv_tcp_init(&loop, &client.tcp);
  uv_tcp_connect(&client.connect, &client.tcp, (struct sockaddr *)&addr,
                 client_connect_cb);
  /* the application runs its loop as always: lasync's tasks run with it */
  uv_run(&loop, UV_RUN_DEFAULT);
  lasync_host_destroy(host);
  status = uv_loop_close(&loop);
  printf("server: handed %d requests from %d connection%s to Lua, sent %d "
         "replies, loop closed %s\n",
         nrequests, nconnections, nconnections == 1 ? "" : "s", nreplies,
         status == 0 ? "cleanly" : uv_err_name(status));
  return status == 0 && client.nreplies == NREQUESTS ? 0 : 1;
}
