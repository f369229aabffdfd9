/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: what reads stored qcow2 images.
 *
 * An image on a storage target is untrusted: anyone who can write there
 * can change its header, tables and backing file name.  This drives, on
 * one image held in memory:
 *   - vv_qcow2_check (src/qcow2/qcow2-check.c), the structure checker
 *     that verify and restore run first;
 *   - vv_qcow2_reader_open / vv_qcow2_reader_map (qcow2-read.c), the L1
 *     and L2 reading that flattening a chain uses, on every image (it
 *     checks bounds again itself), for each L1 entry the disk covers;
 *   - vv_restore_resolve_backing (src/restore/chain.c) on the backing
 *     file name of an image the checker accepted;
 *   - vv_restore_flatten (src/restore/flatten.c), the merge of a chain
 *     into one image, for an accepted image of at most 64 MiB of disk
 *     over a base image from our writer, to raw or qcow2 (memfd files).
 * and requires what each promises: an error message on failure, map
 * entries that are "unallocated", "zero" or an aligned cluster inside the
 * file, a resolved backing name that is a safe object name, and qcow2
 * output of a flatten that passes the checker.
 *
 * Input: a sparse image, so that images with 64 KiB clusters (ours) fit
 * in a few hundred bytes of corpus:
 *   be32 file size (taken modulo FILE_MAX + 1),
 *   then records { be32 offset, be16 length, length bytes }
 * Bytes no record covers read as zeros; a later record wins where two
 * overlap; a record cut short by the end of the input keeps what there is.
 * tests/fuzz/qcow2-to-seed.py turns an image file into this form.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/stat.h>

#include "qcow2/qcow2.h"
#include "restore/restore-internal.h"
#include "util/error.h"

/* Largest image the harness makes: the checker's work grows with it. */
#define FILE_MAX (UINT32_C (8) << 20)
#define MAX_RECORDS 512
/* L1 entries mapped per input (each reads one 64 KiB L2 table). */
#define MAX_WINDOWS 64
/* Where the image lies on the target, for resolving its backing name. */
#define OBJECT "bk-000000000002/vda.qcow2"
/* The virtual size of the base image flattened under each input. */
#define BASE_SIZE (4 << 20)

/* Largest disk flattened per input. */
#define FLATTEN_MAX (UINT64_C (64) << 20)

struct record {
  uint32_t offset;
  uint32_t len;
  const uint8_t *data;
};

struct image {
  uint64_t file_size;
  size_t n;
  struct record rec[MAX_RECORDS];
  /* Odd inputs get short reads, so the callers' read loops run too. */
  size_t max_chunk;
};

static uint32_t
be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
    | (uint32_t) p[2] << 8 | p[3];
}

static int64_t
image_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct image *img = opaque;
  uint8_t *out = buf;

  if (offset >= img->file_size)
    return 0;
  if (count > img->file_size - offset)
    count = img->file_size - offset;
  if (img->max_chunk && count > img->max_chunk)
    count = img->max_chunk;
  memset (out, 0, count);
  for (size_t i = 0; i < img->n; i++) {
    const struct record *r = &img->rec[i];
    uint64_t start = r->offset, end = start + r->len;
    uint64_t lo = start > offset ? start : offset;
    uint64_t hi = end < offset + count ? end : offset + count;

    if (lo < hi)
      memcpy (out + (lo - offset), r->data + (lo - start), hi - lo);
  }
  return (int64_t) count;
}

static void
parse (const uint8_t *data, size_t size, struct image *img)
{
  size_t pos = 4;

  img->file_size = be32 (data) % (FILE_MAX + 1);
  img->n = 0;
  img->max_chunk = (size & 1) ? 4096 + (data[3] & 0xff) * 8 : 0;
  while (pos + 6 <= size && img->n < MAX_RECORDS) {
    struct record *r = &img->rec[img->n++];
    uint32_t len = (uint32_t) data[pos + 4] << 8 | data[pos + 5];

    r->offset = be32 (data + pos);
    pos += 6;
    r->len = len < size - pos ? len : (uint32_t) (size - pos);
    r->data = data + pos;
    pos += r->len;
  }
}

static void
need_error (const char *call)
{
  if (vv_get_error ()[0] == '\0') {
    fprintf (stderr, "%s failed without an error message\n", call);
    abort ();
  }
}

static void
check_map (const struct image *img, const uint64_t *map, uint64_t l1_index)
{
  for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
    uint64_t m = map[j];

    if (m == VV_QCOW2_MAP_UNALLOCATED || m == VV_QCOW2_MAP_ZERO)
      continue;
    if (m % VV_QCOW2_CLUSTER_SIZE != 0 || m > img->file_size
        || img->file_size - m < VV_QCOW2_CLUSTER_SIZE) {
      fprintf (stderr, "L1 entry %llu, cluster %zu: map says host offset "
               "0x%llx in a file of 0x%llx bytes\n",
               (unsigned long long) l1_index, j, (unsigned long long) m,
               (unsigned long long) img->file_size);
      abort ();
    }
  }
}

static void
run_reader (struct image *img)
{
  static uint64_t map[VV_QCOW2_L2_ENTRIES];
  struct vv_qcow2_reader *r = NULL;
  uint64_t windows;

  vv_clear_error ();
  if (vv_qcow2_reader_open (image_read, img, img->file_size, &r) == -1) {
    need_error ("vv_qcow2_reader_open");
    return;
  }
  windows = vv_qcow2_reader_virtual_size (r) / VV_QCOW2_L2_COVERAGE + 1;
  if (windows > MAX_WINDOWS)
    windows = MAX_WINDOWS;
  for (uint64_t w = 0; w < windows; w++) {
    int ret;

    vv_clear_error ();
    ret = vv_qcow2_reader_map (r, w, map);
    if (ret == -1) {
      need_error ("vv_qcow2_reader_map");
      break;
    }
    if (ret != 0 && ret != 1)
      abort ();
    check_map (img, map, w);
  }
  vv_qcow2_reader_free (r);
}

/* A relative name without empty, "." or ".." components: what restore
 * may turn into a path under its staging directory.
 */
static int
safe_object (const char *s)
{
  for (;;) {
    size_t n = strcspn (s, "/");

    if (n == 0 || (n == 1 && s[0] == '.')
        || (n == 2 && s[0] == '.' && s[1] == '.'))
      return 0;
    if (s[n] == '\0')
      return 1;
    s += n + 1;
  }
}

static void
run_backing (const char *backing)
{
  char *object;

  vv_clear_error ();
  object = vv_restore_resolve_backing (OBJECT, backing);
  if (object == NULL) {
    need_error ("vv_restore_resolve_backing");
    return;
  }
  if (!safe_object (object)) {
    fprintf (stderr, "backing file '%s' of %s resolved to the unsafe "
             "object name '%s'\n", backing, OBJECT, object);
    abort ();
  }
  free (object);
}

static int
write_fd (void *opaque, const void *buf, size_t count)
{
  return write (*(int *) opaque, buf, count) == (ssize_t) count ? 0 : -1;
}

/* The base of the chain: 4 MiB of disk from our writer, data clusters at
 * 0 and 1 MiB (filled with 0x5a), zero clusters from 2 MiB.
 */
static int
base_image (void)
{
  static int fd = -1;
  static uint8_t data[VV_QCOW2_CLUSTER_SIZE];
  struct vv_qcow2_plan *plan;
  uint64_t iter = 0, off, len;

  if (fd >= 0)
    return fd;
  fd = memfd_create ("base.qcow2", MFD_CLOEXEC);
  plan = vv_qcow2_plan_new (BASE_SIZE, NULL, NULL);
  memset (data, 0x5a, sizeof data);
  if (fd == -1 || plan == NULL
      || vv_qcow2_plan_mark (plan, 0, sizeof data, VV_QCOW2_DATA) == -1
      || vv_qcow2_plan_mark (plan, 1 << 20, sizeof data, VV_QCOW2_DATA) == -1
      || vv_qcow2_plan_mark (plan, 2 << 20, 1 << 20, VV_QCOW2_ZERO) == -1
      || vv_qcow2_write_metadata (plan, write_fd, &fd) == -1)
    abort ();
  while (vv_qcow2_plan_next_run (plan, &iter, &off, &len) == 1)
    for (uint64_t done = 0; done < len; done += sizeof data)
      if (write_fd (&fd, data, sizeof data) == -1)
        abort ();
  if (vv_qcow2_write_finish (plan, write_fd, &fd) == -1)
    abort ();
  vv_qcow2_plan_free (plan);
  return fd;
}

static void
run_flatten (const struct image *img, uint64_t virtual_size, bool raw)
{
  static uint8_t buf[VV_RESTORE_BUF_SIZE];
  struct vv_progress p = { 0 };
  /* The catalog's records of the two images: flatten takes each image's
   * sizes from them (here what the checker saw and the base as written).
   */
  struct vv_disk_rec top = {
    .name = (char *) "vda", .object = (char *) "vda.qcow2",
    .virtual_size = virtual_size, .stored_bytes = img->file_size,
  };
  struct vv_disk_rec base = top;
  struct vv_restore_image v[2] = {
    { .fd = -1, .d = &top, .backup_id = "bk-top" },
    { .fd = base_image (), .d = &base, .backup_id = "bk-base" },
  };
  struct stat base_st;
  int out;
  bool ok;

  if (fstat (v[1].fd, &base_st) == -1)
    abort ();
  base.virtual_size = BASE_SIZE;
  base.stored_bytes = (uint64_t) base_st.st_size;

  v[0].fd = memfd_create ("top.qcow2", MFD_CLOEXEC);
  out = memfd_create ("out", MFD_CLOEXEC);
  if (v[0].fd == -1 || out == -1
      || ftruncate (v[0].fd, (off_t) img->file_size) == -1)
    abort ();
  for (size_t i = 0; i < img->n; i++) {
    const struct record *r = &img->rec[i];
    uint64_t len = r->len;

    if (r->offset >= img->file_size)
      continue;
    if (len > img->file_size - r->offset)
      len = img->file_size - r->offset;
    if (pwrite (v[0].fd, r->data, len, r->offset) != (ssize_t) len)
      abort ();
  }

  vv_clear_error ();
  ok = vv_restore_flatten (v, 2, raw ? "raw" : "qcow2", out, "out", "vda",
                           100, &p, buf) == 0;
  if (getenv ("FUZZ_VERBOSE"))
    fprintf (stderr, "vv_restore_flatten to %s: %s\n", raw ? "raw" : "qcow2",
             ok ? "done" : vv_get_error ());
  if (!ok)
    need_error ("vv_restore_flatten");
  else if (!raw) {
    struct stat st;

    if (fstat (out, &st) == -1)
      abort ();
    vv_clear_error ();
    if (vv_qcow2_check (vv_restore_pread_fd, &out, st.st_size, NULL) == -1) {
      fprintf (stderr, "flattened image fails the checker: %s\n",
               vv_get_error ());
      abort ();
    }
  }
  close (v[0].fd);
  close (out);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static struct image img;
  struct vv_qcow2_info info = { 0 };
  bool ok;

  if (size < 4)
    return -1;
  parse (data, size, &img);

  vv_clear_error ();
  ok = vv_qcow2_check (image_read, &img, img.file_size, &info) == 0;
  /* FUZZ_VERBOSE=1: what the checker said (to look at one input). */
  if (getenv ("FUZZ_VERBOSE"))
    fprintf (stderr, "vv_qcow2_check: %s (file size %llu)\n",
             ok ? "passed" : vv_get_error (),
             (unsigned long long) img.file_size);
  if (ok) {
    if (info.cluster_bits < 9 || info.cluster_bits > 21)
      abort ();
    if (info.backing_file)
      run_backing (info.backing_file);
    if (info.cluster_bits == 16 && info.virtual_size <= FLATTEN_MAX)
      run_flatten (&img, info.virtual_size, size & 2);
    vv_qcow2_info_clear (&info);
  }
  else
    need_error ("vv_qcow2_check");

  run_reader (&img);
  return 0;
}
