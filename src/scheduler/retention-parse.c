/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Retention's words: parsing and checking what users write (keep rules,
 * durations, counts) and the catalog's words for a backup.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/retention.h"
#include "util/error.h"

#define KEEP_RULES_STR_MAX 1024

/* ------------------------------------------------------------------ */
/* Words of the catalog                                                */

int
vv_ret_type_parse (const char *s, enum vv_ret_type *ret)
{
  if (s && strcmp (s, "full") == 0)
    *ret = VV_RET_FULL;
  else if (s && strcmp (s, "incremental") == 0)
    *ret = VV_RET_INCREMENTAL;
  else {
    vv_error_code (VV_ERR_INVALID,
                   "backup type '%s': use full or incremental",
                   s ? s : "(null)");
    return -1;
  }
  return 0;
}

int
vv_ret_status_parse (const char *s, enum vv_ret_status *ret)
{
  static const char *const names[] = {
    [VV_RET_COMPLETED] = "completed", [VV_RET_PENDING] = "pending",
    [VV_RET_RUNNING] = "running", [VV_RET_FAILED] = "failed",
    [VV_RET_CANCELLED] = "cancelled",
  };

  for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
    if (strcmp (s, names[i]) == 0) {
      *ret = i;
      return 0;
    }
  vv_error_code (VV_ERR_INVALID, "backup status '%s': use completed, "
                 "pending, running, failed or cancelled", s ? s : "(null)");
  return -1;
}

int
vv_ret_origin_parse (const char *s, enum vv_ret_origin *ret)
{
  if (s && strcmp (s, "policy") == 0)
    *ret = VV_RET_POLICY;
  else if (s && strcmp (s, "manual") == 0)
    *ret = VV_RET_MANUAL;
  else {
    vv_error_code (VV_ERR_INVALID, "backup origin '%s': use policy or manual",
                   s ? s : "(null)");
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Parsing what users write                                            */

static bool
is_digit (char c)
{
  return c >= '0' && c <= '9';
}

/* Leading decimal digits of s[0..len) as a number (saturating at
 * UINT32_MAX, so "99999999999d" is "too large" rather than wrapping).
 */
static size_t
scan_number (const char *s, size_t len, uint64_t *ret)
{
  uint64_t v = 0;
  size_t i;

  for (i = 0; i < len && is_digit (s[i]); i++) {
    v = v * 10 + (s[i] - '0');
    if (v > UINT32_MAX)
      v = UINT32_MAX;
  }
  *ret = v;
  return i;
}

int
vv_parse_count (const char *field, const char *s,
                unsigned min, unsigned max, unsigned *ret)
{
  uint64_t v;
  size_t len = s ? strlen (s) : 0;

  if (len == 0 || scan_number (s, len, &v) != len || v < min || v > max) {
    vv_error_code (VV_ERR_INVALID,
                   "%s '%s': must be a whole number from %u to %u",
                   field, s ? s : "", min, max);
    return -1;
  }
  *ret = v;
  return 0;
}

static const char keep_units[] = "hdwMy"; /* indexed by vv_keep_unit */

/* An interval, s[0..len), inside `what '<whole>'` for messages. */
static int
parse_interval (const char *what, const char *whole,
                const char *s, size_t len, struct vv_keep_rule *ret)
{
  uint64_t every;
  size_t nd = scan_number (s, len, &every);
  const char *u;

  if (nd == 0) {
    vv_error_code (VV_ERR_INVALID, "%s '%s': the interval must be a number "
                   "and a unit, like 1d", what, whole);
    return -1;
  }
  if (nd == len) {
    vv_error_code (VV_ERR_INVALID, "%s '%s': missing unit after '%.*s'; "
                   "use h, d, w, M or y", what, whole, (int) nd, s);
    return -1;
  }
  u = len - nd == 1 ? strchr (keep_units, s[nd]) : NULL;
  if (u == NULL || s[nd] == '\0') {
    vv_error_code (VV_ERR_INVALID, "%s '%s': unknown unit '%.*s'; "
                   "use h, d, w, M or y", what, whole,
                   (int) (len - nd), s + nd);
    return -1;
  }
  if (every < 1 || every > VV_KEEP_EVERY_MAX) {
    vv_error_code (VV_ERR_INVALID, "%s '%s': the interval must be 1 to %u "
                   "units, like 1%c", what, whole, VV_KEEP_EVERY_MAX, *u);
    return -1;
  }
  ret->every = every;
  ret->unit = u - keep_units;
  return 0;
}

int
vv_parse_keep_interval (const char *s, struct vv_keep_rule *ret)
{
  struct vv_keep_rule k = { .count = 1 };

  if (s == NULL)
    s = "";
  if (parse_interval ("keep interval", s, s, strlen (s), &k) == -1)
    return -1;
  ret->every = k.every;
  ret->unit = k.unit;
  return 0;
}

static bool
is_blank (char c)
{
  return c == ' ' || c == '\t';
}

/* One "1d:7", s[0..len) trimmed, into *ret. */
static int
parse_keep_rule (const char *s, size_t len, struct vv_keep_rule *ret)
{
  char item[KEEP_RULES_STR_MAX + 1];
  const char *colon;
  uint64_t count;
  size_t clen;

  memcpy (item, s, len);
  item[len] = '\0';
  colon = memchr (item, ':', len);
  if (colon == NULL) {
    vv_error_code (VV_ERR_INVALID, "keep rule '%s': missing ':count' "
                   "after the interval, like 1d:7", item);
    return -1;
  }
  if (parse_interval ("keep rule", item, item, colon - item, ret) == -1)
    return -1;
  clen = len - (colon + 1 - item);
  if (clen == 0 || scan_number (colon + 1, clen, &count) != clen
      || count < 1 || count > VV_RETENTION_COUNT_MAX) {
    vv_error_code (VV_ERR_INVALID, "keep rule '%s': the count must be a "
                   "whole number from 1 to %u", item,
                   VV_RETENTION_COUNT_MAX);
    return -1;
  }
  ret->count = count;
  return 0;
}

int
vv_parse_keep_rules (const char *s, struct vv_retention_rules *r)
{
  struct vv_keep_rule keep[VV_KEEP_RULES_MAX];
  size_t n = 0;
  const char *p;

  if (s == NULL)
    s = "";
  if (strlen (s) > KEEP_RULES_STR_MAX) {
    vv_error_code (VV_ERR_INVALID, "keep rules: longer than %d characters",
                   KEEP_RULES_STR_MAX);
    return -1;
  }
  for (p = s; *p && is_blank (*p); p++)
    ;
  /* Nothing at all means no keep rules. */
  while (*p) {
    const char *end = strchrnul (p, ',');
    const char *a = p, *b = end;

    while (a < b && is_blank (*a))
      a++;
    while (b > a && is_blank (b[-1]))
      b--;
    if (a == b) {
      vv_error_code (VV_ERR_INVALID, "keep rules '%s': an empty rule; "
                     "write them like 1d:7,1w:4", s);
      return -1;
    }
    if (n == VV_KEEP_RULES_MAX) {
      vv_error_code (VV_ERR_INVALID, "keep rules '%s': more than %d rules",
                     s, VV_KEEP_RULES_MAX);
      return -1;
    }
    if (parse_keep_rule (a, b - a, &keep[n]) == -1)
      return -1;
    for (size_t i = 0; i < n; i++)
      if (keep[i].every == keep[n].every && keep[i].unit == keep[n].unit) {
        vv_error_code (VV_ERR_INVALID, "keep rule '%.*s': interval %u%c is "
                       "given twice", (int) (b - a), a, keep[n].every,
                       keep_units[keep[n].unit]);
        return -1;
      }
    n++;
    if (*end == '\0')
      break;
    p = end + 1;
    if (*p == '\0') {
      vv_error_code (VV_ERR_INVALID, "keep rules '%s': an empty rule after "
                     "the last ','", s);
      return -1;
    }
  }
  memcpy (r->keep, keep, n * sizeof keep[0]);
  r->n_keep = n;
  return 0;
}

void
vv_format_keep_interval (const struct vv_keep_rule *k, char *ret)
{
  snprintf (ret, VV_KEEP_RULE_STR_MAX, "%u%c", k->every,
            k->unit <= VV_KEEP_YEAR ? keep_units[k->unit] : '?');
}

void
vv_format_keep_rule (const struct vv_keep_rule *k, char *ret)
{
  snprintf (ret, VV_KEEP_RULE_STR_MAX, "%u%c:%u", k->every,
            k->unit <= VV_KEEP_YEAR ? keep_units[k->unit] : '?', k->count);
}

int
vv_parse_duration (const char *field, const char *s, int64_t *ret)
{
  uint64_t v;
  size_t len, nd;
  int64_t unit;

  if (s == NULL)
    s = "";
  len = strlen (s);
  nd = scan_number (s, len, &v);
  if (nd == 0 || nd == len) {
    vv_error_code (VV_ERR_INVALID, "%s '%s': must be a number and a unit, "
                   "like 90d (h, d or w)", field, s);
    return -1;
  }
  if (len - nd == 1 && (s[nd] == 'M' || s[nd] == 'y')) {
    vv_error_code (VV_ERR_INVALID, "%s '%s': months and years have no fixed "
                   "length; use days or weeks, like 180d", field, s);
    return -1;
  }
  if (len - nd == 1 && s[nd] == 'h')
    unit = 3600;
  else if (len - nd == 1 && s[nd] == 'd')
    unit = 86400;
  else if (len - nd == 1 && s[nd] == 'w')
    unit = 7 * 86400;
  else {
    vv_error_code (VV_ERR_INVALID, "%s '%s': unknown unit '%s'; use h, d "
                   "or w", field, s, s + nd);
    return -1;
  }
  if (v == 0 || (int64_t) v > VV_DURATION_MAX_SECONDS / unit) {
    vv_error_code (VV_ERR_INVALID, "%s '%s': must be from 1%c to %" PRId64
                   "d", field, s, s[nd], VV_DURATION_MAX_SECONDS / 86400);
    return -1;
  }
  *ret = v * unit;
  return 0;
}

void
vv_format_duration (int64_t seconds, char *ret)
{
  if (seconds > 0 && seconds % 86400 == 0)
    snprintf (ret, VV_DURATION_STR_MAX, "%" PRId64 "d", seconds / 86400);
  else if (seconds > 0 && seconds % 3600 == 0)
    snprintf (ret, VV_DURATION_STR_MAX, "%" PRId64 "h", seconds / 3600);
  else
    snprintf (ret, VV_DURATION_STR_MAX, "%" PRId64 "s", seconds);
}

/* ------------------------------------------------------------------ */
/* Rules                                                               */

void
vv_retention_rules_init (struct vv_retention_rules *r, const char *policy)
{
  memset (r, 0, sizeof *r);
  r->policy = policy;
  r->retention = VV_RETENTION_DEFAULT;
  r->manual_limit = VV_MANUAL_LIMIT_DEFAULT;
}

int
vv_retention_rules_check (const struct vv_retention_rules *r)
{
  if (r->retention < 1 || r->retention > VV_RETENTION_COUNT_MAX) {
    vv_error_code (VV_ERR_INVALID, "retention %u: must be from 1 to %u "
                   "chains", r->retention, VV_RETENTION_COUNT_MAX);
    return -1;
  }
  if (r->n_keep > VV_KEEP_RULES_MAX) {
    vv_error_code (VV_ERR_INVALID, "keep rules: %zu rules, at most %d",
                   r->n_keep, VV_KEEP_RULES_MAX);
    return -1;
  }
  for (size_t i = 0; i < r->n_keep; i++) {
    const struct vv_keep_rule *k = &r->keep[i];

    if (k->every < 1 || k->every > VV_KEEP_EVERY_MAX
        || k->unit > VV_KEEP_YEAR || k->count < 1
        || k->count > VV_RETENTION_COUNT_MAX) {
      vv_error_code (VV_ERR_INVALID, "keep rule %zu: interval must be 1 to "
                     "%u h, d, w, M or y and count 1 to %u", i + 1,
                     VV_KEEP_EVERY_MAX, VV_RETENTION_COUNT_MAX);
      return -1;
    }
  }
  if (r->max_age < 0 || r->max_age > VV_DURATION_MAX_SECONDS) {
    vv_error_code (VV_ERR_INVALID, "max age %" PRId64 " s: must be from 0 "
                   "(none) to %" PRId64 " s", r->max_age,
                   (int64_t) VV_DURATION_MAX_SECONDS);
    return -1;
  }
  if (r->max_backups > VV_RETENTION_COUNT_MAX) {
    vv_error_code (VV_ERR_INVALID, "max backups %u: must be from 0 (no cap) "
                   "to %u", r->max_backups, VV_RETENTION_COUNT_MAX);
    return -1;
  }
  if (r->manual_limit > VV_RETENTION_COUNT_MAX) {
    vv_error_code (VV_ERR_INVALID, "manual limit %u: must be from 0 (no "
                   "limit) to %u", r->manual_limit, VV_RETENTION_COUNT_MAX);
    return -1;
  }
  return 0;
}
