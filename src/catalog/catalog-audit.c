#include <config.h>

#include <errno.h>
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

int
vv_catalog_audit_list (struct vv_catalog *c, size_t limit,
                       struct vv_audit_rec ***ret, size_t *ret_n)
{
  static const char what[] = "reading the audit log";
  struct vv_audit_rec **v = NULL;
  size_t n = 0, cap = 0;
  int rc;

  if (limit == 0)
    limit = VV_CATALOG_LIST_DEFAULT;
  if (limit > VV_CATALOG_LIST_MAX)
    limit = VV_CATALOG_LIST_MAX;

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT at, uid, action, object, result, detail"
                      " FROM audit ORDER BY id DESC LIMIT ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_int64 (s, 1, (int64_t) limit))
    return vv_cat_bind_error (c, what);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct vv_audit_rec *a = calloc (1, sizeof *a);
    if (a == NULL) {
      vv_error_errno (errno, "%s", what);
      goto fail;
    }
    if (vv_cat_column_text (s, 0, &a->at) == -1
        || vv_cat_column_text (s, 2, &a->action) == -1
        || vv_cat_column_text (s, 3, &a->object) == -1
        || vv_cat_column_text (s, 4, &a->result) == -1
        || vv_cat_column_text (s, 5, &a->detail) == -1
        || vv_cat_append ((void ***) &v, &n, &cap, a) == -1) {
      vv_audit_rec_free (a);
      goto fail;
    }
    a->uid = sqlite3_column_int64 (s, 1);
  }
  if (rc != SQLITE_DONE) {
    vv_cat_error (c, "%s", what);
    goto fail;
  }
  *ret = v;
  *ret_n = n;
  return 0;

 fail:
  for (size_t i = 0; i < n; i++)
    vv_audit_rec_free (v[i]);
  free (v);
  return -1;
}
