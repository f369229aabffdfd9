/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restores and verification of stored backups. */
#ifndef VV_RESTORE_H
#define VV_RESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/progress.h"

/* Where the disks of a backup go. */
enum vv_restore_mode {
  VV_RESTORE_TO_DIR = 0,        /* files in a directory */
  VV_RESTORE_IN_PLACE,          /* over the disks of the backed-up domain */
  VV_RESTORE_AS_NEW,            /* into a new domain */
};

/* Seconds an in-place restore waits for a graceful shutdown before it
 * destroys the domain (stop_timeout < 0), and the longest wait accepted.
 */
#define VV_RESTORE_STOP_TIMEOUT_DEFAULT 60
#define VV_RESTORE_STOP_TIMEOUT_MAX 600

struct vv_restore_request {
  const char *backup_id;
  const char *dir;              /* to-dir: absolute; created if missing.
                                   as-new: the same, NULL for
                                   /var/lib/libvirt/images/<new_name> */
  const char *format;           /* "qcow2" (default) or "raw"; in-place
                                   uses each disk's current format */
  int64_t owner_filter;
  /* Fields below were added with in-place and as-new restores; zero
   * means a restore of every disk to dir.
   */
  enum vv_restore_mode mode;
  const char *const *disks;     /* NULL-terminated subset of the backup's
                                   disks, or NULL for all of them */
  bool force_stop;              /* in-place: stop a running domain */
  int stop_timeout;             /* in-place: graceful shutdown wait in
                                   seconds, 0 destroy at once, < 0 default */
  const char *new_name;         /* as-new: the new domain's name */
  const char *new_uuid;         /* as-new: its UUID; NULL = a random one */
  bool start;                   /* in-place, as-new: start it afterwards */
  /* Appended with scheduled verify. */
  bool force;                   /* restore a point marked corrupt (or one
                                   resting on one) all the same */
};

/* What a restore does, told before it starts (vv_restore_plan). */
struct vv_restore_info {
  char *domain;                 /* in-place: the domain; as-new: new name */
  char *domain_uuid;            /* its UUID (as-new: the one it will get) */
  char *dir;                    /* to-dir, as-new: where the files go */
  char **disks;                 /* the disks restored, NULL-terminated */
  char **files;                 /* the file written for each disk (in
                                   place: the disk image replaced) */
  char *notes;                  /* as-new: disks left out; may be NULL */
};
void vv_restore_info_clear (struct vv_restore_info *info);

/* The synchronous part: backup exists and is completed, format known,
 * dir absolute and writable, no existing file would be overwritten; for
 * in-place the domain exists, is persistent, shut off (or force_stop)
 * and has every disk restored as a file; for as-new the name is free
 * and the stored domain XML readable.
 */
int vv_restore_check (struct vv_engine *e,
                      const struct vv_restore_request *req);
/* vv_restore_check, and what the restore will do.  For as-new without
 * new_uuid, ret->domain_uuid is a fresh UUID: pass it as new_uuid to
 * vv_restore_run so the domain gets the UUID announced.
 */
int vv_restore_plan (struct vv_engine *e,
                     const struct vv_restore_request *req,
                     struct vv_restore_info *ret);
/* Runs the restore req->mode asks for. */
int vv_restore_run (struct vv_engine *e,
                    const struct vv_restore_request *req,
                    struct vv_progress *p);

/* Writes dir/<disk>.<format> for each disk of the backup, verifying the
 * sha256 of every image read.  Writes to temporary names and renames at
 * the end, so an interrupted restore leaves no half-written disk under a
 * final name.
 */
int vv_restore_to_dir (struct vv_engine *e,
                       const struct vv_restore_request *req,
                       struct vv_progress *p);
/* Replaces the disk images of the domain the backup was taken of.  Every
 * restored image is made next to the disk it replaces and renamed over
 * it only when all are ready; a failure before or during the renames
 * leaves every old disk in place.  Deletes the domain's virtvault
 * checkpoints, so its next backup starts a new chain.
 */
int vv_restore_in_place (struct vv_engine *e,
                         const struct vv_restore_request *req,
                         struct vv_progress *p);
/* At start-up: finishes the in-place restores a stopped daemon left, from
 * their journals in <state>/restore/: every disk replaced is put back,
 * the staging directories are removed; and removes the staging
 * directories of restores to a directory (and as-new) recorded there.
 * Says what it did through log
 * (one line each); -1 when a journal could not be finished (it is kept).
 */
int vv_restore_in_place_recover (struct vv_engine *e,
                                 void (*log) (const char *line));
/* Restores the disks to dir and defines a new domain on them from the
 * domain XML stored with the backup (new name, UUID and MAC addresses).
 */
int vv_restore_as_new (struct vv_engine *e,
                       const struct vv_restore_request *req,
                       struct vv_progress *p);

/* Re-reads every object of a backup from its target: sha256 of each disk
 * image and the manifest, and the qcow2 structure of each image.  The
 * outcome is recorded with the backup (docs/catalog.md): a pass clears
 * its corrupt mark; a mismatch, a missing object or a broken image sets
 * it, with the error as the reason (*ret_corrupt true; may be NULL); an
 * unreachable target or a cancel leaves it.
 */
int vv_verify_backup (struct vv_engine *e, const char *backup_id,
                      int64_t owner_filter, struct vv_progress *p,
                      bool *ret_corrupt);

#endif
