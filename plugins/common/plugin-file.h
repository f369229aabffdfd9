/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Files that hold a target's secrets (private keys, credentials): only
 * root may read them, so that a value never has to be a parameter.
 */
#ifndef VV_PLUGIN_FILE_H
#define VV_PLUGIN_FILE_H

#include <stddef.h>

#include "plugin-err.h"

/* Reads path, which must be a regular file reached without a symbolic
 * link, owned by root, with no group or other permission bits, and at
 * most max bytes.  On success *ret holds the contents NUL-terminated
 * (*ret_len bytes, ret_len may be NULL); free it with plugin_free_secret.
 * what names the file in errors ("identity", "S3 credentials file").
 */
int plugin_read_private_file (const char *path, const char *what,
                              size_t max, char **ret, size_t *ret_len,
                              struct plugin_err *e);

/* Zeroes the first len bytes of a secret, then frees it (NULL is fine). */
void plugin_free_private (char *s, size_t len);
/* The same for a NUL-terminated secret. */
void plugin_free_secret (char *s);

#endif
