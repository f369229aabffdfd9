/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The catalog: what virtvault knows, in SQLite (WAL) in the state
 * directory.  The schema is versioned and migrated forward on open; the
 * catalog can be rebuilt from the manifests on the targets.
 *
 * One connection is shared by all threads (SQLite serialises it).  Records
 * returned are owned by the caller and freed with the matching *_free.
 * Times are ISO 8601 UTC strings ("2026-11-23T15:52:35Z").
 */
#ifndef VV_CATALOG_H
#define VV_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct vv_catalog;

/* Opens (creating the file and migrating the schema if needed). */
struct vv_catalog *vv_catalog_open (const char *path);
struct vv_catalog *vv_catalog_close (struct vv_catalog *c);
/* Schema version now in the file, and the newest this build knows. */
int vv_catalog_schema_version (struct vv_catalog *c);
int vv_catalog_latest_schema_version (void);

/* Owner filter meaning "everyone" (admins). */
#define VV_OWNER_ANY ((int64_t) -1)

/* ---- targets ---- */
struct vv_target_rec {
  char *name;
  char *url;
  char *params;               /* JSON array of "key=value" strings, or NULL */
  double price_per_gb_month;  /* 0 = no price */
  char *created_at;
  /* Read only: completed backups stored there and their images' bytes. */
  int64_t backups;
  uint64_t stored_bytes;
  /* Appended with the default target (schema 8); read only. */
  bool is_default;            /* marked the default in the catalog */
};
void vv_target_rec_free (struct vv_target_rec *r);
/* Fails with VV_ERR_BUSY "target 'x' already exists". */
int vv_catalog_target_add (struct vv_catalog *c, const struct vv_target_rec *r);
/* NULL with VV_ERR_NOT_FOUND "no target named 'x'". */
struct vv_target_rec *vv_catalog_target_get (struct vv_catalog *c,
                                             const char *name);
int vv_catalog_target_list (struct vv_catalog *c,
                            struct vv_target_rec ***ret, size_t *ret_n);
/* Refused (VV_ERR_BUSY) while backups that are not deleted use it, and
 * for the target marked the default.
 */
int vv_catalog_target_remove (struct vv_catalog *c, const char *name);
/* The target marked the default (schema 8): its name in *ret (free it),
 * or NULL when none is (the daemon config's default_target applies).
 */
int vv_catalog_target_get_default (struct vv_catalog *c, char **ret);
/* Marks the target the default, unmarking the one that was (NOT_FOUND
 * when there is no such target).
 */
int vv_catalog_target_set_default (struct vv_catalog *c, const char *name);

/* ---- instances (domains we have seen) ---- */
struct vv_instance_rec {
  char *uuid;
  char *name;
  int64_t owner_uid;
  char *created_at;
};
void vv_instance_rec_free (struct vv_instance_rec *r);
/* Inserts or updates the name of the instance with this uuid.  A new
 * instance gets owner_uid; an existing one keeps its owner.
 */
int vv_catalog_instance_upsert (struct vv_catalog *c, const char *uuid,
                                const char *name, int64_t owner_uid);
struct vv_instance_rec *vv_catalog_instance_get (struct vv_catalog *c,
                                                 const char *uuid);

/* ---- backups and their disks ---- */
struct vv_disk_rec {
  char *name;                 /* target dev, "vda" */
  uint64_t virtual_size;
  uint64_t stored_bytes;
  char *sha256;               /* of the stored object */
  char *format;               /* "qcow2" */
  char *object;               /* object name on the target */
  /* Appended with incremental chains (schema 2). */
  char *backing;              /* relative backing file name of an overlay
                               * ("../bk-.../vda.qcow2"); NULL: standalone */
  bool bitmap;                /* the backup's checkpoint tracks this disk */
  /* Appended with block digests (schema 9). */
  char *blocks_object;        /* sidecar of per-block digests of the image
                               * (target/block-digests.h), full object name
                               * like object; NULL: none (older backups) */
  char *blocks_sha256;        /* sha256 of the sidecar; NULL with it */
  uint32_t block_size;        /* bytes per digested block; 0 with it */
  uint64_t metadata_bytes;    /* all qcow2 metadata of the image lies in
                               * its first metadata_bytes; 0: unknown */
};

struct vv_backup_rec {
  char *id;                   /* "bk-3f9a0c21d4e5" */
  char *domain;               /* name at backup time */
  char *domain_uuid;
  char *type;                 /* "full" | "incremental" */
  char *status;               /* pending|running|completed|failed|cancelled */
  char *chain_id;             /* "ch-..." */
  char *parent_id;            /* NULL for a full */
  char *created_at;
  char *completed_at;         /* NULL until finished */
  uint64_t size_bytes;        /* stored bytes, all objects */
  char *target;               /* target name */
  char *reason;               /* why this type was chosen */
  char *notes;                /* e.g. "skipped hdc: cdrom"; NULL if none */
  char *error;                /* NULL unless failed/cancelled */
  char *checkpoint;           /* libvirt checkpoint created for it, or NULL */
  char *prefix;               /* object prefix on the target, ends in '/' */
  char *job_id;
  int64_t owner_uid;
  size_t n_disks;
  struct vv_disk_rec *disks;
  /* Appended with incremental chains (schema 2). */
  unsigned chain_pos;         /* 0 for the full, n for its n-th incremental */
  char *checkpoint_xml;       /* libvirt's XML of checkpoint, to redefine it */
  /* Appended with policies (schema 3). */
  char *origin;               /* "manual" | "policy"; NULL reads as manual */
  char *policy;               /* the policy that made it, or NULL */
  bool protected;             /* never deleted by retention or limits */
  /* Appended with offline backups (schema 4). */
  bool offline;               /* of a shut-off domain: made no checkpoint */
  /* Appended with the digest of the domain XML (schema 5). */
  char *domain_xml_sha256;    /* of the stored domain.xml; NULL: unknown
                               * (made before schema 5) */
  /* Appended with pending cleanups (schema 6). */
  char *cleanup;              /* what of a failed attempt is left to clean
                               * up, and why; NULL when nothing is */
  /* Appended with scheduled verify (schema 8). */
  char *corrupt;              /* why a verify found it damaged; NULL when
                               * it is not known to be */
  char *verified_at;          /* when its last verify ended, or NULL */
  char *verify_result;        /* ok | corrupt | failed | cancelled | NULL */
  /* Appended with the portable owner and host (manifests only, never
   * stored in the catalog: informative, untrusted when read back).
   */
  char *owner_name;           /* login name of owner_uid where it was made */
  char *host_id;              /* /etc/machine-id of the host that made it */
};
void vv_backup_rec_free (struct vv_backup_rec *r);
void vv_backup_recs_free (struct vv_backup_rec **v, size_t n);

/* Inserts a backup (and its chain row when chain_id is new) with its
 * disks (usually none yet).
 */
int vv_catalog_backup_insert (struct vv_catalog *c,
                              const struct vv_backup_rec *r);
/* Sets status; error may be NULL; completed_at is set for the final
 * statuses (completed, failed, cancelled).
 */
int vv_catalog_backup_set_status (struct vv_catalog *c, const char *id,
                                  const char *status, const char *error);
int vv_catalog_backup_set_checkpoint (struct vv_catalog *c, const char *id,
                                      const char *checkpoint);
/* What is left to clean up of a failed attempt (NULL: nothing). */
int vv_catalog_backup_set_cleanup (struct vv_catalog *c, const char *id,
                                   const char *left);
/* Backups with a pending cleanup, of one domain (UUID) or of all (NULL);
 * oldest first.
 */
int vv_catalog_backup_list_cleanup (struct vv_catalog *c,
                                    const char *domain_uuid,
                                    struct vv_backup_rec ***ret,
                                    size_t *ret_n);
/* Records a finished disk image of the backup. */
int vv_catalog_backup_add_disk (struct vv_catalog *c, const char *id,
                                const struct vv_disk_rec *d);
/* Marks completed, with the total stored size. */
int vv_catalog_backup_complete (struct vv_catalog *c, const char *id,
                                uint64_t size_bytes);
/* NULL with VV_ERR_NOT_FOUND "no backup with id 'x'" (also when owner
 * filter does not match).
 */
struct vv_backup_rec *vv_catalog_backup_get (struct vv_catalog *c,
                                             const char *id,
                                             int64_t owner_filter);
/* domain (name or uuid) may be NULL for all; newest first. */
int vv_catalog_backup_list (struct vv_catalog *c, const char *domain,
                            int64_t owner_filter,
                            struct vv_backup_rec ***ret, size_t *ret_n);
/* Backups left pending or running (after a daemon crash). */
int vv_catalog_backup_list_unfinished (struct vv_catalog *c,
                                       struct vv_backup_rec ***ret,
                                       size_t *ret_n);
/* Completed backups of a domain uuid that still have a checkpoint, oldest
 * first.
 */
int vv_catalog_backup_list_with_checkpoint (struct vv_catalog *c,
                                            const char *domain_uuid,
                                            struct vv_backup_rec ***ret,
                                            size_t *ret_n);
/* Records the sha256 of the backup's stored domain XML. */
int vv_catalog_backup_set_domain_xml_sha256 (struct vv_catalog *c,
                                             const char *id,
                                             const char *sha256);
/* Replaces the notes of a backup (NULL clears them). */
int vv_catalog_backup_set_notes (struct vv_catalog *c, const char *id,
                                 const char *notes);
/* The XML of the backup's checkpoint (NULL clears it). */
int vv_catalog_backup_set_checkpoint_xml (struct vv_catalog *c,
                                          const char *id, const char *xml);
/* Turns a pending or running incremental into a full backup that starts
 * the new chain chain_id (its row is made) under prefix, with reason.
 */
int vv_catalog_backup_make_full (struct vv_catalog *c, const char *id,
                                 const char *chain_id, const char *prefix,
                                 const char *reason);
/* The newest completed backup of a domain uuid (any target), or NULL
 * with VV_ERR_NOT_FOUND.
 */
struct vv_backup_rec *vv_catalog_backup_last_completed (struct vv_catalog *c,
                                                        const char *uuid);
/* What a verify of the backup found, at now: "ok" clears its corrupt
 * mark, "corrupt" sets it to reason, "failed" (the verify could not
 * finish: target unreachable) and "cancelled" leave it as it is.
 */
int vv_catalog_backup_set_verified (struct vv_catalog *c, const char *id,
                                    const char *result, const char *reason);
/* Completed backups made by a policy, oldest first. */
int vv_catalog_backup_list_policy (struct vv_catalog *c, const char *policy,
                                   struct vv_backup_rec ***ret,
                                   size_t *ret_n);
/* The oldest backup marked corrupt among the completed ones of chain at
 * positions 0..max_pos (those an incremental on top of position max_pos
 * builds on), or NULL with VV_ERR_NOT_FOUND when none is.
 */
struct vv_backup_rec *vv_catalog_chain_first_corrupt (struct vv_catalog *c,
                                                      const char *chain_id,
                                                      unsigned max_pos);
/* Number of backups whose parent is id. */
int vv_catalog_backup_count_children (struct vv_catalog *c, const char *id);
/* Removes the rows of the backup and its disks (and its chain row once
 * the chain is empty).
 */
int vv_catalog_backup_delete (struct vv_catalog *c, const char *id);
/* Appended with target import (docs/storage-format.md, "Rebuilding the
 * catalog from targets").  Records backups read from their manifests,
 * each with its chain row and its instance (a new one gets the backup's
 * owner; an existing one takes the backup's domain name unless the
 * catalog holds a newer backup of it), in one transaction: all of them,
 * or none when one fails.  Parents come before their incrementals in v.
 */
int vv_catalog_backup_insert_all (struct vv_catalog *c,
                                  struct vv_backup_rec *const *v, size_t n);

/* ---- chains: a full backup and the incrementals built on it ---- */
struct vv_chain_rec {
  char *id;                   /* "ch-..." */
  char *domain_uuid;
  char *domain;               /* name of its newest backup */
  char *target;
  int64_t owner_uid;
  char *created_at;
  char *full_id;              /* its full backup; NULL if deleted */
  char *last_id;              /* newest completed backup; NULL if none */
  unsigned length;            /* completed incrementals (highest position) */
  size_t n_backups;           /* rows, any status */
  size_t n_completed;
  uint64_t size_bytes;        /* stored bytes of completed backups */
};
void vv_chain_rec_free (struct vv_chain_rec *r);
void vv_chain_recs_free (struct vv_chain_rec **v, size_t n);
/* domain (name or uuid) may be NULL for all; newest first. */
int vv_catalog_chain_list (struct vv_catalog *c, const char *domain,
                           int64_t owner_filter,
                           struct vv_chain_rec ***ret, size_t *ret_n);
/* NULL with VV_ERR_NOT_FOUND "no chain with id 'x'". */
struct vv_chain_rec *vv_catalog_chain_get (struct vv_catalog *c,
                                           const char *id,
                                           int64_t owner_filter);

/* ---- jobs ---- */
struct vv_job_rec {
  char *id;                   /* "job-..." */
  char *kind;                 /* backup | restore | verify */
  char *status;               /* pending|running|completed|failed|cancelled */
  char *domain;
  char *domain_uuid;
  char *backup_id;
  uint64_t bytes_done;
  uint64_t bytes_total;
  char *error;
  char *created_at;
  char *started_at;
  char *finished_at;
  int64_t owner_uid;
  /* Appended with schema 5. */
  char *notes;                /* what the job did besides its task, or NULL */
};
void vv_job_rec_free (struct vv_job_rec *r);
void vv_job_recs_free (struct vv_job_rec **v, size_t n);
int vv_catalog_job_insert (struct vv_catalog *c, const struct vv_job_rec *r);
/* Sets status (and started_at when it becomes running, finished_at for
 * final statuses).
 */
int vv_catalog_job_set_status (struct vv_catalog *c, const char *id,
                               const char *status, const char *error);
int vv_catalog_job_set_progress (struct vv_catalog *c, const char *id,
                                 uint64_t done, uint64_t total);
struct vv_job_rec *vv_catalog_job_get (struct vv_catalog *c, const char *id,
                                       int64_t owner_filter);
/* Newest first, at most limit (0 = 100). */
int vv_catalog_job_list (struct vv_catalog *c, int64_t owner_filter,
                         size_t limit, struct vv_job_rec ***ret,
                         size_t *ret_n);
int vv_catalog_job_list_unfinished (struct vv_catalog *c,
                                    struct vv_job_rec ***ret, size_t *ret_n);

/* ---- audit log of every mutating call ---- */
int vv_catalog_audit (struct vv_catalog *c, int64_t uid, const char *action,
                      const char *object, const char *result,
                      const char *detail);
/* For tests and "virtvault audit": newest first, as JSON text rows. */
struct vv_audit_rec {
  char *at;
  int64_t uid;
  char *action;
  char *object;
  char *result;
  char *detail;
};
void vv_audit_rec_free (struct vv_audit_rec *r);
int vv_catalog_audit_list (struct vv_catalog *c, size_t limit,
                           struct vv_audit_rec ***ret, size_t *ret_n);

/* ---- pruning old rows (schema 7 indexes them by time) ---- */

/* Ages in days after which rows go; 0 keeps them for ever. */
struct vv_prune_ages {
  unsigned audit_days;          /* audit rows, by their time */
  unsigned job_days;            /* finished jobs, by creation time */
  unsigned run_days;            /* finished policy runs, by start time;
                                 * the newest of each instance stays */
};
struct vv_prune_counts {
  uint64_t audit, jobs, runs;   /* rows deleted */
};
/* Deletes what is older than the ages at now, in one transaction. */
int vv_catalog_prune (struct vv_catalog *c, const struct vv_prune_ages *ages,
                      time_t now, struct vv_prune_counts *ret);

/* ---- policies (schema 3): automatic backups per instance ---- */

/* Marks who made a backup: origin "manual" or "policy" (policy names the
 * policy, NULL for manual ones).
 */
int vv_catalog_backup_set_origin (struct vv_catalog *c, const char *id,
                                  const char *origin, const char *policy);
int vv_catalog_backup_set_protected (struct vv_catalog *c, const char *id,
                                     bool protected);

/* Instances the catalog knows (from backups or attachments), by name. */
int vv_catalog_instance_list (struct vv_catalog *c, int64_t owner_filter,
                              struct vv_instance_rec ***ret, size_t *ret_n);
void vv_instance_recs_free (struct vv_instance_rec **v, size_t n);

#define VV_POLICY_NAME_MAX 64

struct vv_policy_rec {
  char *name;
  int64_t owner_uid;
  char *status;               /* active | paused | error */
  char *last_error;           /* of the most recent failed run, or NULL */
  char *schedule_kind;        /* daily | weekly */
  int day;                    /* weekly: 0 Sunday .. 6; daily: -1 */
  int hour, minute;           /* local, in tz */
  char *tz;                   /* IANA name */
  unsigned window;            /* minutes */
  unsigned max_chain;         /* incrementals per chain; 0 = fulls only */
  unsigned retention;         /* chains kept */
  char *keep;                 /* keep rules "1d:7,1w:4", or NULL */
  int64_t max_age;            /* seconds; 0 = none */
  unsigned max_backups;       /* 0 = no cap */
  char *device;               /* primary | all */
  char *target;               /* NULL = the daemon's default */
  char *quiesce;              /* off | try | on */
  char *created_at;
  size_t n_instances;         /* attached (read only) */
  /* Appended with scheduled verify (schema 8). */
  unsigned verify_every;      /* days between verifies of each completed
                               * backup; 0 = none */
};

#define VV_POLICY_VERIFY_EVERY_MAX 365

/* What the completed backups a policy made look like to a verifier,
 * counting those of owner_filter (VV_OWNER_ANY: all).
 */
struct vv_policy_verify_stats {
  char *last_verified_at;     /* newest verify that ended; NULL: none */
  size_t backups;             /* completed backups */
  size_t verified;            /* with a verify that reached a verdict */
  size_t corrupt;             /* marked corrupt */
};
void vv_policy_verify_stats_clear (struct vv_policy_verify_stats *s);
int vv_catalog_policy_verify_stats (struct vv_catalog *c, const char *policy,
                                    int64_t owner_filter,
                                    struct vv_policy_verify_stats *ret);
void vv_policy_rec_free (struct vv_policy_rec *r);
void vv_policy_recs_free (struct vv_policy_rec **v, size_t n);
/* VV_ERR_BUSY "policy 'x' already exists". */
int vv_catalog_policy_add (struct vv_catalog *c, const struct vv_policy_rec *r);
/* Replaces every setting of the policy named r->name (not its status,
 * owner or creation time).
 */
int vv_catalog_policy_update (struct vv_catalog *c,
                              const struct vv_policy_rec *r);
/* NULL with VV_ERR_NOT_FOUND "no policy named 'x'". */
struct vv_policy_rec *vv_catalog_policy_get (struct vv_catalog *c,
                                             const char *name,
                                             int64_t owner_filter);
/* By name. */
int vv_catalog_policy_list (struct vv_catalog *c, int64_t owner_filter,
                            struct vv_policy_rec ***ret, size_t *ret_n);
/* last_error may be NULL (kept as it was when status is "error" and
 * last_error is NULL; cleared otherwise).
 */
int vv_catalog_policy_set_status (struct vv_catalog *c, const char *name,
                                  const char *status, const char *last_error);
/* Detaches its instances and forgets its runs; its backups stay (they
 * become automatic backups of no policy).
 */
int vv_catalog_policy_delete (struct vv_catalog *c, const char *name);

struct vv_attachment_rec {
  char *policy;
  char *domain_uuid;
  char *domain;               /* name when attached */
  char *attached_at;
};
void vv_attachment_rec_free (struct vv_attachment_rec *r);
void vv_attachment_recs_free (struct vv_attachment_rec **v, size_t n);
/* An instance is in at most one policy: VV_ERR_BUSY "Instance is already
 * attached to another backup policy ('x'); ..." otherwise.  Attaching to
 * the policy it is in already changes nothing.
 */
int vv_catalog_policy_attach (struct vv_catalog *c, const char *policy,
                              const char *domain_uuid, const char *domain);
/* domain is a name or uuid; VV_ERR_NOT_FOUND when not attached.  The
 * policy it was in is returned in *ret_policy (may be NULL).
 */
int vv_catalog_policy_detach (struct vv_catalog *c, const char *domain,
                              char **ret_policy);
/* policy NULL: every attachment.  Oldest first. */
int vv_catalog_attachment_list (struct vv_catalog *c, const char *policy,
                                struct vv_attachment_rec ***ret,
                                size_t *ret_n);
/* The attachment of a domain (name or uuid), or NULL with NOT_FOUND. */
struct vv_attachment_rec *vv_catalog_attachment_get (struct vv_catalog *c,
                                                     const char *domain);

struct vv_run_rec {
  int64_t id;
  char *policy;
  char *domain_uuid;
  char *domain;
  char *scheduled_for;
  char *started_at;
  char *finished_at;          /* NULL while running */
  char *kind;                 /* full | incremental | NULL */
  char *backup_id;
  char *result;               /* running | ok | failed | skipped */
  char *message;
};
void vv_run_rec_free (struct vv_run_rec *r);
void vv_run_recs_free (struct vv_run_rec **v, size_t n);
/* Records a run (started now); its id in *ret_id. */
int vv_catalog_run_insert (struct vv_catalog *c, const struct vv_run_rec *r,
                           int64_t *ret_id);
int vv_catalog_run_finish (struct vv_catalog *c, int64_t id,
                           const char *result, const char *backup_id,
                           const char *message);
/* Runs still marked running (a daemon stopped during them), oldest first. */
int vv_catalog_run_list_running (struct vv_catalog *c,
                                 struct vv_run_rec ***ret, size_t *ret_n);

/* The retry state of a policy x instance (schema 6): the slot whose run
 * failed, how many runs of it failed in a row, and when the next try is
 * due (NULL: none left until the next slot).  Times are UTC text.
 */
struct vv_retry_rec {
  char *policy;
  char *domain_uuid;
  char *slot;
  unsigned failures;
  char *retry_at;
};
void vv_retry_rec_free (struct vv_retry_rec *r);
void vv_retry_recs_free (struct vv_retry_rec **v, size_t n);
/* Inserts or replaces; does nothing for a policy that no longer exists. */
int vv_catalog_retry_set (struct vv_catalog *c, const struct vv_retry_rec *r);
int vv_catalog_retry_clear (struct vv_catalog *c, const char *policy,
                            const char *domain_uuid);
int vv_catalog_retry_list (struct vv_catalog *c, struct vv_retry_rec ***ret,
                           size_t *ret_n);

/* Newest first, at most limit (0 = 100); domain_uuid may be NULL. */
int vv_catalog_run_list (struct vv_catalog *c, const char *policy,
                         const char *domain_uuid, size_t limit,
                         struct vv_run_rec ***ret, size_t *ret_n);

#endif
