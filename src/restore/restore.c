/* Restore of a backup to a directory.
 *
 * Every image of the chain of each disk is downloaded (its sha256 checked
 * while it streams) into a private staging directory inside DIR, laid
 * out as on the target so relative backing file names resolve.  A full
 * restored as qcow2 is then just renamed into place; anything else goes
 * through qemu-img convert.  Finished files are renamed to their final
 * names only when every disk is ready, without ever replacing a file.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2/qcow2.h"
#include "restore/restore.h"
#include "restore/restore-internal.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

/* Longest restore directory accepted (PATH_MAX). */
#define VV_RESTORE_DIR_MAX 4096
/* Disk names become file names; libvirt's target devs are short. */
#define VV_DISK_NAME_MAX 64
#define STAGING_PREFIX ".virtvault-restore-"

static void
cleanup_backup (struct vv_backup_rec **b)
{
  vv_backup_rec_free (*b);
}

/* ---- checks ---- */

static int
get_format (const char *format, const char **ret)
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

static char *
parent_of (const char *dir)
{
  const char *slash = strrchr (dir, '/');
  size_t len = slash == dir ? 1 : (size_t) (slash - dir);
  char *s = malloc (len + 1);

  if (s == NULL) {
    vv_error_errno (ENOMEM, "parent of %s", dir);
    return NULL;
  }
  memcpy (s, dir, len);
  s[len] = '\0';
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

/* Root passes permission checks, so this is what finds read-only mounts
 * and NFS root squashing.
 */
static int
probe_writable (const char *dir, const char *restore_dir)
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
    const char *err = strerror (errno);
    if (strcmp (dir, restore_dir) == 0)
      vv_error_code (VV_ERR_INVALID, "restore directory %s is not writable "
                     "by the daemon: %s", dir, err);
    else
      vv_error_code (VV_ERR_INVALID, "cannot create restore directory %s: "
                     "%s is not writable by the daemon: %s",
                     restore_dir, dir, err);
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

/* Everything a restore needs that can be checked before starting it. */
static int
prepare (struct vv_engine *e, const struct vv_restore_request *req,
         struct vv_backup_rec **ret_b, const char **ret_fmt,
         char **ret_dir, bool *ret_dir_exists)
{
  _cleanup_ (cleanup_backup) struct vv_backup_rec *b = NULL;
  _cleanup_free_ char *dir = NULL, *parent = NULL, *staging = NULL;
  const char *fmt;
  const char *sep;
  bool dir_exists;
  struct stat st;

  if (req == NULL || req->backup_id == NULL) {
    vv_error_code (VV_ERR_INVALID, "the backup to restore is missing");
    return -1;
  }
  b = vv_catalog_backup_get (e->catalog, req->backup_id, req->owner_filter);
  if (b == NULL)
    return -1;
  if (strcmp (b->status, "completed") != 0) {
    vv_error_code (VV_ERR_INVALID, "backup %s is %s; only completed backups "
                   "can be restored", b->id, b->status);
    return -1;
  }
  if (b->n_disks == 0) {
    vv_error ("backup %s has no disk images in the catalog", b->id);
    return -1;
  }
  if (vv_check_name ("backup id", b->id, VV_ID_MAX) == -1)
    return -1;
  for (size_t i = 0; i < b->n_disks; i++)
    if (vv_check_name ("disk name", b->disks[i].name, VV_DISK_NAME_MAX) == -1) {
      vv_error_prefix ("backup %s: ", b->id);
      return -1;
    }
  if (get_format (req->format, &fmt) == -1)
    return -1;

  if ((dir = normalize_dir (req->dir)) == NULL)
    return -1;
  if (stat (dir, &st) == 0)
    dir_exists = true;
  else if (errno == ENOENT) {
    dir_exists = false;
    if ((parent = parent_of (dir)) == NULL)
      return -1;
    if (stat (parent, &st) == -1 && errno == ENOENT) {
      vv_error_code (VV_ERR_INVALID, "restore directory %s does not exist "
                     "and neither does %s; create it first", dir, parent);
      return -1;
    }
  }
  else {
    vv_error_errno (errno, "cannot access restore directory %s", dir);
    return -1;
  }
  if (check_is_dir (dir_exists ? dir : parent) == -1 ||
      probe_writable (dir_exists ? dir : parent, dir) == -1)
    return -1;

  if (dir_exists) {
    sep = strcmp (dir, "/") == 0 ? "" : "/";
    for (size_t i = 0; i < b->n_disks; i++) {
      _cleanup_free_ char *f = vv_printf ("%s%s%s.%s", dir, sep,
                                          b->disks[i].name, fmt);
      if (f == NULL)
        return -1;
      if (exists (f)) {
        vv_error_code (VV_ERR_BUSY, "%s already exists; restore refuses to "
                       "overwrite — choose another directory or remove it",
                       f);
        return -1;
      }
    }
    staging = vv_printf ("%s%s" STAGING_PREFIX "%s", dir, sep, b->id);
    if (staging == NULL)
      return -1;
    if (exists (staging)) {
      vv_error_code (VV_ERR_BUSY, "%s exists: backup %s is being restored "
                     "into this directory, or a restore of it was "
                     "interrupted; wait for it, or remove it", staging, b->id);
      return -1;
    }
  }

  if (ret_b)
    *ret_b = TAKE_PTR (b);
  if (ret_fmt)
    *ret_fmt = fmt;
  if (ret_dir)
    *ret_dir = TAKE_PTR (dir);
  if (ret_dir_exists)
    *ret_dir_exists = dir_exists;
  return 0;
}

int
vv_restore_check (struct vv_engine *e, const struct vv_restore_request *req)
{
  return prepare (e, req, NULL, NULL, NULL, NULL);
}

/* ---- the restore ---- */

struct disk_work {
  const struct vv_disk_rec *d;  /* the disk in the backup restored */
  size_t est_len;               /* its images expected along parent_id */
  uint64_t est_bytes;
  uint64_t est_fetched;         /* of est_bytes, downloaded */
  uint64_t convert_total;       /* added to the progress total for qemu-img */
  size_t chain_len;             /* images actually in its backing chain */
  uint64_t chain_bytes;
  char *top;                    /* downloaded top image */
  char *out;                    /* finished file in the staging dir */
  char *final;                  /* name in DIR */
  bool placed;                  /* renamed to final */
};

struct restore {
  struct vv_engine *e;
  const char *fmt;
  const char *dir;
  struct vv_restore_chain chain;
  struct vv_target *target;
  char *staging;
  int dirfd;
  void *buf;
  struct vv_progress *p;
};

static int
cancelled (struct restore *r)
{
  if (vv_progress_cancelled (r->p)) {
    vv_error_code (VV_ERR_CANCELLED, "restore of backup %s was cancelled",
                   r->chain.v[0]->id);
    return -1;
  }
  return 0;
}

static int64_t
pread_fd (void *opaque, void *buf, size_t count, uint64_t offset)
{
  int fd = *(int *) opaque;
  size_t done = 0;

  while (done < count) {
    ssize_t n = pread (fd, (char *) buf + done, count - done, offset + done);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      vv_error_errno (errno, "read");
      return -1;
    }
    if (n == 0)
      break;
    done += n;
  }
  return done;
}

/* Downloads one image and returns what its header says. */
static int
fetch_image (struct restore *r, size_t idx, const struct vv_disk_rec *d,
             bool sync, char **ret_path, struct vv_qcow2_info *ret_info)
{
  const char *bid = r->chain.v[idx]->id;
  _cleanup_free_ char *path = NULL, *parent = NULL;
  _cleanup_close_ int fd = -1;
  struct stat st;

  if (vv_restore_check_object (bid, d->object) == -1)
    return -1;
  if (d->format && strcmp (d->format, "qcow2") != 0) {
    vv_error ("%s of backup %s is stored as '%s'; only qcow2 images can be "
              "restored", vv_restore_object_base (d->object), bid, d->format);
    return -1;
  }
  path = vv_printf ("%s/%s", r->staging, d->object);
  if (path == NULL || (parent = parent_of (path)) == NULL ||
      vv_mkdir_p (parent, 0700) == -1)
    return -1;
  fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd == -1) {
    if (errno == EEXIST)
      vv_error ("the chain of backup %s uses %s twice; the catalog is "
                "damaged", r->chain.v[0]->id, d->object);
    else
      vv_error_errno (errno, "cannot create %s", path);
    return -1;
  }
  if (vv_restore_fetch (r->target, bid, d, fd, path, r->buf, r->p) == -1)
    return -1;
  if (fstat (fd, &st) == -1) {
    vv_error_errno (errno, "cannot stat %s", path);
    return -1;
  }
  /* The sha256 matched, so this is what the engine wrote; the check is
   * what tells us which file qemu-img would open as its backing file.
   */
  if (vv_qcow2_check (pread_fd, &fd, st.st_size, ret_info) == -1) {
    vv_error_prefix ("%s of backup %s is not a valid qcow2 image: ",
                     vv_restore_object_base (d->object), bid);
    return -1;
  }
  if (sync && ret_info->backing_file == NULL && fsync (fd) == -1) {
    vv_error_errno (errno, "cannot write %s", path);
    vv_qcow2_info_clear (ret_info);
    return -1;
  }
  *ret_path = TAKE_PTR (path);
  return 0;
}

/* Whether run() counted this image in the progress total up front. */
static bool
in_estimate (const struct disk_work *w, size_t idx,
             const struct vv_disk_rec *d)
{
  return idx < w->est_len && strcmp (d->name, w->d->name) == 0;
}

/* Downloads the backing chain of one disk, top first. */
static int
fetch_disk (struct restore *r, struct disk_work *w)
{
  const struct vv_disk_rec *d = w->d;
  size_t idx = 0;

  for (;;) {
    struct vv_qcow2_info info = { 0 };
    _cleanup_free_ char *path = NULL, *next = NULL;
    const struct vv_disk_rec *nd;
    size_t nidx;
    bool sync = idx == 0 && strcmp (r->fmt, "qcow2") == 0;

    if (cancelled (r) == -1 ||
        fetch_image (r, idx, d, sync, &path, &info) == -1)
      return -1;
    w->chain_len++;
    w->chain_bytes += d->stored_bytes;
    if (in_estimate (w, idx, d))
      w->est_fetched += d->stored_bytes;
    if (idx == 0) {
      w->top = TAKE_PTR (path);
      if (info.virtual_size != d->virtual_size) {
        vv_error ("%s of backup %s has a virtual size of %" PRIu64
                  " bytes, but the catalog says %" PRIu64,
                  vv_restore_object_base (d->object), r->chain.v[0]->id,
                  info.virtual_size, d->virtual_size);
        vv_qcow2_info_clear (&info);
        return -1;
      }
    }
    if (info.backing_file == NULL) {
      /* The progress total counted the images along parent_id; a chain
       * that ends sooner leaves some of them unread.
       */
      if (w->est_fetched < w->est_bytes)
        vv_progress_add (r->p, w->est_bytes - w->est_fetched);
      return 0;
    }

    if (info.backing_format && strcmp (info.backing_format, "qcow2") != 0) {
      vv_error ("%s of backup %s names a backing file of format '%s'; "
                "images on a target are all qcow2",
                vv_restore_object_base (d->object), r->chain.v[idx]->id,
                info.backing_format);
      vv_qcow2_info_clear (&info);
      return -1;
    }
    next = vv_restore_resolve_backing (d->object, info.backing_file);
    if (next == NULL) {
      vv_error_prefix ("backup %s on target '%s': ", r->chain.v[idx]->id,
                       vv_target_name (r->target));
      vv_qcow2_info_clear (&info);
      return -1;
    }
    nd = vv_restore_chain_find (&r->chain, idx + 1, next, &nidx);
    if (nd == NULL) {
      vv_error ("%s of backup %s names the backing file '%s' (%s), which is "
                "not an image of an earlier backup of chain %s",
                vv_restore_object_base (d->object), r->chain.v[idx]->id,
                info.backing_file, next, r->chain.v[0]->chain_id);
      vv_qcow2_info_clear (&info);
      return -1;
    }
    vv_qcow2_info_clear (&info);
    if (!in_estimate (w, nidx, nd))
      vv_progress_add_total (r->p, nd->stored_bytes);
    d = nd;
    idx = nidx;
  }
}

/* Makes w->out: the top image itself for a full kept as qcow2, else a
 * conversion of the chain.
 */
static int
produce_disk (struct restore *r, struct disk_work *w)
{
  bool convert = strcmp (r->fmt, "raw") == 0 || w->chain_len > 1;
  _cleanup_free_ char *what = NULL;
  _cleanup_close_ int fd = -1;

  if (!convert) {
    vv_progress_add (r->p, w->convert_total);
    w->out = TAKE_PTR (w->top);
    return 0;
  }
  if (w->chain_bytes > w->convert_total)
    vv_progress_add_total (r->p, w->chain_bytes - w->convert_total);
  else
    vv_progress_add (r->p, w->convert_total - w->chain_bytes);

  w->out = vv_printf ("%s/%s.%s", r->staging, w->d->name, r->fmt);
  what = vv_printf ("%s of backup %s", vv_restore_object_base (w->d->object),
                    r->chain.v[0]->id);
  if (w->out == NULL || what == NULL)
    return -1;
  if (vv_restore_convert (what, w->top, w->out, r->fmt, w->chain_bytes,
                          r->p) == -1)
    return -1;
  /* qemu-img creates the file with the daemon's umask. */
  fd = open (w->out, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd == -1 || fchmod (fd, 0600) == -1 || fsync (fd) == -1) {
    vv_error_errno (errno, "cannot finish %s", w->out);
    return -1;
  }
  return 0;
}

static int
place (struct restore *r, struct disk_work *w)
{
  if (renameat2 (AT_FDCWD, w->out, r->dirfd, w->final, RENAME_NOREPLACE) == 0) {
    w->placed = true;
    return 0;
  }
  /* NFS and some others have no RENAME_NOREPLACE; link refuses to
   * replace too.
   */
  if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
    if (linkat (AT_FDCWD, w->out, r->dirfd, w->final, 0) == 0) {
      w->placed = true;
      unlink (w->out);
      return 0;
    }
  }
  if (errno == EEXIST)
    vv_error_code (VV_ERR_BUSY, "%s/%s appeared while restoring; restore "
                   "refuses to overwrite — choose another directory or "
                   "remove it", r->dir, w->final);
  else
    vv_error_errno (errno, "cannot rename %s to %s/%s",
                    w->out, r->dir, w->final);
  return -1;
}

static int
run (struct restore *r, struct disk_work *w, size_t n)
{
  const struct vv_backup_rec *b = r->chain.v[0];

  /* Up front: every image along parent_id (the usual chain), and the
   * conversions those chains will need.
   */
  for (size_t i = 0; i < n; i++) {
    w[i].d = &b->disks[i];
    w[i].final = vv_printf ("%s.%s", w[i].d->name, r->fmt);
    if (w[i].final == NULL)
      return -1;
    for (size_t k = 0; k < r->chain.n; k++) {
      const struct vv_backup_rec *a = r->chain.v[k];
      size_t j;
      for (j = 0; j < a->n_disks; j++)
        if (strcmp (a->disks[j].name, w[i].d->name) == 0)
          break;
      if (j == a->n_disks)
        break;
      w[i].est_len++;
      w[i].est_bytes += a->disks[j].stored_bytes;
    }
    vv_progress_add_total (r->p, w[i].est_bytes);
    if (strcmp (r->fmt, "raw") == 0 || w[i].est_len > 1) {
      w[i].convert_total = w[i].est_bytes;
      vv_progress_add_total (r->p, w[i].convert_total);
    }
  }

  for (size_t i = 0; i < n; i++)
    if (fetch_disk (r, &w[i]) == -1)
      return -1;
  for (size_t i = 0; i < n; i++)
    if (cancelled (r) == -1 || produce_disk (r, &w[i]) == -1)
      return -1;
  if (cancelled (r) == -1)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (place (r, &w[i]) == -1)
      return -1;
  if (fsync (r->dirfd) == -1) {
    vv_error_errno (errno, "cannot sync directory %s", r->dir);
    return -1;
  }
  return 0;
}

int
vv_restore_to_dir (struct vv_engine *e, const struct vv_restore_request *req,
                   struct vv_progress *p)
{
  struct restore r = { .e = e, .dirfd = -1, .p = p };
  _cleanup_ (cleanup_backup) struct vv_backup_rec *b = NULL;
  _cleanup_free_ char *dir = NULL;
  struct disk_work *w = NULL;
  struct vv_saved_error saved = { VV_ERR_NONE, NULL };
  bool dir_exists, staged = false;
  size_t n = 0;
  int ret = -1;

  if (prepare (e, req, &b, &r.fmt, &dir, &dir_exists) == -1)
    return -1;
  r.dir = dir;
  n = b->n_disks;
  if (vv_restore_chain_load (e, TAKE_PTR (b), req->owner_filter,
                             &r.chain) == -1)
    return -1;
  if ((r.target = vv_restore_open_target (e, r.chain.v[0]->target)) == NULL) {
    vv_error_prefix ("restoring backup %s: ", r.chain.v[0]->id);
    goto out;
  }
  if ((r.buf = malloc (VV_RESTORE_FETCH_BUF)) == NULL ||
      (w = calloc (n, sizeof *w)) == NULL) {
    vv_error_errno (ENOMEM, "restoring backup %s", r.chain.v[0]->id);
    goto out;
  }

  if (!dir_exists && mkdir (dir, 0700) == -1) {
    if (errno != EEXIST) {
      vv_error_errno (errno, "cannot create restore directory %s", dir);
      goto out;
    }
    dir_exists = true;
  }
  r.dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (r.dirfd == -1) {
    vv_error_errno (errno, "cannot open restore directory %s", dir);
    goto out;
  }
  r.staging = vv_printf ("%s%s" STAGING_PREFIX "%s", dir,
                         strcmp (dir, "/") == 0 ? "" : "/", r.chain.v[0]->id);
  if (r.staging == NULL)
    goto out;
  if (mkdir (r.staging, 0700) == -1) {
    if (errno == EEXIST)
      vv_error_code (VV_ERR_BUSY, "%s exists: backup %s is being restored "
                     "into this directory, or a restore of it was "
                     "interrupted; wait for it, or remove it",
                     r.staging, r.chain.v[0]->id);
    else
      vv_error_errno (errno, "cannot create %s", r.staging);
    goto out;
  }
  staged = true;

  ret = run (&r, w, n);

 out:
  if (ret == -1) {
    vv_restore_save_error (&saved);
    for (size_t i = 0; w && i < n; i++)
      if (w[i].placed)
        unlinkat (r.dirfd, w[i].final, 0);
  }
  /* Once the disks are in place a staging directory left behind (it can
   * hardly happen: it is ours, mode 0700) is untidy, not a failure.
   */
  if (staged)
    vv_remove_tree (r.staging);
  if (ret == -1) {
    if (!dir_exists)
      rmdir (dir);
    vv_restore_restore_error (&saved);
  }
  for (size_t i = 0; w && i < n; i++) {
    free (w[i].top);
    free (w[i].out);
    free (w[i].final);
  }
  free (w);
  free (r.buf);
  free (r.staging);
  if (r.dirfd >= 0)
    close (r.dirfd);
  vv_target_close (r.target);
  vv_restore_chain_clear (&r.chain);
  return ret;
}
