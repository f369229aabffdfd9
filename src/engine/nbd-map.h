/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Mapping the export of an incremental pull-mode backup: which clusters
 * of the overlay image hold data, which read as zeros and which are left
 * to the backing file.  The result is a plan vv_nbd_copy copies like any
 * other.
 */
#ifndef VV_ENGINE_NBD_MAP_H
#define VV_ENGINE_NBD_MAP_H

#include <stdint.h>

#include "engine/nbd-reader.h"
#include "qcow2/qcow2.h"

/* A plan for a qcow2 overlay of backing_file (format qcow2) holding what
 * changed since the checkpoint whose bitmap the export offers as the meta
 * context "qemu:dirty-bitmap:<bitmap>": DATA where dirty and not known
 * to read as zeros, ZERO where dirty and reading as zeros (whole
 * clusters only), unallocated everywhere else.  ret_dirty (may be NULL)
 * gets the number of dirty bytes the bitmap reported.
 */
int vv_nbd_map_dirty (const struct vv_nbd_export *x, const char *bitmap,
                      const char *backing_file,
                      struct vv_qcow2_plan **ret_plan, uint64_t *ret_dirty);

/* Pure part, exposed for the unit test: marks plan from sorted,
 * non-overlapping extents of the dirty bitmap (only dirty ones given)
 * and of allocation (zero = reads as zeros; ranges not listed are
 * treated as data).  size is the disk's size.
 */
struct vv_extent {
  uint64_t offset;
  uint64_t length;
  uint32_t flags;
};
int vv_nbd_plan_dirty (struct vv_qcow2_plan *plan, uint64_t size,
                       const struct vv_extent *dirty, size_t n_dirty,
                       const struct vv_extent *zero, size_t n_zero);

#endif
