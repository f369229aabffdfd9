/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The rules that pick a full or an incremental backup (a table of cases),
 * and the mapping of dirty and zero extents onto an overlay plan.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chain-policy.h"
#include "engine/nbd-map.h"
#include "qcow2/qcow2.h"
#include "util/error.h"

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n  last error: %s\n",  \
               __FILE__, __LINE__, #cond, vv_get_error ());             \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

/* Cases start from a usable chain and override some of its fields. */
#pragma GCC diagnostic ignored "-Woverride-init"

/* A usable chain: the last backup is the 2nd incremental. */
#define OK_CHAIN                                                        \
  .max_chain = 6, .target = "local", .can_track = true,                \
  .last_id = "bk-000000000003", .last_chain = "ch-000000000001",        \
  .last_target = "local", .last_pos = 2, .full_id = "bk-000000000001",  \
  .last_checkpoint = "virtvault-bk-000000000003", .tracked_disks = 1

static const struct {
  const char *name;
  struct vv_chain_facts f;
  int ret;                      /* 0 or -1 */
  const char *expect;           /* start of the reason, or of the error */
} cases[] = {
  { "auto continues", { OK_CHAIN }, 0,
    "incremental: 3rd since full bk-000000000001 (max chain 6)" },
  { "full requested", { OK_CHAIN, .mode = VV_MODE_FULL }, 0,
    "full: requested" },
  { "offline incremental", { OK_CHAIN, .offline = true }, 0,
    "incremental (offline): 3rd since full bk-000000000001 (max chain 6); "
    "changes since checkpoint virtvault-bk-000000000003 of bk-000000000003, "
    "read from the shut-off image" },
  { "live after offline points",
    { OK_CHAIN, .base_id = "bk-000000000002",
      .last_checkpoint = "virtvault-bk-000000000002" }, 0,
    "incremental: 3rd since full bk-000000000001 (max chain 6); changes "
    "since checkpoint virtvault-bk-000000000002 of bk-000000000002 (the "
    "points since were taken offline)" },
  { "offline, no bitmap in the image",
    { OK_CHAIN, .offline = true, .tracked_disks = 0,
      .offline_why = "vda: the image carries no bitmap x" }, 0,
    "full: no selected disk image of the shut-off domain carries a usable "
    "bitmap of checkpoint virtvault-bk-000000000003: vda: the image" },
  { "incremental requested", { OK_CHAIN, .mode = VV_MODE_INCREMENTAL }, 0,
    "incremental: 3rd" },
  { "first backup", { .max_chain = 6, .target = "local", .can_track = true },
    0, "full: no earlier completed backup of this domain" },
  { "first backup, incremental requested",
    { .mode = VV_MODE_INCREMENTAL, .max_chain = 6, .target = "local",
      .can_track = true }, -1,
    "no incremental backup is possible: no earlier completed backup" },
  { "corrupt point in the chain",
    { OK_CHAIN, .corrupt_id = "bk-000000000002",
      .corrupt_why = "vda.qcow2 of backup bk-000000000002 is corrupt" }, 0,
    "full: backup bk-000000000002 of chain ch-000000000001 is marked corrupt "
    "(vda.qcow2 of backup bk-000000000002 is corrupt); an incremental is "
    "never based on a corrupt point" },
  { "corrupt point, incremental requested",
    { OK_CHAIN, .mode = VV_MODE_INCREMENTAL, .corrupt_id = "bk-000000000003",
      .corrupt_why = "x" }, -1,
    "no incremental backup is possible: backup bk-000000000003 of chain "
    "ch-000000000001 is marked corrupt (x)" },
  { "corrupt point, full requested",
    { OK_CHAIN, .mode = VV_MODE_FULL, .corrupt_id = "bk-000000000003" }, 0,
    "full: requested" },
  { "raw disks only", { OK_CHAIN, .can_track = false }, 0,
    "full: no selected disk can track changes" },
  { "other target", { OK_CHAIN, .target = "nfs" }, 0,
    "full: the last backup bk-000000000003 is on target 'local', not 'nfs'" },
  { "no checkpoint", { OK_CHAIN, .last_checkpoint = NULL }, 0,
    "full: the last backup bk-000000000003 has no checkpoint" },
  { "checkpoint missing", { OK_CHAIN, .cp_state = VV_CP_MISSING,
                            .cp_detail = "bitmap not found" }, 0,
    "full: checkpoint virtvault-bk-000000000003 of the last backup is "
    "missing from libvirt (domain redefined?) and could not be redefined: "
    "bitmap not found" },
  { "checkpoint redefined", { OK_CHAIN, .cp_state = VV_CP_REDEFINED }, 0,
    "incremental: 3rd since full bk-000000000001 (max chain 6); checkpoint "
    "virtvault-bk-000000000003 was redefined" },
  { "no tracked disk", { OK_CHAIN, .tracked_disks = 0 }, 0,
    "full: checkpoint virtvault-bk-000000000003 of the last backup tracks "
    "none" },
  { "max chain reached", { OK_CHAIN, .last_pos = 6 }, 0,
    "full: chain ch-000000000001 reached max chain 6" },
  { "max chain reached, incremental requested",
    { OK_CHAIN, .last_pos = 2, .max_chain = 2,
      .mode = VV_MODE_INCREMENTAL }, -1,
    "no incremental backup is possible: chain ch-000000000001 reached max "
    "chain 2" },
  { "first incremental", { OK_CHAIN, .last_pos = 0 }, 0,
    "incremental: 1st" },
  { "11th", { OK_CHAIN, .last_pos = 10, .max_chain = 20 }, 0,
    "incremental: 11th" },
  { "22nd", { OK_CHAIN, .last_pos = 21, .max_chain = 30 }, 0,
    "incremental: 22nd" },
};

static void
test_decisions (void)
{
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct vv_chain_decision d;
    int r = vv_chain_decide (&cases[i].f, &d);
    const char *got = r == 0 ? d.reason : vv_get_error ();

    if (r != cases[i].ret
        || strncmp (got, cases[i].expect, strlen (cases[i].expect)) != 0) {
      fprintf (stderr, "case '%s': returned %d '%s'\n  expected %d '%s...'\n",
               cases[i].name, r, got, cases[i].ret, cases[i].expect);
      exit (EXIT_FAILURE);
    }
    if (r == 0)
      CHECK (d.incremental == (strncmp (d.reason, "incremental", 11) == 0));
    if (r == 0 && d.incremental)
      CHECK (d.pos == cases[i].f.last_pos + 1);
  }
  enum vv_backup_mode m;
  CHECK (vv_backup_mode_parse (NULL, &m) == 0 && m == VV_MODE_AUTO);
  CHECK (vv_backup_mode_parse ("incremental", &m) == 0
         && m == VV_MODE_INCREMENTAL);
  CHECK (vv_backup_mode_parse ("partial", &m) == -1);
}

/* ---- dirty extents onto a plan ---- */

struct membuf {
  unsigned char *p;
  size_t len, cap;
};

static int
mem_write (void *opaque, const void *buf, size_t count)
{
  struct membuf *m = opaque;

  if (m->len + count > m->cap) {
    m->cap = (m->len + count) * 2;
    m->p = realloc (m->p, m->cap);
    CHECK (m->p);
  }
  memcpy (m->p + m->len, buf, count);
  m->len += count;
  return 0;
}

static int64_t
mem_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct membuf *m = opaque;

  if (offset >= m->len)
    return 0;
  if (count > m->len - offset)
    count = m->len - offset;
  memcpy (buf, m->p + offset, count);
  return count;
}

/* Plans the extents, writes the image (zeros for data) and checks it. */
static void
plan_case (uint64_t size, const struct vv_extent *dirty, size_t nd,
           const struct vv_extent *zero, size_t nz, uint64_t data_bytes,
           uint64_t zero_clusters)
{
  struct vv_qcow2_plan *plan = vv_qcow2_plan_new (size, "../bk-1/vda.qcow2",
                                                  "qcow2");
  struct membuf m = { 0 };
  struct vv_qcow2_info info;
  static char zeros[1 << 20];
  uint64_t iter = 0, off, len;

  CHECK (plan);
  CHECK (vv_nbd_plan_dirty (plan, size, dirty, nd, zero, nz) == 0);
  if (vv_qcow2_plan_data_bytes (plan) != data_bytes) {
    fprintf (stderr, "data bytes %llu, expected %llu\n",
             (unsigned long long) vv_qcow2_plan_data_bytes (plan),
             (unsigned long long) data_bytes);
    exit (EXIT_FAILURE);
  }
  CHECK (vv_qcow2_write_metadata (plan, mem_write, &m) == 0);
  while (vv_qcow2_plan_next_run (plan, &iter, &off, &len) == 1)
    for (uint64_t done = 0; done < len;) {
      size_t n = len - done > sizeof zeros ? sizeof zeros : len - done;
      CHECK (mem_write (&m, zeros, n) == 0);
      done += n;
    }
  CHECK (vv_qcow2_write_finish (plan, mem_write, &m) == 0);
  CHECK (vv_qcow2_check (mem_read, &m, m.len, &info) == 0);
  CHECK (info.zero_clusters == zero_clusters);
  CHECK (info.backing_file && strcmp (info.backing_file,
                                      "../bk-1/vda.qcow2") == 0);
  vv_qcow2_info_clear (&info);
  vv_qcow2_plan_free (plan);
  free (m.p);
}

static void
test_plans (void)
{
  const uint64_t C = VV_QCOW2_CLUSTER_SIZE, M = 1 << 20;

  /* Nothing dirty: an empty overlay. */
  plan_case (16 * M, NULL, 0, NULL, 0, 0, 0);
  /* Dirty data, partial cluster: the whole cluster is read. */
  plan_case (16 * M, (struct vv_extent[]) { { C + 512, 4096, 0 } }, 1,
             NULL, 0, C, 0);
  /* Dirty and zero: zero flags, nothing read. */
  plan_case (16 * M, (struct vv_extent[]) { { M, 2 * M, 0 } }, 1,
             (struct vv_extent[]) { { 0, 4 * M, 0 } }, 1, 0, 2 * M / C);
  /* A zero extent that covers part of a cluster: that cluster is read,
   * the whole ones inside get zero flags.
   */
  plan_case (16 * M, (struct vv_extent[]) { { 0, 4 * C, 0 } }, 1,
             (struct vv_extent[]) { { C / 2, 4 * C, 0 } }, 1, C, 3);
  /* Dirty partly data and partly zero; clean zero areas stay
   * unallocated.
   */
  plan_case (16 * M, (struct vv_extent[]) { { 0, 2 * C, 0 },
                                            { 8 * C, 4 * C, 0 } }, 2,
             (struct vv_extent[]) { { C, C, 0 }, { 10 * C, 6 * C, 0 } }, 2,
             3 * C, 3);
  /* The last cluster of a disk whose size is not cluster-aligned: a zero
   * extent up to the end flags it.
   */
  plan_case (4 * C + 512, (struct vv_extent[]) { { 3 * C, C + 512, 0 } }, 1,
             (struct vv_extent[]) { { 3 * C, C + 512, 0 } }, 1, 0, 2);
}

int
main (void)
{
  test_decisions ();
  test_plans ();
  printf ("ok\n");
  return 0;
}
