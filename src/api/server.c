#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <microhttpd.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"
#include "api/api-internal.h"

/* Concurrent connections (one thread each), per-connection memory for
 * headers and buffers, and how long an idle connection is kept.
 */
#define CONNECTION_LIMIT 64
#define CONNECTION_MEMORY (64 * 1024)
#define CONNECTION_TIMEOUT_S 60
#define LISTEN_BACKLOG 64

struct vv_api_server {
  struct MHD_Daemon *mhd;
  struct vv_api_context *ctx;
  char *path;
  dev_t dev;                    /* of the socket we bound, so stop only */
  ino_t ino;                    /* removes our own */
};

/* One HTTP request, created when its request line arrives. */
struct request {
  char *uri;                    /* raw, with the query string */
  char *body;
  size_t len;
  bool started;
  bool too_large;
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
    free (req);
    *req_cls = NULL;
  }
}

/* Takes body (malloc'd JSON text) whatever happens. */
static enum MHD_Result
respond (struct MHD_Connection *conn, int status, char *body)
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
  r = MHD_queue_response (conn, (unsigned) status, resp);
  MHD_destroy_response (resp);
  return r;
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

static enum MHD_Result
too_large (struct vv_api_server *s, struct MHD_Connection *conn,
           const char *method, const char *url)
{
  uid_t uid;

  if (peer_uid (conn, &uid) == -1)
    uid = (uid_t) -1;
  vv_api_log (s->ctx, "uid %ld %s %s: 413 invalid: body larger than %d bytes",
              uid == (uid_t) -1 ? -1L : (long) uid, method, url,
              VV_API_MAX_BODY);
  return respond_error (conn, 413, VV_ERR_INVALID,
                        "the request body is larger than 1 MiB");
}

static enum MHD_Result
access_cb (void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **req_cls)
{
  struct vv_api_server *s = cls;
  struct request *req = *req_cls;
  char *out = NULL;
  const char *query;
  uid_t uid;
  int status;

  if (req == NULL)
    return MHD_NO;              /* out of memory in uri_cb */

  if (!req->started) {
    const char *cl;

    req->started = true;
    cl = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    /* Refuse before the body is sent: curl waits for "100 Continue". */
    if (cl && strtoull (cl, NULL, 10) > VV_API_MAX_BODY)
      return too_large (s, conn, method, url);
    return MHD_YES;
  }

  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;

    *upload_data_size = 0;
    if (req->too_large)
      return MHD_YES;
    if (req->len + n > VV_API_MAX_BODY) {
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

  if (req->too_large)
    return too_large (s, conn, method, url);
  if (peer_uid (conn, &uid) == -1) {
    vv_api_log (s->ctx, "%s %s: 403: SO_PEERCRED failed", method, url);
    return respond_error (conn, 403, VV_ERR_FORBIDDEN,
                          "cannot tell which user is calling "
                          "(SO_PEERCRED failed)");
  }

  query = strchr (req->uri, '?');
  status = vv_api_handle (s->ctx, uid, method, url, query ? query + 1 : NULL,
                          req->body ? req->body : "", req->len, &out);
  return respond (conn, status, out);
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
  s->path = vv_strdup (socket_path);
  if (s->path == NULL) {
    free (s);
    return NULL;
  }
  fd = listen_on (socket_path, &st);
  if (fd == -1) {
    free (s->path);
    free (s);
    return NULL;
  }
  s->dev = st.st_dev;
  s->ino = st.st_ino;

  s->mhd = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD
                             | MHD_USE_THREAD_PER_CONNECTION
                             | MHD_USE_ITC,
                             0, NULL, NULL, access_cb, s,
                             MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
                             MHD_OPTION_URI_LOG_CALLBACK, uri_cb, s,
                             MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
                             MHD_OPTION_CONNECTION_LIMIT,
                             (unsigned int) CONNECTION_LIMIT,
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
    free (s->path);
    free (s);
    return NULL;
  }
  return s;
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
  free (s->path);
  free (s);
  return NULL;
}
