/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pure logic of the S3 plugin, without a server: part-size choice,
 * percent-encoding (canonical queries and keys), object-name checks,
 * parsing of listings and other answers (also hostile ones), and the
 * credentials file rules.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <virtvault-plugin.h>

#include "../plugins/s3/s3-util.h"
#include "../plugins/s3/s3-xml.h"

static int failures;

#define CHECK(cond) do {                                                \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
               #cond);                                                  \
      failures++;                                                       \
    }                                                                   \
  } while (0)

void
virtvault_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static void
test_part_size (void)
{
  const uint64_t MiB = S3_MIB, GiB = 1024 * MiB;

  CHECK (s3_choose_part_size (VIRTVAULT_SIZE_UNKNOWN, 16 * MiB) == 16 * MiB);
  CHECK (s3_choose_part_size (VIRTVAULT_SIZE_UNKNOWN, 1) == 5 * MiB);
  CHECK (s3_choose_part_size (0, 16 * MiB) == 16 * MiB);
  CHECK (s3_choose_part_size (100 * GiB, 16 * MiB) == 16 * MiB);
  /* 1 TiB / 10000 = 104.86 MiB -> 105 MiB */
  CHECK (s3_choose_part_size (1024 * GiB, 16 * MiB) == 105 * MiB);
  CHECK (s3_choose_part_size (1024 * GiB, 16 * MiB) * S3_MAX_PARTS >=
         1024 * GiB);
  CHECK (s3_choose_part_size (16 * MiB * S3_MAX_PARTS, 16 * MiB) == 16 * MiB);
  CHECK (s3_choose_part_size (16 * MiB * S3_MAX_PARTS + 1, 16 * MiB) ==
         17 * MiB);
  CHECK (s3_choose_part_size (S3_MAX_PART * S3_MAX_PARTS, 16 * MiB) ==
         S3_MAX_PART);
  errno = 0;
  CHECK (s3_choose_part_size (S3_MAX_PART * S3_MAX_PARTS + 1, 16 * MiB) == 0);
  CHECK (errno == EFBIG);
  CHECK (s3_choose_part_size (UINT64_MAX - 1, 16 * MiB) == 0);
}

static void
test_encode (void)
{
  char out[64];

  out[0] = '\0';
  CHECK (s3_pct_encode (out, sizeof out, "a b/c~d-e_f.g", 13, true) == 0);
  CHECK (strcmp (out, "a%20b/c~d-e_f.g") == 0);
  out[0] = '\0';
  CHECK (s3_pct_encode (out, sizeof out, "vv/x+y=z&", 9, false) == 0);
  CHECK (strcmp (out, "vv%2Fx%2By%3Dz%26") == 0);
  out[0] = '\0';
  CHECK (s3_pct_encode (out, sizeof out, "\xc3\xa9\x01", 3, true) == 0);
  CHECK (strcmp (out, "%C3%A9%01") == 0);
  /* appends to what is there */
  strcpy (out, "prefix=");
  CHECK (s3_pct_encode (out, sizeof out, "a/", 2, false) == 0);
  CHECK (strcmp (out, "prefix=a%2F") == 0);
  /* too small: -1, never past the end */
  out[0] = '\0';
  CHECK (s3_pct_encode (out, 4, "////", 4, false) == -1);
  CHECK (strlen (out) < 4);
}

static void
test_names (void)
{
  char big[VIRTVAULT_PLUGIN_NAME_MAX + 2];

  CHECK (plugin_valid_object_name ("a/b.qcow2", 9, 0));
  CHECK (plugin_valid_object_name (".virtvault-test/p", 17, 0));
  CHECK (!plugin_valid_object_name ("", 0, 0));
  CHECK (!plugin_valid_object_name ("/a", 2, 0));
  CHECK (!plugin_valid_object_name ("a//b", 4, 0));
  CHECK (!plugin_valid_object_name ("a/", 2, 0));
  CHECK (!plugin_valid_object_name ("a/../b", 6, 0));
  CHECK (!plugin_valid_object_name ("./b", 3, 0));
  CHECK (!plugin_valid_object_name ("a/..", 4, 0));
  CHECK (!plugin_valid_object_name ("a\nb", 3, 0));
  memset (big, 'x', sizeof big);
  CHECK (plugin_valid_object_name (big, VIRTVAULT_PLUGIN_NAME_MAX, 0));
  CHECK (!plugin_valid_object_name (big, VIRTVAULT_PLUGIN_NAME_MAX + 1, 0));
}

struct seen {
  int n;
  char last[64];
  uint64_t total;
};

static int
count_key (void *opaque, const char *key, size_t keylen, uint64_t size)
{
  struct seen *s = opaque;

  s->n++;
  snprintf (s->last, sizeof s->last, "%.*s", (int) keylen, key);
  s->total += size;
  return 0;
}

static int
parse_list (const char *xml, struct seen *s, bool *trunc, char *tok,
            size_t toksz)
{
  memset (s, 0, sizeof *s);
  return s3_xml_parse_list (xml, strlen (xml), count_key, s, trunc, tok,
                            toksz);
}

static void
test_list (void)
{
  struct seen s;
  bool trunc;
  char tok[32];
  static const char ok[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>b</Name><IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>1/abc=</NextContinuationToken>"
    "<Contents><Key>vv/a</Key><Size>10</Size></Contents>"
    "<Contents><Key>vv/b&amp;c</Key><Size>5</Size></Contents>"
    "</ListBucketResult>";

  CHECK (parse_list (ok, &s, &trunc, tok, sizeof tok) == 0);
  CHECK (s.n == 2 && s.total == 15 && strcmp (s.last, "vv/b&c") == 0);
  CHECK (trunc && strcmp (tok, "1/abc=") == 0);

  /* last page */
  CHECK (parse_list ("<ListBucketResult><IsTruncated>false</IsTruncated>"
                     "</ListBucketResult>", &s, &trunc, tok, sizeof tok) == 0);
  CHECK (!trunc && tok[0] == '\0' && s.n == 0);

  /* hostile or broken answers */
  CHECK (parse_list ("", &s, &trunc, tok, sizeof tok) == -1);
  CHECK (parse_list ("not xml at all", &s, &trunc, tok, sizeof tok) == -1);
  CHECK (parse_list ("<Error><Code>AccessDenied</Code></Error>", &s, &trunc,
                     tok, sizeof tok) == -1);
  CHECK (parse_list ("<ListBucketResult><Contents><Key>k</Key></Contents>"
                     "</ListBucketResult>", &s, &trunc, tok, sizeof tok) == -1);
  CHECK (parse_list ("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size>"
                     "</Contents></ListBucketResult>", &s, &trunc, tok,
                     sizeof tok) == -1);
  CHECK (parse_list ("<ListBucketResult><Contents><Key>k</Key>"
                     "<Size>99999999999999999999999</Size></Contents>"
                     "</ListBucketResult>", &s, &trunc, tok, sizeof tok) == -1);
  CHECK (parse_list ("<ListBucketResult><Contents><Key>k</Key><Size>1x</Size>"
                     "</Contents></ListBucketResult>", &s, &trunc, tok,
                     sizeof tok) == -1);
  /* a token longer than can be sent back */
  CHECK (parse_list ("<ListBucketResult><IsTruncated>true</IsTruncated>"
                     "<NextContinuationToken>0123456789012345678901234567890123"
                     "</NextContinuationToken></ListBucketResult>", &s, &trunc,
                     tok, sizeof tok) == -1);
  /* truncated document */
  CHECK (parse_list ("<ListBucketResult><Contents><Key>k</Key><Size>1</Size>",
                     &s, &trunc, tok, sizeof tok) == -1);
  /* entities are not expanded (no billion laughs), no external fetch */
  CHECK (parse_list ("<?xml version=\"1.0\"?><!DOCTYPE l ["
                     "<!ENTITY a \"aaaaaaaaaaaaaaaa\">"
                     "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                     "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
                     "<!ENTITY x SYSTEM \"http://127.0.0.1:1/x\">]>"
                     "<ListBucketResult><Contents><Key>&c;&x;</Key>"
                     "<Size>1</Size></Contents></ListBucketResult>",
                     &s, &trunc, tok, sizeof tok) <= 0);
}

static int
count_upload (void *opaque, const char *key, const char *id)
{
  int *n = opaque;
  (void) key;
  (void) id;
  (*n)++;
  return 0;
}

static void
test_other_answers (void)
{
  char a[64], b[64], km[16], um[16];
  bool trunc;
  int n = 0;
  static const char ups[] =
    "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
    "<NextKeyMarker>vv/k</NextKeyMarker><NextUploadIdMarker>2~x"
    "</NextUploadIdMarker><Upload><Key>vv/k</Key><UploadId>2~x</UploadId>"
    "</Upload></ListMultipartUploadsResult>";
  static const char del[] =
    "<DeleteResult><Error><Key>vv/a</Key><Code>NoSuchKey</Code></Error>"
    "<Error><Key>vv/b</Key><Code>AccessDenied</Code></Error></DeleteResult>";

  static const char err[] =
    "<Error><Code>SignatureDoesNotMatch</Code></Error>";

  CHECK (s3_xml_find_text (err, strlen (err), "Code", a, sizeof a) == 0);
  CHECK (strcmp (a, "SignatureDoesNotMatch") == 0);
  CHECK (s3_xml_find_text ("<Error><Code>0123456789</Code></Error>", 38,
                           "Code", a, 5) == 0);
  CHECK (strcmp (a, "0123") == 0);
  CHECK (s3_xml_find_text ("<x/>", 4, "Code", a, sizeof a) == -1);
  CHECK (s3_xml_parse_uploads (ups, strlen (ups), count_upload, &n, &trunc,
                               km, um, sizeof km) == 0);
  CHECK (n == 1 && trunc && strcmp (km, "vv/k") == 0 &&
         strcmp (um, "2~x") == 0);
  static const char no_id[] = "<ListMultipartUploadsResult><Upload><Key>k"
    "</Key></Upload></ListMultipartUploadsResult>";
  CHECK (s3_xml_parse_uploads (no_id, strlen (no_id), count_upload, &n, &trunc, km, um,
                               sizeof km) == -1);
  CHECK (s3_xml_delete_errors (del, strlen (del), a, sizeof a, b,
                               sizeof b) == 1);
  CHECK (strcmp (a, "vv/b") == 0 && strcmp (b, "AccessDenied") == 0);
  CHECK (s3_xml_delete_errors ("<DeleteResult/>", 15, a, sizeof a, b,
                               sizeof b) == 0);
  CHECK (s3_xml_delete_errors ("junk", 4, a, sizeof a, b, sizeof b) == -1);
}

static void
test_credentials (void)
{
  char dir[] = "/tmp/test-s3-logic.XXXXXX", path[128], link[128];
  char *id, *secret;
  struct plugin_err e;
  FILE *f;

  CHECK (mkdtemp (dir) != NULL);
  snprintf (path, sizeof path, "%s/cred", dir);
  snprintf (link, sizeof link, "%s/link", dir);
  f = fopen (path, "w");
  CHECK (f != NULL);
  fputs ("# comment\n[other]\naws_access_key_id = O\n"
         "aws_secret_access_key = osecret\n"
         "[default]\r\n aws_access_key_id=AK \r\naws_secret_access_key= SK\n",
         f);
  fclose (f);
  CHECK (chmod (path, 0600) == 0);
  if (geteuid () == 0) {
    CHECK (s3_read_credentials (path, "default", &id, &secret, &e) == 0);
    CHECK (strcmp (id, "AK") == 0 && strcmp (secret, "SK") == 0);
    free (id);
    plugin_free_secret (secret);
    CHECK (s3_read_credentials (path, "other", &id, &secret, &e) == 0);
    CHECK (strcmp (id, "O") == 0 && strcmp (secret, "osecret") == 0);
    free (id);
    plugin_free_secret (secret);
    CHECK (s3_read_credentials (path, "none", &id, &secret, &e) == -1);
    CHECK (e.code == EINVAL && strstr (e.msg, "osecret") == NULL);
  }
  else {
    CHECK (s3_read_credentials (path, "default", &id, &secret, &e) == -1);
    CHECK (e.code == EACCES && strstr (e.msg, "owned by root"));
  }
  CHECK (chmod (path, 0640) == 0);
  CHECK (s3_read_credentials (path, "default", &id, &secret, &e) == -1);
  CHECK (e.code == EACCES && strstr (e.msg, "SK") == NULL);
  CHECK (chmod (path, 0600) == 0);
  CHECK (symlink (path, link) == 0);
  CHECK (s3_read_credentials (link, "default", &id, &secret, &e) == -1);
  CHECK (e.code == EACCES && strstr (e.msg, "symbolic link"));
  CHECK (s3_read_credentials (dir, "default", &id, &secret, &e) == -1);
  unlink (link);
  unlink (path);
  rmdir (dir);
}

int
main (void)
{
  test_part_size ();
  test_encode ();
  test_names ();
  test_list ();
  test_other_answers ();
  test_credentials ();
  if (failures) {
    fprintf (stderr, "%d checks failed\n", failures);
    return 1;
  }
  return 0;
}
