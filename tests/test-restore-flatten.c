/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Flattening a chain of qcow2 images into one raw or qcow2 image
 * (src/restore/flatten.c), checked against QEMU's own reading of the
 * chain with qemu-img compare.
 *
 * Chains made by QEMU (data anywhere in the file, COW of partial
 * clusters, zero clusters from write -z and discard, a backing image
 * smaller or larger than its overlay, garbage past the end of a shrunk
 * backing image) and by our writer (data and zero-flag clusters, as the
 * backup engine stores them).  Every output is also checked by
 * qemu-img check and our checker.
 */
#include <config.h>

#include <sys/resource.h>

#include "qcow2-testlib.h"
#include "restore/restore-internal.h"

#define KiB (UINT64_C (1) << 10)

static void
qemu_io (const char *img, const char *cmds)
{
  char *out;
  /* cmds is ';'-separated; each becomes a -c. */
  char *list = vv_strdup (cmds), *save = NULL, *args = vv_strdup ("");

  for (char *c = strtok_r (list, ";", &save); c;
       c = strtok_r (NULL, ";", &save)) {
    char *t = vv_printf ("%s -c '%s'", args, c);
    free (args);
    args = t;
  }
  if (tl_run (&out, "'%s' -f qcow2 %s '%s'", tl_qemu_io (), args, img) != 0
      || strstr (out, "error") || strstr (out, "failed"))
    FAIL ("qemu-io %s %s:\n%s", img, args, out);
  free (out);
  free (list);
  free (args);
}

static void
qemu_img (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static void
qemu_img (const char *fmt, ...)
{
  char *args, *out;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&args, fmt, ap) < 0)
    FAIL ("out of memory");
  va_end (ap);
  if (tl_run (&out, "'%s' %s", tl_qemu_img (), args) != 0)
    FAIL ("qemu-img %s:\n%s", args, out);
  free (out);
  free (args);
}

/* A qcow2 image of size bytes of random data (made by qemu-img convert
 * from a raw file).
 */
static char *
random_base (const char *name, uint64_t size)
{
  char *raw = tl_pathf ("%s.raw", name), *img = tl_pathf ("%s.qcow2", name);
  int fd = tl_create_raw (raw, size);

  tl_fill_random (fd, 0, size);
  close (fd);
  qemu_img ("convert -f raw -O qcow2 '%s' '%s'", raw, img);
  unlink (raw);
  free (raw);
  return img;
}

static char *
overlay (const char *name, const char *backing, const char *size)
{
  char *img = tl_pathf ("%s.qcow2", name);

  qemu_img ("create -q -f qcow2 -b '%s' -F qcow2 '%s' %s", backing, img,
            size ? size : "");
  return img;
}

/* The catalog's record of the image at path, as the backup engine made
 * it: its size and the virtual size in its header (0 if it has none).
 */
static struct vv_disk_rec
record_of (const char *path)
{
  struct vv_disk_rec d = { .object = (char *) path };
  uint8_t h[32] = { 0 };
  struct stat st;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd == -1 || fstat (fd, &st) == -1)
    FAIL ("open %s: %s", path, strerror (errno));
  d.stored_bytes = st.st_size;
  if (pread (fd, h, sizeof h, 0) == (ssize_t) sizeof h
      && memcmp (h, "QFI\xfb", 4) == 0)
    for (int i = 24; i < 32; i++)
      d.virtual_size = d.virtual_size << 8 | h[i];
  close (fd);
  return d;
}

/* Flattens chain (top first, NULL-terminated) as format into out and
 * checks it reads as QEMU reads the top of the chain.
 */
static void
flatten_and_compare (const char *const *chain, const char *format,
                     const char *out, const char *label)
{
  struct vv_restore_image v[16];
  struct vv_disk_rec d[16];
  struct vv_progress p = { 0 };
  static uint8_t buf[VV_RESTORE_BUF_SIZE];
  size_t n = 0;
  int fd;
  char *o;

  for (; chain[n]; n++) {
    d[n] = record_of (chain[n]);
    v[n] = (struct vv_restore_image) {
      .fd = open (chain[n], O_RDONLY | O_CLOEXEC), .d = &d[n],
      .backup_id = "bk-test",
    };
    if (v[n].fd == -1)
      FAIL ("open %s: %s", chain[n], strerror (errno));
  }
  unlink (out);
  fd = open (out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd == -1)
    FAIL ("create %s: %s", out, strerror (errno));
  vv_clear_error ();
  if (vv_restore_flatten (v, n, format, fd, out, label, 1000, &p, buf) == -1)
    FAIL ("%s: flatten to %s: %s", label, format, vv_get_error ());
  CHECK (atomic_load (&p.done) == 1000, "%s: progress %" PRIu64 " of 1000",
         label, (uint64_t) atomic_load (&p.done));
  close (fd);
  for (size_t k = 0; k < n; k++)
    close (v[k].fd);

  if (tl_run (&o, "'%s' compare -q -f %s -F qcow2 '%s' '%s'", tl_qemu_img (),
              format, out, chain[0]) != 0)
    FAIL ("%s: flattened %s differs from the chain:\n%s", label, format, o);
  free (o);
  if (strcmp (format, "qcow2") == 0) {
    struct vv_qcow2_info info = { 0 };
    tl_qemu_check (out);
    if (tl_check_file (out, &info, NULL) == -1)
      FAIL ("%s: our checker refuses the output: %s", label, vv_get_error ());
    CHECK (info.backing_file == NULL, "%s: output has a backing file", label);
    vv_qcow2_info_clear (&info);
  }
  printf ("ok %-44s %s identical to the chain\n", label, format);
}

static void
both_formats (const char *const *chain, const char *label)
{
  char *raw = tl_pathf ("out-%s.raw", label);
  char *qc = tl_pathf ("out-%s.qcow2", label);

  flatten_and_compare (chain, "raw", raw, label);
  flatten_and_compare (chain, "qcow2", qc, label);
  unlink (raw);
  unlink (qc);
  free (raw);
  free (qc);
}

/* QEMU's chain: COW of partial clusters, zero writes, discards. */
static void
test_qemu_chain (void)
{
  char *base = random_base ("q-base", 64 * MiB);
  char *o1 = overlay ("q-o1", base, NULL);
  char *o2 = overlay ("q-o2", o1, NULL);

  qemu_io (o1, "write -P 0x11 1M 200k;write -z 3M 1M;discard 5M 256k;"
           "write -P 0x22 60M 64k;write -P 0x23 63M 1M");
  qemu_io (o2, "write -P 0x33 1100k 64k;write -z 0 64k;write -P 0x44 7M 3M;"
           "write -P 0x45 3M 4k");
  {
    const char *chain[] = { o2, o1, base, NULL };
    both_formats (chain, "qemu chain of 3");
  }
  {
    const char *chain[] = { o1, base, NULL };
    both_formats (chain, "qemu chain, middle point");
  }
  {
    const char *chain[] = { base, NULL };
    both_formats (chain, "single image");
  }
  free (base);
  free (o1);
  free (o2);
}

/* A backing image smaller than its overlay, ending inside a cluster
 * whose tail in the file still holds data (from before a shrink): the
 * overlay reads zeros there.
 */
static void
test_grown_disk (void)
{
  char *base = random_base ("g-base", 12 * MiB);
  char *o1;

  qemu_img ("resize -q --shrink '%s' %" PRIu64, base, 10 * MiB + 1536);
  o1 = overlay ("g-o1", base, "16M");
  qemu_io (o1, "write -P 0x55 12M 64k;write -P 0x56 9M 8k");
  {
    const char *chain[] = { o1, base, NULL };
    both_formats (chain, "grown disk, unaligned backing");
  }
  {
    const char *chain[] = { base, NULL };
    both_formats (chain, "unaligned size");
  }
  free (base);
  free (o1);
}

/* An overlay smaller than its backing image. */
static void
test_shrunk_disk (void)
{
  char *base = random_base ("s-base", 20 * MiB);
  char *o1 = overlay ("s-o1", base, "12583424");     /* 12 MiB + 512 */

  qemu_io (o1, "write -P 0x66 4M 64k");
  {
    const char *chain[] = { o1, base, NULL };
    both_formats (chain, "shrunk disk");
  }
  free (base);
  free (o1);
}

/* Images as the backup engine stores them: our writer, data and zero
 * clusters, relative backing file.
 */
static void
test_our_chain (void)
{
  uint64_t size = 40 * MiB + 64 * KiB * 3;
  char *raw0 = tl_path ("w0.raw"), *raw1 = tl_path ("w1.raw");
  char *img0 = tl_path ("w0.qcow2"), *img1 = tl_path ("w1.qcow2");
  struct vv_qcow2_plan *plan;
  int fd;

  fd = tl_create_raw (raw0, size);
  tl_fill_random (fd, 0, 30 * MiB);
  close (fd);
  plan = vv_qcow2_plan_new (size, NULL, NULL);
  OK (vv_qcow2_plan_mark (plan, 0, 30 * MiB, VV_QCOW2_DATA));
  tl_write_image (plan, raw0, img0);
  vv_qcow2_plan_free (plan);

  fd = tl_create_raw (raw1, size);
  tl_fill_random (fd, 2 * MiB, 1 * MiB);
  tl_fill_random (fd, 39 * MiB, size - 39 * MiB);
  close (fd);
  plan = vv_qcow2_plan_new (size, "w0.qcow2", "qcow2");
  OK (vv_qcow2_plan_mark (plan, 2 * MiB, 1 * MiB, VV_QCOW2_DATA));
  OK (vv_qcow2_plan_mark (plan, 10 * MiB, 5 * MiB, VV_QCOW2_ZERO));
  OK (vv_qcow2_plan_mark (plan, 39 * MiB, size - 39 * MiB, VV_QCOW2_DATA));
  tl_write_image (plan, raw1, img1);
  vv_qcow2_plan_free (plan);
  {
    const char *chain[] = { img1, img0, NULL };
    both_formats (chain, "chain from our writer");
  }
  free (raw0);
  free (raw1);
  free (img0);
  free (img1);
}

/* A mostly empty disk of many TiB: windows without L2 tables are
 * skipped quickly, and the output is as sparse.
 */
static void
test_big_sparse (void)
{
  char *base = tl_path ("b-base.qcow2");
  char *o1;
  double t0;

  qemu_img ("create -q -f qcow2 '%s' 4T", base);
  qemu_io (base, "write -P 0x12 0 1M;write -P 0x13 2T 64k;"
           "write -P 0x14 4398045462528 1M");   /* 4 TiB - 1 MiB */
  o1 = overlay ("b-o1", base, NULL);
  qemu_io (o1, "write -P 0x15 2T 4k;write -z 512k 64k;write -P 0x16 3T 1M");
  t0 = tl_now ();
  {
    const char *chain[] = { o1, base, NULL };
    both_formats (chain, "4 TiB sparse disk");
  }
  printf ("   (%.2f s for both formats, including qemu-img compare)\n",
          tl_now () - t0);
  free (base);
  free (o1);
}

/* Output on another file system than the images: copy_file_range
 * cannot cross it, the plain copy must take over.
 */
static void
test_other_filesystem (void)
{
  char *base = random_base ("x-base", 8 * MiB);
  char *o1 = overlay ("x-o1", base, NULL);
  char dir[] = "/dev/shm/vv-flatten-XXXXXX";
  struct stat a, b;
  const char *chain[] = { o1, base, NULL };
  char *out;

  qemu_io (o1, "write -P 0x77 1M 1M");
  if (stat ("/dev/shm", &b) == -1 || stat (tl_dir, &a) == -1
      || a.st_dev == b.st_dev)
    FAIL ("/dev/shm must be another file system than %s for this test",
          tl_dir);
  if (mkdtemp (dir) == NULL)
    FAIL ("mkdtemp %s: %s", dir, strerror (errno));
  out = vv_printf ("%s/out.qcow2", dir);
  flatten_and_compare (chain, "qcow2", out, "across file systems");
  unlink (out);
  free (out);
  out = vv_printf ("%s/out.raw", dir);
  flatten_and_compare (chain, "raw", out, "across file systems");
  unlink (out);
  free (out);
  rmdir (dir);
  free (base);
  free (o1);
}

static void
test_cancel (void)
{
  char *base = random_base ("c-base", 8 * MiB);
  struct vv_disk_rec d = record_of (base);
  struct vv_restore_image v = { .fd = open (base, O_RDONLY | O_CLOEXEC),
                                .d = &d, .backup_id = "bk-test" };
  struct vv_progress p = { 0 };
  static uint8_t buf[VV_RESTORE_BUF_SIZE];
  char *out = tl_path ("c-out.qcow2");
  int fd = open (out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

  CHECK (v.fd >= 0 && fd >= 0, "open: %s", strerror (errno));
  atomic_store (&p.cancel, true);
  vv_clear_error ();
  CHECK (vv_restore_flatten (&v, 1, "qcow2", fd, out, "vda", 100, &p,
                             buf) == -1,
         "a cancelled flatten succeeded");
  CHECK (vv_get_error_code () == VV_ERR_CANCELLED, "error %d: %s",
         (int) vv_get_error_code (), vv_get_error ());
  close (fd);
  close (v.fd);
  printf ("ok cancel: %s\n", vv_get_error ());
  free (base);
  free (out);
}

/* A chain image that is not qcow2 is refused with a message. */
static void
test_not_qcow2 (void)
{
  char *raw = tl_path ("n.raw");
  int rfd = tl_create_raw (raw, 4 * MiB);
  struct vv_disk_rec d = record_of (raw);
  struct vv_restore_image v = { .fd = rfd, .d = &d, .backup_id = "bk-x" };
  struct vv_progress p = { 0 };
  static uint8_t buf[VV_RESTORE_BUF_SIZE];
  char *out = tl_path ("n-out.raw");
  int fd = open (out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

  tl_fill_random (rfd, 0, 4 * MiB);
  vv_clear_error ();
  CHECK (vv_restore_flatten (&v, 1, "raw", fd, out, "vda of bk-x", 100,
                             &p, buf) == -1, "a raw file was flattened");
  CHECK (strstr (vv_get_error (), "vda of bk-x") != NULL
         && strstr (vv_get_error (), "qcow2") != NULL, "message: %s",
         vv_get_error ());
  printf ("ok refused: %s\n", vv_get_error ());
  close (fd);
  close (rfd);
  free (raw);
  free (out);
}

/* An image read where it is stored may be rewritten after it was
 * checked (issue 8): a header that now claims another virtual size, or a
 * file grown past its recorded size, is refused instead of deciding the
 * size of the output or what is read.
 */
static void
test_changed_on_target (void)
{
  char *base = random_base ("t-base", 8 * MiB);
  struct vv_disk_rec d = record_of (base);
  struct vv_restore_image v = { .d = &d, .backup_id = "bk-t" };
  struct vv_progress p = { 0 };
  static uint8_t buf[VV_RESTORE_BUF_SIZE];
  char *out = tl_path ("t-out.raw");
  uint8_t big[8] = { 0, 0, 1, 0, 0, 0, 0, 0 };      /* 1 TiB, big-endian */
  struct stat st;
  int fd;

  v.fd = open (base, O_RDWR | O_CLOEXEC);
  CHECK (v.fd >= 0, "open %s: %s", base, strerror (errno));
  CHECK (d.virtual_size == 8 * MiB, "virtual size %" PRIu64, d.virtual_size);

  /* The header now says 1 TiB (the L1 table still covers it: reads as
   * zeros).
   */
  CHECK (pwrite (v.fd, big, sizeof big, 24) == (ssize_t) sizeof big,
         "pwrite: %s", strerror (errno));
  fd = open (out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  vv_clear_error ();
  CHECK (vv_restore_flatten (&v, 1, "raw", fd, out, "vda of bk-t", 100,
                             &p, buf) == -1,
         "flattened an image whose header changed its virtual size");
  CHECK (strstr (vv_get_error (), "virtual size of 1099511627776 bytes, "
                 "the catalog says 8388608") != NULL, "message: %s",
         vv_get_error ());
  CHECK (fstat (fd, &st) == 0 && st.st_size == 0,
         "the output was made %" PRIu64 " bytes", (uint64_t) st.st_size);
  printf ("ok refused: %s\n", vv_get_error ());
  close (fd);
  unlink (out);

  /* Header as recorded, but the file grew past its recorded size. */
  big[2] = 0;
  big[5] = 0x80;                                      /* 8 MiB */
  CHECK (pwrite (v.fd, big, sizeof big, 24) == (ssize_t) sizeof big
         && pwrite (v.fd, "tail", 4, d.stored_bytes) == 4,
         "pwrite: %s", strerror (errno));
  fd = open (out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  vv_clear_error ();
  CHECK (vv_restore_flatten (&v, 1, "raw", fd, out, "vda of bk-t", 100,
                             &p, buf) == -1,
         "flattened an image that grew on the target");
  CHECK (strstr (vv_get_error (), "bytes, the catalog says") != NULL
         && strstr (vv_get_error (), "changed on the target") != NULL,
         "message: %s", vv_get_error ());
  printf ("ok refused: %s\n", vv_get_error ());
  close (fd);
  close (v.fd);
  unlink (out);
  free (base);
  free (out);
}

/* A chain whose images all have an L1 table of QEMU's maximum (32 MiB)
 * for a small disk: the flatten reads the entries it needs, it does not
 * hold every table in memory (16 images would have taken 512 MiB).
 */
#define BIG_L1_LAYERS 16
static void
test_big_l1 (void)
{
  char *base = random_base ("l-base", 8 * MiB);
  char *out = tl_path ("l-out.raw");
  uint8_t h[48], n[4] = { 0x00, 0x40, 0x00, 0x00 };   /* 4 Mi entries */
  uint64_t l1_offset = 0;
  struct vv_disk_rec d;
  pid_t pid;
  int fd, status;

  fd = open (base, O_RDWR | O_CLOEXEC);
  CHECK (fd >= 0 && pread (fd, h, sizeof h, 0) == (ssize_t) sizeof h,
         "read %s: %s", base, strerror (errno));
  for (int i = 40; i < 48; i++)
    l1_offset = l1_offset << 8 | h[i];
  CHECK (pwrite (fd, n, sizeof n, 36) == (ssize_t) sizeof n
         && ftruncate (fd, l1_offset + (32 * MiB)) == 0,
         "enlarge the L1 table of %s: %s", base, strerror (errno));
  close (fd);
  d = record_of (base);

  pid = fork ();
  CHECK (pid >= 0, "fork: %s", strerror (errno));
  if (pid == 0) {
    struct vv_restore_image v[BIG_L1_LAYERS];
    struct vv_progress p = { 0 };
    static uint8_t buf[VV_RESTORE_BUF_SIZE];
    struct rusage before, after;
    int ofd = open (out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int code;

    for (int k = 0; k < BIG_L1_LAYERS; k++)
      v[k] = (struct vv_restore_image) {
        .fd = open (base, O_RDONLY | O_CLOEXEC), .d = &d,
        .backup_id = "bk-l",
      };
    getrusage (RUSAGE_SELF, &before);
    if (vv_restore_flatten (v, BIG_L1_LAYERS, "raw", ofd, out, "vda of bk-l",
                            100, &p, buf) == -1) {
      fprintf (stderr, "flatten: %s\n", vv_get_error ());
      code = 1;
    }
    else {
      getrusage (RUSAGE_SELF, &after);
      printf ("   (peak memory grew by %ld KiB for %d images with 32 MiB "
              "L1 tables)\n", after.ru_maxrss - before.ru_maxrss,
              BIG_L1_LAYERS);
      fflush (stdout);
      code = after.ru_maxrss - before.ru_maxrss > 64 * 1024 ? 2 : 0;
    }
    /* The parent's strings, so valgrind finds no leak in the child. */
    free (base);
    free (out);
    _exit (code);
  }
  CHECK (waitpid (pid, &status, 0) == pid, "waitpid: %s", strerror (errno));
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0,
         "flattening %d images with 32 MiB L1 tables %s", BIG_L1_LAYERS,
         WIFEXITED (status) && WEXITSTATUS (status) == 2
         ? "took more than 64 MiB of memory" : "failed");
  {
    char *o;
    if (tl_run (&o, "'%s' compare -q -f raw -F qcow2 '%s' '%s'",
                tl_qemu_img (), out, base) != 0)
      FAIL ("big L1: flattened raw differs from the image:\n%s", o);
    free (o);
  }
  printf ("ok big L1 tables                               raw identical to the image\n");
  unlink (out);
  free (base);
  free (out);
}

int
main (void)
{
  tl_setup ();
  tl_require (tl_qemu_io ());
  test_qemu_chain ();
  test_grown_disk ();
  test_shrunk_disk ();
  test_our_chain ();
  test_big_sparse ();
  test_other_filesystem ();
  test_cancel ();
  test_not_qcow2 ();
  test_changed_on_target ();
  test_big_l1 ();
  return 0;
}
