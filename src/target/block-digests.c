/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

/* The sha256-chain kind needs SHA-256's state between blocks, which only
 * OpenSSL's low-level SHA256_CTX shows (deprecated in OpenSSL 3, still
 * there in every 3.x; EVP keeps the state private).  It runs the same
 * code, with the CPU's SHA extensions, as EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "target/block-digests.h"
#include "util/error.h"
#include "util/sha256.h"

/* A sidecar for an object larger than this is refused: 64 TiB of image
 * in the smallest blocks is 32 GiB of digests, far beyond what anyone
 * should hold in memory, and never what a backup writes (it uses the
 * default block size, and a disk is at most 64 TiB: 256 MiB).
 */
#define MAX_DIGESTS_LEN (UINT64_C (256) << 20)

bool
vv_block_size_valid (uint32_t block_size)
{
  return block_size >= VV_BLOCK_SIZE_MIN && block_size <= VV_BLOCK_SIZE_MAX
    && (block_size & (block_size - 1)) == 0;
}

static uint64_t
count_of (uint64_t size, uint32_t block_size)
{
  return size / block_size + (size % block_size != 0);
}

uint64_t
vv_block_digests_len (uint64_t size, uint32_t block_size)
{
  if (!vv_block_size_valid (block_size))
    return 0;
  return VV_BLOCKS_HEADER_LEN + count_of (size, block_size)
    * VV_BLOCK_DIGEST_LEN;
}

static void
put_be32 (uint8_t *p, uint32_t v)
{
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t) v;
}

static void
put_be64 (uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t) v;
}

static uint32_t
get_be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
    | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t
get_be64 (const uint8_t *p)
{
  return (uint64_t) get_be32 (p) << 32 | get_be32 (p + 4);
}

struct vv_block_hasher {
  uint32_t block_size;
  uint32_t kind;
  uint8_t *block;               /* sha256: the block being filled */
  SHA256_CTX chain;             /* sha256-chain: the object's SHA-256 */
  uint32_t fill;                /* bytes of the current block so far */
  uint64_t bytes;
  uint8_t *out;                 /* header + digests so far */
  size_t out_len, out_cap;
  bool failed;
};

struct vv_block_hasher *
vv_block_hasher_new_kind (uint32_t block_size, uint32_t kind)
{
  struct vv_block_hasher *h;

  if (!vv_block_size_valid (block_size)) {
    vv_error ("block size %" PRIu32 " is not a power of two from %" PRIu32
              " to %" PRIu32 " bytes", block_size, VV_BLOCK_SIZE_MIN,
              VV_BLOCK_SIZE_MAX);
    return NULL;
  }
  if (kind != VV_BLOCKS_HASH_SHA256 && kind != VV_BLOCKS_HASH_SHA256_CHAIN) {
    vv_error ("block digests of kind %" PRIu32 " are unknown", kind);
    return NULL;
  }
  h = calloc (1, sizeof *h);
  if (h == NULL || (kind == VV_BLOCKS_HASH_SHA256
                    && (h->block = malloc (block_size)) == NULL)) {
    vv_error_errno (ENOMEM, "hashing blocks");
    vv_block_hasher_free (h);
    return NULL;
  }
  h->block_size = block_size;
  h->kind = kind;
  SHA256_Init (&h->chain);
  h->out_len = VV_BLOCKS_HEADER_LEN;
  return h;
}

struct vv_block_hasher *
vv_block_hasher_new (uint32_t block_size)
{
  return vv_block_hasher_new_kind (block_size, VV_BLOCKS_HASH_SHA256_CHAIN);
}

struct vv_block_hasher *
vv_block_hasher_free (struct vv_block_hasher *h)
{
  if (h) {
    free (h->block);
    free (h->out);
    free (h);
  }
  return NULL;
}

uint32_t
vv_block_hasher_kind (const struct vv_block_hasher *h)
{
  return h->kind;
}

uint64_t
vv_block_hasher_bytes (const struct vv_block_hasher *h)
{
  return h->bytes;
}

/* The state of the object's SHA-256 as 32 bytes, big-endian words. */
static void
chain_state (const SHA256_CTX *c, uint8_t out[VV_BLOCK_DIGEST_LEN])
{
  for (int i = 0; i < 8; i++)
    put_be32 (out + 4 * i, c->h[i]);
}

/* Room for one more entry at h->out + h->out_len. */
static int
reserve (struct vv_block_hasher *h)
{
  if (h->out_len + VV_BLOCK_DIGEST_LEN > h->out_cap) {
    size_t cap = h->out_cap ? h->out_cap * 2 : 64 * VV_BLOCK_DIGEST_LEN;
    uint8_t *n;

    if (cap - VV_BLOCKS_HEADER_LEN > MAX_DIGESTS_LEN) {
      vv_error ("an object this large (%" PRIu64 " bytes) needs more block "
                "digests than %" PRIu64 " MiB", h->bytes,
                MAX_DIGESTS_LEN >> 20);
      return -1;
    }
    n = realloc (h->out, cap);
    if (n == NULL) {
      vv_error_errno (ENOMEM, "hashing blocks");
      return -1;
    }
    h->out = n;
    h->out_cap = cap;
  }
  return 0;
}

/* Appends the digest of len bytes at p (sha256 kind). */
static int
add_digest (struct vv_block_hasher *h, const uint8_t *p, size_t len)
{
  if (reserve (h) == -1 || vv_sha256_digest (p, len, h->out + h->out_len) == -1)
    return -1;
  h->out_len += VV_BLOCK_DIGEST_LEN;
  return 0;
}

/* Feeds the chain, taking a state after every whole block. */
static int
chain_update (struct vv_block_hasher *h, const uint8_t *p, size_t len)
{
  while (len > 0) {
    size_t n = h->block_size - h->fill < len ? h->block_size - h->fill : len;

    SHA256_Update (&h->chain, p, n);
    h->fill += n;
    p += n;
    len -= n;
    if (h->fill == h->block_size) {
      if (reserve (h) == -1)
        return -1;
      chain_state (&h->chain, h->out + h->out_len);
      h->out_len += VV_BLOCK_DIGEST_LEN;
      h->fill = 0;
    }
  }
  return 0;
}

int
vv_block_hasher_sha256 (const struct vv_block_hasher *h, char ret_hex[65])
{
  SHA256_CTX c = h->chain;
  unsigned char md[VV_SHA256_LEN];

  if (h->kind != VV_BLOCKS_HASH_SHA256_CHAIN) {
    vv_error ("block digests of kind %" PRIu32 " do not give the object's "
              "SHA-256", h->kind);
    return -1;
  }
  SHA256_Final (md, &c);
  vv_sha256_to_hex (md, ret_hex);
  return 0;
}

int
vv_block_hasher_update (struct vv_block_hasher *h, const void *buf,
                        size_t len)
{
  const uint8_t *p = buf;

  if (h->failed) {
    vv_error ("hashing blocks failed earlier");
    return -1;
  }
  h->bytes += len;
  if (h->kind == VV_BLOCKS_HASH_SHA256_CHAIN) {
    if (chain_update (h, p, len) == -1)
      goto fail;
    return 0;
  }
  while (len > 0) {
    size_t n;

    /* Whole blocks straight from the caller's buffer, no copy. */
    if (h->fill == 0 && len >= h->block_size) {
      if (add_digest (h, p, h->block_size) == -1)
        goto fail;
      p += h->block_size;
      len -= h->block_size;
      continue;
    }
    n = h->block_size - h->fill;
    if (n > len)
      n = len;
    memcpy (h->block + h->fill, p, n);
    h->fill += n;
    p += n;
    len -= n;
    if (h->fill == h->block_size) {
      if (add_digest (h, h->block, h->block_size) == -1)
        goto fail;
      h->fill = 0;
    }
  }
  return 0;
 fail:
  h->failed = true;
  return -1;
}

int
vv_block_hasher_finish (struct vv_block_hasher *h, uint8_t **ret_buf,
                        size_t *ret_len)
{
  if (h->failed) {
    vv_error ("hashing blocks failed earlier");
    return -1;
  }
  if (h->kind == VV_BLOCKS_HASH_SHA256_CHAIN) {
    SHA256_CTX c = h->chain;

    /* The last entry is the object's SHA-256: in place of the state
     * after a last block that was whole, after the short one otherwise.
     */
    if (h->bytes > 0) {
      if (h->fill > 0) {
        if (reserve (h) == -1)
          return -1;
        h->out_len += VV_BLOCK_DIGEST_LEN;
      }
      SHA256_Final (h->out + h->out_len - VV_BLOCK_DIGEST_LEN, &c);
    }
  }
  else if (h->fill > 0 && add_digest (h, h->block, h->fill) == -1)
    return -1;
  h->fill = 0;
  if (h->out == NULL && (h->out = malloc (VV_BLOCKS_HEADER_LEN)) == NULL) {
    vv_error_errno (ENOMEM, "hashing blocks");
    return -1;
  }
  memcpy (h->out, VV_BLOCKS_MAGIC, 8);
  put_be32 (h->out + 8, VV_BLOCKS_VERSION);
  put_be32 (h->out + 12, h->kind);
  put_be32 (h->out + 16, h->block_size);
  put_be32 (h->out + 20, 0);
  put_be64 (h->out + 24, h->bytes);
  put_be64 (h->out + 32, count_of (h->bytes, h->block_size));
  *ret_buf = h->out;
  *ret_len = h->out_len;
  h->out = NULL;
  h->failed = true;             /* nothing more may be fed */
  return 0;
}

int
vv_block_digests_parse (const void *buf, size_t len, uint64_t object_size,
                        uint32_t block_size, const char *what,
                        struct vv_block_digests *ret)
{
  const uint8_t *p = buf;
  uint64_t want = vv_block_digests_len (object_size, block_size);
  uint64_t count;

  if (want == 0) {
    vv_error ("%s: the catalog records the block size %" PRIu32 ", which "
              "is not a power of two from %" PRIu32 " to %" PRIu32,
              what, block_size, VV_BLOCK_SIZE_MIN, VV_BLOCK_SIZE_MAX);
    return -1;
  }
  if (want - VV_BLOCKS_HEADER_LEN > MAX_DIGESTS_LEN) {
    vv_error ("%s: an object of %" PRIu64 " bytes in blocks of %" PRIu32
              " needs more than %" PRIu64 " MiB of digests", what,
              object_size, block_size, MAX_DIGESTS_LEN >> 20);
    return -1;
  }
  if (len != want) {
    vv_error ("%s is %zu bytes; for an object of %" PRIu64 " bytes in "
              "blocks of %" PRIu32 " it must be %" PRIu64, what, len,
              object_size, block_size, want);
    return -1;
  }
  if (memcmp (p, VV_BLOCKS_MAGIC, 8) != 0
      || get_be32 (p + 8) != VV_BLOCKS_VERSION
      || (get_be32 (p + 12) != VV_BLOCKS_HASH_SHA256
          && get_be32 (p + 12) != VV_BLOCKS_HASH_SHA256_CHAIN)
      || get_be32 (p + 20) != 0) {
    vv_error ("%s is not a version %d sidecar of SHA-256 block digests",
              what, VV_BLOCKS_VERSION);
    return -1;
  }
  count = get_be64 (p + 32);
  if (get_be32 (p + 16) != block_size || get_be64 (p + 24) != object_size
      || count != count_of (object_size, block_size)) {
    vv_error ("%s describes %" PRIu64 " bytes in %" PRIu64 " blocks of %"
              PRIu32 "; the catalog says %" PRIu64 " bytes in blocks of %"
              PRIu32, what, get_be64 (p + 24), count, get_be32 (p + 16),
              object_size, block_size);
    return -1;
  }
  ret->digests = malloc (count ? count * VV_BLOCK_DIGEST_LEN : 1);
  if (ret->digests == NULL) {
    vv_error_errno (ENOMEM, "reading %s", what);
    return -1;
  }
  memcpy (ret->digests, p + VV_BLOCKS_HEADER_LEN,
          count * VV_BLOCK_DIGEST_LEN);
  ret->kind = get_be32 (p + 12);
  ret->block_size = block_size;
  ret->object_size = object_size;
  ret->count = count;
  return 0;
}

void
vv_block_digests_clear (struct vv_block_digests *d)
{
  free (d->digests);
  memset (d, 0, sizeof *d);
}

void
vv_block_digests_cover (const struct vv_block_digests *d, uint64_t offset,
                        uint64_t len, uint64_t *ret_start, uint64_t *ret_end)
{
  uint64_t bs = d->block_size;
  uint64_t end = offset + len;

  *ret_start = offset / bs * bs;
  end = end % bs ? end + (bs - end % bs) : end;
  *ret_end = end < d->object_size ? end : d->object_size;
}

/* Runs SHA-256 over block i (n bytes at p) from the state after block
 * i - 1; md is the state after it, or for the last block the final
 * digest.
 */
static void
chain_block (const struct vv_block_digests *d, uint64_t i, const uint8_t *p,
             uint64_t n, unsigned char md[VV_SHA256_LEN])
{
  SHA256_CTX c;

  SHA256_Init (&c);
  if (i > 0) {
    const uint8_t *prev = d->digests + (i - 1) * VV_BLOCK_DIGEST_LEN;
    uint64_t bits = i * (uint64_t) d->block_size * 8;

    for (int k = 0; k < 8; k++)
      c.h[k] = get_be32 (prev + 4 * k);
    c.Nl = (SHA_LONG) bits;
    c.Nh = (SHA_LONG) (bits >> 32);
  }
  SHA256_Update (&c, p, n);
  if (i + 1 == d->count)
    SHA256_Final (md, &c);
  else
    chain_state (&c, md);
}

int
vv_block_digests_check (const struct vv_block_digests *d, const void *data,
                        uint64_t start, uint64_t end, const char *what)
{
  uint64_t bs = d->block_size;
  const uint8_t *p = data;

  if (start % bs || start > end || end > d->object_size
      || (end % bs && end != d->object_size)) {
    vv_error ("%s: bytes %" PRIu64 "-%" PRIu64 " are not whole blocks of "
              "%" PRIu64 " bytes", what, start, end, bs);
    return -1;
  }
  for (uint64_t off = start; off < end; off += bs) {
    uint64_t n = end - off < bs ? end - off : bs;
    uint64_t i = off / bs;
    unsigned char md[VV_SHA256_LEN];

    if (d->kind == VV_BLOCKS_HASH_SHA256_CHAIN)
      chain_block (d, i, p + (off - start), n, md);
    else if (vv_sha256_digest (p + (off - start), n, md) == -1)
      return -1;
    if (memcmp (md, d->digests + i * VV_BLOCK_DIGEST_LEN,
                VV_BLOCK_DIGEST_LEN) != 0) {
      char got[VV_SHA256_HEX], want[VV_SHA256_HEX];

      vv_sha256_to_hex (md, got);
      vv_sha256_to_hex (d->digests + i * VV_BLOCK_DIGEST_LEN, want);
      vv_error ("%s: block %" PRIu64 " (bytes %" PRIu64 "-%"
                PRIu64 "): sha256 is %s, expected %s", what, i, off,
                off + n, got, want);
      return -1;
    }
  }
  return 0;
}
