/* SPDX-License-Identifier: LGPL-2.1-or-later */
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


/* Runs a statement that returns no rows; -1 with the error reported. */
int vv_cat_step_done (struct vv_catalog *c, sqlite3_stmt *s,
                      const char *what);
/* Prepares sql, binds ?1 = key and runs it as vv_cat_step_done does:
 * the deletes and updates keyed by one name or id.
 */
int vv_cat_exec_key (struct vv_catalog *c, const char *what,
                     const char *sql, const char *key);

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

/* The row count a list returns for a caller's limit (0 = the default). */
static inline size_t
vv_cat_list_limit (size_t limit)
{
  if (limit == 0)
    return VV_CATALOG_LIST_DEFAULT;
  return limit > VV_CATALOG_LIST_MAX ? VV_CATALOG_LIST_MAX : limit;
}

/* ---- rows into records, driven by a table of columns (catalog-rows.c) */

/* How one column is stored into its field. */
enum vv_cat_kind {
  VV_CAT_TEXT,                  /* char *, a copy; NULL for SQL NULL */
  VV_CAT_INT64,                 /* int64_t */
  VV_CAT_UINT64,                /* uint64_t */
  VV_CAT_INT,                   /* int */
  VV_CAT_UINT,                  /* unsigned */
  VV_CAT_SIZE,                  /* size_t */
  VV_CAT_BOOL,                  /* bool: any integer but 0 is true */
  VV_CAT_DOUBLE,                /* double */
};
#define VV_CAT_CTYPE_TEXT char *
#define VV_CAT_CTYPE_INT64 int64_t
#define VV_CAT_CTYPE_UINT64 uint64_t
#define VV_CAT_CTYPE_INT int
#define VV_CAT_CTYPE_UINT unsigned
#define VV_CAT_CTYPE_SIZE size_t
#define VV_CAT_CTYPE_BOOL bool
#define VV_CAT_CTYPE_DOUBLE double

struct vv_cat_col {
  enum vv_cat_kind kind;
  size_t offset;
};

/* The column of kind KIND (TEXT, INT64, ...) stored in field FIELD of
 * struct REC.  The reader writes through the offset alone, so a field
 * whose type does not match the kind must not compile: _Generic without
 * a default rejects it.
 */
#define VV_CAT_COL(rec, kind, field)                                    \
  { VV_CAT_##kind,                                                      \
    _Generic (((struct rec *) 0)->field,                                \
              VV_CAT_CTYPE_##kind: offsetof (struct rec, field)) }

/* A record type as the catalog reads it: cols[i] is column i of every
 * query that reads it, so its SELECT lists the columns in that order.
 */
struct vv_cat_rowtype {
  const char *noun;             /* "a backup", for messages */
  size_t size;
  const struct vv_cat_col *cols;
  size_t n_cols;
  /* Frees a record and what it holds (NULL-safe).  NULL for records only
   * ever held inside another one, which are read with vv_cat_read_row.
   */
  void (*free) (void *rec);
  /* Optional: fills what the row cannot hold (a backup's disks, from a
   * second query); the catalog lock is held.
   */
  int (*finish) (struct vv_catalog *c, void *rec);
};

/* Defines the row type NAME for struct REC from the column table COLS.
 * REC_free takes a struct REC *, and calling it through a pointer to a
 * function of void * would be undefined, hence the small wrapper.
 */
#define VV_CAT_ROWTYPE(name, rec, noun, cols, finish)                   \
  static void                                                           \
  name##_free (void *p)                                                 \
  {                                                                     \
    rec##_free (p);                                                     \
  }                                                                     \
  static const struct vv_cat_rowtype name = {                           \
    noun, sizeof (struct rec), cols, sizeof (cols) / sizeof ((cols)[0]), \
    name##_free, finish                                                 \
  }

/* Stores the columns of the current row of s into rec (zeroed by the
 * caller).  On failure, the text copied so far stays in rec for its
 * free.  -1 with the error reported.
 */
int vv_cat_read_row (const struct vv_cat_rowtype *t, sqlite3_stmt *s,
                     void *rec);
/* A new record from the current row of s (finish included), or NULL
 * with the error reported.
 */
void *vv_cat_read_new (struct vv_catalog *c, const struct vv_cat_rowtype *t,
                       sqlite3_stmt *s);
/* Steps s (prepared and bound) to its end and returns a record per row
 * in *ret (an array of t's records; NULL when there is none); what names
 * the query in messages.  *ret and *ret_n are untouched on failure.
 */
int vv_cat_collect (struct vv_catalog *c, sqlite3_stmt *s, const char *what,
                    const struct vv_cat_rowtype *t,
                    void ***ret, size_t *ret_n);
/* The list that many *_list do: prepares sql, binds ?1 = key (may be
 * NULL) and collects the rows as vv_cat_collect does.  The caller holds
 * the catalog's lock.
 */
int vv_cat_collect_key (struct vv_catalog *c, const char *what,
                        const char *sql, const char *key,
                        const struct vv_cat_rowtype *t,
                        void ***ret, size_t *ret_n);
/* The lookup every *_get does: prepares sql, binds ?1 = key (and ?2 =
 * owner_filter when sql has a second parameter), and returns a new
 * record of t from the first row.  When no row matched, not_found (key)
 * reports what is missing in the words of the caller; NULL then, and
 * on any other failure, with the error reported.  what names the lookup
 * in messages.  The caller holds the catalog's lock.
 */
void *vv_cat_get_row (struct vv_catalog *c, const struct vv_cat_rowtype *t,
                      const char *what, const char *sql, const char *key,
                      int64_t owner_filter,
                      int (*not_found) (const char *key));
/* Frees n records of type t and the array (NULL-safe). */
void vv_cat_free_rows (const struct vv_cat_rowtype *t, void **v, size_t n);

/* Defines the public REC##s_free (v, n) of catalog.h over row type T. */
#define VV_CAT_DEFINE_RECS_FREE(rec, t)                                 \
  void                                                                  \
  rec##s_free (struct rec **v, size_t n)                                \
  {                                                                     \
    vv_cat_free_rows (&(t), (void **) v, n);                            \
  }

/* "completed", "failed" and "cancelled": the statuses nothing follows. */
bool vv_cat_status_is_final (const char *status);
/* Checks status against the five known ones (VV_ERR_INVALID if not). */
int vv_cat_check_status (const char *what, const char *status);

/* The pluralised noun for messages: "1 backup", "3 backups". */
#define VV_PLURAL(n, word) (n), ((n) == 1 ? word : word "s")

#endif
