/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One signed S3 request with libcurl: URL building, SigV4 through
 * CURLOPT_AWS_SIGV4, bounded response bodies and headers, retries of
 * transient failures with back-off, and the mapping of S3 errors to the
 * ABI's errno classes.
 */
#ifndef VV_S3_HTTP_H
#define VV_S3_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <virtvault-plugin.h>

#include "s3-util.h"

/* Idle connections kept per target handle: as many as can be busy at
 * once (parts_in_flight and max_parallel_reads at their maximum).
 */
#define S3_POOL_MAX 48

struct s3_conn {
  char *url;                    /* s3://bucket/prefix as given, for messages */
  char *bucket;
  char *prefix;                 /* "" or ending in '/' */
  char *base;                   /* https://host[:port]/bucket or https://bucket.host[:port] */
  bool path_style;
  char *region;
  char *sigv4;                  /* "aws:amz:REGION:s3" */
  char *key_id;
  char *secret;                 /* never printed */
  char *ca_file;
  unsigned tries;               /* attempts per request (>= 1) */
  unsigned backoff_ms;
  const struct virtvault_host *host;    /* for cancellation, or NULL */

  /* Idle curl easy handles with their open connections: a request takes
   * one and gives it back, so the next request reuses the connection
   * (and the TLS session) instead of connecting again.  A handle serves
   * one request at a time; the lock guards only the list.
   */
  pthread_mutex_t pool_lock;
  void *pool[S3_POOL_MAX];
  unsigned pooled;
};

/* Set up and free c's handle pool (s3_conn_init before any request). */
void s3_conn_init (struct s3_conn *c);
void s3_conn_free_pool (struct s3_conn *c);

/* Largest error or listing body kept. */
#define S3_BODY_MAX (2 * 1024 * 1024)

struct s3_req {
  const char *method;           /* GET HEAD PUT POST DELETE */
  const char *key;              /* full object key, or NULL for the bucket */
  const char *query;            /* canonical query (sorted, encoded), or NULL */
  const char *range;            /* "bytes=a-b" or NULL */
  bool if_none_match;           /* If-None-Match: * */
  const void *body;             /* request body (PUT, POST) */
  size_t body_len;
  bool md5;                     /* send Content-MD5 of the body */
  /* A request of a job gives up (ECANCELED) once the job is cancelled:
   * that of job when set (an upload's or a read handle's, asked from any
   * thread; checked before the first try too), else that of the calling
   * thread (checked before retries only).  The abort of an upload is not
   * cancellable.
   */
  bool cancellable;
  const struct plugin_job *job;

  /* Response: a 2xx body goes to out (at most out_max bytes: more is an
   * error) when out is set, else to resp (bounded by S3_BODY_MAX).
   */
  void *out;
  size_t out_max;
  size_t out_len;
  char *resp;
  size_t resp_len;
  long status;
  char etag[130];
  uint64_t content_length;
  bool have_length;
  char code[64];                /* S3 error code of a non-2xx answer */
};

/* Perform req, retrying transient failures (connection errors, 5xx, 429,
 * RequestTimeout, BadDigest) with back-off.  Returns the final HTTP status
 * (any), or -1 with err set (transport failure after all tries,
 * cancellation, memory).  Safe to call from several threads at once.
 * Free req->resp with s3_req_free.
 */
long s3_http (struct s3_conn *c, struct s3_req *req, struct plugin_err *err);
void s3_req_free (struct s3_req *req);

/* Record in err the failure of a finished req with a non-2xx status:
 * "what s3://bucket/key: HTTP 403 AccessDenied ..." with its errno class.
 */
void s3_http_status_error (struct s3_conn *c, const struct s3_req *req,
                           const char *what, struct plugin_err *err);

/* Content-MD5 value (base64) of buf. */
void s3_md5_base64 (const void *buf, size_t len, char out[32]);

#endif
