/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-block digests of a stored object: the sidecar that lets a ranged
 * read be verified without reading the whole object.
 *
 * A backup stores, beside each disk image, an object holding a digest of
 * every block of block_size bytes of the image (the last block may be
 * shorter).  The sidecar's own SHA-256 is recorded in the catalog and the
 * manifest, so a reader that trusts the catalog can check any range of
 * the image by reading the blocks that cover it (docs/storage-format.md,
 * "Block digests").
 *
 * Two kinds of digests:
 *  1 (sha256): the SHA-256 of each block on its own.
 *  2 (sha256-chain): the state of the SHA-256 of the whole object after
 *    each block (its eight 32-bit words, big-endian), and for the last
 *    block the SHA-256 of the whole object.  Block i is checked by
 *    running SHA-256 over it from the state after block i - 1 (the
 *    standard initial state for block 0): it must end in entry i.  The
 *    object's own SHA-256, which a backup computes anyway, so gives every
 *    block digest for free: one pass of hashing instead of two, the
 *    largest CPU cost of a backup.  Forging a block means finding other
 *    bytes that take SHA-256 from one known state to another: a second
 *    preimage of SHA-256.  Backups write this kind.
 *
 * Layout (all integers big-endian):
 *
 *   0   8  magic "VVBLOCKS"
 *   8   4  format version, 1
 *   12  4  kind of digests, 1 or 2 (32 bytes each)
 *   16  4  block_size: a power of two, 64 KiB .. 16 MiB
 *   20  4  reserved, 0
 *   24  8  size of the object described, in bytes
 *   32  8  count of blocks = ceil(size / block_size)
 *   40     count digests of 32 bytes, block 0 first
 *
 * so a sidecar is exactly 40 + 32 * count bytes.
 */
#ifndef VV_TARGET_BLOCK_DIGESTS_H
#define VV_TARGET_BLOCK_DIGESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VV_BLOCKS_MAGIC "VVBLOCKS"
#define VV_BLOCKS_VERSION 1
#define VV_BLOCKS_HASH_SHA256 1
#define VV_BLOCKS_HASH_SHA256_CHAIN 2
#define VV_BLOCKS_HEADER_LEN 40
#define VV_BLOCK_DIGEST_LEN 32
#define VV_BLOCK_SIZE_MIN (UINT32_C (64) << 10)
#define VV_BLOCK_SIZE_MAX (UINT32_C (16) << 20)
/* What backups write: four qcow2 clusters.  A restore reads whole blocks,
 * so this bounds how much more it reads than it needs where an overlay
 * replaced some clusters of a block below it; SHA-256 with the CPU's
 * SHA extensions costs the same per byte at this size as at 4 MiB.
 */
#define VV_BLOCK_SIZE_DEFAULT (UINT32_C (256) << 10)

/* The sidecar's size for an object of size bytes; 0 when block_size is
 * not valid.
 */
uint64_t vv_block_digests_len (uint64_t size, uint32_t block_size);
bool vv_block_size_valid (uint32_t block_size);

/* Building a sidecar while an object is written: feed every byte of the
 * object, in order, in pieces of any size.  vv_block_hasher_new makes
 * the kind backups write (sha256-chain).
 */
struct vv_block_hasher;
struct vv_block_hasher *vv_block_hasher_new (uint32_t block_size);
struct vv_block_hasher *vv_block_hasher_new_kind (uint32_t block_size,
                                                  uint32_t kind);
int vv_block_hasher_update (struct vv_block_hasher *h, const void *buf,
                            size_t len);
/* Bytes fed so far. */
uint64_t vv_block_hasher_bytes (const struct vv_block_hasher *h);
uint32_t vv_block_hasher_kind (const struct vv_block_hasher *h);
/* The SHA-256 of every byte fed so far (sha256-chain hashers only, at
 * any time, before or after finish): the object's digest without a
 * second pass.
 */
int vv_block_hasher_sha256 (const struct vv_block_hasher *h,
                            char ret_hex[65]);
/* The sidecar of what was fed (a new buffer of *ret_len bytes).  The
 * hasher can not be fed afterwards.
 */
int vv_block_hasher_finish (struct vv_block_hasher *h, uint8_t **ret_buf,
                            size_t *ret_len);
struct vv_block_hasher *vv_block_hasher_free (struct vv_block_hasher *h);

/* A sidecar read back. */
struct vv_block_digests {
  uint32_t kind;                /* VV_BLOCKS_HASH_* */
  uint32_t block_size;
  uint64_t object_size;
  uint64_t count;
  uint8_t *digests;             /* count * VV_BLOCK_DIGEST_LEN bytes */
};

/* Checks buf (len bytes, read from a target: untrusted even when its
 * sha256 matched, since an old catalog may not know better) and copies the
 * digests into *ret.  It must describe an object of exactly object_size
 * bytes in blocks of block_size (what the catalog recorded).  what names
 * the sidecar in errors.
 */
int vv_block_digests_parse (const void *buf, size_t len,
                            uint64_t object_size, uint32_t block_size,
                            const char *what, struct vv_block_digests *ret);
void vv_block_digests_clear (struct vv_block_digests *d);

/* The blocks [first, last] that cover [offset, offset + len) of the
 * object (len > 0, the range inside the object), and where they start
 * and end.
 */
void vv_block_digests_cover (const struct vv_block_digests *d,
                             uint64_t offset, uint64_t len,
                             uint64_t *ret_start, uint64_t *ret_end);
/* Whether data, which must be the bytes [start, end) of the object with
 * start and end on block boundaries (or end at the object's end), matches
 * the digests.  Returns 0 when it does, else -1 with the error "WHAT:
 * block N (bytes A-B): sha256 is X, expected Y" for the first block that
 * differs (what says what is corrupt, "vda.qcow2 of backup bk-... is
 * corrupt on target 'nas'").
 */
int vv_block_digests_check (const struct vv_block_digests *d,
                            const void *data, uint64_t start, uint64_t end,
                            const char *what);

#endif
