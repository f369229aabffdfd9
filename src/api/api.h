/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON API under /v1/ on the daemon's UNIX socket (libmicrohttpd).
 * Every endpoint is documented in docs/api.md.
 */
#ifndef VV_API_H
#define VV_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "jobs/jobs.h"

struct vv_scheduler;

/* Largest request body of an endpoint that takes no fields ({} and
 * white space), and of one that takes a JSON object of fields.
 */
#define VV_API_BODY_NONE 4096
#define VV_API_BODY_FIELDS (64 * 1024)

/* Connections the daemon serves at once, of which a user (neither root
 * nor an admin) may hold connections_per_uid of the daemon config, and
 * users together all but VV_API_ADMIN_RESERVE.
 */
#define VV_API_CONNECTIONS 256
#define VV_API_ADMIN_RESERVE 32
#define VV_API_DEFAULT_CONNECTIONS_PER_UID 16

struct vv_api_failures;

struct vv_api_context {
  struct vv_engine *engine;
  struct vv_jobs *jobs;
  /* Admins besides uid 0 (admin_uids of the daemon config); may be NULL. */
  const uid_t *admin_uids;
  size_t n_admin_uids;
  /* Receives one line (no newline) per job start and end and per failed
   * request; called from any thread; may be NULL.  The library never
   * prints: the daemon decides where this goes.
   */
  void (*log) (const char *line);
  /* Appended with policies. */
  struct vv_scheduler *scheduler;       /* may be NULL (no scheduler) */
  unsigned manual_limit;                /* manual backups per instance */
  /* Appended with the resource limits. */
  unsigned connections_per_uid;         /* of a user; 0 = the default */
  struct vv_api_failures *failures;     /* set by vv_api_start */
};

/* Before the body is read: routes the call and decides what needs no
 * body (unknown endpoints, methods, callers who may not call it at all,
 * a Content-Length beyond the endpoint's limit; content_length is
 * UINT64_MAX when unknown).  0 when the body may be read, at most
 * *ret_max_body bytes; else the HTTP status with *ret_body as in
 * vv_api_handle.
 */
int vv_api_precheck (struct vv_api_context *ctx, uid_t uid,
                     const char *method, const char *path,
                     uint64_t content_length, size_t *ret_max_body,
                     char **ret_body);

/* The rate limit of logged and audited failures of users (router.c). */
struct vv_api_failures *vv_api_failures_new (void);
struct vv_api_failures *vv_api_failures_free (struct vv_api_failures *f);

/* One request, independent of HTTP: routes it and returns the HTTP
 * status and a JSON body (always an object or array; errors are
 * {"error":{"code":"...","message":"..."}}).  uid is the caller's (from
 * SO_PEERCRED); query is the raw query string or NULL.
 */
int vv_api_handle (struct vv_api_context *ctx, uid_t uid,
                   const char *method, const char *path, const char *query,
                   const char *body, size_t body_len,
                   char **ret_body);

struct vv_api_server;
/* Listens on socket_path (replacing a stale socket, mode 0666: the
 * daemon authorises each call by the peer's uid) and serves until stop.
 */
struct vv_api_server *vv_api_start (const char *socket_path,
                                    struct vv_api_context *ctx);
struct vv_api_server *vv_api_stop (struct vv_api_server *s);

#endif
