/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The API without a socket: vv_api_handle against a temporary catalog, an
 * engine on libvirt's built-in test driver (test:///default, no daemon)
 * and one job worker.  Malformed requests, routing, auth, targets, audit
 * rows, and the job queue (busy, cancel, live progress) with a job body
 * of our own.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "catalog/catalog.h"
#include "engine/engine.h"
#include "target/target.h"
#include "jobs/jobs.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n  last error: %s\n",  \
               __FILE__, __LINE__, #cond, vv_get_error ());             \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

/* Arguments are evaluated once. */
static inline bool
STREQ (const char *a, const char *b)
{
  return a && b && strcmp (a, b) == 0;
}

static char tmpdir[] = "/tmp/test-api-requests.XXXXXX";
static struct vv_api_context ctx;
static struct vv_catalog *catalog;
static unsigned n_failed, n_passed;

/* ---- helpers ---- */

struct answer {
  int status;
  json_object *json;            /* parsed body */
  char *body;
};

static void
answer_clear (struct answer *a)
{
  json_object_put (a->json);
  free (a->body);
  memset (a, 0, sizeof *a);
}

static struct answer
call (uid_t uid, const char *method, const char *path, const char *query,
      const char *body)
{
  struct answer a = { 0 };

  a.status = vv_api_handle (&ctx, uid, method, path, query,
                            body, body ? strlen (body) : 0, &a.body);
  CHECK (a.body != NULL);
  CHECK (a.body[strlen (a.body) - 1] == '\n');
  a.json = vv_json_parse ("the answer", a.body, strlen (a.body));
  CHECK (a.json != NULL);
  return a;
}

static const char *
error_code (json_object *o)
{
  json_object *e, *c;

  if (o && json_object_object_get_ex (o, "error", &e)
      && json_object_object_get_ex (e, "code", &c))
    return json_object_get_string (c);
  return NULL;
}

static const char *
error_message (json_object *o)
{
  json_object *e, *m;

  if (o && json_object_object_get_ex (o, "error", &e)
      && json_object_object_get_ex (e, "message", &m))
    return json_object_get_string (m);
  return "";
}

static const char *
get_str (json_object *o, const char *key)
{
  json_object *v;

  if (o && json_object_object_get_ex (o, key, &v) && v)
    return json_object_get_string (v);
  return NULL;
}

static size_t
count_backups (void)
{
  struct vv_backup_rec **v;
  size_t n;

  CHECK (vv_catalog_backup_list (catalog, NULL, VV_OWNER_ANY, &v, &n) == 0);
  vv_backup_recs_free (v, n);
  return n;
}

static size_t
count_jobs (void)
{
  struct vv_job_rec **v;
  size_t n;

  CHECK (vv_catalog_job_list (catalog, VV_OWNER_ANY, 0, &v, &n) == 0);
  vv_job_recs_free (v, n);
  return n;
}

/* The newest audit row. */
static struct vv_audit_rec *
last_audit (size_t *ret_total)
{
  struct vv_audit_rec **v;
  struct vv_audit_rec *r = NULL;
  size_t n;

  CHECK (vv_catalog_audit_list (catalog, 1000, &v, &n) == 0);
  if (n > 0)
    r = v[0];
  for (size_t i = 1; i < n; i++)
    vv_audit_rec_free (v[i]);
  free (v);
  if (ret_total)
    *ret_total = n;
  return r;
}

static size_t
count_audit (void)
{
  size_t n;

  vv_audit_rec_free (last_audit (&n));
  return n;
}

/* ---- data-driven cases ---- */

struct req_case {
  uid_t uid;
  const char *method;
  const char *path;
  const char *query;
  const char *body;
  int status;
  const char *code;             /* error code, NULL for success */
  const char *fragment;         /* in the error message, may be NULL */
};

static char long_domain_body[512];

static const struct req_case cases[] = {
  /* Malformed bodies: 400 invalid, nothing recorded. */
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":", 400, "invalid",
    "not valid JSON" },
  { 0, "POST", "/v1/backups", NULL, "", 400, "invalid", "empty" },
  { 0, "POST", "/v1/backups", NULL, "   ", 400, "invalid", NULL },
  { 0, "POST", "/v1/backups", NULL, "[\"test\"]", 400, "invalid",
    "must be a JSON object" },
  { 0, "POST", "/v1/backups", NULL, "\"test\"", 400, "invalid",
    "must be a JSON object" },
  { 0, "POST", "/v1/backups", NULL, "42", 400, "invalid", NULL },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"test\"} x", 400,
    "invalid", "not valid JSON" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"test\"}{}", 400,
    "invalid", "not valid JSON" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":5}", 400, "invalid",
    "field 'domain'" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":null}", 400, "invalid",
    "field 'domain'" },
  { 0, "POST", "/v1/backups", NULL, "{}", 400, "invalid", "'domain'" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"\"}", 400, "invalid",
    "'domain'" },
  { 0, "POST", "/v1/backups", NULL,
    "{\"domain\":\"test\",\"all_disks\":\"yes\"}", 400, "invalid",
    "all_disks" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"test\",\"disks\":\"vda\"}",
    400, "invalid", "field 'disks'" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"test\",\"disks\":[1]}",
    400, "invalid", "field 'disks'" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"test\",\"disks\":[]}",
    400, "invalid", "field 'disks'" },
  { 0, "POST", "/v1/backups", NULL,
    "{\"domain\":\"test\",\"disks\":[\"../vda\"]}", 400, "invalid",
    "disk name" },
  { 0, "POST", "/v1/backups", NULL,
    "{\"domain\":\"test\",\"all_disks\":true,\"disks\":[\"vda\"]}", 400,
    "invalid", "give one" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"test\",\"target\":7}",
    400, "invalid", "field 'target'" },
  { 0, "POST", "/v1/backups", NULL,
    "{\"domain\":\"test\",\"target\":\"a/b\"}", 400, "invalid",
    "target name" },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"test\",\"bogus\":1}", 400,
    "invalid", "unknown field 'bogus'" },
  { 0, "POST", "/v1/backups", NULL, "{\"Domain\":\"test\"}", 400,
    "invalid", "unknown field 'Domain'" },
  { 0, "POST", "/v1/backups", NULL, long_domain_body, 400, "invalid",
    "longer than 200" },
  { 0, "POST", "/v1/backups/bk-000000000000/restore", NULL,
    "{\"to\":5}", 400, "invalid", "field 'to'" },
  { 0, "POST", "/v1/backups/bk-000000000000/restore", NULL,
    "{\"to\":\"/tmp/x\",\"format\":[]}", 400, "invalid", "format" },
  { 0, "POST", "/v1/backups/bk-000000000000/restore", NULL,
    "{\"to\":\"/tmp/x\",\"forced\":true}", 400, "invalid", "unknown field" },
  { 0, "POST", "/v1/backups/bk-000000000000/restore", NULL,
    "{\"to\":\"/tmp/x\",\"force\":1}", 400, "invalid", "field 'force'" },
  { 0, "POST", "/v1/backups/bk-000000000000/verify", NULL, "{\"deep\":1}",
    400, "invalid", "unknown field" },
  { 0, "POST", "/v1/policies", NULL, "{\"name\":\"p\",\"schedule\":"
    "\"daily\",\"at\":\"02:00\",\"verify_every\":366}", 400, "invalid",
    "verify every '366': must be a whole number from 0 to 365" },
  { 0, "POST", "/v1/policies", NULL, "{\"name\":\"p\",\"schedule\":"
    "\"daily\",\"at\":\"02:00\",\"verify_every\":true}", 400, "invalid",
    "field 'verify_every'" },
  { 0, "POST", "/v1/targets/local/default", NULL, "{\"name\":\"x\"}", 400,
    "invalid", "unknown field 'name'" },
  { 0, "POST", "/v1/jobs/job-000000000000/cancel", NULL, "[", 400,
    "invalid", "not valid JSON" },
  { 0, "DELETE", "/v1/backups/bk-000000000000", NULL, "{\"force\":1}", 400,
    "invalid", "unknown field" },
  { 0, "GET", "/v1/backups", "bogus=1", NULL, 400, "invalid",
    "unknown query parameter 'bogus'" },
  { 0, "GET", "/v1/backups", "domain=a&domain=b", NULL, 400, "invalid",
    "twice" },
  { 0, "POST", "/v1/targets", NULL, "{\"name\":\"x\",", 400, "invalid",
    "not valid JSON" },
  { 0, "POST", "/v1/targets", NULL, "{\"name\":\"x\"}", 400, "invalid",
    "field 'url'" },
  { 0, "POST", "/v1/targets", NULL, "{\"url\":\"file:///tmp\"}", 400,
    "invalid", "field 'name'" },
  { 0, "POST", "/v1/targets", NULL,
    "{\"name\":\"bad name\",\"url\":\"file:///tmp\"}", 400, "invalid",
    "target name" },
  { 0, "POST", "/v1/targets", NULL,
    "{\"name\":\"bad/name\",\"url\":\"file:///tmp\"}", 400, "invalid",
    "target name" },
  { 0, "POST", "/v1/targets", NULL,
    "{\"name\":\"x\",\"url\":\"file:///tmp\",\"colour\":\"red\"}", 400,
    "invalid", "unknown field 'colour'" },
  { 0, "POST", "/v1/targets", NULL,
    "{\"name\":\"x\",\"url\":\"file:///tmp\",\"price_per_gb_month\":-1}",
    400, "invalid", "price_per_gb_month" },
  { 0, "POST", "/v1/targets", NULL,
    "{\"name\":\"x\",\"url\":\"file:///tmp\",\"price_per_gb_month\":\"1\"}",
    400, "invalid", "price_per_gb_month" },
  { 0, "POST", "/v1/targets", NULL,
    "{\"name\":\"x\",\"url\":\"file:///tmp\",\"params\":[\"novalue\"]}",
    400, "invalid", "key=value" },
  { 0, "POST", "/v1/targets", NULL,
    "{\"name\":\"x\",\"url\":\"file:///tmp\",\"params\":\"a=b\"}",
    400, "invalid", "field 'params'" },
  { 0, "POST", "/v1/targets", NULL, "{\"name\":\"x\",\"url\":\"noscheme\"}",
    400, "invalid", "scheme" },
  { 0, "POST", "/v1/targets", NULL,
    "{\"name\":\"x\",\"url\":\"nosuchscheme://host/x\"}", 400, "invalid",
    "nosuchscheme" },

  /* Routing. */
  { 0, "GET", "/v1/xyz", NULL, NULL, 404, "not_found",
    "no endpoint GET /v1/xyz" },
  { 0, "GET", "/v1/", NULL, NULL, 404, "not_found", "no endpoint" },
  { 0, "GET", "/", NULL, NULL, 404, "not_found", "no endpoint" },
  { 0, "GET", "/v2/backups", NULL, NULL, 404, "not_found", "no endpoint" },
  { 0, "GET", "/v1/backups/", NULL, NULL, 404, "not_found", "no endpoint" },
  { 0, "GET", "/v1/backups//verify", NULL, NULL, 404, "not_found", NULL },
  { 0, "GET", "/v1/backups/bk-1/verify/x", NULL, NULL, 404, "not_found",
    NULL },
  { 0, "GET", "/v1/version/", NULL, NULL, 404, "not_found", NULL },
  { 0, "PUT", "/v1/backups", NULL, "{}", 405, "invalid", "use POST or GET" },
  { 0, "DELETE", "/v1/version", NULL, NULL, 405, "invalid", "use GET" },
  { 0, "GET", "/v1/backups/bk-000000000000/verify", NULL, NULL, 405,
    "invalid", "use POST" },
  { 0, "POST", "/v1/jobs", NULL, "{}", 405, "invalid", NULL },
  { 0, "PATCH", "/v1/targets/local", NULL, "{}", 405, "invalid",
    "use GET or DELETE" },
  { 0, "HEAD", "/v1/version", NULL, NULL, 405, "invalid", NULL },

  /* Unknown objects. */
  { 0, "GET", "/v1/backups/bk-000000000000", NULL, NULL, 404, "not_found",
    "bk-000000000000" },
  { 0, "GET", "/v1/backups/nonsense", NULL, NULL, 404, "not_found", NULL },
  { 0, "DELETE", "/v1/backups/bk-000000000000", NULL, NULL, 404,
    "not_found", NULL },
  { 0, "POST", "/v1/backups/bk-000000000000/verify", NULL, NULL, 404,
    "not_found", NULL },
  { 0, "POST", "/v1/backups/bk-000000000000/restore", NULL,
    "{\"to\":\"/tmp/x\"}", 404, "not_found", NULL },
  { 0, "POST", "/v1/backups/bk-000000000000/restore", NULL,
    "{\"to\":\"relative/dir\"}", 404, "not_found", NULL },
  { 0, "GET", "/v1/jobs/job-000000000000", NULL, NULL, 404, "not_found",
    "job-000000000000" },
  { 0, "POST", "/v1/jobs/job-000000000000/cancel", NULL, NULL, 404,
    "not_found", NULL },
  { 0, "GET", "/v1/targets/nosuch", NULL, NULL, 404, "not_found",
    "nosuch" },
  { 0, "DELETE", "/v1/targets/nosuch", NULL, NULL, 404, "not_found", NULL },
  { 0, "POST", "/v1/targets/nosuch/test", NULL, NULL, 404, "not_found",
    NULL },
  { 0, "POST", "/v1/targets/nosuch/import", NULL, NULL, 404, "not_found",
    "nosuch" },
  { 0, "POST", "/v1/targets/local/import", NULL, "{\"x\":1}", 400,
    "invalid", NULL },
  { 0, "POST", "/v1/backups", NULL, "{\"domain\":\"nosuch\"}", 404,
    "not_found", "nosuch" },

  /* Non-admins: targets are admin-only, lists show only their own. */
  { 1000, "GET", "/v1/targets", NULL, NULL, 403, "forbidden", "uid 1000" },
  { 1000, "GET", "/v1/targets/local", NULL, NULL, 403, "forbidden", NULL },
  { 1000, "POST", "/v1/targets", NULL,
    "{\"name\":\"mine\",\"url\":\"file:///tmp\"}", 403, "forbidden", NULL },
  { 1000, "DELETE", "/v1/targets/local", NULL, NULL, 403, "forbidden", NULL },
  { 1000, "POST", "/v1/targets/local/test", NULL, NULL, 403, "forbidden",
    NULL },
  { 1000, "POST", "/v1/targets/local/import", NULL, NULL, 403, "forbidden",
    NULL },
  { 1000, "POST", "/v1/backups", NULL, "{\"domain\":\"test\"}", 403,
    "forbidden", NULL },
  { 1000, "GET", "/v1/backups", NULL, NULL, 200, NULL, NULL },
  { 1000, "GET", "/v1/jobs", NULL, NULL, 200, NULL, NULL },
  { 1001, "GET", "/v1/targets", NULL, NULL, 200, NULL, NULL },

  /* Simple successes. */
  { 0, "GET", "/v1/version", NULL, NULL, 200, NULL, NULL },
  { 0, "GET", "/v1/backups", NULL, NULL, 200, NULL, NULL },
  { 0, "GET", "/v1/backups", "domain=nosuch", NULL, 200, NULL, NULL },
  { 0, "GET", "/v1/jobs", NULL, NULL, 200, NULL, NULL },
  { 0, "GET", "/v1/targets", NULL, NULL, 200, NULL, NULL },
  /* An instance without backups: nothing to purge (found by
   * fuzz-api-request: qsort of an empty, NULL list is undefined).
   */
  { 0, "POST", "/v1/instances/nosuch/purge", NULL, NULL, 200, NULL, NULL },
};

static void
run_cases (void)
{
  size_t backups0 = count_backups (), jobs0 = count_jobs ();

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct req_case *c = &cases[i];
    struct answer a = call (c->uid, c->method, c->path, c->query, c->body);
    const char *code = error_code (a.json);
    bool ok = a.status == c->status;

    if (c->code)
      ok = ok && STREQ (code, c->code)
           && (c->fragment == NULL
               || strstr (error_message (a.json), c->fragment));
    else
      ok = ok && code == NULL;
    if (!ok) {
      fprintf (stderr, "FAIL case %zu: uid %u %s %s%s%s body %.60s\n"
               "  expected %d %s \"%s\"\n  got %d %s",
               i, (unsigned) c->uid, c->method, c->path,
               c->query ? "?" : "", c->query ? c->query : "",
               c->body ? c->body : "(none)", c->status,
               c->code ? c->code : "-", c->fragment ? c->fragment : "",
               a.status, a.body);
      n_failed++;
    }
    else
      n_passed++;
    /* Lists answered to a non-admin are empty here: every object in this
     * catalog is root's.
     */
    if (c->uid == 1000 && a.status == 200)
      CHECK (json_object_is_type (a.json, json_type_array)
             && json_object_array_length (a.json) == 0);
    answer_clear (&a);
  }
  CHECK (count_backups () == backups0);
  CHECK (count_jobs () == jobs0);
}

/* ---- targets ---- */

static void
test_targets (void)
{
  _cleanup_free_ char *dir = vv_printf ("%s/nas", tmpdir);
  _cleanup_free_ char *body = NULL;
  struct vv_audit_rec *au;
  struct answer a;
  size_t audits;
  json_object *v;

  CHECK (dir && mkdir (dir, 0700) == 0);
  body = vv_printf ("{\"name\":\"nas\",\"url\":\"file://%s\","
                    "\"params\":[],\"price_per_gb_month\":0.02}", dir);
  audits = count_audit ();
  a = call (0, "POST", "/v1/targets", NULL, body);
  if (a.status != 200)
    fprintf (stderr, "target add: %s", a.body);
  CHECK (a.status == 200);
  CHECK (STREQ (get_str (a.json, "name"), "nas"));
  CHECK (json_object_object_get_ex (a.json, "price_per_gb_month", &v));
  CHECK (json_object_get_double (v) == 0.02);
  CHECK (strstr (a.body, "\"price_per_gb_month\":0.02,"));
  CHECK (strstr (a.body, "\"params\":[]"));
  answer_clear (&a);
  CHECK (count_audit () == audits + 1);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "target.create") && STREQ (au->object, "nas")
         && STREQ (au->result, "ok") && au->uid == 0);
  vv_audit_rec_free (au);

  a = call (0, "GET", "/v1/targets", NULL, NULL);
  CHECK (a.status == 200 && json_object_array_length (a.json) == 2);
  answer_clear (&a);
  a = call (0, "GET", "/v1/targets/nas", NULL, NULL);
  CHECK (a.status == 200 && STREQ (get_str (a.json, "name"), "nas"));
  CHECK (vv_str_has_prefix (get_str (a.json, "url"), "file:///"));
  answer_clear (&a);

  a = call (0, "POST", "/v1/targets/nas/test", NULL, NULL);
  if (a.status != 200)
    fprintf (stderr, "target test: %s", a.body);
  CHECK (a.status == 200 && strstr (a.body, "\"ok\":true"));
  answer_clear (&a);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "target.test") && STREQ (au->result, "ok"));
  vv_audit_rec_free (au);

  /* Duplicate: 409 busy, and the failure is audited with its code. */
  a = call (0, "POST", "/v1/targets", NULL, body);
  CHECK (a.status == 409 && STREQ (error_code (a.json), "busy"));
  CHECK (strstr (error_message (a.json), "already exists"));
  answer_clear (&a);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "target.create") && STREQ (au->result, "busy")
         && au->detail && strstr (au->detail, "already exists"));
  vv_audit_rec_free (au);

  /* A target whose directory is missing is refused, saying why, unless
   * the admin asks to store it unchecked; its test then says what is
   * wrong.
   */
  a = call (0, "POST", "/v1/targets", NULL,
            "{\"name\":\"gone\",\"url\":\"file:///nonexistent/dir/x\"}");
  CHECK (a.status == 503);
  CHECK (strstr (error_message (a.json), "not adding target 'gone'") &&
         strstr (error_message (a.json), "/nonexistent/dir/x"));
  answer_clear (&a);
  a = call (0, "GET", "/v1/targets/gone", NULL, NULL);
  CHECK (a.status == 404);
  answer_clear (&a);
  a = call (0, "POST", "/v1/targets", NULL,
            "{\"name\":\"gone\",\"url\":\"file:///nonexistent/dir/x\","
            "\"check\":false}");
  CHECK (a.status == 200);
  answer_clear (&a);
  a = call (0, "POST", "/v1/targets", NULL,
            "{\"name\":\"gone2\",\"url\":\"file:///x\",\"check\":\"no\"}");
  CHECK (a.status == 400);
  answer_clear (&a);
  a = call (0, "POST", "/v1/targets/gone/test", NULL, NULL);
  CHECK (a.status >= 400 && error_code (a.json) != NULL);
  CHECK (strstr (error_message (a.json), "/nonexistent/dir/x"));
  answer_clear (&a);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "target.test") && STREQ (au->object, "gone")
         && !STREQ (au->result, "ok"));
  vv_audit_rec_free (au);
  a = call (0, "DELETE", "/v1/targets/gone", NULL, NULL);
  CHECK (a.status == 200);
  answer_clear (&a);

  /* The default target stays: the config's while none is marked. */
  a = call (0, "DELETE", "/v1/targets/local", NULL, NULL);
  CHECK (a.status == 409 && STREQ (error_code (a.json), "busy"));
  CHECK (strstr (error_message (a.json), "target 'local' is the default "
                 "target; make another target the default first"));
  answer_clear (&a);
  a = call (0, "GET", "/v1/targets/local", NULL, NULL);
  CHECK (a.status == 200 && strstr (a.body, "\"default\":true"));
  answer_clear (&a);

  /* Marking one: admins only (the same 403 as the other target calls,
   * audited), a known target, no fields; the mark moves, one at a time.
   */
  a = call (1000, "POST", "/v1/targets/nas/default", NULL, NULL);
  CHECK (a.status == 403 && strstr (error_message (a.json),
                                    "managing targets is for administrators "
                                    "only"));
  answer_clear (&a);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "target.default") && au->uid == 1000
         && STREQ (au->result, "forbidden"));
  vv_audit_rec_free (au);
  a = call (0, "POST", "/v1/targets/nosuch/default", NULL, NULL);
  CHECK (a.status == 404);
  answer_clear (&a);
  a = call (0, "POST", "/v1/targets/nas/default", NULL, "{\"x\":1}");
  CHECK (a.status == 400 && strstr (error_message (a.json), "unknown field"));
  answer_clear (&a);
  a = call (0, "POST", "/v1/targets/nas/default", NULL, NULL);
  CHECK (a.status == 200 && STREQ (get_str (a.json, "name"), "nas")
         && strstr (a.body, "\"default\":true"));
  answer_clear (&a);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "target.default") && STREQ (au->object, "nas")
         && STREQ (au->result, "ok")
         && STREQ (au->detail, "default target was 'local'"));
  vv_audit_rec_free (au);
  a = call (0, "GET", "/v1/targets", NULL, NULL);
  CHECK (a.status == 200 && json_object_array_length (a.json) == 2);
  for (size_t i = 0; i < 2; i++) {
    json_object *t = json_object_array_get_idx (a.json, i);
    CHECK (json_object_object_get_ex (t, "default", &v));
    CHECK (json_object_get_boolean (v) == STREQ (get_str (t, "name"), "nas"));
  }
  answer_clear (&a);
  a = call (0, "DELETE", "/v1/targets/nas", NULL, NULL);
  CHECK (a.status == 409 && strstr (error_message (a.json),
                                    "target 'nas' is the default target"));
  answer_clear (&a);
  /* Back to local, which the rest of the tests use. */
  a = call (0, "POST", "/v1/targets/local/default", NULL, NULL);
  CHECK (a.status == 200);
  answer_clear (&a);

  a = call (0, "DELETE", "/v1/targets/nas", NULL, NULL);
  CHECK (a.status == 200 && STREQ (get_str (a.json, "deleted"), "nas"));
  answer_clear (&a);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "target.delete") && STREQ (au->object, "nas")
         && STREQ (au->result, "ok"));
  vv_audit_rec_free (au);
  a = call (0, "GET", "/v1/targets/nas", NULL, NULL);
  CHECK (a.status == 404);
  answer_clear (&a);
  n_passed++;
}

/* ---- audit of failed mutating calls ---- */

static void
test_audit (void)
{
  struct vv_audit_rec *au;
  struct answer a;
  size_t before = count_audit ();

  a = call (0, "POST", "/v1/backups", NULL, "{\"domain\":\"nosuch\"}");
  CHECK (a.status == 404);
  answer_clear (&a);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "backup.create") && STREQ (au->object, "nosuch")
         && STREQ (au->result, "not_found") && au->detail
         && strstr (au->detail, "nosuch"));
  vv_audit_rec_free (au);

  a = call (1000, "POST", "/v1/targets", NULL,
            "{\"name\":\"mine\",\"url\":\"file:///tmp\"}");
  CHECK (a.status == 403);
  answer_clear (&a);
  au = last_audit (NULL);
  CHECK (STREQ (au->action, "target.create") && au->uid == 1000
         && STREQ (au->result, "forbidden"));
  vv_audit_rec_free (au);

  /* Reads are not audited. */
  a = call (0, "GET", "/v1/backups", NULL, NULL);
  answer_clear (&a);
  CHECK (count_audit () == before + 2);
  n_passed++;
}

/* ---- backup records, as shown and as acted on ---- */

/* The object has exactly these keys, in this order. */
static void
check_keys (json_object *o, const char *const *keys)
{
  size_t i = 0;

  CHECK (json_object_is_type (o, json_type_object));
  json_object_object_foreach (o, k, val) {
    (void) val;
    if (keys[i] == NULL || strcmp (keys[i], k) != 0) {
      fprintf (stderr, "unexpected key '%s' at position %zu (expected '%s')\n",
               k, i, keys[i] ? keys[i] : "(end)");
      exit (EXIT_FAILURE);
    }
    i++;
  }
  CHECK (keys[i] == NULL);
}

#define UUID_A "0b3e2f4c-9d1a-4c47-8f3e-6a1b2c3d4e5f"
#define UUID_B "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define BK "bk-0000000000aa"

static void
test_backup_records (void)
{
  static const char *const backup_keys[] = {
    "id", "domain", "domain_uuid", "type", "status", "chain_id",
    "chain_pos", "parent_id", "created_at", "completed_at", "size_bytes", "target",
    "reason", "notes", "error", "checkpoint", "job_id", "owner_uid",
    "origin", "policy", "protected", "offline", "domain_xml_sha256", "cleanup",
    "corrupt", "corrupt_reason", "verified_at", "verify_result",
    "disks", "monthly_cost", "hourly_cost",
    NULL
  };
  static const char *const disk_keys[] = {
    "name", "virtual_size", "stored_bytes", "sha256", "format", "backing",
    "blocks_sha256", "block_size", "metadata_bytes", NULL
  };
  static const char *const job_keys[] = {
    "id", "kind", "status", "domain", "domain_uuid", "backup_id",
    "bytes_done", "bytes_total", "error", "created_at", "started_at",
    "finished_at", "owner_uid", "notes", NULL
  };
  struct vv_disk_rec disk = {
    .name = (char *) "vda", .virtual_size = 4294967296ULL,
    .stored_bytes = 1610678272ULL, .sha256 = (char *) "ab12",
    .format = (char *) "qcow2", .object = (char *) "x/vda.qcow2",
  };
  struct vv_backup_rec b = {
    .id = (char *) BK, .domain = (char *) "web01",
    .domain_uuid = (char *) UUID_A, .type = (char *) "full",
    .status = (char *) "running", .chain_id = (char *) "ch-0000000000aa",
    .target = (char *) "local", .reason = (char *) "full: a test",
    .prefix = (char *) UUID_A "/ch-0000000000aa/" BK "/",
    .owner_uid = 1000,
  };
  struct answer a;
  json_object *v;

  CHECK (vv_catalog_backup_insert (catalog, &b) == 0);
  CHECK (vv_catalog_backup_add_disk (catalog, BK, &disk) == 0);

  /* Not completed: verify and restore are refused, nothing queued. */
  a = call (0, "POST", "/v1/backups/" BK "/verify", NULL, "{}");
  CHECK (a.status == 400 && strstr (error_message (a.json), "running"));
  answer_clear (&a);

  CHECK (vv_catalog_backup_complete (catalog, BK, 1610680000ULL) == 0);

  a = call (0, "GET", "/v1/backups/" BK, NULL, NULL);
  CHECK (a.status == 200);
  check_keys (a.json, backup_keys);
  CHECK (STREQ (get_str (a.json, "status"), "completed"));
  CHECK (get_str (a.json, "parent_id") == NULL);
  CHECK (json_object_object_get_ex (a.json, "size_bytes", &v)
         && json_object_get_int64 (v) == 1610680000LL);
  CHECK (json_object_object_get_ex (a.json, "disks", &v)
         && json_object_array_length (v) == 1);
  check_keys (json_object_array_get_idx (v, 0), disk_keys);
  CHECK (strstr (a.body, "\"virtual_size\":4294967296"));
  answer_clear (&a);

  /* The owner sees it; another user does not, not even that it exists. */
  a = call (1000, "GET", "/v1/backups/" BK, NULL, NULL);
  CHECK (a.status == 200);
  answer_clear (&a);
  a = call (1002, "GET", "/v1/backups/" BK, NULL, NULL);
  CHECK (a.status == 404);
  answer_clear (&a);
  a = call (1002, "GET", "/v1/backups", NULL, NULL);
  CHECK (a.status == 200 && json_object_array_length (a.json) == 0);
  answer_clear (&a);
  a = call (1002, "POST", "/v1/backups/" BK "/verify", NULL, NULL);
  CHECK (a.status == 404);
  answer_clear (&a);
  a = call (1002, "DELETE", "/v1/backups/" BK, NULL, NULL);
  CHECK (a.status == 404);
  answer_clear (&a);

  /* Filters by name or UUID. */
  a = call (1000, "GET", "/v1/backups", "domain=web01", NULL);
  CHECK (a.status == 200 && json_object_array_length (a.json) == 1);
  answer_clear (&a);
  a = call (0, "GET", "/v1/backups", "domain=" UUID_A, NULL);
  CHECK (a.status == 200 && json_object_array_length (a.json) == 1);
  answer_clear (&a);
  a = call (0, "GET", "/v1/backups", "domain=web%30%31", NULL);
  CHECK (a.status == 200 && json_object_array_length (a.json) == 1);
  answer_clear (&a);
  a = call (0, "GET", "/v1/backups", "domain=web02", NULL);
  CHECK (a.status == 200 && json_object_array_length (a.json) == 0);
  answer_clear (&a);

  /* Restore requests are checked before anything is queued. */
  size_t jobs0 = count_jobs ();
  a = call (0, "POST", "/v1/backups/" BK "/restore", NULL,
            "{\"to\":\"relative/dir\"}");
  CHECK (a.status == 400 && strstr (error_message (a.json), "absolute"));
  answer_clear (&a);
  a = call (0, "POST", "/v1/backups/" BK "/restore", NULL, "{}");
  CHECK (a.status == 400 && strstr (error_message (a.json), "'to'"));
  answer_clear (&a);
  a = call (0, "POST", "/v1/backups/" BK "/restore", NULL,
            "{\"to\":\"/tmp/x\",\"format\":\"vmdk\"}");
  CHECK (a.status == 400 && strstr (error_message (a.json), "vmdk"));
  answer_clear (&a);
  a = call (1000, "POST", "/v1/backups/" BK "/restore", NULL,
            "{\"to\":\"/tmp/x\"}");
  CHECK (a.status == 403);
  answer_clear (&a);
  CHECK (count_jobs () == jobs0);

  /* Verify by the owner: 202 with a job of the documented shape (the job
   * itself fails here: there is no object on the target).
   */
  a = call (1000, "POST", "/v1/backups/" BK "/verify", NULL, NULL);
  CHECK (a.status == 202);
  CHECK (json_object_object_get_ex (a.json, "job", &v));
  check_keys (v, job_keys);
  CHECK (STREQ (get_str (v, "kind"), "verify"));
  CHECK (STREQ (get_str (v, "backup_id"), BK));
  CHECK (STREQ (get_str (v, "domain"), "web01"));
  CHECK (get_str (v, "domain_uuid") == NULL);
  _cleanup_free_ char *job = vv_strdup (get_str (v, "id"));
  answer_clear (&a);
  CHECK (count_jobs () == jobs0 + 1);
  vv_jobs_wait (ctx.jobs, job);
  _cleanup_free_ char *path = vv_printf ("/v1/jobs/%s", job);
  a = call (1000, "GET", path, NULL, NULL);
  CHECK (a.status == 200 && STREQ (get_str (a.json, "status"), "failed"));
  CHECK (get_str (a.json, "error") != NULL);
  answer_clear (&a);
  struct vv_audit_rec *au = last_audit (NULL);
  CHECK (STREQ (au->action, "backup.verify") && STREQ (au->object, BK)
         && au->uid == 1000 && STREQ (au->result, "ok")
         && STREQ (au->detail, job));
  vv_audit_rec_free (au);

  /* The target holds nothing at all: no verdict, nothing marked. */
  a = call (1000, "GET", "/v1/backups/" BK, NULL, NULL);
  CHECK (a.status == 200 && strstr (a.body, "\"corrupt\":false")
         && STREQ (get_str (a.json, "verify_result"), "failed"));
  answer_clear (&a);

  /* With another object on it, the missing manifest is damage: the
   * backup is marked corrupt.  Its owner sees that, another user sees
   * nothing of it; a restore is refused unless forced.
   */
  _cleanup_free_ char *other = vv_printf ("%s/backups/other", tmpdir);
  _cleanup_free_ char *other_obj = vv_printf ("%s/object", other);
  CHECK (other && other_obj && mkdir (other, 0700) == 0);
  FILE *fp = fopen (other_obj, "w");
  CHECK (fp && fputs ("x", fp) >= 0 && fclose (fp) == 0);
  a = call (1000, "POST", "/v1/backups/" BK "/verify", NULL, NULL);
  CHECK (a.status == 202);
  CHECK (json_object_object_get_ex (a.json, "job", &v));
  free (job);
  job = vv_strdup (get_str (v, "id"));
  answer_clear (&a);
  vv_jobs_wait (ctx.jobs, job);
  a = call (1000, "GET", "/v1/backups/" BK, NULL, NULL);
  CHECK (a.status == 200 && strstr (a.body, "\"corrupt\":true")
         && STREQ (get_str (a.json, "verify_result"), "corrupt")
         && strstr (get_str (a.json, "corrupt_reason"), BK)
         && STREQ (get_str (a.json, "status"), "completed"));
  answer_clear (&a);
  a = call (1002, "GET", "/v1/backups/" BK, NULL, NULL);
  CHECK (a.status == 404 && strstr (a.body, "corrupt") == NULL);
  answer_clear (&a);
  jobs0 = count_jobs ();
  a = call (0, "POST", "/v1/backups/" BK "/restore", NULL,
            "{\"to\":\"/tmp/x\"}");
  CHECK (a.status == 400 && strstr (error_message (a.json),
                                    "backup " BK " is marked corrupt"));
  answer_clear (&a);
  CHECK (count_jobs () == jobs0);
  n_passed++;
}

/* ---- the job queue, through the API where it can be ---- */

struct fake {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool started;
  bool release;
  bool freed;
  int result;
};

static int
fake_run (void *arg, struct vv_progress *p)
{
  struct fake *f = arg;

  pthread_mutex_lock (&f->lock);
  f->started = true;
  pthread_cond_broadcast (&f->cond);
  vv_progress_add_total (p, 1000);
  vv_progress_add (p, 250);
  while (!f->release && !vv_progress_cancelled (p)) {
    pthread_mutex_unlock (&f->lock);
    usleep (10000);
    pthread_mutex_lock (&f->lock);
  }
  pthread_mutex_unlock (&f->lock);
  if (vv_progress_cancelled (p)) {
    vv_error_code (VV_ERR_CANCELLED, "fake job cancelled");
    return -1;
  }
  vv_progress_add (p, 750);
  if (f->result)
    vv_error ("fake job failed on purpose");
  return f->result;
}

static void
fake_free (void *arg)
{
  struct fake *f = arg;

  f->freed = true;
}

static void
fake_init (struct fake *f)
{
  memset (f, 0, sizeof *f);
  pthread_mutex_init (&f->lock, NULL);
  pthread_cond_init (&f->cond, NULL);
}

static void
fake_wait_started (struct fake *f)
{
  pthread_mutex_lock (&f->lock);
  while (!f->started)
    pthread_cond_wait (&f->cond, &f->lock);
  pthread_mutex_unlock (&f->lock);
}

static void
fake_release (struct fake *f)
{
  pthread_mutex_lock (&f->lock);
  f->release = true;
  pthread_mutex_unlock (&f->lock);
}

static void
submit (const char *id, const char *uuid, struct fake *f, int64_t owner)
{
  struct vv_job_spec spec = {
    .id = id, .kind = "verify", .domain = "web01", .domain_uuid = uuid,
    .owner_uid = owner, .run = fake_run, .arg = f, .free_arg = fake_free,
  };
  CHECK (vv_jobs_submit (ctx.jobs, &spec) == 0);
}

static const char *
job_status (const char *id, uid_t uid, struct answer *a)
{
  _cleanup_free_ char *path = vv_printf ("/v1/jobs/%s", id);

  *a = call (uid, "GET", path, NULL, NULL);
  return get_str (a->json, "status");
}

static void
test_jobs (void)
{
  struct fake f1, f2, f3;
  struct answer a;
  json_object *v;

  fake_init (&f1);
  fake_init (&f2);
  fake_init (&f3);

  /* One worker: job-1 runs, job-2 (another domain) waits. */
  submit ("job-000000000001", UUID_A, &f1, 0);
  fake_wait_started (&f1);
  submit ("job-000000000002", UUID_B, &f2, 1000);

  /* Same domain: busy, naming the job that holds it. */
  struct vv_job_spec spec = {
    .id = "job-000000000003", .kind = "backup", .domain = "web01",
    .domain_uuid = UUID_A, .run = fake_run, .arg = &f3,
    .free_arg = fake_free,
  };
  CHECK (vv_jobs_submit (ctx.jobs, &spec) == -1);
  CHECK (vv_get_error_code () == VV_ERR_BUSY);
  CHECK (strstr (vv_get_error (), "domain 'web01' is busy with job "
                 "job-000000000001 (verify); wait for it or cancel it with "
                 "'virtvault job cancel job-000000000001'"));
  CHECK (!f3.freed);

  /* Live progress is merged into the answer. */
  CHECK (STREQ (job_status ("job-000000000001", 0, &a), "running"));
  CHECK (json_object_object_get_ex (a.json, "bytes_done", &v)
         && json_object_get_int64 (v) == 250);
  CHECK (json_object_object_get_ex (a.json, "bytes_total", &v)
         && json_object_get_int64 (v) == 1000);
  answer_clear (&a);

  /* Owners: uid 1000 sees its own job only, and not root's. */
  CHECK (STREQ (job_status ("job-000000000002", 1000, &a), "pending"));
  answer_clear (&a);
  job_status ("job-000000000001", 1000, &a);
  CHECK (a.status == 404);
  answer_clear (&a);
  a = call (1000, "GET", "/v1/jobs", NULL, NULL);
  bool seen = false;
  for (size_t i = 0; i < json_object_array_length (a.json); i++) {
    json_object *j = json_object_array_get_idx (a.json, i);
    CHECK (json_object_object_get_ex (j, "owner_uid", &v)
           && json_object_get_int64 (v) == 1000);
    seen = seen || STREQ (get_str (j, "id"), "job-000000000002");
  }
  CHECK (seen);
  answer_clear (&a);
  a = call (1000, "POST", "/v1/jobs/job-000000000001/cancel", NULL, NULL);
  CHECK (a.status == 404);
  answer_clear (&a);

  /* Cancel a pending job: cancelled at once, its argument freed. */
  a = call (1000, "POST", "/v1/jobs/job-000000000002/cancel", NULL, NULL);
  CHECK (a.status == 200 && STREQ (get_str (a.json, "status"), "cancelled"));
  answer_clear (&a);
  CHECK (f2.freed && !f2.started);

  /* Cancel the running one: it stops and ends cancelled. */
  a = call (0, "POST", "/v1/jobs/job-000000000001/cancel", NULL, "{}");
  CHECK (a.status == 200);
  answer_clear (&a);
  vv_jobs_wait (ctx.jobs, "job-000000000001");
  CHECK (f1.freed);
  CHECK (STREQ (job_status ("job-000000000001", 0, &a), "cancelled"));
  CHECK (strstr (get_str (a.json, "error"), "fake job cancelled"));
  CHECK (get_str (a.json, "finished_at") != NULL);
  answer_clear (&a);
  a = call (0, "POST", "/v1/jobs/job-000000000001/cancel", NULL, NULL);
  CHECK (a.status == 400 && strstr (error_message (a.json), "finished"));
  answer_clear (&a);

  /* The domain is free again; a job that completes keeps its counters. */
  fake_init (&f3);
  submit ("job-000000000003", UUID_A, &f3, 0);
  fake_wait_started (&f3);
  fake_release (&f3);
  vv_jobs_wait (ctx.jobs, "job-000000000003");
  CHECK (STREQ (job_status ("job-000000000003", 0, &a), "completed"));
  CHECK (json_object_object_get_ex (a.json, "bytes_done", &v)
         && json_object_get_int64 (v) == 1000);
  CHECK (get_str (a.json, "error") == NULL);
  answer_clear (&a);

  /* A failing job records the worker's error. */
  fake_init (&f1);
  f1.result = -1;
  submit ("job-000000000004", UUID_A, &f1, 0);
  fake_release (&f1);
  vv_jobs_wait (ctx.jobs, "job-000000000004");
  CHECK (STREQ (job_status ("job-000000000004", 0, &a), "failed"));
  CHECK (STREQ (get_str (a.json, "error"), "fake job failed on purpose"));
  answer_clear (&a);

  /* Shutdown with a job running and one queued: both end cancelled. */
  fake_init (&f1);
  fake_init (&f2);
  submit ("job-000000000005", UUID_A, &f1, 0);
  fake_wait_started (&f1);
  submit ("job-000000000006", UUID_B, &f2, 0);
  ctx.jobs = vv_jobs_free (ctx.jobs);
  CHECK (f1.freed && f2.freed && !f2.started);
  struct vv_job_rec *j = vv_catalog_job_get (catalog, "job-000000000005",
                                             VV_OWNER_ANY);
  CHECK (j && STREQ (j->status, "cancelled"));
  vv_job_rec_free (j);
  j = vv_catalog_job_get (catalog, "job-000000000006", VV_OWNER_ANY);
  CHECK (j && STREQ (j->status, "cancelled"));
  vv_job_rec_free (j);
  ctx.jobs = vv_jobs_new (catalog, 1);
  CHECK (ctx.jobs);
  n_passed++;
}

static void
cleanup_tmpdir (void)
{
  vv_remove_tree (tmpdir);
}

/* ---- what is decided before the body (vv_api_precheck) ---- */

static int
precheck (uid_t uid, const char *method, const char *path, uint64_t length,
          size_t *ret_max)
{
  char *body = NULL;
  int status;

  *ret_max = 0;
  status = vv_api_precheck (&ctx, uid, method, path, length, ret_max, &body);
  CHECK ((status == 0) == (body == NULL));
  free (body);
  return status;
}

static void
test_precheck (void)
{
  size_t before = count_audit (), max;
  char big[VV_API_BODY_NONE + 16];
  struct answer a;

  /* A user on an admin-only endpoint: 403 whatever the body, audited. */
  CHECK (precheck (1000, "POST", "/v1/backups", 1000000, &max) == 403);
  CHECK (count_audit () == before + 1);
  CHECK (precheck (1000, "GET", "/v1/targets", 0, &max) == 403);
  CHECK (precheck (1000, "POST", "/v1/targets/local/default", 0, &max)
         == 403);
  /* A restore of a backup the user cannot see: 404, as for none. */
  CHECK (precheck (1000, "POST", "/v1/backups/bk-000000000000/restore",
                   10, &max) == 404);
  /* An admin may send the body, up to the endpoint's limit. */
  CHECK (precheck (1001, "POST", "/v1/backups", 100, &max) == 0);
  CHECK (max == VV_API_BODY_FIELDS);
  CHECK (precheck (0, "POST", "/v1/backups", VV_API_BODY_FIELDS + 1, &max)
         == 413);
  /* A user's own endpoints: the body may come; no fields, 4 KiB. */
  CHECK (precheck (1000, "DELETE", "/v1/backups/bk-000000000000",
                   UINT64_MAX, &max) == 0);
  CHECK (max == VV_API_BODY_NONE);
  CHECK (precheck (1000, "POST", "/v1/policies", 5000, &max) == 0);
  CHECK (max == VV_API_BODY_FIELDS);
  CHECK (precheck (1000, "GET", "/v1/nosuch", 0, &max) == 404);
  CHECK (precheck (1000, "DELETE", "/v1/jobs", 0, &max) == 405);

  /* Without a length the limit holds while reading: vv_api_handle. */
  memset (big, ' ', sizeof big);
  big[0] = '{';
  big[sizeof big - 2] = '}';
  big[sizeof big - 1] = '\0';
  a = call (0, "DELETE", "/v1/backups/bk-000000000000", NULL, big);
  CHECK (a.status == 413);
  CHECK (STREQ (error_code (a.json), "invalid"));
  answer_clear (&a);
}

/* A user's failures are audited up to 30 an hour; an admin's always. */
static void
test_failure_limit (void)
{
  size_t before;

  ctx.failures = vv_api_failures_new ();
  CHECK (ctx.failures);
  before = count_audit ();
  for (int i = 0; i < 40; i++) {
    struct answer a = call (1002, "DELETE", "/v1/backups/bk-000000000000",
                            NULL, NULL);
    CHECK (a.status == 404);
    answer_clear (&a);
  }
  CHECK (count_audit () == before + 30);
  before = count_audit ();
  for (int i = 0; i < 40; i++) {
    struct answer a = call (1001, "DELETE", "/v1/backups/bk-000000000000",
                            NULL, NULL);
    CHECK (a.status == 404);
    answer_clear (&a);
  }
  CHECK (count_audit () == before + 40);
  ctx.failures = vv_api_failures_free (ctx.failures);
}

int
main (void)
{
  static const uid_t admins[] = { 1001 };
  _cleanup_free_ char *db = NULL, *backups = NULL, *url = NULL;
  char now[VV_TIME_MAX];
  int n;

  if (getenv ("VIRTVAULT_PLUGIN_PATH") == NULL)
    setenv ("VIRTVAULT_PLUGIN_PATH", "../plugins/file/.libs", 1);

  CHECK (mkdtemp (tmpdir));
  atexit (cleanup_tmpdir);
  db = vv_printf ("%s/catalog.db", tmpdir);
  backups = vv_printf ("%s/backups", tmpdir);
  url = vv_printf ("file://%s", backups);
  CHECK (db && backups && url && mkdir (backups, 0700) == 0);
  catalog = vv_catalog_open (db);
  CHECK (catalog);
  vv_now_utc (now);
  struct vv_target_rec local = {
    .name = (char *) "local", .url = url, .created_at = now,
  };
  CHECK (vv_catalog_target_add (catalog, &local) == 0);

  struct vv_engine engine = {
    .libvirt_uri = "test:///default",
    .state_dir = tmpdir,
    .catalog = catalog,
    .default_target = "local",
  };
  ctx.engine = &engine;
  ctx.jobs = vv_jobs_new (catalog, 1);
  CHECK (ctx.jobs);
  ctx.admin_uids = admins;
  ctx.n_admin_uids = 1;

  n = snprintf (long_domain_body, sizeof long_domain_body, "{\"domain\":\"");
  memset (long_domain_body + n, 'a', 201);
  strcpy (long_domain_body + n + 201, "\"}");

  run_cases ();
  test_targets ();
  test_audit ();
  test_backup_records ();
  test_jobs ();
  test_precheck ();
  test_failure_limit ();

  ctx.jobs = vv_jobs_free (ctx.jobs);
  catalog = vv_catalog_close (catalog);
  vv_plugins_unload_all ();

  printf ("%u passed, %u failed\n", n_passed, n_failed);
  return n_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
