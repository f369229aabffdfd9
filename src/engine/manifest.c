/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/engine-internal.h"
#include "engine/manifest.h"
#include "engine/offline.h"
#include "target/block-digests.h"
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
/* Only shown, never part of a path: libvirt's names may be long. */
#define DOMAIN_NAME_MAX 4096
/* Free texts, only shown (docs/storage-format.md). */
#define TOOL_MAX 256
#define REASON_MAX 4096
#define NOTES_MAX 16384
#define OWNER_NAME_MAX 256
/* /etc/machine-id: 128 bits as lowercase hex. */
#define HOST_ID_LEN 32
#define DOMAIN_XML_OBJECT "domain.xml"
#define MANIFEST_OBJECT "manifest.json"
/* The one hash block digests use in format 1. */
#define BLOCKS_HASH "sha256"
/* Objects and arrays in one manifest: one with 64 disks has 68.  json-c
 * spends some 800 bytes on each, so a 1 MiB document of "{}" would take
 * 270 MB to parse; the limit keeps that near 32 bytes per byte of text.
 */
#define CONTAINERS_MAX 1024
/* How much of a rejected value an error message shows. */
#define SHOWN_MAX 64

/* Length of the UTF-8 sequence at s (1 to 4), or 0 when it is not one:
 * no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static size_t
utf8_len (const unsigned char *s)
{
  size_t n, i;
  uint32_t c;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    n = 2, c = s[0] & 0x1f;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    n = 3, c = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    n = 4, c = s[0] & 0x07;
  else
    return 0;
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    c = (c << 6) | (s[i] & 0x3f);
  }
  if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff))
      || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  return n;
}

/* Control characters never belong in a text we show; a multi-line one
 * may hold tabs and newlines.
 */
static bool
is_bad_control (unsigned char c, bool multiline)
{
  if (multiline && (c == '\t' || c == '\n'))
    return false;
  return c < 0x20 || c == 0x7f;
}

/* s for an error message: at most SHOWN_MAX bytes, every byte that is not
 * printable ASCII as \xNN, so a hostile value can not flood or drive the
 * terminal that shows the error.  buf holds SHOWN_MAX * 4 + 4 bytes.
 */
static const char *
shown (const char *s, char *buf)
{
  static const char hex[] = "0123456789abcdef";
  size_t i, o = 0;

  for (i = 0; s[i] && i < SHOWN_MAX; i++) {
    unsigned char c = s[i];
    if (c >= 0x20 && c < 0x7f)
      buf[o++] = c;
    else {
      buf[o++] = '\\';
      buf[o++] = 'x';
      buf[o++] = hex[c >> 4];
      buf[o++] = hex[c & 15];
    }
  }
  if (s[i])
    buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
  buf[o] = '\0';
  return buf;
}
#define SHOWN_BUF (SHOWN_MAX * 4 + 4)

/* A copy of the text s that the reader accepts: bytes that are not UTF-8
 * and control characters become '?', and a text longer than max bytes is
 * cut (at a character) and ends in "...".
 */
static char *
clean_text (const char *s, size_t max, bool multiline)
{
  size_t len = strlen (s), i = 0, o = 0, n;
  char *r = malloc (len + 1);

  if (r == NULL) {
    vv_error_errno (ENOMEM, "building a manifest");
    return NULL;
  }
  while (s[i]) {
    n = utf8_len ((const unsigned char *) s + i);
    if (o + (n ? n : 1) > (len > max ? max - 3 : max))
      break;
    if (n == 0 || (n == 1 && is_bad_control (s[i], multiline))) {
      r[o++] = '?';
      i++;
      continue;
    }
    memcpy (r + o, s + i, n);
    o += n;
    i += n;
  }
  if (s[i])
    memcpy (r + o, "...", 3), o += 3;
  r[o] = '\0';
  return r;
}

static bool
is_lower_hex (const char *s, size_t len)
{
  size_t i;

  for (i = 0; s[i]; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return i == len;
}

static bool
is_sha256_hex (const char *s)
{
  return is_lower_hex (s, 64);
}

bool
vv_manifest_is_host_id (const char *s)
{
  return s && is_lower_hex (s, HOST_ID_LEN);
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

/* A text the reader limits (see clean_text); JSON null for NULL. */
static int
put_text (json_object *o, const char *key, const char *s, size_t max,
          bool multiline)
{
  _cleanup_free_ char *c = NULL;

  if (s == NULL) {
    if (json_object_object_add (o, key, NULL) != 0) {
      vv_error_errno (ENOMEM, "building a manifest");
      return -1;
    }
    return 0;
  }
  c = clean_text (s, max, multiline);
  return c ? put (o, key, json_object_new_string (c)) : -1;
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
  /* Optional (added with block digests): the sidecar of the image's
   * per-block digests, and how much of the image is metadata.
   */
  if (d->blocks_object) {
    json_object *bl = json_object_new_object ();

    if (put (o, "blocks", bl) == -1
        || put (bl, "object",
                json_object_new_string (relative_object (b,
                                                         d->blocks_object)))
           == -1
        || put (bl, "block_size", json_object_new_int64 (d->block_size)) == -1
        || put (bl, "hash", json_object_new_string (BLOCKS_HASH)) == -1
        || put (bl, "sha256", json_object_new_string (d->blocks_sha256)) == -1)
      return NULL;
  }
  if (d->metadata_bytes
      && put (o, "metadata_bytes",
              json_object_new_int64 ((int64_t) d->metadata_bytes)) == -1)
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
      || put_text (domain, "name", b->domain, DOMAIN_NAME_MAX, false) == -1
      || put (domain, "uuid", json_object_new_string (b->domain_uuid)) == -1)
    return NULL;

  if (put (o, "created_at", json_object_new_string (b->created_at)) == -1
      || put (o, "completed_at",
              json_object_new_string (b->completed_at)) == -1
      || put (o, "size_bytes",
              json_object_new_int64 ((int64_t) b->size_bytes)) == -1
      || put_text (o, "reason", b->reason, REASON_MAX, true) == -1
      || put_text (o, "notes", b->notes, NOTES_MAX, true) == -1
      || put (o, "owner_uid", json_object_new_int64 (b->owner_uid)) == -1)
    return NULL;
  /* Optional (added with offline backups), written only when true so
   * other manifests stay as they were; and when false but the notes hold
   * the offline note, which the reader takes for an older offline backup
   * where the field is absent (found by fuzz-manifest).
   */
  if ((b->offline
       || (b->notes && strstr (b->notes, VV_OFFLINE_NOTE) != NULL))
      && put (o, "offline", json_object_new_boolean (b->offline)) == -1)
    return NULL;
  /* Optional (added with block digests), informative only: who and
   * which host, in names that mean something on another host.
   */
  if (b->owner_name
      && put_text (o, "owner_name", b->owner_name, OWNER_NAME_MAX,
                   false) == -1)
    return NULL;
  if (b->host_id
      && put (o, "host_id", json_object_new_string (b->host_id)) == -1)
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
        || b->disks[i].sha256 == NULL || b->disks[i].object == NULL
        || (b->disks[i].blocks_object && b->disks[i].blocks_sha256 == NULL)) {
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

/* /etc/machine-id holds the id and a newline (machine-id(5)). */
static char *
read_machine_id (void)
{
  char buf[HOST_ID_LEN + 2];
  ssize_t n;
  int fd = open ("/etc/machine-id", O_RDONLY | O_CLOEXEC);

  if (fd == -1)
    return NULL;
  n = read (fd, buf, sizeof buf);
  close (fd);
  if (n < HOST_ID_LEN)
    return NULL;
  buf[HOST_ID_LEN] = '\0';
  if (!vv_manifest_is_host_id (buf))
    return NULL;
  return strdup (buf);
}

int
vv_manifest_set_origin (struct vv_backup_rec *b)
{
  struct passwd pw, *res = NULL;
  char buf[16384];

  free (b->owner_name);
  free (b->host_id);
  b->owner_name = b->host_id = NULL;
  if (b->owner_uid >= 0 && b->owner_uid <= UINT32_MAX
      && getpwuid_r ((uid_t) b->owner_uid, &pw, buf, sizeof buf, &res) == 0
      && res && res->pw_name[0]) {
    b->owner_name = clean_text (res->pw_name, OWNER_NAME_MAX, false);
    if (b->owner_name == NULL)
      return -1;
  }
  errno = 0;
  b->host_id = read_machine_id ();
  if (b->host_id == NULL && errno == ENOMEM) {
    vv_error_errno (ENOMEM, "building a manifest");
    return -1;
  }
  return 0;
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
  char buf[SHOWN_BUF];

  vv_error_code (VV_ERR_INVALID, "field '%s' of %s must be %s, not '%s'",
                 key, what, must, shown (value, buf));
  return -1;
}

/* Stores a copy of s in *ret. */
static int
copy (const char *s, char **ret)
{
  *ret = vv_strdup (s);
  return s && *ret == NULL ? -1 : 0;
}

/* A text shown to people: at most max bytes of UTF-8 without control
 * characters (tabs and newlines allowed when multiline).
 */
static int
check_text (const char *what, const char *key, const char *s, size_t max,
            bool multiline)
{
  size_t len = strlen (s), i, n;

  if (len > max) {
    vv_error_code (VV_ERR_INVALID, "field '%s' of %s is %zu bytes long; "
                   "the limit is %zu", key, what, len, max);
    return -1;
  }
  for (i = 0; i < len; i += n) {
    n = utf8_len ((const unsigned char *) s + i);
    if (n == 0)
      return bad_value (what, key, "UTF-8 text", s);
    if (n == 1 && is_bad_control (s[i], multiline))
      return bad_value (what, key, multiline ? "text without control "
                        "characters other than tab and newline"
                        : "text without control characters", s);
  }
  return 0;
}

/* An optional text: 0 when absent or null, else copied to *ret. */
static int
get_text (json_object *o, const char *what, const char *key, size_t max,
          char **ret)
{
  const char *s = NULL;
  int r = vv_json_get_string (o, what, key, &s);

  if (r <= 0)
    return r;
  if (check_text (what, key, s, max, true) == -1 || copy (s, ret) == -1)
    return -1;
  return 1;
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
  char canonical[VV_TIME_MAX];
  const char *s;
  time_t t;

  if (get_req_string (o, what, key, &s) == -1)
    return -1;
  if (vv_parse_time_utc (s, &t) == -1) {
    vv_error_prefix ("field '%s' of %s: ", key, what);
    return -1;
  }
  /* strptime also takes " 2026-1-2T3:4:5Z"; times are compared as text. */
  vv_format_time_utc (t, canonical);
  if (strcmp (s, canonical) != 0)
    return bad_value (what, key, "a UTC time like 2026-11-24T01:00:00Z", s);
  return copy (s, ret);
}

/* A name used as (part of) an object name on a target. */
static int
check_safe_name (const char *what, const char *key, const char *name,
                 size_t max)
{
  char buf[SHOWN_BUF];

  if (vv_check_name (key, name, max) == 0)
    return 0;
  vv_error_code (VV_ERR_INVALID,
                 "field '%s' of %s must be 1 to %zu letters, digits, '.', "
                 "'_' or '-', not starting with '.' or '-', not '%s'",
                 key, what, max, shown (name, buf));
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
  if (check_text (dwhat, "name", name, DOMAIN_NAME_MAX, false) == -1)
    return -1;
  if (!vv_is_uuid (uuid, strlen (uuid)))
    return bad_value (dwhat, "uuid", "a lowercase UUID", uuid);
  return copy (name, &b->domain) == -1 || copy (uuid, &b->domain_uuid) == -1
    ? -1 : 0;
}

/* "../<parent-id>/<object>": the same disk in the parent backup, beside
 * this one in the chain's directory; nothing else, so the name can not
 * lead anywhere else on the target or on the host.
 */
static int
check_backing (const char *what, const char *backing, const char *parent)
{
  size_t pl;

  if (parent == NULL) {
    vv_error_code (VV_ERR_INVALID, "%s has a backing file, but the backup "
                   "is a full one", what);
    return -1;
  }
  pl = strlen (parent);
  if (!vv_str_has_prefix (backing, "../")
      || strncmp (backing + 3, parent, pl) != 0 || backing[3 + pl] != '/')
    return bad_value (what, "backing", "'../<parent-id>/<object>' in the "
                      "parent backup", backing);
  return check_safe_name (what, "backing", backing + 4 + pl,
                          OBJECT_NAME_MAX);
}

/* The optional sidecar of block digests of a disk: its object becomes a
 * full name under the prefix, as the disk's own.
 */
static int
read_blocks (json_object *o, const char *what, struct vv_disk_rec *d,
             const char *prefix)
{
  _cleanup_free_ char *bwhat = NULL;
  json_object *bl = NULL;
  const char *object, *hash, *sha;
  uint64_t block_size;
  int r;

  r = get_object (o, what, "blocks", &bl);
  if (r <= 0)
    return r;
  bwhat = vv_printf ("'blocks' of %s", what);
  if (bwhat == NULL
      || get_req_string (bl, bwhat, "object", &object) == -1
      || check_safe_name (bwhat, "object", object, OBJECT_NAME_MAX) == -1
      || get_req_uint64 (bl, bwhat, "block_size", &block_size) == -1
      || get_req_string (bl, bwhat, "hash", &hash) == -1
      || get_req_string (bl, bwhat, "sha256", &sha) == -1)
    return -1;
  if (block_size > UINT32_MAX || !vv_block_size_valid (block_size)) {
    vv_error_code (VV_ERR_INVALID, "field 'block_size' of %s must be a "
                   "power of two from %" PRIu32 " to %" PRIu32 ", not %"
                   PRIu64, bwhat, VV_BLOCK_SIZE_MIN, VV_BLOCK_SIZE_MAX,
                   block_size);
    return -1;
  }
  if (strcmp (hash, BLOCKS_HASH) != 0)
    return bad_value (bwhat, "hash", "'" BLOCKS_HASH "'", hash);
  if (!is_sha256_hex (sha))
    return bad_value (bwhat, "sha256", "64 lowercase hex digits", sha);
  if (strcmp (object, MANIFEST_OBJECT) == 0
      || strcmp (object, DOMAIN_XML_OBJECT) == 0)
    return bad_value (bwhat, "object", "an object of its own", object);
  if (copy (sha, &d->blocks_sha256) == -1)
    return -1;
  d->block_size = (uint32_t) block_size;
  d->blocks_object = vv_printf ("%s%s", prefix, object);
  return d->blocks_object ? 0 : -1;
}

static int
read_disk (json_object *o, const char *what, struct vv_disk_rec *d,
           const char *prefix, const char *parent)
{
  const char *name, *format, *sha, *object, *backing = NULL;
  int r;

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
  if (backing && (check_backing (what, backing, parent) == -1
                  || copy (backing, &d->backing) == -1))
    return -1;
  if (copy (name, &d->name) == -1 || copy (format, &d->format) == -1
      || copy (sha, &d->sha256) == -1)
    return -1;
  r = vv_json_get_uint64 (o, what, "metadata_bytes", &d->metadata_bytes);
  if (r < 0)
    return -1;
  if (r == 1 && (d->metadata_bytes == 0
                 || d->metadata_bytes > d->stored_bytes)) {
    vv_error_code (VV_ERR_INVALID, "field 'metadata_bytes' of %s must be 1 "
                   "to stored_bytes (%" PRIu64 "), not %" PRIu64, what,
                   d->stored_bytes, d->metadata_bytes);
    return -1;
  }
  d->object = vv_printf ("%s%s", prefix, object);
  if (d->object == NULL || read_blocks (o, what, d, prefix) == -1)
    return -1;
  if (d->blocks_object && strcmp (d->blocks_object, d->object) == 0) {
    vv_error_code (VV_ERR_INVALID, "%s stores its image and its block "
                   "digests in the same object", what);
    return -1;
  }
  return 0;
}

static bool
same_object (const char *a, const char *b)
{
  return a && b && strcmp (a, b) == 0;
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
                   b->prefix, b->parent_id) == -1)
      return -1;
    for (j = 0; j < i; j++) {
      if (strcmp (b->disks[j].name, b->disks[i].name) == 0) {
        vv_error_code (VV_ERR_INVALID, "%s lists disk '%s' twice", what,
                       b->disks[i].name);
        return -1;
      }
      if (strcmp (b->disks[j].object, b->disks[i].object) == 0
          || same_object (b->disks[j].blocks_object, b->disks[i].object)
          || same_object (b->disks[j].object, b->disks[i].blocks_object)
          || same_object (b->disks[j].blocks_object,
                          b->disks[i].blocks_object)) {
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

  if (get_text (o, what, "reason", REASON_MAX, &b->reason) < 0
      || get_text (o, what, "notes", NOTES_MAX, &b->notes) < 0)
    return -1;
  /* The only checkpoint virtvault makes for a backup: a manifest must not
   * make a later delete remove, or an incremental start from, another.
   */
  s = NULL;
  r = vv_json_get_string (o, what, "checkpoint", &s);
  if (r < 0)
    return -1;
  if (r == 1) {
    _cleanup_free_ char *own = vv_printf (VV_CHECKPOINT_PREFIX "%s", b->id);
    if (own == NULL)
      return -1;
    if (strcmp (s, own) != 0) {
      _cleanup_free_ char *must = vv_printf ("null or '%s'", own);
      return must ? bad_value (what, "checkpoint", must, s) : -1;
    }
    if (copy (s, &b->checkpoint) == -1)
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
  if (b->offline && b->checkpoint) {
    vv_error_code (VV_ERR_INVALID, "%s is an offline backup but names the "
                   "checkpoint '%s'; an offline backup makes none", what,
                   b->checkpoint);
    return -1;
  }
  /* Informative only: never who owns the backup here. */
  s = NULL;
  r = vv_json_get_string (o, what, "owner_name", &s);
  if (r < 0)
    return -1;
  if (r == 1 && (check_text (what, "owner_name", s, OWNER_NAME_MAX, false)
                 == -1 || copy (s, &b->owner_name) == -1))
    return -1;
  s = NULL;
  r = vv_json_get_string (o, what, "host_id", &s);
  if (r < 0)
    return -1;
  if (r == 1) {
    if (!vv_manifest_is_host_id (s))
      return bad_value (what, "host_id", "32 lowercase hex digits (a "
                        "machine id)", s);
    if (copy (s, &b->host_id) == -1)
      return -1;
  }
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
      || check_text (what, "tool", tool, TOOL_MAX, false) == -1
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

/* '{' and '[' outside strings, counted before json-c builds the tree. */
static size_t
count_containers (const char *text, size_t len)
{
  bool in_string = false;
  size_t n = 0;

  for (size_t i = 0; i < len; i++) {
    if (in_string) {
      if (text[i] == '\\')
        i++;
      else if (text[i] == '"')
        in_string = false;
    }
    else if (text[i] == '"')
      in_string = true;
    else if (text[i] == '{' || text[i] == '[')
      n++;
  }
  return n;
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
  if (count_containers (text, len) > CONTAINERS_MAX) {
    vv_error_code (VV_ERR_INVALID, "%s holds more than %d JSON objects and "
                   "arrays; it is not a manifest", what, CONTAINERS_MAX);
    return NULL;
  }
  o = vv_json_parse (what, text, len);
  if (o == NULL)
    return NULL;
  return manifest_to_backup (o, what);
}
