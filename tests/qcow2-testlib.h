/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the qcow2 writer and checker tests: a scratch
 * directory, running qemu-img, deterministic random data, streaming a
 * plan into a file and checking a file with vv_qcow2_check.
 *
 * A failed assertion prints where and why and exits 1; the scratch
 * directory is removed by an atexit handler either way.
 */
#ifndef VV_QCOW2_TESTLIB_H
#define VV_QCOW2_TESTLIB_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"
#include "util/strutil.h"
#include "qcow2/qcow2.h"

#define MiB (UINT64_C (1) << 20)
#define GiB (UINT64_C (1) << 30)
#define TiB (UINT64_C (1) << 40)

/* Not every test uses every helper. */
#define TL_UNUSED __attribute__ ((unused))

static char tl_dir[4096];

#define FAIL(...)                                                       \
  do {                                                                  \
    fprintf (stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);              \
    fprintf (stderr, __VA_ARGS__);                                      \
    fprintf (stderr, "\n");                                             \
    exit (EXIT_FAILURE);                                                \
  } while (0)

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
               #cond);                                                  \
      FAIL (__VA_ARGS__);                                               \
    }                                                                   \
  } while (0)

/* An operation of ours that must succeed; prints the library error. */
#define OK(expr)                                                        \
  do {                                                                  \
    if ((expr) == -1)                                                   \
      FAIL ("%s: %s", #expr, vv_get_error ());                          \
  } while (0)

static TL_UNUSED void
tl_cleanup (void)
{
  if (tl_dir[0] && getenv ("VV_TEST_KEEP") == NULL)
    vv_remove_tree (tl_dir);
}

static TL_UNUSED char *
tl_path (const char *name)
{
  char *p = vv_printf ("%s/%s", tl_dir, name);
  if (p == NULL)
    FAIL ("out of memory");
  return p;
}

static TL_UNUSED char * __attribute__ ((format (printf, 1, 2)))
tl_pathf (const char *fmt, ...)
{
  char name[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (name, sizeof name, fmt, ap);
  va_end (ap);
  return tl_path (name);
}

static TL_UNUSED double
tl_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs a shell command, returns its exit status and (if ret_out) its
 * combined output, which the caller frees.
 */
static TL_UNUSED int __attribute__ ((format (printf, 2, 3)))
tl_run (char **ret_out, const char *fmt, ...)
{
  char *cmd, *full, *out = NULL;
  size_t len = 0, cap = 0;
  va_list ap;
  FILE *fp;
  int status;

  va_start (ap, fmt);
  if (vasprintf (&cmd, fmt, ap) < 0)
    FAIL ("out of memory");
  va_end (ap);
  full = vv_printf ("%s 2>&1", cmd);
  fp = popen (full, "r");
  if (fp == NULL)
    FAIL ("popen %s: %s", cmd, strerror (errno));
  for (;;) {
    if (cap - len < 4096) {
      cap = cap * 2 + 8192;
      out = realloc (out, cap);
      if (out == NULL)
        FAIL ("out of memory");
    }
    size_t n = fread (out + len, 1, cap - len - 1, fp);
    if (n == 0)
      break;
    len += n;
  }
  out[len] = '\0';
  status = pclose (fp);
  status = WIFEXITED (status) ? WEXITSTATUS (status) : 255;
  if (getenv ("VV_TEST_VERBOSE"))
    fprintf (stderr, "$ %s -> %d\n%s", cmd, status, out);
  free (cmd);
  free (full);
  if (ret_out)
    *ret_out = out;
  else
    free (out);
  return status;
}

static TL_UNUSED const char *
tl_qemu_img (void)
{
  const char *q = getenv ("QEMU_IMG");
  return q && *q && strcmp (q, "no") != 0 ? q : "qemu-img";
}

static TL_UNUSED const char *
tl_qemu_io (void)
{
  const char *q = getenv ("QEMU_IO");
  return q && *q && strcmp (q, "no") != 0 ? q : "qemu-io";
}

/* Missing tools are a failure, not a skip: the writer is only proven
 * by QEMU reading what it wrote.
 */
static TL_UNUSED void
tl_require (const char *tool)
{
  if (tl_run (NULL, "'%s' --version", tool) != 0)
    FAIL ("'%s' is required (install qemu-utils, or set QEMU_IMG)", tool);
}

static TL_UNUSED void
tl_setup (void)
{
  const char *tmp = getenv ("TMPDIR");

  snprintf (tl_dir, sizeof tl_dir, "%s/vv-qcow2-XXXXXX",
            tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp (tl_dir) == NULL)
    FAIL ("mkdtemp %s: %s", tl_dir, strerror (errno));
  atexit (tl_cleanup);
  tl_require (tl_qemu_img ());
}

/* Deterministic data: splitmix64. */
static uint64_t tl_seed = 0x5eed0f00dULL;

static TL_UNUSED uint64_t
tl_rand (void)
{
  uint64_t z = (tl_seed += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Random bytes, never a whole zero word, at [offset, offset+len). */
static TL_UNUSED void
tl_fill_random (int fd, uint64_t offset, uint64_t len)
{
  static uint8_t buf[1 << 20];

  while (len > 0) {
    size_t n = len < sizeof buf ? len : sizeof buf;
    for (size_t i = 0; i < n; i += 8) {
      uint64_t r = tl_rand () | 1;
      memcpy (buf + i, &r, n - i < 8 ? n - i : 8);
    }
    if (pwrite (fd, buf, n, offset) != (ssize_t) n)
      FAIL ("pwrite: %s", strerror (errno));
    offset += n;
    len -= n;
  }
}

static TL_UNUSED void
tl_fill_zero (int fd, uint64_t offset, uint64_t len)
{
  static const uint8_t zero[65536];

  while (len > 0) {
    size_t n = len < sizeof zero ? len : sizeof zero;
    if (pwrite (fd, zero, n, offset) != (ssize_t) n)
      FAIL ("pwrite: %s", strerror (errno));
    offset += n;
    len -= n;
  }
}

/* A sparse raw file of size bytes, opened read-write. */
static TL_UNUSED int
tl_create_raw (const char *path, uint64_t size)
{
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd == -1 || ftruncate (fd, size) == -1)
    FAIL ("creating %s: %s", path, strerror (errno));
  return fd;
}

/* The sink of the writer: plain write(2) at the current position, never a
 * seek, counting what went by so the test can tell the stream was
 * consecutive and reasonably chunked.
 */
struct tl_sink {
  int fd;                       /* -1: count only */
  uint64_t pos;
  uint64_t calls;
  size_t smallest;
  int fail_after;               /* >0: fail that call (1-based) */
};

static TL_UNUSED int
tl_sink_write (void *opaque, const void *buf, size_t count)
{
  struct tl_sink *s = opaque;
  const uint8_t *p = buf;

  s->calls++;
  if (s->fail_after > 0 && s->calls == (uint64_t) s->fail_after) {
    vv_error ("injected write failure");
    return -1;
  }
  if (s->smallest == 0 || count < s->smallest)
    s->smallest = count;
  s->pos += count;
  while (s->fd >= 0 && count > 0) {
    ssize_t r = write (s->fd, p, count);
    if (r <= 0) {
      vv_error_errno (errno, "write");
      return -1;
    }
    p += r;
    count -= r;
  }
  return 0;
}

/* Streams plan into out_path, reading the data runs from the raw file
 * src_path, and checks the stream ended where the plan said.
 */
static TL_UNUSED void
tl_write_image (struct vv_qcow2_plan *plan, const char *src_path,
                const char *out_path)
{
  static uint8_t buf[4 << 20];
  struct tl_sink sink = { .fd = -1 };
  uint64_t iter = 0, off, len, data = 0;
  int src;

  src = open (src_path, O_RDONLY | O_CLOEXEC);
  if (src == -1)
    FAIL ("open %s: %s", src_path, strerror (errno));
  sink.fd = open (out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (sink.fd == -1)
    FAIL ("open %s: %s", out_path, strerror (errno));

  OK (vv_qcow2_write_metadata (plan, tl_sink_write, &sink));
  while (vv_qcow2_plan_next_run (plan, &iter, &off, &len) == 1) {
    CHECK (len > 0 && len <= 64 * MiB, "run of %" PRIu64 " bytes", len);
    CHECK (off % VV_QCOW2_CLUSTER_SIZE == 0, "run at %" PRIu64, off);
    while (len > 0) {
      size_t n = len < sizeof buf ? len : sizeof buf;
      if (pread (src, buf, n, off) != (ssize_t) n)
        FAIL ("pread %s at %" PRIu64 ": short read", src_path, off);
      OK (tl_sink_write (&sink, buf, n));
      off += n;
      len -= n;
      data += n;
    }
  }
  OK (vv_qcow2_write_finish (plan, tl_sink_write, &sink));
  CHECK (data == vv_qcow2_plan_data_bytes (plan),
         "runs gave %" PRIu64 " bytes, plan says %" PRIu64, data,
         vv_qcow2_plan_data_bytes (plan));
  CHECK (sink.pos == vv_qcow2_plan_file_size (plan),
         "wrote %" PRIu64 " bytes, plan says %" PRIu64, sink.pos,
         vv_qcow2_plan_file_size (plan));
  if (close (sink.fd) == -1)
    FAIL ("close %s: %s", out_path, strerror (errno));
  close (src);
}

/* A ranged reader over a file that returns at most max_chunk bytes per
 * call (as a network target might) and counts what it read.
 */
struct tl_reader {
  int fd;
  size_t max_chunk;
  uint64_t bytes;
  uint64_t calls;
};

static TL_UNUSED int64_t
tl_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct tl_reader *r = opaque;
  ssize_t n;

  if (r->max_chunk && count > r->max_chunk)
    count = r->max_chunk;
  n = pread (r->fd, buf, count, offset);
  if (n == -1) {
    vv_error_errno (errno, "pread");
    return -1;
  }
  r->calls++;
  r->bytes += n;
  return n;
}

/* vv_qcow2_check on a file; returns its result, fills info and reader
 * statistics.
 */
static TL_UNUSED int
tl_check_file (const char *path, struct vv_qcow2_info *info,
               struct tl_reader *ret_reader)
{
  struct tl_reader r = { .max_chunk = 24576 };
  struct stat st;
  int ret;

  r.fd = open (path, O_RDONLY | O_CLOEXEC);
  if (r.fd == -1 || fstat (r.fd, &st) == -1)
    FAIL ("open %s: %s", path, strerror (errno));
  vv_clear_error ();
  ret = vv_qcow2_check (tl_read, &r, st.st_size, info);
  close (r.fd);
  if (ret_reader)
    *ret_reader = r;
  return ret;
}

static TL_UNUSED uint64_t
tl_file_size (const char *path)
{
  struct stat st;
  if (stat (path, &st) == -1)
    FAIL ("stat %s: %s", path, strerror (errno));
  return st.st_size;
}

/* `qemu-img check` must find nothing at all wrong. */
static TL_UNUSED void
tl_qemu_check (const char *path)
{
  char *out;
  int r = tl_run (&out, "'%s' check '%s'", tl_qemu_img (), path);

  if (r != 0 || strstr (out, "No errors were found") == NULL
      || strstr (out, "leaked") != NULL || strstr (out, "ERROR") != NULL)
    FAIL ("qemu-img check %s (exit %d):\n%s", path, r, out);
  free (out);
}

/* qcow2 image vs raw file: identical content. */
static TL_UNUSED void
tl_qemu_compare (const char *img, const char *raw)
{
  char *out;
  int r = tl_run (&out, "'%s' compare -f qcow2 -F raw '%s' '%s'",
                  tl_qemu_img (), img, raw);
  if (r != 0)
    FAIL ("qemu-img compare %s %s (exit %d):\n%s", img, raw, r, out);
  free (out);
}

#endif
