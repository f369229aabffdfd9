/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qcow2 checker: our images and the images qemu-img makes (several
 * cluster sizes and refcount widths, with and without a backing file, with
 * zero clusters) pass with the right info; what we do not support is
 * refused by name; corrupted copies fail with a message saying what is
 * wrong and where.
 */
#include <config.h>

#include "qcow2-testlib.h"
#include "qcow2/qcow2-format.h"

#define CS VV_QCOW2_CLUSTER_SIZE

struct extent {
  uint64_t offset, length;
};

/* 4 KiB aligned so qemu-img convert allocates exactly the clusters they
 * touch, whatever the cluster size from 4 KiB up.
 */
static const struct extent data_ext[] = {
  { 0, 8192 },
  { 1 * MiB + 4096, 4096 },
  { 5 * MiB - 4096, 200 * 1024 },
  { 40 * MiB, 3 * MiB },
  { 64 * MiB - 4096, 4096 },
};
#define N_EXT (sizeof data_ext / sizeof data_ext[0])
#define RAW_SIZE (64 * MiB)

static char *raw_path;

static uint64_t
clusters_touched (uint64_t cluster_size)
{
  uint64_t n = 0, last = UINT64_MAX;

  for (size_t i = 0; i < N_EXT; i++)
    for (uint64_t c = data_ext[i].offset / cluster_size;
         c <= (data_ext[i].offset + data_ext[i].length - 1) / cluster_size;
         c++)
      if (c != last) {
        n++;
        last = c;
      }
  return n;
}

static void
make_raw (void)
{
  int fd;

  raw_path = tl_path ("source.raw");
  fd = tl_create_raw (raw_path, RAW_SIZE);
  for (size_t i = 0; i < N_EXT; i++)
    tl_fill_random (fd, data_ext[i].offset, data_ext[i].length);
  close (fd);
}

/* Must pass; returns the info for the caller to look at. */
static void
expect_pass (const char *path, struct vv_qcow2_info *info)
{
  if (tl_check_file (path, info, NULL) == -1)
    FAIL ("vv_qcow2_check %s: %s", path, vv_get_error ());
}

static void
expect_fail (const char *what, const char *path, const char *fragment)
{
  struct vv_qcow2_info info = { .virtual_size = 12345 };

  if (tl_check_file (path, &info, NULL) == 0)
    FAIL ("%s: vv_qcow2_check accepted %s", what, path);
  CHECK (info.virtual_size == 12345, "%s: info touched on failure", what);
  if (strstr (vv_get_error (), fragment) == NULL)
    FAIL ("%s: error \"%s\" does not contain \"%s\"", what, vv_get_error (),
          fragment);
  printf ("ok %-34s -> %s\n", what, vv_get_error ());
}

static void
qemu_img_ok (const char *fmt_args, const char *a, const char *b)
{
  char *out;
  int r = tl_run (&out, "'%s' %s '%s' %s%s%s", tl_qemu_img (), fmt_args, a,
                  b ? "'" : "", b ? b : "", b ? "'" : "");
  if (r != 0)
    FAIL ("qemu-img %s %s %s (exit %d):\n%s", fmt_args, a, b ? b : "", r,
          out);
  free (out);
}

static void
test_qemu_images (void)
{
  struct vv_qcow2_info info = { 0 };
  char *p, *base, *top;

  /* Empty image from qemu-img create. */
  p = tl_path ("created.qcow2");
  qemu_img_ok ("create -q -f qcow2", p, "100M");
  expect_pass (p, &info);
  CHECK (info.virtual_size == 100 * MiB && info.data_clusters == 0
         && info.cluster_bits == 16 && info.backing_file == NULL,
         "created: info");
  vv_qcow2_info_clear (&info);
  free (p);

  /* Converted with data, default cluster size. */
  base = tl_path ("converted.qcow2");
  qemu_img_ok ("convert -q -f raw -O qcow2", raw_path, base);
  expect_pass (base, &info);
  CHECK (info.virtual_size == RAW_SIZE
         && info.data_clusters == clusters_touched (CS),
         "converted: %" PRIu64 " data clusters, expected %" PRIu64,
         info.data_clusters, clusters_touched (CS));
  vv_qcow2_info_clear (&info);
  printf ("ok qemu-img create and convert\n");

  /* An overlay of it, then zero and data writes into the overlay. */
  top = tl_path ("overlay.qcow2");
  {
    char *out;
    if (tl_run (&out, "cd '%s' && '%s' create -q -f qcow2 -b converted.qcow2 "
                "-F qcow2 overlay.qcow2", tl_dir, tl_qemu_img ()) != 0)
      FAIL ("qemu-img create overlay:\n%s", out);
    free (out);
  }
  expect_pass (top, &info);
  CHECK (info.backing_file && strcmp (info.backing_file, "converted.qcow2") == 0
         && info.backing_format && strcmp (info.backing_format, "qcow2") == 0
         && info.data_clusters == 0 && info.virtual_size == RAW_SIZE,
         "overlay: backing '%s' format '%s'", info.backing_file,
         info.backing_format);
  vv_qcow2_info_clear (&info);

  tl_require (tl_qemu_io ());
  {
    char *out;
    if (tl_run (&out, "'%s' -f qcow2 -c 'write -z 0 1M' "
                "-c 'write -P 0xab 2M 128k' '%s'", tl_qemu_io (), top) != 0)
      FAIL ("qemu-io on %s:\n%s", top, out);
    free (out);
  }
  expect_pass (top, &info);
  CHECK (info.zero_clusters == 16 && info.data_clusters == 2,
         "overlay after writes: %" PRIu64 " zero, %" PRIu64 " data",
         info.zero_clusters, info.data_clusters);
  vv_qcow2_info_clear (&info);
  printf ("ok qemu-img overlay with zero and data clusters\n");

  /* Zero writes over allocated data in a standalone image. */
  {
    char *out;
    p = tl_path ("zeroed.qcow2");
    qemu_img_ok ("convert -q -f raw -O qcow2", raw_path, p);
    if (tl_run (&out, "'%s' -f qcow2 -c 'write -z 40M 1M' '%s'",
                tl_qemu_io (), p) != 0)
      FAIL ("qemu-io on %s:\n%s", p, out);
    free (out);
    expect_pass (p, &info);
    vv_qcow2_info_clear (&info);
    free (p);
  }

  /* Other cluster sizes and refcount widths. */
  static const struct {
    const char *opts;
    uint32_t cluster_bits;
  } v[] = {
    { "cluster_size=4096", 12 },
    { "cluster_size=512", 9 },
    { "cluster_size=2M", 21 },
    { "refcount_bits=1", 16 },
    { "refcount_bits=2", 16 },
    { "refcount_bits=4", 16 },
    { "refcount_bits=8", 16 },
    { "refcount_bits=32", 16 },
    { "refcount_bits=64,cluster_size=4096", 12 },
    { "refcount_bits=1,cluster_size=512", 9 },
    { "compression_type=zstd", 16 },
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char *args = vv_printf ("convert -q -f raw -O qcow2 -o %s", v[i].opts);
    p = tl_pathf ("variant-%zu.qcow2", i);
    qemu_img_ok (args, raw_path, p);
    expect_pass (p, &info);
    CHECK (info.cluster_bits == v[i].cluster_bits
           && info.virtual_size == RAW_SIZE, "%s: info", v[i].opts);
    if (v[i].cluster_bits >= 12)
      CHECK (info.data_clusters == clusters_touched (UINT64_C (1)
                                                     << v[i].cluster_bits),
             "%s: %" PRIu64 " data clusters, expected %" PRIu64, v[i].opts,
             info.data_clusters,
             clusters_touched (UINT64_C (1) << v[i].cluster_bits));
    else
      CHECK (info.data_clusters >= clusters_touched (512), "%s", v[i].opts);
    printf ("ok qemu-img convert -o %-36s %6" PRIu64 " data clusters\n",
            v[i].opts, info.data_clusters);
    vv_qcow2_info_clear (&info);
    free (args);
    free (p);
  }
  free (base);
  free (top);
}

/* What QEMU can make but we do not support must be refused by name. */
static void
test_unsupported (void)
{
  char *out, *p;

  p = tl_path ("v2.qcow2");
  qemu_img_ok ("convert -q -f raw -O qcow2 -o compat=0.10", raw_path, p);
  expect_fail ("qemu-img compat=0.10", p, "unsupported qcow2 version 2");
  free (p);

  p = tl_path ("compressed.qcow2");
  qemu_img_ok ("convert -q -c -f raw -O qcow2", raw_path, p);
  expect_fail ("qemu-img convert -c", p, "compressed");
  free (p);

  p = tl_path ("snap.qcow2");
  qemu_img_ok ("convert -q -f raw -O qcow2", raw_path, p);
  qemu_img_ok ("snapshot -q -c s1", p, NULL);
  expect_fail ("qemu-img snapshot -c", p, "internal snapshots are not "
               "supported");
  free (p);

  p = tl_path ("bitmap.qcow2");
  qemu_img_ok ("create -q -f qcow2", p, "16M");
  if (tl_run (&out, "'%s' bitmap --add '%s' b0", tl_qemu_img (), p) != 0)
    FAIL ("qemu-img bitmap --add:\n%s", out);
  free (out);
  expect_fail ("qemu-img bitmap --add", p, "dirty bitmaps are not supported");
  free (p);

  p = tl_path ("extl2.qcow2");
  qemu_img_ok ("create -q -f qcow2 -o extended_l2=on", p, "16M");
  expect_fail ("qemu-img extended_l2=on", p, "extended L2");
  free (p);

  p = tl_path ("datafile.qcow2");
  if (tl_run (&out, "cd '%s' && '%s' create -q -f qcow2 -o data_file=df.raw "
              "datafile.qcow2 16M", tl_dir, tl_qemu_img ()) != 0)
    FAIL ("qemu-img create data_file:\n%s", out);
  free (out);
  expect_fail ("qemu-img data_file=", p, "external data file");
  free (p);
}

/* Our own image, then corrupted copies of it. */
static char *
make_ours (const char *name, const char *backing)
{
  char *img = tl_path (name);
  struct vv_qcow2_plan *plan;

  plan = vv_qcow2_plan_new (RAW_SIZE, backing, backing ? "qcow2" : NULL);
  CHECK (plan, "%s", vv_get_error ());
  for (size_t i = 0; i < N_EXT; i++)
    OK (vv_qcow2_plan_mark (plan, data_ext[i].offset, data_ext[i].length,
                            VV_QCOW2_DATA));
  OK (vv_qcow2_plan_mark (plan, 20 * MiB, 1 * MiB, VV_QCOW2_ZERO));
  tl_write_image (plan, raw_path, img);
  vv_qcow2_plan_free (plan);
  return img;
}

static uint64_t
get64 (int fd, uint64_t off)
{
  uint8_t b[8];
  if (pread (fd, b, 8, off) != 8)
    FAIL ("pread at %" PRIu64, off);
  return qcow2_get_be64 (b);
}

static void
put (int fd, uint64_t off, const void *b, size_t n)
{
  if (pwrite (fd, b, n, off) != (ssize_t) n)
    FAIL ("pwrite at %" PRIu64 ": %s", off, strerror (errno));
}

static void
put64 (int fd, uint64_t off, uint64_t v)
{
  uint8_t b[8];
  qcow2_put_be64 (b, v);
  put (fd, off, b, 8);
}

static void
put32 (int fd, uint64_t off, uint32_t v)
{
  uint8_t b[4];
  qcow2_put_be32 (b, v);
  put (fd, off, b, 4);
}

static void
put16 (int fd, uint64_t off, uint16_t v)
{
  uint8_t b[2];
  qcow2_put_be16 (b, v);
  put (fd, off, b, 2);
}

struct where {
  uint64_t size, l1, l2, rt, rb;
};

/* A fresh copy of the good image, open read-write, and where its tables
 * are (read from it, not assumed).
 */
static int
corrupt_copy (const char *good, const char *name, char **ret_path,
              struct where *w)
{
  char *p = tl_path (name);
  int fd;

  if (tl_run (NULL, "cp '%s' '%s'", good, p) != 0)
    FAIL ("cp %s %s", good, p);
  fd = open (p, O_RDWR | O_CLOEXEC);
  CHECK (fd >= 0, "open %s", p);
  w->size = tl_file_size (p);
  w->l1 = get64 (fd, QCOW2_HDR_L1_TABLE_OFFSET);
  w->l2 = get64 (fd, w->l1) & QCOW2_OFFSET_MASK;
  w->rt = get64 (fd, QCOW2_HDR_REFCOUNT_TABLE_OFFSET);
  w->rb = get64 (fd, w->rt);
  *ret_path = p;
  return fd;
}

static void
test_ours_and_corruptions (void)
{
  struct vv_qcow2_info info = { 0 };
  struct where w;
  char *good, *over, *p;
  uint64_t e0, e1;
  int fd;

  good = make_ours ("ours.qcow2", NULL);
  expect_pass (good, &info);
  CHECK (info.virtual_size == RAW_SIZE && info.cluster_bits == 16
         && info.version == 3 && info.backing_file == NULL
         && info.data_clusters == clusters_touched (CS)
         && info.zero_clusters == 16,
         "ours: info %" PRIu64 " data %" PRIu64 " zero", info.data_clusters,
         info.zero_clusters);
  vv_qcow2_info_clear (&info);
  tl_qemu_check (good);

  over = make_ours ("ours-overlay.qcow2", "ours.qcow2");
  expect_pass (over, &info);
  CHECK (info.backing_file && strcmp (info.backing_file, "ours.qcow2") == 0
         && strcmp (info.backing_format, "qcow2") == 0, "ours overlay");
  vv_qcow2_info_clear (&info);
  tl_qemu_check (over);
  printf ("ok our images\n");

  fd = corrupt_copy (good, "bad-magic.qcow2", &p, &w);
  put32 (fd, 0, 0x514649fa);
  close (fd);
  expect_fail ("bad magic", p, "bad magic 0x514649fa");
  free (p);

  /* A header longer than the file: the compression type byte after the
   * first 104 bytes was read from memory the file never filled.
   */
  fd = corrupt_copy (good, "short-header.qcow2", &p, &w);
  put32 (fd, QCOW2_HDR_HEADER_LENGTH, 112);
  CHECK (ftruncate (fd, QCOW2_HDR_V3_LENGTH) == 0, "truncate %s", p);
  close (fd);
  expect_fail ("header longer than the file", p,
               "header_length 112 runs past the end of the file (104 bytes)");
  free (p);

  fd = corrupt_copy (good, "v2.qcow2", &p, &w);
  put32 (fd, QCOW2_HDR_VERSION, 2);
  close (fd);
  expect_fail ("version 2", p, "unsupported qcow2 version 2");
  free (p);

  fd = corrupt_copy (good, "l2-past-eof.qcow2", &p, &w);
  put64 (fd, w.l2, (w.size + 16 * CS) | QCOW2_OFLAG_COPIED);
  close (fd);
  expect_fail ("L2 entry past EOF", p, "L2 entry 0 of L2 table at");
  expect_fail ("L2 entry past EOF", p, "points past the end of the file");
  free (p);

  fd = corrupt_copy (good, "shared.qcow2", &p, &w);
  e0 = get64 (fd, w.l2);
  put64 (fd, w.l2 + 8, e0);
  close (fd);
  expect_fail ("two L2 entries share a cluster", p,
               "L2 entry 1 of L2 table at");
  expect_fail ("two L2 entries share a cluster", p, "used twice");
  free (p);

  fd = corrupt_copy (good, "refcount.qcow2", &p, &w);
  put16 (fd, w.rb + 2 * 3, 2);  /* cluster 3 */
  close (fd);
  expect_fail ("wrong refcount", p, "host cluster 0x30000 has refcount 2");
  free (p);

  fd = corrupt_copy (good, "refcount0.qcow2", &p, &w);
  put16 (fd, w.rb + 2 * (w.size / CS - 1), 0);      /* last data cluster */
  close (fd);
  expect_fail ("refcount 0 of a used cluster", p, "refcount is 0");
  free (p);

  fd = corrupt_copy (good, "leak.qcow2", &p, &w);
  if (ftruncate (fd, w.size + CS) == -1)
    FAIL ("ftruncate");
  put16 (fd, w.rb + 2 * (w.size / CS), 1);
  close (fd);
  expect_fail ("leaked cluster", p, "leaked");
  free (p);

  fd = corrupt_copy (good, "refcount-past-eof.qcow2", &p, &w);
  put16 (fd, w.rb + 2 * (w.size / CS + 5), 1);
  close (fd);
  expect_fail ("refcount past EOF", p, "past the end of the file");
  free (p);

  fd = corrupt_copy (good, "truncated.qcow2", &p, &w);
  if (ftruncate (fd, w.size - 2 * CS) == -1)
    FAIL ("ftruncate");
  close (fd);
  expect_fail ("truncated file", p, "past the end of the file");
  free (p);

  fd = corrupt_copy (good, "truncated-meta.qcow2", &p, &w);
  if (ftruncate (fd, w.l2 + 4096) == -1)
    FAIL ("ftruncate");
  close (fd);
  expect_fail ("truncated in an L2 table", p, "past the end of the file");
  free (p);

  fd = corrupt_copy (good, "tiny.qcow2", &p, &w);
  if (ftruncate (fd, 50) == -1)
    FAIL ("ftruncate");
  close (fd);
  expect_fail ("50-byte file", p, "too small");
  free (p);

  fd = corrupt_copy (good, "compressed.qcow2", &p, &w);
  put64 (fd, w.l2, get64 (fd, w.l2) | QCOW2_OFLAG_COMPRESSED);
  close (fd);
  expect_fail ("compressed L2 entry", p, "compressed qcow2 images are not "
               "supported");
  free (p);

  fd = corrupt_copy (good, "reserved.qcow2", &p, &w);
  put64 (fd, w.l2, get64 (fd, w.l2) | 0x100);
  close (fd);
  expect_fail ("reserved L2 bits", p, "reserved bits");
  free (p);

  fd = corrupt_copy (good, "copied.qcow2", &p, &w);
  put64 (fd, w.l2, get64 (fd, w.l2) & ~QCOW2_OFLAG_COPIED);
  close (fd);
  expect_fail ("L2 entry without COPIED", p, "COPIED");
  free (p);

  fd = corrupt_copy (good, "unaligned.qcow2", &p, &w);
  e1 = get64 (fd, w.l2);
  put64 (fd, w.l2, e1 + 512);
  close (fd);
  expect_fail ("unaligned data cluster", p, "not aligned");
  free (p);

  fd = corrupt_copy (good, "l1-past-eof.qcow2", &p, &w);
  put64 (fd, w.l1, (w.size + CS) | QCOW2_OFLAG_COPIED);
  close (fd);
  expect_fail ("L1 entry past EOF", p, "L2 table of L1 entry 0");
  free (p);

  fd = corrupt_copy (good, "l1-small.qcow2", &p, &w);
  put32 (fd, QCOW2_HDR_L1_SIZE, 0);
  close (fd);
  expect_fail ("L1 too small", p, "too small");
  free (p);

  fd = corrupt_copy (good, "l2-on-l1.qcow2", &p, &w);
  put64 (fd, w.l1, w.l1 | QCOW2_OFLAG_COPIED);
  close (fd);
  expect_fail ("L2 table on the L1 table", p, "used twice");
  free (p);

  fd = corrupt_copy (good, "dirty.qcow2", &p, &w);
  put64 (fd, QCOW2_HDR_INCOMPATIBLE, QCOW2_INCOMPAT_DIRTY);
  close (fd);
  expect_fail ("dirty image", p, "dirty");
  free (p);

  fd = corrupt_copy (good, "snapshots.qcow2", &p, &w);
  put32 (fd, QCOW2_HDR_NB_SNAPSHOTS, 1);
  close (fd);
  expect_fail ("snapshot count", p, "snapshots");
  free (p);

  fd = corrupt_copy (good, "ext.qcow2", &p, &w);
  put32 (fd, QCOW2_HDR_V3_LENGTH + 4, 0x7fffffff);
  put32 (fd, QCOW2_HDR_V3_LENGTH, 0x12345678);
  close (fd);
  expect_fail ("header extension overrun", p, "header extension");
  free (p);

  fd = corrupt_copy (good, "snapshots-offset.qcow2", &p, &w);
  put64 (fd, QCOW2_HDR_SNAPSHOTS_OFFSET, UINT64_C (1) << 56);
  close (fd);
  expect_fail ("snapshot table offset", p, "snapshot table offset");
  free (p);

  fd = corrupt_copy (good, "compression-bit.qcow2", &p, &w);
  put64 (fd, QCOW2_HDR_INCOMPATIBLE, QCOW2_INCOMPAT_COMPRESSION);
  close (fd);
  expect_fail ("compression bit without type", p, "compression type");
  free (p);

  fd = corrupt_copy (over, "backing-long.qcow2", &p, &w);
  put32 (fd, QCOW2_HDR_BACKING_FILE_SIZE, 70000);
  close (fd);
  expect_fail ("backing name too long", p, "backing file name");
  free (p);

  free (good);
  free (over);
}

/* A read callback failure reaches the caller with context. */
static int64_t
failing_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  vv_error ("target unreachable");
  return -1;
}

static void
test_read_errors (void)
{
  struct vv_qcow2_info info = { 0 };

  vv_clear_error ();
  CHECK (vv_qcow2_check (failing_read, NULL, 1 << 20, &info) == -1
         && strstr (vv_get_error (), "target unreachable")
         && strstr (vv_get_error (), "header"),
         "read error: %s", vv_get_error ());
  printf ("ok read error -> %s\n", vv_get_error ());
}

/* Random damage to the metadata must be either accepted or reported,
 * never crash, hang or read out of bounds (run under ASan and valgrind).
 */
struct mem {
  uint8_t *buf;
  size_t size;
};

static int64_t
mem_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct mem *m = opaque;

  if (offset >= m->size)
    return 0;
  if (count > m->size - offset)
    count = m->size - offset;
  memcpy (buf, m->buf + offset, count);
  return count;
}

static void
fuzz_one (const char *path, uint64_t meta_bytes, int rounds)
{
  struct mem m;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  int rejected = 0;

  m.size = tl_file_size (path);
  m.buf = malloc (m.size);
  CHECK (fd >= 0 && m.buf && pread (fd, m.buf, m.size, 0)
         == (ssize_t) m.size, "reading %s", path);
  close (fd);
  if (meta_bytes > m.size)
    meta_bytes = m.size;

  for (int r = 0; r < rounds; r++) {
    struct vv_qcow2_info info = { 0 };
    uint64_t pos[4];
    uint8_t old[4];
    int n = 1 + tl_rand () % 4;

    for (int k = 0; k < n; k++) {
      /* Mostly the header, else anywhere in the metadata. */
      pos[k] = tl_rand () % 2 ? tl_rand () % 112 : tl_rand () % meta_bytes;
      old[k] = m.buf[pos[k]];
      m.buf[pos[k]] ^= (uint8_t) (1u << (tl_rand () % 8));
    }
    if (vv_qcow2_check (mem_read, &m, m.size, &info) == -1) {
      CHECK (vv_get_error ()[0] != '\0', "rejected without a message");
      rejected++;
    }
    vv_qcow2_info_clear (&info);
    for (int k = n - 1; k >= 0; k--)
      m.buf[pos[k]] = old[k];
  }
  printf ("ok fuzz %s: %d of %d damaged copies rejected, none crashed\n",
          strrchr (path, '/') + 1, rejected, rounds);
  free (m.buf);
}

static void
test_fuzz (void)
{
  char *ours = tl_path ("ours.qcow2");
  char *small = tl_path ("fuzz-512.qcow2");
  char *p = tl_path ("fuzz-2m.qcow2");

  qemu_img_ok ("convert -q -f raw -O qcow2 -o cluster_size=512,"
               "refcount_bits=1", raw_path, small);
  qemu_img_ok ("convert -q -f raw -O qcow2 -o cluster_size=2M", raw_path, p);
  fuzz_one (ours, 5 * CS, 1500);
  fuzz_one (small, 8192, 1500);
  fuzz_one (p, 4 * 2 * MiB, 300);
  free (ours);
  free (small);
  free (p);
}

int
main (void)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  tl_setup ();
  make_raw ();
  test_ours_and_corruptions ();
  test_qemu_images ();
  test_unsupported ();
  test_read_errors ();
  test_fuzz ();
  free (raw_path);
  printf ("test-qcow2-check: all passed\n");
  return EXIT_SUCCESS;
}
