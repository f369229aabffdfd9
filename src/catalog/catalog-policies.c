/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

/* Policies, the instances attached to them and their runs (schema 3). */

void
vv_policy_rec_free (struct vv_policy_rec *r)
{
  if (r == NULL)
    return;
  free (r->name);
  free (r->status);
  free (r->last_error);
  free (r->schedule_kind);
  free (r->tz);
  free (r->keep);
  free (r->device);
  free (r->target);
  free (r->quiesce);
  free (r->created_at);
  free (r);
}

void
vv_attachment_rec_free (struct vv_attachment_rec *r)
{
  if (r == NULL)
    return;
  free (r->policy);
  free (r->domain_uuid);
  free (r->domain);
  free (r->attached_at);
  free (r);
}

void
vv_run_rec_free (struct vv_run_rec *r)
{
  if (r == NULL)
    return;
  free (r->policy);
  free (r->domain_uuid);
  free (r->domain);
  free (r->scheduled_for);
  free (r->started_at);
  free (r->finished_at);
  free (r->kind);
  free (r->backup_id);
  free (r->result);
  free (r->message);
  free (r);
}

static bool
one_of (const char *s, const char *const *words)
{
  for (; s && *words; words++)
    if (strcmp (s, *words) == 0)
      return true;
  return false;
}

static int
policy_not_found (const char *name)
{
  vv_error_code (VV_ERR_NOT_FOUND, "no policy named '%s'; see 'virtvault "
                 "policy list'", name);
  return -1;
}

/* The checks the table's constraints make, with messages that name the
 * field; the API checks the user's words before this.
 */
static int
validate_policy (const struct vv_policy_rec *r)
{
  static const char *const kinds[] = { "daily", "weekly", NULL };
  static const char *const devices[] = { "primary", "all", NULL };
  static const char *const quiesce[] = { "off", "try", "on", NULL };
  static const char *const statuses[] = { "active", "paused", "error", NULL };

  if (r == NULL || r->name == NULL) {
    vv_error_code (VV_ERR_INVALID, "policy record lacks its name");
    return -1;
  }
  if (vv_check_name ("policy name", r->name, VV_POLICY_NAME_MAX) == -1)
    return -1;
  if (!one_of (r->schedule_kind, kinds)) {
    vv_error_code (VV_ERR_INVALID, "policy '%s': schedule must be daily or "
                   "weekly", r->name);
    return -1;
  }
  if (r->status && !one_of (r->status, statuses)) {
    vv_error_code (VV_ERR_INVALID, "policy '%s': status must be active, "
                   "paused or error", r->name);
    return -1;
  }
  if (r->device && !one_of (r->device, devices)) {
    vv_error_code (VV_ERR_INVALID, "policy '%s': device must be primary or "
                   "all", r->name);
    return -1;
  }
  if (r->quiesce && !one_of (r->quiesce, quiesce)) {
    vv_error_code (VV_ERR_INVALID, "policy '%s': quiesce must be off, try "
                   "or on", r->name);
    return -1;
  }
  if ((strcmp (r->schedule_kind, "weekly") == 0) != (r->day >= 0)
      || r->day > 6 || r->hour < 0 || r->hour > 23 || r->minute < 0
      || r->minute > 59 || r->window > 1440 || r->max_chain > 1000
      || r->retention < 1 || r->max_age < 0
      || r->verify_every > VV_POLICY_VERIFY_EVERY_MAX) {
    vv_error_code (VV_ERR_INVALID, "policy '%s': a setting is out of range "
                   "(day, hour, minute, window, max chain, retention, max "
                   "age or verify every)", r->name);
    return -1;
  }
  return 0;
}

#define POLICY_COLUMNS                                                  \
  "p.name, p.owner_uid, p.status, p.last_error, p.schedule_kind,"      \
  " p.schedule_day, p.schedule_hour, p.schedule_minute, p.schedule_tz," \
  " p.schedule_window, p.max_chain, p.retention, p.keep_rules,"        \
  " p.max_age, p.max_backups, p.device, p.target, p.quiesce,"          \
  " p.created_at,"                                                      \
  " (SELECT count(*) FROM policy_instances i WHERE i.policy = p.name),"  \
  " p.verify_every"

/* In the order of POLICY_COLUMNS. */
#define PO(kind, field) VV_CAT_COL (vv_policy_rec, kind, field)
static const struct vv_cat_col policy_cols[] = {
  PO (TEXT, name), PO (INT64, owner_uid), PO (TEXT, status),
  PO (TEXT, last_error), PO (TEXT, schedule_kind), PO (INT, day),
  PO (INT, hour), PO (INT, minute), PO (TEXT, tz), PO (UINT, window),
  PO (UINT, max_chain), PO (UINT, retention), PO (TEXT, keep),
  PO (INT64, max_age), PO (UINT, max_backups), PO (TEXT, device),
  PO (TEXT, target), PO (TEXT, quiesce), PO (TEXT, created_at),
  PO (SIZE, n_instances), PO (UINT, verify_every),
};
#undef PO
VV_CAT_ROWTYPE (policy_row, vv_policy_rec, "a policy", policy_cols, NULL);
VV_CAT_DEFINE_RECS_FREE (vv_policy_rec, policy_row)

/* Binds the settings shared by insert and update as ?2.. ?17. */
static int
bind_settings (sqlite3_stmt *s, const struct vv_policy_rec *r)
{
  return vv_cat_bind_text (s, 1, r->name)
    || vv_cat_bind_text (s, 2, r->schedule_kind)
    || vv_cat_bind_int64 (s, 3, r->day)
    || vv_cat_bind_int64 (s, 4, r->hour)
    || vv_cat_bind_int64 (s, 5, r->minute)
    || vv_cat_bind_text (s, 6, r->tz ? r->tz : "UTC")
    || vv_cat_bind_int64 (s, 7, r->window)
    || vv_cat_bind_int64 (s, 8, r->max_chain)
    || vv_cat_bind_int64 (s, 9, r->retention)
    || vv_cat_bind_text (s, 10, r->keep && r->keep[0] ? r->keep : NULL)
    || vv_cat_bind_int64 (s, 11, r->max_age)
    || vv_cat_bind_int64 (s, 12, r->max_backups)
    || vv_cat_bind_text (s, 13, r->device ? r->device : "primary")
    || vv_cat_bind_text (s, 14, r->target)
    || vv_cat_bind_text (s, 15, r->quiesce ? r->quiesce : "off");
}

int
vv_catalog_policy_add (struct vv_catalog *c, const struct vv_policy_rec *r)
{
  static const char what[] = "recording a policy";
  char now[VV_TIME_MAX];

  if (validate_policy (r) == -1)
    return -1;
  vv_now_utc (now);
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "INSERT INTO policies (name, schedule_kind,"
                      " schedule_day, schedule_hour, schedule_minute,"
                      " schedule_tz, schedule_window, max_chain, retention,"
                      " keep_rules, max_age, max_backups, device, target,"
                      " quiesce, owner_uid, status, created_at,"
                      " verify_every) VALUES"
                      " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                      " ?13, ?14, ?15, ?16, ?17, ?18, ?19)", &s) == -1)
    return -1;
  if (bind_settings (s, r)
      || vv_cat_bind_int64 (s, 16, r->owner_uid)
      || vv_cat_bind_text (s, 17, r->status ? r->status : "active")
      || vv_cat_bind_text (s, 18, r->created_at ? r->created_at : now)
      || vv_cat_bind_int64 (s, 19, r->verify_every))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE) {
    if (sqlite3_extended_errcode (c->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
      vv_error_code (VV_ERR_BUSY, "policy '%s' already exists; change it "
                     "with 'virtvault policy edit %s'", r->name, r->name);
      return -1;
    }
    return vv_cat_error (c, "recording policy '%s'", r->name);
  }
  return 0;
}

int
vv_catalog_policy_update (struct vv_catalog *c, const struct vv_policy_rec *r)
{
  static const char what[] = "updating a policy";

  if (validate_policy (r) == -1)
    return -1;
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "UPDATE policies SET schedule_kind = ?2,"
                      " schedule_day = ?3, schedule_hour = ?4,"
                      " schedule_minute = ?5, schedule_tz = ?6,"
                      " schedule_window = ?7, max_chain = ?8, retention = ?9,"
                      " keep_rules = ?10, max_age = ?11, max_backups = ?12,"
                      " device = ?13, target = ?14, quiesce = ?15,"
                      " verify_every = ?16 WHERE name = ?1", &s) == -1)
    return -1;
  if (bind_settings (s, r) || vv_cat_bind_int64 (s, 16, r->verify_every))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE)
    return vv_cat_error (c, "updating policy '%s'", r->name);
  if (sqlite3_changes (c->db) == 0)
    return policy_not_found (r->name);
  return 0;
}

struct vv_policy_rec *
vv_catalog_policy_get (struct vv_catalog *c, const char *name,
                       int64_t owner_filter)
{
  if (name == NULL) {
    vv_error_code (VV_ERR_INVALID, "policy name is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_get_row (c, &policy_row, "reading a policy",
                         "SELECT " POLICY_COLUMNS " FROM policies p"
                         " WHERE p.name = ?1"
                         " AND (?2 = -1 OR p.owner_uid = ?2)",
                         name, owner_filter, policy_not_found);
}

int
vv_catalog_policy_list (struct vv_catalog *c, int64_t owner_filter,
                        struct vv_policy_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing policies";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " POLICY_COLUMNS " FROM policies p"
                      " WHERE ?1 = -1 OR p.owner_uid = ?1 ORDER BY p.name",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_int64 (s, 1, owner_filter))
    return vv_cat_bind_error (c, what);
  return vv_cat_collect (c, s, what, &policy_row, (void ***) ret, ret_n);
}

int
vv_catalog_policy_set_status (struct vv_catalog *c, const char *name,
                              const char *status, const char *last_error)
{
  static const char *const statuses[] = { "active", "paused", "error", NULL };
  static const char what[] = "updating the status of a policy";

  if (name == NULL || !one_of (status, statuses)) {
    vv_error_code (VV_ERR_INVALID, "a policy status is active, paused or "
                   "error");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "UPDATE policies SET status = ?2,"
                      " last_error = CASE WHEN ?3 IS NOT NULL THEN ?3"
                      "   WHEN ?2 = 'error' THEN last_error ELSE NULL END"
                      " WHERE name = ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, name) || vv_cat_bind_text (s, 2, status)
      || vv_cat_bind_text (s, 3, last_error))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE)
    return vv_cat_error (c, "updating the status of policy '%s'", name);
  if (sqlite3_changes (c->db) == 0)
    return policy_not_found (name);
  return 0;
}

int
vv_catalog_policy_delete (struct vv_catalog *c, const char *name)
{
  static const char what[] = "deleting a policy";

  if (name == NULL) {
    vv_error_code (VV_ERR_INVALID, "policy name is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  if (vv_cat_begin (c, &txn) == -1)
    return -1;
  /* Attachments and runs go with it (ON DELETE CASCADE). */
  if (vv_cat_exec_key (c, what,
                       "DELETE FROM policies WHERE name = ?1", name) == -1)
    return -1;
  if (sqlite3_changes (c->db) == 0)
    return policy_not_found (name);
  /* A later policy of the same name must not manage these backups. */
  if (vv_cat_exec_key (c, what,
                       "UPDATE backups SET policy = NULL WHERE policy = ?1",
                       name) == -1)
    return -1;
  return vv_cat_commit (&txn);
}

/* ---- attachments ---- */

#define ATTACHMENT_COLUMNS "policy, domain_uuid, domain, attached_at"

/* In the order of ATTACHMENT_COLUMNS. */
#define AT(kind, field) VV_CAT_COL (vv_attachment_rec, kind, field)
static const struct vv_cat_col attachment_cols[] = {
  AT (TEXT, policy), AT (TEXT, domain_uuid), AT (TEXT, domain),
  AT (TEXT, attached_at),
};
#undef AT
VV_CAT_ROWTYPE (attachment_row, vv_attachment_rec, "an attachment",
                attachment_cols, NULL);
VV_CAT_DEFINE_RECS_FREE (vv_attachment_rec, attachment_row)

int
vv_catalog_policy_attach (struct vv_catalog *c, const char *policy,
                          const char *domain_uuid, const char *domain)
{
  static const char what[] = "attaching an instance to a policy";
  char now[VV_TIME_MAX];
  int rc;

  if (policy == NULL || domain_uuid == NULL || domain == NULL) {
    vv_error_code (VV_ERR_INVALID, "%s: policy, uuid or name missing", what);
    return -1;
  }
  vv_now_utc (now);
  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  _cleanup_stmt_ sqlite3_stmt *p = NULL;
  _cleanup_stmt_ sqlite3_stmt *cur = NULL;
  _cleanup_stmt_ sqlite3_stmt *ins = NULL;
  if (vv_cat_begin (c, &txn) == -1)
    return -1;
  if (vv_cat_prepare (c, what, "SELECT 1 FROM policies WHERE name = ?1",
                      &p) == -1)
    return -1;
  if (vv_cat_bind_text (p, 1, policy))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (p);
  if (rc == SQLITE_DONE)
    return policy_not_found (policy);
  if (rc != SQLITE_ROW)
    return vv_cat_error (c, "%s", what);

  if (vv_cat_prepare (c, what,
                      "SELECT policy FROM policy_instances"
                      " WHERE domain_uuid = ?1", &cur) == -1)
    return -1;
  if (vv_cat_bind_text (cur, 1, domain_uuid))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (cur);
  if (rc == SQLITE_ROW) {
    const char *in = (const char *) sqlite3_column_text (cur, 0);
    if (in && strcmp (in, policy) == 0)
      return 0;
    vv_error_code (VV_ERR_BUSY, "Instance is already attached to another "
                   "backup policy ('%s'); detach it first with 'virtvault "
                   "policy detach %s'", in ? in : "?", domain);
    return -1;
  }
  if (rc != SQLITE_DONE)
    return vv_cat_error (c, "%s", what);

  if (vv_cat_prepare (c, what,
                      "INSERT INTO policy_instances (domain_uuid, domain,"
                      " policy, attached_at) VALUES (?1, ?2, ?3, ?4)",
                      &ins) == -1)
    return -1;
  if (vv_cat_bind_text (ins, 1, domain_uuid)
      || vv_cat_bind_text (ins, 2, domain)
      || vv_cat_bind_text (ins, 3, policy)
      || vv_cat_bind_text (ins, 4, now))
    return vv_cat_bind_error (c, what);
  if (vv_cat_step_done (c, ins, what) == -1)
    return -1;
  return vv_cat_commit (&txn);
}

int
vv_catalog_policy_detach (struct vv_catalog *c, const char *domain,
                          char **ret_policy)
{
  static const char what[] = "detaching an instance";
  _cleanup_free_ char *policy = NULL;
  int rc;

  if (domain == NULL) {
    vv_error_code (VV_ERR_INVALID, "domain is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  _cleanup_stmt_ sqlite3_stmt *get = NULL;
  _cleanup_stmt_ sqlite3_stmt *del = NULL;
  if (vv_cat_begin (c, &txn) == -1)
    return -1;
  if (vv_cat_prepare (c, what,
                      "SELECT policy, domain_uuid FROM policy_instances"
                      " WHERE domain_uuid = ?1 OR domain = ?1"
                      " ORDER BY domain_uuid = ?1 DESC LIMIT 1", &get) == -1)
    return -1;
  if (vv_cat_bind_text (get, 1, domain))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (get);
  if (rc == SQLITE_DONE) {
    vv_error_code (VV_ERR_NOT_FOUND, "instance '%s' is not attached to a "
                   "backup policy", domain);
    return -1;
  }
  if (rc != SQLITE_ROW)
    return vv_cat_error (c, "%s", what);
  if (vv_cat_column_text (get, 0, &policy) == -1)
    return -1;
  if (vv_cat_prepare (c, what,
                      "DELETE FROM policy_instances WHERE domain_uuid = ?1",
                      &del) == -1)
    return -1;
  if (sqlite3_bind_value (del, 1, sqlite3_column_value (get, 1)))
    return vv_cat_bind_error (c, what);
  if (vv_cat_step_done (c, del, what) == -1)
    return -1;
  if (vv_cat_commit (&txn) == -1)
    return -1;
  if (ret_policy)
    *ret_policy = TAKE_PTR (policy);
  return 0;
}

int
vv_catalog_attachment_list (struct vv_catalog *c, const char *policy,
                            struct vv_attachment_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing attached instances";

  VV_LOCK_GUARD (&c->lock);
  return vv_cat_collect_key (c, what,
                            "SELECT " ATTACHMENT_COLUMNS
                            " FROM policy_instances"
                            " WHERE ?1 IS NULL OR policy = ?1"
                            " ORDER BY attached_at, rowid",
                            policy, &attachment_row, (void ***) ret, ret_n);
}

static int
not_attached (const char *domain)
{
  vv_error_code (VV_ERR_NOT_FOUND, "instance '%s' is not attached to a "
                 "backup policy", domain);
  return -1;
}

struct vv_attachment_rec *
vv_catalog_attachment_get (struct vv_catalog *c, const char *domain)
{
  if (domain == NULL) {
    vv_error_code (VV_ERR_INVALID, "domain is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_get_row (c, &attachment_row, "reading an attachment",
                         "SELECT " ATTACHMENT_COLUMNS " FROM policy_instances"
                         " WHERE domain_uuid = ?1 OR domain = ?1"
                         " ORDER BY domain_uuid = ?1 DESC LIMIT 1",
                         domain, VV_OWNER_ANY, not_attached);
}

/* ---- runs ---- */

#define RUN_COLUMNS                                                     \
  "id, policy, domain_uuid, domain, scheduled_for, started_at,"        \
  " finished_at, kind, backup_id, result, message"

/* In the order of RUN_COLUMNS. */
#define RU(kind, field) VV_CAT_COL (vv_run_rec, kind, field)
static const struct vv_cat_col run_cols[] = {
  RU (INT64, id), RU (TEXT, policy), RU (TEXT, domain_uuid), RU (TEXT, domain),
  RU (TEXT, scheduled_for), RU (TEXT, started_at), RU (TEXT, finished_at),
  RU (TEXT, kind), RU (TEXT, backup_id), RU (TEXT, result),
  RU (TEXT, message),
};
#undef RU
VV_CAT_ROWTYPE (run_row, vv_run_rec, "a policy run", run_cols, NULL);
VV_CAT_DEFINE_RECS_FREE (vv_run_rec, run_row)

static const char *const run_results[] = {
  "running", "ok", "failed", "skipped", NULL
};

int
vv_catalog_run_insert (struct vv_catalog *c, const struct vv_run_rec *r,
                       int64_t *ret_id)
{
  static const char what[] = "recording a policy run";
  char now[VV_TIME_MAX];

  if (r == NULL || r->policy == NULL || r->domain_uuid == NULL
      || r->scheduled_for == NULL) {
    vv_error_code (VV_ERR_INVALID, "%s: policy, uuid or time missing", what);
    return -1;
  }
  if (r->result && !one_of (r->result, run_results)) {
    vv_error_code (VV_ERR_INVALID, "a run's result is running, ok, failed "
                   "or skipped");
    return -1;
  }
  vv_now_utc (now);
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "INSERT INTO policy_runs (policy, domain_uuid, domain,"
                      " scheduled_for, started_at, finished_at, kind,"
                      " backup_id, result, message) VALUES (?1, ?2, ?3, ?4,"
                      " ?5, ?6, ?7, ?8, ?9, ?10)", &s) == -1)
    return -1;
  const char *result = r->result ? r->result : "running";
  if (vv_cat_bind_text (s, 1, r->policy)
      || vv_cat_bind_text (s, 2, r->domain_uuid)
      || vv_cat_bind_text (s, 3, r->domain)
      || vv_cat_bind_text (s, 4, r->scheduled_for)
      || vv_cat_bind_text (s, 5, r->started_at ? r->started_at : now)
      || vv_cat_bind_text (s, 6, strcmp (result, "running") == 0 ? NULL
                           : r->finished_at ? r->finished_at : now)
      || vv_cat_bind_text (s, 7, r->kind)
      || vv_cat_bind_text (s, 8, r->backup_id)
      || vv_cat_bind_text (s, 9, result)
      || vv_cat_bind_text (s, 10, r->message))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE) {
    if (sqlite3_extended_errcode (c->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
      return policy_not_found (r->policy);
    return vv_cat_error (c, "%s", what);
  }
  if (ret_id)
    *ret_id = sqlite3_last_insert_rowid (c->db);
  return 0;
}

int
vv_catalog_run_finish (struct vv_catalog *c, int64_t id, const char *result,
                       const char *backup_id, const char *message)
{
  static const char what[] = "finishing a policy run";
  char now[VV_TIME_MAX];

  if (!one_of (result, run_results)) {
    vv_error_code (VV_ERR_INVALID, "a run's result is running, ok, failed "
                   "or skipped");
    return -1;
  }
  vv_now_utc (now);
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "UPDATE policy_runs SET result = ?2,"
                      " backup_id = coalesce(?3, backup_id), message = ?4,"
                      " finished_at = ?5 WHERE id = ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_int64 (s, 1, id) || vv_cat_bind_text (s, 2, result)
      || vv_cat_bind_text (s, 3, backup_id)
      || vv_cat_bind_text (s, 4, message)
      || vv_cat_bind_text (s, 5, strcmp (result, "running") ? now : NULL))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE)
    return vv_cat_error (c, "%s %" PRId64, what, id);
  if (sqlite3_changes (c->db) == 0) {
    vv_error_code (VV_ERR_NOT_FOUND, "no policy run %" PRId64, id);
    return -1;
  }
  return 0;
}

int
vv_catalog_run_list (struct vv_catalog *c, const char *policy,
                     const char *domain_uuid, size_t limit,
                     struct vv_run_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing policy runs";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " RUN_COLUMNS " FROM policy_runs"
                      " WHERE (?1 IS NULL OR policy = ?1)"
                      " AND (?2 IS NULL OR domain_uuid = ?2)"
                      " ORDER BY id DESC LIMIT ?3", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, policy) || vv_cat_bind_text (s, 2, domain_uuid)
      || vv_cat_bind_int64 (s, 3, (int64_t) vv_cat_list_limit (limit)))
    return vv_cat_bind_error (c, what);
  return vv_cat_collect (c, s, what, &run_row, (void ***) ret, ret_n);
}

int
vv_catalog_run_list_running (struct vv_catalog *c, struct vv_run_rec ***ret,
                             size_t *ret_n)
{
  static const char what[] = "listing unfinished policy runs";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " RUN_COLUMNS " FROM policy_runs"
                      " WHERE result = 'running' ORDER BY id ASC", &s) == -1)
    return -1;
  return vv_cat_collect (c, s, what, &run_row, (void ***) ret, ret_n);
}

/* ---- retries ---- */

void
vv_retry_rec_free (struct vv_retry_rec *r)
{
  if (r == NULL)
    return;
  free (r->policy);
  free (r->domain_uuid);
  free (r->slot);
  free (r->retry_at);
  free (r);
}

#define RETRY_COLUMNS "policy, domain_uuid, slot, failures, retry_at"

/* In the order of RETRY_COLUMNS. */
#define RT(kind, field) VV_CAT_COL (vv_retry_rec, kind, field)
static const struct vv_cat_col retry_cols[] = {
  RT (TEXT, policy), RT (TEXT, domain_uuid), RT (TEXT, slot),
  RT (UINT, failures), RT (TEXT, retry_at),
};
#undef RT
VV_CAT_ROWTYPE (retry_row, vv_retry_rec, "a policy retry", retry_cols, NULL);
VV_CAT_DEFINE_RECS_FREE (vv_retry_rec, retry_row)

int
vv_catalog_retry_set (struct vv_catalog *c, const struct vv_retry_rec *r)
{
  static const char what[] = "recording the retry of a policy run";

  if (r->policy == NULL || r->domain_uuid == NULL || r->slot == NULL) {
    vv_error_code (VV_ERR_INVALID, "a retry needs a policy, an instance "
                   "and a slot");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  /* Only for a policy that still exists (the foreign key would refuse
   * the others).
   */
  if (vv_cat_prepare (c, what,
                      "INSERT OR REPLACE INTO policy_retries"
                      " (" RETRY_COLUMNS ")"
                      " SELECT ?1, ?2, ?3, ?4, ?5"
                      " WHERE EXISTS (SELECT 1 FROM policies"
                      " WHERE name = ?1)", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, r->policy)
      || vv_cat_bind_text (s, 2, r->domain_uuid)
      || vv_cat_bind_text (s, 3, r->slot)
      || vv_cat_bind_int64 (s, 4, r->failures)
      || vv_cat_bind_text (s, 5, r->retry_at))
    return vv_cat_bind_error (c, what);
  return vv_cat_step_done (c, s, what);
}

int
vv_catalog_retry_clear (struct vv_catalog *c, const char *policy,
                        const char *domain_uuid)
{
  static const char what[] = "clearing the retry of a policy run";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "DELETE FROM policy_retries"
                      " WHERE policy = ?1 AND domain_uuid = ?2", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, policy)
      || vv_cat_bind_text (s, 2, domain_uuid))
    return vv_cat_bind_error (c, what);
  return vv_cat_step_done (c, s, what);
}

int
vv_catalog_retry_list (struct vv_catalog *c, struct vv_retry_rec ***ret,
                       size_t *ret_n)
{
  static const char what[] = "listing policy retries";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " RETRY_COLUMNS " FROM policy_retries"
                      " ORDER BY policy, domain_uuid", &s) == -1)
    return -1;
  return vv_cat_collect (c, s, what, &retry_row, (void ***) ret, ret_n);
}

/* ---- what verification found (schema 8) ---- */

void
vv_policy_verify_stats_clear (struct vv_policy_verify_stats *s)
{
  if (s == NULL)
    return;
  free (s->last_verified_at);
  memset (s, 0, sizeof *s);
}

int
vv_catalog_policy_verify_stats (struct vv_catalog *c, const char *policy,
                                int64_t owner_filter,
                                struct vv_policy_verify_stats *ret)
{
  static const char what[] = "reading the verify state of a policy";
  struct vv_policy_verify_stats st = { 0 };

  if (policy == NULL) {
    vv_error_code (VV_ERR_INVALID, "policy name is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT max (verified_at), count(*),"
                      " count (CASE WHEN verify_result IN ('ok', 'corrupt')"
                      "   THEN 1 END),"
                      " count (corrupt) FROM backups"
                      " WHERE policy = ?1 AND status = 'completed'"
                      " AND (?2 = -1 OR owner_uid = ?2)", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, policy) || vv_cat_bind_int64 (s, 2, owner_filter))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_ROW)
    return vv_cat_error (c, "%s '%s'", what, policy);
  if (vv_cat_column_text (s, 0, &st.last_verified_at) == -1)
    return -1;
  st.backups = (size_t) sqlite3_column_int64 (s, 1);
  st.verified = (size_t) sqlite3_column_int64 (s, 2);
  st.corrupt = (size_t) sqlite3_column_int64 (s, 3);
  *ret = st;
  return 0;
}
