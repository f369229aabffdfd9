/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Block digests (src/target/block-digests.h): sidecars built while an
 * object streams in pieces of any size round trip at every awkward size,
 * in both kinds: per-block digests match SHA-256 computed independently
 * per block, and the chain's last entry the object's SHA-256; parse
 * refuses sidecars that lie about any field, check finds a flipped byte
 * and refuses ranges that are not whole blocks, cover rounds to blocks.
 */
#include <config.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target/block-digests.h"
#include "util/error.h"
#include "util/sha256.h"

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n  last error: %s\n",  \
               __FILE__, __LINE__, #cond, vv_get_error ());             \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

/* A call that must fail with a message containing what. */
#define CHECK_ERR(cond, what)                                           \
  do {                                                                  \
    vv_clear_error ();                                                  \
    CHECK (cond);                                                       \
    if (strstr (vv_get_error (), (what)) == NULL) {                     \
      fprintf (stderr, "%s:%d: error \"%s\" lacks \"%s\"\n", __FILE__,  \
               __LINE__, vv_get_error (), (what));                      \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

static uint32_t
be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
    | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t
be64 (const uint8_t *p)
{
  return (uint64_t) be32 (p) << 32 | be32 (p + 4);
}

static void
set_be32 (uint8_t *p, uint32_t v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static void
set_be64 (uint8_t *p, uint64_t v)
{
  set_be32 (p, v >> 32);
  set_be32 (p + 4, (uint32_t) v);
}

/* Deterministic data: every block differs. */
static uint8_t *
make_data (size_t size)
{
  uint8_t *d = malloc (size ? size : 1);
  uint32_t x = 2463534242u;

  CHECK (d);
  for (size_t i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d[i] = (uint8_t) x;
  }
  return d;
}

/* The hex digest of len bytes through the streaming hasher, a code path
 * apart from the one-shot digest the block hasher uses.
 */
static void
stream_hex (const uint8_t *p, size_t len, char hex[VV_SHA256_HEX])
{
  struct vv_sha256 *h = vv_sha256_new ();

  CHECK (h);
  /* In two pieces, so the streaming really streams. */
  vv_sha256_update (h, p, len / 3);
  vv_sha256_update (h, p + len / 3, len - len / 3);
  vv_sha256_final (h, hex);
  vv_sha256_free (h);
}

/* The sidecar of data (size bytes) fed in pieces of the sizes in steps
 * (cycled; 0 ends the list).
 */
static void
build_kind (const uint8_t *data, uint64_t size, uint32_t bs, uint32_t kind,
            const size_t *steps, uint8_t **ret, size_t *ret_len,
            char ret_hex[VV_SHA256_HEX])
{
  struct vv_block_hasher *h = vv_block_hasher_new_kind (bs, kind);
  uint64_t off = 0;
  size_t k = 0;

  CHECK (h);
  while (off < size) {
    size_t n = steps[k];

    if (n == 0) {
      k = 0;
      n = steps[0];
    }
    k++;
    if (n > size - off)
      n = size - off;
    CHECK (vv_block_hasher_update (h, data + off, n) == 0);
    off += n;
    CHECK (vv_block_hasher_bytes (h) == off);
  }
  /* Empty pieces are no-ops. */
  CHECK (vv_block_hasher_update (h, data, 0) == 0);
  CHECK (vv_block_hasher_finish (h, ret, ret_len) == 0);
  /* The chain gives the object's SHA-256 too, also after finish. */
  if (kind == VV_BLOCKS_HASH_SHA256_CHAIN)
    CHECK (vv_block_hasher_sha256 (h, ret_hex) == 0);
  else
    CHECK_ERR (vv_block_hasher_sha256 (h, ret_hex) == -1, "kind 1");
  /* Nothing more may be fed or finished. */
  CHECK_ERR (vv_block_hasher_update (h, data, 1) == -1, "failed earlier");
  vv_block_hasher_free (h);
}

/* The kind backups write. */
static void
build (const uint8_t *data, uint64_t size, uint32_t bs,
       const size_t *steps, uint8_t **ret, size_t *ret_len)
{
  char hex[VV_SHA256_HEX];

  build_kind (data, size, bs, VV_BLOCKS_HASH_SHA256_CHAIN, steps, ret,
              ret_len, hex);
}

static void
round_trip_kind (uint64_t size, uint32_t bs, uint32_t kind,
                 const size_t *steps)
{
  uint8_t *data = make_data (size);
  uint8_t *sc;
  size_t len;
  uint64_t count = size / bs + (size % bs != 0);
  struct vv_block_digests d;
  char whole[VV_SHA256_HEX], from_chain[VV_SHA256_HEX];

  build_kind (data, size, bs, kind, steps, &sc, &len, from_chain);
  CHECK (len == VV_BLOCKS_HEADER_LEN + count * VV_BLOCK_DIGEST_LEN);
  CHECK (len == vv_block_digests_len (size, bs));
  CHECK (memcmp (sc, "VVBLOCKS", 8) == 0);
  CHECK (be32 (sc + 8) == 1 && be32 (sc + 12) == kind && be32 (sc + 16) == bs
         && be32 (sc + 20) == 0 && be64 (sc + 24) == size
         && be64 (sc + 32) == count);
  stream_hex (data, size, whole);
  if (kind == VV_BLOCKS_HASH_SHA256_CHAIN) {
    char last[VV_SHA256_HEX];

    /* The object's SHA-256, computed apart, is the last entry and what
     * the hasher gives.
     */
    CHECK (strcmp (whole, from_chain) == 0);
    if (count > 0) {
      vv_sha256_to_hex (sc + len - VV_BLOCK_DIGEST_LEN, last);
      CHECK (strcmp (whole, last) == 0);
    }
  }
  for (uint64_t i = 0; kind == VV_BLOCKS_HASH_SHA256 && i < count; i++) {
    uint64_t n = size - i * bs < bs ? size - i * bs : bs;
    char want[VV_SHA256_HEX], got[VV_SHA256_HEX];

    stream_hex (data + i * bs, n, want);
    vv_sha256_to_hex (sc + VV_BLOCKS_HEADER_LEN + i * VV_BLOCK_DIGEST_LEN,
                      got);
    CHECK (strcmp (want, got) == 0);
  }

  CHECK (vv_block_digests_parse (sc, len, size, bs, "vda.blocks", &d) == 0);
  CHECK (d.block_size == bs && d.object_size == size && d.count == count
         && d.kind == kind);
  CHECK (vv_block_digests_check (&d, data, 0, size, "vda.qcow2") == 0);
  /* Any whole-block range inside, and the empty one at the end. */
  if (count >= 3)
    CHECK (vv_block_digests_check (&d, data + bs, bs, 2 * (uint64_t) bs,
                                   "vda.qcow2") == 0);
  if (count >= 1)
    CHECK (vv_block_digests_check (&d, data + (count - 1) * bs,
                                   (count - 1) * bs, size, "vda.qcow2")
           == 0);
  CHECK (vv_block_digests_check (&d, data, size - size % bs, size - size % bs,
                                 "vda.qcow2") == 0);
  /* A changed byte in any block fails that block (for the chain, also
   * when only the entries after it are looked at).
   */
  for (uint64_t i = 0; i < count; i++) {
    uint64_t at = i * bs + (size - i * bs < bs ? (size - i * bs) / 2 : bs / 2);
    uint64_t end = (i + 1) * bs < size ? (i + 1) * bs : size;

    data[at] ^= 0x40;
    CHECK_ERR (vv_block_digests_check (&d, data + i * bs, i * bs, end,
                                       "vda.qcow2") == -1, ": block ");
    data[at] ^= 0x40;
  }
  vv_block_digests_clear (&d);
  CHECK (d.digests == NULL && d.count == 0);
  free (sc);
  free (data);
}

static void
round_trip (uint64_t size, uint32_t bs, const size_t *steps)
{
  round_trip_kind (size, bs, VV_BLOCKS_HASH_SHA256, steps);
  round_trip_kind (size, bs, VV_BLOCKS_HASH_SHA256_CHAIN, steps);
}

static void
test_round_trips (void)
{
  const uint32_t bs = VV_BLOCK_SIZE_MIN;
  static const size_t one[] = { 1, 0 };
  static const size_t whole[] = { 1 << 20, 0 };
  /* Pieces that straddle block boundaries in every way: a byte, a block
   * less one, exactly a block, three blocks and a bit.
   */
  static const size_t uneven[] = { 1, 65535, 65536, 3 * 65536 + 7, 100,
                                   131071, 0 };
  uint8_t *sc;
  size_t len;

  round_trip (0, bs, whole);
  round_trip (1, bs, one);
  round_trip (bs, bs, whole);
  round_trip (bs, bs, uneven);
  round_trip (bs + 1, bs, whole);
  round_trip (bs + 1, bs, uneven);
  round_trip (37 * (uint64_t) bs + 12345, bs, uneven);
  round_trip (37 * (uint64_t) bs, bs, uneven);
  round_trip (5 * (uint64_t) VV_BLOCK_SIZE_DEFAULT + 3,
              VV_BLOCK_SIZE_DEFAULT, uneven);
  round_trip (2 * (uint64_t) bs + 5, bs, one);

  /* A known vector: the one block of "a". */
  {
    struct vv_block_hasher *h = vv_block_hasher_new (VV_BLOCK_SIZE_DEFAULT);
    char hex[VV_SHA256_HEX];

    CHECK (h && vv_block_hasher_update (h, "a", 1) == 0);
    CHECK (vv_block_hasher_finish (h, &sc, &len) == 0);
    CHECK (len == 72);
    vv_sha256_to_hex (sc + 40, hex);
    CHECK (strcmp (hex, "ca978112ca1bbdcafac231b39a23dc4d"
                   "a786eff8147c4e72b9807785afee48bb") == 0);
    free (sc);
    vv_block_hasher_free (h);
  }

  /* Block sizes a hasher refuses. */
  CHECK_ERR (vv_block_hasher_new (0) == NULL, "not a power of two");
  CHECK_ERR (vv_block_hasher_new (32768) == NULL, "not a power of two");
  CHECK_ERR (vv_block_hasher_new (65537) == NULL, "not a power of two");
  CHECK_ERR (vv_block_hasher_new (3 << 16) == NULL, "not a power of two");
  CHECK_ERR (vv_block_hasher_new (32 << 20) == NULL, "not a power of two");
  CHECK (vv_block_hasher_free (NULL) == NULL);
  CHECK (vv_block_size_valid (VV_BLOCK_SIZE_MIN)
         && vv_block_size_valid (VV_BLOCK_SIZE_MAX)
         && vv_block_size_valid (VV_BLOCK_SIZE_DEFAULT)
         && !vv_block_size_valid (VV_BLOCK_SIZE_MAX * 2)
         && !vv_block_size_valid (VV_BLOCK_SIZE_MIN / 2));
  CHECK (vv_block_digests_len (0, VV_BLOCK_SIZE_DEFAULT) == 40);
  CHECK (vv_block_digests_len (1, 1000) == 0);
  CHECK (vv_block_digests_len (262144 * 3 + 1, VV_BLOCK_SIZE_DEFAULT)
         == 40 + 4 * 32);
}

/* Parses a copy of sc (len bytes) changed by the caller; must fail with
 * a message containing what.
 */
static void
refuse (const uint8_t *sc, size_t len, uint64_t size, uint32_t bs,
        const char *what)
{
  struct vv_block_digests d = { 0 };

  CHECK_ERR (vv_block_digests_parse (sc, len, size, bs, "vda.blocks", &d)
             == -1, what);
  CHECK_ERR (vv_block_digests_parse (sc, len, size, bs, "vda.blocks", &d)
             == -1, "vda.blocks");
  CHECK (d.digests == NULL);
}

static void
test_hostile (void)
{
  const uint32_t bs = VV_BLOCK_SIZE_MIN;
  const uint64_t size = 4 * (uint64_t) bs + 100;
  static const size_t whole[] = { 1 << 20, 0 };
  uint8_t *data = make_data (size);
  uint8_t *sc, *bad;
  size_t len;

  build (data, size, bs, whole, &sc, &len);
  bad = malloc (len + 64);
  CHECK (bad);

#define MUTATE(stmt, want)                      \
  do {                                          \
    memcpy (bad, sc, len);                      \
    stmt;                                       \
    refuse (bad, len, size, bs, want);          \
  } while (0)
  MUTATE (bad[0] = 'W', "not a version 1 sidecar");
  MUTATE (bad[7] ^= 1, "not a version 1 sidecar");
  MUTATE (set_be32 (bad + 8, 2), "not a version 1 sidecar");
  MUTATE (set_be32 (bad + 8, 0), "not a version 1 sidecar");
  MUTATE (set_be32 (bad + 12, 3), "not a version 1 sidecar");
  MUTATE (set_be32 (bad + 12, 0), "not a version 1 sidecar");
  MUTATE (set_be32 (bad + 20, 1), "not a version 1 sidecar");
  MUTATE (bad[23] = 0x80, "not a version 1 sidecar");
  /* The header's own block size, object size or count disagreeing with
   * what the catalog says, with the length still right.
   */
  MUTATE (set_be32 (bad + 16, 2 * bs), "the catalog says");
  MUTATE (set_be32 (bad + 16, 0), "the catalog says");
  MUTATE (set_be64 (bad + 24, size + 1), "the catalog says");
  MUTATE (set_be64 (bad + 24, size - 101), "the catalog says");
  MUTATE (set_be64 (bad + 32, 4), "the catalog says");
  MUTATE (set_be64 (bad + 32, UINT64_MAX), "the catalog says");
#undef MUTATE

  /* Lengths: truncated anywhere, one digest short or long, one byte
   * over.
   */
  memcpy (bad, sc, len);
  refuse (bad, 0, size, bs, "is 0 bytes");
  refuse (bad, 39, size, bs, "is 39 bytes");
  refuse (bad, 40, size, bs, "is 40 bytes");
  refuse (bad, len - 1, size, bs, "must be");
  refuse (bad, len - 32, size, bs, "must be");
  memset (bad + len, 0, 64);
  refuse (bad, len + 1, size, bs, "must be");
  refuse (bad, len + 32, size, bs, "must be");

  /* What the catalog says disagreeing with an intact sidecar. */
  refuse (sc, len, size + 1, bs, "the catalog says");
  refuse (sc, len, size - 1, bs, "the catalog says");
  refuse (sc, len, size + bs, bs, "must be");
  refuse (sc, len, size, 2 * bs, "must be");
  refuse (sc, len, size, 0, "not a power of two");
  refuse (sc, len, size, 100000, "not a power of two");
  refuse (sc, len, size, 32 << 20, "not a power of two");
  /* An object too large for its digests to be held: refused before the
   * length is even compared.
   */
  refuse (sc, len, UINT64_C (1) << 50, bs, "MiB of digests");
  refuse (sc, len, UINT64_MAX, bs, "MiB of digests");

  free (bad);
  free (sc);
  free (data);
}

static void
test_check (void)
{
  const uint32_t bs = VV_BLOCK_SIZE_MIN;
  /* Six blocks, the last one 777 bytes. */
  const uint64_t size = 5 * (uint64_t) bs + 777;
  static const size_t whole[] = { 1 << 20, 0 };
  uint8_t *data = make_data (size);
  uint8_t *sc;
  size_t len;
  struct vv_block_digests d;

  build (data, size, bs, whole, &sc, &len);
  CHECK (vv_block_digests_parse (sc, len, size, bs, "vda.blocks", &d) == 0);
  CHECK (d.count == 6);

  /* A byte flipped in the middle of block 2. */
  data[2 * bs + bs / 2] ^= 0x40;
  CHECK_ERR (vv_block_digests_check (&d, data, 0, size, "vda.qcow2") == -1,
             "vda.qcow2: block 2 (bytes 131072-196608)");
  CHECK_ERR (vv_block_digests_check (&d, data + 2 * bs, 2 * bs, 3 * bs,
                                     "vda.qcow2") == -1, "block 2");
  /* The blocks around it still check. */
  CHECK (vv_block_digests_check (&d, data, 0, 2 * bs, "vda.qcow2") == 0);
  CHECK (vv_block_digests_check (&d, data + 3 * bs, 3 * bs, size,
                                 "vda.qcow2") == 0);
  data[2 * bs + bs / 2] ^= 0x40;

  /* The last byte of the short last block. */
  data[size - 1] ^= 1;
  CHECK_ERR (vv_block_digests_check (&d, data, 0, size, "vda.qcow2") == -1,
             "block 5 (bytes 327680-328457)");
  CHECK_ERR (vv_block_digests_check (&d, data + 5 * bs, 5 * bs, size,
                                     "vda.qcow2") == -1, "block 5");
  data[size - 1] ^= 1;
  CHECK (vv_block_digests_check (&d, data, 0, size, "vda.qcow2") == 0);

  /* A digest changed in the sidecar is as wrong as the data. */
  d.digests[3 * VV_BLOCK_DIGEST_LEN] ^= 0xff;
  CHECK_ERR (vv_block_digests_check (&d, data, 0, size, "vda.qcow2") == -1,
             "block 3");
  d.digests[3 * VV_BLOCK_DIGEST_LEN] ^= 0xff;

  /* Ranges that are not whole blocks. */
  CHECK_ERR (vv_block_digests_check (&d, data + 1, 1, bs, "vda.qcow2") == -1,
             "are not whole blocks");
  CHECK_ERR (vv_block_digests_check (&d, data, 0, bs - 1, "vda.qcow2") == -1,
             "are not whole blocks");
  CHECK_ERR (vv_block_digests_check (&d, data, 0, size - 1, "vda.qcow2")
             == -1, "are not whole blocks");
  CHECK_ERR (vv_block_digests_check (&d, data, 0, size + 1, "vda.qcow2")
             == -1, "are not whole blocks");
  CHECK_ERR (vv_block_digests_check (&d, data, 6 * bs, 6 * bs, "vda.qcow2")
             == -1, "are not whole blocks");
  CHECK_ERR (vv_block_digests_check (&d, data, 2 * bs, bs, "vda.qcow2")
             == -1, "are not whole blocks");

  /* cover: the whole blocks around a range, the last one cut at the
   * object's end.
   */
  {
    uint64_t s, e;

    vv_block_digests_cover (&d, 0, 1, &s, &e);
    CHECK (s == 0 && e == bs);
    vv_block_digests_cover (&d, 0, bs, &s, &e);
    CHECK (s == 0 && e == bs);
    vv_block_digests_cover (&d, 0, bs + 1, &s, &e);
    CHECK (s == 0 && e == 2 * bs);
    vv_block_digests_cover (&d, bs - 1, 2, &s, &e);
    CHECK (s == 0 && e == 2 * bs);
    vv_block_digests_cover (&d, bs, bs, &s, &e);
    CHECK (s == bs && e == 2 * bs);
    vv_block_digests_cover (&d, 3 * bs + 5, 10, &s, &e);
    CHECK (s == 3 * bs && e == 4 * bs);
    vv_block_digests_cover (&d, 5 * bs, 777, &s, &e);
    CHECK (s == 5 * bs && e == size);
    vv_block_digests_cover (&d, size - 1, 1, &s, &e);
    CHECK (s == 5 * bs && e == size);
    vv_block_digests_cover (&d, 4 * bs + 1, bs, &s, &e);
    CHECK (s == 4 * bs && e == size);
    vv_block_digests_cover (&d, 0, size, &s, &e);
    CHECK (s == 0 && e == size);
    /* What cover returns, check accepts. */
    vv_block_digests_cover (&d, 2 * bs + 9, 3 * bs, &s, &e);
    CHECK (vv_block_digests_check (&d, data + s, s, e, "vda.qcow2") == 0);
  }

  vv_block_digests_clear (&d);
  free (sc);
  free (data);
}

int
main (void)
{
  test_round_trips ();
  test_hostile ();
  test_check ();
  printf ("test-block-digests: ok\n");
  return 0;
}
