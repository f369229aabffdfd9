/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A streamed upload of one object: a single PUT with If-None-Match: *
 * when it fits in one part, else a multipart upload whose parts are sent
 * by worker threads while the caller writes.  Memory: at most
 * (in_flight + 1) x part size.
 */
#ifndef VV_S3_PUT_H
#define VV_S3_PUT_H

#include <stddef.h>
#include <stdint.h>

#include "s3-http.h"

struct s3_put;

/* size: the exact size, or VIRTVAULT_SIZE_UNKNOWN.  Fails at once (EFBIG)
 * when size cannot fit in 10000 parts of 5 GiB.
 */
struct s3_put *s3_put_begin (struct s3_conn *c, const char *key,
                             uint64_t size, uint64_t preferred_part,
                             unsigned in_flight, struct plugin_err *e);
int s3_put_write (struct s3_put *p, const void *buf, size_t count,
                  struct plugin_err *e);
/* Both free p whatever the result. */
int s3_put_commit (struct s3_put *p, struct plugin_err *e);
void s3_put_abort (struct s3_put *p);

#endif
