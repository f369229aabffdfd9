/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

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
  free (r->notes);
  free (r);
}

static int
job_not_found (const char *id)
{
  vv_error_code (VV_ERR_NOT_FOUND, "no job with id '%s'", id);
  return -1;
}

#define JOB_COLUMNS                                                     \
  "id, kind, status, domain, domain_uuid, backup_id, bytes_done,"      \
  " bytes_total, error, created_at, started_at, finished_at, owner_uid,"  \
  " notes"

/* In the order of JOB_COLUMNS. */
#define JB(kind, field) VV_CAT_COL (vv_job_rec, kind, field)
static const struct vv_cat_col job_cols[] = {
  JB (TEXT, id), JB (TEXT, kind), JB (TEXT, status), JB (TEXT, domain),
  JB (TEXT, domain_uuid), JB (TEXT, backup_id), JB (UINT64, bytes_done),
  JB (UINT64, bytes_total), JB (TEXT, error), JB (TEXT, created_at),
  JB (TEXT, started_at), JB (TEXT, finished_at), JB (INT64, owner_uid),
  JB (TEXT, notes),
};
#undef JB
VV_CAT_ROWTYPE (job_row, vv_job_rec, "a job", job_cols, NULL);
VV_CAT_DEFINE_RECS_FREE (vv_job_rec, job_row)

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
                      " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                      " ?14)",
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
      || vv_cat_bind_int64 (s, 13, r->owner_uid)
      || vv_cat_bind_text (s, 14, r->notes))
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
  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "job id is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_get_row (c, &job_row, "reading a job",
                         "SELECT " JOB_COLUMNS " FROM jobs"
                         " WHERE id = ?1 AND (?2 = -1 OR owner_uid = ?2)",
                         id, owner_filter, job_not_found);
}

int
vv_catalog_job_list (struct vv_catalog *c, int64_t owner_filter,
                     size_t limit, struct vv_job_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing jobs";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " JOB_COLUMNS " FROM jobs"
                      " WHERE (?1 = -1 OR owner_uid = ?1)"
                      " ORDER BY created_at DESC, rowid DESC LIMIT ?2",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_int64 (s, 1, owner_filter)
      || vv_cat_bind_int64 (s, 2, (int64_t) vv_cat_list_limit (limit)))
    return vv_cat_bind_error (c, what);
  return vv_cat_collect (c, s, what, &job_row, (void ***) ret, ret_n);
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
  return vv_cat_collect (c, s, what, &job_row, (void ***) ret, ret_n);
}
