/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by backup.c and backup-delete.c (not for other modules). */
#ifndef VV_ENGINE_INTERNAL_H
#define VV_ENGINE_INTERNAL_H

#include <stdbool.h>

#include <libvirt/libvirt.h>

#include "engine/engine.h"
#include "target/target.h"

/* Every checkpoint virtvault creates is named this way; no other
 * checkpoint is ever touched.
 */
#define VV_CHECKPOINT_PREFIX "virtvault-"

/* Opens the catalog's target by name (params parsed from the record). */
struct vv_target *vv_engine_open_target (struct vv_engine *e,
                                         const char *name);

/* <state_dir>/run/<backup-id>: the private directory of one attempt. */
char *vv_engine_run_dir (struct vv_engine *e, const char *backup_id);

/* Ends the domain's libvirt job (if any) and waits until libvirt says no
 * job is active.  Never fails for "no job".
 */
int vv_engine_abort_job (virDomainPtr dom, const char *what);

/* True if the domain's active backup job serves its NBD socket from
 * run_dir (so the job belongs to that backup attempt).
 */
bool vv_engine_backup_job_in (virDomainPtr dom, const char *run_dir);

/* Deletes a virtvault checkpoint in libvirt.  A checkpoint that is gone
 * is fine.  On a running domain, when the bitmap is missing (or
 * any_fallback is set and the full delete fails) only the metadata is
 * removed.  Fails on a shut-off domain (libvirt 9 can not delete its
 * checkpoints).  Returns 0 when no such checkpoint exists any more.
 */
int vv_engine_delete_checkpoint (virDomainPtr dom, const char *name,
                                 bool any_fallback);

/* Deletes the domain's virtvault checkpoints other than keep (those of
 * completed backups, clearing them in the catalog, and any the catalog
 * does not know); best effort.  Until incrementals use them they only
 * cost guest write performance.
 */
void vv_engine_prune_checkpoints (struct vv_engine *e, virDomainPtr dom,
                                  const char *domain_uuid, const char *keep);

/* Libvirt's XML of a checkpoint without its <parent>, fit to be redefined
 * later; NULL if libvirt has no such checkpoint.
 */
char *vv_engine_checkpoint_xml (virDomainPtr dom, const char *name);

/* What a backup attempt may have created, for cleanup. */
struct vv_attempt {
  const char *backup_id;
  const char *domain;           /* name, for messages */
  const char *checkpoint;       /* NULL if none was planned */
  const char *prefix;           /* objects on the target */
  const char *target;           /* target name */
};

/* Undoes everything an unfinished attempt may have left: the libvirt job
 * (when job_is_ours, or when the active backup job serves from this
 * attempt's run directory), the checkpoint, the objects under the prefix,
 * the run directory; then marks the backup status (failed or cancelled;
 * status NULL leaves status and error as they are) with message and
 * clears its checkpoint.  dom may be NULL (domain gone or libvirt
 * unreachable); t may be NULL (opened by name).  What could not be undone
 * is recorded in the backup's `cleanup` (cleared when nothing is left), to
 * be retried by vv_backup_retry_cleanups.  Returns -1 when the catalog
 * could not be updated, 1 when something is left, 0 when nothing is;
 * leaves the caller's current error untouched.
 */
/* A pull-mode backup job libvirt still runs on dom for a backup of this
 * state directory that is no longer pending or running (its daemon
 * stopped): aborted, and the attempt's checkpoint deleted.  1 if one was
 * aborted, 0 if there was none, -1 on failure.
 */
int vv_engine_abort_orphan (struct vv_engine *e, virDomainPtr dom,
                            const char *name);

int vv_engine_cleanup_attempt (struct vv_engine *e, virDomainPtr dom,
                               bool domain_gone, const struct vv_attempt *a,
                               bool job_is_ours, struct vv_target *t,
                               const char *status,
                               const char *message);

#endif
