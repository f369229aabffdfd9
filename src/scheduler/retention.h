/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Retention: which of an instance's backups to delete, and why.
 *
 * A pure function of the instance's backups (plain structs, as read from
 * the catalog), the rules, and "now": no I/O, no catalog, no clock.  The
 * rules are described precisely, with examples, in docs/retention.md and
 * tested by tables in tests/test-retention.c and tests/data/retention/.
 *
 * Above every rule: a backup that a kept backup depends on (its parent,
 * the parent's parent, ... up to the full) is kept, so deleting what
 * vv_retention_decide returns never leaves an incremental without its
 * base.
 */
#ifndef VV_SCHEDULER_RETENTION_H
#define VV_SCHEDULER_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Limits on what a caller controls. */
#define VV_RETENTION_DEFAULT 3          /* chains kept */
#define VV_MANUAL_LIMIT_DEFAULT 4
#define VV_RETENTION_COUNT_MAX 10000    /* any count below */
#define VV_KEEP_RULES_MAX 16
#define VV_KEEP_EVERY_MAX 1000          /* the 6 of "6h:4" */
#define VV_DURATION_MAX_SECONDS ((int64_t) 100 * 366 * 86400)
#define VV_RETENTION_INPUT_MAX 100000   /* backups of one instance */

/* ---- one backup, as retention sees it ---- */

enum vv_ret_type { VV_RET_FULL = 0, VV_RET_INCREMENTAL };

enum vv_ret_status {
  VV_RET_COMPLETED = 0,
  VV_RET_PENDING,               /* in flight: never deleted, and what it */
  VV_RET_RUNNING,               /* is based on is kept */
  VV_RET_FAILED,                /* failed and cancelled backups are not */
  VV_RET_CANCELLED,             /* retention's business: ignored */
};

enum vv_ret_origin { VV_RET_POLICY = 0, VV_RET_MANUAL };

struct vv_ret_backup {
  const char *id;
  const char *chain_id;
  const char *parent_id;        /* NULL for a full */
  enum vv_ret_type type;
  enum vv_ret_status status;
  time_t created_at;
  enum vv_ret_origin origin;
  bool protected;
  const char *policy;           /* the policy that made it; NULL for manual
                                 * ones or when that policy was deleted */
  uint64_t seq;                 /* creation order among backups made in the
                                 * same second (larger is newer); 0 when
                                 * unknown.  Times have whole seconds. */
};

/* The catalog's words: "full"/"incremental", "completed", ...,
 * "policy"/"manual".  -1 with VV_ERR_INVALID naming the field otherwise.
 */
int vv_ret_type_parse (const char *s, enum vv_ret_type *ret);
int vv_ret_status_parse (const char *s, enum vv_ret_status *ret);
int vv_ret_origin_parse (const char *s, enum vv_ret_origin *ret);

/* ---- the rules ---- */

enum vv_keep_unit {
  VV_KEEP_HOUR = 0,             /* h */
  VV_KEEP_DAY,                  /* d */
  VV_KEEP_WEEK,                 /* w, Monday to Sunday */
  VV_KEEP_MONTH,                /* M, calendar month */
  VV_KEEP_YEAR,                 /* y, calendar year */
};

/* "1d:7": the newest automatic backup of each of the 7 newest days that
 * have any.  Buckets are UTC (docs/retention.md).
 */
struct vv_keep_rule {
  unsigned every;               /* 1..VV_KEEP_EVERY_MAX units per bucket */
  enum vv_keep_unit unit;
  unsigned count;               /* 1..VV_RETENTION_COUNT_MAX buckets */
};

struct vv_retention_rules {
  /* The policy whose automatic backups these rules manage; NULL when the
   * instance has none (then only the manual limit applies).  Automatic
   * backups of another (or a deleted) policy are left alone.
   */
  const char *policy;
  unsigned retention;           /* chains, 1..VV_RETENTION_COUNT_MAX */
  size_t n_keep;
  struct vv_keep_rule keep[VV_KEEP_RULES_MAX];
  int64_t max_age;              /* seconds; 0 = none */
  unsigned max_backups;         /* automatic backups; 0 = no cap */
  unsigned manual_limit;        /* manual backups; 0 = no limit */
};

/* The defaults: retention 3, manual limit 4, nothing else. */
void vv_retention_rules_init (struct vv_retention_rules *r,
                              const char *policy);
/* Checks every range; -1 with VV_ERR_INVALID naming the field. */
int vv_retention_rules_check (const struct vv_retention_rules *r);

/* ---- parsing and formatting what users write ---- */

/* "1d:7,1w:4,1M:12" (also "6h:4"; spaces around items are allowed).
 * Replaces r->keep and r->n_keep only on success.  Errors name the rule:
 * "keep rule '1q:3': unknown unit 'q'; use h, d, w, M or y".
 */
int vv_parse_keep_rules (const char *s, struct vv_retention_rules *r);
/* One interval, "1d" or "1M", as in the API's {"interval":"1d"}. */
int vv_parse_keep_interval (const char *s, struct vv_keep_rule *ret);
/* "1d:7"; ret must hold VV_KEEP_RULE_STR_MAX bytes. */
#define VV_KEEP_RULE_STR_MAX 32
void vv_format_keep_rule (const struct vv_keep_rule *k, char *ret);
void vv_format_keep_interval (const struct vv_keep_rule *k, char *ret);

/* "90d", "36h", "2w" -> seconds (1 second .. 100 years).  Months and
 * years have no fixed length and "m" is too easily read as months, so
 * only h, d and w are accepted.  field names the value in errors:
 * "max age '6M': ...".
 */
int vv_parse_duration (const char *field, const char *s, int64_t *ret);
/* The largest unit that divides it exactly: 7776000 -> "90d"; seconds
 * that are not whole hours print as "5400s".  ret: VV_DURATION_STR_MAX.
 */
#define VV_DURATION_STR_MAX 32
void vv_format_duration (int64_t seconds, char *ret);

/* A whole decimal number from min to max (no sign, no spaces):
 * "retention '-1': must be a whole number from 1 to 10000".
 */
int vv_parse_count (const char *field, const char *s,
                    unsigned min, unsigned max, unsigned *ret);

/* ---- the decision ---- */

#define VV_RETENTION_REASON_MAX 256

struct vv_retention_delete {
  const char *id;               /* points into the input backups */
  size_t index;                 /* of the backup in the input */
  char reason[VV_RETENTION_REASON_MAX];
};

/* The completed backups to delete, in an order that is safe to follow
 * one by one: every backup comes before its parent.  *ret_n may be 0 (and
 * *ret NULL).  Fails (VV_ERR_INVALID) on inconsistent input, deleting
 * nothing: duplicate ids, a full with a parent, an incremental without
 * one, a parent loop, more than VV_RETENTION_INPUT_MAX backups, or rules
 * out of range.  Free the result with free().
 */
int vv_retention_decide (const struct vv_ret_backup *backups, size_t n,
                         const struct vv_retention_rules *rules, time_t now,
                         struct vv_retention_delete **ret, size_t *ret_n);

#endif
