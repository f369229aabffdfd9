/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/domain.h"
#include "engine/engine.h"
#include "scheduler/retention.h"
#include "scheduler/schedule.h"
#include "scheduler/scheduler.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"
#include "api/api-internal.h"

/* Policies, attaching instances, runs, protection, instances and their
 * costs, and the test clock.  docs/api.md describes every call.
 */

static void
cleanup_policy (struct vv_policy_rec **p)
{
  vv_policy_rec_free (*p);
}
#define _cleanup_policy_ _cleanup_ (cleanup_policy)

static int
oom (void)
{
  vv_error ("out of memory");
  return -1;
}

/* ---- the policy as JSON ---- */

static json_object *
keep_json (const char *keep)
{
  struct vv_retention_rules r;
  json_object *a = json_object_new_array ();

  vv_retention_rules_init (&r, NULL);
  if (a == NULL || keep == NULL || keep[0] == '\0'
      || vv_parse_keep_rules (keep, &r) == -1)
    return a;
  for (size_t i = 0; i < r.n_keep; i++) {
    char iv[VV_KEEP_RULE_STR_MAX];
    json_object *o = json_object_new_object ();
    if (o == NULL)
      break;
    vv_format_keep_interval (&r.keep[i], iv);
    json_object_object_add (o, "interval", json_object_new_string (iv));
    json_object_object_add (o, "count", json_object_new_int64 (r.keep[i].count));
    json_object_array_add (a, o);
  }
  return a;
}

static json_object *
policy_json (struct vv_api_request *r, const struct vv_policy_rec *p)
{
  json_object *o = json_object_new_object ();
  struct vv_attachment_rec **av = NULL;
  size_t na = 0;
  struct vv_schedule s, rs;
  char summary[VV_SCHEDULE_SUMMARY_MAX] = "", at[8], buf[VV_DURATION_STR_MAX];
  bool have_sched;

  if (o == NULL)
    return NULL;
  have_sched = vv_policy_schedule (p, &s) == 0;
  if (have_sched) {
    vv_schedule_summary (&s, summary);
    vv_policy_run_schedule (&s, p->max_chain, &rs);
  }
  snprintf (at, sizeof at, "%02d:%02d", p->hour % 100, p->minute % 100);
  json_object_object_add (o, "name", json_object_new_string (p->name));
  json_object_object_add (o, "owner_uid", json_object_new_int64 (p->owner_uid));
  json_object_object_add (o, "status", vv_json_string_or_null (p->status));
  json_object_object_add (o, "last_error",
                          vv_json_string_or_null (p->last_error));
  json_object_object_add (o, "schedule",
                          vv_json_string_or_null (p->schedule_kind));
  json_object_object_add (o, "day", p->day >= 0
                          ? vv_json_string_or_null (vv_schedule_day_name (p->day))
                          : NULL);
  json_object_object_add (o, "at", json_object_new_string (at));
  json_object_object_add (o, "tz", vv_json_string_or_null (p->tz));
  json_object_object_add (o, "window_minutes",
                          json_object_new_int64 (p->window));
  json_object_object_add (o, "summary", json_object_new_string (summary));
  json_object_object_add (o, "max_chain", json_object_new_int64 (p->max_chain));
  json_object_object_add (o, "retention", json_object_new_int64 (p->retention));
  json_object_object_add (o, "keep", keep_json (p->keep));
  if (p->max_age) {
    vv_format_duration (p->max_age, buf);
    json_object_object_add (o, "max_age", json_object_new_string (buf));
  }
  else
    json_object_object_add (o, "max_age", NULL);
  json_object_object_add (o, "max_backups", p->max_backups
                          ? json_object_new_int64 (p->max_backups) : NULL);
  json_object_object_add (o, "device", vv_json_string_or_null (p->device));
  json_object_object_add (o, "target", vv_json_string_or_null (p->target));
  json_object_object_add (o, "quiesce", vv_json_string_or_null (p->quiesce));
  json_object_object_add (o, "created_at",
                          vv_json_string_or_null (p->created_at));
  json_object_object_add (o, "verify_every",
                          json_object_new_int64 (p->verify_every));
  /* Only the caller's backups count: an admin may have attached another
   * user's instance to this policy.
   */
  {
    struct vv_policy_verify_stats st = { 0 };
    if (vv_catalog_policy_verify_stats (r->ctx->engine->catalog, p->name,
                                        r->owner_filter, &st) == 0) {
      json_object_object_add (o, "last_verified_at",
                              vv_json_string_or_null (st.last_verified_at));
      json_object_object_add (o, "backups",
                              json_object_new_int64 ((int64_t) st.backups));
      json_object_object_add (o, "verified_backups",
                              json_object_new_int64 ((int64_t) st.verified));
      json_object_object_add (o, "corrupt_backups",
                              json_object_new_int64 ((int64_t) st.corrupt));
    }
    vv_policy_verify_stats_clear (&st);
  }

  json_object *inst = json_object_new_array ();
  if (vv_catalog_attachment_list (r->ctx->engine->catalog, p->name, &av,
                                  &na) == 0) {
    time_t now = vv_clock_now ();
    for (size_t i = 0; inst && i < na; i++) {
      json_object *a = json_object_new_object ();
      time_t next;
      if (a == NULL)
        break;
      json_object_object_add (a, "domain",
                              vv_json_string_or_null (av[i]->domain));
      json_object_object_add (a, "domain_uuid",
                              vv_json_string_or_null (av[i]->domain_uuid));
      json_object_object_add (a, "attached_at",
                              vv_json_string_or_null (av[i]->attached_at));
      if (have_sched && strcmp (p->status, "paused") != 0
          && vv_schedule_next_run (&rs, av[i]->domain_uuid, now, &next) == 0) {
        char when[VV_TIME_MAX];
        vv_format_time_utc (next, when);
        json_object_object_add (a, "next_run", json_object_new_string (when));
      }
      else
        json_object_object_add (a, "next_run", NULL);
      json_object_array_add (inst, a);
    }
    vv_attachment_recs_free (av, na);
  }
  json_object_object_add (o, "instances", inst);
  return o;
}

/* ---- reading a policy from a request ---- */

static const char *const policy_keys[] = {
  "name", "schedule", "day", "at", "tz", "window", "max_chain", "retention",
  "device", "target", "quiesce", "keep", "max_age", "max_backups",
  "owner_uid", "verify_every", NULL
};

/* A count given as a JSON number or a string ("6"): 0 absent, 1 given. */
static int
get_count (json_object *req, const char *what, const char *key,
           const char *field, unsigned min, unsigned max, unsigned *ret)
{
  json_object *v;

  if (!json_object_object_get_ex (req, key, &v) || v == NULL)
    return 0;
  if (json_object_is_type (v, json_type_string))
    return vv_parse_count (field, json_object_get_string (v), min, max,
                           ret) == -1 ? -1 : 1;
  if (json_object_is_type (v, json_type_int)) {
    int64_t i = json_object_get_int64 (v);
    if (i < min || i > max) {
      vv_error_code (VV_ERR_INVALID, "%s '%lld': must be a whole number from "
                     "%u to %u", field, (long long) i, min, max);
      return -1;
    }
    *ret = (unsigned) i;
    return 1;
  }
  vv_error_code (VV_ERR_INVALID, "field '%s' of %s must be a whole number",
                 key, what);
  return -1;
}

/* Strings, or null (absent). */
static int
get_str (json_object *req, const char *what, const char *key,
         const char **ret)
{
  json_object *v;

  if (!json_object_object_get_ex (req, key, &v) || v == NULL)
    return 0;
  return vv_json_get_string (req, what, key, ret);
}

static int
replace (char **field, const char *v)
{
  char *copy = NULL;

  if (v && v[0] && (copy = vv_strdup (v)) == NULL)
    return -1;
  free (*field);
  *field = copy;
  return 0;
}

/* Applies the request to p (the defaults for a new one, or the existing
 * policy for an edit) and checks the whole.
 */
static int
apply_request (struct vv_api_request *r, json_object *req, const char *what,
               struct vv_policy_rec *p, bool create)
{
  const char *kind = NULL, *day = NULL, *at = NULL, *tz = NULL;
  const char *window = NULL, *device = NULL, *target = NULL;
  const char *quiesce = NULL, *max_age = NULL;
  char at_buf[8], day_buf[8], win_buf[16];
  json_object *keep = NULL;
  struct vv_schedule s;
  struct vv_retention_rules rules;
  unsigned v;
  int n;

  if (get_str (req, what, "schedule", &kind) == -1
      || get_str (req, what, "day", &day) == -1
      || get_str (req, what, "at", &at) == -1
      || get_str (req, what, "tz", &tz) == -1
      || get_str (req, what, "window", &window) == -1
      || get_str (req, what, "device", &device) == -1
      || get_str (req, what, "target", &target) == -1
      || get_str (req, what, "quiesce", &quiesce) == -1
      || get_str (req, what, "max_age", &max_age) == -1)
    return -1;
  if (create && kind == NULL) {
    vv_error_code (VV_ERR_INVALID, "field 'schedule' of %s is required: "
                   "\"daily\" or \"weekly\"", what);
    return -1;
  }
  if (create && at == NULL) {
    vv_error_code (VV_ERR_INVALID, "field 'at' of %s is required: the local "
                   "time as HH:MM", what);
    return -1;
  }
  /* What the request leaves out stays as it was. */
  if (kind == NULL)
    kind = p->schedule_kind;
  if (at == NULL) {
    snprintf (at_buf, sizeof at_buf, "%02d:%02d", p->hour % 100,
              p->minute % 100);
    at = at_buf;
  }
  if (day == NULL && p->day >= 0 && strcmp (kind, "weekly") == 0) {
    snprintf (day_buf, sizeof day_buf, "%s", vv_schedule_day_name (p->day));
    day = day_buf;
  }
  if (tz == NULL)
    tz = p->tz;
  if (window == NULL) {
    snprintf (win_buf, sizeof win_buf, "%um", p->window);
    window = win_buf;
  }
  if (vv_schedule_parse (kind, day && day[0] ? day : NULL, at, tz, window,
                         &s) == -1)
    return -1;
  if (replace (&p->schedule_kind, vv_schedule_kind_name (s.kind)) == -1
      || replace (&p->tz, s.tz) == -1)
    return -1;
  p->day = s.wday;
  p->hour = s.hour;
  p->minute = s.minute;
  p->window = s.window;

  if ((n = get_count (req, what, "max_chain", "max chain", 0, 1000, &v)) == -1)
    return -1;
  if (n)
    p->max_chain = v;
  if ((n = get_count (req, what, "retention", "retention", 1,
                      VV_RETENTION_COUNT_MAX, &v)) == -1)
    return -1;
  if (n)
    p->retention = v;
  if ((n = get_count (req, what, "max_backups", "max backups", 0,
                      VV_RETENTION_COUNT_MAX, &v)) == -1)
    return -1;
  if (n)
    p->max_backups = v;
  if ((n = get_count (req, what, "verify_every", "verify every", 0,
                      VV_POLICY_VERIFY_EVERY_MAX, &v)) == -1)
    return -1;
  if (n)
    p->verify_every = v;
  if (max_age) {
    int64_t secs = 0;
    if (max_age[0] && strcmp (max_age, "0") != 0
        && vv_parse_duration ("max age", max_age, &secs) == -1)
      return -1;
    p->max_age = secs;
  }
  if (device) {
    if (strcmp (device, "primary") != 0 && strcmp (device, "all") != 0) {
      vv_error_code (VV_ERR_INVALID, "device '%.64s': must be \"primary\" "
                     "(the boot disk) or \"all\" (every disk)", device);
      return -1;
    }
    if (replace (&p->device, device) == -1)
      return -1;
  }
  if (quiesce) {
    if (strcmp (quiesce, "off") != 0 && strcmp (quiesce, "try") != 0
        && strcmp (quiesce, "on") != 0) {
      vv_error_code (VV_ERR_INVALID, "quiesce '%.64s': must be \"off\", "
                     "\"try\" or \"on\"", quiesce);
      return -1;
    }
    if (replace (&p->quiesce, quiesce) == -1)
      return -1;
  }
  if (target) {
    if (target[0]) {
      struct vv_target_rec *t;
      if (vv_check_name ("target name", target, 64) == -1)
        return -1;
      t = vv_catalog_target_get (r->ctx->engine->catalog, target);
      if (t == NULL) {
        if (vv_get_error_code () == VV_ERR_NOT_FOUND)
          vv_error_code (VV_ERR_INVALID, "target '%s': no such target; see "
                         "'virtvault target list'", target);
        return -1;
      }
      vv_target_rec_free (t);
    }
    if (replace (&p->target, target) == -1)
      return -1;
  }

  /* Keep rules: "1d:7,1w:4" or [{"interval":"1d","count":7}, ...]. */
  if (json_object_object_get_ex (req, "keep", &keep) && keep) {
    _cleanup_free_ char *text = NULL;

    vv_retention_rules_init (&rules, NULL);
    if (json_object_is_type (keep, json_type_string)) {
      const char *k = json_object_get_string (keep);
      if (k[0] && vv_parse_keep_rules (k, &rules) == -1)
        return -1;
    }
    else if (json_object_is_type (keep, json_type_array)) {
      size_t nk = json_object_array_length (keep);
      if (nk > VV_KEEP_RULES_MAX) {
        vv_error_code (VV_ERR_INVALID, "field 'keep' of %s has more than %d "
                       "rules", what, VV_KEEP_RULES_MAX);
        return -1;
      }
      for (size_t i = 0; i < nk; i++) {
        json_object *k = json_object_array_get_idx (keep, i), *iv, *cnt;
        if (!json_object_is_type (k, json_type_object)
            || !json_object_object_get_ex (k, "interval", &iv)
            || !json_object_is_type (iv, json_type_string)
            || !json_object_object_get_ex (k, "count", &cnt)
            || !json_object_is_type (cnt, json_type_int)) {
          vv_error_code (VV_ERR_INVALID, "field 'keep' of %s must be like "
                         "[{\"interval\":\"1d\",\"count\":7}]", what);
          return -1;
        }
        if (vv_parse_keep_interval (json_object_get_string (iv),
                                    &rules.keep[i]) == -1)
          return -1;
        int64_t c = json_object_get_int64 (cnt);
        if (c < 1 || c > VV_RETENTION_COUNT_MAX) {
          vv_error_code (VV_ERR_INVALID, "keep rule count %lld: must be from "
                         "1 to %d", (long long) c, VV_RETENTION_COUNT_MAX);
          return -1;
        }
        rules.keep[i].count = (unsigned) c;
        rules.n_keep = i + 1;
      }
    }
    else {
      vv_error_code (VV_ERR_INVALID, "field 'keep' of %s must be a string "
                     "such as \"1d:7,1w:4\" or an array of rules", what);
      return -1;
    }
    for (size_t i = 0; i < rules.n_keep; i++) {
      char one[VV_KEEP_RULE_STR_MAX];
      char *more;
      vv_format_keep_rule (&rules.keep[i], one);
      more = vv_printf ("%s%s%s", text ? text : "", text ? "," : "", one);
      if (more == NULL)
        return -1;
      free (text);
      text = more;
    }
    if (replace (&p->keep, text) == -1)
      return -1;
  }

  /* The whole, as the scheduler will read it. */
  if (vv_policy_rules (p, 0, &rules) == -1)
    return -1;
  return 0;
}

/* ---- handlers ---- */

static struct vv_policy_rec *
get_policy (struct vv_api_request *r)
{
  return vv_catalog_policy_get (r->ctx->engine->catalog, r->param,
                                r->owner_filter);
}

static int
answer_policy (struct vv_api_request *r, const char *name, int status,
               json_object **ret)
{
  _cleanup_policy_ struct vv_policy_rec *p =
    vv_catalog_policy_get (r->ctx->engine->catalog, name, VV_OWNER_ANY);

  if (p == NULL)
    return -1;
  *ret = policy_json (r, p);
  return *ret ? status : oom ();
}

static void
wake_scheduler (struct vv_api_request *r)
{
  if (r->ctx->scheduler)
    vv_scheduler_sync (r->ctx->scheduler);
}

int
vv_api_policy_create (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the policy";
  _cleanup_json_ json_object *req = NULL;
  struct vv_policy_rec p = { 0 };
  const char *name = NULL;
  uint64_t owner = 0;
  int has_owner, rc = -1;

  req = vv_api_parse_body (r, what, policy_keys, false);
  if (req == NULL)
    return -1;
  if (vv_json_get_string (req, what, "name", &name) == -1)
    return -1;
  if (name == NULL) {
    vv_error_code (VV_ERR_INVALID, "field 'name' of %s is required", what);
    return -1;
  }
  if (vv_check_name ("policy name", name, VV_POLICY_NAME_MAX) == -1)
    return -1;
  vv_api_set_audit (r, name, NULL);
  if ((has_owner = vv_json_get_uint64 (req, what, "owner_uid", &owner)) == -1)
    return -1;
  if (has_owner && !r->admin && owner != r->uid) {
    vv_error_code (VV_ERR_FORBIDDEN, "only administrators may create a "
                   "policy for another user");
    return -1;
  }
  p.name = (char *) name;
  p.owner_uid = has_owner ? (int64_t) owner : (int64_t) r->uid;
  p.day = -1;
  p.max_chain = 6;
  p.retention = VV_RETENTION_DEFAULT;
  if (replace (&p.tz, "UTC") == -1 || replace (&p.device, "primary") == -1
      || replace (&p.quiesce, "off") == -1)
    goto out;
  if (apply_request (r, req, what, &p, true) == -1)
    goto out;
  if (vv_catalog_policy_add (r->ctx->engine->catalog, &p) == -1)
    goto out;
  rc = 0;

 out:
  free (p.schedule_kind);
  free (p.tz);
  free (p.keep);
  free (p.device);
  free (p.target);
  free (p.quiesce);
  if (rc == -1)
    return -1;
  wake_scheduler (r);
  return answer_policy (r, name, 201, ret);
}

int
vv_api_policy_list (struct vv_api_request *r, json_object **ret)
{
  struct vv_policy_rec **v = NULL;
  size_t n = 0;
  json_object *a;

  if (vv_catalog_policy_list (r->ctx->engine->catalog, r->owner_filter, &v,
                              &n) == -1)
    return -1;
  a = json_object_new_array ();
  for (size_t i = 0; a && i < n; i++)
    json_object_array_add (a, policy_json (r, v[i]));
  vv_policy_recs_free (v, n);
  if (a == NULL)
    return oom ();
  *ret = a;
  return 200;
}

int
vv_api_policy_get (struct vv_api_request *r, json_object **ret)
{
  _cleanup_policy_ struct vv_policy_rec *p = get_policy (r);

  if (p == NULL)
    return -1;
  *ret = policy_json (r, p);
  return *ret ? 200 : oom ();
}

int
vv_api_policy_edit (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the policy change";
  static const char *const edit_keys[] = {
    "schedule", "day", "at", "tz", "window", "max_chain", "retention",
    "device", "target", "quiesce", "keep", "max_age", "max_backups",
    "verify_every", NULL
  };
  _cleanup_json_ json_object *req = NULL;
  _cleanup_policy_ struct vv_policy_rec *p = NULL;

  req = vv_api_parse_body (r, what, edit_keys, false);
  if (req == NULL)
    return -1;
  if ((p = get_policy (r)) == NULL)
    return -1;
  if (apply_request (r, req, what, p, false) == -1
      || vv_catalog_policy_update (r->ctx->engine->catalog, p) == -1)
    return -1;
  wake_scheduler (r);
  return answer_policy (r, p->name, 200, ret);
}

static int
set_status (struct vv_api_request *r, const char *status, json_object **ret)
{
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;
  _cleanup_policy_ struct vv_policy_rec *p = NULL;

  req = vv_api_parse_body (r, "the request", no_keys, true);
  if (req == NULL || (p = get_policy (r)) == NULL)
    return -1;
  if (vv_catalog_policy_set_status (r->ctx->engine->catalog, p->name, status,
                                    NULL) == -1)
    return -1;
  wake_scheduler (r);
  return answer_policy (r, p->name, 200, ret);
}

int
vv_api_policy_pause (struct vv_api_request *r, json_object **ret)
{
  return set_status (r, "paused", ret);
}

int
vv_api_policy_resume (struct vv_api_request *r, json_object **ret)
{
  return set_status (r, "active", ret);
}

/* Backups of an instance (uuid) that a policy made. */
static size_t
count_policy_backups (struct vv_api_request *r, const char *uuid,
                      const char *policy)
{
  struct vv_backup_rec **v = NULL;
  size_t n = 0, count = 0;

  if (vv_catalog_backup_list (r->ctx->engine->catalog, uuid, VV_OWNER_ANY,
                              &v, &n) == -1)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp (v[i]->domain_uuid, uuid) == 0
        && (policy == NULL
            || (v[i]->policy && strcmp (v[i]->policy, policy) == 0)))
      count++;
  vv_backup_recs_free (v, n);
  return count;
}

int
vv_api_policy_delete (struct vv_api_request *r, json_object **ret)
{
  _cleanup_policy_ struct vv_policy_rec *p = get_policy (r);
  struct vv_attachment_rec **av = NULL;
  size_t na = 0, kept = 0;
  json_object *o;

  if (p == NULL)
    return -1;
  if (vv_catalog_attachment_list (r->ctx->engine->catalog, p->name, &av,
                                  &na) == -1)
    return -1;
  for (size_t i = 0; i < na; i++)
    kept += count_policy_backups (r, av[i]->domain_uuid, p->name);
  vv_attachment_recs_free (av, na);
  if (vv_catalog_policy_delete (r->ctx->engine->catalog, p->name) == -1)
    return -1;
  wake_scheduler (r);
  _cleanup_free_ char *msg =
    vv_printf ("deleted policy '%s' and detached %zu instance%s; its %zu "
               "backup%s stay until deleted by hand", p->name, na,
               na == 1 ? "" : "s", kept, kept == 1 ? "" : "s");
  if ((o = json_object_new_object ()) == NULL || msg == NULL) {
    json_object_put (o);
    return oom ();
  }
  json_object_object_add (o, "deleted", json_object_new_string (p->name));
  json_object_object_add (o, "instances_detached",
                          json_object_new_int64 ((int64_t) na));
  json_object_object_add (o, "backups_kept",
                          json_object_new_int64 ((int64_t) kept));
  json_object_object_add (o, "message", json_object_new_string (msg));
  *ret = o;
  return 200;
}

/* The uuid and current name of a domain libvirt knows. */
static int
lookup_domain (struct vv_api_request *r, const char *domain, char *ret_uuid,
               char **ret_name)
{
  _cleanup_vir_conn_ virConnectPtr conn = NULL;
  _cleanup_vir_domain_ virDomainPtr dom = NULL;
  const char *name;

  conn = vv_libvirt_open (r->ctx->engine->libvirt_uri);
  if (conn == NULL)
    return -1;
  dom = vv_domain_lookup (conn, r->ctx->engine->libvirt_uri, domain);
  if (dom == NULL)
    return -1;
  if (virDomainGetUUIDString (dom, ret_uuid) == -1
      || (name = virDomainGetName (dom)) == NULL) {
    vv_error ("domain '%s': %s", domain, vv_libvirt_error ());
    return -1;
  }
  *ret_name = vv_strdup (name);
  return *ret_name ? 0 : -1;
}

int
vv_api_policy_attach (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the attach request";
  static const char *const keys[] = { "domain", NULL };
  _cleanup_json_ json_object *req = NULL;
  _cleanup_policy_ struct vv_policy_rec *p = NULL;
  _cleanup_free_ char *name = NULL;
  char uuid[VIR_UUID_STRING_BUFLEN];
  const char *domain = NULL;

  req = vv_api_parse_body (r, what, keys, false);
  if (req == NULL)
    return -1;
  if (vv_json_get_string (req, what, "domain", &domain) == -1)
    return -1;
  if (domain == NULL || domain[0] == '\0'
      || strlen (domain) > VV_DOMAIN_NAME_MAX) {
    vv_error_code (VV_ERR_INVALID, "field 'domain' of %s is required: the "
                   "name or UUID of a domain", what);
    return -1;
  }
  if ((p = get_policy (r)) == NULL)
    return -1;
  /* Its backups run as the daemon, over every domain. */
  if (vv_api_require_admin (r, "attaching a domain to a policy") == -1)
    return -1;
  if (lookup_domain (r, domain, uuid, &name) == -1)
    return -1;
  vv_api_set_audit (r, NULL, name);
  if (vv_catalog_instance_upsert (r->ctx->engine->catalog, uuid, name,
                                  p->owner_uid) == -1
      || vv_catalog_policy_attach (r->ctx->engine->catalog, p->name, uuid,
                                   name) == -1)
    return -1;
  wake_scheduler (r);
  return answer_policy (r, p->name, 200, ret);
}

int
vv_api_instance_detach (struct vv_api_request *r, json_object **ret)
{
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;
  struct vv_attachment_rec *a;
  _cleanup_free_ char *policy = NULL, *msg = NULL;
  json_object *o;
  size_t kept;

  req = vv_api_parse_body (r, "the detach request", no_keys, true);
  if (req == NULL)
    return -1;
  a = vv_catalog_attachment_get (r->ctx->engine->catalog, r->param);
  if (a == NULL)
    return -1;
  _cleanup_policy_ struct vv_policy_rec *p =
    vv_catalog_policy_get (r->ctx->engine->catalog, a->policy,
                           r->owner_filter);
  if (p == NULL || vv_catalog_policy_detach (r->ctx->engine->catalog,
                                             a->domain_uuid, &policy) == -1) {
    vv_attachment_rec_free (a);
    return -1;
  }
  kept = count_policy_backups (r, a->domain_uuid, policy);
  wake_scheduler (r);
  msg = vv_printf ("detached '%s' from policy '%s'; its %zu backup%s of that "
                   "policy stay: they are deleted only by hand, or by the "
                   "retention of policy '%s' if the instance is attached to "
                   "it again", a->domain, policy, kept, kept == 1 ? "" : "s",
                   policy);
  o = json_object_new_object ();
  if (o == NULL || msg == NULL) {
    json_object_put (o);
    vv_attachment_rec_free (a);
    return oom ();
  }
  json_object_object_add (o, "domain", vv_json_string_or_null (a->domain));
  json_object_object_add (o, "domain_uuid",
                          vv_json_string_or_null (a->domain_uuid));
  json_object_object_add (o, "policy", json_object_new_string (policy));
  json_object_object_add (o, "backups_kept",
                          json_object_new_int64 ((int64_t) kept));
  json_object_object_add (o, "message", json_object_new_string (msg));
  vv_attachment_rec_free (a);
  *ret = o;
  return 200;
}

int
vv_api_policy_runs (struct vv_api_request *r, json_object **ret)
{
  static const char *const allowed[] = { "domain", "limit", NULL };
  _cleanup_policy_ struct vv_policy_rec *p = get_policy (r);
  _cleanup_free_ char *domain = NULL, *limit_s = NULL;
  struct vv_run_rec **v = NULL;
  size_t n = 0;
  unsigned limit = 0;
  json_object *a;

  if (p == NULL)
    return -1;
  if (vv_api_query_get (r, allowed, "domain", &domain) == -1
      || vv_api_query_get (r, allowed, "limit", &limit_s) == -1)
    return -1;
  if (limit_s && vv_parse_count ("limit", limit_s, 1, 10000, &limit) == -1)
    return -1;
  if (domain) {
    struct vv_attachment_rec *at =
      vv_catalog_attachment_get (r->ctx->engine->catalog, domain);
    /* Runs of an instance no longer attached: by uuid only. */
    if (at) {
      free (domain);
      domain = vv_strdup (at->domain_uuid);
      vv_attachment_rec_free (at);
      if (domain == NULL)
        return -1;
    }
  }
  if (vv_catalog_run_list (r->ctx->engine->catalog, p->name, domain, limit,
                           &v, &n) == -1)
    return -1;
  a = json_object_new_array ();
  for (size_t i = 0; a && i < n; i++) {
    json_object *o = json_object_new_object ();
    if (o == NULL)
      break;
    json_object_object_add (o, "id", json_object_new_int64 (v[i]->id));
    json_object_object_add (o, "policy", vv_json_string_or_null (v[i]->policy));
    json_object_object_add (o, "domain", vv_json_string_or_null (v[i]->domain));
    json_object_object_add (o, "domain_uuid",
                            vv_json_string_or_null (v[i]->domain_uuid));
    json_object_object_add (o, "scheduled_for",
                            vv_json_string_or_null (v[i]->scheduled_for));
    json_object_object_add (o, "started_at",
                            vv_json_string_or_null (v[i]->started_at));
    json_object_object_add (o, "finished_at",
                            vv_json_string_or_null (v[i]->finished_at));
    json_object_object_add (o, "kind", vv_json_string_or_null (v[i]->kind));
    json_object_object_add (o, "backup_id",
                            vv_json_string_or_null (v[i]->backup_id));
    json_object_object_add (o, "result", vv_json_string_or_null (v[i]->result));
    json_object_object_add (o, "message",
                            vv_json_string_or_null (v[i]->message));
    json_object_array_add (a, o);
  }
  vv_run_recs_free (v, n);
  if (a == NULL)
    return oom ();
  *ret = a;
  return 200;
}

/* ---- protection ---- */

static int
set_protected (struct vv_api_request *r, bool on, json_object **ret)
{
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;
  _cleanup_backup_rec_ struct vv_backup_rec *b = NULL;

  req = vv_api_parse_body (r, "the request", no_keys, true);
  if (req == NULL)
    return -1;
  b = vv_catalog_backup_get (r->ctx->engine->catalog, r->param,
                             r->owner_filter);
  if (b == NULL
      || vv_catalog_backup_set_protected (r->ctx->engine->catalog, b->id,
                                          on) == -1)
    return -1;
  vv_backup_rec_free (b);
  b = vv_catalog_backup_get (r->ctx->engine->catalog, r->param,
                             VV_OWNER_ANY);
  if (b == NULL)
    return -1;
  *ret = vv_api_backup_json (r, b, NULL);
  return *ret ? 200 : oom ();
}

int
vv_api_backup_protect (struct vv_api_request *r, json_object **ret)
{
  return set_protected (r, true, ret);
}

int
vv_api_backup_unprotect (struct vv_api_request *r, json_object **ret)
{
  return set_protected (r, false, ret);
}

/* ---- costs ---- */

struct vv_api_prices {
  struct vv_target_rec **v;
  size_t n;
};

void
vv_api_prices_free (struct vv_api_prices *p)
{
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->n; i++)
    vv_target_rec_free (p->v[i]);
  free (p->v);
  free (p);
}

struct vv_api_prices *
vv_api_prices_load (struct vv_api_request *r)
{
  struct vv_api_prices *p = calloc (1, sizeof *p);

  if (p == NULL)
    return NULL;
  if (vv_catalog_target_list (r->ctx->engine->catalog, &p->v, &p->n) == -1) {
    free (p);
    return NULL;
  }
  return p;
}

static double
price_of (const struct vv_api_prices *p, const char *target)
{
  for (size_t i = 0; p && target && i < p->n; i++)
    if (strcmp (p->v[i]->name, target) == 0)
      return p->v[i]->price_per_gb_month;
  return 0;
}

/* Rounded to a hundredth of a cent. */
static double
round4 (double d)
{
  return (double) (int64_t) (d * 10000 + 0.5) / 10000;
}

void
vv_api_add_costs (json_object *o, uint64_t bytes, double price)
{
  if (price <= 0) {
    json_object_object_add (o, "monthly_cost", NULL);
    json_object_object_add (o, "hourly_cost", NULL);
    return;
  }
  double monthly = (double) bytes / 1e9 * price;
  json_object_object_add (o, "monthly_cost",
                          vv_json_new_number (round4 (monthly)));
  json_object_object_add (o, "hourly_cost",
                          vv_json_new_number (round4 (monthly / 730 * 100)
                                              / 100));
}

json_object *
vv_api_backup_json (struct vv_api_request *r, const struct vv_backup_rec *b,
                    struct vv_api_prices *prices)
{
  json_object *o = vv_backup_to_json (b);
  struct vv_api_prices *own = NULL;

  if (o == NULL)
    return NULL;
  if (prices == NULL)
    prices = own = vv_api_prices_load (r);
  vv_api_add_costs (o, b->size_bytes, price_of (prices, b->target));
  vv_api_prices_free (own);
  return o;
}

/* ---- instances ---- */

int
vv_api_instance_list (struct vv_api_request *r, json_object **ret)
{
  struct vv_catalog *c = r->ctx->engine->catalog;
  struct vv_instance_rec **iv = NULL;
  struct vv_backup_rec **bv = NULL;
  struct vv_attachment_rec **av = NULL;
  size_t ni = 0, nb = 0, na = 0;
  struct vv_api_prices *prices = NULL;
  json_object *a = NULL;
  int rc = -1;

  if (vv_catalog_instance_list (c, r->owner_filter, &iv, &ni) == -1
      || vv_catalog_backup_list (c, NULL, r->owner_filter, &bv, &nb) == -1
      || vv_catalog_attachment_list (c, NULL, &av, &na) == -1
      || (prices = vv_api_prices_load (r)) == NULL)
    goto out;
  if ((a = json_object_new_array ()) == NULL)
    goto out;
  for (size_t i = 0; i < ni; i++) {
    json_object *o = json_object_new_object ();
    uint64_t bytes = 0;
    double monthly = 0;
    size_t count = 0;
    const char *policy = NULL;

    if (o == NULL)
      goto out;
    for (size_t j = 0; j < nb; j++)
      if (strcmp (bv[j]->domain_uuid, iv[i]->uuid) == 0) {
        count++;
        bytes += bv[j]->size_bytes;
        monthly += (double) bv[j]->size_bytes / 1e9
          * price_of (prices, bv[j]->target);
      }
    for (size_t j = 0; j < na; j++)
      if (strcmp (av[j]->domain_uuid, iv[i]->uuid) == 0)
        policy = av[j]->policy;
    json_object_object_add (o, "name", vv_json_string_or_null (iv[i]->name));
    json_object_object_add (o, "uuid", vv_json_string_or_null (iv[i]->uuid));
    json_object_object_add (o, "owner_uid",
                            json_object_new_int64 (iv[i]->owner_uid));
    json_object_object_add (o, "policy", vv_json_string_or_null (policy));
    json_object_object_add (o, "backups",
                            json_object_new_int64 ((int64_t) count));
    json_object_object_add (o, "size_bytes",
                            json_object_new_int64 ((int64_t) bytes));
    if (monthly > 0) {
      json_object_object_add (o, "monthly_cost",
                              vv_json_new_number (round4 (monthly)));
      json_object_object_add (o, "hourly_cost",
                              vv_json_new_number (round4 (monthly / 730 * 100)
                                                  / 100));
    }
    else {
      json_object_object_add (o, "monthly_cost", NULL);
      json_object_object_add (o, "hourly_cost", NULL);
    }
    json_object_array_add (a, o);
  }
  *ret = a;
  a = NULL;
  rc = 200;

 out:
  json_object_put (a);
  vv_instance_recs_free (iv, ni);
  vv_backup_recs_free (bv, nb);
  vv_attachment_recs_free (av, na);
  vv_api_prices_free (prices);
  return rc;
}

static int
by_position_desc (const void *a, const void *b)
{
  const struct vv_backup_rec *x = *(struct vv_backup_rec *const *) a;
  const struct vv_backup_rec *y = *(struct vv_backup_rec *const *) b;

  return x->chain_pos < y->chain_pos ? 1 : x->chain_pos > y->chain_pos ? -1
    : 0;
}

int
vv_api_instance_purge (struct vv_api_request *r, json_object **ret)
{
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;
  struct vv_backup_rec **v = NULL;
  size_t n = 0;
  json_object *ids, *o;
  int rc = -1;

  req = vv_api_parse_body (r, "the purge request", no_keys, true);
  if (req == NULL)
    return -1;
  if (vv_api_require_admin (r, "purging the backups of an instance") == -1)
    return -1;
  if (vv_catalog_backup_list (r->ctx->engine->catalog, r->param,
                              VV_OWNER_ANY, &v, &n) == -1)
    return -1;
  /* A name can have belonged to several domains over time (undefined,
   * then a new one defined under it): purging must never take another
   * instance's backups along.
   */
  for (size_t i = 1; i < n; i++)
    if (strcmp (v[i]->domain_uuid, v[0]->domain_uuid) != 0) {
      vv_error_code (VV_ERR_INVALID, "'%s' names more than one instance "
                     "(%s and %s); purge by UUID instead", r->param,
                     v[0]->domain_uuid, v[i]->domain_uuid);
      goto out;
    }
  for (size_t i = 0; i < n; i++)
    if (strcmp (v[i]->status, "pending") == 0
        || strcmp (v[i]->status, "running") == 0) {
      vv_error_code (VV_ERR_BUSY, "backup %s of '%s' is %s; wait for it or "
                     "cancel its job %s first", v[i]->id, v[i]->domain,
                     v[i]->status, v[i]->job_id ? v[i]->job_id : "");
      goto out;
    }
  /* Incrementals before what they are based on.  No backups: v is NULL,
   * which qsort must not be given even with n 0.
   */
  if (n > 1)
    qsort (v, n, sizeof *v, by_position_desc);
  ids = json_object_new_array ();
  o = json_object_new_object ();
  if (ids == NULL || o == NULL) {
    json_object_put (ids);
    json_object_put (o);
    oom ();
    goto out;
  }
  json_object_object_add (o, "domain", json_object_new_string (r->param));
  json_object_object_add (o, "deleted", ids);
  for (size_t i = 0; i < n; i++) {
    if (vv_backup_delete (r->ctx->engine, v[i]->id, VV_OWNER_ANY) == -1) {
      vv_error_prefix ("purged %zu of %zu backups, then: ",
                       json_object_array_length (ids), n);
      json_object_put (o);
      goto out;
    }
    json_object_array_add (ids, json_object_new_string (v[i]->id));
  }
  vv_api_set_audit (r, NULL, n ? "all backups deleted" : "no backups");
  *ret = o;
  rc = 200;

 out:
  vv_backup_recs_free (v, n);
  return rc;
}

/* ---- the test clock ---- */

static json_object *
clock_json (void)
{
  json_object *o = json_object_new_object ();
  char now[VV_TIME_MAX];

  if (o == NULL)
    return NULL;
  vv_now_utc (now);
  json_object_object_add (o, "now", json_object_new_string (now));
  json_object_object_add (o, "test_clock",
                          json_object_new_boolean (vv_clock_is_test ()));
  return o;
}

/* Durations of vv_parse_duration, and minutes ("20m") and seconds
 * ("90s"), which tests need to step over retries.
 */
static int
parse_advance (const char *s, int64_t *ret)
{
  size_t len = strlen (s);
  char unit = len ? s[len - 1] : 0;

  if ((unit == 'm' || unit == 's') && len > 1 && len < 12) {
    char num[16];
    unsigned v;
    snprintf (num, sizeof num, "%.*s", (int) len - 1, s);
    if (vv_parse_count ("advance", num, 1, 1000000000, &v) == -1)
      return -1;
    *ret = (int64_t) v * (unit == 'm' ? 60 : 1);
    return 0;
  }
  return vv_parse_duration ("advance", s, ret);
}

int
vv_api_clock_get (struct vv_api_request *r, json_object **ret)
{
  (void) r;
  *ret = clock_json ();
  return *ret ? 200 : oom ();
}

int
vv_api_clock_set (struct vv_api_request *r, json_object **ret)
{
  static const char what[] = "the clock request";
  static const char *const keys[] = { "set", "advance", NULL };
  _cleanup_json_ json_object *req = NULL;
  const char *set = NULL, *advance = NULL;
  time_t t;
  int64_t secs;

  req = vv_api_parse_body (r, what, keys, false);
  if (req == NULL)
    return -1;
  if (vv_json_get_string (req, what, "set", &set) == -1
      || vv_json_get_string (req, what, "advance", &advance) == -1)
    return -1;
  if ((set == NULL) == (advance == NULL)) {
    vv_error_code (VV_ERR_INVALID, "%s needs exactly one of 'set' (a time "
                   "such as \"2026-11-24T01:00:00Z\") and 'advance' (such as "
                   "\"1d\")", what);
    return -1;
  }
  if (vv_api_require_admin (r, "setting the clock") == -1)
    return -1;
  if (!vv_clock_is_test ()) {
    vv_error_code (VV_ERR_BUSY, "the clock is the system's: start virtvaultd "
                   "with --test-clock to move it");
    return -1;
  }
  vv_api_set_audit (r, "clock", set ? set : advance);
  if (set) {
    if (vv_parse_time_utc (set, &t) == -1) {
      vv_error_code (VV_ERR_INVALID, "set '%.64s': not a time such as "
                     "2026-11-24T01:00:00Z", set);
      return -1;
    }
    if (vv_clock_set (t) == -1)
      return -1;
  }
  else {
    if (parse_advance (advance, &secs) == -1
        || vv_clock_advance (secs) == -1)
      return -1;
  }
  /* Tests wait for the jobs that became due: they exist once we answer. */
  wake_scheduler (r);
  *ret = clock_json ();
  return *ret ? 200 : oom ();
}
