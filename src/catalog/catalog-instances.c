#include <config.h>

#include <errno.h>
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

struct vv_instance_rec *
vv_catalog_instance_get (struct vv_catalog *c, const char *uuid)
{
  static const char what[] = "reading an instance";
  struct vv_instance_rec *r;
  int rc;

  if (uuid == NULL) {
    vv_error_code (VV_ERR_INVALID, "instance uuid is missing");
    return NULL;
  }
  VV_LOCK_GUARD (&c->lock);
  _cleanup_stmt_ sqlite3_stmt *s = NULL;
  if (vv_cat_prepare (c, what,
                      "SELECT uuid, name, owner_uid, created_at"
                      " FROM instances WHERE uuid = ?1", &s) == -1)
    return NULL;
  if (vv_cat_bind_text (s, 1, uuid)) {
    vv_cat_bind_error (c, what);
    return NULL;
  }
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE) {
    vv_error_code (VV_ERR_NOT_FOUND, "no instance with uuid '%s'", uuid);
    return NULL;
  }
  if (rc != SQLITE_ROW) {
    vv_cat_error (c, "reading instance '%s'", uuid);
    return NULL;
  }
  r = calloc (1, sizeof *r);
  if (r == NULL) {
    vv_error_errno (errno, "%s", what);
    return NULL;
  }
  if (vv_cat_column_text (s, 0, &r->uuid) == -1
      || vv_cat_column_text (s, 1, &r->name) == -1
      || vv_cat_column_text (s, 3, &r->created_at) == -1) {
    vv_instance_rec_free (r);
    return NULL;
  }
  r->owner_uid = sqlite3_column_int64 (s, 2);
  return r;
}
