/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See sftp-util.h. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sftp-util.h"

void
vv_err_set (struct vv_err *e, int code, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (e->msg, sizeof e->msg, fmt, ap);
  va_end (ap);
  e->code = code;
}

void
vv_err_report (const struct vv_err *e)
{
  errno = e->code ? e->code : EIO;
  virtvault_error ("%s", e->msg[0] ? e->msg : "unknown error");
  errno = e->code ? e->code : EIO;
}

bool
vv_err_transient (int code)
{
  return code == EAGAIN || code == ETIMEDOUT || code == ECONNRESET ||
    code == ECONNREFUSED || code == EHOSTUNREACH;
}

int
vv_read_private_file (const char *path, const char *what, size_t max,
                      char **ret, struct vv_err *e)
{
  struct stat st;
  char *buf;
  size_t len = 0;
  ssize_t n;
  int fd;

  fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd == -1) {
    int err = errno;
    vv_err_set (e, err == ELOOP ? EACCES : err,
                err == ELOOP ? "%s %s is a symbolic link; give the path of "
                "the file itself" : "cannot open %s %s: %s",
                what, path, strerror (err));
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    vv_err_set (e, errno, "cannot stat %s %s: %s", what, path,
                strerror (errno));
    goto fail;
  }
  if (!S_ISREG (st.st_mode)) {
    vv_err_set (e, EINVAL, "%s %s is not a regular file", what, path);
    goto fail;
  }
  if (st.st_uid != 0 || (st.st_mode & 077) != 0) {
    vv_err_set (e, EACCES, "%s %s must be owned by root and readable only "
                "by it (owner uid %u, mode %04o); run chown root: %s && "
                "chmod 600 %s", what, path, (unsigned) st.st_uid,
                (unsigned) (st.st_mode & 07777), path, path);
    goto fail;
  }
  if ((uint64_t) st.st_size > max) {
    vv_err_set (e, EINVAL, "%s %s is larger than %zu bytes", what, path,
                max);
    goto fail;
  }
  buf = malloc (max + 1);
  if (buf == NULL) {
    vv_err_set (e, ENOMEM, "reading %s %s: out of memory", what, path);
    goto fail;
  }
  while (len < max && (n = read (fd, buf + len, max - len)) != 0) {
    if (n == -1) {
      if (errno == EINTR)
        continue;
      vv_err_set (e, errno, "cannot read %s %s: %s", what, path,
                  strerror (errno));
      free (buf);
      goto fail;
    }
    len += n;
  }
  buf[len] = '\0';
  close (fd);
  *ret = buf;
  return 0;

 fail:
  close (fd);
  return -1;
}

int
vv_backoff (const struct virtvault_host *host, unsigned attempt,
            struct vv_err *e)
{
  long ms = 250L << (attempt < 5 ? attempt : 5);
  struct timespec step = { 0, 50 * 1000 * 1000 };

  for (; ms > 0; ms -= 50) {
    if (host && host->cancelled && host->cancelled ()) {
      vv_err_set (e, ECANCELED, "cancelled while waiting to retry");
      return -1;
    }
    nanosleep (&step, NULL);
  }
  return 0;
}

bool
vv_valid_entry_name (const char *s)
{
  size_t len = strlen (s), i;

  if (len == 0 || len > 255 || strcmp (s, ".") == 0 || strcmp (s, "..") == 0)
    return false;
  for (i = 0; i < len; i++) {
    unsigned char c = s[i];
    if (c == '/' || c < 0x20 || c == 0x7f)
      return false;
  }
  return true;
}

bool
vv_valid_object_name (const char *s)
{
  size_t len = strlen (s);
  const char *p = s;

  if (len == 0 || len > VIRTVAULT_PLUGIN_NAME_MAX || s[0] == '/')
    return false;
  while (*p) {
    const char *slash = strchr (p, '/');
    size_t n = slash ? (size_t) (slash - p) : strlen (p);
    if (n == 0 || (n == 1 && p[0] == '.') ||
        (n == 2 && p[0] == '.' && p[1] == '.'))
      return false;
    for (size_t i = 0; i < n; i++)
      if ((unsigned char) p[i] < 0x20 || p[i] == 0x7f)
        return false;
    if (!slash)
      break;
    p = slash + 1;
    if (*p == '\0')
      return false;
  }
  return true;
}
