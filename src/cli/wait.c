/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* Following a job to its end: polling, the progress bar, and Ctrl-C
 * turned into a cancel of the job rather than an abandoned one.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/strutil.h"

/* How often the job is asked for its progress; --wait returns at most
 * this long after the job ended (200 ms cost a backup 0.1 s on average).
 */
#define POLL_INTERVAL_NS (50 * 1000 * 1000L)

static void
wait_signals (sigset_t *set)
{
  sigemptyset (set);
  sigaddset (set, SIGINT);
  sigaddset (set, SIGTERM);
}

/* Blocked, the signals stay pending until cli_wait_job takes them with
 * sigtimedwait, which is also its sleep between polls: no handler and no
 * global flag are needed.
 */
void
cli_block_signals (void)
{
  sigset_t set;

  wait_signals (&set);
  sigprocmask (SIG_BLOCK, &set, NULL);
}

static bool
is_final (const char *status)
{
  return status && (strcmp (status, "completed") == 0 ||
                    strcmp (status, "failed") == 0 ||
                    strcmp (status, "cancelled") == 0);
}

static int
request_cancel (struct cli *cli, const char *esc_id)
{
  _cleanup_free_ char *path = vv_printf ("/v1/jobs/%s/cancel", esc_id);
  int r;

  if (path == NULL)
    return CLI_EXIT_FAILED;
  r = cli_request (cli, "POST", path, NULL, NULL);
  /* The job may have ended meanwhile; the next poll tells. */
  if (r == CLI_EXIT_FAILED) {
    vv_clear_error ();
    r = CLI_EXIT_OK;
  }
  return r;
}

static int
final_status (json_object *job, const char *what, int signo,
              json_object **ret_job)
{
  const char *status = cli_get_str (job, "status");
  const char *error = cli_get_str (job, "error");

  if (signo) {
    if (strcmp (status, "completed") == 0)
      vv_error_code (VV_ERR_CANCELLED, "interrupted, but %s had already "
                     "completed", what);
    else
      vv_error_code (VV_ERR_CANCELLED, "interrupted: %s %s", what,
                     strcmp (status, "cancelled") == 0 ? "cancelled"
                     : "failed while being cancelled");
    return 128 + signo;
  }
  if (strcmp (status, "completed") == 0) {
    *ret_job = json_object_get (job);
    return CLI_EXIT_OK;
  }
  if (strcmp (status, "cancelled") == 0)
    vv_error_code (VV_ERR_CANCELLED, "%s was cancelled%s%s", what,
                   error ? ": " : "", error ? error : "");
  else
    vv_error ("%s failed: %s", what, error ? error : "the daemon gave no "
              "reason; see its log");
  return CLI_EXIT_FAILED;
}

int
cli_wait_job (struct cli *cli, const char *job_id, const char *what,
              json_object **ret_job)
{
  _cleanup_progress_ struct cli_progress *bar = cli_progress_new (cli);
  _cleanup_free_ char *esc = cli_escape (job_id);
  _cleanup_free_ char *path = NULL;
  const struct timespec interval = { 0, POLL_INTERVAL_NS };
  sigset_t set;
  int signo = 0, r;

  if (esc == NULL || (path = vv_printf ("/v1/jobs/%s", esc)) == NULL)
    return CLI_EXIT_FAILED;
  wait_signals (&set);

  for (;;) {
    _cleanup_json_ json_object *job = NULL;
    int sig;

    if ((r = cli_request (cli, "GET", path, NULL, &job)) != CLI_EXIT_OK) {
      cli_progress_clear (bar);
      return r;
    }
    if (cli_get_str (job, "status") == NULL) {
      cli_progress_clear (bar);
      vv_error ("virtvaultd answered GET %s without a job status", path);
      return CLI_EXIT_FAILED;
    }
    if (is_final (cli_get_str (job, "status"))) {
      cli_progress_clear (bar);
      return final_status (job, what, signo, ret_job);
    }
    cli_progress_update (bar, cli_get_int (job, "bytes_done", 0),
                         cli_get_int (job, "bytes_total", 0));

    sig = sigtimedwait (&set, NULL, &interval);
    if (sig <= 0)
      continue;
    cli_progress_clear (bar);
    if (signo) {
      vv_error_code (VV_ERR_CANCELLED, "stopped waiting; job %s is being "
                     "cancelled (see 'virtvault job show %s')",
                     job_id, job_id);
      return 128 + sig;
    }
    signo = sig;
    fprintf (stderr, "virtvault: cancelling job %s; press Ctrl-C again "
             "to stop waiting\n", job_id);
    if ((r = request_cancel (cli, esc)) != CLI_EXIT_OK)
      return r;
  }
}
