/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Generic helpers of the sftp plugin that other plugins could share:
 * an error buffer reported once, a root-only private file reader,
 * exponential back-off that honours cancellation, and checks of names a
 * server sends back.
 */
#ifndef VV_SFTP_UTIL_H
#define VV_SFTP_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <virtvault-plugin.h>

/* An error kept until it is reported once at the plugin boundary. */
struct vv_err {
  int code;                     /* errno class, see the plugin header */
  char msg[768];
};

void vv_err_set (struct vv_err *e, int code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* virtvault_error with errno = e->code (EIO if unset). */
void vv_err_report (const struct vv_err *e);
/* The errno classes that may work if tried again. */
bool vv_err_transient (int code);

/* Reads a private file (a key) of at most max bytes into a NUL-terminated
 * buffer.  The file must be a regular file (not a symbolic link) owned by
 * root with no group or other permission bits.  what names it in errors.
 */
int vv_read_private_file (const char *path, const char *what, size_t max,
                          char **ret, struct vv_err *e);

/* Waits before try number attempt+1 (0.25 s, 0.5 s, 1 s ...), checking
 * host->cancelled every 50 ms.  -1 with e set (ECANCELED) if cancelled.
 */
int vv_backoff (const struct virtvault_host *host, unsigned attempt,
                struct vv_err *e);

/* A directory entry name a server returned: 1..255 bytes, no '/', no
 * control characters, not "." or "..".
 */
bool vv_valid_entry_name (const char *s);

/* An object name from the host: relative, no "." or ".." or empty
 * components, at most VIRTVAULT_PLUGIN_NAME_MAX bytes.
 */
bool vv_valid_object_name (const char *s);

#endif
