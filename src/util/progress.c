/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include "util/progress.h"

/* The job the current thread works for: storage plugins ask through the
 * host services whether it was cancelled, without knowing of jobs.
 */
static __thread struct vv_progress *current_progress;

void
vv_progress_set_current (struct vv_progress *p)
{
  current_progress = p;
}

struct vv_progress *
vv_progress_current (void)
{
  return current_progress;
}

bool
vv_progress_current_cancelled (void)
{
  return vv_progress_cancelled (current_progress);
}
