/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Local time of schedules: the tz database check, and slots in UTC.
 *
 * The C library knows one timezone per process (TZ), and setenv/tzset are
 * not thread-safe, so every conversion holds tz_lock while TZ names the
 * schedule's zone, and puts the old TZ back before unlocking.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scheduler/schedule.h"
#include "util/cleanup.h"
#include "util/error.h"

#define DAY 86400

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *
tz_dir (void)
{
  const char *d = getenv ("TZDIR");
  return d && *d ? d : "/usr/share/zoneinfo";
}

/* Letters, digits, '_', '-', '+'; components start with a letter (so no
 * "", "." or ".."); no leading '/'; not the leap-second "right/" zones,
 * whose time_t is not POSIX time.
 */
static bool
tz_name_ok (const char *name)
{
  bool start = true;

  if (strncmp (name, "right/", 6) == 0)
    return false;
  for (const char *p = name; *p; p++) {
    char c = *p;
    bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');

    if (start && !letter)
      return false;
    start = c == '/';
    if (!letter && !(c >= '0' && c <= '9') && !strchr ("/_-+", c))
      return false;
  }
  return !start;
}

int
vv_tz_check (const char *name)
{
  _cleanup_free_ char *path = NULL;
  _cleanup_close_ int fd = -1;
  struct stat st;
  char magic[4];

  if (name == NULL || *name == '\0') {
    vv_error_code (VV_ERR_INVALID, "timezone is empty; use an IANA name "
                   "such as Europe/Berlin or UTC");
    return -1;
  }
  if (strlen (name) >= VV_TZ_NAME_MAX) {
    vv_error_code (VV_ERR_INVALID, "timezone '%.32s...' is longer than %d "
                   "characters", name, VV_TZ_NAME_MAX - 1);
    return -1;
  }
  if (!tz_name_ok (name)) {
    vv_error_code (VV_ERR_INVALID, "invalid timezone '%s': use an IANA "
                   "name such as Europe/Berlin, not a path", name);
    return -1;
  }
  if (asprintf (&path, "%s/%s", tz_dir (), name) < 0) {
    path = NULL;
    vv_error_errno (ENOMEM, "checking timezone '%s'", name);
    return -1;
  }
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)
      || read (fd, magic, sizeof magic) != sizeof magic
      || memcmp (magic, "TZif", 4) != 0) {
    vv_error_code (VV_ERR_INVALID, "unknown timezone '%s'; use an IANA "
                   "name such as Europe/Berlin (see %s)", name, tz_dir ());
    return -1;
  }
  return 0;
}

struct tz_scope {
  char *saved;                  /* TZ before, NULL when it was unset */
};

/* setenv of a variable that exists only swaps one pointer in environ;
 * adding or removing one reallocates or shifts environ under every other
 * thread's getenv (libvirt, libcurl, posix_spawn).  So TZ is made to exist
 * once, before threads start, and is never removed afterwards: "unset" is
 * spelled ":/etc/localtime", which means the same to glibc.
 */
#define TZ_SYSTEM_DEFAULT ":/etc/localtime"

void
vv_tz_init (void)
{
  pthread_mutex_lock (&tz_lock);
  if (getenv ("TZ") == NULL)
    setenv ("TZ", TZ_SYSTEM_DEFAULT, 1);
  pthread_mutex_unlock (&tz_lock);
}

static int
tz_enter (const char *name, struct tz_scope *sc)
{
  const char *old;
  char value[VV_TZ_NAME_MAX + 1];

  pthread_mutex_lock (&tz_lock);
  if (vv_tz_check (name) < 0) {
    pthread_mutex_unlock (&tz_lock);
    return -1;
  }
  old = getenv ("TZ");
  sc->saved = NULL;
  if (old && (sc->saved = strdup (old)) == NULL)
    goto nomem;
  /* The ':' makes glibc read the file, never a POSIX TZ rule string. */
  snprintf (value, sizeof value, ":%s", name);
  if (setenv ("TZ", value, 1) < 0)
    goto nomem;
  tzset ();
  return 0;

 nomem:
  free (sc->saved);
  pthread_mutex_unlock (&tz_lock);
  vv_error_errno (ENOMEM, "switching to timezone '%s'", name);
  return -1;
}

static void
tz_leave (struct tz_scope *sc)
{
  setenv ("TZ", sc->saved ? sc->saved : TZ_SYSTEM_DEFAULT, 1);
  tzset ();
  free (sc->saved);
  pthread_mutex_unlock (&tz_lock);
}

/* The local wall clock at t, as seconds on a UTC-like scale.  Under
 * tz_lock.
 */
static int64_t
local_secs (time_t t)
{
  struct tm tm;

  localtime_r (&t, &tm);
  return (int64_t) t + tm.tm_gmtoff;
}

/* The first instant whose local wall clock reads `wall` (a UTC-like scale,
 * from timegm) or later.  That is the instant itself when it exists once,
 * its first occurrence when it exists twice (fall back) and the end of the
 * gap when it does not exist (spring forward).  Under tz_lock.
 *
 * UTC offsets lie within -12h..+14h, so the answer is in
 * [wall - 15h, wall + 13h].  Sampling the offset every hour there finds
 * each offset in force; wall - offset is a solution when that offset is
 * in force at it.
 */
static time_t
resolve_local (int64_t wall)
{
  const int64_t lo = wall - 15 * 3600, hi = wall + 13 * 3600;
  long offsets[32];
  size_t n = 0;
  int64_t best = INT64_MAX;
  int64_t a, b;

  for (int64_t t = lo; t <= hi && n < 32; t += 3600) {
    long off = (long) (local_secs ((time_t) t) - t);
    size_t i;

    for (i = 0; i < n && offsets[i] != off; i++)
      ;
    if (i == n)
      offsets[n++] = off;
  }
  for (size_t i = 0; i < n; i++) {
    int64_t t = wall - offsets[i];
    if (local_secs ((time_t) t) == wall && t < best)
      best = t;
  }
  if (best != INT64_MAX)
    return (time_t) best;

  /* In a gap the wall clock jumps over `wall` once and never reaches it,
   * so "reads wall or later" turns true once in [lo, hi]: bisect.
   */
  a = lo;                       /* reads earlier */
  b = hi;                       /* reads wall or later */
  while (b - a > 1) {
    int64_t m = a + (b - a) / 2;
    if (local_secs ((time_t) m) >= wall)
      b = m;
    else
      a = m;
  }
  return (time_t) b;
}

static bool
time_ok (time_t t)
{
  if (t < 0 || t > VV_SCHEDULE_TIME_MAX) {
    vv_error_code (VV_ERR_INVALID, "time %lld is out of range "
                   "(1970 .. 9999)", (long long) t);
    return false;
  }
  return true;
}

int
vv_schedule_next (const struct vv_schedule *s, time_t after, time_t *ret)
{
  struct tz_scope sc;
  struct tm tm;
  int64_t midnight;
  time_t found = -1;

  if (!time_ok (after) || tz_enter (s->tz, &sc) < 0)
    return -1;

  localtime_r (&after, &tm);
  midnight = local_secs (after) - (tm.tm_hour * 3600 + tm.tm_min * 60
                                   + tm.tm_sec);
  /* Slots are in day order; a gap can move one into the next local day,
   * hence the day before, and a week and a day covers weekly ones.
   */
  for (int k = -1; k <= 8 && found < 0; k++) {
    int64_t day = midnight + (int64_t) k * DAY;
    int wday = (int) (((day / DAY) % 7 + 11) % 7);      /* 1970-01-01: Thu */
    time_t t;

    if (s->kind == VV_SCHEDULE_WEEKLY && wday != s->wday)
      continue;
    t = resolve_local (day + s->hour * 3600 + s->minute * 60);
    if (t > after)
      found = t;
  }
  tz_leave (&sc);

  if (found < 0 || !time_ok (found))
    return -1;
  *ret = found;
  return 0;
}

int
vv_schedule_next_run (const struct vv_schedule *s, const char *seed,
                      time_t after, time_t *ret)
{
  time_t j = vv_schedule_jitter (s->window, seed);
  time_t slot;

  if (!time_ok (after))
    return -1;
  if (vv_schedule_next (s, after >= j ? after - j : 0, &slot) < 0)
    return -1;
  while (slot + j <= after)     /* only when after < j */
    if (vv_schedule_next (s, slot, &slot) < 0)
      return -1;
  *ret = slot + j;
  return 0;
}

int
vv_schedule_missed (const struct vv_schedule *s, const char *seed,
                    time_t last_run, time_t now)
{
  time_t run;

  if (now <= last_run)
    return 0;
  if (vv_schedule_next_run (s, seed, last_run, &run) < 0)
    return -1;
  return run <= now;
}

int
vv_schedule_local_wday (const struct vv_schedule *s, time_t t, int *ret)
{
  struct tz_scope sc;
  struct tm tm;

  if (!time_ok (t) || tz_enter (s->tz, &sc) < 0)
    return -1;
  localtime_r (&t, &tm);
  tz_leave (&sc);
  *ret = tm.tm_wday;
  return 0;
}
