/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"
#include "api/api-internal.h"

#define API_VERSION 1

static int
handle_version (struct vv_api_request *r, json_object **ret)
{
  json_object *o = json_object_new_object ();

  if (o == NULL) {
    vv_error ("out of memory");
    return -1;
  }
  json_object_object_add (o, "version",
                          json_object_new_string (PACKAGE_VERSION));
  json_object_object_add (o, "api", json_object_new_int (API_VERSION));
  *ret = o;
  return 200;
}

/* Who may call a route at all, decided from the method, the path and the
 * caller before the body is read (the handlers check again):
 *   ANY            everyone; the handler shows a user only their objects;
 *   ADMIN          administrators only: 403 for others;
 *   ADMIN_BACKUP   administrators only, on a backup: 404 when the caller
 *                  cannot see the backup (as if it did not exist), else 403;
 *   ADMIN_POLICY   the same on a policy.
 */
enum access { ANY, ADMIN, ADMIN_BACKUP, ADMIN_POLICY };

/* Largest body per route: endpoints without fields take at most {} and
 * some white space; the others a small JSON object.  docs/api.md lists
 * them.
 */
#define BODY_NONE VV_API_BODY_NONE
#define BODY_FIELDS VV_API_BODY_FIELDS

/* Path patterns are relative to /v1/; "*" is the {id} or {name}. */
static const struct route {
  const char *method;
  const char *pattern;
  vv_api_handler handler;
  const char *action;           /* audit action of mutating calls */
  enum access access;
  size_t max_body;
} routes[] = {
  { "GET",    "version",           handle_version,           NULL,
    ANY, BODY_NONE },
  { "POST",   "backups",           vv_api_backup_create,     "backup.create",
    ADMIN, BODY_FIELDS },
  { "GET",    "backups",           vv_api_backup_list,       NULL,
    ANY, BODY_NONE },
  { "GET",    "backups/*",         vv_api_backup_get,        NULL,
    ANY, BODY_NONE },
  { "DELETE", "backups/*",         vv_api_backup_delete,     "backup.delete",
    ANY, BODY_NONE },
  { "POST",   "backups/*/verify",  vv_api_backup_verify,     "backup.verify",
    ANY, BODY_NONE },
  { "POST",   "backups/*/restore", vv_api_backup_restore,    "backup.restore",
    ADMIN_BACKUP, BODY_FIELDS },
  { "GET",    "chains",            vv_api_chain_list,        NULL,
    ANY, BODY_NONE },
  { "GET",    "chains/*",          vv_api_chain_get,         NULL,
    ANY, BODY_NONE },
  { "GET",    "jobs",              vv_api_job_list,          NULL,
    ANY, BODY_NONE },
  { "GET",    "jobs/*",            vv_api_job_get,           NULL,
    ANY, BODY_NONE },
  { "POST",   "jobs/*/cancel",     vv_api_job_cancel,        "job.cancel",
    ANY, BODY_NONE },
  { "GET",    "targets",           vv_api_target_list,       NULL,
    ADMIN, BODY_NONE },
  { "POST",   "targets",           vv_api_target_create,     "target.create",
    ADMIN, BODY_FIELDS },
  { "GET",    "targets/*",         vv_api_target_get,        NULL,
    ADMIN, BODY_NONE },
  { "DELETE", "targets/*",         vv_api_target_delete,     "target.delete",
    ADMIN, BODY_NONE },
  { "POST",   "targets/*/test",    vv_api_target_test,       "target.test",
    ADMIN, BODY_NONE },
  { "POST",   "targets/*/import",  vv_api_target_import,     "target.import",
    ADMIN, BODY_NONE },
  { "POST",   "targets/*/default", vv_api_target_set_default,
    "target.default", ADMIN, BODY_NONE },
  { "POST",   "policies",          vv_api_policy_create,     "policy.create",
    ANY, BODY_FIELDS },
  { "GET",    "policies",          vv_api_policy_list,       NULL,
    ANY, BODY_NONE },
  { "GET",    "policies/*",        vv_api_policy_get,        NULL,
    ANY, BODY_NONE },
  { "PATCH",  "policies/*",        vv_api_policy_edit,       "policy.edit",
    ANY, BODY_FIELDS },
  { "POST",   "policies/*/edit",   vv_api_policy_edit,       "policy.edit",
    ANY, BODY_FIELDS },
  { "DELETE", "policies/*",        vv_api_policy_delete,     "policy.delete",
    ANY, BODY_NONE },
  { "POST",   "policies/*/pause",  vv_api_policy_pause,      "policy.pause",
    ANY, BODY_NONE },
  { "POST",   "policies/*/resume", vv_api_policy_resume,     "policy.resume",
    ANY, BODY_NONE },
  { "POST",   "policies/*/attach", vv_api_policy_attach,     "policy.attach",
    ADMIN_POLICY, BODY_FIELDS },
  { "GET",    "policies/*/runs",   vv_api_policy_runs,       NULL,
    ANY, BODY_NONE },
  { "GET",    "instances",         vv_api_instance_list,     NULL,
    ANY, BODY_NONE },
  { "POST",   "instances/*/detach", vv_api_instance_detach,  "policy.detach",
    ANY, BODY_NONE },
  { "POST",   "instances/*/purge", vv_api_instance_purge,    "instance.purge",
    ADMIN, BODY_NONE },
  { "POST",   "backups/*/protect", vv_api_backup_protect,    "backup.protect",
    ANY, BODY_NONE },
  { "POST",   "backups/*/unprotect", vv_api_backup_unprotect,
    "backup.unprotect", ANY, BODY_NONE },
  { "GET",    "debug/clock",       vv_api_clock_get,         NULL,
    ANY, BODY_NONE },
  { "POST",   "debug/clock",       vv_api_clock_set,         "debug.clock",
    ADMIN, BODY_FIELDS },
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Does path (relative to /v1/) match pattern?  On a match, the "*"
 * segment is copied to param (param_len bytes) when there is one.
 */
static bool
match (const char *pattern, const char *path, char *param, size_t param_len)
{
  for (;;) {
    const char *pe = strchrnul (pattern, '/');
    const char *se = strchrnul (path, '/');
    size_t plen = pe - pattern, slen = se - path;

    if (slen == 0)
      return false;
    if (plen == 1 && pattern[0] == '*') {
      if (slen >= param_len)
        slen = param_len - 1;   /* too long: caught by the caller */
      memcpy (param, path, slen);
      param[slen] = '\0';
    }
    else if (plen != slen || memcmp (pattern, path, slen) != 0)
      return false;
    if (*pe == '\0' || *se == '\0')
      return *pe == '\0' && *se == '\0';
    pattern = pe + 1;
    path = se + 1;
  }
}

/* Longest segment of path (for the {id} length limit). */
static size_t
longest_segment (const char *path)
{
  size_t longest = 0;

  while (*path) {
    size_t n = strcspn (path, "/");
    if (n > longest)
      longest = n;
    path += n;
    if (*path == '/')
      path++;
  }
  return longest;
}

/* ---- failed calls of users: logged and audited, up to a rate ----
 *
 * Each failed call of an administrator is logged (and audited when it
 * mutates).  A user's failed calls are too, up to FAILURES_PER_WINDOW in
 * FAILURE_WINDOW_S seconds; the rest are only counted, and the count is
 * logged with the user's next recorded failure.  So one local user
 * cannot grow the log or the catalog faster than that (docs/api.md,
 * "Limits").
 */
#define FAILURE_WINDOW_S 3600
#define FAILURES_PER_WINDOW 30
#define FAILURE_SLOTS 64

struct vv_api_failures {
  pthread_mutex_t lock;
  struct failure_slot {
    bool used;
    uid_t uid;
    time_t start;               /* CLOCK_MONOTONIC seconds */
    unsigned recorded;
    uint64_t dropped;
  } slot[FAILURE_SLOTS];
};

struct vv_api_failures *
vv_api_failures_new (void)
{
  struct vv_api_failures *f = calloc (1, sizeof *f);

  if (f == NULL) {
    vv_error ("out of memory");
    return NULL;
  }
  pthread_mutex_init (&f->lock, NULL);
  return f;
}

struct vv_api_failures *
vv_api_failures_free (struct vv_api_failures *f)
{
  if (f == NULL)
    return NULL;
  pthread_mutex_destroy (&f->lock);
  free (f);
  return NULL;
}

/* May this failure of uid be logged and audited?  *ret_dropped gets the
 * number of its failures that were not, since the last one that was.
 */
static bool
failure_admit (struct vv_api_failures *f, uid_t uid, uint64_t *ret_dropped)
{
  struct failure_slot *slot = NULL, *oldest = NULL;
  struct timespec ts;
  bool admit;

  *ret_dropped = 0;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  VV_LOCK_GUARD (&f->lock);
  for (size_t i = 0; i < FAILURE_SLOTS; i++) {
    struct failure_slot *sl = &f->slot[i];
    if (sl->used && sl->uid == uid) {
      slot = sl;
      break;
    }
    if (oldest == NULL || !sl->used
        || (oldest->used && sl->start < oldest->start))
      oldest = sl;
  }
  if (slot == NULL) {
    /* A forgotten uid's dropped count is lost with it: with more than
     * FAILURE_SLOTS users failing at once the log says less.
     */
    slot = oldest;
    *slot = (struct failure_slot) { .used = true, .uid = uid,
                                    .start = ts.tv_sec };
  }
  if (ts.tv_sec - slot->start >= FAILURE_WINDOW_S) {
    slot->start = ts.tv_sec;
    slot->recorded = 0;
  }
  admit = slot->recorded < FAILURES_PER_WINDOW;
  if (admit) {
    slot->recorded++;
    *ret_dropped = slot->dropped;
    slot->dropped = 0;
  }
  else
    slot->dropped++;
  return admit;
}

/* Whether this request's failure is logged and audited (decided once). */
static bool
record_failure (struct vv_api_request *r)
{
  uint64_t dropped;

  if (r->failure_decided)
    return r->failure_recorded;
  r->failure_decided = true;
  r->failure_recorded = true;
  if (r->admin || r->ctx == NULL || r->ctx->failures == NULL)
    return true;
  r->failure_recorded = failure_admit (r->ctx->failures, r->uid, &dropped);
  if (dropped)
    vv_api_log (r->ctx, "uid %u: %llu failed calls were neither logged nor "
                "audited (a user's failures are recorded up to %d an "
                "hour)", (unsigned) r->uid, (unsigned long long) dropped,
                FAILURES_PER_WINDOW);
  return r->failure_recorded;
}

void
vv_api_log_refusal (struct vv_api_context *ctx, uid_t uid, const char *method,
                    const char *path, int status, const char *msg)
{
  struct vv_api_request r = {
    .ctx = ctx, .uid = uid, .admin = vv_api_is_admin (ctx, uid),
  };

  if (record_failure (&r))
    vv_api_log (ctx, "uid %u %s %s: %d: %s", (unsigned) uid, method, path,
                status, msg);
}

void
vv_api_log (struct vv_api_context *ctx, const char *fmt, ...)
{
  char line[2048];
  va_list ap;

  if (ctx == NULL || ctx->log == NULL)
    return;
  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  ctx->log (line);
}

void
vv_api_set_audit (struct vv_api_request *r, const char *object,
                  const char *detail)
{
  if (object) {
    free (r->audit_object);
    r->audit_object = strdup (object);
  }
  if (detail) {
    free (r->audit_detail);
    r->audit_detail = strdup (detail);
  }
}

int
vv_api_require_admin (struct vv_api_request *r, const char *what)
{
  if (r->admin)
    return 0;
  vv_error_code (VV_ERR_FORBIDDEN,
                 "%s is for administrators only (uid %u is not root and not "
                 "in admin_uids of the daemon config)", what,
                 (unsigned) r->uid);
  return -1;
}

json_object *
vv_api_parse_body (struct vv_api_request *r, const char *what,
                   const char *const *allowed, bool empty_ok)
{
  json_object *o;
  size_t i;

  for (i = 0; i < r->body_len; i++)
    if (!strchr (" \t\r\n", r->body[i]))
      break;
  if (i == r->body_len && empty_ok) {
    o = json_object_new_object ();
    if (o == NULL)
      vv_error ("out of memory");
    return o;
  }
  o = vv_json_parse (what, r->body ? r->body : "", r->body_len);
  if (o == NULL)
    return NULL;
  if (vv_json_check_keys (o, what, allowed) == -1) {
    json_object_put (o);
    return NULL;
  }
  return o;
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..len) ('+' is a space, as in forms). */
static char *
url_decode (const char *s, size_t len)
{
  char *out = malloc (len + 1), *o = out;

  if (out == NULL) {
    vv_error ("out of memory");
    return NULL;
  }
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '%' && i + 2 < len && hexval (s[i + 1]) >= 0
        && hexval (s[i + 2]) >= 0) {
      char c = (char) (hexval (s[i + 1]) * 16 + hexval (s[i + 2]));
      if (c == '\0') {
        free (out);
        vv_error_code (VV_ERR_INVALID, "the query string contains %%00");
        return NULL;
      }
      *o++ = c;
      i += 2;
    }
    else
      *o++ = s[i] == '+' ? ' ' : s[i];
  }
  *o = '\0';
  return out;
}

int
vv_api_query_domain (struct vv_api_request *r, char **ret)
{
  static const char *const allowed[] = { "domain", NULL };
  char *domain = NULL;

  if (vv_api_query_get (r, allowed, "domain", &domain) == -1)
    return -1;
  if (domain && (domain[0] == '\0' || strlen (domain) > VV_DOMAIN_NAME_MAX)) {
    free (domain);
    vv_error_code (VV_ERR_INVALID,
                   "query parameter 'domain' must be a domain name or UUID "
                   "of 1 to %d bytes", VV_DOMAIN_NAME_MAX);
    return -1;
  }
  *ret = domain;
  return 0;
}

int
vv_api_query_get (struct vv_api_request *r, const char *const *allowed,
                  const char *key, char **ret)
{
  const char *q = r->query;
  char *found = NULL;

  if (q == NULL || q[0] == '\0')
    return 0;
  if (strlen (q) > VV_API_QUERY_MAX) {
    vv_error_code (VV_ERR_INVALID, "the query string is longer than %d bytes",
                   VV_API_QUERY_MAX);
    return -1;
  }
  while (*q) {
    size_t n = strcspn (q, "&");
    const char *eq = memchr (q, '=', n);
    size_t klen = eq ? (size_t) (eq - q) : n;
    _cleanup_free_ char *k = NULL;
    const char *const *a;

    if (n == 0) {
      q++;
      continue;
    }
    k = url_decode (q, klen);
    if (k == NULL)
      goto fail;
    for (a = allowed; *a; a++)
      if (strcmp (*a, k) == 0)
        break;
    if (*a == NULL) {
      vv_error_code (VV_ERR_INVALID,
                     "unknown query parameter '%s' for %s %s", k,
                     r->method, r->path);
      goto fail;
    }
    if (strcmp (k, key) == 0) {
      if (found) {
        vv_error_code (VV_ERR_INVALID, "query parameter '%s' is given twice",
                       k);
        goto fail;
      }
      found = eq ? url_decode (eq + 1, n - klen - 1) : strdup ("");
      if (found == NULL)
        goto fail;
    }
    q += n;
    if (*q == '&')
      q++;
  }
  if (found == NULL)
    return 0;
  *ret = found;
  return 1;

 fail:
  free (found);
  return -1;
}

static char *
serialise (json_object *o)
{
  int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
  const char *s = json_object_to_json_string_ext (o, flags);
  return s ? vv_printf ("%s\n", s) : NULL;
}

char *
vv_api_error_body (enum vv_errcode code, const char *msg)
{
  _cleanup_json_ json_object *o = json_object_new_object ();
  json_object *e = json_object_new_object ();
  char *body = NULL;

  if (o && e) {
    json_object_object_add (e, "code",
                            json_object_new_string (vv_error_code_name (code)));
    json_object_object_add (e, "message", json_object_new_string (msg));
    json_object_object_add (o, "error", e);
    body = serialise (o);
  }
  else
    json_object_put (e);
  if (body == NULL)
    body = strdup ("{\"error\":{\"code\":\"failed\","
                   "\"message\":\"out of memory\"}}\n");
  return body;
}

static int
error_answer (struct vv_api_request *r, int status, char **ret_body)
{
  enum vv_errcode code = vv_get_error_code ();
  const char *msg = vv_get_error ();

  if (code == VV_ERR_NONE) {
    code = VV_ERR_FAILED;
    msg = "internal error: a handler failed without saying why";
  }
  if (status == 0)
    status = vv_error_code_http_status (code);
  if (record_failure (r))
    vv_api_log (r->ctx, "uid %u %s %s: %d %s: %s", (unsigned) r->uid,
                r->method ? r->method : "?", r->path ? r->path : "?", status,
                vv_error_code_name (code), msg);
  *ret_body = vv_api_error_body (code, msg);
  return status;
}

static void
audit (struct vv_api_request *r, const char *action, int status)
{
  /* The catalog call may overwrite this thread's error: keep it. */
  enum vv_errcode code = vv_get_error_code ();
  char msg[2048];

  if (status < 0 && !record_failure (r))
    return;
  snprintf (msg, sizeof msg, "%s", vv_get_error ());
  if (vv_catalog_audit (r->ctx->engine->catalog, r->uid, action,
                        r->audit_object ? r->audit_object : r->param,
                        status >= 0 ? "ok" : vv_error_code_name (code),
                        status >= 0 ? r->audit_detail : msg) == -1)
    vv_api_log (r->ctx, "cannot write the audit row of %s by uid %u: %s",
                action, (unsigned) r->uid, vv_get_error ());
  if (status < 0)
    vv_error_code (code, "%s", msg);
}

bool
vv_api_is_admin (const struct vv_api_context *ctx, uid_t uid)
{
  if (uid == 0)
    return true;
  for (size_t i = 0; i < ctx->n_admin_uids; i++)
    if (ctx->admin_uids[i] == uid)
      return true;
  return false;
}

/* Finds the route of r->method and r->path and sets r->param.  NULL with
 * the error reported and *ret_status the status to answer (0: the error
 * code's).
 */
static const struct route *
find_route (struct vv_api_request *r, char param[VV_API_PARAM_MAX + 1],
            int *ret_status)
{
  const struct route *found = NULL;
  char allowed[64] = "";

  *ret_status = 0;
  if (r->method == NULL || r->path == NULL) {
    vv_error_code (VV_ERR_INVALID, "request without a method or path");
    return NULL;
  }
  if (strlen (r->path) > VV_API_PATH_MAX) {
    vv_error_code (VV_ERR_INVALID, "the path is longer than %d bytes",
                   VV_API_PATH_MAX);
    return NULL;
  }
  if (vv_str_has_prefix (r->path, "/v1/")) {
    for (size_t i = 0; i < N_ROUTES; i++) {
      if (!match (routes[i].pattern, r->path + 4, param,
                  VV_API_PARAM_MAX + 1))
        continue;
      if (strcmp (routes[i].method, r->method) == 0) {
        found = &routes[i];
        break;
      }
      if (strlen (allowed) + strlen (routes[i].method) + 6 < sizeof allowed)
        sprintf (allowed + strlen (allowed), "%s%s", allowed[0] ? " or " : "",
                 routes[i].method);
    }
  }
  if (found == NULL && allowed[0]) {
    vv_error_code (VV_ERR_INVALID, "method %s is not allowed on %s; use %s",
                   r->method, r->path, allowed);
    *ret_status = 405;
    return NULL;
  }
  if (found == NULL) {
    vv_error_code (VV_ERR_NOT_FOUND,
                   "no endpoint %s %s; see docs/api.md for the endpoints "
                   "under /v1/", r->method, r->path);
    return NULL;
  }
  if (strchr (found->pattern, '*'))
    r->param = param;
  return found;
}

/* The part of the authorisation that needs no body (see enum access). */
static int
check_access (struct vv_api_request *r, const struct route *route)
{
  const char *what = "this call";

  if (r->admin || route->access == ANY)
    return 0;
  if (r->param && longest_segment (r->path) > VV_API_PARAM_MAX) {
    vv_error_code (VV_ERR_INVALID, "a path component is longer than %d bytes",
                   VV_API_PARAM_MAX);
    return -1;
  }
  if (route->access == ADMIN_BACKUP) {
    struct vv_backup_rec *b =
      vv_catalog_backup_get (r->ctx->engine->catalog, r->param,
                             r->owner_filter);
    if (b == NULL)
      return -1;
    vv_backup_rec_free (b);
    what = "restoring a backup";
  }
  else if (route->access == ADMIN_POLICY) {
    struct vv_policy_rec *p =
      vv_catalog_policy_get (r->ctx->engine->catalog, r->param,
                             r->owner_filter);
    if (p == NULL)
      return -1;
    vv_policy_rec_free (p);
    what = "attaching a domain to a policy";
  }
  else if (vv_str_has_prefix (route->pattern, "targets"))
    what = "managing targets";
  else if (route->handler == vv_api_backup_create)
    what = "backing up a domain";
  else if (route->handler == vv_api_instance_purge)
    what = "purging the backups of an instance";
  else if (route->handler == vv_api_clock_set)
    what = "setting the clock";
  return vv_api_require_admin (r, what);
}

int
vv_api_precheck (struct vv_api_context *ctx, uid_t uid, const char *method,
                 const char *path, uint64_t content_length,
                 size_t *ret_max_body, char **ret_body)
{
  struct vv_api_request r = {
    .ctx = ctx, .uid = uid, .method = method, .path = path,
  };
  char param[VV_API_PARAM_MAX + 1] = "";
  const struct route *route;
  int status;

  *ret_body = NULL;
  vv_clear_error ();
  r.admin = vv_api_is_admin (ctx, uid);
  r.owner_filter = r.admin ? VV_OWNER_ANY : (int64_t) uid;

  route = find_route (&r, param, &status);
  if (route == NULL)
    return error_answer (&r, status, ret_body);
  if (check_access (&r, route) == -1) {
    if (route->action)
      audit (&r, route->action, -1);
    return error_answer (&r, 0, ret_body);
  }
  if (content_length != UINT64_MAX && content_length > route->max_body) {
    vv_error_code (VV_ERR_INVALID,
                   "the request body is %llu bytes; %s %s takes at most %zu",
                   (unsigned long long) content_length, method, path,
                   route->max_body);
    return error_answer (&r, 413, ret_body);
  }
  *ret_max_body = route->max_body;
  return 0;
}

int
vv_api_handle (struct vv_api_context *ctx, uid_t uid,
               const char *method, const char *path, const char *query,
               const char *body, size_t body_len,
               char **ret_body)
{
  struct vv_api_request r = {
    .ctx = ctx, .uid = uid, .method = method, .path = path, .query = query,
    .body = body, .body_len = body_len,
  };
  char param[VV_API_PARAM_MAX + 1] = "";
  const struct route *found;
  _cleanup_json_ json_object *answer = NULL;
  int status;

  *ret_body = NULL;
  vv_clear_error ();
  r.admin = vv_api_is_admin (ctx, uid);
  r.owner_filter = r.admin ? VV_OWNER_ANY : (int64_t) uid;

  found = find_route (&r, param, &status);
  if (found == NULL)
    return error_answer (&r, status, ret_body);

  if (r.param && longest_segment (path) > VV_API_PARAM_MAX) {
    vv_error_code (VV_ERR_INVALID, "a path component is longer than %d bytes",
                   VV_API_PARAM_MAX);
    status = -1;
  }
  else if (body_len > found->max_body) {
    vv_error_code (VV_ERR_INVALID,
                   "the request body is %zu bytes; %s %s takes at most %zu",
                   body_len, method, path, found->max_body);
    status = -1;
  }
  else
    status = found->handler (&r, &answer);
  if (status >= 0 && answer == NULL) {
    vv_error ("internal error: %s %s gave no answer", method, path);
    status = -1;
  }
  if (found->action)
    audit (&r, found->action, status);
  free (r.audit_object);
  free (r.audit_detail);
  if (status < 0)
    return error_answer (&r, body_len > found->max_body ? 413 : 0, ret_body);

  *ret_body = serialise (answer);
  if (*ret_body == NULL) {
    vv_error ("out of memory serialising the answer");
    return error_answer (&r, 0, ret_body);
  }
  return status;
}
