/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing the XML bodies S3 answers with (bounded by the caller; the
 * server is untrusted: no network access, no entity expansion, every
 * text length checked).
 */
#ifndef VV_S3_XML_H
#define VV_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy the text of the first element named name anywhere in the document
 * to out (size outsz, truncated).  0 if found, -1 if not or not XML.
 */
int s3_xml_find_text (const char *body, size_t len, const char *name,
                      char *out, size_t outsz);

/* One ListObjectsV2 page: cb (opaque, key, keylen, size) for each
 * <Contents>; *truncated and next_token (size tokensz; "" when none).
 * cb returns 0 to go on, -1 to stop.  Returns 0, -1 if the body is not a
 * ListBucketResult (or a field is malformed), -2 if cb stopped.
 */
typedef int (*s3_xml_key_cb) (void *opaque, const char *key, size_t keylen,
                              uint64_t size);
int s3_xml_parse_list (const char *body, size_t len, s3_xml_key_cb cb,
                       void *opaque, bool *truncated, char *next_token,
                       size_t tokensz);

/* One ListMultipartUploads page: cb (opaque, key, upload_id) per
 * <Upload>; next markers copied (sizes markersz).  Same returns.
 */
typedef int (*s3_xml_upload_cb) (void *opaque, const char *key,
                                 const char *upload_id);
int s3_xml_parse_uploads (const char *body, size_t len, s3_xml_upload_cb cb,
                          void *opaque, bool *truncated, char *next_key,
                          char *next_upload, size_t markersz);

/* DeleteObjects result: the number of <Error> entries other than
 * NoSuchKey; the first one's key and code copied out.  -1 if not XML.
 */
int s3_xml_delete_errors (const char *body, size_t len, char *key,
                          size_t keysz, char *code, size_t codesz);

#endif
