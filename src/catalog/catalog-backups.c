/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

static void
disk_rec_clear (struct vv_disk_rec *d)
{
  free (d->name);
  free (d->sha256);
  free (d->format);
  free (d->object);
  free (d->backing);
  free (d->blocks_object);
  free (d->blocks_sha256);
}

void
vv_backup_rec_free (struct vv_backup_rec *r)
{
  size_t i;

  if (r == NULL)
    return;
  free (r->id);
  free (r->domain);
  free (r->domain_uuid);
  free (r->type);
  free (r->status);
  free (r->chain_id);
  free (r->parent_id);
  free (r->created_at);
  free (r->completed_at);
  free (r->target);
  free (r->reason);
  free (r->notes);
  free (r->error);
  free (r->checkpoint);
  free (r->prefix);
  free (r->job_id);
  free (r->checkpoint_xml);
  free (r->origin);
  free (r->policy);
  free (r->domain_xml_sha256);
  free (r->cleanup);
  free (r->corrupt);
  free (r->verified_at);
  free (r->verify_result);
  free (r->owner_name);
  free (r->host_id);
  for (i = 0; i < r->n_disks; i++)
    disk_rec_clear (&r->disks[i]);
  free (r->disks);
  free (r);
}

/* SQLite integers are signed 64-bit. */
static int
check_size (const char *what, const char *id, uint64_t v)
{
  if (v > INT64_MAX) {
    vv_error_code (VV_ERR_INVALID, "%s of backup '%s' is too large (%" PRIu64
                   " bytes)", what, id, v);
    return -1;
  }
  return 0;
}

static int
not_found (const char *id)
{
  vv_error_code (VV_ERR_NOT_FOUND, "no backup with id '%s'", id);
  return -1;
}

static int
no_completed_backup (const char *uuid)
{
  vv_error_code (VV_ERR_NOT_FOUND, "domain %s has no completed backup",
                 uuid);
  return -1;
}

/* ---- reading ---- */

#define BACKUP_COLUMNS                                                  \
  "id, domain, domain_uuid, type, status, chain_id, parent_id,"        \
  " created_at, completed_at, size_bytes, target, reason, notes, error," \
  " checkpoint, prefix, job_id, owner_uid, chain_pos, checkpoint_xml," \
  " origin, policy, protected, offline, domain_xml_sha256, cleanup,"  \
  " corrupt, verified_at, verify_result"

/* In the order of the SELECT in load_disks. */
#define DK(kind, field) VV_CAT_COL (vv_disk_rec, kind, field)
static const struct vv_cat_col disk_cols[] = {
  DK (TEXT, name), DK (UINT64, virtual_size), DK (UINT64, stored_bytes),
  DK (TEXT, sha256), DK (TEXT, format), DK (TEXT, object), DK (TEXT, backing),
  DK (BOOL, bitmap), DK (TEXT, blocks_object), DK (TEXT, blocks_sha256),
  DK (UINT, block_size), DK (UINT64, metadata_bytes),
};
#undef DK
static const struct vv_cat_rowtype disk_row = {
  "a disk of a backup", sizeof (struct vv_disk_rec), disk_cols,
  sizeof disk_cols / sizeof disk_cols[0], NULL, NULL
};

/* The finish of backup_row: a backup's disks are rows of their own. */
static int
load_disks (struct vv_catalog *c, void *rec)
{
  static const char what[] = "reading the disks of a backup";
  struct vv_backup_rec *r = rec;
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  size_t cap = 0;
  int rc;

  if (vv_cat_prepare (c, what,
                      "SELECT name, virtual_size, stored_bytes, sha256,"
                      " format, object, backing, bitmap, blocks_object,"
                      " blocks_sha256, block_size, metadata_bytes"
                      " FROM backup_disks"
                      " WHERE backup_id = ?1 ORDER BY rowid", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, r->id))
    return vv_cat_bind_error (c, what);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct vv_disk_rec *d;
    if (r->n_disks == cap) {
      size_t ncap = cap ? cap * 2 : 4;
      d = reallocarray (r->disks, ncap, sizeof *d);
      if (d == NULL) {
        vv_error_errno (errno, "%s", what);
        return -1;
      }
      r->disks = d;
      cap = ncap;
    }
    /* Counted before it is read, so the backup's free clears what a
     * failed read copied.
     */
    d = &r->disks[r->n_disks++];
    memset (d, 0, sizeof *d);
    if (vv_cat_read_row (&disk_row, s, d) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return vv_cat_error (c, "reading the disks of backup '%s'", r->id);
  return 0;
}

/* In the order of BACKUP_COLUMNS. */
#define BK(kind, field) VV_CAT_COL (vv_backup_rec, kind, field)
static const struct vv_cat_col backup_cols[] = {
  BK (TEXT, id), BK (TEXT, domain), BK (TEXT, domain_uuid), BK (TEXT, type),
  BK (TEXT, status), BK (TEXT, chain_id), BK (TEXT, parent_id),
  BK (TEXT, created_at), BK (TEXT, completed_at), BK (UINT64, size_bytes),
  BK (TEXT, target), BK (TEXT, reason), BK (TEXT, notes), BK (TEXT, error),
  BK (TEXT, checkpoint), BK (TEXT, prefix), BK (TEXT, job_id),
  BK (INT64, owner_uid), BK (UINT, chain_pos), BK (TEXT, checkpoint_xml),
  BK (TEXT, origin), BK (TEXT, policy), BK (BOOL, protected),
  BK (BOOL, offline), BK (TEXT, domain_xml_sha256), BK (TEXT, cleanup),
  BK (TEXT, corrupt), BK (TEXT, verified_at), BK (TEXT, verify_result),
};
#undef BK
VV_CAT_ROWTYPE (backup_row, vv_backup_rec, "a backup", backup_cols,
                load_disks);
VV_CAT_DEFINE_RECS_FREE (vv_backup_rec, backup_row)

struct vv_backup_rec *
vv_catalog_backup_get (struct vv_catalog *c, const char *id,
                       int64_t owner_filter)
{
  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_get_row (c, &backup_row, "reading a backup",
                         "SELECT " BACKUP_COLUMNS " FROM backups"
                         " WHERE id = ?1 AND (?2 = -1 OR owner_uid = ?2)",
                         id, owner_filter, not_found);
}

int
vv_catalog_backup_list (struct vv_catalog *c, const char *domain,
                        int64_t owner_filter,
                        struct vv_backup_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing backups";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " BACKUP_COLUMNS " FROM backups"
                      " WHERE (?1 IS NULL OR domain = ?1 OR domain_uuid = ?1)"
                      " AND (?2 = -1 OR owner_uid = ?2)"
                      " ORDER BY created_at DESC, rowid DESC", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, domain)
      || vv_cat_bind_int64 (s, 2, owner_filter))
    return vv_cat_bind_error (c, what);
  return vv_cat_collect (c, s, what, &backup_row, (void ***) ret, ret_n);
}

int
vv_catalog_backup_list_unfinished (struct vv_catalog *c,
                                   struct vv_backup_rec ***ret,
                                   size_t *ret_n)
{
  static const char what[] = "listing unfinished backups";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " BACKUP_COLUMNS " FROM backups"
                      " WHERE status IN ('pending', 'running')"
                      " ORDER BY created_at DESC, rowid DESC", &s) == -1)
    return -1;
  return vv_cat_collect (c, s, what, &backup_row, (void ***) ret, ret_n);
}

int
vv_catalog_backup_list_cleanup (struct vv_catalog *c,
                                const char *domain_uuid,
                                struct vv_backup_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing backups with a pending cleanup";

  VV_LOCK_GUARD (&c->lock);
  return vv_cat_collect_key (c, what,
                            "SELECT " BACKUP_COLUMNS " FROM backups"
                            " WHERE cleanup IS NOT NULL"
                            " AND (?1 IS NULL OR domain_uuid = ?1)"
                            " ORDER BY created_at ASC, rowid ASC",
                            domain_uuid, &backup_row, (void ***) ret, ret_n);
}

int
vv_catalog_backup_list_with_checkpoint (struct vv_catalog *c,
                                        const char *domain_uuid,
                                        struct vv_backup_rec ***ret,
                                        size_t *ret_n)
{
  static const char what[] = "listing backups with checkpoints";

  if (domain_uuid == NULL) {
    vv_error_code (VV_ERR_INVALID, "domain uuid is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_collect_key (c, what,
                            "SELECT " BACKUP_COLUMNS " FROM backups"
                            " WHERE domain_uuid = ?1 AND status = 'completed'"
                            " AND checkpoint IS NOT NULL"
                            " ORDER BY created_at ASC, rowid ASC",
                            domain_uuid, &backup_row, (void ***) ret, ret_n);
}

/* Catalog lock held. */
static int
count_children (struct vv_catalog *c, const char *id, int64_t *ret)
{
  static const char what[] = "counting the incrementals of a backup";
  _cleanup_stmt_ sqlite3_stmt *s = NULL;

  if (vv_cat_prepare (c, what,
                      "SELECT count(*) FROM backups WHERE parent_id = ?1",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_ROW)
    return vv_cat_error (c, "counting the incrementals of backup '%s'", id);
  *ret = sqlite3_column_int64 (s, 0);
  return 0;
}

int
vv_catalog_backup_count_children (struct vv_catalog *c, const char *id)
{
  int64_t n;

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  if (count_children (c, id, &n) == -1)
    return -1;
  return n > INT32_MAX ? INT32_MAX : (int) n;
}

/* ---- writing ---- */

/* Catalog lock held. */
static int
insert_disk (struct vv_catalog *c, const char *id, const struct vv_disk_rec *d)
{
  static const char what[] = "recording a disk of a backup";
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  int ext;

  if (d == NULL || d->name == NULL || d->format == NULL
      || d->object == NULL) {
    vv_error_code (VV_ERR_INVALID,
                   "a disk of backup '%s' needs a name, format and object",
                   id);
    return -1;
  }
  /* A sidecar is all or nothing: a reader trusts its name only with its
   * digest and block size.
   */
  if ((d->blocks_object == NULL) != (d->blocks_sha256 == NULL)
      || (d->blocks_object == NULL) != (d->block_size == 0)) {
    vv_error_code (VV_ERR_INVALID, "disk '%s' of backup '%s' needs the "
                   "object, sha256 and block size of its block digests, or "
                   "none of them", d->name, id);
    return -1;
  }
  if (check_size ("virtual size", id, d->virtual_size) == -1
      || check_size ("stored size", id, d->stored_bytes) == -1
      || check_size ("metadata size", id, d->metadata_bytes) == -1)
    return -1;
  if (vv_cat_prepare (c, what,
                      "INSERT INTO backup_disks (backup_id, name,"
                      " virtual_size, stored_bytes, sha256, format, object,"
                      " backing, bitmap, blocks_object, blocks_sha256,"
                      " block_size, metadata_bytes)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                      " ?12, ?13)", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id)
      || vv_cat_bind_text (s, 2, d->name)
      || vv_cat_bind_int64 (s, 3, (int64_t) d->virtual_size)
      || vv_cat_bind_int64 (s, 4, (int64_t) d->stored_bytes)
      || vv_cat_bind_text (s, 5, d->sha256)
      || vv_cat_bind_text (s, 6, d->format)
      || vv_cat_bind_text (s, 7, d->object)
      || vv_cat_bind_text (s, 8, d->backing)
      || vv_cat_bind_int64 (s, 9, d->bitmap)
      || vv_cat_bind_text (s, 10, d->blocks_object)
      || vv_cat_bind_text (s, 11, d->blocks_sha256)
      || vv_cat_bind_int64 (s, 12, d->block_size)
      || vv_cat_bind_int64 (s, 13, (int64_t) d->metadata_bytes))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) == SQLITE_DONE)
    return 0;
  ext = sqlite3_extended_errcode (c->db);
  if (ext == SQLITE_CONSTRAINT_UNIQUE) {
    vv_error_code (VV_ERR_BUSY, "backup '%s' already has a disk '%s'",
                   id, d->name);
    return -1;
  }
  if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
    return not_found (id);
  return vv_cat_error (c, "recording disk '%s' of backup '%s'", d->name, id);
}

static bool
streq (const char *a, const char *b)
{
  return a && b && strcmp (a, b) == 0;
}

/* Catalog lock held.  A target must exist before anything is stored on
 * it; the chain's row is made by its first backup.
 */
static int
check_target_and_chain (struct vv_catalog *c, const struct vv_backup_rec *r,
                        const char *now)
{
  static const char what[] = "checking the chain of a backup";
  _cleanup_stmt_ sqlite3_stmt *t = NULL;
  _cleanup_stmt_ sqlite3_stmt *ch = NULL;
  _cleanup_stmt_ sqlite3_stmt *ins = NULL;
  int rc;

  if (vv_cat_prepare (c, what, "SELECT 1 FROM targets WHERE name = ?1",
                      &t) == -1)
    return -1;
  if (vv_cat_bind_text (t, 1, r->target))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (t);
  if (rc == SQLITE_DONE) {
    vv_error_code (VV_ERR_NOT_FOUND, "no target named '%s'", r->target);
    return -1;
  }
  if (rc != SQLITE_ROW)
    return vv_cat_error (c, "%s", what);

  if (vv_cat_prepare (c, what,
                      "SELECT domain_uuid, target FROM chains WHERE id = ?1",
                      &ch) == -1)
    return -1;
  if (vv_cat_bind_text (ch, 1, r->chain_id))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (ch);
  if (rc == SQLITE_ROW) {
    const char *uuid = (const char *) sqlite3_column_text (ch, 0);
    const char *target = (const char *) sqlite3_column_text (ch, 1);
    if (!streq (uuid, r->domain_uuid)) {
      vv_error_code (VV_ERR_INVALID,
                     "chain '%s' belongs to domain %s, not %s",
                     r->chain_id, uuid ? uuid : "?", r->domain_uuid);
      return -1;
    }
    if (!streq (target, r->target)) {
      vv_error_code (VV_ERR_INVALID,
                     "chain '%s' is stored on target '%s', not '%s'",
                     r->chain_id, target ? target : "?", r->target);
      return -1;
    }
    return 0;
  }
  if (rc != SQLITE_DONE)
    return vv_cat_error (c, "%s", what);

  if (vv_cat_prepare (c, what,
                      "INSERT INTO chains (id, domain_uuid, target,"
                      " owner_uid, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                      &ins) == -1)
    return -1;
  if (vv_cat_bind_text (ins, 1, r->chain_id)
      || vv_cat_bind_text (ins, 2, r->domain_uuid)
      || vv_cat_bind_text (ins, 3, r->target)
      || vv_cat_bind_int64 (ins, 4, r->owner_uid)
      || vv_cat_bind_text (ins, 5, r->created_at ? r->created_at : now))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (ins) != SQLITE_DONE)
    return vv_cat_error (c, "recording chain '%s'", r->chain_id);
  return 0;
}

/* Catalog lock held.  An incremental continues its parent's chain. */
static int
check_parent (struct vv_catalog *c, const struct vv_backup_rec *r)
{
  static const char what[] = "checking the parent of a backup";
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  const char *chain;
  int rc;

  if (r->parent_id == NULL)
    return 0;
  if (vv_cat_prepare (c, what, "SELECT chain_id FROM backups WHERE id = ?1",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, r->parent_id))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE) {
    vv_error_code (VV_ERR_NOT_FOUND,
                   "parent backup '%s' of '%s' is not in the catalog",
                   r->parent_id, r->id);
    return -1;
  }
  if (rc != SQLITE_ROW)
    return vv_cat_error (c, "%s", what);
  chain = (const char *) sqlite3_column_text (s, 0);
  if (!streq (chain, r->chain_id)) {
    vv_error_code (VV_ERR_INVALID,
                   "parent backup '%s' belongs to chain '%s', not '%s'",
                   r->parent_id, chain ? chain : "?", r->chain_id);
    return -1;
  }
  return 0;
}

static int
validate_backup (const struct vv_backup_rec *r)
{
  const char *missing = NULL;

  if (r == NULL || r->id == NULL)
    missing = "id";
  else if (r->domain == NULL)
    missing = "domain";
  else if (r->domain_uuid == NULL)
    missing = "domain_uuid";
  else if (r->type == NULL)
    missing = "type";
  else if (r->chain_id == NULL)
    missing = "chain_id";
  else if (r->target == NULL)
    missing = "target";
  else if (r->prefix == NULL)
    missing = "prefix";
  if (missing) {
    vv_error_code (VV_ERR_INVALID, "backup record lacks its %s", missing);
    return -1;
  }
  if (strcmp (r->type, "full") != 0 && strcmp (r->type, "incremental") != 0) {
    vv_error_code (VV_ERR_INVALID,
                   "backup type '%s' is neither full nor incremental",
                   r->type);
    return -1;
  }
  if ((strcmp (r->type, "full") == 0) != (r->parent_id == NULL)) {
    vv_error_code (VV_ERR_INVALID,
                   "backup '%s': a full backup has no parent and an "
                   "incremental one has one", r->id);
    return -1;
  }
  if (r->status && vv_cat_check_status ("backup", r->status) == -1)
    return -1;
  if (r->n_disks > 0 && r->disks == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup '%s' lists %zu disks but none "
                   "are given", r->id, r->n_disks);
    return -1;
  }
  return check_size ("size", r->id, r->size_bytes);
}

/* Catalog lock held, inside a transaction. */
static int
insert_locked (struct vv_catalog *c, const struct vv_backup_rec *r,
               const char *now)
{
  static const char what[] = "recording a backup";
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  size_t i;

  if (check_target_and_chain (c, r, now) == -1
      || check_parent (c, r) == -1)
    return -1;

  if (vv_cat_prepare (c, what,
                      "INSERT INTO backups (" BACKUP_COLUMNS ") VALUES"
                      " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                      " ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,"
                      " ?23, ?24, ?25, ?26, ?27, ?28, ?29)", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, r->id)
      || vv_cat_bind_text (s, 2, r->domain)
      || vv_cat_bind_text (s, 3, r->domain_uuid)
      || vv_cat_bind_text (s, 4, r->type)
      || vv_cat_bind_text (s, 5, r->status ? r->status : "pending")
      || vv_cat_bind_text (s, 6, r->chain_id)
      || vv_cat_bind_text (s, 7, r->parent_id)
      || vv_cat_bind_text (s, 8, r->created_at ? r->created_at : now)
      || vv_cat_bind_text (s, 9, r->completed_at)
      || vv_cat_bind_int64 (s, 10, (int64_t) r->size_bytes)
      || vv_cat_bind_text (s, 11, r->target)
      || vv_cat_bind_text (s, 12, r->reason)
      || vv_cat_bind_text (s, 13, r->notes)
      || vv_cat_bind_text (s, 14, r->error)
      || vv_cat_bind_text (s, 15, r->checkpoint)
      || vv_cat_bind_text (s, 16, r->prefix)
      || vv_cat_bind_text (s, 17, r->job_id)
      || vv_cat_bind_int64 (s, 18, r->owner_uid)
      || vv_cat_bind_int64 (s, 19, r->chain_pos)
      || vv_cat_bind_text (s, 20, r->checkpoint_xml)
      || vv_cat_bind_text (s, 21, r->origin ? r->origin : "manual")
      || vv_cat_bind_text (s, 22, r->policy)
      || vv_cat_bind_int64 (s, 23, r->protected)
      || vv_cat_bind_int64 (s, 24, r->offline)
      || vv_cat_bind_text (s, 25, r->domain_xml_sha256)
      || vv_cat_bind_text (s, 26, r->cleanup)
      || vv_cat_bind_text (s, 27, r->corrupt)
      || vv_cat_bind_text (s, 28, r->verified_at)
      || vv_cat_bind_text (s, 29, r->verify_result))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE) {
    if (sqlite3_extended_errcode (c->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
      vv_error_code (VV_ERR_BUSY, "backup '%s' already exists", r->id);
      return -1;
    }
    return vv_cat_error (c, "recording backup '%s'", r->id);
  }
  for (i = 0; i < r->n_disks; i++)
    if (insert_disk (c, r->id, &r->disks[i]) == -1)
      return -1;
  return 0;
}

int
vv_catalog_backup_insert (struct vv_catalog *c,
                          const struct vv_backup_rec *r)
{
  char now[VV_TIME_MAX];

  if (validate_backup (r) == -1)
    return -1;
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  if (vv_cat_begin (c, &txn) == -1 || insert_locked (c, r, now) == -1)
    return -1;
  return vv_cat_commit (&txn);
}

/* Catalog lock held.  The instance of an imported backup: a new one gets
 * the backup's owner; an existing one keeps its owner and takes the
 * backup's domain name only when no backup of it in the catalog is newer
 * (a domain renamed since must not get its old name back).
 */
static int
upsert_instance_of (struct vv_catalog *c, const struct vv_backup_rec *r,
                    const char *now)
{
  static const char what[] = "recording the instance of a backup";
  _cleanup_stmt_ sqlite3_stmt *s = NULL;

  if (vv_cat_prepare (c, what,
                      "INSERT INTO instances (uuid, name, owner_uid,"
                      " created_at) VALUES (?1, ?2, ?3, ?4)"
                      " ON CONFLICT (uuid) DO UPDATE SET name = excluded.name"
                      " WHERE NOT EXISTS (SELECT 1 FROM backups"
                      " WHERE domain_uuid = ?1 AND created_at > ?5)",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, r->domain_uuid)
      || vv_cat_bind_text (s, 2, r->domain)
      || vv_cat_bind_int64 (s, 3, r->owner_uid)
      || vv_cat_bind_text (s, 4, now)
      || vv_cat_bind_text (s, 5, r->created_at ? r->created_at : now))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE)
    return vv_cat_error (c, "recording instance '%s' (%s)", r->domain,
                         r->domain_uuid);
  return 0;
}

int
vv_catalog_backup_insert_all (struct vv_catalog *c,
                              struct vv_backup_rec *const *v, size_t n)
{
  char now[VV_TIME_MAX];
  size_t i;

  for (i = 0; i < n; i++)
    if (validate_backup (v[i]) == -1)
      return -1;
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  if (vv_cat_begin (c, &txn) == -1)
    return -1;
  for (i = 0; i < n; i++)
    if (upsert_instance_of (c, v[i], now) == -1
        || insert_locked (c, v[i], now) == -1)
      return -1;                /* the cleanup rolls everything back */
  return vv_cat_commit (&txn);
}

/* Catalog lock held.  Runs an UPDATE of one backup whose first parameter
 * is the id; NOT_FOUND when no row changed.
 */
static int
update_one (struct vv_catalog *c, sqlite3_stmt *s, const char *id,
            const char *what)
{
  if (sqlite3_step (s) != SQLITE_DONE)
    return vv_cat_error (c, "%s '%s'", what, id);
  if (sqlite3_changes (c->db) == 0)
    return not_found (id);
  return 0;
}

/* The setters of one text column of a backup: sql sets it to ?2 in the
 * row whose id is ?1.
 */
static int
set_text (struct vv_catalog *c, const char *id, const char *what,
          const char *sql, const char *value)
{
  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what, sql, &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id) || vv_cat_bind_text (s, 2, value))
    return vv_cat_bind_error (c, what);
  return update_one (c, s, id, what);
}

int
vv_catalog_backup_set_status (struct vv_catalog *c, const char *id,
                              const char *status, const char *error)
{
  static const char what[] = "updating the status of backup";
  char now[VV_TIME_MAX];

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  if (vv_cat_check_status ("backup", status) == -1)
    return -1;
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "UPDATE backups SET status = ?2, error = ?3,"
                      " completed_at = ?4 WHERE id = ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id)
      || vv_cat_bind_text (s, 2, status)
      || vv_cat_bind_text (s, 3, error)
      || vv_cat_bind_text (s, 4, vv_cat_status_is_final (status) ? now : NULL))
    return vv_cat_bind_error (c, what);
  return update_one (c, s, id, what);
}

int
vv_catalog_backup_set_checkpoint (struct vv_catalog *c, const char *id,
                                  const char *checkpoint)
{
  return set_text (c, id, "recording the checkpoint of backup",
                   "UPDATE backups SET checkpoint = ?2 WHERE id = ?1",
                   checkpoint);
}

int
vv_catalog_backup_set_cleanup (struct vv_catalog *c, const char *id,
                               const char *left)
{
  return set_text (c, id, "recording the pending cleanup of backup",
                   "UPDATE backups SET cleanup = ?2 WHERE id = ?1", left);
}

int
vv_catalog_backup_add_disk (struct vv_catalog *c, const char *id,
                            const struct vv_disk_rec *d)
{
  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  return insert_disk (c, id, d);
}

int
vv_catalog_backup_complete (struct vv_catalog *c, const char *id,
                            uint64_t size_bytes)
{
  static const char what[] = "completing backup";
  char now[VV_TIME_MAX];

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  if (check_size ("size", id, size_bytes) == -1)
    return -1;
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "UPDATE backups SET status = 'completed',"
                      " size_bytes = ?2, completed_at = ?3, error = NULL"
                      " WHERE id = ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id)
      || vv_cat_bind_int64 (s, 2, (int64_t) size_bytes)
      || vv_cat_bind_text (s, 3, now))
    return vv_cat_bind_error (c, what);
  return update_one (c, s, id, what);
}

int
vv_catalog_backup_delete (struct vv_catalog *c, const char *id)
{
  static const char what[] = "deleting a backup";
  int64_t children;
  int rc;

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  _cleanup_stmt_ sqlite3_stmt *get = NULL;
  _cleanup_stmt_ sqlite3_stmt *chain = NULL;
  if (vv_cat_begin (c, &txn) == -1)
    return -1;

  if (vv_cat_prepare (c, what, "SELECT chain_id FROM backups WHERE id = ?1",
                      &get) == -1)
    return -1;
  if (vv_cat_bind_text (get, 1, id))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (get);
  if (rc == SQLITE_DONE)
    return not_found (id);
  if (rc != SQLITE_ROW)
    return vv_cat_error (c, "deleting backup '%s'", id);

  if (count_children (c, id, &children) == -1)
    return -1;
  if (children > 0) {
    vv_error_code (VV_ERR_BUSY,
                   "backup '%s' is the parent of %" PRId64 " %s; delete "
                   "them first", id, VV_PLURAL (children, "backup"));
    return -1;
  }

  /* Its disks go with it (ON DELETE CASCADE). */
  if (vv_cat_exec_key (c, what, "DELETE FROM backups WHERE id = ?1", id) == -1)
    return -1;

  if (vv_cat_prepare (c, what,
                      "DELETE FROM chains WHERE id = ?1 AND NOT EXISTS"
                      " (SELECT 1 FROM backups WHERE chain_id = ?1)",
                      &chain) == -1)
    return -1;
  if (sqlite3_bind_value (chain, 1, sqlite3_column_value (get, 0)))
    return vv_cat_bind_error (c, what);
  if (vv_cat_step_done (c, chain, what) == -1)
    return -1;
  sqlite3_reset (get);
  return vv_cat_commit (&txn);
}

/* ---- incremental chains ---- */

int
vv_catalog_backup_set_checkpoint_xml (struct vv_catalog *c, const char *id,
                                      const char *xml)
{
  return set_text (c, id, "recording the checkpoint XML of backup",
                   "UPDATE backups SET checkpoint_xml = ?2 WHERE id = ?1",
                   xml);
}

int
vv_catalog_backup_make_full (struct vv_catalog *c, const char *id,
                             const char *chain_id, const char *prefix,
                             const char *reason)
{
  static const char what[] = "turning an incremental into a full backup";
  char now[VV_TIME_MAX];
  int rc;

  if (id == NULL || chain_id == NULL || prefix == NULL) {
    vv_error_code (VV_ERR_INVALID, "%s: id, chain or prefix missing", what);
    return -1;
  }
  vv_now_utc (now);
  VV_LOCK_GUARD (&c->lock);
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  _cleanup_stmt_ sqlite3_stmt *get = NULL;
  _cleanup_stmt_ sqlite3_stmt *upd = NULL;
  struct vv_backup_rec r = { 0 };
  if (vv_cat_begin (c, &txn) == -1)
    return -1;
  if (vv_cat_prepare (c, what,
                      "SELECT domain_uuid, target, owner_uid, status"
                      " FROM backups WHERE id = ?1", &get) == -1)
    return -1;
  if (vv_cat_bind_text (get, 1, id))
    return vv_cat_bind_error (c, what);
  rc = sqlite3_step (get);
  if (rc == SQLITE_DONE)
    return not_found (id);
  if (rc != SQLITE_ROW)
    return vv_cat_error (c, "%s '%s'", what, id);
  if (vv_cat_status_is_final ((const char *) sqlite3_column_text (get, 3))) {
    vv_error_code (VV_ERR_INVALID, "backup '%s' has finished; its type can "
                   "no longer change", id);
    return -1;
  }
  r.id = (char *) id;
  r.chain_id = (char *) chain_id;
  r.domain_uuid = (char *) sqlite3_column_text (get, 0);
  r.target = (char *) sqlite3_column_text (get, 1);
  r.owner_uid = sqlite3_column_int64 (get, 2);
  if (check_target_and_chain (c, &r, now) == -1)
    return -1;
  if (vv_cat_prepare (c, what,
                      "UPDATE backups SET type = 'full', parent_id = NULL,"
                      " chain_id = ?2, prefix = ?3, reason = ?4,"
                      " chain_pos = 0 WHERE id = ?1", &upd) == -1)
    return -1;
  if (vv_cat_bind_text (upd, 1, id) || vv_cat_bind_text (upd, 2, chain_id)
      || vv_cat_bind_text (upd, 3, prefix)
      || vv_cat_bind_text (upd, 4, reason))
    return vv_cat_bind_error (c, what);
  if (update_one (c, upd, id, what) == -1)
    return -1;
  return vv_cat_commit (&txn);
}

struct vv_backup_rec *
vv_catalog_backup_last_completed (struct vv_catalog *c, const char *uuid)
{
  if (uuid == NULL) {
    vv_error_code (VV_ERR_INVALID, "domain uuid is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_get_row (c, &backup_row, "finding the last completed backup",
                         "SELECT " BACKUP_COLUMNS " FROM backups"
                         " WHERE domain_uuid = ?1 AND status = 'completed'"
                         " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                         uuid, VV_OWNER_ANY, no_completed_backup);
}

int
vv_catalog_backup_set_domain_xml_sha256 (struct vv_catalog *c,
                                         const char *id, const char *sha256)
{
  return set_text (c, id, "recording the domain XML digest of backup",
                   "UPDATE backups SET domain_xml_sha256 = ?2 WHERE id = ?1",
                   sha256);
}

int
vv_catalog_backup_set_notes (struct vv_catalog *c, const char *id,
                             const char *notes)
{
  return set_text (c, id, "recording the notes of backup",
                   "UPDATE backups SET notes = ?2 WHERE id = ?1", notes);
}

/* ---- who made it; protection (schema 3) ---- */

int
vv_catalog_backup_set_origin (struct vv_catalog *c, const char *id,
                              const char *origin, const char *policy)
{
  static const char what[] = "recording the origin of backup";

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  if (origin == NULL
      || (strcmp (origin, "manual") != 0 && strcmp (origin, "policy") != 0)) {
    vv_error_code (VV_ERR_INVALID, "backup origin must be manual or policy");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "UPDATE backups SET origin = ?2, policy = ?3"
                      " WHERE id = ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id) || vv_cat_bind_text (s, 2, origin)
      || vv_cat_bind_text (s, 3, policy))
    return vv_cat_bind_error (c, what);
  return update_one (c, s, id, what);
}

int
vv_catalog_backup_set_protected (struct vv_catalog *c, const char *id,
                                 bool protected)
{
  static const char what[] = "recording the protection of backup";

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "UPDATE backups SET protected = ?2 WHERE id = ?1",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id) || vv_cat_bind_int64 (s, 2, protected))
    return vv_cat_bind_error (c, what);
  return update_one (c, s, id, what);
}

/* ---- verification (schema 8) ---- */

int
vv_catalog_backup_set_verified (struct vv_catalog *c, const char *id,
                                const char *result, const char *reason)
{
  static const char *const results[] = {
    "ok", "corrupt", "failed", "cancelled", NULL
  };
  static const char what[] = "recording the verify of backup";
  const char *const *r;
  char now[VV_TIME_MAX];

  if (id == NULL) {
    vv_error_code (VV_ERR_INVALID, "backup id is missing");
    return -1;
  }
  for (r = results; *r && (result == NULL || strcmp (*r, result) != 0); r++)
    ;
  if (*r == NULL || (strcmp (result, "corrupt") == 0 && reason == NULL)) {
    vv_error_code (VV_ERR_INVALID, "verify result '%s' of backup %s is not "
                   "ok, corrupt (with a reason), failed or cancelled",
                   result ? result : "(none)", id);
    return -1;
  }
  vv_now_utc (now);
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  /* ?4: what the corrupt mark becomes; only a verdict changes it. */
  if (vv_cat_prepare (c, what,
                      "UPDATE backups SET verified_at = ?2,"
                      " verify_result = ?3,"
                      " corrupt = CASE ?3 WHEN 'ok' THEN NULL"
                      "   WHEN 'corrupt' THEN ?4 ELSE corrupt END"
                      " WHERE id = ?1", &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, id) || vv_cat_bind_text (s, 2, now)
      || vv_cat_bind_text (s, 3, result) || vv_cat_bind_text (s, 4, reason))
    return vv_cat_bind_error (c, what);
  return update_one (c, s, id, what);
}

int
vv_catalog_backup_list_policy (struct vv_catalog *c, const char *policy,
                               struct vv_backup_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing the backups of a policy";

  if (policy == NULL) {
    vv_error_code (VV_ERR_INVALID, "policy name is missing");
    return -1;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_collect_key (c, what,
                            "SELECT " BACKUP_COLUMNS " FROM backups"
                            " WHERE policy = ?1 AND status = 'completed'"
                            " ORDER BY created_at, rowid",
                            policy, &backup_row, (void ***) ret, ret_n);
}

static int
no_corrupt_point (const char *chain_id)
{
  vv_error_code (VV_ERR_NOT_FOUND, "no backup of chain %s is marked corrupt",
                 chain_id);
  return -1;
}

struct vv_backup_rec *
vv_catalog_chain_first_corrupt (struct vv_catalog *c, const char *chain_id,
                                unsigned max_pos)
{
  if (chain_id == NULL) {
    vv_error_code (VV_ERR_INVALID, "chain id is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  /* max_pos takes the place of the owner filter as ?2. */
  return vv_cat_get_row (c, &backup_row, "looking for corrupt backups",
                         "SELECT " BACKUP_COLUMNS " FROM backups"
                         " WHERE chain_id = ?1 AND chain_pos <= ?2"
                         " AND status = 'completed' AND corrupt IS NOT NULL"
                         " ORDER BY chain_pos LIMIT 1",
                         chain_id, max_pos, no_corrupt_point);
}
