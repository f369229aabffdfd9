/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"

/* Set once before threads start, read-only afterwards. */
static char spec[VV_FAULT_SPEC_MAX + 1];
static bool enabled;

void
vv_fault_enable (void)
{
  const char *v = getenv ("VV_TEST_FAULT");

  if (v == NULL || strlen (v) > VV_FAULT_SPEC_MAX)
    return;
  snprintf (spec, sizeof spec, "%s", v);
  enabled = spec[0] != '\0';
}

/* The action of point in the spec, or NULL. */
static const char *
action_of (const char *point, size_t *ret_len)
{
  size_t plen = strlen (point);

  for (const char *p = spec; *p; ) {
    size_t len = strcspn (p, ",");
    const char *eq = memchr (p, '=', len);

    if (eq && (size_t) (eq - p) == plen && memcmp (p, point, plen) == 0) {
      *ret_len = len - plen - 1;
      return eq + 1;
    }
    p += len;
    if (*p == ',')
      p++;
  }
  return NULL;
}

int
vv_fault (const char *fmt, ...)
{
  char point[256];
  const char *action;
  size_t len;
  va_list ap;

  if (!enabled)
    return 0;
  va_start (ap, fmt);
  vsnprintf (point, sizeof point, fmt, ap);
  va_end (ap);
  action = action_of (point, &len);
  if (action == NULL)
    return 0;
  if (len == 5 && memcmp (action, "crash", 5) == 0) {
    static const char msg[] = "virtvaultd: fault point reached, crashing\n";
    if (write (STDERR_FILENO, msg, sizeof msg - 1) < 0) {
      /* Nothing to do: the process ends anyway. */
    }
    _exit (VV_FAULT_EXIT);
  }
  if (len == 4 && memcmp (action, "fail", 4) == 0) {
    errno = EIO;
    return -1;
  }
  return 0;
}
