/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: the API's request handling (src/api/), as the daemon
 * drives it (src/api/server.c hands vv_api_handle the path, the raw query
 * string after '?' and the body with its length), without a socket.
 *
 * Input: a request line "METHOD PATH[?QUERY]" (a space or tab between),
 * a newline, then the body (any bytes, up to the daemon's 1 MiB limit).
 * Every request is sent twice: by uid 1000, an ordinary user, then by
 * root, an admin.  Each input starts from a fresh catalog holding a
 * target, a policy and a failed backup of uid 1000, so routes that look
 * records up find some.
 *
 * What every answer must be: a status from 200 to 599 and a body that is
 * one JSON object or array and a newline, with {"error":{"code",
 * "message"}} for 4xx and 5xx.
 *
 * Nothing here may touch the machine: the engine talks to libvirt's
 * built-in test driver (test:///default, in this process), and no storage
 * plugin can be loaded (VIRTVAULT_PLUGIN_PATH is an empty directory; the
 * harness refuses to start when a file:// target opens anyway), so no
 * target, backup, restore or import reaches a file system.  The catalog
 * lives in a private directory under $TMPDIR (default /dev/shm).
 */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "api/api.h"
#include "catalog/catalog.h"
#include "catalog/catalog-internal.h"
#include "engine/engine.h"
#include "jobs/jobs.h"
#include "target/target.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"
#include "json-mutator.h"

#define USER_UID 1000
#define BK "bk-00000000000b"
#define UUID "11111111-2222-3333-4444-555555555555"

static char *tmpdir;
static char *db_path;
/* The catalog and the job queue live as long as the process: opening a
 * catalog and starting worker threads for every input made the harness
 * 50 times slower.  Instead, before each input, a second connection puts
 * back the rows of the seeded catalog (a copy in template.db), so every
 * input starts from the same state.
 */
static struct vv_jobs *jobs;
static sqlite3 *resetter;
static char **tables;           /* the catalog's tables, NULL-terminated */
/* Which tables the daemon's connection wrote to since the last reset
 * (sqlite3_update_hook; the job worker writes too, hence the lock), so
 * only those are copied back: copying all cost 10 ms per input.
 */
static pthread_mutex_t dirty_lock = PTHREAD_MUTEX_INITIALIZER;
static bool *dirty;
static bool dirty_unknown;
static sqlite3_int64 changes_seen;
static struct vv_engine engine = {
  .libvirt_uri = "test:///default",
  .default_target = "local",
};

static void
die (const char *what)
{
  fprintf (stderr, "fuzz-api-request: %s: %s\n", what, vv_get_error ());
  abort ();
}

static void
remove_tmpdir (void)
{
  if (vv_remove_tree (tmpdir) == -1)
    fprintf (stderr, "fuzz-api-request: %s\n", vv_get_error ());
}

static struct vv_catalog *
seed_catalog (const char *path)
{
  struct vv_catalog *c;
  struct vv_target_rec target = {
    .name = (char *) "local", .url = (char *) "mem://",
    .created_at = (char *) "2026-01-01T00:00:00Z",
  };
  struct vv_policy_rec policy = {
    .name = (char *) "nightly", .owner_uid = USER_UID,
    .schedule_kind = (char *) "daily", .day = -1, .hour = 2,
    .tz = (char *) "Europe/Berlin", .window = 120, .max_chain = 6,
    .retention = 3, .device = (char *) "primary",
    .quiesce = (char *) "off", .created_at = (char *) "2026-01-01T00:00:00Z",
  };
  struct vv_backup_rec backup = {
    .id = (char *) BK, .domain = (char *) "web01",
    .domain_uuid = (char *) UUID, .type = (char *) "full",
    .status = (char *) "running", .chain_id = (char *) "ch-00000000000c",
    .target = (char *) "local", .reason = (char *) "full: first backup",
    .prefix = (char *) UUID "/ch-00000000000c/" BK "/",
    .owner_uid = USER_UID,
  };

  c = vv_catalog_open (path);
  if (c == NULL
      || vv_catalog_target_add (c, &target) == -1
      || vv_catalog_policy_add (c, &policy) == -1
      || vv_catalog_instance_upsert (c, UUID, "web01", USER_UID) == -1
      || vv_catalog_backup_insert (c, &backup) == -1
      || vv_catalog_backup_set_status (c, BK, "failed", "a seeded failure")
         == -1)
    die ("seeding the catalog");
  return c;
}

static void
sql (const char *stmt)
{
  char *err = NULL;

  if (sqlite3_exec (resetter, stmt, NULL, NULL, &err) != SQLITE_OK) {
    fprintf (stderr, "fuzz-api-request: %s: %s\n", stmt, err);
    abort ();
  }
}

static int
add_table (void *opaque, int n, char **values, char **names)
{
  size_t *count = opaque;
  char **v = realloc (tables, (*count + 2) * sizeof *tables);

  if (v == NULL || (v[*count] = strdup (values[0])) == NULL)
    abort ();
  v[++*count] = NULL;
  tables = v;
  return 0;
}

static void
on_update (void *opaque, int op, const char *db, const char *table,
           sqlite3_int64 rowid)
{
  size_t i;

  pthread_mutex_lock (&dirty_lock);
  for (i = 0; tables[i]; i++)
    if (strcmp (tables[i], table) == 0) {
      dirty[i] = true;
      break;
    }
  if (tables[i] == NULL)
    dirty_unknown = true;
  pthread_mutex_unlock (&dirty_lock);
}

/* Copies the template's rows over the catalog's, for the tables written
 * since the last time (all of them when a change slipped past the hook:
 * a DELETE without WHERE, or a table made after the start).
 */
static void
reset_catalog (void)
{
  struct vv_job_rec **v;
  size_t n;
  sqlite3_int64 changes;
  bool all;

  /* Jobs of the last input first: they write to the catalog. */
  if (vv_catalog_job_list_unfinished (engine.catalog, &v, &n) == -1)
    die ("listing jobs");
  for (size_t i = 0; i < n; i++) {
    vv_jobs_cancel (jobs, v[i]->id, VV_OWNER_ANY);
    vv_jobs_wait (jobs, v[i]->id);
  }
  vv_job_recs_free (v, n);

  pthread_mutex_lock (&engine.catalog->lock);
  changes = sqlite3_total_changes64 (engine.catalog->db);
  pthread_mutex_unlock (&engine.catalog->lock);
  pthread_mutex_lock (&dirty_lock);
  all = dirty_unknown;
  if (!all && changes != changes_seen) {
    all = true;
    for (size_t i = 0; tables[i]; i++)
      all = all && !dirty[i];
  }
  sql ("BEGIN IMMEDIATE");
  for (size_t i = 0; tables[i]; i++) {
    char *stmt;

    /* AUTOINCREMENT counters change without the hook. */
    if (!all && !dirty[i] && !(changes != changes_seen
                               && strcmp (tables[i], "sqlite_sequence") == 0))
      continue;
    stmt = sqlite3_mprintf ("DELETE FROM main.\"%w\"; "
                            "INSERT INTO main.\"%w\" "
                            "SELECT * FROM tmpl.\"%w\"",
                            tables[i], tables[i], tables[i]);
    if (stmt == NULL)
      abort ();
    sql (stmt);
    sqlite3_free (stmt);
    dirty[i] = false;
  }
  sql ("COMMIT");
  dirty_unknown = false;
  pthread_mutex_unlock (&dirty_lock);
  pthread_mutex_lock (&engine.catalog->lock);
  changes_seen = sqlite3_total_changes64 (engine.catalog->db);
  pthread_mutex_unlock (&engine.catalog->lock);
}

static void
open_resetter (void)
{
  char *tmpl = vv_printf ("%s/template.db", tmpdir);
  char *attach, *err = NULL;
  size_t count = 0;

  if (tmpl == NULL)
    abort ();
  /* The template: the seeded catalog, closed (checkpointed). */
  vv_catalog_close (seed_catalog (tmpl));
  engine.catalog = seed_catalog (db_path);
  if (sqlite3_open (db_path, &resetter) != SQLITE_OK)
    die ("opening the catalog a second time");
  sqlite3_busy_timeout (resetter, 5000);
  attach = sqlite3_mprintf ("ATTACH %Q AS tmpl", tmpl);
  sql (attach);
  sqlite3_free (attach);
  if (sqlite3_exec (resetter, "SELECT name FROM tmpl.sqlite_master WHERE "
                    "type = 'table' AND name NOT LIKE 'sqlite_stat%'",
                    add_table, &count, &err) != SQLITE_OK || count == 0) {
    fprintf (stderr, "fuzz-api-request: listing tables: %s\n", err);
    abort ();
  }
  dirty = calloc (count, sizeof *dirty);
  if (dirty == NULL)
    abort ();
  sqlite3_update_hook (engine.catalog->db, on_update, NULL);
  changes_seen = sqlite3_total_changes64 (engine.catalog->db);
  free (tmpl);
}

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  char *plugins;
  struct vv_target *t;

  /* $TMPDIR, else /dev/shm: the catalog is rewritten for every input.
   * A crash leaves the directory behind (run-fuzzers.sh sets TMPDIR to
   * one it removes).
   */
  tmpdir = vv_printf ("%s/fuzz-api-request.XXXXXX",
                      getenv ("TMPDIR") ? getenv ("TMPDIR") : "/dev/shm");
  if (tmpdir == NULL || mkdtemp (tmpdir) == NULL) {
    perror ("mkdtemp");
    abort ();
  }
  atexit (remove_tmpdir);
  plugins = vv_printf ("%s/no-plugins", tmpdir);
  db_path = vv_printf ("%s/catalog.db", tmpdir);
  if (!plugins || !db_path
      || mkdir (plugins, 0700) == -1)
    die ("setting up");
  setenv ("VIRTVAULT_PLUGIN_PATH", plugins, 1);
  free (plugins);
  engine.state_dir = tmpdir;

  /* The guard that keeps fuzzed requests off the file system. */
  t = vv_target_open ("guard", "file:///nonexistent-fuzz-target", NULL);
  if (t != NULL) {
    fprintf (stderr, "fuzz-api-request: a file:// target opens (a storage "
             "plugin is installed in the plugin directory); refusing to "
             "send fuzzed requests that could write files\n");
    abort ();
  }
  open_resetter ();
  jobs = vv_jobs_new (engine.catalog, 1);
  if (jobs == NULL)
    die ("starting the job queue");
  return 0;
}

/* The answer must be what docs/api.md promises for any request. */
static void
check_answer (int status, const char *body, const char *method,
              const char *path)
{
  json_object *o, *e, *v;
  size_t len;

  if (body == NULL || (len = strlen (body)) == 0 || body[len - 1] != '\n') {
    fprintf (stderr, "%s %s: answer %d without a body ending in a "
             "newline\n", method, path, status);
    abort ();
  }
  if (status < 200 || status > 599) {
    fprintf (stderr, "%s %s: status %d\n%s", method, path, status, body);
    abort ();
  }
  o = vv_json_parse ("the answer", body, len);
  if (o == NULL || !(json_object_is_type (o, json_type_object)
                     || json_object_is_type (o, json_type_array))) {
    fprintf (stderr, "%s %s: answer %d is not a JSON object or array: %s\n"
             "%s", method, path, status, vv_get_error (), body);
    abort ();
  }
  if (status >= 400
      && !(json_object_object_get_ex (o, "error", &e)
           && json_object_object_get_ex (e, "code", &v)
           && json_object_is_type (v, json_type_string)
           && json_object_object_get_ex (e, "message", &v)
           && json_object_is_type (v, json_type_string))) {
    fprintf (stderr, "%s %s: answer %d without an error object\n%s",
             method, path, status, body);
    abort ();
  }
  json_object_put (o);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const uid_t uids[] = { USER_UID, 0 };
  const uint8_t *nl = memchr (data, '\n', size);
  size_t line_len = nl ? (size_t) (nl - data) : size;
  char *line, *method, *path, *query, *body, *sep;
  size_t body_len = nl ? size - line_len - 1 : 0;
  struct vv_api_context ctx = { .engine = &engine, .manual_limit = 5 };

  if (body_len > VV_API_BODY_FIELDS || line_len > 8192)
    return -1;
  /* The daemon's strings: method and URL are C strings, the body is a
   * NUL-terminated buffer with its length.
   */
  line = strndup ((const char *) data, line_len);
  body = malloc (body_len + 1);
  if (line == NULL || body == NULL)
    abort ();
  if (body_len)
    memcpy (body, nl + 1, body_len);
  body[body_len] = '\0';
  method = line;
  sep = strpbrk (line, " \t");
  path = sep ? sep + 1 : line + strlen (line);
  if (sep)
    *sep = '\0';
  query = strchr (path, '?');
  if (query)
    *query++ = '\0';

  reset_catalog ();
  ctx.jobs = jobs;

  for (size_t i = 0; i < sizeof uids / sizeof uids[0]; i++) {
    char *answer = NULL;
    size_t max_body = 0;
    /* As server.c: what does not depend on the body is decided first,
     * and a body over the endpoint's limit is never handed on (413).
     */
    int status = vv_api_precheck (&ctx, uids[i], method, path, body_len,
                                  &max_body, &answer);

    if (status == 0 && body_len > max_body)
      continue;
    if (status == 0)
      status = vv_api_handle (&ctx, uids[i], method, path, query, body,
                              body_len, &answer);
    check_answer (status, answer, method, path);
    free (answer);
  }

  free (line);
  free (body);
  return 0;
}

/* The body, after the request line, is the JSON document (for
 * json-mutator.c); the request line is left to byte mutations.
 */
size_t
fuzz_json_start (const uint8_t *data, size_t size)
{
  const uint8_t *nl = memchr (data, '\n', size);

  return nl ? (size_t) (nl - data) + 1 : size + 1;
}
