/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Jobs: long work (backup, restore, verify) run by worker threads, with
 * an id, a status, progress in bytes and a cancel.  At most one job per
 * domain runs or waits at a time.
 */
#ifndef VV_JOBS_H
#define VV_JOBS_H

#include <stdint.h>

#include "catalog/catalog.h"
#include "util/progress.h"
#include "util/strutil.h"

#define VV_JOBS_MAX_WORKERS 64

/* The job body: returns 0 on success, -1 with vv_error set on failure.
 * It must poll vv_progress_cancelled(p) and stop (returning -1) when set.
 */
typedef int (*vv_job_fn) (void *arg, struct vv_progress *p);

struct vv_job_spec {
  const char *id;               /* from vv_random_id ("job") */
  const char *kind;             /* "backup" | "restore" | "verify" */
  const char *domain;           /* for display, may be NULL */
  const char *domain_uuid;      /* one job per uuid; NULL = no lock */
  const char *backup_id;        /* may be NULL */
  int64_t owner_uid;
  vv_job_fn run;
  void *arg;
  void (*free_arg) (void *arg); /* called once when the job ends */
  const char *notes;            /* recorded with the job; may be NULL */
};

struct vv_jobs;

struct vv_jobs *vv_jobs_new (struct vv_catalog *c, unsigned workers);
/* Cancels running jobs, waits for the workers, frees.  NULL-safe. */
struct vv_jobs *vv_jobs_free (struct vv_jobs *jobs);

/* Records the job (pending) and queues it.  Fails with VV_ERR_BUSY
 * "domain 'web01' is busy with job job-1a2b3c4d5e6f (backup); wait for it
 * or cancel it with 'virtvault job cancel job-1a2b3c4d5e6f'" when the
 * domain has a job.  On failure arg is NOT freed (the caller still owns it).
 */
int vv_jobs_submit (struct vv_jobs *jobs, const struct vv_job_spec *spec);

/* Asks a pending or running job to stop.  VV_ERR_NOT_FOUND if unknown or
 * not visible to owner_filter; VV_ERR_INVALID if already finished.
 */
int vv_jobs_cancel (struct vv_jobs *jobs, const char *id,
                    int64_t owner_filter);

/* Live progress of a job that is pending or running: 1 and the counters,
 * 0 if the job is not live (read the catalog instead).
 */
int vv_jobs_progress (struct vv_jobs *jobs, const char *id,
                      uint64_t *ret_done, uint64_t *ret_total);

/* Blocks until the job is no longer live (tests, shutdown). */
void vv_jobs_wait (struct vv_jobs *jobs, const char *id);

#endif
