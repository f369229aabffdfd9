/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drives the S3 plugin's version 2 callbacks against a real server (run
 * by test-target-s3.sh, which starts it):
 *   s3-plugin-driver PLUGIN.so URL ENDPOINT CREDENTIALS_FILE [CA_FILE]
 * put_begin2 with a known size (multipart, and single PUT), EFBIG before
 * any byte, size mismatches, no replacing on either path (EEXIST), read
 * handles with concurrent pread, capabilities, remove_many,
 * remove_partial, put_begin with an unknown size, and cancellation of a
 * job reaching the plugin's part threads and preads from threads of no
 * job.
 *   s3-plugin-driver --bench N SIZE PLUGIN.so URL ENDPOINT CREDENTIALS_FILE
 *                    [CA_FILE]
 * times N ranged reads of SIZE bytes through one read handle, one at a
 * time and then from 4 threads (docs/targets-s3.md).
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <virtvault-plugin.h>

#include "plugin-check.h"


static void
host_log (enum virtvault_log_level level, const char *fmt, ...)
{
  va_list ap;
  (void) level;
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static atomic_int job_cancel;

static const struct virtvault_plugin *p;
static void *h;
static unsigned char *data;
#define BIG (12 * 1024 * 1024 + 12345)

static int
put (const char *name, uint64_t announced, size_t len, bool v1)
{
  void *s = v1 ? p->put_begin (h, name) :
    p->put_begin2 (h, name, announced, 0);
  size_t off;

  if (s == NULL)
    return -1;
  for (off = 0; off < len; off += 1000000) {
    size_t n = len - off < 1000000 ? len - off : 1000000;
    if (p->put_write (s, data + off, n) == -1) {
      p->put_abort (s);
      return -1;
    }
  }
  return p->put_commit (s);
}

struct reader {
  void *rh;
  uint64_t off;
  size_t len;
  int ok;
  int64_t got;                  /* pread of the cancelled-job check */
  int err;
};

/* A thread of no job reads once (the daemon's restore readers). */
static void *
read_once (void *opaque)
{
  struct reader *r = opaque;
  unsigned char buf[4096];

  r->got = p->pread (r->rh, buf, r->len, r->off, 0);
  r->err = last_errno;
  return NULL;
}

struct bench {
  void *rh;
  unsigned n, first;
  size_t size;
  uint64_t span;
  int ok;
};

static void *
bench_thread (void *opaque)
{
  struct bench *b = opaque;
  unsigned char *buf = malloc (b->size);
  unsigned i;

  b->ok = buf != NULL;
  for (i = b->first; buf && i < b->first + b->n; i++) {
    uint64_t off = (uint64_t) i * 7919 * 4096 % b->span;
    if (p->pread (b->rh, buf, b->size, off, 0) != (int64_t) b->size ||
        memcmp (buf, data + off, b->size) != 0)
      b->ok = 0;
  }
  free (buf);
  return NULL;
}

/* N ranged reads of size bytes: one at a time, then 4 threads. */
static int
bench (unsigned n, size_t size)
{
  struct bench b[4];
  pthread_t th[4];
  uint64_t objsize;
  double t0, t1, t2;
  void *rh;
  int i, ok = 1;

  if (put ("drv/bench", BIG, BIG, false) == -1 ||
      (rh = p->read_open (h, "drv/bench", &objsize, 0)) == NULL) {
    fprintf (stderr, "bench object: %s\n", last_msg);
    return 1;
  }
  t0 = test_now ();
  b[0] = (struct bench) { rh, n, 0, size, BIG - size, 0 };
  bench_thread (&b[0]);
  ok &= b[0].ok;
  t1 = test_now ();
  for (i = 0; i < 4; i++) {
    b[i] = (struct bench) { rh, n / 4, (unsigned) i * (n / 4), size,
                            BIG - size, 0 };
    pthread_create (&th[i], NULL, bench_thread, &b[i]);
  }
  for (i = 0; i < 4; i++) {
    pthread_join (th[i], NULL);
    ok &= b[i].ok;
  }
  t2 = test_now ();
  p->read_close (rh);
  p->remove (h, "drv/bench");
  printf ("%u ranged reads of %zu bytes: %.3f s one at a time (%.2f ms "
          "each), %.3f s from 4 threads\n", n, size, t1 - t0,
          (t1 - t0) * 1000 / n, t2 - t1);
  if (!ok)
    fprintf (stderr, "bench: a read failed or gave wrong bytes: %s\n",
             last_msg);
  return ok ? 0 : 1;
}

static void *
read_thread (void *opaque)
{
  struct reader *r = opaque;
  unsigned char *buf = malloc (r->len);
  int i;

  r->ok = 1;
  for (i = 0; i < 3 && buf; i++)
    if (p->pread (r->rh, buf, r->len, r->off, 0) != (int64_t) r->len ||
        memcmp (buf, data + r->off, r->len) != 0)
      r->ok = 0;
  free (buf);
  return NULL;
}

static int
count_cb (void *opaque, const char *name, uint64_t size)
{
  int *n = opaque;
  (void) name;
  (void) size;
  (*n)++;
  return 0;
}

int
main (int argc, char **argv)
{
  const struct virtvault_plugin *(*init) (void);
  struct virtvault_host host = {
    ._struct_size = sizeof host, .api_version = VIRTVAULT_PLUGIN_API_VERSION,
    .host_version = "s3-plugin-driver", .log = host_log,
    .error = virtvault_error, .cancelled = test_host_cancelled,
    .current_job = test_host_current_job,
    .job_cancelled = test_host_job_cancelled,
  };
  struct virtvault_caps caps = { ._struct_size = sizeof caps };
  char ep[512], cred[512], ca[512];
  const char *params[] = { ep, cred, "part_size_mib=5", "parts_in_flight=3",
                           NULL, NULL };
  void *dl, *rh, *s;
  uint64_t size;
  unsigned char tail[100];
  unsigned bench_n = 0;
  size_t bench_size = 0;
  int n, i;

  if (argc >= 4 && strcmp (argv[1], "--bench") == 0) {
    bench_n = strtoul (argv[2], NULL, 10);
    bench_size = strtoul (argv[3], NULL, 10);
    argc -= 3;
    argv += 3;
    if (bench_n < 4 || bench_size == 0 || bench_size > BIG / 2)
      argc = 0;
  }
  if (argc != 5 && argc != 6) {
    fprintf (stderr, "usage: s3-plugin-driver [--bench N SIZE] PLUGIN.so "
             "URL ENDPOINT CREDENTIALS [CA_FILE]\n");
    return 2;
  }
  snprintf (ep, sizeof ep, "endpoint=%s", argv[3]);
  snprintf (cred, sizeof cred, "credentials_file=%s", argv[4]);
  if (argc == 6) {
    snprintf (ca, sizeof ca, "ca_file=%s", argv[5]);
    params[4] = ca;
  }
  test_thread_job = &job_cancel;
  dl = dlopen (argv[1], RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    fprintf (stderr, "dlopen: %s\n", dlerror ());
    return 1;
  }
  init = (const struct virtvault_plugin *(*) (void))
    dlsym (dl, "virtvault_plugin_init");
  p = init ();
  if (p->load_host (&host, 0) == -1 || (h = p->open (argv[2], params)) == NULL) {
    fprintf (stderr, "load/open: %s\n", last_msg);
    return 1;
  }
  data = malloc (BIG);
  for (i = 0; i < BIG; i++)
    data[i] = (unsigned char) (i * 7919 + (i >> 13));
  if (bench_n) {
    int r = bench (bench_n, bench_size);
    p->close (h);
    p->unload ();
    free (data);
    return r;
  }

  CHECK (p->capabilities (h, &caps, 0) == 0);
  CHECK (!(caps.flags & VIRTVAULT_CAP_ATOMIC_PUBLISH));
  CHECK (caps.flags & VIRTVAULT_CAP_DURABLE_COMMIT);
  CHECK (caps.max_parallel_reads == 4);
  CHECK (caps.io_size == 5 * 1024 * 1024);
  CHECK (caps.max_object_size == 10000 * (UINT64_C (5) << 30));
  CHECK (p->capabilities (h, &caps, 1) == -1 && last_errno == EINVAL);

  /* Too large for S3: refused before any byte. */
  CHECK (p->put_begin2 (h, "drv/huge", caps.max_object_size + 1, 0) == NULL);
  CHECK (last_errno == EFBIG);
  CHECK (p->put_begin2 (h, "../x", 10, 0) == NULL && last_errno == EINVAL);

  /* Multipart (3 parts of 5 MiB max) with the size known. */
  CHECK (put ("drv/big", BIG, BIG, false) == 0);
  /* Not replaced: HEAD before complete. */
  CHECK (put ("drv/big", BIG, BIG, false) == -1 && last_errno == EEXIST);
  /* Single PUT with If-None-Match. */
  CHECK (put ("drv/small", 1000, 1000, false) == 0);
  CHECK (put ("drv/small", 1000, 1000, false) == -1 && last_errno == EEXIST);
  CHECK (put ("drv/empty", 0, 0, false) == 0);
  /* Fewer bytes than announced, then more. */
  CHECK (put ("drv/short", 6 * 1024 * 1024, 5 * 1024 * 1024 + 1, false) == -1);
  CHECK (last_errno == EINVAL);
  CHECK (put ("drv/long", 1000, 2000, false) == -1 && last_errno == EINVAL);
  /* Unknown size (version 1 put_begin), multipart. */
  CHECK (put ("drv/v1", 0, 7 * 1024 * 1024, true) == 0);

  /* Read handles, concurrent preads. */
  rh = p->read_open (h, "drv/big", &size, 0);
  CHECK (rh != NULL && size == BIG);
  if (rh) {
    struct reader r[4];
    pthread_t th[4];
    for (i = 0; i < 4; i++) {
      r[i] = (struct reader) { rh, (uint64_t) i * 3000000 + 17, 2500000, 0,
                               0, 0 };
      pthread_create (&th[i], NULL, read_thread, &r[i]);
    }
    for (i = 0; i < 4; i++) {
      pthread_join (th[i], NULL);
      CHECK (r[i].ok);
    }
    CHECK (p->pread (rh, tail, sizeof tail, BIG - 40, 0) == 40);
    CHECK (memcmp (tail, data + BIG - 40, 40) == 0);
    CHECK (p->pread (rh, tail, sizeof tail, BIG, 0) == 0);
    p->read_close (rh);
  }
  CHECK (p->read_open (h, "drv/missing", &size, 0) == NULL &&
         last_errno == ENOENT);
  CHECK (p->get (h, "drv/v1", tail, 10, 7 * 1024 * 1024 - 5) == 5);
  CHECK (memcmp (tail, data + 7 * 1024 * 1024 - 5, 5) == 0);
  CHECK (p->stat (h, "drv/empty", &size) == 1 && size == 0);
  CHECK (p->stat (h, "drv/short", &size) == 0);
  n = 0;
  CHECK (p->list (h, "drv/", count_cb, &n) == 0 && n == 4);

  /* An unfinished upload is removed by remove_partial. */
  s = p->put_begin2 (h, "drv/partial", BIG, 0);
  CHECK (s && p->put_write (s, data, 6 * 1024 * 1024) == 0);
  CHECK (p->remove_partial (h, "drv/") == 0);
  if (s)
    p->put_abort (s);

  /* The job is cancelled after the first part went to its thread: the
   * next parts' threads (which have no job of their own) give up, so the
   * upload fails and is aborted.  The error comes from a part's PUT.
   */
  s = p->put_begin2 (h, "drv/cancelled", BIG, 0);
  CHECK (s && p->put_write (s, data, 5 * 1024 * 1024 + 1) == 0);
  atomic_store (&job_cancel, 1);
  CHECK (s && p->put_write (s, data, 5 * 1024 * 1024) == 0);
  CHECK (s && p->put_write (s, data, BIG - 10 * 1024 * 1024 - 1) == 0);
  CHECK (s && p->put_commit (s) == -1);
  CHECK (last_errno == ECANCELED && strstr (last_msg, "S3 PUT s3://") &&
         strstr (last_msg, "drv-test/drv/cancelled: cancelled"));
  atomic_store (&job_cancel, 0);
  CHECK (p->stat (h, "drv/cancelled", &size) == 0);
  /* A read handle opened for a job: a pread from a thread of no job
   * stops once that job is cancelled.
   */
  rh = p->read_open (h, "drv/v1", &size, 0);
  CHECK (rh != NULL);
  if (rh) {
    struct reader r = { rh, 100, 1000, 0, 0, 0 };
    pthread_t th;
    pthread_create (&th, NULL, read_once, &r);
    pthread_join (th, NULL);
    CHECK (r.got == 1000);
    atomic_store (&job_cancel, 1);
    pthread_create (&th, NULL, read_once, &r);
    pthread_join (th, NULL);
    CHECK (r.got == -1 && r.err == ECANCELED);
    atomic_store (&job_cancel, 0);
    p->read_close (rh);
  }

  {
    const char *names[] = { "drv/big", "drv/small", "drv/empty", "drv/v1",
                            "drv/never-there" };
    CHECK (p->remove_many (h, names, 5, 0) == 0);
  }
  n = 0;
  CHECK (p->list (h, "drv/", count_cb, &n) == 0 && n == 0);
  CHECK (p->remove (h, "drv/big") == 0);

  p->close (h);
  p->unload ();
  free (data);
  if (check_result ("s3-plugin-driver"))
    return 1;
  printf ("s3-plugin-driver: all checks passed\n");
  return 0;
}
