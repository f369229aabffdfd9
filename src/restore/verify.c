/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Verify: re-read a backup from its target and check it against the
 * catalog, without writing anything anywhere.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/manifest.h"
#include "qcow2/qcow2.h"
#include "restore/restore.h"
#include "restore/restore-internal.h"
#include "target/block-digests.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

static void
cleanup_backup (struct vv_backup_rec **b)
{
  vv_backup_rec_free (*b);
}

static void
cleanup_target (struct vv_target **t)
{
  vv_target_close (*t);
}

struct ranged_read {
  struct vv_target *t;
  const char *object;
  struct vv_progress *p;
};

/* The checker reads headers and tables only: a few ranged gets. */
static int64_t
target_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct ranged_read *rr = opaque;
  size_t done = 0;

  while (done < count) {
    int64_t n;

    if (vv_progress_cancelled (rr->p)) {
      vv_error_code (VV_ERR_CANCELLED, "cancelled");
      return -1;
    }
    n = vv_target_get (rr->t, rr->object, (char *) buf + done, count - done,
                       offset + done);
    if (n == -1)
      return -1;
    if (n == 0)
      break;
    done += n;
    vv_progress_add_total (rr->p, n);
    vv_progress_add (rr->p, n);
  }
  return done;
}

/* Problems found in what is stored are failures of the backup, whatever
 * code the layer that found them used (a manifest that does not parse is
 * not the caller's invalid input).
 */
static void __attribute__ ((format (printf, 1, 2)))
as_damage (const char *fmt, ...)
{
  struct vv_saved_error saved;
  _cleanup_free_ char *prefix = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&prefix, fmt, ap) == -1)
    prefix = NULL;
  va_end (ap);
  vv_restore_save_error (&saved);
  vv_error ("%s%s", prefix ? prefix : "", saved.message ? saved.message : "");
  free (saved.message);
}

static const char *
or_none (const char *s)
{
  return s ? s : "none";
}

static bool
same (const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a && b && strcmp (a, b) == 0);
}

/* The manifest on the target must describe the backup the catalog has. */
static int
check_manifest (struct vv_target *t, const struct vv_backup_rec *b,
                struct vv_progress *p)
{
  _cleanup_free_ char *prefix = NULL, *name = NULL, *text = NULL;
  _cleanup_free_ char *what = NULL;
  _cleanup_ (cleanup_backup) struct vv_backup_rec *m = NULL;
  const char *tn = vv_target_name (t);
  size_t len;

  if (b->prefix)
    prefix = vv_strdup (b->prefix);
  else
    prefix = vv_backup_prefix (b->domain_uuid, b->chain_id, b->id);
  if (prefix == NULL ||
      (name = vv_printf ("%smanifest.json", prefix)) == NULL ||
      (what = vv_printf ("manifest %s/manifest.json", b->id)) == NULL)
    return -1;
  if (vv_restore_check_object (b->id, name) == -1)
    return -1;
  if (vv_target_read_all (t, name, VV_MANIFEST_MAX, &text, &len) == -1) {
    /* A target that can not be reached keeps its own code. */
    if (vv_get_error_code () == VV_ERR_UNAVAILABLE)
      vv_error_prefix ("reading the manifest of backup %s from target "
                       "'%s': ", b->id, tn);
    else
      as_damage ("reading the manifest of backup %s from target '%s': ",
                 b->id, tn);
    return -1;
  }
  vv_progress_add_total (p, len);
  vv_progress_add (p, len);
  if ((m = vv_manifest_read (what, text, len)) == NULL) {
    as_damage ("backup %s on target '%s': ", b->id, tn);
    return -1;
  }

#define MISMATCH(field, a, bb)                                          \
  do {                                                                  \
    vv_error ("the manifest of backup %s on target '%s' does not match " \
              "the catalog: %s is %s there, %s in the catalog",         \
              b->id, tn, field, or_none (a), or_none (bb));             \
    return -1;                                                          \
  } while (0)

  if (!same (m->id, b->id))
    MISMATCH ("id", m->id, b->id);
  if (!same (m->type, b->type))
    MISMATCH ("type", m->type, b->type);
  if (!same (m->chain_id, b->chain_id))
    MISMATCH ("chain", m->chain_id, b->chain_id);
  if (!same (m->parent_id, b->parent_id))
    MISMATCH ("parent", m->parent_id, b->parent_id);
  /* A backup made before digests were recorded has none in either. */
  if (b->domain_xml_sha256 &&
      (m->domain_xml_sha256 == NULL ||
       strcasecmp (m->domain_xml_sha256, b->domain_xml_sha256) != 0))
    MISMATCH ("the sha256 of the domain XML", m->domain_xml_sha256,
              b->domain_xml_sha256);
  if (m->n_disks != b->n_disks) {
    vv_error ("the manifest of backup %s on target '%s' lists %zu disks; "
              "the catalog has %zu", b->id, tn, m->n_disks, b->n_disks);
    return -1;
  }
  for (size_t i = 0; i < b->n_disks; i++) {
    const struct vv_disk_rec *d = &b->disks[i];
    const struct vv_disk_rec *md = NULL;

    for (size_t j = 0; j < m->n_disks; j++)
      if (same (m->disks[j].name, d->name))
        md = &m->disks[j];
    if (md == NULL) {
      vv_error ("the manifest of backup %s on target '%s' has no disk '%s'",
                b->id, tn, d->name);
      return -1;
    }
    if (md->sha256 == NULL || d->sha256 == NULL ||
        strcasecmp (md->sha256, d->sha256) != 0) {
      vv_error ("the manifest of backup %s on target '%s' gives disk %s the "
                "sha256 %s; the catalog has %s", b->id, tn, d->name,
                or_none (md->sha256), or_none (d->sha256));
      return -1;
    }
    /* A backup made before block digests has none in either. */
    if (d->blocks_sha256 &&
        (md->blocks_sha256 == NULL ||
         strcasecmp (md->blocks_sha256, d->blocks_sha256) != 0 ||
         !same (md->blocks_object, d->blocks_object) ||
         md->block_size != d->block_size)) {
      vv_error ("the manifest of backup %s on target '%s' gives disk %s the "
                "block digests %s (sha256 %s); the catalog has %s (sha256 "
                "%s)", b->id, tn, d->name, or_none (md->blocks_object),
                or_none (md->blocks_sha256), d->blocks_object,
                d->blocks_sha256);
      return -1;
    }
    if (md->virtual_size != d->virtual_size ||
        md->stored_bytes != d->stored_bytes) {
      vv_error ("the manifest of backup %s on target '%s' gives disk %s a "
                "virtual size of %" PRIu64 " and %" PRIu64 " stored bytes; "
                "the catalog has %" PRIu64 " and %" PRIu64, b->id, tn,
                d->name, md->virtual_size, md->stored_bytes,
                d->virtual_size, d->stored_bytes);
      return -1;
    }
  }
#undef MISMATCH
  return 0;
}

/* The domain XML on the target must be the one the backup wrote. */
static int
check_domain_xml (struct vv_target *t, const struct vv_backup_rec *b,
                  struct vv_progress *p)
{
  _cleanup_free_ char *name = NULL, *xml = NULL;
  size_t len;

  if (b->domain_xml_sha256 == NULL)
    return 0;
  if ((name = vv_printf ("%sdomain.xml", b->prefix)) == NULL ||
      vv_restore_check_object (b->id, name) == -1)
    return -1;
  if (vv_target_read_all (t, name, VV_DOMAIN_XML_STORED_MAX, &xml,
                          &len) == -1) {
    if (vv_get_error_code () == VV_ERR_UNAVAILABLE)
      vv_error_prefix ("reading the domain XML of backup %s from target "
                       "'%s': ", b->id, vv_target_name (t));
    else
      as_damage ("reading the domain XML of backup %s from target '%s': ",
                 b->id, vv_target_name (t));
    return -1;
  }
  vv_progress_add_total (p, len);
  vv_progress_add (p, len);
  return vv_restore_check_domain_xml (b, xml, len);
}

/* Reads the sidecar of block digests of d and checks it against what the
 * catalog recorded: its sha256, then every field of it (the catalog is
 * trusted, the target is not).  0 with nothing in *ret when the backup
 * has none (made before block digests).
 */
static int
load_blocks (struct vv_target *t, const struct vv_backup_rec *b,
             const struct vv_disk_rec *d, struct vv_progress *p,
             struct vv_block_digests *ret)
{
  _cleanup_free_ char *buf = NULL, *what = NULL;
  const char *tn = vv_target_name (t);
  const char *base = vv_restore_object_base (d->object);
  uint64_t want = vv_block_digests_len (d->stored_bytes, d->block_size);
  char sha[VV_SHA256_HEX];
  size_t len;

  if (d->blocks_object == NULL)
    return 0;
  if (vv_restore_check_object (b->id, d->blocks_object) == -1)
    return -1;
  what = vv_printf ("the block digests of %s of backup %s on target '%s' "
                    "(object %s)", base, b->id, tn, d->blocks_object);
  if (what == NULL)
    return -1;
  if (want == 0 || want > SIZE_MAX - 1) {
    vv_error ("%s: the catalog records the block size %u, which no "
              "sidecar has", what, d->block_size);
    return -1;
  }
  /* One byte more than it must be, so a longer one is seen as such. */
  if (vv_target_read_all (t, d->blocks_object, want + 1, &buf, &len) == -1) {
    if (vv_get_error_code () == VV_ERR_UNAVAILABLE)
      vv_error_prefix ("reading %s: ", what);
    else if (vv_get_error_code () == VV_ERR_NOT_FOUND
             || vv_get_error_plugin_errno () == ENOENT)
      vv_error ("%s are missing", what);
    else
      as_damage ("reading %s: ", what);
    return -1;
  }
  vv_progress_add_total (p, len);
  vv_progress_add (p, len);
  if (vv_sha256_hex (buf, len, sha) == -1)
    return -1;
  if (d->blocks_sha256 == NULL || strcasecmp (sha, d->blocks_sha256) != 0) {
    vv_error ("%s are corrupt: sha256 is %s, expected %s", what, sha,
              or_none (d->blocks_sha256));
    return -1;
  }
  if (vv_block_digests_parse (buf, len, d->stored_bytes, d->block_size,
                              what, ret) == -1)
    return -1;
  return 0;
}

/* The structure of one stored image, and where its backing file points. */
static int
check_image (struct vv_target *t, const struct vv_restore_chain *chain,
             const struct vv_disk_rec *d, struct vv_progress *p)
{
  const struct vv_backup_rec *b = chain->v[0];
  const char *base = vv_restore_object_base (d->object);
  struct ranged_read rr = { t, d->object, p };
  struct vv_qcow2_info info = { 0 };
  const struct vv_disk_rec *parent;
  size_t idx;
  int ret = -1;

  if (vv_qcow2_check (target_read, &rr, d->stored_bytes, &info) == -1) {
    if (vv_progress_cancelled (p))
      vv_error_code (VV_ERR_CANCELLED, "verify of backup %s was cancelled",
                     b->id);
    else
      vv_error_prefix ("%s of backup %s on target '%s' is damaged: ",
                       base, b->id, vv_target_name (t));
    return -1;
  }
  if (info.virtual_size != d->virtual_size) {
    vv_error ("%s of backup %s on target '%s' has a virtual size of %" PRIu64
              " bytes, but the catalog says %" PRIu64, base, b->id,
              vv_target_name (t), info.virtual_size, d->virtual_size);
    goto out;
  }
  /* The backing file is the one the catalog recorded: the image of the
   * parent (none for a full, or for a disk added after the chain began,
   * which an incremental stores whole).
   */
  if (vv_restore_chain_backing (chain, 0, d, vv_target_name (t),
                                info.backing_file, &parent, &idx) == -1)
    goto out;
  ret = 0;
 out:
  vv_qcow2_info_clear (&info);
  return ret;
}

static int
found_one (void *opaque, const char *name, uint64_t size)
{
  (void) name;
  (void) size;
  *(bool *) opaque = true;
  return -1;                    /* one is enough: stop the listing */
}

/* A backup whose manifest is missing is damaged, unless the target holds
 * nothing at all: an unmounted file target or an emptied bucket says
 * nothing about this backup, and marking every backup on it corrupt
 * would be wrong.  -1 (unavailable) for an empty target.
 */
static int
check_not_empty (struct vv_target *t, const struct vv_backup_rec *b)
{
  _cleanup_free_ char *name = vv_printf ("%smanifest.json", b->prefix);
  bool any = false;
  int r;

  if (name == NULL)
    return -1;
  r = vv_target_stat (t, name, NULL);
  if (r != 0)
    return 0;                   /* there, or the read will say what fails */
  if (vv_target_list (t, "", found_one, &any) == -1 && !any)
    return 0;
  vv_clear_error ();
  if (any)
    return 0;
  vv_error_code (VV_ERR_UNAVAILABLE, "target '%s' holds no objects at all "
                 "(not mounted, or emptied?); backup %s was not verified",
                 vv_target_name (t), b->id);
  return -1;
}

/* How far a verify got: a failure before STAGE_FOUND is about the
 * request (no such backup, not completed) and nothing is recorded; before
 * STAGE_READING the target could not be opened (no verdict); after it, a
 * failure is about what is stored, or the target.
 */
enum stage { STAGE_NONE, STAGE_FOUND, STAGE_READING };

static int
verify (struct vv_engine *e, const char *backup_id, int64_t owner_filter,
        struct vv_progress *p, enum stage *ret_stage)
{
  _cleanup_ (cleanup_target) struct vv_target *t = NULL;
  _cleanup_free_ void *buf = NULL;
  struct vv_restore_chain chain = { NULL, 0 };
  struct vv_backup_rec *b;
  int ret = -1;

  *ret_stage = STAGE_NONE;
  if (backup_id == NULL) {
    vv_error_code (VV_ERR_INVALID, "the backup to verify is missing");
    return -1;
  }
  b = vv_catalog_backup_get (e->catalog, backup_id, owner_filter);
  if (b == NULL)
    return -1;
  if (strcmp (b->status, "completed") != 0) {
    vv_error_code (VV_ERR_INVALID, "backup %s is %s; only completed backups "
                   "can be verified", b->id, b->status);
    vv_backup_rec_free (b);
    return -1;
  }
  /* The ancestors tell where an incremental's backing file must point. */
  if (vv_restore_chain_load (e, b, owner_filter, &chain) == -1)
    return -1;
  b = chain.v[0];
  *ret_stage = STAGE_FOUND;

  if ((t = vv_restore_open_target (e, b->target)) == NULL) {
    vv_error_prefix ("verifying backup %s: ", b->id);
    goto out;
  }
  if ((buf = malloc (VV_RESTORE_FETCH_BUF)) == NULL) {
    vv_error_errno (ENOMEM, "verifying backup %s", b->id);
    goto out;
  }
  for (size_t i = 0; i < b->n_disks; i++)
    vv_progress_add_total (p, b->disks[i].stored_bytes);

  if (b->prefix && check_not_empty (t, b) == -1)
    goto out;
  *ret_stage = STAGE_READING;
  if (check_manifest (t, b, p) == -1 || check_domain_xml (t, b, p) == -1)
    goto out;
  for (size_t i = 0; i < b->n_disks; i++) {
    const struct vv_disk_rec *d = &b->disks[i];
    struct vv_block_digests blocks = { 0 };
    int r;

    /* The image is read whole for its sha256 anyway: its blocks are
     * checked on the way, so a verify proves the sidecar agrees.
     */
    if (vv_restore_check_object (b->id, d->object) == -1 ||
        load_blocks (t, b, d, p, &blocks) == -1)
      goto out;
    if (d->blocks_object)
      r = vv_restore_fetch_check_blocks (t, b->id, d, &blocks, buf, p);
    else
      r = vv_restore_fetch (t, b->id, d, -1, NULL, buf, p);
    vv_block_digests_clear (&blocks);
    if (r == -1 || check_image (t, &chain, d, p) == -1)
      goto out;
  }
  ret = 0;
 out:
  vv_restore_chain_clear (&chain);
  return ret;
}

/* What a verify that got to stage says of the backup.  A target that
 * could not be opened or reached, that refused access, and a cancel say
 * nothing; the rest (a checksum or size that does not match, a missing
 * object, a manifest or qcow2 structure that is wrong) is damage.
 */
static const char *
verdict (int r, enum stage stage)
{
  int err = vv_get_error_plugin_errno ();

  if (r == 0)
    return "ok";
  if (vv_get_error_code () == VV_ERR_CANCELLED)
    return "cancelled";
  if (stage < STAGE_READING || vv_get_error_code () == VV_ERR_UNAVAILABLE
      || err == EACCES || err == EPERM)
    return "failed";
  return "corrupt";
}

int
vv_verify_backup (struct vv_engine *e, const char *backup_id,
                  int64_t owner_filter, struct vv_progress *p,
                  bool *ret_corrupt)
{
  struct vv_saved_error saved = { VV_ERR_NONE, NULL };
  enum stage stage;
  const char *result;
  int r;

  if (ret_corrupt)
    *ret_corrupt = false;
  r = verify (e, backup_id, owner_filter, p, &stage);
  if (stage == STAGE_NONE)
    return r;
  result = verdict (r, stage);
  if (r == -1)
    vv_restore_save_error (&saved);
  if (vv_catalog_backup_set_verified (e->catalog, backup_id, result,
                                      r == -1 ? saved.message : NULL) == -1) {
    /* The verify's own error, if any, is what the caller must see. */
    if (r == 0)
      return -1;
    vv_clear_error ();
  }
  if (r == -1)
    vv_restore_restore_error (&saved);
  if (ret_corrupt)
    *ret_corrupt = strcmp (result, "corrupt") == 0;
  return r;
}
