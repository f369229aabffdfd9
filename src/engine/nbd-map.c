/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "engine/nbd-map.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

/* NBD lengths are 32 bits; ask for block status in pieces this big. */
#define STATUS_REQUEST_MAX (UINT64_C (1) << 31)
/* In the qemu:dirty-bitmap context, bit 0 means "changed". */
#define DIRTY_FLAG 1
/* Bitmap names are "backup-<disk>"; contexts add a fixed prefix. */
#define CONTEXT_MAX 256

static const char *
nbd_message (void)
{
  const char *m = nbd_get_error ();

  return m && *m ? m : "unknown NBD error";
}

static void
close_handle (struct nbd_handle **h)
{
  if (*h)
    nbd_close (*h);
}

/* ---- the pure part ---- */

/* Marks [a, b) as zero: whole clusters inside get the zero flag, the
 * partial clusters at the edges are read (the rest of such a cluster may
 * not have changed, and a zero flag would hide the backing file's data).
 * The end of the disk counts as a cluster boundary.
 */
static int
mark_zero (struct vv_qcow2_plan *plan, uint64_t size, uint64_t a, uint64_t b)
{
  const uint64_t cs = VV_QCOW2_CLUSTER_SIZE;
  uint64_t lo = (a + cs - 1) / cs * cs;
  uint64_t hi = b == size ? b : b / cs * cs;

  if (lo >= hi)
    return vv_qcow2_plan_mark (plan, a, b - a, VV_QCOW2_DATA);
  if (a < lo && vv_qcow2_plan_mark (plan, a, lo - a, VV_QCOW2_DATA) == -1)
    return -1;
  if (vv_qcow2_plan_mark (plan, lo, hi - lo, VV_QCOW2_ZERO) == -1)
    return -1;
  if (hi < b && vv_qcow2_plan_mark (plan, hi, b - hi, VV_QCOW2_DATA) == -1)
    return -1;
  return 0;
}

int
vv_nbd_plan_dirty (struct vv_qcow2_plan *plan, uint64_t size,
                   const struct vv_extent *dirty, size_t n_dirty,
                   const struct vv_extent *zero, size_t n_zero)
{
  size_t z = 0;

  for (size_t i = 0; i < n_dirty; i++) {
    uint64_t a = dirty[i].offset;
    uint64_t end = dirty[i].offset + dirty[i].length;

    if (end > size)
      end = size;
    while (a < end) {
      uint64_t b;

      while (z < n_zero && zero[z].offset + zero[z].length <= a)
        z++;
      if (z < n_zero && zero[z].offset <= a) {
        /* Inside a zero extent. */
        b = zero[z].offset + zero[z].length;
        if (b > end)
          b = end;
        if (mark_zero (plan, size, a, b) == -1)
          return -1;
      }
      else {
        b = z < n_zero && zero[z].offset < end ? zero[z].offset : end;
        if (vv_qcow2_plan_mark (plan, a, b - a, VV_QCOW2_DATA) == -1)
          return -1;
      }
      a = b;
    }
  }
  return 0;
}

/* ---- reading the extents ---- */

struct extents {
  struct vv_extent *v;
  size_t n, cap;
};

static void
extents_clear (struct extents *e)
{
  free (e->v);
  e->v = NULL;
  e->n = e->cap = 0;
}

/* Appends, merging with an adjacent previous extent. */
static int
extents_add (struct extents *e, uint64_t offset, uint64_t length)
{
  if (e->n && e->v[e->n - 1].offset + e->v[e->n - 1].length == offset) {
    e->v[e->n - 1].length += length;
    return 0;
  }
  if (e->n == e->cap) {
    size_t ncap = e->cap ? e->cap * 2 : 64;
    struct vv_extent *v = reallocarray (e->v, ncap, sizeof *v);
    if (v == NULL)
      return -1;
    e->v = v;
    e->cap = ncap;
  }
  e->v[e->n++] = (struct vv_extent) { offset, length, 0 };
  return 0;
}

struct collect {
  const char *context;
  uint32_t want;                /* keep extents with any of these flags */
  struct extents *out;
  uint64_t end;                 /* of the range asked for */
  uint64_t covered;
  bool failed;
};

static int
collect_cb (void *opaque, const char *metacontext, uint64_t offset,
            uint32_t *entries, size_t nr_entries, int *error)
{
  struct collect *c = opaque;

  (void) error;
  if (strcmp (metacontext, c->context) != 0)
    return 0;
  for (size_t i = 0; i + 1 < nr_entries && offset < c->end; i += 2) {
    uint64_t len = entries[i];

    if (len > c->end - offset)
      len = c->end - offset;
    if ((entries[i + 1] & c->want) && !c->failed
        && extents_add (c->out, offset, len) == -1)
      c->failed = true;
    offset += len;
  }
  if (offset > c->covered)
    c->covered = offset;
  return 0;
}

/* Every extent of the export in context that has a flag of want. */
static int
collect_extents (struct nbd_handle *h, const struct vv_nbd_export *x,
                 const char *context, uint32_t want, uint64_t size,
                 struct extents *out)
{
  uint64_t offset = 0;

  while (offset < size) {
    uint64_t count = size - offset;
    struct collect c = { .context = context, .want = want, .out = out };

    if (count > STATUS_REQUEST_MAX)
      count = STATUS_REQUEST_MAX;
    c.end = offset + count;
    c.covered = offset;
    if (nbd_block_status (h, count, offset,
                          (nbd_extent_callback) { .callback = collect_cb,
                                                  .user_data = &c }, 0)
        == -1) {
      vv_error ("%s failed reading %s at offset %" PRIu64 ": %s", x->what,
                context, offset, nbd_message ());
      return -1;
    }
    if (c.failed) {
      vv_error_errno (ENOMEM, "%s: mapping %s", x->what, context);
      return -1;
    }
    if (c.covered <= offset) {
      vv_error ("%s: the NBD server described no extent of %s at offset %"
                PRIu64, x->what, context, offset);
      return -1;
    }
    offset = c.covered;
  }
  return 0;
}

int
vv_nbd_map_dirty (const struct vv_nbd_export *x, const char *bitmap,
                  const char *backing_file, struct vv_qcow2_plan **ret_plan,
                  uint64_t *ret_dirty)
{
  __attribute__ ((cleanup (close_handle))) struct nbd_handle *h = NULL;
  struct extents dirty = { 0 }, zero = { 0 };
  struct vv_qcow2_plan *plan = NULL;
  char context[CONTEXT_MAX];
  uint64_t dirty_bytes = 0;
  int64_t size;
  int has_alloc;

  if (snprintf (context, sizeof context, "qemu:dirty-bitmap:%s", bitmap)
      >= (int) sizeof context) {
    vv_error ("%s: bitmap name '%s' is too long", x->what, bitmap);
    return -1;
  }
  h = nbd_create ();
  if (h == NULL
      || nbd_set_export_name (h, x->name) == -1
      || nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1
      || nbd_add_meta_context (h, context) == -1
      || nbd_connect_unix (h, x->socket) == -1) {
    vv_error ("%s failed connecting to NBD export '%s' at %s: %s",
              x->what, x->name, x->socket, nbd_message ());
    return -1;
  }
  if (nbd_can_meta_context (h, context) != 1) {
    vv_error ("%s: the NBD export '%s' does not offer the dirty bitmap "
              "'%s', so the changes since the last backup are unknown",
              x->what, x->name, bitmap);
    return -1;
  }
  has_alloc = nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  size = nbd_get_size (h);
  if (size == -1) {
    vv_error ("%s: cannot get the size of NBD export '%s': %s",
              x->what, x->name, nbd_message ());
    return -1;
  }

  if (collect_extents (h, x, context, DIRTY_FLAG, size, &dirty) == -1)
    goto fail;
  /* Without allocation information every dirty byte is read. */
  if (has_alloc == 1 && dirty.n
      && collect_extents (h, x, LIBNBD_CONTEXT_BASE_ALLOCATION,
                          LIBNBD_STATE_ZERO, size, &zero) == -1)
    goto fail;

  plan = vv_qcow2_plan_new (size, backing_file, "qcow2");
  if (plan == NULL) {
    vv_error_prefix ("%s: ", x->what);
    goto fail;
  }
  if (vv_nbd_plan_dirty (plan, size, dirty.v, dirty.n, zero.v, zero.n)
      == -1) {
    vv_error_prefix ("%s: ", x->what);
    goto fail;
  }
  for (size_t i = 0; i < dirty.n; i++)
    dirty_bytes += dirty.v[i].length;
  extents_clear (&dirty);
  extents_clear (&zero);
  nbd_shutdown (h, 0);
  *ret_plan = plan;
  if (ret_dirty)
    *ret_dirty = dirty_bytes;
  return 0;

 fail:
  extents_clear (&dirty);
  extents_clear (&zero);
  vv_qcow2_plan_free (plan);
  return -1;
}
