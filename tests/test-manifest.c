/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Manifests: write -> read round trips, and data-driven cases.
 *
 * Each tests/data/manifests/<case>.json is read as "manifest <case>"; the
 * sibling <case>.expect holds a fragment of the error message, or "ok"
 * followed by one line per disk with the names the reader gave it
 * ("disks[0] vda object=<uuid>/<chain>/<id>/vda.qcow2 backing=null"):
 * the names used on the target, compared exactly.
 * VIRTVAULT_REGENERATE=1 rewrites every .expect with what the code says
 * now (then review the diff before committing it).
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "engine/manifest.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strutil.h"

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n  last error: %s\n",  \
               __FILE__, __LINE__, #cond, vv_get_error ());             \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

/* At least this many data cases must be found: catches a wrong data dir. */
#define MIN_CASES 10

static bool
str_same (const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a && b && strcmp (a, b) == 0);
}

/* Field by field; names the first difference. */
static bool
backup_equal (const struct vv_backup_rec *a, const struct vv_backup_rec *b)
{
#define SAME_STR(f)                                                     \
  if (!str_same (a->f, b->f)) {                                         \
    fprintf (stderr, "field %s differs: '%s' vs '%s'\n", #f,            \
             a->f ? a->f : "(null)", b->f ? b->f : "(null)");           \
    return false;                                                       \
  }
#define SAME_NUM(f)                                                     \
  if (a->f != b->f) {                                                   \
    fprintf (stderr, "field %s differs\n", #f);                         \
    return false;                                                       \
  }
  SAME_STR (id); SAME_STR (domain); SAME_STR (domain_uuid); SAME_STR (type);
  SAME_STR (status); SAME_STR (chain_id); SAME_STR (parent_id);
  SAME_STR (created_at); SAME_STR (completed_at); SAME_STR (target);
  SAME_STR (reason); SAME_STR (notes); SAME_STR (error);
  SAME_STR (checkpoint); SAME_STR (prefix); SAME_STR (job_id);
  SAME_STR (domain_xml_sha256); SAME_STR (owner_name); SAME_STR (host_id);
  SAME_NUM (size_bytes); SAME_NUM (owner_uid); SAME_NUM (n_disks);
  SAME_NUM (offline);
  for (size_t i = 0; i < a->n_disks; i++) {
    SAME_STR (disks[i].name); SAME_STR (disks[i].sha256);
    SAME_STR (disks[i].format); SAME_STR (disks[i].object);
    SAME_STR (disks[i].backing);
    SAME_STR (disks[i].blocks_object); SAME_STR (disks[i].blocks_sha256);
    SAME_NUM (disks[i].virtual_size); SAME_NUM (disks[i].stored_bytes);
    SAME_NUM (disks[i].block_size); SAME_NUM (disks[i].metadata_bytes);
  }
  return true;
#undef SAME_STR
#undef SAME_NUM
}

#define UUID "0b3e2f4c-9d1a-4c47-8f3e-6a1b2c3d4e5f"
#define PREFIX UUID "/ch-7b1e22c0a9f3/bk-3f9a0c21d4e5/"
#define XML_SHA "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

/* A manifest written before the "offline" field: its notes tell. */
static void
test_offline_fallback (const struct vv_backup_rec *offline)
{
  struct vv_backup_rec old = *offline;
  struct vv_backup_rec *r;
  char *text;

  old.offline = false;
  text = vv_manifest_write (&old);
  CHECK (text);
  /* The writer says "offline": false where the notes would mislead the
   * reader; a manifest from before the field had none.
   */
  {
    static const char field[] = "\"offline\": false,";
    char *f = strstr (text, field);
    CHECK (f);
    memmove (f, f + strlen (field), strlen (f + strlen (field)) + 1);
  }
  CHECK (strstr (text, "\"offline\"") == NULL);
  r = vv_manifest_read ("manifest old", text, strlen (text));
  CHECK (r && r->offline);
  vv_backup_rec_free (r);
  free (text);
  old.notes = (char *) "skipped hdc: cdrom";
  text = vv_manifest_write (&old);
  CHECK (text);
  r = vv_manifest_read ("manifest old", text, strlen (text));
  CHECK (r && !r->offline);
  vv_backup_rec_free (r);
  free (text);
}

static void
test_round_trip (void)
{
  struct vv_disk_rec disks[] = {
    { .name = (char *) "vda", .virtual_size = 4294967296ULL,
      .stored_bytes = 1610678272ULL, .format = (char *) "qcow2",
      .sha256 = (char *) "9f86d081884c7d659a2feaa0c55ad015"
        "a3bf4f1b2b0b822cd15d6c15b0f00a08",
      .object = (char *) PREFIX "vda.qcow2" },
    { .name = (char *) "vdb", .virtual_size = 1073741824ULL,
      .stored_bytes = 0, .format = (char *) "qcow2",
      .sha256 = (char *) "e3b0c44298fc1c149afbf4c8996fb924"
        "27ae41e4649b934ca495991b7852b855",
      .object = (char *) PREFIX "vdb.qcow2" },
  };
  /* What the reader gives back: a completed backup of no target. */
  struct vv_backup_rec b = {
    .id = (char *) "bk-3f9a0c21d4e5", .domain = (char *) "web01",
    .domain_uuid = (char *) UUID, .type = (char *) "full",
    .status = (char *) "completed", .chain_id = (char *) "ch-7b1e22c0a9f3",
    .created_at = (char *) "2026-11-23T15:52:35Z",
    .completed_at = (char *) "2026-11-23T15:54:02Z",
    .size_bytes = 1610678272ULL,
    .reason = (char *) "no completed backup of \"web01\" to build on",
    .notes = (char *) "skipped hdc: cdrom\nskipped vdc: shareable",
    .checkpoint = (char *) "virtvault-bk-3f9a0c21d4e5",
    .prefix = (char *) PREFIX, .owner_uid = 1000,
    .n_disks = 2, .disks = disks,
    .domain_xml_sha256 = (char *) XML_SHA,
  };
  struct vv_backup_rec inc = b;
  struct vv_backup_rec *r;
  char *text;

  text = vv_manifest_write (&b);
  CHECK (text);
  CHECK (vv_str_has_suffix (text, "}\n"));
  CHECK (strstr (text, "\"format_version\": 1"));
  CHECK (strstr (text, "\"tool\": \"virtvault " PACKAGE_VERSION "\""));
  /* Objects are stored relative to the backup's own prefix. */
  CHECK (strstr (text, "\"object\": \"vda.qcow2\""));
  CHECK (strstr (text, "\"object\": \"domain.xml\""));
  CHECK (strstr (text, "\"sha256\": \"" XML_SHA "\""));
  CHECK (strstr (text, PREFIX) == NULL);
  CHECK (strstr (text, "\"offline\"") == NULL);
  r = vv_manifest_read ("manifest round-trip", text, strlen (text));
  CHECK (r);
  CHECK (backup_equal (&b, r));
  vv_backup_rec_free (r);
  free (text);

  /* An incremental without the optional fields; objects already relative
   * are written as they are.
   */
  inc.id = (char *) "bk-0000000000b2";
  inc.type = (char *) "incremental";
  inc.parent_id = (char *) "bk-3f9a0c21d4e5";
  inc.reason = inc.notes = inc.checkpoint = NULL;
  /* A backup made before the digest was recorded: none written. */
  inc.domain_xml_sha256 = NULL;
  inc.owner_uid = 0;
  inc.prefix = (char *) UUID "/ch-7b1e22c0a9f3/bk-0000000000b2/";
  inc.n_disks = 1;
  inc.disks = (struct vv_disk_rec[]) { disks[0] };
  inc.disks[0].object = (char *) "vda.qcow2";
  inc.disks[0].backing = (char *) "../bk-3f9a0c21d4e5/vda.qcow2";
  text = vv_manifest_write (&inc);
  CHECK (text);
  CHECK (strstr (text, "\"parent_id\": \"bk-3f9a0c21d4e5\""));
  CHECK (strstr (text, "\"notes\": null"));
  CHECK (strstr (text, XML_SHA) == NULL);
  CHECK (strstr (text, "\"backing\": \"../bk-3f9a0c21d4e5/vda.qcow2\""));
  r = vv_manifest_read ("manifest round-trip", text, strlen (text));
  CHECK (r);
  inc.disks[0].object =
    (char *) UUID "/ch-7b1e22c0a9f3/bk-0000000000b2/vda.qcow2";
  CHECK (backup_equal (&inc, r));
  vv_backup_rec_free (r);
  free (text);

  /* An offline point: no checkpoint, and the flag survives a rebuild of
   * the catalog from the target.
   */
  inc.offline = true;
  inc.notes = (char *) "offline backup (domain shut off)";
  inc.disks[0].object = (char *) "vda.qcow2";
  text = vv_manifest_write (&inc);
  CHECK (text);
  CHECK (strstr (text, "\"offline\": true"));
  r = vv_manifest_read ("manifest round-trip", text, strlen (text));
  CHECK (r && r->offline);
  inc.disks[0].object =
    (char *) UUID "/ch-7b1e22c0a9f3/bk-0000000000b2/vda.qcow2";
  CHECK (backup_equal (&inc, r));
  vv_backup_rec_free (r);
  free (text);
  test_offline_fallback (&inc);
  inc.offline = false;
  inc.notes = NULL;

  /* The writer refuses what no reader would accept. */
  inc.completed_at = NULL;
  CHECK (vv_manifest_write (&inc) == NULL);
  CHECK (strstr (vv_get_error (), "not complete"));
  inc.completed_at = b.completed_at;
  inc.disks[0].sha256 = (char *) "not-a-digest";
  CHECK (vv_manifest_write (&inc) == NULL);
  CHECK (vv_get_error_code () == VV_ERR_INVALID);
  CHECK (strstr (vv_get_error (), "refusing to write the manifest of "
                 "backup 'bk-0000000000b2': field 'sha256'"));
  inc.disks[0].sha256 = disks[0].sha256;
  inc.n_disks = 0;
  CHECK (vv_manifest_write (&inc) == NULL);
  CHECK (strstr (vv_get_error (), "must list 1 to"));
  CHECK (vv_manifest_write (NULL) == NULL);
}

/* The fields added with block digests: a sidecar named relative to the
 * prefix, metadata_bytes, the owner's name and host id; none written
 * where the record has none.
 */
static void
test_block_fields (void)
{
  struct vv_disk_rec disk = {
    .name = (char *) "vda", .virtual_size = 1073741824ULL,
    .stored_bytes = 10616832, .format = (char *) "qcow2",
    .sha256 = (char *) "9f86d081884c7d659a2feaa0c55ad015"
      "a3bf4f1b2b0b822cd15d6c15b0f00a08",
    .object = (char *) PREFIX "vda.qcow2",
    .blocks_object = (char *) PREFIX "vda.blocks",
    .blocks_sha256 = (char *) "5891b5b522d5df086d0ff0b110fbd9d2"
      "1bb4fc7163af34d08286a2e846f6be03",
    .block_size = 262144, .metadata_bytes = 393216,
  };
  struct vv_backup_rec b = {
    .id = (char *) "bk-3f9a0c21d4e5", .domain = (char *) "web01",
    .domain_uuid = (char *) UUID, .type = (char *) "full",
    .status = (char *) "completed", .chain_id = (char *) "ch-7b1e22c0a9f3",
    .created_at = (char *) "2026-11-23T15:52:35Z",
    .completed_at = (char *) "2026-11-23T15:54:02Z",
    .size_bytes = 10640000, .prefix = (char *) PREFIX, .owner_uid = 1000,
    .n_disks = 1, .disks = &disk,
    .owner_name = (char *) "alice",
    .host_id = (char *) "3d1219c7c4c5404aaa1f6d2a48adfda4",
  };
  struct vv_backup_rec *r;
  char *text;

  text = vv_manifest_write (&b);
  CHECK (text);
  CHECK (strstr (text, "\"blocks\": {"));
  CHECK (strstr (text, "\"object\": \"vda.blocks\""));
  CHECK (strstr (text, "\"block_size\": 262144"));
  CHECK (strstr (text, "\"hash\": \"sha256\""));
  CHECK (strstr (text, "\"sha256\": \"5891b5b522d5df08"));
  CHECK (strstr (text, "\"metadata_bytes\": 393216"));
  CHECK (strstr (text, "\"owner_name\": \"alice\""));
  CHECK (strstr (text, "\"host_id\": \"3d1219c7c4c5404aaa1f6d2a48adfda4\""));
  CHECK (strstr (text, PREFIX) == NULL);
  r = vv_manifest_read ("manifest blocks", text, strlen (text));
  CHECK (r && backup_equal (&b, r));
  vv_backup_rec_free (r);
  free (text);

  /* An owner's name the reader would refuse is made readable. */
  b.owner_name = (char *) "al\tice";
  text = vv_manifest_write (&b);
  CHECK (text && strstr (text, "\"owner_name\": \"al?ice\""));
  free (text);

  /* None of them: none written, none read. */
  disk.blocks_object = disk.blocks_sha256 = NULL;
  disk.block_size = 0;
  disk.metadata_bytes = 0;
  b.owner_name = b.host_id = NULL;
  text = vv_manifest_write (&b);
  CHECK (text);
  CHECK (strstr (text, "blocks") == NULL && strstr (text, "metadata") == NULL
         && strstr (text, "owner_name") == NULL
         && strstr (text, "host_id") == NULL);
  r = vv_manifest_read ("manifest blocks", text, strlen (text));
  CHECK (r && backup_equal (&b, r) && r->disks[0].blocks_object == NULL
         && r->owner_name == NULL && r->host_id == NULL);
  vv_backup_rec_free (r);
  free (text);

  /* A host id that is not one is never published. */
  b.host_id = (char *) "not-a-machine-id";
  CHECK (vv_manifest_write (&b) == NULL);
  CHECK (strstr (vv_get_error (), "field 'host_id'"));
  CHECK (vv_manifest_is_host_id ("3d1219c7c4c5404aaa1f6d2a48adfda4")
         && !vv_manifest_is_host_id ("3D1219C7C4C5404AAA1F6D2A48ADFDA4")
         && !vv_manifest_is_host_id ("3d1219c7c4c5404aaa1f6d2a48adfda")
         && !vv_manifest_is_host_id (NULL));

  /* This host's origin: the name of uid 0 and /etc/machine-id. */
  {
    struct vv_backup_rec o = { .owner_uid = 0 };

    CHECK (vv_manifest_set_origin (&o) == 0);
    CHECK (o.owner_name && strcmp (o.owner_name, "root") == 0);
    CHECK (o.host_id == NULL || vv_manifest_is_host_id (o.host_id));
    free (o.owner_name);
    free (o.host_id);
  }
}

/* What the engine may hold but the reader refuses is made readable:
 * texts cut to their limit, bytes that are not UTF-8 and control
 * characters replaced.
 */
static void
test_writer_texts (void)
{
  struct vv_disk_rec disk = {
    .name = (char *) "vda", .format = (char *) "qcow2",
    .sha256 = (char *) "e3b0c44298fc1c149afbf4c8996fb924"
      "27ae41e4649b934ca495991b7852b855",
    .object = (char *) "vda.qcow2",
  };
  struct vv_backup_rec b = {
    .id = (char *) "bk-3f9a0c21d4e5", .domain = (char *) "web\x1b" "01",
    .domain_uuid = (char *) UUID, .type = (char *) "full",
    .chain_id = (char *) "ch-7b1e22c0a9f3",
    .created_at = (char *) "2026-11-23T15:52:35Z",
    .completed_at = (char *) "2026-11-23T15:54:02Z",
    .reason = (char *) "bad \xff byte\tand tab", .n_disks = 1,
    .disks = &disk,
  };
  size_t n = 20000;
  _cleanup_free_ char *notes = malloc (n + 1);
  struct vv_backup_rec *r;
  char *text;

  CHECK (notes);
  /* "é" (2 bytes) from byte 1 on: the limit falls inside one. */
  notes[0] = 'x';
  for (size_t i = 1; i + 1 < n; i += 2)
    memcpy (notes + i, "\xc3\xa9", 2);
  notes[n - 1] = '\0';
  b.notes = notes;
  text = vv_manifest_write (&b);
  CHECK (text);
  r = vv_manifest_read ("manifest texts", text, strlen (text));
  CHECK (r);
  CHECK (strcmp (r->domain, "web?01") == 0);
  CHECK (strcmp (r->reason, "bad ? byte\tand tab") == 0);
  CHECK (strlen (r->notes) <= 16384 && strlen (r->notes) > 16380);
  CHECK (vv_str_has_suffix (r->notes, "\xc3\xa9..."));
  vv_backup_rec_free (r);
  free (text);

  /* An online backup whose notes hold the offline note (how manifests
   * before the 'offline' field marked offline backups) reads back online
   * (found by fuzz-manifest: it read back offline).
   */
  b.notes = (char *) "x; offline backup (domain shut off)";
  b.offline = false;
  text = vv_manifest_write (&b);
  CHECK (text);
  r = vv_manifest_read ("manifest offline note", text, strlen (text));
  CHECK (r);
  CHECK (!r->offline);
  vv_backup_rec_free (r);
  free (text);
}

static void
test_limits (void)
{
  static const char nul[] = "{\"format_version\": 1}\0{}";
  size_t big = VV_MANIFEST_MAX + 1;
  char *text = malloc (big);

  CHECK (text);
  memset (text, ' ', big);
  CHECK (vv_manifest_read ("manifest big", text, big) == NULL);
  CHECK (strstr (vv_get_error (), "manifest big is 1048577 bytes; the "
                 "limit is 1048576"));
  free (text);
  CHECK (vv_manifest_read ("manifest nul", nul, sizeof nul - 1) == NULL);
  CHECK (strstr (vv_get_error (), "contains a NUL byte"));
  CHECK (vv_manifest_read ("manifest none", NULL, 0) == NULL);
  CHECK (strstr (vv_get_error (), "manifest none is empty"));
}

static char *
read_file (const char *path, size_t *ret_len)
{
  _cleanup_fclose_ FILE *f = fopen (path, "r");
  char *buf = NULL;
  size_t cap = 0, len = 0, n;

  if (f == NULL) {
    fprintf (stderr, "cannot open %s: %s\n", path, strerror (errno));
    exit (EXIT_FAILURE);
  }
  do {
    if (len + 4096 + 1 > cap) {
      cap = (cap + 4096) * 2;
      buf = realloc (buf, cap);
      CHECK (buf);
    }
    n = fread (buf + len, 1, cap - len - 1, f);
    len += n;
  } while (n > 0);
  CHECK (!ferror (f));
  buf[len] = '\0';
  *ret_len = len;
  return buf;
}

static void
write_file (const char *path, const char *text)
{
  FILE *f = fopen (path, "w");

  CHECK (f);
  CHECK (fputs (text, f) >= 0);
  CHECK (fclose (f) == 0);
}

static const char *
data_dir (char *buf, size_t len)
{
  const char *top = getenv ("abs_top_srcdir");
  const char *srcdir = getenv ("srcdir");

  if (top && *top)
    snprintf (buf, len, "%s/tests/data/manifests", top);
  else
    snprintf (buf, len, "%s/data/manifests", srcdir && *srcdir ? srcdir : ".");
  return buf;
}

static int
by_name (const struct dirent **a, const struct dirent **b)
{
  return strcmp ((*a)->d_name, (*b)->d_name);
}

static int
is_case (const struct dirent *d)
{
  return vv_str_has_suffix (d->d_name, ".json");
}

/* "ok" and a line per disk with the names a manifest steers; its block
 * digests and metadata length, and the owner's name and host id, where
 * it has them.
 */
static char *
describe (const struct vv_backup_rec *r)
{
  char *s = vv_strdup ("ok\n");

  for (size_t i = 0; s && i < r->n_disks; i++) {
    const struct vv_disk_rec *d = &r->disks[i];
    char *n = vv_printf ("%sdisks[%zu] %s object=%s backing=%s\n", s, i,
                         d->name, d->object, d->backing ? d->backing : "null");
    free (s);
    s = n;
    if (s && d->blocks_object) {
      n = vv_printf ("%s  blocks=%s block_size=%u sha256=%s\n", s,
                     d->blocks_object, d->block_size, d->blocks_sha256);
      free (s);
      s = n;
    }
    if (s && d->metadata_bytes) {
      n = vv_printf ("%s  metadata_bytes=%" PRIu64 "\n", s,
                     d->metadata_bytes);
      free (s);
      s = n;
    }
  }
  if (s && (r->owner_name || r->host_id)) {
    char *n = vv_printf ("%sowner_name=%s host_id=%s\n", s,
                         r->owner_name ? r->owner_name : "null",
                         r->host_id ? r->host_id : "null");
    free (s);
    s = n;
  }
  CHECK (s);
  return s;
}

/* Runs one case; returns true when its outcome matches .expect. */
static bool
run_case (const char *dir, const char *file, bool regenerate)
{
  _cleanup_free_ char *name = strndup (file, strlen (file) - 5);
  _cleanup_free_ char *json = vv_printf ("%s/%s", dir, file);
  _cleanup_free_ char *expect_path = vv_printf ("%s/%s.expect", dir, name);
  _cleanup_free_ char *what = vv_printf ("manifest %s", name);
  _cleanup_free_ char *text = NULL;
  _cleanup_free_ char *expect = NULL;
  _cleanup_free_ char *actual = NULL;
  struct vv_backup_rec *r;
  size_t len;

  CHECK (name && json && expect_path && what);
  text = read_file (json, &len);
  r = vv_manifest_read (what, text, len);
  actual = r ? describe (r) : vv_strdup (vv_get_error ());
  CHECK (actual);

  if (r) {
    /* What was accepted survives being written and read again. */
    _cleanup_free_ char *again = vv_manifest_write (r);
    struct vv_backup_rec *r2;
    CHECK (again);
    r2 = vv_manifest_read (what, again, strlen (again));
    CHECK (r2);
    CHECK (backup_equal (r, r2));
    vv_backup_rec_free (r2);
    vv_backup_rec_free (r);
  }

  len = strlen (actual);
  while (len > 0 && actual[len - 1] == '\n')
    actual[--len] = '\0';
  if (regenerate) {
    _cleanup_free_ char *line = vv_printf ("%s\n", actual);
    CHECK (line);
    write_file (expect_path, line);
    return true;
  }

  expect = read_file (expect_path, &len);
  while (len > 0 && expect[len - 1] == '\n')
    expect[--len] = '\0';
  if (vv_str_has_prefix (expect, "ok") ? strcmp (actual, expect) == 0
      : (len > 0 && !vv_str_has_prefix (actual, "ok\n")
         && strstr (actual, expect))) {
    printf ("PASS: %s\n", name);
    return true;
  }
  printf ("FAIL: %s\n  expected: %s\n  got:      %s\n", name, expect, actual);
  return false;
}

static void
test_data_cases (void)
{
  char dir[4096];
  struct dirent **ents;
  const char *regen = getenv ("VIRTVAULT_REGENERATE");
  bool regenerate = regen && strcmp (regen, "1") == 0;
  int n, i, failed = 0;

  data_dir (dir, sizeof dir);
  n = scandir (dir, &ents, is_case, by_name);
  if (n < 0) {
    fprintf (stderr, "cannot read %s: %s (set abs_top_srcdir or srcdir)\n",
             dir, strerror (errno));
    exit (EXIT_FAILURE);
  }
  for (i = 0; i < n; i++) {
    if (!run_case (dir, ents[i]->d_name, regenerate))
      failed++;
    free (ents[i]);
  }
  free (ents);
  if (n < MIN_CASES) {
    fprintf (stderr, "only %d cases in %s; expected at least %d\n", n, dir,
             MIN_CASES);
    exit (EXIT_FAILURE);
  }
  if (regenerate)
    printf ("regenerated %d .expect files in %s\n", n, dir);
  if (failed) {
    fprintf (stderr, "%d of %d manifest cases failed\n", failed, n);
    exit (EXIT_FAILURE);
  }
}

int
main (void)
{
  test_round_trip ();
  test_block_fields ();
  test_writer_texts ();
  test_limits ();
  test_data_cases ();
  printf ("test-manifest: all checks passed\n");
  return EXIT_SUCCESS;
}
