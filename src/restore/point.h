/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One disk of a stored backup point, read through the target plugin's
 * ranged reads: the read path of restores from remote targets (and of
 * later readers: exports, file restore).
 *
 * Opening reads, for each image of the disk's chain, its sidecar of block
 * digests (checked against the sha256 the catalog recorded) and its qcow2
 * metadata (all of it sits in the image's first metadata_bytes, read in
 * one request and checked block by block); the chain is then merged into
 * one map of the point.  Copying reads only the clusters the point needs,
 * adjacent ones in one request, several requests at once, every block
 * checked against its digest before any byte of it is handed on.
 *
 * Nothing read from the target is trusted beyond what the catalog
 * confirms: object sizes, virtual sizes, backing names and digests are
 * the catalog's, the target only has to match them.
 */
#ifndef VV_RESTORE_POINT_H
#define VV_RESTORE_POINT_H

#include <stddef.h>
#include <stdint.h>

#include "restore/restore-internal.h"

struct vv_point;

/* Whether disk d of the point c->v[0] can be read this way: every image
 * of its chain (followed through the catalog's backing names) has block
 * digests and metadata_bytes recorded.  1 yes, 0 no (older backups:
 * restore downloads their images whole), -1 when the catalog's chain is
 * damaged (with an error).
 */
int vv_point_usable (const struct vv_restore_chain *c,
                     const struct vv_disk_rec *d, const char *target);

/* Opens disk d of the point c->v[0] on t; what names it in errors ("vda
 * of backup bk-..."). c and t must outlive the point.
 */
int vv_point_open (struct vv_target *t, const struct vv_restore_chain *c,
                   const struct vv_disk_rec *d, const char *what,
                   struct vv_point **ret);
void vv_point_close (struct vv_point *pt);

uint64_t vv_point_virtual_size (const struct vv_point *pt);

/* Calls fn for every run of guest bytes that hold data at this point, in
 * guest order (clusters that read as zeros are not data).
 */
int vv_point_for_each_run (struct vv_point *pt,
                           int (*fn) (void *opaque, uint64_t offset,
                                      uint64_t len),
                           void *opaque);

/* Hands every byte of data of the point to sink, exactly once, as
 * pieces (guest offset, bytes, length), from several threads at once and
 * in no particular order.  Pieces start on a cluster boundary and hold
 * whole clusters, except at the end of a disk of unaligned size.  The
 * bytes are only valid during the call.  Adds the bytes handed on to p
 * and fails with VV_ERR_CANCELLED once p is cancelled.
 */
typedef int (*vv_point_sink) (void *opaque, uint64_t offset,
                              const void *buf, size_t len);
int vv_point_copy (struct vv_point *pt, vv_point_sink sink, void *opaque,
                   struct vv_progress *p);

/* Reads count bytes of the disk at offset (any offset and length inside
 * the disk): data from the images, every block checked, zeros elsewhere.
 * Several threads may read at once.  Blocks read are kept (8 MiB), and a
 * miss reads 1 MiB ahead in the same image.
 */
int vv_point_pread (struct vv_point *pt, void *buf, size_t count,
                    uint64_t offset);

/* What was read from the target so far: bytes and requests (sidecars,
 * metadata and data).
 */
void vv_point_read_stats (const struct vv_point *pt, uint64_t *ret_bytes,
                          uint64_t *ret_requests);

#endif
