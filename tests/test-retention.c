/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Retention: data-driven scenarios, a simulated fortnight of daily runs,
 * parse errors, and a property check over random chains and rules.
 *
 * Each tests/data/retention/<case>.scenario lists backups, rules and
 * "now"; the sibling <case>.expect holds the deletions, one
 * "delete <id>: <reason>" line each in the order returned, or
 * "error: <message>".  VIRTVAULT_REGENERATE=1 rewrites every .expect with
 * what the code says now (then review the diff before committing it).
 *
 * Scenario lines ('#' starts a comment):
 *   rules policy=NAME|- retention=N keep=1d:7,1w:4 max-age=90d
 *         max-backups=N manual-limit=N     (all optional; defaults as in
 *                                           vv_retention_rules_init)
 *   now 2026-11-30T12:00:00Z
 *   b ID CHAIN PARENT|- TIME ORIGIN [protected] [STATUS]
 *     ORIGIN is manual, policy:NAME, or policy (its policy was deleted);
 *     PARENT - makes a full; STATUS defaults to completed.
 *   series NAME START STEP COUNT MAX-CHAIN ORIGIN
 *     COUNT backups STEP apart (h/d/w) from START, a full then MAX-CHAIN
 *     incrementals per chain: ids bk-NAME-0001..., chains ch-NAME-0001...
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/retention.h"
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

#define MIN_CASES 12
#define MAX_B 4096

/* A list of backups that owns its strings. */
struct blist {
  size_t n;
  struct vv_ret_backup b[MAX_B];
  char *strs[MAX_B * 4];
  size_t n_strs;
};

static const char *
keep_str (struct blist *l, const char *s)
{
  char *d;

  if (s == NULL)
    return NULL;
  CHECK (l->n_strs < sizeof l->strs / sizeof l->strs[0]);
  d = strdup (s);
  CHECK (d);
  l->strs[l->n_strs++] = d;
  return d;
}

static void
blist_clear (struct blist *l)
{
  for (size_t i = 0; i < l->n_strs; i++)
    free (l->strs[i]);
  l->n_strs = 0;
  l->n = 0;
}

static struct vv_ret_backup *
blist_add (struct blist *l, const char *id, const char *chain,
           const char *parent, time_t t, enum vv_ret_origin origin,
           const char *policy)
{
  struct vv_ret_backup *b;

  CHECK (l->n < MAX_B);
  b = &l->b[l->n++];
  memset (b, 0, sizeof *b);
  b->id = keep_str (l, id);
  b->chain_id = keep_str (l, chain);
  b->parent_id = keep_str (l, parent);
  b->type = parent ? VV_RET_INCREMENTAL : VV_RET_FULL;
  b->status = VV_RET_COMPLETED;
  b->created_at = t;
  b->origin = origin;
  b->policy = keep_str (l, policy);
  return b;
}

static ssize_t
find (const struct vv_ret_backup *b, size_t n, const char *id)
{
  for (size_t i = 0; id && i < n; i++)
    if (strcmp (b[i].id, id) == 0)
      return i;
  return -1;
}

static bool
ignored (const struct vv_ret_backup *b)
{
  return b->status == VV_RET_FAILED || b->status == VV_RET_CANCELLED;
}

/* What must hold for any input: nothing kept loses an ancestor, nothing
 * protected, in flight or ignored is deleted, the order is children
 * first, and a second run over what is left deletes nothing more.
 */
static void
check_invariants (const struct vv_ret_backup *b, size_t n,
                  const struct vv_retention_rules *r, time_t now,
                  const struct vv_retention_delete *d, size_t nd,
                  const char *what)
{
  _cleanup_free_ ssize_t *pos = calloc (n ? n : 1, sizeof *pos);
  _cleanup_free_ struct vv_ret_backup *left = calloc (n ? n : 1,
                                                      sizeof *left);
  _cleanup_free_ struct vv_retention_delete *d2 = NULL;
  size_t n_left = 0, nd2 = 99;

  CHECK (pos && left);
  for (size_t i = 0; i < n; i++)
    pos[i] = -1;
  for (size_t k = 0; k < nd; k++) {
    size_t i = d[k].index;

    CHECK (i < n);
    CHECK (d[k].id == b[i].id);
    CHECK (pos[i] == -1);
    pos[i] = k;
    if (b[i].status != VV_RET_COMPLETED || b[i].protected) {
      fprintf (stderr, "%s: deletes %s (protected %d, status %d)\n", what,
               b[i].id, b[i].protected, (int) b[i].status);
      exit (EXIT_FAILURE);
    }
    CHECK (d[k].reason[0] != '\0');
  }
  for (size_t i = 0; i < n; i++) {
    size_t steps = 0;

    if (ignored (&b[i]))
      continue;
    for (ssize_t j = find (b, n, b[i].parent_id); j >= 0;
         j = find (b, n, b[j].parent_id)) {
      CHECK (++steps <= n);
      if (pos[j] >= 0 && (pos[i] < 0 || pos[i] > pos[j])) {
        fprintf (stderr, "%s: %s deletes %s, an ancestor of %s\n", what,
                 pos[i] < 0 ? "kept backup, but" : "wrong order:",
                 b[j].id, b[i].id);
        exit (EXIT_FAILURE);
      }
    }
  }

  for (size_t i = 0; i < n; i++)
    if (pos[i] < 0)
      left[n_left++] = b[i];
  CHECK (vv_retention_decide (left, n_left, r, now, &d2, &nd2) == 0);
  if (nd2 != 0) {
    fprintf (stderr, "%s: a second run deletes %zu more, first %s: %s\n",
             what, nd2, d2[0].id, d2[0].reason);
    exit (EXIT_FAILURE);
  }
}

/* ------------------------------------------------------------------ */
/* Data-driven scenarios                                               */

static const char *
data_dir (char *buf, size_t len)
{
  const char *top = getenv ("abs_top_srcdir");
  const char *srcdir = getenv ("srcdir");

  if (top && *top)
    snprintf (buf, len, "%s/tests/data/retention", top);
  else
    snprintf (buf, len, "%s/data/retention", srcdir && *srcdir ? srcdir : ".");
  return buf;
}

static int
parse_origin (struct blist *l, const char *s, enum vv_ret_origin *origin,
              const char **policy)
{
  *policy = NULL;
  if (strcmp (s, "manual") == 0)
    *origin = VV_RET_MANUAL;
  else if (strcmp (s, "policy") == 0)
    *origin = VV_RET_POLICY;
  else if (strncmp (s, "policy:", 7) == 0) {
    *origin = VV_RET_POLICY;
    *policy = keep_str (l, s + 7);
  }
  else
    return -1;
  return 0;
}

static int
parse_rules (struct blist *l, char *args, struct vv_retention_rules *r)
{
  char *save = NULL;

  for (char *w = strtok_r (args, " \t", &save); w;
       w = strtok_r (NULL, " \t", &save)) {
    char *eq = strchr (w, '=');

    if (eq == NULL)
      return -1;
    *eq++ = '\0';
    if (strcmp (w, "policy") == 0)
      r->policy = strcmp (eq, "-") ? keep_str (l, eq) : NULL;
    else if (strcmp (w, "retention") == 0) {
      if (vv_parse_count ("retention", eq, 1, VV_RETENTION_COUNT_MAX,
                          &r->retention) == -1)
        return -1;
    }
    else if (strcmp (w, "keep") == 0) {
      if (vv_parse_keep_rules (eq, r) == -1)
        return -1;
    }
    else if (strcmp (w, "max-age") == 0) {
      if (vv_parse_duration ("max age", eq, &r->max_age) == -1)
        return -1;
    }
    else if (strcmp (w, "max-backups") == 0) {
      if (vv_parse_count ("max backups", eq, 0, VV_RETENTION_COUNT_MAX,
                          &r->max_backups) == -1)
        return -1;
    }
    else if (strcmp (w, "manual-limit") == 0) {
      if (vv_parse_count ("manual limit", eq, 0, VV_RETENTION_COUNT_MAX,
                          &r->manual_limit) == -1)
        return -1;
    }
    else
      return -1;
  }
  return 0;
}

static int
parse_series (struct blist *l, char *args)
{
  char name[64], start[64], step[16], origin_s[64];
  unsigned count, max_chain;
  enum vv_ret_origin origin;
  const char *policy;
  int64_t step_s;
  time_t t;
  char id[96], chain[96], parent[96] = "";
  unsigned n_chain = 0, pos = 0;

  if (sscanf (args, "%63s %63s %15s %u %u %63s", name, start, step, &count,
              &max_chain, origin_s) != 6
      || vv_parse_time_utc (start, &t) == -1
      || vv_parse_duration ("step", step, &step_s) == -1
      || parse_origin (l, origin_s, &origin, &policy) == -1)
    return -1;
  for (unsigned k = 1; k <= count; k++, t += step_s) {
    if (n_chain == 0 || pos == max_chain) {
      n_chain++;
      pos = 0;
      snprintf (chain, sizeof chain, "ch-%s-%04u", name, n_chain);
    }
    else
      pos++;
    snprintf (id, sizeof id, "bk-%s-%04u", name, k);
    blist_add (l, id, chain, pos ? parent : NULL, t, origin, policy);
    memcpy (parent, id, sizeof id);
  }
  return 0;
}

static int
parse_backup (struct blist *l, char *args)
{
  char *save = NULL;
  char *w[10];
  size_t nw = 0;
  enum vv_ret_origin origin;
  const char *policy;
  struct vv_ret_backup *b;
  time_t t;

  for (char *p = strtok_r (args, " \t", &save); p && nw < 10;
       p = strtok_r (NULL, " \t", &save))
    w[nw++] = p;
  if (nw < 5 || vv_parse_time_utc (w[3], &t) == -1
      || parse_origin (l, w[4], &origin, &policy) == -1)
    return -1;
  b = blist_add (l, w[0], w[1], strcmp (w[2], "-") ? w[2] : NULL, t,
                 origin, NULL);
  b->policy = policy;
  for (size_t k = 5; k < nw; k++)
    if (strcmp (w[k], "protected") == 0)
      b->protected = true;
    else if (vv_ret_status_parse (w[k], &b->status) == -1)
      return -1;
  return 0;
}

static char *
run_scenario (const char *path, struct blist *l)
{
  _cleanup_fclose_ FILE *f = fopen (path, "r");
  _cleanup_free_ struct vv_retention_delete *d = NULL;
  struct vv_retention_rules r;
  char line[1024];
  size_t nd = 0, len = 0;
  time_t now = 0;
  char *out = NULL;
  FILE *o;
  int lineno = 0;

  CHECK (f);
  blist_clear (l);
  vv_retention_rules_init (&r, "daily");
  while (fgets (line, sizeof line, f)) {
    char *hash = strchr (line, '#');
    char *p = line;

    lineno++;
    if (hash)
      *hash = '\0';
    line[strcspn (line, "\n")] = '\0';
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p == '\0')
      continue;
    if ((strncmp (p, "rules ", 6) == 0 && parse_rules (l, p + 6, &r) == 0)
        || (strncmp (p, "now ", 4) == 0
            && vv_parse_time_utc (p + 4, &now) == 0)
        || (strncmp (p, "b ", 2) == 0 && parse_backup (l, p + 2) == 0)
        || (strncmp (p, "series ", 7) == 0 && parse_series (l, p + 7) == 0))
      continue;
    fprintf (stderr, "%s:%d: bad line (%s)\n", path, lineno, vv_get_error ());
    exit (EXIT_FAILURE);
  }

  o = open_memstream (&out, &len);
  CHECK (o);
  if (vv_retention_decide (l->b, l->n, &r, now, &d, &nd) == -1)
    fprintf (o, "error: %s\n", vv_get_error ());
  else {
    check_invariants (l->b, l->n, &r, now, d, nd, path);
    for (size_t k = 0; k < nd; k++)
      fprintf (o, "delete %s: %s\n", d[k].id, d[k].reason);
    if (nd == 0)
      fprintf (o, "nothing to delete\n");
  }
  CHECK (fclose (o) == 0);
  return out;
}

static char *
read_file (const char *path)
{
  _cleanup_fclose_ FILE *f = fopen (path, "r");
  char *buf = NULL;
  size_t len = 0;
  FILE *o;
  int c;

  if (f == NULL)
    return NULL;
  o = open_memstream (&buf, &len);
  CHECK (o);
  while ((c = fgetc (f)) != EOF)
    fputc (c, o);
  CHECK (fclose (o) == 0);
  return buf;
}

static int
is_case (const struct dirent *e)
{
  return vv_str_has_suffix (e->d_name, ".scenario");
}

static int
by_name (const struct dirent **a, const struct dirent **b)
{
  return strcmp ((*a)->d_name, (*b)->d_name);
}

static void
test_scenarios (struct blist *l)
{
  char dir[4096];
  struct dirent **ents;
  const char *regen = getenv ("VIRTVAULT_REGENERATE");
  bool regenerate = regen && strcmp (regen, "1") == 0;
  int n, failed = 0;

  data_dir (dir, sizeof dir);
  n = scandir (dir, &ents, is_case, by_name);
  if (n < 0) {
    fprintf (stderr, "cannot read %s: %s (set abs_top_srcdir or srcdir)\n",
             dir, strerror (errno));
    exit (EXIT_FAILURE);
  }
  for (int i = 0; i < n; i++) {
    char path[8192], expath[8192];
    _cleanup_free_ char *got = NULL, *want = NULL;
    size_t base = strlen (ents[i]->d_name) - strlen (".scenario");

    snprintf (path, sizeof path, "%s/%s", dir, ents[i]->d_name);
    snprintf (expath, sizeof expath, "%s/%.*s.expect", dir, (int) base,
              ents[i]->d_name);
    got = run_scenario (path, l);
    if (regenerate) {
      FILE *f = fopen (expath, "w");

      CHECK (f && fputs (got, f) >= 0 && fclose (f) == 0);
    }
    else if ((want = read_file (expath)) == NULL || strcmp (got, want)) {
      fprintf (stderr, "%s:\n--- expected\n%s--- got\n%s", path,
               want ? want : "(no .expect file)\n", got);
      failed++;
    }
    free (ents[i]);
  }
  free (ents);
  if (regenerate)
    printf ("regenerated %d .expect files in %s\n", n, dir);
  CHECK (n >= MIN_CASES);
  if (failed) {
    fprintf (stderr, "%d of %d retention scenarios failed\n", failed, n);
    exit (EXIT_FAILURE);
  }
  printf ("%d retention scenarios\n", n);
}

/* ------------------------------------------------------------------ */
/* The integration scenario, computed purely: daily runs at     */
/* 02:00, max chain 3 (a full and 3 incrementals), retention 2, and     */
/* retention applied after every run.                                   */

static void
test_daily_runs (struct blist *l)
{
  /* Day of the oldest backup left after each day's run (days 1..14). */
  static const unsigned oldest_left[] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5, 5, 5, 9, 9,
  };
  struct vv_retention_rules r;
  time_t t0;
  char prev[32] = "";

  CHECK (vv_parse_time_utc ("2026-11-23T02:00:00Z", &t0) == 0);
  vv_retention_rules_init (&r, "daily");
  r.retention = 2;
  blist_clear (l);
  for (unsigned day = 1; day <= 14; day++) {
    _cleanup_free_ struct vv_retention_delete *d = NULL;
    char id[32], chain[32];
    size_t nd, w = 0;

    snprintf (id, sizeof id, "bk-day%02u", day);
    snprintf (chain, sizeof chain, "ch-from-day%02u", (day - 1) / 4 * 4 + 1);
    blist_add (l, id, chain, (day - 1) % 4 ? prev : NULL,
               t0 + (day - 1) * 86400, VV_RET_POLICY, "daily");
    memcpy (prev, id, sizeof id);
    CHECK (vv_retention_decide (l->b, l->n, &r, t0 + (day - 1) * 86400 + 600,
                                &d, &nd) == 0);
    check_invariants (l->b, l->n, &r, 0, d, nd, "daily runs");
    /* Apply: keep what was not deleted. */
    for (size_t i = 0; i < l->n; i++) {
      bool del = false;

      for (size_t k = 0; k < nd; k++)
        del |= d[k].index == i;
      if (!del)
        l->b[w++] = l->b[i];
    }
    l->n = w;
    if (nd) {
      CHECK (day == 9 || day == 13);
      CHECK (nd == 4);
      CHECK (strstr (d[0].reason, "is older than the newest 2 chains"));
    }
    CHECK (l->n == day - oldest_left[day] + 1);
    snprintf (id, sizeof id, "bk-day%02u", oldest_left[day]);
    CHECK (strcmp (l->b[0].id, id) == 0);
  }
  /* After the week itself (day 7) nothing had been deleted yet. */
  printf ("daily runs: ok\n");
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */

static void
test_parse (void)
{
  static const struct {
    const char *in;
    const char *expect;         /* NULL: ok; else the whole error */
    size_t n;
  } keep_cases[] = {
    { "1d:7,1w:4,1M:12", NULL, 3 },
    { " 6h:4 , 1y:3 ", NULL, 2 },
    { "", NULL, 0 },
    { "1q:3", "keep rule '1q:3': unknown unit 'q'; use h, d, w, M or y",
      0 },
    { "1d:7,1m:3", "keep rule '1m:3': unknown unit 'm'; use h, d, w, M or "
      "y", 0 },
    { "1d", "keep rule '1d': missing ':count' after the interval, like "
      "1d:7", 0 },
    { "d:7", "keep rule 'd:7': the interval must be a number and a unit, "
      "like 1d", 0 },
    { "7:3", "keep rule '7:3': missing unit after '7'; use h, d, w, M or "
      "y", 0 },
    { "1dd:3", "keep rule '1dd:3': unknown unit 'dd'; use h, d, w, M or y",
      0 },
    { "0d:3", "keep rule '0d:3': the interval must be 1 to 1000 units, "
      "like 1d", 0 },
    { "1d:0", "keep rule '1d:0': the count must be a whole number from 1 "
      "to 10000", 0 },
    { "1d:-1", "keep rule '1d:-1': the count must be a whole number from 1 "
      "to 10000", 0 },
    { "1d:10001", "keep rule '1d:10001': the count must be a whole number "
      "from 1 to 10000", 0 },
    { "1d:99999999999999", "keep rule '1d:99999999999999': the count must "
      "be a whole number from 1 to 10000", 0 },
    { "1d:7,,1w:4", "keep rules '1d:7,,1w:4': an empty rule; write them "
      "like 1d:7,1w:4", 0 },
    { "1d:7,", "keep rules '1d:7,': an empty rule after the last ','", 0 },
    { "1d:7,1d:3", "keep rule '1d:3': interval 1d is given twice", 0 },
    { "1h:1,2h:1,3h:1,4h:1,5h:1,6h:1,7h:1,8h:1,9h:1,10h:1,11h:1,12h:1,"
      "13h:1,14h:1,15h:1,16h:1,17h:1", "keep rules '1h:1,2h:1,3h:1,4h:1,5h:1,"
      "6h:1,7h:1,8h:1,9h:1,10h:1,11h:1,12h:1,13h:1,14h:1,15h:1,16h:1,17h:1': "
      "more than 16 rules", 0 },
  };
  static const struct {
    const char *in;
    const char *expect;
    int64_t secs;
  } dur_cases[] = {
    { "90d", NULL, 90 * 86400 },
    { "36h", NULL, 36 * 3600 },
    { "2w", NULL, 14 * 86400 },
    { "36600d", NULL, (int64_t) 36600 * 86400 },
    { "36601d", "max age '36601d': must be from 1d to 36600d", 0 },
    { "0d", "max age '0d': must be from 1d to 36600d", 0 },
    { "6M", "max age '6M': months and years have no fixed length; use days "
      "or weeks, like 180d", 0 },
    { "1y", "max age '1y': months and years have no fixed length; use days "
      "or weeks, like 180d", 0 },
    { "30m", "max age '30m': unknown unit 'm'; use h, d or w", 0 },
    { "90", "max age '90': must be a number and a unit, like 90d (h, d or "
      "w)", 0 },
    { "", "max age '': must be a number and a unit, like 90d (h, d or w)", 0 },
    { "-5d", "max age '-5d': must be a number and a unit, like 90d (h, d or "
      "w)", 0 },
    { "9d ", "max age '9d ': unknown unit 'd '; use h, d or w", 0 },
  };
  struct vv_retention_rules r;
  char buf[VV_KEEP_RULE_STR_MAX];
  unsigned u;
  int64_t secs;

  for (size_t i = 0; i < sizeof keep_cases / sizeof keep_cases[0]; i++) {
    int rc;

    vv_retention_rules_init (&r, "p");
    r.n_keep = 5;               /* untouched on failure */
    vv_clear_error ();
    rc = vv_parse_keep_rules (keep_cases[i].in, &r);
    if (keep_cases[i].expect == NULL) {
      CHECK (rc == 0);
      CHECK (r.n_keep == keep_cases[i].n);
      CHECK (vv_retention_rules_check (&r) == 0);
    }
    else if (rc != -1 || strcmp (vv_get_error (), keep_cases[i].expect)) {
      fprintf (stderr, "keep '%s': got %d '%s'\n  want '%s'\n",
               keep_cases[i].in, rc, vv_get_error (), keep_cases[i].expect);
      exit (EXIT_FAILURE);
    }
    else {
      CHECK (r.n_keep == 5);
      CHECK (vv_get_error_code () == VV_ERR_INVALID);
    }
  }
  CHECK (vv_parse_keep_rules ("1d:7,1w:4,1M:12,6h:24,2y:5", &r) == 0);
  vv_format_keep_rule (&r.keep[2], buf);
  CHECK (strcmp (buf, "1M:12") == 0);
  vv_format_keep_rule (&r.keep[3], buf);
  CHECK (strcmp (buf, "6h:24") == 0);
  CHECK (r.keep[4].unit == VV_KEEP_YEAR && r.keep[4].every == 2);
  vv_format_keep_interval (&r.keep[1], buf);
  CHECK (strcmp (buf, "1w") == 0);
  CHECK (vv_parse_keep_interval ("1M", &r.keep[0]) == 0);
  CHECK (r.keep[0].unit == VV_KEEP_MONTH && r.keep[0].count == 7);
  CHECK (vv_parse_keep_interval ("1d:7", &r.keep[0]) == -1);
  CHECK (strcmp (vv_get_error (), "keep interval '1d:7': unknown unit "
                 "'d:7'; use h, d, w, M or y") == 0);

  for (size_t i = 0; i < sizeof dur_cases / sizeof dur_cases[0]; i++) {
    int rc;

    secs = -7;
    rc = vv_parse_duration ("max age", dur_cases[i].in, &secs);
    if (dur_cases[i].expect == NULL)
      CHECK (rc == 0 && secs == dur_cases[i].secs);
    else if (rc != -1 || secs != -7
             || strcmp (vv_get_error (), dur_cases[i].expect)) {
      fprintf (stderr, "duration '%s': got %d '%s'\n  want '%s'\n",
               dur_cases[i].in, rc, vv_get_error (), dur_cases[i].expect);
      exit (EXIT_FAILURE);
    }
  }
  {
    char d[VV_DURATION_STR_MAX];

    vv_format_duration (90 * 86400, d);
    CHECK (strcmp (d, "90d") == 0);
    vv_format_duration (36 * 3600, d);
    CHECK (strcmp (d, "36h") == 0);
    vv_format_duration (5400, d);
    CHECK (strcmp (d, "5400s") == 0);
  }

  CHECK (vv_parse_count ("retention", "3", 1, 10000, &u) == 0 && u == 3);
  CHECK (vv_parse_count ("max backups", "0", 0, 10000, &u) == 0 && u == 0);
  CHECK (vv_parse_count ("retention", "0", 1, 10000, &u) == -1);
  CHECK (strcmp (vv_get_error (), "retention '0': must be a whole number "
                 "from 1 to 10000") == 0);
  CHECK (vv_parse_count ("retention", "-1", 1, 10000, &u) == -1);
  CHECK (vv_parse_count ("retention", "+1", 1, 10000, &u) == -1);
  CHECK (vv_parse_count ("retention", " 1", 1, 10000, &u) == -1);
  CHECK (vv_parse_count ("retention", "", 1, 10000, &u) == -1);
  CHECK (vv_parse_count ("retention", NULL, 1, 10000, &u) == -1);
  CHECK (vv_parse_count ("manual limit", "10001", 0, 10000, &u) == -1);
  CHECK (strcmp (vv_get_error (), "manual limit '10001': must be a whole "
                 "number from 0 to 10000") == 0);
  CHECK (vv_parse_count ("manual limit", "4294967297", 0, 10000, &u) == -1);
  CHECK (u == 0);

  /* Rules out of range, as the API could hand them over. */
  vv_retention_rules_init (&r, "p");
  CHECK (r.retention == 3 && r.manual_limit == 4 && r.n_keep == 0);
  CHECK (vv_retention_rules_check (&r) == 0);
  r.retention = 0;
  CHECK (vv_retention_rules_check (&r) == -1);
  CHECK (strcmp (vv_get_error (), "retention 0: must be from 1 to 10000 "
                 "chains") == 0);
  vv_retention_rules_init (&r, "p");
  r.max_backups = 10001;
  CHECK (vv_retention_rules_check (&r) == -1);
  CHECK (strstr (vv_get_error (), "max backups 10001"));
  vv_retention_rules_init (&r, "p");
  r.manual_limit = 20000;
  CHECK (vv_retention_rules_check (&r) == -1);
  vv_retention_rules_init (&r, "p");
  r.max_age = -1;
  CHECK (vv_retention_rules_check (&r) == -1);
  vv_retention_rules_init (&r, "p");
  r.n_keep = 1;
  r.keep[0] = (struct vv_keep_rule) { .every = 1, .unit = 9, .count = 1 };
  CHECK (vv_retention_rules_check (&r) == -1);
  r.keep[0] = (struct vv_keep_rule) { .every = 1, .unit = VV_KEEP_DAY };
  CHECK (vv_retention_rules_check (&r) == -1);
  CHECK (strstr (vv_get_error (), "keep rule 1:"));

  {
    enum vv_ret_type t;
    enum vv_ret_status s;
    enum vv_ret_origin o;

    CHECK (vv_ret_type_parse ("incremental", &t) == 0
           && t == VV_RET_INCREMENTAL);
    CHECK (vv_ret_type_parse ("diff", &t) == -1);
    CHECK (vv_ret_status_parse ("cancelled", &s) == 0
           && s == VV_RET_CANCELLED);
    CHECK (vv_ret_status_parse ("done", &s) == -1);
    CHECK (strstr (vv_get_error (), "backup status 'done'"));
    CHECK (vv_ret_origin_parse ("manual", &o) == 0 && o == VV_RET_MANUAL);
    CHECK (vv_ret_origin_parse (NULL, &o) == -1);
  }
  printf ("parse: ok\n");
}

/* Inconsistent input is refused as a whole. */
static void
test_bad_input (struct blist *l)
{
  struct vv_retention_rules r;
  struct vv_retention_delete *d = (void *) 1;
  size_t nd = 7;

  vv_retention_rules_init (&r, "p");
  CHECK (vv_retention_decide (NULL, 0, &r, 0, &d, &nd) == 0);
  CHECK (nd == 0 && d == NULL);

  blist_clear (l);
  blist_add (l, "bk-1", "ch-1", NULL, 10, VV_RET_POLICY, "p");
  blist_add (l, "bk-1", "ch-1", NULL, 20, VV_RET_POLICY, "p");
  d = (void *) 1;
  nd = 7;
  CHECK (vv_retention_decide (l->b, l->n, &r, 0, &d, &nd) == -1);
  CHECK (d == (void *) 1 && nd == 7);
  CHECK (strcmp (vv_get_error (), "retention: backup id bk-1 appears "
                 "twice") == 0);

  blist_clear (l);
  blist_add (l, "bk-1", "ch-1", "bk-2", 10, VV_RET_POLICY, "p");
  blist_add (l, "bk-2", "ch-1", "bk-1", 20, VV_RET_POLICY, "p");
  CHECK (vv_retention_decide (l->b, l->n, &r, 0, &d, &nd) == -1);
  CHECK (strstr (vv_get_error (), "loop back on themselves"));

  blist_clear (l);
  blist_add (l, "bk-1", "ch-1", NULL, 10, VV_RET_POLICY, "p")->type =
    VV_RET_INCREMENTAL;
  CHECK (vv_retention_decide (l->b, l->n, &r, 0, &d, &nd) == -1);
  CHECK (strstr (vv_get_error (), "incremental without a parent"));

  blist_clear (l);
  blist_add (l, "bk-1", "ch-1", "bk-0", 10, VV_RET_POLICY, "p")->type =
    VV_RET_FULL;
  CHECK (vv_retention_decide (l->b, l->n, &r, 0, &d, &nd) == -1);
  CHECK (strstr (vv_get_error (), "is a full but has a parent"));

  blist_clear (l);
  blist_add (l, "bk-1", NULL, NULL, 10, VV_RET_POLICY, "p");
  CHECK (vv_retention_decide (l->b, l->n, &r, 0, &d, &nd) == -1);
  CHECK (strstr (vv_get_error (), "has no chain"));
  /* ... unless it failed: then it is not retention's business. */
  l->b[0].status = VV_RET_FAILED;
  CHECK (vv_retention_decide (l->b, l->n, &r, 0, &d, &nd) == 0 && nd == 0);

  CHECK (vv_retention_decide (l->b, VV_RETENTION_INPUT_MAX + 1, &r, 0,
                              &d, &nd) == -1);
  r.retention = 0;
  CHECK (vv_retention_decide (l->b, l->n, &r, 0, &d, &nd) == -1);
  printf ("bad input: ok\n");
}

/* ------------------------------------------------------------------ */
/* Property check over random chains and rules                         */

static uint64_t rng_state;

static uint64_t
rng (void)
{
  /* xorshift64*: deterministic for a seed, good enough for tests. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static unsigned
pick (unsigned n)
{
  return rng () % n;
}

static void
random_case (struct blist *l, struct vv_retention_rules *r, time_t *now)
{
  static const char *const policies[] = { "p", "p", "p", "p", "other", NULL };
  unsigned n_chains = pick (9);
  time_t t = 1700000000 + pick (1000) * 3600;
  unsigned id = 0;

  blist_clear (l);
  for (unsigned c = 0; c < n_chains; c++) {
    unsigned len = 1 + pick (8);
    size_t first = l->n;
    char chain[32];

    snprintf (chain, sizeof chain, "ch-%u", c);
    for (unsigned k = 0; k < len; k++) {
      const char *parent = NULL;
      struct vv_ret_backup *b;
      unsigned origin = pick (20);
      char name[32];

      if (k > 0) {
        /* Mostly the newest usable one; sometimes a branch. */
        size_t j = l->n - 1;

        if (pick (10) == 0)
          j = first + pick (l->n - first);
        while (j > first && ignored (&l->b[j]))
          j--;
        if (ignored (&l->b[j]))
          break;                /* the full failed: no chain */
        parent = l->b[j].id;
      }
      snprintf (name, sizeof name, "bk-%u", id++);
      b = blist_add (l, name, chain, parent, t,
                     origin < 3 ? VV_RET_MANUAL : VV_RET_POLICY,
                     origin < 3 ? NULL : policies[pick (6)]);
      /* Occasionally two backups at the same second. */
      if (pick (8))
        t += 600 + pick (4 * 86400);
      switch (pick (40)) {
      case 0: case 1: case 2: b->status = VV_RET_FAILED; break;
      case 3: b->status = VV_RET_CANCELLED; break;
      case 4: b->status = VV_RET_RUNNING; break;
      case 5: b->status = VV_RET_PENDING; break;
      default: break;
      }
      b->protected = pick (20) == 0;
    }
  }

  vv_retention_rules_init (r, pick (10) ? "p" : NULL);
  r->retention = 1 + pick (4);
  r->n_keep = pick (4);
  for (size_t k = 0; k < r->n_keep; k++) {
    r->keep[k].unit = pick (5);
    r->keep[k].every = 1 + (pick (4) == 0 ? pick (6) : 0);
    r->keep[k].count = 1 + pick (6);
  }
  r->max_age = pick (3) == 0 ? (int64_t) (1 + pick (40)) * 86400 : 0;
  r->max_backups = pick (3) == 0 ? pick (16) : 0;
  r->manual_limit = pick (6);
  *now = t + pick (5 * 86400);
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
test_random (struct blist *l)
{
  const char *seed = getenv ("VIRTVAULT_SEED");
  unsigned cases = 10000;
  size_t total_deleted = 0, total = 0;

  rng_state = seed ? strtoull (seed, NULL, 0) : 0x5eed2026ULL;
  if (rng_state == 0)
    rng_state = 1;
  for (unsigned c = 0; c < cases; c++) {
    _cleanup_free_ struct vv_retention_delete *d = NULL;
    _cleanup_free_ struct vv_retention_delete *d2 = NULL;
    struct vv_ret_backup shuffled[MAX_B];
    const char *ids1[MAX_B], *ids2[MAX_B];
    struct vv_retention_rules r;
    char what[64];
    time_t now;
    size_t nd, nd2;

    random_case (l, &r, &now);
    snprintf (what, sizeof what, "random case %u", c);
    if (vv_retention_decide (l->b, l->n, &r, now, &d, &nd) == -1) {
      fprintf (stderr, "%s: %s\n", what, vv_get_error ());
      exit (EXIT_FAILURE);
    }
    check_invariants (l->b, l->n, &r, now, d, nd, what);
    total += l->n;
    total_deleted += nd;

    /* The input order does not matter. */
    memcpy (shuffled, l->b, l->n * sizeof l->b[0]);
    for (size_t i = l->n; i > 1; i--) {
      size_t j = pick (i);
      struct vv_ret_backup tmp = shuffled[i - 1];

      shuffled[i - 1] = shuffled[j];
      shuffled[j] = tmp;
    }
    CHECK (vv_retention_decide (shuffled, l->n, &r, now, &d2, &nd2) == 0);
    CHECK (nd2 == nd);
    for (size_t k = 0; k < nd; k++) {
      ids1[k] = d[k].id;
      ids2[k] = d2[k].id;
    }
    qsort (ids1, nd, sizeof ids1[0], cmp_str);
    qsort (ids2, nd, sizeof ids2[0], cmp_str);
    for (size_t k = 0; k < nd; k++)
      CHECK (strcmp (ids1[k], ids2[k]) == 0);
  }
  printf ("random: %u cases, %zu backups, %zu deleted, invariants hold\n",
          cases, total, total_deleted);
  CHECK (total_deleted > total / 10);
}

int
main (void)
{
  static struct blist l;

  test_parse ();
  test_bad_input (&l);
  test_daily_runs (&l);
  test_scenarios (&l);
  test_random (&l);
  blist_clear (&l);
  return 0;
}
