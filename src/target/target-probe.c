/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `virtvault target test`: write, read back a range, list and delete a
 * probe object, timing each step, so an operator sees the latency and
 * throughput a target gives before trusting backups to it.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"
#include "target/target.h"

/* Big enough to see a throughput beyond the first request's latency, and
 * more than one S3 part; small enough for a quick test on a slow link.
 */
#define PROBE_SIZE (8u * 1024 * 1024)
#define PROBE_READ (1024u * 1024)

static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct seen {
  const char *name;
  uint64_t size;
  bool found;
};

static int
find_probe (void *opaque, const char *name, uint64_t size)
{
  struct seen *s = opaque;

  if (strcmp (name, s->name) == 0) {
    s->found = true;
    s->size = size;
  }
  return 0;
}

/* The probe's bytes: a pattern that a misplaced range read would not
 * reproduce.
 */
static void
fill (unsigned char *buf, size_t len)
{
  for (size_t i = 0; i < len; i++)
    buf[i] = (unsigned char) ((i * 2654435761u) >> 13);
}

static int
probe (struct vv_target *t, const char *name, unsigned char *buf,
       struct vv_target_probe *res)
{
  struct vv_target_writer *w;
  struct vv_target_reader *r;
  struct seen seen = { .name = name };
  unsigned char *back = buf + PROBE_SIZE;
  uint64_t size;
  double t0;
  int64_t n;

  t0 = now_s ();
  w = vv_target_put_begin_sized (t, name, PROBE_SIZE);
  if (w == NULL)
    return -1;
  for (size_t off = 0; off < PROBE_SIZE; off += PROBE_READ)
    if (vv_target_put_write (w, buf + off, PROBE_READ) == -1) {
      vv_target_put_abort (w);
      return -1;
    }
  if (vv_target_put_commit (w, NULL, NULL) == -1)
    return -1;
  res->write_seconds = now_s () - t0;

  t0 = now_s ();
  if (vv_target_list (t, ".virtvault-test/", find_probe, &seen) == -1)
    return -1;
  res->list_seconds = now_s () - t0;
  if (!seen.found || seen.size != PROBE_SIZE) {
    vv_error ("probe %s written to target '%s' is %s its listing", name,
              vv_target_name (t),
              seen.found ? "listed with the wrong size in" : "missing from");
    return -1;
  }

  t0 = now_s ();
  r = vv_target_reader_open (t, name, &size);
  if (r == NULL)
    return -1;
  /* A range in the middle: the target must honour offsets. */
  n = vv_target_reader_pread (r, back, PROBE_READ, PROBE_SIZE / 2 + 4096);
  vv_target_reader_close (r);
  if (n == -1)
    return -1;
  res->read_seconds = now_s () - t0;
  if (size != PROBE_SIZE || n != PROBE_READ ||
      memcmp (back, buf + PROBE_SIZE / 2 + 4096, PROBE_READ) != 0) {
    vv_error ("probe %s read back from target '%s' differs from what was "
              "written", name, vv_target_name (t));
    return -1;
  }
  return 0;
}

int
vv_target_probe (struct vv_target *t, struct vv_target_probe *res)
{
  _cleanup_free_ unsigned char *buf = NULL;
  char id[VV_ID_MAX], name[64];
  double t0;
  int r;

  memset (res, 0, sizeof *res);
  t0 = now_s ();
  if (vv_target_test (t) == -1)
    return -1;
  res->test_seconds = now_s () - t0;

  if (vv_random_id ("probe", id) == -1)
    return -1;
  snprintf (name, sizeof name, ".virtvault-test/%s", id);
  buf = malloc (PROBE_SIZE + PROBE_READ);
  if (buf == NULL) {
    vv_error_errno (errno, "allocating the probe of target '%s'",
                    vv_target_name (t));
    return -1;
  }
  fill (buf, PROBE_SIZE);
  r = probe (t, name, buf, res);
  {
    /* Removed whatever happened; a failure above stays the message. */
    char saved[2048];
    enum vv_errcode code = vv_get_error_code ();

    snprintf (saved, sizeof saved, "%s", vv_get_error ());
    t0 = now_s ();
    if (vv_target_remove (t, name) == -1 && r == 0)
      return -1;
    res->remove_seconds = now_s () - t0;
    if (r == -1) {
      vv_error_code (code == VV_ERR_NONE ? VV_ERR_UNAVAILABLE : code, "%s",
                     saved);
      vv_error_prefix ("target '%s': ", vv_target_name (t));
      return -1;
    }
  }
  res->probe_bytes = PROBE_SIZE;
  res->read_bytes = PROBE_READ;
  return 0;
}
