/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Making one standalone file per disk out of a backup's chain.
 *
 * Every image of the chain of a disk is downloaded (its sha256 checked
 * while it streams) into a private staging directory, laid out as on the
 * target so relative backing file names resolve.  A full kept as qcow2
 * is the result as it is; anything else is flattened (flatten.c).  On a
 * target with local files the images are read where they are instead
 * (local.c); only the result is written to staging.
 * Shared by every restore mode: where the result goes is theirs.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2/qcow2.h"
#include "restore/point.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

int
vv_restore_src_open (struct vv_engine *e, struct vv_backup_rec *top,
                     int64_t owner_filter, struct vv_progress *p,
                     struct vv_restore_src *ret)
{
  struct vv_restore_src s = { .p = p };

  if (vv_restore_chain_load (e, top, owner_filter, &s.chain) == -1)
    return -1;
  if ((s.target = vv_restore_open_target (e, s.chain.v[0]->target)) == NULL) {
    vv_error_prefix ("restoring backup %s: ", s.chain.v[0]->id);
    vv_restore_src_close (&s);
    return -1;
  }
  if ((s.buf = malloc (VV_RESTORE_FETCH_BUF)) == NULL) {
    vv_error_errno (ENOMEM, "restoring backup %s", s.chain.v[0]->id);
    vv_restore_src_close (&s);
    return -1;
  }
  *ret = s;
  return 0;
}

void
vv_restore_src_close (struct vv_restore_src *s)
{
  free (s->buf);
  s->buf = NULL;
  vv_target_close (s->target);
  s->target = NULL;
  vv_restore_chain_clear (&s->chain);
}

int
vv_restore_cancelled (struct vv_restore_src *s)
{
  if (vv_progress_cancelled (s->p)) {
    vv_error_code (VV_ERR_CANCELLED, "restore of backup %s was cancelled",
                   s->chain.v[0]->id);
    return -1;
  }
  return 0;
}

void
vv_restore_disk_clear (struct vv_restore_disk *w)
{
  for (size_t i = 0; w->imgs && i < w->chain_len; i++)
    vv_restore_image_clear (&w->imgs[i]);
  free (w->imgs);
  free (w->top);
  free (w->out);
  w->imgs = NULL;
  w->top = w->out = NULL;
}

/* A sane object name and format, and not seen before in this chain. */
static int
check_image (struct vv_restore_src *s, size_t idx,
                        const struct vv_disk_rec *d)
{
  const char *bid = s->chain.v[idx]->id;

  if (vv_restore_check_object (bid, d->object) == -1)
    return -1;
  if (d->format && strcmp (d->format, "qcow2") != 0) {
    vv_error ("%s of backup %s is stored as '%s'; only qcow2 images can be "
              "restored", vv_restore_object_base (d->object), bid, d->format);
    return -1;
  }
  return 0;
}

/* Downloads one image into staging and returns what its header says. */
static int
fetch_image (struct vv_restore_src *s, const char *staging, size_t idx,
             const struct vv_disk_rec *d, bool sync, char **ret_path,
             int *ret_fd, struct vv_qcow2_info *ret_info)
{
  const char *bid = s->chain.v[idx]->id;
  _cleanup_free_ char *path = NULL, *parent = NULL;
  _cleanup_close_ int fd = -1;
  struct stat st;

  if (check_image (s, idx, d) == -1)
    return -1;
  path = vv_printf ("%s/%s", staging, d->object);
  if (path == NULL || (parent = vv_restore_parent_of (path)) == NULL ||
      vv_mkdir_p (parent, 0700) == -1)
    return -1;
  fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd == -1) {
    if (errno == EEXIST)
      vv_error ("the chain of backup %s uses %s twice; the catalog is "
                "damaged", s->chain.v[0]->id, d->object);
    else
      vv_error_errno (errno, "cannot create %s", path);
    return -1;
  }
  if (vv_restore_fetch (s->target, bid, d, fd, path, s->buf, s->p) == -1)
    return -1;
  if (fstat (fd, &st) == -1) {
    vv_error_errno (errno, "cannot stat %s", path);
    return -1;
  }
  /* The sha256 matched, so this is what the engine wrote; the check is
   * what tells us which image is its backing file.
   */
  if (vv_qcow2_check (vv_restore_pread_fd, &fd, st.st_size,
                      ret_info) == -1) {
    vv_error_prefix ("%s of backup %s is not a valid qcow2 image: ",
                     vv_restore_object_base (d->object), bid);
    return -1;
  }
  if (sync && ret_info->backing_file == NULL && fsync (fd) == -1) {
    vv_restore_write_failed (errno, path);
    vv_qcow2_info_clear (ret_info);
    return -1;
  }
  *ret_path = TAKE_PTR (path);
  *ret_fd = TAKE_FD (fd);
  return 0;
}

/* Whether produce counted this image in the progress total up front. */
static bool
in_estimate (const struct vv_restore_disk *w, size_t idx,
             const struct vv_disk_rec *d)
{
  return idx < w->est_len && strcmp (d->name, w->d->name) == 0;
}

/* Downloads the backing chain of one disk, top first. */
static int
fetch_disk (struct vv_restore_src *s, struct vv_restore_disk *w)
{
  const struct vv_disk_rec *d = w->d;
  size_t idx = 0;

  for (;;) {
    struct vv_qcow2_info info = { 0 };
    _cleanup_free_ char *path = NULL;
    const struct vv_disk_rec *nd;
    size_t nidx;
    bool sync = idx == 0 && strcmp (w->format, "qcow2") == 0;

    if (vv_restore_cancelled (s) == -1)
      return -1;
    for (size_t k = 0; k < w->chain_len; k++)
      if (strcmp (w->imgs[k].d->object, d->object) == 0) {
        vv_error ("the chain of backup %s uses %s twice; the catalog is "
                  "damaged", s->chain.v[0]->id, d->object);
        return -1;
      }
    if (w->chain_len == VV_RESTORE_OPEN_MAX) {
      vv_error ("the chain of disk %s of backup %s is longer than %d "
                "images, more than a restore opens at once; restore an "
                "earlier backup of the chain",
                w->d->name, s->chain.v[0]->id, VV_RESTORE_OPEN_MAX);
      return -1;
    }
    if (w->local) {
      if (check_image (s, idx, d) == -1 ||
          vv_restore_local_open (s, idx, d, &w->imgs[w->chain_len],
                                 &info) == -1)
        return -1;
    }
    else {
      struct vv_restore_image *img = &w->imgs[w->chain_len];

      if (fetch_image (s, w->staging, idx, d, sync, &path, &img->fd,
                       &info) == -1)
        return -1;
      img->d = d;
      img->backup_id = s->chain.v[idx]->id;
    }
    w->chain_len++;
    w->chain_bytes += d->stored_bytes;
    if (in_estimate (w, idx, d))
      w->est_fetched += d->stored_bytes;
    if (idx == 0) {
      w->top = TAKE_PTR (path);
      if (info.virtual_size != d->virtual_size) {
        vv_error ("%s of backup %s has a virtual size of %" PRIu64
                  " bytes, but the catalog says %" PRIu64,
                  vv_restore_object_base (d->object), s->chain.v[0]->id,
                  info.virtual_size, d->virtual_size);
        vv_qcow2_info_clear (&info);
        return -1;
      }
    }
    if (vv_restore_chain_backing (&s->chain, idx, d,
                                  vv_target_name (s->target),
                                  info.backing_file, &nd, &nidx) == -1) {
      vv_qcow2_info_clear (&info);
      return -1;
    }
    if (nd == NULL) {
      /* The progress total counted the images along parent_id; a chain
       * that ends sooner leaves some of them unread.
       */
      vv_qcow2_info_clear (&info);
      if (w->est_fetched < w->est_bytes)
        vv_progress_add (s->p, w->est_bytes - w->est_fetched);
      return 0;
    }
    if (info.backing_format && strcmp (info.backing_format, "qcow2") != 0) {
      vv_error ("%s of backup %s names a backing file of format '%s'; "
                "images on a target are all qcow2",
                vv_restore_object_base (d->object), s->chain.v[idx]->id,
                info.backing_format);
      vv_qcow2_info_clear (&info);
      return -1;
    }
    vv_qcow2_info_clear (&info);
    if (!in_estimate (w, nidx, nd))
      vv_progress_add_total (s->p, nd->stored_bytes);
    d = nd;
    idx = nidx;
  }
}

int
vv_restore_create_out (struct vv_restore_src *s, struct vv_restore_disk *w,
                       char **ret_what)
{
  _cleanup_free_ char *what = NULL;
  int fd;

  w->out = vv_printf ("%s/%s.%s", w->staging, w->d->name, w->format);
  what = vv_printf ("%s of backup %s", vv_restore_object_base (w->d->object),
                    s->chain.v[0]->id);
  if (w->out == NULL || what == NULL)
    return -1;
  fd = open (w->out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
             0600);
  if (fd == -1) {
    vv_error_errno (errno, "cannot create %s", w->out);
    return -1;
  }
  *ret_what = TAKE_PTR (what);
  return fd;
}

/* Makes w->out: the top image itself for a full kept as qcow2, else the
 * chain flattened.
 */
static int
produce_disk (struct vv_restore_src *s, struct vv_restore_disk *w)
{
  bool flatten = w->local || strcmp (w->format, "raw") == 0 ||
                 w->chain_len > 1;
  _cleanup_free_ char *what = NULL;
  _cleanup_close_ int fd = -1;

  if (!flatten) {
    vv_progress_add (s->p, w->flatten_total);
    w->out = TAKE_PTR (w->top);
    return 0;
  }
  if (w->chain_bytes > w->flatten_total) {
    vv_progress_add_total (s->p, w->chain_bytes - w->flatten_total);
    w->flatten_total = w->chain_bytes;
  }

  if ((fd = vv_restore_create_out (s, w, &what)) == -1)
    return -1;
  if (w->local) {
    if (vv_restore_local_flatten (s, w, fd, what) == -1)
      return -1;
  }
  else if (vv_restore_flatten (w->imgs, w->chain_len, w->format, fd, w->out,
                               what, w->flatten_total, s->p, s->buf) == -1)
    return -1;
  if (fsync (fd) == -1)
    return vv_restore_write_failed (errno, w->out);
  return 0;
}

int
vv_restore_produce (struct vv_restore_src *s, struct vv_restore_disk *w,
                    size_t n)
{
  /* Up front: every image along parent_id (the usual chain), and the
   * flattening those chains will need.
   */
  for (size_t i = 0; i < n; i++) {
    bool flatten;

    for (size_t k = 0; k < s->chain.n; k++) {
      const struct vv_backup_rec *a = s->chain.v[k];
      size_t j;
      for (j = 0; j < a->n_disks; j++)
        if (strcmp (a->disks[j].name, w[i].d->name) == 0)
          break;
      if (j == a->n_disks)
        break;
      w[i].est_len++;
      w[i].est_bytes += a->disks[j].stored_bytes;
    }
    flatten = strcmp (w[i].format, "raw") == 0 || w[i].est_len > 1;
    /* A chain whose images have block digests is read as a point, only
     * the blocks it needs, each checked: always on a remote target, and
     * on one with local files for a full kept as qcow2, which would
     * otherwise be copied through the page cache (the flattening of
     * local files, local.c, is quicker for the rest).
     */
    if (!vv_target_has_local (s->target) || !flatten) {
      int r = vv_point_usable (&s->chain, w[i].d,
                               vv_target_name (s->target));
      if (r == -1)
        return -1;
      if ((w[i].ranged = r == 1))
        continue;
    }
    vv_progress_add_total (s->p, w[i].est_bytes);
    if (flatten) {
      w[i].flatten_total = w[i].est_bytes;
      vv_progress_add_total (s->p, w[i].flatten_total);
      /* Flattening can read the images where they are.  A full kept as
       * qcow2 is copied either way, and the download is that copy.
       */
      w[i].local = vv_target_has_local (s->target);
    }
    w[i].imgs = calloc (s->chain.n < VV_RESTORE_OPEN_MAX
                        ? s->chain.n : VV_RESTORE_OPEN_MAX,
                        sizeof *w[i].imgs);
    if (w[i].imgs == NULL) {
      vv_error_errno (ENOMEM, "restoring backup %s", s->chain.v[0]->id);
      return -1;
    }
    for (size_t k = 0; k < s->chain.n && k < VV_RESTORE_OPEN_MAX; k++)
      w[i].imgs[k].fd = -1;
  }

  for (size_t i = 0; i < n; i++)
    if (!w[i].ranged && fetch_disk (s, &w[i]) == -1)
      return -1;
  for (size_t i = 0; i < n; i++)
    if (vv_restore_cancelled (s) == -1
        || (w[i].ranged ? vv_restore_ranged_produce (s, &w[i])
                        : produce_disk (s, &w[i])) == -1)
      return -1;
  return vv_restore_cancelled (s);
}
