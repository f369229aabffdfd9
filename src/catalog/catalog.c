/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

/* Long enough for a SQLite message and the catalog's path. */
#define WHAT_MAX 512

int
vv_cat_error (struct vv_catalog *c, const char *fmt, ...)
{
  char what[WHAT_MAX];
  va_list ap;
  int code = sqlite3_extended_errcode (c->db) & 0xff;
  int sys = sqlite3_system_errno (c->db);
  bool os = code == SQLITE_CANTOPEN || code == SQLITE_IOERR
    || code == SQLITE_FULL;

  va_start (ap, fmt);
  vsnprintf (what, sizeof what, fmt, ap);
  va_end (ap);
  /* SQLite's own text for OS failures ("unable to open database file")
   * does not say why; errno does.
   */
  vv_error_code (code == SQLITE_BUSY || code == SQLITE_LOCKED
                 ? VV_ERR_BUSY : VV_ERR_FAILED,
                 "catalog %s: %s: %s%s%s%s", c->path, what,
                 sqlite3_errmsg (c->db), os && sys ? " (" : "",
                 os && sys ? strerror (sys) : "", os && sys ? ")" : "");
  return -1;
}

int
vv_cat_prepare (struct vv_catalog *c, const char *what, const char *sql,
                sqlite3_stmt **ret)
{
  if (sqlite3_prepare_v2 (c->db, sql, -1, ret, NULL) != SQLITE_OK) {
    *ret = NULL;
    return vv_cat_error (c, "%s", what);
  }
  return 0;
}

int
vv_cat_bind_text (sqlite3_stmt *s, int idx, const char *v)
{
  if (v == NULL)
    return sqlite3_bind_null (s, idx);
  return sqlite3_bind_text (s, idx, v, -1, SQLITE_TRANSIENT);
}

int
vv_cat_bind_int64 (sqlite3_stmt *s, int idx, int64_t v)
{
  return sqlite3_bind_int64 (s, idx, v);
}

int
vv_cat_bind_error (struct vv_catalog *c, const char *what)
{
  return vv_cat_error (c, "binding the parameters of %s", what);
}

int
vv_cat_column_text (sqlite3_stmt *s, int col, char **ret)
{
  const unsigned char *t = sqlite3_column_text (s, col);

  if (t == NULL) {
    *ret = NULL;
    /* NULL also means out of memory when the column was not NULL. */
    if (sqlite3_column_type (s, col) != SQLITE_NULL) {
      vv_error_errno (ENOMEM, "reading a catalog row");
      return -1;
    }
    return 0;
  }
  *ret = vv_strdup ((const char *) t);
  return *ret ? 0 : -1;
}

int
vv_cat_step_done (struct vv_catalog *c, sqlite3_stmt *s, const char *what)
{
  int r = sqlite3_step (s);

  if (r != SQLITE_DONE && r != SQLITE_ROW)
    return vv_cat_error (c, "%s", what);
  return 0;
}

int
vv_cat_exec_key (struct vv_catalog *c, const char *what, const char *sql,
                 const char *key)
{
  _cleanup_stmt_ sqlite3_stmt *s = NULL;

  if (vv_cat_prepare (c, what, sql, &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, key))
    return vv_cat_bind_error (c, what);
  return vv_cat_step_done (c, s, what);
}

int
vv_cat_collect_key (struct vv_catalog *c, const char *what, const char *sql,
                    const char *key, const struct vv_cat_rowtype *t,
                    void ***ret, size_t *ret_n)
{
  _cleanup_stmt_ sqlite3_stmt *s = NULL;

  if (vv_cat_prepare (c, what, sql, &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, key))
    return vv_cat_bind_error (c, what);
  return vv_cat_collect (c, s, what, t, ret, ret_n);
}

static int
exec_simple (struct vv_catalog *c, const char *sql, const char *what)
{
  if (sqlite3_exec (c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return vv_cat_error (c, "%s", what);
  return 0;
}

int
vv_cat_begin (struct vv_catalog *c, struct vv_cat_txn *t)
{
  t->c = c;
  t->open = false;
  if (exec_simple (c, "BEGIN IMMEDIATE", "starting a transaction") == -1)
    return -1;
  t->open = true;
  return 0;
}

int
vv_cat_commit (struct vv_cat_txn *t)
{
  if (exec_simple (t->c, "COMMIT", "committing a transaction") == -1)
    return -1;              /* the cleanup rolls back */
  t->open = false;
  return 0;
}

void
vv_cat_rollback (struct vv_cat_txn *t)
{
  if (t->c && t->open) {
    /* Keep the error that made us roll back; a failing ROLLBACK adds
     * nothing the caller can act on.
     */
    sqlite3_exec (t->c->db, "ROLLBACK", NULL, NULL, NULL);
    t->open = false;
  }
}

int
vv_cat_append (void ***v, size_t *n, size_t *cap, void *p)
{
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    void **nv = reallocarray (*v, ncap, sizeof *nv);
    if (nv == NULL) {
      vv_error_errno (errno, "reading catalog rows");
      return -1;
    }
    *v = nv;
    *cap = ncap;
  }
  (*v)[(*n)++] = p;
  return 0;
}

bool
vv_cat_status_is_final (const char *status)
{
  return strcmp (status, "completed") == 0 || strcmp (status, "failed") == 0
    || strcmp (status, "cancelled") == 0;
}

int
vv_cat_check_status (const char *what, const char *status)
{
  if (status && (strcmp (status, "pending") == 0
                 || strcmp (status, "running") == 0
                 || vv_cat_status_is_final (status)))
    return 0;
  vv_error_code (VV_ERR_INVALID,
                 "%s status '%s' is not one of pending, running, completed, "
                 "failed, cancelled", what, status ? status : "(null)");
  return -1;
}

/* Creates a missing catalog file readable by root only: it names every
 * tenant's domains and backups.  SQLite gives its -wal and -shm files the
 * same permissions.
 */
static int
create_private (const char *path)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

  if (fd == -1) {
    if (errno == EEXIST)
      return 0;
    vv_error_errno (errno, "cannot create catalog %s", path);
    return -1;
  }
  close (fd);
  return 0;
}

static int
set_pragmas (struct vv_catalog *c)
{
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  const char *mode;

  /* A busy handler, so a second connection (a tool reading the catalog
   * while the daemon writes) waits for locks instead of failing at once.
   */
  sqlite3_busy_timeout (c->db, 5000);

  if (vv_cat_prepare (c, "setting the journal mode",
                      "PRAGMA journal_mode = WAL", &s) == -1)
    return -1;
  if (sqlite3_step (s) != SQLITE_ROW)
    return vv_cat_error (c, "setting the journal mode");
  mode = (const char *) sqlite3_column_text (s, 0);
  if (mode == NULL || strcasecmp (mode, "wal") != 0) {
    vv_error ("catalog %s: cannot use the WAL journal (SQLite kept '%s'); "
              "put the state directory on a local filesystem",
              c->path, mode ? mode : "?");
    return -1;
  }

  /* WAL with synchronous=FULL syncs the log at every commit, so a
   * transition once committed (a backup completed, a cleanup left
   * pending, a retry time) survives a power cut.  With NORMAL the last
   * commits could be lost, and recovery would then take a completed
   * backup for an interrupted one.  The cost measured on the test
   * machine's ext4 disk: 0.21 ms a commit against 0.03 ms (a backup
   * commits a few dozen times).  Recovery still checks the target before
   * deleting what a backup left (docs/backup-engine.md).
   */
  if (exec_simple (c, "PRAGMA synchronous = FULL",
                   "setting synchronous mode") == -1
      || exec_simple (c, "PRAGMA foreign_keys = ON",
                      "enabling foreign keys") == -1)
    return -1;
  return 0;
}

struct vv_catalog *
vv_catalog_open (const char *path)
{
  struct vv_catalog *c;
  int r;

  if (path == NULL || path[0] == '\0') {
    vv_error_code (VV_ERR_INVALID, "catalog path is missing");
    return NULL;
  }
  if (create_private (path) == -1)
    return NULL;

  c = calloc (1, sizeof *c);
  if (c == NULL) {
    vv_error_errno (errno, "opening catalog %s", path);
    return NULL;
  }
  pthread_mutex_init (&c->lock, NULL);
  c->path = vv_strdup (path);
  if (c->path == NULL)
    return vv_catalog_close (c);

  r = sqlite3_open_v2 (path, &c->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                       | SQLITE_OPEN_FULLMUTEX, NULL);
  if (r != SQLITE_OK) {
    if (c->db)
      vv_cat_error (c, "opening");
    else
      vv_error ("catalog %s: opening: %s", path, sqlite3_errstr (r));
    return vv_catalog_close (c);
  }
  sqlite3_extended_result_codes (c->db, 1);

  if (set_pragmas (c) == -1 || vv_catalog_migrate (c) == -1)
    return vv_catalog_close (c);
  return c;
}

struct vv_catalog *
vv_catalog_close (struct vv_catalog *c)
{
  if (c == NULL)
    return NULL;
  /* sqlite3_close_v2 defers the close until every statement is finalized;
   * ours are all finalized by their cleanup already.
   */
  if (c->db)
    sqlite3_close_v2 (c->db);
  pthread_mutex_destroy (&c->lock);
  free (c->path);
  free (c);
  return NULL;
}

int
vv_catalog_schema_version (struct vv_catalog *c)
{
  int v;

  VV_LOCK_GUARD (&c->lock);
  if (vv_catalog_read_version (c, &v) == -1)
    return -1;
  return v;
}

int
vv_catalog_latest_schema_version (void)
{
  return vv_catalog_migrations[vv_catalog_n_migrations - 1].version;
}
