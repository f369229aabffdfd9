#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

void
vv_chain_rec_free (struct vv_chain_rec *r)
{
  if (r == NULL)
    return;
  free (r->id);
  free (r->domain_uuid);
  free (r->domain);
  free (r->target);
  free (r->created_at);
  free (r->full_id);
  free (r->last_id);
  free (r);
}

void
vv_chain_recs_free (struct vv_chain_rec **v, size_t n)
{
  if (v == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    vv_chain_rec_free (v[i]);
  free (v);
}

/* One row per chain with what its backups add up to. */
#define CHAIN_SELECT                                                    \
  "SELECT c.id, c.domain_uuid, c.target, c.owner_uid, c.created_at,"    \
  " (SELECT b.domain FROM backups b WHERE b.chain_id = c.id"            \
  "   ORDER BY b.created_at DESC, b.rowid DESC LIMIT 1),"               \
  " (SELECT b.id FROM backups b WHERE b.chain_id = c.id"                \
  "   AND b.type = 'full' LIMIT 1),"                                    \
  " (SELECT b.id FROM backups b WHERE b.chain_id = c.id"                \
  "   AND b.status = 'completed'"                                       \
  "   ORDER BY b.chain_pos DESC, b.created_at DESC, b.rowid DESC"       \
  "   LIMIT 1),"                                                        \
  " (SELECT coalesce (max (b.chain_pos), 0) FROM backups b"             \
  "   WHERE b.chain_id = c.id AND b.status = 'completed'),"             \
  " (SELECT count(*) FROM backups b WHERE b.chain_id = c.id),"          \
  " (SELECT count(*) FROM backups b WHERE b.chain_id = c.id"            \
  "   AND b.status = 'completed'),"                                     \
  " (SELECT coalesce (sum (b.size_bytes), 0) FROM backups b"            \
  "   WHERE b.chain_id = c.id AND b.status = 'completed')"              \
  " FROM chains c"

static struct vv_chain_rec *
read_chain (sqlite3_stmt *s)
{
  struct vv_chain_rec *r = calloc (1, sizeof *r);

  if (r == NULL) {
    vv_error_errno (errno, "reading a chain");
    return NULL;
  }
  if (vv_cat_column_text (s, 0, &r->id) == -1
      || vv_cat_column_text (s, 1, &r->domain_uuid) == -1
      || vv_cat_column_text (s, 2, &r->target) == -1
      || vv_cat_column_text (s, 4, &r->created_at) == -1
      || vv_cat_column_text (s, 5, &r->domain) == -1
      || vv_cat_column_text (s, 6, &r->full_id) == -1
      || vv_cat_column_text (s, 7, &r->last_id) == -1) {
    vv_chain_rec_free (r);
    return NULL;
  }
  r->owner_uid = sqlite3_column_int64 (s, 3);
  r->length = (unsigned) sqlite3_column_int64 (s, 8);
  r->n_backups = (size_t) sqlite3_column_int64 (s, 9);
  r->n_completed = (size_t) sqlite3_column_int64 (s, 10);
  r->size_bytes = (uint64_t) sqlite3_column_int64 (s, 11);
  return r;
}

int
vv_catalog_chain_list (struct vv_catalog *c, const char *domain,
                       int64_t owner_filter,
                       struct vv_chain_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing chains";
  struct vv_chain_rec **v = NULL;
  size_t n = 0, cap = 0;
  int rc;

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      CHAIN_SELECT
                      " WHERE (?1 IS NULL OR c.domain_uuid = ?1"
                      "  OR EXISTS (SELECT 1 FROM backups b"
                      "   WHERE b.chain_id = c.id AND b.domain = ?1))"
                      " AND (?2 = -1 OR c.owner_uid = ?2)"
                      " ORDER BY c.created_at DESC, c.rowid DESC", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, domain)
      || vv_cat_bind_int64 (s, 2, owner_filter))
    return vv_cat_bind_error (c, what);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct vv_chain_rec *r = read_chain (s);
    if (r == NULL || vv_cat_append ((void ***) &v, &n, &cap, r) == -1) {
      vv_chain_rec_free (r);
      vv_chain_recs_free (v, n);
      return -1;
    }
  }
  if (rc != SQLITE_DONE) {
    vv_chain_recs_free (v, n);
    return vv_cat_error (c, "%s", what);
  }
  *ret = v;
  *ret_n = n;
  return 0;
}

struct vv_chain_rec *
vv_catalog_chain_get (struct vv_catalog *c, const char *id,
                      int64_t owner_filter)
{
  static const char what[] = "reading a chain";
  int rc;

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "chain id is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  rc = vv_cat_select_one (c, what,
                          CHAIN_SELECT " WHERE c.id = ?1"
                          " AND (?2 = -1 OR c.owner_uid = ?2)",
                          id, owner_filter, &s);
  if (rc == 1)
    return read_chain (s);
  if (rc == 0)
    vv_error_code (VV_ERR_NOT_FOUND, "no chain with id '%s'", id);
  return NULL;
}
