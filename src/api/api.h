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

/* Largest request body accepted. */
#define VV_API_MAX_BODY (1024 * 1024)

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
};

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
