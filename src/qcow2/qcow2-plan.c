/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qcow2 layout planner and streaming writer.
 *
 * A plan records, for every guest cluster, whether it is DATA, ZERO or
 * UNALLOCATED.  Once the caller has marked everything, the whole layout
 * follows from the counts alone:
 *
 *   cluster 0        header, header extensions, backing file name
 *   L1               one entry per 512 MiB region of the disk
 *   refcount table   enough clusters to point at every refcount block
 *   refcount blocks  enough to cover every cluster of the final file
 *   L2 tables        one per region holding any DATA or ZERO cluster
 *   data             the DATA clusters, in guest order
 *
 * so all metadata can be written before the first byte of data, and the
 * image goes out as one sequential stream.
 *
 * Memory: a plan holds one pointer per 512 MiB of virtual size (1 MiB for
 * 64 TiB) and, for each 512 MiB region that a mark touches, 2 bits per
 * cluster plus two counters (2 KiB + 8 bytes, allocated on first touch).
 * A fully marked 64 TiB disk therefore costs about 257 MiB; a 4 GiB disk
 * at most 16 KiB.  Nothing is proportional to the bytes of the disk.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"
#include "qcow2/qcow2.h"
#include "qcow2/qcow2-format.h"

#define CS VV_QCOW2_CLUSTER_SIZE
/* Entries of one L2 table, i.e. clusters in one 512 MiB region. */
#define L2_ENTRIES (CS / 8)
#define L2_SHIFT (VV_QCOW2_CLUSTER_BITS - 3)
#define REFCOUNT_ORDER 4
/* 16-bit refcounts: one block covers 32768 clusters (2 GiB). */
#define RB_ENTRIES (CS * 8 / (1 << REFCOUNT_ORDER))
#define RT_ENTRIES (CS / 8)
#define L1_ENTRIES (CS / 8)
/* A run handed to the caller is at most 64 MiB, so it can pipeline. */
#define RUN_MAX_CLUSTERS ((UINT64_C (64) << 20) / CS)
/* Metadata goes to the callback in chunks of this many clusters. */
#define OUT_CLUSTERS 16

/* Two bits per cluster: the enum values, so "higher wins" is a compare.
 * A byte holds four clusters; DATA is binary 10, so a byte holds a DATA
 * cluster iff (byte & 0xaa) != 0.
 */
struct region {
  uint32_t ndata;
  uint32_t nzero;
  uint8_t map[L2_ENTRIES / 4];
};

struct vv_qcow2_plan {
  uint64_t virtual_size;
  uint64_t guest_clusters;
  uint32_t nregions;            /* = L1 entries */
  struct region **regions;      /* lazily allocated, NULL = untouched */
  uint32_t touched_regions;     /* regions holding DATA or ZERO = L2 tables */
  uint64_t data_clusters;
  uint64_t zero_clusters;
  char *backing_file;
  char *backing_format;
  bool frozen;                  /* metadata written: no more marks */
  uint64_t *data_before;        /* once frozen: DATA clusters in the
                                   regions before each region */
  uint64_t data_offset;         /* once frozen: where the data starts */
};

struct layout {
  uint64_t l1_offset, l1_clusters;
  uint64_t rt_offset, rt_clusters;
  uint64_t rb_offset, rb_clusters;
  uint64_t l2_offset, l2_clusters;
  uint64_t data_offset, data_clusters;
  uint64_t total_clusters;
};

static inline enum vv_qcow2_kind
region_get (const struct region *r, uint32_t i)
{
  return (r->map[i / 4] >> (2 * (i % 4))) & 3;
}

static inline void
region_set (struct region *r, uint32_t i, enum vv_qcow2_kind k)
{
  uint8_t *b = &r->map[i / 4];
  *b = (uint8_t) ((*b & ~(3u << (2 * (i % 4)))) | ((unsigned) k << (2 * (i % 4))));
}

static enum vv_qcow2_kind
kind_at (const struct vv_qcow2_plan *plan, uint64_t cluster)
{
  const struct region *r = plan->regions[cluster >> L2_SHIFT];
  return r ? region_get (r, cluster & (L2_ENTRIES - 1)) : VV_QCOW2_UNALLOCATED;
}

static uint64_t
div_round_up (uint64_t a, uint64_t b)
{
  return a / b + (a % b != 0);
}

static bool
valid_format_name (const char *s)
{
  size_t n = strlen (s);

  if (n == 0 || n > QCOW2_BACKING_FORMAT_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
          || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
      return false;
  return true;
}

struct vv_qcow2_plan *
vv_qcow2_plan_new (uint64_t virtual_size, const char *backing_file,
                   const char *backing_format)
{
  struct vv_qcow2_plan *plan;

  if (virtual_size > VV_QCOW2_MAX_VIRTUAL_SIZE) {
    vv_error_code (VV_ERR_INVALID,
                   "virtual size %" PRIu64 " exceeds the qcow2 writer's "
                   "maximum of 64 TiB", virtual_size);
    return NULL;
  }
  /* QEMU reads the size in whole sectors: a tail would be invisible. */
  if (virtual_size % 512 != 0) {
    vv_error_code (VV_ERR_INVALID,
                   "virtual size %" PRIu64 " is not a multiple of 512 bytes",
                   virtual_size);
    return NULL;
  }
  if (backing_file == NULL && backing_format != NULL) {
    vv_error_code (VV_ERR_INVALID,
                   "backing format '%s' given without a backing file",
                   backing_format);
    return NULL;
  }
  if (backing_file != NULL
      && (backing_file[0] == '\0'
          || strlen (backing_file) > QCOW2_BACKING_FILE_MAX)) {
    vv_error_code (VV_ERR_INVALID,
                   "backing file name must be 1 to %d bytes long (got %zu)",
                   QCOW2_BACKING_FILE_MAX, strlen (backing_file));
    return NULL;
  }
  if (backing_format != NULL && !valid_format_name (backing_format)) {
    vv_error_code (VV_ERR_INVALID,
                   "backing format '%s' is not a format name (1 to %d "
                   "letters, digits, '_' or '-')",
                   backing_format, QCOW2_BACKING_FORMAT_MAX);
    return NULL;
  }

  plan = calloc (1, sizeof *plan);
  if (plan == NULL) {
    vv_error_errno (errno, "allocating a qcow2 plan");
    return NULL;
  }
  plan->virtual_size = virtual_size;
  plan->guest_clusters = div_round_up (virtual_size, CS);
  plan->nregions = (uint32_t) div_round_up (plan->guest_clusters, L2_ENTRIES);
  if (plan->nregions > 0) {
    plan->regions = calloc (plan->nregions, sizeof *plan->regions);
    if (plan->regions == NULL) {
      vv_error_errno (errno, "allocating a qcow2 plan for %" PRIu64 " bytes",
                      virtual_size);
      return vv_qcow2_plan_free (plan);
    }
  }
  if (backing_file) {
    plan->backing_file = vv_strdup (backing_file);
    if (plan->backing_file == NULL)
      return vv_qcow2_plan_free (plan);
  }
  if (backing_format) {
    plan->backing_format = vv_strdup (backing_format);
    if (plan->backing_format == NULL)
      return vv_qcow2_plan_free (plan);
  }
  return plan;
}

struct vv_qcow2_plan *
vv_qcow2_plan_free (struct vv_qcow2_plan *plan)
{
  if (plan == NULL)
    return NULL;
  for (uint32_t i = 0; i < plan->nregions; i++)
    free (plan->regions[i]);
  free (plan->regions);
  free (plan->backing_file);
  free (plan->backing_format);
  free (plan->data_before);
  free (plan);
  return NULL;
}

/* Raises clusters [first, last] of one region to kind. */
static int
mark_in_region (struct vv_qcow2_plan *plan, uint32_t ri, uint32_t first,
                uint32_t last, enum vv_qcow2_kind kind)
{
  struct region *r = plan->regions[ri];
  bool was_empty;

  if (r == NULL) {
    r = calloc (1, sizeof *r);
    if (r == NULL) {
      vv_error_errno (errno, "allocating a qcow2 plan region");
      return -1;
    }
    plan->regions[ri] = r;
  }
  was_empty = r->ndata == 0 && r->nzero == 0;

  if (first == 0 && last == L2_ENTRIES - 1
      && (kind == VV_QCOW2_DATA || was_empty)) {
    /* Whole region: everything ends up as kind. */
    plan->data_clusters -= r->ndata;
    plan->zero_clusters -= r->nzero;
    memset (r->map, kind == VV_QCOW2_DATA ? 0xaa : 0x55, sizeof r->map);
    r->ndata = kind == VV_QCOW2_DATA ? L2_ENTRIES : 0;
    r->nzero = kind == VV_QCOW2_ZERO ? L2_ENTRIES : 0;
    plan->data_clusters += r->ndata;
    plan->zero_clusters += r->nzero;
  }
  else {
    for (uint32_t i = first; i <= last; i++) {
      enum vv_qcow2_kind old = region_get (r, i);
      if (kind <= old)
        continue;
      region_set (r, i, kind);
      if (old == VV_QCOW2_ZERO) {
        r->nzero--;
        plan->zero_clusters--;
      }
      if (kind == VV_QCOW2_DATA) {
        r->ndata++;
        plan->data_clusters++;
      }
      else {
        r->nzero++;
        plan->zero_clusters++;
      }
    }
  }
  if (was_empty && (r->ndata || r->nzero))
    plan->touched_regions++;
  return 0;
}

int
vv_qcow2_plan_mark (struct vv_qcow2_plan *plan, uint64_t offset,
                    uint64_t length, enum vv_qcow2_kind kind)
{
  uint64_t first, last;

  if (kind != VV_QCOW2_UNALLOCATED && kind != VV_QCOW2_ZERO
      && kind != VV_QCOW2_DATA) {
    vv_error_code (VV_ERR_INVALID, "unknown qcow2 cluster kind %d", (int) kind);
    return -1;
  }
  if (plan->frozen) {
    vv_error_code (VV_ERR_INVALID,
                   "qcow2 plan already written; it cannot be marked any more");
    return -1;
  }
  if (offset > plan->virtual_size || length > plan->virtual_size - offset) {
    vv_error_code (VV_ERR_INVALID,
                   "range %" PRIu64 "+%" PRIu64 " lies beyond the end of the "
                   "disk (virtual size %" PRIu64 ")",
                   offset, length, plan->virtual_size);
    return -1;
  }
  if (length == 0 || kind == VV_QCOW2_UNALLOCATED)
    return 0;

  first = offset / CS;
  last = (offset + length - 1) / CS;
  while (first <= last) {
    uint32_t ri = (uint32_t) (first >> L2_SHIFT);
    uint64_t region_last = ((uint64_t) ri << L2_SHIFT) + L2_ENTRIES - 1;
    uint64_t end = last < region_last ? last : region_last;

    if (mark_in_region (plan, ri, (uint32_t) (first & (L2_ENTRIES - 1)),
                        (uint32_t) (end & (L2_ENTRIES - 1)), kind) == -1)
      return -1;
    first = end + 1;
  }
  return 0;
}

uint64_t
vv_qcow2_plan_virtual_size (const struct vv_qcow2_plan *plan)
{
  return plan->virtual_size;
}

uint64_t
vv_qcow2_plan_data_clusters (const struct vv_qcow2_plan *plan)
{
  return plan->data_clusters;
}

/* Bytes of the last cluster that lie past the end of an unaligned disk,
 * if that cluster is DATA (they are not read, only padded).
 */
static uint64_t
tail_padding (const struct vv_qcow2_plan *plan)
{
  uint64_t tail = plan->virtual_size % CS;

  if (tail == 0 || kind_at (plan, plan->guest_clusters - 1) != VV_QCOW2_DATA)
    return 0;
  return CS - tail;
}

uint64_t
vv_qcow2_plan_data_bytes (const struct vv_qcow2_plan *plan)
{
  return plan->data_clusters * CS - tail_padding (plan);
}

static void
compute_layout (const struct vv_qcow2_plan *plan, struct layout *l)
{
  uint64_t fixed;

  l->l1_clusters = div_round_up ((uint64_t) plan->nregions * 8, CS);
  l->l2_clusters = plan->touched_regions;
  l->data_clusters = plan->data_clusters;
  fixed = 1 + l->l1_clusters + l->l2_clusters + l->data_clusters;

  /* The refcount blocks must also count themselves and the table: grow
   * both until they cover the file they are part of.  Both only grow, and
   * each block covers far more than itself, so this settles in a few steps.
   */
  l->rb_clusters = 0;
  l->rt_clusters = 0;
  for (;;) {
    uint64_t total = fixed + l->rt_clusters + l->rb_clusters;
    uint64_t rb = div_round_up (total, RB_ENTRIES);
    uint64_t rt = div_round_up (rb, RT_ENTRIES);
    if (rb == l->rb_clusters && rt == l->rt_clusters)
      break;
    l->rb_clusters = rb;
    l->rt_clusters = rt;
  }

  l->l1_offset = CS;
  l->rt_offset = l->l1_offset + l->l1_clusters * CS;
  l->rb_offset = l->rt_offset + l->rt_clusters * CS;
  l->l2_offset = l->rb_offset + l->rb_clusters * CS;
  l->data_offset = l->l2_offset + l->l2_clusters * CS;
  l->total_clusters = fixed + l->rt_clusters + l->rb_clusters;
}

uint64_t
vv_qcow2_plan_file_size (const struct vv_qcow2_plan *plan)
{
  struct layout l;

  compute_layout (plan, &l);
  return l.total_clusters * CS;
}

uint64_t
vv_qcow2_plan_metadata_bytes (const struct vv_qcow2_plan *plan)
{
  struct layout l;

  compute_layout (plan, &l);
  return l.data_offset;
}

int
vv_qcow2_plan_data_offset (const struct vv_qcow2_plan *plan, uint64_t offset,
                           uint64_t *ret)
{
  uint64_t c = offset / CS, before;
  const struct region *r;
  uint32_t i, k;

  if (!plan->frozen) {
    vv_error ("the data of a qcow2 image is placed only once its metadata "
              "is written");
    return -1;
  }
  if (offset >= plan->virtual_size || kind_at (plan, c) != VV_QCOW2_DATA) {
    vv_error ("guest offset %" PRIu64 " is not in a data cluster of the "
              "image being written", offset);
    return -1;
  }
  /* Data clusters go out in guest order: this one follows every data
   * cluster before it.
   */
  before = plan->data_before[c >> L2_SHIFT];
  r = plan->regions[c >> L2_SHIFT];
  i = (uint32_t) (c & (L2_ENTRIES - 1));
  for (k = 0; k + 4 <= i; k += 4)
    before += __builtin_popcount (r->map[k / 4] & 0xaa);
  for (; k < i; k++)
    before += region_get (r, k) == VV_QCOW2_DATA;
  *ret = plan->data_offset + before * CS + offset % CS;
  return 0;
}

int
vv_qcow2_plan_next_run (const struct vv_qcow2_plan *plan, uint64_t *iter,
                        uint64_t *ret_offset, uint64_t *ret_length)
{
  uint64_t c = *iter;
  uint64_t start, end, n;

  /* Find the next DATA cluster, skipping untouched regions and bytes. */
  for (;;) {
    const struct region *r;
    uint32_t i;

    if (c >= plan->guest_clusters)
      return 0;
    r = plan->regions[c >> L2_SHIFT];
    if (r == NULL || r->ndata == 0) {
      c = ((c >> L2_SHIFT) + 1) << L2_SHIFT;
      continue;
    }
    i = (uint32_t) (c & (L2_ENTRIES - 1));
    while (i < L2_ENTRIES && region_get (r, i) != VV_QCOW2_DATA) {
      if (i % 4 == 0 && (r->map[i / 4] & 0xaa) == 0)
        i += 4;
      else
        i++;
    }
    c = (c & ~(uint64_t) (L2_ENTRIES - 1)) + i;
    if (i < L2_ENTRIES)
      break;
  }
  if (c >= plan->guest_clusters)
    return 0;

  start = c;
  n = 1;
  while (n < RUN_MAX_CLUSTERS && start + n < plan->guest_clusters
         && kind_at (plan, start + n) == VV_QCOW2_DATA)
    n++;

  end = (start + n) * CS;
  if (end > plan->virtual_size)
    end = plan->virtual_size;
  *iter = start + n;
  *ret_offset = start * CS;
  *ret_length = end - start * CS;
  return 1;
}

/* Metadata output: whole clusters collected in a buffer and handed to the
 * callback OUT_CLUSTERS at a time.
 */
struct out {
  vv_qcow2_write_fn write;
  void *opaque;
  uint8_t *buf;
  size_t used;
};

static int
out_flush (struct out *o)
{
  if (o->used == 0)
    return 0;
  if (o->write (o->opaque, o->buf, o->used) == -1) {
    if (vv_get_error ()[0] == '\0')
      vv_error ("writing qcow2 metadata failed");
    else
      vv_error_prefix ("writing qcow2 metadata: ");
    return -1;
  }
  o->used = 0;
  return 0;
}

/* The next cluster of output, zeroed, or NULL on a write error. */
static uint8_t *
out_cluster (struct out *o)
{
  uint8_t *p;

  if (o->used == OUT_CLUSTERS * CS && out_flush (o) == -1)
    return NULL;
  p = o->buf + o->used;
  o->used += CS;
  memset (p, 0, CS);
  return p;
}

static void
fill_header (const struct vv_qcow2_plan *plan, const struct layout *l,
             uint8_t *h)
{
  size_t pos = QCOW2_HDR_V3_LENGTH;

  qcow2_put_be32 (h + QCOW2_HDR_MAGIC, QCOW2_MAGIC);
  qcow2_put_be32 (h + QCOW2_HDR_VERSION, QCOW2_VERSION);
  qcow2_put_be32 (h + QCOW2_HDR_CLUSTER_BITS, VV_QCOW2_CLUSTER_BITS);
  qcow2_put_be64 (h + QCOW2_HDR_SIZE, plan->virtual_size);
  qcow2_put_be32 (h + QCOW2_HDR_L1_SIZE, plan->nregions);
  qcow2_put_be64 (h + QCOW2_HDR_L1_TABLE_OFFSET, l->l1_offset);
  qcow2_put_be64 (h + QCOW2_HDR_REFCOUNT_TABLE_OFFSET, l->rt_offset);
  qcow2_put_be32 (h + QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS,
                  (uint32_t) l->rt_clusters);
  qcow2_put_be32 (h + QCOW2_HDR_REFCOUNT_ORDER, REFCOUNT_ORDER);
  qcow2_put_be32 (h + QCOW2_HDR_HEADER_LENGTH, QCOW2_HDR_V3_LENGTH);

  if (plan->backing_format) {
    size_t n = strlen (plan->backing_format);
    qcow2_put_be32 (h + pos, QCOW2_EXT_BACKING_FORMAT);
    qcow2_put_be32 (h + pos + 4, (uint32_t) n);
    memcpy (h + pos + 8, plan->backing_format, n);
    pos += 8 + (n + 7) / 8 * 8;
  }
  /* End of extensions: 8 zero bytes, already zero. */
  pos += 8;

  if (plan->backing_file) {
    size_t n = strlen (plan->backing_file);
    qcow2_put_be64 (h + QCOW2_HDR_BACKING_FILE_OFFSET, pos);
    qcow2_put_be32 (h + QCOW2_HDR_BACKING_FILE_SIZE, (uint32_t) n);
    memcpy (h + pos, plan->backing_file, n);
  }
}

static int
write_l1 (const struct vv_qcow2_plan *plan, const struct layout *l,
          struct out *o)
{
  uint64_t l2 = l->l2_offset;
  uint8_t *p = NULL;

  for (uint32_t i = 0; i < plan->nregions; i++) {
    const struct region *r = plan->regions[i];

    if (i % L1_ENTRIES == 0 && (p = out_cluster (o)) == NULL)
      return -1;
    if (r && (r->ndata || r->nzero)) {
      qcow2_put_be64 (p + (i % L1_ENTRIES) * 8, l2 | QCOW2_OFLAG_COPIED);
      l2 += CS;
    }
  }
  return 0;
}

static int
write_refcounts (const struct layout *l, struct out *o)
{
  _cleanup_free_ uint8_t *full = NULL;
  uint8_t *p = NULL;

  for (uint64_t i = 0; i < l->rb_clusters; i++) {
    if (i % RT_ENTRIES == 0 && (p = out_cluster (o)) == NULL)
      return -1;
    qcow2_put_be64 (p + (i % RT_ENTRIES) * 8, l->rb_offset + i * CS);
  }

  /* Every cluster of the file is used exactly once; all blocks but the
   * last are a copy of one full block.
   */
  full = malloc (CS);
  if (full == NULL) {
    vv_error_errno (errno, "allocating a qcow2 refcount block");
    return -1;
  }
  for (uint32_t j = 0; j < RB_ENTRIES; j++)
    qcow2_put_be16 (full + j * 2, 1);
  for (uint64_t b = 0; b < l->rb_clusters; b++) {
    uint64_t n = l->total_clusters - b * RB_ENTRIES;

    if ((p = out_cluster (o)) == NULL)
      return -1;
    memcpy (p, full, n >= RB_ENTRIES ? CS : n * 2);
  }
  return 0;
}

static int
write_l2 (const struct vv_qcow2_plan *plan, const struct layout *l,
          struct out *o)
{
  uint64_t host = l->data_offset;

  for (uint32_t ri = 0; ri < plan->nregions; ri++) {
    const struct region *r = plan->regions[ri];
    uint8_t *p;

    if (r == NULL || (r->ndata == 0 && r->nzero == 0))
      continue;
    if ((p = out_cluster (o)) == NULL)
      return -1;
    for (uint32_t i = 0; i < L2_ENTRIES; i++) {
      if (i % 4 == 0 && r->map[i / 4] == 0) {
        i += 3;
        continue;
      }
      switch (region_get (r, i)) {
      case VV_QCOW2_DATA:
        qcow2_put_be64 (p + i * 8, host | QCOW2_OFLAG_COPIED);
        host += CS;
        break;
      case VV_QCOW2_ZERO:
        qcow2_put_be64 (p + i * 8, QCOW2_OFLAG_ZERO);
        break;
      default:
        break;
      }
    }
  }
  return 0;
}

int
vv_qcow2_write_metadata (struct vv_qcow2_plan *plan,
                         vv_qcow2_write_fn write, void *opaque)
{
  _cleanup_free_ uint8_t *buf = NULL;
  struct layout l;
  struct out o;
  uint8_t *h;

  buf = malloc (OUT_CLUSTERS * CS);
  if (buf == NULL) {
    vv_error_errno (errno, "allocating the qcow2 metadata buffer");
    return -1;
  }
  /* Where each region's data starts, for vv_qcow2_plan_data_offset:
   * a count per region instead of a walk over all regions before it.
   */
  free (plan->data_before);
  plan->data_before = malloc (((size_t) plan->nregions + 1)
                              * sizeof *plan->data_before);
  if (plan->data_before == NULL) {
    vv_error_errno (ENOMEM, "laying out a qcow2 image");
    return -1;
  }
  plan->data_before[0] = 0;
  for (uint32_t g = 0; g < plan->nregions; g++)
    plan->data_before[g + 1] = plan->data_before[g]
      + (plan->regions[g] ? plan->regions[g]->ndata : 0);
  plan->frozen = true;
  compute_layout (plan, &l);
  plan->data_offset = l.data_offset;
  o = (struct out) { .write = write, .opaque = opaque, .buf = buf };

  if ((h = out_cluster (&o)) == NULL)
    return -1;
  fill_header (plan, &l, h);
  if (write_l1 (plan, &l, &o) == -1
      || write_refcounts (&l, &o) == -1
      || write_l2 (plan, &l, &o) == -1
      || out_flush (&o) == -1)
    return -1;
  return 0;
}

int
vv_qcow2_write_finish (struct vv_qcow2_plan *plan,
                       vv_qcow2_write_fn write, void *opaque)
{
  static const uint8_t zeros[CS];
  uint64_t pad;

  if (!plan->frozen) {
    vv_error ("qcow2 image finished before its metadata was written");
    return -1;
  }
  pad = tail_padding (plan);
  if (pad == 0)
    return 0;
  if (write (opaque, zeros, pad) == -1) {
    if (vv_get_error ()[0] == '\0')
      vv_error ("writing the qcow2 tail padding failed");
    else
      vv_error_prefix ("writing the qcow2 tail padding: ");
    return -1;
  }
  return 0;
}
