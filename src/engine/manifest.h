/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* manifest.json: the self-describing record of one backup on a target,
 * published last (its presence is the commit point).  The format is a
 * contract, documented in docs/storage-format.md.
 */
#ifndef VV_ENGINE_MANIFEST_H
#define VV_ENGINE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog/catalog.h"

#define VV_MANIFEST_FORMAT_VERSION 1
/* Largest manifest we read back. */
#define VV_MANIFEST_MAX (1024 * 1024)

/* Serialises a completed backup (pretty-printed JSON, trailing newline). */
char *vv_manifest_write (const struct vv_backup_rec *b);
/* Parses and validates a manifest; what names the source in errors
 * ("manifest bk-1/manifest.json").  The result has status "completed".
 */
struct vv_backup_rec *vv_manifest_read (const char *what, const char *text,
                                        size_t len);
/* Whether s is a host id as the manifest takes it: 32 lowercase hex
 * digits, as in /etc/machine-id.
 */
bool vv_manifest_is_host_id (const char *s);
/* Sets b's owner_name (the login name of owner_uid here) and host_id
 * (this host's /etc/machine-id), each left NULL when this host does not
 * know it; -1 only when out of memory.
 */
int vv_manifest_set_origin (struct vv_backup_rec *b);

#endif
