/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"
#include "jobs/jobs.h"

/* A job from submit until its final status is in the catalog.  While it
 * is "live" it holds its domain: a second submit for the same domain_uuid
 * is refused.
 */
struct job {
  struct job *next_live;        /* jobs->live */
  struct job *next_queued;      /* jobs->queue_head, while pending */
  char *id;
  char *kind;
  char *domain;
  char *domain_uuid;
  int64_t owner_uid;
  vv_job_fn run;
  void *arg;
  void (*free_arg) (void *arg);
  struct vv_progress progress;
  bool queued;
  bool running;
  bool finishing;               /* final status being written */
  uint64_t flushed_done;        /* last counters written to the catalog */
  uint64_t flushed_total;
};

struct vv_jobs {
  struct vv_catalog *catalog;
  pthread_mutex_t lock;         /* everything below */
  pthread_cond_t work;          /* queue not empty, or stopping */
  pthread_cond_t ended;         /* a job left the live list */
  pthread_cond_t tick;          /* wakes the ticker early when stopping */
  /* Held while progress or a final status is written to the catalog, so
   * that the ticker never writes stale counters after the final ones.
   * Taken before lock, never after.
   */
  pthread_mutex_t flush_lock;
  struct job *live;
  struct job *queue_head, *queue_tail;
  bool stopping;
  unsigned n_workers;
  pthread_t *workers;
  bool ticker_started;
  pthread_t ticker;
};

/* How often the ticker writes progress of running jobs. */
#define FLUSH_INTERVAL_NS 1000000000L

static void
job_free (struct job *j)
{
  if (j == NULL)
    return;
  free (j->id);
  free (j->kind);
  free (j->domain);
  free (j->domain_uuid);
  free (j);
}

/* Caller holds jobs->lock. */
static struct job *
find_live (struct vv_jobs *jobs, const char *id)
{
  for (struct job *j = jobs->live; j; j = j->next_live)
    if (strcmp (j->id, id) == 0)
      return j;
  return NULL;
}

/* Caller holds jobs->lock. */
static void
unlink_live (struct vv_jobs *jobs, struct job *j)
{
  for (struct job **pp = &jobs->live; *pp; pp = &(*pp)->next_live)
    if (*pp == j) {
      *pp = j->next_live;
      return;
    }
}

/* Caller holds jobs->lock. */
static void
unlink_queued (struct vv_jobs *jobs, struct job *j)
{
  struct job *prev = NULL;

  for (struct job *q = jobs->queue_head; q; prev = q, q = q->next_queued)
    if (q == j) {
      if (prev)
        prev->next_queued = q->next_queued;
      else
        jobs->queue_head = q->next_queued;
      if (jobs->queue_tail == q)
        jobs->queue_tail = prev;
      j->next_queued = NULL;
      j->queued = false;
      return;
    }
}

/* Writes the final status (j->finishing is set, so the ticker leaves it
 * alone), then lets go of the job: it leaves the live list (releasing its
 * domain), its argument is freed and so is the job.  Catalog errors
 * cannot be reported to anyone here; the status row simply stays behind
 * and the next daemon start marks it failed.
 */
static void
job_finish (struct vv_jobs *jobs, struct job *j, const char *status,
            const char *error)
{
  uint64_t done = atomic_load (&j->progress.done);
  uint64_t total = atomic_load (&j->progress.total);

  pthread_mutex_lock (&jobs->flush_lock);
  if (done != j->flushed_done || total != j->flushed_total)
    vv_catalog_job_set_progress (jobs->catalog, j->id, done, total);
  vv_catalog_job_set_status (jobs->catalog, j->id, status, error);
  pthread_mutex_unlock (&jobs->flush_lock);

  if (j->free_arg)
    j->free_arg (j->arg);
  j->arg = NULL;

  pthread_mutex_lock (&jobs->lock);
  unlink_live (jobs, j);
  pthread_cond_broadcast (&jobs->ended);
  pthread_mutex_unlock (&jobs->lock);
  job_free (j);
}

static void *
worker_main (void *opaque)
{
  struct vv_jobs *jobs = opaque;

  for (;;) {
    struct job *j;

    pthread_mutex_lock (&jobs->lock);
    while (jobs->queue_head == NULL && !jobs->stopping)
      pthread_cond_wait (&jobs->work, &jobs->lock);
    if (jobs->queue_head == NULL) {
      pthread_mutex_unlock (&jobs->lock);
      return NULL;
    }
    j = jobs->queue_head;
    unlink_queued (jobs, j);
    j->running = true;
    pthread_mutex_unlock (&jobs->lock);

    vv_catalog_job_set_status (jobs->catalog, j->id, "running", NULL);

    vv_clear_error ();
    vv_progress_set_current (&j->progress);
    int r = j->run (j->arg, &j->progress);
    vv_progress_set_current (NULL);
    bool cancelled = vv_progress_cancelled (&j->progress);
    const char *status, *error = NULL;
    char msg[1024];

    if (r == 0)
      status = "completed";
    else {
      status = cancelled ? "cancelled" : "failed";
      error = vv_get_error ();
      if (error[0] == '\0')
        error = cancelled ? "cancelled" : "the job failed without saying why";
      /* Keep a copy: the catalog calls below may overwrite this thread's
       * error message.
       */
      snprintf (msg, sizeof msg, "%s", error);
      error = msg;
    }

    pthread_mutex_lock (&jobs->lock);
    j->finishing = true;
    pthread_mutex_unlock (&jobs->lock);
    job_finish (jobs, j, status, error);
  }
}

struct flush_item {
  char id[VV_ID_MAX];
  uint64_t done, total;
};

/* Writes changed progress counters of running jobs about once a second,
 * so "job show" and a restarted daemon see how far a job got.
 */
static void *
ticker_main (void *opaque)
{
  struct vv_jobs *jobs = opaque;

  for (;;) {
    struct flush_item items[VV_JOBS_MAX_WORKERS];
    size_t n = 0;
    struct timespec deadline;

    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += FLUSH_INTERVAL_NS % 1000000000L;
    deadline.tv_sec += FLUSH_INTERVAL_NS / 1000000000L
                       + deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;

    pthread_mutex_lock (&jobs->lock);
    while (!jobs->stopping) {
      if (pthread_cond_timedwait (&jobs->tick, &jobs->lock, &deadline)
          == ETIMEDOUT)
        break;
    }
    if (jobs->stopping) {
      pthread_mutex_unlock (&jobs->lock);
      return NULL;
    }
    pthread_mutex_unlock (&jobs->lock);

    pthread_mutex_lock (&jobs->flush_lock);
    pthread_mutex_lock (&jobs->lock);
    for (struct job *j = jobs->live; j && n < VV_JOBS_MAX_WORKERS;
         j = j->next_live) {
      uint64_t done, total;

      if (!j->running || j->finishing)
        continue;
      done = atomic_load (&j->progress.done);
      total = atomic_load (&j->progress.total);
      if (done == j->flushed_done && total == j->flushed_total)
        continue;
      j->flushed_done = done;
      j->flushed_total = total;
      snprintf (items[n].id, sizeof items[n].id, "%s", j->id);
      items[n].done = done;
      items[n].total = total;
      n++;
    }
    pthread_mutex_unlock (&jobs->lock);
    for (size_t i = 0; i < n; i++)
      vv_catalog_job_set_progress (jobs->catalog, items[i].id,
                                   items[i].done, items[i].total);
    pthread_mutex_unlock (&jobs->flush_lock);
  }
}

struct vv_jobs *
vv_jobs_new (struct vv_catalog *c, unsigned workers)
{
  struct vv_jobs *jobs;
  int err;

  if (workers == 0 || workers > VV_JOBS_MAX_WORKERS) {
    vv_error_code (VV_ERR_INVALID,
                   "%u job workers requested; use 1 to %d", workers,
                   VV_JOBS_MAX_WORKERS);
    return NULL;
  }
  jobs = calloc (1, sizeof *jobs);
  if (jobs == NULL) {
    vv_error_errno (errno, "allocating the job queue");
    return NULL;
  }
  jobs->catalog = c;
  pthread_mutex_init (&jobs->lock, NULL);
  pthread_mutex_init (&jobs->flush_lock, NULL);
  pthread_cond_init (&jobs->work, NULL);
  pthread_cond_init (&jobs->ended, NULL);
  pthread_cond_init (&jobs->tick, NULL);
  jobs->workers = calloc (workers, sizeof *jobs->workers);
  if (jobs->workers == NULL) {
    vv_error_errno (errno, "allocating the job queue");
    return vv_jobs_free (jobs);
  }
  for (unsigned i = 0; i < workers; i++) {
    err = pthread_create (&jobs->workers[i], NULL, worker_main, jobs);
    if (err) {
      vv_error_errno (err, "starting job worker thread %u", i + 1);
      return vv_jobs_free (jobs);
    }
    jobs->n_workers++;
  }
  err = pthread_create (&jobs->ticker, NULL, ticker_main, jobs);
  if (err) {
    vv_error_errno (err, "starting the job progress thread");
    return vv_jobs_free (jobs);
  }
  jobs->ticker_started = true;
  return jobs;
}

struct vv_jobs *
vv_jobs_free (struct vv_jobs *jobs)
{
  struct job *drained = NULL;

  if (jobs == NULL)
    return NULL;

  pthread_mutex_lock (&jobs->lock);
  jobs->stopping = true;
  for (struct job *j = jobs->live; j; j = j->next_live)
    atomic_store (&j->progress.cancel, true);
  while (jobs->queue_head) {
    struct job *j = jobs->queue_head;
    unlink_queued (jobs, j);
    j->finishing = true;
    j->next_queued = drained;
    drained = j;
  }
  pthread_cond_broadcast (&jobs->work);
  pthread_cond_broadcast (&jobs->tick);
  pthread_mutex_unlock (&jobs->lock);

  while (drained) {
    struct job *j = drained;
    drained = j->next_queued;
    job_finish (jobs, j, "cancelled",
                "cancelled before it started: virtvaultd was stopped");
  }

  for (unsigned i = 0; i < jobs->n_workers; i++)
    pthread_join (jobs->workers[i], NULL);
  if (jobs->ticker_started)
    pthread_join (jobs->ticker, NULL);

  free (jobs->workers);
  pthread_cond_destroy (&jobs->tick);
  pthread_cond_destroy (&jobs->ended);
  pthread_cond_destroy (&jobs->work);
  pthread_mutex_destroy (&jobs->flush_lock);
  pthread_mutex_destroy (&jobs->lock);
  free (jobs);
  return NULL;
}

/* Caller holds jobs->lock. */
static struct job *
find_live_domain (struct vv_jobs *jobs, const char *uuid)
{
  for (struct job *j = jobs->live; j; j = j->next_live)
    if (j->domain_uuid && strcmp (j->domain_uuid, uuid) == 0)
      return j;
  return NULL;
}

int
vv_jobs_submit (struct vv_jobs *jobs, const struct vv_job_spec *spec)
{
  struct job *j;
  char now[VV_TIME_MAX];

  if (spec->id == NULL || spec->kind == NULL || spec->run == NULL) {
    vv_error ("job submitted without an id, kind or body");
    return -1;
  }
  j = calloc (1, sizeof *j);
  if (j == NULL) {
    vv_error_errno (errno, "allocating job %s", spec->id);
    return -1;
  }
  j->id = vv_strdup (spec->id);
  j->kind = vv_strdup (spec->kind);
  j->domain = vv_strdup (spec->domain);
  j->domain_uuid = vv_strdup (spec->domain_uuid);
  if (j->id == NULL || j->kind == NULL
      || (spec->domain && j->domain == NULL)
      || (spec->domain_uuid && j->domain_uuid == NULL)) {
    job_free (j);
    return -1;
  }
  j->owner_uid = spec->owner_uid;
  j->run = spec->run;
  j->arg = spec->arg;
  j->free_arg = spec->free_arg;

  vv_now_utc (now);
  struct vv_job_rec rec = {
    .id = (char *) spec->id,
    .kind = (char *) spec->kind,
    .status = (char *) "pending",
    .domain = (char *) spec->domain,
    .domain_uuid = (char *) spec->domain_uuid,
    .backup_id = (char *) spec->backup_id,
    .created_at = now,
    .owner_uid = spec->owner_uid,
    .notes = (char *) spec->notes,
  };

  VV_LOCK_GUARD (&jobs->lock);

  if (jobs->stopping) {
    job_free (j);
    vv_error_code (VV_ERR_UNAVAILABLE,
                   "virtvaultd is shutting down; try again when it is back");
    return -1;
  }
  if (spec->domain_uuid) {
    struct job *other = find_live_domain (jobs, spec->domain_uuid);
    if (other) {
      const char *dname = spec->domain ? spec->domain
                          : other->domain ? other->domain
                          : spec->domain_uuid;
      vv_error_code (VV_ERR_BUSY,
                     "domain '%s' is busy with job %s (%s); wait for it or "
                     "cancel it with 'virtvault job cancel %s'",
                     dname, other->id, other->kind, other->id);
      job_free (j);
      return -1;
    }
  }
  if (find_live (jobs, spec->id)) {
    vv_error_code (VV_ERR_BUSY, "job %s already exists", spec->id);
    job_free (j);
    return -1;
  }
  /* Recorded under the lock so that the busy check and the pending row
   * agree: nobody else can slip a job for this domain in between.
   */
  if (vv_catalog_job_insert (jobs->catalog, &rec) == -1) {
    vv_error_prefix ("recording job %s: ", spec->id);
    job_free (j);
    return -1;
  }
  j->next_live = jobs->live;
  jobs->live = j;
  j->queued = true;
  if (jobs->queue_tail)
    jobs->queue_tail->next_queued = j;
  else
    jobs->queue_head = j;
  jobs->queue_tail = j;
  pthread_cond_signal (&jobs->work);
  return 0;
}

int
vv_jobs_cancel (struct vv_jobs *jobs, const char *id, int64_t owner_filter)
{
  struct job *j;

  pthread_mutex_lock (&jobs->lock);
  j = find_live (jobs, id);
  if (j && owner_filter != VV_OWNER_ANY && j->owner_uid != owner_filter)
    j = NULL;
  if (j == NULL) {
    pthread_mutex_unlock (&jobs->lock);
    struct vv_job_rec *rec = vv_catalog_job_get (jobs->catalog, id,
                                                 owner_filter);
    if (rec == NULL)
      return -1;
    vv_error_code (VV_ERR_INVALID,
                   "job %s has already finished (%s); there is nothing to "
                   "cancel", id, rec->status);
    vv_job_rec_free (rec);
    return -1;
  }
  if (j->finishing) {
    pthread_mutex_unlock (&jobs->lock);
    vv_error_code (VV_ERR_INVALID,
                   "job %s is finishing; there is nothing to cancel", id);
    return -1;
  }
  atomic_store (&j->progress.cancel, true);
  if (j->queued) {
    unlink_queued (jobs, j);
    j->finishing = true;
    pthread_mutex_unlock (&jobs->lock);
    job_finish (jobs, j, "cancelled", "cancelled before it started");
    return 0;
  }
  pthread_mutex_unlock (&jobs->lock);
  return 0;
}

int
vv_jobs_progress (struct vv_jobs *jobs, const char *id,
                  uint64_t *ret_done, uint64_t *ret_total)
{
  struct job *j;

  VV_LOCK_GUARD (&jobs->lock);
  j = find_live (jobs, id);
  if (j == NULL)
    return 0;
  if (ret_done)
    *ret_done = atomic_load (&j->progress.done);
  if (ret_total)
    *ret_total = atomic_load (&j->progress.total);
  return 1;
}

void
vv_jobs_wait (struct vv_jobs *jobs, const char *id)
{
  VV_LOCK_GUARD (&jobs->lock);
  while (find_live (jobs, id))
    pthread_cond_wait (&jobs->ended, &jobs->lock);
}
