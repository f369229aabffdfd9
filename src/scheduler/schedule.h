/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* When a policy runs: daily or weekly at a local time in an IANA
 * timezone, with an optional window for deterministic jitter.  Pure
 * functions (apart from reading the tz database), tested over whole years
 * by tests/test-schedule.c.  docs/scheduling.md is the user's view.
 *
 * DST rules (vv_schedule_next):
 * - a local time that does not exist that day (spring forward) runs once,
 *   at the first instant after the gap (02:30 in Europe/Berlin on the last
 *   Sunday of March runs at 03:00 CEST);
 * - a local time that occurs twice (fall back) runs once, at the first
 *   occurrence (02:30 CEST, not 02:30 CET).
 *
 * Local time is computed with the C library under one process-wide mutex
 * that sets TZ, calls tzset and restores TZ afterwards (setenv is not
 * thread-safe).  Nothing else in virtvaultd may read or change TZ or use
 * localtime while it runs; the daemon works in UTC everywhere else.
 */
#ifndef VV_SCHEDULER_SCHEDULE_H
#define VV_SCHEDULER_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum vv_schedule_kind {
  VV_SCHEDULE_DAILY = 0,
  VV_SCHEDULE_WEEKLY,
};

/* Longest timezone name accepted (with the NUL); IANA's longest is 32. */
#define VV_TZ_NAME_MAX 64
/* The largest window, in minutes. */
#define VV_WINDOW_MAX_MINUTES (24 * 60)
/* Times a schedule computes with: 1970-01-01 .. 9999-12-31 (UTC). */
#define VV_SCHEDULE_TIME_MAX ((time_t) 253402300799LL)

struct vv_schedule {
  enum vv_schedule_kind kind;
  int wday;                     /* weekly: 0 Sunday .. 6 Saturday; daily: -1 */
  int hour;                     /* 0-23, local */
  int minute;                   /* 0-59, local */
  char tz[VV_TZ_NAME_MAX];      /* IANA name, "UTC" when none was given */
  unsigned window;              /* minutes, 0 = start on time */
};

/* Parse the user's words, as the CLI and the API take them:
 * kind "daily"/"weekly"; day "mon".."sun" or "monday".. (any case);
 * at "HH:MM" (24 h); tz an IANA name (NULL: UTC); window "0", "90m",
 * "2h" (NULL: 0).  Errors are VV_ERR_INVALID and name the field:
 * "hour 25 is out of range 0-23", "--day is only valid for weekly
 * schedules", "unknown timezone 'Mars/Olympus' ...".
 */
int vv_schedule_parse (const char *kind, const char *day, const char *at,
                       const char *tz, const char *window,
                       struct vv_schedule *ret);

int vv_schedule_kind_parse (const char *s, enum vv_schedule_kind *ret);
int vv_schedule_day_parse (const char *s, int *ret_wday);
int vv_schedule_at_parse (const char *s, int *ret_hour, int *ret_minute);
int vv_schedule_window_parse (const char *s, unsigned *ret_minutes);

/* "daily"/"weekly"; "mon".."sun" (NULL for an invalid day). */
const char *vv_schedule_kind_name (enum vv_schedule_kind kind);
const char *vv_schedule_day_name (int wday);

/* Checks every field of a schedule that came from elsewhere (the
 * catalog, JSON numbers), with the same messages as vv_schedule_parse.
 */
int vv_schedule_validate (const struct vv_schedule *s);

/* An IANA name present in the system's tz database ($TZDIR or
 * /usr/share/zoneinfo) as a TZif file.  Absolute paths, "." and ".."
 * components and odd characters are refused before the file system is
 * looked at.
 */
int vv_tz_check (const char *name);
/* Makes TZ exist in the environment (":/etc/localtime" when unset, which
 * means the same), so later conversions only ever replace it.  Call once
 * at start-up, before any thread starts.
 */
void vv_tz_init (void);

/* The first slot strictly after `after` (both UTC).  Fails only for a
 * time out of range or a zone that vanished from the tz database.
 */
int vv_schedule_next (const struct vv_schedule *s, time_t after,
                      time_t *ret);

/* The seconds, in [0, window * 60), a run starts after its slot: a hash
 * of seed (e.g. the instance's uuid), so the same instance always runs at
 * the same offset, across restarts.  0 when window is 0.
 */
uint32_t vv_schedule_jitter (unsigned window, const char *seed);

/* Scheduled verify (docs/scheduling.md): with verify_every = days, a
 * backup's verify slots are phase + k * days * 86400 seconds of the Unix
 * epoch, k = 0, 1, ...: one a period, where the phase, in [0, days *
 * 86400), is the FNV-1a hash of the backup's id.  So the verifies of a
 * policy's backups are spread evenly over the period rather than all
 * due at once, and a backup never has two in one period.  vv_verify_next
 * is the slot its next verify is due at: the first strictly after since
 * (its completion) when it was never verified, else (since is its last
 * verify, verified true) the first at least half a period after since.
 * days 0 (never) gives the largest time.
 */
int64_t vv_verify_phase (const char *backup_id, unsigned days);
time_t vv_verify_next (const char *backup_id, unsigned days, time_t since,
                       bool verified);

/* The first run (slot + jitter of seed) strictly after `after`. */
int vv_schedule_next_run (const struct vv_schedule *s, const char *seed,
                          time_t after, time_t *ret);

/* Whether at least one run (slot + jitter of seed) fell in
 * (last_run, now]: the daemon then runs once on start-up, however many
 * were missed.  last_run is the last run, or the time the instance was
 * attached when it has never run.  1 yes, 0 no, -1 error.
 */
int vv_schedule_missed (const struct vv_schedule *s, const char *seed,
                        time_t last_run, time_t now);

/* The weekday (0 Sunday .. 6) of t in the schedule's timezone. */
int vv_schedule_local_wday (const struct vv_schedule *s, time_t t,
                            int *ret);

/* "Daily at 2:00 AM Europe/Berlin", "Weekly on Monday at 3:00 AM UTC",
 * ", window 2h" appended when there is one.
 */
#define VV_SCHEDULE_SUMMARY_MAX 128
void vv_schedule_summary (const struct vv_schedule *s,
                          char ret[VV_SCHEDULE_SUMMARY_MAX]);

/* ---- chain position of a policy's runs */

enum vv_run_kind {
  VV_RUN_SKIP = 0,              /* no backup in this slot */
  VV_RUN_FULL,
  VV_RUN_INCREMENTAL,           /* engine: incremental when possible */
};
const char *vv_run_kind_name (enum vv_run_kind k);

/* The schedule a policy's slots follow.  A weekly policy with a chain
 * runs every day at the same time: the full on its day, incrementals on
 * the others; without a chain (max_chain 0) it runs on its day only.
 */
void vv_policy_run_schedule (const struct vv_schedule *s, unsigned max_chain,
                             struct vv_schedule *ret);

/* What a policy's run takes.  runs_in_chain counts the completed backups
 * of the instance's current automatic chain, the full included (0: no
 * chain).  Daily: a full when there is no chain or it already holds
 * max_chain incrementals, else an incremental (day 1 full, days
 * 2..max_chain+1 incrementals, then a new full).  Weekly (on_full_day:
 * the slot falls on the schedule's day): a full on its day; on other days
 * an incremental while the chain has room, a full when it has none, and
 * nothing when max_chain is 0.
 */
enum vv_run_kind vv_policy_backup_kind (enum vv_schedule_kind kind,
                                        unsigned max_chain,
                                        unsigned runs_in_chain,
                                        bool on_full_day);

#endif
