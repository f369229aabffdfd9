/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Streamed uploads (see s3-put.h).
 *
 * The caller fills one buffer of part size.  When it is full, the upload
 * is initiated (first time) and the buffer goes to a free worker slot,
 * whose thread sends it as part N with Content-MD5, retrying from the
 * same buffer (s3_http).  With every slot busy, the writer waits for the
 * oldest part.  Commit sends the last part, waits for all, checks with
 * HEAD that the key is still free and completes; any failure aborts the
 * upload so that no parts stay stored (and billed).
 *
 * Atomicity: S3 has no "create only" for CompleteMultipartUpload (RGW
 * ignores If-None-Match there), so two writers completing the same key
 * between the HEAD and the complete would race and the later one wins.
 * virtvault names every object with fresh UUIDs, so two puts of one name
 * do not happen in practice; the plugin does not claim ATOMIC_PUBLISH.
 * A single PUT is atomic and refuses to replace (If-None-Match: *).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <virtvault-plugin.h>

#include "s3-put.h"
#include "s3-xml.h"

struct slot {
  struct s3_put *p;
  pthread_t th;
  bool busy;
  unsigned part;                /* 1-based part number */
  char *buf;
  size_t len;
  int result;
  struct plugin_err err;
};

struct s3_put {
  struct s3_conn *c;
  /* The job of the put_begin thread: part threads give up once it is
   * cancelled (the host's cancelled () answers 0 on them).
   */
  struct plugin_job job;
  char *key;
  uint64_t size;                /* expected, or VIRTVAULT_SIZE_UNKNOWN */
  uint64_t part_size;
  uint64_t written;
  char *buf;                    /* the part being filled */
  size_t len;
  size_t cap;
  char *upload_id;
  char *upload_q;               /* "uploadId=ENC" */
  unsigned parts;               /* parts handed to workers */
  char (*etags)[130];           /* etags[part - 1] */
  unsigned in_flight;
  struct slot *slots;
  unsigned next_slot;           /* round robin: the oldest busy slot */
  bool failed;
  struct plugin_err err;            /* the first failure */
};

static void *
part_thread (void *opaque)
{
  struct slot *s = opaque;
  struct s3_put *p = s->p;
  size_t qlen = strlen (p->upload_q) + 32;
  char *q = malloc (qlen);
  struct s3_req r = { .method = "PUT", .key = p->key, .body = s->buf,
                      .body_len = s->len, .md5 = true, .cancellable = true,
                      .job = &p->job };
  long st;

  s->result = -1;
  if (q == NULL) {
    plugin_err_set (&s->err, ENOMEM, "uploading part %u of s3://%s/%s: %s",
                    s->part, p->c->bucket, p->key, strerror (ENOMEM));
    return NULL;
  }
  /* canonical order: partNumber < uploadId */
  snprintf (q, qlen, "partNumber=%u&%s", s->part, p->upload_q);
  r.query = q;
  st = s3_http (p->c, &r, &s->err);
  if (st == 200) {
    if (r.etag[0] == '\0')
      plugin_err_set (&s->err, EIO, "uploading part %u of s3://%s/%s: no ETag "
                      "in the answer", s->part, p->c->bucket, p->key);
    else {
      memcpy (p->etags[s->part - 1], r.etag, sizeof r.etag);
      s->result = 0;
    }
  }
  else if (st > 0) {
    char what[64];
    snprintf (what, sizeof what, "uploading part %u of", s->part);
    s3_http_status_error (p->c, &r, what, &s->err);
  }
  s3_req_free (&r);
  free (q);
  return NULL;
}

/* Wait for slot s; record its failure.  Keeps its buffer for reuse. */
static void
join_slot (struct s3_put *p, struct slot *s)
{
  if (!s->busy)
    return;
  pthread_join (s->th, NULL);
  s->busy = false;
  if (s->result == -1 && !p->failed) {
    p->failed = true;
    p->err = s->err;
  }
}

static void
join_all (struct s3_put *p)
{
  unsigned i;

  for (i = 0; i < p->in_flight; i++)
    join_slot (p, &p->slots[i]);
}

static int
initiate (struct s3_put *p, struct plugin_err *e)
{
  struct s3_req r = { .method = "POST", .key = p->key, .query = "uploads=",
                      .cancellable = true, .job = &p->job };
  char id[1024];
  long st = s3_http (p->c, &r, e);
  size_t ilen;

  if (st < 0)
    return -1;
  if (st != 200) {
    s3_http_status_error (p->c, &r, "starting the upload of", e);
    s3_req_free (&r);
    return -1;
  }
  if (s3_xml_find_text (r.resp, r.resp_len, "UploadId", id, sizeof id) == -1
      || id[0] == '\0' || strlen (id) >= sizeof id - 1) {
    plugin_err_set (e, EIO, "starting the upload of s3://%s/%s: no UploadId "
                    "in the answer", p->c->bucket, p->key);
    s3_req_free (&r);
    return -1;
  }
  s3_req_free (&r);
  ilen = 3 * strlen (id) + 16;
  p->upload_id = strdup (id);
  p->upload_q = malloc (ilen);
  if (p->upload_id == NULL || p->upload_q == NULL) {
    plugin_err_set (e, ENOMEM, "%s", strerror (ENOMEM));
    return -1;
  }
  strcpy (p->upload_q, "uploadId=");
  s3_pct_encode (p->upload_q, ilen, id, strlen (id), false);
  return 0;
}

/* Hand the filled buffer to a worker as the next part. */
static int
send_part (struct s3_put *p, struct plugin_err *e)
{
  struct slot *s;
  char *spare;
  int rc;

  if (p->parts >= S3_MAX_PARTS) {
    plugin_err_set (e, EFBIG, "s3://%s/%s is larger than %u parts of "
                    "%" PRIu64 " MiB (%" PRIu64 " GiB); raise part_size_mib",
                    p->c->bucket, p->key, S3_MAX_PARTS, p->part_size / S3_MIB,
                    p->part_size * S3_MAX_PARTS >> 30);
    return -1;
  }
  if (p->upload_id == NULL && initiate (p, e) == -1)
    return -1;
  if (p->etags == NULL) {
    p->etags = calloc (S3_MAX_PARTS, sizeof *p->etags);
    if (p->etags == NULL) {
      plugin_err_set (e, ENOMEM, "%s", strerror (ENOMEM));
      return -1;
    }
  }
  s = &p->slots[p->next_slot];
  p->next_slot = (p->next_slot + 1) % p->in_flight;
  join_slot (p, s);
  if (p->failed) {
    *e = p->err;
    return -1;
  }
  /* swap buffers: the slot takes the filled one */
  spare = s->buf;
  s->buf = p->buf;
  s->len = p->len;
  s->part = ++p->parts;
  p->buf = spare;
  p->len = 0;
  rc = pthread_create (&s->th, NULL, part_thread, s);
  if (rc != 0) {
    plugin_err_set (e, rc, "uploading s3://%s/%s: cannot start a thread: %s",
                    p->c->bucket, p->key, strerror (rc));
    return -1;
  }
  s->busy = true;
  if (p->buf == NULL && (p->buf = malloc (p->cap)) == NULL) {
    plugin_err_set (e, ENOMEM, "%s", strerror (ENOMEM));
    return -1;
  }
  return 0;
}

struct s3_put *
s3_put_begin (struct s3_conn *c, const char *key, uint64_t size,
              uint64_t preferred_part, unsigned in_flight,
              struct plugin_err *e)
{
  struct s3_put *p;
  uint64_t part = s3_choose_part_size (size, preferred_part);

  if (part == 0) {
    plugin_err_set (e, EFBIG, "s3://%s/%s: %" PRIu64 " bytes is more than S3 "
                    "accepts in one object (10000 parts of 5 GiB)", c->bucket,
                    key, size);
    return NULL;
  }
  p = calloc (1, sizeof *p);
  if (p == NULL)
    goto nomem;
  p->c = c;
  plugin_job_capture (&p->job, c->host);
  p->size = size;
  p->part_size = part;
  p->in_flight = in_flight;
  /* A known small object needs only its own size. */
  p->cap = size != VIRTVAULT_SIZE_UNKNOWN && size < part ? size : part;
  if ((p->key = strdup (key)) == NULL ||
      (p->slots = calloc (in_flight, sizeof *p->slots)) == NULL ||
      (p->buf = malloc (p->cap ? p->cap : 1)) == NULL)
    goto nomem;
  for (unsigned i = 0; i < in_flight; i++)
    p->slots[i].p = p;
  return p;

 nomem:
  plugin_err_set (e, ENOMEM, "uploading s3://%s/%s: %s", c->bucket, key,
                  strerror (ENOMEM));
  if (p) {
    free (p->key);
    free (p->slots);
    free (p);
  }
  return NULL;
}

int
s3_put_write (struct s3_put *p, const void *buf, size_t count,
              struct plugin_err *e)
{
  const char *b = buf;

  if (p->failed) {
    *e = p->err;
    return -1;
  }
  if (p->size != VIRTVAULT_SIZE_UNKNOWN && count > p->size - p->written) {
    plugin_err_set (e, EINVAL, "uploading s3://%s/%s: more than the %" PRIu64
                    " bytes announced", p->c->bucket, p->key, p->size);
    return -1;
  }
  while (count > 0) {
    size_t n = p->cap - p->len;

    if (n == 0) {
      if (send_part (p, e) == -1) {
        p->failed = true;
        p->err = *e;
        return -1;
      }
      continue;
    }
    if (n > count)
      n = count;
    memcpy (p->buf + p->len, b, n);
    p->len += n;
    p->written += n;
    b += n;
    count -= n;
  }
  return 0;
}

static void
free_put (struct s3_put *p)
{
  unsigned i;

  join_all (p);
  for (i = 0; i < p->in_flight; i++)
    free (p->slots[i].buf);
  free (p->slots);
  free (p->buf);
  free (p->etags);
  free (p->upload_id);
  free (p->upload_q);
  free (p->key);
  free (p);
}

static void
abort_upload (struct s3_put *p)
{
  struct s3_req r = { .method = "DELETE", .key = p->key,
                      .query = p->upload_q };
  struct plugin_err ignored;

  join_all (p);
  if (p->upload_id == NULL)
    return;
  /* Failure here leaves the parts to remove_partial. */
  s3_http (p->c, &r, &ignored);
  s3_req_free (&r);
}

void
s3_put_abort (struct s3_put *p)
{
  abort_upload (p);
  free_put (p);
}

static int
single_put (struct s3_put *p, struct plugin_err *e)
{
  struct s3_req r = { .method = "PUT", .key = p->key, .body = p->buf,
                      .body_len = p->len, .md5 = true, .if_none_match = true,
                      .cancellable = true, .job = &p->job };
  long st = s3_http (p->c, &r, e);

  if (st < 0)
    return -1;
  s3_req_free (&r);
  if (st == 200)
    return 0;
  s3_http_status_error (p->c, &r, "uploading", e);
  if (e->code == EEXIST)
    plugin_err_set (e, EEXIST, "uploading s3://%s/%s: the object exists "
                    "already (HTTP 412); nothing was replaced", p->c->bucket,
                    p->key);
  return -1;
}

static int
complete (struct s3_put *p, struct plugin_err *e)
{
  struct s3_req r = { .method = "POST", .key = p->key,
                      .query = p->upload_q, .cancellable = true,
                      .job = &p->job };
  char *body = NULL, code[64];
  size_t len = 0;
  FILE *f = open_memstream (&body, &len);
  long st;
  unsigned i;

  if (f == NULL) {
    plugin_err_set (e, ENOMEM, "%s", strerror (ENOMEM));
    return -1;
  }
  fputs ("<CompleteMultipartUpload>", f);
  for (i = 0; i < p->parts; i++) {
    /* ETags come from the server: keep only harmless bytes. */
    const char *t = p->etags[i];
    fprintf (f, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
    for (; *t; t++)
      if (*t == '"')
        fputs ("&quot;", f);
      else if ((*t >= '0' && *t <= '9') || (*t >= 'a' && *t <= 'z') ||
               (*t >= 'A' && *t <= 'Z') || *t == '-')
        fputc (*t, f);
    fputs ("</ETag></Part>", f);
  }
  fputs ("</CompleteMultipartUpload>", f);
  if (fclose (f) != 0) {
    free (body);
    plugin_err_set (e, ENOMEM, "%s", strerror (ENOMEM));
    return -1;
  }
  r.body = body;
  r.body_len = len;
  st = s3_http (p->c, &r, e);
  free (body);
  if (st < 0)
    return -1;
  /* S3 may answer 200 with an <Error> body. */
  if (st == 200 && r.resp_len > 0 &&
      s3_xml_find_text (r.resp, r.resp_len, "Code", code, sizeof code) == 0 &&
      strstr (r.resp, "<Error") != NULL) {
    plugin_err_set (e, EIO, "completing the upload of s3://%s/%s: %s",
                    p->c->bucket, p->key, code);
    s3_req_free (&r);
    return -1;
  }
  if (st != 200) {
    s3_http_status_error (p->c, &r, "completing the upload of", e);
    s3_req_free (&r);
    return -1;
  }
  s3_req_free (&r);
  return 0;
}

int
s3_put_commit (struct s3_put *p, struct plugin_err *e)
{
  int ret = -1;

  if (p->failed) {
    *e = p->err;
    goto fail;
  }
  if (p->size != VIRTVAULT_SIZE_UNKNOWN && p->written != p->size) {
    plugin_err_set (e, EINVAL, "uploading s3://%s/%s: %" PRIu64 " bytes "
                    "written, %" PRIu64 " announced", p->c->bucket, p->key,
                    p->written, p->size);
    goto fail;
  }
  if (p->upload_id == NULL) {
    ret = single_put (p, e);
    free_put (p);
    return ret;
  }
  if (p->len > 0 && send_part (p, e) == -1)
    goto fail;
  join_all (p);
  if (p->failed) {
    *e = p->err;
    goto fail;
  }
  {
    struct s3_req r = { .method = "HEAD", .key = p->key, .cancellable = true,
                        .job = &p->job };
    long st = s3_http (p->c, &r, e);
    s3_req_free (&r);
    if (st < 0)
      goto fail;
    if (st == 200) {
      plugin_err_set (e, EEXIST, "uploading s3://%s/%s: the object exists "
                      "already; nothing was replaced", p->c->bucket, p->key);
      goto fail;
    }
    if (st != 404) {
      s3_http_status_error (p->c, &r, "checking", e);
      goto fail;
    }
  }
  if (complete (p, e) == -1)
    goto fail;
  free_put (p);
  return 0;

 fail:
  abort_upload (p);
  free_put (p);
  return -1;
}
