/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log lines from code below the daemon (storage plugins through the host
 * services).  The daemon installs a sink; elsewhere (the CLI, the tests)
 * lines are dropped unless VIRTVAULT_DEBUG is set, then they go to stderr.
 */
#ifndef VV_UTIL_LOG_H
#define VV_UTIL_LOG_H

#include <stdarg.h>

enum vv_log_level {
  VV_LOG_DEBUG = 0,
  VV_LOG_INFO = 1,
  VV_LOG_WARNING = 2,
};

typedef void (*vv_log_sink) (enum vv_log_level level, const char *line);

void vv_log_set_sink (vv_log_sink sink);
void vv_log (enum vv_log_level level, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
void vv_vlog (enum vv_log_level level, const char *fmt, va_list ap)
  __attribute__ ((format (printf, 2, 0)));

#endif
