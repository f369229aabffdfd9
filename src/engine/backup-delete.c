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
