/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdlib.h>

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

/* One row per chain with what its backups add up to.  Sizes are added
 * with total, not sum: those read from a target may add up past
 * INT64_MAX, where sum fails the whole query; the cast saturates.
 */
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
  " (SELECT CAST (total (b.size_bytes) AS INTEGER) FROM backups b"      \
  "   WHERE b.chain_id = c.id AND b.status = 'completed')"              \
  " FROM chains c"

/* In the order of CHAIN_SELECT. */
#define CH(kind, field) VV_CAT_COL (vv_chain_rec, kind, field)
static const struct vv_cat_col chain_cols[] = {
  CH (TEXT, id), CH (TEXT, domain_uuid), CH (TEXT, target),
  CH (INT64, owner_uid), CH (TEXT, created_at), CH (TEXT, domain),
  CH (TEXT, full_id), CH (TEXT, last_id), CH (UINT, length),
  CH (SIZE, n_backups), CH (SIZE, n_completed), CH (UINT64, size_bytes),
};
#undef CH
VV_CAT_ROWTYPE (chain_row, vv_chain_rec, "a chain", chain_cols, NULL);
VV_CAT_DEFINE_RECS_FREE (vv_chain_rec, chain_row)

int
vv_catalog_chain_list (struct vv_catalog *c, const char *domain,
                       int64_t owner_filter,
                       struct vv_chain_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing chains";

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
  return vv_cat_collect (c, s, what, &chain_row, (void ***) ret, ret_n);
}

static int
chain_not_found (const char *id)
{
  vv_error_code (VV_ERR_NOT_FOUND, "no chain with id '%s'", id);
  return -1;
}

struct vv_chain_rec *
vv_catalog_chain_get (struct vv_catalog *c, const char *id,
                      int64_t owner_filter)
{
  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "chain id is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_get_row (c, &chain_row, "reading a chain",
                         CHAIN_SELECT " WHERE c.id = ?1"
                         " AND (?2 = -1 OR c.owner_uid = ?2)",
                         id, owner_filter, chain_not_found);
}
