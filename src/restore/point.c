/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading a stored point with ranged, verified reads (point.h).
 *
 * Opening a point and its map: the images' digests and metadata are
 * read and checked once and kept in memory; the point's map is merged
 * from them one window (one L2 table, 512 MiB of guest space) at a time.
 * Copying the whole point is point-copy.c, random reads point-pread.c.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "restore/point-internal.h"
#include "target/block-digests.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/sha256.h"
#include "util/strutil.h"

int
vv_point_usable (const struct vv_restore_chain *c, const struct vv_disk_rec *d,
                 const char *target)
{
  size_t idx = 0, n = 0;

  while (d) {
    const struct vv_disk_rec *nd;
    size_t nidx;

    if (d->blocks_object == NULL || d->blocks_sha256 == NULL
        || d->block_size == 0 || d->metadata_bytes == 0)
      return 0;
    if (++n > VV_RESTORE_OPEN_MAX)
      return 0;
    /* The catalog alone says where the chain goes; the headers are
     * compared with it when the images are opened.
     */
    if (vv_restore_chain_backing (c, idx, d, target, d->backing, &nd,
                                  &nidx) == -1)
      return -1;
    d = nd;
    idx = nidx;
  }
  return 1;
}

/* Reads [off, off + len) of l's image whole into buf. */
static int
read_range (struct vv_point *pt, struct layer *l, void *buf, uint64_t off,
            uint64_t len)
{
  uint64_t done = 0;

  while (done < len) {
    int64_t n = vv_target_reader_pread (l->rd, (uint8_t *) buf + done,
                                        len - done, off + done);
    if (n == -1) {
      vv_error_prefix ("reading %s: ", l->what);
      return -1;
    }
    if (n == 0) {
      vv_error ("%s ended at byte %" PRIu64 " while being read; it should "
                "be %" PRIu64 " bytes", l->what, off + done,
                l->d->stored_bytes);
      return -1;
    }
    done += (uint64_t) n;
    atomic_fetch_add (&pt->bytes_read, (uint64_t) n);
    atomic_fetch_add (&pt->requests, 1);
  }
  return 0;
}

/* The qcow2 reader and checker see an image through its metadata only:
 * anything they ask for past metadata_bytes is not metadata the backup
 * wrote.
 */
static int64_t
meta_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  const struct layer *l = opaque;
  uint64_t limit = l->d->metadata_bytes;

  if (offset >= limit || count > limit - offset) {
    vv_error ("bytes %" PRIu64 "-%" PRIu64 " lie past the %" PRIu64
              " bytes of metadata the backup recorded", offset,
              offset + count, limit);
    return -1;
  }
  memcpy (buf, l->meta + offset, count);
  return (int64_t) count;
}

static int
charge (struct vv_point *pt, uint64_t bytes, const struct layer *l)
{
  if (bytes > POINT_MEMORY_MAX - pt->memory) {
    vv_error ("%s: the metadata and block digests of its chain need more "
              "than %" PRIu64 " MiB", l->what, POINT_MEMORY_MAX >> 20);
    return -1;
  }
  pt->memory += bytes;
  return 0;
}

static int
load_digests (struct vv_point *pt, struct layer *l)
{
  const struct vv_disk_rec *d = l->d;
  uint64_t want = vv_block_digests_len (d->stored_bytes, d->block_size);
  _cleanup_free_ char *buf = NULL, *what = NULL;
  char sha[VV_SHA256_HEX];
  size_t len;

  what = vv_printf ("the block digests of %s", l->what);
  if (what == NULL)
    return -1;
  if (want == 0 || want > SIZE_MAX - 1) {
    vv_error ("%s: the catalog records the block size %" PRIu32 ", which "
              "virtvault does not write", what, d->block_size);
    return -1;
  }
  if (charge (pt, want, l) == -1
      || vv_restore_check_object (l->backup_id, d->blocks_object) == -1)
    return -1;
  if (vv_target_read_all (pt->t, d->blocks_object, (size_t) want, &buf,
                          &len) == -1) {
    vv_error_prefix ("%s (object %s): ", what, d->blocks_object);
    return -1;
  }
  atomic_fetch_add (&pt->bytes_read, len);
  atomic_fetch_add (&pt->requests, 1);
  if (vv_sha256_hex (buf, len, sha) == -1)
    return -1;
  if (strcasecmp (sha, d->blocks_sha256) != 0) {
    vv_error ("%s are corrupt or were altered: their sha256 is %s, the "
              "catalog recorded %s", what, sha, d->blocks_sha256);
    return -1;
  }
  return vv_block_digests_parse (buf, len, d->stored_bytes, d->block_size,
                                 what, &l->dig);
}

static int
load_metadata (struct vv_point *pt, struct layer *l)
{
  const struct vv_disk_rec *d = l->d;
  uint64_t start, end;

  if (d->metadata_bytes > d->stored_bytes) {
    vv_error ("%s: the catalog records %" PRIu64 " bytes of metadata in an "
              "image of %" PRIu64, l->what, d->metadata_bytes,
              d->stored_bytes);
    return -1;
  }
  vv_block_digests_cover (&l->dig, 0, d->metadata_bytes, &start, &end);
  if (charge (pt, end, l) == -1)
    return -1;
  if ((l->meta = malloc (end)) == NULL) {
    vv_error_errno (ENOMEM, "reading %s", l->what);
    return -1;
  }
  l->meta_len = end;
  if (read_range (pt, l, l->meta, 0, end) == -1)
    return -1;
  return vv_block_digests_check (&l->dig, l->meta, 0, end, l->corrupt);
}

/* Opens image d (chain position idx) as layer k and returns its header. */
static int
open_layer (struct vv_point *pt, const struct vv_restore_chain *c, size_t idx,
            const struct vv_disk_rec *d, size_t k,
            struct vv_qcow2_info *ret_info)
{
  struct layer *l = &pt->layers[k];
  struct vv_qcow2_layer *q = &pt->chain[k];
  const char *tname = vv_target_name (pt->t);
  uint64_t size;

  l->d = d;
  l->backup_id = c->v[idx]->id;
  l->what = vv_printf ("%s of backup %s on target '%s'",
                       vv_restore_object_base (d->object), l->backup_id,
                       tname);
  l->corrupt = vv_printf ("%s of backup %s is corrupt on target '%s'",
                          vv_restore_object_base (d->object), l->backup_id,
                          tname);
  if (l->what == NULL || l->corrupt == NULL)
    return -1;
  if (vv_restore_check_object (l->backup_id, d->object) == -1)
    return -1;
  if (d->format && strcmp (d->format, "qcow2") != 0) {
    vv_error ("%s is stored as '%s'; only qcow2 images can be restored",
              l->what, d->format);
    return -1;
  }
  l->rd = vv_target_reader_open (pt->t, d->object, &size);
  if (l->rd == NULL) {
    if (vv_get_error_code () == VV_ERR_NOT_FOUND
        || vv_get_error_plugin_errno () == ENOENT)
      vv_error ("%s is missing (object %s)", l->what, d->object);
    else
      vv_error_prefix ("%s: ", l->what);
    return -1;
  }
  l->parallel = vv_target_reader_parallel (l->rd);
  if (size != d->stored_bytes) {
    vv_error ("%s is corrupt: it is %" PRIu64 " bytes, expected %" PRIu64,
              l->what, size, d->stored_bytes);
    return -1;
  }
  if (load_digests (pt, l) == -1 || load_metadata (pt, l) == -1)
    return -1;
  if (vv_qcow2_check (meta_read, l, d->stored_bytes, ret_info) == -1) {
    vv_error_prefix ("%s is not a valid qcow2 image: ", l->what);
    return -1;
  }
  if (ret_info->virtual_size != d->virtual_size) {
    vv_error ("%s: its header gives a virtual size of %" PRIu64 " bytes, "
              "the catalog says %" PRIu64 "; it was altered on the target",
              l->what, ret_info->virtual_size, d->virtual_size);
    return -1;
  }
  if (vv_qcow2_reader_open (meta_read, l, d->stored_bytes, &q->r) == -1) {
    vv_error_prefix ("%s: ", l->what);
    return -1;
  }
  q->virtual_size = d->virtual_size;
  return 0;
}

int
vv_point_open (struct vv_target *t, const struct vv_restore_chain *c,
               const struct vv_disk_rec *d, const char *what,
               struct vv_point **ret)
{
  struct vv_point *pt;
  size_t idx = 0;

  pt = calloc (1, sizeof *pt);
  if (pt == NULL) {
    vv_error_errno (ENOMEM, "reading %s", what);
    return -1;
  }
  pthread_mutex_init (&pt->lock, NULL);
  pthread_mutex_init (&pt->map_lock, NULL);
  pthread_cond_init (&pt->slot, NULL);
  pt->t = t;
  pt->what = vv_strdup (what);
  pt->layers = calloc (VV_RESTORE_OPEN_MAX, sizeof *pt->layers);
  pt->chain = calloc (VV_RESTORE_OPEN_MAX, sizeof *pt->chain);
  pt->merge = vv_qcow2_merge_new ();
  pt->src = malloc (VV_QCOW2_L2_ENTRIES * sizeof *pt->src);
  if (pt->what == NULL || pt->layers == NULL || pt->chain == NULL
      || pt->merge == NULL || pt->src == NULL) {
    vv_error_errno (ENOMEM, "reading %s", what);
    goto fail;
  }

  while (d) {
    struct vv_qcow2_info info = { 0 };
    const struct vv_disk_rec *nd;
    size_t nidx;
    int r;

    for (size_t k = 0; k < pt->n; k++)
      if (strcmp (pt->layers[k].d->object, d->object) == 0) {
        vv_error ("the chain of %s uses %s twice; the catalog is damaged",
                  what, d->object);
        goto fail;
      }
    if (pt->n == VV_RESTORE_OPEN_MAX) {
      vv_error ("the chain of %s is longer than %d images; restore an "
                "earlier backup of the chain", what, VV_RESTORE_OPEN_MAX);
      goto fail;
    }
    r = open_layer (pt, c, idx, d, pt->n++, &info);
    /* The header's backing name must be the catalog's, which says which
     * image comes next.
     */
    if (r == 0)
      r = vv_restore_chain_backing (c, idx, d, vv_target_name (t),
                                    info.backing_file, &nd, &nidx);
    vv_qcow2_info_clear (&info);
    if (r == -1)
      goto fail;
    d = nd;
    idx = nidx;
  }
  pt->virtual_size = pt->chain[0].virtual_size;
  *ret = pt;
  return 0;

 fail:
  vv_point_close (pt);
  return -1;
}

void
vv_point_close (struct vv_point *pt)
{
  if (pt == NULL)
    return;
  for (size_t k = 0; k < pt->n; k++) {
    vv_target_reader_close (pt->layers[k].rd);
    vv_block_digests_clear (&pt->layers[k].dig);
    free (pt->layers[k].meta);
    free (pt->layers[k].what);
    free (pt->layers[k].corrupt);
    vv_qcow2_reader_free (pt->chain[k].r);
  }
  free (pt->layers);
  free (pt->chain);
  vv_qcow2_merge_free (pt->merge);
  free (pt->src);
  free (pt->what);
  vv_point_cache_free (pt->cache);
  pthread_cond_destroy (&pt->slot);
  pthread_mutex_destroy (&pt->map_lock);
  pthread_mutex_destroy (&pt->lock);
  free (pt);
}

uint64_t
vv_point_virtual_size (const struct vv_point *pt)
{
  return pt->virtual_size;
}

void
vv_point_read_stats (const struct vv_point *pt, uint64_t *ret_bytes,
                     uint64_t *ret_requests)
{
  *ret_bytes = atomic_load (&pt->bytes_read);
  *ret_requests = atomic_load (&pt->requests);
}

int
vv_point_merge (struct vv_point *pt, uint64_t w, struct vv_qcow2_source *src)
{
  size_t k;
  int r;

  pthread_mutex_lock (&pt->map_lock);
  r = vv_qcow2_merge_window (pt->merge, pt->chain, pt->n, pt->virtual_size,
                             w, src, &k);
  pthread_mutex_unlock (&pt->map_lock);
  if (r == -1)
    vv_error_prefix ("%s: ", pt->layers[k].what);
  return r;
}

int
vv_point_layer_read (struct vv_point *pt, struct layer *l, void *buf,
                     uint64_t off, uint64_t len)
{
  int r;

  pthread_mutex_lock (&pt->lock);
  while (l->inflight >= l->parallel)
    pthread_cond_wait (&pt->slot, &pt->lock);
  l->inflight++;
  pthread_mutex_unlock (&pt->lock);
  r = read_range (pt, l, buf, off, len);
  pthread_mutex_lock (&pt->lock);
  l->inflight--;
  pthread_cond_broadcast (&pt->slot);
  pthread_mutex_unlock (&pt->lock);
  return r;
}

int
vv_point_for_each_run (struct vv_point *pt,
                       int (*fn) (void *opaque, uint64_t offset,
                                  uint64_t len),
                       void *opaque)
{
  uint64_t run = 0, run_len = 0;

  for (uint64_t w = 0; w < vv_qcow2_merge_windows (pt->virtual_size); w++) {
    if (vv_point_merge (pt, w, pt->src) == -1)
      return -1;
    for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
      const struct vv_qcow2_source *s = &pt->src[j];
      uint64_t goff = w * VV_QCOW2_L2_COVERAGE + j * CS;

      if (s->layer == VV_QCOW2_NO_LAYER || s->valid == 0)
        continue;
      if (run_len > 0 && run + run_len == goff) {
        run_len += s->valid;
        continue;
      }
      if (run_len > 0 && fn (opaque, run, run_len) == -1)
        return -1;
      run = goff;
      run_len = s->valid;
    }
  }
  if (run_len > 0 && fn (opaque, run, run_len) == -1)
    return -1;
  return 0;
}

