/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sftp storage plugin: objects are files under a directory of an SFTP
 * server, sftp://user@host:port/path, reached with libssh.
 *
 * Authentication is by key only (identity=, a private key file owned by
 * root and readable only by it).  The server's host key must be listed in
 * the target's known_hosts= file: an unknown or changed key is refused
 * (EACCES) with its SHA256 fingerprint, never accepted.
 *
 * One SSH session per target handle (the host opens one per job), made
 * on first use and reused for every object; a mutex serialises its use,
 * since a libssh session is not thread-safe.  A lost connection is made
 * again for idempotent requests (stat, reads, lists, removes), retried
 * with back-off; an upload is never replayed.
 *
 * A put writes DIR/.BASE.tmp-XXXXXXXX (O_EXCL), calls fsync@openssh.com
 * when the server offers it, and renames it to its final name with the
 * plain SFTP rename, which refuses to replace an existing name
 * (posix-rename@openssh.com would replace: it is never used).
 *
 * Symbolic links: SFTP has no O_NOFOLLOW, so a link planted on the server
 * below the root is followed by the server for opens and writes; listing
 * never follows links, and stat/read refuse what is not a regular file.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <virtvault-plugin.h>

#include "plugin-err.h"
#include "plugin-file.h"
#include "plugin-job.h"
#include "plugin-name.h"
#include "plugin-param.h"

#define SFTP_CONFIG_HELP                                                \
  "identity=PATH      private key file (root-owned, mode 0600); "       \
  "required\n"                                                          \
  "known_hosts=PATH   OpenSSH known_hosts file holding the server's "   \
  "host key; required\n"                                                \
  "timeout=SECONDS    bound on connecting and on every reply "          \
  "(default 30)\n"

#define TEMP_TAG ".tmp-"
#define TEMP_RANDOM 8
/* Bytes per SFTP read or write request (OpenSSH accepts 256 KiB). */
#define CHUNK (64 * 1024)
/* Read requests in flight on one handle: CHUNK * INFLIGHT per pread. */
#define INFLIGHT 16
#define RETRIES 4
#define BACKOFF_MS 250              /* first back-off, doubled each time */
#define MAX_DEPTH 16
#define MAX_ENTRIES (1024 * 1024)
#define KEY_MAX (64 * 1024)

static const struct virtvault_host *vhost;

struct sftp_reader;

struct sftp_target {
  char *url, *user, *host, *root;
  unsigned port;
  long timeout;
  char *identity, *known_hosts;
  pthread_mutex_t lock;
  ssh_session ssh;
  sftp_session sftp;
  bool fsync_ext, statvfs_ext;
  unsigned gen;                 /* bumped when a session is dropped */
  struct sftp_reader *readers;  /* open read handles, closed on a drop */
};

struct sftp_reader {
  struct sftp_target *h;
  char *path;
  sftp_file f;
  uint64_t size;
  struct sftp_reader *next;
  /* The job of read_open's thread: the host may pread from threads of
   * its own, which belong to no job.
   */
  struct plugin_job job;
};

struct sftp_put {
  struct sftp_target *h;
  char *path, *temp;
  sftp_file f;
  unsigned gen;
  uint64_t size, written;
};

/* ---- URL and parameters ---- */

static int
parse_url (struct sftp_target *h, const char *url, struct plugin_err *e)
{
  const char *p, *at, *slash, *colon;
  char *end;

  if (strncmp (url, "sftp://", 7) != 0)
    goto bad;
  p = url + 7;
  slash = strchr (p, '/');
  at = memchr (p, '@', slash ? (size_t) (slash - p) : strlen (p));
  if (slash == NULL || at == NULL || at == p)
    goto bad;
  h->user = strndup (p, at - p);
  p = at + 1;
  colon = memchr (p, ':', slash - p);
  if (colon) {
    unsigned long port;
    errno = 0;
    port = strtoul (colon + 1, &end, 10);
    if (errno || end != slash || colon + 1 == slash || port == 0 ||
        port > 65535)
      goto bad;
    h->port = port;
  }
  else {
    colon = slash;
    h->port = 22;
  }
  if (colon == p)
    goto bad;
  h->host = strndup (p, colon - p);
  h->root = strdup (slash);
  if (!h->user || !h->host || !h->root) {
    plugin_err_set (e, ENOMEM, "out of memory");
    return -1;
  }
  /* Strip trailing slashes but keep "/". */
  for (size_t n = strlen (h->root); n > 1 && h->root[n - 1] == '/'; n--)
    h->root[n - 1] = '\0';
  if (strstr (h->root, "/../") || strstr (h->root, "/./") ||
      strcmp (h->root + strlen (h->root) - (strlen (h->root) >= 3 ? 3 : 0),
              "/..") == 0 || strpbrk (h->user, ":/ ") ||
      strpbrk (h->host, "/ @"))
    goto bad;
  return 0;

 bad:
  plugin_err_set (e, EINVAL, "bad sftp URL %s: expected "
                  "sftp://USER@HOST[:PORT]/ABSOLUTE/PATH", url);
  return -1;
}

static int
parse_params (struct sftp_target *h, const char *const *params,
              struct plugin_err *e)
{
  for (size_t i = 0; params && params[i]; i++) {
    const char *kv = params[i], *v;
    size_t klen;

    if ((v = plugin_param_split (kv, &klen)) == NULL) {
      plugin_err_set (e, EINVAL, "parameter %s is not KEY=VALUE", kv);
      return -1;
    }
#define IS(k) (klen == sizeof k - 1 && strncmp (kv, k, klen) == 0)
    if (IS ("identity") || IS ("known_hosts")) {
      char **dst = IS ("identity") ? &h->identity : &h->known_hosts;
      if (*v != '/') {
        plugin_err_set (e, EINVAL, "parameter %.*s must be an absolute path",
                        (int) klen, kv);
        return -1;
      }
      free (*dst);
      if ((*dst = strdup (v)) == NULL) {
        plugin_err_set (e, ENOMEM, "out of memory");
        return -1;
      }
    }
    else if (IS ("timeout")) {
      unsigned long secs;
      if (plugin_param_uint ("sftp", "timeout", v, 1, 600, &secs, e) == -1)
        return -1;
      h->timeout = secs;
    }
    else {
      plugin_err_set (e, EINVAL, "unknown parameter %.*s for sftp targets "
                      "(known: identity, known_hosts, timeout)", (int) klen,
                      kv);
      return -1;
    }
#undef IS
  }
  if (h->identity == NULL || h->known_hosts == NULL) {
    plugin_err_set (e, EINVAL, "sftp targets need identity=PATH and "
                    "known_hosts=PATH");
    return -1;
  }
  return 0;
}

static void
target_free (struct sftp_target *h);

static void *
sftp_open_target (const char *url, const char *const *params)
{
  struct sftp_target *h = calloc (1, sizeof *h);
  struct plugin_err e = { 0 };
  struct stat st;
  char *key = NULL;

  if (h == NULL) {
    errno = ENOMEM;
    virtvault_error ("out of memory");
    return NULL;
  }
  pthread_mutex_init (&h->lock, NULL);
  h->timeout = 30;
  if (parse_url (h, url, &e) == -1 || parse_params (h, params, &e) == -1)
    goto fail;
  if ((h->url = strdup (url)) == NULL) {
    plugin_err_set (&e, ENOMEM, "out of memory");
    goto fail;
  }
  /* Local checks only: the network is used from the first request on. */
  if (plugin_read_private_file (h->identity, "identity", KEY_MAX, &key,
                                NULL, &e) == -1)
    goto fail;
  plugin_free_secret (key);
  if (stat (h->known_hosts, &st) == -1 || !S_ISREG (st.st_mode)) {
    plugin_err_set (&e, errno == ENOENT ? ENOENT : EINVAL,
                    "known_hosts file %s of target %s is not a readable file; "
                    "add the server's key to it (ssh-keyscan)", h->known_hosts,
                    url);
    goto fail;
  }
  return h;

 fail:
  target_free (h);
  plugin_err_report (&e);
  return NULL;
}

/* ---- the session ---- */

static void
drop_session (struct sftp_target *h)
{
  for (struct sftp_reader *r = h->readers; r; r = r->next)
    if (r->f) {
      sftp_close (r->f);
      r->f = NULL;
    }
  if (h->sftp)
    sftp_free (h->sftp);
  if (h->ssh) {
    ssh_disconnect (h->ssh);
    ssh_free (h->ssh);
  }
  h->sftp = NULL;
  h->ssh = NULL;
  h->gen++;
}

static int
ssh_errno (ssh_session s)
{
  const char *m = ssh_get_error (s);

  if (strstr (m, "refused"))
    return ECONNREFUSED;
  if (strstr (m, "imeout") || strstr (m, "timed out"))
    return ETIMEDOUT;
  if (strstr (m, "resolve") || strstr (m, "unreachable"))
    return EHOSTUNREACH;
  return ECONNRESET;
}

static int
check_host_key (struct sftp_target *h, struct plugin_err *e)
{
  enum ssh_known_hosts_e state = ssh_session_is_known_server (h->ssh);
  ssh_key key = NULL;
  unsigned char *hash = NULL;
  size_t hlen;
  char *fp = NULL;

  if (state == SSH_KNOWN_HOSTS_OK)
    return 0;
  if (ssh_get_server_publickey (h->ssh, &key) == 0 &&
      ssh_get_publickey_hash (key, SSH_PUBLICKEY_HASH_SHA256, &hash,
                              &hlen) == 0)
    fp = ssh_get_fingerprint_hash (SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
  switch (state) {
  case SSH_KNOWN_HOSTS_CHANGED:
  case SSH_KNOWN_HOSTS_OTHER:
    plugin_err_set (e, EACCES, "host key of %s port %u CHANGED: the server "
                    "offers %s %s, which does not match the key %s holds for "
                    "it; someone may be intercepting the connection. If the "
                    "server's key really changed, replace its line in %s",
                    h->host, h->port, key ? ssh_key_type_to_char
                    (ssh_key_type (key)) : "?", fp ? fp : "(unknown)",
                    h->known_hosts, h->known_hosts);
    break;
  case SSH_KNOWN_HOSTS_UNKNOWN:
  case SSH_KNOWN_HOSTS_NOT_FOUND:
    plugin_err_set (e, EACCES, "host key %s %s of %s port %u is not in %s: "
                    "verify the fingerprint with the server's administrator "
                    "and add the key to that file (ssh-keyscan -p %u %s)",
                    key ? ssh_key_type_to_char (ssh_key_type (key)) : "?",
                    fp ? fp : "(unknown)", h->host, h->port, h->known_hosts,
                    h->port, h->host);
    break;
  default:
    plugin_err_set (e, EACCES, "cannot check the host key of %s port %u "
                    "against %s: %s", h->host, h->port, h->known_hosts,
                    ssh_get_error (h->ssh));
  }
  if (fp)
    ssh_string_free_char (fp);
  if (hash)
    ssh_clean_pubkey_hash (&hash);
  ssh_key_free (key);
  return -1;
}

/* Called with the lock held. */
static int
ensure_session (struct sftp_target *h, struct plugin_err *e)
{
  char *b64 = NULL;
  ssh_key key = NULL;
  bool no = false;
  int yes = 1, r;

  if (h->sftp)
    return 0;
  if (plugin_read_private_file (h->identity, "identity", KEY_MAX, &b64, NULL,
                                e) == -1)
    return -1;
  r = ssh_pki_import_privkey_base64 (b64, NULL, NULL, NULL, &key);
  plugin_free_secret (b64);
  if (r != SSH_OK) {
    plugin_err_set (e, EINVAL, "identity %s is not a private key libssh can "
                    "read (without a passphrase)", h->identity);
    return -1;
  }

  h->ssh = ssh_new ();
  if (h->ssh == NULL) {
    plugin_err_set (e, ENOMEM, "out of memory");
    goto fail;
  }
  if (ssh_options_set (h->ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) ||
      ssh_options_set (h->ssh, SSH_OPTIONS_HOST, h->host) ||
      ssh_options_set (h->ssh, SSH_OPTIONS_PORT, &h->port) ||
      ssh_options_set (h->ssh, SSH_OPTIONS_USER, h->user) ||
      ssh_options_set (h->ssh, SSH_OPTIONS_TIMEOUT, &h->timeout) ||
      ssh_options_set (h->ssh, SSH_OPTIONS_KNOWNHOSTS, h->known_hosts) ||
      ssh_options_set (h->ssh, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") ||
      ssh_options_set (h->ssh, SSH_OPTIONS_PASSWORD_AUTH, &no) ||
      ssh_options_set (h->ssh, SSH_OPTIONS_KBDINT_AUTH, &no) ||
      ssh_options_set (h->ssh, SSH_OPTIONS_GSSAPI_AUTH, &no) ||
      /* Without it each synchronous 64 KiB write waits for a delayed
       * ACK (Nagle): 2 MiB/s on loopback.
       */
      ssh_options_set (h->ssh, SSH_OPTIONS_NODELAY, &yes)) {
    plugin_err_set (e, EINVAL, "cannot set SSH options for %s: %s", h->url,
                    ssh_get_error (h->ssh));
    goto fail;
  }
  if (ssh_connect (h->ssh) != SSH_OK) {
    plugin_err_set (e, ssh_errno (h->ssh), "cannot connect to %s port %u "
                    "(target %s): %s", h->host, h->port, h->url,
                    ssh_get_error (h->ssh));
    goto fail;
  }
  if (check_host_key (h, e) == -1)
    goto fail;
  r = ssh_userauth_publickey (h->ssh, NULL, key);
  if (r != SSH_AUTH_SUCCESS) {
    if (r == SSH_AUTH_ERROR)
      plugin_err_set (e, ssh_errno (h->ssh), "authenticating to %s port %u "
                      "failed: %s", h->host, h->port, ssh_get_error (h->ssh));
    else
      plugin_err_set (e, EACCES, "%s port %u refused key %s for user %s; add "
                      "its public key to the user's authorized_keys on the "
                      "server", h->host, h->port, h->identity, h->user);
    goto fail;
  }
  ssh_key_free (key);
  key = NULL;
  h->sftp = sftp_new (h->ssh);
  if (h->sftp == NULL || sftp_init (h->sftp) != SSH_OK) {
    plugin_err_set (e, ECONNRESET, "cannot start the SFTP subsystem on %s "
                    "port %u: %s", h->host, h->port, ssh_get_error (h->ssh));
    goto fail;
  }
  h->fsync_ext = sftp_extension_supported (h->sftp, "fsync@openssh.com",
                                           "1");
  h->statvfs_ext = sftp_extension_supported (h->sftp,
                                             "statvfs@openssh.com", "2");
  return 0;

 fail:
  ssh_key_free (key);
  drop_session (h);
  return -1;
}

/* An SFTP request failed: record why, with its errno class.  A lost
 * connection is dropped here so the next request makes a new one.
 */
static int __attribute__ ((format (printf, 3, 4)))
fail_sftp (struct sftp_target *h, struct plugin_err *e, const char *fmt, ...)
{
  char what[512];
  const char *cause;
  int code, st = h->sftp ? sftp_get_error (h->sftp) : -1;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (what, sizeof what, fmt, ap);
  va_end (ap);

  if (h->ssh == NULL || !ssh_is_connected (h->ssh) ||
      ssh_get_error_code (h->ssh) == SSH_FATAL || st <= 0) {
    code = ssh_is_connected (h->ssh) ? ETIMEDOUT : ECONNRESET;
    plugin_err_set (e, code, "%s: connection to %s port %u lost: %s", what,
                    h->host, h->port, h->ssh ? ssh_get_error (h->ssh) : "");
    drop_session (h);
    return -1;
  }
  switch (st) {
  case SSH_FX_NO_SUCH_FILE:
  case SSH_FX_NO_SUCH_PATH:
    code = ENOENT; cause = "No such file or directory"; break;
  case SSH_FX_PERMISSION_DENIED:
    code = EACCES; cause = "Permission denied"; break;
  case SSH_FX_FILE_ALREADY_EXISTS:
    code = EEXIST; cause = "File exists"; break;
  case SSH_FX_WRITE_PROTECT:
    code = EROFS; cause = "Read-only file system"; break;
  case SSH_FX_EOF:
    code = EIO; cause = "unexpected end of file"; break;
  case SSH_FX_OP_UNSUPPORTED:
    code = ENOTSUP; cause = "operation not supported by the server"; break;
  default:
    code = EIO; cause = ssh_get_error (h->sftp->session);
  }
  /* SFTP version 3 (OpenSSH) reports a full disk as a plain failure:
   * ask statvfs@openssh.com whether that is what happened.
   */
  if (code == EIO && h->statvfs_ext) {
    sftp_statvfs_t sv = sftp_statvfs (h->sftp, h->root);
    if (sv && sv->f_bavail * (sv->f_frsize ? sv->f_frsize : sv->f_bsize)
        < 2 * CHUNK) {
      code = ENOSPC;
      cause = "No space left on device";
    }
    if (sv)
      sftp_statvfs_free (sv);
  }
  plugin_err_set (e, code, "%s: %s", what, cause);
  return -1;
}

/* Runs op with the session, connecting first; an idempotent op whose
 * error is transient is tried again with back-off on a new session,
 * unless job (NULL: the calling thread's) was cancelled.  The error is
 * reported once, here.
 */
typedef int (*op_fn) (struct sftp_target *h, void *arg, struct plugin_err *e);

static int
run_op_for (struct sftp_target *h, const struct plugin_job *job,
            bool idempotent, op_fn op, void *arg)
{
  struct plugin_job here;

  if (job == NULL) {
    plugin_job_capture (&here, vhost);
    job = &here;
  }
  for (unsigned attempt = 0;; attempt++) {
    struct plugin_err e = { 0 };
    int r;

    pthread_mutex_lock (&h->lock);
    r = ensure_session (h, &e);
    if (r == 0)
      r = op (h, arg, &e);
    pthread_mutex_unlock (&h->lock);
    if (r >= 0)
      return r;
    if (!idempotent || !plugin_err_transient (e.code) ||
        attempt + 1 >= RETRIES ||
        plugin_backoff (job, attempt + 1, BACKOFF_MS, &e) == -1) {
      plugin_err_report (&e);
      return -1;
    }
    if (vhost && vhost->log)
      vhost->log (VIRTVAULT_LOG_INFO, "sftp: %s; trying again", e.msg);
  }
}

static int
run_op (struct sftp_target *h, bool idempotent, op_fn op, void *arg)
{
  return run_op_for (h, NULL, idempotent, op, arg);
}

static char *
full_path (struct sftp_target *h, const char *name, struct plugin_err *e)
{
  char *p;

  if (asprintf (&p, "%s%s%s", h->root, strcmp (h->root, "/") ? "/" : "",
                name) == -1) {
    plugin_err_set (e, ENOMEM, "out of memory");
    return NULL;
  }
  return p;
}

static int
check_name (const char *name)
{
  if (plugin_valid_object_name (name, strlen (name), 0))
    return 0;
  errno = EINVAL;
  virtvault_error ("invalid object name \"%.100s\"", name);
  return -1;
}

/* Flags no callback knows (none are defined yet) and bad names. */
static int
check_call (const char *what, uint32_t flags, const char *name)
{
  if (flags) {
    errno = EINVAL;
    virtvault_error ("sftp %s: unknown flags 0x%x", what, flags);
    return -1;
  }
  return name ? check_name (name) : 0;
}

/* ---- stat ---- */

struct stat_arg {
  const char *name;
  uint64_t size;
};

static int
op_stat (struct sftp_target *h, void *arg, struct plugin_err *e)
{
  struct stat_arg *a = arg;
  char *path = full_path (h, a->name, e);
  sftp_attributes at;
  int r = -1;

  if (path == NULL)
    return -1;
  at = sftp_lstat (h->sftp, path);
  if (at == NULL) {
    if (h->sftp && sftp_get_error (h->sftp) == SSH_FX_NO_SUCH_FILE)
      r = 0;
    else
      fail_sftp (h, e, "cannot stat %s on %s", a->name, h->url);
  }
  else if (at->type != SSH_FILEXFER_TYPE_REGULAR) {
    plugin_err_set (e, EINVAL, "%s on %s is not a regular file", a->name,
                    h->url);
  }
  else {
    a->size = at->size;
    r = 1;
  }
  sftp_attributes_free (at);
  free (path);
  return r;
}

static int
sftp_stat_object (void *handle, const char *name, uint64_t *ret_size)
{
  struct stat_arg a = { name, 0 };
  int r;

  if (check_name (name) == -1)
    return -1;
  r = run_op (handle, true, op_stat, &a);
  if (r == 1 && ret_size)
    *ret_size = a.size;
  return r;
}

/* ---- read handles ---- */

static int
reader_open_file (struct sftp_reader *rd, struct plugin_err *e)
{
  struct sftp_target *h = rd->h;
  sftp_attributes at;

  rd->f = sftp_open (h->sftp, rd->path, O_RDONLY, 0);
  if (rd->f == NULL)
    return fail_sftp (h, e, "cannot open %s on %s", rd->path, h->url);
  at = sftp_fstat (rd->f);
  if (at == NULL)
    return fail_sftp (h, e, "cannot stat %s on %s", rd->path, h->url);
  if (at->type != SSH_FILEXFER_TYPE_REGULAR) {
    sftp_attributes_free (at);
    plugin_err_set (e, EINVAL, "%s on %s is not a regular file", rd->path,
                    h->url);
    return -1;
  }
  rd->size = at->size;
  sftp_attributes_free (at);
  return 0;
}

static int
op_read_open (struct sftp_target *h, void *arg, struct plugin_err *e)
{
  struct sftp_reader *rd = arg;

  if (reader_open_file (rd, e) == -1) {
    if (rd->f && h->sftp)
      sftp_close (rd->f);
    rd->f = NULL;
    return -1;
  }
  rd->next = h->readers;
  h->readers = rd;
  return 0;
}

static void *
sftp_read_open (void *handle, const char *name, uint64_t *ret_size,
                uint32_t flags)
{
  struct sftp_target *h = handle;
  struct sftp_reader *rd;
  struct plugin_err e = { 0 };

  if (check_call ("read_open", flags, name) == -1)
    return NULL;
  rd = calloc (1, sizeof *rd);
  if (rd == NULL || (rd->path = full_path (h, name, &e)) == NULL) {
    free (rd);
    errno = ENOMEM;
    virtvault_error ("out of memory");
    return NULL;
  }
  rd->h = h;
  plugin_job_capture (&rd->job, vhost);
  if (run_op_for (h, &rd->job, true, op_read_open, rd) == -1) {
    free (rd->path);
    free (rd);
    return NULL;
  }
  if (ret_size)
    *ret_size = rd->size;
  return rd;
}

struct pread_arg {
  struct sftp_reader *rd;
  char *buf;
  size_t count;
  uint64_t offset;
};

/* Reads [offset, offset+count) with up to INFLIGHT requests in flight. */
static int
op_pread (struct sftp_target *h, void *arg, struct plugin_err *e)
{
  struct pread_arg *a = arg;
  struct sftp_reader *rd = a->rd;
  uint64_t want, done = 0;

  if (rd->f == NULL && reader_open_file (rd, e) == -1)
    return -1;
  want = a->offset >= rd->size ? 0 : rd->size - a->offset;
  if (want > a->count)
    want = a->count;
  while (done < want) {
    uint32_t ids[INFLIGHT], lens[INFLIGHT];
    int n = 0, i;
    uint64_t got = 0, pos = done;
    bool gap = false;

    if (sftp_seek64 (rd->f, a->offset + done) < 0)
      return fail_sftp (h, e, "cannot seek in %s on %s", rd->path, h->url);
    for (; n < INFLIGHT && pos < want; n++) {
      lens[n] = want - pos < CHUNK ? want - pos : CHUNK;
      int id = sftp_async_read_begin (rd->f, lens[n]);
      if (id < 0)
        break;
      ids[n] = id;
      pos += lens[n];
    }
    if (n == 0)
      return fail_sftp (h, e, "cannot read %s on %s", rd->path, h->url);
    /* Every request sent is answered and collected, in order. */
    for (i = 0; i < n; i++) {
      int r = sftp_async_read (rd->f, a->buf + done + got, lens[i], ids[i]);
      if (r < 0) {
        /* The session's request state is unknown now: drop it. */
        fail_sftp (h, e, "cannot read %s on %s", rd->path, h->url);
        if (h->sftp)
          drop_session (h);
        if (e->code == EIO)
          e->code = ECONNRESET;
        return -1;
      }
      if (!gap)
        got += r;
      if ((uint32_t) r < lens[i])
        gap = true;             /* read the rest again from here */
    }
    if (got == 0) {
      plugin_err_set (e, EIO, "%s on %s ended at %" PRIu64 " bytes, before "
                      "its size %" PRIu64 " (changed while reading?)",
                      rd->path, h->url, a->offset + done, rd->size);
      return -1;
    }
    done += got;
  }
  return 0;
}

static int64_t
sftp_pread_object (void *read_handle, void *buf, size_t count,
                   uint64_t offset, uint32_t flags)
{
  struct sftp_reader *rd = read_handle;
  struct pread_arg a = { rd, buf, count, offset };

  if (check_call ("pread", flags, NULL) == -1)
    return -1;
  if (run_op_for (rd->h, &rd->job, true, op_pread, &a) == -1)
    return -1;
  if (offset >= rd->size)
    return 0;
  return rd->size - offset < count ? (int64_t) (rd->size - offset)
    : (int64_t) count;
}

static void
sftp_read_close (void *read_handle)
{
  struct sftp_reader *rd = read_handle, **pp;
  struct sftp_target *h;

  if (rd == NULL)
    return;
  h = rd->h;
  pthread_mutex_lock (&h->lock);
  for (pp = &h->readers; *pp; pp = &(*pp)->next)
    if (*pp == rd) {
      *pp = rd->next;
      break;
    }
  if (rd->f && h->sftp)
    sftp_close (rd->f);
  pthread_mutex_unlock (&h->lock);
  free (rd->path);
  free (rd);
}

static int64_t
sftp_get (void *handle, const char *name, void *buf, size_t count,
          uint64_t offset)
{
  uint64_t size;
  void *rd = sftp_read_open (handle, name, &size, 0);
  int64_t r;

  if (rd == NULL)
    return -1;
  r = sftp_pread_object (rd, buf, count, offset, 0);
  sftp_read_close (rd);
  return r;
}

/* ---- put ---- */

static bool
is_temp_name (const char *base)
{
  const char *t;
  size_t len = strlen (base);

  if (base[0] != '.' || len < 1 + 1 + sizeof TEMP_TAG - 1 + TEMP_RANDOM)
    return false;
  t = base + len - TEMP_RANDOM - (sizeof TEMP_TAG - 1);
  if (strncmp (t, TEMP_TAG, sizeof TEMP_TAG - 1) != 0)
    return false;
  for (t += sizeof TEMP_TAG - 1; *t; t++)
    if (!strchr ("0123456789abcdef", *t))
      return false;
  return true;
}

/* Creates the directories of path below the root (0750). */
static int
make_parents (struct sftp_target *h, const char *path, struct plugin_err *e)
{
  size_t rootlen = strlen (h->root);
  char *p = strdup (path), *s;
  int r = 0;

  if (p == NULL) {
    plugin_err_set (e, ENOMEM, "out of memory");
    return -1;
  }
  for (s = p + rootlen + 1; (s = strchr (s, '/')) != NULL; s++) {
    sftp_attributes at;
    *s = '\0';
    if (sftp_mkdir (h->sftp, p, 0750) < 0) {
      at = sftp_lstat (h->sftp, p);
      if (at == NULL || at->type != SSH_FILEXFER_TYPE_DIRECTORY) {
        sftp_attributes_free (at);
        if (at)
          plugin_err_set (e, ENOTDIR, "%s on %s is not a directory", p,
                          h->url);
        else
          fail_sftp (h, e, "cannot create directory %s on %s", p, h->url);
        r = -1;
        break;
      }
      sftp_attributes_free (at);
    }
    *s = '/';
  }
  free (p);
  return r;
}

static int
op_put_begin (struct sftp_target *h, void *arg, struct plugin_err *e)
{
  struct sftp_put *s = arg;
  sftp_attributes at;
  unsigned char rnd[TEMP_RANDOM / 2];
  const char *base = strrchr (s->path, '/') + 1;
  size_t dirlen = base - s->path;

  at = sftp_lstat (h->sftp, s->path);
  if (at) {
    sftp_attributes_free (at);
    plugin_err_set (e, EEXIST, "%s already exists on %s; nothing is replaced",
                    s->path, h->url);
    return -1;
  }
  if (sftp_get_error (h->sftp) != SSH_FX_NO_SUCH_FILE)
    return fail_sftp (h, e, "cannot stat %s on %s", s->path, h->url);
  if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd) {
    plugin_err_set (e, errno, "getrandom: %s", strerror (errno));
    return -1;
  }
  free (s->temp);
  if (asprintf (&s->temp, "%.*s.%s" TEMP_TAG "%02x%02x%02x%02x",
                (int) dirlen, s->path, base, rnd[0], rnd[1], rnd[2], rnd[3])
      == -1) {
    s->temp = NULL;
    plugin_err_set (e, ENOMEM, "out of memory");
    return -1;
  }
  s->f = sftp_open (h->sftp, s->temp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (s->f == NULL && sftp_get_error (h->sftp) == SSH_FX_NO_SUCH_FILE) {
    if (make_parents (h, s->temp, e) == -1)
      return -1;
    s->f = sftp_open (h->sftp, s->temp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  }
  if (s->f == NULL)
    return fail_sftp (h, e, "cannot create %s on %s", s->temp, h->url);
  s->gen = h->gen;
  return 0;
}

static void
put_free (struct sftp_put *s)
{
  free (s->path);
  free (s->temp);
  free (s);
}

static void *
sftp_put_begin2 (void *handle, const char *name, uint64_t size,
                 uint32_t flags)
{
  struct sftp_target *h = handle;
  struct sftp_put *s;
  struct plugin_err e = { 0 };

  if (check_call ("put_begin2", flags, name) == -1)
    return NULL;
  s = calloc (1, sizeof *s);
  if (s == NULL || (s->path = full_path (h, name, &e)) == NULL) {
    free (s);
    errno = ENOMEM;
    virtvault_error ("out of memory");
    return NULL;
  }
  s->h = h;
  s->size = size;
  /* Nothing is written yet: creating the temporary file may be retried. */
  if (run_op (h, true, op_put_begin, s) == -1) {
    put_free (s);
    return NULL;
  }
  return s;
}

static void *
sftp_put_begin (void *handle, const char *name)
{
  return sftp_put_begin2 (handle, name, VIRTVAULT_SIZE_UNKNOWN, 0);
}

/* With the lock held: the stream's session is still the current one. */
static int
put_session_ok (struct sftp_put *s, struct plugin_err *e)
{
  if (s->f && s->gen == s->h->gen && s->h->sftp)
    return 0;
  plugin_err_set (e, ECONNRESET, "connection to %s port %u was lost while "
                  "writing %s; the upload is not resumed", s->h->host,
                  s->h->port, s->path);
  s->f = NULL;                  /* freed with the old session */
  return -1;
}

static int
sftp_put_write (void *stream, const void *buf, size_t count)
{
  struct sftp_put *s = stream;
  struct sftp_target *h = s->h;
  struct plugin_err e = { 0 };
  const char *p = buf;
  int r = 0;

  if (s->size != VIRTVAULT_SIZE_UNKNOWN && count > s->size - s->written) {
    errno = EINVAL;
    virtvault_error ("writing %s on %s: more than the %" PRIu64 " bytes "
                     "announced", s->path, h->url, s->size);
    return -1;
  }
  pthread_mutex_lock (&h->lock);
  if (put_session_ok (s, &e) == -1)
    r = -1;
  while (r == 0 && count > 0) {
    size_t n = count < CHUNK ? count : CHUNK;
    ssize_t w = sftp_write (s->f, p, n);
    if (w <= 0) {
      fail_sftp (h, &e, "cannot write %s on %s", s->temp, h->url);
      r = -1;
      break;
    }
    p += w;
    count -= w;
    s->written += w;
  }
  pthread_mutex_unlock (&h->lock);
  if (r == -1)
    plugin_err_report (&e);
  return r;
}

static void
sftp_put_abort (void *stream)
{
  struct sftp_put *s = stream;
  struct sftp_target *h = s->h;

  pthread_mutex_lock (&h->lock);
  if (s->gen == h->gen && h->sftp) {
    if (s->f)
      sftp_close (s->f);
    if (h->sftp)
      sftp_unlink (h->sftp, s->temp);
  }
  /* Else remove_partial removes the temporary file later. */
  pthread_mutex_unlock (&h->lock);
  put_free (s);
}

static int
sftp_put_commit (void *stream)
{
  struct sftp_put *s = stream;
  struct sftp_target *h = s->h;
  struct plugin_err e = { 0 };
  int r = -1;

  if (s->size != VIRTVAULT_SIZE_UNKNOWN && s->written != s->size) {
    errno = EINVAL;
    virtvault_error ("%s on %s: %" PRIu64 " bytes written, %" PRIu64
                     " announced; not published", s->path, h->url,
                     s->written, s->size);
    sftp_put_abort (s);
    return -1;
  }
  pthread_mutex_lock (&h->lock);
  if (put_session_ok (s, &e) == -1)
    goto out;
  if (h->fsync_ext && sftp_fsync (s->f) < 0) {
    fail_sftp (h, &e, "cannot fsync %s on %s", s->temp, h->url);
    goto out;
  }
  if (sftp_close (s->f) < 0) {
    s->f = NULL;
    fail_sftp (h, &e, "cannot close %s on %s", s->temp, h->url);
    goto out;
  }
  s->f = NULL;
  /* SFTP v3 rename (OpenSSH: link + unlink) never replaces. */
  if (sftp_rename (h->sftp, s->temp, s->path) < 0) {
    sftp_attributes at = h->sftp ? sftp_lstat (h->sftp, s->path) : NULL;
    if (at) {
      sftp_attributes_free (at);
      plugin_err_set (&e, EEXIST, "cannot publish %s on %s: the name exists; "
                      "nothing was replaced", s->path, h->url);
    }
    else
      fail_sftp (h, &e, "cannot rename %s to %s on %s", s->temp, s->path,
                 h->url);
    goto out;
  }
  r = 0;

 out:
  if (r == -1 && s->gen == h->gen && h->sftp) {
    if (s->f)
      sftp_close (s->f);
    sftp_unlink (h->sftp, s->temp);
  }
  pthread_mutex_unlock (&h->lock);
  if (r == -1)
    plugin_err_report (&e);
  put_free (s);
  return r;
}

/* ---- list ---- */

struct entry {
  char *name;
  uint64_t size;
};

struct list_arg {
  const char *prefix;
  bool temps;                   /* the temporary files instead */
  struct entry *v;
  size_t n, cap;
};

static void
list_reset (struct list_arg *a)
{
  for (size_t i = 0; i < a->n; i++)
    free (a->v[i].name);
  free (a->v);
  a->v = NULL;
  a->n = a->cap = 0;
}

static bool
may_match (const char *rel, size_t len, const char *prefix)
{
  size_t plen = strlen (prefix);
  return strncmp (rel, prefix, len < plen ? len : plen) == 0;
}

static int
walk (struct sftp_target *h, struct list_arg *a, const char *rel,
      unsigned depth, struct plugin_err *e)
{
  char *path = full_path (h, rel, e), *sub;
  sftp_dir d;
  sftp_attributes at;
  int r = 0;

  if (path == NULL)
    return -1;
  if (rel[0] == '\0')
    path[strlen (h->root) > 1 ? strlen (h->root) : 1] = '\0';
  d = sftp_opendir (h->sftp, path);
  if (d == NULL) {
    r = sftp_get_error (h->sftp) == SSH_FX_NO_SUCH_FILE && depth > 0 ? 0
      : fail_sftp (h, e, "cannot list %s on %s", path, h->url);
    free (path);
    return r;
  }
  while (r == 0 && (at = sftp_readdir (h->sftp, d)) != NULL) {
    const char *nm = at->name;
    if (nm == NULL || strcmp (nm, ".") == 0 || strcmp (nm, "..") == 0)
      goto next;
    if (!plugin_valid_entry_name (nm) ||
        strlen (rel) + strlen (nm) + 1 > VIRTVAULT_PLUGIN_NAME_MAX) {
      if (vhost && vhost->log)
        vhost->log (VIRTVAULT_LOG_WARNING, "sftp: ignoring an invalid name "
                    "in %s on %s", path, h->url);
      goto next;
    }
    if (asprintf (&sub, "%s%s%s", rel, rel[0] ? "/" : "", nm) == -1) {
      plugin_err_set (e, ENOMEM, "out of memory");
      r = -1;
      goto next;
    }
    if (at->type == SSH_FILEXFER_TYPE_DIRECTORY) {
      if (depth + 1 < MAX_DEPTH && may_match (sub, strlen (sub), a->prefix))
        r = walk (h, a, sub, depth + 1, e);
      free (sub);
    }
    else if (at->type == SSH_FILEXFER_TYPE_REGULAR &&
             is_temp_name (nm) == a->temps &&
             strncmp (sub, a->prefix, strlen (a->prefix)) == 0) {
      if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct entry *v = cap > MAX_ENTRIES ? NULL
          : realloc (a->v, cap * sizeof *v);
        if (v == NULL) {
          plugin_err_set (e, a->cap >= MAX_ENTRIES ? EOVERFLOW : ENOMEM,
                          "more than %d objects under %s on %s", MAX_ENTRIES,
                          path, h->url);
          free (sub);
          r = -1;
          goto next;
        }
        a->v = v;
        a->cap = cap;
      }
      a->v[a->n].name = sub;
      a->v[a->n++].size = at->size;
    }
    else
      free (sub);               /* links and others are never followed */
  next:
    sftp_attributes_free (at);
  }
  if (r == 0 && !sftp_dir_eof (d))
    r = fail_sftp (h, e, "cannot list %s on %s", path, h->url);
  if (h->sftp)
    sftp_closedir (d);
  free (path);
  return r;
}

static int
op_list (struct sftp_target *h, void *arg, struct plugin_err *e)
{
  struct list_arg *a = arg;
  char *start;
  const char *slash = strrchr (a->prefix, '/');
  int r;

  list_reset (a);
  /* Start at the deepest directory the prefix names. */
  start = strndup (a->prefix, slash ? (size_t) (slash - a->prefix) : 0);
  if (start == NULL) {
    plugin_err_set (e, ENOMEM, "out of memory");
    return -1;
  }
  r = walk (h, a, start, start[0] ? 1 : 0, e);
  free (start);
  return r;
}

static int
compare_entries (const void *x, const void *y)
{
  return strcmp (((const struct entry *) x)->name,
                 ((const struct entry *) y)->name);
}

static int
list_objects (struct sftp_target *h, const char *prefix, bool temps,
              struct list_arg *a)
{
  a->prefix = prefix;
  a->temps = temps;
  if (prefix[0] && (prefix[0] == '/' || strstr (prefix, "..") ||
                    strlen (prefix) > VIRTVAULT_PLUGIN_NAME_MAX)) {
    errno = EINVAL;
    virtvault_error ("invalid list prefix \"%.100s\"", prefix);
    return -1;
  }
  if (run_op (h, true, op_list, a) == -1) {
    list_reset (a);
    return -1;
  }
  qsort (a->v, a->n, sizeof *a->v, compare_entries);
  return 0;
}

static int
sftp_list (void *handle, const char *prefix, virtvault_list_cb cb,
           void *opaque)
{
  struct list_arg a = { 0 };
  int r = 0;

  if (list_objects (handle, prefix, false, &a) == -1)
    return -1;
  /* Callbacks run without the lock: they may call the plugin. */
  for (size_t i = 0; r == 0 && i < a.n; i++)
    if (cb (opaque, a.v[i].name, a.v[i].size) != 0)
      r = -1;
  list_reset (&a);
  return r;
}

/* ---- remove ---- */

static int
op_remove (struct sftp_target *h, void *arg, struct plugin_err *e)
{
  const char *name = arg;
  char *path = full_path (h, name, e), *s;
  size_t rootlen = strlen (h->root);

  if (path == NULL)
    return -1;
  if (sftp_unlink (h->sftp, path) < 0 &&
      sftp_get_error (h->sftp) != SSH_FX_NO_SUCH_FILE) {
    fail_sftp (h, e, "cannot remove %s on %s", name, h->url);
    free (path);
    return -1;
  }
  /* Empty parent directories go too (a failing rmdir: not empty). */
  while ((s = strrchr (path, '/')) != NULL && (size_t) (s - path) > rootlen) {
    *s = '\0';
    if (sftp_rmdir (h->sftp, path) < 0)
      break;
  }
  free (path);
  return 0;
}

static int
sftp_remove (void *handle, const char *name)
{
  if (check_name (name) == -1)
    return -1;
  return run_op (handle, true, op_remove, (void *) name);
}

static int
sftp_remove_partial (void *handle, const char *prefix)
{
  struct list_arg a = { 0 };
  int r = 0;

  if (list_objects (handle, prefix, true, &a) == -1)
    return -1;
  for (size_t i = 0; r == 0 && i < a.n; i++)
    r = run_op (handle, true, op_remove, a.v[i].name);
  list_reset (&a);
  return r;
}

/* ---- capabilities, test ---- */

static int
op_nothing (struct sftp_target *h, void *arg, struct plugin_err *e)
{
  (void) h; (void) arg; (void) e;
  return 0;
}

static int
sftp_capabilities (void *handle, struct virtvault_caps *caps, uint32_t flags)
{
  struct sftp_target *h = handle;

  if (check_call ("capabilities", flags, NULL) == -1)
    return -1;
  /* Whether fsync@openssh.com is offered needs the server. */
  if (run_op (h, true, op_nothing, NULL) == -1)
    return -1;
  caps->flags = VIRTVAULT_CAP_ATOMIC_PUBLISH | VIRTVAULT_CAP_CONSISTENT_LIST
    | (h->fsync_ext ? VIRTVAULT_CAP_DURABLE_COMMIT : 0);
  caps->io_size = CHUNK * INFLIGHT;
  caps->io_align = 0;
  caps->max_parallel_reads = 1;
  caps->max_object_size = 0;
  return 0;
}

struct probe_count {
  const char *name;
  int found;
};

static int
probe_seen (void *opaque, const char *name, uint64_t size)
{
  struct probe_count *c = opaque;
  if (strcmp (name, c->name) == 0 && size == 8192)
    c->found++;
  return 0;
}

static int
sftp_test (void *handle)
{
  struct sftp_target *h = handle;
  unsigned char rnd[4], data[8192], back[4096];
  char name[64], prefix[32];
  struct probe_count c = { name, 0 };
  void *s;
  int64_t n;

  if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd) {
    virtvault_error ("getrandom: %s", strerror (errno));
    return -1;
  }
  snprintf (prefix, sizeof prefix, "vv-probe-%02x%02x%02x%02x/",
            rnd[0], rnd[1], rnd[2], rnd[3]);
  snprintf (name, sizeof name, "%sprobe", prefix);
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (unsigned char) (i * 7 + rnd[i % 4]);
  s = sftp_put_begin2 (h, name, sizeof data, 0);
  if (s == NULL)
    return -1;
  if (sftp_put_write (s, data, sizeof data) == -1) {
    sftp_put_abort (s);
    return -1;
  }
  if (sftp_put_commit (s) == -1)
    return -1;
  n = sftp_get (h, name, back, sizeof back, 1000);
  if (n != (int64_t) sizeof back || memcmp (back, data + 1000, n) != 0) {
    if (n >= 0) {
      errno = EIO;
      virtvault_error ("probe %s on %s read back wrong", name, h->url);
    }
    sftp_remove (h, name);
    return -1;
  }
  if (sftp_list (h, prefix, probe_seen, &c) == -1 || c.found != 1) {
    if (c.found != 1) {
      errno = EIO;
      virtvault_error ("probe %s on %s is not listed after it was written",
                       name, h->url);
    }
    sftp_remove (h, name);
    return -1;
  }
  return sftp_remove (h, name);
}

/* ---- load, close ---- */

static int
sftp_load_host (const struct virtvault_host *host, uint32_t flags)
{
  if (check_call ("load_host", flags, NULL) == -1)
    return -1;
  vhost = host;
  if (ssh_init () != SSH_OK) {
    errno = EIO;
    virtvault_error ("cannot initialise libssh");
    return -1;
  }
  return 0;
}

static int
sftp_load (void)
{
  return sftp_load_host (NULL, 0);
}

static void
sftp_unload (void)
{
  ssh_finalize ();
  vhost = NULL;
}

static void
target_free (struct sftp_target *h)
{
  drop_session (h);
  pthread_mutex_destroy (&h->lock);
  free (h->url);
  free (h->user);
  free (h->host);
  free (h->root);
  free (h->identity);
  free (h->known_hosts);
  free (h);
}

static void
sftp_close_target (void *handle)
{
  if (handle)
    target_free (handle);
}

static struct virtvault_plugin plugin = {
  .name = "sftp",
  .version = PACKAGE_VERSION,
  .description = "a directory on an SFTP server, key authentication "
    "(sftp://user@host:port/path)",
  .config_help = SFTP_CONFIG_HELP,
  .load = sftp_load,
  .unload = sftp_unload,
  .open = sftp_open_target,
  .close = sftp_close_target,
  .test = sftp_test,
  .put_begin = sftp_put_begin,
  .put_write = sftp_put_write,
  .put_commit = sftp_put_commit,
  .put_abort = sftp_put_abort,
  .get = sftp_get,
  .stat = sftp_stat_object,
  .list = sftp_list,
  .remove = sftp_remove,
  .remove_partial = sftp_remove_partial,
  .load_host = sftp_load_host,
  .capabilities = sftp_capabilities,
  .put_begin2 = sftp_put_begin2,
  .read_open = sftp_read_open,
  .pread = sftp_pread_object,
  .read_close = sftp_read_close,
};

VIRTVAULT_REGISTER_PLUGIN (plugin)
