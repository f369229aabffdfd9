/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Producing a restored disk from a point read with ranged reads
 * (point.h): no image of the chain is downloaded; the output is written
 * straight from the verified blocks, each piece where it belongs, in
 * whatever order the reads complete.
 *
 * qcow2 output is laid out first from the point's map (the streaming
 * writer's plan), its metadata written, and every piece then lands at
 * the offset the plan gives its clusters; raw output is a sparse file
 * with each piece at its guest offset.  Pieces start on cluster
 * boundaries, and the buffers they come in are page aligned, so they go
 * to the disk with O_DIRECT where the file system takes it: on these
 * machines writing through the page cache and syncing costs about three
 * times as long.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "restore/point.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/log.h"
#include "util/strutil.h"

#define DIRECT_ALIGN 4096

struct out {
  int fd;
  int direct_fd;                /* the output again with O_DIRECT, or -1 */
  _Atomic bool direct;          /* still writing through direct_fd */
  const char *path;
  bool raw;
  struct vv_qcow2_plan *plan;   /* qcow2: the output's layout */
  uint64_t data_bytes;
};

/* 1 written with O_DIRECT, 0 to be written through the page cache, -1
 * on failure.
 */
static int
write_direct (struct out *o, const void *buf, size_t len, uint64_t off)
{
  int r;

  if (!atomic_load (&o->direct) || (off | len | (uintptr_t) buf) % DIRECT_ALIGN)
    return 0;
  r = vv_restore_pwrite_direct (o->direct_fd, buf, len, off);
  if (r == 0)
    /* The file system will not: buffered from now on.  The descriptor
     * stays open until the end, so no other thread writes to a closed
     * or reused one.
     */
    atomic_store (&o->direct, false);
  else if (r == -1)
    return vv_restore_write_failed (errno, o->path);
  return r;
}

static int
sink (void *opaque, uint64_t guest, const void *buf, size_t len)
{
  struct out *o = opaque;
  uint64_t off = guest;
  int r;

  if (!o->raw && vv_qcow2_plan_data_offset (o->plan, guest, &off) == -1)
    return -1;
  r = write_direct (o, buf, len, off);
  if (r != 0)
    return r == 1 ? 0 : -1;
  return vv_restore_pwrite (o->fd, buf, len, off, o->path);
}

static int
mark_run (void *opaque, uint64_t offset, uint64_t len)
{
  struct out *o = opaque;

  o->data_bytes += len;
  return o->plan ? vv_qcow2_plan_mark (o->plan, offset, len, VV_QCOW2_DATA)
    : 0;
}

int
vv_restore_ranged_produce (struct vv_restore_src *s, struct vv_restore_disk *w)
{
  _cleanup_free_ char *what = NULL;
  _cleanup_close_ int fd = -1;
  struct vv_point *pt = NULL;
  struct out o = { .direct_fd = -1 };
  uint64_t size, bytes, requests;
  int ret = -1;

  if ((fd = vv_restore_create_out (s, w, &what)) == -1)
    return -1;
  o.fd = fd;
  o.path = w->out;
  o.raw = strcmp (w->format, "raw") == 0;

  if (vv_point_open (s->target, &s->chain, w->d, what, &pt) == -1)
    return -1;
  size = vv_point_virtual_size (pt);
  if (!o.raw && (o.plan = vv_qcow2_plan_new (size, NULL, NULL)) == NULL)
    goto out;
  if (vv_point_for_each_run (pt, mark_run, &o) == -1)
    goto out;
  vv_progress_add_total (s->p, o.data_bytes);
  if (!o.raw) {
    struct vv_restore_out_stream m = { .fd = fd, .path = w->out };

    if (vv_qcow2_write_metadata (o.plan, vv_restore_write_stream, &m) == -1)
      goto out;
    size = vv_qcow2_plan_file_size (o.plan);
  }
  /* The holes read as zeros: unallocated space of a raw disk, and the
   * part of a cluster past a smaller backing image.
   */
  if (ftruncate (fd, (off_t) size) == -1) {
    vv_restore_write_failed (errno, w->out);
    goto out;
  }
  o.direct_fd = vv_restore_open_direct (fd);
  atomic_store (&o.direct, o.direct_fd >= 0);
  if (vv_point_copy (pt, sink, &o, s->p) == -1)
    goto out;
  if (fsync (fd) == -1) {
    vv_restore_write_failed (errno, w->out);
    goto out;
  }
  vv_point_read_stats (pt, &bytes, &requests);
  vv_log (VV_LOG_INFO, "%s: %" PRIu64 " bytes of data restored from target '%s' "
         "with %" PRIu64 " bytes read in %" PRIu64 " requests", what,
               o.data_bytes, vv_target_name (s->target), bytes, requests);
  ret = 0;
 out:
  if (o.direct_fd >= 0)
    close (o.direct_fd);
  vv_qcow2_plan_free (o.plan);
  vv_point_close (pt);
  return ret;
}
