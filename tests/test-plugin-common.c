/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* plugins/common, the helpers every storage plugin links: error records
 * and their errno classes, key=value parameters and bounded numbers,
 * object and entry names, the root-only secret file rules (symbolic
 * link, mode, owner, FIFO, size), and the job a request works for:
 * cancellation seen from a thread of no job through the host's token,
 * the fallback on a host without tokens, and back-off that gives up at
 * once when the job is cancelled.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <virtvault-plugin.h>

#include "plugin-err.h"
#include "plugin-file.h"
#include "plugin-job.h"
#include "plugin-name.h"
#include "plugin-param.h"
#include "plugin-check.h"


static void
test_errors (void)
{
  struct plugin_err e = { 0 };

  plugin_err_report (&e);
  CHECK (last_errno == EIO && strcmp (last_msg, "unknown error") == 0);
  CHECK (errno == EIO);
  plugin_err_set (&e, ENOSPC, "target %s is full", "t");
  plugin_err_report (&e);
  CHECK (last_errno == ENOSPC && strcmp (last_msg, "target t is full") == 0);
  CHECK (errno == ENOSPC);
  plugin_error (EEXIST, "x%dy", 7);
  CHECK (last_errno == EEXIST && strcmp (last_msg, "x7y") == 0);
  /* A message is cut at the record's size, never overflows it. */
  plugin_err_set (&e, EIO, "%05000d", 1);
  CHECK (strlen (e.msg) == sizeof e.msg - 1);
  CHECK (plugin_err_transient (ETIMEDOUT) && plugin_err_transient (EAGAIN) &&
         plugin_err_transient (ECONNRESET) &&
         plugin_err_transient (ECONNREFUSED) &&
         plugin_err_transient (EHOSTUNREACH));
  CHECK (!plugin_err_transient (EACCES) && !plugin_err_transient (EIO) &&
         !plugin_err_transient (ENOSPC) && !plugin_err_transient (0));
}

static void
test_params (void)
{
  struct plugin_err e = { 0 };
  unsigned long n = 42;
  size_t klen;

  CHECK (strcmp (plugin_param_value ("region=eu-1", "region"), "eu-1") == 0);
  CHECK (strcmp (plugin_param_value ("region=", "region"), "") == 0);
  CHECK (plugin_param_value ("regions=x", "region") == NULL);
  CHECK (plugin_param_value ("region", "region") == NULL);
  CHECK (strcmp (plugin_param_split ("timeout=5", &klen), "5") == 0 &&
         klen == 7);
  CHECK (strcmp (plugin_param_split ("a=b=c", &klen), "b=c") == 0 &&
         klen == 1);
  CHECK (plugin_param_split ("noequals", &klen) == NULL && klen == 8);

  CHECK (plugin_param_uint ("t", "k", "1", 1, 10, &n, &e) == 0 && n == 1);
  CHECK (plugin_param_uint ("t", "k", "10", 1, 10, &n, &e) == 0 && n == 10);
  n = 42;
  CHECK (plugin_param_uint ("t", "k", "0", 1, 10, &n, &e) == -1 && n == 42);
  CHECK (e.code == EINVAL &&
         strcmp (e.msg, "t target parameter k must be a number from 1 to "
                 "10, not '0'") == 0);
  CHECK (plugin_param_uint ("t", "k", "11", 1, 10, &n, &e) == -1);
  CHECK (plugin_param_uint ("t", "k", "", 1, 10, &n, &e) == -1);
  CHECK (plugin_param_uint ("t", "k", "-1", 0, 10, &n, &e) == -1);
  CHECK (plugin_param_uint ("t", "k", " 5", 1, 10, &n, &e) == -1);
  CHECK (plugin_param_uint ("t", "k", "5x", 1, 10, &n, &e) == -1);
  CHECK (plugin_param_uint ("t", "k", "99999999999999999999999", 1,
                            ~0UL, &n, &e) == -1);
  /* A long value is cut in the message. */
  {
    char big[300];
    memset (big, '9', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK (plugin_param_uint ("t", "k", big, 1, 10, &n, &e) == -1);
    CHECK (strlen (e.msg) < 200);
  }
  CHECK (n == 42);
}

static void
test_names (void)
{
  char comp[300];

  CHECK (plugin_valid_object_name ("a/bcd", 5, 3));
  CHECK (!plugin_valid_object_name ("a/bcde", 6, 3));
  CHECK (plugin_valid_object_name ("a/bcde", 6, 0));
  CHECK (!plugin_valid_object_name ("a/", 2, 0));
  CHECK (!plugin_valid_object_name ("a\x7f", 2, 0));
  /* Only len bytes count: a prefix's directories without its '/'. */
  CHECK (plugin_valid_object_name ("c1/", 2, 255));

  CHECK (plugin_valid_entry_name ("vda.qcow2"));
  CHECK (plugin_valid_entry_name (".hidden"));
  CHECK (!plugin_valid_entry_name (""));
  CHECK (!plugin_valid_entry_name ("."));
  CHECK (!plugin_valid_entry_name (".."));
  CHECK (!plugin_valid_entry_name ("a/b"));
  CHECK (!plugin_valid_entry_name ("a\nb"));
  memset (comp, 'x', 255);
  comp[255] = '\0';
  CHECK (plugin_valid_entry_name (comp));
  comp[255] = 'x';
  comp[256] = '\0';
  CHECK (!plugin_valid_entry_name (comp));
}

static void
write_file (const char *path, const char *text, mode_t mode)
{
  FILE *f = fopen (path, "w");

  CHECK (f != NULL);
  if (f) {
    fputs (text, f);
    fclose (f);
  }
  CHECK (chmod (path, mode) == 0);
}

static void
test_private_file (void)
{
  char dir[] = "/tmp/test-plugin-common.XXXXXX", path[128], link[128];
  char fifo[128], missing[128];
  struct plugin_err e = { 0 };
  char *buf = NULL;
  size_t len = 0;

  CHECK (mkdtemp (dir) != NULL);
  snprintf (path, sizeof path, "%s/key", dir);
  snprintf (link, sizeof link, "%s/link", dir);
  snprintf (fifo, sizeof fifo, "%s/fifo", dir);
  snprintf (missing, sizeof missing, "%s/missing", dir);
  write_file (path, "secret\n", 0600);

  if (geteuid () == 0) {
    CHECK (plugin_read_private_file (path, "identity", 64, &buf, &len,
                                     &e) == 0);
    CHECK (buf && len == 7 && strcmp (buf, "secret\n") == 0);
    plugin_free_private (buf, len);
    buf = NULL;
    CHECK (chmod (path, 0400) == 0);
    CHECK (plugin_read_private_file (path, "identity", 64, &buf, NULL,
                                     &e) == 0);
    plugin_free_secret (buf);
    buf = NULL;
    /* Larger than allowed: refused, never cut. */
    CHECK (plugin_read_private_file (path, "identity", 6, &buf, &len,
                                     &e) == -1);
    CHECK (e.code == EINVAL &&
           strstr (e.msg, "identity ") && strstr (e.msg, "is larger than 6 "
                                                  "bytes"));
  }
  else {
    CHECK (plugin_read_private_file (path, "identity", 64, &buf, &len,
                                     &e) == -1);
    CHECK (e.code == EACCES && strstr (e.msg, "owned by root"));
  }
  CHECK (chmod (path, 0640) == 0);
  CHECK (plugin_read_private_file (path, "S3 credentials file", 64, &buf,
                                   &len, &e) == -1);
  CHECK (e.code == EACCES && strstr (e.msg, "S3 credentials file ") &&
         strstr (e.msg, "must be owned by root and readable only by it") &&
         strstr (e.msg, "mode 0640") && strstr (e.msg, "chmod 600") &&
         strstr (e.msg, "secret") == NULL);
  CHECK (chmod (path, 0604) == 0);
  CHECK (plugin_read_private_file (path, "identity", 64, &buf, &len,
                                   &e) == -1 && e.code == EACCES);
  CHECK (chmod (path, 0600) == 0);
  CHECK (symlink (path, link) == 0);
  CHECK (plugin_read_private_file (link, "identity", 64, &buf, &len,
                                   &e) == -1);
  CHECK (e.code == EACCES && strstr (e.msg, "is a symbolic link; give the "
                                     "path of the file itself"));
  CHECK (plugin_read_private_file (dir, "identity", 64, &buf, &len,
                                   &e) == -1);
  CHECK (e.code == EINVAL && strstr (e.msg, "is not a regular file"));
  /* A FIFO is refused without waiting for a writer. */
  CHECK (mkfifo (fifo, 0600) == 0);
  CHECK (plugin_read_private_file (fifo, "identity", 64, &buf, &len,
                                   &e) == -1);
  CHECK (e.code == EINVAL && strstr (e.msg, "is not a regular file"));
  CHECK (plugin_read_private_file (missing, "identity", 64, &buf, &len,
                                   &e) == -1);
  CHECK (e.code == ENOENT && strstr (e.msg, "cannot open identity "));
  CHECK (buf == NULL);
  plugin_free_secret (NULL);
  plugin_free_private (NULL, 0);
  unlink (fifo);
  unlink (link);
  unlink (path);
  rmdir (dir);
}

static atomic_int job_flag;

static const struct virtvault_host host = {
  ._struct_size = sizeof host, .api_version = VIRTVAULT_PLUGIN_API_VERSION,
  .host_version = "test-plugin-common", .error = virtvault_error,
  .cancelled = test_host_cancelled, .current_job = test_host_current_job,
  .job_cancelled = test_host_job_cancelled,
};

/* A version 2 host from before job tokens: its struct ends at
 * cancelled, whatever lies beyond.
 */
static const struct virtvault_host old_host = {
  ._struct_size = offsetof (struct virtvault_host, current_job),
  .api_version = 2, .host_version = "old", .error = virtvault_error,
  .cancelled = test_host_cancelled, .current_job = test_host_current_job,
  .job_cancelled = test_host_job_cancelled,
};

struct asker {
  const struct plugin_job *job;
  bool cancelled;
  int backoff;
  double secs, end;
  struct plugin_err e;
};

static void *
ask_thread (void *opaque)
{
  struct asker *a = opaque;
  double t0 = test_now ();

  a->cancelled = plugin_job_cancelled (a->job);
  a->backoff = plugin_backoff (a->job, 3, 1000, &a->e);
  a->end = test_now ();
  a->secs = a->end - t0;
  return NULL;
}

static void
test_job (void)
{
  struct plugin_job job, old, none;
  struct asker a = { 0 };
  struct plugin_err e = { 0 };
  pthread_t th;
  double t0;

  test_thread_job = &job_flag;
  plugin_job_capture (&job, &host);
  plugin_job_capture (&old, &old_host);
  plugin_job_capture (&none, NULL);
  CHECK (job.token == &job_flag);
  CHECK (old.token == NULL);
  CHECK (!plugin_job_cancelled (&job) && !plugin_job_cancelled (&old));

  /* Not cancelled: the back-off sleeps its time (20 ms, then 40). */
  t0 = test_now ();
  CHECK (plugin_backoff (&job, 1, 20, &e) == 0);
  CHECK (test_now () - t0 >= 0.020);
  t0 = test_now ();
  CHECK (plugin_backoff (&job, 2, 20, &e) == 0);
  CHECK (test_now () - t0 >= 0.040);

  atomic_store (&job_flag, 1);
  CHECK (plugin_job_cancelled (&job));
  /* The old host's cancelled () answers for this thread's job. */
  CHECK (plugin_job_cancelled (&old));
  CHECK (!plugin_job_cancelled (&none) && !plugin_job_cancelled (NULL));
  t0 = test_now ();
  CHECK (plugin_backoff (&job, 5, 1000, &e) == -1);
  CHECK (e.code == ECANCELED &&
         strcmp (e.msg, "cancelled while waiting to retry") == 0);
  CHECK (test_now () - t0 < 0.5);

  /* From a thread of no job: the token still knows. */
  a.job = &job;
  CHECK (pthread_create (&th, NULL, ask_thread, &a) == 0);
  pthread_join (th, NULL);
  CHECK (a.cancelled && a.backoff == -1 && a.e.code == ECANCELED);
  CHECK (a.secs < 0.5);
  /* Cancelled while waiting: it gives up within a step (50 ms). */
  atomic_store (&job_flag, 0);
  memset (&a, 0, sizeof a);
  a.job = &job;
  CHECK (pthread_create (&th, NULL, ask_thread, &a) == 0);
  {
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    nanosleep (&ts, NULL);
  }
  t0 = test_now ();
  atomic_store (&job_flag, 1);
  pthread_join (th, NULL);
  CHECK (!a.cancelled && a.backoff == -1 && a.e.code == ECANCELED);
  /* It waited until the cancel (its back-off is 4 s), then at most a
   * step and the scheduler's delay.
   */
  CHECK (a.end >= t0 && a.end - t0 < 0.5);
  /* The old host has no token: such a thread cannot know. */
  memset (&a, 0, sizeof a);
  a.job = &old;
  CHECK (pthread_create (&th, NULL, ask_thread, &a) == 0);
  pthread_join (th, NULL);
  CHECK (!a.cancelled && a.backoff == 0);
  atomic_store (&job_flag, 0);
  test_thread_job = NULL;
}

int
main (void)
{
  test_errors ();
  test_params ();
  test_names ();
  test_private_file ();
  test_job ();
  return check_result ("test-plugin-common");
}
