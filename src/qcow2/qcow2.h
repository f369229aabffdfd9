/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Streaming qcow2 images.
 *
 * The writer lays out a whole qcow2 (version 3, 64 KiB clusters, 16-bit
 * refcounts) before any data is read, so the image can be produced as one
 * sequential stream to any target (no seeks, no rewrites):
 *
 *   header (+ backing file name) | L1 | refcount table | refcount blocks |
 *   L2 tables | data clusters in guest order
 *
 * Only clusters marked DATA get a host cluster; ZERO clusters are recorded
 * in L2 with the "reads as zeros" flag (needed for incrementals over a
 * backing file); everything else stays unallocated (reads from the backing
 * file, or zeros without one).
 *
 * The checker walks an image through a read callback (so it works on any
 * target via ranged gets) and verifies its structure.
 */
#ifndef VV_QCOW2_H
#define VV_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VV_QCOW2_CLUSTER_BITS 16
#define VV_QCOW2_CLUSTER_SIZE (UINT64_C (1) << VV_QCOW2_CLUSTER_BITS)
/* Largest virtual size we write: 64 TiB. */
#define VV_QCOW2_MAX_VIRTUAL_SIZE (UINT64_C (64) << 40)

enum vv_qcow2_kind {
  VV_QCOW2_UNALLOCATED = 0,
  VV_QCOW2_ZERO = 1,
  VV_QCOW2_DATA = 2,
};

struct vv_qcow2_plan;

/* backing_file: NULL for a standalone image, else the name stored in the
 * header (relative to the image, e.g. "../bk-1/vda.qcow2"), with
 * backing_format (e.g. "qcow2") stored as a header extension.
 */
struct vv_qcow2_plan *vv_qcow2_plan_new (uint64_t virtual_size,
                                         const char *backing_file,
                                         const char *backing_format);
struct vv_qcow2_plan *vv_qcow2_plan_free (struct vv_qcow2_plan *plan);

/* Mark the clusters overlapping [offset, offset+length) as kind.  DATA
 * wins over ZERO wins over UNALLOCATED when marks overlap (a cluster partly
 * data and partly zero is read whole).  Must be called before
 * vv_qcow2_write_metadata.
 */
int vv_qcow2_plan_mark (struct vv_qcow2_plan *plan, uint64_t offset,
                        uint64_t length, enum vv_qcow2_kind kind);

uint64_t vv_qcow2_plan_virtual_size (const struct vv_qcow2_plan *plan);
uint64_t vv_qcow2_plan_data_clusters (const struct vv_qcow2_plan *plan);
/* Guest bytes that will be read and stored (data clusters, clipped at the
 * end of the disk).
 */
uint64_t vv_qcow2_plan_data_bytes (const struct vv_qcow2_plan *plan);
/* Size of the whole image file this plan produces. */
uint64_t vv_qcow2_plan_file_size (const struct vv_qcow2_plan *plan);
/* The image's first bytes that hold all its metadata (header, backing
 * name, L1, refcount table and blocks, L2 tables): every data cluster
 * lies after them, so a reader gets all the metadata in one read.
 */
uint64_t vv_qcow2_plan_metadata_bytes (const struct vv_qcow2_plan *plan);

typedef int (*vv_qcow2_write_fn) (void *opaque, const void *buf,
                                  size_t count);

/* Writes everything before the first data cluster.  After this, the caller
 * writes the guest data of each run from vv_qcow2_plan_next_run, in order,
 * and then calls vv_qcow2_write_finish.
 */
int vv_qcow2_write_metadata (struct vv_qcow2_plan *plan,
                             vv_qcow2_write_fn write, void *opaque);

/* Iterates the runs of consecutive DATA clusters in guest order.  Start
 * with *iter = 0.  Returns 1 with a run (length is a multiple of the cluster
 * size except for a run ending at an unaligned end of the disk, where it is
 * clipped to the disk), 0 at the end.
 */
int vv_qcow2_plan_next_run (const struct vv_qcow2_plan *plan, uint64_t *iter,
                            uint64_t *ret_offset, uint64_t *ret_length);

/* Where the image stores the guest byte at offset, which must lie in a
 * DATA cluster, once vv_qcow2_write_metadata has laid the image out:
 * writers that fill the data in any order (ranged reads in parallel)
 * pwrite each piece there.
 */
int vv_qcow2_plan_data_offset (const struct vv_qcow2_plan *plan,
                               uint64_t offset, uint64_t *ret);

/* Writes the padding after a clipped last cluster, so the file size equals
 * vv_qcow2_plan_file_size.
 */
int vv_qcow2_write_finish (struct vv_qcow2_plan *plan,
                           vv_qcow2_write_fn write, void *opaque);

/* Checking an image that was stored. */
typedef int64_t (*vv_qcow2_read_fn) (void *opaque, void *buf, size_t count,
                                     uint64_t offset);

struct vv_qcow2_info {
  uint32_t version;
  uint32_t cluster_bits;
  uint64_t virtual_size;
  char *backing_file;           /* NULL if none */
  char *backing_format;         /* NULL if none */
  uint64_t data_clusters;       /* allocated guest clusters */
  uint64_t zero_clusters;       /* clusters flagged "reads as zeros" */
};

/* Verifies: magic and version, header fields in range, L1/L2/refcount
 * tables inside the file and cluster aligned, no host cluster used twice,
 * every refcount equal to the real use count, no compressed or external
 * data.  file_size is the stored object's size.  On failure reports what
 * is wrong and where ("L2 entry 17 of L2 table at 0x30000 points past the
 * end of the file") and returns -1.
 */
int vv_qcow2_check (vv_qcow2_read_fn read, void *opaque, uint64_t file_size,
                    struct vv_qcow2_info *ret_info);
void vv_qcow2_info_clear (struct vv_qcow2_info *info);

/* Reading the cluster map of a stored image, one L2 table at a time
 * (for flattening a chain).  Only 64 KiB clusters; no compressed
 * clusters.  Check the image with vv_qcow2_check first.
 */
struct vv_qcow2_reader;

/* Guest clusters one L2 table maps, and the guest bytes it covers. */
#define VV_QCOW2_L2_ENTRIES (VV_QCOW2_CLUSTER_SIZE / 8)
#define VV_QCOW2_L2_COVERAGE (VV_QCOW2_L2_ENTRIES * VV_QCOW2_CLUSTER_SIZE)

/* What vv_qcow2_reader_map says of a cluster: one of these, or else the
 * host offset of its data (cluster aligned, never below one cluster).
 */
#define VV_QCOW2_MAP_UNALLOCATED UINT64_C (0)
#define VV_QCOW2_MAP_ZERO UINT64_C (1)

int vv_qcow2_reader_open (vv_qcow2_read_fn read, void *opaque,
                          uint64_t file_size,
                          struct vv_qcow2_reader **ret);
void vv_qcow2_reader_free (struct vv_qcow2_reader *r);
uint64_t vv_qcow2_reader_virtual_size (const struct vv_qcow2_reader *r);
/* Fills map[0..VV_QCOW2_L2_ENTRIES) for the guest clusters of L1 entry
 * l1_index.  Returns 1, or 0 when the image has no L2 table there (past
 * the L1 table, or an empty entry: every cluster unallocated), or -1.
 */
int vv_qcow2_reader_map (struct vv_qcow2_reader *r, uint64_t l1_index,
                         uint64_t *map);

/* The merged view of a chain (qcow2-merge.c), one window of
 * VV_QCOW2_L2_COVERAGE guest bytes at a time.
 */
struct vv_qcow2_layer {
  struct vv_qcow2_reader *r;
  uint64_t virtual_size;        /* of this image */
};
#define VV_QCOW2_NO_LAYER UINT32_MAX
/* Where the guest data of one cluster of the merged view comes from. */
struct vv_qcow2_source {
  uint32_t layer;               /* VV_QCOW2_NO_LAYER: reads as zeros */
  uint32_t valid;               /* bytes of the cluster inside the chain's
                                   view; the rest reads as zeros */
  uint64_t host;                /* offset in the layer's image */
};
struct vv_qcow2_merge;          /* scratch space of one merge */
struct vv_qcow2_merge *vv_qcow2_merge_new (void);
void vv_qcow2_merge_free (struct vv_qcow2_merge *m);
/* Windows a disk of virtual_size has. */
uint64_t vv_qcow2_merge_windows (uint64_t virtual_size);
/* Fills src[0..VV_QCOW2_L2_ENTRIES) for window w of the chain
 * layers[0..n) (top first) seen as a disk of virtual_size (the top
 * image's).  On failure *ret_layer is the image whose map could not be
 * read.
 */
int vv_qcow2_merge_window (struct vv_qcow2_merge *m,
                           const struct vv_qcow2_layer *layers, size_t n,
                           uint64_t virtual_size, uint64_t w,
                           struct vv_qcow2_source *src, size_t *ret_layer);

#endif
