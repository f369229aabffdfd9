/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Copying every byte of data of a point (vv_point_copy, point.h).
 *
 * A window's data becomes pieces (runs of clusters of one image that are
 * adjacent both in the guest and in the image), grouped per image into
 * requests: pieces whose blocks touch share a request, so the blocks
 * between them are read once, and a request reads whole blocks, which is
 * what its digests cover.  Worker threads take the requests of a window
 * one by one; each image's reader is asked for at most as many ranges at
 * once as its target allows.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "restore/point-internal.h"
#include "util/error.h"

struct piece {
  uint32_t layer;
  uint64_t host, guest, len;
};

struct request {
  uint32_t layer;
  uint64_t start, end;          /* bytes of the image, whole blocks */
  size_t first, count;          /* its pieces */
};

/* ---- copying ---- */

struct copy {
  struct vv_point *pt;
  vv_point_sink sink;
  void *opaque;
  struct vv_progress *p;
  /* One window's pieces and requests. */
  struct piece *pieces;
  size_t npieces;
  size_t *last;                 /* per layer: its latest piece + 1, or 0 */
  struct request *reqs;
  size_t nreqs;
  _Atomic size_t next;
  /* The first failure of a worker, raised again by the caller. */
  pthread_mutex_t lock;
  bool failed;
  struct vv_saved_error err;
};

/* Adds clusters [guest, guest + len) of the point, stored at host of
 * layer k; they join that layer's latest piece when they continue it in
 * the guest and in the image.
 */
static void
add_piece (struct copy *cp, uint32_t k, uint64_t host, uint64_t guest,
           uint64_t len)
{
  if (cp->last[k] > 0) {
    struct piece *pc = &cp->pieces[cp->last[k] - 1];

    if (pc->guest + pc->len == guest && pc->host + pc->len == host
        && pc->len % CS == 0 && pc->len + len <= PIECE_MAX) {
      pc->len += len;
      return;
    }
  }
  cp->pieces[cp->npieces] = (struct piece) {
    .layer = k, .host = host, .guest = guest, .len = len,
  };
  cp->last[k] = ++cp->npieces;
}

static int
cmp_piece (const void *a, const void *b)
{
  const struct piece *x = a, *y = b;

  if (x->layer != y->layer)
    return x->layer < y->layer ? -1 : 1;
  return x->host < y->host ? -1 : x->host > y->host;
}

/* The window's pieces (sorted) as requests of whole blocks. */
static void
make_requests (struct copy *cp)
{
  struct request *rq = NULL;

  cp->nreqs = 0;
  for (size_t i = 0; i < cp->npieces; i++) {
    const struct piece *pc = &cp->pieces[i];
    const struct layer *l = &cp->pt->layers[pc->layer];
    uint64_t start, end;

    vv_block_digests_cover (&l->dig, pc->host, pc->len, &start, &end);
    if (rq && rq->layer == pc->layer && start <= rq->end
        && (end <= rq->end || end - rq->start <= REQUEST_MAX)) {
      if (end > rq->end)
        rq->end = end;
      rq->count++;
      continue;
    }
    rq = &cp->reqs[cp->nreqs++];
    *rq = (struct request) {
      .layer = pc->layer, .start = start, .end = end, .first = i, .count = 1,
    };
  }
}

static void
fail_copy (struct copy *cp)
{
  pthread_mutex_lock (&cp->lock);
  if (!cp->failed) {
    cp->failed = true;
    vv_restore_save_error (&cp->err);
  }
  pthread_mutex_unlock (&cp->lock);
}

static bool
copy_failed (struct copy *cp)
{
  bool r;

  pthread_mutex_lock (&cp->lock);
  r = cp->failed;
  pthread_mutex_unlock (&cp->lock);
  return r;
}

/* Reads, checks and hands on request rq; buf holds its bytes. */
static int
do_request (struct copy *cp, const struct request *rq, uint8_t *buf)
{
  struct vv_point *pt = cp->pt;
  struct layer *l = &pt->layers[rq->layer];

  if (vv_point_layer_read (pt, l, buf, rq->start, rq->end - rq->start) == -1
      || vv_block_digests_check (&l->dig, buf, rq->start, rq->end,
                                 l->corrupt) == -1)
    return -1;
  for (size_t k = rq->first; k < rq->first + rq->count; k++) {
    const struct piece *pc = &cp->pieces[k];

    if (cp->sink (cp->opaque, pc->guest, buf + (pc->host - rq->start),
                  pc->len) == -1)
      return -1;
    vv_progress_add (cp->p, pc->len);
  }
  return 0;
}

/* Workers take requests until none is left or one failed. */
static void *
worker (void *opaque)
{
  struct copy *cp = opaque;
  uint8_t *buf = NULL;
  size_t bufsize = 0;

  /* What a plugin asks through its cancelled() host service. */
  vv_progress_set_current (cp->p);
  for (;;) {
    size_t i = atomic_fetch_add (&cp->next, 1);
    const struct request *rq;

    if (i >= cp->nreqs || copy_failed (cp))
      break;
    rq = &cp->reqs[i];
    if (vv_progress_cancelled (cp->p)) {
      vv_error_code (VV_ERR_CANCELLED, "reading %s was cancelled",
                     cp->pt->what);
      fail_copy (cp);
      break;
    }
    if (rq->end - rq->start > bufsize) {
      void *nb = NULL;

      /* Aligned, so a sink may write its pieces with O_DIRECT. */
      if (posix_memalign (&nb, 4096, rq->end - rq->start) != 0) {
        vv_error_errno (ENOMEM, "reading %s", cp->pt->what);
        fail_copy (cp);
        break;
      }
      free (buf);
      buf = nb;
      bufsize = rq->end - rq->start;
    }
    if (do_request (cp, rq, buf) == -1) {
      fail_copy (cp);
      break;
    }
  }
  free (buf);
  return NULL;
}

/* Reads the requests of the current window with up to POINT_THREADS
 * workers.
 */
static int
run_window (struct copy *cp)
{
  pthread_t th[POINT_THREADS];
  size_t nth = cp->nreqs < POINT_THREADS ? cp->nreqs : POINT_THREADS;
  size_t started = 0;

  atomic_store (&cp->next, 0);
  for (; started < nth; started++) {
    int r = pthread_create (&th[started], NULL, worker, cp);

    if (r != 0) {
      if (started > 0)
        break;                  /* fewer workers will do */
      vv_error_errno (r, "cannot start a thread to read %s", cp->pt->what);
      return -1;
    }
  }
  for (size_t i = 0; i < started; i++)
    pthread_join (th[i], NULL);
  if (cp->failed) {
    vv_restore_restore_error (&cp->err);
    return -1;
  }
  return 0;
}

int
vv_point_copy (struct vv_point *pt, vv_point_sink sink, void *opaque,
               struct vv_progress *p)
{
  struct copy cp = {
    .pt = pt, .sink = sink, .opaque = opaque, .p = p,
  };
  int ret = -1;

  pthread_mutex_init (&cp.lock, NULL);
  /* A window has at most one piece and one request per cluster. */
  cp.pieces = malloc (VV_QCOW2_L2_ENTRIES * sizeof *cp.pieces);
  cp.reqs = malloc (VV_QCOW2_L2_ENTRIES * sizeof *cp.reqs);
  cp.last = calloc (pt->n, sizeof *cp.last);
  if (cp.pieces == NULL || cp.reqs == NULL || cp.last == NULL) {
    vv_error_errno (ENOMEM, "reading %s", pt->what);
    goto out;
  }
  for (uint64_t w = 0; w < vv_qcow2_merge_windows (pt->virtual_size); w++) {
    if (vv_progress_cancelled (p)) {
      vv_error_code (VV_ERR_CANCELLED, "reading %s was cancelled", pt->what);
      goto out;
    }
    if (vv_point_merge (pt, w, pt->src) == -1)
      goto out;
    cp.npieces = 0;
    memset (cp.last, 0, pt->n * sizeof *cp.last);
    for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
      const struct vv_qcow2_source *s = &pt->src[j];

      if (s->layer != VV_QCOW2_NO_LAYER && s->valid > 0)
        add_piece (&cp, s->layer, s->host,
                   w * VV_QCOW2_L2_COVERAGE + j * CS, s->valid);
    }
    if (cp.npieces == 0)
      continue;
    qsort (cp.pieces, cp.npieces, sizeof *cp.pieces, cmp_piece);
    make_requests (&cp);
    if (run_window (&cp) == -1)
      goto out;
  }
  ret = 0;
 out:
  free (cp.pieces);
  free (cp.reqs);
  free (cp.last);
  free (cp.err.message);
  pthread_mutex_destroy (&cp.lock);
  return ret;
}
