/* Restore in place: the disks of the backed-up domain are replaced.
 *
 * Each restored disk is produced in a private staging directory next to
 * the image it replaces (same file system, so the final rename is
 * atomic), in the image's current format.  Only when every disk is ready
 * is the domain stopped (with force_stop), and then, for each disk, the
 * old image is hard-linked into the staging directory (to put it back if
 * a later disk fails) and the new one renamed over it.  Any failure up
 * to the last rename leaves every old disk as it was.  Last, the
 * domain's virtvault checkpoints go: their bitmaps lived in the old
 * images, so the next backup starts a new chain.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "engine/domain.h"
#include "restore/restore.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

/* The engine names every checkpoint it creates so; only those are ours
 * to delete.
 */
#define CHECKPOINT_PREFIX "virtvault-"
/* How often a graceful shutdown is looked at. */
#define STOP_POLL_MS 200
/* The old image's hard link inside the staging directory. */
#define KEEP_NAME "previous"

struct ip_disk {
  const struct vv_disk_rec *d;  /* in the backup (owned by the chain) */
  const char *format;           /* the current image's, "qcow2" | "raw" */
  char *path;                   /* the image replaced, symlinks resolved */
  char *dir;                    /* its directory */
  char *staging;                /* dir/.virtvault-restore-<backup>-<disk> */
  char *keep;                   /* staging/previous, once linked */
  bool missing;                 /* no image there now: one is created */
  bool staged;                  /* staging created by this restore */
  bool replaced;                /* the new image is in place */
};

struct ip_plan {
  struct vv_backup_rec *b;      /* until the chain takes it */
  char *backup_id;
  virConnectPtr conn;
  virDomainPtr dom;
  char *name;
  char *uuid;
  bool running;
  struct ip_disk *v;
  size_t n;
};

static void
plan_clear (struct ip_plan *pl)
{
  for (size_t i = 0; pl->v && i < pl->n; i++) {
    free (pl->v[i].path);
    free (pl->v[i].dir);
    free (pl->v[i].staging);
    free (pl->v[i].keep);
  }
  free (pl->v);
  vv_backup_rec_free (pl->b);
  free (pl->backup_id);
  free (pl->name);
  free (pl->uuid);
  if (pl->dom)
    virDomainFree (pl->dom);
  if (pl->conn)
    virConnectClose (pl->conn);
  memset (pl, 0, sizeof *pl);
}

static void
cleanup_info (struct vv_domain_info **i)
{
  vv_domain_info_free (*i);
}

/* Where the image of a disk is and whether it is there now. */
static int
locate_image (struct ip_plan *pl, const struct vv_domain_disk *dd,
              struct ip_disk *ipd)
{
  const char *src = dd->source;
  _cleanup_free_ char *parent = NULL, *real_parent = NULL;
  char *real;
  struct stat st;

  if (src[0] != '/') {
    vv_error_code (VV_ERR_INVALID, "disk %s of domain '%s' has the relative "
                   "path '%s'; in-place restore needs an absolute one",
                   dd->target, pl->name, src);
    return -1;
  }
  if (strlen (src) > VV_RESTORE_DIR_MAX) {
    vv_error_code (VV_ERR_INVALID, "the path of disk %s of domain '%s' is "
                   "longer than %d bytes", dd->target, pl->name,
                   VV_RESTORE_DIR_MAX);
    return -1;
  }
  /* A symlinked image is replaced where it really is, keeping the link. */
  real = realpath (src, NULL);
  if (real) {
    ipd->path = real;
    if (stat (real, &st) == -1) {
      vv_error_errno (errno, "cannot access %s (disk %s of domain '%s')",
                      real, dd->target, pl->name);
      return -1;
    }
    if (!S_ISREG (st.st_mode)) {
      vv_error_code (VV_ERR_INVALID, "%s (disk %s of domain '%s') is not a "
                     "regular file; in-place restore replaces only image "
                     "files: restore with --to DIR instead", real,
                     dd->target, pl->name);
      return -1;
    }
  }
  else if (errno == ENOENT) {
    /* The image is gone (that may be why one restores): create it. */
    if ((parent = vv_restore_parent_of (src)) == NULL)
      return -1;
    real_parent = realpath (parent, NULL);
    if (real_parent == NULL) {
      vv_error_errno (errno, "cannot access %s, the directory of disk %s of "
                      "domain '%s'", parent, dd->target, pl->name);
      return -1;
    }
    ipd->path = vv_printf ("%s%s%s", real_parent,
                           strcmp (real_parent, "/") ? "/" : "",
                           strrchr (src, '/') + 1);
    if (ipd->path == NULL)
      return -1;
    ipd->missing = true;
  }
  else {
    vv_error_errno (errno, "cannot access %s (disk %s of domain '%s')",
                    src, dd->target, pl->name);
    return -1;
  }
  if ((ipd->dir = vv_restore_parent_of (ipd->path)) == NULL)
    return -1;
  ipd->staging = vv_printf ("%s%s" VV_RESTORE_STAGING_PREFIX "%s-%s",
                            ipd->dir, strcmp (ipd->dir, "/") ? "/" : "",
                            pl->backup_id, ipd->d->name);
  return ipd->staging ? 0 : -1;
}

/* One disk of the backup against the domain as defined now. */
static int
check_disk (struct ip_plan *pl, const struct vv_domain_info *info,
            struct ip_disk *ipd)
{
  const struct vv_domain_disk *dd;
  struct stat st;

  dd = vv_domain_info_find_disk (info, ipd->d->name);
  if (dd == NULL) {
    vv_error_code (VV_ERR_INVALID, "domain '%s' has no disk %s any more (it "
                   "had when backup %s was taken); restore only the others "
                   "(--disks), or restore %s with --to DIR", pl->name,
                   ipd->d->name, pl->backup_id, ipd->d->name);
    return -1;
  }
  if (strcmp (dd->device, "disk") != 0) {
    vv_error_code (VV_ERR_INVALID, "%s of domain '%s' is a %s now, not a "
                   "disk; in-place restore refuses to replace it",
                   dd->target, pl->name, dd->device);
    return -1;
  }
  if (strcmp (dd->type, "file") != 0 || dd->source == NULL) {
    vv_error_code (VV_ERR_INVALID, "disk %s of domain '%s' is not an image "
                   "file (type '%s'%s%s); in-place restore replaces only "
                   "file disks: restore it with --to DIR and copy it "
                   "yourself", dd->target, pl->name, dd->type,
                   dd->source ? ", " : "", dd->source ? dd->source : "");
    return -1;
  }
  if (dd->driver_type == NULL ||
      (strcmp (dd->driver_type, "qcow2") != 0 &&
       strcmp (dd->driver_type, "raw") != 0)) {
    vv_error_code (VV_ERR_INVALID, "disk %s of domain '%s' has format "
                   "'%s'; in-place restore writes qcow2 or raw only",
                   dd->target, pl->name,
                   dd->driver_type ? dd->driver_type : "(none given)");
    return -1;
  }
  ipd->format = strcmp (dd->driver_type, "qcow2") == 0 ? "qcow2" : "raw";
  if (locate_image (pl, dd, ipd) == -1)
    return -1;
  if (lstat (ipd->staging, &st) == 0 || errno != ENOENT) {
    vv_error_code (VV_ERR_BUSY, "%s exists: backup %s is being restored "
                   "over disk %s, or a restore of it was interrupted; wait "
                   "for it, or remove it (it may hold the previous image, "
                   "'" KEEP_NAME "')", ipd->staging, pl->backup_id,
                   ipd->d->name);
    return -1;
  }
  return 0;
}

/* Everything an in-place restore needs that can be checked up front. */
static int
plan_load (struct vv_engine *e, const struct vv_restore_request *req,
           struct ip_plan *pl)
{
  _cleanup_free_ const struct vv_disk_rec **sel = NULL;
  _cleanup_ (cleanup_info) struct vv_domain_info *info = NULL;
  _cleanup_free_ char *what = NULL;
  char uuid[VIR_UUID_STRING_BUFLEN];
  const char *name;
  int r;

  if ((pl->b = vv_restore_get_backup (e, req->backup_id,
                                      req->owner_filter)) == NULL ||
      (pl->backup_id = vv_strdup (pl->b->id)) == NULL ||
      vv_restore_select_disks (pl->b, req->disks, &sel, &pl->n) == -1)
    return -1;
  if (pl->b->domain_uuid == NULL) {
    vv_error ("backup %s has no domain UUID in the catalog", pl->b->id);
    return -1;
  }

  if ((pl->conn = vv_libvirt_open (e->libvirt_uri)) == NULL)
    return -1;
  pl->dom = virDomainLookupByUUIDString (pl->conn, pl->b->domain_uuid);
  if (pl->dom == NULL) {
    if (vv_libvirt_error_code () == VIR_ERR_NO_DOMAIN)
      vv_error_code (VV_ERR_NOT_FOUND, "domain '%s' (UUID %s) of backup %s "
                     "no longer exists on %s; restore it as a new domain "
                     "(--as-new NAME) or to a directory (--to DIR)",
                     pl->b->domain, pl->b->domain_uuid, pl->b->id,
                     e->libvirt_uri);
    else
      vv_error_code (VV_ERR_UNAVAILABLE, "cannot look up domain %s on %s: "
                     "%s", pl->b->domain_uuid, e->libvirt_uri,
                     vv_libvirt_error ());
    return -1;
  }
  name = virDomainGetName (pl->dom);
  if (virDomainGetUUIDString (pl->dom, uuid) == -1 || name == NULL) {
    vv_error ("cannot get the name of domain %s: %s", pl->b->domain_uuid,
              vv_libvirt_error ());
    return -1;
  }
  if ((pl->name = vv_strdup (name)) == NULL ||
      (pl->uuid = vv_strdup (uuid)) == NULL)
    return -1;

  r = virDomainIsPersistent (pl->dom);
  if (r == 0) {
    vv_error_code (VV_ERR_INVALID, "domain '%s' is transient: it has no "
                   "definition that would outlive stopping it, so its disks "
                   "can not be replaced in place; restore with --to DIR or "
                   "--as-new NAME", pl->name);
    return -1;
  }
  r = r == -1 ? -1 : virDomainIsActive (pl->dom);
  if (r == -1) {
    vv_error ("cannot get the state of domain '%s': %s", pl->name,
              vv_libvirt_error ());
    return -1;
  }
  pl->running = r == 1;
  if (pl->running && !req->force_stop) {
    vv_error_code (VV_ERR_BUSY, "domain '%s' is running; shut it down "
                   "first, or let the restore stop it (--force-stop, "
                   "\"force_stop\": true)", pl->name);
    return -1;
  }

  what = vv_printf ("domain '%s'", pl->name);
  if (what == NULL)
    return -1;
  info = vv_domain_get_info (pl->dom, what, VIR_DOMAIN_XML_INACTIVE);
  if (info == NULL)
    return -1;
  if ((pl->v = calloc (pl->n, sizeof *pl->v)) == NULL) {
    vv_error_errno (ENOMEM, "restoring backup %s", pl->backup_id);
    return -1;
  }
  for (size_t i = 0; i < pl->n; i++) {
    pl->v[i].d = sel[i];
    if (check_disk (pl, info, &pl->v[i]) == -1)
      return -1;
    for (size_t j = 0; j < i; j++)
      if (strcmp (pl->v[j].path, pl->v[i].path) == 0) {
        vv_error_code (VV_ERR_INVALID, "disks %s and %s of domain '%s' are "
                       "the same image %s; in-place restore refuses to write "
                       "it twice", pl->v[j].d->name, pl->v[i].d->name,
                       pl->name, pl->v[i].path);
        return -1;
      }
  }
  for (size_t i = 0; i < pl->n; i++) {
    _cleanup_free_ char *dwhat = vv_printf ("directory %s of disk %s",
                                            pl->v[i].dir, pl->v[i].d->name);
    if (dwhat == NULL ||
        vv_restore_probe_writable (pl->v[i].dir, dwhat) == -1)
      return -1;
  }
  return 0;
}

int
vv_restore_in_place_plan (struct vv_engine *e,
                          const struct vv_restore_request *req,
                          struct vv_restore_info *ret)
{
  struct ip_plan pl = { 0 };
  struct vv_restore_info info = { 0 };
  int r = -1;

  if (plan_load (e, req, &pl) == -1)
    goto out;
  if (ret == NULL) {
    r = 0;
    goto out;
  }
  if ((info.domain = vv_strdup (pl.name)) == NULL ||
      (info.domain_uuid = vv_strdup (pl.uuid)) == NULL)
    goto out;
  for (size_t i = 0; i < pl.n; i++)
    if (vv_restore_info_add_disk (&info, pl.v[i].d->name,
                                  pl.v[i].path) == -1)
      goto out;
  *ret = info;
  memset (&info, 0, sizeof info);
  r = 0;
 out:
  vv_restore_info_clear (&info);
  plan_clear (&pl);
  return r;
}

/* ---- the run ---- */

static int
sleep_ms (unsigned ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  return nanosleep (&ts, NULL);
}

/* Graceful shutdown for up to timeout seconds, then destroy. */
static int
stop_domain (struct ip_plan *pl, int timeout, struct vv_progress *p)
{
  int r;

  if (timeout < 0)
    timeout = VV_RESTORE_STOP_TIMEOUT_DEFAULT;
  if (timeout > 0 && virDomainShutdown (pl->dom) == 0) {
    for (unsigned waited = 0; waited < (unsigned) timeout * 1000;
         waited += STOP_POLL_MS) {
      if (vv_progress_cancelled (p)) {
        vv_error_code (VV_ERR_CANCELLED, "restore of backup %s was "
                       "cancelled while domain '%s' was shutting down; no "
                       "disk was replaced", pl->backup_id, pl->name);
        return -1;
      }
      r = virDomainIsActive (pl->dom);
      if (r == 0)
        return 0;
      if (r == -1)
        break;
      sleep_ms (STOP_POLL_MS);
    }
  }
  /* No guest agent or ACPI, a guest that ignores it, or out of time. */
  if (virDomainDestroy (pl->dom) == -1 && virDomainIsActive (pl->dom) != 0) {
    vv_error ("cannot stop domain '%s' for the restore: %s; no disk was "
              "replaced", pl->name, vv_libvirt_error ());
    return -1;
  }
  return 0;
}

static int
sync_dir (const char *dir)
{
  _cleanup_close_ int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd == -1 || fsync (fd) == -1) {
    vv_error_errno (errno, "cannot sync directory %s", dir);
    return -1;
  }
  return 0;
}

/* The new image takes the old one's owner, group and mode: what QEMU's
 * DAC labelling expects to find there.
 */
static int
adopt_identity (struct ip_disk *ipd, const char *out)
{
  _cleanup_close_ int fd = open (out, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;

  if (fd == -1) {
    vv_error_errno (errno, "cannot open %s", out);
    return -1;
  }
  if (!ipd->missing) {
    if (stat (ipd->path, &st) == -1) {
      vv_error_errno (errno, "cannot stat %s", ipd->path);
      return -1;
    }
    if (fchown (fd, st.st_uid, st.st_gid) == -1 ||
        fchmod (fd, st.st_mode & 07777) == -1) {
      vv_error_errno (errno, "cannot give %s the owner and mode of %s",
                      out, ipd->path);
      return -1;
    }
  }
  if (fsync (fd) == -1) {
    vv_error_errno (errno, "cannot write %s", out);
    return -1;
  }
  return 0;
}

/* Puts the old images back after a failed rename. */
static void
roll_back (struct ip_plan *pl)
{
  for (size_t i = 0; i < pl->n; i++) {
    struct ip_disk *ipd = &pl->v[i];
    if (!ipd->replaced)
      continue;
    if (ipd->missing)
      unlink (ipd->path);
    else
      rename (ipd->keep, ipd->path);
    ipd->replaced = false;
  }
}

static int
swap_in (struct ip_plan *pl, struct vv_restore_disk *w)
{
  int r;

  /* The domain may have been started by someone meanwhile. */
  r = virDomainIsActive (pl->dom);
  if (r != 0) {
    if (r == 1)
      vv_error_code (VV_ERR_BUSY, "domain '%s' was started while backup %s "
                     "was being restored; no disk was replaced", pl->name,
                     pl->backup_id);
    else
      vv_error ("cannot get the state of domain '%s': %s; no disk was "
                "replaced", pl->name, vv_libvirt_error ());
    return -1;
  }

  for (size_t i = 0; i < pl->n; i++) {
    struct ip_disk *ipd = &pl->v[i];

    if (adopt_identity (ipd, w[i].out) == -1)
      return -1;
    if (ipd->missing)
      continue;
    ipd->keep = vv_printf ("%s/" KEEP_NAME, ipd->staging);
    if (ipd->keep == NULL)
      return -1;
    if (link (ipd->path, ipd->keep) == -1) {
      vv_error_errno (errno, "cannot link %s to %s (kept to put it back if "
                      "a later disk fails); no disk was replaced",
                      ipd->path, ipd->keep);
      free (ipd->keep);
      ipd->keep = NULL;
      return -1;
    }
  }

  for (size_t i = 0; i < pl->n; i++) {
    struct ip_disk *ipd = &pl->v[i];

    if (rename (w[i].out, ipd->path) == -1) {
      vv_error_errno (errno, "cannot rename %s to %s; %s", w[i].out,
                      ipd->path, i ? "the disks replaced before it were put "
                      "back" : "no disk was replaced");
      roll_back (pl);
      return -1;
    }
    ipd->replaced = true;
  }
  for (size_t i = 0; i < pl->n; i++)
    if (sync_dir (pl->v[i].dir) == -1) {
      vv_error_prefix ("the disks of domain '%s' were replaced, but: ",
                       pl->name);
      return -1;
    }
  return 0;
}

/* The new images carry no bitmaps, so no checkpoint of ours can be the
 * base of an incremental any more.  Only the metadata goes (there is no
 * bitmap left to delete, and libvirt can not delete bitmaps of a shut-off
 * domain anyway); children first.
 */
static int
delete_checkpoints (struct ip_plan *pl)
{
  virDomainCheckpointPtr *cps = NULL;
  _cleanup_free_ char *failed = NULL;
  int n, ret = 0;

  n = virDomainListAllCheckpoints (pl->dom, &cps,
                                   VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
  if (n == -1) {
    vv_error ("the disks of domain '%s' were replaced, but its checkpoints "
              "can not be listed: %s; delete those named " CHECKPOINT_PREFIX
              "* with 'virsh checkpoint-delete --metadata'", pl->name,
              vv_libvirt_error ());
    return -1;
  }
  for (int i = n - 1; i >= 0; i--) {
    const char *name = virDomainCheckpointGetName (cps[i]);

    if (name && vv_str_has_prefix (name, CHECKPOINT_PREFIX) &&
        virDomainCheckpointDelete (cps[i],
                                   VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
        == -1 && vv_libvirt_error_code () != VIR_ERR_NO_DOMAIN_CHECKPOINT) {
      if (ret == 0)
        failed = vv_printf ("the disks of domain '%s' were replaced, but "
                            "checkpoint '%s' could not be deleted: %s; "
                            "delete it with 'virsh checkpoint-delete %s %s "
                            "--metadata'", pl->name, name,
                            vv_libvirt_error (), pl->name, name);
      ret = -1;
    }
  }
  for (int i = 0; i < n; i++)
    virDomainCheckpointFree (cps[i]);
  free (cps);
  if (ret == -1)
    vv_error ("%s", failed ? failed : "deleting checkpoints failed");
  return ret;
}

int
vv_restore_in_place (struct vv_engine *e,
                     const struct vv_restore_request *req,
                     struct vv_progress *p)
{
  struct ip_plan pl = { 0 };
  struct vv_restore_src src = { .p = p };
  struct vv_restore_disk *w = NULL;
  struct vv_saved_error saved = { VV_ERR_NONE, NULL };
  bool src_open = false, stopped = false;
  int ret = -1;

  if (req == NULL) {
    vv_error_code (VV_ERR_INVALID, "the backup to restore is missing");
    return -1;
  }
  if (plan_load (e, req, &pl) == -1)
    goto out;
  if ((w = calloc (pl.n, sizeof *w)) == NULL) {
    vv_error_errno (ENOMEM, "restoring backup %s", pl.backup_id);
    goto out;
  }
  for (size_t i = 0; i < pl.n; i++) {
    struct ip_disk *ipd = &pl.v[i];

    if (mkdir (ipd->staging, 0700) == -1) {
      if (errno == EEXIST)
        vv_error_code (VV_ERR_BUSY, "%s exists: backup %s is being restored "
                       "over disk %s; wait for it", ipd->staging,
                       pl.backup_id, ipd->d->name);
      else
        vv_error_errno (errno, "cannot create %s", ipd->staging);
      goto out;
    }
    ipd->staged = true;
    w[i].d = ipd->d;
    w[i].format = ipd->format;
    w[i].staging = ipd->staging;
  }
  if (vv_restore_src_open (e, TAKE_PTR (pl.b), req->owner_filter, p,
                           &src) == -1)
    goto out;
  src_open = true;

  /* The domain keeps running while the disks are downloaded: it is
   * stopped only for the renames.
   */
  if (vv_restore_produce (&src, w, pl.n) == -1)
    goto out;
  if (virDomainIsActive (pl.dom) == 1) {
    if (!req->force_stop) {
      vv_error_code (VV_ERR_BUSY, "domain '%s' was started while backup %s "
                     "was being restored; no disk was replaced", pl.name,
                     pl.backup_id);
      goto out;
    }
    if (stop_domain (&pl, req->stop_timeout, p) == -1)
      goto out;
    stopped = true;
  }
  if (swap_in (&pl, w) == -1) {
    if (stopped)
      vv_error_prefix ("domain '%s' was stopped for the restore and is left "
                       "shut off: ", pl.name);
    goto out;
  }
  ret = delete_checkpoints (&pl);
  if (ret == 0 && req->start && virDomainCreate (pl.dom) == -1) {
    vv_error ("the disks of domain '%s' were replaced, but it could not be "
              "started: %s", pl.name, vv_libvirt_error ());
    ret = -1;
  }

 out:
  if (ret == -1)
    vv_restore_save_error (&saved);
  /* The staging directories hold the old images' links once replaced. */
  for (size_t i = 0; pl.v && i < pl.n; i++)
    if (pl.v[i].staged)
      vv_remove_tree (pl.v[i].staging);
  for (size_t i = 0; w && i < pl.n; i++)
    vv_restore_disk_clear (&w[i]);
  free (w);
  if (src_open)
    vv_restore_src_close (&src);
  plan_clear (&pl);
  if (ret == -1)
    vv_restore_restore_error (&saved);
  return ret;
}
