/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Streaming SHA-256 (OpenSSL's EVP), hex output. */
#ifndef VV_UTIL_SHA256_H
#define VV_UTIL_SHA256_H

#include <stddef.h>

#define VV_SHA256_HEX 65   /* 64 hex digits and a NUL */

struct vv_sha256;
struct vv_sha256 *vv_sha256_new (void);
void vv_sha256_update (struct vv_sha256 *h, const void *buf, size_t len);
/* Writes the hex digest; the context can not be updated afterwards. */
void vv_sha256_final (struct vv_sha256 *h, char ret_hex[VV_SHA256_HEX]);
struct vv_sha256 *vv_sha256_free (struct vv_sha256 *h);

/* The 32-byte digest of buf in one call (block digests); -1 with an
 * error when OpenSSL fails.
 */
#define VV_SHA256_LEN 32
int vv_sha256_digest (const void *buf, size_t len,
                       unsigned char ret[VV_SHA256_LEN]);
/* The hex digest of buf in one call; -1 with an error when OpenSSL
 * fails.
 */
int vv_sha256_hex (const void *buf, size_t len, char ret_hex[VV_SHA256_HEX]);
/* ret_hex of a 32-byte digest. */
void vv_sha256_to_hex (const unsigned char md[VV_SHA256_LEN],
                       char ret_hex[VV_SHA256_HEX]);

#endif
