/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"

/* Longer lines are cut: a log line is for a person. */
#define VV_LOG_LINE_MAX 1024

static _Atomic (vv_log_sink) log_sink;

void
vv_log_set_sink (vv_log_sink sink)
{
  atomic_store (&log_sink, sink);
}

void
vv_vlog (enum vv_log_level level, const char *fmt, va_list ap)
{
  vv_log_sink sink = atomic_load (&log_sink);
  bool debug = getenv ("VIRTVAULT_DEBUG") != NULL;
  char line[VV_LOG_LINE_MAX];

  if (level == VV_LOG_DEBUG && !debug)
    return;
  if (sink == NULL && !debug)
    return;
  vsnprintf (line, sizeof line, fmt, ap);
  if (sink)
    sink (level, line);
  else
    fprintf (stderr, "virtvault: %s\n", line);
}

void
vv_log (enum vv_log_level level, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vv_vlog (level, fmt, ap);
  va_end (ap);
}
