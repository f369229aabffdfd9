/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers of the S3 plugin with no requests in them: percent-encoding,
 * part-size choice, the credentials file (the checks and helpers every
 * plugin shares are in plugins/common).
 */
#ifndef VV_S3_UTIL_H
#define VV_S3_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin-err.h"
#include "plugin-file.h"
#include "plugin-job.h"
#include "plugin-name.h"
#include "plugin-param.h"

/* Append the percent-encoding of s[0..len) to out (size outsz).  Bytes
 * outside A-Z a-z 0-9 - . _ ~ are encoded, and '/' too unless keep_slash.
 * Returns 0, or -1 if out is too small.
 */
int s3_pct_encode (char *out, size_t outsz, const char *s, size_t len,
                   bool keep_slash);

#define S3_MIB (UINT64_C (1) << 20)
#define S3_MIN_PART (5 * S3_MIB)
#define S3_MAX_PART (UINT64_C (5) << 30)
#define S3_MAX_PARTS 10000

/* The part size for an object of size bytes (VIRTVAULT_SIZE_UNKNOWN for
 * unknown): preferred when it fits in S3_MAX_PARTS parts, else the
 * smallest whole number of MiB that does.  Returns 0 (errno EFBIG) when
 * the object cannot fit in S3_MAX_PARTS parts of S3_MAX_PART.
 */
uint64_t s3_choose_part_size (uint64_t size, uint64_t preferred);

/* Read the AWS shared-credentials file path, section [profile]: it must
 * be a regular file (not a symlink) owned by root with no group or other
 * permission bits.  On success the caller owns *key_id and *secret (free
 * secret with plugin_free_secret).  Errors are recorded in e.
 */
int s3_read_credentials (const char *path, const char *profile,
                         char **key_id, char **secret, struct plugin_err *e);

#endif
