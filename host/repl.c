/*
** repl.c — the terminal side of the REPL, as the Lua module
** "lasync.readline" (lua/lasync/repl.lua is the rest). GNU readline's
** callback interface is fed from a uv_poll on stdin, so waiting for a line
** never blocks the loop: background tasks run while the user types, and
** their output is written above the prompt without breaking the line.
**
** GNU readline rather than libedit: its callback interface, history file
** truncation and rl_clear_visible_line are what this needs, and libedit
** emulates the callback interface only partly.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>
#include <uv.h>

#include "lasync.h"
#include "lauxlib.h"

#include "repl.h"

/*
** One REPL per process: readline's state is global. `pending` is the future
** of the line being read (NULL between reads); line_cb settles it.
*/
static struct {
  lua_State *L;             /* the main thread, for completion */
  int completer;            /* registry ref of the Lua completer */
  uv_poll_t poll;           /* stdin */
  uv_signal_t winch;        /* terminal resized */
  int handles_open;
  lasync_completion *pending;
  char *prompt;
} repl;

/* What a read ends with: a line, the end of input, or Ctrl-C. */
typedef struct read_end {
  enum { READ_LINE, READ_EOF, READ_INTERRUPT } kind;
  char *line;
} read_end;

/* The result of a read when there is no memory for one: the end. */
static read_end no_memory = {READ_EOF, NULL};

/* {======================================================================
** Reading a line
** ======================================================================= */

/* Completion fn, on the loop's thread: push the read's result. */
static int push_read_end(lua_State *L, void *ud) {
  read_end *e = ud;
  if (L != NULL) {
    if (e->kind == READ_LINE) lua_pushstring(L, e->line);
    else if (e->kind == READ_EOF) lua_pushnil(L);
    else lua_pushboolean(L, 0);
  }
  free(e->line);
  if (e != &no_memory) free(e);
  return L != NULL;
}

static void stop_reading(void) {
  rl_callback_handler_remove();
  uv_poll_stop(&repl.poll);
}

/* Settle the pending read; line is taken (freed with the result). */
static void finish_read(int kind, char *line) {
  read_end *e = malloc(sizeof *e);
  lasync_completion *c = repl.pending;
  repl.pending = NULL;
  stop_reading();
  if (e == NULL) { /* the read ends as at the end of input */
    free(line);
    e = &no_memory;
  } else {
    e->kind = kind;
    e->line = line;
  }
  if (lasync_completion_send(c, push_read_end, e) != 0) {
    fputs("lasync: out of memory\n", stderr); /* the REPL cannot go on */
    exit(EXIT_FAILURE);
  }
}

/* readline's handler: a whole line (malloc'd), or NULL at Ctrl-D / EOF */
static void line_cb(char *line) {
  if (repl.pending == NULL) {
    free(line);
    return;
  }
  if (line == NULL) {
    fputc('\n', rl_outstream); /* the prompt line ends */
    fflush(rl_outstream);
  }
  finish_read(line ? READ_LINE : READ_EOF, line);
}

static void stdin_cb(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0) {
    finish_read(READ_EOF, NULL);
    return;
  }
  rl_callback_read_char(); /* may call line_cb */
}

static void winch_cb(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  rl_resize_terminal();
}

/* readline.read(prompt) -> a Future of the line (nil at the end, false
   when Ctrl-C interrupted it) */
static int rl_read(lua_State *L) {
  const char *prompt = luaL_checkstring(L, 1);
  uv_loop_t *uv = lasync_uv_loop(L);
  char *copy;
  if (uv == NULL || !repl.handles_open)
    return luaL_error(L, "lasync.readline.read: the REPL is not open");
  if (repl.pending)
    return luaL_error(L, "lasync.readline.read: a read is already waiting");
  copy = strdup(prompt);
  if (copy == NULL) return luaL_error(L, "lasync.readline.read: no memory");
  free(repl.prompt);
  repl.prompt = copy;
  repl.pending = lasync_completion_new(L); /* pushes the Future */
  rl_callback_handler_install(repl.prompt, line_cb);
  uv_poll_start(&repl.poll, UV_READABLE, stdin_cb);
  return 1;
}

/*
** readline.interrupt() -> whether the line being typed was empty (nil if
** no read waits): Ctrl-C at the prompt drops the line; the read ends with
** false.
*/
static int rl_interrupt(lua_State *L) {
  int empty;
  if (repl.pending == NULL) return 0;
  empty = rl_end == 0;
  rl_replace_line("", 0);
  fputs("^C\n", rl_outstream);
  fflush(rl_outstream);
  finish_read(READ_INTERRUPT, NULL);
  lua_pushboolean(L, empty);
  return 1;
}

/* Write text to the terminal above the prompt and the line being typed. */
static void write_above(const char *s, size_t len) {
  if (repl.pending) rl_clear_visible_line();
  fwrite(s, 1, len, stdout);
  fflush(stdout);
  if (repl.pending) {
    rl_on_new_line();
    rl_redisplay();
  }
}

/* readline.write(s): output that does not break the line being typed */
static int rl_write(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  write_above(s, len);
  return 0;
}

static void warn_above(void *ud, const char *msg) {
  (void)ud;
  fflush(stdout);
  if (repl.pending) rl_clear_visible_line();
  fputs(msg, stderr);
  fflush(stderr);
  if (repl.pending) {
    rl_on_new_line();
    rl_redisplay();
  }
}

/* }====================================================================== */

/* {======================================================================
** Completion: readline asks, Lua answers
** ======================================================================= */

/*
** The Lua completer gets the word (globals and fields: "string.fo",
** "t:ge") and the line before it, and returns the full candidates.
*/
static char **complete(const char *text, int start, int end) {
  lua_State *L = repl.L;
  char **matches = NULL;
  int top = lua_gettop(L), n, i;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  if (repl.completer == LUA_NOREF) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, repl.completer);
  lua_pushstring(L, text);
  lua_pushlstring(L, rl_line_buffer, (size_t)start);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) goto done;
  n = (int)lua_rawlen(L, -1);
  if (n == 0) goto done;
  matches = calloc((size_t)n + 2, sizeof *matches);
  if (matches == NULL) goto done;
  matches[0] = strdup(n == 1 ? "" : text); /* replaced below */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    matches[i] = strdup(lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
  }
  free(matches[0]);
  if (n == 1) { /* the one match replaces the word */
    matches[0] = matches[1];
    matches[1] = NULL;
  } else { /* the list, and their common prefix replaces the word */
    size_t len = strlen(matches[1]);
    for (i = 2; i <= n; i++) {
      size_t k = 0;
      while (k < len && matches[i][k] == matches[1][k]) k++;
      len = k;
    }
    matches[0] = strndup(matches[1], len);
  }
done:
  lua_settop(L, top);
  return matches;
}

/* readline.set_completer(fn): fn(word, line_before) -> candidates */
static int rl_set_completer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, repl.completer);
  lua_pushvalue(L, 1);
  repl.completer = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** History
** ======================================================================= */

/* readline.add_history(entry) */
static int rl_add_history(lua_State *L) {
  add_history(luaL_checkstring(L, 1));
  return 0;
}

/* readline.load_history(path): missing files are fine */
static int rl_load_history(lua_State *L) {
  read_history(luaL_checkstring(L, 1));
  return 0;
}

/* readline.save_history(path, max): keep the last max entries */
static int rl_save_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int max = (int)luaL_checkinteger(L, 2);
  stifle_history(max);
  if (write_history(path) == 0) history_truncate_file(path, max);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Opening and closing
** ======================================================================= */

/* readline.open(): start using the terminal (stdin must be one) */
static int rl_open(lua_State *L) {
  uv_loop_t *uv = lasync_uv_loop(L);
  int r;
  if (uv == NULL)
    return luaL_error(L, "lasync.readline.open: no running event loop");
  if (repl.handles_open)
    return luaL_error(L, "lasync.readline.open: the REPL is already open");
  r = uv_poll_init(uv, &repl.poll, 0);
  if (r < 0)
    return luaL_error(L, "lasync.readline.open: stdin: %s", uv_strerror(r));
  uv_signal_init(uv, &repl.winch);
  uv_signal_start(&repl.winch, winch_cb, SIGWINCH);
  uv_unref((uv_handle_t *)&repl.winch);
  repl.handles_open = 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  repl.L = lua_tothread(L, -1);
  lua_pop(L, 1);
  rl_readline_name = "lasync";
  rl_catch_signals = 0;  /* SIGINT is the loop's (repl.lua handles it) */
  rl_catch_sigwinch = 0; /* as is SIGWINCH (winch_cb) */
  rl_attempted_completion_function = complete;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
  rl_completion_append_character = '\0';
  lasync_set_warn(L, warn_above, NULL);
  return 0;
}

/* readline.close(): end a waiting read (nil) and release the terminal */
static int rl_close(lua_State *L) {
  if (repl.pending) finish_read(READ_EOF, NULL);
  if (repl.handles_open) {
    repl.handles_open = 0;
    uv_close((uv_handle_t *)&repl.poll, NULL);
    uv_close((uv_handle_t *)&repl.winch, NULL);
    lasync_set_warn(L, NULL, NULL);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, repl.completer);
  repl.completer = LUA_NOREF;
  free(repl.prompt);
  repl.prompt = NULL;
  return 0;
}

/* readline.is_terminal() -> whether stdin is a terminal */
static int rl_is_terminal(lua_State *L) {
  lua_pushboolean(L, isatty(0));
  return 1;
}

int host_open_readline(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"is_terminal", rl_is_terminal},
    {"open", rl_open},
    {"close", rl_close},
    {"read", rl_read},
    {"interrupt", rl_interrupt},
    {"write", rl_write},
    {"set_completer", rl_set_completer},
    {"add_history", rl_add_history},
    {"load_history", rl_load_history},
    {"save_history", rl_save_history},
    {NULL, NULL}
  };
  repl.completer = LUA_NOREF;
  luaL_newlib(L, funcs);
  return 1;
}

/* }====================================================================== */
