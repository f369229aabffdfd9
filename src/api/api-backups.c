/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "restore/restore.h"
#include "scheduler/scheduler.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"
#include "api/api-internal.h"

/* Longest disk name (target dev) and restore directory accepted. */
#define DISK_NAME_MAX 32
#define RESTORE_DIR_MAX PATH_MAX

/* Keeps the current thread's error across calls that may overwrite it. */
struct saved_error {
  enum vv_errcode code;
  char msg[2048];
};

static void
save_error (struct saved_error *s)
{
  s->code = vv_get_error_code ();
  snprintf (s->msg, sizeof s->msg, "%s", vv_get_error ());
}

static void
restore_error (const struct saved_error *s)
{
  vv_error_code (s->code, "%s", s->msg);
}

/* ---- the jobs' bodies ---- */

/* What a backup, restore or verify job needs once the request is gone. */
struct task {
  struct vv_api_context *ctx;
  char job_id[VV_ID_MAX];
  char *backup_id;
  char *domain;
  int64_t owner_filter;
  struct vv_backup_job *backup_job;   /* backup */
  char *dir;                          /* restore */
  char *format;                       /* restore */
  enum vv_restore_mode mode;          /* restore */
  char **disks;                       /* restore: NULL for all */
  bool force_stop;                    /* restore in place */
  int stop_timeout;                   /* restore in place */
  char *new_name;                     /* restore as new */
  char *new_uuid;                     /* restore as new */
  bool start;                         /* restore in place, as new */
  char *notes;                        /* recorded with the job */
  bool ran;
};

static void
task_free (void *arg)
{
  struct task *t = arg;

  if (t == NULL)
    return;
  /* A backup whose job was cancelled while it waited in the queue never
   * reached the engine: close its pending row here.
   */
  if (t->backup_job && !t->ran) {
    struct vv_catalog *c = t->ctx->engine->catalog;
    struct vv_backup_rec *b = vv_catalog_backup_get (c, t->backup_id,
                                                     VV_OWNER_ANY);
    if (b && strcmp (b->status, "pending") == 0)
      vv_catalog_backup_set_status (c, t->backup_id, "cancelled",
                                    "cancelled before it started");
    vv_backup_rec_free (b);
  }
  if (!t->ran)
    vv_api_log (t->ctx, "job %s cancelled before it started", t->job_id);
  vv_backup_job_free (t->backup_job);
  free (t->backup_id);
  free (t->domain);
  free (t->dir);
  free (t->format);
  free (t->notes);
  vv_strv_free (t->disks);
  free (t->new_name);
  free (t->new_uuid);
  free (t);
}

static struct task *
task_new (struct vv_api_request *r, const char *job_id, const char *backup_id,
          const char *domain)
{
  struct task *t = calloc (1, sizeof *t);

  if (t == NULL) {
    vv_error_errno (errno, "allocating job %s", job_id);
    return NULL;
  }
  t->ctx = r->ctx;
  snprintf (t->job_id, sizeof t->job_id, "%s", job_id);
  t->owner_filter = r->owner_filter;
  t->backup_id = vv_strdup (backup_id);
  t->domain = vv_strdup (domain);
  if (t->backup_id == NULL || (domain && t->domain == NULL)) {
    task_free (t);
    return NULL;
  }
  t->ran = true;                /* until it is queued */
  return t;
}

static void
log_end (struct task *t, const char *what, int r, struct vv_progress *p)
{
  if (r == 0)
    vv_api_log (t->ctx, "job %s completed: %s", t->job_id, what);
  else
    vv_api_log (t->ctx, "job %s %s: %s: %s", t->job_id,
                vv_progress_cancelled (p) ? "cancelled" : "failed", what,
                vv_get_error ());
}

/* After a manual backup completes: the oldest unprotected manual backups
 * of the instance beyond the daemon's manual_limit go (retention with
 * no policy touches manual backups only).  A failure here is logged: the
 * backup itself succeeded.
 */
static void
apply_manual_limit (struct task *t)
{
  struct vv_retention_rules rules;
  _cleanup_backup_rec_ struct vv_backup_rec *b = NULL;
  _cleanup_free_ char *summary = NULL;
  unsigned deleted = 0;

  if (t->ctx->manual_limit == 0)
    return;
  b = vv_catalog_backup_get (t->ctx->engine->catalog, t->backup_id,
                             VV_OWNER_ANY);
  if (b == NULL)
    return;
  vv_retention_rules_init (&rules, NULL);
  rules.manual_limit = t->ctx->manual_limit;
  if (vv_retention_apply (t->ctx->engine, b->domain_uuid, &rules, &deleted,
                          &summary) == -1)
    vv_api_log (t->ctx, "job %s: applying the manual limit of %u to '%s' "
                "failed: %s", t->job_id, rules.manual_limit, b->domain,
                vv_get_error ());
  else if (deleted)
    vv_api_log (t->ctx, "job %s: manual limit %u of '%s': deleted %s",
                t->job_id, rules.manual_limit, b->domain,
                summary ? summary : "backups");
}

static int
run_backup (void *arg, struct vv_progress *p)
{
  struct task *t = arg;
  char what[512];
  int r;

  t->ran = true;
  snprintf (what, sizeof what, "backup %s of domain '%s'", t->backup_id,
            t->domain ? t->domain : "?");
  vv_api_log (t->ctx, "job %s started: %s", t->job_id, what);
  r = vv_backup_run (t->ctx->engine, t->backup_job, p);
  log_end (t, what, r, p);
  if (r == 0)
    apply_manual_limit (t);
  return r;
}

static int
run_restore (void *arg, struct vv_progress *p)
{
  struct task *t = arg;
  struct vv_restore_request req = {
    .backup_id = t->backup_id, .dir = t->dir, .format = t->format,
    .owner_filter = t->owner_filter, .mode = t->mode,
    .disks = (const char *const *) t->disks, .force_stop = t->force_stop,
    .stop_timeout = t->stop_timeout, .new_name = t->new_name,
    .new_uuid = t->new_uuid, .start = t->start,
  };
  char what[PATH_MAX + 256];
  int r;

  t->ran = true;
  if (t->mode == VV_RESTORE_IN_PLACE)
    snprintf (what, sizeof what, "restore of backup %s in place over the "
              "disks of domain '%s'", t->backup_id,
              t->domain ? t->domain : "?");
  else if (t->mode == VV_RESTORE_AS_NEW)
    snprintf (what, sizeof what, "restore of backup %s as new domain '%s' "
              "(UUID %s) in %s", t->backup_id, t->new_name, t->new_uuid,
              t->dir);
  else
    snprintf (what, sizeof what, "restore of backup %s to %s", t->backup_id,
              t->dir);
  vv_api_log (t->ctx, "job %s started: %s", t->job_id, what);
  r = vv_restore_run (t->ctx->engine, &req, p);
  log_end (t, what, r, p);
  return r;
}

static int
run_verify (void *arg, struct vv_progress *p)
{
  struct task *t = arg;
  char what[128];
  int r;

  t->ran = true;
  snprintf (what, sizeof what, "verify of backup %s", t->backup_id);
  vv_api_log (t->ctx, "job %s started: %s", t->job_id, what);
  r = vv_verify_backup (t->ctx->engine, t->backup_id, t->owner_filter, p,
                        NULL);
  log_end (t, what, r, p);
  return r;
}

/* Queues t; on failure t is freed and the error kept. */
static int
submit (struct vv_api_request *r, struct task *t, const char *kind,
        const char *domain_uuid, vv_job_fn fn)
{
  struct vv_job_spec spec = {
    .id = t->job_id,
    .kind = kind,
    .domain = t->domain,
    .domain_uuid = domain_uuid,
    .backup_id = t->backup_id,
    .owner_uid = r->uid,
    .run = fn,
    .arg = t,
    .free_arg = task_free,
    .notes = t->notes,
  };

  t->ran = false;
  if (vv_jobs_submit (r->ctx->jobs, &spec) == -1) {
    struct saved_error e;
    save_error (&e);
    t->ran = true;              /* nothing to close or log: it never queued */
    task_free (t);
    restore_error (&e);
    return -1;
  }
  return 0;
}

/* ---- POST /v1/backups ---- */

/* Fails with VV_ERR_BUSY, in the words of vv_jobs_submit, when a job that
 * holds the domain (given by name or UUID) is pending or running.
 */
static int
check_domain_free (struct vv_api_request *r, const char *domain)
{
  struct vv_job_rec **v = NULL;
  size_t n = 0;
  int ret = 0;

  if (vv_catalog_job_list_unfinished (r->ctx->engine->catalog, &v, &n) == -1)
    return -1;
  for (size_t i = 0; i < n; i++) {
    const struct vv_job_rec *j = v[i];
    if (j->domain_uuid == NULL)
      continue;                 /* restores and verifies hold no domain */
    if (strcmp (j->domain_uuid, domain) == 0
        || (j->domain && strcmp (j->domain, domain) == 0)) {
      vv_error_code (VV_ERR_BUSY,
                     "domain '%s' is busy with job %s (%s); wait for it or "
                     "cancel it with 'virtvault job cancel %s'",
                     j->domain ? j->domain : domain, j->id, j->kind, j->id);
      ret = -1;
      break;
    }
  }
  vv_job_recs_free (v, n);
  return ret;
}

static const char *const backup_keys[] = {
  "domain", "target", "all_disks", "disks", "mode", "max_chain", "quiesce",
  "pause", "protect", NULL
};

int
vv_api_backup_create (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the backup request";
  _cleanup_json_ json_object *req = NULL;
  const char *domain = NULL, *target = NULL;
  const char *mode = NULL, *quiesce = NULL;
  uint64_t max_chain = 0;
  int has_max_chain = 0;
  bool all_disks = false, pause = false, protect = false;
  json_object *disks = NULL;
  _cleanup_free_ const char **disk_v = NULL;
  char job_id[VV_ID_MAX];
  struct vv_backup_job *bj = NULL;
  _cleanup_backup_rec_ struct vv_backup_rec *rec = NULL;
  struct task *t;
  int n;

  req = vv_api_parse_body (r, what, backup_keys, false);
  if (req == NULL)
    return -1;
  n = vv_json_get_string (req, what, "domain", &domain);
  if (n == -1)
    return -1;
  if (n == 0 || domain[0] == '\0') {
    vv_error_code (VV_ERR_INVALID,
                   "field 'domain' of %s is required: the name or UUID of "
                   "the domain to back up", what);
    return -1;
  }
  if (strlen (domain) > VV_DOMAIN_NAME_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'domain' of %s is longer than %d bytes", what,
                   VV_DOMAIN_NAME_MAX);
    return -1;
  }
  vv_api_set_audit (r, domain, NULL);
  if (vv_json_get_string (req, what, "target", &target) == -1
      || vv_json_get_bool (req, what, "all_disks", &all_disks) == -1
      || vv_json_get_array (req, what, "disks", &disks) == -1
      || vv_json_get_string (req, what, "mode", &mode) == -1
      || (has_max_chain = vv_json_get_uint64 (req, what, "max_chain",
                                              &max_chain)) == -1
      || vv_json_get_string (req, what, "quiesce", &quiesce) == -1
      || vv_json_get_bool (req, what, "pause", &pause) == -1
      || vv_json_get_bool (req, what, "protect", &protect) == -1)
    return -1;
  if (mode && strcmp (mode, "auto") != 0 && strcmp (mode, "full") != 0
      && strcmp (mode, "incremental") != 0) {
    vv_error_code (VV_ERR_INVALID, "field 'mode' of %s must be \"auto\", "
                   "\"full\" or \"incremental\"", what);
    return -1;
  }
  if (has_max_chain == 1
      && (max_chain < 1 || max_chain > 1000)) {
    vv_error_code (VV_ERR_INVALID, "field 'max_chain' of %s must be 1 to "
                   "1000 (incremental backups per chain)", what);
    return -1;
  }
  if (quiesce && strcmp (quiesce, "off") != 0 && strcmp (quiesce, "on") != 0
      && strcmp (quiesce, "try") != 0) {
    vv_error_code (VV_ERR_INVALID, "field 'quiesce' of %s must be \"off\", "
                   "\"on\" or \"try\"", what);
    return -1;
  }
  if (target && vv_check_name ("target name", target, 64) == -1)
    return -1;
  if (disks) {
    size_t nd = json_object_array_length (disks);

    if (all_disks) {
      vv_error_code (VV_ERR_INVALID,
                     "%s gives both 'all_disks' and 'disks'; give one", what);
      return -1;
    }
    if (nd == 0 || nd > VV_MAX_DISKS) {
      vv_error_code (VV_ERR_INVALID,
                     "field 'disks' of %s must list 1 to %d disks", what,
                     VV_MAX_DISKS);
      return -1;
    }
    disk_v = calloc (nd + 1, sizeof *disk_v);
    if (disk_v == NULL) {
      vv_error_errno (errno, "reading %s", what);
      return -1;
    }
    for (size_t i = 0; i < nd; i++) {
      json_object *d = json_object_array_get_idx (disks, i);
      if (!json_object_is_type (d, json_type_string)) {
        vv_error_code (VV_ERR_INVALID,
                       "field 'disks' of %s must be an array of disk names "
                       "such as \"vda\"", what);
        return -1;
      }
      disk_v[i] = json_object_get_string (d);
      if (vv_check_name ("disk name", disk_v[i], DISK_NAME_MAX) == -1)
        return -1;
    }
  }
  if (vv_api_require_admin (r, "backing up a domain") == -1)
    return -1;

  /* The job queue says "busy" too, but only after prepare, which would
   * first trip over the domain's running libvirt job.
   */
  if (check_domain_free (r, domain) == -1)
    return -1;
  if (vv_random_id ("job", job_id) == -1)
    return -1;
  struct vv_backup_request breq = {
    .domain = domain,
    .target = target,
    .all_disks = all_disks,
    .disks = disk_v,
    .job_id = job_id,
    .owner_uid = r->uid,
    .mode = mode,
    .max_chain = (unsigned) max_chain,
    .quiesce = quiesce,
    .pause = pause,
  };
  if (vv_backup_prepare (r->ctx->engine, &breq, &bj, &rec) == -1)
    return -1;
  vv_api_set_audit (r, rec->id, NULL);
  if (protect && vv_catalog_backup_set_protected (r->ctx->engine->catalog,
                                                  rec->id, true) == -1) {
    struct saved_error e;
    save_error (&e);
    vv_backup_job_free (bj);
    vv_catalog_backup_delete (r->ctx->engine->catalog, rec->id);
    restore_error (&e);
    return -1;
  }

  t = task_new (r, job_id, rec->id, rec->domain);
  if (t == NULL) {
    struct saved_error e;
    save_error (&e);
    vv_backup_job_free (bj);
    vv_catalog_backup_delete (r->ctx->engine->catalog, rec->id);
    restore_error (&e);
    return -1;
  }
  t->backup_job = bj;
  if (submit (r, t, "backup", rec->domain_uuid, run_backup) == -1) {
    /* Leave nothing behind: the request failed as a whole. */
    struct saved_error e;
    save_error (&e);
    vv_catalog_backup_delete (r->ctx->engine->catalog, rec->id);
    restore_error (&e);
    return -1;
  }

  _cleanup_backup_rec_ struct vv_backup_rec *now =
    vv_catalog_backup_get (r->ctx->engine->catalog, rec->id, VV_OWNER_ANY);
  json_object *job = vv_api_job_json (r, job_id);
  json_object *o = json_object_new_object ();
  if (job == NULL || o == NULL) {
    json_object_put (job);
    json_object_put (o);
    return -1;
  }
  json_object_object_add (o, "job", job);
  json_object_object_add (o, "backup",
                          vv_api_backup_json (r, now ? now : rec, NULL));
  vv_api_set_audit (r, NULL, job_id);
  *ret = o;
  return 202;
}

/* ---- GET /v1/backups, GET /v1/backups/{id} ---- */

int
vv_api_backup_list (struct vv_api_request *r, json_object **ret)
{
  _cleanup_free_ char *domain = NULL;
  struct vv_backup_rec **v = NULL;
  size_t n = 0;
  json_object *a;

  if (vv_api_query_domain (r, &domain) == -1)
    return -1;
  if (vv_catalog_backup_list (r->ctx->engine->catalog, domain,
                              r->owner_filter, &v, &n) == -1)
    return -1;
  struct vv_api_prices *prices = vv_api_prices_load (r);
  a = json_object_new_array ();
  for (size_t i = 0; a && i < n; i++)
    json_object_array_add (a, vv_api_backup_json (r, v[i], prices));
  vv_api_prices_free (prices);
  vv_backup_recs_free (v, n);
  if (a == NULL) {
    vv_error ("out of memory listing backups");
    return -1;
  }
  *ret = a;
  return 200;
}

int
vv_api_backup_get (struct vv_api_request *r, json_object **ret)
{
  _cleanup_backup_rec_ struct vv_backup_rec *b =
    vv_catalog_backup_get (r->ctx->engine->catalog, r->param, r->owner_filter);

  if (b == NULL)
    return -1;
  *ret = vv_api_backup_json (r, b, NULL);
  return 200;
}

/* ---- DELETE /v1/backups/{id} ---- */

static const char *const no_keys[] = { NULL };

/* Refuses while a live job works on the backup (a restore or verify
 * reading it, or the backup itself).
 */
static int
check_no_live_job (struct vv_api_request *r, const char *backup_id)
{
  struct vv_job_rec **v = NULL;
  size_t n = 0;
  int ret = 0;

  if (vv_catalog_job_list_unfinished (r->ctx->engine->catalog, &v, &n) == -1)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (v[i]->backup_id && strcmp (v[i]->backup_id, backup_id) == 0) {
      vv_error_code (VV_ERR_BUSY,
                     "backup %s is in use by job %s (%s); wait for it or "
                     "cancel it with 'virtvault job cancel %s'",
                     backup_id, v[i]->id, v[i]->kind, v[i]->id);
      ret = -1;
      break;
    }
  vv_job_recs_free (v, n);
  return ret;
}

int
vv_api_backup_delete (struct vv_api_request *r, json_object **ret)
{
  _cleanup_json_ json_object *req = NULL;
  _cleanup_backup_rec_ struct vv_backup_rec *b = NULL;
  json_object *o;

  req = vv_api_parse_body (r, "the delete request", no_keys, true);
  if (req == NULL)
    return -1;
  b = vv_catalog_backup_get (r->ctx->engine->catalog, r->param,
                             r->owner_filter);
  if (b == NULL)
    return -1;
  if (check_no_live_job (r, b->id) == -1)
    return -1;
  if (vv_backup_delete (r->ctx->engine, b->id, r->owner_filter) == -1)
    return -1;
  o = json_object_new_object ();
  if (o == NULL) {
    vv_error ("out of memory");
    return -1;
  }
  json_object_object_add (o, "deleted", json_object_new_string (b->id));
  *ret = o;
  return 200;
}

/* ---- POST /v1/backups/{id}/verify and /restore ---- */

static int
job_answer (struct vv_api_request *r, const char *job_id, json_object **ret)
{
  json_object *job = vv_api_job_json (r, job_id);
  json_object *o;

  if (job == NULL)
    return -1;
  o = json_object_new_object ();
  if (o == NULL) {
    json_object_put (job);
    vv_error ("out of memory");
    return -1;
  }
  json_object_object_add (o, "job", job);
  vv_api_set_audit (r, NULL, job_id);
  *ret = o;
  return 202;
}

int
vv_api_backup_verify (struct vv_api_request *r, json_object **ret)
{
  _cleanup_json_ json_object *req = NULL;
  _cleanup_backup_rec_ struct vv_backup_rec *b = NULL;
  char job_id[VV_ID_MAX];
  struct task *t;

  req = vv_api_parse_body (r, "the verify request", no_keys, true);
  if (req == NULL)
    return -1;
  b = vv_catalog_backup_get (r->ctx->engine->catalog, r->param,
                             r->owner_filter);
  if (b == NULL)
    return -1;
  if (strcmp (b->status, "completed") != 0) {
    vv_error_code (VV_ERR_INVALID,
                   "backup %s is %s; only a completed backup can be verified",
                   b->id, b->status);
    return -1;
  }
  if (vv_random_id ("job", job_id) == -1)
    return -1;
  t = task_new (r, job_id, b->id, b->domain);
  if (t == NULL || submit (r, t, "verify", NULL, run_verify) == -1)
    return -1;
  return job_answer (r, job_id, ret);
}

static const char *const restore_keys[] = {
  "to", "format", "in_place", "force_stop", "stop_timeout", "as_new",
  "disks", "start", "force", NULL
};

/* The optional "disks" of a restore request as a NULL-terminated list. */
static int
restore_disks (json_object *req, const char *what, char ***ret)
{
  json_object *disks = NULL;
  _cleanup_strv_ char **v = NULL;
  size_t nd;

  if (vv_json_get_array (req, what, "disks", &disks) == -1)
    return -1;
  if (disks == NULL)
    return 0;
  nd = json_object_array_length (disks);
  if (nd == 0 || nd > VV_MAX_DISKS) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'disks' of %s must list 1 to %d disks", what,
                   VV_MAX_DISKS);
    return -1;
  }
  if ((v = calloc (nd + 1, sizeof *v)) == NULL) {
    vv_error_errno (errno, "reading %s", what);
    return -1;
  }
  for (size_t i = 0; i < nd; i++) {
    json_object *d = json_object_array_get_idx (disks, i);
    if (!json_object_is_type (d, json_type_string)) {
      vv_error_code (VV_ERR_INVALID,
                     "field 'disks' of %s must be an array of disk names "
                     "such as \"vda\"", what);
      return -1;
    }
    if (vv_check_name ("disk name", json_object_get_string (d),
                       DISK_NAME_MAX) == -1 ||
        (v[i] = vv_strdup (json_object_get_string (d))) == NULL)
      return -1;
  }
  *ret = TAKE_PTR (v);
  return 0;
}

static json_object *
strv_json (char **v)
{
  json_object *a = json_object_new_array ();

  for (size_t i = 0; a && v && v[i]; i++)
    json_object_array_add (a, json_object_new_string (v[i]));
  return a;
}

static json_object *
restore_info_json (enum vv_restore_mode mode,
                   const struct vv_restore_info *info)
{
  static const char *const modes[] = { "to_dir", "in_place", "as_new" };
  json_object *o = json_object_new_object ();

  if (o == NULL)
    return NULL;
  json_object_object_add (o, "mode", json_object_new_string (modes[mode]));
  json_object_object_add (o, "domain", info->domain
                          ? json_object_new_string (info->domain) : NULL);
  json_object_object_add (o, "domain_uuid", info->domain_uuid
                          ? json_object_new_string (info->domain_uuid)
                          : NULL);
  json_object_object_add (o, "dir", info->dir
                          ? json_object_new_string (info->dir) : NULL);
  json_object_object_add (o, "disks", strv_json (info->disks));
  json_object_object_add (o, "files", strv_json (info->files));
  json_object_object_add (o, "notes", info->notes
                          ? json_object_new_string (info->notes) : NULL);
  return o;
}

static void
cleanup_restore_info (struct vv_restore_info *i)
{
  vv_restore_info_clear (i);
}

int
vv_api_backup_restore (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the restore request";
  _cleanup_json_ json_object *req = NULL;
  _cleanup_backup_rec_ struct vv_backup_rec *b = NULL;
  _cleanup_strv_ char **disks = NULL;
  _cleanup_ (cleanup_restore_info) struct vv_restore_info info = { 0 };
  const char *to = NULL, *format = NULL, *as_new = NULL;
  bool in_place = false, force_stop = false, start = false, force = false;
  uint64_t stop_timeout = 0;
  int has_timeout, has_force, has_start;
  enum vv_restore_mode mode;
  char job_id[VV_ID_MAX];
  json_object *answer;
  struct task *t;
  int n, has_as_new;

  req = vv_api_parse_body (r, what, restore_keys, false);
  if (req == NULL)
    return -1;
  n = vv_json_get_string (req, what, "to", &to);
  if (n == -1 || vv_json_get_string (req, what, "format", &format) == -1 ||
      vv_json_get_bool (req, what, "in_place", &in_place) == -1 ||
      (has_as_new = vv_json_get_string (req, what, "as_new", &as_new)) == -1 ||
      (has_force = vv_json_get_bool (req, what, "force_stop",
                                     &force_stop)) == -1 ||
      (has_timeout = vv_json_get_uint64 (req, what, "stop_timeout",
                                         &stop_timeout)) == -1 ||
      (has_start = vv_json_get_bool (req, what, "start", &start)) == -1 ||
      vv_json_get_bool (req, what, "force", &force) == -1 ||
      restore_disks (req, what, &disks) == -1)
    return -1;
  b = vv_catalog_backup_get (r->ctx->engine->catalog, r->param,
                             r->owner_filter);
  if (b == NULL)
    return -1;

  /* One of three destinations; "to" names the directory of an as-new
   * restore too.
   */
  if ((in_place ? 1 : 0) + (has_as_new ? 1 : 0) + (n && !has_as_new ? 1 : 0)
      != 1 || (in_place && n)) {
    vv_error_code (VV_ERR_INVALID,
                   "%s needs exactly one destination: 'to' (an absolute "
                   "directory to write the disks to), \"in_place\": true "
                   "(over the domain's disks) or 'as_new' (the name of a new "
                   "domain, with 'to' as the directory of its disks)", what);
    return -1;
  }
  mode = in_place ? VV_RESTORE_IN_PLACE
    : has_as_new ? VV_RESTORE_AS_NEW : VV_RESTORE_TO_DIR;
  if (n && to[0] != '/') {
    vv_error_code (VV_ERR_INVALID,
                   "field 'to' of %s must be an absolute directory", what);
    return -1;
  }
  if (n && strlen (to) >= RESTORE_DIR_MAX) {
    vv_error_code (VV_ERR_INVALID, "field 'to' of %s is longer than %d bytes",
                   what, RESTORE_DIR_MAX - 1);
    return -1;
  }
  if (format && strcmp (format, "qcow2") != 0 && strcmp (format, "raw") != 0) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'format' of %s must be \"qcow2\" or \"raw\", not "
                   "'%.64s'", what, format);
    return -1;
  }
  if (mode == VV_RESTORE_IN_PLACE && format) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'format' does not apply to an in-place restore: "
                   "each disk keeps the format it has now");
    return -1;
  }
  if (mode != VV_RESTORE_IN_PLACE && (has_force || has_timeout)) {
    vv_error_code (VV_ERR_INVALID,
                   "fields 'force_stop' and 'stop_timeout' apply to an "
                   "in-place restore only");
    return -1;
  }
  if (mode == VV_RESTORE_TO_DIR && has_start) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'start' applies to in-place and as-new restores "
                   "only");
    return -1;
  }
  if (has_timeout && stop_timeout > VV_RESTORE_STOP_TIMEOUT_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'stop_timeout' of %s must be 0 to %d seconds",
                   what, VV_RESTORE_STOP_TIMEOUT_MAX);
    return -1;
  }
  if (has_as_new && vv_check_name ("field 'as_new' (the new domain's name)",
                                   as_new, VV_DOMAIN_NAME_MAX) == -1)
    return -1;
  /* The daemon writes the restored files as root, and defines domains. */
  if (vv_api_require_admin (r, "restoring a backup") == -1)
    return -1;

  struct vv_restore_request rreq = {
    .backup_id = b->id, .dir = to,
    .format = mode == VV_RESTORE_IN_PLACE ? NULL : format ? format : "qcow2",
    .owner_filter = r->owner_filter, .mode = mode,
    .disks = (const char *const *) disks, .force_stop = force_stop,
    .stop_timeout = has_timeout ? (int) stop_timeout : -1,
    .new_name = as_new, .start = start, .force = force,
  };
  if (vv_restore_plan (r->ctx->engine, &rreq, &info) == -1)
    return -1;
  /* In place holds the domain; as new holds the new name. */
  if (mode != VV_RESTORE_TO_DIR &&
      (check_domain_free (r, info.domain) == -1 ||
       check_domain_free (r, info.domain_uuid) == -1))
    return -1;
  if (vv_random_id ("job", job_id) == -1)
    return -1;
  t = task_new (r, job_id, b->id,
                mode == VV_RESTORE_TO_DIR ? b->domain : info.domain);
  if (t == NULL)
    return -1;
  t->mode = mode;
  t->dir = info.dir ? vv_strdup (info.dir) : NULL;
  t->format = rreq.format ? vv_strdup (rreq.format) : NULL;
  t->force_stop = force_stop;
  t->stop_timeout = rreq.stop_timeout;
  t->start = start;
  t->disks = TAKE_PTR (disks);
  if (mode == VV_RESTORE_AS_NEW) {
    t->new_name = vv_strdup (as_new);
    t->new_uuid = vv_strdup (info.domain_uuid);
  }
  /* As new: what of the stored definition was left out or changed. */
  t->notes = info.notes ? vv_strdup (info.notes) : NULL;
  if ((info.dir && t->dir == NULL) || (rreq.format && t->format == NULL) ||
      (info.notes && t->notes == NULL) ||
      (mode == VV_RESTORE_AS_NEW &&
       (t->new_name == NULL || t->new_uuid == NULL))) {
    t->ran = true;
    task_free (t);
    return -1;
  }
  if (submit (r, t, "restore",
              mode == VV_RESTORE_TO_DIR ? NULL : info.domain_uuid,
              run_restore) == -1)
    return -1;
  if (job_answer (r, job_id, ret) == -1)
    return -1;
  answer = restore_info_json (mode, &info);
  if (answer == NULL) {
    json_object_put (*ret);
    vv_error ("out of memory");
    return -1;
  }
  json_object_object_add (*ret, "restore", answer);
  return 202;
}
