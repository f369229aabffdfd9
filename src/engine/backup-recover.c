/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Recovery of backups a stopped daemon left behind, and cleanups that
 * could not be finished when they were due.
 *
 * A backup left pending or running is normally an interrupted attempt:
 * its job, checkpoint, objects and run directory are removed and it is
 * marked failed.  But the manifest is published before the catalog
 * records the completion, so a crash (or a power cut that lost the
 * commit) in between leaves a complete backup marked running: when the
 * target holds a valid manifest of exactly this backup and every object
 * it names is there with the size and digest it states, the backup is
 * recorded completed instead, and its checkpoint is kept.
 *
 * What a cleanup could not undo (libvirt or the target unreachable, a
 * checkpoint libvirt refused to delete) is kept in the backup's `cleanup`
 * column and retried: on the scheduler's timer and before the domain's
 * next backup.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "engine/domain.h"
#include "engine/engine.h"
#include "engine/engine-internal.h"
#include "engine/manifest.h"
#include "target/block-digests.h"
#include "target/target.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/sha256.h"
#include "util/strutil.h"

#define MANIFEST_OBJECT "manifest.json"
#define DOMAIN_XML_OBJECT "domain.xml"
/* Read size when checking the digest of a stored object. */
#define DIGEST_CHUNK (4 * 1024 * 1024)

static bool
same (const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a && b && strcmp (a, b) == 0);
}

static void
cleanup_rec (struct vv_backup_rec **b)
{
  vv_backup_rec_free (*b);
}

/* The sha256 of a stored object, read through the plugin. */
static int
object_digest (struct vv_target *t, const char *name, uint64_t size,
               char ret[VV_SHA256_HEX])
{
  _cleanup_free_ char *buf = malloc (DIGEST_CHUNK);
  struct vv_sha256 *h = vv_sha256_new ();
  uint64_t off = 0;
  int ret_code = -1;

  if (buf == NULL || h == NULL) {
    vv_error_errno (ENOMEM, "checking %s", name);
    goto out;
  }
  while (off < size) {
    size_t want = size - off < DIGEST_CHUNK ? size - off : DIGEST_CHUNK;
    int64_t got = vv_target_get (t, name, buf, want, off);
    if (got <= 0) {
      if (got == 0)
        vv_error ("object %s ended at %llu bytes", name,
                  (unsigned long long) off);
      goto out;
    }
    vv_sha256_update (h, buf, (size_t) got);
    off += (uint64_t) got;
  }
  vv_sha256_final (h, ret);
  ret_code = 0;
 out:
  vv_sha256_free (h);
  return ret_code;
}

/* 1 when object is on the target with the size and sha256 its manifest
 * states, 0 (why says what differs) when not, -1 on an error.
 */
static int
stored_as_stated (struct vv_target *t, const char *object, uint64_t want,
                  const char *want_sha, char **why)
{
  char sha[VV_SHA256_HEX];
  uint64_t size;
  int r = vv_target_stat (t, object, &size);

  if (r == -1)
    return -1;
  if (r == 0 || size != want) {
    *why = vv_printf ("object %s is %s", object, r == 0 ? "missing"
                      : "not the size its manifest states");
    return 0;
  }
  if (object_digest (t, object, size, sha) == -1)
    return -1;
  if (want_sha == NULL || strcmp (sha, want_sha) != 0) {
    *why = vv_printf ("object %s does not have the sha256 its manifest "
                      "states", object);
    return 0;
  }
  return 1;
}

/* Whether the target holds backup b complete: 1 yes (the manifest's
 * record in *ret), 0 no (why in *why), -1 when the target could not be
 * read.  The manifest is untrusted: it must describe exactly the backup
 * the catalog knows (id, domain, chain, parent, type, checkpoint,
 * prefix), and each object must be there with the stated size and
 * sha256.
 */
static int
published_complete (struct vv_target *t, const struct vv_backup_rec *b,
                    struct vv_backup_rec **ret, char **why)
{
  _cleanup_free_ char *object = NULL, *text = NULL, *xml = NULL;
  _cleanup_ (cleanup_rec) struct vv_backup_rec *m = NULL;
  size_t len;
  uint64_t size;
  int r;

  if (b->prefix == NULL || b->prefix[0] == '\0'
      || strcmp (b->status, "running") != 0)
    return 0;
  object = vv_printf ("%s" MANIFEST_OBJECT, b->prefix);
  xml = vv_printf ("%s" DOMAIN_XML_OBJECT, b->prefix);
  if (object == NULL || xml == NULL)
    return -1;
  r = vv_target_stat (t, object, &size);
  if (r <= 0)
    return r;
  if (vv_target_read_all (t, object, VV_MANIFEST_MAX, &text, &len) == -1)
    return -1;
  m = vv_manifest_read (object, text, len);
  if (m == NULL) {
    *why = vv_printf ("its manifest is not valid: %s", vv_get_error ());
    return 0;
  }
  if (!same (m->id, b->id) || !same (m->domain_uuid, b->domain_uuid)
      || !same (m->chain_id, b->chain_id) || !same (m->type, b->type)
      || !same (m->parent_id, b->parent_id)
      || !same (m->checkpoint, b->checkpoint)
      || m->offline != b->offline) {
    *why = vv_printf ("its manifest %s describes another backup", object);
    return 0;
  }
  if (m->n_disks == 0) {
    *why = vv_printf ("its manifest %s names no disk", object);
    return 0;
  }
  r = vv_target_stat (t, xml, &size);
  if (r <= 0) {
    if (r == 0)
      *why = vv_printf ("%s is missing", xml);
    return r;
  }
  for (size_t i = 0; i < m->n_disks; i++) {
    const struct vv_disk_rec *d = &m->disks[i];

    if (!vv_str_has_prefix (d->object, b->prefix)) {
      *why = vv_printf ("its manifest puts disk %s outside %s", d->name,
                        b->prefix);
      return 0;
    }
    /* What the catalog already recorded of the disk must agree. */
    for (size_t j = 0; j < b->n_disks; j++)
      if (strcmp (b->disks[j].name, d->name) == 0
          && (!same (b->disks[j].sha256, d->sha256)
              || b->disks[j].stored_bytes != d->stored_bytes
              || !same (b->disks[j].object, d->object))) {
        *why = vv_printf ("disk %s in its manifest differs from the "
                          "catalog", d->name);
        return 0;
      }
    r = stored_as_stated (t, d->object, d->stored_bytes, d->sha256, why);
    /* The sidecar of block digests too: a published manifest names it. */
    if (r == 1 && d->blocks_object)
      r = stored_as_stated (t, d->blocks_object,
                            vv_block_digests_len (d->stored_bytes,
                                                  d->block_size),
                            d->blocks_sha256, why);
    if (r != 1)
      return r;
  }
  *ret = TAKE_PTR (m);
  return 1;
}

/* Records b completed from its manifest m: the disks the catalog missed,
 * the size, the checkpoint's XML.  Ends a libvirt job still serving the
 * attempt and removes its run directory.
 */
static int
record_completed (struct vv_engine *e, const struct vv_backup_rec *b,
                  const struct vv_backup_rec *m, virDomainPtr dom)
{
  _cleanup_free_ char *run_dir = vv_engine_run_dir (e, b->id);

  for (size_t i = 0; i < m->n_disks; i++) {
    bool known = false;
    for (size_t j = 0; j < b->n_disks && !known; j++)
      known = strcmp (b->disks[j].name, m->disks[i].name) == 0;
    if (!known && vv_catalog_backup_add_disk (e->catalog, b->id,
                                              &m->disks[i]) == -1)
      return -1;
  }
  if (vv_catalog_backup_complete (e->catalog, b->id, m->size_bytes) == -1)
    return -1;
  if (dom && run_dir && virDomainIsActive (dom) == 1
      && vv_engine_backup_job_in (dom, run_dir))
    vv_engine_abort_job (dom, b->domain);
  if (run_dir)
    vv_remove_tree (run_dir);
  /* As a backup that completes in the normal way: only the newest point's
   * checkpoint stays in libvirt (the daemon stopped before it pruned).
   */
  if (dom && b->checkpoint)
    vv_engine_prune_checkpoints (e, dom, b->domain_uuid, b->checkpoint);
  if (dom && b->checkpoint && b->checkpoint_xml == NULL) {
    _cleanup_free_ char *xml = vv_engine_checkpoint_xml (dom, b->checkpoint);
    if (xml)
      vv_catalog_backup_set_checkpoint_xml (e->catalog, b->id, xml);
  }
  vv_clear_error ();
  return 0;
}

static void
attempt_of (const struct vv_backup_rec *b, struct vv_attempt *a)
{
  a->backup_id = b->id;
  a->domain = b->domain;
  a->checkpoint = b->checkpoint;
  a->prefix = b->prefix;
  a->target = b->target;
}

/* The domain of b on a connection opened here (conn must be closed by the
 * caller); NULL with *gone set when it no longer exists, NULL with *gone
 * clear when libvirt is unreachable.
 */
static virDomainPtr
lookup (struct vv_engine *e, const struct vv_backup_rec *b,
        virConnectPtr *conn, bool *gone)
{
  virDomainPtr dom = NULL;

  *gone = false;
  if (*conn == NULL)
    *conn = vv_libvirt_open (e->libvirt_uri);
  if (*conn) {
    dom = virDomainLookupByUUIDString (*conn, b->domain_uuid);
    *gone = dom == NULL && virGetLastErrorCode () == VIR_ERR_NO_DOMAIN;
  }
  vv_clear_error ();
  return dom;
}

int
vv_backup_recover (struct vv_engine *e, const struct vv_backup_rec *b,
                   const char *reason, char **ret_note)
{
  _cleanup_vir_conn_ virConnectPtr conn = NULL;
  _cleanup_vir_domain_ virDomainPtr dom = NULL;
  _cleanup_ (cleanup_rec) struct vv_backup_rec *m = NULL;
  _cleanup_free_ char *why = NULL;
  struct vv_target *t = NULL;
  struct vv_attempt a = { 0 };
  bool gone;
  int r = 0;

  if (ret_note)
    *ret_note = NULL;
  dom = lookup (e, b, &conn, &gone);
  if (b->target && strcmp (b->status, "running") == 0) {
    t = vv_engine_open_target (e, b->target);
    r = t ? published_complete (t, b, &m, &why) : -1;
    if (r == 1) {
      vv_target_close (t);
      return record_completed (e, b, m, dom) == -1
        ? -1 : VV_RECOVER_COMPLETED;
    }
    if (r == -1) {
      /* Nothing is deleted from a target that could not be checked. */
      vv_target_close (t);
      t = NULL;
      why = vv_printf ("the target could not be checked for its manifest: "
                       "%s", vv_get_error ());
    }
  }
  if (ret_note && why)
    *ret_note = TAKE_PTR (why);
  attempt_of (b, &a);
  if (r == -1)
    a.prefix = NULL;
  r = vv_engine_cleanup_attempt (e, dom, gone, &a, false, t, "failed",
                                 reason ? reason : "interrupted");
  vv_target_close (t);
  if (r == 0 && a.prefix == NULL && b->prefix && b->prefix[0]) {
    /* Kept for later: the objects were not looked at. */
    _cleanup_free_ char *left =
      vv_printf ("the objects under %s were not removed: the target could "
                 "not be checked", b->prefix);
    if (vv_catalog_backup_set_cleanup (e->catalog, b->id, left) == -1)
      return -1;
    r = 1;
  }
  return r == -1 ? -1 : r == 1 ? VV_RECOVER_PENDING : VV_RECOVER_FAILED;
}

int
vv_backup_retry_cleanups (struct vv_engine *e, const char *domain_uuid,
                          unsigned *ret_done, unsigned *ret_left)
{
  struct vv_backup_rec **v = NULL;
  size_t n = 0;
  _cleanup_vir_conn_ virConnectPtr conn = NULL;
  unsigned done = 0, left = 0;

  if (vv_catalog_backup_list_cleanup (e->catalog, domain_uuid, &v, &n) == -1)
    return -1;
  for (size_t i = 0; i < n; i++) {
    const struct vv_backup_rec *b = v[i];
    struct vv_attempt a = { 0 };
    virDomainPtr dom;
    bool gone;
    int r;

    /* Only finished attempts: a pending or running one is not ours. */
    if (strcmp (b->status, "failed") != 0
        && strcmp (b->status, "cancelled") != 0)
      continue;
    dom = lookup (e, b, &conn, &gone);
    attempt_of (b, &a);
    r = vv_engine_cleanup_attempt (e, dom, gone, &a, false, NULL, NULL,
                                   NULL);
    if (dom)
      virDomainFree (dom);
    if (r == 0)
      done++;
    else
      left++;
  }
  vv_backup_recs_free (v, n);
  if (ret_done)
    *ret_done = done;
  if (ret_left)
    *ret_left = left;
  return 0;
}
