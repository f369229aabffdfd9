/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers of the S3 plugin (see s3-util.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <virtvault-plugin.h>

#include "s3-util.h"

/* Longest credentials file read. */
#define CRED_FILE_MAX 65536

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

int
s3_read_credentials (const char *path, const char *profile,
                     char **key_id, char **secret, struct plugin_err *e)
{
  char *buf, *line, *save = NULL;
  size_t len;
  bool in_section = false;

  *key_id = *secret = NULL;
  if (plugin_read_private_file (path, "S3 credentials file", CRED_FILE_MAX,
                                &buf, &len, e) == -1)
    return -1;
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
      plugin_free_secret (*secret);
      *secret = strdup (v);
    }
  }
  plugin_free_private (buf, len);
  if (*key_id == NULL || *secret == NULL || **key_id == '\0' ||
      **secret == '\0') {
    plugin_err_set (e, EINVAL, "S3 credentials file %s has no "
                    "aws_access_key_id and aws_secret_access_key in section "
                    "[%s]", path, profile);
    free (*key_id);
    plugin_free_secret (*secret);
    *key_id = *secret = NULL;
    return -1;
  }
  return 0;
}
