/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Catalog: schema creation and migration, every call's round trip, error
 * codes, and a concurrency smoke test on one shared connection.
 */
#include <config.h>

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "catalog/catalog-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n  last error: %s\n",  \
               __FILE__, __LINE__, #cond, vv_get_error ());             \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

/* The call failed with this code and a message containing fragment. */
#define CHECK_ERR(failed, code, fragment)                               \
  do {                                                                  \
    CHECK (failed);                                                     \
    if (vv_get_error_code () != (code)                                  \
        || strstr (vv_get_error (), (fragment)) == NULL) {              \
      fprintf (stderr, "%s:%d: expected %s error containing \"%s\"\n"   \
               "  got %s: %s\n", __FILE__, __LINE__,                    \
               vv_error_code_name (code), (fragment),                   \
               vv_error_code_name (vv_get_error_code ()),               \
               vv_get_error ());                                        \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

#define STREQ(a, b) ((a) && (b) && strcmp ((a), (b)) == 0)

#define UUID1 "0b3e2f4c-9d1a-4c47-8f3e-6a1b2c3d4e5f"
#define XML_SHA "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
#define UUID2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"

static char tmpdir[] = "/tmp/test-catalog.XXXXXX";

static char *
path_in_tmp (const char *name)
{
  char *p = vv_printf ("%s/%s", tmpdir, name);
  CHECK (p);
  return p;
}

/* Runs SQL on the file with a connection of our own, behind the
 * catalog's back.
 */
static void
raw_exec (const char *path, const char *sql)
{
  sqlite3 *db;

  CHECK (sqlite3_open (path, &db) == SQLITE_OK);
  if (sqlite3_exec (db, sql, NULL, NULL, NULL) != SQLITE_OK) {
    fprintf (stderr, "raw SQL failed: %s\n", sqlite3_errmsg (db));
    exit (EXIT_FAILURE);
  }
  sqlite3_close (db);
}

static int64_t
raw_count (const char *path, const char *sql)
{
  sqlite3 *db;
  sqlite3_stmt *s;
  int64_t n;

  CHECK (sqlite3_open (path, &db) == SQLITE_OK);
  CHECK (sqlite3_prepare_v2 (db, sql, -1, &s, NULL) == SQLITE_OK);
  CHECK (sqlite3_step (s) == SQLITE_ROW);
  n = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  sqlite3_close (db);
  return n;
}

static const char *
raw_text (const char *path, const char *sql, char *buf, size_t len)
{
  sqlite3 *db;
  sqlite3_stmt *s;

  CHECK (sqlite3_open (path, &db) == SQLITE_OK);
  CHECK (sqlite3_prepare_v2 (db, sql, -1, &s, NULL) == SQLITE_OK);
  CHECK (sqlite3_step (s) == SQLITE_ROW);
  snprintf (buf, len, "%s", (const char *) sqlite3_column_text (s, 0));
  sqlite3_finalize (s);
  sqlite3_close (db);
  return buf;
}

static void
add_target (struct vv_catalog *c, const char *name)
{
  struct vv_target_rec t = { .name = (char *) name,
                             .url = (char *) "file:///srv/backup" };
  CHECK (vv_catalog_target_add (c, &t) == 0);
}

/* ---- schema ---- */

static void
test_fresh_and_reopen (void)
{
  _cleanup_free_ char *path = path_in_tmp ("fresh.db");
  struct vv_catalog *c;
  struct vv_target_rec *t;
  struct stat st;
  char buf[64];

  c = vv_catalog_open (path);
  CHECK (c);
  CHECK (vv_catalog_latest_schema_version () >= 1);
  CHECK (vv_catalog_schema_version (c) == vv_catalog_latest_schema_version ());
  add_target (c, "local");
  vv_catalog_close (c);

  /* Private file, WAL journal (a property of the file), history row. */
  CHECK (stat (path, &st) == 0);
  CHECK ((st.st_mode & 0777) == 0600);
  CHECK (STREQ (raw_text (path, "PRAGMA journal_mode", buf, sizeof buf),
                "wal"));
  CHECK (raw_count (path, "SELECT count(*) FROM schema_version")
         == (int) vv_catalog_n_migrations);
  CHECK (raw_count (path, "SELECT max(version) FROM schema_version")
         == vv_catalog_latest_schema_version ());

  /* Opening again changes nothing. */
  c = vv_catalog_open (path);
  CHECK (c);
  CHECK (vv_catalog_schema_version (c) == vv_catalog_latest_schema_version ());
  t = vv_catalog_target_get (c, "local");
  CHECK (t && STREQ (t->url, "file:///srv/backup"));
  vv_target_rec_free (t);
  vv_catalog_close (c);
  CHECK (raw_count (path, "SELECT count(*) FROM schema_version")
         == (int) vv_catalog_n_migrations);
  CHECK (raw_count (path, "SELECT max(version) FROM schema_version")
         == vv_catalog_latest_schema_version ());
}

static void
test_future_version (void)
{
  _cleanup_free_ char *path = path_in_tmp ("future.db");
  _cleanup_free_ char *expect = NULL, *future = NULL;
  int next = vv_catalog_latest_schema_version () + 1;
  struct vv_catalog *c;

  c = vv_catalog_open (path);
  CHECK (c);
  vv_catalog_close (c);
  future = vv_printf ("INSERT INTO schema_version VALUES"
                      " (%d, '2030-01-01T00:00:00Z', 'from the future')",
                      next);
  CHECK (future);
  raw_exec (path, future);

  expect = vv_printf ("catalog %s has schema version %d; this virtvault "
                      "knows up to %d: upgrade virtvault", path, next,
                      vv_catalog_latest_schema_version ());
  CHECK (expect);
  c = vv_catalog_open (path);
  CHECK (c == NULL);
  CHECK (STREQ (vv_get_error (), expect));
}

/* Files that hold no schema yet: version 0, migrated on open. */
static void
test_migrate_from_version_0 (void)
{
  _cleanup_free_ char *empty = path_in_tmp ("empty.db");
  _cleanup_free_ char *blank = path_in_tmp ("blank.db");
  _cleanup_free_ char *other = path_in_tmp ("other.db");
  _cleanup_free_ char *junk = path_in_tmp ("junk.db");
  struct vv_catalog *c;
  int fd;

  /* A zero-byte file. */
  fd = open (empty, O_WRONLY | O_CREAT | O_EXCL, 0600);
  CHECK (fd >= 0);
  close (fd);
  c = vv_catalog_open (empty);
  CHECK (c);
  CHECK (vv_catalog_schema_version (c) == vv_catalog_latest_schema_version ());
  vv_catalog_close (c);

  /* A valid SQLite database without any table (version 0). */
  raw_exec (blank, "PRAGMA user_version = 0; CREATE TABLE t (x);"
            " DROP TABLE t;");
  CHECK (raw_count (blank, "SELECT count(*) FROM sqlite_master") == 0);
  c = vv_catalog_open (blank);
  CHECK (c);
  CHECK (vv_catalog_schema_version (c) == vv_catalog_latest_schema_version ());
  add_target (c, "local");
  vv_catalog_close (c);
  CHECK (raw_count (blank, "SELECT count(*) FROM targets") == 1);

  /* Somebody else's database is left alone. */
  raw_exec (other, "CREATE TABLE accounts (id INTEGER);");
  CHECK_ERR (vv_catalog_open (other) == NULL, VV_ERR_FAILED,
             "is an SQLite database but not a virtvault catalog");
  CHECK (raw_count (other, "SELECT count(*) FROM sqlite_master") == 1);

  /* Not a database at all. */
  fd = open (junk, O_WRONLY | O_CREAT | O_EXCL, 0600);
  CHECK (fd >= 0);
  {
    char page[4096];
    memset (page, 'x', sizeof page);
    CHECK (write (fd, page, sizeof page) == (ssize_t) sizeof page);
  }
  close (fd);
  CHECK_ERR (vv_catalog_open (junk) == NULL, VV_ERR_FAILED, junk);
  CHECK (strstr (vv_get_error (), "not a database"));

  /* A directory that does not exist. */
  CHECK (vv_catalog_open ("/nonexistent/dir/catalog.db") == NULL);
  CHECK (strstr (vv_get_error (), "/nonexistent/dir/catalog.db"));
}

/* ---- targets ---- */

static void
test_targets (struct vv_catalog *c)
{
  struct vv_target_rec nas = { .name = (char *) "nas",
                               .url = (char *) "file:///mnt/nas",
                               .params = (char *) "[\"k=v\"]",
                               .price_per_gb_month = 0.02 };
  struct vv_target_rec bad = nas;
  struct vv_target_rec **v;
  struct vv_target_rec *t;
  size_t n;

  add_target (c, "local");
  CHECK (vv_catalog_target_add (c, &nas) == 0);
  CHECK_ERR (vv_catalog_target_add (c, &nas) == -1, VV_ERR_BUSY,
             "target 'nas' already exists");
  bad.name = (char *) "cheap";
  bad.price_per_gb_month = -1;
  CHECK_ERR (vv_catalog_target_add (c, &bad) == -1, VV_ERR_INVALID,
             "price");

  t = vv_catalog_target_get (c, "nas");
  CHECK (t);
  CHECK (STREQ (t->name, "nas") && STREQ (t->url, "file:///mnt/nas")
         && STREQ (t->params, "[\"k=v\"]") && t->price_per_gb_month == 0.02);
  CHECK (t->created_at && strlen (t->created_at) == 20);
  vv_target_rec_free (t);
  CHECK_ERR (vv_catalog_target_get (c, "nope") == NULL, VV_ERR_NOT_FOUND,
             "no target named 'nope'");

  CHECK (vv_catalog_target_list (c, &v, &n) == 0);
  CHECK (n == 2 && STREQ (v[0]->name, "local") && STREQ (v[1]->name, "nas"));
  CHECK (v[0]->params == NULL && v[0]->price_per_gb_month == 0);
  for (size_t i = 0; i < n; i++)
    vv_target_rec_free (v[i]);
  free (v);

  CHECK (vv_catalog_target_remove (c, "nas") == 0);
  CHECK_ERR (vv_catalog_target_remove (c, "nas") == -1, VV_ERR_NOT_FOUND,
             "no target named 'nas'");
  vv_target_rec_free (NULL);
}

/* ---- instances ---- */

static void
test_instances (struct vv_catalog *c)
{
  struct vv_instance_rec *i;

  CHECK (vv_catalog_instance_upsert (c, UUID1, "web01", 1000) == 0);
  i = vv_catalog_instance_get (c, UUID1);
  CHECK (i && STREQ (i->uuid, UUID1) && STREQ (i->name, "web01")
         && i->owner_uid == 1000 && i->created_at);
  vv_instance_rec_free (i);

  /* Renamed: the name follows, the owner stays. */
  CHECK (vv_catalog_instance_upsert (c, UUID1, "web01-new", 0) == 0);
  i = vv_catalog_instance_get (c, UUID1);
  CHECK (i && STREQ (i->name, "web01-new") && i->owner_uid == 1000);
  vv_instance_rec_free (i);

  CHECK_ERR (vv_catalog_instance_get (c, UUID2) == NULL, VV_ERR_NOT_FOUND,
             UUID2);
  vv_instance_rec_free (NULL);
}

/* ---- backups ---- */

static struct vv_backup_rec
backup (const char *id, const char *uuid, const char *chain,
        const char *parent, const char *created_at, int64_t owner)
{
  struct vv_backup_rec b = {
    .id = (char *) id,
    .domain = (char *) (STREQ (uuid, UUID1) ? "web01" : "db01"),
    .domain_uuid = (char *) uuid,
    .type = (char *) (parent ? "incremental" : "full"),
    .chain_id = (char *) chain,
    .parent_id = (char *) parent,
    .created_at = (char *) created_at,
    .target = (char *) "local",
    .reason = (char *) (parent ? "chain continues" : "no chain yet"),
    .prefix = (char *) "x/",
    .job_id = (char *) "job-000000000001",
    .owner_uid = owner,
  };
  return b;
}

static void
free_list (struct vv_backup_rec **v, size_t n)
{
  vv_backup_recs_free (v, n);
}

static void
test_backups (struct vv_catalog *c, const char *path)
{
  struct vv_disk_rec disks[2] = {
    { .name = (char *) "vda", .virtual_size = 1 << 30,
      .stored_bytes = 12345, .format = (char *) "qcow2",
      .sha256 = (char *) "e3b0c44298fc1c149afbf4c8996fb924"
        "27ae41e4649b934ca495991b7852b855",
      .object = (char *) "x/vda.qcow2",
      .blocks_object = (char *) "x/vda.blocks",
      .blocks_sha256 = (char *) "5891b5b522d5df086d0ff0b110fbd9d2"
        "1bb4fc7163af34d08286a2e846f6be03",
      .block_size = 262144, .metadata_bytes = 327680 },
    { .name = (char *) "vdb", .virtual_size = 1 << 20,
      .stored_bytes = 0, .format = (char *) "qcow2",
      .sha256 = (char *) "00000000000000000000000000000000"
        "00000000000000000000000000000000",
      .object = (char *) "x/vdb.qcow2" },
  };
  struct vv_backup_rec full = backup ("bk-000000000001", UUID1,
                                      "ch-00000000000a", NULL,
                                      "2026-01-01T00:00:00Z", 0);
  struct vv_backup_rec inc = backup ("bk-000000000002", UUID1,
                                     "ch-00000000000a", "bk-000000000001",
                                     "2026-01-02T00:00:00Z", 0);
  struct vv_backup_rec other = backup ("bk-000000000003", UUID2,
                                       "ch-00000000000b", NULL,
                                       "2026-01-02T00:00:00Z", 1000);
  struct vv_backup_rec bad;
  struct vv_backup_rec *b, **v;
  size_t n;

  /* Insert: a pending full with no disks yet makes its chain. */
  CHECK (vv_catalog_backup_insert (c, &full) == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM chains") == 1);
  b = vv_catalog_backup_get (c, full.id, VV_OWNER_ANY);
  CHECK (b);
  CHECK (STREQ (b->id, full.id) && STREQ (b->domain, "web01")
         && STREQ (b->domain_uuid, UUID1) && STREQ (b->type, "full")
         && STREQ (b->status, "pending") && STREQ (b->chain_id, full.chain_id)
         && b->parent_id == NULL && STREQ (b->created_at, full.created_at)
         && b->completed_at == NULL && b->size_bytes == 0
         && STREQ (b->target, "local") && STREQ (b->reason, "no chain yet")
         && b->notes == NULL && b->error == NULL && b->checkpoint == NULL
         && STREQ (b->prefix, "x/") && STREQ (b->job_id, full.job_id)
         && b->owner_uid == 0 && b->n_disks == 0);
  vv_backup_rec_free (b);

  /* Duplicates, bad values and unknown references. */
  CHECK_ERR (vv_catalog_backup_insert (c, &full) == -1, VV_ERR_BUSY,
             "backup 'bk-000000000001' already exists");
  bad = backup ("bk-0000000000ff", UUID1, "ch-0000000000ff", NULL,
                NULL, 0);
  bad.target = (char *) "nowhere";
  CHECK_ERR (vv_catalog_backup_insert (c, &bad) == -1, VV_ERR_NOT_FOUND,
             "no target named 'nowhere'");
  bad.target = (char *) "local";
  bad.type = (char *) "differential";
  CHECK_ERR (vv_catalog_backup_insert (c, &bad) == -1, VV_ERR_INVALID,
             "differential");
  bad.type = (char *) "full";
  bad.status = (char *) "done";
  CHECK_ERR (vv_catalog_backup_insert (c, &bad) == -1, VV_ERR_INVALID,
             "status 'done'");
  bad.status = NULL;
  bad.type = (char *) "incremental";
  CHECK_ERR (vv_catalog_backup_insert (c, &bad) == -1, VV_ERR_INVALID,
             "parent");
  bad.parent_id = (char *) "bk-000000000001";
  CHECK_ERR (vv_catalog_backup_insert (c, &bad) == -1, VV_ERR_INVALID,
             "belongs to chain 'ch-00000000000a'");
  bad = backup ("bk-0000000000fe", UUID2, "ch-00000000000a", NULL, NULL, 0);
  CHECK_ERR (vv_catalog_backup_insert (c, &bad) == -1, VV_ERR_INVALID,
             "chain 'ch-00000000000a' belongs to domain " UUID1);
  bad.domain_uuid = NULL;
  CHECK_ERR (vv_catalog_backup_insert (c, &bad) == -1, VV_ERR_INVALID,
             "domain_uuid");
  /* Nothing of the refused inserts stayed behind. */
  CHECK (raw_count (path, "SELECT count(*) FROM backups") == 1);
  CHECK (raw_count (path, "SELECT count(*) FROM chains") == 1);

  /* Status transitions. */
  CHECK (vv_catalog_backup_set_status (c, full.id, "running", NULL) == 0);
  b = vv_catalog_backup_get (c, full.id, 0);
  CHECK (b && STREQ (b->status, "running") && b->completed_at == NULL);
  vv_backup_rec_free (b);
  CHECK_ERR (vv_catalog_backup_set_status (c, full.id, "finished", NULL)
             == -1, VV_ERR_INVALID, "status 'finished'");
  CHECK (vv_catalog_backup_set_checkpoint (c, full.id, "virtvault-bk-1") == 0);
  CHECK (vv_catalog_backup_add_disk (c, full.id, &disks[0]) == 0);
  CHECK (vv_catalog_backup_add_disk (c, full.id, &disks[1]) == 0);
  CHECK_ERR (vv_catalog_backup_add_disk (c, full.id, &disks[1]) == -1,
             VV_ERR_BUSY, "already has a disk 'vdb'");
  {
    /* Block digests come whole or not at all. */
    struct vv_disk_rec half = disks[0];

    half.name = (char *) "vdc";
    half.blocks_sha256 = NULL;
    CHECK_ERR (vv_catalog_backup_add_disk (c, full.id, &half) == -1,
               VV_ERR_INVALID, "or none of them");
    half.blocks_sha256 = disks[0].blocks_sha256;
    half.block_size = 0;
    CHECK_ERR (vv_catalog_backup_add_disk (c, full.id, &half) == -1,
               VV_ERR_INVALID, "or none of them");
    half.block_size = 262144;
    half.blocks_object = NULL;
    CHECK_ERR (vv_catalog_backup_add_disk (c, full.id, &half) == -1,
               VV_ERR_INVALID, "or none of them");
  }
  b = vv_catalog_backup_get (c, full.id, VV_OWNER_ANY);
  CHECK (b && b->domain_xml_sha256 == NULL);
  vv_backup_rec_free (b);
  CHECK (vv_catalog_backup_set_domain_xml_sha256 (c, full.id, XML_SHA) == 0);
  CHECK_ERR (vv_catalog_backup_set_domain_xml_sha256 (c, "bk-00000000dead",
                                                      XML_SHA) == -1,
             VV_ERR_NOT_FOUND, "no backup with id 'bk-00000000dead'");
  CHECK (vv_catalog_backup_complete (c, full.id, 12345) == 0);
  b = vv_catalog_backup_get (c, full.id, VV_OWNER_ANY);
  CHECK (b && STREQ (b->domain_xml_sha256, XML_SHA));
  CHECK (b && STREQ (b->status, "completed") && b->completed_at
         && b->size_bytes == 12345 && STREQ (b->checkpoint, "virtvault-bk-1")
         && b->error == NULL && b->n_disks == 2);
  CHECK (STREQ (b->disks[0].name, "vda") && STREQ (b->disks[1].name, "vdb"));
  CHECK (b->disks[0].virtual_size == 1 << 30
         && b->disks[0].stored_bytes == 12345
         && STREQ (b->disks[0].sha256, disks[0].sha256)
         && STREQ (b->disks[0].format, "qcow2")
         && STREQ (b->disks[0].object, "x/vda.qcow2"));
  /* The block digests and metadata length round trip; a disk without
   * them reads as none.
   */
  CHECK (STREQ (b->disks[0].blocks_object, "x/vda.blocks")
         && STREQ (b->disks[0].blocks_sha256, disks[0].blocks_sha256)
         && b->disks[0].block_size == 262144
         && b->disks[0].metadata_bytes == 327680);
  CHECK (b->disks[1].blocks_object == NULL
         && b->disks[1].blocks_sha256 == NULL
         && b->disks[1].block_size == 0 && b->disks[1].metadata_bytes == 0);
  vv_backup_rec_free (b);

  /* An incremental on it, and a backup of another domain and owner. */
  inc.disks = disks;
  inc.n_disks = 1;
  inc.notes = (char *) "skipped hdc: cdrom";
  CHECK (vv_catalog_backup_insert (c, &inc) == 0);
  CHECK (vv_catalog_backup_insert (c, &other) == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM chains") == 2);
  CHECK (vv_catalog_backup_count_children (c, full.id) == 1);
  CHECK (vv_catalog_backup_count_children (c, inc.id) == 0);
  b = vv_catalog_backup_get (c, inc.id, VV_OWNER_ANY);
  CHECK (b && STREQ (b->parent_id, full.id) && b->n_disks == 1
         && STREQ (b->notes, "skipped hdc: cdrom"));
  vv_backup_rec_free (b);

  /* Owner filter. */
  CHECK_ERR (vv_catalog_backup_get (c, inc.id, 1000) == NULL,
             VV_ERR_NOT_FOUND, "no backup with id 'bk-000000000002'");
  b = vv_catalog_backup_get (c, other.id, 1000);
  CHECK (b && b->owner_uid == 1000);
  vv_backup_rec_free (b);

  /* Lists: newest first, ties broken by insertion order. */
  CHECK (vv_catalog_backup_list (c, NULL, VV_OWNER_ANY, &v, &n) == 0);
  CHECK (n == 3 && STREQ (v[0]->id, other.id) && STREQ (v[1]->id, inc.id)
         && STREQ (v[2]->id, full.id) && v[2]->n_disks == 2);
  free_list (v, n);
  CHECK (vv_catalog_backup_list (c, "web01", VV_OWNER_ANY, &v, &n) == 0);
  CHECK (n == 2 && STREQ (v[0]->id, inc.id) && STREQ (v[1]->id, full.id));
  free_list (v, n);
  CHECK (vv_catalog_backup_list (c, UUID2, VV_OWNER_ANY, &v, &n) == 0);
  CHECK (n == 1 && STREQ (v[0]->id, other.id));
  free_list (v, n);
  CHECK (vv_catalog_backup_list (c, NULL, 1000, &v, &n) == 0);
  CHECK (n == 1 && STREQ (v[0]->id, other.id));
  free_list (v, n);
  CHECK (vv_catalog_backup_list (c, "nosuch", VV_OWNER_ANY, &v, &n) == 0);
  CHECK (n == 0);
  free_list (v, n);

  CHECK (vv_catalog_backup_list_unfinished (c, &v, &n) == 0);
  CHECK (n == 2 && STREQ (v[0]->id, other.id) && STREQ (v[1]->id, inc.id));
  free_list (v, n);

  /* Checkpoints, oldest first, completed only. */
  CHECK (vv_catalog_backup_set_checkpoint (c, inc.id, "virtvault-bk-2") == 0);
  CHECK (vv_catalog_backup_list_with_checkpoint (c, UUID1, &v, &n) == 0);
  CHECK (n == 1 && STREQ (v[0]->id, full.id));
  free_list (v, n);
  CHECK (vv_catalog_backup_complete (c, inc.id, 10) == 0);
  CHECK (vv_catalog_backup_list_with_checkpoint (c, UUID1, &v, &n) == 0);
  CHECK (n == 2 && STREQ (v[0]->id, full.id) && STREQ (v[1]->id, inc.id));
  free_list (v, n);
  CHECK (vv_catalog_backup_set_checkpoint (c, full.id, NULL) == 0);
  CHECK (vv_catalog_backup_list_with_checkpoint (c, UUID1, &v, &n) == 0);
  CHECK (n == 1 && STREQ (v[0]->id, inc.id));
  free_list (v, n);

  /* A failure keeps its reason and finishes the record. */
  CHECK (vv_catalog_backup_set_status (c, other.id, "failed",
                                       "target full") == 0);
  b = vv_catalog_backup_get (c, other.id, VV_OWNER_ANY);
  CHECK (b && STREQ (b->status, "failed") && STREQ (b->error, "target full")
         && b->completed_at);
  vv_backup_rec_free (b);
  CHECK (vv_catalog_backup_list_unfinished (c, &v, &n) == 0);
  CHECK (n == 0);
  free_list (v, n);

  /* A target is kept while backups that hold data use it (the failed
   * one does not count).
   */
  CHECK_ERR (vv_catalog_target_remove (c, "local") == -1, VV_ERR_BUSY,
             "target 'local' still holds 2 backups; delete them first");

  /* Not found, for every call taking an id. */
  CHECK_ERR (vv_catalog_backup_get (c, "bk-00000000dead", VV_OWNER_ANY)
             == NULL, VV_ERR_NOT_FOUND, "no backup with id 'bk-00000000dead'");
  CHECK_ERR (vv_catalog_backup_set_status (c, "bk-00000000dead", "failed",
                                           NULL) == -1,
             VV_ERR_NOT_FOUND, "bk-00000000dead");
  CHECK_ERR (vv_catalog_backup_set_checkpoint (c, "bk-00000000dead", "x")
             == -1, VV_ERR_NOT_FOUND, "bk-00000000dead");
  CHECK_ERR (vv_catalog_backup_add_disk (c, "bk-00000000dead", &disks[0])
             == -1, VV_ERR_NOT_FOUND, "bk-00000000dead");
  CHECK_ERR (vv_catalog_backup_complete (c, "bk-00000000dead", 1) == -1,
             VV_ERR_NOT_FOUND, "bk-00000000dead");
  CHECK_ERR (vv_catalog_backup_delete (c, "bk-00000000dead") == -1,
             VV_ERR_NOT_FOUND, "no backup with id 'bk-00000000dead'");
  CHECK (vv_catalog_backup_count_children (c, "bk-00000000dead") == 0);

  /* Delete: never under an incremental; disks cascade; chains end. */
  CHECK_ERR (vv_catalog_backup_delete (c, full.id) == -1, VV_ERR_BUSY,
             "backup 'bk-000000000001' is the parent of 1 backup; delete "
             "them first");
  CHECK (raw_count (path, "SELECT count(*) FROM backup_disks") == 3);
  CHECK (vv_catalog_backup_delete (c, inc.id) == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM backup_disks") == 2);
  CHECK (raw_count (path, "SELECT count(*) FROM chains") == 2);
  CHECK (vv_catalog_backup_delete (c, full.id) == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM backup_disks") == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM chains") == 1);
  /* Only the failed attempt is left: it goes with its target. */
  CHECK (raw_count (path, "SELECT count(*) FROM backups") == 1);
  CHECK (vv_catalog_target_remove (c, "local") == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM backups") == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM chains") == 0);

  vv_backup_rec_free (NULL);
  vv_backup_recs_free (NULL, 0);
}

/* ---- jobs ---- */

static void
test_jobs (struct vv_catalog *c)
{
  struct vv_job_rec j = {
    .id = (char *) "job-000000000001", .kind = (char *) "backup",
    .domain = (char *) "web01", .domain_uuid = (char *) UUID1,
    .backup_id = (char *) "bk-000000000001",
    .created_at = (char *) "2026-01-01T00:00:00Z", .owner_uid = 1000,
  };
  struct vv_job_rec j2 = {
    .id = (char *) "job-000000000002", .kind = (char *) "verify",
    .created_at = (char *) "2026-01-02T00:00:00Z",
  };
  struct vv_job_rec bad = j2;
  struct vv_job_rec *r, **v;
  size_t n;

  CHECK (vv_catalog_job_insert (c, &j) == 0);
  CHECK (vv_catalog_job_insert (c, &j2) == 0);
  CHECK_ERR (vv_catalog_job_insert (c, &j) == -1, VV_ERR_BUSY,
             "job 'job-000000000001' already exists");
  bad.id = (char *) "job-000000000003";
  bad.kind = (char *) "defrag";
  CHECK_ERR (vv_catalog_job_insert (c, &bad) == -1, VV_ERR_INVALID,
             "job kind 'defrag'");

  r = vv_catalog_job_get (c, j.id, VV_OWNER_ANY);
  CHECK (r && STREQ (r->id, j.id) && STREQ (r->kind, "backup")
         && STREQ (r->status, "pending") && STREQ (r->domain, "web01")
         && STREQ (r->domain_uuid, UUID1) && STREQ (r->backup_id, j.backup_id)
         && r->bytes_done == 0 && r->bytes_total == 0 && r->error == NULL
         && STREQ (r->created_at, j.created_at) && r->started_at == NULL
         && r->finished_at == NULL && r->owner_uid == 1000);
  vv_job_rec_free (r);

  CHECK (vv_catalog_job_set_status (c, j.id, "running", NULL) == 0);
  CHECK (vv_catalog_job_set_progress (c, j.id, 512, 4096) == 0);
  r = vv_catalog_job_get (c, j.id, 1000);
  CHECK (r && STREQ (r->status, "running") && r->started_at
         && r->finished_at == NULL && r->bytes_done == 512
         && r->bytes_total == 4096);
  vv_job_rec_free (r);

  CHECK (vv_catalog_job_list_unfinished (c, &v, &n) == 0);
  CHECK (n == 2 && STREQ (v[0]->id, j2.id));
  vv_job_recs_free (v, n);

  CHECK (vv_catalog_job_set_status (c, j.id, "cancelled",
                                    "cancelled by uid 0") == 0);
  r = vv_catalog_job_get (c, j.id, VV_OWNER_ANY);
  CHECK (r && STREQ (r->status, "cancelled") && r->finished_at
         && r->started_at && STREQ (r->error, "cancelled by uid 0"));
  vv_job_rec_free (r);
  /* Cancelled before it ran: it never started. */
  CHECK (vv_catalog_job_set_status (c, j2.id, "cancelled", NULL) == 0);
  r = vv_catalog_job_get (c, j2.id, VV_OWNER_ANY);
  CHECK (r && r->started_at == NULL && r->finished_at);
  vv_job_rec_free (r);
  CHECK (vv_catalog_job_list_unfinished (c, &v, &n) == 0);
  CHECK (n == 0);
  vv_job_recs_free (v, n);

  CHECK (vv_catalog_job_list (c, VV_OWNER_ANY, 0, &v, &n) == 0);
  CHECK (n == 2 && STREQ (v[0]->id, j2.id) && STREQ (v[1]->id, j.id));
  vv_job_recs_free (v, n);
  CHECK (vv_catalog_job_list (c, VV_OWNER_ANY, 1, &v, &n) == 0);
  CHECK (n == 1 && STREQ (v[0]->id, j2.id));
  vv_job_recs_free (v, n);
  CHECK (vv_catalog_job_list (c, 1000, 0, &v, &n) == 0);
  CHECK (n == 1 && STREQ (v[0]->id, j.id));
  vv_job_recs_free (v, n);

  CHECK_ERR (vv_catalog_job_get (c, j.id, 0) == NULL, VV_ERR_NOT_FOUND,
             "no job with id 'job-000000000001'");
  CHECK_ERR (vv_catalog_job_set_status (c, "job-00000000dead", "failed",
                                        NULL) == -1,
             VV_ERR_NOT_FOUND, "no job with id 'job-00000000dead'");
  CHECK_ERR (vv_catalog_job_set_progress (c, "job-00000000dead", 1, 2) == -1,
             VV_ERR_NOT_FOUND, "no job with id 'job-00000000dead'");
  CHECK_ERR (vv_catalog_job_set_status (c, j.id, "paused", NULL) == -1,
             VV_ERR_INVALID, "status 'paused'");
  vv_job_rec_free (NULL);
  vv_job_recs_free (NULL, 0);
}

/* ---- audit ---- */

static void
test_audit (struct vv_catalog *c)
{
  struct vv_audit_rec **v;
  size_t n;

  CHECK (vv_catalog_audit (c, 0, "target.add", "nas", "ok", NULL) == 0);
  CHECK (vv_catalog_audit (c, 1000, "backup.create", "web01", "forbidden",
                           "not the owner") == 0);
  CHECK_ERR (vv_catalog_audit (c, 0, NULL, NULL, "ok", NULL) == -1,
             VV_ERR_INVALID, "action");
  CHECK (vv_catalog_audit_list (c, 0, &v, &n) == 0);
  CHECK (n == 2);
  CHECK (STREQ (v[0]->action, "backup.create") && v[0]->uid == 1000
         && STREQ (v[0]->object, "web01") && STREQ (v[0]->result, "forbidden")
         && STREQ (v[0]->detail, "not the owner") && v[0]->at);
  CHECK (STREQ (v[1]->action, "target.add") && v[1]->detail == NULL);
  for (size_t i = 0; i < n; i++)
    vv_audit_rec_free (v[i]);
  free (v);
  CHECK (vv_catalog_audit_list (c, 1, &v, &n) == 0);
  CHECK (n == 1 && STREQ (v[0]->action, "backup.create"));
  vv_audit_rec_free (v[0]);
  free (v);
  vv_audit_rec_free (NULL);
}

/* ---- concurrency ---- */

#define THREADS 4
#define ROUNDS 100

struct worker {
  struct vv_catalog *c;
  int index;
  int failures;
  char error[512];
};

static void *
worker_run (void *arg)
{
  struct worker *w = arg;

  for (int i = 0; i < ROUNDS; i++) {
    char id[VV_ID_MAX];
    struct vv_job_rec j = { .id = id, .kind = (char *) "backup",
                            .owner_uid = w->index };
    int r;

    snprintf (id, sizeof id, "job-%02x%010x", w->index, i);
    r = vv_catalog_job_insert (w->c, &j);
    if (r == 0)
      r = vv_catalog_job_set_status (w->c, id, "running", NULL);
    if (r == 0)
      r = vv_catalog_job_set_progress (w->c, id, i, ROUNDS);
    if (r == 0)
      r = vv_catalog_audit (w->c, w->index, "job.create", id, "ok", NULL);
    if (r == 0)
      r = vv_catalog_job_set_status (w->c, id, "completed", NULL);
    if (r != 0) {
      if (w->failures++ == 0)
        snprintf (w->error, sizeof w->error, "%s", vv_get_error ());
    }
  }
  return NULL;
}

static void
test_concurrency (const char *path)
{
  struct vv_catalog *c = vv_catalog_open (path);
  struct vv_catalog *second = vv_catalog_open (path);
  struct worker w[THREADS + 1];
  pthread_t th[THREADS + 1];
  struct vv_job_rec **v;
  struct vv_audit_rec **a;
  size_t n;
  int i;

  CHECK (c && second);
  /* THREADS share one connection; one more uses its own, as a second
   * process would, and must wait for locks rather than fail.
   */
  for (i = 0; i <= THREADS; i++) {
    w[i] = (struct worker) { .c = i < THREADS ? c : second, .index = i + 1 };
    CHECK (pthread_create (&th[i], NULL, worker_run, &w[i]) == 0);
  }
  for (i = 0; i <= THREADS; i++) {
    CHECK (pthread_join (th[i], NULL) == 0);
    if (w[i].failures) {
      fprintf (stderr, "worker %d: %d failures, first: %s\n", i,
               w[i].failures, w[i].error);
      exit (EXIT_FAILURE);
    }
  }

  CHECK (vv_catalog_job_list (c, VV_OWNER_ANY, 10000, &v, &n) == 0);
  CHECK (n == (THREADS + 1) * ROUNDS);
  for (size_t k = 0; k < n; k++)
    CHECK (STREQ (v[k]->status, "completed") && v[k]->finished_at);
  vv_job_recs_free (v, n);
  CHECK (vv_catalog_audit_list (c, 10000, &a, &n) == 0);
  CHECK (n == (THREADS + 1) * ROUNDS);
  for (size_t k = 0; k < n; k++)
    vv_audit_rec_free (a[k]);
  free (a);
  vv_catalog_close (second);
  vv_catalog_close (c);
}

/* ---- offline backups (schema 4) ---- */

static void
test_offline_field (void)
{
  _cleanup_free_ char *path = path_in_tmp ("offline.db");
  struct vv_backup_rec on = backup ("bk-0000000000f1", UUID1,
                                    "ch-0000000000f0", NULL,
                                    "2026-01-01T00:00:00Z", 0);
  struct vv_backup_rec off = backup ("bk-0000000000f2", UUID1,
                                     "ch-0000000000f0", "bk-0000000000f1",
                                     "2026-01-02T00:00:00Z", 0);
  struct vv_catalog *c = vv_catalog_open (path);
  struct vv_backup_rec *b, **v;
  size_t n;

  CHECK (c);
  add_target (c, "local");
  off.offline = true;
  off.notes = (char *) "offline backup (domain shut off)";
  CHECK (vv_catalog_backup_insert (c, &on) == 0);
  CHECK (vv_catalog_backup_insert (c, &off) == 0);
  b = vv_catalog_backup_get (c, on.id, VV_OWNER_ANY);
  CHECK (b && !b->offline);
  vv_backup_rec_free (b);
  b = vv_catalog_backup_get (c, off.id, VV_OWNER_ANY);
  CHECK (b && b->offline);
  vv_backup_rec_free (b);
  CHECK (vv_catalog_backup_list (c, NULL, VV_OWNER_ANY, &v, &n) == 0);
  CHECK (n == 2 && STREQ (v[0]->id, off.id) && v[0]->offline
         && !v[1]->offline);
  free_list (v, n);
  CHECK (raw_count (path, "SELECT count(*) FROM backups WHERE offline = 1")
         == 1);
  /* The notes are for people: changing them leaves the flag alone. */
  CHECK (vv_catalog_backup_set_notes (c, off.id, NULL) == 0);
  b = vv_catalog_backup_get (c, off.id, VV_OWNER_ANY);
  CHECK (b && b->offline && b->notes == NULL);
  vv_backup_rec_free (b);
  vv_catalog_close (c);
}

/* ---- pending cleanups (schema 6) ---- */

static void
test_cleanup_field (void)
{
  _cleanup_free_ char *path = path_in_tmp ("cleanup.db");
  struct vv_backup_rec a = backup ("bk-0000000000c1", UUID1,
                                   "ch-0000000000c0", NULL,
                                   "2026-01-01T00:00:00Z", 0);
  struct vv_backup_rec b2 = backup ("bk-0000000000c2", UUID2,
                                    "ch-0000000000c9", NULL,
                                    "2026-01-02T00:00:00Z", 0);
  struct vv_catalog *c = vv_catalog_open (path);
  struct vv_backup_rec *b, **v;
  size_t n;

  CHECK (c);
  add_target (c, "local");
  CHECK (vv_catalog_backup_insert (c, &a) == 0);
  CHECK (vv_catalog_backup_insert (c, &b2) == 0);
  CHECK (vv_catalog_backup_list_cleanup (c, NULL, &v, &n) == 0);
  CHECK (n == 0);
  free_list (v, n);
  CHECK (vv_catalog_backup_set_cleanup (c, a.id, "libvirt unreachable")
         == 0);
  CHECK (vv_catalog_backup_set_cleanup (c, b2.id, "target unreachable")
         == 0);
  b = vv_catalog_backup_get (c, a.id, VV_OWNER_ANY);
  CHECK (b && STREQ (b->cleanup, "libvirt unreachable"));
  vv_backup_rec_free (b);
  CHECK (vv_catalog_backup_list_cleanup (c, NULL, &v, &n) == 0);
  CHECK (n == 2 && STREQ (v[0]->id, a.id));
  free_list (v, n);
  CHECK (vv_catalog_backup_list_cleanup (c, UUID2, &v, &n) == 0);
  CHECK (n == 1 && STREQ (v[0]->id, b2.id));
  free_list (v, n);
  CHECK (vv_catalog_backup_set_cleanup (c, a.id, NULL) == 0);
  CHECK (vv_catalog_backup_list_cleanup (c, UUID1, &v, &n) == 0);
  CHECK (n == 0);
  free_list (v, n);
  CHECK_ERR (vv_catalog_backup_set_cleanup (c, "bk-00000000dead", "x")
             == -1, VV_ERR_NOT_FOUND, "bk-00000000dead");
  vv_catalog_close (c);
}

/* The default target (schema 8): none marked, then one, moved, never
 * two; the marked one cannot be removed.
 */
static void
test_default_target (void)
{
  _cleanup_free_ char *path = path_in_tmp ("default.db");
  struct vv_catalog *c = vv_catalog_open (path);
  struct vv_target_rec **v;
  char *dflt = (char *) "x";
  size_t n;

  CHECK (c);
  add_target (c, "local");
  add_target (c, "nas");
  CHECK (vv_catalog_target_get_default (c, &dflt) == 0 && dflt == NULL);
  CHECK_ERR (vv_catalog_target_set_default (c, "nope") == -1,
             VV_ERR_NOT_FOUND, "no target named 'nope'");
  CHECK (vv_catalog_target_set_default (c, "nas") == 0);
  CHECK (vv_catalog_target_set_default (c, "nas") == 0);
  CHECK (vv_catalog_target_get_default (c, &dflt) == 0
         && STREQ (dflt, "nas"));
  free (dflt);
  CHECK_ERR (vv_catalog_target_remove (c, "nas") == -1, VV_ERR_BUSY,
             "target 'nas' is the default target; make another target the "
             "default first");
  CHECK (vv_catalog_target_set_default (c, "local") == 0);
  CHECK (vv_catalog_target_list (c, &v, &n) == 0);
  CHECK (n == 2 && v[0]->is_default && !v[1]->is_default);
  for (size_t i = 0; i < n; i++)
    vv_target_rec_free (v[i]);
  free (v);
  CHECK (vv_catalog_target_get_default (c, &dflt) == 0
         && STREQ (dflt, "local"));
  free (dflt);

  CHECK (vv_catalog_target_remove (c, "nas") == 0);
  vv_catalog_close (c);
}

/* ---- verify results and corrupt marks (schema 8) ---- */

static void
test_verify_fields (void)
{
  _cleanup_free_ char *path = path_in_tmp ("verify.db");
  struct vv_backup_rec full = backup ("bk-0000000000f1", UUID1,
                                      "ch-0000000000f0", NULL,
                                      "2026-01-01T00:00:00Z", 0);
  struct vv_backup_rec inc1 = backup ("bk-0000000000f2", UUID1,
                                      "ch-0000000000f0", full.id,
                                      "2026-01-02T00:00:00Z", 0);
  struct vv_backup_rec inc2 = backup ("bk-0000000000f3", UUID1,
                                      "ch-0000000000f0", inc1.id,
                                      "2026-01-03T00:00:00Z", 0);
  struct vv_backup_rec other = backup ("bk-0000000000f4", UUID2,
                                       "ch-0000000000f9", NULL,
                                       "2026-01-03T00:00:00Z", 1000);
  struct vv_catalog *c = vv_catalog_open (path);
  struct vv_policy_verify_stats st;
  struct vv_backup_rec *b, **v;
  size_t n;

  CHECK (c);
  add_target (c, "local");
  inc1.chain_pos = 1;
  inc2.chain_pos = 2;
  full.policy = inc1.policy = inc2.policy = other.policy = (char *) "p";
  full.origin = inc1.origin = inc2.origin = other.origin = (char *) "policy";
  CHECK (vv_catalog_backup_insert (c, &full) == 0
         && vv_catalog_backup_insert (c, &inc1) == 0
         && vv_catalog_backup_insert (c, &inc2) == 0
         && vv_catalog_backup_insert (c, &other) == 0);
  CHECK (vv_catalog_backup_list_policy (c, "p", &v, &n) == 0 && n == 0);
  free_list (v, n);
  CHECK (vv_catalog_backup_complete (c, full.id, 1) == 0
         && vv_catalog_backup_complete (c, inc1.id, 1) == 0
         && vv_catalog_backup_complete (c, inc2.id, 1) == 0
         && vv_catalog_backup_complete (c, other.id, 1) == 0);
  CHECK (vv_catalog_backup_list_policy (c, "p", &v, &n) == 0 && n == 4
         && STREQ (v[0]->id, full.id) && v[0]->corrupt == NULL
         && v[0]->verified_at == NULL && v[0]->verify_result == NULL);
  free_list (v, n);
  CHECK_ERR (vv_catalog_chain_first_corrupt (c, full.chain_id, 2) == NULL,
             VV_ERR_NOT_FOUND, "no backup of chain ch-0000000000f0");

  /* A verdict sets the mark; a verify without one leaves it. */
  CHECK_ERR (vv_catalog_backup_set_verified (c, inc1.id, "corrupt", NULL)
             == -1, VV_ERR_INVALID, "with a reason");
  CHECK_ERR (vv_catalog_backup_set_verified (c, inc1.id, "bad", "x") == -1,
             VV_ERR_INVALID, "verify result 'bad'");
  CHECK_ERR (vv_catalog_backup_set_verified (c, "bk-00000000dead", "ok",
                                             NULL) == -1,
             VV_ERR_NOT_FOUND, "bk-00000000dead");
  CHECK (vv_catalog_backup_set_verified (c, inc1.id, "corrupt",
                                         "vda.qcow2 is corrupt") == 0);
  CHECK (vv_catalog_backup_set_verified (c, inc1.id, "failed", NULL) == 0);
  b = vv_catalog_backup_get (c, inc1.id, VV_OWNER_ANY);
  CHECK (b && STREQ (b->corrupt, "vda.qcow2 is corrupt")
         && STREQ (b->verify_result, "failed") && b->verified_at
         && STREQ (b->status, "completed"));
  vv_backup_rec_free (b);

  /* Incrementals on top of position 1 or 2 rest on it; the full alone
   * does not.
   */
  CHECK_ERR (vv_catalog_chain_first_corrupt (c, full.chain_id, 0) == NULL,
             VV_ERR_NOT_FOUND, "chain");
  b = vv_catalog_chain_first_corrupt (c, full.chain_id, 2);
  CHECK (b && STREQ (b->id, inc1.id));
  vv_backup_rec_free (b);
  CHECK (vv_catalog_backup_set_verified (c, full.id, "corrupt", "x") == 0);
  b = vv_catalog_chain_first_corrupt (c, full.chain_id, 2);
  CHECK (b && STREQ (b->id, full.id));
  vv_backup_rec_free (b);

  /* Per owner on the policy card. */
  CHECK (vv_catalog_backup_set_verified (c, other.id, "corrupt", "y") == 0);
  CHECK (vv_catalog_policy_verify_stats (c, "p", VV_OWNER_ANY, &st) == 0);
  CHECK (st.backups == 4 && st.corrupt == 3 && st.verified == 2
         && st.last_verified_at);
  vv_policy_verify_stats_clear (&st);
  CHECK (vv_catalog_policy_verify_stats (c, "p", 1000, &st) == 0);
  CHECK (st.backups == 1 && st.corrupt == 1);
  vv_policy_verify_stats_clear (&st);
  CHECK (vv_catalog_policy_verify_stats (c, "p", 2000, &st) == 0);
  CHECK (st.backups == 0 && st.corrupt == 0 && st.last_verified_at == NULL);
  vv_policy_verify_stats_clear (&st);

  /* A pass clears it. */
  CHECK (vv_catalog_backup_set_verified (c, inc1.id, "ok", NULL) == 0);
  b = vv_catalog_backup_get (c, inc1.id, VV_OWNER_ANY);
  CHECK (b && b->corrupt == NULL && STREQ (b->verify_result, "ok"));
  vv_backup_rec_free (b);
  vv_catalog_close (c);
}

/* ---- target import: all of a batch or nothing ---- */

static void
test_insert_all (void)
{
  _cleanup_free_ char *path = path_in_tmp ("import.db");
  struct vv_backup_rec full = backup ("bk-0000000000a1", UUID1,
                                      "ch-0000000000a0", NULL,
                                      "2026-01-01T00:00:00Z", 1000);
  struct vv_backup_rec inc = backup ("bk-0000000000a2", UUID1,
                                     "ch-0000000000a0", "bk-0000000000a1",
                                     "2026-01-02T00:00:00Z", 1000);
  struct vv_backup_rec orphan = backup ("bk-0000000000a3", UUID1,
                                        "ch-0000000000a0", "bk-0000000000ff",
                                        "2026-01-03T00:00:00Z", 1000);
  struct vv_backup_rec *bad[] = { &full, &inc, &orphan };
  struct vv_backup_rec *good[] = { &full, &inc };
  struct vv_catalog *c = vv_catalog_open (path);
  struct vv_instance_rec *i;
  struct vv_chain_rec *ch;

  CHECK (c);
  add_target (c, "local");
  full.status = inc.status = orphan.status = (char *) "completed";
  full.domain = inc.domain = (char *) "web01-old";
  inc.chain_pos = 1;
  /* The third fails (its parent is nowhere): nothing stays. */
  CHECK (vv_catalog_backup_insert_all (c, bad, 3) == -1);
  CHECK (strstr (vv_get_error (), "bk-0000000000ff"));
  CHECK (raw_count (path, "SELECT count(*) FROM backups") == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM chains") == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM instances") == 0);

  /* A known instance keeps its owner and takes the name of its newest
   * backup.
   */
  CHECK (vv_catalog_instance_upsert (c, UUID1, "web01", 0) == 0);
  CHECK (vv_catalog_backup_insert_all (c, good, 2) == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM backups WHERE status = "
                    "'completed'") == 2);
  ch = vv_catalog_chain_get (c, "ch-0000000000a0", VV_OWNER_ANY);
  CHECK (ch && STREQ (ch->full_id, full.id) && ch->length == 1
         && ch->owner_uid == 1000);
  vv_chain_rec_free (ch);
  i = vv_catalog_instance_get (c, UUID1);
  CHECK (i && STREQ (i->name, "web01-old") && i->owner_uid == 0);
  vv_instance_rec_free (i);
  /* Sizes as large as a manifest may give: their sum does not fail the
   * chain's query.
   */
  raw_exec (path, "UPDATE backups SET size_bytes = 9223372036854775807");
  ch = vv_catalog_chain_get (c, "ch-0000000000a0", VV_OWNER_ANY);
  CHECK (ch && ch->size_bytes == INT64_MAX);
  vv_chain_rec_free (ch);
  /* Again: the ids exist, nothing changes. */
  CHECK (vv_catalog_backup_insert_all (c, good, 2) == -1);
  CHECK (raw_count (path, "SELECT count(*) FROM backups") == 2);
  CHECK (vv_catalog_backup_insert_all (c, NULL, 0) == 0);
  vv_catalog_close (c);
}

/* A schema 3 file: backups whose notes say they were taken offline become
 * offline, the others not.
 */
static void
test_migration_from_3 (void)
{
  _cleanup_free_ char *path = path_in_tmp ("v3.db");
  struct vv_catalog *c;
  struct vv_backup_rec *b;

  c = vv_catalog_open (path);
  CHECK (c);
  vv_catalog_close (c);
  /* Back to version 3 by hand: drop what 4 and later made. */
  raw_exec (path,
            "DROP INDEX targets_one_default;"
            " ALTER TABLE targets DROP COLUMN is_default;"
            " ALTER TABLE policies DROP COLUMN verify_every;"
            " DROP INDEX backups_by_policy;"
            " ALTER TABLE backups DROP COLUMN corrupt;"
            " ALTER TABLE backups DROP COLUMN verified_at;"
            " ALTER TABLE backups DROP COLUMN verify_result;"
            " ALTER TABLE backups DROP COLUMN domain_xml_sha256;"
            " ALTER TABLE jobs DROP COLUMN notes;"
            " DROP TABLE policy_retries; DROP INDEX backups_by_cleanup;"
            " ALTER TABLE backups DROP COLUMN cleanup;"
            " DROP INDEX audit_by_at; DROP INDEX policy_runs_by_started;"
            " ALTER TABLE backups DROP COLUMN offline;"
            " ALTER TABLE backup_disks DROP COLUMN blocks_object;"
            " ALTER TABLE backup_disks DROP COLUMN blocks_sha256;"
            " ALTER TABLE backup_disks DROP COLUMN block_size;"
            " ALTER TABLE backup_disks DROP COLUMN metadata_bytes;"
            " DELETE FROM schema_version WHERE version >= 4;"
            " INSERT INTO targets (name, url, created_at) VALUES"
            "  ('local', 'file:///x', '2026-01-01T00:00:00Z');"
            " INSERT INTO chains VALUES ('ch-1', '" UUID1 "', 'local', 0,"
            "  '2026-01-01T00:00:00Z');"
            " INSERT INTO backups (id, domain, domain_uuid, type, status,"
            "  chain_id, parent_id, created_at, target, prefix, owner_uid,"
            "  notes) VALUES"
            "  ('bk-1', 'web01', '" UUID1 "', 'full', 'completed', 'ch-1',"
            "  NULL, '2026-01-01T00:00:00Z', 'local', 'p/', 0,"
            "  'skipped hdc: cdrom'),"
            "  ('bk-2', 'web01', '" UUID1 "', 'incremental', 'completed',"
            "  'ch-1', 'bk-1', '2026-01-02T00:00:00Z', 'local', 'q/', 0,"
            "  'skipped hdc: cdrom; offline backup (domain shut off)');"
            " INSERT INTO backup_disks (backup_id, name, virtual_size,"
            "  stored_bytes, sha256, format, object) VALUES"
            "  ('bk-1', 'vda', 1048576, 4096, NULL, 'qcow2', 'p/vda.qcow2');");
  CHECK (raw_count (path, "SELECT max(version) FROM schema_version") == 3);
  c = vv_catalog_open (path);
  CHECK (c);
  CHECK (vv_catalog_schema_version (c)
         == vv_catalog_latest_schema_version ());
  /* Version 8: nothing is the default, corrupt or verified. */
  CHECK (raw_count (path, "SELECT count(*) FROM targets WHERE is_default")
         == 0);
  CHECK (raw_count (path, "SELECT count(*) FROM backups WHERE corrupt IS"
                    " NOT NULL OR verified_at IS NOT NULL") == 0);
  /* Version 7: the indexes pruning uses. */
  CHECK (raw_count (path, "SELECT count(*) FROM sqlite_master WHERE type ="
                    " 'index' AND name IN ('audit_by_at',"
                    " 'policy_runs_by_started')") == 2);
  b = vv_catalog_backup_get (c, "bk-1", VV_OWNER_ANY);
  CHECK (b && !b->offline);
  /* Older backups have no digest of their domain XML, no block digests
   * and no metadata length (version 9).
   */
  CHECK (b->domain_xml_sha256 == NULL);
  CHECK (b->n_disks == 1 && STREQ (b->disks[0].object, "p/vda.qcow2")
         && b->disks[0].blocks_object == NULL
         && b->disks[0].blocks_sha256 == NULL
         && b->disks[0].block_size == 0 && b->disks[0].metadata_bytes == 0);
  vv_backup_rec_free (b);
  b = vv_catalog_backup_get (c, "bk-2", VV_OWNER_ANY);
  CHECK (b && b->offline
         && STREQ (b->notes,
                   "skipped hdc: cdrom; offline backup (domain shut off)"));
  vv_backup_rec_free (b);
  vv_catalog_close (c);
}

/* Pruning by age: finished rows only, the newest run of an instance
 * stays, 0 keeps for ever.
 */
static void
test_prune (void)
{
  _cleanup_free_ char *path = path_in_tmp ("prune.db");
  struct vv_prune_ages ages = { .audit_days = 10, .job_days = 5,
                                .run_days = 5 };
  struct vv_prune_counts n;
  struct vv_catalog *c;
  time_t now;

  CHECK (vv_parse_time_utc ("2026-06-01T00:00:00Z", &now) == 0);
  c = vv_catalog_open (path);
  CHECK (c);
  vv_catalog_close (c);
  raw_exec (path,
            "INSERT INTO audit (at, uid, action, result) VALUES"
            "  ('2026-05-20T00:00:00Z', 0, 'old', 'ok'),"
            "  ('2026-05-25T00:00:00Z', 0, 'new', 'ok');"
            " INSERT INTO jobs (id, kind, status, created_at, owner_uid)"
            " VALUES ('j1', 'backup', 'completed', '2026-05-01T00:00:00Z', 0),"
            "  ('j2', 'backup', 'pending', '2026-05-01T00:00:00Z', 0),"
            "  ('j3', 'verify', 'failed', '2026-05-30T00:00:00Z', 0);"
            " INSERT INTO policies (name, owner_uid, schedule_kind,"
            "  schedule_hour, schedule_minute, created_at) VALUES"
            "  ('p', 0, 'daily', 3, 0, '2026-01-01T00:00:00Z');"
            " INSERT INTO policy_runs (id, policy, domain_uuid, scheduled_for,"
            "  started_at, result) VALUES"
            "  (1, 'p', 'u1', 'x', '2026-05-01T00:00:00Z', 'ok'),"
            "  (2, 'p', 'u1', 'x', '2026-05-02T00:00:00Z', 'running'),"
            "  (3, 'p', 'u1', 'x', '2026-05-03T00:00:00Z', 'failed'),"
            "  (4, 'p', 'u2', 'x', '2026-05-01T00:00:00Z', 'ok');");
  c = vv_catalog_open (path);
  CHECK (c);
  CHECK (vv_catalog_prune (c, &ages, now, &n) == 0);
  CHECK (n.audit == 1 && n.jobs == 1 && n.runs == 1);
  CHECK (raw_count (path, "SELECT count(*) FROM audit WHERE action = 'new'")
         == 1);
  CHECK (raw_count (path, "SELECT count(*) FROM jobs WHERE id IN ('j2', 'j3')")
         == 2);
  /* 1 goes; 2 runs; 3 and 4 are the newest of their instances. */
  CHECK (raw_count (path, "SELECT count(*) FROM policy_runs") == 3);
  CHECK (raw_count (path, "SELECT count(*) FROM policy_runs WHERE id IN"
                    " (2, 3, 4)") == 3);
  /* Again: nothing more; with 0 days nothing at all. */
  CHECK (vv_catalog_prune (c, &ages, now, &n) == 0);
  CHECK (n.audit == 0 && n.jobs == 0 && n.runs == 0);
  ages = (struct vv_prune_ages) { 0 };
  CHECK (vv_catalog_prune (c, &ages, now + 1000 * 86400, &n) == 0);
  CHECK (n.audit == 0 && n.jobs == 0 && n.runs == 0);
  vv_catalog_close (c);
}

int
main (void)
{
  _cleanup_free_ char *path = NULL;
  _cleanup_free_ char *conc = NULL;
  struct vv_catalog *c;

  CHECK (mkdtemp (tmpdir));
  path = path_in_tmp ("catalog.db");
  conc = path_in_tmp ("concurrent.db");

  test_fresh_and_reopen ();
  test_future_version ();
  test_migrate_from_version_0 ();

  c = vv_catalog_open (path);
  CHECK (c);
  test_targets (c);
  test_instances (c);
  test_backups (c, path);
  test_jobs (c);
  test_audit (c);
  vv_catalog_close (c);
  vv_catalog_close (NULL);

  test_offline_field ();
  test_cleanup_field ();
  test_default_target ();
  test_verify_fields ();
  test_insert_all ();
  test_migration_from_3 ();
  test_prune ();
  test_concurrency (conc);

  CHECK (vv_remove_tree (tmpdir) == 0);
  printf ("test-catalog: all checks passed\n");
  return EXIT_SUCCESS;
}
