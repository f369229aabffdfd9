/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small string, time and path helpers shared by every module. */
#ifndef VV_UTIL_STRUTIL_H
#define VV_UTIL_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* asprintf that reports its failure with vv_error and returns NULL. */
char *vv_printf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* strdup that accepts NULL (returns NULL) and reports ENOMEM. */
char *vv_strdup (const char *s);

/* A new random identifier "<prefix>-<12 hex digits>", e.g. "bk-3f9a0c21d4e5".
 * ret must hold VV_ID_MAX bytes.
 */
#define VV_ID_MAX 32
int vv_random_id (const char *prefix, char ret[VV_ID_MAX]);
/* True if s looks like an id we made with this prefix (safe in paths). */
bool vv_is_id (const char *prefix, const char *s);
/* True if the len bytes at s are a UUID as libvirt prints it, 8-4-4-4-12
 * lowercase hex digits: the form in which a domain names a directory on
 * a target.
 */
bool vv_is_uuid (const char *s, size_t len);

/* ISO 8601 UTC, "2026-11-23T15:52:35Z"; ret must hold VV_TIME_MAX. */
#define VV_TIME_MAX 32
void vv_format_time_utc (time_t t, char ret[VV_TIME_MAX]);
/* Current time in that format. */
void vv_now_utc (char ret[VV_TIME_MAX]);
/* Parses what vv_format_time_utc writes; -1 with vv_error if it is not. */
int vv_parse_time_utc (const char *s, time_t *ret);

/* "1.5 GiB", "512 B"; ret must hold 32 bytes. */
void vv_human_size (uint64_t bytes, char ret[32]);

/* mkdir -p; the directories it creates get exactly mode (whatever the
 * umask), existing ones keep theirs.  Reports errors.
 */
int vv_mkdir_p (const char *path, unsigned mode);
/* rm -rf of a directory we own (scratch dirs); reports errors. */
int vv_remove_tree (const char *path);

/* A domain/target/disk name a caller gave us: 1..max bytes of
 * [A-Za-z0-9._-], not starting with '.' or '-'.  Reports a clear error
 * naming what (e.g. "target name") on failure.
 */
int vv_check_name (const char *what, const char *name, size_t max);

bool vv_str_has_prefix (const char *s, const char *prefix);
bool vv_str_has_suffix (const char *s, const char *suffix);

#endif
