/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing nfs:// target URLs and the plugin's parameters. */
#ifndef VV_NFS_URL_H
#define VV_NFS_URL_H

#include <stdint.h>

struct nfs_url_parts {
  char *server;       /* host name or IPv4 address */
  char *path;         /* absolute, no trailing '/' unless "/" */
  int version;        /* 3 or 4 */
  int nfsport;        /* 0: the default (2049 for v4, portmapper for v3) */
  int mountport;      /* v3 only; 0: ask the portmapper */
  int timeout_ms;     /* per RPC */
};

/* Parse nfs://server[:port]/path[?key=value&...] and the "key=value"
 * params.  Known keys (in the query or as params): version=3|4 (default 3),
 * nfsport=N, mountport=N, timeout=SECONDS.  0 or -1 with a message in
 * err (errno EINVAL).
 */
int nfs_url_parse (const char *url, const char *const *params,
                   struct nfs_url_parts *ret, char *err, size_t errlen);
void nfs_url_free (struct nfs_url_parts *p);

#endif
