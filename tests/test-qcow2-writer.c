/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The streaming qcow2 writer: images of several shapes must be read back
 * by QEMU exactly as their source (qemu-img check, compare and info), pass
 * our own checker, and be exactly as big as the plan says.  Also the
 * layout arithmetic, the plan's limits, and how fast metadata is made.
 */
#include <config.h>

#include <json-c/json.h>

#include "qcow2-testlib.h"

#define CS VV_QCOW2_CLUSTER_SIZE

struct extent {
  uint64_t offset, length;
  enum vv_qcow2_kind kind;
};

/* qemu-img info must see the virtual size and backing file we wrote. */
static void
check_info (const char *img, uint64_t virtual_size, const char *backing)
{
  char *out;
  json_object *o, *v;
  int r = tl_run (&out, "'%s' info --output=json '%s'", tl_qemu_img (), img);

  if (r != 0)
    FAIL ("qemu-img info %s (exit %d):\n%s", img, r, out);
  o = json_tokener_parse (out);
  CHECK (o != NULL, "qemu-img info output is not JSON:\n%s", out);
  CHECK (json_object_object_get_ex (o, "virtual-size", &v)
         && (uint64_t) json_object_get_int64 (v) == virtual_size,
         "%s: virtual-size is not %" PRIu64 ":\n%s", img, virtual_size, out);
  CHECK (json_object_object_get_ex (o, "format", &v)
         && strcmp (json_object_get_string (v), "qcow2") == 0,
         "%s: format is not qcow2", img);
  if (backing) {
    CHECK (json_object_object_get_ex (o, "backing-filename", &v)
           && strcmp (json_object_get_string (v), backing) == 0,
           "%s: backing-filename is not %s:\n%s", img, backing, out);
    CHECK (json_object_object_get_ex (o, "backing-filename-format", &v)
           && strcmp (json_object_get_string (v), "qcow2") == 0,
           "%s: backing-filename-format is not qcow2:\n%s", img, out);
  }
  else
    CHECK (!json_object_object_get_ex (o, "backing-filename", &v),
           "%s: unexpected backing file:\n%s", img, out);
  json_object_put (o);
  free (out);
}

static uint64_t
get_be (const uint8_t *p, int n)
{
  uint64_t v = 0;

  for (int i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

static void
pread_exact (int fd, void *buf, size_t len, uint64_t off, const char *img)
{
  CHECK (pread (fd, buf, len, off) == (ssize_t) len,
         "%s: cannot read %zu bytes at %" PRIu64, img, len, off);
}

/* What vv_qcow2_plan_metadata_bytes promises, read from the image as QEMU
 * would: the header, backing name, L1 table, refcount table, every
 * refcount block and every L2 table lie below it, and every data cluster
 * at or above it.
 */
static void
check_metadata_bytes (const char *img, const struct vv_qcow2_plan *plan)
{
  const uint64_t meta = vv_qcow2_plan_metadata_bytes (plan);
  const uint64_t mask = UINT64_C (0x00fffffffffffe00);
  uint8_t h[104];
  uint64_t l1_off, rt_off, rt_len, bf_off, data_seen = 0;
  uint32_t l1_n, bf_len;
  uint64_t *l1, *rt, *l2;
  int fd = open (img, O_RDONLY);

  CHECK (fd >= 0, "%s: %s", img, strerror (errno));
  CHECK (meta > 0 && meta % CS == 0 && meta <= tl_file_size (img),
         "%s: metadata_bytes %" PRIu64, img, meta);
  pread_exact (fd, h, sizeof h, 0, img);
  bf_off = get_be (h + 8, 8);
  bf_len = get_be (h + 16, 4);
  l1_n = get_be (h + 36, 4);
  l1_off = get_be (h + 40, 8);
  rt_off = get_be (h + 48, 8);
  rt_len = get_be (h + 56, 4) * CS;
  CHECK (bf_off + bf_len <= meta, "%s: backing name past %" PRIu64, img,
         meta);
  CHECK (l1_off + l1_n * UINT64_C (8) <= meta && rt_off + rt_len <= meta,
         "%s: L1 or refcount table past metadata_bytes %" PRIu64, img, meta);

  rt = malloc (rt_len);
  CHECK (rt, "out of memory");
  pread_exact (fd, rt, rt_len, rt_off, img);
  for (uint64_t i = 0; i < rt_len / 8; i++) {
    uint64_t rb = get_be ((uint8_t *) &rt[i], 8);
    CHECK (rb == 0 || rb + CS <= meta, "%s: refcount block %" PRIu64
           " at %" PRIu64 " lies past metadata_bytes %" PRIu64, img, i, rb,
           meta);
  }
  free (rt);

  l1 = malloc (l1_n * UINT64_C (8) + 1);
  l2 = malloc (CS);
  CHECK (l1 && l2, "out of memory");
  pread_exact (fd, l1, l1_n * UINT64_C (8), l1_off, img);
  for (uint32_t i = 0; i < l1_n; i++) {
    uint64_t l2_off = get_be ((uint8_t *) &l1[i], 8) & mask;

    if (l2_off == 0)
      continue;
    CHECK (l2_off + CS <= meta, "%s: L2 table %" PRIu32 " at %" PRIu64
           " lies past metadata_bytes %" PRIu64, img, i, l2_off, meta);
    pread_exact (fd, l2, CS, l2_off, img);
    for (uint64_t j = 0; j < CS / 8; j++) {
      uint64_t d = get_be ((uint8_t *) &l2[j], 8) & mask;
      if (d == 0)
        continue;
      CHECK (d >= meta, "%s: data cluster at %" PRIu64 " lies inside the "
             "metadata (%" PRIu64 " bytes)", img, d, meta);
      data_seen++;
    }
  }
  CHECK (data_seen == vv_qcow2_plan_data_clusters (plan),
         "%s: %" PRIu64 " data clusters seen", img, data_seen);
  /* Nothing but data after the metadata. */
  CHECK (vv_qcow2_plan_data_clusters (plan) == 0
         || meta + vv_qcow2_plan_data_clusters (plan) * CS
            == tl_file_size (img), "%s: %" PRIu64 " bytes of metadata and "
         "%" PRIu64 " data clusters are not the file", img, meta,
         vv_qcow2_plan_data_clusters (plan));
  free (l1);
  free (l2);
  close (fd);
}

/* Builds a raw source with random data in the DATA extents (zeros in the
 * ZERO ones), streams a qcow2 from it and has QEMU and our checker verify
 * it.  expected_raw, if given, is what the image must read as (overlays);
 * otherwise the source itself.
 */
static void
run_shape (const char *name, uint64_t virtual_size,
           const struct extent *ext, size_t n_ext,
           const char *backing, const char *src_override,
           const char *expected_raw)
{
  char *raw = tl_pathf ("%s.raw", name);
  char *img = tl_pathf ("%s.qcow2", name);
  struct vv_qcow2_plan *plan;
  struct vv_qcow2_info info = { 0 };
  struct tl_reader rd;
  uint64_t zero_clusters = 0;
  double t;

  if (src_override == NULL) {
    int fd = tl_create_raw (raw, virtual_size);
    for (size_t i = 0; i < n_ext; i++)
      if (ext[i].kind == VV_QCOW2_DATA)
        tl_fill_random (fd, ext[i].offset, ext[i].length);
    close (fd);
  }

  plan = vv_qcow2_plan_new (virtual_size, backing, backing ? "qcow2" : NULL);
  CHECK (plan != NULL, "%s: plan_new: %s", name, vv_get_error ());
  for (size_t i = 0; i < n_ext; i++)
    OK (vv_qcow2_plan_mark (plan, ext[i].offset, ext[i].length, ext[i].kind));
  CHECK (vv_qcow2_plan_virtual_size (plan) == virtual_size, "%s", name);

  t = tl_now ();
  tl_write_image (plan, src_override ? src_override : raw, img);
  t = tl_now () - t;

  CHECK (tl_file_size (img) == vv_qcow2_plan_file_size (plan),
         "%s: file is %" PRIu64 " bytes, plan says %" PRIu64, name,
         tl_file_size (img), vv_qcow2_plan_file_size (plan));
  tl_qemu_check (img);
  check_metadata_bytes (img, plan);
  tl_qemu_compare (img, expected_raw ? expected_raw
                   : src_override ? src_override : raw);
  check_info (img, virtual_size, backing);

  if (tl_check_file (img, &info, &rd) == -1)
    FAIL ("%s: vv_qcow2_check: %s", name, vv_get_error ());
  CHECK (info.virtual_size == virtual_size && info.cluster_bits == 16
         && info.version == 3, "%s: checker info", name);
  CHECK (info.data_clusters == vv_qcow2_plan_data_clusters (plan),
         "%s: checker counted %" PRIu64 " data clusters, plan %" PRIu64,
         name, info.data_clusters, vv_qcow2_plan_data_clusters (plan));
  CHECK ((backing == NULL && info.backing_file == NULL)
         || (backing && info.backing_file
             && strcmp (info.backing_file, backing) == 0
             && strcmp (info.backing_format, "qcow2") == 0),
         "%s: checker backing file", name);
  /* The checker reads metadata, never the data clusters. */
  CHECK (rd.bytes <= vv_qcow2_plan_file_size (plan)
         - vv_qcow2_plan_data_clusters (plan) * CS + CS,
         "%s: checker read %" PRIu64 " bytes", name, rd.bytes);
  for (size_t i = 0; i < n_ext; i++)
    if (ext[i].kind == VV_QCOW2_ZERO)
      zero_clusters += ext[i].length / CS;
  CHECK (info.zero_clusters == zero_clusters, "%s: %" PRIu64 " zero "
         "clusters, expected %" PRIu64, name, info.zero_clusters,
         zero_clusters);

  printf ("ok %-10s virtual %12" PRIu64 "  data clusters %6" PRIu64
          "  file %10" PRIu64 "  written in %.3f s\n", name, virtual_size,
          info.data_clusters, tl_file_size (img), t);
  vv_qcow2_info_clear (&info);
  vv_qcow2_plan_free (plan);
  free (raw);
  free (img);
}

static void
test_shapes (void)
{
  static const struct extent sparse[] = {
    { 0, 4096, VV_QCOW2_DATA },
    { 1 * MiB + 512, 3000, VV_QCOW2_DATA },              /* partial cluster */
    { 5 * MiB - 512, 200 * 1024, VV_QCOW2_DATA },        /* unaligned span */
    { 100 * MiB, 64 * 1024, VV_QCOW2_DATA },
    { 256 * MiB - 512, 512, VV_QCOW2_DATA },             /* last sector */
  };
  static const struct extent full[] = {
    { 0, 200 * MiB, VV_QCOW2_DATA },
  };
  static const struct extent odd[] = {
    { 3 * MiB, 1 * MiB, VV_QCOW2_DATA },
    { 64 * MiB - 4096, 4096 + 3 * 512, VV_QCOW2_DATA },  /* clipped run */
  };
  /* Over 512 MiB: three L2 regions, one run crossing a region boundary. */
  static const struct extent big[] = {
    { 1 * MiB, 2 * MiB, VV_QCOW2_DATA },
    { 512 * MiB - 128 * 1024, 256 * 1024, VV_QCOW2_DATA },
    { 1100 * MiB + 4096, 8192, VV_QCOW2_DATA },
    { 1536 * MiB + 7 * 512 - 1024, 1024, VV_QCOW2_DATA },
  };

  run_shape ("empty", 16 * MiB, NULL, 0, NULL, NULL, NULL);
  run_shape ("sparse", 256 * MiB, sparse, 5, NULL, NULL, NULL);
  run_shape ("full", 200 * MiB, full, 1, NULL, NULL, NULL);
  run_shape ("odd", 64 * MiB + 3 * 512, odd, 2, NULL, NULL, NULL);
  run_shape ("big", 1536 * MiB + 7 * 512, big, 4, NULL, NULL, NULL);
  run_shape ("zero-size", 0, NULL, 0, NULL, NULL, NULL);
}

/* An incremental: base image with data, overlay with new data, zeroed
 * ranges over base data, and the rest left to the base.
 */
static void
test_overlay (void)
{
  const uint64_t size = 48 * MiB + 512;
  static const struct extent base_ext[] = {
    { 0, 10 * MiB, VV_QCOW2_DATA },
    { 20 * MiB, 8 * MiB, VV_QCOW2_DATA },
    { 48 * MiB - 4096, 4096 + 512, VV_QCOW2_DATA },
  };
  static const struct extent top_ext[] = {
    { 1 * MiB + 4096, 100, VV_QCOW2_DATA },     /* partial: whole cluster */
    { 2 * MiB, 2 * MiB, VV_QCOW2_ZERO },         /* zeroes base data */
    { 21 * MiB, 128 * 1024, VV_QCOW2_ZERO },
    { 30 * MiB, 1 * MiB, VV_QCOW2_ZERO },        /* zero over a hole */
    { 40 * MiB, 3 * MiB, VV_QCOW2_DATA },        /* data over a hole */
    { 48 * MiB, 512, VV_QCOW2_DATA },            /* clipped last cluster */
  };
  char *base_raw = tl_path ("base.raw");
  char *expected = tl_path ("overlay-expected.raw");
  int fd;

  run_shape ("base", size, base_ext, 3, NULL, NULL, NULL);

  /* What the overlay must read as: the base with the changes applied.
   * The writer reads DATA clusters whole from this source, as the engine
   * reads them from the guest's disk.
   */
  if (tl_run (NULL, "cp --sparse=always '%s' '%s'", base_raw, expected) != 0)
    FAIL ("copying %s", base_raw);
  fd = open (expected, O_RDWR | O_CLOEXEC);
  CHECK (fd >= 0, "open %s", expected);
  for (size_t i = 0; i < 6; i++) {
    if (top_ext[i].kind == VV_QCOW2_DATA)
      tl_fill_random (fd, top_ext[i].offset, top_ext[i].length);
    else
      tl_fill_zero (fd, top_ext[i].offset, top_ext[i].length);
  }
  close (fd);

  run_shape ("overlay", size, top_ext, 6, "base.qcow2", expected, expected);
  free (base_raw);
  free (expected);
}

/* File sizes, in clusters, for given marks: the layout arithmetic
 * including the refcount fixed point.
 */
static void
test_layout_table (void)
{
  static const struct {
    const char *what;
    uint64_t virtual_size;
    struct extent marks[2];
    uint64_t clusters;
  } t[] = {
    { "zero-sized disk", 0, { { 0 } }, 3 },
    { "1 GiB, nothing", GiB, { { 0 } }, 4 },
    { "1 GiB, one data cluster", GiB, { { 0, 1, VV_QCOW2_DATA } }, 6 },
    { "1 GiB, data in two regions", GiB,
      { { 0, 1, VV_QCOW2_DATA }, { 600 * MiB, CS, VV_QCOW2_DATA } }, 8 },
    { "1 GiB, zeros only", GiB, { { 0, MiB, VV_QCOW2_ZERO } }, 5 },
    { "1 GiB, zero under data", GiB,
      { { 0, MiB, VV_QCOW2_ZERO }, { 0, 2 * MiB, VV_QCOW2_DATA } }, 37 },
    /* 1 + L1 + 4 L2 + 32760 data + table + 1 block = 32768: one block. */
    { "2 GiB, one block exactly", 2 * GiB,
      { { 0, 32760 * CS, VV_QCOW2_DATA } }, 32768 },
    /* One more data cluster needs a second refcount block. */
    { "2 GiB, second block", 2 * GiB,
      { { 0, 32761 * CS, VV_QCOW2_DATA } }, 32770 },
    { "4 GiB, full", 4 * GiB, { { 0, 4 * GiB, VV_QCOW2_DATA } }, 65550 },
    { "64 TiB, nothing", 64 * TiB, { { 0 } }, 19 },
    { "64 TiB, last cluster", 64 * TiB,
      { { 64 * TiB - 512, 512, VV_QCOW2_DATA } }, 21 },
  };

  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    struct vv_qcow2_plan *plan = vv_qcow2_plan_new (t[i].virtual_size,
                                                    NULL, NULL);
    CHECK (plan, "%s: %s", t[i].what, vv_get_error ());
    for (size_t j = 0; j < 2; j++)
      if (t[i].marks[j].length)
        OK (vv_qcow2_plan_mark (plan, t[i].marks[j].offset,
                                t[i].marks[j].length, t[i].marks[j].kind));
    CHECK (vv_qcow2_plan_file_size (plan) == t[i].clusters * CS,
           "%s: file size %" PRIu64 " clusters, expected %" PRIu64,
           t[i].what, vv_qcow2_plan_file_size (plan) / CS, t[i].clusters);
    vv_qcow2_plan_free (plan);
  }
  printf ("ok layout table (%zu cases)\n", sizeof t / sizeof t[0]);
}

static void
test_plan_api (void)
{
  struct vv_qcow2_plan *plan;
  struct tl_sink sink = { .fd = -1 };
  uint64_t iter = 0, off, len, n = 0;

  /* Limits and refusals. */
  CHECK (vv_qcow2_plan_new (64 * TiB + 512, NULL, NULL) == NULL
         && strstr (vv_get_error (), "64 TiB"), "over 64 TiB accepted");
  CHECK (vv_qcow2_plan_new (MiB + 100, NULL, NULL) == NULL
         && strstr (vv_get_error (), "multiple of 512"), "odd size accepted");
  CHECK (vv_qcow2_plan_new (MiB, NULL, "qcow2") == NULL,
         "format without file accepted");
  CHECK (vv_qcow2_plan_new (MiB, "b", "qcow2 x") == NULL, "bad format name");
  CHECK (vv_qcow2_plan_new (MiB, "", NULL) == NULL, "empty backing name");

  plan = vv_qcow2_plan_new (256 * MiB + 512, NULL, NULL);
  CHECK (plan, "%s", vv_get_error ());
  CHECK (vv_qcow2_plan_mark (plan, 256 * MiB, 1024, VV_QCOW2_DATA) == -1
         && strstr (vv_get_error (), "beyond the end"), "mark past end");
  CHECK (vv_qcow2_plan_mark (plan, UINT64_MAX, 2, VV_QCOW2_DATA) == -1,
         "overflowing mark");
  CHECK (vv_qcow2_plan_mark (plan, 0, 1, (enum vv_qcow2_kind) 7) == -1,
         "unknown kind");
  OK (vv_qcow2_plan_mark (plan, 0, 256 * MiB + 512, VV_QCOW2_DATA));
  OK (vv_qcow2_plan_mark (plan, 0, MiB, VV_QCOW2_ZERO));    /* DATA wins */
  OK (vv_qcow2_plan_mark (plan, 0, MiB, VV_QCOW2_UNALLOCATED));
  CHECK (vv_qcow2_plan_data_clusters (plan) == 4097, "data clusters");
  CHECK (vv_qcow2_plan_data_bytes (plan) == 256 * MiB + 512, "data bytes");

  /* Runs are capped at 64 MiB and the last one is clipped to the disk. */
  while (vv_qcow2_plan_next_run (plan, &iter, &off, &len) == 1) {
    CHECK (off == n * 64 * MiB, "run %" PRIu64 " at %" PRIu64, n, off);
    CHECK (len == (n < 4 ? 64 * MiB : 512), "run %" PRIu64 " is %" PRIu64,
           n, len);
    n++;
  }
  CHECK (n == 5, "%" PRIu64 " runs", n);

  /* A failing sink fails the write; then the plan is frozen. */
  sink.fail_after = 1;
  CHECK (vv_qcow2_write_metadata (plan, tl_sink_write, &sink) == -1
         && strstr (vv_get_error (), "injected"), "write failure lost");
  CHECK (vv_qcow2_plan_mark (plan, 0, 1, VV_QCOW2_DATA) == -1,
         "mark after write accepted");
  vv_qcow2_plan_free (plan);

  plan = vv_qcow2_plan_new (MiB, NULL, NULL);
  CHECK (vv_qcow2_write_finish (plan, tl_sink_write, &sink) == -1,
         "finish before metadata accepted");
  vv_qcow2_plan_free (plan);
  printf ("ok plan API\n");
}

/* Metadata must take milliseconds and go out in large chunks. */
static void
test_metadata_speed (void)
{
  struct {
    const char *what;
    uint64_t size, step, len;
  } t[] = {
    { "4 GiB full", 4 * GiB, 0, 0 },
    { "64 TiB sparse (1 MiB per TiB)", 64 * TiB, TiB, MiB },
    { "64 TiB, 1 MiB per 64 GiB", 64 * TiB, 64 * GiB, MiB },
  };

  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    struct tl_sink sink = { .fd = -1 };
    struct vv_qcow2_plan *plan;
    uint64_t meta, iter = 0, off, len, runs = 0;
    double t0 = tl_now (), t1, t2;

    plan = vv_qcow2_plan_new (t[i].size, NULL, NULL);
    CHECK (plan, "%s", vv_get_error ());
    if (t[i].step == 0)
      OK (vv_qcow2_plan_mark (plan, 0, t[i].size, VV_QCOW2_DATA));
    else
      for (uint64_t o = 0; o < t[i].size; o += t[i].step)
        OK (vv_qcow2_plan_mark (plan, o, t[i].len, VV_QCOW2_DATA));
    t1 = tl_now ();
    OK (vv_qcow2_write_metadata (plan, tl_sink_write, &sink));
    t2 = tl_now ();
    while (vv_qcow2_plan_next_run (plan, &iter, &off, &len) == 1)
      runs++;
    meta = vv_qcow2_plan_file_size (plan)
      - vv_qcow2_plan_data_clusters (plan) * CS;
    CHECK (sink.pos == meta, "%s: metadata %" PRIu64 " bytes, expected %"
           PRIu64, t[i].what, sink.pos, meta);
    CHECK (sink.calls <= meta / MiB + 1, "%s: %" PRIu64 " write calls for %"
           PRIu64 " bytes", t[i].what, sink.calls, meta);
    CHECK (t2 - t1 < 2.0, "%s: metadata took %.3f s", t[i].what, t2 - t1);
    printf ("ok speed %-34s mark %.1f ms, metadata %" PRIu64 " KiB in %.1f "
            "ms (%" PRIu64 " calls), %" PRIu64 " runs in %.1f ms\n",
            t[i].what, (t1 - t0) * 1e3, meta / 1024, (t2 - t1) * 1e3,
            sink.calls, runs, (tl_now () - t2) * 1e3);
    vv_qcow2_plan_free (plan);
  }
}

/* The same big plans as real files: metadata written, the data left as a
 * hole (neither checker reads data), so QEMU and our checker judge the
 * metadata of a 4 GiB full and a 64 TiB disk without gigabytes of I/O.
 */
static void
test_big_metadata (void)
{
  struct {
    const char *what;
    uint64_t size, step, len;
  } t[] = {
    { "4 GiB full", 4 * GiB, 0, 0 },
    { "64 TiB, 1 MiB per 64 GiB", 64 * TiB, 64 * GiB, MiB },
  };

  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    char *img = tl_pathf ("big-meta-%zu.qcow2", i);
    struct tl_sink sink = { .fd = -1 };
    struct vv_qcow2_info info = { 0 };
    struct vv_qcow2_plan *plan;
    struct tl_reader rd;
    double t0;

    plan = vv_qcow2_plan_new (t[i].size, NULL, NULL);
    CHECK (plan, "%s", vv_get_error ());
    if (t[i].step == 0)
      OK (vv_qcow2_plan_mark (plan, 0, t[i].size, VV_QCOW2_DATA));
    else
      for (uint64_t o = 0; o < t[i].size; o += t[i].step)
        OK (vv_qcow2_plan_mark (plan, o, t[i].len, VV_QCOW2_DATA));
    sink.fd = open (img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK (sink.fd >= 0, "open %s", img);
    OK (vv_qcow2_write_metadata (plan, tl_sink_write, &sink));
    if (ftruncate (sink.fd, vv_qcow2_plan_file_size (plan)) == -1)
      FAIL ("ftruncate %s: %s", img, strerror (errno));
    close (sink.fd);

    tl_qemu_check (img);
    check_info (img, t[i].size, NULL);
    t0 = tl_now ();
    if (tl_check_file (img, &info, &rd) == -1)
      FAIL ("%s: vv_qcow2_check: %s", t[i].what, vv_get_error ());
    CHECK (info.data_clusters == vv_qcow2_plan_data_clusters (plan),
           "%s: data clusters", t[i].what);
    printf ("ok big %-36s qemu-img check clean; vv_qcow2_check read %"
            PRIu64 " KiB in %.1f ms\n", t[i].what, rd.bytes / 1024,
            (tl_now () - t0) * 1e3);
    vv_qcow2_info_clear (&info);
    vv_qcow2_plan_free (plan);
    unlink (img);
    free (img);
  }
}

/* vv_qcow2_plan_data_offset gives, for every guest byte of a DATA
 * cluster, where the written image keeps it: what its L2 tables say,
 * across several 512 MiB regions, empty ones between.
 */
static void
test_data_offsets (void)
{
  const uint64_t size = 3 * GiB + 61440;  /* not a whole cluster */
  char *raw = tl_path ("offsets.raw"), *img = tl_path ("offsets.qcow2");
  struct vv_qcow2_plan *plan = vv_qcow2_plan_new (size, NULL, NULL);
  static uint64_t map[VV_QCOW2_L2_ENTRIES];
  struct vv_qcow2_reader *r;
  struct tl_reader rd;
  uint64_t checked = 0;
  int fd = tl_create_raw (raw, size);

  tl_fill_random (fd, 0, 1 * MiB);
  tl_fill_random (fd, 600 * MiB, 3 * MiB);
  tl_fill_random (fd, 2 * GiB + 64 * 1024, 64 * 1024);
  tl_fill_random (fd, size - 10000, 10000);
  close (fd);
  CHECK (plan != NULL, "plan");
  OK (vv_qcow2_plan_mark (plan, 0, 1 * MiB, VV_QCOW2_DATA));
  OK (vv_qcow2_plan_mark (plan, 600 * MiB, 3 * MiB, VV_QCOW2_DATA));
  OK (vv_qcow2_plan_mark (plan, 700 * MiB, 1 * MiB, VV_QCOW2_ZERO));
  OK (vv_qcow2_plan_mark (plan, 2 * GiB + 64 * 1024, 64 * 1024,
                          VV_QCOW2_DATA));
  OK (vv_qcow2_plan_mark (plan, size - 10000, 10000, VV_QCOW2_DATA));
  tl_write_image (plan, raw, img);

  rd = (struct tl_reader) { .fd = open (img, O_RDONLY | O_CLOEXEC) };
  CHECK (rd.fd >= 0, "open %s", img);
  OK (vv_qcow2_reader_open (tl_read, &rd, tl_file_size (img), &r));
  for (uint64_t w = 0; w * VV_QCOW2_L2_COVERAGE < size; w++) {
    if (vv_qcow2_reader_map (r, w, map) != 1)
      continue;
    for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
      uint64_t goff = w * VV_QCOW2_L2_COVERAGE + j * VV_QCOW2_CLUSTER_SIZE;
      uint64_t got;

      if (map[j] == VV_QCOW2_MAP_UNALLOCATED || map[j] == VV_QCOW2_MAP_ZERO) {
        CHECK (goff >= size || vv_qcow2_plan_data_offset (plan, goff, &got)
               == -1, "cluster at %" PRIu64 " is not data", goff);
        continue;
      }
      OK (vv_qcow2_plan_data_offset (plan, goff, &got));
      CHECK (got == map[j], "guest %" PRIu64 ": plan says %" PRIu64
             ", the image %" PRIu64, goff, got, map[j]);
      OK (vv_qcow2_plan_data_offset (plan, goff + 777, &got));
      CHECK (got == map[j] + 777, "guest %" PRIu64 " + 777", goff);
      checked++;
    }
  }
  /* 16 + 48 + 1 + the last one. */
  CHECK (checked == 66, "%" PRIu64 " data clusters", checked);
  CHECK (vv_qcow2_plan_data_offset (plan, size, &checked) == -1,
         "past the end");
  vv_qcow2_reader_free (r);
  close (rd.fd);
  vv_qcow2_plan_free (plan);
  unlink (raw);
  unlink (img);
  free (raw);
  free (img);
  printf ("ok data offsets across regions\n");
}

int
main (void)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  tl_setup ();
  test_layout_table ();
  test_plan_api ();
  test_metadata_speed ();
  test_big_metadata ();
  test_shapes ();
  test_overlay ();
  test_data_offsets ();
  printf ("test-qcow2-writer: all passed\n");
  return EXIT_SUCCESS;
}
