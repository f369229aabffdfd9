/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The target layer over one plugin handle: name checks before anything
 * reaches a plugin, sha256 and byte counts while writing, whole-object
 * reads, prefix removal and the generic round-trip test.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"
#include "target/block-digests.h"
#include "target/target.h"

/* Same limit as the API's target names (docs/api.md). */
#define TARGET_NAME_MAX 64
/* More params than any plugin has keys is a mistake, not a config. */
#define TARGET_PARAMS_MAX 64
/* Objects removed by one vv_target_remove_prefix: a backup holds a few
 * per disk, a domain's whole tree a few thousand.
 */
#define REMOVE_PREFIX_MAX 1000000
/* Writes at least this big are hashed on the writer's hashing thread
 * while the plugin stores them: sha256 (about 1.8 GB/s with SHA
 * extensions) costs as much as the plugin's write, and doing both one
 * after the other made the hash the bottleneck of a backup.  Smaller
 * writes are not worth the hand-over.
 */
#define HASH_THREAD_MIN (256 * 1024)

/* Objects removed per remove_many call. */
#define REMOVE_MANY_BATCH 1000

struct vv_target {
  char *name;
  char *url;
  const struct virtvault_plugin *plugin;
  void *handle;
  struct virtvault_caps caps;
};

struct vv_target_reader {
  struct vv_target *t;
  char *name;
  void *rh;                     /* plugin read handle, or NULL: use get */
  uint64_t size;
};

/* The hashing thread of one writer.  It hashes one buffer at a time,
 * handed over by vv_target_put_write, which waits for it before it
 * returns: the caller's buffer stays valid and the digest covers the
 * writes in order, exactly as if hashed inline.  The block digests, when
 * asked for, are built on the same thread right after the sha256: the
 * buffer is then still in the cache, and the copy thread stays free for
 * the plugin's write.
 */
struct hasher {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;          /* work posted, work done or quit */
  struct vv_sha256 *sha;
  struct vv_block_hasher *blocks;       /* or NULL */
  bool whole_from_blocks;       /* blocks gives the object's SHA-256 */
  const void *buf;              /* non-NULL: work posted, not yet done */
  size_t count;
  bool quit;
  /* The first failure of the block hasher, whose message is the
   * hashing thread's: the writer reports it on its own thread.
   */
  bool blocks_failed;
  char blocks_err[512];
};

struct vv_target_writer {
  struct vv_target *t;
  void *stream;
  struct vv_sha256 *sha;
  struct vv_block_hasher *blocks;       /* the caller's, or NULL */
  struct hasher *hasher;        /* NULL until the first big write */
  bool no_hasher;               /* could not start one: hash inline */
  uint64_t bytes;
  uint64_t size;                /* announced size or VIRTVAULT_SIZE_UNKNOWN */
  bool failed;
};

/* Replaces the code of the current message and prefixes it with the
 * target's name.
 */
static void
recode_error (enum vv_errcode code, const char *target_name)
{
  vv_error_prefix ("target '%s': ", target_name);
  vv_error_set_code (code);
}

/* A plugin that fails is supposed to have said why; if it did not, say
 * at least which plugin and which operation.
 */
static void
plugin_failed (const struct vv_target *t, const char *op, const char *obj)
{
  if (vv_get_error ()[0] == '\0')
    vv_error ("storage plugin '%s' failed to %s%s%s on target '%s' "
              "without saying why", t->plugin->name, op,
              obj ? " " : "", obj ? obj : "", t->name);
}

/* Checks a name before any plugin sees it; see virtvault-plugin.h. */
static int
check_object_name (const struct vv_target *t, const char *what,
                   const char *name, bool is_prefix)
{
  size_t len, i, start;

  if (name == NULL) {
    vv_error_code (VV_ERR_INVALID, "%s missing", what);
    return -1;
  }
  len = strnlen (name, VIRTVAULT_PLUGIN_NAME_MAX + 1);
  if (len > VIRTVAULT_PLUGIN_NAME_MAX) {
    vv_error_code (VV_ERR_INVALID, "%s '%.40s...' is longer than %d bytes",
                   what, name, VIRTVAULT_PLUGIN_NAME_MAX);
    return -1;
  }
  /* A prefix is "" or a name followed by '/'. */
  if (is_prefix) {
    if (len == 0)
      return 0;
    if (name[len - 1] != '/')
      goto bad;
    len--;
  }
  if (len == 0)
    goto bad;
  for (i = 0, start = 0; i <= len; i++) {
    unsigned char c = i < len ? name[i] : '/';

    if (c == '/') {
      size_t n = i - start;
      if (n == 0 ||
          (n == 1 && name[start] == '.') ||
          (n == 2 && name[start] == '.' && name[start + 1] == '.'))
        goto bad;
      start = i + 1;
    }
    else if (c < 0x20 || c > 0x7e || c == '\\')
      goto bad;
  }
  return 0;

 bad:
  vv_error_code (VV_ERR_INVALID,
                 "invalid %s '%.*s' for target '%s': names are relative "
                 "paths of printable characters, without backslashes, "
                 "empty, '.' or '..' components",
                 what, (int) strnlen (name, 200), name, t->name);
  return -1;
}

struct vv_target *
vv_target_open (const char *name, const char *url, const char *const *params)
{
  _cleanup_free_ struct vv_target *t = NULL;
  char scheme[64];
  size_t i;

  if (vv_check_name ("target name", name, TARGET_NAME_MAX) == -1)
    return NULL;
  if (url == NULL || strnlen (url, VV_TARGET_URL_MAX + 1) > VV_TARGET_URL_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "URL of target '%s' is missing or longer than %d bytes",
                   name, VV_TARGET_URL_MAX);
    return NULL;
  }
  for (i = 0; url[i]; i++)
    if ((unsigned char) url[i] < 0x20 || url[i] == 0x7f) {
      vv_error_code (VV_ERR_INVALID,
                     "URL of target '%s' contains control characters", name);
      return NULL;
    }
  for (i = 0; params && params[i]; i++) {
    const char *eq = strchr (params[i], '=');
    if (i >= TARGET_PARAMS_MAX ||
        strnlen (params[i], VV_TARGET_URL_MAX + 1) > VV_TARGET_URL_MAX ||
        eq == NULL || eq == params[i]) {
      /* Only the key, if any: the value may be a secret. */
      int keylen = eq ? (int) (eq - params[i]) : 0;
      vv_error_code (VV_ERR_INVALID,
                     "bad parameter %zu%s%.*s%s of target '%s' (its value "
                     "is not shown): parameters are at most %d key=value "
                     "strings of at most %d bytes", i + 1,
                     keylen ? " '" : "", keylen > 64 ? 64 : keylen,
                     params[i], keylen ? "=...'" : "",
                     name, TARGET_PARAMS_MAX, VV_TARGET_URL_MAX);
      return NULL;
    }
  }

  if (vv_url_scheme (url, scheme, sizeof scheme) == -1) {
    vv_error_prefix ("target '%s': ", name);
    return NULL;
  }
  t = calloc (1, sizeof *t);
  if (t == NULL) {
    vv_error_errno (errno, "opening target '%s'", name);
    return NULL;
  }
  t->plugin = vv_plugin_for_scheme (scheme);
  if (t->plugin == NULL) {
    vv_error_prefix ("target '%s': ", name);
    return NULL;
  }
  if ((t->name = vv_strdup (name)) == NULL ||
      (t->url = vv_strdup (url)) == NULL) {
    free (t->name);
    return NULL;
  }

  static const char *const no_params[] = { NULL };
  vv_clear_error ();
  t->handle = t->plugin->open (url, params ? params : no_params);
  if (t->handle == NULL) {
    plugin_failed (t, "open", url);
    /* A bad URL or parameter is the caller's mistake. */
    recode_error (VV_ERR_INVALID, name);
    free (t->name);
    free (t->url);
    return NULL;
  }
  /* Without the callback: the version 1 contract. */
  t->caps._struct_size = sizeof t->caps;
  t->caps.flags = VIRTVAULT_CAP_ATOMIC_PUBLISH | VIRTVAULT_CAP_DURABLE_COMMIT;
  if (t->plugin->open_local)
    t->caps.flags |= VIRTVAULT_CAP_LOCAL_FILES;
  if (t->plugin->capabilities) {
    struct virtvault_caps c = { ._struct_size = sizeof c };

    vv_clear_error ();
    if (t->plugin->capabilities (t->handle, &c, 0) == -1) {
      plugin_failed (t, "say what it can do", NULL);
      vv_error_prefix ("target '%s': ", name);
      if (t->plugin->close)
        t->plugin->close (t->handle);
      free (t->name);
      free (t->url);
      return NULL;
    }
    c._struct_size = sizeof c;
    t->caps = c;
  }
  if (t->caps.max_parallel_reads == 0 || t->plugin->read_open == NULL)
    t->caps.max_parallel_reads = 1;
  return TAKE_PTR (t);
}

const struct virtvault_caps *
vv_target_caps (const struct vv_target *t)
{
  return &t->caps;
}

struct vv_target *
vv_target_close (struct vv_target *t)
{
  if (t) {
    if (t->plugin->close)
      t->plugin->close (t->handle);
    free (t->name);
    free (t->url);
    free (t);
  }
  return NULL;
}

const char *
vv_target_name (const struct vv_target *t)
{
  return t->name;
}

const char *
vv_target_url (const struct vv_target *t)
{
  return t->url;
}

/* Without a test callback: write, stat, read back and remove a probe. */
static int
round_trip_test (struct vv_target *t)
{
  char id[VV_ID_MAX], name[64], data[128], back[128];
  uint64_t size;
  int64_t n;
  int r;

  if (vv_random_id ("probe", id) == -1)
    return -1;
  snprintf (name, sizeof name, ".virtvault-test/%s", id);
  snprintf (data, sizeof data, "virtvault target test probe %s\n", id);
  if (vv_target_put_buffer (t, name, data, strlen (data), NULL) == -1)
    return -1;
  r = vv_target_stat (t, name, &size);
  if (r != 1 || size != strlen (data)) {
    if (r == 0 || r == 1)
      vv_error ("probe object %s written to target '%s' %s", name, t->name,
                r == 0 ? "is not there" : "has the wrong size");
    goto fail;
  }
  n = vv_target_get (t, name, back, sizeof back, 0);
  if (n == -1)
    goto fail;
  if ((size_t) n != strlen (data) || memcmp (back, data, n) != 0) {
    vv_error ("probe object %s read back from target '%s' differs from "
              "what was written", name, t->name);
    goto fail;
  }
  return vv_target_remove (t, name);

 fail:
  {
    char saved[2048];
    enum vv_errcode code = vv_get_error_code ();

    snprintf (saved, sizeof saved, "%s", vv_get_error ());
    vv_target_remove (t, name);
    vv_error_code (code, "%s", saved);
  }
  return -1;
}

int
vv_target_test (struct vv_target *t)
{
  int r;

  if (t->plugin->test) {
    vv_clear_error ();
    r = t->plugin->test (t->handle);
    if (r == -1)
      plugin_failed (t, "test", NULL);
  }
  else
    r = round_trip_test (t);
  if (r == -1) {
    /* Whatever the plugin found, the target cannot be used now. */
    recode_error (VV_ERR_UNAVAILABLE, t->name);
    return -1;
  }
  return 0;
}

struct vv_target_writer *
vv_target_put_begin (struct vv_target *t, const char *name)
{
  return vv_target_put_begin_sized (t, name, VIRTVAULT_SIZE_UNKNOWN);
}

struct vv_target_writer *
vv_target_put_begin_sized (struct vv_target *t, const char *name,
                           uint64_t size)
{
  _cleanup_free_ struct vv_target_writer *w = NULL;

  if (check_object_name (t, "object name", name, false) == -1)
    return NULL;
  /* Refused before the caller reads anything to write. */
  if (size != VIRTVAULT_SIZE_UNKNOWN && t->caps.max_object_size &&
      size > t->caps.max_object_size) {
    vv_error_code (VV_ERR_INVALID,
                   "%s would be %" PRIu64 " bytes but target '%s' stores "
                   "objects of at most %" PRIu64 " bytes", name, size,
                   t->name, t->caps.max_object_size);
    return NULL;
  }
  w = calloc (1, sizeof *w);
  if (w == NULL) {
    vv_error_errno (errno, "writing %s to target '%s'", name, t->name);
    return NULL;
  }
  w->t = t;
  w->sha = vv_sha256_new ();
  if (w->sha == NULL)
    return NULL;
  vv_clear_error ();
  w->size = size;
  w->stream = t->plugin->put_begin2
    ? t->plugin->put_begin2 (t->handle, name, size, 0)
    : t->plugin->put_begin (t->handle, name);
  if (w->stream == NULL) {
    plugin_failed (t, "start writing", name);
    vv_sha256_free (w->sha);
    return NULL;
  }
  return TAKE_PTR (w);
}

static void *
hasher_thread (void *opaque)
{
  struct hasher *hs = opaque;

  VV_LOCK_GUARD (&hs->lock);
  for (;;) {
    while (hs->buf == NULL && !hs->quit)
      pthread_cond_wait (&hs->cond, &hs->lock);
    if (hs->buf == NULL)
      return NULL;
    pthread_mutex_unlock (&hs->lock);
    /* A sha256-chain hasher gives the object's SHA-256 as well. */
    if (!hs->whole_from_blocks)
      vv_sha256_update (hs->sha, hs->buf, hs->count);
    if (hs->blocks && !hs->blocks_failed
        && vv_block_hasher_update (hs->blocks, hs->buf, hs->count) == -1) {
      snprintf (hs->blocks_err, sizeof hs->blocks_err, "%s",
                vv_get_error ());
      hs->blocks_failed = true;
    }
    pthread_mutex_lock (&hs->lock);
    hs->buf = NULL;
    pthread_cond_broadcast (&hs->cond);
  }
}

static struct hasher *
hasher_free (struct hasher *hs)
{
  if (hs == NULL)
    return NULL;
  {
    VV_LOCK_GUARD (&hs->lock);
    hs->quit = true;
    pthread_cond_broadcast (&hs->cond);
  }
  pthread_join (hs->thread, NULL);
  pthread_mutex_destroy (&hs->lock);
  pthread_cond_destroy (&hs->cond);
  free (hs);
  return NULL;
}

/* NULL if no thread could be started; the caller then hashes inline,
 * which is only slower.
 */
static struct hasher *
hasher_new (struct vv_sha256 *sha, struct vv_block_hasher *blocks)
{
  struct hasher *hs = calloc (1, sizeof *hs);

  if (hs == NULL)
    return NULL;
  hs->sha = sha;
  hs->blocks = blocks;
  hs->whole_from_blocks = blocks != NULL
    && vv_block_hasher_kind (blocks) == VV_BLOCKS_HASH_SHA256_CHAIN;
  pthread_mutex_init (&hs->lock, NULL);
  pthread_cond_init (&hs->cond, NULL);
  if (pthread_create (&hs->thread, NULL, hasher_thread, hs) != 0) {
    pthread_mutex_destroy (&hs->lock);
    pthread_cond_destroy (&hs->cond);
    free (hs);
    return NULL;
  }
  return hs;
}

static void
hasher_post (struct hasher *hs, const void *buf, size_t count)
{
  VV_LOCK_GUARD (&hs->lock);
  hs->buf = buf;
  hs->count = count;
  pthread_cond_broadcast (&hs->cond);
}

static void
hasher_wait (struct hasher *hs)
{
  VV_LOCK_GUARD (&hs->lock);
  while (hs->buf != NULL)
    pthread_cond_wait (&hs->cond, &hs->lock);
}

/* The block digests also give the object's SHA-256: one pass, not two. */
static bool
whole_from_blocks (const struct vv_target_writer *w)
{
  return w->blocks
    && vv_block_hasher_kind (w->blocks) == VV_BLOCKS_HASH_SHA256_CHAIN;
}

int
vv_target_put_write (struct vv_target_writer *w, const void *buf,
                     size_t count)
{
  const struct vv_target *t = w->t;
  int r;

  if (w->failed) {
    vv_error ("write to target '%s' after an earlier write failed", t->name);
    return -1;
  }
  if (count == 0)
    return 0;
  if (w->size != VIRTVAULT_SIZE_UNKNOWN && count > w->size - w->bytes) {
    vv_error ("writing more than the %" PRIu64 " bytes announced to "
              "target '%s'", w->size, t->name);
    w->failed = true;
    return -1;
  }
  if (count >= HASH_THREAD_MIN && w->hasher == NULL && !w->no_hasher) {
    w->hasher = hasher_new (w->sha, w->blocks);
    w->no_hasher = w->hasher == NULL;
  }
  vv_clear_error ();
  if (count >= HASH_THREAD_MIN && w->hasher) {
    hasher_post (w->hasher, buf, count);
    r = t->plugin->put_write (w->stream, buf, count);
    hasher_wait (w->hasher);
  }
  else {
    r = t->plugin->put_write (w->stream, buf, count);
    if (r == 0) {
      if (!whole_from_blocks (w))
        vv_sha256_update (w->sha, buf, count);
      if (w->blocks && vv_block_hasher_update (w->blocks, buf, count) == -1) {
        w->failed = true;
        return -1;
      }
    }
  }
  if (r == -1) {
    plugin_failed (t, "write", NULL);
    w->failed = true;
    return -1;
  }
  if (w->hasher && w->hasher->blocks_failed) {
    vv_error ("%s", w->hasher->blocks_err);
    w->failed = true;
    return -1;
  }
  w->bytes += count;
  return 0;
}

void
vv_target_put_digest_blocks (struct vv_target_writer *w,
                             struct vv_block_hasher *blocks)
{
  /* Bytes already written would be missing from the digests. */
  if (w->bytes == 0 && w->hasher == NULL)
    w->blocks = blocks;
  else
    w->failed = true;
}

static void
writer_free (struct vv_target_writer *w)
{
  hasher_free (w->hasher);
  vv_sha256_free (w->sha);
  free (w);
}

int
vv_target_put_commit (struct vv_target_writer *w,
                      char ret_sha256[VV_SHA256_HEX], uint64_t *ret_bytes)
{
  const struct vv_target *t = w->t;
  char hex[VV_SHA256_HEX];

  if (w->failed) {
    vv_target_put_abort (w);
    vv_error_prefix ("not publishing on target '%s' after a failed write: ",
                     t->name);
    return -1;
  }
  if (w->size != VIRTVAULT_SIZE_UNKNOWN && w->bytes != w->size) {
    vv_error ("not publishing on target '%s': %" PRIu64 " bytes were "
              "written of the %" PRIu64 " announced", t->name, w->bytes,
              w->size);
    vv_target_put_abort (w);
    return -1;
  }
  vv_clear_error ();
  if (t->plugin->put_commit (w->stream) == -1) {
    plugin_failed (t, "publish", "an object");
    writer_free (w);
    return -1;
  }
  if (whole_from_blocks (w)) {
    if (vv_block_hasher_sha256 (w->blocks, hex) == -1) {
      writer_free (w);
      return -1;
    }
  }
  else
    vv_sha256_final (w->sha, hex);
  if (ret_sha256)
    memcpy (ret_sha256, hex, VV_SHA256_HEX);
  if (ret_bytes)
    *ret_bytes = w->bytes;
  writer_free (w);
  return 0;
}

void
vv_target_put_abort (struct vv_target_writer *w)
{
  char saved[2048];
  enum vv_errcode code;

  if (w == NULL)
    return;
  /* Aborting follows an error the caller still has to report. */
  code = vv_get_error_code ();
  snprintf (saved, sizeof saved, "%s", vv_get_error ());
  w->t->plugin->put_abort (w->stream);
  writer_free (w);
  if (code == VV_ERR_NONE)
    vv_clear_error ();
  else
    vv_error_code (code, "%s", saved);
}

int
vv_target_put_buffer (struct vv_target *t, const char *name,
                      const void *buf, size_t len,
                      char ret_sha256[VV_SHA256_HEX])
{
  struct vv_target_writer *w = vv_target_put_begin_sized (t, name, len);

  if (w == NULL)
    return -1;
  if (vv_target_put_write (w, buf, len) == -1) {
    vv_target_put_abort (w);
    return -1;
  }
  return vv_target_put_commit (w, ret_sha256, NULL);
}

int64_t
vv_target_get (struct vv_target *t, const char *name, void *buf,
               size_t count, uint64_t offset)
{
  int64_t n;

  if (check_object_name (t, "object name", name, false) == -1)
    return -1;
  vv_clear_error ();
  n = t->plugin->get (t->handle, name, buf, count, offset);
  if (n < 0) {
    plugin_failed (t, "read", name);
    return -1;
  }
  if ((uint64_t) n > count) {
    vv_error ("storage plugin '%s' returned more bytes than asked for "
              "reading %s", t->plugin->name, name);
    return -1;
  }
  return n;
}

struct vv_target_reader *
vv_target_reader_open (struct vv_target *t, const char *name,
                       uint64_t *ret_size)
{
  _cleanup_free_ struct vv_target_reader *r = NULL;

  if (check_object_name (t, "object name", name, false) == -1)
    return NULL;
  r = calloc (1, sizeof *r);
  if (r == NULL || (r->name = vv_strdup (name)) == NULL) {
    vv_error_errno (ENOMEM, "opening %s on target '%s'", name, t->name);
    return NULL;
  }
  r->t = t;
  vv_clear_error ();
  if (t->plugin->read_open) {
    r->rh = t->plugin->read_open (t->handle, name, &r->size, 0);
    if (r->rh == NULL) {
      plugin_failed (t, "open", name);
      free (r->name);
      return NULL;
    }
  }
  else {
    int e = vv_target_stat (t, name, &r->size);
    if (e != 1) {
      if (e == 0)
        vv_error_code (VV_ERR_NOT_FOUND, "object %s does not exist on "
                       "target '%s'", name, t->name);
      free (r->name);
      return NULL;
    }
  }
  if (ret_size)
    *ret_size = r->size;
  return TAKE_PTR (r);
}

int64_t
vv_target_reader_pread (struct vv_target_reader *r, void *buf, size_t count,
                        uint64_t offset)
{
  const struct vv_target *t = r->t;
  size_t done = 0;

  /* Plugins may return short reads before the end; the caller gets
   * count bytes or the rest of the object.
   */
  while (done < count) {
    int64_t n;

    vv_clear_error ();
    if (r->rh)
      n = t->plugin->pread (r->rh, (char *) buf + done, count - done,
                            offset + done, 0);
    else
      n = t->plugin->get (t->handle, r->name, (char *) buf + done,
                          count - done, offset + done);
    if (n < 0) {
      plugin_failed (t, "read", r->name);
      return -1;
    }
    if ((uint64_t) n > count - done) {
      vv_error ("storage plugin '%s' returned more bytes than asked for "
                "reading %s", t->plugin->name, r->name);
      return -1;
    }
    if (n == 0)
      break;
    done += n;
  }
  return done;
}

struct vv_target_reader *
vv_target_reader_close (struct vv_target_reader *r)
{
  if (r) {
    if (r->rh)
      r->t->plugin->read_close (r->rh);
    free (r->name);
    free (r);
  }
  return NULL;
}

unsigned
vv_target_reader_parallel (const struct vv_target_reader *r)
{
  return r->rh ? r->t->caps.max_parallel_reads : 1;
}

bool
vv_target_param_is_secret (const char *url, const char *param)
{
  const struct virtvault_plugin *p;
  const char *eq = param ? strchr (param, '=') : NULL;
  char scheme[64];

  if (eq == NULL)
    return false;
  /* Fail closed: if the plugin is gone, every value may be a secret. */
  if (vv_url_scheme (url, scheme, sizeof scheme) == -1 ||
      (p = vv_plugin_for_scheme (scheme)) == NULL) {
    vv_clear_error ();
    return true;
  }
  return vv_plugin_param_is_secret (p, param, eq - param);
}

bool
vv_target_has_local (const struct vv_target *t)
{
  return t->plugin->open_local != NULL;
}

int
vv_target_open_local (struct vv_target *t, const char *name)
{
  struct stat st;
  int fd;

  if (check_object_name (t, "object name", name, false) == -1)
    return -1;
  if (t->plugin->open_local == NULL) {
    vv_error ("storage plugin '%s' of target '%s' has no local files",
              t->plugin->name, t->name);
    return -1;
  }
  vv_clear_error ();
  fd = t->plugin->open_local (t->handle, name);
  if (fd < 0) {
    plugin_failed (t, "open", name);
    return -1;
  }
  /* The descriptor is read with pread and copy_file_range: a plugin bug
   * handing out something else must not go further.
   */
  if (fstat (fd, &st) == -1 || !S_ISREG (st.st_mode)) {
    close (fd);
    vv_error ("storage plugin '%s' opened %s on target '%s' as something "
              "other than a regular file", t->plugin->name, name, t->name);
    return -1;
  }
  return fd;
}

int
vv_target_read_all (struct vv_target *t, const char *name, size_t max,
                    char **ret_buf, size_t *ret_len)
{
  _cleanup_free_ char *buf = NULL;
  uint64_t size;
  size_t len = 0, alloc;
  int r;

  r = vv_target_stat (t, name, &size);
  if (r == -1)
    return -1;
  if (r == 0) {
    vv_error_code (VV_ERR_NOT_FOUND, "object %s does not exist on target "
                   "'%s'", name, t->name);
    return -1;
  }
  /* Leaves room for the probe byte and the NUL below. */
  if (max > SIZE_MAX / 4)
    max = SIZE_MAX / 4;
  if (size > max)
    goto too_big;
  /* Read until the end rather than trusting size, but never past max. */
  alloc = (size_t) size + 1;
  buf = malloc (alloc);
  if (buf == NULL) {
    vv_error_errno (errno, "reading %s from target '%s'", name, t->name);
    return -1;
  }
  for (;;) {
    int64_t n;

    if (len + 1 == alloc) {
      char *nb;
      if (len >= max + (size_t) 1)
        break;
      alloc = alloc * 2 > max + (size_t) 2 ? max + (size_t) 2 : alloc * 2;
      nb = realloc (buf, alloc);
      if (nb == NULL) {
        vv_error_errno (errno, "reading %s from target '%s'", name, t->name);
        return -1;
      }
      buf = nb;
    }
    n = vv_target_get (t, name, buf + len, alloc - 1 - len, len);
    if (n == -1)
      return -1;
    if (n == 0)
      break;
    len += n;
  }
  if (len > max)
    goto too_big;
  buf[len] = '\0';
  *ret_buf = TAKE_PTR (buf);
  if (ret_len)
    *ret_len = len;
  return 0;

 too_big:
  vv_error ("object %s on target '%s' is larger than the %zu bytes allowed",
            name, t->name, max);
  return -1;
}

int
vv_target_stat (struct vv_target *t, const char *name, uint64_t *ret_size)
{
  uint64_t size = 0;
  int r;

  if (check_object_name (t, "object name", name, false) == -1)
    return -1;
  vv_clear_error ();
  r = t->plugin->stat (t->handle, name, &size);
  if (r == -1) {
    plugin_failed (t, "stat", name);
    return -1;
  }
  if (r == 1 && ret_size)
    *ret_size = size;
  return r == 1;
}

struct checked_list {
  const struct vv_target *t;
  const char *prefix;
  virtvault_list_cb cb;
  void *opaque;
};

/* What a plugin lists comes from the target: only names that are valid
 * and below the prefix reach the caller (and are ever removed).
 */
static int
check_listed (void *opaque, const char *name, uint64_t size)
{
  struct checked_list *c = opaque;

  if (check_object_name (c->t, "listed object name", name, false) == -1)
    return -1;
  if (strncmp (name, c->prefix, strlen (c->prefix)) != 0) {
    vv_error ("target '%s' listed %.200s when asked for the objects below "
              "%s", c->t->name, name, c->prefix);
    return -1;
  }
  return c->cb (c->opaque, name, size);
}

int
vv_target_list (struct vv_target *t, const char *prefix,
                virtvault_list_cb cb, void *opaque)
{
  struct checked_list c = { .t = t, .prefix = prefix, .cb = cb,
                            .opaque = opaque };

  if (check_object_name (t, "prefix", prefix, true) == -1)
    return -1;
  vv_clear_error ();
  if (t->plugin->list (t->handle, prefix, check_listed, &c) == -1) {
    plugin_failed (t, "list", prefix);
    return -1;
  }
  return 0;
}

int
vv_target_remove (struct vv_target *t, const char *name)
{
  if (check_object_name (t, "object name", name, false) == -1)
    return -1;
  vv_clear_error ();
  if (t->plugin->remove (t->handle, name) == -1) {
    plugin_failed (t, "remove", name);
    return -1;
  }
  return 0;
}

struct name_list {
  char **names;
  size_t n, alloc;
  const struct vv_target *t;
};

static int
collect_name (void *opaque, const char *name, uint64_t size)
{
  struct name_list *l = opaque;

  if (l->n >= REMOVE_PREFIX_MAX) {
    vv_error ("more than %d objects to remove on target '%s'",
              REMOVE_PREFIX_MAX, l->t->name);
    return -1;
  }
  if (l->n + 1 >= l->alloc) {
    size_t na = l->alloc ? l->alloc * 2 : 64;
    char **nn = realloc (l->names, na * sizeof *nn);
    if (nn == NULL) {
      vv_error_errno (errno, "listing target '%s'", l->t->name);
      return -1;
    }
    l->names = nn;
    l->alloc = na;
  }
  if ((l->names[l->n] = vv_strdup (name)) == NULL)
    return -1;
  l->names[++l->n] = NULL;
  return 0;
}

int
vv_target_remove_prefix (struct vv_target *t, const char *prefix)
{
  struct name_list l = { .t = t };
  _cleanup_strv_ char **names = NULL;
  int r;
  size_t i;

  if (check_object_name (t, "prefix", prefix, true) == -1)
    return -1;
  if (prefix[0] == '\0') {
    vv_error_code (VV_ERR_INVALID, "refusing to remove everything on "
                   "target '%s': the prefix is empty", t->name);
    return -1;
  }
  /* Collect first: removing while a plugin walks its listing could make
   * it skip objects.
   */
  r = vv_target_list (t, prefix, collect_name, &l);
  names = l.names;
  if (r == -1)
    return -1;
  if (t->plugin->remove_many) {
    for (i = 0; i < l.n; i += REMOVE_MANY_BATCH) {
      size_t n = l.n - i < REMOVE_MANY_BATCH ? l.n - i : REMOVE_MANY_BATCH;

      vv_clear_error ();
      if (t->plugin->remove_many (t->handle, (const char *const *) names + i,
                                  n, 0) == -1) {
        plugin_failed (t, "remove", prefix);
        return -1;
      }
    }
  }
  else
    for (i = 0; i < l.n; i++)
      if (vv_target_remove (t, names[i]) == -1)
        return -1;
  if (t->plugin->remove_partial &&
      t->plugin->remove_partial (t->handle, prefix) == -1)
    return -1;
  return 0;
}
