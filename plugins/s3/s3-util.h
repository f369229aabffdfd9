/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Generic helpers of the S3 plugin with no S3 protocol in them: error
 * records, percent-encoding, part-size choice, back-off, the root-only
 * credentials file.  Kept apart so they can move to plugins/common.
 */
#ifndef VV_S3_UTIL_H
#define VV_S3_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An error recorded by a worker thread (which must not call
 * virtvault_error: the host records errors per thread) and reported by
 * the callback's thread.
 */
struct s3_err {
  int errnum;                   /* the errno class */
  char msg[1024];
};

void s3_err_set (struct s3_err *e, int errnum, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Report e through virtvault_error with errno = e->errnum. */
void s3_err_report (const struct s3_err *e);

/* Append the percent-encoding of s[0..len) to out (size outsz).  Bytes
 * outside A-Z a-z 0-9 - . _ ~ are encoded, and '/' too unless keep_slash.
 * Returns 0, or -1 if out is too small.
 */
int s3_pct_encode (char *out, size_t outsz, const char *s, size_t len,
                   bool keep_slash);

/* 1 if name is a valid object name of the ABI (relative, no "." or ".."
 * component, no empty component, at most VIRTVAULT_PLUGIN_NAME_MAX bytes,
 * no control bytes).
 */
bool s3_valid_name (const char *name, size_t len);

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

/* Sleep before try number attempt (1 = first retry): base_ms << (attempt-1)
 * capped at 8 s, with up to 25 % random jitter.
 */
void s3_backoff_sleep (unsigned attempt, unsigned base_ms);

/* Read the AWS shared-credentials file path, section [profile]: it must
 * be a regular file (not a symlink) owned by root with no group or other
 * permission bits.  On success the caller owns *key_id and *secret (free
 * secret with s3_free_secret).  Errors are recorded in e.
 */
int s3_read_credentials (const char *path, const char *profile,
                         char **key_id, char **secret, struct s3_err *e);
void s3_free_secret (char *secret);

/* Split "key=value" params: returns the value when param's key is key. */
const char *s3_param_value (const char *param, const char *key);

#endif
