/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtvaultd: owns the catalog and the jobs, serves the JSON API on a
 * UNIX socket.  Everything else is in libvirtvault; this file is startup,
 * daemonizing, signals and logging.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "catalog/catalog.h"
#include "engine/engine.h"
#include "jobs/jobs.h"
#include "restore/restore.h"
#include "scheduler/schedule.h"
#include "scheduler/scheduler.h"
#include "target/target.h"
#include "util/clock.h"
#include "util/fault.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/log.h"
#include "util/strutil.h"
#include "daemon/config.h"

#define STOPPED_REASON "virtvaultd stopped while this job was running"
#define STOPPED_BACKUP_REASON "virtvaultd stopped while this backup was running"

/* In background mode: the write end of the pipe the parent waits on; a
 * fatal error goes there so the parent prints it on the user's terminal.
 */
static int ready_fd = -1;

static void
log_line (const char *line)
{
  char now[VV_TIME_MAX];

  vv_now_utc (now);
  /* One fprintf per line: glibc locks the stream for the call. */
  fprintf (stderr, "%s virtvaultd[%ld]: %s\n", now, (long) getpid (), line);
}

static void
logf_ (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static void
logf_ (const char *fmt, ...)
{
  char line[2048];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  log_line (line);
}

/* Lines from below the daemon (storage plugins). */
static void
log_sink (enum vv_log_level level, const char *line)
{
  logf_ ("%s%s", level == VV_LOG_WARNING ? "warning: " : "", line);
}

/* Prints the current error once and exits 1. */
static void __attribute__ ((noreturn))
fatal (void)
{
  const char *msg = vv_get_error ();

  if (msg[0] == '\0')
    msg = "failed without an error message";
  if (ready_fd >= 0) {
    dprintf (ready_fd, "%s", msg);
    close (ready_fd);
  }
  else
    fprintf (stderr, "virtvaultd: %s\n", msg);
  exit (EXIT_FAILURE);
}

static void
usage (FILE *f)
{
  fprintf (f,
"Usage: virtvaultd [OPTION]...\n"
"The virtvault daemon: backs up libvirt/QEMU domains and serves the JSON API\n"
"(docs/api.md) on a UNIX socket.\n"
"\n"
"  --config FILE     read FILE (default %s, if it exists)\n"
"  --state-dir DIR   catalog, scratch files and the 'local' target\n"
"                    (default %s)\n"
"  --socket PATH     the API socket (default %s)\n"
"  --connect URI     libvirt connection URI (default %s)\n"
"  --workers N       jobs running at once, 1 to %d (default %d)\n"
"  --foreground      do not detach; log to stderr\n"
"  --test-clock[=TIME]  a clock that moves only when told (virtvault debug\n"
"                    clock), starting now or at TIME (2026-11-24T01:00:00Z);\n"
"                    for tests only\n"
"  --check-config FILE  read FILE as --config does, check every value and\n"
"                    print the effective configuration (FILE, the command\n"
"                    line and the defaults), then exit\n"
"  --print-config-keys  print the keys a config file may set, then exit\n"
"  --help            show this help\n"
"  --version         show the version\n"
"\n"
"The command line overrides the config file.  Without --foreground the daemon\n"
"detaches once the socket accepts connections and logs to\n"
"<state-dir>/virtvaultd.log.\n",
           VV_DEFAULT_CONFIG, VV_DEFAULT_STATE_DIR, VV_DEFAULT_SOCKET,
           VV_DEFAULT_CONNECT, VV_JOBS_MAX_WORKERS, VV_DEFAULT_WORKERS);
}

struct cmdline {
  const char *config;
  struct vv_daemon_config over;  /* what the command line set */
  bool foreground;
  bool check_config;
  bool test_clock;
  time_t test_clock_start;
};

static void
parse_cmdline (int argc, char **argv, struct cmdline *cl)
{
  enum { OPT_CONFIG = 256, OPT_STATE, OPT_SOCKET, OPT_CONNECT, OPT_WORKERS,
         OPT_FOREGROUND, OPT_HELP, OPT_VERSION, OPT_TEST_CLOCK,
         OPT_CHECK_CONFIG, OPT_PRINT_CONFIG_KEYS };
  static const struct option opts[] = {
    { "config", required_argument, NULL, OPT_CONFIG },
    { "state-dir", required_argument, NULL, OPT_STATE },
    { "socket", required_argument, NULL, OPT_SOCKET },
    { "connect", required_argument, NULL, OPT_CONNECT },
    { "workers", required_argument, NULL, OPT_WORKERS },
    { "foreground", no_argument, NULL, OPT_FOREGROUND },
    { "test-clock", optional_argument, NULL, OPT_TEST_CLOCK },
    { "check-config", required_argument, NULL, OPT_CHECK_CONFIG },
    { "print-config-keys", no_argument, NULL, OPT_PRINT_CONFIG_KEYS },
    { "help", no_argument, NULL, OPT_HELP },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
  };
  int c;

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case OPT_CONFIG:
      cl->config = optarg;
      break;
    case OPT_CHECK_CONFIG:
      cl->config = optarg;
      cl->check_config = true;
      break;
    case OPT_PRINT_CONFIG_KEYS:
      vv_daemon_config_print_keys (stdout);
      exit (EXIT_SUCCESS);
    case OPT_STATE:
      free (cl->over.state_dir);
      if (vv_daemon_parse_path ("--state-dir", optarg, PATH_MAX - 256,
                                &cl->over.state_dir) == -1)
        fatal ();
      break;
    case OPT_SOCKET:
      free (cl->over.socket);
      if (vv_daemon_parse_path ("--socket", optarg, 107,
                                &cl->over.socket) == -1)
        fatal ();
      break;
    case OPT_CONNECT:
      free (cl->over.connect);
      cl->over.connect = vv_strdup (optarg);
      if (cl->over.connect == NULL)
        fatal ();
      break;
    case OPT_WORKERS:
      if (vv_daemon_parse_workers ("--workers", optarg,
                                   &cl->over.workers) == -1)
        fatal ();
      break;
    case OPT_FOREGROUND:
      cl->foreground = true;
      break;
    case OPT_TEST_CLOCK:
      cl->test_clock = true;
      cl->test_clock_start = time (NULL);
      if (optarg && vv_parse_time_utc (optarg, &cl->test_clock_start) == -1) {
        vv_error_prefix ("--test-clock: ");
        fatal ();
      }
      break;
    case OPT_HELP:
      usage (stdout);
      exit (EXIT_SUCCESS);
    case OPT_VERSION:
      printf ("virtvaultd %s\n", PACKAGE_VERSION);
      exit (EXIT_SUCCESS);
    default:
      usage (stderr);
      exit (EXIT_FAILURE);
    }
  }
  if (optind < argc) {
    fprintf (stderr, "virtvaultd: unexpected argument '%s'; see --help\n",
             argv[optind]);
    exit (EXIT_FAILURE);
  }
}

/* The config file, then the command line on top, then the defaults. */
static void
load_config (struct cmdline *cl, struct vv_daemon_config *cfg)
{
  const char *path = cl->config;

  if (path == NULL && access (VV_DEFAULT_CONFIG, F_OK) == 0)
    path = VV_DEFAULT_CONFIG;
  if (path && vv_daemon_config_load (cfg, path) == -1)
    fatal ();
  if (cl->over.state_dir) {
    free (cfg->state_dir);
    cfg->state_dir = TAKE_PTR (cl->over.state_dir);
  }
  if (cl->over.socket) {
    free (cfg->socket);
    cfg->socket = TAKE_PTR (cl->over.socket);
  }
  if (cl->over.connect) {
    free (cfg->connect);
    cfg->connect = TAKE_PTR (cl->over.connect);
  }
  if (cl->over.workers)
    cfg->workers = cl->over.workers;
  if (vv_daemon_config_defaults (cfg) == -1)
    fatal ();
}

/* Forks; the parent waits until the child serves (exit 0) or reports
 * why it could not (exit 1).  Returns in the child.
 */
static void
daemonize_early (void)
{
  int fds[2];
  pid_t pid;

  if (pipe2 (fds, O_CLOEXEC) == -1) {
    vv_error_errno (errno, "pipe");
    fatal ();
  }
  fflush (NULL);
  pid = fork ();
  if (pid == -1) {
    vv_error_errno (errno, "fork");
    fatal ();
  }
  if (pid > 0) {
    char msg[4096];
    size_t len = 0;
    ssize_t r;

    close (fds[1]);
    while (len < sizeof msg - 1
           && ((r = read (fds[0], msg + len, sizeof msg - 1 - len)) > 0
               || (r == -1 && errno == EINTR)))
      if (r > 0)
        len += r;
    msg[len] = '\0';
    if (strcmp (msg, "ready") == 0)
      _exit (EXIT_SUCCESS);
    fprintf (stderr, "virtvaultd: %s\n",
             len ? msg : "the daemon exited during startup");
    _exit (EXIT_FAILURE);
  }
  close (fds[0]);
  ready_fd = fds[1];
  if (setsid () == -1) {
    vv_error_errno (errno, "setsid");
    fatal ();
  }
}

/* stdin from /dev/null, stdout and stderr to the log, then tell the
 * parent we are serving.
 */
static void
daemonize_ready (const char *state_dir)
{
  _cleanup_free_ char *log_path = vv_printf ("%s/virtvaultd.log", state_dir);
  int null_fd, log_fd;

  if (log_path == NULL)
    fatal ();
  null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null_fd == -1 || log_fd == -1) {
    vv_error_errno (errno, "cannot open %s", log_fd == -1 ? log_path
                    : "/dev/null");
    fatal ();
  }
  if (dup2 (null_fd, STDIN_FILENO) == -1
      || dup2 (log_fd, STDOUT_FILENO) == -1
      || dup2 (log_fd, STDERR_FILENO) == -1) {
    vv_error_errno (errno, "redirecting output to %s", log_path);
    fatal ();
  }
  close (null_fd);
  close (log_fd);
  if (chdir ("/") == -1) {
    vv_error_errno (errno, "chdir /");
    fatal ();
  }
  if (write (ready_fd, "ready", 5) != 5) {
    /* The parent is gone; nobody waits for us, carry on. */
  }
  close (ready_fd);
  ready_fd = -1;
}

/* Creates dir (and its parents) mode 0711: QEMU must be able to reach
 * the NBD sockets under <state>/run.  An existing directory keeps its mode.
 */
static int
make_dir (const char *dir)
{
  struct stat st;

  if (stat (dir, &st) == 0) {
    if (!S_ISDIR (st.st_mode)) {
      vv_error_code (VV_ERR_INVALID, "%s is not a directory", dir);
      return -1;
    }
    return 0;
  }
  if (vv_mkdir_p (dir, 0711) == -1)
    return -1;
  if (chmod (dir, 0711) == -1) {
    vv_error_errno (errno, "cannot set the mode of %s", dir);
    return -1;
  }
  return 0;
}

/* Held for the daemon's life: a second daemon on the same state
 * directory would share the catalog and scratch files.
 */
static int
lock_state_dir (const char *state_dir)
{
  _cleanup_free_ char *path = vv_printf ("%s/virtvaultd.lock", state_dir);
  _cleanup_close_ int fd = -1;
  char pid[32];
  int n;

  if (path == NULL)
    return -1;
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd == -1) {
    vv_error_errno (errno, "cannot open %s", path);
    return -1;
  }
  if (flock (fd, LOCK_EX | LOCK_NB) == -1) {
    if (errno == EWOULDBLOCK) {
      ssize_t r = pread (fd, pid, sizeof pid - 1, 0);
      pid[r > 0 ? r : 0] = '\0';
      pid[strcspn (pid, "\n")] = '\0';
      vv_error_code (VV_ERR_BUSY,
                     "another virtvaultd (pid %s) is using state directory "
                     "%s; stop it first or use another --state-dir",
                     pid[0] ? pid : "unknown", state_dir);
    }
    else
      vv_error_errno (errno, "cannot lock %s", path);
    return -1;
  }
  n = snprintf (pid, sizeof pid, "%ld\n", (long) getpid ());
  if (ftruncate (fd, 0) == -1 || pwrite (fd, pid, n, 0) != n) {
    vv_error_errno (errno, "cannot write %s", path);
    return -1;
  }
  return TAKE_FD (fd);
}

static int
ensure_local_target (struct vv_catalog *c, const char *state_dir)
{
  _cleanup_free_ char *dir = vv_printf ("%s/backups", state_dir);
  _cleanup_free_ char *url = NULL;
  struct vv_target_rec *t;
  char now[VV_TIME_MAX];

  if (dir == NULL)
    return -1;
  if (vv_mkdir_p (dir, 0700) == -1)
    return -1;
  t = vv_catalog_target_get (c, "local");
  if (t) {
    vv_target_rec_free (t);
    return 0;
  }
  if (vv_get_error_code () != VV_ERR_NOT_FOUND)
    return -1;
  url = vv_printf ("file://%s", dir);
  if (url == NULL)
    return -1;
  vv_now_utc (now);
  struct vv_target_rec rec = {
    .name = (char *) "local", .url = url, .created_at = now,
  };
  if (vv_catalog_target_add (c, &rec) == -1)
    return -1;
  logf_ ("created target 'local' at %s", url);
  return 0;
}

/* What a previous daemon left unfinished fails now, with the reason. */
static void
recover (struct vv_engine *e)
{
  struct vv_job_rec **jv = NULL;
  struct vv_backup_rec **bv = NULL;
  size_t nj = 0, nb = 0;

  if (vv_catalog_job_list_unfinished (e->catalog, &jv, &nj) == -1)
    logf_ ("cannot list unfinished jobs: %s", vv_get_error ());
  for (size_t i = 0; i < nj; i++) {
    if (vv_catalog_job_set_status (e->catalog, jv[i]->id, "failed",
                                   STOPPED_REASON) == -1)
      logf_ ("cannot mark job %s failed: %s", jv[i]->id, vv_get_error ());
    else
      logf_ ("job %s (%s) failed: %s", jv[i]->id, jv[i]->kind,
             STOPPED_REASON);
  }
  vv_job_recs_free (jv, nj);

  if (vv_catalog_backup_list_unfinished (e->catalog, &bv, &nb) == -1)
    logf_ ("cannot list unfinished backups: %s", vv_get_error ());
  for (size_t i = 0; i < nb; i++) {
    _cleanup_free_ char *note = NULL;
    int r = vv_backup_recover (e, bv[i], STOPPED_BACKUP_REASON, &note);

    if (note)
      logf_ ("backup %s of '%s': a manifest was found but not taken: %s",
             bv[i]->id, bv[i]->domain, note);
    if (r == VV_RECOVER_COMPLETED) {
      logf_ ("backup %s of '%s' was complete on its target (the daemon "
             "stopped before recording it): recorded completed",
             bv[i]->id, bv[i]->domain);
      /* Its job was failed above with the others; it did its work. */
      if (bv[i]->job_id
          && vv_catalog_job_set_status (e->catalog, bv[i]->job_id,
                                        "completed", NULL) == -1)
        logf_ ("cannot mark job %s completed: %s", bv[i]->job_id,
               vv_get_error ());
    }
    else if (r == VV_RECOVER_FAILED)
      logf_ ("backup %s of '%s' failed and was cleaned up: %s", bv[i]->id,
             bv[i]->domain, STOPPED_BACKUP_REASON);
    else if (r == VV_RECOVER_PENDING)
      logf_ ("backup %s of '%s' failed: %s; its cleanup is not finished and "
             "will be retried", bv[i]->id, bv[i]->domain,
             STOPPED_BACKUP_REASON);
    else {
      logf_ ("cannot clean up backup %s of '%s': %s", bv[i]->id,
             bv[i]->domain, vv_get_error ());
      /* At least never show it as still running. */
      _cleanup_free_ char *reason =
        vv_printf ("%s; cleaning up failed: %s", STOPPED_BACKUP_REASON,
                   vv_get_error ());
      vv_catalog_backup_set_status (e->catalog, bv[i]->id, "failed",
                                    reason ? reason : STOPPED_BACKUP_REASON);
    }
  }
  vv_backup_recs_free (bv, nb);

  /* In-place restores interrupted before, during or after their renames. */
  vv_restore_in_place_recover (e, log_line);

  /* Cleanups earlier daemons could not finish. */
  unsigned done = 0, left = 0;
  if (vv_backup_retry_cleanups (e, NULL, &done, &left) == -1)
    logf_ ("cannot retry pending cleanups: %s", vv_get_error ());
  else if (done || left)
    logf_ ("pending cleanups of failed backups: %u finished, %u still left",
           done, left);
}

/* ---- pruning old catalog rows: at start-up, then every hour ----
 *
 * The hour is the daemon's clock, so the test clock drives it too.
 */
#define PRUNE_INTERVAL_S 3600

struct pruner {
  pthread_t thread;
  pthread_mutex_t lock;
  bool stopping;
  struct vv_catalog *catalog;
  struct vv_prune_ages ages;
};

static void
prune_now (struct pruner *p)
{
  struct vv_prune_counts n;

  if (vv_catalog_prune (p->catalog, &p->ages, vv_clock_now (), &n) == -1)
    logf_ ("cannot prune old rows of the catalog: %s", vv_get_error ());
  else if (n.audit || n.jobs || n.runs)
    logf_ ("pruned %" PRIu64 " audit rows, %" PRIu64 " jobs and %" PRIu64
           " policy runs older than %u, %u and %u days (0: kept)", n.audit,
           n.jobs, n.runs, p->ages.audit_days, p->ages.job_days,
           p->ages.run_days);
}

static void *
prune_loop (void *arg)
{
  struct pruner *p = arg;
  time_t next = 0;

  for (;;) {
    uint64_t gen = vv_clock_generation ();
    time_t now;

    {
      VV_LOCK_GUARD (&p->lock);
      if (p->stopping)
        break;
    }
    now = vv_clock_now ();
    /* (The test clock may also have been set back.) */
    if (now >= next || next - now > PRUNE_INTERVAL_S) {
      prune_now (p);
      next = now + PRUNE_INTERVAL_S;
    }
    vv_clock_sleep_until (next, gen);
  }
  return NULL;
}

static int
pruner_start (struct pruner *p)
{
  int r;

  pthread_mutex_init (&p->lock, NULL);
  r = pthread_create (&p->thread, NULL, prune_loop, p);
  if (r != 0) {
    vv_error_errno (r, "cannot start the thread that prunes the catalog");
    return -1;
  }
  return 0;
}

static void
pruner_stop (struct pruner *p)
{
  {
    VV_LOCK_GUARD (&p->lock);
    p->stopping = true;
  }
  vv_clock_kick ();
  pthread_join (p->thread, NULL);
  pthread_mutex_destroy (&p->lock);
}

int
main (int argc, char **argv)
{
  struct cmdline cl = { 0 };
  struct vv_daemon_config cfg = { 0 };
  _cleanup_free_ char *run_dir = NULL, *catalog_path = NULL;
  struct vv_catalog *catalog;
  struct vv_jobs *jobs;
  struct vv_scheduler *scheduler;
  struct vv_api_server *server;
  sigset_t sigs;
  int lock_fd, sig;

  /* Before any thread exists: schedules switch TZ at run time. */
  vv_tz_init ();
  /* The data path allocates and frees buffers of 1 to 16 MiB on many
   * threads.  glibc's default grows its mmap threshold to the largest
   * buffer freed and keeps freed memory in per-thread arenas, so after
   * its first jobs the daemon idled at about 90 MiB (bench/targets.sh,
   * docs/benchmarks.md); with buffers of 1 MiB and more always mapped
   * and unmapped it idles at about 25 MiB.
   */
  mallopt (M_MMAP_THRESHOLD, 1024 * 1024);
  vv_log_set_sink (log_sink);
  parse_cmdline (argc, argv, &cl);
  load_config (&cl, &cfg);
  if (cl.check_config) {
    /* Whether default_target exists is known only to the catalog: the
     * daemon checks it at start.
     */
    if (vv_daemon_config_print (&cfg, stdout) == -1)
      fatal ();
    vv_daemon_config_clear (&cfg);
    return EXIT_SUCCESS;
  }
  /* Fault points (util/fault.h) are for test daemons only. */
  if (cl.test_clock) {
    vv_clock_enable_test (cl.test_clock_start);
    vv_fault_enable ();
  }

  if (!cl.foreground)
    daemonize_early ();

  /* Every thread started from here on inherits this mask, so the
   * signals are only ever taken by sigwait below.
   */
  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&sigs);
  sigaddset (&sigs, SIGTERM);
  sigaddset (&sigs, SIGINT);
  pthread_sigmask (SIG_BLOCK, &sigs, NULL);

  /* The catalog holds target params, which may be credentials: what the
   * daemon creates is private unless it says otherwise.
   */
  umask (077);
  run_dir = vv_printf ("%s/run", cfg.state_dir);
  catalog_path = vv_printf ("%s/catalog.db", cfg.state_dir);
  if (run_dir == NULL || catalog_path == NULL
      || make_dir (cfg.state_dir) == -1 || make_dir (run_dir) == -1)
    fatal ();
  lock_fd = lock_state_dir (cfg.state_dir);
  if (lock_fd == -1)
    fatal ();

  catalog = vv_catalog_open (catalog_path);
  if (catalog == NULL)
    fatal ();
  if (ensure_local_target (catalog, cfg.state_dir) == -1) {
    vv_error_prefix ("setting up target 'local': ");
    fatal ();
  }
  /* default_target is the default until an admin marks one in the
   * catalog (virtvault target set-default); only then may it be absent.
   */
  _cleanup_free_ char *marked = NULL;
  if (vv_catalog_target_get_default (catalog, &marked) == -1)
    fatal ();
  struct vv_target_rec *dt = marked ? NULL
    : vv_catalog_target_get (catalog, cfg.default_target);
  if (dt == NULL && marked == NULL) {
    if (vv_get_error_code () == VV_ERR_NOT_FOUND)
      vv_error_code (VV_ERR_INVALID,
                     "default_target '%s' does not exist: start virtvaultd "
                     "without it, add the target with 'virtvault target add "
                     "%s --url URL', then set it again", cfg.default_target,
                     cfg.default_target);
    fatal ();
  }
  vv_target_rec_free (dt);

  struct vv_engine engine = {
    .libvirt_uri = cfg.connect,
    .state_dir = cfg.state_dir,
    .catalog = catalog,
    .default_target = cfg.default_target,
    .max_chain = cfg.max_chain,
  };
  recover (&engine);
  vv_backup_finish_deletes (&engine, logf_);

  jobs = vv_jobs_new (catalog, cfg.workers);
  if (jobs == NULL)
    fatal ();
  struct vv_scheduler_config scfg = {
    .engine = &engine,
    .jobs = jobs,
    .max_concurrent = cfg.scheduler_max_concurrent,
    .manual_limit = cfg.manual_limit,
    .log = log_line,
  };
  scheduler = vv_scheduler_new (&scfg);
  if (scheduler == NULL)
    fatal ();
  struct vv_api_context ctx = {
    .engine = &engine,
    .jobs = jobs,
    .admin_uids = cfg.admin_uids,
    .n_admin_uids = cfg.n_admin_uids,
    .log = log_line,
    .scheduler = scheduler,
    .manual_limit = cfg.manual_limit,
    .connections_per_uid = cfg.connections_per_uid,
  };
  struct pruner pruner = {
    .catalog = catalog,
    .ages = { .audit_days = cfg.retention_days[0],
              .job_days = cfg.retention_days[1],
              .run_days = cfg.retention_days[2] },
  };
  if (pruner_start (&pruner) == -1)
    fatal ();
  server = vv_api_start (cfg.socket, &ctx);
  if (server == NULL)
    fatal ();
  if (vv_scheduler_start (scheduler) == -1)
    fatal ();

  if (!cl.foreground)
    daemonize_ready (cfg.state_dir);
  logf_ ("virtvaultd %s serving %s (state %s, libvirt %s, %u workers)",
         PACKAGE_VERSION, cfg.socket, cfg.state_dir, cfg.connect,
         cfg.workers);
  if (cl.test_clock) {
    char now[VV_TIME_MAX];
    vv_now_utc (now);
    logf_ ("test clock enabled, standing at %s", now);
  }

  do {
    if (sigwait (&sigs, &sig) != 0)
      sig = SIGTERM;
  } while (sig != SIGTERM && sig != SIGINT);

  logf_ ("stopping on %s: cancelling running jobs", strsignal (sig));
  /* Requests in flight finish first: they may still submit jobs. */
  vv_api_stop (server);
  vv_scheduler_stop (scheduler);
  pruner_stop (&pruner);
  vv_jobs_free (jobs);
  vv_scheduler_free (scheduler);
  vv_catalog_close (catalog);
  vv_plugins_unload_all ();
  close (lock_fd);
  logf_ ("stopped");
  vv_daemon_config_clear (&cfg);
  return EXIT_SUCCESS;
}
