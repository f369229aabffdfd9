/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "engine/chain-policy.h"
#include "engine/domain.h"
#include "engine/engine.h"
#include "engine/engine-internal.h"
#include "engine/manifest.h"
#include "engine/nbd-map.h"
#include "engine/nbd-reader.h"
#include "engine/offline.h"
#include "qcow2/qcow2.h"
#include "target/block-digests.h"
#include "target/target.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/strutil.h"

/* Longest disk target name we accept ("vda", "sdab"). */
#define DISK_NAME_MAX 32
/* How much of a libvirt message goes into a reason. */
#define REASON_DETAIL_MAX 300

enum quiesce { QUIESCE_OFF, QUIESCE_ON, QUIESCE_TRY };

struct vv_backup_job {
  char *backup_id;
  char *domain;                 /* name at prepare time, for messages */
  char *domain_uuid;
  char *target;
  char *chain_id;
  char *prefix;
  char *checkpoint;             /* NULL when no selected disk can carry one */
  char **disks;                 /* selected target devs, NULL-terminated */
  size_t n_disks;
  /* Incremental chains: per selected disk, whether libvirt reads it
   * incrementally, the backing file name of its overlay image, and
   * whether the new checkpoint tracks it.
   */
  bool incremental;
  char *parent_id;
  char *parent_checkpoint;
  unsigned pos;
  bool *disk_incr;
  char **disk_backing;
  bool *disk_bitmap;
  enum quiesce quiesce;
  bool pause;
  char *notes;
  /* The domain was shut off: its images are read through qemu-nbd, no
   * checkpoint is made, and an incremental reads the bitmap of
   * parent_checkpoint (the chain's base) from the images.
   */
  bool offline;
};

struct vv_backup_job *
vv_backup_job_free (struct vv_backup_job *job)
{
  if (job) {
    free (job->backup_id);
    free (job->domain);
    free (job->domain_uuid);
    free (job->target);
    free (job->chain_id);
    free (job->prefix);
    free (job->checkpoint);
    if (job->disk_backing)
      for (size_t i = 0; i < job->n_disks; i++)
        free (job->disk_backing[i]);
    free (job->disk_backing);
    free (job->disk_incr);
    free (job->disk_bitmap);
    free (job->parent_id);
    free (job->parent_checkpoint);
    free (job->notes);
    vv_strv_free (job->disks);
    free (job);
  }
  return NULL;
}

static void
cleanup_job (struct vv_backup_job **j)
{
  vv_backup_job_free (*j);
}

char *
vv_backup_prefix (const char *domain_uuid, const char *chain_id,
                  const char *backup_id)
{
  return vv_printf ("%s/%s/%s/", domain_uuid, chain_id, backup_id);
}

/* Appends "; text" (or text) to *notes. */
static int
add_note (char **notes, const char *text)
{
  char *n = *notes ? vv_printf ("%s; %s", *notes, text) : vv_strdup (text);

  if (n == NULL)
    return -1;
  free (*notes);
  *notes = n;
  return 0;
}

/* Like vv_domain_disk_ineligible, plus the names we can not use in
 * object names.
 */
static const char *
disk_ineligible (const struct vv_domain_disk *d, bool offline)
{
  const char *why = vv_domain_disk_ineligible (d);

  if (why)
    return why;
  /* qemu-nbd reads files and devices, in a format we name. */
  if (offline && (d->source == NULL || d->source[0] != '/'
                  || (strcmp (d->type, "file") != 0
                      && strcmp (d->type, "block") != 0)))
    return "not a local file or device (needed to back up a shut-off "
      "domain)";
  if (offline && (d->driver_type == NULL
                  || (strcmp (d->driver_type, "qcow2") != 0
                      && strcmp (d->driver_type, "raw") != 0)))
    return "neither qcow2 nor raw (needed to back up a shut-off domain)";
  if (vv_check_name ("disk name", d->target, DISK_NAME_MAX) == -1) {
    vv_clear_error ();
    return "unusual target name";
  }
  return NULL;
}

static const char *
job_operation_name (int op)
{
  switch (op) {
  case VIR_DOMAIN_JOB_OPERATION_START: return "start";
  case VIR_DOMAIN_JOB_OPERATION_SAVE: return "save";
  case VIR_DOMAIN_JOB_OPERATION_RESTORE: return "restore";
  case VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN: return "incoming migration";
  case VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT: return "migration";
  case VIR_DOMAIN_JOB_OPERATION_SNAPSHOT: return "snapshot";
  case VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_REVERT: return "snapshot revert";
  case VIR_DOMAIN_JOB_OPERATION_DUMP: return "dump";
  case VIR_DOMAIN_JOB_OPERATION_BACKUP: return "backup";
  default: return "unknown operation";
  }
}

/* VV_ERR_BUSY when libvirt already runs a job on the domain. */
static int
check_no_job (virDomainPtr dom, const char *name)
{
  virDomainJobInfo info;
  virTypedParameterPtr params = NULL;
  int nparams = 0, type, op = -1;

  if (virDomainGetJobInfo (dom, &info) == -1) {
    vv_error ("cannot get the job state of domain '%s': %s",
              name, vv_libvirt_error ());
    return -1;
  }
  if (info.type == VIR_DOMAIN_JOB_NONE)
    return 0;
  if (virDomainGetJobStats (dom, &type, &params, &nparams, 0) == 0) {
    virTypedParamsGetInt (params, nparams, VIR_DOMAIN_JOB_OPERATION, &op);
    virTypedParamsFree (params, nparams);
  }
  vv_error_code (VV_ERR_BUSY,
                 "domain '%s' already has a libvirt job running (%s); wait "
                 "for it to finish or abort it with 'virsh domjobabort %s'",
                 name, job_operation_name (op), name);
  return -1;
}

/* The disks of the request, in domain order, and notes on what was
 * skipped.
 */
static int
select_disks (const struct vv_domain_info *info, const char *name,
              const struct vv_backup_request *req, bool offline,
              char ***ret_disks,
              size_t *ret_n, char **ret_notes)
{
  _cleanup_strv_ char **sel = NULL;
  _cleanup_free_ char *notes = NULL;
  size_t n = 0;

  sel = calloc (info->n_disks + 1, sizeof *sel);
  if (sel == NULL) {
    vv_error_errno (ENOMEM, "selecting disks");
    return -1;
  }

  if (req->disks) {
    for (size_t i = 0; req->disks[i]; i++) {
      const struct vv_domain_disk *d;
      const char *why;

      d = vv_domain_info_find_disk (info, req->disks[i]);
      if (d == NULL) {
        _cleanup_free_ char *all = NULL;
        for (size_t j = 0; j < info->n_disks; j++) {
          char *s = vv_printf ("%s%s%s", all ? all : "", all ? ", " : "",
                               info->disks[j].target);
          if (s == NULL)
            return -1;
          free (all);
          all = s;
        }
        vv_error_code (VV_ERR_INVALID, "domain '%s' has no disk '%s' "
                       "(disks: %s)", name, req->disks[i],
                       all ? all : "none");
        return -1;
      }
      why = disk_ineligible (d, offline);
      if (why) {
        vv_error_code (VV_ERR_INVALID, "disk %s of domain '%s' can not be "
                       "backed up: %s", d->target, name, why);
        return -1;
      }
      for (size_t j = 0; j < n; j++)
        if (strcmp (sel[j], d->target) == 0) {
          vv_error_code (VV_ERR_INVALID, "disk '%s' is listed twice",
                         d->target);
          return -1;
        }
      if ((sel[n++] = vv_strdup (d->target)) == NULL)
        return -1;
    }
  }
  else {
    const struct vv_domain_disk *primary = NULL;

    for (size_t i = 0; i < info->n_disks; i++) {
      const struct vv_domain_disk *d = &info->disks[i];
      const char *why = disk_ineligible (d, offline);

      if (why) {
        _cleanup_free_ char *note = vv_printf ("skipped %s: %s", d->target,
                                               why);
        if (note == NULL || add_note (&notes, note) == -1)
          return -1;
        continue;
      }
      if (req->all_disks) {
        if ((sel[n++] = vv_strdup (d->target)) == NULL)
          return -1;
      }
      /* The primary disk: the lowest boot order, else the first. */
      else if (primary == NULL
               || (d->boot_order
                   && (primary->boot_order == 0
                       || d->boot_order < primary->boot_order)))
        primary = d;
    }
    if (primary && (sel[n++] = vv_strdup (primary->target)) == NULL)
      return -1;
    if (n == 0) {
      vv_error_code (VV_ERR_INVALID,
                     "domain '%s' has no disk that can be backed up (%s)",
                     name, notes ? notes : "it has no disks");
      return -1;
    }
  }

  for (size_t i = 0; i < n; i++) {
    const struct vv_domain_disk *d = vv_domain_info_find_disk (info, sel[i]);
    if (!vv_domain_disk_can_checkpoint (d)) {
      _cleanup_free_ char *note =
        vv_printf ("no checkpoint on %s: %s image, stored in full every "
                   "time (no change tracking)", d->target,
                   d->driver_type ? d->driver_type : "unknown format");
      if (note == NULL || add_note (&notes, note) == -1)
        return -1;
    }
  }

  *ret_disks = TAKE_PTR (sel);
  *ret_n = n;
  *ret_notes = TAKE_PTR (notes);
  return 0;
}

static bool
any_checkpoint_disk (const struct vv_domain_info *info, char **disks)
{
  for (size_t i = 0; disks[i]; i++)
    if (vv_domain_disk_can_checkpoint (vv_domain_info_find_disk (info,
                                                                 disks[i])))
      return true;
  return false;
}

/* The object of disk name in backup b, or NULL. */
static const struct vv_disk_rec *
backup_disk (const struct vv_backup_rec *b, const char *name)
{
  for (size_t i = 0; b && i < b->n_disks; i++)
    if (b->disks[i].name && strcmp (b->disks[i].name, name) == 0)
      return &b->disks[i];
  return NULL;
}

/* Libvirt's XML of a checkpoint, without its <parent> (which may name a
 * checkpoint deleted since), fit to be redefined later.
 */
char *
vv_engine_checkpoint_xml (virDomainPtr dom, const char *name)
{
  virDomainCheckpointPtr cp = virDomainCheckpointLookupByName (dom, name, 0);
  char *xml, *a, *b;

  if (cp == NULL)
    return NULL;
  xml = virDomainCheckpointGetXMLDesc (cp, 0);
  virDomainCheckpointFree (cp);
  if (xml && (a = strstr (xml, "<parent>")) && (b = strstr (a, "</parent>")))
    memmove (a, b + strlen ("</parent>"), strlen (b + strlen ("</parent>"))
             + 1);
  return xml;
}

/* Is the checkpoint of the last backup in libvirt?  If libvirt lost it
 * (domain undefined and defined again), redefine it from the XML the
 * catalog kept; libvirt validates that the disks still carry its bitmaps.
 */
static enum vv_cp_state
check_checkpoint (virDomainPtr dom, const struct vv_backup_rec *last,
                  char *detail, size_t len)
{
  virDomainCheckpointPtr cp;

  cp = virDomainCheckpointLookupByName (dom, last->checkpoint, 0);
  if (cp) {
    virDomainCheckpointFree (cp);
    return VV_CP_PRESENT;
  }
  if (last->checkpoint_xml == NULL) {
    snprintf (detail, len, "the catalog holds no XML of it");
    return VV_CP_MISSING;
  }
  cp = virDomainCheckpointCreateXML (dom, last->checkpoint_xml,
                                     VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE
                                     | VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE);
  if (cp == NULL) {
    snprintf (detail, len, "%.*s", REASON_DETAIL_MAX, vv_libvirt_error ());
    return VV_CP_MISSING;
  }
  virDomainCheckpointFree (cp);
  return VV_CP_REDEFINED;
}

static bool
is_offline_point (const struct vv_backup_rec *b)
{
  return b->offline;
}

/* The backup whose checkpoint the chain continues from: last itself, or,
 * when last and the points before it were taken offline (which make no
 * checkpoint), the newest ancestor that has one.  *ret_base is last or a
 * new record; NULL when there is none.
 */
static int
find_base (struct vv_engine *e, struct vv_backup_rec *last,
           struct vv_backup_rec **ret_base)
{
  struct vv_backup_rec *b = last;

  for (unsigned steps = 0; b->checkpoint == NULL && is_offline_point (b)
         && b->parent_id && steps <= VV_MAX_CHAIN_LIMIT; steps++) {
    struct vv_backup_rec *parent =
      vv_catalog_backup_get (e->catalog, b->parent_id, VV_OWNER_ANY);

    if (b != last)
      vv_backup_rec_free (b);
    if (parent == NULL) {
      if (vv_get_error_code () != VV_ERR_NOT_FOUND)
        return -1;
      vv_clear_error ();
      *ret_base = NULL;
      return 0;
    }
    b = parent;
  }
  if (b->checkpoint == NULL) {
    if (b != last)
      vv_backup_rec_free (b);
    b = NULL;
  }
  *ret_base = b;
  return 0;
}

/* Offline: which selected disks' images carry a usable bitmap of the
 * base checkpoint (usable[i]); their number, and why the others do not
 * in *ret_why.
 */
static size_t
check_image_bitmaps (const struct vv_domain_info *info,
                     const struct vv_backup_job *job,
                     const struct vv_backup_rec *last, const char *bitmap,
                     bool *usable, char **ret_why)
{
  size_t n = 0;

  for (size_t i = 0; i < job->n_disks; i++) {
    const struct vv_domain_disk *d = vv_domain_info_find_disk (info,
                                                               job->disks[i]);
    const struct vv_disk_rec *pd = backup_disk (last, job->disks[i]);
    char why[REASON_DETAIL_MAX + 1];
    _cleanup_free_ char *note = NULL;

    if (!(pd && pd->bitmap && job->disk_bitmap[i]))
      continue;
    if (vv_offline_bitmap_usable (d->source, d->driver_type, bitmap, why,
                                  sizeof why) == 1) {
      usable[i] = true;
      n++;
      continue;
    }
    vv_clear_error ();
    note = vv_printf ("%s: %s", d->target, why);
    if (note == NULL || add_note (ret_why, note) == -1)
      vv_clear_error ();
  }
  return n;
}

/* Full or incremental, per disk too; fills the chain fields of job and
 * ret_reason.
 */
static int
plan_chain (struct vv_engine *e, virDomainPtr dom,
            const struct vv_domain_info *info,
            const struct vv_backup_request *req, const char *target,
            struct vv_backup_job *job, char **ret_reason)
{
  struct vv_backup_rec *last = NULL;
  struct vv_backup_rec *base = NULL, *corrupt = NULL;
  struct vv_chain_rec *chain = NULL;
  _cleanup_free_ bool *usable = NULL;
  _cleanup_free_ char *offline_why = NULL;
  struct vv_chain_facts f = { 0 };
  struct vv_chain_decision d;
  char detail[REASON_DETAIL_MAX + 1] = "";
  int ret = -1;

  if (vv_backup_mode_parse (req->mode, &f.mode) == -1)
    return -1;
  if (req->max_chain > VV_MAX_CHAIN_LIMIT) {
    vv_error_code (VV_ERR_INVALID, "max chain %u is more than %d",
                   req->max_chain, VV_MAX_CHAIN_LIMIT);
    return -1;
  }
  f.max_chain = req->max_chain ? req->max_chain
    : e->max_chain ? e->max_chain : VV_MAX_CHAIN_DEFAULT;
  f.target = target;
  f.can_track = any_checkpoint_disk (info, job->disks);
  f.offline = job->offline;

  job->disk_incr = calloc (job->n_disks + 1, sizeof *job->disk_incr);
  job->disk_bitmap = calloc (job->n_disks + 1, sizeof *job->disk_bitmap);
  job->disk_backing = calloc (job->n_disks + 1, sizeof *job->disk_backing);
  usable = calloc (job->n_disks + 1, sizeof *usable);
  if (!job->disk_incr || !job->disk_bitmap || !job->disk_backing
      || !usable) {
    vv_error_errno (ENOMEM, "planning a backup");
    return -1;
  }
  for (size_t i = 0; i < job->n_disks; i++)
    job->disk_bitmap[i] = (job->checkpoint || job->offline)
      && vv_domain_disk_can_checkpoint
      (vv_domain_info_find_disk (info, job->disks[i]));

  if (f.mode != VV_MODE_FULL) {
    last = vv_catalog_backup_last_completed (e->catalog, job->domain_uuid);
    if (last == NULL && vv_get_error_code () != VV_ERR_NOT_FOUND)
      return -1;
    vv_clear_error ();
  }
  if (last) {
    f.last_id = last->id;
    f.last_chain = last->chain_id;
    f.last_target = last->target;
    f.last_pos = last->chain_pos;
    /* A point the new incremental would rest on that a verify found
     * damaged: restores of it would read the damage.
     */
    corrupt = vv_catalog_chain_first_corrupt (e->catalog, last->chain_id,
                                              last->chain_pos);
    if (corrupt == NULL && vv_get_error_code () != VV_ERR_NOT_FOUND)
      goto out;
    vv_clear_error ();
    f.corrupt_id = corrupt ? corrupt->id : NULL;
    f.corrupt_why = corrupt ? corrupt->corrupt : NULL;
    if (find_base (e, last, &base) == -1)
      goto out;
    f.last_checkpoint = base ? base->checkpoint : NULL;
    f.base_id = base && base != last ? base->id : NULL;
    chain = vv_catalog_chain_get (e->catalog, last->chain_id, VV_OWNER_ANY);
    vv_clear_error ();
    f.full_id = chain ? chain->full_id : NULL;
    for (size_t i = 0; i < job->n_disks; i++) {
      const struct vv_disk_rec *pd = backup_disk (last, job->disks[i]);
      if (pd && pd->bitmap && job->disk_bitmap[i])
        f.tracked_disks++;
    }
    /* Only worth a look (and a redefine) when nothing else rules an
     * incremental out.
     */
    if (f.can_track && f.last_checkpoint && f.tracked_disks
        && strcmp (last->target, target) == 0) {
      /* Offline, the bitmaps in the images are what counts; libvirt's
       * metadata is checked (and redefined) by the next live backup.
       */
      if (job->offline) {
        f.tracked_disks = check_image_bitmaps (info, job, last,
                                               f.last_checkpoint, usable,
                                               &offline_why);
        f.offline_why = offline_why;
      }
      else {
        f.cp_state = check_checkpoint (dom, base, detail, sizeof detail);
        f.cp_detail = detail[0] ? detail : NULL;
      }
    }
  }
  if (vv_chain_decide (&f, &d) == -1)
    goto out;

  if (d.incremental) {
    job->incremental = true;
    job->pos = d.pos;
    if ((job->parent_id = vv_strdup (last->id)) == NULL
        || (job->parent_checkpoint = vv_strdup (base->checkpoint)) == NULL)
      goto out;
    free (job->chain_id);
    if ((job->chain_id = vv_strdup (last->chain_id)) == NULL)
      goto out;
    for (size_t i = 0; i < job->n_disks; i++) {
      const struct vv_disk_rec *pd = backup_disk (last, job->disks[i]);
      _cleanup_free_ char *note = NULL;

      if (pd && pd->bitmap && job->disk_bitmap[i]
          && (!job->offline || usable[i])) {
        const char *file = strrchr (pd->object, '/');
        job->disk_incr[i] = true;
        job->disk_backing[i] = vv_printf ("../%s/%s", last->id,
                                          file ? file + 1 : pd->object);
        if (job->disk_backing[i] == NULL)
          goto out;
        continue;
      }
      if (!job->disk_bitmap[i])
        continue;               /* raw: said once in the notes */
      note = vv_printf ("%s stored in full: %s", job->disks[i],
                        pd && pd->bitmap && job->offline
                        ? "its image carries no usable bitmap of the "
                        "chain's checkpoint"
                        : pd ? "the last backup's checkpoint does not track "
                        "it" : "not in the last backup");
      if (note == NULL || add_note (&job->notes, note) == -1)
        goto out;
    }
  }
  /* An offline point makes no checkpoint: its "bitmap" says that the
   * chain's base checkpoint tracks the disk and its image carried the
   * bitmap, so the next point can go on from there.
   */
  if (job->offline)
    for (size_t i = 0; i < job->n_disks; i++)
      job->disk_bitmap[i] = job->disk_incr[i];
  *ret_reason = vv_strdup (d.reason);
  if (*ret_reason)
    ret = 0;
 out:
  vv_chain_rec_free (chain);
  vv_backup_rec_free (corrupt);
  if (base != last)
    vv_backup_rec_free (base);
  vv_backup_rec_free (last);
  return ret;
}

static int
check_request (const struct vv_backup_request *req)
{
  size_t n = 0;

  if (req->target
      && vv_check_name ("target name", req->target, DISK_NAME_MAX * 2) == -1)
    return -1;
  if (req->all_disks && req->disks) {
    vv_error_code (VV_ERR_INVALID,
                   "give either all disks or a list of disks, not both");
    return -1;
  }
  if (req->disks) {
    for (; req->disks[n]; n++) {
      if (n >= VV_MAX_DISKS) {
        vv_error_code (VV_ERR_INVALID, "more than %d disks requested",
                       VV_MAX_DISKS);
        return -1;
      }
      if (vv_check_name ("disk name", req->disks[n], DISK_NAME_MAX) == -1)
        return -1;
    }
    if (n == 0) {
      vv_error_code (VV_ERR_INVALID, "the list of disks is empty");
      return -1;
    }
  }
  return 0;
}

char *
vv_engine_default_target (struct vv_engine *e)
{
  char *name;

  if (vv_catalog_target_get_default (e->catalog, &name) == -1)
    return NULL;
  if (name == NULL)
    name = vv_strdup (e->default_target ? e->default_target : "local");
  return name;
}

int
vv_backup_prepare (struct vv_engine *e, const struct vv_backup_request *req,
                   struct vv_backup_job **ret_job,
                   struct vv_backup_rec **ret_rec)
{
  _cleanup_vir_conn_ virConnectPtr conn = NULL;
  _cleanup_vir_domain_ virDomainPtr dom = NULL;
  _cleanup_domain_info_ struct vv_domain_info *info = NULL;
  _cleanup_(cleanup_job) struct vv_backup_job *job = NULL;
  _cleanup_free_ char *reason = NULL, *dflt = NULL;
  struct vv_target_rec *trec;
  const char *target = req->target;
  char uuid[VIR_UUID_STRING_BUFLEN];
  char id[VV_ID_MAX], chain[VV_ID_MAX];
  const char *name;
  struct vv_backup_rec rec = { 0 };
  int active;

  if (check_request (req) == -1)
    return -1;
  conn = vv_libvirt_open (e->libvirt_uri);
  if (conn == NULL)
    return -1;
  dom = vv_domain_lookup (conn, e->libvirt_uri, req->domain);
  if (dom == NULL)
    return -1;
  name = virDomainGetName (dom);
  if (virDomainGetUUIDString (dom, uuid) == -1) {
    vv_error ("cannot get the UUID of domain '%s': %s", name,
              vv_libvirt_error ());
    return -1;
  }
  active = virDomainIsActive (dom);
  if (active == -1) {
    vv_error ("cannot get the state of domain '%s': %s", name,
              vv_libvirt_error ());
    return -1;
  }
  /* What earlier attempts on the domain left behind goes first: their
   * pending cleanups, and a pull-mode job of a stopped daemon, which
   * would otherwise block every backup of the domain.  Best effort: what
   * still blocks is reported below.
   */
  vv_backup_retry_cleanups (e, uuid, NULL, NULL);
  if (active == 1)
    vv_engine_abort_orphan (e, dom, name);
  vv_clear_error ();
  /* Running or paused: live.  Shut off: its images are read. */
  if (active == 1 && check_no_job (dom, name) == -1)
    return -1;

  job = calloc (1, sizeof *job);
  if (job == NULL) {
    vv_error_errno (ENOMEM, "preparing a backup");
    return -1;
  }
  job->offline = active == 0;
  {
    _cleanup_free_ char *what = vv_printf ("domain '%s'", name);
    if (what == NULL)
      return -1;
    info = vv_domain_get_info (dom, what, job->offline
                               ? VIR_DOMAIN_XML_INACTIVE : 0);
    if (info == NULL)
      return -1;
  }
  if (select_disks (info, name, req, job->offline, &job->disks,
                    &job->n_disks, &job->notes) == -1)
    return -1;
  if (job->offline && add_note (&job->notes, VV_OFFLINE_NOTE) == -1)
    return -1;
  if (req->quiesce == NULL || strcmp (req->quiesce, "off") == 0)
    job->quiesce = QUIESCE_OFF;
  else if (strcmp (req->quiesce, "on") == 0)
    job->quiesce = QUIESCE_ON;
  else if (strcmp (req->quiesce, "try") == 0)
    job->quiesce = QUIESCE_TRY;
  else {
    vv_error_code (VV_ERR_INVALID, "quiesce '%s' is not one of off, on, try",
                   req->quiesce);
    return -1;
  }
  job->pause = req->pause;
  /* A shut-off domain's disks are at rest: nothing to freeze or pause. */
  if (job->offline) {
    job->quiesce = QUIESCE_OFF;
    job->pause = false;
  }
  if (job->quiesce != QUIESCE_OFF) {
    _cleanup_free_ char *xml = virDomainGetXMLDesc (dom, 0);

    /* Without the agent's channel nothing can freeze the guest: say so
     * now rather than from a failed job.
     */
    if (xml && strstr (xml, "org.qemu.guest_agent.0") == NULL) {
      if (job->quiesce == QUIESCE_ON) {
        vv_error_code (VV_ERR_INVALID, "domain '%s' can not be quiesced: it "
                       "has no QEMU guest agent channel; add one and run "
                       "qemu-guest-agent in the guest, or use --quiesce=try "
                       "to go on without", name);
        return -1;
      }
      job->quiesce = QUIESCE_OFF;
      if (add_note (&job->notes, "not quiesced: the domain has no QEMU "
                    "guest agent channel; the backup is crash-consistent")
          == -1)
        return -1;
    }
  }

  /* Read when the backup is made: an admin may have moved the default
   * since the request (or the policy) was written.
   */
  if (target == NULL && (target = dflt = vv_engine_default_target (e)) == NULL)
    return -1;
  trec = vv_catalog_target_get (e->catalog, target);
  if (trec == NULL)
    return -1;
  vv_target_rec_free (trec);

  if (vv_catalog_instance_upsert (e->catalog, uuid, name,
                                  req->owner_uid) == -1)
    return -1;
  if (vv_random_id ("bk", id) == -1 || vv_random_id ("ch", chain) == -1)
    return -1;

  job->backup_id = vv_strdup (id);
  job->domain = vv_strdup (name);
  job->domain_uuid = vv_strdup (uuid);
  job->target = vv_strdup (target);
  job->chain_id = vv_strdup (chain);
  job->prefix = vv_backup_prefix (uuid, chain, id);
  if (!job->backup_id || !job->domain || !job->domain_uuid || !job->target
      || !job->chain_id || !job->prefix)
    return -1;
  /* libvirt 9 can not create a checkpoint of a shut-off domain. */
  if (!job->offline && any_checkpoint_disk (info, job->disks)
      && (job->checkpoint = vv_printf (VV_CHECKPOINT_PREFIX "%s", id)) == NULL)
    return -1;
  if (plan_chain (e, dom, info, req, target, job, &reason) == -1)
    return -1;
  if (job->incremental) {
    free (job->prefix);
    if ((job->prefix = vv_backup_prefix (uuid, job->chain_id, id)) == NULL)
      return -1;
  }

  rec.id = id;
  rec.domain = (char *) name;
  rec.domain_uuid = uuid;
  rec.type = (char *) (job->incremental ? "incremental" : "full");
  rec.status = (char *) "pending";
  rec.chain_id = job->chain_id;
  rec.parent_id = job->parent_id;
  rec.chain_pos = job->pos;
  rec.target = (char *) target;
  rec.reason = reason;
  rec.notes = job->notes;
  rec.offline = job->offline;
  rec.prefix = job->prefix;
  rec.job_id = (char *) req->job_id;
  rec.owner_uid = req->owner_uid;
  if (vv_catalog_backup_insert (e->catalog, &rec) == -1)
    return -1;

  if (ret_rec) {
    struct vv_backup_rec *r = vv_catalog_backup_get (e->catalog, id,
                                                     VV_OWNER_ANY);
    if (r == NULL)
      return -1;
    *ret_rec = r;
  }
  *ret_job = TAKE_PTR (job);
  return 0;
}

/* ---- run ---- */

/* Escapes text for an XML attribute. */
static char *
xml_escape (const char *s)
{
  size_t len = 0;
  char *r, *p;

  for (const char *q = s; *q; q++)
    len += *q == '&' ? 5 : *q == '<' || *q == '>' ? 4
      : *q == '\'' || *q == '"' ? 6 : 1;
  r = p = malloc (len + 1);
  if (r == NULL) {
    vv_error_errno (ENOMEM, "building XML");
    return NULL;
  }
  for (const char *q = s; *q; q++) {
    const char *e = *q == '&' ? "&amp;" : *q == '<' ? "&lt;"
      : *q == '>' ? "&gt;" : *q == '\'' ? "&apos;" : *q == '"' ? "&quot;"
      : NULL;
    if (e) {
      strcpy (p, e);
      p += strlen (e);
    }
    else
      *p++ = *q;
  }
  *p = '\0';
  return r;
}

/* Index of the selected disk target, or -1. */
static ssize_t
selected (const struct vv_backup_job *job, const char *target)
{
  for (size_t i = 0; i < job->n_disks; i++)
    if (strcmp (job->disks[i], target) == 0)
      return i;
  return -1;
}

/* Everything one run holds, released by run_state_clear. */
struct run_state {
  char what[VV_DOMAIN_NAME_MAX + 32];   /* "backup of 'web01'" */
  virConnectPtr conn;
  virDomainPtr dom;
  bool domain_gone;
  struct vv_domain_info *info;
  struct vv_target *t;
  char *run_dir;
  char *socket;
  char **sockets;               /* offline: one server per disk */
  bool job_begun;
  struct vv_qcow2_plan **plans;
  uint64_t stored;              /* bytes of all objects so far */
};

static void
run_state_clear (struct run_state *s, size_t n_disks)
{
  if (s->plans) {
    for (size_t i = 0; i < n_disks; i++)
      vv_qcow2_plan_free (s->plans[i]);
    free (s->plans);
  }
  free (s->socket);
  if (s->sockets) {
    for (size_t i = 0; i < n_disks; i++)
      free (s->sockets[i]);
    free (s->sockets);
  }
  free (s->run_dir);
  vv_target_close (s->t);
  vv_domain_info_free (s->info);
  if (s->dom)
    virDomainFree (s->dom);
  if (s->conn)
    virConnectClose (s->conn);
}

static int
cancelled (struct run_state *s, struct vv_progress *p)
{
  if (!vv_progress_cancelled (p))
    return 0;
  vv_error_code (VV_ERR_CANCELLED, "%s was cancelled", s->what);
  return 1;
}

/* Directories QEMU must traverse (it binds the NBD socket itself). */
static int
make_run_dir (struct vv_engine *e, struct run_state *s,
              const struct vv_backup_job *job)
{
  _cleanup_free_ char *run_root = vv_printf ("%s/run", e->state_dir);
  const char *dirs[2];
  uid_t uid;
  gid_t gid;

  if (run_root == NULL)
    return -1;
  if (vv_domain_qemu_ids (s->info, &uid, &gid) == -1)
    return -1;
  if (vv_mkdir_p (run_root, 0711) == -1)
    return -1;
  dirs[0] = e->state_dir;
  dirs[1] = run_root;
  for (size_t i = 0; i < 2; i++) {
    struct stat st;
    if (stat (dirs[i], &st) == -1) {
      vv_error_errno (errno, "cannot stat %s", dirs[i]);
      return -1;
    }
    if ((st.st_mode & 0011) != 0011
        && chmod (dirs[i], (st.st_mode & 07777) | 0011) == -1) {
      vv_error_errno (errno, "cannot make %s traversable for QEMU", dirs[i]);
      return -1;
    }
  }

  s->run_dir = vv_engine_run_dir (e, job->backup_id);
  if (s->run_dir == NULL)
    return -1;
  /* Left over from an attempt with this id that was not cleaned up. */
  if (vv_remove_tree (s->run_dir) == -1)
    return -1;
  if (mkdir (s->run_dir, 0700) == -1) {
    vv_error_errno (errno, "cannot create directory %s", s->run_dir);
    return -1;
  }
  if (geteuid () == 0 && chown (s->run_dir, uid, gid) == -1) {
    vv_error_errno (errno, "cannot give %s to QEMU's user %u:%u",
                    s->run_dir, (unsigned) uid, (unsigned) gid);
    return -1;
  }

  s->socket = vv_printf ("%s/nbd.sock", s->run_dir);
  if (s->socket == NULL)
    return -1;
  if (strlen (s->socket) >= sizeof ((struct sockaddr_un *) 0)->sun_path) {
    vv_error ("the NBD socket path %s is too long for a UNIX socket; use "
              "a shorter state directory", s->socket);
    return -1;
  }
  return 0;
}

/* The <domainbackup> and <domaincheckpoint> documents. */
static int
build_xml (const struct run_state *s, const struct vv_backup_job *job,
           char **ret_backup, char **ret_checkpoint)
{
  _cleanup_free_ char *bxml = NULL;
  _cleanup_free_ char *cxml = NULL;
  size_t blen = 0, clen = 0;
  FILE *b = NULL, *c = NULL;
  _cleanup_free_ char *sock = xml_escape (s->socket);
  _cleanup_free_ char *parent = NULL;
  int ret = -1;

  if (sock == NULL)
    return -1;
  if (job->incremental
      && (parent = xml_escape (job->parent_checkpoint)) == NULL)
    return -1;
  b = open_memstream (&bxml, &blen);
  c = open_memstream (&cxml, &clen);
  if (b == NULL || c == NULL) {
    vv_error_errno (errno, "building XML");
    goto out;
  }
  fprintf (b, "<domainbackup mode='pull'>\n"
           "  <server transport='unix' socket='%s'/>\n"
           "  <disks>\n", sock);
  fprintf (c, "<domaincheckpoint>\n"
           "  <name>%s</name>\n"
           "  <description>virtvault backup %s chain %s</description>\n"
           "  <disks>\n", job->checkpoint ? job->checkpoint : "",
           job->backup_id, job->chain_id);
  for (size_t i = 0; i < s->info->n_disks; i++) {
    const struct vv_domain_disk *d = &s->info->disks[i];
    _cleanup_free_ char *dev = xml_escape (d->target);

    if (dev == NULL)
      goto out;
    ssize_t k = selected (job, d->target);
    if (k >= 0) {
      _cleanup_free_ char *scratch = NULL;
      _cleanup_free_ char *scratch_x = NULL;
      _cleanup_free_ char *mode = NULL;

      scratch = vv_printf ("%s/%s.scratch", s->run_dir, d->target);
      if (scratch == NULL || (scratch_x = xml_escape (scratch)) == NULL)
        goto out;
      /* Per disk (libvirt >= 7.6): a disk the parent's checkpoint does
       * not track is read in full within an incremental backup.
       */
      if (!job->incremental)
        mode = vv_strdup ("");
      else if (job->disk_incr[k])
        mode = vv_printf (" backupmode='incremental' incremental='%s'",
                          parent);
      else
        mode = vv_strdup (" backupmode='full'");
      if (mode == NULL)
        goto out;
      fprintf (b, "    <disk name='%s' backup='yes' type='file'%s>\n"
               "      <scratch file='%s'/>\n"
               "    </disk>\n", dev, mode, scratch_x);
      fprintf (c, "    <disk name='%s' checkpoint='%s'/>\n", dev,
               vv_domain_disk_can_checkpoint (d) ? "bitmap" : "no");
    }
    else {
      fprintf (b, "    <disk name='%s' backup='no'/>\n", dev);
      fprintf (c, "    <disk name='%s' checkpoint='no'/>\n", dev);
    }
  }
  fprintf (b, "  </disks>\n</domainbackup>\n");
  fprintf (c, "  </disks>\n</domaincheckpoint>\n");
  ret = 0;

 out:
  if (b && fclose (b) != 0 && ret == 0) {
    vv_error_errno (errno, "building XML");
    ret = -1;
  }
  if (c && fclose (c) != 0 && ret == 0) {
    vv_error_errno (errno, "building XML");
    ret = -1;
  }
  if (ret == 0) {
    *ret_backup = TAKE_PTR (bxml);
    *ret_checkpoint = job->checkpoint ? TAKE_PTR (cxml) : NULL;
  }
  return ret;
}

static int
target_write (void *opaque, const void *buf, size_t count)
{
  return vv_target_put_write (opaque, buf, count);
}

static void
cleanup_block_hasher (struct vv_block_hasher **h)
{
  vv_block_hasher_free (*h);
}

/* Stores the sidecar of an image's block digests as object. */
static int
store_blocks (struct run_state *s, const char *what,
              struct vv_block_hasher *h, const char *object,
              char ret_sha[VV_SHA256_HEX])
{
  _cleanup_free_ uint8_t *buf = NULL;
  size_t len;

  if (vv_block_hasher_finish (h, &buf, &len) == -1
      || vv_target_put_buffer (s->t, object, buf, len, ret_sha) == -1) {
    vv_error_prefix ("%s: storing its block digests: ", what);
    return -1;
  }
  s->stored += len;
  return 0;
}

/* Streams one disk's image to the target with the digests of its blocks
 * (built while it streams), stores those, and records both.
 */
static int
store_disk (struct vv_engine *e, struct run_state *s,
            const struct vv_backup_job *job, size_t i,
            struct vv_progress *p)
{
  const char *disk = job->disks[i];
  _cleanup_free_ char *what = vv_printf ("%s disk %s", s->what, disk);
  _cleanup_free_ char *object = vv_printf ("%s%s.qcow2", job->prefix, disk);
  _cleanup_free_ char *blocks_object = vv_printf ("%s%s.blocks", job->prefix,
                                                  disk);
  _cleanup_ (cleanup_block_hasher) struct vv_block_hasher *blocks = NULL;
  struct vv_nbd_export x = {
    .socket = s->sockets ? s->sockets[i] : s->socket, .name = disk,
  };
  struct vv_target_writer *w;
  char sha[VV_SHA256_HEX], blocks_sha[VV_SHA256_HEX];
  uint64_t bytes;
  struct vv_disk_rec d = { 0 };

  if (what == NULL || object == NULL || blocks_object == NULL)
    return -1;
  x.what = what;
  blocks = vv_block_hasher_new (VV_BLOCK_SIZE_DEFAULT);
  if (blocks == NULL)
    return -1;
  /* The exact size lets a remote target size its requests, and refuse
   * an image too large for it before anything is read from the guest.
   */
  w = vv_target_put_begin_sized (s->t, object,
                                 vv_qcow2_plan_file_size (s->plans[i]));
  if (w == NULL) {
    vv_error_prefix ("%s: ", what);
    return -1;
  }
  vv_target_put_digest_blocks (w, blocks);
  if (vv_nbd_copy (&x, s->plans[i], NULL, target_write, w, p) == -1) {
    vv_target_put_abort (w);
    return -1;
  }
  if (vv_target_put_commit (w, sha, &bytes) == -1) {
    vv_error_prefix ("%s: ", what);
    return -1;
  }
  s->stored += bytes;
  if (store_blocks (s, what, blocks, blocks_object, blocks_sha) == -1)
    return -1;
  /* The image and its digests are stored: a failure now must remove
   * both with the attempt (test-backup-errors).
   */
  if (vv_fault ("backup-after-blocks") == -1) {
    vv_error_errno (errno, "%s: failing after its block digests were "
                    "stored (fault point)", what);
    return -1;
  }
  d.name = (char *) disk;
  d.virtual_size = vv_qcow2_plan_virtual_size (s->plans[i]);
  d.stored_bytes = bytes;
  d.sha256 = sha;
  d.format = (char *) "qcow2";
  d.object = object;
  d.backing = job->disk_backing ? job->disk_backing[i] : NULL;
  d.bitmap = job->disk_bitmap ? job->disk_bitmap[i] : false;
  d.blocks_object = blocks_object;
  d.blocks_sha256 = blocks_sha;
  d.block_size = VV_BLOCK_SIZE_DEFAULT;
  d.metadata_bytes = vv_qcow2_plan_metadata_bytes (s->plans[i]);
  return vv_catalog_backup_add_disk (e->catalog, job->backup_id, &d);
}

static int
store_domain_xml (struct vv_engine *e, struct run_state *s,
                  const struct vv_backup_job *job)
{
  _cleanup_free_ char *xml = NULL;
  _cleanup_free_ char *object = vv_printf ("%sdomain.xml", job->prefix);
  char sha[VV_SHA256_HEX];
  size_t len;

  if (object == NULL)
    return -1;
  xml = virDomainGetXMLDesc (s->dom, VIR_DOMAIN_XML_INACTIVE);
  if (xml == NULL) {
    vv_error ("%s: cannot get the domain XML: %s", s->what,
              vv_libvirt_error ());
    return -1;
  }
  len = strlen (xml);
  if (vv_target_put_buffer (s->t, object, xml, len, sha) == -1) {
    vv_error_prefix ("%s: ", s->what);
    return -1;
  }
  s->stored += len;
  /* What a restore checks the XML it reads back against. */
  return vv_catalog_backup_set_domain_xml_sha256 (e->catalog,
                                                  job->backup_id, sha);
}

/* The manifest of the completed backup; its size_bytes counts every
 * object including the manifest itself, so the catalog and the target
 * agree.
 */
static int
store_manifest (struct vv_engine *e, struct run_state *s,
                const struct vv_backup_job *job)
{
  struct vv_backup_rec *rec;
  _cleanup_free_ char *text = NULL;
  _cleanup_free_ char *object = vv_printf ("%smanifest.json", job->prefix);
  char now[VV_TIME_MAX];
  char sha[VV_SHA256_HEX];
  size_t mlen = 0;
  int ret = -1;

  if (object == NULL)
    return -1;
  rec = vv_catalog_backup_get (e->catalog, job->backup_id, VV_OWNER_ANY);
  if (rec == NULL)
    return -1;
  vv_now_utc (now);
  free (rec->status);
  free (rec->completed_at);
  free (rec->error);
  rec->error = NULL;
  rec->status = vv_strdup ("completed");
  rec->completed_at = vv_strdup (now);
  if (rec->status == NULL || rec->completed_at == NULL
      || vv_manifest_set_origin (rec) == -1)
    goto out;
  /* The length of the text depends on the size it states; a few rounds
   * settle it.
   */
  for (int round = 0; round < 4; round++) {
    rec->size_bytes = s->stored + mlen;
    free (text);
    text = vv_manifest_write (rec);
    if (text == NULL)
      goto out;
    if (strlen (text) == mlen)
      break;
    mlen = strlen (text);
  }
  if (vv_target_put_buffer (s->t, object, text, strlen (text), sha) == -1) {
    vv_error_prefix ("%s: ", s->what);
    goto out;
  }
  s->stored = rec->size_bytes;
  ret = 0;
 out:
  vv_backup_rec_free (rec);
  return ret;
}

/* Appends a note to the job and the catalog. */
static int
job_note (struct vv_engine *e, struct vv_backup_job *job, const char *text)
{
  if (add_note (&job->notes, text) == -1)
    return -1;
  return vv_catalog_backup_set_notes (e->catalog, job->backup_id, job->notes);
}

/* The incremental could not start because its base checkpoint is broken
 * (QEMU killed: bitmaps left inconsistent or missing).  The checkpoint
 * goes (its metadata only, when the bitmap is gone) and this backup
 * becomes the full of a new chain.
 */
static int
switch_to_full (struct vv_engine *e, struct run_state *s,
                struct vv_backup_job *job, const char *msg)
{
  _cleanup_free_ char *reason = NULL;
  _cleanup_free_ char *prefix = NULL;
  char chain[VV_ID_MAX];
  bool deleted;

  deleted = vv_engine_delete_checkpoint (s->dom, job->parent_checkpoint,
                                         true) == 0;
  if (deleted)
    vv_catalog_backup_set_checkpoint (e->catalog, job->parent_id, NULL);
  vv_clear_error ();
  reason = vv_printf ("full: the incremental from checkpoint %s failed "
                      "(%.*s); the checkpoint %s (QEMU stopped uncleanly?)",
                      job->parent_checkpoint, REASON_DETAIL_MAX, msg,
                      deleted ? "was deleted" : "could not be deleted");
  if (reason == NULL || vv_random_id ("ch", chain) == -1)
    return -1;
  prefix = vv_backup_prefix (job->domain_uuid, chain, job->backup_id);
  if (prefix == NULL)
    return -1;
  if (vv_catalog_backup_make_full (e->catalog, job->backup_id, chain, prefix,
                                   reason) == -1)
    return -1;
  free (job->chain_id);
  free (job->prefix);
  job->chain_id = vv_strdup (chain);
  job->prefix = TAKE_PTR (prefix);
  job->incremental = false;
  job->pos = 0;
  for (size_t i = 0; i < job->n_disks; i++) {
    job->disk_incr[i] = false;
    free (job->disk_backing[i]);
    job->disk_backing[i] = NULL;
  }
  return job->chain_id ? 0 : -1;
}

static double
now_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Freezes the guest filesystems through the guest agent (libvirt 9 has
 * no quiesce flag for backups).  1 frozen, 0 not (with --quiesce=try,
 * noted), -1 error.
 */
static int
freeze (struct vv_engine *e, struct run_state *s, struct vv_backup_job *job)
{
  _cleanup_free_ char *note = NULL;

  if (job->quiesce == QUIESCE_OFF)
    return 0;
  if (virDomainFSFreeze (s->dom, NULL, 0, 0) >= 0)
    return 1;
  if (job->quiesce == QUIESCE_ON) {
    vv_error_code (VV_ERR_INVALID, "%s: cannot freeze the guest "
                   "filesystems: %s; start the QEMU guest agent in the "
                   "guest, or use --quiesce=try to go on without",
                   s->what, vv_libvirt_error ());
    return -1;
  }
  note = vv_printf ("not quiesced: the guest filesystems could not be "
                    "frozen (%.*s); the backup is crash-consistent",
                    REASON_DETAIL_MAX, vv_libvirt_error ());
  job->quiesce = QUIESCE_OFF;
  if (note == NULL || job_note (e, job, note) == -1)
    return -1;
  return 0;
}

/* virDomainBackupBegin, with the guest filesystems frozen (--quiesce)
 * and the domain suspended (--pause) around it.  On a failure of libvirt
 * to begin, its message is in *ret_msg.
 */
static int
begin_once (struct vv_engine *e, struct run_state *s,
            struct vv_backup_job *job, char **ret_msg)
{
  _cleanup_free_ char *bxml = NULL;
  _cleanup_free_ char *cxml = NULL;
  double t0 = 0;
  int frozen, r;

  if (build_xml (s, job, &bxml, &cxml) == -1)
    return -1;
  frozen = freeze (e, s, job);
  if (frozen == -1)
    return -1;
  if (job->pause) {
    t0 = now_seconds ();
    if (virDomainSuspend (s->dom) == -1) {
      vv_error ("%s: cannot pause the domain: %s", s->what,
                vv_libvirt_error ());
      if (frozen)
        virDomainFSThaw (s->dom, NULL, 0, 0);
      return -1;
    }
  }
  r = virDomainBackupBegin (s->dom, bxml, cxml, 0);
  if (r == -1)
    *ret_msg = vv_strdup (vv_libvirt_error ());
  if (job->pause) {
    double paused;
    _cleanup_free_ char *note = NULL;

    if (virDomainResume (s->dom) == -1) {
      vv_error ("%s: cannot resume the domain after pausing it: %s; resume "
                "it with 'virsh resume %s'", s->what, vv_libvirt_error (),
                job->domain);
      r = -1;
    }
    paused = now_seconds () - t0;
    if (r == 0) {
      note = vv_printf ("paused for %.3f s while the checkpoint was created",
                        paused);
      if (note == NULL || job_note (e, job, note) == -1)
        r = -1;
    }
  }
  if (frozen && virDomainFSThaw (s->dom, NULL, 0, 0) < 0 && r == 0) {
    _cleanup_free_ char *note =
      vv_printf ("thawing the guest filesystems failed: %.*s",
                 REASON_DETAIL_MAX, vv_libvirt_error ());
    if (note)
      job_note (e, job, note);
  }
  if (r == 0 && frozen && job_note (e, job, "quiesced: the guest "
                                    "filesystems were frozen while the "
                                    "checkpoint was created") == -1)
    r = -1;
  return r;
}

/* Starts the pull-mode job; retries as a full backup when the
 * incremental's checkpoint turns out to be broken.
 */
static int
begin_backup (struct vv_engine *e, struct run_state *s,
              struct vv_backup_job *job)
{
  for (int attempt = 0; attempt < 2; attempt++) {
    _cleanup_free_ char *msg = NULL;

    if (begin_once (e, s, job, &msg) == 0)
      return 0;
    if (msg == NULL)
      return -1;                /* failed before libvirt was asked */
    /* A failed begin creates no checkpoint; make sure of it anyway. */
    if (job->checkpoint)
      vv_engine_delete_checkpoint (s->dom, job->checkpoint, true);
    vv_clear_error ();
    if (job->incremental
        && (strstr (msg, "bitmap") || strstr (msg, "heckpoint"))) {
      if (switch_to_full (e, s, job, msg) == -1)
        return -1;
      continue;
    }
    vv_error ("%s: cannot start the libvirt backup job: %s", s->what, msg);
    return -1;
  }
  vv_error ("%s: cannot start the libvirt backup job", s->what);
  return -1;
}

/* Offline: a read-only qemu-nbd per disk, which holds QEMU's image lock
 * so the domain can not start and write while it is read.
 */
static int
serve_images (struct run_state *s, const struct vv_backup_job *job)
{
  s->sockets = calloc (job->n_disks + 1, sizeof *s->sockets);
  if (s->sockets == NULL) {
    vv_error_errno (ENOMEM, "%s", s->what);
    return -1;
  }
  for (size_t i = 0; i < job->n_disks; i++) {
    const struct vv_domain_disk *d =
      vv_domain_info_find_disk (s->info, job->disks[i]);

    if (vv_offline_serve (s->run_dir, d->target, d->source, d->driver_type,
                          job->disk_incr && job->disk_incr[i]
                          ? job->parent_checkpoint : NULL,
                          &s->sockets[i]) == -1) {
      vv_error_prefix ("%s: ", s->what);
      return -1;
    }
  }
  /* Started between our check and the lock: QEMU has the images. */
  if (virDomainIsActive (s->dom) != 0) {
    vv_error_code (VV_ERR_INVALID, "%s: the domain was started while its "
                   "disks were being opened for an offline backup; request "
                   "it again", s->what);
    return -1;
  }
  return 0;
}

/* Offline: the images were read while the servers held their locks; if
 * the domain runs now anyway, something wrote them without QEMU's
 * locking and what was read may be inconsistent.
 */
static int
finish_reading (struct run_state *s)
{
  int active = virDomainIsActive (s->dom);

  if (active != 0) {
    vv_error_code (VV_ERR_INVALID, "%s: the domain %s during the offline "
                   "backup; what was read may be inconsistent, so the "
                   "backup is discarded", s->what,
                   active == 1 ? "was started" : "could not be checked");
    return -1;
  }
  vv_offline_stop_servers (s->run_dir);
  return 0;
}

static int
do_run (struct vv_engine *e, struct run_state *s,
        struct vv_backup_job *job, struct vv_progress *p)
{
  int active;

  s->conn = vv_libvirt_open (e->libvirt_uri);
  if (s->conn == NULL)
    return -1;
  s->dom = virDomainLookupByUUIDString (s->conn, job->domain_uuid);
  if (s->dom == NULL) {
    s->domain_gone = virGetLastErrorCode () == VIR_ERR_NO_DOMAIN;
    vv_error_code (s->domain_gone ? VV_ERR_NOT_FOUND : VV_ERR_UNAVAILABLE,
                   "%s: cannot find the domain (uuid %s): %s", s->what,
                   job->domain_uuid, vv_libvirt_error ());
    return -1;
  }
  active = virDomainIsActive (s->dom);
  if (active != 1 && !job->offline) {
    vv_error_code (VV_ERR_INVALID, "%s: the domain is no longer running",
                   s->what);
    return -1;
  }
  if (active != 0 && job->offline) {
    vv_error_code (VV_ERR_INVALID, "%s: the domain was started after the "
                   "backup was requested; request it again (a running "
                   "domain is backed up live)", s->what);
    return -1;
  }
  s->info = vv_domain_get_info (s->dom, s->what, job->offline
                                ? VIR_DOMAIN_XML_INACTIVE : 0);
  if (s->info == NULL)
    return -1;
  for (size_t i = 0; i < job->n_disks; i++) {
    const struct vv_domain_disk *d =
      vv_domain_info_find_disk (s->info, job->disks[i]);
    const char *why = d ? disk_ineligible (d, job->offline)
      : "it was removed";
    if (why) {
      vv_error ("%s: disk %s can no longer be backed up: %s", s->what,
                job->disks[i], why);
      return -1;
    }
  }

  s->t = vv_engine_open_target (e, job->target);
  if (s->t == NULL) {
    vv_error_prefix ("%s: ", s->what);
    return -1;
  }
  if (make_run_dir (e, s, job) == -1) {
    vv_error_prefix ("%s: ", s->what);
    return -1;
  }
  /* Recorded first, so that cleanup after a crash knows to delete it. */
  if (job->checkpoint
      && vv_catalog_backup_set_checkpoint (e->catalog, job->backup_id,
                                           job->checkpoint) == -1)
    return -1;
  if (cancelled (s, p))
    return -1;
  if (job->offline) {
    if (serve_images (s, job) == -1)
      return -1;
  }
  else {
    if (begin_backup (e, s, job) == -1)
      return -1;
    s->job_begun = true;
  }

  /* Map every disk first, so progress knows the whole amount. */
  s->plans = calloc (job->n_disks, sizeof *s->plans);
  if (s->plans == NULL) {
    vv_error_errno (ENOMEM, "%s", s->what);
    return -1;
  }
  for (size_t i = 0; i < job->n_disks; i++) {
    _cleanup_free_ char *what = vv_printf ("%s disk %s", s->what,
                                           job->disks[i]);
    /* Offline, the image's own bitmap of the chain's checkpoint. */
    _cleanup_free_ char *bitmap = job->offline
      ? vv_strdup (job->parent_checkpoint ? job->parent_checkpoint : "")
      : vv_printf ("backup-%s", job->disks[i]);
    struct vv_nbd_export x = {
      .socket = s->sockets ? s->sockets[i] : s->socket,
      .name = job->disks[i], .what = what,
    };
    if (what == NULL || bitmap == NULL)
      return -1;
    if (job->incremental && job->disk_incr[i]
        ? vv_nbd_map_dirty (&x, bitmap, job->disk_backing[i], &s->plans[i],
                            NULL) == -1
        : vv_nbd_map (&x, &s->plans[i]) == -1)
      return -1;
    vv_progress_add_total (p, vv_qcow2_plan_data_bytes (s->plans[i]));
    if (cancelled (s, p))
      return -1;
  }
  for (size_t i = 0; i < job->n_disks; i++) {
    if (store_disk (e, s, job, i, p) == -1)
      return -1;
    /* Free the plan's memory early; big disks have big maps. */
    s->plans[i] = vv_qcow2_plan_free (s->plans[i]);
  }
  if (job->offline && finish_reading (s) == -1)
    return -1;
  if (cancelled (s, p) || store_domain_xml (e, s, job) == -1)
    return -1;
  if (cancelled (s, p) || store_manifest (e, s, job) == -1)
    return -1;
  /* Published, not yet recorded: recovery must find it complete. */
  vv_fault ("backup-after-manifest");
  if (job->offline) {
    vv_remove_tree (s->run_dir);
    vv_clear_error ();
    /* No checkpoint was made, and libvirt 9 can not delete those of a
     * shut-off domain: the chain's base checkpoint stays as it is.
     */
    return vv_catalog_backup_complete (e->catalog, job->backup_id,
                                       s->stored);
  }

  /* Published: the pull job has served its purpose. */
  if (vv_engine_abort_job (s->dom, s->what) == -1)
    return -1;
  s->job_begun = false;
  vv_remove_tree (s->run_dir);
  vv_clear_error ();
  if (vv_catalog_backup_complete (e->catalog, job->backup_id,
                                  s->stored) == -1)
    return -1;
  vv_engine_prune_checkpoints (e, s->dom, job->domain_uuid, job->checkpoint);
  /* Kept to redefine the checkpoint should libvirt lose it; taken after
   * pruning, so it names no parent that is gone.
   */
  if (job->checkpoint) {
    _cleanup_free_ char *xml =
      vv_engine_checkpoint_xml (s->dom, job->checkpoint);
    if (xml)
      vv_catalog_backup_set_checkpoint_xml (e->catalog, job->backup_id, xml);
    vv_clear_error ();
  }
  return 0;
}

int
vv_backup_run (struct vv_engine *e, struct vv_backup_job *job,
               struct vv_progress *p)
{
  struct run_state s = { 0 };
  struct vv_attempt a = {
    .backup_id = job->backup_id, .domain = job->domain,
    .checkpoint = job->checkpoint, .target = job->target,
  };
  _cleanup_free_ char *message = NULL;
  bool was_cancelled;
  int r;

  snprintf (s.what, sizeof s.what, "backup of '%s'", job->domain);
  if (vv_catalog_backup_set_status (e->catalog, job->backup_id, "running",
                                    NULL) == -1)
    return -1;
  r = do_run (e, &s, job, p);
  if (r == -1) {
    enum vv_errcode code = vv_get_error_code ();

    was_cancelled = code == VV_ERR_CANCELLED;
    if (was_cancelled)
      message = vv_printf ("%s was cancelled", s.what);
    else if (s.job_begun && virDomainIsActive (s.dom) != 1)
      message = vv_printf ("%s (the domain stopped during the backup)",
                           vv_get_error ());
    else
      message = vv_strdup (vv_get_error ());
    if (message)
      vv_error_code (code, "%s", message);
    /* Set late: turning an incremental into a full changes the prefix. */
    a.prefix = job->prefix;
    vv_engine_cleanup_attempt (e, s.dom, s.domain_gone, &a, s.job_begun,
                               s.t, was_cancelled ? "cancelled" : "failed",
                               message ? message : "backup failed");
  }
  run_state_clear (&s, job->n_disks);
  return r;
}
