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

#endif
