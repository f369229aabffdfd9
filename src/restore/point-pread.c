/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Random reads of a point (vv_point_pread): what an export of the point
 * serves, any offset and length, from several threads at once.
 *
 * A block is the smallest thing that can be checked, so every block read
 * is kept, checked, in a small cache: the next reads of nearby bytes
 * (an NBD client reads 4 KiB to 2 MiB at a time, mostly in order) are
 * served from it.  A miss reads a little ahead in the same image, so a
 * sequential reader costs one request per READ_AHEAD bytes.  The last
 * merged windows of the map are kept too.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "restore/point-internal.h"
#include "util/error.h"

#define CACHE_BYTES (UINT64_C (8) << 20)
#define CACHE_MAX_BLOCKS 128
#define READ_AHEAD (UINT64_C (1) << 20)
#define CACHE_WINDOWS 2

struct cached_block {
  bool valid;
  uint32_t layer;
  uint64_t index;
  uint64_t used;                /* tick of the last use, for eviction */
  uint8_t *data;
  size_t len;
};

struct cached_window {
  bool valid;
  uint64_t w;
  uint64_t used;
  struct vv_qcow2_source *src;
};

struct vv_point_cache {
  pthread_mutex_t lock;
  uint64_t tick;
  size_t nblocks;
  struct cached_block blocks[CACHE_MAX_BLOCKS];
  struct cached_window windows[CACHE_WINDOWS];
};

void
vv_point_cache_free (struct vv_point_cache *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < CACHE_MAX_BLOCKS; i++)
    free (c->blocks[i].data);
  for (size_t i = 0; i < CACHE_WINDOWS; i++)
    free (c->windows[i].src);
  pthread_mutex_destroy (&c->lock);
  free (c);
}

static struct vv_point_cache *
get_cache (struct vv_point *pt)
{
  struct vv_point_cache *c;
  uint32_t largest = VV_BLOCK_SIZE_MIN;

  pthread_mutex_lock (&pt->lock);
  if ((c = pt->cache) != NULL)
    goto out;
  c = calloc (1, sizeof *c);
  if (c == NULL)
    goto out;
  pthread_mutex_init (&c->lock, NULL);
  for (size_t i = 0; i < CACHE_WINDOWS; i++)
    if ((c->windows[i].src = malloc (VV_QCOW2_L2_ENTRIES
                                     * sizeof *c->windows[i].src)) == NULL) {
      vv_point_cache_free (c);
      c = NULL;
      goto out;
    }
  for (size_t k = 0; k < pt->n; k++)
    if (pt->layers[k].dig.block_size > largest)
      largest = pt->layers[k].dig.block_size;
  /* CACHE_BYTES whatever the block size, and room for a read-ahead. */
  c->nblocks = CACHE_BYTES / largest;
  if (c->nblocks < 2)
    c->nblocks = 2;
  if (c->nblocks > CACHE_MAX_BLOCKS)
    c->nblocks = CACHE_MAX_BLOCKS;
  pt->cache = c;
 out:
  pthread_mutex_unlock (&pt->lock);
  if (c == NULL)
    vv_error_errno (ENOMEM, "reading %s", pt->what);
  return c;
}

/* The map's entry of guest cluster cluster. */
static int
source_of (struct vv_point *pt, struct vv_point_cache *c, uint64_t cluster,
           struct vv_qcow2_source *ret)
{
  uint64_t w = cluster / VV_QCOW2_L2_ENTRIES;
  struct cached_window *slot = NULL;
  int r = 0;

  pthread_mutex_lock (&c->lock);
  for (size_t i = 0; i < CACHE_WINDOWS; i++)
    if (c->windows[i].valid && c->windows[i].w == w)
      slot = &c->windows[i];
  if (slot == NULL) {
    slot = &c->windows[0];
    for (size_t i = 1; i < CACHE_WINDOWS; i++)
      if (!c->windows[i].valid || c->windows[i].used < slot->used)
        slot = &c->windows[i];
    slot->valid = false;
    r = vv_point_merge (pt, w, slot->src);
    slot->valid = r == 0;
    slot->w = w;
  }
  if (r == 0) {
    slot->used = ++c->tick;
    *ret = slot->src[cluster % VV_QCOW2_L2_ENTRIES];
  }
  pthread_mutex_unlock (&c->lock);
  return r;
}

/* Copies len bytes at off of block index of layer from the cache;
 * false when the block is not there.
 */
static bool
from_cache (struct vv_point_cache *c, uint32_t layer, uint64_t index,
            uint64_t off, void *dst, size_t len)
{
  bool hit = false;

  pthread_mutex_lock (&c->lock);
  for (size_t i = 0; i < c->nblocks; i++) {
    struct cached_block *b = &c->blocks[i];

    if (b->valid && b->layer == layer && b->index == index
        && off + len <= b->len) {
      memcpy (dst, b->data + off, len);
      b->used = ++c->tick;
      hit = true;
      break;
    }
  }
  pthread_mutex_unlock (&c->lock);
  return hit;
}

static void
to_cache (struct vv_point_cache *c, uint32_t layer, uint64_t index,
          const uint8_t *data, size_t len)
{
  struct cached_block *slot = &c->blocks[0];

  pthread_mutex_lock (&c->lock);
  for (size_t i = 0; i < c->nblocks; i++) {
    struct cached_block *b = &c->blocks[i];

    if (b->valid && b->layer == layer && b->index == index) {
      pthread_mutex_unlock (&c->lock);
      return;                   /* another reader was quicker */
    }
    if (!b->valid || b->used < slot->used)
      slot = b;
  }
  if (slot->data == NULL || slot->len < len) {
    uint8_t *n = realloc (slot->data, len);

    if (n == NULL) {
      /* Only the cache goes without: the read itself succeeded. */
      pthread_mutex_unlock (&c->lock);
      return;
    }
    slot->data = n;
  }
  memcpy (slot->data, data, len);
  slot->len = len;
  slot->layer = layer;
  slot->index = index;
  slot->valid = true;
  slot->used = ++c->tick;
  pthread_mutex_unlock (&c->lock);
}

/* Reads block index of layer k and a few after it, checks them, puts
 * them in the cache and copies len bytes at off of the first to dst.
 */
static int
fill (struct vv_point *pt, struct vv_point_cache *c, uint32_t k,
      uint64_t index, uint64_t off, uint8_t *dst, size_t len)
{
  struct layer *l = &pt->layers[k];
  uint64_t bs = l->dig.block_size, start = index * bs, end;
  uint8_t *buf;
  int r = -1;

  end = start + (bs > READ_AHEAD ? bs : READ_AHEAD);
  if (end > l->dig.object_size)
    end = l->dig.object_size;
  if ((buf = malloc (end - start)) == NULL) {
    vv_error_errno (ENOMEM, "reading %s", l->what);
    return -1;
  }
  if (vv_point_layer_read (pt, l, buf, start, end - start) == -1
      || vv_block_digests_check (&l->dig, buf, start, end, l->corrupt) == -1)
    goto out;
  memcpy (dst, buf + off, len);
  for (uint64_t b = start; b < end; b += bs)
    to_cache (c, k, b / bs, buf + (b - start), end - b < bs ? end - b : bs);
  r = 0;
 out:
  free (buf);
  return r;
}

/* Copies len bytes at host of layer k, checked, to dst. */
static int
read_checked (struct vv_point *pt, struct vv_point_cache *c, uint32_t k,
              uint64_t host, uint8_t *dst, size_t len)
{
  uint64_t bs = pt->layers[k].dig.block_size;

  while (len > 0) {
    uint64_t index = host / bs, off = host % bs;
    size_t n = len < bs - off ? len : bs - off;

    if (!from_cache (c, k, index, off, dst, n)
        && fill (pt, c, k, index, off, dst, n) == -1)
      return -1;
    host += n;
    dst += n;
    len -= n;
  }
  return 0;
}

int
vv_point_pread (struct vv_point *pt, void *buf, size_t count,
                uint64_t offset)
{
  struct vv_point_cache *c;
  uint8_t *dst = buf;

  if (offset > pt->virtual_size || count > pt->virtual_size - offset) {
    vv_error_code (VV_ERR_INVALID, "%s: bytes %" PRIu64 "-%" PRIu64 " lie "
                   "past the end of the disk (%" PRIu64 " bytes)", pt->what,
                   offset, offset + count, pt->virtual_size);
    return -1;
  }
  if ((c = get_cache (pt)) == NULL)
    return -1;
  while (count > 0) {
    uint64_t cluster = offset / VV_QCOW2_CLUSTER_SIZE;
    uint64_t in = offset % VV_QCOW2_CLUSTER_SIZE;
    size_t n = count < VV_QCOW2_CLUSTER_SIZE - in
               ? count : (size_t) (VV_QCOW2_CLUSTER_SIZE - in);
    size_t data = 0;
    struct vv_qcow2_source s = { VV_QCOW2_NO_LAYER, 0, 0 };

    if (source_of (pt, c, cluster, &s) == -1)
      return -1;
    if (s.layer != VV_QCOW2_NO_LAYER && in < s.valid)
      data = s.valid - in < n ? s.valid - in : n;
    if (data > 0 && read_checked (pt, c, s.layer, s.host + in, dst,
                                  data) == -1)
      return -1;
    /* Unallocated, zero clusters, and past a smaller backing image. */
    memset (dst + data, 0, n - data);
    offset += n;
    dst += n;
    count -= n;
  }
  return 0;
}
