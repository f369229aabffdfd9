/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The merged view of a chain of images, one L2 table's window at a time.
 *
 * For every guest cluster of the window the images are looked at top
 * first; the first that holds data for it, or marks it as reading zeros,
 * decides it.  A backing image smaller than the image above it reads as
 * zeros past its end, as QEMU reads it.  Every reader of a stored point
 * (restore from local files, ranged reads from any target) sees the
 * chain through this one function, so they agree on what a point holds.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "qcow2/qcow2.h"
#include "util/error.h"

#define CS VV_QCOW2_CLUSTER_SIZE

struct vv_qcow2_merge {
  uint64_t map[VV_QCOW2_L2_ENTRIES];
  uint64_t lim[VV_QCOW2_L2_ENTRIES];    /* bytes still undecided, 0 once
                                           decided */
};

struct vv_qcow2_merge *
vv_qcow2_merge_new (void)
{
  struct vv_qcow2_merge *m = malloc (sizeof *m);

  if (m == NULL)
    vv_error_errno (ENOMEM, "merging a chain of images");
  return m;
}

void
vv_qcow2_merge_free (struct vv_qcow2_merge *m)
{
  free (m);
}

uint64_t
vv_qcow2_merge_windows (uint64_t virtual_size)
{
  return virtual_size / VV_QCOW2_L2_COVERAGE
    + (virtual_size % VV_QCOW2_L2_COVERAGE != 0);
}

int
vv_qcow2_merge_window (struct vv_qcow2_merge *m,
                       const struct vv_qcow2_layer *layers, size_t n,
                       uint64_t virtual_size, uint64_t w,
                       struct vv_qcow2_source *src, size_t *ret_layer)
{
  uint64_t base = w * VV_QCOW2_L2_COVERAGE;
  uint64_t *lim = m->lim;
  size_t pending = 0;

  for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
    uint64_t goff = base + j * CS;

    src[j].layer = VV_QCOW2_NO_LAYER;
    src[j].valid = 0;
    src[j].host = 0;
    if (goff < virtual_size) {
      lim[j] = virtual_size - goff < CS ? virtual_size - goff : CS;
      pending++;
    }
    else
      lim[j] = 0;
  }

  for (size_t k = 0; k < n && pending > 0; k++) {
    const struct vv_qcow2_layer *l = &layers[k];
    int r = vv_qcow2_reader_map (l->r, w, m->map);

    if (r == -1) {
      *ret_layer = k;
      return -1;
    }
    /* Nothing here, and the image covers the whole window: nothing
     * decided (sparse disks of many TiB are mostly this).
     */
    if (r == 0 && l->virtual_size >= base + VV_QCOW2_L2_COVERAGE)
      continue;
    for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
      uint64_t goff = base + j * CS, e;

      if (lim[j] == 0)
        continue;
      /* Past the end of this image: zeros, whatever lies below. */
      if (goff >= l->virtual_size) {
        lim[j] = 0;
        pending--;
        continue;
      }
      if (l->virtual_size - goff < lim[j])
        lim[j] = l->virtual_size - goff;
      e = m->map[j];
      if (e == VV_QCOW2_MAP_UNALLOCATED)
        continue;
      if (e != VV_QCOW2_MAP_ZERO) {
        src[j].layer = (uint32_t) k;
        src[j].valid = (uint32_t) lim[j];
        src[j].host = e;
      }
      lim[j] = 0;
      pending--;
    }
  }
  return 0;
}
