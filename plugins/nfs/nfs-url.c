/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing nfs:// target URLs.  Written here rather than with libnfs's
 * nfs_parse_url_*, which accept any libnfs option in the query string
 * (uid=, gid=, debug= ...): only the options below are accepted, so an
 * admin never gets a behaviour they did not ask for.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfs-url.h"

#define SERVER_MAX 253
#define PATH_MAX_LEN 1024

static int
parse_int (const char *key, const char *v, long min, long max, int *ret,
           char *err, size_t errlen)
{
  char *end;
  long n;

  errno = 0;
  n = strtol (v, &end, 10);
  if (errno || end == v || *end || !isdigit ((unsigned char) *v) ||
      n < min || n > max) {
    snprintf (err, errlen, "%s=%s: expected a number from %ld to %ld",
              key, v, min, max);
    return -1;
  }
  *ret = (int) n;
  return 0;
}

static int
set_option (struct nfs_url_parts *p, const char *kv, size_t len,
            char *err, size_t errlen)
{
  char buf[128];
  char *eq;
  int secs;

  if (len >= sizeof buf) {
    snprintf (err, errlen, "option too long: %.40s...", kv);
    return -1;
  }
  memcpy (buf, kv, len);
  buf[len] = '\0';
  eq = strchr (buf, '=');
  if (!eq) {
    snprintf (err, errlen, "option '%s' has no value (use key=value)", buf);
    return -1;
  }
  *eq++ = '\0';
  if (strcmp (buf, "version") == 0) {
    if (strcmp (eq, "3") == 0)
      p->version = 3;
    else if (strcmp (eq, "4") == 0)
      p->version = 4;
    else {
      snprintf (err, errlen, "version=%s: expected 3 or 4", eq);
      return -1;
    }
    return 0;
  }
  if (strcmp (buf, "nfsport") == 0)
    return parse_int (buf, eq, 1, 65535, &p->nfsport, err, errlen);
  if (strcmp (buf, "mountport") == 0)
    return parse_int (buf, eq, 1, 65535, &p->mountport, err, errlen);
  if (strcmp (buf, "timeout") == 0) {
    if (parse_int (buf, eq, 1, 3600, &secs, err, errlen) == -1)
      return -1;
    p->timeout_ms = secs * 1000;
    return 0;
  }
  snprintf (err, errlen,
            "unknown option '%s' (known: version, nfsport, mountport, timeout)",
            buf);
  return -1;
}

void
nfs_url_free (struct nfs_url_parts *p)
{
  free (p->server);
  free (p->path);
  p->server = p->path = NULL;
}

int
nfs_url_parse (const char *url, const char *const *params,
               struct nfs_url_parts *p, char *err, size_t errlen)
{
  const char *s, *host_end, *path, *query, *c;
  size_t hlen, plen, i;

  memset (p, 0, sizeof *p);
  p->version = 3;
  p->timeout_ms = 30000;

  if (strncmp (url, "nfs://", 6) != 0) {
    snprintf (err, errlen, "not an nfs:// URL");
    goto bad;
  }
  s = url + 6;
  path = strchr (s, '/');
  if (!path) {
    snprintf (err, errlen, "no export path (nfs://server/export/path)");
    goto bad;
  }
  host_end = memchr (s, ':', path - s);
  if (!host_end)
    host_end = path;
  hlen = host_end - s;
  if (hlen == 0 || hlen > SERVER_MAX) {
    snprintf (err, errlen, "no server name (nfs://server/export/path)");
    goto bad;
  }
  for (c = s; c < host_end; c++)
    if (!isalnum ((unsigned char) *c) && *c != '.' && *c != '-') {
      snprintf (err, errlen, "bad character '%c' in the server name "
                "(user names and IPv6 addresses are not supported)", *c);
      goto bad;
    }
  p->server = strndup (s, hlen);
  if (host_end != path) {
    char port[8];
    size_t n = path - host_end - 1;
    if (n == 0 || n >= sizeof port) {
      snprintf (err, errlen, "bad port");
      goto bad;
    }
    memcpy (port, host_end + 1, n);
    port[n] = '\0';
    if (parse_int ("port", port, 1, 65535, &p->nfsport, err, errlen) == -1)
      goto bad;
  }

  query = strchr (path, '?');
  plen = query ? (size_t) (query - path) : strlen (path);
  while (plen > 1 && path[plen - 1] == '/')
    plen--;
  if (plen > PATH_MAX_LEN) {
    snprintf (err, errlen, "export path too long");
    goto bad;
  }
  for (i = 0; i < plen; i++)
    if ((unsigned char) path[i] < 0x20 || path[i] == '%' || path[i] == '#') {
      snprintf (err, errlen, "bad character in the export path "
                "(percent-encoding is not supported)");
      goto bad;
    }
  if (strstr (path, "/../") || (plen >= 3 && strncmp (path + plen - 3, "/..", 3) == 0) ||
      strstr (path, "/./") || strstr (path, "//")) {
    snprintf (err, errlen, "the export path must not contain '.', '..' "
              "or empty components");
    goto bad;
  }
  p->path = strndup (path, plen);

  if (query) {
    const char *q = query + 1;
    while (*q) {
      const char *amp = strchr (q, '&');
      size_t n = amp ? (size_t) (amp - q) : strlen (q);
      if (set_option (p, q, n, err, errlen) == -1)
        goto bad;
      q += n;
      if (*q == '&')
        q++;
    }
  }
  for (; params && *params; params++)
    if (set_option (p, *params, strlen (*params), err, errlen) == -1)
      goto bad;
  if (p->mountport && p->version != 3) {
    snprintf (err, errlen, "mountport= is for version=3 only");
    goto bad;
  }
  if (!p->server || !p->path) {
    snprintf (err, errlen, "out of memory");
    goto bad;
  }
  return 0;

 bad:
  nfs_url_free (p);
  errno = EINVAL;
  return -1;
}
