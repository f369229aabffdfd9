/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pipelined reads and writes on one libnfs file handle. */
#ifndef VV_NFS_IO_H
#define VV_NFS_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin-job.h"

struct nfs_context;
struct nfsfh;

/* Read (write=false) or write count bytes at offset as requests of at
 * most chunk bytes, up to NFS_IO_INFLIGHT of them in flight, serviced
 * with the context's own socket.  Returns the bytes done (a read stops
 * at the end of the file) or -errno.  *broken is set when the context
 * can not be used any more (lost connection, no progress for stall_ms,
 * job cancelled): nfs_io has destroyed it, the caller forgets it.  For
 * a job already cancelled nothing is sent (-ECANCELED, not broken).  job
 * may be NULL.
 */
#define NFS_IO_INFLIGHT 8
int64_t nfs_io (struct nfs_context *nfs, struct nfsfh *fh, bool write,
                void *buf, uint64_t count, uint64_t offset, size_t chunk,
                int stall_ms, const struct plugin_job *job, bool *broken);

/* The errno in a libnfs message ending in "...NFS3ERR_NOSPC(-28)", or 0. */
int nfs_io_status_errno (const char *msg);

#endif
