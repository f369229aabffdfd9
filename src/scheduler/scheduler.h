/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduler inside virtvaultd: one thread that sleeps on the clock
 * (util/clock.h) until the next run of any active policy x attached
 * instance is due, then submits a backup job for it.  After a run it
 * applies the policy's retention.  docs/scheduling.md is the user's view.
 *
 * What it decides is computed by the pure functions of schedule.h and
 * retention.h; this file only reads the catalog, submits jobs and records
 * runs.
 */
#ifndef VV_SCHEDULER_SCHEDULER_H
#define VV_SCHEDULER_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "engine/engine.h"
#include "jobs/jobs.h"
#include "scheduler/retention.h"
#include "scheduler/schedule.h"

#define VV_SCHEDULER_DEFAULT_CONCURRENT 2
#define VV_SCHEDULER_MAX_CONCURRENT 64
/* A failed run is retried this many times, after 5, 15, 45 minutes. */
#define VV_SCHEDULER_RETRIES 3

struct vv_scheduler;

struct vv_scheduler_config {
  struct vv_engine *engine;
  struct vv_jobs *jobs;
  unsigned max_concurrent;      /* 0 = the default */
  unsigned manual_limit;        /* manual backups per instance; 0 = none */
  void (*log) (const char *line);       /* may be NULL */
};

struct vv_scheduler *vv_scheduler_new (const struct vv_scheduler_config *cfg);
/* Starts the thread; the first pass runs what was missed while the
 * daemon was down (once per instance).
 */
int vv_scheduler_start (struct vv_scheduler *s);
/* Stops the thread (running jobs are the jobs module's business). */
void vv_scheduler_stop (struct vv_scheduler *s);
/* Frees; call after vv_jobs_free, whose jobs may still report here. */
struct vv_scheduler *vv_scheduler_free (struct vv_scheduler *s);

/* Wakes the thread (a policy changed, the clock moved) and waits until
 * it has finished a pass that started after this call: every run that is
 * due now has then been submitted (or skipped).  Gives up after 60 s.
 */
void vv_scheduler_sync (struct vv_scheduler *s);

/* A policy's schedule and retention rules from its catalog record. */
int vv_policy_schedule (const struct vv_policy_rec *p, struct vv_schedule *ret);
int vv_policy_rules (const struct vv_policy_rec *p, unsigned manual_limit,
                     struct vv_retention_rules *ret);

/* Applies rules to the backups of an instance: deletes what
 * vv_retention_decide says (children first), on the target and in the
 * catalog.  *ret_deleted counts them; *ret_summary (may be NULL; free it)
 * says which and why.  Stops at the first failed delete.
 */
int vv_retention_apply (struct vv_engine *e, const char *domain_uuid,
                        const struct vv_retention_rules *rules,
                        unsigned *ret_deleted, char **ret_summary);

#endif
