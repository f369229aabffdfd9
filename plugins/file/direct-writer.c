/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "direct-writer.h"

/* One being filled, two being written or waiting: the disk always has
 * the next write when it finishes one.
 */
#define NBUF 3

struct direct_writer {
  int fd;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  unsigned char *buf[NBUF];
  /* Buffers go round in order: [done, filling) are full and queued for
   * the thread, filling is the caller's; indexes count up forever.
   */
  uint64_t done, filling;
  size_t fill;                  /* bytes in the caller's buffer */
  uint64_t offset;              /* of the caller's buffer in the file */
  uint64_t bytes;
  _Atomic int error;            /* errno of the first failed write */
  bool quit;
};

/* Writes count bytes at off; O_DIRECT is dropped for good where the file
 * system took the flag at open but refuses the write.
 */
static int
pwrite_all (int fd, const unsigned char *p, size_t count, uint64_t off)
{
  while (count > 0) {
    ssize_t n = pwrite (fd, p, count, (off_t) off);
    int fl;

    if (n == -1) {
      if (errno == EINTR)
        continue;
      if (errno == EINVAL && (fl = fcntl (fd, F_GETFL)) != -1
          && (fl & O_DIRECT) && fcntl (fd, F_SETFL, fl & ~O_DIRECT) == 0)
        continue;
      return errno;
    }
    if (n == 0)
      return EIO;
    p += n;
    count -= (size_t) n;
    off += (uint64_t) n;
  }
  return 0;
}

static void *
run (void *opaque)
{
  struct direct_writer *w = opaque;

  pthread_mutex_lock (&w->lock);
  for (;;) {
    unsigned char *b;
    uint64_t off;
    int e;

    while (w->done == w->filling && !w->quit)
      pthread_cond_wait (&w->changed, &w->lock);
    if (w->quit)
      break;
    b = w->buf[w->done % NBUF];
    /* Queued buffer k starts (filling - k) buffers before the caller's. */
    off = w->offset - (w->filling - w->done) * DIRECT_BUF;
    pthread_mutex_unlock (&w->lock);
    /* After a failure the rest is only counted off, never written. */
    e = atomic_load (&w->error) ? 0 : pwrite_all (w->fd, b, DIRECT_BUF, off);
    pthread_mutex_lock (&w->lock);
    if (e && !atomic_load (&w->error))
      atomic_store (&w->error, e);
    w->done++;
    pthread_cond_broadcast (&w->changed);
  }
  pthread_mutex_unlock (&w->lock);
  return NULL;
}

struct direct_writer *
direct_writer_start (int fd)
{
  struct direct_writer *w = calloc (1, sizeof *w);
  int fl, e;

  if (w == NULL)
    return NULL;
  w->fd = fd;
  for (int i = 0; i < NBUF; i++) {
    void *p;

    if ((e = posix_memalign (&p, DIRECT_ALIGN, DIRECT_BUF)) != 0) {
      errno = e;
      goto fail;
    }
    w->buf[i] = p;
  }
  if ((fl = fcntl (fd, F_GETFL)) == -1
      || fcntl (fd, F_SETFL, fl | O_DIRECT) == -1)
    goto fail;
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->changed, NULL);
  if ((e = pthread_create (&w->thread, NULL, run, w)) != 0) {
    pthread_cond_destroy (&w->changed);
    pthread_mutex_destroy (&w->lock);
    fcntl (fd, F_SETFL, fl);
    errno = e;
    goto fail;
  }
  return w;

 fail:
  e = errno;
  for (int i = 0; i < NBUF; i++)
    free (w->buf[i]);
  free (w);
  errno = e;
  return NULL;
}

/* Queues the caller's full buffer and waits for a free one. */
static int
hand_over (struct direct_writer *w)
{
  int e;

  pthread_mutex_lock (&w->lock);
  w->filling++;
  w->offset += DIRECT_BUF;
  w->fill = 0;
  pthread_cond_broadcast (&w->changed);
  while (w->filling - w->done >= NBUF && !atomic_load (&w->error))
    pthread_cond_wait (&w->changed, &w->lock);
  e = atomic_load (&w->error);
  pthread_mutex_unlock (&w->lock);
  if (e) {
    errno = e;
    return -1;
  }
  return 0;
}

int
direct_writer_write (struct direct_writer *w, const void *buf, size_t count)
{
  const unsigned char *p = buf;

  if (atomic_load (&w->error)) {
    errno = atomic_load (&w->error);
    return -1;
  }
  while (count > 0) {
    size_t n = DIRECT_BUF - w->fill < count ? DIRECT_BUF - w->fill : count;

    memcpy (w->buf[w->filling % NBUF] + w->fill, p, n);
    w->fill += n;
    w->bytes += n;
    p += n;
    count -= n;
    if (w->fill == DIRECT_BUF && hand_over (w) == -1)
      return -1;
  }
  return 0;
}

int
direct_writer_finish (struct direct_writer *w)
{
  unsigned char *b = w->buf[w->filling % NBUF];
  size_t head = w->fill & ~(size_t) (DIRECT_ALIGN - 1);
  int e, fl;

  pthread_mutex_lock (&w->lock);
  while (w->done != w->filling)
    pthread_cond_wait (&w->changed, &w->lock);
  e = atomic_load (&w->error);
  pthread_mutex_unlock (&w->lock);
  if (e == 0 && head > 0)
    e = pwrite_all (w->fd, b, head, w->offset);
  if (e == 0 && head < w->fill) {
    if ((fl = fcntl (w->fd, F_GETFL)) == -1
        || fcntl (w->fd, F_SETFL, fl & ~O_DIRECT) == -1)
      e = errno;
    else
      e = pwrite_all (w->fd, b + head, w->fill - head, w->offset + head);
  }
  if (e) {
    atomic_store (&w->error, e);
    errno = e;
    return -1;
  }
  return 0;
}

uint64_t
direct_writer_bytes (const struct direct_writer *w)
{
  return w->bytes;
}

void
direct_writer_free (struct direct_writer *w)
{
  if (w == NULL)
    return;
  pthread_mutex_lock (&w->lock);
  w->quit = true;
  pthread_cond_broadcast (&w->changed);
  pthread_mutex_unlock (&w->lock);
  pthread_join (w->thread, NULL);
  pthread_cond_destroy (&w->changed);
  pthread_mutex_destroy (&w->lock);
  for (int i = 0; i < NBUF; i++)
    free (w->buf[i]);
  free (w);
}
