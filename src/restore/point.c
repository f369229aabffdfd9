/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading a stored point with ranged, verified reads (point.h).
 *
 * The point's map is merged one window (one L2 table, 512 MiB of guest
 * space) at a time from the images' metadata, which is all in memory.
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
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "restore/point.h"
#include "target/block-digests.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/sha256.h"
#include "util/strutil.h"

#define CS VV_QCOW2_CLUSTER_SIZE
/* Metadata and digests of every image of a chain are held at once; a
 * chain needing more is refused (restore then downloads it instead).
 * A 1.5 GiB image has some 320 KiB of metadata and 192 KiB of digests.
 */
#define POINT_MEMORY_MAX (UINT64_C (256) << 20)
/* Longest piece and request: each worker holds one request's bytes, so
 * this times POINT_THREADS is the copy's memory; large enough that a
 * request's latency does not show on a remote target.
 */
#define PIECE_MAX (UINT64_C (4) << 20)
#define REQUEST_MAX (UINT64_C (4) << 20)
#define POINT_THREADS 4

struct layer {
  const struct vv_disk_rec *d;
  const char *backup_id;
  char *what;                   /* "vda.qcow2 of backup bk-... on target 'x'" */
  struct vv_target_reader *rd;
  unsigned parallel;            /* preads the reader takes at once */
  unsigned inflight;            /* under vv_point.lock */
  struct vv_block_digests dig;
  uint8_t *meta;                /* the first meta_len bytes, checked */
  uint64_t meta_len;
};

struct vv_point {
  struct vv_target *t;
  char *what;
  struct layer *layers;
  struct vv_qcow2_layer *chain;
  size_t n;
  uint64_t virtual_size;
  uint64_t memory;              /* metadata and digests held */
  struct vv_qcow2_merge *merge;
  struct vv_qcow2_source *src;  /* one window */
  pthread_mutex_t lock;
  pthread_cond_t slot;          /* a layer's reader has room */
  _Atomic uint64_t bytes_read;
  _Atomic uint64_t requests;
};

struct piece {
  uint32_t layer;
  uint64_t host, guest, len;
};

struct request {
  uint32_t layer;
  uint64_t start, end;          /* bytes of the image, whole blocks */
  size_t first, count;          /* its pieces */
};

int
vv_point_usable (const struct vv_restore_chain *c, const struct vv_disk_rec *d,
                 const char *target)
{
  size_t idx = 0, n = 0;

  while (d) {
    const struct vv_disk_rec *nd;
    size_t nidx;

    if (d->blocks_object == NULL || d->blocks_sha256 == NULL
        || d->block_size == 0 || d->metadata_bytes == 0)
      return 0;
    if (++n > VV_RESTORE_OPEN_MAX)
      return 0;
    /* The catalog alone says where the chain goes; the headers are
     * compared with it when the images are opened.
     */
    if (vv_restore_chain_backing (c, idx, d, target, d->backing, &nd,
                                  &nidx) == -1)
      return -1;
    d = nd;
    idx = nidx;
  }
  return 1;
}

/* Reads [off, off + len) of l's image whole into buf. */
static int
read_range (struct vv_point *pt, struct layer *l, void *buf, uint64_t off,
            uint64_t len)
{
  uint64_t done = 0;

  while (done < len) {
    int64_t n = vv_target_reader_pread (l->rd, (uint8_t *) buf + done,
                                        len - done, off + done);
    if (n == -1) {
      vv_error_prefix ("reading %s: ", l->what);
      return -1;
    }
    if (n == 0) {
      vv_error ("%s ended at byte %" PRIu64 " while being read; it should "
                "be %" PRIu64 " bytes", l->what, off + done,
                l->d->stored_bytes);
      return -1;
    }
    done += (uint64_t) n;
    atomic_fetch_add (&pt->bytes_read, (uint64_t) n);
    atomic_fetch_add (&pt->requests, 1);
  }
  return 0;
}

/* The qcow2 reader and checker see an image through its metadata only:
 * anything they ask for past metadata_bytes is not metadata the backup
 * wrote.
 */
static int64_t
meta_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  const struct layer *l = opaque;
  uint64_t limit = l->d->metadata_bytes;

  if (offset >= limit || count > limit - offset) {
    vv_error ("bytes %" PRIu64 "-%" PRIu64 " lie past the %" PRIu64
              " bytes of metadata the backup recorded", offset,
              offset + count, limit);
    return -1;
  }
  memcpy (buf, l->meta + offset, count);
  return (int64_t) count;
}

static int
charge (struct vv_point *pt, uint64_t bytes, const struct layer *l)
{
  if (bytes > POINT_MEMORY_MAX - pt->memory) {
    vv_error ("%s: the metadata and block digests of its chain need more "
              "than %" PRIu64 " MiB", l->what, POINT_MEMORY_MAX >> 20);
    return -1;
  }
  pt->memory += bytes;
  return 0;
}

static int
load_digests (struct vv_point *pt, struct layer *l)
{
  const struct vv_disk_rec *d = l->d;
  uint64_t want = vv_block_digests_len (d->stored_bytes, d->block_size);
  _cleanup_free_ char *buf = NULL, *what = NULL;
  char sha[VV_SHA256_HEX];
  size_t len;
  struct vv_sha256 *h;

  what = vv_printf ("the block digests of %s", l->what);
  if (what == NULL)
    return -1;
  if (want == 0 || want > SIZE_MAX - 1) {
    vv_error ("%s: the catalog records the block size %" PRIu32 ", which "
              "virtvault does not write", what, d->block_size);
    return -1;
  }
  if (charge (pt, want, l) == -1
      || vv_restore_check_object (l->backup_id, d->blocks_object) == -1)
    return -1;
  if (vv_target_read_all (pt->t, d->blocks_object, (size_t) want, &buf,
                          &len) == -1) {
    vv_error_prefix ("%s (object %s): ", what, d->blocks_object);
    return -1;
  }
  atomic_fetch_add (&pt->bytes_read, len);
  atomic_fetch_add (&pt->requests, 1);
  if ((h = vv_sha256_new ()) == NULL)
    return -1;
  vv_sha256_update (h, buf, len);
  vv_sha256_final (h, sha);
  vv_sha256_free (h);
  if (strcasecmp (sha, d->blocks_sha256) != 0) {
    vv_error ("%s are corrupt or were altered: their sha256 is %s, the "
              "catalog recorded %s", what, sha, d->blocks_sha256);
    return -1;
  }
  return vv_block_digests_parse (buf, len, d->stored_bytes, d->block_size,
                                 what, &l->dig);
}

static int
load_metadata (struct vv_point *pt, struct layer *l)
{
  const struct vv_disk_rec *d = l->d;
  uint64_t start, end;

  if (d->metadata_bytes > d->stored_bytes) {
    vv_error ("%s: the catalog records %" PRIu64 " bytes of metadata in an "
              "image of %" PRIu64, l->what, d->metadata_bytes,
              d->stored_bytes);
    return -1;
  }
  vv_block_digests_cover (&l->dig, 0, d->metadata_bytes, &start, &end);
  if (charge (pt, end, l) == -1)
    return -1;
  if ((l->meta = malloc (end)) == NULL) {
    vv_error_errno (ENOMEM, "reading %s", l->what);
    return -1;
  }
  l->meta_len = end;
  if (read_range (pt, l, l->meta, 0, end) == -1)
    return -1;
  return vv_block_digests_check (&l->dig, l->meta, 0, end, l->what);
}

/* Opens image d (chain position idx) as layer k and returns its header. */
static int
open_layer (struct vv_point *pt, const struct vv_restore_chain *c, size_t idx,
            const struct vv_disk_rec *d, size_t k,
            struct vv_qcow2_info *ret_info)
{
  struct layer *l = &pt->layers[k];
  struct vv_qcow2_layer *q = &pt->chain[k];
  const char *tname = vv_target_name (pt->t);
  uint64_t size;

  l->d = d;
  l->backup_id = c->v[idx]->id;
  l->what = vv_printf ("%s of backup %s on target '%s'",
                       vv_restore_object_base (d->object), l->backup_id,
                       tname);
  if (l->what == NULL)
    return -1;
  if (vv_restore_check_object (l->backup_id, d->object) == -1)
    return -1;
  if (d->format && strcmp (d->format, "qcow2") != 0) {
    vv_error ("%s is stored as '%s'; only qcow2 images can be restored",
              l->what, d->format);
    return -1;
  }
  l->rd = vv_target_reader_open (pt->t, d->object, &size);
  if (l->rd == NULL) {
    if (vv_get_error_code () == VV_ERR_NOT_FOUND
        || vv_get_error_plugin_errno () == ENOENT)
      vv_error ("%s is missing (object %s)", l->what, d->object);
    else
      vv_error_prefix ("%s: ", l->what);
    return -1;
  }
  l->parallel = vv_target_reader_parallel (l->rd);
  if (size != d->stored_bytes) {
    vv_error ("%s is corrupt: it is %" PRIu64 " bytes, expected %" PRIu64,
              l->what, size, d->stored_bytes);
    return -1;
  }
  if (load_digests (pt, l) == -1 || load_metadata (pt, l) == -1)
    return -1;
  if (vv_qcow2_check (meta_read, l, d->stored_bytes, ret_info) == -1) {
    vv_error_prefix ("%s is not a valid qcow2 image: ", l->what);
    return -1;
  }
  if (ret_info->virtual_size != d->virtual_size) {
    vv_error ("%s: its header gives a virtual size of %" PRIu64 " bytes, "
              "the catalog says %" PRIu64 "; it was altered on the target",
              l->what, ret_info->virtual_size, d->virtual_size);
    return -1;
  }
  if (vv_qcow2_reader_open (meta_read, l, d->stored_bytes, &q->r) == -1) {
    vv_error_prefix ("%s: ", l->what);
    return -1;
  }
  q->virtual_size = d->virtual_size;
  return 0;
}

int
vv_point_open (struct vv_target *t, const struct vv_restore_chain *c,
               const struct vv_disk_rec *d, const char *what,
               struct vv_point **ret)
{
  struct vv_point *pt;
  size_t idx = 0;

  pt = calloc (1, sizeof *pt);
  if (pt == NULL) {
    vv_error_errno (ENOMEM, "reading %s", what);
    return -1;
  }
  pthread_mutex_init (&pt->lock, NULL);
  pthread_cond_init (&pt->slot, NULL);
  pt->t = t;
  pt->what = vv_strdup (what);
  pt->layers = calloc (VV_RESTORE_OPEN_MAX, sizeof *pt->layers);
  pt->chain = calloc (VV_RESTORE_OPEN_MAX, sizeof *pt->chain);
  pt->merge = vv_qcow2_merge_new ();
  pt->src = malloc (VV_QCOW2_L2_ENTRIES * sizeof *pt->src);
  if (pt->what == NULL || pt->layers == NULL || pt->chain == NULL
      || pt->merge == NULL || pt->src == NULL) {
    vv_error_errno (ENOMEM, "reading %s", what);
    goto fail;
  }

  while (d) {
    struct vv_qcow2_info info = { 0 };
    const struct vv_disk_rec *nd;
    size_t nidx;
    int r;

    for (size_t k = 0; k < pt->n; k++)
      if (strcmp (pt->layers[k].d->object, d->object) == 0) {
        vv_error ("the chain of %s uses %s twice; the catalog is damaged",
                  what, d->object);
        goto fail;
      }
    if (pt->n == VV_RESTORE_OPEN_MAX) {
      vv_error ("the chain of %s is longer than %d images; restore an "
                "earlier backup of the chain", what, VV_RESTORE_OPEN_MAX);
      goto fail;
    }
    r = open_layer (pt, c, idx, d, pt->n++, &info);
    /* The header's backing name must be the catalog's, which says which
     * image comes next.
     */
    if (r == 0)
      r = vv_restore_chain_backing (c, idx, d, vv_target_name (t),
                                    info.backing_file, &nd, &nidx);
    vv_qcow2_info_clear (&info);
    if (r == -1)
      goto fail;
    d = nd;
    idx = nidx;
  }
  pt->virtual_size = pt->chain[0].virtual_size;
  *ret = pt;
  return 0;

 fail:
  vv_point_close (pt);
  return -1;
}

void
vv_point_close (struct vv_point *pt)
{
  if (pt == NULL)
    return;
  for (size_t k = 0; k < pt->n; k++) {
    vv_target_reader_close (pt->layers[k].rd);
    vv_block_digests_clear (&pt->layers[k].dig);
    free (pt->layers[k].meta);
    free (pt->layers[k].what);
    vv_qcow2_reader_free (pt->chain[k].r);
  }
  free (pt->layers);
  free (pt->chain);
  vv_qcow2_merge_free (pt->merge);
  free (pt->src);
  free (pt->what);
  pthread_cond_destroy (&pt->slot);
  pthread_mutex_destroy (&pt->lock);
  free (pt);
}

uint64_t
vv_point_virtual_size (const struct vv_point *pt)
{
  return pt->virtual_size;
}

void
vv_point_read_stats (const struct vv_point *pt, uint64_t *ret_bytes,
                     uint64_t *ret_requests)
{
  *ret_bytes = atomic_load (&pt->bytes_read);
  *ret_requests = atomic_load (&pt->requests);
}

static int
merge (struct vv_point *pt, uint64_t w)
{
  size_t k;

  if (vv_qcow2_merge_window (pt->merge, pt->chain, pt->n, pt->virtual_size,
                             w, pt->src, &k) == -1) {
    vv_error_prefix ("%s: ", pt->layers[k].what);
    return -1;
  }
  return 0;
}

int
vv_point_for_each_run (struct vv_point *pt,
                       int (*fn) (void *opaque, uint64_t offset,
                                  uint64_t len),
                       void *opaque)
{
  uint64_t run = 0, run_len = 0;

  for (uint64_t w = 0; w < vv_qcow2_merge_windows (pt->virtual_size); w++) {
    if (merge (pt, w) == -1)
      return -1;
    for (size_t j = 0; j < VV_QCOW2_L2_ENTRIES; j++) {
      const struct vv_qcow2_source *s = &pt->src[j];
      uint64_t goff = w * VV_QCOW2_L2_COVERAGE + j * CS;

      if (s->layer == VV_QCOW2_NO_LAYER || s->valid == 0)
        continue;
      if (run_len > 0 && run + run_len == goff) {
        run_len += s->valid;
        continue;
      }
      if (run_len > 0 && fn (opaque, run, run_len) == -1)
        return -1;
      run = goff;
      run_len = s->valid;
    }
  }
  if (run_len > 0 && fn (opaque, run, run_len) == -1)
    return -1;
  return 0;
}

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
  int r;

  pthread_mutex_lock (&pt->lock);
  while (l->inflight >= l->parallel)
    pthread_cond_wait (&pt->slot, &pt->lock);
  l->inflight++;
  pthread_mutex_unlock (&pt->lock);
  r = read_range (pt, l, buf, rq->start, rq->end - rq->start);
  pthread_mutex_lock (&pt->lock);
  l->inflight--;
  pthread_cond_broadcast (&pt->slot);
  pthread_mutex_unlock (&pt->lock);
  if (r == -1
      || vv_block_digests_check (&l->dig, buf, rq->start, rq->end,
                                 l->what) == -1)
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
    if (merge (pt, w) == -1)
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
