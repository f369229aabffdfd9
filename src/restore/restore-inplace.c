/* SPDX-License-Identifier: LGPL-2.1-or-later */
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
 *
 * A journal in the daemon's state directory (<state>/restore/) names the
 * staging directories before any is made, and, written and synced before
 * the first rename, every disk's image, new image and kept link.  A
 * daemon that stops at any moment (a crash, a power cut) leaves it; the
 * next start (vv_restore_in_place_recover) puts every replaced disk back
 * from its link, so the domain never keeps a mix of old and restored
 * disks, and removes the staging directories.  Rolling back rather than
 * forward matches what the job reports after a restart: failed.
 *
 * A restore to a directory (also for as-new) records its one staging
 * directory in the same place before making it
 * (vv_restore_staging_record); the next start removes it.
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
#include <dirent.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <json-c/json.h>

#include "engine/domain.h"
#include "restore/restore.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/json.h"
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
  struct vv_engine *engine;
  struct vv_backup_rec *b;      /* until the chain takes it */
  char *journal;                /* <state>/restore/<backup>-<uuid>.json */
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
  free (pl->journal);
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

static void
fsync_dir_quiet (const char *dir)
{
  _cleanup_close_ int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd != -1)
    fsync (fd);
}

/* ---- the journal ---- */

#define JOURNAL_DIR "restore"
#define JOURNAL_MAX (1024 * 1024)
/* The phase of a staging directory record (restore to a directory). */
#define PHASE_DIR "directory"
#define PHASE_STAGING "staging"
#define PHASE_SWAPPING "swapping"
#define PHASE_SWAPPED "swapped"

static char *
journal_dir (struct vv_engine *e)
{
  return vv_printf ("%s/" JOURNAL_DIR, e->state_dir);
}

/* Writes journal o to path in the journal directory atomically and
 * durably: a temporary file, fsync, rename, fsync of the directory.
 */
static int
journal_store (struct vv_engine *e, const char *path, json_object *o)
{
  _cleanup_free_ char *tmp = NULL, *dir = NULL;
  _cleanup_close_ int fd = -1;
  const char *text;
  size_t len;

  text = json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY);
  len = strlen (text);
  if ((dir = journal_dir (e)) == NULL
      || (tmp = vv_printf ("%s.tmp", path)) == NULL)
    return -1;
  if (mkdir (dir, 0700) == -1 && errno != EEXIST) {
    vv_error_errno (errno, "cannot create %s", dir);
    return -1;
  }
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1 || write (fd, text, len) != (ssize_t) len
      || fsync (fd) == -1) {
    vv_error_errno (errno, "cannot write the restore journal %s", tmp);
    unlink (tmp);
    return -1;
  }
  if (rename (tmp, path) == -1) {
    vv_error_errno (errno, "cannot rename %s to %s", tmp, path);
    unlink (tmp);
    return -1;
  }
  return sync_dir (dir);
}

/* Writes the in-place journal (journal_store) in phase PHASE_STAGING
 * (nothing renamed yet), PHASE_SWAPPING (the renames may begin: recovery
 * puts every disk back) or PHASE_SWAPPED (every disk renamed: recovery
 * keeps the restored disks and drops the old images in staging).
 */
static int
journal_write (struct ip_plan *pl, const struct vv_restore_disk *w,
               const char *phase)
{
  bool swapping = strcmp (phase, PHASE_SWAPPING) == 0;

  _cleanup_json_ json_object *o = json_object_new_object ();
  json_object *disks = json_object_new_array ();

  if (o == NULL || disks == NULL) {
    json_object_put (disks);
    vv_error_errno (ENOMEM, "writing the restore journal");
    return -1;
  }
  json_object_object_add (o, "backup_id",
                          json_object_new_string (pl->backup_id));
  json_object_object_add (o, "domain", json_object_new_string (pl->name));
  json_object_object_add (o, "domain_uuid",
                          json_object_new_string (pl->uuid));
  json_object_object_add (o, "phase", json_object_new_string (phase));
  json_object_object_add (o, "disks", disks);
  for (size_t i = 0; i < pl->n; i++) {
    json_object *d = json_object_new_object ();
    if (d == NULL || json_object_array_add (disks, d) != 0) {
      json_object_put (d);
      vv_error_errno (ENOMEM, "writing the restore journal");
      return -1;
    }
    json_object_object_add (d, "name", json_object_new_string
                            (pl->v[i].d->name));
    json_object_object_add (d, "path", json_object_new_string
                            (pl->v[i].path));
    json_object_object_add (d, "staging", json_object_new_string
                            (pl->v[i].staging));
    json_object_object_add (d, "new", vv_json_string_or_null
                            (swapping ? w[i].out : NULL));
    json_object_object_add (d, "keep", vv_json_string_or_null
                            (pl->v[i].keep));
    json_object_object_add (d, "missing",
                            json_object_new_boolean (pl->v[i].missing));
  }
  return journal_store (pl->engine, pl->journal, o);
}

/* ---- staging directories of restores to a directory ---- */

int
vv_restore_staging_record (struct vv_engine *e, const char *backup_id,
                           const char *staging, bool dir_created,
                           char **ret_path)
{
  _cleanup_json_ json_object *o = json_object_new_object ();
  _cleanup_free_ char *dir = NULL, *path = NULL;
  char id[VV_ID_MAX];

  if (o == NULL) {
    vv_error_errno (ENOMEM, "writing the restore journal");
    return -1;
  }
  json_object_object_add (o, "backup_id", json_object_new_string (backup_id));
  json_object_object_add (o, "phase", json_object_new_string (PHASE_DIR));
  json_object_object_add (o, "staging", json_object_new_string (staging));
  json_object_object_add (o, "dir_created",
                          json_object_new_boolean (dir_created));
  if (vv_random_id ("dir", id) == -1
      || (dir = journal_dir (e)) == NULL
      || (path = vv_printf ("%s/%s-%s.json", dir, backup_id, id)) == NULL
      || journal_store (e, path, o) == -1)
    return -1;
  *ret_path = TAKE_PTR (path);
  return 0;
}

void
vv_restore_staging_forget (char *path)
{
  _cleanup_free_ char *dir = NULL;

  if (path == NULL)
    return;
  unlink (path);
  if ((dir = vv_restore_parent_of (path)) != NULL)
    fsync_dir_quiet (dir);
  free (path);
}

/* Puts back one disk from what is on disk now (so it works the same
 * after a crash): a disk that had no image loses the one renamed in; any
 * other gets its kept link back unless the image is still the old one.
 * Appends what failed to *failed.
 */
static int
put_back (const char *name, const char *path, const char *new_path,
          const char *keep, bool missing, char **failed)
{
  struct stat sp, sk, sn;
  int e = 0;

  if (missing) {
    /* Renamed in when the new image is no longer where it was made. */
    if (new_path && lstat (new_path, &sn) == -1 && errno == ENOENT
        && lstat (path, &sp) == 0 && unlink (path) == -1)
      e = errno;
  }
  else if (keep == NULL)
    return 0;                   /* never linked: never replaced */
  else if (lstat (keep, &sk) == -1)
    e = errno;
  else if (lstat (path, &sp) == 0 && sp.st_ino == sk.st_ino
           && sp.st_dev == sk.st_dev)
    return 0;                   /* the old image is in place */
  else if (vv_fault ("inplace-rollback-rename") == -1
           || rename (keep, path) == -1)
    e = errno;
  if (e == 0)
    return 0;
  {
    _cleanup_free_ char *prev = *failed;
    *failed = vv_printf ("%s%sdisk %s could not be put back (%s); its old "
                         "image is %s", prev ? prev : "", prev ? "; " : "",
                         name, strerror (e), missing ? "none" : keep);
  }
  return -1;
}

/* Puts the old images back after a failed rename; -1 (with the failures
 * in *failed) when a disk could not be put back.
 */
static int
roll_back (struct ip_plan *pl, const struct vv_restore_disk *w,
           char **failed)
{
  int ret = 0;

  for (size_t i = 0; i < pl->n; i++) {
    struct ip_disk *ipd = &pl->v[i];
    if (put_back (ipd->d->name, ipd->path, w[i].out, ipd->keep,
                  ipd->missing, failed) == -1)
      ret = -1;
    else
      ipd->replaced = false;
  }
  for (size_t i = 0; ret == 0 && i < pl->n; i++)
    if (sync_dir (pl->v[i].dir) == -1) {
      _cleanup_free_ char *prev = *failed;
      *failed = vv_printf ("%s%s", prev ? prev : "", vv_get_error ());
      ret = -1;
    }
  return ret;
}

static int
swap_in (struct ip_plan *pl, struct vv_restore_disk *w, bool *ret_kept)
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
    if (sync_dir (ipd->staging) == -1)
      return -1;
  }
  /* From here on a crash leaves a mix unless the journal says how to
   * undo it.
   */
  if (journal_write (pl, w, PHASE_SWAPPING) == -1) {
    vv_error_prefix ("no disk was replaced: ");
    return -1;
  }

  for (size_t i = 0; i < pl->n; i++) {
    struct ip_disk *ipd = &pl->v[i];

    if (vv_fault ("inplace-rename-%zu", i + 1) == -1
        || rename (w[i].out, ipd->path) == -1) {
      int err = errno;
      _cleanup_free_ char *failed = NULL;

      if (i == 0 || roll_back (pl, w, &failed) == 0)
        vv_error_errno (err, "cannot rename %s to %s; %s", w[i].out,
                        ipd->path, i ? "the disks replaced before it were "
                        "put back" : "no disk was replaced");
      else {
        /* The staging directories hold the old images: they stay, and
         * so does the journal, which the next start of the daemon
         * retries.
         */
        *ret_kept = true;
        vv_error ("cannot rename %s to %s: %s; putting back the disks "
                  "replaced before it failed: %s; the restore journal %s "
                  "is kept and retried when virtvaultd starts", w[i].out,
                  ipd->path, strerror (err),
                  failed ? failed : "unknown error", pl->journal);
      }
      return -1;
    }
    ipd->replaced = true;
    vv_fault ("inplace-after-rename-%zu", i + 1);
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
  bool journal_written = false, kept = false;
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
  pl.engine = e;
  {
    _cleanup_free_ char *dir = journal_dir (e);
    if (dir == NULL || (pl.journal = vv_printf ("%s/%s-%s.json", dir,
                                                pl.backup_id,
                                                pl.uuid)) == NULL)
      goto out;
  }
  /* Named before they exist, so a crash never leaves one unknown. */
  if (journal_write (&pl, w, PHASE_STAGING) == -1)
    goto out;
  journal_written = true;
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
  if (swap_in (&pl, w, &kept) == -1) {
    if (stopped)
      vv_error_prefix ("domain '%s' was stopped for the restore and is left "
                       "shut off: ", pl.name);
    goto out;
  }
  /* The restore is done: a crash from here on must not undo it (the
   * domain may be running on the new disks soon).  Should the journal not
   * be rewritten, a crash before the end puts the old disks back, which
   * is consistent too.
   */
  if (journal_write (&pl, w, PHASE_SWAPPED) == -1)
    vv_clear_error ();
  ret = delete_checkpoints (&pl);
  if (ret == 0 && req->start && (vv_fault ("inplace-before-start") == -1
                                 || virDomainCreate (pl.dom) == -1)) {
    vv_error ("the disks of domain '%s' were replaced, but it could not be "
              "started: %s", pl.name, vv_libvirt_error ());
    ret = -1;
  }

 out:
  if (ret == -1)
    vv_restore_save_error (&saved);
  /* The staging directories hold the old images' links once replaced;
   * kept (with the journal) when a disk could not be put back.
   */
  for (size_t i = 0; !kept && pl.v && i < pl.n; i++)
    if (pl.v[i].staged)
      vv_remove_tree (pl.v[i].staging);
  if (journal_written && !kept)
    unlink (pl.journal);
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

/* ---- after a crash ---- */

static int
read_journal (const char *path, char **ret, size_t *ret_len)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  _cleanup_free_ char *buf = malloc (JOURNAL_MAX + 1);
  size_t len = 0;
  ssize_t r;

  if (fd == -1 || buf == NULL) {
    vv_error_errno (fd == -1 ? errno : ENOMEM, "cannot read %s", path);
    return -1;
  }
  while ((r = read (fd, buf + len, JOURNAL_MAX + 1 - len)) > 0)
    len += r;
  if (r == -1 || len > JOURNAL_MAX) {
    vv_error_errno (r == -1 ? errno : EFBIG, "cannot read %s", path);
    return -1;
  }
  buf[len] = '\0';
  *ret = TAKE_PTR (buf);
  *ret_len = len;
  return 0;
}

/* A path from a journal: absolute, and for a staging directory one we
 * name so.  The journal is in the daemon's private state directory, but
 * nothing is removed on its word alone.
 */
static bool
journal_path_ok (const char *p, bool staging)
{
  const char *base;

  if (p == NULL || p[0] != '/' || strlen (p) > VV_RESTORE_DIR_MAX + 512
      || strstr (p, "/../") != NULL)
    return false;
  base = strrchr (p, '/') + 1;
  return !staging || vv_str_has_prefix (base, VV_RESTORE_STAGING_PREFIX);
}

static const char *
jstr (json_object *o, const char *key)
{
  json_object *v;

  if (!json_object_object_get_ex (o, key, &v)
      || !json_object_is_type (v, json_type_string))
    return NULL;
  return json_object_get_string (v);
}

/* Removes the staging directory of an interrupted restore to a
 * directory, and the directory itself when that restore created it and
 * it is empty: what the restore does when it fails.  Never a disk
 * placed in the directory: those are outside the staging directory.
 */
static int
recover_staging (const char *path, json_object *o, const char *backup,
                 void (*log) (const char *line))
{
  _cleanup_free_ char *line = NULL, *dir = NULL;
  const char *staging = jstr (o, "staging");
  json_object *m;
  bool created = json_object_object_get_ex (o, "dir_created", &m)
    && json_object_get_boolean (m);

  if (!journal_path_ok (staging, true)) {
    vv_error ("%s: the staging directory is not valid", path);
    return -1;
  }
  if ((dir = vv_restore_parent_of (staging)) == NULL)
    return -1;
  if (vv_remove_tree (staging) == -1)
    return -1;
  fsync_dir_quiet (dir);
  created = created && rmdir (dir) == 0;
  line = vv_printf ("restore of backup %s into %s was interrupted: its "
                    "staging directory %s was removed%s", backup, dir,
                    staging, created ? ", and the directory it had created"
                    : "");
  log (line ? line : staging);
  unlink (path);
  return 0;
}

/* Finishes one journal: 0 done (journal removed), -1 not (kept). */
static int
recover_journal (const char *path, void (*log) (const char *line))
{
  _cleanup_free_ char *text = NULL, *failed = NULL, *line = NULL;
  _cleanup_json_ json_object *o = NULL;
  json_object *disks;
  const char *phase, *domain, *backup;
  size_t len = 0, n;
  bool swapping;

  if (read_journal (path, &text, &len) == -1
      || (o = vv_json_parse (path, text, len)) == NULL)
    goto bad;
  phase = jstr (o, "phase");
  domain = jstr (o, "domain");
  backup = jstr (o, "backup_id");
  if (phase && backup && strcmp (phase, PHASE_DIR) == 0) {
    if (recover_staging (path, o, backup, log) == -1)
      goto bad;
    return 0;
  }
  if (phase == NULL || domain == NULL || backup == NULL
      || !json_object_object_get_ex (o, "disks", &disks)
      || !json_object_is_type (disks, json_type_array)
      || (n = json_object_array_length (disks)) > VV_MAX_DISKS) {
    vv_error ("%s is not a restore journal", path);
    goto bad;
  }
  swapping = strcmp (phase, PHASE_SWAPPING) == 0;
  for (size_t i = 0; i < n; i++) {
    json_object *d = json_object_array_get_idx (disks, i), *m;
    const char *name = jstr (d, "name"), *p = jstr (d, "path");
    const char *staging = jstr (d, "staging"), *keep = jstr (d, "keep");
    const char *new_path = jstr (d, "new");
    bool missing = json_object_object_get_ex (d, "missing", &m)
      && json_object_get_boolean (m);

    if (name == NULL || !journal_path_ok (p, false)
        || !journal_path_ok (staging, true)
        || (keep && !journal_path_ok (keep, false))
        || (new_path && !journal_path_ok (new_path, false))) {
      vv_error ("%s: disk %zu is not valid", path, i);
      goto bad;
    }
    if (swapping && put_back (name, p, new_path, keep, missing,
                              &failed) == -1)
      continue;
    /* Synced before the staging directory (and the link) goes. */
    {
      _cleanup_free_ char *dir = vv_restore_parent_of (p);
      if (dir)
        fsync_dir_quiet (dir);
    }
    vv_remove_tree (staging);
  }
  if (failed) {
    line = vv_printf ("restore of backup %s over domain '%s' was "
                      "interrupted; %s; the journal %s is kept and "
                      "retried at the next start", backup, domain, failed,
                      path);
    log (line ? line : failed);
    return -1;
  }
  line = vv_printf (swapping
                    ? "restore of backup %s over domain '%s' was "
                    "interrupted during its renames: every disk was put "
                    "back as it was, staging directories removed"
                    : strcmp (phase, PHASE_SWAPPED) == 0
                    ? "restore of backup %s over domain '%s' was "
                    "interrupted after its renames: every disk is the "
                    "restored one, the old images in the staging "
                    "directories removed"
                    : "restore of backup %s over domain '%s' was "
                    "interrupted before its renames: no disk was touched, "
                    "staging directories removed", backup, domain);
  if (line)
    log (line);
  unlink (path);
  return 0;

 bad:
  line = vv_printf ("cannot recover from the restore journal %s: %s; it is "
                    "kept", path, vv_get_error ());
  log (line ? line : path);
  return -1;
}

int
vv_restore_in_place_recover (struct vv_engine *e,
                             void (*log) (const char *line))
{
  _cleanup_free_ char *dir = journal_dir (e);
  DIR *d;
  struct dirent *de;
  int ret = 0;

  if (dir == NULL)
    return -1;
  d = opendir (dir);
  if (d == NULL) {
    if (errno == ENOENT)
      return 0;
    vv_error_errno (errno, "cannot open %s", dir);
    return -1;
  }
  while ((de = readdir (d)) != NULL) {
    size_t l = strlen (de->d_name);
    _cleanup_free_ char *path = NULL;

    if (l < 6 || strcmp (de->d_name + l - 5, ".json") != 0)
      continue;
    path = vv_printf ("%s/%s", dir, de->d_name);
    if (path && recover_journal (path, log) == -1)
      ret = -1;
  }
  closedir (d);
  fsync_dir_quiet (dir);
  return ret;
}
