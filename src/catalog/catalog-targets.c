/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

void
vv_target_rec_free (struct vv_target_rec *r)
{
  if (r == NULL)
    return;
  free (r->name);
  free (r->url);
  free (r->params);
  free (r->created_at);
  free (r);
}

int
vv_catalog_target_add (struct vv_catalog *c, const struct vv_target_rec *r)
{
  static const char what[] = "adding a target";
  char now[VV_TIME_MAX];

  if (r == NULL || r->name == NULL || r->url == NULL) {
    vv_error_code (VV_ERR_INVALID, "a target needs a name and a URL");
    return -1;
  }
  if (!isfinite (r->price_per_gb_month) || r->price_per_gb_month < 0) {
    vv_error_code (VV_ERR_INVALID,
                   "price per GB-month of target '%s' must be 0 or more",
                   r->name);
    return -1;
  }
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "INSERT INTO targets (name, url, params,"
                      " price_per_gb_month, created_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, r->name)
      || vv_cat_bind_text (s, 2, r->url)
      || vv_cat_bind_text (s, 3, r->params)
      || sqlite3_bind_double (s, 4, r->price_per_gb_month)
      || vv_cat_bind_text (s, 5, r->created_at ? r->created_at : now))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE) {
    if (sqlite3_extended_errcode (c->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
      vv_error_code (VV_ERR_BUSY, "target '%s' already exists", r->name);
      return -1;
    }
    return vv_cat_error (c, "adding target '%s'", r->name);
  }
  return 0;
}

/* The last two are counted: completed backups on the target and the
 * bytes their images take there.
 */
#define TARGET_COLUMNS "name, url, params, price_per_gb_month, created_at," \
  " (SELECT count(*) FROM backups b WHERE b.target = targets.name"        \
  "   AND b.status = 'completed')," \
  " (SELECT coalesce (sum (d.stored_bytes), 0) FROM backup_disks d"       \
  "   JOIN backups b ON b.id = d.backup_id"                               \
  "   WHERE b.target = targets.name AND b.status = 'completed'),"       \
  " is_default"

/* In the order of TARGET_COLUMNS. */
#define TG(kind, field) VV_CAT_COL (vv_target_rec, kind, field)
static const struct vv_cat_col target_cols[] = {
  TG (TEXT, name), TG (TEXT, url), TG (TEXT, params),
  TG (DOUBLE, price_per_gb_month), TG (TEXT, created_at),
  TG (INT64, backups), TG (UINT64, stored_bytes), TG (BOOL, is_default),
};
#undef TG
VV_CAT_ROWTYPE (target_row, vv_target_rec, "a target", target_cols, NULL);

static int
target_not_found (const char *name)
{
  vv_error_code (VV_ERR_NOT_FOUND, "no target named '%s'", name);
  return -1;
}

struct vv_target_rec *
vv_catalog_target_get (struct vv_catalog *c, const char *name)
{
  if (name == NULL) {
    vv_error_code (VV_ERR_INVALID, "target name is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_get_row (c, &target_row, "reading target",
                         "SELECT " TARGET_COLUMNS " FROM targets"
                         " WHERE name = ?1",
                         name, VV_OWNER_ANY, target_not_found);
}

int
vv_catalog_target_list (struct vv_catalog *c,
                        struct vv_target_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing targets";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " TARGET_COLUMNS " FROM targets"
                      " ORDER BY name", &s) == -1)
    return -1;
  return vv_cat_collect (c, s, what, &target_row, (void ***) ret, ret_n);
}

/* Catalog lock held.  1 when name is marked the default, 0 when not (or
 * unknown), -1 on error.
 */
static int
is_default_locked (struct vv_catalog *c, const char *name)
{
  static const char what[] = "reading the default target";
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  int rc;

  if (vv_cat_prepare (c, what,
                      "SELECT is_default FROM targets WHERE name = ?1",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, name))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return vv_cat_error (c, "%s", what);
  return sqlite3_column_int (s, 0) != 0;
}

int
vv_catalog_target_get_default (struct vv_catalog *c, char **ret)
{
  static const char what[] = "reading the default target";
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  int rc;

  *ret = NULL;
  VV_LOCK_GUARD (&c->lock);
  if (vv_cat_prepare (c, what,
                      "SELECT name FROM targets WHERE is_default = 1",
                      &s) == -1)
    return -1;
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return vv_cat_error (c, "%s", what);
  return vv_cat_column_text (s, 0, ret);
}

int
vv_catalog_target_set_default (struct vv_catalog *c, const char *name)
{
  static const char what[] = "setting the default target";

  if (name == NULL) {
    vv_error_code (VV_ERR_INVALID, "target name is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  if (vv_cat_begin (c, &txn) == -1)
    return -1;
  /* Unmarked first: the unique index allows one marked row. */
  if (vv_cat_exec_key (c, what,
                       "UPDATE targets SET is_default = 0"
                       " WHERE is_default = 1 AND name != ?1", name) == -1
      || vv_cat_exec_key (c, what,
                          "UPDATE targets SET is_default = 1"
                          " WHERE name = ?1", name) == -1)
    return -1;
  if (sqlite3_changes (c->db) == 0)
    return target_not_found (name);
  return vv_cat_commit (&txn);
}

int
vv_catalog_target_remove (struct vv_catalog *c, const char *name)
{
  static const char what[] = "removing a target";
  int64_t n;

  if (name == NULL) {
    vv_error_code (VV_ERR_INVALID, "target name is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  _cleanup_stmt_ sqlite3_stmt *count = NULL;
  if (vv_cat_begin (c, &txn) == -1)
    return -1;

  if (vv_cat_prepare (c, what,
                      "SELECT count(*) FROM backups WHERE target = ?1 "
                      "AND status NOT IN ('failed', 'cancelled')",
                      &count) == -1)
    return -1;
  if (vv_cat_bind_text (count, 1, name))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (count) != SQLITE_ROW)
    return vv_cat_error (c, "removing target '%s'", name);
  n = sqlite3_column_int64 (count, 0);
  sqlite3_reset (count);
  if (is_default_locked (c, name) == 1) {
    vv_error_code (VV_ERR_BUSY,
                   "target '%s' is the default target; make another target "
                   "the default first ('virtvault target set-default NAME')",
                   name);
    return -1;
  }
  if (n > 0) {
    vv_error_code (VV_ERR_BUSY,
                   "target '%s' still holds %" PRId64 " %s; delete them "
                   "first", name, VV_PLURAL (n, "backup"));
    return -1;
  }

  /* Failed and cancelled attempts hold no data on the target; their
   * records go with it.
   */
  if (vv_cat_exec_key (c, what,
                       "DELETE FROM backups WHERE target = ?1", name) == -1)
    return -1;

  /* Chains end with their last backup; drop any left without one. */
  if (vv_cat_exec_key (c, what,
                       "DELETE FROM chains WHERE target = ?1", name) == -1)
    return -1;

  if (vv_cat_exec_key (c, what,
                       "DELETE FROM targets WHERE name = ?1", name) == -1)
    return -1;
  if (sqlite3_changes (c->db) == 0) {
    vv_error_code (VV_ERR_NOT_FOUND, "no target named '%s'",
                   name);
    return -1;
  }
  return vv_cat_commit (&txn);
}
