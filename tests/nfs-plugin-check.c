/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drives the nfs plugin directly (dlopen, no daemon) against a running
 * NFS server: run by test-target-nfs.sh, which starts the server.
 *
 *   nfs-plugin-check PLUGIN.so URL EXPORT_DIR
 *
 * EXPORT_DIR is the exported directory on this machine, to plant what a
 * hostile writer could (links, temporary names) and to look at what the
 * plugin left.  Checks ABI 2 callbacks: put_begin2 size checks, no
 * replace on publish (EEXIST), read handles, list hiding temporary
 * names, remove / remove_partial, symlinks refused, URL validation,
 * capabilities, and a read handle's pread from a thread of no job
 * stopping once the job that opened it is cancelled.  Prints "nfs-plugin-check: N failures" and exits 1 on any.
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <virtvault-plugin.h>

#include "plugin-check.h"

struct seen {
  char names[64][256];
  int n;
};

static int
collect (void *opaque, const char *name, uint64_t size)
{
  struct seen *s = opaque;
  (void) size;
  if (s->n < 64)
    snprintf (s->names[s->n++], 256, "%s", name);
  return 0;
}

static bool
listed (struct seen *s, const char *name)
{
  for (int i = 0; i < s->n; i++)
    if (strcmp (s->names[i], name) == 0)
      return true;
  return false;
}

static int
put (const struct virtvault_plugin *p, void *h, const char *name,
     const char *data, size_t len, uint64_t announce)
{
  void *s = p->put_begin2 (h, name, announce, 0);
  if (!s)
    return -1;
  if (p->put_write (s, data, len) == -1) {
    p->put_abort (s);
    return -1;
  }
  return p->put_commit (s);
}

static size_t
count_files (const char *dir)
{
  char cmd[600];
  FILE *f;
  size_t n = 0;
  int c;

  snprintf (cmd, sizeof cmd, "find '%s' -type f", dir);
  f = popen (cmd, "r");
  if (!f)
    return (size_t) -1;
  while ((c = fgetc (f)) != EOF)
    n += c == '\n';
  pclose (f);
  return n;
}

static atomic_int job_flag;

struct reader {
  const struct virtvault_plugin *p;
  void *rd;
  char *buf;
  int64_t got;
  int err;
};

/* A thread of no job (the daemon's restore readers) reads 1 MiB. */
static void *
read_thread (void *opaque)
{
  struct reader *r = opaque;

  r->got = r->p->pread (r->rd, r->buf, 1024 * 1024, 4096, 0);
  r->err = last_errno;
  return NULL;
}

int
main (int argc, char **argv)
{
  const struct virtvault_host host = {
    ._struct_size = sizeof host, .api_version = VIRTVAULT_PLUGIN_API_VERSION,
    .host_version = "nfs-plugin-check", .error = virtvault_error,
    .cancelled = test_host_cancelled, .current_job = test_host_current_job,
    .job_cancelled = test_host_job_cancelled,
  };
  const struct virtvault_plugin *(*init) (void);
  const struct virtvault_plugin *p;
  const char *bad_params[] = { "uid=0", NULL };
  const char *no_params[] = { NULL };
  struct virtvault_caps caps = { ._struct_size = sizeof caps };
  struct seen seen = { .n = 0 };
  static char big[3 * 1024 * 1024 + 17], back[sizeof big];
  char path[600];
  uint64_t size = 0;
  void *dl, *h, *rd;
  size_t i;

  if (argc != 4) {
    fprintf (stderr, "usage: %s PLUGIN.so URL EXPORT_DIR\n", argv[0]);
    return 2;
  }
  dl = dlopen (argv[1], RTLD_NOW);
  if (!dl) {
    fprintf (stderr, "%s\n", dlerror ());
    return 1;
  }
  init = (const struct virtvault_plugin *(*) (void))
    dlsym (dl, "virtvault_plugin_init");
  CHECK (init != NULL);
  if (!init)
    return 1;
  p = init ();
  CHECK (strcmp (p->name, "nfs") == 0);
  CHECK (p->_api_version == 2);
  CHECK (p->load_host (&host, 0) == 0);
  test_thread_job = &job_flag;

  /* URL validation: bad input is refused before any network use. */
  errno = 0;
  CHECK (p->open ("nfs://127.0.0.1/x?uid=0", no_params) == NULL &&
         last_errno == EINVAL);
  CHECK (strstr (last_msg, "unknown option 'uid'") != NULL);
  CHECK (p->open ("nfs://127.0.0.1/x", bad_params) == NULL);
  CHECK (p->open ("nfs://127.0.0.1/a/../b", no_params) == NULL);
  CHECK (p->open ("nfs://user@127.0.0.1/x", no_params) == NULL);
  CHECK (p->open ("nfs://127.0.0.1/x?version=2", no_params) == NULL);
  CHECK (p->open ("nfs:///x", no_params) == NULL);
  /* open needs no network: a port nothing listens on is fine. */
  h = p->open ("nfs://127.0.0.1/x?nfsport=1&timeout=2", no_params);
  CHECK (h != NULL);
  if (h) {
    CHECK (p->test (h) == -1);
    CHECK (last_errno == ECONNREFUSED || last_errno == ETIMEDOUT ||
           last_errno == ECONNRESET);
    p->close (h);
  }

  h = p->open (argv[2], no_params);
  CHECK (h != NULL);
  if (!h)
    return 1;
  CHECK (p->test (h) == 0);
  CHECK (p->capabilities (h, &caps, 0) == 0);
  CHECK (caps.flags & VIRTVAULT_CAP_ATOMIC_PUBLISH);
  CHECK (caps.flags & VIRTVAULT_CAP_DURABLE_COMMIT);
  CHECK (caps.io_size >= 4096);
  printf ("io_size %u\n", caps.io_size);

  for (i = 0; i < sizeof big; i++)
    big[i] = (char) (i * 7 + i / 4096);

  /* A put of 3 MiB in one write, then read back with a read handle. */
  CHECK (put (p, h, "c1/ch/bk/vda.qcow2", big, sizeof big, sizeof big) == 0);
  CHECK (p->stat (h, "c1/ch/bk/vda.qcow2", &size) == 1 && size == sizeof big);
  rd = p->read_open (h, "c1/ch/bk/vda.qcow2", &size, 0);
  CHECK (rd != NULL && size == sizeof big);
  if (rd) {
    CHECK (p->pread (rd, back, sizeof back, 0, 0) == (int64_t) sizeof back);
    CHECK (memcmp (back, big, sizeof big) == 0);
    CHECK (p->pread (rd, back, 100, 65536 + 3, 0) == 100);
    CHECK (memcmp (back, big + 65536 + 3, 100) == 0);
    CHECK (p->pread (rd, back, 100, sizeof big - 10, 0) == 10);
    CHECK (p->pread (rd, back, 100, sizeof big + 10, 0) == 0);
    p->read_close (rd);
  }
  /* The job that opened a read handle is cancelled: a pread from a
   * thread of no job stops (cancelled () answers 0 there); the job
   * token reaches it.
   */
  rd = p->read_open (h, "c1/ch/bk/vda.qcow2", &size, 0);
  CHECK (rd != NULL);
  if (rd) {
    struct reader r = { p, rd, back, 0, 0 };
    pthread_t th;

    CHECK (pthread_create (&th, NULL, read_thread, &r) == 0);
    pthread_join (th, NULL);
    CHECK (r.got == 1024 * 1024 && memcmp (back, big + 4096, r.got) == 0);
    atomic_store (&job_flag, 1);
    CHECK (pthread_create (&th, NULL, read_thread, &r) == 0);
    pthread_join (th, NULL);
    CHECK (r.got == -1 && r.err == ECANCELED);
    atomic_store (&job_flag, 0);
    CHECK (p->pread (rd, back, 100, 0, 0) == 100);
    p->read_close (rd);
  }
  CHECK (p->get (h, "c1/ch/bk/vda.qcow2", back, 1000, 5000) == 1000);
  CHECK (memcmp (back, big + 5000, 1000) == 0);

  /* Publishing over an existing name fails with EEXIST, keeps the old. */
  CHECK (put (p, h, "c1/ch/bk/vda.qcow2", "x", 1, 1) == -1);
  CHECK (last_errno == EEXIST);
  CHECK (p->stat (h, "c1/ch/bk/vda.qcow2", &size) == 1 && size == sizeof big);

  /* put_begin2's size: more is refused at once, fewer at commit. */
  {
    void *s = p->put_begin2 (h, "c1/ch/bk/short", 10, 0);
    CHECK (s != NULL);
    if (s) {
      CHECK (p->put_write (s, "12345", 5) == 0);
      CHECK (p->put_commit (s) == -1 && last_errno == EINVAL);
    }
    s = p->put_begin2 (h, "c1/ch/bk/long", 4, 0);
    CHECK (s != NULL);
    if (s) {
      CHECK (p->put_write (s, "12345", 5) == -1 && last_errno == EINVAL);
      p->put_abort (s);
    }
    CHECK (p->put_begin2 (h, "c1/x", 4, 1) == NULL && last_errno == EINVAL);
    CHECK (p->stat (h, "c1/ch/bk/short", &size) == 0);
    CHECK (p->stat (h, "c1/ch/bk/long", &size) == 0);
  }
  /* Version 1 put with an unknown size. */
  {
    void *s = p->put_begin (h, "c1/ch/bk/manifest.json");
    CHECK (s != NULL);
    if (s) {
      CHECK (p->put_write (s, "{}\n", 3) == 0);
      CHECK (p->put_write (s, "{}\n", 3) == 0);
      CHECK (p->put_commit (s) == 0);
    }
  }
  /* A stream in progress is not listed; remove_partial deletes it. */
  {
    void *s = p->put_begin2 (h, "c1/ch/bk/vdb.qcow2", 3, 0);
    CHECK (s != NULL);
    if (s)
      CHECK (p->put_write (s, "abc", 3) == 0);
    CHECK (p->list (h, "c1/", collect, &seen) == 0);
    CHECK (seen.n == 2);
    CHECK (listed (&seen, "c1/ch/bk/vda.qcow2"));
    CHECK (listed (&seen, "c1/ch/bk/manifest.json"));
    CHECK (p->stat (h, "c1/ch/bk/vdb.qcow2", &size) == 0);
    /* As if the daemon died: the stream is never committed. */
    CHECK (count_files (argv[3]) == 3);
    CHECK (p->remove_partial (h, "c1/") == 0);
    CHECK (count_files (argv[3]) == 2);
    /* Its file is gone: abort now only frees the stream. */
    if (s)
      p->put_abort (s);
    CHECK (count_files (argv[3]) == 2);
  }

  /* Hostile target: a symbolic link under an object name is never read,
   * and not listed; a link as a directory is not followed for writes.
   */
  snprintf (path, sizeof path, "%s/c1/ch/bk/evil", argv[3]);
  CHECK (symlink ("/etc/passwd", path) == 0);
  CHECK (p->get (h, "c1/ch/bk/evil", back, 10, 0) == -1);
  CHECK (p->stat (h, "c1/ch/bk/evil", &size) == -1);
  snprintf (path, sizeof path, "%s/c2", argv[3]);
  CHECK (symlink ("/tmp", path) == 0);
  CHECK (put (p, h, "c2/x", "abc", 3, 3) == -1);
  CHECK (strstr (last_msg, "symbolic link") != NULL);
  seen.n = 0;
  CHECK (p->list (h, "", collect, &seen) == 0);
  CHECK (seen.n == 2);

  /* Invalid names are refused. */
  CHECK (p->stat (h, "../x", &size) == -1 && last_errno == EINVAL);
  CHECK (p->stat (h, "/x", &size) == -1 && last_errno == EINVAL);
  CHECK (p->put_begin2 (h, "a/./b", 1, 0) == NULL && last_errno == EINVAL);

  /* remove: missing is fine; empty directories go too. */
  CHECK (p->remove (h, "c1/ch/bk/vda.qcow2") == 0);
  CHECK (p->remove (h, "c1/ch/bk/vda.qcow2") == 0);
  CHECK (p->remove (h, "c1/ch/bk/manifest.json") == 0);
  CHECK (p->read_open (h, "c1/ch/bk/vda.qcow2", &size, 0) == NULL &&
         last_errno == ENOENT);
  CHECK (count_files (argv[3]) == 0);

  p->close (h);
  printf ("nfs-plugin-check: %d failures\n", failures);
  return failures ? 1 : 0;
}
