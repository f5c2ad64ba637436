/*
** supervisor.h — lasync -w N: the supervisor process that starts N
** workers running the script, restarts those that die, stops them
** gracefully and restarts them one at a time (see supervisor.c).
*/
#ifndef LASYNC_SUPERVISOR_H
#define LASYNC_SUPERVISOR_H

#define SUPERVISOR_MAX_WORKERS 1024 /* the most -w takes */

typedef struct supervisor_opts {
  int workers;     /* N; 0: not worker mode */
  int share;       /* LX_SHARE_REUSEPORT or LX_SHARE_SOCKET */
  double grace;    /* seconds between SIGTERM and SIGKILL */
  int worker_log;  /* prefix the workers' lines with their id */
} supervisor_opts;

/*
** Take the supervisor's options (-w N, --share=, --grace=, --worker-log)
** and LASYNC_WORKERS, LASYNC_SHARE, LASYNC_GRACE out of argv, in place
** (*argc shrinks), into o. 0 on success, else -1 after printing why.
*/
int supervisor_parse(int *argc, char **argv, supervisor_opts *o);

/* Run the supervisor with the workers' argv; returns the exit status. */
int supervisor_main(const supervisor_opts *o, int argc, char **argv);

#endif
