/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Progress and cancellation shared between a running job and whoever
 * watches it.  Lock-free: the worker updates, the API reads.
 */
#ifndef VV_UTIL_PROGRESS_H
#define VV_UTIL_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vv_progress {
  _Atomic uint64_t done;        /* bytes done */
  _Atomic uint64_t total;       /* bytes to do (may grow as work is found) */
  _Atomic bool cancel;          /* set by job cancel / daemon shutdown */
};

static inline void
vv_progress_add (struct vv_progress *p, uint64_t n)
{
  if (p)
    atomic_fetch_add (&p->done, n);
}

static inline void
vv_progress_add_total (struct vv_progress *p, uint64_t n)
{
  if (p)
    atomic_fetch_add (&p->total, n);
}

static inline bool
vv_progress_cancelled (struct vv_progress *p)
{
  return p && atomic_load (&p->cancel);
}

/* The progress of the job this thread runs (set by the job runner, NULL
 * outside jobs), and whether that job was cancelled.
 */
void vv_progress_set_current (struct vv_progress *p);
struct vv_progress *vv_progress_current (void);
bool vv_progress_current_cancelled (void);

#endif
