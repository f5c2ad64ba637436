/*
** supervisor_opts.c — the options of lasync -w N: -w, --share=, --grace=
** and --worker-log, and their environment forms LASYNC_WORKERS,
** LASYNC_SHARE and LASYNC_GRACE, checked before anything starts.
*/
#define _GNU_SOURCE /* sched_getaffinity */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h" /* LX_SHARE_* */
#include "supervisor.h"

#define MAX_WORKERS SUPERVISOR_MAX_WORKERS

/* "-w": a positive number of workers, or "auto": the usable CPUs. */
static int parse_workers(const char *from, const char *v) {
  char *end;
  long n;
  if (strcmp(v, "auto") == 0) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
      return CPU_COUNT(&set) > MAX_WORKERS ? MAX_WORKERS : CPU_COUNT(&set);
    return 1;
  }
  errno = 0;
  n = strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || errno != 0 || n < 1 || n > MAX_WORKERS) {
    fprintf(stderr, "lasync: %s: the number of workers must be 1 to %d or "
            "'auto' (got '%s')\n", from, MAX_WORKERS, v);
    return -1;
  }
  return (int)n;
}

static int parse_share(const char *from, const char *v) {
  if (strcmp(v, "reuseport") == 0) return LX_SHARE_REUSEPORT;
  if (strcmp(v, "socket") == 0) return LX_SHARE_SOCKET;
  fprintf(stderr, "lasync: %s: expected 'reuseport' or 'socket' (got '%s')"
          "\n", from, v);
  return -1;
}

static double parse_grace(const char *from, const char *v) {
  char *end;
  double g = strtod(v, &end);
  if (*v == '\0' || *end != '\0' || !(g >= 0 && g <= 86400)) {
    fprintf(stderr, "lasync: %s: expected a number of seconds from 0 to "
            "86400 (got '%s')\n", from, v);
    return -1;
  }
  return g;
}

/*
** The options before the script, as lasync.c's collect_args reads them:
** the supervisor's are taken out, the others stay for the workers (and,
** without -w, for lasync.c). The environment gives the defaults; an
** exported LASYNC_WORKERS only applies to a script file, so that it
** never turns a REPL or stdin into an error.
*/
int supervisor_parse(int *argc, char **argv, supervisor_opts *o) {
  const char *env, *wopt = NULL;
  int i, j, script = -1, repl = 0, help = 0, explicit_w = 0, given = 0;
  memset(o, 0, sizeof *o);
  o->share = LX_SHARE_REUSEPORT;
  o->grace = 10;
  for (i = j = 1; i < *argc; i++) {
    const char *a = argv[i];
    if (script < 0 && a[0] == '-') {
      if (strncmp(a, "-w", 2) == 0) {
        const char *v = a[2] ? a + 2 : argv[++i];
        if (v == NULL) {
          fprintf(stderr, "lasync: '-w' needs argument\n");
          return -1;
        }
        if ((o->workers = parse_workers("-w", v)) < 0) return -1;
        explicit_w = 1;
        wopt = v;
        continue;
      }
      if (strncmp(a, "--share=", 8) == 0) {
        if ((o->share = parse_share("--share", a + 8)) < 0) return -1;
        given = 1;
        continue;
      }
      if (strncmp(a, "--grace=", 8) == 0) {
        if ((o->grace = parse_grace("--grace", a + 8)) < 0) return -1;
        given = 1;
        continue;
      }
      if (strcmp(a, "--worker-log") == 0) {
        o->worker_log = 1;
        given = 1;
        continue;
      }
      if (strcmp(a, "--help") == 0 || strcmp(a, "--version") == 0) help = 1;
      if (strcmp(a, "-i") == 0) repl = 1;
      if (strcmp(a, "--") == 0) script = j + 1;
      else if (strcmp(a, "-") == 0) script = 0; /* stdin */
      else if ((a[1] == 'e' || a[1] == 'l') && a[2] == '\0' && argv[i + 1])
        argv[j++] = argv[i++]; /* the option; its argument below */
    } else if (script < 0) {
      script = j;
    }
    argv[j++] = argv[i];
  }
  argv[j] = NULL;
  *argc = j;
  if (script >= j || script < 0) script = -1; /* "--" last, or none */
  if (help) { /* --help and --version win, as they do in lasync.c */
    o->workers = 0;
    return 0;
  }
  if (!explicit_w && (env = getenv("LASYNC_WORKERS")) && *env && script > 0
      && !repl) {
    if ((o->workers = parse_workers("LASYNC_WORKERS", env)) < 0) return -1;
    wopt = env;
  }
  if (o->workers == 0) {
    if (given) {
      fprintf(stderr, "lasync: --share, --grace and --worker-log need -w "
              "(or LASYNC_WORKERS)\n");
      return -1;
    }
    return 0;
  }
  if (repl) {
    fprintf(stderr, "lasync: -w %s: workers cannot run the REPL (-i)\n",
            wopt);
    return -1;
  }
  if (script <= 0) {
    fprintf(stderr, "lasync: -w %s: needs a script file (workers cannot "
            "run the REPL or stdin)\n", wopt);
    return -1;
  }
  if (!given) { /* the environment's, unless an option said otherwise */
    if ((env = getenv("LASYNC_SHARE")) && *env &&
        (o->share = parse_share("LASYNC_SHARE", env)) < 0)
      return -1;
    if ((env = getenv("LASYNC_GRACE")) && *env &&
        (o->grace = parse_grace("LASYNC_GRACE", env)) < 0)
      return -1;
  }
  return 0;
}
