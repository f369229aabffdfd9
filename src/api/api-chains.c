/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>
/* GET /v1/chains?domain=, GET /v1/chains/{id}: a full backup and the
 * incrementals built on it.
 */
#include <string.h>

#include "engine/engine.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"
#include "api/api-internal.h"

int
vv_api_chain_list (struct vv_api_request *r, json_object **ret)
{
  _cleanup_free_ char *domain = NULL;
  struct vv_chain_rec **v = NULL;
  size_t n = 0;
  json_object *a;

  if (vv_api_query_domain (r, &domain) == -1)
    return -1;
  if (vv_catalog_chain_list (r->ctx->engine->catalog, domain,
                             r->owner_filter, &v, &n) == -1)
    return -1;
  a = json_object_new_array ();
  for (size_t i = 0; a && i < n; i++)
    json_object_array_add (a, vv_chain_to_json (v[i]));
  vv_chain_recs_free (v, n);
  if (a == NULL) {
    vv_error ("out of memory listing chains");
    return -1;
  }
  *ret = a;
  return 200;
}

/* The chain with its backups in chain order (full first). */
int
vv_api_chain_get (struct vv_api_request *r, json_object **ret)
{
  struct vv_chain_rec *c;
  struct vv_backup_rec **v = NULL;
  size_t n = 0;
  json_object *o, *a;

  c = vv_catalog_chain_get (r->ctx->engine->catalog, r->param,
                            r->owner_filter);
  if (c == NULL)
    return -1;
  if (vv_catalog_backup_list (r->ctx->engine->catalog, c->domain_uuid,
                              r->owner_filter, &v, &n) == -1) {
    vv_chain_rec_free (c);
    return -1;
  }
  o = vv_chain_to_json (c);
  a = json_object_new_array ();
  /* The list is newest first: walk it backwards. */
  for (size_t i = n; o && a && i-- > 0;)
    if (strcmp (v[i]->chain_id, c->id) == 0)
      json_object_array_add (a, vv_backup_to_json (v[i]));
  vv_backup_recs_free (v, n);
  vv_chain_rec_free (c);
  if (o == NULL || a == NULL) {
    json_object_put (o);
    json_object_put (a);
    vv_error ("out of memory showing a chain");
    return -1;
  }
  json_object_object_add (o, "backups", a);
  *ret = o;
  return 200;
}
