/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Error records of the storage plugins.  A plugin's worker threads must
 * not call virtvault_error (the host keeps one error per thread), and an
 * inner function does not know yet whether its caller retries: both keep
 * the error in a struct plugin_err, which the callback reports once at
 * the plugin boundary.
 */
#ifndef VV_PLUGIN_ERR_H
#define VV_PLUGIN_ERR_H

#include <stdbool.h>

struct plugin_err {
  int code;                     /* errno class, see virtvault-plugin.h */
  char msg[1024];
};

void plugin_err_set (struct plugin_err *e, int code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

/* virtvault_error with errno = e->code (EIO if unset); errno stays so. */
void plugin_err_report (const struct plugin_err *e);

/* Report an error of class code at once (plugin_err_set + report). */
void plugin_error (int code, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* The errno classes the ABI calls transient: it may work if tried again. */
bool plugin_err_transient (int code);

#endif
