/* Shared by the catalog's source files only. */
#ifndef VV_CATALOG_INTERNAL_H
#define VV_CATALOG_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "catalog/catalog.h"
#include "util/cleanup.h"

struct vv_catalog {
  sqlite3 *db;
  char *path;
  /* SQLite serialises single calls on the shared connection, but a
   * transaction belongs to the whole connection: without this lock one
   * thread's statements could land inside another thread's BEGIN..COMMIT,
   * and sqlite3_errmsg() could describe another thread's failure.  Every
   * public function holds it for its whole run.
   */
  pthread_mutex_t lock;
};

/* Most rows a list returns when the caller gives no limit, and the most
 * it may ask for.
 */
#define VV_CATALOG_LIST_DEFAULT 100
#define VV_CATALOG_LIST_MAX 10000

/* One migration step; see migrations.c. */
struct vv_migration {
  int version;
  const char *description;
  const char *sql;
};
extern const struct vv_migration vv_catalog_migrations[];
extern const size_t vv_catalog_n_migrations;

/* Brings the schema of c up to the newest version (catalog lock held). */
int vv_catalog_migrate (struct vv_catalog *c);
/* Version now in the file: 0 for a file without our tables. */
int vv_catalog_read_version (struct vv_catalog *c, int *ret);

/* Reports "catalog <path>: <what>: <sqlite message>" and returns -1.  The
 * code is VV_ERR_BUSY when SQLite gave up waiting for a lock.
 */
int vv_cat_error (struct vv_catalog *c, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* sqlite3_prepare_v2 that reports failure with what names the query. */
int vv_cat_prepare (struct vv_catalog *c, const char *what, const char *sql,
                    sqlite3_stmt **ret);

static inline void
vv_cat_cleanup_stmt (sqlite3_stmt **s)
{
  if (*s)
    sqlite3_finalize (*s);
}
#define _cleanup_stmt_ _cleanup_ (vv_cat_cleanup_stmt)

/* Binding: NULL strings become SQL NULL; SQLite copies the text. */
int vv_cat_bind_text (sqlite3_stmt *s, int idx, const char *v);
int vv_cat_bind_int64 (sqlite3_stmt *s, int idx, int64_t v);
/* Reports a failed bind (only out of memory or a range bug). */
int vv_cat_bind_error (struct vv_catalog *c, const char *what);

/* A copy of text column col, NULL for SQL NULL; -1 when out of memory. */
int vv_cat_column_text (sqlite3_stmt *s, int col, char **ret);

/* The lookup every *_get does: prepares sql, binds ?1 = key and
 * ?2 = owner_filter, steps once.  1 with *ret on the row; 0 when no row
 * matched (nothing reported: the caller says what was not found); -1 with
 * the error reported.
 */
int vv_cat_select_one (struct vv_catalog *c, const char *what,
                       const char *sql, const char *key,
                       int64_t owner_filter, sqlite3_stmt **ret);

/* Runs a statement that returns no rows; -1 with the error reported. */
int vv_cat_step_done (struct vv_catalog *c, sqlite3_stmt *s,
                      const char *what);

/* Transactions.  BEGIN IMMEDIATE takes the write lock up front, so a
 * second connection waits in busy_timeout instead of failing with
 * SQLITE_BUSY when its read lock cannot be upgraded.  A transaction still
 * open when its variable leaves scope is rolled back.
 */
struct vv_cat_txn {
  struct vv_catalog *c;
  bool open;
};
int vv_cat_begin (struct vv_catalog *c, struct vv_cat_txn *t);
int vv_cat_commit (struct vv_cat_txn *t);
void vv_cat_rollback (struct vv_cat_txn *t);
#define _cleanup_txn_ _cleanup_ (vv_cat_rollback)

/* Appends p to a growing array of pointers; -1 when out of memory. */
int vv_cat_append (void ***v, size_t *n, size_t *cap, void *p);

/* "completed", "failed" and "cancelled": the statuses nothing follows. */
bool vv_cat_status_is_final (const char *status);
/* Checks status against the five known ones (VV_ERR_INVALID if not). */
int vv_cat_check_status (const char *what, const char *status);

/* The pluralised noun for messages: "1 backup", "3 backups". */
#define VV_PLURAL(n, word) (n), ((n) == 1 ? word : word "s")

#endif
