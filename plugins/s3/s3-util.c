/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Generic helpers of the S3 plugin (see s3-util.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <virtvault-plugin.h>

#include "s3-util.h"

/* Longest credentials file read. */
#define CRED_FILE_MAX 65536

void
s3_err_set (struct s3_err *e, int errnum, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (e->msg, sizeof e->msg, fmt, ap);
  va_end (ap);
  e->errnum = errnum;
}

void
s3_err_report (const struct s3_err *e)
{
  errno = e->errnum ? e->errnum : EIO;
  virtvault_error ("%s", e->msg);
}

int
s3_pct_encode (char *out, size_t outsz, const char *s, size_t len,
               bool keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t o = strlen (out), i;

  for (i = 0; i < len; i++) {
    unsigned char c = s[i];
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
      c == '~' || (c == '/' && keep_slash);

    if (o + (plain ? 1 : 3) >= outsz) {
      out[o] = '\0';
      return -1;
    }
    if (plain)
      out[o++] = c;
    else {
      out[o++] = '%';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o] = '\0';
  return 0;
}

bool
s3_valid_name (const char *name, size_t len)
{
  size_t i, start = 0;

  if (len == 0 || len > VIRTVAULT_PLUGIN_NAME_MAX)
    return false;
  for (i = 0; i <= len; i++) {
    if (i < len && ((unsigned char) name[i] < 0x20 || name[i] == 0x7f))
      return false;
    if (i == len || name[i] == '/') {
      size_t clen = i - start;

      if (clen == 0 || (clen == 1 && name[start] == '.') ||
          (clen == 2 && name[start] == '.' && name[start + 1] == '.'))
        return false;
      start = i + 1;
    }
  }
  return true;
}

uint64_t
s3_choose_part_size (uint64_t size, uint64_t preferred)
{
  uint64_t need;

  if (preferred < S3_MIN_PART)
    preferred = S3_MIN_PART;
  if (preferred > S3_MAX_PART)
    preferred = S3_MAX_PART;
  if (size == VIRTVAULT_SIZE_UNKNOWN)
    return preferred;
  if (size > S3_MAX_PART * S3_MAX_PARTS) {
    errno = EFBIG;
    return 0;
  }
  if (size <= preferred * S3_MAX_PARTS)
    return preferred;
  need = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
  need = (need + S3_MIB - 1) / S3_MIB * S3_MIB;
  if (need > S3_MAX_PART)
    need = S3_MAX_PART;
  return need;
}

void
s3_backoff_sleep (unsigned attempt, unsigned base_ms)
{
  uint64_t ms = base_ms;
  unsigned r = 0;
  struct timespec ts;

  if (attempt > 1)
    ms <<= (attempt - 1 > 10 ? 10 : attempt - 1);
  if (ms > 8000)
    ms = 8000;
  if (getrandom (&r, sizeof r, GRND_NONBLOCK) != sizeof r)
    r = 0;
  ms += ms / 4 * (r % 1000) / 1000;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000;
  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
}

const char *
s3_param_value (const char *param, const char *key)
{
  size_t k = strlen (key);

  if (strncmp (param, key, k) == 0 && param[k] == '=')
    return param + k + 1;
  return NULL;
}

static char *
trim (char *s)
{
  char *e;

  while (*s == ' ' || *s == '\t')
    s++;
  e = s + strlen (s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
    *--e = '\0';
  return s;
}

void
s3_free_secret (char *secret)
{
  if (secret) {
    explicit_bzero (secret, strlen (secret));
    free (secret);
  }
}

int
s3_read_credentials (const char *path, const char *profile,
                     char **key_id, char **secret, struct s3_err *e)
{
  struct stat st;
  char *buf = NULL, *line, *save = NULL;
  ssize_t n;
  size_t got = 0;
  int fd, ret = -1;
  bool in_section = false;

  *key_id = *secret = NULL;
  fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd == -1) {
    int err = errno;
    s3_err_set (e, err == ELOOP ? EACCES : err,
                "cannot open S3 credentials file %s: %s%s", path,
                strerror (err),
                err == ELOOP ? " (it is a symbolic link; give the file "
                "itself)" : "");
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    s3_err_set (e, errno, "cannot stat S3 credentials file %s: %s", path,
                strerror (errno));
    goto out;
  }
  if (!S_ISREG (st.st_mode)) {
    s3_err_set (e, EACCES, "S3 credentials file %s is not a regular file",
                path);
    goto out;
  }
  if (st.st_uid != 0 || (st.st_mode & 077)) {
    s3_err_set (e, EACCES, "S3 credentials file %s must be owned by root "
                "and readable by its owner only (chown root %s; "
                "chmod 600 %s)", path, path, path);
    goto out;
  }
  if (st.st_size > CRED_FILE_MAX) {
    s3_err_set (e, EFBIG, "S3 credentials file %s is larger than %d bytes",
                path, CRED_FILE_MAX);
    goto out;
  }
  buf = malloc (CRED_FILE_MAX + 1);
  if (buf == NULL) {
    s3_err_set (e, ENOMEM, "reading %s: %s", path, strerror (ENOMEM));
    goto out;
  }
  while (got < CRED_FILE_MAX &&
         (n = read (fd, buf + got, CRED_FILE_MAX - got)) != 0) {
    if (n == -1) {
      if (errno == EINTR)
        continue;
      s3_err_set (e, errno, "cannot read S3 credentials file %s: %s", path,
                  strerror (errno));
      goto out;
    }
    got += n;
  }
  buf[got] = '\0';

  for (line = strtok_r (buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    char *l = trim (line), *eq, *k, *v;

    if (*l == '#' || *l == ';' || *l == '\0')
      continue;
    if (*l == '[') {
      char *end = strchr (l, ']');
      if (end) {
        *end = '\0';
        in_section = strcmp (trim (l + 1), profile) == 0;
      }
      continue;
    }
    if (!in_section || (eq = strchr (l, '=')) == NULL)
      continue;
    *eq = '\0';
    k = trim (l);
    v = trim (eq + 1);
    if (strcmp (k, "aws_access_key_id") == 0) {
      free (*key_id);
      *key_id = strdup (v);
    }
    else if (strcmp (k, "aws_secret_access_key") == 0) {
      s3_free_secret (*secret);
      *secret = strdup (v);
    }
  }
  if (*key_id == NULL || *secret == NULL || **key_id == '\0' ||
      **secret == '\0') {
    s3_err_set (e, EINVAL, "S3 credentials file %s has no "
                "aws_access_key_id and aws_secret_access_key in section "
                "[%s]", path, profile);
    goto out;
  }
  ret = 0;
 out:
  if (ret == -1) {
    free (*key_id);
    s3_free_secret (*secret);
    *key_id = *secret = NULL;
  }
  if (buf) {
    explicit_bzero (buf, got);
    free (buf);
  }
  close (fd);
  return ret;
}
