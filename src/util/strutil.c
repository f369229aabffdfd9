/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "error.h"
#include "strutil.h"

char *
vv_printf (const char *fmt, ...)
{
  va_list ap;
  char *s;
  int r;

  va_start (ap, fmt);
  r = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (r < 0) {
    vv_error_errno (ENOMEM, "formatting a string");
    return NULL;
  }
  return s;
}

char *
vv_strdup (const char *s)
{
  char *r;

  if (s == NULL)
    return NULL;
  r = strdup (s);
  if (r == NULL)
    vv_error_errno (errno, "strdup");
  return r;
}

int
vv_random_id (const char *prefix, char ret[VV_ID_MAX])
{
  unsigned char b[6];
  size_t i;
  int n;

  if (getrandom (b, sizeof b, 0) != (ssize_t) sizeof b) {
    vv_error_errno (errno, "getrandom");
    return -1;
  }
  n = snprintf (ret, VV_ID_MAX, "%s-", prefix);
  for (i = 0; i < sizeof b; i++)
    n += snprintf (ret + n, VV_ID_MAX - n, "%02x", b[i]);
  return 0;
}

bool
vv_is_id (const char *prefix, const char *s)
{
  size_t pl = strlen (prefix);
  size_t i;

  if (s == NULL || strncmp (s, prefix, pl) != 0 || s[pl] != '-')
    return false;
  s += pl + 1;
  for (i = 0; s[i]; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return i == 12;
}

bool
vv_is_uuid (const char *s, size_t len)
{
  if (len != 36)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return false;
    }
    else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  }
  return true;
}

void
vv_format_time_utc (time_t t, char ret[VV_TIME_MAX])
{
  struct tm tm;

  gmtime_r (&t, &tm);
  strftime (ret, VV_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
vv_now_utc (char ret[VV_TIME_MAX])
{
  vv_format_time_utc (vv_clock_now (), ret);
}

int
vv_parse_time_utc (const char *s, time_t *ret)
{
  struct tm tm = { 0 };
  const char *end;

  end = s ? strptime (s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
  if (end == NULL || *end != '\0') {
    vv_error_code (VV_ERR_INVALID,
                   "'%s' is not a UTC time like 2026-11-24T01:00:00Z",
                   s ? s : "(null)");
    return -1;
  }
  *ret = timegm (&tm);
  return 0;
}

void
vv_human_size (uint64_t bytes, char ret[32])
{
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
  double v = bytes;
  size_t u = 0;

  while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf (ret, 32, "%" PRIu64 " B", bytes);
  else
    snprintf (ret, 32, "%.1f %s", v, units[u]);
}

int
vv_mkdir_p (const char *path, unsigned mode)
{
  _cleanup_free_ char *p = vv_strdup (path);
  char *s;

  if (p == NULL)
    return -1;
  for (s = p + 1; ; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir (p, mode) == 0) {
        /* Exactly mode: the daemon's umask is 077. */
        if (chmod (p, mode) == -1) {
          vv_error_errno (errno, "cannot set the mode of directory %s", p);
          return -1;
        }
      }
      else if (errno != EEXIST) {
        vv_error_errno (errno, "cannot create directory %s", p);
        return -1;
      }
      *s = c;
      if (c == '\0')
        break;
    }
  }
  return 0;
}

static int
remove_one (const char *fpath, const struct stat *sb, int typeflag,
            struct FTW *ftwbuf)
{
  if (remove (fpath) == -1 && errno != ENOENT) {
    vv_error_errno (errno, "cannot remove %s", fpath);
    return -1;
  }
  return 0;
}

int
vv_remove_tree (const char *path)
{
  struct stat st;

  if (lstat (path, &st) == -1 && errno == ENOENT)
    return 0;
  return nftw (path, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int
vv_check_name (const char *what, const char *name, size_t max)
{
  size_t i, len;

  if (name == NULL || name[0] == '\0') {
    vv_error_code (VV_ERR_INVALID, "%s is missing", what);
    return -1;
  }
  len = strlen (name);
  if (len > max) {
    vv_error_code (VV_ERR_INVALID,
                   "%s is %zu bytes long; the limit is %zu", what, len, max);
    return -1;
  }
  if (name[0] == '.' || name[0] == '-') {
    vv_error_code (VV_ERR_INVALID,
                   "%s '%s' must not start with '%c'", what, name, name[0]);
    return -1;
  }
  for (i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
      vv_error_code (VV_ERR_INVALID,
                     "%s '%s' contains '%c'; use letters, digits, '.', '_' "
                     "and '-'", what, name, c);
      return -1;
    }
  }
  return 0;
}

bool
vv_str_has_prefix (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

bool
vv_str_has_suffix (const char *s, const char *suffix)
{
  size_t a = strlen (s), b = strlen (suffix);
  return a >= b && strcmp (s + a - b, suffix) == 0;
}
