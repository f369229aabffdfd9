/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See plugin-job.h. */
#include <config.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "plugin-job.h"

#define BACKOFF_MAX_MS 8000
#define BACKOFF_STEP_MS 50

/* A host service field exists only if the host's struct is long enough
 * (fields are appended in later versions).
 */
#define HAS_SERVICE(h, field)                                           \
  ((h) && (h)->_struct_size >= offsetof (struct virtvault_host, field) + \
   sizeof (h)->field && (h)->field)

void
plugin_job_capture (struct plugin_job *job, const struct virtvault_host *host)
{
  job->host = host;
  job->token = HAS_SERVICE (host, current_job) ? host->current_job () : NULL;
}

bool
plugin_job_cancelled (const struct plugin_job *job)
{
  const struct virtvault_host *h = job ? job->host : NULL;

  if (h == NULL)
    return false;
  if (HAS_SERVICE (h, job_cancelled))
    return job->token && h->job_cancelled (job->token);
  return HAS_SERVICE (h, cancelled) && h->cancelled ();
}

int
plugin_backoff (const struct plugin_job *job, unsigned attempt,
                unsigned base_ms, struct plugin_err *e)
{
  uint64_t ms = base_ms;
  unsigned r = 0;

  if (attempt > 1)
    ms <<= (attempt - 1 > 10 ? 10 : attempt - 1);
  if (ms > BACKOFF_MAX_MS)
    ms = BACKOFF_MAX_MS;
  /* Jitter, so that parallel requests that failed together do not all
   * come back at the same moment.
   */
  if (getrandom (&r, sizeof r, GRND_NONBLOCK) != sizeof r)
    r = 0;
  ms += ms / 4 * (r % 1000) / 1000;
  for (;;) {
    uint64_t step = ms < BACKOFF_STEP_MS ? ms : BACKOFF_STEP_MS;
    struct timespec ts = { 0, (long) step * 1000000L };

    if (plugin_job_cancelled (job)) {
      plugin_err_set (e, ECANCELED, "cancelled while waiting to retry");
      return -1;
    }
    if (ms == 0)
      return 0;
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
      ;
    ms -= step;
  }
}
