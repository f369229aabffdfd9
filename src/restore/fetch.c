/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "restore/restore-internal.h"
#include "target/block-digests.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/sha256.h"
#include "util/strutil.h"

/* More parameters than any plugin has keys. */
#define VV_TARGET_PARAMS_MAX 64

static void
cleanup_target_rec (struct vv_target_rec **r)
{
  vv_target_rec_free (*r);
}

/* params is the catalog's JSON array of "key=value" strings. */
static char **
parse_params (const char *target, const char *params)
{
  _cleanup_json_ json_object *a = NULL;
  _cleanup_strv_ char **v = NULL;
  size_t n;

  if (strlen (params) > VV_TARGET_URL_MAX) {
    vv_error ("the params of target '%s' are longer than %d bytes",
              target, VV_TARGET_URL_MAX);
    return NULL;
  }
  a = vv_json_parse ("the params of the target", params, strlen (params));
  if (a == NULL)
    return NULL;
  if (!json_object_is_type (a, json_type_array) ||
      (n = json_object_array_length (a)) > VV_TARGET_PARAMS_MAX) {
    vv_error ("the params of target '%s' in the catalog are not an array of "
              "at most %d strings", target, VV_TARGET_PARAMS_MAX);
    return NULL;
  }
  v = calloc (n + 1, sizeof *v);
  if (v == NULL) {
    vv_error_errno (ENOMEM, "reading the params of target '%s'", target);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    json_object *s = json_object_array_get_idx (a, i);
    if (!json_object_is_type (s, json_type_string)) {
      vv_error ("param %zu of target '%s' in the catalog is not a string",
                i, target);
      return NULL;
    }
    if ((v[i] = vv_strdup (json_object_get_string (s))) == NULL)
      return NULL;
  }
  return TAKE_PTR (v);
}

struct vv_target *
vv_restore_open_target (struct vv_engine *e, const char *name)
{
  _cleanup_ (cleanup_target_rec) struct vv_target_rec *r = NULL;
  _cleanup_strv_ char **params = NULL;

  r = vv_catalog_target_get (e->catalog, name);
  if (r == NULL)
    return NULL;
  if (r->params && (params = parse_params (name, r->params)) == NULL)
    return NULL;
  return vv_target_open (r->name, r->url, (const char *const *) params);
}

/* Hashing runs on its own thread, so reading the next piece and writing
 * this one overlap with hashing it: sha256 is the largest CPU cost of a
 * restore or verify, and on a network target the wait for the next
 * range is hidden too.
 */
struct hasher {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct vv_sha256 *h;
  struct vv_block_hasher *blocks;       /* verify: digests rebuilt, or NULL */
  bool whole_from_blocks;       /* blocks gives the object's SHA-256 */
  bool blocks_failed;           /* out of memory: nothing to compare */
  const void *buf;              /* piece waiting to be hashed, or NULL */
  size_t len;
  bool quit;
};

static void *
hasher_run (void *opaque)
{
  struct hasher *hs = opaque;

  pthread_mutex_lock (&hs->lock);
  for (;;) {
    while (hs->buf == NULL && !hs->quit)
      pthread_cond_wait (&hs->cond, &hs->lock);
    if (hs->buf == NULL)
      break;
    pthread_mutex_unlock (&hs->lock);
    if (!hs->whole_from_blocks)
      vv_sha256_update (hs->h, hs->buf, hs->len);
    if (hs->blocks && !hs->blocks_failed
        && vv_block_hasher_update (hs->blocks, hs->buf, hs->len) == -1)
      hs->blocks_failed = true;
    pthread_mutex_lock (&hs->lock);
    hs->buf = NULL;
    pthread_cond_broadcast (&hs->cond);
  }
  pthread_mutex_unlock (&hs->lock);
  return NULL;
}

/* Waits until the piece handed over last is hashed. */
static void
hasher_wait (struct hasher *hs)
{
  pthread_mutex_lock (&hs->lock);
  while (hs->buf != NULL)
    pthread_cond_wait (&hs->cond, &hs->lock);
  pthread_mutex_unlock (&hs->lock);
}

static void
hasher_submit (struct hasher *hs, const void *buf, size_t len)
{
  hasher_wait (hs);
  pthread_mutex_lock (&hs->lock);
  hs->buf = buf;
  hs->len = len;
  pthread_cond_broadcast (&hs->cond);
  pthread_mutex_unlock (&hs->lock);
}

static int
hasher_start (struct hasher *hs, struct vv_block_hasher *blocks)
{
  int r;

  pthread_mutex_init (&hs->lock, NULL);
  pthread_cond_init (&hs->cond, NULL);
  hs->buf = NULL;
  hs->quit = false;
  hs->blocks = blocks;
  hs->whole_from_blocks = blocks != NULL
    && vv_block_hasher_kind (blocks) == VV_BLOCKS_HASH_SHA256_CHAIN;
  hs->blocks_failed = false;
  if ((hs->h = vv_sha256_new ()) == NULL)
    goto fail;
  r = pthread_create (&hs->thread, NULL, hasher_run, hs);
  if (r != 0) {
    vv_error_errno (r, "cannot start a thread");
    goto fail;
  }
  return 0;
 fail:
  vv_sha256_free (hs->h);
  pthread_cond_destroy (&hs->cond);
  pthread_mutex_destroy (&hs->lock);
  return -1;
}

/* Finishes hashing and stops the thread; ret_hex may be NULL. */
static void
hasher_stop (struct hasher *hs, char ret_hex[VV_SHA256_HEX])
{
  pthread_mutex_lock (&hs->lock);
  hs->quit = true;
  pthread_cond_broadcast (&hs->cond);
  pthread_mutex_unlock (&hs->lock);
  pthread_join (hs->thread, NULL);
  /* A chain hasher that failed has no digest: the caller reports it. */
  if (ret_hex && hs->whole_from_blocks) {
    if (hs->blocks_failed
        || vv_block_hasher_sha256 (hs->blocks, ret_hex) == -1)
      memset (ret_hex, 0, VV_SHA256_HEX);
  }
  else if (ret_hex)
    vv_sha256_final (hs->h, ret_hex);
  vv_sha256_free (hs->h);
  pthread_cond_destroy (&hs->cond);
  pthread_mutex_destroy (&hs->lock);
}

static int
stream (struct vv_target *t, struct vv_target_reader *rd,
        const char *backup_id,
        const struct vv_disk_rec *d, uint64_t size, int fd, const char *path,
        char *buf, struct hasher *hs, struct vv_progress *p)
{
  const char *base = vv_restore_object_base (d->object);
  uint64_t off = 0;

  for (unsigned k = 0; off < size; k ^= 1) {
    /* Two halves: one is hashed while the other is filled. */
    char *piece = buf + (size_t) k * VV_RESTORE_BUF_SIZE;
    size_t want = size - off < VV_RESTORE_BUF_SIZE
                  ? (size_t) (size - off) : VV_RESTORE_BUF_SIZE;
    int64_t n;

    if (vv_progress_cancelled (p)) {
      vv_error_code (VV_ERR_CANCELLED, "cancelled while reading %s of "
                     "backup %s", base, backup_id);
      return -1;
    }
    n = vv_target_reader_pread (rd, piece, want, off);
    if (n == -1) {
      vv_error_prefix ("reading %s of backup %s from target '%s': ",
                       base, backup_id, vv_target_name (t));
      return -1;
    }
    if (n == 0) {
      vv_error ("%s of backup %s on target '%s' ended at byte %" PRIu64
                " while being read; it should be %" PRIu64 " bytes",
                base, backup_id, vv_target_name (t), off, size);
      return -1;
    }
    hasher_submit (hs, piece, n);
    if (fd >= 0 && vv_restore_pwrite (fd, piece, n, off, path) == -1)
      return -1;
    off += n;
    vv_progress_add (p, n);
  }
  return 0;
}

int
vv_restore_write_failed (int err, const char *path)
{
  const char *staging = strstr (path, "/" VV_RESTORE_STAGING_PREFIX);

  if (err != ENOSPC && err != EDQUOT) {
    vv_error_errno (err, "cannot write %s", path);
    return -1;
  }
  if (staging == NULL)
    staging = strrchr (path, '/');
  vv_error ("no space left in %.*s for the restored disks (%s); make room "
            "there or restore to another directory",
            staging && staging > path ? (int) (staging - path) : 1,
            staging && staging > path ? path : "/", strerror (err));
  return -1;
}

int
vv_restore_open_direct (int out_fd)
{
  char path[64];

  snprintf (path, sizeof path, "/proc/self/fd/%d", out_fd);
  return open (path, O_WRONLY | O_DIRECT | O_CLOEXEC);
}

int
vv_restore_pwrite_direct (int fd, const void *buf, size_t len,
                          uint64_t offset)
{
  size_t done = 0;

  while (done < len) {
    ssize_t n = pwrite (fd, (const char *) buf + done, len - done,
                        offset + done);

    if (n > 0) {
      done += n;
      continue;
    }
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1 && errno == EINVAL && done == 0)
      return 0;
    if (n == 0)
      errno = EIO;
    return -1;
  }
  return 1;
}

int
vv_restore_write_stream (void *opaque, const void *buf, size_t count)
{
  struct vv_restore_out_stream *o = opaque;

  if (vv_restore_pwrite (o->fd, buf, count, o->off, o->path) == -1)
    return -1;
  o->off += count;
  return 0;
}

int
vv_restore_pwrite (int fd, const void *buf, size_t count, uint64_t offset,
                   const char *path)
{
  size_t done = 0;

  while (done < count) {
    ssize_t n = pwrite (fd, (const char *) buf + done, count - done,
                        offset + done);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      return vv_restore_write_failed (errno, path);
    }
    done += n;
  }
  return 0;
}

int64_t
vv_restore_pread_fd (void *opaque, void *buf, size_t count, uint64_t offset)
{
  int fd = *(int *) opaque;
  size_t done = 0;

  while (done < count) {
    ssize_t n = pread (fd, (char *) buf + done, count - done, offset + done);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      vv_error_errno (errno, "read");
      return -1;
    }
    if (n == 0)
      break;
    done += n;
  }
  return done;
}

static int
fetch (struct vv_target *t, const char *backup_id,
       const struct vv_disk_rec *d, int fd, const char *path, void *buf,
       struct vv_block_hasher *blocks, struct vv_progress *p)
{
  const char *base = vv_restore_object_base (d->object);
  struct vv_target_reader *rd;
  struct hasher hs;
  char sha[VV_SHA256_HEX];
  uint64_t size;
  int r;

  /* One open object for all the ranged reads (one SFTP handle, one
   * HEAD on S3), not an open per piece.
   */
  rd = vv_target_reader_open (t, d->object, &size);
  if (rd == NULL) {
    if (vv_get_error_code () == VV_ERR_NOT_FOUND ||
        vv_get_error_plugin_errno () == ENOENT)
      vv_error ("%s of backup %s is missing on target '%s' (object %s)",
                base, backup_id, vv_target_name (t), d->object);
    else
      vv_error_prefix ("%s of backup %s on target '%s': ",
                       base, backup_id, vv_target_name (t));
    return -1;
  }
  /* Reading exactly the recorded size (never past the end) keeps ranged
   * gets valid on every kind of target.
   */
  if (size != d->stored_bytes) {
    vv_error ("%s of backup %s is corrupt on target '%s': it is %" PRIu64
              " bytes, expected %" PRIu64, base, backup_id,
              vv_target_name (t), size, d->stored_bytes);
    vv_target_reader_close (rd);
    return -1;
  }

  if (hasher_start (&hs, blocks) == -1) {
    vv_target_reader_close (rd);
    return -1;
  }
  r = stream (t, rd, backup_id, d, size, fd, path, buf, &hs, p);
  hasher_stop (&hs, r == 0 ? sha : NULL);
  vv_target_reader_close (rd);
  if (r == -1)
    return -1;
  if (hs.blocks_failed) {
    vv_error_errno (ENOMEM, "checking the blocks of %s of backup %s", base,
                    backup_id);
    return -1;
  }

  if (d->sha256 == NULL || strcasecmp (sha, d->sha256) != 0) {
    vv_error ("%s of backup %s is corrupt on target '%s': sha256 is %s, "
              "expected %s", base, backup_id, vv_target_name (t), sha,
              d->sha256 ? d->sha256 : "(none recorded)");
    return -1;
  }
  return 0;
}

int
vv_restore_fetch (struct vv_target *t, const char *backup_id,
                  const struct vv_disk_rec *d, int fd, const char *path,
                  void *buf, struct vv_progress *p)
{
  return fetch (t, backup_id, d, fd, path, buf, NULL, p);
}

static void
cleanup_block_hasher (struct vv_block_hasher **h)
{
  vv_block_hasher_free (*h);
}

int
vv_restore_fetch_check_blocks (struct vv_target *t, const char *backup_id,
                               const struct vv_disk_rec *d,
                               const struct vv_block_digests *want,
                               void *buf, struct vv_progress *p)
{
  _cleanup_ (cleanup_block_hasher) struct vv_block_hasher *h = NULL;
  _cleanup_free_ uint8_t *got = NULL;
  const char *base = vv_restore_object_base (d->object);
  size_t len;

  if ((h = vv_block_hasher_new_kind (want->block_size, want->kind)) == NULL
      || fetch (t, backup_id, d, -1, NULL, buf, h, p) == -1
      || vv_block_hasher_finish (h, &got, &len) == -1)
    return -1;
  /* The image matched its sha256, so a difference is in the sidecar:
   * the one the catalog trusts describes another image.
   */
  if (len != VV_BLOCKS_HEADER_LEN + want->count * VV_BLOCK_DIGEST_LEN) {
    vv_error ("the block digests of %s of backup %s on target '%s' "
              "describe %" PRIu64 " blocks; the image has %zu", base,
              backup_id, vv_target_name (t), want->count,
              (len - VV_BLOCKS_HEADER_LEN) / VV_BLOCK_DIGEST_LEN);
    return -1;
  }
  for (uint64_t i = 0; i < want->count; i++) {
    const uint8_t *a = got + VV_BLOCKS_HEADER_LEN + i * VV_BLOCK_DIGEST_LEN;
    const uint8_t *b = want->digests + i * VV_BLOCK_DIGEST_LEN;

    if (memcmp (a, b, VV_BLOCK_DIGEST_LEN) != 0) {
      char ha[VV_SHA256_HEX], hb[VV_SHA256_HEX];

      vv_sha256_to_hex (a, ha);
      vv_sha256_to_hex (b, hb);
      vv_error ("the block digests of %s of backup %s on target '%s' (%s) "
                "do not match the image: block %" PRIu64 " (at byte %" PRIu64
                ") has sha256 %s, the sidecar says %s", base, backup_id,
                vv_target_name (t), d->blocks_object, i,
                i * want->block_size, ha, hb);
      return -1;
    }
  }
  return 0;
}

int
vv_restore_check_domain_xml (const struct vv_backup_rec *b, const char *xml,
                             size_t len)
{
  char sha[VV_SHA256_HEX];

  if (b->domain_xml_sha256 == NULL)
    return 0;
  if (vv_sha256_hex (xml, len, sha) == -1)
    return -1;
  if (strcasecmp (sha, b->domain_xml_sha256) != 0) {
    vv_error ("the domain XML of backup %s on target '%s' is corrupt or "
              "was altered: its sha256 is %s, the catalog recorded %s; it "
              "is not used", b->id, b->target, sha, b->domain_xml_sha256);
    return -1;
  }
  return 0;
}
