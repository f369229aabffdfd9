/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <stdlib.h>

#include "catalog/catalog-internal.h"
#include "util/error.h"
#include "util/strutil.h"

void
vv_instance_rec_free (struct vv_instance_rec *r)
{
  if (r == NULL)
    return;
  free (r->uuid);
  free (r->name);
  free (r->created_at);
  free (r);
}

#define INSTANCE_COLUMNS "uuid, name, owner_uid, created_at"

/* In the order of INSTANCE_COLUMNS. */
#define IN(kind, field) VV_CAT_COL (vv_instance_rec, kind, field)
static const struct vv_cat_col instance_cols[] = {
  IN (TEXT, uuid), IN (TEXT, name), IN (INT64, owner_uid),
  IN (TEXT, created_at),
};
#undef IN
VV_CAT_ROWTYPE (instance_row, vv_instance_rec, "an instance", instance_cols,
                NULL);
VV_CAT_DEFINE_RECS_FREE (vv_instance_rec, instance_row)

int
vv_catalog_instance_upsert (struct vv_catalog *c, const char *uuid,
                            const char *name, int64_t owner_uid)
{
  static const char what[] = "recording an instance";
  char now[VV_TIME_MAX];

  if (uuid == NULL || name == NULL) {
    vv_error_code (VV_ERR_INVALID, "an instance needs a uuid and a name");
    return -1;
  }
  vv_now_utc (now);

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  /* The first owner stays: a rename must not hand a VM to someone else. */
  if (vv_cat_prepare (c, what,
                      "INSERT INTO instances (uuid, name, owner_uid,"
                      " created_at) VALUES (?1, ?2, ?3, ?4)"
                      " ON CONFLICT (uuid) DO UPDATE SET name = excluded.name",
                      &s) == -1)
    return -1;
  if (vv_cat_bind_text (s, 1, uuid)
      || vv_cat_bind_text (s, 2, name)
      || vv_cat_bind_int64 (s, 3, owner_uid)
      || vv_cat_bind_text (s, 4, now))
    return vv_cat_bind_error (c, what);
  if (sqlite3_step (s) != SQLITE_DONE)
    return vv_cat_error (c, "recording instance '%s' (%s)", name, uuid);
  return 0;
}

static int
instance_not_found (const char *uuid)
{
  vv_error_code (VV_ERR_NOT_FOUND, "no instance with uuid '%s'", uuid);
  return -1;
}

struct vv_instance_rec *
vv_catalog_instance_get (struct vv_catalog *c, const char *uuid)
{
  if (uuid == NULL) {
    vv_error_code (VV_ERR_INVALID, "instance uuid is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  return vv_cat_get_row (c, &instance_row, "reading instance",
                         "SELECT " INSTANCE_COLUMNS " FROM instances"
                         " WHERE uuid = ?1",
                         uuid, VV_OWNER_ANY, instance_not_found);
}

int
vv_catalog_instance_list (struct vv_catalog *c, int64_t owner_filter,
                          struct vv_instance_rec ***ret, size_t *ret_n)
{
  static const char what[] = "listing instances";

  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT " INSTANCE_COLUMNS " FROM instances"
                      " WHERE ?1 = -1 OR owner_uid = ?1"
                      " ORDER BY name, uuid", &s) == -1)
    return -1;
  if (vv_cat_bind_int64 (s, 1, owner_filter))
    return vv_cat_bind_error (c, what);
  return vv_cat_collect (c, s, what, &instance_row, (void ***) ret, ret_n);
}
