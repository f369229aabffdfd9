/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <string.h>

#include <libvirt/libvirt.h>

#include "engine/domain.h"
#include "engine/engine.h"
#include "engine/engine-internal.h"
#include "target/target.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

/* Best effort: a checkpoint of a domain that is gone or unreachable is
 * not worth failing the delete for.
 */
static void
delete_checkpoint (struct vv_engine *e, const struct vv_backup_rec *b)
{
  _cleanup_vir_conn_ virConnectPtr conn = NULL;
  _cleanup_vir_domain_ virDomainPtr dom = NULL;

  if (!vv_str_has_prefix (b->checkpoint, VV_CHECKPOINT_PREFIX))
    return;
  conn = vv_libvirt_open (e->libvirt_uri);
  if (conn)
    dom = virDomainLookupByUUIDString (conn, b->domain_uuid);
  if (dom)
    vv_engine_delete_checkpoint (dom, b->checkpoint, false);
  vv_clear_error ();
}

/* A backup whose delete began: failed with the VV_DELETING_ERROR. */
static bool
deleting (const struct vv_backup_rec *b)
{
  return strcmp (b->status, "failed") == 0 && b->error
    && vv_str_has_prefix (b->error, VV_DELETING_ERROR);
}

int
vv_backup_delete (struct vv_engine *e, const char *backup_id,
                  int64_t owner_filter)
{
  struct vv_backup_rec *b;
  struct vv_target *t = NULL;
  _cleanup_free_ char *manifest = NULL;
  int children, exists, ret = -1;
  uint64_t size;

  if (!vv_is_id ("bk", backup_id)) {
    vv_error_code (VV_ERR_NOT_FOUND, "no backup with id '%s'",
                   backup_id ? backup_id : "");
    return -1;
  }
  b = vv_catalog_backup_get (e->catalog, backup_id, owner_filter);
  if (b == NULL)
    return -1;
  if (strcmp (b->status, "pending") == 0
      || strcmp (b->status, "running") == 0) {
    vv_error_code (VV_ERR_BUSY, "backup %s is %s (job %s); cancel it with "
                   "'virtvault job cancel %s' or wait for it to finish",
                   b->id, b->status, b->job_id ? b->job_id : "?",
                   b->job_id ? b->job_id : "JOB");
    goto out;
  }
  children = vv_catalog_backup_count_children (e->catalog, b->id);
  if (children == -1)
    goto out;
  if (children > 0) {
    vv_error_code (VV_ERR_BUSY, "backup %s has %d incremental backup%s "
                   "based on it; delete %s first", b->id, children,
                   children == 1 ? "" : "s",
                   children == 1 ? "that one" : "those");
    goto out;
  }

  /* Before anything is removed the backup stops being completed: a
   * daemon killed half way leaves a failed backup (never a completed one
   * that cannot be restored), and vv_backup_finish_deletes completes the
   * delete at the next start.
   */
  if (!deleting (b)) {
    _cleanup_free_ char *msg =
      vv_printf (VV_DELETING_ERROR "; virtvaultd stopped during the delete "
                 "and finishes it at its next start, or run 'virtvault "
                 "delete %s'", b->id);
    if (msg == NULL
        || vv_catalog_backup_set_status (e->catalog, b->id, "failed",
                                         msg) == -1)
      goto out;
  }

  if (b->prefix && b->prefix[0]) {
    t = vv_engine_open_target (e, b->target);
    if (t == NULL) {
      vv_error_prefix ("cannot delete backup %s: ", b->id);
      goto out;
    }
    /* The manifest first: a half-deleted backup must never look
     * complete to whoever reads the target.
     */
    manifest = vv_printf ("%smanifest.json", b->prefix);
    if (manifest == NULL)
      goto out;
    exists = vv_target_stat (t, manifest, &size);
    if (exists == -1
        || (exists == 1 && vv_target_remove (t, manifest) == -1)
        || vv_target_remove_prefix (t, b->prefix) == -1) {
      vv_error_prefix ("cannot delete backup %s: ", b->id);
      goto out;
    }
  }
  if (b->checkpoint)
    delete_checkpoint (e, b);
  if (vv_catalog_backup_delete (e->catalog, b->id) == -1)
    goto out;
  ret = 0;

 out:
  vv_target_close (t);
  vv_backup_rec_free (b);
  return ret;
}

int
vv_backup_finish_deletes (struct vv_engine *e,
                          void (*log) (const char *fmt, ...))
{
  struct vv_backup_rec **bv = NULL;
  size_t n = 0;
  int failed = 0;

  if (vv_catalog_backup_list (e->catalog, NULL, VV_OWNER_ANY, &bv, &n) == -1)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (!deleting (bv[i]))
      continue;
    if (vv_backup_delete (e, bv[i]->id, VV_OWNER_ANY) == 0) {
      log ("backup %s of '%s': the delete that was interrupted is finished",
           bv[i]->id, bv[i]->domain);
      continue;
    }
    log ("backup %s of '%s': cannot finish the interrupted delete (tried "
         "again at the next start): %s", bv[i]->id, bv[i]->domain,
         vv_get_error ());
    failed++;
  }
  vv_backup_recs_free (bv, n);
  return failed ? -1 : 0;
}
