/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the pieces of the point reader (point.c, point-copy.c,
 * point-pread.c) share.
 */
#ifndef VV_RESTORE_POINT_INTERNAL_H
#define VV_RESTORE_POINT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "restore/point.h"
#include "target/block-digests.h"

#define CS VV_QCOW2_CLUSTER_SIZE
/* Metadata and digests of every image of a chain are held at once; a
 * chain needing more is refused (restore then downloads it instead).
 * A 1.5 GiB image has some 320 KiB of metadata and 192 KiB of digests.
 */
#define POINT_MEMORY_MAX (UINT64_C (256) << 20)
/* Longest piece and request: each worker holds one request's bytes, so
 * this times POINT_THREADS is the copy's memory; large enough that a
 * request's latency does not show on a remote target.
 */
#define PIECE_MAX (UINT64_C (4) << 20)
#define REQUEST_MAX (UINT64_C (4) << 20)
#define POINT_THREADS 4

struct layer {
  const struct vv_disk_rec *d;
  const char *backup_id;
  char *what;                   /* "vda.qcow2 of backup bk-... on target 'x'" */
  char *corrupt;                /* "vda.qcow2 of backup bk-... is corrupt on
                                   target 'x'", for block mismatches */
  struct vv_target_reader *rd;
  unsigned parallel;            /* preads the reader takes at once */
  unsigned inflight;            /* under vv_point.lock */
  struct vv_block_digests dig;
  uint8_t *meta;                /* the first meta_len bytes, checked */
  uint64_t meta_len;
};

struct vv_point_cache;          /* point-pread.c */

struct vv_point {
  struct vv_target *t;
  char *what;
  struct layer *layers;
  struct vv_qcow2_layer *chain;
  size_t n;
  uint64_t virtual_size;
  uint64_t memory;              /* metadata and digests held */
  /* Merging reads the images' metadata through their qcow2 readers,
   * which keep one L2 table of scratch each: one merge at a time.
   */
  pthread_mutex_t map_lock;
  struct vv_qcow2_merge *merge;
  struct vv_qcow2_source *src;  /* one window, under map_lock */
  pthread_mutex_t lock;
  pthread_cond_t slot;          /* a layer's reader has room */
  struct vv_point_cache *cache; /* of vv_point_pread, NULL until used */
  _Atomic uint64_t bytes_read;
  _Atomic uint64_t requests;
};

/* Reads [off, off + len) of l's image whole into buf, as one of at most
 * l->parallel reads of that image at once.
 */
int vv_point_layer_read (struct vv_point *pt, struct layer *l, void *buf,
                         uint64_t off, uint64_t len);
/* Fills src (VV_QCOW2_L2_ENTRIES entries) with window w of the point's
 * map.
 */
int vv_point_merge (struct vv_point *pt, uint64_t w,
                    struct vv_qcow2_source *src);
/* Frees what vv_point_pread kept (point-pread.c). */
void vv_point_cache_free (struct vv_point_cache *c);

#endif
