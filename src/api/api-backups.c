#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "restore/restore.h"
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
  return r;
}

static int
run_restore (void *arg, struct vv_progress *p)
{
  struct task *t = arg;
  struct vv_restore_request req = {
    .backup_id = t->backup_id, .dir = t->dir, .format = t->format,
    .owner_filter = t->owner_filter,
  };
  char what[PATH_MAX + 128];
  int r;

  t->ran = true;
  snprintf (what, sizeof what, "restore of backup %s to %s", t->backup_id,
            t->dir);
  vv_api_log (t->ctx, "job %s started: %s", t->job_id, what);
  r = vv_restore_to_dir (t->ctx->engine, &req, p);
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
  r = vv_verify_backup (t->ctx->engine, t->backup_id, t->owner_filter, p);
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
  "domain", "target", "all_disks", "disks", NULL
};

int
vv_api_backup_create (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the backup request";
  _cleanup_json_ json_object *req = NULL;
  const char *domain = NULL, *target = NULL;
  bool all_disks = false;
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
      || vv_json_get_array (req, what, "disks", &disks) == -1)
    return -1;
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
  };
  if (vv_backup_prepare (r->ctx->engine, &breq, &bj, &rec) == -1)
    return -1;
  vv_api_set_audit (r, rec->id, NULL);

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
  json_object_object_add (o, "backup", vv_backup_to_json (now ? now : rec));
  vv_api_set_audit (r, NULL, job_id);
  *ret = o;
  return 202;
}

/* ---- GET /v1/backups, GET /v1/backups/{id} ---- */

int
vv_api_backup_list (struct vv_api_request *r, json_object **ret)
{
  static const char *const allowed[] = { "domain", NULL };
  _cleanup_free_ char *domain = NULL;
  struct vv_backup_rec **v = NULL;
  size_t n = 0;
  json_object *a;

  if (vv_api_query_get (r, allowed, "domain", &domain) == -1)
    return -1;
  if (domain && (domain[0] == '\0' || strlen (domain) > VV_DOMAIN_NAME_MAX)) {
    vv_error_code (VV_ERR_INVALID,
                   "query parameter 'domain' must be a domain name or UUID "
                   "of 1 to %d bytes", VV_DOMAIN_NAME_MAX);
    return -1;
  }
  if (vv_catalog_backup_list (r->ctx->engine->catalog, domain,
                              r->owner_filter, &v, &n) == -1)
    return -1;
  a = json_object_new_array ();
  for (size_t i = 0; a && i < n; i++)
    json_object_array_add (a, vv_backup_to_json (v[i]));
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
  *ret = vv_backup_to_json (b);
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

static const char *const restore_keys[] = { "to", "format", NULL };

int
vv_api_backup_restore (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the restore request";
  _cleanup_json_ json_object *req = NULL;
  _cleanup_backup_rec_ struct vv_backup_rec *b = NULL;
  const char *to = NULL, *format = NULL;
  char job_id[VV_ID_MAX];
  struct task *t;
  int n;

  req = vv_api_parse_body (r, what, restore_keys, false);
  if (req == NULL)
    return -1;
  n = vv_json_get_string (req, what, "to", &to);
  if (n == -1 || vv_json_get_string (req, what, "format", &format) == -1)
    return -1;
  b = vv_catalog_backup_get (r->ctx->engine->catalog, r->param,
                             r->owner_filter);
  if (b == NULL)
    return -1;
  if (n == 0 || to[0] != '/') {
    vv_error_code (VV_ERR_INVALID,
                   "field 'to' of %s is required: an absolute directory to "
                   "write the disks to", what);
    return -1;
  }
  if (strlen (to) >= RESTORE_DIR_MAX) {
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
  /* The daemon writes the restored files as root. */
  if (vv_api_require_admin (r, "restoring to a directory") == -1)
    return -1;

  struct vv_restore_request rreq = {
    .backup_id = b->id, .dir = to, .format = format ? format : "qcow2",
    .owner_filter = r->owner_filter,
  };
  if (vv_restore_check (r->ctx->engine, &rreq) == -1)
    return -1;
  if (vv_random_id ("job", job_id) == -1)
    return -1;
  t = task_new (r, job_id, b->id, b->domain);
  if (t == NULL)
    return -1;
  t->dir = vv_strdup (to);
  t->format = vv_strdup (rreq.format);
  if (t->dir == NULL || t->format == NULL) {
    t->ran = true;
    task_free (t);
    return -1;
  }
  if (submit (r, t, "restore", NULL, run_restore) == -1)
    return -1;
  return job_answer (r, job_id, ret);
}
