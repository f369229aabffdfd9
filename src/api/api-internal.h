/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the API's router, handlers and record serialisers. */
#ifndef VV_API_INTERNAL_H
#define VV_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "api/api.h"
#include "catalog/catalog.h"
#include "util/cleanup.h"
#include "util/error.h"

/* Longest path and query string routed, and longest {id} / {name}. */
#define VV_API_PATH_MAX 1024
#define VV_API_QUERY_MAX 1024
#define VV_API_PARAM_MAX 256

/* One request as the handlers see it. */
struct vv_api_request {
  struct vv_api_context *ctx;
  uid_t uid;
  bool admin;
  int64_t owner_filter;         /* VV_OWNER_ANY for admins, else uid */
  const char *method;
  const char *path;
  const char *query;            /* raw, may be NULL */
  const char *body;
  size_t body_len;
  const char *param;            /* the {id} or {name} of the path, or NULL */
  /* What the audit row of a mutating call names; set by handlers with
   * vv_api_set_audit (default: param).  Owned, freed by the router.
   */
  char *audit_object;
  char *audit_detail;
  /* Whether a failure of this request is logged and audited (users'
   * failures are, up to a rate); decided at the first failure.
   */
  bool failure_decided;
  bool failure_recorded;
};

/* A handler returns the HTTP status of its answer (200, 202) with
 * *ret set, or -1 with vv_error set (the router maps the error code to a
 * status and an error object).
 */
typedef int (*vv_api_handler) (struct vv_api_request *r, json_object **ret);

/* api-backups.c */
int vv_api_backup_create (struct vv_api_request *r, json_object **ret);
int vv_api_backup_list (struct vv_api_request *r, json_object **ret);
int vv_api_backup_get (struct vv_api_request *r, json_object **ret);
int vv_api_backup_delete (struct vv_api_request *r, json_object **ret);
int vv_api_backup_verify (struct vv_api_request *r, json_object **ret);
int vv_api_backup_restore (struct vv_api_request *r, json_object **ret);
int vv_api_chain_list (struct vv_api_request *r, json_object **ret);
int vv_api_chain_get (struct vv_api_request *r, json_object **ret);

/* api-jobs.c */
int vv_api_job_list (struct vv_api_request *r, json_object **ret);
int vv_api_job_get (struct vv_api_request *r, json_object **ret);
int vv_api_job_cancel (struct vv_api_request *r, json_object **ret);
/* The job as JSON with live progress merged in (NULL with vv_error). */
json_object *vv_api_job_json (struct vv_api_request *r, const char *id);

/* api-targets.c */
int vv_api_target_list (struct vv_api_request *r, json_object **ret);
int vv_api_target_create (struct vv_api_request *r, json_object **ret);
int vv_api_target_get (struct vv_api_request *r, json_object **ret);
int vv_api_target_delete (struct vv_api_request *r, json_object **ret);
int vv_api_target_test (struct vv_api_request *r, json_object **ret);
int vv_api_target_import (struct vv_api_request *r, json_object **ret);
int vv_api_target_set_default (struct vv_api_request *r, json_object **ret);

/* api-policies.c */
int vv_api_policy_create (struct vv_api_request *r, json_object **ret);
int vv_api_policy_list (struct vv_api_request *r, json_object **ret);
int vv_api_policy_get (struct vv_api_request *r, json_object **ret);
int vv_api_policy_edit (struct vv_api_request *r, json_object **ret);
int vv_api_policy_delete (struct vv_api_request *r, json_object **ret);
int vv_api_policy_pause (struct vv_api_request *r, json_object **ret);
int vv_api_policy_resume (struct vv_api_request *r, json_object **ret);
int vv_api_policy_attach (struct vv_api_request *r, json_object **ret);
int vv_api_policy_runs (struct vv_api_request *r, json_object **ret);
int vv_api_instance_detach (struct vv_api_request *r, json_object **ret);
int vv_api_instance_list (struct vv_api_request *r, json_object **ret);
int vv_api_instance_purge (struct vv_api_request *r, json_object **ret);
int vv_api_backup_protect (struct vv_api_request *r, json_object **ret);
int vv_api_backup_unprotect (struct vv_api_request *r, json_object **ret);
int vv_api_clock_get (struct vv_api_request *r, json_object **ret);
int vv_api_clock_set (struct vv_api_request *r, json_object **ret);
/* Target prices, loaded once per request that shows costs. */
struct vv_api_prices;
struct vv_api_prices *vv_api_prices_load (struct vv_api_request *r);
void vv_api_prices_free (struct vv_api_prices *p);
/* monthly_cost (stored GB x price) and hourly_cost (monthly / 730), or
 * nulls when the target has no price.
 */
void vv_api_add_costs (json_object *o, uint64_t bytes, double price);
/* A backup as JSON with its costs; prices may be NULL (loaded here). */
json_object *vv_api_backup_json (struct vv_api_request *r,
                                 const struct vv_backup_rec *b,
                                 struct vv_api_prices *prices);

/* router.c */
/* Parses the body as a JSON object whose keys are all in allowed.  An
 * empty body counts as {} when empty_ok.  what names it in messages
 * ("the backup request").
 */
json_object *vv_api_parse_body (struct vv_api_request *r, const char *what,
                                const char *const *allowed, bool empty_ok);
/* Looks up a query parameter (percent-decoded, caller frees in *ret).
 * Fails on parameters not in allowed.  0 absent, 1 found, -1 error.
 */
int vv_api_query_get (struct vv_api_request *r, const char *const *allowed,
                      const char *key, char **ret);
/* The optional "domain" filter of the list endpoints (the only query
 * parameter they take): a domain name or UUID, checked for length.
 * *ret stays NULL when absent.  -1 with the error reported.
 */
int vv_api_query_domain (struct vv_api_request *r, char **ret);
/* Names the object (and, on success, a detail) for the audit row that
 * the router writes for every POST and DELETE.  Either may be NULL.
 */
void vv_api_set_audit (struct vv_api_request *r, const char *object,
                       const char *detail);
/* {"error":{"code":...,"message":...}} and a newline, never NULL unless
 * even a small allocation fails.
 */
char *vv_api_error_body (enum vv_errcode code, const char *msg);
/* Logs a line through ctx->log (printf-style), if the daemon gave one. */
void vv_api_log (struct vv_api_context *ctx, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Logs a call refused outside the router (413, 429), with the rate limit
 * of a user's failures.
 */
void vv_api_log_refusal (struct vv_api_context *ctx, uid_t uid,
                         const char *method, const char *path, int status,
                         const char *msg);
/* Root or in admin_uids. */
bool vv_api_is_admin (const struct vv_api_context *ctx, uid_t uid);
/* Fails with VV_ERR_FORBIDDEN unless the caller is an admin. */
int vv_api_require_admin (struct vv_api_request *r, const char *what);

/* records-json.c: records exactly as docs/api.md shows them. */
json_object *vv_backup_to_json (const struct vv_backup_rec *b);
json_object *vv_chain_to_json (const struct vv_chain_rec *c);
json_object *vv_job_to_json (const struct vv_job_rec *j);
/* default_name: the default target (vv_engine_default_target), or NULL. */
json_object *vv_target_to_json (const struct vv_target_rec *t,
                                const char *default_name);
/* A double without json-c's 17-digit noise (0.02, not 0.020000000000000000). */
json_object *vv_json_new_number (double d);

/* Cleanup helpers for catalog records. */
static inline void
vv_cleanup_backup_rec (struct vv_backup_rec **r)
{
  vv_backup_rec_free (*r);
}
#define _cleanup_backup_rec_ _cleanup_ (vv_cleanup_backup_rec)
static inline void
vv_cleanup_job_rec (struct vv_job_rec **r)
{
  vv_job_rec_free (*r);
}
#define _cleanup_job_rec_ _cleanup_ (vv_cleanup_job_rec)
static inline void
vv_cleanup_target_rec (struct vv_target_rec **r)
{
  vv_target_rec_free (*r);
}
#define _cleanup_target_rec_ _cleanup_ (vv_cleanup_target_rec)

#endif
