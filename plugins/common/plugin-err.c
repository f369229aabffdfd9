/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See plugin-err.h. */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <virtvault-plugin.h>

#include "plugin-err.h"

void
plugin_err_set (struct plugin_err *e, int code, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (e->msg, sizeof e->msg, fmt, ap);
  va_end (ap);
  e->code = code;
}

void
plugin_err_report (const struct plugin_err *e)
{
  errno = e->code ? e->code : EIO;
  virtvault_error ("%s", e->msg[0] ? e->msg : "unknown error");
  errno = e->code ? e->code : EIO;
}

void
plugin_error (int code, const char *fmt, ...)
{
  struct plugin_err e;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (e.msg, sizeof e.msg, fmt, ap);
  va_end (ap);
  e.code = code;
  plugin_err_report (&e);
}

bool
plugin_err_transient (int code)
{
  return code == EAGAIN || code == ETIMEDOUT || code == ECONNRESET ||
    code == ECONNREFUSED || code == EHOSTUNREACH;
}
