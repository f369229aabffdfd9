/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

/* The schema, as an ordered list of steps.  A step is never edited once
 * released: change the schema by appending a step.  Each runs in its own
 * transaction together with the schema_version row that records it, so a
 * crash leaves the file at the previous version, never half-way.
 * docs/catalog.md describes the tables.
 */
static const char migration_1[] =
  "CREATE TABLE schema_version (\n"
  "  version INTEGER PRIMARY KEY NOT NULL,\n"
  "  applied_at TEXT NOT NULL,\n"
  "  description TEXT NOT NULL\n"
  ");\n"
  "CREATE TABLE targets (\n"
  "  name TEXT PRIMARY KEY NOT NULL,\n"
  "  url TEXT NOT NULL,\n"
  "  params TEXT,\n"
  "  price_per_gb_month REAL NOT NULL DEFAULT 0\n"
  "    CHECK (price_per_gb_month >= 0),\n"
  "  owner_uid INTEGER NOT NULL DEFAULT 0,\n"
  "  created_at TEXT NOT NULL\n"
  ");\n"
  "CREATE TABLE instances (\n"
  "  uuid TEXT PRIMARY KEY NOT NULL,\n"
  "  name TEXT NOT NULL,\n"
  "  owner_uid INTEGER NOT NULL,\n"
  "  created_at TEXT NOT NULL\n"
  ");\n"
  "CREATE TABLE chains (\n"
  "  id TEXT PRIMARY KEY NOT NULL,\n"
  "  domain_uuid TEXT NOT NULL,\n"
  "  target TEXT NOT NULL REFERENCES targets (name),\n"
  "  owner_uid INTEGER NOT NULL,\n"
  "  created_at TEXT NOT NULL\n"
  ");\n"
  "CREATE TABLE backups (\n"
  "  id TEXT PRIMARY KEY NOT NULL,\n"
  "  domain TEXT NOT NULL,\n"
  "  domain_uuid TEXT NOT NULL,\n"
  "  type TEXT NOT NULL CHECK (type IN ('full', 'incremental')),\n"
  "  status TEXT NOT NULL CHECK (status IN ('pending', 'running',\n"
  "    'completed', 'failed', 'cancelled')),\n"
  "  chain_id TEXT NOT NULL REFERENCES chains (id),\n"
  "  parent_id TEXT REFERENCES backups (id),\n"
  "  created_at TEXT NOT NULL,\n"
  "  completed_at TEXT,\n"
  "  size_bytes INTEGER NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),\n"
  "  target TEXT NOT NULL REFERENCES targets (name),\n"
  "  reason TEXT,\n"
  "  notes TEXT,\n"
  "  error TEXT,\n"
  "  checkpoint TEXT,\n"
  "  prefix TEXT NOT NULL,\n"
  "  job_id TEXT,\n"
  "  owner_uid INTEGER NOT NULL,\n"
  "  CHECK ((type = 'full') = (parent_id IS NULL))\n"
  ");\n"
  "CREATE INDEX backups_by_uuid ON backups (domain_uuid, created_at);\n"
  "CREATE INDEX backups_by_domain ON backups (domain, created_at);\n"
  "CREATE INDEX backups_by_created ON backups (created_at);\n"
  "CREATE INDEX backups_by_parent ON backups (parent_id);\n"
  "CREATE INDEX backups_by_chain ON backups (chain_id);\n"
  "CREATE INDEX backups_by_target ON backups (target);\n"
  "CREATE INDEX backups_by_status ON backups (status);\n"
  "CREATE TABLE backup_disks (\n"
  "  backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE,\n"
  "  name TEXT NOT NULL,\n"
  "  virtual_size INTEGER NOT NULL CHECK (virtual_size >= 0),\n"
  "  stored_bytes INTEGER NOT NULL CHECK (stored_bytes >= 0),\n"
  "  sha256 TEXT,\n"
  "  format TEXT NOT NULL,\n"
  "  object TEXT NOT NULL,\n"
  "  UNIQUE (backup_id, name)\n"
  ");\n"
  "CREATE TABLE jobs (\n"
  "  id TEXT PRIMARY KEY NOT NULL,\n"
  "  kind TEXT NOT NULL CHECK (kind IN ('backup', 'restore', 'verify')),\n"
  "  status TEXT NOT NULL CHECK (status IN ('pending', 'running',\n"
  "    'completed', 'failed', 'cancelled')),\n"
  "  domain TEXT,\n"
  "  domain_uuid TEXT,\n"
  "  backup_id TEXT,\n"
  "  bytes_done INTEGER NOT NULL DEFAULT 0 CHECK (bytes_done >= 0),\n"
  "  bytes_total INTEGER NOT NULL DEFAULT 0 CHECK (bytes_total >= 0),\n"
  "  error TEXT,\n"
  "  created_at TEXT NOT NULL,\n"
  "  started_at TEXT,\n"
  "  finished_at TEXT,\n"
  "  owner_uid INTEGER NOT NULL\n"
  ");\n"
  "CREATE INDEX jobs_by_created ON jobs (created_at);\n"
  "CREATE INDEX jobs_by_status ON jobs (status);\n"
  "CREATE TABLE audit (\n"
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
  "  at TEXT NOT NULL,\n"
  "  uid INTEGER NOT NULL,\n"
  "  action TEXT NOT NULL,\n"
  "  object TEXT,\n"
  "  result TEXT NOT NULL,\n"
  "  detail TEXT\n"
  ");\n";

/* Incremental chains: the position of a backup in its chain (0 for the
 * full), the checkpoint XML to redefine it with after libvirt lost it,
 * and per disk the relative backing file name of an overlay image and
 * whether the backup's checkpoint carries a bitmap for the disk.  Disks
 * of older backups with a checkpoint had one.
 */
static const char migration_2[] =
  "ALTER TABLE backups ADD COLUMN chain_pos INTEGER NOT NULL DEFAULT 0\n"
  "  CHECK (chain_pos >= 0);\n"
  "ALTER TABLE backups ADD COLUMN checkpoint_xml TEXT;\n"
  "ALTER TABLE backup_disks ADD COLUMN backing TEXT;\n"
  "ALTER TABLE backup_disks ADD COLUMN bitmap INTEGER NOT NULL DEFAULT 0\n"
  "  CHECK (bitmap IN (0, 1));\n"
  "UPDATE backup_disks SET bitmap = 1 WHERE format = 'qcow2' AND backup_id\n"
  "  IN (SELECT id FROM backups WHERE checkpoint IS NOT NULL);\n"
  "CREATE INDEX chains_by_uuid ON chains (domain_uuid, created_at);\n";

/* Policies: schedules and retention per instance, the instances attached
 * to them (one policy per instance), the history of their runs, and who
 * made a backup (by hand or a policy) and whether it is protected from
 * retention.  Backups keep the name of their policy as text: deleting a
 * policy never deletes a backup.
 */
static const char migration_3[] =
  "CREATE TABLE policies (\n"
  "  name TEXT PRIMARY KEY NOT NULL,\n"
  "  owner_uid INTEGER NOT NULL,\n"
  "  status TEXT NOT NULL DEFAULT 'active'\n"
  "    CHECK (status IN ('active', 'paused', 'error')),\n"
  "  last_error TEXT,\n"
  "  schedule_kind TEXT NOT NULL CHECK (schedule_kind IN ('daily', 'weekly')),\n"
  "  schedule_day INTEGER NOT NULL DEFAULT -1\n"
  "    CHECK (schedule_day BETWEEN -1 AND 6),\n"
  "  schedule_hour INTEGER NOT NULL CHECK (schedule_hour BETWEEN 0 AND 23),\n"
  "  schedule_minute INTEGER NOT NULL\n"
  "    CHECK (schedule_minute BETWEEN 0 AND 59),\n"
  "  schedule_tz TEXT NOT NULL DEFAULT 'UTC',\n"
  "  schedule_window INTEGER NOT NULL DEFAULT 0\n"
  "    CHECK (schedule_window BETWEEN 0 AND 1440),\n"
  "  max_chain INTEGER NOT NULL DEFAULT 6 CHECK (max_chain BETWEEN 0 AND 1000),\n"
  "  retention INTEGER NOT NULL DEFAULT 3 CHECK (retention >= 1),\n"
  "  keep_rules TEXT,\n"
  "  max_age INTEGER NOT NULL DEFAULT 0 CHECK (max_age >= 0),\n"
  "  max_backups INTEGER NOT NULL DEFAULT 0 CHECK (max_backups >= 0),\n"
  "  device TEXT NOT NULL DEFAULT 'primary'\n"
  "    CHECK (device IN ('primary', 'all')),\n"
  "  target TEXT,\n"
  "  quiesce TEXT NOT NULL DEFAULT 'off'\n"
  "    CHECK (quiesce IN ('off', 'try', 'on')),\n"
  "  created_at TEXT NOT NULL\n"
  ");\n"
  "CREATE TABLE policy_instances (\n"
  "  domain_uuid TEXT PRIMARY KEY NOT NULL,\n"
  "  domain TEXT NOT NULL,\n"
  "  policy TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,\n"
  "  attached_at TEXT NOT NULL\n"
  ");\n"
  "CREATE INDEX policy_instances_by_policy ON policy_instances (policy);\n"
  "CREATE TABLE policy_runs (\n"
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
  "  policy TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,\n"
  "  domain_uuid TEXT NOT NULL,\n"
  "  domain TEXT,\n"
  "  scheduled_for TEXT NOT NULL,\n"
  "  started_at TEXT NOT NULL,\n"
  "  finished_at TEXT,\n"
  "  kind TEXT,\n"
  "  backup_id TEXT,\n"
  "  result TEXT NOT NULL\n"
  "    CHECK (result IN ('running', 'ok', 'failed', 'skipped')),\n"
  "  message TEXT\n"
  ");\n"
  "CREATE INDEX policy_runs_by_policy ON policy_runs (policy, domain_uuid);\n"
  "ALTER TABLE backups ADD COLUMN origin TEXT NOT NULL DEFAULT 'manual'\n"
  "  CHECK (origin IN ('manual', 'policy'));\n"
  "ALTER TABLE backups ADD COLUMN policy TEXT;\n"
  "ALTER TABLE backups ADD COLUMN protected INTEGER NOT NULL DEFAULT 0\n"
  "  CHECK (protected IN (0, 1));\n";

/* Offline points (backups of a shut-off domain, which make no libvirt
 * checkpoint) get a column of their own.  Before it the engine knew them
 * only by a sentence in their notes, which older rows still carry.
 */
static const char migration_4[] =
  "ALTER TABLE backups ADD COLUMN offline INTEGER NOT NULL DEFAULT 0\n"
  "  CHECK (offline IN (0, 1));\n"
  "UPDATE backups SET offline = 1\n"
  "  WHERE notes LIKE '%offline backup (domain shut off)%';\n";

/* The sha256 of each backup's stored domain XML, so a restore can tell
 * whether the copy on the target is the one the backup wrote (older
 * backups have none: NULL); and notes on a job, where a restore as a new
 * domain says what of the stored definition it left out.
 */
static const char migration_5[] =
  "ALTER TABLE backups ADD COLUMN domain_xml_sha256 TEXT;\n"
  "ALTER TABLE jobs ADD COLUMN notes TEXT;\n";

/* Recovery that survives a restart.  A backup whose cleanup could not be
 * finished (libvirt or the target unreachable) says what is left in
 * `cleanup`, NULL once nothing is; the daemon retries those.  The retry
 * state of a policy x instance (the slot that failed, how many times, when
 * the next try is due) is kept in policy_retries, so the back-off goes on
 * after a restart.
 */
static const char migration_6[] =
  "ALTER TABLE backups ADD COLUMN cleanup TEXT;\n"
  "CREATE INDEX backups_by_cleanup ON backups (domain_uuid)\n"
  "  WHERE cleanup IS NOT NULL;\n"
  "CREATE TABLE policy_retries (\n"
  "  policy TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,\n"
  "  domain_uuid TEXT NOT NULL,\n"
  "  slot TEXT NOT NULL,\n"
  "  failures INTEGER NOT NULL CHECK (failures >= 0),\n"
  "  retry_at TEXT,\n"
  "  PRIMARY KEY (policy, domain_uuid)\n"
  ");\n";

/* Pruning deletes audit rows, jobs and policy runs by age: indexes so
 * that it does not scan the tables (jobs have one on created_at).
 */
static const char migration_7[] =
  "CREATE INDEX audit_by_at ON audit (at);\n"
  "CREATE INDEX policy_runs_by_started ON policy_runs (started_at);\n";

/* The default target and scheduled verification.  An admin marks one
 * target the default (at most one row has is_default = 1; with none the
 * daemon config's default_target is the default).  A policy re-verifies
 * its completed backups every verify_every days (0: never).  A backup
 * records when it was last verified and the outcome (ok, corrupt, failed:
 * the verify could not read the target, cancelled), and `corrupt` keeps
 * why it was found damaged (NULL: not known to be; a later verify that
 * passes clears it).  docs/catalog.md and docs/scheduling.md.
 */
static const char migration_8[] =
  "ALTER TABLE targets ADD COLUMN is_default INTEGER NOT NULL DEFAULT 0\n"
  "  CHECK (is_default IN (0, 1));\n"
  "CREATE UNIQUE INDEX targets_one_default ON targets (is_default)\n"
  "  WHERE is_default = 1;\n"
  "ALTER TABLE policies ADD COLUMN verify_every INTEGER NOT NULL DEFAULT 0\n"
  "  CHECK (verify_every BETWEEN 0 AND 365);\n"
  "ALTER TABLE backups ADD COLUMN corrupt TEXT;\n"
  "ALTER TABLE backups ADD COLUMN verified_at TEXT;\n"
  "ALTER TABLE backups ADD COLUMN verify_result TEXT\n"
  "  CHECK (verify_result IN ('ok', 'corrupt', 'failed', 'cancelled'));\n"
  "CREATE INDEX backups_by_policy ON backups (policy)\n"
  "  WHERE policy IS NOT NULL;\n";

/* Block digests and the metadata length of a stored image: the sidecar
 * of per-block digests (its full object name and sha256, the block size)
 * and how many bytes at the front of the image hold all its qcow2
 * metadata.  Older backups have none: NULL, 0.
 */
static const char migration_9[] =
  "ALTER TABLE backup_disks ADD COLUMN blocks_object TEXT;\n"
  "ALTER TABLE backup_disks ADD COLUMN blocks_sha256 TEXT;\n"
  "ALTER TABLE backup_disks ADD COLUMN block_size INTEGER NOT NULL DEFAULT 0\n"
  "  CHECK (block_size >= 0);\n"
  "ALTER TABLE backup_disks ADD COLUMN metadata_bytes INTEGER NOT NULL\n"
  "  DEFAULT 0 CHECK (metadata_bytes >= 0);\n";

const struct vv_migration vv_catalog_migrations[] = {
  { 1, "targets, instances, chains, backups, disks, jobs, audit",
    migration_1 },
  { 2, "incremental chains: chain position, checkpoint XML, backing files",
    migration_2 },
  { 3, "policies, attached instances, policy runs; backup origin and "
    "protection", migration_3 },
  { 4, "offline backups", migration_4 },
  { 5, "sha256 of the stored domain XML; job notes", migration_5 },
  { 6, "pending cleanups of backups; policy retry times", migration_6 },
  { 7, "indexes for pruning old audit rows and policy runs", migration_7 },
  { 8, "default target; scheduled verify and corrupt backups", migration_8 },
  { 9, "block digests and metadata length of stored images", migration_9 },
};
const size_t vv_catalog_n_migrations =
  sizeof vv_catalog_migrations / sizeof vv_catalog_migrations[0];

static int
count_rows (struct vv_catalog *c, const char *what, const char *sql,
            int *ret)
{
  _cleanup_stmt_ sqlite3_stmt *s = NULL;

  if (vv_cat_prepare (c, what, sql, &s) == -1)
    return -1;
  if (sqlite3_step (s) != SQLITE_ROW)
    return vv_cat_error (c, "%s", what);
  *ret = sqlite3_column_int (s, 0);
  return 0;
}

int
vv_catalog_read_version (struct vv_catalog *c, int *ret)
{
  int n;

  if (count_rows (c, "reading the schema version",
                  "SELECT count(*) FROM sqlite_master"
                  " WHERE type = 'table' AND name = 'schema_version'",
                  &n) == -1)
    return -1;
  if (n == 0) {
    /* Without our version table the file must be empty: never build our
     * schema into somebody else's database.
     */
    if (count_rows (c, "reading the schema version",
                    "SELECT count(*) FROM sqlite_master"
                    " WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                    &n) == -1)
      return -1;
    if (n > 0) {
      vv_error ("catalog %s is an SQLite database but not a virtvault "
                "catalog (it has no schema_version table); give the daemon "
                "another state directory", c->path);
      return -1;
    }
    *ret = 0;
    return 0;
  }
  return count_rows (c, "reading the schema version",
                     "SELECT coalesce(max(version), 0) FROM schema_version",
                     ret);
}

static int
apply (struct vv_catalog *c, const struct vv_migration *m)
{
  _cleanup_txn_ struct vv_cat_txn txn = { 0 };
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  char now[VV_TIME_MAX];
  int current;

  if (vv_cat_begin (c, &txn) == -1)
    return -1;
  /* Another process may have migrated while we waited for the lock. */
  if (vv_catalog_read_version (c, &current) == -1)
    return -1;
  if (current >= m->version)
    return 0;

  if (sqlite3_exec (c->db, m->sql, NULL, NULL, NULL) != SQLITE_OK)
    return vv_cat_error (c, "migrating the schema to version %d",
                         m->version);
  vv_now_utc (now);
  if (vv_cat_prepare (c, "recording the schema version",
                      "INSERT INTO schema_version"
                      " (version, applied_at, description)"
                      " VALUES (?1, ?2, ?3)", &s) == -1)
    return -1;
  if (vv_cat_bind_int64 (s, 1, m->version)
      || vv_cat_bind_text (s, 2, now)
      || vv_cat_bind_text (s, 3, m->description))
    return vv_cat_bind_error (c, "recording the schema version");
  if (vv_cat_step_done (c, s, "recording the schema version") == -1)
    return -1;
  return vv_cat_commit (&txn);
}

int
vv_catalog_migrate (struct vv_catalog *c)
{
  int latest = vv_catalog_latest_schema_version ();
  int current;
  size_t i;

  VV_LOCK_GUARD (&c->lock);
  if (vv_catalog_read_version (c, &current) == -1)
    return -1;
  if (current > latest) {
    vv_error ("catalog %s has schema version %d; this virtvault knows up "
              "to %d: upgrade virtvault", c->path, current, latest);
    return -1;
  }
  for (i = 0; i < vv_catalog_n_migrations; i++) {
    const struct vv_migration *m = &vv_catalog_migrations[i];
    if (m->version > current && apply (c, m) == -1)
      return -1;
  }
  return 0;
}
