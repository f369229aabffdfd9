/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* For test programs that run plugin code without the daemon (they load a
 * plugin or link plugins/common): the host's virtvault_error, keeping the
 * calling thread's last error and its errno class, and CHECK, which
 * counts failures and shows that error.  Include it in one file of the
 * program.
 */
#ifndef VV_TESTS_PLUGIN_CHECK_H
#define VV_TESTS_PLUGIN_CHECK_H

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static int failures;
static __thread int last_errno;
static __thread char last_msg[2048];

#define CHECK(cond) do {                                                \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n  last error (errno "  \
               "%d): %s\n", __FILE__, __LINE__, #cond, last_errno,      \
               last_msg);                                               \
      failures++;                                                       \
    }                                                                   \
  } while (0)

/* Exported for the plugins the program loads (-export-dynamic). */
__attribute__ ((visibility ("default"))) void
virtvault_error (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

__attribute__ ((visibility ("default"))) void
virtvault_error (const char *fmt, ...)
{
  va_list ap;

  last_errno = errno;
  va_start (ap, fmt);
  vsnprintf (last_msg, sizeof last_msg, fmt, ap);
  va_end (ap);
}

/* Jobs as the daemon has them: a cancel flag per job, and the job each
 * thread works for (none on threads a plugin or the test starts).  A
 * host's cancelled, current_job and job_cancelled services.
 */
static __thread atomic_int *test_thread_job;

static inline int
test_host_cancelled (void)
{
  return test_thread_job && atomic_load (test_thread_job);
}

static inline void *
test_host_current_job (void)
{
  return test_thread_job;
}

static inline int
test_host_job_cancelled (void *job)
{
  return job && atomic_load ((atomic_int *) job);
}

/* Seconds on the monotonic clock. */
static inline double
test_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* main's exit status: 1 if a check failed. */
static inline int
check_result (const char *program)
{
  if (failures) {
    fprintf (stderr, "%s: %d checks failed\n", program, failures);
    return 1;
  }
  return 0;
}

#endif
