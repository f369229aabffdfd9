/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cancellation of the job a plugin works for, and back-off that honours
 * it.
 *
 * The host's cancelled() answers for the job of the calling thread only:
 * on a thread the plugin started itself (S3 part uploads) it says 0.  So
 * a plugin captures the job on the host's thread, when the work starts
 * (put_begin, read_open, or any callback), and asks about that job from
 * whichever thread does the work.  Hosts before job tokens (see
 * virtvault-plugin.h) fall back to cancelled() of the calling thread.
 */
#ifndef VV_PLUGIN_JOB_H
#define VV_PLUGIN_JOB_H

#include <stdbool.h>

#include <virtvault-plugin.h>

#include "plugin-err.h"

struct plugin_job {
  const struct virtvault_host *host;    /* NULL: never cancelled */
  void *token;                          /* host->current_job (), or NULL */
};

/* The job the calling thread works for (host may be NULL). */
void plugin_job_capture (struct plugin_job *job,
                         const struct virtvault_host *host);

/* Whether that job was cancelled; callable from any thread while the
 * stream or read handle the job was captured for is open.
 */
bool plugin_job_cancelled (const struct plugin_job *job);

/* Waits before try number attempt (1 = the first retry): base_ms <<
 * (attempt - 1), at most 8 s, plus up to 25 % random jitter, asking
 * every 50 ms whether job was cancelled (job may be NULL).  -1 with e
 * set (ECANCELED) if it was.
 */
int plugin_backoff (const struct plugin_job *job, unsigned attempt,
                    unsigned base_ms, struct plugin_err *e);

#endif
