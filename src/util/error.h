/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-thread error reporting.
 *
 * An error is reported once, where it happens, with a message that names
 * the object and says what to do; callers return -1 / NULL upward.  Only
 * the daemon and the CLI print (or send) the message.
 */
#ifndef VV_UTIL_ERROR_H
#define VV_UTIL_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

/* What kind of failure; the API maps each to an HTTP status and a code
 * string (vv_error_code_name).
 */
enum vv_errcode {
  VV_ERR_NONE = 0,
  VV_ERR_FAILED,        /* 500 failed: an operation went wrong */
  VV_ERR_INVALID,       /* 400 invalid: bad input from the caller */
  VV_ERR_NOT_FOUND,     /* 404 not_found */
  VV_ERR_BUSY,          /* 409 busy: conflicting job or state */
  VV_ERR_FORBIDDEN,     /* 403 forbidden */
  VV_ERR_UNAVAILABLE,   /* 503 unavailable: a target or libvirt unreachable */
  VV_ERR_CANCELLED,     /* 409 cancelled */
};

void vv_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void vv_error_code (enum vv_errcode code, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Appends ": strerror(errnum)". */
void vv_error_errno (int errnum, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
void vv_verror (enum vv_errcode code, const char *fmt, va_list ap)
  __attribute__ ((format (printf, 2, 0)));

/* Prefix the current message with more context: "backing up 'web01': ". */
void vv_error_prefix (const char *fmt, ...)
  __attribute__ ((format (printf, 1, 2)));

/* The current thread's last message ("" if none) and code. */
const char *vv_get_error (void);
enum vv_errcode vv_get_error_code (void);
void vv_clear_error (void);

const char *vv_error_code_name (enum vv_errcode code);
int vv_error_code_http_status (enum vv_errcode code);
/* Inverse of vv_error_code_name, for the CLI; VV_ERR_FAILED if unknown. */
enum vv_errcode vv_error_code_from_name (const char *name);

/* Storage plugins classify their errors by errno (virtvault-plugin.h):
 * the code an errno class maps to (no space and transient failures are
 * "unavailable", ECANCELED "cancelled", the rest "failed"), whether it
 * is worth trying again later, and the errno the last plugin error of
 * this thread carried (0 if the last error did not come from a plugin).
 */
enum vv_errcode vv_errno_class_code (int errnum);
bool vv_errno_is_transient (int errnum);
int vv_get_error_plugin_errno (void);
/* Changes the code of the current message, keeping the rest. */
void vv_error_set_code (enum vv_errcode code);

#endif
