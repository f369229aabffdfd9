#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

void
vv_job_rec_free (struct vv_job_rec *r)
{
  if (r == NULL)
    return;
  free (r->id);
  free (r->kind);
  free (r->status);
  free (r->domain);
  free (r->domain_uuid);
  free (r->backup_id);
  free (r->error);
  free (r->created_at);
  free (r->started_at);
  free (r->finished_at);
  free (r);
}

void
vv_job_recs_free (struct vv_job_rec **v, size_t n)
{
  size_t i;

  if (v == NULL)
    return;
  for (i = 0; i < n; i++)
    vv_job_rec_free (v[i]);
  free (v);
}

static int
job_not_found (const char *id)
{
  vv_error_code (VV_ERR_NOT_FOUND, "no job with id '%s'", id);
  return -1;
}

#define JOB_COLUMNS                                                     \
  "id, kind, status, domain, domain_uuid, backup_id, bytes_done,"      \
  " bytes_total, error, created_at, started_at, finished_at, owner_uid"

static struct vv_job_rec *
read_job (sqlite3_stmt *s)
{
  struct vv_job_rec *r = calloc (1, sizeof *r);

  if (r == NULL) {
    vv_error_errno (errno, "reading a job");
    return NULL;
  }
  if (vv_cat_column_text (s, 0, &r->id) == -1
      || vv_cat_column_text (s, 1, &r->kind) == -1
      || vv_cat_column_text (s, 2, &r->status) == -1
      || vv_cat_column_text (s, 3, &r->domain) == -1
      || vv_cat_column_text (s, 4, &r->domain_uuid) == -1
      || vv_cat_column_text (s, 5, &r->backup_id) == -1
      || vv_cat_column_text (s, 8, &r->error) == -1
      || vv_cat_column_text (s, 9, &r->created_at) == -1
      || vv_cat_column_text (s, 10, &r->started_at) == -1
      || vv_cat_column_text (s, 11, &r->finished_at) == -1) {
    vv_job_rec_free (r);
    return NULL;
  }
  r->bytes_done = sqlite3_column_int64 (s, 6);
  r->bytes_total = sqlite3_column_int64 (s, 7);
  r->owner_uid = sqlite3_column_int64 (s, 12);
  return r;
}

static int
collect (struct vv_catalog *c, sqlite3_stmt *s, const char *what,
         struct vv_job_rec ***ret, size_t *ret_n)
{
  struct vv_job_rec **v = NULL;
  size_t n = 0, cap = 0;
  int rc;

  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct vv_job_rec *j = read_job (s);
    if (j == NULL || vv_cat_append ((void ***) &v, &n, &cap, j) == -1) {
      vv_job_rec_free (j);
      goto fail;
    }
  }
  if (rc != SQLITE_DONE) {
    vv_cat_error (c, "%s", what);
    goto fail;
  }
  *ret = v;
  *ret_n = n;
  return 0;

 fail:
  vv_job_recs_free (v, n);
  return -1;
}

static bool
known_kind (const char *kind)
{
  return kind && (strcmp (kind, "backup") == 0
                  || strcmp (kind, "restore") == 0
                  || strcmp (kind, "verify") == 0);
}

static int
check_progress (const char *id, uint64_t done, uint64_t total)
{
  if (done > INT64_MAX || total > INT64_MAX) {
    vv_error_code (VV_ERR_INVALID, "progress of job '%s' is out of range",
                   id);
    return -1;
  }
  return 0;
}

int
vv_catalog_job_insert (struct vv_catalog *c, const struct vv_job_rec *r)
{
  static const char what[] = "recording a job";
  char now[VV_TIME_MAX];

  if (r == NULL || r->id == NULL) {
    vv_error_code (VV_ERR_INVALID, "job record lacks its id");
    return -1;
  }
  if (!known_kind (r->kind)) {
    vv_error_code (VV_ERR_INVALID,
                   "job kind '%s' is not one of backup, restore, verify",
                   r->kind ? r->kind : "(null)");
    return -1;
  }
  if ((r->status && vv_cat_check_status ("job", r->status) == -1)
      || check_progress (r->id, r->bytes_done, r->bytes_total) == -1)
    return -1;
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "INSERT INTO jobs (" JOB_COLUMNS ") VALUES (?1, ?2,"
                      " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, r->id)
      || vv_cat_bind_text (s, 2, r->kind)
      || vv_cat_bind_text (s, 3, r->status ? r->status : "pending")
      || vv_cat_bind_text (s, 4, r->domain)
      || vv_cat_bind_text (s, 5, r->domain_uuid)
      || vv_cat_bind_text (s, 6, r->backup_id)
      || vv_cat_bind_int64 (s, 7, (int64_t) r->bytes_done)
      || vv_cat_bind_int64 (s, 8, (int64_t) r->bytes_total)
      || vv_cat_bind_text (s, 9, r->error)
      || vv_cat_bind_text (s, 10, r->created_at ? r->created_at : now)
      || vv_cat_bind_text (s, 11, r->started_at)
      || vv_cat_bind_text (s, 12, r->finished_at)
      || vv_cat_bind_int64 (s, 13, r->owner_uid))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE) {
    if (sqlite3_extended_errcode (c->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
      vv_error_code (VV_ERR_BUSY, "job '%s' already exists", r->id);
      return -1;
    }
    return vv_cat_error (c, "recording job '%s'", r->id);
  }
  return 0;
}

static int
update_one (struct vv_catalog *c, sqlite3_stmt *s, const char *id,
            const char *what)
{
  if (sqlite3_step (s) != SQLITE_DONE)
    return vv_cat_error (c, "%s '%s'", what, id);
  if (sqlite3_changes (c->db) == 0)
    return job_not_found (id);
  return 0;
}

int
vv_catalog_job_set_status (struct vv_catalog *c, const char *id,
                           const char *status, const char *error)
{
  static const char what[] = "updating the status of job";
  char now[VV_TIME_MAX];
  bool final;

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "job id is missing");
    return -1;
  }
  if (vv_cat_check_status ("job", status) == -1)
    return -1;
  final = vv_cat_status_is_final (status);
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  /* started_at keeps the first start; a job cancelled while pending never
   * started.
   */
  if (vv_cat_prepare (c, what,
                      "UPDATE jobs SET status = ?2, error = ?3,"
                      " started_at = CASE WHEN ?2 = 'running'"
                      "   THEN coalesce (started_at, ?4) ELSE started_at END,"
                      " finished_at = ?5 WHERE id = ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id)
      || vv_cat_bind_text (s, 2, status)
      || vv_cat_bind_text (s, 3, error)
      || vv_cat_bind_text (s, 4, now)
      || vv_cat_bind_text (s, 5, final ? now : NULL))
    return vv_cat_bind_error (c, what);
  return update_one (c, s, id, what);
}

int
vv_catalog_job_set_progress (struct vv_catalog *c, const char *id,
                             uint64_t done, uint64_t total)
{
  static const char what[] = "updating the progress of job";

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "job id is missing");
    return -1;
  }
  if (check_progress (id, done, total) == -1)
    return -1;

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "UPDATE jobs SET bytes_done = ?2, bytes_total = ?3"
                      " WHERE id = ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id)
      || vv_cat_bind_int64 (s, 2, (int64_t) done)
      || vv_cat_bind_int64 (s, 3, (int64_t) total))
    return vv_cat_bind_error (c, what);
  return update_one (c, s, id, what);
}

struct vv_job_rec *
vv_catalog_job_get (struct vv_catalog *c, const char *id,
                    int64_t owner_filter)
{
  static const char what[] = "reading a job";
  int rc;

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "job id is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  rc = vv_cat_select_one (c, what,
                          "SELECT " JOB_COLUMNS " FROM jobs"
                          " WHERE id = ?1 AND (?2 = -1 OR owner_uid = ?2)",
                          id, owner_filter, &s);
  if (rc == 1)
    return read_job (s);
  if (rc == 0)
    job_not_found (id);
  return NULL;
}

int
vv_catalog_job_list (struct vv_catalog *c, int64_t owner_filter,
                     size_t limit, struct vv_job_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing jobs";

  if (limit == 0)
    limit = VV_CATALOG_LIST_DEFAULT;
  if (limit > VV_CATALOG_LIST_MAX)
    limit = VV_CATALOG_LIST_MAX;

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " JOB_COLUMNS " FROM jobs"
                      " WHERE (?1 = -1 OR owner_uid = ?1)"
                      " ORDER BY created_at DESC, rowid DESC LIMIT ?2",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_int64 (s, 1, owner_filter)
      || vv_cat_bind_int64 (s, 2, (int64_t) limit))
    return vv_cat_bind_error (c, what);
  return collect (c, s, what, ret, ret_n);
}

int
vv_catalog_job_list_unfinished (struct vv_catalog *c,
                                struct vv_job_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing unfinished jobs";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " JOB_COLUMNS " FROM jobs"
                      " WHERE status IN ('pending', 'running')"
                      " ORDER BY created_at DESC, rowid DESC", &s) == -1)
    return -1;
  return collect (c, s, what, ret, ret_n);
}
