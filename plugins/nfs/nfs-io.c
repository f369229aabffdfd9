/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pipelined reads and writes on one libnfs file handle: NFS_IO_INFLIGHT
 * READ or WRITE requests of chunk bytes in flight at once, so one call
 * moves count bytes at the link's rate, not one round trip per chunk.
 * libnfs 4.0's synchronous NFSv4 pwrite sends one WRITE of any size,
 * which fails to encode above the negotiated maximum.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include <nfsc/libnfs.h>

#include "nfs-io.h"

struct io_req {
  int *inflight;
  char *buf;
  size_t len;
  bool write;
  bool busy;
  int result;             /* bytes, or -errno */
};

int
nfs_io_status_errno (const char *msg)
{
  const char *p;
  int e = 0;

  /* "NFS: Write failed with NFS3ERR_NOSPC(-28)": the last "(-N)". */
  if (!msg || !(p = strrchr (msg, '(')) || p[1] != '-')
    return 0;
  for (p += 2; *p >= '0' && *p <= '9' && e < 100000; p++)
    e = e * 10 + (*p - '0');
  return *p == ')' ? e : 0;
}

static void
io_done (int err, struct nfs_context *nfs, void *data, void *priv)
{
  struct io_req *r = priv;

  /* libnfs 4.0 reports a server's error (NFS3ERR_NOSPC ...) to async
   * callbacks as -EFAULT, with the status only in the message.
   */
  if (err == -EFAULT) {
    int e = nfs_io_status_errno (nfs_get_error (nfs));
    err = e ? -e : -EIO;
  }
  /* A request that timed out (nfs_set_timeout) comes back as -EINTR. */
  if (err == -EINTR)
    err = -ETIMEDOUT;
  r->result = err;
  if (!r->write && err > 0) {
    if ((size_t) err > r->len)      /* a server sending more than asked */
      r->result = -EPROTO;
    else
      memcpy (r->buf, data, err);
  }
  r->busy = false;
  (*r->inflight)--;
}

static int64_t
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
nfs_io (struct nfs_context *nfs, struct nfsfh *fh, bool write, void *buf,
        uint64_t count, uint64_t offset, size_t chunk, int stall_ms,
        const struct plugin_job *job, bool *broken)
{
  struct io_req req[NFS_IO_INFLIGHT];
  uint64_t next = 0;            /* next byte to request */
  uint64_t done = count;        /* end of the contiguous prefix done */
  uint64_t starts[NFS_IO_INFLIGHT];
  int inflight = 0, err = 0, i, r;
  int64_t last_progress = now_ms ();

  *broken = false;
  /* Nothing is sent for a cancelled job (the context stays usable). */
  if (plugin_job_cancelled (job))
    return -ECANCELED;
  if (chunk == 0)
    chunk = 65536;
  memset (req, 0, sizeof req);

  while ((next < count && !err && done == count) || inflight > 0) {
    /* Fill the free slots. */
    for (i = 0; i < NFS_IO_INFLIGHT && next < count && !err && done == count;
         i++) {
      if (req[i].busy)
        continue;
      req[i].inflight = &inflight;
      req[i].buf = (char *) buf + next;
      req[i].len = count - next < chunk ? count - next : chunk;
      req[i].write = write;
      req[i].busy = true;
      req[i].result = 0;
      starts[i] = next;
      r = write
        ? nfs_pwrite_async (nfs, fh, offset + next, req[i].len, req[i].buf,
                            io_done, &req[i])
        : nfs_pread_async (nfs, fh, offset + next, req[i].len, io_done,
                           &req[i]);
      if (r != 0) {
        req[i].busy = false;
        err = -ENOMEM;
        *broken = true;
        break;
      }
      inflight++;
      next += req[i].len;
    }
    if (inflight == 0)
      break;

    {
      struct pollfd pfd = { nfs_get_fd (nfs), nfs_which_events (nfs), 0 };
      r = poll (&pfd, 1, 100);
      if (r < 0 && errno != EINTR) {
        err = -errno;
        *broken = true;
        break;
      }
      if (nfs_service (nfs, r > 0 ? pfd.revents : 0) < 0) {
        err = -ECONNRESET;
        *broken = true;
        break;
      }
    }

    /* Collect finished requests. */
    for (i = 0; i < NFS_IO_INFLIGHT; i++) {
      if (req[i].busy || !req[i].inflight)
        continue;
      req[i].inflight = NULL;   /* slot free and collected */
      last_progress = now_ms ();
      if (req[i].result < 0) {
        if (!err)
          err = req[i].result;
      } else if ((size_t) req[i].result < req[i].len) {
        if (write) {
          if (!err)
            err = -EIO;         /* a short WRITE: give up, never replay */
        } else if (starts[i] + req[i].result < done)
          done = starts[i] + req[i].result;     /* end of file */
      }
    }
    if (inflight > 0 && now_ms () - last_progress > stall_ms) {
      err = -ETIMEDOUT;
      *broken = true;
      break;
    }
    if (inflight > 0 && plugin_job_cancelled (job)) {
      err = -ECANCELED;
      *broken = true;
      break;
    }
  }
  if (*broken)
    /* Pending callbacks run now (cancelled), while req is still alive. */
    nfs_destroy_context (nfs);
  if (err)
    return err;
  return (int64_t) (done < next ? done : next);
}
