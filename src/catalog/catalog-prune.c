/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdio.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

/* Deletes the rows of one table older than cutoff (UTC text) with sql
 * (?1 = cutoff); their number goes to *ret.
 */
static int
prune_one (struct vv_catalog *c, const char *what, const char *sql,
           const char *cutoff, uint64_t *ret)
{
  _cleanup_stmt_ sqlite3_stmt *s = NULL;

  if (vv_cat_prepare (c, what, sql, &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, cutoff))
    return vv_cat_bind_error (c, what);
  if (vv_cat_step_done (c, s, what) == -1)
    return -1;
  *ret = (uint64_t) sqlite3_changes (c->db);
  return 0;
}

int
vv_catalog_prune (struct vv_catalog *c, const struct vv_prune_ages *ages,
                  time_t now, struct vv_prune_counts *ret)
{
  /* Finished jobs only; a policy's newest run of each instance stays,
   * since the scheduler resumes from it.
   */
  static const struct {
    const char *what;
    const char *sql;
  } tables[3] = {
    { "pruning the audit log",
      "DELETE FROM audit WHERE at < ?1" },
    { "pruning finished jobs",
      "DELETE FROM jobs WHERE created_at < ?1"
      " AND status IN ('completed', 'failed', 'cancelled')" },
    { "pruning policy runs",
      "DELETE FROM policy_runs WHERE started_at < ?1"
      " AND result <> 'running'"
      " AND id NOT IN (SELECT max(id) FROM policy_runs"
      "                GROUP BY policy, domain_uuid)" },
  };
  const unsigned days[3] = { ages->audit_days, ages->job_days,
                             ages->run_days };
  uint64_t *counts[3] = { &ret->audit, &ret->jobs, &ret->runs };

  *ret = (struct vv_prune_counts) { 0 };
  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  if (vv_cat_begin (c, &txn) == -1)
    return -1;
  for (size_t i = 0; i < 3; i++) {
    char cutoff[VV_TIME_MAX];

    if (days[i] == 0)
      continue;                 /* kept for ever */
    vv_format_time_utc (now - (time_t) days[i] * 86400, cutoff);
    if (prune_one (c, tables[i].what, tables[i].sql, cutoff,
                   counts[i]) == -1)
      return -1;
  }
  return vv_cat_commit (&txn);
}
