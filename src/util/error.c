/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtvault-plugin.h"
#include "error.h"

/* Long enough for a message naming two paths and a libvirt error. */
#define VV_ERROR_MAX 2048

static __thread char last_message[VV_ERROR_MAX];
static __thread enum vv_errcode last_code;
/* The errno a storage plugin gave as the class of its last error, or 0. */
static __thread int last_plugin_errno;

void
vv_verror (enum vv_errcode code, const char *fmt, va_list ap)
{
  vsnprintf (last_message, sizeof last_message, fmt, ap);
  last_code = code;
  last_plugin_errno = 0;
}

void
vv_error (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vv_verror (VV_ERR_FAILED, fmt, ap);
  va_end (ap);
}

void
vv_error_code (enum vv_errcode code, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vv_verror (code, fmt, ap);
  va_end (ap);
}

void
vv_error_errno (int errnum, const char *fmt, ...)
{
  va_list ap;
  size_t len;

  va_start (ap, fmt);
  vv_verror (VV_ERR_FAILED, fmt, ap);
  va_end (ap);
  len = strlen (last_message);
  snprintf (last_message + len, sizeof last_message - len, ": %s",
            strerror (errnum));
  if (errnum == ENOSPC || errnum == EDQUOT)
    last_code = VV_ERR_UNAVAILABLE;
}

void
vv_error_prefix (const char *fmt, ...)
{
  char prefix[VV_ERROR_MAX];
  char old[VV_ERROR_MAX];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (prefix, sizeof prefix, fmt, ap);
  va_end (ap);
  memcpy (old, last_message, sizeof old);
  /* Truncation of an overlong message is acceptable. */
  size_t plen = strnlen (prefix, sizeof last_message - 1);
  memcpy (last_message, prefix, plen);
  last_message[plen] = '\0';
  strncat (last_message, old, sizeof last_message - plen - 1);
  if (last_code == VV_ERR_NONE)
    last_code = VV_ERR_FAILED;
}

const char *
vv_get_error (void)
{
  return last_message;
}

enum vv_errcode
vv_get_error_code (void)
{
  return last_message[0] ? (last_code ? last_code : VV_ERR_FAILED)
                         : VV_ERR_NONE;
}

void
vv_clear_error (void)
{
  last_message[0] = '\0';
  last_code = VV_ERR_NONE;
  last_plugin_errno = 0;
}

static const struct {
  const char *name;
  int http_status;
} codes[] = {
  [VV_ERR_NONE]        = { "none", 200 },
  [VV_ERR_FAILED]      = { "failed", 500 },
  [VV_ERR_INVALID]     = { "invalid", 400 },
  [VV_ERR_NOT_FOUND]   = { "not_found", 404 },
  [VV_ERR_BUSY]        = { "busy", 409 },
  [VV_ERR_FORBIDDEN]   = { "forbidden", 403 },
  [VV_ERR_UNAVAILABLE] = { "unavailable", 503 },
  [VV_ERR_CANCELLED]   = { "cancelled", 409 },
};

const char *
vv_error_code_name (enum vv_errcode code)
{
  if ((size_t) code >= sizeof codes / sizeof codes[0])
    code = VV_ERR_FAILED;
  return codes[code].name;
}

int
vv_error_code_http_status (enum vv_errcode code)
{
  if ((size_t) code >= sizeof codes / sizeof codes[0])
    code = VV_ERR_FAILED;
  return codes[code].http_status;
}

enum vv_errcode
vv_error_code_from_name (const char *name)
{
  size_t i;

  for (i = 0; name && i < sizeof codes / sizeof codes[0]; i++)
    if (strcmp (codes[i].name, name) == 0)
      return (enum vv_errcode) i;
  return VV_ERR_FAILED;
}

enum vv_errcode
vv_errno_class_code (int errnum)
{
  switch (errnum) {
  case ENOSPC: case EDQUOT: case EFBIG:
  case EAGAIN: case ETIMEDOUT: case ECONNRESET: case ECONNREFUSED:
  case EHOSTUNREACH: case ENETUNREACH:
    return VV_ERR_UNAVAILABLE;
  case ECANCELED:
    return VV_ERR_CANCELLED;
  default:
    return VV_ERR_FAILED;
  }
}

bool
vv_errno_is_transient (int errnum)
{
  return errnum == EAGAIN || errnum == ETIMEDOUT || errnum == ECONNRESET ||
    errnum == ECONNREFUSED || errnum == EHOSTUNREACH || errnum == ENETUNREACH;
}

void
vv_error_set_code (enum vv_errcode code)
{
  last_code = code;
}

int
vv_get_error_plugin_errno (void)
{
  return last_plugin_errno;
}

/* The plugin ABI's error function: plugins resolve it from the host (or
 * get it as the host service "error").  errno is the error's class
 * (include/virtvault-plugin.h).
 */
void
virtvault_error (const char *fmt, ...)
{
  va_list ap;
  int saved_errno = errno;

  va_start (ap, fmt);
  vv_verror (vv_errno_class_code (saved_errno), fmt, ap);
  va_end (ap);
  last_plugin_errno = saved_errno;
}
