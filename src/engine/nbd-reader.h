/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading one disk of a pull-mode backup job over NBD and turning it into
 * a qcow2 stream.
 *
 * vv_nbd_map asks the export which extents hold data (base:allocation)
 * and lays out the qcow2 plan; vv_nbd_copy streams the image: several
 * reader threads, each with its own NBD connection, fill a bounded ring
 * of chunks while the calling thread writes completed chunks in guest
 * order, so reading, hashing and writing overlap.
 */
#ifndef VV_ENGINE_NBD_READER_H
#define VV_ENGINE_NBD_READER_H

#include <stddef.h>

#include "qcow2/qcow2.h"
#include "util/progress.h"

/* Limits on the tuning knobs. */
#define VV_NBD_MAX_CONNECTIONS 16
#define VV_NBD_MAX_SLOTS 64
#define VV_NBD_MAX_CHUNK (32 * 1024 * 1024)

/* One export of a pull-mode backup job. */
struct vv_nbd_export {
  const char *socket;           /* UNIX socket path */
  const char *name;             /* export name: the disk target, "vda" */
  const char *what;             /* for messages: "backup of 'web01' disk vda" */
};

struct vv_nbd_copy_opts {
  unsigned connections;         /* reader threads/connections; 0 = 4 */
  unsigned slots;               /* chunks buffered; 0 = 32 */
  size_t chunk_size;            /* bytes per chunk; 0 = 1 MiB */
  size_t request_size;          /* bytes per NBD read, all of a chunk's
                                 * in flight at once; 0 = 1 MiB */
};

/* A new plan for a standalone image of the export, with every extent
 * that is not known to read as zeros marked DATA.
 */
int vv_nbd_map (const struct vv_nbd_export *x,
                struct vv_qcow2_plan **ret_plan);

/* Writes the whole image of plan through write(opaque, ...): metadata,
 * the data read from the export, final padding.  opts may be NULL.
 * Adds the bytes read to p's done counter (the caller adds the total);
 * stops with VV_ERR_CANCELLED when p is cancelled.
 */
int vv_nbd_copy (const struct vv_nbd_export *x, struct vv_qcow2_plan *plan,
                 const struct vv_nbd_copy_opts *opts,
                 vv_qcow2_write_fn write, void *opaque,
                 struct vv_progress *p);

#endif
