/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Catalog, schema 3: policies, attachments (one policy per instance),
 * runs, backup origin and protection, and the migration from schema 2.
 */
#include <config.h>

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog.h"
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
#define UUID2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"

static char tmpdir[] = "/tmp/test-catalog-policies.XXXXXX";

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

static struct vv_policy_rec
policy (const char *name)
{
  struct vv_policy_rec p = {
    .name = (char *) name, .owner_uid = 1000,
    .schedule_kind = (char *) "daily", .day = -1, .hour = 2, .minute = 0,
    .tz = (char *) "Europe/Berlin", .window = 120, .max_chain = 6,
    .retention = 3,
  };
  return p;
}

static void
test_policies (struct vv_catalog *c)
{
  struct vv_policy_rec p = policy ("nightly"), w = policy ("weekly");
  struct vv_policy_rec **v = NULL, *g;
  size_t n = 0;

  CHECK (vv_catalog_policy_add (c, &p) == 0);
  CHECK_ERR (vv_catalog_policy_add (c, &p) == -1, VV_ERR_BUSY,
             "policy 'nightly' already exists");
  w.schedule_kind = (char *) "weekly";
  w.day = 1;
  w.keep = (char *) "1d:7,1w:4";
  w.max_age = 90 * 86400;
  w.max_backups = 20;
  w.device = (char *) "all";
  w.target = (char *) "local";
  w.quiesce = (char *) "try";
  w.owner_uid = 1001;
  CHECK (vv_catalog_policy_add (c, &w) == 0);

  /* Constraints the API checks first, with a message. */
  struct vv_policy_rec bad = policy ("bad");
  bad.hour = 25;
  CHECK_ERR (vv_catalog_policy_add (c, &bad) == -1, VV_ERR_INVALID,
             "out of range");
  bad = policy ("bad");
  bad.day = 3;                  /* a day on a daily schedule */
  CHECK_ERR (vv_catalog_policy_add (c, &bad) == -1, VV_ERR_INVALID,
             "out of range");
  bad = policy ("bad");
  bad.device = (char *) "some";
  CHECK_ERR (vv_catalog_policy_add (c, &bad) == -1, VV_ERR_INVALID,
             "device");
  bad = policy ("bad/name");
  CHECK (vv_catalog_policy_add (c, &bad) == -1);

  g = vv_catalog_policy_get (c, "weekly", VV_OWNER_ANY);
  CHECK (g);
  CHECK (STREQ (g->status, "active") && g->last_error == NULL);
  CHECK (STREQ (g->schedule_kind, "weekly") && g->day == 1);
  CHECK (g->hour == 2 && g->minute == 0 && STREQ (g->tz, "Europe/Berlin"));
  CHECK (g->window == 120 && g->max_chain == 6 && g->retention == 3);
  CHECK (STREQ (g->keep, "1d:7,1w:4") && g->max_age == 90 * 86400);
  CHECK (g->max_backups == 20 && STREQ (g->device, "all"));
  CHECK (STREQ (g->target, "local") && STREQ (g->quiesce, "try"));
  CHECK (g->owner_uid == 1001 && g->created_at && g->n_instances == 0);
  vv_policy_rec_free (g);

  g = vv_catalog_policy_get (c, "nightly", VV_OWNER_ANY);
  CHECK (g && STREQ (g->device, "primary") && STREQ (g->quiesce, "off"));
  CHECK (g->target == NULL && g->keep == NULL);
  vv_policy_rec_free (g);

  /* Owners see their own. */
  CHECK_ERR (vv_catalog_policy_get (c, "weekly", 1000) == NULL,
             VV_ERR_NOT_FOUND, "no policy named 'weekly'");
  CHECK (vv_catalog_policy_list (c, 1000, &v, &n) == 0 && n == 1);
  CHECK (STREQ (v[0]->name, "nightly"));
  vv_policy_recs_free (v, n);
  CHECK (vv_catalog_policy_list (c, VV_OWNER_ANY, &v, &n) == 0 && n == 2);
  CHECK (STREQ (v[0]->name, "nightly") && STREQ (v[1]->name, "weekly"));
  vv_policy_recs_free (v, n);

  /* Update keeps status and owner. */
  CHECK (vv_catalog_policy_set_status (c, "nightly", "error",
                                       "domain 'x' vanished") == 0);
  p.max_chain = 0;
  p.retention = 5;
  p.owner_uid = 1;
  CHECK (vv_catalog_policy_update (c, &p) == 0);
  g = vv_catalog_policy_get (c, "nightly", VV_OWNER_ANY);
  CHECK (g && g->max_chain == 0 && g->retention == 5 && g->owner_uid == 1000);
  CHECK (STREQ (g->status, "error")
         && STREQ (g->last_error, "domain 'x' vanished"));
  vv_policy_rec_free (g);
  /* error without a message keeps the last one; active clears it. */
  CHECK (vv_catalog_policy_set_status (c, "nightly", "error", NULL) == 0);
  g = vv_catalog_policy_get (c, "nightly", VV_OWNER_ANY);
  CHECK (g && STREQ (g->last_error, "domain 'x' vanished"));
  vv_policy_rec_free (g);
  CHECK (vv_catalog_policy_set_status (c, "nightly", "active", NULL) == 0);
  g = vv_catalog_policy_get (c, "nightly", VV_OWNER_ANY);
  CHECK (g && STREQ (g->status, "active") && g->last_error == NULL);
  vv_policy_rec_free (g);
  CHECK_ERR (vv_catalog_policy_set_status (c, "nightly", "sleeping",
                                           NULL) == -1, VV_ERR_INVALID,
             "active, paused or error");
  CHECK_ERR (vv_catalog_policy_set_status (c, "nope", "paused", NULL) == -1,
             VV_ERR_NOT_FOUND, "no policy named 'nope'");
  struct vv_policy_rec nope = policy ("nope");
  CHECK_ERR (vv_catalog_policy_update (c, &nope) == -1, VV_ERR_NOT_FOUND,
             "no policy named 'nope'");
}

static void
test_attachments (struct vv_catalog *c)
{
  struct vv_attachment_rec **v = NULL, *a;
  struct vv_policy_rec *g;
  size_t n = 0;
  char *was = NULL;

  CHECK (vv_catalog_policy_attach (c, "nightly", UUID1, "web01") == 0);
  /* Again to the same policy: nothing changes. */
  CHECK (vv_catalog_policy_attach (c, "nightly", UUID1, "web01") == 0);
  CHECK_ERR (vv_catalog_policy_attach (c, "weekly", UUID1, "web01") == -1,
             VV_ERR_BUSY, "Instance is already attached to another backup "
             "policy ('nightly')");
  CHECK_ERR (vv_catalog_policy_attach (c, "nope", UUID2, "db01") == -1,
             VV_ERR_NOT_FOUND, "no policy named 'nope'");
  CHECK (vv_catalog_policy_attach (c, "weekly", UUID2, "db01") == 0);

  CHECK (vv_catalog_attachment_list (c, NULL, &v, &n) == 0 && n == 2);
  vv_attachment_recs_free (v, n);
  CHECK (vv_catalog_attachment_list (c, "nightly", &v, &n) == 0 && n == 1);
  CHECK (STREQ (v[0]->domain_uuid, UUID1) && STREQ (v[0]->domain, "web01"));
  CHECK (v[0]->attached_at != NULL);
  vv_attachment_recs_free (v, n);
  g = vv_catalog_policy_get (c, "nightly", VV_OWNER_ANY);
  CHECK (g && g->n_instances == 1);
  vv_policy_rec_free (g);

  a = vv_catalog_attachment_get (c, "web01");
  CHECK (a && STREQ (a->policy, "nightly"));
  vv_attachment_rec_free (a);
  a = vv_catalog_attachment_get (c, UUID2);
  CHECK (a && STREQ (a->policy, "weekly"));
  vv_attachment_rec_free (a);

  /* Detach by name; then it may join another policy. */
  CHECK (vv_catalog_policy_detach (c, "web01", &was) == 0);
  CHECK (STREQ (was, "nightly"));
  free (was);
  CHECK_ERR (vv_catalog_policy_detach (c, "web01", NULL) == -1,
             VV_ERR_NOT_FOUND, "is not attached");
  CHECK_ERR (vv_catalog_attachment_get (c, "web01") == NULL,
             VV_ERR_NOT_FOUND, "is not attached");
  CHECK (vv_catalog_policy_attach (c, "nightly", UUID1, "web01") == 0);
}

static void
test_runs_and_backups (struct vv_catalog *c)
{
  struct vv_run_rec **v = NULL;
  size_t n = 0;
  int64_t id1, id2;
  struct vv_run_rec r = {
    .policy = (char *) "nightly", .domain_uuid = (char *) UUID1,
    .domain = (char *) "web01",
    .scheduled_for = (char *) "2026-11-24T01:00:00Z", .kind = (char *) "full",
  };

  CHECK (vv_catalog_run_insert (c, &r, &id1) == 0);
  r.scheduled_for = (char *) "2026-11-25T01:00:00Z";
  r.result = (char *) "skipped";
  r.message = (char *) "domain 'web01' is not running";
  r.kind = NULL;
  CHECK (vv_catalog_run_insert (c, &r, &id2) == 0);
  CHECK (id2 > id1);
  CHECK (vv_catalog_run_finish (c, id1, "ok", "bk-000000000001", NULL) == 0);
  CHECK_ERR (vv_catalog_run_finish (c, 999999, "ok", NULL, NULL) == -1,
             VV_ERR_NOT_FOUND, "no policy run 999999");
  CHECK_ERR (vv_catalog_run_finish (c, id1, "great", NULL, NULL) == -1,
             VV_ERR_INVALID, "running, ok, failed or skipped");
  r.policy = (char *) "nope";
  CHECK_ERR (vv_catalog_run_insert (c, &r, NULL) == -1, VV_ERR_NOT_FOUND,
             "no policy named 'nope'");

  CHECK (vv_catalog_run_list (c, "nightly", NULL, 0, &v, &n) == 0 && n == 2);
  CHECK (v[0]->id == id2 && STREQ (v[0]->result, "skipped"));
  CHECK (v[0]->finished_at != NULL && v[0]->kind == NULL);
  CHECK (STREQ (v[0]->message, "domain 'web01' is not running"));
  CHECK (STREQ (v[1]->result, "ok") && STREQ (v[1]->kind, "full"));
  CHECK (STREQ (v[1]->backup_id, "bk-000000000001") && v[1]->finished_at);
  vv_run_recs_free (v, n);
  CHECK (vv_catalog_run_list (c, "nightly", UUID2, 0, &v, &n) == 0 && n == 0);
  vv_run_recs_free (v, n);
  CHECK (vv_catalog_run_list (c, NULL, NULL, 1, &v, &n) == 0 && n == 1);
  vv_run_recs_free (v, n);

  /* Backups: manual by default, then marked as the policy's; protection. */
  struct vv_backup_rec b = {
    .id = (char *) "bk-000000000001", .domain = (char *) "web01",
    .domain_uuid = (char *) UUID1, .type = (char *) "full",
    .chain_id = (char *) "ch-000000000001", .target = (char *) "local",
    .prefix = (char *) "x/", .owner_uid = 0,
  };
  struct vv_backup_rec *g;
  CHECK (vv_catalog_backup_insert (c, &b) == 0);
  g = vv_catalog_backup_get (c, b.id, VV_OWNER_ANY);
  CHECK (g && STREQ (g->origin, "manual") && g->policy == NULL);
  CHECK (!g->protected);
  vv_backup_rec_free (g);
  CHECK (vv_catalog_backup_set_origin (c, b.id, "policy", "nightly") == 0);
  CHECK (vv_catalog_backup_set_protected (c, b.id, true) == 0);
  g = vv_catalog_backup_get (c, b.id, VV_OWNER_ANY);
  CHECK (g && STREQ (g->origin, "policy") && STREQ (g->policy, "nightly"));
  CHECK (g->protected);
  vv_backup_rec_free (g);
  CHECK_ERR (vv_catalog_backup_set_origin (c, b.id, "robot", NULL) == -1,
             VV_ERR_INVALID, "manual or policy");
  CHECK_ERR (vv_catalog_backup_set_protected (c, "bk-nope", true) == -1,
             VV_ERR_NOT_FOUND, "no backup with id 'bk-nope'");

  /* Deleting the policy detaches, forgets its runs, keeps the backup
   * (which then belongs to no policy).
   */
  CHECK (vv_catalog_policy_delete (c, "nightly") == 0);
  CHECK_ERR (vv_catalog_policy_delete (c, "nightly") == -1,
             VV_ERR_NOT_FOUND, "no policy named 'nightly'");
  CHECK_ERR (vv_catalog_attachment_get (c, UUID1) == NULL, VV_ERR_NOT_FOUND,
             "is not attached");
  CHECK (vv_catalog_run_list (c, "nightly", NULL, 0, &v, &n) == 0 && n == 0);
  vv_run_recs_free (v, n);
  g = vv_catalog_backup_get (c, b.id, VV_OWNER_ANY);
  CHECK (g && STREQ (g->origin, "policy") && g->policy == NULL);
  CHECK (g->protected);
  vv_backup_rec_free (g);

  struct vv_instance_rec **iv = NULL;
  CHECK (vv_catalog_instance_upsert (c, UUID1, "web01", 0) == 0);
  CHECK (vv_catalog_instance_upsert (c, UUID2, "db01", 1000) == 0);
  CHECK (vv_catalog_instance_list (c, VV_OWNER_ANY, &iv, &n) == 0 && n == 2);
  CHECK (STREQ (iv[0]->name, "db01") && STREQ (iv[1]->name, "web01"));
  vv_instance_recs_free (iv, n);
  CHECK (vv_catalog_instance_list (c, 1000, &iv, &n) == 0 && n == 1);
  vv_instance_recs_free (iv, n);
}

/* A schema 2 file with a backup gains the new columns with defaults. */
static void
test_migration_from_2 (void)
{
  _cleanup_free_ char *path = vv_printf ("%s/v2.db", tmpdir);
  struct vv_catalog *c;
  struct vv_backup_rec *b;

  CHECK (path);
  c = vv_catalog_open (path);
  CHECK (c);
  vv_catalog_close (c);
  /* Back to version 2 by hand: drop what 3 and later made. */
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
            " DROP INDEX audit_by_at;"
            " ALTER TABLE backups DROP COLUMN offline;"
            " ALTER TABLE backup_disks DROP COLUMN blocks_object;"
            " ALTER TABLE backup_disks DROP COLUMN blocks_sha256;"
            " ALTER TABLE backup_disks DROP COLUMN block_size;"
            " ALTER TABLE backup_disks DROP COLUMN metadata_bytes;"
            " DELETE FROM schema_version WHERE version > 3;"
            " DROP TABLE policy_runs; DROP TABLE policy_instances;"
            " DROP TABLE policies;"
            " ALTER TABLE backups DROP COLUMN protected;"
            " ALTER TABLE backups DROP COLUMN policy;"
            " ALTER TABLE backups DROP COLUMN origin;"
            " DELETE FROM schema_version WHERE version = 3;"
            " INSERT INTO targets (name, url, created_at) VALUES"
            "  ('local', 'file:///x', '2026-01-01T00:00:00Z');"
            " INSERT INTO chains VALUES ('ch-1', '" UUID1 "', 'local', 0,"
            "  '2026-01-01T00:00:00Z');"
            " INSERT INTO backups (id, domain, domain_uuid, type, status,"
            "  chain_id, created_at, target, prefix, owner_uid) VALUES"
            "  ('bk-1', 'web01', '" UUID1 "', 'full', 'completed', 'ch-1',"
            "  '2026-01-01T00:00:00Z', 'local', 'p/', 0);");
  c = vv_catalog_open (path);
  CHECK (c);
  CHECK (vv_catalog_schema_version (c)
         == vv_catalog_latest_schema_version ());
  b = vv_catalog_backup_get (c, "bk-1", VV_OWNER_ANY);
  CHECK (b && STREQ (b->origin, "manual") && !b->protected);
  vv_backup_rec_free (b);
  vv_catalog_close (c);
}

/* Retry state (schema 6): upsert, list, clear; a policy that is gone
 * keeps none; runs left running are listed.
 */
static void
test_retries (struct vv_catalog *c)
{
  struct vv_retry_rec **v = NULL;
  struct vv_run_rec **rv = NULL;
  size_t n = 0;
  int64_t id;
  struct vv_retry_rec r = {
    .policy = (char *) "weekly", .domain_uuid = (char *) UUID1,
    .slot = (char *) "2026-11-24T01:00:00Z", .failures = 1,
    .retry_at = (char *) "2026-11-24T01:05:00Z",
  };
  struct vv_run_rec run = {
    .policy = (char *) "weekly", .domain_uuid = (char *) UUID1,
    .domain = (char *) "web01",
    .scheduled_for = (char *) "2026-11-26T01:00:00Z",
  };

  CHECK (vv_catalog_retry_set (c, &r) == 0);
  r.failures = 2;
  r.retry_at = (char *) "2026-11-24T01:20:00Z";
  CHECK (vv_catalog_retry_set (c, &r) == 0);
  CHECK (vv_catalog_retry_list (c, &v, &n) == 0);
  CHECK (n == 1 && v[0]->failures == 2
         && STREQ (v[0]->retry_at, "2026-11-24T01:20:00Z")
         && STREQ (v[0]->slot, "2026-11-24T01:00:00Z"));
  vv_retry_recs_free (v, n);
  r.retry_at = NULL;
  CHECK (vv_catalog_retry_set (c, &r) == 0);
  CHECK (vv_catalog_retry_list (c, &v, &n) == 0);
  CHECK (n == 1 && v[0]->retry_at == NULL);
  vv_retry_recs_free (v, n);
  r.policy = (char *) "nope";
  CHECK (vv_catalog_retry_set (c, &r) == 0);
  CHECK (vv_catalog_retry_list (c, &v, &n) == 0);
  CHECK (n == 1);
  vv_retry_recs_free (v, n);
  CHECK (vv_catalog_retry_clear (c, "weekly", UUID1) == 0);
  CHECK (vv_catalog_retry_list (c, &v, &n) == 0);
  CHECK (n == 0);
  vv_retry_recs_free (v, n);

  run.result = (char *) "running";
  CHECK (vv_catalog_run_insert (c, &run, &id) == 0);
  CHECK (vv_catalog_run_list_running (c, &rv, &n) == 0);
  CHECK (n >= 1 && rv[n - 1]->id == id);
  vv_run_recs_free (rv, n);
  CHECK (vv_catalog_run_finish (c, id, "failed", NULL, "stopped") == 0);
  CHECK (vv_catalog_run_list_running (c, &rv, &n) == 0);
  for (size_t i = 0; i < n; i++)
    CHECK (rv[i]->id != id);
  vv_run_recs_free (rv, n);

  /* Deleting the policy deletes its retry state. */
  r.policy = (char *) "weekly";
  CHECK (vv_catalog_retry_set (c, &r) == 0);
  CHECK (vv_catalog_policy_delete (c, "weekly") == 0);
  CHECK (vv_catalog_retry_list (c, &v, &n) == 0);
  CHECK (n == 0);
  vv_retry_recs_free (v, n);
}

int
main (void)
{
  _cleanup_free_ char *path = NULL;
  struct vv_catalog *c;

  CHECK (mkdtemp (tmpdir));
  path = vv_printf ("%s/catalog.db", tmpdir);
  CHECK (path);
  c = vv_catalog_open (path);
  CHECK (c);
  CHECK (vv_catalog_latest_schema_version () >= 3);
  struct vv_target_rec t = { .name = (char *) "local",
                             .url = (char *) "file:///srv/backup" };
  CHECK (vv_catalog_target_add (c, &t) == 0);

  test_policies (c);
  test_attachments (c);
  test_runs_and_backups (c);
  test_retries (c);
  vv_catalog_close (c);
  test_migration_from_2 ();

  _cleanup_free_ char *cmd = vv_printf ("rm -rf '%s'", tmpdir);
  if (cmd && system (cmd) != 0)
    fprintf (stderr, "could not remove %s\n", tmpdir);
  printf ("test-catalog-policies: ok\n");
  return EXIT_SUCCESS;
}
