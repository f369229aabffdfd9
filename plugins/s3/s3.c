/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The S3 storage plugin: objects in an S3 bucket (AWS, Ceph RGW, MinIO
 * ...), s3://bucket/prefix.
 *
 * Object "a/b" is the key PREFIX/a/b.  A put is streamed: an object that
 * fits in one part is sent at commit as one PUT with "If-None-Match: *"
 * (the server refuses to replace an existing key); a larger one becomes a
 * multipart upload whose parts are sent while the backup writes, several
 * at once from worker threads, each with Content-MD5 and retried from its
 * own buffer.  Commit checks with HEAD that the key does not exist, then
 * completes the upload; any failure aborts it, so no parts stay behind.
 * Memory of one put: (parts_in_flight + 1) x part size.
 *
 * Threading: a handle is never modified after open; every request takes
 * a curl easy handle of its own from the handle's pool (s3-http.c) and
 * gives it back with its connection open for the next request, so
 * handles, streams and read handles may be used from several threads at
 * once.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include <virtvault-plugin.h>

#include "s3-http.h"
#include "s3-put.h"
#include "s3-util.h"
#include "s3-xml.h"

#define S3_CONFIG_HELP                                                  \
  "endpoint=URL          http(s)://host[:port] of the S3 service "     \
  "(default https://s3.REGION.amazonaws.com)\n"                         \
  "region=NAME           signing region (default us-east-1)\n"          \
  "credentials_file=PATH AWS shared-credentials file, owned by root, "  \
  "mode 0600 (required)\n"                                              \
  "profile=NAME          section of the credentials file (default "     \
  "default)\n"                                                          \
  "path_style=0|1        bucket in the path instead of the host name "  \
  "(default 1 with endpoint=, 0 for AWS)\n"                             \
  "ca_file=PATH          CA certificates for https (default: the "     \
  "system store)\n"                                                     \
  "part_size_mib=N       multipart part size in MiB, 5..5120 (default " \
  "8; grown to fit 10000 parts when the size is known)\n"              \
  "parts_in_flight=N     parts uploaded at once, 1..16 (default 2); "   \
  "memory per put is (N + 1) x part size\n"                             \
  "max_parallel_reads=N  concurrent ranged reads per read handle, "     \
  "1..32 (default 4)\n"                                                 \
  "retries=N             tries per request, 1..20 (default 5)\n"

#define DEFAULT_PART_MIB 8
#define DEFAULT_IN_FLIGHT 2
#define MAX_IN_FLIGHT 16
#define LIST_MAX_PAGES 100000
#define PARTIAL_MAX_UPLOADS 100000
#define KEY_MAX 1024
#define TOKEN_MAX 4096
#define DELETE_BATCH 1000

static const struct virtvault_host *host;

struct s3_target {
  struct s3_conn c;
  uint64_t part_size;
  unsigned parts_in_flight;
  unsigned max_parallel_reads;
};

#define fail plugin_error

static void __attribute__ ((format (printf, 1, 2)))
log_warning (const char *fmt, ...)
{
  char msg[1024];
  va_list ap;

  if (host == NULL || host->log == NULL)
    return;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  host->log (VIRTVAULT_LOG_WARNING, "%s", msg);
}

/* ---- load ---- */

static int
s3_load (void)
{
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fail (EIO, "s3 plugin: cannot initialise libcurl");
    return -1;
  }
  xmlInitParser ();
  return 0;
}

static int
s3_load_host (const struct virtvault_host *h, uint32_t flags)
{
  if (flags) {
    fail (EINVAL, "s3 plugin: unknown load flags 0x%x", flags);
    return -1;
  }
  host = h;
  return s3_load ();
}

static void
s3_unload (void)
{
  curl_global_cleanup ();
  host = NULL;
}

/* ---- open / close ---- */

static void
free_target (struct s3_target *h)
{
  if (h == NULL)
    return;
  free (h->c.url);
  free (h->c.bucket);
  free (h->c.prefix);
  free (h->c.base);
  free (h->c.region);
  free (h->c.sigv4);
  free (h->c.key_id);
  plugin_free_secret (h->c.secret);
  free (h->c.ca_file);
  s3_conn_free_pool (&h->c);
  free (h);
}

static bool
valid_bucket (const char *b, size_t len)
{
  size_t i;

  if (len < 3 || len > 63)
    return false;
  for (i = 0; i < len; i++)
    if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') ||
          b[i] == '-' || b[i] == '.' || b[i] == '_'))
      return false;
  return true;
}

static int
parse_uint (const char *key, const char *v, unsigned long min,
            unsigned long max, unsigned long *ret)
{
  struct plugin_err e;

  if (plugin_param_uint ("s3", key, v, min, max, ret, &e) == -1) {
    plugin_err_report (&e);
    return -1;
  }
  return 0;
}

/* endpoint "http(s)://host[:port]" -> base URL with the bucket. */
static char *
make_base (const char *endpoint, const char *bucket, bool path_style)
{
  const char *hostpart = strstr (endpoint, "://");
  size_t slen;
  char *ret;
  int n;

  if (hostpart == NULL)
    return NULL;
  slen = hostpart - endpoint;
  hostpart += 3;
  if (path_style)
    n = asprintf (&ret, "%s/%s", endpoint, bucket);
  else
    n = asprintf (&ret, "%.*s://%s.%s", (int) slen, endpoint, bucket,
                  hostpart);
  return n < 0 ? NULL : ret;
}

static void *
s3_open (const char *url, const char *const *params)
{
  struct s3_target *h;
  const char *rest, *slash, *endpoint = NULL, *cred = NULL;
  const char *profile = "default", *region = "us-east-1";
  int path_style = -1;
  unsigned long part_mib = DEFAULT_PART_MIB, inflight = DEFAULT_IN_FLIGHT;
  unsigned long reads = 4, tries = 5;
  char *aws_endpoint = NULL;
  struct plugin_err e;
  size_t i, blen;

  if (strncmp (url, "s3://", 5) != 0) {
    fail (EINVAL, "'%s' is not an s3:// URL (write s3://bucket/prefix)", url);
    return NULL;
  }
  rest = url + 5;
  slash = strchr (rest, '/');
  blen = slash ? (size_t) (slash - rest) : strlen (rest);
  if (!valid_bucket (rest, blen)) {
    fail (EINVAL, "s3 URL %s: '%.*s' is not a bucket name (3 to 63 lower "
          "case letters, digits, '.', '-')", url, (int) blen, rest);
    return NULL;
  }
  if (slash && slash[1] != '\0') {
    size_t plen = strlen (slash + 1);
    const char *p = slash + 1;
    if (p[plen - 1] == '/')
      plen--;
    if (!plugin_valid_object_name (p, plen, 0) || plen > 512 ||
        strpbrk (p, "?#%")) {
      fail (EINVAL, "s3 URL %s: the prefix '%s' must be a relative path "
            "without '.', '..' or empty components, '?', '#' or '%%'",
            url, p);
      return NULL;
    }
  }

  h = calloc (1, sizeof *h);
  if (h == NULL) {
    fail (ENOMEM, "opening s3 target %s: %s", url, strerror (ENOMEM));
    return NULL;
  }
  s3_conn_init (&h->c);
  for (i = 0; params[i]; i++) {
    const char *p = params[i], *v;
    unsigned long b;

    if ((v = plugin_param_value (p, "endpoint")))
      endpoint = v;
    else if ((v = plugin_param_value (p, "region")))
      region = v;
    else if ((v = plugin_param_value (p, "credentials_file")))
      cred = v;
    else if ((v = plugin_param_value (p, "profile")))
      profile = v;
    else if ((v = plugin_param_value (p, "ca_file"))) {
      free (h->c.ca_file);
      if ((h->c.ca_file = strdup (v)) == NULL)
        goto nomem;
    }
    else if ((v = plugin_param_value (p, "path_style"))) {
      if (parse_uint ("path_style", v, 0, 1, &b) == -1)
        goto err;
      path_style = b;
    }
    else if ((v = plugin_param_value (p, "part_size_mib"))) {
      if (parse_uint ("part_size_mib", v, 5, 5120, &part_mib) == -1)
        goto err;
    }
    else if ((v = plugin_param_value (p, "parts_in_flight"))) {
      if (parse_uint ("parts_in_flight", v, 1, MAX_IN_FLIGHT, &inflight) == -1)
        goto err;
    }
    else if ((v = plugin_param_value (p, "max_parallel_reads"))) {
      if (parse_uint ("max_parallel_reads", v, 1, 32, &reads) == -1)
        goto err;
    }
    else if ((v = plugin_param_value (p, "retries"))) {
      if (parse_uint ("retries", v, 1, 20, &tries) == -1)
        goto err;
    }
    else {
      const char *eq = strchr (p, '=');
      fail (EINVAL, "unknown s3 target parameter '%.*s'; accepted: "
            "endpoint, region, credentials_file, profile, path_style, "
            "ca_file, part_size_mib, parts_in_flight, max_parallel_reads, "
            "retries", eq ? (int) (eq - p) : (int) strlen (p), p);
      goto err;
    }
  }
  for (i = 0; region[i]; i++)
    if (!((region[i] >= 'a' && region[i] <= 'z') ||
          (region[i] >= '0' && region[i] <= '9') || region[i] == '-')) {
      fail (EINVAL, "s3 target parameter region '%s' is not a region name",
            region);
      goto err;
    }
  if (*region == '\0' || i > 64) {
    fail (EINVAL, "s3 target parameter region must be a region name");
    goto err;
  }
  if (endpoint == NULL) {
    if (asprintf (&aws_endpoint, "https://s3.%s.amazonaws.com", region) < 0)
      goto nomem;
    endpoint = aws_endpoint;
    if (path_style == -1)
      path_style = 0;
  }
  else {
    const char *hp = strncmp (endpoint, "https://", 8) == 0 ? endpoint + 8 :
      strncmp (endpoint, "http://", 7) == 0 ? endpoint + 7 : NULL;
    if (hp == NULL || *hp == '\0' || strpbrk (hp, "/?#@ \t\r\n%")) {
      fail (EINVAL, "s3 target parameter endpoint must be "
            "http(s)://host[:port] without a path, not '%s'", endpoint);
      goto err;
    }
    if (path_style == -1)
      path_style = 1;
  }
  if (cred == NULL) {
    fail (EINVAL, "s3 target %s needs credentials_file=PATH (an AWS "
          "shared-credentials file owned by root, mode 0600)", url);
    goto err;
  }
  if (s3_read_credentials (cred, profile, &h->c.key_id, &h->c.secret,
                           &e) == -1) {
    plugin_err_report (&e);
    goto err;
  }

  h->c.path_style = path_style;
  h->c.tries = tries;
  h->c.backoff_ms = 250;
  h->c.host = host;
  h->part_size = part_mib * S3_MIB;
  h->parts_in_flight = inflight;
  h->max_parallel_reads = reads;
  if ((h->c.url = strdup (url)) == NULL ||
      (h->c.bucket = strndup (rest, blen)) == NULL ||
      (h->c.region = strdup (region)) == NULL ||
      asprintf (&h->c.sigv4, "aws:amz:%s:s3", region) < 0 ||
      (h->c.base = make_base (endpoint, h->c.bucket, path_style)) == NULL)
    goto nomem;
  if (slash && slash[1] != '\0') {
    size_t plen = strlen (slash + 1);
    if (slash[plen] == '/')
      plen--;
    if (asprintf (&h->c.prefix, "%.*s/", (int) plen, slash + 1) < 0) {
      h->c.prefix = NULL;
      goto nomem;
    }
  }
  else if ((h->c.prefix = strdup ("")) == NULL)
    goto nomem;
  free (aws_endpoint);
  return h;

 nomem:
  fail (ENOMEM, "opening s3 target %s: %s", url, strerror (ENOMEM));
 err:
  free (aws_endpoint);
  free_target (h);
  return NULL;
}

static void
s3_close (void *handle)
{
  free_target (handle);
}

/* PREFIX + name, checked. */
static char *
full_key (struct s3_target *h, const char *name)
{
  char *k;
  size_t nlen = strlen (name);

  if (!plugin_valid_object_name (name, nlen, 0)) {
    fail (EINVAL, "'%.100s' is not a valid object name", name);
    return NULL;
  }
  if (strlen (h->c.prefix) + nlen > KEY_MAX) {
    fail (EINVAL, "S3 key %s%.100s... is longer than %d bytes", h->c.prefix,
          name, KEY_MAX);
    return NULL;
  }
  if (asprintf (&k, "%s%s", h->c.prefix, name) < 0) {
    fail (ENOMEM, "%s", strerror (ENOMEM));
    return NULL;
  }
  return k;
}

/* ---- simple requests ---- */

static int
head_key (struct s3_target *h, const char *key, uint64_t *size,
          struct plugin_err *e)
{
  struct s3_req r = { .method = "HEAD", .key = key, .cancellable = true };
  long st = s3_http (&h->c, &r, e);

  if (st < 0)
    return -1;
  s3_req_free (&r);
  /* A HEAD answer has no body: a missing bucket also reads as "no such
   * object" here; test() and put name it.
   */
  if (st == 404)
    return 0;
  if (st == 200) {
    if (!r.have_length) {
      plugin_err_set (e, EIO, "HEAD s3://%s/%s: no Content-Length in the "
                      "answer", h->c.bucket, key);
      return -1;
    }
    *size = r.content_length;
    return 1;
  }
  s3_http_status_error (&h->c, &r, "HEAD", e);
  return -1;
}

static int
s3_stat (void *handle, const char *name, uint64_t *ret_size)
{
  struct s3_target *h = handle;
  char *key = full_key (h, name);
  struct plugin_err e;
  int r;

  if (key == NULL)
    return -1;
  r = head_key (h, key, ret_size, &e);
  if (r == -1)
    plugin_err_report (&e);
  free (key);
  return r;
}

/* Ranged GET of key into buf for job (NULL: the calling thread's).
 * Returns bytes read, -1 with e set.
 */
static int64_t
get_range (struct s3_target *h, const struct plugin_job *job, const char *key,
           void *buf, size_t count, uint64_t offset, struct plugin_err *e)
{
  char range[64];
  struct s3_req r = { .method = "GET", .key = key, .range = range,
                      .out = buf, .out_max = count, .cancellable = true,
                      .job = job };
  long st;

  if (count == 0)
    return 0;
  snprintf (range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, offset,
            offset + count - 1);
  st = s3_http (&h->c, &r, e);
  if (st < 0)
    return -1;
  if (st == 206 || (st == 200 && offset == 0)) {
    s3_req_free (&r);
    return r.out_len;
  }
  if (st == 416) {
    s3_req_free (&r);
    return 0;
  }
  s3_http_status_error (&h->c, &r, "GET", e);
  s3_req_free (&r);
  return -1;
}

static int64_t
s3_get (void *handle, const char *name, void *buf, size_t count,
        uint64_t offset)
{
  struct s3_target *h = handle;
  char *key = full_key (h, name);
  struct plugin_err e;
  int64_t n;

  if (key == NULL)
    return -1;
  n = get_range (h, NULL, key, buf, count, offset, &e);
  if (n == -1)
    plugin_err_report (&e);
  free (key);
  return n;
}

static int
delete_key (struct s3_target *h, const char *key, const char *query,
            struct plugin_err *e)
{
  struct s3_req r = { .method = "DELETE", .key = key, .query = query,
                      .cancellable = true };
  long st = s3_http (&h->c, &r, e);

  if (st < 0)
    return -1;
  s3_req_free (&r);
  if ((st >= 200 && st < 300) ||
      (st == 404 && strcmp (r.code, "NoSuchBucket") != 0))
    return 0;
  s3_http_status_error (&h->c, &r, query ? "aborting upload of" : "DELETE",
                        e);
  return -1;
}

static int
s3_remove (void *handle, const char *name)
{
  struct s3_target *h = handle;
  char *key = full_key (h, name);
  struct plugin_err e;
  int r;

  if (key == NULL)
    return -1;
  r = delete_key (h, key, NULL, &e);
  if (r == -1)
    plugin_err_report (&e);
  free (key);
  return r;
}

/* ---- list ---- */

struct list_ctx {
  struct s3_target *h;
  virtvault_list_cb cb;
  void *opaque;
  size_t plen;                  /* length of the target prefix */
};

static int
list_key (void *opaque, const char *key, size_t keylen, uint64_t size)
{
  struct list_ctx *l = opaque;

  if (keylen <= l->plen || memcmp (key, l->h->c.prefix, l->plen) != 0 ||
      !plugin_valid_object_name (key + l->plen, keylen - l->plen, 0) ||
      strlen (key) != keylen) {
    log_warning ("s3 target %s: skipping key '%.200s' that is not a valid "
                 "object name", l->h->c.url, key);
    return 0;
  }
  return l->cb (l->opaque, key + l->plen, size);
}

static int
s3_list (void *handle, const char *prefix, virtvault_list_cb cb,
         void *opaque)
{
  struct s3_target *h = handle;
  struct list_ctx l = { h, cb, opaque, strlen (h->c.prefix) };
  char *query = malloc (3 * (KEY_MAX + TOKEN_MAX) + 256);
  char *token = calloc (1, TOKEN_MAX), *prev = calloc (1, TOKEN_MAX);
  char *full = NULL;
  struct plugin_err e;
  unsigned page;
  int ret = -1;

  if (query == NULL || token == NULL || prev == NULL ||
      asprintf (&full, "%s%s", h->c.prefix, prefix) < 0) {
    full = NULL;
    fail (ENOMEM, "listing %s: %s", h->c.url, strerror (ENOMEM));
    goto out;
  }
  if (strlen (full) > KEY_MAX) {
    fail (EINVAL, "listing %s: prefix too long", h->c.url);
    goto out;
  }
  for (page = 0; page < LIST_MAX_PAGES; page++) {
    struct s3_req r = { .method = "GET", .query = query,
                        .cancellable = true };
    bool truncated;
    long st;
    int pr;

    query[0] = '\0';
    if (token[0]) {
      strcpy (query, "continuation-token=");
      s3_pct_encode (query, 3 * (KEY_MAX + TOKEN_MAX) + 256, token,
                     strlen (token), false);
      strcat (query, "&");
    }
    strcat (query, "list-type=2&max-keys=1000&prefix=");
    s3_pct_encode (query, 3 * (KEY_MAX + TOKEN_MAX) + 256, full,
                   strlen (full), false);
    st = s3_http (&h->c, &r, &e);
    if (st < 0) {
      plugin_err_report (&e);
      goto out;
    }
    if (st != 200) {
      s3_http_status_error (&h->c, &r, "listing", &e);
      plugin_err_report (&e);
      s3_req_free (&r);
      goto out;
    }
    strcpy (prev, token);
    pr = s3_xml_parse_list (r.resp, r.resp_len, list_key, &l, &truncated,
                            token, TOKEN_MAX);
    s3_req_free (&r);
    if (pr == -2)
      goto out;
    if (pr == -1) {
      fail (EIO, "listing s3://%s/%s: the server's answer is not a valid "
            "ListObjectsV2 result", h->c.bucket, full);
      goto out;
    }
    if (!truncated) {
      ret = 0;
      goto out;
    }
    if (token[0] == '\0' || strcmp (token, prev) == 0) {
      fail (EIO, "listing s3://%s/%s: the server's continuation token does "
            "not advance", h->c.bucket, full);
      goto out;
    }
  }
  fail (EIO, "listing s3://%s/%s: more than %d pages", h->c.bucket, full,
        LIST_MAX_PAGES);
 out:
  free (query);
  free (token);
  free (prev);
  free (full);
  return ret;
}

/* ---- remove_many ---- */

static void
xml_escape (FILE *f, const char *s)
{
  for (; *s; s++)
    switch (*s) {
    case '&': fputs ("&amp;", f); break;
    case '<': fputs ("&lt;", f); break;
    case '>': fputs ("&gt;", f); break;
    case '"': fputs ("&quot;", f); break;
    case '\'': fputs ("&apos;", f); break;
    default: fputc (*s, f);
    }
}

/* Delete names[0..n) (n <= DELETE_BATCH) in one DeleteObjects request. */
static int
delete_batch (struct s3_target *h, const char *const *names, size_t n)
{
  char *body = NULL, ekey[256], ecode[64];
  size_t len = 0, j;
  struct s3_req r = { .method = "POST", .query = "delete=", .md5 = true,
                      .cancellable = true };
  struct plugin_err e;
  FILE *f;
  long st;
  int bad;

  f = open_memstream (&body, &len);
  if (f == NULL) {
    fail (ENOMEM, "deleting objects in %s: %s", h->c.url, strerror (ENOMEM));
    return -1;
  }
  fputs ("<Delete><Quiet>true</Quiet>", f);
  for (j = 0; j < n; j++) {
    char *key = full_key (h, names[j]);
    if (key == NULL) {
      fclose (f);
      free (body);
      return -1;
    }
    fputs ("<Object><Key>", f);
    xml_escape (f, key);
    fputs ("</Key></Object>", f);
    free (key);
  }
  fputs ("</Delete>", f);
  if (fclose (f) != 0) {
    free (body);
    fail (ENOMEM, "deleting objects in %s: %s", h->c.url, strerror (ENOMEM));
    return -1;
  }
  r.body = body;
  r.body_len = len;
  st = s3_http (&h->c, &r, &e);
  free (body);
  if (st < 0) {
    plugin_err_report (&e);
    return -1;
  }
  if (st != 200) {
    s3_http_status_error (&h->c, &r, "deleting objects in", &e);
    plugin_err_report (&e);
    s3_req_free (&r);
    return -1;
  }
  bad = s3_xml_delete_errors (r.resp, r.resp_len, ekey, sizeof ekey,
                              ecode, sizeof ecode);
  s3_req_free (&r);
  if (bad < 0) {
    fail (EIO, "deleting objects in %s: the server's answer is not a "
          "DeleteResult", h->c.url);
    return -1;
  }
  if (bad > 0) {
    fail (strcmp (ecode, "AccessDenied") == 0 ? EACCES : EIO,
          "deleting objects in %s: %d not deleted, the first s3://%s/%s: %s",
          h->c.url, bad, h->c.bucket, ekey, ecode);
    return -1;
  }
  return 0;
}

static int
s3_remove_many (void *handle, const char *const *names, size_t n,
                uint32_t flags)
{
  size_t i;

  if (flags) {
    fail (EINVAL, "s3 remove_many: unknown flags 0x%x", flags);
    return -1;
  }
  for (i = 0; i < n; i += DELETE_BATCH)
    if (delete_batch (handle, names + i,
                      n - i < DELETE_BATCH ? n - i : DELETE_BATCH) == -1)
      return -1;
  return 0;
}

/* ---- remove_partial ---- */

struct upload_list {
  char **keys, **ids;
  size_t n, cap;
  bool full;
};

static int
add_upload (void *opaque, const char *key, const char *id)
{
  struct upload_list *u = opaque;

  if (u->n >= PARTIAL_MAX_UPLOADS) {
    u->full = true;
    return -1;
  }
  if (u->n == u->cap) {
    size_t nc = u->cap ? u->cap * 2 : 16;
    char **k = realloc (u->keys, nc * sizeof *k);
    if (k == NULL)
      return -1;
    u->keys = k;
    char **i = realloc (u->ids, nc * sizeof *i);
    if (i == NULL)
      return -1;
    u->ids = i;
    u->cap = nc;
  }
  if ((u->keys[u->n] = strdup (key)) == NULL)
    return -1;
  if ((u->ids[u->n] = strdup (id)) == NULL) {
    free (u->keys[u->n]);
    return -1;
  }
  u->n++;
  return 0;
}

static int
s3_remove_partial (void *handle, const char *prefix)
{
  struct s3_target *h = handle;
  struct upload_list u = { 0 };
  /* two markers and the prefix, each percent-encoded (x3) */
  size_t qsz = 3 * (2 * TOKEN_MAX + KEY_MAX) + 256, i;
  char *query = malloc (qsz), *full = NULL;
  char *kmark = calloc (1, TOKEN_MAX), *umark = calloc (1, TOKEN_MAX);
  struct plugin_err e;
  unsigned page;
  int ret = -1;

  if (query == NULL || kmark == NULL || umark == NULL ||
      asprintf (&full, "%s%s", h->c.prefix, prefix) < 0) {
    full = NULL;
    fail (ENOMEM, "%s", strerror (ENOMEM));
    goto out;
  }
  if (strlen (full) > KEY_MAX) {
    fail (EINVAL, "removing unfinished uploads in %s: prefix too long",
          h->c.url);
    goto out;
  }
  for (page = 0; page < LIST_MAX_PAGES; page++) {
    struct s3_req r = { .method = "GET", .query = query,
                        .cancellable = true };
    bool truncated;
    long st;
    int pr;

    query[0] = '\0';
    if (kmark[0]) {
      strcpy (query, "key-marker=");
      s3_pct_encode (query, qsz, kmark, strlen (kmark), false);
      strcat (query, "&");
    }
    strcat (query, "prefix=");
    s3_pct_encode (query, qsz, full, strlen (full), false);
    if (umark[0]) {
      strcat (query, "&upload-id-marker=");
      s3_pct_encode (query, qsz, umark, strlen (umark), false);
    }
    strcat (query, "&uploads=");
    st = s3_http (&h->c, &r, &e);
    if (st < 0) {
      plugin_err_report (&e);
      goto out;
    }
    if (st != 200) {
      s3_http_status_error (&h->c, &r, "listing unfinished uploads in", &e);
      plugin_err_report (&e);
      s3_req_free (&r);
      goto out;
    }
    pr = s3_xml_parse_uploads (r.resp, r.resp_len, add_upload, &u,
                               &truncated, kmark, umark, TOKEN_MAX);
    s3_req_free (&r);
    if (pr == -2) {
      fail (u.full ? EFBIG : ENOMEM, "listing unfinished uploads in "
            "s3://%s/%s: %s", h->c.bucket, full,
            u.full ? "too many" : strerror (ENOMEM));
      goto out;
    }
    if (pr == -1) {
      fail (EIO, "listing unfinished uploads in s3://%s/%s: the server's "
            "answer is not a ListMultipartUploads result", h->c.bucket, full);
      goto out;
    }
    if (!truncated)
      break;
    if (kmark[0] == '\0') {
      fail (EIO, "listing unfinished uploads in s3://%s/%s: truncated "
            "without a marker", h->c.bucket, full);
      goto out;
    }
  }
  for (i = 0; i < u.n; i++) {
    char *q = malloc (3 * strlen (u.ids[i]) + 16);
    int r;

    if (strncmp (u.keys[i], full, strlen (full)) != 0) {
      free (q);
      continue;                 /* the server ignored the prefix */
    }
    if (q == NULL) {
      fail (ENOMEM, "%s", strerror (ENOMEM));
      goto out;
    }
    strcpy (q, "uploadId=");
    s3_pct_encode (q, 3 * strlen (u.ids[i]) + 16, u.ids[i],
                   strlen (u.ids[i]), false);
    r = delete_key (h, u.keys[i], q, &e);
    free (q);
    if (r == -1) {
      plugin_err_report (&e);
      goto out;
    }
  }
  ret = 0;
 out:
  for (i = 0; i < u.n; i++) {
    free (u.keys[i]);
    free (u.ids[i]);
  }
  free (u.keys);
  free (u.ids);
  free (query);
  free (kmark);
  free (umark);
  free (full);
  return ret;
}

/* ---- put ---- */

static void *
s3_put_begin2 (void *handle, const char *name, uint64_t size, uint32_t flags)
{
  struct s3_target *h = handle;
  struct s3_put *p;
  struct plugin_err e;
  char *key;

  if (flags) {
    fail (EINVAL, "s3 put_begin2: unknown flags 0x%x", flags);
    return NULL;
  }
  key = full_key (h, name);
  if (key == NULL)
    return NULL;
  p = s3_put_begin (&h->c, key, size, h->part_size, h->parts_in_flight, &e);
  free (key);
  if (p == NULL)
    plugin_err_report (&e);
  return p;
}

static void *
s3_put_begin_v1 (void *handle, const char *name)
{
  return s3_put_begin2 (handle, name, VIRTVAULT_SIZE_UNKNOWN, 0);
}

static int
s3_put_write_cb (void *stream, const void *buf, size_t count)
{
  struct plugin_err e;

  if (s3_put_write (stream, buf, count, &e) == -1) {
    plugin_err_report (&e);
    return -1;
  }
  return 0;
}

static int
s3_put_commit_cb (void *stream)
{
  struct plugin_err e;

  if (s3_put_commit (stream, &e) == -1) {
    plugin_err_report (&e);
    return -1;
  }
  return 0;
}

static void
s3_put_abort_cb (void *stream)
{
  s3_put_abort (stream);
}

/* ---- read handles ---- */

struct s3_read {
  struct s3_target *h;
  char *key;
  uint64_t size;
  /* The job of the read_open thread: the host may pread from threads of
   * its own that belong to no job.
   */
  struct plugin_job job;
};

static void *
s3_read_open (void *handle, const char *name, uint64_t *ret_size,
              uint32_t flags)
{
  struct s3_target *h = handle;
  struct s3_read *rh;
  struct plugin_err e;
  char *key;
  int r;

  if (flags) {
    fail (EINVAL, "s3 read_open: unknown flags 0x%x", flags);
    return NULL;
  }
  key = full_key (h, name);
  if (key == NULL)
    return NULL;
  r = head_key (h, key, ret_size, &e);
  if (r == 0)
    plugin_err_set (&e, ENOENT, "s3://%s/%s does not exist", h->c.bucket, key);
  if (r != 1) {
    plugin_err_report (&e);
    free (key);
    return NULL;
  }
  rh = malloc (sizeof *rh);
  if (rh == NULL) {
    fail (ENOMEM, "%s", strerror (ENOMEM));
    free (key);
    return NULL;
  }
  rh->h = h;
  rh->key = key;
  rh->size = *ret_size;
  plugin_job_capture (&rh->job, host);
  return rh;
}

static int64_t
s3_pread (void *read_handle, void *buf, size_t count, uint64_t offset,
          uint32_t flags)
{
  struct s3_read *rh = read_handle;
  struct plugin_err e;
  int64_t n;

  if (flags) {
    fail (EINVAL, "s3 pread: unknown flags 0x%x", flags);
    return -1;
  }
  if (offset >= rh->size)
    return 0;
  if (count > rh->size - offset)
    count = rh->size - offset;
  n = get_range (rh->h, &rh->job, rh->key, buf, count, offset, &e);
  if (n == -1) {
    plugin_err_report (&e);
    return -1;
  }
  if ((size_t) n != count) {
    fail (EIO, "reading s3://%s/%s: %" PRId64 " bytes at offset %" PRIu64
          " instead of %zu (was the object replaced?)", rh->h->c.bucket,
          rh->key, n, offset, count);
    return -1;
  }
  return n;
}

static void
s3_read_close (void *read_handle)
{
  struct s3_read *rh = read_handle;

  free (rh->key);
  free (rh);
}

/* ---- capabilities, test ---- */

static int
s3_capabilities (void *handle, struct virtvault_caps *caps, uint32_t flags)
{
  struct s3_target *h = handle;

  if (flags) {
    fail (EINVAL, "s3 capabilities: unknown flags 0x%x", flags);
    return -1;
  }
  /* Not ATOMIC_PUBLISH: see s3-put.c on multipart completion. */
  caps->flags = VIRTVAULT_CAP_DURABLE_COMMIT | VIRTVAULT_CAP_CONSISTENT_LIST;
  caps->io_size = h->part_size;
  caps->io_align = 0;
  caps->max_parallel_reads = h->max_parallel_reads;
  caps->max_object_size = S3_MAX_PART * S3_MAX_PARTS;
  return 0;
}

struct probe_find {
  const char *name;
  bool found;
};

static int
probe_cb (void *opaque, const char *name, uint64_t size)
{
  struct probe_find *f = opaque;

  if (strcmp (name, f->name) == 0 && size == 16)
    f->found = true;
  return 0;
}

static int
s3_test (void *handle)
{
  struct s3_target *h = handle;
  static const char data[16] = "virtvault-probe\n";
  char name[64], back[8];
  unsigned char rnd[8];
  struct probe_find f = { name, false };
  struct s3_put *p;
  struct plugin_err e;
  int64_t n;
  int ret = -1;
  char *key;

  if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd) {
    fail (errno, "s3 test: getrandom: %s", strerror (errno));
    return -1;
  }
  snprintf (name, sizeof name,
            ".virtvault-test/probe-%02x%02x%02x%02x%02x%02x%02x%02x",
            rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
  key = full_key (h, name);
  if (key == NULL)
    return -1;
  p = s3_put_begin (&h->c, key, sizeof data, h->part_size, 1, &e);
  if (p == NULL || s3_put_write (p, data, sizeof data, &e) == -1) {
    if (p)
      s3_put_abort (p);
    goto report;
  }
  if (s3_put_commit (p, &e) == -1)
    goto report;
  n = get_range (h, NULL, key, back, 8, 4, &e);
  if (n == -1)
    goto report_rm;
  if (n != 8 || memcmp (back, data + 4, 8) != 0) {
    plugin_err_set (&e, EIO, "s3 target %s: a ranged read of the probe "
                    "s3://%s/%s gave different bytes", h->c.url, h->c.bucket,
                    key);
    goto report_rm;
  }
  if (s3_list (h, ".virtvault-test/", probe_cb, &f) == -1)
    goto rm;
  if (!f.found) {
    plugin_err_set (&e, EIO, "s3 target %s: the probe s3://%s/%s is missing "
                    "from the listing", h->c.url, h->c.bucket, key);
    goto report_rm;
  }
  if (delete_key (h, key, NULL, &e) == -1)
    goto report;
  ret = 0;
  goto out;

 report_rm:
  plugin_err_report (&e);
 rm:
  delete_key (h, key, NULL, &e);
  goto out;
 report:
  plugin_err_report (&e);
 out:
  free (key);
  return ret;
}

static struct virtvault_plugin plugin = {
  .name = "s3",
  .version = PACKAGE_VERSION,
  .description = "an S3 bucket (AWS, Ceph RGW, MinIO ...), s3://bucket/prefix",
  .config_help = S3_CONFIG_HELP,
  .load = s3_load,
  .unload = s3_unload,
  .open = s3_open,
  .close = s3_close,
  .test = s3_test,
  .put_begin = s3_put_begin_v1,
  .put_write = s3_put_write_cb,
  .put_commit = s3_put_commit_cb,
  .put_abort = s3_put_abort_cb,
  .get = s3_get,
  .stat = s3_stat,
  .list = s3_list,
  .remove = s3_remove,
  .remove_partial = s3_remove_partial,
  .load_host = s3_load_host,
  .secret_params = NULL,
  .capabilities = s3_capabilities,
  .put_begin2 = s3_put_begin2,
  .read_open = s3_read_open,
  .pread = s3_pread,
  .read_close = s3_read_close,
  .remove_many = s3_remove_many,
};

VIRTVAULT_REGISTER_PLUGIN (plugin)
