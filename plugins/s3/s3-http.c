/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Signed S3 requests with libcurl (see s3-http.h).
 *
 * libcurl 7.88 signs what it is given: every request carries
 * x-amz-content-sha256 (UNSIGNED-PAYLOAD: bodies are checked with
 * Content-MD5 instead), queries are built in canonical form by the
 * callers and keys are percent-encoded here.  Uploads always have a known
 * length (S3 answers 411 to chunked bodies).
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "s3-http.h"
#include "s3-xml.h"

/* Bytes of response headers accepted per request. */
#define HEADERS_MAX 65536
#define URL_MAX (3 * 1024 * 3 + 4096)

struct xfer {
  struct s3_req *req;
  CURL *curl;
  const char *up;               /* upload cursor */
  size_t up_left;
  size_t hdr_bytes;
  bool overflow;                /* body larger than allowed */
};

void
s3_md5_base64 (const void *buf, size_t len, char out[32])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;

  EVP_Digest (buf, len, md, &mdlen, EVP_md5 (), NULL);
  EVP_EncodeBlock ((unsigned char *) out, md, mdlen);
}

static size_t
read_cb (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  struct xfer *x = opaque;
  size_t n = size * nmemb;

  if (n > x->up_left)
    n = x->up_left;
  memcpy (ptr, x->up, n);
  x->up += n;
  x->up_left -= n;
  return n;
}

static size_t
write_cb (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  struct xfer *x = opaque;
  struct s3_req *r = x->req;
  size_t n = size * nmemb;
  long status = 0;

  curl_easy_getinfo (x->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300 && r->out) {
    if (n > r->out_max - r->out_len) {
      x->overflow = true;
      return 0;
    }
    memcpy ((char *) r->out + r->out_len, ptr, n);
    r->out_len += n;
    return n;
  }
  if (n > S3_BODY_MAX - r->resp_len) {
    x->overflow = true;
    return 0;
  }
  char *p = realloc (r->resp, r->resp_len + n + 1);
  if (p == NULL)
    return 0;
  r->resp = p;
  memcpy (p + r->resp_len, ptr, n);
  r->resp_len += n;
  p[r->resp_len] = '\0';
  return n;
}

static size_t
header_cb (char *ptr, size_t size, size_t nitems, void *opaque)
{
  struct xfer *x = opaque;
  struct s3_req *r = x->req;
  size_t n = size * nitems, vlen;
  const char *v;

  x->hdr_bytes += n;
  if (x->hdr_bytes > HEADERS_MAX)
    return 0;
  if (n >= 5 && strncmp (ptr, "HTTP/", 5) == 0) {
    r->etag[0] = '\0';
    r->have_length = false;
    return n;
  }
  v = memchr (ptr, ':', n);
  if (v == NULL)
    return n;
  v++;
  while (v < ptr + n && (*v == ' ' || *v == '\t'))
    v++;
  vlen = ptr + n - v;
  while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
                  v[vlen - 1] == ' '))
    vlen--;
  if (strncasecmp (ptr, "etag:", 5) == 0) {
    if (vlen < sizeof r->etag) {
      memcpy (r->etag, v, vlen);
      r->etag[vlen] = '\0';
    }
  }
  else if (strncasecmp (ptr, "content-length:", 15) == 0) {
    char num[24], *end;
    if (vlen > 0 && vlen < sizeof num) {
      memcpy (num, v, vlen);
      num[vlen] = '\0';
      errno = 0;
      r->content_length = strtoull (num, &end, 10);
      r->have_length = errno == 0 && *end == '\0' && num[0] >= '0' &&
        num[0] <= '9';
    }
  }
  return n;
}

static int
build_url (struct s3_conn *c, const struct s3_req *req, char *url,
           size_t urlsz)
{
  snprintf (url, urlsz, "%s", c->base);
  if (req->key) {
    if (strlen (url) + 2 >= urlsz)
      return -1;
    strcat (url, "/");
    if (s3_pct_encode (url, urlsz, req->key, strlen (req->key), true) == -1)
      return -1;
  }
  else if (!c->path_style)
    strcat (url, "/");
  if (req->query) {
    if (strlen (url) + 1 + strlen (req->query) >= urlsz)
      return -1;
    strcat (url, "?");
    strcat (url, req->query);
  }
  return 0;
}

static bool
transient_status (long status, const char *code)
{
  return status >= 500 || status == 429 ||
    strcmp (code, "SlowDown") == 0 || strcmp (code, "RequestTimeout") == 0 ||
    strcmp (code, "BadDigest") == 0;
}

static int
curl_errno (CURLcode rc)
{
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT: return ETIMEDOUT;
  case CURLE_COULDNT_CONNECT: return ECONNREFUSED;
  case CURLE_COULDNT_RESOLVE_HOST: return EHOSTUNREACH;
  case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return ECONNRESET;
  case CURLE_OUT_OF_MEMORY: return ENOMEM;
  case CURLE_PEER_FAILED_VERIFICATION: return EACCES;
  case CURLE_SSL_CACERT_BADFILE: return EINVAL;
  default: return EIO;
  }
}

static bool
transient_curl (CURLcode rc)
{
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT: case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST: case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
    return true;
  default:
    return false;
  }
}

static const char *
tls_hint (const struct s3_conn *c, CURLcode rc)
{
  if (rc == CURLE_PEER_FAILED_VERIFICATION)
    return c->ca_file
      ? " (the server's certificate is not signed by a CA in ca_file=, or "
      "is not for this host name)"
      : " (the server's certificate is not signed by a CA of the system "
      "store, or is not for this host name; give its CA with ca_file=PATH)";
  if (rc == CURLE_SSL_CACERT_BADFILE)
    return " (check the ca_file= parameter: a PEM file of CA certificates)";
  return "";
}

void
s3_req_free (struct s3_req *req)
{
  free (req->resp);
  req->resp = NULL;
  req->resp_len = 0;
}

static const char *
show_key (const struct s3_req *req)
{
  return req->key ? req->key : "";
}

void
s3_conn_init (struct s3_conn *c)
{
  pthread_mutex_init (&c->pool_lock, NULL);
  c->pooled = 0;
}

void
s3_conn_free_pool (struct s3_conn *c)
{
  while (c->pooled > 0)
    curl_easy_cleanup (c->pool[--c->pooled]);
  pthread_mutex_destroy (&c->pool_lock);
}

/* An easy handle for one request: an idle one (its options reset, its
 * connections kept), else a new one.
 */
static CURL *
take_handle (struct s3_conn *c)
{
  CURL *curl = NULL;

  pthread_mutex_lock (&c->pool_lock);
  if (c->pooled > 0)
    curl = c->pool[--c->pooled];
  pthread_mutex_unlock (&c->pool_lock);
  if (curl == NULL)
    return curl_easy_init ();
  curl_easy_reset (curl);
  return curl;
}

static void
give_back (struct s3_conn *c, CURL *curl)
{
  pthread_mutex_lock (&c->pool_lock);
  if (c->pooled < S3_POOL_MAX) {
    c->pool[c->pooled++] = curl;
    curl = NULL;
  }
  pthread_mutex_unlock (&c->pool_lock);
  if (curl)
    curl_easy_cleanup (curl);
}

/* One attempt.  Returns the curl code; req->status set on CURLE_OK, and
 * curl's own account of a failure in why (CURL_ERROR_SIZE bytes).
 */
static CURLcode
attempt (struct s3_conn *c, struct s3_req *req, const char *url,
         bool *overflow, char *why)
{
  struct xfer x = { .req = req, .up = req->body, .up_left = req->body_len };
  struct curl_slist *h = NULL, *t;
  char md5[32], line[96];
  CURLcode rc;
  CURL *curl = take_handle (c);

  if (curl == NULL)
    return CURLE_OUT_OF_MEMORY;
  x.curl = curl;
  req->out_len = 0;
  s3_req_free (req);
  req->status = 0;
  req->etag[0] = '\0';
  req->have_length = false;
  req->code[0] = '\0';

  h = curl_slist_append (h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  if (h && req->range) {
    snprintf (line, sizeof line, "Range: %s", req->range);
    h = (t = curl_slist_append (h, line)) ? t : (curl_slist_free_all (h), NULL);
  }
  if (h && req->if_none_match)
    h = (t = curl_slist_append (h, "If-None-Match: *")) ? t :
      (curl_slist_free_all (h), NULL);
  if (h && req->md5) {
    s3_md5_base64 (req->body, req->body_len, md5);
    snprintf (line, sizeof line, "Content-MD5: %s", md5);
    h = (t = curl_slist_append (h, line)) ? t : (curl_slist_free_all (h), NULL);
  }
  /* No "Expect:" to switch 100-continue off: curl 7.88 then signs an
   * empty expect header that it does not send (403 SignatureDoesNotMatch).
   */
  if (h == NULL) {
    give_back (c, curl);
    return CURLE_OUT_OF_MEMORY;
  }

  why[0] = '\0';
  curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, why);
  curl_easy_setopt (curl, CURLOPT_URL, url);
  curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (curl, CURLOPT_AWS_SIGV4, c->sigv4);
  curl_easy_setopt (curl, CURLOPT_USERNAME, c->key_id);
  curl_easy_setopt (curl, CURLOPT_PASSWORD, c->secret);
  curl_easy_setopt (curl, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (curl, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt (curl, CURLOPT_HEADERDATA, &x);
  if (c->ca_file)
    curl_easy_setopt (curl, CURLOPT_CAINFO, c->ca_file);
  if (strcmp (req->method, "HEAD") == 0)
    curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
  else if (strcmp (req->method, "PUT") == 0) {
    curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt (curl, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt (curl, CURLOPT_READDATA, &x);
    curl_easy_setopt (curl, CURLOPT_INFILESIZE_LARGE,
                      (curl_off_t) req->body_len);
  }
  else if (strcmp (req->method, "POST") == 0) {
    curl_easy_setopt (curl, CURLOPT_POST, 1L);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE,
                      (curl_off_t) req->body_len);
  }
  else if (strcmp (req->method, "GET") != 0)
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, req->method);

  rc = curl_easy_perform (curl);
  if (rc == CURLE_OK)
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &req->status);
  /* The pooled handle must not keep pointing at this stack buffer. */
  curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, NULL);
  *overflow = x.overflow;
  /* A transfer cut short (overflow, callback error) leaves its connection
   * in an unknown state: curl closes it, the handle stays usable.
   */
  give_back (c, curl);
  curl_slist_free_all (h);
  if (rc == CURLE_OK && (req->status < 200 || req->status >= 300) &&
      req->resp_len > 0)
    s3_xml_find_text (req->resp, req->resp_len, "Code", req->code,
                      sizeof req->code);
  return rc;
}

long
s3_http (struct s3_conn *c, struct s3_req *req, struct plugin_err *err)
{
  char *url = malloc (URL_MAX);
  unsigned i;
  CURLcode rc = CURLE_OK;
  char why[CURL_ERROR_SIZE];
  struct plugin_job here;
  const struct plugin_job *job = req->cancellable ? req->job : NULL;

  if (url == NULL) {
    plugin_err_set (err, ENOMEM, "S3 %s %s: out of memory", req->method,
                    c->url);
    return -1;
  }
  if (build_url (c, req, url, URL_MAX) == -1) {
    plugin_err_set (err, EINVAL, "S3 object name %.100s... is too long",
                    show_key (req));
    free (url);
    return -1;
  }
  if (req->cancellable && req->job == NULL) {
    plugin_job_capture (&here, c->host);
    job = &here;
  }
  for (i = 1; i <= c->tries; i++) {
    bool overflow = false;

    /* A request with a job of its own (an upload's, a read handle's) does
     * not start once the job is cancelled.  One of the calling thread's
     * job gets its first try: it may be the cleanup of a cancelled job
     * (remove, remove_partial).  Neither tries again.  (job NULL: never
     * cancelled.)
     */
    if ((i > 1 && plugin_backoff (job, i - 1, c->backoff_ms, err) == -1) ||
        ((i > 1 || req->job) && plugin_job_cancelled (job))) {
      plugin_err_set (err, ECANCELED, "S3 %s s3://%s/%s: cancelled",
                      req->method, c->bucket, show_key (req));
      free (url);
      return -1;
    }
    rc = attempt (c, req, url, &overflow, why);
    if (overflow) {
      plugin_err_set (err, EIO, "S3 %s s3://%s/%s: the server sent more than "
                      "was asked for (HTTP %ld)", req->method, c->bucket,
                      show_key (req), req->status);
      free (url);
      return -1;
    }
    if (rc == CURLE_OK) {
      if (transient_status (req->status, req->code) && i < c->tries)
        continue;
      free (url);
      return req->status;
    }
    if (!transient_curl (rc))
      break;
  }
  plugin_err_set (err, curl_errno (rc), "S3 %s s3://%s/%s at %s failed%s: "
                  "%s%s", req->method, c->bucket, show_key (req), c->base,
                  transient_curl (rc) ? " after retries" : "",
                  why[0] ? why : curl_easy_strerror (rc), tls_hint (c, rc));
  free (url);
  return -1;
}

void
s3_http_status_error (struct s3_conn *c, const struct s3_req *req,
                      const char *what, struct plugin_err *err)
{
  const char *code = req->code;
  long st = req->status;
  int e = EIO;
  const char *hint = "";

  /* RGW answers QuotaExceeded with 403: the code goes first. */
  if (strcmp (code, "QuotaExceeded") == 0 ||
      strcmp (code, "InsufficientCapacity") == 0) {
    e = ENOSPC;
    hint = "; the bucket or user quota is full";
  }
  else if (st == 403 || strcmp (code, "AccessDenied") == 0 ||
      strcmp (code, "SignatureDoesNotMatch") == 0 ||
      strcmp (code, "InvalidAccessKeyId") == 0 ||
      strcmp (code, "RequestTimeTooSkewed") == 0) {
    e = EACCES;
    hint = "; check the credentials file, the key's permissions on the "
      "bucket and the clock";
  }
  else if (strcmp (code, "EntityTooLarge") == 0)
    e = EFBIG;
  else if (st == 404 || strcmp (code, "NoSuchBucket") == 0) {
    e = ENOENT;
    if (strcmp (code, "NoSuchBucket") == 0)
      hint = "; create the bucket first";
  }
  else if (st == 412)
    e = EEXIST;
  else if (transient_status (st, code))
    e = EAGAIN;
  plugin_err_set (err, e, "%s s3://%s/%s: HTTP %ld%s%s%s", what, c->bucket,
                  show_key (req), st, *code ? " " : "", code, hint);
}
