/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restoring a chain where it is stored, on a target whose objects are
 * local files (the file plugin's open_local).
 *
 * Downloading every image into staging before it is read again costs a
 * restore about twice the I/O of the flattening alone.  Here the stored
 * images themselves are read, through descriptors the plugin opened
 * without following links, so exactly the files that are hashed are
 * flattened: no path is looked up twice, and no backing file name from a
 * header is opened.  While the chain is flattened, threads hash every
 * image (the page cache serves both); the output stays in staging, and
 * the caller publishes it only when vv_restore_local_flatten succeeded,
 * which it does only when every sha256 matched the catalog.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/sha256.h"
#include "util/strutil.h"

/* The full dominates a chain's bytes, so a second thread mostly hashes
 * the incrementals next to it; more would only compete with the copy.
 */
#define HASH_THREADS 2

/* Hashes l's whole file.  Returns 0 with l->error set when the image is
 * refused, -1 when it could not be read (l->error says why), and sets
 * l->cancelled when p is cancelled.
 */
static int
hash_image (struct vv_restore_image *l, const char *target, void *buf,
            struct vv_progress *p)
{
  const char *base = vv_restore_object_base (l->d->object);
  struct vv_sha256 *h;
  char sha[VV_SHA256_HEX];
  uint64_t off = 0, size = l->d->stored_bytes;

  if ((h = vv_sha256_new ()) == NULL) {
    l->error = vv_printf ("hashing %s of backup %s: %s", base, l->backup_id,
                          vv_get_error ());
    return -1;
  }
  posix_fadvise (l->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  while (off < size) {
    size_t want = size - off < VV_RESTORE_BUF_SIZE
                  ? (size_t) (size - off) : VV_RESTORE_BUF_SIZE;
    ssize_t n;

    if (vv_progress_cancelled (p)) {
      l->cancelled = true;
      vv_sha256_free (h);
      return -1;
    }
    n = pread (l->fd, buf, want, off);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0) {
      l->error = n == 0
        ? vv_printf ("%s of backup %s on target '%s' ended at byte %" PRIu64
                     " while being read; it should be %" PRIu64 " bytes",
                     base, l->backup_id, target, off, size)
        : vv_printf ("cannot read %s of backup %s on target '%s': %s",
                     base, l->backup_id, target, strerror (errno));
      vv_sha256_free (h);
      return -1;
    }
    vv_sha256_update (h, buf, n);
    off += n;
    vv_progress_add (p, n);
  }
  vv_sha256_final (h, sha);
  vv_sha256_free (h);
  if (l->d->sha256 == NULL || strcasecmp (sha, l->d->sha256) != 0)
    l->error = vv_printf ("%s of backup %s is corrupt on target '%s': sha256 "
                          "is %s, expected %s", base, l->backup_id, target,
                          sha, l->d->sha256 ? l->d->sha256
                                            : "(none recorded)");
  return 0;
}

/* Reports l's error, if it has one; true if it had. */
static bool
report (const struct vv_restore_image *l)
{
  if (l->error == NULL)
    return false;
  vv_error ("%s", l->error);
  return true;
}

int
vv_restore_local_open (struct vv_restore_src *s, size_t idx,
                       const struct vv_disk_rec *d,
                       struct vv_restore_image *ret,
                       struct vv_qcow2_info *ret_info)
{
  struct vv_restore_image l = { .fd = -1, .d = d,
                                .backup_id = s->chain.v[idx]->id };
  const char *base = vv_restore_object_base (d->object);
  const char *tname = vv_target_name (s->target);
  struct stat st;

  l.fd = vv_target_open_local (s->target, d->object);
  if (l.fd == -1) {
    vv_error_prefix ("%s of backup %s on target '%s': ", base, l.backup_id,
                     tname);
    return -1;
  }
  if (fstat (l.fd, &st) == -1) {
    vv_error_errno (errno, "cannot stat %s of backup %s on target '%s'",
                    base, l.backup_id, tname);
    goto fail;
  }
  if ((uint64_t) st.st_size != d->stored_bytes) {
    vv_error ("%s of backup %s is corrupt on target '%s': it is %" PRIu64
              " bytes, expected %" PRIu64, base, l.backup_id, tname,
              (uint64_t) st.st_size, d->stored_bytes);
    goto fail;
  }
  if (vv_qcow2_check (vv_restore_pread_fd, &l.fd, st.st_size,
                      ret_info) == -1) {
    struct vv_saved_error saved;
    void *buf = s->buf;

    /* A damaged image is reported as such, as the download would. */
    vv_restore_save_error (&saved);
    if (hash_image (&l, tname, buf, s->p) == 0 && report (&l)) {
      free (saved.message);
      goto fail;
    }
    vv_restore_restore_error (&saved);
    vv_error_prefix ("%s of backup %s is not a valid qcow2 image: ", base,
                     l.backup_id);
    goto fail;
  }
  *ret = l;
  return 0;

 fail:
  vv_restore_image_clear (&l);
  return -1;
}

void
vv_restore_image_clear (struct vv_restore_image *l)
{
  if (l->fd >= 0)
    close (l->fd);
  l->fd = -1;
  free (l->error);
  l->error = NULL;
}

struct hash_pool {
  struct vv_restore_image *v;
  size_t n;
  atomic_size_t next;
  const char *target;
  struct vv_progress *p;
};

static void *
hash_run (void *opaque)
{
  struct hash_pool *hp = opaque;
  void *buf = malloc (VV_RESTORE_BUF_SIZE);

  for (;;) {
    size_t i = atomic_fetch_add (&hp->next, 1);
    if (i >= hp->n)
      break;
    if (buf == NULL)
      hp->v[i].error = vv_printf ("hashing %s of backup %s: out of memory",
                                  vv_restore_object_base (hp->v[i].d->object),
                                  hp->v[i].backup_id);
    else
      hash_image (&hp->v[i], hp->target, buf, hp->p);
  }
  free (buf);
  return NULL;
}

int
vv_restore_local_flatten (struct vv_restore_src *s, struct vv_restore_disk *w,
                          int out_fd, const char *what)
{
  struct hash_pool hp = { .v = w->imgs, .n = w->chain_len,
                          .target = vv_target_name (s->target), .p = s->p };
  pthread_t th[HASH_THREADS];
  struct vv_saved_error saved = { VV_ERR_NONE, NULL };
  size_t started = 0;
  bool cancelled = false;
  int r;

  atomic_init (&hp.next, 0);
  for (; started < HASH_THREADS && started < hp.n; started++) {
    int e = pthread_create (&th[started], NULL, hash_run, &hp);
    if (e != 0) {
      if (started > 0)
        break;
      vv_error_errno (e, "cannot start a thread to hash %s", what);
      return -1;
    }
  }

  r = vv_restore_flatten (w->imgs, w->chain_len, w->format, out_fd, w->out,
                          what, w->flatten_total, s->p, s->buf);
  if (r == -1)
    vv_restore_save_error (&saved);
  for (size_t i = 0; i < started; i++)
    pthread_join (th[i], NULL);

  /* A corrupt image explains whatever the flattening said about it. */
  for (size_t i = 0; i < hp.n; i++) {
    if (report (&w->imgs[i])) {
      free (saved.message);
      return -1;
    }
    cancelled |= w->imgs[i].cancelled;
  }
  if (r == -1) {
    vv_restore_restore_error (&saved);
    return -1;
  }
  if (cancelled)
    return vv_restore_cancelled (s);
  return 0;
}
