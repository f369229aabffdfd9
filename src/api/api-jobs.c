/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include "jobs/jobs.h"
#include "util/error.h"
#include "util/json.h"
#include "api/api-internal.h"

/* Most jobs listed (docs/api.md). */
#define JOB_LIST_MAX 100

/* The catalog has the counters as of the last flush (about once a
 * second); a live job has fresher ones in memory.
 */
static void
merge_progress (struct vv_api_request *r, struct vv_job_rec *j)
{
  uint64_t done, total;

  if (vv_jobs_progress (r->ctx->jobs, j->id, &done, &total) == 1) {
    j->bytes_done = done;
    j->bytes_total = total;
  }
}

json_object *
vv_api_job_json (struct vv_api_request *r, const char *id)
{
  _cleanup_job_rec_ struct vv_job_rec *j =
    vv_catalog_job_get (r->ctx->engine->catalog, id, r->owner_filter);
  json_object *o;

  if (j == NULL)
    return NULL;
  merge_progress (r, j);
  o = vv_job_to_json (j);
  if (o == NULL)
    vv_error ("out of memory");
  return o;
}

int
vv_api_job_list (struct vv_api_request *r, json_object **ret)
{
  struct vv_job_rec **v = NULL;
  size_t n = 0;
  json_object *a;

  if (vv_catalog_job_list (r->ctx->engine->catalog, r->owner_filter,
                           JOB_LIST_MAX, &v, &n) == -1)
    return -1;
  a = json_object_new_array ();
  for (size_t i = 0; a && i < n; i++) {
    merge_progress (r, v[i]);
    json_object_array_add (a, vv_job_to_json (v[i]));
  }
  vv_job_recs_free (v, n);
  if (a == NULL) {
    vv_error ("out of memory listing jobs");
    return -1;
  }
  *ret = a;
  return 200;
}

int
vv_api_job_get (struct vv_api_request *r, json_object **ret)
{
  *ret = vv_api_job_json (r, r->param);
  return *ret ? 200 : -1;
}

int
vv_api_job_cancel (struct vv_api_request *r, json_object **ret)
{
  static const char *const no_keys[] = { NULL };
  _cleanup_json_ json_object *req = NULL;

  req = vv_api_parse_body (r, "the cancel request", no_keys, true);
  if (req == NULL)
    return -1;
  if (vv_jobs_cancel (r->ctx->jobs, r->param, r->owner_filter) == -1)
    return -1;
  vv_api_log (r->ctx, "job %s: cancel requested by uid %u", r->param,
              (unsigned) r->uid);
  *ret = vv_api_job_json (r, r->param);
  return *ret ? 200 : -1;
}
