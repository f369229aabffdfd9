#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/manifest.h"
#include "engine/offline.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strutil.h"

/* The format is a contract with every virtvault that will read these
 * files, possibly years later: docs/storage-format.md.  Change it only by
 * adding optional fields, or by raising VV_MANIFEST_FORMAT_VERSION.
 */

#define DISK_NAME_MAX 64
#define OBJECT_NAME_MAX 255
#define CHECKPOINT_NAME_MAX 255
/* Only shown, never part of a path: libvirt's names may be long. */
#define DOMAIN_NAME_MAX 4096
#define DOMAIN_XML_OBJECT "domain.xml"

static bool
is_sha256_hex (const char *s)
{
  size_t i;

  for (i = 0; s[i]; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return i == 64;
}

/* ---- writing ---- */

static int
put (json_object *o, const char *key, json_object *v)
{
  if (v == NULL || json_object_object_add (o, key, v) != 0) {
    json_object_put (v);
    vv_error_errno (ENOMEM, "building a manifest");
    return -1;
  }
  return 0;
}

/* JSON null for NULL. */
static int
put_opt_string (json_object *o, const char *key, const char *s)
{
  if (s == NULL) {
    if (json_object_object_add (o, key, NULL) != 0) {
      vv_error_errno (ENOMEM, "building a manifest");
      return -1;
    }
    return 0;
  }
  return put (o, key, json_object_new_string (s));
}

/* Disk objects are stored relative to the backup's prefix, so a backup
 * copied to another target or path stays valid.
 */
static const char *
relative_object (const struct vv_backup_rec *b, const char *object)
{
  if (b->prefix && vv_str_has_prefix (object, b->prefix))
    return object + strlen (b->prefix);
  return object;
}

static json_object *
disk_to_json (const struct vv_backup_rec *b, const struct vv_disk_rec *d)
{
  _cleanup_json_ json_object *o = json_object_new_object ();

  if (o == NULL
      || put (o, "name", json_object_new_string (d->name)) == -1
      || put (o, "format", json_object_new_string (d->format)) == -1
      || put (o, "virtual_size",
              json_object_new_int64 ((int64_t) d->virtual_size)) == -1
      || put (o, "stored_bytes",
              json_object_new_int64 ((int64_t) d->stored_bytes)) == -1
      || put (o, "sha256", json_object_new_string (d->sha256)) == -1
      || put (o, "object",
              json_object_new_string (relative_object (b, d->object))) == -1)
    return NULL;
  /* Optional (added with incremental chains): the backing file named in
   * an overlay image's header.
   */
  if (d->backing
      && put (o, "backing", json_object_new_string (d->backing)) == -1)
    return NULL;
  return TAKE_PTR (o);
}

static json_object *
backup_to_json (const struct vv_backup_rec *b)
{
  _cleanup_json_ json_object *o = json_object_new_object ();
  json_object *domain, *disks, *xml;
  size_t i;

  if (o == NULL
      || put (o, "format_version",
              json_object_new_int (VV_MANIFEST_FORMAT_VERSION)) == -1
      || put (o, "tool", json_object_new_string ("virtvault "
                                                 PACKAGE_VERSION)) == -1
      || put (o, "id", json_object_new_string (b->id)) == -1
      || put (o, "type", json_object_new_string (b->type)) == -1
      || put (o, "chain_id", json_object_new_string (b->chain_id)) == -1
      || put_opt_string (o, "parent_id", b->parent_id) == -1
      || put_opt_string (o, "checkpoint", b->checkpoint) == -1)
    return NULL;

  domain = json_object_new_object ();
  if (put (o, "domain", domain) == -1
      || put (domain, "name", json_object_new_string (b->domain)) == -1
      || put (domain, "uuid", json_object_new_string (b->domain_uuid)) == -1)
    return NULL;

  if (put (o, "created_at", json_object_new_string (b->created_at)) == -1
      || put (o, "completed_at",
              json_object_new_string (b->completed_at)) == -1
      || put (o, "size_bytes",
              json_object_new_int64 ((int64_t) b->size_bytes)) == -1
      || put_opt_string (o, "reason", b->reason) == -1
      || put_opt_string (o, "notes", b->notes) == -1
      || put (o, "owner_uid", json_object_new_int64 (b->owner_uid)) == -1)
    return NULL;
  /* Optional (added with offline backups), written only when true so
   * other manifests stay as they were.
   */
  if (b->offline
      && put (o, "offline", json_object_new_boolean (true)) == -1)
    return NULL;

  disks = json_object_new_array ();
  if (put (o, "disks", disks) == -1)
    return NULL;
  for (i = 0; i < b->n_disks; i++) {
    json_object *d = disk_to_json (b, &b->disks[i]);
    if (d == NULL || json_object_array_add (disks, d) != 0) {
      json_object_put (d);
      vv_error_errno (ENOMEM, "building a manifest");
      return NULL;
    }
  }

  /* Every backup stores the domain XML next to its disks, with its
   * digest when the record has one (optional in the format).
   */
  xml = json_object_new_object ();
  if (put (o, "domain_xml", xml) == -1
      || put (xml, "object", json_object_new_string (DOMAIN_XML_OBJECT)) == -1
      || (b->domain_xml_sha256
          && put (xml, "sha256",
                  json_object_new_string (b->domain_xml_sha256)) == -1))
    return NULL;
  return TAKE_PTR (o);
}

char *
vv_manifest_write (const struct vv_backup_rec *b)
{
  _cleanup_json_ json_object *o = NULL;
  struct vv_backup_rec *check;
  const char *text;
  char *ret;
  size_t i;

  if (b == NULL || b->id == NULL || b->type == NULL || b->chain_id == NULL
      || b->domain == NULL || b->domain_uuid == NULL || b->created_at == NULL
      || b->completed_at == NULL) {
    vv_error_code (VV_ERR_INVALID,
                   "cannot write the manifest of backup '%s': it is not "
                   "complete", b && b->id ? b->id : "?");
    return NULL;
  }
  for (i = 0; i < b->n_disks; i++)
    if (b->disks[i].name == NULL || b->disks[i].format == NULL
        || b->disks[i].sha256 == NULL || b->disks[i].object == NULL) {
      vv_error_code (VV_ERR_INVALID,
                     "cannot write the manifest of backup '%s': disk %zu "
                     "is not complete", b->id, i);
      return NULL;
    }

  o = backup_to_json (b);
  if (o == NULL)
    return NULL;
  text = json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY
                                         | JSON_C_TO_STRING_SPACED
                                         | JSON_C_TO_STRING_NOSLASHESCAPE);
  if (text == NULL) {
    vv_error_errno (ENOMEM, "serialising the manifest of backup '%s'", b->id);
    return NULL;
  }
  ret = vv_printf ("%s\n", text);
  if (ret == NULL)
    return NULL;

  /* Never publish a commit point that no virtvault could read back. */
  check = vv_manifest_read ("the new manifest", ret, strlen (ret));
  if (check == NULL) {
    vv_error_prefix ("refusing to write the manifest of backup '%s': ",
                     b->id);
    free (ret);
    return NULL;
  }
  vv_backup_rec_free (check);
  return ret;
}

/* ---- reading ---- */

static int
missing (const char *what, const char *key)
{
  vv_error_code (VV_ERR_INVALID, "%s lacks required field '%s'", what, key);
  return -1;
}

static int
get_req_string (json_object *o, const char *what, const char *key,
                const char **ret)
{
  int r = vv_json_get_string (o, what, key, ret);

  if (r == 0)
    return missing (what, key);
  return r < 0 ? -1 : 0;
}

static int
get_req_uint64 (json_object *o, const char *what, const char *key,
                uint64_t *ret)
{
  int r = vv_json_get_uint64 (o, what, key, ret);

  if (r == 0)
    return missing (what, key);
  if (r < 0)
    return -1;
  if (*ret > INT64_MAX) {
    vv_error_code (VV_ERR_INVALID, "field '%s' of %s is too large", key, what);
    return -1;
  }
  return 0;
}

/* An object-valued field; 0 when absent or null. */
static int
get_object (json_object *o, const char *what, const char *key,
            json_object **ret)
{
  json_object *v;

  if (!json_object_object_get_ex (o, key, &v) || v == NULL)
    return 0;
  if (!json_object_is_type (v, json_type_object)) {
    vv_error_code (VV_ERR_INVALID, "field '%s' of %s must be an object",
                   key, what);
    return -1;
  }
  *ret = v;
  return 1;
}

static int
bad_value (const char *what, const char *key, const char *must,
           const char *value)
{
  vv_error_code (VV_ERR_INVALID, "field '%s' of %s must be %s, not '%s'",
                 key, what, must, value);
  return -1;
}

/* Stores a copy of s in *ret. */
static int
copy (const char *s, char **ret)
{
  *ret = vv_strdup (s);
  return s && *ret == NULL ? -1 : 0;
}

static int
check_format_version (json_object *o, const char *what)
{
  json_object *v;
  int64_t version;

  if (!json_object_object_get_ex (o, "format_version", &v) || v == NULL)
    return missing (what, "format_version");
  if (!json_object_is_type (v, json_type_int)) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'format_version' of %s must be a whole number",
                   what);
    return -1;
  }
  version = json_object_get_int64 (v);
  if (version > VV_MANIFEST_FORMAT_VERSION) {
    vv_error_code (VV_ERR_INVALID,
                   "%s has format_version %" PRId64 "; this virtvault reads "
                   "up to %d: upgrade virtvault", what, version,
                   VV_MANIFEST_FORMAT_VERSION);
    return -1;
  }
  if (version < 1) {
    vv_error_code (VV_ERR_INVALID,
                   "%s has format_version %" PRId64 ", which no virtvault "
                   "writes", what, version);
    return -1;
  }
  return 0;
}

static int
get_time (json_object *o, const char *what, const char *key, char **ret)
{
  const char *s;
  time_t t;

  if (get_req_string (o, what, key, &s) == -1)
    return -1;
  if (vv_parse_time_utc (s, &t) == -1) {
    vv_error_prefix ("field '%s' of %s: ", key, what);
    return -1;
  }
  return copy (s, ret);
}

/* A name used as (part of) an object name on a target. */
static int
check_safe_name (const char *what, const char *key, const char *name,
                 size_t max)
{
  if (vv_check_name (key, name, max) == 0)
    return 0;
  vv_error_code (VV_ERR_INVALID,
                 "field '%s' of %s must be 1 to %zu letters, digits, '.', "
                 "'_' or '-', not starting with '.' or '-', not '%s'",
                 key, what, max, name);
  return -1;
}

static int
read_domain (json_object *o, const char *what, struct vv_backup_rec *b)
{
  _cleanup_free_ char *dwhat = NULL;
  json_object *d = NULL;
  const char *name, *uuid;
  int r;

  r = get_object (o, what, "domain", &d);
  if (r == 0)
    return missing (what, "domain");
  if (r < 0)
    return -1;
  dwhat = vv_printf ("'domain' of %s", what);
  if (dwhat == NULL)
    return -1;
  if (get_req_string (d, dwhat, "name", &name) == -1
      || get_req_string (d, dwhat, "uuid", &uuid) == -1)
    return -1;
  if (name[0] == '\0' || strlen (name) > DOMAIN_NAME_MAX) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'name' of %s must be 1 to %d bytes long", dwhat,
                   DOMAIN_NAME_MAX);
    return -1;
  }
  if (!vv_is_uuid (uuid, strlen (uuid)))
    return bad_value (dwhat, "uuid", "a lowercase UUID", uuid);
  return copy (name, &b->domain) == -1 || copy (uuid, &b->domain_uuid) == -1
    ? -1 : 0;
}

static int
read_disk (json_object *o, const char *what, struct vv_disk_rec *d,
           const char *prefix)
{
  const char *name, *format, *sha, *object, *backing = NULL;

  if (!json_object_is_type (o, json_type_object)) {
    vv_error_code (VV_ERR_INVALID, "%s must be an object", what);
    return -1;
  }
  if (get_req_string (o, what, "name", &name) == -1
      || check_safe_name (what, "name", name, DISK_NAME_MAX) == -1
      || get_req_string (o, what, "format", &format) == -1
      || get_req_uint64 (o, what, "virtual_size", &d->virtual_size) == -1
      || get_req_uint64 (o, what, "stored_bytes", &d->stored_bytes) == -1
      || get_req_string (o, what, "sha256", &sha) == -1
      || get_req_string (o, what, "object", &object) == -1
      || check_safe_name (what, "object", object, OBJECT_NAME_MAX) == -1)
    return -1;
  /* Format 1 stores every disk as a qcow2 image. */
  if (strcmp (format, "qcow2") != 0)
    return bad_value (what, "format", "'qcow2'", format);
  if (!is_sha256_hex (sha))
    return bad_value (what, "sha256", "64 lowercase hex digits", sha);
  if (vv_json_get_string (o, what, "backing", &backing) == -1)
    return -1;
  if (backing) {
    /* "../bk-<12 hex>/<object>": the same disk in the parent backup. */
    const char *slash = strchr (backing + 3, '/');
    _cleanup_free_ char *id = NULL;

    if (strncmp (backing, "../", 3) != 0 || slash == NULL
        || (id = strndup (backing + 3, slash - backing - 3)) == NULL
        || !vv_is_id ("bk", id))
      return bad_value (what, "backing", "'../<parent-id>/<object>'",
                        backing);
    if (check_safe_name (what, "backing", slash + 1, OBJECT_NAME_MAX) == -1
        || copy (backing, &d->backing) == -1)
      return -1;
  }
  if (copy (name, &d->name) == -1 || copy (format, &d->format) == -1
      || copy (sha, &d->sha256) == -1)
    return -1;
  d->object = vv_printf ("%s%s", prefix, object);
  return d->object ? 0 : -1;
}

static int
read_disks (json_object *o, const char *what, struct vv_backup_rec *b)
{
  json_object *arr = NULL;
  size_t n, i, j;
  int r;

  r = vv_json_get_array (o, what, "disks", &arr);
  if (r == 0)
    return missing (what, "disks");
  if (r < 0)
    return -1;
  n = json_object_array_length (arr);
  if (n == 0 || n > VV_MAX_DISKS) {
    vv_error_code (VV_ERR_INVALID,
                   "field 'disks' of %s must list 1 to %d disks, not %zu",
                   what, VV_MAX_DISKS, n);
    return -1;
  }
  b->disks = calloc (n, sizeof *b->disks);
  if (b->disks == NULL) {
    vv_error_errno (errno, "reading %s", what);
    return -1;
  }
  for (i = 0; i < n; i++) {
    _cleanup_free_ char *dwhat = vv_printf ("disks[%zu] of %s", i, what);
    if (dwhat == NULL)
      return -1;
    b->n_disks = i + 1;
    if (read_disk (json_object_array_get_idx (arr, i), dwhat, &b->disks[i],
                   b->prefix) == -1)
      return -1;
    for (j = 0; j < i; j++) {
      if (strcmp (b->disks[j].name, b->disks[i].name) == 0) {
        vv_error_code (VV_ERR_INVALID, "%s lists disk '%s' twice", what,
                       b->disks[i].name);
        return -1;
      }
      if (strcmp (b->disks[j].object, b->disks[i].object) == 0) {
        vv_error_code (VV_ERR_INVALID,
                       "%s stores disks '%s' and '%s' in the same object",
                       what, b->disks[j].name, b->disks[i].name);
        return -1;
      }
    }
  }
  return 0;
}

/* The object name is checked so a damaged manifest is noticed (the
 * domain XML is found by its fixed name); the digest goes to the record.
 */
static int
check_domain_xml (json_object *o, const char *what, struct vv_backup_rec *b)
{
  _cleanup_free_ char *xwhat = NULL;
  json_object *x = NULL;
  const char *object, *sha;
  int r;

  r = get_object (o, what, "domain_xml", &x);
  if (r <= 0)
    return r;
  xwhat = vv_printf ("'domain_xml' of %s", what);
  if (xwhat == NULL
      || get_req_string (x, xwhat, "object", &object) == -1
      || check_safe_name (xwhat, "object", object, OBJECT_NAME_MAX) == -1)
    return -1;
  r = vv_json_get_string (x, xwhat, "sha256", &sha);
  if (r < 0)
    return -1;
  if (r == 1 && !is_sha256_hex (sha))
    return bad_value (xwhat, "sha256", "64 lowercase hex digits", sha);
  return r == 1 ? copy (sha, &b->domain_xml_sha256) : 0;
}

static int
read_optional (json_object *o, const char *what, struct vv_backup_rec *b)
{
  const char *s;
  uint64_t uid;
  int r;

  s = NULL;
  r = vv_json_get_string (o, what, "reason", &s);
  if (r < 0 || (r == 1 && copy (s, &b->reason) == -1))
    return -1;
  s = NULL;
  r = vv_json_get_string (o, what, "notes", &s);
  if (r < 0 || (r == 1 && copy (s, &b->notes) == -1))
    return -1;
  s = NULL;
  r = vv_json_get_string (o, what, "checkpoint", &s);
  if (r < 0)
    return -1;
  if (r == 1) {
    if (check_safe_name (what, "checkpoint", s, CHECKPOINT_NAME_MAX) == -1
        || copy (s, &b->checkpoint) == -1)
      return -1;
  }
  r = vv_json_get_uint64 (o, what, "owner_uid", &uid);
  if (r < 0)
    return -1;
  if (r == 1) {
    if (uid > UINT32_MAX) {
      vv_error_code (VV_ERR_INVALID,
                     "field 'owner_uid' of %s is not a user id", what);
      return -1;
    }
    b->owner_uid = (int64_t) uid;
  }
  r = vv_json_get_bool (o, what, "offline", &b->offline);
  if (r < 0)
    return -1;
  /* Written before the field: such backups said so only in their notes
   * (as catalog schema 4 reads older rows).
   */
  if (r == 0 && b->notes && strstr (b->notes, VV_OFFLINE_NOTE) != NULL)
    b->offline = true;
  return 0;
}

static struct vv_backup_rec *
manifest_to_backup (json_object *o, const char *what)
{
  struct vv_backup_rec *b;
  const char *tool, *id, *type, *chain, *parent = NULL;
  int r;

  if (!json_object_is_type (o, json_type_object)) {
    vv_error_code (VV_ERR_INVALID, "%s must be a JSON object", what);
    return NULL;
  }
  if (check_format_version (o, what) == -1
      || get_req_string (o, what, "tool", &tool) == -1
      || get_req_string (o, what, "id", &id) == -1
      || get_req_string (o, what, "type", &type) == -1
      || get_req_string (o, what, "chain_id", &chain) == -1)
    return NULL;
  if (!vv_is_id ("bk", id)) {
    bad_value (what, "id", "a backup id like bk-3f9a0c21d4e5", id);
    return NULL;
  }
  if (strcmp (type, "full") != 0 && strcmp (type, "incremental") != 0) {
    bad_value (what, "type", "'full' or 'incremental'", type);
    return NULL;
  }
  if (!vv_is_id ("ch", chain)) {
    bad_value (what, "chain_id", "a chain id like ch-3f9a0c21d4e5", chain);
    return NULL;
  }
  r = vv_json_get_string (o, what, "parent_id", &parent);
  if (r < 0)
    return NULL;
  if (strcmp (type, "full") == 0 && r == 1) {
    vv_error_code (VV_ERR_INVALID,
                   "%s is a full backup but names parent_id '%s'", what,
                   parent);
    return NULL;
  }
  if (strcmp (type, "incremental") == 0) {
    if (r == 0) {
      vv_error_code (VV_ERR_INVALID,
                     "%s is an incremental backup without a parent_id",
                     what);
      return NULL;
    }
    if (!vv_is_id ("bk", parent)) {
      bad_value (what, "parent_id", "a backup id like bk-3f9a0c21d4e5",
                 parent);
      return NULL;
    }
    if (strcmp (parent, id) == 0) {
      vv_error_code (VV_ERR_INVALID, "%s names itself as its parent", what);
      return NULL;
    }
  }

  b = calloc (1, sizeof *b);
  if (b == NULL) {
    vv_error_errno (errno, "reading %s", what);
    return NULL;
  }
  if (copy (id, &b->id) == -1 || copy (type, &b->type) == -1
      || copy (chain, &b->chain_id) == -1 || copy (parent, &b->parent_id) == -1
      || copy ("completed", &b->status) == -1
      || read_domain (o, what, b) == -1)
    goto fail;
  b->prefix = vv_printf ("%s/%s/%s/", b->domain_uuid, b->chain_id, b->id);
  if (b->prefix == NULL
      || get_time (o, what, "created_at", &b->created_at) == -1
      || get_time (o, what, "completed_at", &b->completed_at) == -1
      || get_req_uint64 (o, what, "size_bytes", &b->size_bytes) == -1
      || read_optional (o, what, b) == -1
      || read_disks (o, what, b) == -1
      || check_domain_xml (o, what, b) == -1)
    goto fail;
  return b;

 fail:
  vv_backup_rec_free (b);
  return NULL;
}

struct vv_backup_rec *
vv_manifest_read (const char *what, const char *text, size_t len)
{
  _cleanup_json_ json_object *o = NULL;

  if (what == NULL)
    what = "manifest";
  if (len > VV_MANIFEST_MAX) {
    vv_error_code (VV_ERR_INVALID, "%s is %zu bytes; the limit is %d",
                   what, len, VV_MANIFEST_MAX);
    return NULL;
  }
  /* json-c would stop at an embedded NUL and call the rest trailing data;
   * say what it is.
   */
  if (text == NULL)
    text = "", len = 0;
  if (memchr (text, '\0', len) != NULL) {
    vv_error_code (VV_ERR_INVALID, "%s contains a NUL byte; it is not a "
                   "manifest", what);
    return NULL;
  }
  o = vv_json_parse (what, text, len);
  if (o == NULL)
    return NULL;
  return manifest_to_backup (o, what);
}
