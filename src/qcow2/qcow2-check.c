/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qcow2 structure checker.
 *
 * Works through ranged reads only, so a stored image is checked where it
 * lies (a local file, an S3 object).  It walks the header, the L1 table,
 * each L2 table in turn and the refcount structures, records every host
 * cluster in a bitmap (file_size / cluster_size bits: the only memory that
 * grows with the image, besides the L1 and refcount tables, whose sizes
 * QEMU bounds at 32 MiB and 8 MiB), and finally requires every refcount to
 * equal the number of uses, which for the images we accept is 0 or 1.
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

/* The used-cluster bitmap is at most 512 MiB. */
#define MAX_HOST_CLUSTERS (UINT64_C (1) << 32)

struct checker {
  vv_qcow2_read_fn read;
  void *opaque;
  uint64_t file_size;

  uint32_t cluster_bits;
  uint64_t cluster_size;
  uint32_t refcount_order;
  uint64_t virtual_size;
  uint32_t l1_size;
  uint64_t l1_offset;
  uint64_t rt_offset;
  uint32_t rt_clusters;
  uint64_t backing_offset;
  uint32_t backing_size;
  uint32_t header_length;
  uint64_t incompat;

  uint64_t host_clusters;       /* clusters of the file, last one partial */
  uint64_t *used;               /* bitmap of host_clusters bits */
  uint8_t *cluster;             /* one cluster of scratch */

  char *backing_file;
  char *backing_format;
  uint64_t data_clusters;
  uint64_t zero_clusters;
};

static int
read_at (struct checker *c, void *buf, size_t count, uint64_t offset,
         const char *what)
{
  size_t done = 0;

  if (offset > c->file_size || count > c->file_size - offset) {
    vv_error ("qcow2 %s at 0x%" PRIx64 " (%zu bytes) extends past the end "
              "of the file (size 0x%" PRIx64 ")",
              what, offset, count, c->file_size);
    return -1;
  }
  while (done < count) {
    int64_t r = c->read (c->opaque, (uint8_t *) buf + done, count - done,
                         offset + done);
    if (r < 0) {
      if (vv_get_error ()[0] == '\0')
        vv_error ("reading qcow2 %s at 0x%" PRIx64 " failed", what,
                  offset + done);
      else
        vv_error_prefix ("reading qcow2 %s at 0x%" PRIx64 ": ", what,
                         offset + done);
      return -1;
    }
    if (r == 0) {
      vv_error ("qcow2 %s at 0x%" PRIx64 ": unexpected end of file at 0x%"
                PRIx64, what, offset, offset + done);
      return -1;
    }
    done += (size_t) r;
  }
  return 0;
}

static bool
test_and_set (uint64_t *bits, uint64_t i)
{
  uint64_t m = UINT64_C (1) << (i % 64);
  bool was = (bits[i / 64] & m) != 0;
  bits[i / 64] |= m;
  return was;
}

static bool
is_used (const struct checker *c, uint64_t i)
{
  return i < c->host_clusters
    && (c->used[i / 64] & (UINT64_C (1) << (i % 64))) != 0;
}

/* Records a use of the host clusters [offset, offset+bytes); what names
 * the user in messages.  A last cluster cut short by the end of the file
 * is allowed: qemu-img create ends its files inside the L1 table's cluster.
 */
static int
use_clusters (struct checker *c, uint64_t offset, uint64_t bytes,
              const char *what)
{
  uint64_t first = offset >> c->cluster_bits;
  uint64_t n = (bytes + c->cluster_size - 1) >> c->cluster_bits;

  if (offset & (c->cluster_size - 1)) {
    vv_error ("%s (host offset 0x%" PRIx64 ") is not aligned to the "
              "cluster size (%" PRIu64 ")", what, offset, c->cluster_size);
    return -1;
  }
  if (offset >= c->file_size || n > c->host_clusters - first) {
    vv_error ("%s (host offset 0x%" PRIx64 ") points past the end of the "
              "file (size 0x%" PRIx64 ")", what, offset, c->file_size);
    return -1;
  }
  for (uint64_t i = first; i < first + n; i++)
    if (test_and_set (c->used, i)) {
      vv_error ("%s uses host cluster 0x%" PRIx64 ", which is already "
                "used by other metadata or data (host cluster used twice)",
                what, i << c->cluster_bits);
      return -1;
    }
  return 0;
}

static int
check_header (struct checker *c)
{
  uint8_t h[QCOW2_HDR_V3_LENGTH];
  uint32_t magic, version, crypt, nb_snapshots;
  uint64_t incompat, l2_coverage, need_l1, snapshots_offset;

  if (c->file_size < QCOW2_HDR_V3_LENGTH) {
    vv_error ("file of %" PRIu64 " bytes is too small to be a qcow2 "
              "version 3 image", c->file_size);
    return -1;
  }
  if (read_at (c, h, sizeof h, 0, "header") == -1)
    return -1;

  magic = qcow2_get_be32 (h + QCOW2_HDR_MAGIC);
  if (magic != QCOW2_MAGIC) {
    vv_error ("bad magic 0x%08" PRIx32 " in header: not a qcow2 image", magic);
    return -1;
  }
  version = qcow2_get_be32 (h + QCOW2_HDR_VERSION);
  if (version != QCOW2_VERSION) {
    vv_error ("unsupported qcow2 version %" PRIu32 " (only version 3 is "
              "supported; convert with 'qemu-img amend -o compat=1.1')",
              version);
    return -1;
  }
  c->cluster_bits = qcow2_get_be32 (h + QCOW2_HDR_CLUSTER_BITS);
  if (c->cluster_bits < 9 || c->cluster_bits > 21) {
    vv_error ("header: cluster_bits %" PRIu32 " out of range (9 to 21)",
              c->cluster_bits);
    return -1;
  }
  c->cluster_size = UINT64_C (1) << c->cluster_bits;

  c->header_length = qcow2_get_be32 (h + QCOW2_HDR_HEADER_LENGTH);
  if (c->header_length < QCOW2_HDR_V3_LENGTH || c->header_length % 8 != 0
      || c->header_length > c->cluster_size) {
    vv_error ("header: header_length %" PRIu32 " is invalid (a multiple of "
              "8 from 104 to the cluster size)", c->header_length);
    return -1;
  }

  crypt = qcow2_get_be32 (h + QCOW2_HDR_CRYPT_METHOD);
  if (crypt != 0) {
    vv_error ("encrypted qcow2 images are not supported (crypt_method %"
              PRIu32 ")", crypt);
    return -1;
  }

  incompat = qcow2_get_be64 (h + QCOW2_HDR_INCOMPATIBLE);
  if (incompat & QCOW2_INCOMPAT_DIRTY) {
    vv_error ("image is marked dirty (its refcounts may be stale); repair "
              "it with 'qemu-img check -r all'");
    return -1;
  }
  if (incompat & QCOW2_INCOMPAT_CORRUPT) {
    vv_error ("image is marked corrupt by QEMU");
    return -1;
  }
  if (incompat & QCOW2_INCOMPAT_DATA_FILE) {
    vv_error ("qcow2 images with an external data file are not supported");
    return -1;
  }
  if (incompat & QCOW2_INCOMPAT_EXTL2) {
    vv_error ("qcow2 images with extended L2 entries (subclusters) are not "
              "supported");
    return -1;
  }
  /* The compression type bit only matters for compressed clusters, which
   * are refused below anyway.
   */
  if (incompat & ~(QCOW2_INCOMPAT_COMPRESSION)) {
    vv_error ("header: unknown incompatible feature bits 0x%" PRIx64,
              incompat & ~(QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_DIRTY
                           | QCOW2_INCOMPAT_CORRUPT
                           | QCOW2_INCOMPAT_DATA_FILE
                           | QCOW2_INCOMPAT_EXTL2));
    return -1;
  }

  c->incompat = incompat;
  if (qcow2_get_be64 (h + QCOW2_HDR_AUTOCLEAR) & QCOW2_AUTOCLEAR_DATA_FILE_RAW) {
    vv_error ("header: autoclear bit 1 (raw external data file) is set but "
              "external data files are not supported");
    return -1;
  }

  c->refcount_order = qcow2_get_be32 (h + QCOW2_HDR_REFCOUNT_ORDER);
  if (c->refcount_order > 6) {
    vv_error ("header: refcount_order %" PRIu32 " out of range (0 to 6)",
              c->refcount_order);
    return -1;
  }

  nb_snapshots = qcow2_get_be32 (h + QCOW2_HDR_NB_SNAPSHOTS);
  if (nb_snapshots != 0) {
    vv_error ("qcow2 images with internal snapshots are not supported "
              "(nb_snapshots %" PRIu32 ")", nb_snapshots);
    return -1;
  }

  /* QEMU validates the offset even when there are no snapshots. */
  snapshots_offset = qcow2_get_be64 (h + QCOW2_HDR_SNAPSHOTS_OFFSET);
  if ((snapshots_offset & (c->cluster_size - 1))
      || snapshots_offset > c->file_size) {
    vv_error ("header: snapshot table offset 0x%" PRIx64 " is invalid (not "
              "cluster aligned or past the end of the file)",
              snapshots_offset);
    return -1;
  }

  c->virtual_size = qcow2_get_be64 (h + QCOW2_HDR_SIZE);
  c->l1_size = qcow2_get_be32 (h + QCOW2_HDR_L1_SIZE);
  c->l1_offset = qcow2_get_be64 (h + QCOW2_HDR_L1_TABLE_OFFSET);
  c->rt_offset = qcow2_get_be64 (h + QCOW2_HDR_REFCOUNT_TABLE_OFFSET);
  c->rt_clusters = qcow2_get_be32 (h + QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS);
  c->backing_offset = qcow2_get_be64 (h + QCOW2_HDR_BACKING_FILE_OFFSET);
  c->backing_size = qcow2_get_be32 (h + QCOW2_HDR_BACKING_FILE_SIZE);

  if ((uint64_t) c->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
    vv_error ("header: L1 table of %" PRIu32 " entries is larger than "
              "QEMU's limit of 32 MiB", c->l1_size);
    return -1;
  }
  /* One L1 entry maps cluster_size / 8 clusters. */
  l2_coverage = c->cluster_size << (c->cluster_bits - 3);
  need_l1 = c->virtual_size / l2_coverage
    + (c->virtual_size % l2_coverage != 0);
  if (need_l1 > c->l1_size) {
    vv_error ("header: L1 table of %" PRIu32 " entries is too small for a "
              "virtual size of %" PRIu64 " bytes (%" PRIu64 " needed)",
              c->l1_size, c->virtual_size, need_l1);
    return -1;
  }
  if (c->rt_clusters == 0
      || (uint64_t) c->rt_clusters * c->cluster_size
         > QCOW2_MAX_REFTABLE_BYTES) {
    vv_error ("header: refcount table of %" PRIu32 " clusters is out of "
              "range (1 cluster to 8 MiB)", c->rt_clusters);
    return -1;
  }
  return 0;
}

static char *
dup_name (const uint8_t *p, size_t n, const char *what)
{
  char *s;

  if (memchr (p, '\0', n) != NULL) {
    vv_error ("qcow2 %s contains a NUL byte", what);
    return NULL;
  }
  s = malloc (n + 1);
  if (s == NULL) {
    vv_error_errno (errno, "allocating the qcow2 %s", what);
    return NULL;
  }
  memcpy (s, p, n);
  s[n] = '\0';
  return s;
}

/* Header extensions and the backing file name, all in cluster 0. */
static int
check_cluster0 (struct checker *c)
{
  uint64_t n = c->cluster_size < c->file_size ? c->cluster_size : c->file_size;
  uint64_t pos = c->header_length;
  uint8_t *p = c->cluster;
  unsigned compression;

  if (read_at (c, p, n, 0, "header cluster") == -1)
    return -1;
  /* Only the fixed 104 bytes were required of the file so far. */
  if (c->header_length > n) {
    vv_error ("header: header_length %" PRIu32 " runs past the end of the "
              "file (%" PRIu64 " bytes)", c->header_length, n);
    return -1;
  }

  /* A longer header carries the compression type (0 zlib, 1 zstd); any
   * but zlib must be announced by its incompatible feature bit.
   */
  compression = c->header_length > QCOW2_HDR_V3_LENGTH
    ? p[QCOW2_HDR_COMPRESSION_TYPE] : 0;
  if (compression > 1) {
    vv_error ("header: unknown compression type %u", compression);
    return -1;
  }
  if ((compression != 0) != ((c->incompat & QCOW2_INCOMPAT_COMPRESSION) != 0)) {
    vv_error ("header: compression type %u does not match the compression "
              "type feature bit", compression);
    return -1;
  }

  for (;;) {
    uint32_t type, len;

    if (pos + 8 > n) {
      vv_error ("header extensions run past the end of the header cluster "
                "(no end marker before 0x%" PRIx64 ")", n);
      return -1;
    }
    type = qcow2_get_be32 (p + pos);
    len = qcow2_get_be32 (p + pos + 4);
    /* Like QEMU, judge the length even of the end marker. */
    if (len > n - pos - 8) {
      vv_error ("header extension 0x%08" PRIx32 " at 0x%" PRIx64 " of %"
                PRIu32 " bytes runs past the end of the header cluster",
                type, pos, len);
      return -1;
    }
    if (type == QCOW2_EXT_END)
      break;
    switch (type) {
    case QCOW2_EXT_BACKING_FORMAT:
      if (c->backing_format != NULL) {
        vv_error ("header: more than one backing format extension");
        return -1;
      }
      c->backing_format = dup_name (p + pos + 8, len, "backing format");
      if (c->backing_format == NULL)
        return -1;
      break;
    case QCOW2_EXT_BITMAPS:
      vv_error ("qcow2 images with persistent dirty bitmaps are not "
                "supported");
      return -1;
    case QCOW2_EXT_ENCRYPTION:
      vv_error ("encrypted qcow2 images are not supported");
      return -1;
    case QCOW2_EXT_DATA_FILE:
      vv_error ("qcow2 images with an external data file are not supported");
      return -1;
    default:
      break;            /* feature names and others: informational */
    }
    pos += 8 + ((uint64_t) len + 7) / 8 * 8;
  }

  if (c->backing_offset != 0) {
    if (c->backing_size == 0 || c->backing_size > QCOW2_BACKING_FILE_MAX
        || c->backing_offset >= n || c->backing_size > n - c->backing_offset) {
      vv_error ("header: backing file name at 0x%" PRIx64 " (%" PRIu32
                " bytes) must lie in the header cluster and be 1 to %d bytes",
                c->backing_offset, c->backing_size, QCOW2_BACKING_FILE_MAX);
      return -1;
    }
    c->backing_file = dup_name (p + c->backing_offset, c->backing_size,
                                "backing file name");
    if (c->backing_file == NULL)
      return -1;
  }
  else if (c->backing_format != NULL) {
    vv_error ("header: backing format '%s' given but no backing file",
              c->backing_format);
    return -1;
  }
  return 0;
}

static int
check_l2 (struct checker *c, uint64_t l2_offset)
{
  uint64_t entries = c->cluster_size / 8;
  char what[96];

  if (read_at (c, c->cluster, c->cluster_size, l2_offset, "L2 table") == -1)
    return -1;

  for (uint64_t j = 0; j < entries; j++) {
    uint64_t e = qcow2_get_be64 (c->cluster + j * 8);
    uint64_t host = e & QCOW2_OFFSET_MASK;

    if (e == 0)
      continue;
    if (e & QCOW2_OFLAG_COMPRESSED) {
      vv_error ("L2 entry %" PRIu64 " of L2 table at 0x%" PRIx64 " is a "
                "compressed cluster: compressed qcow2 images are not "
                "supported", j, l2_offset);
      return -1;
    }
    if (e & QCOW2_L2_RESERVED_MASK) {
      vv_error ("L2 entry %" PRIu64 " of L2 table at 0x%" PRIx64 " has "
                "reserved bits set (0x%016" PRIx64 ")", j, l2_offset, e);
      return -1;
    }
    if (host == 0) {
      if (e & QCOW2_OFLAG_ZERO)
        c->zero_clusters++;
      continue;
    }
    snprintf (what, sizeof what, "L2 entry %" PRIu64 " of L2 table at 0x%"
              PRIx64, j, l2_offset);
    if (!(e & QCOW2_OFLAG_COPIED)) {
      vv_error ("%s lacks the COPIED flag but its cluster must have "
                "refcount 1", what);
      return -1;
    }
    if (host >= c->file_size) {
      vv_error ("%s points past the end of the file (0x%" PRIx64 " >= size "
                "0x%" PRIx64 ")", what, host, c->file_size);
      return -1;
    }
    if (use_clusters (c, host, c->cluster_size, what) == -1)
      return -1;
    if (e & QCOW2_OFLAG_ZERO)
      c->zero_clusters++;
    else
      c->data_clusters++;
  }
  return 0;
}

/* The L1 table is read one cluster at a time to keep memory flat. */
static int
check_l1 (struct checker *c)
{
  uint64_t bytes = (uint64_t) c->l1_size * 8;
  uint64_t per_cluster = c->cluster_size / 8;
  _cleanup_free_ uint8_t *chunk = NULL;

  if (bytes == 0)
    return 0;
  if (use_clusters (c, c->l1_offset, bytes, "L1 table") == -1)
    return -1;
  chunk = malloc (c->cluster_size);
  if (chunk == NULL) {
    vv_error_errno (errno, "allocating a qcow2 L1 buffer");
    return -1;
  }
  for (uint64_t i = 0; i < c->l1_size; i += per_cluster) {
    uint64_t n = c->l1_size - i < per_cluster ? c->l1_size - i : per_cluster;

    if (read_at (c, chunk, n * 8, c->l1_offset + i * 8, "L1 table") == -1)
      return -1;
    for (uint64_t k = 0; k < n; k++) {
      uint64_t e = qcow2_get_be64 (chunk + k * 8);
      uint64_t l2 = e & QCOW2_OFFSET_MASK;
      char what[64];

      if (e == 0)
        continue;
      snprintf (what, sizeof what, "L2 table of L1 entry %" PRIu64, i + k);
      if ((e & QCOW2_L1_RESERVED_MASK) || l2 == 0) {
        vv_error ("L1 entry %" PRIu64 " at 0x%" PRIx64 " is invalid "
                  "(0x%016" PRIx64 ")", i + k, c->l1_offset + (i + k) * 8, e);
        return -1;
      }
      if (!(e & QCOW2_OFLAG_COPIED)) {
        vv_error ("L1 entry %" PRIu64 " lacks the COPIED flag but its L2 "
                  "table must have refcount 1", i + k);
        return -1;
      }
      if (use_clusters (c, l2, c->cluster_size, what) == -1
          || check_l2 (c, l2) == -1)
        return -1;
    }
  }
  return 0;
}

static uint64_t
get_refcount (const uint8_t *block, uint32_t order, uint64_t i)
{
  switch (order) {
  case 0: return (block[i / 8] >> (i % 8)) & 1;
  case 1: return (block[i / 4] >> (2 * (i % 4))) & 3;
  case 2: return (block[i / 2] >> (4 * (i % 2))) & 15;
  case 3: return block[i];
  case 4: return qcow2_get_be16 (block + i * 2);
  case 5: return qcow2_get_be32 (block + i * 4);
  default: return qcow2_get_be64 (block + i * 8);
  }
}

/* Compares one refcount block (or a missing one: all zero) with the
 * real uses of the clusters it covers.
 */
static int
compare_refcounts (struct checker *c, uint64_t first, uint64_t n,
                   const uint8_t *block, uint64_t block_offset)
{
  for (uint64_t i = 0; i < n; i++) {
    uint64_t cl = first + i;
    uint64_t rc = block ? get_refcount (block, c->refcount_order, i) : 0;
    uint64_t want = is_used (c, cl) ? 1 : 0;

    if (rc == want)
      continue;
    if (cl >= c->host_clusters)
      vv_error ("refcount block at 0x%" PRIx64 " gives refcount %" PRIu64
                " to host cluster 0x%" PRIx64 " past the end of the file",
                block_offset, rc, cl << c->cluster_bits);
    else if (rc == 0)
      vv_error ("host cluster 0x%" PRIx64 " is in use but its refcount is "
                "0%s", cl << c->cluster_bits,
                block ? "" : " (no refcount block covers it)");
    else if (want == 0)
      vv_error ("host cluster 0x%" PRIx64 " has refcount %" PRIu64 " in the "
                "refcount block at 0x%" PRIx64 " but nothing uses it "
                "(leaked cluster)", cl << c->cluster_bits, rc, block_offset);
    else
      vv_error ("host cluster 0x%" PRIx64 " has refcount %" PRIu64 " in the "
                "refcount block at 0x%" PRIx64 " but is used once",
                cl << c->cluster_bits, rc, block_offset);
    return -1;
  }
  return 0;
}

static int
check_refcounts (struct checker *c)
{
  uint64_t rt_bytes = (uint64_t) c->rt_clusters * c->cluster_size;
  uint64_t rt_entries = rt_bytes / 8;
  uint64_t per_block = (c->cluster_size * 8) >> c->refcount_order;
  uint64_t covered;
  _cleanup_free_ uint8_t *rt = NULL;

  if (use_clusters (c, c->rt_offset, rt_bytes, "refcount table") == -1)
    return -1;
  rt = malloc (rt_bytes);
  if (rt == NULL) {
    vv_error_errno (errno, "allocating the qcow2 refcount table");
    return -1;
  }
  if (read_at (c, rt, rt_bytes, c->rt_offset, "refcount table") == -1)
    return -1;

  /* Refcount blocks are clusters in use too: record them all before
   * comparing any count.
   */
  for (uint64_t k = 0; k < rt_entries; k++) {
    uint64_t e = qcow2_get_be64 (rt + k * 8);
    char what[64];

    if (e == 0)
      continue;
    if (e & QCOW2_REFT_RESERVED_MASK) {
      vv_error ("refcount table entry %" PRIu64 " is not cluster aligned "
                "(0x%016" PRIx64 ")", k, e);
      return -1;
    }
    snprintf (what, sizeof what, "refcount block of refcount table entry %"
              PRIu64, k);
    if (use_clusters (c, e & QCOW2_REFT_OFFSET_MASK, c->cluster_size,
                      what) == -1)
      return -1;
  }

  covered = 0;
  for (uint64_t k = 0; k < rt_entries && covered < c->host_clusters; k++) {
    uint64_t e = qcow2_get_be64 (rt + k * 8) & QCOW2_REFT_OFFSET_MASK;
    uint64_t first = k * per_block;

    if (e != 0 && read_at (c, c->cluster, c->cluster_size, e,
                           "refcount block") == -1)
      return -1;
    if (compare_refcounts (c, first, per_block, e ? c->cluster : NULL,
                           e) == -1)
      return -1;
    covered = first + per_block;
  }
  /* Refcount blocks past the end of the file still must be all zero. */
  for (uint64_t k = covered / per_block; k < rt_entries; k++) {
    uint64_t e = qcow2_get_be64 (rt + k * 8) & QCOW2_REFT_OFFSET_MASK;

    if (e == 0)
      continue;
    if (read_at (c, c->cluster, c->cluster_size, e, "refcount block") == -1
        || compare_refcounts (c, k * per_block, per_block, c->cluster,
                              e) == -1)
      return -1;
  }
  /* Clusters the refcount table does not reach have refcount 0. */
  if (covered < c->host_clusters)
    return compare_refcounts (c, covered, c->host_clusters - covered, NULL, 0);
  return 0;
}

int
vv_qcow2_check (vv_qcow2_read_fn read, void *opaque, uint64_t file_size,
                struct vv_qcow2_info *ret_info)
{
  _cleanup_free_ uint64_t *used = NULL;
  _cleanup_free_ uint8_t *cluster = NULL;
  _cleanup_free_ char *backing_file = NULL;
  _cleanup_free_ char *backing_format = NULL;
  struct checker c = {
    .read = read, .opaque = opaque, .file_size = file_size,
  };
  int r;

  if (check_header (&c) == -1)
    return -1;

  c.host_clusters = (file_size >> c.cluster_bits)
    + ((file_size & (c.cluster_size - 1)) != 0);
  if (c.host_clusters > MAX_HOST_CLUSTERS) {
    vv_error ("qcow2 image of %" PRIu64 " bytes has too many clusters to "
              "check (%" PRIu64 ", limit %" PRIu64 ")", file_size,
              c.host_clusters, MAX_HOST_CLUSTERS);
    return -1;
  }
  used = calloc (c.host_clusters / 64 + 1, sizeof *used);
  cluster = malloc (c.cluster_size);
  if (used == NULL || cluster == NULL) {
    vv_error_errno (errno, "allocating memory to check a qcow2 image");
    return -1;
  }
  c.used = used;
  c.cluster = cluster;

  r = check_cluster0 (&c);
  backing_file = c.backing_file;
  backing_format = c.backing_format;
  if (r == -1)
    return -1;
  test_and_set (c.used, 0);

  if (check_l1 (&c) == -1 || check_refcounts (&c) == -1)
    return -1;

  if (ret_info) {
    *ret_info = (struct vv_qcow2_info) {
      .version = QCOW2_VERSION,
      .cluster_bits = c.cluster_bits,
      .virtual_size = c.virtual_size,
      .backing_file = TAKE_PTR (backing_file),
      .backing_format = TAKE_PTR (backing_format),
      .data_clusters = c.data_clusters,
      .zero_clusters = c.zero_clusters,
    };
  }
  return 0;
}

void
vv_qcow2_info_clear (struct vv_qcow2_info *info)
{
  if (info == NULL)
    return;
  free (info->backing_file);
  free (info->backing_format);
  memset (info, 0, sizeof *info);
}
