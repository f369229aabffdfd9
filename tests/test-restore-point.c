/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading a stored point with ranged, verified reads (src/restore/point.c,
 * ranged.c), through the real file plugin's read handles.
 *
 * A chain as the backup engine stores it (our writer, relative backing
 * names, a sidecar of block digests per image) is laid out under a file
 * target.  The restored disk must read as QEMU reads the top of the
 * chain; only the blocks the point needs are read (a corrupt byte in a
 * cluster an overlay replaced does not matter, one in a needed cluster
 * fails the copy naming the block); and whatever the target holds must
 * agree with the catalog's records (sidecar digest, sizes, backing name,
 * metadata inside metadata_bytes).
 */
#include <config.h>

#include <pthread.h>

#include "qcow2-testlib.h"
#include "restore/point.h"
#include "restore/restore-internal.h"
#include "target/block-digests.h"
#include "util/sha256.h"

#define KiB (UINT64_C (1) << 10)
#define DISK_SIZE (24 * MiB + 64 * KiB * 3)
#define NIMG 3

static char *root;              /* the target's directory */
static const char *ids[NIMG] = { "bk-000000000003", "bk-000000000002",
                                 "bk-000000000001" };   /* top first */
static struct vv_backup_rec recs[NIMG];
static struct vv_disk_rec disks[NIMG];
static struct vv_backup_rec *chain_v[NIMG];
static struct vv_restore_chain chain = { chain_v, NIMG };
static struct vv_target *target;
static char *ref;               /* the point's contents, raw */

#define PREFIX "0b3e2f4c-9d1a-4c47-8f3e-6a1b2c3d4e5f/ch-00000000000a/"

static char *
object_path (size_t k, const char *file)
{
  return tl_pathf ("target/" PREFIX "%s/%s", ids[k], file);
}

/* Writes the sidecar of image k and records it. */
static void
store_digests (size_t k)
{
  char *img = object_path (k, "vda.qcow2"), *side = object_path (k, "vda.blocks");
  struct vv_block_hasher *h = vv_block_hasher_new (VV_BLOCK_SIZE_DEFAULT);
  static uint8_t buf[1 << 20];
  uint8_t *out;
  size_t len;
  ssize_t n;
  int fd = open (img, O_RDONLY | O_CLOEXEC);
  char hex[VV_SHA256_HEX];
  struct vv_sha256 *sh = vv_sha256_new ();

  CHECK (fd >= 0 && h && sh, "open %s", img);
  while ((n = read (fd, buf, sizeof buf)) > 0)
    OK (vv_block_hasher_update (h, buf, n));
  close (fd);
  OK (vv_block_hasher_finish (h, &out, &len));
  CHECK (len == vv_block_digests_len (tl_file_size (img),
                                      VV_BLOCK_SIZE_DEFAULT),
         "sidecar of %zu bytes", len);
  fd = open (side, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK (fd >= 0 && write (fd, out, len) == (ssize_t) len, "write %s", side);
  close (fd);
  vv_sha256_update (sh, out, len);
  vv_sha256_final (sh, hex);
  free (disks[k].blocks_sha256);
  disks[k].blocks_sha256 = vv_strdup (hex);
  free (out);
  vv_block_hasher_free (h);
  vv_sha256_free (sh);
  free (img);
  free (side);
}

/* Image k of the chain from raw (data at marked runs), as the engine
 * writes it, with its record.
 */
static void
store_image (size_t k, const char *raw, struct vv_qcow2_plan *plan)
{
  char *dir = object_path (k, ""), *img = object_path (k, "vda.qcow2");
  struct vv_disk_rec *d = &disks[k];

  OK (vv_mkdir_p (dir, 0755));
  tl_write_image (plan, raw, img);
  d->name = vv_strdup ("vda");
  d->format = vv_strdup ("qcow2");
  d->virtual_size = DISK_SIZE;
  d->stored_bytes = tl_file_size (img);
  d->object = vv_printf (PREFIX "%s/vda.qcow2", ids[k]);
  d->blocks_object = vv_printf (PREFIX "%s/vda.blocks", ids[k]);
  d->block_size = VV_BLOCK_SIZE_DEFAULT;
  /* Our writer puts every data cluster after all metadata. */
  d->metadata_bytes = d->stored_bytes
    - vv_qcow2_plan_data_clusters (plan) * VV_QCOW2_CLUSTER_SIZE;
  d->backing = k + 1 < NIMG ? vv_printf ("../%s/vda.qcow2", ids[k + 1])
                            : NULL;
  store_digests (k);

  recs[k].id = (char *) ids[k];
  recs[k].target = (char *) "t";
  recs[k].status = (char *) "completed";
  recs[k].disks = d;
  recs[k].n_disks = 1;
  recs[k].parent_id = k + 1 < NIMG ? (char *) ids[k + 1] : NULL;
  chain_v[k] = &recs[k];
  free (dir);
  free (img);
}

/* full: 16 MiB of data and the unaligned last clusters; inc1 and inc2
 * rewrite the same 4 MiB (so the point needs none of full's or inc1's
 * copy of it), inc2 also zeroes 1 MiB.
 */
static void
make_chain (void)
{
  char *raw = tl_path ("ref.raw");
  struct vv_qcow2_plan *plan;
  int fd = tl_create_raw (raw, DISK_SIZE);

  tl_fill_random (fd, 0, 16 * MiB);
  tl_fill_random (fd, 24 * MiB, DISK_SIZE - 24 * MiB);
  plan = vv_qcow2_plan_new (DISK_SIZE, NULL, NULL);
  OK (vv_qcow2_plan_mark (plan, 0, 16 * MiB, VV_QCOW2_DATA));
  OK (vv_qcow2_plan_mark (plan, 24 * MiB, DISK_SIZE - 24 * MiB,
                          VV_QCOW2_DATA));
  store_image (2, raw, plan);
  vv_qcow2_plan_free (plan);

  for (size_t k = 2; k-- > 0;) {
    char *backing = vv_printf ("../%s/vda.qcow2", ids[k + 1]);

    tl_fill_random (fd, 4 * MiB, 4 * MiB);
    plan = vv_qcow2_plan_new (DISK_SIZE, backing, "qcow2");
    OK (vv_qcow2_plan_mark (plan, 4 * MiB, 4 * MiB, VV_QCOW2_DATA));
    if (k == 0) {
      tl_fill_zero (fd, 12 * MiB, 1 * MiB);
      OK (vv_qcow2_plan_mark (plan, 12 * MiB, 1 * MiB, VV_QCOW2_ZERO));
    }
    store_image (k, raw, plan);
    vv_qcow2_plan_free (plan);
    free (backing);
  }
  close (fd);
  ref = raw;
}

struct raw_out {
  int fd;
};

static int
raw_sink (void *opaque, uint64_t off, const void *buf, size_t len)
{
  struct raw_out *o = opaque;

  CHECK (off % VV_QCOW2_CLUSTER_SIZE == 0, "piece at %" PRIu64, off);
  if (pwrite (o->fd, buf, len, off) != (ssize_t) len) {
    vv_error_errno (errno, "pwrite");
    return -1;
  }
  return 0;
}

/* Copies the point to a raw file; returns -1 with the error. */
static int
copy_point (const char *out, uint64_t *ret_bytes)
{
  struct vv_point *pt;
  struct vv_progress p = { 0 };
  struct raw_out o = { tl_create_raw (out, DISK_SIZE) };
  uint64_t requests;
  int r;

  r = vv_point_open (target, &chain, &disks[0], "vda of bk-3", &pt);
  if (r == 0) {
    CHECK (vv_point_virtual_size (pt) == DISK_SIZE, "virtual size");
    r = vv_point_copy (pt, raw_sink, &o, &p);
    vv_point_read_stats (pt, ret_bytes, &requests);
    vv_point_close (pt);
  }
  close (o.fd);
  return r;
}

static uint64_t
sidecar_size (size_t k)
{
  char *p = object_path (k, "vda.blocks");
  uint64_t n = tl_file_size (p);

  free (p);
  return n;
}

static uint64_t
total_stored (void)
{
  uint64_t n = 0;

  for (size_t k = 0; k < NIMG; k++)
    n += disks[k].stored_bytes + sidecar_size (k);
  return n;
}

static void
compare_with_top (const char *out)
{
  char *top = object_path (0, "vda.qcow2");

  tl_qemu_compare (top, out);
  free (top);
}

static void
test_copy (void)
{
  char *out = tl_path ("copy.raw");
  uint64_t bytes, need;

  CHECK (vv_point_usable (&chain, &disks[0], "t") == 1, "usable");
  OK (copy_point (out, &bytes));
  compare_with_top (out);
  {
    char *o2;
    /* And what was copied is what QEMU reads from the chain. */
    CHECK (tl_run (&o2, "'%s' compare -f raw -F raw '%s' '%s'",
                   tl_qemu_img (), ref, out) == 0, "matches the reference");
    free (o2);
  }
  /* The point's data (16 MiB + the tail, 4 MiB of it from inc2) and the
   * metadata and digests of three images, not every stored byte.
   */
  need = 16 * MiB + (DISK_SIZE - 24 * MiB);
  for (size_t k = 0; k < NIMG; k++)
    need += disks[k].metadata_bytes + VV_BLOCK_SIZE_DEFAULT
      + sidecar_size (k);
  CHECK (bytes <= need, "read %" PRIu64 " bytes, more than the %" PRIu64
         " the point needs", bytes, need);
  CHECK (bytes + 7 * MiB < total_stored (), "read %" PRIu64 " of %" PRIu64
         " stored bytes", bytes, total_stored ());
  printf ("ok copy: %" PRIu64 " of %" PRIu64 " stored bytes read\n", bytes,
          total_stored ());
  free (out);
}

/* Flips the byte at off of image k's object; again restores it. */
static uint8_t
flip (size_t k, const char *file, uint64_t off)
{
  char *p = object_path (k, file);
  int fd = open (p, O_RDWR | O_CLOEXEC);
  uint8_t b, c;

  CHECK (fd >= 0 && pread (fd, &b, 1, off) == 1, "read %s", p);
  c = b ^ 0x5a;
  CHECK (pwrite (fd, &c, 1, off) == 1, "write %s", p);
  close (fd);
  free (p);
  return b;
}

static void
expect_failure (const char *label, const char *needle)
{
  char *out = tl_path ("fail.raw");
  uint64_t bytes;

  CHECK (copy_point (out, &bytes) == -1, "%s: copied anyway", label);
  CHECK (strstr (vv_get_error (), needle) != NULL,
         "%s: error '%s' lacks '%s'", label, vv_get_error (), needle);
  printf ("ok refused (%s): %s\n", label, vv_get_error ());
  free (out);
}

static void
test_corrupt_blocks (void)
{
  /* full's copy of 4-8 MiB is replaced by inc2: never read, so a
   * changed byte there changes nothing.
   */
  uint64_t skipped = disks[2].metadata_bytes + 5 * MiB + 123;
  uint64_t needed = disks[2].metadata_bytes + 9 * MiB + 7;
  uint64_t bytes;
  char *out = tl_path ("skip.raw");

  flip (2, "vda.qcow2", skipped);
  OK (copy_point (out, &bytes));
  compare_with_top (out);
  printf ("ok a corrupt cluster the point does not need is not read\n");
  flip (2, "vda.qcow2", skipped);

  flip (2, "vda.qcow2", needed);
  expect_failure ("corrupt needed cluster", "is corrupt on target 't': block ");
  flip (2, "vda.qcow2", needed);
  /* Metadata is checked too. */
  flip (1, "vda.qcow2", 70000);
  expect_failure ("corrupt metadata", "vda.qcow2 of backup bk-000000000002");
  flip (1, "vda.qcow2", 70000);
  free (out);
}

static void
test_records_rule (void)
{
  char *good;
  uint64_t m;

  /* The sidecar was altered (or the catalog knows another). */
  flip (1, "vda.blocks", 100);
  expect_failure ("altered sidecar", "block digests of vda.qcow2 of backup "
                  "bk-000000000002");
  flip (1, "vda.blocks", 100);
  good = disks[0].blocks_sha256;
  disks[0].blocks_sha256 = vv_strdup ("00000000000000000000000000000000"
                                      "00000000000000000000000000000000");
  expect_failure ("sidecar digest", "the catalog recorded 0000");
  free (disks[0].blocks_sha256);
  disks[0].blocks_sha256 = good;

  /* Metadata the catalog does not know of. */
  m = disks[1].metadata_bytes;
  disks[1].metadata_bytes = VV_QCOW2_CLUSTER_SIZE;
  expect_failure ("metadata past metadata_bytes", "bytes of metadata the "
                  "backup recorded");
  disks[1].metadata_bytes = m;

  /* Sizes are the catalog's. */
  disks[2].stored_bytes += 1;
  expect_failure ("stored size", "expected");
  disks[2].stored_bytes -= 1;
  disks[1].virtual_size += 65536;
  expect_failure ("virtual size", "the catalog says");
  disks[1].virtual_size -= 65536;

  /* The chain is the catalog's: a header naming another backing file. */
  free (disks[0].backing);
  disks[0].backing = vv_strdup ("../bk-000000000001/vda.qcow2");
  expect_failure ("backing name", "it was altered on the target");
  free (disks[0].backing);
  disks[0].backing = vv_printf ("../%s/vda.qcow2", ids[1]);

  /* Without digests the point is read another way. */
  good = disks[1].blocks_object;
  disks[1].blocks_object = NULL;
  CHECK (vv_point_usable (&chain, &disks[0], "t") == 0, "usable without");
  disks[1].blocks_object = good;
}

/* Random reads at any offset and length give what the reference holds,
 * also from several threads at once.
 */
struct reader_arg {
  struct vv_point *pt;
  int ref_fd;
  uint64_t seed;
  int failed;
};

static void *
random_reads (void *opaque)
{
  struct reader_arg *a = opaque;
  static __thread uint8_t got[600 * 1024], want[600 * 1024];

  for (int i = 0; i < 300; i++) {
    uint64_t z = (a->seed += 0x9e3779b97f4a7c15ULL);
    uint64_t off, len;

    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ULL;
    off = z % DISK_SIZE;
    len = 1 + (z >> 40) % sizeof got;
    if (i % 7 == 0)
      off = off / 4096 * 4096;
    if (len > DISK_SIZE - off)
      len = DISK_SIZE - off;
    if (vv_point_pread (a->pt, got, len, off) == -1
        || pread (a->ref_fd, want, len, off) != (ssize_t) len
        || memcmp (got, want, len) != 0) {
      fprintf (stderr, "pread of %" PRIu64 " bytes at %" PRIu64 ": %s\n",
               len, off, vv_get_error ());
      a->failed = 1;
      break;
    }
  }
  return NULL;
}

static void
test_pread (void)
{
  struct vv_point *pt;
  struct reader_arg a[4];
  pthread_t th[4];
  int ref_fd = open (ref, O_RDONLY | O_CLOEXEC);
  uint64_t bytes, requests, needed = disks[2].metadata_bytes + 9 * MiB;
  uint8_t b[4096];

  CHECK (ref_fd >= 0, "open %s", ref);
  OK (vv_point_open (target, &chain, &disks[0], "vda of bk-3", &pt));
  a[0] = (struct reader_arg) { pt, ref_fd, 1, 0 };
  random_reads (&a[0]);
  CHECK (!a[0].failed, "random reads");
  for (int i = 0; i < 4; i++) {
    a[i] = (struct reader_arg) { pt, ref_fd, 100 + i, 0 };
    CHECK (pthread_create (&th[i], NULL, random_reads, &a[i]) == 0,
           "thread");
  }
  for (int i = 0; i < 4; i++) {
    pthread_join (th[i], NULL);
    CHECK (!a[i].failed, "random reads in thread %d", i);
  }
  vv_point_read_stats (pt, &bytes, &requests);
  printf ("ok 1500 random reads, 1200 of them in 4 threads: %" PRIu64
          " bytes read in %" PRIu64 " requests\n", bytes, requests);
  CHECK (vv_point_pread (pt, b, 2, DISK_SIZE - 1) == -1,
         "a read past the end");
  vv_point_close (pt);

  /* A changed byte fails the read that needs it, and only that one. */
  flip (2, "vda.qcow2", needed);
  OK (vv_point_open (target, &chain, &disks[0], "vda of bk-3", &pt));
  CHECK (vv_point_pread (pt, b, sizeof b, 9 * MiB) == -1
         && strstr (vv_get_error (), "is corrupt on target 't': block") != NULL,
         "a read of the changed block: %s", vv_get_error ());
  printf ("ok a read of a changed block fails: %s\n", vv_get_error ());
  OK (vv_point_pread (pt, b, sizeof b, 1 * MiB));
  vv_point_close (pt);
  flip (2, "vda.qcow2", needed);
  close (ref_fd);
}

/* vv_restore_ranged_produce, both formats: what restore writes. */
static void
test_produce (const char *format)
{
  struct vv_progress p = { 0 };
  struct vv_restore_src s = { .chain = chain, .target = target, .p = &p };
  struct vv_restore_disk w = { .d = &disks[0], .format = format,
                               .staging = tl_dir };
  char *o;

  OK (vv_restore_ranged_produce (&s, &w));
  if (strcmp (format, "qcow2") == 0) {
    tl_qemu_check (w.out);
    CHECK (tl_run (&o, "'%s' compare -f qcow2 -F raw '%s' '%s'",
                   tl_qemu_img (), w.out, ref) == 0, "qcow2 output: %s", o);
  }
  else
    CHECK (tl_run (&o, "'%s' compare -f raw -F raw '%s' '%s'",
                   tl_qemu_img (), w.out, ref) == 0, "raw output: %s", o);
  free (o);
  CHECK (atomic_load (&p.done) == atomic_load (&p.total)
         && atomic_load (&p.total) == 16 * MiB + (DISK_SIZE - 24 * MiB)
                                      - 1 * MiB,
         "progress %" PRIu64 "/%" PRIu64, atomic_load (&p.done),
         atomic_load (&p.total));
  unlink (w.out);
  printf ("ok restored as %s\n", format);
  free (w.out);
}

int
main (void)
{
  char *url;

  tl_setup ();
  root = tl_path ("target");
  OK (vv_mkdir_p (root, 0755));
  make_chain ();
  url = vv_printf ("file://%s", root);
  target = vv_target_open ("t", url, NULL);
  if (target == NULL)
    FAIL ("vv_target_open %s: %s (VIRTVAULT_PLUGIN_PATH is set by make "
          "check)", url, vv_get_error ());
  test_copy ();
  test_corrupt_blocks ();
  test_records_rule ();
  test_pread ();
  test_produce ("qcow2");
  test_produce ("raw");
  vv_target_close (target);
  for (size_t k = 0; k < NIMG; k++) {
    free (disks[k].name);
    free (disks[k].format);
    free (disks[k].object);
    free (disks[k].blocks_object);
    free (disks[k].blocks_sha256);
    free (disks[k].backing);
  }
  free (url);
  free (root);
  free (ref);
  vv_plugins_unload_all ();
  return 0;
}
