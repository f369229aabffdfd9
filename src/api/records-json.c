/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "target/target.h"
#include "util/json.h"
#include "util/strutil.h"
#include "api/api-internal.h"

/* json_object_object_add takes ownership even of NULL (JSON null); a
 * failed allocation of a member is caught when the whole object is
 * serialised, which is the only thing done with these objects.
 */
static void
add (json_object *o, const char *key, json_object *v)
{
  json_object_object_add (o, key, v);
}

static json_object *
new_u64 (uint64_t v)
{
  /* Sizes beyond 2^63 do not exist on real disks. */
  return json_object_new_int64 (v > INT64_MAX ? INT64_MAX : (int64_t) v);
}

json_object *
vv_json_new_number (double d)
{
  char buf[64];

  if (!isfinite (d))
    d = 0;
  if (d > -1e15 && d < 1e15 && d == (double) (int64_t) d)
    return json_object_new_int64 ((int64_t) d);
  snprintf (buf, sizeof buf, "%.15g", d);
  return json_object_new_double_s (d, buf);
}

static json_object *
disk_to_json (const struct vv_disk_rec *d)
{
  json_object *o = json_object_new_object ();

  if (o == NULL)
    return NULL;
  add (o, "name", vv_json_string_or_null (d->name));
  add (o, "virtual_size", new_u64 (d->virtual_size));
  add (o, "stored_bytes", new_u64 (d->stored_bytes));
  add (o, "sha256", vv_json_string_or_null (d->sha256));
  add (o, "format", vv_json_string_or_null (d->format));
  add (o, "backing", vv_json_string_or_null (d->backing));
  add (o, "blocks_sha256", vv_json_string_or_null (d->blocks_sha256));
  add (o, "block_size", new_u64 (d->block_size));
  add (o, "metadata_bytes", new_u64 (d->metadata_bytes));
  return o;
}

json_object *
vv_backup_to_json (const struct vv_backup_rec *b)
{
  json_object *o = json_object_new_object ();
  json_object *disks;

  if (o == NULL)
    return NULL;
  add (o, "id", vv_json_string_or_null (b->id));
  add (o, "domain", vv_json_string_or_null (b->domain));
  add (o, "domain_uuid", vv_json_string_or_null (b->domain_uuid));
  add (o, "type", vv_json_string_or_null (b->type));
  add (o, "status", vv_json_string_or_null (b->status));
  add (o, "chain_id", vv_json_string_or_null (b->chain_id));
  add (o, "chain_pos", json_object_new_int64 (b->chain_pos));
  add (o, "parent_id", vv_json_string_or_null (b->parent_id));
  add (o, "created_at", vv_json_string_or_null (b->created_at));
  add (o, "completed_at", vv_json_string_or_null (b->completed_at));
  add (o, "size_bytes", new_u64 (b->size_bytes));
  add (o, "target", vv_json_string_or_null (b->target));
  add (o, "reason", vv_json_string_or_null (b->reason));
  add (o, "notes", vv_json_string_or_null (b->notes));
  add (o, "error", vv_json_string_or_null (b->error));
  add (o, "checkpoint", vv_json_string_or_null (b->checkpoint));
  add (o, "job_id", vv_json_string_or_null (b->job_id));
  add (o, "owner_uid", json_object_new_int64 (b->owner_uid));
  add (o, "origin", json_object_new_string (b->origin ? b->origin : "manual"));
  add (o, "policy", vv_json_string_or_null (b->policy));
  add (o, "protected", json_object_new_boolean (b->protected));
  add (o, "offline", json_object_new_boolean (b->offline));
  add (o, "domain_xml_sha256",
       vv_json_string_or_null (b->domain_xml_sha256));
  add (o, "cleanup", vv_json_string_or_null (b->cleanup));
  add (o, "corrupt", json_object_new_boolean (b->corrupt != NULL));
  add (o, "corrupt_reason", vv_json_string_or_null (b->corrupt));
  add (o, "verified_at", vv_json_string_or_null (b->verified_at));
  add (o, "verify_result", vv_json_string_or_null (b->verify_result));
  disks = json_object_new_array ();
  for (size_t i = 0; disks && i < b->n_disks; i++)
    json_object_array_add (disks, disk_to_json (&b->disks[i]));
  add (o, "disks", disks);
  return o;
}

json_object *
vv_chain_to_json (const struct vv_chain_rec *c)
{
  json_object *o = json_object_new_object ();

  if (o == NULL)
    return NULL;
  add (o, "id", vv_json_string_or_null (c->id));
  add (o, "domain", vv_json_string_or_null (c->domain));
  add (o, "domain_uuid", vv_json_string_or_null (c->domain_uuid));
  add (o, "target", vv_json_string_or_null (c->target));
  add (o, "created_at", vv_json_string_or_null (c->created_at));
  add (o, "full_id", vv_json_string_or_null (c->full_id));
  add (o, "last_id", vv_json_string_or_null (c->last_id));
  add (o, "length", json_object_new_int64 (c->length));
  add (o, "backups", new_u64 (c->n_backups));
  add (o, "completed", new_u64 (c->n_completed));
  add (o, "size_bytes", new_u64 (c->size_bytes));
  add (o, "owner_uid", json_object_new_int64 (c->owner_uid));
  return o;
}

json_object *
vv_job_to_json (const struct vv_job_rec *j)
{
  json_object *o = json_object_new_object ();

  if (o == NULL)
    return NULL;
  add (o, "id", vv_json_string_or_null (j->id));
  add (o, "kind", vv_json_string_or_null (j->kind));
  add (o, "status", vv_json_string_or_null (j->status));
  add (o, "domain", vv_json_string_or_null (j->domain));
  add (o, "domain_uuid", vv_json_string_or_null (j->domain_uuid));
  add (o, "backup_id", vv_json_string_or_null (j->backup_id));
  add (o, "bytes_done", new_u64 (j->bytes_done));
  add (o, "bytes_total", new_u64 (j->bytes_total));
  add (o, "error", vv_json_string_or_null (j->error));
  add (o, "created_at", vv_json_string_or_null (j->created_at));
  add (o, "started_at", vv_json_string_or_null (j->started_at));
  add (o, "finished_at", vv_json_string_or_null (j->finished_at));
  add (o, "owner_uid", json_object_new_int64 (j->owner_uid));
  add (o, "notes", vv_json_string_or_null (j->notes));
  return o;
}

/* Values of the plugin's secret parameters print as "***"
 * (virtvault-plugin.h); so does anything that is not a key=value string.
 */
static void
mask_secret_params (const char *url, json_object *params)
{
  size_t n = json_object_array_length (params);

  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx (params, i);
    const char *v = json_object_get_string (e);
    const char *eq = v ? strchr (v, '=') : NULL;
    char *masked;

    if (!json_object_is_type (e, json_type_string) || eq == NULL)
      masked = strdup ("***");
    else if (vv_target_param_is_secret (url, v))
      masked = vv_printf ("%.*s=***", (int) (eq - v), v);
    else
      continue;
    json_object_array_put_idx (params, i,
                               masked ? json_object_new_string (masked)
                               : NULL);
    free (masked);
  }
}

json_object *
vv_target_to_json (const struct vv_target_rec *t, const char *default_name)
{
  json_object *o = json_object_new_object ();
  json_object *params = NULL;

  if (o == NULL)
    return NULL;
  /* The catalog keeps params as the JSON array text it was given. */
  if (t->params && t->params[0]) {
    params = json_tokener_parse (t->params);
    if (params && !json_object_is_type (params, json_type_array)) {
      json_object_put (params);
      params = NULL;
    }
  }
  if (params == NULL)
    params = json_object_new_array ();
  else
    mask_secret_params (t->url, params);
  add (o, "name", vv_json_string_or_null (t->name));
  add (o, "url", vv_json_string_or_null (t->url));
  add (o, "params", params);
  add (o, "price_per_gb_month", vv_json_new_number (t->price_per_gb_month));
  add (o, "created_at", vv_json_string_or_null (t->created_at));
  add (o, "backups", json_object_new_int64 (t->backups));
  add (o, "stored_bytes", json_object_new_int64 ((int64_t) t->stored_bytes));
  add (o, "default", json_object_new_boolean
       (default_name && t->name && strcmp (default_name, t->name) == 0));
  return o;
}
