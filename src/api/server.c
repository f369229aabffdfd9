/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <microhttpd.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"
#include "api/api-internal.h"

/* Concurrent connections (one thread each; api.h has the limits),
 * per-connection memory for headers and buffers, how long an idle
 * connection is kept, and how long one beyond its user's limit is kept
 * to be told so.
 */
#define CONNECTION_MEMORY (64 * 1024)
#define CONNECTION_TIMEOUT_S 60
#define REFUSED_TIMEOUT_S 1
#define LISTEN_BACKLOG 64
/* Most of the body of a refused call that is read and thrown away, so
 * that a client that sends it without waiting for "100 Continue" gets
 * the answer rather than a broken pipe.
 */
#define DRAIN_MAX (16 * 1024 * 1024)

/* Open connections of one uid (admins are counted too, not limited). */
struct uid_count {
  uid_t uid;
  unsigned n;
};

struct vv_api_server {
  struct MHD_Daemon *mhd;
  struct vv_api_context *ctx;
  char *path;
  dev_t dev;                    /* of the socket we bound, so stop only */
  ino_t ino;                    /* removes our own */
  pthread_mutex_t lock;         /* of what follows */
  struct uid_count counts[VV_API_CONNECTIONS];
  size_t n_counts;
  unsigned users;               /* connections of non-admins */
};

/* One connection, from accept to close: who is calling, whether it is
 * over its limit.
 */
struct conn {
  bool known;                   /* SO_PEERCRED worked */
  bool counted;
  bool over_limit;
  uid_t uid;
  unsigned open;                /* connections of uid when it was refused */
};

/* One HTTP request, created when its request line arrives. */
struct request {
  char *uri;                    /* raw, with the query string */
  char *body;
  size_t len;
  size_t max_body;              /* of the endpoint */
  bool started;
  bool too_large;
  /* Refused before its body: the answer, sent once the body is drained. */
  int refused_status;
  char *refused_body;
  uint64_t drained;
};

static void *
uri_cb (void *cls, const char *uri, struct MHD_Connection *conn)
{
  struct request *req = calloc (1, sizeof *req);

  if (req == NULL)
    return NULL;
  req->uri = strdup (uri ? uri : "");
  if (req->uri == NULL) {
    free (req);
    return NULL;
  }
  return req;
}

static void
completed_cb (void *cls, struct MHD_Connection *conn, void **req_cls,
              enum MHD_RequestTerminationCode toe)
{
  struct request *req = *req_cls;

  if (req) {
    free (req->uri);
    free (req->body);
    free (req->refused_body);
    free (req);
    *req_cls = NULL;
  }
}

/* Takes body (malloc'd JSON text) whatever happens; close ends the
 * connection after the answer.
 */
static enum MHD_Result
respond_close (struct MHD_Connection *conn, int status, char *body,
               bool close)
{
  struct MHD_Response *resp;
  enum MHD_Result r;

  if (body == NULL)
    resp = MHD_create_response_from_buffer (0, (void *) "",
                                            MHD_RESPMEM_PERSISTENT);
  else
    resp = MHD_create_response_from_buffer (strlen (body), body,
                                            MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free (body);
    return MHD_NO;
  }
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                           "application/json");
  if (close)
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONNECTION, "close");
  r = MHD_queue_response (conn, (unsigned) status, resp);
  MHD_destroy_response (resp);
  return r;
}

static enum MHD_Result
respond (struct MHD_Connection *conn, int status, char *body)
{
  return respond_close (conn, status, body, false);
}

static enum MHD_Result
respond_error (struct MHD_Connection *conn, int status, enum vv_errcode code,
               const char *msg)
{
  return respond (conn, status, vv_api_error_body (code, msg));
}

static int
peer_uid (struct MHD_Connection *conn, uid_t *ret)
{
  const union MHD_ConnectionInfo *info;
  struct ucred cred;
  socklen_t len = sizeof cred;

  info = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (info == NULL
      || getsockopt (info->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)
         == -1
      || len != sizeof cred)
    return -1;
  *ret = cred.uid;
  return 0;
}

static struct uid_count *
find_count (struct vv_api_server *s, uid_t uid)
{
  for (size_t i = 0; i < s->n_counts; i++)
    if (s->counts[i].uid == uid)
      return &s->counts[i];
  return NULL;
}

/* Counts the connections per uid; marks those beyond the limit of a
 * user, which are answered 429 and closed (an idle one after
 * REFUSED_TIMEOUT_S), so one user cannot take every connection.
 */
static void
notify_cb (void *cls, struct MHD_Connection *mc, void **socket_context,
           enum MHD_ConnectionNotificationCode toe)
{
  struct vv_api_server *s = cls;
  struct conn *c = *socket_context;

  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    unsigned per_uid = s->ctx->connections_per_uid
      ? s->ctx->connections_per_uid : VV_API_DEFAULT_CONNECTIONS_PER_UID;
    struct uid_count *uc;
    bool admin;

    c = calloc (1, sizeof *c);
    *socket_context = c;
    if (c == NULL || peer_uid (mc, &c->uid) == -1)
      return;                   /* answered 403 (or dropped) */
    c->known = true;
    admin = vv_api_is_admin (s->ctx, c->uid);
    VV_LOCK_GUARD (&s->lock);
    uc = find_count (s, c->uid);
    if (!admin
        && ((uc && uc->n >= per_uid)
            || s->users >= VV_API_CONNECTIONS - VV_API_ADMIN_RESERVE)) {
      c->over_limit = true;
      c->open = uc ? uc->n : 0;
      MHD_set_connection_option (mc, MHD_CONNECTION_OPTION_TIMEOUT,
                                 (unsigned int) REFUSED_TIMEOUT_S);
      return;
    }
    if (uc == NULL) {
      /* At most VV_API_CONNECTIONS connections, so never full. */
      uc = &s->counts[s->n_counts++];
      *uc = (struct uid_count) { .uid = c->uid };
    }
    uc->n++;
    if (!admin)
      s->users++;
    c->counted = true;
    return;
  }

  if (toe == MHD_CONNECTION_NOTIFY_CLOSED && c) {
    if (c->counted) {
      VV_LOCK_GUARD (&s->lock);
      struct uid_count *uc = find_count (s, c->uid);
      if (uc && --uc->n == 0)
        *uc = s->counts[--s->n_counts];
      if (!vv_api_is_admin (s->ctx, c->uid))
        s->users--;
    }
    free (c);
    *socket_context = NULL;
  }
}

static enum MHD_Result
refuse_connection (struct vv_api_server *s, struct MHD_Connection *mc,
                   const struct conn *c, const char *method, const char *url)
{
  unsigned per_uid = s->ctx->connections_per_uid
    ? s->ctx->connections_per_uid : VV_API_DEFAULT_CONNECTIONS_PER_UID;
  _cleanup_free_ char *msg = NULL;

  if (c->open >= per_uid)
    msg = vv_printf ("uid %u already has %u connections open to virtvaultd "
                     "(connections_per_uid of the daemon config); close "
                     "some or wait for them", (unsigned) c->uid, c->open);
  else
    msg = vv_printf ("virtvaultd serves its users %d connections at once "
                     "and has no more free; try again later",
                     VV_API_CONNECTIONS - VV_API_ADMIN_RESERVE);
  vv_api_log_refusal (s->ctx, c->uid, method, url, 429,
                      msg ? msg : "too many connections");
  return respond_close (mc, 429,
                        vv_api_error_body (VV_ERR_BUSY,
                                           msg ? msg : "too many connections"),
                        true);
}

/* Content-Length as a number, UINT64_MAX when absent or not one. */
static uint64_t
content_length (struct MHD_Connection *mc)
{
  const char *cl = MHD_lookup_connection_value (mc, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);
  char *end;
  uint64_t v;

  if (cl == NULL || *cl < '0' || *cl > '9')
    return UINT64_MAX;
  errno = 0;
  v = strtoull (cl, &end, 10);
  return errno || *end ? UINT64_MAX : v;
}

/* Whether the request has a body (a length above 0, or chunks). */
static bool
has_body (struct MHD_Connection *mc, uint64_t cl)
{
  const char *te = MHD_lookup_connection_value (mc, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_TRANSFER_ENCODING);

  if (cl != UINT64_MAX)
    return cl > 0;
  return te != NULL;
}

/* Whether the client waits for "100 Continue" before sending its body. */
static bool
expects_continue (struct MHD_Connection *mc)
{
  const char *e = MHD_lookup_connection_value (mc, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_EXPECT);

  return e && strcasecmp (e, "100-continue") == 0;
}

static enum MHD_Result
access_cb (void *cls, struct MHD_Connection *mc, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **req_cls)
{
  struct vv_api_server *s = cls;
  struct request *req = *req_cls;
  const union MHD_ConnectionInfo *info;
  const struct conn *c;
  char *out = NULL;
  const char *query;
  uint64_t cl;
  int status;

  if (req == NULL)
    return MHD_NO;              /* out of memory in uri_cb */
  info = MHD_get_connection_info (mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  c = info ? info->socket_context : NULL;
  if (c == NULL)
    return MHD_NO;              /* out of memory in notify_cb */

  if (!req->started) {
    req->started = true;
    if (!c->known) {
      vv_api_log (s->ctx, "%s %s: 403: SO_PEERCRED failed", method, url);
      return respond_error (mc, 403, VV_ERR_FORBIDDEN,
                            "cannot tell which user is calling "
                            "(SO_PEERCRED failed)");
    }
    if (c->over_limit)
      return refuse_connection (s, mc, c, method, url);
    /* Everything that needs no body is decided before it is read (curl
     * waits for "100 Continue" before sending a large one).
     */
    cl = content_length (mc);
    status = vv_api_precheck (s->ctx, c->uid, method, url, cl,
                              &req->max_body, &out);
    if (status == 0)
      return MHD_YES;
    if (!has_body (mc, cl) || expects_continue (mc) || cl > DRAIN_MAX) {
      /* The body is not read: the connection cannot carry another
       * request after it, and says so.
       */
      return respond_close (mc, status, out, true);
    }
    /* The client sends its body anyway: read it into nothing. */
    req->refused_status = status;
    req->refused_body = out;
    return MHD_YES;
  }

  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;

    *upload_data_size = 0;
    if (req->refused_status) {
      req->drained += n;
      return req->drained > DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    if (req->too_large)
      return MHD_YES;
    if (req->len + n > req->max_body) {
      /* A response cannot be queued while data is being delivered: drop
       * what came and answer at the end.
       */
      req->too_large = true;
      free (req->body);
      req->body = NULL;
      req->len = 0;
      return MHD_YES;
    }
    char *nb = realloc (req->body, req->len + n + 1);
    if (nb == NULL)
      return MHD_NO;
    memcpy (nb + req->len, upload_data, n);
    req->body = nb;
    req->len += n;
    req->body[req->len] = '\0';
    return MHD_YES;
  }

  if (req->refused_status) {
    out = TAKE_PTR (req->refused_body);
    return respond (mc, req->refused_status, out);
  }
  if (req->too_large) {
    _cleanup_free_ char *msg =
      vv_printf ("the request body is larger than %zu bytes, the limit of "
                 "%s %s", req->max_body, method, url);
    vv_api_log_refusal (s->ctx, c->uid, method, url, 413,
                        msg ? msg : "body too large");
    return respond_error (mc, 413, VV_ERR_INVALID,
                          msg ? msg : "the request body is too large");
  }

  query = strchr (req->uri, '?');
  status = vv_api_handle (s->ctx, c->uid, method, url,
                          query ? query + 1 : NULL,
                          req->body ? req->body : "", req->len, &out);
  return respond (mc, status, out);
}

/* A socket file left by a daemon that died is removed; one that a live
 * daemon answers on is not.
 */
static int
clear_stale_socket (const char *path)
{
  struct stat st;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  _cleanup_close_ int fd = -1;

  if (lstat (path, &st) == -1) {
    if (errno == ENOENT)
      return 0;
    vv_error_errno (errno, "cannot check socket %s", path);
    return -1;
  }
  if (!S_ISSOCK (st.st_mode)) {
    vv_error_code (VV_ERR_INVALID,
                   "%s exists and is not a socket; remove it or choose "
                   "another socket path", path);
    return -1;
  }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    vv_error_errno (errno, "socket");
    return -1;
  }
  memcpy (sa.sun_path, path, strlen (path) + 1);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0) {
    vv_error_code (VV_ERR_BUSY,
                   "another virtvaultd is already serving %s; stop it first "
                   "or choose another socket path", path);
    return -1;
  }
  if (errno != ECONNREFUSED && errno != ENOENT) {
    vv_error_errno (errno, "cannot check whether %s is in use", path);
    return -1;
  }
  if (unlink (path) == -1 && errno != ENOENT) {
    vv_error_errno (errno, "cannot remove stale socket %s", path);
    return -1;
  }
  return 0;
}

static int
listen_on (const char *path, struct stat *ret_st)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  _cleanup_free_ char *dir = NULL;
  _cleanup_close_ int fd = -1;
  char *slash;

  if (path[0] == '\0' || strlen (path) >= sizeof sa.sun_path) {
    vv_error_code (VV_ERR_INVALID,
                   "socket path '%s' must be 1 to %zu bytes", path,
                   sizeof sa.sun_path - 1);
    return -1;
  }
  dir = vv_strdup (path);
  if (dir == NULL)
    return -1;
  slash = strrchr (dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    /* 0755 whatever the umask: anyone must reach the socket, since the
     * daemon, not the file modes, decides what a caller may do.  An
     * existing directory keeps its mode (an administrator may restrict
     * who can connect that way).
     */
    if (vv_mkdir_p (dir, 0755) == -1)
      return -1;
  }
  if (clear_stale_socket (path) == -1)
    return -1;

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    vv_error_errno (errno, "socket");
    return -1;
  }
  memcpy (sa.sun_path, path, strlen (path) + 1);
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) == -1) {
    vv_error_errno (errno, "cannot bind socket %s", path);
    return -1;
  }
  /* Everyone may connect: each call is authorised by the peer's uid. */
  if (chmod (path, 0666) == -1 || lstat (path, ret_st) == -1) {
    vv_error_errno (errno, "cannot set the mode of socket %s", path);
    unlink (path);
    return -1;
  }
  if (listen (fd, LISTEN_BACKLOG) == -1) {
    vv_error_errno (errno, "cannot listen on socket %s", path);
    unlink (path);
    return -1;
  }
  return TAKE_FD (fd);
}

struct vv_api_server *
vv_api_start (const char *socket_path, struct vv_api_context *ctx)
{
  struct vv_api_server *s;
  struct stat st;
  int fd;

  s = calloc (1, sizeof *s);
  if (s == NULL) {
    vv_error_errno (errno, "starting the API server");
    return NULL;
  }
  s->ctx = ctx;
  pthread_mutex_init (&s->lock, NULL);
  s->path = vv_strdup (socket_path);
  ctx->failures = vv_api_failures_new ();
  if (s->path == NULL || ctx->failures == NULL)
    goto fail;
  fd = listen_on (socket_path, &st);
  if (fd == -1)
    goto fail;
  s->dev = st.st_dev;
  s->ino = st.st_ino;

  s->mhd = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD
                             | MHD_USE_THREAD_PER_CONNECTION
                             | MHD_USE_ITC,
                             0, NULL, NULL, access_cb, s,
                             MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
                             MHD_OPTION_URI_LOG_CALLBACK, uri_cb, s,
                             MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
                             MHD_OPTION_NOTIFY_CONNECTION, notify_cb, s,
                             MHD_OPTION_CONNECTION_LIMIT,
                             (unsigned int) VV_API_CONNECTIONS,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                             (size_t) CONNECTION_MEMORY,
                             MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned int) CONNECTION_TIMEOUT_S,
                             MHD_OPTION_END);
  if (s->mhd == NULL) {
    vv_error ("cannot start the HTTP server on %s (libmicrohttpd refused "
              "the socket)", socket_path);
    close (fd);
    unlink (socket_path);
    goto fail;
  }
  return s;

 fail:
  ctx->failures = vv_api_failures_free (ctx->failures);
  pthread_mutex_destroy (&s->lock);
  free (s->path);
  free (s);
  return NULL;
}

struct vv_api_server *
vv_api_stop (struct vv_api_server *s)
{
  struct stat st;
  MHD_socket fd;

  if (s == NULL)
    return NULL;
  /* Stop accepting at once; requests in flight finish below. */
  fd = MHD_quiesce_daemon (s->mhd);
  if (fd != MHD_INVALID_SOCKET)
    close (fd);
  if (lstat (s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
    unlink (s->path);
  MHD_stop_daemon (s->mhd);
  s->ctx->failures = vv_api_failures_free (s->ctx->failures);
  pthread_mutex_destroy (&s->lock);
  free (s->path);
  free (s);
  return NULL;
}
