/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Schedules and the clock: slots from tests/data/schedules/next.txt,
 * a sweep over every day of 2026 in three timezones (both hemispheres),
 * parse errors per field, summaries, jitter, missed runs, chain position,
 * the test clock and its wake-ups, and conversions from several threads.
 *
 * VIRTVAULT_REGENERATE=1 rewrites the expected column of next.txt.
 */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scheduler/schedule.h"
#include "util/clock.h"
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

#define DAY 86400

static time_t
utc (const char *s)
{
  time_t t;
  CHECK (vv_parse_time_utc (s, &t) == 0);
  return t;
}

static struct vv_schedule
sched (const char *kind, const char *day, const char *at, const char *tz,
       const char *window)
{
  struct vv_schedule s;
  if (vv_schedule_parse (kind, day, at, tz, window, &s) < 0) {
    fprintf (stderr, "parse %s %s %s %s: %s\n", kind, day ? day : "-", at,
             tz, vv_get_error ());
    exit (EXIT_FAILURE);
  }
  return s;
}

/* The oracle: the C library in this (single) thread. */
static void
oracle_tz (const char *zone)
{
  char v[VV_TZ_NAME_MAX + 1];
  snprintf (v, sizeof v, ":%s", zone);
  CHECK (setenv ("TZ", v, 1) == 0);
  tzset ();
}

static int64_t
wall (time_t t)
{
  struct tm tm;
  CHECK (localtime_r (&t, &tm) != NULL);
  return (int64_t) t + tm.tm_gmtoff;
}

static int64_t
floor_day (int64_t w)
{
  return w >= 0 ? w / DAY : -((-w + DAY - 1) / DAY);
}

/* ---- data-driven slots */

static void
test_table (void)
{
  const char *srcdir = getenv ("abs_top_srcdir");
  char path[4096], line[512];
  FILE *fp, *out = NULL;
  char *regen_text = NULL;
  size_t regen_len = 0;
  bool regen = getenv ("VIRTVAULT_REGENERATE")
               && strcmp (getenv ("VIRTVAULT_REGENERATE"), "1") == 0;
  int n = 0, bad = 0;

  snprintf (path, sizeof path, "%s/tests/data/schedules/next.txt",
            srcdir ? srcdir : "..");
  fp = fopen (path, "r");
  CHECK (fp != NULL);
  if (regen)
    CHECK ((out = open_memstream (&regen_text, &regen_len)) != NULL);

  while (fgets (line, sizeof line, fp)) {
    char kind[16], day[16], at[16], tz[VV_TZ_NAME_MAX], after[32], exp[32];
    char got[VV_TIME_MAX];
    struct vv_schedule s;
    time_t t;

    if (line[0] == '#' || line[0] == '\n') {
      if (out)
        fputs (line, out);
      continue;
    }
    CHECK (sscanf (line, "%15s %15s %15s %63s %31s %31s",
                   kind, day, at, tz, after, exp) == 6);
    s = sched (kind, strcmp (day, "-") ? day : NULL, at, tz, NULL);
    CHECK (vv_schedule_next (&s, utc (after), &t) == 0);
    vv_format_time_utc (t, got);
    if (out)
      fprintf (out, "%s %s %s %s %s %s\n", kind, day, at, tz, after, got);
    else if (strcmp (got, exp) != 0) {
      fprintf (stderr, "next.txt: %s %s %s %s after %s: got %s, "
               "expected %s\n", kind, day, at, tz, after, got, exp);
      bad++;
    }
    n++;
  }
  fclose (fp);
  if (out) {
    fclose (out);
    CHECK ((fp = fopen (path, "w")) != NULL);
    CHECK (fwrite (regen_text, 1, regen_len, fp) == regen_len);
    CHECK (fclose (fp) == 0);
    free (regen_text);
    printf ("regenerated %s\n", path);
  }
  CHECK (bad == 0);
  CHECK (n >= 30);
  printf ("table: %d cases\n", n);
}

/* ---- a year of days */

struct sweep {
  const char *kind, *day, *at, *zone;
  int runs, gaps, doubles;      /* expected over the local year 2026 */
};

static const struct sweep sweeps[] = {
  { "daily", NULL, "02:30", "Europe/Berlin", 365, 1, 1 },
  { "daily", NULL, "01:00", "Europe/Berlin", 365, 0, 0 },
  { "daily", NULL, "02:00", "Europe/Berlin", 365, 1, 1 },
  { "daily", NULL, "02:30", "America/New_York", 365, 1, 0 },
  { "daily", NULL, "01:00", "America/New_York", 365, 0, 1 },
  { "daily", NULL, "02:30", "Australia/Sydney", 365, 1, 1 },
  { "daily", NULL, "01:00", "Australia/Sydney", 365, 0, 0 },
  { "daily", NULL, "00:00", "UTC", 365, 0, 0 },
  { "weekly", "sun", "02:30", "Europe/Berlin", 52, 1, 1 },
  { "weekly", "mon", "03:00", "Europe/Berlin", 52, 0, 0 },
  { "weekly", "sun", "02:30", "America/New_York", 52, 1, 0 },
  { "weekly", "sun", "01:30", "America/New_York", 52, 0, 1 },
  { "weekly", "sun", "02:30", "Australia/Sydney", 52, 1, 1 },
  { "weekly", "thu", "23:59", "Australia/Sydney", 53, 0, 0 },
};

static void
run_sweep (const struct sweep *w)
{
  struct vv_schedule s = sched (w->kind, w->day, w->at, w->zone, NULL);
  struct tm tm = { .tm_year = 126, .tm_mday = 1, .tm_isdst = -1 };
  int64_t target_tod = s.hour * 3600 + s.minute * 60;
  int64_t prev_day = INT64_MIN;
  time_t start, end, prev, t;
  int runs = 0, gaps = 0, doubles = 0;

  oracle_tz (w->zone);
  start = mktime (&tm);               /* local 2026-01-01 00:00 */
  tm = (struct tm) { .tm_year = 127, .tm_mday = 1, .tm_isdst = -1 };
  end = mktime (&tm);
  prev = start - 1;

  for (;;) {
    int64_t wt, day, target;
    struct tm lt;

    CHECK (vv_schedule_next (&s, prev, &t) == 0);
    CHECK (t > prev);
    if (t >= end)
      break;
    wt = wall (t);
    day = floor_day (wt);
    target = day * DAY + target_tod;
    if (prev_day != INT64_MIN)
      CHECK (day == prev_day + (s.kind == VV_SCHEDULE_WEEKLY ? 7 : 1));
    if (s.kind == VV_SCHEDULE_WEEKLY) {
      CHECK (localtime_r (&t, &lt) != NULL);
      CHECK (lt.tm_wday == s.wday);
    }
    if (wt == target) {
      /* The first occurrence: nothing earlier reads the same. */
      for (int d = 900; d <= 3 * 3600; d += 900)
        CHECK (wall (t - d) != target);
      if (wall (t + 3600) == target)
        doubles++;
    }
    else {
      /* The first instant after a gap that swallowed the target. */
      CHECK (wt > target && wt - target <= 3600);
      CHECK (wall (t - 1) < target);
      gaps++;
    }
    prev = t;
    prev_day = day;
    runs++;
  }
  if (runs != w->runs || gaps != w->gaps || doubles != w->doubles) {
    fprintf (stderr, "sweep %s %s %s %s: %d runs, %d gaps, %d doubles; "
             "expected %d, %d, %d\n", w->kind, w->day ? w->day : "-",
             w->at, w->zone, runs, gaps, doubles, w->runs, w->gaps,
             w->doubles);
    exit (EXIT_FAILURE);
  }
}

static void
test_sweeps (void)
{
  for (size_t i = 0; i < sizeof sweeps / sizeof sweeps[0]; i++)
    run_sweep (&sweeps[i]);
  unsetenv ("TZ");
  tzset ();
  printf ("sweeps: %zu schedules over 2026\n",
          sizeof sweeps / sizeof sweeps[0]);
}

/* ---- parsing */

static const struct {
  const char *kind, *day, *at, *tz, *window;
  const char *error;            /* start of the message; NULL: valid */
} parses[] = {
  { "daily", NULL, "02:00", "Europe/Berlin", "2h", NULL },
  { "weekly", "Monday", "3:05", NULL, NULL, NULL },
  { "weekly", "SUN", "23:59", "America/Argentina/Buenos_Aires", "90m", NULL },
  { "daily", NULL, "00:00", "Etc/GMT+5", "0", NULL },
  { "daily", NULL, "00:00", "UTC", "24h", NULL },
  { "hourly", NULL, "02:00", NULL, NULL,
    "unknown schedule 'hourly'; use daily or weekly" },
  { NULL, NULL, "02:00", NULL, NULL, "unknown schedule ''" },
  { "daily", NULL, "25:00", NULL, NULL, "hour 25 is out of range 0-23" },
  { "daily", NULL, "100:00", NULL, NULL, "hour 100 is out of range 0-23" },
  { "daily", NULL, "02:60", NULL, NULL, "minute 60 is out of range 0-59" },
  { "daily", NULL, "2pm", NULL, NULL,
    "time of day '2pm' is not like 02:30" },
  { "daily", NULL, "02:3", NULL, NULL, "time of day '02:3' is not like" },
  { "daily", NULL, "-1:00", NULL, NULL, "time of day '-1:00' is not like" },
  { "daily", NULL, NULL, NULL, NULL, "time of day '' is not like" },
  { "daily", "mon", "02:00", NULL, NULL,
    "--day is only valid for weekly schedules" },
  { "weekly", NULL, "02:00", NULL, NULL, "a weekly schedule needs --day" },
  { "weekly", "funday", "02:00", NULL, NULL, "unknown day 'funday'" },
  { "daily", NULL, "02:00", "Mars/Olympus", NULL,
    "unknown timezone 'Mars/Olympus'" },
  { "daily", NULL, "02:00", "Europe", NULL, "unknown timezone 'Europe'" },
  { "daily", NULL, "02:00", "../../etc/passwd", NULL,
    "invalid timezone '../../etc/passwd'" },
  { "daily", NULL, "02:00", "Europe/../Europe/Berlin", NULL,
    "invalid timezone" },
  { "daily", NULL, "02:00", "/usr/share/zoneinfo/UTC", NULL,
    "invalid timezone" },
  { "daily", NULL, "02:00", "Europe//Berlin", NULL, "invalid timezone" },
  { "daily", NULL, "02:00", "Europe/Berlin/", NULL, "invalid timezone" },
  { "daily", NULL, "02:00", "right/UTC", NULL, "invalid timezone" },
  { "daily", NULL, "02:00", "Europe/Ber lin", NULL, "invalid timezone" },
  { "daily", NULL, "02:00",
    "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    NULL, "timezone 'Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is longer than 63" },
  { "daily", NULL, "02:00", NULL, "25h", "window 25h is out of range 0-24h" },
  { "daily", NULL, "02:00", NULL, "1441m", "window 1441m is out of range" },
  { "daily", NULL, "02:00", NULL, "90", "window '90' is not a duration" },
  { "daily", NULL, "02:00", NULL, "-1h", "window '-1h' is not a duration" },
  { "daily", NULL, "02:00", NULL, "2d", "window '2d' is not a duration" },
};

static void
test_parse (void)
{
  for (size_t i = 0; i < sizeof parses / sizeof parses[0]; i++) {
    struct vv_schedule s = { .hour = 99 };
    int r;

    vv_clear_error ();
    r = vv_schedule_parse (parses[i].kind, parses[i].day, parses[i].at,
                           parses[i].tz, parses[i].window, &s);
    if (parses[i].error == NULL) {
      CHECK (r == 0);
      CHECK (vv_schedule_validate (&s) == 0);
      continue;
    }
    if (r == 0 || !vv_str_has_prefix (vv_get_error (), parses[i].error)) {
      fprintf (stderr, "parse case %zu: got %d '%s', expected '%s'\n",
               i, r, vv_get_error (), parses[i].error);
      exit (EXIT_FAILURE);
    }
    CHECK (vv_get_error_code () == VV_ERR_INVALID);
    CHECK (s.hour == 99);                       /* untouched */
  }

  /* What the parser fills in, and validation of stored schedules. */
  struct vv_schedule s = sched ("weekly", "tue", "07:05", NULL, "2h");
  CHECK (s.kind == VV_SCHEDULE_WEEKLY && s.wday == 2 && s.hour == 7
         && s.minute == 5 && s.window == 120 && strcmp (s.tz, "UTC") == 0);
  CHECK (strcmp (vv_schedule_day_name (s.wday), "tue") == 0);
  CHECK (strcmp (vv_schedule_kind_name (s.kind), "weekly") == 0);
  s.hour = 24;
  CHECK (vv_schedule_validate (&s) < 0);
  CHECK (strcmp (vv_get_error (), "hour 24 is out of range 0-23") == 0);
  s.hour = 7;
  s.wday = 7;
  CHECK (vv_schedule_validate (&s) < 0);
  CHECK (vv_str_has_prefix (vv_get_error (), "day 7 is out of range 0-6"));
  s = sched ("daily", NULL, "07:05", NULL, NULL);
  CHECK (s.wday == -1 && s.window == 0);
  s.wday = 1;
  CHECK (vv_schedule_validate (&s) < 0);
  CHECK (strcmp (vv_get_error (),
                 "--day is only valid for weekly schedules") == 0);
  s.wday = -1;
  s.window = 1441;
  CHECK (vv_schedule_validate (&s) < 0);
  s.window = 0;
  strcpy (s.tz, "Mars/Olympus");
  CHECK (vv_schedule_validate (&s) < 0);
  CHECK (vv_str_has_prefix (vv_get_error (),
                            "unknown timezone 'Mars/Olympus'"));
  memset (s.tz, 'A', sizeof s.tz);
  CHECK (vv_schedule_validate (&s) < 0);
  printf ("parse: %zu cases\n", sizeof parses / sizeof parses[0]);
}

static void
test_summary (void)
{
  static const struct {
    const char *kind, *day, *at, *tz, *window, *expect;
  } c[] = {
    { "daily", NULL, "02:00", "Europe/Berlin", NULL,
      "Daily at 2:00 AM Europe/Berlin" },
    { "weekly", "mon", "03:00", NULL, NULL,
      "Weekly on Monday at 3:00 AM UTC" },
    { "daily", NULL, "00:05", NULL, NULL, "Daily at 12:05 AM UTC" },
    { "daily", NULL, "12:00", NULL, NULL, "Daily at 12:00 PM UTC" },
    { "weekly", "sat", "23:59", "Australia/Sydney", "2h",
      "Weekly on Saturday at 11:59 PM Australia/Sydney, window 2h" },
    { "daily", NULL, "13:30", "America/New_York", "90m",
      "Daily at 1:30 PM America/New_York, window 90m" },
  };
  char buf[VV_SCHEDULE_SUMMARY_MAX];

  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    struct vv_schedule s = sched (c[i].kind, c[i].day, c[i].at, c[i].tz,
                                  c[i].window);
    vv_schedule_summary (&s, buf);
    if (strcmp (buf, c[i].expect) != 0) {
      fprintf (stderr, "summary: got '%s', expected '%s'\n", buf,
               c[i].expect);
      exit (EXIT_FAILURE);
    }
  }
}

/* ---- jitter, runs with jitter, missed runs */

/* The verify spreading rule: one slot a period per backup, at a phase
 * from the hash of its id, spread over the period.
 */
static void
test_verify_spread (void)
{
  const char *id = "bk-3f9a0c21d4e5";
  const time_t p7 = 7 * DAY;
  time_t since = utc ("2026-11-24T02:00:00Z"), next, again;
  unsigned per_day[7] = { 0 };
  char seed[32];

  /* The hash is FNV-1a 64, fixed forever: of "a" it is 0xaf63dc4c8601ec8c
   * (the published test vector).
   */
  CHECK (vv_verify_phase ("a", 7) == (int64_t) (0xaf63dc4c8601ec8cULL % p7));
  CHECK (vv_verify_phase ("", 1) == (int64_t) (0xcbf29ce484222325ULL % DAY));
  CHECK (vv_verify_phase (id, 0) == 0);
  CHECK (vv_verify_next (id, 0, since, false)
         > since + 100 * 365 * (time_t) DAY);

  /* Never verified: strictly after its completion, within one period,
   * on the backup's own phase; the same from any time up to the slot.
   */
  next = vv_verify_next (id, 7, since, false);
  CHECK (next > since && next - since <= p7);
  CHECK ((next - vv_verify_phase (id, 7)) % p7 == 0);
  CHECK (vv_verify_next (id, 7, next - 1, false) == next);
  CHECK (vv_verify_next (id, 7, since + 1, false) == next);
  CHECK (vv_verify_next (id, 7, next, false) == next + p7);
  /* Verified at its slot: the next period's slot. */
  again = vv_verify_next (id, 7, next, true);
  CHECK (again == next + p7);
  /* Verified late (within its period, or more than half a period late):
   * never again within half a period, never more than 1.5 periods on.
   */
  for (time_t late = 0; late < p7; late += 3600) {
    time_t t = vv_verify_next (id, 7, next + late, true);
    CHECK (t >= next + late + p7 / 2 && t < next + late + p7 + p7 / 2);
    CHECK ((t - vv_verify_phase (id, 7)) % p7 == 0);
  }
  CHECK (vv_verify_next (id, 7, next + 3600, true) == next + p7);
  CHECK (vv_verify_next (id, 7, next + p7 / 2 + 1, true) == next + 2 * p7);
  /* Times before the epoch's first slot (floor division). */
  CHECK (vv_verify_next ("a", 7, vv_verify_phase ("a", 7) - 1, false)
         == vv_verify_phase ("a", 7));
  CHECK (vv_verify_next ("a", 7, vv_verify_phase ("a", 7) - p7 - 1, false)
         == vv_verify_phase ("a", 7) - p7);
  CHECK (vv_verify_next ("a", 7, vv_verify_phase ("a", 7), false)
         == vv_verify_phase ("a", 7) + p7);

  /* 7000 backups on a weekly verify: each day of the period gets about
   * a seventh, none more than a quarter more than that.
   */
  for (int i = 0; i < 7000; i++) {
    snprintf (seed, sizeof seed, "bk-%012x", (unsigned) i * 2654435761u);
    per_day[vv_verify_phase (seed, 7) / DAY]++;
  }
  for (int d = 0; d < 7; d++)
    CHECK (per_day[d] > 750 && per_day[d] < 1250);
}

static void
test_jitter (void)
{
  const char *uuid = "5b1a2c3d-0000-4000-8000-00000000abcd";
  uint32_t j = vv_schedule_jitter (120, uuid), lo = UINT32_MAX, hi = 0;
  char seed[64];

  CHECK (vv_schedule_jitter (0, uuid) == 0);
  CHECK (j == vv_schedule_jitter (120, uuid));
  CHECK (j < 120 * 60);
  /* Fixed forever: a change would move every instance's run time. */
  CHECK (vv_schedule_jitter (120, "") == 0xcbf29ce484222325ULL % 7200);
  CHECK (vv_schedule_jitter (1, NULL) == vv_schedule_jitter (1, ""));
  for (int i = 0; i < 2000; i++) {
    snprintf (seed, sizeof seed, "instance-%d", i);
    j = vv_schedule_jitter (60, seed);
    CHECK (j < 3600);
    lo = j < lo ? j : lo;
    hi = j > hi ? j : hi;
  }
  CHECK (lo < 60 && hi > 3540);                 /* spread over the window */
  CHECK (vv_schedule_jitter (VV_WINDOW_MAX_MINUTES, uuid) < DAY);

  /* Runs are slot + jitter, strictly after, and the same every time. */
  struct vv_schedule s = sched ("daily", NULL, "02:00", "UTC", "2h");
  time_t slot = utc ("2026-11-24T02:00:00Z"), run, again;
  j = vv_schedule_jitter (120, uuid);
  CHECK (vv_schedule_next_run (&s, uuid, slot - 1, &run) == 0);
  CHECK (run == slot + (time_t) j);
  CHECK (vv_schedule_next_run (&s, uuid, slot + j - 1, &again) == 0);
  CHECK (again == run);
  CHECK (vv_schedule_next_run (&s, uuid, run, &again) == 0);
  CHECK (again == run + DAY);
  CHECK (vv_schedule_next_run (&s, uuid, 0, &run) == 0);
  CHECK (run == 2 * 3600 + (time_t) j);
  CHECK (vv_schedule_next (&s, -1, &run) < 0);
  CHECK (vv_schedule_next (&s, VV_SCHEDULE_TIME_MAX + 1, &run) < 0);
}

static void
test_missed (void)
{
  struct vv_schedule s = sched ("daily", NULL, "02:00", "Europe/Berlin",
                                NULL);
  struct vv_schedule w = sched ("daily", NULL, "02:00", "Europe/Berlin",
                                "1h");
  time_t last = utc ("2026-11-24T01:00:00Z");   /* the 02:00 CET run */
  uint32_t j = vv_schedule_jitter (60, "i1");

  CHECK (vv_schedule_missed (&s, "i1", last, last) == 0);
  CHECK (vv_schedule_missed (&s, "i1", last, last - 5) == 0);
  CHECK (vv_schedule_missed (&s, "i1", last, last + DAY - 1) == 0);
  CHECK (vv_schedule_missed (&s, "i1", last, last + DAY) == 1);
  /* Ten days down is still one run. */
  CHECK (vv_schedule_missed (&s, "i1", last, last + 10 * DAY) == 1);
  /* Up again inside the window, before this instance's offset: not
   * missed yet, it runs on time.
   */
  CHECK (j > 0);
  CHECK (vv_schedule_missed (&w, "i1", last + j, last + DAY + j - 1) == 0);
  CHECK (vv_schedule_missed (&w, "i1", last + j, last + DAY + j) == 1);
  struct vv_schedule bad = s;
  strcpy (bad.tz, "Mars/Olympus");
  CHECK (vv_schedule_missed (&bad, "i1", last, last + 10 * DAY) == -1);
}

/* ---- chain position */

static void
test_policy (void)
{
  struct vv_schedule s = sched ("weekly", "mon", "03:00", "Europe/Berlin",
                                NULL), r;
  char got[64];
  unsigned runs = 0;
  int wday;

  /* Daily, max chain 6: F IIIIII F IIIIII F. */
  for (int day = 0; day < 15; day++) {
    enum vv_run_kind k = vv_policy_backup_kind (VV_SCHEDULE_DAILY, 6, runs,
                                                false);
    got[day] = k == VV_RUN_FULL ? 'F' : k == VV_RUN_INCREMENTAL ? 'I' : '-';
    runs = k == VV_RUN_FULL ? 1 : runs + 1;
  }
  got[15] = '\0';
  CHECK (strcmp (got, "FIIIIIIFIIIIIIF") == 0);
  for (unsigned n = 0; n < 5; n++)
    CHECK (vv_policy_backup_kind (VV_SCHEDULE_DAILY, 0, n, false)
           == VV_RUN_FULL);

  /* Weekly: the run schedule is daily; fulls on Mondays. */
  vv_policy_run_schedule (&s, 3, &r);
  CHECK (r.kind == VV_SCHEDULE_DAILY && r.wday == -1 && r.hour == 3);
  vv_policy_run_schedule (&s, 0, &r);
  CHECK (r.kind == VV_SCHEDULE_WEEKLY && r.wday == 1);

  /* Walk day by day; a day that is no slot of the policy shows '-'. */
  struct vv_schedule every_day;
  vv_policy_run_schedule (&s, 6, &every_day);
  struct { unsigned max_chain; const char *from; const char *expect; }
  wk[] = {
    { 6, "2026-11-22T12:00:00Z", "FIIIIIIFIIIIIIF" }, /* Mon .. Mon */
    { 3, "2026-11-22T12:00:00Z", "FIIIFIIFIIIFIIF" },
    { 0, "2026-11-22T12:00:00Z", "F------F------F" },
    { 6, "2026-11-24T12:00:00Z", "FIIIIFIIIIIIFII" }, /* Wed, no chain */
  };
  for (size_t i = 0; i < sizeof wk / sizeof wk[0]; i++) {
    time_t t = utc (wk[i].from);
    vv_policy_run_schedule (&s, wk[i].max_chain, &r);
    runs = 0;
    for (int day = 0; day < 15; day++) {
      enum vv_run_kind k = VV_RUN_SKIP;
      CHECK (vv_schedule_next (&every_day, t, &t) == 0);
      CHECK (vv_schedule_local_wday (&s, t, &wday) == 0);
      if (r.kind == VV_SCHEDULE_DAILY || wday == r.wday)
        k = vv_policy_backup_kind (VV_SCHEDULE_WEEKLY, wk[i].max_chain, runs,
                                   wday == s.wday);
      got[day] = k == VV_RUN_FULL ? 'F' : k == VV_RUN_INCREMENTAL ? 'I'
                                                                  : '-';
      if (k == VV_RUN_FULL)
        runs = 1;
      else if (k == VV_RUN_INCREMENTAL)
        runs++;
    }
    got[15] = '\0';
    if (strcmp (got, wk[i].expect) != 0) {
      fprintf (stderr, "weekly max_chain %u from %s: got %s, expected %s\n",
               wk[i].max_chain, wk[i].from, got, wk[i].expect);
      exit (EXIT_FAILURE);
    }
  }
  CHECK (strcmp (vv_run_kind_name (VV_RUN_SKIP), "skip") == 0);
  CHECK (strcmp (vv_run_kind_name (VV_RUN_FULL), "full") == 0);
}

/* ---- several threads converting at once */

struct conv {
  const char *zone;
  time_t expect[200];
  int ok;
};

static void *
conv_main (void *opaque)
{
  struct conv *c = opaque;
  struct vv_schedule s;
  time_t t = 1767225600;                        /* 2026-01-01 */

  if (vv_schedule_parse ("daily", NULL, "02:30", c->zone, NULL, &s) < 0)
    return NULL;
  for (int i = 0; i < 200; i++) {
    if (vv_schedule_next (&s, t, &t) < 0 || t != c->expect[i])
      return NULL;
  }
  c->ok = 1;
  return NULL;
}

static void
test_threads (void)
{
  static const char *zones[] = {
    "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"
  };
  struct conv c[4];
  pthread_t th[4];

  for (int i = 0; i < 4; i++) {
    struct vv_schedule s = sched ("daily", NULL, "02:30", zones[i], NULL);
    time_t t = 1767225600;
    c[i] = (struct conv) { .zone = zones[i] };
    for (int k = 0; k < 200; k++) {
      CHECK (vv_schedule_next (&s, t, &t) == 0);
      c[i].expect[k] = t;
    }
  }
  for (int i = 0; i < 4; i++)
    CHECK (pthread_create (&th[i], NULL, conv_main, &c[i]) == 0);
  for (int i = 0; i < 4; i++) {
    CHECK (pthread_join (th[i], NULL) == 0);
    CHECK (c[i].ok);
  }
  /* TZ is put back as it was. */
  CHECK (setenv ("TZ", "UTC0", 1) == 0);
  struct vv_schedule s = sched ("daily", NULL, "02:30", "Asia/Tokyo", NULL);
  time_t t;
  CHECK (vv_schedule_next (&s, 0, &t) == 0);
  CHECK (strcmp (getenv ("TZ"), "UTC0") == 0);
  unsetenv ("TZ");
  CHECK (vv_schedule_next (&s, 0, &t) == 0);
  /* "Unset" comes back as the same system default, spelled out. */
  CHECK (strcmp (getenv ("TZ"), ":/etc/localtime") == 0);
}

/* ---- the clock */

struct sleeper {
  time_t deadline;
  volatile int done;
  bool stop;                    /* read under the clock's generation */
  pthread_mutex_t lock;
};

static void *
sleeper_main (void *opaque)
{
  struct sleeper *sl = opaque;

  for (;;) {
    uint64_t gen = vv_clock_generation ();
    bool stop;

    pthread_mutex_lock (&sl->lock);
    stop = sl->stop;
    pthread_mutex_unlock (&sl->lock);
    if (stop || vv_clock_now () >= sl->deadline)
      break;
    vv_clock_sleep_until (sl->deadline, gen);
  }
  __atomic_store_n (&sl->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static bool
done_soon (struct sleeper *sl)
{
  for (int i = 0; i < 500; i++) {              /* 5 s */
    if (__atomic_load_n (&sl->done, __ATOMIC_SEQ_CST))
      return true;
    usleep (10000);
  }
  return false;
}

static void *
advance_main (void *opaque)
{
  (void) opaque;
  for (int i = 0; i < 1000; i++)
    CHECK (vv_clock_advance (1) == 0);
  return NULL;
}

static void
test_clock (void)
{
  time_t start = utc ("2026-11-24T01:00:00Z"), real = time (NULL);
  char now[VV_TIME_MAX];
  struct sleeper sl = { .lock = PTHREAD_MUTEX_INITIALIZER };
  pthread_t th, adv[4];

  /* The wall clock, until the test clock is enabled. */
  CHECK (!vv_clock_is_test ());
  CHECK (vv_clock_now () >= real && vv_clock_now () <= real + 5);
  CHECK (vv_clock_set (start) < 0);
  CHECK (vv_get_error_code () == VV_ERR_FORBIDDEN);
  CHECK (strstr (vv_get_error (), "--test-clock") != NULL);
  CHECK (vv_clock_advance (60) < 0);
  CHECK (vv_clock_sleep_until (real - 10, vv_clock_generation ()));
  /* A changed generation returns at once, before a far deadline. */
  CHECK (!vv_clock_sleep_until (real + 3600, vv_clock_generation () - 1));

  vv_clock_enable_test (start);
  CHECK (vv_clock_is_test ());
  CHECK (vv_clock_now () == start);
  usleep (1100000);
  CHECK (vv_clock_now () == start);             /* stands still */
  vv_now_utc (now);
  CHECK (strcmp (now, "2026-11-24T01:00:00Z") == 0);
  CHECK (vv_clock_advance (DAY) == 0);
  vv_now_utc (now);
  CHECK (strcmp (now, "2026-11-25T01:00:00Z") == 0);
  CHECK (vv_clock_set (start) == 0);            /* backwards is allowed */
  CHECK (vv_clock_now () == start);
  CHECK (vv_clock_set (-1) < 0);
  CHECK (vv_get_error_code () == VV_ERR_INVALID);
  CHECK (vv_clock_set (VV_CLOCK_MAX + 1) < 0);
  CHECK (vv_clock_advance (INT64_MAX) < 0);
  CHECK (vv_clock_advance (-start - 1) < 0);
  CHECK (vv_clock_now () == start);

  /* A sleeper wakes when the clock reaches its deadline, not before. */
  sl.deadline = start + 3600;
  CHECK (pthread_create (&th, NULL, sleeper_main, &sl) == 0);
  usleep (50000);
  CHECK (!sl.done);
  CHECK (vv_clock_advance (1800) == 0);
  usleep (100000);
  CHECK (!sl.done);                             /* woke, slept again */
  CHECK (vv_clock_advance (1800) == 0);
  CHECK (done_soon (&sl));
  CHECK (pthread_join (th, NULL) == 0);

  /* A kick wakes it without moving the clock (a stop request). */
  sl.done = 0;
  sl.deadline = start + 10 * DAY;
  CHECK (pthread_create (&th, NULL, sleeper_main, &sl) == 0);
  usleep (50000);
  CHECK (!sl.done);
  pthread_mutex_lock (&sl.lock);
  sl.stop = true;
  pthread_mutex_unlock (&sl.lock);
  vv_clock_kick ();
  CHECK (done_soon (&sl));
  CHECK (pthread_join (th, NULL) == 0);

  /* A set between reading the generation and sleeping is not lost. */
  uint64_t gen = vv_clock_generation ();
  CHECK (vv_clock_set (start + 5) == 0);
  CHECK (!vv_clock_sleep_until (start + DAY, gen));
  CHECK (vv_clock_sleep_until (start + 5, vv_clock_generation ()));

  /* Advances from several threads add up. */
  time_t before = vv_clock_now ();
  for (int i = 0; i < 4; i++)
    CHECK (pthread_create (&adv[i], NULL, advance_main, NULL) == 0);
  for (int i = 0; i < 4; i++)
    CHECK (pthread_join (adv[i], NULL) == 0);
  CHECK (vv_clock_now () == before + 4000);

  /* Restarting the test clock. */
  vv_clock_enable_test (-5);
  CHECK (vv_clock_now () == 0);
  printf ("clock: ok\n");
}

int
main (void)
{
  test_table ();
  test_sweeps ();
  vv_tz_init ();                /* as the daemon does before its threads */
  test_parse ();
  test_summary ();
  test_jitter ();
  test_verify_spread ();
  test_missed ();
  test_policy ();
  test_threads ();
  test_clock ();
  return EXIT_SUCCESS;
}
