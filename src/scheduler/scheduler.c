/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/domain.h"
#include "restore/restore.h"
#include "scheduler/scheduler.h"
#include "util/clock.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

/* How long a failed run waits before each retry (clock time). */
static const int64_t retry_delay[VV_SCHEDULER_RETRIES] = {
  5 * 60, 15 * 60, 45 * 60
};
/* How often pending cleanups of failed backups are retried (clock time). */
#define CLEANUP_RETRY_SECONDS (5 * 60)
/* The longest the thread sleeps without looking at the catalog again. */
#define IDLE_SECONDS 3600
/* Slots looked at when catching up: eleven years of daily slots. */
#define CATCH_UP_MAX 4000
#define UUID_MAX 64
#define PLURAL(n, word) (n), ((n) == 1 ? word : word "s")

/* What the scheduler remembers of a policy x instance between passes
 * (the catalog holds the rest): a job in flight, and retries.  The retry
 * fields are written through to the catalog's policy_retries, so the
 * back-off outlives a restart.
 */
struct attempt {
  char policy[VV_POLICY_NAME_MAX + 1];
  char uuid[UUID_MAX];
  bool running;
  unsigned failures;            /* consecutive failed runs of slot */
  time_t retry_at;              /* 0: no retry planned */
  time_t slot;
};

struct vv_scheduler {
  struct vv_scheduler_config cfg;
  pthread_t thread;
  bool started;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stopping;
  uint64_t passes_started, passes_done;
  struct attempt *att;
  size_t n_att, cap_att;
  unsigned running;             /* scheduled jobs in flight: backups and
                                 * verifies */
  /* The domains (uuids) a scheduled verify holds: their backups wait. */
  char (*verifying)[UUID_MAX];
  size_t n_verifying, cap_verifying;
  time_t next_cleanup;          /* when pending cleanups are retried */
  bool cleanups_left;
  unsigned cleanups_logged;     /* left at the last retry that was logged */
};

static void
slog (struct vv_scheduler *s, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
static void
slog (struct vv_scheduler *s, const char *fmt, ...)
{
  char line[2048];
  va_list ap;

  if (s->cfg.log == NULL)
    return;
  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  s->cfg.log (line);
}

/* ---- policy records as schedules and rules ---- */

int
vv_policy_schedule (const struct vv_policy_rec *p, struct vv_schedule *ret)
{
  struct vv_schedule s = { 0 };

  if (vv_schedule_kind_parse (p->schedule_kind, &s.kind) == -1)
    return -1;
  s.wday = s.kind == VV_SCHEDULE_WEEKLY ? p->day : -1;
  s.hour = p->hour;
  s.minute = p->minute;
  snprintf (s.tz, sizeof s.tz, "%s", p->tz ? p->tz : "UTC");
  s.window = p->window;
  if (vv_schedule_validate (&s) == -1) {
    vv_error_prefix ("policy '%s': ", p->name);
    return -1;
  }
  *ret = s;
  return 0;
}

int
vv_policy_rules (const struct vv_policy_rec *p, unsigned manual_limit,
                 struct vv_retention_rules *ret)
{
  struct vv_retention_rules r;

  vv_retention_rules_init (&r, p->name);
  r.retention = p->retention;
  if (p->keep && p->keep[0] && vv_parse_keep_rules (p->keep, &r) == -1)
    return -1;
  r.max_age = p->max_age;
  r.max_backups = p->max_backups;
  r.manual_limit = manual_limit;
  if (vv_retention_rules_check (&r) == -1)
    return -1;
  *ret = r;
  return 0;
}

/* ---- retention on an instance ---- */

int
vv_retention_apply (struct vv_engine *e, const char *domain_uuid,
                    const struct vv_retention_rules *rules,
                    unsigned *ret_deleted, char **ret_summary)
{
  struct vv_backup_rec **v = NULL;
  size_t n = 0, n_del = 0;
  _cleanup_free_ struct vv_ret_backup *in = NULL;
  _cleanup_free_ struct vv_retention_delete *del = NULL;
  _cleanup_free_ char *summary = NULL;
  unsigned deleted = 0;
  int ret = -1;

  if (vv_catalog_backup_list (e->catalog, domain_uuid, VV_OWNER_ANY,
                              &v, &n) == -1)
    return -1;
  /* The list matches names too: keep the instance's own. */
  in = calloc (n ? n : 1, sizeof *in);
  if (in == NULL) {
    vv_error_errno (errno, "applying retention to %s", domain_uuid);
    goto out;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    struct vv_backup_rec *b = v[i];
    struct vv_ret_backup *r = &in[m];
    if (strcmp (b->domain_uuid, domain_uuid) != 0)
      continue;
    r->id = b->id;
    r->chain_id = b->chain_id;
    r->parent_id = b->parent_id;
    r->protected = b->protected;
    r->policy = b->policy;
    /* The list is newest first (created_at, then insertion order). */
    r->seq = n - i;
    if (vv_ret_type_parse (b->type, &r->type) == -1
        || vv_ret_status_parse (b->status, &r->status) == -1
        || vv_ret_origin_parse (b->origin ? b->origin : "manual",
                                &r->origin) == -1
        || vv_parse_time_utc (b->created_at, &r->created_at) == -1) {
      vv_error_prefix ("backup %s: ", b->id);
      goto out;
    }
    m++;
  }
  if (vv_retention_decide (in, m, rules, vv_clock_now (), &del,
                           &n_del) == -1)
    goto out;
  for (size_t i = 0; i < n_del; i++) {
    char *more;
    if (vv_backup_delete (e, del[i].id, VV_OWNER_ANY) == -1) {
      vv_error_prefix ("retention deleted %u %s, then failed on %s: ",
                       PLURAL (deleted, "backup"), del[i].id);
      goto out;
    }
    deleted++;
    more = vv_printf ("%s%s%s (%s)", summary ? summary : "",
                      summary ? "; " : "", del[i].id, del[i].reason);
    if (more) {
      free (summary);
      summary = more;
    }
  }
  ret = 0;

 out:
  if (ret_deleted)
    *ret_deleted = deleted;
  if (ret_summary)
    *ret_summary = TAKE_PTR (summary);
  vv_backup_recs_free (v, n);
  return ret;
}

/* ---- the in-memory state ---- */

/* With s->lock held.  NULL only when out of memory. */
static struct attempt *
attempt_get (struct vv_scheduler *s, const char *policy, const char *uuid)
{
  struct attempt *a;

  for (size_t i = 0; i < s->n_att; i++)
    if (strcmp (s->att[i].policy, policy) == 0
        && strcmp (s->att[i].uuid, uuid) == 0)
      return &s->att[i];
  if (s->n_att == s->cap_att) {
    size_t cap = s->cap_att ? s->cap_att * 2 : 16;
    a = reallocarray (s->att, cap, sizeof *a);
    if (a == NULL)
      return NULL;
    s->att = a;
    s->cap_att = cap;
  }
  a = &s->att[s->n_att++];
  memset (a, 0, sizeof *a);
  snprintf (a->policy, sizeof a->policy, "%s", policy);
  snprintf (a->uuid, sizeof a->uuid, "%s", uuid);
  return a;
}

/* Writes the retry state of a policy x instance to the catalog: slot,
 * failures and retry_at as they are now (failures 0: none kept).
 */
static void
persist_retry (struct vv_scheduler *s, const char *policy, const char *uuid,
               time_t slot, unsigned failures, time_t retry_at)
{
  struct vv_catalog *c = s->cfg.engine->catalog;
  char slot_s[VV_TIME_MAX], at_s[VV_TIME_MAX];
  int r;

  if (failures == 0)
    r = vv_catalog_retry_clear (c, policy, uuid);
  else {
    struct vv_retry_rec rec = {
      .policy = (char *) policy, .domain_uuid = (char *) uuid,
      .slot = slot_s, .failures = failures,
      .retry_at = retry_at ? at_s : NULL,
    };
    vv_format_time_utc (slot, slot_s);
    if (retry_at)
      vv_format_time_utc (retry_at, at_s);
    r = vv_catalog_retry_set (c, &rec);
  }
  if (r == -1)
    slog (s, "policy '%s': cannot record the retry state of %s: %s", policy,
          uuid, vv_get_error ());
}

/* The retry state the catalog kept from earlier daemons. */
static void
load_retries (struct vv_scheduler *s)
{
  struct vv_retry_rec **v = NULL;
  size_t n = 0;

  if (vv_catalog_retry_list (s->cfg.engine->catalog, &v, &n) == -1) {
    slog (s, "scheduler: cannot read the retry times: %s", vv_get_error ());
    return;
  }
  for (size_t i = 0; i < n; i++) {
    struct attempt *a;
    time_t slot, at = 0;

    if (strlen (v[i]->policy) > VV_POLICY_NAME_MAX
        || strlen (v[i]->domain_uuid) >= UUID_MAX
        || vv_parse_time_utc (v[i]->slot, &slot) == -1
        || (v[i]->retry_at && vv_parse_time_utc (v[i]->retry_at, &at) == -1))
      continue;
    VV_LOCK_GUARD (&s->lock);
    a = attempt_get (s, v[i]->policy, v[i]->domain_uuid);
    if (a) {
      a->slot = slot;
      a->failures = v[i]->failures;
      a->retry_at = at;
    }
  }
  vv_retry_recs_free (v, n);
}

/* ---- scheduled verify ---- */

/* With s->lock held: does a scheduled verify hold the domain? */
static bool
verifying_locked (struct vv_scheduler *s, const char *uuid)
{
  for (size_t i = 0; i < s->n_verifying; i++)
    if (strcmp (s->verifying[i], uuid) == 0)
      return true;
  return false;
}

/* With s->lock held: uuid on (add) or off the list.  -1 out of memory. */
static int
set_verifying_locked (struct vv_scheduler *s, const char *uuid, bool add)
{
  if (!add) {
    for (size_t i = 0; i < s->n_verifying; i++)
      if (strcmp (s->verifying[i], uuid) == 0) {
        memmove (s->verifying[i], s->verifying[s->n_verifying - 1],
                 UUID_MAX);
        s->n_verifying--;
        break;
      }
    return 0;
  }
  if (s->n_verifying == s->cap_verifying) {
    size_t cap = s->cap_verifying ? s->cap_verifying * 2 : 8;
    char (*v)[UUID_MAX] = reallocarray (s->verifying, cap, UUID_MAX);
    if (v == NULL)
      return -1;
    s->verifying = v;
    s->cap_verifying = cap;
  }
  snprintf (s->verifying[s->n_verifying++], UUID_MAX, "%s", uuid);
  return 0;
}

struct verify_task {
  struct vv_scheduler *s;
  char policy[VV_POLICY_NAME_MAX + 1];
  char uuid[UUID_MAX];
  char backup_id[VV_ID_MAX];
  char job_id[VV_ID_MAX];
  bool ran;
};

static void
verify_task_free (void *arg)
{
  struct verify_task *t = arg;
  struct vv_scheduler *s;

  if (t == NULL)
    return;
  s = t->s;
  /* Cancelled in the queue: counted as this period's verify, so it is
   * not submitted again at once.
   */
  if (!t->ran
      && vv_catalog_backup_set_verified (s->cfg.engine->catalog,
                                         t->backup_id, "cancelled",
                                         NULL) == -1)
    slog (s, "policy '%s': cannot record the cancelled verify of %s: %s",
          t->policy, t->backup_id, vv_get_error ());
  {
    VV_LOCK_GUARD (&s->lock);
    set_verifying_locked (s, t->uuid, false);
    if (s->running)
      s->running--;
  }
  free (t);
  vv_clock_kick ();
}

static int
verify_job (void *arg, struct vv_progress *p)
{
  struct verify_task *t = arg;
  struct vv_scheduler *s = t->s;
  bool corrupt;
  int r;

  t->ran = true;
  slog (s, "job %s started: scheduled verify of backup %s for policy '%s'",
        t->job_id, t->backup_id, t->policy);
  r = vv_verify_backup (s->cfg.engine, t->backup_id, VV_OWNER_ANY, p,
                        &corrupt);
  if (r == 0)
    slog (s, "job %s completed: backup %s verified", t->job_id,
          t->backup_id);
  else
    slog (s, "job %s %s: verify of backup %s%s: %s", t->job_id,
          vv_progress_cancelled (p) ? "cancelled" : "failed", t->backup_id,
          corrupt ? " marked it corrupt" : "", vv_get_error ());
  return r;
}

/* Submits the verify of b for policy p.  true when a job was submitted. */
static bool
start_verify (struct vv_scheduler *s, const struct vv_policy_rec *p,
              const struct vv_backup_rec *b)
{
  struct verify_task *t;
  int r;

  if (strlen (b->domain_uuid) >= UUID_MAX || (t = calloc (1, sizeof *t))
      == NULL)
    return false;
  t->s = s;
  snprintf (t->policy, sizeof t->policy, "%s", p->name);
  snprintf (t->uuid, sizeof t->uuid, "%s", b->domain_uuid);
  snprintf (t->backup_id, sizeof t->backup_id, "%s", b->id);
  if (vv_random_id ("job", t->job_id) == -1) {
    free (t);
    return false;
  }
  struct vv_job_spec spec = {
    .id = t->job_id, .kind = "verify", .domain = b->domain,
    .domain_uuid = t->uuid, .backup_id = t->backup_id,
    .owner_uid = b->owner_uid, .run = verify_job, .arg = t,
    .free_arg = verify_task_free,
  };
  {
    VV_LOCK_GUARD (&s->lock);
    if (set_verifying_locked (s, t->uuid, true) == -1) {
      free (t);
      return false;
    }
    s->running++;
  }
  r = vv_jobs_submit (s->cfg.jobs, &spec);
  if (r == -1) {
    /* Busy (a job holds the domain): tried again at a later pass.  Not
     * through verify_task_free: its kick would start that pass at once,
     * and again, for as long as the domain is busy.
     */
    if (vv_get_error_code () != VV_ERR_BUSY)
      slog (s, "policy '%s': cannot start the verify of %s: %s", p->name,
            b->id, vv_get_error ());
    {
      VV_LOCK_GUARD (&s->lock);
      set_verifying_locked (s, t->uuid, false);
      s->running--;
    }
    free (t);
    return false;
  }
  slog (s, "policy '%s': verify of backup %s of '%s' submitted as job %s",
        p->name, b->id, b->domain, t->job_id);
  return true;
}

/* The verifies that are due (vv_verify_next, one a period per backup),
 * a domain at a time, within the scheduler's concurrency; returns the
 * time the next one is due (or deadline, when earlier).
 */
static time_t
verify_pass (struct vv_scheduler *s, struct vv_policy_rec **pv, size_t np,
             time_t now, time_t deadline)
{
  struct vv_catalog *c = s->cfg.engine->catalog;

  for (size_t i = 0; i < np; i++) {
    const struct vv_policy_rec *p = pv[i];
    struct vv_backup_rec **v = NULL;
    size_t n = 0;

    if (p->verify_every == 0 || strcmp (p->status, "paused") == 0)
      continue;
    if (vv_catalog_backup_list_policy (c, p->name, &v, &n) == -1) {
      slog (s, "policy '%s': cannot list its backups to verify: %s",
            p->name, vv_get_error ());
      continue;
    }
    for (size_t j = 0; j < n; j++) {
      const struct vv_backup_rec *b = v[j];
      const char *base = b->verified_at ? b->verified_at
        : b->completed_at ? b->completed_at : b->created_at;
      time_t since, due;
      bool busy;

      if (vv_parse_time_utc (base, &since) == -1) {
        vv_clear_error ();
        continue;
      }
      due = vv_verify_next (b->id, p->verify_every, since,
                            b->verified_at != NULL);
      if (due > now) {
        if (due < deadline)
          deadline = due;
        continue;
      }
      {
        VV_LOCK_GUARD (&s->lock);
        busy = s->running >= s->cfg.max_concurrent
          || verifying_locked (s, b->domain_uuid);
      }
      /* A finishing scheduled job kicks the clock; a manual one that
       * holds the domain does not, so look again in a minute.
       */
      if (!busy && !start_verify (s, p, b) && now + 60 < deadline)
        deadline = now + 60;
    }
    vv_backup_recs_free (v, n);
  }
  return deadline;
}

/* ---- one run ---- */

struct run_task {
  struct vv_scheduler *s;
  char policy[VV_POLICY_NAME_MAX + 1];
  char uuid[UUID_MAX];
  char *domain;
  char backup_id[VV_ID_MAX];
  char job_id[VV_ID_MAX];
  int64_t run_id;
  time_t slot;
  struct vv_backup_job *backup_job;
  bool ran;
};

/* A run failed: the policy shows the error; the slot is retried a few
 * times.
 */
static void
run_failed (struct vv_scheduler *s, const char *policy, const char *uuid,
            const char *domain, time_t slot, const char *msg)
{
  struct vv_catalog *c = s->cfg.engine->catalog;
  char when[VV_TIME_MAX];
  _cleanup_free_ char *err = NULL;
  unsigned failures = 0;
  time_t retry = 0;

  vv_format_time_utc (slot, when);
  {
    VV_LOCK_GUARD (&s->lock);
    struct attempt *a = attempt_get (s, policy, uuid);
    if (a) {
      if (a->slot != slot)
        a->failures = 0;
      a->slot = slot;
      failures = ++a->failures;
      a->retry_at = 0;
      if (failures <= VV_SCHEDULER_RETRIES)
        a->retry_at = retry = vv_clock_now () + retry_delay[failures - 1];
    }
  }
  if (failures)
    persist_retry (s, policy, uuid, slot, failures, retry);
  err = vv_printf ("run of %s for %s failed: %s", domain ? domain : uuid,
                   when, msg);
  if (vv_catalog_policy_set_status (c, policy, "error",
                                    err ? err : msg) == -1
      && vv_get_error_code () != VV_ERR_NOT_FOUND)
    slog (s, "policy '%s': cannot record the error: %s", policy,
          vv_get_error ());
  if (retry) {
    char at[VV_TIME_MAX];
    vv_format_time_utc (retry, at);
    slog (s, "policy '%s': %s; retry %u of %d at %s", policy,
          err ? err : msg, failures, VV_SCHEDULER_RETRIES, at);
  }
  else
    slog (s, "policy '%s': %s; no retries left until the next slot", policy,
          err ? err : msg);
}

static void
run_succeeded (struct vv_scheduler *s, const char *policy, const char *uuid)
{
  struct vv_catalog *c = s->cfg.engine->catalog;
  struct vv_policy_rec *p;

  {
    VV_LOCK_GUARD (&s->lock);
    struct attempt *a = attempt_get (s, policy, uuid);
    if (a) {
      a->failures = 0;
      a->retry_at = 0;
    }
  }
  persist_retry (s, policy, uuid, 0, 0, 0);
  /* Back to active after a success; a paused policy stays paused. */
  p = vv_catalog_policy_get (c, policy, VV_OWNER_ANY);
  if (p && strcmp (p->status, "error") == 0
      && vv_catalog_policy_set_status (c, policy, "active", NULL) == -1)
    slog (s, "policy '%s': cannot set it active: %s", policy,
          vv_get_error ());
  vv_policy_rec_free (p);
}

static void
task_free (void *arg)
{
  struct run_task *t = arg;
  struct vv_scheduler *s;

  if (t == NULL)
    return;
  s = t->s;
  if (!t->ran) {
    struct vv_catalog *c = s->cfg.engine->catalog;
    struct vv_backup_rec *b = vv_catalog_backup_get (c, t->backup_id,
                                                     VV_OWNER_ANY);
    if (b && strcmp (b->status, "pending") == 0)
      vv_catalog_backup_set_status (c, t->backup_id, "cancelled",
                                    "cancelled before it started");
    vv_backup_rec_free (b);
    vv_catalog_run_finish (c, t->run_id, "failed", NULL,
                           "cancelled before it started");
  }
  vv_backup_job_free (t->backup_job);
  free (t->domain);
  {
    VV_LOCK_GUARD (&s->lock);
    struct attempt *a = attempt_get (s, t->policy, t->uuid);
    if (a)
      a->running = false;
    if (s->running)
      s->running--;
  }
  free (t);
  /* A slot is free: what waited for one may start. */
  vv_clock_kick ();
}

static int
run_job (void *arg, struct vv_progress *p)
{
  struct run_task *t = arg;
  struct vv_scheduler *s = t->s;
  struct vv_engine *e = s->cfg.engine;
  _cleanup_free_ char *summary = NULL, *msg = NULL;
  struct vv_policy_rec *pol;
  struct vv_retention_rules rules;
  unsigned deleted = 0;
  int r;

  t->ran = true;
  slog (s, "job %s started: backup %s of domain '%s' for policy '%s'",
        t->job_id, t->backup_id, t->domain, t->policy);
  r = vv_backup_run (e, t->backup_job, p);
  if (r == -1) {
    char err[2048];
    snprintf (err, sizeof err, "%s", vv_get_error ());
    slog (s, "job %s %s: backup %s of domain '%s': %s", t->job_id,
          vv_progress_cancelled (p) ? "cancelled" : "failed", t->backup_id,
          t->domain, err);
    vv_catalog_run_finish (e->catalog, t->run_id, "failed", NULL, err);
    run_failed (s, t->policy, t->uuid, t->domain, t->slot, err);
    vv_error ("%s", err);
    return -1;
  }
  slog (s, "job %s completed: backup %s of domain '%s' for policy '%s'",
        t->job_id, t->backup_id, t->domain, t->policy);

  /* Retention follows the policy as it is now (it may have been edited
   * while the backup ran; a deleted policy manages nothing).
   */
  pol = vv_catalog_policy_get (e->catalog, t->policy, VV_OWNER_ANY);
  if (pol && vv_policy_rules (pol, s->cfg.manual_limit, &rules) == 0
      && vv_retention_apply (e, t->uuid, &rules, &deleted, &summary) == 0) {
    msg = deleted
      ? vv_printf ("retention deleted %u %s: %s", PLURAL (deleted,
                                                              "backup"),
                   summary)
      : NULL;
    if (deleted)
      slog (s, "policy '%s' on '%s': %s", t->policy, t->domain,
            msg ? msg : "retention deleted backups");
    vv_catalog_run_finish (e->catalog, t->run_id, "ok", NULL, msg);
    run_succeeded (s, t->policy, t->uuid);
  }
  else if (pol) {
    char err[2048];
    snprintf (err, sizeof err, "the backup completed but retention "
              "failed: %s", vv_get_error ());
    vv_catalog_run_finish (e->catalog, t->run_id, "failed", NULL, err);
    run_failed (s, t->policy, t->uuid, t->domain, t->slot, err);
  }
  else
    vv_catalog_run_finish (e->catalog, t->run_id, "ok", NULL,
                           "the policy was deleted; no retention applied");
  vv_policy_rec_free (pol);
  return 0;
}

/* Completed backups of the instance's newest chain that this policy
 * made, for the chain position of the next run.
 */
static unsigned
runs_in_chain (struct vv_engine *e, const char *policy, const char *uuid)
{
  struct vv_backup_rec **v = NULL;
  size_t n = 0;
  const char *chain = NULL;
  unsigned count = 0;

  if (vv_catalog_backup_list (e->catalog, uuid, VV_OWNER_ANY, &v, &n) == -1)
    return 0;
  /* Newest first. */
  for (size_t i = 0; i < n && chain == NULL; i++)
    if (strcmp (v[i]->domain_uuid, uuid) == 0
        && strcmp (v[i]->status, "completed") == 0
        && v[i]->policy && strcmp (v[i]->policy, policy) == 0)
      chain = v[i]->chain_id;
  for (size_t i = 0; chain && i < n; i++)
    if (strcmp (v[i]->chain_id, chain) == 0
        && strcmp (v[i]->status, "completed") == 0)
      count++;
  vv_backup_recs_free (v, n);
  return count;
}

/* Records a run that ended before any job: skipped or failed. */
static void
record_run (struct vv_scheduler *s, const struct vv_policy_rec *p,
            const struct vv_attachment_rec *a, time_t slot,
            const char *result, const char *msg)
{
  char when[VV_TIME_MAX];
  struct vv_run_rec run = {
    .policy = p->name, .domain_uuid = a->domain_uuid, .domain = a->domain,
    .scheduled_for = when, .result = (char *) result, .message = (char *) msg,
  };

  vv_format_time_utc (slot, when);
  if (vv_catalog_run_insert (s->cfg.engine->catalog, &run, NULL) == -1)
    slog (s, "policy '%s': cannot record a run of '%s': %s", p->name,
          a->domain, vv_get_error ());
}

/* Starts the run of slot for the instance: skipped when the domain is not
 * running, else a backup job.  Returns true when a job was submitted.
 */
static bool
start_run (struct vv_scheduler *s, virConnectPtr *conn,
           const struct vv_policy_rec *p, const struct vv_attachment_rec *a,
           time_t slot)
{
  struct vv_engine *e = s->cfg.engine;
  struct vv_schedule sched;
  _cleanup_vir_domain_ virDomainPtr dom = NULL;
  _cleanup_free_ char *msg = NULL;
  char when[VV_TIME_MAX], job_id[VV_ID_MAX];
  enum vv_run_kind kind;
  bool on_full_day = true;
  struct vv_backup_job *bj = NULL;
  struct vv_backup_rec *rec = NULL;
  struct run_task *t;
  int wday;

  vv_format_time_utc (slot, when);
  if (*conn == NULL && (*conn = vv_libvirt_open (e->libvirt_uri)) == NULL) {
    msg = vv_printf ("cannot reach libvirt: %s", vv_get_error ());
    record_run (s, p, a, slot, "failed", msg ? msg : "libvirt unreachable");
    run_failed (s, p->name, a->domain_uuid, a->domain, slot,
                msg ? msg : "libvirt unreachable");
    return false;
  }
  dom = vv_domain_lookup (*conn, e->libvirt_uri, a->domain_uuid);
  if (dom == NULL || virDomainIsActive (dom) != 1) {
    msg = vv_printf ("domain '%s' is %s; only running instances are backed "
                     "up", a->domain, dom ? "not running" : "not defined");
    record_run (s, p, a, slot, "skipped", msg ? msg : "not running");
    slog (s, "policy '%s': run for %s skipped: %s", p->name, when,
          msg ? msg : "not running");
    return false;
  }

  if (vv_policy_schedule (p, &sched) == -1)
    goto failed;
  if (sched.kind == VV_SCHEDULE_WEEKLY) {
    if (vv_schedule_local_wday (&sched, slot, &wday) == -1)
      goto failed;
    on_full_day = wday == sched.wday;
  }
  kind = vv_policy_backup_kind (sched.kind, p->max_chain,
                                runs_in_chain (e, p->name, a->domain_uuid),
                                on_full_day);
  if (kind == VV_RUN_SKIP) {
    record_run (s, p, a, slot, "skipped", "no backup in this slot");
    return false;
  }
  if (vv_random_id ("job", job_id) == -1)
    goto failed;
  struct vv_backup_request req = {
    .domain = a->domain_uuid,
    .target = p->target,
    .all_disks = p->device && strcmp (p->device, "all") == 0,
    .job_id = job_id,
    .owner_uid = p->owner_uid,
    .mode = kind == VV_RUN_FULL ? "full" : "auto",
    .max_chain = p->max_chain ? p->max_chain : 1,
    .quiesce = p->quiesce,
  };
  if (vv_backup_prepare (e, &req, &bj, &rec) == -1)
    goto failed;
  if (vv_catalog_backup_set_origin (e->catalog, rec->id, "policy",
                                    p->name) == -1) {
    vv_catalog_backup_delete (e->catalog, rec->id);
    vv_backup_job_free (bj);
    vv_backup_rec_free (rec);
    goto failed;
  }

  t = calloc (1, sizeof *t);
  if (t == NULL || (t->domain = vv_strdup (a->domain)) == NULL) {
    free (t);
    vv_catalog_backup_delete (e->catalog, rec->id);
    vv_backup_job_free (bj);
    vv_backup_rec_free (rec);
    goto failed;
  }
  t->s = s;
  snprintf (t->policy, sizeof t->policy, "%s", p->name);
  snprintf (t->uuid, sizeof t->uuid, "%s", a->domain_uuid);
  snprintf (t->backup_id, sizeof t->backup_id, "%s", rec->id);
  snprintf (t->job_id, sizeof t->job_id, "%s", job_id);
  t->slot = slot;
  t->backup_job = bj;
  t->ran = true;

  struct vv_run_rec run = {
    .policy = p->name, .domain_uuid = a->domain_uuid, .domain = a->domain,
    .scheduled_for = when, .kind = rec->type, .backup_id = t->backup_id,
  };
  int inserted = vv_catalog_run_insert (e->catalog, &run, &t->run_id);
  vv_backup_rec_free (rec);
  if (inserted == -1) {
    vv_catalog_backup_delete (e->catalog, t->backup_id);
    free (t->domain);
    vv_backup_job_free (t->backup_job);
    free (t);
    goto failed;
  }

  struct vv_job_spec spec = {
    .id = job_id, .kind = "backup", .domain = t->domain,
    .domain_uuid = t->uuid, .backup_id = t->backup_id,
    .owner_uid = p->owner_uid, .run = run_job, .arg = t,
    .free_arg = task_free,
  };
  {
    VV_LOCK_GUARD (&s->lock);
    struct attempt *at = attempt_get (s, p->name, a->domain_uuid);
    if (at)
      at->running = true;
    s->running++;
  }
  t->ran = false;
  if (vv_jobs_submit (s->cfg.jobs, &spec) == -1) {
    char err[2048];
    snprintf (err, sizeof err, "%s", vv_get_error ());
    vv_catalog_backup_delete (e->catalog, t->backup_id);
    vv_catalog_run_finish (e->catalog, t->run_id, "failed", NULL, err);
    t->ran = true;
    task_free (t);
    run_failed (s, p->name, a->domain_uuid, a->domain, slot, err);
    return false;
  }
  slog (s, "policy '%s': run for %s of '%s' submitted as job %s (%s)",
        p->name, when, a->domain, job_id, vv_run_kind_name (kind));
  return true;

 failed:
  {
    char err[2048];
    snprintf (err, sizeof err, "%s", vv_get_error ());
    record_run (s, p, a, slot, "failed", err);
    run_failed (s, p->name, a->domain_uuid, a->domain, slot, err);
  }
  return false;
}

/* The slot the instance last ran for (or when it was attached). */
static int
last_slot (struct vv_scheduler *s, const struct vv_policy_rec *p,
           const struct vv_attachment_rec *a, time_t *ret)
{
  struct vv_run_rec **v = NULL;
  size_t n = 0;
  int r;

  if (vv_catalog_run_list (s->cfg.engine->catalog, p->name, a->domain_uuid,
                           1, &v, &n) == -1)
    return -1;
  r = vv_parse_time_utc (n ? v[0]->scheduled_for : a->attached_at, ret);
  vv_run_recs_free (v, n);
  return r;
}

/* One look at every policy x instance: starts what is due, returns when
 * to look again.
 */
static time_t
pass (struct vv_scheduler *s)
{
  struct vv_catalog *c = s->cfg.engine->catalog;
  struct vv_policy_rec **pv = NULL;
  struct vv_attachment_rec **av = NULL;
  size_t np = 0, na = 0;
  time_t now = vv_clock_now ();
  time_t deadline = now + IDLE_SECONDS;
  _cleanup_vir_conn_ virConnectPtr conn = NULL;

  if (now >= s->next_cleanup) {
    unsigned done = 0, left = 0;
    if (vv_backup_retry_cleanups (s->cfg.engine, NULL, &done, &left) == -1)
      slog (s, "cannot retry pending cleanups: %s", vv_get_error ());
    else if (done || left != s->cleanups_logged)
      /* Not every 5 minutes while nothing changes (a shut-off domain). */
      slog (s, "pending cleanups of failed backups: %u finished, %u still "
            "left", done, left);
    s->cleanups_logged = left;
    s->cleanups_left = left > 0;
    s->next_cleanup = now + CLEANUP_RETRY_SECONDS;
  }
  if (s->cleanups_left && s->next_cleanup < deadline)
    deadline = s->next_cleanup;

  if (vv_catalog_policy_list (c, VV_OWNER_ANY, &pv, &np) == -1
      || vv_catalog_attachment_list (c, NULL, &av, &na) == -1) {
    slog (s, "scheduler: cannot read the policies: %s", vv_get_error ());
    vv_policy_recs_free (pv, np);
    return now + 60;
  }
  for (size_t i = 0; i < na; i++) {
    const struct vv_attachment_rec *a = av[i];
    const struct vv_policy_rec *p = NULL;
    struct vv_schedule sched, rs;
    time_t last, next, slot = 0, t;
    bool running, full;
    time_t retry_at = 0, retry_slot = 0;

    for (size_t j = 0; j < np && p == NULL; j++)
      if (strcmp (pv[j]->name, a->policy) == 0)
        p = pv[j];
    if (p == NULL || strcmp (p->status, "paused") == 0)
      continue;
    if (strlen (a->domain_uuid) >= UUID_MAX)
      continue;
    if (vv_policy_schedule (p, &sched) == -1) {
      slog (s, "scheduler: %s", vv_get_error ());
      continue;
    }
    vv_policy_run_schedule (&sched, p->max_chain, &rs);
    {
      VV_LOCK_GUARD (&s->lock);
      struct attempt *at = attempt_get (s, p->name, a->domain_uuid);
      running = (at && at->running) || verifying_locked (s, a->domain_uuid);
      if (at && at->retry_at) {
        retry_at = at->retry_at;
        retry_slot = at->slot;
      }
      full = s->running >= s->cfg.max_concurrent;
    }
    if (running)
      continue;
    if (last_slot (s, p, a, &last) == -1
        || vv_schedule_next_run (&rs, a->domain_uuid, last, &next) == -1) {
      slog (s, "scheduler: policy '%s', instance '%s': %s", p->name,
            a->domain, vv_get_error ());
      continue;
    }
    if (next <= now) {
      /* However many slots were missed, the newest one runs, once. */
      slot = next;
      for (int k = 0; k < CATCH_UP_MAX; k++) {
        if (vv_schedule_next_run (&rs, a->domain_uuid, slot, &t) == -1
            || t > now)
          break;
        slot = t;
      }
    }
    else if (retry_at && retry_at <= now)
      slot = retry_slot;
    else {
      if (next < deadline)
        deadline = next;
      if (retry_at && retry_at < deadline)
        deadline = retry_at;
      continue;
    }
    if (full)
      continue;                 /* a finishing job kicks us */
    {
      unsigned failures = 0;
      bool had = false;
      {
        VV_LOCK_GUARD (&s->lock);
        struct attempt *at = attempt_get (s, p->name, a->domain_uuid);
        if (at) {
          had = at->failures || at->retry_at;
          if (slot != retry_slot)
            at->failures = 0;
          at->retry_at = 0;
          failures = at->failures;
        }
      }
      /* The retry is taken: a restart from here on must not take it
       * again (the run itself is recorded running, and a daemon that
       * stops during it counts it failed).
       */
      if (had)
        persist_retry (s, p->name, a->domain_uuid, slot, failures, 0);
    }
    start_run (s, &conn, p, a, slot);
    if (deadline > now + 1)
      deadline = now + 1;       /* look again soon: the next slot */
  }
  /* After the backups, which go first: a domain whose backup was just
   * submitted is busy for its verify.
   */
  deadline = verify_pass (s, pv, np, now, deadline);
  vv_policy_recs_free (pv, np);
  vv_attachment_recs_free (av, na);
  return deadline;
}

static void *
loop (void *arg)
{
  struct vv_scheduler *s = arg;

  for (;;) {
    uint64_t gen = vv_clock_generation (), mine;
    time_t deadline;

    {
      VV_LOCK_GUARD (&s->lock);
      if (s->stopping)
        break;
      mine = ++s->passes_started;
    }
    deadline = pass (s);
    {
      VV_LOCK_GUARD (&s->lock);
      s->passes_done = mine;
      pthread_cond_broadcast (&s->cond);
    }
    vv_clock_sleep_until (deadline, gen);
  }
  return NULL;
}

struct vv_scheduler *
vv_scheduler_new (const struct vv_scheduler_config *cfg)
{
  struct vv_scheduler *s = calloc (1, sizeof *s);
  pthread_condattr_t attr;

  if (s == NULL) {
    vv_error_errno (errno, "creating the scheduler");
    return NULL;
  }
  s->cfg = *cfg;
  if (s->cfg.max_concurrent == 0)
    s->cfg.max_concurrent = VV_SCHEDULER_DEFAULT_CONCURRENT;
  pthread_mutex_init (&s->lock, NULL);
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&s->cond, &attr);
  pthread_condattr_destroy (&attr);
  return s;
}

/* Runs a stopped daemon left marked running failed, each counting as a
 * failed try of its slot (so it is retried with the back-off).
 */
static void
recover_runs (struct vv_scheduler *s)
{
  struct vv_catalog *c = s->cfg.engine->catalog;
  static const char msg[] = "virtvaultd stopped during the run";
  struct vv_run_rec **v = NULL;
  size_t n = 0;

  if (vv_catalog_run_list_running (c, &v, &n) == -1) {
    slog (s, "scheduler: cannot list unfinished runs: %s", vv_get_error ());
    return;
  }
  for (size_t i = 0; i < n; i++) {
    struct vv_backup_rec *b = NULL;
    bool completed;
    time_t slot;

    /* Start-up recovery may have found its backup complete. */
    if (v[i]->backup_id)
      b = vv_catalog_backup_get (c, v[i]->backup_id, VV_OWNER_ANY);
    completed = b && strcmp (b->status, "completed") == 0;
    vv_backup_rec_free (b);
    vv_clear_error ();
    if (completed) {
      if (vv_catalog_run_finish (c, v[i]->id, "ok", NULL, "the backup "
                                 "completed; virtvaultd stopped before "
                                 "retention") == 0)
        run_succeeded (s, v[i]->policy, v[i]->domain_uuid);
      continue;
    }
    if (vv_catalog_run_finish (c, v[i]->id, "failed", NULL, msg) == -1) {
      slog (s, "policy '%s': cannot mark a run failed: %s", v[i]->policy,
            vv_get_error ());
      continue;
    }
    if (strlen (v[i]->policy) > VV_POLICY_NAME_MAX
        || strlen (v[i]->domain_uuid) >= UUID_MAX
        || vv_parse_time_utc (v[i]->scheduled_for, &slot) == -1)
      continue;
    run_failed (s, v[i]->policy, v[i]->domain_uuid, v[i]->domain, slot, msg);
  }
  vv_run_recs_free (v, n);
}

int
vv_scheduler_start (struct vv_scheduler *s)
{
  int r;

  load_retries (s);
  recover_runs (s);
  /* recover() at start-up has just retried the pending cleanups. */
  s->next_cleanup = vv_clock_now () + CLEANUP_RETRY_SECONDS;
  s->cleanups_left = true;
  r = pthread_create (&s->thread, NULL, loop, s);

  if (r != 0) {
    vv_error_errno (r, "starting the scheduler thread");
    return -1;
  }
  s->started = true;
  return 0;
}

void
vv_scheduler_stop (struct vv_scheduler *s)
{
  if (s == NULL || !s->started)
    return;
  {
    VV_LOCK_GUARD (&s->lock);
    s->stopping = true;
    pthread_cond_broadcast (&s->cond);
  }
  vv_clock_kick ();
  pthread_join (s->thread, NULL);
  s->started = false;
}

struct vv_scheduler *
vv_scheduler_free (struct vv_scheduler *s)
{
  if (s == NULL)
    return NULL;
  vv_scheduler_stop (s);
  pthread_mutex_destroy (&s->lock);
  pthread_cond_destroy (&s->cond);
  free (s->att);
  free (s->verifying);
  free (s);
  return NULL;
}

void
vv_scheduler_sync (struct vv_scheduler *s)
{
  struct timespec until;
  uint64_t want;

  if (s == NULL || !s->started)
    return;
  clock_gettime (CLOCK_MONOTONIC, &until);
  until.tv_sec += 60;
  {
    VV_LOCK_GUARD (&s->lock);
    want = s->passes_started + 1;
  }
  vv_clock_kick ();
  VV_LOCK_GUARD (&s->lock);
  while (s->passes_done < want && !s->stopping)
    if (pthread_cond_timedwait (&s->cond, &s->lock, &until) == ETIMEDOUT)
      break;
}
