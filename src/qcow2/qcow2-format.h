/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* On-disk qcow2 constants shared by the writer and the checker.
 *
 * Everything on disk is big-endian.  Only what virtvault writes or must
 * recognise to refuse is here; see docs/qcow2-writer.md for the layout.
 */
#ifndef VV_QCOW2_FORMAT_H
#define VV_QCOW2_FORMAT_H

#include <stdint.h>
#include <string.h>

#define QCOW2_MAGIC UINT32_C (0x514649fb)       /* "QFI\xfb" */
#define QCOW2_VERSION 3

/* Header field offsets (version 3 header, 104 bytes without the optional
 * compression type byte and its padding).
 */
#define QCOW2_HDR_MAGIC                 0
#define QCOW2_HDR_VERSION               4
#define QCOW2_HDR_BACKING_FILE_OFFSET   8
#define QCOW2_HDR_BACKING_FILE_SIZE     16
#define QCOW2_HDR_CLUSTER_BITS          20
#define QCOW2_HDR_SIZE                  24
#define QCOW2_HDR_CRYPT_METHOD          32
#define QCOW2_HDR_L1_SIZE               36
#define QCOW2_HDR_L1_TABLE_OFFSET       40
#define QCOW2_HDR_REFCOUNT_TABLE_OFFSET 48
#define QCOW2_HDR_REFCOUNT_TABLE_CLUSTERS 56
#define QCOW2_HDR_NB_SNAPSHOTS          60
#define QCOW2_HDR_SNAPSHOTS_OFFSET      64
#define QCOW2_HDR_INCOMPATIBLE          72
#define QCOW2_HDR_COMPATIBLE            80
#define QCOW2_HDR_AUTOCLEAR             88
#define QCOW2_HDR_REFCOUNT_ORDER        96
#define QCOW2_HDR_HEADER_LENGTH         100
#define QCOW2_HDR_V3_LENGTH             104
/* Present when header_length > 104. */
#define QCOW2_HDR_COMPRESSION_TYPE      104

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY            (UINT64_C (1) << 0)
#define QCOW2_INCOMPAT_CORRUPT          (UINT64_C (1) << 1)
#define QCOW2_INCOMPAT_DATA_FILE        (UINT64_C (1) << 2)
#define QCOW2_INCOMPAT_COMPRESSION      (UINT64_C (1) << 3)
#define QCOW2_INCOMPAT_EXTL2            (UINT64_C (1) << 4)

/* Autoclear bit 0: the bitmaps extension is consistent. */
#define QCOW2_AUTOCLEAR_BITMAPS         (UINT64_C (1) << 0)
/* Autoclear bit 1: the external data file is also a valid raw image. */
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW   (UINT64_C (1) << 1)

/* Header extensions: {be32 type, be32 length, data padded to 8}. */
#define QCOW2_EXT_END                   UINT32_C (0x00000000)
#define QCOW2_EXT_BACKING_FORMAT        UINT32_C (0xe2792aca)
#define QCOW2_EXT_FEATURE_NAMES         UINT32_C (0x6803f857)
#define QCOW2_EXT_BITMAPS               UINT32_C (0x23852875)
#define QCOW2_EXT_ENCRYPTION            UINT32_C (0x0537be77)
#define QCOW2_EXT_DATA_FILE             UINT32_C (0x44415441)

/* What QEMU accepts: a longer name is refused when opening the image. */
#define QCOW2_BACKING_FILE_MAX 1023
#define QCOW2_BACKING_FORMAT_MAX 15
/* QEMU's own ceilings on table sizes, so a hostile header cannot make us
 * allocate or read without bound.
 */
#define QCOW2_MAX_L1_BYTES (UINT64_C (32) << 20)
#define QCOW2_MAX_REFTABLE_BYTES (UINT64_C (8) << 20)

/* L1 entry: bits 9-55 are the L2 table offset, bit 63 "refcount is 1". */
#define QCOW2_OFLAG_COPIED      (UINT64_C (1) << 63)
#define QCOW2_OFLAG_COMPRESSED  (UINT64_C (1) << 62)
/* L2 entry bit 0 (version 3): the cluster reads as zeros. */
#define QCOW2_OFLAG_ZERO        UINT64_C (1)
#define QCOW2_OFFSET_MASK       UINT64_C (0x00fffffffffffe00)
#define QCOW2_L1_RESERVED_MASK  UINT64_C (0x7f000000000001ff)
#define QCOW2_L2_RESERVED_MASK  UINT64_C (0x3f000000000001fe)
/* Refcount table entry: bits 9-63 are the refcount block offset. */
#define QCOW2_REFT_OFFSET_MASK  UINT64_C (0xfffffffffffffe00)
#define QCOW2_REFT_RESERVED_MASK UINT64_C (0x1ff)

/* Unaligned big-endian access to buffers read from or written to disk. */
static inline uint64_t
qcow2_get_be64 (const void *p)
{
  const uint8_t *b = p;
  return ((uint64_t) b[0] << 56) | ((uint64_t) b[1] << 48)
    | ((uint64_t) b[2] << 40) | ((uint64_t) b[3] << 32)
    | ((uint64_t) b[4] << 24) | ((uint64_t) b[5] << 16)
    | ((uint64_t) b[6] << 8) | (uint64_t) b[7];
}

static inline uint32_t
qcow2_get_be32 (const void *p)
{
  const uint8_t *b = p;
  return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16)
    | ((uint32_t) b[2] << 8) | (uint32_t) b[3];
}

static inline uint16_t
qcow2_get_be16 (const void *p)
{
  const uint8_t *b = p;
  return (uint16_t) (((unsigned) b[0] << 8) | b[1]);
}

static inline void
qcow2_put_be64 (void *p, uint64_t v)
{
  uint8_t *b = p;
  for (int i = 7; i >= 0; i--) {
    b[i] = (uint8_t) v;
    v >>= 8;
  }
}

static inline void
qcow2_put_be32 (void *p, uint32_t v)
{
  uint8_t *b = p;
  b[0] = (uint8_t) (v >> 24);
  b[1] = (uint8_t) (v >> 16);
  b[2] = (uint8_t) (v >> 8);
  b[3] = (uint8_t) v;
}

static inline void
qcow2_put_be16 (void *p, uint16_t v)
{
  uint8_t *b = p;
  b[0] = (uint8_t) (v >> 8);
  b[1] = (uint8_t) v;
}

#endif
