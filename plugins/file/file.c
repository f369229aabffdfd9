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
 * reads or writes outside it.
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

#define FILE_CONFIG_HELP                                                \
  "fsync=true|false   fsync files and directories before publishing "  \
  "(default true)\n"                                                    \
  "dir_mode=OCTAL     mode of the directories it creates, before the "  \
  "umask (default 0750)\n"

#define TEMP_TAG ".part-"
#define TEMP_RANDOM 6
/* ".<base>.part-XXXXXX" adds this much to a base name. */
#define TEMP_EXTRA (1 + sizeof TEMP_TAG - 1 + TEMP_RANDOM)
/* A writer racing a remover that deletes an empty parent directory
 * retries the walk this often.
 */
#define CREATE_RETRIES 5

struct file_handle {
  char *root;               /* absolute, no trailing '/' unless "/" */
  bool fsync;
  mode_t dir_mode;
};

struct file_stream {
  struct file_handle *h;
  char *name;               /* object name, for messages */
  int dirfd;                /* the object's directory */
  int fd;                   /* the temporary file */
  char *base;               /* final name inside dirfd */
  char tmp[NAME_MAX + 1];   /* temporary name inside dirfd */
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

static void __attribute__ ((format (printf, 1, 2)))
error_plain (const char *fmt, ...)
{
  char msg[1536];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  errno = 0;
  virtvault_error ("%s", msg);
}

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
parse_params (struct file_handle *h, const char *const *params)
{
  bool seen_fsync = false, seen_mode = false;
  size_t i;

  for (i = 0; params[i]; i++) {
    const char *p = params[i];
    const char *eq = strchr (p, '=');
    size_t klen = eq ? (size_t) (eq - p) : strlen (p);
    const char *v = eq ? eq + 1 : "";

    if (klen == 5 && strncmp (p, "fsync", 5) == 0) {
      if (seen_fsync || parse_bool ("fsync", v, &h->fsync) == -1)
        goto twice_or_bad;
      seen_fsync = true;
    }
    else if (klen == 8 && strncmp (p, "dir_mode", 8) == 0) {
      char *end;
      unsigned long m;

      if (seen_mode)
        goto twice_or_bad;
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
                   "fsync=true|false, dir_mode=OCTAL", (int) klen, p);
      return -1;
    }
    continue;

  twice_or_bad:
    if ((klen == 5 && seen_fsync) || (klen == 8 && seen_mode))
      error_plain ("file target parameter '%.*s' given twice", (int) klen, p);
    return -1;
  }
  return 0;
}

static void *
file_open (const char *url, const char *const *params)
{
  _cleanup_free_ struct file_handle *h = NULL;
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
  h->dir_mode = 0750;
  if (parse_params (h, params) == -1) {
    free (h->root);
    return NULL;
  }
  /* The directory is not touched here: test() says what is wrong with it. */
  struct file_handle *ret = h;
  h = NULL;
  return ret;
}

static void
file_close (void *handle)
{
  struct file_handle *h = handle;

  free (h->root);
  free (h);
}

/* ---- walking paths below the root without following links ---- */

static int
open_root (struct file_handle *h)
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

/* Opens directory "path[0..len)" below rootfd one component at a time.
 * With create, missing directories are made (and their parents fsynced).
 * Returns an fd, or -1: with errno ENOENT/ENOTDIR and no message when
 * !create and the directory does not exist, else with a message.
 */
static int
walk_dir (struct file_handle *h, int rootfd, const char *path, size_t len,
          bool create)
{
  _cleanup_close_ int fd = -1;
  size_t i = 0;

  fd = dup (rootfd);
  if (fd == -1) {
    error_errno (errno, "dup");
    return -1;
  }
  fcntl (fd, F_SETFD, FD_CLOEXEC);
  while (i < len) {
    size_t j = i;
    char comp[NAME_MAX + 1];
    int next;

    while (j < len && path[j] != '/')
      j++;
    if (j - i > NAME_MAX) {
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
        error_errno (errno, "cannot create directory %s/%.*s",
                     h->root, (int) j, path);
        return -1;
      }
      /* The new entry must survive a crash along with the object. */
      if (h->fsync && fsync (fd) == -1) {
        error_errno (errno, "cannot fsync directory %s/%.*s",
                     h->root, (int) i, path);
        return -1;
      }
      next = openat (fd, comp,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next == -1) {
      int e = errno;
      if (e == ELOOP)
        error_plain ("%s/%.*s is a symbolic link; the file target does not "
                     "follow links below its directory", h->root, (int) j,
                     path);
      else if ((e == ENOENT || e == ENOTDIR) && !create)
        ;                       /* the caller decides */
      else
        error_errno (e, "cannot open directory %s/%.*s", h->root, (int) j,
                     path);
      errno = e;
      return -1;
    }
    close (fd);
    fd = next;
    i = j + 1;
  }
  next_fd:
  {
    int ret = fd;
    fd = -1;
    return ret;
  }
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
remove_empty_parents (struct file_handle *h, int rootfd, const char *name)
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
    fd = walk_dir (h, rootfd, name, start ? start - 1 : 0, false);
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

/* ---- test ---- */

static int
file_test (void *handle)
{
  struct file_handle *h = handle;
  _cleanup_close_ int rootfd = -1;
  _cleanup_close_ int fd = -1;
  char probe[] = ".test-probe" TEMP_TAG "XXXXXX";
  const char data[] = "virtvault probe\n";
  struct stat st;
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

  unsigned char rnd[TEMP_RANDOM];
  if (getrandom (rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd) {
    error_errno (errno, "getrandom");
    return -1;
  }
  for (size_t i = 0; i < TEMP_RANDOM; i++)
    probe[sizeof probe - 1 - TEMP_RANDOM + i] =
      "abcdefghijklmnopqrstuvwxyz0123456789"[rnd[i] % 36];

  fd = openat (rootfd, probe,
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd == -1)
    goto not_writable;
  if (write (fd, data, sizeof data - 1) != (ssize_t) sizeof data - 1 ||
      fsync (fd) == -1 || close (fd) == -1) {
    e = errno ? errno : EIO;
    fd = -1;
    unlinkat (rootfd, probe, 0);
    errno = e;
    goto not_writable;
  }
  fd = -1;
  if (unlinkat (rootfd, probe, 0) == -1)
    goto not_writable;
  return 0;

 not_writable:
  if (errno == ENOSPC || errno == EDQUOT)
    error_errno (errno, "no space left on target directory %s", h->root);
  else
    error_errno (errno, "target directory %s is not writable", h->root);
  return -1;
}

/* ---- put ---- */

static void
stream_free (struct file_stream *s)
{
  if (s->fd >= 0)
    close (s->fd);
  if (s->dirfd >= 0)
    close (s->dirfd);
  free (s->name);
  free (s);
}

/* Creates the temporary file in s->dirfd; -1 with errno on failure. */
static int
create_temp (struct file_stream *s)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  int tries;

  for (tries = 0; tries < 100; tries++) {
    unsigned char rnd[TEMP_RANDOM];
    size_t n, i;

    if (getrandom (rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
      return -1;
    n = (size_t) snprintf (s->tmp, sizeof s->tmp, ".%s" TEMP_TAG, s->base);
    for (i = 0; i < TEMP_RANDOM; i++)
      s->tmp[n + i] = chars[rnd[i] % (sizeof chars - 1)];
    s->tmp[n + i] = '\0';
    s->fd = openat (s->dirfd, s->tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0640);
    if (s->fd >= 0 || errno != EEXIST)
      return s->fd >= 0 ? 0 : -1;
  }
  return -1;
}

static void *
file_put_begin (void *handle, const char *name)
{
  struct file_handle *h = handle;
  _cleanup_close_ int rootfd = -1;
  struct file_stream *s;
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
  s->base = (char *) base_name (s->name);

  /* A concurrent remove() may delete a directory we just walked into
   * because it was empty; walking again recreates it.
   */
  for (attempt = 0; ; attempt++) {
    s->dirfd = walk_dir (h, rootfd, name, dir_len (name), true);
    if (s->dirfd == -1) {
      if (errno == ENOENT && attempt < CREATE_RETRIES)
        continue;
      goto fail;
    }
    if (fstatat (s->dirfd, s->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      error_plain ("%s already exists in target directory %s; objects are "
                   "never replaced", name, h->root);
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

static int
file_put_write (void *stream, const void *buf, size_t count)
{
  struct file_stream *s = stream;
  const char *p = buf;

  while (count > 0) {
    ssize_t n = write (s->fd, p, count);

    if (n == -1) {
      if (errno == EINTR)
        continue;
      if (errno == ENOSPC || errno == EDQUOT)
        error_errno (errno, "no space left on target directory %s while "
                     "writing %s", s->h->root, s->name);
      else
        error_errno (errno, "cannot write %s in target directory %s",
                     s->name, s->h->root);
      return -1;
    }
    p += n;
    count -= n;
  }
  return 0;
}

static void
file_put_abort (void *stream)
{
  struct file_stream *s = stream;
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
  struct file_stream *s = stream;
  struct file_handle *h = s->h;
  int fd = s->fd;

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
    /* Published but maybe not durable: report it, keep the object. */
    error_errno (errno, "cannot fsync the directory of %s in target "
                 "directory %s", s->name, h->root);
    stream_free (s);
    return -1;
  }
  stream_free (s);
  return 0;

 exists:
  error_plain ("%s already exists in target directory %s; objects are "
               "never replaced", s->name, h->root);
 fail:
  file_put_abort (s);
  return -1;
}

/* ---- get / stat ---- */

/* Opens an existing object for reading; -1 with errno ENOENT (and no
 * message) if it does not exist.
 */
static int
open_object (struct file_handle *h, const char *name)
{
  _cleanup_close_ int rootfd = -1;
  _cleanup_close_ int dirfd = -1;
  int fd;

  rootfd = open_root (h);
  if (rootfd == -1)
    return -1;
  dirfd = walk_dir (h, rootfd, name, dir_len (name), false);
  if (dirfd == -1) {
    if (errno == ENOTDIR)
      errno = ENOENT;
    return -1;
  }
  fd = openat (dirfd, base_name (name), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd == -1) {
    int e = errno;
    if (e == ELOOP)
      error_plain ("%s/%s is a symbolic link; the file target does not "
                   "follow links below its directory", h->root, name);
    else if (e != ENOENT)
      error_errno (e, "cannot open %s in target directory %s", name, h->root);
    errno = e;
  }
  return fd;
}

static int64_t
file_get (void *handle, const char *name, void *buf, size_t count,
          uint64_t offset)
{
  struct file_handle *h = handle;
  _cleanup_close_ int fd = -1;
  char *p = buf;
  size_t done = 0;

  if (offset > INT64_MAX) {
    error_plain ("offset %llu is out of range reading %s",
                 (unsigned long long) offset, name);
    return -1;
  }
  if (count > SSIZE_MAX)
    count = SSIZE_MAX;
  fd = open_object (h, name);
  if (fd == -1) {
    if (errno == ENOENT)
      error_plain ("%s does not exist in target directory %s", name,
                   h->root);
    return -1;
  }
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
file_stat (void *handle, const char *name, uint64_t *ret_size)
{
  struct file_handle *h = handle;
  _cleanup_close_ int fd = -1;
  struct stat st;

  fd = open_object (h, name);
  if (fd == -1)
    return errno == ENOENT ? 0 : -1;
  if (fstat (fd, &st) == -1) {
    error_errno (errno, "cannot stat %s in target directory %s", name,
                 h->root);
    return -1;
  }
  if (!S_ISREG (st.st_mode))
    return 0;
  *ret_size = st.st_size;
  return 1;
}

/* ---- list ---- */

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Calls cb for the files below dirfd (whose relative name is rel, "" or
 * ending in '/') in name order, recursing into subdirectories.  Takes
 * ownership of dirfd.
 */
static int
list_dir (struct file_handle *h, int dirfd, const char *rel,
          const char *prefix, virtvault_list_cb cb, void *opaque)
{
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
  /* Read the whole directory first so it is closed before recursing:
   * the number of open descriptors does not grow with the depth.
   */
  errno = 0;
  while ((d = readdir (dir)) != NULL) {
    if (strcmp (d->d_name, ".") == 0 || strcmp (d->d_name, "..") == 0)
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
    errno = 0;
  }
  if (errno) {
    error_errno (errno, "cannot list %s/%s", h->root, rel);
    goto out;
  }
  if (n > 1)
    qsort (names, n, sizeof *names, compare_names);

  for (i = 0; i < n; i++) {
    _cleanup_free_ char *full = NULL;
    struct stat st;
    int sub;

    if (is_temp_name (names[i]))
      continue;
    if (fstatat (dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == -1) {
      if (errno == ENOENT)      /* removed while we list */
        continue;
      error_errno (errno, "cannot stat %s/%s%s", h->root, rel, names[i]);
      goto out;
    }
    if (asprintf (&full, "%s%s%s", rel, names[i],
                  S_ISDIR (st.st_mode) ? "/" : "") == -1) {
      full = NULL;
      goto oom;
    }
    /* Longer names can not be objects, and this bounds the depth. */
    if (strlen (full) > VIRTVAULT_PLUGIN_NAME_MAX)
      continue;
    /* Only what can match the prefix: "a/" when prefix is "a/b/". */
    if (strncmp (full, prefix, strlen (full) < strlen (prefix)
                 ? strlen (full) : strlen (prefix)) != 0)
      continue;
    if (S_ISREG (st.st_mode)) {
      if (strlen (full) >= strlen (prefix) &&
          cb (opaque, full, st.st_size) == -1)
        goto out;
    }
    else if (S_ISDIR (st.st_mode)) {
      /* Dot-directories hold the target's own probes and similar. */
      if (names[i][0] == '.' && strlen (full) > strlen (prefix))
        continue;
      sub = openat (dirfd, names[i],
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub == -1) {
        if (errno == ENOENT)
          continue;
        error_errno (errno, "cannot list %s/%s", h->root, full);
        goto out;
      }
      if (list_dir (h, sub, full, prefix, cb, opaque) == -1)
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
file_list (void *handle, const char *prefix, virtvault_list_cb cb,
           void *opaque)
{
  struct file_handle *h = handle;
  _cleanup_close_ int rootfd = -1;
  int fd;

  rootfd = open_root (h);
  if (rootfd == -1)
    return -1;
  fd = dup (rootfd);
  if (fd == -1) {
    error_errno (errno, "dup");
    return -1;
  }
  fcntl (fd, F_SETFD, FD_CLOEXEC);
  return list_dir (h, fd, "", prefix, cb, opaque);
}

/* ---- remove ---- */

static int
file_remove (void *handle, const char *name)
{
  struct file_handle *h = handle;
  _cleanup_close_ int rootfd = -1;
  _cleanup_close_ int dirfd = -1;

  rootfd = open_root (h);
  if (rootfd == -1)
    return -1;
  dirfd = walk_dir (h, rootfd, name, dir_len (name), false);
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
};

VIRTVAULT_REGISTER_PLUGIN (plugin)
