/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Scope-bound cleanup, in the style of systemd and nbdkit:
 *
 *   _cleanup_free_ char *path = NULL;
 *   _cleanup_close_ int fd = -1;
 *
 * Ownership leaves a cleanup variable explicitly with TAKE_PTR / TAKE_FD.
 */
#ifndef VV_UTIL_CLEANUP_H
#define VV_UTIL_CLEANUP_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>

#define _cleanup_(f) __attribute__ ((cleanup (f)))

static inline void
vv_cleanup_free (void *p)
{
  free (*(void **) p);
}
#define _cleanup_free_ _cleanup_ (vv_cleanup_free)

static inline void
vv_cleanup_close (int *fd)
{
  if (*fd >= 0) {
    int saved_errno = errno;
    close (*fd);
    errno = saved_errno;
  }
}
#define _cleanup_close_ _cleanup_ (vv_cleanup_close)

static inline void
vv_cleanup_fclose (FILE **fp)
{
  if (*fp)
    fclose (*fp);
}
#define _cleanup_fclose_ _cleanup_ (vv_cleanup_fclose)

static inline void
vv_cleanup_unlock (pthread_mutex_t **m)
{
  if (*m)
    pthread_mutex_unlock (*m);
}
/* Locks now, unlocks at the end of the scope. */
#define VV_CONCAT_(a, b) a##b
#define VV_CONCAT(a, b) VV_CONCAT_ (a, b)
#define VV_LOCK_GUARD(mutex)                                            \
  _cleanup_ (vv_cleanup_unlock) pthread_mutex_t *                       \
  VV_CONCAT (_lock_guard_, __LINE__) __attribute__ ((unused)) =         \
    (pthread_mutex_lock (mutex), (mutex))

/* Hand a pointer / fd out of a cleanup variable. */
#define TAKE_PTR(p) ({ __typeof__ (p) _tp = (p); (p) = NULL; _tp; })
#define TAKE_FD(fd) ({ int _tf = (fd); (fd) = -1; _tf; })

/* Frees a NULL-terminated array of strings. */
static inline void
vv_strv_free (char **v)
{
  if (v) {
    for (char **p = v; *p; p++)
      free (*p);
    free (v);
  }
}
static inline void
vv_cleanup_strv (char ***v)
{
  vv_strv_free (*v);
}
#define _cleanup_strv_ _cleanup_ (vv_cleanup_strv)

#endif
