/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See plugin-file.h. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin-file.h"

void
plugin_free_private (char *s, size_t len)
{
  if (s) {
    explicit_bzero (s, len);
    free (s);
  }
}

void
plugin_free_secret (char *s)
{
  if (s)
    plugin_free_private (s, strlen (s));
}

int
plugin_read_private_file (const char *path, const char *what, size_t max,
                          char **ret, size_t *ret_len, struct plugin_err *e)
{
  struct stat st;
  char *buf = NULL;
  size_t len = 0;
  ssize_t n;
  int fd;

  /* O_NONBLOCK: a FIFO planted at path must not hang the open. */
  fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd == -1) {
    int err = errno;
    if (err == ELOOP)
      plugin_err_set (e, EACCES, "%s %s is a symbolic link; give the path "
                      "of the file itself", what, path);
    else
      plugin_err_set (e, err, "cannot open %s %s: %s", what, path,
                      strerror (err));
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    plugin_err_set (e, errno, "cannot stat %s %s: %s", what, path,
                    strerror (errno));
    goto fail;
  }
  if (!S_ISREG (st.st_mode)) {
    plugin_err_set (e, EINVAL, "%s %s is not a regular file", what, path);
    goto fail;
  }
  if (st.st_uid != 0 || (st.st_mode & 077) != 0) {
    plugin_err_set (e, EACCES, "%s %s must be owned by root and readable "
                    "only by it (owner uid %u, mode %04o); run chown root: "
                    "%s && chmod 600 %s", what, path, (unsigned) st.st_uid,
                    (unsigned) (st.st_mode & 07777), path, path);
    goto fail;
  }
  if ((uint64_t) st.st_size > max) {
    plugin_err_set (e, EINVAL, "%s %s is larger than %zu bytes", what, path,
                    max);
    goto fail;
  }
  buf = malloc (max + 1);
  if (buf == NULL) {
    plugin_err_set (e, ENOMEM, "reading %s %s: out of memory", what, path);
    goto fail;
  }
  /* Bounded by max even if the file grows after fstat. */
  while (len < max && (n = read (fd, buf + len, max - len)) != 0) {
    if (n == -1) {
      if (errno == EINTR)
        continue;
      plugin_err_set (e, errno, "cannot read %s %s: %s", what, path,
                      strerror (errno));
      goto fail;
    }
    len += n;
  }
  buf[len] = '\0';
  close (fd);
  *ret = buf;
  if (ret_len)
    *ret_len = len;
  return 0;

 fail:
  plugin_free_private (buf, len);
  close (fd);
  return -1;
}
