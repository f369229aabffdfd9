/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backup engine: libvirt checkpoints and pull-mode backup jobs, read
 * with libnbd, written as qcow2 streams to a storage target.
 *
 * Work is split in two so the API can answer at once: prepare checks the
 * request against the live domain and records a pending backup (every
 * user error is found here: unknown domain, not running, unknown disk,
 * unknown target); run does the long part inside a job.
 */
#ifndef VV_ENGINE_H
#define VV_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "util/progress.h"

/* Shared by the daemon's modules; owned by the daemon. */
struct vv_engine {
  const char *libvirt_uri;      /* "qemu:///system" */
  const char *state_dir;        /* catalog, scratch files, NBD sockets */
  struct vv_catalog *catalog;
  const char *default_target;   /* the config's, "local"; the catalog's
                                 * default wins (vv_engine_default_target) */
  /* Appended with incremental chains. */
  unsigned max_chain;           /* incrementals per chain; 0 = 6 */
};

/* Limits on what a caller controls. */
#define VV_DOMAIN_NAME_MAX 200
#define VV_MAX_DISKS 64

struct vv_backup_request {
  const char *domain;           /* name or UUID */
  const char *target;           /* target name; NULL = default */
  bool all_disks;               /* every backup-able disk */
  const char *const *disks;     /* NULL-terminated target devs, or NULL */
  const char *job_id;           /* the job that will run it */
  int64_t owner_uid;            /* the caller */
  /* Appended with incremental chains. */
  const char *mode;             /* "auto" (NULL), "full", "incremental" */
  unsigned max_chain;           /* incrementals per chain, 1..1000;
                                 * 0 = the engine's */
  const char *quiesce;          /* "off" (NULL), "on", "try" */
  bool pause;                   /* suspend while the checkpoint is made */
};

/* The name of the default target, for a backup or policy that names
 * none: the target marked the default in the catalog, else the daemon
 * config's default_target.  NULL with the error reported; free it.
 */
char *vv_engine_default_target (struct vv_engine *e);

/* What prepare decided; consumed by run. */
struct vv_backup_job;

/* Checks the request, creates the pending backup record and returns it
 * (ret_rec may be NULL) with the job to run.
 */
int vv_backup_prepare (struct vv_engine *e,
                       const struct vv_backup_request *req,
                       struct vv_backup_job **ret_job,
                       struct vv_backup_rec **ret_rec);
/* Runs it: on success the backup is completed in the catalog and on the
 * target; on failure or cancel everything this attempt created (libvirt
 * job, checkpoint, scratch files, partial objects) is removed and the
 * backup is marked failed/cancelled with the reason.
 */
int vv_backup_run (struct vv_engine *e, struct vv_backup_job *job,
                   struct vv_progress *p);
struct vv_backup_job *vv_backup_job_free (struct vv_backup_job *job);

/* After a daemon crash, for a backup left pending/running.  When it was
 * running and its target holds it complete (a valid manifest of exactly
 * this backup, every object with the stated size and sha256: the crash
 * came after the manifest was published), it is marked completed and its
 * checkpoint kept: VV_RECOVER_COMPLETED.  Otherwise the attempt is
 * cleaned up (the domain's backup job if still active, its checkpoint,
 * scratch files and objects) and marked failed with reason:
 * VV_RECOVER_FAILED, or VV_RECOVER_PENDING when some of the cleanup could
 * not be done (kept in the catalog and retried).  Nothing is deleted from
 * a target that could not be checked.  *ret_note (may be NULL) says why a
 * manifest found was not taken, or NULL.  -1 when the catalog failed.
 */
enum {
  VV_RECOVER_FAILED = 0,
  VV_RECOVER_PENDING = 1,
  VV_RECOVER_COMPLETED = 2,
};
int vv_backup_recover (struct vv_engine *e, const struct vv_backup_rec *b,
                       const char *reason, char **ret_note);

/* Retries the pending cleanups of failed backups of one domain (UUID) or
 * of all (NULL); how many finished and how many are still left.
 */
int vv_backup_retry_cleanups (struct vv_engine *e, const char *domain_uuid,
                              unsigned *ret_done, unsigned *ret_left);

/* Deletes a finished backup: its objects on the target, then its catalog
 * rows.  Refused while an incremental depends on it.
 */
int vv_backup_delete (struct vv_engine *e, const char *backup_id,
                      int64_t owner_filter);
/* The error of a backup whose delete has begun (it is marked failed with
 * it before anything is removed).
 */
#define VV_DELETING_ERROR "being deleted"
/* Finishes the deletes a killed daemon left half done (at start-up);
 * each is logged.  -1 when one could not be finished (it stays marked
 * and is tried again at the next start).
 */
int vv_backup_finish_deletes (struct vv_engine *e,
                              void (*log) (const char *fmt, ...)
                              __attribute__ ((format (printf, 1, 2))));

/* Appended with target import: rebuilding the catalog from what a target
 * holds (docs/storage-format.md, "Rebuilding the catalog from targets").
 */
#define VV_IMPORT_MAX_OBJECTS 1000000   /* objects listed */
#define VV_IMPORT_MAX_MANIFESTS 100000  /* manifests read */
#define VV_IMPORT_MAX_REPORTED 1000     /* skipped manifests detailed */
/* Bytes of backup records an import keeps while it decides (a backup of
 * one disk takes about 1 KiB): docs/storage-format.md.
 */
#define VV_IMPORT_MAX_KEPT (256 * 1024 * 1024)

struct vv_import_skip {
  char *object;                 /* the manifest's name on the target */
  char *reason;
};
struct vv_import_result {
  size_t imported;              /* backups added to the catalog */
  size_t known;                 /* in it already (same id, this target) */
  size_t n_skipped;             /* manifests skipped, all counted */
  size_t n_reported;            /* the first of them, in skipped[] */
  struct vv_import_skip *skipped;
};
void vv_import_result_clear (struct vv_import_result *r);
/* Reads every manifest on the catalog's target named target and records
 * the complete backups the catalog lacks, all in one transaction; on
 * failure the catalog is unchanged and *ret untouched.
 */
int vv_engine_import_target (struct vv_engine *e, const char *target,
                             struct vv_import_result *ret);

/* Object names on a target, per the storage format contract:
 * <domain-uuid>/<chain-id>/<backup-id>/{<disk>.qcow2,domain.xml,manifest.json}
 */
char *vv_backup_prefix (const char *domain_uuid, const char *chain_id,
                        const char *backup_id);

#endif
