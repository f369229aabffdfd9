/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The nfs storage plugin: objects are files on an NFS export reached with
 * libnfs in user space (no kernel mount), nfs://server[:port]/path.
 *
 * Object "a/b/c" is the file PATH/a/b/c on the export.  A put creates
 * PATH/a/b/.c.nfspart-XXXXXXXXXXXX with O_EXCL, writes it with wsize
 * WRITEs, 8 in flight at once (nfs-io.c), COMMITs it (fsync),
 * hard-links it to its final name (LINK
 * fails if the name exists: nothing is ever replaced) and removes the
 * temporary name.  A server without hard links (NFS4ERR_NOTSUPP) gets a
 * rename after checking the final name is free; between the check and
 * the rename another writer could publish the same name and be replaced
 * (names are unique per backup, so only a foreign writer can race).
 *
 * The target is untrusted: names from READDIR are checked, listing depth
 * and size are bounded, symbolic links are never followed (files are
 * opened with O_NOFOLLOW and checked to be regular files; directories on
 * the way are looked up with lstat), and a read never returns more than
 * the size the open file had.
 *
 * Cancellation: a put stream and a read handle keep the job of the
 * thread that opened them (the host may read from threads of no job);
 * the WRITE/READ pipeline and the back-off ask about that job.
 *
 * Threading: a libnfs context is not thread-safe.  Each handle has one
 * context, connected on first use, and a mutex around every use of it.
 * Every RPC has a timeout (timeout=, default 30 s), so a dead server
 * fails a call with ETIMEDOUT instead of hanging; the context is then
 * dropped and the next call reconnects.  Idempotent calls (lookups,
 * reads, listings, removes) are retried with back-off; a put never is.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#include <virtvault-plugin.h>

#include "nfs-io.h"
#include "nfs-url.h"
#include "plugin-err.h"
#include "plugin-job.h"
#include "plugin-name.h"

#define NFS_CONFIG_HELP                                                 \
  "version=3|4        NFS version (default 3; also ?version= in the URL)\n" \
  "nfsport=N          NFS server port (default 2049 for v4, the "        \
  "portmapper for v3)\n"                                                \
  "mountport=N        MOUNT port for version 3 (default: the portmapper)\n" \
  "timeout=SECONDS    timeout of one request (default 30)\n"

#define TEMP_TAG ".nfspart-"
#define TEMP_RANDOM 12
#define TRIES 4                     /* idempotent calls: 1 + 3 retries */
#define BACKOFF_MS 250              /* first back-off, doubled each time */
#define LIST_MAX_DEPTH 16
#define LIST_MAX_ENTRIES 1000000
#define DIR_MAX_ENTRIES 100000
#define NAME_COMPONENT_MAX 255
#define DEFAULT_IO_SIZE (1024 * 1024)
#define IO_CHUNK_MAX (1024 * 1024)
#define NFS4_WRITE_MAX 3072

static const struct virtvault_host *host;

struct nfs_target {
  char *url;                        /* for messages */
  struct nfs_url_parts u;
  pthread_mutex_t lock;
  struct nfs_context *nfs;          /* NULL until connected */
  uint64_t generation;              /* bumped at each (re)connect */
  uint32_t rsize, wsize;
};

struct nfs_put {
  struct nfs_target *h;
  char *name;                       /* object name, for messages */
  char *path;                       /* final path on the export */
  char *tmp;                        /* temporary path */
  struct nfsfh *fh;
  uint64_t gen;                     /* context the fh belongs to */
  uint64_t written;
  uint64_t expected;                /* or VIRTVAULT_SIZE_UNKNOWN */
  bool failed;
  struct plugin_job job;            /* of put_begin's thread */
};

struct nfs_reader {
  struct nfs_target *h;
  char *name;
  char *path;
  struct nfsfh *fh;
  uint64_t gen;
  uint64_t size;
  uint64_t ino;
  /* The job of read_open's thread: the host may pread from threads of
   * its own, which belong to no job.
   */
  struct plugin_job job;
};

/* ---- errors ---- */

#define report plugin_error

/* libnfs returns -errno; a timeout or a lost connection comes back as
 * EIO or EFAULT with a message naming it.  Classify for the host.
 */
static int
classify (struct nfs_target *h, int r)
{
  int e = r < 0 ? -r : EIO;
  const char *msg = h->nfs ? nfs_get_error (h->nfs) : NULL;

  if (msg && (strstr (msg, "timed out") || strstr (msg, "timeout")))
    return ETIMEDOUT;
  if (e == EFAULT && nfs_io_status_errno (msg))
    return nfs_io_status_errno (msg);
  if (msg && (strstr (msg, "onnection") || strstr (msg, "socket") ||
              strstr (msg, "reconnect") || strstr (msg, "nfs_service")))
    return ECONNRESET;
  if (e == EFAULT || e == EPIPE)
    return ECONNRESET;
  return e;
}

/* A lost connection often shows as a plain EIO from libnfs. */
static bool
transient (int e)
{
  return plugin_err_transient (e) || e == EIO;
}

static const char *
cause (struct nfs_target *h, int e)
{
  const char *msg = h->nfs ? nfs_get_error (h->nfs) : NULL;
  if (e == ETIMEDOUT)
    return "the server did not answer in time";
  if (e == ECONNRESET)
    return "the connection to the server was lost";
  if (msg && *msg && e != ENOENT && e != EEXIST && e != EACCES &&
      e != ENOSPC && e != EDQUOT && e != EROFS)
    return msg;
  return strerror (e);
}

static const char *
hint (int e)
{
  switch (e) {
  case EACCES: case EPERM:
    return " (check the export's access rights for this host and user)";
  case ENOSPC: case EDQUOT:
    return " (free space on the export or use another target)";
  case EROFS:
    return " (the export is read-only; export it read-write)";
  case ETIMEDOUT: case ECONNRESET: case ECONNREFUSED: case EHOSTUNREACH:
    return " (check that the NFS server is up and reachable)";
  default:
    return "";
  }
}

/* ---- connection ---- */

static void
disconnect (struct nfs_target *h)
{
  if (h->nfs) {
    nfs_destroy_context (h->nfs);
    h->nfs = NULL;
  }
}

/* With h->lock held. */
static int
ensure_connected (struct nfs_target *h)
{
  char lurl[1400];
  struct nfs_url *parsed;
  int r, e;

  if (h->nfs)
    return 0;
  h->nfs = nfs_init_context ();
  if (!h->nfs) {
    report (ENOMEM, "%s: cannot create an NFS context", h->url);
    return -1;
  }
  nfs_set_timeout (h->nfs, h->u.timeout_ms);
  /* libnfs's own reconnect loop retries without bound: reconnecting is
   * done here, between calls, and bounded.
   */
  nfs_set_autoreconnect (h->nfs, 0);
  /* Options such as nfsport have no setter in libnfs 4.0: they are set
   * by parsing a URL built from the already validated parts.
   */
  snprintf (lurl, sizeof lurl, "nfs://%s%s?version=%d", h->u.server,
            h->u.path, h->u.version);
  if (h->u.nfsport)
    snprintf (lurl + strlen (lurl), sizeof lurl - strlen (lurl),
              "&nfsport=%d", h->u.nfsport);
  if (h->u.mountport)
    snprintf (lurl + strlen (lurl), sizeof lurl - strlen (lurl),
              "&mountport=%d", h->u.mountport);
  parsed = nfs_parse_url_dir (h->nfs, lurl);
  if (!parsed) {
    report (EINVAL, "%s: libnfs refuses the URL: %s", h->url,
            nfs_get_error (h->nfs));
    disconnect (h);
    return -1;
  }
  nfs_destroy_url (parsed);
  r = nfs_mount (h->nfs, h->u.server, h->u.path);
  if (r != 0) {
    e = classify (h, r);
    if (e == EIO)
      e = ECONNREFUSED;
    report (e, "%s: cannot mount %s from %s (NFSv%d): %s%s", h->url,
            h->u.path, h->u.server, h->u.version, cause (h, e), hint (e));
    disconnect (h);
    return -1;
  }
  /* libnfs 4.0 fails to encode an NFSv4 WRITE of ganesha's 4 MiB
   * maximum ("ZDR error: Failed to encode COMPOUND4args"): requests are
   * at most 1 MiB, and 8 of them are in flight at once anyway.
   */
  h->rsize = (uint32_t) nfs_get_readmax (h->nfs);
  h->wsize = (uint32_t) nfs_get_writemax (h->nfs);
  if (h->rsize == 0 || h->rsize > IO_CHUNK_MAX)
    h->rsize = IO_CHUNK_MAX;
  if (h->wsize == 0 || h->wsize > IO_CHUNK_MAX)
    h->wsize = IO_CHUNK_MAX;
  /* libnfs 4.0 (Debian 12) cannot encode an NFSv4 WRITE above about
   * 3.5 KiB ("ZDR error: Failed to encode COMPOUND4args"), whatever the
   * server's maximum: NFSv4 writes go in small requests (slow; version=3
   * is the default for this reason).
   */
  if (h->u.version == 4 && h->wsize > NFS4_WRITE_MAX)
    h->wsize = NFS4_WRITE_MAX;
  h->generation++;
  return 0;
}

/* Sleep before retry number try (1, 2 ...) of a request for job.  -1 if
 * the job was cancelled.
 */
static int
backoff (const struct plugin_job *job, int try)
{
  struct plugin_err ignored;

  return plugin_backoff (job, try, BACKOFF_MS, &ignored);
}

/* ---- names ---- */

static bool
valid_name (const char *name)
{
  return plugin_valid_object_name (name, strlen (name), NAME_COMPONENT_MAX);
}

static bool
is_temp_name (const char *base)
{
  const char *t = strstr (base, TEMP_TAG);
  return base[0] == '.' && t && strlen (t) == sizeof TEMP_TAG - 1 + TEMP_RANDOM;
}

static int
check_name (struct nfs_target *h, const char *name)
{
  const char *base = strrchr (name, '/');
  base = base ? base + 1 : name;
  if (!valid_name (name) || is_temp_name (base) ||
      strlen (base) + sizeof TEMP_TAG + TEMP_RANDOM > NAME_COMPONENT_MAX) {
    report (EINVAL, "%s: invalid object name '%.100s'", h->url, name);
    return -1;
  }
  return 0;
}

/* Paths are relative to the mounted export's root, which libnfs treats
 * as "/".
 */
static char *
object_path (const char *name)
{
  char *p;
  if (asprintf (&p, "/%s", name) == -1)
    return NULL;
  return p;
}

/* ---- open / close ---- */

static int
nfs_plugin_load_host (const struct virtvault_host *h, uint32_t flags)
{
  if (flags) {
    errno = EINVAL;
    return -1;
  }
  host = h;
  return 0;
}

static void *
nfs_plugin_open (const char *url, const char *const *params)
{
  struct nfs_target *h;
  char err[256];

  h = calloc (1, sizeof *h);
  if (!h || !(h->url = strdup (url))) {
    free (h);
    report (ENOMEM, "out of memory");
    return NULL;
  }
  if (nfs_url_parse (url, params, &h->u, err, sizeof err) == -1) {
    report (EINVAL, "bad NFS target %s: %s", url, err);
    free (h->url);
    free (h);
    return NULL;
  }
  pthread_mutex_init (&h->lock, NULL);
  return h;
}

static void
nfs_plugin_close (void *handle)
{
  struct nfs_target *h = handle;
  if (!h)
    return;
  disconnect (h);
  pthread_mutex_destroy (&h->lock);
  nfs_url_free (&h->u);
  free (h->url);
  free (h);
}

/* ---- lookups (lock held) ---- */

/* An idempotent call on path with retries: lstat (st set) or unlink
 * (st NULL).  1 done, 0 missing, -1 error reported ("cannot VERB what").
 */
static int
path_call_retry (struct nfs_target *h, const char *path,
                 struct nfs_stat_64 *st, const char *verb, const char *what)
{
  struct plugin_job job;
  int try, r, e = EIO;

  plugin_job_capture (&job, host);
  for (try = 0; try < TRIES; try++) {
    if (try && backoff (&job, try) == -1) {
      report (ECANCELED, "%s: %s %s: cancelled", h->url, verb, what);
      return -1;
    }
    if (ensure_connected (h) == -1) {
      e = errno;
      if (!transient (e))
        return -1;
      continue;
    }
    r = st ? nfs_lstat64 (h->nfs, path, st) : nfs_unlink (h->nfs, path);
    if (r == 0)
      return 1;
    e = classify (h, r);
    if (e == ENOENT || e == ENOTDIR)
      return 0;
    if (!transient (e))
      break;
    disconnect (h);
  }
  report (e, "%s: cannot %s %s: %s%s", h->url, verb, what, cause (h, e),
          hint (e));
  return -1;
}

/* Create the directories of path (absolute, the object's) as needed;
 * each existing one must be a real directory.
 */
static int
make_parents (struct nfs_target *h, const char *path, const char *name)
{
  char buf[VIRTVAULT_PLUGIN_NAME_MAX + 2];
  struct nfs_stat_64 st;
  char *slash;
  int r, e;

  snprintf (buf, sizeof buf, "%s", path);
  for (slash = strchr (buf + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
    *slash = '\0';
    r = nfs_mkdir (h->nfs, buf);
    if (r != 0) {
      e = classify (h, r);
      if (e != EEXIST) {
        report (e, "%s: cannot create directory %s for %s: %s%s", h->url,
                buf, name, cause (h, e), hint (e));
        if (transient (e))
          disconnect (h);
        return -1;
      }
      r = nfs_lstat64 (h->nfs, buf, &st);
      if (r != 0 || !S_ISDIR (st.nfs_mode)) {
        e = r ? classify (h, r) : ENOTDIR;
        report (e, "%s: %s (for %s) is not a directory%s", h->url, buf,
                name, S_ISLNK (st.nfs_mode) ? " but a symbolic link" : "");
        return -1;
      }
    }
    *slash = '/';
  }
  return 0;
}

/* ---- put ---- */

static void
stream_free (struct nfs_put *s)
{
  free (s->name);
  free (s->path);
  free (s->tmp);
  free (s);
}

static int
random_suffix (char *out)
{
  static const char hex[] = "0123456789abcdef";
  unsigned char rnd[TEMP_RANDOM];
  int i;

  if (getrandom (rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
    return -1;
  for (i = 0; i < TEMP_RANDOM; i++)
    out[i] = hex[rnd[i] & 15];
  out[TEMP_RANDOM] = '\0';
  return 0;
}

static char *
temp_path_for (const char *path)
{
  const char *base = strrchr (path, '/') + 1;
  char suffix[TEMP_RANDOM + 1];
  char *t;

  if (random_suffix (suffix) == -1)
    return NULL;
  if (asprintf (&t, "%.*s.%s" TEMP_TAG "%s", (int) (base - path), path,
                base, suffix) == -1)
    return NULL;
  return t;
}

static void *
nfs_plugin_put_begin2 (void *handle, const char *name, uint64_t size,
                       uint32_t flags)
{
  struct nfs_target *h = handle;
  struct nfs_put *s;
  int r, e;

  if (flags) {
    report (EINVAL, "%s: put of %s: unknown flags 0x%x", h->url, name, flags);
    return NULL;
  }
  if (check_name (h, name) == -1)
    return NULL;
  s = calloc (1, sizeof *s);
  if (!s || !(s->name = strdup (name)) || !(s->path = object_path (name)) ||
      !(s->tmp = temp_path_for (s->path))) {
    if (s)
      stream_free (s);
    report (ENOMEM, "%s: out of memory", h->url);
    return NULL;
  }
  s->h = h;
  s->expected = size;
  plugin_job_capture (&s->job, host);

  pthread_mutex_lock (&h->lock);
  if (ensure_connected (h) == -1 || make_parents (h, s->path, name) == -1)
    goto fail;
  r = nfs_open2 (h->nfs, s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                 0640, &s->fh);
  if (r != 0) {
    e = classify (h, r);
    report (e, "%s: cannot create %s: %s%s", h->url, s->tmp, cause (h, e),
            hint (e));
    if (transient (e))
      disconnect (h);
    goto fail;
  }
  s->gen = h->generation;
  pthread_mutex_unlock (&h->lock);
  return s;

 fail:
  pthread_mutex_unlock (&h->lock);
  stream_free (s);
  return NULL;
}

static void *
nfs_plugin_put_begin (void *handle, const char *name)
{
  return nfs_plugin_put_begin2 (handle, name, VIRTVAULT_SIZE_UNKNOWN, 0);
}

/* With the lock held: is the stream's file handle still usable? */
static bool
stream_live (struct nfs_put *s)
{
  return s->fh && s->h->nfs && s->gen == s->h->generation;
}

static int
nfs_plugin_put_write (void *stream, const void *buf, size_t count)
{
  struct nfs_put *s = stream;
  struct nfs_target *h = s->h;
  const char *p = buf;
  int e;

  if (s->failed) {
    report (EIO, "%s: write to %s after a failed write", h->url, s->name);
    return -1;
  }
  if (s->expected != VIRTVAULT_SIZE_UNKNOWN &&
      (count > s->expected || s->written > s->expected - count)) {
    s->failed = true;
    report (EINVAL, "%s: %s: more bytes written than the %" PRIu64
            " announced", h->url, s->name, s->expected);
    return -1;
  }
  pthread_mutex_lock (&h->lock);
  if (count > 0) {
    bool broken;
    int64_t r;

    if (!stream_live (s)) {
      e = ECONNRESET;
      report (e, "%s: lost the connection while writing %s%s", h->url,
              s->name, hint (e));
      goto fail;
    }
    r = nfs_io (h->nfs, s->fh, true, (void *) p, count, s->written,
                h->wsize, h->u.timeout_ms + 1000, &s->job, &broken);
    if (broken)
      h->nfs = NULL;
    if (r != (int64_t) count) {
      e = r < 0 ? (int) -r : EIO;
      if (e == EFAULT || e == EPIPE)
        e = ECONNRESET;
      report (e, "%s: cannot write %s: %s%s", h->url, s->name,
              e == ETIMEDOUT ? "the server did not answer in time" :
              strerror (e), hint (e));
      if (transient (e))
        disconnect (h);
      goto fail;
    }
    s->written += count;
  }
  pthread_mutex_unlock (&h->lock);
  return 0;

 fail:
  s->failed = true;
  pthread_mutex_unlock (&h->lock);
  return -1;
}

static void remove_empty_parents (struct nfs_target *h, const char *path);

/* Lock held.  Best effort: remove the temporary file (a dead server
 * leaves it for remove_partial).
 */
static void
drop_temp (struct nfs_put *s)
{
  struct nfs_target *h = s->h;

  if (stream_live (s))
    nfs_close (h->nfs, s->fh);
  s->fh = NULL;
  if (h->nfs && nfs_unlink (h->nfs, s->tmp) == 0)
    remove_empty_parents (h, s->tmp);
}

static void
nfs_plugin_put_abort (void *stream)
{
  struct nfs_put *s = stream;
  pthread_mutex_lock (&s->h->lock);
  drop_temp (s);
  pthread_mutex_unlock (&s->h->lock);
  stream_free (s);
}

static int
nfs_plugin_put_commit (void *stream)
{
  struct nfs_put *s = stream;
  struct nfs_target *h = s->h;
  struct nfs_stat_64 st;
  int r, e;

  pthread_mutex_lock (&h->lock);
  if (s->failed) {
    report (EIO, "%s: commit of %s after a failed write", h->url, s->name);
    goto fail;
  }
  if (s->expected != VIRTVAULT_SIZE_UNKNOWN && s->written != s->expected) {
    report (EINVAL, "%s: %s: %" PRIu64 " bytes written, %" PRIu64
            " announced", h->url, s->name, s->written, s->expected);
    goto fail;
  }
  if (!stream_live (s)) {
    report (ECONNRESET, "%s: lost the connection while writing %s%s",
            h->url, s->name, hint (ECONNRESET));
    goto fail;
  }
  r = nfs_fsync (h->nfs, s->fh);
  if (r == 0) {
    r = nfs_close (h->nfs, s->fh);
    s->fh = NULL;
  }
  if (r != 0) {
    e = classify (h, r);
    report (e, "%s: cannot write %s to stable storage: %s%s", h->url,
            s->name, cause (h, e), hint (e));
    goto fail_transient;
  }
  r = nfs_link (h->nfs, s->tmp, s->path);
  if (r != 0) {
    e = classify (h, r);
    if (e == ENOTSUP || e == EOPNOTSUPP || e == ENOSYS) {
      /* No hard links here: check, then rename (see the top comment). */
      r = nfs_lstat64 (h->nfs, s->path, &st);
      if (r == 0) {
        e = EEXIST;
        report (e, "%s: cannot publish %s: it already exists", h->url,
                s->name);
        goto fail;
      }
      r = nfs_rename (h->nfs, s->tmp, s->path);
      if (r == 0)
        goto done;
      e = classify (h, r);
    }
    if (e == EEXIST)
      report (e, "%s: cannot publish %s: it already exists", h->url,
              s->name);
    else
      report (e, "%s: cannot publish %s: %s%s", h->url, s->name,
              cause (h, e), hint (e));
    goto fail_transient;
  }
  r = nfs_unlink (h->nfs, s->tmp);
  if (r != 0 && classify (h, r) != ENOENT) {
    /* Published; the temporary name is left for remove_partial. */
    if (host && host->log)
      host->log (VIRTVAULT_LOG_WARNING, "%s: cannot remove %s after "
                 "publishing %s: %s", h->url, s->tmp, s->name,
                 nfs_get_error (h->nfs));
  }
 done:
  pthread_mutex_unlock (&h->lock);
  stream_free (s);
  return 0;

 fail_transient:
  if (transient (e)) {
    s->fh = NULL;
    disconnect (h);
  }
 fail:
  drop_temp (s);
  pthread_mutex_unlock (&h->lock);
  stream_free (s);
  return -1;
}

/* ---- reads ---- */

/* Lock held.  Open path read-only without following a link, and check it
 * is a regular file.  0 ok, -1 error (errno); ENOENT not reported.
 */
static int
open_regular (struct nfs_target *h, const char *path, struct nfsfh **fh,
              struct nfs_stat_64 *st)
{
  int r;

  r = nfs_open2 (h->nfs, path, O_RDONLY | O_NOFOLLOW, 0, fh);
  if (r != 0) {
    int e = classify (h, r);
    /* O_NOFOLLOW on a link gives ELOOP (v3); libnfs 4.0's NFSv4 open
     * gives EINVAL for a link and for a missing file alike: ask lstat
     * which one it is.
     */
    if (e == EINVAL || e == ELOOP) {
      struct nfs_stat_64 lst;
      r = nfs_lstat64 (h->nfs, path, &lst);
      if (r != 0)
        e = classify (h, r);
    }
    errno = e;
    return -1;
  }
  r = nfs_fstat64 (h->nfs, *fh, st);
  if (r != 0 || !S_ISREG (st->nfs_mode)) {
    errno = r ? classify (h, r) : EINVAL;
    nfs_close (h->nfs, *fh);
    *fh = NULL;
    return -1;
  }
  return 0;
}

static void
report_open (struct nfs_target *h, const char *name, int e)
{
  if (e == EINVAL || e == ELOOP)
    report (EINVAL, "%s: %s is not a regular file (a link, directory or "
            "device planted on the target?)", h->url, name);
  else
    report (e, "%s: cannot open %s: %s%s", h->url, name, cause (h, e),
            hint (e));
}

/* Lock held: (re)open the reader's file on the current context. */
static int
reader_reopen (struct nfs_reader *rd)
{
  struct nfs_target *h = rd->h;
  struct nfs_stat_64 st;

  if (ensure_connected (h) == -1)
    return -1;
  if (open_regular (h, rd->path, &rd->fh, &st) == -1)
    return -1;
  if (rd->gen && st.nfs_ino != rd->ino) {
    nfs_close (h->nfs, rd->fh);
    rd->fh = NULL;
    errno = ESTALE;
    return -1;
  }
  rd->gen = h->generation;
  rd->ino = st.nfs_ino;
  rd->size = st.nfs_size;
  return 0;
}

static void *
nfs_plugin_read_open (void *handle, const char *name, uint64_t *ret_size,
                      uint32_t flags)
{
  struct nfs_target *h = handle;
  struct nfs_reader *rd;
  int try, e = EIO;

  if (flags) {
    report (EINVAL, "%s: read of %s: unknown flags 0x%x", h->url, name, flags);
    return NULL;
  }
  if (check_name (h, name) == -1)
    return NULL;
  rd = calloc (1, sizeof *rd);
  if (!rd || !(rd->name = strdup (name)) || !(rd->path = object_path (name))) {
    if (rd) {
      free (rd->name);
      free (rd);
    }
    report (ENOMEM, "%s: out of memory", h->url);
    return NULL;
  }
  rd->h = h;
  plugin_job_capture (&rd->job, host);
  pthread_mutex_lock (&h->lock);
  for (try = 0; try < TRIES; try++) {
    if (try && backoff (&rd->job, try) == -1) {
      e = ECANCELED;
      break;
    }
    if (reader_reopen (rd) == 0) {
      pthread_mutex_unlock (&h->lock);
      *ret_size = rd->size;
      return rd;
    }
    e = errno;
    if (!transient (e))
      break;
    disconnect (h);
  }
  if (e == ENOENT || e == ENOTDIR)
    report (ENOENT, "%s: %s does not exist", h->url, name);
  else if (e == ECANCELED)
    report (e, "%s: reading %s: cancelled", h->url, name);
  else
    report_open (h, name, e);
  pthread_mutex_unlock (&h->lock);
  free (rd->path);
  free (rd->name);
  free (rd);
  return NULL;
}

static void
nfs_plugin_read_close (void *read_handle)
{
  struct nfs_reader *rd = read_handle;
  if (!rd)
    return;
  pthread_mutex_lock (&rd->h->lock);
  if (rd->fh && rd->h->nfs && rd->gen == rd->h->generation)
    nfs_close (rd->h->nfs, rd->fh);
  pthread_mutex_unlock (&rd->h->lock);
  free (rd->path);
  free (rd->name);
  free (rd);
}

static int64_t
nfs_plugin_pread (void *read_handle, void *buf, size_t count,
                  uint64_t offset, uint32_t flags)
{
  struct nfs_reader *rd = read_handle;
  struct nfs_target *h = rd->h;
  size_t done = 0;
  int try = 0, e = EIO;
  int64_t r;
  bool broken;

  if (flags) {
    report (EINVAL, "%s: read of %s: unknown flags 0x%x", h->url, rd->name,
            flags);
    return -1;
  }
  /* Never more than the size the file had when opened. */
  if (offset >= rd->size)
    return 0;
  if (count > rd->size - offset)
    count = rd->size - offset;

  pthread_mutex_lock (&h->lock);
  while (done < count) {
    size_t n = count - done;
    if (n > 64 * 1024 * 1024)
      n = 64 * 1024 * 1024;
    if (!(rd->fh && h->nfs && rd->gen == h->generation)) {
      rd->fh = NULL;
      if (reader_reopen (rd) == -1) {
        e = errno;
        goto retry;
      }
    }
    r = nfs_io (h->nfs, rd->fh, false, (char *) buf + done, n, offset + done,
                h->rsize, h->u.timeout_ms + 1000, &rd->job, &broken);
    if (broken) {
      h->nfs = NULL;
      rd->fh = NULL;
    }
    if (r == (int64_t) n) {
      done += n;
      continue;
    }
    if (r >= 0) {
      e = EIO;
      report (e, "%s: %s is shorter than when it was opened (%" PRIu64
              " bytes): it changed on the target", h->url, rd->name,
              rd->size);
      goto fail;
    }
    e = (int) -r;
    if (e == ECANCELED) {
      report (e, "%s: reading %s: cancelled", h->url, rd->name);
      goto fail;
    }
    if (e == EFAULT || e == EPIPE)
      e = ECONNRESET;
    goto retry;
  retry:
    if (!transient (e) || ++try >= TRIES)
      break;
    disconnect (h);
    rd->fh = NULL;
    pthread_mutex_unlock (&h->lock);
    if (backoff (&rd->job, try) == -1) {
      report (ECANCELED, "%s: reading %s: cancelled", h->url, rd->name);
      return -1;
    }
    pthread_mutex_lock (&h->lock);
  }
  if (done == count) {
    pthread_mutex_unlock (&h->lock);
    return (int64_t) done;
  }
  if (e == ESTALE)
    report (e, "%s: %s was replaced on the target while being read",
            h->url, rd->name);
  else
    report (e, "%s: cannot read %s: %s%s", h->url, rd->name, cause (h, e),
            hint (e));
 fail:
  pthread_mutex_unlock (&h->lock);
  return -1;
}

static int64_t
nfs_plugin_get (void *handle, const char *name, void *buf, size_t count,
                uint64_t offset)
{
  uint64_t size;
  void *rd = nfs_plugin_read_open (handle, name, &size, 0);
  int64_t r;

  if (!rd)
    return -1;
  r = nfs_plugin_pread (rd, buf, count, offset, 0);
  nfs_plugin_read_close (rd);
  return r;
}

static int
nfs_plugin_stat (void *handle, const char *name, uint64_t *ret_size)
{
  struct nfs_target *h = handle;
  struct nfs_stat_64 st;
  char *path;
  int r;

  if (check_name (h, name) == -1)
    return -1;
  if (!(path = object_path (name))) {
    report (ENOMEM, "%s: out of memory", h->url);
    return -1;
  }
  pthread_mutex_lock (&h->lock);
  r = path_call_retry (h, path, &st, "look up", name);
  pthread_mutex_unlock (&h->lock);
  free (path);
  if (r == 1) {
    if (!S_ISREG (st.nfs_mode)) {
      report (EINVAL, "%s: %s is not a regular file", h->url, name);
      return -1;
    }
    *ret_size = st.nfs_size;
  }
  return r;
}

/* ---- list ---- */

struct list_state {
  struct nfs_target *h;
  const char *prefix;
  size_t plen;
  bool temps;              /* list temporary names instead of objects */
  virtvault_list_cb cb;
  void *opaque;
  size_t entries;
};

static bool
may_match (const char *full, size_t len, const char *prefix, size_t plen)
{
  size_t n = len < plen ? len : plen;
  return strncmp (full, prefix, n) == 0;
}

/* Lock held.  rel is "" or "a/b/" (a directory below the root). */
static int
list_dir (struct list_state *ls, const char *rel, int depth)
{
  struct nfs_target *h = ls->h;
  struct nfsdir *dir = NULL;
  struct nfsdirent *ent;
  char path[VIRTVAULT_PLUGIN_NAME_MAX + 2];
  char full[VIRTVAULT_PLUGIN_NAME_MAX + 2];
  char **subdirs = NULL;
  size_t nsub = 0, i, seen = 0;
  int r, e, ret = -1;

  if (depth > LIST_MAX_DEPTH) {
    report (E2BIG, "%s: directories nested deeper than %d below %s", h->url,
            LIST_MAX_DEPTH, ls->prefix);
    return -1;
  }
  snprintf (path, sizeof path, "/%s", rel);
  r = nfs_opendir (h->nfs, path, &dir);
  if (r != 0) {
    e = classify (h, r);
    if ((e == ENOENT || e == ENOTDIR) && depth == 0)
      return 0;
    report (e, "%s: cannot list %s: %s%s", h->url, path, cause (h, e),
            hint (e));
    errno = e;
    return -1;
  }
  while ((ent = nfs_readdir (h->nfs, dir))) {
    /* READDIRPLUS gives the type as ftype3 (1 regular, 2 directory);
     * libnfs puts the S_IFMT bits in mode too.
     */
    bool is_dir = S_ISDIR (ent->mode) || ent->type == 2;
    bool is_reg = S_ISREG (ent->mode) || ent->type == 1;
    int n;

    if (strcmp (ent->name, ".") == 0 || strcmp (ent->name, "..") == 0)
      continue;
    if (++seen > DIR_MAX_ENTRIES || ++ls->entries > LIST_MAX_ENTRIES) {
      report (E2BIG, "%s: more than %d entries below %s: refusing to list",
              h->url, seen > DIR_MAX_ENTRIES ? DIR_MAX_ENTRIES :
              LIST_MAX_ENTRIES, path);
      goto out;
    }
    if (!plugin_valid_entry_name (ent->name))
      continue;                 /* a name no put made: not an object */
    n = snprintf (full, sizeof full, "%s%s", rel, ent->name);
    if (n < 0 || (size_t) n > VIRTVAULT_PLUGIN_NAME_MAX)
      continue;
    if (!may_match (full, n, ls->prefix, ls->plen))
      continue;
    if (is_dir) {
      char **t;
      if ((size_t) n + 1 > VIRTVAULT_PLUGIN_NAME_MAX)
        continue;
      t = realloc (subdirs, (nsub + 1) * sizeof *t);
      if (!t || !(t[nsub] = malloc (n + 2))) {
        subdirs = t ? t : subdirs;
        report (ENOMEM, "%s: out of memory", h->url);
        goto out;
      }
      subdirs = t;
      memcpy (subdirs[nsub], full, n);
      subdirs[nsub][n] = '/';
      subdirs[nsub][n + 1] = '\0';
      nsub++;
      continue;
    }
    /* Links, devices, sockets ... are never objects. */
    if (!is_reg || (size_t) n < ls->plen)
      continue;
    if (is_temp_name (ent->name) != ls->temps)
      continue;
    if (ls->cb (ls->opaque, full, ent->size) == -1) {
      errno = ECANCELED;
      goto out;
    }
  }
  nfs_closedir (h->nfs, dir);
  dir = NULL;
  for (i = 0; i < nsub; i++)
    if (list_dir (ls, subdirs[i], depth + 1) == -1)
      goto out;
  ret = 0;
 out:
  if (dir)
    nfs_closedir (h->nfs, dir);
  for (i = 0; i < nsub; i++)
    free (subdirs[i]);
  free (subdirs);
  return ret;
}

static int
list_objects (struct nfs_target *h, const char *prefix, bool temps,
              virtvault_list_cb cb, void *opaque)
{
  struct list_state ls = { h, prefix, strlen (prefix), temps, cb, opaque, 0 };
  char start[VIRTVAULT_PLUGIN_NAME_MAX + 2];
  const char *slash;
  struct plugin_job job;
  int try, r = -1;

  plugin_job_capture (&job, host);
  if (ls.plen > VIRTVAULT_PLUGIN_NAME_MAX || prefix[0] == '/') {
    report (EINVAL, "%s: invalid prefix '%.100s'", h->url, prefix);
    return -1;
  }
  /* Start at the deepest directory the prefix names. */
  slash = strrchr (prefix, '/');
  snprintf (start, sizeof start, "%.*s", slash ? (int) (slash - prefix + 1) : 0,
            prefix);
  /* start ends in '/': its directories must be valid names */
  if (start[0] && !plugin_valid_object_name (start, strlen (start) - 1,
                                             NAME_COMPONENT_MAX)) {
    report (EINVAL, "%s: invalid prefix '%.100s'", h->url, prefix);
    return -1;
  }
  pthread_mutex_lock (&h->lock);
  for (try = 0; try < TRIES; try++) {
    if (try && backoff (&job, try) == -1) {
      report (ECANCELED, "%s: listing: cancelled", h->url);
      break;
    }
    if (ensure_connected (h) == -1) {
      if (!transient (errno))
        break;
      continue;
    }
    ls.entries = 0;
    r = list_dir (&ls, start, 0);
    /* A callback may have seen part of the listing: retry only if it saw
     * nothing yet.
     */
    if (r == 0 || !transient (errno) || ls.entries > 0)
      break;
    disconnect (h);
  }
  pthread_mutex_unlock (&h->lock);
  return r;
}

static int
nfs_plugin_list (void *handle, const char *prefix, virtvault_list_cb cb,
                 void *opaque)
{
  return list_objects (handle, prefix, false, cb, opaque);
}

/* ---- remove ---- */

/* Lock held.  Unlink path with retries; missing is fine. */
static int
unlink_retry (struct nfs_target *h, const char *path, const char *name)
{
  return path_call_retry (h, path, NULL, "remove", name) == -1 ? -1 : 0;
}

/* Lock held: remove the now empty directories of path, deepest first,
 * best effort (another put may be filling one).
 */
static void
remove_empty_parents (struct nfs_target *h, const char *path)
{
  char buf[VIRTVAULT_PLUGIN_NAME_MAX + 2];
  char *slash;

  snprintf (buf, sizeof buf, "%s", path);
  while ((slash = strrchr (buf, '/')) && slash != buf) {
    *slash = '\0';
    if (!h->nfs || nfs_rmdir (h->nfs, buf) != 0)
      break;
  }
}

static int
nfs_plugin_remove (void *handle, const char *name)
{
  struct nfs_target *h = handle;
  char *path;
  int r;

  if (check_name (h, name) == -1)
    return -1;
  if (!(path = object_path (name))) {
    report (ENOMEM, "%s: out of memory", h->url);
    return -1;
  }
  pthread_mutex_lock (&h->lock);
  r = unlink_retry (h, path, name);
  if (r == 0)
    remove_empty_parents (h, path);
  pthread_mutex_unlock (&h->lock);
  free (path);
  return r;
}

struct name_list {
  char **names;
  size_t n;
};

static int
collect_name (void *opaque, const char *name, uint64_t size)
{
  struct name_list *l = opaque;
  char **t = realloc (l->names, (l->n + 1) * sizeof *t);
  (void) size;
  if (!t)
    return -1;
  l->names = t;
  if (!(t[l->n] = strdup (name)))
    return -1;
  l->n++;
  return 0;
}

static int
nfs_plugin_remove_partial (void *handle, const char *prefix)
{
  struct nfs_target *h = handle;
  struct name_list l = { NULL, 0 };
  size_t i;
  int r;

  r = list_objects (h, prefix, true, collect_name, &l);
  if (r == 0) {
    pthread_mutex_lock (&h->lock);
    for (i = 0; i < l.n && r == 0; i++) {
      char *path = object_path (l.names[i]);
      if (!path) {
        report (ENOMEM, "%s: out of memory", h->url);
        r = -1;
        break;
      }
      r = unlink_retry (h, path, l.names[i]);
      if (r == 0)
        remove_empty_parents (h, path);
      free (path);
    }
    pthread_mutex_unlock (&h->lock);
  }
  for (i = 0; i < l.n; i++)
    free (l.names[i]);
  free (l.names);
  return r;
}

/* ---- test, capabilities ---- */

static int
nfs_plugin_test (void *handle)
{
  struct nfs_target *h = handle;
  struct nfsfh *fh = NULL;
  char *tmp = NULL;
  int r, e, ret = -1;

  pthread_mutex_lock (&h->lock);
  if (ensure_connected (h) == -1)
    goto out;
  if (!(tmp = temp_path_for ("/.virtvault-test"))) {
    report (ENOMEM, "%s: out of memory", h->url);
    goto out;
  }
  r = nfs_open2 (h->nfs, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600,
                 &fh);
  if (r == 0) {
    r = nfs_pwrite (h->nfs, fh, 0, 5, "test\n");
    if (r >= 0)
      r = nfs_fsync (h->nfs, fh);
    nfs_close (h->nfs, fh);
    nfs_unlink (h->nfs, tmp);
  }
  if (r < 0) {
    e = classify (h, r);
    report (e, "%s: export %s is not writable: %s%s", h->url, h->u.path,
            cause (h, e), hint (e));
    if (transient (e))
      disconnect (h);
    goto out;
  }
  ret = 0;
 out:
  pthread_mutex_unlock (&h->lock);
  free (tmp);
  return ret;
}

static int
nfs_plugin_capabilities (void *handle, struct virtvault_caps *caps,
                         uint32_t flags)
{
  struct nfs_target *h = handle;
  uint32_t io = DEFAULT_IO_SIZE;

  if (flags) {
    report (EINVAL, "%s: capabilities: unknown flags 0x%x", h->url, flags);
    return -1;
  }
  pthread_mutex_lock (&h->lock);
  if (h->rsize)
    io = h->rsize;
  pthread_mutex_unlock (&h->lock);
  caps->flags = VIRTVAULT_CAP_ATOMIC_PUBLISH | VIRTVAULT_CAP_DURABLE_COMMIT |
    VIRTVAULT_CAP_CONSISTENT_LIST;
  /* A request of several rsize is split by libnfs into rsize READs in
   * flight together: ask for a few at a time.
   */
  caps->io_size = io * 4 < io ? io : io * 4;
  caps->io_align = 1;
  caps->max_parallel_reads = 1;
  caps->max_object_size = 0;
  return 0;
}

static const char *const nfs_secret_params[] = { NULL };

static struct virtvault_plugin plugin = {
  .name = "nfs",
  .version = PACKAGE_VERSION,
  .description = "files on an NFS export through libnfs, nfs://server/path",
  .config_help = NFS_CONFIG_HELP,
  .open = nfs_plugin_open,
  .close = nfs_plugin_close,
  .test = nfs_plugin_test,
  .put_begin = nfs_plugin_put_begin,
  .put_write = nfs_plugin_put_write,
  .put_commit = nfs_plugin_put_commit,
  .put_abort = nfs_plugin_put_abort,
  .get = nfs_plugin_get,
  .stat = nfs_plugin_stat,
  .list = nfs_plugin_list,
  .remove = nfs_plugin_remove,
  .remove_partial = nfs_plugin_remove_partial,
  .load_host = nfs_plugin_load_host,
  .secret_params = nfs_secret_params,
  .capabilities = nfs_plugin_capabilities,
  .put_begin2 = nfs_plugin_put_begin2,
  .read_open = nfs_plugin_read_open,
  .pread = nfs_plugin_pread,
  .read_close = nfs_plugin_read_close,
};

VIRTVAULT_REGISTER_PLUGIN (plugin)
