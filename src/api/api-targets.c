/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "target/target.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"
#include "api/api-internal.h"

#define TARGET_NAME_MAX 64
#define TARGET_PARAMS_MAX 64
#define TARGET_PRICE_MAX 1e6

/* The params JSON text of the catalog as a NULL-terminated vector that
 * points into the parsed array *ret_json.
 */
static int
params_from_text (const char *text, json_object **ret_json,
                  const char ***ret_v)
{
  _cleanup_json_ json_object *a = NULL;
  const char **v;
  size_t n;

  *ret_json = NULL;
  *ret_v = NULL;
  if (text == NULL || text[0] == '\0')
    return 0;
  a = vv_json_parse ("the stored target params", text, strlen (text));
  if (a == NULL)
    return -1;
  if (!json_object_is_type (a, json_type_array)) {
    vv_error ("the stored target params are not a JSON array");
    return -1;
  }
  n = json_object_array_length (a);
  v = calloc (n + 1, sizeof *v);
  if (v == NULL) {
    vv_error_errno (errno, "reading target params");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    v[i] = json_object_get_string (json_object_array_get_idx (a, i));
  *ret_json = TAKE_PTR (a);
  *ret_v = v;
  return 0;
}

/* Opens the stored target t (for test). */
static struct vv_target *
open_rec (const struct vv_target_rec *t)
{
  _cleanup_json_ json_object *pj = NULL;
  _cleanup_free_ const char **pv = NULL;

  if (params_from_text (t->params, &pj, &pv) == -1)
    return NULL;
  return vv_target_open (t->name, t->url, pv);
}

int
vv_api_target_list (struct vv_api_request *r, json_object **ret)
{
  struct vv_target_rec **v = NULL;
  _cleanup_free_ char *dflt = NULL;
  size_t n = 0;
  json_object *a;

  if (vv_api_require_admin (r, "managing targets") == -1)
    return -1;
  if ((dflt = vv_engine_default_target (r->ctx->engine)) == NULL
      || vv_catalog_target_list (r->ctx->engine->catalog, &v, &n) == -1)
    return -1;
  a = json_object_new_array ();
  for (size_t i = 0; i < n; i++) {
    if (a)
      json_object_array_add (a, vv_target_to_json (v[i], dflt));
    vv_target_rec_free (v[i]);
  }
  free (v);
  if (a == NULL) {
    vv_error ("out of memory listing targets");
    return -1;
  }
  *ret = a;
  return 200;
}

int
vv_api_target_get (struct vv_api_request *r, json_object **ret)
{
  _cleanup_target_rec_ struct vv_target_rec *t = NULL;
  _cleanup_free_ char *dflt = NULL;

  if (vv_api_require_admin (r, "managing targets") == -1)
    return -1;
  t = vv_catalog_target_get (r->ctx->engine->catalog, r->param);
  if (t == NULL || (dflt = vv_engine_default_target (r->ctx->engine)) == NULL)
    return -1;
  *ret = vv_target_to_json (t, dflt);
  return 200;
}

int
vv_api_target_set_default (struct vv_api_request *r, json_object **ret)
{
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;
  _cleanup_target_rec_ struct vv_target_rec *t = NULL;
  _cleanup_free_ char *was = NULL;
  struct vv_catalog *c = r->ctx->engine->catalog;
  char detail[160];

  if (vv_api_require_admin (r, "managing targets") == -1)
    return -1;
  req = vv_api_parse_body (r, "the default request", no_keys, true);
  if (req == NULL)
    return -1;
  if ((was = vv_engine_default_target (r->ctx->engine)) == NULL
      || vv_catalog_target_set_default (c, r->param) == -1
      || (t = vv_catalog_target_get (c, r->param)) == NULL)
    return -1;
  snprintf (detail, sizeof detail, "default target was '%.64s'", was);
  vv_api_set_audit (r, NULL, detail);
  *ret = vv_target_to_json (t, t->name);
  return 200;
}

static const char *const target_keys[] = {
  "name", "url", "params", "price_per_gb_month", "check", NULL
};

/* Reads and checks the params array; *ret_v points into o. */
static int
get_params (json_object *o, const char *what, const char ***ret_v,
            char **ret_text)
{
  json_object *a = NULL;
  const char **v;
  size_t n;
  const char *text;
  int r;

  r = vv_json_get_array (o, what, "params", &a);
  if (r <= 0)
    return r;
  n = json_object_array_length (a);
  if (n > TARGET_PARAMS_MAX) {
    vv_error_code (VV_ERR_INVALID, "field 'params' of %s has more than %d "
                   "entries", what, TARGET_PARAMS_MAX);
    return -1;
  }
  v = calloc (n + 1, sizeof *v);
  if (v == NULL) {
    vv_error_errno (errno, "reading %s", what);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    json_object *p = json_object_array_get_idx (a, i);
    const char *s = json_object_get_string (p);
    const char *eq;

    if (!json_object_is_type (p, json_type_string)
        || (eq = strchr (s, '=')) == NULL || eq == s
        || strlen (s) != (size_t) json_object_get_string_len (p)) {
      vv_error_code (VV_ERR_INVALID,
                     "field 'params' of %s must be an array of \"key=value\" "
                     "strings", what);
      free (v);
      return -1;
    }
    v[i] = s;
  }
  text = json_object_to_json_string_ext (a, JSON_C_TO_STRING_PLAIN
                                         | JSON_C_TO_STRING_NOSLASHESCAPE);
  if (text == NULL || strlen (text) > VV_TARGET_URL_MAX) {
    vv_error_code (VV_ERR_INVALID, "field 'params' of %s is longer than %d "
                   "bytes", what, VV_TARGET_URL_MAX);
    free (v);
    return -1;
  }
  *ret_text = vv_strdup (text);
  if (*ret_text == NULL) {
    free (v);
    return -1;
  }
  *ret_v = v;
  return 1;
}

static int
get_price (json_object *o, const char *what, double *ret)
{
  json_object *p;
  double d;

  if (!json_object_object_get_ex (o, "price_per_gb_month", &p) || p == NULL)
    return 0;
  if (!json_object_is_type (p, json_type_int)
      && !json_object_is_type (p, json_type_double)) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'price_per_gb_month' of %s must be a number", what);
    return -1;
  }
  d = json_object_get_double (p);
  if (!(d >= 0 && d <= TARGET_PRICE_MAX)) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'price_per_gb_month' of %s must be between 0 and %g",
                   what, TARGET_PRICE_MAX);
    return -1;
  }
  *ret = d;
  return 1;
}

/* The URL must name a scheme we have a plugin for. */
static int
check_url (const char *url, const char *what)
{
  char scheme[32];

  if (url[0] == '\0' || strlen (url) > VV_TARGET_URL_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'url' of %s must be 1 to %d bytes", what,
                   VV_TARGET_URL_MAX);
    return -1;
  }
  if (vv_url_scheme (url, scheme, sizeof scheme) == -1) {
    vv_error_code (VV_ERR_INVALID,
                   "target URL '%.256s' has no scheme; give one such as "
                   "file:///srv/backup", url);
    return -1;
  }
  if (vv_plugin_for_scheme (scheme) == NULL) {
    char msg[2048];
    /* Not a server fault: the caller asked for a kind of storage this
     * installation does not have.
     */
    snprintf (msg, sizeof msg, "%s", vv_get_error ());
    vv_error_code (VV_ERR_INVALID, "%s", msg);
    return -1;
  }
  return 0;
}

int
vv_api_target_create (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the target request";
  _cleanup_json_ json_object *req = NULL;
  const char *name = NULL, *url = NULL;
  _cleanup_free_ const char **params_v = NULL;
  _cleanup_free_ char *params_text = NULL;
  _cleanup_target_rec_ struct vv_target_rec *existing = NULL;
  _cleanup_target_rec_ struct vv_target_rec *stored = NULL;
  struct vv_catalog *c = r->ctx->engine->catalog;
  double price = 0;
  bool check = true;
  struct vv_target *t;
  int n;

  req = vv_api_parse_body (r, what, target_keys, false);
  if (req == NULL)
    return -1;
  n = vv_json_get_string (req, what, "name", &name);
  if (n == -1)
    return -1;
  if (n == 0) {
    vv_error_code (VV_ERR_INVALID, "field 'name' of %s is required", what);
    return -1;
  }
  vv_api_set_audit (r, name, NULL);
  if (vv_api_require_admin (r, "managing targets") == -1)
    return -1;
  if (vv_check_name ("target name", name, TARGET_NAME_MAX) == -1)
    return -1;
  n = vv_json_get_string (req, what, "url", &url);
  if (n == -1)
    return -1;
  if (n == 0) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'url' of %s is required, e.g. file:///srv/backup",
                   what);
    return -1;
  }
  if (get_params (req, what, &params_v, &params_text) == -1
      || get_price (req, what, &price) == -1
      || vv_json_get_bool (req, what, "check", &check) == -1)
    return -1;
  if (check_url (url, what) == -1)
    return -1;

  existing = vv_catalog_target_get (c, name);
  if (existing) {
    vv_error_code (VV_ERR_BUSY, "target '%s' already exists", name);
    return -1;
  }
  if (vv_get_error_code () != VV_ERR_NOT_FOUND)
    return -1;
  vv_clear_error ();

  /* Stored only once it works, so a typo in the URL fails now and not at
   * the first backup.
   */
  t = vv_target_open (name, url, params_v);
  if (t == NULL)
    return -1;
  /* Reachable and writable now, unless the admin says it is not yet. */
  if (check && vv_target_test (t) == -1) {
    vv_error_prefix ("not adding target '%s' (add it with --no-check to "
                     "store it anyway): ", name);
    vv_target_close (t);
    return -1;
  }
  vv_target_close (t);

  char now[VV_TIME_MAX];
  vv_now_utc (now);
  struct vv_target_rec rec = {
    .name = (char *) name,
    .url = (char *) url,
    .params = params_text,
    .price_per_gb_month = price,
    .created_at = now,
  };
  if (vv_catalog_target_add (c, &rec) == -1)
    return -1;
  stored = vv_catalog_target_get (c, name);
  {
    _cleanup_free_ char *dflt = vv_engine_default_target (r->ctx->engine);
    *ret = vv_target_to_json (stored ? stored : &rec, dflt);
  }
  return 200;
}

int
vv_api_target_delete (struct vv_api_request *r, json_object **ret)
{
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;
  _cleanup_free_ char *dflt = NULL;
  json_object *o;

  if (vv_api_require_admin (r, "managing targets") == -1)
    return -1;
  req = vv_api_parse_body (r, "the delete request", no_keys, true);
  if (req == NULL)
    return -1;
  /* The catalog refuses its marked default itself; without one the
   * config's default_target is the default.
   */
  if ((dflt = vv_engine_default_target (r->ctx->engine)) == NULL)
    return -1;
  if (strcmp (dflt, r->param) == 0) {
    vv_error_code (VV_ERR_BUSY,
                   "target '%s' is the default target; make another target "
                   "the default first ('virtvault target set-default NAME')",
                   r->param);
    return -1;
  }
  if (vv_catalog_target_remove (r->ctx->engine->catalog, r->param) == -1)
    return -1;
  o = json_object_new_object ();
  if (o == NULL) {
    vv_error ("out of memory");
    return -1;
  }
  json_object_object_add (o, "deleted", json_object_new_string (r->param));
  *ret = o;
  return 200;
}

/* One decimal is all a person reads of a timing. */
static json_object *
one_decimal (double x)
{
  return vv_json_new_number ((double) (int64_t) (x * 10 + 0.5) / 10);
}

static json_object *
ms (double seconds)
{
  return one_decimal (seconds * 1000);
}

static json_object *
rate (uint64_t bytes, double seconds)
{
  return one_decimal (seconds > 0 ? bytes / seconds / 1048576 : 0);
}

int
vv_api_target_test (struct vv_api_request *r, json_object **ret)
{
  struct vv_target_probe pr;
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;
  _cleanup_target_rec_ struct vv_target_rec *rec = NULL;
  struct vv_target *t;
  json_object *o;
  int res;

  if (vv_api_require_admin (r, "managing targets") == -1)
    return -1;
  req = vv_api_parse_body (r, "the test request", no_keys, true);
  if (req == NULL)
    return -1;
  rec = vv_catalog_target_get (r->ctx->engine->catalog, r->param);
  if (rec == NULL)
    return -1;
  t = open_rec (rec);
  if (t == NULL)
    return -1;
  res = vv_target_probe (t, &pr);
  if (res == -1) {
    char msg[2048];
    enum vv_errcode code = vv_get_error_code ();
    snprintf (msg, sizeof msg, "%s", vv_get_error ());
    vv_target_close (t);
    vv_error_code (code, "%s", msg);
    return -1;
  }
  vv_target_close (t);
  o = json_object_new_object ();
  if (o == NULL) {
    vv_error ("out of memory");
    return -1;
  }
  json_object_object_add (o, "name", json_object_new_string (rec->name));
  json_object_object_add (o, "ok", json_object_new_boolean (1));
  json_object_object_add (o, "connect_ms", ms (pr.test_seconds));
  json_object_object_add (o, "write_mib_per_s",
                          rate (pr.probe_bytes, pr.write_seconds));
  json_object_object_add (o, "list_ms", ms (pr.list_seconds));
  json_object_object_add (o, "read_ms", ms (pr.read_seconds));
  json_object_object_add (o, "read_mib_per_s",
                          rate (pr.read_bytes, pr.read_seconds));
  json_object_object_add (o, "remove_ms", ms (pr.remove_seconds));
  json_object_object_add (o, "probe_bytes",
                          json_object_new_int64 ((int64_t) pr.probe_bytes));
  *ret = o;
  return 200;
}

int
vv_api_target_import (struct vv_api_request *r, json_object **ret)
{
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;
  _cleanup_json_ json_object *o = NULL;
  struct vv_import_result res = { 0 };
  json_object *skipped;
  char detail[160];

  if (vv_api_require_admin (r, "managing targets") == -1)
    return -1;
  req = vv_api_parse_body (r, "the import request", no_keys, true);
  if (req == NULL)
    return -1;
  if (vv_engine_import_target (r->ctx->engine, r->param, &res) == -1)
    return -1;
  snprintf (detail, sizeof detail, "imported %zu, known %zu, skipped %zu",
            res.imported, res.known, res.n_skipped);
  vv_api_set_audit (r, NULL, detail);

  o = json_object_new_object ();
  if (o == NULL)
    goto nomem;
  json_object_object_add (o, "imported",
                          json_object_new_int64 ((int64_t) res.imported));
  json_object_object_add (o, "known",
                          json_object_new_int64 ((int64_t) res.known));
  skipped = json_object_new_array ();
  if (skipped == NULL || json_object_object_add (o, "skipped", skipped) != 0) {
    json_object_put (skipped);
    goto nomem;
  }
  json_object_object_add (o, "skipped_total",
                          json_object_new_int64 ((int64_t) res.n_skipped));
  for (size_t i = 0; i < res.n_reported; i++) {
    json_object *s = json_object_new_object ();

    if (s == NULL || json_object_array_add (skipped, s) != 0) {
      json_object_put (s);
      goto nomem;
    }
    json_object_object_add (s, "object",
                            json_object_new_string (res.skipped[i].object));
    json_object_object_add (s, "reason",
                            json_object_new_string (res.skipped[i].reason));
  }
  vv_import_result_clear (&res);
  *ret = TAKE_PTR (o);
  return 200;

 nomem:
  vv_import_result_clear (&res);
  vv_error ("out of memory answering the import of target '%s'", r->param);
  return -1;
}
