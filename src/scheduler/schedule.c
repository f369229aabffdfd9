/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Schedules: parsing, validation, summaries, jitter, chain position.
 * Local time lives in schedule-tz.c.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "scheduler/schedule.h"
#include "util/error.h"

static const char *const day_names[7] = {
  "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"
};
static const char *const day_titles[7] = {
  "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"
};

int
vv_schedule_kind_parse (const char *s, enum vv_schedule_kind *ret)
{
  if (s && strcmp (s, "daily") == 0)
    *ret = VV_SCHEDULE_DAILY;
  else if (s && strcmp (s, "weekly") == 0)
    *ret = VV_SCHEDULE_WEEKLY;
  else {
    vv_error_code (VV_ERR_INVALID,
                   "unknown schedule '%.32s'; use daily or weekly",
                   s ? s : "");
    return -1;
  }
  return 0;
}

const char *
vv_schedule_kind_name (enum vv_schedule_kind kind)
{
  return kind == VV_SCHEDULE_WEEKLY ? "weekly" : "daily";
}

int
vv_schedule_day_parse (const char *s, int *ret_wday)
{
  for (int i = 0; s && i < 7; i++) {
    if (strcasecmp (s, day_names[i]) == 0
        || (strlen (s) == 3 && strncasecmp (s, day_names[i], 3) == 0)) {
      *ret_wday = i;
      return 0;
    }
  }
  vv_error_code (VV_ERR_INVALID,
                 "unknown day '%.32s'; use mon, tue, wed, thu, fri, sat "
                 "or sun", s ? s : "");
  return -1;
}

const char *
vv_schedule_day_name (int wday)
{
  static const char *const abbrev[7] = {
    "sun", "mon", "tue", "wed", "thu", "fri", "sat"
  };
  return wday >= 0 && wday < 7 ? abbrev[wday] : NULL;
}

static int
check_hour_minute (int hour, int minute)
{
  if (hour < 0 || hour > 23) {
    vv_error_code (VV_ERR_INVALID, "hour %d is out of range 0-23", hour);
    return -1;
  }
  if (minute < 0 || minute > 59) {
    vv_error_code (VV_ERR_INVALID, "minute %d is out of range 0-59", minute);
    return -1;
  }
  return 0;
}

/* Up to max digits; the number of digits read, 0 if none. */
static size_t
read_digits (const char *s, size_t max, int *ret)
{
  size_t n = 0;
  int v = 0;

  while (n < max && s[n] >= '0' && s[n] <= '9')
    v = v * 10 + (s[n++] - '0');
  *ret = v;
  return n;
}

int
vv_schedule_at_parse (const char *s, int *ret_hour, int *ret_minute)
{
  int hour, minute;
  size_t n, m;

  n = s ? read_digits (s, 3, &hour) : 0;
  m = n > 0 && s[n] == ':' ? read_digits (s + n + 1, 2, &minute) : 0;
  if (m != 2 || s[n + 1 + m] != '\0') {
    vv_error_code (VV_ERR_INVALID,
                   "time of day '%.32s' is not like 02:30 (24-hour HH:MM)",
                   s ? s : "");
    return -1;
  }
  if (check_hour_minute (hour, minute) < 0)
    return -1;
  *ret_hour = hour;
  *ret_minute = minute;
  return 0;
}

int
vv_schedule_window_parse (const char *s, unsigned *ret_minutes)
{
  int v;
  size_t n = s ? read_digits (s, 5, &v) : 0;
  unsigned minutes;

  if (n > 0 && s[n] == '\0' && v == 0)
    minutes = 0;
  else if (n > 0 && strcmp (s + n, "m") == 0)
    minutes = v;
  else if (n > 0 && strcmp (s + n, "h") == 0)
    minutes = v * 60;
  else {
    vv_error_code (VV_ERR_INVALID,
                   "window '%.32s' is not a duration like 90m or 2h",
                   s ? s : "");
    return -1;
  }
  if (minutes > VV_WINDOW_MAX_MINUTES) {
    vv_error_code (VV_ERR_INVALID, "window %s is out of range 0-24h", s);
    return -1;
  }
  *ret_minutes = minutes;
  return 0;
}

int
vv_schedule_parse (const char *kind, const char *day, const char *at,
                   const char *tz, const char *window,
                   struct vv_schedule *ret)
{
  struct vv_schedule s = { .wday = -1 };

  if (vv_schedule_kind_parse (kind, &s.kind) < 0)
    return -1;
  if (s.kind == VV_SCHEDULE_DAILY && day) {
    vv_error_code (VV_ERR_INVALID,
                   "--day is only valid for weekly schedules");
    return -1;
  }
  if (s.kind == VV_SCHEDULE_WEEKLY) {
    if (day == NULL) {
      vv_error_code (VV_ERR_INVALID,
                     "a weekly schedule needs --day (mon .. sun)");
      return -1;
    }
    if (vv_schedule_day_parse (day, &s.wday) < 0)
      return -1;
  }
  if (vv_schedule_at_parse (at, &s.hour, &s.minute) < 0)
    return -1;
  if (tz == NULL || *tz == '\0')
    tz = "UTC";
  if (vv_tz_check (tz) < 0)
    return -1;
  strcpy (s.tz, tz);            /* length checked by vv_tz_check */
  if (window && vv_schedule_window_parse (window, &s.window) < 0)
    return -1;
  *ret = s;
  return 0;
}

int
vv_schedule_validate (const struct vv_schedule *s)
{
  if (s->kind != VV_SCHEDULE_DAILY && s->kind != VV_SCHEDULE_WEEKLY) {
    vv_error_code (VV_ERR_INVALID,
                   "schedule kind %d is neither daily nor weekly", s->kind);
    return -1;
  }
  if (s->kind == VV_SCHEDULE_DAILY && s->wday != -1) {
    vv_error_code (VV_ERR_INVALID,
                   "--day is only valid for weekly schedules");
    return -1;
  }
  if (s->kind == VV_SCHEDULE_WEEKLY && (s->wday < 0 || s->wday > 6)) {
    vv_error_code (VV_ERR_INVALID,
                   "day %d is out of range 0-6 (Sunday-Saturday)", s->wday);
    return -1;
  }
  if (check_hour_minute (s->hour, s->minute) < 0)
    return -1;
  if (s->window > VV_WINDOW_MAX_MINUTES) {
    vv_error_code (VV_ERR_INVALID,
                   "window %u minutes is out of range 0-%d",
                   s->window, VV_WINDOW_MAX_MINUTES);
    return -1;
  }
  if (memchr (s->tz, '\0', sizeof s->tz) == NULL) {
    vv_error_code (VV_ERR_INVALID, "timezone name is not terminated");
    return -1;
  }
  return vv_tz_check (s->tz);
}

void
vv_schedule_summary (const struct vv_schedule *s,
                     char ret[VV_SCHEDULE_SUMMARY_MAX])
{
  int h12 = s->hour % 12 == 0 ? 12 : s->hour % 12;
  const char *ampm = s->hour < 12 ? "AM" : "PM";
  char window[32] = "";
  int n;

  if (s->window > 0 && s->window % 60 == 0)
    snprintf (window, sizeof window, ", window %uh", s->window / 60);
  else if (s->window > 0)
    snprintf (window, sizeof window, ", window %um", s->window);

  if (s->kind == VV_SCHEDULE_WEEKLY && s->wday >= 0 && s->wday < 7)
    n = snprintf (ret, VV_SCHEDULE_SUMMARY_MAX, "Weekly on %s at %d:%02d %s",
                  day_titles[s->wday], h12, s->minute, ampm);
  else
    n = snprintf (ret, VV_SCHEDULE_SUMMARY_MAX, "Daily at %d:%02d %s",
                  h12, s->minute, ampm);
  if (n > 0 && n < VV_SCHEDULE_SUMMARY_MAX)
    snprintf (ret + n, VV_SCHEDULE_SUMMARY_MAX - n, " %.*s%s",
              VV_TZ_NAME_MAX - 1, s->tz, window);
}

/* FNV-1a (64 bits): tiny and fixed forever.  Changing the hash would
 * move every instance's run time and every backup's verify time, so it
 * is part of the contract.
 */
static uint64_t
fnv1a (const char *seed)
{
  uint64_t h = 0xcbf29ce484222325ULL;

  for (const unsigned char *p = (const unsigned char *) (seed ? seed : "");
       *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint32_t
vv_schedule_jitter (unsigned window, const char *seed)
{
  if (window == 0)
    return 0;
  if (window > VV_WINDOW_MAX_MINUTES)
    window = VV_WINDOW_MAX_MINUTES;
  return (uint32_t) (fnv1a (seed) % ((uint64_t) window * 60));
}

/* ---- scheduled verify ---- */

int64_t
vv_verify_phase (const char *backup_id, unsigned days)
{
  if (days == 0)
    return 0;
  return (int64_t) (fnv1a (backup_id) % ((uint64_t) days * 86400));
}

time_t
vv_verify_next (const char *backup_id, unsigned days, time_t since,
                bool verified)
{
  int64_t period = (int64_t) days * 86400;
  int64_t phase = vv_verify_phase (backup_id, days);
  int64_t k;

  if (days == 0)
    return (time_t) INT64_MAX;
  /* A verify that ran late (daemon down, domain busy) is not followed by
   * another one at once: at least half a period lies between two.
   */
  if (verified)
    since += period / 2 - 1;
  /* The slots are phase + k * period; floor division for times before
   * the phase.
   */
  k = ((int64_t) since - phase) / period;
  if ((int64_t) since - phase < 0 && ((int64_t) since - phase) % period)
    k--;
  return (time_t) (phase + (k + 1) * period);
}

const char *
vv_run_kind_name (enum vv_run_kind k)
{
  switch (k) {
  case VV_RUN_FULL: return "full";
  case VV_RUN_INCREMENTAL: return "incremental";
  case VV_RUN_SKIP: break;
  }
  return "skip";
}

void
vv_policy_run_schedule (const struct vv_schedule *s, unsigned max_chain,
                        struct vv_schedule *ret)
{
  *ret = *s;
  if (s->kind == VV_SCHEDULE_WEEKLY && max_chain > 0) {
    ret->kind = VV_SCHEDULE_DAILY;
    ret->wday = -1;
  }
}

enum vv_run_kind
vv_policy_backup_kind (enum vv_schedule_kind kind, unsigned max_chain,
                       unsigned runs_in_chain, bool on_full_day)
{
  bool room = runs_in_chain > 0 && runs_in_chain <= max_chain;

  if (kind == VV_SCHEDULE_WEEKLY) {
    if (on_full_day)
      return VV_RUN_FULL;
    if (max_chain == 0)
      return VV_RUN_SKIP;
  }
  return room ? VV_RUN_INCREMENTAL : VV_RUN_FULL;
}
