/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The file storage plugin: objects are files under a local directory or
 * an NFS mount, file:///srv/backup.
 *
 * Object "a/b/c" is the file ROOT/a/b/c.  A put writes
 * ROOT/a/b/.c.part-XXXXXX, fsyncs it, hard-links it to its final name
 * (which fails if the name exists, so nothing is ever replaced), unlinks
 * the temporary name and fsyncs the directory.
 *
 * Symbolic links: the root itself may be a link (the admin chose it), but
 * nothing below it is followed.  Every path is walked one component at a
 * time with O_NOFOLLOW, so a link planted inside the root can not send
 * reads or writes outside it.  Whoever else writes to the directory may
 * plant anything under an object name: an object is read only if it is a
 * regular file, and a FIFO or device node there is never opened (see
 * open_object).
 *
 * Threading: a handle is never modified after open and every call works
 * on its own file descriptors, so handles and streams may be used from
 * any number of threads at once (more than the ABI asks for).
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <virtvault-plugin.h>

#include "direct-writer.h"

#define FILE_CONFIG_HELP                                                \
  "fsync=true|false   fsync files and directories before publishing "  \
  "(default true)\n"                                                    \
  "dir_mode=OCTAL     mode of the directories it creates, before the "  \
  "umask (default 0750)\n"                                              \
  "direct=true|false  write image data with O_DIRECT where the file "    \
  "system allows (default true)\n"

#define TEMP_TAG ".part-"
#define TEMP_RANDOM 6
/* ".<base>.part-XXXXXX" adds this much to a base name. */
#define TEMP_EXTRA (1 + sizeof TEMP_TAG - 1 + TEMP_RANDOM)
/* A writer racing a remover that deletes an empty parent directory
 * retries the walk this often.
 */
#define CREATE_RETRIES 5
/* With fsync on, writeback of what a put wrote is started every this
 * many bytes: the kernel would otherwise keep a whole backup image dirty
 * in memory (the default background threshold is 10 % of RAM) and write
 * all of it at the final fsync, after the copy.  Started early, the disk
 * writes overlap the copy and the fsync only waits for the tail.
 */
#define WRITEBACK_STEP (8 * 1024 * 1024)

/* What the plugin tells the host: reads of 1 MiB and more go at the
 * disk's speed, and a few at once keep an SSD or NFS busy.
 */
#define FILE_IO_SIZE (1024 * 1024)

/* By default (direct=true) data goes to the disk with O_DIRECT where the
 * file system allows it: on these virtual machines writing 1.5 GiB through the
 * page cache and then fsync took about 6 s, with O_DIRECT about 1.8 s, and
 * it leaves the cache to the guests.  Writes are gathered in aligned
 * buffers and written by a thread of the stream (direct-writer.c), so the
 * copy from the guest goes on while the disk writes.
 */
#define FILE_PARALLEL_READS 4

struct file_target {
  char *root;               /* absolute, no trailing '/' unless "/" */
  bool fsync;
  bool direct;
  mode_t dir_mode;
};

struct file_put {
  struct file_target *h;
  char *name;               /* object name, for messages */
  int dirfd;                /* the object's directory */
  int fd;                   /* the temporary file */
  const char *base;         /* final name inside dirfd (points into name) */
  char tmp[NAME_MAX + 1];   /* temporary name inside dirfd */
  off_t written;            /* bytes written so far */
  off_t flushed;            /* writeback started up to here */
  bool no_writeback;        /* sync_file_range not supported here */
  /* O_DIRECT writes; NULL when off or the file system refuses them. */
  struct direct_writer *dw;
};

static void
free_ptr (void *p)
{
  free (*(void **) p);
}

static void
close_fd (int *fd)
{
  if (*fd >= 0) {
    int saved_errno = errno;
    close (*fd);
    errno = saved_errno;
  }
}

#define _cleanup_free_ __attribute__ ((cleanup (free_ptr)))
#define _cleanup_close_ __attribute__ ((cleanup (close_fd)))

/* virtvault_error() looks at errno to tell "storage full" from other
 * failures, so errno is set to what the message is about.
 */
static void __attribute__ ((format (printf, 2, 3)))
error_errno (int errnum, const char *fmt, ...)
{
  char msg[1536];
  const char *why = strerror (errnum);
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  errno = errnum;
  virtvault_error ("%s: %s", msg, why);
}

/* A message that says it all, of error class errnum. */
static void __attribute__ ((format (printf, 2, 3)))
error_class (int errnum, const char *fmt, ...)
{
  char msg[1536];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  errno = errnum;
  virtvault_error ("%s", msg);
}

#define error_plain(...) error_class (0, __VA_ARGS__)

/* ---- open / close ---- */

static int
parse_bool (const char *key, const char *v, bool *ret)
{
  if (strcmp (v, "true") == 0 || strcmp (v, "1") == 0 ||
      strcmp (v, "yes") == 0)
    *ret = true;
  else if (strcmp (v, "false") == 0 || strcmp (v, "0") == 0 ||
           strcmp (v, "no") == 0)
    *ret = false;
  else {
    error_plain ("file target parameter %s must be true or false, not '%s'",
                 key, v);
    return -1;
  }
  return 0;
}

static int
parse_params (struct file_target *h, const char *const *params)
{
  bool seen_fsync = false, seen_mode = false, seen_direct = false;
  const char *p = NULL;
  size_t i, klen = 0;

  for (i = 0; params[i]; i++) {
    const char *eq, *v;

    p = params[i];
    eq = strchr (p, '=');
    klen = eq ? (size_t) (eq - p) : strlen (p);
    v = eq ? eq + 1 : "";
    if (klen == 5 && strncmp (p, "fsync", 5) == 0) {
      if (seen_fsync)
        goto twice;
      if (parse_bool ("fsync", v, &h->fsync) == -1)
        return -1;
      seen_fsync = true;
    }
    else if (klen == 6 && strncmp (p, "direct", 6) == 0) {
      if (seen_direct)
        goto twice;
      if (parse_bool ("direct", v, &h->direct) == -1)
        return -1;
      seen_direct = true;
    }
    else if (klen == 8 && strncmp (p, "dir_mode", 8) == 0) {
      char *end;
      unsigned long m;

      if (seen_mode)
        goto twice;
      errno = 0;
      m = strtoul (v, &end, 8);
      if (*v == '\0' || *end || errno || m > 07777 || (m & 0700) != 0700) {
        error_plain ("file target parameter dir_mode must be an octal mode "
                     "that lets the owner in (like 0750), not '%s'", v);
        return -1;
      }
      h->dir_mode = m;
      seen_mode = true;
    }
    else {
      error_plain ("unknown file target parameter '%.*s'; accepted: "
                   "fsync=true|false, dir_mode=OCTAL, direct=true|false",
                   (int) klen, p);
      return -1;
    }
  }
  return 0;

 twice:
  error_plain ("file target parameter '%.*s' is given twice", (int) klen, p);
  return -1;
}

static void *
file_open (const char *url, const char *const *params)
{
  _cleanup_free_ struct file_target *h = NULL;
  const char *rest, *path;
  size_t len;

  if (strncmp (url, "file://", 7) != 0) {
    error_plain ("'%s' is not a file:// URL", url);
    return NULL;
  }
  rest = url + 7;
  path = strchr (rest, '/');
  if (path == NULL)
    path = rest + strlen (rest);
  if (!(path == rest ||
        ((size_t) (path - rest) == 9 && strncmp (rest, "localhost", 9) == 0))) {
    error_plain ("file URL %s names host '%.*s'; file targets are local "
                 "directories (mount NFS and use file:///mnt/path)",
                 url, (int) (path - rest), rest);
    return NULL;
  }
  if (*path != '/') {
    error_plain ("file URL %s has no absolute path; write it like "
                 "file:///srv/backup", url);
    return NULL;
  }
  if (strpbrk (path, "%?#")) {
    error_plain ("file URL %s contains '%%', '?' or '#'; write the path "
                 "as it is, without URL escapes, and give options as "
                 "parameters", url);
    return NULL;
  }
  len = strlen (path);
  if (len >= PATH_MAX) {
    error_plain ("the path in file URL %.60s... is too long", url);
    return NULL;
  }

  h = calloc (1, sizeof *h);
  if (h == NULL || (h->root = strdup (path)) == NULL) {
    error_errno (errno, "opening file target %s", url);
    return NULL;
  }
  while (len > 1 && h->root[len - 1] == '/')
    h->root[--len] = '\0';
  h->fsync = true;
  h->direct = true;
  h->dir_mode = 0750;
  if (parse_params (h, params) == -1) {
    free (h->root);
    return NULL;
  }
  /* The directory is not touched here: test() says what is wrong with it. */
  struct file_target *ret = h;
  h = NULL;
  return ret;
}

static void
file_close (void *handle)
{
  struct file_target *h = handle;

  free (h->root);
  free (h);
}

/* ---- walking paths below the root without following links ---- */

static int
open_root (struct file_target *h)
{
  int fd = open (h->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd == -1) {
    if (errno == ENOENT)
      error_plain ("target directory %s does not exist; create it or fix "
                   "the URL", h->root);
    else
      error_errno (errno, "cannot open target directory %s", h->root);
  }
  return fd;
}

#define WALK_CREATE 1   /* make missing directories (fsyncing their parents) */
#define WALK_QUIET  2   /* report nothing, just fail with errno */

/* Opens directory "path[0..len)" below rootfd one component at a time.
 * Returns an fd, or -1 with errno set.  A directory that does not exist
 * (ENOENT, ENOTDIR) is left to the caller to report, without
 * WALK_CREATE; every other failure is reported unless WALK_QUIET.
 */
static int
walk_dir (struct file_target *h, int rootfd, const char *path, size_t len,
          int flags)
{
  const bool create = flags & WALK_CREATE, quiet = flags & WALK_QUIET;
  _cleanup_close_ int fd = -1;
  size_t i = 0;
  int e;

  fd = fcntl (rootfd, F_DUPFD_CLOEXEC, 0);
  if (fd == -1) {
    e = errno;
    if (!quiet)
      error_errno (e, "cannot open target directory %s", h->root);
    errno = e;
    return -1;
  }
  while (i < len) {
    size_t j = i;
    char comp[NAME_MAX + 1];
    int next;

    while (j < len && path[j] != '/')
      j++;
    if (j - i > NAME_MAX) {
      if (!quiet)
        error_plain ("cannot use %.*s in target directory %s: a path "
                     "component is longer than %d bytes",
                     (int) len, path, h->root, NAME_MAX);
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy (comp, path + i, j - i);
    comp[j - i] = '\0';

    next = openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next == -1 && errno == ENOENT && create) {
      if (mkdirat (fd, comp, h->dir_mode) == -1 && errno != EEXIST) {
        e = errno;
        if (!quiet && e != ENOENT)
          error_errno (e, "cannot create directory %s/%.*s",
                       h->root, (int) j, path);
        errno = e;
        return -1;
      }
      /* The new entry must survive a crash along with the object. */
      if (h->fsync && fsync (fd) == -1) {
        e = errno;
        if (!quiet)
          error_errno (e, "cannot fsync directory %s/%.*s",
                       h->root, (int) i, path);
        errno = e;
        return -1;
      }
      next = openat (fd, comp,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next == -1) {
      struct stat st;

      e = errno;
      /* O_DIRECTORY wins over O_NOFOLLOW: a link fails with ENOTDIR. */
      if (e == ENOTDIR && fstatat (fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK (st.st_mode))
        e = ELOOP;
      if (quiet || ((e == ENOENT || e == ENOTDIR) && !create))
        ;                       /* the caller decides */
      else if (e == ELOOP)
        error_plain ("%s/%.*s is a symbolic link; the file target does not "
                     "follow links below its directory", h->root, (int) j,
                     path);
      else if (e != ENOENT)     /* a racing remove: the caller retries */
        error_errno (e, "cannot open directory %s/%.*s", h->root, (int) j,
                     path);
      errno = e;
      return -1;
    }
    close (fd);
    fd = next;
    i = j + 1;
  }
  e = fd;
  fd = -1;
  return e;
}

/* The directory part of an object name and its length. */
static size_t
dir_len (const char *name)
{
  const char *slash = strrchr (name, '/');
  return slash ? (size_t) (slash - name) : 0;
}

static const char *
base_name (const char *name)
{
  const char *slash = strrchr (name, '/');
  return slash ? slash + 1 : name;
}

static bool
is_temp_name (const char *s)
{
  size_t len = strlen (s);

  return s[0] == '.' && len >= TEMP_EXTRA + 1 &&
    memcmp (s + len - TEMP_RANDOM - (sizeof TEMP_TAG - 1), TEMP_TAG,
            sizeof TEMP_TAG - 1) == 0;
}

/* Removes the empty directories holding name, deepest first, up to but
 * not including the root.  Best effort: a directory still in use stays.
 */
static void
remove_empty_parents (struct file_target *h, int rootfd, const char *name)
{
  size_t n = dir_len (name);

  while (n > 0) {
    const char *slash = memrchr (name, '/', n);
    size_t start = slash ? (size_t) (slash - name) + 1 : 0;
    char comp[NAME_MAX + 1];
    int fd;

    if (n - start > NAME_MAX)
      return;
    memcpy (comp, name + start, n - start);
    comp[n - start] = '\0';
    fd = walk_dir (h, rootfd, name, start ? start - 1 : 0, WALK_QUIET);
    if (fd == -1)
      return;
    if (unlinkat (fd, comp, AT_REMOVEDIR) == -1) {
      close (fd);
      return;
    }
    close (fd);
    n = start ? start - 1 : 0;
  }
}

/* Overwrites the last TEMP_RANDOM characters of name with random ones. */
static int
randomize_suffix (char *name)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char rnd[TEMP_RANDOM];
  char *p = name + strlen (name) - TEMP_RANDOM;
  size_t i;

  if (getrandom (rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
    return -1;
  for (i = 0; i < TEMP_RANDOM; i++)
    p[i] = chars[rnd[i] % (sizeof chars - 1)];
  return 0;
}

/* ---- test ---- */

static int
file_test (void *handle)
{
  struct file_target *h = handle;
  _cleanup_close_ int rootfd = -1;
  _cleanup_close_ int fd = -1;
  char probe[] = ".test-probe" TEMP_TAG "XXXXXX";
  const char data[] = "virtvault probe\n";
  struct stat st;
  bool ok;
  int e;

  if (stat (h->root, &st) == -1) {
    if (errno == ENOENT)
      error_plain ("target directory %s does not exist; create it or fix "
                   "the URL", h->root);
    else
      error_errno (errno, "cannot reach target directory %s", h->root);
    return -1;
  }
  if (!S_ISDIR (st.st_mode)) {
    error_plain ("target path %s is not a directory; fix the URL", h->root);
    return -1;
  }
  rootfd = open_root (h);
  if (rootfd == -1)
    return -1;

  /* The probe looks like a temporary file, so list() never shows it. */
  if (randomize_suffix (probe) == -1) {
    error_errno (errno, "getrandom");
    return -1;
  }
  fd = openat (rootfd, probe,
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd == -1)
    goto not_writable;
  errno = 0;
  ok = write (fd, data, sizeof data - 1) == (ssize_t) sizeof data - 1 &&
    fsync (fd) == 0;
  e = errno ? errno : EIO;
  if (close (fd) == -1 && ok) {
    ok = false;
    e = errno;
  }
  fd = -1;
  if (unlinkat (rootfd, probe, 0) == -1 && ok) {
    ok = false;
    e = errno;
  }
  if (ok)
    return 0;
  errno = e;

 not_writable:
  if (errno == ENOSPC || errno == EDQUOT)
    error_errno (errno, "no space left on target directory %s", h->root);
  else
    error_errno (errno, "target directory %s is not writable", h->root);
  return -1;
}

/* ---- put ---- */

static void
stream_free (struct file_put *s)
{
  direct_writer_free (s->dw);
  if (s->fd >= 0)
    close (s->fd);
  if (s->dirfd >= 0)
    close (s->dirfd);
  free (s->name);
  free (s);
}

/* Creates the temporary file in s->dirfd; -1 with errno on failure. */
static int
create_temp (struct file_put *s)
{
  int tries;

  for (tries = 0; tries < 100; tries++) {
    snprintf (s->tmp, sizeof s->tmp, ".%s" TEMP_TAG "XXXXXX", s->base);
    if (randomize_suffix (s->tmp) == -1)
      return -1;
    s->fd = openat (s->dirfd, s->tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0640);
    if (s->fd >= 0)
      return 0;
    if (errno != EEXIST)
      return -1;
  }
  return -1;
}

static void *
file_put_begin (void *handle, const char *name)
{
  struct file_target *h = handle;
  _cleanup_close_ int rootfd = -1;
  struct file_put *s;
  struct stat st;
  int attempt;

  if (strlen (base_name (name)) + TEMP_EXTRA > NAME_MAX) {
    error_plain ("cannot store %s in target directory %s: its last "
                 "component is longer than %zu bytes", name, h->root,
                 NAME_MAX - TEMP_EXTRA);
    return NULL;
  }
  rootfd = open_root (h);
  if (rootfd == -1)
    return NULL;
  s = calloc (1, sizeof *s);
  if (s == NULL || (s->name = strdup (name)) == NULL) {
    error_errno (errno, "writing %s", name);
    free (s);
    return NULL;
  }
  s->h = h;
  s->fd = s->dirfd = -1;
  s->base = base_name (s->name);

  /* A concurrent remove() may delete a directory we just walked into
   * because it was empty; walking again recreates it.
   */
  for (attempt = 0; ; attempt++) {
    s->dirfd = walk_dir (h, rootfd, name, dir_len (name), WALK_CREATE);
    if (s->dirfd == -1) {
      if (errno == ENOENT && attempt < CREATE_RETRIES)
        continue;
      if (errno == ENOENT)
        error_errno (errno, "cannot create the directories of %s in target "
                     "directory %s", name, h->root);
      goto fail;
    }
    if (fstatat (s->dirfd, s->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      error_class (EEXIST, "%s already exists in target directory %s; "
                   "objects are never replaced", name, h->root);
      goto fail;
    }
    if (create_temp (s) == 0)
      break;
    if (errno == ENOENT && attempt < CREATE_RETRIES) {
      close (s->dirfd);
      s->dirfd = -1;
      continue;
    }
    if (errno == ENOSPC || errno == EDQUOT)
      error_errno (errno, "no space left on target directory %s while "
                   "creating %s", h->root, name);
    else
      error_errno (errno, "cannot create a temporary file for %s in target "
                   "directory %s", name, h->root);
    goto fail;
  }
  return s;

 fail:
  stream_free (s);
  return NULL;
}

static void file_put_abort (void *stream);

/* With the size known, the space is reserved before the host reads
 * anything from the guest: a full target fails the backup at once, not
 * after copying most of a disk.
 */
static void *
file_put_begin2 (void *handle, const char *name, uint64_t size,
                 uint32_t flags)
{
  struct file_put *s;
  int e;

  if (flags != 0) {
    error_errno (EINVAL, "unknown flags 0x%x writing %s", flags, name);
    return NULL;
  }
  if (size != VIRTVAULT_SIZE_UNKNOWN && size > INT64_MAX) {
    error_errno (EFBIG, "cannot store %s: %llu bytes", name,
                 (unsigned long long) size);
    return NULL;
  }
  s = file_put_begin (handle, name);
  if (s == NULL || size == VIRTVAULT_SIZE_UNKNOWN || size == 0)
    return s;
  /* O_DIRECT for images: an object of at least one buffer, whose size is
   * known.  Manifests, domain XML and block digests are a few KiB and go
   * through the page cache, without a thread and 12 MiB of buffers each.
   * The file system may refuse O_DIRECT: then buffered.
   */
  if (s->h->direct && size >= DIRECT_BUF)
    s->dw = direct_writer_start (s->fd);
  e = posix_fallocate (s->fd, 0, (off_t) size);
  if (e == ENOSPC || e == EDQUOT || e == EFBIG) {
    /* Abort first: it keeps errno but the message must be the last. */
    _cleanup_free_ char *root = strdup (s->h->root);
    file_put_abort (s);
    error_errno (e, "no room in target directory %s for %s (%llu bytes)",
                 root ? root : "", name, (unsigned long long) size);
    return NULL;
  }
  /* Other failures (EOPNOTSUPP on some NFS servers) only lose the early
   * answer: the writes report a full disk as well.
   */
  return s;
}

/* The message of a failed write of s. */
static void
write_failed (struct file_put *s, int errnum)
{
  if (errnum == ENOSPC || errnum == EDQUOT)
    error_errno (errnum, "no space left on target directory %s while "
                 "writing %s", s->h->root, s->name);
  else
    error_errno (errnum, "cannot write %s in target directory %s",
                 s->name, s->h->root);
}

/* Writes all of buf at the end of the temporary file. */
static int
write_all (struct file_put *s, const void *buf, size_t count)
{
  const char *p = buf;

  while (count > 0) {
    ssize_t n = write (s->fd, p, count);

    if (n == -1) {
      int fl;

      if (errno == EINTR)
        continue;
      /* A file system that took O_DIRECT at open but not the write (a
       * larger logical block size): go on through the page cache.
       */
      if (errno == EINVAL && (fl = fcntl (s->fd, F_GETFL)) != -1 &&
          (fl & O_DIRECT) && fcntl (s->fd, F_SETFL, fl & ~O_DIRECT) == 0)
        continue;
      write_failed (s, errno);
      return -1;
    }
    p += n;
    count -= n;
    s->written += n;
  }
  return 0;
}

static int
file_put_write (void *stream, const void *buf, size_t count)
{
  struct file_put *s = stream;

  if (s->dw) {
    if (direct_writer_write (s->dw, buf, count) == -1) {
      write_failed (s, errno);
      return -1;
    }
    return 0;
  }
  if (write_all (s, buf, count) == -1)
    return -1;
  if (s->h->fsync && !s->no_writeback
      && s->written - s->flushed >= WRITEBACK_STEP) {
    /* Only starts writeback, never waits for it, so it leaves write
     * errors to the fsync at commit (waiting here would consume them).
     */
    if (sync_file_range (s->fd, s->flushed, s->written - s->flushed,
                         SYNC_FILE_RANGE_WRITE) == -1)
      s->no_writeback = true;
    s->flushed = s->written;
  }
  return 0;
}

static void
file_put_abort (void *stream)
{
  struct file_put *s = stream;
  int saved_errno = errno;

  if (s->fd >= 0) {
    close (s->fd);
    s->fd = -1;
  }
  unlinkat (s->dirfd, s->tmp, 0);
  /* Leave no empty directories behind either; the root is reopened
   * because dirfd does not lead back to it.
   */
  int rootfd = open (s->h->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd >= 0) {
    remove_empty_parents (s->h, rootfd, s->name);
    close (rootfd);
  }
  stream_free (s);
  errno = saved_errno;
}

static int
file_put_commit (void *stream)
{
  struct file_put *s = stream;
  struct file_target *h = s->h;
  int fd = s->fd;

  if (s->dw && direct_writer_finish (s->dw) == -1) {
    write_failed (s, errno);
    goto fail;
  }
  if (h->fsync && fsync (fd) == -1) {
    error_errno (errno, "cannot fsync %s in target directory %s",
                 s->name, h->root);
    goto fail;
  }
  /* NFS reports some write errors only when the file is closed. */
  s->fd = -1;
  if (close (fd) == -1) {
    error_errno (errno, "cannot write %s in target directory %s",
                 s->name, h->root);
    goto fail;
  }
  /* link() fails with EEXIST rather than replacing the final name. */
  if (linkat (s->dirfd, s->tmp, s->dirfd, s->base, 0) == 0)
    unlinkat (s->dirfd, s->tmp, 0);
  else if (errno == EEXIST)
    goto exists;
  else if (errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK) {
    /* File systems without hard links. */
    if (renameat2 (s->dirfd, s->tmp, s->dirfd, s->base,
                   RENAME_NOREPLACE) == -1) {
      if (errno == EEXIST)
        goto exists;
      error_errno (errno, "cannot publish %s in target directory %s",
                   s->name, h->root);
      goto fail;
    }
  }
  else {
    error_errno (errno, "cannot publish %s in target directory %s",
                 s->name, h->root);
    goto fail;
  }
  if (h->fsync && fsync (s->dirfd) == -1) {
    /* A failed commit publishes nothing, so the caller can retry. */
    error_errno (errno, "cannot fsync the directory of %s in target "
                 "directory %s", s->name, h->root);
    unlinkat (s->dirfd, s->base, 0);
    goto fail;
  }
  stream_free (s);
  return 0;

 exists:
  error_class (EEXIST, "%s already exists in target directory %s; objects "
               "are never replaced", s->name, h->root);
 fail:
  file_put_abort (s);
  return -1;
}

/* ---- get / stat ---- */

#define OBJECT_MISSING (-2)

/* What a directory entry that is not a regular file is, for messages. */
static const char *
file_type (mode_t mode)
{
  if (S_ISDIR (mode))
    return "a directory";
  if (S_ISLNK (mode))
    return "a symbolic link";
  if (S_ISFIFO (mode))
    return "a FIFO";
  if (S_ISCHR (mode))
    return "a character device";
  if (S_ISBLK (mode))
    return "a block device";
  if (S_ISSOCK (mode))
    return "a socket";
  return "not a regular file";
}

/* Opens an existing object: for reading, or (stat_only) as an O_PATH
 * descriptor that only fstat uses.  Returns the fd, -1 after reporting an
 * error, or OBJECT_MISSING (not reported) if there is no such object.  A
 * directory is OBJECT_MISSING too for stat_only (it may be the prefix of
 * objects); any other entry that is not a regular file is an error
 * naming what it is.
 *
 * Whoever writes to the target directory (an NFS export, a shared
 * directory) may plant anything under an object name.  The entry is
 * first opened with O_PATH, which runs no driver's open: opening a
 * planted device node could arm a watchdog or make a tty the daemon's
 * controlling terminal, and a FIFO could block.  Only once it is known to
 * be a regular file is that same inode opened for reading, through
 * /proc/self/fd, so the entry can not be swapped in between.
 */
static int
open_object (struct file_target *h, const char *name, struct stat *st,
             bool stat_only)
{
  _cleanup_close_ int rootfd = -1;
  _cleanup_close_ int dirfd = -1;
  _cleanup_close_ int pathfd = -1;
  char proc[64];
  int fd, e;

  rootfd = open_root (h);
  if (rootfd == -1)
    return -1;
  dirfd = walk_dir (h, rootfd, name, dir_len (name), 0);
  if (dirfd == -1)
    return errno == ENOENT || errno == ENOTDIR ? OBJECT_MISSING : -1;
  pathfd = openat (dirfd, base_name (name),
                   O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (pathfd == -1) {
    e = errno;
    if (e == ENOENT || e == ENOTDIR)
      return OBJECT_MISSING;
    error_errno (e, "cannot open %s in target directory %s", name, h->root);
    return -1;
  }
  if (fstat (pathfd, st) == -1) {
    error_errno (errno, "cannot stat %s in target directory %s", name,
                 h->root);
    return -1;
  }
  if (S_ISLNK (st->st_mode)) {
    error_plain ("%s/%s is a symbolic link; the file target does not "
                 "follow links below its directory", h->root, name);
    return -1;
  }
  /* Directories, devices and the like are not objects. */
  if (!S_ISREG (st->st_mode)) {
    if (stat_only && S_ISDIR (st->st_mode))
      return OBJECT_MISSING;
    error_plain ("%s in target directory %s is %s, not an object; "
                 "refusing to read it (someone else writes to this "
                 "directory?)", name, h->root, file_type (st->st_mode));
    return -1;
  }
  if (stat_only) {
    fd = pathfd;
    pathfd = -1;
    return fd;
  }
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", pathfd);
  fd = open (proc, O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (fd == -1) {
    e = errno;
    if (e == ENOENT)
      error_plain ("cannot open %s in target directory %s: %s is missing "
                   "(is /proc mounted?)", name, h->root, proc);
    else
      error_errno (e, "cannot open %s in target directory %s", name,
                   h->root);
    return -1;
  }
  return fd;
}

static int64_t
file_get (void *handle, const char *name, void *buf, size_t count,
          uint64_t offset)
{
  struct file_target *h = handle;
  _cleanup_close_ int fd = -1;
  char *p = buf;
  size_t done = 0;
  struct stat st;

  if (offset > INT64_MAX) {
    error_plain ("offset %llu is out of range reading %s",
                 (unsigned long long) offset, name);
    return -1;
  }
  if (count > SSIZE_MAX)
    count = SSIZE_MAX;
  fd = open_object (h, name, &st, false);
  if (fd == OBJECT_MISSING) {
    error_plain ("%s does not exist in target directory %s", name, h->root);
    fd = -1;
  }
  if (fd == -1)
    return -1;
  while (done < count) {
    ssize_t n = pread (fd, p + done, count - done, offset + done);

    if (n == -1) {
      if (errno == EINTR)
        continue;
      error_errno (errno, "cannot read %s in target directory %s", name,
                   h->root);
      return -1;
    }
    if (n == 0)
      break;
    done += n;
  }
  return done;
}

static int
file_open_local (void *handle, const char *name)
{
  struct file_target *h = handle;
  struct stat st;
  int fd;

  fd = open_object (h, name, &st, false);
  if (fd == OBJECT_MISSING)
    error_plain ("%s does not exist in target directory %s", name, h->root);
  return fd < 0 ? -1 : fd;
}

/* A read handle is the object's descriptor: pread on it is safe from
 * several threads at once.
 */
struct file_reader {
  int fd;
};

static void *
file_read_open (void *handle, const char *name, uint64_t *ret_size,
                uint32_t flags)
{
  struct file_target *h = handle;
  struct file_reader *r;
  struct stat st;
  int fd;

  if (flags != 0) {
    error_errno (EINVAL, "unknown flags 0x%x reading %s", flags, name);
    return NULL;
  }
  fd = open_object (h, name, &st, false);
  if (fd == OBJECT_MISSING) {
    error_errno (ENOENT, "cannot read %s in target directory %s", name,
                 h->root);
    return NULL;
  }
  if (fd == -1)
    return NULL;
  r = malloc (sizeof *r);
  if (r == NULL) {
    error_errno (errno, "reading %s", name);
    close (fd);
    return NULL;
  }
  r->fd = fd;
  *ret_size = st.st_size;
  return r;
}

static int64_t
file_pread (void *read_handle, void *buf, size_t count, uint64_t offset,
            uint32_t flags)
{
  struct file_reader *r = read_handle;
  size_t done = 0;

  if (flags != 0 || offset > INT64_MAX) {
    error_errno (EINVAL, "bad read request (flags 0x%x, offset %llu)",
                 flags, (unsigned long long) offset);
    return -1;
  }
  if (count > SSIZE_MAX)
    count = SSIZE_MAX;
  while (done < count) {
    ssize_t n = pread (r->fd, (char *) buf + done, count - done,
                       offset + done);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      error_errno (errno, "cannot read at offset %llu",
                   (unsigned long long) (offset + done));
      return -1;
    }
    if (n == 0)
      break;
    done += n;
  }
  return done;
}

static void
file_read_close (void *read_handle)
{
  struct file_reader *r = read_handle;

  close (r->fd);
  free (r);
}

static int
file_capabilities (void *handle, struct virtvault_caps *caps, uint32_t flags)
{
  struct file_target *h = handle;

  if (flags != 0) {
    error_errno (EINVAL, "unknown capability flags 0x%x", flags);
    return -1;
  }
  caps->flags = VIRTVAULT_CAP_ATOMIC_PUBLISH | VIRTVAULT_CAP_CONSISTENT_LIST
    | VIRTVAULT_CAP_LOCAL_FILES
    | (h->fsync ? VIRTVAULT_CAP_DURABLE_COMMIT : 0);
  caps->io_size = FILE_IO_SIZE;
  caps->io_align = 4096;
  caps->max_parallel_reads = FILE_PARALLEL_READS;
  caps->max_object_size = 0;
  return 0;
}

static int
file_stat (void *handle, const char *name, uint64_t *ret_size)
{
  struct file_target *h = handle;
  _cleanup_close_ int fd = -1;
  struct stat st;

  fd = open_object (h, name, &st, true);
  if (fd == OBJECT_MISSING) {
    fd = -1;
    return 0;
  }
  if (fd == -1)
    return -1;
  *ret_size = st.st_size;
  return 1;
}

/* ---- list ---- */

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* True if a name starting with "full" (len bytes) can start with prefix
 * or be below it.
 */
static bool
may_match (const char *full, size_t len, const char *prefix, size_t plen)
{
  return strncmp (full, prefix, len < plen ? len : plen) == 0;
}

/* Calls cb, in name order, for every object below dirfd whose name
 * starts with prefix; rel is dirfd's own name relative to the root ("" or
 * ending in '/').  Takes ownership of dirfd.
 */
static int
list_dir (struct file_target *h, int dirfd, const char *rel,
          const char *prefix, bool temps, virtvault_list_cb cb, void *opaque)
{
  const size_t rlen = strlen (rel), plen = strlen (prefix);
  char **names = NULL;
  size_t n = 0, alloc = 0, i;
  struct dirent *d;
  DIR *dir;
  int r = -1;

  dir = fdopendir (dirfd);
  if (dir == NULL) {
    error_errno (errno, "cannot list %s/%s", h->root, rel);
    close (dirfd);
    return -1;
  }
  /* Read the whole directory before calling back or descending: entries
   * come out sorted, and open descriptors do not pile up with the depth.
   */
  for (;;) {
    errno = 0;
    d = readdir (dir);
    if (d == NULL)
      break;
    if (strcmp (d->d_name, ".") == 0 || strcmp (d->d_name, "..") == 0 ||
        (!temps && is_temp_name (d->d_name)))
      continue;
    if (n + 1 >= alloc) {
      size_t na = alloc ? alloc * 2 : 32;
      char **nn = realloc (names, na * sizeof *nn);
      if (nn == NULL)
        goto oom;
      names = nn;
      alloc = na;
    }
    if ((names[n] = strdup (d->d_name)) == NULL)
      goto oom;
    n++;
  }
  if (errno) {
    error_errno (errno, "cannot list %s/%s", h->root, rel);
    goto out;
  }
  if (n > 1)
    qsort (names, n, sizeof *names, compare_names);

  for (i = 0; i < n; i++) {
    char full[VIRTVAULT_PLUGIN_NAME_MAX + 2];
    size_t len = rlen + strlen (names[i]);
    struct stat st;
    int sub;

    /* Longer names can not be objects; this also bounds the depth. */
    if (len > VIRTVAULT_PLUGIN_NAME_MAX)
      continue;
    memcpy (full, rel, rlen);
    memcpy (full + rlen, names[i], len - rlen + 1);
    if (!may_match (full, len, prefix, plen))
      continue;
    if (fstatat (dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == -1) {
      if (errno == ENOENT)      /* removed while we list */
        continue;
      error_errno (errno, "cannot stat %s/%s", h->root, full);
      goto out;
    }
    if (S_ISREG (st.st_mode)) {
      /* temps: list only what interrupted puts left, for remove_partial. */
      if (temps != is_temp_name (names[i]))
        continue;
      if (len >= plen && cb (opaque, full, st.st_size) == -1)
        goto out;
    }
    else if (S_ISDIR (st.st_mode)) {
      /* Dot-directories hold the target's own probes (.virtvault-test). */
      if (names[i][0] == '.')
        continue;
      full[len++] = '/';
      full[len] = '\0';
      if (len > VIRTVAULT_PLUGIN_NAME_MAX || !may_match (full, len, prefix, plen))
        continue;
      sub = openat (dirfd, names[i],
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub == -1) {
        if (errno == ENOENT)
          continue;
        error_errno (errno, "cannot list %s/%s", h->root, full);
        goto out;
      }
      if (list_dir (h, sub, full, prefix, temps, cb, opaque) == -1)
        goto out;
    }
    /* Links, sockets and devices are not objects. */
  }
  r = 0;
  goto out;

 oom:
  error_errno (ENOMEM, "listing %s/%s", h->root, rel);
 out:
  for (i = 0; i < n; i++)
    free (names[i]);
  free (names);
  closedir (dir);
  return r;
}

static int
list_objects (void *handle, const char *prefix, bool temps,
              virtvault_list_cb cb, void *opaque)
{
  struct file_target *h = handle;
  _cleanup_close_ int rootfd = -1;
  _cleanup_free_ char *rel = NULL;
  size_t dlen;
  int fd;

  rootfd = open_root (h);
  if (rootfd == -1)
    return -1;
  /* Start in the prefix's directory ("a/b" of "a/b/c"), named explicitly
   * even if it is a dot-directory.
   */
  dlen = dir_len (prefix);
  fd = walk_dir (h, rootfd, prefix, dlen, 0);
  if (fd == -1)
    return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
  rel = strndup (prefix, dlen ? dlen + 1 : 0);
  if (rel == NULL) {
    close (fd);
    error_errno (errno, "listing %s", h->root);
    return -1;
  }
  return list_dir (h, fd, rel, prefix, temps, cb, opaque);
}

static int
file_list (void *handle, const char *prefix, virtvault_list_cb cb,
           void *opaque)
{
  return list_objects (handle, prefix, false, cb, opaque);
}

/* ---- remove ---- */

static int
file_remove (void *handle, const char *name)
{
  struct file_target *h = handle;
  _cleanup_close_ int rootfd = -1;
  _cleanup_close_ int dirfd = -1;

  rootfd = open_root (h);
  if (rootfd == -1)
    return -1;
  dirfd = walk_dir (h, rootfd, name, dir_len (name), 0);
  if (dirfd == -1)
    return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
  if (unlinkat (dirfd, base_name (name), 0) == -1 && errno != ENOENT) {
    if (errno == EISDIR)
      error_plain ("%s in target directory %s is a directory, not an "
                   "object", name, h->root);
    else
      error_errno (errno, "cannot remove %s in target directory %s", name,
                   h->root);
    return -1;
  }
  remove_empty_parents (h, rootfd, name);
  return 0;
}

/* ---- remove_partial ---- */

struct temp_names {
  char **names;
  size_t n;
};

static int
collect_temp (void *opaque, const char *name, uint64_t size)
{
  struct temp_names *t = opaque;
  char **nn = realloc (t->names, (t->n + 1) * sizeof *nn);

  if (nn == NULL || (nn[t->n] = strdup (name)) == NULL) {
    if (nn)
      t->names = nn;
    error_errno (ENOMEM, "listing temporary files");
    return -1;
  }
  t->names = nn;
  t->n++;
  return 0;
}

/* Temporary files of puts that never reached commit or abort (the daemon
 * was killed) are invisible to list; recovery removes them here.
 */
static int
file_remove_partial (void *handle, const char *prefix)
{
  struct temp_names t = { NULL, 0 };
  size_t i;
  int r;

  r = list_objects (handle, prefix, true, collect_temp, &t);
  for (i = 0; i < t.n; i++) {
    if (r == 0 && file_remove (handle, t.names[i]) == -1)
      r = -1;
    free (t.names[i]);
  }
  free (t.names);
  return r;
}

static struct virtvault_plugin plugin = {
  .name = "file",
  .version = PACKAGE_VERSION,
  .description = "a local directory or a mounted NFS export (file:///path)",
  .config_help = FILE_CONFIG_HELP,
  .open = file_open,
  .close = file_close,
  .test = file_test,
  .put_begin = file_put_begin,
  .put_write = file_put_write,
  .put_commit = file_put_commit,
  .put_abort = file_put_abort,
  .get = file_get,
  .stat = file_stat,
  .list = file_list,
  .remove = file_remove,
  .remove_partial = file_remove_partial,
  .open_local = file_open_local,
  .capabilities = file_capabilities,
  .put_begin2 = file_put_begin2,
  .read_open = file_read_open,
  .pread = file_pread,
  .read_close = file_read_close,
};

VIRTVAULT_REGISTER_PLUGIN (plugin)
