/* Restores and verification of stored backups. */
#ifndef VV_RESTORE_H
#define VV_RESTORE_H

#include <stdint.h>

#include "engine/engine.h"
#include "util/progress.h"

struct vv_restore_request {
  const char *backup_id;
  const char *dir;              /* absolute; created if missing */
  const char *format;           /* "qcow2" (default) or "raw" */
  int64_t owner_filter;
};

/* The synchronous part: backup exists and is completed, format known,
 * dir absolute and writable, no existing file would be overwritten.
 */
int vv_restore_check (struct vv_engine *e,
                      const struct vv_restore_request *req);
/* Writes dir/<disk>.<format> for each disk of the backup, verifying the
 * sha256 of every image read.  Writes to temporary names and renames at
 * the end, so an interrupted restore leaves no half-written disk under a
 * final name.
 */
int vv_restore_to_dir (struct vv_engine *e,
                       const struct vv_restore_request *req,
                       struct vv_progress *p);

/* Re-reads every object of a backup from its target: sha256 of each disk
 * image and the manifest, and the qcow2 structure of each image.
 */
int vv_verify_backup (struct vv_engine *e, const char *backup_id,
                      int64_t owner_filter, struct vv_progress *p);

#endif
