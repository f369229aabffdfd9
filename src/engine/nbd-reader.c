/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "engine/nbd-reader.h"
#include "util/cleanup.h"
#include "util/error.h"

#define DEFAULT_CONNECTIONS 4
/* Measured here: 1 MiB chunks beat 4 MiB ones (the writer hashes and
 * copies data that is still in the CPU caches); 32 of them absorb stalls
 * of the target.
 */
#define DEFAULT_SLOTS 32
#define DEFAULT_CHUNK (1024 * 1024)
/* A chunk made of many short runs is read with all its requests in
 * flight at once; a long run is read in requests of this size.
 */
#define DEFAULT_REQUEST (1024 * 1024)
/* NBD lengths are 32 bits; ask for block status in pieces this big. */
#define STATUS_REQUEST_MAX (UINT64_C (1) << 31)
/* How often a reader waiting on the server looks at the cancel flag. */
#define POLL_TIMEOUT_MS 1000

static const char *
nbd_error_message (void)
{
  const char *m = nbd_get_error ();

  return m && *m ? m : "unknown NBD error";
}

static void
cleanup_nbd (struct nbd_handle **h)
{
  if (*h)
    nbd_close (*h);
}
#define _cleanup_nbd_ _cleanup_ (cleanup_nbd)

/* A connected handle for the export; meta asks for base:allocation. */
static struct nbd_handle *
connect_export (const struct vv_nbd_export *x, bool meta)
{
  _cleanup_nbd_ struct nbd_handle *h = nbd_create ();

  /* Every buffer is filled by the read or the read fails; libnbd's
   * zeroing of it first would only cost time.
   */
  if (h == NULL
      || nbd_set_pread_initialize (h, false) == -1
      || nbd_set_export_name (h, x->name) == -1
      || (meta && nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION)
          == -1)
      || nbd_connect_unix (h, x->socket) == -1) {
    vv_error ("%s failed connecting to NBD export '%s' at %s: %s",
              x->what, x->name, x->socket, nbd_error_message ());
    return NULL;
  }
  return TAKE_PTR (h);
}

/* ---- mapping ---- */

struct map_state {
  struct vv_qcow2_plan *plan;
  uint64_t start, end;          /* the range asked for */
  uint64_t covered;             /* end of what the reply described */
  bool failed;
};

static int
extent_cb (void *opaque, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct map_state *m = opaque;

  (void) error;
  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  /* entries holds (length, flags) pairs. */
  for (size_t i = 0; i + 1 < nr_entries; i += 2) {
    uint64_t len = entries[i];
    uint32_t flags = entries[i + 1];

    if (offset >= m->end)
      break;
    if (len > m->end - offset)
      len = m->end - offset;
    /* A full image has no backing file: holes and zeros stay
     * unallocated and read as zeros.
     */
    if (!(flags & LIBNBD_STATE_ZERO) && !m->failed
        && vv_qcow2_plan_mark (m->plan, offset, len, VV_QCOW2_DATA) == -1)
      m->failed = true;
    offset += len;
  }
  if (offset > m->covered)
    m->covered = offset;
  return 0;
}

int
vv_nbd_map (const struct vv_nbd_export *x, struct vv_qcow2_plan **ret_plan)
{
  _cleanup_nbd_ struct nbd_handle *h = NULL;
  struct vv_qcow2_plan *plan;
  int64_t size;
  int can;

  h = connect_export (x, true);
  if (h == NULL)
    return -1;
  size = nbd_get_size (h);
  if (size == -1) {
    vv_error ("%s: cannot get the size of NBD export '%s': %s",
              x->what, x->name, nbd_error_message ());
    return -1;
  }
  plan = vv_qcow2_plan_new (size, NULL, NULL);
  if (plan == NULL) {
    vv_error_prefix ("%s: ", x->what);
    return -1;
  }

  can = nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (can != 1) {
    /* Without allocation information every byte has to be read. */
    if (vv_qcow2_plan_mark (plan, 0, size, VV_QCOW2_DATA) == -1)
      goto fail;
  }
  else {
    uint64_t offset = 0;

    while (offset < (uint64_t) size) {
      struct map_state m = {
        .plan = plan, .start = offset, .end = size, .covered = offset,
      };
      uint64_t count = size - offset;

      if (count > STATUS_REQUEST_MAX)
        count = STATUS_REQUEST_MAX;
      m.end = offset + count;
      if (nbd_block_status (h, count, offset,
                            (nbd_extent_callback) { .callback = extent_cb,
                                                    .user_data = &m },
                            0) == -1) {
        vv_error ("%s failed reading the allocation map at offset %" PRIu64
                  ": %s", x->what, offset, nbd_error_message ());
        goto fail;
      }
      if (m.failed) {
        vv_error_prefix ("%s: ", x->what);
        goto fail;
      }
      /* The reply may cover less than asked, never nothing. */
      if (m.covered <= offset) {
        vv_error ("%s: the NBD server described no extent at offset %"
                  PRIu64, x->what, offset);
        goto fail;
      }
      offset = m.covered;
    }
  }
  nbd_shutdown (h, 0);
  *ret_plan = plan;
  return 0;

 fail:
  vv_qcow2_plan_free (plan);
  return -1;
}

/* ---- copying ---- */

struct piece {
  uint64_t offset;
  uint32_t length;
};

struct slot {
  bool ready;
  uint64_t seq;
  size_t length;
  char *buf;
};

struct copy {
  const struct vv_nbd_export *x;
  const struct vv_qcow2_plan *plan;
  struct vv_progress *p;
  size_t chunk_size;
  size_t max_request;
  unsigned nslots;
  struct slot *slots;

  pthread_mutex_t lock;
  pthread_cond_t cond;          /* any change below; broadcast */
  /* The runs not yet handed out. */
  uint64_t run_iter;
  uint64_t run_offset, run_end;
  uint64_t next_seq;            /* next chunk to hand out */
  bool issue_done;              /* all handed out: next_seq is the count */
  uint64_t written;             /* chunks before this one are written */
  /* The first failure, copied out of the failing thread. */
  bool failed;
  enum vv_errcode err_code;
  char err[1024];
};

/* Records the calling thread's current error as the copy's failure
 * (the first one wins) and wakes everyone.
 */
static void
copy_fail (struct copy *c)
{
  VV_LOCK_GUARD (&c->lock);
  if (!c->failed) {
    c->failed = true;
    c->err_code = vv_get_error_code ();
    snprintf (c->err, sizeof c->err, "%s", vv_get_error ());
  }
  pthread_cond_broadcast (&c->cond);
}

static bool
copy_failed (struct copy *c)
{
  VV_LOCK_GUARD (&c->lock);
  return c->failed;
}

static void
report_cancel (struct copy *c)
{
  vv_error_code (VV_ERR_CANCELLED, "%s was cancelled", c->x->what);
  copy_fail (c);
}

/* Under the lock: fills pieces with the next chunk's worth of runs.
 * Returns the number of pieces, 0 when the runs are exhausted.
 */
static size_t
take_chunk_locked (struct copy *c, struct piece *pieces, size_t max_pieces,
                   size_t *ret_length)
{
  size_t n = 0, total = 0;

  while (n < max_pieces && total < c->chunk_size) {
    uint64_t len;

    if (c->run_offset == c->run_end) {
      uint64_t off, l;
      if (vv_qcow2_plan_next_run (c->plan, &c->run_iter, &off, &l) != 1)
        break;
      c->run_offset = off;
      c->run_end = off + l;
      continue;
    }
    len = c->run_end - c->run_offset;
    if (len > c->chunk_size - total)
      len = c->chunk_size - total;
    if (len > c->max_request)
      len = c->max_request;
    pieces[n].offset = c->run_offset;
    pieces[n].length = len;
    n++;
    total += len;
    c->run_offset += len;
  }
  *ret_length = total;
  return n;
}

/* Reads the pieces into buf with all requests in flight at once. */
static int
read_pieces (struct copy *c, struct nbd_handle *h, const struct piece *pieces,
             size_t n, int64_t *cookies, char *buf)
{
  size_t pos = 0;
  size_t i;

  for (i = 0; i < n; i++) {
    cookies[i] = nbd_aio_pread (h, buf + pos, pieces[i].length,
                                pieces[i].offset, NBD_NULL_COMPLETION, 0);
    if (cookies[i] == -1) {
      vv_error ("%s failed reading at offset %" PRIu64 ": %s",
                c->x->what, pieces[i].offset, nbd_error_message ());
      return -1;
    }
    pos += pieces[i].length;
  }
  for (i = 0; i < n; i++) {
    int r;

    while ((r = nbd_aio_command_completed (h, cookies[i])) == 0) {
      if (nbd_poll (h, POLL_TIMEOUT_MS) == -1) {
        vv_error ("%s failed reading at offset %" PRIu64 ": %s",
                  c->x->what, pieces[i].offset, nbd_error_message ());
        return -1;
      }
      if (vv_progress_cancelled (c->p) || copy_failed (c))
        return 1;
    }
    if (r == -1) {
      vv_error ("%s failed reading at offset %" PRIu64 ": %s",
                c->x->what, pieces[i].offset, nbd_error_message ());
      return -1;
    }
  }
  return 0;
}

static void *
reader_thread (void *opaque)
{
  struct copy *c = opaque;
  _cleanup_nbd_ struct nbd_handle *h = NULL;
  size_t max_pieces = c->chunk_size / VV_QCOW2_CLUSTER_SIZE + 2;
  _cleanup_free_ struct piece *pieces = NULL;
  _cleanup_free_ int64_t *cookies = NULL;

  pieces = calloc (max_pieces, sizeof *pieces);
  cookies = calloc (max_pieces, sizeof *cookies);
  if (pieces == NULL || cookies == NULL) {
    vv_error_errno (ENOMEM, "%s", c->x->what);
    copy_fail (c);
    return NULL;
  }
  h = connect_export (c->x, false);
  if (h == NULL) {
    copy_fail (c);
    return NULL;
  }

  for (;;) {
    uint64_t seq;
    size_t n, length;
    struct slot *s;
    int r;

    if (vv_progress_cancelled (c->p)) {
      report_cancel (c);
      return NULL;
    }
    {
      VV_LOCK_GUARD (&c->lock);
      while (!c->failed && !c->issue_done
             && c->next_seq >= c->written + c->nslots)
        pthread_cond_wait (&c->cond, &c->lock);
      if (c->failed || c->issue_done)
        return NULL;
      n = take_chunk_locked (c, pieces, max_pieces, &length);
      if (n == 0) {
        c->issue_done = true;
        pthread_cond_broadcast (&c->cond);
        return NULL;
      }
      seq = c->next_seq++;
    }

    s = &c->slots[seq % c->nslots];
    r = read_pieces (c, h, pieces, n, cookies, s->buf);
    if (r == -1) {
      copy_fail (c);
      return NULL;
    }
    if (r == 1) {
      if (vv_progress_cancelled (c->p))
        report_cancel (c);
      return NULL;
    }
    {
      VV_LOCK_GUARD (&c->lock);
      s->seq = seq;
      s->length = length;
      s->ready = true;
      pthread_cond_broadcast (&c->cond);
    }
  }
}

/* Writes the chunks in order as the readers complete them. */
static void
write_chunks (struct copy *c, vv_qcow2_write_fn write, void *opaque)
{
  for (;;) {
    struct slot *s;

    {
      VV_LOCK_GUARD (&c->lock);
      for (;;) {
        s = &c->slots[c->written % c->nslots];
        if (c->failed)
          return;
        if (s->ready && s->seq == c->written)
          break;
        if (c->issue_done && c->written == c->next_seq)
          return;
        pthread_cond_wait (&c->cond, &c->lock);
      }
    }
    if (vv_progress_cancelled (c->p)) {
      report_cancel (c);
      return;
    }
    if (write (opaque, s->buf, s->length) == -1) {
      vv_error_prefix ("%s failed writing the image: ", c->x->what);
      copy_fail (c);
      return;
    }
    vv_progress_add (c->p, s->length);
    {
      VV_LOCK_GUARD (&c->lock);
      s->ready = false;
      c->written++;
      pthread_cond_broadcast (&c->cond);
    }
  }
}

/* The largest request the server takes, as a multiple of the cluster
 * size where possible.
 */
static size_t
server_max_request (const struct vv_nbd_export *x)
{
  _cleanup_nbd_ struct nbd_handle *h = connect_export (x, false);
  int64_t max;

  if (h == NULL)
    return 0;
  max = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
  nbd_shutdown (h, 0);
  if (max <= 0 || max > VV_NBD_MAX_CHUNK)
    return VV_NBD_MAX_CHUNK;
  return max;
}

int
vv_nbd_copy (const struct vv_nbd_export *x, struct vv_qcow2_plan *plan,
             const struct vv_nbd_copy_opts *opts,
             vv_qcow2_write_fn write, void *opaque, struct vv_progress *p)
{
  struct copy c = {
    .x = x, .plan = plan, .p = p,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
  };
  unsigned nconn = opts && opts->connections ? opts->connections
    : DEFAULT_CONNECTIONS;
  pthread_t threads[VV_NBD_MAX_CONNECTIONS];
  unsigned started = 0;
  size_t request;
  int ret = -1;

  c.nslots = opts && opts->slots ? opts->slots : DEFAULT_SLOTS;
  c.chunk_size = opts && opts->chunk_size ? opts->chunk_size : DEFAULT_CHUNK;
  if (nconn > VV_NBD_MAX_CONNECTIONS || c.nslots > VV_NBD_MAX_SLOTS
      || c.chunk_size > VV_NBD_MAX_CHUNK
      || c.chunk_size < VV_QCOW2_CLUSTER_SIZE) {
    vv_error_code (VV_ERR_INVALID, "%s: NBD copy settings out of range "
                   "(connections <= %d, slots <= %d, chunk 64 KiB..32 MiB)",
                   x->what, VV_NBD_MAX_CONNECTIONS, VV_NBD_MAX_SLOTS);
    return -1;
  }
  c.chunk_size -= c.chunk_size % VV_QCOW2_CLUSTER_SIZE;
  request = opts && opts->request_size ? opts->request_size : DEFAULT_REQUEST;
  if (request < VV_QCOW2_CLUSTER_SIZE)
    request = VV_QCOW2_CLUSTER_SIZE;

  if (vv_qcow2_write_metadata (plan, write, opaque) == -1) {
    vv_error_prefix ("%s failed writing the image: ", x->what);
    return -1;
  }

  if (vv_qcow2_plan_data_clusters (plan) > 0) {
    c.max_request = server_max_request (x);
    if (c.max_request == 0)
      return -1;
    if (c.max_request > request)
      c.max_request = request - request % VV_QCOW2_CLUSTER_SIZE;

    c.slots = calloc (c.nslots, sizeof *c.slots);
    if (c.slots == NULL) {
      vv_error_errno (ENOMEM, "%s", x->what);
      return -1;
    }
    for (unsigned i = 0; i < c.nslots; i++) {
      c.slots[i].buf = malloc (c.chunk_size);
      if (c.slots[i].buf == NULL) {
        vv_error_errno (ENOMEM, "%s: allocating read buffers", x->what);
        goto out;
      }
    }

    for (; started < nconn; started++) {
      int err = pthread_create (&threads[started], NULL, reader_thread, &c);
      if (err) {
        vv_error_errno (err, "%s: cannot start a reader thread", x->what);
        copy_fail (&c);
        break;
      }
    }
    if (started > 0)
      write_chunks (&c, write, opaque);
    for (unsigned i = 0; i < started; i++)
      pthread_join (threads[i], NULL);
    if (c.failed) {
      vv_error_code (c.err_code, "%s", c.err);
      goto out;
    }
  }
  if (vv_progress_cancelled (p)) {
    vv_error_code (VV_ERR_CANCELLED, "%s was cancelled", x->what);
    goto out;
  }

  if (vv_qcow2_write_finish (plan, write, opaque) == -1) {
    vv_error_prefix ("%s failed writing the image: ", x->what);
    goto out;
  }
  ret = 0;

 out:
  if (c.slots) {
    for (unsigned i = 0; i < c.nslots; i++)
      free (c.slots[i].buf);
    free (c.slots);
  }
  pthread_mutex_destroy (&c.lock);
  pthread_cond_destroy (&c.cond);
  return ret;
}
