/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restore of a backup to a directory, and what every restore mode
 * shares: finding the backup and its disks, checking directories, and
 * choosing the mode.
 *
 * The disks are produced (produce.c) in a private staging directory
 * inside DIR; finished files are renamed to their final names only when
 * every disk is ready, without ever replacing a file.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore/restore.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/fault.h"
#include "util/strutil.h"

#define STAGING_PREFIX VV_RESTORE_STAGING_PREFIX

static void
cleanup_backup (struct vv_backup_rec **b)
{
  vv_backup_rec_free (*b);
}

/* ---- shared checks ---- */

int
vv_restore_get_format (const char *format, const char **ret)
{
  if (format == NULL || strcmp (format, "qcow2") == 0)
    *ret = "qcow2";
  else if (strcmp (format, "raw") == 0)
    *ret = "raw";
  else {
    vv_error_code (VV_ERR_INVALID, "restore format '%.64s' is not "
                   "supported; use qcow2 or raw", format);
    return -1;
  }
  return 0;
}

struct vv_backup_rec *
vv_restore_get_backup (struct vv_engine *e, const char *backup_id,
                       int64_t owner_filter)
{
  _cleanup_ (cleanup_backup) struct vv_backup_rec *b = NULL;

  if (backup_id == NULL) {
    vv_error_code (VV_ERR_INVALID, "the backup to restore is missing");
    return NULL;
  }
  b = vv_catalog_backup_get (e->catalog, backup_id, owner_filter);
  if (b == NULL)
    return NULL;
  if (strcmp (b->status, "completed") != 0) {
    vv_error_code (VV_ERR_INVALID, "backup %s is %s; only completed backups "
                   "can be restored", b->id, b->status);
    return NULL;
  }
  if (b->n_disks == 0) {
    vv_error ("backup %s has no disk images in the catalog", b->id);
    return NULL;
  }
  if (vv_check_name ("backup id", b->id, VV_ID_MAX) == -1)
    return NULL;
  for (size_t i = 0; i < b->n_disks; i++)
    if (vv_check_name ("disk name", b->disks[i].name, VV_DISK_NAME_MAX) == -1) {
      vv_error_prefix ("backup %s: ", b->id);
      return NULL;
    }
  return TAKE_PTR (b);
}

int
vv_restore_select_disks (const struct vv_backup_rec *b,
                         const char *const *names,
                         const struct vv_disk_rec ***ret, size_t *ret_n)
{
  _cleanup_free_ const struct vv_disk_rec **v = NULL;
  size_t n = 0;

  if (names && names[0] == NULL) {
    vv_error_code (VV_ERR_INVALID, "the list of disks to restore is empty; "
                   "name at least one, or leave it out for all");
    return -1;
  }
  for (size_t k = 0; names && names[k]; k++) {
    size_t j;

    for (size_t m = 0; m < k; m++)
      if (strcmp (names[m], names[k]) == 0) {
        vv_error_code (VV_ERR_INVALID, "disk '%.64s' is named twice in the "
                       "list of disks to restore", names[k]);
        return -1;
      }
    for (j = 0; j < b->n_disks; j++)
      if (strcmp (b->disks[j].name, names[k]) == 0)
        break;
    if (j == b->n_disks) {
      _cleanup_free_ char *have = NULL;
      for (size_t i = 0; i < b->n_disks; i++) {
        char *t = vv_printf ("%s%s%s", have ? have : "", have ? ", " : "",
                             b->disks[i].name);
        if (t == NULL)
          return -1;
        free (have);
        have = t;
      }
      vv_error_code (VV_ERR_INVALID, "backup %s has no disk '%.64s'; it "
                     "holds %s", b->id, names[k], have);
      return -1;
    }
  }

  v = calloc (b->n_disks, sizeof *v);
  if (v == NULL) {
    vv_error_errno (ENOMEM, "restoring backup %s", b->id);
    return -1;
  }
  for (size_t i = 0; i < b->n_disks; i++) {
    bool want = names == NULL;
    for (size_t k = 0; !want && names[k]; k++)
      want = strcmp (names[k], b->disks[i].name) == 0;
    if (want)
      v[n++] = &b->disks[i];
  }
  *ret = TAKE_PTR (v);
  *ret_n = n;
  return 0;
}

/* The directory without trailing slashes ("/" stays "/"). */
static char *
normalize_dir (const char *dir)
{
  size_t len;
  char *s;

  if (dir == NULL || dir[0] == '\0') {
    vv_error_code (VV_ERR_INVALID, "the restore directory is missing; give "
                   "an absolute path");
    return NULL;
  }
  len = strlen (dir);
  if (len > VV_RESTORE_DIR_MAX) {
    vv_error_code (VV_ERR_INVALID, "the restore directory is %zu bytes "
                   "long; the limit is %d", len, VV_RESTORE_DIR_MAX);
    return NULL;
  }
  if (dir[0] != '/') {
    vv_error_code (VV_ERR_INVALID, "restore directory '%s' is not an "
                   "absolute path", dir);
    return NULL;
  }
  if ((s = vv_strdup (dir)) == NULL)
    return NULL;
  while (len > 1 && s[len - 1] == '/')
    s[--len] = '\0';
  return s;
}

char *
vv_restore_parent_of (const char *dir)
{
  const char *slash = strrchr (dir, '/');
  size_t len = slash == NULL ? 0 : slash == dir ? 1 : (size_t) (slash - dir);
  char *s = malloc (len + 2);

  if (s == NULL) {
    vv_error_errno (ENOMEM, "parent of %s", dir);
    return NULL;
  }
  if (len == 0)
    strcpy (s, ".");
  else {
    memcpy (s, dir, len);
    s[len] = '\0';
  }
  return s;
}

static int
check_is_dir (const char *path)
{
  struct stat st;

  if (stat (path, &st) == -1) {
    vv_error_errno (errno, "cannot access restore directory %s", path);
    return -1;
  }
  if (!S_ISDIR (st.st_mode)) {
    vv_error_code (VV_ERR_INVALID, "%s is not a directory", path);
    return -1;
  }
  return 0;
}

int
vv_restore_probe_writable (const char *dir, const char *what)
{
  char id[VV_ID_MAX];
  _cleanup_free_ char *probe = NULL;
  int fd;

  if (vv_random_id ("probe", id) == -1 ||
      (probe = vv_printf ("%s%s.virtvault-%s", dir,
                          strcmp (dir, "/") == 0 ? "" : "/", id)) == NULL)
    return -1;
  fd = open (probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
             0600);
  if (fd == -1) {
    vv_error_code (VV_ERR_INVALID, "%s is not writable by the daemon: %s",
                   what, strerror (errno));
    return -1;
  }
  close (fd);
  unlink (probe);
  return 0;
}

static bool
exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0 || errno != ENOENT;
}

/* ---- restore to a directory ---- */

struct dir_plan {
  struct vv_backup_rec *b;
  const struct vv_disk_rec **disks;
  size_t n;
  const char *fmt;
  char *dir;
  bool dir_exists;
};

static void
dir_plan_clear (struct dir_plan *dp)
{
  vv_backup_rec_free (dp->b);
  free (dp->disks);
  free (dp->dir);
  memset (dp, 0, sizeof *dp);
}

/* Everything a restore to a directory needs that can be checked before
 * starting it.
 */
static int
prepare (struct vv_engine *e, const struct vv_restore_request *req,
         struct dir_plan *ret)
{
  struct dir_plan dp = { 0 };
  _cleanup_free_ char *parent = NULL, *staging = NULL, *what = NULL;
  const char *sep;
  struct stat st;

  if (req == NULL) {
    vv_error_code (VV_ERR_INVALID, "the backup to restore is missing");
    return -1;
  }
  if ((dp.b = vv_restore_get_backup (e, req->backup_id,
                                     req->owner_filter)) == NULL)
    goto fail;
  if (vv_restore_select_disks (dp.b, req->disks, &dp.disks, &dp.n) == -1 ||
      vv_restore_get_format (req->format, &dp.fmt) == -1 ||
      (dp.dir = normalize_dir (req->dir)) == NULL)
    goto fail;

  if (stat (dp.dir, &st) == 0)
    dp.dir_exists = true;
  else if (errno == ENOENT) {
    if ((parent = vv_restore_parent_of (dp.dir)) == NULL)
      goto fail;
    if (stat (parent, &st) == -1 && errno == ENOENT) {
      vv_error_code (VV_ERR_INVALID, "restore directory %s does not exist "
                     "and neither does %s; create it first", dp.dir, parent);
      goto fail;
    }
  }
  else {
    vv_error_errno (errno, "cannot access restore directory %s", dp.dir);
    goto fail;
  }
  if (dp.dir_exists)
    what = vv_printf ("restore directory %s", dp.dir);
  else
    what = vv_printf ("cannot create restore directory %s: %s", dp.dir,
                      parent);
  if (what == NULL ||
      check_is_dir (dp.dir_exists ? dp.dir : parent) == -1 ||
      vv_restore_probe_writable (dp.dir_exists ? dp.dir : parent, what) == -1)
    goto fail;

  if (dp.dir_exists) {
    sep = strcmp (dp.dir, "/") == 0 ? "" : "/";
    for (size_t i = 0; i < dp.n; i++) {
      _cleanup_free_ char *f = vv_printf ("%s%s%s.%s", dp.dir, sep,
                                          dp.disks[i]->name, dp.fmt);
      if (f == NULL)
        goto fail;
      if (exists (f)) {
        vv_error_code (VV_ERR_BUSY, "%s already exists; restore refuses to "
                       "overwrite — choose another directory or remove it",
                       f);
        goto fail;
      }
    }
    staging = vv_printf ("%s%s" STAGING_PREFIX "%s", dp.dir, sep, dp.b->id);
    if (staging == NULL)
      goto fail;
    if (exists (staging)) {
      vv_error_code (VV_ERR_BUSY, "%s exists: backup %s is being restored "
                     "into this directory, or a restore of it was "
                     "interrupted; wait for it, or remove it", staging,
                     dp.b->id);
      goto fail;
    }
  }
  *ret = dp;
  return 0;

 fail:
  dir_plan_clear (&dp);
  return -1;
}

struct placed {
  char *final;                  /* name in DIR */
  bool done;                    /* renamed to final */
};

static int
place (int dirfd, const char *dir, const char *out, struct placed *pl)
{
  if (renameat2 (AT_FDCWD, out, dirfd, pl->final, RENAME_NOREPLACE) == 0) {
    pl->done = true;
    return 0;
  }
  /* NFS and some others have no RENAME_NOREPLACE; link refuses to
   * replace too.
   */
  if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
    if (linkat (AT_FDCWD, out, dirfd, pl->final, 0) == 0) {
      pl->done = true;
      unlink (out);
      return 0;
    }
  }
  if (errno == EEXIST)
    vv_error_code (VV_ERR_BUSY, "%s/%s appeared while restoring; restore "
                   "refuses to overwrite — choose another directory or "
                   "remove it", dir, pl->final);
  else
    vv_error_errno (errno, "cannot rename %s to %s/%s", out, dir, pl->final);
  return -1;
}

int
vv_restore_dir_run (struct vv_engine *e, const struct vv_restore_request *req,
                    unsigned dir_mode, struct vv_progress *p,
                    bool *ret_created)
{
  struct dir_plan dp = { 0 };
  struct vv_restore_src src = { .p = p };
  struct vv_restore_disk *w = NULL;
  struct placed *pl = NULL;
  struct vv_saved_error saved = { VV_ERR_NONE, NULL };
  _cleanup_free_ char *staging = NULL, *record = NULL;
  bool created = false, staged = false, src_open = false;
  int dirfd = -1;
  size_t n;
  int ret = -1;

  if (prepare (e, req, &dp) == -1)
    return -1;
  n = dp.n;
  if ((w = calloc (n, sizeof *w)) == NULL ||
      (pl = calloc (n, sizeof *pl)) == NULL) {
    vv_error_errno (ENOMEM, "restoring backup %s", dp.b->id);
    goto out;
  }
  if (vv_restore_src_open (e, TAKE_PTR (dp.b), req->owner_filter, p,
                           &src) == -1)
    goto out;
  src_open = true;

  if (!dp.dir_exists) {
    if (mkdir (dp.dir, dir_mode) == 0) {
      created = true;
      /* mkdir applies the umask. */
      chmod (dp.dir, dir_mode);
    }
    else if (errno != EEXIST) {
      vv_error_errno (errno, "cannot create restore directory %s", dp.dir);
      goto out;
    }
  }
  dirfd = open (dp.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd == -1) {
    vv_error_errno (errno, "cannot open restore directory %s", dp.dir);
    goto out;
  }
  staging = vv_printf ("%s%s" STAGING_PREFIX "%s", dp.dir,
                       strcmp (dp.dir, "/") == 0 ? "" : "/",
                       src.chain.v[0]->id);
  /* Recorded before it exists, so a crash never leaves it unknown. */
  if (staging == NULL
      || vv_restore_staging_record (e, src.chain.v[0]->id, staging, created,
                                    &record) == -1)
    goto out;
  if (mkdir (staging, 0700) == -1) {
    if (errno == EEXIST)
      vv_error_code (VV_ERR_BUSY, "%s exists: backup %s is being restored "
                     "into this directory, or a restore of it was "
                     "interrupted; wait for it, or remove it",
                     staging, src.chain.v[0]->id);
    else
      vv_error_errno (errno, "cannot create %s", staging);
    goto out;
  }
  staged = true;
  vv_fault ("restore-staged");

  for (size_t i = 0; i < n; i++) {
    /* dp.disks point into the backup record the chain now owns. */
    w[i].d = dp.disks[i];
    w[i].format = dp.fmt;
    w[i].staging = staging;
    pl[i].final = vv_printf ("%s.%s", w[i].d->name, dp.fmt);
    if (pl[i].final == NULL)
      goto out;
  }
  if (vv_restore_produce (&src, w, n) == -1)
    goto out;
  for (size_t i = 0; i < n; i++)
    if (place (dirfd, dp.dir, w[i].out, &pl[i]) == -1)
      goto out;
  if (fsync (dirfd) == -1) {
    vv_error_errno (errno, "cannot sync directory %s", dp.dir);
    goto out;
  }
  ret = 0;

 out:
  if (ret == -1) {
    vv_restore_save_error (&saved);
    for (size_t i = 0; pl && i < n; i++)
      if (pl[i].done)
        unlinkat (dirfd, pl[i].final, 0);
  }
  /* Once the disks are in place a staging directory left behind (it can
   * hardly happen: it is ours, mode 0700) is untidy, not a failure.
   */
  if (staged)
    vv_remove_tree (staging);
  /* The record goes once the directory is gone; kept (and retried at the
   * next start) if it could not be removed.
   */
  if (record && !(staged && exists (staging)))
    vv_restore_staging_forget (TAKE_PTR (record));
  if (ret == -1) {
    if (created)
      rmdir (dp.dir);
    vv_restore_restore_error (&saved);
  }
  for (size_t i = 0; i < n; i++) {
    if (w)
      vv_restore_disk_clear (&w[i]);
    if (pl)
      free (pl[i].final);
  }
  free (w);
  free (pl);
  if (dirfd >= 0)
    close (dirfd);
  if (src_open)
    vv_restore_src_close (&src);
  dir_plan_clear (&dp);
  if (ret == 0 && ret_created)
    *ret_created = created;
  return ret;
}

int
vv_restore_to_dir (struct vv_engine *e, const struct vv_restore_request *req,
                   struct vv_progress *p)
{
  return vv_restore_dir_run (e, req, 0700, p, NULL);
}

/* ---- the modes ---- */

static int
strv_add (char ***v, size_t *n, char *s)
{
  char **t;

  if (s == NULL)
    return -1;
  t = realloc (*v, (*n + 2) * sizeof *t);
  if (t == NULL) {
    free (s);
    vv_error_errno (ENOMEM, "restore plan");
    return -1;
  }
  t[(*n)++] = s;
  t[*n] = NULL;
  *v = t;
  return 0;
}

int
vv_restore_info_add_disk (struct vv_restore_info *info, const char *disk,
                          const char *file)
{
  size_t nd = 0, nf = 0;

  while (info->disks && info->disks[nd])
    nd++;
  while (info->files && info->files[nf])
    nf++;
  if (strv_add (&info->disks, &nd, vv_strdup (disk)) == -1 ||
      strv_add (&info->files, &nf, vv_strdup (file)) == -1)
    return -1;
  return 0;
}

void
vv_restore_info_clear (struct vv_restore_info *info)
{
  if (info == NULL)
    return;
  free (info->domain);
  free (info->domain_uuid);
  free (info->dir);
  vv_strv_free (info->disks);
  vv_strv_free (info->files);
  free (info->notes);
  memset (info, 0, sizeof *info);
}

static int
plan_to_dir (struct vv_engine *e, const struct vv_restore_request *req,
             struct vv_restore_info *ret)
{
  struct dir_plan dp = { 0 };
  struct vv_restore_info info = { 0 };
  int r = -1;

  if (prepare (e, req, &dp) == -1)
    return -1;
  if (ret == NULL) {
    dir_plan_clear (&dp);
    return 0;
  }
  info.domain = vv_strdup (dp.b->domain);
  info.domain_uuid = vv_strdup (dp.b->domain_uuid);
  info.dir = vv_strdup (dp.dir);
  if (info.domain == NULL || info.domain_uuid == NULL || info.dir == NULL)
    goto out;
  for (size_t i = 0; i < dp.n; i++) {
    _cleanup_free_ char *f = vv_printf ("%s%s%s.%s", dp.dir,
                                        strcmp (dp.dir, "/") ? "/" : "",
                                        dp.disks[i]->name, dp.fmt);
    if (f == NULL || vv_restore_info_add_disk (&info, dp.disks[i]->name,
                                               f) == -1)
      goto out;
  }
  *ret = info;
  memset (&info, 0, sizeof info);
  r = 0;
 out:
  vv_restore_info_clear (&info);
  dir_plan_clear (&dp);
  return r;
}

/* A point marked corrupt, or an incremental resting on one, is not
 * restored unless the caller insists: the restore would most likely
 * fail its checksums half way, or write what the damage left.
 */
static int
check_not_corrupt (struct vv_engine *e, const struct vv_restore_request *req)
{
  _cleanup_ (cleanup_backup) struct vv_backup_rec *b = NULL;
  _cleanup_ (cleanup_backup) struct vv_backup_rec *bad = NULL;

  if (req->force)
    return 0;
  b = vv_catalog_backup_get (e->catalog, req->backup_id, req->owner_filter);
  if (b == NULL) {
    /* The mode's plan says what is wrong with the request. */
    vv_clear_error ();
    return 0;
  }
  if (b->corrupt == NULL) {
    bad = vv_catalog_chain_first_corrupt (e->catalog, b->chain_id,
                                          b->chain_pos);
    if (bad == NULL) {
      if (vv_get_error_code () != VV_ERR_NOT_FOUND)
        return -1;
      vv_clear_error ();
      return 0;
    }
  }
  if (bad == NULL || strcmp (bad->id, b->id) == 0)
    vv_error_code (VV_ERR_INVALID, "backup %s is marked corrupt (%s); "
                   "verify it again with 'virtvault verify %s', or restore "
                   "it anyway with --force (\"force\": true)", b->id,
                   b->corrupt ? b->corrupt : bad->corrupt, b->id);
  else
    vv_error_code (VV_ERR_INVALID, "backup %s rests on backup %s, which is "
                   "marked corrupt (%s); verify it again with 'virtvault "
                   "verify %s', or restore anyway with --force (\"force\": "
                   "true)", b->id, bad->id, bad->corrupt, bad->id);
  return -1;
}

int
vv_restore_plan (struct vv_engine *e, const struct vv_restore_request *req,
                 struct vv_restore_info *ret)
{
  if (req == NULL) {
    vv_error_code (VV_ERR_INVALID, "the backup to restore is missing");
    return -1;
  }
  if (check_not_corrupt (e, req) == -1)
    return -1;
  switch (req->mode) {
  case VV_RESTORE_TO_DIR:
    return plan_to_dir (e, req, ret);
  case VV_RESTORE_IN_PLACE:
    return vv_restore_in_place_plan (e, req, ret);
  case VV_RESTORE_AS_NEW:
    return vv_restore_as_new_plan (e, req, ret);
  }
  vv_error_code (VV_ERR_INVALID, "unknown restore mode %d", (int) req->mode);
  return -1;
}

int
vv_restore_check (struct vv_engine *e, const struct vv_restore_request *req)
{
  return vv_restore_plan (e, req, NULL);
}

int
vv_restore_run (struct vv_engine *e, const struct vv_restore_request *req,
                struct vv_progress *p)
{
  if (req == NULL) {
    vv_error_code (VV_ERR_INVALID, "the backup to restore is missing");
    return -1;
  }
  switch (req->mode) {
  case VV_RESTORE_TO_DIR:
    return vv_restore_to_dir (e, req, p);
  case VV_RESTORE_IN_PLACE:
    return vv_restore_in_place (e, req, p);
  case VV_RESTORE_AS_NEW:
    return vv_restore_as_new (e, req, p);
  }
  vv_error_code (VV_ERR_INVALID, "unknown restore mode %d", (int) req->mode);
  return -1;
}
