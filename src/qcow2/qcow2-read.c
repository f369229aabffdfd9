/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading where the guest clusters of a stored image are.
 *
 * Restore flattens a chain itself (src/restore/flatten.c): it needs, for
 * each guest cluster, whether an image holds data for it, reads it as
 * zeros or leaves it to its backing file.  That is one L1 entry and one
 * L2 table at a time, so memory stays one cluster per image however large
 * the disk or its L1 table.  Images reach here only after vv_qcow2_check passed on them;
 * the bounds are checked again anyway, since a wrong offset here would
 * copy the wrong bytes into a restored disk.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "qcow2/qcow2.h"
#include "qcow2/qcow2-format.h"

struct vv_qcow2_reader {
  vv_qcow2_read_fn read;
  void *opaque;
  uint64_t file_size;
  uint64_t virtual_size;
  uint32_t l1_size;
  uint64_t l1_offset;           /* L1 entries are read when needed */
  uint8_t *l2;                  /* one L2 table of scratch */
};

static int
read_at (struct vv_qcow2_reader *r, void *buf, size_t count,
         uint64_t offset, const char *what)
{
  size_t done = 0;

  if (offset > r->file_size || count > r->file_size - offset) {
    vv_error ("qcow2 %s at 0x%" PRIx64 " extends past the end of the file",
              what, offset);
    return -1;
  }
  while (done < count) {
    int64_t n = r->read (r->opaque, (uint8_t *) buf + done, count - done,
                         offset + done);
    if (n < 0) {
      vv_error_prefix ("reading qcow2 %s at 0x%" PRIx64 ": ", what,
                       offset + done);
      return -1;
    }
    if (n == 0) {
      vv_error ("qcow2 %s at 0x%" PRIx64 ": unexpected end of file", what,
                offset);
      return -1;
    }
    done += (size_t) n;
  }
  return 0;
}

int
vv_qcow2_reader_open (vv_qcow2_read_fn read, void *opaque,
                      uint64_t file_size, struct vv_qcow2_reader **ret)
{
  struct vv_qcow2_reader *r;
  uint8_t h[QCOW2_HDR_V3_LENGTH];

  r = calloc (1, sizeof *r);
  if (r == NULL) {
    vv_error_errno (ENOMEM, "reading a qcow2 image");
    return -1;
  }
  r->read = read;
  r->opaque = opaque;
  r->file_size = file_size;
  if (read_at (r, h, sizeof h, 0, "header") == -1)
    goto fail;
  if (qcow2_get_be32 (h + QCOW2_HDR_MAGIC) != QCOW2_MAGIC
      || qcow2_get_be32 (h + QCOW2_HDR_VERSION) != QCOW2_VERSION) {
    vv_error ("not a qcow2 version 3 image");
    goto fail;
  }
  if (qcow2_get_be32 (h + QCOW2_HDR_CLUSTER_BITS) != VV_QCOW2_CLUSTER_BITS) {
    vv_error ("qcow2 images with a cluster size other than %" PRIu64
              " bytes cannot be read (cluster_bits %" PRIu32 ")",
              VV_QCOW2_CLUSTER_SIZE,
              qcow2_get_be32 (h + QCOW2_HDR_CLUSTER_BITS));
    goto fail;
  }
  if (qcow2_get_be64 (h + QCOW2_HDR_INCOMPATIBLE)
      & ~QCOW2_INCOMPAT_COMPRESSION) {
    vv_error ("qcow2 image has incompatible features this reader does not "
              "know (0x%" PRIx64 ")",
              qcow2_get_be64 (h + QCOW2_HDR_INCOMPATIBLE));
    goto fail;
  }
  r->virtual_size = qcow2_get_be64 (h + QCOW2_HDR_SIZE);
  r->l1_size = qcow2_get_be32 (h + QCOW2_HDR_L1_SIZE);
  r->l1_offset = qcow2_get_be64 (h + QCOW2_HDR_L1_TABLE_OFFSET);
  if ((uint64_t) r->l1_size * 8 > QCOW2_MAX_L1_BYTES
      || r->l1_offset > r->file_size
      || (uint64_t) r->l1_size * 8 > r->file_size - r->l1_offset) {
    vv_error ("qcow2 L1 table of %" PRIu32 " entries at 0x%" PRIx64 " is "
              "too large or extends past the end of the file", r->l1_size,
              r->l1_offset);
    goto fail;
  }
  /* The L1 table is not loaded: a chain of hundreds of images with
   * tables of QEMU's maximum (32 MiB each) would take gigabytes.  Its
   * entries are read one by one, once per window of 512 MiB.
   */
  r->l2 = malloc (VV_QCOW2_CLUSTER_SIZE);
  if (r->l2 == NULL) {
    vv_error_errno (ENOMEM, "reading a qcow2 image");
    goto fail;
  }
  *ret = r;
  return 0;

 fail:
  vv_qcow2_reader_free (r);
  return -1;
}

void
vv_qcow2_reader_free (struct vv_qcow2_reader *r)
{
  if (r == NULL)
    return;
  free (r->l2);
  free (r);
}

uint64_t
vv_qcow2_reader_virtual_size (const struct vv_qcow2_reader *r)
{
  return r->virtual_size;
}

int
vv_qcow2_reader_map (struct vv_qcow2_reader *r, uint64_t l1_index,
                     uint64_t *map)
{
  uint64_t l2_offset = 0;
  uint8_t l1e[8];

  if (l1_index < r->l1_size) {
    if (read_at (r, l1e, sizeof l1e, r->l1_offset + l1_index * 8,
                 "L1 table") == -1)
      return -1;
    l2_offset = qcow2_get_be64 (l1e) & QCOW2_OFFSET_MASK;
  }
  if (l2_offset == 0) {
    memset (map, 0, VV_QCOW2_L2_ENTRIES * sizeof *map);
    return 0;
  }
  if (l2_offset & (VV_QCOW2_CLUSTER_SIZE - 1)) {
    vv_error ("qcow2 L1 entry %" PRIu64 " points to an unaligned L2 table "
              "(0x%" PRIx64 ")", l1_index, l2_offset);
    return -1;
  }
  if (read_at (r, r->l2, VV_QCOW2_CLUSTER_SIZE, l2_offset, "L2 table") == -1)
    return -1;
  for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
    uint64_t e = qcow2_get_be64 (r->l2 + 8 * j);
    uint64_t host = e & QCOW2_OFFSET_MASK;

    if (e & QCOW2_OFLAG_COMPRESSED) {
      vv_error ("qcow2 L2 entry %zu of the table at 0x%" PRIx64 " is a "
                "compressed cluster, which cannot be read", j, l2_offset);
      return -1;
    }
    if (e & QCOW2_OFLAG_ZERO)
      map[j] = VV_QCOW2_MAP_ZERO;
    else if (host == 0)
      map[j] = VV_QCOW2_MAP_UNALLOCATED;
    else if ((host & (VV_QCOW2_CLUSTER_SIZE - 1))
             || host > r->file_size
             || r->file_size - host < VV_QCOW2_CLUSTER_SIZE) {
      vv_error ("qcow2 L2 entry %zu of the table at 0x%" PRIx64 " points "
                "to 0x%" PRIx64 ", which is unaligned or past the end of "
                "the file", j, l2_offset, host);
      return -1;
    }
    else
      map[j] = host;
  }
  return 1;
}
