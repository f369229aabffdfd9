/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdlib.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

/* Longest detail kept: the audit log records what happened, not payloads. */
#define AUDIT_DETAIL_MAX 4096

void
vv_audit_rec_free (struct vv_audit_rec *r)
{
  if (r == NULL)
    return;
  free (r->at);
  free (r->action);
  free (r->object);
  free (r->result);
  free (r->detail);
  free (r);
}

int
vv_catalog_audit (struct vv_catalog *c, int64_t uid, const char *action,
                  const char *object, const char *result,
                  const char *detail)
{
  static const char what[] = "writing the audit log";
  char now[VV_TIME_MAX];

  if (action == NULL || result == NULL) {
    vv_error_code (VV_ERR_INVALID, "an audit entry needs an action and a "
                   "result");
    return -1;
  }
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "INSERT INTO audit (at, uid, action, object, result,"
                      " detail) VALUES (?1, ?2, ?3, ?4, ?5,"
                      " substr (?6, 1, ?7))", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, now)
      || vv_cat_bind_int64 (s, 2, uid)
      || vv_cat_bind_text (s, 3, action)
      || vv_cat_bind_text (s, 4, object)
      || vv_cat_bind_text (s, 5, result)
      || vv_cat_bind_text (s, 6, detail)
      || vv_cat_bind_int64 (s, 7, AUDIT_DETAIL_MAX))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE)
    return vv_cat_error (c, "%s (%s)", what, action);
  return 0;
}

/* In the order of the SELECT in vv_catalog_audit_list. */
#define AU(kind, field) VV_CAT_COL (vv_audit_rec, kind, field)
static const struct vv_cat_col audit_cols[] = {
  AU (TEXT, at), AU (INT64, uid), AU (TEXT, action), AU (TEXT, object),
  AU (TEXT, result), AU (TEXT, detail),
};
#undef AU
VV_CAT_ROWTYPE (audit_row, vv_audit_rec, "an audit entry", audit_cols, NULL);

int
vv_catalog_audit_list (struct vv_catalog *c, size_t limit,
                       struct vv_audit_rec ***ret, size_t *ret_n)
{
  static const char what[] = "reading the audit log";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT at, uid, action, object, result, detail"
                      " FROM audit ORDER BY id DESC LIMIT ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_int64 (s, 1, (int64_t) vv_cat_list_limit (limit)))
    return vv_cat_bind_error (c, what);
  return vv_cat_collect (c, s, what, &audit_row, (void ***) ret, ret_n);
}
