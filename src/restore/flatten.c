/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Making one standalone image out of a chain of stored qcow2 images.
 *
 * Our images are plain (64 KiB clusters, no compression, data in guest
 * order), so the merged view of a chain is cheap to compute from the L2
 * tables alone; restores used to run qemu-img convert for it.
 *
 * For every window of guest clusters one L2 table covers, the chain is
 * merged by vv_qcow2_merge_window (src/qcow2/qcow2-merge.c).
 *
 * qcow2 output is laid out by the streaming writer (src/qcow2) in a first
 * pass over the map, then written in a second; raw output is a sparse
 * file with the data at its guest offsets.  Both passes see the same
 * images (opened once, read-only), and the second checks that it found
 * the same data as the first.
 *
 * The data is never copied by the CPU where the kernel allows: the
 * source range is mapped and written with O_DIRECT, so the disk reads it
 * straight from the source's page cache (which the hashing threads of a
 * restore fill anyway).  Copying 1.5 GiB through the page cache cost
 * about as much CPU as all of qemu-img on a 2-vCPU machine.  Where
 * O_DIRECT is refused, copy_file_range copies inside the kernel; across
 * file systems where even that is refused, pread and pwrite.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"

#define CS VV_QCOW2_CLUSTER_SIZE
/* One copy call moves at most this much, so cancel and progress are
 * looked at often enough.
 */
#define SEGMENT_MAX (UINT64_C (32) << 20)
/* Output is pushed to disk while the copy goes on, so the final fsync
 * waits only for the tail.
 */
#define WRITEBACK_EVERY (UINT64_C (64) << 20)

/* What O_DIRECT needs of offsets and lengths on any disk we know. */
#define DIRECT_ALIGN UINT64_C (4096)

struct layer {
  int fd;
};

struct flatten {
  struct layer *layers;
  struct vv_qcow2_layer *chain;  /* the same images, for merging */
  size_t n;
  uint64_t virtual_size;        /* of the top image: the disk's size */
  bool raw;
  int out;
  const char *out_path;
  const char *what;
  struct vv_progress *p;
  void *buf;                    /* VV_RESTORE_BUF_SIZE, for plain copies */
  struct vv_qcow2_merge *merge;
  struct vv_qcow2_source *src;  /* one window */
  bool plain_copy;              /* copy_file_range is not possible */
  int direct;                   /* the output again, O_DIRECT; -1: none */

  /* The copy waiting to be issued: adjacent clusters of one layer. */
  uint32_t seg_layer;
  uint64_t seg_src, seg_dst, seg_len;

  uint64_t data_bytes;          /* to copy, from the first pass */
  uint64_t copied;
  uint64_t weight, reported;
  uint64_t synced;              /* output offset written back so far */
  uint64_t out_end;
};

/* The merged view of window w (guest clusters w * L2_ENTRIES ...). */
static int
merge_window (struct flatten *f, uint64_t w)
{
  size_t k;

  if (vv_qcow2_merge_window (f->merge, f->chain, f->n, f->virtual_size, w,
                             f->src, &k) == -1) {
    vv_error_prefix ("%s, image %zu of the chain: ", f->what, k + 1);
    return -1;
  }
  return 0;
}

static uint64_t
windows (const struct flatten *f)
{
  return vv_qcow2_merge_windows (f->virtual_size);
}

/* Bytes of the guest cluster at goff that the output stores (the last
 * cluster of a disk of unaligned size is cut short).
 */
static uint64_t
stored_len (const struct flatten *f, uint64_t goff)
{
  return f->virtual_size - goff < CS ? f->virtual_size - goff : CS;
}

/* First pass: the data clusters, marked in plan (if any), counted. */
static int
plan_pass (struct flatten *f, struct vv_qcow2_plan *plan)
{
  for (uint64_t w = 0; w < windows (f); w++) {
    uint64_t run_start = 0, run_len = 0;

    if (vv_progress_cancelled (f->p)) {
      vv_error_code (VV_ERR_CANCELLED, "restore of %s was cancelled",
                     f->what);
      return -1;
    }
    if (merge_window (f, w) == -1)
      return -1;
    for (size_t j = 0; j <= VV_QCOW2_L2_ENTRIES; j++) {
      uint64_t goff = w * VV_QCOW2_L2_COVERAGE + j * CS;
      bool data = j < VV_QCOW2_L2_ENTRIES
                  && f->src[j].layer != VV_QCOW2_NO_LAYER;

      if (data) {
        f->data_bytes += f->raw ? f->src[j].valid : stored_len (f, goff);
        if (run_len == 0)
          run_start = goff;
        run_len += CS;
        continue;
      }
      if (run_len > 0 && run_start + run_len > f->virtual_size)
        run_len = f->virtual_size - run_start;
      if (run_len > 0 && plan != NULL
          && vv_qcow2_plan_mark (plan, run_start, run_len,
                                 VV_QCOW2_DATA) == -1)
        return -1;
      run_len = 0;
    }
  }
  return 0;
}

static int
fail_write (struct flatten *f, int err)
{
  return vv_restore_write_failed (err, f->out_path);
}

static int
fail_read (struct flatten *f, uint32_t k, int err)
{
  if (err == 0)
    vv_error ("%s: image %" PRIu32 " of the chain ended early while being "
              "read", f->what, k + 1);
  else
    vv_error_errno (err, "%s: cannot read image %" PRIu32 " of the chain",
                    f->what, k + 1);
  return -1;
}

/* The data written straight from the source's page cache to the disk:
 * no copy by the CPU at all.  Returns 1 when done, 0 when the caller
 * should copy it another way, -1 on error.
 */
static int
copy_direct (struct flatten *f, uint32_t k, uint64_t src, uint64_t dst,
             uint64_t len)
{
  int in = f->layers[k].fd;
  void *m;
  int r, e;

  if (f->direct < 0 || (dst | len | src) & (DIRECT_ALIGN - 1))
    return 0;
  m = mmap (NULL, len, PROT_READ, MAP_SHARED, in, (off_t) src);
  if (m == MAP_FAILED) {
    close (f->direct);
    f->direct = -1;
    return 0;
  }
  /* Start reading what the hashing threads have not reached yet, rather
   * than page by page as the write touches it.
   */
  madvise (m, len, MADV_WILLNEED);
  r = vv_restore_pwrite_direct (f->direct, m, len, dst);
  e = errno;
  munmap (m, len);
  if (r == 0) {
    /* The file system or device will not: never again. */
    close (f->direct);
    f->direct = -1;
  }
  else if (r == -1)
    /* EFAULT: the source shrank under the mapping. */
    return e == EFAULT ? fail_read (f, k, 0) : fail_write (f, e);
  return r;
}

/* Copies len bytes at src of layer k to dst of the output. */
static int
copy_range (struct flatten *f, uint32_t k, uint64_t src, uint64_t dst,
            uint64_t len)
{
  int in = f->layers[k].fd;
  int r = copy_direct (f, k, src, dst, len);

  if (r != 0)
    return r;

  while (len > 0 && !f->plain_copy) {
    loff_t ioff = (loff_t) src, ooff = (loff_t) dst;
    ssize_t n = copy_file_range (in, &ioff, f->out, &ooff, len, 0);

    if (n > 0) {
      src += n;
      dst += n;
      len -= n;
      continue;
    }
    if (n == 0)
      return fail_read (f, k, 0);
    if (errno == EINTR)
      continue;
    /* Different file systems, or one that cannot: copy through memory. */
    if (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP
        || errno == ENOSYS || errno == ETXTBSY || errno == EBADF)
      f->plain_copy = true;
    else if (errno == EIO)
      return fail_read (f, k, errno);
    else
      return fail_write (f, errno);
  }
  while (len > 0) {
    size_t want = len < VV_RESTORE_BUF_SIZE ? len : VV_RESTORE_BUF_SIZE;
    ssize_t n = pread (in, f->buf, want, src);

    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0)
      return fail_read (f, k, n == 0 ? 0 : errno);
    if (vv_restore_pwrite (f->out, f->buf, n, dst, f->out_path) == -1)
      return -1;
    src += n;
    dst += n;
    len -= n;
  }
  return 0;
}

static void
report_progress (struct flatten *f)
{
  uint64_t now = f->data_bytes == 0 ? f->weight
    : (uint64_t) ((double) f->copied / f->data_bytes * f->weight);

  if (now > f->weight)
    now = f->weight;
  if (now > f->reported) {
    vv_progress_add (f->p, now - f->reported);
    f->reported = now;
  }
}

/* Issues the pending copy. */
static int
flush_segment (struct flatten *f)
{
  if (f->seg_len == 0)
    return 0;
  if (copy_range (f, f->seg_layer, f->seg_src, f->seg_dst, f->seg_len) == -1)
    return -1;
  f->copied += f->seg_len;
  f->seg_len = 0;
  report_progress (f);
  if (f->out_end - f->synced >= WRITEBACK_EVERY) {
    /* Only a hint to start writing; the final fsync is what counts. */
    sync_file_range (f->out, f->synced, f->out_end - f->synced,
                     SYNC_FILE_RANGE_WRITE);
    f->synced = f->out_end;
  }
  if (vv_progress_cancelled (f->p)) {
    vv_error_code (VV_ERR_CANCELLED, "restore of %s was cancelled", f->what);
    return -1;
  }
  return 0;
}

static int
add_copy (struct flatten *f, uint32_t k, uint64_t src, uint64_t dst,
          uint64_t len)
{
  if (f->seg_len > 0 && f->seg_layer == k
      && f->seg_src + f->seg_len == src && f->seg_dst + f->seg_len == dst
      && f->seg_len < SEGMENT_MAX) {
    f->seg_len += len;
  }
  else {
    if (flush_segment (f) == -1)
      return -1;
    f->seg_layer = k;
    f->seg_src = src;
    f->seg_dst = dst;
    f->seg_len = len;
  }
  if (dst + len > f->out_end)
    f->out_end = dst + len;
  return 0;
}

/* Second pass: the data, at data_start (qcow2: one cluster after the
 * other in guest order) or at its guest offset (raw).
 */
static int
copy_pass (struct flatten *f, uint64_t data_start, uint64_t *ret_end)
{
  _cleanup_free_ uint8_t *zeros = NULL;
  uint64_t dst = data_start, found = 0;

  for (uint64_t w = 0; w < windows (f); w++) {
    if (merge_window (f, w) == -1)
      return -1;
    for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
      const struct vv_qcow2_source *s = &f->src[j];
      uint64_t goff = w * VV_QCOW2_L2_COVERAGE + j * CS;
      uint64_t len;

      if (s->layer == VV_QCOW2_NO_LAYER)
        continue;
      if (f->raw)
        dst = goff;
      len = stored_len (f, goff);
      if (s->valid > 0 && add_copy (f, s->layer, s->host, dst, s->valid) == -1)
        return -1;
      /* The part of the cluster past a smaller backing image reads as
       * zeros; a sparse raw file already does.
       */
      if (!f->raw && s->valid < len) {
        if (flush_segment (f) == -1)
          return -1;
        if (zeros == NULL && (zeros = calloc (1, CS)) == NULL) {
          vv_error_errno (ENOMEM, "restoring %s", f->what);
          return -1;
        }
        if (vv_restore_pwrite (f->out, zeros, len - s->valid, dst + s->valid,
                               f->out_path) == -1)
          return -1;
      }
      found += f->raw ? s->valid : len;
      if (!f->raw)
        dst += len;
    }
  }
  if (flush_segment (f) == -1)
    return -1;
  if (found != f->data_bytes) {
    vv_error ("%s: the stored images changed while being restored (%"
              PRIu64 " bytes of data, then %" PRIu64 ")", f->what,
              f->data_bytes, found);
    return -1;
  }
  *ret_end = dst;
  return 0;
}

static int
flatten_qcow2 (struct flatten *f)
{
  struct vv_qcow2_plan *plan;
  struct vv_restore_out_stream o = { .fd = f->out, .path = f->out_path };
  int r = -1;

  plan = vv_qcow2_plan_new (f->virtual_size, NULL, NULL);
  if (plan == NULL)
    return -1;
  if (plan_pass (f, plan) == -1)
    goto out;
  if (vv_qcow2_write_metadata (plan, vv_restore_write_stream, &o) == -1
      || copy_pass (f, o.off, &o.off) == -1
      || vv_qcow2_write_finish (plan, vv_restore_write_stream, &o) == -1)
    goto out;
  if (o.off != vv_qcow2_plan_file_size (plan)) {
    vv_error ("%s: the restored image is %" PRIu64 " bytes, its layout "
              "says %" PRIu64, f->what, o.off,
              vv_qcow2_plan_file_size (plan));
    goto out;
  }
  r = 0;
 out:
  vv_qcow2_plan_free (plan);
  return r;
}

static int
flatten_raw (struct flatten *f)
{
  uint64_t end;

  if (ftruncate (f->out, (off_t) f->virtual_size) == -1)
    return fail_write (f, errno);
  if (plan_pass (f, NULL) == -1 || copy_pass (f, 0, &end) == -1)
    return -1;
  return 0;
}

int
vv_restore_flatten (const struct vv_restore_image *v, size_t n,
                    const char *format, int out_fd, const char *out_path,
                    const char *what, uint64_t weight,
                    struct vv_progress *p, void *buf)
{
  struct flatten f = {
    .n = n, .raw = strcmp (format, "raw") == 0, .out = out_fd,
    .out_path = out_path, .what = what, .p = p, .buf = buf,
    .weight = weight,
  };
  int r = -1;

  f.direct = vv_restore_open_direct (out_fd);
  f.layers = calloc (n, sizeof *f.layers);
  f.chain = calloc (n, sizeof *f.chain);
  f.merge = vv_qcow2_merge_new ();
  f.src = malloc (VV_QCOW2_L2_ENTRIES * sizeof *f.src);
  if (f.layers == NULL || f.chain == NULL || f.merge == NULL
      || f.src == NULL) {
    vv_error_errno (ENOMEM, "restoring %s", what);
    goto out;
  }
  for (size_t k = 0; k < n; k++) {
    struct layer *l = &f.layers[k];
    struct vv_qcow2_layer *c = &f.chain[k];
    struct stat st;

    l->fd = v[k].fd;
    if (fstat (l->fd, &st) == -1) {
      vv_error_errno (errno, "%s: image %zu of the chain", what, k + 1);
      goto out;
    }
    /* The header is read again here, and an image read where it is
     * stored can have been rewritten since it was checked: its sizes
     * must still be the catalog's, so that neither the output's size nor
     * what is read is taken from the target.
     */
    if ((uint64_t) st.st_size != v[k].d->stored_bytes) {
      vv_error ("%s, image %zu of the chain (%s of backup %s): it is now %"
                PRIu64 " bytes, the catalog says %" PRIu64 "; it changed "
                "on the target during the restore", what, k + 1,
                vv_restore_object_base (v[k].d->object), v[k].backup_id,
                (uint64_t) st.st_size, v[k].d->stored_bytes);
      goto out;
    }
    if (vv_qcow2_reader_open (vv_restore_pread_fd, &l->fd,
                              v[k].d->stored_bytes, &c->r) == -1) {
      vv_error_prefix ("%s, image %zu of the chain: ", what, k + 1);
      goto out;
    }
    c->virtual_size = vv_qcow2_reader_virtual_size (c->r);
    if (c->virtual_size != v[k].d->virtual_size) {
      vv_error ("%s, image %zu of the chain (%s of backup %s): its header "
                "now gives a virtual size of %" PRIu64 " bytes, the catalog "
                "says %" PRIu64 "; it changed on the target during the "
                "restore", what, k + 1,
                vv_restore_object_base (v[k].d->object), v[k].backup_id,
                c->virtual_size, v[k].d->virtual_size);
      goto out;
    }
  }
  f.virtual_size = f.chain[0].virtual_size;
  r = f.raw ? flatten_raw (&f) : flatten_qcow2 (&f);
  if (r == 0 && f.reported < weight)
    vv_progress_add (p, weight - f.reported);

 out:
  for (size_t k = 0; f.chain && k < n; k++)
    vv_qcow2_reader_free (f.chain[k].r);
  if (f.direct >= 0)
    close (f.direct);
  free (f.layers);
  free (f.chain);
  vv_qcow2_merge_free (f.merge);
  free (f.src);
  return r;
}
