/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading catalog rows into records from a table of columns.
 *
 * Every record type (backup, job, policy, ...) used to copy its columns
 * by hand in a reader of its own, and every list repeated the same step
 * loop; a record is now described once (catalog-internal.h,
 * VV_CAT_ROWTYPE) next to the SELECT that fills it.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"

int
vv_cat_read_row (const struct vv_cat_rowtype *t, sqlite3_stmt *s, void *rec)
{
  char *base = rec;

  /* The table and the SELECT are written apart; catch them drifting at
   * the first read instead of storing a column in the wrong field.
   */
  if ((size_t) sqlite3_column_count (s) != t->n_cols) {
    vv_error ("reading %s: the query has %d columns where %zu are expected",
              t->noun, sqlite3_column_count (s), t->n_cols);
    return -1;
  }
  for (size_t i = 0; i < t->n_cols; i++) {
    void *f = base + t->cols[i].offset;
    int col = (int) i;

    /* The casts truncate as the hand-written readers did: the schema's
     * checks keep the values in range.
     */
    switch (t->cols[i].kind) {
    case VV_CAT_TEXT:
      if (vv_cat_column_text (s, col, f) == -1)
        return -1;
      break;
    case VV_CAT_INT64:
      *(int64_t *) f = sqlite3_column_int64 (s, col);
      break;
    case VV_CAT_UINT64:
      *(uint64_t *) f = (uint64_t) sqlite3_column_int64 (s, col);
      break;
    case VV_CAT_INT:
      *(int *) f = sqlite3_column_int (s, col);
      break;
    case VV_CAT_UINT:
      *(unsigned *) f = (unsigned) sqlite3_column_int64 (s, col);
      break;
    case VV_CAT_SIZE:
      *(size_t *) f = (size_t) sqlite3_column_int64 (s, col);
      break;
    case VV_CAT_BOOL:
      *(bool *) f = sqlite3_column_int (s, col) != 0;
      break;
    case VV_CAT_DOUBLE:
      *(double *) f = sqlite3_column_double (s, col);
      break;
    }
  }
  return 0;
}

void *
vv_cat_read_new (struct vv_catalog *c, const struct vv_cat_rowtype *t,
                 sqlite3_stmt *s)
{
  void *rec = calloc (1, t->size);

  if (rec == NULL) {
    vv_error_errno (errno, "reading %s", t->noun);
    return NULL;
  }
  if (vv_cat_read_row (t, s, rec) == -1
      || (t->finish && t->finish (c, rec) == -1)) {
    t->free (rec);
    return NULL;
  }
  return rec;
}

void *
vv_cat_get_row (struct vv_catalog *c, const struct vv_cat_rowtype *t,
                const char *what, const char *sql, const char *key,
                int64_t owner_filter, int (*not_found) (const char *key))
{
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  int rc;

  if (vv_cat_prepare (c, what, sql, &s) == -1)
    return NULL;
  if (vv_cat_bind_text (s, 1, key)
      || (sqlite3_bind_parameter_count (s) >= 2
          && vv_cat_bind_int64 (s, 2, owner_filter))) {
    vv_cat_bind_error (c, what);
    return NULL;
  }
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    return vv_cat_read_new (c, t, s);
  if (rc == SQLITE_DONE)
    not_found (key);
  else
    vv_cat_error (c, "%s '%s'", what, key);
  return NULL;
}

int
vv_cat_collect (struct vv_catalog *c, sqlite3_stmt *s, const char *what,
                const struct vv_cat_rowtype *t, void ***ret, size_t *ret_n)
{
  void **v = NULL;
  size_t n = 0, cap = 0;
  int rc;

  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    void *rec = vv_cat_read_new (c, t, s);
    if (rec == NULL || vv_cat_append (&v, &n, &cap, rec) == -1) {
      t->free (rec);
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
  vv_cat_free_rows (t, v, n);
  return -1;
}

void
vv_cat_free_rows (const struct vv_cat_rowtype *t, void **v, size_t n)
{
  if (v == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    t->free (v[i]);
  free (v);
}
